/*
 * The SAKKE curve E: y^2 = x^3 - 3x over F_p and its subgroup E[q] (see sakke_curve.h).
 *
 * Three kinds of arithmetic live here:
 * - Jacobian (X : Y : Z) = (X/Z^2, Y/Z^3), the contract's representation: doubling with
 *   the a = -3 formula (3M + 5S), and complete addition built from the usual incomplete
 *   formulas plus masks that select the doubling or the other operand when needed.
 * - Homogeneous projective (X : Y : Z) = (X/Z, Y/Z), used only in the last column of the
 *   fixed-base comb: the Renes-Costello-Batina addition law (specialised to a = -3,
 *   b = 0) is complete for any two points whose difference is not of order 2, which
 *   holds for all of E[q]. The earlier columns are proven free of special cases (see
 *   ms_sakke_comb_mul) and use the cheaper Jacobian mixed addition without masks.
 * - Variable-time versions for public scalars (wNAF), used for the order check.
 */
#include "sakke_curve.h"

#include <stdlib.h>
#include <string.h>

#include "mikeysakke/crypto.h"

/* ---- small field helpers ---------------------------------------------------------------- */

static void fp_mul3(ms_fp *r, const ms_fp *a)
{
    ms_fp t;
    ms_fp_add(&t, a, a);
    ms_fp_add(r, &t, a);
}

static void fp_mul4(ms_fp *r, const ms_fp *a)
{
    ms_fp_add(r, a, a);
    ms_fp_add(r, r, r);
}

static void fp_mul8(ms_fp *r, const ms_fp *a)
{
    fp_mul4(r, a);
    ms_fp_add(r, r, r);
}

/* All ones if y^2 == x^3 - 3x. */
static uint64_t affine_on_curve(const ms_sakke_affine *a)
{
    ms_fp lhs, rhs, t, three;
    ms_fp_set_one(&t);
    fp_mul3(&three, &t);
    ms_fp_sqr(&lhs, &a->y);
    ms_fp_sqr(&t, &a->x);
    ms_fp_sub(&t, &t, &three);
    ms_fp_mul(&rhs, &t, &a->x);
    return ms_fp_eq(&lhs, &rhs);
}

/* ---- encoding ----------------------------------------------------------------------------- */

void ms_sakke_generator(ms_sakke_affine *p)
{
    memcpy(p->x.v, ms_sakke_px_mont, sizeof p->x.v);
    memcpy(p->y.v, ms_sakke_py_mont, sizeof p->y.v);
}

ms_err ms_sakke_point_decode(ms_sakke_affine *r, const uint8_t in[257])
{
    /* Every check runs to the end and only the verdicts are declassified, so this also
     * serves for secret points (the RSK) without leaking more than valid/invalid. */
    uint64_t ok_x = ms_fp_from_bytes(&r->x, in + 1);
    uint64_t ok_y = ms_fp_from_bytes(&r->y, in + 1 + MS_BYTES);
    uint64_t encoding_ok = ok_x & ok_y & ms_ct_eq(in[0], 0x04);
    uint64_t on_curve = affine_on_curve(r);
    MS_CT_PUBLIC(&encoding_ok, sizeof encoding_ok);
    MS_CT_PUBLIC(&on_curve, sizeof on_curve);
    if (!encoding_ok)
        return MS_ERR_BAD_ENCODING;
    if (!on_curve)
        return MS_ERR_POINT_NOT_ON_CURVE;
    return MS_OK;
}

void ms_sakke_point_encode(uint8_t out[257], const ms_sakke_affine *a)
{
    out[0] = 0x04;
    ms_fp_to_bytes(out + 1, &a->x);
    ms_fp_to_bytes(out + 1 + MS_BYTES, &a->y);
}

/* ---- Jacobian arithmetic -------------------------------------------------------------- */

static void jac_set_infinity(ms_sakke_jac *r)
{
    ms_fp_set_one(&r->x);
    ms_fp_set_one(&r->y);
    ms_fp_set_zero(&r->z);
}

static void jac_cmov(ms_sakke_jac *r, const ms_sakke_jac *a, uint64_t mask)
{
    ms_fp_cmov(&r->x, &a->x, mask);
    ms_fp_cmov(&r->y, &a->y, mask);
    ms_fp_cmov(&r->z, &a->z, mask);
}

void ms_sakke_jac_from_affine(ms_sakke_jac *r, const ms_sakke_affine *a)
{
    r->x = a->x;
    r->y = a->y;
    ms_fp_set_one(&r->z);
}

int ms_sakke_jac_to_affine(ms_sakke_affine *r, const ms_sakke_jac *a)
{
    ms_fp zi, zi2, zi3;
    if (ms_fp_inv_blinded(&zi, &a->z) != 0)
        return -1;
    ms_fp_sqr(&zi2, &zi);
    ms_fp_mul(&zi3, &zi2, &zi);
    ms_fp_mul(&r->x, &a->x, &zi2);
    ms_fp_mul(&r->y, &a->y, &zi3);
    ms_wipe(&zi, sizeof zi);
    ms_wipe(&zi2, sizeof zi2);
    ms_wipe(&zi3, sizeof zi3);
    return 0;
}

void ms_sakke_jac_double(ms_sakke_jac *r, const ms_sakke_jac *a)
{
    /* dbl-2001-b for a = -3. Complete on its own: Z = 0 gives Z3 = 0 and a point of
     * order 2 (Y = 0) gives Z3 = 0 as well. */
    ms_fp delta, gamma, beta, alpha, t, u, x3, y3, z3;
    ms_fp_sqr(&delta, &a->z);
    ms_fp_sqr(&gamma, &a->y);
    ms_fp_mul(&beta, &a->x, &gamma);
    ms_fp_sub(&t, &a->x, &delta);
    ms_fp_add(&u, &a->x, &delta);
    ms_fp_mul(&alpha, &t, &u);
    fp_mul3(&alpha, &alpha);
    ms_fp_add(&t, &a->y, &a->z);
    ms_fp_sqr(&t, &t);
    ms_fp_sub(&t, &t, &gamma);
    ms_fp_sub(&z3, &t, &delta);
    ms_fp_sqr(&x3, &alpha);
    fp_mul8(&t, &beta);
    ms_fp_sub(&x3, &x3, &t);
    fp_mul4(&t, &beta);
    ms_fp_sub(&t, &t, &x3);
    /* Y3 = alpha t - 8 gamma^2 = alpha t - 2 (2 gamma)^2, reduced once */
    ms_fp_add(&u, &gamma, &gamma);
    ms_fp_mul_sub_mul(&y3, &alpha, &t, 2, &u, &u);
    r->x = x3;
    r->y = y3;
    r->z = z3;
}

/* add-2007-bl without the special cases: correct unless a or b is infinity or
 * x(a) == x(b). *h0 is all ones if x(a) == x(b) (H = 0), *r0 if y(a) == y(b) as well
 * (then the caller must double). When H = 0 and the y differ the result has Z3 = 0,
 * which is the right answer (a = -b). */
