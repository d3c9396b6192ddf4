/*
 * Internals of the Annex D server (src/kms/server.c) for tests: the request handler can
 * be driven without sockets. Also the facade helper the server uses for /certcache.
 */
#ifndef MS_KMS_SERVER_H
#define MS_KMS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "kmsif/kmsif.h"
#include "mikeysakke/kms.h"
#include "net/http.h"

#define MS_KMS_REPLAY_WINDOW 300 /* seconds either side of now */
#define MS_KMS_REPLAY_MAX 1000000 /* remembered requests; beyond: 503 */
#define MS_KMS_CONTENT_TYPE "application/xml" /* of a KmsRequest; else 415 */

/* The server state without the HTTP plumbing (ms_kms_server_start adds it). */
ms_err ms_kms_server_new(ms_kms_server **out, ms_kms *k);
void ms_kms_server_free(ms_kms_server *s);
/* The handler given to ms_http_start (ctx = the server). */
void ms_kms_server_handle(void *ctx, const ms_http_request *req, ms_http_response *resp);
/* The body of the plumbing's own refusals (405, 413, 429): a KmsError. */
void ms_kms_server_error_body(void *ctx, const ms_http_request *req, ms_http_response *resp);
size_t ms_kms_server_metrics(void *ctx, char *out, size_t cap);
bool ms_kms_server_health(void *ctx, const char **status_text);
/* The clock of the replay window, NTP seconds (default: the system clock). */
void ms_kms_server_set_clock(ms_kms_server *s, uint64_t (*now)(void *ctx), void *ctx);

/* This KMS's certificates in force from the current key period on (the current
 * generation's first), for KmsCertCache. Works sealed. */
ms_err ms_kms_certificates(ms_kms *k, ms_kms_certificate *certs, size_t cap, size_t *n);

#endif
