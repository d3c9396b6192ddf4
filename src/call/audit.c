/*
 * The auditor (audit.h). Two passes over the captures, each merged in time order:
 *   1. SIP: INVITEs with their SDP offer make the calls (deduplicated by Call-ID and by
 *      the key-mgmt attribute), answers add the callee's media address, BYE ends a call.
 *      Then each call's offer is checked with the audit keys: openable or not, and why.
 *   2. UDP: each datagram is given to a call and a direction by its addresses, then
 *      SRTP/SRTCP-unprotected with that direction's inbound context; Opus frames are
 *      decoded into the direction's WAV file, on two threads (Opus is most of the work).
 *      A datagram that a group key found in pass 1 opens is a group sender's instead.
 * Reading twice keeps memory flat whatever the capture's size: no datagram is buffered
 * beyond the decoders' bounded queues.
 */
#include "call/audit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "call/audio.h"
#include "call/group_media.h"
#include "capture/capture.h"
#include "group/group_internal.h"
#include "mikeysakke/crypto.h"
#include "sip/sdp.h"
#include "util/detail.h"
#include "util/file.h"
#include "util/hex.h"
#include "util/timefmt.h"

#define MAX_EP 8                         /* media addresses kept per side of a call */
#define MEDIA_BEFORE_INVITE_US 2000000u  /* clock slack between capture points */
#define MEDIA_AFTER_BYE_US 5000000u      /* packets still in flight after BYE */
#define MAX_CONCEAL 50                   /* a longer gap is a discontinuity, not loss */
#define PKT_CAP 65536
#define DEC_WORKERS 2                    /* Opus decoding threads (the directions in parallel) */
#define DEC_QUEUE 64                     /* packets waiting per decoding thread */
#define DEC_BATCH 32                     /* packets handed over (and taken) per lock */

/* ---- small helpers ----------------------------------------------------------------------- */

static void copy_span(char *out, size_t cap, const char *s, size_t len)
{
    if (cap == 0)
        return;
    if (len >= cap)
        len = cap - 1;
    memcpy(out, s, len);
    out[len] = '\0';
}

const char *ms_audit_dir_name(ms_audit_dir d)
{
    return d == MS_AUDIT_CALLER_TO_CALLEE ? "caller-to-callee" : "callee-to-caller";
}

/* ---- addresses --------------------------------------------------------------------------- */

typedef struct ep {
    uint8_t fam; /* 4 or 6; 0 = none */
    uint8_t addr[16];
    uint16_t port;
} ep;

static int ep_cmp(const ep *a, const ep *b)
{
    if (a->fam != b->fam)
        return a->fam < b->fam ? -1 : 1;
    int c = memcmp(a->addr, b->addr, 16);
    if (c != 0)
        return c;
    return a->port == b->port ? 0 : a->port < b->port ? -1 : 1;
}

static bool ep_from_ip(ep *e, const char *ip, size_t ip_len, uint16_t port)
{
    char buf[64];
    if (ip_len == 0 || ip_len >= sizeof buf)
        return false;
    memcpy(buf, ip, ip_len);
    buf[ip_len] = '\0';
    memset(e, 0, sizeof *e);
    e->port = port;
    if (inet_pton(AF_INET, buf, e->addr) == 1) {
        e->fam = 4;
        return true;
    }
    if (inet_pton(AF_INET6, buf, e->addr) == 1) {
        e->fam = 6;
        return true;
    }
    return false;
}

/* "IP:port" or "[v6]:port" as the capture reader writes them. */
static bool ep_parse(ep *e, const char *s)
{
    const char *colon;
    const char *ip = s;
    size_t ip_len;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return false;
        ip = s + 1;
        ip_len = (size_t)(close - ip);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return false;
        ip_len = (size_t)(colon - s);
    }
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || port > 65535 || end == colon + 1)
        return false;
    return ep_from_ip(e, ip, ip_len, (uint16_t)port);
}

static void ep_format(char *out, size_t cap, const ep *e)
{
    char ip[INET6_ADDRSTRLEN] = "";
    if (e->fam == 0) {
        copy_span(out, cap, "", 0);
        return;
    }
    inet_ntop(e->fam == 4 ? AF_INET : AF_INET6, e->addr, ip, sizeof ip);
    snprintf(out, cap, e->fam == 4 ? "%s:%u" : "[%s]:%u", ip, (unsigned)e->port);
}

static bool ep_is_unspecified(const ep *e)
{
    static const uint8_t zero[16];
    return memcmp(e->addr, zero, e->fam == 4 ? 4 : 16) == 0;
}

/* ---- a string -> index map (Call-IDs, key-mgmt values) ----------------------------------- */

typedef struct map_entry {
    char *key; /* NULL: empty slot */
    size_t len;
    size_t val;
} map_entry;

typedef struct strmap {
    map_entry *slot;
    size_t cap, used; /* cap: a power of two */
} strmap;

static uint64_t hash_span(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3u;
    return h;
}

static map_entry *map_find_slot(map_entry *slot, size_t cap, const char *s, size_t len)
{
    size_t i = (size_t)hash_span(s, len) & (cap - 1);
    while (slot[i].key != NULL && (slot[i].len != len || memcmp(slot[i].key, s, len) != 0))
        i = (i + 1) & (cap - 1);
    return &slot[i];
}

static bool map_get(const strmap *m, const char *s, size_t len, size_t *val)
{
    if (m->cap == 0)
        return false;
    map_entry *e = map_find_slot(m->slot, m->cap, s, len);
    if (e->key == NULL)
        return false;
    *val = e->val;
    return true;
}

static bool map_put(strmap *m, const char *s, size_t len, size_t val)
{
    if ((m->used + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        map_entry *ns = calloc(ncap, sizeof *ns);
        if (ns == NULL)
            return false;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slot[i].key != NULL)
                *map_find_slot(ns, ncap, m->slot[i].key, m->slot[i].len) = m->slot[i];
        free(m->slot);
        m->slot = ns;
        m->cap = ncap;
    }
    map_entry *e = map_find_slot(m->slot, m->cap, s, len);
    if (e->key == NULL) {
        e->key = malloc(len + 1);
        if (e->key == NULL)
            return false;
        memcpy(e->key, s, len);
        e->key[len] = '\0';
        e->len = len;
        m->used++;
    }
    e->val = val;
    return true;
}

static void map_free(strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slot[i].key);
    free(m->slot);
    memset(m, 0, sizeof *m);
}

/* ---- SIP messages, as far as the auditor needs them -------------------------------------- */

typedef struct span {
    const char *p;
    size_t len;
} span;

typedef struct sip_msg {
    bool request;
    span method; /* request: the method; response: CSeq's method */
    int status;
    span call_id, from, to, ctype, body;
} sip_msg;

