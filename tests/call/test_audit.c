/*
 * The auditor on a synthetic capture built in memory with the capture writer: three users
 * of one KMS (A, B, C) with real keystores; calls A->B (GCM) and B->C (B's own call,
 * AES-CM, opened through SAKKE-to-self) and A->C (not B's); SIP over a proxy (so every
 * INVITE and 200 OK is on the wire twice), SRTP of Opus frames both ways, RTCP, a relayed
 * duplicate. B's RSK for the period opens both of B's calls, both directions, bit-exact
 * against a local Opus decode; A->C is listed as not openable; the RSK of the next period
 * or of another user opens none; a flipped byte counts as failed authentication; a
 * voicemail file (INVITE then the caller's datagrams, no answer) opens one direction.
 * tests/call/srtp_ref.py (python3-cryptography) decrypts the same packets to the same
 * payloads as the auditor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "call/audio.h"
#include "call/audit.h"
#include "call/keys.h"
#include "call/rtp.h"
#include "call/srtp.h"
#include "capture/capture.h"
#include "client/fixture.h"
#include "testutil.h"

#define USER_A "sip:alice@example.org"
#define USER_B "sip:bob@example.org"
#define USER_C "sip:carol@example.org"
#define USER_D "sip:dave@example.org"
#define PROXY "10.0.0.100:5060"
#define FRAMES 50 /* per direction of each test call: one second */
#define MAX_FRAMES 500

static fx F;
static uint64_t fixed_ntp;

static uint64_t test_clock(void *ctx)
{
    (void)ctx;
    return fixed_ntp;
}

/* ---- keys -------------------------------------------------------------------------------- */

/* A keystore for `uri` under F.root/<name> holding its keys of period p0. */
static void make_keystore(const char *uri, const char *name)
{
    snprintf(F.dev.user_uri, sizeof F.dev.user_uri, "%s", uri);
    snprintf(F.dir, sizeof F.dir, "%s/%s", F.root, name);
    fx_create(&F);
    ms_keystore *ks = fx_open(&F);
    ms_key_package pkg;
    fx_package(&F, &pkg, F.p0, F.now);
    fx_write(&F, &pkg, &F.dev);
    char detail[256];
    ms_err e = fx_import(&F, ks, F.now, detail, sizeof detail);
    if (e != MS_OK) {
        fprintf(stderr, "import %s: %s\n", uri, detail);
        fx_die("import", e);
    }
    ms_keystore_close(ks);
    ms_wipe(&pkg, sizeof pkg);
}

static ms_call_keys *open_device(const char *name, ms_srtp_suite suite)
{
    ms_call_keys_options o;
    memset(&o, 0, sizeof o);
    o.mode = MS_CALL_KEYS_LIVE;
    o.profile = MS_MIKEY_PROFILE_PCK;
    o.suite = suite;
    o.clock = test_clock;
    char dir[300], detail[256] = "";
    snprintf(dir, sizeof dir, "%s/%s", F.root, name);
    ms_call_keys *k = NULL;
    ms_err e = ms_call_keys_open(&k, dir, FX_PASS, strlen(FX_PASS), &o, detail, sizeof detail);
    if (e != MS_OK) {
        fprintf(stderr, "keys %s: %s\n", name, detail);
        fx_die("ms_call_keys_open", e);
    }
    return k;
}

static ms_mikey_kms_info kms_info(void)
{
    ms_mikey_kms_info info;
    memset(&info, 0, sizeof info);
    info.uri = F.cert.kms_uri;
    info.scheme = F.scheme;
    info.Z = F.cert.Z;
    info.kpak = F.cert.kpak;
    return info;
}

/* The auditor's keys: `uri`'s RSK of `period`, as kms audit extract releases it. */
static ms_err open_auditor(ms_call_keys **out, const char *uri, uint64_t period)
{
    ms_kmsif_keyset ks;
    fx_keyset(&F, &ks, uri, period);
    ms_call_keys_options o;
    memset(&o, 0, sizeof o);
    o.mode = MS_CALL_KEYS_AUDIT;
    o.profile = MS_MIKEY_PROFILE_PCK;
    ms_mikey_kms_info info = kms_info();
    char detail[256] = "";
    ms_err e = ms_call_keys_open_audit(out, uri, period, ks.rsk, &info, &o, detail,
                                       sizeof detail);
    if (e != MS_OK)
        fprintf(stderr, "open_audit: %s\n", detail);
    ms_wipe(&ks, sizeof ks);
    return e;
}

/* ---- audio ------------------------------------------------------------------------------- */

typedef struct frames {
    size_t n;
    uint8_t data[MAX_FRAMES][MS_AUDIO_MAX_PACKET];
    size_t len[MAX_FRAMES];
} frames;

/* n Opus frames of a triangle tone (different per stream) with a little noise. */
static void make_frames(frames *fr, size_t n, unsigned hz)
{
    ms_opus_enc *enc = NULL;
    CHECK_ERR(ms_opus_enc_new(&enc, 1), MS_OK);
    int16_t pcm[MS_AUDIO_FRAME];
    uint32_t noise = 12345;
    fr->n = n;
    for (size_t f = 0; f < n; f++) {
        for (size_t i = 0; i < MS_AUDIO_FRAME; i++) {
            uint64_t n_sample = f * MS_AUDIO_FRAME + i;
            uint32_t phase = (uint32_t)((n_sample * hz * 65536) / MS_AUDIO_RATE) & 0xffff;
            int tri = phase < 0x8000 ? (int)phase - 0x4000 : 0xC000 - (int)phase;
            noise = noise * 1103515245u + 12345u;
            pcm[i] = (int16_t)(tri / 2 + (int)((noise >> 16) % 512) - 256);
        }
        CHECK_ERR(ms_opus_encode(enc, fr->data[f], sizeof fr->data[f], &fr->len[f], pcm),
                  MS_OK);
    }
    ms_opus_enc_free(enc);
}

/* The local decode the auditor's WAV must equal, frame by frame. */
static int16_t *local_decode(const frames *fr, size_t *n_samples)
{
    ms_opus_dec *dec = NULL;
    CHECK_ERR(ms_opus_dec_new(&dec, 1), MS_OK);
    int16_t *pcm = malloc(fr->n * MS_AUDIO_FRAME * sizeof *pcm);
    for (size_t f = 0; pcm != NULL && f < fr->n; f++)
        CHECK_ERR(ms_opus_decode(dec, pcm + f * MS_AUDIO_FRAME, fr->data[f], fr->len[f]),
                  MS_OK);
    ms_opus_dec_free(dec);
    *n_samples = fr->n * MS_AUDIO_FRAME;
    return pcm;
}

/* ---- SIP text ---------------------------------------------------------------------------- */

static void write_sip(ms_capture_writer *w, uint64_t t, const char *src, const char *dst,
                      const char *text)
{
    CHECK_ERR(ms_capture_write_tcp(w, t, src, dst, (const uint8_t *)text, strlen(text)), MS_OK);
}

