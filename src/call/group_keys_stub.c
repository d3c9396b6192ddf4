/*
 * STUB — DELETE AT MERGE with the group branch: a local ms_group_sender_keys and
 * ms_group_key_wipe (the contract of include/mikeysakke/group.h) and a reader of the
 * test key file (group_keys_stub.h), so that group media can be built and tested before
 * src/group/ is there.
 */
#include "call/group_keys_stub.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mikeysakke/crypto.h"
#include "util/detail.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool parse_hex(uint8_t *out, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n % 2 != 0 || n / 2 > cap)
        return false;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return true;
}

ms_err ms_group_key_load_stub(ms_group_key *out, const char *path, char *detail, size_t cap)
{
    if (out == NULL || path == NULL)
        return MS_ERR_ARG;
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ms_detail_fail(MS_ERR_IO, detail, cap, "group key file %s: %s", path,
                              strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (sb.st_mode & 077) != 0) {
        close(fd);
        return ms_detail_fail(MS_ERR_KEYFILE_MODE, detail, cap,
                              "group key file %s must be a regular file of mode 0600", path);
    }
    char text[2048];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0 || (size_t)n >= sizeof text - 1) {
        ms_wipe(text, sizeof text);
        return ms_detail_fail(MS_ERR_IO, detail, cap, "group key file %s: empty or too long",
                              path);
    }
    text[n] = 0;
    out->prf = MS_MIKEY_PRF_HMAC_SHA256;
    bool have_gmk = false, have_id = false;
    ms_err err = MS_OK;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL && err == MS_OK;
         line = strtok_r(NULL, "\n", &save)) {
        char *val = strchr(line, ' ');
        if (val == NULL) {
            err = ms_detail_fail(MS_ERR_INVALID, detail, cap, "group key file %s: a line "
                                 "without a value", path);
            break;
        }
        *val++ = 0;
        size_t len = 0;
        uint8_t id[4];
        if (strcmp(line, "group") == 0 && strlen(val) < sizeof out->group) {
            snprintf(out->group, sizeof out->group, "%s", val);
        } else if (strcmp(line, "gmk") == 0 && parse_hex(out->gmk, sizeof out->gmk, &len, val) &&
                   len == 16) {
            out->gmk_len = len;
            have_gmk = true;
        } else if (strcmp(line, "gmk-id") == 0 && parse_hex(id, 4, &len, val) && len == 4) {
            out->gmk_id = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 |
                          (uint32_t)id[2] << 8 | id[3];
            have_id = true;
        } else if (strcmp(line, "rand") == 0 &&
                   parse_hex(out->rand, sizeof out->rand, &len, val) && len >= 16) {
            out->rand_len = len;
        } else if (strcmp(line, "cs-id") == 0 && strlen(val) <= 3 && atoi(val) <= 255) {
            out->cs_id = (uint8_t)atoi(val);
        } else {
            err = ms_detail_fail(MS_ERR_INVALID, detail, cap, "group key file %s: bad %s line",
                                 path, line);
        }
    }
    ms_wipe(text, sizeof text);
    if (err == MS_OK && (!have_gmk || !have_id || out->rand_len == 0 || out->group[0] == 0))
        err = ms_detail_fail(MS_ERR_INVALID, detail, cap, "group key file %s needs group, gmk, "
                             "gmk-id and rand", path);
    if (err == MS_OK && (out->gmk_id >> 28) != MS_MIKEY_PURPOSE_GMK)
        err = ms_detail_fail(MS_ERR_MIKEY_KEY_ID, detail, cap, "group key file %s: GMK-ID "
                             "without the GMK purpose tag", path);
    if (err != MS_OK)
        ms_group_key_wipe(out);
    return err;
}