static span trim(const char *p, size_t len)
{
    while (len > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\r'))
        len--;
    return (span){p, len};
}

static bool name_is(span name, const char *full, const char *compact)
{
    return (strlen(full) == name.len && strncasecmp(name.p, full, name.len) == 0) ||
           (compact != NULL && name.len == 1 && (name.p[0] | 0x20) == compact[0]);
}

/* A decimal number at the start of s (digits only inside the span); -1 if none. */
static long span_number(span s)
{
    long v = 0;
    size_t i = 0;
    for (; i < s.len && s.p[i] >= '0' && s.p[i] <= '9' && v < 100000000; i++)
        v = v * 10 + (s.p[i] - '0');
    return i == 0 ? -1 : v;
}

static bool span_is(span s, const char *lit)
{
    return strlen(lit) == s.len && memcmp(s.p, lit, s.len) == 0;
}

/* Start line, the headers we use and the body. false if it is not SIP. */
static bool sip_parse(sip_msg *m, const uint8_t *data, size_t len)
{
    memset(m, 0, sizeof *m);
    const char *p = (const char *)data, *end = p + len;
    const char *eol = memchr(p, '\n', len);
    if (eol == NULL)
        return false;
    span line = trim(p, (size_t)(eol - p));
    if (line.len > 8 && memcmp(line.p, "SIP/2.0 ", 8) == 0) {
        m->status = (int)span_number((span){line.p + 8, line.len - 8});
        if (m->status < 100 || m->status > 699)
            return false;
    } else {
        const char *sp = memchr(line.p, ' ', line.len);
        if (sp == NULL || line.len < 8 || memcmp(line.p + line.len - 8, " SIP/2.0", 8) != 0)
            return false;
        m->request = true;
        m->method = (span){line.p, (size_t)(sp - line.p)};
    }
    long clen = -1;
    p = eol + 1;
    while (p < end) {
        eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        span l = trim(p, (size_t)(le - p));
        p = eol ? eol + 1 : end;
        if (l.len == 0)
            break; /* the blank line: the body follows */
        if (*l.p == ' ' || *l.p == '\t')
            continue; /* a folded continuation: not of a header we use */
        const char *colon = memchr(l.p, ':', l.len);
        if (colon == NULL)
            continue;
        span name = trim(l.p, (size_t)(colon - l.p));
        span val = trim(colon + 1, l.len - (size_t)(colon + 1 - l.p));
        if (name_is(name, "Call-ID", "i"))
            m->call_id = val;
        else if (name_is(name, "From", "f"))
            m->from = val;
        else if (name_is(name, "To", "t"))
            m->to = val;
        else if (name_is(name, "Content-Type", "c"))
            m->ctype = val;
        else if (name_is(name, "Content-Length", "l"))
            clen = span_number(val);
        else if (name_is(name, "CSeq", NULL) && !m->request) {
            const char *sp = memchr(val.p, ' ', val.len);
            if (sp != NULL)
                m->method = trim(sp + 1, val.len - (size_t)(sp + 1 - val.p));
        }
    }
    size_t body_len = (size_t)(end - p);
    if (clen >= 0 && (size_t)clen < body_len)
        body_len = (size_t)clen;
    m->body = (span){p, body_len};
    return m->call_id.len > 0;
}

static bool body_is_sdp(const sip_msg *m)
{
    if (m->body.len < 4)
        return false;
    if (m->ctype.len > 0)
        return m->ctype.len >= 15 && strncasecmp(m->ctype.p, "application/sdp", 15) == 0;
    return memcmp(m->body.p, "v=0", 3) == 0;
}

/* The URI of a From/To value: inside <...>, else up to the first ';'. */
static void header_uri(char *out, size_t cap, span v)
{
    if (v.len == 0) { /* no such header */
        copy_span(out, cap, "", 0);
        return;
    }
    const char *lt = memchr(v.p, '<', v.len);
    if (lt != NULL) {
        const char *gt = memchr(lt, '>', v.len - (size_t)(lt - v.p));
        if (gt != NULL) {
            copy_span(out, cap, lt + 1, (size_t)(gt - lt - 1));
            return;
        }
    }
    const char *semi = memchr(v.p, ';', v.len);
    span u = trim(v.p, semi ? (size_t)(semi - v.p) : v.len);
    copy_span(out, cap, u.p, u.len);
}

/* ---- calls ------------------------------------------------------------------------------- */

/* One direction's state. srtp belongs to the reading thread; the rest (and the stream's
 * late/frames/concealed/file) to the one decoding thread the direction is given to. */
typedef struct dir_state {
    ms_srtp *srtp;
    uint64_t undecodable; /* authentic but not Opus: added to dropped at the end */
    ms_opus_dec *dec;
    ms_wav_writer *wav;
    bool have_seq;
    uint16_t next_seq;
    uint32_t ssrc;
} dir_state;

typedef struct call {
    ms_audit_call pub;
    size_t file;   /* capture in which the INVITE was first seen */
    char *offer;   /* the SDP offer (NULL: the INVITE had none) */
    size_t offer_len;
    ep offer_ep[MAX_EP], answer_ep[MAX_EP];
    size_t n_offer_ep, n_answer_ep;
    int opus_pt;   /* the offer's Opus payload type; -1: any */
    ms_call_crypto crypto;
    bool have_crypto;
    dir_state st[2];
} call;

/* One media address of one call, for the lookup by address. */
enum { ROLE_OFFER = 0, ROLE_ANSWER = 1 };
typedef struct ep_entry {
    ep addr;
    size_t call;
    uint8_t role;
    bool rtcp_port; /* port + 1 of the advertised one (RTCP without rtcp-mux) */
} ep_entry;

typedef struct reader {
    ms_capture_reader *r;
    ms_capture_item item;
    bool has;
    size_t file;
} reader;

/* A group key message and, once opened, its media state. */
typedef struct gsender {
    ms_opus_dec *dec;
    ms_wav_writer *wav;
} gsender;

typedef struct gmsg {
    char ctype[128];
    uint8_t *body;
    size_t len;
    ms_group_media *gm[2]; /* one per suite: the offer's suite is not needed to open */
    gsender *snd;          /* by sender slot */
    ms_audit_group pub;
} gmsg;

typedef struct audit {
    ms_call_keys *keys;
    ms_call_keys *group_keys; /* the options' or, once opened, open_group_keys's */
    gmsg *groups;
    size_t n_groups, cap_groups;
    const ms_audit_options *opt;
    const char *out_dir;
    const char *const *paths;
    size_t n_paths;
    call *calls;
    size_t n_calls, cap_calls;
    strmap by_id, by_keymgmt;
    ep_entry *eps;
    size_t n_eps;
    size_t *sole;   /* per capture: the one unanswered call it holds, or SIZE_MAX */
    uint8_t *pkt;
    struct decoder *dec;
    size_t n_dec;
    ms_audit_report *rep;
    char *detail;
    size_t detail_cap;
    bool first_pass; /* read problems are reported once, in the first pass */
} audit;

static void add_warning(audit *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_warning(audit *a, const char *fmt, ...)
{
    char *w = a->rep->warnings;
    size_t used = strlen(w), cap = sizeof a->rep->warnings;
    if (used + 3 >= cap)
        return;
    if (used > 0) {
        memcpy(w + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w + used, cap - used, fmt, ap);
    va_end(ap);
}

static void add_ep(ep *list, size_t *n, const ep *e)
{
    for (size_t i = 0; i < *n; i++)
        if (ep_cmp(&list[i], e) == 0)
            return;
    if (*n < MAX_EP)
        list[(*n)++] = *e;
}

/* An SDP body's audio stream; *has_ep when its address (c= and m=audio) is one we can
 * match datagrams on (not port 0 or 0.0.0.0, as on hold). */
static bool sdp_read(ms_sdp_audio *a, ep *e, bool *has_ep, const char *sdp, size_t len)
{
    char why[128];
    *has_ep = false;
    if (ms_sdp_parse(a, sdp, len, why, sizeof why) != MS_OK)
        return false;
    *has_ep = a->port != 0 && ep_from_ip(e, a->addr, strlen(a->addr), a->port) &&
              !ep_is_unspecified(e);
    return true;
}

static ms_err new_call(audit *a, size_t *out)
{
    if (a->n_calls == a->cap_calls) {
        size_t ncap = a->cap_calls ? a->cap_calls * 2 : 16;
        call *nc = realloc(a->calls, ncap * sizeof *nc);
        if (nc == NULL)
            return MS_ERR_NOMEM;
        a->calls = nc;
        a->cap_calls = ncap;
    }
    call *c = &a->calls[a->n_calls];
    memset(c, 0, sizeof *c);
    c->pub.index = a->n_calls + 1;
    c->opus_pt = -1;
    *out = a->n_calls++;
    return MS_OK;
}

static ms_err on_invite(audit *a, const sip_msg *m, const ms_capture_item *it, size_t file)
{
    size_t idx;
    bool has_sdp = body_is_sdp(m);
    ms_sdp_audio sdp;
    ep media;
    bool has_ep = false;
    bool parsed = has_sdp && sdp_read(&sdp, &media, &has_ep, m->body.p, m->body.len);
    bool has_km = parsed && sdp.key_mgmt != NULL;
    if (!has_sdp) {
        /* an INVITE without offer: a re-INVITE in a known dialog, or a late offer */
        if (map_get(&a->by_id, m->call_id.p, m->call_id.len, &idx))
            return MS_OK;
    }
    if (has_sdp && map_get(&a->by_id, m->call_id.p, m->call_id.len, &idx)) {
        call *c = &a->calls[idx];
        bool same = c->offer != NULL &&
                    ((c->offer_len == m->body.len &&
                      memcmp(c->offer, m->body.p, m->body.len) == 0) ||
                     (!has_km));
        if (!same && has_km) {
            size_t other;
            same = map_get(&a->by_keymgmt, sdp.key_mgmt, sdp.key_mgmt_len, &other) &&
                   other == idx;
        }
        if (same) { /* a copy (proxy leg, retransmission): its address may differ */
            if (has_ep)
                add_ep(c->offer_ep, &c->n_offer_ep, &media);
            return MS_OK;
        }
        /* same dialog, new keys (a re-keying re-INVITE): a call of its own */
    }
    if (has_km && map_get(&a->by_keymgmt, sdp.key_mgmt, sdp.key_mgmt_len, &idx)) {
        /* the same I_MESSAGE under another Call-ID (a B2BUA's other leg) */
        call *c = &a->calls[idx];
        if (has_ep)
            add_ep(c->offer_ep, &c->n_offer_ep, &media);
        return map_put(&a->by_id, m->call_id.p, m->call_id.len, idx) ? MS_OK : MS_ERR_NOMEM;
    }
    ms_err e = new_call(a, &idx);
    if (e != MS_OK)
        return e;
    call *c = &a->calls[idx];
    c->file = file;
    c->pub.invite_us = it->t_us;
    copy_span(c->pub.call_id, sizeof c->pub.call_id, m->call_id.p, m->call_id.len);
    header_uri(c->pub.caller_claimed, sizeof c->pub.caller_claimed, m->from);
    header_uri(c->pub.callee_claimed, sizeof c->pub.callee_claimed, m->to);
    if (has_sdp) {
        c->offer = malloc(m->body.len + 1);
        if (c->offer == NULL)
            return MS_ERR_NOMEM;
        memcpy(c->offer, m->body.p, m->body.len);
        c->offer[m->body.len] = '\0';
        c->offer_len = m->body.len;
    }
    if (has_ep) {
        add_ep(c->offer_ep, &c->n_offer_ep, &media);
        ep_format(c->pub.caller_media, sizeof c->pub.caller_media, &media);
    }
    if (parsed)
        c->opus_pt = strncasecmp(sdp.codec, "opus/", 5) == 0 ? sdp.payload_type : -1;
    if (!map_put(&a->by_id, m->call_id.p, m->call_id.len, idx) ||
        (has_km && !map_put(&a->by_keymgmt, sdp.key_mgmt, sdp.key_mgmt_len, idx)))
        return MS_ERR_NOMEM;
    return MS_OK;
}

/* ---- group keys (SIP MESSAGE from the GMS) and group media --------------------------------- */

/* A GMS's MESSAGE (multipart/mixed: GMK I_MESSAGE and signed roster); copies of it (the
 * GMS's leg and the provider's) count once. */
static ms_err on_group_message(audit *a, const sip_msg *m, uint64_t t_us)
{
    bool can_open = a->opt->group_keys != NULL || a->opt->open_group_keys != NULL;
    if (!can_open || m->ctype.len < 15 ||
        strncasecmp(m->ctype.p, "multipart/mixed", 15) != 0 ||
        m->ctype.len >= sizeof a->groups[0].ctype)
        return MS_OK;
    for (size_t i = 0; i < a->n_groups; i++)
        if (a->groups[i].len == m->body.len &&
            memcmp(a->groups[i].body, m->body.p, m->body.len) == 0)
            return MS_OK;
    if (a->n_groups == a->cap_groups) {
        size_t ncap = a->cap_groups ? 2 * a->cap_groups : 4;
        gmsg *ng = realloc(a->groups, ncap * sizeof *ng);
        if (ng == NULL)
            return MS_ERR_NOMEM;
        a->groups = ng;
        a->cap_groups = ncap;
    }
    gmsg *g = &a->groups[a->n_groups];
    memset(g, 0, sizeof *g);
    if ((g->body = malloc(m->body.len ? m->body.len : 1)) == NULL)
        return MS_ERR_NOMEM;
    memcpy(g->body, m->body.p, m->body.len);
    g->len = m->body.len;
    copy_span(g->ctype, sizeof g->ctype, m->ctype.p, m->ctype.len);
    header_uri(g->pub.member, sizeof g->pub.member, m->to);
    g->pub.message_us = t_us;
    g->pub.index = ++a->n_groups;
    return MS_OK;
}

/* --group-message files: a SIP MESSAGE as sent (headers and body). */
static ms_err read_group_messages(audit *a)
{
    for (size_t i = 0; i < a->opt->n_group_messages; i++) {
        const char *path = a->opt->group_messages[i];
        FILE *f = fopen(path, "rb");
        size_t n = f != NULL ? fread(a->pkt, 1, PKT_CAP, f) : 0;
        bool too_big = f != NULL && n == PKT_CAP;
        if (f != NULL)
            fclose(f);
        sip_msg m;
        if (f == NULL || too_big || !sip_parse(&m, a->pkt, n) || !m.request ||
            !span_is(m.method, "MESSAGE")) {
            ms_detail_set(a->detail, a->detail_cap, "%s: %s", path,
                          f == NULL ? "cannot be read" : "not a SIP MESSAGE");
            return MS_ERR_CAPTURE;
        }
        ms_err e = on_group_message(a, &m, 0);
        if (e != MS_OK)
            return e;
    }
    return MS_OK;
}

static void group_refuse(gmsg *g, ms_err err, const char *why)
{
    g->pub.err = err;
    snprintf(g->pub.why, sizeof g->pub.why, "%s", why[0] ? why : ms_strerror(err));
}

static ms_err open_group(audit *a, gmsg *g)
{
    char why[256] = "";
    ms_mikey_span mk, ro;
    ms_err err = group_body_parse(g->ctype, g->body, g->len, &mk, &ro, why, sizeof why);
    if (err != MS_OK) {
        group_refuse(g, err, why);
        return MS_OK;
    }
    ms_call_crypto cr;
    ms_call_refusal rf;
    err = ms_call_open_imessage(a->group_keys, &cr, &rf, mk.data, mk.len, NULL);
    if (err != MS_OK) {
        group_refuse(g, err, rf.warning);
        return MS_OK;
    }
    const ms_mikey_result *res = &cr.mikey;
    group_roster r;
    ms_keystore_identity id;
    memset(&id, 0, sizeof id);
    const ms_mikey_kms_info *kms = a->opt->kms;
    ms_group_key key;
    memset(&key, 0, sizeof key);
    if (res->profile != MS_MIKEY_PROFILE_GMK || !res->has_key_params || res->n_cs < 1 ||
        kms == NULL) {
        group_refuse(g, MS_ERR_GROUP, "the I_MESSAGE is not a GMK message with key "
                     "parameters");
        goto out;
    }
    snprintf(id.kms_uri, sizeof id.kms_uri, "%s", kms->uri);
    id.scheme = kms->scheme;
    id.scheme.kms_uri = id.kms_uri;
    memcpy(id.kpak, kms->kpak, sizeof id.kpak);
    if ((err = group_roster_verify(&r, (const char *)ro.data, ro.len, &id, why, sizeof why)) !=
        MS_OK) {
        group_refuse(g, err, why);
        goto out;
    }
    if (strcmp(r.gms, res->initiator) != 0 || r.gmk_id != res->key_id ||
        r.activation != res->key_params.activation || r.expiry != res->key_params.expiry) {
        group_refuse(g, MS_ERR_GROUP, "the roster does not belong to the key");
        goto out;
    }
    snprintf(key.group, sizeof key.group, "%s", r.group);
    memcpy(key.gmk, res->key, 16);
    key.gmk_len = 16;
    key.gmk_id = res->key_id;
    memcpy(key.rand, res->rand, res->rand_len);
    key.rand_len = res->rand_len;
    key.prf = res->prf;
    key.cs_id = res->cs[0].cs_id;
    const ms_srtp_suite suites[2] = {MS_SRTP_AEAD_AES_128_GCM, MS_SRTP_AES_CM_128_HMAC_SHA1_80};
    for (int i = 0; i < 2 && err == MS_OK; i++)
        err = ms_group_media_new(&g->gm[i], &key, res->responder, suites[i], 1, why,
                                 sizeof why);
    g->pub.senders = calloc(r.n_members ? r.n_members : 1, sizeof *g->pub.senders);
    g->snd = calloc(r.n_members ? r.n_members : 1, sizeof *g->snd);
    if (err == MS_OK && (g->pub.senders == NULL || g->snd == NULL))
        err = MS_ERR_NOMEM;
    for (const char *q = r.members, *end = r.members + r.members_len; err == MS_OK && q < end;) {
        const char *eol = memchr(q, '\n', (size_t)(end - q));
        size_t idx = 0, idx2 = 0;
        ms_audit_group_sender *gs = &g->pub.senders[g->pub.n_senders];
        copy_span(gs->uri, sizeof gs->uri, q + 7, (size_t)(eol - q - 7));
        q = eol + 1;
        if ((err = ms_group_media_add_sender(g->gm[0], gs->uri, &idx)) != MS_OK ||
            (err = ms_group_media_add_sender(g->gm[1], gs->uri, &idx2)) != MS_OK)
            break;
        if (idx != g->pub.n_senders || idx2 != idx) {
            err = MS_ERR_INTERNAL;
            break;
        }
        g->pub.n_senders++;
    }
    if (err != MS_OK) {
        if (err == MS_ERR_NOMEM)
            goto out;
        group_refuse(g, err, "the roster's senders cannot be keyed");
        err = MS_OK;
        goto out;
    }
    g->pub.openable = true;
    snprintf(g->pub.group, sizeof g->pub.group, "%s", r.group);
    snprintf(g->pub.gms, sizeof g->pub.gms, "%s", r.gms);
    g->pub.gmk_id = res->key_id;
    g->pub.activation = r.activation;
    g->pub.expiry = r.expiry;
out:
    ms_group_key_wipe(&key);
    ms_call_crypto_wipe(&cr);
    return err == MS_ERR_NOMEM ? err : MS_OK;
}

/* A sender's WAV: group-<i>-<user part>.wav. */
static ms_err group_wav(audit *a, gmsg *g, size_t slot)
{
    ms_audit_group_sender *gs = &g->pub.senders[slot];
    const char *u = strchr(gs->uri, ':');
    u = u ? u + 1 : gs->uri;
    size_t n = strcspn(u, "@;>");
    char name[40];
    if (n >= sizeof name)
        n = sizeof name - 1;
    for (size_t i = 0; i < n; i++) {
        char ch = u[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '+' || ch == '-';
        name[i] = ok ? ch : '_';
    }
    name[n] = 0;
    snprintf(gs->s.file, sizeof gs->s.file, "group-%zu-%s-%zu.wav", g->pub.index, name, slot);
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", a->out_dir, gs->s.file);
    ms_err e = ms_opus_dec_new(&g->snd[slot].dec, 1);
    if (e == MS_OK)
        e = ms_wav_create(&g->snd[slot].wav, path, MS_AUDIO_RATE, 1, a->detail, a->detail_cap);
    if (e != MS_OK)
        gs->s.file[0] = '\0';
    return e;
}

/* A datagram of a group call, if one of the group keys opens it: true (and counted). */
static bool group_packet(audit *a, const ms_capture_item *it, ms_err *fatal)
{
    for (size_t i = 0; i < a->n_groups; i++) {
        gmsg *g = &a->groups[i];
        if (!g->pub.openable)
            continue;
        for (int k = 0; k < 2; k++) {
            size_t len = it->len, slot = 0;
            bool rtcp = false;
            if (len > PKT_CAP)
                return false;
            memcpy(a->pkt, it->data, len);
            ms_err e = ms_group_media_unprotect(g->gm[k], a->pkt, &len, &rtcp, &slot);
            if (e == MS_ERR_SRTP_REPLAY) {
                g->pub.duplicates++;
                return true;
            }
            if (e != MS_OK || slot >= g->pub.n_senders)
                continue;
            ms_audit_stream *s = &g->pub.senders[slot].s;
            if (rtcp) {
                s->rtcp++;
                return true;
            }
            ms_rtp_header h;
            size_t off, plen;
            if (ms_rtp_parse(&h, &off, &plen, a->pkt, len) != MS_OK) {
                s->dropped++;
                return true;
            }
            s->decrypted++;
            s->ssrc = h.ssrc;
            if (s->first_us == 0)
                s->first_us = it->t_us;
            s->last_us = it->t_us;
            if (a->opt->no_audio)
                return true;
            if (g->snd[slot].wav == NULL && (*fatal = group_wav(a, g, slot)) != MS_OK)
                return true;
            int16_t pcm[MS_AUDIO_FRAME];
            if (ms_opus_decode(g->snd[slot].dec, pcm, a->pkt + off, plen) != MS_OK) {
                s->dropped++;
                return true;
            }
            if ((*fatal = ms_wav_append(g->snd[slot].wav, pcm, MS_AUDIO_FRAME)) != MS_OK)
                ms_detail_set(a->detail, a->detail_cap, "%s/%s: cannot be written",
                              a->out_dir, g->pub.senders[slot].s.file);
            else
                s->frames++;
            return true;
        }
    }
    return false;
}

/* Closes the groups' media; WAVs kept only when commit is true. The public parts move
 * to the report. */
static ms_err finish_groups(audit *a, bool commit)
{
    ms_err first = MS_OK;
    for (size_t i = 0; i < a->n_groups; i++) {
        gmsg *g = &a->groups[i];
        for (size_t k = 0; g->snd != NULL && k < g->pub.n_senders; k++) {
            if (g->snd[k].wav != NULL) {
                ms_err e = ms_wav_close(g->snd[k].wav, commit);
                if (e != MS_OK && commit && first == MS_OK)
                    first = e;
                if (e != MS_OK || !commit)
                    g->pub.senders[k].s.file[0] = '\0';
            }
            ms_opus_dec_free(g->snd[k].dec);
        }
        free(g->snd);
        g->snd = NULL;
        ms_group_media_free(g->gm[0]);
        ms_group_media_free(g->gm[1]);
        g->gm[0] = g->gm[1] = NULL;
        free(g->body);
        g->body = NULL;
    }
    return first;
}

static void on_sip(audit *a, const ms_capture_item *it, size_t file, ms_err *fatal)
{
    sip_msg m;
    if (!sip_parse(&m, it->data, it->len))
        return;
    size_t idx;
    if (m.request && span_is(m.method, "INVITE")) {
        *fatal = on_invite(a, &m, it, file);
        return;
    }
    if (m.request && span_is(m.method, "MESSAGE")) {
        *fatal = on_group_message(a, &m, it->t_us);
        return;
    }
    if (!map_get(&a->by_id, m.call_id.p, m.call_id.len, &idx))
        return;
    call *c = &a->calls[idx];
    if (m.request) {
        if (span_is(m.method, "BYE") && c->pub.bye_us == 0)
            c->pub.bye_us = it->t_us;
        return;
    }
    if (!span_is(m.method, "INVITE"))
        return;
    if (m.status >= 200 && (c->pub.final_status != 200 || m.status == 200))
        c->pub.final_status = m.status;
    ms_sdp_audio sdp;
    ep media;
    bool has_ep = false;
    if (m.status < 300 && body_is_sdp(&m) &&
        sdp_read(&sdp, &media, &has_ep, m.body.p, m.body.len) && has_ep) {
        if (c->n_answer_ep == 0) {
            ep_format(c->pub.callee_media, sizeof c->pub.callee_media, &media);
            c->pub.answer_us = it->t_us;
        }
        add_ep(c->answer_ep, &c->n_answer_ep, &media);
    }
}

/* ---- reading the captures merged in time order ------------------------------------------- */

static void readers_close(reader *rd, size_t n)
{
    for (size_t i = 0; rd != NULL && i < n; i++)
        ms_capture_close_reader(rd[i].r);
    free(rd);
}

static void reader_advance(audit *a, reader *r)
{
    char why[256] = "";
    int got = ms_capture_next(r->r, &r->item, why, sizeof why);
    r->has = got == 1;
    if (got < 0 && a->first_pass)
        add_warning(a, "%s: read stopped early: %s", a->paths[r->file], why);
}

static ms_err readers_open(audit *a, reader **out)
{
    reader *rd = calloc(a->n_paths, sizeof *rd);
    if (rd == NULL)
        return MS_ERR_NOMEM;
    for (size_t i = 0; i < a->n_paths; i++) {
        char why[256] = "";
        rd[i].file = i;
        ms_err e = ms_capture_open(&rd[i].r, a->paths[i], why, sizeof why);
        if (e != MS_OK) {
            ms_detail_set(a->detail, a->detail_cap, "%s: %s", a->paths[i],
                       why[0] ? why : ms_strerror(e));
            readers_close(rd, a->n_paths);
            return e;
        }
        reader_advance(a, &rd[i]);
    }
    *out = rd;
    return MS_OK;
}

static reader *readers_next(reader *rd, size_t n)
{
    reader *best = NULL;
    for (size_t i = 0; i < n; i++)
        if (rd[i].has && (best == NULL || rd[i].item.t_us < best->item.t_us))
            best = &rd[i];
    return best;
}

/* ---- pass 1: the calls ------------------------------------------------------------------- */

static ms_err pass_signalling(audit *a)
{
    reader *rd;
    a->first_pass = true;
    ms_err e = readers_open(a, &rd);
    if (e != MS_OK)
        return e;
    reader *r;
    while (e == MS_OK && (r = readers_next(rd, a->n_paths)) != NULL) {
        if (r->item.kind == MS_CAPTURE_SIP) {
            a->rep->sip_messages++;
            on_sip(a, &r->item, r->file, &e);
        }
        reader_advance(a, r);
    }
    readers_close(rd, a->n_paths);
    a->first_pass = false;
    if (e == MS_ERR_NOMEM)
        ms_detail_set(a->detail, a->detail_cap, "out of memory reading the signalling");
    return e;
}

/* Whether a claimed SIP URI names the identity MIKEY verified. */
static bool claim_matches(const char *claimed, const char *verified, ms_mikey_profile profile)
{
    char id[256];
    if (claimed[0] == '\0' || verified[0] == '\0')
        return false;
    if (ms_call_identity_from_sip(id, sizeof id, claimed, profile) != MS_OK)
        return false;
    return strcmp(id, verified) == 0;
}

static void open_call(audit *a, call *c)
{
    ms_audit_call *p = &c->pub;
    /* No answer SDP and not refused: a recorded message (a refused call has no media) */
    p->voicemail = c->n_answer_ep == 0 && (p->final_status == 0 || p->final_status < 300);
    if (c->offer == NULL) {
        p->err = MS_ERR_NOT_SECURE;
        snprintf(p->why, sizeof p->why, "the INVITE carries no SDP offer");
        return;
    }
    ms_call_refusal why;
    memset(&why, 0, sizeof why);
    ms_err e = ms_call_check_offer(a->keys, &c->crypto, NULL, &why, c->offer, c->offer_len,
                                   NULL);
    if (e != MS_OK) {
        ms_call_crypto_wipe(&c->crypto);
        p->err = e;
        snprintf(p->why, sizeof p->why, "%s", why.warning[0] ? why.warning : ms_strerror(e));
        return;
    }
    c->have_crypto = true;
    p->openable = true;
    const ms_mikey_result *r = &c->crypto.mikey;
    p->opened_as_caller = c->crypto.opened_as_initiator;
    const char *own = ms_call_keys_own_uri(a->keys);
    snprintf(p->caller_verified, sizeof p->caller_verified, "%s",
             r->initiator[0] ? r->initiator : p->opened_as_caller ? own : c->crypto.peer);
    snprintf(p->callee_verified, sizeof p->callee_verified, "%s",
             r->responder[0] ? r->responder : p->opened_as_caller ? c->crypto.peer : own);
    ms_mikey_profile prof = r->profile;
    p->caller_claim_matches = claim_matches(p->caller_claimed, p->caller_verified, prof);
    p->callee_claim_matches = claim_matches(p->callee_claimed, p->callee_verified, prof);
    p->period_no = c->crypto.period_no;
    p->key_id = c->crypto.key_id;
    p->mikey_time = r->timestamp;
    p->suite = c->crypto.suite;
}

static int ep_entry_cmp(const void *x, const void *y)
{
    const ep_entry *a = x, *b = y;
    int c = ep_cmp(&a->addr, &b->addr);
    if (c != 0)
        return c;
    return a->call < b->call ? -1 : a->call > b->call ? 1 : 0;
}

static ms_err index_media(audit *a)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n_calls; i++)
        n += 2 * (a->calls[i].n_offer_ep + a->calls[i].n_answer_ep);
    a->eps = calloc(n ? n : 1, sizeof *a->eps);
    a->sole = malloc(a->n_paths * sizeof *a->sole);
    size_t *count = calloc(a->n_paths, sizeof *count);
    if (a->eps == NULL || a->sole == NULL || count == NULL) {
        free(count);
        ms_detail_set(a->detail, a->detail_cap, "out of memory indexing the media addresses");
        return MS_ERR_NOMEM;
    }
    for (size_t i = 0; i < a->n_calls; i++) {
        const call *c = &a->calls[i];
        for (int role = ROLE_OFFER; role <= ROLE_ANSWER; role++) {
            const ep *list = role == ROLE_OFFER ? c->offer_ep : c->answer_ep;
            size_t cnt = role == ROLE_OFFER ? c->n_offer_ep : c->n_answer_ep;
            for (size_t k = 0; k < cnt; k++) {
                ep_entry *x = &a->eps[a->n_eps++];
                x->addr = list[k];
                x->call = i;
                x->role = (uint8_t)role;
                ep_entry *y = &a->eps[a->n_eps++];
                *y = *x;
                y->addr.port = (uint16_t)(list[k].port + 1);
                y->rtcp_port = true;
            }
        }
        count[c->file]++;
    }
    qsort(a->eps, a->n_eps, sizeof *a->eps, ep_entry_cmp);
    for (size_t f = 0; f < a->n_paths; f++)
        a->sole[f] = SIZE_MAX;
    for (size_t i = 0; i < a->n_calls; i++) {
        const call *c = &a->calls[i];
        if (count[c->file] == 1 && c->n_answer_ep == 0)
            a->sole[c->file] = i;
    }
    free(count);
    return MS_OK;
}

/* The call that `e` (in `role`) belongs to at time t: the latest one started by then and
 * not long over (one whose INVITE is stamped up to MEDIA_BEFORE_INVITE_US later only if
 * none started: clocks of capture points differ); an exact port beats port + 1.
 * SIZE_MAX if none. */
static size_t find_call(const audit *a, const ep *e, int role, uint64_t t)
{
    size_t lo = 0, hi = a->n_eps;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ep_cmp(&a->eps[mid].addr, e) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t best = SIZE_MAX;
    bool best_started = false, best_rtcp = true;
    uint64_t best_t = 0;
    for (size_t i = lo; i < a->n_eps && ep_cmp(&a->eps[i].addr, e) == 0; i++) {
        const ep_entry *x = &a->eps[i];
        if (x->role != role)
            continue;
        const ms_audit_call *c = &a->calls[x->call].pub;
        if (c->invite_us > t + MEDIA_BEFORE_INVITE_US)
            continue;
        if (c->bye_us != 0 && t > c->bye_us + MEDIA_AFTER_BYE_US)
            continue;
        bool started = c->invite_us <= t;
        bool better;
        if (best == SIZE_MAX || started != best_started)
            better = best == SIZE_MAX || started;
        else if (c->invite_us != best_t)
            better = c->invite_us > best_t;
        else
            better = best_rtcp && !x->rtcp_port;
        if (better) {
            best = x->call;
            best_started = started;
            best_t = c->invite_us;
            best_rtcp = x->rtcp_port;
        }
    }
    return best;
}

/* ---- pass 2: the media ------------------------------------------------------------------- */

/* Decoding: each direction is given to one of DEC_WORKERS threads (in order, through a
 * bounded queue), so the directions of a call are decoded in parallel while the reading
 * thread decrypts. Packets cross in batches of DEC_BATCH: handed over one by one, the
 * contended lock put ~1,400 thread switches into a 20 s call. Without threads (none could
 * start) the queue is bypassed. */
typedef struct dec_job {
    size_t call;
    ms_audit_dir dir;
    ms_rtp_header h;
    size_t len; /* may exceed the buffer: then it is no Opus packet */
    uint8_t payload[MS_AUDIO_MAX_PACKET];
} dec_job;

typedef struct decoder {
    audit *a;
    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t can_put, can_get;
    dec_job *ring;
    size_t head, count;
    dec_job *stage; /* the reading thread's batch, handed over in one locked step */
    size_t staged;
    bool closing;
    ms_err err;
    char detail[512];
    int16_t pcm[MS_AUDIO_FRAME];
} decoder;

static ms_err wav_frame(decoder *w, call *c, ms_audit_dir d, const uint8_t *payload, size_t len)
{
    dir_state *s = &c->st[d];
    ms_audit_stream *st = &c->pub.dir[d];
    ms_err e;
    if (s->dec == NULL && (e = ms_opus_dec_new(&s->dec, 1)) != MS_OK) {
        ms_detail_set(w->detail, sizeof w->detail, "call %zu: Opus decoder: %s", c->pub.index,
                   ms_strerror(e));
        return e;
    }
    if (s->wav == NULL) {
        char path[4096], why[256] = "";
        snprintf(st->file, sizeof st->file, "call-%zu-%s.wav", c->pub.index,
                 ms_audit_dir_name(d));
        snprintf(path, sizeof path, "%s/%s", w->a->out_dir, st->file);
        e = ms_wav_create(&s->wav, path, MS_AUDIO_RATE, 1, why, sizeof why);
        if (e != MS_OK) {
            st->file[0] = '\0';
            ms_detail_set(w->detail, sizeof w->detail, "%s: %s", path,
                       why[0] ? why : ms_strerror(e));
            return e;
        }
    }
    e = payload != NULL && len > MS_AUDIO_MAX_PACKET
            ? MS_ERR_MEDIA
            : ms_opus_decode(s->dec, w->pcm, payload, len);
    if (e != MS_OK && payload != NULL) {
        /* authentic but undecodable: keep the timing with concealment */
        s->undecodable++;
        st->concealed++;
        e = ms_opus_decode(s->dec, w->pcm, NULL, 0);
    }
    if (e != MS_OK)
        memset(w->pcm, 0, sizeof w->pcm);
    e = ms_wav_append(s->wav, w->pcm, MS_AUDIO_FRAME);
    if (e != MS_OK) {
        ms_detail_set(w->detail, sizeof w->detail, "%s/%s: write failed", w->a->out_dir,
                   st->file);
        return e;
    }
    st->frames++;
    return MS_OK;
}

static ms_err audio_packet(decoder *w, call *c, ms_audit_dir d, const ms_rtp_header *h,
                           const uint8_t *payload, size_t len)
{
    dir_state *s = &c->st[d];
    ms_audit_stream *st = &c->pub.dir[d];
    if (c->opus_pt >= 0 && h->payload_type != c->opus_pt)
        return MS_OK; /* DTMF, comfort noise: authentic, not audio we decode */
    if (!s->have_seq || h->ssrc != s->ssrc) {
        s->have_seq = true;
        s->ssrc = h->ssrc;
        s->next_seq = h->seq;
    }
    uint16_t gap = (uint16_t)(h->seq - s->next_seq);
    if (gap >= 0x8000) {
        st->late++;
        return MS_OK;
    }
    ms_err e;
    for (uint16_t i = 0; gap <= MAX_CONCEAL && i < gap; i++) {
        if ((e = wav_frame(w, c, d, NULL, 0)) != MS_OK)
            return e;
        st->concealed++;
    }
    s->next_seq = (uint16_t)(h->seq + 1);
    return wav_frame(w, c, d, payload, len);
}

static void *decoder_main(void *arg)
{
    decoder *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->count == 0 && !w->closing)
            pthread_cond_wait(&w->can_get, &w->mu);
        if (w->count == 0)
            break;
        /* The batch is decoded where it lies: the reading thread writes only outside
         * [head, head + count), and these slots are released after. */
        size_t n = w->count < DEC_BATCH ? w->count : DEC_BATCH;
        size_t first = w->head;
        ms_err e = w->err;
        pthread_mutex_unlock(&w->mu);
        /* after a failure the queue is only drained; a length beyond the buffer is no
         * Opus packet: wav_frame conceals it unread */
        for (size_t i = 0; e == MS_OK && i < n; i++) {
            const dec_job *j = &w->ring[(first + i) % DEC_QUEUE];
            e = audio_packet(w, &w->a->calls[j->call], j->dir, &j->h, j->payload, j->len);
        }
        pthread_mutex_lock(&w->mu);
        if (e != MS_OK && w->err == MS_OK)
            w->err = e;
        w->head = (first + n) % DEC_QUEUE;
        w->count -= n;
        pthread_cond_signal(&w->can_put);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Starts the decoding threads; with none, decoding runs inline (dec_submit). */
static ms_err decoders_start(audit *a)
{
    a->dec = calloc(DEC_WORKERS, sizeof *a->dec);
    if (a->dec == NULL)
        return MS_ERR_NOMEM;
    a->n_dec = DEC_WORKERS;
    for (size_t i = 0; i < a->n_dec; i++) {
        decoder *w = &a->dec[i];
        w->a = a;
        w->ring = malloc(DEC_QUEUE * sizeof *w->ring);
        w->stage = malloc(DEC_BATCH * sizeof *w->stage);
        if (w->ring == NULL || w->stage == NULL || pthread_mutex_init(&w->mu, NULL) != 0)
            return MS_ERR_NOMEM;
        if (pthread_cond_init(&w->can_put, NULL) != 0) {
            pthread_mutex_destroy(&w->mu);
            return MS_ERR_NOMEM;
        }
        if (pthread_cond_init(&w->can_get, NULL) != 0) {
            pthread_cond_destroy(&w->can_put);
            pthread_mutex_destroy(&w->mu);
            return MS_ERR_NOMEM;
        }
        w->running = pthread_create(&w->thread, NULL, decoder_main, w) == 0;
        if (!w->running) {
            pthread_cond_destroy(&w->can_get);
            pthread_cond_destroy(&w->can_put);
            pthread_mutex_destroy(&w->mu);
            free(w->ring);
            w->ring = NULL;
        }
    }
    return MS_OK;
}

/* Moves the reading thread's batch into the thread's queue. */
static ms_err dec_flush(decoder *w)
{
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->staged && w->err == MS_OK; i++) {
        while (w->count == DEC_QUEUE && w->err == MS_OK)
            pthread_cond_wait(&w->can_put, &w->mu);
        if (w->err == MS_OK) {
            w->ring[(w->head + w->count) % DEC_QUEUE] = w->stage[i];
            w->count++;
        }
    }
    w->staged = 0;
    ms_err e = w->err;
    pthread_cond_signal(&w->can_get);
    pthread_mutex_unlock(&w->mu);
    return e;
}

/* Waits for the queues to drain and the threads to end; the first failure wins (its
 * detail is kept unless the caller already has one). */
static ms_err decoders_stop(audit *a, bool set_why)
{
    ms_err first = MS_OK;
    for (size_t i = 0; a->dec != NULL && i < a->n_dec; i++) {
        decoder *w = &a->dec[i];
        if (w->running) {
            dec_flush(w);
            pthread_mutex_lock(&w->mu);
            w->closing = true;
            pthread_cond_signal(&w->can_get);
            pthread_mutex_unlock(&w->mu);
            pthread_join(w->thread, NULL);
            pthread_cond_destroy(&w->can_get);
            pthread_cond_destroy(&w->can_put);
            pthread_mutex_destroy(&w->mu);
        }
        if (w->err != MS_OK && first == MS_OK) {
            first = w->err;
            if (set_why)
                ms_detail_set(a->detail, a->detail_cap, "%s", w->detail);
        }
        free(w->ring);
        free(w->stage);
    }
    free(a->dec);
    a->dec = NULL;
    a->n_dec = 0;
    return first;
}

/* Hands a decrypted packet to the direction's decoding thread (or decodes it here). */
static ms_err dec_submit(audit *a, size_t call_idx, ms_audit_dir d, const ms_rtp_header *h,
                         const uint8_t *payload, size_t len)
{
    decoder *w = &a->dec[(call_idx * 2 + (size_t)d) % a->n_dec];
    if (!w->running) {
        if (w->err == MS_OK)
            w->err = audio_packet(w, &a->calls[call_idx], d, h, payload, len);
        return w->err;
    }
    dec_job *j = &w->stage[w->staged++];
    j->call = call_idx;
    j->dir = d;
    j->h = *h;
    j->len = len;
    memcpy(j->payload, payload, len < sizeof j->payload ? len : sizeof j->payload);
    return w->staged == DEC_BATCH ? dec_flush(w) : MS_OK;
}

static ms_err media_packet(audit *a, call *c, ms_audit_dir d, const ms_capture_item *it)
{
    dir_state *s = &c->st[d];
    ms_audit_stream *st = &c->pub.dir[d];
    ms_err e;
    if (s->srtp == NULL) {
        e = ms_srtp_new(&s->srtp, c->crypto.suite, &c->crypto.srtp, false);
        if (e != MS_OK) {
            ms_detail_set(a->detail, a->detail_cap, "call %zu: SRTP context: %s", c->pub.index,
                       ms_strerror(e));
            return e;
        }
    }
    if (it->len > PKT_CAP) {
        st->dropped++;
        return MS_OK;
    }
    memcpy(a->pkt, it->data, it->len);
    size_t n = it->len;
    bool rtcp = ms_rtp_is_rtcp(a->pkt, n);
    e = rtcp ? ms_srtp_unprotect_rtcp(s->srtp, a->pkt, &n) : ms_srtp_unprotect(s->srtp, a->pkt, &n);
    if (e == MS_ERR_SRTP_AUTH) {
        st->failed_auth++;
        return MS_OK;
    }
    if (e == MS_ERR_SRTP_REPLAY) {
        st->duplicates++;
        return MS_OK;
    }
    if (e != MS_OK) {
        st->dropped++;
        return MS_OK;
    }
    if (rtcp) {
        st->rtcp++;
        return MS_OK;
    }
    ms_rtp_header h;
    size_t off, plen;
    if (ms_rtp_parse(&h, &off, &plen, a->pkt, n) != MS_OK) {
        st->dropped++;
        return MS_OK;
    }
    st->decrypted++;
    if (st->first_us == 0)
        st->first_us = it->t_us;
    st->last_us = it->t_us;
    if (st->ssrc == 0)
        st->ssrc = h.ssrc;
    if (a->opt->on_payload != NULL)
        a->opt->on_payload(a->opt->arg, c->pub.index, d, &h, a->pkt + off, plen);
    if (a->opt->no_audio)
        return MS_OK;
    return dec_submit(a, (size_t)(c - a->calls), d, &h, a->pkt + off, plen);
}

static ms_err on_datagram(audit *a, const ms_capture_item *it, size_t file)
{
    ms_err fatal = MS_OK;
    if (a->n_groups > 0 && group_packet(a, it, &fatal))
        return fatal;
    ep src, dst;
    size_t idx = SIZE_MAX;
    ms_audit_dir d = MS_AUDIT_CALLER_TO_CALLEE;
    if (ep_parse(&src, it->src) && ep_parse(&dst, it->dst)) {
        /* sent to the callee's advertised address, then to the caller's; then by source */
        if ((idx = find_call(a, &dst, ROLE_ANSWER, it->t_us)) != SIZE_MAX)
            d = MS_AUDIT_CALLER_TO_CALLEE;
        else if ((idx = find_call(a, &dst, ROLE_OFFER, it->t_us)) != SIZE_MAX)
            d = MS_AUDIT_CALLEE_TO_CALLER;
        else if ((idx = find_call(a, &src, ROLE_OFFER, it->t_us)) != SIZE_MAX)
            d = MS_AUDIT_CALLER_TO_CALLEE;
        else if ((idx = find_call(a, &src, ROLE_ANSWER, it->t_us)) != SIZE_MAX)
            d = MS_AUDIT_CALLEE_TO_CALLER;
    }
    if (idx == SIZE_MAX && a->sole[file] != SIZE_MAX) {
        idx = a->sole[file]; /* a voicemail file: its one call, caller to callee */
        d = MS_AUDIT_CALLER_TO_CALLEE;
    }
    if (idx == SIZE_MAX) {
        a->rep->unassigned++;
        return MS_OK;
    }
    call *c = &a->calls[idx];
    if (!c->pub.openable) {
        a->rep->ignored++;
        return MS_OK;
    }
    return media_packet(a, c, d, it);
}

static ms_err pass_media(audit *a)
{
    reader *rd;
    ms_err e = readers_open(a, &rd);
    if (e != MS_OK)
        return e;
    if (!a->opt->no_audio && (e = decoders_start(a)) != MS_OK) {
        decoders_stop(a, false);
        readers_close(rd, a->n_paths);
        ms_detail_set(a->detail, a->detail_cap, "out of memory starting the decoders");
        return e;
    }
    reader *r;
    while (e == MS_OK && (r = readers_next(rd, a->n_paths)) != NULL) {
        if (r->item.kind == MS_CAPTURE_UDP) {
            a->rep->datagrams++;
            e = on_datagram(a, &r->item, r->file);
        }
        reader_advance(a, r);
    }
    readers_close(rd, a->n_paths);
    /* a decoder's failure reaches the reader as its own code: its detail is the decoder's */
    bool from_decoder = false;
    for (size_t i = 0; e != MS_OK && i < a->n_dec; i++)
        from_decoder = from_decoder || a->dec[i].err == e;
    ms_err de = decoders_stop(a, e == MS_OK || from_decoder);
    return e != MS_OK ? e : de;
}

/* Closing a WAV file ends in an fsync (~5 ms on the build machine's disk, most of it
 * waiting): the files are closed on threads of their own, so that the waits overlap. */
#define CLOSE_BATCH 8

typedef struct wav_closing {
    ms_wav_writer *wav; /* NULL: the direction had no file */
    bool commit;
    ms_err err;
    pthread_t thread;
    bool threaded;
} wav_closing;

static void *wav_close_main(void *arg)
{
    wav_closing *w = arg;
    w->err = ms_wav_close(w->wav, w->commit);
    return NULL;
}

/* Closes the files of w[0 .. n-1] (w[k] for direction k % 2 of call k / 2), up to
 * CLOSE_BATCH at a time: all but one of a batch on threads (here if one cannot start). */
static void close_wavs(wav_closing *w, size_t n)
{
    size_t batch[CLOSE_BATCH], nb = 0;
    for (size_t k = 0; k <= n; k++) {
        if (k < n && w[k].wav != NULL)
            batch[nb++] = k;
        if (nb < CLOSE_BATCH && k < n)
            continue;
        for (size_t i = 0; i + 1 < nb; i++)
            w[batch[i]].threaded =
                pthread_create(&w[batch[i]].thread, NULL, wav_close_main, &w[batch[i]]) == 0;
        /* this thread's share first, then the others are waited for */
        for (size_t i = 0; i < nb; i++)
            if (!w[batch[i]].threaded)
                wav_close_main(&w[batch[i]]);
        for (size_t i = 0; i < nb; i++)
            if (w[batch[i]].threaded)
                pthread_join(w[batch[i]].thread, NULL);
        nb = 0;
    }
}

/* Closes each call's media state; the WAV files are kept only when commit is true. */
static ms_err finish_calls(audit *a, bool commit)
{
    ms_err first = MS_OK;
    /* without memory for the list, the files are closed below one after the other */
    wav_closing *w = calloc(2 * a->n_calls + 1, sizeof *w);
    for (size_t k = 0; w != NULL && k < 2 * a->n_calls; k++) {
        dir_state *s = &a->calls[k / 2].st[k % 2];
        w[k] = (wav_closing){.wav = s->wav, .commit = commit};
    }
    if (w != NULL)
        close_wavs(w, 2 * a->n_calls);
    for (size_t i = 0; i < a->n_calls; i++) {
        call *c = &a->calls[i];
        for (int d = 0; d < 2; d++) {
            dir_state *s = &c->st[d];
            if (s->wav != NULL) {
                ms_err e = w != NULL ? w[2 * i + (size_t)d].err : ms_wav_close(s->wav, commit);
                if (e != MS_OK && commit && first == MS_OK) {
                    ms_detail_set(a->detail, a->detail_cap, "%s/%s: could not be completed",
                               a->out_dir, c->pub.dir[d].file);
                    first = e;
                }
                if (e != MS_OK || !commit)
                    c->pub.dir[d].file[0] = '\0';
            }
            c->pub.dir[d].dropped += s->undecodable;
            ms_srtp_free(s->srtp);
            ms_opus_dec_free(s->dec);
            memset(s, 0, sizeof *s);
        }
        if (c->have_crypto)
            ms_call_crypto_wipe(&c->crypto);
        c->have_crypto = false;
        free(c->offer);
        c->offer = NULL;
    }
    free(w);
    return first;
}

/* ---- the report -------------------------------------------------------------------------- */

typedef struct jbuf {
    char *p;
    size_t len, cap;
    bool oom;
} jbuf;

static void jb_put(jbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > ncap)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (np == NULL) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void jb_s(jbuf *b, const char *s)
{
    jb_put(b, s, strlen(s));
}

static void jb_fmt(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jb_fmt(jbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        jb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of the well-formed UTF-8 sequence at s (1 to 4), or 0. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
    if (c >= 0xF5 || n == 0)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    unsigned c1 = s[1];
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) ||
        (c == 0xF4 && c1 > 0x8F))
        return 0; /* overlong, surrogate or beyond U+10FFFF */
    return n;
}

