/*
 * The network batch (ms_tkms_node_batch) at (4,1), four servers on threads over loopback
 * TLS:
 *  - server 2 cheats as a re-sharing dealer (a wrong h, consistent with its commitments,
 *    dealt through the test-only hook of src/tkms/node.c, which only a test defines):
 *    the honest servers catch it by the batched pairing check and name dealer 2, and no
 *    server keeps the batch;
 *  - the batch again with the live set {1, 3, 4}: every live server signs the root, shares
 *    of 1 and 3 combine; server 2 (given the public root file) says it did not take part;
 *  - the device refuses, naming the server, a validly signed share message whose record
 *    is not in a signed root (an altered proof), whose root has too few valid signatures,
 *    or whose sender is outside the live set.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/hpke.h"
#include "net/peer_msg.h"
#include "net/peer_table.h"
#include "testutil.h"
#include "threshold/tkms_internal.h"
#include "tkms/node.h"
#include "tkms/root.h"

#define N 4

static char root_dir[] = "/tmp/ms_tkms_bnet_XXXXXX";
static char dirs[N][256];
static char peers[300];
static const uint8_t pass[] = "batch net test passphrase";
static const char *const users[] = {"tel:+447700900123", "sip:alice@org.example",
                                    "tel:+447700900456"};

/* The test-only hook of node.c (declared weak there): in the cheating server's thread,
 * after batch round 2, the dealer's h for slot 0 is made wrong. */
void tkms_node_test_batch_round(ms_tkms_batch *b, unsigned round);
static _Thread_local int cheating;
void tkms_node_test_batch_round(ms_tkms_batch *b, unsigned round)
{
    if (cheating && round == 2)
        tkms_batch_test_corrupt_h(b, 0);
}

typedef struct job {
    int kind; /* 0 init, 1 batch */
    int cheat;
    ms_tkms_init_params ip;
    ms_tkms_batch_params bp;
    ms_tkms_public pub;
    uint8_t out[32];
    char detail[600];
    ms_err err;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    cheating = j->cheat;
    if (j->kind == 0)
        j->err = ms_tkms_node_init(&j->ip, &j->pub, j->out, j->detail, sizeof j->detail);
    else
        j->err = ms_tkms_node_batch(&j->bp, j->out, j->detail, sizeof j->detail);
    return NULL;
}

/* Runs the jobs of the servers in `mask` on threads. */
static void run_all(job *jobs, uint32_t mask)
{
    pthread_t th[N];
    for (unsigned i = 0; i < N; i++)
        if (mask >> i & 1)
            CHECK(pthread_create(&th[i], NULL, run_job, &jobs[i]) == 0);
    for (unsigned i = 0; i < N; i++)
        if (mask >> i & 1)
            pthread_join(th[i], NULL);
}

static void setup(void)
{
    uint16_t ports[N];
    CHECK(ms_test_free_ports(ports, N));
    FILE *f = fopen(peers, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fputs("mikeysakke-peers 1\nthreshold 1\n", f);
    for (unsigned i = 0; i < N; i++) {
        char url[64], line[MS_TKMS_LINE_MAX], detail[200];
        snprintf(dirs[i], sizeof dirs[i], "%s/s%u", root_dir, i + 1);
        snprintf(url, sizeof url, "https://127.0.0.1:%u", ports[i]);
        CHECK_ERR(ms_tkms_node_keygen(dirs[i], i + 1, url, line, sizeof line, detail,
                                      sizeof detail),
                  MS_OK);
        fputs(line, f);
    }
    fclose(f);
    job jobs[N];
    memset(jobs, 0, sizeof jobs);
    for (unsigned i = 0; i < N; i++)
        jobs[i].ip = (ms_tkms_init_params){.dir = dirs[i], .peers_file = peers,
                                           .passphrase = pass, .passphrase_len = sizeof pass - 1,
                                           .scrypt_log2_n = 10, .timeout_ms = 60000};
    run_all(jobs, 0xf);
    for (unsigned i = 0; i < N; i++) {
        CHECK_ERR(jobs[i].err, MS_OK);
        if (jobs[i].err != MS_OK)
            fprintf(stderr, "init at server %u: %s\n", i + 1, jobs[i].detail);
    }
}

static void batch_jobs(job *jobs, uint32_t live, unsigned timeout_ms)
{
    memset(jobs, 0, N * sizeof *jobs);
    for (unsigned i = 0; i < N; i++) {
        jobs[i].kind = 1;
        jobs[i].bp = (ms_tkms_batch_params){.dir = dirs[i], .peers_file = peers,
                                            .period = "2026-12", .users = users, .count = 3,
                                            .passphrase = pass,
                                            .passphrase_len = sizeof pass - 1,
                                            .timeout_ms = timeout_ms, .live = live};
    }
}

static int exists(unsigned server, const char *name)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dirs[server - 1], name);
    return access(path, F_OK) == 0;
}

