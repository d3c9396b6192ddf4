/*
 * Shamir over GF(2^8): the constant-time field arithmetic against a slow reference for
 * every pair of operands, split/combine round trips for every k-subset, the secrecy of
 * k - 1 shares (checked exhaustively on the implementation's own randomness), and the
 * refusals.
 */
#include <string.h>

#include "kms/seal.h"
#include "testutil.h"

/* Reference multiply: schoolbook carry-less product, then reduce bit by bit. */
static uint8_t ref_mul(uint8_t a, uint8_t b)
{
    unsigned prod = 0;
    for (int i = 0; i < 8; i++)
        if (b & (1u << i))
            prod ^= (unsigned)a << i;
    for (int bit = 14; bit >= 8; bit--)
        if (prod & (1u << bit))
            prod ^= 0x11bu << (bit - 8);
    return (uint8_t)prod;
}

static void test_field(void)
{
    int mul_bad = 0, inv_bad = 0;
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++)
            if (ms_gf256_mul((uint8_t)a, (uint8_t)b) != ref_mul((uint8_t)a, (uint8_t)b))
                mul_bad++;
        uint8_t inv = ms_gf256_inv((uint8_t)a);
        if (a == 0 ? inv != 0 : ref_mul((uint8_t)a, inv) != 1)
            inv_bad++;
    }
    CHECK(mul_bad == 0);
    CHECK(inv_bad == 0);
    /* FIPS 197 section 4.2 example: {57} * {83} = {c1}. */
    CHECK(ms_gf256_mul(0x57, 0x83) == 0xc1);
    CHECK(ref_mul(0x57, 0x13) == 0xfe);
}

/* Reference Lagrange interpolation at 0 using the reference field. */
static uint8_t ref_interp(const uint8_t *xs, const uint8_t *ys, unsigned k)
{
    uint8_t acc = 0;
    for (unsigned i = 0; i < k; i++) {
        uint8_t num = 1, den = 1;
        for (unsigned j = 0; j < k; j++) {
            if (j == i)
                continue;
            num = ref_mul(num, xs[j]);
            den = ref_mul(den, (uint8_t)(xs[j] ^ xs[i]));
        }
        uint8_t inv = 0;
        for (unsigned c = 1; c < 256; c++)
            if (ref_mul(den, (uint8_t)c) == 1)
                inv = (uint8_t)c;
        acc ^= ref_mul(ref_mul(num, inv), ys[i]);
    }
    return acc;
}

/* Every k-subset of n shares gives the secret back, through ms_shamir_combine and the
 * reference interpolation; the shares are y = f(x) for a polynomial whose constant term
 * is the secret (checked with the coefficients from a fixed generator). */
static void test_round_trips(void)
{
    enum { LEN = 32 };
    for (unsigned n = 1; n <= 6; n++) {
        for (unsigned k = 1; k <= n; k++) {
            uint8_t secret[LEN], shares[6][LEN + 1];
            ms_test_random(secret, sizeof secret);
            CHECK_ERR(ms_shamir_split(&shares[0][0], secret, LEN, k, n, &ms_test_rng), MS_OK);
            int bad = 0, ref_bad = 0, subsets = 0;
            for (unsigned mask = 0; mask < (1u << n); mask++) {
                if ((unsigned)__builtin_popcount(mask) != k)
                    continue;
                subsets++;
                uint8_t pick[6][LEN + 1], out[LEN];
                unsigned m = 0;
                for (unsigned i = 0; i < n; i++)
                    if (mask & (1u << i))
                        memcpy(pick[m++], shares[i], LEN + 1);
                if (ms_shamir_combine(out, LEN, &pick[0][0], k) != MS_OK ||
                    memcmp(out, secret, LEN) != 0)
                    bad++;
                for (size_t o = 0; o < LEN; o++) {
                    uint8_t xs[6], ys[6];
                    for (unsigned i = 0; i < k; i++) {
                        xs[i] = pick[i][0];
                        ys[i] = pick[i][1 + o];
                    }
                    if (ref_interp(xs, ys, k) != secret[o])
                        ref_bad++;
                }
            }
            CHECK(subsets > 0 && bad == 0 && ref_bad == 0);
            for (unsigned i = 0; i < n; i++)
                CHECK(shares[i][0] == i + 1);
        }
    }
}

/* Known polynomial: with a fixed generator the coefficients are known, so each share is
 * checked against f(x) = s + a1 x + a2 x^2 computed with the reference field. */
static void test_known_polynomial(void)
{
    const uint8_t coef[4] = {0x11, 0x22, 0x33, 0x44}; /* a1 for octets 0,1 then a2 */
    ms_fixed_rng st;
    ms_rng rng = ms_fixed_rng_make(&st, coef, sizeof coef);
    const uint8_t secret[2] = {0xa5, 0x5a};
    uint8_t shares[5][3];
    CHECK_ERR(ms_shamir_split(&shares[0][0], secret, 2, 3, 5, &rng), MS_OK);
    int bad = 0;
    for (unsigned i = 0; i < 5; i++) {
        uint8_t x = (uint8_t)(i + 1);
        for (unsigned o = 0; o < 2; o++) {
            uint8_t y = secret[o] ^ ref_mul(coef[o], x) ^ ref_mul(coef[2 + o], ref_mul(x, x));
            if (shares[i][1 + o] != y)
                bad++;
        }
    }
    CHECK(bad == 0);
}

