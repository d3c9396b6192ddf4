/*
 * The pinned table of a threshold KMS's servers (src/net/peer_table.h).
 */
#include "net/peer_table.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/detail.h"

static bool url_ok(const char *u)
{
    size_t n = strlen(u);
    if (n <= 8 || n > MS_PEER_URL_MAX || strncmp(u, "https://", 8) != 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (u[i] <= 0x20 || u[i] >= 0x7f)
            return false;
    return u[n - 1] != '/'; /* paths are appended: "https://host:port" */
}

ms_err ms_peer_table_check(const ms_peer_table *t, char *detail, size_t cap)
{
    if (t == NULL)
        return MS_ERR_ARG;
    if (t->t < 1)
        return ms_detail_fail(MS_ERR_CONFIG, detail, cap, "peers: threshold must be 1 or more");
    if (t->n > MS_PEER_MAX || t->n < 2 * t->t + 1)
        return ms_detail_fail(MS_ERR_CONFIG, detail, cap,
                              "peers: %u servers for threshold %u: need %u to %d", t->n, t->t,
                              2 * t->t + 1, MS_PEER_MAX);
    for (unsigned i = 0; i < t->n; i++) {
        const ms_peer_entry *a = &t->server[i];
        if (strnlen(a->url, sizeof a->url) == sizeof a->url || !url_ok(a->url))
            return ms_detail_fail(MS_ERR_CONFIG, detail, cap,
                                  "peers: server %u: address is not https://host:port", i + 1);
        for (unsigned j = 0; j < i; j++) {
            const ms_peer_entry *b = &t->server[j];
            const char *same = strcmp(a->url, b->url) == 0 ? "address"
                : memcmp(a->sign_pub, b->sign_pub, sizeof a->sign_pub) == 0 ? "message key"
                : memcmp(a->hpke_pub, b->hpke_pub, sizeof a->hpke_pub) == 0 ? "HPKE key"
                : memcmp(a->tls_pin, b->tls_pin, sizeof a->tls_pin) == 0 ? "TLS certificate"
                : NULL;
            if (same != NULL)
                return ms_detail_fail(MS_ERR_CONFIG, detail, cap,
                                      "peers: servers %u and %u have the same %s", j + 1,
                                      i + 1, same);
        }
    }
    return MS_OK;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "<name>=<64 lowercase hex>" into out. */
static bool keyval(const char *word, const char *name, uint8_t out[32])
{
    size_t nl = strlen(name);
    if (strncmp(word, name, nl) != 0 || word[nl] != '=' || strlen(word + nl + 1) != 64)
        return false;
    const char *h = word + nl + 1;
    for (size_t i = 0; i < 32; i++) {
        int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* Splits line into words at single spaces: their number, max + 1 for more than max, 0
 * when a word is empty (two spaces, a space at either end). */
static size_t split(char *line, char **words, size_t max)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        if (n == max)
            return max + 1;
        words[n++] = p;
        char *sp = strchr(p, ' ');
        if (sp == NULL)
            break;
        *sp = '\0';
        p = sp + 1;
    }
    for (size_t i = 0; i < n; i++)
        if (words[i][0] == '\0')
            return 0;
    return n;
}

ms_err ms_peer_table_parse(const char *text, size_t len, ms_peer_table *out, char *detail,
                           size_t cap)
{
    if (text == NULL || out == NULL)
        return MS_ERR_ARG;
    memset(out, 0, sizeof *out);
    size_t hl = strlen(MS_PEER_TABLE_HEADER);
    if (len < hl || memcmp(text, MS_PEER_TABLE_HEADER, hl) != 0)
        return ms_detail_fail(MS_ERR_CONFIG, detail, cap,
                              "peers: not a table of servers (first line must be "
                              "\"mikeysakke-peers 1\")");
    if (len > MS_PEER_TABLE_MAX || text[len - 1] != '\n' || memchr(text, '\0', len) != NULL)
        return ms_detail_fail(MS_ERR_CONFIG, detail, cap,
                              "peers: too long, a NUL in it, or the last line unended");
    char line[MS_PEER_URL_MAX + 512];
    size_t pos = hl;
    unsigned lineno = 1;
    bool have_t = false;
    while (pos < len) {
        lineno++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t ll = (size_t)(nl - (text + pos));
        if (ll >= sizeof line)
            return ms_detail_fail(MS_ERR_CONFIG, detail, cap, "peers line %u: too long", lineno);
        memcpy(line, text + pos, ll);
        line[ll] = '\0';
        pos += ll + 1;
        char *w[6];
        size_t nw = split(line, w, 6);
        if (nw == 2 && strcmp(w[0], "threshold") == 0 && !have_t && out->n == 0) {
            char *end;
            errno = 0;
            unsigned long v = strtoul(w[1], &end, 10);
            if (w[1][0] < '1' || w[1][0] > '9' || *end != '\0' || errno != 0 ||
                v > MS_PEER_MAX)
                return ms_detail_fail(MS_ERR_CONFIG, detail, cap,
                                      "peers line %u: threshold is not a number from 1 to %d",
                                      lineno, MS_PEER_MAX);
            out->t = (unsigned)v;
            have_t = true;
            continue;
        }
        if (nw == 6 && strcmp(w[0], "server") == 0 && have_t) {
            char want[16];
            snprintf(want, sizeof want, "%u", out->n + 1);
            if (out->n >= MS_PEER_MAX || strcmp(w[1], want) != 0)
                return ms_detail_fail(MS_ERR_CONFIG, detail, cap,
                                      "peers line %u: expected server %s (servers are listed "
                                      "1, 2, ... up to %d)", lineno, want, MS_PEER_MAX);
            ms_peer_entry *e = &out->server[out->n];
            if (strlen(w[2]) > MS_PEER_URL_MAX || !url_ok(w[2]))
                return ms_detail_fail(MS_ERR_CONFIG, detail, cap,
                                      "peers line %u: address is not https://host:port", lineno);
            snprintf(e->url, sizeof e->url, "%s", w[2]);
            if (!keyval(w[3], "sign", e->sign_pub) || !keyval(w[4], "hpke", e->hpke_pub) ||
                !keyval(w[5], "tls", e->tls_pin))
                return ms_detail_fail(MS_ERR_CONFIG, detail, cap,
                                      "peers line %u: expected sign=, hpke= and tls= with 64 "
                                      "lowercase hex digits each", lineno);
            out->n++;
            continue;
        }
        return ms_detail_fail(MS_ERR_CONFIG, detail, cap,
                              "peers line %u: expected \"threshold T\" and then \"server I URL "
                              "sign=... hpke=... tls=...\" lines", lineno);
    }
    return ms_peer_table_check(out, detail, cap);
}

static void hex32(char out[65], const uint8_t in[32])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[64] = '\0';
}

ms_err ms_peer_table_format(const ms_peer_table *t, char *out, size_t cap, size_t *len)
{
    if (t == NULL || out == NULL || len == NULL || ms_peer_table_check(t, NULL, 0) != MS_OK)
        return MS_ERR_ARG;
    size_t pos = 0;
    int n = snprintf(out, cap, "%sthreshold %u\n", MS_PEER_TABLE_HEADER, t->t);
    if (n < 0 || (size_t)n >= cap)
        return MS_ERR_BUFFER_TOO_SMALL;
    pos = (size_t)n;
    for (unsigned i = 0; i < t->n; i++) {
        char s[65], h[65], p[65];
        hex32(s, t->server[i].sign_pub);
        hex32(h, t->server[i].hpke_pub);
        hex32(p, t->server[i].tls_pin);
        n = snprintf(out + pos, cap - pos, "server %u %s sign=%s hpke=%s tls=%s\n", i + 1,
                     t->server[i].url, s, h, p);
        if (n < 0 || (size_t)n >= cap - pos)
            return MS_ERR_BUFFER_TOO_SMALL;
        pos += (size_t)n;
    }
    *len = pos;
    return MS_OK;
}

ms_err ms_peer_table_read(const char *path, ms_peer_table *out, char *detail, size_t cap)
{
    if (path == NULL || out == NULL)
        return MS_ERR_ARG;
    int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return ms_detail_fail(MS_ERR_IO, detail, cap, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > MS_PEER_TABLE_MAX) {
        close(fd);
        return ms_detail_fail(MS_ERR_IO, detail, cap, "%s: not a regular file of at most %d "
                              "octets", path, MS_PEER_TABLE_MAX);
    }
    char *buf = malloc(MS_PEER_TABLE_MAX + 1);
    if (buf == NULL) {
        close(fd);
        return MS_ERR_NOMEM;
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, MS_PEER_TABLE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == MS_PEER_TABLE_MAX + 1)
            break;
    }
    close(fd);
    ms_err e = ms_peer_table_parse(buf, n, out, detail, cap);
    free(buf);
    return e;
}

