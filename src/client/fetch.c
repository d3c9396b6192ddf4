/*
 * The provisioning client: TS 33.180 Annex D over HTTPS on libcurl.
 * KMS Initialize (the certificate is compared with the enrolled one), KeyProvision for
 * the current and the next key period, CertCache. Key packages go through the same
 * checks as an offline import (ms_keystore_import): nothing unvalidated is stored.
 *
 * Transport: TLS 1.2 or later, peer and host name verified against the given CA file
 * only, https only, redirects not followed, answers over MS_KMSIF_MAX_XML aborted.
 * Connection failures, 429 and 5xx are retried with exponential back-off and jitter
 * (Retry-After honoured); other 4xx are final. Each attempt is a new KmsRequest with a
 * new Time (microseconds, strictly increasing), as the KMS refuses a replayed one.
 */
#include "client/keystore_internal.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "crypto/secmem.h"
#include "kmsif/annexd.h"
#include "kmsif/xml_internal.h"

#define URL_MAX 2048
#define REQ_MAX 8192
#define ERRTEXT_MAX 200

typedef struct answer {
    long status;
    char *body;
    size_t len, cap;
    bool too_big;
    long retry_after; /* seconds; -1 absent, -2 an HTTP date (ask curl) */
    char location[256];
} answer;

typedef struct fetch_ctx {
    ms_keystore *ks;
    ms_fetch_report *rep;
    CURL *curl;
    struct curl_slist *headers;
    char base[URL_MAX];     /* https://host[:port], MS_ANNEXD_ROOT comes with each path */
    uint64_t now;           /* NTP seconds, for periods and the import */
    uint64_t last_time;     /* microseconds since 1900 of the last KmsRequest Time */
    unsigned max_attempts, backoff_ms, max_wait_ms;
    char errbuf[CURL_ERROR_SIZE];
    ms_id_scheme scheme;
} fetch_ctx;

/* ---- small helpers ------------------------------------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Printable ASCII only, so a server cannot put escape sequences on our terminal. */
static void sanitize(char *out, size_t cap, const char *in, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < cap; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch == '\n' || ch == '\r' || ch == '\t')
            ch = ' ';
        if (ch < 0x20 || ch > 0x7e)
            ch = '?';
        if (ch == ' ' && (o == 0 || out[o - 1] == ' '))
            continue;
        out[o++] = (char)ch;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    if (cap > 0)
        out[o] = '\0';
}

/* ---- the KmsRequest ---------------------------------------------------------------- */

/* A fresh Time for each request, in microseconds: the KMS keys its replay cache on
 * (device, Time), so two requests of this device, even from two runs, must differ. */
static void next_time(fetch_ctx *c, uint64_t *secs, uint32_t *us)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t t = ((uint64_t)ts.tv_sec + MS_NTP_UNIX_OFFSET) * 1000000u +
                 (uint64_t)ts.tv_nsec / 1000u;
    if (t <= c->last_time)
        t = c->last_time + 1;
    c->last_time = t;
    *secs = t / 1000000u;
    *us = (uint32_t)(t % 1000000u);
}

/* KmsRequest (digest 6.5.2): UserUri, KmsUri, Time, DeviceId, ClientReqUrl. */
static ms_err request_xml(fetch_ctx *c, const char *url, char *out, size_t cap,
                          size_t *out_len)
{
    ms_kms_request *r = calloc(1, sizeof *r);
    if (r == NULL)
        return MS_ERR_NOMEM;
    snprintf(r->user_uri, sizeof r->user_uri, "%s", c->ks->dev.user_uri);
    snprintf(r->kms_uri, sizeof r->kms_uri, "%s", c->ks->cert.kms_uri);
    snprintf(r->device_id, sizeof r->device_id, "%s", c->ks->dev.device_id);
    ms_err err = MS_OK;
    if (strlen(url) >= sizeof r->client_req_url)
        err = MS_ERR_ARG;
    else
        snprintf(r->client_req_url, sizeof r->client_req_url, "%s", url);
    next_time(c, &r->time, &r->time_us);
    if (err == MS_OK)
        err = ms_kmsif_request_write(out, cap, out_len, r);
    free(r);
    return err;
}

