/*
 * 1024-bit Montgomery arithmetic: the contract.
 *
 * Numbers are 16 little-endian 64-bit limbs. A modulus `ms_mont` is odd and below
 * 2^1024; R = 2^1024. Two moduli are used: p (the SAKKE field, through fp.h) and q (the
 * group order, for scalars). Unless a name ends in _var, every function runs in time
 * independent of the values of its arguments (it may depend on which modulus).
 *
 * Preconditions (checked in MS_VERIFY builds only): inputs to mul, sqr, add, sub, neg
 * are fully reduced (< m). Outputs are fully reduced. Outputs may alias inputs.
 *
 * The multiplication backend is chosen at build time (CMake MS_FP_BACKEND): the
 * portable c64 backend is always compiled, as ms_mont_mul_c64/ms_mont_sqr_c64, so tests
 * can compare it with the one in use; ms_mont_mul/ms_mont_sqr are the chosen one (the
 * adx backend falls back to c64 on a CPU without BMI2 and ADX).
 */
#ifndef MS_CRYPTO_MONT_H
#define MS_CRYPTO_MONT_H

#include <stddef.h>
#include <stdint.h>

#define MS_LIMBS 16
#define MS_BYTES 128

typedef struct ms_mont {
    uint64_t m[MS_LIMBS];   /* the modulus */
    uint64_t m0inv;         /* -m^-1 mod 2^64 */
    uint64_t one[MS_LIMBS]; /* R mod m: 1 in Montgomery form */
    uint64_t r2[MS_LIMBS];  /* R^2 mod m: converts into Montgomery form */
} ms_mont;

extern const ms_mont ms_mont_p; /* SAKKE parameter set 1 field prime */
extern const ms_mont ms_mont_q; /* its subgroup order q = (p + 1) / 4 */

/* ---- backends: r = a * b * R^-1 mod m -------------------------------------------------- */

void ms_mont_mul_c64(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                     const uint64_t b[MS_LIMBS], const uint64_t m[MS_LIMBS], uint64_t m0inv);
void ms_mont_sqr_c64(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                     const uint64_t m[MS_LIMBS], uint64_t m0inv);
/* The two halves of a multiplication, for lazy reduction: t = a * b (or a^2) exactly,
 * as 32 limbs (t must not overlap a or b); r = t * R^-1 mod m, fully reduced, for any
 * t < m * R. The reduction works in t, which it leaves clobbered; r may be t itself. */
void ms_mont_mulwide_c64(uint64_t t[2 * MS_LIMBS], const uint64_t a[MS_LIMBS],
                         const uint64_t b[MS_LIMBS]);
void ms_mont_sqrwide_c64(uint64_t t[2 * MS_LIMBS], const uint64_t a[MS_LIMBS]);
void ms_mont_redc_c64(uint64_t r[MS_LIMBS], uint64_t t[2 * MS_LIMBS],
                      const uint64_t m[MS_LIMBS], uint64_t m0inv);
#ifdef MS_FP_BACKEND_X86_64_ADX
void ms_mont_mulwide_adx(uint64_t t[2 * MS_LIMBS], const uint64_t a[MS_LIMBS],
                         const uint64_t b[MS_LIMBS]);
void ms_mont_sqrwide_adx(uint64_t t[2 * MS_LIMBS], const uint64_t a[MS_LIMBS]);
void ms_mont_redc_adx(uint64_t r[MS_LIMBS], uint64_t t[2 * MS_LIMBS],
                      const uint64_t m[MS_LIMBS], uint64_t m0inv);
void ms_mont_mul_adx(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                     const uint64_t b[MS_LIMBS], const uint64_t m[MS_LIMBS], uint64_t m0inv);
void ms_mont_sqr_adx(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                     const uint64_t m[MS_LIMBS], uint64_t m0inv);

/* The adx backend needs BMI2 and ADX, which some x86-64 CPUs lack: a library built with
 * it checks the CPU once, when it is loaded (mont.c), and uses the portable backend on
 * such a CPU. Until then (another library's constructor, say) it is 0: portable. The
 * branch is perfectly predicted and costs nothing next to a multiplication. */
extern int ms_mont_cpu_has_adx;
#define MS_MONT_DISPATCH(adx_call, c64_call)                                                  \
    do {                                                                                      \
        if (__builtin_expect(ms_mont_cpu_has_adx, 1))                                         \
            adx_call;                                                                         \
        else                                                                                  \
            c64_call;                                                                         \
    } while (0)
#else
#define MS_MONT_DISPATCH(adx_call, c64_call) c64_call
#endif

static inline void ms_mont_mul(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                               const uint64_t b[MS_LIMBS], const ms_mont *mod)
{
    MS_MONT_DISPATCH(ms_mont_mul_adx(r, a, b, mod->m, mod->m0inv),
                     ms_mont_mul_c64(r, a, b, mod->m, mod->m0inv));
}

static inline void ms_mont_sqr(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                               const ms_mont *mod)
{
    MS_MONT_DISPATCH(ms_mont_sqr_adx(r, a, mod->m, mod->m0inv),
                     ms_mont_sqr_c64(r, a, mod->m, mod->m0inv));
}

static inline void ms_mont_mulwide(uint64_t t[2 * MS_LIMBS], const uint64_t a[MS_LIMBS],
                                   const uint64_t b[MS_LIMBS])
{
    MS_MONT_DISPATCH(ms_mont_mulwide_adx(t, a, b), ms_mont_mulwide_c64(t, a, b));
}

