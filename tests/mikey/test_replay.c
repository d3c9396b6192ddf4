/*
 * Replay cache: a recorded (sender, timestamp, digest) is a replay and nothing else is;
 * check records nothing; eviction of a sender's oldest entry raises that sender's floor
 * at or below which its messages are replays; a sender at its quota evicts only its own
 * entries, a full cache evicts from the sender holding the most, so one sender's flood
 * never refuses another's message; a common floor only when every entry is another
 * sender's; expire_before drops old entries (and does not raise a floor); a randomised
 * run with several senders against a simple model of those rules; argument errors.
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

/* A sender named by a small number (its first octet, so the octet order is the number
 * order, as the tie rule of eviction reads it). */
static const uint8_t *who(unsigned n)
{
    static uint8_t w[4][32];
    static int slot;
    uint8_t *p = w[slot++ & 3];
    memset(p, 0x5A, 32);
    p[0] = (uint8_t)n;
    return p;
}
#define S who(1)

static void test_basic(void)
{
    ms_replay_cache *rc = NULL;
    CHECK_ERR(ms_replay_cache_new(&rc, 8, 8), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 100, dg(1)), MS_OK);
    /* check records nothing */
    CHECK_ERR(ms_replay_cache_check(rc, S, 100, dg(1)), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, S, 100, dg(1), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 100, dg(1)), MS_ERR_MIKEY_REPLAY);
    /* Same time, other message; same message, other time: not replays. */
    CHECK_ERR(ms_replay_cache_check(rc, S, 100, dg(2)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 101, dg(1)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 99, dg(1)), MS_OK);
    /* A digest differing in its first or last octet only is another message. */
    uint8_t d[32];
    memcpy(d, dg(1), 32);
    d[0] ^= 1;
    CHECK_ERR(ms_replay_cache_check(rc, S, 100, d), MS_OK);
    memcpy(d, dg(1), 32);
    d[31] ^= 0x80;
    CHECK_ERR(ms_replay_cache_check(rc, S, 100, d), MS_OK);
    memcpy(d, dg(1), 32);
    d[16] ^= 0x01;
    CHECK_ERR(ms_replay_cache_check(rc, S, 100, d), MS_OK);
    /* Adding the same message again says it is a replay. */
    CHECK_ERR(ms_replay_cache_add(rc, S, 100, dg(1), 0), MS_ERR_MIKEY_REPLAY);
    /* Nothing is evicted below capacity: older unseen messages still pass. */
    for (unsigned i = 2; i <= 8; i++)
        CHECK_ERR(ms_replay_cache_add(rc, S, 100 + i, dg(i), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 50, dg(50)), MS_OK);
    for (unsigned i = 2; i <= 8; i++)
        CHECK_ERR(ms_replay_cache_check(rc, S, 100 + i, dg(i)), MS_ERR_MIKEY_REPLAY);
    ms_replay_cache_free(rc);
}

