/*
 * The HTTP(S) server plumbing (src/net/http.c) driven by libcurl on loopback: what the
 * handler sees (method, path, body, bearer, client address), the early refusals (405,
 * 413 by Content-Length and by chunked body, 429 with Retry-After), /healthz both ways,
 * /metrics counters, keep-alive, port 0, TLS against a throwaway certificate, each start
 * error with its code, concurrent clients, and a clean stop under ASan. Connection caps:
 * idle connections from a few addresses do not starve another client, an address over
 * its cap is refused, IPv6 clients count per /64, and idle or slowloris connections are
 * closed after the timeout while a keep-alive client making requests is kept.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "net/http.h"
#include "testutil.h"

/* ---- the handler under test: records what it saw --------------------------------- */

typedef struct seen {
    char method[16];
    char path[256];
    char ip[64];
    char bearer[128];
    bool has_bearer;
    uint8_t body[128 * 1024];
    size_t body_len;
} seen;

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static seen last;
static atomic_int handler_calls;
static atomic_bool healthy = true;

static void handler(void *ctx, const ms_http_request *req, ms_http_response *resp)
{
    (void)ctx;
    atomic_fetch_add(&handler_calls, 1);
    pthread_mutex_lock(&seen_lock);
    snprintf(last.method, sizeof last.method, "%s", req->method);
    snprintf(last.path, sizeof last.path, "%s", req->path);
    snprintf(last.ip, sizeof last.ip, "%s", req->client_ip);
    last.has_bearer = req->bearer != NULL;
    snprintf(last.bearer, sizeof last.bearer, "%s", req->bearer != NULL ? req->bearer : "");
    last.body_len = req->body_len <= sizeof last.body ? req->body_len : 0;
    if (req->body_len > 0 && req->body_len <= sizeof last.body)
        memcpy(last.body, req->body, req->body_len);
    pthread_mutex_unlock(&seen_lock);

    if (strcmp(req->path, "/status0") == 0) {
        resp->status = 0; /* a handler that forgot: the server answers 500 */
        return;
    }
    if (strcmp(req->path, "/text") == 0) {
        resp->status = 404;
        resp->content_type = "text/plain";
        resp->body = strdup("nothing here");
        resp->body_len = 12;
        return;
    }
    char buf[64];
    int n = snprintf(buf, sizeof buf, "<ok len=\"%zu\"/>", req->body_len);
    resp->status = 200;
    resp->body = malloc((size_t)n);
    memcpy(resp->body, buf, (size_t)n);
    resp->body_len = (size_t)n;
}

static size_t metrics_extra(void *ctx, char *out, size_t cap)
{
    (void)ctx;
    int n = snprintf(out, cap, "test_extra_gauge 42\n");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static bool health(void *ctx, const char **text)
{
    (void)ctx;
    if (atomic_load(&healthy))
        return true;
    *text = "sealed";
    return false;
}

static void error_body(void *ctx, const ms_http_request *req, ms_http_response *resp)
{
    (void)ctx;
    (void)req;
    char buf[64];
    int n = snprintf(buf, sizeof buf, "<KmsError code=\"%d\"/>", resp->status);
    resp->status = 999; /* must be ignored: the server keeps its own status */
    resp->body = malloc((size_t)n);
    memcpy(resp->body, buf, (size_t)n);
    resp->body_len = (size_t)n;
}

/* ---- a small libcurl client ------------------------------------------------------- */

typedef struct reply {
    long status;
    char body[64 * 1024];
    size_t len;
    char content_type[128];
    char retry_after[32];
    char allow[64];
    char cache_control[64];
    char nosniff[64];
    long connects;
    CURLcode rc;
} reply;

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    reply *r = ud;
    size_t len = sz * n;
    size_t room = sizeof r->body - 1 - r->len;
    size_t take = len < room ? len : room;
    memcpy(r->body + r->len, p, take);
    r->len += take;
    r->body[r->len] = '\0';
    return len;
}

static void header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    size_t vl = len - nl - 1;
    while (vl > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vl--;
    }
    while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
        vl--;
    if (vl >= cap)
        vl = cap - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    reply *r = ud;
    size_t len = sz * n;
    header_value(p, len, "Content-Type", r->content_type, sizeof r->content_type);
    header_value(p, len, "Retry-After", r->retry_after, sizeof r->retry_after);
    header_value(p, len, "Allow", r->allow, sizeof r->allow);
    header_value(p, len, "Cache-Control", r->cache_control, sizeof r->cache_control);
    header_value(p, len, "X-Content-Type-Options", r->nosniff, sizeof r->nosniff);
    return len;
}

