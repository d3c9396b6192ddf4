/*
 * Constant-time check, run under valgrind memcheck (make ctcheck), after libsecp256k1's
 * ctime_tests: every secret input is marked undefined with MS_CT_SECRET, the operation
 * is called, and its public outputs are marked defined again with MS_CT_PUBLIC before
 * they are checked. Any branch or memory index that depends on a secret in between is
 * reported by valgrind as "Conditional jump or move depends on uninitialised value(s)"
 * or "Use of uninitialised value", and --error-exitcode turns that into a failure.
 *
 * Return codes are declassified before they are tested, as libsecp256k1 does: whether
 * an operation succeeded is public. Only the computation leading to it is checked.
 *
 * Outside valgrind the program still runs (the markers are no-ops there) and checks
 * the results against the RFC vectors, so a plain run is a quick functional test.
 *
 * Usage: ct_check [--skip-openssl]
 *   --skip-openssl  leave out the ECCSI (P-256) operations, whose arithmetic runs in
 *                   OpenSSL; see tests/ct/openssl.supp for what OpenSSL reports.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/ct.h"
#include "crypto/mont.h"
#include "crypto/pairing.h"
#include "crypto/sakke_hash.h"
#include "ct_threshold.h"
#include "kms/seal.h"
#include "mikeysakke/crypto.h"
#include "testutil.h"

/* RFC 6507/6508 Appendix A identifier. */
static const uint8_t ct_id[] = "2011-02\0tel:+447700900123";
#define CT_ID_LEN sizeof ct_id
#define SCALAR_LAST (MS_ECCSI_SCALAR_BYTES - 1)

static int n_checked;

static void checked(const char *what)
{
    n_checked++;
    printf("checked %s\n", what);
    fflush(stdout);
}

#define SECRET(p, len) MS_CT_SECRET((p), (len))
#define PUBLIC(p, len) MS_CT_PUBLIC((p), (len))

static ms_err pub_err(ms_err err)
{
    PUBLIC(&err, sizeof err);
    return err;
}

static int pub_int(int ret)
{
    PUBLIC(&ret, sizeof ret);
    return ret;
}

/* ---- generators --------------------------------------------------------------------- */

/*
 * An ms_rng whose output is secret: octets come first from a fixed queue (the RFC's
 * v and j, so results can be compared with the RFC), then from the seeded test
 * generator; every octet handed to the library is marked undefined.
 */
typedef struct queue_rng {
    const uint8_t *data;
    size_t len, pos;
    size_t drawn; /* total octets handed out */
} queue_rng;

static ms_err secret_rng_fill(void *ctx, uint8_t *out, size_t len)
{
    queue_rng *q = ctx;
    size_t from_queue = q->len - q->pos < len ? q->len - q->pos : len;
    if (from_queue > 0) {
        memcpy(out, q->data + q->pos, from_queue);
        q->pos += from_queue;
    }
    ms_test_random(out + from_queue, len - from_queue);
    q->drawn += len;
    SECRET(out, len);
    return MS_OK;
}

static ms_rng secret_rng(queue_rng *q, const uint8_t *data, size_t len)
{
    q->data = data;
    q->len = len;
    q->pos = 0;
    q->drawn = 0;
    return (ms_rng){secret_rng_fill, q};
}

/* A random field element (public until marked). */
static void random_fp(ms_fp *r)
{
    uint8_t buf[MS_BYTES];
    ms_test_random(buf, sizeof buf);
    buf[0] &= 0x7f; /* below p, whose top octet is 0x99 */
    CHECK(ms_fp_from_bytes(r, buf) != 0);
}

/* A random scalar below q (public until marked). */
static void random_scalar(uint64_t k[MS_LIMBS])
{
    uint8_t buf[MS_BYTES];
    ms_test_random(buf, sizeof buf);
    ms_u1024_from_be(k, buf, sizeof buf);
    ms_mont_reduce_small(k, k, 0, &ms_mont_q); /* 2^1024 < 8q */
}

/* Left-pads a vector to `width` octets (z is given short in RFC 6508). */
static void vector_padded(const char *file, const char *name, uint8_t *out, size_t width)
{
    uint8_t buf[512];
    size_t n = ms_test_vector(file, name, buf, sizeof buf);
    if (n > width) {
        fprintf(stderr, "vector %s longer than %zu octets\n", name, width);
        exit(2);
    }
    memset(out, 0, width - n);
    memcpy(out + width - n, buf, n);
}

/* 0x04 || x || y from two vectors. */
static void vector_point(const char *file, const char *xname, const char *yname,
                         uint8_t *out, size_t coord)
{
    out[0] = 0x04;
    vector_padded(file, xname, out + 1, coord);
    vector_padded(file, yname, out + 1 + coord, coord);
}

/* ---- the field ---------------------------------------------------------------------- */