/* ---- HTTP -------------------------------------------------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    answer *a = ud;
    size_t n = size * nmemb;
    if (n > MS_KMSIF_MAX_XML || a->len + n > MS_KMSIF_MAX_XML) {
        a->too_big = true;
        return 0; /* aborts the transfer */
    }
    if (a->len + n + 1 > a->cap) {
        size_t cap = a->cap != 0 ? a->cap : 16384;
        while (cap < a->len + n + 1)
            cap *= 2;
        if (cap > MS_KMSIF_MAX_XML + 1)
            cap = MS_KMSIF_MAX_XML + 1;
        char *p = realloc(a->body, cap);
        if (p == NULL)
            return 0;
        a->body = p;
        a->cap = cap;
    }
    memcpy(a->body + a->len, ptr, n);
    a->len += n;
    a->body[a->len] = '\0';
    return n;
}

static bool header_is(const char *line, size_t n, const char *name, const char **value,
                      size_t *vlen)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return false;
    size_t i = k + 1;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    size_t e = n;
    while (e > i && (line[e - 1] == '\r' || line[e - 1] == '\n' || line[e - 1] == ' '))
        e--;
    *value = line + i;
    *vlen = e - i;
    return true;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
    answer *a = ud;
    size_t n = size * nmemb;
    const char *v = NULL;
    size_t vl = 0;
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new response (after 1xx) */
        a->retry_after = -1;
        a->location[0] = '\0';
    } else if (header_is(line, n, "Retry-After", &v, &vl)) {
        long secs = 0;
        size_t i = 0;
        while (i < vl && isdigit((unsigned char)v[i]) && secs < 100000000L)
            secs = secs * 10 + (v[i++] - '0');
        a->retry_after = (i == vl && vl > 0) ? secs : -2;
    } else if (header_is(line, n, "Location", &v, &vl)) {
        sanitize(a->location, sizeof a->location, v, vl);
    }
    return n;
}

static void answer_reset(answer *a)
{
    a->status = 0;
    a->len = 0;
    a->too_big = false;
    a->retry_after = -1;
    a->location[0] = '\0';
    if (a->body != NULL)
        a->body[0] = '\0';
}

static void answer_free(answer *a)
{
    if (a->body != NULL) {
        ms_wipe(a->body, a->cap);
        free(a->body);
    }
    memset(a, 0, sizeof *a);
}

/* ErrorCode and ErrorMsg of a KmsError in the answer, for the message; else the start of
 * the body if it is short text. */
static void kms_error_text(const answer *a, char *out, size_t cap)
{
    out[0] = '\0';
    if (a->len == 0)
        return;
    ms_kms_reply *r = calloc(1, sizeof *r);
    if (r != NULL && ms_kmsif_reply_parse(r, a->body, a->len, NULL, 0) == MS_OK &&
        r->error_code != 0) {
        char msg[ERRTEXT_MAX];
        sanitize(msg, sizeof msg, r->error_msg, strlen(r->error_msg));
        const char *name = r->error_code > 0 && r->error_code < (int)MS_ERR__LAST
                               ? ms_errname((ms_err)r->error_code) : "";
        snprintf(out, cap, "KmsError %d%s%s%s: %s", r->error_code, name[0] ? " (" : "", name,
                 name[0] ? ")" : "", msg);
    } else {
        char tmp[ERRTEXT_MAX];
        sanitize(tmp, sizeof tmp, a->body, a->len < 120 ? a->len : 120);
        snprintf(out, cap, "%s%s", tmp, a->len > 120 ? "..." : "");
    }
    free(r);
}

/* What a curl failure means for us. */
static ms_err curl_class(CURLcode rc, bool *retry)
{
    *retry = false;
    switch (rc) {
    case CURLE_OK:
        return MS_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        *retry = true;
        return MS_ERR_UNREACHABLE;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
        return MS_ERR_TLS;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return MS_ERR_ARG;
    case CURLE_OUT_OF_MEMORY:
        return MS_ERR_NOMEM;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        return MS_ERR_HTTP;
    default:
        return MS_ERR_UNREACHABLE;
    }
}

