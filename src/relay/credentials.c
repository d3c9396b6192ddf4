/* Mailbox owners' password hashes: see credentials.h. */
#include "relay/credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "relay/divert.h"
#include "util/detail.h"
#include "util/file.h"
#include "util/hex.h"

#define SALT_LEN 16
#define HASH_LEN 32
#define MIN_ITERATIONS 1000u
#define MAX_ITERATIONS 100000000u
#define MAX_FILE (4u * 1024u * 1024u)
#define MAX_AUTH_HEADER 2048u
#define SCHEME "pbkdf2-sha256"

typedef struct cred {
    char uri[MS_VM_URI_MAX];
    uint32_t iterations;
    uint8_t salt[SALT_LEN];
    uint8_t hash[HASH_LEN];
} cred;

typedef struct table {
    cred *v;
    size_t n;
} table;

typedef struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_id;

struct ms_vm_credentials {
    char *path;
    pthread_rwlock_t lock;
    table t;
    file_id id;
    cred dummy; /* what an unknown user's password is checked against */
};

static void table_free(table *t)
{
    if (t->v != NULL) {
        OPENSSL_cleanse(t->v, t->n * sizeof *t->v);
        free(t->v);
    }
    t->v = NULL;
    t->n = 0;
}

/* Reads a whole credentials file (checking its type and mode) into a NUL-terminated
 * buffer. */
static ms_err read_file(const char *path, char **out, file_id *id, char *detail,
                        size_t detail_cap)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ms_detail_set(detail, detail_cap, "credentials %s: %s", path, strerror(errno));
        return MS_ERR_IO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        ms_detail_set(detail, detail_cap, "credentials %s: not a regular file", path);
        return MS_ERR_KEYFILE_MODE;
    }
    if ((sb.st_mode & 077) != 0) {
        close(fd);
        ms_detail_set(detail, detail_cap,
                   "credentials %s: mode %04o lets other users read it (use 0600)", path,
                   (unsigned)(sb.st_mode & 07777));
        return MS_ERR_KEYFILE_MODE;
    }
    if ((unsigned long long)sb.st_size > MAX_FILE) {
        close(fd);
        ms_detail_set(detail, detail_cap, "credentials %s: too large", path);
        return MS_ERR_IO;
    }
    size_t want = (size_t)sb.st_size, got = 0;
    char *buf = malloc(want + 1);
    if (buf == NULL) {
        close(fd);
        return MS_ERR_NOMEM;
    }
    while (got < want) {
        ssize_t r = read(fd, buf + got, want - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != want) {
        free(buf);
        ms_detail_set(detail, detail_cap, "credentials %s: short read", path);
        return MS_ERR_IO;
    }
    buf[want] = '\0';
    if (id != NULL) {
        id->dev = sb.st_dev;
        id->ino = sb.st_ino;
        id->size = sb.st_size;
        id->mtime = sb.st_mtim;
    }
    *out = buf;
    return MS_OK;
}

/* Parses the file text; every line must be a comment, blank or an entry. */
static ms_err parse(const char *path, char *text, table *t, char *detail, size_t detail_cap)
{
    t->v = NULL;
    t->n = 0;
    size_t cap = 0, lineno = 0;
    char *save = NULL;
    ms_err e = MS_OK;
    for (char *line = text; line != NULL && *line != '\0'; line = save) {
        lineno++;
        char *nl = strchr(line, '\n');
        save = nl != NULL ? nl + 1 : NULL;
        if (nl != NULL)
            *nl = '\0';
        size_t ll = strlen(line);
        if (ll > 0 && line[ll - 1] == '\r')
            line[--ll] = '\0';
        char *p = line + strspn(line, " \t");
        if (*p == '\0' || *p == '#')
            continue;
        char *f[6];
        int nf = 0;
        char *fields = NULL;
        for (char *tok = strtok_r(p, " \t", &fields); tok != NULL && nf < 6;
             tok = strtok_r(NULL, " \t", &fields))
            f[nf++] = tok;
        cred c;
        memset(&c, 0, sizeof c);
        const char *why = NULL;
        char *end = NULL;
        unsigned long long it = 0;
        if (nf != 5)
            why = "want \"URI pbkdf2-sha256 ITERATIONS SALT HASH\"";
        else if (ms_vm_uri_normalise(f[0], c.uri, sizeof c.uri) != MS_OK)
            why = "not a mailbox URI (sip:user@domain or tel:number)";
        else if (strcmp(f[1], SCHEME) != 0)
            why = "unknown hash scheme (want pbkdf2-sha256)";
        else if ((errno = 0, it = strtoull(f[2], &end, 10), errno != 0) || *end != '\0' ||
                 f[2][0] < '0' || f[2][0] > '9' || it < MIN_ITERATIONS || it > MAX_ITERATIONS)
            why = "iterations not a number between 1000 and 100000000";
        else if (ms_hex_decode_secret(c.salt, SALT_LEN, f[3], strlen(f[3])) != MS_OK)
            why = "salt is not 32 hex digits";
        else if (ms_hex_decode_secret(c.hash, HASH_LEN, f[4], strlen(f[4])) != MS_OK)
            why = "hash is not 64 hex digits";
        for (size_t i = 0; why == NULL && i < t->n; i++)
            if (strcmp(t->v[i].uri, c.uri) == 0)
                why = "mailbox given twice";
        if (why != NULL) {
            ms_detail_set(detail, detail_cap, "%s:%zu: %s", path, lineno, why);
            e = MS_ERR_CONFIG;
            OPENSSL_cleanse(&c, sizeof c);
            break;
        }
        c.iterations = (uint32_t)it;
        if (t->n == cap) {
            size_t ncap = cap != 0 ? 2 * cap : 8;
            cred *nv = malloc(ncap * sizeof *nv);
            if (nv == NULL) {
                e = MS_ERR_NOMEM;
                break;
            }
            if (t->v != NULL) {
                memcpy(nv, t->v, t->n * sizeof *nv);
                OPENSSL_cleanse(t->v, t->n * sizeof *nv);
                free(t->v);
            }
            t->v = nv;
            cap = ncap;
        }
        t->v[t->n++] = c;
        OPENSSL_cleanse(&c, sizeof c);
    }
    if (e != MS_OK)
        table_free(t);
    return e;
}