static void check_field(void)
{
    ms_fp a, b, a_pub, b_pub, r1, r2, t;
    random_fp(&a);
    random_fp(&b);
    a_pub = a;
    b_pub = b;
    SECRET(&a, sizeof a);
    SECRET(&b, sizeof b);

    /* the portable backend and the chosen one must agree, and both be constant time */
    ms_mont_mul_c64(r1.v, a.v, b.v, ms_mont_p.m, ms_mont_p.m0inv);
    ms_fp_mul(&r2, &a, &b);
    PUBLIC(&r1, sizeof r1);
    PUBLIC(&r2, sizeof r2);
    CHECK_MEM(&r1, &r2, sizeof r1);
    checked("fp mul (c64 backend and chosen backend)");

    ms_mont_sqr_c64(r1.v, a.v, ms_mont_p.m, ms_mont_p.m0inv);
    ms_fp_sqr(&r2, &a);
    ms_fp_mul(&t, &a, &a);
    PUBLIC(&r1, sizeof r1);
    PUBLIC(&r2, sizeof r2);
    PUBLIC(&t, sizeof t);
    CHECK_MEM(&r1, &r2, sizeof r1);
    CHECK_MEM(&r1, &t, sizeof r1);
    checked("fp sqr (c64 backend and chosen backend)");

    ms_fp_add(&t, &a, &b);
    ms_fp_sub(&r1, &t, &b);
    ms_fp_neg(&t, &a);
    ms_fp_add(&r2, &t, &a);
    PUBLIC(&r1, sizeof r1);
    PUBLIC(&r2, sizeof r2);
    CHECK_MEM(&r1, &a_pub, sizeof r1);
    CHECK(ms_fp_iszero(&r2) != 0);
    checked("fp add/sub/neg");

    /* the masks themselves are secret; only their declassified values are tested */
    uint64_t m_eq = ms_fp_eq(&a, &b), m_zero = ms_fp_iszero(&a), m_lt = ms_u1024_lt(a.v, b.v);
    t = a;
    ms_fp_cmov(&t, &b, m_lt);
    PUBLIC(&m_eq, sizeof m_eq);
    PUBLIC(&m_zero, sizeof m_zero);
    PUBLIC(&m_lt, sizeof m_lt);
    PUBLIC(&t, sizeof t);
    CHECK(m_eq == 0 && m_zero == 0);
    CHECK_MEM(&t, m_lt ? &b_pub : &a_pub, sizeof t);
    checked("fp eq/iszero/lt/cmov");

    ms_fp_inv(&r1, &a);
    ms_fp_mul(&t, &r1, &a);
    PUBLIC(&t, sizeof t);
    CHECK_MEM(t.v, ms_mont_p.one, sizeof t.v);
    checked("fp inv (Fermat)");

    int ret = pub_int(ms_fp_inv_blinded(&r2, &a));
    CHECK(ret == 0);
    PUBLIC(&r1, sizeof r1);
    PUBLIC(&r2, sizeof r2);
    CHECK_MEM(&r1, &r2, sizeof r1);
    checked("fp inv_blinded");

    uint8_t bytes[MS_BYTES], back[MS_BYTES];
    ms_test_random(bytes, sizeof bytes);
    bytes[0] &= 0x7f;
    SECRET(bytes, sizeof bytes);
    uint64_t ok = ms_fp_from_bytes(&t, bytes);
    ms_fp_to_bytes(back, &t);
    PUBLIC(&ok, sizeof ok);
    PUBLIC(bytes, sizeof bytes);
    PUBLIC(back, sizeof back);
    CHECK(ok != 0);
    CHECK_MEM(back, bytes, sizeof back);
    checked("fp from_bytes/to_bytes (mont_to/mont_from)");

    /* scalars mod q: (a + z)^-1 for RSK issue and HashToIntegerRange's reduction */
    uint64_t x[MS_LIMBS], y[MS_LIMBS], xm[MS_LIMBS], r[MS_LIMBS], top = 0;
    random_scalar(x);
    ms_test_random((uint8_t *)y, sizeof y);
    SECRET(x, sizeof x);
    SECRET(y, sizeof y);
    SECRET(&top, sizeof top);
    ms_mont_to(xm, x, &ms_mont_q);
    ms_mont_inv(r, xm, &ms_mont_q);
    ms_mont_mul(r, r, xm, &ms_mont_q);
    ms_mont_reduce_small(xm, y, top, &ms_mont_q); /* y < 2^1024 < 8q */
    uint64_t lt = ms_u1024_lt(xm, ms_mont_q.m);
    PUBLIC(r, sizeof r);
    PUBLIC(&lt, sizeof lt);
    CHECK_MEM(r, ms_mont_q.one, sizeof r);
    CHECK(lt != 0);
    checked("mod q: mont_to, mont_inv, mont_mul, mont_reduce_small");
}

/* ---- the curve ---------------------------------------------------------------------- */

