/*
 * The secret-free distribution server (see dist.h for the interface and answers).
 *
 * State: one immutable snapshot of the export (index text, sorted entries, parsed
 * certificate) behind a mutex-protected pointer with a reference count, so a reload
 * never disturbs requests in flight: they finish with the snapshot they took.
 */
#include "dist/dist.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kmsif/annexd.h"
#include "kmsif/kmsif.h"
#include "mikeysakke/mikey.h"
#include "net/replay.h"
#include "util/detail.h"
#include "util/timefmt.h"

#define INDEX_MAX ((size_t)256 << 20) /* far above any real community's index */
#define DEVICE_MAX MS_ANNEXD_DEVICE_ID_MAX
#define N_STATUS 8 /* refusal statuses counted for /metrics */

struct entry {
    const char *device, *user, *file; /* into snap->text */
    uint64_t period;
    uint8_t sha[32];   /* SHA-256 of the package file */
    uint8_t token[32]; /* SHA-256 of the device's bearer token */
    size_t lineno;     /* in index.txt, for reports */
};

/* Which file a snapshot was read from: a change of any of these means a new file. */
struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    bool present;
};

struct snap {
    unsigned refs; /* under ms_dist.lock */
    char *text;
    struct entry *e;
    size_t n;
    size_t skipped; /* index lines left out */
    ms_kms_certificate cert;
    ms_id_scheme ids;
    char *cert_elem; /* the KmsCertificate element, for KmsInit and KmsCertCache */
};

struct ms_dist {
    char dir[PATH_MAX];
    char index_path[PATH_MAX];
    char cert_path[PATH_MAX];
    pthread_mutex_t lock;   /* the snapshot pointer and reference counts */
    pthread_mutex_t reload; /* one reload at a time */
    struct snap *cur;
    struct file_id seen; /* the index file last looked at (loaded or refused) */
    uint64_t (*now)(void *ctx);
    void *now_ctx;
    ms_dist_log_fn log;
    void *log_ctx;
    atomic_ulong n_reloads, n_reload_failures, n_served, n_init, n_certcache;
    atomic_ulong n_status[N_STATUS];
    ms_replay_cache *replay; /* (device, Time) of requests answered, as `kms serve` */
};

static const int status_codes[N_STATUS] = {400, 401, 403, 404, 405, 409, 415, 503};

/* ---- small helpers --------------------------------------------------------------------- */