static ms_err load_table(const char *path, table *t, file_id *id, char *detail,
                         size_t detail_cap)
{
    char *text = NULL;
    ms_err e = read_file(path, &text, id, detail, detail_cap);
    if (e != MS_OK)
        return e;
    e = parse(path, text, t, detail, detail_cap);
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    return e;
}

/* The dummy takes the strongest iteration count in use, so an unknown user is not
 * answered faster than any known one. */
static ms_err set_dummy(ms_vm_credentials *c)
{
    uint32_t it = MIN_ITERATIONS;
    for (size_t i = 0; i < c->t.n; i++)
        if (c->t.v[i].iterations > it)
            it = c->t.v[i].iterations;
    if (c->t.n == 0)
        it = MS_VM_PBKDF2_ITERATIONS;
    c->dummy.iterations = it;
    snprintf(c->dummy.uri, sizeof c->dummy.uri, "sip:-@-");
    if (RAND_bytes(c->dummy.salt, SALT_LEN) != 1 || RAND_bytes(c->dummy.hash, HASH_LEN) != 1)
        return MS_ERR_RNG;
    return MS_OK;
}

ms_err ms_vm_credentials_load(ms_vm_credentials **out, const char *path, char *detail,
                              size_t detail_cap)
{
    if (out == NULL || path == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    ms_vm_credentials *c = calloc(1, sizeof *c);
    if (c == NULL)
        return MS_ERR_NOMEM;
    c->path = strdup(path);
    if (c->path == NULL) {
        free(c);
        return MS_ERR_NOMEM;
    }
    ms_err e = load_table(path, &c->t, &c->id, detail, detail_cap);
    if (e == MS_OK)
        e = set_dummy(c);
    if (e != MS_OK) {
        table_free(&c->t);
        free(c->path);
        free(c);
        return e;
    }
    pthread_rwlock_init(&c->lock, NULL);
    *out = c;
    return MS_OK;
}

void ms_vm_credentials_free(ms_vm_credentials *c)
{
    if (c == NULL)
        return;
    table_free(&c->t);
    OPENSSL_cleanse(&c->dummy, sizeof c->dummy);
    pthread_rwlock_destroy(&c->lock);
    free(c->path);
    free(c);
}

static bool same_file(const file_id *a, const struct stat *sb)
{
    return a->dev == sb->st_dev && a->ino == sb->st_ino && a->size == sb->st_size &&
           a->mtime.tv_sec == sb->st_mtim.tv_sec && a->mtime.tv_nsec == sb->st_mtim.tv_nsec;
}

ms_err ms_vm_credentials_refresh(ms_vm_credentials *c, char *detail, size_t detail_cap)
{
    if (c == NULL)
        return MS_ERR_ARG;
    struct stat sb;
    if (stat(c->path, &sb) != 0) {
        ms_detail_set(detail, detail_cap, "credentials %s: %s (previous table kept)", c->path,
                   strerror(errno));
        return MS_ERR_IO;
    }
    pthread_rwlock_rdlock(&c->lock);
    bool same = same_file(&c->id, &sb);
    pthread_rwlock_unlock(&c->lock);
    if (same)
        return MS_OK;
    table t;
    file_id id;
    ms_err e = load_table(c->path, &t, &id, detail, detail_cap);
    if (e != MS_OK)
        return e;
    pthread_rwlock_wrlock(&c->lock);
    table_free(&c->t);
    c->t = t;
    c->id = id;
    e = set_dummy(c);
    pthread_rwlock_unlock(&c->lock);
    return e;
}

size_t ms_vm_credentials_count(ms_vm_credentials *c)
{
    if (c == NULL)
        return 0;
    pthread_rwlock_rdlock(&c->lock);
    size_t n = c->t.n;
    pthread_rwlock_unlock(&c->lock);
    return n;
}

static const cred *find(const table *t, const char *norm)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].uri, norm) == 0)
            return &t->v[i];
    return NULL;
}

