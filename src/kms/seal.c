/*
 * Sealed KMS master secrets.
 *
 * File format (version 1; integers big-endian):
 *
 *   header (the associated data of the AES-256-GCM below)
 *     0    8  magic "MSSEAL\r\n"
 *     8    1  format version = 1
 *     9    1  method: 1 passphrase, 2 custodian shares, 3 PKCS#11
 *    10   16  seal id: random, names this KMS's seal; every share carries it
 *    26    2  P = length of the method parameters
 *    28    P  method parameters
 *             passphrase: salt (16) || log2 N (1) || r (4) || p (4) || check (32)
 *                         scrypt(passphrase, salt, N, r, p) gives 64 octets: the first 32
 *                         are the KEK, check = SHA-256 of the last 32. A wrong passphrase
 *                         is told from a damaged file without trying the KEK.
 *             shares:     k (1) || n (1) || n * SHA-256(encoded share i) (32 each)
 *             PKCS#11:    module path, token label, key label (each: length (2) || text)
 *                         || wrapped KEK (60): token AES-GCM of the KEK, iv || ct || tag,
 *                         with the seal id as associated data
 *    28+P 12  GCM nonce
 *    40+P  4  C = length of the sealed secrets
 *    44+P 32  SHA-256 of octets [0, 44+P): accidental damage to the header is named on
 *             open, before any key is tried
 *   body
 *    76+P  C  AES-256-GCM(KEK, serialized secrets)
 *    76+P+C 16 GCM tag; the file ends here.
 *
 *   serialized secrets: n_generations (1) || per generation: from_period (8) || z (128)
 *     || Z (257) || KSAK (32) || KPAK (65) || store key (32) || audit key (32)
 *
 *   encoded share (56 octets): "MSSH" || version 1 (1) || seal id (16) || k (1) || n (1)
 *     || x (1) || y (32), y being the Shamir share of the 32-octet KEK at x.
 *
 * A file is written to a temporary file in the same directory (mode 0600), fsynced,
 * renamed over the target and the directory fsynced, so a crash leaves the old or the
 * new file, never a mix.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include "crypto/secmem.h"
#include "kms/pkcs11.h"
#include "kms/seal.h"
#include "util/bytes.h"
#include "util/detail.h"
#include "util/file.h"

_Static_assert(MS_P11_KEK_BYTES == MS_KMS_KEY_BYTES, "the token wraps the seal's KEK");

#define SEAL_MAGIC "MSSEAL\r\n"
#define SEAL_MAGIC_LEN 8
#define SEAL_VERSION 1
#define SEAL_FIXED_HEAD 28 /* magic .. P */
#define SEAL_NONCE 12
#define SEAL_TAG 16
#define SEAL_HASH 32
#define SEAL_MAX_PARAMS 4096
#define SEAL_MAX_FILE 65536
#define SALT_LEN 16
#define PASS_PARAMS_LEN (SALT_LEN + 1 + 4 + 4 + SEAL_HASH)
#define SCRYPT_DEFAULT_LOG2N 17
#define SCRYPT_MIN_LOG2N 10
#define SCRYPT_MAX_LOG2N 22
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SHARE_TAG "MSSH"
#define SHARE_VERSION 1
#define MAX_SHARES 16
#define GEN_BYTES (8 + MS_SAKKE_SECRET_BYTES + MS_SAKKE_POINT_BYTES + MS_ECCSI_SCALAR_BYTES + \
                   MS_ECCSI_POINT_BYTES)
#define MAX_TEXT 1024 /* module path and labels */

/* ---- secrets ---------------------------------------------------------------------------- */

ms_err ms_kms_secrets_new(ms_kms_secrets **out)
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = ms_secure_alloc(sizeof(ms_kms_secrets));
    return *out != NULL ? MS_OK : MS_ERR_NOMEM;
}

void ms_kms_secrets_free(ms_kms_secrets *s)
{
    ms_secure_free(s, sizeof *s);
}

void ms_kms_secrets_clear(ms_kms_secrets *s)
{
    if (s != NULL)
        ms_wipe(s, sizeof *s);
}

static ms_err generation_make(ms_kms_generation *g, uint64_t from_period, const ms_rng *rng)
{
    g->from_period = from_period;
    ms_err err = ms_sakke_master_keygen(g->z, g->Z, rng);
    if (err == MS_OK)
        err = ms_eccsi_master_keygen(g->ksak, g->kpak, rng);
    if (err != MS_OK)
        ms_wipe(g, sizeof *g);
    return err;
}

