/*
 * SAKKE end to end: the RFC 6508 Appendix A vector through every API path (master key,
 * RSK issue and validation, encapsulation cold and per peer, decapsulation cold and
 * prepared), HashToIntegerRange step by step, random round trips, and every rejection
 * with its exact error code.
 */
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/sakke_curve.h"
#include "crypto/sakke_hash.h"
#include "testutil.h"

#define V "rfc6508.txt"

static uint8_t rfc_z[MS_SAKKE_SECRET_BYTES], rfc_Z[MS_SAKKE_POINT_BYTES];
static uint8_t rfc_b[64], rfc_ssv[16], rfc_sed[MS_SAKKE_SED_BYTES], rfc_rsk[MS_SAKKE_POINT_BYTES];
static size_t rfc_b_len;

static void load_vectors(void)
{
    uint8_t z[64];
    size_t zl = ms_test_vector(V, "z", z, sizeof z);
    memset(rfc_z, 0, sizeof rfc_z);
    memcpy(rfc_z + sizeof rfc_z - zl, z, zl); /* left-padded to L octets */
    rfc_Z[0] = 0x04;
    ms_test_vector(V, "Zx", rfc_Z + 1, 128);
    ms_test_vector(V, "Zy", rfc_Z + 129, 128);
    rfc_b_len = ms_test_vector(V, "b", rfc_b, sizeof rfc_b);
    ms_test_vector(V, "SSV", rfc_ssv, sizeof rfc_ssv);
    CHECK(ms_test_vector(V, "SED", rfc_sed, sizeof rfc_sed) == MS_SAKKE_SED_BYTES);
    rfc_rsk[0] = 0x04;
    ms_test_vector(V, "Kbx", rfc_rsk + 1, 128);
    ms_test_vector(V, "Kby", rfc_rsk + 129, 128);
}

/* ---- HashToIntegerRange --------------------------------------------------------------------- */

