/*
 * A threshold server answering devices (see serve.h).
 */
#include "tkms/serve.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kms/audit.h"
#include "mikeysakke/mikey.h"
#include "net/http.h"
#include "net/replay.h"
#include "tkms/audit.h"
#include "tkms/enrol.h"
#include "tkms/log.h"
#include "tkms/request.h"
#include "util/detail.h"
#include "util/hex.h"

enum reason {
    R_MALFORMED, R_OTHER_SERVER, R_NOT_ENROLLED, R_SIGNATURE, R_STALE, R_DEVICE_RATE,
    R_NO_KEYS, R_AUDIT, R_INTERNAL, R_NOT_FOUND, R_METHOD, R_MEDIA_TYPE, R__COUNT
};
static const char *const reason_name[R__COUNT] = {
    "malformed", "other_server", "not_enrolled", "signature", "stale", "device_rate",
    "no_keys",   "audit_log",    "internal",     "not_found", "method", "media_type"};

#define RATE_BUCKETS 1024

typedef struct bucket {
    struct bucket *next;
    char device[65];
    double tokens;
    double at; /* seconds, monotonic */
} bucket;

struct ms_tkms_server {
    ms_tkms_service *svc;
    ms_http_server *http;
    ms_audit *log;
    ms_tkms_audit *audit;
    ms_tkms_devices *devices;
    ms_replay_cache *replay;
    double device_rate, device_burst;
    pthread_mutex_t rate_mu;
    bucket *rate[RATE_BUCKETS];
    atomic_ullong shares;
    atomic_ullong refused[R__COUNT];
};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Token bucket per enrolled device key. */
static bool device_allowed(ms_tkms_server *s, const char *device)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = device; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    size_t b = (size_t)(h % RATE_BUCKETS);
    double now = mono();
    bool ok = false;
    pthread_mutex_lock(&s->rate_mu);
    bucket *k = s->rate[b];
    while (k != NULL && strcmp(k->device, device) != 0)
        k = k->next;
    if (k == NULL && (k = calloc(1, sizeof *k)) != NULL) {
        snprintf(k->device, sizeof k->device, "%s", device);
        k->tokens = s->device_burst;
        k->at = now;
        k->next = s->rate[b];
        s->rate[b] = k;
    }
    if (k != NULL) {
        k->tokens += (now - k->at) * s->device_rate;
        if (k->tokens > s->device_burst)
            k->tokens = s->device_burst;
        k->at = now;
        if (k->tokens >= 1) {
            k->tokens -= 1;
            ok = true;
        }
    }
    pthread_mutex_unlock(&s->rate_mu);
    return ok;
}

