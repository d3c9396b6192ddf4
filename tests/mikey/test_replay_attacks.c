/*
 * The responder's replay cache against two attacks, through the library API:
 *   - malleated replay: an accepted I_MESSAGE sent again with its ECCSI s replaced by
 *     q - s (still a valid signature: a fresh responder accepts it) is refused as a
 *     replay, in the RFC 6509 and the TS 33.180 (hidden identities) profiles;
 *   - blocking: one member floods valid messages dated 290 s ahead, more than the
 *     cache holds; another member's genuine calls (dated now, or older than the flood)
 *     are still accepted, while every flood message played again is still refused.
 */
#include <stdlib.h>
#include <string.h>

#include "mikey_fixture.h"
#include "testutil.h"

#define CAROL_TEL "tel:+447700900789"
#define CAPACITY 24 /* small, so that a flood larger than the cache stays quick */
#define FLOOD 60

/* The order q of P-256 (RFC 6507 Appendix A), big-endian. */
static const char *const Q_HEX =
    "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";

/* A context for `uri` holding its keys for the current period. */
static ms_mikey_ctx *user_new(ms_mikey_profile profile, const char *uri, size_t capacity)
{
    ms_mikey_config cfg = {0};
    cfg.replay_capacity = capacity;
    ms_mikey_ctx *ctx = test_ctx_new(&cfg, profile, uri);
    test_user_keys k;
    ms_err e = test_issue_keys(&k, ctx, scheme_of_profile(profile), uri, period_of_profile(profile));
    ms_wipe(&k, sizeof k);
    if (e != MS_OK)
        die(uri, e);
    return ctx;
}

static size_t initiate(ms_mikey_ctx *from, const char *to, uint64_t timestamp, uint8_t *msg)
{
    ms_mikey_init_params p = {0};
    p.responder = to;
    p.timestamp = timestamp;
    size_t len = 0;
    CHECK_ERR(ms_mikey_initiate(from, msg, BUF, &len, NULL, &p), MS_OK);
    return len;
}

static ms_err respond(ms_mikey_ctx *to, const uint8_t *msg, size_t len, const char *initiator)
{
    ms_mikey_result r;
    ms_err e = ms_mikey_respond(to, &r, msg, len, initiator, NULL);
    ms_mikey_result_wipe(&r);
    return e;
}

/* Replace s by q - s in the signature (r || s || PVT), which ends the message. */
static void swap_s(uint8_t *msg, size_t len)
{
    uint8_t q[MS_ECCSI_SCALAR_BYTES];
    CHECK(ms_test_hex(q, sizeof q, Q_HEX) == sizeof q);
    uint8_t *s = msg + len - MS_ECCSI_SIG_BYTES + MS_ECCSI_SCALAR_BYTES;
    unsigned borrow = 0;
    for (size_t i = MS_ECCSI_SCALAR_BYTES; i-- > 0;) {
        unsigned d = (unsigned)q[i] - s[i] - borrow;
        s[i] = (uint8_t)d;
        borrow = (d >> 8) & 1u;
    }
    CHECK(borrow == 0); /* s < q */
}

