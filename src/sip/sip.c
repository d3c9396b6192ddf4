/*
 * SIP user agent on libre 1.1.0 (see sip.h). Key-less: SDP bodies pass through as text.
 *
 * libre objects are reference counted (mem_deref). A call's libre session is released
 * from a zero-delay timer after its closed handler ran, never inside a libre callback,
 * because libre may still touch the session when the callback returns.
 *
 * Several agents may share the process and its one event loop (the tests run caller,
 * callee and voicemail side by side); libre itself is initialised by the first and
 * closed by the last.
 */
#include "sip/sip.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

/* Debian builds libre with OpenSSL and IPv6: its headers must see the same switches
 * (USE_OPENSSL declares tls_openssl_context and keeps re_sha.h off OpenSSL's names). */
#define USE_OPENSSL 1
#define HAVE_INET6 1
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wshadow"
#include <re.h>
#define DEBUG_MODULE "ms_sip"
#define DEBUG_LEVEL 3
#include <re_dbg.h>
#pragma GCC diagnostic pop

#include "sip/sdp.h"
#include "util/detail.h"

#define WARNING_CAP 256
#define TEXT_CAP 256

struct ms_sip {
    struct sip *stack;
    struct sipsess_sock *sock;
    struct sipreg *reg;
    struct tls *tls;
    struct dnsc *dnsc;
    enum sip_transp tp;
    char *local_uri;
    char *display;
    char *contact_user; /* user part of local_uri, for Contact */
    char *warn_agent;   /* host of local_uri, the agent named in our Warning headers */
    char *route;        /* outbound proxy, with ;transport= */
    char *auth_user;
    char *password;     /* wiped on free */
    ms_sip_handlers h;
    void *arg;
    struct list calls;   /* every live ms_sip_call */
    struct list messages; /* MESSAGEs sent and not yet answered */
    struct sip_lsnr *msg_lsnr;
    struct tmr reaper;   /* frees calls whose closed handler has run */
    bool running;        /* inside ms_sip_run */
    bool stack_idle;     /* the stack's exit handler ran: no transaction left */
};

static void on_stack_idle(void *arg);

struct ms_sip_call {
    struct le le;
    ms_sip *sip;
    struct sipsess *sess;
    void *arg;
    char *peer;
    char *callid;
    char *remote_sdp; /* the offer (incoming) or the answer (outgoing), NUL-terminated */
    size_t remote_sdp_len;
    bool outgoing;
    bool established;
    bool local_failure; /* closed by our own stack (transport, timer), not by an answer */
    bool closed; /* closed handler ran (or is queued): no more events */
    /* a local hangup reports closed from a timer, outside ms_sip_hangup */
    struct tmr hangup_tmr;
    int hangup_status;
};

struct ms_sip_timer {
    struct tmr tmr;
    void (*fn)(void *arg);
    void *arg;
};

struct ms_sip_udp {
    struct udp_sock *sock;
    uint16_t port;
    void (*recv)(void *arg, const uint8_t *data, size_t len, const char *src,
                 uint64_t arrival_us);
    void *arg;
};

static unsigned libre_users; /* agents alive; libre is initialised while > 0 */

/* ---- small helpers ------------------------------------------------------------------ */

static char *dup_pl(const struct pl *pl)
{
    char *s = malloc(pl->l + 1);
    if (!s)
        return NULL;
    if (pl->l)
        memcpy(s, pl->p, pl->l);
    s[pl->l] = '\0';
    return s;
}

static void copy_pl(char *out, size_t cap, const struct pl *pl)
{
    size_t n = pl->l < cap - 1 ? pl->l : cap - 1;
    if (n)
        memcpy(out, pl->p, n);
    out[n] = '\0';
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* libre frees the password it was given with mem_deref: this destructor wipes it. */
static void wipe_string(void *data)
{
    OPENSSL_cleanse(data, strlen(data));
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 415: return "Unsupported Media Type";
    case 480: return "Temporarily Unavailable";
    case 486: return "Busy Here";
    case 487: return "Request Terminated";
    case 488: return "Not Acceptable Here";
    case 500: return "Server Internal Error";
    case 503: return "Service Unavailable";
    case 603: return "Decline";
    case 606: return "Not Acceptable";
    default: break;
    }
    if (status >= 600)
        return "Global Failure";
    if (status >= 500)
        return "Server Failure";
    if (status >= 400)
        return "Request Failure";
    return "Redirection";
}

/* Writes `text` as the inside of a quoted-string (RFC 3261 25.1): '"' and '\' escaped,
 * control characters (which could end the header) replaced by spaces. */
