/*
 * The two groups of the threshold KMS and their commitments.
 *
 * SAKKE (E(F_p)[q], generator P): the project's curve code; [k]P and [a]P + [b]H_s from
 * fixed-base combs (constant time). P-256 (generator G): the project's constant-time
 * [k]G comb, [b]H_e and [k]Q with its constant-time window code (OpenSSL's EC_POINT_mul
 * branches on the scalar's length: the constant-time check reports it), and public
 * multi-scalar products with the project's Straus code. Commitments are declassified
 * for that check where they are made (MS_CT_PUBLIC): they are published.
 *
 * Second generators, by try-and-increment on a domain-separated hash (public, nobody
 * knows their logarithm to P or G):
 *   H_s: for ctr = 0, 1, ...: x = SHA-256("MIKEY-SAKKE TKMS H_s" || ctr (4 octets, big
 *        endian) || i (1 octet)) for i = 0..3 concatenated (128 octets); skip unless x < p
 *        and x^3 - 3x is a nonzero square; y = the smaller square root; H_s = [4](x, y)
 *        (the cofactor, landing in E[q]), skip if infinity.
 *   H_e: for ctr = 0, 1, ...: x = SHA-256("MIKEY-SAKKE TKMS H_e" || ctr (4 octets));
 *        skip unless x < p and x^3 - 3x + b is a nonzero square; y = the smaller root.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include "crypto/ct.h"
#include "crypto/p256.h"
#include "crypto/pairing.h"
#include "crypto/sakke_curve.h"
#include "tkms_internal.h"

static struct {
    ms_err status;
    uint8_t hs[257], he[65], p[257], g[65];
    ms_sakke_affine hs_aff;
    ms_sakke_comb *comb_p, *comb_h;
    EC_GROUP *ec;
    ms_p256_affine he_aff;
} G;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int hash_x(uint8_t *out, const char *dst, uint32_t ctr, int blocks)
{
    for (int i = 0; i < blocks; i++) {
        uint8_t tail[5] = {(uint8_t)(ctr >> 24), (uint8_t)(ctr >> 16), (uint8_t)(ctr >> 8),
                           (uint8_t)ctr, (uint8_t)i};
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned len = 0;
        int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
                 EVP_DigestUpdate(md, dst, strlen(dst)) == 1 &&
                 EVP_DigestUpdate(md, tail, blocks > 1 ? 5 : 4) == 1 &&
                 EVP_DigestFinal_ex(md, out + 32 * i, &len) == 1;
        EVP_MD_CTX_free(md);
        if (!ok)
            return -1;
    }
    return 0;
}

/* Try-and-increment onto y^2 = x^3 - 3x + b over F_p; out = 0x04 || x || y (len = 1 + 2 fl). */
static int find_point(uint8_t *out, const char *dst, const BIGNUM *p, const BIGNUM *b, size_t fl,
                      BN_CTX *ctx)
{
    uint8_t xb[128];
    BIGNUM *x = BN_CTX_get(ctx), *rhs = BN_CTX_get(ctx), *t = BN_CTX_get(ctx),
           *y = BN_CTX_get(ctx);
    if (y == NULL)
        return -1;
    for (uint32_t ctr = 0; ctr < 1000; ctr++) {
        if (hash_x(xb, dst, ctr, (int)(fl / 32)) != 0 || BN_bin2bn(xb, (int)fl, x) == NULL)
            return -1;
        if (BN_cmp(x, p) >= 0)
            continue;
        /* rhs = x^3 - 3x + b */
        if (!BN_mod_sqr(rhs, x, p, ctx) || !BN_mod_mul(rhs, rhs, x, p, ctx) ||
            !BN_mod_add(t, x, x, p, ctx) || !BN_mod_add(t, t, x, p, ctx) ||
            !BN_mod_sub(rhs, rhs, t, p, ctx) || !BN_mod_add(rhs, rhs, b, p, ctx))
            return -1;
        if (BN_is_zero(rhs) || BN_kronecker(rhs, p, ctx) != 1)
            continue;
        if (BN_mod_sqrt(y, rhs, p, ctx) == NULL || !BN_sub(t, p, y))
            return -1;
        if (BN_cmp(t, y) < 0 && !BN_copy(y, t))
            return -1;
        out[0] = 0x04;
        if (BN_bn2binpad(x, out + 1, (int)fl) < 0 || BN_bn2binpad(y, out + 1 + fl, (int)fl) < 0)
            return -1;
        return 0;
    }
    return -1;
}

