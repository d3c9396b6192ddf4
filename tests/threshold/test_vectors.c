/* Cross-check with the Python prototype of the design note: with every server's random
 * draws fixed (vectors/tkms_3_1.txt and tkms_5_2.txt, made by vectors/gen_tkms_vectors.py
 * from the oracle), key generation and one batch of two identities at (3,1) and (5,2)
 * give the oracle's public
 * outputs (H_s, H_e, Z, KPAK and the public key shares, R0, PVT, the commitments), the
 * same u_j and SSK_j shares, and the device the same RSK and SSK. */
#include <string.h>

#include "driver.h"

static char VEC[64];

static void want_eq(const char *name, const uint8_t *got, size_t len)
{
    uint8_t want[2048];
    size_t n = ms_test_vector(VEC, name, want, sizeof want);
    CHECK(n == len);
    if (n == len && memcmp(got, want, len) != 0) {
        fprintf(stderr, "vector %s differs\n", name);
        CHECK(0);
    } else if (n == len) {
        CHECK(1);
    }
}

static void cross_check(unsigned n, unsigned t)
{
    static const char ID0[] = "2026-12\0tel:+447700900123";
    static const char ID1[] = "2026-12\0sip:alice@org.example";
    const uint8_t *ids[2] = {(const uint8_t *)ID0, (const uint8_t *)ID1};
    const size_t lens[2] = {sizeof ID0, sizeof ID1};
    const uint32_t all = (1u << n) - 1;
    snprintf(VEC, sizeof VEC, "../threshold/vectors/tkms_%u_%u.txt", n, t);
    uint8_t pt[257];
    tg_second_generator(&tg_sakke, pt);
    want_eq("H_s", pt, 257);
    tg_second_generator(&tg_p256, pt);
    want_eq("H_e", pt, 65);

    static uint8_t streams[MS_TKMS_MAX_N][8192];
    ms_fixed_rng state[MS_TKMS_MAX_N];
    ms_rng rngs[MS_TKMS_MAX_N];
    ms_tkms_server *sv[MS_TKMS_MAX_N] = {0};
    ms_tkms_batch *bt[MS_TKMS_MAX_N] = {0};
    for (unsigned i = 1; i <= n; i++) {
        char name[32];
        uint8_t parts = 0;
        size_t len = 0;
        snprintf(name, sizeof name, "rng_%u_parts", i);
        CHECK(ms_test_vector(VEC, name, &parts, 1) == 1);
        for (unsigned x = 0; x < parts; x++) {
            snprintf(name, sizeof name, "rng_%u_%u", i, x);
            len += ms_test_vector(VEC, name, streams[i - 1] + len, sizeof streams[i - 1] - len);
        }
        rngs[i - 1] = ms_fixed_rng_make(&state[i - 1], streams[i - 1], len);
        CHECK_ERR(ms_tkms_server_new(&sv[i - 1], n, t, i, &rngs[i - 1]), MS_OK);
    }
    CHECK_ERR(tk_run(&tk_dkg_ops, (void **)sv, n, all, ms_tkms_msg_max(n, t, 0), NULL, NULL, NULL),
              MS_OK);
    ms_tkms_public pub;
    CHECK_ERR(ms_tkms_server_public(sv[0], &pub), MS_OK);
    want_eq("Z", pub.Z, 257);
    want_eq("KPAK", pub.kpak, 65);
    for (unsigned j = 1; j <= n; j++) {
        char name[16];
        snprintf(name, sizeof name, "Z_%u", j);
        want_eq(name, pub.Zj[j - 1], 257);
        snprintf(name, sizeof name, "KPAK_%u", j);
        want_eq(name, pub.kpakj[j - 1], 65);
    }
    for (unsigned i = 1; i <= n; i++)
        CHECK_ERR(ms_tkms_batch_new(&bt[i - 1], sv[i - 1], ids, lens, 2, all, NULL, 0), MS_OK);
    CHECK_ERR(tk_run(&tk_batch_ops, (void **)bt, n, all, ms_tkms_msg_max(n, t, 2), NULL, NULL,
                     NULL),
              MS_OK);
    /* every draw was used, no more */
    for (unsigned i = 0; i < n; i++)
        CHECK(state[i].pos == state[i].len);
    for (size_t s = 0; s < 2; s++) {
        ms_tkms_share sh[MS_TKMS_MAX_N];
        ms_tkms_record rec;
        char name[32];
        for (unsigned j = 1; j <= n; j++) {
            CHECK_ERR(ms_tkms_issue(bt[j - 1], ids[s], lens[s], &sh[j - 1], &rec), MS_OK);
            snprintf(name, sizeof name, "s%zu_u_%u", s, j);
            want_eq(name, sh[j - 1].u, 128);
            snprintf(name, sizeof name, "s%zu_ssk_%u", s, j);
            want_eq(name, sh[j - 1].ssk, 32);
        }
        uint8_t d[8];
        for (int k = 0; k < 8; k++)
            d[k] = (uint8_t)(rec.d >> (56 - 8 * k));
        want_eq("d", d, 8);
        snprintf(name, sizeof name, "s%zu_R0", s);
        want_eq(name, rec.r0, 257);
        snprintf(name, sizeof name, "s%zu_PVT", s);
        want_eq(name, rec.pvt, 65);
        for (unsigned k = 0; k <= t; k++) {
            snprintf(name, sizeof name, "s%zu_uc%u", s, k);
            want_eq(name, rec.uc[k], 257);
            snprintf(name, sizeof name, "s%zu_vc%u", s, k);
            want_eq(name, rec.vc[k], 65);
        }
        uint8_t rsk[257], ssk[32], pvt[65];
        unsigned cheater = 9;
        /* the oracle's device used the last t+1 servers */
        CHECK_ERR(ms_tkms_combine(&pub, ids[s], lens[s], &rec, sh + n - (t + 1), t + 1, rsk, ssk,
                                  pvt, &cheater, NULL, 0),
                  MS_OK);
        snprintf(name, sizeof name, "s%zu_RSK", s);
        want_eq(name, rsk, 257);
        snprintf(name, sizeof name, "s%zu_SSK", s);
        want_eq(name, ssk, 32);
    }
    for (unsigned i = 0; i < n; i++) {
        ms_tkms_batch_free(bt[i]);
        ms_tkms_server_free(sv[i]);
    }
}

int main(void)
{
    CHECK_ERR(tg_init(), MS_OK);
    cross_check(3, 1);
    cross_check(5, 2);
    return ms_test_finish();
}