/*
 * Secrecy of k - 1 shares, on the implementation itself: for a 1-octet secret, feed
 * every possible value of the random coefficients through a fixed generator. For each
 * secret the k - 1 shares then take every value exactly once, i.e. their distribution
 * is uniform whatever the secret: seeing them says nothing about it.
 */
static void test_k_minus_1_reveal_nothing(void)
{
    /* k = 2: one share, one random coefficient. */
    const uint8_t secrets[] = {0x00, 0x01, 0x80, 0xff};
    for (size_t si = 0; si < sizeof secrets; si++) {
        for (unsigned which = 0; which < 3; which++) {
            unsigned count[256] = {0};
            for (unsigned a = 0; a < 256; a++) {
                uint8_t c = (uint8_t)a, shares[3][2];
                ms_fixed_rng st;
                ms_rng rng = ms_fixed_rng_make(&st, &c, 1);
                if (ms_shamir_split(&shares[0][0], &secrets[si], 1, 2, 3, &rng) == MS_OK)
                    count[shares[which][1]]++;
            }
            int uniform = 1;
            for (unsigned y = 0; y < 256; y++)
                uniform &= count[y] == 1;
            CHECK(uniform);
        }
    }
    /* k = 3: the pair of shares 2 and 4 of 5 over all 65536 coefficient pairs. */
    static unsigned char seen[65536];
    for (size_t si = 0; si < 2; si++) {
        memset(seen, 0, sizeof seen);
        int dup = 0;
        for (unsigned a = 0; a < 65536; a++) {
            uint8_t c[2] = {(uint8_t)a, (uint8_t)(a >> 8)}, shares[5][2];
            ms_fixed_rng st;
            ms_rng rng = ms_fixed_rng_make(&st, c, 2);
            if (ms_shamir_split(&shares[0][0], &secrets[si + 1], 1, 3, 5, &rng) != MS_OK) {
                dup++;
                continue;
            }
            unsigned v = (unsigned)shares[1][1] << 8 | shares[3][1];
            dup += seen[v];
            seen[v] = 1;
        }
        CHECK(dup == 0);
    }
    /* And the other way round: k - 1 real shares plus a guessed k-th share give every
     * secret, each for exactly one guess, so the real ones do not narrow it down. */
    uint8_t secret = 0x3c, shares[3][2];
    CHECK_ERR(ms_shamir_split(&shares[0][0], &secret, 1, 3, 3, &ms_test_rng), MS_OK);
    unsigned count[256] = {0};
    for (unsigned g = 0; g < 256; g++) {
        uint8_t pick[3][2], out = 0;
        memcpy(pick[0], shares[0], 2);
        memcpy(pick[1], shares[1], 2);
        pick[2][0] = 3;
        pick[2][1] = (uint8_t)g;
        if (ms_shamir_combine(&out, 1, &pick[0][0], 3) == MS_OK)
            count[out]++;
    }
    int uniform = 1;
    for (unsigned y = 0; y < 256; y++)
        uniform &= count[y] == 1;
    CHECK(uniform);
}

static void test_refusals(void)
{
    uint8_t secret[4] = {1, 2, 3, 4}, shares[4][5], out[4];
    CHECK_ERR(ms_shamir_split(&shares[0][0], secret, 4, 0, 3, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_shamir_split(&shares[0][0], secret, 4, 4, 3, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_shamir_split(&shares[0][0], secret, 0, 2, 3, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_shamir_split(NULL, secret, 4, 2, 3, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_shamir_split(&shares[0][0], secret, 4, 2, 4, NULL), MS_OK);
    uint8_t dup[2][5];
    memcpy(dup[0], shares[1], 5);
    memcpy(dup[1], shares[1], 5);
    CHECK_ERR(ms_shamir_combine(out, 4, &dup[0][0], 2), MS_ERR_SHARE);
    memcpy(dup[1], shares[2], 5);
    dup[1][0] = 0;
    CHECK_ERR(ms_shamir_combine(out, 4, &dup[0][0], 2), MS_ERR_SHARE);
    CHECK_ERR(ms_shamir_combine(out, 4, &dup[0][0], 0), MS_ERR_ARG);
    /* A failing rng is reported, not papered over. */
    ms_fixed_rng st;
    ms_rng empty = ms_fixed_rng_make(&st, secret, 0);
    CHECK_ERR(ms_shamir_split(&shares[0][0], secret, 4, 2, 3, &empty), MS_ERR_RNG);
    /* k = 1: every share is the secret itself. */
    CHECK_ERR(ms_shamir_split(&shares[0][0], secret, 4, 1, 2, NULL), MS_OK);
    CHECK_MEM(shares[1] + 1, secret, 4);
}

int main(void)
{
    ms_test_seed();
    test_field();
    test_round_trips();
    test_known_polynomial();
    test_k_minus_1_reveal_nothing();
    test_refusals();
    return ms_test_finish();
}
