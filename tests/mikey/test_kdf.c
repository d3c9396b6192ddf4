/*
 * Key derivation: the MIKEY PRF and PRF-HMAC-SHA-256 against every vector of the digest
 * (5.14 a and b, 6.4), the PRF's chunking and truncation rules, the TS 33.220 KDF, the
 * GUK-ID rows of TS 33.180 (KDF output, salt, GUK-ID and the way back), DPCK, and the
 * argument errors.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "mikeysakke/mikey.h"
#include "testutil.h"

#define KDF_FILE "mikey_kdf.txt"
#define TS_FILE "ts33180.txt"

static size_t vec(const char *file, const char *prefix, const char *name, uint8_t *out,
                  size_t cap)
{
    char full[64];
    snprintf(full, sizeof full, "%s_%s", prefix, name);
    return ms_test_vector(file, full, out, cap);
}

static uint32_t be32(const uint8_t b[4])
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* One row of key/salt derivation: KEY (TEK constant) and SALT (salting constant). */
static void check_derive_row(const char *row, uint8_t prf, const char *key_name,
                             const char *salt_name)
{
    uint8_t tgk[64], csid[1], csbid[4], rand[64], want_key[32], want_salt[16];
    size_t tgk_len = vec(KDF_FILE, row, "TGK", tgk, sizeof tgk);
    vec(KDF_FILE, row, "CSID", csid, 1);
    vec(KDF_FILE, row, "CSBID", csbid, 4);
    size_t rand_len = vec(KDF_FILE, row, "RAND", rand, sizeof rand);
    size_t key_len = vec(KDF_FILE, row, key_name, want_key, sizeof want_key);
    size_t salt_len = vec(KDF_FILE, row, salt_name, want_salt, sizeof want_salt);

    uint8_t got[32];
    CHECK_ERR(ms_mikey_derive(prf, got, key_len, MS_MIKEY_KDF_TEK, tgk, tgk_len, csid[0],
                              be32(csbid), rand, rand_len),
              MS_OK);
    CHECK_MEM(got, want_key, key_len);
    CHECK_ERR(ms_mikey_derive(prf, got, salt_len, MS_MIKEY_KDF_SALT, tgk, tgk_len, csid[0],
                              be32(csbid), rand, rand_len),
              MS_OK);
    CHECK_MEM(got, want_salt, salt_len);
}

static void test_vectors(void)
{
    /* (a) vendor vectors, PRF-HMAC-SHA-256 */
    check_derive_row("a1", MS_MIKEY_PRF_HMAC_SHA256, "KEY", "SALT");
    check_derive_row("a2", MS_MIKEY_PRF_HMAC_SHA256, "KEY", "SALT");
    check_derive_row("a3", MS_MIKEY_PRF_HMAC_SHA256, "KEY", "SALT");
    check_derive_row("a4", MS_MIKEY_PRF_HMAC_SHA256, "KEY", "SALT");
    /* (b) both PRFs on one TGK */
    check_derive_row("b", MS_MIKEY_PRF_MIKEY1, "MIKEY1_KEY", "MIKEY1_SALT");
    check_derive_row("b", MS_MIKEY_PRF_HMAC_SHA256, "SHA256_KEY", "SHA256_SALT");
    /* TS 33.180 7.4 media keys */
    check_derive_row("c1", MS_MIKEY_PRF_HMAC_SHA256, "KEY", "SALT");
    check_derive_row("c2", MS_MIKEY_PRF_HMAC_SHA256, "KEY", "SALT");
    check_derive_row("c3", MS_MIKEY_PRF_HMAC_SHA256, "KEY", "SALT");

    /* The label layout, through the PRF directly. */
    uint8_t tgk[16], label[64], want[32], got[32], inkey[48];
    vec(KDF_FILE, "b", "TGK", tgk, sizeof tgk);
    size_t label_len = vec(KDF_FILE, "b", "LABEL_TEK", label, sizeof label);
    vec(KDF_FILE, "b", "MIKEY1_KEY", want, 16);
    CHECK_ERR(ms_mikey_prf(MS_MIKEY_PRF_MIKEY1, got, 16, tgk, 16, label, label_len), MS_OK);
    CHECK_MEM(got, want, 16);
    vec(KDF_FILE, "b", "SHA256_KEY", want, 16);
    CHECK_ERR(ms_mikey_prf(MS_MIKEY_PRF_HMAC_SHA256, got, 16, tgk, 16, label, label_len),
              MS_OK);
    CHECK_MEM(got, want, 16);

    /* 48-octet inkey: chunks of 32 and 16 for PRF-HMAC-SHA-256 too. */
    CHECK(vec(KDF_FILE, "b", "LONG_INKEY", inkey, sizeof inkey) == 48);
    vec(KDF_FILE, "b", "LONG_KEY", want, 32);
    CHECK_ERR(ms_mikey_prf(MS_MIKEY_PRF_HMAC_SHA256, got, 32, inkey, 48, label, label_len),
              MS_OK);
    CHECK_MEM(got, want, 32);
}

