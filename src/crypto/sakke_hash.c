/* HashToIntegerRange (RFC 6508 5.1) with SHA-256 through OpenSSL's EVP interface. */
#include "sakke_hash.h"

#include <openssl/evp.h>
#include <string.h>

#include "mikeysakke/crypto.h"

static int sha256_2(EVP_MD_CTX *ctx, uint8_t out[MS_SAKKE_HASH_BYTES], const uint8_t *a,
                    size_t na, const uint8_t *b, size_t nb)
{
    unsigned len = 0;
    if (EVP_DigestInit_ex2(ctx, EVP_sha256(), NULL) != 1)
        return -1;
    if (na > 0 && EVP_DigestUpdate(ctx, a, na) != 1)
        return -1;
    if (nb > 0 && EVP_DigestUpdate(ctx, b, nb) != 1)
        return -1;
    if (EVP_DigestFinal_ex(ctx, out, &len) != 1 || len != MS_SAKKE_HASH_BYTES)
        return -1;
    return 0;
}

int ms_sakke_htir_blocks(uint8_t *out, unsigned l, const uint8_t *s1, size_t n1,
                         const uint8_t *s2, size_t n2)
{
    int ret = -1;
    uint8_t a[MS_SAKKE_HASH_BYTES], h[MS_SAKKE_HASH_BYTES];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        goto out;
    /* A = hash(s); h_0 = 0...0; h_i = hash(h_(i-1)); v_i = hash(h_i || A) */
    if (sha256_2(ctx, a, s1, n1, s2, n2) != 0)
        goto out;
    memset(h, 0, sizeof h);
    for (unsigned i = 0; i < l; i++) {
        if (sha256_2(ctx, h, h, sizeof h, NULL, 0) != 0)
            goto out;
        if (sha256_2(ctx, out + (size_t)i * MS_SAKKE_HASH_BYTES, h, sizeof h, a, sizeof a) != 0)
            goto out;
    }
    ret = 0;
out:
    if (ret != 0)
        ms_wipe(out, (size_t)l * MS_SAKKE_HASH_BYTES);
    ms_wipe(a, sizeof a);
    EVP_MD_CTX_free(ctx); /* cleanses the digest state */
    return ret;
}

int ms_sakke_htir_q(uint64_t r[MS_LIMBS], const uint8_t *s1, size_t n1, const uint8_t *s2,
                    size_t n2)
{
    /* l = ceil(1022 / 256) = 4: v' is exactly 1024 bits, below 7q, so seven
     * constant-time conditional subtractions reduce it. */
    uint8_t v[4 * MS_SAKKE_HASH_BYTES];
    uint64_t x[MS_LIMBS];
    int ret = ms_sakke_htir_blocks(v, 4, s1, n1, s2, n2);
    ms_u1024_from_be(x, v, sizeof v);
    ms_mont_reduce_small(r, x, 0, &ms_mont_q);
    if (ret != 0)
        memset(r, 0, MS_LIMBS * sizeof r[0]);
    ms_wipe(v, sizeof v);
    ms_wipe(x, sizeof x);
    return ret;
}

int ms_sakke_htir_mask(uint8_t mask[16], const uint8_t *s, size_t len)
{
    /* l = ceil(128 / 256) = 1 and v_1 mod 2^128 is its last 16 octets */
    uint8_t v[MS_SAKKE_HASH_BYTES];
    int ret = ms_sakke_htir_blocks(v, 1, s, len, NULL, 0);
    memcpy(mask, v + 16, 16);
    ms_wipe(v, sizeof v);
    return ret;
}
