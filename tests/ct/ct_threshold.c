/*
 * The threshold KMS's secret paths under the constant-time check (ct_check.c explains
 * the method): share arithmetic mod q and mod n, polynomial evaluation, Lagrange
 * combination, commitments and scalar multiplications by secret shares, then a whole key
 * generation and batch at (3,1) whose every random draw is secret (so the polynomials,
 * the shares z_j and KSAK_j, (a + z_i) rho_i, u_j and SSK_j = KSAK_j + HS v_j are all
 * undefined to valgrind), and the device's combine of secret shares, including the path
 * that names a cheater.
 *
 * What the protocol makes public is declassified inside the product code, each with a
 * comment saying why: commitments and public key shares ([k]P, [k]G, Pedersen), the
 * verdict of a range or consistency check. Nothing is declassified here but outputs.
 */
#include <stdio.h>
#include <string.h>

#include "crypto/ct.h"
#include "ct_threshold.h"
#include "threshold/driver.h"

static ms_err secret_fill(void *ctx, uint8_t *out, size_t len)
{
    (void)ctx;
    ms_test_random(out, len);
    MS_CT_SECRET(out, len);
    return MS_OK;
}

static const ms_rng secret_draws = {secret_fill, NULL};

static ms_err pub_err(ms_err err)
{
    MS_CT_PUBLIC(&err, sizeof err);
    return err;
}

/* a == b, both declassified first (the comparison itself is the test's) */
static int same_scalar(const tsc *a, const tsc *b)
{
    tsc x = *a, y = *b;
    MS_CT_PUBLIC(&x, sizeof x);
    MS_CT_PUBLIC(&y, sizeof y);
    return memcmp(&x, &y, sizeof x) == 0;
}

static void check_scalars(const tgroup *g, ct_checked_fn checked)
{
    enum { T = 2 };
    tsc a, b, r, s, inv, one, c[T + 1], sh[T + 1], back;
    CHECK_ERR(pub_err(tsc_random(&a, g, &secret_draws)), MS_OK);
    CHECK_ERR(pub_err(tsc_random(&b, g, &secret_draws)), MS_OK);
    tsc_add(&r, &a, &b, g);
    tsc_sub(&s, &r, &b, g);
    CHECK(same_scalar(&s, &a));
    tsc_mul(&r, &a, &b, g);
    tsc_inv(&inv, &b, g);
    tsc_mul(&s, &r, &inv, g);
    CHECK(same_scalar(&s, &a));
    tsc_from_u64(&one, 1, g);
    tsc_mul(&s, &b, &inv, g);
    CHECK(same_scalar(&s, &one));
    uint64_t z = tsc_iszero(&a) | tsc_eq(&a, &b);
    MS_CT_PUBLIC(&z, sizeof z);
    CHECK(z == 0);
    uint8_t bytes[TG_SC_MAX];
    tsc_to_bytes(bytes, &a, g);
    CHECK_ERR(pub_err(tsc_from_bytes(&s, bytes, g)), MS_OK);
    CHECK(same_scalar(&s, &a));
    checked(g->kind == TG_SAKKE ? "threshold scalars mod q (add, sub, mul, inverse, octets)"
                                : "threshold scalars mod n (add, sub, mul, inverse, octets)");
    /* shares of a degree-2 polynomial at 1, 3, 4 and their Lagrange combination at 0 */
    for (unsigned k = 0; k <= T; k++)
        CHECK_ERR(pub_err(tsc_random(&c[k], g, &secret_draws)), MS_OK);
    const unsigned ids[T + 1] = {1, 3, 4};
    for (unsigned k = 0; k <= T; k++)
        tsc_poly_eval(&sh[k], c, T, ids[k], g);
    tk_combine0(&back, sh, ids, T + 1, g);
    CHECK(same_scalar(&back, &c[0]));
    checked(g->kind == TG_SAKKE ? "threshold shares mod q: polynomial evaluation, Lagrange"
                                : "threshold shares mod n: polynomial evaluation, Lagrange");
    ms_wipe(bytes, sizeof bytes);
}

static void check_points(const tgroup *g, ct_checked_fn checked)
{
    tsc k, k2;
    uint8_t out[TG_PT_MAX], out2[TG_PT_MAX], base[TG_PT_MAX];
    CHECK_ERR(pub_err(tsc_random(&k, g, &secret_draws)), MS_OK);
    CHECK_ERR(pub_err(tsc_random(&k2, g, &secret_draws)), MS_OK);
    CHECK_ERR(pub_err(tg_mul_gen(g, out, &k)), MS_OK);
    checked(g->kind == TG_SAKKE ? "threshold [k]P, k secret" : "threshold [k]G, k secret");
    CHECK_ERR(pub_err(tg_pedersen(g, out2, &k, &k2)), MS_OK);
    checked(g->kind == TG_SAKKE ? "threshold Pedersen [a]P + [b]H_s, a and b secret"
                                : "threshold Pedersen [a]G + [b]H_e, a and b secret");
    /* [k2]([k]gen) = [k k2]gen: the product by a public point of a secret scalar */
    CHECK_ERR(pub_err(tg_mul_point(g, base, out, &k2)), MS_OK);
    MS_CT_PUBLIC(base, g->pt_bytes);
    tsc kk;
    tsc_mul(&kk, &k, &k2, g);
    CHECK_ERR(pub_err(tg_mul_gen(g, out2, &kk)), MS_OK);
    CHECK(memcmp(base, out2, g->pt_bytes) == 0);
    checked(g->kind == TG_SAKKE ? "threshold [k]R for a public point R, k secret"
                                : "threshold [k]Q on P-256 for a public point Q, k secret");
    ms_wipe(&kk, sizeof kk);
}

