/*
 * What every member derives from a group key: each sender's SRTP master key, salt and
 * MKI (TS 33.180 7.4 with RFC 3830 4.1.3), the same values ms_mikey_srtp_keys gives the
 * sender from its own GMK I_MESSAGE. Also small helpers of the group layer.
 */
#include <string.h>

#include <openssl/evp.h>

#include "crypto/secmem.h"
#include "group/group_internal.h"
#include "util/bytes.h"
#include "util/hex.h"

void ms_group_key_wipe(ms_group_key *key)
{
    if (key != NULL)
        ms_wipe(key, sizeof *key);
}

ms_err ms_group_sender_keys(ms_srtp_keys *out, const ms_group_key *key, const char *sender_uri,
                            size_t salt_len)
{
    if (out == NULL)
        return MS_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (key == NULL || sender_uri == NULL || sender_uri[0] == 0 || key->gmk_len != 16 ||
        key->rand_len == 0 || key->rand_len > sizeof key->rand ||
        (salt_len != 12 && salt_len != 14) ||
        (key->gmk_id >> 28) != MS_MIKEY_PURPOSE_GMK)
        return MS_ERR_ARG;
    /* the sender's GUK-ID is the CSB-ID of its own GMK I_MESSAGE */
    uint32_t guk_id;
    ms_err err = ms_guk_id(&guk_id, key->gmk, key->gmk_len, key->gmk_id, sender_uri);
    if (err == MS_OK)
        err = ms_mikey_derive(key->prf, out->master_key, 16, MS_MIKEY_KDF_TEK, key->gmk,
                              key->gmk_len, key->cs_id, guk_id, key->rand, key->rand_len);
    if (err == MS_OK)
        err = ms_mikey_derive(key->prf, out->master_salt, salt_len, MS_MIKEY_KDF_SALT,
                              key->gmk, key->gmk_len, key->cs_id, guk_id, key->rand,
                              key->rand_len);
    if (err != MS_OK) {
        ms_wipe(out, sizeof *out);
        return err;
    }
    out->key_len = 16;
    out->salt_len = salt_len;
    ms_store_be32(out->mki, key->gmk_id);
    ms_store_be32(out->mki + 4, guk_id);
    out->mki_len = 8;
    return MS_OK;
}

int group_uri_ok(const char *s, size_t max)
{
    if (s == NULL)
        return 0;
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

void group_hash_hex(char out[17], const char *group)
{
    uint8_t h[32];
    unsigned int hl = 0;
    memset(h, 0, sizeof h);
    (void)EVP_Digest(group, strlen(group), h, &hl, EVP_sha256(), NULL);
    ms_hex_encode_lower(out, h, 8);
}
