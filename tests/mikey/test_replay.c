/*
 * Replay cache: a recorded (timestamp, digest) is a replay and nothing else is; check
 * records nothing; eviction of the oldest entry raises a floor at or below which every
 * message is a replay; expire_before drops old entries (and does not raise the floor);
 * a randomised run against a simple model of those rules; argument errors.
 */
#include <stdlib.h>
#include <string.h>

#include "mikeysakke/mikey.h"
#include "testutil.h"

/* A digest derived from a small number, so cases read easily. */
static const uint8_t *dg(unsigned n)
{
    static uint8_t d[4][32];
    static int slot;
    uint8_t *p = d[slot++ & 3];
    memset(p, 0xA5, 32);
    p[0] = (uint8_t)(n >> 8);
    p[31] = (uint8_t)n;
    return p;
}

static void test_basic(void)
{
    ms_replay_cache *rc = NULL;
    CHECK_ERR(ms_replay_cache_new(&rc, 8), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 100, dg(1)), MS_OK);
    /* check records nothing */
    CHECK_ERR(ms_replay_cache_check(rc, 100, dg(1)), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, 100, dg(1), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 100, dg(1)), MS_ERR_MIKEY_REPLAY);
    /* Same time, other message; same message, other time: not replays. */
    CHECK_ERR(ms_replay_cache_check(rc, 100, dg(2)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 101, dg(1)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 99, dg(1)), MS_OK);
    /* A digest differing in its first or last octet only is another message. */
    uint8_t d[32];
    memcpy(d, dg(1), 32);
    d[0] ^= 1;
    CHECK_ERR(ms_replay_cache_check(rc, 100, d), MS_OK);
    memcpy(d, dg(1), 32);
    d[31] ^= 0x80;
    CHECK_ERR(ms_replay_cache_check(rc, 100, d), MS_OK);
    memcpy(d, dg(1), 32);
    d[16] ^= 0x01;
    CHECK_ERR(ms_replay_cache_check(rc, 100, d), MS_OK);
    /* Adding the same message again says it is a replay. */
    CHECK_ERR(ms_replay_cache_add(rc, 100, dg(1), 0), MS_ERR_MIKEY_REPLAY);
    /* Nothing is evicted below capacity: older unseen messages still pass. */
    for (unsigned i = 2; i <= 8; i++)
        CHECK_ERR(ms_replay_cache_add(rc, 100 + i, dg(i), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 50, dg(50)), MS_OK);
    for (unsigned i = 2; i <= 8; i++)
        CHECK_ERR(ms_replay_cache_check(rc, 100 + i, dg(i)), MS_ERR_MIKEY_REPLAY);
    ms_replay_cache_free(rc);
}

static void test_eviction_floor(void)
{
    ms_replay_cache *rc = NULL;
    CHECK_ERR(ms_replay_cache_new(&rc, 3), MS_OK);
    /* Out of order on purpose: the oldest is the smallest timestamp, not the first in. */
    CHECK_ERR(ms_replay_cache_add(rc, 20, dg(20), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, 10, dg(10), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, 30, dg(30), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 5, dg(5)), MS_OK); /* no floor yet */
    /* Full: adding 40 evicts 10; the floor becomes 10. */
    CHECK_ERR(ms_replay_cache_add(rc, 40, dg(40), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 10, dg(10)), MS_ERR_MIKEY_REPLAY); /* evicted */
    CHECK_ERR(ms_replay_cache_check(rc, 10, dg(99)), MS_ERR_MIKEY_REPLAY); /* at floor */
    CHECK_ERR(ms_replay_cache_check(rc, 5, dg(5)), MS_ERR_MIKEY_REPLAY);   /* below */
    CHECK_ERR(ms_replay_cache_check(rc, 0, dg(5)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, 11, dg(11)), MS_OK);              /* above */
    CHECK_ERR(ms_replay_cache_check(rc, 20, dg(20)), MS_ERR_MIKEY_REPLAY); /* kept */
    CHECK_ERR(ms_replay_cache_check(rc, 20, dg(21)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 40, dg(40)), MS_ERR_MIKEY_REPLAY);
    /* Next eviction (20) raises the floor to 20. */
    CHECK_ERR(ms_replay_cache_add(rc, 25, dg(25), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 20, dg(20)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, 15, dg(15)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, 21, dg(21)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 25, dg(25)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, 30, dg(30)), MS_ERR_MIKEY_REPLAY);
    /* Adding at or below the floor is refused as a replay. */
    CHECK_ERR(ms_replay_cache_add(rc, 20, dg(77), 0), MS_ERR_MIKEY_REPLAY);
    /* A new message older than everything held, with the cache full: it evicts the
     * oldest (25), the floor rises over it, so it is covered by the floor and the
     * newer entries stay. */
    CHECK_ERR(ms_replay_cache_add(rc, 22, dg(22), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 22, dg(22)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, 25, dg(26)), MS_ERR_MIKEY_REPLAY); /* floor 25 */
    CHECK_ERR(ms_replay_cache_check(rc, 26, dg(26)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 30, dg(30)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, 40, dg(40)), MS_ERR_MIKEY_REPLAY);
    /* 30 and 40 are held: 50 takes the free slot, 60 then evicts 30. */
    CHECK_ERR(ms_replay_cache_add(rc, 50, dg(50), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 26, dg(26)), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, 60, dg(60), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 26, dg(26)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, 31, dg(31)), MS_OK);
    ms_replay_cache_free(rc);
}

