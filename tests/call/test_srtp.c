/*
 * SRTP and SRTCP: round trips in both suites with and without an MKI, the packet layout
 * (MKI before the tag for AES-CM, after the cipher for GCM), tampering, wrong keys and
 * MKIs, replays, a known answer from RFC 3711 B.3's session keys, and agreement with an
 * independent decryptor (tests/call/srtp_ref.py).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "call/rtp.h"
#include "call/srtp.h"
#include "testutil.h"

#define PKT_CAP 1600
#define PAYLOAD 80 /* about one 20 ms Opus frame at 32 kbit/s */

static const ms_srtp_suite suites[] = {MS_SRTP_AEAD_AES_128_GCM,
                                       MS_SRTP_AES_CM_128_HMAC_SHA1_80};

static size_t tag_len(ms_srtp_suite s)
{
    return s == MS_SRTP_AEAD_AES_128_GCM ? 16 : 10;
}

static void make_keys(ms_srtp_keys *k, ms_srtp_suite suite, size_t mki_len)
{
    memset(k, 0, sizeof *k);
    ms_srtp_suite_lengths(suite, &k->key_len, &k->salt_len);
    ms_test_random(k->master_key, k->key_len);
    ms_test_random(k->master_salt, k->salt_len);
    k->mki_len = mki_len;
    for (size_t i = 0; i < mki_len; i++)
        k->mki[i] = (uint8_t)(0xa0 + i);
}

/* An RTP packet: 12-octet header then `payload` octets of a recognisable pattern. */
static size_t make_rtp(uint8_t *pkt, uint16_t seq, uint32_t ssrc, size_t payload)
{
    ms_rtp_header h = {.payload_type = 111, .marker = false, .seq = seq,
                       .timestamp = 960u * seq, .ssrc = ssrc};
    ms_rtp_write_header(pkt, &h);
    for (size_t i = 0; i < payload; i++)
        pkt[MS_RTP_HEADER + i] = (uint8_t)(i * 7 + seq);
    return MS_RTP_HEADER + payload;
}

static void test_names(void)
{
    ms_srtp_suite s;
    CHECK_ERR(ms_srtp_suite_parse(&s, "AEAD_AES_128_GCM"), MS_OK);
    CHECK(s == MS_SRTP_AEAD_AES_128_GCM);
    CHECK_ERR(ms_srtp_suite_parse(&s, "AES_CM_128_HMAC_SHA1_80"), MS_OK);
    CHECK(s == MS_SRTP_AES_CM_128_HMAC_SHA1_80);
    CHECK_ERR(ms_srtp_suite_parse(&s, "AES_CM_128_HMAC_SHA1_32"), MS_ERR_INVALID);
    CHECK_ERR(ms_srtp_suite_parse(&s, NULL), MS_ERR_ARG);
    CHECK(strcmp(ms_srtp_suite_name(MS_SRTP_AEAD_AES_128_GCM), "AEAD_AES_128_GCM") == 0);
    CHECK(strcmp(ms_srtp_suite_name(MS_SRTP_AES_CM_128_HMAC_SHA1_80),
                 "AES_CM_128_HMAC_SHA1_80") == 0);
    size_t kl, sl;
    ms_srtp_suite_lengths(MS_SRTP_AEAD_AES_128_GCM, &kl, &sl);
    CHECK(kl == 16 && sl == 12);
    ms_srtp_suite_lengths(MS_SRTP_AES_CM_128_HMAC_SHA1_80, &kl, &sl);
    CHECK(kl == 16 && sl == 14);
}

static void test_bad_setup(void)
{
    ms_srtp_keys k;
    ms_srtp *s = (ms_srtp *)1;
    make_keys(&k, MS_SRTP_AEAD_AES_128_GCM, 4);
    k.salt_len = 14; /* GCM takes 12 */
    CHECK_ERR(ms_srtp_new(&s, MS_SRTP_AEAD_AES_128_GCM, &k, true), MS_ERR_ARG);
    CHECK(s == NULL);
    make_keys(&k, MS_SRTP_AES_CM_128_HMAC_SHA1_80, 4);
    k.key_len = 32;
    CHECK_ERR(ms_srtp_new(&s, MS_SRTP_AES_CM_128_HMAC_SHA1_80, &k, true), MS_ERR_ARG);
    make_keys(&k, MS_SRTP_AES_CM_128_HMAC_SHA1_80, 4);
    k.mki_len = 9;
    CHECK_ERR(ms_srtp_new(&s, MS_SRTP_AES_CM_128_HMAC_SHA1_80, &k, true), MS_ERR_ARG);
    CHECK_ERR(ms_srtp_new(&s, (ms_srtp_suite)7, &k, true), MS_ERR_ARG);
    CHECK_ERR(ms_srtp_new(NULL, MS_SRTP_AEAD_AES_128_GCM, &k, true), MS_ERR_ARG);
    ms_srtp_free(NULL);
}