typedef struct upload {
    const uint8_t *p;
    size_t len, pos;
} upload;

static size_t on_read(char *buf, size_t sz, size_t n, void *ud)
{
    upload *u = ud;
    size_t room = sz * n, left = u->len - u->pos;
    size_t take = left < room ? left : room;
    memcpy(buf, u->p + u->pos, take);
    u->pos += take;
    return take;
}

static char ca_file[512];

/* One request on handle h (reused for keep-alive). method NULL = GET, or "POST", or a
 * custom one; chunked sends the body without Content-Length. */
static void request(CURL *h, reply *r, const char *method, const char *url, const char *auth,
                    const uint8_t *body, size_t len, bool chunked)
{
    memset(r, 0, sizeof *r);
    struct curl_slist *hdrs = NULL;
    char authz[256];
    upload up = {body, len, 0};
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    if (ca_file[0] != '\0')
        curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
    if (auth != NULL) {
        snprintf(authz, sizeof authz, "Authorization: %s", auth);
        hdrs = curl_slist_append(hdrs, authz);
    }
    if (method != NULL && strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        if (chunked) {
            hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
            curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(h, CURLOPT_READDATA, &up);
        } else {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)body);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
    } else if (method != NULL && strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (hdrs != NULL)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    r->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->connects);
    curl_slist_free_all(hdrs);
}

static void url_of(char *out, size_t cap, const char *scheme, const char *host, uint16_t port,
                   const char *path)
{
    snprintf(out, cap, "%s://%s:%u%s", scheme, host, (unsigned)port, path);
}

/* The value of a metric line "name value" in a /metrics body, or -1. */
static long metric(const char *text, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, name, nl) == 0 && p[nl] == ' ')
            return strtol(p + nl + 1, NULL, 10);
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return -1;
}

static ms_http_config base_config(void)
{
    ms_http_config c;
    memset(&c, 0, sizeof c);
    c.bind_addr = "127.0.0.1";
    c.port = 0;
    c.max_body = 4096;
    c.threads = 4;
    c.name = "test";
    return c;
}

/* ---- plain HTTP ------------------------------------------------------------------- */

