/*
 * ECCSI (RFC 6507) on NIST P-256 with SHA-256, the curve and hash RFC 6509 fixes for
 * MIKEY-SAKKE.
 *
 * Group arithmetic is our own (p256.c): OpenSSL's EC_POINT calls cost more per call
 * than the arithmetic of a verification. A secret scalar is only ever multiplied alone
 * by G, by the constant-time comb; verifying and the public half of SSK validation use
 * the variable-time multi-scalar multiplication. A first verification from a signer is
 * one such multiplication, J = [s HE]G + [s r HS]PVT + [s r]KPAK, with tables of KPAK's
 * multiples kept in the verifier and of the signer's PVT in its cache slot; J's x is
 * compared with r without an inversion.
 *
 * Arithmetic mod q on secrets is p256.c's constant-time Montgomery code when signing,
 * BIGNUMs flagged BN_FLG_CONSTTIME when issuing. The one signing inversion,
 * (HE + r*SSK)^-1, is blinded: the secret is multiplied by a uniform
 * non-zero b and the product, independent of the secret, is inverted in variable time
 * (the divstep GCD of mont.c, inv_mod_q_var). b comes from OpenSSL's RAND_priv_bytes,
 * not the caller's generator, so signing still draws exactly one 32-octet j from it,
 * as RFC 6507 Appendix A does.
 *
 * Every public function leaves OpenSSL's error queue as it found it.
 */
#include "eccsi_internal.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ct.h"
#include "mont.h"
#include "p256.h"
#include "rng.h"
#include "secmem.h"

__extension__ typedef unsigned __int128 u128;

#define SCALAR_BYTES MS_ECCSI_SCALAR_BYTES
#define POINT_BYTES MS_ECCSI_POINT_BYTES

/* A drawn scalar outside [1, q-1] is drawn again. q is within 2^224 of 2^256, so that
 * happens about once in 2^32 draws: a generator that fails this often is broken. */
#define MAX_DRAWS 64

/* P-256 (FIPS 186-3, RFC 6507 Appendix A): group order, base point. */
static const uint8_t p256_q[SCALAR_BYTES] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51};
static const uint8_t p256_g[POINT_BYTES] = {
    0x04, 0x6B, 0x17, 0xD1, 0xF2, 0xE1, 0x2C, 0x42, 0x47, 0xF8, 0xBC, 0xE6, 0xE5, 0x63, 0xA4,
    0x40, 0xF2, 0x77, 0x03, 0x7D, 0x81, 0x2D, 0xEB, 0x33, 0xA0, 0xF4, 0xA1, 0x39, 0x45, 0xD8,
    0x98, 0xC2, 0x96, 0x4F, 0xE3, 0x42, 0xE2, 0xFE, 0x1A, 0x7F, 0x9B, 0x8E, 0xE7, 0xEB, 0x4A,
    0x7C, 0x0F, 0x9E, 0x16, 0x2B, 0xCE, 0x33, 0x57, 0x6B, 0x31, 0x5E, 0xCE, 0xCB, 0xB6, 0x40,
    0x68, 0x37, 0xBF, 0x51, 0xF5};

/* ---- small helpers ---------------------------------------------------------------- */

/* All ones if the big-endian a is in [1, q-1]; constant time, so a may be secret. */
static uint64_t scalar_in_range(const uint8_t a[SCALAR_BYTES])
{
    uint64_t borrow = 0, any = 0;
    for (size_t i = SCALAR_BYTES; i-- > 0;) {
        uint64_t d = (uint64_t)a[i] - p256_q[i] - borrow;
        borrow = d >> 63; /* a word that went below zero wrapped around */
        any |= a[i];
    }
    return ms_ct_mask(borrow) & ms_ct_nonzero(any);
}

/* All ones if any of the n octets at a is non-zero; constant time. */
static uint64_t bytes_nonzero(const uint8_t *a, size_t n)
{
    uint64_t any = 0;
    for (size_t i = 0; i < n; i++)
        any |= a[i];
    return ms_ct_nonzero(any);
}

/* Turns a mask computed from secrets into a branch condition. Only used where the
 * outcome is public anyway: a rejected draw, a failed validation. */
static int declassify(uint64_t mask)
{
    MS_CT_PUBLIC(&mask, sizeof mask);
    return mask != 0;
}

/* q as a BIGNUM from ctx (between BN_CTX_start and BN_CTX_end); NULL if out of memory. */
static BIGNUM *bn_order(BN_CTX *bn)
{
    BIGNUM *q = BN_CTX_get(bn);
    return q != NULL && BN_bin2bn(p256_q, SCALAR_BYTES, q) != NULL ? q : NULL;
}

