/*
 * ECCSI (RFC 6507, P-256, SHA-256): the complete Appendix A vector with every
 * intermediate value, random round trips (including the verifier's signer cache), and
 * each way a key, signature or argument is rejected, with its exact error code.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto/eccsi_internal.h"
#include "testutil.h"

#define SC MS_ECCSI_SCALAR_BYTES
#define PT MS_ECCSI_POINT_BYTES
#define SIG MS_ECCSI_SIG_BYTES

/* RFC 6507 Appendix A, loaded from tests/vectors/rfc6507.txt. */
typedef struct rfc_vector {
    uint8_t p[SC], q[SC], g[PT];
    uint8_t ksak[SC], kpak[PT];
    uint8_t id[64];
    size_t id_len;
    uint8_t v[SC], pvt[PT], hs[SC], ssk[SC];
    uint8_t msg[64];
    size_t msg_len;
    uint8_t j[SC], jpt[PT], r[SC], he[SC], s[SC], sig[SIG];
    uint8_t y[PT], j_verifier[PT];
} rfc_vector;

static rfc_vector rfc;

/* Loads a value that must have exactly len octets. */
static void load(const char *name, uint8_t *out, size_t len)
{
    size_t got = ms_test_vector("rfc6507.txt", name, out, len);
    if (got != len) {
        fprintf(stderr, "rfc6507.txt: %s has %zu octets, want %zu\n", name, got, len);
        exit(2);
    }
}

static void load_rfc(void)
{
    load("p", rfc.p, SC);
    load("q", rfc.q, SC);
    load("G", rfc.g, PT);
    load("KSAK", rfc.ksak, SC);
    load("KPAK", rfc.kpak, PT);
    rfc.id_len = ms_test_vector("rfc6507.txt", "ID", rfc.id, sizeof rfc.id);
    load("v", rfc.v, SC);
    load("PVT", rfc.pvt, PT);
    load("HS", rfc.hs, SC);
    load("SSK", rfc.ssk, SC);
    rfc.msg_len = ms_test_vector("rfc6507.txt", "M", rfc.msg, sizeof rfc.msg);
    load("j", rfc.j, SC);
    load("J", rfc.jpt, PT);
    load("r", rfc.r, SC);
    load("HE", rfc.he, SC);
    load("s", rfc.s, SC);
    load("SIG", rfc.sig, SIG);
    load("Y", rfc.y, PT);
    load("J_verifier", rfc.j_verifier, PT);
}

