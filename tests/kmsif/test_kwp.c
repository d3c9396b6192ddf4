/*
 * AES key wrap with padding (RFC 5649): the two examples of RFC 5649 section 6, a
 * cross-check of the 256-bit KEK against a reference wrap written here from the RFC's
 * algorithm over raw AES-ECB (for every length from 1 to 300 octets, which covers the
 * 257-octet RSK and the 32-octet SSK), round trips, and each refusal.
 */
#include <string.h>

#include <openssl/evp.h>

#include "kmsif/kmsif.h"
#include "testutil.h"

/* RFC 5649 section 6, both with the 192-bit KEK 5840df6e...76a8. */
static void test_rfc5649_examples(void)
{
    uint8_t kek[24], key1[20], want1[32], key2[7], want2[16], out[64], back[64];
    size_t n = 0;
    ms_test_hex(kek, sizeof kek, "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
    ms_test_hex(key1, sizeof key1, "c37b7e6492584340bed12207808941155068f738");
    ms_test_hex(want1, sizeof want1,
                "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a");
    ms_test_hex(key2, sizeof key2, "466f7250617369");
    ms_test_hex(want2, sizeof want2, "afbeb0f07dfbf5419200f2ccb50bb24f");

    CHECK_ERR(ms_aes_kwp_wrap(out, sizeof out, &n, kek, 24, key1, 20), MS_OK);
    CHECK(n == 32);
    CHECK_MEM(out, want1, 32);
    CHECK_ERR(ms_aes_kwp_unwrap(back, sizeof back, &n, kek, 24, want1, 32), MS_OK);
    CHECK(n == 20);
    CHECK_MEM(back, key1, 20);

    CHECK_ERR(ms_aes_kwp_wrap(out, sizeof out, &n, kek, 24, key2, 7), MS_OK);
    CHECK(n == 16);
    CHECK_MEM(out, want2, 16);
    CHECK_ERR(ms_aes_kwp_unwrap(back, sizeof back, &n, kek, 24, want2, 16), MS_OK);
    CHECK(n == 7);
    CHECK_MEM(back, key2, 7);
}

static void aes256_block(const uint8_t kek[32], const uint8_t in[16], uint8_t out[16])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l = 0;
    if (ctx == NULL || EVP_EncryptInit_ex(ctx, EVP_aes_256_ecb(), NULL, kek, NULL) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx, 0) != 1 || EVP_EncryptUpdate(ctx, out, &l, in, 16) != 1 ||
        l != 16)
        abort();
    EVP_CIPHER_CTX_free(ctx);
}

/* RFC 5649 section 4.1, written from the text: AIV = A65959A6 || MLI, zero padding,
 * one AES block for 8 octets, otherwise the RFC 3394 rounds with the AIV. */
static size_t reference_wrap(uint8_t *out, const uint8_t kek[32], const uint8_t *in,
                             size_t len)
{
    size_t padded = (len + 7) / 8 * 8, nb = padded / 8;
    uint8_t a[8] = {0xa6, 0x59, 0x59, 0xa6, (uint8_t)(len >> 24), (uint8_t)(len >> 16),
                    (uint8_t)(len >> 8), (uint8_t)len};
    uint8_t r[512], b[16];
    memset(r, 0, sizeof r);
    memcpy(r, in, len);
    if (nb == 1) {
        memcpy(b, a, 8);
        memcpy(b + 8, r, 8);
        aes256_block(kek, b, out);
        return 16;
    }
    for (uint64_t j = 0; j < 6; j++) {
        for (size_t i = 0; i < nb; i++) {
            memcpy(b, a, 8);
            memcpy(b + 8, r + 8 * i, 8);
            aes256_block(kek, b, b);
            uint64_t t = nb * j + i + 1;
            for (int k = 0; k < 8; k++)
                a[k] = b[k] ^ (uint8_t)(t >> (56 - 8 * k));
            memcpy(r + 8 * i, b + 8, 8);
        }
    }
    memcpy(out, a, 8);
    memcpy(out + 8, r, padded);
    return padded + 8;
}