/* Wait before retry number `n` (1, 2, ...): backoff * 2^(n-1), capped, with jitter in
 * its upper half so that many devices do not come back in step. */
static unsigned backoff_wait(const fetch_ctx *c, unsigned n)
{
    uint64_t d = c->backoff_ms;
    for (unsigned i = 1; i < n && d < c->max_wait_ms; i++)
        d *= 2;
    if (d > c->max_wait_ms)
        d = c->max_wait_ms;
    uint32_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        r = 0;
    uint64_t half = d / 2;
    return (unsigned)(d - half + (half > 0 ? r % (half + 1) : 0));
}

/* POSTs a KmsRequest to base + the resource's path, with retries. Returns MS_OK with
 * a->status 2xx or 404 (the caller decides what 404 means), else the error with detail. */
static ms_err post(fetch_ctx *c, const ms_annexd_path *resource, const char *what, answer *a,
                   char *detail, size_t cap)
{
    char url[URL_MAX], path[MS_ANNEXD_PATH_MAX], bad[160];
    if (ms_annexd_path_build(resource, path, sizeof path, bad, sizeof bad) != MS_OK)
        return ks_fail(MS_ERR_ARG, detail, cap, "%s: %s", what, bad);
    int un = snprintf(url, sizeof url, "%s%s", c->base, path);
    if (un < 0 || (size_t)un >= sizeof url)
        return ks_fail(MS_ERR_ARG, detail, cap, "%s: URL too long", what);
    char *req = malloc(REQ_MAX);
    if (req == NULL)
        return ks_fail(MS_ERR_NOMEM, detail, cap, "%s: request", what);
    ms_err err = MS_OK;
    for (unsigned attempt = 1;; attempt++) {
        size_t req_len = 0;
        err = request_xml(c, url, req, REQ_MAX, &req_len);
        if (err != MS_OK) {
            err = ks_fail(err, detail, cap, "%s: cannot write the KmsRequest (%s)", what,
                          ms_strerror(err));
            break;
        }
        answer_reset(a);
        c->errbuf[0] = '\0';
        curl_easy_setopt(c->curl, CURLOPT_URL, url);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, req);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req_len);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, a);
        curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, a);
        CURLcode rc = curl_easy_perform(c->curl);
        c->rep->requests++;
        if (rc == CURLE_FILESIZE_EXCEEDED) /* Content-Length over the limit */
            a->too_big = true;
        bool retry = false;
        char why[512];
        if (rc != CURLE_OK || a->too_big) {
            err = a->too_big ? MS_ERR_HTTP : curl_class(rc, &retry);
            char cerr[CURL_ERROR_SIZE];
            sanitize(cerr, sizeof cerr, c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc),
                     strlen(c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc)));
            if (a->too_big)
                snprintf(why, sizeof why, "the answer is larger than %d octets: refused",
                         MS_KMSIF_MAX_XML);
            else if (err == MS_ERR_TLS)
                snprintf(why, sizeof why, "TLS failed (server certificate not trusted by the "
                         "CA file, wrong host name, or handshake error): %s", cerr);
            else if (err == MS_ERR_UNREACHABLE)
                snprintf(why, sizeof why, "cannot reach the server: %s", cerr);
            else
                snprintf(why, sizeof why, "%s", cerr);
        } else {
            long st = 0;
            curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &st);
            a->status = st;
            c->rep->last_status = st;
            if ((st >= 200 && st < 300) || st == 404) {
                err = MS_OK;
                break;
            }
            char ktext[ERRTEXT_MAX + 80];
            kms_error_text(a, ktext, sizeof ktext);
            const char *sep = ktext[0] ? ": " : "";
            if (st == 401 || st == 403) {
                err = MS_ERR_UNAUTHORISED;
                snprintf(why, sizeof why, "HTTP %ld, the server refused this device's "
                         "credentials%s%s", st, sep, ktext);
            } else if (st == 429) {
                err = MS_ERR_RATE_LIMITED;
                retry = true;
                snprintf(why, sizeof why, "HTTP 429, rate-limited%s%s", sep, ktext);
            } else if (st == 409) {
                err = MS_ERR_HTTP;
                snprintf(why, sizeof why, "HTTP 409, request refused as a replay%s%s", sep,
                         ktext);
            } else if (st >= 500 && st < 600) {
                err = MS_ERR_HTTP;
                retry = true;
                snprintf(why, sizeof why, "HTTP %ld, server error%s%s%s", st,
                         st == 503 ? " (KMS sealed or unavailable)" : "", sep, ktext);
            } else if (st >= 300 && st < 400) {
                err = MS_ERR_HTTP;
                snprintf(why, sizeof why, "HTTP %ld, redirect to %s not followed", st,
                         a->location[0] ? a->location : "(no Location)");
            } else {
                err = MS_ERR_HTTP;
                snprintf(why, sizeof why, "HTTP %ld%s%s", st, sep, ktext);
            }
        }
        if (!retry || attempt >= c->max_attempts) {
            char tries[48] = "";
            if (attempt > 1)
                snprintf(tries, sizeof tries, " (after %u attempts)", attempt);
            err = ks_fail(err, detail, cap, "%s: POST %s: %s%s", what, url, why, tries);
            break;
        }
        unsigned wait = backoff_wait(c, attempt);
        if (a->retry_after == -2) {
            curl_off_t ra = -1;
            if (curl_easy_getinfo(c->curl, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra >= 0)
                a->retry_after = ra > 100000000 ? 100000000 : (long)ra;
        }
        if (a->retry_after >= 0) {
            if ((uint64_t)a->retry_after * 1000u > c->max_wait_ms) {
                err = ks_fail(err, detail, cap, "%s: POST %s: %s; the server asks to retry "
                              "after %ld s, longer than we wait", what, url, why,
                              a->retry_after);
                break;
            }
            wait = (unsigned)a->retry_after * 1000u;
        }
        c->rep->retries++;
        sleep_ms(wait);
    }
    ms_wipe(req, REQ_MAX);
    free(req);
    return err;
}