static void jac_add_core(ms_sakke_jac *r, const ms_sakke_jac *a, const ms_sakke_jac *b,
                         uint64_t *h0, uint64_t *r0)
{
    ms_fp z1z1, z2z2, u1, u2, s1, s2, h, i, j, rr, v, t, x3, y3, z3;
    ms_fp_sqr(&z1z1, &a->z);
    ms_fp_sqr(&z2z2, &b->z);
    ms_fp_mul(&u1, &a->x, &z2z2);
    ms_fp_mul(&u2, &b->x, &z1z1);
    ms_fp_mul(&t, &b->z, &z2z2);
    ms_fp_mul(&s1, &a->y, &t);
    ms_fp_mul(&t, &a->z, &z1z1);
    ms_fp_mul(&s2, &b->y, &t);
    ms_fp_sub(&h, &u2, &u1);
    ms_fp_sub(&rr, &s2, &s1);
    *h0 = ms_fp_iszero(&h);
    *r0 = ms_fp_iszero(&rr);
    ms_fp_add(&rr, &rr, &rr);
    ms_fp_add(&i, &h, &h);
    ms_fp_sqr(&i, &i);
    ms_fp_mul(&j, &h, &i);
    ms_fp_mul(&v, &u1, &i);
    ms_fp_sqr(&x3, &rr);
    ms_fp_sub(&x3, &x3, &j);
    ms_fp_sub(&x3, &x3, &v);
    ms_fp_sub(&x3, &x3, &v);
    ms_fp_sub(&t, &v, &x3);
    ms_fp_mul_sub_mul(&y3, &rr, &t, 2, &s1, &j); /* Y3 = rr t - 2 S1 J, reduced once */
    ms_fp_add(&t, &a->z, &b->z);
    ms_fp_sqr(&t, &t);
    ms_fp_sub(&t, &t, &z1z1);
    ms_fp_sub(&t, &t, &z2z2);
    ms_fp_mul(&z3, &t, &h);
    r->x = x3;
    r->y = y3;
    r->z = z3;
}

/* madd-2007-bl (b affine) without the special cases, 7M + 4S; masks as for
 * jac_add_core (h0 may be NULL when the caller knows no special case can occur). */
static void jac_add_affine_core(ms_sakke_jac *r, const ms_sakke_jac *a, const ms_sakke_affine *b,
                                uint64_t *h0, uint64_t *r0)
{
    ms_fp z1z1, u2, s2, h, hh, i, j, rr, v, t, x3, y3, z3;
    ms_fp_sqr(&z1z1, &a->z);
    ms_fp_mul(&u2, &b->x, &z1z1);
    ms_fp_mul(&t, &a->z, &z1z1);
    ms_fp_mul(&s2, &b->y, &t);
    ms_fp_sub(&h, &u2, &a->x);
    ms_fp_sub(&rr, &s2, &a->y);
    if (h0 != NULL) {
        *h0 = ms_fp_iszero(&h);
        *r0 = ms_fp_iszero(&rr);
    }
    ms_fp_add(&rr, &rr, &rr);
    ms_fp_sqr(&hh, &h);
    fp_mul4(&i, &hh);
    ms_fp_mul(&j, &h, &i);
    ms_fp_mul(&v, &a->x, &i);
    ms_fp_sqr(&x3, &rr);
    ms_fp_sub(&x3, &x3, &j);
    ms_fp_sub(&x3, &x3, &v);
    ms_fp_sub(&x3, &x3, &v);
    ms_fp_sub(&t, &v, &x3);
    /* Y3 = rr t - 2 Y J, reduced once */
    ms_fp_mul_sub_mul(&y3, &rr, &t, 2, &a->y, &j);
    ms_fp_add(&t, &a->z, &h);
    ms_fp_sqr(&t, &t);
    ms_fp_sub(&t, &t, &z1z1);
    ms_fp_sub(&z3, &t, &hh);
    r->x = x3;
    r->y = y3;
    r->z = z3;
}

void ms_sakke_jac_add(ms_sakke_jac *r, const ms_sakke_jac *a, const ms_sakke_jac *b)
{
    ms_sakke_jac sum, dbl;
    uint64_t h0, r0;
    uint64_t a_inf = ms_fp_iszero(&a->z), b_inf = ms_fp_iszero(&b->z);
    jac_add_core(&sum, a, b, &h0, &r0);
    ms_sakke_jac_double(&dbl, a);
    jac_cmov(&sum, &dbl, h0 & r0 & ~a_inf & ~b_inf);
    jac_cmov(&sum, a, b_inf);
    jac_cmov(&sum, b, a_inf);
    *r = sum;
}

void ms_sakke_jac_add_affine(ms_sakke_jac *r, const ms_sakke_jac *a, const ms_sakke_affine *b)
{
    ms_sakke_jac sum, dbl, bj;
    uint64_t h0, r0;
    uint64_t a_inf = ms_fp_iszero(&a->z);
    jac_add_affine_core(&sum, a, b, &h0, &r0);
    ms_sakke_jac_double(&dbl, a);
    ms_sakke_jac_from_affine(&bj, b);
    jac_cmov(&sum, &dbl, h0 & r0 & ~a_inf);
    jac_cmov(&sum, &bj, a_inf);
    *r = sum;
}

uint64_t ms_sakke_jac_eq_affine(const ms_sakke_jac *a, const ms_sakke_affine *b)
{
    ms_fp z2, z3, ex, ey;
    ms_fp_sqr(&z2, &a->z);
    ms_fp_mul(&z3, &z2, &a->z);
    ms_fp_mul(&ex, &b->x, &z2);
    ms_fp_mul(&ey, &b->y, &z3);
    return ms_fp_eq(&a->x, &ex) & ms_fp_eq(&a->y, &ey) & ~ms_fp_iszero(&a->z);
}

/* ---- variable-time arithmetic (public data) ------------------------------------------ */

/* The branch conditions are declassified: for points of E[q] under a public scalar they
 * follow from the scalar alone, so the order check may also run on a secret RSK. */
static int declassify(uint64_t mask)
{
    MS_CT_PUBLIC(&mask, sizeof mask);
    return mask != 0;
}

static void jac_add_var(ms_sakke_jac *r, const ms_sakke_jac *a, const ms_sakke_jac *b)
{
    if (declassify(ms_fp_iszero(&a->z))) {
        *r = *b;
        return;
    }
    if (declassify(ms_fp_iszero(&b->z))) {
        *r = *a;
        return;
    }
    uint64_t h0, r0;
    ms_sakke_jac sum;
    jac_add_core(&sum, a, b, &h0, &r0);
    if (declassify(h0 & r0))
        ms_sakke_jac_double(r, a);
    else
        *r = sum;
}

static void jac_add_affine_var(ms_sakke_jac *r, const ms_sakke_jac *a, const ms_sakke_affine *b)
{
    if (declassify(ms_fp_iszero(&a->z))) {
        ms_sakke_jac_from_affine(r, b);
        return;
    }
    uint64_t h0, r0;
    ms_sakke_jac sum;
    jac_add_affine_core(&sum, a, b, &h0, &r0);
    if (declassify(h0 & r0))
        ms_sakke_jac_double(r, a);
    else
        *r = sum;
}

