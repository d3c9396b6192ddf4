/*
 * KMS roles: Ed25519 role keys, signed request texts and approvals (src/kms/roles.h).
 */
#include "kms/roles.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto/rng.h"
#include "kmsif/kmsif.h"
#include "util/detail.h"
#include "util/file.h"
#include "util/hex.h"


/* ---- keys and signatures ------------------------------------------------------------------- */

ms_err ms_role_public(const uint8_t seed[MS_ROLE_KEY_BYTES], uint8_t pub[MS_ROLE_KEY_BYTES])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, MS_ROLE_KEY_BYTES);
    size_t n = MS_ROLE_KEY_BYTES;
    int ok = k != NULL && EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 && n == MS_ROLE_KEY_BYTES;
    EVP_PKEY_free(k);
    return ok ? MS_OK : MS_ERR_INTERNAL;
}

ms_err ms_role_keygen(uint8_t seed[MS_ROLE_KEY_BYTES], uint8_t pub[MS_ROLE_KEY_BYTES],
                      const ms_rng *rng)
{
    if (seed == NULL || pub == NULL)
        return MS_ERR_ARG;
    ms_err e = ms_rng_fill(rng, seed, MS_ROLE_KEY_BYTES);
    if (e == MS_OK)
        e = ms_role_public(seed, pub);
    if (e != MS_OK)
        OPENSSL_cleanse(seed, MS_ROLE_KEY_BYTES);
    return e;
}

/* context || 0x00 || text, the octets every role signature covers. */
static unsigned char *signed_octets(const char *context, const char *text, size_t len,
                                    size_t *out_len)
{
    size_t cl = strlen(context);
    unsigned char *m = OPENSSL_malloc(cl + 1 + len + 1);
    if (m == NULL)
        return NULL;
    memcpy(m, context, cl);
    m[cl] = 0;
    memcpy(m + cl + 1, text, len);
    *out_len = cl + 1 + len;
    return m;
}

ms_err ms_role_sign(const uint8_t seed[MS_ROLE_KEY_BYTES], const char *context,
                    const char *text, size_t len, uint8_t sig[MS_ROLE_SIG_BYTES])
{
    if (seed == NULL || context == NULL || text == NULL || sig == NULL)
        return MS_ERR_ARG;
    size_t ml = 0;
    unsigned char *m = signed_octets(context, text, len, &ml);
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, MS_ROLE_KEY_BYTES);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    size_t sl = MS_ROLE_SIG_BYTES;
    int ok = m != NULL && k != NULL && c != NULL &&
             EVP_DigestSignInit(c, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestSign(c, sig, &sl, m, ml) == 1 && sl == MS_ROLE_SIG_BYTES;
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    OPENSSL_free(m);
    return ok ? MS_OK : MS_ERR_INTERNAL;
}

ms_err ms_role_verify(const uint8_t pub[MS_ROLE_KEY_BYTES], const char *context,
                      const char *text, size_t len, const uint8_t sig[MS_ROLE_SIG_BYTES])
{
    if (pub == NULL || context == NULL || text == NULL || sig == NULL)
        return MS_ERR_ARG;
    size_t ml = 0;
    unsigned char *m = signed_octets(context, text, len, &ml);
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, MS_ROLE_KEY_BYTES);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = m != NULL && k != NULL && c != NULL &&
             EVP_DigestVerifyInit(c, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestVerify(c, sig, MS_ROLE_SIG_BYTES, m, ml) == 1;
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    OPENSSL_free(m);
    return ok ? MS_OK : MS_ERR_SIGNATURE;
}

/* ---- hex and key files ----------------------------------------------------------------------- */

void ms_role_hex_line(char out[2 * MS_ROLE_KEY_BYTES + 2], const uint8_t key[MS_ROLE_KEY_BYTES])
{
    ms_hex_encode_lower(out, key, MS_ROLE_KEY_BYTES);
    out[2 * MS_ROLE_KEY_BYTES] = '\n';
    out[2 * MS_ROLE_KEY_BYTES + 1] = '\0';
}