static void logf_(ms_dist *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(ms_dist *d, const char *fmt, ...)
{
    if (d->log == NULL)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    d->log(d->log_ctx, line);
}

static bool sha256(uint8_t out[32], const void *in, size_t len)
{
    unsigned int n = 0;
    return EVP_Digest(in, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32;
}

/* Reads a whole regular file of at most max octets, NUL-terminated; fid (may be NULL)
 * gets the identity of the file actually read. */
static ms_err read_file(const char *path, size_t max, char **out, size_t *len,
                        struct file_id *fid)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? MS_ERR_NO_KEYS : MS_ERR_IO;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return MS_ERR_IO;
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return MS_ERR_BAD_LENGTH;
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (buf == NULL) {
        close(fd);
        return MS_ERR_NOMEM;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(buf);
        return MS_ERR_IO;
    }
    buf[n] = '\0';
    if (fid != NULL) {
        fid->dev = st.st_dev;
        fid->ino = st.st_ino;
        fid->size = st.st_size;
        fid->mtime = st.st_mtim;
        fid->present = true;
    }
    *out = buf;
    *len = n;
    return MS_OK;
}

static bool same_file(const struct file_id *a, const struct file_id *b)
{
    if (a->present != b->present)
        return false;
    if (!a->present)
        return true;
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void stat_id(const char *path, struct file_id *fid)
{
    struct stat st;
    memset(fid, 0, sizeof *fid);
    if (stat(path, &st) == 0) {
        fid->dev = st.st_dev;
        fid->ino = st.st_ino;
        fid->size = st.st_size;
        fid->mtime = st.st_mtim;
        fid->present = true;
    }
}

/* ---- snapshots -------------------------------------------------------------------------- */

static void snap_free(struct snap *s)
{
    if (s == NULL)
        return;
    free(s->text);
    free(s->e);
    free(s->cert_elem);
    free(s);
}

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = strcmp(x->device, y->device);
    if (c != 0)
        return c;
    return x->period < y->period ? -1 : x->period > y->period;
}

#define SKIP_LOG_MAX 20 /* skipped index lines named in the log, per index */

/* One index line left out: counted, and named in the log (the first few). */
static void skip_line(ms_dist *d, struct snap *s, size_t lineno, const char *why,
                      const char *device)
{
    s->skipped++;
    if (s->skipped <= SKIP_LOG_MAX)
        logf_(d, "dist: index.txt:%zu: %s%s%s: line skipped", lineno, why,
              device != NULL ? ", device " : "", device != NULL ? device : "");
    else if (s->skipped == SKIP_LOG_MAX + 1)
        logf_(d, "dist: index.txt: more lines skipped (see the metric "
                 "mikeysakke_dist_index_lines_skipped)");
}

/* Parses the index text (taken over by s) into sorted entries. A bad line (e.g. a user
 * URI the format cannot carry) is skipped and reported, so that one user's problem does
 * not stop the whole community's distribution; a device listed twice for a period or
 * under two users is left out altogether (which line is right cannot be told). An index
 * with lines but not one usable is refused. */
static ms_err parse_index(ms_dist *d, struct snap *s, char *detail, size_t cap)
{
    size_t lines = 1, listed = 0;
    for (const char *p = s->text; *p; p++)
        lines += *p == '\n';
    s->e = calloc(lines, sizeof *s->e);
    if (s->e == NULL)
        return MS_ERR_NOMEM;
    char *p = s->text;
    for (size_t lineno = 1; *p != '\0'; lineno++) {
        char *nl = strchr(p, '\n');
        if (nl != NULL)
            *nl = '\0';
        char *line = p;
        p = nl != NULL ? nl + 1 : p + strlen(p);
        if (line[0] == '#' || line[0] == '\0')
            continue;
        listed++;
        struct entry *e = &s->e[s->n];
        ms_annexd_index_entry ie;
        char why[160];
        if (ms_annexd_index_line_parse(line, &ie, why, sizeof why) != MS_OK) {
            skip_line(d, s, lineno, why, ie.device);
            continue;
        }
        e->device = ie.device;
        e->user = ie.user;
        e->file = ie.file;
        memcpy(e->sha, ie.package_sha256, 32);
        e->period = ie.period;
        memcpy(e->token, ie.token_sha256, 32);
        e->lineno = lineno;
        s->n++;
    }
    qsort(s->e, s->n, sizeof *s->e, entry_cmp);
    /* Drop every device whose lines contradict each other. */
    size_t kept = 0;
    for (size_t i = 0; i < s->n;) {
        size_t j = i + 1;
        const char *why = NULL;
        for (; j < s->n && strcmp(s->e[j].device, s->e[i].device) == 0; j++) {
            if (why == NULL && s->e[j].period == s->e[j - 1].period)
                why = "device listed twice for one key period";
            else if (why == NULL && strcmp(s->e[j].user, s->e[i].user) != 0)
                why = "device listed under two users";
        }
        if (why != NULL) {
            for (size_t k = i; k < j; k++)
                skip_line(d, s, s->e[k].lineno, why, s->e[k].device);
        } else {
            memmove(&s->e[kept], &s->e[i], (j - i) * sizeof *s->e);
            kept += j - i;
        }
        i = j;
    }
    s->n = kept;
    if (listed > 0 && s->n == 0) {
        ms_detail_set(detail, cap, "index.txt: none of its %zu lines is usable", listed);
        return MS_ERR_CONFIG;
    }
    return MS_OK;
}

static ms_err load_certificate(ms_dist *d, struct snap *s, char *detail, size_t cap)
{
    char *xml = NULL;
    size_t len = 0;
    ms_err e = read_file(d->cert_path, MS_KMSIF_MAX_XML, &xml, &len, NULL);
    if (e != MS_OK) {
        ms_detail_set(detail, cap, "certificate.xml: cannot be read (%s)", ms_errname(e));
        return MS_ERR_CONFIG;
    }
    char why[160] = "";
    e = ms_kmsif_certificate_parse(&s->cert, xml, len, why, sizeof why);
    free(xml);
    if (e != MS_OK) {
        ms_detail_set(detail, cap, "certificate.xml: %s", why);
        return MS_ERR_CONFIG;
    }
    s->ids.scheme = s->cert.user_id_format;
    s->ids.kms_uri = s->cert.kms_uri;
    s->ids.period_len = s->cert.period_len;
    s->ids.period_offset = s->cert.period_offset;
    uint64_t p = 0;
    if (ms_key_period(&s->ids, &p, s->cert.period_offset) != MS_OK) {
        ms_detail_set(detail, cap, "certificate.xml: unsupported key period scheme");
        return MS_ERR_CONFIG;
    }
    /* Re-written from what was parsed, so only checked content is ever served. */
    size_t n = 0;
    if (ms_kmsif_certificate_write(NULL, 0, &n, &s->cert) != MS_ERR_BUFFER_TOO_SMALL)
        return MS_ERR_INTERNAL;
    char *doc = malloc(n + 1);
    if (doc == NULL)
        return MS_ERR_NOMEM;
    if ((e = ms_kmsif_certificate_write(doc, n + 1, &n, &s->cert)) != MS_OK) {
        free(doc);
        return e;
    }
    const char *start = strstr(doc, "<KmsCertificate");
    if (start == NULL) {
        free(doc);
        return MS_ERR_INTERNAL;
    }
    s->cert_elem = strdup(start);
    free(doc);
    return s->cert_elem != NULL ? MS_OK : MS_ERR_NOMEM;
}

static void snap_put(ms_dist *d, struct snap *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&d->lock);
    if (last)
        snap_free(s);
}

