/*
 * The distribution server behind `mikeysakke dist serve DIR` (src/dist/dist.c; its public
 * face is include/mikeysakke/dist.h): it serves
 * the export folder of an offline KMS (`kms export`: index.txt, certificate.xml and one
 * key package per device and period) at the TS 33.180 Annex D URIs that `kms serve`
 * answers, and holds no secret: the packages are already encrypted to their devices and
 * signed under their InKs, and a device's bearer token is checked against the
 * SHA-256(token) the export wrote into the index.
 *
 *   POST /keymanagement/identity/v1/init                 KmsInit with certificate.xml
 *   POST /keymanagement/identity/v1/keyprov              the device's package, current period
 *   POST /keymanagement/identity/v1/keyprov/<user>[/<t>] ... of the period of NTP time t
 *                                                         (16 hex digits, 32.32)
 *   POST /keymanagement/identity/v1/certcache[/<n>]      KmsCertCache with certificate.xml
 *
 * Answers: 200 with the document; otherwise a KmsResponse with a KmsError (ErrorCode =
 * the ms_err code, ErrorMsg) and 400 (malformed path, time or KmsRequest), 401 (no
 * token, a token that is not the device's, or a device not in the export: the same
 * answer), 403 (another user's URI), 404 (unknown resource, no package for that period,
 * a period other than the current and the next), 405 (not POST), 409 (Time more than
 * 300 s off, or a replayed request: as `kms serve`), 415 (not application/xml), 503 (no
 * export yet, or an export being replaced).
 *
 * Index lines: "device user file sha256(file) period sha256(token)" (hex either case;
 * the format is src/kmsif/annexd.h's); '#' lines are comments. A bad line is skipped and logged, not fatal; an index with no
 * usable line is refused. The index is re-read when its inode, size or mtime changes
 * (checked with one stat per request): a complete, well-formed index with its
 * certificate replaces the previous one atomically (reference-counted snapshots), a
 * malformed one is refused and the previous one kept. A package is only served when its
 * SHA-256 matches the index, so a half-replaced export is never served.
 */
#ifndef MS_DIST_DIST_H
#define MS_DIST_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/dist.h"
#include "mikeysakke/errors.h"
#include "net/http.h"

/* The export folder's state and request handler, below the HTTPS server of
 * ms_dist_server_start (include/mikeysakke/dist.h); tests drive it without sockets. */
typedef struct ms_dist ms_dist;

/* Opens the export folder. An absent index.txt is allowed (503 until an export
 * arrives); a malformed index or certificate is MS_ERR_CONFIG with a detail
 * ("index.txt:LINE: why"); a missing folder MS_ERR_IO. log may be NULL. */
ms_err ms_dist_open(ms_dist **out, const char *dir, ms_dist_log_fn log, void *log_ctx,
                    char *detail, size_t cap);
void ms_dist_close(ms_dist *d);

/* The clock for "current period", NTP seconds (default: the system clock). */
void ms_dist_set_clock(ms_dist *d, uint64_t (*now)(void *ctx), void *ctx);

/* Re-reads the index if it changed since the last look. *reloaded (may be NULL) says a
 * new index is in force. A refused index: MS_ERR_CONFIG with detail, the old one kept
 * (and the same refused file is not parsed again). */
ms_err ms_dist_check(ms_dist *d, bool *reloaded, char *detail, size_t cap);

/* Packages listed by the index in force (0 without one). */
size_t ms_dist_packages(ms_dist *d);

/* The callbacks of ms_http_start (ctx = the ms_dist). */
void ms_dist_handle(void *ctx, const ms_http_request *req, ms_http_response *resp);
size_t ms_dist_metrics(void *ctx, char *out, size_t cap);
bool ms_dist_health(void *ctx, const char **status_text);

#endif