ms_err ms_kms_secrets_generate(ms_kms_secrets *s, uint64_t first_period, const ms_rng *rng)
{
    if (s == NULL)
        return MS_ERR_ARG;
    ms_wipe(s, sizeof *s);
    ms_err err = generation_make(&s->gen[0], first_period, rng);
    if (err == MS_OK)
        err = ms_rng_fill(rng, s->store_key, sizeof s->store_key);
    if (err == MS_OK)
        err = ms_rng_fill(rng, s->audit_key, sizeof s->audit_key);
    if (err != MS_OK) {
        ms_wipe(s, sizeof *s);
        return err;
    }
    s->n_generations = 1;
    return MS_OK;
}

ms_err ms_kms_secrets_add_generation(ms_kms_secrets *s, uint64_t from_period, const ms_rng *rng,
                                     char *detail, size_t detail_cap)
{
    ms_detail_set(detail, detail_cap, "%s", "");
    if (s == NULL || s->n_generations == 0 || s->n_generations > MS_KMS_MAX_GENERATIONS)
        return MS_ERR_ARG;
    if (s->n_generations == MS_KMS_MAX_GENERATIONS) {
        ms_detail_set(detail, detail_cap, "at most %d master key generations are kept",
                      MS_KMS_MAX_GENERATIONS);
        return MS_ERR_ARG;
    }
    if (from_period <= s->gen[s->n_generations - 1].from_period) {
        ms_detail_set(detail, detail_cap, "a new generation must start after period %llu",
                      (unsigned long long)s->gen[s->n_generations - 1].from_period);
        return MS_ERR_PERIOD;
    }
    ms_err err = generation_make(&s->gen[s->n_generations], from_period, rng);
    if (err == MS_OK)
        s->n_generations++;
    return err;
}

const ms_kms_generation *ms_kms_secrets_generation(const ms_kms_secrets *s,
                                                   uint64_t period_no)
{
    if (s == NULL || s->n_generations > MS_KMS_MAX_GENERATIONS)
        return NULL;
    const ms_kms_generation *found = NULL;
    /* Generations are in increasing from_period order: the last one started wins. */
    for (size_t i = 0; i < s->n_generations; i++)
        if (s->gen[i].from_period <= period_no)
            found = &s->gen[i];
    return found;
}

static size_t secrets_len(size_t n_gen)
{
    return 1 + n_gen * GEN_BYTES + 2 * MS_KMS_KEY_BYTES;
}

static void secrets_serialize(uint8_t *out, const ms_kms_secrets *s)
{
    uint8_t *p = out;
    *p++ = (uint8_t)s->n_generations;
    for (size_t i = 0; i < s->n_generations; i++) {
        const ms_kms_generation *g = &s->gen[i];
        ms_store_be64(p, g->from_period);
        p += 8;
        memcpy(p, g->z, sizeof g->z);
        p += sizeof g->z;
        memcpy(p, g->Z, sizeof g->Z);
        p += sizeof g->Z;
        memcpy(p, g->ksak, sizeof g->ksak);
        p += sizeof g->ksak;
        memcpy(p, g->kpak, sizeof g->kpak);
        p += sizeof g->kpak;
    }
    memcpy(p, s->store_key, MS_KMS_KEY_BYTES);
    p += MS_KMS_KEY_BYTES;
    memcpy(p, s->audit_key, MS_KMS_KEY_BYTES);
}

/* The plaintext was authenticated; a bad structure means a bug or a forged KEK holder. */
static ms_err secrets_parse(ms_kms_secrets *s, const uint8_t *in, size_t len, char *detail,
                            size_t cap)
{
    size_t n = in[0];
    if (n < 1 || n > MS_KMS_MAX_GENERATIONS || len != secrets_len(n)) {
        ms_detail_set(detail, cap, "sealed secrets have a bad structure");
        return MS_ERR_SEALED_FILE;
    }
    const uint8_t *p = in + 1;
    for (size_t i = 0; i < n; i++) {
        ms_kms_generation *g = &s->gen[i];
        g->from_period = ms_load_be64(p);
        p += 8;
        memcpy(g->z, p, sizeof g->z);
        p += sizeof g->z;
        memcpy(g->Z, p, sizeof g->Z);
        p += sizeof g->Z;
        memcpy(g->ksak, p, sizeof g->ksak);
        p += sizeof g->ksak;
        memcpy(g->kpak, p, sizeof g->kpak);
        p += sizeof g->kpak;
        if (i > 0 && g->from_period <= s->gen[i - 1].from_period) {
            ms_detail_set(detail, cap, "sealed generations are out of order");
            return MS_ERR_SEALED_FILE;
        }
    }
    memcpy(s->store_key, p, MS_KMS_KEY_BYTES);
    p += MS_KMS_KEY_BYTES;
    memcpy(s->audit_key, p, MS_KMS_KEY_BYTES);
    s->n_generations = n;
    return MS_OK;
}

/* ---- OpenSSL pieces --------------------------------------------------------------------- */