static void test_plain(void)
{
    ms_http_config cfg = base_config();
    ms_http_server *srv = NULL;
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, metrics_extra, health, NULL), MS_OK);
    if (srv == NULL)
        return;
    uint16_t port = ms_http_port(srv);
    CHECK(port != 0);
    char url[512];
    CURL *h = curl_easy_init();
    reply *r = calloc(1, sizeof *r);

    /* POST: the handler sees everything, the path stays percent-encoded. */
    const char *path = "/keymanagement/identity/v1/keyprov/sip%3Aalice%40example.org/0123";
    url_of(url, sizeof url, "http", "127.0.0.1", port, path);
    const char *xml = "<KmsRequest>hello</KmsRequest>";
    atomic_store(&handler_calls, 0);
    request(h, r, "POST", url, "Bearer dev1.abcdef", (const uint8_t *)xml, strlen(xml), false);
    CHECK(r->rc == CURLE_OK);
    CHECK(r->status == 200);
    CHECK(strcmp(r->body, "<ok len=\"30\"/>") == 0);
    CHECK(strcmp(r->content_type, "application/xml") == 0);
    CHECK(strcmp(r->cache_control, "no-store") == 0);
    CHECK(strcmp(r->nosniff, "nosniff") == 0);
    CHECK(atomic_load(&handler_calls) == 1);
    CHECK(strcmp(last.method, "POST") == 0);
    CHECK(strcmp(last.path, path) == 0);
    CHECK(strcmp(last.ip, "127.0.0.1") == 0);
    CHECK(last.has_bearer && strcmp(last.bearer, "dev1.abcdef") == 0);
    CHECK(last.body_len == strlen(xml) && memcmp(last.body, xml, last.body_len) == 0);

    /* GET: no body, no bearer; query cut off; scheme case-insensitive; other schemes. */
    url_of(url, sizeof url, "http", "127.0.0.1", port, "/some/path?x=1&y=%41");
    request(h, r, NULL, url, NULL, NULL, 0, false);
    CHECK(r->status == 200);
    CHECK(strcmp(last.method, "GET") == 0);
    CHECK(strcmp(last.path, "/some/path") == 0);
    CHECK(!last.has_bearer);
    CHECK(last.body_len == 0);
    request(h, r, NULL, url, "bearer   tok-2", NULL, 0, false);
    CHECK(last.has_bearer && strcmp(last.bearer, "tok-2") == 0);
    request(h, r, NULL, url, "Basic dXNlcjpwdw==", NULL, 0, false);
    CHECK(r->status == 200 && !last.has_bearer);
    request(h, r, NULL, url, "Bearer ", NULL, 0, false);
    CHECK(r->status == 200 && !last.has_bearer);

    /* The handler's status and content type go out as given; a missing status is 500. */
    url_of(url, sizeof url, "http", "127.0.0.1", port, "/text");
    request(h, r, NULL, url, NULL, NULL, 0, false);
    CHECK(r->status == 404 && strcmp(r->body, "nothing here") == 0);
    CHECK(strcmp(r->content_type, "text/plain") == 0);
    url_of(url, sizeof url, "http", "127.0.0.1", port, "/status0");
    request(h, r, NULL, url, NULL, NULL, 0, false);
    CHECK(r->status == 500);

    /* 405 before the handler, with Allow; also for POST to /healthz. */
    atomic_store(&handler_calls, 0);
    url_of(url, sizeof url, "http", "127.0.0.1", port, "/keymanagement/identity/v1/init");
    request(h, r, "PUT", url, NULL, NULL, 0, false);
    CHECK(r->status == 405);
    CHECK(strcmp(r->allow, "GET, POST") == 0);
    request(h, r, "DELETE", url, NULL, NULL, 0, false);
    CHECK(r->status == 405);
    url_of(url, sizeof url, "http", "127.0.0.1", port, "/healthz");
    request(h, r, "POST", url, NULL, (const uint8_t *)"x", 1, false);
    CHECK(r->status == 405);
    CHECK(atomic_load(&handler_calls) == 0);

    /* Body limit: exactly max_body passes; one more is 413 before the handler, both
     * with Content-Length and chunked. */
    uint8_t *big = malloc(cfg.max_body + 100);
    for (size_t i = 0; i < cfg.max_body + 100; i++)
        big[i] = (uint8_t)('a' + i % 26);
    url_of(url, sizeof url, "http", "127.0.0.1", port, "/keymanagement/identity/v1/keyprov");
    request(h, r, "POST", url, NULL, big, cfg.max_body, false);
    CHECK(r->status == 200);
    CHECK(last.body_len == cfg.max_body && memcmp(last.body, big, cfg.max_body) == 0);
    request(h, r, "POST", url, NULL, big, cfg.max_body, true);
    CHECK(r->status == 200);
    CHECK(last.body_len == cfg.max_body && memcmp(last.body, big, cfg.max_body) == 0);
    atomic_store(&handler_calls, 0);
    request(h, r, "POST", url, NULL, big, cfg.max_body + 1, false);
    CHECK(r->status == 413);
    request(h, r, "POST", url, NULL, big, cfg.max_body + 100, true);
    CHECK(r->status == 413);
    CHECK(atomic_load(&handler_calls) == 0);
    free(big);
    /* A much larger body: 413 both ways (drained, not a connection reset), and no part
     * of the body is taken for a next request; far beyond the drain limit a chunked
     * sender is cut off. */
    size_t huge_len = 1024 * 1024;
    uint8_t *huge = calloc(1, 3 * huge_len);
    memset(huge, 'G', 3 * huge_len);
    static const char smuggled[] = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    memcpy(huge + 8192, smuggled, sizeof smuggled - 1);
    request(h, r, "POST", url, NULL, huge, huge_len, true);
    CHECK(r->rc == CURLE_OK && r->status == 413);
    request(h, r, "POST", url, NULL, huge, huge_len, false);
    CHECK(r->status == 413);
    request(h, r, "POST", url, NULL, huge, 3 * huge_len, true);
    CHECK(r->status != 200 && r->status != 413);
    free(huge);
    url_of(url, sizeof url, "http", "127.0.0.1", port, "/after");
    request(h, r, NULL, url, NULL, NULL, 0, false);
    CHECK(r->status == 200 && strcmp(last.path, "/after") == 0);
    CHECK(atomic_load(&handler_calls) == 1);

    /* /healthz both ways. */
    url_of(url, sizeof url, "http", "127.0.0.1", port, "/healthz");
    request(h, r, NULL, url, NULL, NULL, 0, false);
    CHECK(r->status == 200 && strcmp(r->body, "ok\n") == 0);
    atomic_store(&healthy, false);
    request(h, r, NULL, url, NULL, NULL, 0, false);
    CHECK(r->status == 503 && strcmp(r->body, "sealed\n") == 0);
    atomic_store(&healthy, true);
    request(h, r, NULL, url, NULL, NULL, 0, false);
    CHECK(r->status == 200);

    /* /metrics: counters move with requests; the caller's lines are appended. */
    url_of(url, sizeof url, "http", "127.0.0.1", port, "/metrics");
    request(h, r, NULL, url, NULL, NULL, 0, false);
    CHECK(r->status == 200);
    CHECK(strcmp(r->content_type, "text/plain; version=0.0.4; charset=utf-8") == 0);
    long ok1 = metric(r->body, "test_http_requests_total{code=\"200\"}");
    long e405 = metric(r->body, "test_http_requests_total{code=\"405\"}");
    long e413 = metric(r->body, "test_http_requests_total{code=\"413\"}");
    long e503 = metric(r->body, "test_http_requests_total{code=\"503\"}");
    long bytes1 = metric(r->body, "test_http_response_bytes_total");
    CHECK(ok1 == 10); /* 5 at the start, 2 at the body limit, /after, 2 healthy */
    CHECK(e405 == 3);
    CHECK(e413 == 4);
    CHECK(e503 == 1);
    CHECK(bytes1 > 0);
    /* this one, and perhaps the one before: its answer can reach us before the server's
     * completion callback has counted it out */
    long in_flight = metric(r->body, "test_http_requests_in_flight");
    CHECK(in_flight == 1 || in_flight == 2);
    CHECK(metric(r->body, "test_http_rate_limited_total") == 0);
    CHECK(metric(r->body, "test_extra_gauge") == 42);
    CHECK(strstr(r->body, "# TYPE test_http_requests_total counter\n") != NULL);
    url_of(url, sizeof url, "http", "127.0.0.1", port, "/x");
    request(h, r, NULL, url, NULL, NULL, 0, false);
    url_of(url, sizeof url, "http", "127.0.0.1", port, "/metrics");
    request(h, r, NULL, url, NULL, NULL, 0, false);
    /* +1 for /x, +1 for the previous /metrics itself */
    CHECK(metric(r->body, "test_http_requests_total{code=\"200\"}") == ok1 + 2);
    CHECK(metric(r->body, "test_http_response_bytes_total") > bytes1);

    /* Keep-alive: many requests, one connection (GET and POST). */
    CURL *k = curl_easy_init();
    url_of(url, sizeof url, "http", "127.0.0.1", port, "/keymanagement/identity/v1/keyprov");
    long connects = 0;
    int oks = 0;
    for (int i = 0; i < 200; i++) {
        if (i % 2 == 0)
            request(k, r, "POST", url, "Bearer t", (const uint8_t *)xml, strlen(xml), false);
        else
            request(k, r, NULL, url, NULL, NULL, 0, false);
        oks += r->status == 200;
        connects += r->connects;
    }
    CHECK(oks == 200);
    CHECK(connects == 1);

    /* Stop with an idle keep-alive connection still open: clean under ASan. */
    ms_http_stop(srv);
    curl_easy_cleanup(k);
    curl_easy_cleanup(h);
    free(r);
}