/* A BIGNUM for a secret, flagged so OpenSSL takes its constant-time paths. */
static BIGNUM *bn_secret_new(void)
{
    BIGNUM *b = BN_secure_new();
    if (b != NULL)
        BN_set_flags(b, BN_FLG_CONSTTIME);
    return b;
}

static ms_err bn_load(BIGNUM *b, const uint8_t a[SCALAR_BYTES])
{
    return BN_bin2bn(a, SCALAR_BYTES, b) != NULL ? MS_OK : MS_ERR_NOMEM;
}

static ms_err bn_store(uint8_t out[SCALAR_BYTES], const BIGNUM *b)
{
    return BN_bn2binpad(b, out, SCALAR_BYTES) == SCALAR_BYTES ? MS_OK : MS_ERR_INTERNAL;
}

/* Draws a scalar uniform in [1, q-1]: 32 octets per draw, drawn again (not reduced)
 * when out of range, so a fixed generator yields exactly the value it was given. */
static ms_err draw_scalar(const ms_rng *rng, uint8_t out[SCALAR_BYTES])
{
    for (int i = 0; i < MAX_DRAWS; i++) {
        ms_err err = ms_rng_fill(rng, out, SCALAR_BYTES);
        if (err != MS_OK)
            return err;
        if (declassify(scalar_in_range(out)))
            return MS_OK;
    }
    ms_wipe(out, SCALAR_BYTES);
    return MS_ERR_RNG;
}

/* ---- points ----------------------------------------------------------------------- */

/* Decodes 0x04 || x || y: MS_ERR_BAD_ENCODING for another prefix or a coordinate not
 * below p, MS_ERR_POINT_NOT_ON_CURVE off the curve. P-256 has cofactor 1 and infinity
 * has no such encoding, so a point that decodes has order q. */
static ms_err point_decode(ms_p256_affine *pt, const uint8_t in[POINT_BYTES])
{
    return ms_p256_decode(pt, in);
}

/* A KPAK that does not decode is reported as such, whatever was wrong with it. */
static ms_err kpak_decode(ms_p256_affine *pt, const uint8_t in[POINT_BYTES])
{
    ms_err err = point_decode(pt, in);
    if (err == MS_ERR_BAD_ENCODING || err == MS_ERR_POINT_NOT_ON_CURVE)
        err = MS_ERR_KPAK_INVALID;
    return err;
}

/* out = [k]G for a secret k in [1, q-1] (constant time; never infinity). The result is
 * a public key (KPAK, PVT, J), so it is declassified. */
static void mul_g_secret(uint8_t out[POINT_BYTES], const uint8_t k[SCALAR_BYTES])
{
    ms_p256_jacobian j;
    ms_p256_affine a;
    ms_p256_mul_g(&j, k);
    ms_p256_to_affine(&a, &j);
    ms_p256_encode(out, &a);
    MS_CT_PUBLIC(out, POINT_BYTES);
    ms_wipe(&j, sizeof j);
    ms_wipe(&a, sizeof a);
}

/* ---- hashes ----------------------------------------------------------------------- */

typedef struct hash_part {
    const uint8_t *data;
    size_t len;
} hash_part;

/* SHA-256 fetched once per process: with EVP_sha256(), OpenSSL 3 fetches the
 * implementation again at every digest's initialisation, which costs almost as much as
 * hashing HS's four blocks. EVP_sha256() remains if the fetch fails. */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_fetched;

static void sha256_fetch(void)
{
    ERR_set_mark();
    sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
    ERR_pop_to_mark();
}

static const EVP_MD *sha256_md(void)
{
    pthread_once(&sha256_once, sha256_fetch);
    return sha256_fetched != NULL ? sha256_fetched : EVP_sha256();
}

static ms_err sha256_parts(uint8_t out[SCALAR_BYTES], const hash_part *parts, size_t n)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL)
        return MS_ERR_NOMEM;
    ms_err err = MS_ERR_INTERNAL;
    unsigned int len = 0;
    if (EVP_DigestInit_ex(md, sha256_md(), NULL) != 1)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (parts[i].len > 0 && EVP_DigestUpdate(md, parts[i].data, parts[i].len) != 1)
            goto out;
    if (EVP_DigestFinal_ex(md, out, &len) != 1 || len != SCALAR_BYTES)
        goto out;
    err = MS_OK;
out:
    EVP_MD_CTX_free(md);
    return err;
}