typedef struct curve_ctx {
    ms_sakke_affine p;     /* generator */
    ms_sakke_affine s_pub; /* a random point of E[q], used as a secret (an RSK) */
    uint64_t k_pub[MS_LIMBS];
} curve_ctx;

static void point_from_scalar_var(ms_sakke_affine *r, const ms_sakke_affine *base,
                                  const uint64_t k[MS_LIMBS])
{
    ms_sakke_jac j;
    ms_sakke_mul_var(&j, base, k);
    CHECK(ms_sakke_jac_to_affine(r, &j) == 0);
}

static void check_curve(void)
{
    curve_ctx ctx, *c = &ctx;
    uint64_t k[MS_LIMBS], k2[MS_LIMBS];
    ms_sakke_generator(&c->p);
    random_scalar(k2);
    point_from_scalar_var(&c->s_pub, &c->p, k2);
    random_scalar(c->k_pub);

    ms_sakke_affine want, got;
    ms_sakke_jac j;
    point_from_scalar_var(&want, &c->p, c->k_pub);

    /* [k]P with secret k */
    memcpy(k, c->k_pub, sizeof k);
    SECRET(k, sizeof k);
    ms_sakke_mul(&j, &c->p, k);
    int ret = ms_sakke_jac_to_affine(&got, &j);
    PUBLIC(&ret, sizeof ret);
    PUBLIC(&got, sizeof got);
    CHECK(ret == 0);
    CHECK_MEM(&got, &want, sizeof got);
    checked("ms_sakke_mul (secret scalar) + ms_sakke_jac_to_affine");

    /* [k]S with secret k and secret S (the point itself must not leak either) */
    ms_sakke_affine s = c->s_pub, want_s;
    point_from_scalar_var(&want_s, &c->s_pub, c->k_pub);
    SECRET(&s, sizeof s);
    ms_sakke_mul(&j, &s, k);
    uint64_t eq = ms_sakke_jac_eq_affine(&j, &want_s);
    ret = ms_sakke_jac_to_affine(&got, &j);
    PUBLIC(&eq, sizeof eq);
    PUBLIC(&ret, sizeof ret);
    PUBLIC(&got, sizeof got);
    CHECK(eq != 0);
    CHECK(ret == 0);
    CHECK_MEM(&got, &want_s, sizeof got);
    checked("ms_sakke_mul (secret scalar and point) + ms_sakke_jac_eq_affine");

    /* the fixed-base combs (public tables, secret indices) */
    ms_sakke_comb *comb = malloc(ms_sakke_comb_size());
    ms_sakke_comb *comb_s = malloc(ms_sakke_comb_size());
    CHECK(comb != NULL && comb_s != NULL);
    if (comb != NULL && comb_s != NULL) {
        CHECK(ms_sakke_comb_build(comb, &c->p) == 0);
        CHECK(ms_sakke_comb_build(comb_s, &c->s_pub) == 0);
        ms_sakke_comb_mul(&j, comb, k);
        ret = ms_sakke_jac_to_affine(&got, &j);
        PUBLIC(&ret, sizeof ret);
        PUBLIC(&got, sizeof got);
        CHECK(ret == 0);
        CHECK_MEM(&got, &want, sizeof got);
        checked("ms_sakke_comb_mul (secret scalar)");
        ret = ms_sakke_comb_mul_batched(&j, comb, k);
        ret |= ms_sakke_jac_to_affine(&got, &j);
        PUBLIC(&ret, sizeof ret);
        PUBLIC(&got, sizeof got);
        CHECK(ret == 0);
        CHECK_MEM(&got, &want, sizeof got);
        checked("ms_sakke_comb_mul_batched (secret scalar)");

        /* [k]P + [k2]S, as encapsulation's [r b]P + [r]Z */
        ms_sakke_jac jp, js;
        ms_sakke_affine want2;
        random_scalar(k2);
        ms_sakke_mul_var(&jp, &c->p, c->k_pub);
        ms_sakke_mul_var(&js, &c->s_pub, k2);
        ms_sakke_jac_add(&jp, &jp, &js);
        CHECK(ms_sakke_jac_to_affine(&want2, &jp) == 0);
        SECRET(k2, sizeof k2);
        ret = ms_sakke_comb_mul2(&j, comb, k, comb_s, k2);
        ret |= ms_sakke_jac_to_affine(&got, &j);
        PUBLIC(&ret, sizeof ret);
        PUBLIC(&got, sizeof got);
        CHECK(ret == 0);
        CHECK_MEM(&got, &want2, sizeof got);
        checked("ms_sakke_comb_mul2 (secret scalars)");
    }
    free(comb);
    free(comb_s);

    /* encoding a secret point (an RSK leaving rsk_issue) */
    uint8_t enc[MS_SAKKE_POINT_BYTES], enc_want[MS_SAKKE_POINT_BYTES];
    ms_sakke_point_encode(enc_want, &c->s_pub);
    s = c->s_pub;
    SECRET(&s, sizeof s);
    ms_sakke_point_encode(enc, &s);
    PUBLIC(enc, sizeof enc);
    CHECK_MEM(enc, enc_want, sizeof enc);
    checked("ms_sakke_point_encode (secret point)");

    /* decoding one (an RSK entering decapsulation): only the verdict may be public */
    SECRET(enc, sizeof enc);
    ms_err err = pub_err(ms_sakke_point_decode(&got, enc));
    PUBLIC(&got, sizeof got);
    CHECK_ERR(err, MS_OK);
    CHECK_MEM(&got, &c->s_pub, sizeof got);
    checked("ms_sakke_point_decode (secret point)");
}

