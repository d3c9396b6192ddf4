/* Proactive share refresh, in process, at (3,1) and (5,2): after a refresh every t+1
 * servers' new shares give the same z and KSAK as before (and Z, KPAK are unchanged), the
 * public key shares match the new shares, an old share does not combine with new ones; a
 * dealer sending a bad share is complained about and excluded, or corrected when it
 * answers; a dealer whose constant term is not 0 is caught whether it commits to it or
 * hides it; a batch made before a refresh still issues valid keys, and so does one made
 * after it; argument and order checks. */
#include <string.h>

#include "driver.h"
#include "threshold/refresh_test.h"

static ms_err r_bcast(void *o, unsigned r, uint8_t *out, size_t cap, size_t *len)
{
    return ms_tkms_refresh_broadcast(o, r, out, cap, len);
}
static ms_err r_priv(void *o, unsigned r, unsigned to, uint8_t *out, size_t cap, size_t *len)
{
    (void)r;
    return ms_tkms_refresh_private(o, to, out, cap, len);
}
static int r_has_priv(unsigned r)
{
    return r == 1;
}
static ms_err r_recv(void *o, unsigned r, unsigned from, const uint8_t *msg, size_t len,
                     const uint8_t *priv, size_t plen)
{
    return ms_tkms_refresh_receive(o, r, from, msg, len, priv, plen);
}
static ms_err r_end(void *o, unsigned r, char *d, size_t cap)
{
    return ms_tkms_refresh_end_round(o, r, d, cap);
}
static const tk_ops refresh_ops = {MS_TKMS_REFRESH_ROUNDS, r_bcast, r_priv, r_has_priv, r_recv,
                                   r_end};

typedef struct snapshot {
    tsc z[MS_TKMS_MAX_N], k[MS_TKMS_MAX_N];
    ms_tkms_public pub;
} snapshot;

static void take(snapshot *sn, ms_tkms_server **sv, unsigned n, unsigned ref)
{
    for (unsigned i = 0; i < n; i++) {
        sn->z[i] = sv[i]->z_j;
        sn->k[i] = sv[i]->ksak_j;
    }
    CHECK_ERR(ms_tkms_server_public(sv[ref], &sn->pub), MS_OK);
}

/* The secrets behind the shares of servers `set` (bit i-1), as points. */
static void secret_of(const snapshot *sn, uint32_t set, unsigned n, uint8_t Z[257], uint8_t K[65],
                      const snapshot *other, unsigned from_other)
{
    unsigned ids[MS_TKMS_MAX_N], m = 0;
    tsc zs[MS_TKMS_MAX_N], ks[MS_TKMS_MAX_N], z, k;
    for (unsigned j = 1; j <= n; j++)
        if (set & (1u << (j - 1))) {
            const snapshot *src = j == from_other ? other : sn;
            zs[m] = src->z[j - 1];
            ks[m] = src->k[j - 1];
            ids[m++] = j;
        }
    tk_combine0(&z, zs, ids, m, &tg_sakke);
    tk_combine0(&k, ks, ids, m, &tg_p256);
    CHECK_ERR(tg_mul_gen(&tg_sakke, Z, &z), MS_OK);
    CHECK_ERR(tg_mul_gen(&tg_p256, K, &k), MS_OK);
}

