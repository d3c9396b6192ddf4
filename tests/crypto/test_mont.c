/*
 * 1024-bit Montgomery arithmetic against OpenSSL BIGNUM.
 *
 * - the constants in sakke_params.c (p, q from the RFC 6508 vectors, m0inv, one, r2);
 * - every compiled multiplication backend (c64 always, x86_64-adx when built) on
 *   random and edge inputs for p and q: mul == a*b*R^-1 mod m, sqr == mul(a, a), and
 *   all backends agree, also with the output aliasing the inputs; the halves used for
 *   lazy reduction (wide product and square, redc, wide add and sub modulo m R);
 * - the generic operations of mont.c (add, sub, neg, to, from, pow, inv, inv_blinded,
 *   reduce_small, the u1024 helpers) on top of the chosen backend.
 */
#include <openssl/bn.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/fp.h"
#include "crypto/mont.h"
#include "mikeysakke/crypto.h"
#include "testutil.h"

/* The variable-time plain inverse behind ms_mont_inv_blinded (internal to mont.c). */

typedef void mul_fn(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                    const uint64_t b[MS_LIMBS], const uint64_t m[MS_LIMBS], uint64_t m0inv);
typedef void sqr_fn(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                    const uint64_t m[MS_LIMBS], uint64_t m0inv);

typedef struct backend {
    const char *name;
    mul_fn *mul;
    sqr_fn *sqr;
} backend;

static const backend backends[] = {
    {"c64", ms_mont_mul_c64, ms_mont_sqr_c64},
#ifdef MS_FP_BACKEND_X86_64_ADX
    {"x86_64-adx", ms_mont_mul_adx, ms_mont_sqr_adx},
#endif
};
#define NBACKENDS (sizeof backends / sizeof backends[0])

static BN_CTX *ctx;

/* ---- conversions ---------------------------------------------------------------------- */

static BIGNUM *bn_from_limbs(const uint64_t a[MS_LIMBS])
{
    uint8_t buf[MS_BYTES];
    ms_u1024_to_be(buf, a);
    BIGNUM *x = BN_bin2bn(buf, MS_BYTES, NULL);
    if (x == NULL)
        abort();
    return x;
}

static void limbs_from_bn(uint64_t r[MS_LIMBS], const BIGNUM *x)
{
    uint8_t buf[MS_BYTES];
    if (BN_num_bytes(x) > MS_BYTES || BN_bn2binpad(x, buf, MS_BYTES) != MS_BYTES)
        abort();
    ms_u1024_from_be(r, buf, MS_BYTES);
}

/* Per-modulus reference data. */
typedef struct refmod {
    const char *name;
    const ms_mont *mod;
    BIGNUM *m, *r, *rinv; /* modulus, R mod m, R^-1 mod m */
} refmod;

static void refmod_init(refmod *rm, const char *name, const ms_mont *mod)
{
    rm->name = name;
    rm->mod = mod;
    rm->m = bn_from_limbs(mod->m);
    BIGNUM *two1024 = BN_new();
    rm->r = BN_new();
    if (two1024 == NULL || rm->r == NULL || !BN_set_bit(two1024, 1024) ||
        !BN_mod(rm->r, two1024, rm->m, ctx))
        abort();
    rm->rinv = BN_mod_inverse(NULL, rm->r, rm->m, ctx);
    if (rm->rinv == NULL)
        abort();
    BN_free(two1024);
}

static void refmod_free(refmod *rm)
{
    BN_free(rm->m);
    BN_free(rm->r);
    BN_free(rm->rinv);
}

/* r = a * b * R^-1 mod m, by BIGNUM */
static void ref_mont_mul(uint64_t r[MS_LIMBS], const uint64_t a[MS_LIMBS],
                         const uint64_t b[MS_LIMBS], const refmod *rm)
{
    BIGNUM *x = bn_from_limbs(a), *y = bn_from_limbs(b);
    if (!BN_mod_mul(x, x, y, rm->m, ctx) || !BN_mod_mul(x, x, rm->rinv, rm->m, ctx))
        abort();
    limbs_from_bn(r, x);
    BN_free(x);
    BN_free(y);
}

/* A random value below m. */
static void random_below(uint64_t r[MS_LIMBS], const refmod *rm)
{
    uint8_t buf[MS_BYTES + 16];
    ms_test_random(buf, sizeof buf);
    BIGNUM *x = BN_bin2bn(buf, sizeof buf, NULL);
    if (x == NULL || !BN_mod(x, x, rm->m, ctx))
        abort();
    limbs_from_bn(r, x);
    BN_free(x);
}

