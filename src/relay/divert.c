/* Mailbox of a diverted INVITE: see divert.h. */
#include "relay/divert.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void no_mailbox(char *detail, size_t cap, const char *to)
{
    if (detail != NULL && cap > 0)
        snprintf(detail, cap, "no mailbox for %s", to);
}

/* Copies a candidate; one too long to be a mailbox URI is left out, not cut. */
static void candidate(char *dst, size_t cap, const char *src)
{
    int n = snprintf(dst, cap, "%s", src);
    if (n < 0 || (size_t)n >= cap)
        dst[0] = '\0';
}

/* Characters kept in a mailbox URI: printable ASCII that needs no escaping in an index
 * line, a path-free hash input or a JSON string. */
static bool uri_char_ok(char c)
{
    return c > ' ' && c < 0x7f && c != '<' && c != '>' && c != '"' && c != '\\';
}

ms_err ms_vm_uri_normalise(const char *in, char *out, size_t cap)
{
    if (in == NULL || out == NULL || cap == 0)
        return MS_ERR_ARG;
    out[0] = '\0';
    /* A name-addr: what is between the angle brackets; else the addr-spec runs up to
     * the header parameters. */
    const char *start = in, *end;
    const char *lt = strchr(in, '<');
    if (lt != NULL) {
        start = lt + 1;
        end = strchr(start, '>');
        if (end == NULL)
            return MS_ERR_IDENTITY;
    } else {
        while (*start == ' ' || *start == '\t')
            start++;
        end = start + strlen(start);
        while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
                               end[-1] == '\n'))
            end--;
    }
    const char *colon = memchr(start, ':', (size_t)(end - start));
    if (colon == NULL)
        return MS_ERR_IDENTITY;
    char scheme[8];
    size_t sl = (size_t)(colon - start);
    if (sl == 0 || sl >= sizeof scheme)
        return MS_ERR_IDENTITY;
    for (size_t i = 0; i < sl; i++)
        scheme[i] = (char)tolower((unsigned char)start[i]);
    scheme[sl] = '\0';
    const char *rest = colon + 1;
    /* URI parameters and headers are not part of the mailbox. */
    const char *stop = rest;
    while (stop < end && *stop != ';' && *stop != '?')
        stop++;

    char buf[MS_VM_URI_MAX];
    size_t n = 0;
    if (strcmp(scheme, "tel") == 0) {
        if (stop == rest || (size_t)(stop - rest) + 4 >= sizeof buf)
            return MS_ERR_IDENTITY;
        n = (size_t)snprintf(buf, sizeof buf, "tel:%.*s", (int)(stop - rest), rest);
    } else if (strcmp(scheme, "sip") == 0 || strcmp(scheme, "sips") == 0) {
        const char *at = NULL;
        for (const char *p = rest; p < stop; p++)
            if (*p == '@')
                at = p;
        if (at == NULL || at == rest)
            return MS_ERR_IDENTITY; /* a mailbox needs a user part */
        const char *user_end = memchr(rest, ':', (size_t)(at - rest)); /* user:password */
        if (user_end == NULL)
            user_end = at;
        if (user_end == rest)
            return MS_ERR_IDENTITY;
        const char *host = at + 1, *host_end;
        if (host < stop && *host == '[') {
            host_end = memchr(host, ']', (size_t)(stop - host));
            if (host_end == NULL)
                return MS_ERR_IDENTITY;
            host_end++;
        } else {
            host_end = memchr(host, ':', (size_t)(stop - host));
            if (host_end == NULL)
                host_end = stop;
        }
        if (host_end == host)
            return MS_ERR_IDENTITY;
        size_t ul = (size_t)(user_end - rest), hl = (size_t)(host_end - host);
        if (ul + hl + 6 >= sizeof buf)
            return MS_ERR_IDENTITY;
        memcpy(buf, "sip:", 4);
        n = 4;
        memcpy(buf + n, rest, ul);
        n += ul;
        buf[n++] = '@';
        for (size_t i = 0; i < hl; i++)
            buf[n++] = (char)tolower((unsigned char)host[i]);
        buf[n] = '\0';
    } else {
        return MS_ERR_IDENTITY;
    }
    for (size_t i = 0; i < n; i++)
        if (!uri_char_ok(buf[i]))
            return MS_ERR_IDENTITY;
    if (n + 1 > cap)
        return MS_ERR_BUFFER_TOO_SMALL;
    memcpy(out, buf, n + 1);
    return MS_OK;
}

bool ms_vm_sip_header(const uint8_t *raw, size_t raw_len, const char *name, char compact,
                      char *out, size_t cap)
{
    if (raw == NULL || name == NULL || out == NULL || cap == 0)
        return false;
    out[0] = '\0';
    const char *p = (const char *)raw, *end = p + raw_len;
    size_t nl = strlen(name);
    /* Skip the start line. */
    const char *eol = memchr(p, '\n', raw_len);
    if (eol == NULL)
        return false;
    p = eol + 1;
    while (p < end) {
        eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol != NULL ? eol : end;
        const char *le = line_end;
        if (le > p && le[-1] == '\r')
            le--;
        if (le == p)
            return false; /* blank line: the body starts */
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon != NULL) {
            const char *ne = colon;
            while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t'))
                ne--;
            size_t len = (size_t)(ne - p);
            bool match = (len == nl && strncasecmp(p, name, nl) == 0) ||
                         (compact != 0 && len == 1 &&
                          tolower((unsigned char)*p) == tolower((unsigned char)compact));
            if (match) {
                const char *v = colon + 1;
                while (v < le && (*v == ' ' || *v == '\t'))
                    v++;
                const char *ve = le;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                    ve--;
                size_t vl = (size_t)(ve - v);
                if (vl >= cap || memchr(v, '\0', vl) != NULL)
                    return false;
                memcpy(out, v, vl);
                out[vl] = '\0';
                return true;
            }
        }
        if (eol == NULL)
            break;
        p = eol + 1;
    }
    return false;
}

