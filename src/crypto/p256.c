/*
 * NIST P-256 (FIPS 186-4 D.1.2.3) for ECCSI: field, points, scalar multiplication.
 *
 * Why our own: OpenSSL's EC_POINT API costs more per call (BIGNUM and point objects, a
 * group per context, affine conversions) than the arithmetic of a verification, and
 * has no multi-scalar form with tables kept across calls.
 *
 * The field: p = 2^256 - 2^224 + 2^192 + 2^96 - 1 in Montgomery form with 64-bit limbs.
 * -p^-1 mod 2^64 = 1, so the Montgomery factor of each reduction step is the low limb
 * itself, and p's limbs (2^64-1, 2^32-1, 0, 2^64-2^32+1) leave two real products per
 * step. Nothing in the field code branches on data.
 *
 * Secrets: [k]G by a window-6 comb of odd signed digits (42 additions, no doublings,
 * no zero digit to skip), each step's table entry found by reading the whole 32-entry
 * row. Public values: Straus's
 * interleaved wNAF with one shared run of doublings.
 */
#include "p256.h"

#include <pthread.h>
#include <string.h>

#include "ct.h"
#include "mikeysakke/crypto.h"
#include "mont.h"

__extension__ typedef unsigned __int128 u128;

typedef uint64_t fe[4];

static const fe P = {0xFFFFFFFFFFFFFFFFu, 0x00000000FFFFFFFFu, 0, 0xFFFFFFFF00000001u};
/* R = 2^256 mod p (1 in Montgomery form), R^2 mod p (converts into it). */
static const fe FE_ONE = {1, 0xFFFFFFFF00000000u, 0xFFFFFFFFFFFFFFFFu, 0x00000000FFFFFFFEu};
static const fe FE_R2 = {3, 0xFFFFFFFBFFFFFFFFu, 0xFFFFFFFFFFFFFFFEu, 0x00000004FFFFFFFDu};
/* The group order q. */
static const fe Q = {0xF3B9CAC2FC632551u, 0xBCE6FAADA7179E84u, 0xFFFFFFFFFFFFFFFFu,
                     0xFFFFFFFF00000000u};

static const uint8_t curve_b[MS_P256_BYTES] = {
    0x5A, 0xC6, 0x35, 0xD8, 0xAA, 0x3A, 0x93, 0xE7, 0xB3, 0xEB, 0xBD, 0x55, 0x76, 0x98, 0x86, 0xBC,
    0x65, 0x1D, 0x06, 0xB0, 0xCC, 0x53, 0xB0, 0xF6, 0x3B, 0xCE, 0x3C, 0x3E, 0x27, 0xD2, 0x60, 0x4B};
static const uint8_t base_point[MS_P256_POINT_BYTES] = {
    0x04, 0x6B, 0x17, 0xD1, 0xF2, 0xE1, 0x2C, 0x42, 0x47, 0xF8, 0xBC, 0xE6, 0xE5, 0x63, 0xA4,
    0x40, 0xF2, 0x77, 0x03, 0x7D, 0x81, 0x2D, 0xEB, 0x33, 0xA0, 0xF4, 0xA1, 0x39, 0x45, 0xD8,
    0x98, 0xC2, 0x96, 0x4F, 0xE3, 0x42, 0xE2, 0xFE, 0x1A, 0x7F, 0x9B, 0x8E, 0xE7, 0xEB, 0x4A,
    0x7C, 0x0F, 0x9E, 0x16, 0x2B, 0xCE, 0x33, 0x57, 0x6B, 0x31, 0x5E, 0xCE, 0xCB, 0xB6, 0x40,
    0x68, 0x37, 0xBF, 0x51, 0xF5};

/* ---- 256-bit integers ---------------------------------------------------------------- */

static void u256_from_be(uint64_t r[4], const uint8_t in[32])
{
    for (int i = 0; i < 4; i++) {
        uint64_t w = 0;
        for (int k = 0; k < 8; k++)
            w = (w << 8) | in[32 - 8 * (i + 1) + k];
        r[i] = w;
    }
}

static void u256_to_be(uint8_t out[32], const uint64_t a[4])
{
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 8; k++)
            out[32 - 8 * (i + 1) + k] = (uint8_t)(a[i] >> (56 - 8 * k));
}

/* Add and subtract with carry: adc and sbb on x86-64, 128-bit sums elsewhere. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <x86intrin.h>
static inline unsigned char adc(unsigned char c, uint64_t a, uint64_t b, uint64_t *r)
{
    unsigned long long t;
    c = _addcarry_u64(c, a, b, &t);
    *r = t;
    return c;
}
static inline unsigned char sbb(unsigned char c, uint64_t a, uint64_t b, uint64_t *r)
{
    unsigned long long t;
    c = _subborrow_u64(c, a, b, &t);
    *r = t;
    return c;
}
#else
static inline unsigned char adc(unsigned char c, uint64_t a, uint64_t b, uint64_t *r)
{
    u128 s = (u128)a + b + c;
    *r = (uint64_t)s;
    return (unsigned char)(s >> 64);
}
static inline unsigned char sbb(unsigned char c, uint64_t a, uint64_t b, uint64_t *r)
{
    u128 d = (u128)a - b - c;
    *r = (uint64_t)d;
    return (unsigned char)((d >> 64) & 1);
}
#endif

/* r = a - b; returns the borrow. */
static inline uint64_t u256_sub(uint64_t r[4], const uint64_t a[4], const uint64_t b[4])
{
    unsigned char c = sbb(0, a[0], b[0], &r[0]);
    c = sbb(c, a[1], b[1], &r[1]);
    c = sbb(c, a[2], b[2], &r[2]);
    return sbb(c, a[3], b[3], &r[3]);
}

/* ---- the field --------------------------------------------------------------------- */

#if !(defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)))
/* r = t mod p for t = (top, t[3..0]) < 2p (the portable field code only). */
static inline void fe_reduce_once(fe r, const uint64_t t[4], uint64_t top)
{
    fe d;
    unsigned char c = sbb(0, t[0], P[0], &d[0]);
    c = sbb(c, t[1], P[1], &d[1]);
    c = sbb(c, t[2], P[2], &d[2]);
    c = sbb(c, t[3], P[3], &d[3]);
    c = sbb(c, top, 0, &top);
    /* t < p exactly when the whole subtraction, top word included, borrowed */
    uint64_t keep = ms_ct_mask(c);
    for (int i = 0; i < 4; i++)
        r[i] = ms_ct_select(keep, t[i], d[i]);
}
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* x86-64 assembly, two ways: with mul and adc (any x86-64), and with mulx, adcx and
 * adox (BMI2 and ADX), chosen at run time by mont.c's CPU check. GCC 12 spills the C
 * version's running value and runs about 1.5 times slower than the first, 3 times
 * slower than the second. Both are the C version's steps: a row of products, then one
 * reduction step, which adds u p for u = the lowest limb; u p[0] + u = u 2^64 and
 * u p[1] + u = u 2^32 (a shift), p[2] = 0, so one real product per step. The six limbs
 * of the running value rotate through six registers, one dropping out per step. The
 * final subtraction of p is kept by cmov when it does not borrow. */
static const uint64_t P3 = 0xFFFFFFFF00000001u;