/* ---- set-up -------------------------------------------------------------------------- */

static ms_err readable(const char *what, const char *path, char *detail, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return ks_fail(MS_ERR_IO, detail, cap, "%s %s: %s", what, path, strerror(errno));
    fclose(f);
    return MS_OK;
}

static ms_err ctx_init(fetch_ctx *c, ms_keystore *ks, const ms_fetch_options *o,
                       ms_fetch_report *rep, char *detail, size_t cap)
{
    memset(c, 0, sizeof *c);
    c->ks = ks;
    c->rep = rep;
    c->now = ks_now(o->now);
    c->max_attempts = o->max_attempts != 0 ? o->max_attempts : 4;
    c->backoff_ms = o->backoff_ms != 0 ? o->backoff_ms : 500;
    c->max_wait_ms = o->max_wait_ms != 0 ? o->max_wait_ms : 60000;
    if (c->backoff_ms > c->max_wait_ms)
        c->backoff_ms = c->max_wait_ms;

    if (o->url == NULL || o->cacert == NULL)
        return ks_fail(MS_ERR_ARG, detail, cap, "the server URL and the CA file are required");
    ms_err uerr = ms_annexd_base_url(o->url, c->base, sizeof c->base, detail, cap);
    if (uerr != MS_OK)
        return uerr;

    ms_err err = readable("CA file", o->cacert, detail, cap);
    if (err == MS_OK && o->client_cert != NULL)
        err = readable("client certificate", o->client_cert, detail, cap);
    if (err == MS_OK && o->client_key != NULL)
        err = readable("client key", o->client_key, detail, cap);
    if (err != MS_OK)
        return err;
    if ((o->client_cert == NULL) != (o->client_key == NULL))
        return ks_fail(MS_ERR_ARG, detail, cap, "a client certificate needs its key and the "
                       "other way round");

    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK || (c->curl = curl_easy_init()) == NULL)
        return ks_fail(MS_ERR_INTERNAL, detail, cap, "libcurl cannot be initialised");

    char token[MS_KMSIF_TOKEN_HEX + 1];
    if (ms_kmsif_device_token(token, ks->dev.ink, ks->dev.device_id) != MS_OK)
        return ks_fail(MS_ERR_INTERNAL, detail, cap, "device token");
    char auth[sizeof "Authorization: Bearer " + sizeof ks->dev.device_id + 65];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s.%s", ks->dev.device_id, token);
    ms_wipe(token, sizeof token);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    ms_wipe(auth, sizeof auth);
    struct curl_slist *h2 = h ? curl_slist_append(h, "Content-Type: application/xml") : NULL;
    struct curl_slist *h3 = h2 ? curl_slist_append(h2, "Accept: application/xml") : NULL;
    struct curl_slist *h4 = h3 ? curl_slist_append(h3, "Expect:") : NULL;
    c->headers = h4 != NULL ? h4 : h;
    if (h4 == NULL)
        return ks_fail(MS_ERR_NOMEM, detail, cap, "HTTP headers");

    CURL *k = c->curl;
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                     \
    do {                                                                                  \
        if (rc == CURLE_OK)                                                               \
            rc = curl_easy_setopt(k, opt, val);                                           \
    } while (0)
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SET(CURLOPT_CAINFO, o->cacert);
    SET(CURLOPT_CAPATH, (char *)NULL); /* the CA file only, not the system's */
    if (o->client_cert != NULL) {
        SET(CURLOPT_SSLCERT, o->client_cert);
        SET(CURLOPT_SSLKEY, o->client_key);
    }
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)(o->connect_timeout_ms ? o->connect_timeout_ms : 10000));
    SET(CURLOPT_TIMEOUT_MS, (long)(o->timeout_ms ? o->timeout_ms : 30000));
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MS_KMSIF_MAX_XML);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HTTPHEADER, c->headers);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_USERAGENT, "mikeysakke-fetch/1");
    SET(CURLOPT_ERRORBUFFER, c->errbuf);