static ms_err sha256(uint8_t out[SEAL_HASH], const uint8_t *in, size_t len)
{
    unsigned int olen = 0;
    if (EVP_Digest(in, len, out, &olen, EVP_sha256(), NULL) != 1 || olen != SEAL_HASH)
        return MS_ERR_INTERNAL;
    return MS_OK;
}

static ms_err scrypt64(uint8_t out[64], const uint8_t *pass, size_t pass_len,
                       const uint8_t salt[SALT_LEN], unsigned log2n, uint32_t r, uint32_t p,
                       char *detail, size_t cap)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (ctx == NULL)
        return MS_ERR_INTERNAL;
    uint64_t n = (uint64_t)1 << log2n;
    uint32_t rr = r, pp = p;
    /* scrypt needs 128 * r * N octets (plus 128 * r * p); allow that and a margin. */
    uint64_t maxmem = 128ull * r * n * 2 + 128ull * r * p + (1u << 20);
    /* An empty passphrase is allowed by the caller check; OpenSSL wants a non-NULL pointer. */
    static const uint8_t empty[1] = {0};
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                                          (void *)(uintptr_t)(pass_len ? pass : empty),
                                          pass_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)salt,
                                          SALT_LEN),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &rr),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &pp),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_KDF_derive(ctx, out, 64, params);
    EVP_KDF_CTX_free(ctx);
    if (ok != 1) {
        ms_wipe(out, 64);
        ms_detail_set(detail, cap, "scrypt failed (not enough memory for N = 2^%u?)", log2n);
        return MS_ERR_NOMEM;
    }
    return MS_OK;
}

/* AES-256-GCM; decryption returns MS_ERR_INVALID on a failing tag. */
static ms_err gcm(int enc, uint8_t *out, const uint8_t *in, size_t len,
                  const uint8_t key[MS_KMS_KEY_BYTES], const uint8_t nonce[SEAL_NONCE],
                  const uint8_t *aad, size_t aad_len, uint8_t tag[SEAL_TAG])
{
    if (len > INT_MAX || aad_len > INT_MAX)
        return MS_ERR_ARG;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return MS_ERR_NOMEM;
    ms_err err = MS_ERR_INTERNAL;
    int outl = 0;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)aad_len) != 1 ||
        EVP_CipherUpdate(ctx, out, &outl, in, (int)len) != 1 || (size_t)outl != len)
        goto done;
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG, tag) != 1)
        goto done;
    if (EVP_CipherFinal_ex(ctx, out + outl, &outl) != 1) {
        err = enc ? MS_ERR_INTERNAL : MS_ERR_INVALID;
        goto done;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, tag) != 1)
        goto done;
    err = MS_OK;
done:
    EVP_CIPHER_CTX_free(ctx);
    if (err != MS_OK)
        ms_wipe(out, len);
    return err;
}

/* ---- writing ---------------------------------------------------------------------------- */

static size_t put_text(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    ms_store_be16(p, (unsigned)n);
    memcpy(p + 2, s, n);
    return 2 + n;
}

static ms_err check_text(const char *s, const char *what, char *detail, size_t cap)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > MAX_TEXT) {
        ms_detail_set(detail, cap, "PKCS#11 %s missing or longer than %d characters", what,
                      MAX_TEXT);
        return MS_ERR_ARG;
    }
    return MS_OK;
}

static void encode_share(uint8_t out[MS_KMS_SHARE_LEN], const uint8_t seal_id[16], unsigned k,
                         unsigned n, const uint8_t *xy)
{
    memcpy(out, SHARE_TAG, 4);
    out[4] = SHARE_VERSION;
    memcpy(out + 5, seal_id, MS_KMS_SEAL_ID_BYTES);
    out[21] = (uint8_t)k;
    out[22] = (uint8_t)n;
    memcpy(out + 23, xy, 1 + MS_KMS_KEY_BYTES);
}