/* Width-w NAF of a 1024-bit k: digits[i] in {0, +-1, +-3, ..., +-(2^(w-1) - 1)};
 * returns the number of digits. */
#define WNAF_W 5
#define WNAF_MAX (MS_LIMBS * 64 + 1)
static int wnaf(int8_t digits[WNAF_MAX], const uint64_t k[MS_LIMBS])
{
    uint64_t v[MS_LIMBS + 1];
    memcpy(v, k, MS_LIMBS * sizeof v[0]);
    v[MS_LIMBS] = 0;
    int n = 0;
    for (;;) {
        int nonzero = 0;
        for (int i = 0; i <= MS_LIMBS; i++)
            nonzero |= v[i] != 0;
        if (!nonzero)
            break;
        int d = 0;
        if (v[0] & 1) {
            d = (int)(v[0] & ((1u << WNAF_W) - 1));
            if (d >= 1 << (WNAF_W - 1))
                d -= 1 << WNAF_W;
            /* v -= d, leaving v divisible by 2^w */
            uint64_t add = d < 0 ? (uint64_t)(-d) : 0, sub = d > 0 ? (uint64_t)d : 0;
            uint64_t carry = add, borrow = sub;
            for (int i = 0; i <= MS_LIMBS; i++) {
                uint64_t x = v[i] + carry;
                carry = x < carry;
                uint64_t y = x - borrow;
                borrow = x < borrow;
                v[i] = y;
            }
        }
        digits[n++] = (int8_t)d;
        for (int i = 0; i < MS_LIMBS; i++)
            v[i] = (v[i] >> 1) | (v[i + 1] << 63);
        v[MS_LIMBS] >>= 1;
    }
    return n;
}

void ms_sakke_mul_var(ms_sakke_jac *r, const ms_sakke_affine *base, const uint64_t k[MS_LIMBS])
{
    /* odd multiples base, 3 base, ..., 15 base */
    ms_sakke_jac table[1 << (WNAF_W - 2)], twice;
    ms_sakke_jac_from_affine(&table[0], base);
    ms_sakke_jac_double(&twice, &table[0]);
    for (int i = 1; i < 1 << (WNAF_W - 2); i++)
        jac_add_var(&table[i], &table[i - 1], &twice);

    int8_t digits[WNAF_MAX];
    int n = wnaf(digits, k);
    ms_sakke_jac acc;
    jac_set_infinity(&acc);
    int started = 0;
    for (int i = n - 1; i >= 0; i--) {
        if (started)
            ms_sakke_jac_double(&acc, &acc);
        int d = digits[i];
        if (d == 0)
            continue;
        ms_sakke_jac t = table[(d < 0 ? -d : d) / 2];
        if (d < 0)
            ms_fp_neg(&t.y, &t.y);
        jac_add_var(&acc, &acc, &t);
        started = 1;
    }
    *r = acc;
}

ms_err ms_sakke_point_check_order_var(const ms_sakke_affine *a)
{
    ms_sakke_jac t;
    ms_sakke_mul_var(&t, a, ms_mont_q.m);
    return declassify(ms_fp_iszero(&t.z)) ? MS_OK : MS_ERR_POINT_ORDER;
}

/* ---- membership in E[q] by two levels of 2-descent (constant time) ---------------------
 *
 * E(F_p) is cyclic of order 4q: its only rational point of order 2 is T = (0, 0), as 3
 * is not a square mod p, so the 2-part is Z/4. Hence E[q] = 4E(F_p), and membership in
 * 4E can be decided by square tests instead of computing [q]A (~10 k multiplications):
 *
 * - A is in 2E iff x_A is a nonzero square: x mod squares is a homomorphism on E(F_p)
 *   whose kernel is the image of the dual 2-isogeny, which is 2E here (both have index
 *   2; a point of order 4 has a non-square x, -3 being a square and -6 not).
 * - E is 2-isogenous to E': y^2 = x^3 + 12x, and 2E = phi'(E') for the dual isogeny
 *   phi'(x', y') = (y'^2 / 4x'^2, ...). The preimages of A in 2E have
 *   x' = 2 x_A +- 2 y_A / s with s^2 = x_A (they differ by (0, 0) of E'), and
 *   A is in 4E = phi'(2E') iff A' lies in 2E' or 2E' + (0, 0). E' has all its 2-torsion
 *   rational, (0, 0) and (+-e, 0) with e^2 = -12; with the descent map
 *   x' -> (x', x' - e) mod squares, whose kernel is 2E' and which sends (0, 0) to
 *   (12, -e) = (non-square, non-square) for the root e that is a square, the condition
 *   is that x' (x' - e) is a square.
 * With w = x' s = 2 (x_A s + y_A): x' (x' - e) = w (w - e s) / s^2, and s^2 = x_A is a
 * square, so no inversion is needed. One exponentiation (s = x_A^((p+1)/4)) and one
 * blinded Legendre symbol. tests/crypto/test_curve.c checks it against [q]A.
 */

/* e: the square root of -12 mod p that is itself a square (Montgomery form). */
static const uint64_t descent_e_mont[MS_LIMBS] = {
    0xb1fc1cd7ae42ac06ull, 0x59663f839ded121bull, 0xc7884afccd80e683ull, 0x78717721faecce61ull,
    0x03419508a3abd0dbull, 0xcef09571e18ec1b9ull, 0xaa5fbbdd0d8622c3ull, 0x4919b826f2fd260cull,
    0x90127f94f65ef248ull, 0x2c296fc9bcad88d5ull, 0x30a9c74b4c22dfddull, 0xa0cbc3501d258a1bull,
    0x691a066ccf43fda1ull, 0xcff836fad0131787ull, 0x691689c558e725cbull, 0x76d128add86d50a6ull
};

uint64_t ms_sakke_point_in_eq(const ms_sakke_affine *a)
{
    /* exponents (p + 1)/4 = q (1022 bits) and (p - 1)/2 = 2q - 1 (1023 bits) */
    uint64_t leg_e[MS_LIMBS];
    for (int i = MS_LIMBS - 1; i > 0; i--)
        leg_e[i] = (ms_mont_q.m[i] << 1) | (ms_mont_q.m[i - 1] >> 63);
    leg_e[0] = (ms_mont_q.m[0] << 1) - 1; /* q is odd: no borrow */

    ms_fp s, t, w, e, n, one;
    memcpy(e.v, descent_e_mont, sizeof e.v);
    ms_fp_set_one(&one);
    ms_mont_pow_pubexp(s.v, a->x.v, ms_mont_q.m, 1022, &ms_mont_p);
    ms_fp_sqr(&t, &s);
    uint64_t in_2e = ms_fp_eq(&t, &a->x) & ~ms_fp_iszero(&a->x);
    ms_fp_mul(&w, &a->x, &s);
    ms_fp_add(&w, &w, &a->y);
    ms_fp_add(&w, &w, &w);
    ms_fp_mul(&t, &e, &s);
    ms_fp_sub(&t, &w, &t);
    ms_fp_mul(&n, &w, &t);
    /* The Legendre symbol is blinded and computed in variable time, so its value
     * becomes known: replace n by the non-square -1 when A is not in 2E (or n = 0), and
     * then the symbol is 1 exactly when A is in E[q], i.e. it reveals only the verdict. */
    ms_fp_neg(&t, &one);
    ms_fp_cmov(&n, &t, ~in_2e | ms_fp_iszero(&n));
    int leg = ms_mont_legendre_blinded(n.v, &ms_mont_p);
    uint64_t in_4e;
    if (leg == -2) {
        /* the RNG failed: Euler's criterion instead, slower but needing no randomness */
        ms_mont_pow_pubexp(t.v, n.v, leg_e, 1023, &ms_mont_p);
        in_4e = ms_fp_eq(&t, &one);
    } else {
        in_4e = ms_ct_mask((uint64_t)(leg == 1));
    }
    ms_wipe(&s, sizeof s);
    ms_wipe(&w, sizeof w);
    ms_wipe(&n, sizeof n);
    ms_wipe(&t, sizeof t);
    return in_4e;
}

