/*
 * HPKE base mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-128-GCM (src/net/hpke.h),
 * written from RFC 9180 sections 4, 4.1, 5.1, 5.1.1, 5.2, 5.3, 7.1.3 and 7.1.4.
 */
#include "net/hpke.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "crypto/rng.h"

#define KEM_ID 0x0020
#define KDF_ID 0x0001
#define AEAD_ID 0x0001
#define MODE_BASE 0x00
#define VERSION_LABEL "HPKE-v1"
#define SUITE_KEM_LEN 5   /* "KEM" || kem_id */
#define SUITE_HPKE_LEN 10 /* "HPKE" || kem_id || kdf_id || aead_id */
#define NH 32
#define MAX_PARTS 8

static const uint8_t suite_kem[SUITE_KEM_LEN] = {'K', 'E', 'M', KEM_ID >> 8, KEM_ID & 0xff};
static const uint8_t suite_hpke[SUITE_HPKE_LEN] = {'H', 'P', 'K', 'E', KEM_ID >> 8, KEM_ID & 0xff,
                                                   KDF_ID >> 8, KDF_ID & 0xff, AEAD_ID >> 8,
                                                   AEAD_ID & 0xff};

typedef struct part {
    const uint8_t *p;
    size_t n;
} part;

/* HMAC-SHA256(key, concat(parts)). An empty key is HKDF's default salt (Nh zeros): the
 * same HMAC key once padded. */
static ms_err hmac(const uint8_t *key, size_t key_len, const part *parts, size_t n_parts,
                   uint8_t out[NH])
{
    static const uint8_t zero_key[NH] = {0};
    if (key_len == 0) {
        key = zero_key;
        key_len = NH;
    }
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end()};
    size_t got = 0;
    int ok = c != NULL && EVP_MAC_init(c, key, key_len, params) == 1;
    for (size_t i = 0; ok && i < n_parts; i++)
        if (parts[i].n != 0)
            ok = EVP_MAC_update(c, parts[i].p, parts[i].n) == 1;
    ok = ok && EVP_MAC_final(c, out, &got, NH) == 1 && got == NH;
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(mac);
    if (!ok) {
        ERR_clear_error();
        OPENSSL_cleanse(out, NH);
        return MS_ERR_INTERNAL;
    }
    return MS_OK;
}

/* LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" || suite_id || label || ikm). */
static ms_err labeled_extract(const uint8_t *suite, size_t suite_len, const uint8_t *salt,
                              size_t salt_len, const char *label, const uint8_t *ikm,
                              size_t ikm_len, uint8_t prk[NH])
{
    part parts[] = {{(const uint8_t *)VERSION_LABEL, sizeof VERSION_LABEL - 1},
                    {suite, suite_len},
                    {(const uint8_t *)label, strlen(label)},
                    {ikm, ikm_len}};
    return hmac(salt, salt_len, parts, 4, prk);
}

/* LabeledExpand(prk, label, info, L) = Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id ||
 * label || info, L); Expand is HKDF-Expand: T(i) = HMAC(prk, T(i-1) || info' || i). */
static ms_err labeled_expand(const uint8_t *suite, size_t suite_len, const uint8_t prk[NH],
                             const char *label, const uint8_t *info, size_t info_len,
                             uint8_t *out, size_t out_len)
{
    if (out_len == 0 || out_len > 255 * NH)
        return MS_ERR_ARG;
    uint8_t len2[2] = {(uint8_t)(out_len >> 8), (uint8_t)out_len};
    uint8_t t[NH];
    size_t t_len = 0, done = 0;
    ms_err e = MS_OK;
    for (uint8_t i = 1; done < out_len; i++) {
        part parts[] = {{t, t_len},
                        {len2, 2},
                        {(const uint8_t *)VERSION_LABEL, sizeof VERSION_LABEL - 1},
                        {suite, suite_len},
                        {(const uint8_t *)label, strlen(label)},
                        {info, info_len},
                        {&i, 1}};
        e = hmac(prk, NH, parts, 7, t);
        if (e != MS_OK)
            break;
        t_len = NH;
        size_t take = out_len - done < NH ? out_len - done : NH;
        memcpy(out + done, t, take);
        done += take;
    }
    OPENSSL_cleanse(t, sizeof t);
    if (e != MS_OK)
        OPENSSL_cleanse(out, out_len);
    return e;
}

/* ---- X25519 ------------------------------------------------------------------------------ */

