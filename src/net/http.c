/*
 * HTTPS server plumbing on libmicrohttpd: one daemon with an internal thread pool,
 * TLS from PEM files, connection caps per client (IPv4 address, IPv6 /64) and in all, a
 * deadline for each request besides the idle timeout, early refusals (405, 429; 413 once
 * a body up to 1 MiB over the limit is drained), /healthz and /metrics, everything else
 * to the caller's handler. Bodies and tokens are never logged; response bodies are wiped
 * when libmicrohttpd lets go of them.
 */
#include "net/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "mikeysakke/crypto.h"

#define DEFAULT_MAX_BODY (64u * 1024u)
/* Octets past max_body read and discarded so that a 413 reaches the client. */
#define DRAIN_LIMIT (1024u * 1024u)
#define DEFAULT_THREADS 2u
#define DEFAULT_MAX_CONNECTIONS 1024u
#define DEFAULT_MAX_PER_IP 32u
#define DEFAULT_TIMEOUT 30u
#define REAPER_TICK_MS 250 /* how often slow connections are looked for */
#define CONNECTION_MEMORY (32u * 1024u)
#define MAX_PEM_FILE (1024u * 1024u)
#define METRICS_EXTRA_CAP (64u * 1024u)
#define MAX_STATUS 600

/* TLS 1.2 and 1.3 only, AEAD ciphers, ECDHE key exchange (forward secrecy). */
#define TLS_PRIORITIES                                                             \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:"         \
    "+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA"

/* ---- per-IP token bucket -------------------------------------------------------------
 * A fixed open-addressed table: an address is looked up in a short probe window; a slot
 * whose bucket would have refilled completely counts as free (expiry without a sweep),
 * and when the window is full the least recently used slot is taken over. Memory stays
 * bounded whatever the number of clients. */
#define RL_SLOTS 4096u
#define RL_PROBE 8u

typedef struct rl_slot {
    char ip[INET6_ADDRSTRLEN];
    double tokens;
    double last; /* monotonic seconds of the last refill */
    int used;
} rl_slot;

typedef struct rate_limiter {
    pthread_mutex_t lock;
    double rate, burst;
    uint64_t seed;
    rl_slot *slots;
} rate_limiter;

/* ---- connections: per-client caps and the request deadline ---------------------------
 * libmicrohttpd caps connections per exact address; a client with an IPv6 /64 has
 * 2^64 of those, so clients are grouped here (an IPv4 address, an IPv6 /64) and counted
 * from the connection notifications, refused at accept once their group is full. Its
 * timeout is an idle timeout, which a client sending a byte now and then never meets
 * (slowloris): so every connection must also complete a request within the timeout of
 * opening or of its previous answer, or a reaper thread shuts its socket down. */
#define GROUP_KEY 17 /* family octet + up to 16 address octets */

typedef struct conn_group {
    uint8_t key[GROUP_KEY];
    unsigned count; /* 0 = free slot */
} conn_group;

typedef struct conn_rec {
    struct conn_rec *prev, *next;
    int fd;
    uint8_t key[GROUP_KEY];
    bool counted;  /* holds a place in its group */
    bool waiting;  /* a request is awaited: the deadline runs */
    bool cut;      /* shut down by the reaper or over its group's cap */
    double deadline;
} conn_rec;

typedef struct conn_table {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    conn_group *groups;
    size_t n_groups;
    unsigned per_group;
    double timeout;
    conn_rec *head;
    size_t open;
    bool stop;
    bool reaper_running;
    pthread_t reaper;
} conn_table;

struct ms_http_server {
    struct MHD_Daemon *daemon;
    conn_table conns;
    atomic_ulong conn_refused; /* over a client's cap */
    atomic_ulong conn_timed_out; /* cut by the request deadline */
    uint16_t port;
    bool tls;
    size_t max_body;
    char name[64];
    ms_http_handler handler;
    ms_http_metrics_fn metrics;
    ms_http_health_fn health;
    ms_http_error_fn error_body;
    bool allow_delete;
    void *ctx;
    int (*client_check)(void *check_ctx, void *tls_session);
    void *client_check_ctx;
    void (*peer_handler)(void *ctx, int peer, const ms_http_request *req,
                         ms_http_response *resp);
    rate_limiter rl;
    /* Counters for /metrics. */
    atomic_ulong by_status[MAX_STATUS];
    atomic_ulong rate_limited;
    atomic_ulong bytes_out;
    atomic_long in_flight;
    /* Start-up diagnostics from libmicrohttpd's logger; unused once running. */
    atomic_bool starting;
    char start_log[160];
};

/* Per-request state (libmicrohttpd's con_cls). */
typedef struct req_state {
    uint8_t *body;
    size_t len, cap;
    size_t drained; /* octets thrown away after too_large */
    size_t drain_cap; /* how many may be: the declared length, else DRAIN_LIMIT */
    bool too_large;
    bool answered;
    int peer; /* client_check's verdict, -1 without one */
    char ip[INET6_ADDRSTRLEN];
} req_state;

static void conn_waiting(ms_http_server *srv, struct MHD_Connection *c, bool waiting);

/* Body handed to libmicrohttpd; wiped and freed by its free callback. */
typedef struct owned_body {
    char *p;
    size_t len;
} owned_body;