/* One refresh of the n servers; cheat[i] is server i+1's behaviour. */
static ms_err refresh(ms_tkms_server **sv, unsigned n, unsigned t, const int *cheat,
                      uint32_t *qual, uint32_t *complaints_of_last)
{
    ms_tkms_refresh *rf[MS_TKMS_MAX_N] = {0};
    ms_err err = MS_OK;
    for (unsigned i = 0; i < n && err == MS_OK; i++) {
        err = ms_tkms_refresh_new(&rf[i], sv[i]);
        if (err == MS_OK && cheat != NULL)
            tkms_refresh_test_cheat(rf[i], cheat[i]);
    }
    if (err == MS_OK)
        err = tk_run(&refresh_ops, (void **)rf, n, (1u << n) - 1, ms_tkms_refresh_msg_max(n, t),
                     NULL, NULL, NULL);
    if (err == MS_OK) {
        /* every honest server reached the same qualified set and public result (a cheater
         * keeps its own view) */
        unsigned ref = 0;
        while (cheat != NULL && cheat[ref] != TKMS_REFRESH_TEST_HONEST)
            ref++;
        *qual = ms_tkms_refresh_qualified(rf[ref]);
        for (unsigned i = 0; i < n; i++)
            if (cheat == NULL || cheat[i] == TKMS_REFRESH_TEST_HONEST)
                CHECK(ms_tkms_refresh_qualified(rf[i]) == *qual);
        if (complaints_of_last != NULL)
            *complaints_of_last = ms_tkms_refresh_complaints(rf[n - 1]);
        ms_tkms_public a, b;
        CHECK_ERR(ms_tkms_refresh_public(rf[ref], &a), MS_OK);
        for (unsigned i = 0; i < n; i++) {
            if (cheat != NULL && cheat[i] != TKMS_REFRESH_TEST_HONEST)
                continue;
            CHECK_ERR(ms_tkms_refresh_public(rf[i], &b), MS_OK);
            CHECK(memcmp(&a, &b, sizeof a) == 0);
        }
        for (unsigned i = 0; i < n && err == MS_OK; i++)
            err = ms_tkms_refresh_apply(rf[i]);
    }
    for (unsigned i = 0; i < n; i++)
        ms_tkms_refresh_free(rf[i]);
    return err;
}

/* After a refresh: same Z, KPAK; every t+1 new shares give them, t do not; the public key
 * shares are the new shares'; an old share mixed with new ones gives something else. */
static void check_refreshed(const snapshot *before, const snapshot *after, unsigned n,
                            unsigned t, uint32_t honest)
{
    CHECK_MEM(after->pub.Z, before->pub.Z, 257);
    CHECK_MEM(after->pub.kpak, before->pub.kpak, 65);
    CHECK(after->pub.qual == before->pub.qual);
    for (unsigned j = 1; j <= n; j++) {
        uint8_t pt[257];
        if (!(honest & (1u << (j - 1))))
            continue;
        CHECK(!tsc_eq(&after->z[j - 1], &before->z[j - 1]));
        CHECK(!tsc_eq(&after->k[j - 1], &before->k[j - 1]));
        CHECK_ERR(tg_mul_gen(&tg_sakke, pt, &after->z[j - 1]), MS_OK);
        CHECK_MEM(pt, after->pub.Zj[j - 1], 257);
        CHECK(memcmp(after->pub.Zj[j - 1], before->pub.Zj[j - 1], 257) != 0);
        CHECK_ERR(tg_mul_gen(&tg_p256, pt, &after->k[j - 1]), MS_OK);
        CHECK_MEM(pt, after->pub.kpakj[j - 1], 65);
    }
    unsigned subsets = 0;
    for (uint32_t set = 1; set < (1u << n); set++) {
        unsigned m = 0;
        for (unsigned j = 0; j < n; j++)
            m += (set >> j) & 1;
        if ((m != t + 1 && m != t) || (set & ~honest) != 0)
            continue;
        uint8_t Z[257], K[65];
        secret_of(after, set, n, Z, K, NULL, 0);
        if (m == t + 1) {
            subsets++;
            CHECK_MEM(Z, before->pub.Z, 257);
            CHECK_MEM(K, before->pub.kpak, 65);
            /* the same servers' old shares give the same secrets */
            secret_of(before, set, n, Z, K, NULL, 0);
            CHECK_MEM(Z, before->pub.Z, 257);
            /* server 1's old share with the others' new ones does not */
            if (set & 1u) {
                secret_of(after, set, n, Z, K, before, 1);
                CHECK(memcmp(Z, before->pub.Z, 257) != 0);
                CHECK(memcmp(K, before->pub.kpak, 65) != 0);
            }
        } else {
            CHECK(memcmp(Z, before->pub.Z, 257) != 0);
        }
    }
    CHECK(subsets > 0);
}

static void honest(unsigned n, unsigned t)
{
    ms_tkms_server *sv[MS_TKMS_MAX_N] = {0};
    CHECK_ERR(tk_dkg(sv, n, t, NULL, NULL), MS_OK);
    snapshot *s0 = calloc(1, sizeof *s0), *s1 = calloc(1, sizeof *s1), *s2 = calloc(1, sizeof *s2);
    take(s0, sv, n, 0);
    uint32_t qual = 0;
    CHECK_ERR(refresh(sv, n, t, NULL, &qual, NULL), MS_OK);
    CHECK(qual == (1u << n) - 1);
    take(s1, sv, n, 0);
    check_refreshed(s0, s1, n, t, (1u << n) - 1);
    /* a second refresh: still the same secrets, shares of three epochs all differ */
    CHECK_ERR(refresh(sv, n, t, NULL, &qual, NULL), MS_OK);
    take(s2, sv, n, 0);
    check_refreshed(s1, s2, n, t, (1u << n) - 1);
    CHECK(!tsc_eq(&s2->z[0], &s0->z[0]));
    free(s0);
    free(s1);
    free(s2);
    for (unsigned i = 0; i < n; i++)
        ms_tkms_server_free(sv[i]);
}