/* ---- constant-time scalar multiplication, any base ------------------------------------ */

/* 6 bits of a 16-limb k starting at bit `pos` (pos may be -1: bit -1 reads as 0).
 * The position is public; the bits are not inspected. */
static uint64_t scalar_bits(const uint64_t k[MS_LIMBS], int pos, unsigned count)
{
    uint64_t mask = ((uint64_t)1 << count) - 1;
    if (pos < 0)
        return (k[0] << -pos) & mask;
    unsigned limb = (unsigned)pos / 64, off = (unsigned)pos % 64;
    if (limb >= MS_LIMBS)
        return 0;
    uint64_t v = k[limb] >> off;
    if (off + count > 64 && limb + 1 < MS_LIMBS)
        v |= k[limb + 1] << (64 - off);
    return v & mask;
}

#define MUL_W 5
#define MUL_WINDOWS ((MS_LIMBS * 64 - 1) / MUL_W + 1) /* 205 windows reach bit 1024 */

void ms_sakke_mul(ms_sakke_jac *r, const ms_sakke_affine *base, const uint64_t k[MS_LIMBS])
{
    /* Signed fixed window (Booth recoding): k = sum d_i 2^(5i), d_i in [-16, 16]. The
     * table holds 0..16 times base; every lookup scans all of it. Additions use the
     * complete formula, so no scalar (any k < 2^1024 works: the top window's sign bit,
     * bit 1024, is zero) and no base point on the curve needs special care. Not on a hot
     * path (master key only), so simplicity wins over the comb's tricks. */
    ms_sakke_jac table[(1 << (MUL_W - 1)) + 1];
    jac_set_infinity(&table[0]);
    ms_sakke_jac_from_affine(&table[1], base);
    for (int i = 2; i <= 1 << (MUL_W - 1); i++) {
        if (i % 2 == 0)
            ms_sakke_jac_double(&table[i], &table[i / 2]);
        else
            ms_sakke_jac_add(&table[i], &table[i - 1], &table[1]);
    }

    ms_sakke_jac acc, t;
    jac_set_infinity(&acc);
    jac_set_infinity(&t);
    for (int w = MUL_WINDOWS - 1; w >= 0; w--) {
        uint64_t bits = scalar_bits(k, MUL_W * w - 1, MUL_W + 1);
        /* BoringSSL-style recoding of the 6-bit window into sign and magnitude */
        uint64_t sign = ms_ct_mask(bits >> MUL_W);
        uint64_t d = ms_ct_select(sign, ((uint64_t)1 << (MUL_W + 1)) - bits - 1, bits);
        d = (d >> 1) + (d & 1);

        for (uint64_t i = 0; i <= 1 << (MUL_W - 1); i++)
            jac_cmov(&t, &table[i], ms_ct_eq(i, d));
        ms_fp ny;
        ms_fp_neg(&ny, &t.y);
        ms_fp_cmov(&t.y, &ny, sign);

        if (w == MUL_WINDOWS - 1) {
            acc = t;
        } else {
            for (int i = 0; i < MUL_W; i++)
                ms_sakke_jac_double(&acc, &acc);
            ms_sakke_jac_add(&acc, &acc, &t);
        }
    }
    *r = acc;
    ms_wipe(&acc, sizeof acc);
    ms_wipe(&t, sizeof t);
    ms_wipe(table, sizeof table);
}

/* ---- projective (X : Y : Z) arithmetic for the comb ----------------------------------- */

typedef struct proj {
    ms_fp x, y, z;
} proj;

/* r = a + b (b affine) by the complete law of Renes, Costello and Batina (2016, the
 * a-general formula with b = 0, a = -3 substituted): 11M, no special cases for points of
 * odd order, including a = infinity = (0 : 1 : 0) and a = +-b.
 *   t0 = X1 x2, t1 = Y1 y2, A = X1 y2 + x2 Y1, B = X1 + x2 Z1, C = Y1 + y2 Z1,
 *   U = t1 + 3B, V = t1 - 3B, W = 3 (t0 + 3 Z1), T = 3 (t0 - Z1),
 *   X3 = A U + C W, Y3 = U V - T W, Z3 = C V + A T. */
static void proj_add_affine(proj *r, const proj *a, const ms_sakke_affine *b)
{
    ms_fp t0, t1, A, B, C, U, V, W, T, s, u;
    ms_fp_mul(&t0, &a->x, &b->x);
    ms_fp_mul(&t1, &a->y, &b->y);
    ms_fp_add(&s, &a->x, &a->y);
    ms_fp_add(&u, &b->x, &b->y);
    ms_fp_mul(&A, &s, &u);
    ms_fp_sub(&A, &A, &t0);
    ms_fp_sub(&A, &A, &t1);
    ms_fp_mul(&B, &b->x, &a->z);
    ms_fp_add(&B, &B, &a->x);
    ms_fp_mul(&C, &b->y, &a->z);
    ms_fp_add(&C, &C, &a->y);
    fp_mul3(&s, &a->z);   /* 3 Z1 */
    fp_mul3(&u, &t0);     /* 3 t0 */
    ms_fp_sub(&T, &u, &s); /* 3 t0 - 3 Z1 */
    fp_mul3(&s, &s);      /* 9 Z1 */
    ms_fp_add(&W, &u, &s); /* 3 t0 + 9 Z1 */
    fp_mul3(&B, &B);
    ms_fp_add(&U, &t1, &B);
    ms_fp_sub(&V, &t1, &B);
    /* X3 = A U + C W */
    ms_fp_mul(&s, &A, &U);
    ms_fp_mul(&u, &C, &W);
    ms_fp_add(&r->x, &s, &u);
    /* Y3 = U V - T W */
    ms_fp_mul(&s, &U, &V);
    ms_fp_mul(&u, &T, &W);
    ms_fp_sub(&r->y, &s, &u);
    /* Z3 = C V + A T */
    ms_fp_mul(&s, &C, &V);
    ms_fp_mul(&u, &A, &T);
    ms_fp_add(&r->z, &s, &u);
}

