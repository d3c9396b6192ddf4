/*
 * Audited extraction at a threshold KMS (src/tkms/audit.[ch], warrant.c, audit_client.c),
 * in one process but over the network: three servers made by the real ceremony and batch
 * (threads over loopback TLS, as tests/tkms/test_node.c), each then serving its audit
 * routes on its own HTTPS server (ms_http_start with its certificate, the handler calling
 * ms_tkms_audit_handle) at the address of the peers table; the auditor's client pins them.
 *
 * Checked: warrants (signatures by authority and approver, altered, unknown key,
 * expired); an extraction without a logged warrant refused by every server; a warrant
 * logged by one server only refused (duplicated evidence counts once); wrong user or
 * period; expired at the time of extraction; with a proper warrant t+1 servers each wrote
 * an "extract" entry, the answer carries u_j only (never SSK_j), the combined RSK is the
 * device's; a server whose audit log is read-only releases nothing; the logs verify;
 * a server set up with other warrant keys counts nowhere else; the warrant log survives a
 * reopen and a tampered one is refused.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kms/audit.h"
#include "kms/roles.h"
#include "net/hpke.h"
#include "net/peer.h"
#include "net/peer_msg.h"
#include "net/peer_table.h"
#include "testutil.h"
#include "tkms/audit.h"
#include "tkms/audit_wire.h"
#include "tkms/node.h"

#define N 3
#define PERIOD "2026-12"

static char root[] = "/tmp/ms_tkms_audit_XXXXXX";
static char dirs[N][256];
static char peers[512], pubf[512];
static const uint8_t pass[] = "audit test passphrase";
static const char *const users[] = {"tel:+447700900123", "sip:alice@org.example"};

static ms_tkms_service *svc[N];
static ms_tkms_audit *aud[N];
static ms_http_server *srv[N];

/* ---- set-up: keys, ceremony, batch ---------------------------------------------------- */

typedef struct run {
    ms_tkms_init_params p;
    ms_tkms_batch_params b;
    ms_tkms_public pub;
    uint8_t digest[32];
    char detail[400];
    ms_err err;
} run;

static void *run_init(void *arg)
{
    run *r = arg;
    r->err = ms_tkms_node_init(&r->p, &r->pub, r->digest, r->detail, sizeof r->detail);
    return NULL;
}

static void *run_batch(void *arg)
{
    run *r = arg;
    r->err = ms_tkms_node_batch(&r->b, r->digest, r->detail, sizeof r->detail);
    return NULL;
}