static void invite_text(char *out, size_t cap, const char *from, const char *to,
                        const char *call_id, const char *via_extra, const char *sdp)
{
    snprintf(out, cap,
             "INVITE %s SIP/2.0\r\n"
             "%sVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK-%s\r\n"
             "Max-Forwards: 70\r\n"
             "From: <%s>;tag=f1\r\n"
             "To: \"Callee\" <%s>\r\n"
             "Call-ID: %s\r\n"
             "CSeq: 1 INVITE\r\n"
             "Contact: <sip:u@10.0.0.1:5060;transport=tcp>\r\n"
             "Content-Type: application/sdp\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             to, via_extra, call_id, from, to, call_id, strlen(sdp), sdp);
}

static void response_text(char *out, size_t cap, int status, const char *from, const char *to,
                          const char *call_id, const char *method, const char *sdp)
{
    snprintf(out, cap,
             "SIP/2.0 %d %s\r\n"
             "Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK-%s\r\n"
             "From: <%s>;tag=f1\r\n"
             "To: <%s>;tag=t1\r\n"
             "Call-ID: %s\r\n"
             "CSeq: %s\r\n"
             "%s"
             "Content-Length: %zu\r\n\r\n%s",
             status, status == 200 ? "OK" : "Other", call_id, from, to, call_id, method,
             sdp ? "Content-Type: application/sdp\r\n" : "", sdp ? strlen(sdp) : 0,
             sdp ? sdp : "");
}

static void bye_text(char *out, size_t cap, const char *from, const char *to,
                     const char *call_id)
{
    snprintf(out, cap,
             "BYE %s SIP/2.0\r\n"
             "Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK-bye\r\n"
             "From: <%s>;tag=f1\r\n"
             "To: <%s>;tag=t1\r\n"
             "i: %s\r\n"
             "CSeq: 2 BYE\r\n"
             "l: 0\r\n\r\n",
             to, from, to, call_id);
}

/* ---- a test call ------------------------------------------------------------------------- */

typedef struct test_call {
    const char *from, *to, *call_id;
    const char *caller_sig, *callee_sig;     /* SIP addresses */
    const char *caller_media, *callee_media; /* "IP:port" advertised */
    char offer[MS_SDP_MAX], answer[MS_SDP_MAX];
    ms_call_crypto crypto; /* the caller's (the same keys both ways) */
    ms_srtp *out[2];
    uint32_t ssrc[2];
    uint16_t seq[2];
    uint32_t ts[2];
    frames *fr[2];
    uint64_t invite_us;
} test_call;

static void split_ep(const char *s, char *ip, size_t cap, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    snprintf(ip, cap, "%.*s", (int)(colon - s), s);
    *port = (uint16_t)atoi(colon + 1);
}

/* Offer from the caller's keys, checked by the callee's (who makes the answer). */
static void setup_call(test_call *c, ms_call_keys *caller, ms_call_keys *callee)
{
    char ip[64], detail[256] = "";
    uint16_t port;
    split_ep(c->caller_media, ip, sizeof ip, &port);
    CHECK_ERR(ms_call_make_offer(caller, c->offer, sizeof c->offer, &c->crypto, c->to, ip, port,
                                 detail, sizeof detail),
              MS_OK);
    if (callee != NULL) {
        ms_call_crypto cc;
        ms_call_refusal why;
        CHECK_ERR(ms_call_check_offer(callee, &cc, NULL, &why, c->offer, strlen(c->offer),
                                      c->from),
                  MS_OK);
        CHECK_MEM(cc.srtp.master_key, c->crypto.srtp.master_key, c->crypto.srtp.key_len);
        split_ep(c->callee_media, ip, sizeof ip, &port);
        CHECK_ERR(ms_call_make_answer(c->answer, sizeof c->answer, &cc, ip, port), MS_OK);
        ms_call_crypto_wipe(&cc);
    }
    for (int d = 0; d < 2; d++) {
        CHECK_ERR(ms_srtp_new(&c->out[d], c->crypto.suite, &c->crypto.srtp, true), MS_OK);
        CHECK_ERR(ms_rtp_random_start(&c->ssrc[d], &c->seq[d], &c->ts[d]), MS_OK);
    }
}

static void signal_call(test_call *c, ms_capture_writer *w, uint64_t t, bool answered)
{
    static char msg[MS_SDP_MAX + 2048];
    c->invite_us = t;
    invite_text(msg, sizeof msg, c->from, c->to, c->call_id, "", c->offer);
    write_sip(w, t, c->caller_sig, PROXY, msg);
    /* the proxy's copy to the callee: one more Via, the same body */
    invite_text(msg, sizeof msg, c->from, c->to, c->call_id,
                "Via: SIP/2.0/TCP 10.0.0.100:5060;branch=z9hG4bK-proxy\r\n", c->offer);
    write_sip(w, t + 500, PROXY, c->callee_sig, msg);
    if (!answered)
        return;
    response_text(msg, sizeof msg, 200, c->from, c->to, c->call_id, "1 INVITE", c->answer);
    write_sip(w, t + 20000, c->callee_sig, PROXY, msg);
    write_sip(w, t + 20500, PROXY, c->caller_sig, msg);
}

static void end_call(test_call *c, ms_capture_writer *w, uint64_t t)
{
    static char msg[2048];
    bye_text(msg, sizeof msg, c->from, c->to, c->call_id);
    write_sip(w, t, c->caller_sig, PROXY, msg);
    write_sip(w, t + 300, PROXY, c->callee_sig, msg);
    response_text(msg, sizeof msg, 200, c->from, c->to, c->call_id, "2 BYE", NULL);
    write_sip(w, t + 600, c->callee_sig, PROXY, msg);
}

/* One SRTP packet of frame f in direction d; *len octets into pkt. */
static void protect_frame(test_call *c, int d, size_t f, uint8_t *pkt, size_t cap, size_t *len)
{
    ms_rtp_header h = {96, f == 0, c->seq[d], c->ts[d], c->ssrc[d]};
    ms_rtp_write_header(pkt, &h);
    memcpy(pkt + MS_RTP_HEADER, c->fr[d]->data[f], c->fr[d]->len[f]);
    *len = MS_RTP_HEADER + c->fr[d]->len[f];
    CHECK_ERR(ms_srtp_protect(c->out[d], pkt, len, cap), MS_OK);
    c->seq[d]++;
    c->ts[d] += MS_AUDIO_FRAME;
}

static void free_call(test_call *c)
{
    for (int d = 0; d < 2; d++)
        ms_srtp_free(c->out[d]);
    ms_call_crypto_wipe(&c->crypto);
}

/* ---- reading results --------------------------------------------------------------------- */

static char out_root[300];

static bool file_exists(const char *dir, const char *name)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return stat(p, &st) == 0;
}

/* WAV samples equal the local decode, exactly. */
static void check_wav(const char *dir, const char *name, const frames *fr)
{
    char p[700], why[256] = "";
    snprintf(p, sizeof p, "%s/%s", dir, name);
    ms_wav w;
    memset(&w, 0, sizeof w);
    CHECK_ERR(ms_wav_read(&w, p, why, sizeof why), MS_OK);
    size_t n = 0;
    int16_t *want = local_decode(fr, &n);
    CHECK(w.rate == MS_AUDIO_RATE && w.channels == 1);
    CHECK(w.n_frames == n);
    if (w.n_frames == n && want != NULL && w.samples != NULL)
        CHECK(memcmp(w.samples, want, n * sizeof *want) == 0);
    free(want);
    ms_wav_free(&w);
}

static char *read_text(const char *dir, const char *name)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (f == NULL)
        return NULL;
    char *buf = calloc(1, 1 << 20);
    if (buf != NULL)
        (void)!fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    return buf;
}

static ms_err run_audit(ms_call_keys *k, const char *const *caps, size_t n, const char *out,
                        ms_audit_report *rep, const ms_audit_options *opt)
{
    char detail[512] = "";
    ms_audit_options o;
    memset(&o, 0, sizeof o);
    if (opt != NULL)
        o = *opt;
    o.period_no = F.p0;
    ms_err e = ms_audit_decrypt(caps, n, k, out, &o, rep, detail, sizeof detail);
    if (e != MS_OK)
        fprintf(stderr, "audit: %s\n", detail);
    return e;
}

/* Decrypted payloads as the auditor hands them over (hex, in order) for calls 1 and 2, for
 * the comparison with srtp_ref.py. */
typedef struct payload_log {
    char *hex[2][2][FRAMES + 8];
    size_t n[2][2];
    size_t count;
} payload_log;

static void log_payload(void *arg, size_t call_index, ms_audit_dir dir, const ms_rtp_header *h,
                        const uint8_t *payload, size_t len)
{
    payload_log *l = arg;
    (void)h;
    l->count++;
    if (call_index < 1 || call_index > 2)
        return;
    size_t *n = &l->n[call_index - 1][dir];
    if (*n >= FRAMES + 8)
        return;
    char *x = malloc(2 * len + 1);
    for (size_t i = 0; x != NULL && i < len; i++)
        snprintf(x + 2 * i, 3, "%02x", payload[i]);
    if (x != NULL)
        x[2 * len] = '\0';
    l->hex[call_index - 1][dir][(*n)++] = x;
}

