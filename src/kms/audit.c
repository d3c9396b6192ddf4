/*
 * The KMS audit log: hash-chained, Ed25519-signed, one entry per line.
 *
 * Format (docs/audit.md says the same for the security officer). Each entry is one
 * line of fields separated by single spaces, ending in "\n":
 *
 *   seq=12 time=2026-11-27T12:00:00Z event=extract user=tel:+447700900123 period=1523
 *   reason="warrant 2026/118" prev=<64 hex> sig=<128 hex>
 *
 * (one line in the file). Fields, in this order:
 *   seq    decimal, 1 for the first entry, +1 for each next one (no leading zeros)
 *   time   UTC to the second, YYYY-MM-DDTHH:MM:SSZ
 *   event  [a-z_]+
 *   ...    the caller's fields, key [a-z_]+ (not one of the five reserved names)
 *   prev   lowercase hex SHA-256 of the previous entry's line (its octets without the
 *          final "\n", sig included); 64 zeros for the first entry
 *   sig    lowercase hex Ed25519 signature (RFC 8032, pure) of the line's octets that
 *          precede " sig=", by the KMS audit key
 *
 * A value is written bare when it is non-empty and all its octets are printable ASCII
 * other than space, '"' and '\\'. Otherwise it is quoted: "..." with \" \\ \n \r \t for
 * those characters and \xHH for any other control octet, DEL, invalid UTF-8, and the
 * invisible or direction-changing code points that could make `less` show something
 * other than what is there (C1 controls, soft hyphen, zero-width and bidi controls,
 * line/paragraph separators, BOM). Other UTF-8 is kept as is so names stay readable.
 * A value can therefore never contain a raw space outside quotes, a quote, or a line
 * break: it cannot add a field or an entry.
 *
 * Appending writes the whole line with one write(2) on an O_APPEND descriptor and
 * fsyncs it before returning; if the write fails the file is cut back to its previous
 * length and the head does not move (fail closed). The fsync itself runs outside the
 * handle's mutex, so concurrent appenders share flushes; if it fails, the append fails
 * and the handle refuses all further appends. An flock(2) serialises appenders
 * across handles and processes; a handle that finds the file grew re-reads and checks
 * the new tail before continuing the chain.
 */
#include "kms/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "mikeysakke/crypto.h"
#include "mikeysakke/mikey.h"
#include "util/detail.h"
#include "util/hex.h"
#include "util/timefmt.h"

#define SIG_BYTES 64
#define KEY_MAX 32
#define TIME_CHARS 20 /* YYYY-MM-DDTHH:MM:SSZ */
#define MAX_TOKENS (MS_AUDIT_MAX_FIELDS + 5)
/* NTP seconds of 9999-12-31T23:59:59Z: beyond it is no time but a mistake (an NTP
 * 32.32 value passed as seconds, say). */
#define NTP_SECONDS_MAX UINT64_C(255611289599)

struct ms_audit {
    pthread_mutex_t lock;
    int fd;
    char *path;
    dev_t dev;
    ino_t ino;
    EVP_PKEY *key;
    uint8_t pub[MS_AUDIT_PUBLIC_BYTES];
    uint64_t seq;                     /* last entry's seq, 0 when empty */
    uint8_t head[MS_AUDIT_HASH_BYTES]; /* SHA-256 of the last line */
    off_t size;                       /* file length that ends with that entry */
    int broken;                       /* a failed append could not be undone */
    ms_audit_copy_fn copy;            /* ms_audit_set_copy */
    void *copy_ctx;
};

/* ---- small helpers ------------------------------------------------------------------ */

/* Lower-case hex only, the writer's canonical form (util/hex.h accepts both cases). */
static int is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int hex_decode(uint8_t *out, size_t len, const char *in, size_t in_len)
{
    for (size_t i = 0; i < in_len; i++)
        if (!is_lower_hex(in[i]))
            return -1;
    return ms_hex_decode(out, len, in, in_len) == MS_OK ? 0 : -1;
}

static int sha256(uint8_t out[MS_AUDIT_HASH_BYTES], const void *data, size_t len)
{
    unsigned int n = 0;
    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32 ? 0 : -1;
}

static int is_key_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || c == '_';
}

static int valid_name(const char *k)
{
    size_t n = 0;
    for (; k[n] != '\0'; n++)
        if (!is_key_char((unsigned char)k[n]))
            return 0;
    return n >= 1 && n <= KEY_MAX;
}

static int reserved_key(const char *k, size_t n)
{
    static const char *const names[] = {"seq", "time", "event", "prev", "sig"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && memcmp(names[i], k, n) == 0)
            return 1;
    return 0;
}

/* Bounded growable line buffer: an overflow past MS_AUDIT_LINE_MAX sets `over`. */
typedef struct linebuf {
    char *p;
    size_t len;
    int over;
} linebuf;

