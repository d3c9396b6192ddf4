/*
 * SAKKE (RFC 6508) with parameter set 1 of RFC 6509: the public API of crypto.h.
 *
 * Cost model: every scalar multiplication by a secret goes through a fixed-base comb
 * (P and Z in the KMS object, I in a peer or prepared RSK), the exponentiation g^r through
 * the KMS's PF_p table, and the pairing through pairing.c (cold, or with the RSK's
 * Miller lines prepared). [r]I for the sender is [r b mod q]P + [r]Z, so a cold
 * encapsulation needs no table for I. The KMS object's tables are built on first need
 * (issuing needs P's comb only); the first few validations and cold decapsulations on
 * one object go without them (a constant-time ladder for [r]I, a cold pairing for
 * validation), so one-off users such as the auditor never pay for them.
 *
 * Secrets (z, the inverse (a + z)^-1, r, SSV, g^r = w, the RSK and its prepared lines)
 * are only handled by constant-time code; the code branches on a secret-derived value
 * only after declassifying a public verdict (valid or not, TEST passed or not).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mikeysakke/crypto.h"
#include "pairing.h"
#include "rng.h"
#include "sakke_curve.h"
#include "sakke_hash.h"
#include "secmem.h"

/* Tables of one KMS object, each built on first need (bits of `built`). */
enum { TAB_COMB_P = 1, TAB_COMB_Z = 2, TAB_G = 4, TAB_LINES = 8 };

/* Validations and cold decapsulations on one object that go without tables. Without
 * them a validation is a cold pairing (~12 k multiplications; ~8 k with the Miller tables
 * of P and Z, which cost ~58 k to build) and TEST's [r]I a ladder (~9 k; ~1.5 k with the
 * combs of P and Z, ~52 k to build). An auditor or a client importing a key does a few
 * such operations per object and would never recover the tables' cost; a long-lived
 * object that does more builds them at the (COLD_USES + 1)-th. */
#define COLD_USES 4

struct ms_sakke_kms {
    ms_sakke_affine z_pub; /* Z, checked: on the curve and of order q */
    /* The object is shared read-only between threads (a KMS issuing in parallel): tables
     * are built under `lock`, and their bit in `built` is stored with release order after
     * the table, so a reader that sees the bit (acquire) sees the whole table. */
    pthread_mutex_t lock;
    atomic_uint built;
    atomic_uint cold_uses;
    ms_sakke_comb *comb_p;
    ms_sakke_comb *comb_z;
    ms_pfp_table *g_table; /* g = <P, P> */
    /* Miller functions of P and Z (public), so that RSK validation needs no cold Miller
     * loop: <I, K> = <P, K>^a <Z, K> */
    ms_pairing_prepared *lines_p;
    ms_pairing_prepared *lines_z;
};

/* The peer keeps a pointer to the KMS object for its g table: the KMS object must
 * outlive every peer made from it. */
struct ms_sakke_peer {
    const ms_sakke_kms *kms;
    ms_sakke_comb *comb_i; /* I = [b]P + Z */
    size_t id_len;
    uint8_t id[MS_SAKKE_ID_MAX_BYTES];
};

struct ms_sakke_prepared_rsk {
    ms_pairing_prepared *lines; /* secret: from ms_secure_alloc */
    size_t lines_size;
    ms_sakke_comb *comb_i; /* I = [a]P + Z, public, for TEST */
    size_t id_len;
    uint8_t id[MS_SAKKE_ID_MAX_BYTES];
};

/* ---- helpers ------------------------------------------------------------------------------ */

/* Tables are scanned in full on every lookup: align them to cache lines. */
static void *table_alloc(size_t size)
{
    return aligned_alloc(64, (size + 63) & ~(size_t)63);
}

static ms_sakke_comb *comb_new(const ms_sakke_affine *base, ms_err *err)
{
    ms_sakke_comb *t = table_alloc(ms_sakke_comb_size());
    if (t == NULL) {
        *err = MS_ERR_NOMEM;
        return NULL;
    }
    if (ms_sakke_comb_build(t, base) != 0) {
        free(t);
        *err = MS_ERR_NOMEM; /* the build only fails when its scratch allocation does */
        return NULL;
    }
    return t;
}

static int declassify(uint64_t mask)
{
    MS_CT_PUBLIC(&mask, sizeof mask);
    return mask != 0;
}

/* The identifier as an integer in [2, q-1] (public). */
static ms_err id_to_scalar(uint64_t a[MS_LIMBS], const uint8_t *id, size_t id_len)
{
    static const uint64_t two[MS_LIMBS] = {2};
    if (id == NULL || id_len == 0 || id_len > MS_SAKKE_ID_MAX_BYTES)
        return MS_ERR_ID_RANGE;
    ms_u1024_from_be(a, id, id_len);
    if (ms_u1024_lt(a, two) || !ms_u1024_lt(a, ms_mont_q.m))
        return MS_ERR_ID_RANGE;
    return MS_OK;
}