/* What the reference decryptor reads: packets (hex, one a line) per call and direction, and
 * each call's master key and salt in a 0600 file. */
static void ref_path(char *out, size_t cap, const char *what, int call, int dir)
{
    snprintf(out, cap, "%s/ref-%s-%d-%d.txt", F.root, what, call, dir);
}

static void ref_append_packet(int call, int dir, const uint8_t *pkt, size_t len)
{
    char p[400];
    ref_path(p, sizeof p, "packets", call, dir);
    FILE *f = fopen(p, "a");
    if (f == NULL)
        return;
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%02x", pkt[i]);
    fputc('\n', f);
    fclose(f);
}

static void ref_write_key(int call, const ms_srtp_keys *k)
{
    char p[400];
    ref_path(p, sizeof p, "key", call, 0);
    umask(077);
    FILE *f = fopen(p, "w");
    if (f == NULL)
        return;
    for (size_t i = 0; i < k->key_len; i++)
        fprintf(f, "%02x", k->master_key[i]);
    fputc(' ', f);
    for (size_t i = 0; i < k->salt_len; i++)
        fprintf(f, "%02x", k->master_salt[i]);
    fputc('\n', f);
    fclose(f);
}

/* ---- the scenario ------------------------------------------------------------------------ */

static frames fr_ab, fr_ba, fr_bc, fr_cb, fr_ac, fr_ca;
static test_call call_ab, call_bc, call_ac;
static char cap_main[400], cap_flip[400], cap_vm[400], cap_speed[400], cap_speed60[400];
static uint8_t flipped_pkt[2048];
static size_t flipped_len;

static void build_main_capture(ms_call_keys *ka, ms_call_keys *kb, ms_call_keys *kc)
{
    call_ab = (test_call){.from = USER_A, .to = USER_B, .call_id = "ab-1@10.0.0.1",
                          .caller_sig = "10.0.0.1:5060", .callee_sig = "10.0.0.2:5060",
                          .caller_media = "10.0.0.1:4000", .callee_media = "10.0.0.2:5000"};
    call_bc = (test_call){.from = USER_B, .to = USER_C, .call_id = "bc-2@10.0.0.2",
                          .caller_sig = "10.0.0.2:5060", .callee_sig = "10.0.0.3:5060",
                          .caller_media = "10.0.0.2:5002", .callee_media = "10.0.0.3:6000"};
    call_ac = (test_call){.from = USER_A, .to = USER_C, .call_id = "ac-3@10.0.0.1",
                          .caller_sig = "10.0.0.1:5060", .callee_sig = "10.0.0.3:5060",
                          .caller_media = "10.0.0.1:4002", .callee_media = "10.0.0.3:6002"};
    setup_call(&call_ab, ka, kb);
    setup_call(&call_bc, kb, kc);
    setup_call(&call_ac, ka, kc);
    CHECK(call_ab.crypto.suite == MS_SRTP_AEAD_AES_128_GCM);
    CHECK(call_bc.crypto.suite == MS_SRTP_AES_CM_128_HMAC_SHA1_80);
    call_ab.fr[0] = &fr_ab, call_ab.fr[1] = &fr_ba;
    call_bc.fr[0] = &fr_bc, call_bc.fr[1] = &fr_cb;
    call_ac.fr[0] = &fr_ac, call_ac.fr[1] = &fr_ca;
    ref_write_key(0, &call_ab.crypto.srtp);
    ref_write_key(1, &call_bc.crypto.srtp);

    ms_capture_writer *w = NULL, *wf = NULL;
    char detail[256];
    CHECK_ERR(ms_capture_create(&w, cap_main, detail, sizeof detail), MS_OK);
    CHECK_ERR(ms_capture_create(&wf, cap_flip, detail, sizeof detail), MS_OK);
    uint64_t t0 = ((F.now - MS_NTP_UNIX_OFFSET) * 1000000u);
    test_call *calls[3] = {&call_ab, &call_bc, &call_ac};
    for (int i = 0; i < 3; i++)
        signal_call(calls[i], w, t0 + (uint64_t)i * 100000u, true);
    signal_call(&call_ab, wf, t0, true);
    uint64_t t = t0 + 400000u;
    uint8_t pkt[2048];
    size_t len;
    for (size_t f = 0; f < FRAMES; f++, t += 20000u) {
        for (int i = 0; i < 3; i++) {
            test_call *c = calls[i];
            for (int d = 0; d < 2; d++) {
                protect_frame(c, d, f, pkt, sizeof pkt, &len);
                const char *src = d == 0 ? c->caller_media : c->callee_media;
                const char *dst = d == 0 ? c->callee_media : c->caller_media;
                uint64_t tt = t + (uint64_t)(i * 2 + d) * 100u;
                CHECK_ERR(ms_capture_write_udp(w, tt, src, dst, pkt, len), MS_OK);
                if (i < 2)
                    ref_append_packet(i, d, pkt, len);
                if (i == 0 && f == 7 && d == 1) /* a relayed copy, seen twice */
                    CHECK_ERR(ms_capture_write_udp(w, tt + 50, src, dst, pkt, len), MS_OK);
                if (i == 0) {
                    if (f == 10 && d == 0) { /* the second file: one flipped byte */
                        memcpy(flipped_pkt, pkt, len);
                        flipped_len = len;
                        flipped_pkt[MS_RTP_HEADER + 3] ^= 0x40;
                        CHECK_ERR(ms_capture_write_udp(wf, tt, src, dst, flipped_pkt, len),
                                  MS_OK);
                    } else {
                        CHECK_ERR(ms_capture_write_udp(wf, tt, src, dst, pkt, len), MS_OK);
                    }
                }
            }
        }
    }
    /* one SRTCP sender report each way of A->B, to the RTCP port (RTP port + 1) */
    for (int d = 0; d < 2; d++) {
        size_t n = ms_rtcp_write_sr(pkt, sizeof pkt, call_ab.ssrc[d], 0, call_ab.ts[d], FRAMES,
                                    1000);
        CHECK_ERR(ms_srtp_protect_rtcp(call_ab.out[d], pkt, &n, sizeof pkt), MS_OK);
        CHECK_ERR(ms_capture_write_udp(w, t + (uint64_t)d, d ? "10.0.0.2:5001" : "10.0.0.1:4001",
                                       d ? "10.0.0.1:4001" : "10.0.0.2:5001", pkt, n),
                  MS_OK);
    }
    /* a datagram of nobody's call */
    CHECK_ERR(ms_capture_write_udp(w, t + 5, "192.0.2.1:9", "192.0.2.2:9",
                                   (const uint8_t *)"hello", 5),
              MS_OK);
    for (int i = 0; i < 3; i++)
        end_call(calls[i], w, t + 10000u + (uint64_t)i * 1000u);
    end_call(&call_ab, wf, t + 10000u);
    CHECK_ERR(ms_capture_close(w, true), MS_OK);
    CHECK_ERR(ms_capture_close(wf, true), MS_OK);
}

/* A voicemail file as the store writes it: the INVITE (TCP), then the caller's datagrams to
 * the store's port, here from behind a NAT (neither address is in the offer). */
static test_call call_vm;
static frames fr_vm;
static void build_voicemail(ms_call_keys *ka)
{
    call_vm = (test_call){.from = USER_A, .to = USER_B, .call_id = "vm-4@10.0.0.1",
                          .caller_sig = "10.0.0.1:5060", .callee_sig = "10.0.0.50:5060",
                          .caller_media = "10.0.0.1:4010", .callee_media = "10.0.0.50:7000"};
    setup_call(&call_vm, ka, NULL);
    call_vm.fr[0] = &fr_vm;
    call_vm.fr[1] = &fr_vm;
    ms_capture_writer *w = NULL;
    char detail[256], msg[MS_SDP_MAX + 2048];
    CHECK_ERR(ms_capture_create(&w, cap_vm, detail, sizeof detail), MS_OK);
    uint64_t t = (F.now - MS_NTP_UNIX_OFFSET) * 1000000u + 5000000u;
    invite_text(msg, sizeof msg, call_vm.from, call_vm.to, call_vm.call_id, "", call_vm.offer);
    write_sip(w, t, PROXY, "10.0.0.50:5060", msg);
    uint8_t pkt[2048];
    size_t len;
    for (size_t f = 0; f < fr_vm.n; f++) {
        protect_frame(&call_vm, 0, f, pkt, sizeof pkt, &len);
        CHECK_ERR(ms_capture_write_udp(w, t + 100000u + f * 20000u, "198.51.100.9:31000",
                                       "10.0.0.50:7000", pkt, len),
                  MS_OK);
    }
    CHECK_ERR(ms_capture_close(w, true), MS_OK);
}