/* ---- the pairing -------------------------------------------------------------------- */

/* Decodes a public point given as two vectors. */
static void vector_sakke_point(ms_sakke_affine *r, const char *xname, const char *yname)
{
    uint8_t enc[MS_SAKKE_POINT_BYTES];
    vector_point("rfc6508.txt", xname, yname, enc, MS_SAKKE_FP_BYTES);
    CHECK_ERR(ms_sakke_point_decode(r, enc), MS_OK);
}

/* Known answers from RFC 6508 Appendix A: w = <R, K> for the encapsulation's R and the
 * receiver's RSK K, and g^r. (The reference pairing would take a minute under
 * valgrind, so it is not used here.) */
static void check_pairing(void)
{
    static const char *const f = "rfc6508.txt";
    ms_sakke_affine k_pub, r_pt;
    uint8_t w_want[MS_SAKKE_FP_BYTES], gr_want[MS_SAKKE_FP_BYTES], r_bytes[MS_BYTES];
    uint8_t out[MS_SAKKE_FP_BYTES];
    ms_fp got;
    vector_sakke_point(&k_pub, "Kbx", "Kby");
    vector_sakke_point(&r_pt, "Rbx", "Rby");
    vector_padded(f, "w", w_want, sizeof w_want);
    vector_padded(f, "g_r", gr_want, sizeof gr_want);
    vector_padded(f, "r", r_bytes, sizeof r_bytes);

    /* the RSK is the secret argument, as in decapsulation */
    ms_sakke_affine k = k_pub;
    SECRET(&k, sizeof k);
    int ret = ms_pairing(&got, &k, &r_pt);
    PUBLIC(&ret, sizeof ret);
    PUBLIC(&got, sizeof got);
    CHECK(ret == 0);
    ms_fp_to_bytes(out, &got);
    CHECK_MEM(out, w_want, sizeof out);
    checked("ms_pairing (secret point)");

    ms_pairing_prepared *pp = malloc(ms_pairing_prepared_size());
    CHECK(pp != NULL);
    if (pp != NULL) {
        ret = ms_pairing_prepare(pp, &k);
        PUBLIC(&ret, sizeof ret);
        CHECK(ret == 0);
        ret = ms_pairing_prepared_eval(&got, pp, &r_pt);
        PUBLIC(&ret, sizeof ret);
        PUBLIC(&got, sizeof got);
        CHECK(ret == 0);
        ms_fp_to_bytes(out, &got);
        CHECK_MEM(out, w_want, sizeof out);
        free(pp);
        checked("ms_pairing_prepare + ms_pairing_prepared_eval (secret K)");
    }

    /* g^r with secret r, by plain exponentiation and by the fixed-base table */
    ms_fp g, g_sec;
    uint64_t r[MS_LIMBS];
    memcpy(g.v, ms_sakke_g_mont, sizeof g.v);
    g_sec = g;
    ms_u1024_from_be(r, r_bytes, sizeof r_bytes);
    SECRET(r, sizeof r);
    SECRET(&g_sec, sizeof g_sec); /* a pairing value raised to a power is secret too */
    ret = ms_pfp_pow(&got, &g_sec, r);
    PUBLIC(&ret, sizeof ret);
    PUBLIC(&got, sizeof got);
    CHECK(ret == 0);
    ms_fp_to_bytes(out, &got);
    CHECK_MEM(out, gr_want, sizeof out);
    checked("ms_pfp_pow (secret base and exponent)");

    ms_pfp_table *t = malloc(ms_pfp_table_size());
    CHECK(t != NULL);
    if (t != NULL) {
        CHECK(ms_pfp_table_build(t, &g) == 0);
        ret = ms_pfp_table_pow(&got, t, r);
        PUBLIC(&ret, sizeof ret);
        PUBLIC(&got, sizeof got);
        CHECK(ret == 0);
        ms_fp_to_bytes(out, &got);
        CHECK_MEM(out, gr_want, sizeof out);
        free(t);
        checked("ms_pfp_table_pow (secret exponent)");
    }
}

/* ---- SAKKE, RFC 6508 Appendix A ----------------------------------------------------- */