static void malleated_replay(ms_mikey_profile profile, const char *from_uri, const char *to_uri)
{
    ms_mikey_ctx *from = user_new(profile, from_uri, 0);
    ms_mikey_ctx *to = user_new(profile, to_uri, 0);
    ms_mikey_ctx *fresh = user_new(profile, to_uri, 0);
    uint8_t msg[BUF], orig[BUF];
    size_t len = initiate(from, to_uri, 0, msg);
    memcpy(orig, msg, len);
    CHECK_ERR(respond(to, msg, len, from_uri), MS_OK);
    CHECK_ERR(respond(to, msg, len, from_uri), MS_ERR_MIKEY_REPLAY);
    swap_s(msg, len);
    CHECK(memcmp(msg, orig, len) != 0);
    /* The swapped message is another valid signature of the same message... */
    CHECK_ERR(respond(fresh, msg, len, from_uri), MS_OK);
    /* ...and it is no new call: refused as a replay, with a diagnostic. */
    ms_mikey_result r;
    ms_mikey_diag d;
    memset(&d, 0, sizeof d);
    CHECK_ERR(ms_mikey_respond(to, &r, msg, len, from_uri, &d), MS_ERR_MIKEY_REPLAY);
    CHECK(d.detail[0] != '\0');
    CHECK(r.key_len == 0);
    /* Swapping back gives the original: still a replay for both. */
    swap_s(msg, len);
    CHECK_MEM(msg, orig, len);
    CHECK_ERR(respond(to, msg, len, from_uri), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(respond(fresh, msg, len, from_uri), MS_ERR_MIKEY_REPLAY);
    ms_mikey_ctx_free(from);
    ms_mikey_ctx_free(to);
    ms_mikey_ctx_free(fresh);
}

static void test_malleated_replay(void)
{
    malleated_replay(MS_MIKEY_PROFILE_RFC6509, ALICE_TEL, BOB_TEL);
    malleated_replay(MS_MIKEY_PROFILE_PCK, ALICE_SIP, BOB_SIP);
}

static void test_flood_does_not_block(void)
{
    ms_mikey_ctx *alice = user_new(MS_MIKEY_PROFILE_RFC6509, ALICE_TEL, 0);
    ms_mikey_ctx *carol = user_new(MS_MIKEY_PROFILE_RFC6509, CAROL_TEL, 0);
    ms_mikey_ctx *bob = user_new(MS_MIKEY_PROFILE_RFC6509, BOB_TEL, CAPACITY);
    static uint8_t flood[FLOOD][BUF];
    size_t flood_len[FLOOD];
    /* Carol called a little before the flood; the call is held. */
    uint8_t early[BUF], msg[BUF];
    size_t early_len = initiate(carol, BOB_TEL, g_now - (100ull << 32), early);
    CHECK_ERR(respond(bob, early, early_len, CAROL_TEL), MS_OK);
    /* Alice: FLOOD valid messages dated 290 s ahead (inside the 300 s window). */
    int flood_ok = 0;
    for (unsigned i = 0; i < FLOOD; i++) {
        flood_len[i] = initiate(alice, BOB_TEL, g_now + ((290ull << 32) | i), flood[i]);
        flood_ok += respond(bob, flood[i], flood_len[i], ALICE_TEL) == MS_OK;
    }
    CHECK(flood_ok == FLOOD);
    /* Carol's genuine calls: now, older than the flood, and older than her first. */
    size_t len = initiate(carol, BOB_TEL, 0, msg);
    CHECK_ERR(respond(bob, msg, len, CAROL_TEL), MS_OK);
    len = initiate(carol, BOB_TEL, g_now - (200ull << 32), msg);
    CHECK_ERR(respond(bob, msg, len, CAROL_TEL), MS_OK);
    /* ...and her replays are still refused. */
    CHECK_ERR(respond(bob, early, early_len, CAROL_TEL), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(respond(bob, msg, len, CAROL_TEL), MS_ERR_MIKEY_REPLAY);
    /* Many genuine calls from Carol, more than the cache holds: all accepted. */
    int carol_ok = 0;
    for (unsigned i = 0; i < CAPACITY; i++) {
        len = initiate(carol, BOB_TEL, g_now + ((uint64_t)i << 32), msg);
        carol_ok += respond(bob, msg, len, CAROL_TEL) == MS_OK;
    }
    CHECK(carol_ok == CAPACITY);
    /* Every flood message played again is refused, the evicted ones too, and so is
     * the s-swapped form of each. */
    int flood_replayed = 0;
    for (unsigned i = 0; i < FLOOD; i++) {
        flood_replayed += respond(bob, flood[i], flood_len[i], ALICE_TEL) == MS_ERR_MIKEY_REPLAY;
        swap_s(flood[i], flood_len[i]);
        flood_replayed += respond(bob, flood[i], flood_len[i], ALICE_TEL) == MS_ERR_MIKEY_REPLAY;
    }
    CHECK(flood_replayed == 2 * FLOOD);
    ms_mikey_ctx_free(alice);
    ms_mikey_ctx_free(carol);
    ms_mikey_ctx_free(bob);
}

int main(void)
{
    ms_test_seed();
    test_kms_new();
    test_malleated_replay();
    test_flood_does_not_block();
    test_kms_free();
    return ms_test_finish();
}