/* Server `cheater` cheats by `mode`: it is left out, the others' refresh succeeds. */
static void cheating(unsigned n, unsigned t, unsigned cheater, int mode, int complained)
{
    ms_tkms_server *sv[MS_TKMS_MAX_N] = {0};
    CHECK_ERR(tk_dkg(sv, n, t, NULL, NULL), MS_OK);
    snapshot *s0 = calloc(1, sizeof *s0), *s1 = calloc(1, sizeof *s1);
    take(s0, sv, n, 0);
    int cheat[MS_TKMS_MAX_N] = {0};
    cheat[cheater - 1] = mode;
    uint32_t qual = 0, last = 0;
    CHECK_ERR(refresh(sv, n, t, cheat, &qual, &last), MS_OK);
    CHECK(qual == (((1u << n) - 1) & ~(1u << (cheater - 1))));
    /* the last server (the bad share's victim) complained about the cheater exactly
     * when the shares did not match */
    CHECK(((last >> (cheater - 1)) & 1u) == (unsigned)complained);
    /* an excluded dealer still refreshes its own share (it took the others'); one that
     * answered wrongly counts itself in and holds a share of its own view: left out */
    uint32_t honest = (1u << n) - 1;
    if (mode == TKMS_REFRESH_TEST_BAD_SHARE)
        honest &= ~(1u << (cheater - 1));
    take(s1, sv, n, cheater == 1 ? 1 : 0);
    check_refreshed(s0, s1, n, t, honest);
    free(s0);
    free(s1);
    for (unsigned i = 0; i < n; i++)
        ms_tkms_server_free(sv[i]);
}

/* A dealer whose share to one server is wrong but whose public answer is right stays
 * qualified, and its complainer's new share is the answered one. */
static int answered_tamper_done;
static void tamper_first_share(unsigned round, unsigned from, unsigned to, uint8_t *msg,
                               size_t len, uint8_t *priv, size_t priv_len, void *ctx)
{
    (void)msg;
    (void)len;
    (void)ctx;
    if (round == 1 && from == 2 && to == 3 && priv != NULL && priv_len > 40) {
        priv[40] ^= 0x01; /* inside the SAKKE share: still below q, now wrong */
        answered_tamper_done = 1;
    }
}

static void answered_complaint(void)
{
    const unsigned n = 3, t = 1;
    ms_tkms_server *sv[3] = {0};
    ms_tkms_refresh *rf[3] = {0};
    CHECK_ERR(tk_dkg(sv, n, t, NULL, NULL), MS_OK);
    snapshot *s0 = calloc(1, sizeof *s0), *s1 = calloc(1, sizeof *s1);
    take(s0, sv, n, 0);
    for (unsigned i = 0; i < n; i++)
        CHECK_ERR(ms_tkms_refresh_new(&rf[i], sv[i]), MS_OK);
    CHECK_ERR(tk_run(&refresh_ops, (void **)rf, n, 7, ms_tkms_refresh_msg_max(n, t),
                     tamper_first_share, NULL, NULL),
              MS_OK);
    CHECK(answered_tamper_done);
    CHECK(ms_tkms_refresh_complaints(rf[2]) == 2u); /* server 3 complained about 2 */
    CHECK(ms_tkms_refresh_complaints(rf[0]) == 0u);
    for (unsigned i = 0; i < n; i++) {
        CHECK(ms_tkms_refresh_qualified(rf[i]) == 7u);
        CHECK_ERR(ms_tkms_refresh_apply(rf[i]), MS_OK);
        CHECK_ERR(ms_tkms_refresh_apply(rf[i]), MS_ERR_ARG); /* once only */
        ms_tkms_refresh_free(rf[i]);
    }
    take(s1, sv, n, 0);
    check_refreshed(s0, s1, n, t, 7);
    free(s0);
    free(s1);
    for (unsigned i = 0; i < n; i++)
        ms_tkms_server_free(sv[i]);
}

