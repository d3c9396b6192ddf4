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
    const char *authorization; /* the whole Authorization header (any scheme), or NULL */
    const char *content_type;  /* the Content-Type header, or NULL */
} ms_http_request;

/* Whether a Content-Type header value names media type `type` (case-insensitive,
 * parameters such as "; charset=UTF-8" allowed). NULL header: false. */
bool ms_http_media_type_is(const char *header, const char *type);

typedef struct ms_http_response {
    int status;               /* HTTP status; left 0 (or out of range) = 500 */
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
/* Optional: builds the body of an answer the server gives on its own (405, 413, 429),
 * e.g. a KmsResponse with a KmsError element. `req` has method, path and client_ip
 * (no body, no bearer); resp->status is preset and stays what it is. NULL = a short
 * text/plain body. */
typedef void (*ms_http_error_fn)(void *ctx, const ms_http_request *req,
                                 ms_http_response *resp);

typedef struct ms_http_config {
    const char *bind_addr;  /* numeric "127.0.0.1", "::1", "::" (v4 too); NULL = all ("::", or
                               "0.0.0.0" where there is no IPv6) */
    uint16_t port;          /* 0 = any free port (see ms_http_port) */
    const char *cert_file;  /* PEM server certificate chain; NULL = plain HTTP (tests) */
    const char *key_file;   /* PEM private key */
    size_t max_body;        /* 0 = 64 KiB; larger bodies get 413 */
    double rate_per_sec;    /* per client IP; 0 = no limit; excess gets 429 */
    double rate_burst;      /* bucket size; < 1 = max(1, rate_per_sec) */
    unsigned threads;       /* 0 = 2 */
    const char *name;       /* metric prefix, e.g. "mikeysakke_kms"; NULL = "mikeysakke" */
    /* Additions (all optional, 0/NULL = default). */
    unsigned max_connections; /* in total; 0 = 1024 (beyond: closed at once) */
    unsigned max_per_ip;      /* per client: an IPv4 address, an IPv6 /64; 0 = 32 */
    unsigned timeout_sec;     /* idle timeout, and the time a connection has to complete a
                                 request after opening or its previous answer; 0 = 30 */
    ms_http_error_fn error_body; /* see above */
    bool allow_delete;        /* DELETE goes to the handler too (else 405 like any other) */
    char *detail;             /* if set, ms_http_start writes why it failed here */
    size_t detail_cap;
    /* Client certificates (mutual TLS between servers, src/net/peer.c). With client_check
     * set (TLS only) every handshake asks the client for a certificate, and every request
     * goes first to client_check with the connection's TLS session (a gnutls_session_t):
     * a result below 0 refuses the request (403 and the connection closed, before any
     * body is read, /healthz and /metrics included); otherwise peer_handler, if set, gets
     * the request with that result instead of the handler (which may then be NULL). */
    int (*client_check)(void *check_ctx, void *tls_session);
    void *client_check_ctx;
    void (*peer_handler)(void *ctx, int peer, const ms_http_request *req,
                         ms_http_response *resp);
    /* PEM certificates named in the certificate request (GnuTLS asks for a client
     * certificate only when it has such a list; whether the client's certificate is
     * accepted is client_check's decision alone). NULL = the server's own certificate. */
    const char *client_ca_pem;
} ms_http_config;

/* Starts the server (threads from cfg->threads) and returns once it listens.
 * Errors: MS_ERR_ARG (bad config: address, name), MS_ERR_IO (cert/key file unreadable,
 * or the address cannot be bound, e.g. in use), MS_ERR_KEYFILE_MODE (key file not a
 * regular file or open to group/others), MS_ERR_TLS (certificate or key not accepted),
 * MS_ERR_NOMEM, MS_ERR_INTERNAL. The key is checked against the certificate first and
 * wiped from memory once the server has it; TLS 1.2/1.3, AEAD ciphers, ECDHE only.
 * Behaviour: methods other than GET and POST (and DELETE with allow_delete) get 405
 * (with Allow); a body above max_body gets 413 with Connection: close, after up to
 * 1 MiB past the limit has been drained (declared by Content-Length or chunked; a
 * client sending more is cut off); the rate limit (429 with Retry-After) runs before
 * the body too. A client over max_per_ip, or over max_connections in all, is refused at
 * accept; a connection that has not completed a request within timeout_sec of opening
 * or of its previous answer is shut down (slow clients), and an idle one closed. GET /healthz and GET /metrics are answered here and are not rate-limited.
 * req->path is the URL path without its query string, not percent-decoded; req->body
 * is never NULL (""), the handler runs only with the whole body. Every answer carries
 * Cache-Control: no-store and X-Content-Type-Options: nosniff (plus HSTS with TLS).
 * /metrics: <name>_http_requests_total{code="..."}, <name>_http_rate_limited_total,
 * <name>_http_response_bytes_total (bodies), <name>_http_requests_in_flight, then the
 * caller's lines (up to 64 KiB). */
ms_err ms_http_start(ms_http_server **out, const ms_http_config *cfg, ms_http_handler handler,
                     ms_http_metrics_fn metrics, ms_http_health_fn health, void *ctx);
/* The connection settings of `kms serve` and `dist serve` (max-connections,
 * max-per-client, timeout) from their text; a NULL text leaves its value alone.
 * MS_ERR_USAGE with detail naming the setting for a value that is not a whole number in
 * range (1..65536, 1..65536 and not above max-connections, 1..3600 seconds). */
ms_err ms_http_limits_parse(const char *max_connections, const char *max_per_client,
                            const char *timeout, unsigned *conns, unsigned *per_client,
                            unsigned *timeout_sec, char *detail, size_t detail_cap);
/* Whether two textual addresses count as one client for max_per_ip (the same IPv4
 * address, also IPv4-mapped; the same IPv6 /64). False if either is not an address. */
bool ms_http_same_client(const char *a, const char *b);
/* Stops listening, closes every connection, waits for running handlers; NULL is a no-op. */
void ms_http_stop(ms_http_server *srv);
/* The port actually bound (useful with cfg->port = 0). */
uint16_t ms_http_port(const ms_http_server *srv);

#endif