/* Edge values below m: 0, 1, 2, m-1, m-2, R mod m, and values made of all-ones and
 * all-zero limbs under the top limb. Returns the count written. */
#define MAX_EDGES 24
static int edge_values(uint64_t out[MAX_EDGES][MS_LIMBS], const ms_mont *mod)
{
    int n = 0;
    memset(out, 0, sizeof(uint64_t) * MAX_EDGES * MS_LIMBS);
    n++;                 /* 0 */
    out[n++][0] = 1;     /* 1 */
    out[n++][0] = 2;     /* 2 */
    uint64_t one[MS_LIMBS] = {1}, two[MS_LIMBS] = {2};
    ms_u1024_sub(out[n++], mod->m, one); /* m - 1 */
    ms_u1024_sub(out[n++], mod->m, two); /* m - 2 */
    memcpy(out[n++], mod->one, sizeof out[0]);
    memcpy(out[n++], mod->r2, sizeof out[0]);
    /* all limbs ones below a top limb one less than m's */
    for (int i = 0; i < MS_LIMBS - 1; i++)
        out[n][i] = ~(uint64_t)0;
    out[n++][MS_LIMBS - 1] = mod->m[MS_LIMBS - 1] - 1;
    /* alternating all-ones / zero limbs, both phases */
    for (int ph = 0; ph < 2; ph++) {
        for (int i = 0; i < MS_LIMBS - 1; i++)
            out[n][i] = ((i + ph) & 1) ? ~(uint64_t)0 : 0;
        out[n++][MS_LIMBS - 1] = mod->m[MS_LIMBS - 1] >> 1;
    }
    /* single all-ones limbs, low and high */
    out[n++][0] = ~(uint64_t)0;
    out[n][7] = ~(uint64_t)0;
    out[n++][8] = ~(uint64_t)0;
    out[n++][MS_LIMBS - 2] = ~(uint64_t)0;
    /* m - 2^64, m - 2^512, m - 2^960 */
    for (int k = 1; k <= 15; k += 7) {
        uint64_t pw[MS_LIMBS] = {0};
        pw[k] = 1;
        ms_u1024_sub(out[n++], mod->m, pw);
    }
    /* low half all ones, high half zero and vice versa (below the top limb) */
    for (int i = 0; i < 8; i++)
        out[n][i] = ~(uint64_t)0;
    n++;
    for (int i = 8; i < MS_LIMBS - 1; i++)
        out[n][i] = ~(uint64_t)0;
    n++;
    return n;
}

/* ---- lazy reduction: wide products, redc, wide add and sub -------------------------------- */

static BIGNUM *bn_from_wide(const uint64_t w[2 * MS_LIMBS])
{
    uint8_t buf[2 * MS_BYTES];
    ms_u1024_to_be(buf, w + MS_LIMBS);
    ms_u1024_to_be(buf + MS_BYTES, w);
    BIGNUM *x = BN_bin2bn(buf, sizeof buf, NULL);
    if (x == NULL)
        abort();
    return x;
}

/* w = x as 32 limbs (x < 2^2048) */
static void wide_from_bn(uint64_t w[2 * MS_LIMBS], const BIGNUM *x)
{
    uint8_t buf[2 * MS_BYTES];
    if (BN_bn2binpad(x, buf, sizeof buf) != (int)sizeof buf)
        abort();
    ms_u1024_from_be(w + MS_LIMBS, buf, MS_BYTES);
    ms_u1024_from_be(w, buf + MS_BYTES, MS_BYTES);
}

/* A wide value below m R: random, or m R - 1, or 0. */
static void random_wide(uint64_t w[2 * MS_LIMBS], const refmod *rm, int kind)
{
    BIGNUM *x = BN_new(), *mr = BN_new();
    if (x == NULL || mr == NULL || !BN_lshift(mr, rm->m, 1024))
        abort();
    if (kind == 0) {
        if (!BN_rand_range(x, mr))
            abort();
    } else if (kind == 1) {
        if (!BN_sub(x, mr, BN_value_one()))
            abort();
    } else {
        BN_zero(x);
    }
    wide_from_bn(w, x);
    BN_free(x);
    BN_free(mr);
}

/* Every backend's wide product and square is the exact product; redc(t) = t R^-1 mod m
 * for t < m R, including m R - 1; wide add and sub stay below m R and keep the value
 * mod m R. Also the inline dispatch and aliasing. */
