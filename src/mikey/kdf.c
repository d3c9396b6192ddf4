/*
 * Key derivation: the MIKEY PRF (RFC 3830 4.1.2) and PRF-HMAC-SHA-256 (RFC 6043 6.1),
 * per-crypto-session keys (RFC 3830 4.1.3), the TS 33.220 Annex B KDF and its TS 33.180
 * uses (GUK-ID salt, DPCK).
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "mikeysakke/mikey.h"

#define MAX_MD 32           /* SHA-256 output; SHA-1 is 20 */
#define PRF_CHUNK 32        /* inkey split size: 256 bits for both PRFs */
#define MAX_RAND 255        /* RAND payload length is one octet */

/* An HMAC context bound to one digest; the key is given per call. */
typedef struct hmac {
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx;
    OSSL_PARAM params[2];
    size_t out_len;
} hmac;

static ms_err hmac_open(hmac *h, const char *digest, size_t out_len)
{
    memset(h, 0, sizeof *h);
    h->out_len = out_len;
    h->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (h->mac == NULL)
        return MS_ERR_INTERNAL;
    h->ctx = EVP_MAC_CTX_new(h->mac);
    if (h->ctx == NULL)
        return MS_ERR_NOMEM;
    h->params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0);
    h->params[1] = OSSL_PARAM_construct_end();
    return MS_OK;
}

static void hmac_close(hmac *h)
{
    EVP_MAC_CTX_free(h->ctx);
    EVP_MAC_free(h->mac);
}

/* out = HMAC(key, a || b); b may be empty. */
static ms_err hmac_run(hmac *h, uint8_t *out, const uint8_t *key, size_t key_len,
                       const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    size_t got = 0;
    /* OpenSSL wants a non-NULL key pointer even for an empty key. */
    static const uint8_t empty = 0;
    if (EVP_MAC_init(h->ctx, key_len > 0 ? key : &empty, key_len, h->params) != 1)
        return MS_ERR_INTERNAL;
    if (a_len > 0 && EVP_MAC_update(h->ctx, a, a_len) != 1)
        return MS_ERR_INTERNAL;
    if (b_len > 0 && EVP_MAC_update(h->ctx, b, b_len) != 1)
        return MS_ERR_INTERNAL;
    if (EVP_MAC_final(h->ctx, out, &got, MAX_MD) != 1 || got != h->out_len)
        return MS_ERR_INTERNAL;
    return MS_OK;
}

/* out ^= P(s, label, m), truncated to out_len (RFC 3830 4.1.2). */
static ms_err p_xor(hmac *h, uint8_t *out, size_t out_len, const uint8_t *s, size_t s_len,
                    const uint8_t *label, size_t label_len)
{
    uint8_t a[MAX_MD], block[MAX_MD];
    ms_err e = MS_OK;
    const uint8_t *prev = label; /* A_0 = label */
    size_t prev_len = label_len;
    for (size_t pos = 0; pos < out_len; pos += h->out_len) {
        e = hmac_run(h, a, s, s_len, prev, prev_len, NULL, 0); /* A_i = HMAC(s, A_i-1) */
        if (e != MS_OK)
            break;
        prev = a;
        prev_len = h->out_len;
        e = hmac_run(h, block, s, s_len, a, h->out_len, label, label_len);
        if (e != MS_OK)
            break;
        size_t n = out_len - pos < h->out_len ? out_len - pos : h->out_len;
        for (size_t i = 0; i < n; i++)
            out[pos + i] ^= block[i];
    }
    ms_wipe(a, sizeof a);
    ms_wipe(block, sizeof block);
    return e;
}

ms_err ms_mikey_prf(uint8_t prf, uint8_t *out, size_t out_len, const uint8_t *inkey,
                    size_t inkey_len, const uint8_t *label, size_t label_len)
{
    const char *digest;
    size_t block;
    if (prf == MS_MIKEY_PRF_MIKEY1) {
        digest = "SHA1";
        block = 20; /* 160-bit output blocks */
    } else if (prf == MS_MIKEY_PRF_HMAC_SHA256) {
        digest = "SHA256";
        block = 32; /* RFC 6043: 256 instead of 160 */
    } else {
        return MS_ERR_MIKEY_UNSUPPORTED;
    }
    if ((out == NULL && out_len > 0) || inkey == NULL || inkey_len == 0 ||
        (label == NULL && label_len > 0))
        return MS_ERR_ARG;
    if (out_len == 0)
        return MS_OK;

    hmac h;
    ms_err e = hmac_open(&h, digest, block);
    if (e == MS_OK) {
        memset(out, 0, out_len);
        /* Chunks s_1..s_n of 256 bits, the last possibly shorter; XOR of their P. */
        for (size_t off = 0; off < inkey_len && e == MS_OK; off += PRF_CHUNK) {
            size_t n = inkey_len - off < PRF_CHUNK ? inkey_len - off : PRF_CHUNK;
            e = p_xor(&h, out, out_len, inkey + off, n, label, label_len);
        }
    }
    hmac_close(&h);
    if (e != MS_OK)
        ms_wipe(out, out_len);
    return e;
}