#undef SET
    if (rc != CURLE_OK)
        return ks_fail(MS_ERR_INTERNAL, detail, cap, "libcurl option: %s",
                       curl_easy_strerror(rc));
    if (ks_scheme(ks, &ks->cert, &c->scheme) != MS_OK)
        return ks_fail(MS_ERR_MIKEY_UNSUPPORTED, detail, cap, "the enrolled KMS certificate "
                       "has an unknown identifier scheme");
    return MS_OK;
}

static void ctx_free(fetch_ctx *c)
{
    for (struct curl_slist *s = c->headers; s != NULL; s = s->next)
        if (s->data != NULL)
            ms_wipe(s->data, strlen(s->data)); /* the bearer token */
    curl_slist_free_all(c->headers);
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    c->headers = NULL;
    c->curl = NULL;
}

/* ---- report ------------------------------------------------------------------------ */

static ms_fetch_period *report_period(ms_fetch_report *r, uint64_t p)
{
    for (size_t i = 0; i < r->n_periods; i++)
        if (r->periods[i].period_no == p)
            return &r->periods[i];
    if (r->n_periods == sizeof r->periods / sizeof r->periods[0])
        return NULL;
    ms_fetch_period *e = &r->periods[r->n_periods++];
    memset(e, 0, sizeof *e);
    e->period_no = p;
    return e;
}

/* ---- KMS Initialize ---------------------------------------------------------------- */

/* The first element {ns}name below n (depth first), or NULL. */
static xmlNode *find_elem(xmlNode *n, const char *name)
{
    for (; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (ms_xml_is(n, MS_KMSIF_NS, name))
            return n;
        xmlNode *f = find_elem(n->children, name);
        if (f != NULL)
            return f;
    }
    return NULL;
}