/* out = a - b, big-endian, SC octets (a >= b). */
static void sub_be(uint8_t out[SC], const uint8_t a[SC], const uint8_t b[SC])
{
    int borrow = 0;
    for (size_t i = SC; i-- > 0;) {
        int d = a[i] - b[i] - borrow;
        borrow = d < 0;
        out[i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
}

static int all_zero(const uint8_t *a, size_t n)
{
    uint8_t any = 0;
    for (size_t i = 0; i < n; i++)
        any |= a[i];
    return any == 0;
}

/* Generators that never produce a usable value. */
static ms_err zero_fill(void *ctx, uint8_t *out, size_t len)
{
    (void)ctx;
    memset(out, 0, len);
    return MS_OK;
}

static ms_err failing_fill(void *ctx, uint8_t *out, size_t len)
{
    (void)ctx;
    (void)out;
    (void)len;
    return MS_ERR_RNG;
}

/* ---- RFC 6507 Appendix A ---------------------------------------------------------- */

static void test_rfc_kms(void)
{
    uint8_t kpak[PT], ssk[SC], pvt[PT], hs[SC], ksak[SC];

    CHECK_ERR(ms_eccsi_master_public(kpak, rfc.ksak), MS_OK);
    CHECK_MEM(kpak, rfc.kpak, PT);

    /* (SSK, PVT) from v = 0x23456, drawn as exactly one 32-octet value */
    ms_fixed_rng st;
    ms_rng rng = ms_fixed_rng_make(&st, rfc.v, SC);
    CHECK_ERR(ms_eccsi_ssk_issue(ssk, pvt, rfc.ksak, rfc.kpak, rfc.id, rfc.id_len, &rng), MS_OK);
    CHECK(st.pos == SC);
    CHECK_MEM(pvt, rfc.pvt, PT);
    CHECK_MEM(ssk, rfc.ssk, SC);

    memset(hs, 0, SC);
    CHECK_ERR(ms_eccsi_ssk_validate(hs, rfc.kpak, rfc.id, rfc.id_len, rfc.ssk, rfc.pvt), MS_OK);
    CHECK_MEM(hs, rfc.hs, SC);
    CHECK_ERR(ms_eccsi_ssk_validate(NULL, rfc.kpak, rfc.id, rfc.id_len, rfc.ssk, rfc.pvt),
              MS_OK);

    /* Out-of-range draws are drawn again, not reduced: q, 0 and 2^256-1 are skipped. */
    uint8_t queue[4 * SC];
    memcpy(queue, rfc.q, SC);
    memset(queue + SC, 0, SC);
    memset(queue + 2 * SC, 0xFF, SC);
    memcpy(queue + 3 * SC, rfc.ksak, SC);
    rng = ms_fixed_rng_make(&st, queue, sizeof queue);
    CHECK_ERR(ms_eccsi_master_keygen(ksak, kpak, &rng), MS_OK);
    CHECK(st.pos == sizeof queue);
    CHECK_MEM(ksak, rfc.ksak, SC);
    CHECK_MEM(kpak, rfc.kpak, PT);

    memcpy(queue + 3 * SC, rfc.v, SC);
    rng = ms_fixed_rng_make(&st, queue, sizeof queue);
    CHECK_ERR(ms_eccsi_ssk_issue(ssk, pvt, rfc.ksak, rfc.kpak, rfc.id, rfc.id_len, &rng), MS_OK);
    CHECK(st.pos == sizeof queue);
    CHECK_MEM(pvt, rfc.pvt, PT);
    CHECK_MEM(ssk, rfc.ssk, SC);

    /* q - 1 is the largest KSAK: [q-1]G = -G has G's x */
    uint8_t one[SC] = {0}, qm1[SC];
    one[SC - 1] = 1;
    sub_be(qm1, rfc.q, one);
    CHECK_ERR(ms_eccsi_master_public(kpak, qm1), MS_OK);
    CHECK_MEM(kpak, rfc.g, 1 + SC);
    CHECK(memcmp(kpak, rfc.g, PT) != 0);
}

static void test_rfc_sign_verify(void)
{
    ms_eccsi_signer *signer = NULL;
    ms_eccsi_verifier *ver = NULL;
    ms_eccsi_trace tr;
    uint8_t sig[SIG];
    uint8_t zero_pt[PT] = {0};

    CHECK_ERR(ms_eccsi_signer_new(&signer, rfc.kpak, rfc.id, rfc.id_len, rfc.ssk, rfc.pvt), MS_OK);
    CHECK_ERR(ms_eccsi_verifier_new(&ver, rfc.kpak), MS_OK);
    if (signer == NULL || ver == NULL)
        goto out;

    /* j = 0x34567 as one 32-octet draw gives the RFC's signature */
    ms_fixed_rng st;
    ms_rng rng = ms_fixed_rng_make(&st, rfc.j, SC);
    memset(&tr, 0xA5, sizeof tr);
    CHECK_ERR(ms_eccsi_sign(signer, sig, rfc.msg, rfc.msg_len, &rng, &tr), MS_OK);
    CHECK(st.pos == SC);
    CHECK_MEM(sig, rfc.sig, SIG);
    CHECK_MEM(tr.hs, rfc.hs, SC);
    CHECK_MEM(tr.j, rfc.jpt, PT);
    CHECK_MEM(tr.r, rfc.r, SC);
    CHECK_MEM(tr.he, rfc.he, SC);
    CHECK_MEM(tr.s, rfc.s, SC);
    CHECK_MEM(tr.y, zero_pt, PT);

    /* and without a trace */
    rng = ms_fixed_rng_make(&st, rfc.j, SC);
    CHECK_ERR(ms_eccsi_sign(signer, sig, rfc.msg, rfc.msg_len, &rng, NULL), MS_OK);
    CHECK_MEM(sig, rfc.sig, SIG);

    /* rejected draws (0, q) before j */
    uint8_t queue[3 * SC];
    memset(queue, 0, SC);
    memcpy(queue + SC, rfc.q, SC);
    memcpy(queue + 2 * SC, rfc.j, SC);
    rng = ms_fixed_rng_make(&st, queue, sizeof queue);
    CHECK_ERR(ms_eccsi_sign(signer, sig, rfc.msg, rfc.msg_len, &rng, NULL), MS_OK);
    CHECK(st.pos == sizeof queue);
    CHECK_MEM(sig, rfc.sig, SIG);

    /* verify, with the verifier's intermediate values */
    memset(&tr, 0xA5, sizeof tr);
    CHECK_ERR(ms_eccsi_verify(ver, rfc.id, rfc.id_len, rfc.msg, rfc.msg_len, rfc.sig, SIG, &tr),
              MS_OK);
    CHECK_MEM(tr.r, rfc.r, SC);
    CHECK_MEM(tr.s, rfc.s, SC);
    CHECK_MEM(tr.hs, rfc.hs, SC);
    CHECK_MEM(tr.he, rfc.he, SC);
    CHECK_MEM(tr.y, rfc.y, PT);
    CHECK_MEM(tr.j, rfc.j_verifier, PT);
    ms_eccsi_cache_stats cs = ms_eccsi_verifier_cache_stats(ver);
    CHECK(cs.misses == 1 && cs.hits == 0);

    /* the same signer again comes from the cache, with the same trace */
    memset(&tr, 0xA5, sizeof tr);
    CHECK_ERR(ms_eccsi_verify(ver, rfc.id, rfc.id_len, rfc.msg, rfc.msg_len, rfc.sig, SIG, &tr),
              MS_OK);
    CHECK_MEM(tr.hs, rfc.hs, SC);
    CHECK_MEM(tr.he, rfc.he, SC);
    CHECK_MEM(tr.y, rfc.y, PT);
    CHECK_MEM(tr.j, rfc.j_verifier, PT);
    cs = ms_eccsi_verifier_cache_stats(ver);
    CHECK(cs.misses == 1 && cs.hits == 1);
    CHECK_ERR(ms_eccsi_verify(ver, rfc.id, rfc.id_len, rfc.msg, rfc.msg_len, rfc.sig, SIG, NULL),
              MS_OK);
    cs = ms_eccsi_verifier_cache_stats(ver);
    CHECK(cs.misses == 1 && cs.hits == 2);

    /* RFC 6507 section 6: s may be replaced by q - s (J becomes -J, same x) */
    memcpy(sig, rfc.sig, SIG);
    sub_be(sig + SC, rfc.q, rfc.s);
    CHECK_ERR(ms_eccsi_verify(ver, rfc.id, rfc.id_len, rfc.msg, rfc.msg_len, sig, SIG, NULL),
              MS_OK);

    /* a "no" still reports what was computed (the CLI's --verbose relies on it) */
    uint8_t msg2[64];
    memcpy(msg2, rfc.msg, rfc.msg_len);
    msg2[0] ^= 1;
    memset(&tr, 0xA5, sizeof tr);
    CHECK_ERR(ms_eccsi_verify(ver, rfc.id, rfc.id_len, msg2, rfc.msg_len, rfc.sig, SIG, &tr),
              MS_ERR_SIGNATURE);
    CHECK_MEM(tr.r, rfc.r, SC);
    CHECK_MEM(tr.s, rfc.s, SC);
    CHECK_MEM(tr.hs, rfc.hs, SC);
    CHECK_MEM(tr.y, rfc.y, PT);
    CHECK(memcmp(tr.he, rfc.he, SC) != 0);
    CHECK(tr.j[0] == 0x04 && memcmp(tr.j + 1, rfc.r, SC) != 0);

    /* the same for a signer not in the cache yet */
    ms_eccsi_verifier *fresh = NULL;
    CHECK_ERR(ms_eccsi_verifier_new(&fresh, rfc.kpak), MS_OK);
    if (fresh != NULL) {
        memset(&tr, 0xA5, sizeof tr);
        CHECK_ERR(ms_eccsi_verify(fresh, rfc.id, rfc.id_len, msg2, rfc.msg_len, rfc.sig, SIG, &tr),
                  MS_ERR_SIGNATURE);
        CHECK_MEM(tr.hs, rfc.hs, SC);
        CHECK_MEM(tr.y, rfc.y, PT);
        ms_eccsi_verifier_free(fresh);
    }
out:
    ms_eccsi_signer_free(signer);
    ms_eccsi_verifier_free(ver);
}

/* ---- random round trips ----------------------------------------------------------- */

#define N_SIGNERS 12 /* more than the verifier's cache holds */

typedef struct test_signer {
    uint8_t id[40];
    size_t id_len;
    uint8_t pvt[PT];
    ms_eccsi_signer *signer;
    uint8_t msg[100];
    size_t msg_len;
    uint8_t sig[SIG];
} test_signer;

static void test_round_trips(void)
{
    uint8_t ksak[SC], kpak[PT], ssk[SC], hs[SC];
    test_signer ts[N_SIGNERS];
    ms_eccsi_verifier *ver = NULL;
    ms_eccsi_trace tr;

    memset(ts, 0, sizeof ts);
    CHECK_ERR(ms_eccsi_master_keygen(ksak, kpak, &ms_test_rng), MS_OK);
    CHECK_ERR(ms_eccsi_verifier_new(&ver, kpak), MS_OK);
    if (ver == NULL)
        return;

    for (int i = 0; i < N_SIGNERS; i++) {
        test_signer *t = &ts[i];
        t->id_len = 1 + (size_t)(ms_test_random_u64() % sizeof t->id);
        ms_test_random(t->id, t->id_len);
        CHECK_ERR(ms_eccsi_ssk_issue(ssk, t->pvt, ksak, kpak, t->id, t->id_len, &ms_test_rng),
                  MS_OK);
        CHECK_ERR(ms_eccsi_ssk_validate(hs, kpak, t->id, t->id_len, ssk, t->pvt), MS_OK);
        CHECK_ERR(ms_eccsi_signer_new(&t->signer, kpak, t->id, t->id_len, ssk, t->pvt), MS_OK);
        if (t->signer == NULL)
            goto out;
        t->msg_len = (size_t)(ms_test_random_u64() % sizeof t->msg); /* 0 included */
        ms_test_random(t->msg, t->msg_len);
        CHECK_ERR(ms_eccsi_sign(t->signer, t->sig, t->msg, t->msg_len, &ms_test_rng, &tr), MS_OK);
        CHECK_MEM(tr.hs, hs, SC);
        CHECK_MEM(t->sig + 2 * SC, t->pvt, PT);
        CHECK_MEM(tr.r, t->sig, SC);
        CHECK_MEM(tr.s, t->sig + SC, SC);
        CHECK_MEM(tr.j + 1, t->sig, SC);

        ms_eccsi_trace vt;
        CHECK_ERR(ms_eccsi_verify(ver, t->id, t->id_len, t->msg, t->msg_len, t->sig, SIG, &vt),
                  MS_OK);
        CHECK_MEM(vt.hs, tr.hs, SC);
        CHECK_MEM(vt.he, tr.he, SC);
        CHECK_MEM(vt.j + 1, tr.j + 1, SC); /* J, up to sign */
        /* the verifier's Y is the signer's public key [SSK]G */
        uint8_t y[PT];
        CHECK_ERR(ms_eccsi_master_public(y, ssk), MS_OK);
        CHECK_MEM(vt.y, y, PT);
        /* a second signature from the same signer verifies from the cache */
        uint8_t sig2[SIG];
        CHECK_ERR(ms_eccsi_sign(t->signer, sig2, t->msg, t->msg_len, NULL, NULL), MS_OK);
        CHECK(memcmp(sig2, t->sig, SC) != 0); /* fresh j */
        ms_eccsi_cache_stats before = ms_eccsi_verifier_cache_stats(ver);
        CHECK_ERR(ms_eccsi_verify(ver, t->id, t->id_len, t->msg, t->msg_len, sig2, SIG, NULL),
                  MS_OK);
        ms_eccsi_cache_stats after = ms_eccsi_verifier_cache_stats(ver);
        CHECK(after.hits == before.hits + 1 && after.misses == before.misses);
        /* another signer's signature does not pass for this one */
        if (i > 0)
            CHECK_ERR(ms_eccsi_verify(ver, t->id, t->id_len, ts[i - 1].msg, ts[i - 1].msg_len,
                                      ts[i - 1].sig, SIG, NULL),
                      MS_ERR_SIGNATURE);
    }

    /* The last 8 distinct (ID, PVT) pairs are cached. Signer N-1 was just looked up; the
     * cache now holds (N-1) and, from the cross checks, pairs (id of i, PVT of i-1). */
    ms_eccsi_cache_stats before = ms_eccsi_verifier_cache_stats(ver);
    test_signer *last = &ts[N_SIGNERS - 1];
    CHECK_ERR(ms_eccsi_verify(ver, last->id, last->id_len, last->msg, last->msg_len, last->sig,
                              SIG, NULL),
              MS_OK);
    ms_eccsi_cache_stats after = ms_eccsi_verifier_cache_stats(ver);
    CHECK(after.hits == before.hits + 1);
    /* the first signer was evicted long ago: computed again, and cached again */
    CHECK_ERR(ms_eccsi_verify(ver, ts[0].id, ts[0].id_len, ts[0].msg, ts[0].msg_len, ts[0].sig,
                              SIG, NULL),
              MS_OK);
    before = after;
    after = ms_eccsi_verifier_cache_stats(ver);
    CHECK(after.misses == before.misses + 1 && after.hits == before.hits);
    CHECK_ERR(ms_eccsi_verify(ver, ts[0].id, ts[0].id_len, ts[0].msg, ts[0].msg_len, ts[0].sig,
                              SIG, NULL),
              MS_OK);
    before = after;
    after = ms_eccsi_verifier_cache_stats(ver);
    CHECK(after.hits == before.hits + 1);

    /* cycling through all signers twice: every verification still right */
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < N_SIGNERS; i++)
            CHECK_ERR(ms_eccsi_verify(ver, ts[i].id, ts[i].id_len, ts[i].msg, ts[i].msg_len,
                                      ts[i].sig, SIG, NULL),
                      MS_OK);

    /* the empty message may be passed as NULL */
    uint8_t sig[SIG];
    CHECK_ERR(ms_eccsi_sign(ts[0].signer, sig, NULL, 0, &ms_test_rng, NULL), MS_OK);
    CHECK_ERR(ms_eccsi_verify(ver, ts[0].id, ts[0].id_len, NULL, 0, sig, SIG, NULL), MS_OK);

    /* the same identifier issued twice (e.g. two devices): two PVTs, both valid */
    uint8_t ssk2[SC], pvt2[PT];
    CHECK_ERR(ms_eccsi_ssk_issue(ssk2, pvt2, ksak, kpak, ts[0].id, ts[0].id_len, &ms_test_rng),
              MS_OK);
    CHECK(memcmp(pvt2, ts[0].pvt, PT) != 0);
    ms_eccsi_signer *s2 = NULL;
    CHECK_ERR(ms_eccsi_signer_new(&s2, kpak, ts[0].id, ts[0].id_len, ssk2, pvt2), MS_OK);
    if (s2 != NULL) {
        CHECK_ERR(ms_eccsi_sign(s2, sig, ts[0].msg, ts[0].msg_len, &ms_test_rng, NULL), MS_OK);
        CHECK_ERR(ms_eccsi_verify(ver, ts[0].id, ts[0].id_len, ts[0].msg, ts[0].msg_len, sig,
                                  SIG, NULL),
                  MS_OK);
        ms_eccsi_signer_free(s2);
    }
    /* but one device's SSK does not go with the other's PVT */
    CHECK_ERR(ms_eccsi_ssk_validate(NULL, kpak, ts[0].id, ts[0].id_len, ssk2, ts[0].pvt),
              MS_ERR_SSK_INVALID);
out:
    for (int i = 0; i < N_SIGNERS; i++)
        ms_eccsi_signer_free(ts[i].signer);
    ms_eccsi_verifier_free(ver);
    ms_wipe(ksak, sizeof ksak);
    ms_wipe(ssk, sizeof ssk);
}

/* ---- rejections ------------------------------------------------------------------- */

static void test_verify_rejections(void)
{
    ms_eccsi_verifier *ver = NULL;
    uint8_t sig[SIG + 1], msg[64], id[64];
    const size_t pvt_at = 2 * SC;

    CHECK_ERR(ms_eccsi_verifier_new(&ver, rfc.kpak), MS_OK);
    if (ver == NULL)
        return;
#define VERIFY(s, len) \
    ms_eccsi_verify(ver, rfc.id, rfc.id_len, rfc.msg, rfc.msg_len, (s), (len), NULL)

    /* tampered r, s, PVT (another valid point), message, identity */
    memcpy(sig, rfc.sig, SIG);
    sig[SC - 1] ^= 1;
    CHECK_ERR(VERIFY(sig, SIG), MS_ERR_SIGNATURE);
    memcpy(sig, rfc.sig, SIG);
    sig[SC] ^= 0x10;
    CHECK_ERR(VERIFY(sig, SIG), MS_ERR_SIGNATURE);
    memcpy(sig, rfc.sig, SIG);
    memcpy(sig + pvt_at, rfc.kpak, PT);
    CHECK_ERR(VERIFY(sig, SIG), MS_ERR_SIGNATURE);
    memcpy(sig + pvt_at, rfc.g, PT);
    CHECK_ERR(VERIFY(sig, SIG), MS_ERR_SIGNATURE);
    memcpy(msg, rfc.msg, rfc.msg_len);
    msg[rfc.msg_len - 1] ^= 1;
    CHECK_ERR(ms_eccsi_verify(ver, rfc.id, rfc.id_len, msg, rfc.msg_len, rfc.sig, SIG, NULL),
              MS_ERR_SIGNATURE);
    CHECK_ERR(ms_eccsi_verify(ver, rfc.id, rfc.id_len, rfc.msg, rfc.msg_len - 1, rfc.sig, SIG,
                              NULL),
              MS_ERR_SIGNATURE);
    memcpy(id, rfc.id, rfc.id_len);
    id[rfc.id_len - 2] ^= 1;
    CHECK_ERR(ms_eccsi_verify(ver, id, rfc.id_len, rfc.msg, rfc.msg_len, rfc.sig, SIG, NULL),
              MS_ERR_SIGNATURE);
    CHECK_ERR(ms_eccsi_verify(ver, rfc.id, rfc.id_len - 1, rfc.msg, rfc.msg_len, rfc.sig, SIG,
                              NULL),
              MS_ERR_SIGNATURE);

    /* PVT off the curve, with a bad prefix, with a coordinate not below p */
    memcpy(sig, rfc.sig, SIG);
    sig[SIG - 1] ^= 1;
    CHECK_ERR(VERIFY(sig, SIG), MS_ERR_POINT_NOT_ON_CURVE);
    memcpy(sig, rfc.sig, SIG);
    sig[pvt_at + 1] ^= 1;
    CHECK_ERR(VERIFY(sig, SIG), MS_ERR_POINT_NOT_ON_CURVE);
    static const uint8_t prefixes[] = {0x00, 0x02, 0x03, 0x05, 0x06, 0x07, 0xFF};
    for (size_t i = 0; i < sizeof prefixes; i++) {
        memcpy(sig, rfc.sig, SIG);
        sig[pvt_at] = prefixes[i];
        CHECK_ERR(VERIFY(sig, SIG), MS_ERR_BAD_ENCODING);
    }
    memcpy(sig, rfc.sig, SIG);
    memcpy(sig + pvt_at + 1, rfc.p, SC);
    CHECK_ERR(VERIFY(sig, SIG), MS_ERR_BAD_ENCODING);
    memcpy(sig, rfc.sig, SIG);
    memset(sig + pvt_at + 1 + SC, 0xFF, SC);
    CHECK_ERR(VERIFY(sig, SIG), MS_ERR_BAD_ENCODING);
    memcpy(sig, rfc.sig, SIG);
    memset(sig + pvt_at, 0, PT); /* not even infinity has a 65-octet encoding */
    CHECK_ERR(VERIFY(sig, SIG), MS_ERR_BAD_ENCODING);

    /* wrong length */
    memcpy(sig, rfc.sig, SIG);
    sig[SIG] = 0;
    CHECK_ERR(VERIFY(sig, SIG - 1), MS_ERR_BAD_LENGTH);
    CHECK_ERR(VERIFY(sig, SIG + 1), MS_ERR_BAD_LENGTH);
    CHECK_ERR(VERIFY(sig, 0), MS_ERR_BAD_LENGTH);
    CHECK_ERR(VERIFY(sig, 2 * SC + 33), MS_ERR_BAD_LENGTH); /* compressed PVT */

    /* r and s outside [1, q-1] */
    memcpy(sig, rfc.sig, SIG);
    memset(sig, 0, SC);
    CHECK_ERR(VERIFY(sig, SIG), MS_ERR_SIGNATURE);
    memcpy(sig, rfc.q, SC);
    CHECK_ERR(VERIFY(sig, SIG), MS_ERR_SIGNATURE);
    memcpy(sig, rfc.sig, SIG);
    memset(sig + SC, 0, SC);
    CHECK_ERR(VERIFY(sig, SIG), MS_ERR_SIGNATURE);
    memcpy(sig + SC, rfc.q, SC);
    CHECK_ERR(VERIFY(sig, SIG), MS_ERR_SIGNATURE);
    memset(sig + SC, 0xFF, SC);
    CHECK_ERR(VERIFY(sig, SIG), MS_ERR_SIGNATURE);
    memcpy(sig, rfc.sig, SIG);
    memset(sig, 0xFF, SC);
    CHECK_ERR(VERIFY(sig, SIG), MS_ERR_SIGNATURE);

    /* the right signature under another KMS's KPAK */
    uint8_t ksak2[SC], kpak2[PT];
    memcpy(ksak2, rfc.ksak, SC);
    ksak2[SC - 1] ^= 1;
    CHECK_ERR(ms_eccsi_master_public(kpak2, ksak2), MS_OK);
    ms_eccsi_verifier *other = NULL;
    CHECK_ERR(ms_eccsi_verifier_new(&other, kpak2), MS_OK);
    if (other != NULL) {
        CHECK_ERR(ms_eccsi_verify(other, rfc.id, rfc.id_len, rfc.msg, rfc.msg_len, rfc.sig, SIG,
                                  NULL),
                  MS_ERR_SIGNATURE);
        ms_eccsi_verifier_free(other);
    }

    /* the verifier still works after all that */
    CHECK_ERR(VERIFY(rfc.sig, SIG), MS_OK);

    /* arguments */
    CHECK_ERR(ms_eccsi_verify(ver, rfc.id, 0, rfc.msg, rfc.msg_len, rfc.sig, SIG, NULL),
              MS_ERR_ARG);
    CHECK_ERR(ms_eccsi_verify(ver, NULL, rfc.id_len, rfc.msg, rfc.msg_len, rfc.sig, SIG, NULL),
              MS_ERR_ARG);
    CHECK_ERR(ms_eccsi_verify(ver, rfc.id, rfc.id_len, NULL, 1, rfc.sig, SIG, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_eccsi_verify(ver, rfc.id, rfc.id_len, rfc.msg, rfc.msg_len, NULL, SIG, NULL),
              MS_ERR_ARG);
    CHECK_ERR(ms_eccsi_verify(NULL, rfc.id, rfc.id_len, rfc.msg, rfc.msg_len, rfc.sig, SIG, NULL),
              MS_ERR_ARG);
#undef VERIFY
    ms_eccsi_verifier_free(ver);
}

/* Points that are not a valid KPAK, each with the error a PVT like it gets. */
typedef struct bad_point {
    uint8_t pt[PT];
    ms_err as_pvt;
} bad_point;

static size_t make_bad_points(bad_point *out, const uint8_t good[PT])
{
    size_t n = 0;
    memcpy(out[n].pt, good, PT); /* y changed: off the curve */
    out[n].pt[PT - 1] ^= 1;
    out[n++].as_pvt = MS_ERR_POINT_NOT_ON_CURVE;
    memcpy(out[n].pt, good, PT); /* compressed prefix */
    out[n].pt[0] = 0x02;
    out[n++].as_pvt = MS_ERR_BAD_ENCODING;
    memcpy(out[n].pt, good, PT); /* hybrid prefix */
    out[n].pt[0] = 0x06;
    out[n++].as_pvt = MS_ERR_BAD_ENCODING;
    memcpy(out[n].pt, good, PT); /* x = p */
    memcpy(out[n].pt + 1, rfc.p, SC);
    out[n++].as_pvt = MS_ERR_BAD_ENCODING;
    memset(out[n].pt, 0, PT); /* all zero */
    out[n++].as_pvt = MS_ERR_BAD_ENCODING;
    return n;
}

static void test_key_rejections(void)
{
    uint8_t kpak[PT], ssk[SC], pvt[PT], hs[SC], bad[SC];
    ms_eccsi_signer *signer = NULL;
    ms_eccsi_verifier *ver = NULL;
    bad_point bp[8];

    /* KSAK out of range */
    memset(bad, 0, SC);
    CHECK_ERR(ms_eccsi_master_public(kpak, bad), MS_ERR_SCALAR_RANGE);
    CHECK_ERR(ms_eccsi_master_public(kpak, rfc.q), MS_ERR_SCALAR_RANGE);
    memset(bad, 0xFF, SC);
    CHECK_ERR(ms_eccsi_master_public(kpak, bad), MS_ERR_SCALAR_RANGE);
    ms_rng rng = ms_test_rng;
    CHECK_ERR(ms_eccsi_ssk_issue(ssk, pvt, rfc.q, rfc.kpak, rfc.id, rfc.id_len, &rng),
              MS_ERR_SCALAR_RANGE);
    memset(bad, 0, SC);
    CHECK_ERR(ms_eccsi_ssk_issue(ssk, pvt, bad, rfc.kpak, rfc.id, rfc.id_len, &rng),
              MS_ERR_SCALAR_RANGE);

    /* identifier missing or empty */
    CHECK_ERR(ms_eccsi_ssk_issue(ssk, pvt, rfc.ksak, rfc.kpak, rfc.id, 0, &rng), MS_ERR_ARG);
    CHECK_ERR(ms_eccsi_ssk_issue(ssk, pvt, rfc.ksak, rfc.kpak, NULL, 5, &rng), MS_ERR_ARG);
    CHECK_ERR(ms_eccsi_ssk_validate(hs, rfc.kpak, rfc.id, 0, rfc.ssk, rfc.pvt), MS_ERR_ARG);
    CHECK_ERR(ms_eccsi_ssk_validate(hs, rfc.kpak, NULL, 5, rfc.ssk, rfc.pvt), MS_ERR_ARG);
    signer = (ms_eccsi_signer *)(void *)bad; /* any non-NULL value: reset on failure */
    CHECK_ERR(ms_eccsi_signer_new(&signer, rfc.kpak, rfc.id, 0, rfc.ssk, rfc.pvt), MS_ERR_ARG);
    CHECK(signer == NULL);
    CHECK_ERR(ms_eccsi_signer_new(&signer, rfc.kpak, NULL, 5, rfc.ssk, rfc.pvt), MS_ERR_ARG);

    /* other NULL arguments */
    CHECK_ERR(ms_eccsi_master_public(NULL, rfc.ksak), MS_ERR_ARG);
    CHECK_ERR(ms_eccsi_master_keygen(NULL, kpak, &rng), MS_ERR_ARG);
    CHECK_ERR(ms_eccsi_ssk_issue(NULL, pvt, rfc.ksak, rfc.kpak, rfc.id, rfc.id_len, &rng),
              MS_ERR_ARG);
    CHECK_ERR(ms_eccsi_signer_new(NULL, rfc.kpak, rfc.id, rfc.id_len, rfc.ssk, rfc.pvt),
              MS_ERR_ARG);
    CHECK_ERR(ms_eccsi_verifier_new(NULL, rfc.kpak), MS_ERR_ARG);
    CHECK_ERR(ms_eccsi_verifier_new(&ver, NULL), MS_ERR_ARG);

    /* SSK that fails validation: altered, for another identifier, under another KPAK */
    memcpy(bad, rfc.ssk, SC);
    bad[SC - 1] ^= 1;
    CHECK_ERR(ms_eccsi_ssk_validate(hs, rfc.kpak, rfc.id, rfc.id_len, bad, rfc.pvt),
              MS_ERR_SSK_INVALID);
    CHECK_ERR(ms_eccsi_signer_new(&signer, rfc.kpak, rfc.id, rfc.id_len, bad, rfc.pvt),
              MS_ERR_SSK_INVALID);
    CHECK(signer == NULL);
    CHECK_ERR(ms_eccsi_ssk_validate(hs, rfc.kpak, rfc.id, rfc.id_len - 1, rfc.ssk, rfc.pvt),
              MS_ERR_SSK_INVALID);
    CHECK_ERR(ms_eccsi_signer_new(&signer, rfc.kpak, rfc.id, rfc.id_len - 1, rfc.ssk, rfc.pvt),
              MS_ERR_SSK_INVALID);
    CHECK_ERR(ms_eccsi_ssk_validate(hs, rfc.kpak, rfc.id, rfc.id_len, rfc.ssk, rfc.g),
              MS_ERR_SSK_INVALID);
    CHECK_ERR(ms_eccsi_ssk_validate(hs, rfc.g, rfc.id, rfc.id_len, rfc.ssk, rfc.pvt),
              MS_ERR_SSK_INVALID);
    CHECK_ERR(ms_eccsi_signer_new(&signer, rfc.g, rfc.id, rfc.id_len, rfc.ssk, rfc.pvt),
              MS_ERR_SSK_INVALID);

    /* SSK out of range: 0, q, 2^256 - 1 */
    memset(bad, 0, SC);
    CHECK_ERR(ms_eccsi_ssk_validate(hs, rfc.kpak, rfc.id, rfc.id_len, bad, rfc.pvt),
              MS_ERR_SCALAR_RANGE);
    CHECK_ERR(ms_eccsi_signer_new(&signer, rfc.kpak, rfc.id, rfc.id_len, bad, rfc.pvt),
              MS_ERR_SCALAR_RANGE);
    CHECK_ERR(ms_eccsi_ssk_validate(hs, rfc.kpak, rfc.id, rfc.id_len, rfc.q, rfc.pvt),
              MS_ERR_SCALAR_RANGE);
    CHECK_ERR(ms_eccsi_signer_new(&signer, rfc.kpak, rfc.id, rfc.id_len, rfc.q, rfc.pvt),
              MS_ERR_SCALAR_RANGE);
    memset(bad, 0xFF, SC);
    CHECK_ERR(ms_eccsi_ssk_validate(hs, rfc.kpak, rfc.id, rfc.id_len, bad, rfc.pvt),
              MS_ERR_SCALAR_RANGE);
    CHECK(signer == NULL);

    /* PVT and KPAK that are not points */
    size_t n = make_bad_points(bp, rfc.pvt);
    for (size_t i = 0; i < n; i++) {
        CHECK_ERR(ms_eccsi_ssk_validate(hs, rfc.kpak, rfc.id, rfc.id_len, rfc.ssk, bp[i].pt),
                  bp[i].as_pvt);
        CHECK_ERR(ms_eccsi_signer_new(&signer, rfc.kpak, rfc.id, rfc.id_len, rfc.ssk, bp[i].pt),
                  bp[i].as_pvt);
    }
    n = make_bad_points(bp, rfc.kpak);
    for (size_t i = 0; i < n; i++) {
        CHECK_ERR(ms_eccsi_verifier_new(&ver, bp[i].pt), MS_ERR_KPAK_INVALID);
        CHECK(ver == NULL);
        CHECK_ERR(ms_eccsi_ssk_validate(hs, bp[i].pt, rfc.id, rfc.id_len, rfc.ssk, rfc.pvt),
                  MS_ERR_KPAK_INVALID);
        CHECK_ERR(ms_eccsi_signer_new(&signer, bp[i].pt, rfc.id, rfc.id_len, rfc.ssk, rfc.pvt),
                  MS_ERR_KPAK_INVALID);
        CHECK_ERR(ms_eccsi_ssk_issue(ssk, pvt, rfc.ksak, bp[i].pt, rfc.id, rfc.id_len, &rng),
                  MS_ERR_KPAK_INVALID);
        CHECK(all_zero(ssk, SC)); /* secret output wiped on failure */
    }
    CHECK(signer == NULL);
}

static void test_rng_failures(void)
{
    uint8_t ksak[SC], kpak[PT], ssk[SC], pvt[PT], sig[SIG];
    ms_rng zeros = {zero_fill, NULL}, failing = {failing_fill, NULL};
    ms_fixed_rng st;

    /* a generator that only ever gives 0 (never in range) is given up on */
    memset(ksak, 0xA5, SC);
    CHECK_ERR(ms_eccsi_master_keygen(ksak, kpak, &zeros), MS_ERR_RNG);
    CHECK(all_zero(ksak, SC));
    CHECK_ERR(ms_eccsi_master_keygen(ksak, kpak, &failing), MS_ERR_RNG);
    memset(ssk, 0xA5, SC);
    CHECK_ERR(ms_eccsi_ssk_issue(ssk, pvt, rfc.ksak, rfc.kpak, rfc.id, rfc.id_len, &zeros),
              MS_ERR_RNG);
    CHECK(all_zero(ssk, SC));
    CHECK_ERR(ms_eccsi_ssk_issue(ssk, pvt, rfc.ksak, rfc.kpak, rfc.id, rfc.id_len, &failing),
              MS_ERR_RNG);
    /* a fixed generator that runs out */
    ms_rng rng = ms_fixed_rng_make(&st, rfc.v, SC - 1);
    CHECK_ERR(ms_eccsi_ssk_issue(ssk, pvt, rfc.ksak, rfc.kpak, rfc.id, rfc.id_len, &rng),
              MS_ERR_RNG);

    ms_eccsi_signer *signer = NULL;
    CHECK_ERR(ms_eccsi_signer_new(&signer, rfc.kpak, rfc.id, rfc.id_len, rfc.ssk, rfc.pvt), MS_OK);
    if (signer == NULL)
        return;
    ms_eccsi_trace tr;
    CHECK_ERR(ms_eccsi_sign(signer, sig, rfc.msg, rfc.msg_len, &zeros, &tr), MS_ERR_RNG);
    CHECK(all_zero(sig, SIG));
    CHECK_ERR(ms_eccsi_sign(signer, sig, rfc.msg, rfc.msg_len, &failing, NULL), MS_ERR_RNG);
    rng = ms_fixed_rng_make(&st, rfc.j, 0);
    CHECK_ERR(ms_eccsi_sign(signer, sig, rfc.msg, rfc.msg_len, &rng, NULL), MS_ERR_RNG);
    CHECK_ERR(ms_eccsi_sign(signer, sig, NULL, 1, NULL, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_eccsi_sign(signer, NULL, rfc.msg, rfc.msg_len, NULL, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_eccsi_sign(NULL, sig, rfc.msg, rfc.msg_len, NULL, NULL), MS_ERR_ARG);
    /* the OS generator */
    CHECK_ERR(ms_eccsi_sign(signer, sig, rfc.msg, rfc.msg_len, NULL, NULL), MS_OK);
    ms_eccsi_signer_free(signer);
    ms_eccsi_signer_free(NULL);
    ms_eccsi_verifier_free(NULL);
}

int main(void)
{
    ms_test_seed();
    load_rfc();
    test_rfc_kms();
    test_rfc_sign_verify();
    test_round_trips();
    test_verify_rejections();
    test_key_rejections();
    test_rng_failures();
    return ms_test_finish();
}