ms_err ms_hpke_public(const uint8_t sk[MS_HPKE_SK_BYTES], uint8_t pk[MS_HPKE_PK_BYTES])
{
    if (sk == NULL || pk == NULL)
        return MS_ERR_ARG;
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk, MS_HPKE_SK_BYTES);
    size_t n = MS_HPKE_PK_BYTES;
    int ok = k != NULL && EVP_PKEY_get_raw_public_key(k, pk, &n) == 1 && n == MS_HPKE_PK_BYTES;
    EVP_PKEY_free(k);
    if (!ok) {
        ERR_clear_error();
        return MS_ERR_INTERNAL;
    }
    return MS_OK;
}

/* DH(sk, pk): MS_ERR_INVALID when the result is all zeros (a low-order public key,
 * RFC 9180 7.1.4); OpenSSL refuses those itself, the check here does not rely on it. */
static ms_err dh(const uint8_t sk[MS_HPKE_SK_BYTES], const uint8_t pk[MS_HPKE_PK_BYTES],
                 uint8_t out[32])
{
    EVP_PKEY *mine = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk, MS_HPKE_SK_BYTES);
    EVP_PKEY *theirs = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pk, MS_HPKE_PK_BYTES);
    EVP_PKEY_CTX *c = mine != NULL ? EVP_PKEY_CTX_new_from_pkey(NULL, mine, NULL) : NULL;
    size_t n = 32;
    ms_err e = MS_OK;
    if (mine == NULL || theirs == NULL || c == NULL || EVP_PKEY_derive_init(c) != 1) {
        e = MS_ERR_INTERNAL;
    } else if (EVP_PKEY_derive_set_peer(c, theirs) != 1 || EVP_PKEY_derive(c, out, &n) != 1 ||
               n != 32) {
        e = MS_ERR_INVALID;
    } else {
        uint8_t acc = 0;
        for (size_t i = 0; i < 32; i++)
            acc |= out[i];
        if (acc == 0)
            e = MS_ERR_INVALID;
    }
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(theirs);
    EVP_PKEY_free(mine);
    ERR_clear_error();
    if (e != MS_OK)
        OPENSSL_cleanse(out, 32);
    return e;
}

ms_err ms_hpke_derive_keypair(const uint8_t *ikm, size_t ikm_len, uint8_t sk[MS_HPKE_SK_BYTES],
                              uint8_t pk[MS_HPKE_PK_BYTES])
{
    if (ikm == NULL || sk == NULL || pk == NULL || ikm_len > MS_HPKE_LABEL_MAX)
        return MS_ERR_ARG;
    uint8_t prk[NH];
    ms_err e = labeled_extract(suite_kem, SUITE_KEM_LEN, NULL, 0, "dkp_prk", ikm, ikm_len, prk);
    if (e == MS_OK)
        e = labeled_expand(suite_kem, SUITE_KEM_LEN, prk, "sk", NULL, 0, sk, MS_HPKE_SK_BYTES);
    OPENSSL_cleanse(prk, sizeof prk);
    if (e == MS_OK)
        e = ms_hpke_public(sk, pk);
    if (e != MS_OK)
        OPENSSL_cleanse(sk, MS_HPKE_SK_BYTES);
    return e;
}

ms_err ms_hpke_keygen(uint8_t sk[MS_HPKE_SK_BYTES], uint8_t pk[MS_HPKE_PK_BYTES],
                      const ms_rng *rng)
{
    if (sk == NULL || pk == NULL)
        return MS_ERR_ARG;
    uint8_t ikm[MS_HPKE_SK_BYTES];
    ms_err e = ms_rng_fill(rng, ikm, sizeof ikm);
    if (e == MS_OK)
        e = ms_hpke_derive_keypair(ikm, sizeof ikm, sk, pk);
    OPENSSL_cleanse(ikm, sizeof ikm);
    return e;
}

/* ExtractAndExpand(dh, enc || pkRm). */
static ms_err extract_and_expand(const uint8_t dh_out[32], const uint8_t enc[MS_HPKE_ENC_BYTES],
                                 const uint8_t pk_r[MS_HPKE_PK_BYTES],
                                 uint8_t shared[MS_HPKE_SECRET_BYTES])
{
    uint8_t kem_context[MS_HPKE_ENC_BYTES + MS_HPKE_PK_BYTES];
    memcpy(kem_context, enc, MS_HPKE_ENC_BYTES);
    memcpy(kem_context + MS_HPKE_ENC_BYTES, pk_r, MS_HPKE_PK_BYTES);
    uint8_t prk[NH];
    ms_err e = labeled_extract(suite_kem, SUITE_KEM_LEN, NULL, 0, "eae_prk", dh_out, 32, prk);
    if (e == MS_OK)
        e = labeled_expand(suite_kem, SUITE_KEM_LEN, prk, "shared_secret", kem_context,
                           sizeof kem_context, shared, MS_HPKE_SECRET_BYTES);
    OPENSSL_cleanse(prk, sizeof prk);
    return e;
}

