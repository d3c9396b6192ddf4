/*
 * Scalars modulo a group order, Shamir polynomials and Lagrange coefficients.
 * Both orders go through the generic 1024-bit Montgomery code (mont.h): a 256-bit order
 * costs more than it needs, but shares take few operations per identity.
 */
#include <string.h>

#include "crypto/ct.h"
#include "crypto/rng.h"
#include "tkms_internal.h"

/* P-256's group order n, with R = 2^1024 (values computed once, checked by the tests
 * against OpenSSL's BIGNUM arithmetic). */
const ms_mont ms_tkms_mont_n256 = {
    .m = {0xf3b9cac2fc632551ULL, 0xbce6faada7179e84ULL, 0xffffffffffffffffULL,
          0xffffffff00000000ULL},
    .m0inv = 0xccd1c8aaee00bc4fULL,
    .one = {0xf3be1c4f60d33274ULL, 0xb99ef2d859889d9dULL, 0xda7ff956230db1a9ULL,
            0xefe314d994129ba2ULL},
    .r2 = {0xd4d244ca97a1be95ULL, 0xb8b4f0ddfd4d9945ULL, 0x033d8816e81f098eULL,
           0xcb65ee519c672337ULL},
};

const tgroup tg_sakke = {TG_SAKKE, &ms_mont_q, 128, 257, 1022};
const tgroup tg_p256 = {TG_P256, &ms_tkms_mont_n256, 32, 65, 256};

void tsc_zero(tsc *r)
{
    memset(r->v, 0, sizeof r->v);
}

void tsc_from_u64(tsc *r, uint64_t x, const tgroup *g)
{
    uint64_t plain[MS_LIMBS] = {x};
    ms_mont_to(r->v, plain, g->q);
}

ms_err tsc_from_bytes(tsc *r, const uint8_t *in, const tgroup *g)
{
    uint64_t plain[MS_LIMBS];
    ms_u1024_from_be(plain, in, g->sc_bytes);
    uint64_t ok = ms_u1024_lt(plain, g->q->m);
    ms_ct_cmov(plain, (const uint64_t[MS_LIMBS]){0}, MS_LIMBS, ~ok);
    ms_mont_to(r->v, plain, g->q);
    ms_wipe(plain, sizeof plain);
    MS_CT_PUBLIC(&ok, sizeof ok);
    if (!ok) {
        tsc_zero(r);
        return MS_ERR_SCALAR_RANGE;
    }
    return MS_OK;
}

void tsc_to_plain(uint64_t out[MS_LIMBS], const tsc *a, const tgroup *g)
{
    ms_mont_from(out, a->v, g->q);
}

void tsc_to_bytes(uint8_t *out, const tsc *a, const tgroup *g)
{
    uint64_t plain[MS_LIMBS];
    uint8_t full[MS_BYTES];
    ms_mont_from(plain, a->v, g->q);
    ms_u1024_to_be(full, plain);
    memcpy(out, full + MS_BYTES - g->sc_bytes, g->sc_bytes);
    ms_wipe(plain, sizeof plain);
    ms_wipe(full, sizeof full);
}

void tsc_add(tsc *r, const tsc *a, const tsc *b, const tgroup *g)
{
    ms_mont_add(r->v, a->v, b->v, g->q);
}

void tsc_sub(tsc *r, const tsc *a, const tsc *b, const tgroup *g)
{
    ms_mont_sub(r->v, a->v, b->v, g->q);
}

void tsc_mul(tsc *r, const tsc *a, const tsc *b, const tgroup *g)
{
    ms_mont_mul(r->v, a->v, b->v, g->q);
}

void tsc_inv(tsc *r, const tsc *a, const tgroup *g)
{
    ms_mont_inv(r->v, a->v, g->q);
}

uint64_t tsc_iszero(const tsc *a)
{
    return ms_u1024_iszero(a->v);
}

uint64_t tsc_eq(const tsc *a, const tsc *b)
{
    return ms_u1024_eq(a->v, b->v);
}

ms_err tsc_random(tsc *r, const tgroup *g, const ms_rng *rng)
{
    uint8_t buf[TG_SC_MAX];
    unsigned top_bits = g->q_bits % 8;
    for (int tries = 0; tries < 1000; tries++) {
        ms_err err = ms_rng_fill(rng, buf, g->sc_bytes);
        if (err != MS_OK) {
            ms_wipe(buf, sizeof buf);
            return err;
        }
        if (top_bits != 0)
            buf[0] &= (uint8_t)((1u << top_bits) - 1);
        err = tsc_from_bytes(r, buf, g);
        if (err == MS_OK) {
            ms_wipe(buf, sizeof buf);
            return MS_OK;
        }
    }
    ms_wipe(buf, sizeof buf);
    return MS_ERR_RNG;
}

void tsc_poly_eval(tsc *r, const tsc *c, unsigned deg, unsigned x, const tgroup *g)
{
    tsc acc = c[deg], xs;
    tsc_from_u64(&xs, x, g);
    for (unsigned k = deg; k-- > 0;) {
        tsc_mul(&acc, &acc, &xs, g);
        tsc_add(&acc, &acc, &c[k], g);
    }
    *r = acc;
    ms_wipe(&acc, sizeof acc);
}

void tsc_lagrange_var(tsc *r, const unsigned *ids, size_t count, size_t i, unsigned x,
                      const tgroup *g)
{
    /* prod_{m != i} (x - id_m) / (id_i - id_m) */
    tsc num, den, t1, t2, xs, xi;
    tsc_from_u64(&num, 1, g);
    tsc_from_u64(&den, 1, g);
    tsc_from_u64(&xs, x, g);
    tsc_from_u64(&xi, ids[i], g);
    for (size_t m = 0; m < count; m++) {
        if (m == i)
            continue;
        tsc idm;
        tsc_from_u64(&idm, ids[m], g);
        tsc_sub(&t1, &xs, &idm, g);
        tsc_sub(&t2, &xi, &idm, g);
        tsc_mul(&num, &num, &t1, g);
        tsc_mul(&den, &den, &t2, g);
    }
    /* public values: the variable-time inverse is fine (plain form in and out) */
    uint64_t plain[MS_LIMBS];
    ms_mont_from(plain, den.v, g->q);
    ms_mont_inv_plain_var(plain, plain, g->q);
    ms_mont_to(den.v, plain, g->q);
    tsc_mul(r, &num, &den, g);
}