static struct snap *snap_get(ms_dist *d)
{
    pthread_mutex_lock(&d->lock);
    struct snap *s = d->cur;
    if (s != NULL)
        s->refs++;
    pthread_mutex_unlock(&d->lock);
    return s;
}

/* Caller holds d->reload. */
static ms_err reload_locked(ms_dist *d, bool *reloaded, char *detail, size_t cap)
{
    struct file_id now;
    stat_id(d->index_path, &now);
    if (same_file(&now, &d->seen))
        return MS_OK;
    if (!now.present) {
        /* An export folder being emptied: keep serving what we have. */
        d->seen = now;
        return MS_OK;
    }
    struct snap *s = calloc(1, sizeof *s);
    if (s == NULL)
        return MS_ERR_NOMEM;
    size_t len = 0;
    struct file_id got;
    ms_err e = read_file(d->index_path, INDEX_MAX, &s->text, &len, &got);
    if (e == MS_ERR_NO_KEYS) { /* removed between stat and open */
        snap_free(s);
        return MS_OK;
    }
    if (e != MS_OK) {
        ms_detail_set(detail, cap, "index.txt: cannot be read (%s)", ms_errname(e));
        e = e == MS_ERR_NOMEM ? e : MS_ERR_CONFIG;
    } else if (strlen(s->text) != len) {
        ms_detail_set(detail, cap, "index.txt: contains a NUL octet");
        e = MS_ERR_CONFIG;
    } else if ((e = parse_index(d, s, detail, cap)) == MS_OK) {
        e = load_certificate(d, s, detail, cap);
    }
    d->seen = e == MS_OK ? got : now;
    if (e != MS_OK) {
        snap_free(s);
        atomic_fetch_add(&d->n_reload_failures, 1);
        logf_(d, "dist: export refused, keeping the previous one: %s",
              detail != NULL && cap > 0 ? detail : ms_errname(e));
        return e;
    }
    s->refs = 1;
    pthread_mutex_lock(&d->lock);
    struct snap *old = d->cur;
    d->cur = s;
    pthread_mutex_unlock(&d->lock);
    snap_put(d, old);
    atomic_fetch_add(&d->n_reloads, 1);
    if (reloaded != NULL)
        *reloaded = true;
    if (s->skipped > 0)
        logf_(d, "dist: export loaded: %zu packages, kms %s; %zu index lines skipped", s->n,
              s->cert.kms_uri, s->skipped);
    else
        logf_(d, "dist: export loaded: %zu packages, kms %s", s->n, s->cert.kms_uri);
    return MS_OK;
}

ms_err ms_dist_check(ms_dist *d, bool *reloaded, char *detail, size_t cap)
{
    if (reloaded != NULL)
        *reloaded = false;
    if (d == NULL)
        return MS_ERR_ARG;
    char local[256];
    if (detail == NULL || cap == 0) {
        detail = local;
        cap = sizeof local;
    }
    detail[0] = '\0';
    pthread_mutex_lock(&d->reload);
    ms_err e = reload_locked(d, reloaded, detail, cap);
    pthread_mutex_unlock(&d->reload);
    return e;
}

static uint64_t system_clock(void *ctx)
{
    (void)ctx;
    return ms_ntp_now() >> 32;
}

