/* The voicemail store: see mailbox.h. */
#include "relay/mailbox.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "relay/divert.h"
#include "util/detail.h"
#include "util/file.h"
#include "util/hex.h"
#include "util/timefmt.h"

#define DEFAULT_MAX_MESSAGES 100u
#define DEFAULT_MAX_SECONDS 300u
#define DEFAULT_MAX_BYTES (16u * 1024u * 1024u)
/* A file larger than this is never read back whole, whatever the limits say. */
#define READ_CAP (512u * 1024u * 1024u)
#define INDEX_LINE_MAX (MS_MESSAGE_ID_HEX + 3 * 21 + MS_MAILBOX_CALLER_MAX + 8)

struct ms_mailbox_store {
    char *dir;
    ms_mailbox_limits limits;
};

ms_err ms_mailbox_open(ms_mailbox_store **out, const char *dir, const ms_mailbox_limits *limits,
                       char *detail, size_t detail_cap)
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    if (dir == NULL || dir[0] == '\0') {
        ms_detail_set(detail, detail_cap, "no store folder given");
        return MS_ERR_ARG;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        ms_detail_set(detail, detail_cap, "cannot create %s: %s", dir, strerror(errno));
        return MS_ERR_IO;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        ms_detail_set(detail, detail_cap, "%s is not a folder", dir);
        return MS_ERR_IO;
    }
    ms_mailbox_store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return MS_ERR_NOMEM;
    s->dir = strdup(dir);
    if (s->dir == NULL) {
        free(s);
        return MS_ERR_NOMEM;
    }
    if (limits != NULL)
        s->limits = *limits;
    if (s->limits.max_messages == 0)
        s->limits.max_messages = DEFAULT_MAX_MESSAGES;
    if (s->limits.max_seconds == 0)
        s->limits.max_seconds = DEFAULT_MAX_SECONDS;
    if (s->limits.max_bytes == 0)
        s->limits.max_bytes = DEFAULT_MAX_BYTES;
    *out = s;
    return MS_OK;
}

void ms_mailbox_close(ms_mailbox_store *s)
{
    if (s == NULL)
        return;
    free(s->dir);
    free(s);
}

void ms_mailbox_get_limits(const ms_mailbox_store *s, ms_mailbox_limits *out)
{
    if (s != NULL && out != NULL)
        *out = s->limits;
}

