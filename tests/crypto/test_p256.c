/*
 * Our P-256 (src/crypto/p256.c) against OpenSSL's EC_POINT arithmetic on thousands of
 * random inputs: decoding and encoding, the constant-time comb [k]G (with the edge
 * scalars of its exceptional-case argument, odd and even), the variable-time multi-scalar
 * multiplication with 0 to 4 tables, affine conversions, comparisons, scalars mod q.
 */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <string.h>

#include "crypto/mont.h"
#include "crypto/p256.h"
#include "testutil.h"

#define SC MS_P256_BYTES
#define PT MS_P256_POINT_BYTES

static EC_GROUP *group;
static BN_CTX *bn;
static BIGNUM *order;

static const uint8_t q_be[SC] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51};
static const uint8_t p_be[SC] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

/* ---- OpenSSL reference ---------------------------------------------------------------- */

/* out = sum [k_i]P_i (+ [g]G), encoded; returns 0 for infinity. */
static int ref_mul(uint8_t out[PT], const uint8_t *g, const uint8_t *const *pts,
                   const uint8_t *const *ks, size_t n)
{
    EC_POINT *acc = EC_POINT_new(group), *t = EC_POINT_new(group);
    BIGNUM *k = BN_new();
    EC_POINT_set_to_infinity(group, acc);
    if (g != NULL) {
        BN_bin2bn(g, SC, k);
        EC_POINT_mul(group, t, k, NULL, NULL, bn);
        EC_POINT_add(group, acc, acc, t, bn);
    }
    for (size_t i = 0; i < n; i++) {
        EC_POINT_oct2point(group, t, pts[i], PT, bn);
        BN_bin2bn(ks[i], SC, k);
        EC_POINT_mul(group, t, NULL, t, k, bn);
        EC_POINT_add(group, acc, acc, t, bn);
    }
    int ok = !EC_POINT_is_at_infinity(group, acc);
    if (ok)
        EC_POINT_point2oct(group, acc, POINT_CONVERSION_UNCOMPRESSED, out, PT, bn);
    EC_POINT_free(acc);
    EC_POINT_free(t);
    BN_free(k);
    return ok;
}

/* A random point [k]G, encoded. */
static void random_point(uint8_t out[PT])
{
    uint8_t k[SC];
    do {
        ms_test_random(k, SC);
    } while (memcmp(k, q_be, SC) >= 0);
    k[SC - 1] |= 1;
    ref_mul(out, k, NULL, NULL, 0);
}

/* A scalar of one of several shapes: uniform 256-bit (possibly >= q), below q,
 * short, zero, or with long runs of ones and zeros (carries in the recodings). */
static void random_scalar(uint8_t k[SC], int shape)
{
    ms_test_random(k, SC);
    switch (shape % 6) {
    case 0:
        break;
    case 1:
        while (memcmp(k, q_be, SC) >= 0)
            ms_test_random(k, SC);
        break;
    case 2:
        memset(k, 0, SC - 1 - (size_t)(ms_test_random_u64() % SC));
        break;
    case 3:
        memset(k, 0, SC);
        break;
    case 4:
        for (size_t i = 0; i < SC; i++)
            k[i] = (k[i] & 1) ? 0xFF : 0x00;
        break;
    default:
        for (size_t i = 0; i < SC; i++)
            k[i] = (uint8_t)((k[i] & 0x81) == 0x81 ? 0xFF : (k[i] & 0x80 ? 0 : k[i]));
        break;
    }
}

