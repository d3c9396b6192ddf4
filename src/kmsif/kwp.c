/*
 * AES key wrap with padding (RFC 5649) through OpenSSL's AES-*-WRAP-PAD ciphers.
 *
 * Why RFC 5649 and not RFC 3394: the RFC 3394 key wrap only takes whole 64-bit
 * semiblocks, and a SAKKE RSK is 257 octets (04 || x || y), which is not a multiple of
 * 8. RFC 5649 adds an alternative initial value carrying the plaintext length and pads
 * with zeros, so any length from 1 octet wraps, and the unwrap still authenticates the
 * length and the padding. XML Encryption 1.1 names it kw-aes-256-pad.
 */
#include <string.h>

#include <openssl/evp.h>

#include "kmsif/kmsif.h"

/* Wrapped form is at most the plaintext rounded up to 8 plus the 8-octet AIV. */
#define KWP_MAX_IN 4096

static EVP_CIPHER *kwp_fetch(size_t kek_len)
{
    const char *name = kek_len == 16   ? "AES-128-WRAP-PAD"
                       : kek_len == 24 ? "AES-192-WRAP-PAD"
                       : kek_len == 32 ? "AES-256-WRAP-PAD"
                                       : NULL;
    return name != NULL ? EVP_CIPHER_fetch(NULL, name, NULL) : NULL;
}

/* One pass of the wrap cipher over in; OpenSSL does the whole RFC 5649 algorithm in
 * one update call. Returns 1 on success, 0 when the unwrap's integrity check fails,
 * -1 on an internal failure. */
static int kwp_run(uint8_t *out, size_t *out_len, const uint8_t *kek, size_t kek_len,
                   const uint8_t *in, size_t in_len, int enc)
{
    EVP_CIPHER *cipher = kwp_fetch(kek_len);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int rc = -1, outl = 0;
    if (cipher == NULL || ctx == NULL)
        goto done;
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_CipherInit_ex2(ctx, cipher, kek, NULL, enc, NULL) != 1)
        goto done;
    if (EVP_CipherUpdate(ctx, out, &outl, in, (int)in_len) != 1 || outl < 0) {
        rc = enc ? -1 : 0;
        goto done;
    }
    *out_len = (size_t)outl;
    rc = 1;
done:
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(cipher);
    return rc;
}

ms_err ms_aes_kwp_wrap(uint8_t *out, size_t cap, size_t *out_len, const uint8_t *kek,
                       size_t kek_len, const uint8_t *in, size_t in_len)
{
    if (out_len != NULL)
        *out_len = 0;
    if (out_len == NULL || kek == NULL || in == NULL || in_len == 0 || in_len > KWP_MAX_IN ||
        (kek_len != 16 && kek_len != 24 && kek_len != 32))
        return MS_ERR_ARG;
    size_t need = (in_len + 7) / 8 * 8 + 8;
    *out_len = need;
    if (out == NULL || cap < need)
        return MS_ERR_BUFFER_TOO_SMALL;
    size_t n = 0;
    if (kwp_run(out, &n, kek, kek_len, in, in_len, 1) != 1 || n != need) {
        ms_wipe(out, cap);
        *out_len = 0;
        return MS_ERR_INTERNAL;
    }
    return MS_OK;
}

ms_err ms_aes_kwp_unwrap(uint8_t *out, size_t cap, size_t *out_len, const uint8_t *kek,
                         size_t kek_len, const uint8_t *in, size_t in_len)
{
    if (out_len != NULL)
        *out_len = 0;
    if (out_len == NULL || kek == NULL || in == NULL ||
        (kek_len != 16 && kek_len != 24 && kek_len != 32))
        return MS_ERR_ARG;
    if (in_len < 16 || in_len % 8 != 0 || in_len > KWP_MAX_IN + 16)
        return MS_ERR_BAD_LENGTH;
    /* OpenSSL writes the padded plaintext (in_len - 8 octets) before it checks the
     * padding, so unwrap into scratch and copy only what the caller may see. */
    uint8_t tmp[KWP_MAX_IN + 16];
    size_t n = 0;
    int rc = kwp_run(tmp, &n, kek, kek_len, in, in_len, 0);
    if (rc != 1) {
        ms_wipe(tmp, sizeof tmp);
        return rc == 0 ? MS_ERR_INVALID : MS_ERR_INTERNAL;
    }
    if (n > in_len - 8 || n + 15 < in_len) { /* cannot happen with a correct unwrap */
        ms_wipe(tmp, sizeof tmp);
        return MS_ERR_INVALID;
    }
    *out_len = n;
    if (out == NULL || cap < n) {
        ms_wipe(tmp, sizeof tmp);
        return MS_ERR_BUFFER_TOO_SMALL;
    }
    memcpy(out, tmp, n);
    ms_wipe(tmp, sizeof tmp);
    return MS_OK;
}
