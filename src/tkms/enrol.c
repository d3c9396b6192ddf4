/*
 * Device enrolment at one threshold server (see enrol.h).
 */
#include "tkms/enrol.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tkms/node.h"
#include "util/detail.h"
#include "util/file.h"
#include "util/hex.h"

#define DEVICE_HEADER "mikeysakke-tkms-device 1\n"
#define TABLE_HEADER "mikeysakke-tkms-devices 1\n"
#define LINE_MAX_LEN (MS_TKMS_URI_MAX + MS_TKMS_DEVICE_ID_MAX + 200)
#define FILE_MAX (16u * 1024u * 1024u)

bool ms_tkms_device_id_ok(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;
    if (n == 0 || n > MS_TKMS_DEVICE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              c == '.' || c == '_' || c == '-' || c == ':' || c == '@'))
            return false;
    }
    return true;
}

bool ms_tkms_uri_ok(const char *uri)
{
    size_t n = uri != NULL ? strlen(uri) : 0;
    if (n == 0 || n > MS_TKMS_URI_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)uri[i] <= ' ' || (unsigned char)uri[i] >= 0x7f)
            return false;
    return true;
}

/* Reads a small text file whole, NUL-terminated. */
static ms_err read_text(const char *path, char **out, size_t *len)
{
    uint8_t *b = NULL;
    ms_err e = ms_file_read(path, FILE_MAX, &b, len);
    *out = (char *)b;
    return e;
}

static ms_err hex32(const char *v, uint8_t out[32])
{
    return strlen(v) == 64 && ms_hex_decode(out, 32, v, 64) == MS_OK ? MS_OK : MS_ERR_CONFIG;
}

ms_err ms_tkms_device_file_write(const char *path, const ms_tkms_device *d, char *detail,
                                 size_t detail_cap)
{
    if (path == NULL || d == NULL || !ms_tkms_uri_ok(d->user) ||
        !ms_tkms_device_id_ok(d->device_id))
        return MS_ERR_ARG;
    char h[65], s[65], text[LINE_MAX_LEN * 2];
    ms_hex_encode_lower(h, d->hpke_pub, 32);
    ms_hex_encode_lower(s, d->sign_pub, 32);
    h[64] = s[64] = '\0';
    int n = snprintf(text, sizeof text, DEVICE_HEADER "user %s\ndevice %s\nhpke %s\nsign %s\n",
                     d->user, d->device_id, h, s);
    return ms_file_write_atomic(path, text, (size_t)n, 0644, MS_FILE_NO_REPLACE, detail,
                                detail_cap);
}

ms_err ms_tkms_device_file_read(const char *path, ms_tkms_device *d, char *detail,
                                size_t detail_cap)
{
    if (path == NULL || d == NULL)
        return MS_ERR_ARG;
    memset(d, 0, sizeof *d);
    char *text = NULL;
    size_t len = 0;
    if (read_text(path, &text, &len) != MS_OK)
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap, "cannot read %s", path);
    ms_err e = MS_OK;
    unsigned seen = 0, line = 0;
    char *save = NULL;
    if (strncmp(text, DEVICE_HEADER, sizeof DEVICE_HEADER - 1) != 0)
        e = ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap,
                           "%s: not a device file (no \"mikeysakke-tkms-device 1\" line)", path);
    for (char *l = e == MS_OK ? strtok_r(text + sizeof DEVICE_HEADER - 1, "\n", &save) : NULL;
         l != NULL && e == MS_OK; l = strtok_r(NULL, "\n", &save)) {
        line++;
        char *v = strchr(l, ' ');
        if (v == NULL) {
            e = MS_ERR_CONFIG;
        } else {
            *v++ = '\0';
            if (strcmp(l, "user") == 0 && ms_tkms_uri_ok(v)) {
                snprintf(d->user, sizeof d->user, "%s", v);
                seen |= 1;
            } else if (strcmp(l, "device") == 0 && ms_tkms_device_id_ok(v)) {
                snprintf(d->device_id, sizeof d->device_id, "%s", v);
                seen |= 2;
            } else if (strcmp(l, "hpke") == 0 && hex32(v, d->hpke_pub) == MS_OK) {
                seen |= 4;
            } else if (strcmp(l, "sign") == 0 && hex32(v, d->sign_pub) == MS_OK) {
                seen |= 8;
            } else {
                e = MS_ERR_CONFIG;
            }
        }
        if (e != MS_OK)
            ms_detail_set(detail, detail_cap, "%s line %u: not \"user URI\", \"device ID\", "
                          "\"hpke HEX\" or \"sign HEX\"", path, line + 1);
    }
    if (e == MS_OK && seen != 15)
        e = ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap,
                           "%s: user, device, hpke and sign lines are all needed", path);
    free(text);
    return e;
}