static inline __attribute__((always_inline)) void fe_mul_mulq(fe r, const fe a, const fe b)
{
    uint64_t r0, r1, r2, r3, r4, r5, c;
    __asm__(
        "movq 0(%[b]), %%rcx\n\t"
        "movq 0(%[a]), %%rax\n\t"
        "mulq %%rcx\n\t"
        "movq %%rax, %[r0]\n\t"
        "movq %%rdx, %[r1]\n\t"
        "movq 8(%[a]), %%rax\n\t"
        "mulq %%rcx\n\t"
        "addq %%rax, %[r1]\n\t"
        "adcq $0, %%rdx\n\t"
        "movq %%rdx, %[r2]\n\t"
        "movq 16(%[a]), %%rax\n\t"
        "mulq %%rcx\n\t"
        "addq %%rax, %[r2]\n\t"
        "adcq $0, %%rdx\n\t"
        "movq %%rdx, %[r3]\n\t"
        "movq 24(%[a]), %%rax\n\t"
        "mulq %%rcx\n\t"
        "addq %%rax, %[r3]\n\t"
        "adcq $0, %%rdx\n\t"
        "movq %%rdx, %[r4]\n\t"
        "movq $0, %[r5]\n\t"
        "movq %[r0], %%rax\n\t"
        "mulq %[p3]\n\t"
        "movq %[r0], %%rcx\n\t"
        "shlq $32, %[r0]\n\t"
        "shrq $32, %%rcx\n\t"
        "addq %[r0], %[r1]\n\t"
        "adcq %%rcx, %[r2]\n\t"
        "adcq %%rax, %[r3]\n\t"
        "adcq %%rdx, %[r4]\n\t"
        "adcq $0, %[r5]\n\t"
        "movq 8(%[b]), %%rcx\n\t"
        "movq 0(%[a]), %%rax\n\t"
        "mulq %%rcx\n\t"
        "addq %%rax, %[r1]\n\t"
        "adcq $0, %%rdx\n\t"
        "movq %%rdx, %[c]\n\t"
        "movq 8(%[a]), %%rax\n\t"
        "mulq %%rcx\n\t"
        "addq %[c], %%rax\n\t"
        "adcq $0, %%rdx\n\t"
        "addq %%rax, %[r2]\n\t"
        "adcq $0, %%rdx\n\t"
        "movq %%rdx, %[c]\n\t"
        "movq 16(%[a]), %%rax\n\t"
        "mulq %%rcx\n\t"
        "addq %[c], %%rax\n\t"
        "adcq $0, %%rdx\n\t"
        "addq %%rax, %[r3]\n\t"
        "adcq $0, %%rdx\n\t"
        "movq %%rdx, %[c]\n\t"
        "movq 24(%[a]), %%rax\n\t"
        "mulq %%rcx\n\t"
        "addq %[c], %%rax\n\t"
        "adcq $0, %%rdx\n\t"
        "addq %%rax, %[r4]\n\t"
        "adcq $0, %%rdx\n\t"
        "movq %%rdx, %[c]\n\t"
        "movq $0, %[r0]\n\t"
        "addq %[c], %[r5]\n\t"
        "adcq $0, %[r0]\n\t"
        "movq %[r1], %%rax\n\t"
        "mulq %[p3]\n\t"
        "movq %[r1], %%rcx\n\t"
        "shlq $32, %[r1]\n\t"
        "shrq $32, %%rcx\n\t"
        "addq %[r1], %[r2]\n\t"
        "adcq %%rcx, %[r3]\n\t"
        "adcq %%rax, %[r4]\n\t"
        "adcq %%rdx, %[r5]\n\t"
        "adcq $0, %[r0]\n\t"
        "movq 16(%[b]), %%rcx\n\t"
        "movq 0(%[a]), %%rax\n\t"
        "mulq %%rcx\n\t"
        "addq %%rax, %[r2]\n\t"
        "adcq $0, %%rdx\n\t"
        "movq %%rdx, %[c]\n\t"
        "movq 8(%[a]), %%rax\n\t"
        "mulq %%rcx\n\t"
        "addq %[c], %%rax\n\t"
        "adcq $0, %%rdx\n\t"
        "addq %%rax, %[r3]\n\t"
        "adcq $0, %%rdx\n\t"
        "movq %%rdx, %[c]\n\t"
        "movq 16(%[a]), %%rax\n\t"
        "mulq %%rcx\n\t"
        "addq %[c], %%rax\n\t"
        "adcq $0, %%rdx\n\t"
        "addq %%rax, %[r4]\n\t"
        "adcq $0, %%rdx\n\t"
        "movq %%rdx, %[c]\n\t"
        "movq 24(%[a]), %%rax\n\t"
        "mulq %%rcx\n\t"
        "addq %[c], %%rax\n\t"
        "adcq $0, %%rdx\n\t"
        "addq %%rax, %[r5]\n\t"
        "adcq $0, %%rdx\n\t"
        "movq %%rdx, %[c]\n\t"
        "movq $0, %[r1]\n\t"
        "addq %[c], %[r0]\n\t"
        "adcq $0, %[r1]\n\t"
        "movq %[r2], %%rax\n\t"
        "mulq %[p3]\n\t"
        "movq %[r2], %%rcx\n\t"
        "shlq $32, %[r2]\n\t"
        "shrq $32, %%rcx\n\t"
        "addq %[r2], %[r3]\n\t"
        "adcq %%rcx, %[r4]\n\t"
        "adcq %%rax, %[r5]\n\t"
        "adcq %%rdx, %[r0]\n\t"
        "adcq $0, %[r1]\n\t"
        "movq 24(%[b]), %%rcx\n\t"
        "movq 0(%[a]), %%rax\n\t"
        "mulq %%rcx\n\t"
        "addq %%rax, %[r3]\n\t"
        "adcq $0, %%rdx\n\t"
        "movq %%rdx, %[c]\n\t"
        "movq 8(%[a]), %%rax\n\t"
        "mulq %%rcx\n\t"
        "addq %[c], %%rax\n\t"
        "adcq $0, %%rdx\n\t"
        "addq %%rax, %[r4]\n\t"
        "adcq $0, %%rdx\n\t"
        "movq %%rdx, %[c]\n\t"
        "movq 16(%[a]), %%rax\n\t"
        "mulq %%rcx\n\t"
        "addq %[c], %%rax\n\t"
        "adcq $0, %%rdx\n\t"
        "addq %%rax, %[r5]\n\t"
        "adcq $0, %%rdx\n\t"
        "movq %%rdx, %[c]\n\t"
        "movq 24(%[a]), %%rax\n\t"
        "mulq %%rcx\n\t"
        "addq %[c], %%rax\n\t"
        "adcq $0, %%rdx\n\t"
        "addq %%rax, %[r0]\n\t"
        "adcq $0, %%rdx\n\t"
        "movq %%rdx, %[c]\n\t"
        "movq $0, %[r2]\n\t"
        "addq %[c], %[r1]\n\t"
        "adcq $0, %[r2]\n\t"
        "movq %[r3], %%rax\n\t"
        "mulq %[p3]\n\t"
        "movq %[r3], %%rcx\n\t"
        "shlq $32, %[r3]\n\t"
        "shrq $32, %%rcx\n\t"
        "addq %[r3], %[r4]\n\t"
        "adcq %%rcx, %[r5]\n\t"
        "adcq %%rax, %[r0]\n\t"
        "adcq %%rdx, %[r1]\n\t"
        "adcq $0, %[r2]\n\t"
        "movq %[r4], %%rax\n\t"
        "movq %[r5], %%rdx\n\t"
        "movq %[r0], %%rcx\n\t"
        "movq %[r1], %[c]\n\t"
        "subq $-1, %%rax\n\t"
        "movl $0xffffffff, %k[r3]\n\t"
        "sbbq %[r3], %%rdx\n\t"
        "sbbq $0, %%rcx\n\t"
        "sbbq %[p3], %[c]\n\t"
        "sbbq $0, %[r2]\n\t"
        "cmovncq %%rax, %[r4]\n\t"
        "cmovncq %%rdx, %[r5]\n\t"
        "cmovncq %%rcx, %[r0]\n\t"
        "cmovncq %[c], %[r1]\n\t"
        : [r0] "=&r"(r0), [r1] "=&r"(r1), [r2] "=&r"(r2), [r3] "=&r"(r3), [r4] "=&r"(r4),
          [r5] "=&r"(r5), [c] "=&r"(c)
        : [a] "r"(a), [b] "r"(b), [p3] "m"(P3), "m"(*(const uint64_t(*)[4])a),
          "m"(*(const uint64_t(*)[4])b)
        : "rax", "rdx", "rcx", "cc");
    r[0] = r4;
    r[1] = r5;
    r[2] = r0;
    r[3] = r1;
}

#ifdef MS_FP_BACKEND_X86_64_ADX
static inline __attribute__((always_inline)) void fe_mul_adx(fe r, const fe a, const fe b)
{
    uint64_t r0, r1, r2, r3, r4, r5, c;
    __asm__(
        "movq 0(%[b]), %%rdx\n\t"
        "mulxq 0(%[a]), %[r0], %[r1]\n\t"
        "mulxq 8(%[a]), %%rax, %[r2]\n\t"
        "addq %%rax, %[r1]\n\t"
        "mulxq 16(%[a]), %%rax, %[r3]\n\t"
        "adcq %%rax, %[r2]\n\t"
        "mulxq 24(%[a]), %%rax, %[r4]\n\t"
        "adcq %%rax, %[r3]\n\t"
        "adcq $0, %[r4]\n\t"
        "movq $0, %[r5]\n\t"
        "movq %[r0], %%rdx\n\t"
        "mulxq %[p3], %%rax, %%rcx\n\t"
        "shlq $32, %[r0]\n\t"
        "shrq $32, %%rdx\n\t"
        "addq %[r0], %[r1]\n\t"
        "adcq %%rdx, %[r2]\n\t"
        "adcq %%rax, %[r3]\n\t"
        "adcq %%rcx, %[r4]\n\t"
        "adcq $0, %[r5]\n\t"
        "movq 8(%[b]), %%rdx\n\t"
        "xorl %k[c], %k[c]\n\t"
        "mulxq 0(%[a]), %%rax, %%rcx\n\t"
        "adcxq %%rax, %[r1]\n\t"
        "adoxq %%rcx, %[r2]\n\t"
        "mulxq 8(%[a]), %%rax, %%rcx\n\t"
        "adcxq %%rax, %[r2]\n\t"
        "adoxq %%rcx, %[r3]\n\t"
        "mulxq 16(%[a]), %%rax, %%rcx\n\t"
        "adcxq %%rax, %[r3]\n\t"
        "adoxq %%rcx, %[r4]\n\t"
        "mulxq 24(%[a]), %%rax, %%rcx\n\t"
        "adcxq %%rax, %[r4]\n\t"
        "adoxq %%rcx, %[r5]\n\t"
        "movq $0, %[r0]\n\t"
        "adoxq %[c], %[r0]\n\t"
        "adcxq %[c], %[r5]\n\t"
        "adcxq %[c], %[r0]\n\t"
        "movq %[r1], %%rdx\n\t"
        "mulxq %[p3], %%rax, %%rcx\n\t"
        "shlq $32, %[r1]\n\t"
        "shrq $32, %%rdx\n\t"
        "addq %[r1], %[r2]\n\t"
        "adcq %%rdx, %[r3]\n\t"
        "adcq %%rax, %[r4]\n\t"
        "adcq %%rcx, %[r5]\n\t"
        "adcq $0, %[r0]\n\t"
        "movq 16(%[b]), %%rdx\n\t"
        "xorl %k[c], %k[c]\n\t"
        "mulxq 0(%[a]), %%rax, %%rcx\n\t"
        "adcxq %%rax, %[r2]\n\t"
        "adoxq %%rcx, %[r3]\n\t"
        "mulxq 8(%[a]), %%rax, %%rcx\n\t"
        "adcxq %%rax, %[r3]\n\t"
        "adoxq %%rcx, %[r4]\n\t"
        "mulxq 16(%[a]), %%rax, %%rcx\n\t"
        "adcxq %%rax, %[r4]\n\t"
        "adoxq %%rcx, %[r5]\n\t"
        "mulxq 24(%[a]), %%rax, %%rcx\n\t"
        "adcxq %%rax, %[r5]\n\t"
        "adoxq %%rcx, %[r0]\n\t"
        "movq $0, %[r1]\n\t"
        "adoxq %[c], %[r1]\n\t"
        "adcxq %[c], %[r0]\n\t"
        "adcxq %[c], %[r1]\n\t"
        "movq %[r2], %%rdx\n\t"
        "mulxq %[p3], %%rax, %%rcx\n\t"
        "shlq $32, %[r2]\n\t"
        "shrq $32, %%rdx\n\t"
        "addq %[r2], %[r3]\n\t"
        "adcq %%rdx, %[r4]\n\t"
        "adcq %%rax, %[r5]\n\t"
        "adcq %%rcx, %[r0]\n\t"
        "adcq $0, %[r1]\n\t"
        "movq 24(%[b]), %%rdx\n\t"
        "xorl %k[c], %k[c]\n\t"
        "mulxq 0(%[a]), %%rax, %%rcx\n\t"
        "adcxq %%rax, %[r3]\n\t"
        "adoxq %%rcx, %[r4]\n\t"
        "mulxq 8(%[a]), %%rax, %%rcx\n\t"
        "adcxq %%rax, %[r4]\n\t"
        "adoxq %%rcx, %[r5]\n\t"
        "mulxq 16(%[a]), %%rax, %%rcx\n\t"
        "adcxq %%rax, %[r5]\n\t"
        "adoxq %%rcx, %[r0]\n\t"
        "mulxq 24(%[a]), %%rax, %%rcx\n\t"
        "adcxq %%rax, %[r0]\n\t"
        "adoxq %%rcx, %[r1]\n\t"
        "movq $0, %[r2]\n\t"
        "adoxq %[c], %[r2]\n\t"
        "adcxq %[c], %[r1]\n\t"
        "adcxq %[c], %[r2]\n\t"
        "movq %[r3], %%rdx\n\t"
        "mulxq %[p3], %%rax, %%rcx\n\t"
        "shlq $32, %[r3]\n\t"
        "shrq $32, %%rdx\n\t"
        "addq %[r3], %[r4]\n\t"
        "adcq %%rdx, %[r5]\n\t"
        "adcq %%rax, %[r0]\n\t"
        "adcq %%rcx, %[r1]\n\t"
        "adcq $0, %[r2]\n\t"
        "movq %[r4], %%rax\n\t"
        "movq %[r5], %%rdx\n\t"
        "movq %[r0], %%rcx\n\t"
        "movq %[r1], %[c]\n\t"
        "subq $-1, %%rax\n\t"
        "movl $0xffffffff, %k[r3]\n\t"
        "sbbq %[r3], %%rdx\n\t"
        "sbbq $0, %%rcx\n\t"
        "sbbq %[p3], %[c]\n\t"
        "sbbq $0, %[r2]\n\t"
        "cmovncq %%rax, %[r4]\n\t"
        "cmovncq %%rdx, %[r5]\n\t"
        "cmovncq %%rcx, %[r0]\n\t"
        "cmovncq %[c], %[r1]\n\t"
        : [r0] "=&r"(r0), [r1] "=&r"(r1), [r2] "=&r"(r2), [r3] "=&r"(r3), [r4] "=&r"(r4),
          [r5] "=&r"(r5), [c] "=&r"(c)
        : [a] "r"(a), [b] "r"(b), [p3] "m"(P3), "m"(*(const uint64_t(*)[4])a),
          "m"(*(const uint64_t(*)[4])b)
        : "rax", "rdx", "rcx", "cc");
    r[0] = r4;
    r[1] = r5;
    r[2] = r0;
    r[3] = r1;
}