static const char CT_ID0[] = "2026-12\0tel:+447700900123";
static const char CT_ID1[] = "2026-12\0tel:+447700900456";

static void check_protocol(ct_checked_fn checked)
{
    enum { N = 3, T = 1, NIDS = 2 };
    ms_tkms_server *sv[N] = {0};
    ms_tkms_batch *bt[N] = {0};
    for (unsigned i = 1; i <= N; i++)
        CHECK_ERR(pub_err(ms_tkms_server_new(&sv[i - 1], N, T, i, &secret_draws)), MS_OK);
    ms_err err = pub_err(tk_run(&tk_dkg_ops, (void **)sv, N, (1u << N) - 1,
                                ms_tkms_msg_max(N, T, 0), NULL, NULL, NULL));
    CHECK_ERR(err, MS_OK);
    checked("threshold key generation at (3,1), every draw secret");
    ms_tkms_public pub;
    CHECK_ERR(ms_tkms_server_public(sv[0], &pub), MS_OK);
    const uint8_t *ids[NIDS] = {(const uint8_t *)CT_ID0, (const uint8_t *)CT_ID1};
    const size_t lens[NIDS] = {sizeof CT_ID0, sizeof CT_ID1};
    for (unsigned i = 1; i <= N && err == MS_OK; i++)
        err = pub_err(ms_tkms_batch_new(&bt[i - 1], sv[i - 1], ids, lens, NIDS, (1u << N) - 1,
                                        NULL, 0));
    CHECK_ERR(err, MS_OK);
    if (err == MS_OK)
        err = pub_err(tk_run(&tk_batch_ops, (void **)bt, N, (1u << N) - 1,
                             ms_tkms_msg_max(N, T, NIDS), NULL, NULL, NULL));
    CHECK_ERR(err, MS_OK);
    checked("threshold batch at (3,1): (a + z_i) rho_i, u_j, SSK_j = KSAK_j + HS v_j");
    if (err != MS_OK)
        goto out;
    ms_tkms_share sh[2];
    ms_tkms_record rec;
    CHECK_ERR(pub_err(ms_tkms_issue(bt[0], ids[1], lens[1], &sh[0], &rec)), MS_OK);
    CHECK_ERR(pub_err(ms_tkms_issue(bt[2], ids[1], lens[1], &sh[1], &rec)), MS_OK);
    MS_CT_PUBLIC(&rec, sizeof rec); /* the slot's public record */
    for (unsigned x = 0; x < 2; x++) {
        MS_CT_SECRET(sh[x].u, sizeof sh[x].u);
        MS_CT_SECRET(sh[x].ssk, sizeof sh[x].ssk);
    }
    uint8_t rsk[MS_SAKKE_POINT_BYTES], ssk[MS_ECCSI_SCALAR_BYTES], pvt[MS_ECCSI_POINT_BYTES];
    unsigned cheater = 99;
    CHECK_ERR(pub_err(ms_tkms_combine(&pub, ids[1], lens[1], &rec, sh, 2, rsk, ssk, pvt,
                                      &cheater, NULL, 0)),
              MS_OK);
    MS_CT_PUBLIC(rsk, sizeof rsk);
    MS_CT_PUBLIC(ssk, sizeof ssk);
    MS_CT_PUBLIC(&cheater, sizeof cheater);
    CHECK(cheater == 0);
    ms_sakke_kms *kms = NULL;
    CHECK_ERR(ms_sakke_kms_new(&kms, pub.Z), MS_OK);
    CHECK_ERR(ms_sakke_rsk_validate(kms, ids[1], lens[1], rsk), MS_OK);
    ms_sakke_kms_free(kms);
    checked("threshold device combine: u = sum lambda_j u_j, u^-1, [u^-1]R0, SSK sum");
    /* a lying server 3: the combine fails and names it from the public commitments */
    sh[1].ssk[31] ^= 1;
    cheater = 0;
    CHECK_ERR(pub_err(ms_tkms_combine(&pub, ids[1], lens[1], &rec, sh, 2, rsk, ssk, pvt,
                                      &cheater, NULL, 0)),
              MS_ERR_THRESHOLD_SHARE);
    MS_CT_PUBLIC(&cheater, sizeof cheater);
    CHECK(cheater == 3);
    checked("threshold device combine naming a cheater (secret shares checked one by one)");
    ms_wipe(sh, sizeof sh);
out:
    for (unsigned i = 0; i < N; i++) {
        ms_tkms_batch_free(bt[i]);
        ms_tkms_server_free(sv[i]);
    }
}

void ct_check_threshold(ct_checked_fn checked)
{
    CHECK_ERR(tg_init(), MS_OK);
    check_scalars(&tg_sakke, checked);
    check_scalars(&tg_p256, checked);
    check_points(&tg_sakke, checked);
    check_points(&tg_p256, checked);
    check_protocol(checked);
}
