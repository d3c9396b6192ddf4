/*
 * Constant-time vocabulary, used wherever secret data is handled.
 *
 * A "mask" is a uint64_t that is all ones (true) or all zeros (false). Every helper
 * here runs in time independent of its arguments' values. The compiler barrier in
 * ms_ct_barrier stops the optimiser from turning mask arithmetic back into branches.
 *
 * MS_CT_SECRET / MS_CT_PUBLIC mark memory for the valgrind constant-time check
 * (tests/ct, `make ctcheck`): a secret is made "undefined", so any branch or memory
 * index that depends on it is reported. MS_CT_PUBLIC declassifies a value that is
 * safe to branch on (an output that is public anyway, or a uniformly blinded value).
 * Outside a ctcheck build they compile to nothing.
 */
#ifndef MS_CRYPTO_CT_H
#define MS_CRYPTO_CT_H

#include <stddef.h>
#include <stdint.h>

#ifdef MS_CTCHECK
#include <valgrind/memcheck.h>
#define MS_CT_SECRET(p, len) VALGRIND_MAKE_MEM_UNDEFINED((p), (len))
#define MS_CT_PUBLIC(p, len) VALGRIND_MAKE_MEM_DEFINED((p), (len))
#else
#define MS_CT_SECRET(p, len) ((void)(p), (void)(len))
#define MS_CT_PUBLIC(p, len) ((void)(p), (void)(len))
#endif

static inline uint64_t ms_ct_barrier(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    __asm__("" : "+r"(x));
#endif
    return x;
}

/* All ones if x != 0. */
static inline uint64_t ms_ct_nonzero(uint64_t x)
{
    x = ms_ct_barrier(x);
    return (uint64_t)0 - ((x | ((uint64_t)0 - x)) >> 63);
}

/* All ones if x == 0. */
static inline uint64_t ms_ct_iszero(uint64_t x)
{
    return ~ms_ct_nonzero(x);
}

/* All ones if a == b. */
static inline uint64_t ms_ct_eq(uint64_t a, uint64_t b)
{
    return ms_ct_iszero(a ^ b);
}

/* Mask from a 0/1 bit. */
static inline uint64_t ms_ct_mask(uint64_t bit)
{
    return (uint64_t)0 - ms_ct_barrier(bit & 1);
}

/* mask ? a : b */
static inline uint64_t ms_ct_select(uint64_t mask, uint64_t a, uint64_t b)
{
    return b ^ (mask & (a ^ b));
}

/* If mask, copy n words from src to dst; otherwise leave dst. */
static inline void ms_ct_cmov(uint64_t *dst, const uint64_t *src, size_t n, uint64_t mask)
{
    for (size_t i = 0; i < n; i++)
        dst[i] ^= mask & (dst[i] ^ src[i]);
}

/* Swap n words of a and b if mask. */
static inline void ms_ct_cswap(uint64_t *a, uint64_t *b, size_t n, uint64_t mask)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t t = mask & (a[i] ^ b[i]);
        a[i] ^= t;
        b[i] ^= t;
    }
}

/* Mask: all ones if the n octets at a and b are equal. */
static inline uint64_t ms_ct_memeq(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint64_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (uint64_t)(a[i] ^ b[i]);
    return ms_ct_iszero(diff);
}

#endif