/* Round trips of RTP and RTCP, the layout of each protected packet, and replays. */
static void test_round_trip(ms_srtp_suite suite, size_t mki_len)
{
    ms_srtp_keys k;
    make_keys(&k, suite, mki_len);
    ms_srtp *tx = NULL, *rx = NULL;
    CHECK_ERR(ms_srtp_new(&tx, suite, &k, true), MS_OK);
    CHECK_ERR(ms_srtp_new(&rx, suite, &k, false), MS_OK);
    size_t tag = tag_len(suite);
    bool gcm = suite == MS_SRTP_AEAD_AES_128_GCM;
    _Alignas(4) uint8_t pkt[PKT_CAP], plain[PKT_CAP], first[PKT_CAP];
    size_t first_len = 0;

    /* across a sequence number wrap, so the rollover counter moves on both sides */
    for (int i = 0; i < 6; i++) {
        uint16_t seq = (uint16_t)(65533 + i);
        size_t plain_len = make_rtp(plain, seq, 0x11223344, PAYLOAD + (size_t)i);
        memcpy(pkt, plain, plain_len);
        size_t len = plain_len;
        CHECK_ERR(ms_srtp_protect(tx, pkt, &len, sizeof pkt), MS_OK);
        CHECK(len == plain_len + tag + mki_len);
        CHECK_MEM(pkt, plain, MS_RTP_HEADER); /* the header stays in the clear */
        CHECK(memcmp(pkt + MS_RTP_HEADER, plain + MS_RTP_HEADER, 16) != 0);
        /* GCM: header | cipher incl. tag | MKI; AES-CM: header | cipher | MKI | tag */
        size_t mki_at = gcm ? len - mki_len : len - tag - mki_len;
        if (mki_len > 0)
            CHECK_MEM(pkt + mki_at, k.mki, mki_len);
        if (i == 0) {
            memcpy(first, pkt, len);
            first_len = len;
        }
        CHECK_ERR(ms_srtp_unprotect(rx, pkt, &len), MS_OK);
        CHECK(len == plain_len);
        CHECK_MEM(pkt, plain, plain_len);
    }
    /* the first packet again: a replay */
    CHECK_ERR(ms_srtp_unprotect(rx, first, &first_len), MS_ERR_SRTP_REPLAY);

    /* RTCP: a sender report, twice (index 1 then 2) */
    uint8_t sr[PKT_CAP];
    size_t sr_len = ms_rtcp_write_sr(sr, sizeof sr, 0x11223344, 0x0123456789abcdefull, 960,
                                     6, 500);
    CHECK(sr_len == 28);
    for (int i = 0; i < 2; i++) {
        memcpy(pkt, sr, sr_len);
        size_t len = sr_len;
        CHECK_ERR(ms_srtp_protect_rtcp(tx, pkt, &len, sizeof pkt), MS_OK);
        CHECK(len == sr_len + tag + 4 + mki_len);
        CHECK_MEM(pkt, sr, 8); /* the first 8 octets stay in the clear */
        CHECK(memcmp(pkt + 8, sr + 8, 16) != 0);
        /* GCM: hdr | cipher | E||index | MKI; AES-CM: hdr | cipher | E||index | MKI | tag */
        size_t mki_at = gcm ? len - mki_len : len - tag - mki_len;
        size_t index_at = mki_at - 4;
        if (mki_len > 0)
            CHECK_MEM(pkt + mki_at, k.mki, mki_len);
        const uint8_t want_index[4] = {0x80, 0, 0, (uint8_t)(i + 1)};
        CHECK_MEM(pkt + index_at, want_index, 4);
        memcpy(first, pkt, len);
        first_len = len;
        CHECK_ERR(ms_srtp_unprotect_rtcp(rx, pkt, &len), MS_OK);
        CHECK(len == sr_len);
        CHECK_MEM(pkt, sr, sr_len);
    }
    CHECK_ERR(ms_srtp_unprotect_rtcp(rx, first, &first_len), MS_ERR_SRTP_REPLAY);

    /* an RTP packet in a misaligned buffer goes through the aligned copy */
    uint8_t *odd = pkt + 1;
    size_t plain_len = make_rtp(plain, 10, 0x11223344, PAYLOAD);
    memcpy(odd, plain, plain_len);
    size_t len = plain_len;
    CHECK_ERR(ms_srtp_protect(tx, odd, &len, sizeof pkt - 1), MS_OK);
    CHECK(len == plain_len + tag + mki_len);
    CHECK_ERR(ms_srtp_unprotect(rx, odd, &len), MS_OK);
    CHECK(len == plain_len);
    CHECK_MEM(odd, plain, plain_len);

    /* the sender refuses to protect a sequence number twice (it would reuse keystream) */
    plain_len = make_rtp(pkt, 10, 0x11223344, PAYLOAD);
    len = plain_len;
    CHECK_ERR(ms_srtp_protect(tx, pkt, &len, sizeof pkt), MS_ERR_SRTP_REPLAY);

    /* misuse and short buffers */
    plain_len = make_rtp(pkt, 11, 0x11223344, PAYLOAD);
    len = plain_len;
    CHECK_ERR(ms_srtp_protect(tx, pkt, &len, plain_len + tag + mki_len - 1),
              MS_ERR_BUFFER_TOO_SMALL);
    CHECK_ERR(ms_srtp_protect(rx, pkt, &len, sizeof pkt), MS_ERR_ARG);
    CHECK_ERR(ms_srtp_unprotect(tx, pkt, &len), MS_ERR_ARG);
    len = 11;
    CHECK_ERR(ms_srtp_protect(tx, pkt, &len, sizeof pkt), MS_ERR_INVALID);
    len = MS_RTP_HEADER + tag + mki_len - 1;
    CHECK_ERR(ms_srtp_unprotect(rx, pkt, &len), MS_ERR_INVALID);
    len = 8 + 4 + tag + mki_len - 1;
    CHECK_ERR(ms_srtp_unprotect_rtcp(rx, pkt, &len), MS_ERR_INVALID);
    CHECK(tag + 4 + mki_len <= MS_SRTP_MAX_OVERHEAD);

    ms_srtp_free(tx);
    ms_srtp_free(rx);
    ms_wipe(&k, sizeof k);
}

