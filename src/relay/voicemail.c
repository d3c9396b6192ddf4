/* The voicemail server's SIP side: see voicemail.h. Everything runs on the SIP loop. */
#include "relay/voicemail.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "capture/capture.h"
#include "relay/divert.h"
#include "sip/sdp.h"
#include "sip/sip.h"

/* pcap overheads, to keep the file under max_bytes: file header, then per packet the
 * record header and the IPv4 + UDP (or TCP) headers. */
#define PCAP_FILE_HEADER 24u
#define PCAP_RECORD_UDP (16u + 20u + 8u)
#define PCAP_RECORD_TCP (16u + 20u + 20u)
#define STOP_POLL_MS 200u

typedef struct session session;

struct ms_voicemail {
    ms_sip *sip;
    ms_mailbox_store *store;
    ms_mailbox_limits limits;
    uint32_t max_seconds;
    char media_ip[64];
    char sip_addr[80]; /* our SIP "IP:PORT", the destination of the recorded INVITE */
    bool (*known)(void *ctx, const char *uri);
    void *known_ctx;
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
    session *sessions;
    unsigned long stored;
    volatile int *stop_flag;
    ms_sip_timer *stop_timer;
};

struct session {
    ms_voicemail *vm;
    ms_sip_call *call;
    session *next;
    char mailbox[MS_VM_URI_MAX];
    char caller[MS_MAILBOX_CALLER_MAX];
    char id[MS_MESSAGE_ID_HEX + 1];
    char media_addr[80]; /* our "IP:port" for media, the destination of each datagram */
    ms_capture_writer *cap;
    ms_sip_udp *udp;
    ms_sip_timer *timer;
    uint64_t start_s;
    uint64_t first_us, last_us;
    uint64_t datagrams;
    uint64_t bytes; /* file size so far */
    bool full;      /* recording stopped (limit reached or write failed) */
    bool hung_up;
    char why_stopped[96];
};

static void vm_log(const ms_voicemail *vm, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void vm_log(const ms_voicemail *vm, const char *fmt, ...)
{
    if (vm->log == NULL)
        return;
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    vm->log(vm->log_ctx, line);
}

static void set_text(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_text(char *out, size_t cap, const char *fmt, ...)
{
    if (out == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, cap, fmt, ap);
    va_end(ap);
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* "IPv4:port" as the capture writer wants it; anything else (IPv6) as 0.0.0.0. */
static void v4_or_zero(const char *addr, char *out, size_t cap)
{
    char ip[64];
    const char *colon = strrchr(addr, ':');
    struct in_addr a;
    if (colon != NULL && (size_t)(colon - addr) < sizeof ip) {
        memcpy(ip, addr, (size_t)(colon - addr));
        ip[colon - addr] = '\0';
        if (inet_pton(AF_INET, ip, &a) == 1) {
            snprintf(out, cap, "%s", addr);
            return;
        }
    }
    snprintf(out, cap, "0.0.0.0:%s", colon != NULL ? colon + 1 : "0");
}

static void unlink_session(ms_voicemail *vm, session *s)
{
    for (session **pp = &vm->sessions; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            return;
        }
    }
}

/* Ends a message: stops media and timer, commits the file (with media) or drops it. */
static void finish(session *s, const char *how)
{
    ms_voicemail *vm = s->vm;
    ms_sip_timer_cancel(s->timer);
    s->timer = NULL;
    ms_sip_udp_close(s->udp);
    s->udp = NULL;
    bool keep = s->datagrams > 0;
    char detail[256] = "";
    if (s->cap != NULL) {
        ms_err e = ms_capture_close(s->cap, keep);
        s->cap = NULL;
        if (e != MS_OK && keep) {
            vm_log(vm, "message %s for %s lost: the capture could not be written (%s)", s->id,
                   s->mailbox, ms_strerror(e));
            keep = false;
        }
    }
    if (!keep) {
        vm_log(vm, "call from %s (as claimed) for %s ended (%s) with no media: nothing stored",
               s->caller, s->mailbox, how);
        return;
    }
    ms_mailbox_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.id, sizeof e.id, "%s", s->id);
    snprintf(e.caller, sizeof e.caller, "%s", s->caller);
    e.time = s->start_s;
    uint64_t span_ms = (s->last_us - s->first_us) / 1000u;
    e.duration_ms = span_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)span_ms;
    ms_err err = ms_mailbox_commit(vm->store, s->mailbox, &e, detail, sizeof detail);
    if (err != MS_OK) {
        vm_log(vm, "message %s for %s not indexed: %s", s->id, s->mailbox, detail);
        return;
    }
    vm->stored++;
    vm_log(vm,
           "stored message %s for %s: caller %s (as claimed in From, unverified), %" PRIu32
           ".%03" PRIu32 " s, %" PRIu64 " datagrams, %" PRIu64 " octets (%s)",
           s->id, s->mailbox, s->caller, e.duration_ms / 1000u, e.duration_ms % 1000u,
           s->datagrams, s->bytes, s->why_stopped[0] != '\0' ? s->why_stopped : how);
}

