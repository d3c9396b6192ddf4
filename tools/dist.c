/*
 * `mikeysakke dist serve DIR`: the secret-free distribution server for an offline KMS's
 * export folder over HTTPS (mikeysakke/dist.h). Options override the
 * [dist] section of --config. SIGTERM or SIGINT stops it (exit 0).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "mikeysakke/dist.h"

ms_err cli_dist_serve(const struct cli_args *args);

const struct cli_opt cli_dist_serve_opts[] = {
    {"--dir", "DIR", CLI_POSITIONAL, "the export folder (kms export --out); also a bare DIR"},
    {"--config", "FILE", 0, "read [dist] settings (dir, listen, port, cert, key, rate, burst)"},
    {"--listen", "ADDR", 0, "address to listen on (default 127.0.0.1)"},
    {"--port", "N", 0, "TCP port (default 8443; 0 = any free port)"},
    {"--cert", "PEM", 0, "TLS server certificate chain (required here or in the config)"},
    {"--key", "PEM", 0, "TLS server private key (mode 0600; required here or in the config)"},
    {"--rate", "R", 0, "requests per second per client address (default 20; 0 = no limit)"},
    {"--burst", "B", 0, "burst per client address (default 40)"},
    {"--threads", "N", 0, "server threads (default 2)"},
    {"--max-connections", "N", 0, "connections in total (default 1024)"},
    {"--max-per-client", "N", 0, "connections per IPv4 address or IPv6 /64 (default 32)"},
    {"--timeout", "S", 0, "seconds to complete a request, and idle (default 30)"},
    {NULL, NULL, 0, NULL},
};

static void log_line(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "%s\n", line);
}

static ms_err number(const char *opt, const char *v, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !(x >= lo && x <= hi))
        return cli_fail(MS_ERR_USAGE, "%s: not a number in [%g, %g]: %s", opt, lo, hi, v);
    *out = x;
    return MS_OK;
}

ms_err cli_dist_serve(const struct cli_args *args)
{
    cli_config *cfg = NULL;
    char detail[512] = "";
    ms_err e = MS_OK;
    const char *path = cli_get(args, "--config");
    if (path != NULL) {
        static const char *const allowed[] = {"dir", "listen", "port", "cert", "key",
                                              "rate", "burst", "threads", "max-connections",
                                              "max-per-client", "timeout", NULL};
        if ((e = cli_config_load(&cfg, path, detail, sizeof detail)) != MS_OK ||
            (e = cli_config_check(cfg, "dist", allowed, detail, sizeof detail)) != MS_OK) {
            cli_config_free(cfg);
            return cli_fail(e, "%s", detail);
        }
    }
#define PICK(opt, key) cli_config_pick(cli_get(args, opt), cfg, "dist", key)
    const char *dir = PICK("--dir", "dir");
    const char *listen = PICK("--listen", "listen");
    const char *port_s = PICK("--port", "port");
    const char *cert = PICK("--cert", "cert");
    const char *key = PICK("--key", "key");
    const char *rate_s = PICK("--rate", "rate");
    const char *burst_s = PICK("--burst", "burst");
    const char *threads_s = PICK("--threads", "threads");
    const char *conns_s = PICK("--max-connections", "max-connections");
    const char *per_client_s = PICK("--max-per-client", "max-per-client");
    const char *timeout_s = PICK("--timeout", "timeout");
#undef PICK
    double port = 8443, rate = 20, burst = 40, threads = 2;
    ms_dist_server *srv = NULL;
    if (dir == NULL) {
        e = cli_fail(MS_ERR_USAGE, "dist serve: the export folder is needed (DIR or --dir)");
        goto out;
    }
    if (cert == NULL || key == NULL) {
        e = cli_fail(MS_ERR_USAGE, "dist serve: --cert and --key are needed (TLS only)");
        goto out;
    }
    if ((port_s != NULL && (e = number("--port", port_s, 0, 65535, &port)) != MS_OK) ||
        (rate_s != NULL && (e = number("--rate", rate_s, 0, 1e6, &rate)) != MS_OK) ||
        (burst_s != NULL && (e = number("--burst", burst_s, 0, 1e6, &burst)) != MS_OK) ||
        (threads_s != NULL && (e = number("--threads", threads_s, 1, 256, &threads)) != MS_OK))
        goto out;
    unsigned conns = 0, per_client = 0, timeout = 0;
    if ((e = ms_dist_limits_parse(&conns, &per_client, &timeout, conns_s, per_client_s,
                                  timeout_s, detail, sizeof detail)) != MS_OK) {
        e = cli_fail(e, "dist serve: %s", detail);
        goto out;
    }
    if (listen == NULL)
        listen = "127.0.0.1";

    /* Block the stop signals in every thread (the server's inherit the mask), then wait
     * for one here. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    ms_dist_server_config sc;
    memset(&sc, 0, sizeof sc);
    sc.dir = dir;
    sc.bind_addr = listen;
    sc.port = (uint16_t)port;
    sc.cert_file = cert;
    sc.key_file = key;
    sc.rate_per_sec = rate;
    sc.rate_burst = burst;
    sc.threads = (unsigned)threads;
    sc.max_connections = conns;
    sc.max_per_client = per_client;
    sc.timeout_sec = timeout;
    sc.log = log_line;
    sc.detail = detail;
    sc.detail_cap = sizeof detail;
    if ((e = ms_dist_server_start(&srv, &sc)) != MS_OK) {
        e = cli_fail(e, "dist serve: %s", detail);
        goto out;
    }
    int v6 = strchr(listen, ':') != NULL;
    fprintf(stderr, "listening on https://%s%s%s:%u\n", v6 ? "[" : "", listen, v6 ? "]" : "",
            (unsigned)ms_dist_server_port(srv));
    fflush(stderr);
    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    fprintf(stderr, "dist serve: stopping (signal %d)\n", sig);
out:
    ms_dist_server_stop(srv);
    cli_config_free(cfg);
    return e;
}
