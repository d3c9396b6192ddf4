/*
 * A phone (include/mikeysakke/call.h): the SIP agent, the MIKEY-SAKKE keys of one device
 * and the media of one call at a time, on libre's single event loop. Media is Opus in
 * SRTP with RTCP multiplexed on the same port (RFC 5761); a 20 ms timer paces sending.
 */
#include "mikeysakke/call.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "call/audio.h"
#include "call/keys.h"
#include "call/rtp.h"
#include "call/srtp.h"
#include "mikeysakke/crypto.h"
#include "sip/sdp.h"
#include "sip/sip.h"
#include "util/detail.h"

#define OPUS_PT 96
#define FRAME_MS 20
#define DRAIN_MS 200     /* after our last frame, before BYE, so it arrives */
#define PKT_CAP (MS_RTP_HEADER + MS_AUDIO_MAX_PACKET + MS_SRTP_MAX_OVERHEAD)

typedef struct active_call {
    ms_phone *phone;
    ms_sip_call *sip;
    bool incoming;
    bool established;
    bool hanging_up;
    int index; /* 1-based count of calls on this phone, for record file names */
    ms_call_crypto crypto;
    ms_call_event ev;

    ms_sip_udp *udp;
    char remote_ip[64];
    uint16_t remote_port;
    ms_srtp *tx, *rx;
    ms_opus_enc *enc;
    ms_opus_dec *dec;
    ms_wav_writer *rec;
    ms_soundcard *card;
    size_t play_pos;
    bool play_done;
    uint32_t ssrc, ts, packets, octets;
    uint16_t seq;
    ms_sip_timer *tick, *limit, *drain, *ring;
    uint64_t invite_us;
} active_call;

struct ms_phone {
    ms_phone_config cfg;
    char *passphrase;
    char *password;
    char own_uri[256];
    char media_ip[64];
    ms_call_keys *keys;
    ms_mikey_profile profile; /* the keystore's community decides */
    ms_sip *sip;
    ms_wav play;
    bool have_play;
    active_call *call;
    uint32_t calls_done;
    uint32_t calls_started;
    bool registered;
    bool waiting_registration;
    bool stop;
    bool dialing;
    ms_sip_timer *stop_timer;
    ms_err dial_result;
    char dial_detail[300];
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void emit(ms_phone *p, const ms_call_event *ev)
{
    if (p->cfg.event != NULL)
        p->cfg.event(p->cfg.event_arg, ev);
}

static char *dup_secret(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = 0;
    }
    return d;
}

static void free_secret(char *s)
{
    if (s != NULL) {
        ms_wipe(s, strlen(s));
        free(s);
    }
}

/* ---- one call's media ---------------------------------------------------------------------- */

static void call_free(active_call *c)
{
    if (c == NULL)
        return;
    ms_sip_timer_cancel(c->tick);
    ms_sip_timer_cancel(c->limit);
    ms_sip_timer_cancel(c->drain);
    ms_sip_timer_cancel(c->ring);
    ms_sip_udp_close(c->udp);
    ms_srtp_free(c->tx);
    ms_srtp_free(c->rx);
    ms_opus_enc_free(c->enc);
    ms_opus_dec_free(c->dec);
    if (c->rec != NULL)
        (void)ms_wav_close(c->rec, true);
    ms_soundcard_close(c->card);
    ms_call_crypto_wipe(&c->crypto);
    ms_wipe(c, sizeof *c);
    free(c);
}

static void send_rtcp(active_call *c)
{
    uint8_t pkt[128];
    size_t len = ms_rtcp_write_sr(pkt, sizeof pkt, c->ssrc, ms_ntp_now(), c->ts, c->packets,
                                  c->octets);
    if (len == 0 || ms_srtp_protect_rtcp(c->tx, pkt, &len, sizeof pkt) != MS_OK)
        return;
    (void)ms_sip_udp_send(c->udp, c->remote_ip, c->remote_port, pkt, len);
}