/* The six cross products once, doubled, plus the four squares; then the four
 * reduction steps on the 512-bit square, each step's carry rippled to the top. */
static inline __attribute__((always_inline)) void fe_sqr_adx(fe r, const fe a)
{
    uint64_t r0, r1, r2, r3, r4, r5, r6, r7, top;
    __asm__(
        "movq 0(%[a]), %%rdx\n\t"
        "mulxq 8(%[a]), %[r1], %[r2]\n\t"
        "mulxq 16(%[a]), %%rax, %[r3]\n\t"
        "addq %%rax, %[r2]\n\t"
        "mulxq 24(%[a]), %%rax, %[r4]\n\t"
        "adcq %%rax, %[r3]\n\t"
        "adcq $0, %[r4]\n\t"
        "movq 8(%[a]), %%rdx\n\t"
        "xorl %k[top], %k[top]\n\t"
        "mulxq 16(%[a]), %%rax, %%rcx\n\t"
        "adcxq %%rax, %[r3]\n\t"
        "adoxq %%rcx, %[r4]\n\t"
        "mulxq 24(%[a]), %%rax, %[r5]\n\t"
        "adcxq %%rax, %[r4]\n\t"
        "adoxq %[top], %[r5]\n\t"
        "adcxq %[top], %[r5]\n\t"
        "movq 16(%[a]), %%rdx\n\t"
        "mulxq 24(%[a]), %%rax, %[r6]\n\t"
        "addq %%rax, %[r5]\n\t"
        "adcq $0, %[r6]\n\t"
        "movq $0, %[r7]\n\t"
        "addq %[r1], %[r1]\n\t"
        "adcq %[r2], %[r2]\n\t"
        "adcq %[r3], %[r3]\n\t"
        "adcq %[r4], %[r4]\n\t"
        "adcq %[r5], %[r5]\n\t"
        "adcq %[r6], %[r6]\n\t"
        "adcq $0, %[r7]\n\t"
        "movq 0(%[a]), %%rdx\n\t"
        "mulxq %%rdx, %[r0], %%rcx\n\t"
        "addq %%rcx, %[r1]\n\t"
        "movq 8(%[a]), %%rdx\n\t"
        "mulxq %%rdx, %%rax, %%rcx\n\t"
        "adcq %%rax, %[r2]\n\t"
        "adcq %%rcx, %[r3]\n\t"
        "movq 16(%[a]), %%rdx\n\t"
        "mulxq %%rdx, %%rax, %%rcx\n\t"
        "adcq %%rax, %[r4]\n\t"
        "adcq %%rcx, %[r5]\n\t"
        "movq 24(%[a]), %%rdx\n\t"
        "mulxq %%rdx, %%rax, %%rcx\n\t"
        "adcq %%rax, %[r6]\n\t"
        "adcq %%rcx, %[r7]\n\t"
        "xorl %k[top], %k[top]\n\t"
        "movq %[r0], %%rdx\n\t"
        "mulxq %[p3], %%rax, %%rcx\n\t"
        "shlq $32, %[r0]\n\t"
        "shrq $32, %%rdx\n\t"
        "addq %[r0], %[r1]\n\t"
        "adcq %%rdx, %[r2]\n\t"
        "adcq %%rax, %[r3]\n\t"
        "adcq %%rcx, %[r4]\n\t"
        "adcq $0, %[r5]\n\t"
        "adcq $0, %[r6]\n\t"
        "adcq $0, %[r7]\n\t"
        "adcq $0, %[top]\n\t"
        "movq %[r1], %%rdx\n\t"
        "mulxq %[p3], %%rax, %%rcx\n\t"
        "shlq $32, %[r1]\n\t"
        "shrq $32, %%rdx\n\t"
        "addq %[r1], %[r2]\n\t"
        "adcq %%rdx, %[r3]\n\t"
        "adcq %%rax, %[r4]\n\t"
        "adcq %%rcx, %[r5]\n\t"
        "adcq $0, %[r6]\n\t"
        "adcq $0, %[r7]\n\t"
        "adcq $0, %[top]\n\t"
        "movq %[r2], %%rdx\n\t"
        "mulxq %[p3], %%rax, %%rcx\n\t"
        "shlq $32, %[r2]\n\t"
        "shrq $32, %%rdx\n\t"
        "addq %[r2], %[r3]\n\t"
        "adcq %%rdx, %[r4]\n\t"
        "adcq %%rax, %[r5]\n\t"
        "adcq %%rcx, %[r6]\n\t"
        "adcq $0, %[r7]\n\t"
        "adcq $0, %[top]\n\t"
        "movq %[r3], %%rdx\n\t"
        "mulxq %[p3], %%rax, %%rcx\n\t"
        "shlq $32, %[r3]\n\t"
        "shrq $32, %%rdx\n\t"
        "addq %[r3], %[r4]\n\t"
        "adcq %%rdx, %[r5]\n\t"
        "adcq %%rax, %[r6]\n\t"
        "adcq %%rcx, %[r7]\n\t"
        "adcq $0, %[top]\n\t"
        "movq %[r4], %[r0]\n\t"
        "movq %[r5], %[r1]\n\t"
        "movq %[r6], %[r2]\n\t"
        "movq %[r7], %[r3]\n\t"
        "subq $-1, %[r0]\n\t"
        "movl $0xffffffff, %%eax\n\t"
        "sbbq %%rax, %[r1]\n\t"
        "sbbq $0, %[r2]\n\t"
        "sbbq %[p3], %[r3]\n\t"
        "sbbq $0, %[top]\n\t"
        "cmovncq %[r0], %[r4]\n\t"
        "cmovncq %[r1], %[r5]\n\t"
        "cmovncq %[r2], %[r6]\n\t"
        "cmovncq %[r3], %[r7]\n\t"
        : [r0] "=&r"(r0), [r1] "=&r"(r1), [r2] "=&r"(r2), [r3] "=&r"(r3), [r4] "=&r"(r4),
          [r5] "=&r"(r5), [r6] "=&r"(r6), [r7] "=&r"(r7), [top] "=&r"(top)
        : [a] "r"(a), [p3] "m"(P3), "m"(*(const uint64_t(*)[4])a)
        : "rax", "rdx", "rcx", "cc");
    r[0] = r4;
    r[1] = r5;
    r[2] = r6;
    r[3] = r7;
}

static inline void fe_mul(fe r, const fe a, const fe b)
{
    if (__builtin_expect(ms_mont_cpu_has_adx, 1))
        fe_mul_adx(r, a, b);
    else
        fe_mul_mulq(r, a, b);
}

static inline void fe_sqr(fe r, const fe a)
{
    if (__builtin_expect(ms_mont_cpu_has_adx, 1))
        fe_sqr_adx(r, a);
    else
        fe_mul_mulq(r, a, a);
}
#else
static inline void fe_mul(fe r, const fe a, const fe b)
{
    fe_mul_mulq(r, a, b);
}

static inline void fe_sqr(fe r, const fe a)
{
    fe_mul_mulq(r, a, a);
}
#endif

#else
/* r = a * b / R mod p, by CIOS: a row of products, then one reduction step, which
 * adds u p for u = the lowest limb (-p^-1 = 1 mod 2^64) and shifts: u p[0] + u is
 * u 2^64 exactly and p[2] = 0, so each step has two products. Plain variables rather
 * than an array keep GCC from spilling the running value. */
static inline void fe_mul(fe r, const fe a, const fe b)
{
    uint64_t t0 = 0, t1 = 0, t2 = 0, t3 = 0, t4 = 0, t5;
    for (int i = 0; i < 4; i++) {
        uint64_t bi = b[i];
        u128 acc = (u128)a[0] * bi + t0;
        t0 = (uint64_t)acc;
        acc = (u128)a[1] * bi + t1 + (uint64_t)(acc >> 64);
        t1 = (uint64_t)acc;
        acc = (u128)a[2] * bi + t2 + (uint64_t)(acc >> 64);
        t2 = (uint64_t)acc;
        acc = (u128)a[3] * bi + t3 + (uint64_t)(acc >> 64);
        t3 = (uint64_t)acc;
        acc = (u128)t4 + (uint64_t)(acc >> 64);
        t4 = (uint64_t)acc;
        t5 = (uint64_t)(acc >> 64);

        uint64_t u = t0;
        acc = (u128)u * P[1] + t1 + u;
        t0 = (uint64_t)acc;
        acc = (u128)t2 + (uint64_t)(acc >> 64);
        t1 = (uint64_t)acc;
        acc = (u128)u * P[3] + t3 + (uint64_t)(acc >> 64);
        t2 = (uint64_t)acc;
        acc = (u128)t4 + (uint64_t)(acc >> 64);
        t3 = (uint64_t)acc;
        t4 = t5 + (uint64_t)(acc >> 64);
    }
    const uint64_t t[4] = {t0, t1, t2, t3};
    fe_reduce_once(r, t, t4);
}

static inline void fe_sqr(fe r, const fe a)
{
    fe_mul(r, a, a);
}
#endif


#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* Addition and subtraction in assembly too: GCC turns the C versions' final selection
 * into vector code that reloads what it just stored (a store-forwarding stall), and
 * they are a third of a point doubling's instructions. */
static inline __attribute__((always_inline)) void fe_add(fe r, const fe a, const fe b)
{
    uint64_t r0, r1, r2, r3, d0, d1, d2, d3, top;
    __asm__("movq 0(%[a]), %[r0]\n\t"
            "movq 8(%[a]), %[r1]\n\t"
            "movq 16(%[a]), %[r2]\n\t"
            "movq 24(%[a]), %[r3]\n\t"
            "xorl %k[top], %k[top]\n\t"
            "addq 0(%[b]), %[r0]\n\t"
            "adcq 8(%[b]), %[r1]\n\t"
            "adcq 16(%[b]), %[r2]\n\t"
            "adcq 24(%[b]), %[r3]\n\t"
            "adcq $0, %[top]\n\t"
            "movq %[r0], %[d0]\n\t"
            "movq %[r1], %[d1]\n\t"
            "movq %[r2], %[d2]\n\t"
            "movq %[r3], %[d3]\n\t"
            "subq $-1, %[d0]\n\t"
            "sbbq %[p1], %[d1]\n\t"
            "sbbq $0, %[d2]\n\t"
            "sbbq %[p3], %[d3]\n\t"
            "sbbq $0, %[top]\n\t"
            "cmovncq %[d0], %[r0]\n\t"
            "cmovncq %[d1], %[r1]\n\t"
            "cmovncq %[d2], %[r2]\n\t"
            "cmovncq %[d3], %[r3]\n\t"
            : [r0] "=&r"(r0), [r1] "=&r"(r1), [r2] "=&r"(r2), [r3] "=&r"(r3), [d0] "=&r"(d0),
              [d1] "=&r"(d1), [d2] "=&r"(d2), [d3] "=&r"(d3), [top] "=&r"(top)
            : [a] "r"(a), [b] "r"(b), [p1] "m"(P[1]), [p3] "m"(P3),
              "m"(*(const uint64_t(*)[4])a), "m"(*(const uint64_t(*)[4])b)
            : "cc");
    r[0] = r0;
    r[1] = r1;
    r[2] = r2;
    r[3] = r3;
}

