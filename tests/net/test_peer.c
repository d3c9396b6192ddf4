/*
 * Pinned mutual TLS between threshold-KMS servers (src/net/peer.c) on loopback: the
 * ceremony's certificates (files, modes, pins, no overwrite); a pinned server exchanging a
 * blob with a pinned peer, which the handler sees by its index, and a signed server message
 * carried and checked end to end; refusals: a client certificate outside the table (403,
 * handler never called), no client certificate at all (403, /healthz too), a server whose
 * certificate is not the pinned one (the client stops before sending), a client key file
 * open to others, a closed port; statuses other than 2xx; a 1 MiB blob and an answer over
 * the client's limit.
 */
#define CURL_DISABLE_TYPECHECK 1

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "net/peer.h"
#include "net/peer_msg.h"
#include "testutil.h"

#define N 3

static char dir[] = "/tmp/ms_peer_tls_XXXXXX";
static char cert[N + 1][256], key[N + 1][256]; /* 0..2: the servers, 3: a stranger */
static uint8_t pins[N + 1][MS_PEER_PIN_BYTES];

typedef struct seen {
    atomic_int calls;
    atomic_int last_peer;
    char last_path[64];
    uint8_t sign_seed[MS_PEER_KEY_BYTES]; /* server 1's message key, for the answer */
    ms_peer_keys keys;
    ms_peer_guard guard;
    int msg_result;
} seen;

static uint8_t session[MS_PEER_SESSION_BYTES] = {1, 2, 3};

/* Echoes the body; /fail answers 500; /big answers 2 MiB; /msg opens a signed message. */
static void handler(void *ctx, unsigned peer, const ms_http_request *req,
                    ms_http_response *resp)
{
    seen *s = ctx;
    atomic_fetch_add(&s->calls, 1);
    atomic_store(&s->last_peer, (int)peer);
    snprintf(s->last_path, sizeof s->last_path, "%s", req->path);
    resp->content_type = "application/octet-stream";
    if (strcmp(req->path, "/fail") == 0) {
        resp->status = 500;
        return;
    }
    if (strcmp(req->path, "/big") == 0) {
        resp->body = calloc(1, 2u << 20);
        resp->body_len = resp->body != NULL ? 2u << 20 : 0;
        resp->status = 200;
        return;
    }
    if (strcmp(req->path, "/msg") == 0) {
        ms_peer_msg_hdr h;
        const uint8_t *p;
        size_t plen;
        s->msg_result = ms_peer_msg_open(&s->keys, session, 1, &s->guard, req->body,
                                         req->body_len, &h, &p, &plen, NULL, 0);
        /* the transport's peer and the message's signer must agree */
        if (s->msg_result == MS_OK && h.sender != peer)
            s->msg_result = MS_ERR_PEER_MESSAGE;
        resp->status = s->msg_result == MS_OK ? 200 : 400;
        return;
    }
    resp->body = malloc(req->body_len + 1);
    if (resp->body != NULL) {
        memcpy(resp->body, req->body, req->body_len);
        resp->body_len = req->body_len;
    }
    resp->status = 200;
}