static void send_frame(active_call *c, const int16_t *pcm)
{
    uint8_t pkt[PKT_CAP];
    size_t opus_len = 0;
    if (ms_opus_encode(c->enc, pkt + MS_RTP_HEADER, MS_AUDIO_MAX_PACKET, &opus_len, pcm) !=
        MS_OK)
        return;
    ms_rtp_header h = {.payload_type = OPUS_PT,
                       .marker = c->packets == 0,
                       .seq = c->seq++,
                       .timestamp = c->ts,
                       .ssrc = c->ssrc};
    c->ts += MS_AUDIO_FRAME;
    ms_rtp_write_header(pkt, &h);
    size_t len = MS_RTP_HEADER + opus_len;
    if (ms_srtp_protect(c->tx, pkt, &len, sizeof pkt) != MS_OK)
        return;
    if (ms_sip_udp_send(c->udp, c->remote_ip, c->remote_port, pkt, len) == MS_OK) {
        c->packets++;
        c->octets += (uint32_t)opus_len;
        c->ev.packets_sent++;
    }
}

static void hangup_now(void *arg)
{
    active_call *c = arg;
    ms_sip_timer_cancel(c->drain); /* a fired timer is still ours to free */
    c->drain = NULL;
    if (!c->hanging_up) {
        c->hanging_up = true;
        ms_sip_hangup(c->sip);
    }
}

static void on_tick(void *arg);

static void on_ring_timeout(void *arg)
{
    active_call *c = arg;
    ms_sip_timer_cancel(c->ring);
    c->ring = NULL;
    if (!c->established)
        hangup_now(c); /* a CANCEL: the closed event reports it */
}

static void schedule_tick(active_call *c)
{
    ms_sip_timer_cancel(c->tick);
    c->tick = NULL;
    (void)ms_sip_timer_start(c->phone->sip, &c->tick, FRAME_MS, on_tick, c);
}

static void on_tick(void *arg)
{
    active_call *c = arg;
    ms_phone *p = c->phone;
    ms_sip_timer_cancel(c->tick);
    c->tick = NULL;
    if (c->hanging_up)
        return;
    int16_t pcm[MS_AUDIO_FRAME];
    if (p->have_play) {
        if (c->play_pos >= p->play.n_frames) {
            if (!c->play_done) {
                c->play_done = true;
                send_rtcp(c);
                /* The caller hangs up at the end of its input; the callee keeps
                 * listening until the BYE. */
                if (!c->incoming)
                    (void)ms_sip_timer_start(p->sip, &c->drain, DRAIN_MS, hangup_now, c);
            }
            return;
        }
        size_t n = p->play.n_frames - c->play_pos;
        if (n > MS_AUDIO_FRAME)
            n = MS_AUDIO_FRAME;
        memset(pcm, 0, sizeof pcm);
        memcpy(pcm, p->play.samples + c->play_pos, n * sizeof(int16_t));
        c->play_pos += n;
        send_frame(c, pcm);
    } else if (c->card != NULL) {
        if (ms_soundcard_read(c->card, pcm) == MS_OK)
            send_frame(c, pcm);
    }
    schedule_tick(c);
}

static void on_limit(void *arg)
{
    active_call *c = arg;
    ms_sip_timer_cancel(c->limit);
    c->limit = NULL;
    hangup_now(c);
}