static void set_detail(const ms_http_config *cfg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_detail(const ms_http_config *cfg, const char *fmt, ...)
{
    if (cfg == NULL || cfg->detail == NULL || cfg->detail_cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cfg->detail, cfg->detail_cap, fmt, ap);
    va_end(ap);
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rl_hash(uint64_t seed, const char *s)
{
    /* FNV-1a with a random start: the probe window bounds the damage of collisions. */
    uint64_t h = 1469598103934665603ull ^ seed;
    for (; *s != '\0'; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

/* Takes a token for `ip`; returns 0 if allowed, else the seconds to wait (>= 1). */
static unsigned rl_take(rate_limiter *rl, const char *ip)
{
    double now = now_mono();
    double full_after = rl->burst / rl->rate;
    uint64_t h = rl_hash(rl->seed, ip);
    unsigned ret = 0;

    pthread_mutex_lock(&rl->lock);
    rl_slot *hit = NULL, *free_slot = NULL, *oldest = NULL;
    for (unsigned i = 0; i < RL_PROBE; i++) {
        rl_slot *s = &rl->slots[(h + i) & (RL_SLOTS - 1)];
        if (s->used && strcmp(s->ip, ip) == 0) {
            hit = s;
            break;
        }
        if (!s->used || now - s->last >= full_after) {
            if (free_slot == NULL)
                free_slot = s;
        } else if (oldest == NULL || s->last < oldest->last) {
            oldest = s;
        }
    }
    if (hit == NULL) {
        hit = free_slot != NULL ? free_slot : oldest;
        snprintf(hit->ip, sizeof hit->ip, "%s", ip);
        hit->used = 1;
        hit->tokens = rl->burst;
        hit->last = now;
    }
    double t = hit->tokens + (now - hit->last) * rl->rate;
    hit->tokens = t > rl->burst ? rl->burst : t;
    hit->last = now;
    if (hit->tokens >= 1.0) {
        hit->tokens -= 1.0;
    } else {
        /* Rounded up by hand: the library does not link libm. */
        double wait = (1.0 - hit->tokens) / rl->rate;
        if (wait >= 86400.0) {
            ret = 86400u;
        } else {
            ret = (unsigned)wait;
            if ((double)ret < wait)
                ret++;
            if (ret == 0)
                ret = 1;
        }
    }
    pthread_mutex_unlock(&rl->lock);
    return ret;
}

bool ms_http_media_type_is(const char *header, const char *type)
{
    if (header == NULL || type == NULL)
        return false;
    while (*header == ' ' || *header == '\t')
        header++;
    size_t n = strlen(type);
    if (strncasecmp(header, type, n) != 0)
        return false;
    header += n;
    while (*header == ' ' || *header == '\t')
        header++;
    return *header == '\0' || *header == ';';
}

/* ---- responses -------------------------------------------------------------------- */

static void free_owned(void *cls)
{
    owned_body *b = cls;
    if (b == NULL)
        return;
    if (b->p != NULL) {
        ms_wipe(b->p, b->len);
        free(b->p);
    }
    free(b);
}

static void count_status(ms_http_server *srv, int status, size_t len)
{
    if (status >= 0 && status < MAX_STATUS)
        atomic_fetch_add(&srv->by_status[status], 1);
    atomic_fetch_add(&srv->bytes_out, (unsigned long)len);
}

/* Queues `body` (taken over: wiped and freed whatever happens). */
static enum MHD_Result queue(ms_http_server *srv, struct MHD_Connection *c, int status,
                             const char *ctype, char *body, size_t len,
                             unsigned retry_after, bool allow)
{
    owned_body *b = malloc(sizeof *b);
    if (b == NULL) {
        if (body != NULL) {
            ms_wipe(body, len);
            free(body);
        }
        return MHD_NO;
    }
    b->p = body;
    b->len = len;
    /* libmicrohttpd wants a non-NULL buffer even for an empty body. */
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback_cls(
        len, body != NULL ? (void *)body : (void *)"", free_owned, b);
    if (r == NULL) {
        free_owned(b);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (srv->tls)
        MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
    if (retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%u", retry_after);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    /* A client that sent too much, or whose certificate is refused, is not kept: what
     * else it sends is not read. */
    if (status == MHD_HTTP_CONTENT_TOO_LARGE ||
        (status == MHD_HTTP_FORBIDDEN && srv->client_check != NULL))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
                                srv->allow_delete ? "GET, POST, DELETE" : "GET, POST");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    if (ok == MHD_YES)
        conn_waiting(srv, c, false); /* answered: the deadline waits for the next request */
    if (ok == MHD_YES)
        count_status(srv, status, len);
    return ok;
}

static char *dup_text(const char *s, size_t *len)
{
    *len = strlen(s);
    char *p = malloc(*len + 1);
    if (p != NULL)
        memcpy(p, s, *len + 1);
    return p;
}

/* An answer the server gives itself: the caller's error body, or a line of text. */
static enum MHD_Result refuse(ms_http_server *srv, struct MHD_Connection *c,
                              const char *method, const char *path, const char *ip,
                              int status, const char *text, unsigned retry_after)
{
    if (srv->error_body != NULL) {
        ms_http_request req = {.method = method, .path = path, .client_ip = ip,
                               .bearer = NULL, .authorization = NULL,
                               .body = (const uint8_t *)"", .body_len = 0};
        ms_http_response resp = {.status = status, .content_type = NULL, .body = NULL,
                                 .body_len = 0};
        srv->error_body(srv->ctx, &req, &resp);
        return queue(srv, c, status,
                     resp.content_type != NULL ? resp.content_type : "application/xml",
                     resp.body, resp.body != NULL ? resp.body_len : 0, retry_after,
                     status == MHD_HTTP_METHOD_NOT_ALLOWED);
    }
    size_t len;
    char *body = dup_text(text, &len);
    return queue(srv, c, status, "text/plain; charset=utf-8", body, body != NULL ? len : 0,
                 retry_after, status == MHD_HTTP_METHOD_NOT_ALLOWED);
}

static enum MHD_Result answer_health(ms_http_server *srv, struct MHD_Connection *c)
{
    const char *text = NULL;
    bool ok = srv->health == NULL || srv->health(srv->ctx, &text);
    if (ok)
        text = "ok";
    else if (text == NULL)
        text = "unavailable";
    size_t n = strlen(text);
    char *body = malloc(n + 2);
    if (body == NULL)
        return MHD_NO;
    memcpy(body, text, n);
    body[n] = '\n';
    body[n + 1] = '\0';
    return queue(srv, c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                 "text/plain; charset=utf-8", body, n + 1, 0, false);
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool bad;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->bad)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len)
        b->bad = true;
    else
        b->len += (size_t)n;
}

static enum MHD_Result answer_metrics(ms_http_server *srv, struct MHD_Connection *c)
{
    sbuf b = {.cap = 16384 + METRICS_EXTRA_CAP};
    b.p = malloc(b.cap);
    if (b.p == NULL)
        return MHD_NO;
    const char *n = srv->name;
    sb_printf(&b, "# HELP %s_http_requests_total HTTP requests answered, by status code.\n"
                  "# TYPE %s_http_requests_total counter\n", n, n);
    for (int s = 0; s < MAX_STATUS; s++) {
        unsigned long v = atomic_load(&srv->by_status[s]);
        if (v != 0)
            sb_printf(&b, "%s_http_requests_total{code=\"%d\"} %lu\n", n, s, v);
    }
    sb_printf(&b, "# HELP %s_http_rate_limited_total Requests refused by the rate limit.\n"
                  "# TYPE %s_http_rate_limited_total counter\n"
                  "%s_http_rate_limited_total %lu\n", n, n, n,
              atomic_load(&srv->rate_limited));
    sb_printf(&b, "# HELP %s_http_response_bytes_total Response body octets sent.\n"
                  "# TYPE %s_http_response_bytes_total counter\n"
                  "%s_http_response_bytes_total %lu\n", n, n, n,
              atomic_load(&srv->bytes_out));
    sb_printf(&b, "# HELP %s_http_requests_in_flight Requests being handled now.\n"
                  "# TYPE %s_http_requests_in_flight gauge\n"
                  "%s_http_requests_in_flight %ld\n", n, n, n,
              atomic_load(&srv->in_flight));
    pthread_mutex_lock(&srv->conns.lock);
    size_t open = srv->conns.open;
    pthread_mutex_unlock(&srv->conns.lock);
    sb_printf(&b, "# HELP %s_http_connections_open Connections open now.\n"
                  "# TYPE %s_http_connections_open gauge\n"
                  "%s_http_connections_open %zu\n", n, n, n, open);
    sb_printf(&b, "# HELP %s_http_connections_refused_total Connections refused: the "
                  "client's address (IPv6: its /64) already had its cap open.\n"
                  "# TYPE %s_http_connections_refused_total counter\n"
                  "%s_http_connections_refused_total %lu\n", n, n, n,
              atomic_load(&srv->conn_refused));
    sb_printf(&b, "# HELP %s_http_connections_timed_out_total Connections closed for not "
                  "completing a request in time.\n"
                  "# TYPE %s_http_connections_timed_out_total counter\n"
                  "%s_http_connections_timed_out_total %lu\n", n, n, n,
              atomic_load(&srv->conn_timed_out));
    if (b.bad) {
        free(b.p);
        return MHD_NO;
    }
    if (srv->metrics != NULL) {
        size_t room = b.cap - b.len - 1;
        size_t got = srv->metrics(srv->ctx, b.p + b.len, room);
        b.len += got < room ? got : room;
        if (b.len > 0 && b.p[b.len - 1] != '\n')
            b.p[b.len++] = '\n';
    }
    return queue(srv, c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len,
                 0, false);
}

/* ---- connection caps and deadlines ---------------------------------------------- */

/* The group a client address belongs to: the IPv4 address (also when mapped into
 * IPv6), or the /64 of an IPv6 address. False for another family. */
static bool group_key(const struct sockaddr *sa, uint8_t key[GROUP_KEY])
{
    memset(key, 0, GROUP_KEY);
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        key[0] = 4;
        memcpy(key + 1, &in->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            key[0] = 4;
            memcpy(key + 1, &in6->sin6_addr.s6_addr[12], 4);
        } else {
            key[0] = 6;
            memcpy(key + 1, in6->sin6_addr.s6_addr, 8); /* the /64 */
        }
        return true;
    }
    return false;
}

bool ms_http_same_client(const char *a, const char *b)
{
    struct sockaddr_storage sa[2];
    uint8_t key[2][GROUP_KEY];
    const char *text[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        memset(&sa[i], 0, sizeof sa[i]);
        struct sockaddr_in *in = (struct sockaddr_in *)(void *)&sa[i];
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&sa[i];
        if (text[i] != NULL && inet_pton(AF_INET, text[i], &in->sin_addr) == 1)
            in->sin_family = AF_INET;
        else if (text[i] != NULL && inet_pton(AF_INET6, text[i], &in6->sin6_addr) == 1)
            in6->sin6_family = AF_INET6;
        else
            return false;
        if (!group_key((const struct sockaddr *)&sa[i], key[i]))
            return false;
    }
    return memcmp(key[0], key[1], GROUP_KEY) == 0;
}

/* The group's slot, or a free one when it has none (NULL: table full). Caller locks. */
static conn_group *group_find(conn_table *t, const uint8_t key[GROUP_KEY], bool add)
{
    conn_group *free_slot = NULL;
    for (size_t i = 0; i < t->n_groups; i++) {
        conn_group *g = &t->groups[i];
        if (g->count == 0) {
            if (free_slot == NULL)
                free_slot = g;
        } else if (memcmp(g->key, key, GROUP_KEY) == 0) {
            return g;
        }
    }
    if (!add || free_slot == NULL)
        return NULL;
    memcpy(free_slot->key, key, GROUP_KEY);
    return free_slot;
}

/* Accept policy: a client whose group is full is refused before any TLS work. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    ms_http_server *srv = cls;
    uint8_t key[GROUP_KEY];
    (void)len;
    if (!group_key(addr, key))
        return MHD_YES;
    conn_table *t = &srv->conns;
    pthread_mutex_lock(&t->lock);
    conn_group *g = group_find(t, key, false);
    bool full = g != NULL && g->count >= t->per_group;
    pthread_mutex_unlock(&t->lock);
    if (full)
        atomic_fetch_add(&srv->conn_refused, 1);
    return full ? MHD_NO : MHD_YES;
}

/* Start and end of every connection: the count of its group (accepts racing past the
 * policy are cut here) and the deadline of its first request. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    ms_http_server *srv = cls;
    conn_table *t = &srv->conns;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_rec *r = calloc(1, sizeof *r);
        *socket_context = r;
        if (r == NULL)
            return;
        const union MHD_ConnectionInfo *fi =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ai =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        r->fd = fi != NULL ? fi->connect_fd : -1;
        bool keyed = group_key(ai != NULL ? ai->client_addr : NULL, r->key);
        pthread_mutex_lock(&t->lock);
        conn_group *g = keyed ? group_find(t, r->key, true) : NULL;
        if (g != NULL && g->count < t->per_group) {
            g->count++;
            r->counted = true;
        } else if (keyed) {
            r->cut = true; /* over the cap, or no room to count it */
        }
        r->waiting = true;
        r->deadline = now_mono() + t->timeout;
        r->next = t->head;
        if (t->head != NULL)
            t->head->prev = r;
        t->head = r;
        t->open++;
        pthread_mutex_unlock(&t->lock);
        if (r->cut) {
            atomic_fetch_add(&srv->conn_refused, 1);
            if (r->fd >= 0)
                shutdown(r->fd, SHUT_RDWR);
        }
        return;
    }
    conn_rec *r = *socket_context;
    if (r == NULL)
        return;
    /* libmicrohttpd closes the socket only after this notification, so the reaper,
     * which shuts sockets down under the same lock, never touches a reused descriptor. */
    pthread_mutex_lock(&t->lock);
    if (r->counted) {
        conn_group *g = group_find(t, r->key, false);
        if (g != NULL && g->count > 0)
            g->count--;
    }
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        t->head = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    t->open--;
    pthread_mutex_unlock(&t->lock);
    free(r);
    *socket_context = NULL;
}