bool ms_vm_credentials_has(ms_vm_credentials *c, const char *uri)
{
    char norm[MS_VM_URI_MAX];
    if (c == NULL || uri == NULL || ms_vm_uri_normalise(uri, norm, sizeof norm) != MS_OK)
        return false;
    pthread_rwlock_rdlock(&c->lock);
    bool found = find(&c->t, norm) != NULL;
    pthread_rwlock_unlock(&c->lock);
    return found;
}

static bool derive(const cred *r, const uint8_t *pw, size_t pw_len, uint8_t out[HASH_LEN])
{
    static const char empty[1] = "";
    if (pw_len > (size_t)INT32_MAX)
        return false;
    return PKCS5_PBKDF2_HMAC(pw_len > 0 ? (const char *)pw : empty, (int)pw_len, r->salt,
                             SALT_LEN, (int)r->iterations, EVP_sha256(), HASH_LEN, out) == 1;
}

bool ms_vm_credentials_check(ms_vm_credentials *c, const char *uri, const uint8_t *password,
                             size_t password_len, char *out, size_t out_cap)
{
    if (out != NULL && out_cap > 0)
        out[0] = '\0';
    if (c == NULL || (password == NULL && password_len != 0))
        return false;
    char norm[MS_VM_URI_MAX];
    bool uri_ok = uri != NULL && ms_vm_uri_normalise(uri, norm, sizeof norm) == MS_OK;
    pthread_rwlock_rdlock(&c->lock);
    const cred *r = uri_ok ? find(&c->t, norm) : NULL;
    bool known = r != NULL;
    if (!known)
        r = &c->dummy; /* the same work whether or not the mailbox exists */
    uint8_t got[HASH_LEN];
    bool derived = derive(r, password, password_len, got);
    bool ok = derived && CRYPTO_memcmp(got, r->hash, HASH_LEN) == 0 && known;
    pthread_rwlock_unlock(&c->lock);
    OPENSSL_cleanse(got, sizeof got);
    if (ok && out != NULL) {
        if (strlen(norm) >= out_cap)
            return false;
        memcpy(out, norm, strlen(norm) + 1);
    }
    return ok;
}

bool ms_vm_credentials_check_basic(ms_vm_credentials *c, const char *authorization, char *out,
                                   size_t out_cap)
{
    if (out != NULL && out_cap > 0)
        out[0] = '\0';
    if (c == NULL || authorization == NULL || strncasecmp(authorization, "Basic ", 6) != 0)
        return false;
    const char *b64 = authorization + 6;
    while (*b64 == ' ')
        b64++;
    size_t bl = strlen(b64);
    while (bl > 0 && (b64[bl - 1] == ' ' || b64[bl - 1] == '\t'))
        bl--;
    if (bl == 0 || bl % 4 != 0 || bl > MAX_AUTH_HEADER)
        return false;
    uint8_t dec[MAX_AUTH_HEADER];
    int dl = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)bl);
    if (dl < 0)
        return false;
    size_t n = (size_t)dl;
    /* EVP_DecodeBlock counts the padding as zero octets. */
    if (b64[bl - 1] == '=')
        n--;
    if (b64[bl - 2] == '=')
        n--;
    /* user-id: the URI with its scheme, up to the colon after the scheme's one. */
    const uint8_t *colon1 = memchr(dec, ':', n);
    bool ok = false;
    if (colon1 != NULL) {
        size_t sl = (size_t)(colon1 - dec);
        bool scheme = (sl == 3 && (strncasecmp((const char *)dec, "sip", 3) == 0 ||
                                   strncasecmp((const char *)dec, "tel", 3) == 0)) ||
                      (sl == 4 && strncasecmp((const char *)dec, "sips", 4) == 0);
        const uint8_t *sep = colon1;
        if (scheme)
            sep = memchr(colon1 + 1, ':', n - sl - 1);
        if (sep != NULL) {
            size_t ul = (size_t)(sep - dec);
            char user[MS_VM_URI_MAX + 8];
            if (ul + 5 < sizeof user && memchr(dec, '\0', ul) == NULL) {
                snprintf(user, sizeof user, "%s%.*s", scheme ? "" : "sip:", (int)ul,
                         (const char *)dec);
                ok = ms_vm_credentials_check(c, user, sep + 1, n - ul - 1, out, out_cap);
            }
        }
    }
    OPENSSL_cleanse(dec, sizeof dec);
    return ok;
}

