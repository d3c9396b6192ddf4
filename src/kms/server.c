/*
 * The TS 33.180 Annex D interface of a live KMS (`mikeysakke kms serve`): the handler
 * behind src/net/http.c.
 *
 *   POST /keymanagement/identity/v1/init                    KmsInit (our certificate)
 *   POST /keymanagement/identity/v1/keyprov[/<user>]        key sets of the current period
 *   POST /keymanagement/identity/v1/keyprov/<user>/<time>   key sets of that time's period
 *   POST /keymanagement/identity/v1/certcache[/<n>]         KmsCertCache
 *
 * Every request carries "Authorization: Bearer <device_id>.<token>" and a KmsRequest.
 * The checks, in order, each with its HTTP status and a KmsResponse holding KmsError
 * (ErrorCode = the ms_err code, ErrorMsg = why):
 *   resource unknown 404, not POST 405, not application/xml 415, sealed 503, no or bad
 *   token 401, malformed or
 *   schema-invalid KmsRequest 400 (also a KmsUri that is not ours, a ClientReqUrl that
 *   does not name the resource posted to), UserUri / DeviceId / the URL's user not the
 *   token's 403, Time outside now +- 300 s or (device, Time) seen before 409, a period
 *   other than the current and the next, or no key set issued for it, 404, audit log
 *   not writable 503. Key sets are only those
 *   issued beforehand (`kms issue`): the server never issues on demand.
 * The facade handle is shared with the unseal agent: every call on it is made under
 * ms_kms_lock, but the package XML is built outside it (kms_internal.h), so requests
 * overlap. Key material leaves only in the TrK-encrypted, InK-signed package, and only
 * after its "keyprov" audit entry is fsynced (ms_kms_package_commit).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms/kms_internal.h"
#include "kmsif/annexd.h"
#include "kms/server.h"
#include "mikeysakke/mikey.h"
#include "net/replay.h"

#define BODY_FIRST (64 * 1024)


enum reason {
    R_MALFORMED,
    R_UNAUTHORISED,
    R_FORBIDDEN,
    R_NOT_FOUND,
    R_METHOD,
    R_REPLAY,
    R_SEALED,
    R_AUDIT,
    R_INTERNAL,
    R_TOO_LARGE,
    R_RATE,
    R_MEDIA_TYPE,
    R__COUNT
};

static const char *const reason_name[R__COUNT] = {
    "malformed", "unauthorised", "forbidden", "not_found", "method", "replay",
    "sealed",    "audit_log",    "internal",  "too_large", "rate_limited",
    "media_type"};

struct ms_kms_server {
    ms_kms *k;
    ms_http_server *http;
    char kms_uri[MS_KMS_URI_MAX + 1];
    uint64_t (*now)(void *);
    void *now_ctx;
    ms_replay_cache *replay;
    atomic_ullong answers[4]; /* by ms_annexd_resource (1..3) */
    atomic_ullong refused[R__COUNT];
};

static uint64_t server_now(const ms_kms_server *s)
{
    return s->now != NULL ? s->now(s->now_ctx) : ms_ntp_now() >> 32;
}

void ms_kms_server_set_clock(ms_kms_server *s, uint64_t (*now)(void *ctx), void *ctx)
{
    s->now = now;
    s->now_ctx = ctx;
}

/* ---- answers ------------------------------------------------------------------------- */

static void set_body(ms_http_response *resp, int status, char *body, size_t len)
{
    resp->status = status;
    resp->content_type = "application/xml";
    resp->body = body;
    resp->body_len = len;
}

/* A KmsResponse with KmsError; the status says the class, ErrorCode the ms_err. */
static void refuse(ms_kms_server *s, ms_http_response *resp, int status, enum reason why,
                   ms_err code, const char *user_uri, const char *client_req_url,
                   const char *msg)
{
    atomic_fetch_add(&s->refused[why], 1);
    ms_kms_reply *r = calloc(1, sizeof *r);
    char *body = malloc(4096);
    size_t len = 0;
    resp->status = status;
    resp->content_type = "text/plain";
    resp->body = NULL;
    resp->body_len = 0;
    if (r == NULL || body == NULL) {
        free(r);
        free(body);
        return;
    }
    snprintf(r->user_uri, sizeof r->user_uri, "%s", user_uri != NULL ? user_uri : "");
    snprintf(r->kms_uri, sizeof r->kms_uri, "%s", s->kms_uri);
    snprintf(r->client_req_url, sizeof r->client_req_url, "%s",
             client_req_url != NULL ? client_req_url : "");
    r->time = server_now(s);
    r->error_code = (int)code;
    snprintf(r->error_msg, sizeof r->error_msg, "%s", msg);
    /* a detail quoting the input may hold bytes a document cannot: fall back */
    if (ms_kmsif_reply_write(body, 4096, &len, r) != MS_OK) {
        snprintf(r->error_msg, sizeof r->error_msg, "%s", ms_strerror(code));
        r->user_uri[0] = '\0';
        r->client_req_url[0] = '\0';
        if (ms_kmsif_reply_write(body, 4096, &len, r) != MS_OK) {
            free(r);
            free(body);
            return;
        }
    }
    free(r);
    set_body(resp, status, body, len);
}