static void test_wide(const refmod *rm, int iterations)
{
    typedef void mulw_fn(uint64_t *, const uint64_t *, const uint64_t *);
    typedef void sqrw_fn(uint64_t *, const uint64_t *);
    typedef void redc_fn(uint64_t *, uint64_t *, const uint64_t *, uint64_t);
    static const struct {
        mulw_fn *mulw;
        sqrw_fn *sqrw;
        redc_fn *redc;
    } wb[] = {
        {ms_mont_mulwide_c64, ms_mont_sqrwide_c64, ms_mont_redc_c64},
#ifdef MS_FP_BACKEND_X86_64_ADX
        {ms_mont_mulwide_adx, ms_mont_sqrwide_adx, ms_mont_redc_adx},
#endif
    };
    const ms_mont *mod = rm->mod;
    BIGNUM *mr = BN_new(), *t = BN_new(), *u = BN_new();
    if (mr == NULL || t == NULL || u == NULL || !BN_lshift(mr, rm->m, 1024))
        abort();
    uint64_t edges[MAX_EDGES][MS_LIMBS];
    int nedges = edge_values(edges, mod);
    int bad = 0;
    for (int it = 0; it < iterations; it++) {
        uint64_t a[MS_LIMBS], b[MS_LIMBS], w[2 * MS_LIMBS], x[2 * MS_LIMBS], y[2 * MS_LIMBS];
        uint64_t r[MS_LIMBS], want[MS_LIMBS];
        if (it < nedges * nedges) {
            memcpy(a, edges[it / nedges], sizeof a);
            memcpy(b, edges[it % nedges], sizeof b);
        } else {
            random_below(a, rm);
            random_below(b, rm);
        }
        BIGNUM *ba = bn_from_limbs(a), *bb = bn_from_limbs(b);
        if (!BN_mul(t, ba, bb, ctx))
            abort();
        for (size_t k = 0; k < sizeof wb / sizeof wb[0]; k++) {
            wb[k].mulw(w, a, b);
            BIGNUM *bw = bn_from_wide(w);
            bad |= BN_cmp(bw, t) != 0;
            BN_free(bw);
            ref_mont_mul(want, a, b, rm);
            wb[k].redc(r, w, mod->m, mod->m0inv);
            bad |= memcmp(r, want, sizeof r) != 0;
            wb[k].mulw(w, a, b); /* the reduction clobbered it */
            wb[k].redc(w, w, mod->m, mod->m0inv); /* aliased */
            bad |= memcmp(w, want, sizeof r) != 0;
            wb[k].sqrw(w, a);
            ref_mont_mul(want, a, a, rm);
            wb[k].redc(r, w, mod->m, mod->m0inv);
            bad |= memcmp(r, want, sizeof r) != 0;
        }
        ms_mont_mulwide(w, a, b);
        ms_mont_redc(r, w, mod);
        ref_mont_mul(want, a, b, rm);
        bad |= memcmp(r, want, sizeof r) != 0;
        BN_free(ba);
        BN_free(bb);

        /* add and sub of wide values below m R, at the edges too */
        random_wide(x, rm, it % 7 == 1 ? 1 : it % 7 == 2 ? 2 : 0);
        random_wide(y, rm, it % 5 == 1 ? 1 : it % 5 == 2 ? 2 : 0);
        for (int op = 0; op < 2; op++) {
            BIGNUM *bx = bn_from_wide(x), *by = bn_from_wide(y);
            if (op == 0) {
                ms_mont_wide_add(w, x, y, mod);
                if (!BN_mod_add(u, bx, by, mr, ctx))
                    abort();
            } else {
                ms_mont_wide_sub(w, x, y, mod);
                if (!BN_mod_sub(u, bx, by, mr, ctx))
                    abort();
            }
            BIGNUM *bw = bn_from_wide(w);
            bad |= BN_cmp(bw, u) != 0; /* the exact value mod m R, and below m R */
            BN_free(bw);
            BN_free(bx);
            BN_free(by);
            /* its reduction is (x +- y) R^-1 mod m */
            ms_mont_redc(r, w, mod);
            BIGNUM *red = BN_new();
            if (red == NULL || !BN_mod_mul(red, u, rm->rinv, rm->m, ctx))
                abort();
            uint64_t got_plain[MS_LIMBS];
            limbs_from_bn(got_plain, red);
            bad |= memcmp(r, got_plain, sizeof r) != 0;
            BN_free(red);
        }
    }
    CHECK(bad == 0);
    printf("wide products, redc, wide add/sub mod %s: %d cases, %d wrong\n", rm->name,
           iterations, bad);
    BN_free(mr);
    BN_free(t);
    BN_free(u);
}

/* ---- the variable-time plain inverse ------------------------------------------------------ */

/* ms_mont_inv_plain_var against BN_mod_inverse on edge values, small values and random
 * values (plain, not Montgomery form), also with the output aliasing the input. */