static void quote_warning(char *out, size_t cap, const char *text)
{
    size_t o = 0;
    for (const char *p = text; *p && o + 3 < cap; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            out[o++] = '\\';
        out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    out[o] = '\0';
}

/* The text of a Warning header value `code agent "text"`, quoted-pairs undone; a
 * value without a quoted string is taken whole. */
static void warning_text(char *out, size_t cap, const struct sip_msg *msg)
{
    out[0] = '\0';
    const struct sip_hdr *hdr = msg ? sip_msg_hdr(msg, SIP_HDR_WARNING) : NULL;
    if (!hdr)
        return;
    const char *p = hdr->val.p, *end = hdr->val.p + hdr->val.l;
    const char *q = memchr(p, '"', hdr->val.l);
    if (!q) {
        copy_pl(out, cap, &hdr->val);
        return;
    }
    size_t o = 0;
    for (q++; q < end && *q != '"' && o + 1 < cap; q++) {
        if (*q == '\\' && q + 1 < end)
            q++;
        out[o++] = *q;
    }
    out[o] = '\0';
}

static bool has_transport_param(const char *uri)
{
    return strstr(uri, ";transport=") != NULL;
}

/* `uri` with ";transport=X" appended unless it names one (libre defaults to UDP). */
static char *with_transport(const char *uri, enum sip_transp tp)
{
    size_t n = strlen(uri) + 32;
    char *s = malloc(n);
    if (!s)
        return NULL;
    if (has_transport_param(uri) || tp == SIP_TRANSP_UDP)
        snprintf(s, n, "%s", uri);
    else
        snprintf(s, n, "%s;transport=%s", uri, sip_transp_param(tp));
    return s;
}

/* ---- digest credentials ------------------------------------------------------------- */

static int auth_handler(char **username, char **password, const char *realm, void *arg)
{
    ms_sip *sip = arg;
    (void)realm;
    if (!sip->auth_user || !sip->password)
        return EAUTH;
    if (str_dup(username, sip->auth_user))
        return ENOMEM;
    size_t len = strlen(sip->password);
    char *copy = mem_alloc(len + 1, wipe_string);
    if (!copy) {
        *username = mem_deref(*username);
        return ENOMEM;
    }
    memcpy(copy, sip->password, len + 1);
    *password = copy;
    return 0;
}

/* ---- calls -------------------------------------------------------------------------- */

static void call_free(ms_sip_call *call)
{
    list_unlink(&call->le);
    tmr_cancel(&call->hangup_tmr);
    mem_deref(call->sess);
    free(call->peer);
    free(call->callid);
    free(call->remote_sdp);
    free(call);
}

static void reaper_handler(void *arg)
{
    ms_sip *sip = arg;
    struct le *le = list_head(&sip->calls);
    while (le) {
        ms_sip_call *call = le->data;
        le = le->next;
        if (call->closed)
            call_free(call);
    }
}

/* Tells the owner the call is over (once) and queues its release. */
static void call_report_closed(ms_sip_call *call, int status, const char *reason,
                               const char *warning)
{
    if (call->closed)
        return;
    call->closed = true;
    ms_sip *sip = call->sip;
    if (sip->h.closed)
        sip->h.closed(sip->arg, call, status, reason ? reason : "", warning ? warning : "");
    tmr_start(&sip->reaper, 0, reaper_handler, sip);
}

static ms_sip_call *call_new(ms_sip *sip, bool outgoing)
{
    ms_sip_call *call = calloc(1, sizeof(*call));
    if (!call)
        return NULL;
    call->sip = sip;
    call->outgoing = outgoing;
    tmr_init(&call->hangup_tmr);
    list_append(&sip->calls, &call->le, call);
    return call;
}

static int store_remote_sdp(ms_sip_call *call, const struct sip_msg *msg)
{
    size_t len = mbuf_get_left(msg->mb);
    char *copy = malloc(len + 1);
    if (!copy)
        return ENOMEM;
    if (len)
        memcpy(copy, mbuf_buf(msg->mb), len);
    copy[len] = '\0';
    free(call->remote_sdp);
    call->remote_sdp = copy;
    call->remote_sdp_len = len;
    return 0;
}

/* A re-INVITE offer from the peer: this agent never changes a call's media. */
static int offer_handler(struct mbuf **descp, const struct sip_msg *msg, void *arg)
{
    (void)descp;
    (void)msg;
    (void)arg;
    return EPROTO;
}

/* The 2xx to our INVITE carries the answer. */
static int answer_handler(const struct sip_msg *msg, void *arg)
{
    ms_sip_call *call = arg;
    if (!call->outgoing)
        return 0;
    return store_remote_sdp(call, msg);
}

static void progress_handler(const struct sip_msg *msg, void *arg)
{
    (void)msg;
    (void)arg;
}

static void estab_handler(const struct sip_msg *msg, void *arg)
{
    ms_sip_call *call = arg;
    (void)msg;
    if (call->closed || call->established)
        return;
    call->established = true;
    ms_sip *sip = call->sip;
    if (sip->h.established)
        sip->h.established(sip->arg, call, call->remote_sdp ? call->remote_sdp : "",
                           call->remote_sdp_len);
}

static void close_handler(int err, const struct sip_msg *msg, void *arg)
{
    ms_sip_call *call = arg;
    char reason[TEXT_CAP], warning[WARNING_CAP];
    int status;

    if (msg && !msg->req && msg->scode >= 300) {
        status = msg->scode;
        copy_pl(reason, sizeof(reason), &msg->reason);
        warning_text(warning, sizeof(warning), msg);
    } else if (err == ECONNRESET && !msg && (call->established || !call->outgoing)) {
        /* libre's word for a BYE (or, to a callee, a CANCEL) from the peer */
        status = call->established ? 0 : 487;
        snprintf(reason, sizeof(reason), "%s",
                 call->established ? "the other side hung up" : "the caller cancelled");
        warning[0] = '\0';
    } else if (err == ETIMEDOUT) {
        call->local_failure = true;
        status = 408;
        snprintf(reason, sizeof(reason), "no answer in time (SIP timer)");
        warning[0] = '\0';
    } else if (err) {
        call->local_failure = true;
        status = 503;
        snprintf(reason, sizeof(reason), "transport failed: %s", strerror(err));
        warning[0] = '\0';
    } else {
        status = 0;
        snprintf(reason, sizeof(reason), "call ended");
        warning[0] = '\0';
    }
    call_report_closed(call, status, reason, warning);
}

/* An INVITE outside any dialog: ask the owner, then answer or refuse. */
static void conn_handler(const struct sip_msg *msg, void *arg)
{
    ms_sip *sip = arg;
    char *from = NULL, *to = NULL, *ruri = NULL, *answer = NULL;
    char warning[WARNING_CAP] = "";
    struct mbuf *desc = NULL;
    int status = 500;

    if (!sip->h.incoming) {
        (void)sip_treply(NULL, sip->stack, msg, 480, reason_phrase(480));
        return;
    }
    if (mbuf_get_left(msg->mb) > 0 && msg_ctype_cmp(&msg->ctyp, "application", "sdp") == false) {
        (void)sip_treply(NULL, sip->stack, msg, 415, reason_phrase(415));
        return;
    }
    if (mbuf_get_left(msg->mb) > MS_SDP_MAX) {
        (void)sip_treplyf(NULL, NULL, sip->stack, msg, false, 488, reason_phrase(488),
                          "Warning: 399 %s \"SDP body too large\"\r\n"
                          "Content-Length: 0\r\n\r\n",
                          sip->warn_agent);
        return;
    }

    ms_sip_call *call = call_new(sip, false);
    from = dup_pl(&msg->from.auri);
    to = dup_pl(&msg->to.auri);
    ruri = dup_pl(&msg->ruri);
    answer = calloc(1, MS_SDP_MAX);
    if (!call || !from || !to || !ruri || !answer || store_remote_sdp(call, msg)) {
        status = 500;
        goto refuse;
    }
    call->peer = from;
    from = NULL;
    call->callid = dup_pl(&msg->callid);
    if (!call->callid)
        goto refuse;

    /* the whole request as received: from its request line to the end of the body */
    const uint8_t *raw = (const uint8_t *)msg->met.p;
    size_t raw_len = (size_t)(mbuf_buf(msg->mb) + mbuf_get_left(msg->mb) - raw);

    status = sip->h.incoming(sip->arg, call, call->peer, to, ruri, call->remote_sdp,
                             call->remote_sdp_len, raw, raw_len, answer, MS_SDP_MAX, warning,
                             sizeof(warning));
    if (status != 0) {
        if (status < 300 || status > 699)
            status = 500;
        goto refuse;
    }
    answer[MS_SDP_MAX - 1] = '\0';
    desc = mbuf_alloc(strlen(answer) + 1);
    if (!desc || mbuf_write_str(desc, answer)) {
        status = 500;
        goto refuse;
    }
    desc->pos = 0;
    int err = sipsess_accept(&call->sess, sip->sock, msg, 200, "OK", sip->contact_user,
                             "application/sdp", desc, auth_handler, sip, false, offer_handler,
                             answer_handler, estab_handler, NULL, NULL, close_handler, call,
                             "Allow: INVITE, ACK, BYE, CANCEL\r\n");
    mem_deref(desc);
    if (err) {
        /* nothing was sent: tell the caller, and the owner, who thought it accepted */
        (void)sip_treply(NULL, sip->stack, msg, 500, reason_phrase(500));
        call_report_closed(call, 500, "could not answer the call", "");
    }
    goto out;

refuse:
    if (warning[0]) {
        char quoted[2 * WARNING_CAP];
        quote_warning(quoted, sizeof(quoted), warning);
        (void)sip_treplyf(NULL, NULL, sip->stack, msg, false, (uint16_t)status,
                          reason_phrase(status),
                          "Warning: 399 %s \"%s\"\r\n"
                          "Content-Length: 0\r\n\r\n",
                          sip->warn_agent, quoted);
    } else {
        (void)sip_treply(NULL, sip->stack, msg, (uint16_t)status, reason_phrase(status));
    }
    /* a call we refused ends here: its owner decided, no closed handler follows */
    if (call)
        call_free(call);
out:
    free(from);
    free(to);
    free(ruri);
    free(answer);
}

static void register_handler(int err, const struct sip_msg *msg, void *arg)
{
    ms_sip *sip = arg;
    char reason[TEXT_CAP];
    int status;

    if (msg && !msg->req) {
        status = msg->scode;
        copy_pl(reason, sizeof(reason), &msg->reason);
    } else if (err == ETIMEDOUT) {
        status = 408;
        snprintf(reason, sizeof(reason), "the registrar did not answer");
    } else {
        status = 503;
        snprintf(reason, sizeof(reason), "transport failed: %s", strerror(err ? err : EIO));
    }
    if (sip->h.registered)
        sip->h.registered(sip->arg, status, reason);
}

/* ---- MESSAGE (RFC 3428) -------------------------------------------------------------- */

typedef struct sip_message {
    struct le le;
    ms_sip *sip;
    struct sip_dialog *dlg;
    struct sip_auth *auth;
    char *ctype;
    struct mbuf *body;
    bool challenged;
    void (*done)(void *arg, int status, const char *reason);
    void *arg;
} sip_message;

static void message_free(sip_message *m)
{
    list_unlink(&m->le);
    mem_deref(m->dlg);
    mem_deref(m->auth);
    mem_deref(m->body);
    free(m->ctype);
    free(m);
}

static int message_send(sip_message *m);

static void message_resp_handler(int err, const struct sip_msg *msg, void *arg)
{
    sip_message *m = arg;
    char reason[TEXT_CAP];
    int status;
    if (msg && !msg->req && msg->scode < 200)
        return;
    if (msg && !msg->req && (msg->scode == 401 || msg->scode == 407) && !m->challenged &&
        m->sip->auth_user) {
        /* one answer to the provider's challenge */
        m->challenged = true;
        if (!sip_auth_authenticate(m->auth, msg) && !message_send(m))
            return;
    }
    if (msg && !msg->req) {
        status = msg->scode;
        copy_pl(reason, sizeof(reason), &msg->reason);
    } else if (err == ETIMEDOUT) {
        status = 408;
        snprintf(reason, sizeof(reason), "no answer in time (SIP timer)");
    } else {
        status = 503;
        snprintf(reason, sizeof(reason), "transport failed: %s", strerror(err ? err : EIO));
    }
    if (m->done)
        m->done(m->arg, status, reason);
    message_free(m);
}

static int message_send(sip_message *m)
{
    return sip_drequestf(NULL, m->sip->stack, true, "MESSAGE", m->dlg, 0, m->auth, NULL,
                         message_resp_handler, m,
                         "Content-Type: %s\r\n"
                         "Content-Length: %zu\r\n"
                         "\r\n"
                         "%b",
                         m->ctype, m->body->end, m->body->buf, m->body->end);
}

ms_err ms_sip_message(ms_sip *sip, const char *to_uri, const char *content_type,
                      const uint8_t *body, size_t body_len,
                      void (*done)(void *arg, int status, const char *reason), void *arg)
{
    if (!sip || !to_uri || !content_type || (!body && body_len))
        return MS_ERR_ARG;
    struct pl pl;
    struct uri to;
    pl_set_str(&pl, to_uri);
    if (uri_decode(&to, &pl) || !pl_isset(&to.host) || strpbrk(content_type, "\r\n"))
        return MS_ERR_ARG;
    sip_message *m = calloc(1, sizeof(*m));
    if (!m)
        return MS_ERR_NOMEM;
    m->sip = sip;
    m->done = done;
    m->arg = arg;
    list_append(&sip->messages, &m->le, m);
    char *target = sip->route ? strdup(to_uri) : with_transport(to_uri, sip->tp);
    const char *routev[1] = {sip->route};
    m->ctype = strdup(content_type);
    m->body = mbuf_alloc(body_len ? body_len : 1);
    int err = !target || !m->ctype || !m->body || (body_len && mbuf_write_mem(m->body, body,
                                                                               body_len));
    if (!err)
        err = sip_dialog_alloc(&m->dlg, target, to_uri, sip->display, sip->local_uri,
                               sip->route ? routev : NULL, sip->route ? 1 : 0);
    if (!err)
        err = sip_auth_alloc(&m->auth, auth_handler, sip, false);
    free(target);
    if (!err)
        err = message_send(m);
    if (err) {
        message_free(m);
        return err == ENOMEM ? MS_ERR_NOMEM : MS_ERR_SIP;
    }
    return MS_OK;
}

/* MESSAGE outside a dialog; everything else goes on to libre (which answers 501). */
static bool message_req_handler(const struct sip_msg *msg, void *arg)
{
    ms_sip *sip = arg;
    if (pl_strcmp(&msg->met, "MESSAGE") || pl_isset(&msg->to.tag))
        return false;
    if (!sip->h.message) {
        (void)sip_treply(NULL, sip->stack, msg, 405, "Method Not Allowed");
        return true;
    }
    char *from = dup_pl(&msg->from.auri);
    const struct sip_hdr *ct = sip_msg_hdr(msg, SIP_HDR_CONTENT_TYPE);
    char *ctype = ct ? dup_pl(&ct->val) : strdup("");
    char warning[WARNING_CAP] = "";
    int status = 500;
    if (from && ctype)
        status = sip->h.message(sip->arg, from, ctype, mbuf_buf(msg->mb),
                                mbuf_get_left(msg->mb), warning, sizeof(warning));
    if (status < 200 || status > 699)
        status = 500;
    if (warning[0]) {
        char quoted[2 * WARNING_CAP];
        quote_warning(quoted, sizeof(quoted), warning);
        (void)sip_treplyf(NULL, NULL, sip->stack, msg, false, (uint16_t)status,
                          status < 300 ? "OK" : reason_phrase(status),
                          "Warning: 399 %s \"%s\"\r\n"
                          "Content-Length: 0\r\n\r\n",
                          sip->warn_agent, quoted);
    } else {
        (void)sip_treply(NULL, sip->stack, msg, (uint16_t)status,
                         status < 300 ? "OK" : reason_phrase(status));
    }
    free(from);
    free(ctype);
    return true;
}

/* ---- the agent ---------------------------------------------------------------------- */

/* MS_SIP_TRACE=1 prints every SIP message sent and received on stderr (signalling holds
 * no secret: digest responses, not passwords; the I_MESSAGE is public). */
static void trace_handler(bool tx, enum sip_transp tp, const struct sa *src,
                          const struct sa *dst, const uint8_t *pkt, size_t len, void *arg)
{
    (void)arg;
    re_fprintf(stderr, "---- SIP %s %s %J -> %J (%zu octets)\n%b\n", tx ? "sent" : "received",
               sip_transp_name(tp), src, dst, len, pkt, len);
}

static int parse_transport(const char *name, enum sip_transp *tp)
{
    if (!name || !strcmp(name, "tcp"))
        *tp = SIP_TRANSP_TCP;
    else if (!strcmp(name, "tls"))
        *tp = SIP_TRANSP_TLS;
    else if (!strcmp(name, "udp"))
        *tp = SIP_TRANSP_UDP;
    else
        return -1;
    return 0;
}

static ms_err setup_tls(ms_sip *sip, const char *ca_file, char *detail, size_t cap)
{
    if (tls_alloc(&sip->tls, TLS_METHOD_SSLV23, NULL, NULL)) {
        ms_detail_set(detail, cap, "could not set up TLS");
        return MS_ERR_SIP;
    }
    if (ca_file) {
        if (tls_add_ca(sip->tls, ca_file)) {
            ms_detail_set(detail, cap, "cannot read the TLS trust anchors in %s", ca_file);
            return MS_ERR_SIP;
        }
    }
    /* libre 1.1.0 does not check a SIP server's certificate: make OpenSSL do it
     * (chain to the trust anchors; the provider is untrusted for content anyway) */
    SSL_CTX *ctx = tls_openssl_context(sip->tls);
    if (!ctx) {
        ms_detail_set(detail, cap, "could not set up TLS");
        return MS_ERR_SIP;
    }
    if (!ca_file && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        ms_detail_set(detail, cap, "cannot load the system's TLS trust anchors");
        return MS_ERR_SIP;
    }
    SSL_CTX_set_verify_depth(ctx, 8);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return MS_OK;
}

ms_err ms_sip_new(ms_sip **out, const ms_sip_config *cfg, const ms_sip_handlers *h, void *arg,
                  char *detail, size_t detail_cap)
{
    ms_detail_set(detail, detail_cap, "%s", "");
    if (!out || !cfg || !h) {
        ms_detail_set(detail, detail_cap, "missing argument");
        return MS_ERR_ARG;
    }
    *out = NULL;
    if (!cfg->local_uri) {
        ms_detail_set(detail, detail_cap, "no local SIP URI given");
        return MS_ERR_ARG;
    }
    struct pl pl;
    struct uri local;
    pl_set_str(&pl, cfg->local_uri);
    if (uri_decode(&local, &pl) || pl_strcasecmp(&local.scheme, "sip") ||
        !pl_isset(&local.user) || !pl_isset(&local.host)) {
        ms_detail_set(detail, detail_cap, "local URI '%s' is not sip:user@host", cfg->local_uri);
        return MS_ERR_ARG;
    }
    enum sip_transp tp;
    if (parse_transport(cfg->transport, &tp)) {
        ms_detail_set(detail, detail_cap, "transport '%s' is not tcp, tls or udp",
                   cfg->transport);
        return MS_ERR_ARG;
    }
    struct sa laddr;
    const char *listen = cfg->listen ? cfg->listen : "127.0.0.1:0";
    if (sa_decode(&laddr, listen, strlen(listen))) {
        ms_detail_set(detail, detail_cap, "listen address '%s' is not IP:PORT", listen);
        return MS_ERR_ARG;
    }
    if (cfg->proxy) {
        struct uri proxy;
        pl_set_str(&pl, cfg->proxy);
        if (uri_decode(&proxy, &pl) || !pl_isset(&proxy.host)) {
            ms_detail_set(detail, detail_cap, "proxy '%s' is not a SIP URI", cfg->proxy);
            return MS_ERR_ARG;
        }
    }
    if (cfg->do_register && !cfg->proxy) {
        ms_detail_set(detail, detail_cap, "registering needs a proxy (the registrar)");
        return MS_ERR_ARG;
    }
    if ((cfg->auth_user == NULL) != (cfg->password == NULL)) {
        ms_detail_set(detail, detail_cap, "digest authentication needs both user and password");
        return MS_ERR_ARG;
    }

    ms_sip *sip = calloc(1, sizeof(*sip));
    if (!sip)
        return MS_ERR_NOMEM;
    if (libre_users == 0) {
        if (libre_init()) {
            free(sip);
            ms_detail_set(detail, detail_cap, "could not initialise libre");
            return MS_ERR_SIP;
        }
        /* libre's own warnings repeat what `detail` says, in colour: errors only */
        dbg_init(DBG_ERR, DBG_NONE);
    }
    libre_users++;
    tmr_init(&sip->reaper);
    list_init(&sip->calls);
    list_init(&sip->messages);
    sip->h = *h;
    sip->arg = arg;
    sip->tp = tp;

    ms_err rc = MS_ERR_NOMEM;
    sip->local_uri = strdup(cfg->local_uri);
    sip->display = cfg->display ? strdup(cfg->display) : NULL;
    sip->contact_user = dup_pl(&local.user);
    sip->warn_agent = dup_pl(&local.host);
    sip->route = cfg->proxy ? with_transport(cfg->proxy, tp) : NULL;
    sip->auth_user = cfg->auth_user ? strdup(cfg->auth_user) : NULL;
    sip->password = cfg->password ? strdup(cfg->password) : NULL;
    if (!sip->local_uri || (cfg->display && !sip->display) || !sip->contact_user ||
        !sip->warn_agent || (cfg->proxy && !sip->route) ||
        (cfg->auth_user && !sip->auth_user) || (cfg->password && !sip->password))
        goto fail;

    /* DNS only for host names without a proxy; a machine without resolv.conf still
     * works with IP addresses */
    {
        struct sa ns[4];
        uint32_t nsn = 4;
        char domain[64] = "";
        if (!dns_srv_get(domain, sizeof(domain), ns, &nsn) && nsn > 0)
            (void)dnsc_alloc(&sip->dnsc, NULL, ns, nsn);
    }

    rc = MS_ERR_SIP;
    if (sip_alloc(&sip->stack, sip->dnsc, 32, 32, 32,
                  cfg->user_agent ? cfg->user_agent : "mikeysakke", on_stack_idle, sip)) {
        ms_detail_set(detail, detail_cap, "could not start the SIP stack");
        goto fail;
    }
    if (getenv("MS_SIP_TRACE"))
        sip_set_trace_handler(sip->stack, trace_handler);
    if (tp == SIP_TRANSP_TLS) {
        rc = setup_tls(sip, cfg->tls_ca_file, detail, detail_cap);
        if (rc != MS_OK)
            goto fail;
        rc = MS_ERR_SIP;
    }
    int err = tp == SIP_TRANSP_TLS ? sip_transp_add(sip->stack, tp, &laddr, sip->tls)
                                   : sip_transp_add(sip->stack, tp, &laddr);
    if (err) {
        ms_detail_set(detail, detail_cap, "cannot listen on %s %s: %s", sip_transp_name(tp),
                   listen, strerror(err));
        goto fail;
    }
    if (sipsess_listen(&sip->sock, sip->stack, 32, conn_handler, sip)) {
        ms_detail_set(detail, detail_cap, "could not start the SIP session layer");
        goto fail;
    }
    if (sip_listen(&sip->msg_lsnr, sip->stack, true, message_req_handler, sip)) {
        ms_detail_set(detail, detail_cap, "could not start the SIP session layer");
        goto fail;
    }
    if (cfg->do_register) {
        char reg_uri[TEXT_CAP];
        if (local.port)
            re_snprintf(reg_uri, sizeof(reg_uri), "sip:%r:%u", &local.host, local.port);
        else
            re_snprintf(reg_uri, sizeof(reg_uri), "sip:%r", &local.host);
        const char *routev[1] = {sip->route};
        err = sipreg_register(&sip->reg, sip->stack, reg_uri, sip->local_uri, sip->display,
                              sip->local_uri,
                              cfg->register_expires ? cfg->register_expires : 600,
                              sip->contact_user, routev, 1, 0, auth_handler, sip, false,
                              register_handler, sip, NULL, NULL);
        if (err) {
            ms_detail_set(detail, detail_cap, "cannot send REGISTER to %s: %s", sip->route,
                       strerror(err));
            goto fail;
        }
    }
    *out = sip;
    return MS_OK;

fail:
    if (rc == MS_ERR_NOMEM)
        ms_detail_set(detail, detail_cap, "out of memory");
    ms_sip_free(sip);
    return rc;
}

static void on_stack_idle(void *arg)
{
    ms_sip *sip = arg;
    sip->stack_idle = true;
    re_cancel();
}

static void on_unregister_timeout(void *arg)
{
    (void)arg;
    re_cancel();
}

void ms_sip_free(ms_sip *sip)
{
    if (!sip)
        return;
    /* calls first: each sends its BYE or CANCEL while the stack is still up */
    struct le *le = list_head(&sip->calls);
    while (le) {
        ms_sip_call *call = le->data;
        le = le->next;
        call->closed = true;
        call_free(call);
    }
    tmr_cancel(&sip->reaper);
    bool registered = sip->reg != NULL && sipreg_registered(sip->reg);
    sip->reg = mem_deref(sip->reg); /* sends the un-REGISTER */
    /* Let the un-REGISTER (and its digest challenge) finish, for at most 2 s: a contact
     * left behind makes the provider fork later calls to a phone that is gone. Only
     * outside the loop: re_main cannot nest. */
    if (registered && sip->stack != NULL && !sip->running) {
        struct tmr limit;
        tmr_init(&limit);
        tmr_start(&limit, 2000, on_unregister_timeout, NULL);
        sip_close(sip->stack, false);
        if (!sip->stack_idle)
            (void)re_main(NULL);
        tmr_cancel(&limit);
    }
    if (sip->stack)
        sip_close(sip->stack, true);
    /* the stack is closed: no answer can reach an unanswered MESSAGE now */
    le = list_head(&sip->messages);
    while (le) {
        sip_message *m = le->data;
        le = le->next;
        message_free(m);
    }
    sip->msg_lsnr = mem_deref(sip->msg_lsnr);
    sip->sock = mem_deref(sip->sock);
    sip->stack = mem_deref(sip->stack);
    sip->tls = mem_deref(sip->tls);
    sip->dnsc = mem_deref(sip->dnsc);
    free(sip->local_uri);
    free(sip->display);
    free(sip->contact_user);
    free(sip->warn_agent);
    free(sip->route);
    free(sip->auth_user);
    free_secret(sip->password);
    free(sip);
    if (libre_users > 0 && --libre_users == 0)
        libre_close();
}

ms_err ms_sip_local_addr(const ms_sip *sip, char *out, size_t cap)
{
    if (!sip || !out || cap == 0)
        return MS_ERR_ARG;
    struct sa dst, laddr;
    sa_set_str(&dst, "127.0.0.1", 0);
    if (sip_transp_laddr(sip->stack, &laddr, sip->tp, &dst))
        return MS_ERR_SIP;
    int n = re_snprintf(out, cap, "%J", &laddr);
    if (n < 0 || (size_t)n >= cap)
        return MS_ERR_BUFFER_TOO_SMALL;
    return MS_OK;
}

ms_err ms_sip_dial(ms_sip *sip, ms_sip_call **out, const char *to_uri, const char *offer_sdp)
{
    if (!sip || !out || !to_uri || !offer_sdp)
        return MS_ERR_ARG;
    *out = NULL;
    struct pl pl;
    struct uri to;
    pl_set_str(&pl, to_uri);
    if (uri_decode(&to, &pl) || !pl_isset(&to.host))
        return MS_ERR_ARG;
    size_t sdp_len = strlen(offer_sdp);
    if (sdp_len == 0 || sdp_len > MS_SDP_MAX)
        return MS_ERR_ARG;

    ms_sip_call *call = call_new(sip, true);
    if (!call)
        return MS_ERR_NOMEM;
    /* without a proxy the request goes straight to the URI's host, on our transport */
    char *target = sip->route ? strdup(to_uri) : with_transport(to_uri, sip->tp);
    call->peer = strdup(to_uri);
    struct mbuf *desc = mbuf_alloc(sdp_len);
    if (!target || !call->peer || !desc || mbuf_write_str(desc, offer_sdp)) {
        free(target);
        mem_deref(desc);
        call_free(call);
        return MS_ERR_NOMEM;
    }
    desc->pos = 0;
    const char *routev[1] = {sip->route};
    int err = sipsess_connect(&call->sess, sip->sock, target, sip->display, sip->local_uri,
                              sip->contact_user, sip->route ? routev : NULL,
                              sip->route ? 1 : 0, "application/sdp", desc, auth_handler, sip,
                              false, offer_handler, answer_handler, progress_handler,
                              estab_handler, NULL, NULL, close_handler, call,
                              "Allow: INVITE, ACK, BYE, CANCEL\r\n");
    mem_deref(desc);
    free(target);
    if (err) {
        call_free(call);
        return MS_ERR_SIP;
    }
    call->callid = strdup(sip_dialog_callid(sipsess_dialog(call->sess)));
    if (!call->callid) {
        call_free(call);
        return MS_ERR_NOMEM;
    }
    *out = call;
    return MS_OK;
}

static void hangup_report(void *arg)
{
    ms_sip_call *call = arg;
    call_report_closed(call, call->hangup_status,
                       call->hangup_status ? "cancelled before the answer" : "hung up", "");
}

void ms_sip_hangup(ms_sip_call *call)
{
    if (!call || call->closed || tmr_isrunning(&call->hangup_tmr))
        return;
    /* releasing the session makes libre send BYE, or CANCEL while the INVITE is
     * pending; its own close handler is then silent, so we report from a timer */
    call->hangup_status = (call->outgoing && !call->established) ? 487 : 0;
    call->sess = mem_deref(call->sess);
    tmr_start(&call->hangup_tmr, 0, hangup_report, call);
}

void ms_sip_call_set_arg(ms_sip_call *call, void *arg)
{
    if (call)
        call->arg = arg;
}

void *ms_sip_call_arg(const ms_sip_call *call)
{
    return call ? call->arg : NULL;
}

const char *ms_sip_call_peer(const ms_sip_call *call)
{
    return call && call->peer ? call->peer : "";
}

int ms_sip_call_failed_locally(const ms_sip_call *call)
{
    return call != NULL && call->local_failure;
}

const char *ms_sip_call_id(const ms_sip_call *call)
{
    return call && call->callid ? call->callid : "";
}

ms_err ms_sip_run(ms_sip *sip)
{
    if (!sip)
        return MS_ERR_ARG;
    sip->running = true;
    int err = re_main(NULL);
    sip->running = false;
    return err ? MS_ERR_SIP : MS_OK;
}

void ms_sip_stop(ms_sip *sip)
{
    (void)sip;
    re_cancel();
}

/* ---- timers and UDP ----------------------------------------------------------------- */

static void timer_handler(void *arg)
{
    ms_sip_timer *t = arg;
    t->fn(t->arg); /* last use of t: fn may cancel (free) it */
}

ms_err ms_sip_timer_start(ms_sip *sip, ms_sip_timer **out, uint64_t delay_ms,
                          void (*fn)(void *arg), void *arg)
{
    if (!sip || !out || !fn)
        return MS_ERR_ARG;
    ms_sip_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return MS_ERR_NOMEM;
    tmr_init(&t->tmr);
    t->fn = fn;
    t->arg = arg;
    tmr_start(&t->tmr, delay_ms, timer_handler, t);
    *out = t;
    return MS_OK;
}

void ms_sip_timer_cancel(ms_sip_timer *t)
{
    if (!t)
        return;
    tmr_cancel(&t->tmr);
    free(t);
}

static void udp_recv_handler(const struct sa *src, struct mbuf *mb, void *arg)
{
    ms_sip_udp *u = arg;
    uint64_t arrival = now_us();
    char from[64];
    if (re_snprintf(from, sizeof(from), "%J", src) < 0)
        from[0] = '\0';
    u->recv(u->arg, mbuf_buf(mb), mbuf_get_left(mb), from, arrival);
}

ms_err ms_sip_udp_open(ms_sip *sip, ms_sip_udp **out, const char *ip,
                       void (*recv)(void *arg, const uint8_t *data, size_t len,
                                    const char *src, uint64_t arrival_us),
                       void *arg)
{
    if (!sip || !out || !ip || !recv)
        return MS_ERR_ARG;
    *out = NULL;
    struct sa laddr;
    if (sa_set_str(&laddr, ip, 0))
        return MS_ERR_ARG;
    ms_sip_udp *u = calloc(1, sizeof(*u));
    if (!u)
        return MS_ERR_NOMEM;
    u->recv = recv;
    u->arg = arg;
    struct sa bound;
    if (udp_listen(&u->sock, &laddr, udp_recv_handler, u) || udp_local_get(u->sock, &bound)) {
        ms_sip_udp_close(u);
        return MS_ERR_SIP;
    }
    u->port = sa_port(&bound);
    *out = u;
    return MS_OK;
}

uint16_t ms_sip_udp_port(const ms_sip_udp *u)
{
    return u ? u->port : 0;
}

ms_err ms_sip_udp_send(ms_sip_udp *u, const char *dst_ip, uint16_t dst_port,
                       const uint8_t *data, size_t len)
{
    if (!u || !dst_ip || (!data && len))
        return MS_ERR_ARG;
    struct sa dst;
    if (sa_set_str(&dst, dst_ip, dst_port))
        return MS_ERR_ARG;
    /* libre sends from an mbuf; this one borrows the caller's octets */
    struct mbuf mb = {.buf = (uint8_t *)(uintptr_t)data, .size = len, .pos = 0, .end = len};
    return udp_send(u->sock, &dst, &mb) ? MS_ERR_SIP : MS_OK;
}

void ms_sip_udp_close(ms_sip_udp *u)
{
    if (!u)
        return;
    mem_deref(u->sock);
    free(u);
}
