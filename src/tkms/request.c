/*
 * The device's signed issuance request (see request.h).
 */
#include "tkms/request.h"

#include <string.h>

#include <openssl/evp.h>

#include "util/bytes.h"
#include "util/detail.h"
#include "tkms/node.h"

static const uint8_t *nul_context(size_t *len)
{
    static const char ctx[] = MS_TKMS_REQ_CONTEXT; /* its NUL is the 0x00 separator */
    *len = sizeof ctx;
    return (const uint8_t *)ctx;
}

/* The signed octets: context (with its NUL) then the body before the signature. */
static EVP_MD_CTX *start(void)
{
    return EVP_MD_CTX_new();
}

ms_err ms_tkms_request_sign(const ms_tkms_request *r, const uint8_t seed[32], uint8_t *out,
                            size_t cap, size_t *out_len)
{
    if (r == NULL || seed == NULL || out == NULL || out_len == NULL || r->server == 0 ||
        r->server > 255 || !ms_tkms_period_ok(r->period) || !ms_tkms_device_id_ok(r->device_id) ||
        !ms_tkms_uri_ok(r->user))
        return MS_ERR_ARG;
    size_t pl = strlen(r->period), dl = strlen(r->device_id), ul = strlen(r->user);
    size_t n = 4 + 1 + 1 + 8 + MS_TKMS_REQ_NONCE + 1 + pl + 1 + dl + 2 + ul;
    size_t cl = 0;
    const uint8_t *ctx = nul_context(&cl);
    uint8_t buf[64 + MS_TKMS_REQ_MAX];
    if (cap < n + 64)
        return MS_ERR_BUFFER_TOO_SMALL;
    uint8_t *p = out;
    memcpy(p, MS_TKMS_REQ_MAGIC, 4);
    p[4] = 1;
    p[5] = (uint8_t)r->server;
    ms_store_be64(p + 6, r->time);
    memcpy(p + 14, r->nonce, MS_TKMS_REQ_NONCE);
    p += 14 + MS_TKMS_REQ_NONCE;
    *p++ = (uint8_t)pl;
    memcpy(p, r->period, pl);
    p += pl;
    *p++ = (uint8_t)dl;
    memcpy(p, r->device_id, dl);
    p += dl;
    ms_store_be16(p, (uint16_t)ul);
    memcpy(p + 2, r->user, ul);
    memcpy(buf, ctx, cl);
    memcpy(buf + cl, out, n);
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    EVP_MD_CTX *c = start();
    size_t sl = 64;
    int ok = k != NULL && c != NULL && EVP_DigestSignInit(c, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestSign(c, out + n, &sl, buf, cl + n) == 1 && sl == 64;
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    if (!ok)
        return MS_ERR_INTERNAL;
    *out_len = n + 64;
    return MS_OK;
}

ms_err ms_tkms_request_parse(ms_tkms_request *r, const uint8_t *in, size_t len, char *detail,
                             size_t detail_cap)
{
    if (r == NULL || in == NULL)
        return MS_ERR_ARG;
    memset(r, 0, sizeof *r);
    size_t o = 14 + MS_TKMS_REQ_NONCE;
    if (len < o + 1 + 1 + 2 + 64 || len > MS_TKMS_REQ_MAX || memcmp(in, MS_TKMS_REQ_MAGIC, 4) != 0 ||
        in[4] != 1)
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                              "not a version 1 threshold key request");
    r->server = in[5];
    r->time = ms_load_be64(in + 6);
    memcpy(r->nonce, in + 14, MS_TKMS_REQ_NONCE);
    size_t pl = in[o++];
    if (pl == 0 || pl > MS_TKMS_PERIOD_MAX || o + pl + 1 > len - 64)
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap, "bad period field");
    memcpy(r->period, in + o, pl);
    o += pl;
    size_t dl = in[o++];
    if (dl == 0 || dl > MS_TKMS_DEVICE_ID_MAX || o + dl + 2 > len - 64)
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap, "bad device id field");
    memcpy(r->device_id, in + o, dl);
    o += dl;
    size_t ul = ms_load_be16(in + o);
    o += 2;
    if (ul == 0 || ul > MS_TKMS_URI_MAX || o + ul != len - 64)
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap, "bad user field");
    memcpy(r->user, in + o, ul);
    if (!ms_tkms_period_ok(r->period) || !ms_tkms_device_id_ok(r->device_id) || !ms_tkms_uri_ok(r->user))
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                              "period, device id or user URI has characters not allowed");
    return MS_OK;
}

ms_err ms_tkms_request_verify(const uint8_t *in, size_t len, const uint8_t pub[32])
{
    if (in == NULL || pub == NULL || len < 64 || len > MS_TKMS_REQ_MAX)
        return MS_ERR_ARG;
    size_t cl = 0;
    const uint8_t *ctx = nul_context(&cl);
    uint8_t buf[64 + MS_TKMS_REQ_MAX];
    memcpy(buf, ctx, cl);
    memcpy(buf + cl, in, len - 64);
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    EVP_MD_CTX *c = start();
    int ok = k != NULL && c != NULL && EVP_DigestVerifyInit(c, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestVerify(c, in + len - 64, 64, buf, cl + len - 64) == 1;
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    return ok ? MS_OK : MS_ERR_SIGNATURE;
}
