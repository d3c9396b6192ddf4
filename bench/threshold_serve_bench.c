/*
 * Threshold issuance as a server runs it (part of ms_threshold_bench): three server
 * directories made by the real ceremony and batch over loopback (src/tkms/node.c, in
 * three threads), then
 *   - share messages per second at one server (ms_tkms_service_share_msg: slot lookup,
 *     HPKE seal to the device, signature), with the batch of the bench and with a batch
 *     of BIG identities (the bench's entries repeated under other identifiers: the same
 *     file sizes and lookups as a real batch of that size);
 *   - full HTTPS round trips per second (a device's signed request to `kms serve`'s
 *     service, a new TLS connection each, as devices make them);
 *   - the device's fetch-side combine + validate of t+1 share messages.
 * Wall-clock times on one thread; the machine may be shared.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "kms/seal.h"
#include "mikeysakke/mikey.h"
#include "net/hpke.h"
#include "net/peer.h"
#include "tkms/enrol.h"
#include "tkms/log.h"
#include "tkms/node.h"
#include "tkms/request.h"
#include "tkms/root.h"
#include "tkms/serve.h"
#include "util/file.h"

int threshold_serve_bench(size_t count, size_t big);

#define N 3
#define PERIOD "2026-12"
#define BIG_PERIOD "2026-11"
static const char pass[] = "bench passphrase";

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct job {
    char dir[512];
    char peers[512];
    const char *const *users;
    size_t count;
    ms_err err;
    char detail[300];
} job;

static void *init_one(void *arg)
{
    job *j = arg;
    ms_tkms_init_params p = {.dir = j->dir, .peers_file = j->peers,
                             .passphrase = (const uint8_t *)pass, .passphrase_len = strlen(pass),
                             .scrypt_log2_n = 10, .timeout_ms = 60000};
    ms_tkms_public pub;
    uint8_t tr[32];
    j->err = ms_tkms_node_init(&p, &pub, tr, j->detail, sizeof j->detail);
    return NULL;
}

static void *batch_one(void *arg)
{
    job *j = arg;
    ms_tkms_batch_params p = {.dir = j->dir, .peers_file = j->peers, .period = PERIOD,
                              .users = j->users, .count = j->count,
                              .passphrase = (const uint8_t *)pass,
                              .passphrase_len = strlen(pass), .timeout_ms = 600000};
    uint8_t digest[32];
    j->err = ms_tkms_node_batch(&p, digest, j->detail, sizeof j->detail);
    return NULL;
}

static int run_all(job *jobs, void *(*fn)(void *))
{
    pthread_t th[N];
    for (int i = 0; i < N; i++)
        pthread_create(&th[i], NULL, fn, &jobs[i]);
    int ok = 1;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].err != MS_OK) {
            fprintf(stderr, "server %d: %s\n", i + 1, jobs[i].detail);
            ok = 0;
        }
    }
    return ok;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = n > 0 ? malloc((size_t)n) : NULL;
    if (b != NULL && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* batch-BIG_PERIOD of `big` identities at dir: the first entry of the bench's batch
 * repeated under identifiers BIG_PERIOD NUL tel:+4477119<i> NUL. */
/* batch-BIG_PERIOD.root: the tree over the synthetic records, signed by every server as
 * their batch would (dirs: the servers' directories). */
static int synth_root(const char *const *dirs, const uint8_t *rp, size_t ro, size_t r0,
                      size_t big, size_t rec_len)
{
    uint8_t(*leaves)[32] = malloc(big * sizeof *leaves), proof[TKMS_PROOF_MAX][32];
    static tkms_root root;
    memset(&root, 0, sizeof root);
    size_t o = r0, plen = 0;
    int ok = leaves != NULL;
    for (size_t i = 0; ok && i < big; i++) {
        size_t l = (size_t)rp[o] << 8 | rp[o + 1];
        ok = o + 2 + l + rec_len <= ro &&
             tkms_merkle_leaf(leaves[i], rp + o + 2 + l, rec_len) == MS_OK;
        o += 2 + l + rec_len;
    }
    ok = ok && tkms_merkle_root(root.root, (const uint8_t(*)[32])leaves, big, 0, proof, &plen) ==
                   MS_OK;
    snprintf(root.period, sizeof root.period, "%s", BIG_PERIOD);
    root.count = big;
    root.live = (1u << N) - 1;
    for (int j = 0; ok && j < N; j++) {
        char path[700];
        uint8_t seed[MS_PEER_KEY_BYTES];
        snprintf(path, sizeof path, "%s/sign.key", dirs[j]);
        ok = ms_peer_key_read(path, seed, NULL, 0) == MS_OK &&
             tkms_root_sign(seed, &root, root.sig[j]) == MS_OK;
        root.have |= 1u << j;
        OPENSSL_cleanse(seed, sizeof seed);
    }
    char path[700];
    snprintf(path, sizeof path, "%s/batch-%s.root", dirs[0], BIG_PERIOD);
    ok = ok && tkms_root_write(path, &root, NULL, 0) == MS_OK;
    free(leaves);
    return ok;
}