static void test_inv_plain_var(const refmod *rm, int iterations)
{
    uint64_t edges[MAX_EDGES][MS_LIMBS];
    int nedges = edge_values(edges, rm->mod);
    int bad = 0, bad_alias = 0;
    BIGNUM *z = BN_new();
    if (z == NULL)
        abort();
    for (int it = 0; it < nedges + 64 + iterations; it++) {
        uint64_t x[MS_LIMBS] = {0}, got[MS_LIMBS], want[MS_LIMBS];
        if (it < nedges)
            memcpy(x, edges[it], sizeof x);
        else if (it < nedges + 64)
            x[0] = (uint64_t)(it - nedges) * 0x9e3779b97f4a7c15ull >> (it - nedges); /* small */
        else
            random_below(x, rm);
        if (ms_u1024_iszero(x)) {
            memset(got, 0xAA, sizeof got);
            ms_mont_inv_plain_var(got, x, rm->mod);
            CHECK(ms_u1024_iszero(got) == ~(uint64_t)0); /* 0 maps to 0 */
            continue;
        }
        BIGNUM *bx = bn_from_limbs(x);
        if (BN_mod_inverse(z, bx, rm->m, ctx) == NULL)
            abort();
        BN_free(bx);
        limbs_from_bn(want, z);
        ms_mont_inv_plain_var(got, x, rm->mod);
        bad += memcmp(got, want, sizeof want) != 0;
        ms_mont_inv_plain_var(x, x, rm->mod); /* aliasing */
        bad_alias += memcmp(x, want, sizeof want) != 0;
    }
    CHECK(bad == 0);
    CHECK(bad_alias == 0);
    BN_free(z);
}

/* ---- the constants ------------------------------------------------------------------------ */

static void test_constants(const refmod *rm, const char *vecname)
{
    uint8_t buf[MS_BYTES];
    size_t len = ms_test_vector("rfc6508.txt", vecname, buf, sizeof buf);
    uint64_t want[MS_LIMBS];
    ms_u1024_from_be(want, buf, len);
    CHECK_MEM(rm->mod->m, want, sizeof want);
    CHECK((rm->mod->m[0] & 1) == 1);
    /* m0inv * m = -1 mod 2^64 */
    CHECK(rm->mod->m0inv * rm->mod->m[0] == ~(uint64_t)0);
    /* one = R mod m */
    uint64_t x[MS_LIMBS];
    limbs_from_bn(x, rm->r);
    CHECK_MEM(rm->mod->one, x, sizeof x);
    /* r2 = R^2 mod m */
    BIGNUM *r2 = BN_new();
    if (r2 == NULL || !BN_mod_sqr(r2, rm->r, rm->m, ctx))
        abort();
    limbs_from_bn(x, r2);
    CHECK_MEM(rm->mod->r2, x, sizeof x);
    BN_free(r2);
}

static void test_q_from_p(const refmod *p, const refmod *q)
{
    /* q = (p + 1) / 4 */
    BIGNUM *x = BN_dup(p->m);
    if (x == NULL || !BN_add_word(x, 1) || !BN_rshift(x, x, 2))
        abort();
    CHECK(BN_cmp(x, q->m) == 0);
    BN_free(x);
}

/* ---- the backends ------------------------------------------------------------------------- */

static int check_one_mul(const backend *be, const refmod *rm, const uint64_t a[MS_LIMBS],
                         const uint64_t b[MS_LIMBS])
{
    const ms_mont *mod = rm->mod;
    uint64_t want[MS_LIMBS], got[MS_LIMBS], t[MS_LIMBS];
    int bad = 0;
    ref_mont_mul(want, a, b, rm);
    be->mul(got, a, b, mod->m, mod->m0inv);
    bad |= memcmp(got, want, sizeof got) != 0;
    /* r aliases a, then b */
    memcpy(t, a, sizeof t);
    be->mul(t, t, b, mod->m, mod->m0inv);
    bad |= memcmp(t, want, sizeof t) != 0;
    memcpy(t, b, sizeof t);
    be->mul(t, a, t, mod->m, mod->m0inv);
    bad |= memcmp(t, want, sizeof t) != 0;
    /* squares */
    ref_mont_mul(want, a, a, rm);
    be->sqr(got, a, mod->m, mod->m0inv);
    bad |= memcmp(got, want, sizeof got) != 0;
    memcpy(t, a, sizeof t);
    be->sqr(t, t, mod->m, mod->m0inv);
    bad |= memcmp(t, want, sizeof t) != 0;
    memcpy(t, a, sizeof t);
    be->mul(t, t, t, mod->m, mod->m0inv); /* r == a == b */
    bad |= memcmp(t, want, sizeof t) != 0;
    if (bad) {
        fprintf(stderr, "backend %s, modulus %s: wrong result for\n  a = ", be->name,
                rm->name);
        for (int i = MS_LIMBS; i-- > 0;)
            fprintf(stderr, "%016llx", (unsigned long long)a[i]);
        fprintf(stderr, "\n  b = ");
        for (int i = MS_LIMBS; i-- > 0;)
            fprintf(stderr, "%016llx", (unsigned long long)b[i]);
        fprintf(stderr, "\n");
    }
    return bad;
}