static void make_certs(void)
{
    CHECK(mkdtemp(dir) != NULL);
    char detail[256] = "";
    for (int i = 0; i <= N; i++) {
        snprintf(cert[i], sizeof cert[i], "%s/server-%d.crt", dir, i + 1);
        snprintf(key[i], sizeof key[i], "%s/server-%d.key", dir, i + 1);
        char name[32];
        snprintf(name, sizeof name, "kms-%d", i + 1);
        CHECK_ERR(ms_peer_tls_generate(cert[i], key[i], name, 3650, pins[i], detail,
                                       sizeof detail), MS_OK);
        uint8_t again[MS_PEER_PIN_BYTES];
        CHECK_ERR(ms_peer_tls_pin(cert[i], again, detail, sizeof detail), MS_OK);
        CHECK_MEM(again, pins[i], MS_PEER_PIN_BYTES);
        struct stat sb;
        CHECK(stat(key[i], &sb) == 0 && (sb.st_mode & 0777) == 0600);
        CHECK(stat(cert[i], &sb) == 0 && (sb.st_mode & 0777) == 0644);
    }
    CHECK(memcmp(pins[0], pins[1], MS_PEER_PIN_BYTES) != 0);
    /* Never over an existing file. */
    CHECK_ERR(ms_peer_tls_generate(cert[0], key[3], "x", 1, NULL, detail, sizeof detail),
              MS_ERR_EXISTS);
    char other_key[300];
    snprintf(other_key, sizeof other_key, "%s/new.key", dir);
    CHECK_ERR(ms_peer_tls_generate(cert[0], other_key, "x", 1, NULL, detail, sizeof detail),
              MS_ERR_EXISTS);
    CHECK(access(other_key, F_OK) != 0);
    CHECK_ERR(ms_peer_tls_generate(cert[0], other_key, "", 1, NULL, detail, sizeof detail),
              MS_ERR_ARG);
    /* Pins: hex both ways; not a certificate. */
    char hex[MS_PEER_PIN_HEX + 1];
    uint8_t back[MS_PEER_PIN_BYTES];
    ms_peer_pin_hex(hex, pins[0]);
    CHECK_ERR(ms_peer_pin_unhex(hex, back), MS_OK);
    CHECK_MEM(back, pins[0], MS_PEER_PIN_BYTES);
    hex[5] = 'g';
    CHECK_ERR(ms_peer_pin_unhex(hex, back), MS_ERR_ARG);
    CHECK_ERR(ms_peer_tls_pin(key[0], back, detail, sizeof detail), MS_ERR_TLS);
    CHECK_ERR(ms_peer_tls_pin_der((const uint8_t *)"junk", 4, back), MS_ERR_TLS);
}

static ms_peer_link link_to(uint16_t port, int server, int as)
{
    static char url[N + 1][64];
    snprintf(url[as], sizeof url[as], "https://127.0.0.1:%u", (unsigned)port);
    ms_peer_link l = {.url = url[as], .cert_file = cert[as], .key_file = key[as]};
    memcpy(l.pin, pins[server], MS_PEER_PIN_BYTES);
    return l;
}

/* A request without any client certificate, pinning the server: its status, or -1. */
static size_t discard(char *d, size_t s, size_t n, void *u)
{
    (void)d;
    (void)u;
    return s * n;
}