/* HashToIntegerRange on secrets: r from SSV || b, and the mask from g^r. */
static void check_sakke_hash(void)
{
    static const char *const f = "rfc6508.txt";
    uint8_t ssv[MS_SAKKE_SSV_BYTES], b[64], gr[MS_SAKKE_FP_BYTES], mask[16], mask_want[16];
    uint8_t r_want[MS_BYTES], r_bytes[MS_BYTES];
    uint64_t r[MS_LIMBS];
    CHECK(ms_test_vector(f, "SSV", ssv, sizeof ssv) == sizeof ssv);
    size_t b_len = ms_test_vector(f, "b", b, sizeof b);
    vector_padded(f, "g_r", gr, sizeof gr);
    vector_padded(f, "r", r_want, sizeof r_want);
    CHECK(ms_test_vector(f, "mask", mask_want, sizeof mask_want) == sizeof mask_want);

    SECRET(ssv, sizeof ssv);
    int ret = pub_int(ms_sakke_htir_q(r, ssv, sizeof ssv, b, b_len));
    CHECK(ret == 0);
    ms_u1024_to_be(r_bytes, r);
    PUBLIC(r_bytes, sizeof r_bytes);
    CHECK_MEM(r_bytes, r_want, sizeof r_bytes);
    checked("ms_sakke_htir_q (secret SSV)");

    SECRET(gr, sizeof gr);
    ret = pub_int(ms_sakke_htir_mask(mask, gr, sizeof gr));
    CHECK(ret == 0);
    PUBLIC(mask, sizeof mask);
    CHECK_MEM(mask, mask_want, sizeof mask);
    checked("ms_sakke_htir_mask (secret g^r)");
}

