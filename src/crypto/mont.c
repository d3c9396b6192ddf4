/* Generic 1024-bit modular operations on top of the chosen Montgomery backend. */
#include "mont.h"

#include <string.h>
#ifdef MS_FP_BACKEND_X86_64_ADX
#include <cpuid.h>
#endif

#include "ct.h"
#include "mikeysakke/crypto.h"
#include "rng.h"

__extension__ typedef unsigned __int128 u128;

#ifdef MS_FP_BACKEND_X86_64_ADX
int ms_mont_cpu_has_adx;

/* Runs when the library is loaded, before main or the caller's first use. CPUID leaf 7
 * (structured extended features), EBX: bit 8 BMI2 (mulx), bit 19 ADX (adcx, adox).
 * (Read directly: clang's __builtin_cpu_supports does not know "adx".) */
__attribute__((constructor)) static void mont_detect_cpu(void)
{
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx))
        ms_mont_cpu_has_adx = (ebx >> 8 & 1) && (ebx >> 19 & 1);
}
#endif

const char *ms_fp_backend_name(void)
{
#ifdef MS_FP_BACKEND_X86_64_ADX
    return ms_mont_cpu_has_adx ? "x86_64-adx" : "c64 (x86_64-adx built, but this CPU lacks BMI2/ADX)";
#else
    return "c64";
#endif
}

uint64_t ms_u1024_add(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const uint64_t b[MS_LIMBS])
{
    uint64_t carry = 0;
    for (int i = 0; i < MS_LIMBS; i++) {
        u128 s = (u128)a[i] + b[i] + carry;
        r[i] = (uint64_t)s;
        carry = (uint64_t)(s >> 64);
    }
    return carry;
}

uint64_t ms_u1024_sub(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const uint64_t b[MS_LIMBS])
{
    uint64_t borrow = 0;
    for (int i = 0; i < MS_LIMBS; i++) {
        u128 d = (u128)a[i] - b[i] - borrow;
        r[i] = (uint64_t)d;
        borrow = (uint64_t)(d >> 64) & 1;
    }
    return borrow;
}

uint64_t ms_u1024_lt(const uint64_t a[MS_LIMBS], const uint64_t b[MS_LIMBS])
{
    uint64_t tmp[MS_LIMBS];
    return ms_ct_mask(ms_u1024_sub(tmp, a, b));
}

uint64_t ms_u1024_iszero(const uint64_t a[MS_LIMBS])
{
    uint64_t acc = 0;
    for (int i = 0; i < MS_LIMBS; i++)
        acc |= a[i];
    return ms_ct_iszero(acc);
}

uint64_t ms_u1024_eq(const uint64_t a[MS_LIMBS], const uint64_t b[MS_LIMBS])
{
    uint64_t acc = 0;
    for (int i = 0; i < MS_LIMBS; i++)
        acc |= a[i] ^ b[i];
    return ms_ct_iszero(acc);
}

void ms_u1024_from_be(uint64_t r[MS_LIMBS], const uint8_t *in, size_t len)
{
    memset(r, 0, MS_LIMBS * sizeof r[0]);
    for (size_t i = 0; i < len && i < MS_BYTES; i++) {
        size_t bit = 8 * (len - 1 - i); /* position of in[i] counted from the end */
        r[bit / 64] |= (uint64_t)in[i] << (bit % 64);
    }
}

void ms_u1024_to_be(uint8_t out[MS_BYTES], const uint64_t a[MS_LIMBS])
{
    for (int i = 0; i < MS_BYTES; i++) {
        int bit = 8 * (MS_BYTES - 1 - i);
        out[i] = (uint8_t)(a[bit / 64] >> (bit % 64));
    }
}

/* Portable modular addition and subtraction: the implementation on other targets, and
 * the reference the x86-64 versions are tested against. */
void ms_mont_add_portable(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                          const uint64_t b[MS_LIMBS], const ms_mont *mod)
{
    uint64_t s[MS_LIMBS], d[MS_LIMBS];
    uint64_t carry = ms_u1024_add(s, a, b);
    uint64_t borrow = ms_u1024_sub(d, s, mod->m);
    /* a + b >= m when the sum carried out of 1024 bits or subtracting m did not borrow */
    uint64_t use_d = ms_ct_mask(carry) | ~ms_ct_mask(borrow);
    for (int i = 0; i < MS_LIMBS; i++)
        r[i] = ms_ct_select(use_d, d[i], s[i]);
}

