/*
 * A small HTTPS server on libmicrohttpd (src/net/http.c), shared by `kms serve` and
 * `dist serve`: TLS from PEM files, a body size limit, a per-client rate limit (token
 * bucket per IP address), /healthz and Prometheus-style /metrics answered here, every
 * other request handed to the caller's handler. The server never logs bodies or
 * tokens.
 */
#ifndef MS_NET_HTTP_H
#define MS_NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

typedef struct ms_http_server ms_http_server;

typedef struct ms_http_request {
    const char *method;     /* "GET", "POST" */
    const char *path;       /* URL path, not decoded (the handler percent-decodes) */
    const char *client_ip;  /* textual address of the peer */
    const char *bearer;     /* the token of "Authorization: Bearer <token>", or NULL */
    const uint8_t *body;
    size_t body_len;
} ms_http_request;

typedef struct ms_http_response {
    int status;               /* HTTP status */
    const char *content_type; /* static string; NULL = "application/xml" */
    char *body;               /* malloc'd by the handler, freed (and wiped) by the server */
    size_t body_len;
} ms_http_response;

/* Handles one request; runs on a server thread (several may run at once). */
typedef void (*ms_http_handler)(void *ctx, const ms_http_request *req,
                                ms_http_response *resp);
/* Fills `out` with extra Prometheus lines for /metrics and returns their length; and
 * says whether the service is ready (for /healthz: 200 "ok" or 503 "sealed" etc.). */
typedef size_t (*ms_http_metrics_fn)(void *ctx, char *out, size_t cap);
typedef bool (*ms_http_health_fn)(void *ctx, const char **status_text);

typedef struct ms_http_config {
    const char *bind_addr;  /* "127.0.0.1", "::", NULL = all */
    uint16_t port;          /* 0 = any free port (see ms_http_port) */
    const char *cert_file;  /* PEM server certificate chain; NULL = plain HTTP (tests) */
    const char *key_file;   /* PEM private key */
    size_t max_body;        /* 0 = 64 KiB; larger bodies get 413 */
    double rate_per_sec;    /* per client IP; 0 = no limit; excess gets 429 */
    double rate_burst;
    unsigned threads;       /* 0 = 2 */
    const char *name;       /* metric prefix, e.g. "mikeysakke_kms" */
} ms_http_config;

ms_err ms_http_start(ms_http_server **out, const ms_http_config *cfg, ms_http_handler handler,
                     ms_http_metrics_fn metrics, ms_http_health_fn health, void *ctx);
void ms_http_stop(ms_http_server *srv);
uint16_t ms_http_port(const ms_http_server *srv);

#endif