ms_err ms_peer_table_write(const char *path, const ms_peer_table *t, char *detail, size_t cap)
{
    if (path == NULL || t == NULL)
        return MS_ERR_ARG;
    ms_err e = ms_peer_table_check(t, detail, cap);
    if (e != MS_OK)
        return e;
    char *buf = malloc(MS_PEER_TABLE_MAX);
    if (buf == NULL)
        return MS_ERR_NOMEM;
    size_t len = 0;
    e = ms_peer_table_format(t, buf, MS_PEER_TABLE_MAX, &len);
    if (e == MS_OK)
        e = ms_peer_file_create(path, buf, len, false, detail, cap);
    free(buf);
    return e;
}

void ms_peer_table_keys(const ms_peer_table *t, ms_peer_keys *keys)
{
    memset(keys, 0, sizeof *keys);
    keys->n = t->n;
    for (unsigned i = 0; i < t->n && i < MS_PEER_MAX; i++)
        memcpy(keys->pub[i], t->server[i].sign_pub, MS_PEER_KEY_BYTES);
}

void ms_peer_table_pins(const ms_peer_table *t, ms_peer_pins *pins)
{
    memset(pins, 0, sizeof *pins);
    pins->n = t->n;
    for (unsigned i = 0; i < t->n && i < MS_PEER_MAX; i++)
        memcpy(pins->pin[i], t->server[i].tls_pin, MS_PEER_PIN_BYTES);
}

ms_err ms_peer_table_link(const ms_peer_table *t, unsigned index, const char *cert_file,
                          const char *key_file, ms_peer_link *link)
{
    if (t == NULL || link == NULL || index == 0 || index > t->n || index > MS_PEER_MAX)
        return MS_ERR_ARG;
    memset(link, 0, sizeof *link);
    link->url = t->server[index - 1].url;
    memcpy(link->pin, t->server[index - 1].tls_pin, MS_PEER_PIN_BYTES);
    link->cert_file = cert_file;
    link->key_file = key_file;
    return MS_OK;
}