ms_err ms_dist_open(ms_dist **out, const char *dir, ms_dist_log_fn log, void *log_ctx,
                    char *detail, size_t cap)
{
    if (out == NULL || dir == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        ms_detail_set(detail, cap, "%s: not a folder", dir);
        return MS_ERR_IO;
    }
    ms_dist *d = calloc(1, sizeof *d);
    if (d == NULL)
        return MS_ERR_NOMEM;
    int n1 = snprintf(d->dir, sizeof d->dir, "%s", dir);
    int n2 = snprintf(d->index_path, sizeof d->index_path, "%s/index.txt", dir);
    int n3 = snprintf(d->cert_path, sizeof d->cert_path, "%s/certificate.xml", dir);
    if (n1 < 0 || n2 < 0 || n3 < 0 || (size_t)n2 >= sizeof d->index_path ||
        (size_t)n3 >= sizeof d->cert_path) {
        free(d);
        return MS_ERR_ARG;
    }
    if (ms_replay_new(&d->replay) != MS_OK) {
        free(d);
        return MS_ERR_NOMEM;
    }
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_init(&d->reload, NULL);
    d->now = system_clock;
    d->log = log;
    d->log_ctx = log_ctx;
    ms_err e = ms_dist_check(d, NULL, detail, cap);
    if (e != MS_OK) {
        ms_dist_close(d);
        return e;
    }
    if (d->cur == NULL)
        logf_(d, "dist: no index.txt in %s yet: answering 503 until an export arrives", dir);
    *out = d;
    return MS_OK;
}

void ms_dist_close(ms_dist *d)
{
    if (d == NULL)
        return;
    snap_free(d->cur);
    ms_replay_free(d->replay);
    pthread_mutex_destroy(&d->lock);
    pthread_mutex_destroy(&d->reload);
    free(d);
}

void ms_dist_set_clock(ms_dist *d, uint64_t (*now)(void *ctx), void *ctx)
{
    d->now = now != NULL ? now : system_clock;
    d->now_ctx = ctx;
}

size_t ms_dist_packages(ms_dist *d)
{
    struct snap *s = snap_get(d);
    size_t n = s != NULL ? s->n : 0;
    snap_put(d, s);
    return n;
}

/* ---- answers ---------------------------------------------------------------------------- */

struct buf {
    char *p;
    size_t n, cap;
    bool failed;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_escaped(struct buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': puts_(b, "&amp;"); break;
        case '<': puts_(b, "&lt;"); break;
        case '>': puts_(b, "&gt;"); break;
        case '"': puts_(b, "&quot;"); break;
        default:
            /* Control characters have no place in the answer (they came from a URL). */
            put(b, (unsigned char)*s < 0x20 ? "?" : s, 1);
        }
    }
}

static void put_time(struct buf *b, uint64_t ntp)
{
    char s[MS_TIME_BUF];
    puts_(b, ms_time_format(s, ntp) ? s : "1970-01-01T00:00:00Z");
}

/* The KmsResponse head: UserUri, KmsUri, Time, ClientReqUrl. */
static void response_head(struct buf *b, const ms_dist *d, const struct snap *s,
                          const char *user, const char *path)
{
    puts_(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<KmsResponse xmlns=\"" MS_KMSIF_NS
             "\" Version=\"1.0.0\">\n  <UserUri>");
    put_escaped(b, user);
    puts_(b, "</UserUri>\n  <KmsUri>");
    put_escaped(b, s != NULL ? s->cert.kms_uri : "");
    puts_(b, "</KmsUri>\n  <Time>");
    put_time(b, d->now(d->now_ctx));
    puts_(b, "</Time>\n  <ClientReqUrl>");
    put_escaped(b, path);
    puts_(b, "</ClientReqUrl>\n");
}

static void answer(ms_http_response *resp, int status, struct buf *b)
{
    if (b->failed) {
        free(b->p);
        resp->status = 500;
        resp->content_type = "text/plain";
        resp->body = NULL;
        resp->body_len = 0;
        return;
    }
    resp->status = status;
    resp->content_type = "application/xml";
    resp->body = b->p;
    resp->body_len = b->n;
}

/* A KmsResponse with KmsError, as `kms serve` answers: the HTTP status says the class,
 * ErrorCode the ms_err code. */
