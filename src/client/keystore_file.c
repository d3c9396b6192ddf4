/*
 * Client keystore on disk: scrypt, the header, the AES-256-GCM file envelope, atomic
 * writes and secure deletion, and the record text inside the envelopes.
 * Layouts are in docs/client.md.
 */
#include "client/keystore_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "crypto/rng.h"
#include "util/bytes.h"
#include "util/hex.h"

ms_err ks_fail(ms_err err, char *detail, size_t cap, const char *fmt, ...)
{
    if (detail != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, cap, fmt, ap);
        va_end(ap);
    }
    return err;
}

uint64_t ks_now(uint64_t now)
{
    return now != 0 ? now : ms_ntp_now() >> 32;
}

/* ---- scrypt ----------------------------------------------------------------------------- */

#define KS_DEFAULT_LOG2_N 17
#define KS_DEFAULT_R 8
#define KS_DEFAULT_P 1

ms_err ks_derive_key(uint8_t key[KS_KEY_BYTES], const char *pass, size_t pass_len,
                     const uint8_t salt[KS_SALT_BYTES], unsigned log2_n, unsigned r,
                     unsigned p)
{
    ms_err err = MS_ERR_INTERNAL;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    if (kctx == NULL)
        goto out;
    uint64_t n = (uint64_t)1 << log2_n;
    uint32_t r32 = r, p32 = p;
    /* Memory needed is 128 * r * N (plus p * 128 * r); allow it with some margin. */
    uint64_t maxmem = 128 * (uint64_t)r * (n + p + 2) + (1u << 20);
    OSSL_PARAM prm[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pass, pass_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, KS_SALT_BYTES),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r32),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p32),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_KDF_derive(kctx, key, KS_KEY_BYTES, prm) != 1) {
        err = MS_ERR_NOMEM; /* scrypt fails mainly when it cannot get its memory */
        goto out;
    }
    err = MS_OK;
out:
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return err;
}

/* ---- AES-256-GCM ------------------------------------------------------------------------ */

/* out = ct || tag (encrypt), or plaintext (decrypt, in_len includes the tag). Returns
 * 0, or -1 when the tag does not verify or OpenSSL fails. */
static int gcm(int enc, const uint8_t key[KS_KEY_BYTES], const uint8_t nonce[KS_NONCE_BYTES],
               const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len,
               uint8_t *out)
{
    int ok = 0, n = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (c == NULL)
        return -1;
    size_t data_len = enc ? in_len : in_len - KS_TAG_BYTES;
    if (!enc && in_len < KS_TAG_BYTES)
        goto out;
    if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, KS_NONCE_BYTES, NULL) != 1 ||
        EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) != 1)
        goto out;
    if (aad_len > 0 && EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) != 1)
        goto out;
    if (data_len > 0 && EVP_CipherUpdate(c, out, &n, in, (int)data_len) != 1)
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, KS_TAG_BYTES,
                                    (void *)(in + data_len)) != 1)
        goto out;
    if (EVP_CipherFinal_ex(c, out + data_len, &n) != 1)
        goto out;
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, KS_TAG_BYTES, out + data_len) != 1)
        goto out;
    ok = 1;
out:
    EVP_CIPHER_CTX_free(c);
    if (!ok && !enc && data_len > 0 && in_len >= KS_TAG_BYTES)
        ms_wipe(out, data_len);
    return ok ? 0 : -1;
}