static inline __attribute__((always_inline)) void fe_sub(fe r, const fe a, const fe b)
{
    uint64_t r0, r1, r2, r3, mask, m1, m3;
    __asm__("xorl %k[mask], %k[mask]\n\t"
            "movq 0(%[a]), %[r0]\n\t"
            "movq 8(%[a]), %[r1]\n\t"
            "movq 16(%[a]), %[r2]\n\t"
            "movq 24(%[a]), %[r3]\n\t"
            "subq 0(%[b]), %[r0]\n\t"
            "sbbq 8(%[b]), %[r1]\n\t"
            "sbbq 16(%[b]), %[r2]\n\t"
            "sbbq 24(%[b]), %[r3]\n\t"
            "sbbq %[mask], %[mask]\n\t" /* all ones if it borrowed: add p back */
            "movq %[p1], %[m1]\n\t"
            "movq %[p3], %[m3]\n\t"
            "andq %[mask], %[m1]\n\t"
            "andq %[mask], %[m3]\n\t"
            "addq %[mask], %[r0]\n\t"
            "adcq %[m1], %[r1]\n\t"
            "adcq $0, %[r2]\n\t"
            "adcq %[m3], %[r3]\n\t"
            : [r0] "=&r"(r0), [r1] "=&r"(r1), [r2] "=&r"(r2), [r3] "=&r"(r3), [mask] "=&r"(mask),
              [m1] "=&r"(m1), [m3] "=&r"(m3)
            : [a] "r"(a), [b] "r"(b), [p1] "m"(P[1]), [p3] "m"(P3),
              "m"(*(const uint64_t(*)[4])a), "m"(*(const uint64_t(*)[4])b)
            : "cc");
    r[0] = r0;
    r[1] = r1;
    r[2] = r2;
    r[3] = r3;
}
/* Chains of additions and subtractions with the running value kept in registers (no
 * store and reload between the steps): the same instructions as fe_add and fe_sub.
 * (A0..A3) -= SRC, or += SRC, or *= 2, mod p. */
#define FE_REG_SUB(A0, A1, A2, A3, SRC)                                                      \
    do {                                                                                   \
        uint64_t mask_, m1_, m3_;                                                          \
        __asm__("subq 0(%[s]), %[r0]\n\t"                                                 \
                "sbbq 8(%[s]), %[r1]\n\t"                                                 \
                "sbbq 16(%[s]), %[r2]\n\t"                                                \
                "sbbq 24(%[s]), %[r3]\n\t"                                                \
                "sbbq %[mask], %[mask]\n\t"                                               \
                "movq %[p1], %[m1]\n\t"                                                   \
                "movq %[p3], %[m3]\n\t"                                                   \
                "andq %[mask], %[m1]\n\t"                                                 \
                "andq %[mask], %[m3]\n\t"                                                 \
                "addq %[mask], %[r0]\n\t"                                                 \
                "adcq %[m1], %[r1]\n\t"                                                   \
                "adcq $0, %[r2]\n\t"                                                      \
                "adcq %[m3], %[r3]\n\t"                                                   \
                : [r0] "+r"(A0), [r1] "+r"(A1), [r2] "+r"(A2), [r3] "+r"(A3),              \
                  [mask] "=&r"(mask_), [m1] "=&r"(m1_), [m3] "=&r"(m3_)                    \
                : [s] "r"(SRC), [p1] "m"(P[1]), [p3] "m"(P3), "m"(*(const uint64_t(*)[4])(SRC)) \
                : "cc");                                                                   \
    } while (0)

/* the sum (r + b or r + r) is in (top, r0..r3); then p is taken off unless that borrows */
#define FE_REG_REDUCE_ASM                                                                  \
    "movq %[r0], %[d0]\n\t"                                                               \
    "movq %[r1], %[d1]\n\t"                                                               \
    "movq %[r2], %[d2]\n\t"                                                               \
    "movq %[r3], %[d3]\n\t"                                                               \
    "subq $-1, %[d0]\n\t"                                                                 \
    "sbbq %[p1], %[d1]\n\t"                                                               \
    "sbbq $0, %[d2]\n\t"                                                                  \
    "sbbq %[p3], %[d3]\n\t"                                                               \
    "sbbq $0, %[top]\n\t"                                                                 \
    "cmovncq %[d0], %[r0]\n\t"                                                            \
    "cmovncq %[d1], %[r1]\n\t"                                                            \
    "cmovncq %[d2], %[r2]\n\t"                                                            \
    "cmovncq %[d3], %[r3]\n\t"

#define FE_REG_ADD(A0, A1, A2, A3, SRC)                                                      \
    do {                                                                                   \
        uint64_t d0_, d1_, d2_, d3_, top_;                                                 \
        __asm__("xorl %k[top], %k[top]\n\t"                                               \
                "addq 0(%[s]), %[r0]\n\t"                                                 \
                "adcq 8(%[s]), %[r1]\n\t"                                                 \
                "adcq 16(%[s]), %[r2]\n\t"                                                \
                "adcq 24(%[s]), %[r3]\n\t"                                                \
                "adcq $0, %[top]\n\t" FE_REG_REDUCE_ASM                                   \
                : [r0] "+r"(A0), [r1] "+r"(A1), [r2] "+r"(A2), [r3] "+r"(A3),              \
                  [d0] "=&r"(d0_), [d1] "=&r"(d1_), [d2] "=&r"(d2_), [d3] "=&r"(d3_),      \
                  [top] "=&r"(top_)                                                        \
                : [s] "r"(SRC), [p1] "m"(P[1]), [p3] "m"(P3), "m"(*(const uint64_t(*)[4])(SRC)) \
                : "cc");                                                                   \
    } while (0)

#define FE_REG_DOUBLE(A0, A1, A2, A3)                                                      \
    do {                                                                                   \
        uint64_t d0_, d1_, d2_, d3_, top_;                                                 \
        __asm__("xorl %k[top], %k[top]\n\t"                                               \
                "addq %[r0], %[r0]\n\t"                                                   \
                "adcq %[r1], %[r1]\n\t"                                                   \
                "adcq %[r2], %[r2]\n\t"                                                   \
                "adcq %[r3], %[r3]\n\t"                                                   \
                "adcq $0, %[top]\n\t" FE_REG_REDUCE_ASM                                   \
                : [r0] "+r"(A0), [r1] "+r"(A1), [r2] "+r"(A2), [r3] "+r"(A3),              \
                  [d0] "=&r"(d0_), [d1] "=&r"(d1_), [d2] "=&r"(d2_), [d3] "=&r"(d3_),      \
                  [top] "=&r"(top_)                                                        \
                : [p1] "m"(P[1]), [p3] "m"(P3)                                             \
                : "cc");                                                                   \
    } while (0)

#define FE_REG_LOAD(a) uint64_t r0 = (a)[0], r1 = (a)[1], r2 = (a)[2], r3 = (a)[3]
#define FE_REG_STORE(r) ((r)[0] = r0, (r)[1] = r1, (r)[2] = r2, (r)[3] = r3)

/* r = 2a */
static inline __attribute__((always_inline)) void fe_double(fe r, const fe a)
{
    FE_REG_LOAD(a);
    FE_REG_DOUBLE(r0, r1, r2, r3);
    FE_REG_STORE(r);
}

/* r = 3a */
static inline __attribute__((always_inline)) void fe_triple(fe r, const fe a)
{
    FE_REG_LOAD(a);
    FE_REG_DOUBLE(r0, r1, r2, r3);
    FE_REG_ADD(r0, r1, r2, r3, a);
    FE_REG_STORE(r);
}

/* r = a - 2b */
static inline __attribute__((always_inline)) void fe_sub_twice(fe r, const fe a, const fe b)
{
    FE_REG_LOAD(a);
    FE_REG_SUB(r0, r1, r2, r3, b);
    FE_REG_SUB(r0, r1, r2, r3, b);
    FE_REG_STORE(r);
}

/* r = a - 2b - c */
static inline __attribute__((always_inline)) void fe_sub_twice_sub(fe r, const fe a, const fe b,
                                                                   const fe c)
{
    FE_REG_LOAD(a);
    FE_REG_SUB(r0, r1, r2, r3, b);
    FE_REG_SUB(r0, r1, r2, r3, b);
    FE_REG_SUB(r0, r1, r2, r3, c);
    FE_REG_STORE(r);
}

/* r = a / 2: a + p when a is odd (masked, no branch), then one bit to the right with
 * the addition's carry as the new top bit. (GCC's version of the C below moves the
 * limbs through vector registers.) */
static inline __attribute__((always_inline)) void fe_half(fe r, const fe a)
{
    FE_REG_LOAD(a);
    uint64_t mask, m1, m3, top;
    __asm__("movq %[r0], %[mask]\n\t"
            "andq $1, %[mask]\n\t"
            "negq %[mask]\n\t"
            "movq %[p1], %[m1]\n\t"
            "movq %[p3], %[m3]\n\t"
            "andq %[mask], %[m1]\n\t"
            "andq %[mask], %[m3]\n\t"
            "xorl %k[top], %k[top]\n\t"
            "addq %[mask], %[r0]\n\t"
            "adcq %[m1], %[r1]\n\t"
            "adcq $0, %[r2]\n\t"
            "adcq %[m3], %[r3]\n\t"
            "adcq $0, %[top]\n\t"
            "shrdq $1, %[r1], %[r0]\n\t"
            "shrdq $1, %[r2], %[r1]\n\t"
            "shrdq $1, %[r3], %[r2]\n\t"
            "shrdq $1, %[top], %[r3]\n\t"
            : [r0] "+r"(r0), [r1] "+r"(r1), [r2] "+r"(r2), [r3] "+r"(r3), [mask] "=&r"(mask),
              [m1] "=&r"(m1), [m3] "=&r"(m3), [top] "=&r"(top)
            : [p1] "m"(P[1]), [p3] "m"(P3)
            : "cc");
    FE_REG_STORE(r);
}

#else
static inline __attribute__((always_inline)) void fe_add(fe r, const fe a, const fe b)
{
    uint64_t t[4];
    unsigned char c = adc(0, a[0], b[0], &t[0]);
    c = adc(c, a[1], b[1], &t[1]);
    c = adc(c, a[2], b[2], &t[2]);
    c = adc(c, a[3], b[3], &t[3]);
    fe_reduce_once(r, t, c);
}

static inline __attribute__((always_inline)) void fe_sub(fe r, const fe a, const fe b)
{
    uint64_t t[4];
    uint64_t mask = ms_ct_mask(u256_sub(t, a, b));
    unsigned char c = adc(0, t[0], P[0] & mask, &r[0]);
    c = adc(c, t[1], P[1] & mask, &r[1]);
    c = adc(c, t[2], P[2] & mask, &r[2]);
    (void)adc(c, t[3], P[3] & mask, &r[3]);
}

/* r = a / 2 mod p: a + p when a is odd (mask, no branch), then one bit to the right,
 * the carry of the addition becoming the top bit. */