static void check_sakke(void)
{
    static const char *const f = "rfc6508.txt";
    uint8_t z[MS_SAKKE_SECRET_BYTES], zpub_want[MS_SAKKE_POINT_BYTES];
    uint8_t zpub[MS_SAKKE_POINT_BYTES], rsk[MS_SAKKE_POINT_BYTES], rsk_want[MS_SAKKE_POINT_BYTES];
    uint8_t ssv[MS_SAKKE_SSV_BYTES], ssv_out[MS_SAKKE_SSV_BYTES];
    uint8_t sed[MS_SAKKE_SED_BYTES], sed_want[MS_SAKKE_SED_BYTES];
    vector_padded(f, "z", z, sizeof z);
    vector_point(f, "Zx", "Zy", zpub_want, MS_SAKKE_FP_BYTES);
    vector_point(f, "Kbx", "Kby", rsk_want, MS_SAKKE_FP_BYTES);
    CHECK(ms_test_vector(f, "SSV", ssv, sizeof ssv) == sizeof ssv);
    CHECK(ms_test_vector(f, "SED", sed_want, sizeof sed_want) == sizeof sed_want);

    SECRET(z, sizeof z);
    CHECK_ERR(pub_err(ms_sakke_master_public(zpub, z)), MS_OK);
    PUBLIC(zpub, sizeof zpub);
    CHECK_MEM(zpub, zpub_want, sizeof zpub);
    checked("ms_sakke_master_public (secret z)");

    ms_sakke_kms *kms = NULL;
    CHECK_ERR(ms_sakke_kms_new(&kms, zpub_want), MS_OK);
    if (kms == NULL)
        return;

    CHECK_ERR(pub_err(ms_sakke_rsk_issue(kms, rsk, z, ct_id, CT_ID_LEN)), MS_OK);
    PUBLIC(rsk, sizeof rsk);
    CHECK_MEM(rsk, rsk_want, sizeof rsk);
    checked("ms_sakke_rsk_issue (secret z)");

    /* from here on the RSK is the receiver's secret */
    SECRET(rsk, sizeof rsk);
    CHECK_ERR(pub_err(ms_sakke_rsk_validate(kms, ct_id, CT_ID_LEN, rsk)), MS_OK);
    checked("ms_sakke_rsk_validate (secret RSK, cold pairing)");
    /* past the first few validations the object builds and uses its Miller tables */
    for (int i = 0; i < 5; i++)
        CHECK_ERR(pub_err(ms_sakke_rsk_validate(kms, ct_id, CT_ID_LEN, rsk)), MS_OK);
    checked("ms_sakke_rsk_validate (secret RSK, Miller tables of P and Z)");

    /* a fresh object decapsulates without its combs: TEST's [r]I by the ladder */
    ms_sakke_kms *fresh = NULL;
    CHECK_ERR(ms_sakke_kms_new(&fresh, zpub_want), MS_OK);
    if (fresh != NULL) {
        CHECK_ERR(pub_err(ms_sakke_decap(fresh, ssv_out, sizeof ssv_out, ct_id, CT_ID_LEN, rsk,
                                         sed_want, sizeof sed_want)),
                  MS_OK);
        PUBLIC(ssv_out, sizeof ssv_out);
        CHECK_MEM(ssv_out, ssv, sizeof ssv);
        ms_sakke_kms_free(fresh);
        checked("ms_sakke_decap (secret RSK, no tables: ladder for TEST)");
    }

    SECRET(ssv, sizeof ssv);
    CHECK_ERR(pub_err(ms_sakke_encap(kms, sed, ct_id, CT_ID_LEN, ssv, sizeof ssv)), MS_OK);
    PUBLIC(sed, sizeof sed);
    CHECK_MEM(sed, sed_want, sizeof sed);
    checked("ms_sakke_encap (secret SSV)");

    ms_sakke_peer *peer = NULL;
    CHECK_ERR(ms_sakke_peer_new(&peer, kms, ct_id, CT_ID_LEN), MS_OK);
    if (peer != NULL) {
        CHECK_ERR(pub_err(ms_sakke_peer_encap(peer, sed, ssv, sizeof ssv)), MS_OK);
        PUBLIC(sed, sizeof sed);
        CHECK_MEM(sed, sed_want, sizeof sed);
        ms_sakke_peer_free(peer);
        checked("ms_sakke_peer_encap (secret SSV)");
    }

    PUBLIC(ssv, sizeof ssv); /* the expected value, compared with below */
    CHECK_ERR(pub_err(ms_sakke_decap(kms, ssv_out, sizeof ssv_out, ct_id, CT_ID_LEN, rsk,
                                     sed_want, sizeof sed_want)),
              MS_OK);
    PUBLIC(ssv_out, sizeof ssv_out);
    CHECK_MEM(ssv_out, ssv, sizeof ssv);
    checked("ms_sakke_decap (secret RSK)");

    ms_sakke_prepared_rsk *prep = NULL;
    CHECK_ERR(pub_err(ms_sakke_prepared_rsk_new(&prep, kms, ct_id, CT_ID_LEN, rsk)), MS_OK);
    checked("ms_sakke_prepared_rsk_new (secret RSK)");
    if (prep != NULL) {
        memset(ssv_out, 0, sizeof ssv_out);
        CHECK_ERR(pub_err(ms_sakke_prepared_rsk_decap(prep, ssv_out, sizeof ssv_out, sed_want,
                                                      sizeof sed_want)),
                  MS_OK);
        PUBLIC(ssv_out, sizeof ssv_out);
        CHECK_MEM(ssv_out, ssv, sizeof ssv);
        checked("ms_sakke_prepared_rsk_decap (secret prepared RSK)");

        /* data not made for this RSK: the failing TEST must not leak more than failure */
        memcpy(sed, sed_want, sizeof sed);
        sed[MS_SAKKE_SED_BYTES - 1] ^= 1;
        CHECK_ERR(pub_err(ms_sakke_prepared_rsk_decap(prep, ssv_out, sizeof ssv_out, sed,
                                                      sizeof sed)),
                  MS_ERR_DECAP_TEST);
        ms_sakke_prepared_rsk_free(prep);
        checked("ms_sakke_prepared_rsk_decap (secret prepared RSK, failing TEST)");
    }
    ms_sakke_kms_free(kms);

    /* a fresh master key from a secret-marked generator */
    queue_rng q;
    ms_rng rng = secret_rng(&q, NULL, 0);
    CHECK_ERR(pub_err(ms_sakke_master_keygen(z, zpub, &rng)), MS_OK);
    PUBLIC(zpub, sizeof zpub);
    kms = NULL;
    CHECK_ERR(ms_sakke_kms_new(&kms, zpub), MS_OK); /* Z must be a valid point */
    ms_sakke_kms_free(kms);
    ms_wipe(z, sizeof z);
    checked("ms_sakke_master_keygen (secret rng output)");
}

/* ---- ECCSI, RFC 6507 Appendix A ----------------------------------------------------- */

