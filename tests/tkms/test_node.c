/*
 * The threshold-KMS operation layer (src/tkms/node.c) in one process: three servers' keys
 * (files, modes, table lines), the key-generation ceremony run by three threads over
 * loopback TLS, the same public result everywhere, public.txt read back, and the sealed
 * shares unsealed and restored into a protocol server (a share not behind the public key
 * share is refused). Refusals: keygen twice, a bad URL, init twice, a table whose keys
 * are not this server's.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kms/seal.h"
#include "net/hpke.h"
#include "net/peer_table.h"
#include "testutil.h"
#include "threshold/tkms_internal.h"
#include "tkms/node.h"

#define N 3

static char root[] = "/tmp/ms_tkms_node_XXXXXX";
static char dirs[N][256];
static const uint8_t pass[] = "node test passphrase";

typedef struct run {
    ms_tkms_init_params p;
    ms_tkms_public pub;
    uint8_t transcript[32];
    char detail[400];
    ms_err err;
} run;

static void *run_init(void *arg)
{
    run *r = arg;
    r->err = ms_tkms_node_init(&r->p, &r->pub, r->transcript, r->detail, sizeof r->detail);
    return NULL;
}

static void write_table(const char *path, char lines[N][MS_TKMS_LINE_MAX])
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fputs("mikeysakke-peers 1\nthreshold 1\n", f);
    for (unsigned i = 0; i < N; i++)
        fputs(lines[i], f);
    fclose(f);
}

static void keygen(char lines[N][MS_TKMS_LINE_MAX])
{
    uint16_t ports[N];
    CHECK(ms_test_free_ports(ports, N));
    for (unsigned i = 0; i < N; i++) {
        char url[64], detail[200];
        snprintf(dirs[i], sizeof dirs[i], "%s/s%u", root, i + 1);
        snprintf(url, sizeof url, "https://127.0.0.1:%u", ports[i]);
        CHECK_ERR(ms_tkms_node_keygen(dirs[i], i + 1, url, lines[i], MS_TKMS_LINE_MAX, detail,
                                      sizeof detail),
                  MS_OK);
        char want[80];
        snprintf(want, sizeof want, "server %u %s sign=", i + 1, url);
        CHECK(strncmp(lines[i], want, strlen(want)) == 0);
    }
    struct stat st;
    char path[1024];
    snprintf(path, sizeof path, "%s/hpke.key", dirs[0]);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    snprintf(path, sizeof path, "%s/sign.key", dirs[0]);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    snprintf(path, sizeof path, "%s/tls.key", dirs[0]);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    char line[MS_TKMS_LINE_MAX], detail[200];
    CHECK_ERR(ms_tkms_node_keygen(dirs[0], 1, "https://127.0.0.1:1", line, sizeof line, detail,
                                  sizeof detail),
              MS_ERR_EXISTS);
    snprintf(path, sizeof path, "%s/other", root);
    CHECK_ERR(ms_tkms_node_keygen(path, 1, "http://127.0.0.1:1", line, sizeof line, detail,
                                  sizeof detail),
              MS_ERR_ARG);
    CHECK_ERR(ms_tkms_node_keygen(path, 0, "https://127.0.0.1:1", line, sizeof line, detail,
                                  sizeof detail),
              MS_ERR_ARG);
}

static void ceremony(const char *peers)
{
    run r[N];
    pthread_t th[N];
    memset(r, 0, sizeof r);
    for (unsigned i = 0; i < N; i++) {
        r[i].p.dir = dirs[i];
        r[i].p.peers_file = peers;
        r[i].p.passphrase = pass;
        r[i].p.passphrase_len = sizeof pass - 1;
        r[i].p.scrypt_log2_n = 10;
        r[i].p.timeout_ms = 60000;
        CHECK(pthread_create(&th[i], NULL, run_init, &r[i]) == 0);
    }
    for (unsigned i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (unsigned i = 0; i < N; i++) {
        CHECK_ERR(r[i].err, MS_OK);
        if (r[i].err != MS_OK)
            fprintf(stderr, "server %u: %s\n", i + 1, r[i].detail);
    }
    for (unsigned i = 1; i < N; i++) {
        CHECK(memcmp(r[i].pub.Z, r[0].pub.Z, sizeof r[0].pub.Z) == 0);
        CHECK(memcmp(r[i].pub.kpak, r[0].pub.kpak, sizeof r[0].pub.kpak) == 0);
        CHECK(memcmp(r[i].pub.Zj, r[0].pub.Zj, sizeof r[0].pub.Zj) == 0);
        CHECK(memcmp(r[i].transcript, r[0].transcript, 32) == 0);
    }
    CHECK(r[0].pub.qual == 7);
    char fp0[17], fp1[17];
    ms_tkms_fingerprint(&r[0].pub, fp0);
    ms_tkms_fingerprint(&r[1].pub, fp1);
    CHECK(strlen(fp0) == 16 && strcmp(fp0, fp1) == 0);

    /* public.txt reads back as the result */
    for (unsigned i = 0; i < N; i++) {
        ms_tkms_public pub;
        unsigned idx = 0;
        uint8_t tr[32];
        char path[1024], detail[200];
        snprintf(path, sizeof path, "%s/public.txt", dirs[i]);
        CHECK_ERR(ms_tkms_public_read(path, &pub, &idx, tr, detail, sizeof detail), MS_OK);
        CHECK(idx == i + 1 && pub.n == 3 && pub.t == 1 && pub.qual == 7);
        CHECK(memcmp(pub.Z, r[0].pub.Z, sizeof pub.Z) == 0 &&
              memcmp(pub.kpakj, r[0].pub.kpakj, sizeof pub.kpakj) == 0 &&
              memcmp(tr, r[0].transcript, 32) == 0);
    }

    /* the sealed shares: unsealed, restored, checked against the key shares */
    for (unsigned i = 0; i < N; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/secrets.sealed", dirs[i]);
        ms_unseal *u = NULL;
        ms_kms_secrets *sec = NULL;
        CHECK_ERR(ms_unseal_open(&u, path, NULL, 0), MS_OK);
        CHECK_ERR(ms_unseal_passphrase(u, &sec, (const uint8_t *)"wrong", 5), MS_ERR_PASSPHRASE);
        CHECK_ERR(ms_unseal_passphrase(u, &sec, pass, sizeof pass - 1), MS_OK);
        ms_unseal_free(u);
        if (sec == NULL)
            continue;
        ms_tkms_server *s = NULL;
        CHECK_ERR(ms_tkms_server_new(&s, 3, 1, i + 1, NULL), MS_OK);
        sec->gen[0].z[127] ^= 1;
        CHECK_ERR(tkms_server_restore(s, &r[0].pub, sec->gen[0].z, sec->gen[0].ksak),
                  MS_ERR_INVALID);
        sec->gen[0].z[127] ^= 1;
        CHECK_ERR(tkms_server_restore(s, &r[0].pub, sec->gen[0].z, sec->gen[0].ksak), MS_OK);
        ms_tkms_public pub;
        CHECK_ERR(ms_tkms_server_public(s, &pub), MS_OK);
        CHECK(memcmp(pub.kpak, r[0].pub.kpak, sizeof pub.kpak) == 0);
        ms_tkms_server_free(s);
        ms_kms_secrets_free(sec);
    }

    /* a second ceremony in the same directory */
    run again = r[0];
    CHECK_ERR(ms_tkms_node_init(&again.p, &again.pub, again.transcript, again.detail,
                                sizeof again.detail),
              MS_ERR_EXISTS);
}

