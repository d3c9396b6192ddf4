/* Threshold KMS building blocks: scalars modulo q and n against OpenSSL's BIGNUM,
 * Shamir polynomials and Lagrange coefficients, the second generators, Feldman and
 * Pedersen commitments on both curves. */
#include <string.h>

#include <openssl/bn.h>

#include "testutil.h"
#include "threshold/tkms_internal.h"

static BIGNUM *bn_of(const tsc *a, const tgroup *g)
{
    uint8_t b[TG_SC_MAX];
    tsc_to_bytes(b, a, g);
    return BN_bin2bn(b, (int)g->sc_bytes, NULL);
}

static BIGNUM *order_of(const tgroup *g)
{
    uint8_t b[MS_BYTES];
    ms_u1024_to_be(b, g->q->m);
    return BN_bin2bn(b, MS_BYTES, NULL);
}

static void check_arith(const tgroup *g)
{
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *q = order_of(g), *r = BN_new();
    for (int i = 0; i < 20; i++) {
        tsc a, b, c;
        CHECK_ERR(tsc_random(&a, g, &ms_test_rng), MS_OK);
        CHECK_ERR(tsc_random(&b, g, &ms_test_rng), MS_OK);
        BIGNUM *ba = bn_of(&a, g), *bb = bn_of(&b, g);
        CHECK(BN_cmp(ba, q) < 0 && BN_cmp(bb, q) < 0);
        tsc_add(&c, &a, &b, g);
        BIGNUM *bc = bn_of(&c, g);
        BN_mod_add(r, ba, bb, q, ctx);
        CHECK(BN_cmp(r, bc) == 0);
        BN_free(bc);
        tsc_sub(&c, &a, &b, g);
        bc = bn_of(&c, g);
        BN_mod_sub(r, ba, bb, q, ctx);
        CHECK(BN_cmp(r, bc) == 0);
        BN_free(bc);
        tsc_mul(&c, &a, &b, g);
        bc = bn_of(&c, g);
        BN_mod_mul(r, ba, bb, q, ctx);
        CHECK(BN_cmp(r, bc) == 0);
        BN_free(bc);
        tsc_inv(&c, &a, g);
        bc = bn_of(&c, g);
        BN_mod_inverse(r, ba, q, ctx);
        CHECK(BN_cmp(r, bc) == 0);
        BN_free(bc);
        /* bytes round trip, and an out-of-range value is refused */
        uint8_t bytes[TG_SC_MAX];
        tsc_to_bytes(bytes, &a, g);
        CHECK_ERR(tsc_from_bytes(&c, bytes, g), MS_OK);
        CHECK(tsc_eq(&c, &a));
        BN_free(ba);
        BN_free(bb);
    }
    uint8_t qb[TG_SC_MAX];
    tsc c;
    BN_bn2binpad(q, qb, (int)g->sc_bytes);
    CHECK_ERR(tsc_from_bytes(&c, qb, g), MS_ERR_SCALAR_RANGE);
    BN_free(q);
    BN_free(r);
    BN_CTX_free(ctx);
}