/* A JSON string: quotes, backslashes and control characters escaped; UTF-8 kept; an octet
 * that is not UTF-8 (capture text is anyone's) becomes U+FFFD, so the file always parses. */
static void jb_str(jbuf *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    jb_s(b, "\"");
    while (*s) {
        unsigned char ch = *s;
        if (ch == '"' || ch == '\\') {
            char esc[2] = {'\\', (char)ch};
            jb_put(b, esc, 2);
            s++;
        } else if (ch < 0x20 || ch == 0x7f) {
            jb_fmt(b, "\\u%04x", ch);
            s++;
        } else if (ch < 0x80) {
            jb_put(b, (const char *)s, 1);
            s++;
        } else {
            size_t n = utf8_len(s);
            if (n == 0) {
                jb_s(b, "\\ufffd");
                s++;
            } else {
                jb_put(b, (const char *)s, n);
                s += n;
            }
        }
    }
    jb_s(b, "\"");
}

static void jb_key(jbuf *b, const char *key)
{
    jb_str(b, key);
    jb_s(b, ": ");
}

/* Unix microseconds as "YYYY-MM-DDTHH:MM:SS.uuuuuuZ", or null. */
static void jb_time_us(jbuf *b, uint64_t us)
{
    if (us == 0) {
        jb_s(b, "null");
        return;
    }
    char s[MS_TIME_BUF];
    ms_time_format_unix(s, (int64_t)(us / 1000000u));
    s[MS_TIME_CHARS - 1] = '\0'; /* the Z goes after the fraction */
    jb_fmt(b, "\"%s.%06uZ\"", s, (unsigned)(us % 1000000u));
}