static void test_eviction_floor(void)
{
    ms_replay_cache *rc = NULL;
    CHECK_ERR(ms_replay_cache_new(&rc, 3, 3), MS_OK);
    /* Out of order on purpose: the oldest is the smallest timestamp, not the first in. */
    CHECK_ERR(ms_replay_cache_add(rc, S, 20, dg(20), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, S, 10, dg(10), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, S, 30, dg(30), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 5, dg(5)), MS_OK); /* no floor yet */
    /* Full: adding 40 evicts 10; the floor becomes 10. */
    CHECK_ERR(ms_replay_cache_add(rc, S, 40, dg(40), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 10, dg(10)), MS_ERR_MIKEY_REPLAY); /* evicted */
    CHECK_ERR(ms_replay_cache_check(rc, S, 10, dg(99)), MS_ERR_MIKEY_REPLAY); /* at floor */
    CHECK_ERR(ms_replay_cache_check(rc, S, 5, dg(5)), MS_ERR_MIKEY_REPLAY);   /* below */
    CHECK_ERR(ms_replay_cache_check(rc, S, 0, dg(5)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, S, 11, dg(11)), MS_OK);              /* above */
    CHECK_ERR(ms_replay_cache_check(rc, S, 20, dg(20)), MS_ERR_MIKEY_REPLAY); /* kept */
    CHECK_ERR(ms_replay_cache_check(rc, S, 20, dg(21)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 40, dg(40)), MS_ERR_MIKEY_REPLAY);
    /* Next eviction (20) raises the floor to 20. */
    CHECK_ERR(ms_replay_cache_add(rc, S, 25, dg(25), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 20, dg(20)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, S, 15, dg(15)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, S, 21, dg(21)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 25, dg(25)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, S, 30, dg(30)), MS_ERR_MIKEY_REPLAY);
    /* Adding at or below the floor is refused as a replay. */
    CHECK_ERR(ms_replay_cache_add(rc, S, 20, dg(77), 0), MS_ERR_MIKEY_REPLAY);
    /* A new message older than everything held, with the cache full: evicting the
     * oldest (25) would keep the older message, so nothing is evicted; the floor rises
     * to the new message instead, which needs no slot. */
    CHECK_ERR(ms_replay_cache_add(rc, S, 22, dg(22), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 22, dg(22)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, S, 22, dg(23)), MS_ERR_MIKEY_REPLAY); /* floor 22 */
    CHECK_ERR(ms_replay_cache_check(rc, S, 23, dg(23)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 25, dg(25)), MS_ERR_MIKEY_REPLAY); /* kept */
    CHECK_ERR(ms_replay_cache_check(rc, S, 25, dg(26)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 30, dg(30)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, S, 40, dg(40)), MS_ERR_MIKEY_REPLAY);
    /* 25, 30 and 40 are held: 50 evicts 25, 60 then evicts 30. */
    CHECK_ERR(ms_replay_cache_add(rc, S, 50, dg(50), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 25, dg(26)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, S, 26, dg(26)), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, S, 60, dg(60), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 26, dg(26)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, S, 31, dg(31)), MS_OK);
    ms_replay_cache_free(rc);
}

static void test_expiry(void)
{
    ms_replay_cache *rc = NULL;
    CHECK_ERR(ms_replay_cache_new(&rc, 3, 3), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, S, 10, dg(10), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, S, 20, dg(20), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, S, 30, dg(30), 0), MS_OK);
    /* expire_before 21 drops 10 and 20 (strictly older), so 40 needs no eviction. */
    CHECK_ERR(ms_replay_cache_add(rc, S, 40, dg(40), 21), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 10, dg(10)), MS_OK); /* dropped, no floor */
    CHECK_ERR(ms_replay_cache_check(rc, S, 20, dg(20)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 30, dg(30)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, S, 40, dg(40)), MS_ERR_MIKEY_REPLAY);
    /* One slot left: 50 fits without raising a floor. */
    CHECK_ERR(ms_replay_cache_add(rc, S, 50, dg(50), 21), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 25, dg(25)), MS_OK);
    /* An entry exactly at expire_before stays. */
    CHECK_ERR(ms_replay_cache_add(rc, S, 60, dg(60), 30), MS_OK); /* full: evicts 30 */
    CHECK_ERR(ms_replay_cache_check(rc, S, 25, dg(25)), MS_ERR_MIKEY_REPLAY);
    ms_replay_cache_free(rc);

    CHECK_ERR(ms_replay_cache_new(&rc, 2, 2), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, S, 30, dg(30), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, S, 31, dg(31), 30), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 30, dg(30)), MS_ERR_MIKEY_REPLAY); /* 30 !< 30 */
    /* A message already older than expire_before is not recorded. */
    CHECK_ERR(ms_replay_cache_add(rc, S, 5, dg(5), 10), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 5, dg(5)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 31, dg(31)), MS_ERR_MIKEY_REPLAY);
    ms_replay_cache_free(rc);
}

/* Several senders: sender 1 floods up to its quota, senders 2 and 3 send a few messages
 * each, with older timestamps than the flood. Nothing of theirs is ever refused, and
 * every message anybody sent is still refused when played again. */
