/*
 * Shamir secret sharing over GF(2^8) (the AES field, x^8 + x^4 + x^3 + x + 1).
 *
 * Every octet of the secret is the constant term of its own random polynomial of degree
 * k - 1; share i is (x_i, f(x_i)) with x_i = i, 1 <= i <= n. Any k shares give the
 * constant term by Lagrange interpolation at 0; k - 1 shares are consistent with every
 * secret, since for any candidate secret exactly one polynomial fits them.
 *
 * Constant time: the field arithmetic has no table lookups and no branches on its
 * operands (multiplication by shift-and-add with masks, inversion as a^254 with a fixed
 * chain). The x coordinates are public and only they are branched on.
 */
#include <string.h>

#include "crypto/ct.h"
#include "crypto/rng.h"
#include "crypto/secmem.h"
#include "kms/seal.h"

uint8_t ms_gf256_mul(uint8_t a, uint8_t b)
{
    uint32_t acc = 0;
    uint32_t aa = a;
    for (int i = 0; i < 8; i++) {
        /* Add a * x^i if bit i of b is set, then multiply a by x modulo the polynomial;
         * both decisions are masks, never branches. */
        acc ^= aa & (uint32_t)ms_ct_mask((uint64_t)(b >> i));
        uint32_t carry = (uint32_t)ms_ct_mask((uint64_t)(aa >> 7));
        aa = ((aa << 1) ^ (0x11b & carry)) & 0xff;
    }
    return (uint8_t)acc;
}

uint8_t ms_gf256_inv(uint8_t a)
{
    /* a^254 = a^-1 for a != 0 (and 0 for 0): square-and-multiply over the fixed,
     * public exponent 254 = 0b11111110. */
    uint8_t r = 1;
    for (int bit = 7; bit >= 0; bit--) {
        r = ms_gf256_mul(r, r);
        if ((254 >> bit) & 1) /* public exponent */
            r = ms_gf256_mul(r, a);
    }
    return r;
}

ms_err ms_shamir_split(uint8_t *shares, const uint8_t *secret, size_t len, unsigned k,
                       unsigned n, const ms_rng *rng)
{
    if (shares == NULL || secret == NULL || len == 0 || k < 1 || n < k || n > 255)
        return MS_ERR_ARG;
    /* Coefficients a_1..a_{k-1} of every octet's polynomial: coef[(j-1) * len + o]. */
    size_t coef_len = (size_t)(k - 1) * len;
    uint8_t *coef = ms_secure_alloc(coef_len);
    if (coef == NULL)
        return MS_ERR_NOMEM;
    ms_err err = coef_len ? ms_rng_fill(rng, coef, coef_len) : MS_OK;
    if (err != MS_OK) {
        ms_secure_free(coef, coef_len);
        return err;
    }
    for (unsigned i = 0; i < n; i++) {
        uint8_t x = (uint8_t)(i + 1);
        uint8_t *out = shares + (size_t)i * (len + 1);
        out[0] = x;
        for (size_t o = 0; o < len; o++) {
            /* Horner from the highest coefficient down to the secret. */
            uint8_t y = 0;
            for (unsigned j = k - 1; j >= 1; j--)
                y = ms_gf256_mul(y, x) ^ coef[(size_t)(j - 1) * len + o];
            y = ms_gf256_mul(y, x) ^ secret[o];
            out[1 + o] = y;
        }
    }
    ms_secure_free(coef, coef_len);
    return MS_OK;
}

ms_err ms_shamir_combine(uint8_t *secret, size_t len, const uint8_t *shares, unsigned k)
{
    if (secret == NULL || shares == NULL || len == 0 || k < 1 || k > 255)
        return MS_ERR_ARG;
    /* The x coordinates are public: refuse 0 (it would be the secret itself) and
     * repeats (the interpolation would divide by zero). */
    uint8_t seen[256] = {0};
    for (unsigned i = 0; i < k; i++) {
        uint8_t x = shares[(size_t)i * (len + 1)];
        if (x == 0 || seen[x])
            return MS_ERR_SHARE;
        seen[x] = 1;
    }
    memset(secret, 0, len);
    for (unsigned i = 0; i < k; i++) {
        const uint8_t *si = shares + (size_t)i * (len + 1);
        /* Lagrange basis at 0: prod_{j != i} x_j / (x_j - x_i); in GF(2^8) minus is xor. */
        uint8_t num = 1, den = 1;
        for (unsigned j = 0; j < k; j++) {
            if (j == i)
                continue;
            uint8_t xj = shares[(size_t)j * (len + 1)];
            num = ms_gf256_mul(num, xj);
            den = ms_gf256_mul(den, (uint8_t)(xj ^ si[0]));
        }
        uint8_t l = ms_gf256_mul(num, ms_gf256_inv(den));
        for (size_t o = 0; o < len; o++)
            secret[o] ^= ms_gf256_mul(l, si[1 + o]);
    }
    return MS_OK;
}
