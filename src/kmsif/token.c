/* The per-device bearer token shared by the KMS, the distribution server's index and
 * the client: see kmsif.h. */
#include "kmsif/kmsif.h"

#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/params.h>

#include "util/hex.h"

#define TOKEN_LABEL "mikeysakke-device-token:"

ms_err ms_kmsif_device_token(char token[MS_KMSIF_TOKEN_HEX + 1], const uint8_t ink[32],
                             const char *device_id)
{
    char msg[sizeof TOKEN_LABEL + MS_KMSIF_DEVICE_ID_MAX];
    uint8_t mac[32];
    size_t mlen = 0;
    if (token == NULL || ink == NULL || device_id == NULL)
        return MS_ERR_ARG;
    int n = snprintf(msg, sizeof msg, TOKEN_LABEL "%s", device_id);
    if (n < 0 || (size_t)n >= sizeof msg)
        return MS_ERR_ARG;
    ms_err e = MS_OK;
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, ink, 32, (const uint8_t *)msg, (size_t)n,
                  mac, sizeof mac, &mlen) == NULL ||
        mlen != sizeof mac) {
        e = MS_ERR_INTERNAL;
    } else {
        ms_hex_encode_lower(token, mac, sizeof mac); /* a secret: no table lookup */
    }
    ms_wipe(mac, sizeof mac);
    return e;
}

#define APPROVAL_LABEL "mikeysakke kms device approval"

ms_err ms_kmsif_device_approval(uint8_t mac[32], const uint8_t ink[32], const char *request,
                                size_t len)
{
    if (mac == NULL || ink == NULL || request == NULL)
        return MS_ERR_ARG;
    /* the label and a NUL first: the same octets as the role signatures' context */
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = m != NULL ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t out = 0;
    int ok = c != NULL && EVP_MAC_init(c, ink, 32, params) == 1 &&
             EVP_MAC_update(c, (const uint8_t *)APPROVAL_LABEL, sizeof APPROVAL_LABEL) == 1 &&
             EVP_MAC_update(c, (const uint8_t *)request, len) == 1 &&
             EVP_MAC_final(c, mac, &out, 32) == 1 && out == 32;
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(m);
    return ok ? MS_OK : MS_ERR_INTERNAL;
}