/* HS = hash(G || KPAK || ID || PVT) (RFC 6507 5.1.1 step 3). */
static ms_err hash_hs(uint8_t hs[SCALAR_BYTES], const uint8_t kpak[POINT_BYTES],
                      const uint8_t *id, size_t id_len, const uint8_t pvt[POINT_BYTES])
{
    const hash_part parts[] = {
        {p256_g, POINT_BYTES}, {kpak, POINT_BYTES}, {id, id_len}, {pvt, POINT_BYTES}};
    return sha256_parts(hs, parts, sizeof parts / sizeof parts[0]);
}

/* HE = hash(HS || r || M) (RFC 6507 5.2.1 step 3). */
static ms_err hash_he(uint8_t he[SCALAR_BYTES], const uint8_t hs[SCALAR_BYTES],
                      const uint8_t r[SCALAR_BYTES], const uint8_t *msg, size_t msg_len)
{
    const hash_part parts[] = {{hs, SCALAR_BYTES}, {r, SCALAR_BYTES}, {msg, msg_len}};
    return sha256_parts(he, parts, sizeof parts / sizeof parts[0]);
}

/* ---- KMS side --------------------------------------------------------------------- */

ms_err ms_eccsi_master_public(uint8_t kpak[MS_ECCSI_POINT_BYTES],
                              const uint8_t ksak[MS_ECCSI_SCALAR_BYTES])
{
    if (kpak == NULL || ksak == NULL)
        return MS_ERR_ARG;
    if (!declassify(scalar_in_range(ksak)))
        return MS_ERR_SCALAR_RANGE;

    mul_g_secret(kpak, ksak);
    return MS_OK;
}

ms_err ms_eccsi_master_keygen(uint8_t ksak[MS_ECCSI_SCALAR_BYTES],
                              uint8_t kpak[MS_ECCSI_POINT_BYTES], const ms_rng *rng)
{
    if (ksak == NULL || kpak == NULL)
        return MS_ERR_ARG;
    ms_err err = draw_scalar(rng, ksak);
    if (err == MS_OK)
        err = ms_eccsi_master_public(kpak, ksak);
    if (err != MS_OK)
        ms_wipe(ksak, SCALAR_BYTES);
    return err;
}

static ms_err ssk_issue(BN_CTX *bn, uint8_t ssk[SCALAR_BYTES],
                        uint8_t pvt[POINT_BYTES], const uint8_t ksak[SCALAR_BYTES],
                        const uint8_t kpak[POINT_BYTES], const uint8_t *id, size_t id_len,
                        const ms_rng *rng)
{
    uint8_t v[SCALAR_BYTES], hs[SCALAR_BYTES];
    ms_err err = MS_ERR_NOMEM;
    ms_p256_affine kpak_pt;
    BN_CTX_start(bn);
    const BIGNUM *q = bn_order(bn);
    BIGNUM *h = BN_new();
    BIGNUM *vb = bn_secret_new();
    BIGNUM *kb = bn_secret_new();
    BIGNUM *t = bn_secret_new();
    if (q == NULL || h == NULL || vb == NULL || kb == NULL || t == NULL)
        goto out;
    if ((err = kpak_decode(&kpak_pt, kpak)) != MS_OK)
        goto out;
    if ((err = bn_load(kb, ksak)) != MS_OK)
        goto out;

    for (int attempt = 0; attempt < MAX_DRAWS; attempt++) {
        if ((err = draw_scalar(rng, v)) != MS_OK)
            goto out;
        mul_g_secret(pvt, v);
        if ((err = hash_hs(hs, kpak, id, id_len, pvt)) != MS_OK)
            goto out;
        err = MS_ERR_INTERNAL;
        if (BN_bin2bn(hs, SCALAR_BYTES, h) == NULL || BN_nnmod(h, h, q, bn) != 1)
            goto out;
        if (BN_is_zero(h)) /* RFC 6507 5.1.1 step 5: HS = 0 mod q, restart */
            continue;
        /* SSK = KSAK + HS * v mod q */
        if ((err = bn_load(vb, v)) != MS_OK)
            goto out;
        err = MS_ERR_INTERNAL;
        if (BN_mod_mul(t, h, vb, q, bn) != 1 || BN_mod_add_quick(t, t, kb, q) != 1)
            goto out;
        if ((err = bn_store(ssk, t)) != MS_OK)
            goto out;
        if (declassify(bytes_nonzero(ssk, SCALAR_BYTES))) {
            err = MS_OK;
            goto out;
        }
        /* SSK = 0: step 5 again */
    }
    err = MS_ERR_RNG;
out:
    ms_wipe(v, sizeof v);
    BN_clear_free(t);
    BN_clear_free(kb);
    BN_clear_free(vb);
    BN_free(h);
    BN_CTX_end(bn);
    return err;
}