static void on_media(void *arg, const uint8_t *data, size_t len, const char *src,
                     uint64_t arrival_us)
{
    active_call *c = arg;
    (void)src;
    (void)arrival_us;
    uint8_t pkt[PKT_CAP];
    if (len > sizeof pkt || c->rx == NULL)
        return;
    memcpy(pkt, data, len);
    bool rtcp = ms_rtp_is_rtcp(pkt, len);
    ms_err err = rtcp ? ms_srtp_unprotect_rtcp(c->rx, pkt, &len)
                      : ms_srtp_unprotect(c->rx, pkt, &len);
    if (err == MS_ERR_SRTP_REPLAY) {
        c->ev.packets_replayed++;
        return;
    }
    if (err != MS_OK) {
        c->ev.packets_auth_failed++;
        return;
    }
    if (rtcp)
        return;
    ms_rtp_header h;
    size_t off, plen;
    if (ms_rtp_parse(&h, &off, &plen, pkt, len) != MS_OK || h.payload_type != OPUS_PT)
        return;
    c->ev.packets_received++;
    int16_t pcm[MS_AUDIO_FRAME];
    if (ms_opus_decode(c->dec, pcm, pkt + off, plen) != MS_OK)
        return;
    if (c->ev.frames_recorded == 0 && !c->incoming && c->invite_us != 0)
        c->ev.setup_us = now_us() - c->invite_us;
    c->ev.frames_recorded++;
    if (c->rec != NULL)
        (void)ms_wav_append(c->rec, pcm, MS_AUDIO_FRAME);
    if (c->card != NULL)
        (void)ms_soundcard_write(c->card, pcm);
}

/* Sockets, codec and recorder for a new call; SRTP once the keys are known. */
static ms_err media_open(ms_phone *p, active_call *c, char *detail, size_t cap)
{
    ms_err err;
    if ((err = ms_sip_udp_open(p->sip, &c->udp, p->media_ip, on_media, c)) != MS_OK) {
        ms_detail_set(detail, cap, "cannot open a media socket on %s", p->media_ip);
        return err;
    }
    if ((err = ms_opus_enc_new(&c->enc, 1)) != MS_OK ||
        (err = ms_opus_dec_new(&c->dec, 1)) != MS_OK ||
        (err = ms_rtp_random_start(&c->ssrc, &c->seq, &c->ts)) != MS_OK) {
        ms_detail_set(detail, cap, "cannot start the Opus codec");
        return err;
    }
    /* Both directions are keyed by the same PCK, so the two SSRCs must differ or GCM
     * would reuse nonces: the caller's top bit is 0, the callee's 1. */
    c->ssrc = (c->ssrc & 0x7fffffffu) | (c->incoming ? 0x80000000u : 0u);
    if (p->cfg.record_wav != NULL) {
        char path[1024];
        const char *dot = strrchr(p->cfg.record_wav, '.');
        if (c->incoming && p->cfg.answer_calls != 1 && dot != NULL)
            snprintf(path, sizeof path, "%.*s-%d%s", (int)(dot - p->cfg.record_wav),
                     p->cfg.record_wav, c->index, dot);
        else
            snprintf(path, sizeof path, "%s", p->cfg.record_wav);
        if ((err = ms_wav_create(&c->rec, path, MS_AUDIO_RATE, 1, detail, cap)) != MS_OK)
            return err;
    }
    if (!p->have_play && p->cfg.record_wav == NULL) {
        if ((err = ms_soundcard_open(&c->card, p->cfg.sound_device, detail, cap)) != MS_OK)
            return err;
    }
    return MS_OK;
}

static ms_err media_keys(active_call *c)
{
    ms_err err;
    if ((err = ms_srtp_new(&c->tx, c->crypto.suite, &c->crypto.srtp, true)) != MS_OK)
        return err;
    return ms_srtp_new(&c->rx, c->crypto.suite, &c->crypto.srtp, false);
}

static void fill_event_keys(active_call *c)
{
    snprintf(c->ev.peer, sizeof c->ev.peer, "%s", c->crypto.peer);
    c->ev.period_no = c->crypto.period_no;
    c->ev.key_id = c->crypto.key_id;
    snprintf(c->ev.suite, sizeof c->ev.suite, "%s", ms_srtp_suite_name(c->crypto.suite));
    snprintf(c->ev.call_id, sizeof c->ev.call_id, "%s", ms_sip_call_id(c->sip));
}