static void session_free(session *s)
{
    ms_sip_timer_cancel(s->timer);
    ms_sip_udp_close(s->udp);
    if (s->cap != NULL)
        ms_capture_close(s->cap, false);
    free(s);
}

static void hang_up(session *s, const char *why)
{
    if (s->hung_up)
        return;
    s->hung_up = true;
    if (s->why_stopped[0] == '\0')
        snprintf(s->why_stopped, sizeof s->why_stopped, "%s", why);
    if (s->call != NULL)
        ms_sip_hangup(s->call); /* the closed handler follows and finishes */
}

static void on_timeout(void *arg)
{
    session *s = arg;
    ms_sip_timer_cancel(s->timer); /* a fired timer is still ours to free */
    s->timer = NULL;
    s->full = true;
    hang_up(s, "maximum duration reached: we hung up");
}

static void on_media(void *arg, const uint8_t *data, size_t len, const char *src,
                     uint64_t arrival_us)
{
    session *s = arg;
    if (s->full || s->cap == NULL)
        return;
    uint64_t add = PCAP_RECORD_UDP + (uint64_t)len;
    if (s->bytes + add > s->vm->limits.max_bytes) {
        s->full = true;
        hang_up(s, "maximum message size reached: we hung up");
        return;
    }
    char from[80];
    v4_or_zero(src, from, sizeof from);
    ms_err e = ms_capture_write_udp(s->cap, arrival_us, from, s->media_addr, data, len);
    if (e != MS_OK) {
        s->full = true;
        vm_log(s->vm, "message %s for %s: capture write failed (%s)", s->id, s->mailbox,
               ms_strerror(e));
        hang_up(s, "capture write failed: we hung up");
        return;
    }
    if (s->datagrams == 0)
        s->first_us = arrival_us;
    s->last_us = arrival_us;
    s->datagrams++;
    s->bytes += add;
}

/* The refusals: a status, and the Warning text. */
static int refuse(ms_voicemail *vm, session *s, int status, char *warning, size_t warning_cap,
                  const char *from, const char *to, const char *why)
{
    set_text(warning, warning_cap, "%s", why);
    vm_log(vm, "refused call from %s (as claimed) to %s: %d %s", from != NULL ? from : "?",
           to != NULL ? to : "?", status, why);
    if (s != NULL)
        session_free(s);
    return status;
}