/* Server 2 deals a wrong h: caught, named, nothing kept. */
static void cheating_dealer(void)
{
    job jobs[N];
    batch_jobs(jobs, 0, 8000);
    jobs[1].cheat = 1;
    run_all(jobs, 0xf);
    for (unsigned i = 0; i < N; i++) {
        CHECK(jobs[i].err != MS_OK);
        if (i == 1)
            continue;
        CHECK_ERR(jobs[i].err, MS_ERR_THRESHOLD_SHARE);
        CHECK(strstr(jobs[i].detail, "dealer 2") != NULL);
        if (strstr(jobs[i].detail, "dealer 2") == NULL)
            fprintf(stderr, "server %u: %s\n", i + 1, jobs[i].detail);
        CHECK(strstr(jobs[i].detail, "live set") != NULL);
    }
    for (unsigned s = 1; s <= N; s++)
        CHECK(!exists(s, "batch-2026-12.records") && !exists(s, "batch-2026-12.sealed") &&
              !exists(s, "batch-2026-12.root"));
}

/* Writes a share message whose payload was changed by `edit`, signed again by server 1
 * (as a server that lies would sign it). */
static void forged_share(ms_tkms_service *svc, const uint8_t *msg, size_t len, const char *path,
                         void (*edit)(uint8_t *payload, size_t len))
{
    ms_peer_keys keys;
    ms_peer_table_keys(ms_tkms_service_peers(svc), &keys);
    ms_peer_msg_hdr h;
    const uint8_t *payload = NULL;
    size_t pl = 0;
    char detail[300] = "";
    /* the session (the slot id) sits after "MSTM", version, sender, recipient, kind, round */
    CHECK_ERR(ms_peer_msg_open(&keys, msg + 13, 0, NULL, msg, len, &h, &payload, &pl, detail,
                               sizeof detail),
              MS_OK);
    if (payload == NULL)
        return;
    uint8_t *copy = malloc(pl), *out = malloc(pl + MS_PEER_MSG_OVERHEAD);
    memcpy(copy, payload, pl);
    edit(copy, pl);
    size_t ol = 0;
    CHECK_ERR(ms_tkms_service_sign(svc, &h, copy, pl, out, pl + MS_PEER_MSG_OVERHEAD, &ol), MS_OK);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL && fwrite(out, 1, ol, f) == ol);
    if (f != NULL)
        fclose(f);
    free(copy);
    free(out);
}

static size_t record_len(const uint8_t *payload)
{
    return (size_t)payload[0] << 8 | payload[1];
}

static void alter_proof(uint8_t *payload, size_t len)
{
    size_t at = 2 + record_len(payload) + 17; /* the first proof hash */
    CHECK(at < len && payload[at - 1] > 0);
    payload[at + 3] ^= 1;
}

static void spoil_signature(uint8_t *payload, size_t len)
{
    size_t at = 2 + record_len(payload) + 16;
    at += 1 + payload[at] * 32 + 4; /* the number of signatures */
    CHECK(at + 1 + 65 < len && payload[at] == 3);
    payload[at + 1 + 1 + 10] ^= 1; /* the first signature's eleventh octet */
}

static void leave_live_set(uint8_t *payload, size_t len)
{
    size_t at = 2 + record_len(payload) + 16;
    at += 1 + payload[at] * 32 + 3; /* the live set's last octet: servers 1..8 */
    CHECK(at < len);
    payload[at] &= (uint8_t)~1u;
}