ms_err ms_mikey_derive(uint8_t prf, uint8_t *out, size_t out_len, uint32_t constant,
                       const uint8_t *tgk, size_t tgk_len, uint8_t cs_id, uint32_t csb_id,
                       const uint8_t *rand, size_t rand_len)
{
    if (rand_len > MAX_RAND || (rand == NULL && rand_len > 0))
        return MS_ERR_ARG;
    /* label = constant || cs_id || csb_id || RAND (RFC 3830 4.1.3) */
    uint8_t label[9 + MAX_RAND];
    label[0] = (uint8_t)(constant >> 24);
    label[1] = (uint8_t)(constant >> 16);
    label[2] = (uint8_t)(constant >> 8);
    label[3] = (uint8_t)constant;
    label[4] = cs_id;
    label[5] = (uint8_t)(csb_id >> 24);
    label[6] = (uint8_t)(csb_id >> 16);
    label[7] = (uint8_t)(csb_id >> 8);
    label[8] = (uint8_t)csb_id;
    if (rand_len > 0)
        memcpy(label + 9, rand, rand_len);
    return ms_mikey_prf(prf, out, out_len, tgk, tgk_len, label, 9 + rand_len);
}

ms_err ms_kdf_3gpp(uint8_t out[32], const uint8_t *key, size_t key_len, uint8_t fc,
                   const ms_mikey_span *params, size_t n_params)
{
    if (out == NULL || (key == NULL && key_len > 0) || (params == NULL && n_params > 0))
        return MS_ERR_ARG;
    for (size_t i = 0; i < n_params; i++)
        if (params[i].len > 0xFFFF || (params[i].data == NULL && params[i].len > 0))
            return MS_ERR_ARG; /* Li is two octets */

    static const uint8_t empty = 0;
    ms_err ret = MS_ERR_INTERNAL;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM p[2] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                       OSSL_PARAM_construct_end()};
    size_t got = 0;
    if (ctx == NULL)
        goto done;
    if (EVP_MAC_init(ctx, key_len > 0 ? key : &empty, key_len, p) != 1 ||
        EVP_MAC_update(ctx, &fc, 1) != 1)
        goto done;
    /* S = FC || P0 || L0 || P1 || L1 ... (TS 33.220 B.2) */
    for (size_t i = 0; i < n_params; i++) {
        uint8_t l[2] = {(uint8_t)(params[i].len >> 8), (uint8_t)params[i].len};
        if (params[i].len > 0 && EVP_MAC_update(ctx, params[i].data, params[i].len) != 1)
            goto done;
        if (EVP_MAC_update(ctx, l, 2) != 1)
            goto done;
    }
    if (EVP_MAC_final(ctx, out, &got, 32) != 1 || got != 32)
        goto done;
    ret = MS_OK;
done:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    if (ret != MS_OK)
        ms_wipe(out, 32);
    return ret;
}

ms_err ms_guk_id(uint32_t *out, const uint8_t *gmk, size_t gmk_len, uint32_t key_id,
                 const char *user_uri)
{
    if (out == NULL || gmk == NULL || gmk_len == 0 || user_uri == NULL)
        return MS_ERR_ARG;
    size_t ulen = strlen(user_uri);
    if (ulen == 0 || ulen > 0xFFFF)
        return MS_ERR_IDENTITY;
    ms_mikey_span p0 = {(const uint8_t *)user_uri, ulen};
    uint8_t k[32];
    ms_err e = ms_kdf_3gpp(k, gmk, gmk_len, 0x50, &p0, 1); /* F.1.3 user salt */
    if (e != MS_OK)
        return e;
    /* Salt = the 28 least significant bits of the output. */
    uint32_t salt = ((uint32_t)k[28] << 24 | (uint32_t)k[29] << 16 | (uint32_t)k[30] << 8 |
                     (uint32_t)k[31]) & 0x0FFFFFFFu;
    ms_wipe(k, sizeof k);
    /* The purpose tag (top 4 bits) passes through unchanged. */
    *out = (key_id & 0xF0000000u) | ((key_id ^ salt) & 0x0FFFFFFFu);
    return MS_OK;
}

ms_err ms_dpck(uint8_t dpck[16], const uint8_t *key, size_t key_len, uint32_t dppk_id)
{
    if (dpck == NULL || key == NULL || key_len == 0)
        return MS_ERR_ARG;
    uint8_t id[4] = {(uint8_t)(dppk_id >> 24), (uint8_t)(dppk_id >> 16),
                     (uint8_t)(dppk_id >> 8), (uint8_t)dppk_id};
    ms_mikey_span p0 = {id, sizeof id};
    uint8_t k[32];
    ms_err e = ms_kdf_3gpp(k, key, key_len, 0x53, &p0, 1);
    if (e == MS_OK)
        memcpy(dpck, k + 16, 16); /* the 128 least significant bits */
    ms_wipe(k, sizeof k);
    return e;
}
