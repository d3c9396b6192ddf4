/*
 * The distribution server of an offline KMS (`mikeysakke dist serve DIR`): it serves the
 * export folder that `kms export` writes (index.txt, certificate.xml and one key package
 * per device and period) at the TS 33.180 Annex D resources that `kms serve` answers
 * (/keymanagement/identity/v1/init, /keyprov[/<user>[/<time>]], /certcache[/<n>]), plus
 * /healthz and /metrics, over HTTPS. It holds no secret: the packages are already
 * encrypted to their devices and signed under their InKs, and a device's bearer token is
 * checked against the SHA-256(token) the export wrote into the index. A new index is
 * picked up while serving (a malformed one is refused and the served one kept).
 */
#ifndef MIKEYSAKKE_DIST_H
#define MIKEYSAKKE_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/crypto.h" /* MS_WARN_UNUSED */
#include "mikeysakke/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Receives one line about reloads and refused index lines (no secrets, no tokens). */
typedef void (*ms_dist_log_fn)(void *ctx, const char *line);

typedef struct ms_dist_server ms_dist_server;
typedef struct ms_dist_server_config {
    const char *dir;          /* the export folder (required); no index.txt yet: 503 */
    const char *bind_addr;    /* NULL: all addresses */
    uint16_t port;            /* 0: any free port (ms_dist_server_port) */
    const char *cert_file;    /* PEM certificate chain and key (required: TLS only) */
    const char *key_file;
    double rate_per_sec;      /* per client address; 0: no limit */
    double rate_burst;
    unsigned threads;         /* 0: 2 */
    unsigned max_connections; /* in total; 0: 1024 */
    unsigned max_per_client;  /* per IPv4 address or IPv6 /64; 0: 32 */
    unsigned timeout_sec;     /* idle, and to complete a request; 0: 30 */
    ms_dist_log_fn log;       /* may be NULL */
    void *log_ctx;
    char *detail;             /* if not NULL: why ms_dist_server_start failed */
    size_t detail_cap;
} ms_dist_server_config;

/* Opens the export folder and starts serving it. MS_ERR_IO (no such folder),
 * MS_ERR_CONFIG (a malformed index or certificate: "index.txt:LINE: why"), MS_ERR_ARG
 * (no folder, certificate or key named), or the server's failure to listen; cfg->detail
 * names the cause. */
MS_API MS_WARN_UNUSED ms_err ms_dist_server_start(ms_dist_server **out,
                                                  const ms_dist_server_config *cfg)
    MS_NONNULL(1, 2);
/* The port actually bound. */
MS_API uint16_t ms_dist_server_port(const ms_dist_server *s);
/* Stops listening, waits for running requests, closes the folder; NULL is a no-op. */
MS_API void ms_dist_server_stop(ms_dist_server *s);

/* The connection limits from their text as `dist serve` and `kms serve` take them
 * (max-connections 1..65536, max-per-client 1..65536 and not above max-connections,
 * timeout 1..3600 seconds); a NULL text leaves its value alone. MS_ERR_USAGE with detail
 * naming the setting. */
MS_API MS_WARN_UNUSED ms_err ms_dist_limits_parse(
    unsigned *conns, unsigned *per_client, unsigned *timeout_sec, const char *max_connections,
    const char *max_per_client, const char *timeout, char *detail, size_t detail_cap)
    MS_NONNULL(1, 2, 3);

#ifdef __cplusplus
}
#endif

#endif