static void test_flood_costs_only_the_flooder(void)
{
    ms_replay_cache *rc = NULL;
    CHECK_ERR(ms_replay_cache_new(&rc, 8, 4), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, who(2), 100, dg(1), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, who(3), 101, dg(2), 0), MS_OK);
    /* Sender 1: 50 messages dated ahead of everybody. Its quota is 4, so it keeps
     * recycling its own 4 slots and raising its own floor. */
    for (unsigned i = 0; i < 50; i++)
        CHECK_ERR(ms_replay_cache_add(rc, who(1), 400 + i, dg(100 + i), 0), MS_OK);
    /* The others' messages are still held (replays refused) and their floors untouched:
     * an unseen message of theirs older than the flood is accepted. */
    CHECK_ERR(ms_replay_cache_check(rc, who(2), 100, dg(1)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, who(3), 101, dg(2)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, who(2), 102, dg(3)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, who(4), 99, dg(4)), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, who(2), 102, dg(3), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, who(4), 99, dg(4), 0), MS_OK);
    /* The flooder pays: its evicted messages are replays, so is anything of it no newer
     * than the last one evicted (445), and its 4 newest are held. */
    CHECK_ERR(ms_replay_cache_check(rc, who(1), 400, dg(100)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, who(1), 445, dg(7)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, who(1), 449, dg(149)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, who(1), 446, dg(7)), MS_OK);
    /* Its floor is its own: another sender at the same time is not refused. */
    CHECK_ERR(ms_replay_cache_check(rc, who(2), 445, dg(7)), MS_OK);
    /* Without a sender (not known yet) only exact (timestamp, digest) matches count. */
    CHECK_ERR(ms_replay_cache_check(rc, NULL, 445, dg(7)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, NULL, 100, dg(1)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, NULL, 449, dg(149)), MS_ERR_MIKEY_REPLAY);
    /* A held message under another sender's name is not that sender's. */
    CHECK_ERR(ms_replay_cache_check(rc, who(3), 100, dg(1)), MS_OK);
    ms_replay_cache_free(rc);
}

/* The whole cache full (many senders under quota): the sender holding the most gives up
 * its oldest entry, not whoever holds the oldest timestamp. */
static void test_full_evicts_the_largest(void)
{
    ms_replay_cache *rc = NULL;
    CHECK_ERR(ms_replay_cache_new(&rc, 6, 6), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, who(2), 10, dg(10), 0), MS_OK); /* oldest of all */
    CHECK_ERR(ms_replay_cache_add(rc, who(3), 11, dg(11), 0), MS_OK);
    for (unsigned i = 0; i < 4; i++)
        CHECK_ERR(ms_replay_cache_add(rc, who(1), 50 + 2 * i, dg(50 + 2 * i), 0), MS_OK);
    /* Full. Sender 4's first message evicts sender 1's oldest (50). */
    CHECK_ERR(ms_replay_cache_add(rc, who(4), 20, dg(20), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, who(2), 10, dg(10)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, who(2), 9, dg(9)), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, who(1), 50, dg(99)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, who(1), 52, dg(52)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, who(1), 51, dg(99)), MS_OK);
    /* Sender 1 (3 held) is still the largest: a message of its own older than all it
     * holds raises its floor instead of evicting. */
    CHECK_ERR(ms_replay_cache_add(rc, who(1), 51, dg(51), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, who(1), 51, dg(99)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, who(1), 52, dg(52)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, who(1), 52, dg(99)), MS_OK);
    /* A tie (2 and 2) goes to the lowest sender: 1 before 2. */
    CHECK_ERR(ms_replay_cache_add(rc, who(2), 12, dg(12), 0), MS_OK); /* evicts 1's 52 */
    CHECK_ERR(ms_replay_cache_check(rc, who(1), 52, dg(98)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, who(1), 53, dg(98)), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, who(5), 30, dg(30), 0), MS_OK); /* 1 pays again */
    CHECK_ERR(ms_replay_cache_check(rc, who(1), 53, dg(97)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, who(2), 10, dg(97)), MS_OK); /* 2 kept no floor */
    ms_replay_cache_free(rc);
}