static ms_err judge_cert(fetch_ctx *c, const ms_kms_certificate *nc, bool authenticated,
                         char *detail, size_t cap)
{
    const ms_kms_certificate *old = &c->ks->cert;
    ms_fetch_report *r = c->rep;
    snprintf(r->cert_uri, sizeof r->cert_uri, "%s", nc->cert_uri);
    r->cert_valid_from = nc->valid_from;
    if (strcmp(nc->kms_uri, old->kms_uri) != 0)
        return ks_fail(MS_ERR_MIKEY_UNKNOWN_KMS, detail, cap, "KMS Initialize: the server "
                       "announces a certificate of KMS %s, not of the enrolled KMS %s: refused",
                       nc->kms_uri, old->kms_uri);
    bool same = CRYPTO_memcmp(nc->Z, old->Z, sizeof nc->Z) == 0 &&
                CRYPTO_memcmp(nc->kpak, old->kpak, sizeof nc->kpak) == 0;
    if (nc->revoked)
        return ks_fail(MS_ERR_INVALID, detail, cap, "KMS Initialize: the %s KMS certificate "
                       "%s is marked revoked", same ? "enrolled" : "announced", nc->cert_uri);
    if (same) {
        r->cert = MS_FETCH_CERT_SAME;
        return MS_OK;
    }
    if (nc->user_id_format != old->user_id_format || nc->period_len != old->period_len ||
        nc->period_offset != old->period_offset)
        return ks_fail(MS_ERR_INVALID, detail, cap, "KMS Initialize: the announced KMS "
                       "certificate changes the identifier scheme or key period: refused");
    if (nc->valid_to != 0 && nc->valid_to <= c->now)
        return ks_fail(MS_ERR_PERIOD, detail, cap, "KMS Initialize: the announced KMS "
                       "certificate has expired");
    ms_sakke_kms *s = NULL;
    ms_err err = ms_sakke_kms_new(&s, nc->Z);
    ms_sakke_kms_free(s);
    if (err != MS_OK)
        return ks_fail(MS_ERR_KMS_PUBLIC_INVALID, detail, cap, "KMS Initialize: the announced "
                       "certificate's PubEncKey is not a valid point");
    ms_eccsi_verifier *v = NULL;
    err = ms_eccsi_verifier_new(&v, nc->kpak);
    ms_eccsi_verifier_free(v);
    if (err != MS_OK)
        return ks_fail(MS_ERR_KPAK_INVALID, detail, cap, "KMS Initialize: the announced "
                       "certificate's PubAuthKey is not a valid point");
    /* Nothing is stored from it: key packages carry their certificate and are checked
     * against it at import. */
    r->cert = authenticated ? MS_FETCH_CERT_ROLLOVER : MS_FETCH_CERT_UNSIGNED_CHANGE;
    return MS_OK;
}

static ms_err do_init(fetch_ctx *c, char *detail, size_t cap)
{
    answer a;
    memset(&a, 0, sizeof a);
    ms_err err = post(c, &(ms_annexd_path){.resource = MS_ANNEXD_INIT}, "KMS Initialize", &a,
                      detail, cap);
    if (err != MS_OK || a.status == 404) {
        answer_free(&a);
        return err; /* 404: not offered (a distribution server may not); unchecked */
    }
    ms_xp p;
    char sub[256] = "";
    ms_xp_init(&p, sub, sizeof sub);
    xmlDoc *doc = ms_xml_read(&p, a.body, a.len);
    xmlNode *root = doc != NULL ? xmlDocGetRootElement(doc) : NULL;
    if (root != NULL && ms_xml_is(root, MS_KMSIF_NS, "SignedKmsResponse")) {
        xmlFreeDoc(doc);
        /* Signed: the whole package check under the InK (addressee included). */
        ms_key_package *pkg = ms_secure_alloc(sizeof *pkg);
        if (pkg == NULL) {
            answer_free(&a);
            return ks_fail(MS_ERR_NOMEM, detail, cap, "KMS Initialize");
        }
        err = ms_kmsif_package_parse(pkg, a.body, a.len, &c->ks->dev, sub, sizeof sub);
        if (err != MS_OK)
            err = ks_fail(err, detail, cap, "KMS Initialize: %s", sub[0] ? sub : ms_strerror(err));
        else
            err = judge_cert(c, &pkg->cert, true, detail, cap);
        ms_secure_free(pkg, sizeof *pkg);
    } else if (root != NULL && ms_xml_is(root, MS_KMSIF_NS, "KmsResponse")) {
        /* Unsigned (a plain Annex D KMS): read the certificate, trust no change. */
        xmlNode *init = find_elem(root->children, "KmsInit");
        xmlNode *cel = init != NULL ? find_elem(init->children, "KmsCertificate") : NULL;
        ms_kms_certificate *nc = calloc(1, sizeof *nc);
        if (nc == NULL)
            err = ks_fail(MS_ERR_NOMEM, detail, cap, "KMS Initialize");
        else if (cel == NULL)
            err = ks_fail(MS_ERR_XML, detail, cap, "KMS Initialize: the answer has no "
                          "KmsInit/KmsCertificate");
        else if (!ms_kmsif_cert_read(&p, cel, nc))
            err = ks_fail(MS_ERR_XML, detail, cap, "KMS Initialize: %s", sub);
        else
            err = judge_cert(c, nc, false, detail, cap);
        free(nc);
        xmlFreeDoc(doc);
    } else {
        if (doc != NULL)
            xmlFreeDoc(doc);
        err = ks_fail(MS_ERR_XML, detail, cap, "KMS Initialize: the answer is not a "
                      "KmsResponse%s%s", sub[0] ? ": " : "", sub);
    }
    answer_free(&a);
    return err;
}