/* Every octet flipped in turn fails authentication (a fresh receiver each time, so no
 * flip can pass for a replay), and so do another key and another MKI. */
static void test_tamper(ms_srtp_suite suite, size_t mki_len, bool rtcp)
{
    ms_srtp_keys k;
    make_keys(&k, suite, mki_len);
    ms_srtp *tx = NULL;
    CHECK_ERR(ms_srtp_new(&tx, suite, &k, true), MS_OK);
    _Alignas(4) uint8_t good[PKT_CAP], pkt[PKT_CAP];
    size_t len;
    if (rtcp) {
        len = ms_rtcp_write_sr(good, sizeof good, 0x55667788, 42, 43, 44, 45);
        CHECK_ERR(ms_srtp_protect_rtcp(tx, good, &len, sizeof good), MS_OK);
    } else {
        len = make_rtp(good, 1000, 0x55667788, 40);
        CHECK_ERR(ms_srtp_protect(tx, good, &len, sizeof good), MS_OK);
    }
    ms_srtp *rx = NULL;
    int auth_failures = 0;
    for (size_t at = 0; at < len; at++) {
        for (int bit = 0; bit < 8; bit += 7) {
            CHECK_ERR(ms_srtp_new(&rx, suite, &k, false), MS_OK);
            memcpy(pkt, good, len);
            pkt[at] ^= (uint8_t)(1u << bit);
            size_t n = len;
            ms_err err = rtcp ? ms_srtp_unprotect_rtcp(rx, pkt, &n) : ms_srtp_unprotect(rx, pkt, &n);
            if (err == MS_ERR_SRTP_AUTH) {
                auth_failures++;
            } else {
                fprintf(stderr, "%s %s mki %zu: flip of bit %d at octet %zu gave %s\n",
                        ms_srtp_suite_name(suite), rtcp ? "RTCP" : "RTP", mki_len, bit, at,
                        ms_errname(err));
                CHECK(err == MS_ERR_SRTP_AUTH);
            }
            ms_srtp_free(rx);
        }
    }
    CHECK(auth_failures == (int)(2 * len));

    /* the untouched packet passes a fresh receiver (so the failures above were the flips) */
    CHECK_ERR(ms_srtp_new(&rx, suite, &k, false), MS_OK);
    memcpy(pkt, good, len);
    size_t n = len;
    CHECK_ERR(rtcp ? ms_srtp_unprotect_rtcp(rx, pkt, &n) : ms_srtp_unprotect(rx, pkt, &n),
              MS_OK);
    ms_srtp_free(rx);

    /* another master key, another salt, another MKI: all refused */
    for (int what = 0; what < 3; what++) {
        ms_srtp_keys other = k;
        if (what == 0)
            other.master_key[3] ^= 0x40;
        else if (what == 1)
            other.master_salt[5] ^= 0x01;
        else if (mki_len > 0)
            other.mki[mki_len - 1] ^= 0x01;
        else
            continue;
        CHECK_ERR(ms_srtp_new(&rx, suite, &other, false), MS_OK);
        memcpy(pkt, good, len);
        n = len;
        CHECK_ERR(rtcp ? ms_srtp_unprotect_rtcp(rx, pkt, &n) : ms_srtp_unprotect(rx, pkt, &n),
                  MS_ERR_SRTP_AUTH);
        ms_srtp_free(rx);
        ms_wipe(&other, sizeof other);
    }
    /* a receiver expecting an MKI where none was sent, and the other way round */
    ms_srtp_keys other = k;
    other.mki_len = mki_len > 0 ? 0 : 4;
    memset(other.mki, 0x5a, sizeof other.mki);
    CHECK_ERR(ms_srtp_new(&rx, suite, &other, false), MS_OK);
    memcpy(pkt, good, len);
    n = len;
    CHECK_ERR(rtcp ? ms_srtp_unprotect_rtcp(rx, pkt, &n) : ms_srtp_unprotect(rx, pkt, &n),
              MS_ERR_SRTP_AUTH);
    ms_srtp_free(rx);
    ms_srtp_free(tx);
    ms_wipe(&k, sizeof k);
}