static ms_err init_sakke(BN_CTX *ctx)
{
    uint64_t plain[MS_LIMBS];
    uint8_t pb[128], cand[257];
    memcpy(plain, ms_mont_p.m, sizeof plain);
    ms_u1024_to_be(pb, plain);
    BIGNUM *p = BN_CTX_get(ctx), *b = BN_CTX_get(ctx);
    if (b == NULL || BN_bin2bn(pb, 128, p) == NULL)
        return MS_ERR_NOMEM;
    BN_zero(b);
    if (find_point(cand, "MIKEY-SAKKE TKMS H_s", p, b, 128, ctx) != 0)
        return MS_ERR_INTERNAL;
    ms_sakke_affine c;
    ms_err err = ms_sakke_point_decode(&c, cand);
    if (err != MS_OK)
        return err;
    ms_sakke_jac j;
    const uint64_t four[MS_LIMBS] = {4};
    ms_sakke_mul_var(&j, &c, four);
    if (ms_fp_iszero(&j.z) || ms_sakke_jac_to_affine(&G.hs_aff, &j) != 0)
        return MS_ERR_INTERNAL;
    ms_sakke_point_encode(G.hs, &G.hs_aff);
    ms_sakke_affine P;
    ms_sakke_generator(&P);
    ms_sakke_point_encode(G.p, &P);
    G.comb_p = malloc(ms_sakke_comb_size());
    G.comb_h = malloc(ms_sakke_comb_size());
    if (G.comb_p == NULL || G.comb_h == NULL || ms_sakke_comb_build(G.comb_p, &P) != 0 ||
        ms_sakke_comb_build(G.comb_h, &G.hs_aff) != 0)
        return MS_ERR_NOMEM;
    return MS_OK;
}

static ms_err init_p256(BN_CTX *ctx)
{
    G.ec = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    BIGNUM *p = BN_CTX_get(ctx), *a = BN_CTX_get(ctx), *b = BN_CTX_get(ctx);
    if (G.ec == NULL || b == NULL || !EC_GROUP_get_curve(G.ec, p, a, b, ctx))
        return MS_ERR_INTERNAL;
    if (find_point(G.he, "MIKEY-SAKKE TKMS H_e", p, b, 32, ctx) != 0)
        return MS_ERR_INTERNAL;
    if (ms_p256_decode(&G.he_aff, G.he) != MS_OK)
        return MS_ERR_INTERNAL;
    if (EC_POINT_point2oct(G.ec, EC_GROUP_get0_generator(G.ec), POINT_CONVERSION_UNCOMPRESSED,
                           G.g, 65, ctx) != 65)
        return MS_ERR_INTERNAL;
    return MS_OK;
}

static void init_once(void)
{
    BN_CTX *ctx = BN_CTX_new();
    if (ctx == NULL) {
        G.status = MS_ERR_NOMEM;
        return;
    }
    BN_CTX_start(ctx);
    G.status = init_sakke(ctx);
    if (G.status == MS_OK)
        G.status = init_p256(ctx);
    BN_CTX_end(ctx);
    BN_CTX_free(ctx);
}

ms_err tg_init(void)
{
    pthread_once(&g_once, init_once);
    return G.status;
}

void tg_generator(const tgroup *g, uint8_t *out)
{
    memcpy(out, g->kind == TG_SAKKE ? G.p : G.g, g->pt_bytes);
}

void tg_second_generator(const tgroup *g, uint8_t *out)
{
    memcpy(out, g->kind == TG_SAKKE ? G.hs : G.he, g->pt_bytes);
}

int tg_is_infinity(const tgroup *g, const uint8_t *pt)
{
    for (size_t i = 0; i < g->pt_bytes; i++)
        if (pt[i] != 0)
            return 0;
    return 1;
}

ms_err tg_check_var(const tgroup *g, const uint8_t *pt, int allow_inf)
{
    return tg_check_curve_var(g, pt, allow_inf, 1);
}