ms_err ms_mailbox_id(const char *uri, char out[MS_MAILBOX_ID_HEX + 1])
{
    char norm[MS_VM_URI_MAX];
    out[0] = '\0';
    ms_err e = ms_vm_uri_normalise(uri, norm, sizeof norm);
    if (e != MS_OK)
        return e;
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(norm, strlen(norm), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return MS_ERR_INTERNAL;
    ms_hex_encode_lower(out, md, 32);
    return MS_OK;
}

bool ms_mailbox_valid_message_id(const char *id)
{
    if (id == NULL)
        return false;
    size_t i = 0;
    for (; id[i] != '\0'; i++)
        if (i >= MS_MESSAGE_ID_HEX ||
            !((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return i == MS_MESSAGE_ID_HEX;
}

/* ---- one mailbox: its folder, lock and index ---------------------------------------- */

typedef struct mbox {
    char uri[MS_VM_URI_MAX];
    char dir[4096];
    int lock_fd;
} mbox;

/* Resolves `uri` to its folder; with `create`, makes the folder and its uri file. Takes
 * the lock (exclusive or shared). MS_ERR_ARG with *absent when the mailbox has no folder
 * and create is false. */
static ms_err mbox_open(const ms_mailbox_store *s, const char *uri, bool create, bool exclusive,
                        mbox *m, bool *absent, char *detail, size_t detail_cap)
{
    m->lock_fd = -1;
    if (absent != NULL)
        *absent = false;
    if (uri == NULL || ms_vm_uri_normalise(uri, m->uri, sizeof m->uri) != MS_OK) {
        ms_detail_set(detail, detail_cap, "\"%s\" is not a mailbox URI", uri != NULL ? uri : "");
        return MS_ERR_IDENTITY;
    }
    char id[MS_MAILBOX_ID_HEX + 1];
    ms_err e = ms_mailbox_id(m->uri, id);
    if (e != MS_OK)
        return e;
    int n = snprintf(m->dir, sizeof m->dir, "%s/%s", s->dir, id);
    if (n < 0 || (size_t)n >= sizeof m->dir - MS_MESSAGE_ID_HEX - 16) {
        ms_detail_set(detail, detail_cap, "store path too long");
        return MS_ERR_ARG;
    }
    if (create) {
        if (mkdir(m->dir, 0700) != 0 && errno != EEXIST) {
            ms_detail_set(detail, detail_cap, "cannot create mailbox folder %s: %s", m->dir,
                       strerror(errno));
            return MS_ERR_IO;
        }
    } else {
        struct stat sb;
        if (stat(m->dir, &sb) != 0) {
            if (absent != NULL)
                *absent = true;
            return MS_ERR_ARG;
        }
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/.lock", m->dir);
    m->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (m->lock_fd < 0) {
        ms_detail_set(detail, detail_cap, "cannot open %s: %s", path, strerror(errno));
        return MS_ERR_IO;
    }
    while (flock(m->lock_fd, exclusive ? LOCK_EX : LOCK_SH) != 0) {
        if (errno != EINTR) {
            ms_detail_set(detail, detail_cap, "cannot lock %s: %s", path, strerror(errno));
            close(m->lock_fd);
            m->lock_fd = -1;
            return MS_ERR_IO;
        }
    }
    return MS_OK;
}

static void mbox_close(mbox *m)
{
    if (m->lock_fd >= 0) {
        flock(m->lock_fd, LOCK_UN);
        close(m->lock_fd);
        m->lock_fd = -1;
    }
}

/* Replaces `name` in the mailbox folder with `text`: tmp file, fsync, rename, so a
 * reader sees the old file or the new one, never a mixture. */
static ms_err replace_file(const mbox *m, const char *name, const char *text, size_t len,
                           char *detail, size_t detail_cap)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", m->dir, name);
    /* under the mailbox's lock: a crash's leftover .tmp is taken by the next write */
    return ms_file_write_atomic(path, text, len, 0600, MS_FILE_REPLACE | MS_FILE_FIXED_TMP,
                                detail, detail_cap);
}

/* The claimed caller in a form safe for an index line and JSON. */
static void sanitise_caller(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = in != NULL ? in : ""; *p != '\0' && n + 1 < cap; p++) {
        unsigned char c = (unsigned char)*p;
        out[n++] = (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') ? (char)c : '?';
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    if (n == 0)
        out[n++] = '-';
    out[n] = '\0';
}

/* Parses one index line into e; false when malformed. */
static bool parse_line(char *line, ms_mailbox_entry *e)
{
    memset(e, 0, sizeof *e);
    char *p = line;
    size_t idl = strcspn(p, " ");
    if (idl != MS_MESSAGE_ID_HEX || p[idl] != ' ')
        return false;
    memcpy(e->id, p, idl);
    e->id[idl] = '\0';
    if (!ms_mailbox_valid_message_id(e->id))
        return false;
    p += idl + 1;
    uint64_t v[3];
    for (int i = 0; i < 3; i++) {
        if (*p < '0' || *p > '9')
            return false;
        char *end;
        errno = 0;
        unsigned long long x = strtoull(p, &end, 10);
        if (errno != 0 || *end != ' ')
            return false;
        v[i] = x;
        p = end + 1;
    }
    if (v[1] > UINT32_MAX)
        return false;
    e->time = v[0];
    e->duration_ms = (uint32_t)v[1];
    e->size = v[2];
    size_t cl = strlen(p);
    if (cl == 0 || cl >= sizeof e->caller)
        return false;
    /* Again on the way out: the index may have been edited by hand. */
    sanitise_caller(p, e->caller, sizeof e->caller);
    return true;
}

/* Reads the index (absent = empty). */
static ms_err read_index(const mbox *m, ms_mailbox_entry **out, size_t *n, char *detail,
                         size_t detail_cap)
{
    *out = NULL;
    *n = 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/index", m->dir);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT)
            return MS_OK;
        ms_detail_set(detail, detail_cap, "cannot read %s: %s", path, strerror(errno));
        return MS_ERR_IO;
    }
    ms_mailbox_entry *v = NULL;
    size_t len = 0, cap = 0, lineno = 0;
    char line[INDEX_LINE_MAX + 2];
    ms_err e = MS_OK;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        size_t ll = strlen(line);
        if (ll == 0 || line[ll - 1] != '\n') {
            e = MS_ERR_IO;
            break;
        }
        line[ll - 1] = '\0';
        if (len == cap) {
            size_t nc = cap != 0 ? 2 * cap : 16;
            ms_mailbox_entry *nv = realloc(v, nc * sizeof *nv);
            if (nv == NULL) {
                e = MS_ERR_NOMEM;
                break;
            }
            v = nv;
            cap = nc;
        }
        if (!parse_line(line, &v[len])) {
            e = MS_ERR_IO;
            break;
        }
        len++;
    }
    if (e == MS_OK && ferror(f))
        e = MS_ERR_IO;
    fclose(f);
    if (e != MS_OK) {
        if (e == MS_ERR_IO)
            ms_detail_set(detail, detail_cap, "%s:%zu: malformed index line", path, lineno);
        free(v);
        return e;
    }
    *out = v;
    *n = len;
    return MS_OK;
}

static ms_err write_index(const mbox *m, const ms_mailbox_entry *v, size_t n, char *detail,
                          size_t detail_cap)
{
    size_t cap = n * (INDEX_LINE_MAX + 2) + 1, len = 0;
    char *text = malloc(cap);
    if (text == NULL)
        return MS_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(text + len, cap - len, "%s %" PRIu64 " %" PRIu32 " %" PRIu64 " %s\n",
                         v[i].id, v[i].time, v[i].duration_ms, v[i].size, v[i].caller);
        if (w < 0 || (size_t)w >= cap - len) {
            free(text);
            return MS_ERR_INTERNAL;
        }
        len += (size_t)w;
    }
    ms_err e = replace_file(m, "index", text, len, detail, detail_cap);
    free(text);
    return e;
}

/* ---- the operations ----------------------------------------------------------------- */

ms_err ms_mailbox_begin(ms_mailbox_store *s, const char *uri, unsigned in_progress,
                        char id[MS_MESSAGE_ID_HEX + 1], char *path, size_t path_cap,
                        char *detail, size_t detail_cap)
{
    if (s == NULL || id == NULL || path == NULL || path_cap == 0)
        return MS_ERR_ARG;
    id[0] = '\0';
    path[0] = '\0';
    mbox m;
    ms_err e = mbox_open(s, uri, true, true, &m, NULL, detail, detail_cap);
    if (e != MS_OK)
        return e;
    ms_mailbox_entry *v = NULL;
    size_t n = 0;
    e = read_index(&m, &v, &n, detail, detail_cap);
    free(v);
    if (e == MS_OK && n + in_progress >= s->limits.max_messages) {
        ms_detail_set(detail, detail_cap,
                   "mailbox %s is full (%zu messages and %u being recorded, limit %" PRIu32 ")",
                   m.uri, n, in_progress, s->limits.max_messages);
        e = MS_ERR_QUOTA;
    }
    if (e == MS_OK) {
        /* The owner's URI beside the hashed folder name, for the administrator. */
        char uri_path[4200];
        snprintf(uri_path, sizeof uri_path, "%s/uri", m.dir);
        if (access(uri_path, F_OK) != 0) {
            char line[MS_VM_URI_MAX + 1];
            int l = snprintf(line, sizeof line, "%s\n", m.uri);
            e = replace_file(&m, "uri", line, (size_t)l, detail, detail_cap);
        }
    }
    if (e == MS_OK) {
        unsigned char rnd[MS_MESSAGE_ID_HEX / 2];
        if (RAND_bytes(rnd, sizeof rnd) != 1) {
            e = MS_ERR_RNG;
        } else {
            ms_hex_encode_lower(id, rnd, sizeof rnd);
            int w = snprintf(path, path_cap, "%s/%s.pcap", m.dir, id);
            if (w < 0 || (size_t)w >= path_cap) {
                id[0] = '\0';
                path[0] = '\0';
                e = MS_ERR_BUFFER_TOO_SMALL;
            }
        }
    }
    mbox_close(&m);
    return e;
}

ms_err ms_mailbox_commit(ms_mailbox_store *s, const char *uri, const ms_mailbox_entry *e,
                         char *detail, size_t detail_cap)
{
    if (s == NULL || e == NULL || !ms_mailbox_valid_message_id(e->id))
        return MS_ERR_ARG;
    mbox m;
    ms_err err = mbox_open(s, uri, true, true, &m, NULL, detail, detail_cap);
    if (err != MS_OK)
        return err;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.pcap", m.dir, e->id);
    struct stat sb;
    ms_mailbox_entry *v = NULL;
    size_t n = 0;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        ms_detail_set(detail, detail_cap, "message file %s is missing", path);
        err = MS_ERR_ARG;
    }
    if (err == MS_OK)
        err = read_index(&m, &v, &n, detail, detail_cap);
    if (err == MS_OK) {
        ms_mailbox_entry *nv = realloc(v, (n + 1) * sizeof *nv);
        if (nv == NULL) {
            err = MS_ERR_NOMEM;
        } else {
            v = nv;
            bool dup = false;
            for (size_t i = 0; i < n; i++)
                dup = dup || strcmp(v[i].id, e->id) == 0;
            if (dup) {
                ms_detail_set(detail, detail_cap, "message %s is already in the index", e->id);
                err = MS_ERR_EXISTS;
            } else {
                v[n] = *e;
                sanitise_caller(e->caller, v[n].caller, sizeof v[n].caller);
                v[n].size = (uint64_t)sb.st_size;
                err = write_index(&m, v, n + 1, detail, detail_cap);
            }
        }
    }
    free(v);
    mbox_close(&m);
    return err;
}

ms_err ms_mailbox_list(ms_mailbox_store *s, const char *uri, ms_mailbox_entry **out,
                       size_t *n, char *detail, size_t detail_cap)
{
    if (s == NULL || out == NULL || n == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    *n = 0;
    mbox m;
    bool absent = false;
    ms_err e = mbox_open(s, uri, false, false, &m, &absent, detail, detail_cap);
    if (absent)
        return MS_OK; /* nothing ever stored */
    if (e != MS_OK)
        return e;
    e = read_index(&m, out, n, detail, detail_cap);
    mbox_close(&m);
    return e;
}

typedef struct jbuf {
    char *p;
    size_t len, cap;
    bool bad;
} jbuf;

static void jb_printf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void jb_printf(jbuf *b, const char *fmt, ...)
{
    if (b->bad)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->bad = true;
            return;
        }
        if ((size_t)w < b->cap - b->len) {
            b->len += (size_t)w;
            return;
        }
        size_t nc = 2 * b->cap + (size_t)w;
        char *np = realloc(b->p, nc);
        if (np == NULL) {
            b->bad = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
}

ms_err ms_mailbox_list_json(ms_mailbox_store *s, const char *uri, char **json, size_t *len,
                            char *detail, size_t detail_cap)
{
    if (json == NULL || len == NULL)
        return MS_ERR_ARG;
    *json = NULL;
    *len = 0;
    char norm[MS_VM_URI_MAX];
    if (uri == NULL || ms_vm_uri_normalise(uri, norm, sizeof norm) != MS_OK)
        return MS_ERR_IDENTITY;
    ms_mailbox_entry *v = NULL;
    size_t n = 0;
    ms_err e = ms_mailbox_list(s, norm, &v, &n, detail, detail_cap);
    if (e != MS_OK)
        return e;
    jbuf b = {.cap = 256 + n * 512};
    b.p = malloc(b.cap);
    if (b.p == NULL) {
        free(v);
        return MS_ERR_NOMEM;
    }
    /* URIs and callers hold no '"', '\\' or control characters (normalise and
     * sanitise_caller), so they go into JSON strings as they are. */
    jb_printf(&b, "{\"mailbox\":\"%s\",\"messages\":[", norm);
    for (size_t i = 0; i < n; i++) {
        char when[MS_TIME_BUF];
        ms_time_format_unix(when, (int64_t)v[i].time);
        jb_printf(&b,
                  "%s{\"id\":\"%s\",\"caller\":\"%s\",\"caller_verified\":false,"
                  "\"time\":%" PRIu64 ",\"time_utc\":\"%s\",\"duration_ms\":%" PRIu32
                  ",\"size\":%" PRIu64 "}",
                  i > 0 ? "," : "", v[i].id, v[i].caller, v[i].time, when, v[i].duration_ms,
                  v[i].size);
    }
    jb_printf(&b, "]}\n");
    free(v);
    if (b.bad) {
        free(b.p);
        return MS_ERR_NOMEM;
    }
    *json = b.p;
    *len = b.len;
    return MS_OK;
}

/* Finds `id` in the mailbox's index; MS_ERR_ARG when malformed or absent. */
static ms_err find_message(const mbox *m, const char *id, ms_mailbox_entry **v, size_t *n,
                           size_t *at, char *detail, size_t detail_cap)
{
    ms_err e = read_index(m, v, n, detail, detail_cap);
    if (e != MS_OK)
        return e;
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*v)[i].id, id) == 0) {
            *at = i;
            return MS_OK;
        }
    }
    ms_detail_set(detail, detail_cap, "no message %s in this mailbox", id);
    return MS_ERR_ARG;
}

