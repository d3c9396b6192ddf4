/* A threshold KMS in process with the files a device and a server see, for the cheater
 * report tests (test_report.c, and report_fixture.c for the command-line test): key
 * generation and a batch (threshold/driver.h), a peers table with fresh signing keys,
 * public.txt, the batch's records file, a device key, and share files as
 * ms_tkms_node_share writes them, honest or with a wrong share signed by its server.
 * Header-only, like driver.h. */
#ifndef MS_TESTS_TKMS_REPORT_FIXTURE_H
#define MS_TESTS_TKMS_REPORT_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "net/hpke.h"
#include "net/peer_msg.h"
#include "net/peer_table.h"
#include "threshold/driver.h"
#include "tkms/node.h"
#include "tkms/root.h"

#define RF_PERIOD "2026-12"
#define RF_NIDS 3
static const char *const RF_URI[RF_NIDS] = {"tel:+447700900123", "tel:+447700900456",
                                            "sip:alice@org.example"};

typedef struct rf_world {
    unsigned n, t;
    char dir[512];
    ms_tkms_server *sv[MS_TKMS_MAX_N];
    ms_tkms_batch *bt[MS_TKMS_MAX_N];
    ms_tkms_public pub;
    uint8_t seed[MS_TKMS_MAX_N][MS_PEER_KEY_BYTES];
    uint8_t dev_sk[MS_HPKE_SK_BYTES], dev_pk[MS_HPKE_PK_BYTES];
    uint8_t id[RF_NIDS][64];
    size_t id_len[RF_NIDS];
    char peers[600], public_txt[600], records[600];
} rf_world;

static inline void rf_path(char *out, size_t cap, const rf_world *w, const char *name)
{
    snprintf(out, cap, "%s/%s", w->dir, name);
}

