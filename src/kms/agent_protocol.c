/*
 * The unseal agent's wire format (docs/agent-protocol.md): length-prefixed messages of
 * named fields, their reading and writing on a stream socket, and the signing of a
 * request by a role's key. Moved here from tools/kms.c so the format has one owner and
 * can be tested without a process.
 */
#include "kms/agent.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kms/roles.h"
#include "mikeysakke/crypto.h"
#include "util/bytes.h"

#define HEADER 4

bool ms_agent_msg_init(ms_agent_msg *m)
{
    m->buf = malloc(MS_AGENT_MSG_MAX + HEADER);
    m->len = HEADER;
    m->overflow = false;
    return m->buf != NULL;
}

void ms_agent_msg_free(ms_agent_msg *m)
{
    if (m->buf != NULL) {
        ms_wipe(m->buf, m->len); /* may carry a share, PIN, credential, RSK, TrK */
        free(m->buf);
    }
    m->buf = NULL;
    m->len = 0;
}

void ms_agent_msg_reset(ms_agent_msg *m)
{
    ms_wipe(m->buf, m->len);
    m->len = HEADER;
    m->overflow = false;
}

void ms_agent_msg_add(ms_agent_msg *m, const char *name, const void *val, size_t len)
{
    size_t nlen = strlen(name);
    if (m->overflow || nlen == 0 || nlen > MS_AGENT_FIELD_NAME_MAX ||
        len > MS_AGENT_MSG_MAX || m->len + 5 + nlen + len > MS_AGENT_MSG_MAX + HEADER) {
        m->overflow = true;
        return;
    }
    uint8_t *p = m->buf + m->len;
    p[0] = (uint8_t)nlen;
    memcpy(p + 1, name, nlen);
    ms_store_be32(p + 1 + nlen, len);
    if (len)
        memcpy(p + 5 + nlen, val, len);
    m->len += 5 + nlen + len;
}

void ms_agent_msg_adds(ms_agent_msg *m, const char *name, const char *val)
{
    ms_agent_msg_add(m, name, val, strlen(val));
}

void ms_agent_msg_addu(ms_agent_msg *m, const char *name, uint64_t val)
{
    ms_agent_msg_addf(m, name, "%llu", (unsigned long long)val);
}

void ms_agent_msg_addf(ms_agent_msg *m, const char *name, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) {
        m->overflow = true; /* a cut value would say something else */
        return;
    }
    ms_agent_msg_adds(m, name, buf);
}

bool ms_agent_msg_next(const ms_agent_msg *m, size_t *off, char name[MS_AGENT_FIELD_NAME_MAX + 1],
                       const uint8_t **val, size_t *len)
{
    size_t at = *off < HEADER ? HEADER : *off;
    if (at + 5 > m->len)
        return false;
    size_t nl = m->buf[at];
    if (nl == 0 || at + 5 + nl > m->len)
        return false;
    const uint8_t *p = m->buf + at + 1 + nl;
    size_t vl = ms_load_be32(p);
    if (vl > m->len - (at + 5 + nl))
        return false;
    memcpy(name, m->buf + at + 1, nl);
    name[nl] = '\0';
    *val = p + 4;
    *len = vl;
    *off = at + 5 + nl + vl;
    return true;
}

const uint8_t *ms_agent_msg_get(const ms_agent_msg *m, const char *name, size_t index,
                                size_t *len)
{
    char n[MS_AGENT_FIELD_NAME_MAX + 1];
    size_t off = 0, vl = 0;
    const uint8_t *v;
    while (ms_agent_msg_next(m, &off, n, &v, &vl))
        if (strcmp(n, name) == 0 && index-- == 0) {
            *len = vl;
            return v;
        }
    return NULL;
}

size_t ms_agent_msg_count(const ms_agent_msg *m, const char *name)
{
    char n[MS_AGENT_FIELD_NAME_MAX + 1];
    size_t off = 0, vl = 0, count = 0;
    const uint8_t *v;
    while (ms_agent_msg_next(m, &off, n, &v, &vl))
        count += strcmp(n, name) == 0;
    return count;
}

const char *ms_agent_msg_str(const ms_agent_msg *m, const char *name, size_t index, char *out,
                             size_t cap)
{
    size_t n = 0;
    const uint8_t *v = ms_agent_msg_get(m, name, index, &n);
    if (v == NULL || n >= cap || memchr(v, 0, n) != NULL)
        return NULL;
    memcpy(out, v, n);
    out[n] = '\0';
    return out;
}

