/*
 * TS 33.180 E.6 key parameters: the plaintext Key Parameters element wrapped in the
 * MCData protected-payload framing and AES-128-GCM under DPCK (layout in
 * imessage_internal.h). The DPPK is the key the MIKEY message carries and the DPPK-ID
 * its CSB-ID, so only a receiver that recovered the key can read or forge the element.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto/rng.h"
#include "imessage_internal.h"

#define KP_MSG_TYPE 0x43
#define KP_ALG_AES128_GCM 1
#define KP_IV_BYTES 16

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* AES-128-GCM with a 16-octet IV; enc = 1 encrypts in -> out and writes tag, enc = 0
 * decrypts and checks tag (MS_ERR_INVALID when it does not authenticate). */
static ms_err gcm(int enc, uint8_t *out, const uint8_t *in, size_t len, uint8_t *tag,
                  const uint8_t dpck[16], const uint8_t iv[KP_IV_BYTES], const uint8_t *aad,
                  size_t aad_len)
{
    ms_err err = MS_ERR_INTERNAL;
    int n = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (c == NULL)
        return MS_ERR_NOMEM;
    if (EVP_CipherInit_ex(c, EVP_aes_128_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, KP_IV_BYTES, NULL) != 1 ||
        EVP_CipherInit_ex(c, NULL, NULL, dpck, iv, enc) != 1 ||
        EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) != 1)
        goto done;
    if (len > 0 && EVP_CipherUpdate(c, out, &n, in, (int)len) != 1)
        goto done;
    if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, MS_KP_TAG_BYTES, tag) != 1)
        goto done;
    if (EVP_CipherFinal_ex(c, out + len, &n) != 1) {
        /* Decryption: the only way Final fails after a successful setup is a bad tag. */
        err = enc ? MS_ERR_INTERNAL : MS_ERR_INVALID;
        goto done;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, MS_KP_TAG_BYTES, tag) != 1)
        goto done;
    err = MS_OK;
done:
    EVP_CIPHER_CTX_free(c);
    return err;
}

ms_err ms_mikey_kp_seal(uint8_t *out, size_t cap, size_t *out_len,
                        const ms_mikey_key_params *kp, const uint8_t *key, size_t key_len,
                        uint32_t dppk_id, uint64_t datetime, const ms_rng *rng)
{
    if (out == NULL || out_len == NULL || kp == NULL || key == NULL || key_len != 16)
        return MS_ERR_ARG;
    const char *nul = memchr(kp->text, 0, sizeof kp->text);
    size_t text_len = nul != NULL ? (size_t)(nul - kp->text) : sizeof kp->text;
    if (text_len > 255 || kp->activation > MS_KP_TIME_MAX || kp->expiry > MS_KP_TIME_MAX)
        return MS_ERR_ARG;

    uint8_t plain[MS_KP_PLAIN_MAX];
    size_t pl = 0;
    plain[pl++] = kp->key_type;
    put_be(plain + pl, kp->status, 4);
    pl += 4;
    put_be(plain + pl, kp->activation, 5);
    pl += 5;
    put_be(plain + pl, kp->expiry, 5);
    pl += 5;
    put_be(plain + pl, text_len, 2);
    pl += 2;
    memcpy(plain + pl, kp->text, text_len);
    pl += text_len;
    if (kp->has_group_ids) {
        /* The empty Group IDs element of the GMK form: length 1, count 0. */
        plain[pl++] = 0x00;
        plain[pl++] = 0x01;
        plain[pl++] = 0x00;
    }

    size_t total = MS_KP_HEADER_BYTES + pl + MS_KP_TAG_BYTES;
    *out_len = total;
    if (cap < total) {
        ms_wipe(plain, sizeof plain);
        return MS_ERR_BUFFER_TOO_SMALL;
    }

    memset(out, 0, MS_KP_HEADER_BYTES);
    out[0] = KP_MSG_TYPE;
    put_be(out + 1, datetime & MS_KP_TIME_MAX, 5);
    /* 6..10: payload ID and sequence number, 0 */
    out[11] = KP_ALG_AES128_GCM;
    ms_err err = ms_rng_fill(rng, out + 12, KP_IV_BYTES);
    if (err != MS_OK) {
        ms_wipe(plain, sizeof plain);
        return err;
    }
    put_be(out + 28, dppk_id, 4);
    out[32] = 0;
    put_be(out + 33, pl + MS_KP_TAG_BYTES, 2);

    uint8_t dpck[16];
    err = ms_dpck(dpck, key, key_len, dppk_id);
    if (err == MS_OK)
        err = gcm(1, out + MS_KP_HEADER_BYTES, plain, pl, out + MS_KP_HEADER_BYTES + pl, dpck,
                  out + 12, out, 32);
    ms_wipe(dpck, sizeof dpck);
    ms_wipe(plain, sizeof plain);
    return err;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 5, 6)))
