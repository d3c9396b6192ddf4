/*
 * TS 33.180 Annex D paths and the export index line (annexd.h). Everything here is
 * public data (URIs, device IDs, hashes), so the parsers may branch on it.
 */
#include "kmsif/annexd.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/detail.h"
#include "util/hex.h"

#define ROOT_LEN (sizeof MS_ANNEXD_ROOT - 1)

/* ---- small helpers --------------------------------------------------------------------- */

/* 1..20 decimal digits that fit 64 bits. */
static bool decimal_u64(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    if (*s == '\0' || strlen(s) > 20)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned dgt = (unsigned)(*s - '0');
        if (x > (UINT64_MAX - dgt) / 10)
            return false;
        x = x * 10 + dgt;
    }
    *v = x;
    return true;
}

/* A user URI as a path carries it (decoded): no space or control character. */
static bool uri_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MS_ANNEXD_URI_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] == 0x7f)
            return false;
    return true;
}

/* ... and as an index line carries it: printable ASCII as well. */
static bool index_uri_ok(const char *s)
{
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c >= 0x7f)
            return false;
    return uri_ok(s);
}

bool ms_annexd_device_id_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > MS_ANNEXD_DEVICE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ':' || c == '@'))
            return false;
    }
    return true;
}

/* A plain file name inside the export folder: no path, no hidden file, no "..". */
static bool file_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 5 || n > MS_ANNEXD_FILE_MAX || s[0] == '.' || strcmp(s + n - 4, ".xml") != 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Percent-decodes [in, in+n) into out; false for a bad escape, NUL, control character
 * or overflow. */
static bool pct_decode(char *out, size_t cap, const char *in, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            if (i + 2 >= n)
                return false;
            int hi = ms_hex_value(in[i + 1]), lo = ms_hex_value(in[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = hi << 4 | lo;
            i += 2;
        }
        if (c < 0x20 || c == 0x7f || o + 1 >= cap)
            return false;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return o > 0;
}

/* The unreserved characters of RFC 3986 stay, everything else is %XX. */
static bool pct_encode(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p != '\0'; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            if (o + 1 >= cap)
                return false;
            out[o++] = (char)*p;
        } else {
            if (o + 3 >= cap)
                return false;
            out[o++] = '%';
            ms_hex_encode_upper(out + o, p, 1);
            o += 2;
        }
    }
    out[o] = '\0';
    return true;
}

/* ---- paths ----------------------------------------------------------------------------- */

static ms_err parse_path(const char *path, ms_annexd_path *out, char *detail,
                         size_t detail_cap)
{
    if (path == NULL || strncmp(path, MS_ANNEXD_ROOT, ROOT_LEN) != 0 || path[ROOT_LEN] != '/')
        return ms_detail_fail(MS_ERR_INVALID, detail, detail_cap,
                              "the path is not under " MS_ANNEXD_ROOT "/");
    const char *p = path + ROOT_LEN + 1;
    if (strcmp(p, "init") == 0) {
        out->resource = MS_ANNEXD_INIT;
        return MS_OK;
    }
    if (strncmp(p, "certcache", 9) == 0 && (p[9] == '\0' || p[9] == '/')) {
        out->resource = MS_ANNEXD_CERTCACHE;
        if (p[9] == '\0')
            return MS_OK;
        if (!decimal_u64(p + 10, &out->cache_number))
            return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                                  "the cache number is not a decimal number below 2^64");
        out->has_cache_number = true;
        return MS_OK;
    }
    if (strncmp(p, "keyprov", 7) != 0 || (p[7] != '\0' && p[7] != '/'))
        return ms_detail_fail(MS_ERR_INVALID, detail, detail_cap,
                              "no such resource (init, keyprov or certcache)");
    out->resource = MS_ANNEXD_KEYPROV;
    if (p[7] == '\0')
        return MS_OK;
    const char *u = p + 8;
    const char *slash = strchr(u, '/');
    size_t ulen = slash != NULL ? (size_t)(slash - u) : strlen(u);
    if (!pct_decode(out->user, sizeof out->user, u, ulen) || !uri_ok(out->user))
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                              "the user segment is empty, longer than %d octets decoded, "
                              "badly percent-encoded or holds a space or control character",
                              MS_ANNEXD_URI_MAX);
    out->has_user = true;
    if (slash == NULL)
        return MS_OK;
    uint8_t raw[8];
    if (ms_hex_decode(raw, 8, slash + 1, strlen(slash + 1)) != MS_OK)
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                              "the time segment is not 16 hex digits (NTP 32.32)");
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = v << 8 | raw[i];
    out->time = v >> 32; /* NTP 32.32: seconds in the high half */
    out->has_time = true;
    return MS_OK;
}