/* ---- KMS KeyProvision ------------------------------------------------------------ */

static ms_err do_keyprov(fetch_ctx *c, uint64_t period, bool current, char *detail,
                         size_t cap)
{
    const char *what = current ? "KeyProvision (current period)" : "KeyProvision (next period)";
    uint64_t start = 0, end = 0;
    if (ms_key_period_bounds(&c->scheme, &start, &end, period) != MS_OK)
        return ks_fail(MS_ERR_PERIOD, detail, cap, "%s: key period %llu does not exist", what,
                       (unsigned long long)period);
    uint64_t t = current ? c->now : start;
    ms_annexd_path ap = {.resource = MS_ANNEXD_KEYPROV, .has_user = true, .has_time = true,
                         .time = t};
    snprintf(ap.user, sizeof ap.user, "%s", c->ks->dev.user_uri);

    ms_fetch_period *rp = report_period(c->rep, period);
    if (rp != NULL) {
        rp->requested = true;
        rp->valid_until = end;
    }
    answer a;
    memset(&a, 0, sizeof a);
    ms_err err = post(c, &ap, what, &a, detail, cap);
    if (err != MS_OK) {
        answer_free(&a);
        return err;
    }
    if (a.status == 404) {
        answer_free(&a);
        if (rp != NULL)
            rp->state = MS_FETCH_NOT_ISSUED;
        if (current)
            return ks_fail(MS_ERR_NO_KEYS, detail, cap, "%s: the server has no keys for the "
                           "current key period %llu (404)", what, (unsigned long long)period);
        return MS_OK;
    }

    /* Which periods the package carries (checked here under the InK and TrK, and again
     * by the import, which also validates the keys before storing anything). */
    ms_key_package *pkg = ms_secure_alloc(sizeof *pkg);
    if (pkg == NULL) {
        answer_free(&a);
        return ks_fail(MS_ERR_NOMEM, detail, cap, "%s", what);
    }
    char sub[256] = "";
    err = ms_kmsif_package_parse(pkg, a.body, a.len, &c->ks->dev, sub, sizeof sub);
    if (err != MS_OK) {
        err = ks_fail(err, detail, cap, "%s: refused: %s", what, sub[0] ? sub : ms_strerror(err));
        goto out;
    }
    if (pkg->n_keysets == 0) {
        err = ks_fail(MS_ERR_HTTP, detail, cap, "%s: the answer carries no key set", what);
        goto out;
    }
    ms_keystore_import_report ir;
    err = ms_keystore_import(c->ks, &ir, a.body, a.len, c->now, sub, sizeof sub);
    ms_fetch_state st = MS_FETCH_STORED;
    if (err == MS_ERR_PACKAGE_REPLAY) {
        st = MS_FETCH_HELD; /* this package, or a newer one, is already in */
        err = MS_OK;
    } else if (err != MS_OK) {
        err = ks_fail(err, detail, cap, "%s: refused: %s", what, sub);
        goto out;
    }
    bool got = false;
    for (size_t i = 0; i < pkg->n_keysets; i++) {
        const ms_kmsif_keyset *k = &pkg->keysets[i];
        ms_fetch_period *e = report_period(c->rep, k->period_no);
        if (k->period_no == period)
            got = true;
        if (e == NULL)
            continue;
        uint64_t s0 = 0, e0 = 0;
        if (ms_key_period_bounds(&c->scheme, &s0, &e0, k->period_no) == MS_OK)
            e->valid_until = e0;
        if (k->valid_to != 0 && k->valid_to < e->valid_until)
            e->valid_until = k->valid_to;
        e->state = st;
        e->package_time = pkg->time;
    }
    if (!got && rp != NULL && rp->state == MS_FETCH_NONE)
        rp->state = MS_FETCH_NOT_ISSUED;
    if (!got && current)
        err = ks_fail(MS_ERR_NO_KEYS, detail, cap, "%s: the answer has no key set for the "
                      "current key period %llu", what, (unsigned long long)period);
out:
    ms_secure_free(pkg, sizeof *pkg);
    answer_free(&a);
    return err;
}