static inline void fe_half(fe r, const fe a)
{
    uint64_t odd = ms_ct_mask(a[0] & 1), t[4];
    unsigned char c = adc(0, a[0], P[0] & odd, &t[0]);
    c = adc(c, a[1], P[1] & odd, &t[1]);
    c = adc(c, a[2], P[2] & odd, &t[2]);
    c = adc(c, a[3], P[3] & odd, &t[3]);
    r[0] = (t[0] >> 1) | (t[1] << 63);
    r[1] = (t[1] >> 1) | (t[2] << 63);
    r[2] = (t[2] >> 1) | (t[3] << 63);
    r[3] = (t[3] >> 1) | ((uint64_t)c << 63);
}

static inline void fe_double(fe r, const fe a)
{
    fe_add(r, a, a);
}

static inline void fe_triple(fe r, const fe a)
{
    fe t;
    fe_add(t, a, a);
    fe_add(r, t, a);
}

static inline void fe_sub_twice(fe r, const fe a, const fe b)
{
    fe t;
    fe_sub(t, a, b);
    fe_sub(r, t, b);
}

static inline void fe_sub_twice_sub(fe r, const fe a, const fe b, const fe c)
{
    fe t;
    fe_sub(t, a, b);
    fe_sub(t, t, b);
    fe_sub(r, t, c);
}

#endif

/* r = -a mod p (0 stays 0). */
static inline void fe_neg(fe r, const fe a)
{
    static const fe zero = {0};
    fe_sub(r, zero, a);
}

static inline uint64_t fe_iszero(const fe a)
{
    return ms_ct_iszero(a[0] | a[1] | a[2] | a[3]);
}

static inline uint64_t fe_eq(const fe a, const fe b)
{
    return ms_ct_iszero((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]));
}

static inline int fe_iszero_var(const fe a)
{
    return (a[0] | a[1] | a[2] | a[3]) == 0;
}

static inline int fe_eq_var(const fe a, const fe b)
{
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0;
}

static inline void fe_copy(fe r, const fe a)
{
    memcpy(r, a, sizeof(fe));
}

static void fe_sqr_n(fe r, const fe a, int n)
{
    fe_sqr(r, a);
    for (int i = 1; i < n; i++)
        fe_sqr(r, r);
}

/* r = a^(p-2) = a^-1 (0 for 0), constant time. p - 2 in 32-bit groups, high first:
 * ffffffff 00000001 00000000 00000000 00000000 ffffffff ffffffff fffffffd. */
static void fe_inv(fe r, const fe a)
{
    fe x2, x3, x6, x12, x15, x30, x32, t;
    fe_sqr(x2, a);
    fe_mul(x2, x2, a); /* a^(2^2-1) */
    fe_sqr(x3, x2);
    fe_mul(x3, x3, a);
    fe_sqr_n(x6, x3, 3);
    fe_mul(x6, x6, x3);
    fe_sqr_n(x12, x6, 6);
    fe_mul(x12, x12, x6);
    fe_sqr_n(x15, x12, 3);
    fe_mul(x15, x15, x3);
    fe_sqr_n(x30, x15, 15);
    fe_mul(x30, x30, x15);
    fe_sqr_n(x32, x30, 2);
    fe_mul(x32, x32, x2); /* a^(2^32-1) */
    fe_sqr_n(t, x32, 32);
    fe_mul(t, t, a);      /* ffffffff 00000001 */
    fe_sqr_n(t, t, 96);   /* three zero groups */
    fe_sqr_n(t, t, 32);
    fe_mul(t, t, x32);
    fe_sqr_n(t, t, 32);
    fe_mul(t, t, x32);
    fe_sqr_n(t, t, 30);
    fe_mul(t, t, x30);
    fe_sqr_n(t, t, 2);
    fe_mul(r, t, a); /* ... fffffffd */
}

/* r = a^-1 for a non-zero public a: the variable-time divstep GCD of mont.c gives the
 * plain inverse of a R, i.e. a^-1 R^-1; times R^3 / R it is a^-1 R. */
static void fe_inv_var(fe r, const fe a)
{
    static const ms_mont pmod = {.m = {0xFFFFFFFFFFFFFFFFu, 0x00000000FFFFFFFFu, 0,
                                       0xFFFFFFFF00000001u}};
    uint64_t x[MS_LIMBS] = {0};
    memcpy(x, a, sizeof(fe));
    ms_mont_inv_plain_var(x, x, &pmod);
    fe r3;
    fe_mul(r3, FE_R2, FE_R2);
    fe_mul(r, x, r3);
}

static void fe_from_be(fe r, const uint8_t in[32])
{
    fe t;
    u256_from_be(t, in);
    fe_mul(r, t, FE_R2);
}

static void fe_to_be(uint8_t out[32], const fe a)
{
    static const fe one = {1};
    fe t;
    fe_mul(t, a, one);
    u256_to_be(out, t);
}

/* ---- points -------------------------------------------------------------------------- */

typedef ms_p256_affine affine;
typedef ms_p256_jacobian jacobian;

/* The point operations with the field multiplications inlined: one copy per assembly
 * version on x86-64 (chosen once per point operation), one copy elsewhere. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define P256_MUL fe_mul_mulq
#define P256_SQR(r, a) fe_mul_mulq(r, a, a)
#define P256_POINT_FN(name) name##_mulq
#include "p256_point.h"
#undef P256_MUL
#undef P256_SQR
#undef P256_POINT_FN
#ifdef MS_FP_BACKEND_X86_64_ADX
#define P256_MUL fe_mul_adx
#define P256_SQR fe_sqr_adx
#define P256_POINT_FN(name) name##_adx
#include "p256_point.h"
#undef P256_MUL
#undef P256_SQR
#undef P256_POINT_FN

/* r = 2a (dbl-2001-b for a = -3, with Z3 = 2YZ: 4M + 4S). Infinity (Z = 0) stays
 * infinity. r may be a. */
static void point_double(jacobian *r, const jacobian *a)
{
    if (__builtin_expect(ms_mont_cpu_has_adx, 1))
        point_double_adx(r, a);
    else
        point_double_mulq(r, a);
}

/* r = a + b for b affine (madd-2007-bl with Z3 = 2 Z1 H: 8M + 3S). Exceptional cases
 * are the caller's: a at infinity gives garbage; a = -b gives Z = 0 (infinity,
 * correctly); a = b gives Z = 0 too, wrongly, so callers rule it out (or, in _var
 * code, test for it). The H and r of the formula go to h_out and r_out for that test.
 * r may be a. */
static void point_add_affine(jacobian *r, const jacobian *a, const affine *b, fe h_out,
                             fe r_out)
{
    if (__builtin_expect(ms_mont_cpu_has_adx, 1))
        point_add_affine_adx(r, a, b, h_out, r_out);
    else
        point_add_affine_mulq(r, a, b, h_out, r_out);
}
#else
static void point_double(jacobian *r, const jacobian *a)
{
    point_double_mulq(r, a);
}

static void point_add_affine(jacobian *r, const jacobian *a, const affine *b, fe h_out,
                             fe r_out)
{
    point_add_affine_mulq(r, a, b, h_out, r_out);
}
#endif
#else
#define P256_MUL fe_mul
#define P256_SQR fe_sqr
#define P256_POINT_FN(name) name
#include "p256_point.h"
#undef P256_MUL
#undef P256_SQR
#undef P256_POINT_FN
#endif

/* r = a + b, both Jacobian, public (add-2007-bl: 11M + 5S), every case handled. */
static void point_add_var(jacobian *r, const jacobian *a, const jacobian *b)
{
    if (fe_iszero_var(a->z)) {
        *r = *b;
        return;
    }
    if (fe_iszero_var(b->z)) {
        *r = *a;
        return;
    }
    fe z1z1, z2z2, u1, u2, s1, s2, h, i, j, rr, v, t;
    fe_sqr(z1z1, a->z);
    fe_sqr(z2z2, b->z);
    fe_mul(u1, a->x, z2z2);
    fe_mul(u2, b->x, z1z1);
    fe_mul(s1, a->y, b->z);
    fe_mul(s1, s1, z2z2);
    fe_mul(s2, b->y, a->z);
    fe_mul(s2, s2, z1z1);
    fe_sub(h, u2, u1);
    fe_sub(rr, s2, s1);
    if (fe_iszero_var(h)) {
        if (fe_iszero_var(rr)) {
            point_double(r, a);
        } else {
            memset(r, 0, sizeof *r);
        }
        return;
    }
    fe_add(rr, rr, rr);
    fe_add(i, h, h);
    fe_sqr(i, i);
    fe_mul(j, h, i);
    fe_mul(v, u1, i);
    fe_add(t, a->z, b->z);
    fe_sqr(t, t);
    fe_sub(t, t, z1z1);
    fe_sub(t, t, z2z2);
    fe_mul(r->z, t, h);
    fe_sqr(t, rr);
    fe_sub(t, t, j);
    fe_sub(t, t, v);
    fe_sub(r->x, t, v);
    fe_sub(v, v, r->x);
    fe_mul(v, rr, v);
    fe_mul(t, s1, j);
    fe_add(t, t, t);
    fe_sub(r->y, v, t);
}

/* r = a + b for b affine, public, every case handled; r may be a (the sum is written
 * straight into r: when a = b it is b, affine, that gets doubled). */
static void point_add_affine_var(jacobian *r, const jacobian *a, const affine *b)
{
    if (fe_iszero_var(a->z)) {
        fe_copy(r->x, b->x);
        fe_copy(r->y, b->y);
        fe_copy(r->z, FE_ONE);
        return;
    }
    fe h, rr;
    point_add_affine(r, a, b, h, rr);
    if (fe_iszero_var(h) && fe_iszero_var(rr)) { /* a = b */
        jacobian bj;
        fe_copy(bj.x, b->x);
        fe_copy(bj.y, b->y);
        fe_copy(bj.z, FE_ONE);
        point_double(r, &bj);
    }
}

static void affine_to_jacobian(jacobian *r, const affine *a)
{
    fe_copy(r->x, a->x);
    fe_copy(r->y, a->y);
    fe_copy(r->z, FE_ONE);
}

/* Affine forms of n points, none at infinity, with one inversion (Montgomery's trick);
 * public points only. scratch holds n field elements. */
static void batch_to_affine_var(affine *out, const jacobian *in, size_t n, fe *scratch)
{
    fe_copy(scratch[0], in[0].z);
    for (size_t i = 1; i < n; i++)
        fe_mul(scratch[i], scratch[i - 1], in[i].z);
    fe inv, zi, zi2;
    fe_inv_var(inv, scratch[n - 1]);
    for (size_t i = n; i-- > 0;) {
        if (i > 0) {
            fe_mul(zi, inv, scratch[i - 1]); /* 1 / Z_i */
            fe_mul(inv, inv, in[i].z);       /* 1 / (Z_0 ... Z_{i-1}) */
        } else {
            fe_copy(zi, inv);
        }
        fe_sqr(zi2, zi);
        fe_mul(out[i].x, in[i].x, zi2);
        fe_mul(zi2, zi2, zi);
        fe_mul(out[i].y, in[i].y, zi2);
    }
}