ms_err tg_check_curve_var(const tgroup *g, const uint8_t *pt, int allow_inf, int order)
{
    if (tg_is_infinity(g, pt))
        return allow_inf ? MS_OK : MS_ERR_BAD_ENCODING;
    if (g->kind == TG_SAKKE) {
        ms_sakke_affine a;
        ms_err err = ms_sakke_point_decode(&a, pt);
        if (err != MS_OK || !order)
            return err;
        return ms_sakke_point_in_eq(&a) ? MS_OK : MS_ERR_POINT_ORDER;
    }
    ms_p256_affine a;
    return ms_p256_decode(&a, pt);
}

/* ---- SAKKE helpers ------------------------------------------------------------------ */

static ms_err sakke_out(uint8_t *out, const ms_sakke_jac *j)
{
    /* the result is a public commitment: whether it is infinity may be branched on */
    uint64_t inf = ms_fp_iszero(&j->z);
    MS_CT_PUBLIC(&inf, sizeof inf);
    if (inf) {
        memset(out, 0, 257);
        return MS_OK;
    }
    ms_sakke_affine a;
    if (ms_sakke_jac_to_affine(&a, j) != 0)
        return MS_ERR_RNG;
    ms_sakke_point_encode(out, &a);
    return MS_OK;
}

static ms_err sakke_in(ms_sakke_jac *j, const uint8_t *pt)
{
    if (tg_is_infinity(&tg_sakke, pt)) {
        ms_fp_set_one(&j->x);
        ms_fp_set_one(&j->y);
        ms_fp_set_zero(&j->z);
        return MS_OK;
    }
    ms_sakke_affine a;
    ms_err err = ms_sakke_point_decode(&a, pt);
    if (err != MS_OK)
        return err;
    ms_sakke_jac_from_affine(j, &a);
    return MS_OK;
}

/* ---- P-256 helpers (the project's constant-time code) --------------------------- */

/* The encoding of a P-256 point that may be infinity (Z = 0: all zero octets), in
 * constant time: whether it is infinity is not branched on. */
static void p256_out(uint8_t *out, const ms_p256_jacobian *j)
{
    uint64_t inf = ms_ct_iszero(j->z[0] | j->z[1] | j->z[2] | j->z[3]);
    ms_p256_affine a;
    ms_p256_to_affine(&a, j);
    ms_p256_encode(out, &a);
    for (size_t i = 0; i < 65; i++)
        out[i] = (uint8_t)(out[i] & ~inf);
    ms_wipe(&a, sizeof a);
}

/* ---- commitments ------------------------------------------------------------------ */

ms_err tg_mul_gen(const tgroup *g, uint8_t *out, const tsc *k)
{
    if (g->kind == TG_SAKKE) {
        uint64_t plain[MS_LIMBS];
        ms_sakke_jac j;
        tsc_to_plain(plain, k, g);
        /* the comb's columns summed in affine coordinates: ~25% fewer multiplications */
        ms_err err = ms_sakke_comb_mul_batched(&j, G.comb_p, plain);
        ms_wipe(plain, sizeof plain);
        if (err == MS_OK && (err = sakke_out(out, &j)) == MS_OK)
            MS_CT_PUBLIC(out, 257); /* a commitment or public key share: public */
        return err;
    }
    uint64_t zero = tsc_iszero(k);
    MS_CT_PUBLIC(&zero, sizeof zero); /* zero exactly when the public output is infinity */
    if (zero) {
        memset(out, 0, 65);
        return MS_OK;
    }
    uint8_t kb[32];
    ms_p256_jacobian j;
    ms_p256_affine a;
    tsc_to_bytes(kb, k, g);
    ms_p256_mul_g(&j, kb);
    ms_wipe(kb, sizeof kb);
    ms_p256_to_affine(&a, &j);
    ms_p256_encode(out, &a);
    /* a Feldman commitment or public key share: public by the protocol */
    MS_CT_PUBLIC(out, 65);
    return MS_OK;
}