/* KeySchedule(mode_base, shared_secret, info, "", ""). */
static ms_err key_schedule(ms_hpke_ctx *ctx, const uint8_t shared[MS_HPKE_SECRET_BYTES],
                           const uint8_t *info, size_t info_len, bool sender)
{
    uint8_t ksc[1 + 2 * NH];
    uint8_t secret[NH];
    ksc[0] = MODE_BASE;
    ms_err e = labeled_extract(suite_hpke, SUITE_HPKE_LEN, NULL, 0, "psk_id_hash", NULL, 0,
                               ksc + 1);
    if (e == MS_OK)
        e = labeled_extract(suite_hpke, SUITE_HPKE_LEN, NULL, 0, "info_hash", info, info_len,
                            ksc + 1 + NH);
    if (e == MS_OK)
        e = labeled_extract(suite_hpke, SUITE_HPKE_LEN, shared, MS_HPKE_SECRET_BYTES, "secret",
                            NULL, 0, secret);
    if (e == MS_OK)
        e = labeled_expand(suite_hpke, SUITE_HPKE_LEN, secret, "key", ksc, sizeof ksc,
                           ctx->key, MS_HPKE_KEY_BYTES);
    if (e == MS_OK)
        e = labeled_expand(suite_hpke, SUITE_HPKE_LEN, secret, "base_nonce", ksc, sizeof ksc,
                           ctx->base_nonce, MS_HPKE_NONCE_BYTES);
    if (e == MS_OK)
        e = labeled_expand(suite_hpke, SUITE_HPKE_LEN, secret, "exp", ksc, sizeof ksc,
                           ctx->exporter_secret, MS_HPKE_SECRET_BYTES);
    OPENSSL_cleanse(secret, sizeof secret);
    if (e != MS_OK) {
        ms_hpke_ctx_wipe(ctx);
        return e;
    }
    ctx->seq = 0;
    ctx->sender = sender;
    ctx->ready = true;
    return MS_OK;
}

/* ---- setup --------------------------------------------------------------------------------- */

void ms_hpke_ctx_wipe(ms_hpke_ctx *ctx)
{
    if (ctx != NULL)
        OPENSSL_cleanse(ctx, sizeof *ctx);
}

/* Encap(pkR) with the ephemeral pair from ikm_e, then the key schedule. */
static ms_err setup_sender(ms_hpke_ctx *ctx, uint8_t enc[MS_HPKE_ENC_BYTES],
                           const uint8_t pk_r[MS_HPKE_PK_BYTES], const uint8_t *info,
                           size_t info_len, const uint8_t *ikm_e, size_t ikm_e_len)
{
    uint8_t sk_e[MS_HPKE_SK_BYTES], dh_out[32], shared[MS_HPKE_SECRET_BYTES];
    ms_err e = ms_hpke_derive_keypair(ikm_e, ikm_e_len, sk_e, enc);
    if (e == MS_OK)
        e = dh(sk_e, pk_r, dh_out);
    if (e == MS_OK)
        e = extract_and_expand(dh_out, enc, pk_r, shared);
    if (e == MS_OK)
        e = key_schedule(ctx, shared, info, info_len, true);
    OPENSSL_cleanse(sk_e, sizeof sk_e);
    OPENSSL_cleanse(dh_out, sizeof dh_out);
    OPENSSL_cleanse(shared, sizeof shared);
    if (e != MS_OK)
        ms_hpke_ctx_wipe(ctx);
    return e;
}

static bool args_ok(const void *p, size_t n)
{
    return (p != NULL || n == 0) && n <= MS_HPKE_LABEL_MAX;
}

static bool aad_ok(const void *p, size_t n)
{
    return (p != NULL || n == 0) && n <= MS_HPKE_AAD_MAX;
}

ms_err ms_hpke_setup_sender_ikm(ms_hpke_ctx *ctx, uint8_t enc[MS_HPKE_ENC_BYTES],
                                const uint8_t pk_r[MS_HPKE_PK_BYTES], const uint8_t *info,
                                size_t info_len, const uint8_t *ikm_e, size_t ikm_e_len)
{
    if (ctx == NULL || enc == NULL || pk_r == NULL || ikm_e == NULL || !args_ok(info, info_len))
        return MS_ERR_ARG;
    return setup_sender(ctx, enc, pk_r, info, info_len, ikm_e, ikm_e_len);
}