/* Odd multiples a, 3a, ..., (2n-1)a of an affine public point, affine. */
static void odd_multiples_var(affine *out, const affine *a, size_t n, jacobian *tmp, fe *scratch)
{
    jacobian twice;
    affine_to_jacobian(&tmp[0], a);
    point_double(&twice, &tmp[0]);
    for (size_t i = 1; i < n; i++)
        point_add_var(&tmp[i], &tmp[i - 1], &twice);
    batch_to_affine_var(out, tmp, n, scratch);
}

/* ---- tables of G, built once --------------------------------------------------------- */

#define COMB_WIDTH 6
#define COMB_ROWS 43  /* ceil(256 / 6) */
#define COMB_COLS 32  /* odd |digit| in 1..63 */
#define G_WNAF_WIDTH 8
#define G_WNAF_POINTS (1 << (G_WNAF_WIDTH - 2))
#define WNAF_WIDTH 5 /* per-point tables: MS_P256_TABLE_POINTS = 2^(5-2) */

/* comb[i][j] = (2j + 1) 2^(6i) G; g_odd[j] = (2j + 1) G, g_odd_neg[j] = -(2j + 1) G. */
static affine comb[COMB_ROWS][COMB_COLS];
static affine g_odd[G_WNAF_POINTS], g_odd_neg[G_WNAF_POINTS];
static fe q_r2; /* R^2 mod q */
static uint64_t q_m0inv;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
static int cpu_has_avx2; /* set with the tables: the comb's lookups use AVX2 then */
#endif

static void tables_init(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    cpu_has_avx2 = __builtin_cpu_supports("avx2");
#endif
    /* R^2 mod q: R mod q = 2^256 - q, doubled 256 times mod q */
    fe x;
    static const fe zero = {0};
    u256_sub(x, zero, Q);
    for (int i = 0; i < 256; i++) {
        uint64_t t[4], top = x[3] >> 63, d[4];
        t[0] = x[0] << 1;
        for (int k = 1; k < 4; k++)
            t[k] = (x[k] << 1) | (x[k - 1] >> 63);
        uint64_t borrow = u256_sub(d, t, Q);
        if (top || !borrow)
            memcpy(x, d, sizeof x);
        else
            memcpy(x, t, sizeof x);
    }
    fe_copy(q_r2, x);
    uint64_t inv = Q[0];
    for (int k = 0; k < 5; k++)
        inv *= 2 - Q[0] * inv;
    q_m0inv = (uint64_t)0 - inv;

    affine g;
    if (ms_p256_decode(&g, base_point) != MS_OK)
        return; /* cannot happen: the tests would see every result wrong */
    jacobian tmp[COMB_COLS > G_WNAF_POINTS ? COMB_COLS : G_WNAF_POINTS];
    fe scratch[COMB_COLS > G_WNAF_POINTS ? COMB_COLS : G_WNAF_POINTS];
    odd_multiples_var(g_odd, &g, G_WNAF_POINTS, tmp, scratch);
    for (int j = 0; j < G_WNAF_POINTS; j++)
        ms_p256_negate(&g_odd_neg[j], &g_odd[j]);

    jacobian base; /* 2^(6i) G */
    affine_to_jacobian(&base, &g);
    for (int i = 0; i < COMB_ROWS; i++) {
        jacobian twice;
        point_double(&twice, &base);
        tmp[0] = base;
        for (int j = 1; j < COMB_COLS; j++)
            point_add_var(&tmp[j], &tmp[j - 1], &twice);
        batch_to_affine_var(comb[i], tmp, COMB_COLS, scratch);
        point_add_var(&base, &tmp[COMB_COLS - 1], &base); /* 63 + 1 times 2^(6i) G */
    }
}

static void tables_ready(void)
{
    pthread_once(&tables_once, tables_init);
}

/* ---- encoding ------------------------------------------------------------------------ */

ms_err ms_p256_decode(ms_p256_affine *out, const uint8_t in[MS_P256_POINT_BYTES])
{
    if (in[0] != 0x04)
        return MS_ERR_BAD_ENCODING;
    fe x, y, t;
    u256_from_be(x, in + 1);
    u256_from_be(y, in + 1 + MS_P256_BYTES);
    if (!u256_sub(t, x, P) || !u256_sub(t, y, P)) /* not below p */
        return MS_ERR_BAD_ENCODING;
    fe_mul(x, x, FE_R2);
    fe_mul(y, y, FE_R2);
    /* y^2 = x^3 - 3x + b */
    fe lhs, rhs, b;
    fe_sqr(lhs, y);
    fe_sqr(rhs, x);
    fe_mul(rhs, rhs, x);
    fe_sub(rhs, rhs, x);
    fe_sub(rhs, rhs, x);
    fe_sub(rhs, rhs, x);
    fe_from_be(b, curve_b);
    fe_add(rhs, rhs, b);
    if (!fe_eq_var(lhs, rhs))
        return MS_ERR_POINT_NOT_ON_CURVE;
    fe_copy(out->x, x);
    fe_copy(out->y, y);
    return MS_OK;
}

void ms_p256_encode(uint8_t out[MS_P256_POINT_BYTES], const ms_p256_affine *p)
{
    out[0] = 0x04;
    fe_to_be(out + 1, p->x);
    fe_to_be(out + 1 + MS_P256_BYTES, p->y);
}

/* ---- constant time --------------------------------------------------------------------- */

/* The odd signed window-6 digits of an odd k < 2^256: k = sum d_i 2^(6i) with every
 * d_i odd, |d_i| <= 63, so that no digit is zero. Recoding k digit by digit as
 * d = (k mod 2^7) - 2^6, k <- (k - d) / 2^6 keeps k odd, and (k - d) / 2^6 is just
 * (k >> 6) | 1; so d_i is bits 6i to 6i + 6 of k with the lowest set, minus 64 (rows
 * 0 to 41), and d_42 = (k >> 252) | 1, in 1..15. No carries: constant time. */
static void comb_digits(int64_t d[COMB_ROWS], const uint64_t k[4])
{
    for (int i = 0; i < COMB_ROWS; i++) {
        int bit = COMB_WIDTH * i, limb = bit / 64, shift = bit % 64;
        uint64_t w = k[limb] >> shift;
        if (shift > 64 - (COMB_WIDTH + 1) && limb < 3)
            w |= k[limb + 1] << (64 - shift);
        if (i == COMB_ROWS - 1)
            d[i] = (int64_t)(w | 1);
        else
            d[i] = (int64_t)((w & ((1u << (COMB_WIDTH + 1)) - 1)) | 1) - (1 << COMB_WIDTH);
    }
}

/* out = row[idx - 1], or zeros for idx = 0: the whole row is read, every entry masked
 * and OR-ed in, so the memory touched does not depend on idx. Two words at a time
 * (GCC's vector extension; SSE2 on x86-64), or four with AVX2 where the CPU has it:
 * the 43 lookups of [k]G are an eighth of its time with SSE2. */
typedef uint64_t u64x2 __attribute__((vector_size(16), aligned(8), may_alias));
static void comb_lookup_sse2(affine *out, const affine row[COMB_COLS], uint64_t idx)
{
    u64x2 a0 = {0, 0}, a1 = {0, 0}, a2 = {0, 0}, a3 = {0, 0};
    for (int j = 0; j < COMB_COLS; j++) {
        uint64_t m = ms_ct_eq(idx, (uint64_t)j + 1);
        u64x2 mask = {m, m};
        const u64x2 *e = (const u64x2 *)&row[j];
        a0 |= e[0] & mask;
        a1 |= e[1] & mask;
        a2 |= e[2] & mask;
        a3 |= e[3] & mask;
    }
    u64x2 *o = (u64x2 *)out;
    o[0] = a0;
    o[1] = a1;
    o[2] = a2;
    o[3] = a3;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
typedef uint64_t u64x4 __attribute__((vector_size(32), aligned(8), may_alias));
/* The masks come from a vector comparison of idx with a running counter (no branch,
 * no table index: vpcmpeqq), hidden from the optimiser behind an empty asm. */
__attribute__((target("avx2"))) static void comb_lookup_avx2(affine *out,
                                                             const affine row[COMB_COLS],
                                                             uint64_t idx)
{
    u64x4 a0 = {0, 0, 0, 0}, a1 = {0, 0, 0, 0};
    u64x4 want = {idx, idx, idx, idx}, count = {1, 1, 1, 1};
    const u64x4 one = {1, 1, 1, 1};
    __asm__("" : "+x"(want));
    for (int j = 0; j < COMB_COLS; j++) {
        u64x4 mask = (u64x4)(count == want);
        const u64x4 *e = (const u64x4 *)&row[j];
        a0 |= e[0] & mask;
        a1 |= e[1] & mask;
        count += one;
    }
    u64x4 *o = (u64x4 *)out;
    o[0] = a0;
    o[1] = a1;
}
#endif

static void comb_lookup(affine *out, const affine row[COMB_COLS], uint64_t idx)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (cpu_has_avx2) {
        comb_lookup_avx2(out, row, idx);
        return;
    }
#endif
    comb_lookup_sse2(out, row, idx);
}

/* The comb's point for a digit d: row[(|d| - 1) / 2], negated if d < 0. */
static void comb_point(affine *pt, const affine row[COMB_COLS], int64_t d)
{
    uint64_t neg = ms_ct_mask((uint64_t)d >> 63);
    uint64_t abs = ((uint64_t)d ^ neg) - neg;
    comb_lookup(pt, row, (abs + 1) / 2);
    fe ny;
    fe_neg(ny, pt->y);
    ms_ct_cmov(pt->y, ny, 4, neg);
}

void ms_p256_mul_g(ms_p256_jacobian *out, const uint8_t k[MS_P256_BYTES])
{
    tables_ready();
    /* k odd, or q - k (odd, as q is) and the result negated at the end */
    uint64_t kl[4], qk[4];
    int64_t d[COMB_ROWS];
    u256_from_be(kl, k);
    u256_sub(qk, Q, kl);
    uint64_t even = ms_ct_mask(~kl[0] & 1);
    ms_ct_cmov(kl, qk, 4, even);
    comb_digits(d, kl);

    /* acc + pt, rows 1 to 41, never meets acc = +-pt: the sum S of the digits below
     * row i is odd (so not 0) and |S| < 2^(6i) <= |d_i| 2^(6i), while
     * |S| + |d_i| 2^(6i) < 2^(6i+6) <= 2^252 < q, so S differs from +-d_i 2^(6i) mod q.
     * In row 42, acc = -pt would make k (or q - k) 0 mod q, but acc = pt happens (for
     * k = 15 2^253 - q): that row's sum is also computed as a doubling and chosen
     * when the addition's H and R are both zero. */
    affine pt;
    jacobian acc;
    comb_point(&pt, comb[0], d[0]);
    affine_to_jacobian(&acc, &pt);
    for (int i = 1; i < COMB_ROWS - 1; i++) {
        comb_point(&pt, comb[i], d[i]);
        point_add_affine(&acc, &acc, &pt, NULL, NULL);
    }
    jacobian sum, twice;
    fe h, r;
    comb_point(&pt, comb[COMB_ROWS - 1], d[COMB_ROWS - 1]);
    point_add_affine(&sum, &acc, &pt, h, r);
    point_double(&twice, &acc);
    ms_ct_cmov((uint64_t *)&sum, (const uint64_t *)&twice, 12, fe_iszero(h) & fe_iszero(r));
    fe ny;
    fe_neg(ny, sum.y);
    ms_ct_cmov(sum.y, ny, 4, even);
    *out = sum;
    ms_wipe(kl, sizeof kl);
    ms_wipe(qk, sizeof qk);
    ms_wipe(d, sizeof d);
    ms_wipe(&pt, sizeof pt);
    ms_wipe(&acc, sizeof acc);
    ms_wipe(&sum, sizeof sum);
    ms_wipe(&twice, sizeof twice);
}

