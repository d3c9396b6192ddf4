/*
 * Threshold KMS costs, in process (one thread runs every server in turn, so a server's
 * share of the work is the total divided by n): key generation, the monthly batch per
 * identity per server at (3,1) and (5,2), the signed Merkle root over the batch's records
 * (B5: one server's tree, its signature and the check of the others'), a server's
 * inclusion proof per issuance, and the device's combine + validate and root check; then
 * issuance by a server (threshold_serve_bench.c: share messages per second with the
 * bench's batch and with 100,000 identities, or 10,000 with --quick; HTTPS round trips).
 *
 * Usage: ms_threshold_bench [--quick | identities per batch (default 100; --quick: 20)]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mikeysakke/threshold.h"
#include "net/peer_msg.h"
#include "tkms/node.h"
#include "tkms/root.h"

/* bench/threshold_serve_bench.c: issuance at a server, HTTPS, the device's combine */
int threshold_serve_bench(size_t count, size_t big);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: the machine may be shared */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct ops {
    unsigned rounds;
    int (*has_priv)(unsigned round);
    ms_err (*bcast)(void *o, unsigned r, uint8_t *out, size_t cap, size_t *len);
    ms_err (*priv)(void *o, unsigned r, unsigned to, uint8_t *out, size_t cap, size_t *len);
    ms_err (*recv)(void *o, unsigned r, unsigned from, const uint8_t *m, size_t len,
                   const uint8_t *p, size_t plen);
    ms_err (*end)(void *o, unsigned r, char *d, size_t cap);
} ops;

static int dkg_has_priv(unsigned r)
{
    return r == 1;
}
static ms_err dkg_bcast(void *o, unsigned r, uint8_t *out, size_t cap, size_t *len)
{
    return ms_tkms_dkg_broadcast(o, r, out, cap, len);
}
static ms_err dkg_priv(void *o, unsigned r, unsigned to, uint8_t *out, size_t cap, size_t *len)
{
    (void)r;
    return ms_tkms_dkg_private(o, to, out, cap, len);
}
static ms_err dkg_recv(void *o, unsigned r, unsigned from, const uint8_t *m, size_t len,
                       const uint8_t *p, size_t plen)
{
    return ms_tkms_dkg_receive(o, r, from, m, len, p, plen);
}
static ms_err dkg_end(void *o, unsigned r, char *d, size_t cap)
{
    return ms_tkms_dkg_end_round(o, r, d, cap);
}
static int b_has_priv(unsigned r)
{
    return r == 1 || r == 3;
}
static ms_err b_bcast(void *o, unsigned r, uint8_t *out, size_t cap, size_t *len)
{
    return ms_tkms_batch_broadcast(o, r, out, cap, len);
}
static ms_err b_priv(void *o, unsigned r, unsigned to, uint8_t *out, size_t cap, size_t *len)
{
    return ms_tkms_batch_private(o, r, to, out, cap, len);
}
static ms_err b_recv(void *o, unsigned r, unsigned from, const uint8_t *m, size_t len,
                     const uint8_t *p, size_t plen)
{
    return ms_tkms_batch_receive(o, r, from, m, len, p, plen);
}
static ms_err b_end(void *o, unsigned r, char *d, size_t cap)
{
    return ms_tkms_batch_end_round(o, r, d, cap);
}
static const ops DKG = {MS_TKMS_DKG_ROUNDS, dkg_has_priv, dkg_bcast, dkg_priv, dkg_recv, dkg_end};
static const ops BATCH = {MS_TKMS_BATCH_ROUNDS, b_has_priv, b_bcast, b_priv, b_recv, b_end};