static void sub_be(uint8_t r[SC], const uint8_t a[SC], const uint8_t b[SC])
{
    int borrow = 0;
    for (size_t i = SC; i-- > 0;) {
        int d = a[i] - b[i] - borrow;
        borrow = d < 0;
        r[i] = (uint8_t)d;
    }
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_decode(void)
{
    uint8_t enc[PT], back[PT];
    ms_p256_affine a;
    for (int i = 0; i < 200; i++) {
        random_point(enc);
        CHECK_ERR(ms_p256_decode(&a, enc), MS_OK);
        ms_p256_encode(back, &a);
        CHECK_MEM(back, enc, PT);
    }
    random_point(enc);
    enc[PT - 1] ^= 1;
    CHECK_ERR(ms_p256_decode(&a, enc), MS_ERR_POINT_NOT_ON_CURVE);
    enc[PT - 1] ^= 1;
    enc[0] = 0x02;
    CHECK_ERR(ms_p256_decode(&a, enc), MS_ERR_BAD_ENCODING);
    enc[0] = 0x04;
    memcpy(enc + 1, p_be, SC);
    CHECK_ERR(ms_p256_decode(&a, enc), MS_ERR_BAD_ENCODING);
    random_point(enc);
    memcpy(enc + 1 + SC, p_be, SC);
    CHECK_ERR(ms_p256_decode(&a, enc), MS_ERR_BAD_ENCODING);
    memset(enc, 0, PT);
    enc[0] = 0x04; /* (0, 0) is not on the curve */
    CHECK_ERR(ms_p256_decode(&a, enc), MS_ERR_POINT_NOT_ON_CURVE);
}

static void check_mul_g(const uint8_t k[SC])
{
    uint8_t want[PT], got[PT];
    ms_p256_jacobian j;
    ms_p256_affine a, w;
    CHECK(ref_mul(want, k, NULL, NULL, 0));
    ms_p256_mul_g(&j, k);
    ms_p256_to_affine(&a, &j);
    ms_p256_encode(got, &a);
    CHECK_MEM(got, want, PT);
    CHECK_ERR(ms_p256_decode(&w, want), MS_OK);
    CHECK(ms_p256_equal(&j, &w) == ~(uint64_t)0);
    /* the variable-time conversion agrees */
    CHECK(ms_p256_to_affine_var(&a, &j) == 1);
    ms_p256_encode(got, &a);
    CHECK_MEM(got, want, PT);
}

static void test_mul_g(void)
{
    uint8_t k[SC], two_r[SC];
    /* 1, 2, 3, q-1, q-2, 2^256 - q and twice it (the comb argument's edge cases),
     * 2^255, 2^255 +- 1, and windows full of ones */
    static const uint8_t small[] = {1, 2, 3, 15, 16, 17, 31, 32, 33};
    for (size_t i = 0; i < sizeof small; i++) {
        memset(k, 0, SC);
        k[SC - 1] = small[i];
        check_mul_g(k);
    }
    uint8_t one[SC] = {0}, r_minus_q[SC], zero[SC] = {0};
    one[SC - 1] = 1;
    sub_be(k, q_be, one);
    check_mul_g(k);
    sub_be(k, k, one);
    check_mul_g(k);
    sub_be(r_minus_q, zero, q_be); /* 2^256 - q */
    check_mul_g(r_minus_q);
    memcpy(two_r, r_minus_q, SC);
    int carry = 0;
    for (size_t i = SC; i-- > 0;) {
        int s = 2 * two_r[i] + carry;
        two_r[i] = (uint8_t)s;
        carry = s >> 8;
    }
    check_mul_g(two_r);
    memset(k, 0, SC);
    k[0] = 0x80;
    check_mul_g(k);
    k[SC - 1] = 1;
    check_mul_g(k);
    memset(k, 0xFF, SC);
    k[0] = 0x7F;
    check_mul_g(k);
    memset(k, 0x84, SC); /* windows with carry patterns */
    check_mul_g(k);
    memset(k, 0x82, SC);
    check_mul_g(k);
    /* d 2^253 mod q for d in 1..16, and q minus them: the scalars whose top comb row
     * adds a point equal to the sum so far if its digit is d (15 2^253 - q does, and
     * q minus it, an even scalar, is computed as it: the doubling case of the last
     * row) */
    BIGNUM *e = BN_new();
    for (int d = 1; d <= 16; d++) {
        BN_set_word(e, (BN_ULONG)d);
        BN_lshift(e, e, 253);
        BN_nnmod(e, e, order, bn);
        BN_bn2binpad(e, k, SC);
        check_mul_g(k);
        BN_sub(e, order, e);
        BN_bn2binpad(e, k, SC);
        check_mul_g(k);
    }
    BN_free(e);

    for (int i = 0; i < 2000; i++) {
        random_scalar(k, i);
        if (memcmp(k, q_be, SC) >= 0 || memcmp(k, zero, SC) == 0)
            continue;
        check_mul_g(k);
    }
}

static void check_mul_var(const uint8_t *g, size_t n, uint8_t pts[4][PT],
                          uint8_t ks[4][SC])
{
    const uint8_t *pp[4], *kp[4];
    ms_p256_table tabs[4];
    const ms_p256_table *tp[4];
    for (size_t i = 0; i < n; i++) {
        ms_p256_affine a;
        CHECK_ERR(ms_p256_decode(&a, pts[i]), MS_OK);
        ms_p256_table_var(&tabs[i], &a);
        tp[i] = &tabs[i];
        pp[i] = pts[i];
        kp[i] = ks[i];
    }
    uint8_t want[PT], got[PT];
    int finite = ref_mul(want, g, pp, kp, n);
    ms_p256_jacobian j;
    ms_p256_mul_var(&j, g, tp, kp, n);
    ms_p256_affine a;
    int ours = ms_p256_to_affine_var(&a, &j);
    CHECK(ours == finite);
    if (ours && finite) {
        ms_p256_encode(got, &a);
        CHECK_MEM(got, want, PT);
        CHECK(ms_p256_x_equals_var(&j, want + 1) == 1);
        uint8_t x2[SC];
        memcpy(x2, want + 1, SC);
        x2[SC - 1] ^= 1;
        CHECK(ms_p256_x_equals_var(&j, x2) == 0);
    } else {
        CHECK(ms_p256_x_equals_var(&j, want + 1) == 0);
    }
}

static void test_mul_var(void)
{
    uint8_t pts[4][PT], ks[4][SC], g[SC];
    for (int i = 0; i < 3000; i++) {
        size_t n = (size_t)(i % 5);
        for (size_t b = 0; b < n; b++) {
            random_point(pts[b]);
            random_scalar(ks[b], i / 5 + (int)b);
        }
        random_scalar(g, i / 7);
        check_mul_var(i % 3 == 0 ? NULL : g, n, pts, ks);
    }
    /* cancellation and doubling inside the sum: P and -P, P twice, [k]G and [-k]G */
    for (int i = 0; i < 50; i++) {
        uint8_t k[SC];
        random_scalar(k, 1);
        random_point(pts[0]);
        memcpy(pts[1], pts[0], PT);
        random_scalar(ks[0], 1);
        memcpy(ks[1], ks[0], SC);
        check_mul_var(NULL, 2, pts, ks); /* 2 [k]P */
        sub_be(ks[1], q_be, ks[0]);
        check_mul_var(NULL, 2, pts, ks); /* infinity */
        /* G itself as a table point, against [g]G */
        uint8_t one[SC] = {0};
        one[SC - 1] = 1;
        ref_mul(pts[0], one, NULL, NULL, 0);
        memcpy(ks[0], k, SC);
        sub_be(g, q_be, k);
        check_mul_var(g, 1, pts, ks); /* infinity */
        check_mul_var(k, 1, pts, ks); /* [2k]G */
    }
}

/* [k]P in constant time for k < q (ms_p256_mul_point), against OpenSSL: uniform, short,
 * zero, 1, q - 1, q - 2 and run-shaped scalars; and the constant-time addition's
 * exceptional cases (P + P, P + (-P)). */
static void test_mul_point(void)
{
    for (int i = 0; i < 600; i++) {
        uint8_t pt[PT], k[SC], want[PT], got[PT];
        random_point(pt);
        random_scalar(k, i);
        if (memcmp(k, q_be, SC) >= 0)
            sub_be(k, k, q_be);
        if (i % 50 == 7) {
            memset(k, 0, SC);
            k[SC - 1] = (uint8_t)(1 + i % 3);
        } else if (i % 50 == 9) {
            uint8_t small[SC] = {0};
            small[SC - 1] = (uint8_t)(1 + i % 2);
            sub_be(k, q_be, small);
        }
        const uint8_t *pp[1] = {pt}, *kp[1] = {k};
        int finite = ref_mul(want, NULL, pp, kp, 1);
        ms_p256_affine a, r;
        ms_p256_jacobian j;
        CHECK_ERR(ms_p256_decode(&a, pt), MS_OK);
        ms_p256_mul_point(&j, &a, k);
        CHECK(finite == ms_p256_to_affine_var(&r, &j));
        if (finite) {
            ms_p256_encode(got, &r);
            CHECK_MEM(got, want, PT);
        }
    }
    uint8_t pt[PT], two[SC] = {0}, want[PT], got[PT];
    random_point(pt);
    two[SC - 1] = 2;
    const uint8_t *pp[1] = {pt}, *kp[1] = {two};
    ref_mul(want, NULL, pp, kp, 1);
    ms_p256_affine a, neg, r;
    ms_p256_jacobian j, one_j;
    CHECK_ERR(ms_p256_decode(&a, pt), MS_OK);
    uint8_t one[SC] = {0};
    one[SC - 1] = 1;
    ms_p256_mul_point(&one_j, &a, one);
    ms_p256_add_affine(&j, &one_j, &a);
    CHECK(ms_p256_to_affine_var(&r, &j));
    ms_p256_encode(got, &r);
    CHECK_MEM(got, want, PT);
    ms_p256_negate(&neg, &a);
    ms_p256_add_affine(&j, &one_j, &neg);
    CHECK(!ms_p256_to_affine_var(&r, &j));
}

static void test_scalars(void)
{
    BIGNUM *a = BN_new(), *b = BN_new(), *r = BN_new();
    uint8_t x[SC], y[SC], got[SC], want[SC];
    for (int i = 0; i < 2000; i++) {
        random_scalar(x, i);
        random_scalar(y, i / 6);
        BN_bin2bn(x, SC, a);
        BN_bin2bn(y, SC, b);
        BN_mod_mul(r, a, b, order, bn);
        BN_bn2binpad(r, want, SC);
        ms_p256_scalar_mul_var(got, x, y);
        CHECK_MEM(got, want, SC);
        BN_nnmod(r, a, order, bn);
        BN_bn2binpad(r, want, SC);
        ms_p256_scalar_reduce_var(got, x);
        CHECK_MEM(got, want, SC);
    }
    BN_free(a);
    BN_free(b);
    BN_free(r);
}

/* A field element for the field tests: one of the edge values 0, 1, 2, p-1, p-2,
 * (p-1)/2, (p+1)/2, 2^255, 2^256 - p and 2^224, or a random one below p. */
static void field_value(uint8_t out[SC], BIGNUM *p, int which)
{
    BIGNUM *v = BN_new();
    switch (which) {
    case 0:
    case 1:
    case 2:
        BN_set_word(v, (BN_ULONG)which);
        break;
    case 3:
    case 4:
        BN_copy(v, p);
        BN_sub_word(v, (BN_ULONG)(which - 2));
        break;
    case 5:
    case 6:
        BN_copy(v, p);
        if (which == 5)
            BN_sub_word(v, 1);
        else
            BN_add_word(v, 1);
        BN_rshift1(v, v);
        break;
    case 7:
        BN_set_bit(v, 255);
        break;
    case 8:
        BN_set_bit(v, 256);
        BN_sub(v, v, p);
        break;
    case 9:
        BN_set_bit(v, 224);
        break;
    default:
        BN_rand_range(v, p);
        break;
    }
    BN_bn2binpad(v, out, SC);
    BN_free(v);
}

/* The field operations of the point formulas against BIGNUM arithmetic mod p, on
 * every pair of edge values and on random values. */
static void test_field_ops(void)
{
    BIGNUM *p = BN_new(), *a = BN_new(), *b = BN_new(), *c = BN_new(), *t = BN_new();
    BN_bin2bn(p_be, SC, p);
    uint8_t ab[SC], bb[SC], cb[SC], got[SC], want[SC];
    for (int i = 0; i < 12000; i++) {
        int wa = i < 1200 ? i % 10 : 10, wb = i < 1200 ? (i / 10) % 10 : 10;
        int wc = i < 1200 ? (i / 100) % 12 : 10;
        field_value(ab, p, wa);
        field_value(bb, p, wb);
        field_value(cb, p, wc);
        BN_bin2bn(ab, SC, a);
        BN_bin2bn(bb, SC, b);
        BN_bin2bn(cb, SC, c);
        for (int op = MS_P256_FE_MUL; op <= MS_P256_FE_INV; op++) {
            if (op == MS_P256_FE_INV && i % 20 != 0)
                continue; /* Fermat's 266 multiplications: fewer of them */
            switch (op) {
            case MS_P256_FE_MUL:
                BN_mod_mul(t, a, b, p, bn);
                break;
            case MS_P256_FE_SQR:
                BN_mod_sqr(t, a, p, bn);
                break;
            case MS_P256_FE_ADD:
                BN_mod_add(t, a, b, p, bn);
                break;
            case MS_P256_FE_SUB:
                BN_mod_sub(t, a, b, p, bn);
                break;
            case MS_P256_FE_HALF:
                BN_copy(t, a);
                if (BN_is_odd(t))
                    BN_add(t, t, p);
                BN_rshift1(t, t);
                break;
            case MS_P256_FE_DOUBLE:
                BN_mod_lshift1(t, a, p, bn);
                break;
            case MS_P256_FE_TRIPLE:
                BN_mod_lshift1(t, a, p, bn);
                BN_mod_add(t, t, a, p, bn);
                break;
            case MS_P256_FE_SUB_TWICE:
            case MS_P256_FE_SUB_TWICE_SUB:
                BN_mod_sub(t, a, b, p, bn);
                BN_mod_sub(t, t, b, p, bn);
                if (op == MS_P256_FE_SUB_TWICE_SUB)
                    BN_mod_sub(t, t, c, p, bn);
                break;
            default: /* the inverses; 0 for 0 */
                if (BN_is_zero(a))
                    BN_zero(t);
                else
                    BN_mod_inverse(t, a, p, bn);
                break;
            }
            BN_bn2binpad(t, want, SC);
            ms_p256_fe_op_for_test(got, (ms_p256_fe_op)op, ab, bb, cb);
            CHECK_MEM(got, want, SC);
        }
    }
    BN_free(p);
    BN_free(a);
    BN_free(b);
    BN_free(c);
    BN_free(t);
}

/* Euclid's algorithm on (q, h mod q) with BIGNUMs, stopped at the first remainder below
 * 2^128: the remainder, the magnitude of its cofactor t (r = t h mod q) and t's sign. */
static int euclid_half(uint8_t c[SC], uint8_t d[SC], const uint8_t h[SC])
{
    BIGNUM *r0 = BN_dup(order), *r1 = BN_new(), *t0 = BN_new(), *t1 = BN_new();
    BIGNUM *quot = BN_new(), *rem = BN_new(), *tmp = BN_new(), *bound = BN_new();
    BN_bin2bn(h, SC, r1);
    BN_nnmod(r1, r1, order, bn);
    BN_zero(t0);
    BN_one(t1);
    BN_set_bit(bound, 128);
    while (BN_cmp(r1, bound) >= 0) {
        BN_div(quot, rem, r0, r1, bn);
        BN_mul(tmp, quot, t1, bn);
        BN_sub(tmp, t0, tmp); /* t0 - quot t1 */
        BN_copy(t0, t1);
        BN_copy(t1, tmp);
        BN_copy(r0, r1);
        BN_copy(r1, rem);
    }
    int neg = BN_is_negative(t1);
    BN_set_negative(t1, 0);
    BN_bn2binpad(r1, c, SC);
    BN_bn2binpad(t1, d, SC);
    BN_free(r0);
    BN_free(r1);
    BN_free(t0);
    BN_free(t1);
    BN_free(quot);
    BN_free(rem);
    BN_free(tmp);
    BN_free(bound);
    return neg;
}

/* The lattice reduction: c = +-d h mod q, both below 2^128, d > 0; and the scalar
 * product and sum in constant time. */
static void test_half_scalars(void)
{
    BIGNUM *h = BN_new(), *c = BN_new(), *d = BN_new(), *t = BN_new();
    uint8_t hb[SC], cb[SC], db[SC], got[SC], want[SC];
    static const uint8_t zero16[16] = {0};
    uint8_t one[SC] = {0};
    one[SC - 1] = 1;
    for (int i = 0; i < 3000; i++) {
        random_scalar(hb, i);
        if (i == 0)
            memset(hb, 0, SC);
        if (i == 1)
            memcpy(hb, q_be, SC);
        if (i == 2 || i == 3) { /* 2^128 (the largest first quotient), 2^128 - 1 */
            memset(hb, 0, SC);
            hb[SC - 17] = 1;
            if (i == 3)
                sub_be(hb, hb, one);
        }
        if (i == 4)
            sub_be(hb, q_be, one); /* q - 1 */
        int neg = ms_p256_half_scalars_var(cb, db, hb);
        CHECK(neg == 0 || neg == 1);
        CHECK(memcmp(cb, zero16, 16) == 0); /* below 2^128 */
        CHECK(memcmp(db, zero16, 16) == 0);
        BN_bin2bn(hb, SC, h);
        BN_bin2bn(cb, SC, c);
        BN_bin2bn(db, SC, d);
        CHECK(!BN_is_zero(d));
        BN_mod_mul(t, d, h, order, bn); /* d h */
        if (neg && !BN_is_zero(t))
            BN_sub(t, order, t);
        CHECK(BN_cmp(t, c) == 0);
        /* and exactly Euclid's first remainder below 2^128, with its cofactor */
        uint8_t ec[SC], ed[SC];
        int eneg = euclid_half(ec, ed, hb);
        CHECK_MEM(cb, ec, SC);
        CHECK_MEM(db, ed, SC);
        CHECK(neg == eneg);

        /* a b mod q, constant time, for a, b < q */
        uint8_t a[SC], b[SC];
        random_scalar(a, 1);
        random_scalar(b, i % 2 ? 1 : 2);
        BN_bin2bn(a, SC, c);
        BN_bin2bn(b, SC, d);
        BN_mod_mul(t, c, d, order, bn);
        BN_bn2binpad(t, want, SC);
        ms_p256_scalar_mul(got, a, b);
        CHECK_MEM(got, want, SC);
        BN_mod_add(t, c, d, order, bn);
        BN_bn2binpad(t, want, SC);
        ms_p256_scalar_add(got, a, b);
        CHECK_MEM(got, want, SC);
    }
    BN_free(h);
    BN_free(c);
    BN_free(d);
    BN_free(t);
}

/* Tables built together equal tables built one by one; comparisons and negation. */
static void test_tables_compare(void)
{
    for (int i = 0; i < 20; i++) {
        uint8_t enc[3][PT];
        ms_p256_affine pts[3];
        ms_p256_table one[3], many[3];
        for (int b = 0; b < 3; b++) {
            random_point(enc[b]);
            CHECK_ERR(ms_p256_decode(&pts[b], enc[b]), MS_OK);
            ms_p256_table_var(&one[b], &pts[b]);
        }
        ms_p256_tables_var(many, pts, 3, 5);
        CHECK(memcmp(one, many, sizeof one) == 0);
        /* width 4: the first four odd multiples, and multiplications with them */
        ms_p256_tables_var(many, pts, 3, 4);
        for (int b = 0; b < 3; b++)
            CHECK(memcmp(many[b].p, one[b].p, 4 * sizeof one[b].p[0]) == 0);
        uint8_t ks[3][SC], want[PT], got[PT];
        const uint8_t *kp[3], *pp[3];
        const ms_p256_table *tp[3];
        for (int b = 0; b < 3; b++) {
            random_scalar(ks[b], i + b);
            kp[b] = ks[b];
            pp[b] = enc[b];
            tp[b] = &many[b];
        }
        ms_p256_jacobian sum;
        ms_p256_affine sa;
        ms_p256_mul_var(&sum, NULL, tp, kp, 3);
        int finite = ref_mul(want, NULL, pp, kp, 3);
        CHECK(ms_p256_to_affine_var(&sa, &sum) == finite);
        if (finite) {
            ms_p256_encode(got, &sa);
            CHECK_MEM(got, want, PT);
        }

        /* [k]G against [k]G and [k+1]G, as Jacobian points */
        uint8_t k[SC], k1[SC];
        random_scalar(k, 1);
        k[SC - 1] &= 0xFE;
        k[SC - 1] |= 0x02;
        memcpy(k1, k, SC);
        k1[SC - 1] |= 1;
        ms_p256_jacobian a, b, c;
        ms_p256_mul_g(&a, k);
        const ms_p256_table *none = NULL;
        ms_p256_mul_var(&b, k, &none, NULL, 0);
        ms_p256_mul_var(&c, k1, &none, NULL, 0);
        CHECK(ms_p256_equal_jacobian(&a, &b) == ~(uint64_t)0);
        CHECK(ms_p256_equal_jacobian(&a, &c) == 0);
        ms_p256_jacobian inf;
        memset(&inf, 0, sizeof inf);
        CHECK(ms_p256_equal_jacobian(&a, &inf) == 0);

        /* -P + P = infinity */
        ms_p256_affine neg;
        ms_p256_negate(&neg, &pts[0]);
        ms_p256_jacobian pj;
        ms_p256_add_affine_var(&pj, &inf, &pts[0]);
        ms_p256_add_affine_var(&pj, &pj, &neg);
        ms_p256_affine out;
        CHECK(ms_p256_to_affine_var(&out, &pj) == 0);
    }
}

int main(void)
{
    ms_test_seed();
    group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    bn = BN_CTX_new();
    order = BN_new();
    BN_bin2bn(q_be, SC, order);
    test_decode();
    test_mul_var(); /* before anything else builds the tables of G */
    test_mul_g();
    test_mul_point();
    test_scalars();
    test_half_scalars();
    test_field_ops();
    test_tables_compare();
#ifdef MS_FP_BACKEND_X86_64_ADX
    /* the field's other assembly version (mul and adc), which CPUs without BMI2 and
     * ADX run, against the same reference */
    int had_adx = ms_mont_cpu_has_adx;
    ms_mont_cpu_has_adx = !had_adx;
    test_field_ops();
    test_decode();
    test_mul_var();
    test_mul_g();
    ms_mont_cpu_has_adx = had_adx;
#endif
    BN_free(order);
    BN_CTX_free(bn);
    EC_GROUP_free(group);
    return ms_test_finish();
}