static void check_shamir(const tgroup *g, unsigned n, unsigned t)
{
    tsc f[MS_TKMS_MAX_T + 1], fb[MS_TKMS_MAX_T + 1], sh[MS_TKMS_MAX_N], shb[MS_TKMS_MAX_N];
    for (unsigned k = 0; k <= t; k++) {
        CHECK_ERR(tsc_random(&f[k], g, &ms_test_rng), MS_OK);
        CHECK_ERR(tsc_random(&fb[k], g, &ms_test_rng), MS_OK);
    }
    for (unsigned j = 1; j <= n; j++) {
        tsc_poly_eval(&sh[j - 1], f, t, j, g);
        tsc_poly_eval(&shb[j - 1], fb, t, j, g);
    }
    /* every window of t+1 consecutive indices (wrapping) rebuilds f(0) and f(x) */
    for (unsigned start = 0; start < n; start++) {
        unsigned ids[MS_TKMS_MAX_T + 1];
        for (unsigned m = 0; m <= t; m++)
            ids[m] = (start + m) % n + 1;
        tsc acc, term, lam;
        tsc_zero(&acc);
        for (unsigned m = 0; m <= t; m++) {
            tsc_lagrange_var(&lam, ids, t + 1, m, 0, g);
            tsc_mul(&term, &lam, &sh[ids[m] - 1], g);
            tsc_add(&acc, &acc, &term, g);
        }
        CHECK(tsc_eq(&acc, &f[0]));
        unsigned x = (start + t + 1) % n + 1; /* an index outside the window */
        tsc_zero(&acc);
        for (unsigned m = 0; m <= t; m++) {
            tsc_lagrange_var(&lam, ids, t + 1, m, x, g);
            tsc_mul(&term, &lam, &sh[ids[m] - 1], g);
            tsc_add(&acc, &acc, &term, g);
        }
        CHECK(tsc_eq(&acc, &sh[x - 1]));
    }
    /* t shares do not: a wrong constant (with overwhelming probability) */
    {
        unsigned ids[MS_TKMS_MAX_T];
        tsc acc, term, lam;
        tsc_zero(&acc);
        for (unsigned m = 0; m < t; m++)
            ids[m] = m + 1;
        for (unsigned m = 0; m < t; m++) {
            tsc_lagrange_var(&lam, ids, t, m, 0, g);
            tsc_mul(&term, &lam, &sh[m], g);
            tsc_add(&acc, &acc, &term, g);
        }
        CHECK(!tsc_eq(&acc, &f[0]));
    }
    /* Feldman and Pedersen commitments match every share, and not a wrong one */
    uint8_t feld[(MS_TKMS_MAX_T + 1) * TG_PT_MAX], ped[(MS_TKMS_MAX_T + 1) * TG_PT_MAX];
    for (unsigned k = 0; k <= t; k++) {
        CHECK_ERR(tg_mul_gen(g, feld + k * g->pt_bytes, &f[k]), MS_OK);
        CHECK_ERR(tg_pedersen(g, ped + k * g->pt_bytes, &f[k], &fb[k]), MS_OK);
        CHECK_ERR(tg_check_var(g, feld + k * g->pt_bytes, 0), MS_OK);
    }
    for (unsigned j = 1; j <= n; j++) {
        uint8_t want[TG_PT_MAX], got[TG_PT_MAX];
        CHECK_ERR(tg_feldman_eval_var(g, want, feld, t, j), MS_OK);
        CHECK_ERR(tg_mul_gen(g, got, &sh[j - 1]), MS_OK);
        CHECK(memcmp(want, got, g->pt_bytes) == 0);
        CHECK_ERR(tg_feldman_eval_var(g, want, ped, t, j), MS_OK);
        CHECK_ERR(tg_pedersen(g, got, &sh[j - 1], &shb[j - 1]), MS_OK);
        CHECK(memcmp(want, got, g->pt_bytes) == 0);
        tsc bad, one;
        tsc_from_u64(&one, 1, g);
        tsc_add(&bad, &sh[j - 1], &one, g);
        CHECK_ERR(tg_pedersen(g, got, &bad, &shb[j - 1]), MS_OK);
        CHECK(memcmp(want, got, g->pt_bytes) != 0);
    }
    /* [k]X, constant time, agrees with the public multi-scalar product */
    uint8_t gen[TG_PT_MAX], a1[TG_PT_MAX], a2[TG_PT_MAX];
    tg_second_generator(g, gen);
    CHECK_ERR(tg_mul_point(g, a1, gen, &f[0]), MS_OK);
    const uint8_t *pts[1] = {gen};
    CHECK_ERR(tg_msm_var(g, a2, pts, &f[0], 1), MS_OK);
    CHECK(memcmp(a1, a2, g->pt_bytes) == 0);
    /* [0]G is infinity, and infinity + X = X */
    tsc zero;
    tsc_zero(&zero);
    CHECK_ERR(tg_mul_gen(g, a1, &zero), MS_OK);
    CHECK(tg_is_infinity(g, a1));
    CHECK_ERR(tg_add_var(g, a2, a1, gen), MS_OK);
    CHECK(memcmp(a2, gen, g->pt_bytes) == 0);
}