ms_err tg_pedersen(const tgroup *g, uint8_t *out, const tsc *a, const tsc *b)
{
    if (g->kind == TG_SAKKE) {
        uint64_t pa[MS_LIMBS], pb[MS_LIMBS];
        ms_sakke_jac j;
        tsc_to_plain(pa, a, g);
        tsc_to_plain(pb, b, g);
        ms_err err = ms_sakke_comb_mul2(&j, G.comb_p, pa, G.comb_h, pb);
        ms_wipe(pa, sizeof pa);
        ms_wipe(pb, sizeof pb);
        if (err == MS_OK && (err = sakke_out(out, &j)) == MS_OK)
            MS_CT_PUBLIC(out, 257); /* a Pedersen commitment: public by the protocol */
        return err;
    }
    /* [a]G from the comb (which wants a in [1, n-1]: a = 0 runs on 1 and is replaced by
     * mask), [b]H_e from the window code, added in constant time */
    uint8_t ka[32], kb[32];
    ms_p256_jacobian ja, jb, sum;
    ms_p256_affine bh;
    tsc_to_bytes(ka, a, g);
    tsc_to_bytes(kb, b, g);
    uint64_t a0 = tsc_iszero(a), b0 = tsc_iszero(b);
    ka[31] = (uint8_t)(ka[31] | (a0 & 1));
    ms_p256_mul_g(&ja, ka);
    ms_p256_mul_point(&jb, &G.he_aff, kb);
    ms_p256_to_affine(&bh, &jb);
    ms_p256_add_affine(&sum, &ja, &bh);
    ms_ct_cmov((uint64_t *)&sum, (const uint64_t *)&ja, 12, b0);
    ms_ct_cmov((uint64_t *)&sum, (const uint64_t *)&jb, 12, a0);
    p256_out(out, &sum);
    MS_CT_PUBLIC(out, 65); /* a Pedersen commitment: public by the protocol */
    ms_wipe(ka, sizeof ka);
    ms_wipe(kb, sizeof kb);
    ms_wipe(&ja, sizeof ja);
    ms_wipe(&jb, sizeof jb);
    ms_wipe(&sum, sizeof sum);
    ms_wipe(&bh, sizeof bh);
    return MS_OK;
}

ms_err tg_mul_point(const tgroup *g, uint8_t *out, const uint8_t *pt, const tsc *k)
{
    if (g->kind == TG_SAKKE) {
        ms_sakke_affine a;
        ms_err err = ms_sakke_point_decode(&a, pt);
        if (err != MS_OK)
            return err;
        uint64_t plain[MS_LIMBS];
        ms_sakke_jac j;
        tsc_to_plain(plain, k, g);
        ms_sakke_mul(&j, &a, plain);
        ms_wipe(plain, sizeof plain);
        return sakke_out(out, &j);
    }
    ms_p256_affine base;
    if (ms_p256_decode(&base, pt) != MS_OK)
        return MS_ERR_BAD_ENCODING;
    uint8_t kb[32];
    ms_p256_jacobian j;
    tsc_to_bytes(kb, k, g);
    ms_p256_mul_point(&j, &base, kb);
    p256_out(out, &j); /* secret (an RSK-like product): not declassified */
    ms_wipe(kb, sizeof kb);
    ms_wipe(&j, sizeof j);
    return MS_OK;
}

/* ---- SAKKE multi-scalar product (Straus: one run of doublings for every term) ----- */

#define MSM_W 5                       /* wNAF width: odd digits -15..15 */
#define MSM_TAB (1 << (MSM_W - 2))    /* odd multiples 1, 3, ..., 15 */
#define MSM_DIGITS (MS_LIMBS * 64 + 1)
#define MSM_CHUNK 64                  /* terms per run (bounds the tables' memory) */