static conn_rec *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

/* A request has arrived whole (answering it does not count against the deadline), or
 * its answer is done (the next one is awaited from now). */
static void conn_waiting(ms_http_server *srv, struct MHD_Connection *c, bool waiting)
{
    conn_rec *r = conn_of(c);
    if (r == NULL)
        return;
    pthread_mutex_lock(&srv->conns.lock);
    r->waiting = waiting;
    if (waiting)
        r->deadline = now_mono() + srv->conns.timeout;
    pthread_mutex_unlock(&srv->conns.lock);
}

static void *reaper_main(void *arg)
{
    ms_http_server *srv = arg;
    conn_table *t = &srv->conns;
    pthread_mutex_lock(&t->lock);
    while (!t->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += REAPER_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&t->wake, &t->lock, &ts);
        double now = now_mono();
        for (conn_rec *r = t->head; r != NULL && !t->stop; r = r->next) {
            if (r->waiting && !r->cut && now > r->deadline && r->fd >= 0) {
                /* libmicrohttpd sees the end of the stream and closes it itself. */
                shutdown(r->fd, SHUT_RDWR);
                r->cut = true;
                atomic_fetch_add(&srv->conn_timed_out, 1);
            }
        }
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

static ms_err conns_init(conn_table *t, unsigned max_connections, unsigned per_group,
                         unsigned timeout)
{
    memset(t, 0, sizeof *t);
    /* Every open connection is in at most one group: room for all, and a margin for
     * accepts in flight. */
    t->n_groups = (size_t)max_connections + 64;
    t->groups = calloc(t->n_groups, sizeof *t->groups);
    if (t->groups == NULL)
        return MS_ERR_NOMEM;
    t->per_group = per_group;
    t->timeout = (double)timeout;
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->wake, &ca);
    pthread_condattr_destroy(&ca);
    return MS_OK;
}