/* The body for answers the plumbing gives itself (405, 413, 429). */
void ms_kms_server_error_body(void *ctx, const ms_http_request *req, ms_http_response *resp)
{
    ms_kms_server *s = ctx;
    int status = resp->status;
    enum reason why = status == 413   ? R_TOO_LARGE
                      : status == 429 ? R_RATE
                      : status == 405 ? R_METHOD
                                      : R_INTERNAL;
    ms_err code = status == 429 ? MS_ERR_RATE_LIMITED : status == 413 ? MS_ERR_XML : MS_ERR_HTTP;
    const char *msg = status == 413   ? "request body too large"
                      : status == 429 ? "too many requests: rate-limited"
                      : status == 405 ? "only POST is accepted"
                                      : "request refused";
    (void)req;
    refuse(s, resp, status, why, code, NULL, NULL, msg);
}

/* The KmsInit / KmsKeyProv package for the device (retrying once with the size
 * needed); *status gets the HTTP status of a failure. */
/* Only the store reads and the audit entry hold the KMS lock; the XML is built outside
 * it, so several requests are encrypted and signed at once (src/kms/kms_internal.h). */
static ms_err package(ms_kms_server *s, const char *device, const uint64_t *periods, size_t n,
                      const char *url, const char *peer, char **body, size_t *len)
{
    ms_kms_pkg_job *job = NULL;
    ms_kms_lock(s->k);
    ms_err e = ms_kms_package_begin(s->k, &job, device, periods, n, url, peer);
    ms_kms_unlock(s->k);
    if (e != MS_OK)
        return e;
    size_t cap = BODY_FIRST;
    char *buf = NULL;
    size_t got = 0;
    e = MS_ERR_INTERNAL;
    for (int round = 0; round < 2; round++) {
        buf = malloc(cap);
        if (buf == NULL) {
            e = MS_ERR_NOMEM;
            break;
        }
        got = 0;
        e = ms_kms_package_build(job, buf, cap, &got);
        if (e == MS_OK)
            break;
        ms_wipe(buf, cap);
        free(buf);
        buf = NULL;
        if (e != MS_ERR_BUFFER_TOO_SMALL || got == 0)
            break;
        cap = got + 1;
    }
    if (e == MS_OK)
        e = ms_kms_package_commit(s->k, job); /* the audit entry, before release */
    ms_kms_package_free(job);
    if (e != MS_OK) {
        if (buf != NULL) {
            ms_wipe(buf, cap);
            free(buf);
        }
        return e;
    }
    *body = buf;
    *len = got;
    return MS_OK;
}

static ms_err certcache(ms_kms_server *s, const ms_kms_request *rq, char **body, size_t *len)
{
    ms_kms_reply *r = calloc(1, sizeof *r);
    if (r == NULL)
        return MS_ERR_NOMEM;
    snprintf(r->user_uri, sizeof r->user_uri, "%s", rq->user_uri);
    snprintf(r->kms_uri, sizeof r->kms_uri, "%s", s->kms_uri);
    snprintf(r->client_req_url, sizeof r->client_req_url, "%s", rq->client_req_url);
    r->time = server_now(s);
    ms_err e = ms_kms_certificates(s->k, r->certs, MS_KMSIF_MAX_CERTS, &r->n_certs);
    r->cache_num = r->n_certs;
    size_t need = 0;
    if (e == MS_OK && (e = ms_kmsif_reply_write(NULL, 0, &need, r)) == MS_ERR_BUFFER_TOO_SMALL) {
        *body = malloc(need + 1);
        e = *body == NULL ? MS_ERR_NOMEM : ms_kmsif_reply_write(*body, need + 1, len, r);
        if (e != MS_OK) {
            free(*body);
            *body = NULL;
        }
    } else if (e == MS_OK) {
        e = MS_ERR_INTERNAL;
    }
    free(r);
    return e;
}