ms_err ms_eccsi_ssk_issue(uint8_t ssk[MS_ECCSI_SCALAR_BYTES], uint8_t pvt[MS_ECCSI_POINT_BYTES],
                          const uint8_t ksak[MS_ECCSI_SCALAR_BYTES],
                          const uint8_t kpak[MS_ECCSI_POINT_BYTES], const uint8_t *id,
                          size_t id_len, const ms_rng *rng)
{
    if (ssk == NULL || pvt == NULL || ksak == NULL || kpak == NULL || id == NULL || id_len == 0)
        return MS_ERR_ARG;
    if (!declassify(scalar_in_range(ksak)))
        return MS_ERR_SCALAR_RANGE;

    ERR_set_mark();
    ms_err err = MS_ERR_NOMEM;
    BN_CTX *bn = BN_CTX_secure_new();
    if (bn != NULL)
        err = ssk_issue(bn, ssk, pvt, ksak, kpak, id, id_len, rng);
    if (err != MS_OK)
        ms_wipe(ssk, SCALAR_BYTES);
    BN_CTX_free(bn);
    ERR_pop_to_mark();
    return err;
}

/* RFC 6507 5.1.2: PVT on the curve, HS, and KPAK == [SSK]G - [HS]PVT. The secret SSK
 * is only multiplied alone by G (constant time). With c and d below 2^128 such that
 * c = +-d HS mod q (a lattice reduction of HS, public), the check becomes
 * [d SSK]G == [d]KPAK + [c](+-PVT): the public side takes 128 doublings instead of 256.
 * The two sides are compared in constant time, only the verdict being declassified. */
static ms_err ssk_check(uint8_t hs[SCALAR_BYTES], const uint8_t kpak[POINT_BYTES],
                        const uint8_t *id, size_t id_len, const uint8_t ssk[SCALAR_BYTES],
                        const uint8_t pvt[POINT_BYTES])
{
    ms_p256_affine pts[2]; /* KPAK, +-PVT */
    ms_p256_table tabs[2];
    ms_p256_jacobian lhs, rhs;
    uint8_t c[SCALAR_BYTES], d[SCALAR_BYTES], dssk[SCALAR_BYTES];
    ms_err err;
    if ((err = kpak_decode(&pts[0], kpak)) != MS_OK)
        return err;
    if ((err = point_decode(&pts[1], pvt)) != MS_OK)
        return err;
    if ((err = hash_hs(hs, kpak, id, id_len, pvt)) != MS_OK)
        return err;
    if (!declassify(scalar_in_range(ssk)))
        return MS_ERR_SCALAR_RANGE;

    /* [d]KPAK + [c](+-PVT), public */
    if (ms_p256_half_scalars_var(c, d, hs))
        ms_p256_negate(&pts[1], &pts[1]);
    ms_p256_tables_var(tabs, pts, 2, 4);
    const ms_p256_table *tp[2] = {&tabs[0], &tabs[1]};
    const uint8_t *kp[2] = {d, c};
    ms_p256_mul_var(&rhs, NULL, tp, kp, 2);

    /* [d SSK mod q]G: d SSK is non-zero mod q, as both factors are */
    ms_p256_scalar_mul(dssk, d, ssk);
    ms_p256_mul_g(&lhs, dssk);
    uint64_t same = ms_p256_equal_jacobian(&lhs, &rhs); /* rhs at infinity: not equal */
    ms_wipe(&lhs, sizeof lhs);
    ms_wipe(dssk, sizeof dssk);
    return declassify(same) ? MS_OK : MS_ERR_SSK_INVALID;
}

ms_err ms_eccsi_ssk_validate(uint8_t hs[MS_ECCSI_SCALAR_BYTES],
                             const uint8_t kpak[MS_ECCSI_POINT_BYTES], const uint8_t *id,
                             size_t id_len, const uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                             const uint8_t pvt[MS_ECCSI_POINT_BYTES])
{
    if (kpak == NULL || id == NULL || id_len == 0 || ssk == NULL || pvt == NULL)
        return MS_ERR_ARG;

    ERR_set_mark();
    uint8_t h[SCALAR_BYTES];
    ms_err err = ssk_check(h, kpak, id, id_len, ssk, pvt);
    if (err == MS_OK && hs != NULL)
        memcpy(hs, h, SCALAR_BYTES);
    ERR_pop_to_mark();
    return err;
}

/* ---- variable-time inversion mod q, for blinded values only ------------------------ */

