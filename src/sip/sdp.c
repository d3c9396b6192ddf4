/*
 * SDP (RFC 4566) for one audio stream: the text of a secure call's offer and answer.
 * Key-less: the a=key-mgmt value is located, never decoded (the call layer does that).
 *
 * The parser is strict about form (every line "x=value" with a known type, v=0 first,
 * o=, s= and t= present, addresses that are IP literals) because the text comes from
 * the network; it reports protocol and key management and leaves the judging to the
 * caller.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip/sdp.h"

#define KEY_MGMT_ATTR "key-mgmt:"
#define SUITE_ATTR "x-ms-srtp:"

static ms_err sdp_fail(char *detail, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ms_err sdp_fail(char *detail, size_t cap, const char *fmt, ...)
{
    if (detail != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, cap, fmt, ap);
        va_end(ap);
    }
    return MS_ERR_SDP;
}

/* Printable text without CR, LF or other control octets: nothing a value could use to
 * start a line of its own. */
static bool clean_text(const char *s, bool allow_space)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p < 0x20 || *p == 0x7F || (*p == ' ' && !allow_space))
            return false;
    return true;
}

/* 4 for an IPv4 literal, 6 for IPv6, 0 otherwise. */
static int ip_family(const char *addr)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, addr, buf) == 1)
        return 4;
    if (inet_pton(AF_INET6, addr, buf) == 1)
        return 6;
    return 0;
}

static bool valid_direction(const char *d)
{
    return strcmp(d, "sendrecv") == 0 || strcmp(d, "sendonly") == 0 ||
           strcmp(d, "recvonly") == 0 || strcmp(d, "inactive") == 0;
}

/* ---- format -------------------------------------------------------------------------- */

typedef struct writer {
    char *out;
    size_t cap;
    size_t len;
    bool overflow;
} writer;