static void refuse(ms_tkms_server *s, ms_http_response *resp, int status, enum reason why,
                   ms_err code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void refuse(ms_tkms_server *s, ms_http_response *resp, int status, enum reason why,
                   ms_err code, const char *fmt, ...)
{
    atomic_fetch_add(&s->refused[why], 1);
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    resp->status = status;
    resp->content_type = "text/plain";
    size_t cap = strlen(msg) + 32;
    resp->body = malloc(cap);
    if (resp->body != NULL)
        resp->body_len = (size_t)snprintf(resp->body, cap, "code %d: %s\n", (int)code, msg);
}

static void handle(void *ctx, const ms_http_request *req, ms_http_response *resp)
{
    ms_tkms_server *s = ctx;
    if (ms_tkms_audit_handle(s->audit, req, resp))
        return;
    unsigned me = ms_tkms_service_index(s->svc);
    if (strcmp(req->path, MS_TKMS_KEYPROV_PATH) != 0) {
        refuse(s, resp, 404, R_NOT_FOUND, MS_ERR_ARG, "no resource %s at this server",
               req->path);
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        refuse(s, resp, 405, R_METHOD, MS_ERR_ARG, "POST a signed key request");
        return;
    }
    if (!ms_http_media_type_is(req->content_type, "application/octet-stream")) {
        refuse(s, resp, 415, R_MEDIA_TYPE, MS_ERR_ARG,
               "the request must be application/octet-stream");
        return;
    }
    ms_tkms_request r;
    char why[200] = "";
    if (ms_tkms_request_parse(&r, req->body, req->body_len, why, sizeof why) != MS_OK) {
        refuse(s, resp, 400, R_MALFORMED, MS_ERR_BAD_ENCODING, "%s", why);
        return;
    }
    if (r.server != me) {
        refuse(s, resp, 400, R_OTHER_SERVER, MS_ERR_ARG,
               "the request was made for server %u, this is server %u", r.server, me);
        return;
    }
    ms_tkms_device dev;
    if (ms_tkms_devices_find(s->devices, r.user, r.device_id, &dev) != MS_OK) {
        refuse(s, resp, 403, R_NOT_ENROLLED, MS_ERR_DEVICE_UNKNOWN,
               "device %s of %s is not enrolled at server %u", r.device_id, r.user, me);
        return;
    }
    if (ms_tkms_request_verify(req->body, req->body_len, dev.sign_pub) != MS_OK) {
        refuse(s, resp, 401, R_SIGNATURE, MS_ERR_SIGNATURE,
               "the request is not signed by the enrolled key of device %s", r.device_id);
        return;
    }
    /* the device's key names it in the replay cache and the rate limit */
    char key[33];
    ms_hex_encode_lower(key, dev.sign_pub, 16);
    key[32] = '\0';
    uint32_t nonce32 = (uint32_t)r.nonce[0] << 24 | (uint32_t)r.nonce[1] << 16 |
                       (uint32_t)r.nonce[2] << 8 | r.nonce[3];
    uint64_t now = ms_ntp_now() >> 32;
    ms_err e = ms_replay_check(s->replay, key, r.time, nonce32, now);
    if (e != MS_OK) {
        refuse(s, resp, 409, R_STALE, MS_ERR_REQUEST_STALE, "%s",
               e == MS_ERR_MIKEY_TIMESTAMP
                   ? "the request's time is outside this server's window (clock?)"
               : e == MS_ERR_MIKEY_REPLAY ? "the request was seen before (a replay)"
                                          : "the replay cache is full");
        return;
    }
    if (!device_allowed(s, key)) {
        refuse(s, resp, 429, R_DEVICE_RATE, MS_ERR_RATE_LIMITED,
               "too many requests from device %s", r.device_id);
        return;
    }
    uint8_t *msg = NULL;
    size_t ml = 0;
    e = ms_tkms_service_share_msg(s->svc, r.period, r.user, dev.hpke_pub, &msg, &ml, why,
                                  sizeof why);
    if (e == MS_ERR_IO) {
        refuse(s, resp, 404, R_NO_KEYS, MS_ERR_NO_KEYS, "period %s is not batched at server %u",
               r.period, me);
        return;
    }
    if (e == MS_ERR_IDENTITY) {
        refuse(s, resp, 404, R_NO_KEYS, MS_ERR_NO_KEYS,
               "%s has no keys in the batch of period %s at server %u", r.user, r.period, me);
        return;
    }
    if (e != MS_OK) {
        free(msg);
        refuse(s, resp, 500, R_INTERNAL, e, "the share cannot be made: %s", ms_strerror(e));
        return;
    }
    ms_audit_field f[] = {{"user", r.user},
                          {"device", r.device_id},
                          {"period", r.period},
                          {"client", req->client_ip != NULL ? req->client_ip : ""}};
    if (ms_audit_append(s->log, 0, "share", f, 4, NULL, NULL) != MS_OK) {
        free(msg);
        refuse(s, resp, 503, R_AUDIT, MS_ERR_AUDIT_LOG,
               "the audit log cannot be written: no share is released");
        return;
    }
    atomic_fetch_add(&s->shares, 1);
    resp->status = 200;
    resp->content_type = "application/octet-stream";
    resp->body = (char *)msg;
    resp->body_len = ml;
}

static size_t metrics(void *ctx, char *out, size_t cap)
{
    ms_tkms_server *s = ctx;
    size_t n = 0;
    int w = snprintf(out, cap, "mikeysakke_tkms_shares_total %llu\n"
                               "mikeysakke_tkms_enrolled_devices %zu\n",
                     (unsigned long long)atomic_load(&s->shares),
                     ms_tkms_devices_count(s->devices));
    if (w > 0 && (size_t)w < cap)
        n = (size_t)w;
    for (int i = 0; i < R__COUNT; i++) {
        w = snprintf(out + n, cap - n, "mikeysakke_tkms_refused_total{reason=\"%s\"} %llu\n",
                     reason_name[i], (unsigned long long)atomic_load(&s->refused[i]));
        if (w > 0 && (size_t)w < cap - n)
            n += (size_t)w;
    }
    return n;
}

static bool health(void *ctx, const char **status_text)
{
    (void)ctx;
    *status_text = "ok";
    return true;
}

/* Host and port of "https://HOST:PORT" ("[v6]" brackets dropped). */
static ms_err url_host_port(const char *url, char *host, size_t cap, unsigned *port)
{
    if (strncmp(url, "https://", 8) != 0)
        return MS_ERR_CONFIG;
    const char *h = url + 8, *colon = strrchr(h, ':');
    if (colon == NULL || colon == h)
        return MS_ERR_CONFIG;
    size_t hl = (size_t)(colon - h);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= cap)
        return MS_ERR_CONFIG;
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end = NULL;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (end == colon + 1 || (*end != '\0' && *end != '/') || p == 0 || p > 65535)
        return MS_ERR_CONFIG;
    *port = (unsigned)p;
    return MS_OK;
}