static void jb_time_ntp(jbuf *b, uint64_t ntp)
{
    uint64_t sec = ntp >> 32;
    if (sec < MS_NTP_UNIX_OFFSET) {
        jb_s(b, "null");
        return;
    }
    char s[MS_TIME_BUF];
    ms_time_format(s, sec);
    jb_str(b, s);
}

static void jb_party(jbuf *b, const char *claimed, const char *verified, bool matches,
                     const char *media, bool openable)
{
    jb_s(b, "{");
    jb_key(b, "claimed");
    jb_str(b, claimed);
    if (openable) {
        jb_s(b, ", ");
        jb_key(b, "verified");
        jb_str(b, verified);
        jb_fmt(b, ", \"claim_matches\": %s", matches ? "true" : "false");
    }
    jb_s(b, ", ");
    jb_key(b, "media");
    if (media[0])
        jb_str(b, media);
    else
        jb_s(b, "null");
    jb_s(b, "}");
}

static void jb_stream(jbuf *b, const ms_audit_stream *s)
{
    jb_fmt(b, "{\"packets_decrypted\": %llu, \"packets_failed_auth\": %llu, "
              "\"packets_duplicate\": %llu, \"packets_dropped\": %llu, \"rtcp_decrypted\": %llu, "
              "\"packets_late\": %llu, \"frames\": %llu, \"frames_concealed\": %llu, "
              "\"duration_s\": %.2f, \"ssrc\": ",
           (unsigned long long)s->decrypted, (unsigned long long)s->failed_auth,
           (unsigned long long)s->duplicates, (unsigned long long)s->dropped,
           (unsigned long long)s->rtcp, (unsigned long long)s->late,
           (unsigned long long)s->frames, (unsigned long long)s->concealed,
           (double)s->frames * MS_AUDIO_FRAME / MS_AUDIO_RATE);
    if (s->decrypted)
        jb_fmt(b, "\"%08X\"", (unsigned)s->ssrc);
    else
        jb_s(b, "null");
    jb_s(b, ", \"first_packet\": ");
    jb_time_us(b, s->first_us);
    jb_s(b, ", \"last_packet\": ");
    jb_time_us(b, s->last_us);
    jb_s(b, ", \"file\": ");
    if (s->file[0])
        jb_str(b, s->file);
    else
        jb_s(b, "null");
    jb_s(b, "}");
}