void ms_p256_to_affine(ms_p256_affine *out, const ms_p256_jacobian *in)
{
    fe zi, zi2;
    fe_inv(zi, in->z);
    fe_sqr(zi2, zi);
    fe_mul(out->x, in->x, zi2);
    fe_mul(zi2, zi2, zi);
    fe_mul(out->y, in->y, zi2);
}

uint64_t ms_p256_equal_jacobian(const ms_p256_jacobian *a, const ms_p256_jacobian *b)
{
    /* X1 Z2^2 = X2 Z1^2 and Y1 Z2^3 = Y2 Z1^3, neither at infinity */
    fe z1z1, z2z2, u1, u2, s1, s2;
    fe_sqr(z1z1, a->z);
    fe_sqr(z2z2, b->z);
    fe_mul(u1, a->x, z2z2);
    fe_mul(u2, b->x, z1z1);
    fe_mul(s1, a->y, z2z2);
    fe_mul(s1, s1, b->z);
    fe_mul(s2, b->y, z1z1);
    fe_mul(s2, s2, a->z);
    return fe_eq(u1, u2) & fe_eq(s1, s2) & ~fe_iszero(a->z) & ~fe_iszero(b->z);
}

void ms_p256_negate(ms_p256_affine *r, const ms_p256_affine *a)
{
    fe_copy(r->x, a->x);
    fe_neg(r->y, a->y);
}

/* out = [k]P for a public P and a secret k < q: odd signed window-4 digits (the recoding
 * of comb_digits with width 4: d_0..d_62 in -15..15, d_63 = (k >> 252) | 1), each added
 * from P's table of odd multiples read whole (masked), four doublings between. The
 * prefix sums are odd, nonzero and below q, so acc never meets infinity; acc = +-pt can
 * only happen in the last step, and the doubling computed at every step is chosen by
 * mask when the addition's H and R are both zero. k = 0 runs on q - 0 = q and ends at
 * infinity (Z = 0). */
void ms_p256_mul_point(ms_p256_jacobian *out, const ms_p256_affine *p,
                       const uint8_t k[MS_P256_BYTES])
{
    enum { W = 4, ROWS = 64 };
    ms_p256_table tab;
    ms_p256_table_var(&tab, p);
    uint64_t kl[4], qk[4];
    u256_from_be(kl, k);
    u256_sub(qk, Q, kl);
    uint64_t even = ms_ct_mask(~kl[0] & 1);
    ms_ct_cmov(kl, qk, 4, even);
    jacobian acc, sum, twice;
    affine pt;
    fe h, r, ny;
    for (int i = ROWS - 1; i >= 0; i--) {
        int bit = W * i, limb = bit / 64, shift = bit % 64;
        uint64_t w = kl[limb] >> shift;
        if (shift > 64 - (W + 1) && limb < 3)
            w |= kl[limb + 1] << (64 - shift);
        int64_t d = i == ROWS - 1 ? (int64_t)(w | 1)
                                  : (int64_t)((w & ((1u << (W + 1)) - 1)) | 1) - (1 << W);
        uint64_t neg = ms_ct_mask((uint64_t)d >> 63);
        uint64_t idx = ((((uint64_t)d ^ neg) - neg) - 1) / 2; /* 0..7 */
        memset(&pt, 0, sizeof pt);
        for (uint64_t j = 0; j < MS_P256_TABLE_POINTS; j++)
            ms_ct_cmov((uint64_t *)&pt, (const uint64_t *)&tab.p[j], 8, ms_ct_eq(idx, j));
        fe_neg(ny, pt.y);
        ms_ct_cmov(pt.y, ny, 4, neg);
        if (i == ROWS - 1) {
            fe_copy(acc.x, pt.x);
            fe_copy(acc.y, pt.y);
            fe_copy(acc.z, FE_ONE);
            continue;
        }
        for (int b = 0; b < W; b++)
            point_double(&acc, &acc);
        point_add_affine(&sum, &acc, &pt, h, r);
        point_double(&twice, &acc);
        ms_ct_cmov((uint64_t *)&sum, (const uint64_t *)&twice, 12, fe_iszero(h) & fe_iszero(r));
        acc = sum;
    }
    fe_neg(ny, acc.y);
    ms_ct_cmov(acc.y, ny, 4, even);
    *out = acc;
    ms_wipe(kl, sizeof kl);
    ms_wipe(qk, sizeof qk);
    ms_wipe(&acc, sizeof acc);
    ms_wipe(&sum, sizeof sum);
    ms_wipe(&twice, sizeof twice);
    ms_wipe(&pt, sizeof pt);
}

/* r = a + b for a not at infinity, constant time: a = b is doubled (chosen by mask),
 * a = -b gives infinity (Z = 0). */
void ms_p256_add_affine(ms_p256_jacobian *r, const ms_p256_jacobian *a, const ms_p256_affine *b)
{
    jacobian sum, twice;
    fe h, rr;
    point_add_affine(&sum, a, b, h, rr);
    point_double(&twice, a);
    ms_ct_cmov((uint64_t *)&sum, (const uint64_t *)&twice, 12, fe_iszero(h) & fe_iszero(rr));
    *r = sum;
}

uint64_t ms_p256_equal(const ms_p256_jacobian *a, const ms_p256_affine *b)
{
    /* (X / Z^2, Y / Z^3) = (x, y) */
    fe zz, t;
    fe_sqr(zz, a->z);
    fe_mul(t, b->x, zz);
    uint64_t eq = fe_eq(t, a->x);
    fe_mul(zz, zz, a->z);
    fe_mul(t, b->y, zz);
    return eq & fe_eq(t, a->y) & ~fe_iszero(a->z);
}

/* ---- variable time ----------------------------------------------------------------- */

void ms_p256_tables_var(ms_p256_table *t, const ms_p256_affine *p, size_t n, int width)
{
    /* The odd multiples 3P, 5P, ... by mixed additions of 2P on an isomorphic curve:
     * with 2P = (X, Y, Z), the map (x, y) -> (x Z^2, y Z^3) takes the curve to one on
     * which 2P is the affine (X, Y), and the addition formulas do not involve the
     * curve's coefficients. There the sums (2i + 1)P' = (X', Y', Z') are reached by
     * mixed additions (8M + 3S, not 11M + 5S), and on our curve they are
     * (X', Y', Z' Z). Then one shared inversion makes them all affine. No sum meets an
     * exceptional case: the points have order q, and 2i - 1 = +-2 has no solution
     * below 2^(w-1). */
    if (n == 0 || n > 4 || (width != 4 && width != 5))
        return;
    const size_t m = (size_t)1 << (width - 2), rest = m - 1; /* rest: 3P, 5P, ... */
    jacobian tmp[4 * (MS_P256_TABLE_POINTS - 1)];
    fe scratch[4 * (MS_P256_TABLE_POINTS - 1)];
    affine out[4 * (MS_P256_TABLE_POINTS - 1)];
    memset(tmp, 0, sizeof tmp[0]); /* (GCC cannot see that n >= 1 sets it) */
    for (size_t b = 0; b < n; b++) {
        jacobian twice, acc;
        affine twice_iso;
        fe zz, zzz;
        affine_to_jacobian(&acc, &p[b]);
        point_double(&twice, &acc);
        fe_copy(twice_iso.x, twice.x);
        fe_copy(twice_iso.y, twice.y);
        fe_sqr(zz, twice.z);
        fe_mul(zzz, zz, twice.z);
        fe_mul(acc.x, acc.x, zz); /* P on the isomorphic curve, Z = 1 */
        fe_mul(acc.y, acc.y, zzz);
        jacobian *mult = &tmp[b * rest];
        for (size_t i = 0; i < rest; i++) {
            point_add_affine(&acc, &acc, &twice_iso, NULL, NULL);
            fe_copy(mult[i].x, acc.x);
            fe_copy(mult[i].y, acc.y);
            fe_mul(mult[i].z, acc.z, twice.z);
        }
    }
    batch_to_affine_var(out, tmp, n * rest, scratch);
    for (size_t b = 0; b < n; b++) {
        memset(&t[b], 0, sizeof t[b]);
        t[b].p[0] = p[b];
        memcpy(&t[b].p[1], &out[b * rest], rest * sizeof out[0]);
        t[b].width = width;
    }
}

void ms_p256_table_var(ms_p256_table *t, const ms_p256_affine *p)
{
    ms_p256_tables_var(t, p, 1, WNAF_WIDTH);
}

/* The width-w NAF of a 256-bit k: digits odd or 0, |digit| < 2^(w-1), at most one
 * non-zero in any w consecutive ones; 257 of them (a carry may reach bit 256). */
#define WNAF_LEN 257
static void wnaf_var(int8_t naf[WNAF_LEN], const uint64_t k[4], int w)
{
    memset(naf, 0, WNAF_LEN);
    int carry = 0;
    int bit = 0;
    while (bit < 256) {
        /* skip to the next bit that differs from the carry, a limb at a time */
        int limb = bit / 64, shift = bit % 64;
        uint64_t differ = (carry ? ~k[limb] : k[limb]) >> shift;
        if (differ == 0) {
            bit = 64 * (limb + 1);
            continue;
        }
        bit += __builtin_ctzll(differ);
        limb = bit / 64;
        shift = bit % 64;
        uint64_t v = k[limb] >> shift;
        if (shift > 64 - w && limb < 3)
            v |= k[limb + 1] << (64 - shift);
        int word = (int)(v & (((uint64_t)1 << w) - 1)) + carry;
        carry = (word >> (w - 1)) & 1;
        word -= carry << w;
        naf[bit] = (int8_t)word;
        bit += w;
    }
    if (carry)
        naf[256] = 1;
}

/* acc += digit times the point whose odd multiples are odd[] and, negated, neg[]. */
static void add_digit_var(jacobian *acc, int digit, const affine *odd, const affine *neg)
{
    if (digit > 0)
        point_add_affine_var(acc, acc, &odd[(digit - 1) / 2]);
    else if (digit < 0)
        point_add_affine_var(acc, acc, &neg[(-digit - 1) / 2]);
}

void ms_p256_mul_var(ms_p256_jacobian *out, const uint8_t g[MS_P256_BYTES],
                     const ms_p256_table *const *tables, const uint8_t *const *k, size_t n)
{
    tables_ready();
    int8_t gnaf[WNAF_LEN], naf[4][WNAF_LEN];
    int top = -1;
    if (g != NULL) {
        uint64_t gl[4];
        u256_from_be(gl, g);
        wnaf_var(gnaf, gl, G_WNAF_WIDTH);
        for (int i = WNAF_LEN - 1; i > top; i--)
            if (gnaf[i] != 0)
                top = i;
    }
    for (size_t b = 0; b < n; b++) {
        uint64_t kl[4];
        u256_from_be(kl, k[b]);
        wnaf_var(naf[b], kl, tables[b]->width);
        for (int i = WNAF_LEN - 1; i > top; i--)
            if (naf[b][i] != 0)
                top = i;
    }
    /* the negated table entries, once, rather than at each negative digit */
    affine neg[4][MS_P256_TABLE_POINTS];
    for (size_t b = 0; b < n; b++) {
        size_t m = (size_t)1 << (tables[b]->width - 2);
        for (size_t j = 0; j < m; j++)
            ms_p256_negate(&neg[b][j], &tables[b]->p[j]);
    }
    jacobian acc;
    memset(&acc, 0, sizeof acc);
    for (int i = top; i >= 0; i--) {
        if (!fe_iszero_var(acc.z))
            point_double(&acc, &acc);
        if (g != NULL)
            add_digit_var(&acc, gnaf[i], g_odd, g_odd_neg);
        for (size_t b = 0; b < n; b++)
            add_digit_var(&acc, naf[b][i], tables[b]->p, neg[b]);
    }
    *out = acc;
}