/* Everything after authentication, under the KMS lock. */
/* Runs without the KMS lock; each call into the facade takes it. */
static void serve(ms_kms_server *s, const ms_http_request *req, const ms_annexd_path *rt,
                  ms_http_response *resp)
{
    char device[MS_KMS_DEVICE_ID_MAX + 1], user[MS_KMS_URI_MAX + 1];
    ms_kms_lock(s->k);
    ms_err e = ms_kms_device_auth(s->k, device, user, req->bearer);
    ms_kms_unlock(s->k);
    if (e == MS_ERR_SEALED) {
        refuse(s, resp, 503, R_SEALED, e, NULL, NULL, "the KMS is sealed");
        return;
    }
    if (e != MS_OK) {
        if (e == MS_ERR_UNAUTHORISED)
            refuse(s, resp, 401, R_UNAUTHORISED, e, NULL, NULL,
                   req->bearer == NULL ? "no bearer token" : "bearer token not accepted");
        else
            refuse(s, resp, 500, R_INTERNAL, e, NULL, NULL, ms_strerror(e));
        return;
    }

    ms_kms_request *rq = calloc(1, sizeof *rq);
    char detail[200];
    if (rq == NULL) {
        refuse(s, resp, 500, R_INTERNAL, MS_ERR_NOMEM, user, NULL, "out of memory");
        return;
    }
    e = ms_kmsif_request_parse(rq, (const char *)req->body, req->body_len, detail, sizeof detail);
    if (e != MS_OK) {
        char msg[240];
        snprintf(msg, sizeof msg, "KmsRequest: %s", detail);
        refuse(s, resp, e == MS_ERR_XML ? 400 : 500, e == MS_ERR_XML ? R_MALFORMED : R_INTERNAL,
               e, user, NULL, msg);
        goto out;
    }
    if (strcmp(rq->kms_uri, s->kms_uri) != 0) {
        refuse(s, resp, 400, R_MALFORMED, MS_ERR_XML, user, rq->client_req_url,
               "KmsUri names another KMS");
        goto out;
    }
    if (!ms_annexd_url_names_path(rq->client_req_url, req->path)) {
        refuse(s, resp, 400, R_MALFORMED, MS_ERR_XML, user, rq->client_req_url,
               "ClientReqUrl is not the resource posted to");
        goto out;
    }
    if (strcmp(rq->user_uri, user) != 0 ||
        (rq->device_id[0] != '\0' && strcmp(rq->device_id, device) != 0) ||
        (rt->has_user && strcmp(rt->user, user) != 0)) {
        refuse(s, resp, 403, R_FORBIDDEN, MS_ERR_PACKAGE_DEVICE, user, rq->client_req_url,
               "a device may only ask for its own user's keys");
        goto out;
    }
    e = ms_replay_check(s->replay, device, rq->time, rq->time_us, server_now(s));
    if (e != MS_OK) {
        if (e == MS_ERR_MIKEY_TIMESTAMP)
            refuse(s, resp, 409, R_REPLAY, e, user, rq->client_req_url,
                   "Time is more than 300 s from the KMS clock");
        else if (e == MS_ERR_MIKEY_REPLAY)
            refuse(s, resp, 409, R_REPLAY, e, user, rq->client_req_url,
                   "request replayed: this device already sent this Time");
        else
            refuse(s, resp, 503, R_INTERNAL, e, user, rq->client_req_url, "replay cache full");
        goto out;
    }

    char *body = NULL;
    size_t len = 0;
    uint64_t period = 0;
    if (rt->resource == MS_ANNEXD_INIT) {
        e = package(s, device, NULL, 0, rq->client_req_url, req->client_ip, &body, &len);
    } else if (rt->resource == MS_ANNEXD_KEYPROV) {
        ms_kms_status st;
        ms_kms_lock(s->k);
        e = ms_kms_status_get(s->k, &st);
        if (e == MS_OK)
            period = st.current_period;
        if (e == MS_OK && rt->has_time)
            e = ms_kms_period_of(s->k, &period, rt->time);
        ms_kms_unlock(s->k);
        /* Only the current and the next key period: a past RSK is for the auditors
         * (`kms audit extract`), not for whoever holds a device's token later. */
        if (e == MS_OK && (period < st.current_period || period > st.current_period + 1)) {
            refuse(s, resp, 404, R_NOT_FOUND, MS_ERR_PERIOD, user, rq->client_req_url,
                   "only the current and the next key period are served");
            goto out;
        }
        if (e == MS_OK)
            e = package(s, device, &period, 1, rq->client_req_url, req->client_ip, &body, &len);
        if (e == MS_ERR_PERIOD && !rt->has_time)
            e = MS_ERR_NO_KEYS;
    } else {
        ms_kms_lock(s->k);
        e = certcache(s, rq, &body, &len);
        ms_kms_unlock(s->k);
    }
    switch (e) {
    case MS_OK:
        atomic_fetch_add(&s->answers[rt->resource], 1);
        set_body(resp, 200, body, len);
        break;
    case MS_ERR_NO_KEYS:
    case MS_ERR_PERIOD:
        refuse(s, resp, 404, R_NOT_FOUND, e, user, rq->client_req_url,
               "no key set issued for this device and key period");
        break;
    case MS_ERR_USER_SUSPENDED:
    case MS_ERR_DEVICE_UNKNOWN:
    case MS_ERR_USER_UNKNOWN:
        refuse(s, resp, 403, R_FORBIDDEN, e, user, rq->client_req_url, ms_strerror(e));
        break;
    case MS_ERR_AUDIT_LOG:
        refuse(s, resp, 503, R_AUDIT, e, user, rq->client_req_url,
               "the audit log cannot be written: nothing is released");
        break;
    case MS_ERR_SEALED:
        refuse(s, resp, 503, R_SEALED, e, user, rq->client_req_url, "the KMS is sealed");
        break;
    default:
        refuse(s, resp, 500, R_INTERNAL, e, user, rq->client_req_url, ms_strerror(e));
        break;
    }
out:
    ms_wipe(rq, sizeof *rq);
    free(rq);
}