/* The value of parameter `name` in a ';'-separated list, copied into out. */
static bool via_param(const char *params, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = strchr(params, ';'); p != NULL; p = strchr(p + 1, ';')) {
        const char *q = p + 1;
        while (*q == ' ')
            q++;
        if (strncasecmp(q, name, nl) == 0 && q[nl] == '=') {
            q += nl + 1;
            size_t len = strcspn(q, ";, \t");
            if (len == 0 || len >= cap)
                return false;
            memcpy(out, q, len);
            out[len] = '\0';
            return true;
        }
    }
    return false;
}

void ms_vm_sip_sender(const uint8_t *raw, size_t raw_len, char *out, size_t cap)
{
    snprintf(out, cap, "0.0.0.0:5060");
    char via[512];
    if (!ms_vm_sip_header(raw, raw_len, "Via", 'v', via, sizeof via))
        return;
    via[strcspn(via, ",")] = '\0'; /* the top value only */
    /* "SIP/2.0/TCP host[:port];params" */
    char *sp = via + strcspn(via, " \t");
    while (*sp == ' ' || *sp == '\t')
        sp++;
    char host[64] = "", port[8] = "5060";
    size_t hl = strcspn(sp, ":; \t");
    if (hl == 0 || hl >= sizeof host)
        return;
    memcpy(host, sp, hl);
    host[hl] = '\0';
    if (sp[hl] == ':') {
        size_t pl = strcspn(sp + hl + 1, "; \t");
        if (pl > 0 && pl < sizeof port) {
            memcpy(port, sp + hl + 1, pl);
            port[pl] = '\0';
        }
    }
    char v[64];
    if (via_param(sp, "received", v, sizeof v))
        snprintf(host, sizeof host, "%s", v);
    if (via_param(sp, "rport", v, sizeof port))
        memcpy(port, v, strlen(v) + 1); /* via_param kept it shorter than port */
    struct in_addr a;
    char *endp = NULL;
    unsigned long pn = strtoul(port, &endp, 10);
    if (inet_pton(AF_INET, host, &a) != 1 || endp == port || *endp != '\0' || pn == 0 ||
        pn > 65535)
        return;
    snprintf(out, cap, "%s:%lu", host, pn);
}

/* The first URI of a header value that may be a list ("<a>;p, <b>"). */
static void first_of_list(char *v)
{
    char *lt = strchr(v, '<');
    char *comma = strchr(v, ',');
    if (comma != NULL && (lt == NULL || comma < lt))
        *comma = '\0';
}

ms_err ms_vm_choose_mailbox(const uint8_t *raw, size_t raw_len, const char *to_uri,
                            const char *request_uri,
                            bool (*known)(void *ctx, const char *uri), void *known_ctx,
                            char *out, size_t cap, char *detail, size_t detail_cap)
{
    if (out == NULL || cap == 0)
        return MS_ERR_ARG;
    out[0] = '\0';
    enum { N_CAND = 5 };
    char cand[N_CAND][512];
    memset(cand, 0, sizeof cand);
    char hdr[512];
    if (raw != NULL && ms_vm_sip_header(raw, raw_len, "X-Original-To", 0, hdr, sizeof hdr))
        candidate(cand[0], sizeof cand[0], hdr);
    if (raw != NULL && ms_vm_sip_header(raw, raw_len, "Diversion", 0, hdr, sizeof hdr)) {
        first_of_list(hdr);
        candidate(cand[1], sizeof cand[1], hdr);
    }
    if (to_uri != NULL)
        candidate(cand[2], sizeof cand[2], to_uri);
    if (request_uri != NULL)
        candidate(cand[3], sizeof cand[3], request_uri);
    /* The Request-URI's user at the original callee's domain (host rewritten to ours). */
    char to_n[MS_VM_URI_MAX], ru_n[MS_VM_URI_MAX];
    if (to_uri != NULL && request_uri != NULL &&
        ms_vm_uri_normalise(to_uri, to_n, sizeof to_n) == MS_OK &&
        ms_vm_uri_normalise(request_uri, ru_n, sizeof ru_n) == MS_OK &&
        strncmp(to_n, "sip:", 4) == 0 && strncmp(ru_n, "sip:", 4) == 0) {
        char *to_at = strrchr(to_n, '@'), *ru_at = strrchr(ru_n, '@');
        if (to_at != NULL && ru_at != NULL)
            snprintf(cand[4], sizeof cand[4], "%.*s%s", (int)(ru_at - ru_n), ru_n, to_at);
    }
    for (int i = 0; i < N_CAND; i++) {
        char n[MS_VM_URI_MAX];
        if (cand[i][0] == '\0' || ms_vm_uri_normalise(cand[i], n, sizeof n) != MS_OK)
            continue;
        if (known == NULL || known(known_ctx, n)) {
            if (strlen(n) >= cap)
                return MS_ERR_BUFFER_TOO_SMALL;
            memcpy(out, n, strlen(n) + 1);
            return MS_OK;
        }
    }
    no_mailbox(detail, detail_cap, to_uri != NULL ? to_uri : "(no To)");
    return MS_ERR_USER_UNKNOWN;
}