static void refuse(ms_dist *d, const struct snap *s, ms_http_response *resp, int status,
                   ms_err code, const char *user, const char *url, const char *msg)
{
    for (size_t i = 0; i < N_STATUS; i++)
        if (status_codes[i] == status)
            atomic_fetch_add(&d->n_status[i], 1);
    resp->status = status;
    resp->content_type = "text/plain";
    resp->body = NULL;
    resp->body_len = 0;
    ms_kms_reply *r = calloc(1, sizeof *r);
    size_t len = 0, cap = 4096;
    char *body = malloc(cap);
    if (r == NULL || body == NULL) {
        free(r);
        free(body);
        return;
    }
    snprintf(r->user_uri, sizeof r->user_uri, "%s", user != NULL ? user : "");
    snprintf(r->kms_uri, sizeof r->kms_uri, "%s", s != NULL ? s->cert.kms_uri : "");
    snprintf(r->client_req_url, sizeof r->client_req_url, "%s", url != NULL ? url : "");
    r->time = d->now(d->now_ctx);
    r->error_code = (int)code;
    snprintf(r->error_msg, sizeof r->error_msg, "%s", msg);
    if (ms_kmsif_reply_write(body, cap, &len, r) != MS_OK) {
        /* a value from the request that a document cannot hold: leave it out */
        r->user_uri[0] = '\0';
        r->client_req_url[0] = '\0';
        if (r->kms_uri[0] == '\0')
            snprintf(r->kms_uri, sizeof r->kms_uri, "-");
        if (ms_kmsif_reply_write(body, cap, &len, r) != MS_OK) {
            free(r);
            free(body);
            return;
        }
    }
    free(r);
    resp->content_type = "application/xml";
    resp->body = body;
    resp->body_len = len;
}

static void certcache(ms_dist *d, const struct snap *s, ms_http_response *resp,
                      const char *user, const char *url)
{
    ms_kms_reply *r = calloc(1, sizeof *r);
    size_t need = 0, len = 0;
    char *body = NULL;
    ms_err e = MS_ERR_NOMEM;
    if (r != NULL) {
        snprintf(r->user_uri, sizeof r->user_uri, "%s", user);
        snprintf(r->kms_uri, sizeof r->kms_uri, "%s", s->cert.kms_uri);
        snprintf(r->client_req_url, sizeof r->client_req_url, "%s", url);
        r->time = d->now(d->now_ctx);
        r->n_certs = 1;
        r->certs[0] = s->cert;
        r->cache_num = 1;
        e = ms_kmsif_reply_write(NULL, 0, &need, r);
        if (e == MS_ERR_BUFFER_TOO_SMALL) {
            body = malloc(need + 1);
            e = body == NULL ? MS_ERR_NOMEM : ms_kmsif_reply_write(body, need + 1, &len, r);
        } else if (e == MS_OK) {
            e = MS_ERR_INTERNAL;
        }
        free(r);
    }
    if (e != MS_OK) {
        free(body);
        refuse(d, s, resp, 500, e, user, url, "the certificate cache cannot be written");
        return;
    }
    atomic_fetch_add(&d->n_certcache, 1);
    resp->status = 200;
    resp->content_type = "application/xml";
    resp->body = body;
    resp->body_len = len;
}

/* The entries of `device` (sorted by period): [*first, *first + *n). */
static bool find_device(const struct snap *s, const char *device, size_t *first, size_t *n)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(s->e[mid].device, device) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < s->n && strcmp(s->e[end].device, device) == 0)
        end++;
    *first = lo;
    *n = end - lo;
    return end > lo;
}

/* Reads the package and checks it is the one the index names. */
static ms_err package_body(const ms_dist *d, const struct entry *e, char **out, size_t *len)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", d->dir, e->file);
    if (n < 0 || (size_t)n >= sizeof path)
        return MS_ERR_ARG;
    ms_err err = read_file(path, MS_KMSIF_MAX_XML, out, len, NULL);
    if (err != MS_OK)
        return err;
    uint8_t h[32];
    if (!sha256(h, *out, *len) || CRYPTO_memcmp(h, e->sha, 32) != 0) {
        free(*out);
        *out = NULL;
        return MS_ERR_INVALID;
    }
    return MS_OK;
}

/* Whether period is the current key period by this server's clock, or the next. */
static bool current_or_next(ms_dist *d, const struct snap *s, uint64_t period)
{
    uint64_t cur = 0;
    if (ms_key_period(&s->ids, &cur, d->now(d->now_ctx)) != MS_OK)
        return false;
    return period == cur || period == cur + 1;
}