/* A master secret z in [2, q-1]; only the verdict is declassified. */
static ms_err secret_to_scalar(uint64_t z[MS_LIMBS], const uint8_t in[MS_SAKKE_SECRET_BYTES])
{
    static const uint64_t two[MS_LIMBS] = {2};
    ms_u1024_from_be(z, in, MS_SAKKE_SECRET_BYTES);
    if (!declassify(~ms_u1024_lt(z, two) & ms_u1024_lt(z, ms_mont_q.m))) {
        ms_wipe(z, MS_LIMBS * sizeof z[0]);
        return MS_ERR_SCALAR_RANGE;
    }
    return MS_OK;
}

/* Encode a Jacobian result that is public. Infinity is reported as `if_infinity`. */
static ms_err jac_encode(uint8_t out[MS_SAKKE_POINT_BYTES], ms_sakke_affine *aff,
                         const ms_sakke_jac *p, ms_err if_infinity)
{
    if (declassify(ms_fp_iszero(&p->z)))
        return if_infinity;
    if (ms_sakke_jac_to_affine(aff, p) != 0)
        return MS_ERR_RNG; /* the blinded inversion's generator failed */
    if (out != NULL)
        ms_sakke_point_encode(out, aff);
    return MS_OK;
}

/* ---- the KMS object's tables, built on first need ------------------------------------------ */

static bool tables_built(const ms_sakke_kms *kms, unsigned which)
{
    return (atomic_load_explicit(&kms->built, memory_order_acquire) & which) == which;
}

static ms_err build_table(ms_sakke_kms *kms, unsigned tab)
{
    ms_sakke_affine p;
    ms_sakke_generator(&p);
    ms_err err = MS_OK;
    switch (tab) {
    case TAB_COMB_P:
        kms->comb_p = comb_new(&p, &err);
        return err;
    case TAB_COMB_Z:
        kms->comb_z = comb_new(&kms->z_pub, &err);
        return err;
    case TAB_G: {
        ms_fp g;
        memcpy(g.v, ms_sakke_g_mont, sizeof g.v);
        kms->g_table = table_alloc(ms_pfp_table_size());
        if (kms->g_table == NULL)
            return MS_ERR_NOMEM;
        if (ms_pfp_table_build(kms->g_table, &g) != 0) {
            free(kms->g_table);
            kms->g_table = NULL;
            return MS_ERR_RNG; /* its only failure: the blinded inversion's generator */
        }
        return MS_OK;
    }
    default: /* TAB_LINES */
        kms->lines_p = table_alloc(ms_pairing_prepared_size());
        kms->lines_z = table_alloc(ms_pairing_prepared_size());
        /* fails only if its scratch allocation or the blinded inversion's generator does */
        if (kms->lines_p == NULL || kms->lines_z == NULL ||
            ms_pairing_prepare(kms->lines_p, &p) != 0 ||
            ms_pairing_prepare(kms->lines_z, &kms->z_pub) != 0) {
            free(kms->lines_p);
            free(kms->lines_z);
            kms->lines_p = kms->lines_z = NULL;
            return MS_ERR_NOMEM;
        }
        return MS_OK;
    }
}

/* Build the tables `which` that are missing (once, whichever thread asks first). The
 * object is const to its users; its tables are a cache, the only part that changes. */
static ms_err tables_need(const ms_sakke_kms *ckms, unsigned which)
{
    if (tables_built(ckms, which))
        return MS_OK;
    ms_sakke_kms *kms = (ms_sakke_kms *)ckms;
    ms_err err = MS_OK;
    pthread_mutex_lock(&kms->lock);
    unsigned have = atomic_load_explicit(&kms->built, memory_order_relaxed);
    for (unsigned tab = 1; err == MS_OK && tab <= TAB_LINES; tab <<= 1) {
        if ((which & tab) == 0 || (have & tab) != 0)
            continue;
        err = build_table(kms, tab);
        if (err == MS_OK) {
            have |= tab;
            atomic_store_explicit(&kms->built, have, memory_order_release);
        }
    }
    pthread_mutex_unlock(&kms->lock);
    return err;
}

/* For an operation that has a table-free way: true if it should use the tables `which`
 * (built now if this is past the first COLD_USES such operations), false if it goes
 * without. A table that cannot be built (memory) also means going without. */