/* ---- connection caps and slow clients ------------------------------------------- */

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A TCP connection from source address src (any of 127/8 works on Linux) to port. */
static int connect_from(const char *src, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    inet_pton(AF_INET, src, &a.sin_addr);
    struct sockaddr_in to = a;
    to.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Whether the server has closed fd (end of stream or reset), waiting up to ms. */
static bool closed_by_server(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0)
        return false;
    char b[256];
    ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* GET /healthz from src on a fresh connection: the status, or 0 without an answer. */
static int healthz_from(const char *src, uint16_t port)
{
    int fd = connect_from(src, port);
    if (fd < 0)
        return 0;
    static const char get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int status = 0;
    char b[512];
    size_t got = 0;
    if (send(fd, get, sizeof get - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof get - 1)) {
        struct pollfd p = {fd, POLLIN, 0};
        double until = mono_now() + 20;
        while (got < sizeof b - 1 && mono_now() < until && poll(&p, 1, 1000) >= 0) {
            if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = recv(fd, b + got, sizeof b - 1 - got, 0);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        b[got] = '\0';
        if (strncmp(b, "HTTP/1.1 ", 9) == 0)
            status = atoi(b + 9);
    }
    close(fd);
    return status;
}

/* With the default caps, a few addresses holding idle connections do not starve
 * another client (/healthz still answers), and an address over its cap is refused. */
static void test_connection_caps(void)
{
    ms_http_config cfg = base_config();
    cfg.threads = 2;
    ms_http_server *srv = NULL;
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, NULL, health, NULL), MS_OK);
    if (srv == NULL)
        return;
    uint16_t port = ms_http_port(srv);
    enum { PER = 300, ADDRS = 4 };
    static const char *const from[ADDRS] = {"127.0.0.1", "127.0.0.3", "127.0.0.4",
                                            "127.0.0.5"};
    static int fds[ADDRS * PER];
    int opened = 0;
    for (int a = 0; a < ADDRS; a++)
        for (int i = 0; i < PER; i++) {
            fds[a * PER + i] = connect_from(from[a], port);
            opened += fds[a * PER + i] >= 0;
        }
    CHECK(opened == ADDRS * PER);
    /* wait until the server has dealt with them all: no more closed for a second */
    int closed = 0, before = -1;
    bool is_closed[ADDRS * PER] = {false};
    double until = mono_now() + 30;
    while (closed != before && mono_now() < until) {
        before = closed;
        double quiet = mono_now() + 1.0;
        while (mono_now() < quiet) {
            for (int i = 0; i < ADDRS * PER; i++)
                if (fds[i] >= 0 && !is_closed[i] && closed_by_server(fds[i], 0)) {
                    is_closed[i] = true;
                    closed++;
                }
            usleep(50 * 1000);
        }
    }
    /* each address keeps its 32 (the default cap), the rest are refused */
    CHECK(closed == ADDRS * (PER - 32));
    CHECK(healthz_from("127.0.0.2", port) == 200);
    CHECK(healthz_from("127.0.0.1", port) == 0); /* its address is at its cap */
    for (int i = 0; i < ADDRS * PER; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    /* once they are gone, that address is served again */
    until = mono_now() + 20;
    int st = 0;
    while ((st = healthz_from("127.0.0.1", port)) != 200 && mono_now() < until)
        usleep(100 * 1000);
    CHECK(st == 200);
    ms_http_stop(srv);

    /* IPv6 clients are counted per /64 (one host has all of it); IPv4 per address */
    CHECK(ms_http_same_client("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"));
    CHECK(!ms_http_same_client("2001:db8:1:2::1", "2001:db8:1:3::1"));
    CHECK(ms_http_same_client("192.0.2.7", "::ffff:192.0.2.7"));
    CHECK(!ms_http_same_client("192.0.2.7", "192.0.2.8"));
    CHECK(!ms_http_same_client("192.0.2.7", "not an address"));
}

/* A connection that sends nothing, or a header a byte now and then (slowloris), is
 * closed once the timeout passes; a keep-alive client making requests is not. */
static void test_slow_clients(void)
{
    ms_http_config cfg = base_config();
    cfg.timeout_sec = 2;
    ms_http_server *srv = NULL;
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, NULL, health, NULL), MS_OK);
    if (srv == NULL)
        return;
    uint16_t port = ms_http_port(srv);
    int idle = connect_from("127.0.0.1", port);
    int drip = connect_from("127.0.0.1", port);
    CHECK(idle >= 0 && drip >= 0);
    static const char start[] = "GET /healthz HTTP/1.1\r\n";
    CHECK(send(drip, start, sizeof start - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof start - 1));
    bool idle_closed = false, drip_closed = false;
    double until = mono_now() + 20; /* generous: the timeout is 2 s */
    while ((!idle_closed || !drip_closed) && mono_now() < until) {
        if (!drip_closed && send(drip, "X-Drip: 1\r\n", 11, MSG_NOSIGNAL) != 11)
            drip_closed = true;
        usleep(300 * 1000);
        idle_closed = idle_closed || closed_by_server(idle, 0);
        drip_closed = drip_closed || closed_by_server(drip, 0);
    }
    CHECK(idle_closed);
    CHECK(drip_closed);
    close(idle);
    close(drip);

    /* requests every half second over one connection, past the timeout: kept */
    CURL *k = curl_easy_init();
    reply *r = calloc(1, sizeof *r);
    char url[128];
    url_of(url, sizeof url, "http", "127.0.0.1", port, "/x");
    long connects = 0;
    int oks = 0;
    for (int i = 0; i < 8; i++) {
        request(k, r, NULL, url, NULL, NULL, 0, false);
        oks += r->status == 200;
        connects += r->connects;
        usleep(500 * 1000);
    }
    CHECK(oks == 8);
    CHECK(connects == 1);
    curl_easy_cleanup(k);
    free(r);
    ms_http_stop(srv);
}