/* ---- plain file helpers ---------------------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

ms_err ks_check_mode(int fd, const char *what, char *detail, size_t cap)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return ks_fail(MS_ERR_IO, detail, cap, "%s: %s", what, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s: not a regular file", what);
    if ((st.st_mode & 077) != 0)
        return ks_fail(MS_ERR_KEYFILE_MODE, detail, cap,
                       "%s: mode %04o lets other users access it", what,
                       (unsigned)(st.st_mode & 07777));
    if (st.st_size > KS_MAX_FILE)
        return ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s: %lld octets, more than a keystore "
                       "file can hold", what, (long long)st.st_size);
    return MS_OK;
}

/* Reads file `name` of the keystore directory: *out malloc'd. */
static ms_err read_raw(const struct ms_keystore *ks, const char *name, uint8_t **out,
                       size_t *out_len, char *detail, size_t cap)
{
    *out = NULL;
    *out_len = 0;
    int fd = openat(ks->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return ks_fail(MS_ERR_NO_KEYS, detail, cap, "%s/%s: no such file", ks->dir, name);
        if (errno == ELOOP)
            return ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s/%s: a symbolic link", ks->dir,
                           name);
        return ks_fail(MS_ERR_IO, detail, cap, "%s/%s: %s", ks->dir, name, strerror(errno));
    }
    char what[KS_PATH_MAX + 64];
    snprintf(what, sizeof what, "%s/%s", ks->dir, name);
    ms_err err = ks_check_mode(fd, what, detail, cap);
    uint8_t *buf = NULL;
    size_t n = 0;
    if (err != MS_OK)
        goto out;
    buf = malloc(KS_MAX_FILE + 1);
    if (buf == NULL) {
        err = ks_fail(MS_ERR_NOMEM, detail, cap, "%s", what);
        goto out;
    }
    while (n <= KS_MAX_FILE) {
        ssize_t r = read(fd, buf + n, KS_MAX_FILE + 1 - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            err = ks_fail(MS_ERR_IO, detail, cap, "%s: %s", what, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > KS_MAX_FILE) {
        err = ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s: too large", what);
        goto out;
    }
    *out = buf;
    *out_len = n;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return err;
}

static void sync_dir(const struct ms_keystore *ks)
{
    (void)fsync(ks->dir_fd); /* best effort: some file systems refuse it */
}

/* Writes raw octets to `name` atomically: temp file beside it, fsync, rename. */
static ms_err write_raw(const struct ms_keystore *ks, const char *name, const uint8_t *data,
                        size_t len, char *detail, size_t cap)
{
    char tmp[128];
    int fd = -1;
    for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
        uint8_t rnd[6];
        if (ms_rng_fill(NULL, rnd, sizeof rnd) != MS_OK)
            return ks_fail(MS_ERR_RNG, detail, cap, "temporary file name");
        snprintf(tmp, sizeof tmp, ".tmp-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
                 rnd[3], rnd[4], rnd[5]);
        fd = openat(ks->dir_fd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
                    0600);
        if (fd < 0 && errno != EEXIST)
            return ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s/%s: cannot be written: %s",
                           ks->dir, tmp, strerror(errno));
    }
    if (fd < 0)
        return ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s: no temporary file", ks->dir);
    if (fchmod(fd, 0600) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        (void)unlinkat(ks->dir_fd, tmp, 0);
        return ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s/%s: cannot be written: %s", ks->dir,
                       name, strerror(e));
    }
    if (close(fd) != 0 || renameat(ks->dir_fd, tmp, ks->dir_fd, name) != 0) {
        int e = errno;
        (void)unlinkat(ks->dir_fd, tmp, 0);
        return ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s/%s: cannot be written: %s", ks->dir,
                       name, strerror(e));
    }
    sync_dir(ks);
    return MS_OK;
}

ms_err ks_delete_file(const struct ms_keystore *ks, const char *name, char *detail, size_t cap)
{
    int fd = openat(ks->dir_fd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s/%s: %s", ks->dir, name,
                       strerror(errno));
    struct stat st;
    ms_err err = MS_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        err = ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s/%s: not a regular file", ks->dir, name);
    } else {
        /* Overwrite in place first: on most file systems the old blocks then hold zeros
         * (no guarantee on copy-on-write file systems or flash; the content is
         * encrypted in any case). */
        static const uint8_t zeros[4096];
        off_t left = st.st_size;
        while (left > 0 && err == MS_OK) {
            size_t n = left > (off_t)sizeof zeros ? sizeof zeros : (size_t)left;
            if (write_all(fd, zeros, n) != 0)
                err = ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s/%s: overwrite: %s", ks->dir,
                              name, strerror(errno));
            left -= (off_t)n;
        }
        if (err == MS_OK && fsync(fd) != 0)
            err = ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s/%s: fsync: %s", ks->dir, name,
                          strerror(errno));
    }
    close(fd);
    if (err == MS_OK && unlinkat(ks->dir_fd, name, 0) != 0)
        err = ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s/%s: unlink: %s", ks->dir, name,
                      strerror(errno));
    if (err == MS_OK)
        sync_dir(ks);
    return err;
}

