/*
 * Portable Montgomery multiplication backend: 64-bit limbs with the compiler's 128-bit
 * product. Multiplication is CIOS (multiply a row, then reduce it, interleaved);
 * squaring computes each cross product once, doubles, adds the squares, then reduces.
 * No branches on data.
 *
 * Tuned for GCC 12 at both -O2 (RelWithDebInfo) and -O3 (Release): `#pragma GCC unroll
 * 1` keeps the multiply-accumulate loops rolled (at -O3 GCC otherwise peels them and
 * spills the running sum through a 1.4 KB frame), and the final subtraction uses no
 * temporary array (vectorised reloads of one stalled on store forwarding). Together
 * these made the -O3 multiplication three times faster; -O2 and -O3 now agree.
 */
#include "mont.h"
#include "ct.h"

__extension__ typedef unsigned __int128 u128;

static void final_subtract(uint64_t r[MS_LIMBS], const uint64_t t[MS_LIMBS + 1],
                           const uint64_t m[MS_LIMBS])
{
    /* t < 2m. First only the borrow of t - m; then r = t - (m & mask), where mask is
     * all ones unless t < m (the subtraction borrowed and t has no top word). Two
     * scalar carry chains: no temporary array that a vectoriser could reload with wide
     * loads (which stalls on the narrow stores just made). */
    uint64_t borrow = 0;
    for (int i = 0; i < MS_LIMBS; i++) {
        u128 diff = (u128)t[i] - m[i] - borrow;
        borrow = (uint64_t)(diff >> 64) & 1;
    }
    uint64_t sub = ~(ms_ct_mask(borrow) & ms_ct_iszero(t[MS_LIMBS]));
    borrow = 0;
    for (int i = 0; i < MS_LIMBS; i++) {
        u128 diff = (u128)t[i] - (m[i] & sub) - borrow;
        r[i] = (uint64_t)diff;
        borrow = (uint64_t)(diff >> 64) & 1;
    }
}

void ms_mont_mul_c64(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                     const uint64_t b[MS_LIMBS], const uint64_t m[MS_LIMBS], uint64_t m0inv)
{
    uint64_t t[MS_LIMBS + 2] = {0};
    for (int i = 0; i < MS_LIMBS; i++) {
        u128 acc = 0;
        uint64_t bi = b[i];
#pragma GCC unroll 1
        for (int j = 0; j < MS_LIMBS; j++) {
            acc = (u128)a[j] * bi + t[j] + (uint64_t)(acc >> 64);
            t[j] = (uint64_t)acc;
        }
        acc = (u128)t[MS_LIMBS] + (uint64_t)(acc >> 64);
        t[MS_LIMBS] = (uint64_t)acc;
        t[MS_LIMBS + 1] = (uint64_t)(acc >> 64);

        uint64_t u = t[0] * m0inv;
        acc = (u128)u * m[0] + t[0];
#pragma GCC unroll 1
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

/* Montgomery reduction of a 2048-bit t (32 limbs) below m*2^1024: r = t * 2^-1024 mod m.
 * The low half is reduced limb by limb as in the second half of a CIOS step (the running
 * value shifts down one limb per step), the high half's limbs enter at the top. */
static void mont_reduce(uint64_t r[MS_LIMBS], const uint64_t t[2 * MS_LIMBS],
                        const uint64_t m[MS_LIMBS], uint64_t m0inv)
{
    uint64_t v[MS_LIMBS + 1];
    for (int j = 0; j < MS_LIMBS; j++)
        v[j] = t[j];
    uint64_t c = 0;
    for (int i = 0; i < MS_LIMBS; i++) {
        uint64_t u = v[0] * m0inv;
        u128 acc = (u128)u * m[0] + v[0];
#pragma GCC unroll 1
        for (int j = 1; j < MS_LIMBS; j++) {
            acc = (u128)u * m[j] + v[j] + (uint64_t)(acc >> 64);
            v[j - 1] = (uint64_t)acc;
        }
        acc = (u128)t[MS_LIMBS + i] + (uint64_t)(acc >> 64) + c;
        v[MS_LIMBS - 1] = (uint64_t)acc;
        c = (uint64_t)(acc >> 64);
    }
    v[MS_LIMBS] = c;
    final_subtract(r, v, m);
}

void ms_mont_sqrwide_c64(uint64_t t_out[2 * MS_LIMBS], const uint64_t a[MS_LIMBS])
{
    /* a^2 = 2 * sum_{i<j} a_i a_j 2^(64(i+j)) + sum_i a_i^2 2^(128i): the cross products
     * once (120 instead of 240 limb products), doubled, then the squares added. */
    uint64_t t[2 * MS_LIMBS];
    t[0] = 0;
    t[2 * MS_LIMBS - 1] = 0;
    for (int j = 1; j < MS_LIMBS; j++)
        t[j] = 0;
    for (int i = 0; i < MS_LIMBS - 1; i++) {
        u128 acc = 0;
        uint64_t ai = a[i];
        for (int j = i + 1; j < MS_LIMBS; j++) {
            acc = (u128)ai * a[j] + t[i + j] + (uint64_t)(acc >> 64);
            t[i + j] = (uint64_t)acc;
        }
        t[i + MS_LIMBS] = (uint64_t)(acc >> 64);
    }
    uint64_t c = 0; /* the carry of the doubling and of the squares' additions */
#pragma GCC unroll 16
    for (int i = 0; i < MS_LIMBS; i++) {
        u128 sq = (u128)a[i] * a[i];
        uint64_t lo = t[2 * i], hi = t[2 * i + 1];
        /* (hi:lo) * 2 + sq + c, the bit shifted out of hi goes on with the carry */
        u128 x = ((u128)lo << 1) + (uint64_t)sq + c;
        t[2 * i] = (uint64_t)x;
        x = ((u128)hi << 1) + (uint64_t)(sq >> 64) + (uint64_t)(x >> 64);
        t[2 * i + 1] = (uint64_t)x;
        c = (uint64_t)(x >> 64);
    }
    for (int i = 0; i < 2 * MS_LIMBS; i++)
        t_out[i] = t[i];
}

void ms_mont_sqr_c64(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                     const uint64_t m[MS_LIMBS], uint64_t m0inv)
{
    uint64_t t[2 * MS_LIMBS];
    ms_mont_sqrwide_c64(t, a);
    mont_reduce(r, t, m, m0inv);
}

void ms_mont_mulwide_c64(uint64_t t[2 * MS_LIMBS], const uint64_t a[MS_LIMBS],
                         const uint64_t b[MS_LIMBS])
{
    uint64_t acc_t[2 * MS_LIMBS] = {0};
    for (int i = 0; i < MS_LIMBS; i++) {
        u128 acc = 0;
        uint64_t bi = b[i];
#pragma GCC unroll 1
        for (int j = 0; j < MS_LIMBS; j++) {
            acc = (u128)a[j] * bi + acc_t[i + j] + (uint64_t)(acc >> 64);
            acc_t[i + j] = (uint64_t)acc;
        }
        acc_t[i + MS_LIMBS] = (uint64_t)(acc >> 64);
    }
    for (int i = 0; i < 2 * MS_LIMBS; i++)
        t[i] = acc_t[i];
}

void ms_mont_redc_c64(uint64_t r[MS_LIMBS], uint64_t t[2 * MS_LIMBS],
                      const uint64_t m[MS_LIMBS], uint64_t m0inv)
{
    uint64_t copy[2 * MS_LIMBS];
    for (int i = 0; i < 2 * MS_LIMBS; i++)
        copy[i] = t[i];
    mont_reduce(r, copy, m, m0inv);
}