/* A 10 s call A->B (500 frames each way) for the speed measurement. */
static frames fr_s1, fr_s2;
static char speed_offer[MS_SDP_MAX];
/* A call of n_frames each way (the 500 frames repeated past 10 s) into path. */
static void build_speed(ms_call_keys *ka, ms_call_keys *kb, const char *path, size_t n_frames)
{
    static test_call c;
    c = (test_call){.from = USER_A, .to = USER_B, .call_id = "speed@10.0.0.1",
                   .caller_sig = "10.0.0.1:5060", .callee_sig = "10.0.0.2:5060",
                   .caller_media = "10.0.0.1:4100", .callee_media = "10.0.0.2:5100"};
    setup_call(&c, ka, kb);
    memcpy(speed_offer, c.offer, sizeof speed_offer);
    c.fr[0] = &fr_s1;
    c.fr[1] = &fr_s2;
    ms_capture_writer *w = NULL;
    char detail[256];
    CHECK_ERR(ms_capture_create(&w, path, detail, sizeof detail), MS_OK);
    uint64_t t = (F.now - MS_NTP_UNIX_OFFSET) * 1000000u;
    signal_call(&c, w, t, true);
    uint8_t pkt[2048];
    size_t len;
    for (size_t f = 0; f < n_frames; f++) {
        for (int d = 0; d < 2; d++) {
            protect_frame(&c, d, f % MAX_FRAMES, pkt, sizeof pkt, &len);
            CHECK_ERR(ms_capture_write_udp(w, t + 100000u + f * 20000u + (uint64_t)d,
                                           d ? c.callee_media : c.caller_media,
                                           d ? c.caller_media : c.callee_media, pkt, len),
                      MS_OK);
        }
    }
    end_call(&c, w, t + 100000u + n_frames * 20000u);
    CHECK_ERR(ms_capture_close(w, true), MS_OK);
    free_call(&c);
}

/* CPU time of this process (all threads): wall time on a shared machine measures the
 * neighbours too; both are printed for the audits, which decode on two threads. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A B2BUA: the same I_MESSAGE under two Call-IDs (one per leg), the answer on the second
 * leg only; then a re-INVITE on the first leg with new keys (a call of its own). */
static char cap_b2b[400];
static frames fr_b2b;
static void build_b2bua(ms_call_keys *ka, ms_call_keys *kb)
{
    static test_call c, c2;
    c = (test_call){.from = USER_A, .to = USER_B, .call_id = "leg1@10.0.0.1",
                    .caller_sig = "10.0.0.1:5060", .callee_sig = "10.0.0.2:5060",
                    .caller_media = "10.0.0.1:4200", .callee_media = "10.0.0.2:5200"};
    setup_call(&c, ka, kb);
    c.fr[0] = c.fr[1] = &fr_b2b;
    ms_capture_writer *w = NULL;
    char detail[256], msg[MS_SDP_MAX + 2048];
    CHECK_ERR(ms_capture_create(&w, cap_b2b, detail, sizeof detail), MS_OK);
    uint64_t t = (F.now - MS_NTP_UNIX_OFFSET) * 1000000u + 9000000u;
    /* a From that is not UTF-8 and carries a terminal escape: the report still parses */
    const char *odd_from = "sip:al\xff\x1b[31mice\"@example.org";
    invite_text(msg, sizeof msg, odd_from, c.to, "leg1@10.0.0.1", "", c.offer);
    write_sip(w, t, c.caller_sig, PROXY, msg);
    invite_text(msg, sizeof msg, odd_from, c.to, "leg2@10.0.0.100", "", c.offer);
    write_sip(w, t + 100, PROXY, c.callee_sig, msg);
    response_text(msg, sizeof msg, 200, c.from, c.to, "leg2@10.0.0.100", "1 INVITE", c.answer);
    write_sip(w, t + 200, c.callee_sig, PROXY, msg);
    uint8_t pkt[2048];
    size_t len;
    for (size_t f = 0; f < fr_b2b.n; f++)
        for (int d = 0; d < 2; d++) {
            protect_frame(&c, d, f, pkt, sizeof pkt, &len);
            CHECK_ERR(ms_capture_write_udp(w, t + 1000 + f * 20000u + (uint64_t)d,
                                           d ? c.callee_media : c.caller_media,
                                           d ? c.caller_media : c.callee_media, pkt, len),
                      MS_OK);
        }
    /* re-INVITE with a fresh I_MESSAGE on leg 1, same media addresses */
    c2 = c;
    c2.out[0] = c2.out[1] = NULL;
    setup_call(&c2, ka, kb);
    c2.fr[0] = c2.fr[1] = &fr_b2b;
    t += 2000000u;
    invite_text(msg, sizeof msg, c.from, c.to, "leg1@10.0.0.1", "", c2.offer);
    write_sip(w, t, c.caller_sig, PROXY, msg);
    response_text(msg, sizeof msg, 200, c.from, c.to, "leg1@10.0.0.1", "2 INVITE", c2.answer);
    write_sip(w, t + 200, PROXY, c.caller_sig, msg);
    for (size_t f = 0; f < fr_b2b.n; f++) {
        protect_frame(&c2, 0, f, pkt, sizeof pkt, &len);
        CHECK_ERR(ms_capture_write_udp(w, t + 1000 + f * 20000u, c.caller_media,
                                       c.callee_media, pkt, len),
                  MS_OK);
    }
    CHECK_ERR(ms_capture_close(w, true), MS_OK);
    free_call(&c);
    free_call(&c2);
}