/* Numbers mod q as 4 little-endian 64-bit limbs. */
static void u256_from_be(uint64_t r[4], const uint8_t in[SCALAR_BYTES])
{
    for (size_t i = 0; i < 4; i++) {
        uint64_t w = 0;
        for (size_t k = 0; k < 8; k++)
            w = (w << 8) | in[SCALAR_BYTES - 8 * (i + 1) + k];
        r[i] = w;
    }
}

static void u256_to_be(uint8_t out[SCALAR_BYTES], const uint64_t a[4])
{
    for (size_t i = 0; i < 4; i++)
        for (size_t k = 0; k < 8; k++)
            out[SCALAR_BYTES - 8 * (i + 1) + k] = (uint8_t)(a[i] >> (56 - 8 * k));
}

/* r = a^-1 mod q for a in [1, q-1], by the variable-time extended GCD behind
 * ms_mont_inv_plain_var (batches of 62 divsteps, on 5 limbs for a 256-bit modulus).
 * Its time depends on a: it is only ever given a uniformly blinded value. */
static void inv_mod_q_var(uint64_t r[4], const uint64_t a[4])
{
    ms_mont qmod;
    memset(&qmod, 0, sizeof qmod);
    uint64_t x[MS_LIMBS] = {0};
    u256_from_be(qmod.m, p256_q);
    memcpy(x, a, 4 * sizeof a[0]);
    ms_mont_inv_plain_var(x, x, &qmod);
    memcpy(r, x, 4 * sizeof r[0]);
}

/* out = in^-1 mod q for big-endian in in [1, q-1], public (blinded). MS_ERR_INTERNAL
 * for in = 0, which would never end the loop. */
static ms_err inv_mod_q_blinded(uint8_t out[SCALAR_BYTES], const uint8_t in[SCALAR_BYTES])
{
    uint64_t a[4], r[4];
    u256_from_be(a, in);
    if ((a[0] | a[1] | a[2] | a[3]) == 0)
        return MS_ERR_INTERNAL;
    inv_mod_q_var(r, a);
    u256_to_be(out, r);
    return MS_OK;
}

/* ---- signer ----------------------------------------------------------------------- */

struct ms_eccsi_signer {
    uint8_t *ssk;        /* SCALAR_BYTES from ms_secure_alloc */
    uint8_t hs[SCALAR_BYTES];
    uint8_t pvt[POINT_BYTES];
};

void ms_eccsi_signer_free(ms_eccsi_signer *signer)
{
    if (signer == NULL)
        return;
    ms_secure_free(signer->ssk, SCALAR_BYTES);
    ms_wipe(signer, sizeof *signer);
    free(signer);
}

static ms_err signer_init(ms_eccsi_signer *s, const uint8_t kpak[POINT_BYTES],
                          const uint8_t *id, size_t id_len, const uint8_t ssk[SCALAR_BYTES],
                          const uint8_t pvt[POINT_BYTES])
{
    s->ssk = ms_secure_alloc(SCALAR_BYTES);
    if (s->ssk == NULL)
        return MS_ERR_NOMEM;
    ms_err err = ssk_check(s->hs, kpak, id, id_len, ssk, pvt);
    if (err != MS_OK)
        return err;
    memcpy(s->ssk, ssk, SCALAR_BYTES);
    memcpy(s->pvt, pvt, POINT_BYTES);
    return MS_OK;
}

ms_err ms_eccsi_signer_new(ms_eccsi_signer **out, const uint8_t kpak[MS_ECCSI_POINT_BYTES],
                           const uint8_t *id, size_t id_len,
                           const uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                           const uint8_t pvt[MS_ECCSI_POINT_BYTES])
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    if (kpak == NULL || id == NULL || id_len == 0 || ssk == NULL || pvt == NULL)
        return MS_ERR_ARG;

    ERR_set_mark();
    ms_err err = MS_ERR_NOMEM;
    ms_eccsi_signer *s = calloc(1, sizeof *s);
    if (s != NULL)
        err = signer_init(s, kpak, id, id_len, ssk, pvt);
    if (err == MS_OK) {
        *out = s;
    } else {
        ms_eccsi_signer_free(s);
    }
    ERR_pop_to_mark();
    return err;
}

/* A blinding factor uniform in [1, q-1], from OpenSSL's private generator rather than
 * the caller's: the caller's generator yields j alone, as in RFC 6507 Appendix A. */
static ms_err draw_blind(uint8_t out[SCALAR_BYTES])
{
    for (int i = 0; i < MAX_DRAWS; i++) {
        if (RAND_priv_bytes(out, SCALAR_BYTES) != 1)
            break;
        if (declassify(scalar_in_range(out)))
            return MS_OK;
    }
    ms_wipe(out, SCALAR_BYTES);
    return MS_ERR_RNG;
}