static long bare_request(uint16_t port, const char *path)
{
    CURL *k = curl_easy_init();
    if (k == NULL)
        return -1;
    char url[128], pinned[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%u%s", (unsigned)port, path);
    memcpy(pinned, "sha256//", 8);
    EVP_EncodeBlock((unsigned char *)pinned + 8, pins[0], MS_PEER_PIN_BYTES);
    curl_easy_setopt(k, CURLOPT_URL, url);
    curl_easy_setopt(k, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(k, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(k, CURLOPT_PINNEDPUBLICKEY, pinned);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(k, CURLOPT_POSTFIELDS, "x");
    long status = -1;
    if (curl_easy_perform(k) == CURLE_OK)
        curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(k);
    return status;
}

static void test_exchange(void)
{
    seen s;
    memset(&s, 0, sizeof s);
    /* Server 1 takes calls from servers 1..3 (the stranger, index 4, is not in it). */
    ms_peer_pins table = {.n = N};
    for (int i = 0; i < N; i++)
        memcpy(table.pin[i], pins[i], MS_PEER_PIN_BYTES);
    char detail[512] = "";
    ms_peer_server_config cfg = {.bind_addr = "127.0.0.1", .port = 0, .cert_file = cert[0],
                                 .key_file = key[0], .peers = &table, .detail = detail,
                                 .detail_cap = sizeof detail};
    ms_peer_server *srv = NULL;
    CHECK_ERR(ms_peer_server_start(&srv, &cfg, handler, &s), MS_OK);
    if (srv == NULL) {
        fprintf(stderr, "server: %s\n", detail);
        return;
    }
    uint16_t port = ms_peer_server_port(srv);
    CHECK(port != 0);

    /* Server 2 calls server 1 and gets its blob back. */
    static const uint8_t blob[] = "an opaque protocol blob \x00\x01\x02 with zeros";
    ms_peer_link l = link_to(port, 0, 1);
    ms_peer_response r;
    CHECK_ERR(ms_peer_post(&l, "/threshold/r1", blob, sizeof blob, &r, detail, sizeof detail),
              MS_OK);
    CHECK(r.status == 200 && r.len == sizeof blob);
    if (r.body != NULL && r.len == sizeof blob)
        CHECK_MEM(r.body, blob, sizeof blob);
    CHECK(atomic_load(&s.last_peer) == 2);
    CHECK(strcmp(s.last_path, "/threshold/r1") == 0);
    ms_peer_response_free(&r);
    /* Server 3 too, by its own index; an empty body works. */
    l = link_to(port, 0, 2);
    CHECK_ERR(ms_peer_post(&l, "/x", NULL, 0, &r, detail, sizeof detail), MS_OK);
    CHECK(r.len == 0 && r.body != NULL && atomic_load(&s.last_peer) == 3);
    ms_peer_response_free(&r);

    /* A signed server message, carried and checked end to end. */
    ms_peer_keys keys = {.n = N};
    uint8_t seeds[N][MS_PEER_KEY_BYTES];
    for (int i = 0; i < N; i++)
        CHECK_ERR(ms_peer_keygen(seeds[i], keys.pub[i], NULL), MS_OK);
    s.keys = keys;
    ms_peer_guard_init(&s.guard, session);
    ms_peer_msg_hdr h = {.sender = 2, .recipient = 1, .kind = 3, .round = 2};
    memcpy(h.session, session, sizeof session);
    uint8_t msg[512];
    size_t msg_len = 0;
    CHECK_ERR(ms_peer_msg_sign(seeds[1], &h, blob, sizeof blob, msg, sizeof msg, &msg_len),
              MS_OK);
    l = link_to(port, 0, 1);
    CHECK_ERR(ms_peer_post(&l, "/msg", msg, msg_len, &r, detail, sizeof detail), MS_OK);
    CHECK(s.msg_result == MS_OK);
    ms_peer_response_free(&r);
    /* Replayed over the same pinned link: refused by the guard. */
    CHECK_ERR(ms_peer_post(&l, "/msg", msg, msg_len, &r, detail, sizeof detail), MS_ERR_HTTP);
    CHECK(r.status == 400 && s.msg_result == MS_ERR_PEER_REPLAY);
    ms_peer_response_free(&r);
    /* Server 2's signed message sent over server 3's connection: the signer is not the
     * caller. */
    h.round = 3;
    CHECK_ERR(ms_peer_msg_sign(seeds[1], &h, blob, sizeof blob, msg, sizeof msg, &msg_len),
              MS_OK);
    l = link_to(port, 0, 2);
    CHECK_ERR(ms_peer_post(&l, "/msg", msg, msg_len, &r, detail, sizeof detail), MS_ERR_HTTP);
    CHECK(s.msg_result == MS_ERR_PEER_MESSAGE);
    ms_peer_response_free(&r);
    for (int i = 0; i < N; i++)
        ms_wipe(seeds[i], sizeof seeds[i]);

    /* A client certificate outside the table: 403, the handler never runs. */
    int calls = atomic_load(&s.calls);
    l = link_to(port, 0, 3);
    CHECK_ERR(ms_peer_post(&l, "/threshold/r1", blob, sizeof blob, &r, detail, sizeof detail),
              MS_ERR_UNAUTHORISED);
    CHECK(r.status == 403);
    ms_peer_response_free(&r);
    CHECK(atomic_load(&s.calls) == calls);

    /* No client certificate: 403, monitoring paths included. */
    CHECK(bare_request(port, "/threshold/r1") == 403);
    CHECK(bare_request(port, "/healthz") == 403);
    CHECK(atomic_load(&s.calls) == calls);

    /* The client expects server 3's certificate but server 1 answers: refused before any
     * request is sent. */
    l = link_to(port, 2, 1);
    CHECK_ERR(ms_peer_post(&l, "/threshold/r1", blob, sizeof blob, &r, detail, sizeof detail),
              MS_ERR_TLS);
    CHECK(r.status == 0 && r.body == NULL);
    CHECK(atomic_load(&s.calls) == calls);

    /* Statuses and sizes. */
    l = link_to(port, 0, 1);
    CHECK_ERR(ms_peer_post(&l, "/fail", blob, sizeof blob, &r, detail, sizeof detail),
              MS_ERR_HTTP);
    CHECK(r.status == 500 && strstr(detail, "500") != NULL);
    ms_peer_response_free(&r);
    size_t big_len = 1u << 20;
    uint8_t *big = malloc(big_len);
    CHECK(big != NULL);
    if (big != NULL) {
        for (size_t i = 0; i < big_len; i++)
            big[i] = (uint8_t)(i * 7 + 3);
        CHECK_ERR(ms_peer_post(&l, "/echo", big, big_len, &r, detail, sizeof detail), MS_OK);
        CHECK(r.len == big_len && r.body != NULL && memcmp(r.body, big, big_len) == 0);
        ms_peer_response_free(&r);
        free(big);
    }
    l.max_response = 1u << 20;
    CHECK_ERR(ms_peer_post(&l, "/big", NULL, 0, &r, detail, sizeof detail), MS_ERR_HTTP);
    CHECK(r.body == NULL);
    l.max_response = 0;
    CHECK_ERR(ms_peer_post(&l, "/big", NULL, 0, &r, detail, sizeof detail), MS_OK);
    CHECK(r.len == (2u << 20));
    ms_peer_response_free(&r);

    /* Our key file open to others: refused before connecting. */
    CHECK(chmod(key[1], 0644) == 0);
    l = link_to(port, 0, 1);
    CHECK_ERR(ms_peer_post(&l, "/x", NULL, 0, &r, detail, sizeof detail), MS_ERR_KEYFILE_MODE);
    CHECK(chmod(key[1], 0600) == 0);
    /* Arguments. */
    CHECK_ERR(ms_peer_post(&l, "no-slash", NULL, 0, &r, detail, sizeof detail), MS_ERR_ARG);
    ms_peer_link plain = l;
    plain.url = "http://127.0.0.1:1";
    CHECK_ERR(ms_peer_post(&plain, "/x", NULL, 0, &r, detail, sizeof detail), MS_ERR_ARG);

    ms_peer_server_stop(srv);
    /* Nobody listening any more. */
    CHECK_ERR(ms_peer_post(&l, "/x", NULL, 0, &r, detail, sizeof detail), MS_ERR_UNREACHABLE);
}

static void plain_handler(void *ctx, const ms_http_request *req, ms_http_response *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 200;
}

static int refuse_all(void *ctx, void *tls_session)
{
    (void)ctx;
    (void)tls_session;
    return -1;
}

static void test_start_errors(void)
{
    ms_peer_pins table = {.n = 1};
    memcpy(table.pin[0], pins[0], MS_PEER_PIN_BYTES);
    seen s;
    memset(&s, 0, sizeof s);
    ms_peer_server *srv = NULL;
    char detail[256] = "";
    ms_peer_server_config cfg = {.bind_addr = "127.0.0.1", .cert_file = cert[0],
                                 .key_file = key[0], .peers = NULL, .detail = detail,
                                 .detail_cap = sizeof detail};
    CHECK_ERR(ms_peer_server_start(&srv, &cfg, handler, &s), MS_ERR_ARG);
    cfg.peers = &table;
    cfg.cert_file = NULL;
    CHECK_ERR(ms_peer_server_start(&srv, &cfg, handler, &s), MS_ERR_ARG);
    cfg.cert_file = cert[1]; /* another server's certificate with our key */
    CHECK_ERR(ms_peer_server_start(&srv, &cfg, handler, &s), MS_ERR_TLS);
    CHECK(srv == NULL);
    /* client_check without TLS is refused by the HTTP layer. */
    ms_http_config hc = {.bind_addr = "127.0.0.1", .detail = detail, .detail_cap = sizeof detail};
    hc.client_check = refuse_all;
    ms_http_server *hs = NULL;
    CHECK_ERR(ms_http_start(&hs, &hc, plain_handler, NULL, NULL, &s), MS_ERR_ARG);
    /* Neither handler. */
    hc.client_check = NULL;
    CHECK_ERR(ms_http_start(&hs, &hc, NULL, NULL, NULL, &s), MS_ERR_ARG);
}

static void cleanup(void)
{
    for (int i = 0; i <= N; i++) {
        unlink(cert[i]);
        unlink(key[i]);
    }
    rmdir(dir);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    make_certs();
    test_exchange();
    test_start_errors();
    cleanup();
    curl_global_cleanup();
    return ms_test_finish();
}