static inline int rf_write(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    int ok = fwrite(p, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static inline void rf_hex(FILE *f, const char *key, int j, const uint8_t *p, size_t len)
{
    fprintf(f, j > 0 ? "%s %d " : "%s ", key, j);
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%02x", p[i]);
    fputc('\n', f);
}

/* Key generation, a batch of RF_NIDS identities, and the files, in dir (existing). */
static inline ms_err rf_setup(rf_world *w, unsigned n, unsigned t, const char *dir)
{
    memset(w, 0, sizeof *w);
    w->n = n;
    w->t = t;
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    ms_err err = tk_dkg(w->sv, n, t, NULL, NULL);
    if (err == MS_OK)
        err = ms_tkms_server_public(w->sv[0], &w->pub);
    const uint8_t *ids[RF_NIDS];
    for (size_t s = 0; s < RF_NIDS; s++) {
        size_t pl = strlen(RF_PERIOD), ul = strlen(RF_URI[s]);
        memcpy(w->id[s], RF_PERIOD, pl + 1);
        memcpy(w->id[s] + pl + 1, RF_URI[s], ul + 1);
        w->id_len[s] = pl + ul + 2;
        ids[s] = w->id[s];
    }
    for (unsigned i = 1; i <= n && err == MS_OK; i++)
        err = ms_tkms_batch_new(&w->bt[i - 1], w->sv[i - 1], ids, w->id_len, RF_NIDS,
                                (1u << n) - 1, NULL, 0);
    if (err == MS_OK)
        err = tk_run(&tk_batch_ops, (void **)w->bt, n, (1u << n) - 1,
                     ms_tkms_msg_max(n, t, RF_NIDS), NULL, NULL, NULL);
    if (err != MS_OK)
        return err;
    /* the peers table: fresh message keys; HPKE keys and TLS pins only fill the lines */
    ms_peer_table *table = calloc(1, sizeof *table);
    if (table == NULL)
        return MS_ERR_NOMEM;
    table->n = n;
    table->t = t;
    for (unsigned i = 1; i <= n && err == MS_OK; i++) {
        ms_peer_entry *e = &table->server[i - 1];
        uint8_t hsk[MS_HPKE_SK_BYTES];
        snprintf(e->url, sizeof e->url, "https://127.0.0.1:%u", 20000 + i);
        err = ms_peer_keygen(w->seed[i - 1], e->sign_pub, &ms_test_rng);
        if (err == MS_OK)
            err = ms_hpke_keygen(hsk, e->hpke_pub, &ms_test_rng);
        ms_test_random(e->tls_pin, sizeof e->tls_pin);
    }
    rf_path(w->peers, sizeof w->peers, w, "peers.txt");
    rf_path(w->public_txt, sizeof w->public_txt, w, "public.txt");
    rf_path(w->records, sizeof w->records, w, "batch-" RF_PERIOD ".records");
    if (err == MS_OK)
        err = ms_peer_table_write(w->peers, table, NULL, 0);
    free(table);
    FILE *f = err == MS_OK ? fopen(w->public_txt, "w") : NULL;
    if (err == MS_OK && f == NULL)
        err = MS_ERR_IO;
    if (f != NULL) {
        const ms_tkms_public *p = &w->pub;
        fprintf(f, "mikeysakke-tkms-public 1\nn %u\nt %u\nindex 1\nqual %08x\n", p->n, p->t,
                (unsigned)p->qual);
        rf_hex(f, "Z", 0, p->Z, sizeof p->Z);
        rf_hex(f, "kpak", 0, p->kpak, sizeof p->kpak);
        for (unsigned j = 1; j <= n; j++)
            rf_hex(f, "Zj", (int)j, p->Zj[j - 1], sizeof p->Zj[0]);
        for (unsigned j = 1; j <= n; j++)
            rf_hex(f, "kpakj", (int)j, p->kpakj[j - 1], sizeof p->kpakj[0]);
        uint8_t tr[32] = {0};
        rf_hex(f, "transcript", 0, tr, 32);
        if (fclose(f) != 0)
            err = MS_ERR_IO;
    }
    /* the records file, as the batch writes it */
    static uint8_t rbuf[RF_NIDS * 4096 + 64];
    size_t rl = 0;
    static const char phdr[] = "mikeysakke-tkms-records 1\n";
    memcpy(rbuf, phdr, sizeof phdr - 1);
    rl = sizeof phdr - 1;
    for (size_t s = 0; s < RF_NIDS && err == MS_OK; s++) {
        ms_tkms_share sh;
        ms_tkms_record rec;
        err = ms_tkms_issue(w->bt[0], w->id[s], w->id_len[s], &sh, &rec);
        ms_wipe(&sh, sizeof sh);
        rbuf[rl] = (uint8_t)(w->id_len[s] >> 8);
        rbuf[rl + 1] = (uint8_t)w->id_len[s];
        memcpy(rbuf + rl + 2, w->id[s], w->id_len[s]);
        rl += 2 + w->id_len[s];
        rl += ms_tkms_record_encode(&rec, rbuf + rl);
    }
    if (err == MS_OK && rf_write(w->records, rbuf, rl) != 0)
        err = MS_ERR_IO;
    if (err == MS_OK)
        err = ms_hpke_keygen(w->dev_sk, w->dev_pk, &ms_test_rng);
    return err;
}

/* How a share file may be wrong. */
enum { RF_HONEST = 0, RF_WRONG_SHARE = 1, RF_WRONG_RECORD = 2, RF_OTHER_SLOT = 3 };
/* RF_OTHER_SLOT: signed for slot s (its session) but carrying the next slot's record, in
 * the signed root with a valid proof, and the server's share of that slot. */

/* Server i's share of slot s as ms_tkms_node_share writes it (record, HPKE to the device,
 * signed by server i), to path; `how` makes it wrong while still signed. */
static inline ms_err rf_share_file(const rf_world *w, unsigned i, size_t s, int how,
                                   const char *path)
{
    ms_tkms_share sh;
    ms_tkms_record rec;
    ms_err err = ms_tkms_issue(w->bt[i - 1], w->id[s], w->id_len[s], &sh, &rec);
    if (err != MS_OK)
        return err;
    uint8_t session[32];
    memcpy(session, rec.sid, 32);
    if (how == RF_OTHER_SLOT) {
        s = (s + 1) % RF_NIDS;
        ms_wipe(&sh, sizeof sh);
        if ((err = ms_tkms_issue(w->bt[i - 1], w->id[s], w->id_len[s], &sh, &rec)) != MS_OK)
            return err;
    }
    /* a different octet per server: wrong shares of several servers cannot cancel in the
     * Lagrange sum (flipping the same bit could: lambda_1 = -lambda_2 for {1, 2, 3}) */
    if (how == RF_WRONG_SHARE)
        sh.u[MS_SAKKE_SECRET_BYTES - i] ^= 1;
    if (how == RF_WRONG_RECORD)
        rec.d += 1;
    /* the batch's signed root (B5) and this record's inclusion proof, as a server sends
     * them: the tree over the honest records, signed by every server */
    static tkms_root root;
    uint8_t leaves[RF_NIDS][32], proof[TKMS_PROOF_MAX][32], enc[MS_TKMS_RECORD_MAX];
    size_t proof_len = 0;
    memset(&root, 0, sizeof root);
    for (size_t k = 0; k < RF_NIDS && err == MS_OK; k++) {
        ms_tkms_share hs;
        ms_tkms_record hr;
        err = ms_tkms_issue(w->bt[0], w->id[k], w->id_len[k], &hs, &hr);
        ms_wipe(&hs, sizeof hs);
        if (err == MS_OK)
            err = tkms_merkle_leaf(leaves[k], enc, ms_tkms_record_encode(&hr, enc));
    }
    if (err == MS_OK)
        err = tkms_merkle_root(root.root, (const uint8_t(*)[32])leaves, RF_NIDS, s, proof,
                               &proof_len);
    snprintf(root.period, sizeof root.period, "%s", RF_PERIOD);
    root.count = RF_NIDS;
    root.live = (uint32_t)((1u << w->n) - 1);
    for (unsigned j = 1; j <= w->n && err == MS_OK; j++) {
        err = tkms_root_sign(w->seed[j - 1], &root, root.sig[j - 1]);
        root.have |= 1u << (j - 1);
    }
    uint8_t payload[8192], msg[8192 + MS_PEER_MSG_OVERHEAD], info[64], pt[160];
    size_t rl = ms_tkms_record_encode(&rec, payload + 2), el = 0, ml = 0;
    payload[0] = (uint8_t)(rl >> 8);
    payload[1] = (uint8_t)rl;
    size_t pub_len = 2 + rl + tkms_share_proof_encode(payload + 2 + rl, &root, s,
                                                      (const uint8_t(*)[32])proof, proof_len);
    memcpy(pt, sh.u, 128);
    memcpy(pt + 128, sh.ssk, 32);
    size_t il = ms_tkms_share_info(info, rec.sid, i);
    if (err == MS_OK)
        err = ms_hpke_seal(w->dev_pk, info, il, payload, pub_len, pt, sizeof pt,
                           payload + pub_len, sizeof payload - pub_len, &el, NULL);
    ms_wipe(pt, sizeof pt);
    ms_wipe(&sh, sizeof sh);
    if (err != MS_OK)
        return err;
    ms_peer_msg_hdr h = {.sender = (uint8_t)i, .recipient = MS_PEER_TO_ALL,
                         .kind = MS_TKMS_KIND_SHARE, .round = 2};
    memcpy(h.session, session, 32);
    err = ms_peer_msg_sign(w->seed[i - 1], &h, payload, pub_len + el, msg, sizeof msg, &ml);
    if (err == MS_OK && rf_write(path, msg, ml) != 0)
        err = MS_ERR_IO;
    return err;
}

static inline void rf_free(rf_world *w)
{
    for (unsigned i = 0; i < w->n; i++) {
        ms_tkms_batch_free(w->bt[i]);
        ms_tkms_server_free(w->sv[i]);
    }
    ms_wipe(w->seed, sizeof w->seed);
    ms_wipe(w->dev_sk, sizeof w->dev_sk);
}

#endif