static void test_backend(const backend *be, const refmod *rm, int iterations)
{
    uint64_t edges[MAX_EDGES][MS_LIMBS];
    int nedges = edge_values(edges, rm->mod);
    int bad = 0;
    for (int i = 0; i < nedges; i++)
        for (int j = 0; j < nedges; j++)
            bad += check_one_mul(be, rm, edges[i], edges[j]);
    for (int it = 0; it < iterations; it++) {
        uint64_t a[MS_LIMBS], b[MS_LIMBS];
        random_below(a, rm);
        random_below(b, rm);
        if (it % 8 == 1)
            memcpy(b, edges[it / 8 % nedges], sizeof b);
        bad += check_one_mul(be, rm, a, b);
    }
    CHECK(bad == 0);
    printf("backend %s, modulus %s: %d edge pairs, %d random pairs, %d wrong\n", be->name,
           rm->name, nedges * nedges, iterations, bad);
}

/* Every backend gives the same answer as the first (c64), also the inline dispatch. */
static void test_backends_agree(const refmod *rm, int iterations)
{
    const ms_mont *mod = rm->mod;
    int bad = 0;
    for (int it = 0; it < iterations; it++) {
        uint64_t a[MS_LIMBS], b[MS_LIMBS], want[MS_LIMBS], wsq[MS_LIMBS], got[MS_LIMBS];
        random_below(a, rm);
        random_below(b, rm);
        backends[0].mul(want, a, b, mod->m, mod->m0inv);
        backends[0].sqr(wsq, a, mod->m, mod->m0inv);
        for (size_t k = 1; k < NBACKENDS; k++) {
            backends[k].mul(got, a, b, mod->m, mod->m0inv);
            bad |= memcmp(got, want, sizeof got) != 0;
            backends[k].sqr(got, a, mod->m, mod->m0inv);
            bad |= memcmp(got, wsq, sizeof got) != 0;
        }
        ms_mont_mul(got, a, b, mod);
        bad |= memcmp(got, want, sizeof got) != 0;
        ms_mont_sqr(got, a, mod);
        bad |= memcmp(got, wsq, sizeof got) != 0;
    }
    CHECK(bad == 0);
}

#ifdef MS_FP_BACKEND_X86_64_ADX
/* The inline dispatch follows the load-time CPU check: with the flag cleared (a CPU
 * without BMI2/ADX) every operation takes the portable path and still agrees. */
static void test_dispatch_fallback(const refmod *rm)
{
    const ms_mont *mod = rm->mod;
    int saved = ms_mont_cpu_has_adx, bad = 0;
    printf("this CPU has BMI2 and ADX: %s\n", saved ? "yes" : "no");
    for (int it = 0; it < 200; it++) {
        uint64_t a[MS_LIMBS], b[MS_LIMBS], want[MS_LIMBS], got[MS_LIMBS], w[2 * MS_LIMBS];
        random_below(a, rm);
        random_below(b, rm);
        ref_mont_mul(want, a, b, rm);
        for (int flag = 0; flag <= saved; flag++) {
            ms_mont_cpu_has_adx = flag;
            ms_mont_mul(got, a, b, mod);
            bad |= memcmp(got, want, sizeof got) != 0;
            ms_mont_mulwide(w, a, b);
            ms_mont_redc(got, w, mod);
            bad |= memcmp(got, want, sizeof got) != 0;
            ref_mont_mul(want, a, a, rm);
            ms_mont_sqr(got, a, mod);
            bad |= memcmp(got, want, sizeof got) != 0;
            ms_mont_sqrwide(w, a);
            ms_mont_redc(got, w, mod);
            bad |= memcmp(got, want, sizeof got) != 0;
            ref_mont_mul(want, a, b, rm);
        }
    }
    /* the name says which one runs */
    ms_mont_cpu_has_adx = 0;
    CHECK(strncmp(ms_fp_backend_name(), "c64", 3) == 0);
    ms_mont_cpu_has_adx = saved;
    if (saved)
        CHECK(strcmp(ms_fp_backend_name(), "x86_64-adx") == 0);
    CHECK(bad == 0);
}
#endif