static void jb_call(jbuf *b, const ms_audit_call *c)
{
    jb_fmt(b, "    {\"index\": %zu, ", c->index);
    jb_key(b, "call_id");
    jb_str(b, c->call_id);
    jb_fmt(b, ", \"openable\": %s, ", c->openable ? "true" : "false");
    jb_key(b, "status");
    jb_str(b, c->openable ? "decrypted" : "not openable with this key");
    if (!c->openable) {
        jb_s(b, ", ");
        jb_key(b, "error");
        jb_str(b, ms_errname(c->err));
        jb_s(b, ", ");
        jb_key(b, "reason");
        jb_str(b, c->why);
    }
    jb_s(b, ",\n     \"invite_time\": ");
    jb_time_us(b, c->invite_us);
    jb_s(b, ", \"answer_time\": ");
    jb_time_us(b, c->answer_us);
    jb_s(b, ", \"bye_time\": ");
    jb_time_us(b, c->bye_us);
    jb_fmt(b, ", \"final_status\": %d, \"voicemail\": %s,\n     \"caller\": ", c->final_status,
           c->voicemail ? "true" : "false");
    jb_party(b, c->caller_claimed, c->caller_verified, c->caller_claim_matches,
             c->caller_media, c->openable);
    jb_s(b, ",\n     \"callee\": ");
    jb_party(b, c->callee_claimed, c->callee_verified, c->callee_claim_matches,
             c->callee_media, c->openable);
    if (c->openable) {
        const ms_audit_stream *s0 = &c->dir[0], *s1 = &c->dir[1];
        uint64_t frames = s0->frames > s1->frames ? s0->frames : s1->frames;
        jb_fmt(b, ",\n     \"opened_as\": \"%s\", \"period\": %llu, \"pck_id\": \"%08X\", ",
               c->opened_as_caller ? "caller" : "callee", (unsigned long long)c->period_no,
               (unsigned)c->key_id);
        jb_key(b, "mikey_time");
        jb_time_ntp(b, c->mikey_time);
        jb_s(b, ", ");
        jb_key(b, "suite");
        jb_str(b, ms_srtp_suite_name(c->suite));
        jb_fmt(b, ",\n     \"packets_decrypted\": %llu, \"packets_failed_auth\": %llu, "
                  "\"packets_duplicate\": %llu, \"packets_dropped\": %llu, "
                  "\"duration_s\": %.2f,\n     \"files\": [",
               (unsigned long long)(s0->decrypted + s1->decrypted),
               (unsigned long long)(s0->failed_auth + s1->failed_auth),
               (unsigned long long)(s0->duplicates + s1->duplicates),
               (unsigned long long)(s0->dropped + s1->dropped),
               (double)frames * MS_AUDIO_FRAME / MS_AUDIO_RATE);
        bool first = true;
        for (int d = 0; d < 2; d++) {
            if (c->dir[d].file[0] == '\0')
                continue;
            if (!first)
                jb_s(b, ", ");
            jb_str(b, c->dir[d].file);
            first = false;
        }
        jb_s(b, "],\n     \"directions\": {");
        for (int d = 0; d < 2; d++) {
            jb_s(b, d ? ",\n       " : "\n       ");
            jb_key(b, ms_audit_dir_name((ms_audit_dir)d));
            jb_stream(b, &c->dir[d]);
        }
        jb_s(b, "}");
    }
    jb_s(b, "}");
}