/*
 * Known answer: RFC 3711 B.3's master key and salt, protected through the API, checked
 * against the packet computed here with OpenSSL from the session keys B.3 lists (cipher
 * key, cipher salt, first 20 octets of the auth key): IV = (k_s * 2^16) XOR (SSRC * 2^64)
 * XOR (i * 2^16) (RFC 3711 4.1.1), tag = HMAC-SHA1(k_a, header || cipher || ROC)[0..9].
 */
static void test_known_answer_cm(void)
{
    ms_srtp_keys k = {.key_len = 16, .salt_len = 14, .mki_len = 4};
    ms_test_hex(k.master_key, sizeof k.master_key, "E1F97A0D3E018BE0D64FA32C06DE4139");
    ms_test_hex(k.master_salt, sizeof k.master_salt, "0EC675AD498AFEEBB6960B3AABE6");
    ms_test_hex(k.mki, sizeof k.mki, "00000007");
    uint8_t ke[16], ks[14], ka[20];
    ms_test_hex(ke, sizeof ke, "C61E7A93744F39EE10734AFE3FF7A087");
    ms_test_hex(ks, sizeof ks, "30CBBC08863D8C85D49DB34A9AE1");
    ms_test_hex(ka, sizeof ka, "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4");

    ms_srtp *tx = NULL;
    CHECK_ERR(ms_srtp_new(&tx, MS_SRTP_AES_CM_128_HMAC_SHA1_80, &k, true), MS_OK);
    _Alignas(4) uint8_t pkt[PKT_CAP], want[PKT_CAP];
    const uint16_t seq = 0x1234;
    const uint32_t ssrc = 0xcafef00d;
    size_t plain_len = make_rtp(pkt, seq, ssrc, 50);
    memcpy(want, pkt, plain_len);
    size_t len = plain_len;
    CHECK_ERR(ms_srtp_protect(tx, pkt, &len, sizeof pkt), MS_OK);
    CHECK(len == plain_len + 4 + 10);

    uint8_t iv[16] = {0};
    memcpy(iv, ks, 14);
    for (int i = 0; i < 4; i++)
        iv[4 + i] ^= (uint8_t)(ssrc >> (24 - 8 * i));
    iv[12] ^= (uint8_t)(seq >> 8); /* index = ROC 0 || SEQ, times 2^16 */
    iv[13] ^= (uint8_t)seq;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0;
    CHECK(c != NULL && EVP_EncryptInit_ex(c, EVP_aes_128_ctr(), NULL, ke, iv) == 1 &&
          EVP_EncryptUpdate(c, want + MS_RTP_HEADER, &outl, want + MS_RTP_HEADER,
                            (int)(plain_len - MS_RTP_HEADER)) == 1);
    EVP_CIPHER_CTX_free(c);
    memcpy(want + plain_len, k.mki, 4);
    uint8_t auth_in[PKT_CAP], mac[20];
    memcpy(auth_in, want, plain_len);
    memset(auth_in + plain_len, 0, 4); /* ROC 0 */
    unsigned int mac_len = 0;
    CHECK(HMAC(EVP_sha1(), ka, sizeof ka, auth_in, plain_len + 4, mac, &mac_len) != NULL);
    memcpy(want + plain_len + 4, mac, 10);
    CHECK_MEM(pkt, want, plain_len + 14);
    ms_srtp_free(tx);
}