#endif
static ms_err fail(size_t *where, size_t off, char *why, size_t why_len, const char *fmt, ...)
{
    if (where != NULL)
        *where = off;
    if (why != NULL && why_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return MS_ERR_MIKEY_KEY_PARAMS;
}

ms_err ms_mikey_kp_open(ms_mikey_key_params *kp, const uint8_t *data, size_t len,
                        const uint8_t *key, size_t key_len, uint32_t dppk_id,
                        size_t *where, char *why, size_t why_len)
{
    if (kp == NULL || data == NULL || key == NULL)
        return MS_ERR_ARG;
    memset(kp, 0, sizeof *kp);
    if (key_len != 16)
        return fail(where, 0, why, why_len,
                    "key parameters need a 16-octet key, the message carries %zu", key_len);
    if (len < MS_KP_HEADER_BYTES + MS_KP_TAG_BYTES)
        return fail(where, 0, why, why_len,
                    "key parameters are %zu octets, shorter than the %d-octet minimum", len,
                    MS_KP_HEADER_BYTES + MS_KP_TAG_BYTES);
    if (data[0] != KP_MSG_TYPE)
        return fail(where, 0, why, why_len,
                    "key parameters message type is 0x%02x, not 0x43", data[0]);
    if (data[11] != KP_ALG_AES128_GCM)
        return fail(where, 11, why, why_len, "key parameters algorithm %u is not AES-128-GCM",
                    data[11]);
    uint32_t id = (uint32_t)get_be(data + 28, 4);
    if (id != dppk_id)
        return fail(where, 28, why, why_len,
                    "key parameters DPPK-ID %08x differs from the CSB-ID %08x", id, dppk_id);
    size_t clen = (size_t)get_be(data + 33, 2);
    if (clen != len - MS_KP_HEADER_BYTES)
        return fail(where, 33, why, why_len,
                    "key parameters payload length %zu does not match the %zu octets present",
                    clen, len - MS_KP_HEADER_BYTES);
    size_t pl = clen - MS_KP_TAG_BYTES;
    if (pl > MS_KP_PLAIN_MAX)
        return fail(where, 33, why, why_len, "key parameters payload of %zu octets is too long",
                    pl);

    uint8_t plain[MS_KP_PLAIN_MAX + 1];
    uint8_t tag[MS_KP_TAG_BYTES];
    uint8_t dpck[16];
    memcpy(tag, data + MS_KP_HEADER_BYTES + pl, MS_KP_TAG_BYTES);
    ms_err err = ms_dpck(dpck, key, key_len, dppk_id);
    if (err == MS_OK)
        err = gcm(0, plain, data + MS_KP_HEADER_BYTES, pl, tag, dpck, data + 12, data, 32);
    ms_wipe(dpck, sizeof dpck);
    if (err == MS_ERR_INVALID) {
        err = fail(where, MS_KP_HEADER_BYTES, why, why_len,
                   "key parameters do not authenticate under the DPCK of the received key");
        goto done;
    }
    if (err != MS_OK)
        goto done;

    const size_t base = MS_KP_HEADER_BYTES; /* offsets in diagnostics are of the ciphertext */
    if (pl < 17) {
        err = fail(where, base, why, why_len,
                   "key parameters plaintext of %zu octets is shorter than 17", pl);
        goto done;
    }
    kp->key_type = plain[0];
    kp->status = (uint32_t)get_be(plain + 1, 4);
    kp->activation = get_be(plain + 5, 5);
    kp->expiry = get_be(plain + 10, 5);
    size_t tl = (size_t)get_be(plain + 15, 2);
    size_t pos = 17;
    if (tl > 255 || tl > pl - pos) {
        err = fail(where, base + 15, why, why_len,
                   "key parameters text length %zu does not fit (%zu octets left)", tl,
                   pl - pos);
        goto done;
    }
    if (memchr(plain + pos, 0, tl) != NULL) {
        err = fail(where, base + pos, why, why_len, "key parameters text contains a NUL octet");
        goto done;
    }
    memcpy(kp->text, plain + pos, tl);
    kp->text[tl] = '\0';
    pos += tl;
    if (pos < pl) {
        /* Group IDs element: 2-octet length and that many octets. */
        if (pl - pos < 2) {
            err = fail(where, base + pos, why, why_len,
                       "key parameters end inside the Group IDs length");
            goto done;
        }
        size_t gl = (size_t)get_be(plain + pos, 2);
        if (gl != pl - pos - 2) {
            err = fail(where, base + pos, why, why_len,
                       "key parameters Group IDs length %zu does not match the %zu octets left",
                       gl, pl - pos - 2);
            goto done;
        }
        kp->has_group_ids = true;
    }
    err = MS_OK;
done:
    ms_wipe(plain, sizeof plain);
    if (err != MS_OK)
        memset(kp, 0, sizeof *kp);
    return err;
}