/* XOR of per-chunk outputs, and outputs of any length being prefixes of longer ones. */
static void test_prf_structure(void)
{
    static const uint8_t prfs[2] = {MS_MIKEY_PRF_MIKEY1, MS_MIKEY_PRF_HMAC_SHA256};
    uint8_t inkey[80], label[41];
    ms_test_random(inkey, sizeof inkey);
    ms_test_random(label, sizeof label);
    for (size_t p = 0; p < 2; p++) {
        uint8_t whole[100], a[100], b[100], c[100];
        /* 80 octets = chunks of 32, 32 and 16. */
        CHECK_ERR(ms_mikey_prf(prfs[p], whole, 100, inkey, 80, label, 41), MS_OK);
        CHECK_ERR(ms_mikey_prf(prfs[p], a, 100, inkey, 32, label, 41), MS_OK);
        CHECK_ERR(ms_mikey_prf(prfs[p], b, 100, inkey + 32, 32, label, 41), MS_OK);
        CHECK_ERR(ms_mikey_prf(prfs[p], c, 100, inkey + 64, 16, label, 41), MS_OK);
        for (size_t i = 0; i < 100; i++)
            a[i] ^= b[i] ^ c[i];
        CHECK_MEM(whole, a, 100);
        /* A chunk split at 20 octets (the SHA-1 block) would give a different result. */
        CHECK_ERR(ms_mikey_prf(prfs[p], b, 100, inkey, 20, label, 41), MS_OK);
        CHECK(memcmp(b, a, 100) != 0);
        /* Truncation: every length is the prefix of the longest. */
        for (size_t len = 1; len <= 100; len += 7) {
            uint8_t shorter[100];
            CHECK_ERR(ms_mikey_prf(prfs[p], shorter, len, inkey, 80, label, 41), MS_OK);
            CHECK_MEM(shorter, whole, len);
        }
        /* out_len 0 is allowed and writes nothing. */
        CHECK_ERR(ms_mikey_prf(prfs[p], NULL, 0, inkey, 16, label, 41), MS_OK);
    }

    /* P(s, label, m) spelled out for one 32-octet chunk and two SHA-256 blocks:
     * A1 = HMAC(s, label), A2 = HMAC(s, A1); out = HMAC(s, A1||label) || HMAC(s, A2||label). */
    uint8_t a1[32], a2[32], buf[32 + 41], want[64], got[64];
    size_t l = 0;
    CHECK(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, inkey, 32, label, 41, a1, 32, &l) !=
          NULL);
    CHECK(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, inkey, 32, a1, 32, a2, 32, &l) !=
          NULL);
    memcpy(buf, a1, 32);
    memcpy(buf + 32, label, 41);
    CHECK(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, inkey, 32, buf, sizeof buf, want, 32,
                    &l) != NULL);
    memcpy(buf, a2, 32);
    CHECK(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, inkey, 32, buf, sizeof buf, want + 32,
                    32, &l) != NULL);
    CHECK_ERR(ms_mikey_prf(MS_MIKEY_PRF_HMAC_SHA256, got, 64, inkey, 32, label, 41), MS_OK);
    CHECK_MEM(got, want, 64);
}