/* ---- the server's table ------------------------------------------------------------------- */

typedef struct table {
    ms_tkms_device *dev;
    size_t n, cap;
} table;

static void table_free(table *t)
{
    free(t->dev);
    t->dev = NULL;
    t->n = t->cap = 0;
}

static ms_err table_add(table *t, const ms_tkms_device *d)
{
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 16;
        ms_tkms_device *nd = realloc(t->dev, nc * sizeof *nd);
        if (nd == NULL)
            return MS_ERR_NOMEM;
        t->dev = nd;
        t->cap = nc;
    }
    t->dev[t->n++] = *d;
    return MS_OK;
}

/* Parses devices.txt; a missing file is an empty table. */
static ms_err table_read(const char *path, table *t, char *detail, size_t detail_cap)
{
    memset(t, 0, sizeof *t);
    char *text = NULL;
    size_t len = 0;
    if (read_text(path, &text, &len) != MS_OK)
        return errno == ENOENT ? MS_OK
                               : ms_detail_fail(MS_ERR_IO, detail, detail_cap, "cannot read %s",
                                                path);
    ms_err e = MS_OK;
    if (strncmp(text, TABLE_HEADER, sizeof TABLE_HEADER - 1) != 0)
        e = ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap, "%s: not a devices table", path);
    char *save = NULL;
    unsigned line = 1;
    for (char *l = e == MS_OK ? strtok_r(text + sizeof TABLE_HEADER - 1, "\n", &save) : NULL;
         l != NULL && e == MS_OK; l = strtok_r(NULL, "\n", &save)) {
        line++;
        ms_tkms_device d;
        memset(&d, 0, sizeof d);
        char id[MS_TKMS_DEVICE_ID_MAX + 2], h[66], s[66], uri[MS_TKMS_URI_MAX + 2];
        int used = 0;
        if (sscanf(l, "device %65s hpke=%65s sign=%65s %256s%n", id, h, s, uri, &used) != 4 ||
            l[used] != '\0' || !ms_tkms_device_id_ok(id) || !ms_tkms_uri_ok(uri) ||
            hex32(h, d.hpke_pub) != MS_OK || hex32(s, d.sign_pub) != MS_OK) {
            e = ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap, "%s line %u is malformed",
                               path, line);
            break;
        }
        memcpy(d.device_id, id, strlen(id) + 1); /* lengths checked by the _ok rules */
        memcpy(d.user, uri, strlen(uri) + 1);
        e = table_add(t, &d);
    }
    free(text);
    if (e != MS_OK)
        table_free(t);
    return e;
}

static ms_err table_write(const char *path, const table *t, char *detail, size_t detail_cap)
{
    size_t cap = sizeof TABLE_HEADER + t->n * LINE_MAX_LEN, n = 0;
    char *text = malloc(cap);
    if (text == NULL)
        return MS_ERR_NOMEM;
    n += (size_t)snprintf(text, cap, "%s", TABLE_HEADER);
    for (size_t i = 0; i < t->n; i++) {
        char h[65], s[65];
        ms_hex_encode_lower(h, t->dev[i].hpke_pub, 32);
        ms_hex_encode_lower(s, t->dev[i].sign_pub, 32);
        h[64] = s[64] = '\0';
        n += (size_t)snprintf(text + n, cap - n, "device %s hpke=%s sign=%s %s\n",
                              t->dev[i].device_id, h, s, t->dev[i].user);
    }
    ms_err e = ms_file_write_atomic(path, text, n, 0644, MS_FILE_REPLACE, detail, detail_cap);
    free(text);
    return e;
}