ms_err ms_role_key_read(const char *path, uint8_t seed[MS_ROLE_KEY_BYTES], char *detail,
                        size_t cap)
{
    return ms_file_read_hex_key(path, true, seed, MS_ROLE_KEY_BYTES, "role key", detail, cap);
}

ms_err ms_role_pub_read(const char *path, uint8_t pub[MS_ROLE_KEY_BYTES], char *detail,
                        size_t cap)
{
    return ms_file_read_hex_key(path, false, pub, MS_ROLE_KEY_BYTES, "role key", detail, cap);
}

/* ---- request texts ----------------------------------------------------------------------- */

static bool key_ok(const char *k, size_t n)
{
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((k[i] >= 'a' && k[i] <= 'z') || k[i] == '_'))
            return false;
    return true;
}

/* No control characters (so no line can be added through a value). */
static bool value_ok(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

ms_err ms_request_start(char *buf, size_t cap, size_t *len)
{
    size_t h = strlen(MS_REQUEST_HEADER);
    if (buf == NULL || len == NULL)
        return MS_ERR_ARG;
    if (cap < h + 1)
        return MS_ERR_BUFFER_TOO_SMALL;
    memcpy(buf, MS_REQUEST_HEADER, h + 1);
    *len = h;
    return MS_OK;
}

ms_err ms_request_add(char *buf, size_t cap, size_t *len, const char *key, const char *value)
{
    if (buf == NULL || len == NULL || key == NULL || value == NULL)
        return MS_ERR_ARG;
    size_t kl = strlen(key), vl = strlen(value);
    if (!key_ok(key, kl) || !value_ok(value, vl))
        return MS_ERR_ARG;
    char probe[64];
    if (ms_request_get(buf, *len, key, probe, sizeof probe) != MS_ERR_ARG)
        return MS_ERR_ARG; /* keys are unique */
    if (*len + kl + 1 + vl + 1 + 1 > cap || *len + kl + vl + 2 > MS_REQUEST_MAX)
        return MS_ERR_BUFFER_TOO_SMALL;
    char *p = buf + *len;
    memcpy(p, key, kl);
    p[kl] = '=';
    memcpy(p + kl + 1, value, vl);
    p[kl + 1 + vl] = '\n';
    p[kl + 2 + vl] = '\0';
    *len += kl + vl + 2;
    return MS_OK;
}

ms_err ms_request_add_nonce(char *buf, size_t cap, size_t *len, uint64_t expires,
                            const ms_rng *rng)
{
    uint8_t n[MS_REQUEST_NONCE_BYTES];
    char hex[2 * MS_REQUEST_NONCE_BYTES + 1], t[24];
    ms_err e = ms_rng_fill(rng, n, sizeof n);
    if (e != MS_OK)
        return e;
    ms_hex_encode_lower(hex, n, sizeof n);
    snprintf(t, sizeof t, "%llu", (unsigned long long)expires);
    if ((e = ms_request_add(buf, cap, len, "nonce", hex)) != MS_OK)
        return e;
    return ms_request_add(buf, cap, len, "expires", t);
}

/* Walks the lines after the header; each is checked. cb may be NULL (check only). */
static ms_err walk(const char *text, size_t len,
                   int (*cb)(void *ctx, const char *key, size_t kl, const char *v, size_t vl),
                   void *ctx)
{
    size_t h = strlen(MS_REQUEST_HEADER);
    if (text == NULL || len < h || len > MS_REQUEST_MAX || memcmp(text, MS_REQUEST_HEADER, h) != 0)
        return MS_ERR_ARG;
    size_t off = h;
    while (off < len) {
        const char *line = text + off;
        const char *nl = memchr(line, '\n', len - off);
        if (nl == NULL)
            return MS_ERR_ARG; /* every line ends in a newline */
        size_t ll = (size_t)(nl - line);
        const char *eq = memchr(line, '=', ll);
        if (eq == NULL)
            return MS_ERR_ARG;
        size_t kl = (size_t)(eq - line);
        if (!key_ok(line, kl) || !value_ok(eq + 1, ll - kl - 1))
            return MS_ERR_ARG;
        if (cb != NULL && cb(ctx, line, kl, eq + 1, ll - kl - 1) != 0)
            return MS_OK;
        off += ll + 1;
    }
    return MS_OK;
}

struct find {
    const char *key;
    size_t kl;
    const char *v;
    size_t vl;
    unsigned count;
};

static int find_cb(void *ctx, const char *key, size_t kl, const char *v, size_t vl)
{
    struct find *f = ctx;
    if (kl == f->kl && memcmp(key, f->key, kl) == 0) {
        if (f->count++ == 0) {
            f->v = v;
            f->vl = vl;
        }
    }
    return 0;
}

struct dup_check {
    const char *text;
    size_t len;
    bool dup;
};

static int dup_cb(void *ctx, const char *key, size_t kl, const char *v, size_t vl)
{
    (void)v;
    (void)vl;
    struct dup_check *d = ctx;
    char k[33];
    memcpy(k, key, kl);
    k[kl] = '\0';
    struct find f = {k, kl, NULL, 0, 0};
    (void)walk(d->text, d->len, find_cb, &f);
    if (f.count != 1) {
        d->dup = true;
        return 1;
    }
    return 0;
}

ms_err ms_request_check(const char *text, size_t len)
{
    ms_err e = walk(text, len, NULL, NULL);
    if (e != MS_OK)
        return e;
    if (memchr(text, '\0', len) != NULL)
        return MS_ERR_ARG;
    struct dup_check d = {text, len, false};
    (void)walk(text, len, dup_cb, &d);
    return d.dup ? MS_ERR_ARG : MS_OK;
}

ms_err ms_request_get(const char *text, size_t len, const char *key, char *out, size_t cap)
{
    if (key == NULL || out == NULL || cap == 0)
        return MS_ERR_ARG;
    struct find f = {key, strlen(key), NULL, 0, 0};
    ms_err e = walk(text, len, find_cb, &f);
    if (e != MS_OK || f.count != 1)
        return MS_ERR_ARG;
    if (f.vl >= cap)
        return MS_ERR_BUFFER_TOO_SMALL;
    memcpy(out, f.v, f.vl);
    out[f.vl] = '\0';
    return MS_OK;
}

struct each {
    int (*cb)(void *ctx, const char *key, const char *value);
    void *ctx;
    char buf[MS_REQUEST_MAX + 1];
};

static int each_cb(void *ctx, const char *key, size_t kl, const char *v, size_t vl)
{
    struct each *x = ctx;
    memcpy(x->buf, key, kl);
    x->buf[kl] = '\0';
    memcpy(x->buf + kl + 1, v, vl);
    x->buf[kl + 1 + vl] = '\0';
    return x->cb(x->ctx, x->buf, x->buf + kl + 1);
}

ms_err ms_request_each(const char *text, size_t len,
                       int (*cb)(void *ctx, const char *key, const char *value), void *ctx)
{
    if (cb == NULL)
        return MS_ERR_ARG;
    struct each *x = OPENSSL_malloc(sizeof *x);
    if (x == NULL)
        return MS_ERR_NOMEM;
    x->cb = cb;
    x->ctx = ctx;
    ms_err e = walk(text, len, each_cb, x);
    OPENSSL_cleanse(x, sizeof *x);
    OPENSSL_free(x);
    return e;
}

/* ---- approvals ------------------------------------------------------------------------------- */

ms_err ms_approval_sign(const uint8_t seed[MS_ROLE_KEY_BYTES], const char *req, size_t len,
                        ms_approval *a)
{
    if (a == NULL || ms_request_check(req, len) != MS_OK)
        return MS_ERR_ARG;
    memset(a, 0, sizeof *a);
    a->kind = MS_APPROVAL_KEY;
    ms_err e = ms_role_public(seed, a->pub);
    if (e == MS_OK)
        e = ms_role_sign(seed, MS_ROLE_CTX_APPROVAL, req, len, a->sig);
    return e;
}

static ms_err device_mac(const uint8_t ink[32], const char *req, size_t len, uint8_t mac[32])
{
    return ms_kmsif_device_approval(mac, ink, req, len);
}

static bool device_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ':' || c == '@'))
            return false;
    }
    return true;
}