static void put(linebuf *b, const void *s, size_t n)
{
    if (b->over || n > MS_AUDIT_LINE_MAX - b->len) {
        b->over = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(linebuf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* ---- time ------------------------------------------------------------------------ */

/* The written form exactly: YYYY-MM-DDTHH:MM:SSZ, a real date (util/timefmt.h). */
static int valid_time(const char *v, size_t n)
{
    char text[TIME_CHARS + 1];
    uint64_t t;
    if (n != TIME_CHARS || v[TIME_CHARS - 1] != 'Z')
        return 0;
    memcpy(text, v, n);
    text[n] = '\0';
    return ms_time_parse(text, &t, NULL);
}

/* ---- escaping --------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (2..4 octets) and its code point, or 0. */
static size_t utf8_decode(const unsigned char *s, size_t rem, uint32_t *cp)
{
    size_t n;
    uint32_t c, min;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2, c = s[0] & 0x1f, min = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3, c = s[0] & 0x0f, min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4, c = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (rem < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

/* Code points a terminal shows as nothing, or that reorder or break what is shown. */
static int deceptive(uint32_t c)
{
    return (c >= 0x80 && c <= 0x9f) || c == 0xad || c == 0x061c || c == 0x180e ||
           (c >= 0x200b && c <= 0x200f) || (c >= 0x2028 && c <= 0x202e) ||
           (c >= 0x2060 && c <= 0x2069) || c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb);
}

static int bare_ok(const char *v)
{
    if (*v == '\0')
        return 0;
    for (const unsigned char *s = (const unsigned char *)v; *s != '\0'; s++)
        if (*s <= 0x20 || *s >= 0x7f || *s == '"' || *s == '\\')
            return 0;
    return 1;
}

static void put_value(linebuf *b, const char *v)
{
    if (bare_ok(v)) {
        puts_(b, v);
        return;
    }
    const unsigned char *s = (const unsigned char *)v;
    size_t rem = strlen(v);
    put(b, "\"", 1);
    while (rem > 0) {
        unsigned char c = *s;
        size_t n = 1;
        if (c == '"') {
            put(b, "\\\"", 2);
        } else if (c == '\\') {
            put(b, "\\\\", 2);
        } else if (c == '\n') {
            put(b, "\\n", 2);
        } else if (c == '\r') {
            put(b, "\\r", 2);
        } else if (c == '\t') {
            put(b, "\\t", 2);
        } else if (c >= 0x20 && c < 0x7f) {
            put(b, s, 1);
        } else {
            uint32_t cp = 0;
            size_t u = c >= 0x80 ? utf8_decode(s, rem, &cp) : 0;
            if (u > 0 && !deceptive(cp)) {
                put(b, s, u); /* readable UTF-8 stays as it is */
            } else {
                /* Control octet, DEL, invalid UTF-8 or a deceptive code point: \xHH for
                 * each of its octets. */
                if (u > 0)
                    n = u;
                for (size_t i = 0; i < n; i++) {
                    char e[5] = {'\\', 'x'};
                    ms_hex_encode_lower(e + 2, &s[i], 1);
                    put(b, e, 4);
                }
            }
            if (u > 0)
                n = u;
        }
        s += n;
        rem -= n;
    }
    put(b, "\"", 1);
}

/* ---- parsing ------------------------------------------------------------------------ */

typedef struct token {
    size_t start;     /* offset of the key */
    size_t key_len;
    size_t val;       /* offset of the value (its opening quote if quoted) */
    size_t val_len;   /* raw length, quotes included */
} token;

typedef struct parsed {
    uint64_t seq;
    uint8_t prev[MS_AUDIT_HASH_BYTES];
    uint8_t sig[SIG_BYTES];
    size_t signed_len; /* octets before " sig=" */
} parsed;

static int parse_seq(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    if (n == 0 || n > 20 || v[0] == '0')
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        unsigned d = (unsigned)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* Splits a line (without its "\n") into tokens and checks the entry's structure.
 * Returns 0, or -1 with *why set. */
static int parse_line(const char *line, size_t len, parsed *p, const char **why)
{
    token t[MAX_TOKENS];
    size_t nt = 0, i = 0;
    *why = "empty line";
    if (len == 0)
        return -1;
    while (i < len) {
        if (nt == MAX_TOKENS) {
            *why = "too many fields";
            return -1;
        }
        token *k = &t[nt];
        k->start = i;
        while (i < len && is_key_char((unsigned char)line[i]))
            i++;
        k->key_len = i - k->start;
        if (k->key_len == 0 || k->key_len > KEY_MAX || i == len || line[i] != '=') {
            *why = "field without a valid key=";
            return -1;
        }
        k->val = ++i;
        if (i < len && line[i] == '"') {
            i++;
            for (;;) {
                if (i == len) {
                    *why = "unterminated quoted value";
                    return -1;
                }
                unsigned char c = (unsigned char)line[i];
                if (c == '"')
                    break;
                if (c == '\\') {
                    if (i + 1 < len && strchr("\"\\nrt", line[i + 1]) != NULL &&
                        line[i + 1] != '\0') {
                        i += 2;
                    } else if (i + 3 < len && line[i + 1] == 'x' &&
                               is_lower_hex(line[i + 2]) && is_lower_hex(line[i + 3])) {
                        i += 4;
                    } else {
                        *why = "bad escape in a quoted value";
                        return -1;
                    }
                    continue;
                }
                if (c < 0x20 || c == 0x7f) {
                    *why = "control character in a value";
                    return -1;
                }
                i++;
            }
            i++; /* closing quote */
        } else {
            while (i < len && line[i] != ' ') {
                unsigned char c = (unsigned char)line[i];
                if (c < 0x21 || c >= 0x7f || c == '"' || c == '\\') {
                    *why = "character in a bare value that needs quoting";
                    return -1;
                }
                i++;
            }
            if (i == k->val) {
                *why = "empty value";
                return -1;
            }
        }
        k->val_len = i - k->val;
        nt++;
        if (i < len) {
            if (line[i] != ' ' || i + 1 == len) {
                *why = "fields not separated by one space";
                return -1;
            }
            i++;
        }
    }
    /* Order: seq time event [fields] prev sig. */
    static const char *const head[3] = {"seq", "time", "event"};
    if (nt < 5) {
        *why = "missing fields";
        return -1;
    }
    for (size_t j = 0; j < 3; j++) {
        if (t[j].key_len != strlen(head[j]) || memcmp(line + t[j].start, head[j], t[j].key_len)) {
            *why = "fields must begin seq= time= event=";
            return -1;
        }
    }
    const token *tp = &t[nt - 2], *ts = &t[nt - 1];
    if (tp->key_len != 4 || memcmp(line + tp->start, "prev", 4) != 0 || ts->key_len != 3 ||
        memcmp(line + ts->start, "sig", 3) != 0) {
        *why = "fields must end prev= sig=";
        return -1;
    }
    for (size_t j = 3; j + 2 < nt; j++) {
        if (reserved_key(line + t[j].start, t[j].key_len)) {
            *why = "reserved field name repeated";
            return -1;
        }
        for (size_t m = 3; m < j; m++) {
            if (t[m].key_len == t[j].key_len &&
                memcmp(line + t[m].start, line + t[j].start, t[j].key_len) == 0) {
                *why = "field name repeated";
                return -1;
            }
        }
    }
    if (parse_seq(line + t[0].val, t[0].val_len, &p->seq) != 0 || p->seq == 0) {
        *why = "seq is not a positive decimal number";
        return -1;
    }
    if (!valid_time(line + t[1].val, t[1].val_len)) {
        *why = "time is not YYYY-MM-DDTHH:MM:SSZ";
        return -1;
    }
    for (size_t j = 0; j < t[2].val_len; j++) {
        if (!is_key_char((unsigned char)line[t[2].val + j])) {
            *why = "event is not [a-z_]+";
            return -1;
        }
    }
    if (hex_decode(p->prev, sizeof p->prev, line + tp->val, tp->val_len) != 0) {
        *why = "prev is not 64 lowercase hex digits";
        return -1;
    }
    if (hex_decode(p->sig, sizeof p->sig, line + ts->val, ts->val_len) != 0) {
        *why = "sig is not 128 lowercase hex digits";
        return -1;
    }
    p->signed_len = ts->start - 1;
    return 0;
}

/* ---- signatures ----------------------------------------------------------------------- */

static int ed25519_verify(EVP_PKEY *pub, const char *msg, size_t len, const uint8_t sig[SIG_BYTES])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
             EVP_DigestVerify(ctx, sig, SIG_BYTES, (const unsigned char *)msg, len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

static int ed25519_sign(EVP_PKEY *priv, uint8_t sig[SIG_BYTES], const char *msg, size_t len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sig_len = SIG_BYTES;
    int ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, priv) == 1 &&
             EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)msg, len) == 1 &&
             sig_len == SIG_BYTES;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

ms_err ms_audit_public_key(uint8_t pub[MS_AUDIT_PUBLIC_BYTES], const uint8_t seed[32])
{
    if (pub == NULL || seed == NULL)
        return MS_ERR_ARG;
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    size_t n = MS_AUDIT_PUBLIC_BYTES;
    int ok = k != NULL && EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 &&
             n == MS_AUDIT_PUBLIC_BYTES;
    EVP_PKEY_free(k);
    return ok ? MS_OK : MS_ERR_INTERNAL;
}

/* ---- the writer ------------------------------------------------------------------------ */

static ms_err pread_all(int fd, char *buf, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t n = pread(fd, buf, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return MS_ERR_AUDIT_LOG;
        buf += n;
        len -= (size_t)n;
        off += n;
    }
    return MS_OK;
}

/* Reads the tail of a file of `size` octets and checks that its last entry is signed by
 * this key and (when it is not the first) follows the entry before it. Sets the head. */
static ms_err load_tail(ms_audit *a, off_t size)
{
    if (size == 0) {
        a->seq = 0;
        memset(a->head, 0, sizeof a->head);
        a->size = 0;
        return MS_OK;
    }
    /* Two longest lines and the newline before them. */
    size_t want = 2 * (size_t)MS_AUDIT_LINE_MAX + 1;
    size_t len = (uint64_t)size < want ? (size_t)size : want;
    off_t base = size - (off_t)len;
    char *buf = malloc(len);
    if (buf == NULL)
        return MS_ERR_NOMEM;
    ms_err rc = pread_all(a->fd, buf, len, base);
    if (rc != MS_OK)
        goto out;
    rc = MS_ERR_AUDIT_CHAIN;
    if (buf[len - 1] != '\n')
        goto out; /* partial last line */
    /* [ls, len-1) is the last line; [ps, ls-1) the one before, if any. */
    size_t ls = len - 1;
    while (ls > 0 && buf[ls - 1] != '\n')
        ls--;
    if (ls == 0 && base != 0)
        goto out; /* longer than any entry */
    parsed last, before;
    const char *why;
    if (parse_line(buf + ls, len - 1 - ls, &last, &why) != 0 ||
        !ed25519_verify(a->key, buf + ls, last.signed_len, last.sig))
        goto out;
    static const uint8_t zero[MS_AUDIT_HASH_BYTES];
    if (ls == 0) {
        if (last.seq != 1 || memcmp(last.prev, zero, sizeof zero) != 0)
            goto out;
    } else {
        size_t ps = ls - 1;
        while (ps > 0 && buf[ps - 1] != '\n')
            ps--;
        if (ps == 0 && base != 0)
            goto out;
        uint8_t h[MS_AUDIT_HASH_BYTES];
        if (parse_line(buf + ps, ls - 1 - ps, &before, &why) != 0 ||
            !ed25519_verify(a->key, buf + ps, before.signed_len, before.sig) ||
            before.seq == UINT64_MAX || last.seq != before.seq + 1 ||
            sha256(h, buf + ps, ls - 1 - ps) != 0 || memcmp(h, last.prev, sizeof h) != 0)
            goto out;
    }
    if (sha256(a->head, buf + ls, len - 1 - ls) != 0) {
        rc = MS_ERR_INTERNAL;
        goto out;
    }
    a->seq = last.seq;
    a->size = size;
    rc = MS_OK;
out:
    free(buf);
    return rc;
}

static int lock_file(int fd, int op)
{
    while (flock(fd, op) != 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

/* The path must still name our file, and the file must still be writable: a log that
 * was moved, deleted, replaced or made read-only takes no more entries. */
static int still_ours(const ms_audit *a)
{
    struct stat st;
    return stat(a->path, &st) == 0 && st.st_dev == a->dev && st.st_ino == a->ino &&
           S_ISREG(st.st_mode) && (st.st_mode & S_IWUSR) != 0;
}

static int fsync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (slash == NULL) {
        dir = strdup(".");
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = strndup(path, n);
    }
    if (dir == NULL)
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

void ms_audit_close(ms_audit *a)
{
    if (a == NULL)
        return;
    if (a->fd >= 0)
        close(a->fd);
    EVP_PKEY_free(a->key); /* OpenSSL clears the private key when freeing it */
    free(a->path);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

ms_err ms_audit_open(ms_audit **out, const char *path, const uint8_t seed[32])
{
    if (out == NULL || path == NULL || seed == NULL || *path == '\0')
        return MS_ERR_ARG;
    *out = NULL;
    ms_audit *a = calloc(1, sizeof *a);
    if (a == NULL)
        return MS_ERR_NOMEM;
    a->fd = -1;
    if (pthread_mutex_init(&a->lock, NULL) != 0) {
        free(a);
        return MS_ERR_INTERNAL;
    }
    ms_err rc = MS_ERR_INTERNAL;
    a->key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    if (a->key == NULL || ms_audit_public_key(a->pub, seed) != MS_OK)
        goto fail;

    rc = MS_ERR_AUDIT_LOG;
    int created = 1;
    a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (a->fd < 0 && errno == EEXIST) {
        created = 0;
        a->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
    }
    if (a->fd < 0)
        goto fail;
    struct stat st;
    /* Only a regular file: /dev/null would swallow the entries (fail open). */
    if (fstat(a->fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto fail;
    a->dev = st.st_dev;
    a->ino = st.st_ino;
    /* Absolute, so a later chdir does not make still_ours look elsewhere. */
    free(a->path);
    a->path = realpath(path, NULL);
    if (a->path == NULL)
        goto fail;
    if (!still_ours(a))
        goto fail;
    if (created && (fsync(a->fd) != 0 || fsync_parent(path) != 0))
        goto fail; /* the new directory entry must survive a crash too */
    if (lock_file(a->fd, LOCK_EX) != 0)
        goto fail;
    if (fstat(a->fd, &st) != 0) {
        lock_file(a->fd, LOCK_UN);
        goto fail;
    }
    rc = load_tail(a, st.st_size);
    lock_file(a->fd, LOCK_UN);
    if (rc != MS_OK)
        goto fail;
    *out = a;
    return MS_OK;
fail:
    ms_audit_close(a);
    return rc;
}

ms_err ms_audit_head(ms_audit *a, uint64_t *seq, uint8_t head_hash[MS_AUDIT_HASH_BYTES])
{
    if (a == NULL)
        return MS_ERR_ARG;
    pthread_mutex_lock(&a->lock);
    if (seq != NULL)
        *seq = a->seq;
    if (head_hash != NULL)
        memcpy(head_hash, a->head, MS_AUDIT_HASH_BYTES);
    pthread_mutex_unlock(&a->lock);
    return MS_OK;
}

/* After a failed append: cut off whatever part of the line reached the file. */
static void roll_back(ms_audit *a)
{
    struct stat st;
    if (fstat(a->fd, &st) != 0) {
        a->broken = 1;
        return;
    }
    if (st.st_size == a->size)
        return;
    if (st.st_size < a->size || ftruncate(a->fd, a->size) != 0 || fsync(a->fd) != 0)
        a->broken = 1; /* the file no longer matches the head: refuse until reopened */
}

static ms_err check_args(const char *event, const ms_audit_field *fields, size_t n_fields)
{
    if (event == NULL || !valid_name(event) || (fields == NULL && n_fields > 0) ||
        n_fields > MS_AUDIT_MAX_FIELDS)
        return MS_ERR_ARG;
    for (size_t i = 0; i < n_fields; i++) {
        const char *k = fields[i].key;
        if (k == NULL || fields[i].value == NULL || !valid_name(k) ||
            reserved_key(k, strlen(k)))
            return MS_ERR_ARG;
        for (size_t j = 0; j < i; j++)
            if (strcmp(fields[j].key, k) == 0)
                return MS_ERR_ARG;
    }
    return MS_OK;
}

ms_err ms_audit_append(ms_audit *a, uint64_t ntp_time, const char *event,
                       const ms_audit_field *fields, size_t n_fields, uint64_t *seq,
                       uint8_t head_hash[MS_AUDIT_HASH_BYTES])
{
    if (a == NULL)
        return MS_ERR_ARG;
    ms_err rc = check_args(event, fields, n_fields);
    if (rc != MS_OK)
        return rc;
    if (ntp_time == 0)
        ntp_time = ms_ntp_now() >> 32;
    if (ntp_time > NTP_SECONDS_MAX)
        return MS_ERR_ARG;
    linebuf b = {malloc(MS_AUDIT_LINE_MAX), 0, 0};
    if (b.p == NULL)
        return MS_ERR_NOMEM;

    pthread_mutex_lock(&a->lock);
    rc = MS_ERR_AUDIT_LOG;
    if (a->broken || lock_file(a->fd, LOCK_EX) != 0)
        goto out_unlocked;
    struct stat st;
    if (!still_ours(a) || fstat(a->fd, &st) != 0)
        goto out;
    if (st.st_size != a->size) {
        /* Another handle or process appended: continue after its entries. */
        rc = load_tail(a, st.st_size);
        if (rc != MS_OK)
            goto out;
        rc = MS_ERR_AUDIT_LOG;
    }
    if (a->seq == UINT64_MAX)
        goto out;

    char num[24], tm[TIME_CHARS + 1], prev[2 * MS_AUDIT_HASH_BYTES + 1];
    char sig_hex[2 * SIG_BYTES + 1];
    uint8_t sig[SIG_BYTES], h[MS_AUDIT_HASH_BYTES];
    snprintf(num, sizeof num, "%llu", (unsigned long long)(a->seq + 1));
    ms_time_format(tm, ntp_time);
    ms_hex_encode_lower(prev, a->head, MS_AUDIT_HASH_BYTES);
    prev[sizeof prev - 1] = '\0';
    puts_(&b, "seq=");
    puts_(&b, num);
    puts_(&b, " time=");
    puts_(&b, tm);
    puts_(&b, " event=");
    puts_(&b, event);
    for (size_t i = 0; i < n_fields; i++) {
        put(&b, " ", 1);
        puts_(&b, fields[i].key);
        put(&b, "=", 1);
        put_value(&b, fields[i].value);
    }
    puts_(&b, " prev=");
    puts_(&b, prev);
    size_t signed_len = b.len;
    /* " sig=" + 128 hex + "\n" must fit as well. */
    if (b.over || b.len + 5 + 2 * SIG_BYTES + 1 > MS_AUDIT_LINE_MAX) {
        rc = MS_ERR_ARG;
        goto out;
    }
    if (ed25519_sign(a->key, sig, b.p, signed_len) != 0) {
        rc = MS_ERR_INTERNAL;
        goto out;
    }
    ms_hex_encode_lower(sig_hex, sig, SIG_BYTES);
    sig_hex[sizeof sig_hex - 1] = '\0';
    puts_(&b, " sig=");
    puts_(&b, sig_hex);
    if (sha256(h, b.p, b.len) != 0) {
        rc = MS_ERR_INTERNAL;
        goto out;
    }
    put(&b, "\n", 1);

    /* One write: with O_APPEND the line lands whole at the end, or we undo it. */
    ssize_t n;
    do {
        n = write(a->fd, b.p, b.len);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)b.len) {
        roll_back(a);
        goto out;
    }
    a->seq++;
    memcpy(a->head, h, sizeof h);
    a->size = st.st_size + (off_t)b.len;
    /* Under the mutex, so the copy sees the entries in the log's order. */
    if (a->copy != NULL)
        a->copy(a->copy_ctx, b.p, b.len - 1);
    if (seq != NULL)
        *seq = a->seq;
    if (head_hash != NULL)
        memcpy(head_hash, h, sizeof h);
    rc = MS_OK;
out:
    lock_file(a->fd, LOCK_UN);
out_unlocked:
    pthread_mutex_unlock(&a->lock);
    free(b.p);
    if (rc != MS_OK)
        return rc;
    /* The fsync runs outside the mutex so that appends from several threads share
     * flushes (each returns once its own line is on disk). A failed flush can no longer
     * be undone safely, since later lines may follow: the entry stays (over-reporting
     * is the safe side), this append fails, and the handle refuses further appends. */
    if (fsync(a->fd) != 0) {
        pthread_mutex_lock(&a->lock);
        a->broken = 1;
        pthread_mutex_unlock(&a->lock);
        return MS_ERR_AUDIT_LOG;
    }
    return MS_OK;
}

void ms_audit_set_copy(ms_audit *a, ms_audit_copy_fn fn, void *ctx)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    a->copy = fn;
    a->copy_ctx = ctx;
    pthread_mutex_unlock(&a->lock);
}

/* ---- checkpoints ------------------------------------------------------------------------ */

#define CP_MAGIC "mikeysakke-audit-checkpoint"

ms_err ms_audit_checkpoint(ms_audit *a, uint64_t seq, const uint8_t head[MS_AUDIT_HASH_BYTES],
                           uint64_t ntp_time, char *out, size_t cap)
{
    if (a == NULL || head == NULL || out == NULL || seq == 0)
        return MS_ERR_ARG;
    if (ntp_time == 0)
        ntp_time = ms_ntp_now() >> 32;
    if (ntp_time > NTP_SECONDS_MAX)
        return MS_ERR_ARG;
    char tm[TIME_CHARS + 1], hh[2 * MS_AUDIT_HASH_BYTES + 1], sig_hex[2 * SIG_BYTES + 1];
    ms_time_format(tm, ntp_time);
    ms_hex_encode_lower(hh, head, MS_AUDIT_HASH_BYTES);
    hh[sizeof hh - 1] = '\0';
    char body[MS_AUDIT_CHECKPOINT_MAX];
    int n = snprintf(body, sizeof body, CP_MAGIC " seq=%llu head=%s time=%s",
                     (unsigned long long)seq, hh, tm);
    if (n < 0 || (size_t)n >= sizeof body)
        return MS_ERR_INTERNAL;
    uint8_t sig[SIG_BYTES];
    if (ed25519_sign(a->key, sig, body, (size_t)n) != 0)
        return MS_ERR_INTERNAL;
    ms_hex_encode_lower(sig_hex, sig, SIG_BYTES);
    sig_hex[sizeof sig_hex - 1] = '\0';
    int m = snprintf(out, cap, "%s sig=%s\n", body, sig_hex);
    return m < 0 || (size_t)m >= cap ? MS_ERR_BUFFER_TOO_SMALL : MS_OK;
}

ms_err ms_audit_checkpoint_check(const char *text, const uint8_t pub[MS_AUDIT_PUBLIC_BYTES],
                                 uint64_t *seq, uint8_t head[MS_AUDIT_HASH_BYTES],
                                 char *detail, size_t cap)
{
    ms_detail_set(detail, cap, "%s", "");
    if (text == NULL || pub == NULL || seq == NULL || head == NULL)
        return MS_ERR_ARG;
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    /* magic seq=N head=H time=T sig=S, exactly */
    const char *p = text, *end = text + len;
    size_t ml = strlen(CP_MAGIC);
    uint64_t s = 0;
    const char *sig_at = NULL;
    int ok = len < MS_AUDIT_CHECKPOINT_MAX && (size_t)(end - p) > ml + 5 &&
             memcmp(p, CP_MAGIC " seq=", ml + 5) == 0;
    if (ok) {
        p += ml + 5;
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        ok = sp != NULL && parse_seq(p, (size_t)(sp - p), &s) == 0;
        p = sp;
    }
    ok = ok && (size_t)(end - p) > 6 + 2 * MS_AUDIT_HASH_BYTES && memcmp(p, " head=", 6) == 0 &&
         hex_decode(head, MS_AUDIT_HASH_BYTES, p + 6, 2 * MS_AUDIT_HASH_BYTES) == 0;
    if (ok)
        p += 6 + 2 * MS_AUDIT_HASH_BYTES;
    ok = ok && (size_t)(end - p) > 6 + TIME_CHARS && memcmp(p, " time=", 6) == 0 &&
         valid_time(p + 6, TIME_CHARS);
    if (ok) {
        p += 6 + TIME_CHARS;
        sig_at = p;
    }
    uint8_t sig[SIG_BYTES];
    ok = ok && (size_t)(end - p) == 5 + 2 * SIG_BYTES && memcmp(p, " sig=", 5) == 0 &&
         hex_decode(sig, SIG_BYTES, p + 5, 2 * SIG_BYTES) == 0;
    if (!ok) {
        ms_detail_set(detail, cap,
                      "not a checkpoint: expected \"%s seq=N head=HEX time=UTC sig=HEX\"",
                      CP_MAGIC);
        return MS_ERR_BAD_ENCODING;
    }
    EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub,
                                                MS_AUDIT_PUBLIC_BYTES);
    if (key == NULL)
        return MS_ERR_ARG;
    int good = ed25519_verify(key, text, (size_t)(sig_at - text), sig);
    EVP_PKEY_free(key);
    if (!good) {
        ms_detail_set(detail, cap,
                      "the checkpoint's signature does not verify under the KMS audit key: "
                      "a forged checkpoint, or the audit key of this log was replaced");
        return MS_ERR_AUDIT_CHAIN;
    }
    *seq = s;
    return MS_OK;
}

/* ---- the verifier ---------------------------------------------------------------------- */

/* Reads one line into buf (cap octets) without its "\n". Returns 1 with *complete = 0
 * for a last line lacking its newline, 0 at end of file, -1 on a read error, 2 for a
 * line longer than cap (skipped to its end). */
static int read_line(FILE *f, char *buf, size_t cap, size_t *len, int *complete)
{
    size_t n = 0;
    int c, over = 0;
    while ((c = getc_unlocked(f)) != EOF && c != '\n') {
        if (n < cap)
            buf[n++] = (char)c;
        else
            over = 1;
    }
    if (ferror(f))
        return -1;
    if (c == EOF && n == 0 && !over)
        return 0;
    *len = n;
    *complete = c == '\n';
    return over ? 2 : 1;
}

/* After a sequence jump from `want` to a higher seq: do the missing numbers appear
 * further on (entries reordered) or not at all (removed)? Reads the rest of f. */
static int missing_seq_later(FILE *f, char *buf, size_t cap, uint64_t want, uint64_t got)
{
    size_t len;
    int complete, r;
    while ((r = read_line(f, buf, cap, &len, &complete)) > 0) {
        uint64_t s;
        size_t k = 4;
        if (r != 1 || len < 5 || memcmp(buf, "seq=", 4) != 0)
            continue;
        while (k < len && buf[k] != ' ')
            k++;
        if (parse_seq(buf + 4, k - 4, &s) == 0 && s >= want && s < got)
            return 1;
    }
    return 0;
}

ms_err ms_audit_verify(const char *path, const uint8_t pub[MS_AUDIT_PUBLIC_BYTES],
                       uint64_t expect_seq, const uint8_t *expect_hash,
                       uint64_t *n_entries, uint64_t *first_bad, char *detail, size_t cap)
{
    if (n_entries != NULL)
        *n_entries = 0;
    if (first_bad != NULL)
        *first_bad = 0;
    ms_detail_set(detail, cap, "%s", "");
    if (path == NULL || pub == NULL)
        return MS_ERR_ARG;
    EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub,
                                                MS_AUDIT_PUBLIC_BYTES);
    if (key == NULL)
        return MS_ERR_ARG;
    char *buf = malloc(MS_AUDIT_LINE_MAX);
    FILE *f = fopen(path, "rb");
    ms_err rc = buf == NULL ? MS_ERR_NOMEM : MS_ERR_IO;
    if (buf == NULL || f == NULL) {
        ms_detail_set(detail, cap, "cannot read %s: %s", path,
                      buf == NULL ? "out of memory" : strerror(errno));
        goto out;
    }
    uint8_t head[MS_AUDIT_HASH_BYTES] = {0}, at_expect[MS_AUDIT_HASH_BYTES];
    uint64_t count = 0, line_no = 0, bad = 0;
    int have_expect = 0;
    rc = MS_ERR_AUDIT_CHAIN;
    for (;;) {
        size_t len;
        int complete;
        int r = read_line(f, buf, MS_AUDIT_LINE_MAX - 1, &len, &complete);
        if (r == 0)
            break;
        line_no++;
        bad = line_no;
        if (r < 0) {
            rc = MS_ERR_IO;
            ms_detail_set(detail, cap, "read error at line %llu", (unsigned long long)line_no);
            goto out;
        }
        if (!complete) {
            ms_detail_set(detail, cap,
                "line %llu: partial last line (no newline): a crash while writing, or the "
                "file was cut off",
                (unsigned long long)line_no);
            goto out;
        }
        if (r == 2) {
            ms_detail_set(detail, cap, "line %llu: malformed entry: longer than %d octets",
                (unsigned long long)line_no, MS_AUDIT_LINE_MAX);
            goto out;
        }
        parsed p;
        const char *why;
        if (parse_line(buf, len, &p, &why) != 0) {
            ms_detail_set(detail, cap, "line %llu: malformed entry: %s",
                          (unsigned long long)line_no, why);
            goto out;
        }
        if (!ed25519_verify(key, buf, p.signed_len, p.sig)) {
            ms_detail_set(detail, cap,
                "line %llu (seq %llu): signature does not verify: entry altered, or not "
                "signed by this audit key",
                (unsigned long long)line_no, (unsigned long long)p.seq);
            goto out;
        }
        uint64_t want = count + 1;
        if (p.seq < want) {
            ms_detail_set(detail, cap,
                "line %llu: seq %llu after seq %llu: entries reordered (or repeated)",
                (unsigned long long)line_no, (unsigned long long)p.seq,
                (unsigned long long)count);
            goto out;
        }
        if (p.seq > want) {
            uint64_t got = p.seq;
            if (missing_seq_later(f, buf, MS_AUDIT_LINE_MAX - 1, want, got))
                ms_detail_set(detail, cap,
                    "line %llu: seq %llu where %llu was expected, which comes later: "
                    "entries reordered",
                    (unsigned long long)line_no, (unsigned long long)got,
                    (unsigned long long)want);
            else
                ms_detail_set(detail, cap,
                    "line %llu: seq %llu where %llu was expected: %llu entr%s removed",
                    (unsigned long long)line_no, (unsigned long long)got,
                    (unsigned long long)want, (unsigned long long)(got - want),
                    got - want == 1 ? "y" : "ies");
            goto out;
        }
        if (CRYPTO_memcmp(p.prev, head, sizeof head) != 0) {
            ms_detail_set(detail, cap,
                "line %llu (seq %llu): previous-hash mismatch: it does not follow the entry "
                "before it (an entry removed or replaced)",
                (unsigned long long)line_no, (unsigned long long)p.seq);
            goto out;
        }
        if (sha256(head, buf, len) != 0) {
            rc = MS_ERR_INTERNAL;
            goto out;
        }
        count++;
        if (n_entries != NULL)
            *n_entries = count;
        if (expect_seq > 0 && count == expect_seq) {
            memcpy(at_expect, head, sizeof head);
            have_expect = 1;
        }
    }
    bad = 0;
    if (expect_seq > 0 && !have_expect) {
        bad = line_no + 1;
        ms_detail_set(detail, cap,
            "log ends at seq %llu but seq %llu was expected: entries removed from the end "
            "(truncated)",
            (unsigned long long)count, (unsigned long long)expect_seq);
        goto out;
    }
    if (expect_seq > 0 && expect_hash != NULL &&
        CRYPTO_memcmp(at_expect, expect_hash, sizeof at_expect) != 0) {
        bad = expect_seq;
        ms_detail_set(detail, cap,
            "entry seq %llu differs from the expected head hash: entries replaced after "
            "it was recorded, or another log",
            (unsigned long long)expect_seq);
        goto out;
    }
    char hh[2 * MS_AUDIT_HASH_BYTES + 1];
    ms_hex_encode_lower(hh, head, sizeof head);
    hh[sizeof hh - 1] = '\0';
    ms_detail_set(detail, cap, "%llu entries verified; head seq=%llu sha256=%s",
        (unsigned long long)count, (unsigned long long)count, hh);
    rc = MS_OK;
out:
    if (rc == MS_ERR_AUDIT_CHAIN && first_bad != NULL)
        *first_bad = bad;
    if (f != NULL)
        fclose(f);
    free(buf);
    EVP_PKEY_free(key);
    return rc;
}
