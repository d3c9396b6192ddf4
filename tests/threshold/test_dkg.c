/* GJKR key generation of z and KSAK among n servers, in process: honest runs at (3,1)
 * and (5,2), a dealer sending a bad share (answered, or not: excluded), a dealer whose
 * Feldman commitments lie (its secret is rebuilt), and argument checks. */
#include <string.h>

#include "driver.h"

/* Every honest server (server 1 is) has the same public result; every set of t+1
 * honest servers holds shares of
 * the z and KSAK behind Z and KPAK; t shares do not give them. A dealer that cheated
 * keeps its own view (it counts itself qualified): it is left out. */
static void check_consistent(ms_tkms_server **sv, unsigned n, unsigned t, uint32_t want_qual,
                             uint32_t honest)
{
    ms_tkms_public pub, other;
    CHECK_ERR(ms_tkms_server_public(sv[0], &pub), MS_OK);
    CHECK(pub.qual == want_qual);
    for (unsigned i = 1; i < n; i++) {
        if (!(honest & (1u << i)))
            continue;
        CHECK_ERR(ms_tkms_server_public(sv[i], &other), MS_OK);
        CHECK(pub.qual == other.qual && memcmp(pub.Z, other.Z, 257) == 0 &&
              memcmp(pub.kpak, other.kpak, 65) == 0 && memcmp(pub.Zj, other.Zj, sizeof pub.Zj) == 0 &&
              memcmp(pub.kpakj, other.kpakj, sizeof pub.kpakj) == 0);
    }
    for (unsigned j = 1; j <= n; j++) {
        uint8_t pt[257];
        if (!(honest & (1u << (j - 1))))
            continue;
        CHECK_ERR(tg_mul_gen(&tg_sakke, pt, &sv[j - 1]->z_j), MS_OK);
        CHECK(memcmp(pt, pub.Zj[j - 1], 257) == 0);
        CHECK_ERR(tg_mul_gen(&tg_p256, pt, &sv[j - 1]->ksak_j), MS_OK);
        CHECK(memcmp(pt, pub.kpakj[j - 1], 65) == 0);
    }
    /* every subset of t+1 servers */
    for (uint32_t set = 0; set < (1u << n); set++) {
        unsigned ids[MS_TKMS_MAX_N], m = 0;
        if (set & ~honest)
            continue;
        for (unsigned j = 1; j <= n; j++)
            if (set & (1u << (j - 1)))
                ids[m++] = j;
        if (m != t + 1 && m != t)
            continue;
        tsc zs[MS_TKMS_MAX_N], ks[MS_TKMS_MAX_N], z, k;
        for (unsigned x = 0; x < m; x++) {
            zs[x] = sv[ids[x] - 1]->z_j;
            ks[x] = sv[ids[x] - 1]->ksak_j;
        }
        tk_combine0(&z, zs, ids, m, &tg_sakke);
        tk_combine0(&k, ks, ids, m, &tg_p256);
        uint8_t Z[257], K[65];
        CHECK_ERR(tg_mul_gen(&tg_sakke, Z, &z), MS_OK);
        CHECK_ERR(tg_mul_gen(&tg_p256, K, &k), MS_OK);
        if (m == t + 1) {
            CHECK(memcmp(Z, pub.Z, 257) == 0);
            CHECK(memcmp(K, pub.kpak, 65) == 0);
        } else {
            CHECK(memcmp(Z, pub.Z, 257) != 0);
            CHECK(memcmp(K, pub.kpak, 65) != 0);
        }
    }
    /* KPAK is a valid ECCSI public key */
    CHECK_ERR(tg_check_var(&tg_p256, pub.kpak, 0), MS_OK);
    CHECK_ERR(tg_check_var(&tg_sakke, pub.Z, 0), MS_OK);
}

static void free_all(ms_tkms_server **sv, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        ms_tkms_server_free(sv[i]);
        sv[i] = NULL;
    }
}

static void honest(unsigned n, unsigned t)
{
    ms_tkms_server *sv[MS_TKMS_MAX_N] = {0};
    CHECK_ERR(tk_dkg(sv, n, t, NULL, NULL), MS_OK);
    check_consistent(sv, n, t, (1u << n) - 1, (1u << n) - 1);
    for (unsigned i = 0; i < n; i++) {
        CHECK(ms_tkms_dkg_complaints(sv[i], 2) == 0);
        CHECK(ms_tkms_dkg_complaints(sv[i], 5) == 0);
    }
    free_all(sv, n);
}

/* Dealer 2 gives server 1 a wrong SAKKE share; with `lie_again` its public answer is
 * wrong too. */
struct bad_share {
    int lie_again;
};

static void tamper_share(unsigned round, unsigned from, unsigned to, uint8_t *msg, size_t len,
                         uint8_t *priv, size_t plen, void *ctx)
{
    const struct bad_share *b = ctx;
    (void)len;
    (void)plen;
    if (round == 1 && from == 2 && to == 1)
        priv[3 + 127] ^= 1;
    if (round == 3 && from == 2 && b->lie_again && msg[2] > 0)
        msg[3 + 1 + 127] ^= 1; /* the first answered record, for every receiver */
}