static int synth_batch(const char *const *dirs, size_t big)
{
    const char *dir = dirs[0];
    char path[700];
    snprintf(path, sizeof path, "%s/secrets.sealed", dir);
    ms_unseal *u = NULL;
    ms_kms_secrets *sec = NULL;
    if (ms_unseal_open(&u, path, NULL, 0) != MS_OK ||
        ms_unseal_passphrase(u, &sec, (const uint8_t *)pass, strlen(pass)) != MS_OK)
        return 0;
    ms_unseal_free(u);
    static const char shdr[] = "mikeysakke-tkms-shares 1\n", rhdr[] = "mikeysakke-tkms-records 1\n";
    size_t sl = 0, rl = 0, h = sizeof shdr - 1;
    snprintf(path, sizeof path, "%s/batch-%s.sealed", dir, PERIOD);
    uint8_t *sealed = slurp(path, &sl);
    snprintf(path, sizeof path, "%s/batch-%s.records", dir, PERIOD);
    uint8_t *records = slurp(path, &rl);
    uint8_t *plain = sealed != NULL ? malloc(sl) : NULL;
    size_t pl = 0;
    if (records == NULL || plain == NULL ||
        ms_tkms_batch_crypt(0, sec->store_key, PERIOD, sealed + h, sl - h, plain, &pl) != MS_OK)
        return 0;
    size_t l0 = (size_t)plain[0] << 8 | plain[1];
    const uint8_t *share = plain + 2 + l0;
    size_t share_len = MS_SAKKE_SECRET_BYTES + MS_ECCSI_SCALAR_BYTES;
    size_t r0 = sizeof rhdr - 1, rid = (size_t)records[r0] << 8 | records[r0 + 1];
    ms_tkms_record rec;
    size_t rec_len = 0;
    if (ms_tkms_record_decode(&rec, records + r0 + 2 + rid, rl - r0 - 2 - rid, &rec_len) != MS_OK)
        return 0;
    const uint8_t *record = records + r0 + 2 + rid;
    size_t id_max = 40;
    uint8_t *sp = malloc(big * (2 + id_max + share_len)), *rp = malloc(r0 + big * (2 + id_max + rec_len));
    uint8_t *out = malloc(h + 28 + big * (2 + id_max + share_len));
    if (sp == NULL || rp == NULL || out == NULL)
        return 0;
    size_t so = 0, ro = r0;
    memcpy(rp, rhdr, r0);
    for (size_t i = 0; i < big; i++) {
        char id[64];
        int n = snprintf(id, sizeof id, "%s%ctel:+4477119%07zu", BIG_PERIOD, 0, i) + 1;
        sp[so] = (uint8_t)(n >> 8);
        sp[so + 1] = (uint8_t)n;
        memcpy(sp + so + 2, id, (size_t)n);
        memcpy(sp + so + 2 + n, share, share_len);
        so += 2 + (size_t)n + share_len;
        rp[ro] = (uint8_t)(n >> 8);
        rp[ro + 1] = (uint8_t)n;
        memcpy(rp + ro + 2, id, (size_t)n);
        memcpy(rp + ro + 2 + n, record, rec_len);
        ro += 2 + (size_t)n + rec_len;
    }
    memcpy(out, shdr, h);
    size_t ol = 0;
    int ok = ms_tkms_batch_crypt(1, sec->store_key, BIG_PERIOD, sp, so, out + h, &ol) == MS_OK;
    snprintf(path, sizeof path, "%s/batch-%s.sealed", dir, BIG_PERIOD);
    ok = ok && ms_file_write_atomic(path, out, h + 28 + so, 0600, MS_FILE_REPLACE, NULL, 0) == MS_OK;
    snprintf(path, sizeof path, "%s/batch-%s.records", dir, BIG_PERIOD);
    ok = ok && ms_file_write_atomic(path, rp, ro, 0644, MS_FILE_REPLACE, NULL, 0) == MS_OK;
    ok = ok && synth_root(dirs, rp, ro, r0, big, rec_len);
    ms_kms_secrets_free(sec);
    free(sealed);
    free(records);
    if (plain != NULL)
        OPENSSL_cleanse(plain, pl);
    if (sp != NULL)
        OPENSSL_cleanse(sp, so);
    free(plain);
    free(sp);
    free(rp);
    free(out);
    return ok;
}