ms_err ms_hpke_setup_sender(ms_hpke_ctx *ctx, uint8_t enc[MS_HPKE_ENC_BYTES],
                            const uint8_t pk_r[MS_HPKE_PK_BYTES], const uint8_t *info,
                            size_t info_len, const ms_rng *rng)
{
    if (ctx == NULL || enc == NULL || pk_r == NULL || !args_ok(info, info_len))
        return MS_ERR_ARG;
    uint8_t ikm[MS_HPKE_SK_BYTES];
    ms_err e = ms_rng_fill(rng, ikm, sizeof ikm);
    if (e == MS_OK)
        e = setup_sender(ctx, enc, pk_r, info, info_len, ikm, sizeof ikm);
    OPENSSL_cleanse(ikm, sizeof ikm);
    return e;
}

ms_err ms_hpke_setup_recipient(ms_hpke_ctx *ctx, const uint8_t enc[MS_HPKE_ENC_BYTES],
                               const uint8_t sk_r[MS_HPKE_SK_BYTES], const uint8_t *info,
                               size_t info_len)
{
    if (ctx == NULL || enc == NULL || sk_r == NULL || !args_ok(info, info_len))
        return MS_ERR_ARG;
    uint8_t pk_r[MS_HPKE_PK_BYTES], dh_out[32], shared[MS_HPKE_SECRET_BYTES];
    ms_err e = ms_hpke_public(sk_r, pk_r);
    if (e == MS_OK) {
        e = dh(sk_r, enc, dh_out);
        if (e == MS_ERR_INVALID)
            e = MS_ERR_DECRYPT; /* a zero shared secret: the envelope is not for this key */
    }
    if (e == MS_OK)
        e = extract_and_expand(dh_out, enc, pk_r, shared);
    if (e == MS_OK)
        e = key_schedule(ctx, shared, info, info_len, false);
    OPENSSL_cleanse(dh_out, sizeof dh_out);
    OPENSSL_cleanse(shared, sizeof shared);
    if (e != MS_OK)
        ms_hpke_ctx_wipe(ctx);
    return e;
}

/* ---- encryption, decryption, export ---------------------------------------------------------- */

/* ComputeNonce(seq): base_nonce xor I2OSP(seq, Nn). */
static void compute_nonce(const ms_hpke_ctx *ctx, uint8_t nonce[MS_HPKE_NONCE_BYTES])
{
    memcpy(nonce, ctx->base_nonce, MS_HPKE_NONCE_BYTES);
    for (size_t i = 0; i < 8; i++)
        nonce[MS_HPKE_NONCE_BYTES - 1 - i] ^= (uint8_t)(ctx->seq >> (8 * i));
}

ms_err ms_hpke_ctx_seal(ms_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                        size_t pt_len, uint8_t *ct, size_t ct_cap, size_t *ct_len)
{
    if (ctx == NULL || !ctx->ready || !ctx->sender || ct == NULL || ct_len == NULL ||
        !aad_ok(aad, aad_len) || (pt == NULL && pt_len != 0) || pt_len > MS_HPKE_PT_MAX)
        return MS_ERR_ARG;
    if (ct_cap < pt_len + MS_HPKE_TAG_BYTES)
        return MS_ERR_BUFFER_TOO_SMALL;
    /* The 64-bit counter is shorter than Nn (allowed, left-padded); it must not wrap. */
    if (ctx->seq == UINT64_MAX)
        return MS_ERR_INVALID;
    uint8_t nonce[MS_HPKE_NONCE_BYTES];
    compute_nonce(ctx, nonce);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    int ok = c != NULL &&
             EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, NULL, NULL) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, MS_HPKE_NONCE_BYTES, NULL) == 1 &&
             EVP_EncryptInit_ex(c, NULL, NULL, ctx->key, nonce) == 1 &&
             (aad_len == 0 || EVP_EncryptUpdate(c, NULL, &n, aad, (int)aad_len) == 1) &&
             (pt_len == 0 || EVP_EncryptUpdate(c, ct, &n, pt, (int)pt_len) == 1) &&
             EVP_EncryptFinal_ex(c, ct + (pt_len != 0 ? n : 0), &fin) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, MS_HPKE_TAG_BYTES, ct + pt_len) == 1;
    EVP_CIPHER_CTX_free(c);
    OPENSSL_cleanse(nonce, sizeof nonce);
    if (!ok) {
        ERR_clear_error();
        OPENSSL_cleanse(ct, ct_cap < pt_len + MS_HPKE_TAG_BYTES ? ct_cap : pt_len + MS_HPKE_TAG_BYTES);
        return MS_ERR_INTERNAL;
    }
    ctx->seq++;
    *ct_len = pt_len + MS_HPKE_TAG_BYTES;
    return MS_OK;
}