static void test_b2bua_and_rekey(void)
{
    ms_call_keys *kb = NULL;
    CHECK_ERR(open_auditor(&kb, USER_B, F.p0), MS_OK);
    char out[400];
    snprintf(out, sizeof out, "%s/audit-b2b", out_root);
    const char *caps[] = {cap_b2b};
    ms_audit_report rep;
    CHECK_ERR(run_audit(kb, caps, 1, out, &rep, NULL), MS_OK);
    CHECK(rep.n_calls == 2 && rep.opened == 2);
    if (rep.n_calls == 2) {
        const ms_audit_call *c1 = &rep.calls[0], *c2 = &rep.calls[1];
        CHECK(strcmp(c1->call_id, "leg1@10.0.0.1") == 0);
        CHECK(!c1->voicemail && strcmp(c1->callee_media, "10.0.0.2:5200") == 0);
        CHECK(c1->dir[0].decrypted == fr_b2b.n && c1->dir[1].decrypted == fr_b2b.n);
        CHECK(c1->dir[0].failed_auth == 0);
        /* after the re-INVITE the packets go to the new keys' call */
        CHECK(strcmp(c2->call_id, "leg1@10.0.0.1") == 0);
        CHECK(c2->dir[0].decrypted == fr_b2b.n && c2->dir[0].failed_auth == 0);
        CHECK(c1->key_id != c2->key_id);
        CHECK(!c1->caller_claim_matches && c1->callee_claim_matches);
    }
    char cmd0[800];
    snprintf(cmd0, sizeof cmd0,
             "python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); "
             "c=r[\"calls\"][0][\"caller\"]; "
             "assert c[\"claimed\"]==\"sip:al\\ufffd\\x1b[31mice\\\"@example.org\" "
             "and not c[\"claim_matches\"], c' %s/report.json",
             out);
    CHECK(system(cmd0) == 0);
    check_wav(out, "call-2-caller-to-callee.wav", &fr_b2b);
    ms_audit_report_free(&rep);

    /* a capture cut in the middle of a record: what was read is audited, and said */
    char cut[400], cmd[900];
    snprintf(cut, sizeof cut, "%s/cut.pcap", F.root);
    snprintf(cmd, sizeof cmd, "head -c -7 '%s' > '%s'", cap_b2b, cut);
    CHECK(system(cmd) == 0);
    const char *cut_caps[] = {cut};
    CHECK_ERR(run_audit(kb, cut_caps, 1, out, &rep, NULL), MS_OK);
    CHECK(rep.n_calls == 2 && rep.opened == 2);
    CHECK(rep.warnings[0] != '\0');
    fprintf(stderr, "cut capture: %s\n", rep.warnings);
    if (rep.n_calls == 2)
        CHECK(rep.calls[1].dir[0].decrypted == fr_b2b.n - 1);
    ms_audit_report_free(&rep);

    /* no such file */
    const char *none[] = {"/nonexistent/x.pcap"};
    char detail[300] = "";
    ms_audit_options o = {.period_no = F.p0};
    CHECK_ERR(ms_audit_decrypt(none, 1, kb, out, &o, &rep, detail, sizeof detail),
              MS_ERR_CAPTURE);
    CHECK(strstr(detail, "/nonexistent/x.pcap") != NULL);
    CHECK(rep.n_calls == 0 && rep.calls == NULL);
    CHECK_ERR(ms_audit_decrypt(none, 0, kb, out, &o, NULL, detail, sizeof detail), MS_ERR_ARG);
    CHECK_ERR(ms_audit_decrypt(caps, 1, kb, NULL, &o, NULL, detail, sizeof detail), MS_ERR_ARG);
    ms_call_keys_free(kb);
}

/* ---- checks ------------------------------------------------------------------------------ */

static ms_err count_group_open(void *ctx, ms_call_keys **keys, char *detail, size_t cap)
{
    (void)detail;
    (void)cap;
    ++*(int *)ctx;
    *keys = NULL;
    return MS_ERR_INTERNAL;
}

static void test_b_opens_its_calls(void)
{
    ms_call_keys *kb = NULL;
    CHECK_ERR(open_auditor(&kb, USER_B, F.p0), MS_OK);
    char out[400];
    snprintf(out, sizeof out, "%s/audit-b", out_root);
    const char *caps[] = {cap_main};
    ms_audit_report rep;
    /* a capture of calls only: the group keys are never opened */
    int group_opens = 0;
    ms_audit_options lazy = {.open_group_keys = count_group_open,
                             .open_group_keys_ctx = &group_opens};
    CHECK_ERR(run_audit(kb, caps, 1, out, &rep, &lazy), MS_OK);
    CHECK(group_opens == 0);
    CHECK(rep.n_groups == 0);
    CHECK(rep.n_calls == 3); /* each INVITE and 200 OK twice on the wire: counted once */
    CHECK(rep.opened == 2);
    CHECK(rep.unassigned == 1);
    CHECK(rep.ignored == 2 * FRAMES);
    struct stat cst;
    CHECK(rep.n_captures == 1 && stat(cap_main, &cst) == 0 &&
          rep.captures[0].bytes == (uint64_t)cst.st_size &&
          strcmp(rep.captures[0].path, cap_main) == 0);
    if (rep.n_captures == 1) { /* the digest is the file's, as sha256sum says */
        char cmd[600], want[65];
        for (int i = 0; i < 32; i++)
            snprintf(want + 2 * i, 3, "%02x", rep.captures[0].sha256[i]);
        snprintf(cmd, sizeof cmd, "sha256sum '%s' | grep -q '^%s '", cap_main, want);
        CHECK(system(cmd) == 0);
    }
    if (rep.n_calls == 3) {
        const ms_audit_call *ab = &rep.calls[0], *bc = &rep.calls[1], *ac = &rep.calls[2];
        CHECK(strcmp(ab->call_id, call_ab.call_id) == 0);
        CHECK(ab->openable && !ab->opened_as_caller);
        CHECK(strcmp(ab->caller_verified, USER_A) == 0);
        CHECK(strcmp(ab->callee_verified, USER_B) == 0);
        CHECK(ab->caller_claim_matches && ab->callee_claim_matches);
        CHECK(ab->period_no == F.p0);
        CHECK(ab->key_id == call_ab.crypto.key_id);
        CHECK(ab->suite == MS_SRTP_AEAD_AES_128_GCM);
        CHECK(!ab->voicemail);
        CHECK(strcmp(ab->caller_media, "10.0.0.1:4000") == 0);
        CHECK(strcmp(ab->callee_media, "10.0.0.2:5000") == 0);
        CHECK(ab->dir[0].decrypted == FRAMES && ab->dir[1].decrypted == FRAMES);
        CHECK(ab->dir[0].duplicates == 0 && ab->dir[1].duplicates == 1);
        CHECK(ab->dir[0].failed_auth == 0 && ab->dir[1].failed_auth == 0);
        CHECK(ab->dir[0].rtcp == 1 && ab->dir[1].rtcp == 1);
        CHECK(ab->dir[0].frames == FRAMES && ab->dir[0].concealed == 0);
        CHECK(strcmp(ab->dir[0].file, "call-1-caller-to-callee.wav") == 0);
        CHECK(strcmp(ab->dir[1].file, "call-1-callee-to-caller.wav") == 0);

        CHECK(bc->openable && bc->opened_as_caller); /* B's own call: SAKKE-to-self */
        CHECK(strcmp(bc->caller_verified, USER_B) == 0);
        CHECK(strcmp(bc->callee_verified, USER_C) == 0);
        CHECK(bc->suite == MS_SRTP_AES_CM_128_HMAC_SHA1_80);
        CHECK(bc->dir[0].decrypted == FRAMES && bc->dir[1].decrypted == FRAMES);
        CHECK(bc->key_id == call_bc.crypto.key_id);

        CHECK(!ac->openable);
        CHECK(ac->err != MS_OK);
        CHECK(ac->why[0] != '\0');
        CHECK(ac->dir[0].decrypted == 0 && ac->dir[0].file[0] == '\0');
        fprintf(stderr, "A->C not openable: %s (%s)\n", ms_errname(ac->err), ac->why);
    }
    check_wav(out, "call-1-caller-to-callee.wav", &fr_ab);
    check_wav(out, "call-1-callee-to-caller.wav", &fr_ba);
    check_wav(out, "call-2-caller-to-callee.wav", &fr_bc);
    check_wav(out, "call-2-callee-to-caller.wav", &fr_cb);
    CHECK(!file_exists(out, "call-3-caller-to-callee.wav"));
    CHECK(!file_exists(out, "call-3-callee-to-caller.wav"));

    char *json = read_text(out, "report.json");
    CHECK(json != NULL);
    if (json != NULL) {
        static const char *const fields[] = {
            "\"user\": \"" USER_B "\"", "\"call_id\": \"ab-1@10.0.0.1\"",
            "\"call_id\": \"ac-3@10.0.0.1\"", "\"not openable with this key\"", "\"error\": \"",
            "\"reason\": \"", "\"claimed\": \"" USER_A "\"", "\"verified\": \"" USER_A "\"",
            "\"opened_as\": \"caller\"", "\"opened_as\": \"callee\"", "\"pck_id\": \"",
            "\"suite\": \"AEAD_AES_128_GCM\"", "\"suite\": \"AES_CM_128_HMAC_SHA1_80\"",
            "\"packets_decrypted\": 100", "\"packets_failed_auth\": 0",
            "\"packets_duplicate\": 1", "\"packets_dropped\": 0", "\"duration_s\": 1.00",
            "\"files\": [\"call-1-caller-to-callee.wav\", \"call-1-callee-to-caller.wav\"]",
            "\"calls_found\": 3", "\"calls_opened\": 2", "\"mikey_time\": \"",
            "\"sha256\": \"",
        };
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
            bool found = strstr(json, fields[i]) != NULL;
            if (!found)
                fprintf(stderr, "report.json lacks %s\n", fields[i]);
            CHECK(found);
        }
        char period[64];
        snprintf(period, sizeof period, "\"period\": %llu", (unsigned long long)F.p0);
        CHECK(strstr(json, period) != NULL);
        /* and it is well-formed JSON, if python3 is there to say so */
        char cmd[800];
        snprintf(cmd, sizeof cmd,
                 "command -v python3 >/dev/null || exit 0; python3 -c 'import json,sys; "
                 "r=json.load(open(sys.argv[1])); assert len(r[\"calls\"])==3' %s/report.json",
                 out);
        int rc = system(cmd);
        CHECK(rc == 0);
        if (rc != 0)
            fprintf(stderr, "report.json:\n%s\n", json);
        free(json);
    }
    ms_audit_report_free(&rep);

    /* both captures at once: merged by time, the flipped file's copies are duplicates */
    ms_call_keys_free(kb);
}