/* Too many cheaters at (3,1): two of three dealers excluded leaves fewer than t+1. */
static void too_few_qualified(void)
{
    ms_tkms_server *sv[3] = {0};
    CHECK_ERR(tk_dkg(sv, 3, 1, NULL, NULL), MS_OK);
    int cheat[3] = {TKMS_REFRESH_TEST_NONZERO_OPEN, TKMS_REFRESH_TEST_NONZERO_HIDDEN, 0};
    uint8_t before[MS_SAKKE_SECRET_BYTES], after[MS_SAKKE_SECRET_BYTES],
        kb[MS_ECCSI_SCALAR_BYTES];
    tkms_share_bytes(sv[2], before, kb);
    uint32_t qual = 0;
    CHECK_ERR(refresh(sv, 3, 1, cheat, &qual, NULL), MS_ERR_THRESHOLD_SHARE);
    CHECK(strstr(tk_last_detail, "qualified set too small") != NULL);
    /* nothing applied */
    tkms_share_bytes(sv[2], after, kb);
    CHECK_MEM(after, before, sizeof before);
    for (unsigned i = 0; i < 3; i++)
        ms_tkms_server_free(sv[i]);
}

/* A batch made before a refresh still issues keys valid under the unchanged Z and KPAK
 * (checked with the refreshed public result); a batch made with the refreshed shares does
 * too. */
static const char ID0[] = "2026-12\0tel:+447700900123";
static const char ID1[] = "2027-01\0tel:+447700900123";

static void batch_combine(ms_tkms_batch **bt, const ms_tkms_public *pub, const char *id,
                          size_t id_len)
{
    ms_tkms_share sh[2];
    ms_tkms_record rec;
    CHECK_ERR(ms_tkms_issue(bt[0], (const uint8_t *)id, id_len, &sh[0], &rec), MS_OK);
    CHECK_ERR(ms_tkms_issue(bt[2], (const uint8_t *)id, id_len, &sh[1], &rec), MS_OK);
    uint8_t rsk[257], ssk[32], pvt[65];
    unsigned cheater = 99;
    char detail[200];
    CHECK_ERR(ms_tkms_combine(pub, (const uint8_t *)id, id_len, &rec, sh, 2, rsk, ssk, pvt,
                              &cheater, detail, sizeof detail),
              MS_OK);
}

static ms_err batch(ms_tkms_server **sv, ms_tkms_batch **bt, const char *id, size_t id_len)
{
    const uint8_t *ids[1] = {(const uint8_t *)id};
    size_t lens[1] = {id_len};
    char detail[200];
    for (unsigned i = 0; i < 3; i++) {
        ms_err err = ms_tkms_batch_new(&bt[i], sv[i], ids, lens, 1, 7, detail, sizeof detail);
        if (err != MS_OK)
            return err;
    }
    return tk_run(&tk_batch_ops, (void **)bt, 3, 7, ms_tkms_msg_max(3, 1, 1), NULL, NULL, NULL);
}

static void batches_across_refresh(void)
{
    ms_tkms_server *sv[3] = {0};
    ms_tkms_batch *old[3] = {0}, *fresh[3] = {0};
    CHECK_ERR(tk_dkg(sv, 3, 1, NULL, NULL), MS_OK);
    CHECK_ERR(batch(sv, old, ID0, sizeof ID0), MS_OK);
    /* the old batches' slots are copied out as the node does (batch files), then refresh */
    ms_tkms_public pub;
    uint32_t qual = 0;
    CHECK_ERR(refresh(sv, 3, 1, NULL, &qual, NULL), MS_OK);
    CHECK_ERR(ms_tkms_server_public(sv[1], &pub), MS_OK);
    batch_combine(old, &pub, ID0, sizeof ID0);
    CHECK_ERR(batch(sv, fresh, ID1, sizeof ID1), MS_OK);
    batch_combine(fresh, &pub, ID1, sizeof ID1);
    for (unsigned i = 0; i < 3; i++) {
        ms_tkms_batch_free(old[i]);
        ms_tkms_batch_free(fresh[i]);
        ms_tkms_server_free(sv[i]);
    }
}