/* Width-5 NAF of a public scalar, least significant digit first; returns its length. */
static int msm_wnaf(int8_t *d, const uint64_t k_in[MS_LIMBS])
{
    uint64_t k[MS_LIMBS + 1];
    memcpy(k, k_in, MS_LIMBS * sizeof k[0]);
    k[MS_LIMBS] = 0;
    int top = MS_LIMBS;
    int len = 0;
    for (;;) {
        while (top > 0 && k[top] == 0)
            top--;
        if (top == 0 && k[0] == 0)
            break;
        int digit = 0;
        if (k[0] & 1) {
            digit = (int)(k[0] & ((1u << MSM_W) - 1));
            if (digit >= 1 << (MSM_W - 1))
                digit -= 1 << MSM_W;
            /* k -= digit (digit odd, |digit| < 16) */
            if (digit > 0) {
                uint64_t borrow = (uint64_t)digit;
                for (int i = 0; i <= top && borrow; i++) {
                    uint64_t before = k[i];
                    k[i] -= borrow;
                    borrow = before < borrow;
                }
            } else {
                uint64_t carry = (uint64_t)-digit;
                for (int i = 0; i <= MS_LIMBS && carry; i++) {
                    k[i] += carry;
                    carry = k[i] < carry;
                    if (i > top)
                        top = i;
                }
            }
        }
        d[len++] = (int8_t)digit;
        for (int i = 0; i <= top; i++)
            k[i] = (k[i] >> 1) | (i < MS_LIMBS ? k[i + 1] << 63 : 0);
    }
    return len;
}

static ms_err sakke_msm_chunk(ms_sakke_jac *acc, const uint8_t *const *pts, const tsc *k,
                              size_t count)
{
    ms_sakke_jac(*tab)[MSM_TAB] = malloc(count * sizeof *tab);
    int8_t(*dig)[MSM_DIGITS] = malloc(count * sizeof *dig);
    int *len = malloc(count * sizeof *len);
    ms_err err = (tab == NULL || dig == NULL || len == NULL) ? MS_ERR_NOMEM : MS_OK;
    int maxlen = 0;
    for (size_t i = 0; i < count && err == MS_OK; i++) {
        len[i] = 0;
        if (tg_is_infinity(&tg_sakke, pts[i]))
            continue;
        ms_sakke_affine a;
        if ((err = ms_sakke_point_decode(&a, pts[i])) != MS_OK)
            break;
        /* a negative small scalar (a Lagrange coefficient) is q - |k|: use the negated
         * point and |k|, whichever is shorter */
        uint64_t plain[MS_LIMBS], neg[MS_LIMBS];
        tsc_to_plain(plain, &k[i], &tg_sakke);
        ms_u1024_sub(neg, ms_mont_q.m, plain);
        if (ms_u1024_lt(neg, plain)) {
            memcpy(plain, neg, sizeof plain);
            ms_fp_neg(&a.y, &a.y);
        }
        len[i] = msm_wnaf(dig[i], plain);
        if (len[i] > maxlen)
            maxlen = len[i];
        ms_sakke_jac twice;
        ms_sakke_jac_from_affine(&tab[i][0], &a);
        ms_sakke_jac_double(&twice, &tab[i][0]);
        for (int m = 1; m < MSM_TAB; m++)
            ms_sakke_jac_add(&tab[i][m], &tab[i][m - 1], &twice);
    }
    int started = 0;
    ms_sakke_jac r = *acc, tmp;
    for (int bit = maxlen - 1; bit >= 0 && err == MS_OK; bit--) {
        if (started) {
            tmp = r;
            ms_sakke_jac_double(&r, &tmp);
        }
        for (size_t i = 0; i < count; i++) {
            if (bit >= len[i] || dig[i][bit] == 0)
                continue;
            int d = dig[i][bit];
            ms_sakke_jac t = tab[i][(d < 0 ? -d : d) / 2];
            if (d < 0)
                ms_fp_neg(&t.y, &t.y);
            if (!started) {
                /* the first term: the earlier accumulator is added at the end */
                r = t;
                started = 1;
                continue;
            }
            tmp = r;
            ms_sakke_jac_add(&r, &tmp, &t);
        }
    }
    if (err == MS_OK) {
        if (started) {
            tmp = r;
            ms_sakke_jac_add(&r, &tmp, acc);
        }
        *acc = r;
    }
    free(tab);
    free(dig);
    free(len);
    return err;
}