/* A long chain of squarings and multiplications (each output feeds the next input)
 * agrees between backends and with BIGNUM. */
static void test_chain(const refmod *rm)
{
    const ms_mont *mod = rm->mod;
    uint64_t x[NBACKENDS][MS_LIMBS], y[MS_LIMBS], want[MS_LIMBS];
    random_below(y, rm);
    for (size_t k = 0; k < NBACKENDS; k++)
        random_below(x[0], rm);
    for (size_t k = 1; k < NBACKENDS; k++)
        memcpy(x[k], x[0], sizeof x[0]);
    memcpy(want, x[0], sizeof want);
    for (int it = 0; it < 300; it++) {
        for (size_t k = 0; k < NBACKENDS; k++) {
            backends[k].sqr(x[k], x[k], mod->m, mod->m0inv);
            backends[k].mul(x[k], x[k], y, mod->m, mod->m0inv);
        }
        ref_mont_mul(want, want, want, rm);
        ref_mont_mul(want, want, y, rm);
    }
    for (size_t k = 0; k < NBACKENDS; k++)
        CHECK_MEM(x[k], want, sizeof want);
}

/* ---- mont.c ------------------------------------------------------------------------------- */

static void test_generic(const refmod *rm, int iterations)
{
    const ms_mont *mod = rm->mod;
    uint64_t edges[MAX_EDGES][MS_LIMBS];
    int nedges = edge_values(edges, mod);
    BIGNUM *x = BN_new(), *y = BN_new(), *z = BN_new();
    if (x == NULL || y == NULL || z == NULL)
        abort();
    int bad_add = 0, bad_sub = 0, bad_neg = 0, bad_to = 0, bad_from = 0, bad_leg = 0;
    int seen_leg[3] = {0, 0, 0};
    for (int it = 0; it < iterations; it++) {
        uint64_t a[MS_LIMBS], b[MS_LIMBS], got[MS_LIMBS], want[MS_LIMBS];
        if (it < nedges * nedges) {
            memcpy(a, edges[it / nedges], sizeof a);
            memcpy(b, edges[it % nedges], sizeof b);
        } else {
            random_below(a, rm);
            random_below(b, rm);
        }
        BN_free(x);
        BN_free(y);
        x = bn_from_limbs(a);
        y = bn_from_limbs(b);

        if (!BN_mod_add(z, x, y, rm->m, ctx))
            abort();
        limbs_from_bn(want, z);
        ms_mont_add(got, a, b, mod);
        bad_add |= memcmp(got, want, sizeof got) != 0;
        memcpy(got, a, sizeof got);
        ms_mont_add(got, got, b, mod);
        bad_add |= memcmp(got, want, sizeof got) != 0;
        ms_mont_add_portable(got, a, b, mod);
        bad_add |= memcmp(got, want, sizeof got) != 0;

        if (!BN_mod_sub(z, x, y, rm->m, ctx))
            abort();
        limbs_from_bn(want, z);
        ms_mont_sub(got, a, b, mod);
        bad_sub |= memcmp(got, want, sizeof got) != 0;
        memcpy(got, b, sizeof got);
        ms_mont_sub(got, a, got, mod);
        bad_sub |= memcmp(got, want, sizeof got) != 0;
        ms_mont_sub_portable(got, a, b, mod);
        bad_sub |= memcmp(got, want, sizeof got) != 0;

        if (!BN_mod_sub(z, rm->m, x, rm->m, ctx))
            abort();
        limbs_from_bn(want, z);
        ms_mont_neg(got, a, mod);
        bad_neg |= memcmp(got, want, sizeof got) != 0;

        /* to: a*R mod m; from: a*R^-1 mod m */
        if (!BN_mod_mul(z, x, rm->r, rm->m, ctx))
            abort();
        limbs_from_bn(want, z);
        ms_mont_to(got, a, mod);
        bad_to |= memcmp(got, want, sizeof got) != 0;
        ms_mont_from(got, got, mod);
        bad_to |= memcmp(got, a, sizeof got) != 0;
        if (!BN_mod_mul(z, x, rm->rinv, rm->m, ctx))
            abort();
        limbs_from_bn(want, z);
        ms_mont_from(got, a, mod);
        bad_from |= memcmp(got, want, sizeof got) != 0;

        /* Legendre symbol of the element a stands for in Montgomery form (both moduli
         * are prime) against OpenSSL's Kronecker symbol */
        int kro = BN_kronecker(x, rm->m, ctx);
        ms_mont_to(got, a, mod);
        bad_leg |= ms_mont_legendre_blinded(got, mod) != kro;
        seen_leg[kro + 1] = 1;
    }
    CHECK(bad_leg == 0);
    CHECK(seen_leg[0] && seen_leg[1] && seen_leg[2]);
    CHECK(bad_add == 0);
    CHECK(bad_sub == 0);
    CHECK(bad_neg == 0);
    CHECK(bad_to == 0);
    CHECK(bad_from == 0);

    /* pow with public exponents, inv, inv_blinded: in Montgomery form, so compare in
     * plain form. */
    for (int it = 0; it < 6; it++) {
        uint64_t a[MS_LIMBS], plain[MS_LIMBS], e[MS_LIMBS] = {0}, got[MS_LIMBS],
                                                   want[MS_LIMBS];
        random_below(plain, rm);
        if (it == 0)
            memset(plain, 0, sizeof plain), plain[0] = 1;
        ms_mont_to(a, plain, mod);
        unsigned ebits;
        switch (it) {
        case 0: ebits = 5; e[0] = 17; break;
        case 1: ebits = 1; e[0] = 1; break;
        case 2: ebits = 0; break;
        case 3: ebits = 64; e[0] = 0xfedcba9876543210ull; break;
        default:
            ms_test_random((uint8_t *)e, sizeof e);
            ebits = 1024;
            break;
        }
        BN_free(x);
        BN_free(y);
        x = bn_from_limbs(plain);
        y = bn_from_limbs(e);
        if (!BN_mod_exp(z, x, y, rm->m, ctx))
            abort();
        limbs_from_bn(want, z);
        ms_mont_pow_pubexp(got, a, e, ebits, mod);
        ms_mont_from(got, got, mod);
        CHECK_MEM(got, want, sizeof want);

        /* inverse */
        if (BN_mod_inverse(z, x, rm->m, ctx) == NULL)
            abort();
        limbs_from_bn(want, z);
        ms_mont_inv(got, a, mod);
        ms_mont_from(got, got, mod);
        CHECK_MEM(got, want, sizeof want);
        CHECK(ms_mont_inv_blinded(got, a, mod) == 0);
        ms_mont_from(got, got, mod);
        CHECK_MEM(got, want, sizeof want);
        memcpy(got, a, sizeof got); /* aliasing */
        CHECK(ms_mont_inv_blinded(got, got, mod) == 0);
        ms_mont_from(got, got, mod);
        CHECK_MEM(got, want, sizeof want);
    }
    {
        static const uint64_t zero[MS_LIMBS];
        uint64_t got[MS_LIMBS];
        memset(got, 0xAA, sizeof got);
        ms_mont_inv(got, zero, mod);
        CHECK(ms_u1024_iszero(got) == ~(uint64_t)0);
        memset(got, 0xAA, sizeof got);
        CHECK(ms_mont_inv_blinded(got, zero, mod) == -1);
        CHECK(ms_u1024_iszero(got) == ~(uint64_t)0);
    }

    /* reduce_small: x + top*2^1024 < 8m */
    BIGNUM *eight_m = BN_new();
    if (eight_m == NULL || !BN_lshift(eight_m, rm->m, 3))
        abort();
    int bad_red = 0;
    for (int it = 0; it < 400; it++) {
        if (it == 0) {
            if (!BN_sub(z, eight_m, BN_value_one()))
                abort();
        } else if (it == 1) {
            BN_zero(z);
        } else if (it == 2) {
            if (!BN_copy(z, rm->m))
                abort();
        } else if (it < 10) {
            if (!BN_mul_word(BN_copy(z, rm->m), (BN_ULONG)(it - 2)))
                abort();
        } else if (!BN_rand_range(z, eight_m)) {
            abort();
        }
        /* split into 16 limbs and the top */
        uint64_t lo[MS_LIMBS], got[MS_LIMBS], want[MS_LIMBS];
        uint8_t buf[MS_BYTES + 8];
        if (BN_bn2binpad(z, buf, sizeof buf) != (int)sizeof buf)
            abort();
        uint64_t top = 0;
        for (int i = 0; i < 8; i++)
            top = top << 8 | buf[i];
        ms_u1024_from_be(lo, buf + 8, MS_BYTES);
        if (!BN_mod(z, z, rm->m, ctx))
            abort();
        limbs_from_bn(want, z);
        ms_mont_reduce_small(got, lo, top, mod);
        bad_red |= memcmp(got, want, sizeof got) != 0;
        memcpy(got, lo, sizeof got);
        ms_mont_reduce_small(got, got, top, mod);
        bad_red |= memcmp(got, want, sizeof got) != 0;
    }
    CHECK(bad_red == 0);
    BN_free(eight_m);
    BN_free(x);
    BN_free(y);
    BN_free(z);
}