static void serve(ms_dist *d, struct snap **sp, const ms_http_request *req,
                  const ms_annexd_path *t, ms_http_response *resp)
{
    struct snap *s = *sp;
    const char *path = req->path;
    /* Authentication: "<device>.<token>" and SHA-256(token) as in the index. A device
     * the export does not list and a wrong token get the same answer, so the server
     * cannot be asked which devices it holds packages for. */
    if (req->bearer == NULL || req->bearer[0] == '\0') {
        refuse(d, s, resp, 401, MS_ERR_UNAUTHORISED, NULL, NULL, "no bearer token");
        return;
    }
    const char *dot = strrchr(req->bearer, '.');
    char device[DEVICE_MAX + 1];
    size_t dlen = dot != NULL ? (size_t)(dot - req->bearer) : 0;
    if (dot == NULL || dlen == 0 || dlen > DEVICE_MAX || strlen(dot + 1) != 64) {
        refuse(d, s, resp, 401, MS_ERR_UNAUTHORISED, NULL, NULL, "bearer token not accepted");
        return;
    }
    memcpy(device, req->bearer, dlen);
    device[dlen] = '\0';
    size_t first = 0, count = 0;
    bool known = ms_annexd_device_id_ok(device) && find_device(s, device, &first, &count);
    uint64_t period = 0;
    if (t->resource == MS_ANNEXD_KEYPROV) {
        uint64_t secs = t->has_time ? t->time : d->now(d->now_ctx);
        if (ms_key_period(&s->ids, &period, secs) != MS_OK) {
            refuse(d, s, resp, 400, MS_ERR_PERIOD, NULL, NULL, "time before the first key period");
            return;
        }
    }
    /* The token of the requested period's entry (a device re-enrolled between exports
     * has a new token), else of the latest one. */
    static const uint8_t no_token[32];
    const struct entry *e = known ? &s->e[first + count - 1] : NULL, *want = NULL;
    for (size_t i = first; known && i < first + count; i++)
        if (t->resource == MS_ANNEXD_KEYPROV && s->e[i].period == period)
            want = e = &s->e[i];
    uint8_t th[32];
    bool hashed = sha256(th, dot + 1, 64);
    if (!hashed || CRYPTO_memcmp(th, e != NULL ? e->token : no_token, 32) != 0 || e == NULL) {
        refuse(d, s, resp, 401, MS_ERR_UNAUTHORISED, NULL, NULL, "bearer token not accepted");
        return;
    }

    /* The KmsRequest, checked as `kms serve` checks it. */
    ms_kms_request *rq = calloc(1, sizeof *rq);
    char why[200] = "", msg[240];
    if (rq == NULL) {
        refuse(d, s, resp, 500, MS_ERR_NOMEM, e->user, NULL, "out of memory");
        return;
    }
    ms_err err = ms_kmsif_request_parse(rq, req->body != NULL ? (const char *)req->body : "",
                                        req->body_len, why, sizeof why);
    uint64_t now = d->now(d->now_ctx);
    if (err != MS_OK) {
        snprintf(msg, sizeof msg, "KmsRequest: %s", why);
        refuse(d, s, resp, err == MS_ERR_XML ? 400 : 500, err, e->user, NULL, msg);
    } else if (strcmp(rq->kms_uri, s->cert.kms_uri) != 0) {
        refuse(d, s, resp, 400, MS_ERR_XML, e->user, rq->client_req_url,
               "KmsUri names another KMS");
    } else if (!ms_annexd_url_names_path(rq->client_req_url, path)) {
        refuse(d, s, resp, 400, MS_ERR_XML, e->user, rq->client_req_url,
               "ClientReqUrl is not the resource posted to");
    } else if (strcmp(rq->user_uri, e->user) != 0 ||
               (rq->device_id[0] != '\0' && strcmp(rq->device_id, device) != 0) ||
               (t->has_user && strcmp(t->user, e->user) != 0)) {
        refuse(d, s, resp, 403, MS_ERR_PACKAGE_DEVICE, e->user, rq->client_req_url,
               "a device may only ask for its own user's keys");
    } else if ((err = ms_replay_check(d->replay, device, rq->time, rq->time_us, now)) !=
               MS_OK) {
        if (err == MS_ERR_MIKEY_TIMESTAMP)
            refuse(d, s, resp, 409, err, e->user, rq->client_req_url,
                   "Time is more than 300 s from the server clock");
        else if (err == MS_ERR_MIKEY_REPLAY)
            refuse(d, s, resp, 409, err, e->user, rq->client_req_url,
                   "request replayed: this device already sent this Time");
        else
            refuse(d, s, resp, 503, err, e->user, rq->client_req_url, "replay cache full");
    } else if (t->resource == MS_ANNEXD_CERTCACHE) {
        certcache(d, s, resp, e->user, rq->client_req_url);
    } else if (t->resource == MS_ANNEXD_INIT) {
        struct buf b = {0};
        response_head(&b, d, s, e->user, rq->client_req_url);
        puts_(&b, "  <KmsMessage>\n    <KmsInit Version=\"1.0.0\">\n");
        puts_(&b, s->cert_elem);
        puts_(&b, "    </KmsInit>\n  </KmsMessage>\n</KmsResponse>\n");
        if (!b.failed)
            atomic_fetch_add(&d->n_init, 1);
        answer(resp, 200, &b);
    } else if (!current_or_next(d, s, period)) {
        /* A past period's package may still be listed (an index lives on until the next
         * export): its RSK is for the auditors, not for a stolen token. */
        refuse(d, s, resp, 404, MS_ERR_PERIOD, e->user, rq->client_req_url,
               "only the current and the next key period are served");
    } else if (want == NULL) {
        snprintf(msg, sizeof msg, "no key set for this device and key period %llu",
                 (unsigned long long)period);
        refuse(d, s, resp, 404, MS_ERR_NO_KEYS, e->user, rq->client_req_url, msg);
    } else {
        char *body = NULL;
        size_t len = 0;
        err = package_body(d, want, &body, &len);
        if (err == MS_ERR_INVALID || err == MS_ERR_NO_KEYS) {
            /* The export is being replaced: a newer index may already be there. */
            snap_put(d, s);
            (void)ms_dist_check(d, NULL, NULL, 0);
            *sp = s = snap_get(d);
            err = MS_ERR_INVALID;
            if (s != NULL && find_device(s, device, &first, &count))
                for (size_t i = first; i < first + count; i++)
                    if (s->e[i].period == period && CRYPTO_memcmp(th, s->e[i].token, 32) == 0)
                        err = package_body(d, &s->e[i], &body, &len);
        }
        if (err != MS_OK) {
            refuse(d, s, resp, 503, err, NULL, rq->client_req_url,
                   "the export is being replaced; try again");
        } else {
            atomic_fetch_add(&d->n_served, 1);
            resp->status = 200;
            resp->content_type = "application/xml";
            resp->body = body;
            resp->body_len = len;
        }
    }
    free(rq);
}