/* ---- rate limit ------------------------------------------------------------------- */

static void test_rate_limit(void)
{
    ms_http_config cfg = base_config();
    cfg.rate_per_sec = 0.001; /* one token per ~17 minutes: no refill during the test */
    cfg.rate_burst = 3;
    ms_http_server *srv = NULL;
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, NULL, NULL, NULL), MS_OK);
    if (srv == NULL)
        return;
    char url[512];
    url_of(url, sizeof url, "http", "127.0.0.1", ms_http_port(srv), "/keyprov");
    CURL *h = curl_easy_init();
    reply *r = calloc(1, sizeof *r);
    atomic_store(&handler_calls, 0);
    for (int i = 0; i < 3; i++) {
        request(h, r, "POST", url, NULL, (const uint8_t *)"a", 1, false);
        CHECK(r->status == 200);
        CHECK(r->retry_after[0] == '\0');
    }
    request(h, r, "POST", url, NULL, (const uint8_t *)"a", 1, false);
    CHECK(r->status == 429);
    CHECK(atoi(r->retry_after) >= 1);
    CHECK(strcmp(r->body, "too many requests") == 0);
    request(h, r, NULL, url, NULL, NULL, 0, false);
    CHECK(r->status == 429);
    CHECK(atomic_load(&handler_calls) == 3);
    /* Health and metrics stay reachable, and metrics counted the refusals. */
    url_of(url, sizeof url, "http", "127.0.0.1", ms_http_port(srv), "/healthz");
    request(h, r, NULL, url, NULL, NULL, 0, false);
    CHECK(r->status == 200);
    url_of(url, sizeof url, "http", "127.0.0.1", ms_http_port(srv), "/metrics");
    request(h, r, NULL, url, NULL, NULL, 0, false);
    CHECK(r->status == 200);
    CHECK(metric(r->body, "test_http_rate_limited_total") == 2);
    CHECK(metric(r->body, "test_http_requests_total{code=\"429\"}") == 2);
    CHECK(strstr(r->body, "test_extra_gauge") == NULL); /* no metrics callback given */
    ms_http_stop(srv);

    /* A caller's error body replaces the text, the status stays. */
    cfg.error_body = error_body;
    cfg.rate_burst = 1;
    srv = NULL;
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, NULL, NULL, NULL), MS_OK);
    if (srv != NULL) {
        url_of(url, sizeof url, "http", "127.0.0.1", ms_http_port(srv), "/keyprov");
        request(h, r, "POST", url, NULL, (const uint8_t *)"a", 1, false);
        CHECK(r->status == 200);
        request(h, r, "POST", url, NULL, (const uint8_t *)"a", 1, false);
        CHECK(r->status == 429);
        CHECK(strcmp(r->body, "<KmsError code=\"429\"/>") == 0);
        CHECK(strcmp(r->content_type, "application/xml") == 0);
        CHECK(atoi(r->retry_after) >= 1);
        request(h, r, "PATCH", url, NULL, NULL, 0, false);
        CHECK(r->status == 405);
        CHECK(strcmp(r->body, "<KmsError code=\"405\"/>") == 0);
        ms_http_stop(srv);
    }
    curl_easy_cleanup(h);
    free(r);
}

