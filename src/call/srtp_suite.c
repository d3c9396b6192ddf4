/*
 * The SRTP suites a call may use: names (as in a=x-ms-srtp) and master key and salt
 * lengths. Kept apart from srtp.c (libsrtp) so the key side can use them alone.
 */
#include <string.h>

#include "call/srtp.h"

const char *ms_srtp_suite_name(ms_srtp_suite s)
{
    switch (s) {
    case MS_SRTP_AEAD_AES_128_GCM: return "AEAD_AES_128_GCM";
    case MS_SRTP_AES_CM_128_HMAC_SHA1_80: return "AES_CM_128_HMAC_SHA1_80";
    }
    return "unknown";
}

ms_err ms_srtp_suite_parse(ms_srtp_suite *out, const char *name)
{
    if (out == NULL || name == NULL)
        return MS_ERR_ARG;
    if (strcmp(name, "AEAD_AES_128_GCM") == 0)
        *out = MS_SRTP_AEAD_AES_128_GCM;
    else if (strcmp(name, "AES_CM_128_HMAC_SHA1_80") == 0)
        *out = MS_SRTP_AES_CM_128_HMAC_SHA1_80;
    else
        return MS_ERR_INVALID;
    return MS_OK;
}

void ms_srtp_suite_lengths(ms_srtp_suite s, size_t *key_len, size_t *salt_len)
{
    /* RFC 7714: 16-octet key, 12-octet salt; RFC 3711 AES-CM: 16-octet key, 14-octet salt */
    if (key_len != NULL)
        *key_len = 16;
    if (salt_len != NULL)
        *salt_len = s == MS_SRTP_AES_CM_128_HMAC_SHA1_80 ? 14 : 12;
}