void ms_mont_sub_portable(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                          const uint64_t b[MS_LIMBS], const ms_mont *mod)
{
    uint64_t d[MS_LIMBS], madd[MS_LIMBS];
    uint64_t borrow = ms_ct_mask(ms_u1024_sub(d, a, b));
    for (int i = 0; i < MS_LIMBS; i++)
        madd[i] = mod->m[i] & borrow;
    ms_u1024_add(r, d, madd);
}

/* ---- wide values (lazy reduction) ------------------------------------------------------ */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <x86intrin.h>
static inline unsigned char wide_adc(unsigned char c, uint64_t a, uint64_t b, uint64_t *r)
{
    unsigned long long t;
    c = _addcarry_u64(c, a, b, &t);
    *r = t;
    return c;
}
static inline unsigned char wide_sbb(unsigned char c, uint64_t a, uint64_t b, uint64_t *r)
{
    unsigned long long t;
    c = _subborrow_u64(c, a, b, &t);
    *r = t;
    return c;
}
#else
__extension__ typedef unsigned __int128 wide_u128;
static inline unsigned char wide_adc(unsigned char c, uint64_t a, uint64_t b, uint64_t *r)
{
    wide_u128 s = (wide_u128)a + b + c;
    *r = (uint64_t)s;
    return (unsigned char)(s >> 64);
}
static inline unsigned char wide_sbb(unsigned char c, uint64_t a, uint64_t b, uint64_t *r)
{
    wide_u128 d = (wide_u128)a - b - c;
    *r = (uint64_t)d;
    return (unsigned char)((d >> 64) & 1);
}
#endif

void ms_mont_wide_add(uint64_t w[2 * MS_LIMBS], const uint64_t x[2 * MS_LIMBS],
                      const uint64_t y[2 * MS_LIMBS], const ms_mont *mod)
{
    uint64_t s[2 * MS_LIMBS], d[MS_LIMBS];
    unsigned char carry = 0, borrow = 0;
#pragma GCC unroll 32
    for (int i = 0; i < 2 * MS_LIMBS; i++)
        carry = wide_adc(carry, x[i], y[i], &s[i]);
#pragma GCC unroll 16
    for (int i = 0; i < MS_LIMBS; i++)
        borrow = wide_sbb(borrow, s[MS_LIMBS + i], mod->m[i], &d[i]);
    /* s >= m R exactly when it carried out or its high half is at least m */
    uint64_t use_d = ms_ct_mask(carry) | ~ms_ct_mask(borrow);
    for (int i = 0; i < MS_LIMBS; i++) {
        w[i] = s[i];
        w[MS_LIMBS + i] = ms_ct_select(use_d, d[i], s[MS_LIMBS + i]);
    }
}

