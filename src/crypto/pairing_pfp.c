/*
 * Exponentiation in PF_p = (F_p^2)* / F_p*, the pairing's target group.
 *
 * Variable base (ms_pfp_pow): the class of z = 1 + i g corresponds to the norm-1
 * element u = z / conj(z) = a + i b, and u^k is found from the Lucas sequence
 * V_n = u^n + u^-n = 2 Re(u^n) by a ladder (V_2n = V_n^2 - 2, V_2n+1 = V_n V_n+1 - V_1):
 * 1 M + 1 S per exponent bit, no table, constant time with one swap per bit. Then
 * Im(u^k) = (a V_k - V_k+1) / (2b), and the class of z^k is that of 1 + u^k, whose
 * representative is Im(u^k) / (1 + Re(u^k)) = (a V_k - V_k+1) / (b (2 + V_k)).
 *
 * Fixed base (ms_pfp_table_*): signed 6-bit windows of the exponent, with the windows
 * interleaved three ways (comb) so that 57 sub-tables of 32 entries serve 171 windows
 * at the cost of 12 squarings. Entries are stored as PF_p representatives r (the class
 * of 1 + i r), so multiplying the accumulator by one costs 2 M, and a negative digit is
 * the conjugate, i.e. -r.
 *
 * Costs: ms_pfp_pow 2.06 k M + 2 blinded inversions; ms_pfp_table_pow 370 M + 1
 * inversion with a 228 KiB table; ms_pfp_table_build 14.6 k M + 1 inversion.
 */
#include <stdlib.h>
#include <string.h>

#include "fp2.h"
#include "mikeysakke/crypto.h"
#include "pairing.h"

static uint64_t bit_mask(const uint64_t k[MS_LIMBS], unsigned bit)
{
    return ms_ct_mask(k[bit / 64] >> (bit % 64));
}

int ms_pfp_pow(ms_fp *out, const ms_fp *g, const uint64_t k[MS_LIMBS])
{
    ms_fp one, two, t, d, a, b, v1, x, y;
    ms_fp_set_one(&one);
    ms_fp_add(&two, &one, &one);

    /* u = (1 - g^2 + 2 i g) / (1 + g^2); 1 + g^2 != 0 since -1 is not a square mod p */
    ms_fp_sqr(&t, g);
    ms_fp_add(&x, &one, &t);
    int ret = ms_fp_inv_blinded(&d, &x); /* (no aliasing: it clears its output first) */
    ms_fp_sub(&a, &one, &t);
    ms_fp_mul(&a, &a, &d);
    ms_fp_add(&b, g, g);
    ms_fp_mul(&b, &b, &d);
    ms_fp_add(&v1, &a, &a);

    /* ladder: (x, y) = (V_n, V_n+1), stored swapped while the previous bit was 1 */
    x = two;
    y = v1;
    uint64_t swapped = 0;
    for (unsigned bit = 64 * MS_LIMBS; bit-- > 0;) {
        uint64_t m = bit_mask(k, bit);
        ms_ct_cswap(x.v, y.v, MS_LIMBS, m ^ swapped);
        swapped = m;
        ms_fp_mul(&t, &x, &y);
        ms_fp_sub(&t, &t, &v1);
        ms_fp_sqr(&x, &x);
        ms_fp_sub(&x, &x, &two);
        y = t;
    }
    ms_ct_cswap(x.v, y.v, MS_LIMBS, swapped);

    /* representative (a V_k - V_k+1) / (b (2 + V_k)); g = 0 (the identity) gives 0 */
    ms_fp_mul(&t, &a, &x);
    ms_fp_sub(&t, &t, &y);
    ms_fp_add(&d, &two, &x);
    ms_fp_mul(&d, &d, &b);
    uint64_t gz = ms_fp_iszero(g);
    ms_fp zero;
    ms_fp_set_zero(&zero);
    ms_fp_cmov(&d, &one, gz);
    ms_fp_cmov(&t, &zero, gz);
    if (ms_fp_inv_blinded(&y, &d) != 0)
        ret = -1;
    ms_fp_mul(out, &t, &y);

    ms_wipe(&t, sizeof t);
    ms_wipe(&d, sizeof d);
    ms_wipe(&x, sizeof x);
    ms_wipe(&y, sizeof y);
    ms_wipe(&a, sizeof a);
    ms_wipe(&b, sizeof b);
    ms_wipe(&v1, sizeof v1);
    return ret;
}

/* ---- fixed base --------------------------------------------------------------------- */

#define TW 6                        /* window bits */
#define TE (1 << (TW - 1))          /* entries per sub-table: |digit| = 1..32 */
#define TCOMB 3                     /* windows s + 3t (s = 0..2) share sub-table t */
#define TWIN 171                    /* windows: 6 * 171 = 1026 bits, any k < 2^1024 */
#define TROWS (TWIN / TCOMB)        /* 57 sub-tables */
#define TMAGIC 0x6d7370667074ULL