ms_err ms_annexd_path_parse(const char *path, ms_annexd_path *out, char *detail,
                            size_t detail_cap)
{
    if (out == NULL)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "no output for the path");
    memset(out, 0, sizeof *out);
    ms_err e = parse_path(path, out, detail, detail_cap);
    if (e != MS_OK)
        memset(out, 0, sizeof *out);
    return e;
}

ms_err ms_annexd_path_build(const ms_annexd_path *p, char *out, size_t cap, char *detail,
                            size_t detail_cap)
{
    if (p == NULL || out == NULL)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "no path or no output");
    int n = -1;
    switch (p->resource) {
    case MS_ANNEXD_INIT:
        n = snprintf(out, cap, "%s/init", MS_ANNEXD_ROOT);
        break;
    case MS_ANNEXD_CERTCACHE:
        if (p->has_cache_number)
            n = snprintf(out, cap, "%s/certcache/%llu", MS_ANNEXD_ROOT,
                         (unsigned long long)p->cache_number);
        else
            n = snprintf(out, cap, "%s/certcache", MS_ANNEXD_ROOT);
        break;
    case MS_ANNEXD_KEYPROV: {
        if (!p->has_user) {
            if (p->has_time)
                return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                                      "a keyprov path names a time only after a user");
            n = snprintf(out, cap, "%s/keyprov", MS_ANNEXD_ROOT);
            break;
        }
        if (!uri_ok(p->user))
            return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                                  "the user URI is empty, longer than %d octets or holds "
                                  "a space or control character",
                                  MS_ANNEXD_URI_MAX);
        if (p->has_time && p->time > UINT32_MAX)
            return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                                  "time %llu is past NTP era 0 (2036): the path's 32.32 "
                                  "time cannot carry it",
                                  (unsigned long long)p->time);
        char user[3 * MS_ANNEXD_URI_MAX + 1];
        if (!pct_encode(user, sizeof user, p->user))
            return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "the user URI is too long");
        if (p->has_time)
            n = snprintf(out, cap, "%s/keyprov/%s/%016llX", MS_ANNEXD_ROOT, user,
                         (unsigned long long)(p->time << 32));
        else
            n = snprintf(out, cap, "%s/keyprov/%s", MS_ANNEXD_ROOT, user);
        break;
    }
    default:
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "unknown resource %d",
                              (int)p->resource);
    }
    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0)
            out[0] = '\0';
        return ms_detail_fail(MS_ERR_BUFFER_TOO_SMALL, detail, detail_cap,
                              "the path needs %d octets and its NUL", n);
    }
    return MS_OK;
}

ms_err ms_annexd_base_url(const char *url, char *out, size_t cap, char *detail,
                        size_t detail_cap)
{
    if (url == NULL || out == NULL)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "no URL");
    if (strncasecmp(url, "https://", 8) != 0)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                              "URL %.200s: only https:// is allowed", url);
    size_t ul = strlen(url);
    while (ul > 8 && url[ul - 1] == '/')
        ul--;
    if (ul >= ROOT_LEN && strncmp(url + ul - ROOT_LEN, MS_ANNEXD_ROOT, ROOT_LEN) == 0)
        ul -= ROOT_LEN;
    while (ul > 8 && url[ul - 1] == '/')
        ul--;
    if (ul + ROOT_LEN + 1 > cap || ul <= 8)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "URL %.200s: malformed", url);
    for (size_t i = 0; i < ul; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
            return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                                  "URL: spaces or control characters");
    memcpy(out, url, ul);
    out[ul] = '\0';
    return MS_OK;
}

