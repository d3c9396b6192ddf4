/*
 * Group SRTP (call/group_media.h): every sender of a 20-member group (more than libsrtp's
 * 16 master keys per policy) reaches a receiver through its own context chosen by MKI;
 * two senders on one SSRC still decrypt; a late joiner after a sequence-number wrap
 * decrypts because the ROC is carried, and a wrong ROC fails; an unknown or removed MKI,
 * a tampered packet and a replay are refused; SRTCP; both suites.
 */
#include <stdio.h>
#include <string.h>

#include "call/group_media.h"
#include "call/rtp.h"
#include "testutil.h"

#define CAP 1600
#define N_MEMBERS 20
#define PAYLOAD 60

static ms_group_key group_key;
static char uris[N_MEMBERS + 1][64];

static void make_group_key(void)
{
    memset(&group_key, 0, sizeof group_key);
    snprintf(group_key.group, sizeof group_key.group, "sip:team@example.org");
    ms_test_random(group_key.gmk, 16);
    group_key.gmk_len = 16;
    uint8_t id[4];
    ms_test_random(id, 4);
    group_key.gmk_id = ((uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 |
                        id[3]) & 0x0fffffffu; /* purpose tag 0: GMK */
    ms_test_random(group_key.rand, 16);
    group_key.rand_len = 16;
    group_key.prf = MS_MIKEY_PRF_HMAC_SHA256;
    for (int i = 0; i <= N_MEMBERS; i++)
        snprintf(uris[i], sizeof uris[i], "sip:member%02d@example.org", i);
}

/* An RTP packet whose payload names its sender and sequence number. */
static size_t make_rtp(uint8_t *pkt, uint32_t ssrc, uint16_t seq, int who)
{
    ms_rtp_header h = {.payload_type = 96, .seq = seq, .timestamp = seq * 960u, .ssrc = ssrc};
    ms_rtp_write_header(pkt, &h);
    memset(pkt + MS_RTP_HEADER, (uint8_t)who, PAYLOAD);
    pkt[MS_RTP_HEADER] = (uint8_t)(seq >> 8);
    pkt[MS_RTP_HEADER + 1] = (uint8_t)seq;
    return MS_RTP_HEADER + PAYLOAD;
}

static ms_group_media *member(int who, ms_srtp_suite suite, uint16_t r)
{
    ms_group_media *g = NULL;
    char detail[200] = "";
    CHECK_ERR(ms_group_media_new(&g, &group_key, uris[who], suite, r, detail, sizeof detail),
              MS_OK);
    return g;
}

/* Sends one packet from tx (member `who`) and checks rx opens it as `who`'s slot. */
static void deliver_ok(ms_group_media *tx, ms_group_media *rx, int who, size_t want_slot,
                       uint32_t ssrc, uint16_t seq)
{
    uint8_t pkt[CAP], plain[CAP];
    size_t len = make_rtp(pkt, ssrc, seq, who);
    memcpy(plain, pkt, len);
    size_t plain_len = len;
    CHECK_ERR(ms_group_media_protect(tx, pkt, &len, sizeof pkt), MS_OK);
    bool rtcp = true;
    size_t slot = 999;
    CHECK_ERR(ms_group_media_unprotect(rx, pkt, &len, &rtcp, &slot), MS_OK);
    CHECK(!rtcp);
    CHECK(slot == want_slot);
    CHECK(len == plain_len && memcmp(pkt, plain, len) == 0);
}

static void many_senders(ms_srtp_suite suite)
{
    ms_group_media *rx = member(0, suite, 1);
    ms_group_media *tx[N_MEMBERS + 1] = {0};
    size_t slot[N_MEMBERS + 1];
    for (int i = 1; i <= N_MEMBERS; i++) {
        CHECK_ERR(ms_group_media_add_sender(rx, uris[i], &slot[i]), MS_OK);
        tx[i] = member(i, suite, 1);
    }
    CHECK(ms_group_media_slots(rx) == N_MEMBERS);
    CHECK_ERR(ms_group_media_add_sender(rx, uris[3], NULL), MS_ERR_EXISTS);
    /* the MKI each sends under: GMK-ID || GUK-ID of the sender (TS 33.180) */
    uint32_t guk;
    CHECK_ERR(ms_guk_id(&guk, group_key.gmk, 16, group_key.gmk_id, uris[5]), MS_OK);
    const uint8_t *mki = ms_group_media_own_mki(tx[5]);
    CHECK(((uint32_t)mki[0] << 24 | (uint32_t)mki[1] << 16 | (uint32_t)mki[2] << 8 | mki[3]) ==
          group_key.gmk_id);
    CHECK(((uint32_t)mki[4] << 24 | (uint32_t)mki[5] << 16 | (uint32_t)mki[6] << 8 | mki[7]) ==
          guk);
    /* interleaved, three packets each, distinct SSRCs */
    for (uint16_t seq = 100; seq < 103; seq++)
        for (int i = 1; i <= N_MEMBERS; i++)
            deliver_ok(tx[i], rx, i, slot[i], 0x1000u + (uint32_t)i, seq);

    /* two senders forced onto one SSRC: their keys differ, so both decrypt */
    deliver_ok(tx[1], rx, 1, slot[1], 0xABCDEF01u, 500);
    deliver_ok(tx[2], rx, 2, slot[2], 0xABCDEF01u, 500);
    deliver_ok(tx[1], rx, 1, slot[1], 0xABCDEF01u, 501);
    deliver_ok(tx[2], rx, 2, slot[2], 0xABCDEF01u, 501);

    /* a replay is refused */
    uint8_t pkt[CAP], copy[CAP];
    size_t len = make_rtp(pkt, 0x1004u, 103, 4), clen;
    CHECK_ERR(ms_group_media_protect(tx[4], pkt, &len, sizeof pkt), MS_OK);
    memcpy(copy, pkt, len);
    clen = len;
    bool rtcp;
    size_t who;
    CHECK_ERR(ms_group_media_unprotect(rx, pkt, &len, &rtcp, &who), MS_OK);
    CHECK_ERR(ms_group_media_unprotect(rx, copy, &clen, &rtcp, &who), MS_ERR_SRTP_REPLAY);

    /* a tampered payload fails authentication */
    len = make_rtp(pkt, 0x1004u, 104, 4);
    CHECK_ERR(ms_group_media_protect(tx[4], pkt, &len, sizeof pkt), MS_OK);
    pkt[MS_RTP_HEADER + 5] ^= 1;
    CHECK_ERR(ms_group_media_unprotect(rx, pkt, &len, &rtcp, &who), MS_ERR_SRTP_AUTH);

    /* a sender outside the roster: its MKI is unknown */
    ms_group_media *stranger = member(0, suite, 1); /* member 0 is not in rx's roster */
    len = make_rtp(pkt, 0x2000u, 7, 0);
    CHECK_ERR(ms_group_media_protect(stranger, pkt, &len, sizeof pkt), MS_OK);
    CHECK_ERR(ms_group_media_unprotect(rx, pkt, &len, &rtcp, &who), MS_ERR_SRTP_AUTH);

    /* a removed sender: every later packet fails, the others carry on */
    CHECK_ERR(ms_group_media_remove_sender(rx, uris[7]), MS_OK);
    CHECK_ERR(ms_group_media_remove_sender(rx, uris[7]), MS_ERR_USER_UNKNOWN);
    CHECK(ms_group_media_sender(rx, slot[7])[0] == 0);
    for (uint16_t seq = 103; seq < 106; seq++) {
        len = make_rtp(pkt, 0x1007u, seq, 7);
        CHECK_ERR(ms_group_media_protect(tx[7], pkt, &len, sizeof pkt), MS_OK);
        CHECK_ERR(ms_group_media_unprotect(rx, pkt, &len, &rtcp, &who), MS_ERR_SRTP_AUTH);
        deliver_ok(tx[8], rx, 8, slot[8], 0x1008u, seq);
    }

    /* SRTCP from any sender, by MKI as well */
    len = ms_rtcp_write_sr(pkt, sizeof pkt, 0x1009u, 1, 2, 3, 4);
    memcpy(copy, pkt, len);
    clen = len;
    CHECK_ERR(ms_group_media_protect_rtcp(tx[9], pkt, &len, sizeof pkt), MS_OK);
    CHECK_ERR(ms_group_media_unprotect(rx, pkt, &len, &rtcp, &who), MS_OK);
    CHECK(rtcp && who == slot[9] && len == clen && memcmp(pkt, copy, len) == 0);

    /* too short to hold an MKI */
    len = MS_RTP_HEADER + 3;
    make_rtp(pkt, 1, 1, 1);
    CHECK_ERR(ms_group_media_unprotect(rx, pkt, &len, &rtcp, &who), MS_ERR_INVALID);

    ms_group_media_free(stranger);
    for (int i = 1; i <= N_MEMBERS; i++)
        ms_group_media_free(tx[i]);
    ms_group_media_free(rx);
}

/* A sender wraps its sequence number; a receiver that joins afterwards decrypts at once
 * because the packets carry the ROC (R = 1), and a packet whose ROC was altered fails. */
static void late_joiner(ms_srtp_suite suite, uint16_t r)
{
    ms_group_media *tx = member(1, suite, r);
    ms_group_media *early = member(2, suite, r);
    ms_group_media *late = member(3, suite, r);
    CHECK_ERR(ms_group_media_add_sender(early, uris[1], NULL), MS_OK);
    CHECK_ERR(ms_group_media_add_sender(late, uris[1], NULL), MS_OK);
    const uint32_t ssrc = 0x5eed0001u;
    uint16_t seq = 0xfff0;
    int opened_late = 0, failed_late = 0;
    for (int i = 0; i < 48; i++, seq++) {
        uint8_t pkt[CAP], plain[CAP], copy[CAP];
        size_t len = make_rtp(pkt, ssrc, seq, 1), plain_len = len;
        memcpy(plain, pkt, len);
        CHECK_ERR(ms_group_media_protect(tx, pkt, &len, sizeof pkt), MS_OK);
        bool carries = seq % r == 0;
        size_t clen = len;
        memcpy(copy, pkt, len);
        bool rtcp;
        size_t who;
        size_t elen = len;
        uint8_t epkt[CAP];
        memcpy(epkt, pkt, len);
        CHECK_ERR(ms_group_media_unprotect(early, epkt, &elen, &rtcp, &who), MS_OK);
        if (i < 24) /* the late member joins 8 packets after the wrap */
            continue;
        if (carries && opened_late == 0) {
            /* the same packet with ROC 0 (what a receiver would assume) fails */
            uint8_t tmp[CAP];
            memcpy(tmp, copy, clen);
            size_t tlen = clen;
            memset(tmp + tlen - 4, 0, 4);
            CHECK_ERR(ms_group_media_unprotect(late, tmp, &tlen, &rtcp, &who), MS_ERR_SRTP_AUTH);
        }
        ms_err e = ms_group_media_unprotect(late, pkt, &len, &rtcp, &who);
        if (e == MS_OK) {
            CHECK(len == plain_len && memcmp(pkt, plain, len) == 0);
            opened_late++;
        } else {
            failed_late++;
        }
    }
    /* with R = 1 every packet opens; with R > 1 at most the R - 1 before the first
     * carrier may fail */
    CHECK(opened_late >= 24 - (r - 1));
    CHECK(failed_late <= r - 1);
    ms_group_media_free(tx);
    ms_group_media_free(early);
    ms_group_media_free(late);
}

/* A forged ROC (on a packet the attacker copied, so with a valid MKI) fails, and leaves
 * the sender's stream as it was: the next real packets, carrying the ROC or not, open. */
static void forged_roc(void)
{
    ms_group_media *tx = member(1, MS_SRTP_AEAD_AES_128_GCM, 4);
    ms_group_media *rx = member(2, MS_SRTP_AEAD_AES_128_GCM, 4);
    CHECK_ERR(ms_group_media_add_sender(rx, uris[1], NULL), MS_OK);
    bool rtcp;
    size_t who;
    uint8_t pkt[CAP], forged[CAP];
    size_t len, flen;
    /* on a fresh SSRC: the stream the forgery would create is taken back */
    len = make_rtp(pkt, 77, 8, 1);
    CHECK_ERR(ms_group_media_protect(tx, pkt, &len, sizeof pkt), MS_OK);
    memcpy(forged, pkt, len);
    flen = len;
    forged[flen - 1] ^= 3;
    CHECK_ERR(ms_group_media_unprotect(rx, forged, &flen, &rtcp, &who), MS_ERR_SRTP_AUTH);
    CHECK_ERR(ms_group_media_unprotect(rx, pkt, &len, &rtcp, &who), MS_OK);
    /* on a running stream: a packet without the ROC after the forgery still opens */
    for (uint16_t seq = 9; seq < 14; seq++) {
        len = make_rtp(pkt, 77, seq, 1);
        CHECK_ERR(ms_group_media_protect(tx, pkt, &len, sizeof pkt), MS_OK);
        if (seq == 12) { /* carries the ROC: forge it first */
            memcpy(forged, pkt, len);
            flen = len;
            forged[flen - 2] ^= 1;
            CHECK_ERR(ms_group_media_unprotect(rx, forged, &flen, &rtcp, &who),
                      MS_ERR_SRTP_AUTH);
            continue; /* the real one is lost */
        }
        CHECK_ERR(ms_group_media_unprotect(rx, pkt, &len, &rtcp, &who), MS_OK);
    }
    ms_group_media_free(tx);
    ms_group_media_free(rx);
}

/* The ROC is appended only to packets whose SEQ is a multiple of R. */
static void roc_layout(void)
{
    ms_group_media *tx = member(1, MS_SRTP_AEAD_AES_128_GCM, 4);
    uint8_t pkt[CAP];
    size_t len = make_rtp(pkt, 9, 8, 1);
    size_t base = len;
    CHECK_ERR(ms_group_media_protect(tx, pkt, &len, sizeof pkt), MS_OK);
    CHECK(len == base + 16 + 8 + 4); /* tag, MKI, ROC */
    CHECK(pkt[len - 1] == 0 && pkt[len - 4] == 0);
    CHECK(memcmp(pkt + len - 12, ms_group_media_own_mki(tx), 8) == 0);
    len = make_rtp(pkt, 9, 9, 1);
    CHECK_ERR(ms_group_media_protect(tx, pkt, &len, sizeof pkt), MS_OK);
    CHECK(len == base + 16 + 8);
    CHECK(memcmp(pkt + len - 8, ms_group_media_own_mki(tx), 8) == 0);
    ms_group_media_free(tx);
}

int main(void)
{
    ms_test_seed();
    make_group_key();
    many_senders(MS_SRTP_AEAD_AES_128_GCM);
    many_senders(MS_SRTP_AES_CM_128_HMAC_SHA1_80);
    late_joiner(MS_SRTP_AEAD_AES_128_GCM, 1);
    late_joiner(MS_SRTP_AES_CM_128_HMAC_SHA1_80, 1);
    late_joiner(MS_SRTP_AEAD_AES_128_GCM, 4);
    roc_layout();
    forged_roc();
    ms_group_key_wipe(&group_key);
    return ms_test_finish();
}