static void put(writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(writer *w, const char *fmt, ...)
{
    if (w->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->out + w->len, w->cap - w->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= w->cap - w->len) {
        w->overflow = true;
        return;
    }
    w->len += (size_t)n;
}

ms_err ms_sdp_format(char *out, size_t cap, const ms_sdp_audio *a, uint64_t session_id,
                     const char *key_mgmt_line)
{
    if (out == NULL || cap == 0 || a == NULL)
        return MS_ERR_ARG;
    out[0] = '\0';
    const int family = ip_family(a->addr);
    if (family == 0)
        return MS_ERR_ARG;
    const char *proto = a->proto[0] != '\0' ? a->proto : "RTP/SAVP";
    const char *codec = a->codec[0] != '\0' ? a->codec : "opus/48000/2";
    const char *dir = a->direction[0] != '\0' ? a->direction : "sendrecv";
    if (a->payload_type < 0 || a->payload_type > 127 || !clean_text(proto, false) ||
        !clean_text(codec, false) || !clean_text(a->crypto_suite, false) ||
        !valid_direction(dir))
        return MS_ERR_ARG;
    if (key_mgmt_line != NULL &&
        (strncmp(key_mgmt_line, "a=" KEY_MGMT_ATTR, 2 + strlen(KEY_MGMT_ATTR)) != 0 ||
         !clean_text(key_mgmt_line, true)))
        return MS_ERR_ARG;
    /* RFC 4566: the session id is a numeric string; keep it within 63 bits so every
     * reader takes it as a positive integer. */
    const unsigned long long sid = (unsigned long long)(session_id & 0x7FFFFFFFFFFFFFFFull);
    const char *ipv = family == 4 ? "IP4" : "IP6";

    writer w = {out, cap < MS_SDP_MAX + 1 ? cap : MS_SDP_MAX + 1, 0, false};
    put(&w, "v=0\r\n");
    put(&w, "o=- %llu %llu IN %s %s\r\n", sid, sid, ipv, a->addr);
    put(&w, "s=-\r\n");
    put(&w, "c=IN %s %s\r\n", ipv, a->addr);
    put(&w, "t=0 0\r\n");
    put(&w, "m=audio %u %s %d\r\n", (unsigned)a->port, proto, a->payload_type);
    put(&w, "a=rtpmap:%d %s\r\n", a->payload_type, codec);
    if (strncmp(codec, "opus/", 5) == 0)
        put(&w, "a=fmtp:%d minptime=20\r\n", a->payload_type);
    put(&w, "a=ptime:20\r\n");
    if (a->crypto_suite[0] != '\0')
        put(&w, "a=" SUITE_ATTR "%s\r\n", a->crypto_suite);
    put(&w, "a=%s\r\n", dir);
    if (key_mgmt_line != NULL)
        put(&w, "%s\r\n", key_mgmt_line);
    if (w.overflow) {
        out[0] = '\0';
        return cap > MS_SDP_MAX ? MS_ERR_ARG : MS_ERR_BUFFER_TOO_SMALL;
    }
    return MS_OK;
}

/* ---- parse --------------------------------------------------------------------------- */

/* One level's attributes we care about (session, then the audio stream). */
typedef struct level {
    bool has_c;
    char addr[64];
    const char *key_mgmt;
    size_t key_mgmt_len;
    bool has_suite;
    char suite[40];
    bool has_dir;
    char dir[10];
} level;

typedef struct parser {
    char *detail;
    size_t cap;
    unsigned line_no;
} parser;

/* Copies value[0, len) into dst (cap octets with the NUL); false if it does not fit. */
static bool copy_field(char *dst, size_t cap, const char *value, size_t len)
{
    if (len >= cap)
        return false;
    memcpy(dst, value, len);
    dst[len] = '\0';
    return true;
}

/* "IN IP4 addr" / "IN IP6 addr" */
static ms_err parse_connection(parser *ps, level *lv, const char *v, size_t n)
{
    char buf[96];
    if (!copy_field(buf, sizeof buf, v, n))
        return sdp_fail(ps->detail, ps->cap, "line %u: c= is too long", ps->line_no);
    char net[8], type[8], addr[72];
    char extra[2];
    int got = sscanf(buf, "%7s %7s %71s %1s", net, type, addr, extra);
    if (got != 3 || strcmp(net, "IN") != 0 ||
        (strcmp(type, "IP4") != 0 && strcmp(type, "IP6") != 0))
        return sdp_fail(ps->detail, ps->cap,
                        "line %u: c= must be \"IN IP4 <address>\" or \"IN IP6 <address>\"",
                        ps->line_no);
    int family = ip_family(addr);
    if ((family == 4 && strcmp(type, "IP4") != 0) || (family == 6 && strcmp(type, "IP6") != 0) ||
        family == 0)
        return sdp_fail(ps->detail, ps->cap,
                        "line %u: c= address \"%.64s\" is not an %s literal (a TTL or host "
                        "name is not accepted)",
                        ps->line_no, addr, type);
    if (!copy_field(lv->addr, sizeof lv->addr, addr, strlen(addr)))
        return sdp_fail(ps->detail, ps->cap, "line %u: c= address too long", ps->line_no);
    lv->has_c = true;
    return MS_OK;
}

/* "audio <port>[/<count>] <proto> <fmt> ..." into out; other media are not ours. */
static ms_err parse_media(parser *ps, ms_sdp_audio *out, bool *is_audio, const char *v, size_t n)
{
    char buf[256];
    if (!copy_field(buf, sizeof buf, v, n))
        return sdp_fail(ps->detail, ps->cap, "line %u: m= is too long", ps->line_no);
    char *save = NULL;
    char *media = strtok_r(buf, " ", &save);
    char *port = strtok_r(NULL, " ", &save);
    char *proto = strtok_r(NULL, " ", &save);
    char *fmt = strtok_r(NULL, " ", &save);
    if (media == NULL || port == NULL || proto == NULL || fmt == NULL)
        return sdp_fail(ps->detail, ps->cap,
                        "line %u: m= needs \"<media> <port> <proto> <fmt>\"", ps->line_no);
    *is_audio = strcmp(media, "audio") == 0;
    if (!*is_audio)
        return MS_OK;
    char *slash = strchr(port, '/');
    if (slash != NULL)
        *slash = '\0';
    char *end = NULL;
    unsigned long p = strtoul(port, &end, 10);
    if (port[0] < '0' || port[0] > '9' || *end != '\0' || p > 65535)
        return sdp_fail(ps->detail, ps->cap, "line %u: m=audio port \"%.16s\" is not a number "
                                             "from 0 to 65535", ps->line_no, port);
    if (slash != NULL && strcmp(slash + 1, "1") != 0)
        return sdp_fail(ps->detail, ps->cap, "line %u: m=audio with several ports is not "
                                             "supported", ps->line_no);
    /* A protocol longer than the field (UDP/TLS/RTP/SAVPF) is none we take: reported
     * shortened, so the caller can still name it when refusing. */
    if (!copy_field(out->proto, sizeof out->proto, proto, strlen(proto)))
        snprintf(out->proto, sizeof out->proto, "%.*s...", (int)sizeof out->proto - 4, proto);
    out->port = (uint16_t)p;
    long pt = strtol(fmt, &end, 10);
    out->payload_type = (fmt[0] >= '0' && fmt[0] <= '9' && *end == '\0' && pt <= 127)
                            ? (int)pt : -1;
    return MS_OK;
}

static ms_err parse_attribute(parser *ps, ms_sdp_audio *out, level *lv, bool in_audio,
                              const char *v, size_t n)
{
    const size_t km = strlen(KEY_MGMT_ATTR), sa = strlen(SUITE_ATTR);
    if (n >= km && memcmp(v, KEY_MGMT_ATTR, km) == 0) {
        const char *val = v + km;
        size_t vlen = n - km;
        if (vlen > 0 && val[0] == ' ') { /* RFC 4567: 0*1SP after the colon */
            val++;
            vlen--;
        }
        /* several protocols may be offered: the first mikey one wins */
        bool mikey = vlen >= 6 && memcmp(val, "mikey ", 6) == 0;
        bool have_mikey = lv->key_mgmt != NULL && lv->key_mgmt_len >= 6 &&
                          memcmp(lv->key_mgmt, "mikey ", 6) == 0;
        if (lv->key_mgmt == NULL || (mikey && !have_mikey)) {
            lv->key_mgmt = val;
            lv->key_mgmt_len = vlen;
        }
        return MS_OK;
    }
    if (n >= sa && memcmp(v, SUITE_ATTR, sa) == 0) {
        if (!copy_field(lv->suite, sizeof lv->suite, v + sa, n - sa) ||
            !clean_text(lv->suite, false) || lv->suite[0] == '\0')
            return sdp_fail(ps->detail, ps->cap, "line %u: a=x-ms-srtp needs one suite name "
                                                 "of at most %zu characters",
                            ps->line_no, sizeof lv->suite - 1);
        lv->has_suite = true;
        return MS_OK;
    }
    static const char *const dirs[] = {"sendrecv", "sendonly", "recvonly", "inactive"};
    for (size_t i = 0; i < 4; i++) {
        if (n == strlen(dirs[i]) && memcmp(v, dirs[i], n) == 0) {
            memcpy(lv->dir, dirs[i], n + 1);
            lv->has_dir = true;
            return MS_OK;
        }
    }
    if (in_audio && n > 7 && memcmp(v, "rtpmap:", 7) == 0) {
        char buf[96];
        if (!copy_field(buf, sizeof buf, v + 7, n - 7))
            return sdp_fail(ps->detail, ps->cap, "line %u: a=rtpmap is too long", ps->line_no);
        char *end = NULL;
        long pt = strtol(buf, &end, 10);
        if (buf[0] < '0' || buf[0] > '9' || end == NULL || *end != ' ' || end[1] == '\0' ||
            pt > 127)
            return sdp_fail(ps->detail, ps->cap,
                            "line %u: a=rtpmap must be \"<payload type> <encoding>\"",
                            ps->line_no);
        if (pt == out->payload_type &&
            !copy_field(out->codec, sizeof out->codec, end + 1, strlen(end + 1)))
            return sdp_fail(ps->detail, ps->cap, "line %u: a=rtpmap encoding is too long",
                            ps->line_no);
    }
    return MS_OK; /* every other attribute is allowed and ignored */
}

ms_err ms_sdp_parse(ms_sdp_audio *out, const char *sdp, size_t len, char *detail,
                    size_t detail_cap)
{
    if (detail != NULL && detail_cap > 0)
        detail[0] = '\0';
    if (out == NULL || (sdp == NULL && len > 0))
        return MS_ERR_ARG;
    memset(out, 0, sizeof *out);
    out->payload_type = -1;
    if (len == 0)
        return sdp_fail(detail, detail_cap, "the SDP body is empty");
    if (len > MS_SDP_MAX)
        return sdp_fail(detail, detail_cap, "the SDP body of %zu octets exceeds %d", len,
                        MS_SDP_MAX);

    parser ps = {detail, detail_cap, 0};
    level session, audio;
    memset(&session, 0, sizeof session);
    memset(&audio, 0, sizeof audio);
    bool seen_o = false, seen_s = false, seen_t = false, in_media = false, in_audio = false,
         found_audio = false, ended = false;
    size_t pos = 0;
    while (pos < len) {
        ps.line_no++;
        size_t end = pos;
        while (end < len && sdp[end] != '\n')
            end++;
        size_t stop = end; /* the line without its CR LF */
        if (stop > pos && sdp[stop - 1] == '\r')
            stop--;
        const char *line = sdp + pos;
        const size_t n = stop - pos;
        pos = end < len ? end + 1 : end;
        if (n == 0) {
            ended = true; /* blank lines only at the end */
            continue;
        }
        if (ended)
            return sdp_fail(detail, detail_cap, "line %u follows a blank line", ps.line_no);
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)line[i];
            if ((c < 0x20 && c != '\t') || c == 0x7F)
                return sdp_fail(detail, detail_cap,
                                "line %u: control character 0x%02X", ps.line_no, c);
        }
        if (n < 2 || line[1] != '=' || strchr("vosiuepcbtrzkam", line[0]) == NULL)
            return sdp_fail(detail, detail_cap,
                            "line %u is not \"<type>=<value>\" with a known SDP type: "
                            "\"%.20s\"", ps.line_no, line);
        const char type = line[0];
        const char *v = line + 2;
        const size_t vn = n - 2;
        if (ps.line_no == 1) {
            if (type != 'v' || vn != 1 || v[0] != '0')
                return sdp_fail(detail, detail_cap, "line 1 must be \"v=0\"");
            continue;
        }
        if (type == 'v')
            return sdp_fail(detail, detail_cap, "line %u: a second v= line", ps.line_no);
        ms_err err = MS_OK;
        switch (type) {
        case 'o':
        case 's':
        case 't':
            if (in_media)
                return sdp_fail(detail, detail_cap, "line %u: %c= inside a media section",
                                ps.line_no, type);
            if (type == 'o')
                seen_o = true;
            else if (type == 's')
                seen_s = true;
            else
                seen_t = true;
            break;
        case 'c':
            if (!in_media)
                err = parse_connection(&ps, &session, v, vn);
            else if (in_audio)
                err = parse_connection(&ps, &audio, v, vn);
            break;
        case 'm': {
            if (!seen_o || !seen_s || !seen_t)
                return sdp_fail(detail, detail_cap, "line %u: m= before the session's %s line",
                                ps.line_no, !seen_o ? "o=" : !seen_s ? "s=" : "t=");
            in_media = true;
            in_audio = false;
            if (found_audio)
                break; /* only the first audio stream is ours */
            ms_sdp_audio m;
            memset(&m, 0, sizeof m);
            m.payload_type = -1;
            bool is_audio = false;
            err = parse_media(&ps, &m, &is_audio, v, vn);
            if (err == MS_OK && is_audio) {
                *out = m;
                in_audio = found_audio = true;
            }
            break;
        }
        case 'a':
            if (!in_media)
                err = parse_attribute(&ps, out, &session, false, v, vn);
            else if (in_audio)
                err = parse_attribute(&ps, out, &audio, true, v, vn);
            break;
        default:
            break;
        }
        if (err != MS_OK)
            return err;
    }
    if (!found_audio) {
        if (!seen_o || !seen_s || !seen_t)
            return sdp_fail(detail, detail_cap, "the SDP has no %s line",
                            !seen_o ? "o=" : !seen_s ? "s=" : "t=");
        return sdp_fail(detail, detail_cap, "the SDP has no m=audio stream");
    }
    const level *c = audio.has_c ? &audio : session.has_c ? &session : NULL;
    if (c == NULL)
        return sdp_fail(detail, detail_cap,
                        "no c= line for the audio stream (neither in it nor for the session)");
    memcpy(out->addr, c->addr, sizeof out->addr);
    const level *k = audio.key_mgmt != NULL ? &audio : &session;
    out->key_mgmt = k->key_mgmt;
    out->key_mgmt_len = k->key_mgmt_len;
    const level *s = audio.has_suite ? &audio : session.has_suite ? &session : NULL;
    if (s != NULL)
        memcpy(out->crypto_suite, s->suite, sizeof out->crypto_suite);
    const level *d = audio.has_dir ? &audio : session.has_dir ? &session : NULL;
    snprintf(out->direction, sizeof out->direction, "%s", d != NULL ? d->dir : "sendrecv");
    return MS_OK;
}