ms_err ms_mailbox_read(ms_mailbox_store *s, const char *uri, const char *id, uint8_t **data,
                       size_t *len, char *detail, size_t detail_cap)
{
    if (s == NULL || data == NULL || len == NULL)
        return MS_ERR_ARG;
    *data = NULL;
    *len = 0;
    if (!ms_mailbox_valid_message_id(id)) {
        ms_detail_set(detail, detail_cap, "not a message id");
        return MS_ERR_ARG;
    }
    mbox m;
    bool absent = false;
    ms_err e = mbox_open(s, uri, false, false, &m, &absent, detail, detail_cap);
    if (absent) {
        ms_detail_set(detail, detail_cap, "no message %s in this mailbox", id);
        return MS_ERR_ARG;
    }
    if (e != MS_OK)
        return e;
    ms_mailbox_entry *v = NULL;
    size_t n = 0, at = 0;
    e = find_message(&m, id, &v, &n, &at, detail, detail_cap);
    free(v);
    if (e == MS_OK) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s.pcap", m.dir, id);
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat sb;
        if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
            (uint64_t)sb.st_size > READ_CAP) {
            ms_detail_set(detail, detail_cap, "cannot read message %s", id);
            e = MS_ERR_IO;
        } else {
            size_t want = (size_t)sb.st_size, got = 0;
            uint8_t *buf = malloc(want != 0 ? want : 1);
            if (buf == NULL) {
                e = MS_ERR_NOMEM;
            } else {
                while (got < want) {
                    ssize_t r = read(fd, buf + got, want - got);
                    if (r < 0 && errno == EINTR)
                        continue;
                    if (r <= 0)
                        break;
                    got += (size_t)r;
                }
                if (got != want) {
                    free(buf);
                    ms_detail_set(detail, detail_cap, "short read on message %s", id);
                    e = MS_ERR_IO;
                } else {
                    *data = buf;
                    *len = want;
                }
            }
        }
        if (fd >= 0)
            close(fd);
    }
    mbox_close(&m);
    return e;
}