ms_err ms_seal_write(const char *path, const ms_kms_secrets *s, const ms_seal_params *p,
                     uint8_t shares[][MS_KMS_SHARE_BYTES], size_t share_len[], char *detail,
                     size_t detail_cap)
{
    ms_detail_set(detail, detail_cap, "%s", "");
    if (path == NULL || s == NULL || p == NULL || s->n_generations < 1 ||
        s->n_generations > MS_KMS_MAX_GENERATIONS)
        return MS_ERR_ARG;

    uint8_t head[SEAL_FIXED_HEAD + SEAL_MAX_PARAMS + SEAL_NONCE + 4 + SEAL_HASH];
    uint8_t *params = head + SEAL_FIXED_HEAD;
    size_t plen = 0;
    uint8_t kek[MS_KMS_KEY_BYTES];
    uint8_t seal_id[MS_KMS_SEAL_ID_BYTES];
    uint8_t *share_xy = NULL; /* n * 33 in locked memory */
    size_t share_xy_len = 0;
    uint8_t *plain = NULL, *file = NULL;
    size_t clen = secrets_len(s->n_generations);
    ms_err err = ms_rng_fill(NULL, seal_id, sizeof seal_id);
    if (err != MS_OK)
        goto out;

    switch (p->method) {
    case MS_SEAL_PASSPHRASE: {
        unsigned log2n = p->scrypt_log2_n ? p->scrypt_log2_n : SCRYPT_DEFAULT_LOG2N;
        if (p->passphrase == NULL && p->passphrase_len != 0)
            return MS_ERR_ARG;
        if (p->passphrase_len == 0) {
            ms_detail_set(detail, detail_cap, "an empty passphrase is not allowed");
            return MS_ERR_ARG;
        }
        if (log2n < SCRYPT_MIN_LOG2N || log2n > SCRYPT_MAX_LOG2N) {
            ms_detail_set(detail, detail_cap, "scrypt log2 N must be in [%d, %d]", SCRYPT_MIN_LOG2N,
                          SCRYPT_MAX_LOG2N);
            return MS_ERR_ARG;
        }
        uint8_t derived[64];
        err = ms_rng_fill(NULL, params, SALT_LEN);
        if (err == MS_OK)
            err = scrypt64(derived, p->passphrase, p->passphrase_len, params, log2n, SCRYPT_R,
                           SCRYPT_P, detail, detail_cap);
        if (err != MS_OK)
            goto out;
        params[SALT_LEN] = (uint8_t)log2n;
        ms_store_be32(params + SALT_LEN + 1, SCRYPT_R);
        ms_store_be32(params + SALT_LEN + 5, SCRYPT_P);
        memcpy(kek, derived, sizeof kek);
        err = sha256(params + SALT_LEN + 9, derived + 32, 32);
        ms_wipe(derived, sizeof derived);
        if (err != MS_OK)
            goto out;
        plen = PASS_PARAMS_LEN;
        break;
    }
    case MS_SEAL_SHARES: {
        if (p->k < 1 || p->n < p->k || p->n > MAX_SHARES || shares == NULL ||
            share_len == NULL) {
            ms_detail_set(detail, detail_cap, "shares need 1 <= k <= n <= %d and room for n shares",
                          MAX_SHARES);
            return MS_ERR_ARG;
        }
        share_xy_len = (size_t)p->n * (1 + MS_KMS_KEY_BYTES);
        share_xy = ms_secure_alloc(share_xy_len);
        if (share_xy == NULL)
            return MS_ERR_NOMEM;
        err = ms_rng_fill(NULL, kek, sizeof kek);
        if (err == MS_OK)
            err = ms_shamir_split(share_xy, kek, sizeof kek, p->k, p->n, NULL);
        if (err != MS_OK)
            goto out;
        params[0] = (uint8_t)p->k;
        params[1] = (uint8_t)p->n;
        plen = 2;
        for (unsigned i = 0; i < p->n; i++) {
            uint8_t enc[MS_KMS_SHARE_LEN];
            encode_share(enc, seal_id, p->k, p->n, share_xy + (size_t)i * (1 + MS_KMS_KEY_BYTES));
            err = sha256(params + plen, enc, sizeof enc);
            ms_wipe(enc, sizeof enc);
            if (err != MS_OK)
                goto out;
            plen += SEAL_HASH;
        }
        break;
    }
    case MS_SEAL_PKCS11: {
        if ((err = check_text(p->module, "module path", detail, detail_cap)) != MS_OK ||
            (err = check_text(p->token_label, "token label", detail, detail_cap)) != MS_OK ||
            (err = check_text(p->key_label, "key label", detail, detail_cap)) != MS_OK)
            return err;
        if (p->pin == NULL && p->pin_len != 0)
            return MS_ERR_ARG;
        err = ms_rng_fill(NULL, kek, sizeof kek);
        if (err != MS_OK)
            goto out;
        ms_p11_target t = {p->module, p->token_label, p->pin, p->pin_len, p->key_label};
        plen += put_text(params + plen, p->module);
        plen += put_text(params + plen, p->token_label);
        plen += put_text(params + plen, p->key_label);
        err = ms_p11_wrap_kek(params + plen, &t, 1, kek, seal_id, sizeof seal_id, detail,
                              detail_cap);
        if (err != MS_OK)
            goto out;
        plen += MS_P11_WRAPPED_LEN;
        break;
    }
    default:
        ms_detail_set(detail, detail_cap, "unknown seal method %d", (int)p->method);
        return MS_ERR_ARG;
    }

    memcpy(head, SEAL_MAGIC, SEAL_MAGIC_LEN);
    head[8] = SEAL_VERSION;
    head[9] = (uint8_t)p->method;
    memcpy(head + 10, seal_id, sizeof seal_id);
    ms_store_be16(head + 26, (unsigned)plen);
    uint8_t *nonce = params + plen;
    err = ms_rng_fill(NULL, nonce, SEAL_NONCE);
    if (err != MS_OK)
        goto out;
    ms_store_be32(nonce + SEAL_NONCE, (uint32_t)clen);
    size_t hlen = SEAL_FIXED_HEAD + plen + SEAL_NONCE + 4;
    if ((err = sha256(head + hlen, head, hlen)) != MS_OK)
        goto out;
    hlen += SEAL_HASH;

    size_t flen = hlen + clen + SEAL_TAG;
    plain = ms_secure_alloc(clen);
    file = malloc(flen);
    if (plain == NULL || file == NULL) {
        err = MS_ERR_NOMEM;
        goto out;
    }
    secrets_serialize(plain, s);
    memcpy(file, head, hlen);
    err = gcm(1, file + hlen, plain, clen, kek, nonce, head, hlen, file + hlen + clen);
    if (err != MS_OK)
        goto out;
    err = ms_file_write_atomic(path, file, flen, 0600, MS_FILE_REPLACE, detail, detail_cap);
    if (err != MS_OK)
        goto out;
    if (p->method == MS_SEAL_SHARES) {
        /* Hand out the shares only once the file that needs them is on disk. */
        for (unsigned i = 0; i < p->n; i++) {
            encode_share(shares[i], seal_id, p->k, p->n,
                         share_xy + (size_t)i * (1 + MS_KMS_KEY_BYTES));
            share_len[i] = MS_KMS_SHARE_LEN;
        }
    }
out:
    ms_wipe(kek, sizeof kek);
    ms_secure_free(share_xy, share_xy_len);
    ms_secure_free(plain, clen);
    free(file);
    return err;
}

