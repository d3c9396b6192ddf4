/*
 * The configuration file (tools/config.h): a strict INI reader. Strict because a typo in
 * a server's configuration must stop the server rather than silently fall back to a
 * default (a mistyped "listen" would otherwise expose the service on every address).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CFG_MAX_SIZE (64u * 1024u)
#define CFG_MAX_LINE 1024u
#define CFG_MAX_NAME 32u /* section and key names */

/* Every section and the keys it may hold; a command narrows this with cli_config_check.
 * Adding a setting means adding it here and to docs/operations.md. */
static const char *const kms_keys[] = {"dir",  "listen", "port",    "cert",     "key",
                                       "rate", "burst",  "threads", "max-body",
                                       "max-connections", "max-per-client", "timeout", NULL};
static const char *const dist_keys[] = {"dir",  "listen", "port",    "cert", "key",
                                        "rate", "burst",  "threads", "max-connections",
                                        "max-per-client", "timeout", NULL};
static const char *const fetch_keys[] = {"url", "cacert", "keystore", "passphrase-file",
                                         "cert", "key", "retries", "timeout", NULL};
static const struct {
    const char *name;
    const char *const *keys;
} sections[] = {
    {"kms", kms_keys},
    {"dist", dist_keys},
    {"fetch", fetch_keys},
};

struct cfg_entry {
    char section[CFG_MAX_NAME + 1];
    char key[CFG_MAX_NAME + 1];
    char *value;
    unsigned line;
    char *where; /* "FILE:LINE", made on demand by cli_config_where */
};

struct cli_config {
    char *path;
    struct cfg_entry *e;
    size_t n, cap;
};

static void detail_set(char *detail, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void detail_set(char *detail, size_t cap, const char *fmt, ...)
{
    if (detail == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, cap, fmt, ap);
    va_end(ap);
}

static int in_list(const char *const *list, const char *s)
{
    for (; *list != NULL; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

static const char *const *section_keys(const char *name)
{
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        if (strcmp(sections[i].name, name) == 0)
            return sections[i].keys;
    return NULL;
}

/* Names are lower-case letters, digits, '-' and '_': so they can be echoed in messages. */
static int valid_name(const char *s, size_t len)
{
    if (len == 0 || len > CFG_MAX_NAME)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(islower(ch) || isdigit(ch) || ch == '-' || ch == '_'))
            return 0;
    }
    return 1;
}

/* A key that sounds like it holds a secret. */
static int secret_name(const char *key)
{
    static const char *const words[] = {"pass", "pin", "secret", "token", NULL};
    for (const char *const *w = words; *w != NULL; w++)
        if (strstr(key, *w) != NULL)
            return 1;
    return 0;
}

static char *trim(char *s, char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    return s;
}

static struct cfg_entry *find(const cli_config *c, const char *section, const char *key)
{
    if (c == NULL || section == NULL || key == NULL)
        return NULL;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].section, section) == 0 && strcmp(c->e[i].key, key) == 0)
            return &c->e[i];
    return NULL;
}

void cli_config_free(cli_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].value);
        free(c->e[i].where);
    }
    free(c->e);
    free(c->path);
    free(c);
}

/* Opens the file and checks who may change it: a configuration others can write could
 * point the server at their certificate or their directory. */
static ms_err read_file(const char *path, char **out, size_t *out_len, char *detail,
                        size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        detail_set(detail, cap, "%s: cannot open: %s", path, strerror(errno));
        return MS_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        detail_set(detail, cap, "%s: %s", path, strerror(errno));
        close(fd);
        return MS_ERR_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        detail_set(detail, cap, "%s: not a regular file", path);
        close(fd);
        return MS_ERR_CONFIG;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        detail_set(detail, cap, "%s: writable by group or others (mode %04o): chmod go-w",
                   path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return MS_ERR_KEYFILE_MODE;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        detail_set(detail, cap, "%s: owned by uid %u, neither root nor us", path,
                   (unsigned)st.st_uid);
        close(fd);
        return MS_ERR_KEYFILE_MODE;
    }
    if ((size_t)st.st_size > CFG_MAX_SIZE) {
        detail_set(detail, cap, "%s: larger than %u octets", path, CFG_MAX_SIZE);
        close(fd);
        return MS_ERR_CONFIG;
    }
    char *buf = malloc(CFG_MAX_SIZE + 2);
    if (buf == NULL) {
        close(fd);
        return MS_ERR_NOMEM;
    }
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, CFG_MAX_SIZE + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            detail_set(detail, cap, "%s: read: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return MS_ERR_IO;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > CFG_MAX_SIZE) { /* grew since fstat */
            detail_set(detail, cap, "%s: larger than %u octets", path, CFG_MAX_SIZE);
            free(buf);
            close(fd);
            return MS_ERR_CONFIG;
        }
    }
    close(fd);
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return MS_OK;
}