/* RFC 6507 5.2.1. Arithmetic mod q on secrets is p256.c's constant-time Montgomery
 * multiplication and addition. */
static ms_err sign(const ms_eccsi_signer *signer, uint8_t sig[MS_ECCSI_SIG_BYTES],
                   const uint8_t *msg, size_t msg_len, const ms_rng *rng,
                   ms_eccsi_trace *trace)
{
    uint8_t jb[SCALAR_BYTES], tb[SCALAR_BYTES], he[SCALAR_BYTES], sb[SCALAR_BYTES];
    uint8_t bb[SCALAR_BYTES], ub[SCALAR_BYTES], bj[SCALAR_BYTES], heq[SCALAR_BYTES];
    uint8_t jpt[POINT_BYTES];
    const uint8_t *r = jpt + 1; /* r = Jx */
    ms_err err = MS_ERR_RNG;

    for (int attempt = 0; attempt < MAX_DRAWS; attempt++) {
        if ((err = draw_scalar(rng, jb)) != MS_OK)
            goto out;
        mul_g_secret(jpt, jb);
        /* Jx is below p, and p > q. Our verifier (like ECDSA's) wants r in [1, q-1],
         * so the rare J with Jx >= q (about 2^-128) is drawn again. */
        if (!declassify(scalar_in_range(r)))
            continue;
        if ((err = hash_he(he, signer->hs, r, msg, msg_len)) != MS_OK)
            goto out;
        /* t = HE + r * SSK mod q (HE is public, reduced below q first) */
        ms_p256_scalar_reduce_var(heq, he);
        ms_p256_scalar_mul(tb, r, signer->ssk);
        ms_p256_scalar_add(tb, tb, heq);
        if (!declassify(bytes_nonzero(tb, SCALAR_BYTES)))
            continue; /* step 4: t = 0, draw j again */
        /* s = t^-1 * j mod q, inverted blinded: u = t*b for a fresh secret b uniform in
         * [1, q-1] is uniform in [1, q-1] whatever t is, so the variable-time inversion
         * of u says nothing about t; then s = u^-1 * (b*j). s is below q < 2^256, so
         * step 6 keeps s = s'. */
        if ((err = draw_blind(bb)) != MS_OK)
            goto out;
        ms_p256_scalar_mul(ub, tb, bb);
        ms_p256_scalar_mul(bj, bb, jb);
        MS_CT_PUBLIC(ub, sizeof ub); /* uniform in [1, q-1] whatever t is */
        if ((err = inv_mod_q_blinded(ub, ub)) != MS_OK)
            goto out;
        ms_p256_scalar_mul(sb, ub, bj);
        MS_CT_PUBLIC(sb, sizeof sb);

        memcpy(sig, r, SCALAR_BYTES);
        memcpy(sig + SCALAR_BYTES, sb, SCALAR_BYTES);
        memcpy(sig + 2 * SCALAR_BYTES, signer->pvt, POINT_BYTES);
        if (trace != NULL) {
            memcpy(trace->hs, signer->hs, SCALAR_BYTES);
            memcpy(trace->he, he, SCALAR_BYTES);
            memcpy(trace->r, r, SCALAR_BYTES);
            memcpy(trace->s, sb, SCALAR_BYTES);
            memcpy(trace->j, jpt, POINT_BYTES);
        }
        err = MS_OK;
        goto out;
    }
    err = MS_ERR_RNG;
out:
    ms_wipe(jb, sizeof jb);
    ms_wipe(tb, sizeof tb);
    ms_wipe(bb, sizeof bb);
    ms_wipe(ub, sizeof ub);
    ms_wipe(bj, sizeof bj);
    return err;
}

ms_err ms_eccsi_sign(const ms_eccsi_signer *signer, uint8_t sig[MS_ECCSI_SIG_BYTES],
                     const uint8_t *msg, size_t msg_len, const ms_rng *rng,
                     ms_eccsi_trace *trace)
{
    if (signer == NULL || sig == NULL || (msg == NULL && msg_len > 0))
        return MS_ERR_ARG;
    if (trace != NULL)
        memset(trace, 0, sizeof *trace);

    ERR_set_mark();
    ms_err err = sign(signer, sig, msg, msg_len, rng, trace);
    if (err != MS_OK) {
        memset(sig, 0, MS_ECCSI_SIG_BYTES);
        if (trace != NULL)
            memset(trace, 0, sizeof *trace);
    }
    ERR_pop_to_mark();
    return err;
}