ms_err tg_msm_var(const tgroup *g, uint8_t *out, const uint8_t *const *pts, const tsc *k,
                  size_t count)
{
    if (g->kind == TG_SAKKE && count >= 2) {
        ms_sakke_jac acc;
        ms_err err = sakke_in(&acc, (const uint8_t[257]){0});
        /* plain sums first (scalar 1: no table), then the products by runs */
        const uint8_t **rest = malloc(count * sizeof *rest);
        tsc *rk = malloc(count * sizeof *rk);
        size_t m = 0;
        if (rest == NULL || rk == NULL)
            err = MS_ERR_NOMEM;
        for (size_t i = 0; i < count && err == MS_OK; i++) {
            if (tg_is_infinity(g, pts[i]))
                continue;
            if (ms_u1024_eq(k[i].v, ms_mont_q.one)) {
                ms_sakke_affine a;
                ms_sakke_jac base = acc;
                if ((err = ms_sakke_point_decode(&a, pts[i])) == MS_OK)
                    ms_sakke_jac_add_affine(&acc, &base, &a);
                continue;
            }
            rest[m] = pts[i];
            rk[m++] = k[i];
        }
        for (size_t i = 0; i < m && err == MS_OK; i += MSM_CHUNK)
            err = sakke_msm_chunk(&acc, rest + i, rk + i, m - i < MSM_CHUNK ? m - i : MSM_CHUNK);
        free(rest);
        free(rk);
        return err != MS_OK ? err : sakke_out(out, &acc);
    }
    if (g->kind == TG_SAKKE) {
        ms_sakke_jac acc, term, base;
        ms_err err = sakke_in(&acc, (const uint8_t[257]){0});
        for (size_t i = 0; i < count && err == MS_OK; i++) {
            if (tg_is_infinity(g, pts[i]))
                continue;
            ms_sakke_affine a;
            if ((err = ms_sakke_point_decode(&a, pts[i])) != MS_OK)
                break;
            base = acc;
            if (ms_u1024_eq(k[i].v, ms_mont_q.one)) { /* a plain sum: no table */
                ms_sakke_jac_add_affine(&acc, &base, &a);
                continue;
            }
            /* a negative small scalar (a Lagrange coefficient) is q - |k|: multiply the
             * negated point by |k| instead, whichever is shorter */
            uint64_t plain[MS_LIMBS], neg[MS_LIMBS];
            tsc_to_plain(plain, &k[i], g);
            ms_u1024_sub(neg, ms_mont_q.m, plain);
            if (ms_u1024_lt(neg, plain)) {
                memcpy(plain, neg, sizeof plain);
                ms_fp_neg(&a.y, &a.y);
            }
            ms_sakke_mul_var(&term, &a, plain);
            ms_sakke_jac_add(&acc, &base, &term);
        }
        return err != MS_OK ? err : sakke_out(out, &acc);
    }
    ms_p256_jacobian acc;
    memset(&acc, 0, sizeof acc); /* Z = 0: infinity */
    for (size_t i = 0; i < count;) {
        ms_p256_affine aff[4];
        uint8_t kb[4][32];
        const uint8_t *kp[4];
        size_t m = 0;
        for (; i < count && m < 4; i++) {
            if (tg_is_infinity(g, pts[i]))
                continue;
            ms_err err = ms_p256_decode(&aff[m], pts[i]);
            if (err != MS_OK)
                return err;
            tsc_to_bytes(kb[m], &k[i], g);
            kp[m] = kb[m];
            m++;
        }
        if (m == 0)
            continue;
        ms_p256_table tabs[4];
        const ms_p256_table *tp[4];
        ms_p256_tables_var(tabs, aff, m, 5);
        for (size_t t = 0; t < m; t++)
            tp[t] = &tabs[t];
        ms_p256_jacobian part;
        ms_p256_affine pa;
        ms_p256_mul_var(&part, NULL, tp, kp, m);
        if (ms_p256_to_affine_var(&pa, &part))
            ms_p256_add_affine_var(&acc, &acc, &pa);
    }
    ms_p256_affine r;
    if (!ms_p256_to_affine_var(&r, &acc)) {
        memset(out, 0, 65);
        return MS_OK;
    }
    ms_p256_encode(out, &r);
    return MS_OK;
}

