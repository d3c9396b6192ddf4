/*
 * The TS 33.180 Annex D paths and the export index, in one place (src/kmsif/annexd.c):
 * what `kms serve` and `dist serve` parse, what the provisioning client builds, and the
 * index.txt line `kms export` writes for `dist serve`.
 *
 * Resources, each under MS_ANNEXD_ROOT (D.2.1 to D.2.3):
 *   /init                  KMS Initialize (the KMS certificate)
 *   /keyprov               KMS KeyProvision of the requesting device, current period
 *   /keyprov/<user>        ... for that user (percent-encoded user URI; decoded at
 *                          most 255 octets, no space or control character)
 *   /keyprov/<user>/<t>    ... of the key period of time t: 16 hex digits, NTP 32.32
 *   /certcache[/<n>]       KMS CertCache (n: the client's latest cache number, decimal)
 *
 * Index lines (index.txt of an export; '#' lines are comments, blank lines ignored):
 *   "device user file sha256(file) period sha256(device-token)"
 * one space between fields; device: 1..64 of [A-Za-z0-9._:@-]; user: 1..255 printable
 * ASCII octets, no space (a URI is percent-encoded); file: a plain *.xml name of at most
 * 159 of [A-Za-z0-9._-], not hidden; the hashes: 64 hex digits (either case on input,
 * lower case on output); period: decimal.
 */
#ifndef MS_KMSIF_ANNEXD_H
#define MS_KMSIF_ANNEXD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

#define MS_ANNEXD_ROOT "/keymanagement/identity/v1"
#define MS_ANNEXD_URI_MAX 255       /* a user URI, decoded */
#define MS_ANNEXD_DEVICE_ID_MAX 64
#define MS_ANNEXD_FILE_MAX 159
/* Longest path ms_annexd_path_build writes: the root, "/keyprov/", a user URI of which
 * every octet is percent-encoded, "/" and 16 hex digits. */
#define MS_ANNEXD_PATH_MAX (sizeof MS_ANNEXD_ROOT + 9 + 3 * MS_ANNEXD_URI_MAX + 1 + 16)
/* Longest index line, with its newline. */
#define MS_ANNEXD_INDEX_LINE_MAX \
    (MS_ANNEXD_DEVICE_ID_MAX + MS_ANNEXD_URI_MAX + MS_ANNEXD_FILE_MAX + 64 + 20 + 64 + 6)
/* The column header `kms export` writes as the index's second comment line. */
#define MS_ANNEXD_INDEX_COLUMNS "# device user file sha256 period sha256(device-token)\n"

typedef enum ms_annexd_resource {
    MS_ANNEXD_INIT = 1,
    MS_ANNEXD_KEYPROV,
    MS_ANNEXD_CERTCACHE,
} ms_annexd_resource;

typedef struct ms_annexd_path {
    ms_annexd_resource resource;
    bool has_user;                       /* keyprov only */
    bool has_time;                       /* keyprov with a user only */
    bool has_cache_number;               /* certcache only */
    char user[MS_ANNEXD_URI_MAX + 1];    /* decoded */
    uint64_t time;                       /* NTP seconds (the path's fraction is dropped) */
    uint64_t cache_number;
} ms_annexd_path;

/* Reads a request path (without query). MS_ERR_INVALID: not an Annex D resource (the
 * servers answer 404); MS_ERR_BAD_ENCODING: a resource with a malformed user, time or
 * cache number (400). detail names the cause; out is zero on failure. */
ms_err ms_annexd_path_parse(const char *path, ms_annexd_path *out, char *detail,
                            size_t detail_cap);

/* Writes the path of p, root included, NUL-terminated (the user percent-encoded but for
 * RFC 3986's unreserved characters, the time as 16 upper-case hex digits). MS_ERR_ARG
 * with detail for what no path can carry (a time without user, a user outside the
 * rules above, a time from NTP era 1 on, i.e. 2036); MS_ERR_BUFFER_TOO_SMALL. */
ms_err ms_annexd_path_build(const ms_annexd_path *p, char *out, size_t cap, char *detail,
                            size_t detail_cap);

/* What a built path is appended to: the server URL ("https://host[:port][/prefix]")
 * without a trailing MS_ANNEXD_ROOT and slashes. MS_ERR_ARG with detail for another
 * scheme, spaces or control characters, nothing after the scheme, or a URL longer than
 * cap - 1 - strlen(MS_ANNEXD_ROOT). */
ms_err ms_annexd_base_url(const char *url, char *out, size_t cap, char *detail,
                        size_t detail_cap);

/* Whether ClientReqUrl (the URI a KmsRequest says it was POSTed to) ends with path, the
 * path it was actually POSTed to (a query in url is ignored): so a request body cannot be
 * replayed against another resource. */
bool ms_annexd_url_names_path(const char *url, const char *path);

/* A device ID the index and a bearer token can carry. */
bool ms_annexd_device_id_ok(const char *device_id);

typedef struct ms_annexd_index_entry {
    const char *device;
    const char *user;
    const char *file;
    uint8_t package_sha256[32];
    uint64_t period;
    uint8_t token_sha256[32];
} ms_annexd_index_entry;

/* Reads one index line (no newline; not a comment) in place: the separators become NULs
 * and device, user and file point into line. MS_ERR_BAD_ENCODING with detail ("bad
 * device ID", "fewer than 6 fields ...") when the line breaks a rule above; out is then
 * zero but for device, set when the line has 6 fields and a valid device ID. */
ms_err ms_annexd_index_line_parse(char *line, ms_annexd_index_entry *out, char *detail,
                                  size_t detail_cap);

/* Writes e as one index line with its newline; *len (may be NULL) gets its length.
 * MS_ERR_ARG with detail for a field the format cannot carry; MS_ERR_BUFFER_TOO_SMALL
 * (MS_ANNEXD_INDEX_LINE_MAX + 1 always suffices). */
ms_err ms_annexd_index_line_write(const ms_annexd_index_entry *e, char *out, size_t cap,
                                  size_t *len, char *detail, size_t detail_cap);

#endif