/* r = 2a, dbl-2007-bl for a = -3 (7M + 3S); infinity is handled by a mask since the
 * formula would give (0 : 0 : 0). Points of order 2 give Z3 = 0 as they should. */
static void proj_double(proj *r, const proj *a)
{
    ms_fp w, s, ss, sss, R, B, h, t, x3, y3;
    uint64_t inf = ms_fp_iszero(&a->z);
    ms_fp_sub(&t, &a->x, &a->z);
    ms_fp_add(&w, &a->x, &a->z);
    ms_fp_mul(&w, &w, &t);
    fp_mul3(&w, &w);
    ms_fp_mul(&s, &a->y, &a->z);
    ms_fp_add(&s, &s, &s);
    ms_fp_sqr(&ss, &s);
    ms_fp_mul(&sss, &s, &ss);
    ms_fp_mul(&R, &a->y, &s);
    ms_fp_mul(&B, &a->x, &R);
    ms_fp_add(&B, &B, &B);
    ms_fp_sqr(&h, &w);
    ms_fp_sub(&h, &h, &B);
    ms_fp_sub(&h, &h, &B);
    ms_fp_mul(&x3, &h, &s);
    ms_fp_sub(&t, &B, &h);
    ms_fp_mul_sub_mul(&y3, &w, &t, 2, &R, &R); /* Y3 = w t - 2 R^2, reduced once */
    r->x = x3;
    r->y = y3;
    r->z = sss;
    ms_fp one;
    ms_fp_set_one(&one);
    ms_fp_cmov(&r->y, &one, inf);
}

/* Projective to Jacobian without inversion: (X Z : Y Z^2 : Z). */
static void proj_to_jac(ms_sakke_jac *r, const proj *a)
{
    ms_fp z2;
    ms_fp_sqr(&z2, &a->z);
    ms_fp_mul(&r->x, &a->x, &a->z);
    ms_fp_mul(&r->y, &a->y, &z2);
    r->z = a->z;
}

/* ---- fixed-base comb ---------------------------------------------------------------------
 *
 * Signed multi-comb. With n = T*M*S = 1024 bits, an odd scalar k' < 2^n is written as
 * k' = sum_i d_i 2^i with every d_i in {-1, +1}: take b = (k' + 2^n - 1) / 2 and
 * d_i = 2 b_i - 1. For a secret k < q, k' is k if k is odd, else q - k, and then the
 * result is negated ([q - k]base = -[k]base since the base has order q); so k' is odd
 * and below q < 2^1022. Bit i = S (T j + u) + c belongs to table j,
 * tooth u, column c. Table j holds, for each sign vector with d_(T-1) = +1,
 *     sum_u d_u 2^(S (T j + u)) base,
 * indexed by the bits of d_0..d_(T-2); a vector with d_(T-1) = -1 is the negation of a
 * stored one (negating y is cheap and branch-free). Then
 *     [k']base = sum_c 2^c sum_j (entry of table j for column c),
 * computed left to right over the columns: S - 1 doublings and M S additions.
 *
 * T = 8, M = 8, S = 16 (n = 1024): 8 tables of 128 affine entries = 1024 entries =
 * 256 KiB. A multiplication costs 119 Jacobian mixed additions (7M + 4S), 14 Jacobian
 * doublings (3M + 5S), 8 complete projective additions (11M), 1 projective doubling
 * (7M + 3S) and two conversions: about 975 M + 550 S, plus 128 scans of 128 entries.
 * Larger T doubles the table per tooth; more tables at the same size add more
 * additions than they save in doublings. None of the 1024 entries is [0]base for this
 * geometry (checked offline), so building cannot fail on that.
 */
#define COMB_T 8
#define COMB_M 8
#define COMB_S 16
#define COMB_N (COMB_T * COMB_M * COMB_S)
#define COMB_E (1u << (COMB_T - 1))
#define COMB_LIMBS ((COMB_N + 63) / 64)

#if COMB_N < 1023 || COMB_LIMBS < MS_LIMBS
#error "the comb must cover 1023 bits"
#endif

/* Entries as flat rows of x then y (Montgomery form), so a scan is one straight loop. */
#define COMB_WORDS (2 * MS_LIMBS)
struct ms_sakke_comb {
    uint64_t e[COMB_M][COMB_E][COMB_WORDS];
};

size_t ms_sakke_comb_size(void)
{
    return sizeof(ms_sakke_comb);
}

/* Affine form of n Jacobian points (all finite, public) with one inversion
 * (Montgomery's trick); scratch holds n field elements. */
static int batch_to_affine(ms_sakke_affine *out, const ms_sakke_jac *in, size_t n, ms_fp *scratch)
{
    ms_fp acc, inv, zi, zi2, t;
    ms_fp_set_one(&acc);
    for (size_t i = 0; i < n; i++) {
        scratch[i] = acc; /* product of z_0 .. z_(i-1) */
        ms_fp_mul(&acc, &acc, &in[i].z);
    }
    if (ms_fp_iszero(&acc))
        return -1;
    ms_fp_inv(&inv, &acc);
    for (size_t i = n; i-- > 0;) {
        ms_fp_mul(&zi, &inv, &scratch[i]);   /* 1 / z_i */
        ms_fp_mul(&inv, &inv, &in[i].z);     /* 1 / (z_0 .. z_(i-1)) */
        ms_fp_sqr(&zi2, &zi);
        ms_fp_mul(&t, &zi2, &zi);
        ms_fp_mul(&out[i].x, &in[i].x, &zi2);
        ms_fp_mul(&out[i].y, &in[i].y, &t);
    }
    return 0;
}