static int on_incoming(void *arg, ms_sip_call *call, const char *from_uri, const char *to_uri,
                       const char *request_uri, const char *sdp, size_t sdp_len,
                       const uint8_t *raw, size_t raw_len, char *answer_sdp, size_t answer_cap,
                       char *warning, size_t warning_cap)
{
    ms_voicemail *vm = arg;
    char detail[256] = "", why[320];
    char mailbox[MS_VM_URI_MAX];
    if (ms_vm_choose_mailbox(raw, raw_len, to_uri, request_uri, vm->known, vm->known_ctx,
                             mailbox, sizeof mailbox, detail, sizeof detail) != MS_OK)
        return refuse(vm, NULL, 404, warning, warning_cap, from_uri, to_uri,
                      "no mailbox on this voicemail server for the callee");

    /* Encrypted media only: RTP/SAVP keyed by MIKEY in a=key-mgmt. */
    ms_sdp_audio offer;
    memset(&offer, 0, sizeof offer);
    if (sdp == NULL || ms_sdp_parse(&offer, sdp, sdp_len, detail, sizeof detail) != MS_OK) {
        set_text(why, sizeof why, "malformed SDP offer: %s", detail);
        return refuse(vm, NULL, 488, warning, warning_cap, from_uri, mailbox, why);
    }
    if (strcmp(offer.proto, "RTP/SAVP") != 0) {
        set_text(why, sizeof why, "%s offered: this voicemail stores RTP/SAVP (SRTP) only",
                 offer.proto[0] != '\0' ? offer.proto : "no media protocol");
        return refuse(vm, NULL, 488, warning, warning_cap, from_uri, mailbox, why);
    }
    if (offer.key_mgmt == NULL || offer.key_mgmt_len < 6 ||
        strncasecmp(offer.key_mgmt, "mikey ", 6) != 0)
        return refuse(vm, NULL, 488, warning, warning_cap, from_uri, mailbox,
                      "no a=key-mgmt:mikey in the offer: MIKEY-SAKKE key management required");

    if (offer.payload_type < 0)
        return refuse(vm, NULL, 488, warning, warning_cap, from_uri, mailbox,
                      "no RTP payload type in the offer");

    session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return refuse(vm, NULL, 500, warning, warning_cap, from_uri, mailbox, "out of memory");
    s->vm = vm;
    s->call = call;
    snprintf(s->mailbox, sizeof s->mailbox, "%s", mailbox);
    /* The caller as the From header claims it: nothing here can check it. */
    snprintf(s->caller, sizeof s->caller, "%s", from_uri != NULL ? from_uri : "");
    s->start_s = now_us() / 1000000u;

    /* Messages still being recorded for this mailbox count against its quota. */
    unsigned recording = 0;
    for (const session *o = vm->sessions; o != NULL; o = o->next)
        recording += strcmp(o->mailbox, mailbox) == 0;
    char path[4096];
    ms_err e = ms_mailbox_begin(vm->store, mailbox, recording, s->id, path, sizeof path,
                                detail, sizeof detail);
    if (e == MS_ERR_QUOTA)
        return refuse(vm, s, 486, warning, warning_cap, from_uri, mailbox, "mailbox full");
    if (e != MS_OK) {
        vm_log(vm, "store failed for %s: %s", mailbox, detail);
        return refuse(vm, s, 500, warning, warning_cap, from_uri, mailbox,
                      "voicemail store failed");
    }
    e = ms_sip_udp_open(vm->sip, &s->udp, vm->media_ip, on_media, s);
    if (e != MS_OK)
        return refuse(vm, s, 500, warning, warning_cap, from_uri, mailbox,
                      "no media port available");
    snprintf(s->media_addr, sizeof s->media_addr, "%s:%u", vm->media_ip,
             (unsigned)ms_sip_udp_port(s->udp));
    e = ms_capture_create(&s->cap, path, detail, sizeof detail);
    if (e != MS_OK) {
        vm_log(vm, "cannot create %s: %s", path, detail);
        return refuse(vm, s, 500, warning, warning_cap, from_uri, mailbox,
                      "voicemail store failed");
    }
    /* The INVITE first, as a TCP segment from the hop that sent it: a reader finds its
     * SDP and I_MESSAGE there, as in a capture taken on the wire. */
    char sender[80], dst[80];
    ms_vm_sip_sender(raw, raw_len, sender, sizeof sender);
    v4_or_zero(vm->sip_addr, dst, sizeof dst);
    e = ms_capture_write_tcp(s->cap, now_us(), sender, dst, raw, raw_len);
    if (e != MS_OK) {
        vm_log(vm, "cannot write %s: %s", path, ms_strerror(e));
        return refuse(vm, s, 500, warning, warning_cap, from_uri, mailbox,
                      "voicemail store failed");
    }
    s->bytes = PCAP_FILE_HEADER + PCAP_RECORD_TCP + raw_len;

    /* Our answer: SRTP on our port, receive only, the offer's codec; no key-mgmt (the
     * callee, not this server, opens the I_MESSAGE later). */
    ms_sdp_audio ans;
    memset(&ans, 0, sizeof ans);
    snprintf(ans.addr, sizeof ans.addr, "%s", vm->media_ip);
    ans.port = ms_sip_udp_port(s->udp);
    snprintf(ans.proto, sizeof ans.proto, "RTP/SAVP");
    ans.payload_type = offer.payload_type;
    snprintf(ans.codec, sizeof ans.codec, "%s", offer.codec);
    snprintf(ans.crypto_suite, sizeof ans.crypto_suite, "%s", offer.crypto_suite);
    snprintf(ans.direction, sizeof ans.direction, "recvonly");
    uint64_t session_id = 0;
    if (RAND_bytes((unsigned char *)&session_id, sizeof session_id) != 1)
        session_id = now_us();
    session_id &= INT64_MAX; /* SDP wants a numeric id that fits a signed 64-bit */
    e = ms_sdp_format(answer_sdp, answer_cap, &ans, session_id, NULL);
    if (e != MS_OK)
        return refuse(vm, s, 500, warning, warning_cap, from_uri, mailbox,
                      "could not build the SDP answer");
    e = ms_sip_timer_start(vm->sip, &s->timer, (uint64_t)vm->max_seconds * 1000u, on_timeout,
                           s);
    if (e != MS_OK)
        return refuse(vm, s, 500, warning, warning_cap, from_uri, mailbox, "out of memory");

    ms_sip_call_set_arg(call, s);
    s->next = vm->sessions;
    vm->sessions = s;
    vm_log(vm, "recording message %s for %s from %s (as claimed), media on %s, up to %" PRIu32
           " s", s->id, mailbox, s->caller, s->media_addr, vm->max_seconds);
    return 0;
}