void ms_p256_add_affine_var(ms_p256_jacobian *r, const ms_p256_jacobian *a,
                            const ms_p256_affine *b)
{
    point_add_affine_var(r, a, b);
}

int ms_p256_to_affine_var(ms_p256_affine *out, const ms_p256_jacobian *in)
{
    if (fe_iszero_var(in->z))
        return 0;
    fe zi, zi2;
    fe_inv_var(zi, in->z);
    fe_sqr(zi2, zi);
    fe_mul(out->x, in->x, zi2);
    fe_mul(zi2, zi2, zi);
    fe_mul(out->y, in->y, zi2);
    return 1;
}

int ms_p256_x_equals_var(const ms_p256_jacobian *in, const uint8_t x[MS_P256_BYTES])
{
    if (fe_iszero_var(in->z))
        return 0;
    fe xl, t, zz;
    u256_from_be(xl, x);
    if (!u256_sub(t, xl, P)) /* x >= p is no coordinate */
        return 0;
    fe_mul(xl, xl, FE_R2);
    fe_sqr(zz, in->z);
    fe_mul(t, xl, zz);
    return fe_eq_var(t, in->x);
}

/* ---- scalars mod q (public) ---------------------------------------------------------- */

/* r = a * b / R mod q for a, b < q (CIOS), constant time. */
static void q_mont_mul(uint64_t r[4], const uint64_t a[4], const uint64_t b[4])
{
    uint64_t t[6] = {0};
    for (int i = 0; i < 4; i++) {
        u128 acc = 0;
        for (int j = 0; j < 4; j++) {
            acc = (u128)a[j] * b[i] + t[j] + (uint64_t)(acc >> 64);
            t[j] = (uint64_t)acc;
        }
        acc = (u128)t[4] + (uint64_t)(acc >> 64);
        t[4] = (uint64_t)acc;
        t[5] = (uint64_t)(acc >> 64);
        uint64_t u = t[0] * q_m0inv;
        acc = (u128)u * Q[0] + t[0];
        for (int j = 1; j < 4; j++) {
            acc = (u128)u * Q[j] + t[j] + (uint64_t)(acc >> 64);
            t[j - 1] = (uint64_t)acc;
        }
        acc = (u128)t[4] + (uint64_t)(acc >> 64);
        t[3] = (uint64_t)acc;
        t[4] = t[5] + (uint64_t)(acc >> 64);
    }
    /* keep t only if t < q: the subtraction borrowed and there is no top word */
    uint64_t d[4];
    uint64_t keep = ms_ct_mask(u256_sub(d, t, Q)) & ms_ct_iszero(t[4]);
    for (int i = 0; i < 4; i++)
        r[i] = ms_ct_select(keep, t[i], d[i]);
}

/* a mod q for a < 2^256 < 2q. */
static void q_reduce(uint64_t r[4], const uint64_t a[4])
{
    uint64_t d[4];
    if (!u256_sub(d, a, Q))
        memcpy(r, d, sizeof d);
    else if (r != a)
        memcpy(r, a, sizeof d);
}

void ms_p256_scalar_mul_var(uint8_t out[MS_P256_BYTES], const uint8_t a[MS_P256_BYTES],
                            const uint8_t b[MS_P256_BYTES])
{
    tables_ready();
    uint64_t al[4], bl[4], t[4];
    u256_from_be(al, a);
    u256_from_be(bl, b);
    q_reduce(al, al);
    q_reduce(bl, bl);
    q_mont_mul(t, al, bl);  /* a b / R */
    q_mont_mul(t, t, q_r2); /* a b */
    u256_to_be(out, t);
}

void ms_p256_scalar_mul(uint8_t out[MS_P256_BYTES], const uint8_t a[MS_P256_BYTES],
                        const uint8_t b[MS_P256_BYTES])
{
    tables_ready(); /* R^2 mod q */
    uint64_t al[4], bl[4], t[4];
    u256_from_be(al, a);
    u256_from_be(bl, b);
    q_mont_mul(t, al, bl);
    q_mont_mul(t, t, q_r2);
    u256_to_be(out, t);
    ms_wipe(al, sizeof al);
    ms_wipe(bl, sizeof bl);
    ms_wipe(t, sizeof t);
}

void ms_p256_scalar_add(uint8_t out[MS_P256_BYTES], const uint8_t a[MS_P256_BYTES],
                        const uint8_t b[MS_P256_BYTES])
{
    uint64_t al[4], bl[4], t[4], d[4];
    u256_from_be(al, a);
    u256_from_be(bl, b);
    unsigned char c = adc(0, al[0], bl[0], &t[0]);
    c = adc(c, al[1], bl[1], &t[1]);
    c = adc(c, al[2], bl[2], &t[2]);
    c = adc(c, al[3], bl[3], &t[3]);
    /* keep the sum only if it is below q: no carry out, and subtracting q borrows */
    uint64_t keep = ms_ct_mask(u256_sub(d, t, Q)) & ms_ct_iszero(c);
    for (int i = 0; i < 4; i++)
        t[i] = ms_ct_select(keep, t[i], d[i]);
    u256_to_be(out, t);
    ms_wipe(al, sizeof al);
    ms_wipe(bl, sizeof bl);
    ms_wipe(t, sizeof t);
    ms_wipe(d, sizeof d);
}

/* bit length of a 256-bit a (0 for 0) */
static int u256_bits(const uint64_t a[4])
{
    for (int i = 3; i >= 0; i--)
        if (a[i] != 0)
            return 64 * i + 64 - __builtin_clzll(a[i]);
    return 0;
}

/* r = a << s for s < 256 (bits beyond 256 dropped). */
static void u256_shl(uint64_t r[4], const uint64_t a[4], int s)
{
    int limbs = s / 64, bits = s % 64;
    for (int i = 3; i >= 0; i--) {
        uint64_t lo = i - limbs >= 0 ? a[i - limbs] : 0;
        uint64_t below = i - limbs - 1 >= 0 ? a[i - limbs - 1] : 0;
        r[i] = bits ? (lo << bits) | (below >> (64 - bits)) : lo;
    }
}

/* rem = a mod b and the quotient, for a > b >= 2^128 (so the quotient is below 2^128).
 * Most of Euclid's quotients are 1, 2 or 3 (Gauss-Kuzmin: four in five are below 4),
 * so a few subtractions come first; a larger quotient is finished bit by bit. */
static u128 u256_divrem_var(uint64_t rem[4], const uint64_t a[4], const uint64_t b[4])
{
    uint64_t t[4];
    u256_sub(rem, a, b);
    u128 quot = 1;
    for (int i = 0; i < 3; i++) {
        if (u256_sub(t, rem, b)) /* rem < b */
            return quot;
        memcpy(rem, t, sizeof t);
        quot++;
    }
    int bits_b = u256_bits(b);
    for (int s = u256_bits(rem) - bits_b; s >= 0; s--) {
        u256_shl(t, b, s);
        if (!u256_sub(t, rem, t)) { /* rem >= b << s */
            memcpy(rem, t, sizeof t);
            quot += (u128)1 << s;
        }
    }
    return quot;
}

int ms_p256_half_scalars_var(uint8_t c[MS_P256_BYTES], uint8_t d[MS_P256_BYTES],
                             const uint8_t h[MS_P256_BYTES])
{
    /* Euclid on (q, h mod q), keeping t_i with r_i = t_i h mod q, stopped at the first
     * remainder below 2^128; then |t| <= q / (the remainder before) < 2^128. From
     * t_0 = 0, t_1 = 1 and t_(i+1) = t_(i-1) - quot_i t_i, the signs alternate (t_i has
     * the sign of (-1)^(i-1)) and |t_(i+1)| = |t_(i-1)| + quot_i |t_i|: only the
     * magnitudes are kept, in 128 bits, each of them below 2^128 by the bound above
     * (every remainder before the last is at least 2^128). */
    uint64_t r0[4], r1[4], rem[4];
    u128 t0 = 0, t1 = 1;
    int negative = 0;
    memcpy(r0, Q, sizeof r0);
    u256_from_be(r1, h);
    q_reduce(r1, r1);
    while (r1[2] != 0 || r1[3] != 0) {
        u128 quot = u256_divrem_var(rem, r0, r1);
        u128 next = t0 + quot * t1;
        t0 = t1;
        t1 = next;
        negative ^= 1;
        memcpy(r0, r1, sizeof r0);
        memcpy(r1, rem, sizeof r1);
    }
    /* c = r1 >= 0; d = |t1| != 0, with its sign returned */
    const uint64_t dl[4] = {(uint64_t)t1, (uint64_t)(t1 >> 64), 0, 0};
    u256_to_be(c, r1);
    u256_to_be(d, dl);
    return negative;
}

void ms_p256_scalar_reduce_var(uint8_t out[MS_P256_BYTES], const uint8_t a[MS_P256_BYTES])
{
    uint64_t al[4];
    u256_from_be(al, a);
    q_reduce(al, al);
    u256_to_be(out, al);
}

/* ---- for the tests ----------------------------------------------------------------------- */

void ms_p256_fe_op_for_test(uint8_t out[MS_P256_BYTES], ms_p256_fe_op op,
                            const uint8_t a[MS_P256_BYTES], const uint8_t b[MS_P256_BYTES],
                            const uint8_t c[MS_P256_BYTES])
{
    fe x, y, z, r;
    fe_from_be(x, a);
    fe_from_be(y, b);
    fe_from_be(z, c);
    switch (op) {
    case MS_P256_FE_MUL:
        fe_mul(r, x, y);
        break;
    case MS_P256_FE_SQR:
        fe_sqr(r, x);
        break;
    case MS_P256_FE_ADD:
        fe_add(r, x, y);
        break;
    case MS_P256_FE_SUB:
        fe_sub(r, x, y);
        break;
    case MS_P256_FE_HALF:
        fe_half(r, x);
        break;
    case MS_P256_FE_DOUBLE:
        fe_double(r, x);
        break;
    case MS_P256_FE_TRIPLE:
        fe_triple(r, x);
        break;
    case MS_P256_FE_SUB_TWICE:
        fe_sub_twice(r, x, y);
        break;
    case MS_P256_FE_SUB_TWICE_SUB:
        fe_sub_twice_sub(r, x, y, z);
        break;
    case MS_P256_FE_INV_VAR:
        if (fe_iszero_var(x))
            memset(r, 0, sizeof r);
        else
            fe_inv_var(r, x);
        break;
    default:
        fe_inv(r, x);
        break;
    }
    fe_to_be(out, r);
}