static void bad_share(unsigned n, unsigned t, int lie_again)
{
    ms_tkms_server *sv[MS_TKMS_MAX_N] = {0};
    struct bad_share b = {lie_again};
    CHECK_ERR(tk_dkg(sv, n, t, tamper_share, &b), MS_OK);
    CHECK(ms_tkms_dkg_complaints(sv[0], 2) == 2u); /* server 1 complained about dealer 2 */
    for (unsigned i = 1; i < n; i++)
        CHECK(ms_tkms_dkg_complaints(sv[i], 2) == 0);
    uint32_t all = (1u << n) - 1;
    check_consistent(sv, n, t, lie_again ? all & ~2u : all, lie_again ? all & ~2u : all);
    free_all(sv, n);
}

/* Dealer 3 broadcasts a wrong Feldman commitment (its coefficient 1 replaced by P). */
static void tamper_feldman(unsigned round, unsigned from, unsigned to, uint8_t *msg, size_t len,
                           uint8_t *priv, size_t plen, void *ctx)
{
    (void)to;
    (void)len;
    (void)priv;
    (void)plen;
    (void)ctx;
    if (round == 4 && from == 3)
        tg_generator(&tg_sakke, msg + 2 + 257);
}

static void bad_feldman(unsigned n, unsigned t)
{
    ms_tkms_server *sv[MS_TKMS_MAX_N] = {0};
    CHECK_ERR(tk_dkg(sv, n, t, tamper_feldman, NULL), MS_OK);
    for (unsigned i = 0; i < n; i++)
        CHECK(ms_tkms_dkg_complaints(sv[i], 5) == (i == 2 ? 0 : 4u));
    check_consistent(sv, n, t, (1u << n) - 1, (1u << n) - 1);
    free_all(sv, n);
}

/* Dealer 2's round 1 broadcast arrives garbled at everybody (as if it sent nothing):
 * every server complains, its answers cannot be checked, it is left out. */
static void tamper_absent(unsigned round, unsigned from, unsigned to, uint8_t *msg, size_t len,
                          uint8_t *priv, size_t plen, void *ctx)
{
    (void)to;
    (void)len;
    (void)priv;
    (void)plen;
    (void)ctx;
    if (round == 1 && from == 2)
        msg[0] = 9;
}

static void absent_dealer(unsigned n, unsigned t)
{
    ms_tkms_server *sv[MS_TKMS_MAX_N] = {0};
    CHECK_ERR(tk_dkg(sv, n, t, tamper_absent, NULL), MS_OK);
    uint32_t all = (1u << n) - 1;
    for (unsigned i = 0; i < n; i++)
        CHECK(ms_tkms_dkg_complaints(sv[i], 2) == (i == 1 ? 0 : 2u));
    check_consistent(sv, n, t, all & ~2u, all); /* server 2 still holds a valid share */
    free_all(sv, n);
}

static void args(void)
{
    ms_tkms_server *s = NULL;
    CHECK_ERR(ms_tkms_server_new(&s, 2, 1, 1, NULL), MS_ERR_ARG); /* 2t+1 > n */
    CHECK_ERR(ms_tkms_server_new(&s, 3, 1, 0, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_tkms_server_new(&s, 3, 1, 4, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_tkms_server_new(&s, 17, 1, 1, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_tkms_server_new(&s, 3, 0, 1, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_tkms_server_new(&s, 3, 1, 1, NULL), MS_OK);
    uint8_t buf[4096];
    size_t len;
    ms_tkms_public pub;
    CHECK_ERR(ms_tkms_dkg_broadcast(s, 2, buf, sizeof buf, &len), MS_ERR_ARG); /* out of turn */
    CHECK_ERR(ms_tkms_dkg_broadcast(s, 1, buf, 10, &len), MS_ERR_BUFFER_TOO_SMALL);
    CHECK_ERR(ms_tkms_server_public(s, &pub), MS_ERR_ARG);
    CHECK_ERR(ms_tkms_dkg_private(s, 1, buf, sizeof buf, &len), MS_ERR_ARG); /* to itself */
    CHECK_ERR(ms_tkms_dkg_broadcast(s, 1, buf, sizeof buf, &len), MS_OK);
    /* a message claiming another sender or round, or truncated */
    buf[1] = 3;
    CHECK_ERR(ms_tkms_dkg_receive(s, 1, 2, buf, len, NULL, 0), MS_ERR_BAD_ENCODING);
    buf[1] = 2;
    CHECK_ERR(ms_tkms_dkg_receive(s, 1, 2, buf, len - 1, NULL, 0), MS_ERR_BAD_ENCODING);
    CHECK_ERR(ms_tkms_dkg_receive(s, 1, 1, buf, len, NULL, 0), MS_ERR_ARG);
    ms_tkms_server_free(s);
}

int main(void)
{
    ms_test_seed();
    args();
    honest(3, 1);
    honest(5, 2);
    bad_share(3, 1, 0);
    bad_share(3, 1, 1);
    bad_share(5, 2, 1);
    absent_dealer(5, 2);
    bad_feldman(3, 1);
    bad_feldman(5, 2);
    return ms_test_finish();
}