static ms_err add_entry(cli_config *c, const char *section, const char *key,
                        const char *value, unsigned line)
{
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        struct cfg_entry *ne = realloc(c->e, ncap * sizeof *ne);
        if (ne == NULL)
            return MS_ERR_NOMEM;
        c->e = ne;
        c->cap = ncap;
    }
    struct cfg_entry *e = &c->e[c->n];
    memset(e, 0, sizeof *e);
    snprintf(e->section, sizeof e->section, "%s", section);
    snprintf(e->key, sizeof e->key, "%s", key);
    e->value = strdup(value);
    if (e->value == NULL)
        return MS_ERR_NOMEM;
    e->line = line;
    c->n++;
    return MS_OK;
}

/* The value of a secret-sounding key must be a path to a private file, never the secret. */
static ms_err check_secret_ref(const char *path, unsigned line, const char *key,
                               const char *value, char *detail, size_t cap)
{
    size_t klen = strlen(key);
    if (klen < 5 || strcmp(key + klen - 5, "-file") != 0 || strchr(value, '/') == NULL) {
        detail_set(detail, cap,
                   "%s:%u: '%s' looks like a secret: the file may only name a file that "
                   "holds it (a key ending in -file whose value is a path)",
                   path, line, key);
        return MS_ERR_CONFIG;
    }
    struct stat st;
    if (stat(value, &st) == 0 && (st.st_mode & 077) != 0) {
        detail_set(detail, cap, "%s:%u: the file named by '%s' is open to group or others "
                   "(mode %04o): chmod 600", path, line, key, (unsigned)(st.st_mode & 07777));
        return MS_ERR_KEYFILE_MODE;
    }
    return MS_OK;
}

static ms_err parse(cli_config *c, char *text, size_t len, char *detail, size_t cap)
{
    const char *path = c->path;
    char section[CFG_MAX_NAME + 1] = "";
    const char *const *allowed = NULL;
    unsigned seen_line[sizeof sections / sizeof sections[0]] = {0};
    unsigned line = 0;
    char *p = text, *end = text + len;

    if (memchr(text, '\0', len) != NULL) {
        detail_set(detail, cap, "%s: contains a NUL byte: not a text file", path);
        return MS_ERR_CONFIG;
    }
    while (p < end) {
        line++;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *eol = nl ? nl : end;
        if ((size_t)(eol - p) > CFG_MAX_LINE) {
            detail_set(detail, cap, "%s:%u: line longer than %u octets", path, line,
                       CFG_MAX_LINE);
            return MS_ERR_CONFIG;
        }
        char *next = nl ? nl + 1 : end;
        if (eol > p && eol[-1] == '\r') /* tolerate a file edited on Windows */
            eol--;
        char *s = trim(p, eol);
        p = next;

        if (*s == '\0' || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            size_t sl = strlen(s);
            if (s[sl - 1] != ']') {
                detail_set(detail, cap, "%s:%u: expected '[section]'", path, line);
                return MS_ERR_CONFIG;
            }
            char *name = trim(s + 1, s + sl - 1);
            if (!valid_name(name, strlen(name))) {
                detail_set(detail, cap, "%s:%u: bad section name", path, line);
                return MS_ERR_CONFIG;
            }
            size_t idx = 0;
            while (idx < sizeof sections / sizeof sections[0] &&
                   strcmp(sections[idx].name, name) != 0)
                idx++;
            allowed = section_keys(name);
            if (allowed == NULL) {
                detail_set(detail, cap, "%s:%u: unknown section [%s] (known: [kms] [dist] "
                           "[fetch])", path, line, name);
                return MS_ERR_CONFIG;
            }
            if (seen_line[idx] != 0) {
                detail_set(detail, cap, "%s:%u: section [%s] appears twice (first at "
                           "line %u)", path, line, name, seen_line[idx]);
                return MS_ERR_CONFIG;
            }
            seen_line[idx] = line;
            snprintf(section, sizeof section, "%s", name);
            continue;
        }
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            /* the line is not echoed: it might be a pasted secret */
            detail_set(detail, cap, "%s:%u: expected 'key = value'", path, line);
            return MS_ERR_CONFIG;
        }
        char *vend = eq + 1 + strlen(eq + 1);
        char *key = trim(s, eq);
        char *value = trim(eq + 1, vend);
        if (!valid_name(key, strlen(key))) {
            detail_set(detail, cap, "%s:%u: bad key name (lower-case letters, digits, '-', "
                       "'_', at most %u)", path, line, CFG_MAX_NAME);
            return MS_ERR_CONFIG;
        }
        if (allowed == NULL) {
            detail_set(detail, cap, "%s:%u: '%s' is outside any [section]", path, line, key);
            return MS_ERR_CONFIG;
        }
        if (!in_list(allowed, key)) {
            detail_set(detail, cap, "%s:%u: unknown key '%s' in [%s]", path, line, key,
                       section);
            return MS_ERR_CONFIG;
        }
        size_t vl = strlen(value);
        if (vl > 0 && (value[0] == '"' || value[0] == '\'')) {
            if (vl < 2 || value[vl - 1] != value[0]) {
                detail_set(detail, cap, "%s:%u: unterminated quote in the value of '%s'",
                           path, line, key);
                return MS_ERR_CONFIG;
            }
            value[vl - 1] = '\0';
            value++;
            vl -= 2;
        }
        if (vl == 0) {
            detail_set(detail, cap, "%s:%u: '%s' has an empty value", path, line, key);
            return MS_ERR_CONFIG;
        }
        struct cfg_entry *dup = find(c, section, key);
        if (dup != NULL) {
            detail_set(detail, cap, "%s:%u: '%s' set twice in [%s] (first at line %u)", path,
                       line, key, section, dup->line);
            return MS_ERR_CONFIG;
        }
        if (secret_name(key)) {
            ms_err err = check_secret_ref(path, line, key, value, detail, cap);
            if (err != MS_OK)
                return err;
        }
        if (strcmp(key, "key") == 0) { /* a TLS private key: a file, never open to others */
            struct stat st;
            if (stat(value, &st) == 0 && (st.st_mode & 007) != 0) {
                detail_set(detail, cap, "%s:%u: the private key file named by 'key' is open "
                           "to others (mode %04o): chmod o-rwx", path, line,
                           (unsigned)(st.st_mode & 07777));
                return MS_ERR_KEYFILE_MODE;
            }
        }
        ms_err err = add_entry(c, section, key, value, line);
        if (err != MS_OK)
            return err;
    }
    return MS_OK;
}

