/* Generic 1024-bit modular operations on top of the chosen Montgomery backend. */
#include "mont.h"

#include <openssl/bn.h>
#include <string.h>

#include "ct.h"
#include "mikeysakke/crypto.h"
#include "rng.h"

__extension__ typedef unsigned __int128 u128;

const char *ms_fp_backend_name(void)
{
#ifdef MS_FP_BACKEND_X86_64_ADX
    return "x86_64-adx";
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

void ms_mont_add(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const uint64_t b[MS_LIMBS],
                 const ms_mont *mod)
{
    uint64_t s[MS_LIMBS], d[MS_LIMBS];
    uint64_t carry = ms_u1024_add(s, a, b);
    uint64_t borrow = ms_u1024_sub(d, s, mod->m);
    /* a + b >= m when the sum carried out of 1024 bits or subtracting m did not borrow */
    uint64_t use_d = ms_ct_mask(carry) | ~ms_ct_mask(borrow);
    for (int i = 0; i < MS_LIMBS; i++)
        r[i] = ms_ct_select(use_d, d[i], s[i]);
}

void ms_mont_sub(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const uint64_t b[MS_LIMBS],
                 const ms_mont *mod)
{
    uint64_t d[MS_LIMBS], madd[MS_LIMBS];
    uint64_t borrow = ms_ct_mask(ms_u1024_sub(d, a, b));
    for (int i = 0; i < MS_LIMBS; i++)
        madd[i] = mod->m[i] & borrow;
    ms_u1024_add(r, d, madd);
}

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

int ms_mont_inv_blinded(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS], const ms_mont *mod)
{
    int ret = -1;
    uint64_t blind[MS_LIMBS], prod[MS_LIMBS];
    uint8_t buf[MS_BYTES + 16];
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *x = BN_new(), *m = BN_new();
    if (ctx == NULL || x == NULL || m == NULL)
        goto out;

    /* blinding factor b = (hi * 2^1024 + lo) mod m from 1152 random bits, so it is
     * within 2^-128 of uniform; it must be non-zero. */
    do {
        uint64_t lo[MS_LIMBS], hi[MS_LIMBS];
        if (ms_rng_fill(NULL, buf, sizeof buf) != MS_OK)
            goto out;
        ms_u1024_from_be(hi, buf, 16);
        ms_u1024_from_be(lo, buf + 16, MS_BYTES);
        ms_mont_reduce_small(lo, lo, 0, mod);
        ms_mont_to(hi, hi, mod); /* hi * R mod m = hi * 2^1024 mod m */
        ms_mont_add(blind, hi, lo, mod);
        ms_wipe(lo, sizeof lo);
        ms_wipe(hi, sizeof hi);
    } while (ms_u1024_iszero(blind));

    ms_mont_mul(prod, a, blind, mod); /* (a*b) in Montgomery form: a*b*R */
    /* prod is uniformly random when a != 0, so it may be declassified */
    MS_CT_PUBLIC(prod, sizeof prod);
    if (ms_u1024_iszero(prod))
        goto out;
    /* Invert the plain value a*b with OpenSSL, then return to Montgomery form. */
    uint64_t plain[MS_LIMBS];
    ms_mont_from(plain, prod, mod); /* a*b (plain) */
    ms_u1024_to_be(buf, plain);
    if (BN_bin2bn(buf, MS_BYTES, x) == NULL)
        goto out;
    ms_u1024_to_be(buf, mod->m);
    if (BN_bin2bn(buf, MS_BYTES, m) == NULL)
        goto out;
    if (BN_mod_inverse(x, x, m, ctx) == NULL)
        goto out;
    if (BN_bn2binpad(x, buf, MS_BYTES) != MS_BYTES)
        goto out;
    ms_u1024_from_be(plain, buf, MS_BYTES); /* (a*b)^-1 plain */
    ms_mont_to(plain, plain, mod);           /* (a*b)^-1 Montgomery */
    ms_mont_mul(r, plain, blind, mod);       /* a^-1 Montgomery */
    ret = 0;
out:
    if (ret != 0) /* only now: r may alias a */
        memset(r, 0, MS_LIMBS * sizeof r[0]);
    ms_wipe(blind, sizeof blind);
    ms_wipe(prod, sizeof prod);
    ms_wipe(buf, sizeof buf);
    BN_clear_free(x);
    BN_free(m);
    BN_CTX_free(ctx);
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