/* Whether uri has a slot in some batch of dir (the batch-P.records files). */
static bool user_known(const char *dir, const char *uri)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return false;
    static const char hdr[] = "mikeysakke-tkms-records 1\n";
    size_t ul = strlen(uri);
    bool found = false;
    struct dirent *ent;
    while (!found && (ent = readdir(d)) != NULL) {
        size_t nl = strlen(ent->d_name);
        if (strncmp(ent->d_name, "batch-", 6) != 0 || nl < 14 ||
            strcmp(ent->d_name + nl - 8, ".records") != 0)
            continue;
        char path[MS_TKMS_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
        uint8_t *text = NULL;
        size_t len = 0;
        /* a records file is large (about 1 KB an identity): no cap */
        if (ms_file_read(path, SIZE_MAX, &text, &len) != MS_OK)
            continue;
        const uint8_t *p = text;
        size_t o = sizeof hdr - 1;
        if (len < o || memcmp(p, hdr, o) != 0)
            o = len;
        while (!found && o + 2 <= len) {
            size_t l = (size_t)p[o] << 8 | p[o + 1];
            if (o + 2 + l > len)
                break;
            const uint8_t *id = p + o + 2;
            /* identifier: period NUL uri NUL */
            const uint8_t *nul = memchr(id, 0, l);
            if (nul != NULL && (size_t)(nul - id) + 2 + ul == l && memcmp(nul + 1, uri, ul) == 0)
                found = true;
            ms_tkms_record r;
            size_t used = 0;
            if (ms_tkms_record_decode(&r, p + o + 2 + l, len - (o + 2 + l), &used) != MS_OK)
                break;
            o += 2 + l + used;
        }
        free(text);
    }
    closedir(d);
    return found;
}

ms_err ms_tkms_enrol(const char *dir, ms_audit *log, const ms_tkms_device *d, char *detail,
                     size_t detail_cap)
{
    if (dir == NULL || log == NULL || d == NULL)
        return MS_ERR_ARG;
    if (!ms_tkms_uri_ok(d->user) || !ms_tkms_device_id_ok(d->device_id))
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "malformed user or device id");
    if (!user_known(dir, d->user))
        return ms_detail_fail(MS_ERR_USER_UNKNOWN, detail, detail_cap,
                              "%s has no keys in any batch of this server: not enrolled",
                              d->user);
    char path[MS_TKMS_PATH_MAX], lock_path[MS_TKMS_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, MS_TKMS_DEVICES_FILE);
    snprintf(lock_path, sizeof lock_path, "%s/devices.lock", dir);
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) != 0) {
        if (lock >= 0)
            close(lock);
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap, "cannot lock %s", lock_path);
    }
    table t;
    ms_err e = table_read(path, &t, detail, detail_cap);
    for (size_t i = 0; e == MS_OK && i < t.n; i++) {
        const ms_tkms_device *o = &t.dev[i];
        if (strcmp(o->user, d->user) == 0 && strcmp(o->device_id, d->device_id) == 0)
            e = ms_detail_fail(MS_ERR_EXISTS, detail, detail_cap,
                               "device %s of %s is enrolled already", d->device_id, d->user);
        else if (memcmp(o->hpke_pub, d->hpke_pub, 32) == 0 ||
                 memcmp(o->sign_pub, d->sign_pub, 32) == 0)
            e = ms_detail_fail(MS_ERR_EXISTS, detail, detail_cap,
                               "a key of this device is enrolled already (device %s of %s)",
                               o->device_id, o->user);
    }
    if (e == MS_OK) {
        /* logged before it takes effect: an enrolment never goes unlogged */
        char h[65], s[65];
        ms_hex_encode_lower(h, d->hpke_pub, 32);
        ms_hex_encode_lower(s, d->sign_pub, 32);
        h[64] = s[64] = '\0';
        ms_audit_field f[] = {{"user", d->user}, {"device", d->device_id},
                              {"hpke", h}, {"sign", s}};
        if (ms_audit_append(log, 0, "enrol", f, 4, NULL, NULL) != MS_OK)
            e = ms_detail_fail(MS_ERR_AUDIT_LOG, detail, detail_cap,
                               "the audit log of %s cannot be written: not enrolled", dir);
    }
    if (e == MS_OK)
        e = table_add(&t, d);
    if (e == MS_OK)
        e = table_write(path, &t, detail, detail_cap);
    table_free(&t);
    close(lock);
    return e;
}