static int run(const ops *o, void **objs, unsigned n, size_t cap)
{
    uint8_t *bc = malloc((size_t)n * cap), *pv = malloc((size_t)n * n * cap);
    size_t bl[16], pl[16 * 16];
    int ok = bc != NULL && pv != NULL;
    for (unsigned r = 1; r <= o->rounds && ok; r++) {
        for (unsigned i = 1; i <= n && ok; i++) {
            ok = o->bcast(objs[i - 1], r, bc + (i - 1) * cap, cap, &bl[i - 1]) == MS_OK;
            if (o->has_priv(r))
                for (unsigned j = 1; j <= n && ok; j++)
                    if (j != i)
                        ok = o->priv(objs[i - 1], r, j, pv + ((i - 1) * n + j - 1) * cap, cap,
                                     &pl[(i - 1) * n + j - 1]) == MS_OK;
        }
        for (unsigned j = 1; j <= n && ok; j++)
            for (unsigned i = 1; i <= n && ok; i++)
                if (i != j)
                    ok = o->recv(objs[j - 1], r, i, bc + (i - 1) * cap, bl[i - 1],
                                 o->has_priv(r) ? pv + ((i - 1) * n + j - 1) * cap : NULL,
                                 o->has_priv(r) ? pl[(i - 1) * n + j - 1] : 0) == MS_OK;
        for (unsigned j = 1; j <= n && ok; j++) {
            char d[200] = "";
            ok = o->end(objs[j - 1], r, d, sizeof d) == MS_OK;
            if (!ok)
                fprintf(stderr, "server %u round %u: %s\n", j, r, d);
        }
    }
    free(bc);
    free(pv);
    return ok;
}

