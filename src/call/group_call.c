/*
 * A member in a group call (call/group_call.h), on the SIP agent's event loop: a 20 ms
 * tick sends our audio and plays out the mix, every datagram from the relay is opened by
 * the sender's own SRTP context (chosen by MKI) and decoded by that sender's decoder.
 */
#include "call/group_call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "call/audio.h"
#include "call/group_media.h"
#include "call/keys.h"
#include "call/rtp.h"
#include "call/srtp.h"
#include "mikeysakke/call.h"
#include "mikeysakke/crypto.h"
#include "sip/sdp.h"
#include "sip/sip.h"
#include "util/detail.h"

#define OPUS_PT 96
#define FRAME_MS 20
#define RTCP_MS 200
#define DRAIN_MS 200
#define PLAYOUT_FRAMES 5 /* 100 ms between a sender's first frame and its place in the mix */
#define MIX_FRAMES 64    /* frames the mix holds ahead of the play-out point */
#define PKT_CAP (MS_RTP_HEADER + MS_AUDIO_MAX_PACKET + MS_GROUP_MEDIA_OVERHEAD)
#define RTCP_BYE 203

typedef struct slot {
    bool heard, bye, anchored;
    ms_opus_dec *dec;
    ms_wav_writer *wav;
    uint32_t first_ts;
    int64_t pos0;
} slot;

typedef struct group_call {
    ms_group_call_config cfg;
    ms_call_keys *keys;
    char own_uri[256];
    char media_ip[64];
    ms_group_key key;
    ms_srtp_suite suite;
    ms_group_media *gm;
    uint32_t other_gmk_id;
    ms_group_media *gm_other; /* the other held key during a rekey hand-over; may be NULL */
    char *roster;             /* the stored roster, one URI per line */
    slot *slots;
    size_t n_slots;
    ms_sip *sip;
    ms_sip_call *call;
    ms_sip_udp *udp;
    char remote_ip[64];
    uint16_t remote_port;
    ms_wav play;
    bool have_play;
    size_t play_pos;
    ms_opus_enc *enc;
    ms_wav_writer *mix_wav;
    ms_soundcard *card;
    int32_t (*mix)[MS_AUDIO_FRAME];
    int64_t tick, max_pos;
    uint32_t ssrc, ts, packets, octets;
    uint16_t seq;
    bool joined, sending, play_done, bye_sent, hanging_up, waiting_registration, registered;
    uint32_t heard;
    ms_sip_timer *tick_timer, *rtcp_timer, *limit_timer, *ring_timer, *drain_timer,
        *stop_timer, *poll_timer;
    ms_group_call_event ev;
    ms_err result;
    char result_detail[300];
} group_call;

static void emit(group_call *g, ms_group_call_event_type type, const char *peer)
{
    g->ev.type = type;
    snprintf(g->ev.peer, sizeof g->ev.peer, "%s", peer ? peer : "");
    if (g->cfg.event != NULL)
        g->cfg.event(g->cfg.event_arg, &g->ev);
}

static void stop_now(void *arg)
{
    group_call *g = arg;
    ms_sip_timer_cancel(g->stop_timer);
    g->stop_timer = NULL;
    ms_sip_stop(g->sip);
}

static void stop_soon(group_call *g)
{
    if (g->stop_timer == NULL &&
        ms_sip_timer_start(g->sip, &g->stop_timer, DRAIN_MS, stop_now, g) != MS_OK)
        ms_sip_stop(g->sip);
}

static void hangup_now(void *arg)
{
    group_call *g = arg;
    ms_sip_timer_cancel(g->drain_timer);
    g->drain_timer = NULL;
    if (!g->hanging_up && g->call != NULL) {
        g->hanging_up = true;
        ms_sip_hangup(g->call);
    }
}

/* ---- sending --------------------------------------------------------------------------- */

static void send_packet(group_call *g, uint8_t *pkt, size_t len)
{
    if (ms_sip_udp_send(g->udp, g->remote_ip, g->remote_port, pkt, len) == MS_OK)
        g->ev.packets_sent++;
}