/* ---- verifier --------------------------------------------------------------------- */

/* A signer seen before: what RFC 6507 5.2.2 steps 1 and 2 derive from ID and PVT, and
 * the table of PVT's multiples. The first verification folds Y = [HS]PVT + KPAK (step 4)
 * into J; the second computes Y and its table, which the later ones use. */
typedef struct signer_slot {
    uint8_t *id; /* NULL: the slot is empty */
    size_t id_len;
    uint8_t pvt[POINT_BYTES];
    uint8_t hs[SCALAR_BYTES];
    ms_p256_affine pvt_pt;
    ms_p256_table pvt_tab;
    int y_state; /* 0: not computed yet; 1: y and y_tab hold Y; -1: Y is infinity */
    uint8_t y[POINT_BYTES];
    ms_p256_table y_tab;
} signer_slot;

struct ms_eccsi_verifier {
    uint8_t kpak[POINT_BYTES];
    ms_p256_affine kpak_pt;
    ms_p256_table kpak_tab;
    signer_slot slots[MS_ECCSI_VERIFIER_CACHE_SLOTS];
    size_t next_slot; /* round robin: the next slot to replace */
    ms_eccsi_cache_stats stats;
};

static void slot_clear(signer_slot *slot)
{
    free(slot->id);
    memset(slot, 0, sizeof *slot);
}

void ms_eccsi_verifier_free(ms_eccsi_verifier *verifier)
{
    if (verifier == NULL)
        return;
    for (size_t i = 0; i < MS_ECCSI_VERIFIER_CACHE_SLOTS; i++)
        slot_clear(&verifier->slots[i]);
    free(verifier);
}

ms_err ms_eccsi_verifier_new(ms_eccsi_verifier **out, const uint8_t kpak[MS_ECCSI_POINT_BYTES])
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    if (kpak == NULL)
        return MS_ERR_ARG;

    ms_eccsi_verifier *v = calloc(1, sizeof *v);
    if (v == NULL)
        return MS_ERR_NOMEM;
    ms_err err = kpak_decode(&v->kpak_pt, kpak);
    if (err != MS_OK) {
        free(v);
        return err;
    }
    ms_p256_table_var(&v->kpak_tab, &v->kpak_pt);
    memcpy(v->kpak, kpak, POINT_BYTES);
    *out = v;
    return MS_OK;
}

ms_eccsi_cache_stats ms_eccsi_verifier_cache_stats(const ms_eccsi_verifier *verifier)
{
    return verifier->stats;
}

static signer_slot *slot_find(ms_eccsi_verifier *v, const uint8_t *id, size_t id_len,
                              const uint8_t pvt[POINT_BYTES])
{
    for (size_t i = 0; i < MS_ECCSI_VERIFIER_CACHE_SLOTS; i++) {
        signer_slot *slot = &v->slots[i];
        if (slot->id != NULL && slot->id_len == id_len && memcmp(slot->id, id, id_len) == 0 &&
            memcmp(slot->pvt, pvt, POINT_BYTES) == 0)
            return slot;
    }
    return NULL;
}

/* Steps 1 and 2 for a signer not in the cache, into the (cleared) slot; the slot is
 * keyed only once all succeeded. */
static ms_err slot_fill(ms_eccsi_verifier *v, signer_slot *slot, const uint8_t *id,
                        size_t id_len, const uint8_t pvt[POINT_BYTES])
{
    uint8_t *id_copy = malloc(id_len);
    if (id_copy == NULL)
        return MS_ERR_NOMEM;
    ms_err err = point_decode(&slot->pvt_pt, pvt);
    if (err == MS_OK)
        err = hash_hs(slot->hs, v->kpak, id, id_len, pvt);
    if (err != MS_OK) {
        free(id_copy);
        slot_clear(slot);
        return err;
    }
    ms_p256_table_var(&slot->pvt_tab, &slot->pvt_pt);
    memcpy(id_copy, id, id_len);
    memcpy(slot->pvt, pvt, POINT_BYTES);
    slot->id = id_copy;
    slot->id_len = id_len;
    return MS_OK;
}

/* Y = [HS]PVT + KPAK (public), into the slot, with its table. */
static void slot_compute_y(const ms_eccsi_verifier *v, signer_slot *slot)
{
    const ms_p256_table *tab = &slot->pvt_tab;
    const uint8_t *k = slot->hs;
    ms_p256_jacobian yj;
    ms_p256_affine ya;
    ms_p256_mul_var(&yj, NULL, &tab, &k, 1);
    ms_p256_add_affine_var(&yj, &yj, &v->kpak_pt);
    if (!ms_p256_to_affine_var(&ya, &yj)) {
        slot->y_state = -1;
        memset(slot->y, 0, POINT_BYTES);
        return;
    }
    ms_p256_encode(slot->y, &ya);
    ms_p256_table_var(&slot->y_tab, &ya);
    slot->y_state = 1;
}