/* ---- concurrency ------------------------------------------------------------------ */

typedef struct worker {
    uint16_t port;
    int ok;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    CURL *h = curl_easy_init();
    reply *r = calloc(1, sizeof *r);
    char url[256];
    url_of(url, sizeof url, "http", "127.0.0.1", w->port, "/keyprov");
    for (int i = 0; i < 50; i++) {
        request(h, r, "POST", url, "Bearer x", (const uint8_t *)"<a/>", 4, false);
        w->ok += r->status == 200 && strcmp(r->body, "<ok len=\"4\"/>") == 0;
    }
    free(r);
    curl_easy_cleanup(h);
    return NULL;
}

static void test_concurrent(void)
{
    ms_http_config cfg = base_config();
    cfg.threads = 3;
    ms_http_server *srv = NULL;
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, NULL, NULL, NULL), MS_OK);
    if (srv == NULL)
        return;
    atomic_store(&handler_calls, 0);
    pthread_t t[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){ms_http_port(srv), 0};
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ok += w[i].ok;
    }
    CHECK(ok == 200);
    CHECK(atomic_load(&handler_calls) == 200);
    ms_http_stop(srv);
}

/* ---- addresses and start errors ---------------------------------------------------- */

static void test_addresses(void)
{
    CURL *h = curl_easy_init();
    reply *r = calloc(1, sizeof *r);
    char url[512];
    ms_http_config cfg = base_config();
    ms_http_server *srv = NULL, *srv2 = NULL;
    char detail[256];

    /* Argument errors. */
    CHECK_ERR(ms_http_start(NULL, &cfg, handler, NULL, NULL, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_http_start(&srv, NULL, handler, NULL, NULL, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_http_start(&srv, &cfg, NULL, NULL, NULL, NULL), MS_ERR_ARG);
    CHECK(srv == NULL);
    cfg.bind_addr = "localhost"; /* addresses only, no name lookups */
    cfg.detail = detail;
    cfg.detail_cap = sizeof detail;
    detail[0] = '\0';
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, NULL, NULL, NULL), MS_ERR_ARG);
    CHECK(strstr(detail, "localhost") != NULL);
    cfg = base_config();
    cfg.name = "bad-name";
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, NULL, NULL, NULL), MS_ERR_ARG);
    cfg = base_config();
    cfg.rate_per_sec = -1;
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, NULL, NULL, NULL), MS_ERR_ARG);
    cfg = base_config();
    cfg.cert_file = "/nonexistent.pem"; /* without key_file */
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, NULL, NULL, NULL), MS_ERR_ARG);
    ms_http_stop(NULL);
    CHECK(ms_http_port(NULL) == 0);

    /* A port in use: MS_ERR_IO with the reason; the first server keeps working. */
    cfg = base_config();
    cfg.threads = 1;
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, NULL, NULL, NULL), MS_OK);
    if (srv != NULL) {
        cfg.port = ms_http_port(srv);
        cfg.detail = detail;
        cfg.detail_cap = sizeof detail;
        detail[0] = '\0';
        CHECK_ERR(ms_http_start(&srv2, &cfg, handler, NULL, NULL, NULL), MS_ERR_IO);
        CHECK(srv2 == NULL);
        CHECK(strstr(detail, "cannot listen") != NULL);
        url_of(url, sizeof url, "http", "127.0.0.1", ms_http_port(srv), "/a");
        request(h, r, NULL, url, NULL, NULL, 0, false);
        CHECK(r->status == 200);
        ms_http_stop(srv);
        srv = NULL;
    }

    /* No address: every interface, IPv4 clients included. */
    cfg = base_config();
    cfg.bind_addr = NULL;
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, NULL, NULL, NULL), MS_OK);
    if (srv != NULL) {
        url_of(url, sizeof url, "http", "127.0.0.1", ms_http_port(srv), "/any");
        request(h, r, NULL, url, NULL, NULL, 0, false);
        CHECK(r->status == 200 && strcmp(last.path, "/any") == 0);
        ms_http_stop(srv);
        srv = NULL;
    }

    /* "::" takes IPv4 clients (named as plain IPv4) and IPv6 clients; skipped where the
     * machine has no IPv6. */
    cfg = base_config();
    cfg.bind_addr = "::";
    if (ms_http_start(&srv, &cfg, handler, NULL, NULL, NULL) == MS_OK) {
        url_of(url, sizeof url, "http", "127.0.0.1", ms_http_port(srv), "/v4");
        request(h, r, NULL, url, NULL, NULL, 0, false);
        CHECK(r->status == 200);
        CHECK(strcmp(last.ip, "127.0.0.1") == 0);
        url_of(url, sizeof url, "http", "[::1]", ms_http_port(srv), "/v6");
        request(h, r, NULL, url, NULL, NULL, 0, false);
        if (r->rc == CURLE_OK) {
            CHECK(r->status == 200);
            CHECK(strcmp(last.ip, "::1") == 0);
        }
        ms_http_stop(srv);
        srv = NULL;
    } else {
        printf("no IPv6 here: dual-stack checks skipped\n");
    }
    curl_easy_cleanup(h);
    free(r);
}