bool ms_agent_msg_u64(const ms_agent_msg *m, const char *name, size_t index, uint64_t *out)
{
    char text[24];
    if (ms_agent_msg_str(m, name, index, text, sizeof text) == NULL || text[0] < '0' ||
        text[0] > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = (uint64_t)v;
    return true;
}

/* Every field within the body, none with an empty name. */
static ms_err check_fields(const ms_agent_msg *m)
{
    size_t at = HEADER;
    while (at < m->len) {
        if (at + 5 > m->len)
            return MS_ERR_BAD_ENCODING;
        size_t nl = m->buf[at];
        if (nl == 0 || at + 5 + nl > m->len)
            return MS_ERR_BAD_ENCODING;
        size_t vl = ms_load_be32(m->buf + at + 1 + nl);
        if (vl > m->len - (at + 5 + nl))
            return MS_ERR_BAD_ENCODING;
        at += 5 + nl + vl;
    }
    return MS_OK;
}

ms_err ms_agent_msg_decode(ms_agent_msg *m, const uint8_t *frame, size_t len)
{
    if (len < HEADER || ms_load_be32(frame) != len - HEADER || len - HEADER > MS_AGENT_MSG_MAX)
        return MS_ERR_BAD_LENGTH;
    memcpy(m->buf, frame, len);
    m->len = len;
    m->overflow = false;
    return check_fields(m);
}

ms_err ms_agent_msg_frame(ms_agent_msg *m, const uint8_t **frame, size_t *len)
{
    if (m->overflow)
        return MS_ERR_BAD_LENGTH;
    ms_store_be32(m->buf, m->len - HEADER);
    *frame = m->buf;
    *len = m->len;
    return MS_OK;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

ms_err ms_agent_msg_send(int fd, ms_agent_msg *m)
{
    const uint8_t *frame;
    size_t len;
    ms_err e = ms_agent_msg_frame(m, &frame, &len);
    if (e != MS_OK)
        return e;
    return write_all(fd, frame, len) == 0 ? MS_OK : MS_ERR_IO;
}

ms_err ms_agent_msg_recv(int fd, ms_agent_msg *m)
{
    uint8_t hdr[HEADER];
    m->len = HEADER;
    m->overflow = false;
    if (read_all(fd, hdr, HEADER) != 0)
        return MS_ERR_IO;
    size_t body = ms_load_be32(hdr);
    if (body > MS_AGENT_MSG_MAX)
        return MS_ERR_BAD_LENGTH;
    memcpy(m->buf, hdr, HEADER);
    if (read_all(fd, m->buf + HEADER, body) != 0)
        return MS_ERR_IO;
    m->len = HEADER + body;
    return check_fields(m);
}

void ms_agent_progress_fields(ms_agent_msg *m, size_t done, size_t total)
{
    ms_agent_msg_addu(m, "v", MS_AGENT_PROTOCOL);
    ms_agent_msg_addu(m, "progress_done", done);
    ms_agent_msg_addu(m, "progress_total", total);
}

bool ms_agent_is_progress(const ms_agent_msg *m)
{
    size_t n = 0;
    return ms_agent_msg_get(m, "status", 0, &n) == NULL &&
           ms_agent_msg_get(m, "progress_done", 0, &n) != NULL;
}

bool ms_agent_unsigned_field(const char *name)
{
    static const char *const names[] = {"v", "auth", "auth_key", "auth_sig", "passphrase",
                                        "pin", "request", "approval"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

ms_err ms_agent_sign(ms_agent_msg *req, const char *kms_uri, uint64_t unix_time,
                     const uint8_t seed[32])
{
    uint8_t pub[MS_ROLE_KEY_BYTES], sig[MS_ROLE_SIG_BYTES];
    char *text = malloc(MS_REQUEST_MAX + 1), name[MS_AGENT_FIELD_NAME_MAX + 1];
    size_t len = 0, off = 0, vl = 0;
    const uint8_t *v;
    ms_err e = text == NULL ? MS_ERR_NOMEM : MS_OK;
    if (e == MS_OK)
        e = ms_request_start(text, MS_REQUEST_MAX + 1, &len);
    if (e == MS_OK)
        e = ms_request_add(text, MS_REQUEST_MAX + 1, &len, "kind", "command");
    if (e == MS_OK)
        e = ms_request_add(text, MS_REQUEST_MAX + 1, &len, "kms", kms_uri);
    while (e == MS_OK && ms_agent_msg_next(req, &off, name, &v, &vl)) {
        char val[2048];
        if (ms_agent_unsigned_field(name))
            continue;
        if (vl >= sizeof val || memchr(v, 0, vl) != NULL) {
            e = MS_ERR_ARG;
            break;
        }
        memcpy(val, v, vl);
        val[vl] = '\0';
        e = ms_request_add(text, MS_REQUEST_MAX + 1, &len, name, val);
    }
    char t[24];
    snprintf(t, sizeof t, "%llu", (unsigned long long)unix_time);
    if (e == MS_OK)
        e = ms_request_add(text, MS_REQUEST_MAX + 1, &len, "time", t);
    if (e == MS_OK)
        e = ms_request_add_nonce(text, MS_REQUEST_MAX + 1, &len, unix_time + 300, NULL);
    if (e == MS_OK)
        e = ms_role_public(seed, pub);
    if (e == MS_OK)
        e = ms_role_sign(seed, MS_ROLE_CTX_COMMAND, text, len, sig);
    if (e == MS_OK) {
        ms_agent_msg_addu(req, "v", MS_AGENT_PROTOCOL);
        ms_agent_msg_add(req, "auth", text, len);
        ms_agent_msg_add(req, "auth_key", pub, sizeof pub);
        ms_agent_msg_add(req, "auth_sig", sig, sizeof sig);
        if (req->overflow)
            e = MS_ERR_BAD_LENGTH;
    }
    free(text);
    return e;
}