static void start_media(active_call *c)
{
    ms_phone *p = c->phone;
    ms_sip_timer_cancel(c->ring);
    c->ring = NULL;
    c->established = true;
    c->ev.type = MS_CALL_EV_ESTABLISHED;
    emit(p, &c->ev);
    uint32_t limit = p->cfg.max_seconds ? p->cfg.max_seconds : 3600;
    (void)ms_sip_timer_start(p->sip, &c->limit, (uint64_t)limit * 1000u, on_limit, c);
    send_rtcp(c);
    on_tick(c); /* the first frame now: waiting a tick would add 20 ms to the set-up */
}

static void stop_now(void *arg)
{
    ms_phone *p = arg;
    ms_sip_timer_cancel(p->stop_timer);
    p->stop_timer = NULL;
    ms_sip_stop(p->sip);
}

/* Leave the loop a moment later, so that a final response or BYE still queued on a TCP
 * connection is written out first. */
static void stop_soon(ms_phone *p)
{
    p->stop = true;
    if (p->stop_timer == NULL &&
        ms_sip_timer_start(p->sip, &p->stop_timer, DRAIN_MS, stop_now, p) != MS_OK)
        ms_sip_stop(p->sip);
}

/* ---- SIP events --------------------------------------------------------------------------- */

static void split_hostport(const char *addr, char *ip, size_t cap)
{
    const char *colon = strrchr(addr, ':');
    size_t n = colon != NULL ? (size_t)(colon - addr) : strlen(addr);
    if (n > 0 && addr[0] == '[') {
        addr++;
        n -= 2;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(ip, addr, n);
    ip[n] = 0;
}

static int on_incoming(void *arg, ms_sip_call *sc, const char *from_uri, const char *to_uri,
                       const char *request_uri, const char *sdp, size_t sdp_len,
                       const uint8_t *raw, size_t raw_len, char *answer, size_t answer_cap,
                       char *warning, size_t warning_cap)
{
    ms_phone *p = arg;
    (void)to_uri;
    (void)request_uri;
    (void)raw;
    (void)raw_len;
    ms_call_event ev = {.type = MS_CALL_EV_REFUSED, .incoming = true};
    snprintf(ev.peer, sizeof ev.peer, "%s", from_uri);
    snprintf(ev.call_id, sizeof ev.call_id, "%s", ms_sip_call_id(sc));
    if (p->call != NULL || p->stop) {
        snprintf(warning, warning_cap, "busy: one call at a time");
        ev.sip_status = 486;
        snprintf(ev.warning, sizeof ev.warning, "%s", warning);
        ev.err = MS_ERR_CALL_REFUSED;
        emit(p, &ev);
        return 486;
    }
    active_call *c = calloc(1, sizeof *c);
    if (c == NULL)
        return 500;
    c->phone = p;
    c->sip = sc;
    c->incoming = true;
    c->index = (int)++p->calls_started;
    c->ev.incoming = true;

    char claimed[256];
    ms_call_refusal why = {0};
    ms_sdp_audio remote;
    uint64_t t0 = now_us();
    ms_err err = ms_call_identity_from_sip(claimed, sizeof claimed, from_uri, p->profile);
    if (err != MS_OK) {
        why.sip_status = 606;
        why.err = err;
        snprintf(why.warning, sizeof why.warning, "caller identity %s is not a usable URI",
                 from_uri);
    } else {
        err = ms_call_check_offer(p->keys, &c->crypto, &remote, &why, sdp, sdp_len, claimed);
    }
    c->ev.mikey_us = now_us() - t0;
    char detail[256] = "";
    if (err == MS_OK) {
        snprintf(c->remote_ip, sizeof c->remote_ip, "%s", remote.addr);
        c->remote_port = remote.port;
        if ((err = media_open(p, c, detail, sizeof detail)) != MS_OK ||
            (err = media_keys(c)) != MS_OK ||
            (err = ms_call_make_answer(answer, answer_cap, &c->crypto, p->media_ip,
                                       ms_sip_udp_port(c->udp))) != MS_OK) {
            why.sip_status = 500;
            why.err = err;
            snprintf(why.warning, sizeof why.warning, "callee failed: %.200s",
                     detail[0] ? detail : ms_strerror(err));
        }
    }
    if (err != MS_OK) {
        snprintf(warning, warning_cap, "%s", why.warning);
        ev.sip_status = why.sip_status ? why.sip_status : 488;
        ev.err = err;
        snprintf(ev.warning, sizeof ev.warning, "%s", why.warning);
        emit(p, &ev);
        p->calls_done++; /* a refused offer counts as one call answered */
        if (p->cfg.answer_calls != 0 && p->calls_done >= p->cfg.answer_calls)
            stop_soon(p);
        call_free(c);
        return ev.sip_status;
    }
    fill_event_keys(c);
    ms_sip_call_set_arg(sc, c);
    p->call = c;
    return 0;
}

static void on_established(void *arg, ms_sip_call *sc, const char *remote_sdp, size_t len)
{
    ms_phone *p = arg;
    active_call *c = ms_sip_call_arg(sc);
    if (c == NULL || c != p->call)
        return;
    if (!c->incoming) {
        ms_sdp_audio ans;
        char detail[200] = "";
        if (ms_sdp_parse(&ans, remote_sdp, len, detail, sizeof detail) != MS_OK ||
            strcmp(ans.proto, "RTP/SAVP") != 0 || ans.port == 0) {
            /* Never send media the answer does not protect. */
            snprintf(p->dial_detail, sizeof p->dial_detail,
                     "the answer offers no SRTP stream (%s)", detail[0] ? detail : ans.proto);
            p->dial_result = MS_ERR_NOT_SECURE;
            hangup_now(c);
            return;
        }
        snprintf(c->remote_ip, sizeof c->remote_ip, "%s", ans.addr);
        c->remote_port = ans.port;
    }
    start_media(c);
}

static void on_closed(void *arg, ms_sip_call *sc, int status, const char *reason,
                      const char *warning)
{
    ms_phone *p = arg;
    active_call *c = ms_sip_call_arg(sc);
    if (c == NULL || c != p->call)
        return;
    if (c->established) {
        c->ev.type = MS_CALL_EV_ENDED;
        emit(p, &c->ev);
    } else if (!c->incoming) {
        c->ev.type = MS_CALL_EV_REJECTED;
        c->ev.sip_status = status;
        snprintf(c->ev.warning, sizeof c->ev.warning, "%s", warning ? warning : "");
        c->ev.err = MS_ERR_CALL_REFUSED;
        emit(p, &c->ev);
        if (p->dial_result == MS_OK) {
            /* The callee (or the provider's policy) saying no is a refusal; our transport
             * failing, or the provider wanting credentials we lack, is signalling. */
            bool signalling = status <= 0 || status == 401 || status == 407 ||
                              ms_sip_call_failed_locally(sc);
            p->dial_result = signalling ? MS_ERR_SIP : MS_ERR_CALL_REFUSED;
            snprintf(p->dial_detail, sizeof p->dial_detail, "%d %s%s%s%s", status,
                     reason ? reason : "", warning && warning[0] ? " (Warning: " : "",
                     warning ? warning : "", warning && warning[0] ? ")" : "");
        }
    }
    p->call = NULL;
    call_free(c);
    p->calls_done++;
    if (p->dialing || p->stop ||
        (p->cfg.answer_calls != 0 && p->calls_done >= p->cfg.answer_calls))
        stop_soon(p);
}

static void on_registered(void *arg, int status, const char *reason)
{
    ms_phone *p = arg;
    ms_call_event ev = {.type = MS_CALL_EV_REGISTERED, .sip_status = status};
    snprintf(ev.warning, sizeof ev.warning, "%s", reason ? reason : "");
    snprintf(ev.peer, sizeof ev.peer, "%s", p->own_uri);
    ev.err = status == 200 ? MS_OK : MS_ERR_SIP;
    p->registered = status == 200;
    emit(p, &ev);
    if (p->waiting_registration) {
        p->waiting_registration = false;
        ms_sip_stop(p->sip);
    }
}

/* ---- the phone ------------------------------------------------------------------------------ */

ms_err ms_phone_new(ms_phone **out, const ms_phone_config *cfg, char *detail, size_t cap)
{
    if (out == NULL || cfg == NULL || cfg->keystore_dir == NULL || cfg->passphrase == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    ms_phone *p = calloc(1, sizeof *p);
    if (p == NULL)
        return MS_ERR_NOMEM;
    p->cfg = *cfg;
    p->passphrase = dup_secret(cfg->passphrase, cfg->passphrase_len);
    p->password = cfg->password ? dup_secret(cfg->password, strlen(cfg->password)) : NULL;
    p->cfg.passphrase = NULL;
    p->cfg.password = NULL;
    ms_err err = MS_ERR_NOMEM;
    if (p->passphrase == NULL || (cfg->password != NULL && p->password == NULL))
        goto fail;

    ms_call_keys_options ko = {.mode = MS_CALL_KEYS_LIVE,
                               .profile = MS_MIKEY_PROFILE_PCK,
                               .no_sakke_to_self = cfg->no_sakke_to_self,
                               .suite = MS_SRTP_AEAD_AES_128_GCM,
                               .accepted_suites = cfg->gcm_only ? MS_CALL_SUITE_GCM : 0,
                               .clock = cfg->clock,
                               .clock_ctx = cfg->clock_ctx};
    if (cfg->suite != NULL && (err = ms_srtp_suite_parse(&ko.suite, cfg->suite)) != MS_OK) {
        ms_detail_set(detail, cap, "unknown SRTP suite %s", cfg->suite);
        goto fail;
    }
    if ((err = ms_call_keys_open(&p->keys, cfg->keystore_dir, p->passphrase,
                                 cfg->passphrase_len, &ko, detail, cap)) != MS_OK)
        goto fail;
    p->profile = ms_call_keys_profile(p->keys);
    snprintf(p->own_uri, sizeof p->own_uri, "%s",
             cfg->sip_uri ? cfg->sip_uri : ms_call_keys_own_uri(p->keys));
    if (cfg->play_wav != NULL) {
        if ((err = ms_wav_read(&p->play, cfg->play_wav, detail, cap)) != MS_OK)
            goto fail;
        p->have_play = true;
        if (p->play.rate != MS_AUDIO_RATE || p->play.channels != 1) {
            ms_detail_set(detail, cap, "%s: calls take 48000 Hz mono 16-bit WAV",
                       cfg->play_wav);
            err = MS_ERR_MEDIA;
            goto fail;
        }
    }
    ms_sip_config sc = {.local_uri = p->own_uri,
                        .listen = cfg->listen,
                        .transport = cfg->transport,
                        .proxy = cfg->proxy,
                        .do_register = cfg->do_register,
                        .auth_user = cfg->auth_user,
                        .password = p->password,
                        .tls_ca_file = cfg->tls_ca_file};
    ms_sip_handlers h = {.incoming = on_incoming,
                         .established = on_established,
                         .closed = on_closed,
                         .registered = on_registered};
    if ((err = ms_sip_new(&p->sip, &sc, &h, p, detail, cap)) != MS_OK)
        goto fail;
    char local[96];
    if ((err = ms_sip_local_addr(p->sip, local, sizeof local)) != MS_OK)
        goto fail;
    split_hostport(local, p->media_ip, sizeof p->media_ip);
    *out = p;
    return MS_OK;
fail:
    ms_phone_free(p);
    return err;
}

void ms_phone_free(ms_phone *p)
{
    if (p == NULL)
        return;
    call_free(p->call);
    ms_sip_timer_cancel(p->stop_timer);
    ms_sip_free(p->sip);
    ms_call_keys_free(p->keys);
    if (p->have_play)
        ms_wav_free(&p->play);
    free_secret(p->passphrase);
    free_secret(p->password);
    free(p);
}

void ms_phone_stop(ms_phone *p)
{
    if (p == NULL)
        return;
    if (p->call != NULL && p->call->established) {
        p->stop = true;
        hangup_now(p->call);
    } else {
        stop_soon(p);
    }
}

static ms_err wait_registration(ms_phone *p, char *detail, size_t cap)
{
    if (!p->cfg.do_register || p->registered)
        return MS_OK;
    p->waiting_registration = true;
    ms_err err = ms_sip_run(p->sip);
    if (err != MS_OK)
        return err;
    if (!p->registered) {
        ms_detail_set(detail, cap, "registration of %s failed", p->own_uri);
        return MS_ERR_SIP;
    }
    return MS_OK;
}

ms_err ms_phone_dial(ms_phone *p, const char *to_uri, char *detail, size_t cap)
{
    if (p == NULL || to_uri == NULL)
        return MS_ERR_ARG;
    /* The callee's encapsulation table is built while dialling starts (before the
     * INVITE), as a phone would while the number is being entered; best effort. */
    ms_err prep = ms_call_keys_prepare_peer(p->keys, to_uri);
    (void)prep;
    ms_err err = wait_registration(p, detail, cap);
    if (err != MS_OK)
        return err;
    active_call *c = calloc(1, sizeof *c);
    if (c == NULL)
        return MS_ERR_NOMEM;
    c->phone = p;
    c->index = (int)++p->calls_started;
    if ((err = media_open(p, c, detail, cap)) != MS_OK) {
        call_free(c);
        return err;
    }
    char callee[256];
    if ((err = ms_call_identity_from_sip(callee, sizeof callee, to_uri, p->profile)) !=
        MS_OK) {
        ms_detail_set(detail, cap, "%s is not a URI a call can be keyed to", to_uri);
        call_free(c);
        return err;
    }
    char *sdp = malloc(MS_SDP_MAX);
    if (sdp == NULL) {
        call_free(c);
        return MS_ERR_NOMEM;
    }
    uint64_t t0 = now_us();
    err = ms_call_make_offer(p->keys, sdp, MS_SDP_MAX, &c->crypto, callee, p->media_ip,
                             ms_sip_udp_port(c->udp), detail, cap);
    c->ev.mikey_us = now_us() - t0;
    if (err == MS_OK)
        err = media_keys(c);
    if (err != MS_OK) {
        free(sdp);
        call_free(c);
        return err;
    }
    p->dial_result = MS_OK;
    p->dial_detail[0] = 0;
    c->invite_us = now_us();
    err = ms_sip_dial(p->sip, &c->sip, to_uri, sdp);
    free(sdp);
    if (err != MS_OK) {
        ms_detail_set(detail, cap, "cannot send the INVITE to %s", to_uri);
        call_free(c);
        return err;
    }
    ms_sip_call_set_arg(c->sip, c);
    fill_event_keys(c);
    uint32_t ring = p->cfg.ring_timeout_s ? p->cfg.ring_timeout_s : 30;
    (void)ms_sip_timer_start(p->sip, &c->ring, (uint64_t)ring * 1000u, on_ring_timeout, c);
    p->call = c;
    p->stop = false;
    p->dialing = true;
    err = ms_sip_run(p->sip);
    p->dialing = false;
    if (err == MS_OK && p->dial_result != MS_OK) {
        err = p->dial_result;
        ms_detail_set(detail, cap, "%s", p->dial_detail);
    }
    return err;
}

ms_err ms_phone_answer(ms_phone *p, char *detail, size_t cap)
{
    if (p == NULL)
        return MS_ERR_ARG;
    ms_err err = wait_registration(p, detail, cap);
    if (err != MS_OK)
        return err;
    p->stop = false;
    for (;;) {
        if ((err = ms_sip_run(p->sip)) != MS_OK)
            return err;
        if (p->stop)
            break;
    }
    return MS_OK;
}