/* ---- header ----------------------------------------------------------------------------- */

/* magic(8) log2n(1) r(4) p(4) salt(32) store_id(16) nonce(12) tag(16) sha256(32) */
static const char HDR_MAGIC[8] = {'M', 'S', 'K', 'S', 'H', 'D', 'R', '1'};
#define HDR_AAD_LEN (8 + 1 + 4 + 4 + KS_SALT_BYTES + KS_ID_BYTES)
#define HDR_LEN (HDR_AAD_LEN + KS_NONCE_BYTES + KS_TAG_BYTES + 32)

static int sha256(uint8_t out[32], const uint8_t *p, size_t len)
{
    return EVP_Digest(p, len, out, NULL, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

static int params_ok(unsigned log2_n, unsigned r, unsigned p)
{
    /* Bounds keep a tampered header from asking for absurd memory or time. */
    return log2_n >= 10 && log2_n <= 22 && r >= 1 && r <= 32 && p >= 1 && p <= 16;
}

ms_err ks_header_create(struct ms_keystore *ks, const char *pass, size_t pass_len,
                        const ms_keystore_params *params, char *detail, size_t cap)
{
    unsigned log2_n = params != NULL && params->scrypt_log2_n ? params->scrypt_log2_n
                                                              : KS_DEFAULT_LOG2_N;
    unsigned r = params != NULL && params->scrypt_r ? params->scrypt_r : KS_DEFAULT_R;
    unsigned p = params != NULL && params->scrypt_p ? params->scrypt_p : KS_DEFAULT_P;
    if (!params_ok(log2_n, r, p))
        return ks_fail(MS_ERR_ARG, detail, cap,
                       "scrypt parameters out of range (log2 N 10..22, r 1..32, p 1..16)");
    uint8_t h[HDR_LEN];
    memcpy(h, HDR_MAGIC, 8);
    h[8] = (uint8_t)log2_n;
    ms_store_be32(h + 9, r);
    ms_store_be32(h + 13, p);
    uint8_t *salt = h + 17, *id = salt + KS_SALT_BYTES, *nonce = h + HDR_AAD_LEN;
    if (ms_rng_fill(NULL, salt, KS_SALT_BYTES) != MS_OK ||
        ms_rng_fill(NULL, id, KS_ID_BYTES) != MS_OK ||
        ms_rng_fill(NULL, nonce, KS_NONCE_BYTES) != MS_OK)
        return ks_fail(MS_ERR_RNG, detail, cap, "keystore header");
    ms_err err = ks_derive_key(ks->key, pass, pass_len, salt, log2_n, r, p);
    if (err != MS_OK)
        return ks_fail(err, detail, cap, "scrypt failed (not enough memory?)");
    memcpy(ks->store_id, id, KS_ID_BYTES);
    /* The passphrase check: a GCM tag over the header, nothing encrypted. */
    if (gcm(1, ks->key, nonce, h, HDR_AAD_LEN, NULL, 0, nonce + KS_NONCE_BYTES) != 0 ||
        sha256(h + HDR_LEN - 32, h, HDR_LEN - 32) != 0)
        return ks_fail(MS_ERR_INTERNAL, detail, cap, "keystore header");
    return write_raw(ks, KS_HEADER_NAME, h, sizeof h, detail, cap);
}

ms_err ks_header_open(struct ms_keystore *ks, const char *pass, size_t pass_len, char *detail,
                      size_t cap)
{
    uint8_t *h = NULL;
    size_t len = 0;
    ms_err err = read_raw(ks, KS_HEADER_NAME, &h, &len, detail, cap);
    if (err == MS_ERR_NO_KEYS)
        return ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s/%s: missing: not a keystore",
                       ks->dir, KS_HEADER_NAME);
    if (err != MS_OK)
        return err;
    uint8_t sum[32];
    if (len != HDR_LEN || memcmp(h, HDR_MAGIC, 8) != 0 || sha256(sum, h, HDR_LEN - 32) != 0 ||
        memcmp(sum, h + HDR_LEN - 32, 32) != 0) {
        err = ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s/%s: corrupted (not a keystore "
                      "header of this version, or damaged)", ks->dir, KS_HEADER_NAME);
        goto out;
    }
    unsigned log2_n = h[8], r = ms_load_be32(h + 9), p = ms_load_be32(h + 13);
    if (!params_ok(log2_n, r, p)) {
        err = ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s/%s: scrypt parameters out of range",
                      ks->dir, KS_HEADER_NAME);
        goto out;
    }
    err = ks_derive_key(ks->key, pass, pass_len, h + 17, log2_n, r, p);
    if (err != MS_OK) {
        err = ks_fail(err, detail, cap, "scrypt failed (not enough memory?)");
        goto out;
    }
    uint8_t none[1];
    if (gcm(0, ks->key, h + HDR_AAD_LEN, h, HDR_AAD_LEN, h + HDR_AAD_LEN + KS_NONCE_BYTES,
            KS_TAG_BYTES, none) != 0) {
        ms_wipe(ks->key, sizeof ks->key);
        err = ks_fail(MS_ERR_PASSPHRASE, detail, cap, "%s: wrong passphrase for this keystore",
                      ks->dir);
        goto out;
    }
    memcpy(ks->store_id, h + 17 + KS_SALT_BYTES, KS_ID_BYTES);
out:
    free(h);
    return err;
}