/* Every entry another sender's only one: the common floor is the fallback. */
static void test_common_floor(void)
{
    ms_replay_cache *rc = NULL;
    CHECK_ERR(ms_replay_cache_new(&rc, 3, 2), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, who(1), 20, dg(20), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, who(2), 10, dg(10), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, who(3), 30, dg(30), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, who(4), 40, dg(40), 0), MS_OK); /* evicts 2's 10 */
    CHECK_ERR(ms_replay_cache_check(rc, who(2), 10, dg(10)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, who(7), 10, dg(77)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, NULL, 10, dg(77)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, who(7), 11, dg(77)), MS_OK);
    /* Older than everything held: covered by the common floor, nothing evicted. */
    CHECK_ERR(ms_replay_cache_add(rc, who(5), 15, dg(15), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, who(7), 15, dg(77)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, who(1), 20, dg(20)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, who(7), 16, dg(77)), MS_OK);
    ms_replay_cache_free(rc);
}

/* Random adds and checks by several senders against a model of the rules: a message is
 * a replay iff it is held for its sender, or at or below its sender's floor or the
 * common floor. The model keeps every record and the floors separately. */
enum { M_CAP = 16, M_QUOTA = 6, M_SENDERS = 5, M_OPS = 6000 };
typedef struct { uint64_t t; unsigned id, sender; bool held; } m_rec;
typedef struct {
    m_rec rec[M_OPS];
    size_t n, held;
    size_t count[M_SENDERS];
    bool has_floor[M_SENDERS], has_common;
    uint64_t floor[M_SENDERS], common;
} m_model;

static void m_raise(bool *has, uint64_t *floor, uint64_t t)
{
    if (!*has || t > *floor)
        *floor = t;
    *has = true;
}

static void m_drop(m_model *m, size_t i)
{
    m->rec[i].held = false;
    m->held--;
    if (--m->count[m->rec[i].sender] == 0)
        m->has_floor[m->rec[i].sender] = false; /* the sender is forgotten */
}

/* The oldest held record of `sender` (M_SENDERS: of anybody). */
static size_t m_oldest(const m_model *m, unsigned sender)
{
    size_t o = SIZE_MAX;
    for (size_t i = 0; i < m->n; i++)
        if (m->rec[i].held && (sender == M_SENDERS || m->rec[i].sender == sender) &&
            (o == SIZE_MAX || m->rec[i].t < m->rec[o].t))
            o = i;
    return o;
}

static bool m_replay(const m_model *m, unsigned sender, uint64_t t, unsigned id)
{
    if ((m->has_common && t <= m->common) || (m->has_floor[sender] && t <= m->floor[sender]))
        return true;
    for (size_t i = 0; i < m->n; i++)
        if (m->rec[i].held && m->rec[i].t == t && m->rec[i].id == id &&
            m->rec[i].sender == sender)
            return true;
    return false;
}

static void m_add(m_model *m, unsigned sender, uint64_t t, unsigned id, uint64_t expire)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->rec[i].held && m->rec[i].t < expire)
            m_drop(m, i);
    if (t < expire)
        return;
    if (m->count[sender] >= M_QUOTA || m->held == M_CAP) {
        unsigned victim = sender;
        if (m->count[sender] < M_QUOTA) {
            victim = 0;
            for (unsigned s = 1; s < M_SENDERS; s++)
                if (m->count[s] > m->count[victim])
                    victim = s;
            if (m->count[victim] < 2)
                victim = M_SENDERS; /* common floor */
        }
        size_t o = m_oldest(m, victim);
        bool *has = victim == M_SENDERS ? &m->has_common : &m->has_floor[victim];
        uint64_t *floor = victim == M_SENDERS ? &m->common : &m->floor[victim];
        if ((victim == sender || victim == M_SENDERS) && t <= m->rec[o].t) {
            m_raise(has, floor, t);
            return;
        }
        m_raise(has, floor, m->rec[o].t);
        m_drop(m, o);
    }
    m->rec[m->n++] = (m_rec){t, id, sender, true};
    m->held++;
    m->count[sender]++;
}

