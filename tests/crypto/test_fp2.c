/*
 * F_p^2 arithmetic of the pairing layer (src/crypto/fp2.h): ring identities on random
 * elements, i^2 = -1, the sparse products, conjugation, and output aliasing.
 */
#include <string.h>

#include "crypto/fp2.h"
#include "testutil.h"

static void rand_fp(ms_fp *r)
{
    uint8_t buf[MS_BYTES];
    do {
        ms_test_random(buf, sizeof buf);
    } while (!ms_fp_from_bytes(r, buf));
}

static void rand_fp2(ms_fp2 *r)
{
    rand_fp(&r->a);
    rand_fp(&r->b);
}

static int fp2_equal(const ms_fp2 *x, const ms_fp2 *y)
{
    return ms_fp2_eq(x, y) != 0;
}

/* Schoolbook product, independent of the Karatsuba one. */
static void mul_school(ms_fp2 *r, const ms_fp2 *x, const ms_fp2 *y)
{
    ms_fp t0, t1, t2, t3;
    ms_fp_mul(&t0, &x->a, &y->a);
    ms_fp_mul(&t1, &x->b, &y->b);
    ms_fp_mul(&t2, &x->a, &y->b);
    ms_fp_mul(&t3, &x->b, &y->a);
    ms_fp_sub(&r->a, &t0, &t1);
    ms_fp_add(&r->b, &t2, &t3);
}

int main(void)
{
    ms_test_seed();

    /* i^2 = -1 */
    ms_fp2 i, one, m1, t;
    ms_fp_set_zero(&i.a);
    ms_fp_set_one(&i.b);
    ms_fp2_set_one(&one);
    ms_fp_neg(&m1.a, &one.a);
    ms_fp_set_zero(&m1.b);
    ms_fp2_mul(&t, &i, &i);
    CHECK(fp2_equal(&t, &m1));
    ms_fp2_sqr(&t, &i);
    CHECK(fp2_equal(&t, &m1));

    for (int iter = 0; iter < 200; iter++) {
        ms_fp2 x, y, z, r1, r2, r3;
        rand_fp2(&x);
        rand_fp2(&y);
        rand_fp2(&z);

        /* Karatsuba against schoolbook, commutativity */
        ms_fp2_mul(&r1, &x, &y);
        mul_school(&r2, &x, &y);
        CHECK(fp2_equal(&r1, &r2));
        ms_fp2_mul(&r2, &y, &x);
        CHECK(fp2_equal(&r1, &r2));

        /* associativity and distributivity */
        ms_fp2_mul(&r1, &r1, &z);
        ms_fp2_mul(&r2, &y, &z);
        ms_fp2_mul(&r2, &x, &r2);
        CHECK(fp2_equal(&r1, &r2));
        ms_fp2_add(&r1, &y, &z);
        ms_fp2_mul(&r1, &x, &r1);
        ms_fp2_mul(&r2, &x, &y);
        ms_fp2_mul(&r3, &x, &z);
        ms_fp2_add(&r2, &r2, &r3);
        CHECK(fp2_equal(&r1, &r2));
        ms_fp2_sub(&r1, &y, &z);
        ms_fp2_mul(&r1, &x, &r1);
        ms_fp2_mul(&r2, &x, &y);
        ms_fp2_sub(&r2, &r2, &r3);
        CHECK(fp2_equal(&r1, &r2));

        /* squaring */
        ms_fp2_sqr(&r1, &x);
        mul_school(&r2, &x, &x);
        CHECK(fp2_equal(&r1, &r2));

        /* x conj(x) = a^2 + b^2 in F_p */
        ms_fp2_conj(&r1, &x);
        ms_fp2_mul(&r1, &r1, &x);
        ms_fp n2, b2;
        ms_fp_sqr(&n2, &x.a);
        ms_fp_sqr(&b2, &x.b);
        ms_fp_add(&n2, &n2, &b2);
        CHECK(ms_fp_eq(&r1.a, &n2) != 0);
        CHECK(ms_fp_iszero(&r1.b) != 0);

        /* sparse products */
        ms_fp2 sp;
        ms_fp_set_one(&sp.a);
        sp.b = y.a;
        ms_fp2_mul_pfp(&r1, &x, &y.a);
        ms_fp2_mul(&r2, &x, &sp);
        CHECK(fp2_equal(&r1, &r2));
        ms_fp2_mul_fp(&r1, &x, &y.b);
        sp.a = y.b;
        ms_fp_set_zero(&sp.b);
        ms_fp2_mul(&r2, &x, &sp);
        CHECK(fp2_equal(&r1, &r2));

        /* aliasing: every output may be an input */
        ms_fp2_mul(&r2, &x, &y);
        r1 = x;
        ms_fp2_mul(&r1, &r1, &y);
        CHECK(fp2_equal(&r1, &r2));
        r1 = y;
        ms_fp2_mul(&r1, &x, &r1);
        CHECK(fp2_equal(&r1, &r2));
        ms_fp2_sqr(&r2, &x);
        r1 = x;
        ms_fp2_sqr(&r1, &r1);
        CHECK(fp2_equal(&r1, &r2));
        ms_fp2_mul(&r2, &x, &x);
        r1 = x;
        ms_fp2_mul(&r1, &r1, &r1);
        CHECK(fp2_equal(&r1, &r2));
        ms_fp2_mul_pfp(&r2, &x, &z.a);
        r1 = x;
        ms_fp2_mul_pfp(&r1, &r1, &z.a);
        CHECK(fp2_equal(&r1, &r2));

        /* cmov */
        r1 = x;
        ms_fp2_cmov(&r1, &y, 0);
        CHECK(fp2_equal(&r1, &x));
        ms_fp2_cmov(&r1, &y, ~(uint64_t)0);
        CHECK(fp2_equal(&r1, &y));
    }

    /* x * 1 = x, x - x = 0 */
    ms_fp2 x, r;
    rand_fp2(&x);
    ms_fp2_mul(&r, &x, &one);
    CHECK(fp2_equal(&r, &x));
    ms_fp2_sub(&r, &x, &x);
    CHECK(ms_fp_iszero(&r.a) && ms_fp_iszero(&r.b));
    return ms_test_finish();
}