static void jb_group(jbuf *b, const ms_audit_group *g)
{
    jb_fmt(b, "    {\"index\": %zu, \"openable\": %s, ", g->index,
           g->openable ? "true" : "false");
    jb_key(b, "member");
    jb_str(b, g->member);
    jb_s(b, ", \"message_time\": ");
    jb_time_us(b, g->message_us);
    if (!g->openable) {
        jb_s(b, ", ");
        jb_key(b, "error");
        jb_str(b, ms_errname(g->err));
        jb_s(b, ", ");
        jb_key(b, "reason");
        jb_str(b, g->why);
        jb_s(b, "}");
        return;
    }
    jb_s(b, ",\n     ");
    jb_key(b, "group");
    jb_str(b, g->group);
    jb_s(b, ", ");
    jb_key(b, "gms");
    jb_str(b, g->gms);
    jb_fmt(b, ", \"gmk_id\": \"%08X\", \"activation\": ", (unsigned)g->gmk_id);
    jb_time_ntp(b, g->activation << 32);
    jb_s(b, ", \"expiry\": ");
    jb_time_ntp(b, g->expiry << 32);
    jb_fmt(b, ", \"packets_duplicate\": %llu,\n     \"senders\": [",
           (unsigned long long)g->duplicates);
    for (size_t i = 0; i < g->n_senders; i++) {
        jb_s(b, i ? ",\n       {" : "\n       {");
        jb_key(b, "uri");
        jb_str(b, g->senders[i].uri);
        jb_s(b, ", ");
        jb_key(b, "stream");
        jb_stream(b, &g->senders[i].s);
        jb_s(b, "}");
    }
    jb_s(b, "]}");
}