static void conns_stop_reaper(conn_table *t)
{
    if (!t->reaper_running)
        return;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->reaper, NULL);
    t->reaper_running = false;
}

static void conns_free(conn_table *t)
{
    if (t->groups == NULL)
        return;
    conns_stop_reaper(t);
    /* libmicrohttpd has sent every CLOSED notification by now (daemon stopped). */
    while (t->head != NULL) {
        conn_rec *r = t->head;
        t->head = r->next;
        free(r);
    }
    free(t->groups);
    t->groups = NULL;
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
}

/* ---- request handling ------------------------------------------------------------ */

static void client_ip(struct MHD_Connection *c, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, cap, "unknown");
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)cap);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        /* A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d: name them as IPv4 so
         * one client has one rate-limit bucket and one spelling in the logs. */
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], out, (socklen_t)cap);
        else
            inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)cap);
    }
}

/* The token of "Authorization: Bearer <token>" (scheme case-insensitive), or NULL. */
static const char *bearer_of(struct MHD_Connection *c)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0)
        return NULL;
    v += 7;
    while (*v == ' ' || *v == '\t')
        v++;
    return *v != '\0' ? v : NULL;
}

/* Appends upload data; false once the body exceeds max_body (and drops it). */
static bool append_body(ms_http_server *srv, req_state *st, const char *data, size_t n)
{
    if (n > srv->max_body - st->len) {
        if (st->body != NULL) {
            ms_wipe(st->body, st->len);
            free(st->body);
        }
        st->body = NULL;
        st->len = st->cap = 0;
        st->too_large = true;
        return false;
    }
    if (st->len + n > st->cap) {
        size_t cap = st->cap != 0 ? st->cap : 4096;
        while (cap < st->len + n)
            cap *= 2;
        if (cap > srv->max_body)
            cap = srv->max_body;
        uint8_t *p = malloc(cap);
        if (p == NULL)
            return false;
        if (st->body != NULL) {
            memcpy(p, st->body, st->len);
            ms_wipe(st->body, st->len);
            free(st->body);
        }
        st->body = p;
        st->cap = cap;
    }
    memcpy(st->body + st->len, data, n);
    st->len += n;
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    ms_http_server *srv = cls;
    req_state *st = *con_cls;
    (void)version;

    if (st == NULL) {
        /* First call: headers only. Refuse early, before any body is read. */
        st = calloc(1, sizeof *st);
        if (st == NULL)
            return MHD_NO;
        *con_cls = st;
        atomic_fetch_add(&srv->in_flight, 1);
        client_ip(c, st->ip, sizeof st->ip);
        st->peer = -1;
        if (srv->client_check != NULL) {
            const union MHD_ConnectionInfo *ti =
                MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
            st->peer = ti != NULL && ti->tls_session != NULL
                           ? srv->client_check(srv->client_check_ctx, ti->tls_session)
                           : -1;
            if (st->peer < 0) {
                st->answered = true;
                return refuse(srv, c, method, url, st->ip, MHD_HTTP_FORBIDDEN,
                              "client certificate not accepted", 0);
            }
        }
        bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
        bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
        bool del = srv->allow_delete && strcmp(method, MHD_HTTP_METHOD_DELETE) == 0;
        bool monitor = strcmp(url, "/healthz") == 0 || strcmp(url, "/metrics") == 0;
        if ((!get && !post && !del) || (monitor && !get)) {
            st->answered = true;
            return refuse(srv, c, method, url, st->ip, MHD_HTTP_METHOD_NOT_ALLOWED,
                          "method not allowed", 0);
        }
        /* Health and metrics are not rate-limited so monitoring keeps working under
         * load; both are cheap and need no body. */
        if (monitor) {
            st->answered = true;
            return strcmp(url, "/healthz") == 0 ? answer_health(srv, c)
                                                : answer_metrics(srv, c);
        }
        if (srv->rl.rate > 0) {
            unsigned wait = rl_take(&srv->rl, st->ip);
            if (wait > 0) {
                atomic_fetch_add(&srv->rate_limited, 1);
                st->answered = true;
                return refuse(srv, c, method, url, st->ip, MHD_HTTP_TOO_MANY_REQUESTS,
                              "too many requests", wait);
            }
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno != 0 || end == cl || n > srv->max_body) {
                st->too_large = true;
                /* A body that is merely too large is read and thrown away, and the 413
                 * sent after it: answering first and closing with the body unread makes
                 * the kernel reset the connection, and the client never sees the 413. */
                if (errno == 0 && end != cl && n - srv->max_body <= DRAIN_LIMIT) {
                    st->drain_cap = (size_t)n;
                    return MHD_YES;
                }
                st->answered = true;
                return refuse(srv, c, method, url, st->ip, MHD_HTTP_CONTENT_TOO_LARGE,
                              "request body too large", 0);
            }
        }
        return MHD_YES;
    }

    if (st->answered) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        if (st->too_large) {
            /* A body without Content-Length grew too large. libmicrohttpd 0.9.75 takes no
             * answer in the middle of a body, so the rest is drained (up to DRAIN_LIMIT
             * past the limit, as for a declared length) and the 413 sent at the end; a
             * client going on past that is cut off. */
            st->drained += *upload_data_size;
            if (st->drained > (st->drain_cap != 0 ? st->drain_cap : DRAIN_LIMIT))
                return MHD_NO;
        } else if (!append_body(srv, st, upload_data, *upload_data_size) && !st->too_large) {
            return MHD_NO; /* out of memory */
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* Last call: the whole body is here. The handler's time (a KMS waiting for its lock
     * or its disk) is not the client's: the deadline stops now. */
    st->answered = true;
    conn_waiting(srv, c, false);
    if (st->too_large)
        return refuse(srv, c, method, url, st->ip, MHD_HTTP_CONTENT_TOO_LARGE,
                      "request body too large", 0);
    ms_http_request req = {
        .method = method,
        .path = url,
        .client_ip = st->ip,
        .bearer = bearer_of(c),
        .authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_AUTHORIZATION),
        .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_TYPE),
        .body = st->body != NULL ? st->body : (const uint8_t *)"",
        .body_len = st->len,
    };
    ms_http_response resp = {.status = 0, .content_type = NULL, .body = NULL, .body_len = 0};
    if (srv->peer_handler != NULL)
        srv->peer_handler(srv->ctx, st->peer, &req, &resp);
    else
        srv->handler(srv->ctx, &req, &resp);
    int status = resp.status >= 100 && resp.status < MAX_STATUS ? resp.status : 500;
    return queue(srv, c, status,
                 resp.content_type != NULL ? resp.content_type : "application/xml", resp.body,
                 resp.body != NULL ? resp.body_len : 0, 0, false);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    ms_http_server *srv = cls;
    req_state *st = *con_cls;
    (void)toe;
    conn_waiting(srv, c, true); /* the next request is awaited from now */
    if (st == NULL)
        return;
    if (st->body != NULL) {
        ms_wipe(st->body, st->len);
        free(st->body);
    }
    free(st);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->in_flight, 1);
}