/* ---- agreement with tests/call/srtp_ref.py -------------------------------------------- */

static void hex_line(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
    fputc('\n', f);
}

static void test_reference(ms_srtp_suite suite, size_t mki_len)
{
    const char *vectors = getenv("MS_TEST_VECTORS");
    char script[1024];
    snprintf(script, sizeof script, "%s/../call/srtp_ref.py", vectors ? vectors : "tests/vectors");
    CHECK(access(script, R_OK) == 0);

    char dir[] = "/tmp/ms_test_srtp_XXXXXX";
    if (mkdtemp(dir) == NULL) {
        CHECK(!"mkdtemp");
        return;
    }
    char key_path[256], pkt_path[256];
    snprintf(key_path, sizeof key_path, "%s/key", dir);
    snprintf(pkt_path, sizeof pkt_path, "%s/packets", dir);

    ms_srtp_keys k;
    make_keys(&k, suite, mki_len);
    /* the key goes to the script in a private file, never on its command line */
    mode_t old = umask(077);
    FILE *kf = fopen(key_path, "w");
    FILE *pf = fopen(pkt_path, "w");
    umask(old);
    CHECK(kf != NULL && pf != NULL);
    if (kf == NULL || pf == NULL) {
        if (kf)
            fclose(kf);
        if (pf)
            fclose(pf);
        return;
    }
    for (size_t i = 0; i < k.key_len; i++)
        fprintf(kf, "%02x", k.master_key[i]);
    fputc(' ', kf);
    for (size_t i = 0; i < k.salt_len; i++)
        fprintf(kf, "%02x", k.master_salt[i]);
    fputc('\n', kf);
    fclose(kf);

    ms_srtp *tx = NULL, *rx = NULL;
    CHECK_ERR(ms_srtp_new(&tx, suite, &k, true), MS_OK);
    CHECK_ERR(ms_srtp_new(&rx, suite, &k, false), MS_OK);
    enum { N = 9 };
    static uint8_t expect[N][PKT_CAP];
    size_t expect_len[N];
    bool expect_fail[N] = {false};
    /* RTP across a sequence wrap, two SSRCs, SRTCP in between, one tampered packet */
    for (int i = 0; i < N; i++) {
        _Alignas(4) uint8_t pkt[PKT_CAP];
        size_t len;
        bool rtcp = i == 3 || i == 7;
        if (rtcp) {
            len = ms_rtcp_write_sr(pkt, sizeof pkt, 0x0badcafe, 1000u + (unsigned)i, 7, 8, 9);
            memcpy(expect[i], pkt, len);
            expect_len[i] = len;
            CHECK_ERR(ms_srtp_protect_rtcp(tx, pkt, &len, sizeof pkt), MS_OK);
        } else {
            uint32_t ssrc = i == 5 ? 0x01020304 : 0x0badcafe;
            len = make_rtp(pkt, (uint16_t)(65534 + i), ssrc, PAYLOAD - (size_t)i);
            memcpy(expect[i], pkt, len);
            expect_len[i] = len;
            CHECK_ERR(ms_srtp_protect(tx, pkt, &len, sizeof pkt), MS_OK);
        }
        if (i == 6) {
            pkt[len / 2] ^= 0x10;
            expect_fail[i] = true;
        }
        hex_line(pf, pkt, len);
        /* ms_srtp_unprotect must agree too */
        size_t n = len;
        ms_err err = rtcp ? ms_srtp_unprotect_rtcp(rx, pkt, &n) : ms_srtp_unprotect(rx, pkt, &n);
        if (expect_fail[i]) {
            CHECK(err == MS_ERR_SRTP_AUTH);
        } else {
            CHECK(err == MS_OK && n == expect_len[i]);
            CHECK_MEM(pkt, expect[i], expect_len[i]);
        }
    }
    fclose(pf);

    char cmd[2048];
    snprintf(cmd, sizeof cmd, "python3 '%s' --suite %s --key-file '%s' --mki-len %zu "
             "--output packet '%s'", script, ms_srtp_suite_name(suite), key_path, mki_len,
             pkt_path);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    int lines = 0;
    if (p != NULL) {
        char line[2 * PKT_CAP + 64];
        while (fgets(line, sizeof line, p) != NULL && lines < N) {
            line[strcspn(line, "\n")] = 0;
            if (expect_fail[lines]) {
                CHECK(strcmp(line, "FAIL authentication") == 0);
            } else {
                char want[2 * PKT_CAP + 1];
                for (size_t j = 0; j < expect_len[lines]; j++)
                    snprintf(want + 2 * j, 3, "%02x", expect[lines][j]);
                if (strcmp(line, want) != 0) {
                    fprintf(stderr, "srtp_ref.py line %d:\n got  %s\n want %s\n", lines + 1,
                            line, want);
                    CHECK(!"reference decryptor agrees");
                } else {
                    CHECK(1);
                }
            }
            lines++;
        }
        int status = pclose(p);
        /* exit status 1: the tampered packet failed, as it should */
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    }
    CHECK(lines == N);
    ms_srtp_free(tx);
    ms_srtp_free(rx);
    ms_wipe(&k, sizeof k);
    unlink(key_path);
    unlink(pkt_path);
    rmdir(dir);
}