static void check_eccsi(void)
{
    static const char *const f = "rfc6507.txt";
    uint8_t ksak[MS_ECCSI_SCALAR_BYTES], kpak[MS_ECCSI_POINT_BYTES];
    uint8_t kpak_want[MS_ECCSI_POINT_BYTES], ssk[MS_ECCSI_SCALAR_BYTES];
    uint8_t ssk_want[MS_ECCSI_SCALAR_BYTES], pvt[MS_ECCSI_POINT_BYTES];
    uint8_t pvt_want[MS_ECCSI_POINT_BYTES], sig[MS_ECCSI_SIG_BYTES];
    uint8_t sig_want[MS_ECCSI_SIG_BYTES], v[MS_ECCSI_SCALAR_BYTES], j[MS_ECCSI_SCALAR_BYTES];
    uint8_t msg[64];
    size_t msg_len = ms_test_vector(f, "M", msg, sizeof msg);
    vector_padded(f, "KSAK", ksak, sizeof ksak);
    vector_padded(f, "KPAK", kpak_want, sizeof kpak_want);
    vector_padded(f, "SSK", ssk_want, sizeof ssk_want);
    vector_padded(f, "PVT", pvt_want, sizeof pvt_want);
    vector_padded(f, "SIG", sig_want, sizeof sig_want);
    /* RFC 6507 Appendix A draws v = 0x23456 and j = 0x34567 */
    memset(v, 0, sizeof v);
    v[29] = 0x02;
    v[30] = 0x34;
    v[31] = 0x56;
    memset(j, 0, sizeof j);
    j[29] = 0x03;
    j[30] = 0x45;
    j[31] = 0x67;

    SECRET(ksak, sizeof ksak);
    CHECK_ERR(pub_err(ms_eccsi_master_public(kpak, ksak)), MS_OK);
    PUBLIC(kpak, sizeof kpak);
    CHECK_MEM(kpak, kpak_want, sizeof kpak);
    checked("ms_eccsi_master_public (secret KSAK)");

    queue_rng q;
    ms_rng rng = secret_rng(&q, v, sizeof v);
    CHECK_ERR(pub_err(ms_eccsi_ssk_issue(ssk, pvt, ksak, kpak_want, ct_id, CT_ID_LEN, &rng)),
              MS_OK);
    PUBLIC(pvt, sizeof pvt);
    /* the SSK stays secret: it is checked by validating it */
    CHECK_ERR(pub_err(ms_eccsi_ssk_validate(NULL, kpak_want, ct_id, CT_ID_LEN, ssk, pvt)), MS_OK);
    if (q.drawn == sizeof v) {
        /* the library drew exactly the RFC's v, so the results must be the RFC's */
        uint8_t ssk_pub[MS_ECCSI_SCALAR_BYTES];
        memcpy(ssk_pub, ssk, sizeof ssk_pub);
        PUBLIC(ssk_pub, sizeof ssk_pub);
        CHECK_MEM(pvt, pvt_want, sizeof pvt);
        CHECK_MEM(ssk_pub, ssk_want, sizeof ssk_pub);
    } else {
        printf("note: ms_eccsi_ssk_issue drew %zu random octets, not RFC 6507's 32; "
               "compared by validation only\n", q.drawn);
    }
    checked("ms_eccsi_ssk_issue (secret KSAK, secret v)");
    checked("ms_eccsi_ssk_validate (secret SSK)");

    /* a wrong SSK is rejected without leaking more than that */
    memcpy(ssk, ssk_want, sizeof ssk);
    ssk[SCALAR_LAST] ^= 1;
    SECRET(ssk, sizeof ssk);
    CHECK_ERR(pub_err(ms_eccsi_ssk_validate(NULL, kpak_want, ct_id, CT_ID_LEN, ssk, pvt_want)),
              MS_ERR_SSK_INVALID);
    checked("ms_eccsi_ssk_validate (secret wrong SSK)");

    /* sign with the RFC's SSK, marked secret, and the RFC's j */
    memcpy(ssk, ssk_want, sizeof ssk);
    SECRET(ssk, sizeof ssk);
    ms_eccsi_signer *signer = NULL;
    CHECK_ERR(pub_err(ms_eccsi_signer_new(&signer, kpak_want, ct_id, CT_ID_LEN, ssk, pvt_want)),
              MS_OK);
    checked("ms_eccsi_signer_new (secret SSK)");
    if (signer != NULL) {
        rng = secret_rng(&q, j, sizeof j);
        CHECK_ERR(pub_err(ms_eccsi_sign(signer, sig, msg, msg_len, &rng, NULL)), MS_OK);
        PUBLIC(sig, sizeof sig);
        if (q.drawn == sizeof j)
            CHECK_MEM(sig, sig_want, sizeof sig);
        else
            printf("note: ms_eccsi_sign drew %zu random octets, not RFC 6507's 32; "
                   "compared by verification only\n", q.drawn);
        ms_eccsi_verifier *ver = NULL;
        CHECK_ERR(ms_eccsi_verifier_new(&ver, kpak_want), MS_OK);
        if (ver != NULL)
            CHECK_ERR(ms_eccsi_verify(ver, ct_id, CT_ID_LEN, msg, msg_len, sig, sizeof sig, NULL),
                      MS_OK);
        ms_eccsi_verifier_free(ver);
        ms_eccsi_signer_free(signer);
        checked("ms_eccsi_sign (secret SSK, secret j)");
    }

    /* a fresh KSAK from a secret-marked generator */
    rng = secret_rng(&q, NULL, 0);
    CHECK_ERR(pub_err(ms_eccsi_master_keygen(ksak, kpak, &rng)), MS_OK);
    PUBLIC(kpak, sizeof kpak);
    ms_eccsi_verifier *ver = NULL;
    CHECK_ERR(ms_eccsi_verifier_new(&ver, kpak), MS_OK); /* KPAK must be a valid point */
    ms_eccsi_verifier_free(ver);
    ms_wipe(ksak, sizeof ksak);
    checked("ms_eccsi_master_keygen (secret rng output)");
}