/* ---- TLS ------------------------------------------------------------------------ */

static char tmpdir[256];

static bool make_cert(const char *stem, const char *cn_san)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-days 2 -subj /CN=localhost -addext subjectAltName=%s "
             "-keyout %s/%s.key -out %s/%s.pem >/dev/null 2>&1 && chmod 600 %s/%s.key",
             cn_san, tmpdir, stem, tmpdir, stem, tmpdir, stem);
    return system(cmd) == 0;
}

static void test_tls(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ms_test_http_XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        CHECK(!"mkdtemp");
        return;
    }
    CHECK(make_cert("server", "IP:127.0.0.1,DNS:localhost"));
    CHECK(make_cert("other", "IP:127.0.0.1,DNS:localhost"));
    char cert[512], key[512], other[512];
    snprintf(cert, sizeof cert, "%s/server.pem", tmpdir);
    snprintf(key, sizeof key, "%s/server.key", tmpdir);
    snprintf(other, sizeof other, "%s/other.pem", tmpdir);

    ms_http_config cfg = base_config();
    cfg.cert_file = cert;
    cfg.key_file = key;
    ms_http_server *srv = NULL;
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, metrics_extra, health, NULL), MS_OK);
    if (srv == NULL)
        return;
    uint16_t port = ms_http_port(srv);
    CURL *h = curl_easy_init();
    reply *r = calloc(1, sizeof *r);
    char url[512];

    /* Verified against the CA file, by IP and by name. */
    snprintf(ca_file, sizeof ca_file, "%s", cert);
    url_of(url, sizeof url, "https", "127.0.0.1", port, "/keyprov");
    const char *xml = "<KmsRequest/>";
    request(h, r, "POST", url, "Bearer dev.tok", (const uint8_t *)xml, strlen(xml), false);
    CHECK(r->rc == CURLE_OK);
    CHECK(r->status == 200);
    CHECK(strcmp(last.bearer, "dev.tok") == 0);
    CHECK(last.body_len == strlen(xml) && memcmp(last.body, xml, last.body_len) == 0);
    url_of(url, sizeof url, "https", "localhost", port, "/healthz");
    request(h, r, NULL, url, NULL, NULL, 0, false);
    if (r->rc == CURLE_OK) /* localhost may resolve to ::1 first with no listener */
        CHECK(r->status == 200 && strcmp(r->body, "ok\n") == 0);

    /* Keep-alive over TLS: one handshake for many requests. */
    CURL *k = curl_easy_init();
    url_of(url, sizeof url, "https", "127.0.0.1", port, "/keyprov");
    long connects = 0;
    int oks = 0;
    for (int i = 0; i < 50; i++) {
        request(k, r, "POST", url, "Bearer t", (const uint8_t *)xml, strlen(xml), false);
        oks += r->status == 200;
        connects += r->connects;
    }
    CHECK(oks == 50);
    CHECK(connects == 1);
    curl_easy_cleanup(k);

    /* Another CA: refused by the client; plain HTTP to the TLS port gets nothing. */
    snprintf(ca_file, sizeof ca_file, "%s", other);
    url_of(url, sizeof url, "https", "127.0.0.1", port, "/keyprov");
    CURL *h2 = curl_easy_init();
    request(h2, r, NULL, url, NULL, NULL, 0, false);
    CHECK(r->rc == CURLE_PEER_FAILED_VERIFICATION || r->rc == CURLE_SSL_CACERT);
    ca_file[0] = '\0';
    url_of(url, sizeof url, "http", "127.0.0.1", port, "/keyprov");
    request(h2, r, NULL, url, NULL, NULL, 0, false);
    CHECK(r->status != 200);
    curl_easy_cleanup(h2);
    ms_http_stop(srv);
    srv = NULL;

    /* Start errors: missing file, key open to others, garbage certificate, a key that
     * does not belong to the certificate. */
    char detail[256];
    cfg.detail = detail;
    cfg.detail_cap = sizeof detail;
    char missing[512];
    snprintf(missing, sizeof missing, "%s/missing.pem", tmpdir);
    cfg.cert_file = missing;
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, NULL, NULL, NULL), MS_ERR_IO);
    CHECK(strstr(detail, "missing.pem") != NULL);
    cfg.cert_file = cert;
    chmod(key, 0640);
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, NULL, NULL, NULL), MS_ERR_KEYFILE_MODE);
    chmod(key, 0600);
    cfg.key_file = tmpdir; /* a directory */
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, NULL, NULL, NULL), MS_ERR_KEYFILE_MODE);
    cfg.key_file = key;
    char garbage[512];
    snprintf(garbage, sizeof garbage, "%s/garbage.pem", tmpdir);
    FILE *f = fopen(garbage, "w");
    if (f != NULL) {
        fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", f);
        fclose(f);
    }
    cfg.cert_file = garbage;
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, NULL, NULL, NULL), MS_ERR_TLS);
    cfg.cert_file = other; /* other.pem with server.key */
    detail[0] = '\0';
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, NULL, NULL, NULL), MS_ERR_TLS);
    CHECK(strstr(detail, "does not belong") != NULL);
    cfg.cert_file = cert;
    cfg.key_file = cert; /* a certificate where the key should be */
    chmod(cert, 0600);
    CHECK_ERR(ms_http_start(&srv, &cfg, handler, NULL, NULL, NULL), MS_ERR_TLS);
    CHECK(srv == NULL);

    curl_easy_cleanup(h);
    free(r);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    test_plain();
    test_rate_limit();
    test_concurrent();
    test_addresses();
    test_connection_caps();
    test_slow_clients();
    test_tls();
    curl_global_cleanup();
    return ms_test_finish();
}