int ms_sakke_comb_build(ms_sakke_comb *t, const ms_sakke_affine *base)
{
    /* g[j][u] = 2^(S (T j + u)) base and its double, affine. */
    enum { NG = COMB_T * COMB_M };
    int ret = -1;
    ms_sakke_jac *jg = malloc(2 * NG * sizeof *jg);
    ms_sakke_affine *g = malloc(2 * NG * sizeof *g); /* g[i], then 2 g[i] at NG + i */
    ms_sakke_jac *je = malloc(COMB_M * COMB_E * sizeof *je);
    ms_sakke_affine *ae = malloc(COMB_M * COMB_E * sizeof *ae);
    ms_fp *scratch = malloc(COMB_M * COMB_E * sizeof *scratch);
    if (jg == NULL || g == NULL || je == NULL || ae == NULL || scratch == NULL)
        goto out;

    ms_sakke_jac cur;
    ms_sakke_jac_from_affine(&cur, base);
    for (int i = 0; i < NG; i++) {
        jg[i] = cur;
        ms_sakke_jac_double(&cur, &cur);
        jg[NG + i] = cur;
        for (int s = 1; s < COMB_S; s++)
            ms_sakke_jac_double(&cur, &cur);
    }
    if (batch_to_affine(g, jg, 2 * NG, scratch) != 0)
        goto out;

    for (int j = 0; j < COMB_M; j++) {
        ms_sakke_jac *e = je + (size_t)j * COMB_E;
        const ms_sakke_affine *gj = g + j * COMB_T, *g2j = g + NG + j * COMB_T;
        /* entry 0: all d_u = -1 except the top tooth */
        ms_sakke_jac_from_affine(&e[0], &gj[COMB_T - 1]);
        for (int u = 0; u < COMB_T - 1; u++) {
            ms_sakke_affine neg = gj[u];
            ms_fp_neg(&neg.y, &neg.y);
            jac_add_affine_var(&e[0], &e[0], &neg);
        }
        /* flipping d_u from -1 to +1 adds 2 g_u */
        for (int u = 0; u < COMB_T - 1; u++)
            for (unsigned idx = 0; idx < 1u << u; idx++)
                jac_add_affine_var(&e[idx | 1u << u], &e[idx], &g2j[u]);
    }
    if (batch_to_affine(ae, je, COMB_M * COMB_E, scratch) != 0)
        goto out;
    for (unsigned j = 0; j < COMB_M; j++) {
        for (unsigned i = 0; i < COMB_E; i++) {
            memcpy(t->e[j][i], ae[j * COMB_E + i].x.v, sizeof ae->x.v);
            memcpy(t->e[j][i] + MS_LIMBS, ae[j * COMB_E + i].y.v, sizeof ae->y.v);
        }
    }
    ret = 0;
out:
    free(jg);
    free(g);
    free(je);
    free(ae);
    free(scratch);
    return ret;
}

/* The signed-digit form b of a secret k < q (see above), COMB_LIMBS limbs; returns an
 * all-ones mask when the result must be negated (k even, so k' = q - k). */
static uint64_t comb_recode(uint64_t b[COMB_LIMBS], const uint64_t k[MS_LIMBS])
{
    uint64_t kq[MS_LIMBS], kp[MS_LIMBS];
    uint64_t even = ~ms_ct_mask(k[0]);
    memcpy(kp, k, sizeof kp);
    ms_u1024_sub(kq, ms_mont_q.m, k);
    ms_ct_cmov(kp, kq, MS_LIMBS, even);
    /* b = (k' - 1)/2 + 2^(n-1) = (k' >> 1) | 2^(n-1), as k' is odd and k' < 2^(n-1) */
    memset(b, 0, COMB_LIMBS * sizeof b[0]);
    for (int i = 0; i < MS_LIMBS; i++)
        b[i] = (kp[i] >> 1) | (i + 1 < MS_LIMBS ? kp[i + 1] << 63 : 0);
    b[(COMB_N - 1) / 64] |= (uint64_t)1 << ((COMB_N - 1) % 64);
    ms_wipe(kq, sizeof kq);
    ms_wipe(kp, sizeof kp);
    return even;
}

static uint64_t comb_bit(const uint64_t b[COMB_LIMBS], unsigned pos)
{
    return (b[pos / 64] >> (pos % 64)) & 1;
}

/* out = rows[idx], reading every row (idx is secret). The scan is memory-bound, so on
 * x86-64 it is written with vector intrinsics (the compiler's auto-vectorisation kept
 * spilling the accumulators): AVX2 when the CPU has it, else SSE2, which x86-64
 * always has. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MS_COMB_SCAN_X86 1
_Static_assert(COMB_WORDS == 32, "the vector scans are written for 32-word rows");

__attribute__((target("avx2"))) static void comb_scan_avx2(uint64_t out[COMB_WORDS],
                                                           const uint64_t (*rows)[COMB_WORDS],
                                                           uint64_t idx)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0,
            a6 = a0, a7 = a0;
    for (uint64_t i = 0; i < COMB_E; i++) {
        __m256i m = _mm256_set1_epi64x((long long)ms_ct_eq(i, idx));
        const __m256i *r = (const __m256i *)(const void *)rows[i];
        a0 = _mm256_or_si256(a0, _mm256_and_si256(_mm256_loadu_si256(r + 0), m));
        a1 = _mm256_or_si256(a1, _mm256_and_si256(_mm256_loadu_si256(r + 1), m));
        a2 = _mm256_or_si256(a2, _mm256_and_si256(_mm256_loadu_si256(r + 2), m));
        a3 = _mm256_or_si256(a3, _mm256_and_si256(_mm256_loadu_si256(r + 3), m));
        a4 = _mm256_or_si256(a4, _mm256_and_si256(_mm256_loadu_si256(r + 4), m));
        a5 = _mm256_or_si256(a5, _mm256_and_si256(_mm256_loadu_si256(r + 5), m));
        a6 = _mm256_or_si256(a6, _mm256_and_si256(_mm256_loadu_si256(r + 6), m));
        a7 = _mm256_or_si256(a7, _mm256_and_si256(_mm256_loadu_si256(r + 7), m));
    }
    __m256i *o = (__m256i *)(void *)out;
    _mm256_storeu_si256(o + 0, a0);
    _mm256_storeu_si256(o + 1, a1);
    _mm256_storeu_si256(o + 2, a2);
    _mm256_storeu_si256(o + 3, a3);
    _mm256_storeu_si256(o + 4, a4);
    _mm256_storeu_si256(o + 5, a5);
    _mm256_storeu_si256(o + 6, a6);
    _mm256_storeu_si256(o + 7, a7);
}

static void comb_scan_sse2(uint64_t out[COMB_WORDS], const uint64_t (*rows)[COMB_WORDS],
                           uint64_t idx)
{
    /* two passes of eight 128-bit accumulators each, to stay within 16 registers */
    for (int half = 0; half < 2; half++) {
        __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0,
                a6 = a0, a7 = a0;
        for (uint64_t i = 0; i < COMB_E; i++) {
            __m128i m = _mm_set1_epi64x((long long)ms_ct_eq(i, idx));
            const __m128i *r = (const __m128i *)(const void *)rows[i] + 8 * half;
            a0 = _mm_or_si128(a0, _mm_and_si128(_mm_loadu_si128(r + 0), m));
            a1 = _mm_or_si128(a1, _mm_and_si128(_mm_loadu_si128(r + 1), m));
            a2 = _mm_or_si128(a2, _mm_and_si128(_mm_loadu_si128(r + 2), m));
            a3 = _mm_or_si128(a3, _mm_and_si128(_mm_loadu_si128(r + 3), m));
            a4 = _mm_or_si128(a4, _mm_and_si128(_mm_loadu_si128(r + 4), m));
            a5 = _mm_or_si128(a5, _mm_and_si128(_mm_loadu_si128(r + 5), m));
            a6 = _mm_or_si128(a6, _mm_and_si128(_mm_loadu_si128(r + 6), m));
            a7 = _mm_or_si128(a7, _mm_and_si128(_mm_loadu_si128(r + 7), m));
        }
        __m128i *o = (__m128i *)(void *)out + 8 * half;
        _mm_storeu_si128(o + 0, a0);
        _mm_storeu_si128(o + 1, a1);
        _mm_storeu_si128(o + 2, a2);
        _mm_storeu_si128(o + 3, a3);
        _mm_storeu_si128(o + 4, a4);
        _mm_storeu_si128(o + 5, a5);
        _mm_storeu_si128(o + 6, a6);
        _mm_storeu_si128(o + 7, a7);
    }
}
#endif