/* ---- Shamir (custodian shares of the KEK) ---------------------------------------------- */

/* Split a secret KEK with secret coefficients, then combine 3 of the 5 shares: only the
 * share indices x are public; the secret, the coefficients and every y are not. */
static void check_shamir(void)
{
    enum { K = 3, N = 5, LEN = MS_KMS_KEY_BYTES };
    uint8_t kek[LEN], want[LEN], shares[N][LEN + 1], pick[K][LEN + 1], back[LEN];
    ms_test_random(kek, sizeof kek);
    memcpy(want, kek, sizeof kek);
    queue_rng q;
    ms_rng rng = secret_rng(&q, NULL, 0);
    SECRET(kek, sizeof kek);
    ms_err err = pub_err(ms_shamir_split(&shares[0][0], kek, LEN, K, N, &rng));
    CHECK(err == MS_OK);
    CHECK(q.drawn == (size_t)(K - 1) * LEN);
    checked("ms_shamir_split (secret KEK and coefficients)");
    for (unsigned i = 0; i < K; i++)
        memcpy(pick[i], shares[(2 * i + 1) % N], LEN + 1); /* shares 2, 4, 1 */
    for (unsigned i = 0; i < K; i++) {
        PUBLIC(&pick[i][0], 1);
        SECRET(&pick[i][1], LEN);
    }
    err = pub_err(ms_shamir_combine(back, LEN, &pick[0][0], K));
    CHECK(err == MS_OK);
    PUBLIC(back, sizeof back);
    CHECK_MEM(back, want, sizeof back);
    checked("ms_shamir_combine (secret share values)");
    ms_wipe(back, sizeof back);
    ms_wipe(shares, sizeof shares);
}

/* ms_test_vector looks in $MS_TEST_VECTORS; default it to this source tree's vectors so
 * the check runs from any directory. */
static void default_vector_dir(void)
{
    char dir[1024];
    const char *src = __FILE__; /* .../tests/ct/ct_check.c */
    size_t n = strlen(src);
    if (getenv("MS_TEST_VECTORS") != NULL || n >= sizeof dir)
        return;
    memcpy(dir, src, n + 1);
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(dir, '/');
        if (slash == NULL)
            return;
        *slash = '\0';
    }
    strncat(dir, "/vectors", sizeof dir - strlen(dir) - 1);
    setenv("MS_TEST_VECTORS", dir, 0);
}

#ifdef MS_FP_BACKEND_X86_64_ADX
/* Valgrind runs mulx/adcx/adox but clears ADX in the CPUID it shows, so the library's
 * load-time check would pick the portable backend here, and the assembly that real
 * CPUs run would go unchecked. So ask the CPU directly: execute one of each and catch
 * SIGILL (a CPU without them). */
static sigjmp_buf adx_probe_env;

static void adx_probe_sigill(int sig)
{
    (void)sig;
    siglongjmp(adx_probe_env, 1);
}

static int adx_instructions_run(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = adx_probe_sigill;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGILL, &sa, &old) != 0)
        return 0;
    volatile int ok = 0;
    if (sigsetjmp(adx_probe_env, 1) == 0) {
        uint64_t lo, hi, x = 3, y = 5;
        __asm__ volatile("mulx %3, %0, %1\n\tadcx %0, %1\n\tadox %0, %1"
                         : "=&r"(lo), "=&r"(hi), "+d"(x)
                         : "r"(y)
                         : "cc");
        ok = 1;
    }
    sigaction(SIGILL, &old, NULL);
    return ok;
}
#endif

int main(int argc, char **argv)
{
#ifdef MS_FP_BACKEND_X86_64_ADX
    ms_mont_cpu_has_adx = adx_instructions_run();
    printf("field backend checked: %s\n", ms_fp_backend_name());
#endif
    int skip_openssl = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--skip-openssl") == 0) {
            skip_openssl = 1;
        } else {
            fprintf(stderr, "usage: ct_check [--skip-openssl]\n");
            return 2;
        }
    }
    default_vector_dir();
    setenv("MS_TEST_SEED", "1", 0); /* reproducible unless the caller picks a seed */
    ms_test_seed();
    printf("field backend: %s\n", ms_fp_backend_name());
#ifndef MS_CTCHECK
    printf("note: built without MS_CTCHECK: secrets are not marked, results are checked only\n");
#endif

    check_field();
    check_curve();
    check_pairing();
    check_sakke_hash();
    check_sakke();
    check_shamir();
    ct_check_threshold(checked);
    if (skip_openssl)
        printf("skipped ECCSI (--skip-openssl)\n");
    else
        check_eccsi();

    printf("%d operations checked\n", n_checked);
    return ms_test_finish();
}
