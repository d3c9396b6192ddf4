/*
 * F_p^2 = F_p[i]/(i^2 + 1) arithmetic for the pairing layer (private to pairing*.c).
 * Elements are ms_fp2 (pairing.h): a + i b with both parts in Montgomery form. Every
 * function is constant time and allows its output to alias its inputs.
 *
 * Costs in F_p multiplications (M): mul 3 products and 2 reductions (Karatsuba with lazy
 * reduction, about 2.5 M), sqr 2, mul by an element 1 + i r (a PF_p representative) 2.
 */
#ifndef MS_CRYPTO_FP2_H
#define MS_CRYPTO_FP2_H

#include "fp.h"
#include "pairing.h"

static inline void ms_fp2_set_one(ms_fp2 *r)
{
    ms_fp_set_one(&r->a);
    ms_fp_set_zero(&r->b);
}

static inline void ms_fp2_add(ms_fp2 *r, const ms_fp2 *x, const ms_fp2 *y)
{
    ms_fp_add(&r->a, &x->a, &y->a);
    ms_fp_add(&r->b, &x->b, &y->b);
}

static inline void ms_fp2_sub(ms_fp2 *r, const ms_fp2 *x, const ms_fp2 *y)
{
    ms_fp_sub(&r->a, &x->a, &y->a);
    ms_fp_sub(&r->b, &x->b, &y->b);
}

/* Complex conjugate: the inverse up to the F_p factor (a^2 + b^2), so the inverse in
 * PF_p. */
static inline void ms_fp2_conj(ms_fp2 *r, const ms_fp2 *x)
{
    r->a = x->a;
    ms_fp_neg(&r->b, &x->b);
}

static inline void ms_fp2_cmov(ms_fp2 *r, const ms_fp2 *x, uint64_t mask)
{
    ms_fp_cmov(&r->a, &x->a, mask);
    ms_fp_cmov(&r->b, &x->b, mask);
}

static inline uint64_t ms_fp2_eq(const ms_fp2 *x, const ms_fp2 *y)
{
    return ms_fp_eq(&x->a, &y->a) & ms_fp_eq(&x->b, &y->b);
}

/* (a + ib)(c + id) = (ac - bd) + i((a + b)(c + d) - ac - bd): three products, and with
 * lazy reduction only two reductions (about 2.5 M). */
static inline void ms_fp2_mul(ms_fp2 *r, const ms_fp2 *x, const ms_fp2 *y)
{
    ms_fpw t0, t1, t2;
    ms_fp sx, sy;
    ms_fp_mulw(&t0, &x->a, &y->a);
    ms_fp_mulw(&t1, &x->b, &y->b);
    ms_fp_add(&sx, &x->a, &x->b);
    ms_fp_add(&sy, &y->a, &y->b);
    ms_fp_mulw(&t2, &sx, &sy);
    ms_fpw_sub(&t2, &t2, &t0);
    ms_fpw_sub(&t2, &t2, &t1);
    ms_fpw_sub(&t0, &t0, &t1);
    ms_fp_redc(&r->a, &t0);
    ms_fp_redc(&r->b, &t2);
}

/* (a + ib)^2 = (a + b)(a - b) + i 2ab: 2 M. */
static inline void ms_fp2_sqr(ms_fp2 *r, const ms_fp2 *x)
{
    ms_fp s, d, t;
    ms_fp_add(&s, &x->a, &x->b);
    ms_fp_sub(&d, &x->a, &x->b);
    ms_fp_mul(&t, &x->a, &x->b);
    ms_fp_mul(&r->a, &s, &d);
    ms_fp_add(&r->b, &t, &t);
}

/* x * (1 + i rr) = (a - b rr) + i(b + a rr): 2 M. Multiplies by the PF_p element whose
 * representative is rr. */
static inline void ms_fp2_mul_pfp(ms_fp2 *r, const ms_fp2 *x, const ms_fp *rr)
{
    ms_fp t0, t1;
    ms_fp_mul(&t0, &x->b, rr);
    ms_fp_mul(&t1, &x->a, rr);
    ms_fp_sub(&t0, &x->a, &t0);
    ms_fp_add(&r->b, &x->b, &t1);
    r->a = t0;
}

/* x * c for c in F_p: 2 M. */
static inline void ms_fp2_mul_fp(ms_fp2 *r, const ms_fp2 *x, const ms_fp *c)
{
    ms_fp_mul(&r->a, &x->a, c);
    ms_fp_mul(&r->b, &x->b, c);
}

/* ---- shared by pairing.c, pairing_prep.c, pairing_pfp.c ---------------------------- */

#define MS_PAIRING_NAF_MAX 1026

/* n = q - 1, the Miller loop length. */
void ms_pairing_qm1(uint64_t n[MS_LIMBS]);
/* Width-w NAF of q - 1 (odd digits |d| < 2^(w-1), any two non-zero digits at least w
 * apart), least significant digit first; returns the length. */
unsigned ms_pairing_qm1_wnaf(int8_t d[MS_PAIRING_NAF_MAX], unsigned w);
/* out = b/a for f^4 = a + ib (the final exponentiation and PF_p representative), with a
 * blinded inversion. -1 if the RNG failed or a = 0. */
int ms_pairing_final(ms_fp *out, const ms_fp2 *f);

#endif