/* share messages per second for identities `uri(i)` of period, i spread over count */
static double share_rate(ms_tkms_service *s, const char *period, const char *prefix,
                         int digits, size_t count, const uint8_t dev[32], int reps,
                         double *first)
{
    double t0 = wall();
    for (int k = -1; k < reps; k++) {
        if (k == 0) { /* the first call opens the batch: timed apart */
            *first = wall() - t0;
            t0 = wall();
        }
        char uri[64];
        snprintf(uri, sizeof uri, "%s%0*zu", prefix, digits, (size_t)(k + 1) * 7919 % count);
        uint8_t *msg = NULL;
        size_t ml = 0;
        char d[300] = "";
        if (ms_tkms_service_share_msg(s, period, uri, dev, &msg, &ml, d, sizeof d) != MS_OK) {
            fprintf(stderr, "share %s: %s\n", uri, d);
            return -1;
        }
        free(msg);
    }
    return reps / (wall() - t0);
}

int threshold_serve_bench(size_t count, size_t big)
{
    char base[] = "/tmp/ms-tkms-bench-XXXXXX";
    if (mkdtemp(base) == NULL)
        return 1;
    job jobs[N];
    memset(jobs, 0, sizeof jobs);
    char peers[512], lines[N][MS_TKMS_LINE_MAX];
    snprintf(peers, sizeof peers, "%s/peers.txt", base);
    int socks[N];
    for (int i = 0; i < N; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof a;
        socks[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (socks[i] < 0 || bind(socks[i], (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(socks[i], (struct sockaddr *)&a, &al) != 0)
            return 1;
        char url[64];
        snprintf(url, sizeof url, "https://127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
        snprintf(jobs[i].dir, sizeof jobs[i].dir, "%s/s%d", base, i + 1);
        snprintf(jobs[i].peers, sizeof jobs[i].peers, "%s", peers);
        if (ms_tkms_node_keygen(jobs[i].dir, (unsigned)i + 1, url, lines[i], sizeof lines[i],
                                NULL, 0) != MS_OK)
            return 1;
    }
    for (int i = 0; i < N; i++)
        close(socks[i]);
    FILE *f = fopen(peers, "w");
    if (f == NULL)
        return 1;
    fprintf(f, "mikeysakke-peers 1\nthreshold 1\n");
    for (int i = 0; i < N; i++)
        fputs(lines[i], f);
    fclose(f);
    if (!run_all(jobs, init_one))
        return 1;
    char (*names)[40] = malloc(count * sizeof *names);
    const char **users = malloc(count * sizeof *users);
    if (names == NULL || users == NULL)
        return 1;
    for (size_t i = 0; i < count; i++) {
        snprintf(names[i], sizeof names[i], "tel:+4477009%05zu", i);
        users[i] = names[i];
    }
    for (int i = 0; i < N; i++) {
        jobs[i].users = users;
        jobs[i].count = count;
    }
    const char *dirs[N];
    for (int i = 0; i < N; i++)
        dirs[i] = jobs[i].dir;
    if (!run_all(jobs, batch_one) || !synth_batch(dirs, big))
        return 1;

    ms_tkms_service *s1 = NULL, *s2 = NULL;
    uint8_t dsk[32], dpk[32];
    if (ms_tkms_service_open(&s1, jobs[0].dir, (const uint8_t *)pass, strlen(pass), NULL, 0) !=
            MS_OK ||
        ms_tkms_service_open(&s2, jobs[1].dir, (const uint8_t *)pass, strlen(pass), NULL, 0) !=
            MS_OK ||
        ms_hpke_keygen(dsk, dpk, NULL) != MS_OK)
        return 1;
    double open_small = 0, open_large = 0;
    double small = share_rate(s1, PERIOD, "tel:+4477009", 5, count, dpk, 500, &open_small);
    double large = share_rate(s1, BIG_PERIOD, "tel:+4477119", 7, big, dpk, 500, &open_large);
    if (small < 0 || large < 0)
        return 1;
    printf("(3,1) issuance at one server (share message: slot, HPKE seal, signature): "
           "%.0f/s with %zu identities, %.0f/s with %zu (the batch opened once at the first "
           "request: %.0f ms)\n", small, count, large, big, open_large * 1e3);

    /* the device: t+1 share messages combined and validated */
    char pf[600], pubf[600];
    snprintf(pf, sizeof pf, "%s/peers.txt", jobs[0].dir);
    snprintf(pubf, sizeof pubf, "%s/public.txt", jobs[0].dir);
    const int reps = 20;
    double comb = 0;
    for (int k = 0; k < reps; k++) {
        const char *uri = users[(size_t)k % count];
        uint8_t *m[2] = {NULL, NULL};
        size_t ml[2] = {0, 0};
        if (ms_tkms_service_share_msg(s1, PERIOD, uri, dpk, &m[0], &ml[0], NULL, 0) != MS_OK ||
            ms_tkms_service_share_msg(s2, PERIOD, uri, dpk, &m[1], &ml[1], NULL, 0) != MS_OK)
            return 1;
        const uint8_t *mp[2] = {m[0], m[1]};
        const char *nm[2] = {"server 1", "server 2"};
        uint8_t rsk[MS_SAKKE_POINT_BYTES], ssk[MS_ECCSI_SCALAR_BYTES], pvt[MS_ECCSI_POINT_BYTES];
        unsigned cheater = 0;
        double t0 = wall();
        if (ms_tkms_device_combine_msgs(pf, pubf, dsk, PERIOD, uri, mp, ml, nm, 2, rsk, ssk, pvt,
                                        &cheater, NULL, 0) != MS_OK)
            return 1;
        comb += wall() - t0;
        free(m[0]);
        free(m[1]);
    }
    printf("(3,1) device: open, combine and validate 2 share messages: %.1f ms\n",
           comb * 1e3 / reps);

    /* HTTPS: an enrolled device's signed requests to server 1 */
    ms_audit *log = NULL;
    ms_tkms_device dev;
    memset(&dev, 0, sizeof dev);
    snprintf(dev.user, sizeof dev.user, "%s", users[0]);
    snprintf(dev.device_id, sizeof dev.device_id, "bench-phone");
    memcpy(dev.hpke_pub, dpk, 32);
    uint8_t seed[32];
    ms_tkms_server *srv = NULL;
    ms_tkms_serve_config sc = {.port = 0, .rate_per_sec = 1e6, .rate_burst = 1e6,
                               .device_rate = 1e6, .device_burst = 1e6};
    if (ms_peer_keygen(seed, dev.sign_pub, NULL) != MS_OK ||
        ms_tkms_log_open(&log, jobs[0].dir, NULL, 0) != MS_OK ||
        ms_tkms_enrol(jobs[0].dir, log, &dev, NULL, 0) != MS_OK ||
        ms_tkms_serve_start(&srv, s1, &sc) != MS_OK)
        return 1;
    ms_audit_close(log);
    const ms_peer_table *t = ms_tkms_service_peers(s1);
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%u", (unsigned)ms_tkms_serve_port(srv));
    ms_peer_link link = {.url = url, .timeout_ms = 10000};
    memcpy(link.pin, t->server[0].tls_pin, 32);
    const int trips = 100;
    double t0 = wall();
    for (int k = 0; k < trips; k++) {
        ms_tkms_request r;
        memset(&r, 0, sizeof r);
        r.server = 1;
        r.time = ms_ntp_now() >> 32;
        RAND_bytes(r.nonce, sizeof r.nonce);
        snprintf(r.period, sizeof r.period, "%s", PERIOD);
        snprintf(r.device_id, sizeof r.device_id, "bench-phone");
        snprintf(r.user, sizeof r.user, "%s", users[0]);
        uint8_t body[MS_TKMS_REQ_MAX];
        size_t bl = 0;
        ms_peer_response resp;
        if (ms_tkms_request_sign(&r, seed, body, sizeof body, &bl) != MS_OK ||
            ms_peer_post(&link, MS_TKMS_KEYPROV_PATH, body, bl, &resp, NULL, 0) != MS_OK)
            return 1;
        ms_peer_response_free(&resp);
    }
    printf("(3,1) HTTPS round trips (new TLS connection, signed request, logged share): "
           "%.0f/s from one client\n", trips / (wall() - t0));
    ms_tkms_serve_stop(srv);
    ms_tkms_service_close(s1);
    ms_tkms_service_close(s2);
    free(names);
    free(users);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : 1;
}