static void on_established(void *arg, ms_sip_call *call, const char *remote_sdp,
                           size_t remote_sdp_len)
{
    (void)arg;
    (void)call;
    (void)remote_sdp;
    (void)remote_sdp_len;
}

static void on_closed(void *arg, ms_sip_call *call, int status, const char *reason,
                      const char *warning)
{
    ms_voicemail *vm = arg;
    (void)warning;
    session *s = ms_sip_call_arg(call);
    if (s == NULL)
        return;
    ms_sip_call_set_arg(call, NULL);
    s->call = NULL;
    unlink_session(vm, s);
    char how[160];
    if (status == 0)
        snprintf(how, sizeof how, "%s", s->hung_up ? "we hung up" : "caller hung up");
    else
        snprintf(how, sizeof how, "SIP %d %s", status, reason != NULL ? reason : "");
    finish(s, how);
    session_free(s);
}

static void on_registered(void *arg, int status, const char *reason)
{
    ms_voicemail *vm = arg;
    if (status == 200)
        vm_log(vm, "registered at the provider");
    else
        vm_log(vm, "registration failed: %d %s", status, reason != NULL ? reason : "");
}

ms_err ms_voicemail_new(ms_voicemail **out, const ms_voicemail_config *cfg,
                        ms_mailbox_store *store, char *detail, size_t detail_cap)
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    if (cfg == NULL || store == NULL)
        return MS_ERR_ARG;
    ms_voicemail *vm = calloc(1, sizeof *vm);
    if (vm == NULL)
        return MS_ERR_NOMEM;
    vm->store = store;
    ms_mailbox_get_limits(store, &vm->limits);
    vm->max_seconds = cfg->max_seconds != 0 && cfg->max_seconds < vm->limits.max_seconds
                          ? cfg->max_seconds
                          : vm->limits.max_seconds;
    vm->known = cfg->mailbox_known;
    vm->known_ctx = cfg->known_ctx;
    vm->log = cfg->log;
    vm->log_ctx = cfg->log_ctx;

    /* Media on the listen address unless told otherwise; a wildcard is no address to
     * put in an SDP. */
    const char *listen = cfg->listen != NULL ? cfg->listen : "127.0.0.1:0";
    if (cfg->media_ip != NULL) {
        snprintf(vm->media_ip, sizeof vm->media_ip, "%s", cfg->media_ip);
    } else {
        const char *colon = strrchr(listen, ':');
        size_t l = colon != NULL ? (size_t)(colon - listen) : strlen(listen);
        if (l >= sizeof vm->media_ip)
            l = 0;
        memcpy(vm->media_ip, listen, l);
        vm->media_ip[l] = '\0';
        if (vm->media_ip[0] == '\0' || strcmp(vm->media_ip, "0.0.0.0") == 0)
            snprintf(vm->media_ip, sizeof vm->media_ip, "127.0.0.1");
    }
    struct in_addr a;
    if (inet_pton(AF_INET, vm->media_ip, &a) != 1) {
        set_text(detail, detail_cap, "media address \"%s\" is not an IPv4 address",
                 vm->media_ip);
        free(vm);
        return MS_ERR_ARG;
    }
    char local_uri[MS_VM_URI_MAX];
    if (cfg->local_uri != NULL)
        snprintf(local_uri, sizeof local_uri, "%s", cfg->local_uri);
    else
        snprintf(local_uri, sizeof local_uri, "sip:voicemail@%s", vm->media_ip);

    ms_sip_config sc;
    memset(&sc, 0, sizeof sc);
    sc.local_uri = local_uri;
    sc.display = "Voicemail";
    sc.listen = listen;
    sc.transport = cfg->transport;
    sc.proxy = cfg->proxy;
    sc.do_register = cfg->do_register;
    sc.auth_user = cfg->auth_user;
    sc.password = cfg->password;
    sc.user_agent = "mikeysakke-voicemail";
    ms_sip_handlers h = {.incoming = on_incoming,
                         .established = on_established,
                         .closed = on_closed,
                         .registered = on_registered};
    ms_err e = ms_sip_new(&vm->sip, &sc, &h, vm, detail, detail_cap);
    if (e != MS_OK) {
        free(vm);
        return e;
    }
    if (ms_sip_local_addr(vm->sip, vm->sip_addr, sizeof vm->sip_addr) != MS_OK)
        snprintf(vm->sip_addr, sizeof vm->sip_addr, "0.0.0.0:0");
    *out = vm;
    return MS_OK;
}