static void test_reference_selftest(void)
{
    const char *vectors = getenv("MS_TEST_VECTORS");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "python3 '%s/../call/srtp_ref.py' --selftest >/dev/null",
             vectors ? vectors : "tests/vectors");
    int status = system(cmd);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ms_srtp_set_roc adds a stream for a new SSRC at the given ROC, changes a known one's,
 * and ms_srtp_undo_roc takes either back; an outbound context refuses. */
static void test_set_roc(void)
{
    ms_srtp_keys k;
    make_keys(&k, MS_SRTP_AEAD_AES_128_GCM, 8);
    ms_srtp *in = NULL, *out = NULL;
    CHECK_ERR(ms_srtp_new(&in, MS_SRTP_AEAD_AES_128_GCM, &k, false), MS_OK);
    CHECK_ERR(ms_srtp_new(&out, MS_SRTP_AEAD_AES_128_GCM, &k, true), MS_OK);
    ms_srtp_roc_undo undo;
    uint32_t roc = 0;
    CHECK_ERR(ms_srtp_set_roc(out, 5, 1, &undo), MS_ERR_ARG);
    CHECK_ERR(ms_srtp_roc(in, 5, &roc), MS_ERR_INVALID);
    CHECK_ERR(ms_srtp_set_roc(in, 5, 3, &undo), MS_OK);
    CHECK(undo.added && !undo.changed);
    ms_srtp_undo_roc(in, &undo);
    CHECK_ERR(ms_srtp_roc(in, 5, &roc), MS_ERR_INVALID); /* the stream is gone again */
    CHECK_ERR(ms_srtp_set_roc(in, 5, 3, &undo), MS_OK);
    CHECK_ERR(ms_srtp_set_roc(in, 5, 4, &undo), MS_OK);
    CHECK(!undo.added); /* the stream is there now */
    ms_srtp_undo_roc(in, &undo);
    CHECK_ERR(ms_srtp_roc(in, 5, &roc), MS_OK); /* and stays */
    ms_srtp_free(in);
    ms_srtp_free(out);
}

int main(void)
{
    ms_test_seed();
    test_set_roc();
    test_names();
    test_bad_setup();
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        for (size_t mki = 0; mki <= 8; mki += 4) {
            test_round_trip(suites[i], mki);
            test_tamper(suites[i], mki, false);
            test_tamper(suites[i], mki, true);
        }
        test_reference(suites[i], 4);
        test_reference(suites[i], 0);
    }
    test_known_answer_cm();
    test_reference_selftest();
    return ms_test_finish();
}