/* Paths stay percent-encoded: the handler decodes the user URI segment itself, so an
 * encoded '/' cannot change how the path splits. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static void on_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void on_log(void *cls, const char *fmt, va_list ap)
{
    ms_http_server *srv = cls;
    /* Only start-up messages are kept (for ms_http_start's detail); at run time they
     * would name client addresses for every broken handshake. */
    if (atomic_load(&srv->starting) && srv->start_log[0] == '\0') {
        vsnprintf(srv->start_log, sizeof srv->start_log, fmt, ap);
        size_t n = strlen(srv->start_log);
        while (n > 0 && (srv->start_log[n - 1] == '\n' || srv->start_log[n - 1] == '.'))
            srv->start_log[--n] = '\0';
    }
}

static bool parse_setting(const char *text, unsigned long lo, unsigned long hi,
                          unsigned *out)
{
    if (text == NULL)
        return true;
    if (*text < '0' || *text > '9')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return false;
    *out = (unsigned)v;
    return true;
}

ms_err ms_http_limits_parse(const char *max_connections, const char *max_per_client,
                            const char *timeout, unsigned *conns, unsigned *per_client,
                            unsigned *timeout_sec, char *detail, size_t detail_cap)
{
    ms_http_config cfg = {.detail = detail, .detail_cap = detail_cap};
    if (!parse_setting(max_connections, 1, 65536, conns)) {
        set_detail(&cfg, "max-connections: not a whole number from 1 to 65536: %s",
                   max_connections);
        return MS_ERR_USAGE;
    }
    if (!parse_setting(max_per_client, 1, 65536, per_client)) {
        set_detail(&cfg, "max-per-client: not a whole number from 1 to 65536: %s",
                   max_per_client);
        return MS_ERR_USAGE;
    }
    if (!parse_setting(timeout, 1, 3600, timeout_sec)) {
        set_detail(&cfg, "timeout: not a whole number of seconds from 1 to 3600: %s", timeout);
        return MS_ERR_USAGE;
    }
    unsigned total = *conns != 0 ? *conns : DEFAULT_MAX_CONNECTIONS;
    if (*per_client > total) {
        set_detail(&cfg, "max-per-client (%u) is above max-connections (%u)", *per_client,
                   total);
        return MS_ERR_USAGE;
    }
    return MS_OK;
}