ms_err ms_voicemail_local_addr(const ms_voicemail *vm, char *out, size_t cap)
{
    if (vm == NULL)
        return MS_ERR_ARG;
    return ms_sip_local_addr(vm->sip, out, cap);
}

ms_err ms_voicemail_run(ms_voicemail *vm)
{
    if (vm == NULL)
        return MS_ERR_ARG;
    return ms_sip_run(vm->sip);
}

void ms_voicemail_stop(ms_voicemail *vm)
{
    if (vm != NULL)
        ms_sip_stop(vm->sip);
}

static void poll_stop(void *arg)
{
    ms_voicemail *vm = arg;
    ms_sip_timer_cancel(vm->stop_timer);
    vm->stop_timer = NULL;
    if (*vm->stop_flag != 0) {
        ms_sip_stop(vm->sip);
        return;
    }
    if (ms_sip_timer_start(vm->sip, &vm->stop_timer, STOP_POLL_MS, poll_stop, vm) != MS_OK)
        ms_sip_stop(vm->sip); /* cannot watch the flag any more: stop rather than hang */
}

ms_err ms_voicemail_stop_on(ms_voicemail *vm, volatile int *flag)
{
    if (vm == NULL || flag == NULL)
        return MS_ERR_ARG;
    vm->stop_flag = flag;
    ms_sip_timer_cancel(vm->stop_timer);
    vm->stop_timer = NULL;
    return ms_sip_timer_start(vm->sip, &vm->stop_timer, STOP_POLL_MS, poll_stop, vm);
}

unsigned long ms_voicemail_stored(const ms_voicemail *vm)
{
    return vm != NULL ? vm->stored : 0;
}

void ms_voicemail_free(ms_voicemail *vm)
{
    if (vm == NULL)
        return;
    ms_sip_timer_cancel(vm->stop_timer);
    /* Messages in progress are ended here: ms_sip_free closes their calls without
     * calling the closed handler. */
    while (vm->sessions != NULL) {
        session *s = vm->sessions;
        vm->sessions = s->next;
        if (s->call != NULL)
            ms_sip_call_set_arg(s->call, NULL);
        finish(s, "server shutting down");
        session_free(s);
    }
    ms_sip_free(vm->sip);
    free(vm);
}