static void test_prf_errors(void)
{
    uint8_t key[16] = {1}, out[16], rand[256] = {0};
    CHECK_ERR(ms_mikey_prf(2, out, 16, key, 16, key, 4), MS_ERR_MIKEY_UNSUPPORTED);
    CHECK_ERR(ms_mikey_prf(255, out, 16, key, 16, key, 4), MS_ERR_MIKEY_UNSUPPORTED);
    CHECK_ERR(ms_mikey_derive(7, out, 16, MS_MIKEY_KDF_TEK, key, 16, 0, 0, rand, 16),
              MS_ERR_MIKEY_UNSUPPORTED);
    CHECK_ERR(ms_mikey_prf(MS_MIKEY_PRF_MIKEY1, out, 16, NULL, 16, key, 4), MS_ERR_ARG);
    CHECK_ERR(ms_mikey_prf(MS_MIKEY_PRF_MIKEY1, out, 16, key, 0, key, 4), MS_ERR_ARG);
    CHECK_ERR(ms_mikey_prf(MS_MIKEY_PRF_MIKEY1, NULL, 16, key, 16, key, 4), MS_ERR_ARG);
    CHECK_ERR(ms_mikey_prf(MS_MIKEY_PRF_MIKEY1, out, 16, key, 16, NULL, 4), MS_ERR_ARG);
    /* RAND is at most 255 octets (one-octet length in the RAND payload). */
    CHECK_ERR(ms_mikey_derive(MS_MIKEY_PRF_MIKEY1, out, 16, MS_MIKEY_KDF_TEK, key, 16, 0, 0,
                              rand, 256),
              MS_ERR_ARG);
    CHECK_ERR(ms_mikey_derive(MS_MIKEY_PRF_MIKEY1, out, 16, MS_MIKEY_KDF_TEK, key, 16, 0, 0,
                              rand, 255),
              MS_OK);
    CHECK_ERR(ms_mikey_derive(MS_MIKEY_PRF_MIKEY1, out, 16, MS_MIKEY_KDF_TEK, key, 16, 0, 0,
                              NULL, 16),
              MS_ERR_ARG);
}

/* The GUK-ID rows: receiving user URIs (P0) by row. */
static const char *const guk_users[6] = {
    "sip:alice@streamwide.com",
    "sip:iwf_legacy_v1.1.x_format@streamwide.com",
    "sip:p25user01@etherstack.com",
    "sip:p25user02@etherstack.co.jp",
    "sip:92100002447@att.com",
    "sip:P25SU-00003002000531@server-dev43-ws.streamwideus.com",
};