/* RFC 6507 5.2.2 on a signature of the right length. */
static ms_err verify(ms_eccsi_verifier *v, const uint8_t *id, size_t id_len, const uint8_t *msg,
                     size_t msg_len, const uint8_t sig[MS_ECCSI_SIG_BYTES],
                     ms_eccsi_trace *trace)
{
    const uint8_t *r = sig, *s = sig + SCALAR_BYTES, *pvt = sig + 2 * SCALAR_BYTES;
    uint8_t he[SCALAR_BYTES];
    ms_err err;

    signer_slot *slot = slot_find(v, id, id_len, pvt);
    if (slot != NULL) {
        v->stats.hits++;
        if (slot->y_state == 0)
            slot_compute_y(v, slot);
    } else {
        v->stats.misses++;
        slot = &v->slots[v->next_slot];
        v->next_slot = (v->next_slot + 1) % MS_ECCSI_VERIFIER_CACHE_SLOTS;
        slot_clear(slot);
        if ((err = slot_fill(v, slot, id, id_len, pvt)) != MS_OK)
            return err;
    }
    if ((err = hash_he(he, slot->hs, r, msg, msg_len)) != MS_OK)
        return err;
    if (trace != NULL) {
        memcpy(trace->hs, slot->hs, SCALAR_BYTES);
        memcpy(trace->he, he, SCALAR_BYTES);
        if (slot->y_state == 0) /* first sight of this signer: Y only for the trace */
            slot_compute_y(v, slot);
        memcpy(trace->y, slot->y, POINT_BYTES); /* zero if Y is infinity */
    }
    /* r and s are what a signer computes mod q; anything else is not a signature */
    if (!scalar_in_range(r) || !scalar_in_range(s))
        return MS_ERR_SIGNATURE;

    /* J = [s]([HE]G + [r]Y) = [s HE]G + [s r]Y, or with Y not known yet, one triple
     * multiplication [s HE]G + [s r HS]PVT + [s r]KPAK sharing its doublings (public
     * values, variable time) */
    uint8_t n[SCALAR_BYTES], m[SCALAR_BYTES], mh[SCALAR_BYTES];
    ms_p256_scalar_mul_var(n, s, he);
    ms_p256_scalar_mul_var(m, s, r);
    ms_p256_jacobian j;
    if (slot->y_state == 1) {
        const ms_p256_table *tab = &slot->y_tab;
        const uint8_t *k = m;
        ms_p256_mul_var(&j, n, &tab, &k, 1);
    } else {
        ms_p256_scalar_mul_var(mh, m, slot->hs);
        const ms_p256_table *tabs[2] = {&slot->pvt_tab, &v->kpak_tab};
        const uint8_t *ks[2] = {mh, m};
        ms_p256_mul_var(&j, n, tabs, ks, 2);
    }
    if (trace != NULL) {
        ms_p256_affine ja;
        if (ms_p256_to_affine_var(&ja, &j))
            ms_p256_encode(trace->j, &ja);
    }
    /* Step 6: Jx == r mod p and Jx != 0. r is in [1, q-1] and q < p, so r mod p = r,
     * and Jx = r is non-zero; J at infinity has no x and fails. */
    return ms_p256_x_equals_var(&j, r) ? MS_OK : MS_ERR_SIGNATURE;
}

ms_err ms_eccsi_verify(ms_eccsi_verifier *verifier, const uint8_t *id, size_t id_len,
                       const uint8_t *msg, size_t msg_len, const uint8_t *sig, size_t sig_len,
                       ms_eccsi_trace *trace)
{
    if (trace != NULL)
        memset(trace, 0, sizeof *trace);
    if (verifier == NULL || id == NULL || id_len == 0 || (msg == NULL && msg_len > 0) ||
        sig == NULL)
        return MS_ERR_ARG;
    if (sig_len != MS_ECCSI_SIG_BYTES)
        return MS_ERR_BAD_LENGTH;
    if (trace != NULL) {
        memcpy(trace->r, sig, SCALAR_BYTES);
        memcpy(trace->s, sig + SCALAR_BYTES, SCALAR_BYTES);
    }

    ERR_set_mark();
    ms_err err = verify(verifier, id, id_len, msg, msg_len, sig, trace);
    ERR_pop_to_mark();
    return err;
}