static int config(unsigned n, unsigned t, size_t count)
{
    ms_tkms_server *sv[16] = {0};
    ms_tkms_batch *bt[16] = {0};
    double t0 = now();
    for (unsigned i = 1; i <= n; i++)
        if (ms_tkms_server_new(&sv[i - 1], n, t, i, NULL) != MS_OK)
            return 1;
    if (!run(&DKG, (void **)sv, n, ms_tkms_msg_max(n, t, 0)))
        return 1;
    double t1 = now();
    printf("(%u,%u) key generation: %.1f ms per server\n", n, t, (t1 - t0) * 1e3 / n);

    uint8_t (*idb)[40] = malloc(count * sizeof *idb);
    const uint8_t **ids = malloc(count * sizeof *ids);
    size_t *lens = malloc(count * sizeof *lens);
    if (idb == NULL || ids == NULL || lens == NULL)
        return 1;
    for (size_t i = 0; i < count; i++) {
        int len = snprintf((char *)idb[i], sizeof idb[i], "2026-12%ctel:+4477009%05zu", 0, i);
        ids[i] = idb[i];
        lens[i] = (size_t)len + 1;
    }
    t0 = now();
    for (unsigned i = 1; i <= n; i++)
        if (ms_tkms_batch_new(&bt[i - 1], sv[i - 1], ids, lens, count, (1u << n) - 1, NULL, 0) !=
            MS_OK)
            return 1;
    if (!run(&BATCH, (void **)bt, n, ms_tkms_msg_max(n, t, count)))
        return 1;
    t1 = now();
    printf("(%u,%u) batch of %zu identities: %.2f ms per identity per server\n", n, t, count,
           (t1 - t0) * 1e3 / (double)n / (double)count);

    /* B5 at one server: every record's leaf, the root, its signature, the n - 1 others'
     * signatures checked (the servers' keys made here) */
    uint8_t seeds[16][32];
    tkms_root root;
    memset(&root, 0, sizeof root);
    snprintf(root.period, sizeof root.period, "2026-12");
    root.count = count;
    root.live = (1u << n) - 1;
    ms_peer_table table;
    memset(&table, 0, sizeof table);
    table.n = n;
    table.t = t;
    for (unsigned i = 0; i < n; i++)
        if (ms_peer_keygen(seeds[i], table.server[i].sign_pub, NULL) != MS_OK)
            return 1;
    uint8_t(*leaves)[32] = malloc(count * 32);
    if (leaves == NULL)
        return 1;
    t0 = now();
    for (size_t i = 0; i < count; i++) {
        ms_tkms_share sh;
        ms_tkms_record rec;
        uint8_t enc[MS_TKMS_RECORD_MAX];
        if (ms_tkms_issue(bt[0], ids[i], lens[i], &sh, &rec) != MS_OK ||
            tkms_merkle_leaf(leaves[i], enc, ms_tkms_record_encode(&rec, enc)) != MS_OK)
            return 1;
    }
    if (tkms_merkle_root(root.root, (const uint8_t(*)[32])leaves, count, 0, NULL, NULL) != MS_OK)
        return 1;
    double t_tree = now();
    for (unsigned i = 0; i < n; i++) {
        if (tkms_root_sign(seeds[i], &root, root.sig[i]) != MS_OK)
            return 1;
        root.have |= 1u << i;
    }
    double t_signed = now();
    if (tkms_root_valid(&root, &table) != root.live)
        return 1;
    t1 = now();
    /* signing: one server's share of the n signatures made above */
    double root_ms = ((t_tree - t0) + (t_signed - t_tree) / n + (t1 - t_signed)) * 1e3;
    printf("(%u,%u) signed root (B5) of %zu records at one server: %.2f ms (%.4f ms per "
           "identity; tree %.2f ms, signing and checking %u signatures %.2f ms)\n",
           n, t, count, root_ms, root_ms / (double)count, (t_tree - t0) * 1e3, n,
           ((t_signed - t_tree) / n + (t1 - t_signed)) * 1e3);
    /* a server's proof for one issuance (the whole tree again), and the device's check of
     * one share's proof and signatures */
    uint8_t proof[TKMS_PROOF_MAX][32], back[32];
    size_t plen = 0;
    t0 = now();
    for (int k = 0; k < 20; k++)
        if (tkms_merkle_root(back, (const uint8_t(*)[32])leaves, count, (size_t)k % count, proof,
                             &plen) != MS_OK)
            return 1;
    t1 = now();
    double proof_ms = (t1 - t0) * 1e3 / 20;
    /* the device: one share's proof to the root and the root's signatures */
    double dev = 0;
    for (int k = 0; k < 20; k++) {
        size_t m = (size_t)k % count;
        tkms_root check = root;
        if (tkms_merkle_root(back, (const uint8_t(*)[32])leaves, count, m, proof, &plen) !=
            MS_OK)
            return 1;
        t0 = now();
        if (tkms_merkle_from_proof(check.root, leaves[m], m, count,
                                   (const uint8_t(*)[32])proof, plen) != MS_OK ||
            tkms_root_valid(&check, &table) != root.live)
            return 1;
        dev += now() - t0;
    }
    free(leaves);
    printf("(%u,%u) inclusion proof per issuance at a server (tree of %zu): %.3f ms; device "
           "check of one share's proof and %u signatures: %.3f ms\n",
           n, t, count, proof_ms, n, dev * 1e3 / 20);

    ms_tkms_public pub;
    if (ms_tkms_server_public(sv[0], &pub) != MS_OK)
        return 1;
    const int reps = 20;
    double issue = 0, combine = 0;
    for (int k = 0; k < reps; k++) {
        size_t idn = (size_t)k % count;
        ms_tkms_share sh[16];
        ms_tkms_record rec;
        t0 = now();
        for (unsigned j = 1; j <= t + 1; j++)
            if (ms_tkms_issue(bt[j - 1], ids[idn], lens[idn], &sh[j - 1], &rec) != MS_OK)
                return 1;
        t1 = now();
        uint8_t rsk[257], ssk[32], pvt[65];
        unsigned cheater;
        if (ms_tkms_combine(&pub, ids[idn], lens[idn], &rec, sh, t + 1, rsk, ssk, pvt, &cheater,
                            NULL, 0) != MS_OK)
            return 1;
        issue += t1 - t0;
        combine += now() - t1;
    }
    printf("(%u,%u) issuance (slot lookup, %zu slots): %.3f ms per server; device combine + "
           "validate: %.1f ms\n",
           n, t, count, issue * 1e3 / reps / (t + 1), combine * 1e3 / reps);
    for (unsigned i = 0; i < n; i++) {
        ms_tkms_batch_free(bt[i]);
        ms_tkms_server_free(sv[i]);
    }
    free(idb);
    free(ids);
    free(lens);
    return 0;
}

int main(int argc, char **argv)
{
    size_t count = 100;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--quick") == 0) {
            count = 20;
        } else if (argv[i][0] >= '1' && argv[i][0] <= '9' &&
                   (count = (size_t)strtoul(argv[i], &end, 10), *end == '\0') && count <= 100000) {
            continue;
        } else {
            bool help = strcmp(argv[i], "--help") == 0;
            fprintf(help ? stdout : stderr, "usage: ms_threshold_bench [--quick | IDENTITIES "
                                            "(1..100000, default 100)]\n");
            return help ? 0 : 2;
        }
    }
    printf("fp backend: %s\n", ms_fp_backend_name());
    if (config(3, 1, count) != 0 || config(5, 2, count) != 0 ||
        threshold_serve_bench(count, count == 20 ? 10000 : 100000) != 0) {
        fprintf(stderr, "threshold bench failed\n");
        return 1;
    }
    return 0;
}