static bool tables_wanted(const ms_sakke_kms *ckms, unsigned which)
{
    if (tables_built(ckms, which))
        return true;
    ms_sakke_kms *kms = (ms_sakke_kms *)ckms;
    if (atomic_fetch_add_explicit(&kms->cold_uses, 1, memory_order_relaxed) < COLD_USES)
        return false;
    return tables_need(kms, which) == MS_OK;
}

/* I = [a]P + Z. It is infinity only if a = -z mod q: no RSK can exist for such an
 * identifier, which is reported as MS_ERR_ID_RANGE. need_comb: P's comb is built if
 * missing (for an object that is being prepared for many operations); otherwise, while it
 * is missing, a variable-time multiplication (a is public): ~2.5 k multiplications for a
 * 256-bit identifier against ~26 k for building the comb. */
static ms_err identity(const ms_sakke_kms *kms, ms_sakke_affine *I, const uint64_t a[MS_LIMBS],
                       bool need_comb)
{
    ms_sakke_jac t;
    if (need_comb) {
        ms_err err = tables_need(kms, TAB_COMB_P);
        if (err != MS_OK)
            return err;
    }
    if (tables_built(kms, TAB_COMB_P)) {
        ms_sakke_comb_mul(&t, kms->comb_p, a); /* a is public; the comb is just fast */
    } else {
        ms_sakke_affine p;
        ms_sakke_generator(&p);
        ms_sakke_mul_var(&t, &p, a);
    }
    ms_sakke_jac_add_affine(&t, &t, &kms->z_pub);
    return jac_encode(NULL, I, &t, MS_ERR_ID_RANGE);
}

static uint64_t fp_is_g(const ms_fp *w)
{
    ms_fp g;
    memcpy(g.v, ms_sakke_g_mont, sizeof g.v);
    return ms_fp_eq(w, &g);
}

/* ---- KMS side ------------------------------------------------------------------------------ */

ms_err ms_sakke_master_keygen(uint8_t z[MS_SAKKE_SECRET_BYTES], uint8_t Z[MS_SAKKE_POINT_BYTES],
                              const ms_rng *rng)
{
    static const uint64_t two[MS_LIMBS] = {2};
    if (z == NULL || Z == NULL)
        return MS_ERR_ARG;
    uint8_t buf[MS_SAKKE_SECRET_BYTES];
    uint64_t k[MS_LIMBS];
    ms_err err;
    /* Rejection sampling: 1022-bit draws until one lies in [2, q-1] (accepted with
     * probability q / 2^1022 ~ 0.6). A rejected draw is discarded, so revealing that it
     * was rejected reveals nothing about the accepted one. */
    for (;;) {
        err = ms_rng_fill(rng, buf, sizeof buf);
        if (err != MS_OK)
            goto out;
        buf[0] &= 0x3F;
        ms_u1024_from_be(k, buf, sizeof buf);
        if (declassify(~ms_u1024_lt(k, two) & ms_u1024_lt(k, ms_mont_q.m)))
            break;
    }
    ms_sakke_affine p, zp;
    ms_sakke_jac t;
    ms_sakke_generator(&p);
    ms_sakke_mul(&t, &p, k);
    err = jac_encode(Z, &zp, &t, MS_ERR_INTERNAL);
    if (err == MS_OK)
        memcpy(z, buf, sizeof buf);
out:
    ms_wipe(buf, sizeof buf);
    ms_wipe(k, sizeof k);
    return err;
}

ms_err ms_sakke_master_public(uint8_t Z[MS_SAKKE_POINT_BYTES],
                              const uint8_t z[MS_SAKKE_SECRET_BYTES])
{
    if (Z == NULL || z == NULL)
        return MS_ERR_ARG;
    uint64_t k[MS_LIMBS];
    ms_err err = secret_to_scalar(k, z);
    if (err != MS_OK)
        return err;
    ms_sakke_affine p, zp;
    ms_sakke_jac t;
    ms_sakke_generator(&p);
    ms_sakke_mul(&t, &p, k);
    err = jac_encode(Z, &zp, &t, MS_ERR_INTERNAL);
    ms_wipe(k, sizeof k);
    ms_wipe(&t, sizeof t);
    return err;
}

/* ---- the KMS object ------------------------------------------------------------------------ */