ms_err ms_audit_report_json(const ms_audit_report *r, char **out, size_t *out_len)
{
    jbuf b = {0};
    jb_s(&b, "{\n  ");
    jb_key(&b, "user");
    jb_str(&b, r->user);
    jb_fmt(&b, ",\n  \"period\": %llu,\n  \"calls_found\": %zu,\n  \"calls_opened\": %zu,\n"
               "  \"calls_not_openable\": %zu,\n  \"sip_messages\": %llu,\n"
               "  \"datagrams\": %llu,\n  \"datagrams_unassigned\": %llu,\n"
               "  \"datagrams_not_openable\": %llu,\n  \"warnings\": ",
           (unsigned long long)r->period_no, r->n_calls, r->opened, r->n_calls - r->opened,
           (unsigned long long)r->sip_messages, (unsigned long long)r->datagrams,
           (unsigned long long)r->unassigned, (unsigned long long)r->ignored);
    if (r->warnings[0])
        jb_str(&b, r->warnings);
    else
        jb_s(&b, "null");
    jb_s(&b, ",\n  \"captures\": [");
    for (size_t i = 0; i < r->n_captures; i++) {
        const ms_audit_capture *c = &r->captures[i];
        char hex[65];
        ms_hex_encode_lower(hex, c->sha256, 32);
        jb_s(&b, i ? ",\n    {" : "\n    {");
        jb_key(&b, "path");
        jb_str(&b, c->path ? c->path : "");
        jb_fmt(&b, ", \"bytes\": %llu, \"sha256\": \"%s\"}", (unsigned long long)c->bytes, hex);
    }
    jb_s(&b, r->n_captures ? "\n  ]" : "]");
    jb_s(&b, ",\n  \"calls\": [");
    for (size_t i = 0; i < r->n_calls; i++) {
        jb_s(&b, i ? ",\n" : "\n");
        jb_call(&b, &r->calls[i]);
    }
    jb_s(&b, r->n_calls ? "\n  ]" : "]");
    jb_fmt(&b, ",\n  \"groups_found\": %zu,\n  \"groups_opened\": %zu,\n  \"groups\": [",
           r->n_groups, r->groups_opened);
    for (size_t i = 0; i < r->n_groups; i++) {
        jb_s(&b, i ? ",\n" : "\n");
        jb_group(&b, &r->groups[i]);
    }
    jb_s(&b, r->n_groups ? "\n  ]\n}\n" : "]\n}\n");
    if (b.oom) {
        free(b.p);
        return MS_ERR_NOMEM;
    }
    *out = b.p;
    *out_len = b.len;
    return MS_OK;
}