ms_err cli_config_load(cli_config **out, const char *path, char *detail, size_t cap)
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    if (detail != NULL && cap > 0)
        detail[0] = '\0';
    if (path == NULL || *path == '\0') {
        detail_set(detail, cap, "no configuration file named");
        return MS_ERR_ARG;
    }
    char *text = NULL;
    size_t len = 0;
    ms_err err = read_file(path, &text, &len, detail, cap);
    if (err != MS_OK)
        return err;
    cli_config *c = calloc(1, sizeof *c);
    if (c == NULL || (c->path = strdup(path)) == NULL) {
        free(c);
        free(text);
        return MS_ERR_NOMEM;
    }
    err = parse(c, text, len, detail, cap);
    free(text);
    if (err != MS_OK) {
        cli_config_free(c);
        return err;
    }
    *out = c;
    return MS_OK;
}

const char *cli_config_get(const cli_config *c, const char *section, const char *key)
{
    struct cfg_entry *e = find(c, section, key);
    return e ? e->value : NULL;
}

ms_err cli_config_check(const cli_config *c, const char *section,
                        const char *const *allowed, char *detail, size_t cap)
{
    if (c == NULL)
        return MS_OK;
    if (section == NULL || allowed == NULL)
        return MS_ERR_ARG;
    for (size_t i = 0; i < c->n; i++) {
        const struct cfg_entry *e = &c->e[i];
        if (strcmp(e->section, section) == 0 && !in_list(allowed, e->key)) {
            detail_set(detail, cap, "%s:%u: unknown key '%s' in [%s] for this command",
                       c->path, e->line, e->key, section);
            return MS_ERR_CONFIG;
        }
    }
    return MS_OK;
}

const char *cli_config_pick(const char *cmdline, const cli_config *c, const char *section,
                            const char *key)
{
    if (cmdline != NULL)
        return cmdline;
    return cli_config_get(c, section, key);
}

const char *cli_config_where(const cli_config *c, const char *section, const char *key)
{
    struct cfg_entry *e = find(c, section, key);
    if (e == NULL)
        return "";
    if (e->where == NULL) {
        size_t n = strlen(c->path) + 16;
        e->where = malloc(n);
        if (e->where == NULL)
            return c->path;
        snprintf(e->where, n, "%s:%u", c->path, e->line);
    }
    return e->where;
}
