/*
 * The one audit log of a threshold server (see log.h).
 */
#include "tkms/log.h"

#include <stdio.h>
#include <string.h>

#include "mikeysakke/crypto.h"
#include "net/peer_msg.h"
#include "util/detail.h"

static int path_of(char *out, size_t cap, const char *dir, const char *name)
{
    return (size_t)snprintf(out, cap, "%s/%s", dir, name) < cap;
}

ms_err ms_tkms_log_open(ms_audit **out, const char *dir, char *detail, size_t detail_cap)
{
    if (out == NULL || dir == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    char key_path[4096], pub_path[4096], log_path[4096];
    if (!path_of(key_path, sizeof key_path, dir, MS_TKMS_LOG_KEY) ||
        !path_of(pub_path, sizeof pub_path, dir, MS_TKMS_LOG_PUB) ||
        !path_of(log_path, sizeof log_path, dir, MS_TKMS_LOG_NAME))
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "the directory name is too long");
    uint8_t seed[MS_PEER_KEY_BYTES], pub[MS_PEER_KEY_BYTES];
    ms_err e = ms_peer_key_read(key_path, seed, detail, detail_cap);
    if (e == MS_ERR_IO) {
        /* first need: a fresh key; a writer that made one meanwhile wins (EXISTS) */
        e = ms_peer_keygen(seed, pub, NULL);
        if (e == MS_OK)
            e = ms_peer_key_write(key_path, seed, true, detail, detail_cap);
        if (e == MS_OK)
            e = ms_peer_key_write(pub_path, pub, false, detail, detail_cap);
        if (e == MS_ERR_EXISTS)
            e = ms_peer_key_read(key_path, seed, detail, detail_cap);
    }
    if (e == MS_OK) {
        e = ms_audit_open(out, log_path, seed);
        if (e != MS_OK)
            ms_detail_set(detail, detail_cap, "%s: %s", log_path, ms_strerror(e));
    }
    ms_wipe(seed, sizeof seed);
    return e;
}

ms_err ms_tkms_log_public(const char *dir, uint8_t pub[MS_AUDIT_PUBLIC_BYTES], char *detail,
                          size_t detail_cap)
{
    char pub_path[4096];
    if (dir == NULL || pub == NULL || !path_of(pub_path, sizeof pub_path, dir, MS_TKMS_LOG_PUB))
        return MS_ERR_ARG;
    return ms_peer_pub_read(pub_path, pub, detail, detail_cap);
}
