/*
 * The pairing layer: the RFC 6508 reference pairing against the RFC values g = <P, P>
 * and w = <R_b, K_b>; the cold and prepared pairings against the reference and each
 * other on RFC and random points of E[q]; symmetry and bilinearity; PF_p exponentiation
 * (Lucas ladder and fixed-base table) against g_r of the RFC and at edge exponents.
 *
 * Random points are [k]P from a small affine double-and-add written here, so the test
 * does not depend on the curve layer.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto/fp2.h"
#include "crypto/pairing.h"
#include "crypto/secmem.h"
#include "testutil.h"

static const char *VEC = "rfc6508.txt";

static void load_fp(ms_fp *r, const char *name)
{
    uint8_t buf[MS_BYTES];
    size_t n = ms_test_vector(VEC, name, buf, sizeof buf);
    uint8_t full[MS_BYTES] = {0};
    memcpy(full + MS_BYTES - n, buf, n);
    CHECK(ms_fp_from_bytes(r, full) != 0);
}

static void load_scalar(uint64_t k[MS_LIMBS], const char *name)
{
    uint8_t buf[MS_BYTES];
    size_t n = ms_test_vector(VEC, name, buf, sizeof buf);
    ms_u1024_from_be(k, buf, n);
}

static int fp_equal(const ms_fp *a, const ms_fp *b)
{
    return ms_fp_eq(a, b) != 0;
}

static void generator(ms_sakke_affine *p)
{
    memcpy(p->x.v, ms_sakke_px_mont, sizeof p->x.v);
    memcpy(p->y.v, ms_sakke_py_mont, sizeof p->y.v);
}

/* ---- test-only affine arithmetic (variable time) ------------------------------------ */

typedef struct tpt {
    ms_sakke_affine p;
    int inf;
} tpt;

static void tpt_add(tpt *r, const tpt *a, const tpt *b)
{
    if (a->inf) {
        *r = *b;
        return;
    }
    if (b->inf) {
        *r = *a;
        return;
    }
    ms_fp l, t, u, one;
    ms_fp_set_one(&one);
    if (ms_fp_eq(&a->p.x, &b->p.x)) {
        ms_fp_add(&t, &a->p.y, &b->p.y);
        if (ms_fp_iszero(&t)) {
            r->inf = 1;
            return;
        }
        /* l = 3 (x^2 - 1) / (2y) */
        ms_fp_sqr(&t, &a->p.x);
        ms_fp_sub(&t, &t, &one);
        ms_fp_add(&u, &t, &t);
        ms_fp_add(&t, &u, &t);
        ms_fp_add(&u, &a->p.y, &a->p.y);
    } else {
        ms_fp_sub(&t, &b->p.y, &a->p.y);
        ms_fp_sub(&u, &b->p.x, &a->p.x);
    }
    if (ms_fp_inv_blinded(&l, &u) != 0)
        abort();
    ms_fp_mul(&l, &t, &l);
    tpt s;
    s.inf = 0;
    ms_fp_sqr(&t, &l);
    ms_fp_sub(&t, &t, &a->p.x);
    ms_fp_sub(&s.p.x, &t, &b->p.x);
    ms_fp_sub(&t, &a->p.x, &s.p.x);
    ms_fp_mul(&t, &t, &l);
    ms_fp_sub(&s.p.y, &t, &a->p.y);
    *r = s;
}

/* [k]P; aborts on infinity (only used with 0 < k < q) */
static void tmul(ms_sakke_affine *r, const ms_sakke_affine *p, const uint64_t k[MS_LIMBS])
{
    tpt acc, base;
    acc.inf = 1;
    base.inf = 0;
    base.p = *p;
    for (int bit = 1023; bit >= 0; bit--) {
        tpt_add(&acc, &acc, &acc);
        if ((k[bit / 64] >> (bit % 64)) & 1)
            tpt_add(&acc, &acc, &base);
    }
    if (acc.inf)
        abort();
    *r = acc.p;
}