bool ms_annexd_url_names_path(const char *url, const char *path)
{
    if (url == NULL || path == NULL)
        return false;
    size_t n = strlen(url), m = strlen(path);
    const char *q = strchr(url, '?');
    if (q != NULL)
        n = (size_t)(q - url);
    return n >= m && memcmp(url + n - m, path, m) == 0;
}

/* ---- index lines ------------------------------------------------------------------------ */

#define FIELDS "(device user file sha256 period token-sha256)"

ms_err ms_annexd_index_line_parse(char *line, ms_annexd_index_entry *out, char *detail,
                                  size_t detail_cap)
{
    if (line == NULL || out == NULL)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "no line");
    memset(out, 0, sizeof *out);
    for (const char *c = line; *c; c++)
        if (*c < 0x20 || *c >= 0x7f)
            return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                                  "not printable ASCII (a URI must be percent-encoded)");
    if (line[0] == '#' || line[0] == '\0')
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                              "a comment or blank line, not an entry");
    char *f[7];
    size_t nf = 0;
    for (char *q = line; nf < 7;) {
        f[nf++] = q;
        char *sp = strchr(q, ' ');
        if (sp == NULL)
            break;
        *sp = '\0';
        q = sp + 1;
    }
    if (nf != 6)
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap, "%s",
                              nf < 6 ? "fewer than 6 fields " FIELDS
                                     : "more than 6 fields " FIELDS);
    const char *why = NULL;
    if (!ms_annexd_device_id_ok(f[0]))
        why = "bad device ID";
    else if (!index_uri_ok(f[1]))
        why = "bad user URI";
    else if (!file_name_ok(f[2]))
        why = "bad package file name";
    else if (ms_hex_decode(out->package_sha256, 32, f[3], strlen(f[3])) != MS_OK)
        why = "bad package SHA-256";
    else if (!decimal_u64(f[4], &out->period))
        why = "bad key period";
    else if (ms_hex_decode(out->token_sha256, 32, f[5], strlen(f[5])) != MS_OK)
        why = "bad token SHA-256";
    if (why != NULL) {
        memset(out, 0, sizeof *out);
        if (ms_annexd_device_id_ok(f[0]))
            out->device = f[0]; /* so the caller can say whose line it was */
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap, "%s", why);
    }
    out->device = f[0];
    out->user = f[1];
    out->file = f[2];
    return MS_OK;
}

ms_err ms_annexd_index_line_write(const ms_annexd_index_entry *e, char *out, size_t cap,
                                  size_t *len, char *detail, size_t detail_cap)
{
    if (len != NULL)
        *len = 0;
    if (e == NULL || out == NULL)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "no entry or no output");
    if (!ms_annexd_device_id_ok(e->device))
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                              "device ID not 1..%d of letters, digits and ._:@-",
                              MS_ANNEXD_DEVICE_ID_MAX);
    if (e->user == NULL || !index_uri_ok(e->user))
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                              "user URI not 1..%d octets of printable ASCII without space",
                              MS_ANNEXD_URI_MAX);
    if (e->file == NULL || !file_name_ok(e->file))
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                              "package file name not a plain *.xml name of at most %d "
                              "letters, digits and ._-",
                              MS_ANNEXD_FILE_MAX);
    char ph[65], th[65];
    ms_hex_encode_lower(ph, e->package_sha256, 32);
    ms_hex_encode_lower(th, e->token_sha256, 32);
    int n = snprintf(out, cap, "%s %s %s %s %llu %s\n", e->device, e->user, e->file, ph,
                     (unsigned long long)e->period, th);
    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0)
            out[0] = '\0';
        return ms_detail_fail(MS_ERR_BUFFER_TOO_SMALL, detail, detail_cap,
                              "the index line needs %d octets and its NUL", n);
    }
    if (len != NULL)
        *len = (size_t)n;
    return MS_OK;
}