ms_err ms_vm_credentials_add(const char *path, const char *uri, const uint8_t *password,
                             size_t password_len, uint32_t iterations, char *detail,
                             size_t detail_cap)
{
    if (path == NULL || uri == NULL || password == NULL)
        return MS_ERR_ARG;
    if (password_len == 0) {
        ms_detail_set(detail, detail_cap, "empty password");
        return MS_ERR_ARG;
    }
    if (iterations == 0)
        iterations = MS_VM_PBKDF2_ITERATIONS;
    if (iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
        ms_detail_set(detail, detail_cap, "iterations must be between 1000 and 100000000");
        return MS_ERR_ARG;
    }
    cred r;
    memset(&r, 0, sizeof r);
    if (ms_vm_uri_normalise(uri, r.uri, sizeof r.uri) != MS_OK) {
        ms_detail_set(detail, detail_cap, "\"%s\" is not a mailbox URI (sip:user@domain or "
                   "tel:number)", uri);
        return MS_ERR_IDENTITY;
    }
    /* The current file, checked whole: a malformed one is not silently rewritten. */
    char *old = NULL;
    ms_err e = MS_OK;
    if (access(path, F_OK) == 0) {
        e = read_file(path, &old, NULL, detail, detail_cap);
        if (e == MS_OK) {
            char *copy = strdup(old);
            table t;
            e = copy == NULL ? MS_ERR_NOMEM : parse(path, copy, &t, detail, detail_cap);
            if (e == MS_OK)
                table_free(&t);
            free(copy);
        }
        if (e != MS_OK) {
            free(old);
            return e;
        }
    }
    r.iterations = iterations;
    if (RAND_bytes(r.salt, SALT_LEN) != 1) {
        free(old);
        return MS_ERR_RNG;
    }
    if (!derive(&r, password, password_len, r.hash)) {
        free(old);
        return MS_ERR_INTERNAL;
    }
    size_t cap = (old != NULL ? strlen(old) : 0) + 512, len = 0;
    char *text = malloc(cap);
    if (text == NULL) {
        free(old);
        OPENSSL_cleanse(&r, sizeof r);
        return MS_ERR_NOMEM;
    }
    bool replaced = false;
    char salt_hex[2 * SALT_LEN + 1], hash_hex[2 * HASH_LEN + 1], entry[512];
    ms_hex_encode_lower(salt_hex, r.salt, SALT_LEN);
    ms_hex_encode_lower(hash_hex, r.hash, HASH_LEN);
    int el = snprintf(entry, sizeof entry, "%s %s %u %s %s\n", r.uri, SCHEME,
                      (unsigned)r.iterations, salt_hex, hash_hex);
    /* Keep every other line as it was (comments included); replace this owner's. */
    for (char *line = old, *next = NULL; line != NULL && *line != '\0'; line = next) {
        char *nl = strchr(line, '\n');
        next = nl != NULL ? nl + 1 : NULL;
        size_t ll = nl != NULL ? (size_t)(nl - line) : strlen(line);
        char first[MS_VM_URI_MAX + 8] = "", norm[MS_VM_URI_MAX];
        size_t skip = strspn(line, " \t");
        size_t fl = strcspn(line + skip, " \t\r\n");
        if (fl < sizeof first && line[skip] != '#') {
            memcpy(first, line + skip, fl);
            first[fl] = '\0';
        }
        if (first[0] != '\0' && ms_vm_uri_normalise(first, norm, sizeof norm) == MS_OK &&
            strcmp(norm, r.uri) == 0) {
            memcpy(text + len, entry, (size_t)el);
            len += (size_t)el;
            replaced = true;
        } else {
            memcpy(text + len, line, ll);
            len += ll;
            text[len++] = '\n';
        }
    }
    if (!replaced) {
        memcpy(text + len, entry, (size_t)el);
        len += (size_t)el;
    }
    OPENSSL_cleanse(&r, sizeof r);
    OPENSSL_cleanse(entry, sizeof entry);
    if (old != NULL) {
        OPENSSL_cleanse(old, strlen(old));
        free(old);
    }

    e = ms_file_write_atomic(path, text, len, 0600, MS_FILE_REPLACE, detail, detail_cap);
    OPENSSL_cleanse(text, len);
    free(text);
    return e;
}