ms_err ms_approval_device_mac(const uint8_t ink[32], const char *device_id, const char *req,
                              size_t len, ms_approval *a)
{
    if (ink == NULL || device_id == NULL || a == NULL || !device_id_ok(device_id) ||
        ms_request_check(req, len) != MS_OK)
        return MS_ERR_ARG;
    memset(a, 0, sizeof *a);
    a->kind = MS_APPROVAL_DEVICE;
    snprintf(a->device_id, sizeof a->device_id, "%s", device_id);
    return device_mac(ink, req, len, a->sig);
}

ms_err ms_approval_device_check(const uint8_t ink[32], const char *req, size_t len,
                                const ms_approval *a)
{
    if (ink == NULL || a == NULL || a->kind != MS_APPROVAL_DEVICE)
        return MS_ERR_ARG;
    uint8_t mac[32];
    ms_err e = device_mac(ink, req, len, mac);
    if (e == MS_OK && CRYPTO_memcmp(mac, a->sig, 32) != 0)
        e = MS_ERR_SIGNATURE;
    OPENSSL_cleanse(mac, sizeof mac);
    return e;
}

ms_err ms_approval_format(const ms_approval *a, char *out, size_t cap)
{
    if (a == NULL || out == NULL)
        return MS_ERR_ARG;
    char sig[2 * MS_ROLE_SIG_BYTES + 1], pub[2 * MS_ROLE_KEY_BYTES + 1];
    int n;
    if (a->kind == MS_APPROVAL_KEY) {
        ms_hex_encode_lower(pub, a->pub, sizeof a->pub);
        ms_hex_encode_lower(sig, a->sig, MS_ROLE_SIG_BYTES);
        n = snprintf(out, cap, "key %s %s\n", pub, sig);
    } else if (a->kind == MS_APPROVAL_DEVICE) {
        ms_hex_encode_lower(sig, a->sig, 32);
        n = snprintf(out, cap, "device %s %s\n", a->device_id, sig);
    } else {
        return MS_ERR_ARG;
    }
    return n > 0 && (size_t)n < cap ? MS_OK : MS_ERR_BUFFER_TOO_SMALL;
}