/* ---- reading ---------------------------------------------------------------------------- */

struct ms_unseal {
    uint8_t *file;
    size_t file_len;
    size_t head_len; /* associated data: [0, head_len) */
    const uint8_t *nonce, *ct, *tag;
    size_t ct_len;
    ms_seal_method method;
    uint8_t seal_id[MS_KMS_SEAL_ID_BYTES];
    /* passphrase */
    uint8_t salt[SALT_LEN];
    unsigned log2n;
    uint32_t r, p;
    uint8_t check[SEAL_HASH];
    /* shares */
    unsigned k, n, have;
    uint8_t share_hash[MAX_SHARES][SEAL_HASH];
    uint8_t have_x[MAX_SHARES + 1];
    uint8_t *collected; /* k * 33 (x || y), locked */
    /* PKCS#11 */
    char module[MAX_TEXT + 1], token[MAX_TEXT + 1], key_label[MAX_TEXT + 1];
    uint8_t wrapped[MS_P11_WRAPPED_LEN];
    char detail[256]; /* ms_unseal_detail: why the last call failed */
};

static ms_err bad_file(char *detail, size_t cap, const char *path, const char *why)
{
    ms_detail_set(detail, cap, "sealed file %s: %s", path, why);
    return MS_ERR_SEALED_FILE;
}

static ms_err read_file(const char *path, uint8_t **out, size_t *out_len, char *detail, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        ms_detail_set(detail, cap, "cannot open sealed file %s: %s", path, strerror(errno));
        return MS_ERR_SEALED_FILE;
    }
    uint8_t *buf = malloc(SEAL_MAX_FILE + 1);
    size_t len = 0;
    if (buf == NULL) {
        close(fd);
        return MS_ERR_NOMEM;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, SEAL_MAX_FILE + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ms_detail_set(detail, cap, "cannot read sealed file %s: %s", path, strerror(errno));
            close(fd);
            free(buf);
            return MS_ERR_SEALED_FILE;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > SEAL_MAX_FILE) {
            close(fd);
            free(buf);
            return bad_file(detail, cap, path, "too large to be a sealed file");
        }
    }
    close(fd);
    *out = buf;
    *out_len = len;
    return MS_OK;
}

static int get_text(char *out, const uint8_t **p, const uint8_t *end)
{
    if (end - *p < 2)
        return 0;
    size_t n = ms_load_be16(*p);
    if (n == 0 || n > MAX_TEXT || (size_t)(end - *p - 2) < n || memchr(*p + 2, 0, n) != NULL)
        return 0;
    memcpy(out, *p + 2, n);
    out[n] = '\0';
    *p += 2 + n;
    return 1;
}