/* ---- start / stop ---------------------------------------------------------------- */

/* Reads a PEM file whole and NUL-terminates it. A private key must be a regular file
 * with no group or other permission bits. */
static ms_err read_pem(const ms_http_config *cfg, const char *what, const char *path,
                       bool secret, char **out, size_t *out_len)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_detail(cfg, "%s %s: %s", what, path, strerror(errno));
        return MS_ERR_IO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        set_detail(cfg, "%s %s: not a regular file", what, path);
        return secret ? MS_ERR_KEYFILE_MODE : MS_ERR_IO;
    }
    if (secret && (sb.st_mode & 077) != 0) {
        close(fd);
        set_detail(cfg, "%s %s: mode %04o lets other users read it (use 0600)", what, path,
                   (unsigned)(sb.st_mode & 07777));
        return MS_ERR_KEYFILE_MODE;
    }
    if (sb.st_size <= 0 || (unsigned long long)sb.st_size > MAX_PEM_FILE) {
        close(fd);
        set_detail(cfg, "%s %s: empty or too large", what, path);
        return MS_ERR_IO;
    }
    size_t cap = (size_t)sb.st_size + 1, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return MS_ERR_NOMEM;
    }
    while (len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (len != cap - 1) {
        ms_wipe(buf, cap);
        free(buf);
        set_detail(cfg, "%s %s: short read", what, path);
        return MS_ERR_IO;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = cap;
    return MS_OK;
}

static void free_pem(char *p, size_t cap)
{
    if (p != NULL) {
        ms_wipe(p, cap);
        free(p);
    }
}

/* Checks the PEM certificate and key before libmicrohttpd sees them: a clear message
 * for a bad file or a key of another certificate (and libmicrohttpd's failure path,
 * which leaks inside GnuTLS, is not taken). */
static ms_err check_tls_files(const ms_http_config *cfg, const char *cert, const char *key)
{
    ms_err e = MS_OK;
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    BIO *cb = BIO_new_mem_buf(cert, -1);
    BIO *kb = BIO_new_mem_buf(key, -1);
    if (cb == NULL || kb == NULL) {
        e = MS_ERR_NOMEM;
        goto done;
    }
    x = PEM_read_bio_X509(cb, NULL, NULL, NULL);
    if (x == NULL) {
        set_detail(cfg, "certificate %s: no PEM certificate in it", cfg->cert_file);
        e = MS_ERR_TLS;
        goto done;
    }
    /* An empty passphrase callback: an encrypted key is refused, not prompted for. */
    k = PEM_read_bio_PrivateKey(kb, NULL, NULL, (void *)"");
    if (k == NULL) {
        set_detail(cfg, "key %s: no unencrypted PEM private key in it", cfg->key_file);
        e = MS_ERR_TLS;
        goto done;
    }
    if (X509_check_private_key(x, k) != 1) {
        set_detail(cfg, "key %s does not belong to certificate %s", cfg->key_file,
                   cfg->cert_file);
        e = MS_ERR_TLS;
    }
done:
    ERR_clear_error();
    EVP_PKEY_free(k);
    X509_free(x);
    BIO_free(kb);
    BIO_free(cb);
    return e;
}

static bool valid_name(const char *s)
{
    if (s[0] == '\0' || strlen(s) >= 64 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (; *s != '\0'; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == ':'))
            return false;
    }
    return true;
}