/* ---- KMS CertCache ----------------------------------------------------------------- */

static ms_err do_certcache(fetch_ctx *c, char *detail, size_t cap)
{
    answer a;
    memset(&a, 0, sizeof a);
    ms_err err = post(c, &(ms_annexd_path){.resource = MS_ANNEXD_CERTCACHE}, "CertCache", &a,
                      detail, cap);
    if (err != MS_OK || a.status == 404) {
        answer_free(&a);
        return err;
    }
    /* Certificates of other domains: checked for form, counted, not stored (the keystore
     * holds the enrolled KMS only). */
    ms_kms_reply *r = calloc(1, sizeof *r);
    char sub[256] = "";
    if (r == NULL)
        err = ks_fail(MS_ERR_NOMEM, detail, cap, "CertCache");
    else if ((err = ms_kmsif_reply_parse(r, a.body, a.len, sub, sizeof sub)) != MS_OK)
        err = ks_fail(err, detail, cap, "CertCache: %s", sub[0] ? sub : ms_strerror(err));
    else if (r->error_code != 0)
        err = ks_fail(MS_ERR_HTTP, detail, cap, "CertCache: KmsError %d in a 2xx answer",
                      r->error_code);
    else {
        c->rep->certcache_offered = true;
        c->rep->n_cache_certs = r->n_certs;
    }
    free(r);
    answer_free(&a);
    return err;
}

/* ---- the whole fetch --------------------------------------------------------------- */

ms_err ms_keystore_fetch(ms_keystore *ks, ms_fetch_report *report, const ms_fetch_options *opt,
                         char *detail, size_t cap) {
    ms_fetch_report local;
    ms_fetch_report *r = report != NULL ? report : &local;
    memset(r, 0, sizeof *r);
    if (detail != NULL && cap > 0)
        detail[0] = '\0';
    if (ks == NULL || opt == NULL)
        return ks_fail(MS_ERR_ARG, detail, cap, "ms_keystore_fetch: NULL argument");
    fetch_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ks_fail(MS_ERR_NOMEM, detail, cap, "fetch");
    ms_err err = ctx_init(c, ks, opt, r, detail, cap);
    uint64_t cur = 0;
    if (err == MS_OK && ms_key_period(&c->scheme, &cur, c->now) != MS_OK)
        err = ks_fail(MS_ERR_PERIOD, detail, cap, "no key period at this time");
    r->current_period = cur;
    r->next_period = cur + 1;
    if (err == MS_OK)
        err = do_init(c, detail, cap);
    ms_err missing = MS_OK;
    char missing_detail[512] = "";
    if (err == MS_OK) {
        err = do_keyprov(c, cur, true, detail, cap);
        if (err == MS_ERR_NO_KEYS) { /* still try the next period, report at the end */
            missing = err;
            snprintf(missing_detail, sizeof missing_detail, "%s", detail ? detail : "");
            err = MS_OK;
        }
    }
    if (err == MS_OK)
        err = do_keyprov(c, cur + 1, false, detail, cap);
    if (err == MS_OK && !opt->skip_certcache)
        err = do_certcache(c, detail, cap);
    if (err == MS_OK && missing != MS_OK) {
        err = missing;
        if (detail != NULL && cap > 0)
            snprintf(detail, cap, "%s", missing_detail);
    }
    ctx_free(c);
    free(c);
    return err;
}