static void sha256(uint8_t out[32], const uint8_t *in, size_t len)
{
    unsigned n = 0;
    CHECK(EVP_Digest(in, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32);
}

static void test_htir(void)
{
    uint8_t m[128], want[128], got[4 * 32], h[32];
    size_t ml = ms_test_vector(V, "HTIR_M", m, sizeof m);
    /* the message is SSV || b */
    CHECK(ml == 16 + rfc_b_len);
    CHECK_MEM(m, rfc_ssv, 16);
    CHECK_MEM(m + 16, rfc_b, rfc_b_len);

    /* A and the chain h_i, recomputed here, against the RFC's intermediate values */
    uint8_t A[32];
    sha256(A, m, ml);
    ms_test_vector(V, "HTIR_A", want, sizeof want);
    CHECK_MEM(A, want, 32);
    memset(h, 0, sizeof h);
    static const char *hn[4] = {"HTIR_h1", "HTIR_h2", "HTIR_h3", "HTIR_h4"};
    static const char *vn[4] = {"HTIR_v1", "HTIR_v2", "HTIR_v3", "HTIR_v4"};
    for (int i = 0; i < 4; i++) {
        sha256(h, h, 32);
        ms_test_vector(V, hn[i], want, sizeof want);
        CHECK_MEM(h, want, 32);
    }

    /* v_1 .. v_4 from the library, whole message in one part and split in two */
    CHECK(ms_sakke_htir_blocks(got, 4, m, ml, NULL, 0) == 0);
    for (int i = 0; i < 4; i++) {
        ms_test_vector(V, vn[i], want, sizeof want);
        CHECK_MEM(got + 32 * i, want, 32);
    }
    memset(got, 0, sizeof got);
    CHECK(ms_sakke_htir_blocks(got, 4, m, 16, m + 16, ml - 16) == 0);
    ms_test_vector(V, "HTIR_v4", want, sizeof want);
    CHECK_MEM(got + 96, want, 32);

    /* v mod q = r */
    uint64_t r[MS_LIMBS];
    uint8_t rb[128];
    CHECK(ms_sakke_htir_q(r, rfc_ssv, 16, rfc_b, rfc_b_len) == 0);
    ms_u1024_to_be(rb, r);
    ms_test_vector(V, "HTIR_v_mod_q", want, sizeof want);
    CHECK_MEM(rb, want, 128);
    ms_test_vector(V, "r", want, sizeof want);
    CHECK_MEM(rb, want, 128);

    /* mask = HashToIntegerRange(g^r, 2^128); H = SSV xor mask */
    uint8_t gr[128], mask[16], wmask[16], H[16];
    ms_test_vector(V, "g_r", gr, sizeof gr);
    ms_test_vector(V, "mask", wmask, sizeof wmask);
    CHECK(ms_sakke_htir_mask(mask, gr, sizeof gr) == 0);
    CHECK_MEM(mask, wmask, 16);
    ms_test_vector(V, "H", H, sizeof H);
    for (int i = 0; i < 16; i++)
        mask[i] ^= rfc_ssv[i];
    CHECK_MEM(mask, H, 16);
}

/* ---- the RFC vector through the API --------------------------------------------------------- */

static void test_rfc_vector(void)
{
    uint8_t Z[MS_SAKKE_POINT_BYTES], z[MS_SAKKE_SECRET_BYTES], rsk[MS_SAKKE_POINT_BYTES];
    uint8_t sed[MS_SAKKE_SED_BYTES], ssv[16];

    CHECK_ERR(ms_sakke_master_public(Z, rfc_z), MS_OK);
    CHECK_MEM(Z, rfc_Z, sizeof Z);

    /* keygen with a fixed generator: a draw above q (after masking to 1022 bits) and a
     * draw of 1 are rejected, then the RFC z is accepted */
    uint8_t draws[3 * 128];
    memset(draws, 0xFF, 128);
    memset(draws + 128, 0, 128);
    draws[255] = 1;
    memcpy(draws + 256, rfc_z, 128);
    ms_fixed_rng st;
    ms_rng rng = ms_fixed_rng_make(&st, draws, sizeof draws);
    CHECK_ERR(ms_sakke_master_keygen(z, Z, &rng), MS_OK);
    CHECK_MEM(z, rfc_z, sizeof z);
    CHECK_MEM(Z, rfc_Z, sizeof Z);
    /* an exhausted generator is an RNG error */
    rng = ms_fixed_rng_make(&st, draws, 128);
    CHECK_ERR(ms_sakke_master_keygen(z, Z, &rng), MS_ERR_RNG);

    ms_sakke_kms *kms = NULL;
    CHECK_ERR(ms_sakke_kms_new(&kms, rfc_Z), MS_OK);
    CHECK(kms != NULL);
    CHECK(ms_sakke_kms_table_bytes(kms) >= 2 * ms_sakke_comb_size());

    CHECK_ERR(ms_sakke_rsk_issue(kms, rsk, rfc_z, rfc_b, rfc_b_len), MS_OK);
    CHECK_MEM(rsk, rfc_rsk, sizeof rsk);
    CHECK_ERR(ms_sakke_rsk_validate(kms, rfc_b, rfc_b_len, rfc_rsk), MS_OK);

    /* I = [b]P + Z: on the curve, of order q, and [r]I = R */
    uint8_t I[MS_SAKKE_POINT_BYTES];
    CHECK_ERR(ms_sakke_identity_point(kms, I, rfc_b, rfc_b_len), MS_OK);
    ms_sakke_affine ia;
    CHECK_ERR(ms_sakke_point_decode(&ia, I), MS_OK);
    CHECK_ERR(ms_sakke_point_check_order_var(&ia), MS_OK);
    uint8_t rb[128];
    uint64_t r[MS_LIMBS];
    ms_test_vector(V, "r", rb, sizeof rb);
    ms_u1024_from_be(r, rb, sizeof rb);
    ms_sakke_jac R;
    ms_sakke_mul_var(&R, &ia, r);
    ms_sakke_affine Ra;
    CHECK(ms_sakke_jac_to_affine(&Ra, &R) == 0);
    uint8_t Renc[MS_SAKKE_POINT_BYTES];
    ms_sakke_point_encode(Renc, &Ra);
    CHECK_MEM(Renc, rfc_sed, sizeof Renc);

    CHECK_ERR(ms_sakke_encap(kms, sed, rfc_b, rfc_b_len, rfc_ssv, 16), MS_OK);
    CHECK_MEM(sed, rfc_sed, sizeof sed);

    memset(ssv, 0, sizeof ssv);
    CHECK_ERR(ms_sakke_decap(kms, ssv, 16, rfc_b, rfc_b_len, rfc_rsk, rfc_sed, sizeof rfc_sed),
              MS_OK);
    CHECK_MEM(ssv, rfc_ssv, 16);

    ms_sakke_prepared_rsk *prep = NULL;
    CHECK_ERR(ms_sakke_prepared_rsk_new(&prep, kms, rfc_b, rfc_b_len, rfc_rsk), MS_OK);
    CHECK(ms_sakke_prepared_rsk_table_bytes(prep) > ms_sakke_comb_size());
    memset(ssv, 0, sizeof ssv);
    CHECK_ERR(ms_sakke_prepared_rsk_decap(prep, ssv, 16, rfc_sed, sizeof rfc_sed), MS_OK);
    CHECK_MEM(ssv, rfc_ssv, 16);

    ms_sakke_peer *peer = NULL;
    CHECK_ERR(ms_sakke_peer_new(&peer, kms, rfc_b, rfc_b_len), MS_OK);
    CHECK(ms_sakke_peer_table_bytes(peer) == ms_sakke_comb_size());
    memset(sed, 0, sizeof sed);
    CHECK_ERR(ms_sakke_peer_encap(peer, sed, rfc_ssv, 16), MS_OK);
    CHECK_MEM(sed, rfc_sed, sizeof sed);

    ms_sakke_peer_free(peer);
    ms_sakke_prepared_rsk_free(prep);
    ms_sakke_kms_free(kms);
}

/* ---- random round trips --------------------------------------------------------------------- */

static void random_id(uint8_t *id, size_t *len)
{
    *len = 1 + ms_test_random_u64() % 100;
    ms_test_random(id, *len);
    id[0] |= 0x80; /* >= 2 */
    if (*len == 1)
        id[0] = 0x42;
}

static void test_round_trips(void)
{
    for (int iter = 0; iter < 3; iter++) {
        uint8_t z[128], Z[257], rsk[257], sed[273], sed2[273], ssv[16], out[16], id[128];
        size_t id_len;
        CHECK_ERR(ms_sakke_master_keygen(z, Z, iter == 0 ? NULL : &ms_test_rng), MS_OK);
        uint8_t Z2[257];
        CHECK_ERR(ms_sakke_master_public(Z2, z), MS_OK);
        CHECK_MEM(Z2, Z, sizeof Z);
        ms_sakke_kms *kms = NULL;
        CHECK_ERR(ms_sakke_kms_new(&kms, Z), MS_OK);
        random_id(id, &id_len);
        CHECK_ERR(ms_sakke_rsk_issue(kms, rsk, z, id, id_len), MS_OK);
        CHECK_ERR(ms_sakke_rsk_validate(kms, id, id_len, rsk), MS_OK);

        ms_test_random(ssv, sizeof ssv);
        CHECK_ERR(ms_sakke_encap(kms, sed, id, id_len, ssv, 16), MS_OK);
        memset(out, 0, sizeof out);
        CHECK_ERR(ms_sakke_decap(kms, out, 16, id, id_len, rsk, sed, sizeof sed), MS_OK);
        CHECK_MEM(out, ssv, 16);

        ms_sakke_prepared_rsk *prep = NULL;
        CHECK_ERR(ms_sakke_prepared_rsk_new(&prep, kms, id, id_len, rsk), MS_OK);
        memset(out, 0, sizeof out);
        CHECK_ERR(ms_sakke_prepared_rsk_decap(prep, out, 16, sed, sizeof sed), MS_OK);
        CHECK_MEM(out, ssv, 16);

        ms_sakke_peer *peer = NULL;
        CHECK_ERR(ms_sakke_peer_new(&peer, kms, id, id_len), MS_OK);
        CHECK_ERR(ms_sakke_peer_encap(peer, sed2, ssv, 16), MS_OK);
        CHECK_MEM(sed2, sed, sizeof sed); /* deterministic in the SSV */
        ms_test_random(ssv, sizeof ssv);
        CHECK_ERR(ms_sakke_peer_encap(peer, sed2, ssv, 16), MS_OK);
        CHECK_ERR(ms_sakke_prepared_rsk_decap(prep, out, 16, sed2, sizeof sed2), MS_OK);
        CHECK_MEM(out, ssv, 16);
        CHECK_ERR(ms_sakke_decap(kms, out, 16, id, id_len, rsk, sed2, sizeof sed2), MS_OK);
        CHECK_MEM(out, ssv, 16);

        ms_sakke_peer_free(peer);
        ms_sakke_prepared_rsk_free(prep);
        ms_sakke_kms_free(kms);
    }
}

/* ---- rejections ------------------------------------------------------------------------------ */

/* A point of E(F_p) outside E[q] (some multiple of it has order 2 or 4), encoded. */
static void point_outside_eq(uint8_t out[257])
{
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *p = BN_new(), *x = BN_new(), *y = BN_new(), *t = BN_new();
    uint8_t buf[144];
    ms_u1024_to_be(buf, ms_mont_p.m);
    BN_bin2bn(buf, 128, p);
    for (;;) {
        ms_test_random(buf, sizeof buf);
        BN_bin2bn(buf, sizeof buf, x);
        BN_mod(x, x, p, ctx);
        BN_mod_sqr(t, x, p, ctx);
        BN_sub_word(t, 3);
        BN_mod_mul(t, t, x, p, ctx);
        if (BN_mod_sqrt(y, t, p, ctx) == NULL)
            continue;
        out[0] = 0x04;
        BN_bn2binpad(x, out + 1, 128);
        BN_bn2binpad(y, out + 129, 128);
        ms_sakke_affine a;
        if (ms_sakke_point_decode(&a, out) == MS_OK &&
            ms_sakke_point_check_order_var(&a) == MS_ERR_POINT_ORDER)
            break;
    }
    BN_free(p);
    BN_free(x);
    BN_free(y);
    BN_free(t);
    BN_CTX_free(ctx);
}

/* The points of order 2 and 4, encoded: (0, 0), and T with [2]T = (0, 0), whose x
 * satisfies x^2 = -3 (from x(2T) = (x^2 + 3)^2 / (4 x (x^2 - 3))). */
static void small_order_points(uint8_t two[257], uint8_t four[257])
{
    memset(two, 0, 257);
    two[0] = 0x04;
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *p = BN_new(), *x = BN_new(), *y = BN_new(), *t = BN_new();
    uint8_t buf[128];
    ms_u1024_to_be(buf, ms_mont_p.m);
    BN_bin2bn(buf, 128, p);
    BN_sub(t, p, BN_value_one());
    BN_sub_word(t, 2); /* -3 */
    CHECK(BN_mod_sqrt(x, t, p, ctx) != NULL);
    for (int i = 0; i < 2; i++) {
        BN_mod_sqr(t, x, p, ctx);
        BN_sub_word(t, 3);
        BN_mod_mul(t, t, x, p, ctx);
        ERR_set_mark();
        if (BN_mod_sqrt(y, t, p, ctx) != NULL)
            break;
        ERR_pop_to_mark();
        BN_sub(x, p, x); /* the other root: -x */
    }
    four[0] = 0x04;
    BN_bn2binpad(x, four + 1, 128);
    BN_bn2binpad(y, four + 129, 128);
    BN_free(p);
    BN_free(x);
    BN_free(y);
    BN_free(t);
    BN_CTX_free(ctx);
    ms_sakke_affine a;
    ms_sakke_jac j;
    CHECK_ERR(ms_sakke_point_decode(&a, four), MS_OK);
    ms_sakke_jac_from_affine(&j, &a);
    ms_sakke_jac_double(&j, &j);
    CHECK(!ms_fp_iszero(&j.z) && ms_fp_iszero(&j.x)); /* [2]T = (0, 0) */
    ms_sakke_jac_double(&j, &j);
    CHECK(ms_fp_iszero(&j.z));
}

/* [k]P encoded, for points of E[q] that are not the right ones. */
static void multiple_of_p(uint8_t out[257], uint64_t k)
{
    ms_sakke_affine p, a;
    ms_sakke_jac t;
    uint64_t kl[MS_LIMBS] = {k};
    ms_sakke_generator(&p);
    ms_sakke_mul_var(&t, &p, kl);
    CHECK(ms_sakke_jac_to_affine(&a, &t) == 0);
    ms_sakke_point_encode(out, &a);
}

static int is_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static void test_rejections(void)
{
    ms_sakke_kms *kms = NULL;
    CHECK_ERR(ms_sakke_kms_new(&kms, rfc_Z), MS_OK);
    uint8_t rsk[257], sed[273], ssv[17], I[257], bad[273], buf[300];
    const uint8_t *b = rfc_b;
    size_t bl = rfc_b_len;
    ms_sakke_prepared_rsk *prep = NULL;
    ms_sakke_peer *peer = NULL;
    CHECK_ERR(ms_sakke_prepared_rsk_new(&prep, kms, b, bl, rfc_rsk), MS_OK);
    CHECK_ERR(ms_sakke_peer_new(&peer, kms, b, bl), MS_OK);

    /* SSV size */
    CHECK_ERR(ms_sakke_encap(kms, sed, b, bl, rfc_ssv, 15), MS_ERR_SSV_SIZE);
    CHECK_ERR(ms_sakke_encap(kms, sed, b, bl, buf, 17), MS_ERR_SSV_SIZE);
    CHECK_ERR(ms_sakke_peer_encap(peer, sed, rfc_ssv, 0), MS_ERR_SSV_SIZE);
    CHECK_ERR(ms_sakke_decap(kms, ssv, 17, b, bl, rfc_rsk, rfc_sed, 273), MS_ERR_SSV_SIZE);
    CHECK_ERR(ms_sakke_prepared_rsk_decap(prep, ssv, 15, rfc_sed, 273), MS_ERR_SSV_SIZE);

    /* identifiers out of range: 0, 1, q, q + 1, 129 octets, empty, NULL */
    uint8_t ids[6][129];
    size_t lens[6] = {1, 1, 128, 128, 129, 0};
    memset(ids, 0, sizeof ids);
    ids[1][0] = 1;
    ms_u1024_to_be(ids[2], ms_mont_q.m);
    memcpy(ids[3], ids[2], 128);
    ids[3][127] += 1; /* q ends in 0xFB: no carry */
    memset(ids[4], 0, 129);
    ids[4][128] = 5; /* small value but too long */
    for (int i = 0; i < 7; i++) {
        const uint8_t *id = i < 6 ? ids[i] : NULL;
        size_t len = i < 6 ? lens[i] : 5;
        ms_sakke_peer *pp = NULL;
        ms_sakke_prepared_rsk *pr = NULL;
        CHECK_ERR(ms_sakke_rsk_issue(kms, rsk, rfc_z, id, len), MS_ERR_ID_RANGE);
        CHECK_ERR(ms_sakke_identity_point(kms, I, id, len), MS_ERR_ID_RANGE);
        CHECK_ERR(ms_sakke_rsk_validate(kms, id, len, rfc_rsk), MS_ERR_ID_RANGE);
        CHECK_ERR(ms_sakke_encap(kms, sed, id, len, rfc_ssv, 16), MS_ERR_ID_RANGE);
        CHECK_ERR(ms_sakke_decap(kms, ssv, 16, id, len, rfc_rsk, rfc_sed, 273), MS_ERR_ID_RANGE);
        CHECK_ERR(ms_sakke_peer_new(&pp, kms, id, len), MS_ERR_ID_RANGE);
        CHECK_ERR(ms_sakke_prepared_rsk_new(&pr, kms, id, len, rfc_rsk), MS_ERR_ID_RANGE);
        CHECK(pp == NULL && pr == NULL);
    }
    /* q - 1 and 2 are fine */
    memcpy(buf, ids[2], 128);
    buf[127] -= 1;
    CHECK_ERR(ms_sakke_identity_point(kms, I, buf, 128), MS_OK);
    buf[0] = 2;
    CHECK_ERR(ms_sakke_identity_point(kms, I, buf, 1), MS_OK);

    /* Z: bad encoding, off the curve, not of order q */
    ms_sakke_kms *k2 = NULL;
    memcpy(buf, rfc_Z, 257);
    buf[0] = 0x02;
    CHECK_ERR(ms_sakke_kms_new(&k2, buf), MS_ERR_KMS_PUBLIC_INVALID);
    memcpy(buf, rfc_Z, 257);
    buf[256] ^= 1;
    CHECK_ERR(ms_sakke_kms_new(&k2, buf), MS_ERR_KMS_PUBLIC_INVALID);
    memset(buf, 0, 257);
    buf[0] = 0x04; /* (0, 0): on the curve, order 2 */
    CHECK_ERR(ms_sakke_kms_new(&k2, buf), MS_ERR_KMS_PUBLIC_INVALID);
    point_outside_eq(buf);
    CHECK_ERR(ms_sakke_kms_new(&k2, buf), MS_ERR_KMS_PUBLIC_INVALID);
    CHECK(k2 == NULL);

    /* RSK: off the curve, bad encoding, outside E[q], tampered, for another identifier */
    ms_sakke_prepared_rsk *pr = NULL;
    memcpy(buf, rfc_rsk, 257);
    buf[200] ^= 0x10;
    CHECK_ERR(ms_sakke_rsk_validate(kms, b, bl, buf), MS_ERR_POINT_NOT_ON_CURVE);
    CHECK_ERR(ms_sakke_prepared_rsk_new(&pr, kms, b, bl, buf), MS_ERR_POINT_NOT_ON_CURVE);
    CHECK_ERR(ms_sakke_decap(kms, ssv, 16, b, bl, buf, rfc_sed, 273), MS_ERR_POINT_NOT_ON_CURVE);
    memcpy(buf, rfc_rsk, 257);
    buf[0] = 0x03;
    CHECK_ERR(ms_sakke_rsk_validate(kms, b, bl, buf), MS_ERR_BAD_ENCODING);
    CHECK_ERR(ms_sakke_prepared_rsk_new(&pr, kms, b, bl, buf), MS_ERR_BAD_ENCODING);
    point_outside_eq(buf);
    CHECK_ERR(ms_sakke_rsk_validate(kms, b, bl, buf), MS_ERR_POINT_ORDER);
    CHECK_ERR(ms_sakke_prepared_rsk_new(&pr, kms, b, bl, buf), MS_ERR_POINT_ORDER);
    multiple_of_p(buf, 2);
    CHECK_ERR(ms_sakke_rsk_validate(kms, b, bl, buf), MS_ERR_RSK_INVALID);
    CHECK_ERR(ms_sakke_prepared_rsk_new(&pr, kms, b, bl, buf), MS_ERR_RSK_INVALID);
    uint8_t other[8] = "other";
    uint8_t rsk_other[257];
    CHECK_ERR(ms_sakke_rsk_issue(kms, rsk_other, rfc_z, other, 5), MS_OK);
    CHECK_ERR(ms_sakke_rsk_validate(kms, other, 5, rsk_other), MS_OK);
    CHECK_ERR(ms_sakke_rsk_validate(kms, b, bl, rsk_other), MS_ERR_RSK_INVALID);
    CHECK_ERR(ms_sakke_prepared_rsk_new(&pr, kms, b, bl, rsk_other), MS_ERR_RSK_INVALID);
    CHECK_ERR(ms_sakke_prepared_rsk_new(&pr, kms, other, 5, rfc_rsk), MS_ERR_RSK_INVALID);
    CHECK(pr == NULL);

    /* decapsulation: tampered H, tampered R (another point of E[q], a point outside
     * E[q], off the curve, bad prefix), wrong length, wrong identity, wrong RSK, wrong
     * KMS. A failed TEST leaves the output SSV zeroed. */
    memcpy(bad, rfc_sed, 273);
    bad[272] ^= 1;
    memset(ssv, 0xAA, 16);
    CHECK_ERR(ms_sakke_decap(kms, ssv, 16, b, bl, rfc_rsk, bad, 273), MS_ERR_DECAP_TEST);
    CHECK(is_zero(ssv, 16));
    memset(ssv, 0xAA, 16);
    CHECK_ERR(ms_sakke_prepared_rsk_decap(prep, ssv, 16, bad, 273), MS_ERR_DECAP_TEST);
    CHECK(is_zero(ssv, 16));

    memcpy(bad, rfc_sed, 273);
    multiple_of_p(bad, 5);
    CHECK_ERR(ms_sakke_decap(kms, ssv, 16, b, bl, rfc_rsk, bad, 273), MS_ERR_DECAP_TEST);
    CHECK_ERR(ms_sakke_prepared_rsk_decap(prep, ssv, 16, bad, 273), MS_ERR_DECAP_TEST);
    point_outside_eq(bad);
    CHECK_ERR(ms_sakke_decap(kms, ssv, 16, b, bl, rfc_rsk, bad, 273), MS_ERR_DECAP_TEST);
    CHECK_ERR(ms_sakke_prepared_rsk_decap(prep, ssv, 16, bad, 273), MS_ERR_DECAP_TEST);
    /* R of order 2 or 4 (the pairing's Miller value may vanish for them) */
    uint8_t t2[257], t4[257];
    small_order_points(t2, t4);
    memcpy(bad, t2, 257);
    CHECK_ERR(ms_sakke_decap(kms, ssv, 16, b, bl, rfc_rsk, bad, 273), MS_ERR_DECAP_TEST);
    CHECK_ERR(ms_sakke_prepared_rsk_decap(prep, ssv, 16, bad, 273), MS_ERR_DECAP_TEST);
    memcpy(bad, t4, 257);
    CHECK_ERR(ms_sakke_decap(kms, ssv, 16, b, bl, rfc_rsk, bad, 273), MS_ERR_DECAP_TEST);
    CHECK_ERR(ms_sakke_prepared_rsk_decap(prep, ssv, 16, bad, 273), MS_ERR_DECAP_TEST);
    CHECK_ERR(ms_sakke_kms_new(&k2, t4), MS_ERR_KMS_PUBLIC_INVALID);
    CHECK_ERR(ms_sakke_rsk_validate(kms, b, bl, t2), MS_ERR_POINT_ORDER);
    CHECK_ERR(ms_sakke_rsk_validate(kms, b, bl, t4), MS_ERR_POINT_ORDER);
    CHECK_ERR(ms_sakke_prepared_rsk_new(&pr, kms, b, bl, t4), MS_ERR_POINT_ORDER);
    /* RSK + T with T of order 2 or 4: the pairing alone cannot see T (<I, K + T> = g),
     * only the order check can. */
    for (int which = 0; which < 2; which++) {
        ms_sakke_affine k_aff, t_aff, sum_aff;
        ms_sakke_jac sum;
        CHECK_ERR(ms_sakke_point_decode(&k_aff, rfc_rsk), MS_OK);
        CHECK_ERR(ms_sakke_point_decode(&t_aff, which == 0 ? t2 : t4), MS_OK);
        ms_sakke_jac_from_affine(&sum, &k_aff);
        ms_sakke_jac_add_affine(&sum, &sum, &t_aff);
        CHECK(ms_sakke_jac_to_affine(&sum_aff, &sum) == 0);
        ms_sakke_point_encode(buf, &sum_aff);
        CHECK_ERR(ms_sakke_rsk_validate(kms, b, bl, buf), MS_ERR_POINT_ORDER);
        CHECK_ERR(ms_sakke_prepared_rsk_new(&pr, kms, b, bl, buf), MS_ERR_POINT_ORDER);
    }
    memcpy(bad, rfc_sed, 273);
    bad[100] ^= 4;
    CHECK_ERR(ms_sakke_decap(kms, ssv, 16, b, bl, rfc_rsk, bad, 273), MS_ERR_POINT_NOT_ON_CURVE);
    CHECK_ERR(ms_sakke_prepared_rsk_decap(prep, ssv, 16, bad, 273), MS_ERR_POINT_NOT_ON_CURVE);
    memcpy(bad, rfc_sed, 273);
    bad[0] = 0x02;
    CHECK_ERR(ms_sakke_decap(kms, ssv, 16, b, bl, rfc_rsk, bad, 273), MS_ERR_BAD_ENCODING);
    CHECK_ERR(ms_sakke_prepared_rsk_decap(prep, ssv, 16, bad, 273), MS_ERR_BAD_ENCODING);

    CHECK_ERR(ms_sakke_decap(kms, ssv, 16, b, bl, rfc_rsk, rfc_sed, 272), MS_ERR_BAD_LENGTH);
    CHECK_ERR(ms_sakke_decap(kms, ssv, 16, b, bl, rfc_rsk, rfc_sed, 274), MS_ERR_BAD_LENGTH);
    CHECK_ERR(ms_sakke_prepared_rsk_decap(prep, ssv, 16, rfc_sed, 0), MS_ERR_BAD_LENGTH);

    CHECK_ERR(ms_sakke_decap(kms, ssv, 16, other, 5, rfc_rsk, rfc_sed, 273), MS_ERR_DECAP_TEST);
    CHECK_ERR(ms_sakke_decap(kms, ssv, 16, b, bl, rsk_other, rfc_sed, 273), MS_ERR_DECAP_TEST);
    ms_sakke_prepared_rsk *prep_other = NULL;
    CHECK_ERR(ms_sakke_prepared_rsk_new(&prep_other, kms, other, 5, rsk_other), MS_OK);
    CHECK_ERR(ms_sakke_prepared_rsk_decap(prep_other, ssv, 16, rfc_sed, 273), MS_ERR_DECAP_TEST);
    ms_sakke_prepared_rsk_free(prep_other);

    uint8_t z2[128], Z2[257];
    CHECK_ERR(ms_sakke_master_keygen(z2, Z2, &ms_test_rng), MS_OK);
    CHECK_ERR(ms_sakke_kms_new(&k2, Z2), MS_OK);
    CHECK_ERR(ms_sakke_decap(k2, ssv, 16, b, bl, rfc_rsk, rfc_sed, 273), MS_ERR_DECAP_TEST);
    /* and the other KMS's RSK does not validate against this one */
    CHECK_ERR(ms_sakke_rsk_issue(k2, rsk, z2, b, bl), MS_OK);
    CHECK_ERR(ms_sakke_rsk_validate(k2, b, bl, rsk), MS_OK);
    CHECK_ERR(ms_sakke_rsk_validate(kms, b, bl, rsk), MS_ERR_RSK_INVALID);
    ms_sakke_kms_free(k2);

    /* master secrets 0, 1, q, 2^1024 - 1 */
    uint8_t zs[128];
    memset(zs, 0, 128);
    CHECK_ERR(ms_sakke_master_public(Z2, zs), MS_ERR_SCALAR_RANGE);
    CHECK_ERR(ms_sakke_rsk_issue(kms, rsk, zs, b, bl), MS_ERR_SCALAR_RANGE);
    zs[127] = 1;
    CHECK_ERR(ms_sakke_master_public(Z2, zs), MS_ERR_SCALAR_RANGE);
    CHECK_ERR(ms_sakke_rsk_issue(kms, rsk, zs, b, bl), MS_ERR_SCALAR_RANGE);
    ms_u1024_to_be(zs, ms_mont_q.m);
    CHECK_ERR(ms_sakke_master_public(Z2, zs), MS_ERR_SCALAR_RANGE);
    CHECK_ERR(ms_sakke_rsk_issue(kms, rsk, zs, b, bl), MS_ERR_SCALAR_RANGE);
    memset(zs, 0xFF, 128);
    CHECK_ERR(ms_sakke_master_public(Z2, zs), MS_ERR_SCALAR_RANGE);
    zs[0] = 0;
    ms_u1024_to_be(zs, ms_mont_q.m);
    zs[127] -= 1; /* q - 1 is a valid secret */
    CHECK_ERR(ms_sakke_master_public(Z2, zs), MS_OK);
    zs[127] = 2;
    memset(zs, 0, 127);
    CHECK_ERR(ms_sakke_master_public(Z2, zs), MS_OK);

    /* a + z = 0 mod q: z = q - a. No RSK, and I = [a]P + Z is infinity. */
    uint8_t aid[2] = {0x12, 0x34};
    uint64_t zl[MS_LIMBS], al[MS_LIMBS] = {0x1234};
    ms_u1024_sub(zl, ms_mont_q.m, al);
    ms_u1024_to_be(zs, zl);
    CHECK_ERR(ms_sakke_master_public(Z2, zs), MS_OK);
    CHECK_ERR(ms_sakke_kms_new(&k2, Z2), MS_OK);
    CHECK_ERR(ms_sakke_rsk_issue(k2, rsk, zs, aid, 2), MS_ERR_SCALAR_RANGE);
    CHECK_ERR(ms_sakke_identity_point(k2, I, aid, 2), MS_ERR_ID_RANGE);
    CHECK_ERR(ms_sakke_encap(k2, sed, aid, 2, rfc_ssv, 16), MS_ERR_ID_RANGE);
    ms_sakke_peer *pz = NULL;
    CHECK_ERR(ms_sakke_peer_new(&pz, k2, aid, 2), MS_ERR_ID_RANGE);
    ms_sakke_kms_free(k2);

    /* NULL arguments */
    ms_sakke_kms *kn = NULL;
    CHECK_ERR(ms_sakke_kms_new(NULL, rfc_Z), MS_ERR_ARG);
    CHECK_ERR(ms_sakke_kms_new(&kn, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_sakke_master_keygen(NULL, Z2, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_sakke_master_public(NULL, rfc_z), MS_ERR_ARG);
    CHECK_ERR(ms_sakke_rsk_issue(NULL, rsk, rfc_z, b, bl), MS_ERR_ARG);
    CHECK_ERR(ms_sakke_rsk_validate(kms, b, bl, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_sakke_encap(kms, NULL, b, bl, rfc_ssv, 16), MS_ERR_ARG);
    CHECK_ERR(ms_sakke_decap(kms, NULL, 16, b, bl, rfc_rsk, rfc_sed, 273), MS_ERR_ARG);
    CHECK_ERR(ms_sakke_peer_encap(NULL, sed, rfc_ssv, 16), MS_ERR_ARG);
    CHECK_ERR(ms_sakke_prepared_rsk_decap(NULL, ssv, 16, rfc_sed, 273), MS_ERR_ARG);
    ms_sakke_kms_free(NULL);
    ms_sakke_peer_free(NULL);
    ms_sakke_prepared_rsk_free(NULL);
    CHECK(ms_sakke_kms_table_bytes(NULL) == 0);

    /* the good paths still work after all that */
    CHECK_ERR(ms_sakke_prepared_rsk_decap(prep, ssv, 16, rfc_sed, 273), MS_OK);
    CHECK_MEM(ssv, rfc_ssv, 16);

    ms_sakke_peer_free(peer);
    ms_sakke_prepared_rsk_free(prep);
    ms_sakke_kms_free(kms);
}

/* ---- tables built on first need ------------------------------------------------------------- */

/* The KMS object validates and decapsulates without its tables for the first few such
 * operations and with them after (sakke.c, COLD_USES = 4): every verdict must be the same
 * on both sides of the switch, so each check runs well past it on a fresh object, the
 * good and the bad cases interleaved. */
#define PAST_SWITCH 12

static void test_lazy_tables(void)
{
    static const uint8_t other[5] = {'o', 't', 'h', 'e', 'r'};
    uint8_t rsk_other[257], ssv[16];
    ms_sakke_kms *kms = NULL;
    CHECK_ERR(ms_sakke_kms_new(&kms, rfc_Z), MS_OK);
    CHECK_ERR(ms_sakke_rsk_issue(kms, rsk_other, rfc_z, other, sizeof other), MS_OK);
    ms_sakke_kms_free(kms);

    /* validation */
    kms = NULL;
    CHECK_ERR(ms_sakke_kms_new(&kms, rfc_Z), MS_OK);
    for (int i = 0; kms != NULL && i < PAST_SWITCH; i++) {
        CHECK_ERR(ms_sakke_rsk_validate(kms, rfc_b, rfc_b_len, rfc_rsk), MS_OK);
        CHECK_ERR(ms_sakke_rsk_validate(kms, rfc_b, rfc_b_len, rsk_other), MS_ERR_RSK_INVALID);
        CHECK_ERR(ms_sakke_rsk_validate(kms, other, sizeof other, rfc_rsk), MS_ERR_RSK_INVALID);
        CHECK_ERR(ms_sakke_rsk_validate(kms, other, sizeof other, rsk_other), MS_OK);
    }
    ms_sakke_kms_free(kms);

    /* cold decapsulation: the TEST's [r]I by ladder, then by the combs of P and Z */
    kms = NULL;
    CHECK_ERR(ms_sakke_kms_new(&kms, rfc_Z), MS_OK);
    for (int i = 0; kms != NULL && i < PAST_SWITCH; i++) {
        memset(ssv, 0, sizeof ssv);
        CHECK_ERR(ms_sakke_decap(kms, ssv, 16, rfc_b, rfc_b_len, rfc_rsk, rfc_sed, 273), MS_OK);
        CHECK_MEM(ssv, rfc_ssv, 16);
        CHECK_ERR(ms_sakke_decap(kms, ssv, 16, other, sizeof other, rsk_other, rfc_sed, 273),
                  MS_ERR_DECAP_TEST);
        CHECK_ERR(ms_sakke_decap(kms, ssv, 16, rfc_b, rfc_b_len, rsk_other, rfc_sed, 273),
                  MS_ERR_DECAP_TEST);
    }
    /* an encapsulation made by this object (its own tables) opens with the same object */
    CHECK_ERR(ms_sakke_kms_prepare_sender(kms), MS_OK);
    CHECK_ERR(ms_sakke_kms_prepare_sender(NULL), MS_ERR_ARG);
    uint8_t sed[273];
    CHECK_ERR(ms_sakke_encap(kms, sed, other, sizeof other, rfc_ssv, 16), MS_OK);
    memset(ssv, 0, sizeof ssv);
    CHECK_ERR(ms_sakke_decap(kms, ssv, 16, other, sizeof other, rsk_other, sed, 273), MS_OK);
    CHECK_MEM(ssv, rfc_ssv, 16);
    ms_sakke_kms_free(kms);

    /* a + z = 0 mod q (I is infinity): the same verdicts with and without the tables */
    uint8_t zs[128], Z2[257], aid[2] = {0x12, 0x34};
    uint64_t zl[MS_LIMBS], al[MS_LIMBS] = {0x1234};
    ms_u1024_sub(zl, ms_mont_q.m, al);
    ms_u1024_to_be(zs, zl);
    CHECK_ERR(ms_sakke_master_public(Z2, zs), MS_OK);
    kms = NULL;
    CHECK_ERR(ms_sakke_kms_new(&kms, Z2), MS_OK);
    for (int i = 0; kms != NULL && i < PAST_SWITCH; i++) {
        CHECK_ERR(ms_sakke_rsk_validate(kms, aid, 2, rfc_rsk), MS_ERR_ID_RANGE);
        CHECK_ERR(ms_sakke_decap(kms, ssv, 16, aid, 2, rfc_rsk, rfc_sed, 273), MS_ERR_DECAP_TEST);
    }
    ms_sakke_kms_free(kms);

    /* the sender's tables built up front give the RFC's encapsulation */
    kms = NULL;
    CHECK_ERR(ms_sakke_kms_new(&kms, rfc_Z), MS_OK);
    CHECK_ERR(ms_sakke_kms_prepare_sender(kms), MS_OK);
    CHECK_ERR(ms_sakke_encap(kms, sed, rfc_b, rfc_b_len, rfc_ssv, 16), MS_OK);
    CHECK_MEM(sed, rfc_sed, sizeof sed);
    ms_sakke_kms_free(kms);
}

/* Threads sharing one fresh object: the tables are built once, by whichever thread gets
 * past the switch first, while the others validate and decapsulate. */
typedef struct lazy_worker {
    const ms_sakke_kms *kms;
    int ok;
} lazy_worker;

static void *lazy_worker_main(void *arg)
{
    lazy_worker *w = arg;
    uint8_t ssv[16];
    for (int i = 0; i < PAST_SWITCH / 2; i++) {
        w->ok += ms_sakke_rsk_validate(w->kms, rfc_b, rfc_b_len, rfc_rsk) == MS_OK;
        w->ok += ms_sakke_decap(w->kms, ssv, 16, rfc_b, rfc_b_len, rfc_rsk, rfc_sed, 273) ==
                     MS_OK &&
                 memcmp(ssv, rfc_ssv, 16) == 0;
    }
    return NULL;
}

static void test_lazy_tables_threads(void)
{
    ms_sakke_kms *kms = NULL;
    CHECK_ERR(ms_sakke_kms_new(&kms, rfc_Z), MS_OK);
    if (kms == NULL)
        return;
    lazy_worker w[3];
    pthread_t t[3];
    bool started[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (lazy_worker){kms, 0};
        started[i] = pthread_create(&t[i], NULL, lazy_worker_main, &w[i]) == 0;
        CHECK(started[i]);
    }
    for (int i = 0; i < 3; i++) {
        if (started[i])
            pthread_join(t[i], NULL);
        CHECK(w[i].ok == PAST_SWITCH);
    }
    ms_sakke_kms_free(kms);
}

int main(void)
{
    ms_test_seed();
    ms_test_check_fp_backend();
    load_vectors();
    test_htir();
    test_rfc_vector();
    test_round_trips();
    test_rejections();
    test_lazy_tables();
    test_lazy_tables_threads();
    return ms_test_finish();
}