void ms_kms_server_handle(void *ctx, const ms_http_request *req, ms_http_response *resp)
{
    ms_kms_server *s = ctx;
    ms_annexd_path rt;
    ms_err r = ms_annexd_path_parse(req->path, &rt, NULL, 0);
    if (r != MS_OK && r != MS_ERR_BAD_ENCODING) {
        refuse(s, resp, 404, R_NOT_FOUND, MS_ERR_HTTP, NULL, NULL, "no such resource");
        return;
    }
    if (req->method == NULL || strcmp(req->method, "POST") != 0) {
        refuse(s, resp, 405, R_METHOD, MS_ERR_HTTP, NULL, NULL, "only POST is accepted");
        return;
    }
    /* TS 33.180 D.2 carries a KmsRequest as XML: anything else is not one. */
    if (!ms_http_media_type_is(req->content_type, MS_KMS_CONTENT_TYPE)) {
        refuse(s, resp, 415, R_MEDIA_TYPE, MS_ERR_HTTP, NULL, NULL,
               "a KmsRequest is sent as Content-Type: " MS_KMS_CONTENT_TYPE);
        return;
    }
    if (r == MS_ERR_BAD_ENCODING) {
        refuse(s, resp, 400, R_MALFORMED, MS_ERR_IDENTITY, NULL, NULL,
               "malformed user or time in the resource path");
        return;
    }
    /* sealed: nothing but /healthz and /metrics (answered by the plumbing) */
    if (!ms_kms_is_unsealed(s->k)) {
        refuse(s, resp, 503, R_SEALED, MS_ERR_SEALED, NULL, NULL, "the KMS is sealed");
        return;
    }
    serve(s, req, &rt, resp);
}

/* ---- health and metrics ------------------------------------------------------------------ */

bool ms_kms_server_health(void *ctx, const char **status_text)
{
    ms_kms_server *s = ctx;
    bool up = ms_kms_is_unsealed(s->k);
    if (status_text != NULL)
        *status_text = up ? "unsealed" : "sealed";
    return up;
}