static ms_err parse_params(ms_unseal *u, const char *path, const uint8_t *p, size_t plen)
{
    const uint8_t *end = p + plen;
    switch (u->method) {
    case MS_SEAL_PASSPHRASE:
        if (plen != PASS_PARAMS_LEN)
            return bad_file(u->detail, sizeof u->detail, path,
                            "passphrase parameters have the wrong length");
        memcpy(u->salt, p, SALT_LEN);
        u->log2n = p[SALT_LEN];
        u->r = ms_load_be32(p + SALT_LEN + 1);
        u->p = ms_load_be32(p + SALT_LEN + 5);
        memcpy(u->check, p + SALT_LEN + 9, SEAL_HASH);
        /* Bounded so that a doctored header cannot make unseal ask for more than 1 GiB. */
        if (u->log2n < SCRYPT_MIN_LOG2N || u->log2n > SCRYPT_MAX_LOG2N || u->r < 1 ||
            u->r > 32 || u->p < 1 || u->p > 16 ||
            ((uint64_t)128 * u->r << u->log2n) > ((uint64_t)1 << 30))
            return bad_file(u->detail, sizeof u->detail, path, "scrypt parameters out of range");
        return MS_OK;
    case MS_SEAL_SHARES:
        if (plen < 2)
            return bad_file(u->detail, sizeof u->detail, path, "share parameters truncated");
        u->k = p[0];
        u->n = p[1];
        if (u->k < 1 || u->n < u->k || u->n > MAX_SHARES)
            return bad_file(u->detail, sizeof u->detail, path, "share counts k, n out of range");
        if (plen != 2 + (size_t)u->n * SEAL_HASH)
            return bad_file(u->detail, sizeof u->detail, path,
                            "share parameters have the wrong length");
        memcpy(u->share_hash, p + 2, (size_t)u->n * SEAL_HASH);
        return MS_OK;
    case MS_SEAL_PKCS11:
        if (!get_text(u->module, &p, end) || !get_text(u->token, &p, end) ||
            !get_text(u->key_label, &p, end))
            return bad_file(u->detail, sizeof u->detail, path, "PKCS#11 parameters malformed");
        if ((size_t)(end - p) != MS_P11_WRAPPED_LEN)
            return bad_file(u->detail, sizeof u->detail, path,
                            "PKCS#11 wrapped key has the wrong length");
        memcpy(u->wrapped, p, MS_P11_WRAPPED_LEN);
        return MS_OK;
    }
    return bad_file(u->detail, sizeof u->detail, path, "unknown seal method");
}