ms_err ms_hpke_ctx_open(ms_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                        size_t ct_len, uint8_t *pt, size_t pt_cap, size_t *pt_len)
{
    if (ctx == NULL || !ctx->ready || ctx->sender || ct == NULL || pt_len == NULL ||
        !aad_ok(aad, aad_len) || (pt == NULL && pt_cap != 0) ||
        ct_len > MS_HPKE_PT_MAX + MS_HPKE_TAG_BYTES)
        return MS_ERR_ARG;
    if (ct_len < MS_HPKE_TAG_BYTES)
        return MS_ERR_BAD_LENGTH;
    size_t body = ct_len - MS_HPKE_TAG_BYTES;
    if (pt_cap < body)
        return MS_ERR_BUFFER_TOO_SMALL;
    if (ctx->seq == UINT64_MAX)
        return MS_ERR_INVALID;
    uint8_t nonce[MS_HPKE_NONCE_BYTES];
    uint8_t tag[MS_HPKE_TAG_BYTES];
    memcpy(tag, ct + body, MS_HPKE_TAG_BYTES);
    compute_nonce(ctx, nonce);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    int setup = c != NULL &&
                EVP_DecryptInit_ex(c, EVP_aes_128_gcm(), NULL, NULL, NULL) == 1 &&
                EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, MS_HPKE_NONCE_BYTES, NULL) == 1 &&
                EVP_DecryptInit_ex(c, NULL, NULL, ctx->key, nonce) == 1 &&
                (aad_len == 0 || EVP_DecryptUpdate(c, NULL, &n, aad, (int)aad_len) == 1) &&
                (body == 0 || EVP_DecryptUpdate(c, pt, &n, ct, (int)body) == 1) &&
                EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, MS_HPKE_TAG_BYTES, tag) == 1;
    /* The tag is checked here: nothing decrypted is kept unless it matches. GCM's final
     * step writes nothing; `spare` stands in for a NULL pt of an empty message. */
    uint8_t spare[1];
    int authentic = setup &&
                    EVP_DecryptFinal_ex(c, body != 0 ? pt + n : spare, &fin) == 1;
    EVP_CIPHER_CTX_free(c);
    OPENSSL_cleanse(nonce, sizeof nonce);
    ERR_clear_error();
    if (!authentic) {
        if (pt != NULL && body != 0)
            OPENSSL_cleanse(pt, body);
        return setup ? MS_ERR_DECRYPT : MS_ERR_INTERNAL;
    }
    ctx->seq++;
    *pt_len = body;
    return MS_OK;
}

ms_err ms_hpke_export(const ms_hpke_ctx *ctx, const uint8_t *exporter_context, size_t ec_len,
                      uint8_t *out, size_t out_len)
{
    if (ctx == NULL || !ctx->ready || out == NULL || !args_ok(exporter_context, ec_len) ||
        out_len == 0 || out_len > 255 * NH)
        return MS_ERR_ARG;
    return labeled_expand(suite_hpke, SUITE_HPKE_LEN, ctx->exporter_secret, "sec",
                          exporter_context, ec_len, out, out_len);
}

/* ---- single shot (RFC 9180 6.1) --------------------------------------------------------------- */

ms_err ms_hpke_seal(const uint8_t pk_r[MS_HPKE_PK_BYTES], const uint8_t *info, size_t info_len,
                    const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                    uint8_t *out, size_t out_cap, size_t *out_len, const ms_rng *rng)
{
    if (pk_r == NULL || out == NULL || out_len == NULL || !args_ok(info, info_len) ||
        !aad_ok(aad, aad_len) || (pt == NULL && pt_len != 0) || pt_len > MS_HPKE_PT_MAX)
        return MS_ERR_ARG;
    if (out_cap < pt_len + MS_HPKE_OVERHEAD)
        return MS_ERR_BUFFER_TOO_SMALL;
    ms_hpke_ctx ctx;
    size_t ct_len = 0;
    ms_err e = ms_hpke_setup_sender(&ctx, out, pk_r, info, info_len, rng);
    if (e == MS_OK)
        e = ms_hpke_ctx_seal(&ctx, aad, aad_len, pt, pt_len, out + MS_HPKE_ENC_BYTES,
                             out_cap - MS_HPKE_ENC_BYTES, &ct_len);
    ms_hpke_ctx_wipe(&ctx);
    if (e != MS_OK)
        return e;
    *out_len = MS_HPKE_ENC_BYTES + ct_len;
    return MS_OK;
}