ms_err ms_approval_parse(const char *text, size_t len, ms_approval *a)
{
    if (text == NULL || a == NULL || len == 0 || len >= MS_APPROVAL_TEXT_MAX)
        return MS_ERR_ARG;
    char buf[MS_APPROVAL_TEXT_MAX];
    memcpy(buf, text, len);
    buf[len] = '\0';
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    if (strlen(buf) != len)
        return MS_ERR_ARG;
    memset(a, 0, sizeof *a);
    char *sp1 = strchr(buf, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || strchr(sp2 + 1, ' ') != NULL)
        return MS_ERR_ARG;
    *sp1 = *sp2 = '\0';
    if (strcmp(buf, "key") == 0) {
        a->kind = MS_APPROVAL_KEY;
        if (ms_hex_decode(a->pub, sizeof a->pub, sp1 + 1, strlen(sp1 + 1)) != MS_OK ||
            ms_hex_decode(a->sig, MS_ROLE_SIG_BYTES, sp2 + 1, strlen(sp2 + 1)) != MS_OK)
            return MS_ERR_ARG;
        return MS_OK;
    }
    if (strcmp(buf, "device") == 0 && device_id_ok(sp1 + 1)) {
        a->kind = MS_APPROVAL_DEVICE;
        snprintf(a->device_id, sizeof a->device_id, "%s", sp1 + 1);
        if (ms_hex_decode(a->sig, 32, sp2 + 1, strlen(sp2 + 1)) != MS_OK)
            return MS_ERR_ARG;
        return MS_OK;
    }
    return MS_ERR_ARG;
}