/* ---- envelope --------------------------------------------------------------------------- */

/* magic(8) nonce(12) ciphertext tag(16); AAD = magic || store id || file name. */
static const char FILE_MAGIC[8] = {'M', 'S', 'K', 'S', 'F', 'I', 'L', '1'};

static size_t make_aad(uint8_t *aad, size_t cap, const struct ms_keystore *ks, const char *name)
{
    size_t nl = strlen(name);
    if (8 + KS_ID_BYTES + nl > cap)
        return 0;
    memcpy(aad, FILE_MAGIC, 8);
    memcpy(aad + 8, ks->store_id, KS_ID_BYTES);
    memcpy(aad + 8 + KS_ID_BYTES, name, nl);
    return 8 + KS_ID_BYTES + nl;
}

ms_err ks_write_file(const struct ms_keystore *ks, const char *name, const uint8_t *data,
                     size_t len, char *detail, size_t cap)
{
    uint8_t aad[8 + KS_ID_BYTES + 128];
    size_t aad_len = make_aad(aad, sizeof aad, ks, name);
    size_t total = 8 + KS_NONCE_BYTES + len + KS_TAG_BYTES;
    if (aad_len == 0 || total > KS_MAX_FILE)
        return ks_fail(MS_ERR_ARG, detail, cap, "%s: name or content too long", name);
    uint8_t *buf = malloc(total);
    if (buf == NULL)
        return ks_fail(MS_ERR_NOMEM, detail, cap, "%s", name);
    memcpy(buf, FILE_MAGIC, 8);
    ms_err err = ms_rng_fill(NULL, buf + 8, KS_NONCE_BYTES); /* fresh nonce per write */
    if (err != MS_OK)
        err = ks_fail(err, detail, cap, "%s: nonce", name);
    else if (gcm(1, ks->key, buf + 8, aad, aad_len, data, len, buf + 8 + KS_NONCE_BYTES) != 0)
        err = ks_fail(MS_ERR_INTERNAL, detail, cap, "%s: encryption failed", name);
    else
        err = write_raw(ks, name, buf, total, detail, cap);
    free(buf);
    return err;
}