struct ms_pfp_table {
    uint64_t magic;
    /* e[t TE + j] represents g^((j + 1) 2^(TW TCOMB t)) */
    ms_fp e[TROWS * TE];
};

size_t ms_pfp_table_size(void)
{
    return sizeof(ms_pfp_table);
}

int ms_pfp_table_build(ms_pfp_table *tb, const ms_fp *g)
{
    /* All entries unnormalised first (row t: base^1..base^32 with base = g^(2^(18 t))),
     * then their representatives b/a with a single inversion (Montgomery's trick, the
     * prefix products kept in the table itself). The content is public. */
    enum { N = TROWS * TE };
    ms_fp2 *ent = malloc(N * sizeof *ent);
    if (ent == NULL)
        return -1;
    ms_fp *e = tb->e;
    ms_fp2 base, acc;
    ms_fp_set_one(&base.a);
    base.b = *g;
    for (unsigned t = 0; t < TROWS; t++) {
        acc = base;
        for (unsigned j = 0; j < TE; j++) {
            ent[t * TE + j] = acc;
            if (j + 1 < TE)
                ms_fp2_mul(&acc, &acc, &base);
        }
        for (unsigned s = 0; s < TW * TCOMB && t + 1 < TROWS; s++)
            ms_fp2_sqr(&base, &base);
    }
    e[0] = ent[0].a;
    for (unsigned i = 1; i < N; i++)
        ms_fp_mul(&e[i], &e[i - 1], &ent[i].a);
    ms_fp inv;
    int ret = ms_fp_inv_blinded(&inv, &e[N - 1]);
    for (unsigned i = N; i-- > 0;) {
        ms_fp ii;
        if (i > 0) {
            ms_fp_mul(&ii, &inv, &e[i - 1]);
            ms_fp_mul(&inv, &inv, &ent[i].a);
        } else {
            ii = inv;
        }
        ms_fp_mul(&e[i], &ent[i].b, &ii);
    }
    free(ent);
    tb->magic = ret == 0 ? TMAGIC : 0;
    return ret;
}

/* Signed windows of k: digits in [-32, 31] with sum d_i 2^(6i) = k. The top window holds
 * bits 1020..1023 only, so its digit is at most 16 and no carry is lost: any k < 2^1024
 * works. Constant time. */
static void recode(int8_t dig[TWIN], const uint64_t k[MS_LIMBS])
{
    uint64_t carry = 0;
    for (unsigned i = 0; i < TWIN; i++) {
        unsigned bit = TW * i;
        uint64_t w = 0;
        if (bit < 64 * MS_LIMBS) {
            w = k[bit / 64] >> (bit % 64);
            if (bit % 64 > 64 - TW && bit / 64 + 1 < MS_LIMBS)
                w |= k[bit / 64 + 1] << (64 - bit % 64);
        }
        uint64_t x = (w & ((1u << TW) - 1)) + carry; /* 0..64 */
        carry = (x + TE) >> TW;
        dig[i] = (int8_t)((int64_t)x - (int64_t)(carry << TW));
    }
}

int ms_pfp_table_pow_fp2(ms_fp2 *out, const ms_pfp_table *tb, const uint64_t k[MS_LIMBS])
{
    if (tb->magic != TMAGIC)
        return -1;
    int8_t dig[TWIN];
    recode(dig, k);
    ms_fp2 v;
    ms_fp r, rn;
    int first = 1;
    for (unsigned s = TCOMB; s-- > 0;) {
        if (!first)
            for (unsigned j = 0; j < TW; j++)
                ms_fp2_sqr(&v, &v);
        for (unsigned t = 0; t < TROWS; t++) {
            int64_t d = dig[s + TCOMB * t];
            uint64_t neg = (uint64_t)0 - ((uint64_t)d >> 63);
            uint64_t mag = ((uint64_t)d ^ neg) - neg;
            /* full scan: the digit is secret */
            ms_fp_set_zero(&r);
            for (unsigned j = 0; j < TE; j++)
                ms_fp_cmov(&r, &tb->e[t * TE + j], ms_ct_eq(mag, j + 1));
            ms_fp_neg(&rn, &r);
            ms_fp_cmov(&r, &rn, neg);
            if (first) {
                ms_fp_set_one(&v.a);
                v.b = r;
                first = 0;
            } else {
                ms_fp2_mul_pfp(&v, &v, &r);
            }
        }
    }
    *out = v;
    ms_wipe(dig, sizeof dig);
    ms_wipe(&v, sizeof v);
    ms_wipe(&r, sizeof r);
    ms_wipe(&rn, sizeof rn);
    return 0;
}

int ms_pfp_table_pow(ms_fp *out, const ms_pfp_table *tb, const uint64_t k[MS_LIMBS])
{
    ms_fp2 v;
    ms_fp inv;
    if (ms_pfp_table_pow_fp2(&v, tb, k) != 0)
        return -1;
    int ret = ms_fp_inv_blinded(&inv, &v.a);
    ms_fp_mul(out, &v.b, &inv);
    ms_wipe(&v, sizeof v);
    ms_wipe(&inv, sizeof inv);
    return ret;
}