ms_err ms_mailbox_delete(ms_mailbox_store *s, const char *uri, const char *id, char *detail,
                         size_t detail_cap)
{
    if (s == NULL)
        return MS_ERR_ARG;
    if (!ms_mailbox_valid_message_id(id)) {
        ms_detail_set(detail, detail_cap, "not a message id");
        return MS_ERR_ARG;
    }
    mbox m;
    bool absent = false;
    ms_err e = mbox_open(s, uri, false, true, &m, &absent, detail, detail_cap);
    if (absent) {
        ms_detail_set(detail, detail_cap, "no message %s in this mailbox", id);
        return MS_ERR_ARG;
    }
    if (e != MS_OK)
        return e;
    ms_mailbox_entry *v = NULL;
    size_t n = 0, at = 0;
    e = find_message(&m, id, &v, &n, &at, detail, detail_cap);
    if (e == MS_OK) {
        memmove(&v[at], &v[at + 1], (n - at - 1) * sizeof *v);
        /* Index first: a crash in between leaves an invisible file, never an entry
         * without its file. */
        e = write_index(&m, v, n - 1, detail, detail_cap);
        if (e == MS_OK) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s.pcap", m.dir, id);
            if (unlink(path) != 0 && errno != ENOENT) {
                ms_detail_set(detail, detail_cap, "cannot remove %s: %s", path, strerror(errno));
                e = MS_ERR_IO;
            }
            ms_file_sync_parent(path);
        }
    }
    free(v);
    mbox_close(&m);
    return e;
}
