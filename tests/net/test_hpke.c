/*
 * HPKE base mode (src/net/hpke.c) against RFC 9180 Appendix A.1.1 (tests/vectors/rfc9180.txt):
 * DeriveKeyPair of both key pairs, enc, the key schedule's key, base nonce and exporter
 * secret, the encryptions at sequence numbers 0, 1, 2, 4, 255 and 256 (sealed and opened),
 * and the three exported values. Then the single-shot API: a round trip with fresh keys, and
 * every way an envelope must fail to open (another key, another info, another aad, each
 * octet of enc, ciphertext and tag altered, truncated, extended, a low-order enc), plus the
 * argument and buffer checks and the wiping of a context.
 */
#include <string.h>

#include "net/hpke.h"
#include "testutil.h"

#define VEC "rfc9180.txt"

static size_t vec(const char *name, uint8_t *out, size_t cap)
{
    return ms_test_vector(VEC, name, out, cap);
}

static void test_derive_keypair(void)
{
    uint8_t ikm[64], sk[32], pk[32], want[32];
    size_t n = vec("ikmE", ikm, sizeof ikm);
    CHECK_ERR(ms_hpke_derive_keypair(ikm, n, sk, pk), MS_OK);
    vec("skEm", want, sizeof want);
    CHECK_MEM(sk, want, 32);
    vec("pkEm", want, sizeof want);
    CHECK_MEM(pk, want, 32);

    n = vec("ikmR", ikm, sizeof ikm);
    CHECK_ERR(ms_hpke_derive_keypair(ikm, n, sk, pk), MS_OK);
    vec("skRm", want, sizeof want);
    CHECK_MEM(sk, want, 32);
    vec("pkRm", want, sizeof want);
    CHECK_MEM(pk, want, 32);

    uint8_t pk2[32];
    CHECK_ERR(ms_hpke_public(sk, pk2), MS_OK);
    CHECK_MEM(pk2, want, 32);
    CHECK_ERR(ms_hpke_derive_keypair(NULL, 32, sk, pk), MS_ERR_ARG);
}

static const int seqs[] = {0, 1, 2, 4, 255, 256};