static void arguments(void)
{
    ms_tkms_server *s = NULL;
    ms_tkms_refresh *r = NULL;
    CHECK_ERR(ms_tkms_server_new(&s, 3, 1, 1, &ms_test_rng), MS_OK);
    CHECK_ERR(ms_tkms_refresh_new(&r, s), MS_ERR_ARG); /* no key generation yet */
    CHECK(r == NULL);
    CHECK_ERR(ms_tkms_refresh_new(NULL, s), MS_ERR_ARG);
    ms_tkms_server_free(s);

    ms_tkms_server *sv[3] = {0};
    CHECK_ERR(tk_dkg(sv, 3, 1, NULL, NULL), MS_OK);
    CHECK_ERR(ms_tkms_refresh_new(&r, sv[0]), MS_OK);
    size_t cap = ms_tkms_refresh_msg_max(3, 1), len = 0;
    uint8_t *buf = malloc(cap);
    ms_tkms_public pub;
    CHECK_ERR(ms_tkms_refresh_broadcast(r, 2, buf, cap, &len), MS_ERR_ARG); /* out of order */
    CHECK_ERR(ms_tkms_refresh_broadcast(r, 1, buf, cap - 1, &len), MS_ERR_BUFFER_TOO_SMALL);
    CHECK_ERR(ms_tkms_refresh_private(r, 1, buf, cap, &len), MS_ERR_ARG); /* to itself */
    CHECK_ERR(ms_tkms_refresh_private(r, 4, buf, cap, &len), MS_ERR_ARG);
    CHECK_ERR(ms_tkms_refresh_public(r, &pub), MS_ERR_ARG);
    CHECK_ERR(ms_tkms_refresh_apply(r), MS_ERR_ARG);
    CHECK_ERR(ms_tkms_refresh_end_round(r, 2, NULL, 0), MS_ERR_ARG);
    /* a well-formed round-1 broadcast of itself, replayed as server 2's: refused */
    CHECK_ERR(ms_tkms_refresh_broadcast(r, 1, buf, cap, &len), MS_OK);
    CHECK_ERR(ms_tkms_refresh_receive(r, 1, 2, buf, len, NULL, 0), MS_ERR_BAD_ENCODING);
    /* its commitments with the sender byte fixed but no private share: absent sender */
    buf[1] = 2;
    CHECK_ERR(ms_tkms_refresh_receive(r, 1, 2, buf, len, NULL, 0), MS_ERR_BAD_ENCODING);
    CHECK_ERR(ms_tkms_refresh_receive(r, 1, 2, buf, len - 1, NULL, 0), MS_ERR_BAD_ENCODING);
    CHECK_ERR(ms_tkms_refresh_receive(r, 1, 1, buf, len, NULL, 0), MS_ERR_ARG);
    /* the constant-0 commitment is the point at infinity in the broadcast */
    uint8_t inf[257] = {0};
    CHECK_ERR(ms_tkms_refresh_broadcast(r, 1, buf, cap, &len), MS_OK);
    CHECK_MEM(buf + 2, inf, 257);
    CHECK_MEM(buf + 2 + 2 * 257, inf, 65);
    CHECK(memcmp(buf + 2 + 257, inf, 257) != 0);
    free(buf);
    ms_tkms_refresh_free(r);
    ms_tkms_refresh_free(NULL);
    for (unsigned i = 0; i < 3; i++)
        ms_tkms_server_free(sv[i]);
}

int main(void)
{
    ms_test_seed();
    honest(3, 1);
    honest(5, 2);
    /* a bad share, the same wrong value answered: complained about and excluded */
    cheating(3, 1, 2, TKMS_REFRESH_TEST_BAD_SHARE, 1);
    cheating(5, 2, 1, TKMS_REFRESH_TEST_BAD_SHARE, 1);
    /* a constant term not 0: committed openly (excluded by everyone, no complaint
     * needed), or hidden behind a commitment to 0 (everybody complains) */
    cheating(3, 1, 1, TKMS_REFRESH_TEST_NONZERO_OPEN, 0);
    cheating(5, 2, 4, TKMS_REFRESH_TEST_NONZERO_OPEN, 0);
    cheating(3, 1, 2, TKMS_REFRESH_TEST_NONZERO_HIDDEN, 1);
    cheating(5, 2, 3, TKMS_REFRESH_TEST_NONZERO_HIDDEN, 1);
    answered_complaint();
    too_few_qualified();
    batches_across_refresh();
    arguments();
    return ms_test_finish();
}