void ms_dist_handle(void *ctx, const ms_http_request *req, ms_http_response *resp)
{
    ms_dist *d = ctx;
    (void)ms_dist_check(d, NULL, NULL, 0);
    struct snap *s = snap_get(d);
    ms_annexd_path t;
    ms_err r = ms_annexd_path_parse(req->path, &t, NULL, 0);
    if (r != MS_OK && r != MS_ERR_BAD_ENCODING)
        refuse(d, s, resp, 404, MS_ERR_HTTP, NULL, NULL, "no such resource");
    else if (req->method == NULL || strcmp(req->method, "POST") != 0)
        refuse(d, s, resp, 405, MS_ERR_HTTP, NULL, NULL, "only POST is accepted");
    else if (!ms_http_media_type_is(req->content_type, "application/xml"))
        /* TS 33.180 D.2 carries a KmsRequest as XML, as `kms serve` insists */
        refuse(d, s, resp, 415, MS_ERR_HTTP, NULL, NULL,
               "a KmsRequest is sent as Content-Type: application/xml");
    else if (r == MS_ERR_BAD_ENCODING)
        refuse(d, s, resp, 400, MS_ERR_IDENTITY, NULL, NULL,
               "malformed user or time in the resource path");
    else if (s == NULL)
        refuse(d, s, resp, 503, MS_ERR_NO_KEYS, NULL, NULL, "no export available yet");
    else
        serve(d, &s, req, &t, resp);
    snap_put(d, s);
}

size_t ms_dist_metrics(void *ctx, char *out, size_t cap)
{
    ms_dist *d = ctx;
    if (out == NULL || cap == 0)
        return 0;
    size_t n = 0;
    int w = snprintf(out, cap,
                     "# TYPE mikeysakke_dist_packages gauge\n"
                     "mikeysakke_dist_packages %zu\n"
                     "# TYPE mikeysakke_dist_reloads_total counter\n"
                     "mikeysakke_dist_reloads_total %lu\n"
                     "# TYPE mikeysakke_dist_reload_failures_total counter\n"
                     "mikeysakke_dist_reload_failures_total %lu\n"
                     "# TYPE mikeysakke_dist_answers_total counter\n"
                     "mikeysakke_dist_answers_total{kind=\"keyprov\"} %lu\n"
                     "mikeysakke_dist_answers_total{kind=\"init\"} %lu\n"
                     "mikeysakke_dist_answers_total{kind=\"certcache\"} %lu\n",
                     ms_dist_packages(d), atomic_load(&d->n_reloads),
                     atomic_load(&d->n_reload_failures), atomic_load(&d->n_served),
                     atomic_load(&d->n_init), atomic_load(&d->n_certcache));
    if (w < 0 || (size_t)w >= cap)
        return 0;
    n = (size_t)w;
    w = snprintf(out + n, cap - n, "# TYPE mikeysakke_dist_refused_total counter\n");
    if (w < 0 || (size_t)w >= cap - n)
        return n;
    n += (size_t)w;
    for (size_t i = 0; i < N_STATUS; i++) {
        w = snprintf(out + n, cap - n, "mikeysakke_dist_refused_total{status=\"%d\"} %lu\n",
                     status_codes[i], atomic_load(&d->n_status[i]));
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
    }
    struct snap *s = snap_get(d);
    size_t skipped = s != NULL ? s->skipped : 0;
    snap_put(d, s);
    w = snprintf(out + n, cap - n,
                 "# TYPE mikeysakke_dist_index_lines_skipped gauge\n"
                 "mikeysakke_dist_index_lines_skipped %zu\n"
                 "# TYPE mikeysakke_dist_replay_cache_entries gauge\n"
                 "mikeysakke_dist_replay_cache_entries %zu\n",
                 skipped, ms_replay_count(d->replay));
    if (w > 0 && (size_t)w < cap - n)
        n += (size_t)w;
    return n;
}