static void test_vectors(void)
{
    uint8_t info[64], ikm_e[64], pk_r[32], sk_r[32], enc[32], want[64], pt[64];
    size_t info_len = vec("info", info, sizeof info);
    size_t ikm_len = vec("ikmE", ikm_e, sizeof ikm_e);
    vec("pkRm", pk_r, sizeof pk_r);
    vec("skRm", sk_r, sizeof sk_r);
    size_t pt_len = vec("pt", pt, sizeof pt);

    ms_hpke_ctx s, r;
    CHECK_ERR(ms_hpke_setup_sender_ikm(&s, enc, pk_r, info, info_len, ikm_e, ikm_len), MS_OK);
    vec("enc", want, sizeof want);
    CHECK_MEM(enc, want, 32);
    vec("key", want, sizeof want);
    CHECK_MEM(s.key, want, 16);
    vec("base_nonce", want, sizeof want);
    CHECK_MEM(s.base_nonce, want, 12);
    vec("exporter_secret", want, sizeof want);
    CHECK_MEM(s.exporter_secret, want, 32);

    CHECK_ERR(ms_hpke_setup_recipient(&r, enc, sk_r, info, info_len), MS_OK);
    vec("key", want, sizeof want);
    CHECK_MEM(r.key, want, 16);
    vec("base_nonce", want, sizeof want);
    CHECK_MEM(r.base_nonce, want, 12);

    /* A sender's context does not open, a recipient's does not seal. */
    uint8_t ct[128], out[128];
    size_t ct_len = 0, out_len = 0;
    CHECK_ERR(ms_hpke_ctx_open(&s, NULL, 0, ct, 32, out, sizeof out, &out_len), MS_ERR_ARG);
    CHECK_ERR(ms_hpke_ctx_seal(&r, NULL, 0, pt, pt_len, ct, sizeof ct, &ct_len), MS_ERR_ARG);

    size_t k = 0;
    for (int seq = 0; seq <= 256 && k < sizeof seqs / sizeof seqs[0]; seq++) {
        if (seq != seqs[k]) {
            /* the numbers in between: any message advances both sides */
            CHECK_ERR(ms_hpke_ctx_seal(&s, NULL, 0, pt, 1, ct, sizeof ct, &ct_len), MS_OK);
            CHECK_ERR(ms_hpke_ctx_open(&r, NULL, 0, ct, ct_len, out, sizeof out, &out_len), MS_OK);
            continue;
        }
        char name[32];
        uint8_t aad[32], nonce_want[12], ct_want[128], nonce[12];
        snprintf(name, sizeof name, "aad_%d", seq);
        size_t aad_len = vec(name, aad, sizeof aad);
        snprintf(name, sizeof name, "nonce_%d", seq);
        vec(name, nonce_want, sizeof nonce_want);
        snprintf(name, sizeof name, "ct_%d", seq);
        size_t want_len = vec(name, ct_want, sizeof ct_want);
        /* the nonce of this sequence number: base_nonce xor seq */
        memcpy(nonce, s.base_nonce, 12);
        nonce[11] ^= (uint8_t)seq;
        nonce[10] ^= (uint8_t)(seq >> 8);
        CHECK_MEM(nonce, nonce_want, 12);
        CHECK_ERR(ms_hpke_ctx_seal(&s, aad, aad_len, pt, pt_len, ct, sizeof ct, &ct_len), MS_OK);
        CHECK(ct_len == want_len);
        CHECK_MEM(ct, ct_want, want_len);
        CHECK_ERR(ms_hpke_ctx_open(&r, aad, aad_len, ct_want, want_len, out, sizeof out, &out_len),
                  MS_OK);
        CHECK(out_len == pt_len);
        CHECK_MEM(out, pt, pt_len);
        k++;
    }
    CHECK(k == sizeof seqs / sizeof seqs[0]);
    CHECK(s.seq == 257 && r.seq == 257);

    /* A failed open leaves the sequence number where it was. */
    uint8_t bad[64];
    memset(bad, 0x55, sizeof bad);
    CHECK_ERR(ms_hpke_ctx_open(&r, NULL, 0, bad, 40, out, sizeof out, &out_len), MS_ERR_DECRYPT);
    CHECK(r.seq == 257);

    static const char *ctx_names[] = {NULL, "export_ctx_1", "export_ctx_2"};
    for (int i = 0; i < 3; i++) {
        uint8_t ec[32], got[32], exp_want[32];
        size_t ec_len = ctx_names[i] != NULL ? vec(ctx_names[i], ec, sizeof ec) : 0;
        char name[16];
        snprintf(name, sizeof name, "export_%d", i);
        vec(name, exp_want, sizeof exp_want);
        CHECK_ERR(ms_hpke_export(&s, ec, ec_len, got, 32), MS_OK);
        CHECK_MEM(got, exp_want, 32);
        CHECK_ERR(ms_hpke_export(&r, ec, ec_len, got, 32), MS_OK);
        CHECK_MEM(got, exp_want, 32);
    }
    uint8_t big[256 * 32];
    CHECK_ERR(ms_hpke_export(&s, NULL, 0, big, 255 * 32), MS_OK);
    CHECK_ERR(ms_hpke_export(&s, NULL, 0, big, 255 * 32 + 1), MS_ERR_ARG);

    /* Wiping leaves no key and an unusable context. */
    ms_hpke_ctx_wipe(&s);
    uint8_t zero[32] = {0};
    CHECK_MEM(s.key, zero, 16);
    CHECK_MEM(s.exporter_secret, zero, 32);
    CHECK_ERR(ms_hpke_ctx_seal(&s, NULL, 0, pt, pt_len, ct, sizeof ct, &ct_len), MS_ERR_ARG);
    ms_hpke_ctx_wipe(&r);
}

static const uint8_t info[] = "mikeysakke threshold share, server 2";
static const uint8_t aad[] = "period 2026-12, slot 0001";
static const uint8_t msg[] = "u_j || SSK_j || signature: 160 octets in the product";