static void test_expiry(void)
{
    ms_replay_cache *rc = NULL;
    CHECK_ERR(ms_replay_cache_new(&rc, 3), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, 10, dg(10), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, 20, dg(20), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, 30, dg(30), 0), MS_OK);
    /* expire_before 21 drops 10 and 20 (strictly older), so 40 needs no eviction. */
    CHECK_ERR(ms_replay_cache_add(rc, 40, dg(40), 21), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 10, dg(10)), MS_OK); /* dropped, no floor */
    CHECK_ERR(ms_replay_cache_check(rc, 20, dg(20)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 30, dg(30)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, 40, dg(40)), MS_ERR_MIKEY_REPLAY);
    /* One slot left: 50 fits without raising a floor. */
    CHECK_ERR(ms_replay_cache_add(rc, 50, dg(50), 21), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 25, dg(25)), MS_OK);
    /* An entry exactly at expire_before stays. */
    CHECK_ERR(ms_replay_cache_add(rc, 60, dg(60), 30), MS_OK); /* full: evicts 30 */
    CHECK_ERR(ms_replay_cache_check(rc, 25, dg(25)), MS_ERR_MIKEY_REPLAY);
    ms_replay_cache_free(rc);

    CHECK_ERR(ms_replay_cache_new(&rc, 2), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, 30, dg(30), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, 31, dg(31), 30), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 30, dg(30)), MS_ERR_MIKEY_REPLAY); /* 30 !< 30 */
    /* A message already older than expire_before is not recorded. */
    CHECK_ERR(ms_replay_cache_add(rc, 5, dg(5), 10), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 5, dg(5)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 31, dg(31)), MS_ERR_MIKEY_REPLAY);
    ms_replay_cache_free(rc);
}

/* Random adds and checks against a model: a message is a replay iff it is held, or at
 * or below the floor. The model keeps everything and the floor separately. */
static void test_model(void)
{
    enum { CAP = 16, OPS = 4000 };
    typedef struct { uint64_t t; unsigned id; bool held; } rec;
    static rec model[OPS];
    size_t n_model = 0, held = 0;
    bool has_floor = false;
    uint64_t floor = 0, expire = 0;
    ms_replay_cache *rc = NULL;
    CHECK_ERR(ms_replay_cache_new(&rc, CAP), MS_OK);
    int mismatches = 0;
    for (unsigned op = 0; op < OPS; op++) {
        uint64_t r = ms_test_random_u64();
        uint64_t t = op / 2 + r % 40; /* timestamps drift upwards, with jitter */
        unsigned id = (unsigned)(r >> 32) % 8;
        bool want_replay = has_floor && t <= floor;
        for (size_t i = 0; i < n_model && !want_replay; i++)
            if (model[i].held && model[i].t == t && model[i].id == id)
                want_replay = true;
        ms_err got = ms_replay_cache_check(rc, t, dg(id));
        if (got != (want_replay ? MS_ERR_MIKEY_REPLAY : MS_OK))
            mismatches++;
        if (want_replay || (r >> 40) % 4 == 0)
            continue;
        if ((r >> 44) % 8 == 0)
            expire = (op / 2 > 30 ? op / 2 - 30 : 0) + (r >> 48) % 45; /* may pass t */
        /* Apply the rules to the model. */
        for (size_t i = 0; i < n_model; i++)
            if (model[i].held && model[i].t < expire) {
                model[i].held = false;
                held--;
            }
        if (ms_replay_cache_add(rc, t, dg(id), expire) != MS_OK)
            mismatches++;
        if (t < expire)
            continue;
        if (held == CAP) {
            size_t oldest = SIZE_MAX;
            for (size_t i = 0; i < n_model; i++)
                if (model[i].held && (oldest == SIZE_MAX || model[i].t < model[oldest].t))
                    oldest = i;
            if (!has_floor || model[oldest].t > floor)
                floor = model[oldest].t;
            has_floor = true;
            model[oldest].held = false;
            held--;
            if (t <= floor)
                continue;
        }
        model[n_model++] = (rec){t, id, true};
        held++;
    }
    CHECK(mismatches == 0);
    CHECK(has_floor); /* the run did exercise eviction */
    ms_replay_cache_free(rc);
}

static void test_errors(void)
{
    ms_replay_cache *rc = (ms_replay_cache *)1;
    CHECK_ERR(ms_replay_cache_new(&rc, 0), MS_ERR_ARG);
    CHECK(rc == NULL);
    CHECK_ERR(ms_replay_cache_new(NULL, 4), MS_ERR_ARG);
    CHECK_ERR(ms_replay_cache_new(&rc, SIZE_MAX), MS_ERR_ARG);
    CHECK_ERR(ms_replay_cache_new(&rc, 1), MS_OK);
    CHECK_ERR(ms_replay_cache_check(NULL, 1, dg(1)), MS_ERR_ARG);
    CHECK_ERR(ms_replay_cache_check(rc, 1, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_replay_cache_add(NULL, 1, dg(1), 0), MS_ERR_ARG);
    CHECK_ERR(ms_replay_cache_add(rc, 1, NULL, 0), MS_ERR_ARG);
    /* Capacity 1: each add evicts the previous one. */
    CHECK_ERR(ms_replay_cache_add(rc, 7, dg(7), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, 8, dg(8), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, 7, dg(70)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, 8, dg(8)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, 8, dg(80)), MS_OK);
    ms_replay_cache_free(rc);
    ms_replay_cache_free(NULL);
}

int main(void)
{
    ms_test_seed();
    test_basic();
    test_eviction_floor();
    test_expiry();
    test_model();
    test_errors();
    return ms_test_finish();
}