static void rand_scalar(uint64_t k[MS_LIMBS])
{
    uint8_t buf[MS_BYTES];
    do {
        ms_test_random(buf, sizeof buf);
        ms_u1024_from_be(k, buf, sizeof buf);
        ms_mont_reduce_small(k, k, 0, &ms_mont_q);
    } while (ms_u1024_iszero(k));
}

/* r = a b mod q */
static void mul_mod_q(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const uint64_t b[MS_LIMBS])
{
    uint64_t am[MS_LIMBS];
    ms_mont_to(am, a, &ms_mont_q);
    ms_mont_mul(r, am, b, &ms_mont_q);
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_rfc(void)
{
    ms_sakke_affine p, rb, kb;
    ms_fp g, w, gr, out;
    generator(&p);
    load_fp(&g, "g");
    load_fp(&w, "w");
    load_fp(&gr, "g_r");
    load_fp(&rb.x, "Rbx");
    load_fp(&rb.y, "Rby");
    load_fp(&kb.x, "Kbx");
    load_fp(&kb.y, "Kby");
    CHECK(fp_equal(&g, (const ms_fp *)ms_sakke_g_mont));
    CHECK(fp_equal(&w, &gr)); /* RFC: w = g^r */

    /* reference, exactly as the RFC writes it */
    CHECK(ms_pairing_ref_var(&out, &p, &p) == 0);
    CHECK(fp_equal(&out, &g));
    CHECK(ms_pairing_ref_var(&out, &rb, &kb) == 0);
    CHECK(fp_equal(&out, &w));

    /* cold, both argument orders */
    CHECK(ms_pairing(&out, &p, &p) == 0);
    CHECK(fp_equal(&out, &g));
    CHECK(ms_pairing(&out, &rb, &kb) == 0);
    CHECK(fp_equal(&out, &w));
    CHECK(ms_pairing(&out, &kb, &rb) == 0);
    CHECK(fp_equal(&out, &w));

    /* prepared: the receiver prepares its RSK K_b and evaluates at R_b */
    ms_pairing_prepared *pp = ms_secure_alloc(ms_pairing_prepared_size());
    CHECK(pp != NULL);
    CHECK(ms_pairing_prepare(pp, &kb) == 0);
    CHECK(ms_pairing_prepared_eval(&out, pp, &rb) == 0);
    CHECK(fp_equal(&out, &w));
    CHECK(ms_pairing_prepare(pp, &p) == 0);
    CHECK(ms_pairing_prepared_eval(&out, pp, &p) == 0);
    CHECK(fp_equal(&out, &g));
    /* the table is position independent: a copy works */
    ms_pairing_prepared *pp2 = malloc(ms_pairing_prepared_size());
    CHECK(pp2 != NULL);
    memcpy(pp2, pp, ms_pairing_prepared_size());
    ms_secure_free(pp, ms_pairing_prepared_size());
    CHECK(ms_pairing_prepared_eval(&out, pp2, &p) == 0);
    CHECK(fp_equal(&out, &g));
    /* a table that was never prepared (or whose preparation failed: it is wiped then)
     * is refused, not evaluated */
    memset(pp2, 0, ms_pairing_prepared_size());
    CHECK(ms_pairing_prepared_eval(&out, pp2, &p) != 0);
    free(pp2);

    /* g^r */
    uint64_t r[MS_LIMBS];
    load_scalar(r, "r");
    CHECK(ms_pfp_pow(&out, &g, r) == 0);
    CHECK(fp_equal(&out, &gr));
    ms_pfp_table *tb = malloc(ms_pfp_table_size());
    CHECK(tb != NULL);
    CHECK(ms_pfp_table_build(tb, &g) == 0);
    CHECK(ms_pfp_table_pow(&out, tb, r) == 0);
    CHECK(fp_equal(&out, &gr));
    /* unnormalised form: g_r = b/a */
    ms_fp2 v;
    ms_fp t;
    CHECK(ms_pfp_table_pow_fp2(&v, tb, r) == 0);
    ms_fp_mul(&t, &gr, &v.a);
    CHECK(fp_equal(&t, &v.b));
    free(tb);
}

static void test_random(void)
{
    ms_sakke_affine p;
    ms_fp g;
    generator(&p);
    load_fp(&g, "g");
    ms_pairing_prepared *pp = ms_secure_alloc(ms_pairing_prepared_size());
    CHECK(pp != NULL);

    for (int iter = 0; iter < 3; iter++) {
        uint64_t a[MS_LIMBS], b[MS_LIMBS], ab[MS_LIMBS];
        ms_sakke_affine pa, pb;
        ms_fp e1, e2, e3, e4;
        rand_scalar(a);
        rand_scalar(b);
        tmul(&pa, &p, a);
        tmul(&pb, &p, b);

        CHECK(ms_pairing(&e1, &pa, &pb) == 0);
        if (iter == 0) {
            CHECK(ms_pairing_ref_var(&e2, &pa, &pb) == 0);
            CHECK(fp_equal(&e1, &e2));
        }
        /* symmetry */
        CHECK(ms_pairing(&e2, &pb, &pa) == 0);
        CHECK(fp_equal(&e1, &e2));
        /* bilinearity: <[a]P, [b]P> = g^(ab) */
        mul_mod_q(ab, a, b);
        CHECK(ms_pfp_pow(&e3, &g, ab) == 0);
        CHECK(fp_equal(&e1, &e3));
        /* prepared = cold, several evaluation points per table */
        CHECK(ms_pairing_prepare(pp, &pa) == 0);
        CHECK(ms_pairing_prepared_eval(&e4, pp, &pb) == 0);
        CHECK(fp_equal(&e1, &e4));
        CHECK(ms_pairing_prepared_eval(&e4, pp, &p) == 0);
        CHECK(ms_pfp_pow(&e3, &g, a) == 0);
        CHECK(fp_equal(&e3, &e4));
        CHECK(ms_pairing(&e2, &p, &pa) == 0);
        CHECK(fp_equal(&e2, &e4));
    }
    ms_secure_free(pp, ms_pairing_prepared_size());
}

static void test_edges(void)
{
    ms_sakke_affine p, np;
    ms_fp g, ng, out, zero;
    generator(&p);
    load_fp(&g, "g");
    ms_fp_neg(&ng, &g);
    ms_fp_set_zero(&zero);
    np.x = p.x;
    ms_fp_neg(&np.y, &p.y); /* -P = [q-1]P */

    /* <P, -P> = <-P, P> = g^-1, whose representative is -g */
    CHECK(ms_pairing(&out, &p, &np) == 0);
    CHECK(fp_equal(&out, &ng));
    CHECK(ms_pairing(&out, &np, &p) == 0);
    CHECK(fp_equal(&out, &ng));
    CHECK(ms_pairing(&out, &np, &np) == 0);
    CHECK(fp_equal(&out, &g));
    ms_pairing_prepared *pp = malloc(ms_pairing_prepared_size());
    CHECK(pp != NULL);
    CHECK(ms_pairing_prepare(pp, &np) == 0);
    CHECK(ms_pairing_prepared_eval(&out, pp, &p) == 0);
    CHECK(fp_equal(&out, &ng));
    CHECK(ms_pairing_prepared_eval(&out, pp, &np) == 0);
    CHECK(fp_equal(&out, &g));
    /* an unprepared table is refused */
    memset(pp, 0, ms_pairing_prepared_size());
    CHECK(ms_pairing_prepared_eval(&out, pp, &p) == -1);
    free(pp);

    /* exponents 0, 1, 2, q - 1, q */
    ms_pfp_table *tb = malloc(ms_pfp_table_size());
    CHECK(tb != NULL);
    CHECK(ms_pfp_table_build(tb, &g) == 0);
    uint64_t k[MS_LIMBS] = {0};
    CHECK(ms_pfp_pow(&out, &g, k) == 0);
    CHECK(fp_equal(&out, &zero));
    CHECK(ms_pfp_table_pow(&out, tb, k) == 0);
    CHECK(fp_equal(&out, &zero));
    k[0] = 1;
    CHECK(ms_pfp_pow(&out, &g, k) == 0);
    CHECK(fp_equal(&out, &g));
    CHECK(ms_pfp_table_pow(&out, tb, k) == 0);
    CHECK(fp_equal(&out, &g));
    /* g^2: (1 + ig)^2 = (1 - g^2) + 2ig, representative 2g / (1 - g^2) */
    ms_fp one, t, u, g2;
    ms_fp_set_one(&one);
    ms_fp_sqr(&t, &g);
    ms_fp_sub(&t, &one, &t);
    ms_fp_inv(&t, &t);
    ms_fp_add(&u, &g, &g);
    ms_fp_mul(&g2, &u, &t);
    k[0] = 2;
    CHECK(ms_pfp_pow(&out, &g, k) == 0);
    CHECK(fp_equal(&out, &g2));
    CHECK(ms_pfp_table_pow(&out, tb, k) == 0);
    CHECK(fp_equal(&out, &g2));
    ms_pairing_qm1(k);
    CHECK(ms_pfp_pow(&out, &g, k) == 0);
    CHECK(fp_equal(&out, &ng));
    CHECK(ms_pfp_table_pow(&out, tb, k) == 0);
    CHECK(fp_equal(&out, &ng));
    memcpy(k, ms_mont_q.m, sizeof k);
    CHECK(ms_pfp_pow(&out, &g, k) == 0);
    CHECK(fp_equal(&out, &zero));
    CHECK(ms_pfp_table_pow(&out, tb, k) == 0);
    CHECK(fp_equal(&out, &zero));
    /* all-ones 1024-bit exponent: both paths agree (no lost carry at the top) */
    memset(k, 0xff, sizeof k);
    ms_fp o2;
    CHECK(ms_pfp_pow(&out, &g, k) == 0);
    CHECK(ms_pfp_table_pow(&o2, tb, k) == 0);
    CHECK(fp_equal(&out, &o2));
    /* the identity as base */
    k[0] = 12345;
    CHECK(ms_pfp_pow(&out, &zero, k) == 0);
    CHECK(fp_equal(&out, &zero));

    /* random exponents: table = ladder = product rule g^a g^b = g^(a+b) */
    for (int iter = 0; iter < 8; iter++) {
        uint64_t a[MS_LIMBS];
        rand_scalar(a);
        ms_fp x1, x2;
        CHECK(ms_pfp_pow(&x1, &g, a) == 0);
        CHECK(ms_pfp_table_pow(&x2, tb, a) == 0);
        CHECK(fp_equal(&x1, &x2));
        /* g^(a+1) = g^a * g: (x + g) / (1 - x g) */
        uint64_t a1[MS_LIMBS], onek[MS_LIMBS] = {1};
        ms_u1024_add(a1, a, onek);
        ms_fp num, den, want;
        ms_fp_add(&num, &x1, &g);
        ms_fp_mul(&den, &x1, &g);
        ms_fp_sub(&den, &one, &den);
        ms_fp_inv(&den, &den);
        ms_fp_mul(&want, &num, &den);
        CHECK(ms_pfp_pow(&x2, &g, a1) == 0);
        CHECK(fp_equal(&x2, &want));
    }
    free(tb);
}

int main(void)
{
    ms_test_seed();
    ms_test_check_fp_backend();
    test_rfc();
    test_edges();
    test_random();
    return ms_test_finish();
}