/* After libmicrohttpd refused to start: is it the address? (bind it ourselves). */
static bool address_bindable(const struct sockaddr *sa, socklen_t len, int *err)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno;
        return false;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bool ok = bind(fd, sa, len) == 0;
    *err = ok ? 0 : errno;
    close(fd);
    return ok;
}

static void server_free(ms_http_server *srv)
{
    if (srv == NULL)
        return;
    if (srv->rl.slots != NULL) {
        free(srv->rl.slots);
        pthread_mutex_destroy(&srv->rl.lock);
    }
    conns_free(&srv->conns);
    free(srv);
}

ms_err ms_http_start(ms_http_server **out, const ms_http_config *cfg, ms_http_handler handler,
                     ms_http_metrics_fn metrics, ms_http_health_fn health, void *ctx)
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    if (cfg == NULL || (handler == NULL && cfg->peer_handler == NULL))
        return MS_ERR_ARG;
    if ((cfg->cert_file == NULL) != (cfg->key_file == NULL)) {
        set_detail(cfg, "a TLS certificate needs its key and a key its certificate");
        return MS_ERR_ARG;
    }
    if (cfg->client_check != NULL && cfg->cert_file == NULL) {
        set_detail(cfg, "client certificates need TLS (a server certificate and key)");
        return MS_ERR_ARG;
    }
    const char *name = cfg->name != NULL ? cfg->name : "mikeysakke";
    if (!valid_name(name)) {
        set_detail(cfg, "metric prefix \"%s\" is not a valid Prometheus name", name);
        return MS_ERR_ARG;
    }
    if (cfg->rate_per_sec < 0 || cfg->rate_burst < 0 || isnan(cfg->rate_per_sec) ||
        isnan(cfg->rate_burst) || isinf(cfg->rate_per_sec) || isinf(cfg->rate_burst)) {
        set_detail(cfg, "rate and burst must be finite and not negative");
        return MS_ERR_ARG;
    }

    /* The bind address. */
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t ss_len = 0;
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    const char *bind_addr = cfg->bind_addr;
    if (bind_addr == NULL) {
        int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bind_addr = probe >= 0 ? "::" : "0.0.0.0";
        if (probe >= 0)
            close(probe);
    }
    struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)&ss;
    if (inet_pton(AF_INET, bind_addr, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(cfg->port);
        ss_len = sizeof *sin;
    } else if (inet_pton(AF_INET6, bind_addr, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(cfg->port);
        ss_len = sizeof *sin6;
        /* "::" takes IPv4 clients too. */
        flags |= IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr) ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    } else {
        set_detail(cfg, "listen address \"%s\" is not an IPv4 or IPv6 address", bind_addr);
        return MS_ERR_ARG;
    }

    ms_http_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return MS_ERR_NOMEM;
    snprintf(srv->name, sizeof srv->name, "%s", name);
    srv->handler = handler;
    srv->metrics = metrics;
    srv->health = health;
    srv->error_body = cfg->error_body;
    srv->allow_delete = cfg->allow_delete;
    srv->ctx = ctx;
    srv->client_check = cfg->client_check;
    srv->client_check_ctx = cfg->client_check_ctx;
    srv->peer_handler = cfg->peer_handler;
    srv->max_body = cfg->max_body != 0 ? cfg->max_body : DEFAULT_MAX_BODY;
    srv->rl.rate = cfg->rate_per_sec;
    srv->rl.burst = cfg->rate_burst >= 1.0 ? cfg->rate_burst
                    : cfg->rate_per_sec > 1.0 ? cfg->rate_per_sec : 1.0;
    unsigned max_conns = cfg->max_connections != 0 ? cfg->max_connections
                                                   : DEFAULT_MAX_CONNECTIONS;
    unsigned per_client = cfg->max_per_ip != 0 ? cfg->max_per_ip : DEFAULT_MAX_PER_IP;
    unsigned timeout = cfg->timeout_sec != 0 ? cfg->timeout_sec : DEFAULT_TIMEOUT;
    if (conns_init(&srv->conns, max_conns, per_client, timeout) != MS_OK) {
        free(srv);
        return MS_ERR_NOMEM;
    }
    if (srv->rl.rate > 0) {
        srv->rl.slots = calloc(RL_SLOTS, sizeof *srv->rl.slots);
        if (srv->rl.slots == NULL) {
            server_free(srv);
            return MS_ERR_NOMEM;
        }
        pthread_mutex_init(&srv->rl.lock, NULL);
        if (RAND_bytes((unsigned char *)&srv->rl.seed, sizeof srv->rl.seed) != 1) {
            server_free(srv);
            return MS_ERR_RNG;
        }
    }

    char *cert = NULL, *key = NULL;
    size_t cert_cap = 0, key_cap = 0;
    if (cfg->cert_file != NULL) {
        ms_err e = read_pem(cfg, "certificate", cfg->cert_file, false, &cert, &cert_cap);
        if (e == MS_OK)
            e = read_pem(cfg, "key", cfg->key_file, true, &key, &key_cap);
        if (e == MS_OK)
            e = check_tls_files(cfg, cert, key);
        if (e != MS_OK) {
            free_pem(cert, cert_cap);
            free_pem(key, key_cap);
            server_free(srv);
            return e;
        }
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            free_pem(cert, cert_cap);
            free_pem(key, key_cap);
            server_free(srv);
            set_detail(cfg, "libmicrohttpd was built without TLS");
            return MS_ERR_TLS;
        }
        flags |= MHD_USE_TLS;
        srv->tls = true;
    }

    unsigned threads = cfg->threads != 0 ? cfg->threads : DEFAULT_THREADS;
    struct MHD_OptionItem opts[16];
    size_t n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, (intptr_t)max_conns, NULL};
    /* libmicrohttpd's own cap per exact address, under the group cap of on_accept */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                        (intptr_t)per_client, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)timeout,
                                        NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                        (intptr_t)CONNECTION_MEMORY, NULL};
    if (threads > 1)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)threads,
                                            NULL};
    if (srv->tls) {
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, cert};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, key};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                            (void *)TLS_PRIORITIES};
        /* libmicrohttpd asks for a client certificate when it has a trust list. */
        if (srv->client_check != NULL)
            opts[n++] = (struct MHD_OptionItem){
                MHD_OPTION_HTTPS_MEM_TRUST, 0,
                (void *)(cfg->client_ca_pem != NULL ? cfg->client_ca_pem : cert)};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    atomic_store(&srv->starting, true);
    srv->daemon = MHD_start_daemon(flags, cfg->port, on_accept, srv, on_request, srv,
                                   MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
                                   MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
                                   MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, srv,
                                   MHD_OPTION_EXTERNAL_LOGGER, on_log, srv,
                                   MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    atomic_store(&srv->starting, false);
    /* libmicrohttpd has loaded the key into its TLS credentials by now. */
    free_pem(key, key_cap);
    free_pem(cert, cert_cap);
    if (srv->daemon == NULL) {
        int err = 0;
        ms_err e;
        if (!address_bindable((const struct sockaddr *)&ss, ss_len, &err)) {
            set_detail(cfg, "cannot listen on %s port %u: %s", bind_addr, (unsigned)cfg->port,
                       strerror(err));
            e = MS_ERR_IO;
        } else if (srv->tls) {
            set_detail(cfg, "TLS certificate or key not accepted%s%s",
                       srv->start_log[0] != '\0' ? ": " : "", srv->start_log);
            e = MS_ERR_TLS;
        } else {
            set_detail(cfg, "the HTTP server did not start%s%s",
                       srv->start_log[0] != '\0' ? ": " : "", srv->start_log);
            e = MS_ERR_INTERNAL;
        }
        server_free(srv);
        return e;
    }
    if (pthread_create(&srv->conns.reaper, NULL, reaper_main, srv) != 0) {
        MHD_stop_daemon(srv->daemon);
        server_free(srv);
        set_detail(cfg, "cannot start the connection reaper thread");
        return MS_ERR_INTERNAL;
    }
    srv->conns.reaper_running = true;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon,
                                                         MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di != NULL && di->port != 0 ? di->port : cfg->port;
    *out = srv;
    return MS_OK;
}

void ms_http_stop(ms_http_server *srv)
{
    if (srv == NULL)
        return;
    conns_stop_reaper(&srv->conns);
    if (srv->daemon != NULL)
        MHD_stop_daemon(srv->daemon);
    server_free(srv);
}

uint16_t ms_http_port(const ms_http_server *srv)
{
    return srv != NULL ? srv->port : 0;
}