static void test_model(void)
{
    static m_model m;
    memset(&m, 0, sizeof m);
    uint64_t expire = 0;
    ms_replay_cache *rc = NULL;
    CHECK_ERR(ms_replay_cache_new(&rc, M_CAP, M_QUOTA), MS_OK);
    int mismatches = 0;
    bool any_sender_floor = false;
    for (unsigned op = 0; op < M_OPS; op++) {
        uint64_t r = ms_test_random_u64();
        /* sender 0 sends half of everything, dated ahead; the others share the rest */
        unsigned sender = (r >> 56) % 2 == 0 ? 0 : 1 + (unsigned)((r >> 57) % (M_SENDERS - 1));
        uint64_t t = op / 2 + r % 40 + (sender == 0 ? 20 : 0);
        unsigned id = (unsigned)(r >> 32) % 8;
        bool want_replay = m_replay(&m, sender, t, id);
        ms_err got = ms_replay_cache_check(rc, who(sender), t, dg(id));
        if (got != (want_replay ? MS_ERR_MIKEY_REPLAY : MS_OK))
            mismatches++;
        if (want_replay || (r >> 40) % 4 == 0)
            continue;
        if ((r >> 44) % 8 == 0)
            expire = (op / 2 > 30 ? op / 2 - 30 : 0) + (r >> 48) % 45; /* may pass t */
        if (ms_replay_cache_add(rc, who(sender), t, dg(id), expire) != MS_OK)
            mismatches++;
        m_add(&m, sender, t, id, expire);
        for (unsigned s = 0; s < M_SENDERS; s++)
            any_sender_floor = any_sender_floor || m.has_floor[s];
    }
    CHECK(mismatches == 0);
    CHECK(any_sender_floor); /* the run did exercise eviction */
    ms_replay_cache_free(rc);
}

static void test_errors(void)
{
    ms_replay_cache *rc = (ms_replay_cache *)1;
    CHECK_ERR(ms_replay_cache_new(&rc, 0, 0), MS_ERR_ARG);
    CHECK(rc == NULL);
    CHECK_ERR(ms_replay_cache_new(NULL, 4, 4), MS_ERR_ARG);
    CHECK_ERR(ms_replay_cache_new(&rc, 4, 0), MS_ERR_ARG);
    CHECK_ERR(ms_replay_cache_new(&rc, 4, 5), MS_ERR_ARG); /* quota above the capacity */
    CHECK_ERR(ms_replay_cache_new(&rc, SIZE_MAX, SIZE_MAX), MS_ERR_ARG);
    CHECK_ERR(ms_replay_cache_new(&rc, 1, 1), MS_OK);
    CHECK_ERR(ms_replay_cache_check(NULL, S, 1, dg(1)), MS_ERR_ARG);
    CHECK_ERR(ms_replay_cache_check(rc, S, 1, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_replay_cache_add(NULL, S, 1, dg(1), 0), MS_ERR_ARG);
    CHECK_ERR(ms_replay_cache_add(rc, NULL, 1, dg(1), 0), MS_ERR_ARG);
    CHECK_ERR(ms_replay_cache_add(rc, S, 1, NULL, 0), MS_ERR_ARG);
    /* Capacity 1: each add evicts the previous one. */
    CHECK_ERR(ms_replay_cache_add(rc, S, 7, dg(7), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_add(rc, S, 8, dg(8), 0), MS_OK);
    CHECK_ERR(ms_replay_cache_check(rc, S, 7, dg(70)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, S, 8, dg(8)), MS_ERR_MIKEY_REPLAY);
    CHECK_ERR(ms_replay_cache_check(rc, S, 8, dg(80)), MS_OK);
    ms_replay_cache_free(rc);
    ms_replay_cache_free(NULL);
}

int main(void)
{
    ms_test_seed();
    test_basic();
    test_eviction_floor();
    test_expiry();
    test_flood_costs_only_the_flooder();
    test_full_evicts_the_largest();
    test_common_floor();
    test_model();
    test_errors();
    return ms_test_finish();
}