static void test_cross_check(void)
{
    uint8_t kek[32], in[300], got[320], want[320], back[320];
    for (size_t len = 1; len <= sizeof in; len++) {
        ms_test_random(kek, sizeof kek);
        ms_test_random(in, len);
        size_t n = 0, m = reference_wrap(want, kek, in, len);
        ms_err e = ms_aes_kwp_wrap(got, sizeof got, &n, kek, 32, in, len);
        if (e != MS_OK || n != m || memcmp(got, want, m) != 0) {
            CHECK(!"wrap differs from the reference");
            fprintf(stderr, "  length %zu\n", len);
            return;
        }
        e = ms_aes_kwp_unwrap(back, sizeof back, &n, kek, 32, got, m);
        if (e != MS_OK || n != len || memcmp(back, in, len) != 0) {
            CHECK(!"unwrap does not give the plaintext back");
            return;
        }
    }
    CHECK(1);
    /* The two sizes we use: RSK 257 -> 272, SSK 32 -> 40. */
    size_t n = 0;
    CHECK_ERR(ms_aes_kwp_wrap(got, sizeof got, &n, kek, 32, in, 257), MS_OK);
    CHECK(n == 272);
    CHECK_ERR(ms_aes_kwp_wrap(got, sizeof got, &n, kek, 32, in, 32), MS_OK);
    CHECK(n == 40);
}

static void test_rejections(void)
{
    uint8_t kek[32], kek2[32], in[257], ct[272], out[272];
    size_t n = 0;
    ms_test_random(kek, sizeof kek);
    memcpy(kek2, kek, sizeof kek);
    kek2[31] ^= 1;
    ms_test_random(in, sizeof in);
    CHECK_ERR(ms_aes_kwp_wrap(ct, sizeof ct, &n, kek, 32, in, sizeof in), MS_OK);

    /* Wrong key, any flipped bit, truncation, a wrong length. */
    CHECK_ERR(ms_aes_kwp_unwrap(out, sizeof out, &n, kek2, 32, ct, sizeof ct), MS_ERR_INVALID);
    for (size_t i = 0; i < sizeof ct; i += 17) {
        ct[i] ^= 0x80;
        CHECK_ERR(ms_aes_kwp_unwrap(out, sizeof out, &n, kek, 32, ct, sizeof ct),
                  MS_ERR_INVALID);
        ct[i] ^= 0x80;
    }
    CHECK_ERR(ms_aes_kwp_unwrap(out, sizeof out, &n, kek, 32, ct, sizeof ct - 8),
              MS_ERR_INVALID);
    CHECK_ERR(ms_aes_kwp_unwrap(out, sizeof out, &n, kek, 32, ct, sizeof ct - 1),
              MS_ERR_BAD_LENGTH);
    CHECK_ERR(ms_aes_kwp_unwrap(out, sizeof out, &n, kek, 32, ct, 8), MS_ERR_BAD_LENGTH);
    /* Exactly one semiblock: the single-block path of RFC 5649 both ways. */
    uint8_t a16[16];
    CHECK_ERR(ms_aes_kwp_wrap(a16, sizeof a16, &n, kek, 32, in, 8), MS_OK);
    CHECK_ERR(ms_aes_kwp_unwrap(out, sizeof out, &n, kek, 32, a16, 16), MS_OK);
    CHECK(n == 8);

    /* Buffers and arguments. */
    CHECK_ERR(ms_aes_kwp_wrap(ct, 271, &n, kek, 32, in, sizeof in), MS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 272);
    CHECK_ERR(ms_aes_kwp_wrap(ct, sizeof ct, &n, kek, 32, in, sizeof in), MS_OK);
    CHECK_ERR(ms_aes_kwp_unwrap(out, 256, &n, kek, 32, ct, sizeof ct), MS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 257);
    CHECK_ERR(ms_aes_kwp_wrap(ct, sizeof ct, &n, kek, 20, in, sizeof in), MS_ERR_ARG);
    CHECK_ERR(ms_aes_kwp_wrap(ct, sizeof ct, &n, kek, 32, in, 0), MS_ERR_ARG);
    CHECK_ERR(ms_aes_kwp_wrap(ct, sizeof ct, NULL, kek, 32, in, 8), MS_ERR_ARG);
    CHECK_ERR(ms_aes_kwp_unwrap(out, sizeof out, &n, NULL, 32, ct, sizeof ct), MS_ERR_ARG);
}

int main(void)
{
    ms_test_seed();
    test_rfc5649_examples();
    test_cross_check();
    test_rejections();
    return ms_test_finish();
}