static void test_guk_id(void)
{
    for (int r = 0; r < 6; r++) {
        char row[8];
        snprintf(row, sizeof row, "guk%d", r + 1);
        uint8_t gmk[16], id[4], guk[4];
        CHECK(vec(TS_FILE, row, "GMK", gmk, sizeof gmk) == 16);
        vec(TS_FILE, row, "GMKID", id, 4);
        vec(TS_FILE, row, "GUKID", guk, 4);
        const char *user = guk_users[r];
        if (r < 5) {
            uint8_t want_kdf[32], salt[4], got[32];
            vec(TS_FILE, row, "KDF", want_kdf, 32);
            vec(TS_FILE, row, "SALT", salt, 4);
            ms_mikey_span p0 = {(const uint8_t *)user, strlen(user)};
            CHECK_ERR(ms_kdf_3gpp(got, gmk, 16, 0x50, &p0, 1), MS_OK);
            CHECK_MEM(got, want_kdf, 32);
            CHECK((be32(got + 28) & 0x0FFFFFFFu) == be32(salt));
        }
        uint32_t out = 0, back = 0;
        CHECK_ERR(ms_guk_id(&out, gmk, 16, be32(id), user), MS_OK);
        CHECK(out == be32(guk));
        /* Recover GMK-ID from GUK-ID. */
        CHECK_ERR(ms_guk_id(&back, gmk, 16, be32(guk), user), MS_OK);
        CHECK(back == be32(id));
        /* Another user gets another GUK-ID. */
        CHECK_ERR(ms_guk_id(&back, gmk, 16, be32(id), "sip:someone.else@example.org"), MS_OK);
        CHECK(back != be32(guk));
    }

    /* The purpose tag (top 4 bits) is kept, the low 28 bits are XORed. */
    uint8_t gmk[16];
    vec(TS_FILE, "guk1", "GMK", gmk, 16);
    uint32_t plain = 0, tagged = 0;
    CHECK_ERR(ms_guk_id(&plain, gmk, 16, 0x0df9bc39u, guk_users[0]), MS_OK);
    CHECK_ERR(ms_guk_id(&tagged, gmk, 16, 0x5df9bc39u, guk_users[0]), MS_OK);
    CHECK(tagged == (plain | 0x50000000u));

    uint32_t out;
    CHECK_ERR(ms_guk_id(&out, gmk, 16, 1, ""), MS_ERR_IDENTITY);
    CHECK_ERR(ms_guk_id(&out, gmk, 16, 1, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_guk_id(&out, NULL, 16, 1, guk_users[0]), MS_ERR_ARG);
    CHECK_ERR(ms_guk_id(&out, gmk, 0, 1, guk_users[0]), MS_ERR_ARG);
    CHECK_ERR(ms_guk_id(NULL, gmk, 16, 1, guk_users[0]), MS_ERR_ARG);
}

/* TS 33.220 B.2 framing: S = FC || P0 || L0 || P1 || L1, checked against HMAC on S
 * built by hand; and DPCK = the 16 low octets with FC 0x53, P0 = DPPK-ID. */
static void test_kdf_3gpp(void)
{
    uint8_t key[16], p0[3] = {'a', 'b', 'c'}, p1[300];
    ms_test_random(key, sizeof key);
    ms_test_random(p1, sizeof p1);
    uint8_t s[1 + 3 + 2 + 300 + 2];
    size_t n = 0;
    s[n++] = 0x51;
    memcpy(s + n, p0, 3);
    n += 3;
    s[n++] = 0x00;
    s[n++] = 0x03;
    memcpy(s + n, p1, 300);
    n += 300;
    s[n++] = 0x01;
    s[n++] = 0x2C;
    uint8_t want[32], got[32];
    size_t l = 0;
    CHECK(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, 16, s, n, want, 32, &l) != NULL);
    ms_mikey_span params[2] = {{p0, 3}, {p1, 300}};
    CHECK_ERR(ms_kdf_3gpp(got, key, 16, 0x51, params, 2), MS_OK);
    CHECK_MEM(got, want, 32);
    /* An empty parameter still carries its length 0x0000. */
    uint8_t s2[3] = {0x52, 0x00, 0x00};
    CHECK(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, 16, s2, 3, want, 32, &l) != NULL);
    ms_mikey_span empty = {NULL, 0};
    CHECK_ERR(ms_kdf_3gpp(got, key, 16, 0x52, &empty, 1), MS_OK);
    CHECK_MEM(got, want, 32);

    uint8_t big[0x10000] = {0};
    ms_mikey_span too_long = {big, sizeof big};
    CHECK_ERR(ms_kdf_3gpp(got, key, 16, 0x50, &too_long, 1), MS_ERR_ARG);
    CHECK_ERR(ms_kdf_3gpp(got, key, 16, 0x50, NULL, 1), MS_ERR_ARG);
    CHECK_ERR(ms_kdf_3gpp(NULL, key, 16, 0x50, params, 1), MS_ERR_ARG);

    /* DPCK */
    uint8_t id[4] = {0x3a, 0xbc, 0xde, 0xf0}, dpck[16];
    ms_mikey_span pid = {id, 4};
    CHECK_ERR(ms_kdf_3gpp(want, key, 16, 0x53, &pid, 1), MS_OK);
    CHECK_ERR(ms_dpck(dpck, key, 16, 0x3abcdef0u), MS_OK);
    CHECK_MEM(dpck, want + 16, 16);
    CHECK_ERR(ms_dpck(dpck, NULL, 16, 1), MS_ERR_ARG);
    CHECK_ERR(ms_dpck(dpck, key, 0, 1), MS_ERR_ARG);
    CHECK_ERR(ms_dpck(NULL, key, 16, 1), MS_ERR_ARG);
}

int main(void)
{
    ms_test_seed();
    test_vectors();
    test_prf_structure();
    test_prf_errors();
    test_guk_id();
    test_kdf_3gpp();
    return ms_test_finish();
}