ms_err ks_read_file(const struct ms_keystore *ks, const char *name, uint8_t **out,
                    size_t *out_len, char *detail, size_t cap)
{
    uint8_t *raw = NULL;
    size_t len = 0;
    *out = NULL;
    *out_len = 0;
    ms_err err = read_raw(ks, name, &raw, &len, detail, cap);
    if (err != MS_OK)
        return err;
    uint8_t aad[8 + KS_ID_BYTES + 128];
    size_t aad_len = make_aad(aad, sizeof aad, ks, name);
    if (aad_len == 0 || len < 8 + KS_NONCE_BYTES + KS_TAG_BYTES ||
        memcmp(raw, FILE_MAGIC, 8) != 0) {
        err = ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s/%s: corrupted (not a keystore file)",
                      ks->dir, name);
        goto out;
    }
    size_t pt_len = len - 8 - KS_NONCE_BYTES - KS_TAG_BYTES;
    uint8_t *pt = malloc(pt_len + 1);
    if (pt == NULL) {
        err = ks_fail(MS_ERR_NOMEM, detail, cap, "%s", name);
        goto out;
    }
    if (gcm(0, ks->key, raw + 8, aad, aad_len, raw + 8 + KS_NONCE_BYTES,
            len - 8 - KS_NONCE_BYTES, pt) != 0) {
        free(pt);
        err = ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s/%s: tampered, corrupted or from "
                      "another keystore (authentication failed)", ks->dir, name);
        goto out;
    }
    pt[pt_len] = 0; /* records are text: a terminator makes searching safe */
    *out = pt;
    *out_len = pt_len;
out:
    free(raw);
    return err;
}

/* ---- records ---------------------------------------------------------------------------- */

void ks_buf_init(ks_buf *b, char *mem, size_t cap)
{
    b->p = mem;
    b->len = 0;
    b->cap = cap;
    b->failed = 0;
    if (cap > 0)
        mem[0] = '\0';
}

static void put_raw(ks_buf *b, const char *s, size_t n)
{
    if (b->failed || b->len + n + 1 > b->cap) {
        b->failed = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void ks_put_str(ks_buf *b, const char *name, const char *value)
{
    for (const char *c = value; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7F) {
            b->failed = 1; /* one line per value: no control characters */
            return;
        }
    put_raw(b, name, strlen(name));
    put_raw(b, " ", 1);
    put_raw(b, value, strlen(value));
    put_raw(b, "\n", 1);
}

void ks_put_u64(ks_buf *b, const char *name, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    ks_put_str(b, name, num);
}

void ks_put_hex(ks_buf *b, const char *name, const uint8_t *v, size_t len)
{
    put_raw(b, name, strlen(name));
    put_raw(b, " ", 1);
    char chunk[2 * 32 + 1]; /* values are keys: the encoder indexes no table */
    for (size_t i = 0; i < len; i += 32) {
        size_t n = len - i < 32 ? len - i : 32;
        ms_hex_encode_lower(chunk, v + i, n);
        put_raw(b, chunk, 2 * n);
    }
    ms_wipe(chunk, sizeof chunk);
    put_raw(b, "\n", 1);
}

/* The value of `name`: start and length, or -1. */
static int find(const char *rec, size_t len, const char *name, const char **val, size_t *vlen)
{
    size_t nl = strlen(name);
    size_t i = 0;
    while (i < len) {
        const char *line = rec + i;
        const char *eol = memchr(line, '\n', len - i);
        size_t ll = eol != NULL ? (size_t)(eol - line) : len - i;
        if (ll > nl && memcmp(line, name, nl) == 0 && line[nl] == ' ') {
            *val = line + nl + 1;
            *vlen = ll - nl - 1;
            return 0;
        }
        i += ll + 1;
    }
    return -1;
}

int ks_get_str(const char *rec, size_t len, const char *name, char *out, size_t cap)
{
    const char *v;
    size_t vl;
    if (find(rec, len, name, &v, &vl) != 0 || vl + 1 > cap)
        return -1;
    memcpy(out, v, vl);
    out[vl] = '\0';
    return 0;
}

int ks_get_u64(const char *rec, size_t len, const char *name, uint64_t *out)
{
    const char *v;
    size_t vl;
    if (find(rec, len, name, &v, &vl) != 0 || vl == 0 || vl > 20)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < vl; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        unsigned d = (unsigned)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

int ks_get_hex(const char *rec, size_t len, const char *name, uint8_t *out, size_t cap,
               size_t *out_len)
{
    const char *v;
    size_t vl;
    if (find(rec, len, name, &v, &vl) != 0 || vl % 2 != 0 || vl / 2 > cap)
        return -1;
    if (out_len == NULL && vl / 2 != cap)
        return -1; /* fixed length expected */
    if (ms_hex_decode_secret(out, vl / 2, v, vl) != MS_OK) {
        ms_wipe(out, cap);
        return -1;
    }
    if (out_len != NULL)
        *out_len = vl / 2;
    return 0;
}