static inline void ms_mont_sqrwide(uint64_t t[2 * MS_LIMBS], const uint64_t a[MS_LIMBS])
{
    MS_MONT_DISPATCH(ms_mont_sqrwide_adx(t, a), ms_mont_sqrwide_c64(t, a));
}

static inline void ms_mont_redc(uint64_t r[MS_LIMBS], uint64_t t[2 * MS_LIMBS],
                                const ms_mont *mod)
{
    MS_MONT_DISPATCH(ms_mont_redc_adx(r, t, mod->m, mod->m0inv),
                     ms_mont_redc_c64(r, t, mod->m, mod->m0inv));
}

/* ---- generic operations (mont.c) ------------------------------------------------------ */

void ms_mont_add(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const uint64_t b[MS_LIMBS],
                 const ms_mont *mod);
void ms_mont_sub(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const uint64_t b[MS_LIMBS],
                 const ms_mont *mod);
void ms_mont_neg(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const ms_mont *mod);
/* The portable add and sub, always compiled; ms_mont_add/sub use carry intrinsics on
 * x86-64, and tests compare the two. */
void ms_mont_add_portable(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                          const uint64_t b[MS_LIMBS], const ms_mont *mod);
void ms_mont_sub_portable(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                          const uint64_t b[MS_LIMBS], const ms_mont *mod);

/* Wide values w < m R (32 limbs), the products of lazy reduction before ms_mont_redc:
 * w = x + y and w = x - y modulo m R, for x, y < m R; the result is again < m R, so it
 * reduces to (x +- y) R^-1 mod m. */
void ms_mont_wide_add(uint64_t w[2 * MS_LIMBS], const uint64_t x[2 * MS_LIMBS],
                      const uint64_t y[2 * MS_LIMBS], const ms_mont *mod);
void ms_mont_wide_sub(uint64_t w[2 * MS_LIMBS], const uint64_t x[2 * MS_LIMBS],
                      const uint64_t y[2 * MS_LIMBS], const ms_mont *mod);

/* Into and out of Montgomery form (a < m). */
void ms_mont_to(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const ms_mont *mod);
void ms_mont_from(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const ms_mont *mod);

/* r = a^e (Montgomery form in and out); e is a public exponent of ebits bits, so the
 * sequence of operations depends on e but not on a. */
void ms_mont_pow_pubexp(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                        const uint64_t e[MS_LIMBS], unsigned ebits, const ms_mont *mod);

/* r = a^-1 (Montgomery form in and out) by Fermat's little theorem (m prime);
 * r = 0 for a = 0. Constant time, about 1100 multiplications. */
void ms_mont_inv(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const ms_mont *mod);

/* r = a^-1 (Montgomery form in and out), fast (~15 us): a is multiplied by a fresh random
 * blinding factor b, the uniformly random product a*b is inverted in variable time,
 * and the result multiplied by b again. Safe for secret a because a*b reveals nothing
 * about a. Returns 0 on success, -1 if the RNG failed or a = 0 (r = 0 then). */
int ms_mont_inv_blinded(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const ms_mont *mod);

/* Legendre symbol of a (Montgomery form) modulo the prime m: 1, -1, or 0 for a = 0;
 * -2 if the RNG failed. a is multiplied by the square of a fresh random factor and the
 * symbol of that uniformly random member of a's class is computed in variable time
 * (~40 times faster than a^((m-1)/2)); safe for secret a, the class being the result. */
int ms_mont_legendre_blinded(const uint64_t a[MS_LIMBS], const ms_mont *mod);

/* r = x^-1 mod m for a plain (non-Montgomery) x < m, r = 0 for x = 0; r may alias x.
 * Variable time (an extended GCD by batches of divsteps): public or blinded x only.
 * Reads only mod->m, so any odd modulus below 2^1024 works (ECCSI inverts mod P-256's
 * order with it); shorter moduli cost less. */
void ms_mont_inv_plain_var(uint64_t r[MS_LIMBS], const uint64_t x[MS_LIMBS], const ms_mont *mod);

/* ---- plain 1024-bit integers (not modular) -------------------------------------------- */

/* Big-endian octets (len <= 128) to limbs; shorter input is left-padded with zeros. */
void ms_u1024_from_be(uint64_t r[MS_LIMBS], const uint8_t *in, size_t len);
/* Limbs to exactly 128 big-endian octets. */
void ms_u1024_to_be(uint8_t out[MS_BYTES], const uint64_t a[MS_LIMBS]);
/* All-ones mask if a < b. */
uint64_t ms_u1024_lt(const uint64_t a[MS_LIMBS], const uint64_t b[MS_LIMBS]);
/* All-ones mask if a == 0. */
uint64_t ms_u1024_iszero(const uint64_t a[MS_LIMBS]);
/* All-ones mask if a == b. */
uint64_t ms_u1024_eq(const uint64_t a[MS_LIMBS], const uint64_t b[MS_LIMBS]);
/* r = a - b, returns the borrow (0 or 1). */
uint64_t ms_u1024_sub(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const uint64_t b[MS_LIMBS]);
/* r = a + b, returns the carry (0 or 1). */
uint64_t ms_u1024_add(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const uint64_t b[MS_LIMBS]);

/* r = x mod m for x < 8m given as 16 limbs plus `top` (bits 1024..), by seven
 * constant-time conditional subtractions. Used for HashToIntegerRange mod q. */
void ms_mont_reduce_small(uint64_t r[MS_LIMBS], const uint64_t x[MS_LIMBS], uint64_t top,
                          const ms_mont *mod);

#endif