static void send_rtcp(group_call *g, bool bye)
{
    uint8_t pkt[128];
    size_t len;
    if (bye) {
        pkt[0] = 0x81; /* V=2, one SSRC */
        pkt[1] = RTCP_BYE;
        pkt[2] = 0;
        pkt[3] = 1;
        pkt[4] = (uint8_t)(g->ssrc >> 24);
        pkt[5] = (uint8_t)(g->ssrc >> 16);
        pkt[6] = (uint8_t)(g->ssrc >> 8);
        pkt[7] = (uint8_t)g->ssrc;
        len = 8;
    } else {
        len = ms_rtcp_write_sr(pkt, sizeof pkt, g->ssrc, ms_ntp_now(), g->ts, g->packets,
                               g->octets);
    }
    if (len == 0 || ms_group_media_protect_rtcp(g->gm, pkt, &len, sizeof pkt) != MS_OK)
        return;
    send_packet(g, pkt, len);
}

static void send_frame(group_call *g, const int16_t *pcm)
{
    uint8_t pkt[PKT_CAP];
    size_t opus_len = 0;
    if (ms_opus_encode(g->enc, pkt + MS_RTP_HEADER, MS_AUDIO_MAX_PACKET, &opus_len, pcm) !=
        MS_OK)
        return;
    ms_rtp_header h = {.payload_type = OPUS_PT,
                       .marker = g->packets == 0,
                       .seq = g->seq++,
                       .timestamp = g->ts,
                       .ssrc = g->ssrc};
    g->ts += MS_AUDIO_FRAME;
    ms_rtp_write_header(pkt, &h);
    size_t len = MS_RTP_HEADER + opus_len;
    if (ms_group_media_protect(g->gm, pkt, &len, sizeof pkt) != MS_OK)
        return;
    g->packets++;
    g->octets += (uint32_t)opus_len;
    send_packet(g, pkt, len);
}

/* ---- the mix --------------------------------------------------------------------------- */