void ms_mont_wide_sub(uint64_t w[2 * MS_LIMBS], const uint64_t x[2 * MS_LIMBS],
                      const uint64_t y[2 * MS_LIMBS], const ms_mont *mod)
{
    uint64_t d[2 * MS_LIMBS], mm[MS_LIMBS];
    unsigned char borrow = 0, carry = 0;
#pragma GCC unroll 32
    for (int i = 0; i < 2 * MS_LIMBS; i++)
        borrow = wide_sbb(borrow, x[i], y[i], &d[i]);
    uint64_t mask = ms_ct_mask(borrow);
    for (int i = 0; i < MS_LIMBS; i++)
        mm[i] = mod->m[i] & mask;
    /* x - y + m R, wrapping around 2^2048, is the true value when x < y */
#pragma GCC unroll 16
    for (int i = 0; i < MS_LIMBS; i++)
        carry = wide_adc(carry, d[MS_LIMBS + i], mm[i], &d[MS_LIMBS + i]);
    (void)carry;
    for (int i = 0; i < 2 * MS_LIMBS; i++)
        w[i] = d[i];
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* On x86-64 the modular addition and subtraction are written with the carry intrinsics:
 * the portable u128 loops compiled to about 450 instructions each, and the pairing and
 * the curve arithmetic call them ~20 times per doubling step (15-20% of their time).
 * With adc/sbb chains fully unrolled they are about 100. */

void ms_mont_add(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const uint64_t b[MS_LIMBS],
                 const ms_mont *mod)
{
    unsigned long long s[MS_LIMBS], d[MS_LIMBS];
    unsigned char carry = 0, borrow = 0;
#pragma GCC unroll 16
    for (int i = 0; i < MS_LIMBS; i++)
        carry = _addcarry_u64(carry, a[i], b[i], &s[i]);
#pragma GCC unroll 16
    for (int i = 0; i < MS_LIMBS; i++)
        borrow = _subborrow_u64(borrow, s[i], mod->m[i], &d[i]);
    /* a + b >= m when the sum carried out of 1024 bits or subtracting m did not borrow */
    uint64_t use_d = ms_ct_mask(carry) | ~ms_ct_mask(borrow);
#pragma GCC unroll 16
    for (int i = 0; i < MS_LIMBS; i++)
        r[i] = ms_ct_select(use_d, d[i], s[i]);
}

void ms_mont_sub(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const uint64_t b[MS_LIMBS],
                 const ms_mont *mod)
{
    unsigned long long d[MS_LIMBS];
    unsigned char borrow = 0, carry = 0;
#pragma GCC unroll 16
    for (int i = 0; i < MS_LIMBS; i++)
        borrow = _subborrow_u64(borrow, a[i], b[i], &d[i]);
    uint64_t mask = ms_ct_mask(borrow), mm[MS_LIMBS];
    /* masked modulus first: an `and` inside the chain would clobber the carry flag */
#pragma GCC unroll 16
    for (int i = 0; i < MS_LIMBS; i++)
        mm[i] = mod->m[i] & mask;
#pragma GCC unroll 16
    for (int i = 0; i < MS_LIMBS; i++)
        carry = _addcarry_u64(carry, d[i], mm[i], &d[i]);
    (void)carry; /* the wrap-around of a - b + m is the point */
    memcpy(r, d, sizeof d);
}
#else
void ms_mont_add(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const uint64_t b[MS_LIMBS],
                 const ms_mont *mod)
{
    ms_mont_add_portable(r, a, b, mod);
}

void ms_mont_sub(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const uint64_t b[MS_LIMBS],
                 const ms_mont *mod)
{
    ms_mont_sub_portable(r, a, b, mod);
}
#endif

void ms_mont_neg(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const ms_mont *mod)
{
    static const uint64_t zero[MS_LIMBS];
    ms_mont_sub(r, zero, a, mod);
}

void ms_mont_to(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const ms_mont *mod)
{
    ms_mont_mul(r, a, mod->r2, mod);
}

void ms_mont_from(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const ms_mont *mod)
{
    static const uint64_t one[MS_LIMBS] = {1};
    ms_mont_mul(r, a, one, mod);
}

void ms_mont_pow_pubexp(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                        const uint64_t e[MS_LIMBS], unsigned ebits, const ms_mont *mod)
{
    /* 4-bit fixed window; the exponent is public so indexing the table by it is fine */
    uint64_t table[16][MS_LIMBS];
    memcpy(table[0], mod->one, sizeof table[0]);
    memcpy(table[1], a, sizeof table[1]);
    for (int i = 2; i < 16; i++)
        ms_mont_mul(table[i], table[i - 1], a, mod);
    uint64_t acc[MS_LIMBS];
    memcpy(acc, mod->one, sizeof acc);
    unsigned windows = (ebits + 3) / 4;
    for (unsigned w = windows; w-- > 0;) {
        for (int k = 0; k < 4; k++)
            ms_mont_sqr(acc, acc, mod);
        unsigned bit = 4 * w;
        unsigned digit = (unsigned)(e[bit / 64] >> (bit % 64)) & 15;
        if (digit != 0)
            ms_mont_mul(acc, acc, table[digit], mod);
    }
    memcpy(r, acc, sizeof acc);
    ms_wipe(table, sizeof table);
    ms_wipe(acc, sizeof acc);
}

void ms_mont_inv(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const ms_mont *mod)
{
    static const uint64_t two[MS_LIMBS] = {2};
    uint64_t e[MS_LIMBS];
    ms_u1024_sub(e, mod->m, two);
    ms_mont_pow_pubexp(r, a, e, 1024, mod);
}

/* ---- variable-time inverse (Bernstein-Yang safegcd, variable-time variant) ------------
 *
 * Only for public (e.g. blinded) values. Numbers are held as 17 signed 62-bit limbs so a
 * 2x2 matrix with entries up to 2^62 can be applied with __int128 accumulators; batches
 * of 62 divsteps are computed on the low limbs of f and g only, then applied to the full
 * f, g (exact division by 2^62) and to d, e (mod m, made divisible by adding a multiple
 * of m). This follows the structure of libsecp256k1's modinv64_var. */

#define S62_LIMBS 17 /* 17 * 62 = 1054 bits: a 1024-bit value, its sign and headroom */
#define M62 (UINT64_MAX >> 2)

__extension__ typedef __int128 i128;

typedef struct {
    int64_t u, v, q, r;
} trans2x2;

static void s62_from_u1024(int64_t r[S62_LIMBS], const uint64_t a[MS_LIMBS])
{
    for (int i = 0; i < S62_LIMBS; i++) {
        unsigned bit = 62u * (unsigned)i, w = bit / 64, s = bit % 64;
        uint64_t x = a[w] >> s;
        if (s > 2 && w + 1 < MS_LIMBS)
            x |= a[w + 1] << (64 - s);
        r[i] = (int64_t)(x & M62);
    }
}

/* a must be normalized: all limbs in [0, 2^62) and value < 2^1024 */
static void u1024_from_s62(uint64_t r[MS_LIMBS], const int64_t a[S62_LIMBS])
{
    memset(r, 0, MS_LIMBS * sizeof r[0]);
    for (int i = 0; i < S62_LIMBS; i++) {
        unsigned bit = 62u * (unsigned)i, w = bit / 64, s = bit % 64;
        uint64_t x = (uint64_t)a[i];
        r[w] |= x << s;
        if (s > 2 && w + 1 < MS_LIMBS)
            r[w + 1] |= x >> (64 - s);
    }
}

/* Up to 62 divsteps (eta = -delta) on the low 64 bits of f, g; returns the new eta and
 * the transition matrix scaled by 2^62. Runs of zero bits of g are skipped at once and
 * several low bits of g are cancelled per step, so a batch costs far less than 62
 * iterations. */
static int64_t divsteps_62_var(int64_t eta, uint64_t f0, uint64_t g0, trans2x2 *t)
{
    uint64_t u = 1, v = 0, q = 0, r = 1, f = f0, g = g0, m, w;
    int i = 62, limit, zeros;
    for (;;) {
        /* the sentinel bit stops the count at the i steps left */
        zeros = __builtin_ctzll(g | (UINT64_MAX << i));
        g >>= zeros;
        u <<= zeros;
        v <<= zeros;
        eta -= zeros;
        i -= zeros;
        if (i == 0)
            break;
        /* f, g odd now */
        if (eta < 0) {
            uint64_t tmp;
            eta = -eta;
            tmp = f, f = g, g = -tmp;
            tmp = u, u = q, q = -tmp;
            tmp = v, v = r, r = -tmp;
            /* cancel up to 6 low bits of g (not more than i, nor eta + 1 after which
             * the roles would swap again) */
            limit = ((int)eta + 1) > i ? i : ((int)eta + 1);
            m = (UINT64_MAX >> (64 - limit)) & 63u;
            w = (f * g * (f * f - 2)) & m; /* f*f - 2 ~ -f^-1 mod 2^6 */
        } else {
            limit = ((int)eta + 1) > i ? i : ((int)eta + 1);
            m = (UINT64_MAX >> (64 - limit)) & 15u;
            w = f + (((f + 1) & 4) << 1); /* ~ f^-1 mod 2^4 */
            w = (-w * g) & m;
        }
        g += f * w;
        q += u * w;
        r += v * w;
    }
    t->u = (int64_t)u;
    t->v = (int64_t)v;
    t->q = (int64_t)q;
    t->r = (int64_t)r;
    return eta;
}

/* [d, e] = t/2^62 * [d, e] mod m, adding multiples of m to make the division exact.
 * d, e stay in (-2m, m); m62inv = m^-1 mod 2^62. */
static void update_de_62(int n, int64_t d[S62_LIMBS], int64_t e[S62_LIMBS], const trans2x2 *t,
                         const int64_t m[S62_LIMBS], uint64_t m62inv)
{
    const int64_t u = t->u, v = t->v, q = t->q, r = t->r;
    int64_t sd = d[n - 1] >> 63, se = e[n - 1] >> 63;
    /* add [u,q]*m if d < 0 and [v,r]*m if e < 0, keeping the results above -2m */
    int64_t md = (u & sd) + (v & se), me = (q & sd) + (r & se);
    i128 cd = (i128)u * d[0] + (i128)v * e[0];
    i128 ce = (i128)q * d[0] + (i128)r * e[0];
    md -= (int64_t)((m62inv * (uint64_t)cd + (uint64_t)md) & M62);
    me -= (int64_t)((m62inv * (uint64_t)ce + (uint64_t)me) & M62);
    cd += (i128)m[0] * md;
    ce += (i128)m[0] * me;
    cd >>= 62; /* the low 62 bits are zero now */
    ce >>= 62;
    for (int i = 1; i < n; i++) {
        cd += (i128)u * d[i] + (i128)v * e[i] + (i128)m[i] * md;
        ce += (i128)q * d[i] + (i128)r * e[i] + (i128)m[i] * me;
        d[i - 1] = (int64_t)((uint64_t)cd & M62);
        e[i - 1] = (int64_t)((uint64_t)ce & M62);
        cd >>= 62;
        ce >>= 62;
    }
    d[n - 1] = (int64_t)cd;
    e[n - 1] = (int64_t)ce;
}

/* [f, g] = t/2^62 * [f, g] on the low len limbs (the rest are sign extension). */
static void update_fg_62_var(int len, int64_t f[S62_LIMBS], int64_t g[S62_LIMBS],
                             const trans2x2 *t)
{
    const int64_t u = t->u, v = t->v, q = t->q, r = t->r;
    i128 cf = (i128)u * f[0] + (i128)v * g[0];
    i128 cg = (i128)q * f[0] + (i128)r * g[0];
    cf >>= 62; /* exact: the matrix was built to clear these bits */
    cg >>= 62;
    for (int i = 1; i < len; i++) {
        cf += (i128)u * f[i] + (i128)v * g[i];
        cg += (i128)q * f[i] + (i128)r * g[i];
        f[i - 1] = (int64_t)((uint64_t)cf & M62);
        g[i - 1] = (int64_t)((uint64_t)cg & M62);
        cf >>= 62;
        cg >>= 62;
    }
    f[len - 1] = (int64_t)cf;
    g[len - 1] = (int64_t)cg;
}

/* Bring d from (-2m, m) to [0, m), negated first if sign < 0; limbs end in [0, 2^62). */
static void normalize_62(int n, int64_t d[S62_LIMBS], int64_t sign, const int64_t m[S62_LIMBS])
{
    int64_t cond = d[n - 1] >> 63;
    for (int i = 0; i < n; i++)
        d[i] += m[i] & cond;
    int64_t neg = sign >> 63;
    for (int i = 0; i < n; i++)
        d[i] = (d[i] ^ neg) - neg;
    for (int i = 0; i < n - 1; i++) {
        d[i + 1] += d[i] >> 62;
        d[i] &= (int64_t)M62;
    }
    cond = d[n - 1] >> 63;
    for (int i = 0; i < n; i++)
        d[i] += m[i] & cond;
    for (int i = 0; i < n - 1; i++) {
        d[i + 1] += d[i] >> 62;
        d[i] &= (int64_t)M62;
    }
}

/* r = x^-1 mod m for plain x < m, m odd, gcd(x, m) = 1; r = 0 for x = 0. Variable
 * time: x must be public. r may alias x. (Exposed for the tests.) */
void ms_mont_inv_plain_var(uint64_t r[MS_LIMBS], const uint64_t x[MS_LIMBS], const ms_mont *mod)
{
    int64_t m[S62_LIMBS], f[S62_LIMBS], g[S62_LIMBS], d[S62_LIMBS] = {0}, e[S62_LIMBS] = {1};
    s62_from_u1024(m, mod->m);
    s62_from_u1024(g, x);
    memcpy(f, m, sizeof f);
    /* m^-1 mod 2^64 by Newton's iteration (each step doubles the correct bits) */
    uint64_t inv = mod->m[0];
    for (int k = 0; k < 5; k++)
        inv *= 2 - mod->m[0] * inv;
    inv &= M62;

    /* Work on as many 62-bit limbs as the modulus needs, plus one for the sign and the
     * headroom of (-2m, m): 17 for p and q, 5 for a 256-bit modulus (ECCSI's). */
    int top = MS_LIMBS - 1;
    while (top > 0 && mod->m[top] == 0)
        top--;
    int mbits = 64 * top + 64 - __builtin_clzll(mod->m[top] | 1);
    const int n = mbits / 62 + 1 < S62_LIMBS ? mbits / 62 + 1 : S62_LIMBS;
    int len = n;
    int64_t eta = -1;
    for (;;) {
        trans2x2 t;
        eta = divsteps_62_var(eta, (uint64_t)f[0], (uint64_t)g[0], &t);
        update_de_62(n, d, e, &t, m, inv);
        update_fg_62_var(len, f, g, &t);
        if (g[0] == 0) {
            int64_t any = 0;
            for (int j = 1; j < len; j++)
                any |= g[j];
            if (any == 0)
                break; /* g = 0: f = +-gcd = +-1 */
        }
        /* drop the top limb once both f and g fit in one limb less (their top limbs
         * are 0 or -1), folding its sign into the limb below */
        int64_t fn = f[len - 1], gn = g[len - 1];
        int64_t cond = ((int64_t)len - 2) >> 63;
        cond |= fn ^ (fn >> 63);
        cond |= gn ^ (gn >> 63);
        if (cond == 0) {
            f[len - 2] = (int64_t)((uint64_t)f[len - 2] | ((uint64_t)fn << 62));
            g[len - 2] = (int64_t)((uint64_t)g[len - 2] | ((uint64_t)gn << 62));
            len--;
        }
    }
    /* f = +-1 here (or m if x = 0, leaving d = 0); d * f is the inverse */
    normalize_62(n, d, f[len - 1], m);
    for (int i = n; i < S62_LIMBS; i++)
        d[i] = 0;
    u1024_from_s62(r, d);
}

/* A blinding factor b = (hi * 2^1024 + lo) mod m from 1152 random bits, so it is within
 * 2^-128 of uniform; non-zero. 0, or -1 if the RNG failed. */
static int random_blind(uint64_t blind[MS_LIMBS], const ms_mont *mod)
{
    uint8_t buf[MS_BYTES + 16];
    int ret = 0;
    do {
        uint64_t lo[MS_LIMBS], hi[MS_LIMBS];
        if (ms_rng_fill(NULL, buf, sizeof buf) != MS_OK) {
            ret = -1;
            break;
        }
        ms_u1024_from_be(hi, buf, 16);
        ms_u1024_from_be(lo, buf + 16, MS_BYTES);
        ms_mont_reduce_small(lo, lo, 0, mod);
        ms_mont_to(hi, hi, mod); /* hi * R mod m = hi * 2^1024 mod m */
        ms_mont_add(blind, hi, lo, mod);
        ms_wipe(lo, sizeof lo);
        ms_wipe(hi, sizeof hi);
    } while (ms_u1024_iszero(blind));
    ms_wipe(buf, sizeof buf);
    return ret;
}

int ms_mont_inv_blinded(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const ms_mont *mod)
{
    int ret = -1;
    uint64_t blind[MS_LIMBS], prod[MS_LIMBS];

    if (random_blind(blind, mod) != 0)
        goto out;
    ms_mont_mul(prod, a, blind, mod); /* (a*b) in Montgomery form: a*b*R */
    /* prod is uniformly random when a != 0, so it may be declassified */
    MS_CT_PUBLIC(prod, sizeof prod);
    if (ms_u1024_iszero(prod))
        goto out;
    /* Invert the plain value a*b (public, so variable time is fine), then return to
     * Montgomery form. */
    uint64_t plain[MS_LIMBS];
    ms_mont_from(plain, prod, mod);           /* a*b (plain) */
    ms_mont_inv_plain_var(plain, plain, mod); /* (a*b)^-1 plain */
    ms_mont_to(plain, plain, mod);            /* (a*b)^-1 Montgomery */
    ms_mont_mul(r, plain, blind, mod);        /* a^-1 Montgomery */
    ret = 0;
out:
    if (ret != 0) /* only now: r may alias a */
        memset(r, 0, MS_LIMBS * sizeof r[0]);
    ms_wipe(blind, sizeof blind);
    ms_wipe(prod, sizeof prod);
    return ret;
}

/* Jacobi symbol (x / m) of a plain x < m, m odd: binary algorithm, variable time. */
static int jacobi_var(const uint64_t x[MS_LIMBS], const uint64_t m[MS_LIMBS])
{
    uint64_t a[MS_LIMBS], n[MS_LIMBS];
    memcpy(a, x, sizeof a);
    memcpy(n, m, sizeof n);
    int t = 1;
    for (;;) {
        if (ms_u1024_iszero(a))
            return ms_u1024_eq(n, (const uint64_t[MS_LIMBS]){1}) ? t : 0;
        /* a = 2^s a' with a' odd: (2 / n) = -1 exactly when n = 3, 5 mod 8 */
        unsigned s = 0;
        while (a[s / 64] == 0)
            s += 64;
        s += (unsigned)__builtin_ctzll(a[s / 64]);
        if ((s & 1) && ((n[0] & 7) == 3 || (n[0] & 7) == 5))
            t = -t;
        unsigned limbs = s / 64, bits = s % 64;
        for (unsigned i = 0; i < MS_LIMBS; i++) {
            uint64_t lo = i + limbs < MS_LIMBS ? a[i + limbs] : 0;
            uint64_t hi = i + limbs + 1 < MS_LIMBS ? a[i + limbs + 1] : 0;
            a[i] = bits ? (lo >> bits) | (hi << (64 - bits)) : lo;
        }
        /* both odd: reciprocity swaps them so that a >= n, then a - n is even */
        if (ms_u1024_lt(a, n)) {
            uint64_t tmp[MS_LIMBS];
            memcpy(tmp, a, sizeof tmp);
            memcpy(a, n, sizeof a);
            memcpy(n, tmp, sizeof n);
            if ((a[0] & 3) == 3 && (n[0] & 3) == 3)
                t = -t;
        }
        ms_u1024_sub(a, a, n);
    }
}

int ms_mont_legendre_blinded(const uint64_t a[MS_LIMBS], const ms_mont *mod)
{
    int ret = -2;
    uint64_t blind[MS_LIMBS], prod[MS_LIMBS];
    if (random_blind(blind, mod) != 0)
        goto out;
    ms_mont_sqr(blind, blind, mod);
    ms_mont_mul(prod, a, blind, mod); /* a b^2 R: a uniformly random element of a's class */
    ms_mont_from(prod, prod, mod);
    /* the class (square, non-square, zero) is all prod reveals */
    MS_CT_PUBLIC(prod, sizeof prod);
    ret = jacobi_var(prod, mod->m);
out:
    ms_wipe(blind, sizeof blind);
    ms_wipe(prod, sizeof prod);
    return ret;
}

void ms_mont_reduce_small(uint64_t r[MS_LIMBS], const uint64_t x[MS_LIMBS], uint64_t top,
                          const ms_mont *mod)
{
    /* Subtract m up to seven times, each time only if the running value is >= m. For
     * q (1022 bits) any 1024-bit input is below 5q; for p one subtraction suffices.
     * The loop count is fixed, so the time does not depend on x. */
    uint64_t v[MS_LIMBS], d[MS_LIMBS];
    memcpy(v, x, sizeof v);
    for (int k = 0; k < 7; k++) {
        uint64_t borrow = ms_u1024_sub(d, v, mod->m);
        /* v >= m iff there is a top word to borrow from or no borrow */
        uint64_t ge = ms_ct_nonzero(top) | ~ms_ct_mask(borrow);
        top -= borrow & ge & 1;
        for (int i = 0; i < MS_LIMBS; i++)
            v[i] = ms_ct_select(ge, d[i], v[i]);
    }
    memcpy(r, v, sizeof v);
    ms_wipe(v, sizeof v);
    ms_wipe(d, sizeof d);
}