ms_err tg_neg_var(const tgroup *g, uint8_t *out, const uint8_t *in)
{
    if (tg_is_infinity(g, in)) {
        memset(out, 0, g->pt_bytes);
        return MS_OK;
    }
    ms_err err;
    if (g->kind == TG_SAKKE) {
        ms_sakke_affine a;
        if ((err = ms_sakke_point_decode(&a, in)) != MS_OK)
            return err;
        ms_fp_neg(&a.y, &a.y);
        ms_sakke_point_encode(out, &a);
        return MS_OK;
    }
    ms_p256_affine a;
    if ((err = ms_p256_decode(&a, in)) != MS_OK)
        return err;
    ms_p256_negate(&a, &a);
    ms_p256_encode(out, &a);
    return MS_OK;
}

ms_err tg_add_var(const tgroup *g, uint8_t *out, const uint8_t *a, const uint8_t *b)
{
    const uint8_t *pts[2] = {a, b};
    tsc one[2];
    tsc_from_u64(&one[0], 1, g);
    one[1] = one[0];
    return tg_msm_var(g, out, pts, one, 2);
}

ms_err tg_feldman_eval_var(const tgroup *g, uint8_t *out, const uint8_t *comms, unsigned deg,
                           unsigned x)
{
    const uint8_t *pts[MS_TKMS_MAX_T + 1];
    tsc k[MS_TKMS_MAX_T + 1];
    uint64_t pw = 1;
    if (deg > MS_TKMS_MAX_T)
        return MS_ERR_ARG;
    for (unsigned i = 0; i <= deg; i++) {
        pts[i] = comms + (size_t)i * g->pt_bytes;
        tsc_from_u64(&k[i], pw, g);
        pw *= x;
    }
    return tg_msm_var(g, out, pts, k, deg + 1);
}

ms_err tg_pairing_var(uint8_t out[128], const uint8_t *a, const uint8_t *b)
{
    ms_sakke_affine A, B;
    ms_err err;
    if ((err = ms_sakke_point_decode(&A, a)) != MS_OK ||
        (err = ms_sakke_point_decode(&B, b)) != MS_OK)
        return err;
    ms_fp r;
    if (ms_pairing(&r, &A, &B) != 0)
        return MS_ERR_POINT_ORDER;
    ms_fp_to_bytes(out, &r);
    return MS_OK;
}

/* ---- hashes ------------------------------------------------------------------------ */

static ms_err sha256_parts(uint8_t out[32], const uint8_t *const *parts, const size_t *lens,
                           size_t count)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned len = 0;
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    for (size_t i = 0; ok && i < count; i++)
        ok = EVP_DigestUpdate(md, parts[i], lens[i]) == 1;
    ok = ok && EVP_DigestFinal_ex(md, out, &len) == 1;
    EVP_MD_CTX_free(md);
    return ok ? MS_OK : MS_ERR_INTERNAL;
}

ms_err tkms_sid(uint8_t sid[32], const uint8_t *Z, const uint8_t *kpak, const uint8_t *id,
                size_t id_len)
{
    static const char dst[] = "MIKEY-SAKKE TKMS sid";
    const uint8_t *parts[4] = {(const uint8_t *)dst, Z, kpak, id};
    size_t lens[4] = {sizeof dst - 1, 257, 65, id_len};
    return sha256_parts(sid, parts, lens, 4);
}

ms_err tkms_hs(tsc *hs, const uint8_t *kpak, const uint8_t *id, size_t id_len,
               const uint8_t *pvt)
{
    uint8_t h[32];
    const uint8_t *parts[4] = {G.g, kpak, id, pvt};
    size_t lens[4] = {65, 65, id_len, 65};
    ms_err err = sha256_parts(h, parts, lens, 4);
    if (err != MS_OK)
        return err;
    ms_p256_scalar_reduce_var(h, h);
    return tsc_from_bytes(hs, h, &tg_p256);
}

ms_err tkms_id_scalar(tsc *a, const uint8_t *id, size_t id_len)
{
    static const uint64_t two[MS_LIMBS] = {2};
    uint64_t plain[MS_LIMBS];
    if (id == NULL || id_len == 0 || id_len > MS_SAKKE_ID_MAX_BYTES)
        return MS_ERR_ID_RANGE;
    ms_u1024_from_be(plain, id, id_len);
    if (ms_u1024_lt(plain, two) || !ms_u1024_lt(plain, ms_mont_q.m))
        return MS_ERR_ID_RANGE;
    ms_mont_to(a->v, plain, &ms_mont_q);
    return MS_OK;
}