static void test_u1024(void)
{
    uint64_t a[MS_LIMBS], b[MS_LIMBS], r[MS_LIMBS], s[MS_LIMBS];
    uint8_t be[MS_BYTES], be2[MS_BYTES];
    ms_test_random(be, sizeof be);
    ms_u1024_from_be(a, be, sizeof be);
    ms_u1024_to_be(be2, a);
    CHECK_MEM(be2, be, sizeof be);
    /* short input is left-padded */
    ms_u1024_from_be(b, be, 3);
    CHECK(b[0] == ((uint64_t)be[0] << 16 | (uint64_t)be[1] << 8 | be[2]));
    CHECK(b[1] == 0 && b[MS_LIMBS - 1] == 0);
    ms_test_random((uint8_t *)b, sizeof b);
    uint64_t c = ms_u1024_add(r, a, b);
    uint64_t d = ms_u1024_sub(s, r, b);
    CHECK_MEM(s, a, sizeof a);
    CHECK(c == d); /* the add carried exactly when the sub borrows back */
    CHECK(ms_u1024_eq(a, a) == ~(uint64_t)0);
    CHECK(ms_u1024_eq(a, b) == 0);
    CHECK(ms_u1024_lt(ms_mont_q.m, ms_mont_p.m) == ~(uint64_t)0);
    CHECK(ms_u1024_lt(ms_mont_p.m, ms_mont_q.m) == 0);
    CHECK(ms_u1024_lt(ms_mont_p.m, ms_mont_p.m) == 0);
    memset(r, 0, sizeof r);
    CHECK(ms_u1024_iszero(r) == ~(uint64_t)0);
    r[MS_LIMBS - 1] = 1;
    CHECK(ms_u1024_iszero(r) == 0);
}