/* report.json: a temporary file in the same directory, fsynced, renamed into place. */
static ms_err write_report(audit *a)
{
    char *json = NULL;
    size_t len = 0;
    ms_err e = ms_audit_report_json(a->rep, &json, &len);
    if (e != MS_OK) {
        ms_detail_set(a->detail, a->detail_cap, "out of memory writing the report");
        return e;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/report.json", a->out_dir);
    e = ms_file_write_atomic(path, json, len, 0600, MS_FILE_REPLACE, NULL, 0);
    int saved = errno;
    free(json);
    if (e != MS_OK) {
        ms_detail_set(a->detail, a->detail_cap, "%s: %s", path, strerror(saved));
        return MS_ERR_IO;
    }
    return MS_OK;
}

/* ---- the whole run ----------------------------------------------------------------------- */

void ms_audit_report_free(ms_audit_report *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; r->captures != NULL && i < r->n_captures; i++)
        free(r->captures[i].path);
    free(r->captures);
    free(r->calls);
    for (size_t i = 0; r->groups != NULL && i < r->n_groups; i++)
        free(r->groups[i].senders);
    free(r->groups);
    memset(r, 0, sizeof *r);
}

/* Size and SHA-256 of each capture, read once more on its own: the report then names the
 * exact files audited. */
static ms_err hash_captures(audit *a)
{
    ms_audit_report *r = a->rep;
    r->captures = calloc(a->n_paths, sizeof *r->captures);
    if (r->captures == NULL)
        return MS_ERR_NOMEM;
    r->n_captures = a->n_paths;
    ms_err e = MS_OK;
    for (size_t i = 0; e == MS_OK && i < a->n_paths; i++) {
        ms_audit_capture *c = &r->captures[i];
        c->path = strdup(a->paths[i]);
        FILE *f = fopen(a->paths[i], "rb");
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        if (c->path == NULL || md == NULL) {
            e = MS_ERR_NOMEM;
        } else if (f == NULL) {
            ms_detail_set(a->detail, a->detail_cap, "%s: %s", a->paths[i], strerror(errno));
            e = MS_ERR_CAPTURE;
        } else if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
            e = MS_ERR_INTERNAL;
        } else {
            size_t n;
            while ((n = fread(a->pkt, 1, PKT_CAP, f)) > 0 && e == MS_OK) {
                c->bytes += n;
                if (EVP_DigestUpdate(md, a->pkt, n) != 1)
                    e = MS_ERR_INTERNAL;
            }
            if (ferror(f)) {
                ms_detail_set(a->detail, a->detail_cap, "%s: read error", a->paths[i]);
                e = MS_ERR_CAPTURE;
            }
            if (e == MS_OK && EVP_DigestFinal_ex(md, c->sha256, NULL) != 1)
                e = MS_ERR_INTERNAL;
        }
        EVP_MD_CTX_free(md);
        if (f != NULL)
            fclose(f);
    }
    return e;
}

static ms_err make_out_dir(audit *a)
{
    struct stat st;
    if (mkdir(a->out_dir, 0700) != 0 && errno != EEXIST) {
        ms_detail_set(a->detail, a->detail_cap, "%s: %s", a->out_dir, strerror(errno));
        return MS_ERR_IO;
    }
    if (stat(a->out_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        ms_detail_set(a->detail, a->detail_cap, "%s: not a directory", a->out_dir);
        return MS_ERR_IO;
    }
    return MS_OK;
}

ms_err ms_audit_decrypt(const char *const *captures, size_t n_captures, ms_call_keys *keys,
                        const char *out_dir, const ms_audit_options *opt,
                        ms_audit_report *report, char *detail, size_t detail_cap)
{
    static const ms_audit_options defaults;
    if (detail != NULL && detail_cap > 0)
        detail[0] = '\0';
    if (report != NULL)
        memset(report, 0, sizeof *report);
    if (opt == NULL)
        opt = &defaults;
    if (captures == NULL || n_captures == 0 || keys == NULL ||
        (out_dir == NULL && (!opt->no_audio || !opt->no_report))) {
        ms_detail_set(detail, detail_cap, "no capture, keys or output directory given");
        return MS_ERR_ARG;
    }
    ms_audit_report local;
    audit a;
    memset(&a, 0, sizeof a);
    memset(&local, 0, sizeof local);
    a.keys = keys;
    a.group_keys = opt->group_keys;
    a.opt = opt;
    a.out_dir = out_dir;
    a.paths = captures;
    a.n_paths = n_captures;
    a.rep = &local;
    a.detail = detail;
    a.detail_cap = detail_cap;
    snprintf(local.user, sizeof local.user, "%s", ms_call_keys_own_uri(keys));
    local.period_no = opt->period_no;

    ms_err e = out_dir != NULL ? make_out_dir(&a) : MS_OK;
    a.pkt = malloc(PKT_CAP);
    if (e == MS_OK && a.pkt == NULL)
        e = MS_ERR_NOMEM;
    if (e == MS_OK)
        e = hash_captures(&a);
    if (e == MS_OK)
        e = pass_signalling(&a);
    for (size_t i = 0; e == MS_OK && i < a.n_calls; i++) {
        open_call(&a, &a.calls[i]);
        if (a.calls[i].pub.openable)
            local.opened++;
    }
    if (e == MS_OK && (opt->group_keys != NULL || opt->open_group_keys != NULL))
        e = read_group_messages(&a);
    if (e == MS_OK && a.n_groups > 0 && a.group_keys == NULL &&
        (e = opt->open_group_keys(opt->open_group_keys_ctx, &a.group_keys, detail,
                                  detail_cap)) == MS_OK && a.group_keys == NULL)
        e = MS_ERR_INTERNAL;
    for (size_t i = 0; e == MS_OK && i < a.n_groups; i++) {
        e = open_group(&a, &a.groups[i]);
        if (a.groups[i].pub.openable)
            local.groups_opened++;
    }
    if (e == MS_OK)
        e = index_media(&a);
    if (e == MS_OK)
        e = pass_media(&a);
    ms_err fin = finish_calls(&a, e == MS_OK);
    ms_err gfin = finish_groups(&a, e == MS_OK && fin == MS_OK);
    if (e == MS_OK)
        e = fin != MS_OK ? fin : gfin;
    if (e == MS_OK) {
        local.n_groups = a.n_groups;
        local.groups = malloc((a.n_groups ? a.n_groups : 1) * sizeof *local.groups);
        if (local.groups == NULL)
            e = MS_ERR_NOMEM;
        for (size_t i = 0; e == MS_OK && i < a.n_groups; i++) {
            local.groups[i] = a.groups[i].pub;
            a.groups[i].pub.senders = NULL; /* now the report's */
        }
    }
    if (e == MS_OK) {
        local.n_calls = a.n_calls;
        local.calls = malloc((a.n_calls ? a.n_calls : 1) * sizeof *local.calls);
        if (local.calls == NULL)
            e = MS_ERR_NOMEM;
        for (size_t i = 0; e == MS_OK && i < a.n_calls; i++)
            local.calls[i] = a.calls[i].pub;
    }
    if (e == MS_OK && !opt->no_report)
        e = write_report(&a);
    if (e == MS_ERR_NOMEM && detail != NULL && detail_cap > 0 && detail[0] == '\0')
        ms_detail_set(detail, detail_cap, "out of memory");
    for (size_t i = 0; i < a.n_groups; i++)
        free(a.groups[i].pub.senders);
    free(a.groups);
    free(a.calls);
    free(a.eps);
    free(a.sole);
    free(a.pkt);
    map_free(&a.by_id);
    map_free(&a.by_keymgmt);
    if (e == MS_OK && report != NULL)
        *report = local;
    else
        ms_audit_report_free(&local);
    return e;
}