static void comb_scan(uint64_t out[COMB_WORDS], const uint64_t (*rows)[COMB_WORDS], uint64_t idx)
{
#ifdef MS_COMB_SCAN_X86
    if (__builtin_cpu_supports("avx2"))
        comb_scan_avx2(out, rows, idx);
    else
        comb_scan_sse2(out, rows, idx);
#else
    memset(out, 0, COMB_WORDS * sizeof out[0]);
    for (uint64_t i = 0; i < COMB_E; i++) {
        uint64_t m = ms_ct_eq(i, idx);
        for (int w = 0; w < COMB_WORDS; w++)
            out[w] |= rows[i][w] & m;
    }
#endif
}

/* The signed entry of table j for column c: full scan, then conditional negation. */
static void comb_lookup(ms_sakke_affine *r, const ms_sakke_comb *t, const uint64_t b[COMB_LIMBS],
                        unsigned j, unsigned c)
{
    uint64_t idx = 0;
    for (unsigned u = 0; u < COMB_T - 1; u++)
        idx |= comb_bit(b, COMB_S * (COMB_T * j + u) + c) << u;
    uint64_t neg = ~ms_ct_mask(comb_bit(b, COMB_S * (COMB_T * j + COMB_T - 1) + c));
    idx = ms_ct_select(neg, ~idx, idx) & (COMB_E - 1);

    uint64_t acc[COMB_WORDS];
    comb_scan(acc, t->e[j], idx);
    memcpy(r->x.v, acc, sizeof r->x.v);
    memcpy(r->y.v, acc + MS_LIMBS, sizeof r->y.v);
    ms_fp ny;
    ms_fp_neg(&ny, &r->y);
    ms_fp_cmov(&r->y, &ny, neg);
}

/* From Jacobian to projective without inversion: (X Z : Y : Z^3). */
static void jac_to_proj(proj *r, const ms_sakke_jac *a)
{
    ms_fp z2;
    ms_fp_sqr(&z2, &a->z);
    ms_fp_mul(&r->x, &a->x, &a->z);
    r->y = a->y;
    ms_fp_mul(&r->z, &z2, &a->z);
}

void ms_sakke_comb_mul(ms_sakke_jac *r, const ms_sakke_comb *t, const uint64_t k[MS_LIMBS])
{
    /* Which additions can meet a special case? Before the addition of table j in column
     * c, the accumulator is [X]base and the entry [Y]base, where X and Y are sums of
     * d_i 2^(i - c) over disjoint sets of bit positions i (every d_i is +-1). So X,
     * X - Y and X + Y are nonzero integers: the lowest digit decides their parity at
     * its position. They are also below q in absolute value while c >= 1. All
     * positions are below 1024, so for c >= 3 the plain bound 2^(1024 - c) <= 2^1021 < q
     * holds. For c = 1, 2 the top positions 1021..1023 (columns 13..15) are already in
     * X, and k' < 2^1022 fixes their digits to -1, -1, +1: together 2^(1021 - c), while
     * all lower positions add less than 2^(1021 - c) in absolute value; so X, X - Y and
     * X + Y lie in (0, 2^(1022 - c)), below 2^1021 < q. Hence the accumulator is never
     * infinity and never +-entry in columns c >= 1, which therefore use the cheaper
     * Jacobian mixed addition without masks (7M + 4S) and Jacobian doubling (3M + 5S).
     * Only column 0, where X +- Y may reach q, needs the complete projective law (11M). */
    _Static_assert(COMB_N == 1024, "the bound above is for n = 1024");
    enum { SAFE_COL = 1 };
    uint64_t b[COMB_LIMBS];
    uint64_t neg = comb_recode(b, k);
    ms_sakke_affine e;
    ms_sakke_jac jacc;
    proj acc;

    comb_lookup(&e, t, b, 0, COMB_S - 1);
    ms_sakke_jac_from_affine(&jacc, &e);
    for (int c = COMB_S - 1; c >= SAFE_COL; c--) {
        if (c != COMB_S - 1)
            ms_sakke_jac_double(&jacc, &jacc);
        for (unsigned j = c == COMB_S - 1 ? 1 : 0; j < COMB_M; j++) {
            comb_lookup(&e, t, b, j, (unsigned)c);
            jac_add_affine_core(&jacc, &jacc, &e, NULL, NULL);
        }
    }
    jac_to_proj(&acc, &jacc);
    for (int c = SAFE_COL - 1; c >= 0; c--) {
        proj_double(&acc, &acc);
        for (unsigned j = 0; j < COMB_M; j++) {
            comb_lookup(&e, t, b, j, (unsigned)c);
            proj_add_affine(&acc, &acc, &e);
        }
    }
    proj_to_jac(r, &acc);
    ms_fp ny;
    ms_fp_neg(&ny, &r->y);
    ms_fp_cmov(&r->y, &ny, neg);
    ms_wipe(&ny, sizeof ny);
    ms_wipe(b, sizeof b);
    ms_wipe(&acc, sizeof acc);
    ms_wipe(&jacc, sizeof jacc);
    ms_wipe(&e, sizeof e);
}

/* ---- comb with affine column sums (RSK issue, encapsulation, TEST) -------------------------------------------
 *
 * The same table and recoding, evaluated in another order: first all 128 lookups, then
 * the eight entries of each column are summed in affine coordinates by a binary tree,
 * the sixteen columns side by side, so that each of the three tree levels needs one
 * (blinded) inversion for all its additions (Montgomery's trick: 3 M per addition, plus
 * 2 M + 1 S for the affine addition itself) instead of 11 M per Jacobian mixed
 * addition. Horner's rule over the sixteen column sums then costs 15 doublings and 15
 * mixed additions. About 1070 M against 1400 M for ms_sakke_comb_mul, plus four
 * blinded inversions (one of them for the affine result, which the caller needs
 * anyway).
 *
 * Special cases. Within column c every entry is [Y]base with Y = sum d_i 2^i over a set
 * of positions i = c mod 16 (i <= 1008 + c) and d_i = +-1. Scaled by 2^-c (invertible
 * mod q), two disjoint partial sums X1, X2 of one column give X1 +- X2 = a signed-digit
 * sum over positions below 2^1009: nonzero (its lowest digit fixes its parity there)
 * and below q in absolute value, so the two points never share an x-coordinate and no
 * sum is infinity. In Horner's rule, the column sum is added to an accumulator made
 * of all higher columns: exactly the situation of ms_sakke_comb_mul's proof, so columns
 * c >= 1 need no special case, and column 0 uses the complete mixed addition. */

/* v[i] <- 1 / v[i] for n secret nonzero elements with one blinded inversion; scratch
 * holds n elements. Returns -1 if the RNG failed. */