size_t ms_kms_server_metrics(void *ctx, char *out, size_t cap)
{
    ms_kms_server *s = ctx;
    static const char *const res_name[4] = {"none", "init", "keyprov", "certcache"};
    size_t off = 0;
#define PUT(...)                                                                        \
    do {                                                                                \
        if (off < cap) {                                                                \
            int k_ = snprintf(out + off, cap - off, __VA_ARGS__);                      \
            off += k_ < 0 ? 0 : (size_t)k_;                                            \
        }                                                                               \
    } while (0)
    PUT("# HELP mikeysakke_kms_sealed 1 while the KMS is sealed\n"
        "# TYPE mikeysakke_kms_sealed gauge\nmikeysakke_kms_sealed %d\n",
        ms_kms_is_unsealed(s->k) ? 0 : 1);
    PUT("# HELP mikeysakke_kms_answers_total successful answers by resource\n"
        "# TYPE mikeysakke_kms_answers_total counter\n");
    for (int i = 1; i < 4; i++)
        PUT("mikeysakke_kms_answers_total{resource=\"%s\"} %llu\n", res_name[i],
            (unsigned long long)atomic_load(&s->answers[i]));
    PUT("# HELP mikeysakke_kms_refused_total refused requests by reason\n"
        "# TYPE mikeysakke_kms_refused_total counter\n");
    for (int i = 0; i < R__COUNT; i++)
        PUT("mikeysakke_kms_refused_total{reason=\"%s\"} %llu\n", reason_name[i],
            (unsigned long long)atomic_load(&s->refused[i]));
    size_t n = ms_replay_count(s->replay);
    PUT("# HELP mikeysakke_kms_replay_cache_entries requests remembered for replay checks\n"
        "# TYPE mikeysakke_kms_replay_cache_entries gauge\n"
        "mikeysakke_kms_replay_cache_entries %zu\n", n);
#undef PUT
    return off < cap ? off : (cap > 0 ? cap - 1 : 0);
}

/* ---- life cycle ------------------------------------------------------------------------- */

ms_err ms_kms_server_new(ms_kms_server **out, ms_kms *k)
{
    if (out == NULL || k == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    ms_kms_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return MS_ERR_NOMEM;
    if (ms_replay_new(&s->replay) != MS_OK) {
        free(s);
        return MS_ERR_NOMEM;
    }
    s->k = k;
    ms_kms_status st;
    ms_kms_lock(k);
    ms_err e = ms_kms_status_get(k, &st);
    ms_kms_unlock(k);
    if (e != MS_OK) {
        ms_replay_free(s->replay);
        free(s);
        return e;
    }
    snprintf(s->kms_uri, sizeof s->kms_uri, "%s", st.kms_uri);
    for (int i = 0; i < 4; i++)
        atomic_init(&s->answers[i], 0);
    for (int i = 0; i < R__COUNT; i++)
        atomic_init(&s->refused[i], 0);
    *out = s;
    return MS_OK;
}

void ms_kms_server_free(ms_kms_server *s)
{
    if (s == NULL)
        return;
    ms_replay_free(s->replay);
    free(s);
}

ms_err ms_kms_server_start(ms_kms_server **out, ms_kms *k, const ms_kms_server_config *cfg)
{
    if (out == NULL || k == NULL || cfg == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    ms_kms_server *s = NULL;
    ms_err e = ms_kms_server_new(&s, k);
    if (e != MS_OK)
        return e;
    ms_http_config hc;
    memset(&hc, 0, sizeof hc);
    hc.bind_addr = cfg->bind_addr;
    hc.port = cfg->port;
    hc.cert_file = cfg->cert_file;
    hc.key_file = cfg->key_file;
    hc.max_body = cfg->max_body;
    hc.rate_per_sec = cfg->rate_per_sec;
    hc.rate_burst = cfg->rate_burst;
    hc.threads = cfg->threads;
    hc.max_connections = cfg->max_connections;
    hc.max_per_ip = cfg->max_per_client;
    hc.timeout_sec = cfg->timeout_sec;
    hc.name = "mikeysakke_kms";
    hc.error_body = ms_kms_server_error_body;
    hc.detail = cfg->detail;
    hc.detail_cap = cfg->detail_cap;
    e = ms_http_start(&s->http, &hc, ms_kms_server_handle, ms_kms_server_metrics,
                      ms_kms_server_health, s);
    if (e != MS_OK) {
        ms_kms_server_free(s);
        return e;
    }
    *out = s;
    return MS_OK;
}

uint16_t ms_kms_server_port(const ms_kms_server *s)
{
    return s != NULL && s->http != NULL ? ms_http_port(s->http) : 0;
}

void ms_kms_server_stop(ms_kms_server *s)
{
    if (s == NULL)
        return;
    ms_http_stop(s->http); /* waits for running handlers */
    ms_kms_server_free(s);
}