ms_err ms_tkms_serve_start(ms_tkms_server **out, ms_tkms_service *svc,
                           const ms_tkms_serve_config *cfg)
{
    if (out == NULL || svc == NULL || cfg == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    char *detail = cfg->detail;
    size_t cap = cfg->detail_cap;
    ms_tkms_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return MS_ERR_NOMEM;
    s->svc = svc;
    s->device_rate = cfg->device_rate > 0 ? cfg->device_rate : 0.2;
    s->device_burst = cfg->device_burst >= 1 ? cfg->device_burst : 10;
    pthread_mutex_init(&s->rate_mu, NULL);
    const char *dir = ms_tkms_service_dir(svc);
    const ms_peer_table *table = ms_tkms_service_peers(svc);
    unsigned me = ms_tkms_service_index(svc);
    char host[MS_PEER_URL_MAX + 1], cert[MS_TKMS_PATH_MAX], key[MS_TKMS_PATH_MAX];
    unsigned port = 0;
    ms_err e = url_host_port(table->server[me - 1].url, host, sizeof host, &port);
    if (e != MS_OK)
        ms_detail_set(detail, cap, "server %u's URL %s is not https://HOST:PORT", me,
                      table->server[me - 1].url);
    if (e == MS_OK)
        e = ms_tkms_log_open(&s->log, dir, detail, cap);
    if (e == MS_OK)
        e = ms_tkms_audit_open(&s->audit, svc, detail, cap);
    if (e == MS_OK)
        e = ms_tkms_devices_open(&s->devices, dir, detail, cap);
    if (e == MS_OK)
        e = ms_replay_new(&s->replay);
    if (e == MS_OK) {
        snprintf(cert, sizeof cert, "%s/tls.crt", dir);
        snprintf(key, sizeof key, "%s/tls.key", dir);
        ms_http_config hc;
        memset(&hc, 0, sizeof hc);
        hc.bind_addr = cfg->bind_addr != NULL ? cfg->bind_addr : host;
        hc.port = cfg->port < 0 ? (uint16_t)port : (uint16_t)cfg->port;
        hc.cert_file = cert;
        hc.key_file = key;
        hc.max_body = MS_TKMS_AUDIT_BODY_MAX;
        hc.rate_per_sec = cfg->rate_per_sec > 0 ? cfg->rate_per_sec : 50;
        hc.rate_burst = cfg->rate_burst >= 1 ? cfg->rate_burst : 100;
        hc.threads = cfg->threads;
        hc.name = "mikeysakke_tkms_server";
        hc.detail = detail;
        hc.detail_cap = cap;
        e = ms_http_start(&s->http, &hc, handle, metrics, health, s);
    }
    if (e != MS_OK) {
        ms_tkms_serve_stop(s);
        return e;
    }
    *out = s;
    return MS_OK;
}

uint16_t ms_tkms_serve_port(const ms_tkms_server *s)
{
    return s != NULL && s->http != NULL ? ms_http_port(s->http) : 0;
}

void ms_tkms_serve_stop(ms_tkms_server *s)
{
    if (s == NULL)
        return;
    ms_http_stop(s->http);
    ms_tkms_audit_close(s->audit);
    ms_tkms_devices_close(s->devices);
    ms_replay_free(s->replay);
    ms_audit_close(s->log);
    for (size_t i = 0; i < RATE_BUCKETS; i++)
        while (s->rate[i] != NULL) {
            bucket *k = s->rate[i];
            s->rate[i] = k->next;
            free(k);
        }
    pthread_mutex_destroy(&s->rate_mu);
    free(s);
}