static int batch_inv_blinded(ms_fp *v, size_t n, ms_fp *scratch)
{
    ms_fp acc, t;
    acc = v[0];
    for (size_t i = 1; i < n; i++) {
        scratch[i] = acc; /* v[0] ... v[i-1] */
        ms_fp_mul(&acc, &acc, &v[i]);
    }
    int ret = ms_fp_inv_blinded(&acc, &acc);
    for (size_t i = n; i-- > 1;) {
        ms_fp_mul(&t, &acc, &scratch[i]); /* 1 / v[i] */
        ms_fp_mul(&acc, &acc, &v[i]);     /* 1 / (v[0] ... v[i-1]) */
        v[i] = t;
    }
    v[0] = acc;
    ms_wipe(&acc, sizeof acc);
    ms_wipe(&t, sizeof t);
    return ret;
}

/* Up to two combs evaluated side by side: the lookups, then the column trees of all
 * of them with one batched inversion per tree level. col[i][c] is then the sum of
 * column c of comb i (still to be negated when neg[i] is set). */
#define COMB_MAX_BASES 2
typedef struct comb_work {
    ms_sakke_affine pt[COMB_MAX_BASES][COMB_S][COMB_M];
    ms_fp inv[COMB_MAX_BASES * COMB_S * COMB_M / 2];
    ms_fp scratch[COMB_MAX_BASES * COMB_S * COMB_M / 2];
    uint64_t b[COMB_LIMBS];
    uint64_t neg[COMB_MAX_BASES];
} comb_work;

static int comb_column_sums(comb_work *w, const ms_sakke_comb *const t[], const uint64_t *const k[],
                            unsigned nbases)
{
    ms_fp lambda, u;
    int ret = 0;
    for (unsigned i = 0; i < nbases; i++) {
        w->neg[i] = comb_recode(w->b, k[i]);
        for (unsigned c = 0; c < COMB_S; c++)
            for (unsigned j = 0; j < COMB_M; j++)
                comb_lookup(&w->pt[i][c][j], t[i], w->b, j, c);
    }
    /* the tree: at width wd, entry i < wd/2 of each column absorbs entry i + wd/2 */
    for (unsigned wd = COMB_M; wd > 1; wd /= 2) {
        unsigned h = wd / 2, n = 0;
        for (unsigned i = 0; i < nbases; i++)
            for (unsigned c = 0; c < COMB_S; c++)
                for (unsigned e = 0; e < h; e++)
                    ms_fp_sub(&w->inv[n++], &w->pt[i][c][e + h].x, &w->pt[i][c][e].x);
        if (batch_inv_blinded(w->inv, n, w->scratch) != 0)
            ret = -1;
        n = 0;
        for (unsigned i = 0; i < nbases; i++) {
            for (unsigned c = 0; c < COMB_S; c++) {
                for (unsigned e = 0; e < h; e++) {
                    ms_sakke_affine *p1 = &w->pt[i][c][e];
                    const ms_sakke_affine *p2 = &w->pt[i][c][e + h];
                    ms_fp_sub(&lambda, &p2->y, &p1->y);
                    ms_fp_mul(&lambda, &lambda, &w->inv[n++]);
                    ms_fp_sqr(&u, &lambda);
                    ms_fp_sub(&u, &u, &p1->x);
                    ms_fp_sub(&u, &u, &p2->x); /* x3 */
                    ms_fp_sub(&p1->x, &p1->x, &u);
                    ms_fp_mul(&lambda, &lambda, &p1->x);
                    ms_fp_sub(&p1->y, &lambda, &p1->y);
                    p1->x = u;
                }
            }
        }
    }
    ms_wipe(&lambda, sizeof lambda);
    ms_wipe(&u, sizeof u);
    return ret;
}

/* acc = sum_c 2^c col[c][0] by Horner's rule, then negated under the mask neg. */
static void comb_horner(ms_sakke_jac *acc, ms_sakke_affine col[COMB_S][COMB_M], uint64_t neg)
{
    ms_sakke_jac_from_affine(acc, &col[COMB_S - 1][0]);
    for (int c = COMB_S - 2; c >= 1; c--) {
        ms_sakke_jac_double(acc, acc);
        jac_add_affine_core(acc, acc, &col[c][0], NULL, NULL);
    }
    ms_sakke_jac_double(acc, acc);
    ms_sakke_jac_add_affine(acc, acc, &col[0][0]);
    ms_fp ny;
    ms_fp_neg(&ny, &acc->y);
    ms_fp_cmov(&acc->y, &ny, neg);
    ms_wipe(&ny, sizeof ny);
}

static comb_work *comb_work_new(void)
{
    /* about 100 KiB of secret intermediate values: too much for a thread's stack */
    return malloc(sizeof(comb_work));
}

static void comb_work_free(comb_work *w)
{
    if (w != NULL) {
        ms_wipe(w, sizeof *w);
        free(w);
    }
}

ms_err ms_sakke_comb_mul_batched(ms_sakke_jac *r, const ms_sakke_comb *t,
                                 const uint64_t k[MS_LIMBS])
{
    comb_work *w = comb_work_new();
    if (w == NULL)
        return MS_ERR_NOMEM;
    const ms_sakke_comb *tt[1] = {t};
    const uint64_t *kk[1] = {k};
    ms_err ret = comb_column_sums(w, tt, kk, 1) == 0 ? MS_OK : MS_ERR_RNG;
    comb_horner(r, w->pt[0], w->neg[0]);
    comb_work_free(w);
    return ret;
}

ms_err ms_sakke_comb_mul_affine(ms_sakke_affine *r, const ms_sakke_comb *t,
                                const uint64_t k[MS_LIMBS])
{
    ms_sakke_jac acc;
    ms_err ret = ms_sakke_comb_mul_batched(&acc, t, k);
    if (ret == MS_OK && ms_sakke_jac_to_affine(r, &acc) != 0)
        ret = MS_ERR_RNG; /* k != 0 mod q never gives infinity: the generator failed */
    ms_wipe(&acc, sizeof acc);
    return ret;
}

ms_err ms_sakke_comb_mul2(ms_sakke_jac *r, const ms_sakke_comb *t1, const uint64_t k1[MS_LIMBS],
                          const ms_sakke_comb *t2, const uint64_t k2[MS_LIMBS])
{
    /* The two column trees share their inversions; the two Horner chains stay apart,
     * because an accumulator [X1]base1 + [X2]base2 admits no bound like the one of
     * ms_sakke_comb_mul, and the complete addition joins them at the end. */
    comb_work *w = comb_work_new();
    if (w == NULL)
        return MS_ERR_NOMEM;
    const ms_sakke_comb *tt[2] = {t1, t2};
    const uint64_t *kk[2] = {k1, k2};
    ms_sakke_jac a;
    ms_err ret = comb_column_sums(w, tt, kk, 2) == 0 ? MS_OK : MS_ERR_RNG;
    comb_horner(&a, w->pt[0], w->neg[0]);
    comb_horner(r, w->pt[1], w->neg[1]);
    ms_sakke_jac_add(r, r, &a);
    ms_wipe(&a, sizeof a);
    comb_work_free(w);
    return ret;
}