/* ---- lookups while serving ------------------------------------------------------------------ */

struct ms_tkms_devices {
    char path[MS_TKMS_PATH_MAX];
    pthread_mutex_t mu;
    table t;
    struct timespec mtime;
    off_t size;
    ino_t ino;
    bool loaded;
};

/* Re-reads the table when the file changed (a rename gives it another inode). */
static void refresh(ms_tkms_devices *s)
{
    struct stat sb;
    bool present = stat(s->path, &sb) == 0;
    if (s->loaded && present && sb.st_ino == s->ino && sb.st_size == s->size &&
        sb.st_mtim.tv_sec == s->mtime.tv_sec && sb.st_mtim.tv_nsec == s->mtime.tv_nsec)
        return;
    if (s->loaded && !present && s->t.n == 0)
        return;
    table nt;
    if (table_read(s->path, &nt, NULL, 0) != MS_OK)
        return; /* keep the last good table */
    table_free(&s->t);
    s->t = nt;
    s->loaded = true;
    if (present) {
        s->ino = sb.st_ino;
        s->size = sb.st_size;
        s->mtime = sb.st_mtim;
    }
}

ms_err ms_tkms_devices_open(ms_tkms_devices **out, const char *dir, char *detail,
                            size_t detail_cap)
{
    if (out == NULL || dir == NULL)
        return MS_ERR_ARG;
    ms_tkms_devices *s = calloc(1, sizeof *s);
    if (s == NULL)
        return MS_ERR_NOMEM;
    snprintf(s->path, sizeof s->path, "%s/%s", dir, MS_TKMS_DEVICES_FILE);
    pthread_mutex_init(&s->mu, NULL);
    ms_err e = table_read(s->path, &s->t, detail, detail_cap);
    if (e != MS_OK) {
        ms_tkms_devices_close(s);
        return e;
    }
    s->loaded = false;
    refresh(s);
    *out = s;
    return MS_OK;
}

void ms_tkms_devices_close(ms_tkms_devices *t)
{
    if (t == NULL)
        return;
    table_free(&t->t);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

ms_err ms_tkms_devices_find(ms_tkms_devices *t, const char *user, const char *device_id,
                            ms_tkms_device *out)
{
    if (t == NULL || user == NULL || device_id == NULL || out == NULL)
        return MS_ERR_ARG;
    ms_err e = MS_ERR_DEVICE_UNKNOWN;
    pthread_mutex_lock(&t->mu);
    refresh(t);
    for (size_t i = 0; i < t->t.n; i++)
        if (strcmp(t->t.dev[i].user, user) == 0 && strcmp(t->t.dev[i].device_id, device_id) == 0) {
            *out = t->t.dev[i];
            e = MS_OK;
            break;
        }
    pthread_mutex_unlock(&t->mu);
    return e;
}

size_t ms_tkms_devices_count(ms_tkms_devices *t)
{
    pthread_mutex_lock(&t->mu);
    refresh(t);
    size_t n = t->t.n;
    pthread_mutex_unlock(&t->mu);
    return n;
}