bool ms_dist_health(void *ctx, const char **status_text)
{
    ms_dist *d = ctx;
    (void)ms_dist_check(d, NULL, NULL, 0);
    struct snap *s = snap_get(d);
    bool ok = s != NULL;
    snap_put(d, s);
    if (status_text != NULL)
        *status_text = ok ? "ok" : "no export";
    return ok;
}

/* ---- the HTTPS server (include/mikeysakke/dist.h) --------------------------------------- */

struct ms_dist_server {
    ms_dist *d;
    ms_http_server *http;
};

ms_err ms_dist_server_start(ms_dist_server **out, const ms_dist_server_config *cfg)
{
    if (out == NULL || cfg == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    char *detail = cfg->detail;
    size_t cap = cfg->detail_cap;
    if (detail != NULL && cap > 0)
        detail[0] = '\0';
    if (cfg->dir == NULL)
        return ms_detail_fail(MS_ERR_ARG, detail, cap, "the export folder is needed");
    if (cfg->cert_file == NULL || cfg->key_file == NULL)
        return ms_detail_fail(MS_ERR_ARG, detail, cap,
                              "a TLS certificate and key are needed (TLS only)");
    ms_dist_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return MS_ERR_NOMEM;
    ms_err e = ms_dist_open(&s->d, cfg->dir, cfg->log, cfg->log_ctx, detail, cap);
    if (e != MS_OK) {
        if (detail != NULL && cap > 0 && detail[0] == '\0')
            ms_detail_set(detail, cap, "%s", cfg->dir);
        free(s);
        return e;
    }
    ms_http_config hc;
    memset(&hc, 0, sizeof hc);
    hc.bind_addr = cfg->bind_addr;
    hc.port = cfg->port;
    hc.cert_file = cfg->cert_file;
    hc.key_file = cfg->key_file;
    hc.rate_per_sec = cfg->rate_per_sec;
    hc.rate_burst = cfg->rate_burst;
    hc.threads = cfg->threads;
    hc.max_connections = cfg->max_connections;
    hc.max_per_ip = cfg->max_per_client;
    hc.timeout_sec = cfg->timeout_sec;
    hc.name = "mikeysakke_dist";
    hc.detail = detail;
    hc.detail_cap = cap;
    e = ms_http_start(&s->http, &hc, ms_dist_handle, ms_dist_metrics, ms_dist_health, s->d);
    if (e != MS_OK) {
        if (detail != NULL && cap > 0 && detail[0] == '\0')
            ms_detail_set(detail, cap, "the server cannot start");
        ms_dist_close(s->d);
        free(s);
        return e;
    }
    *out = s;
    return MS_OK;
}

uint16_t ms_dist_server_port(const ms_dist_server *s)
{
    return s != NULL && s->http != NULL ? ms_http_port(s->http) : 0;
}

void ms_dist_server_stop(ms_dist_server *s)
{
    if (s == NULL)
        return;
    ms_http_stop(s->http); /* waits for running handlers */
    ms_dist_close(s->d);
    free(s);
}

ms_err ms_dist_limits_parse(unsigned *conns, unsigned *per_client, unsigned *timeout_sec,
                            const char *max_connections, const char *max_per_client,
                            const char *timeout, char *detail, size_t detail_cap) {
    return ms_http_limits_parse(max_connections, max_per_client, timeout, conns, per_client,
                                timeout_sec, detail, detail_cap);
}