static void check_generators(void)
{
    uint8_t h[TG_PT_MAX], p[TG_PT_MAX];
    tg_second_generator(&tg_sakke, h);
    tg_generator(&tg_sakke, p);
    CHECK_ERR(tg_check_var(&tg_sakke, h, 0), MS_OK);
    CHECK(memcmp(h, p, 257) != 0);
    tg_second_generator(&tg_p256, h);
    tg_generator(&tg_p256, p);
    CHECK_ERR(tg_check_var(&tg_p256, h, 0), MS_OK);
    CHECK(memcmp(h, p, 65) != 0);
    /* a point off E[q] is refused: P + (0, 0), the 2-torsion point */
    uint8_t bad[257] = {0x04};
    CHECK(tg_check_var(&tg_sakke, bad, 0) != MS_OK);
    CHECK_ERR(tg_check_var(&tg_sakke, (const uint8_t[257]){0}, 1), MS_OK);
}

/* Pedersen commitments and [k]Q on both curves against the public multi-scalar product:
 * random a and b, a = 0, b = 0, both 0 (infinity), and [k]Q for k = 0. */
static void check_commitments(const tgroup *g)
{
    uint8_t gen[TG_PT_MAX], h[TG_PT_MAX], got[TG_PT_MAX], want[TG_PT_MAX], q[TG_PT_MAX];
    tg_generator(g, gen);
    tg_second_generator(g, h);
    const uint8_t *pts[2] = {gen, h};
    for (int shape = 0; shape < 8; shape++) {
        tsc k[2];
        CHECK_ERR(tsc_random(&k[0], g, &ms_test_rng), MS_OK);
        CHECK_ERR(tsc_random(&k[1], g, &ms_test_rng), MS_OK);
        if (shape == 1 || shape == 3)
            tsc_zero(&k[0]);
        if (shape == 2 || shape == 3)
            tsc_zero(&k[1]);
        CHECK_ERR(tg_pedersen(g, got, &k[0], &k[1]), MS_OK);
        CHECK_ERR(tg_msm_var(g, want, pts, k, 2), MS_OK);
        CHECK(memcmp(got, want, g->pt_bytes) == 0);
        if (shape == 3)
            CHECK(tg_is_infinity(g, got));
        /* [k]Q for Q = [k0]gen + [k1]H (when not infinity), against the same product */
        if (shape != 3) {
            memcpy(q, got, g->pt_bytes);
            tsc m;
            CHECK_ERR(tsc_random(&m, g, &ms_test_rng), MS_OK);
            if (shape == 4)
                tsc_zero(&m);
            CHECK_ERR(tg_mul_point(g, got, q, &m), MS_OK);
            const uint8_t *qp[1] = {q};
            CHECK_ERR(tg_msm_var(g, want, qp, &m, 1), MS_OK);
            CHECK(memcmp(got, want, g->pt_bytes) == 0);
        }
    }
}

int main(void)
{
    ms_test_seed();
    CHECK_ERR(tg_init(), MS_OK);
    check_arith(&tg_sakke);
    check_arith(&tg_p256);
    check_generators();
    check_commitments(&tg_sakke);
    check_commitments(&tg_p256);
    check_shamir(&tg_sakke, 3, 1);
    check_shamir(&tg_sakke, 5, 2);
    check_shamir(&tg_p256, 3, 1);
    check_shamir(&tg_p256, 5, 2);
    return ms_test_finish();
}
