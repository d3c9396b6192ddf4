/*
 * Portable Montgomery multiplication backend: 64-bit limbs with the compiler's 128-bit
 * product (CIOS: multiply a row, then reduce it, interleaved). No branches on data.
 */
#include "mont.h"
#include "ct.h"

__extension__ typedef unsigned __int128 u128;

static void final_subtract(uint64_t r[MS_LIMBS], const uint64_t t[MS_LIMBS + 1],
                           const uint64_t m[MS_LIMBS])
{
    /* t < 2m; r = t - m if that does not borrow (counting t's top word), else t. */
    uint64_t d[MS_LIMBS];
    uint64_t borrow = 0;
    for (int i = 0; i < MS_LIMBS; i++) {
        u128 diff = (u128)t[i] - m[i] - borrow;
        d[i] = (uint64_t)diff;
        borrow = (uint64_t)(diff >> 64) & 1;
    }
    /* keep t only if t < m, i.e. the subtraction borrowed and t has no top word */
    uint64_t keep_t = ms_ct_mask(borrow) & ms_ct_iszero(t[MS_LIMBS]);
    for (int i = 0; i < MS_LIMBS; i++)
        r[i] = ms_ct_select(keep_t, t[i], d[i]);
}

void ms_mont_mul_c64(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                     const uint64_t b[MS_LIMBS], const uint64_t m[MS_LIMBS], uint64_t m0inv)
{
    uint64_t t[MS_LIMBS + 2] = {0};
    for (int i = 0; i < MS_LIMBS; i++) {
        u128 acc = 0;
        uint64_t bi = b[i];
        for (int j = 0; j < MS_LIMBS; j++) {
            acc = (u128)a[j] * bi + t[j] + (uint64_t)(acc >> 64);
            t[j] = (uint64_t)acc;
        }
        acc = (u128)t[MS_LIMBS] + (uint64_t)(acc >> 64);
        t[MS_LIMBS] = (uint64_t)acc;
        t[MS_LIMBS + 1] = (uint64_t)(acc >> 64);

        uint64_t u = t[0] * m0inv;
        acc = (u128)u * m[0] + t[0];
        for (int j = 1; j < MS_LIMBS; j++) {
            acc = (u128)u * m[j] + t[j] + (uint64_t)(acc >> 64);
            t[j - 1] = (uint64_t)acc;
        }
        acc = (u128)t[MS_LIMBS] + (uint64_t)(acc >> 64);
        t[MS_LIMBS - 1] = (uint64_t)acc;
        t[MS_LIMBS] = t[MS_LIMBS + 1] + (uint64_t)(acc >> 64);
    }
    final_subtract(r, t, m);
}

void ms_mont_sqr_c64(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                     const uint64_t m[MS_LIMBS], uint64_t m0inv)
{
    ms_mont_mul_c64(r, a, a, m, m0inv);
}