ms_err ms_hpke_open(const uint8_t sk_r[MS_HPKE_SK_BYTES], const uint8_t *info, size_t info_len,
                    const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len,
                    uint8_t *pt, size_t pt_cap, size_t *pt_len)
{
    if (sk_r == NULL || in == NULL || pt_len == NULL || !args_ok(info, info_len) ||
        !aad_ok(aad, aad_len) || (pt == NULL && pt_cap != 0))
        return MS_ERR_ARG;
    if (in_len < MS_HPKE_OVERHEAD)
        return MS_ERR_BAD_LENGTH;
    if (pt_cap < in_len - MS_HPKE_OVERHEAD)
        return MS_ERR_BUFFER_TOO_SMALL;
    ms_hpke_ctx ctx;
    ms_err e = ms_hpke_setup_recipient(&ctx, in, sk_r, info, info_len);
    if (e == MS_OK)
        e = ms_hpke_ctx_open(&ctx, aad, aad_len, in + MS_HPKE_ENC_BYTES,
                             in_len - MS_HPKE_ENC_BYTES, pt, pt_cap, pt_len);
    ms_hpke_ctx_wipe(&ctx);
    return e;
}

/* ---- one blob's key, for a third party ----------------------------------------------------- */

ms_err ms_hpke_open_key(const uint8_t key[MS_HPKE_KEY_BYTES],
                        const uint8_t nonce[MS_HPKE_NONCE_BYTES], const uint8_t *aad,
                        size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *pt,
                        size_t pt_cap, size_t *pt_len)
{
    if (key == NULL || nonce == NULL || in == NULL || pt_len == NULL)
        return MS_ERR_ARG;
    if (in_len < MS_HPKE_OVERHEAD)
        return MS_ERR_BAD_LENGTH;
    ms_hpke_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    memcpy(ctx.key, key, MS_HPKE_KEY_BYTES);
    memcpy(ctx.base_nonce, nonce, MS_HPKE_NONCE_BYTES);
    ctx.ready = true; /* a recipient's context at seq 0: the blob's only message */
    ms_err e = ms_hpke_ctx_open(&ctx, aad, aad_len, in + MS_HPKE_ENC_BYTES,
                                in_len - MS_HPKE_ENC_BYTES, pt, pt_cap, pt_len);
    ms_hpke_ctx_wipe(&ctx);
    return e;
}

ms_err ms_hpke_blob_key(const uint8_t sk_r[MS_HPKE_SK_BYTES], const uint8_t *info,
                        size_t info_len, const uint8_t *aad, size_t aad_len, const uint8_t *in,
                        size_t in_len, uint8_t key[MS_HPKE_KEY_BYTES],
                        uint8_t nonce[MS_HPKE_NONCE_BYTES])
{
    if (sk_r == NULL || in == NULL || key == NULL || nonce == NULL)
        return MS_ERR_ARG;
    if (in_len < MS_HPKE_OVERHEAD)
        return MS_ERR_BAD_LENGTH;
    ms_hpke_ctx ctx;
    ms_err e = ms_hpke_setup_recipient(&ctx, in, sk_r, info, info_len);
    if (e != MS_OK)
        return e;
    size_t body = in_len - MS_HPKE_OVERHEAD, got = 0;
    uint8_t *pt = malloc(body + 1);
    /* the key is handed out only for a blob it opens */
    e = pt == NULL ? MS_ERR_NOMEM
                   : ms_hpke_open_key(ctx.key, ctx.base_nonce, aad, aad_len, in, in_len, pt,
                                      body + 1, &got);
    if (e == MS_OK) {
        memcpy(key, ctx.key, MS_HPKE_KEY_BYTES);
        memcpy(nonce, ctx.base_nonce, MS_HPKE_NONCE_BYTES);
    }
    if (pt != NULL)
        OPENSSL_cleanse(pt, body + 1);
    free(pt);
    ms_hpke_ctx_wipe(&ctx);
    return e;
}