static void flush_mix_frame(group_call *g)
{
    int32_t *acc = g->mix[g->tick % MIX_FRAMES];
    int16_t pcm[MS_AUDIO_FRAME];
    for (size_t i = 0; i < MS_AUDIO_FRAME; i++) {
        int32_t v = acc[i];
        pcm[i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
        acc[i] = 0;
    }
    if (g->mix_wav != NULL)
        (void)ms_wav_append(g->mix_wav, pcm, MS_AUDIO_FRAME);
    if (g->card != NULL)
        (void)ms_soundcard_write(g->card, pcm);
    g->tick++;
}

static void mix_in(group_call *g, slot *s, uint32_t ts, const int16_t *pcm)
{
    if (!s->anchored) {
        s->anchored = true;
        s->first_ts = ts;
        s->pos0 = g->tick + PLAYOUT_FRAMES;
    }
    int64_t pos = s->pos0 + (int32_t)(ts - s->first_ts) / MS_AUDIO_FRAME;
    if (pos < g->tick || pos >= g->tick + MIX_FRAMES)
        return; /* too late for the play-out point, or absurdly early */
    int32_t *acc = g->mix[pos % MIX_FRAMES];
    for (size_t i = 0; i < MS_AUDIO_FRAME; i++)
        acc[i] += pcm[i];
    if (pos > g->max_pos)
        g->max_pos = pos;
}

/* ---- the tick --------------------------------------------------------------------------- */

static bool everyone_done(const group_call *g)
{
    if (!g->play_done || g->heard < g->cfg.start_after || g->heard == 0)
        return false;
    for (size_t i = 0; i < g->n_slots; i++)
        if (g->slots[i].heard && !g->slots[i].bye)
            return false;
    return true;
}

static void on_tick(void *arg)
{
    group_call *g = arg;
    ms_sip_timer_cancel(g->tick_timer);
    g->tick_timer = NULL;
    if (g->hanging_up)
        return;
    if (g->cfg.stop_flag != NULL && *g->cfg.stop_flag != 0) {
        hangup_now(g);
        return;
    }
    if (!g->sending && g->heard >= g->cfg.start_after) {
        g->sending = true;
        emit(g, MS_GROUP_EV_SENDING, g->own_uri);
    }
    int16_t pcm[MS_AUDIO_FRAME];
    if (g->sending && g->have_play && !g->play_done) {
        size_t n = g->play.n_frames - g->play_pos;
        if (n > MS_AUDIO_FRAME)
            n = MS_AUDIO_FRAME;
        memset(pcm, 0, sizeof pcm);
        memcpy(pcm, g->play.samples + g->play_pos, n * sizeof(int16_t));
        g->play_pos += n;
        send_frame(g, pcm);
        if (g->play_pos >= g->play.n_frames)
            g->play_done = true;
    } else if (g->card != NULL) {
        if (ms_soundcard_read(g->card, pcm) == MS_OK && g->sending)
            send_frame(g, pcm);
    }
    if (g->play_done && !g->bye_sent) {
        g->bye_sent = true;
        send_rtcp(g, true);
    }
    flush_mix_frame(g);
    if (everyone_done(g) && g->drain_timer == NULL)
        (void)ms_sip_timer_start(g->sip, &g->drain_timer, DRAIN_MS, hangup_now, g);
    (void)ms_sip_timer_start(g->sip, &g->tick_timer, FRAME_MS, on_tick, g);
}

static void on_rtcp_timer(void *arg)
{
    group_call *g = arg;
    ms_sip_timer_cancel(g->rtcp_timer);
    g->rtcp_timer = NULL;
    if (g->hanging_up)
        return;
    send_rtcp(g, false);
    (void)ms_sip_timer_start(g->sip, &g->rtcp_timer, RTCP_MS, on_rtcp_timer, g);
}

static void on_limit(void *arg)
{
    group_call *g = arg;
    ms_sip_timer_cancel(g->limit_timer);
    g->limit_timer = NULL;
    hangup_now(g);
}

/* Until the relay answers: a CANCEL when ringing lasts too long or we are told to stop. */
static void on_ring_timeout(void *arg)
{
    group_call *g = arg;
    ms_sip_timer_cancel(g->ring_timer);
    g->ring_timer = NULL;
    if (!g->joined)
        hangup_now(g);
}

static void on_ring_poll(void *arg)
{
    group_call *g = arg;
    ms_sip_timer_cancel(g->poll_timer);
    g->poll_timer = NULL;
    if (g->joined || g->hanging_up)
        return;
    if (g->cfg.stop_flag != NULL && *g->cfg.stop_flag != 0)
        hangup_now(g);
    else
        (void)ms_sip_timer_start(g->sip, &g->poll_timer, RTCP_MS, on_ring_poll, g);
}

/* ---- receiving --------------------------------------------------------------------------- */

static void on_media(void *arg, const uint8_t *data, size_t len, const char *src,
                     uint64_t arrival_us)
{
    group_call *g = arg;
    (void)src;
    (void)arrival_us;
    uint8_t pkt[PKT_CAP];
    if (len > sizeof pkt)
        return;
    memcpy(pkt, data, len);
    bool rtcp = false;
    size_t who = 0;
    ms_err err = ms_group_media_unprotect(g->gm, pkt, &len, &rtcp, &who);
    /* The MKI begins with the GMK-ID, so at most one of the two contexts knows it, and
     * one that does not refuses the packet before touching it: the other key's context
     * sees it as it came. */
    if (err == MS_ERR_SRTP_AUTH && g->gm_other != NULL &&
        (err = ms_group_media_unprotect(g->gm_other, pkt, &len, &rtcp, &who)) == MS_OK)
        g->ev.packets_other_key++;
    if (err == MS_ERR_SRTP_REPLAY) {
        g->ev.packets_replayed++;
        return;
    }
    if (err != MS_OK || who >= g->n_slots) {
        g->ev.packets_auth_failed++;
        return;
    }
    slot *s = &g->slots[who];
    const char *uri = ms_group_media_sender(g->gm, who);
    if (!s->heard) {
        s->heard = true;
        g->heard++;
        g->ev.members_heard = g->heard;
        emit(g, MS_GROUP_EV_HEARD, uri);
    }
    if (rtcp) {
        if (len >= 8 && pkt[1] == RTCP_BYE && !s->bye) {
            s->bye = true;
            emit(g, MS_GROUP_EV_BYE, uri);
        }
        return;
    }
    ms_rtp_header h;
    size_t off, plen;
    if (ms_rtp_parse(&h, &off, &plen, pkt, len) != MS_OK || h.payload_type != OPUS_PT)
        return;
    g->ev.packets_received++;
    int16_t pcm[MS_AUDIO_FRAME];
    if (ms_opus_decode(s->dec, pcm, pkt + off, plen) != MS_OK)
        return;
    g->ev.frames_decoded++;
    if (s->wav != NULL)
        (void)ms_wav_append(s->wav, pcm, MS_AUDIO_FRAME);
    mix_in(g, s, h.timestamp, pcm);
}

/* ---- SIP ----------------------------------------------------------------------------------- */

static int on_incoming(void *arg, ms_sip_call *call, const char *from_uri, const char *to_uri,
                       const char *request_uri, const char *sdp, size_t sdp_len,
                       const uint8_t *raw, size_t raw_len, char *answer, size_t answer_cap,
                       char *warning, size_t warning_cap)
{
    (void)arg, (void)call, (void)from_uri, (void)to_uri, (void)request_uri, (void)sdp;
    (void)sdp_len, (void)raw, (void)raw_len, (void)answer, (void)answer_cap;
    snprintf(warning, warning_cap, "busy in a group call");
    return 486;
}

static void on_established(void *arg, ms_sip_call *call, const char *remote_sdp, size_t len)
{
    group_call *g = arg;
    if (call != g->call)
        return;
    ms_sdp_audio ans;
    char detail[200] = "";
    if (ms_sdp_parse(&ans, remote_sdp, len, detail, sizeof detail) != MS_OK ||
        strcmp(ans.proto, "RTP/SAVP") != 0 || ans.port == 0) {
        g->result = MS_ERR_NOT_SECURE;
        snprintf(g->result_detail, sizeof g->result_detail,
                 "the relay's answer offers no SRTP stream (%s)", detail[0] ? detail : ans.proto);
        hangup_now(g);
        return;
    }
    snprintf(g->remote_ip, sizeof g->remote_ip, "%s", ans.addr);
    g->remote_port = ans.port;
    g->joined = true;
    ms_sip_timer_cancel(g->ring_timer);
    g->ring_timer = NULL;
    char where[96];
    snprintf(where, sizeof where, "%s:%u", ans.addr, (unsigned)ans.port);
    emit(g, MS_GROUP_EV_JOINED, where);
    uint32_t limit = g->cfg.max_seconds ? g->cfg.max_seconds : 3600;
    (void)ms_sip_timer_start(g->sip, &g->limit_timer, (uint64_t)limit * 1000u, on_limit, g);
    on_rtcp_timer(g);
    on_tick(g);
}

static void on_closed(void *arg, ms_sip_call *call, int status, const char *reason,
                      const char *warning)
{
    group_call *g = arg;
    if (call != g->call)
        return;
    g->call = NULL;
    g->hanging_up = true;
    if (g->joined) {
        emit(g, MS_GROUP_EV_LEFT, g->cfg.group_uri);
    } else {
        g->ev.sip_status = status;
        snprintf(g->ev.warning, sizeof g->ev.warning, "%s", warning ? warning : "");
        emit(g, MS_GROUP_EV_REJECTED, g->cfg.group_uri);
        if (g->result == MS_OK) {
            bool signalling = status <= 0 || status == 401 || status == 407 ||
                              ms_sip_call_failed_locally(call);
            g->result = signalling ? MS_ERR_SIP : MS_ERR_CALL_REFUSED;
            snprintf(g->result_detail, sizeof g->result_detail, "%d %s%s%s%s", status,
                     reason ? reason : "", warning && warning[0] ? " (Warning: " : "",
                     warning ? warning : "", warning && warning[0] ? ")" : "");
        }
    }
    stop_soon(g);
}

static void on_registered(void *arg, int status, const char *reason)
{
    group_call *g = arg;
    g->ev.sip_status = status;
    snprintf(g->ev.warning, sizeof g->ev.warning, "%s", reason ? reason : "");
    g->registered = status == 200;
    emit(g, MS_GROUP_EV_REGISTERED, g->own_uri);
    if (g->waiting_registration) {
        g->waiting_registration = false;
        ms_sip_stop(g->sip);
    }
}

/* ---- set-up and tear-down ------------------------------------------------------------------ */

static void split_ip(const char *addr, char *ip, size_t cap)
{
    const char *colon = strrchr(addr, ':');
    size_t n = colon != NULL ? (size_t)(colon - addr) : strlen(addr);
    if (n >= cap)
        n = cap - 1;
    memcpy(ip, addr, n);
    ip[n] = 0;
}

/* DIR/<user part of uri>.wav, with anything but [A-Za-z0-9._+-] made '_'. */
static void sender_wav_path(char *out, size_t cap, const char *dir, const char *uri)
{
    const char *u = strchr(uri, ':');
    u = u ? u + 1 : uri;
    size_t n = strcspn(u, "@;>");
    char name[128];
    if (n >= sizeof name)
        n = sizeof name - 1;
    for (size_t i = 0; i < n; i++) {
        char ch = u[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '+' || ch == '-';
        name[i] = ok && !(i == 0 && ch == '.') ? ch : '_';
    }
    name[n] = 0;
    snprintf(out, cap, "%s/%s.wav", dir, n ? name : "_");
}

static void group_call_free(group_call *g)
{
    ms_sip_timer_cancel(g->tick_timer);
    ms_sip_timer_cancel(g->rtcp_timer);
    ms_sip_timer_cancel(g->limit_timer);
    ms_sip_timer_cancel(g->ring_timer);
    ms_sip_timer_cancel(g->drain_timer);
    ms_sip_timer_cancel(g->stop_timer);
    ms_sip_timer_cancel(g->poll_timer);
    ms_sip_udp_close(g->udp);
    ms_sip_free(g->sip);
    for (size_t i = 0; i < g->n_slots; i++) {
        ms_opus_dec_free(g->slots[i].dec);
        if (g->slots[i].wav != NULL)
            (void)ms_wav_close(g->slots[i].wav, true);
    }
    free(g->slots);
    if (g->mix_wav != NULL)
        (void)ms_wav_close(g->mix_wav, true);
    ms_soundcard_close(g->card);
    free(g->mix);
    ms_opus_enc_free(g->enc);
    if (g->have_play)
        ms_wav_free(&g->play);
    ms_group_media_free(g->gm);
    ms_group_media_free(g->gm_other);
    free(g->roster);
    ms_group_key_wipe(&g->key);
    ms_call_keys_free(g->keys);
    ms_wipe(g, sizeof *g);
    free(g);
}

/* The other stored key of the group (previous or next), if one is held and not expired:
 * members who joined the call before (or after) the rekey still send under it. */
static ms_err open_other_key(group_call *g, const ms_keystore *ks,
                             const ms_group_call_config *cfg, char *detail, size_t cap)
{
    uint32_t ids[4];
    size_t n = 0;
    ms_err err = ms_group_key_ids(ids, 4, &n, ks, cfg->group_uri, detail, cap);
    if (err != MS_OK)
        return err;
    const uint64_t now = ms_ntp_now();
    ms_group_key other;
    memset(&other, 0, sizeof other);
    bool found = false;
    for (size_t i = 0; i < n && err == MS_OK; i++) {
        if (ids[i] == g->key.gmk_id)
            continue;
        ms_group_key k;
        if ((err = ms_group_key_load(&k, ks, cfg->group_uri, ids[i], 0, detail, cap)) != MS_OK)
            break;
        if ((k.expiry == 0 || k.expiry > now) && (!found || k.activation > other.activation)) {
            if (found)
                ms_group_key_wipe(&other);
            other = k;
            found = true;
        } else {
            ms_group_key_wipe(&k);
        }
    }
    if (err == MS_OK && found) {
        g->other_gmk_id = other.gmk_id;
        err = ms_group_media_new(&g->gm_other, &other, g->own_uri, g->suite, cfg->roc_every,
                                 detail, cap);
    }
    if (found)
        ms_group_key_wipe(&other);
    return err;
}

/* cfg: the caller's, with the secrets (g->cfg keeps none). */
static ms_err setup(group_call *g, const ms_group_call_config *cfg, char *detail, size_t cap)
{
    ms_err err;
    g->suite = MS_SRTP_AEAD_AES_128_GCM;
    if (cfg->suite != NULL && ms_srtp_suite_parse(&g->suite, cfg->suite) != MS_OK)
        return ms_detail_fail(MS_ERR_ARG, detail, cap, "unknown SRTP suite %s", cfg->suite);
    ms_call_keys_options ko = {.mode = MS_CALL_KEYS_LIVE, .profile = MS_MIKEY_PROFILE_PCK,
                               .suite = g->suite};
    if ((err = ms_call_keys_open(&g->keys, cfg->keystore_dir, cfg->passphrase,
                                 cfg->passphrase_len, &ko, detail, cap)) != MS_OK)
        return err;
    snprintf(g->own_uri, sizeof g->own_uri, "%s",
             cfg->own_uri ? cfg->own_uri : ms_call_keys_own_uri(g->keys));
    const ms_keystore *ks = ms_call_keys_keystore(g->keys);
    if ((err = ms_group_key_load(&g->key, ks, cfg->group_uri, cfg->gmk_id, 0, detail, cap)) !=
        MS_OK)
        return err;
    if ((err = ms_group_media_new(&g->gm, &g->key, g->own_uri, g->suite, cfg->roc_every,
                                  detail, cap)) != MS_OK)
        return err;
    if ((err = open_other_key(g, ks, cfg, detail, cap)) != MS_OK)
        return err;
    size_t n_roster = 0;
    if ((err = ms_group_roster_load(&g->roster, &n_roster, ks, cfg->group_uri, detail, cap)) !=
        MS_OK)
        return err;
    g->slots = calloc(n_roster ? n_roster : 1, sizeof *g->slots);
    if (g->slots == NULL)
        return MS_ERR_NOMEM;
    for (char *uri = g->roster, *eol; *uri != 0; uri = eol + 1) {
        if ((eol = strchr(uri, '\n')) == NULL)
            break;
        *eol = 0;
        if (strcmp(uri, g->own_uri) == 0)
            continue;
        size_t idx, other_idx;
        if ((err = ms_group_media_add_sender(g->gm, uri, &idx)) != MS_OK)
            return ms_detail_fail(err, detail, cap, "member %s: %s", uri,
                                  err == MS_ERR_EXISTS ? "named twice" : ms_strerror(err));
        /* same roster, same order: a sender has the same slot under both keys */
        if (g->gm_other != NULL &&
            ((err = ms_group_media_add_sender(g->gm_other, uri, &other_idx)) != MS_OK ||
             other_idx != idx))
            return ms_detail_fail(err != MS_OK ? err : MS_ERR_INTERNAL, detail, cap,
                                  "member %s under the other key", uri);
        slot *s = &g->slots[idx];
        g->n_slots = idx + 1;
        if ((err = ms_opus_dec_new(&s->dec, 1)) != MS_OK)
            return ms_detail_fail(err, detail, cap, "cannot start the Opus decoder");
        if (cfg->record_dir != NULL) {
            char path[1200];
            sender_wav_path(path, sizeof path, cfg->record_dir, uri);
            if ((err = ms_wav_create(&s->wav, path, MS_AUDIO_RATE, 1, detail, cap)) != MS_OK)
                return err;
        }
    }
    if (g->n_slots == 0)
        return ms_detail_fail(MS_ERR_ARG, detail, cap, "the roster names no other member");
    if (cfg->play_wav != NULL) {
        if ((err = ms_wav_read(&g->play, cfg->play_wav, detail, cap)) != MS_OK)
            return err;
        g->have_play = true;
        if (g->play.rate != MS_AUDIO_RATE || g->play.channels != 1)
            return ms_detail_fail(MS_ERR_MEDIA, detail, cap,
                                  "%s: calls take 48000 Hz mono 16-bit WAV", cfg->play_wav);
    } else if (cfg->record_wav != NULL || cfg->record_dir != NULL) {
        g->play_done = true; /* a listener: nothing of ours to send */
    }
    g->mix = calloc(MIX_FRAMES, sizeof *g->mix);
    if (g->mix == NULL)
        return MS_ERR_NOMEM;
    if (cfg->record_wav != NULL &&
        (err = ms_wav_create(&g->mix_wav, cfg->record_wav, MS_AUDIO_RATE, 1, detail, cap)) !=
            MS_OK)
        return err;
    if (cfg->play_wav == NULL && cfg->record_wav == NULL && cfg->record_dir == NULL &&
        (err = ms_soundcard_open(&g->card, cfg->sound_device, detail, cap)) != MS_OK)
        return err;
    if ((err = ms_opus_enc_new(&g->enc, 1)) != MS_OK ||
        (err = ms_rtp_random_start(&g->ssrc, &g->seq, &g->ts)) != MS_OK)
        return ms_detail_fail(err, detail, cap, "cannot start the Opus encoder");
    ms_sip_config sc = {.local_uri = g->own_uri,
                        .listen = cfg->listen,
                        .transport = cfg->transport,
                        .proxy = cfg->proxy,
                        .do_register = cfg->do_register,
                        .auth_user = cfg->auth_user,
                        .password = cfg->password,
                        .tls_ca_file = cfg->tls_ca_file};
    ms_sip_handlers h = {.incoming = on_incoming,
                         .established = on_established,
                         .closed = on_closed,
                         .registered = on_registered};
    if ((err = ms_sip_new(&g->sip, &sc, &h, g, detail, cap)) != MS_OK)
        return err;
    char local[96];
    if ((err = ms_sip_local_addr(g->sip, local, sizeof local)) != MS_OK)
        return err;
    split_ip(local, g->media_ip, sizeof g->media_ip);
    if ((err = ms_sip_udp_open(g->sip, &g->udp, g->media_ip, on_media, g)) != MS_OK)
        return ms_detail_fail(err, detail, cap, "cannot open a media socket on %s",
                              g->media_ip);
    snprintf(g->ev.group, sizeof g->ev.group, "%s", cfg->group_uri);
    snprintf(g->ev.suite, sizeof g->ev.suite, "%s", ms_srtp_suite_name(g->suite));
    g->ev.gmk_id = g->key.gmk_id;
    g->ev.other_gmk_id = g->gm_other != NULL ? g->other_gmk_id : 0;
    g->ev.ssrc = g->ssrc;
    return MS_OK;
}

ms_err ms_group_call_run(const ms_group_call_config *cfg, char *detail, size_t cap)
{
    if (cfg == NULL || cfg->keystore_dir == NULL || cfg->passphrase == NULL ||
        cfg->group_uri == NULL)
        return MS_ERR_ARG;
    group_call *g = calloc(1, sizeof *g);
    if (g == NULL)
        return MS_ERR_NOMEM;
    g->cfg = *cfg;
    g->cfg.password = NULL; /* the SIP agent keeps its own copy */
    g->cfg.passphrase = NULL;
    g->cfg.event = cfg->event;
    ms_err err = setup(g, cfg, detail, cap);
    if (err == MS_OK && cfg->do_register) {
        g->waiting_registration = true;
        err = ms_sip_run(g->sip);
        if (err == MS_OK && !g->registered)
            err = ms_detail_fail(MS_ERR_SIP, detail, cap, "registration of %s failed",
                                 g->own_uri);
    }
    if (err == MS_OK) {
        char sdp[MS_SDP_MAX];
        ms_sdp_audio offer = {.port = ms_sip_udp_port(g->udp), .payload_type = OPUS_PT};
        snprintf(offer.addr, sizeof offer.addr, "%s", g->media_ip);
        snprintf(offer.proto, sizeof offer.proto, "RTP/SAVP");
        snprintf(offer.codec, sizeof offer.codec, "opus/48000/2");
        snprintf(offer.crypto_suite, sizeof offer.crypto_suite, "%s",
                 ms_srtp_suite_name(g->suite));
        snprintf(offer.direction, sizeof offer.direction, "sendrecv");
        err = ms_sdp_format(sdp, sizeof sdp, &offer, (uint64_t)g->ssrc, NULL);
        if (err == MS_OK)
            err = ms_sip_dial(g->sip, &g->call, cfg->group_uri, sdp);
        if (err != MS_OK) {
            ms_detail_set(detail, cap, "cannot send the INVITE to %s", cfg->group_uri);
        } else {
            uint32_t ring = cfg->ring_timeout_s ? cfg->ring_timeout_s : 30;
            (void)ms_sip_timer_start(g->sip, &g->ring_timer, (uint64_t)ring * 1000u,
                                     on_ring_timeout, g);
            if (cfg->stop_flag != NULL)
                on_ring_poll(g);
            err = ms_sip_run(g->sip);
            /* what is still in the mix (others' last frames) goes out too */
            while (g->tick <= g->max_pos)
                flush_mix_frame(g);
            if (err == MS_OK && g->result != MS_OK) {
                err = g->result;
                ms_detail_set(detail, cap, "%s", g->result_detail);
            }
        }
    }
    group_call_free(g);
    return err;
}