static void test_flipped_byte(void)
{
    ms_call_keys *kb = NULL;
    CHECK_ERR(open_auditor(&kb, USER_B, F.p0), MS_OK);
    char out[400];
    snprintf(out, sizeof out, "%s/audit-flip", out_root);
    const char *caps[] = {cap_flip};
    ms_audit_report rep;
    CHECK_ERR(run_audit(kb, caps, 1, out, &rep, NULL), MS_OK);
    CHECK(rep.n_calls == 1 && rep.opened == 1);
    if (rep.n_calls == 1) {
        const ms_audit_stream *s = &rep.calls[0].dir[0];
        CHECK(s->failed_auth == 1);
        CHECK(s->decrypted == FRAMES - 1);
        CHECK(s->concealed == 1); /* the lost frame is concealed, never decoded */
        CHECK(s->frames == FRAMES);
        CHECK(rep.calls[0].dir[1].failed_auth == 0 && rep.calls[0].dir[1].decrypted == FRAMES);
    }
    /* the frames before the flipped one are as sent */
    char p[700], why[256];
    snprintf(p, sizeof p, "%s/call-1-caller-to-callee.wav", out);
    ms_wav w;
    memset(&w, 0, sizeof w);
    CHECK_ERR(ms_wav_read(&w, p, why, sizeof why), MS_OK);
    size_t n = 0;
    int16_t *want = local_decode(&fr_ab, &n);
    if (want != NULL && w.samples != NULL && w.n_frames == n)
        CHECK(memcmp(w.samples, want, 10 * MS_AUDIO_FRAME * sizeof *want) == 0);
    free(want);
    ms_wav_free(&w);
    ms_audit_report_free(&rep);

    /* both files together (merged by time): each good packet's second copy is a
     * duplicate; the flipped copy fails authentication and its genuine twin decrypts */
    const char *both[] = {cap_flip, cap_main}; /* at equal times the first file goes first */
    snprintf(out, sizeof out, "%s/audit-both", out_root);
    CHECK_ERR(run_audit(kb, both, 2, out, &rep, NULL), MS_OK);
    CHECK(rep.n_calls == 3 && rep.opened == 2);
    if (rep.n_calls == 3) {
        const ms_audit_stream *s = &rep.calls[0].dir[0];
        CHECK(s->decrypted == FRAMES);
        CHECK(s->failed_auth == 1);
        CHECK(s->duplicates == FRAMES - 1);
        CHECK(s->frames == FRAMES && s->concealed == 0);
    }
    check_wav(out, "call-1-caller-to-callee.wav", &fr_ab);
    ms_audit_report_free(&rep);
    ms_call_keys_free(kb);
}

static void test_other_keys_open_none(void)
{
    /* B's RSK of the next period */
    ms_call_keys *k = NULL;
    CHECK_ERR(open_auditor(&k, USER_B, F.p0 + 1), MS_OK);
    char out[400];
    snprintf(out, sizeof out, "%s/audit-next", out_root);
    const char *caps[] = {cap_main, cap_vm};
    ms_audit_report rep;
    CHECK_ERR(run_audit(k, caps, 2, out, &rep, NULL), MS_OK);
    CHECK(rep.n_calls == 4 && rep.opened == 0);
    for (size_t i = 0; i < rep.n_calls; i++) {
        CHECK(!rep.calls[i].openable && rep.calls[i].err != MS_OK);
        CHECK(rep.calls[i].dir[0].file[0] == '\0' && rep.calls[i].dir[1].file[0] == '\0');
    }
    if (rep.n_calls > 0)
        fprintf(stderr, "next period: %s (%s)\n", ms_errname(rep.calls[0].err),
                rep.calls[0].why);
    CHECK(!file_exists(out, "call-1-caller-to-callee.wav"));
    CHECK(file_exists(out, "report.json"));
    ms_audit_report_free(&rep);
    ms_call_keys_free(k);

    /* another user's RSK (D: in no call) */
    k = NULL;
    CHECK_ERR(open_auditor(&k, USER_D, F.p0), MS_OK);
    snprintf(out, sizeof out, "%s/audit-d", out_root);
    CHECK_ERR(run_audit(k, caps, 2, out, &rep, NULL), MS_OK);
    CHECK(rep.n_calls == 4 && rep.opened == 0);
    ms_audit_report_free(&rep);
    ms_call_keys_free(k);

    /* A's RSK opens A's calls (1 and 3, and A's voicemail to B), not B->C */
    k = NULL;
    CHECK_ERR(open_auditor(&k, USER_A, F.p0), MS_OK);
    snprintf(out, sizeof out, "%s/audit-a", out_root);
    CHECK_ERR(run_audit(k, caps, 2, out, &rep, NULL), MS_OK);
    CHECK(rep.n_calls == 4 && rep.opened == 3);
    if (rep.n_calls == 4) {
        CHECK(rep.calls[0].openable && rep.calls[0].opened_as_caller);
        CHECK(!rep.calls[1].openable);
        CHECK(rep.calls[2].openable && rep.calls[2].opened_as_caller);
        CHECK(rep.calls[2].dir[0].decrypted == FRAMES && rep.calls[2].dir[1].decrypted == FRAMES);
    }
    check_wav(out, "call-3-caller-to-callee.wav", &fr_ac);
    check_wav(out, "call-3-callee-to-caller.wav", &fr_ca);
    ms_audit_report_free(&rep);
    ms_call_keys_free(k);

    /* the RSK checked against the claimed user and period at once */
    k = NULL;
    ms_kmsif_keyset ks;
    fx_keyset(&F, &ks, USER_B, F.p0);
    ms_call_keys_options o;
    memset(&o, 0, sizeof o);
    o.mode = MS_CALL_KEYS_AUDIT;
    o.profile = MS_MIKEY_PROFILE_PCK;
    ms_mikey_kms_info info = kms_info();
    CHECK(ms_call_keys_open_audit(&k, USER_B, F.p0 + 1, ks.rsk, &info, &o, NULL, 0) != MS_OK);
    CHECK(k == NULL);
    ms_wipe(&ks, sizeof ks);
}

static void test_voicemail(void)
{
    ms_call_keys *kb = NULL;
    CHECK_ERR(open_auditor(&kb, USER_B, F.p0), MS_OK);
    char out[400];
    snprintf(out, sizeof out, "%s/audit-vm", out_root);
    const char *caps[] = {cap_vm};
    ms_audit_report rep;
    CHECK_ERR(run_audit(kb, caps, 1, out, &rep, NULL), MS_OK);
    CHECK(rep.n_calls == 1 && rep.opened == 1);
    if (rep.n_calls == 1) {
        const ms_audit_call *c = &rep.calls[0];
        CHECK(c->voicemail && !c->opened_as_caller);
        CHECK(c->dir[0].decrypted == fr_vm.n);
        CHECK(c->dir[1].decrypted == 0 && c->dir[1].file[0] == '\0');
        CHECK(strcmp(c->caller_verified, USER_A) == 0);
    }
    check_wav(out, "call-1-caller-to-callee.wav", &fr_vm);
    CHECK(!file_exists(out, "call-1-callee-to-caller.wav"));
    ms_audit_report_free(&rep);
    ms_call_keys_free(kb);
}