static void test_single_shot(void)
{
    uint8_t sk[32], pk[32], sk2[32], pk2[32];
    CHECK_ERR(ms_hpke_keygen(sk, pk, NULL), MS_OK);
    CHECK_ERR(ms_hpke_keygen(sk2, pk2, NULL), MS_OK);
    CHECK(memcmp(pk, pk2, 32) != 0);

    uint8_t blob[256], blob2[256], pt[256];
    size_t blob_len = 0, blob2_len = 0, pt_len = 0;
    CHECK_ERR(ms_hpke_seal(pk, info, sizeof info, aad, sizeof aad, msg, sizeof msg, blob,
                           sizeof blob, &blob_len, NULL), MS_OK);
    CHECK(blob_len == sizeof msg + MS_HPKE_OVERHEAD);
    CHECK_ERR(ms_hpke_open(sk, info, sizeof info, aad, sizeof aad, blob, blob_len, pt, sizeof pt,
                           &pt_len), MS_OK);
    CHECK(pt_len == sizeof msg);
    CHECK_MEM(pt, msg, sizeof msg);

    /* Two seals of one message differ (fresh ephemeral key). */
    CHECK_ERR(ms_hpke_seal(pk, info, sizeof info, aad, sizeof aad, msg, sizeof msg, blob2,
                           sizeof blob2, &blob2_len, NULL), MS_OK);
    CHECK(blob2_len == blob_len && memcmp(blob, blob2, blob_len) != 0);

    /* An empty message, with empty info and aad. */
    CHECK_ERR(ms_hpke_seal(pk, NULL, 0, NULL, 0, NULL, 0, blob2, sizeof blob2, &blob2_len, NULL),
              MS_OK);
    CHECK(blob2_len == MS_HPKE_OVERHEAD);
    CHECK_ERR(ms_hpke_open(sk, NULL, 0, NULL, 0, blob2, blob2_len, NULL, 0, &pt_len), MS_OK);
    CHECK(pt_len == 0);
    CHECK_ERR(ms_hpke_open(sk, info, 1, NULL, 0, blob2, blob2_len, NULL, 0, &pt_len),
              MS_ERR_DECRYPT);

    /* Rejections: another recipient key, another info, another aad. */
    memset(pt, 0xAA, sizeof pt);
    CHECK_ERR(ms_hpke_open(sk2, info, sizeof info, aad, sizeof aad, blob, blob_len, pt,
                           sizeof pt, &pt_len), MS_ERR_DECRYPT);
    uint8_t zero[256] = {0};
    CHECK_MEM(pt, zero, sizeof msg); /* nothing of a failed open is left */
    CHECK_ERR(ms_hpke_open(sk, info, sizeof info - 2, aad, sizeof aad, blob, blob_len, pt,
                           sizeof pt, &pt_len), MS_ERR_DECRYPT);
    CHECK_ERR(ms_hpke_open(sk, NULL, 0, aad, sizeof aad, blob, blob_len, pt, sizeof pt, &pt_len),
              MS_ERR_DECRYPT);
    uint8_t aad2[sizeof aad];
    memcpy(aad2, aad, sizeof aad);
    aad2[7] ^= 1;
    CHECK_ERR(ms_hpke_open(sk, info, sizeof info, aad2, sizeof aad2, blob, blob_len, pt,
                           sizeof pt, &pt_len), MS_ERR_DECRYPT);
    CHECK_ERR(ms_hpke_open(sk, info, sizeof info, NULL, 0, blob, blob_len, pt, sizeof pt,
                           &pt_len), MS_ERR_DECRYPT);

    /* Every octet altered (enc, ciphertext, tag): refused each time. */
    int refused = 0;
    for (size_t i = 0; i < blob_len; i++) {
        memcpy(blob2, blob, blob_len);
        blob2[i] ^= (uint8_t)(1u << (i % 8));
        if (ms_hpke_open(sk, info, sizeof info, aad, sizeof aad, blob2, blob_len, pt, sizeof pt,
                         &pt_len) == MS_ERR_DECRYPT)
            refused++;
    }
    CHECK(refused == (int)blob_len);

    /* Truncated (each length below the whole) and extended. */
    int short_refused = 0;
    for (size_t n = 0; n < blob_len; n++) {
        ms_err e = ms_hpke_open(sk, info, sizeof info, aad, sizeof aad, blob, n, pt, sizeof pt,
                                &pt_len);
        if ((n < MS_HPKE_OVERHEAD && e == MS_ERR_BAD_LENGTH) ||
            (n >= MS_HPKE_OVERHEAD && e == MS_ERR_DECRYPT))
            short_refused++;
    }
    CHECK(short_refused == (int)blob_len);
    memcpy(blob2, blob, blob_len);
    blob2[blob_len] = 0;
    CHECK_ERR(ms_hpke_open(sk, info, sizeof info, aad, sizeof aad, blob2, blob_len + 1, pt,
                           sizeof pt, &pt_len), MS_ERR_DECRYPT);

    /* A low-order enc (the all-zero point: X25519 gives zero): refused, not opened. */
    memcpy(blob2, blob, blob_len);
    memset(blob2, 0, MS_HPKE_ENC_BYTES);
    CHECK_ERR(ms_hpke_open(sk, info, sizeof info, aad, sizeof aad, blob2, blob_len, pt,
                           sizeof pt, &pt_len), MS_ERR_DECRYPT);
    /* ... and a low-order recipient key cannot be sealed to. */
    uint8_t low[32] = {1}; /* u = 1: order 1 */
    CHECK_ERR(ms_hpke_seal(low, NULL, 0, NULL, 0, msg, sizeof msg, blob2, sizeof blob2,
                           &blob2_len, NULL), MS_ERR_INVALID);

    /* Buffers and arguments. */
    CHECK_ERR(ms_hpke_seal(pk, info, sizeof info, aad, sizeof aad, msg, sizeof msg, blob2,
                           sizeof msg + MS_HPKE_OVERHEAD - 1, &blob2_len, NULL),
              MS_ERR_BUFFER_TOO_SMALL);
    CHECK_ERR(ms_hpke_open(sk, info, sizeof info, aad, sizeof aad, blob, blob_len, pt,
                           sizeof msg - 1, &pt_len), MS_ERR_BUFFER_TOO_SMALL);
    CHECK_ERR(ms_hpke_seal(NULL, NULL, 0, NULL, 0, msg, sizeof msg, blob2, sizeof blob2,
                           &blob2_len, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_hpke_seal(pk, NULL, 5, NULL, 0, msg, sizeof msg, blob2, sizeof blob2,
                           &blob2_len, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_hpke_open(NULL, NULL, 0, NULL, 0, blob, blob_len, pt, sizeof pt, &pt_len),
              MS_ERR_ARG);
    static uint8_t long_info[MS_HPKE_LABEL_MAX + 1];
    CHECK_ERR(ms_hpke_seal(pk, long_info, sizeof long_info, NULL, 0, msg, sizeof msg, blob2,
                           sizeof blob2, &blob2_len, NULL), MS_ERR_ARG);
    /* A long aad (a whole public record) is fine up to its limit. */
    static uint8_t long_aad[MS_HPKE_AAD_MAX + 1];
    long_aad[100] = 7;
    CHECK_ERR(ms_hpke_seal(pk, info, sizeof info, long_aad, MS_HPKE_AAD_MAX, msg, sizeof msg,
                           blob2, sizeof blob2, &blob2_len, NULL), MS_OK);
    CHECK_ERR(ms_hpke_open(sk, info, sizeof info, long_aad, MS_HPKE_AAD_MAX, blob2, blob2_len,
                           pt, sizeof pt, &pt_len), MS_OK);
    long_aad[100] = 8;
    CHECK_ERR(ms_hpke_open(sk, info, sizeof info, long_aad, MS_HPKE_AAD_MAX, blob2, blob2_len,
                           pt, sizeof pt, &pt_len), MS_ERR_DECRYPT);
    CHECK_ERR(ms_hpke_seal(pk, info, sizeof info, long_aad, sizeof long_aad, msg, sizeof msg,
                           blob2, sizeof blob2, &blob2_len, NULL), MS_ERR_ARG);
    ms_wipe(sk, sizeof sk);
    ms_wipe(sk2, sizeof sk2);
}

/* A failing random generator fails the key generation and the seal, not silently. */
static ms_err broken_fill(void *ctx, uint8_t *out, size_t len)
{
    (void)ctx;
    memset(out, 0, len);
    return MS_ERR_RNG;
}

static void test_rng_failure(void)
{
    ms_rng broken = {broken_fill, NULL};
    uint8_t sk[32], pk[32], blob[128];
    size_t n = 0;
    CHECK_ERR(ms_hpke_keygen(sk, pk, &broken), MS_ERR_RNG);
    CHECK_ERR(ms_hpke_keygen(sk, pk, NULL), MS_OK);
    CHECK_ERR(ms_hpke_seal(pk, NULL, 0, NULL, 0, msg, sizeof msg, blob, sizeof blob, &n, &broken),
              MS_ERR_RNG);
    ms_wipe(sk, sizeof sk);
}

/* One blob's AEAD key and nonce (cheater reports): they open that blob, with its aad,
 * and not another blob to the same key and info; the recipient derives them only for a
 * blob it can open. */
static void test_blob_key(void)
{
    uint8_t sk[MS_HPKE_SK_BYTES], pk[MS_HPKE_PK_BYTES], sk2[MS_HPKE_SK_BYTES],
        pk2[MS_HPKE_PK_BYTES];
    CHECK_ERR(ms_hpke_keygen(sk, pk, NULL), MS_OK); /* OpenSSL's generator: two keys */
    CHECK_ERR(ms_hpke_keygen(sk2, pk2, NULL), MS_OK);
    CHECK(memcmp(pk, pk2, sizeof pk) != 0);
    static const uint8_t binfo[] = "blob info", baad[] = "the record";
    uint8_t pt[160], pt2[160], blob[160 + MS_HPKE_OVERHEAD], other[160 + MS_HPKE_OVERHEAD],
        back[200];
    memset(pt, 0x5a, sizeof pt);
    memset(pt2, 0xa5, sizeof pt2);
    size_t bl = 0, ol = 0, got = 0;
    CHECK_ERR(ms_hpke_seal(pk, binfo, sizeof binfo, baad, sizeof baad, pt, sizeof pt, blob,
                           sizeof blob, &bl, NULL),
              MS_OK);
    CHECK_ERR(ms_hpke_seal(pk, binfo, sizeof binfo, baad, sizeof baad, pt2, sizeof pt2, other,
                           sizeof other, &ol, NULL),
              MS_OK);
    uint8_t key[MS_HPKE_KEY_BYTES], nonce[MS_HPKE_NONCE_BYTES];
    CHECK_ERR(ms_hpke_blob_key(sk, binfo, sizeof binfo, baad, sizeof baad, blob, bl, key, nonce),
              MS_OK);
    CHECK_ERR(ms_hpke_open_key(key, nonce, baad, sizeof baad, blob, bl, back, sizeof back, &got),
              MS_OK);
    CHECK(got == sizeof pt && memcmp(back, pt, sizeof pt) == 0);
    CHECK_ERR(ms_hpke_open_key(key, nonce, baad, sizeof baad, other, ol, back, sizeof back, &got),
              MS_ERR_DECRYPT);
    CHECK_ERR(ms_hpke_open_key(key, nonce, binfo, sizeof binfo, blob, bl, back, sizeof back, &got),
              MS_ERR_DECRYPT);
    CHECK_ERR(ms_hpke_blob_key(sk2, binfo, sizeof binfo, baad, sizeof baad, blob, bl, key, nonce),
              MS_ERR_DECRYPT);
    CHECK_ERR(ms_hpke_blob_key(sk, baad, sizeof baad, baad, sizeof baad, blob, bl, key, nonce),
              MS_ERR_DECRYPT);
    CHECK_ERR(ms_hpke_open_key(key, nonce, baad, sizeof baad, blob, 20, back, sizeof back, &got),
              MS_ERR_BAD_LENGTH);
}

int main(void)
{
    test_derive_keypair();
    test_vectors();
    test_single_shot();
    test_blob_key();
    test_rng_failure();
    return ms_test_finish();
}
