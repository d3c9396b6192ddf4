/*
 * F_p for SAKKE parameter set 1: elements in Montgomery form, always fully reduced.
 * Thin typed wrappers over mont.h with the modulus fixed to p. Constant time unless the
 * name ends in _var.
 */
#ifndef MS_CRYPTO_FP_H
#define MS_CRYPTO_FP_H

#include <string.h>

#include "ct.h"
#include "mont.h"

typedef struct ms_fp {
    uint64_t v[MS_LIMBS];
} ms_fp;

extern const uint64_t ms_sakke_px_mont[MS_LIMBS];
extern const uint64_t ms_sakke_py_mont[MS_LIMBS];
extern const uint64_t ms_sakke_g_mont[MS_LIMBS];

/* A product before its reduction (lazy reduction): below p R, so that sums and
 * differences taken with ms_fpw_add/sub are reduced once, by ms_fp_redc. */
typedef struct ms_fpw {
    uint64_t v[2 * MS_LIMBS];
} ms_fpw;

static inline void ms_fp_mulw(ms_fpw *r, const ms_fp *a, const ms_fp *b)
{
    ms_mont_mulwide(r->v, a->v, b->v);
}
static inline void ms_fp_sqrw(ms_fpw *r, const ms_fp *a)
{
    ms_mont_sqrwide(r->v, a->v);
}
/* Reduces a in place: a is clobbered. */
static inline void ms_fp_redc(ms_fp *r, ms_fpw *a)
{
    ms_mont_redc(r->v, a->v, &ms_mont_p);
}
static inline void ms_fpw_add(ms_fpw *r, const ms_fpw *a, const ms_fpw *b)
{
    ms_mont_wide_add(r->v, a->v, b->v, &ms_mont_p);
}
static inline void ms_fpw_sub(ms_fpw *r, const ms_fpw *a, const ms_fpw *b)
{
    ms_mont_wide_sub(r->v, a->v, b->v, &ms_mont_p);
}

/* r = a b - k c d for k = 1 or 2, reduced once instead of twice: the lazy Y3 of the
 * Jacobian doubling and addition formulas. c == d takes the cheaper square; r may alias
 * any input (the inputs are read before r is written). */
static inline void ms_fp_mul_sub_mul(ms_fp *r, const ms_fp *a, const ms_fp *b, unsigned k,
                                     const ms_fp *c, const ms_fp *d)
{
    ms_fpw w0, w1;
    ms_fp_mulw(&w0, a, b);
    if (c == d)
        ms_fp_sqrw(&w1, c);
    else
        ms_fp_mulw(&w1, c, d);
    if (k == 2)
        ms_fpw_add(&w1, &w1, &w1);
    ms_fpw_sub(&w0, &w0, &w1);
    ms_fp_redc(r, &w0);
}

static inline void ms_fp_mul(ms_fp *r, const ms_fp *a, const ms_fp *b)
{
    ms_mont_mul(r->v, a->v, b->v, &ms_mont_p);
}
static inline void ms_fp_sqr(ms_fp *r, const ms_fp *a)
{
    ms_mont_sqr(r->v, a->v, &ms_mont_p);
}
static inline void ms_fp_add(ms_fp *r, const ms_fp *a, const ms_fp *b)
{
    ms_mont_add(r->v, a->v, b->v, &ms_mont_p);
}
static inline void ms_fp_sub(ms_fp *r, const ms_fp *a, const ms_fp *b)
{
    ms_mont_sub(r->v, a->v, b->v, &ms_mont_p);
}
static inline void ms_fp_neg(ms_fp *r, const ms_fp *a)
{
    ms_mont_neg(r->v, a->v, &ms_mont_p);
}
static inline void ms_fp_set_one(ms_fp *r)
{
    memcpy(r->v, ms_mont_p.one, sizeof r->v);
}
static inline void ms_fp_set_zero(ms_fp *r)
{
    memset(r->v, 0, sizeof r->v);
}
static inline uint64_t ms_fp_iszero(const ms_fp *a)
{
    return ms_u1024_iszero(a->v);
}
static inline uint64_t ms_fp_eq(const ms_fp *a, const ms_fp *b)
{
    return ms_u1024_eq(a->v, b->v);
}
static inline void ms_fp_cmov(ms_fp *r, const ms_fp *a, uint64_t mask)
{
    ms_ct_cmov(r->v, a->v, MS_LIMBS, mask);
}
/* Constant-time inverse by exponentiation (slow, needs no randomness). */
static inline void ms_fp_inv(ms_fp *r, const ms_fp *a)
{
    ms_mont_inv(r->v, a->v, &ms_mont_p);
}
/* Fast inverse of a possibly secret value by blinding; 0 on success, -1 on RNG failure
 * or a = 0. */
static inline int ms_fp_inv_blinded(ms_fp *r, const ms_fp *a)
{
    return ms_mont_inv_blinded(r->v, a->v, &ms_mont_p);
}

/* 128 big-endian octets to an element; returns an all-ones mask if the value was < p
 * (the element is then valid), zero otherwise. */
static inline uint64_t ms_fp_from_bytes(ms_fp *r, const uint8_t in[MS_BYTES])
{
    uint64_t x[MS_LIMBS];
    ms_u1024_from_be(x, in, MS_BYTES);
    uint64_t ok = ms_u1024_lt(x, ms_mont_p.m);
    ms_mont_to(r->v, x, &ms_mont_p);
    return ok;
}
static inline void ms_fp_to_bytes(uint8_t out[MS_BYTES], const ms_fp *a)
{
    uint64_t x[MS_LIMBS];
    ms_mont_from(x, a->v, &ms_mont_p);
    ms_u1024_to_be(out, x);
}

#endif