/* Decrypts with tests/call/srtp_ref.py (python3-cryptography, no libsrtp) and compares
 * every payload with what the auditor produced. */
static void test_reference_decryptor(void)
{
    const char *vec = getenv("MS_TEST_VECTORS");
    char script[600];
    snprintf(script, sizeof script, "%s/../call/srtp_ref.py", vec ? vec : "tests/vectors");
    struct stat st;
    CHECK(stat(script, &st) == 0);
    CHECK(system("python3 -c 'import cryptography' 2>/dev/null") == 0);

    payload_log *log = calloc(1, sizeof *log);
    ms_call_keys *kb = NULL;
    CHECK_ERR(open_auditor(&kb, USER_B, F.p0), MS_OK);
    const char *caps[] = {cap_main};
    ms_audit_options o = {.no_audio = true, .no_report = true, .on_payload = log_payload,
                          .arg = log};
    ms_audit_report rep;
    CHECK_ERR(run_audit(kb, caps, 1, NULL, &rep, &o), MS_OK);
    CHECK(log->count == 4 * FRAMES);
    ms_audit_report_free(&rep);
    ms_call_keys_free(kb);

    const test_call *calls[2] = {&call_ab, &call_bc};
    for (int c = 0; c < 2; c++) {
        for (int d = 0; d < 2; d++) {
            char cmd[2000], key[400], pk[400], line[4096];
            ref_path(key, sizeof key, "key", c, 0);
            ref_path(pk, sizeof pk, "packets", c, d);
            snprintf(cmd, sizeof cmd, "python3 '%s' --suite %s --key-file '%s' --mki-len %zu '%s'",
                     script, ms_srtp_suite_name(calls[c]->crypto.suite), key,
                     calls[c]->crypto.srtp.mki_len, pk);
            FILE *p = popen(cmd, "r");
            CHECK(p != NULL);
            size_t n = 0, same = 0;
            while (p != NULL && fgets(line, sizeof line, p) != NULL) {
                line[strcspn(line, "\n")] = '\0';
                if (n < log->n[c][d] && log->hex[c][d][n] != NULL &&
                    strcmp(line, log->hex[c][d][n]) == 0)
                    same++;
                n++;
            }
            int rc = p != NULL ? pclose(p) : -1;
            CHECK(rc == 0);
            CHECK(n == FRAMES && log->n[c][d] == FRAMES);
            CHECK(same == FRAMES);
            if (same != FRAMES)
                fprintf(stderr, "srtp_ref.py call %d dir %d: %zu of %zu payloads agree\n",
                        c + 1, d, same, n);
        }
    }
    /* and it, too, refuses the flipped packet */
    char pk[400], key[400], cmd[2000];
    ref_path(pk, sizeof pk, "packets", 9, 9);
    FILE *f = fopen(pk, "w");
    if (f != NULL) {
        for (size_t i = 0; i < flipped_len; i++)
            fprintf(f, "%02x", flipped_pkt[i]);
        fputc('\n', f);
        fclose(f);
    }
    ref_path(key, sizeof key, "key", 0, 0);
    snprintf(cmd, sizeof cmd,
             "python3 '%s' --suite %s --key-file '%s' --mki-len %zu '%s' | grep -q '^FAIL'",
             script, ms_srtp_suite_name(call_ab.crypto.suite), key, call_ab.crypto.srtp.mki_len,
             pk);
    CHECK(system(cmd) == 0);
    for (int c = 0; c < 2; c++)
        for (int d = 0; d < 2; d++)
            for (size_t i = 0; i < log->n[c][d]; i++)
                free(log->hex[c][d][i]);
    free(log);
}

/* The command, `mikeysakke audit decrypt`, on the same captures with the RSK in a key file
 * and the KMS certificate as XML (the files kms audit extract and kms cert write). The
 * binary is the one built next to this test (build/mikeysakke). */
static void test_command(void)
{
    char exe[600] = "", ms[700], cmd[4000];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0)
        exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash != NULL)
        *slash = '\0';
    snprintf(ms, sizeof ms, "%s/../mikeysakke", exe);
    CHECK(access(ms, X_OK) == 0);

    char rsk_path[400], cert_path[400], out[400];
    snprintf(rsk_path, sizeof rsk_path, "%s/bob.rsk", F.root);
    snprintf(cert_path, sizeof cert_path, "%s/kms-cert.xml", F.root);
    snprintf(out, sizeof out, "%s/audit-cli", out_root);
    ms_kmsif_keyset ks;
    fx_keyset(&F, &ks, USER_B, F.p0);
    umask(077);
    FILE *f = fopen(rsk_path, "w");
    CHECK(f != NULL);
    for (size_t i = 0; f != NULL && i < sizeof ks.rsk; i++)
        fprintf(f, "%02X", ks.rsk[i]);
    if (f != NULL) {
        fputc('\n', f);
        fclose(f);
    }
    ms_wipe(&ks, sizeof ks);
    size_t xml_len = 0;
    CHECK_ERR(ms_kmsif_certificate_write(F.xml, FX_XML_CAP, &xml_len, &F.cert), MS_OK);
    f = fopen(cert_path, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fwrite(F.xml, 1, xml_len, f);
        fclose(f);
    }
#define AUDIT_CMD "'%s' audit decrypt --capture '%s,%s' --rsk '%s' --uri " USER_B " --kms '%s' "
    snprintf(cmd, sizeof cmd, AUDIT_CMD "--period %llu --out '%s' >'%s/cli.out' 2>&1", ms,
             cap_main, cap_vm, rsk_path, cert_path, (unsigned long long)F.p0, out, F.root);
    int rc = system(cmd);
    CHECK(rc == 0);
    char *text = read_text(F.root, "cli.out");
    if (text != NULL) {
        CHECK(strstr(text, "4 call(s) found, 3 opened, 1 not openable with this key") != NULL);
        CHECK(strstr(text, "not openable with this key: MS_ERR_MIKEY_RESPONDER") != NULL);
        CHECK(strstr(text, "opened as caller (SAKKE-to-self)") != NULL);
        fprintf(stderr, "mikeysakke audit decrypt said:\n%s", text);
    }
    free(text);
    check_wav(out, "call-1-caller-to-callee.wav", &fr_ab);
    check_wav(out, "call-2-callee-to-caller.wav", &fr_cb);
    check_wav(out, "call-4-caller-to-callee.wav", &fr_vm);
    CHECK(file_exists(out, "report.json"));

    /* --json prints the report */
    snprintf(cmd, sizeof cmd, AUDIT_CMD "--period %llu --out '%s' --json --no-audio "
             ">'%s/cli.json' 2>&1", ms, cap_main, cap_vm, rsk_path, cert_path,
             (unsigned long long)F.p0, out, F.root);
    CHECK(system(cmd) == 0);
    text = read_text(F.root, "cli.json");
    CHECK(text != NULL && strstr(text, "\"calls_opened\": 3") != NULL);
    free(text);
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys; json.load(open(sys.argv[1]))' '%s/cli.json'", F.root);
    CHECK(system(cmd) == 0);

    /* refusals: the RSK claimed for another period, a key file others can read, a capture
     * that is not one */
    snprintf(cmd, sizeof cmd, AUDIT_CMD "--period %llu --out '%s' >/dev/null 2>&1", ms,
             cap_main, cap_vm, rsk_path, cert_path, (unsigned long long)F.p0 + 1, out);
    rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) != 0);
    fprintf(stderr, "the RSK claimed for the next period: exit %d\n", WEXITSTATUS(rc));
    chmod(rsk_path, 0644);
    snprintf(cmd, sizeof cmd, AUDIT_CMD "--period %llu --out '%s' >/dev/null 2>&1", ms,
             cap_main, cap_vm, rsk_path, cert_path, (unsigned long long)F.p0, out);
    rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == MS_ERR_KEYFILE_MODE);
    chmod(rsk_path, 0600);
    snprintf(cmd, sizeof cmd, AUDIT_CMD "--period %llu --out '%s' >/dev/null 2>&1", ms,
             cert_path, cap_vm, rsk_path, cert_path, (unsigned long long)F.p0, out);
    rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == MS_ERR_CAPTURE);
