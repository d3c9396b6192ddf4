/*
 * `kms serve` for a threshold server (src/tkms/serve.c): HTTPS on the port of this
 * server's URL in the peers table, with its own tls.crt/tls.key (devices pin it from the
 * table's tls= value; no CA, no client certificate).
 *
 *   POST /keymanagement/identity/v1/keyprov   body: a signed request (tkms/request.h),
 *       Content-Type application/octet-stream. Answer 200 application/octet-stream: this
 *       server's share message for the requesting device (ms_tkms_service_share_msg:
 *       signed by this server, the share HPKE-sealed to the device's ENROLLED X25519 key).
 *   GET /healthz, GET /metrics   (src/net/http.c; metrics below)
 *   /tkms/audit/...              audited extraction (tkms/audit.h), handed over first
 *
 * Checks in order, each refusal a text/plain body "code N: why" (N the ms_err):
 *   not POST 405; not that path 404; not application/octet-stream 415; malformed 400
 *   (MS_ERR_BAD_ENCODING); made for another server index 400 (MS_ERR_ARG); (user,
 *   device) not enrolled here 403 (MS_ERR_DEVICE_UNKNOWN); signature not by the enrolled
 *   key 401 (MS_ERR_SIGNATURE); time outside now +- MS_REPLAY_WINDOW or (device, time,
 *   nonce) seen before 409 (MS_ERR_REQUEST_STALE); over the device's rate 429
 *   (MS_ERR_RATE_LIMITED); period not batched here or user not in its batch 404
 *   (MS_ERR_NO_KEYS); the "share" entry cannot be logged 503 (MS_ERR_AUDIT_LOG).
 * A share leaves only after its "share" entry (user, device, period, client address) is
 * fsynced in the server's audit.log (tkms/log.h).
 *
 * /metrics adds: <name>_tkms_shares_total, <name>_tkms_refused_total{reason="..."},
 * <name>_tkms_enrolled_devices.
 */
#ifndef MS_TKMS_SERVE_H
#define MS_TKMS_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"
#include "tkms/node.h"

typedef struct ms_tkms_serve_config {
    const char *bind_addr;   /* NULL: the host of this server's URL */
    int port;                /* -1: the port of this server's URL; 0: any free port */
    unsigned threads;        /* 0: 2 */
    double rate_per_sec;     /* per client address (http.c); 0: 50 */
    double rate_burst;       /* 0: 100 */
    double device_rate;      /* requests per second per enrolled device; 0: 0.2 */
    double device_burst;     /* 0: 10 */
    char *detail;            /* why ms_tkms_serve_start failed */
    size_t detail_cap;
} ms_tkms_serve_config;

typedef struct ms_tkms_server ms_tkms_server;

/* Starts serving svc (which must outlive the server): opens the audit log, the audit
 * state (ms_tkms_audit_open), the enrolment table, then listens. Errors of those pieces
 * and of ms_http_start. */
ms_err ms_tkms_serve_start(ms_tkms_server **out, ms_tkms_service *svc,
                           const ms_tkms_serve_config *cfg);
uint16_t ms_tkms_serve_port(const ms_tkms_server *s);
/* Stops listening, waits for running requests, closes everything; NULL is fine. */
void ms_tkms_serve_stop(ms_tkms_server *s);

#endif