ms_err ms_unseal_open(ms_unseal **out, const char *path, char *detail, size_t detail_cap)
{
    ms_detail_set(detail, detail_cap, "%s", "");
    if (out == NULL || path == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    ms_unseal *u = calloc(1, sizeof *u);
    if (u == NULL)
        return MS_ERR_NOMEM;
    ms_err err = read_file(path, &u->file, &u->file_len, detail, detail_cap);
    if (err != MS_OK) {
        free(u);
        return err;
    }
    const uint8_t *f = u->file;
    size_t flen = u->file_len;
    if (flen < SEAL_MAGIC_LEN || memcmp(f, SEAL_MAGIC, SEAL_MAGIC_LEN) != 0) {
        err = bad_file(u->detail, sizeof u->detail, path,
                       flen < SEAL_MAGIC_LEN ? "truncated (no magic)"
                                             : "bad magic: not a sealed KMS file");
        goto fail;
    }
    if (flen < SEAL_FIXED_HEAD) {
        err = bad_file(u->detail, sizeof u->detail, path, "truncated in the header");
        goto fail;
    }
    if (f[8] != SEAL_VERSION) {
        err = bad_file(u->detail, sizeof u->detail, path, "unknown format version");
        goto fail;
    }
    size_t plen = ms_load_be16(f + 26);
    if (plen > SEAL_MAX_PARAMS) {
        err = bad_file(u->detail, sizeof u->detail, path, "method parameters too long");
        goto fail;
    }
    size_t hlen = SEAL_FIXED_HEAD + plen + SEAL_NONCE + 4;
    if (flen < hlen + SEAL_HASH) {
        err = bad_file(u->detail, sizeof u->detail, path, "truncated in the header");
        goto fail;
    }
    uint8_t h[SEAL_HASH];
    if ((err = sha256(h, f, hlen)) != MS_OK)
        goto fail;
    if (memcmp(h, f + hlen, SEAL_HASH) != 0) {
        err = bad_file(u->detail, sizeof u->detail, path,
                       "header checksum mismatch: the header is damaged");
        goto fail;
    }
    u->method = (ms_seal_method)f[9];
    if (u->method != MS_SEAL_PASSPHRASE && u->method != MS_SEAL_SHARES &&
        u->method != MS_SEAL_PKCS11) {
        err = bad_file(u->detail, sizeof u->detail, path, "unknown seal method");
        goto fail;
    }
    memcpy(u->seal_id, f + 10, MS_KMS_SEAL_ID_BYTES);
    if ((err = parse_params(u, path, f + SEAL_FIXED_HEAD, plen)) != MS_OK)
        goto fail;
    u->nonce = f + SEAL_FIXED_HEAD + plen;
    u->ct_len = ms_load_be32(u->nonce + SEAL_NONCE);
    u->head_len = hlen + SEAL_HASH;
    if (u->ct_len < secrets_len(1) || u->ct_len > secrets_len(MS_KMS_MAX_GENERATIONS)) {
        err = bad_file(u->detail, sizeof u->detail, path, "sealed secrets length out of range");
        goto fail;
    }
    if (flen < u->head_len + u->ct_len + SEAL_TAG) {
        err = bad_file(u->detail, sizeof u->detail, path, "truncated in the sealed secrets");
        goto fail;
    }
    if (flen > u->head_len + u->ct_len + SEAL_TAG) {
        err = bad_file(u->detail, sizeof u->detail, path, "trailing data after the tag");
        goto fail;
    }
    u->ct = f + u->head_len;
    u->tag = u->ct + u->ct_len;
    if (u->method == MS_SEAL_SHARES) {
        u->collected = ms_secure_alloc((size_t)u->k * (1 + MS_KMS_KEY_BYTES));
        if (u->collected == NULL) {
            err = MS_ERR_NOMEM;
            goto fail;
        }
    }
    *out = u;
    return MS_OK;
fail:
    ms_detail_set(detail, detail_cap, "%s", u->detail);
    ms_unseal_free(u);
    return err;
}

const char *ms_unseal_detail(const ms_unseal *u)
{
    return u != NULL ? u->detail : "";
}

void ms_unseal_free(ms_unseal *u)
{
    if (u == NULL)
        return;
    ms_secure_free(u->collected, (size_t)u->k * (1 + MS_KMS_KEY_BYTES));
    free(u->file);
    ms_wipe(u, sizeof *u);
    free(u);
}

ms_seal_method ms_unseal_method(const ms_unseal *u)
{
    return u != NULL ? u->method : (ms_seal_method)0;
}

void ms_unseal_progress(const ms_unseal *u, unsigned *have, unsigned *need)
{
    unsigned h = 0, nd = 0;
    if (u != NULL && u->method == MS_SEAL_SHARES) {
        h = u->have;
        nd = u->k;
    }
    if (have != NULL)
        *have = h;
    if (need != NULL)
        *need = nd;
}

/* Decrypt the body with kek into fresh locked secrets. A failing tag is file damage
 * here (the KEK was checked before): the callers know their method. */
static ms_err open_body(ms_unseal *u, ms_kms_secrets **out, const uint8_t kek[MS_KMS_KEY_BYTES],
                        const char *how)
{
    uint8_t *plain = ms_secure_alloc(u->ct_len);
    if (plain == NULL)
        return MS_ERR_NOMEM;
    uint8_t tag[SEAL_TAG];
    memcpy(tag, u->tag, sizeof tag);
    ms_err err = gcm(0, plain, u->ct, u->ct_len, kek, u->nonce, u->file, u->head_len, tag);
    if (err == MS_ERR_INVALID) {
        ms_detail_set(u->detail, sizeof u->detail,
                      "sealed secrets fail authentication with the %s: the file is damaged",
                      how);
        err = MS_ERR_SEALED_FILE;
    }
    ms_kms_secrets *s = NULL;
    if (err == MS_OK)
        err = ms_kms_secrets_new(&s);
    if (err == MS_OK)
        err = secrets_parse(s, plain, u->ct_len, u->detail, sizeof u->detail);
    ms_secure_free(plain, u->ct_len);
    if (err != MS_OK) {
        ms_kms_secrets_free(s);
        return err;
    }
    *out = s;
    return MS_OK;
}

static ms_err wrong_method(ms_unseal *u, ms_seal_method want)
{
    static const char *const names[] = {"?", "a passphrase", "custodian shares", "a PKCS#11 token"};
    ms_detail_set(u->detail, sizeof u->detail, "this file is sealed with %s, not %s",
                  names[u->method], names[want]);
    return MS_ERR_ARG;
}

ms_err ms_unseal_passphrase(ms_unseal *u, ms_kms_secrets **out, const uint8_t *pass, size_t len)
{
    if (u != NULL)
        u->detail[0] = '\0';
    if (u == NULL || out == NULL || (pass == NULL && len != 0))
        return MS_ERR_ARG;
    *out = NULL;
    if (u->method != MS_SEAL_PASSPHRASE)
        return wrong_method(u, MS_SEAL_PASSPHRASE);
    uint8_t derived[64], check[SEAL_HASH];
    ms_err err = scrypt64(derived, pass, len, u->salt, u->log2n, u->r, u->p, u->detail,
                          sizeof u->detail);
    if (err == MS_OK)
        err = sha256(check, derived + 32, 32);
    if (err == MS_OK && CRYPTO_memcmp(check, u->check, SEAL_HASH) != 0) {
        ms_detail_set(u->detail, sizeof u->detail, "wrong passphrase");
        err = MS_ERR_PASSPHRASE;
    }
    if (err == MS_OK)
        err = open_body(u, out, derived, "passphrase");
    ms_wipe(derived, sizeof derived);
    return err;
}

ms_err ms_unseal_share(ms_unseal *u, ms_kms_secrets **out, const uint8_t *share, size_t len)
{
    if (u != NULL)
        u->detail[0] = '\0';
    if (u == NULL || out == NULL || share == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    if (u->method != MS_SEAL_SHARES)
        return wrong_method(u, MS_SEAL_SHARES);
    if (len != MS_KMS_SHARE_LEN || memcmp(share, SHARE_TAG, 4) != 0 ||
        share[4] != SHARE_VERSION) {
        ms_detail_set(u->detail, sizeof u->detail,
                      "not a custodian share (wrong length, tag or version)");
        return MS_ERR_SHARE;
    }
    uint8_t h[SEAL_HASH];
    ms_err err = sha256(h, share, len);
    if (err != MS_OK)
        return err;
    unsigned idx = 0; /* 1-based index of the matching hash */
    for (unsigned i = 0; i < u->n; i++)
        if (memcmp(h, u->share_hash[i], SEAL_HASH) == 0) /* hashes are public */
            idx = i + 1;
    if (idx == 0) {
        if (memcmp(share + 5, u->seal_id, MS_KMS_SEAL_ID_BYTES) != 0)
            ms_detail_set(u->detail, sizeof u->detail,
                          "share is from another KMS (its seal id differs)");
        else
            ms_detail_set(u->detail, sizeof u->detail,
                          "share %u is corrupted: its SHA-256 is not in the sealed file",
                          (unsigned)share[23]);
        return MS_ERR_SHARE;
    }
    unsigned x = share[23];
    if (x != idx) { /* cannot happen unless SHA-256 collides: the hash covers x */
        ms_detail_set(u->detail, sizeof u->detail, "share index %u does not match its slot %u",
                      x, idx);
        return MS_ERR_SHARE;
    }
    if (u->have_x[x]) {
        ms_detail_set(u->detail, sizeof u->detail, "share %u was already entered", x);
        return MS_ERR_SHARE;
    }
    if (u->have >= u->k) {
        ms_detail_set(u->detail, sizeof u->detail, "%u shares were already entered", u->k);
        return MS_ERR_ARG;
    }
    memcpy(u->collected + (size_t)u->have * (1 + MS_KMS_KEY_BYTES), share + 23,
           1 + MS_KMS_KEY_BYTES);
    u->have_x[x] = 1;
    u->have++;
    if (u->have < u->k)
        return MS_OK;
    uint8_t kek[MS_KMS_KEY_BYTES];
    err = ms_shamir_combine(kek, sizeof kek, u->collected, u->k);
    if (err == MS_OK)
        err = open_body(u, out, kek, "custodian shares");
    ms_wipe(kek, sizeof kek);
    if (err == MS_OK) {
        /* The shares did their job: forget them. */
        ms_wipe(u->collected, (size_t)u->k * (1 + MS_KMS_KEY_BYTES));
        memset(u->have_x, 0, sizeof u->have_x);
        u->have = 0;
    }
    return err;
}

ms_err ms_unseal_pkcs11(ms_unseal *u, ms_kms_secrets **out, const uint8_t *pin, size_t len)
{
    if (u != NULL)
        u->detail[0] = '\0';
    if (u == NULL || out == NULL || (pin == NULL && len != 0))
        return MS_ERR_ARG;
    *out = NULL;
    if (u->method != MS_SEAL_PKCS11)
        return wrong_method(u, MS_SEAL_PKCS11);
    ms_p11_target t = {u->module, u->token, pin, len, u->key_label};
    uint8_t kek[MS_KMS_KEY_BYTES];
    ms_err err = ms_p11_unwrap_kek(kek, &t, u->wrapped, u->seal_id, sizeof u->seal_id, u->detail,
                                   sizeof u->detail);
    if (err == MS_OK)
        err = open_body(u, out, kek, "PKCS#11 key");
    ms_wipe(kek, sizeof kek);
    return err;
}

void ms_unseal_params(const ms_unseal *u, ms_seal_params *p)
{
    memset(p, 0, sizeof *p);
    if (u == NULL)
        return;
    p->method = u->method;
    switch (u->method) {
    case MS_SEAL_PASSPHRASE:
        p->scrypt_log2_n = u->log2n;
        break;
    case MS_SEAL_SHARES:
        p->k = u->k;
        p->n = u->n;
        break;
    case MS_SEAL_PKCS11:
        p->module = u->module;
        p->token_label = u->token;
        p->key_label = u->key_label;
        break;
    }
}