ms_err ms_sakke_kms_new(ms_sakke_kms **out, const uint8_t Z[MS_SAKKE_POINT_BYTES])
{
    if (out == NULL || Z == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    ms_sakke_affine zp;
    /* the 2-descent test: ~1.2 k multiplications against ~10 k for [q]Z */
    if (ms_sakke_point_decode(&zp, Z) != MS_OK || !declassify(ms_sakke_point_in_eq(&zp)))
        return MS_ERR_KMS_PUBLIC_INVALID;

    ms_sakke_kms *kms = calloc(1, sizeof *kms);
    if (kms == NULL)
        return MS_ERR_NOMEM;
    if (pthread_mutex_init(&kms->lock, NULL) != 0) {
        free(kms);
        return MS_ERR_NOMEM;
    }
    kms->z_pub = zp;
    atomic_init(&kms->built, 0u);
    atomic_init(&kms->cold_uses, 0u);
    /* The tables (~58 k multiplications for all) are built by the first operation that
     * needs each (tables_need): a verifier of one RSK needs none of them. */
    *out = kms;
    return MS_OK;
}

ms_err ms_sakke_kms_prepare_sender(const ms_sakke_kms *kms)
{
    if (kms == NULL)
        return MS_ERR_ARG;
    return tables_need(kms, TAB_COMB_P | TAB_COMB_Z | TAB_G);
}

void ms_sakke_kms_free(ms_sakke_kms *kms)
{
    if (kms == NULL)
        return;
    free(kms->comb_p);
    free(kms->comb_z);
    free(kms->g_table);
    free(kms->lines_p);
    free(kms->lines_z);
    pthread_mutex_destroy(&kms->lock);
    free(kms);
}

size_t ms_sakke_kms_table_bytes(const ms_sakke_kms *kms)
{
    if (kms == NULL)
        return 0;
    /* what the tables take once all are built (they are built on first need) */
    return 2 * ms_sakke_comb_size() + ms_pfp_table_size() + 2 * ms_pairing_prepared_size();
}

ms_err ms_sakke_rsk_issue(const ms_sakke_kms *kms, uint8_t rsk[MS_SAKKE_POINT_BYTES],
                          const uint8_t z[MS_SAKKE_SECRET_BYTES], const uint8_t *id,
                          size_t id_len)
{
    if (kms == NULL || rsk == NULL || z == NULL)
        return MS_ERR_ARG;
    uint64_t a[MS_LIMBS], k[MS_LIMBS], s[MS_LIMBS];
    ms_err err = id_to_scalar(a, id, id_len);
    if (err != MS_OK)
        return err;
    if ((err = tables_need(kms, TAB_COMB_P)) != MS_OK)
        return err;
    err = secret_to_scalar(k, z);
    if (err != MS_OK)
        return err;

    /* s = a + z mod q; a + z = 0 mod q would need the inverse of 0 */
    ms_mont_add(s, a, k, &ms_mont_q);
    ms_sakke_affine K;
    if (declassify(ms_u1024_iszero(s))) {
        err = MS_ERR_SCALAR_RANGE;
        goto out;
    }
    /* The blinded inversion works in Montgomery form: in as s R, out as s^-1 R. */
    ms_mont_to(s, s, &ms_mont_q);
    if (ms_mont_inv_blinded(k, s, &ms_mont_q) != 0) {
        err = MS_ERR_RNG;
        goto out;
    }
    ms_mont_from(k, k, &ms_mont_q);
    /* k is in [1, q - 1], so [k]P is never infinity */
    if ((err = ms_sakke_comb_mul_affine(&K, kms->comb_p, k)) != MS_OK)
        goto out;
    ms_sakke_point_encode(rsk, &K);
    err = MS_OK;
out:
    ms_wipe(k, sizeof k);
    ms_wipe(s, sizeof s);
    ms_wipe(&K, sizeof K);
    if (err != MS_OK)
        ms_wipe(rsk, MS_SAKKE_POINT_BYTES);
    return err;
}

ms_err ms_sakke_identity_point(const ms_sakke_kms *kms, uint8_t I[MS_SAKKE_POINT_BYTES],
                               const uint8_t *id, size_t id_len)
{
    if (kms == NULL || I == NULL)
        return MS_ERR_ARG;
    uint64_t a[MS_LIMBS];
    ms_err err = id_to_scalar(a, id, id_len);
    if (err != MS_OK)
        return err;
    ms_sakke_affine ip;
    err = identity(kms, &ip, a, false);
    if (err == MS_OK)
        ms_sakke_point_encode(I, &ip);
    return err;
}

/* Decode the RSK and check its order. Secret point: decoding and the constant-time
 * 2-descent order check declassify only their verdicts. */
static ms_err rsk_decode(ms_sakke_affine *K, const uint8_t rsk[MS_SAKKE_POINT_BYTES])
{
    ms_err err = ms_sakke_point_decode(K, rsk);
    if (err == MS_OK && !declassify(ms_sakke_point_in_eq(K)))
        err = MS_ERR_POINT_ORDER;
    return err;
}

/* RFC 6508 6.1.2 as written: <[a]P + Z, K> == g with a cold pairing (~12 k
 * multiplications), for an object without the Miller tables of P and Z. K is secret and
 * the pairing's second argument, as in decapsulation; I is public. */
static ms_err rsk_validate_cold(const ms_sakke_kms *kms, const uint64_t a[MS_LIMBS],
                                const ms_sakke_affine *K)
{
    ms_sakke_affine I;
    ms_fp w;
    ms_err err = identity(kms, &I, a, false);
    if (err != MS_OK)
        return err;
    /* I and K lie in E[q], where the Miller value is never zero: only the blinded
     * inversion's generator can fail */
    if (ms_pairing(&w, &I, K) != 0)
        err = MS_ERR_RNG;
    else
        err = declassify(fp_is_g(&w)) ? MS_OK : MS_ERR_RSK_INVALID;
    ms_wipe(&w, sizeof w);
    return err;
}

ms_err ms_sakke_rsk_validate(const ms_sakke_kms *kms, const uint8_t *id, size_t id_len,
                             const uint8_t rsk[MS_SAKKE_POINT_BYTES])
{
    if (kms == NULL || rsk == NULL)
        return MS_ERR_ARG;
    uint64_t a[MS_LIMBS];
    ms_err err = id_to_scalar(a, id, id_len);
    if (err != MS_OK)
        return err;
    ms_sakke_affine K;
    ms_fp e1, e2, t, u;
    err = rsk_decode(&K, rsk);
    if (err != MS_OK)
        goto out;
    if (!tables_wanted(kms, TAB_LINES)) {
        err = rsk_validate_cold(kms, a, &K);
        goto out;
    }
    /* By bilinearity the left side is <P, K>^a <Z, K>, and with the Miller functions of
     * P and Z prepared in the KMS object that costs two prepared evaluations and one PF_p
     * exponentiation by the public a (~14 k multiplications) against a cold pairing plus
     * I (~22 k). Both pairings are symmetric on E[q], which K was just checked to lie in. */
    if (ms_pairing_prepared_eval(&e1, kms->lines_p, &K) != 0 ||
        ms_pairing_prepared_eval(&e2, kms->lines_z, &K) != 0 || ms_pfp_pow(&e1, &e1, a) != 0) {
        err = MS_ERR_RNG;
        goto out;
    }
    /* The product of the classes of 1 + i e1 and 1 + i e2 is that of
     * (1 - e1 e2) + i (e1 + e2); it equals the class of 1 + i g iff
     * e1 + e2 == g (1 - e1 e2) (the right side is 0 only for the class of i, which is
     * not g's). */
    ms_fp g, one;
    memcpy(g.v, ms_sakke_g_mont, sizeof g.v);
    ms_fp_set_one(&one);
    ms_fp_mul(&t, &e1, &e2);
    ms_fp_sub(&t, &one, &t);
    ms_fp_mul(&t, &t, &g);
    ms_fp_add(&u, &e1, &e2);
    if (declassify(ms_fp_eq(&t, &u))) {
        err = MS_OK;
    } else {
        /* The product is 1 (u = 0) for every K of E[q] exactly when I = [a]P + Z is
         * infinity: a = -z mod q, an identifier no RSK can exist for. */
        err = declassify(ms_fp_iszero(&u)) ? MS_ERR_ID_RANGE : MS_ERR_RSK_INVALID;
    }
out:
    ms_wipe(&K, sizeof K);
    ms_wipe(&e1, sizeof e1);
    ms_wipe(&e2, sizeof e2);
    ms_wipe(&t, sizeof t);
    ms_wipe(&u, sizeof u);
    return err;
}

/* ---- encapsulation -------------------------------------------------------------------------- */

/* SED = R || H for ssv to identifier id (a, its integer). R = [r]I comes from the
 * peer's comb for I when comb_i is given, else as [r a mod q]P + [r]Z. */
static ms_err encap_core(const ms_sakke_kms *kms, const ms_sakke_comb *comb_i,
                         const uint64_t a[MS_LIMBS], const uint8_t *id, size_t id_len,
                         uint8_t sed[MS_SAKKE_SED_BYTES], const uint8_t ssv[MS_SAKKE_SSV_BYTES])
{
    uint64_t r[MS_LIMBS], ra[MS_LIMBS], am[MS_LIMBS];
    ms_sakke_jac R;
    ms_sakke_affine Ra;
    ms_fp gr;
    uint8_t grb[MS_SAKKE_FP_BYTES], mask[MS_SAKKE_SSV_BYTES];
    ms_err err = MS_ERR_INTERNAL;

    /* the sender's tables: g's, and those of P and Z without a peer's I */
    err = tables_need(kms, TAB_G | (comb_i == NULL ? TAB_COMB_P | TAB_COMB_Z : 0u));
    if (err != MS_OK)
        goto out;
    err = MS_ERR_INTERNAL;
    /* r = HashToIntegerRange(SSV || b, q) */
    if (ms_sakke_htir_q(r, ssv, MS_SAKKE_SSV_BYTES, id, id_len) != 0)
        goto out;
    if (comb_i != NULL) {
        err = ms_sakke_comb_mul_batched(&R, comb_i, r);
    } else {
        /* r a mod q: Montgomery multiplication by a R gives the plain product */
        ms_mont_to(am, a, &ms_mont_q);
        ms_mont_mul(ra, r, am, &ms_mont_q);
        err = ms_sakke_comb_mul2(&R, kms->comb_p, ra, kms->comb_z, r);
    }
    if (err != MS_OK)
        goto out;
    /* R is infinity only if r = 0 (probability 1/q) or I is (a = -z mod q) */
    err = jac_encode(sed, &Ra, &R, MS_ERR_ID_RANGE);
    if (err != MS_OK)
        goto out;

    /* H = SSV xor HashToIntegerRange(g^r, 2^128) */
    if (ms_pfp_table_pow(&gr, kms->g_table, r) != 0) {
        err = MS_ERR_RNG;
        goto out;
    }
    ms_fp_to_bytes(grb, &gr);
    if (ms_sakke_htir_mask(mask, grb, sizeof grb) != 0) {
        err = MS_ERR_INTERNAL;
        goto out;
    }
    for (int i = 0; i < MS_SAKKE_SSV_BYTES; i++)
        sed[MS_SAKKE_POINT_BYTES + i] = ssv[i] ^ mask[i];
    err = MS_OK;
out:
    ms_wipe(r, sizeof r);
    ms_wipe(ra, sizeof ra);
    ms_wipe(&R, sizeof R);
    ms_wipe(&gr, sizeof gr);
    ms_wipe(grb, sizeof grb);
    ms_wipe(mask, sizeof mask);
    return err;
}

ms_err ms_sakke_encap(const ms_sakke_kms *kms, uint8_t sed[MS_SAKKE_SED_BYTES],
                      const uint8_t *id, size_t id_len, const uint8_t *ssv, size_t ssv_len)
{
    if (kms == NULL || sed == NULL || ssv == NULL)
        return MS_ERR_ARG;
    if (ssv_len != MS_SAKKE_SSV_BYTES)
        return MS_ERR_SSV_SIZE;
    uint64_t a[MS_LIMBS];
    ms_err err = id_to_scalar(a, id, id_len);
    if (err != MS_OK)
        return err;
    return encap_core(kms, NULL, a, id, id_len, sed, ssv);
}

/* ---- decapsulation -------------------------------------------------------------------------- */

/*
 * Steps 3-6 of RFC 6508 6.2.2 once w = <R, K> is known: SSV = H xor mask(w),
 * r = HashToIntegerRange(SSV || b, q), TEST = [r]I == R.
 *
 * R's order is never checked, and need not be. TEST compares R with [r]I, which lies in
 * E[q], so it can only pass for an R in E[q] that is [r]I for the r derived from the
 * SSV: exactly a well-formed encapsulation. For any other R (of another order, or
 * simply not made for this identifier) the pairing produces some w, hence some wrong
 * SSV, which TEST rejects. Nothing branches on w, the SSV or r along the way: the
 * verdict is a mask, declassified only at the end, so a malformed R learns the attacker
 * nothing but "rejected".
 */
static ms_err decap_finish(uint8_t ssv_out[MS_SAKKE_SSV_BYTES], const ms_fp *w,
                           const uint8_t *sed, const ms_sakke_affine *R, const uint8_t *id,
                           size_t id_len, const ms_sakke_kms *kms, const ms_sakke_comb *comb_i,
                           const uint64_t a[MS_LIMBS])
{
    uint8_t wb[MS_SAKKE_FP_BYTES], ssv[MS_SAKKE_SSV_BYTES];
    uint64_t r[MS_LIMBS], ra[MS_LIMBS], am[MS_LIMBS];
    ms_sakke_jac T;
    ms_err err = MS_ERR_INTERNAL;

    ms_fp_to_bytes(wb, w);
    if (ms_sakke_htir_mask(ssv, wb, sizeof wb) != 0)
        goto out;
    for (int i = 0; i < MS_SAKKE_SSV_BYTES; i++)
        ssv[i] ^= sed[MS_SAKKE_POINT_BYTES + i];
    if (ms_sakke_htir_q(r, ssv, sizeof ssv, id, id_len) != 0)
        goto out;
    ms_err comb_err;
    if (comb_i != NULL) {
        comb_err = ms_sakke_comb_mul_batched(&T, comb_i, r);
    } else if (tables_wanted(kms, TAB_COMB_P | TAB_COMB_Z)) {
        ms_mont_to(am, a, &ms_mont_q);
        ms_mont_mul(ra, r, am, &ms_mont_q);
        comb_err = ms_sakke_comb_mul2(&T, kms->comb_p, ra, kms->comb_z, r);
    } else {
        /* without the combs: I (public, variable time), then the constant-time [r]I.
         * An identifier whose I is infinity gets the answer the combs would give, as
         * [r]I is then infinity, which no decoded R equals. */
        ms_sakke_affine I;
        comb_err = identity(kms, &I, a, false);
        if (comb_err == MS_ERR_ID_RANGE)
            comb_err = MS_ERR_DECAP_TEST;
        if (comb_err == MS_OK)
            ms_sakke_mul(&T, &I, r);
    }
    if (comb_err != MS_OK) {
        err = comb_err;
    } else if (declassify(ms_sakke_jac_eq_affine(&T, R))) {
        memcpy(ssv_out, ssv, sizeof ssv);
        err = MS_OK;
    } else {
        err = MS_ERR_DECAP_TEST;
    }
out:
    ms_wipe(wb, sizeof wb);
    ms_wipe(ssv, sizeof ssv);
    ms_wipe(r, sizeof r);
    ms_wipe(ra, sizeof ra);
    ms_wipe(&T, sizeof T);
    return err;
}

/* The pairing fails only when its final blinded inversion does: the generator failed,
 * or the Miller value was zero, which an R outside E[q] (of order 2, say) can cause.
 * Only then is R's order checked, to tell the two apart (R is public). */
static ms_err pairing_failure(const ms_sakke_affine *R)
{
    return ms_sakke_point_check_order_var(R) == MS_OK ? MS_ERR_RNG : MS_ERR_DECAP_TEST;
}

ms_err ms_sakke_decap(const ms_sakke_kms *kms, uint8_t *ssv, size_t ssv_len, const uint8_t *id,
                      size_t id_len, const uint8_t rsk[MS_SAKKE_POINT_BYTES], const uint8_t *sed,
                      size_t sed_len)
{
    if (kms == NULL || ssv == NULL || rsk == NULL || sed == NULL)
        return MS_ERR_ARG;
    if (ssv_len != MS_SAKKE_SSV_BYTES)
        return MS_ERR_SSV_SIZE;
    ms_wipe(ssv, ssv_len);
    uint64_t a[MS_LIMBS];
    ms_err err = id_to_scalar(a, id, id_len);
    if (err != MS_OK)
        return err;
    if (sed_len != MS_SAKKE_SED_BYTES)
        return MS_ERR_BAD_LENGTH;

    ms_sakke_affine R, K;
    ms_fp w;
    err = ms_sakke_point_decode(&R, sed);
    if (err != MS_OK)
        return err;
    /* The RSK is only decoded: the order check belongs to validation (a key period's
     * RSK is validated once). In the second argument of the pairing a component
     * outside E[q] would not change <R, K> anyway. */
    err = ms_sakke_point_decode(&K, rsk);
    if (err != MS_OK)
        goto out;
    if (ms_pairing(&w, &R, &K) != 0) {
        err = pairing_failure(&R);
        goto out;
    }
    err = decap_finish(ssv, &w, sed, &R, id, id_len, kms, NULL, a);
out:
    ms_wipe(&K, sizeof K);
    ms_wipe(&w, sizeof w);
    return err;
}

/* ---- peers ---------------------------------------------------------------------------------- */

ms_err ms_sakke_peer_new(ms_sakke_peer **out, const ms_sakke_kms *kms, const uint8_t *id,
                         size_t id_len)
{
    if (out == NULL || kms == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    uint64_t a[MS_LIMBS];
    ms_err err = id_to_scalar(a, id, id_len);
    if (err != MS_OK)
        return err;
    /* a peer exists to encapsulate to: g's table is built now, not at the first call */
    if ((err = tables_need(kms, TAB_G)) != MS_OK)
        return err;
    ms_sakke_affine I;
    err = identity(kms, &I, a, true);
    if (err != MS_OK)
        return err;
    ms_sakke_peer *peer = calloc(1, sizeof *peer);
    if (peer == NULL)
        return MS_ERR_NOMEM;
    peer->comb_i = comb_new(&I, &err);
    if (peer->comb_i == NULL) {
        free(peer);
        return err;
    }
    peer->kms = kms;
    peer->id_len = id_len;
    memcpy(peer->id, id, id_len);
    *out = peer;
    return MS_OK;
}

void ms_sakke_peer_free(ms_sakke_peer *peer)
{
    if (peer == NULL)
        return;
    free(peer->comb_i);
    free(peer);
}

size_t ms_sakke_peer_table_bytes(const ms_sakke_peer *peer)
{
    return peer == NULL ? 0 : ms_sakke_comb_size();
}

ms_err ms_sakke_peer_encap(const ms_sakke_peer *peer, uint8_t sed[MS_SAKKE_SED_BYTES],
                           const uint8_t *ssv, size_t ssv_len)
{
    if (peer == NULL || sed == NULL || ssv == NULL)
        return MS_ERR_ARG;
    if (ssv_len != MS_SAKKE_SSV_BYTES)
        return MS_ERR_SSV_SIZE;
    return encap_core(peer->kms, peer->comb_i, NULL, peer->id, peer->id_len, sed, ssv);
}

/* ---- prepared RSK --------------------------------------------------------------------------- */

ms_err ms_sakke_prepared_rsk_new(ms_sakke_prepared_rsk **out, const ms_sakke_kms *kms,
                                 const uint8_t *id, size_t id_len,
                                 const uint8_t rsk[MS_SAKKE_POINT_BYTES])
{
    if (out == NULL || kms == NULL || rsk == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    uint64_t a[MS_LIMBS];
    ms_err err = id_to_scalar(a, id, id_len);
    if (err != MS_OK)
        return err;

    ms_sakke_affine K, I;
    ms_fp w;
    ms_sakke_prepared_rsk *prep = calloc(1, sizeof *prep);
    if (prep == NULL)
        return MS_ERR_NOMEM;
    err = rsk_decode(&K, rsk);
    if (err != MS_OK)
        goto fail;
    err = identity(kms, &I, a, true);
    if (err != MS_OK)
        goto fail;

    prep->lines_size = ms_pairing_prepared_size();
    prep->lines = ms_secure_alloc(prep->lines_size);
    if (prep->lines == NULL) {
        err = MS_ERR_NOMEM;
        goto fail;
    }
    if (ms_pairing_prepare(prep->lines, &K) != 0) {
        err = MS_ERR_INTERNAL;
        goto fail;
    }
    /* Validation (RFC 6508 6.1.2) with the prepared lines themselves: <K, I> == g. */
    if (ms_pairing_prepared_eval(&w, prep->lines, &I) != 0) {
        err = MS_ERR_RNG;
        goto fail;
    }
    if (!declassify(fp_is_g(&w))) {
        err = MS_ERR_RSK_INVALID;
        goto fail;
    }
    prep->comb_i = comb_new(&I, &err);
    if (prep->comb_i == NULL)
        goto fail;
    prep->id_len = id_len;
    memcpy(prep->id, id, id_len);
    ms_wipe(&K, sizeof K);
    ms_wipe(&w, sizeof w);
    *out = prep;
    return MS_OK;
fail:
    ms_wipe(&K, sizeof K);
    ms_wipe(&w, sizeof w);
    ms_sakke_prepared_rsk_free(prep);
    return err;
}

void ms_sakke_prepared_rsk_free(ms_sakke_prepared_rsk *prep)
{
    if (prep == NULL)
        return;
    ms_secure_free(prep->lines, prep->lines_size);
    free(prep->comb_i);
    ms_wipe(prep, sizeof *prep);
    free(prep);
}

size_t ms_sakke_prepared_rsk_table_bytes(const ms_sakke_prepared_rsk *prep)
{
    return prep == NULL ? 0 : prep->lines_size + ms_sakke_comb_size();
}

ms_err ms_sakke_prepared_rsk_decap(const ms_sakke_prepared_rsk *prep, uint8_t *ssv,
                                   size_t ssv_len, const uint8_t *sed, size_t sed_len)
{
    if (prep == NULL || ssv == NULL || sed == NULL)
        return MS_ERR_ARG;
    if (ssv_len != MS_SAKKE_SSV_BYTES)
        return MS_ERR_SSV_SIZE;
    ms_wipe(ssv, ssv_len);
    if (sed_len != MS_SAKKE_SED_BYTES)
        return MS_ERR_BAD_LENGTH;
    ms_sakke_affine R;
    ms_fp w;
    ms_err err = ms_sakke_point_decode(&R, sed);
    if (err != MS_OK)
        return err;
    /* <K, R> = <R, K> (see pairing.h); TEST covers R outside E[q] as in decap_finish */
    if (ms_pairing_prepared_eval(&w, prep->lines, &R) != 0) {
        ms_wipe(&w, sizeof w);
        return pairing_failure(&R);
    }
    err = decap_finish(ssv, &w, sed, &R, prep->id, prep->id_len, NULL, prep->comb_i, NULL);
    ms_wipe(&w, sizeof w);
    return err;
}