/* The fp.h wrappers use p. */
static void test_fp(const refmod *p)
{
    ms_fp a, b, r;
    uint64_t want[MS_LIMBS];
    random_below(a.v, p);
    random_below(b.v, p);
    ms_fp_mul(&r, &a, &b);
    ref_mont_mul(want, a.v, b.v, p);
    CHECK_MEM(r.v, want, sizeof want);
    ms_fp_sqr(&r, &a);
    ref_mont_mul(want, a.v, a.v, p);
    CHECK_MEM(r.v, want, sizeof want);
    uint8_t buf[MS_BYTES], buf2[MS_BYTES];
    ms_fp_to_bytes(buf, &a);
    CHECK(ms_fp_from_bytes(&r, buf) == ~(uint64_t)0);
    CHECK(ms_fp_eq(&r, &a) == ~(uint64_t)0);
    ms_u1024_to_be(buf2, p->mod->m);
    CHECK(ms_fp_from_bytes(&r, buf2) == 0); /* p itself is not a valid element */
}

int main(void)
{
    ms_test_seed();
    ctx = BN_CTX_new();
    if (ctx == NULL)
        abort();
    refmod p, q;
    refmod_init(&p, "p", &ms_mont_p);
    refmod_init(&q, "q", &ms_mont_q);

    test_constants(&p, "p");
    test_constants(&q, "q");
    test_q_from_p(&p, &q);

    printf("field backend in use: %s\n", ms_fp_backend_name());
#ifndef MS_FP_BACKEND_X86_64_ADX
    printf("backend x86_64-adx: UNAVAILABLE\n");
#endif
    for (size_t k = 0; k < NBACKENDS; k++) {
        test_backend(&backends[k], &p, 3000);
        test_backend(&backends[k], &q, 3000);
    }
    test_backends_agree(&p, 20000);
    test_backends_agree(&q, 20000);
    test_chain(&p);
    test_chain(&q);
    test_wide(&p, 3000);
    test_wide(&q, 3000);
#ifdef MS_FP_BACKEND_X86_64_ADX
    test_dispatch_fallback(&p);
    test_dispatch_fallback(&q);
#endif
    printf("backends tested:");
    for (size_t k = 0; k < NBACKENDS; k++)
        printf(" %s", backends[k].name);
    printf("\n");

    test_u1024();
    test_inv_plain_var(&p, 5000);
    test_inv_plain_var(&q, 5000);
    test_generic(&p, 2000);
    test_generic(&q, 2000);
    test_fp(&p);

    refmod_free(&p);
    refmod_free(&q);
    BN_CTX_free(ctx);
    return ms_test_finish();
}