static int make_servers(uint16_t ports[N])
{
    char lines[N][MS_TKMS_LINE_MAX];
    CHECK(ms_test_free_ports(ports, N));
    for (unsigned i = 0; i < N; i++) {
        char url[64], detail[200];
        snprintf(dirs[i], sizeof dirs[i], "%s/s%u", root, i + 1);
        snprintf(url, sizeof url, "https://127.0.0.1:%u", ports[i]);
        CHECK_ERR(ms_tkms_node_keygen(dirs[i], i + 1, url, lines[i], MS_TKMS_LINE_MAX, detail,
                                      sizeof detail),
                  MS_OK);
    }
    snprintf(peers, sizeof peers, "%s/peers.txt", root);
    FILE *f = fopen(peers, "w");
    if (f == NULL)
        return 0;
    fputs("mikeysakke-peers 1\nthreshold 1\n", f);
    for (unsigned i = 0; i < N; i++)
        fputs(lines[i], f);
    fclose(f);
    run r[N];
    pthread_t th[N];
    memset(r, 0, sizeof r);
    for (unsigned i = 0; i < N; i++) {
        r[i].p = (ms_tkms_init_params){.dir = dirs[i], .peers_file = peers, .passphrase = pass,
                                       .passphrase_len = sizeof pass - 1, .scrypt_log2_n = 10,
                                       .timeout_ms = 60000};
        CHECK(pthread_create(&th[i], NULL, run_init, &r[i]) == 0);
    }
    for (unsigned i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (unsigned i = 0; i < N; i++) {
        CHECK_ERR(r[i].err, MS_OK);
        if (r[i].err != MS_OK) {
            fprintf(stderr, "init at server %u: %s\n", i + 1, r[i].detail);
            return 0;
        }
    }
    for (unsigned i = 0; i < N; i++) {
        r[i].b = (ms_tkms_batch_params){.dir = dirs[i], .peers_file = peers, .period = PERIOD,
                                        .users = users, .count = 2, .passphrase = pass,
                                        .passphrase_len = sizeof pass - 1, .timeout_ms = 60000};
        CHECK(pthread_create(&th[i], NULL, run_batch, &r[i]) == 0);
    }
    for (unsigned i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (unsigned i = 0; i < N; i++) {
        CHECK_ERR(r[i].err, MS_OK);
        if (r[i].err != MS_OK) {
            fprintf(stderr, "batch at server %u: %s\n", i + 1, r[i].detail);
            return 0;
        }
    }
    snprintf(pubf, sizeof pubf, "%s/public.txt", dirs[0]);
    return 1;
}

static void handler(void *ctx, const ms_http_request *req, ms_http_response *resp)
{
    if (!ms_tkms_audit_handle(ctx, req, resp)) {
        resp->status = 404;
        resp->content_type = "text/plain";
    }
}

static int serve(unsigned i, uint16_t port)
{
    char detail[300] = "", cert[300], key[300];
    CHECK_ERR(ms_tkms_service_open(&svc[i], dirs[i], pass, sizeof pass - 1, detail,
                                   sizeof detail),
              MS_OK);
    if (svc[i] == NULL)
        return 0;
    CHECK_ERR(ms_tkms_audit_open(&aud[i], svc[i], detail, sizeof detail), MS_OK);
    if (aud[i] == NULL) {
        fprintf(stderr, "audit open: %s\n", detail);
        return 0;
    }
    snprintf(cert, sizeof cert, "%s/tls.crt", dirs[i]);
    snprintf(key, sizeof key, "%s/tls.key", dirs[i]);
    ms_http_config cfg = {.bind_addr = "127.0.0.1", .port = port, .cert_file = cert,
                          .key_file = key, .max_body = 1 << 20, .detail = detail,
                          .detail_cap = sizeof detail};
    CHECK_ERR(ms_http_start(&srv[i], &cfg, handler, NULL, NULL, aud[i]), MS_OK);
    if (srv[i] == NULL)
        fprintf(stderr, "server %u: %s\n", i + 1, detail);
    return srv[i] != NULL;
}

static void stop(unsigned i)
{
    ms_http_stop(srv[i]);
    ms_tkms_audit_close(aud[i]);
    ms_tkms_service_close(svc[i]);
    srv[i] = NULL;
    aud[i] = NULL;
    svc[i] = NULL;
}

/* ---- role keys and warrants ------------------------------------------------------------ */

static uint8_t auth_seed[32], auth_pub[32], appr_seed[32], appr_pub[32], other_seed[32],
    other_pub[32];
static uint8_t auditor_sk[32], auditor_pk[32];

/* A warrant for user/period signed by the keys given (NULL: not by that one). */
static size_t warrant(char *out, size_t cap, const char *user, const char *period,
                      int64_t expires_in, const uint8_t *seed1, const uint8_t *seed2)
{
    size_t len = 0;
    char detail[200] = "";
    CHECK_ERR(ms_tkms_warrant_make(out, cap, &len, user, period, auditor_pk,
                                   (uint64_t)((int64_t)time(NULL) + expires_in),
                                   "warrant 2026/118", detail, sizeof detail),
              MS_OK);
    const uint8_t *seeds[2] = {seed1, seed2};
    for (unsigned k = 0; k < 2; k++) {
        if (seeds[k] == NULL)
            continue;
        char line[MS_APPROVAL_TEXT_MAX];
        CHECK_ERR(ms_tkms_warrant_sign(seeds[k], out, len, line, sizeof line, detail,
                                       sizeof detail),
                  MS_OK);
        size_t ll = strlen(line);
        if (len + ll < cap) {
            memcpy(out + len, line, ll + 1);
            len += ll;
        }
    }
    return len;
}

static void warrant_checks(void)
{
    ms_tkms_audit_roles roles = {.n_approvers = 1};
    memcpy(roles.authority, auth_pub, 32);
    memcpy(roles.approver[0], appr_pub, 32);
    char w[MS_TKMS_WARRANT_MAX], detail[300];
    ms_tkms_warrant pw;
    uint64_t now = (uint64_t)time(NULL);

    size_t len = warrant(w, sizeof w, users[0], PERIOD, 3600, auth_seed, appr_seed);
    CHECK_ERR(ms_tkms_warrant_parse(w, len, &pw, detail, sizeof detail), MS_OK);
    CHECK(strcmp(pw.user, users[0]) == 0 && strcmp(pw.period, PERIOD) == 0 && pw.n_sigs == 2 &&
          memcmp(pw.auditor_pub, auditor_pk, 32) == 0 && strlen(pw.nonce) == 32);
    CHECK_ERR(ms_tkms_warrant_check(&pw, w, &roles, now, detail, sizeof detail), MS_OK);
    /* expired */
    CHECK_ERR(ms_tkms_warrant_check(&pw, w, &roles, pw.expires, detail, sizeof detail),
              MS_ERR_REQUEST_STALE);
    /* the authority alone, the approver alone */
    len = warrant(w, sizeof w, users[0], PERIOD, 3600, auth_seed, NULL);
    CHECK_ERR(ms_tkms_warrant_parse(w, len, &pw, detail, sizeof detail), MS_OK);
    CHECK_ERR(ms_tkms_warrant_check(&pw, w, &roles, now, detail, sizeof detail),
              MS_ERR_APPROVAL);
    CHECK(strstr(detail, "second approver") != NULL);
    len = warrant(w, sizeof w, users[0], PERIOD, 3600, appr_seed, NULL);
    CHECK_ERR(ms_tkms_warrant_parse(w, len, &pw, detail, sizeof detail), MS_OK);
    CHECK_ERR(ms_tkms_warrant_check(&pw, w, &roles, now, detail, sizeof detail),
              MS_ERR_APPROVAL);
    CHECK(strstr(detail, "audit authority") != NULL);
    /* a key that is no role of this server */
    len = warrant(w, sizeof w, users[0], PERIOD, 3600, auth_seed, other_seed);
    CHECK_ERR(ms_tkms_warrant_parse(w, len, &pw, detail, sizeof detail), MS_OK);
    CHECK_ERR(ms_tkms_warrant_check(&pw, w, &roles, now, detail, sizeof detail),
              MS_ERR_APPROVAL);
    CHECK(strstr(detail, "neither") != NULL);
    /* altered after signing: the user changed */
    len = warrant(w, sizeof w, users[0], PERIOD, 3600, auth_seed, appr_seed);
    char *u = strstr(w, "+4477");
    if (u != NULL)
        u[1] = '5';
    CHECK_ERR(ms_tkms_warrant_parse(w, len, &pw, detail, sizeof detail), MS_OK);
    CHECK_ERR(ms_tkms_warrant_check(&pw, w, &roles, now, detail, sizeof detail),
              MS_ERR_APPROVAL);
    CHECK(strstr(detail, "does not verify") != NULL);
    /* signing twice with one key; malformed warrants */
    len = warrant(w, sizeof w, users[0], PERIOD, 3600, auth_seed, NULL);
    char line[MS_APPROVAL_TEXT_MAX];
    CHECK_ERR(ms_tkms_warrant_sign(auth_seed, w, len, line, sizeof line, detail, sizeof detail),
              MS_ERR_EXISTS);
    CHECK_ERR(ms_tkms_warrant_parse("mikeysakke-request 1\npurpose=other\n", 35, &pw, detail,
                                    sizeof detail),
              MS_ERR_BAD_ENCODING);
    CHECK_ERR(ms_tkms_warrant_make(w, sizeof w, &len, users[0], "../x", auditor_pk, now,
                                   "r", detail, sizeof detail),
              MS_ERR_ARG);
    /* roles: the authority as approver, an approver twice */
    char d[300];
    ms_tkms_audit_roles bad = roles;
    uint8_t h[32];
    memcpy(bad.approver[0], auth_pub, 32);
    CHECK_ERR(ms_tkms_audit_setup(root, &bad, h, d, sizeof d), MS_ERR_ARG);
    bad = roles;
    bad.n_approvers = 2;
    memcpy(bad.approver[1], appr_pub, 32);
    CHECK_ERR(ms_tkms_audit_setup(root, &bad, h, d, sizeof d), MS_ERR_ARG);
}

/* ---- requests by hand ---------------------------------------------------------------------- */

static ms_peer_table table;

static ms_err post(unsigned j, const char *path, const uint8_t *body, size_t len,
                   ms_peer_response *r, char *detail, size_t cap)
{
    ms_peer_link link = {.url = table.server[j - 1].url};
    memcpy(link.pin, table.server[j - 1].tls_pin, 32);
    return ms_peer_post(&link, path, body, len, r, detail, cap);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An extraction request: user, period, warrant, and `count` copies of the evidence items
 * in ev (each "u32 len | checkpoint msg | u32 len | proof", as the warrant route answers). */
static size_t extract_body(uint8_t *out, const char *user, const char *period, const char *w,
                           size_t wl, const uint8_t *const *ev, const size_t *ev_len,
                           unsigned count)
{
    size_t o = 0, ul = strlen(user), pl = strlen(period);
    out[o++] = (uint8_t)(ul >> 8);
    out[o++] = (uint8_t)ul;
    memcpy(out + o, user, ul);
    o += ul;
    out[o++] = (uint8_t)(pl >> 8);
    out[o++] = (uint8_t)pl;
    memcpy(out + o, period, pl);
    o += pl;
    put32(out + o, (uint32_t)wl);
    memcpy(out + o + 4, w, wl);
    o += 4 + wl;
    out[o++] = (uint8_t)count;
    for (unsigned i = 0; i < count; i++) {
        memcpy(out + o, ev[i], ev_len[i]);
        o += ev_len[i];
    }
    return o;
}

/* Entries of event `event` in server j's audit.log (and that it verifies). */
static unsigned entries(unsigned j, const char *event)
{
    char path[1024], line[4096], want[64];
    uint8_t seed[32], pub[32];
    CHECK_ERR(ms_tkms_audit_key(dirs[j - 1], seed, pub, NULL, 0), MS_OK);
    snprintf(path, sizeof path, "%s/audit.log", dirs[j - 1]);
    uint64_t n = 0, bad = 0;
    char detail[300];
    CHECK_ERR(ms_audit_verify(path, pub, 0, NULL, &n, &bad, detail, sizeof detail), MS_OK);
    snprintf(want, sizeof want, " event=%s ", event);
    FILE *f = fopen(path, "r");
    unsigned c = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        c += strstr(line, want) != NULL;
    if (f != NULL)
        fclose(f);
    return c;
}

static int contains(const uint8_t *hay, size_t hl, const uint8_t *needle, size_t nl)
{
    for (size_t i = 0; i + nl <= hl; i++)
        if (memcmp(hay + i, needle, nl) == 0)
            return 1;
    return 0;
}

static int has_code(const ms_peer_response *r, ms_err code)
{
    char want[16];
    snprintf(want, sizeof want, "code %d: ", (int)code);
    return r->body != NULL && strncmp((const char *)r->body, want, strlen(want)) == 0;
}

static void refusals(void)
{
    char w[MS_TKMS_WARRANT_MAX], detail[600];
    uint8_t *body = malloc(1 << 16);
    ms_peer_response r;
    if (body == NULL)
        return;

    /* 1. a valid warrant that no server logged: refused by every server */
    size_t wl = warrant(w, sizeof w, users[0], PERIOD, 3600, auth_seed, appr_seed);
    size_t bl = extract_body(body, users[0], PERIOD, w, wl, NULL, NULL, 0);
    for (unsigned j = 1; j <= N; j++) {
        CHECK_ERR(post(j, "/tkms/audit/extract", body, bl, &r, detail, sizeof detail),
                  MS_ERR_UNAUTHORISED); /* ms_peer_post's name for any 403 */
        CHECK(r.status == 403 && has_code(&r, MS_ERR_WARRANT_UNLOGGED));
        CHECK(r.body != NULL && strstr((const char *)r.body, "0 servers, 2 needed") != NULL);
        ms_peer_response_free(&r);
        CHECK(entries(j, "extract") == 0);
    }
    /* through the auditor's client: a warrant without its second approver is logged
     * nowhere, so nothing is asked for */
    ms_tkms_extract_result res;
    wl = warrant(w, sizeof w, users[0], PERIOD, 3600, auth_seed, NULL);
    ms_tkms_extract_params p = {.peers_file = peers, .public_file = pubf, .warrant = w,
                                .warrant_len = wl, .auditor_sk = auditor_sk};
    CHECK_ERR(ms_tkms_audit_extract(&p, &res, detail, sizeof detail), MS_ERR_WARRANT_UNLOGGED);
    CHECK(strstr(detail, "logged by 0 servers") != NULL &&
          strstr(detail, "server 3: the warrant is not signed by a second approver") != NULL);
    CHECK(res.logged == 0 && res.released == 0);
    /* expired: not logged either */
    wl = warrant(w, sizeof w, users[0], PERIOD, -5, auth_seed, appr_seed);
    p.warrant_len = wl;
    CHECK_ERR(ms_tkms_audit_extract(&p, &res, detail, sizeof detail), MS_ERR_WARRANT_UNLOGGED);
    CHECK(strstr(detail, "expired") != NULL);
    for (unsigned j = 1; j <= N; j++)
        CHECK(entries(j, "warrant") == 0);

    /* 2. logged by server 1 only: one checkpoint, even given twice, is not t+1 */
    wl = warrant(w, sizeof w, users[0], PERIOD, 3600, auth_seed, appr_seed);
    CHECK_ERR(post(1, "/tkms/audit/warrant", (const uint8_t *)w, wl, &r, detail, sizeof detail),
              MS_OK);
    CHECK(entries(1, "warrant") == 1);
    const uint8_t *ev[2] = {r.body, r.body};
    size_t ev_len[2] = {r.len, r.len};
    bl = extract_body(body, users[0], PERIOD, w, wl, ev, ev_len, 2);
    ms_peer_response r2;
    for (unsigned j = 1; j <= N; j++) {
        CHECK_ERR(post(j, "/tkms/audit/extract", body, bl, &r2, detail, sizeof detail),
                  MS_ERR_UNAUTHORISED);
        CHECK(r2.status == 403 && has_code(&r2, MS_ERR_WARRANT_UNLOGGED));
        CHECK(r2.body != NULL && strstr((const char *)r2.body, "1 server, 2 needed") != NULL);
        ms_peer_response_free(&r2);
    }
    /* the same warrant again: not logged twice */
    CHECK_ERR(post(1, "/tkms/audit/warrant", (const uint8_t *)w, wl, &r2, detail, sizeof detail),
              MS_OK);
    CHECK(r2.len == r.len && memcmp(r2.body, r.body, r.len) == 0);
    ms_peer_response_free(&r2);
    CHECK(entries(1, "warrant") == 1);

    /* 3. logged by servers 1 and 2, asked for another user or period */
    CHECK_ERR(post(2, "/tkms/audit/warrant", (const uint8_t *)w, wl, &r2, detail, sizeof detail),
              MS_OK);
    ev[1] = r2.body;
    ev_len[1] = r2.len;
    bl = extract_body(body, users[1], PERIOD, w, wl, ev, ev_len, 2);
    ms_peer_response r3;
    CHECK_ERR(post(3, "/tkms/audit/extract", body, bl, &r3, detail, sizeof detail),
                  MS_ERR_UNAUTHORISED);
    CHECK(r3.status == 403 && has_code(&r3, MS_ERR_AUDIT_SCOPE));
    ms_peer_response_free(&r3);
    bl = extract_body(body, users[0], "2027-01", w, wl, ev, ev_len, 2);
    CHECK_ERR(post(3, "/tkms/audit/extract", body, bl, &r3, detail, sizeof detail),
                  MS_ERR_UNAUTHORISED);
    CHECK(r3.status == 403 && has_code(&r3, MS_ERR_AUDIT_SCOPE));
    ms_peer_response_free(&r3);

    /* 4. logged, but expired by the time it is used (server 3's clock two hours on) */
    bl = extract_body(body, users[0], PERIOD, w, wl, ev, ev_len, 2);
    ms_tkms_audit_set_time(aud[2], (uint64_t)time(NULL) + 7200);
    CHECK_ERR(post(3, "/tkms/audit/extract", body, bl, &r3, detail, sizeof detail),
                  MS_ERR_UNAUTHORISED);
    CHECK(r3.status == 403 && has_code(&r3, MS_ERR_REQUEST_STALE));
    ms_peer_response_free(&r3);
    ms_tkms_audit_set_time(aud[2], 0);

    /* 5. the evidence with a checkpoint altered: that server no longer counts */
    uint8_t *bad = malloc(r2.len);
    if (bad != NULL) {
        memcpy(bad, r2.body, r2.len);
        bad[4 + 60] ^= 1; /* inside the signed checkpoint text */
        ev[1] = bad;
        bl = extract_body(body, users[0], PERIOD, w, wl, ev, ev_len, 2);
        CHECK_ERR(post(3, "/tkms/audit/extract", body, bl, &r3, detail, sizeof detail),
                  MS_ERR_UNAUTHORISED);
        CHECK(r3.status == 403 && has_code(&r3, MS_ERR_WARRANT_UNLOGGED));
        ms_peer_response_free(&r3);
        free(bad);
    }
    for (unsigned j = 1; j <= N; j++)
        CHECK(entries(j, "extract") == 0);

    /* 6. with the two checkpoints: server 3 releases, after its entry; the answer carries
     * u_3 sealed to the auditor, never SSK_3 */
    ev[1] = r2.body;
    bl = extract_body(body, users[0], PERIOD, w, wl, ev, ev_len, 2);
    CHECK_ERR(post(3, "/tkms/audit/extract", body, bl, &r3, detail, sizeof detail), MS_OK);
    CHECK(entries(3, "extract") == 1);
    ms_tkms_share sh;
    uint8_t rec[MS_TKMS_RECORD_MAX];
    size_t rl = 0;
    CHECK_ERR(ms_tkms_service_slot(svc[2], PERIOD, users[0], &sh, rec, sizeof rec, &rl, detail,
                                   sizeof detail),
              MS_OK);
    CHECK(r3.len == MS_PEER_MSG_OVERHEAD + 2 + rl + MS_SAKKE_SECRET_BYTES + MS_HPKE_OVERHEAD);
    CHECK(r3.body != NULL && !contains(r3.body, r3.len, sh.ssk, sizeof sh.ssk) &&
          !contains(r3.body, r3.len, sh.u, sizeof sh.u));
    ms_peer_keys keys;
    ms_peer_table_keys(&table, &keys);
    ms_tkms_warrant pw;
    CHECK_ERR(ms_tkms_warrant_parse(w, wl, &pw, detail, sizeof detail), MS_OK);
    ms_peer_msg_hdr h;
    const uint8_t *pl = NULL;
    size_t pll = 0;
    CHECK_ERR(ms_peer_msg_open(&keys, pw.hash, 0, NULL, r3.body, r3.len, &h, &pl, &pll, detail,
                               sizeof detail),
              MS_OK);
    CHECK(h.sender == 3 && h.kind == MS_TKMS_KIND_AUDIT_SHARE);
    if (pl != NULL && pll > 2 + rl) {
        ms_tkms_record rc;
        size_t used = 0;
        CHECK_ERR(ms_tkms_record_decode(&rc, rec, rl, &used), MS_OK);
        uint8_t info[128], plain[MS_SAKKE_SECRET_BYTES];
        size_t il = ms_tkms_audit_share_info(info, rc.sid, 3, pw.hash), got = 0;
        CHECK(memcmp(pl + 2, rec, rl) == 0);
        CHECK_ERR(ms_hpke_open(auditor_sk, info, il, rec, rl, pl + 2 + rl, pll - 2 - rl, plain,
                               sizeof plain, &got),
                  MS_OK);
        CHECK(got == sizeof plain && memcmp(plain, sh.u, sizeof plain) == 0);
    }
    ms_peer_response_free(&r3);
    ms_peer_response_free(&r2);
    ms_peer_response_free(&r);
    free(body);
}

/* The auditor's whole run, and a server that cannot log. */
static void extraction(const uint8_t device_rsk[MS_SAKKE_POINT_BYTES])
{
    char w[MS_TKMS_WARRANT_MAX], detail[800];
    ms_tkms_extract_result res;
    size_t wl = warrant(w, sizeof w, users[1], PERIOD, 3600, auth_seed, appr_seed);
    ms_tkms_extract_params p = {.peers_file = peers, .public_file = pubf, .warrant = w,
                                .warrant_len = wl, .auditor_sk = auditor_sk};
    unsigned before[N];
    for (unsigned j = 1; j <= N; j++)
        before[j - 1] = entries(j, "extract");
    /* another auditor's key: refused before anything is sent */
    uint8_t other_sk[32], other_pk[32];
    CHECK_ERR(ms_hpke_keygen(other_sk, other_pk, NULL), MS_OK);
    p.auditor_sk = other_sk;
    CHECK_ERR(ms_tkms_audit_extract(&p, &res, detail, sizeof detail), MS_ERR_ARG);
    p.auditor_sk = auditor_sk;

    ms_err e = ms_tkms_audit_extract(&p, &res, detail, sizeof detail);
    CHECK_ERR(e, MS_OK);
    if (e != MS_OK)
        fprintf(stderr, "extract: %s\n", detail);
    CHECK(res.logged == 7 && res.released == 3);
    CHECK(memcmp(res.rsk, device_rsk, MS_SAKKE_POINT_BYTES) == 0);
    CHECK(strcmp(res.user, users[1]) == 0 && strcmp(res.period, PERIOD) == 0);
    CHECK(entries(1, "extract") == before[0] + 1 && entries(2, "extract") == before[1] + 1 &&
          entries(3, "extract") == before[2]);
    /* the entry names the warrant */
    char path[1024], line[4096], wh[65];
    ms_tkms_warrant pw;
    CHECK_ERR(ms_tkms_warrant_parse(w, wl, &pw, detail, sizeof detail), MS_OK);
    for (unsigned k = 0; k < 32; k++)
        snprintf(wh + 2 * k, 3, "%02x", pw.hash[k]);
    snprintf(path, sizeof path, "%s/audit.log", dirs[0]);
    FILE *f = fopen(path, "r");
    int named = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        named += strstr(line, " event=extract ") != NULL && strstr(line, wh) != NULL &&
                 strstr(line, "user=sip:alice@org.example period=2026-12") != NULL;
    if (f != NULL)
        fclose(f);
    CHECK(named == 1);

    /* server 1's log read-only: it refuses, servers 2 and 3 release */
    snprintf(path, sizeof path, "%s/audit.log", dirs[0]);
    CHECK(chmod(path, 0400) == 0);
    wl = warrant(w, sizeof w, users[1], PERIOD, 3600, auth_seed, appr_seed);
    p.warrant_len = wl;
    e = ms_tkms_audit_extract(&p, &res, detail, sizeof detail);
    CHECK_ERR(e, MS_OK);
    if (e != MS_OK)
        fprintf(stderr, "extract: %s\n", detail);
    CHECK(res.logged == 6 && res.released == 6);
    CHECK(memcmp(res.rsk, device_rsk, MS_SAKKE_POINT_BYTES) == 0);
    CHECK(entries(1, "extract") == before[0] + 1);
    /* and server 2's too: only one share remains, nothing to combine */
    snprintf(path, sizeof path, "%s/audit.log", dirs[1]);
    CHECK(chmod(path, 0400) == 0);
    wl = warrant(w, sizeof w, users[1], PERIOD, 3600, auth_seed, appr_seed);
    p.warrant_len = wl;
    CHECK_ERR(ms_tkms_audit_extract(&p, &res, detail, sizeof detail), MS_ERR_WARRANT_UNLOGGED);
    CHECK(strstr(detail, "logged by 1 server, 2 needed") != NULL &&
          strstr(detail, "server 1 cannot write its audit log") != NULL);
    for (unsigned j = 1; j <= 2; j++) {
        snprintf(path, sizeof path, "%s/audit.log", dirs[j - 1]);
        CHECK(chmod(path, 0600) == 0);
    }
    ms_wipe(&res, sizeof res);
}

/* Server 3 set up with other warrant keys (one more approver): its checkpoints name
 * another roles hash and count at no other server. */
static void other_roles(uint16_t port3)
{
    char path[1024], w[MS_TKMS_WARRANT_MAX], detail[600];
    stop(2);
    snprintf(path, sizeof path, "%s/audit-roles.txt", dirs[2]);
    CHECK(unlink(path) == 0);
    ms_tkms_audit_roles roles = {.n_approvers = 2};
    memcpy(roles.authority, auth_pub, 32);
    memcpy(roles.approver[0], appr_pub, 32);
    memcpy(roles.approver[1], other_pub, 32);
    uint8_t h[32];
    CHECK_ERR(ms_tkms_audit_setup(dirs[2], &roles, h, detail, sizeof detail), MS_OK);
    CHECK(serve(2, port3));
    size_t wl = warrant(w, sizeof w, users[0], PERIOD, 3600, auth_seed, appr_seed);
    ms_peer_response r1, r3, r;
    CHECK_ERR(post(1, "/tkms/audit/warrant", (const uint8_t *)w, wl, &r1, detail, sizeof detail),
              MS_OK);
    CHECK_ERR(post(3, "/tkms/audit/warrant", (const uint8_t *)w, wl, &r3, detail, sizeof detail),
              MS_OK);
    const uint8_t *ev[2] = {r1.body, r3.body};
    size_t ev_len[2] = {r1.len, r3.len};
    uint8_t *body = malloc(1 << 16);
    if (body != NULL) {
        size_t bl = extract_body(body, users[0], PERIOD, w, wl, ev, ev_len, 2);
        CHECK_ERR(post(2, "/tkms/audit/extract", body, bl, &r, detail, sizeof detail),
                  MS_ERR_UNAUTHORISED);
        CHECK(r.status == 403 && has_code(&r, MS_ERR_WARRANT_UNLOGGED));
        CHECK(r.body != NULL && strstr((const char *)r.body, "1 server, 2 needed") != NULL &&
              strstr((const char *)r.body, "server 3's checkpoint is for other warrant keys") !=
                  NULL);
        ms_peer_response_free(&r);
    }
    free(body);
    ms_peer_response_free(&r1);
    ms_peer_response_free(&r3);
}

/* The warrant log survives a reopen; a tampered one is refused. */
static void reopen(uint16_t port)
{
    char path[1024], detail[300];
    stop(0);
    CHECK(serve(0, port));
    snprintf(path, sizeof path, "%s/warrants.log", dirs[0]);
    FILE *f = fopen(path, "r+");
    CHECK(f != NULL);
    if (f != NULL) {
        fseek(f, 5, SEEK_SET);
        int c = fgetc(f);
        fseek(f, 5, SEEK_SET);
        fputc(c == 'a' ? 'b' : 'a', f);
        fclose(f);
    }
    ms_tkms_audit *a = NULL;
    CHECK_ERR(ms_tkms_audit_open(&a, svc[0], detail, sizeof detail), MS_ERR_AUDIT_CHAIN);
    CHECK(strstr(detail, "warrants.log line 1") != NULL);
    ms_tkms_audit_close(a);
}

int main(void)
{
    ms_test_seed();
    if (mkdtemp(root) == NULL) {
        CHECK(0);
        return ms_test_finish();
    }
    CHECK_ERR(ms_role_keygen(auth_seed, auth_pub, NULL), MS_OK);
    CHECK_ERR(ms_role_keygen(appr_seed, appr_pub, NULL), MS_OK);
    CHECK_ERR(ms_role_keygen(other_seed, other_pub, NULL), MS_OK);
    CHECK_ERR(ms_hpke_keygen(auditor_sk, auditor_pk, NULL), MS_OK);
    warrant_checks();

    uint16_t ports[N];
    if (!make_servers(ports))
        return ms_test_finish();
    CHECK_ERR(ms_peer_table_read(peers, &table, NULL, 0), MS_OK);
    ms_tkms_audit_roles roles = {.n_approvers = 1};
    memcpy(roles.authority, auth_pub, 32);
    memcpy(roles.approver[0], appr_pub, 32);
    uint8_t h0[32], h[32];
    char detail[400];
    for (unsigned i = 0; i < N; i++) {
        CHECK_ERR(ms_tkms_audit_setup(dirs[i], &roles, i == 0 ? h0 : h, detail, sizeof detail),
                  MS_OK);
        CHECK(i == 0 || memcmp(h, h0, 32) == 0);
    }
    CHECK_ERR(ms_tkms_audit_setup(dirs[0], &roles, h, detail, sizeof detail), MS_ERR_EXISTS);
    for (unsigned i = 0; i < N; i++)
        if (!serve(i, ports[i]))
            return ms_test_finish();

    /* the device's keys for users[1] from servers 1 and 2 */
    uint8_t dsk[32], dpk[32], rsk[MS_SAKKE_POINT_BYTES], ssk[MS_ECCSI_SCALAR_BYTES],
        pvt[MS_ECCSI_POINT_BYTES];
    CHECK_ERR(ms_hpke_keygen(dsk, dpk, NULL), MS_OK);
    char files[2][400];
    for (unsigned i = 0; i < 2; i++) {
        snprintf(files[i], sizeof files[i], "%s/share%u", root, i + 1);
        CHECK_ERR(ms_tkms_node_share(dirs[i], pass, sizeof pass - 1, PERIOD, users[1], dpk,
                                     files[i], detail, sizeof detail),
                  MS_OK);
    }
    const char *f[2] = {files[0], files[1]};
    unsigned cheater = 0;
    CHECK_ERR(ms_tkms_device_combine(peers, pubf, dsk, PERIOD, users[1], f, 2, rsk, ssk, pvt,
                                     &cheater, detail, sizeof detail),
              MS_OK);

    refusals();
    extraction(rsk);
    /* the routes answer nothing else */
    ms_peer_response r;
    CHECK_ERR(post(1, "/tkms/audit/other", (const uint8_t *)"x", 1, &r, detail, sizeof detail),
              MS_ERR_HTTP);
    CHECK(r.status == 404);
    ms_peer_response_free(&r);
    CHECK_ERR(post(1, "/tkms/other", (const uint8_t *)"x", 1, &r, detail, sizeof detail),
              MS_ERR_HTTP);
    CHECK(r.status == 404 && r.len == 0);
    ms_peer_response_free(&r);
    other_roles(ports[2]);
    reopen(ports[0]);

    for (unsigned i = 0; i < N; i++)
        stop(i);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
    return ms_test_finish();
}