typedef struct brun {
    ms_tkms_batch_params p;
    uint8_t digest[32];
    char detail[400];
    ms_err err;
} brun;

static void *run_batch(void *arg)
{
    brun *r = arg;
    r->err = ms_tkms_node_batch(&r->p, r->digest, r->detail, sizeof r->detail);
    return NULL;
}

/* The batch of two users in three threads, then issuance and the device. */
static void batch_and_issue(const char *peers)
{
    static const char *const users[] = {"tel:+447700900123", "sip:alice@org.example"};
    brun r[N];
    pthread_t th[N];
    memset(r, 0, sizeof r);
    for (unsigned i = 0; i < N; i++) {
        r[i].p = (ms_tkms_batch_params){.dir = dirs[i], .peers_file = peers, .period = "2026-12",
                                        .users = users, .count = 2, .passphrase = pass,
                                        .passphrase_len = sizeof pass - 1, .timeout_ms = 60000};
        CHECK(pthread_create(&th[i], NULL, run_batch, &r[i]) == 0);
    }
    for (unsigned i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (unsigned i = 0; i < N; i++) {
        CHECK_ERR(r[i].err, MS_OK);
        if (r[i].err != MS_OK)
            fprintf(stderr, "batch at server %u: %s\n", i + 1, r[i].detail);
        CHECK(memcmp(r[i].digest, r[0].digest, 32) == 0);
    }
    /* a period that is not a file name part */
    brun bad = r[0];
    bad.p.period = "../x";
    CHECK_ERR(ms_tkms_node_batch(&bad.p, bad.digest, bad.detail, sizeof bad.detail), MS_ERR_ARG);

    uint8_t dsk[32], dpk[32];
    CHECK_ERR(ms_hpke_keygen(dsk, dpk, NULL), MS_OK);
    char files[N][1024];
    char detail[400] = "";
    for (unsigned i = 0; i < N; i++) {
        snprintf(files[i], sizeof files[i], "%s/share%u", root, i + 1);
        CHECK_ERR(ms_tkms_node_share(dirs[i], pass, sizeof pass - 1, "2026-12", users[1], dpk,
                                     files[i], detail, sizeof detail),
                  MS_OK);
    }
    CHECK_ERR(ms_tkms_node_share(dirs[0], pass, sizeof pass - 1, "2026-12", "tel:+1", dpk,
                                 files[0], detail, sizeof detail),
              MS_ERR_IDENTITY);
    CHECK_ERR(ms_tkms_node_share(dirs[0], pass, sizeof pass - 1, "2027-01", users[1], dpk,
                                 files[0], detail, sizeof detail),
              MS_ERR_IO);
    char pubf[1024];
    snprintf(pubf, sizeof pubf, "%s/public.txt", dirs[0]);
    uint8_t rsk[3][MS_SAKKE_POINT_BYTES], ssk[3][MS_ECCSI_SCALAR_BYTES],
        pvt[3][MS_ECCSI_POINT_BYTES];
    static const unsigned pairs[3][2] = {{0, 1}, {0, 2}, {1, 2}};
    unsigned cheater = 9;
    for (unsigned k = 0; k < 3; k++) {
        const char *f[2] = {files[pairs[k][0]], files[pairs[k][1]]};
        CHECK_ERR(ms_tkms_device_combine(peers, pubf, dsk, "2026-12", users[1], f, 2, rsk[k],
                                         ssk[k], pvt[k], &cheater, detail, sizeof detail),
                  MS_OK);
        CHECK(cheater == 0);
        CHECK(memcmp(rsk[k], rsk[0], sizeof rsk[0]) == 0 &&
              memcmp(ssk[k], ssk[0], sizeof ssk[0]) == 0 &&
              memcmp(pvt[k], pvt[0], sizeof pvt[0]) == 0);
    }
    /* another device's key, another user: refused */
    const char *f12[2] = {files[0], files[1]};
    uint8_t other_sk[32], other_pk[32];
    CHECK_ERR(ms_hpke_keygen(other_sk, other_pk, NULL), MS_OK);
    CHECK_ERR(ms_tkms_device_combine(peers, pubf, other_sk, "2026-12", users[1], f12, 2, rsk[1],
                                     ssk[1], pvt[1], &cheater, detail, sizeof detail),
              MS_ERR_THRESHOLD_SHARE);
    CHECK(cheater == 1);
    CHECK_ERR(ms_tkms_device_combine(peers, pubf, dsk, "2026-12", users[0], f12, 2, rsk[1],
                                     ssk[1], pvt[1], &cheater, detail, sizeof detail),
              MS_ERR_THRESHOLD_SHARE);
    /* a share altered on its way names its server */
    FILE *fp = fopen(files[1], "r+b");
    CHECK(fp != NULL);
    if (fp != NULL) {
        fseek(fp, 300, SEEK_SET);
        int c = fgetc(fp);
        fseek(fp, 300, SEEK_SET);
        fputc(c ^ 1, fp);
        fclose(fp);
    }
    CHECK_ERR(ms_tkms_device_combine(peers, pubf, dsk, "2026-12", users[1], f12, 2, rsk[1],
                                     ssk[1], pvt[1], &cheater, detail, sizeof detail),
              MS_ERR_THRESHOLD_SHARE);
    CHECK(cheater == 2);
    CHECK(strstr(detail, "server 2") != NULL);
}

int main(void)
{
    ms_test_seed();
    if (mkdtemp(root) == NULL) {
        CHECK(0);
        return ms_test_finish();
    }
    char lines[N][MS_TKMS_LINE_MAX];
    keygen(lines);
    char peers[512], swapped[512];
    snprintf(peers, sizeof peers, "%s/peers.txt", root);
    write_table(peers, lines);
    ms_peer_table t;
    CHECK_ERR(ms_peer_table_read(peers, &t, NULL, 0), MS_OK);

    /* a table that gives server 1 server 2's keys: refused before any network */
    char bad[N][MS_TKMS_LINE_MAX];
    memcpy(bad, lines, sizeof bad);
    char *hex = strstr(bad[0], "sign=") + 5;
    hex[0] = hex[0] == '0' ? '1' : '0';
    snprintf(swapped, sizeof swapped, "%s/bad.txt", root);
    write_table(swapped, bad);
    ms_tkms_init_params p = {.dir = dirs[0], .peers_file = swapped, .passphrase = pass,
                             .passphrase_len = sizeof pass - 1, .timeout_ms = 1000};
    ms_tkms_public pub;
    uint8_t tr[32];
    char detail[300] = "";
    CHECK_ERR(ms_tkms_node_init(&p, &pub, tr, detail, sizeof detail), MS_ERR_CONFIG);
    CHECK(strstr(detail, "message key of server 1") != NULL);

    ceremony(peers);
    batch_and_issue(peers);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
    return ms_test_finish();
}