#undef AUDIT_CMD
}

static void test_speed(void)
{
    ms_call_keys *kb = NULL;
    CHECK_ERR(open_auditor(&kb, USER_B, F.p0), MS_OK);
    char out[400];
    snprintf(out, sizeof out, "%s/audit-speed", out_root);
    const char *caps[] = {cap_speed};
    ms_audit_report rep;
    double best = 1e9, best_noaudio = 1e9, best_wall = 1e9;
    for (int i = 0; i < 5; i++) {
        double t = now_s(), tw = wall_s();
        CHECK_ERR(run_audit(kb, caps, 1, out, &rep, NULL), MS_OK);
        t = now_s() - t;
        tw = wall_s() - tw;
        best = t < best ? t : best;
        best_wall = tw < best_wall ? tw : best_wall;
        if (rep.n_calls == 1)
            CHECK(rep.calls[0].dir[0].decrypted == MAX_FRAMES &&
                  rep.calls[0].dir[1].decrypted == MAX_FRAMES);
        ms_audit_report_free(&rep);
        ms_audit_options o = {.no_audio = true, .no_report = true};
        t = now_s();
        CHECK_ERR(run_audit(kb, caps, 1, NULL, &rep, &o), MS_OK);
        t = now_s() - t;
        best_noaudio = t < best_noaudio ? t : best_noaudio;
        ms_audit_report_free(&rep);
    }
    check_wav(out, "call-1-caller-to-callee.wav", &fr_s1);
    /* of which opening the I_MESSAGE (ECCSI verify, SAKKE decap with the RSK) */
    double best_open = 1e9;
    for (int i = 0; i < 5; i++) {
        ms_call_crypto cc;
        ms_call_refusal why;
        double t = now_s();
        CHECK_ERR(ms_call_check_offer(kb, &cc, NULL, &why, speed_offer, strlen(speed_offer),
                                      NULL),
                  MS_OK);
        t = now_s() - t;
        best_open = t < best_open ? t : best_open;
        ms_call_crypto_wipe(&cc);
    }
    /* ms_call_keys_open_audit builds a MIKEY context with the KMS and the RSK once: the
     * part of each opening that is the same for every message */
    double best_ctx = 1e9;
    for (int i = 0; i < 5; i++) {
        ms_call_keys *k2 = NULL;
        double t = now_s();
        CHECK_ERR(open_auditor(&k2, USER_B, F.p0), MS_OK);
        t = now_s() - t;
        best_ctx = t < best_ctx ? t : best_ctx;
        ms_call_keys_free(k2);
    }
    fprintf(stderr, "speed: opening one call's I_MESSAGE with the RSK: %.1f ms CPU "
            "(a fresh MIKEY context with the KMS and RSK alone, as ms_call_keys_open_audit "
            "builds it: %.1f ms)\n", best_open * 1e3, best_ctx * 1e3);
    /* and the floor set by Opus itself: decoding the same frames locally */
    double best_dec = 1e9;
    for (int i = 0; i < 5; i++) {
        size_t n1, n2;
        double t = now_s();
        int16_t *p1 = local_decode(&fr_s1, &n1), *p2 = local_decode(&fr_s2, &n2);
        t = now_s() - t;
        best_dec = t < best_dec ? t : best_dec;
        free(p1);
        free(p2);
    }
    fprintf(stderr, "speed: Opus decoding of both directions' %d frames alone: %.1f ms CPU\n",
            MAX_FRAMES, best_dec * 1e3);
    double call_s = MAX_FRAMES * 0.02;
    fprintf(stderr,
            "speed: a %.0f s call (%d packets each way) audited in %.1f ms wall = %.0fx real "
            "time (%.1f ms CPU; decrypt only, no Opus/WAV: %.1f ms = %.0fx)\n",
            call_s, MAX_FRAMES, best_wall * 1e3, call_s / best_wall, best * 1e3,
            best_noaudio * 1e3, call_s / best_noaudio);
    /* a minute: the one-off opening weighs less */
    const char *caps60[] = {cap_speed60};
    double best60 = 1e9, best60_wall = 1e9;
    for (int i = 0; i < 3; i++) {
        double t = now_s(), tw = wall_s();
        CHECK_ERR(run_audit(kb, caps60, 1, out, &rep, NULL), MS_OK);
        t = now_s() - t;
        tw = wall_s() - tw;
        best60 = t < best60 ? t : best60;
        best60_wall = tw < best60_wall ? tw : best60_wall;
        if (rep.n_calls == 1)
            CHECK(rep.calls[0].dir[0].decrypted == 6 * MAX_FRAMES &&
                  rep.calls[0].dir[1].decrypted == 6 * MAX_FRAMES &&
                  rep.calls[0].dir[0].frames == 6 * MAX_FRAMES);
        ms_audit_report_free(&rep);
    }
    fprintf(stderr, "speed: a 60 s call audited in %.1f ms wall = %.0fx real time (%.1f ms CPU)\n",
            best60_wall * 1e3, 60.0 / best60_wall, best60 * 1e3);
    ms_call_keys_free(kb);
}

int main(void)
{
    ms_test_seed();
    fx_init(&F, 0);
    fixed_ntp = F.now << 32;
    snprintf(out_root, sizeof out_root, "%s/out", F.root);
    mkdir(out_root, 0700);
    snprintf(cap_main, sizeof cap_main, "%s/calls.pcap", F.root);
    snprintf(cap_flip, sizeof cap_flip, "%s/flipped.pcap", F.root);
    snprintf(cap_vm, sizeof cap_vm, "%s/voicemail.pcap", F.root);
    snprintf(cap_speed, sizeof cap_speed, "%s/speed.pcap", F.root);
    snprintf(cap_speed60, sizeof cap_speed60, "%s/speed60.pcap", F.root);
    snprintf(cap_b2b, sizeof cap_b2b, "%s/b2bua.pcap", F.root);

    make_keystore(USER_A, "ks-a");
    make_keystore(USER_B, "ks-b");
    make_keystore(USER_C, "ks-c");
    ms_call_keys *ka = open_device("ks-a", MS_SRTP_AEAD_AES_128_GCM);
    ms_call_keys *kb = open_device("ks-b", MS_SRTP_AES_CM_128_HMAC_SHA1_80);
    ms_call_keys *kc = open_device("ks-c", MS_SRTP_AEAD_AES_128_GCM);

    make_frames(&fr_ab, FRAMES, 440);
    make_frames(&fr_ba, FRAMES, 660);
    make_frames(&fr_bc, FRAMES, 523);
    make_frames(&fr_cb, FRAMES, 330);
    make_frames(&fr_ac, FRAMES, 880);
    make_frames(&fr_ca, FRAMES, 220);
    make_frames(&fr_vm, FRAMES / 2, 300);
    make_frames(&fr_b2b, 10, 700);
    make_frames(&fr_s1, MAX_FRAMES, 440);
    make_frames(&fr_s2, MAX_FRAMES, 550);

    build_main_capture(ka, kb, kc);
    build_voicemail(ka);
    build_speed(ka, kb, cap_speed, MAX_FRAMES);
    build_speed(ka, kb, cap_speed60, 6 * MAX_FRAMES);
    build_b2bua(ka, kb);

    test_b_opens_its_calls();
    test_flipped_byte();
    test_other_keys_open_none();
    test_voicemail();
    test_b2bua_and_rekey();
    test_reference_decryptor();
    test_command();
    test_speed();

    free_call(&call_ab);
    free_call(&call_bc);
    free_call(&call_ac);
    free_call(&call_vm);
    ms_call_keys_free(ka);
    ms_call_keys_free(kb);
    ms_call_keys_free(kc);
    fx_cleanup(&F);
    return ms_test_finish();
}