/* The batch again with servers 1, 3 and 4; the device and the servers' checks. */
static void live_batch(void)
{
    job jobs[N];
    batch_jobs(jobs, 0xd, 60000);
    run_all(jobs, 0xd);
    for (unsigned i = 0; i < N; i++) {
        if (i == 1)
            continue;
        CHECK_ERR(jobs[i].err, MS_OK);
        if (jobs[i].err != MS_OK)
            fprintf(stderr, "batch at server %u: %s\n", i + 1, jobs[i].detail);
        CHECK(memcmp(jobs[i].out, jobs[0].out, 32) == 0);
    }
    char path[600], detail[400] = "";
    snprintf(path, sizeof path, "%s/batch-2026-12.root", dirs[0]);
    tkms_root r;
    CHECK_ERR(tkms_root_read(path, &r, detail, sizeof detail), MS_OK);
    CHECK(r.live == 0xd && r.have == 0xd && r.count == 3);
    ms_peer_table table;
    CHECK_ERR(ms_peer_table_read(peers, &table, NULL, 0), MS_OK);
    CHECK(tkms_root_valid(&r, &table) == 0xd);

    /* server 2, given the batch's public files, says it did not take part */
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp '%s/batch-2026-12.root' '%s/batch-2026-12.records' '%s/'",
             dirs[0], dirs[0], dirs[1]);
    CHECK(system(cmd) == 0);
    ms_tkms_service *svc2 = NULL;
    CHECK_ERR(ms_tkms_service_open(&svc2, dirs[1], pass, sizeof pass - 1, detail, sizeof detail),
              MS_OK);
    ms_tkms_share share;
    uint8_t rec[MS_TKMS_RECORD_MAX];
    size_t rl = 0;
    if (svc2 != NULL) {
        CHECK_ERR(ms_tkms_service_slot(svc2, "2026-12", users[1], &share, rec, sizeof rec, &rl,
                                       detail, sizeof detail),
                  MS_ERR_THRESHOLD_INACTIVE);
        CHECK(strstr(detail, "server 2 did not take part in the batch of 2026-12") != NULL);
    }
    ms_tkms_service_close(svc2);

    /* the device: shares of 1 and 3 combine */
    uint8_t dsk[32], dpk[32];
    CHECK_ERR(ms_hpke_keygen(dsk, dpk, NULL), MS_OK);
    char files[N][600], pubf[600];
    for (unsigned i = 0; i < N; i++)
        snprintf(files[i], sizeof files[i], "%s/share%u", root_dir, i + 1);
    snprintf(pubf, sizeof pubf, "%s/public.txt", dirs[0]);
    ms_tkms_service *svc1 = NULL;
    CHECK_ERR(ms_tkms_service_open(&svc1, dirs[0], pass, sizeof pass - 1, detail, sizeof detail),
              MS_OK);
    if (svc1 == NULL)
        return;
    uint8_t *msg = NULL;
    size_t ml = 0;
    CHECK_ERR(ms_tkms_service_share_msg(svc1, "2026-12", users[1], dpk, &msg, &ml, detail,
                                        sizeof detail),
              MS_OK);
    FILE *f = fopen(files[0], "wb");
    CHECK(f != NULL && msg != NULL && fwrite(msg, 1, ml, f) == ml);
    if (f != NULL)
        fclose(f);
    CHECK_ERR(ms_tkms_node_share(dirs[2], pass, sizeof pass - 1, "2026-12", users[1], dpk,
                                 files[2], detail, sizeof detail),
              MS_OK);
    uint8_t rsk[MS_SAKKE_POINT_BYTES], ssk[MS_ECCSI_SCALAR_BYTES], pvt[MS_ECCSI_POINT_BYTES];
    unsigned cheater = 9;
    const char *f13[2] = {files[0], files[2]};
    CHECK_ERR(ms_tkms_device_combine(peers, pubf, dsk, "2026-12", users[1], f13, 2, rsk, ssk,
                                     pvt, &cheater, detail, sizeof detail),
              MS_OK);
    CHECK(cheater == 0);

    /* server 1 lying about where its record sits, or about the live set */
    if (msg != NULL) {
        forged_share(svc1, msg, ml, files[3], alter_proof);
        const char *bad[2] = {files[3], files[2]};
        CHECK_ERR(ms_tkms_device_combine(peers, pubf, dsk, "2026-12", users[1], bad, 2, rsk,
                                         ssk, pvt, &cheater, detail, sizeof detail),
                  MS_ERR_THRESHOLD_SHARE);
        CHECK(cheater == 1);
        CHECK(strstr(detail, "the share of server 1: its record is not in a signed root of "
                             "the batch of 2026-12 (0 of the 3 signatures it needs)") != NULL);
        forged_share(svc1, msg, ml, files[3], spoil_signature);
        CHECK_ERR(ms_tkms_device_combine(peers, pubf, dsk, "2026-12", users[1], bad, 2, rsk,
                                         ssk, pvt, &cheater, detail, sizeof detail),
                  MS_ERR_THRESHOLD_SHARE);
        CHECK(cheater == 1);
        CHECK(strstr(detail, "(2 of the 3 signatures it needs)") != NULL);
        forged_share(svc1, msg, ml, files[3], leave_live_set);
        CHECK_ERR(ms_tkms_device_combine(peers, pubf, dsk, "2026-12", users[1], bad, 2, rsk,
                                         ssk, pvt, &cheater, detail, sizeof detail),
                  MS_ERR_THRESHOLD_SHARE);
        CHECK(cheater == 1);
        CHECK(strstr(detail, "server 1 did not take part") != NULL);
    }
    free(msg);
    ms_tkms_service_close(svc1);
}

int main(void)
{
    ms_test_seed();
    if (mkdtemp(root_dir) == NULL) {
        CHECK(0);
        return ms_test_finish();
    }
    snprintf(peers, sizeof peers, "%s/peers.txt", root_dir);
    setup();
    cheating_dealer();
    live_batch();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root_dir);
    CHECK(system(cmd) == 0);
    return ms_test_finish();
}
