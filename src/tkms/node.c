/*
 * One threshold-KMS server over the network: its keys, and the key-generation ceremony
 * (see node.h for the files and the wire form).
 */
#include "tkms/node.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "crypto/rng.h"
#include "kms/seal.h"
#include "mikeysakke/crypto.h"
#include "net/hpke.h"
#include "net/peer.h"
#include "net/peer_msg.h"
#include "net/peer_table.h"
#include "util/detail.h"
#include "threshold/tkms_internal.h"
#include "util/hex.h"

#define KIND_DKG 1
#define MAX_ROUNDS 8 /* protocol rounds + the confirmation round */
#define MSG_PATH "/tkms/msg"

/* ---- files -------------------------------------------------------------------------- */

static void join(char *out, const char *dir, const char *name)
{
    snprintf(out, MS_TKMS_PATH_MAX, "%s/%s", dir, name);
}

static ms_err parse_url(const char *url, char *host, size_t host_cap, uint16_t *port)
{
    const char *p = strncmp(url, "https://", 8) == 0 ? url + 8 : NULL;
    const char *colon = p != NULL ? strrchr(p, ':') : NULL;
    if (colon == NULL || (size_t)(colon - p) >= host_cap || colon == p)
        return MS_ERR_ARG;
    char *end = NULL;
    unsigned long v = strtoul(colon + 1, &end, 10);
    if (end == colon + 1 || (*end != '\0' && *end != '/') || v == 0 || v > 65535)
        return MS_ERR_ARG;
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = '\0';
    *port = (uint16_t)v;
    return MS_OK;
}

ms_err ms_tkms_node_keygen(const char *dir, unsigned index, const char *url, char *line,
                           size_t line_cap, char *detail, size_t detail_cap)
{
    char host[256], path[MS_TKMS_PATH_MAX], path2[MS_TKMS_PATH_MAX];
    uint16_t port;
    if (dir == NULL || url == NULL || line == NULL)
        return MS_ERR_ARG;
    if (index < 1 || index > MS_PEER_MAX)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "the index must be 1 to %d",
                              MS_PEER_MAX);
    if (strlen(url) > MS_PEER_URL_MAX || parse_url(url, host, sizeof host, &port) != MS_OK)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                              "the URL must be https://HOST:PORT");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap, "cannot create %s", dir);
    join(path, dir, "sign.key");
    if (access(path, F_OK) == 0)
        return ms_detail_fail(MS_ERR_EXISTS, detail, detail_cap,
                              "%s already holds a server's keys", dir);

    ms_peer_entry entry;
    memset(&entry, 0, sizeof entry);
    ms_peer_entry *e = &entry;
    uint8_t seed[MS_PEER_KEY_BYTES], hsk[MS_HPKE_SK_BYTES];
    ms_err err = ms_peer_keygen(seed, e->sign_pub, NULL);
    if (err == MS_OK)
        err = ms_hpke_keygen(hsk, e->hpke_pub, NULL);
    if (err == MS_OK)
        err = ms_peer_key_write(path, seed, true, detail, detail_cap);
    join(path, dir, "sign.pub");
    if (err == MS_OK)
        err = ms_peer_key_write(path, e->sign_pub, false, detail, detail_cap);
    join(path, dir, "hpke.key");
    if (err == MS_OK)
        err = ms_peer_key_write(path, hsk, true, detail, detail_cap);
    join(path, dir, "hpke.pub");
    if (err == MS_OK)
        err = ms_peer_key_write(path, e->hpke_pub, false, detail, detail_cap);
    ms_wipe(seed, sizeof seed);
    ms_wipe(hsk, sizeof hsk);
    join(path, dir, "tls.crt");
    join(path2, dir, "tls.key");
    char name[64];
    snprintf(name, sizeof name, "mikeysakke threshold KMS server %u", index);
    if (err == MS_OK)
        err = ms_peer_tls_generate(path, path2, name, 3650, e->tls_pin, detail, detail_cap);
    char idx[16];
    int il = snprintf(idx, sizeof idx, "%u\n", index);
    join(path, dir, "index");
    if (err == MS_OK)
        err = ms_peer_file_create(path, idx, (size_t)il, false, detail, detail_cap);
    if (err != MS_OK)
        return err;

    /* the line of the table's text form (src/net/peer_table.h) for this server */
    char sh[65], hh[65], th[65];
    ms_hex_encode_lower(sh, e->sign_pub, 32);
    ms_hex_encode_lower(hh, e->hpke_pub, 32);
    ms_hex_encode_lower(th, e->tls_pin, 32);
    sh[64] = hh[64] = th[64] = '\0';
    int w = snprintf(line, line_cap, "server %u %s sign=%s hpke=%s tls=%s\n", index, url, sh,
                     hh, th);
    if (w < 0 || (size_t)w >= line_cap)
        return MS_ERR_BUFFER_TOO_SMALL;
    return MS_OK;
}

/* ---- public.txt --------------------------------------------------------------------- */

static void put_hex(FILE *f, const char *key, int j, const uint8_t *p, size_t len)
{
    char hex[2 * MS_SAKKE_POINT_BYTES + 1];
    ms_hex_encode_lower(hex, p, len);
    if (j > 0)
        fprintf(f, "%s %d %s\n", key, j, hex);
    else
        fprintf(f, "%s %s\n", key, hex);
}

static ms_err public_write(const char *path, const ms_tkms_public *pub, unsigned index,
                           const uint8_t transcript[32], char *detail, size_t detail_cap)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return MS_ERR_NOMEM;
    fprintf(f, "mikeysakke-tkms-public 1\nn %u\nt %u\nindex %u\nqual %08x\n", pub->n, pub->t,
            index, (unsigned)pub->qual);
    put_hex(f, "Z", 0, pub->Z, sizeof pub->Z);
    put_hex(f, "kpak", 0, pub->kpak, sizeof pub->kpak);
    for (unsigned j = 1; j <= pub->n; j++)
        put_hex(f, "Zj", (int)j, pub->Zj[j - 1], sizeof pub->Zj[0]);
    for (unsigned j = 1; j <= pub->n; j++)
        put_hex(f, "kpakj", (int)j, pub->kpakj[j - 1], sizeof pub->kpakj[0]);
    put_hex(f, "transcript", 0, transcript, 32);
    fclose(f);
    ms_err err = buf != NULL ? ms_peer_file_create(path, buf, len, false, detail, detail_cap)
                             : MS_ERR_NOMEM;
    free(buf);
    return err;
}

static ms_err hex_field(const char *v, uint8_t *out, size_t len)
{
    return strlen(v) == 2 * len ? ms_hex_decode(out, len, v, 2 * len) : MS_ERR_BAD_LENGTH;
}

ms_err ms_tkms_public_read(const char *path, ms_tkms_public *pub, unsigned *index,
                           uint8_t transcript[32], char *detail, size_t detail_cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap, "cannot read %s", path);
    memset(pub, 0, sizeof *pub);
    char line[1200];
    unsigned lineno = 0, seen = 0;
    ms_err err = MS_OK;
    while (err == MS_OK && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        line[strcspn(line, "\n")] = '\0';
        char key[32], val[1100];
        unsigned j = 0, u = 0;
        if (lineno == 1) {
            if (strcmp(line, "mikeysakke-tkms-public 1") != 0)
                err = MS_ERR_CONFIG;
            continue;
        }
        int indexed = strncmp(line, "Zj ", 3) == 0 || strncmp(line, "kpakj ", 6) == 0;
        if (indexed && sscanf(line, "%31s %u %1099s", key, &j, val) == 3 && j >= 1 &&
            j <= MS_TKMS_MAX_N) {
            if (strcmp(key, "Zj") == 0)
                err = hex_field(val, pub->Zj[j - 1], sizeof pub->Zj[0]);
            else if (strcmp(key, "kpakj") == 0)
                err = hex_field(val, pub->kpakj[j - 1], sizeof pub->kpakj[0]);
            else
                err = MS_ERR_CONFIG;
        } else if (!indexed && sscanf(line, "%31s %1099s", key, val) == 2) {
            if (strcmp(key, "n") == 0 && sscanf(val, "%u", &u) == 1)
                pub->n = u;
            else if (strcmp(key, "t") == 0 && sscanf(val, "%u", &u) == 1)
                pub->t = u;
            else if (strcmp(key, "index") == 0 && sscanf(val, "%u", &u) == 1)
                *index = u;
            else if (strcmp(key, "qual") == 0 && sscanf(val, "%x", &u) == 1)
                pub->qual = u;
            else if (strcmp(key, "Z") == 0)
                err = hex_field(val, pub->Z, sizeof pub->Z);
            else if (strcmp(key, "kpak") == 0)
                err = hex_field(val, pub->kpak, sizeof pub->kpak);
            else if (strcmp(key, "transcript") == 0)
                err = hex_field(val, transcript, 32);
            else
                err = MS_ERR_CONFIG;
            seen++;
        } else {
            err = MS_ERR_CONFIG;
        }
    }
    fclose(f);
    if (err == MS_OK && (seen < 7 || pub->n < 3 || pub->n > MS_TKMS_MAX_N))
        return ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap, "%s is incomplete", path);
    if (err != MS_OK)
        return ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap, "%s line %u is malformed",
                              path, lineno);
    return MS_OK;
}

void ms_tkms_fingerprint(const ms_tkms_public *pub, char out[17])
{
    uint8_t in[sizeof pub->Z + sizeof pub->kpak], md[32];
    memcpy(in, pub->Z, sizeof pub->Z);
    memcpy(in + sizeof pub->Z, pub->kpak, sizeof pub->kpak);
    if (EVP_Digest(in, sizeof in, md, NULL, EVP_sha256(), NULL) != 1)
        memset(md, 0, sizeof md);
    ms_hex_encode_lower(out, md, 8);
    out[16] = '\0';
}

/* ---- the mailbox: what the peer server's handler received ---------------------------- */

typedef struct mailbox {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned me, n, kind, rounds;
    ms_peer_keys keys;
    ms_peer_guard guard;
    uint8_t session[MS_PEER_SESSION_BYTES];
    uint8_t *msg[MAX_ROUNDS + 1][MS_PEER_MAX]; /* [round][sender - 1]: the payload */
    size_t len[MAX_ROUNDS + 1][MS_PEER_MAX];
} mailbox;

static void answer(ms_http_response *resp, int status, const char *text)
{
    resp->status = status;
    resp->content_type = "text/plain";
    resp->body = strdup(text);
    resp->body_len = resp->body != NULL ? strlen(text) : 0;
}

static void on_message(void *ctx, unsigned peer, const ms_http_request *req,
                       ms_http_response *resp)
{
    mailbox *mb = ctx;
    if (strcmp(req->path, MSG_PATH) != 0 || strcmp(req->method, "POST") != 0) {
        answer(resp, 404, "no such route");
        return;
    }
    ms_peer_msg_hdr h;
    const uint8_t *payload = NULL;
    size_t plen = 0;
    char why[200] = "";
    pthread_mutex_lock(&mb->mu);
    ms_err err = ms_peer_msg_open(&mb->keys, mb->session, (uint8_t)mb->me, &mb->guard, req->body,
                                  req->body_len, &h, &payload, &plen, why, sizeof why);
    if (err == MS_ERR_PEER_REPLAY) {
        /* a retried post that had arrived: already in the mailbox */
        pthread_mutex_unlock(&mb->mu);
        answer(resp, 200, "already received");
        return;
    }
    if (err == MS_OK && (h.sender != peer || h.kind != mb->kind || h.round < 1 ||
                         h.round > mb->rounds)) {
        err = MS_ERR_PEER_MESSAGE;
        snprintf(why, sizeof why, "server %u sent a message of kind %u round %u as server %u",
                 peer, h.kind, (unsigned)h.round, h.sender);
    }
    if (err == MS_OK && mb->msg[h.round][h.sender - 1] == NULL) {
        uint8_t *copy = malloc(plen ? plen : 1);
        if (copy == NULL) {
            err = MS_ERR_NOMEM;
        } else {
            memcpy(copy, payload, plen);
            mb->msg[h.round][h.sender - 1] = copy;
            mb->len[h.round][h.sender - 1] = plen;
            pthread_cond_broadcast(&mb->cv);
        }
    }
    pthread_mutex_unlock(&mb->mu);
    if (err != MS_OK) {
        char text[300];
        snprintf(text, sizeof text, "rejected by server %u: %s", mb->me,
                 why[0] ? why : ms_strerror(err));
        answer(resp, 409, text);
        return;
    }
    answer(resp, 200, "ok");
}

static void mailbox_free(mailbox *mb)
{
    for (unsigned r = 0; r <= MAX_ROUNDS; r++)
        for (unsigned i = 0; i < MS_PEER_MAX; i++) {
            if (mb->msg[r][i] != NULL)
                ms_wipe(mb->msg[r][i], mb->len[r][i]);
            free(mb->msg[r][i]);
            mb->msg[r][i] = NULL;
        }
}

/* ---- the round engine ------------------------------------------------------------------ */

typedef struct proto_ops {
    unsigned rounds;
    ms_err (*bcast)(void *obj, unsigned round, uint8_t *out, size_t cap, size_t *len);
    ms_err (*priv)(void *obj, unsigned round, unsigned to, uint8_t *out, size_t cap, size_t *len);
    int (*has_priv)(unsigned round);
    ms_err (*recv)(void *obj, unsigned round, unsigned from, const uint8_t *msg, size_t len,
                   const uint8_t *priv, size_t priv_len);
    ms_err (*end)(void *obj, unsigned round, char *detail, size_t cap);
} proto_ops;

typedef struct node {
    const ms_peer_table *table;
    unsigned me;
    uint8_t seed[MS_PEER_KEY_BYTES];
    uint8_t hpke_sk[MS_HPKE_SK_BYTES];
    char cert[MS_TKMS_PATH_MAX], key[MS_TKMS_PATH_MAX];
    unsigned timeout_ms;
    mailbox *mb;
    EVP_MD_CTX *transcript;
} node;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* info of a private blob: binds it to session, sender, recipient and round */
static size_t private_info(uint8_t *info, const uint8_t *session, unsigned from, unsigned to,
                           unsigned round)
{
    static const char label[] = "mikeysakke tkms private";
    memcpy(info, label, sizeof label); /* with its NUL */
    size_t o = sizeof label;
    memcpy(info + o, session, MS_PEER_SESSION_BYTES);
    o += MS_PEER_SESSION_BYTES;
    info[o++] = (uint8_t)from;
    info[o++] = (uint8_t)to;
    put32(info + o, round);
    return o + 4;
}

/* Posts one signed message to server j, retrying while it is not up yet. */
static ms_err post_to(node *nd, unsigned j, unsigned round, const uint8_t *msg, size_t len,
                      uint64_t deadline, char *detail, size_t detail_cap)
{
    ms_peer_link link;
    ms_err err = ms_peer_table_link(nd->table, j, nd->cert, nd->key, &link);
    if (err != MS_OK)
        return err;
    link.timeout_ms = nd->timeout_ms < 30000 ? nd->timeout_ms : 30000;
    for (;;) {
        ms_peer_response resp = {0};
        char why[256] = "";
        err = ms_peer_post(&link, MSG_PATH, msg, len, &resp, why, sizeof why);
        if (err == MS_OK) {
            ms_peer_response_free(&resp);
            return MS_OK;
        }
        /* not up yet, or the connection dropped: again (a message that did arrive is
         * answered "already received") */
        if ((err == MS_ERR_UNREACHABLE || err == MS_ERR_IO) && now_ms() < deadline) {
            ms_peer_response_free(&resp);
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        if (err == MS_ERR_HTTP && resp.body != NULL)
            ms_detail_set(detail, detail_cap, "round %u: server %u (%s) answered %ld: %.200s",
                          round, j, link.url, resp.status, (const char *)resp.body);
        else
            ms_detail_set(detail, detail_cap, "round %u: server %u (%s): %s", round, j,
                          link.url, why[0] ? why : ms_strerror(err));
        ms_peer_response_free(&resp);
        return err;
    }
}

/* Sends round r's messages: the broadcast blob to everyone, each its private blob. */
static ms_err send_round(node *nd, unsigned kind, unsigned round, const uint8_t *bc,
                         size_t bl, void *obj, const proto_ops *ops, size_t cap,
                         uint64_t deadline, char *detail, size_t detail_cap)
{
    unsigned n = nd->table->n;
    uint8_t *priv = malloc(cap), *payload = malloc(cap * 2 + 64), *msg = malloc(cap * 2 + 256);
    ms_err err = priv != NULL && payload != NULL && msg != NULL ? MS_OK : MS_ERR_NOMEM;
    for (unsigned j = 1; j <= n && err == MS_OK; j++) {
        if (j == nd->me)
            continue;
        size_t o = 0;
        put32(payload, (uint32_t)bl);
        memcpy(payload + 4, bc, bl);
        o = 4 + bl;
        size_t pl = 0, sealed = 0;
        if (ops != NULL && ops->has_priv(round)) {
            err = ops->priv(obj, round, j, priv, cap, &pl);
            uint8_t info[128];
            size_t il = private_info(info, nd->mb->session, nd->me, j, round);
            if (err == MS_OK)
                err = ms_hpke_seal(nd->table->server[j - 1].hpke_pub, info, il, NULL, 0, priv,
                                   pl, payload + o + 4, cap + MS_HPKE_OVERHEAD, &sealed, NULL);
            ms_wipe(priv, cap);
        }
        put32(payload + o, (uint32_t)sealed);
        o += 4 + sealed;
        ms_peer_msg_hdr h = {.sender = (uint8_t)nd->me, .recipient = (uint8_t)j,
                             .kind = (uint16_t)kind, .round = round};
        memcpy(h.session, nd->mb->session, sizeof h.session);
        size_t ml = 0;
        if (err == MS_OK)
            err = ms_peer_msg_sign(nd->seed, &h, payload, o, msg, cap * 2 + 256, &ml);
        if (err == MS_OK)
            err = post_to(nd, j, round, msg, ml, deadline, detail, detail_cap);
        else if (detail != NULL && detail[0] == '\0')
            ms_detail_set(detail, detail_cap, "round %u: preparing the message to server %u",
                          round, j);
    }
    free(priv);
    free(payload);
    free(msg);
    return err;
}

/* Waits until every other server's round-r message is in the mailbox, or the deadline. */
static ms_err wait_round(node *nd, unsigned round, uint64_t deadline, char *detail,
                         size_t detail_cap)
{
    mailbox *mb = nd->mb;
    pthread_mutex_lock(&mb->mu);
    for (;;) {
        char missing[200] = "";
        size_t ml = 0;
        for (unsigned j = 1; j <= mb->n; j++)
            if (j != mb->me && mb->msg[round][j - 1] == NULL)
                ml += (size_t)snprintf(missing + ml, sizeof missing - ml, "%s%u",
                                       ml ? ", " : "", j);
        if (ml == 0)
            break;
        uint64_t now = now_ms();
        if (now >= deadline) {
            pthread_mutex_unlock(&mb->mu);
            return ms_detail_fail(MS_ERR_THRESHOLD_ROUND, detail, detail_cap,
                                  "round %u: no message from server %s within %u s", round,
                                  missing, nd->timeout_ms / 1000);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&mb->cv, &mb->mu, &ts);
    }
    pthread_mutex_unlock(&mb->mu);
    return MS_OK;
}

/* Splits a payload into its broadcast and sealed private parts. */
static int split(const uint8_t *p, size_t len, const uint8_t **bc, size_t *bl,
                 const uint8_t **pv, size_t *pl)
{
    if (len < 8)
        return 0;
    *bl = get32(p);
    if (*bl > len - 8)
        return 0;
    *bc = p + 4;
    *pl = get32(p + 4 + *bl);
    if (*pl != len - 8 - *bl)
        return 0;
    *pv = p + 8 + *bl;
    return 1;
}

static void hash_blob(EVP_MD_CTX *md, unsigned round, unsigned from, const uint8_t *p,
                      size_t len)
{
    uint8_t hdr[9];
    put32(hdr, round);
    hdr[4] = (uint8_t)from;
    put32(hdr + 5, (uint32_t)len);
    EVP_DigestUpdate(md, hdr, sizeof hdr);
    EVP_DigestUpdate(md, p, len);
}

/* Runs every round of a protocol with the other servers. */
static ms_err run_rounds(node *nd, unsigned kind, const proto_ops *ops, void *obj, size_t cap,
                         char *detail, size_t detail_cap)
{
    uint8_t *bc = malloc(cap), *priv = malloc(cap);
    ms_err err = bc != NULL && priv != NULL ? MS_OK : MS_ERR_NOMEM;
    for (unsigned r = 1; r <= ops->rounds && err == MS_OK; r++) {
        uint64_t deadline = now_ms() + nd->timeout_ms;
        size_t bl = 0;
        err = ops->bcast(obj, r, bc, cap, &bl);
        if (err != MS_OK) {
            ms_detail_set(detail, detail_cap, "round %u: making this server's message", r);
            break;
        }
        err = send_round(nd, kind, r, bc, bl, obj, ops, cap, deadline, detail, detail_cap);
        if (err == MS_OK)
            err = wait_round(nd, r, deadline, detail, detail_cap);
        for (unsigned j = 1; j <= nd->table->n && err == MS_OK; j++) {
            if (j == nd->me) {
                hash_blob(nd->transcript, r, j, bc, bl);
                continue;
            }
            const uint8_t *mb, *pv;
            size_t ml, pvl;
            if (!split(nd->mb->msg[r][j - 1], nd->mb->len[r][j - 1], &mb, &ml, &pv, &pvl)) {
                err = ms_detail_fail(MS_ERR_PEER_MESSAGE, detail, detail_cap,
                                     "round %u: server %u's message is malformed", r, j);
                break;
            }
            hash_blob(nd->transcript, r, j, mb, ml);
            size_t pl = 0;
            const uint8_t *pp = NULL;
            if (ops->has_priv(r)) {
                uint8_t info[128];
                size_t il = private_info(info, nd->mb->session, j, nd->me, r);
                /* a blob that does not open counts as absent: the protocol then
                 * complains about its sender */
                if (ms_hpke_open(nd->hpke_sk, info, il, NULL, 0, pv, pvl, priv, cap, &pl) ==
                    MS_OK)
                    pp = priv;
                else
                    pl = 0;
            }
            /* a malformed blob counts as absent too (the protocol's rule) */
            (void)ops->recv(obj, r, j, mb, ml, pp, pl);
            ms_wipe(priv, cap);
        }
        if (err == MS_OK) {
            char why[200] = "";
            err = ops->end(obj, r, why, sizeof why);
            if (err != MS_OK)
                ms_detail_set(detail, detail_cap, "round %u: %s", r, why);
        }
    }
    if (priv != NULL)
        ms_wipe(priv, cap);
    free(bc);
    free(priv);
    return err;
}

/* The confirmation round: every server's hash of the transcript and of the result must be
 * this server's. */
static ms_err confirm(node *nd, unsigned kind, unsigned round, const uint8_t digest[64],
                      char *detail, size_t detail_cap)
{
    uint64_t deadline = now_ms() + nd->timeout_ms;
    ms_err err = send_round(nd, kind, round, digest, 64, NULL, NULL, 256, deadline, detail,
                            detail_cap);
    if (err == MS_OK)
        err = wait_round(nd, round, deadline, detail, detail_cap);
    if (err != MS_OK)
        return err;
    char differ[200] = "";
    size_t dl = 0;
    for (unsigned j = 1; j <= nd->table->n; j++) {
        const uint8_t *bc, *pv;
        size_t bl, pl;
        if (j == nd->me)
            continue;
        if (!split(nd->mb->msg[round][j - 1], nd->mb->len[round][j - 1], &bc, &bl, &pv, &pl) ||
            bl != 64 || memcmp(bc, digest, 64) != 0)
            dl += (size_t)snprintf(differ + dl, sizeof differ - dl, "%s%u", dl ? ", " : "", j);
    }
    if (dl > 0)
        return ms_detail_fail(MS_ERR_THRESHOLD_ROUND, detail, detail_cap,
                              "server %s reached another transcript or result than this "
                              "server: nothing is kept",
                              differ);
    return MS_OK;
}

/* ---- key generation ------------------------------------------------------------------ */

static ms_err dkg_bcast(void *o, unsigned r, uint8_t *out, size_t cap, size_t *len)
{
    return ms_tkms_dkg_broadcast(o, r, out, cap, len);
}
static ms_err dkg_priv(void *o, unsigned r, unsigned to, uint8_t *out, size_t cap, size_t *len)
{
    (void)r;
    return ms_tkms_dkg_private(o, to, out, cap, len);
}
static int dkg_has_priv(unsigned r)
{
    return r == 1;
}
static ms_err dkg_recv(void *o, unsigned r, unsigned from, const uint8_t *msg, size_t len,
                       const uint8_t *priv, size_t plen)
{
    return ms_tkms_dkg_receive(o, r, from, msg, len, priv, plen);
}
static ms_err dkg_end(void *o, unsigned r, char *d, size_t cap)
{
    return ms_tkms_dkg_end_round(o, r, d, cap);
}
static const proto_ops dkg_ops = {MS_TKMS_DKG_ROUNDS, dkg_bcast, dkg_priv, dkg_has_priv,
                                  dkg_recv, dkg_end};

/* Reads this server's keys and checks they are those of its index in the table. */
static ms_err node_open(node *nd, const char *dir, const ms_peer_table *table, char *detail,
                        size_t detail_cap)
{
    char path[MS_TKMS_PATH_MAX];
    memset(nd, 0, sizeof *nd);
    nd->table = table;
    join(path, dir, "index");
    FILE *f = fopen(path, "r");
    unsigned idx = 0;
    if (f == NULL || fscanf(f, "%u", &idx) != 1 || idx < 1) {
        if (f != NULL)
            fclose(f);
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap,
                              "cannot read %s (run `kms threshold keygen` first)", path);
    }
    fclose(f);
    if (idx > table->n)
        return ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap,
                              "this server is server %u but the table has %u servers", idx,
                              table->n);
    nd->me = idx;
    join(path, dir, "sign.key");
    ms_err err = ms_peer_key_read(path, nd->seed, detail, detail_cap);
    join(path, dir, "hpke.key");
    if (err == MS_OK)
        err = ms_peer_key_read(path, nd->hpke_sk, detail, detail_cap);
    if (err != MS_OK)
        return err;
    join(nd->cert, dir, "tls.crt");
    join(nd->key, dir, "tls.key");
    uint8_t pub[32], pin[MS_PEER_PIN_BYTES];
    const ms_peer_entry *e = &table->server[idx - 1];
    if (ms_peer_public(nd->seed, pub) != MS_OK || memcmp(pub, e->sign_pub, 32) != 0)
        return ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap,
                              "the table's message key of server %u is not this server's",
                              idx);
    if (ms_hpke_public(nd->hpke_sk, pub) != MS_OK || memcmp(pub, e->hpke_pub, 32) != 0)
        return ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap,
                              "the table's HPKE key of server %u is not this server's", idx);
    err = ms_peer_tls_pin(nd->cert, pin, detail, detail_cap);
    if (err == MS_OK && memcmp(pin, e->tls_pin, sizeof pin) != 0)
        return ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap,
                              "the table's TLS pin of server %u is not this server's", idx);
    return err;
}

static void node_close(node *nd)
{
    ms_wipe(nd->seed, sizeof nd->seed);
    ms_wipe(nd->hpke_sk, sizeof nd->hpke_sk);
}

/* session = SHA-256(label || kind || the table's text form || extra) */
static ms_err session_id(uint8_t out[32], const ms_peer_table *table, unsigned kind,
                         const uint8_t *extra, size_t extra_len)
{
    char *text = malloc(MS_PEER_TABLE_MAX);
    size_t tl = 0;
    if (text == NULL)
        return MS_ERR_NOMEM;
    ms_err err = ms_peer_table_format(table, text, MS_PEER_TABLE_MAX, &tl);
    uint8_t k = (uint8_t)kind;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (err == MS_OK &&
        (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
         EVP_DigestUpdate(md, "mikeysakke tkms session", 24) != 1 ||
         EVP_DigestUpdate(md, &k, 1) != 1 || EVP_DigestUpdate(md, text, tl) != 1 ||
         (extra_len > 0 && EVP_DigestUpdate(md, extra, extra_len) != 1) ||
         EVP_DigestFinal_ex(md, out, NULL) != 1))
        err = MS_ERR_INTERNAL;
    EVP_MD_CTX_free(md);
    free(text);
    return err;
}

/* Starts the peer server on this server's URL and the mailbox behind it. */
static ms_err start_server(node *nd, mailbox *mb, unsigned kind, unsigned rounds,
                           ms_peer_server **srv, ms_peer_pins *pins, char *detail,
                           size_t detail_cap)
{
    char host[256];
    uint16_t port;
    const ms_peer_entry *e = &nd->table->server[nd->me - 1];
    if (parse_url(e->url, host, sizeof host, &port) != MS_OK)
        return ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap,
                              "server %u's URL is not https://HOST:PORT", nd->me);
    mb->me = nd->me;
    mb->n = nd->table->n;
    mb->kind = kind;
    mb->rounds = rounds;
    ms_peer_table_keys(nd->table, &mb->keys);
    ms_peer_guard_init(&mb->guard, mb->session);
    ms_peer_table_pins(nd->table, pins);
    nd->mb = mb;
    ms_peer_server_config cfg = {0};
    cfg.bind_addr = host;
    cfg.port = port;
    cfg.cert_file = nd->cert;
    cfg.key_file = nd->key;
    cfg.peers = pins;
    cfg.max_body = 64u << 20;
    cfg.name = "mikeysakke_tkms";
    char why[200] = "";
    cfg.detail = why;
    cfg.detail_cap = sizeof why;
    ms_err err = ms_peer_server_start(srv, &cfg, on_message, mb);
    if (err != MS_OK)
        ms_detail_set(detail, detail_cap, "starting this server (%u) on %s: %s", nd->me,
                      e->url, why[0] ? why : ms_strerror(err));
    return err;
}

/* SHA-256 of the public result's fields (not of the struct: no padding hashed) */
static ms_err result_hash(const ms_tkms_public *pub, uint8_t out[32])
{
    uint8_t hdr[12];
    put32(hdr, pub->n);
    put32(hdr + 4, pub->t);
    put32(hdr + 8, pub->qual);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, hdr, sizeof hdr) == 1 &&
             EVP_DigestUpdate(md, pub->Z, sizeof pub->Z) == 1 &&
             EVP_DigestUpdate(md, pub->kpak, sizeof pub->kpak) == 1 &&
             EVP_DigestUpdate(md, pub->Zj, sizeof pub->Zj[0] * pub->n) == 1 &&
             EVP_DigestUpdate(md, pub->kpakj, sizeof pub->kpakj[0] * pub->n) == 1 &&
             EVP_DigestFinal_ex(md, out, NULL) == 1;
    EVP_MD_CTX_free(md);
    return ok ? MS_OK : MS_ERR_INTERNAL;
}

/* Stops the peer server after a grace period: a peer whose last message arrived may not
 * have had the answer yet, and posts it again when the connection drops (see post_to). */
static void stop_server(ms_peer_server *srv)
{
    struct timespec ts = {3, 0};
    nanosleep(&ts, NULL);
    ms_peer_server_stop(srv);
}

static ms_err seal_shares(const char *path, const ms_tkms_server *s, const ms_tkms_public *pub,
                          unsigned me, const ms_tkms_init_params *p, char *detail,
                          size_t detail_cap)
{
    ms_kms_secrets *sec = NULL;
    ms_err err = ms_kms_secrets_new(&sec);
    if (err == MS_OK)
        err = ms_kms_secrets_generate(sec, 0, NULL);
    if (err == MS_OK) {
        ms_kms_generation *g = &sec->gen[0];
        tkms_share_bytes(s, g->z, g->ksak);
        memcpy(g->Z, pub->Zj[me - 1], sizeof g->Z);
        memcpy(g->kpak, pub->kpakj[me - 1], sizeof g->kpak);
        ms_seal_params sp = {0};
        sp.method = MS_SEAL_PASSPHRASE;
        sp.passphrase = p->passphrase;
        sp.passphrase_len = p->passphrase_len;
        sp.scrypt_log2_n = p->scrypt_log2_n;
        err = ms_seal_write(path, sec, &sp, NULL, NULL, detail, detail_cap);
    }
    ms_kms_secrets_free(sec);
    return err;
}

ms_err ms_tkms_node_init(const ms_tkms_init_params *p, ms_tkms_public *pub,
                         uint8_t transcript[32], char *detail, size_t detail_cap)
{
    if (p == NULL || p->dir == NULL || p->peers_file == NULL || pub == NULL ||
        transcript == NULL || p->passphrase == NULL || p->passphrase_len == 0)
        return MS_ERR_ARG;
    char path[MS_TKMS_PATH_MAX];
    join(path, p->dir, "public.txt");
    if (access(path, F_OK) == 0)
        return ms_detail_fail(MS_ERR_EXISTS, detail, detail_cap,
                              "%s already holds the result of a ceremony", p->dir);
    ms_peer_table *table = calloc(1, sizeof *table);
    mailbox *mb = calloc(1, sizeof *mb);
    node nd;
    memset(&nd, 0, sizeof nd);
    ms_tkms_server *s = NULL;
    ms_peer_server *srv = NULL;
    ms_peer_pins pins;
    ms_err err = table != NULL && mb != NULL ? MS_OK : MS_ERR_NOMEM;
    if (err == MS_OK)
        err = ms_peer_table_read(p->peers_file, table, detail, detail_cap);
    if (err == MS_OK)
        err = node_open(&nd, p->dir, table, detail, detail_cap);
    if (err == MS_OK && table->n > MS_TKMS_MAX_N)
        err = ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap,
                             "a threshold KMS has at most %d servers", MS_TKMS_MAX_N);
    nd.timeout_ms = p->timeout_ms ? p->timeout_ms : 120000;
    nd.transcript = EVP_MD_CTX_new();
    if (err == MS_OK && (nd.transcript == NULL ||
                         EVP_DigestInit_ex(nd.transcript, EVP_sha256(), NULL) != 1))
        err = MS_ERR_INTERNAL;
    if (mb != NULL) {
        pthread_mutex_init(&mb->mu, NULL);
        pthread_cond_init(&mb->cv, NULL);
    }
    if (err == MS_OK)
        err = session_id(mb->session, table, KIND_DKG, NULL, 0);
    if (err == MS_OK)
        err = start_server(&nd, mb, KIND_DKG, MS_TKMS_DKG_ROUNDS + 1, &srv, &pins, detail,
                           detail_cap);
    if (err == MS_OK)
        err = ms_tkms_server_new(&s, table->n, table->t, nd.me, NULL);
    if (err == MS_OK)
        err = run_rounds(&nd, KIND_DKG, &dkg_ops, s, ms_tkms_msg_max(table->n, table->t, 0),
                         detail, detail_cap);
    if (err == MS_OK)
        err = ms_tkms_server_public(s, pub);
    uint8_t digest[64];
    if (err == MS_OK) {
        /* the digest confirmed: the transcript's hash and the result's */
        if (EVP_DigestFinal_ex(nd.transcript, digest, NULL) != 1 ||
            result_hash(pub, digest + 32) != MS_OK)
            err = MS_ERR_INTERNAL;
        memcpy(transcript, digest, 32);
    }
    if (err == MS_OK)
        err = confirm(&nd, KIND_DKG, MS_TKMS_DKG_ROUNDS + 1, digest, detail, detail_cap);
    if (srv != NULL)
        stop_server(srv);
    if (err == MS_OK) {
        join(path, p->dir, "secrets.sealed");
        err = seal_shares(path, s, pub, nd.me, p, detail, detail_cap);
    }
    if (err == MS_OK) {
        join(path, p->dir, "peers.txt");
        (void)unlink(path); /* a copy of an earlier failed run's table */
        err = ms_peer_table_write(path, table, detail, detail_cap);
    }
    if (err == MS_OK) {
        join(path, p->dir, "public.txt");
        err = public_write(path, pub, nd.me, transcript, detail, detail_cap);
    }
    ms_tkms_server_free(s);
    node_close(&nd);
    EVP_MD_CTX_free(nd.transcript);
    if (mb != NULL) {
        mailbox_free(mb);
        pthread_mutex_destroy(&mb->mu);
        pthread_cond_destroy(&mb->cv);
    }
    free(mb);
    free(table);
    return err;
}

/* ---- the monthly batch ---------------------------------------------------------------- */

#define KIND_BATCH 2

static ms_err b_bcast(void *o, unsigned r, uint8_t *out, size_t cap, size_t *len)
{
    return ms_tkms_batch_broadcast(o, r, out, cap, len);
}
static ms_err b_priv(void *o, unsigned r, unsigned to, uint8_t *out, size_t cap, size_t *len)
{
    return ms_tkms_batch_private(o, r, to, out, cap, len);
}
static int b_has_priv(unsigned r)
{
    return r == 1 || r == 3;
}
static ms_err b_recv(void *o, unsigned r, unsigned from, const uint8_t *msg, size_t len,
                     const uint8_t *priv, size_t plen)
{
    return ms_tkms_batch_receive(o, r, from, msg, len, priv, plen);
}
static ms_err b_end(void *o, unsigned r, char *d, size_t cap)
{
    return ms_tkms_batch_end_round(o, r, d, cap);
}
static const proto_ops batch_ops = {MS_TKMS_BATCH_ROUNDS, b_bcast, b_priv, b_has_priv, b_recv,
                                    b_end};

size_t ms_tkms_record_encode(const ms_tkms_record *r, uint8_t *out)
{
    size_t o = 0;
    out[o++] = (uint8_t)r->t;
    for (int k = 7; k >= 0; k--)
        out[o++] = (uint8_t)(r->d >> (8 * k));
    memcpy(out + o, r->sid, 32);
    o += 32;
    memcpy(out + o, r->r0, sizeof r->r0);
    o += sizeof r->r0;
    memcpy(out + o, r->pvt, sizeof r->pvt);
    o += sizeof r->pvt;
    for (unsigned k = 0; k <= r->t && k <= MS_TKMS_MAX_T; k++) {
        memcpy(out + o, r->uc[k], sizeof r->uc[k]);
        o += sizeof r->uc[k];
        memcpy(out + o, r->vc[k], sizeof r->vc[k]);
        o += sizeof r->vc[k];
    }
    return o;
}

ms_err ms_tkms_record_decode(ms_tkms_record *r, const uint8_t *in, size_t len, size_t *used)
{
    memset(r, 0, sizeof *r);
    size_t fixed = 1 + 8 + 32 + sizeof r->r0 + sizeof r->pvt, per = sizeof r->uc[0] + sizeof r->vc[0];
    if (len < fixed || in[0] < 1 || in[0] > MS_TKMS_MAX_T || len < fixed + (in[0] + 1u) * per)
        return MS_ERR_BAD_ENCODING;
    size_t o = 0;
    r->t = in[o++];
    for (int k = 0; k < 8; k++)
        r->d = r->d << 8 | in[o++];
    memcpy(r->sid, in + o, 32);
    o += 32;
    memcpy(r->r0, in + o, sizeof r->r0);
    o += sizeof r->r0;
    memcpy(r->pvt, in + o, sizeof r->pvt);
    o += sizeof r->pvt;
    for (unsigned k = 0; k <= r->t; k++) {
        memcpy(r->uc[k], in + o, sizeof r->uc[k]);
        o += sizeof r->uc[k];
        memcpy(r->vc[k], in + o, sizeof r->vc[k]);
        o += sizeof r->vc[k];
    }
    *used = o;
    return MS_OK;
}

/* AES-256-GCM: nonce (12) || ciphertext || tag (16), aad bound. */
static ms_err gcm(int enc, const uint8_t key[32], const uint8_t *aad, size_t aad_len,
                  const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ok = c != NULL, l = 0;
    uint8_t nonce[12];
    const uint8_t *body = in;
    size_t body_len = in_len;
    if (enc) {
        ok = ok && ms_rng_fill(NULL, nonce, sizeof nonce) == MS_OK;
        memcpy(out, nonce, 12);
    } else {
        ok = ok && in_len >= 28;
        if (ok) {
            memcpy(nonce, in, 12);
            body = in + 12;
            body_len = in_len - 28;
        }
    }
    uint8_t *dst = enc ? out + 12 : out;
    ok = ok && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce, enc) == 1 &&
         EVP_CipherUpdate(c, NULL, &l, aad, (int)aad_len) == 1 &&
         EVP_CipherUpdate(c, dst, &l, body, (int)body_len) == 1;
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(body + body_len)) == 1;
    int l2 = 0;
    ok = ok && EVP_CipherFinal_ex(c, dst + l, &l2) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + body_len) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        if (!enc)
            ms_wipe(out, body_len);
        return enc ? MS_ERR_INTERNAL : MS_ERR_DECRYPT;
    }
    *out_len = enc ? in_len + 28 : body_len;
    return MS_OK;
}

static int period_ok(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'A' && p[i] <= 'Z') ||
              (p[i] >= 'a' && p[i] <= 'z') || p[i] == '-'))
            return 0;
    return 1;
}

/* The RFC 6509 identifier: period, NUL, URI, NUL. */
static size_t identifier(uint8_t *out, size_t cap, const char *period, const char *uri)
{
    size_t pl = strlen(period), ul = strlen(uri);
    if (pl + ul + 2 > cap)
        return 0;
    memcpy(out, period, pl + 1);
    memcpy(out + pl + 1, uri, ul + 1);
    return pl + ul + 2;
}

/* Unseals this server's secrets (generation 0: z_i, KSAK_i; the store key). */
static ms_err unseal_secrets(const char *dir, const uint8_t *pass, size_t pass_len,
                             ms_kms_secrets **out, char *detail, size_t detail_cap)
{
    char path[MS_TKMS_PATH_MAX];
    join(path, dir, "secrets.sealed");
    ms_unseal *u = NULL;
    ms_err err = ms_unseal_open(&u, path, detail, detail_cap);
    if (err == MS_OK && ms_unseal_method(u) != MS_SEAL_PASSPHRASE)
        err = ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "%s is not passphrase-sealed", path);
    if (err == MS_OK) {
        err = ms_unseal_passphrase(u, out, pass, pass_len);
        if (err != MS_OK)
            ms_detail_set(detail, detail_cap, "%s: %s", path, ms_unseal_detail(u));
    }
    ms_unseal_free(u);
    return err;
}

static ms_err record_hash(EVP_MD_CTX *md, const ms_tkms_record *r)
{
    uint8_t buf[1 + 8 + 32 + MS_SAKKE_POINT_BYTES + MS_ECCSI_POINT_BYTES +
                (MS_TKMS_MAX_T + 1) * (MS_SAKKE_POINT_BYTES + MS_ECCSI_POINT_BYTES)];
    size_t l = ms_tkms_record_encode(r, buf);
    return EVP_DigestUpdate(md, buf, l) == 1 ? MS_OK : MS_ERR_INTERNAL;
}

#define REC_MAX (1 + 8 + 32 + MS_SAKKE_POINT_BYTES + MS_ECCSI_POINT_BYTES + \
                 (MS_TKMS_MAX_T + 1) * (MS_SAKKE_POINT_BYTES + MS_ECCSI_POINT_BYTES))
#define ID_MAX 1024

/* Writes batch-P.sealed (per identity: id, u_j, SSK_j, under the store key) and
 * batch-P.records (per identity: id, public record). Entry: u16 id length | id | record,
 * and in the sealed file u | SSK after the id. */
static ms_err batch_write(const char *dir, const char *period, const ms_tkms_batch *b,
                          const uint8_t *const *ids, const size_t *id_lens, size_t count,
                          const uint8_t store_key[32], char *detail, size_t detail_cap)
{
    size_t per = 2 + ID_MAX + REC_MAX + MS_SAKKE_SECRET_BYTES + MS_ECCSI_SCALAR_BYTES;
    uint8_t *sec = malloc(count * per + 64), *pubf = malloc(count * per + 64),
            *sealed = malloc(count * per + 128);
    ms_err err = sec && pubf && sealed ? MS_OK : MS_ERR_NOMEM;
    size_t so = 0, po = 0;
    static const char shdr[] = "mikeysakke-tkms-shares 1\n", phdr[] = "mikeysakke-tkms-records 1\n";
    if (err == MS_OK) {
        memcpy(pubf, phdr, sizeof phdr - 1);
        po = sizeof phdr - 1;
    }
    for (size_t i = 0; i < count && err == MS_OK; i++) {
        ms_tkms_share sh;
        ms_tkms_record rec;
        err = ms_tkms_issue(b, ids[i], id_lens[i], &sh, &rec);
        if (err != MS_OK)
            break;
        uint8_t hdr[2] = {(uint8_t)(id_lens[i] >> 8), (uint8_t)id_lens[i]};
        memcpy(sec + so, hdr, 2);
        memcpy(sec + so + 2, ids[i], id_lens[i]);
        so += 2 + id_lens[i];
        memcpy(sec + so, sh.u, sizeof sh.u);
        so += sizeof sh.u;
        memcpy(sec + so, sh.ssk, sizeof sh.ssk);
        so += sizeof sh.ssk;
        ms_wipe(&sh, sizeof sh);
        memcpy(pubf + po, hdr, 2);
        memcpy(pubf + po + 2, ids[i], id_lens[i]);
        po += 2 + id_lens[i];
        po += ms_tkms_record_encode(&rec, pubf + po);
    }
    char path[MS_TKMS_PATH_MAX], name[64];
    size_t sl = 0;
    if (err == MS_OK) {
        memcpy(sealed, shdr, sizeof shdr - 1);
        err = gcm(1, store_key, (const uint8_t *)period, strlen(period), sec, so,
                  sealed + sizeof shdr - 1, &sl);
    }
    snprintf(name, sizeof name, "batch-%s.sealed", period);
    join(path, dir, name);
    if (err == MS_OK)
        err = ms_peer_file_create(path, sealed, sizeof shdr - 1 + sl, true, detail, detail_cap);
    snprintf(name, sizeof name, "batch-%s.records", period);
    join(path, dir, name);
    if (err == MS_OK)
        err = ms_peer_file_create(path, pubf, po, false, detail, detail_cap);
    if (sec != NULL)
        ms_wipe(sec, count * per + 64);
    free(sec);
    free(pubf);
    free(sealed);
    return err;
}

ms_err ms_tkms_node_batch(const ms_tkms_batch_params *p, uint8_t digest_out[32], char *detail,
                          size_t detail_cap)
{
    if (p == NULL || p->dir == NULL || p->peers_file == NULL || p->period == NULL ||
        p->users == NULL || p->count == 0 || p->passphrase == NULL)
        return MS_ERR_ARG;
    if (!period_ok(p->period))
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                              "the period must be 1 to 32 letters, digits or '-'");
    char path[MS_TKMS_PATH_MAX], name[64];
    snprintf(name, sizeof name, "batch-%s.records", p->period);
    join(path, p->dir, name);
    if (access(path, F_OK) == 0)
        return ms_detail_fail(MS_ERR_EXISTS, detail, detail_cap,
                              "%s already holds the batch of period %s", p->dir, p->period);
    ms_peer_table *table = calloc(1, sizeof *table);
    mailbox *mb = calloc(1, sizeof *mb);
    uint8_t **ids = calloc(p->count, sizeof *ids);
    size_t *id_lens = calloc(p->count, sizeof *id_lens);
    node nd;
    memset(&nd, 0, sizeof nd);
    ms_tkms_server *s = NULL;
    ms_tkms_batch *b = NULL;
    ms_kms_secrets *sec = NULL;
    ms_peer_server *srv = NULL;
    ms_peer_pins pins;
    ms_tkms_public pub;
    unsigned pidx = 0;
    uint8_t dkg_transcript[32];
    ms_err err = table && mb && ids && id_lens ? MS_OK : MS_ERR_NOMEM;
    if (mb != NULL) {
        pthread_mutex_init(&mb->mu, NULL);
        pthread_cond_init(&mb->cv, NULL);
    }
    for (size_t i = 0; i < p->count && err == MS_OK; i++) {
        ids[i] = malloc(ID_MAX);
        id_lens[i] = ids[i] != NULL ? identifier(ids[i], ID_MAX, p->period, p->users[i]) : 0;
        if (id_lens[i] == 0)
            err = ms_detail_fail(MS_ERR_IDENTITY, detail, detail_cap, "user %zu: too long",
                                 i + 1);
    }
    if (err == MS_OK)
        err = ms_peer_table_read(p->peers_file, table, detail, detail_cap);
    if (err == MS_OK)
        err = node_open(&nd, p->dir, table, detail, detail_cap);
    join(path, p->dir, "public.txt");
    if (err == MS_OK)
        err = ms_tkms_public_read(path, &pub, &pidx, dkg_transcript, detail, detail_cap);
    if (err == MS_OK && (pub.n != table->n || pub.t != table->t || pidx != nd.me))
        err = ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap,
                             "public.txt is not of this table and server");
    if (err == MS_OK)
        err = unseal_secrets(p->dir, p->passphrase, p->passphrase_len, &sec, detail,
                             detail_cap);
    if (err == MS_OK)
        err = ms_tkms_server_new(&s, table->n, table->t, nd.me, NULL);
    if (err == MS_OK && tkms_server_restore(s, &pub, sec->gen[0].z, sec->gen[0].ksak) != MS_OK)
        err = ms_detail_fail(MS_ERR_INVALID, detail, detail_cap,
                             "the sealed shares are not those behind public.txt");
    if (err == MS_OK) {
        char why[200] = "";
        err = ms_tkms_batch_new(&b, s, (const uint8_t *const *)ids, id_lens, p->count,
                                (uint32_t)((1u << table->n) - 1), why, sizeof why);
        if (err != MS_OK)
            ms_detail_set(detail, detail_cap, "%s", why);
    }
    /* the session binds the table, the key generation, the period and the identities:
     * servers given other users files do not talk */
    EVP_MD_CTX *sm = EVP_MD_CTX_new();
    uint8_t inputs[32];
    if (err == MS_OK &&
        (sm == NULL || EVP_DigestInit_ex(sm, EVP_sha256(), NULL) != 1 ||
         EVP_DigestUpdate(sm, dkg_transcript, 32) != 1))
        err = MS_ERR_INTERNAL;
    for (size_t i = 0; i < p->count && err == MS_OK; i++) {
        uint8_t l[4];
        put32(l, (uint32_t)id_lens[i]);
        if (EVP_DigestUpdate(sm, l, 4) != 1 || EVP_DigestUpdate(sm, ids[i], id_lens[i]) != 1)
            err = MS_ERR_INTERNAL;
    }
    if (err == MS_OK && EVP_DigestFinal_ex(sm, inputs, NULL) != 1)
        err = MS_ERR_INTERNAL;
    EVP_MD_CTX_free(sm);
    if (err == MS_OK)
        err = session_id(mb->session, table, KIND_BATCH, inputs, sizeof inputs);
    nd.timeout_ms = p->timeout_ms ? p->timeout_ms : 600000;
    nd.transcript = EVP_MD_CTX_new();
    if (err == MS_OK && (nd.transcript == NULL ||
                         EVP_DigestInit_ex(nd.transcript, EVP_sha256(), NULL) != 1))
        err = MS_ERR_INTERNAL;
    if (err == MS_OK)
        err = start_server(&nd, mb, KIND_BATCH, MS_TKMS_BATCH_ROUNDS + 1, &srv, &pins, detail,
                           detail_cap);
    if (err == MS_OK)
        err = run_rounds(&nd, KIND_BATCH, &batch_ops, b,
                         ms_tkms_msg_max(table->n, table->t, p->count), detail, detail_cap);
    uint8_t digest[64];
    if (err == MS_OK) {
        /* confirmed: the transcript's hash and the hash of every public record */
        EVP_MD_CTX *rm = EVP_MD_CTX_new();
        if (EVP_DigestFinal_ex(nd.transcript, digest, NULL) != 1 || rm == NULL ||
            EVP_DigestInit_ex(rm, EVP_sha256(), NULL) != 1)
            err = MS_ERR_INTERNAL;
        for (size_t i = 0; i < p->count && err == MS_OK; i++) {
            ms_tkms_share sh;
            ms_tkms_record rec;
            err = ms_tkms_issue(b, ids[i], id_lens[i], &sh, &rec);
            ms_wipe(&sh, sizeof sh);
            if (err == MS_OK)
                err = record_hash(rm, &rec);
        }
        if (err == MS_OK && EVP_DigestFinal_ex(rm, digest + 32, NULL) != 1)
            err = MS_ERR_INTERNAL;
        EVP_MD_CTX_free(rm);
        if (err == MS_OK)
            memcpy(digest_out, digest + 32, 32);
    }
    if (err == MS_OK)
        err = confirm(&nd, KIND_BATCH, MS_TKMS_BATCH_ROUNDS + 1, digest, detail, detail_cap);
    if (srv != NULL)
        stop_server(srv);
    if (err == MS_OK)
        err = batch_write(p->dir, p->period, b, (const uint8_t *const *)ids, id_lens, p->count,
                          sec->store_key, detail, detail_cap);
    ms_tkms_batch_free(b);
    ms_tkms_server_free(s);
    ms_kms_secrets_free(sec);
    node_close(&nd);
    EVP_MD_CTX_free(nd.transcript);
    if (mb != NULL) {
        mailbox_free(mb);
        pthread_mutex_destroy(&mb->mu);
        pthread_cond_destroy(&mb->cv);
    }
    for (size_t i = 0; ids != NULL && i < p->count; i++)
        free(ids[i]);
    free(ids);
    free(id_lens);
    free(mb);
    free(table);
    return err;
}

/* ---- issuance and the device ----------------------------------------------------------- */

#define KIND_SHARE MS_TKMS_KIND_SHARE

size_t ms_tkms_share_info(uint8_t *info, const uint8_t sid[32], unsigned index)
{
    static const char label[] = "mikeysakke tkms share";
    memcpy(info, label, sizeof label);
    memcpy(info + sizeof label, sid, 32);
    info[sizeof label + 32] = (uint8_t)index;
    return sizeof label + 33;
}

/* Finds id in a decoded list "u16 len | id | entry" with entries of `fixed` octets (0: a
 * record, its length from its encoding). */
static const uint8_t *find_entry(const uint8_t *p, size_t len, const uint8_t *id, size_t id_len,
                                 size_t fixed, size_t *entry_len)
{
    size_t o = 0;
    while (o + 2 <= len) {
        size_t l = (size_t)p[o] << 8 | p[o + 1];
        if (o + 2 + l > len)
            return NULL;
        const uint8_t *e = p + o + 2 + l;
        size_t el = fixed;
        if (fixed == 0) {
            ms_tkms_record r;
            if (ms_tkms_record_decode(&r, e, len - (o + 2 + l), &el) != MS_OK)
                return NULL;
        }
        if (o + 2 + l + el > len)
            return NULL;
        if (l == id_len && memcmp(p + o + 2, id, id_len) == 0) {
            *entry_len = el;
            return e;
        }
        o += 2 + l + el;
    }
    return NULL;
}

static ms_err read_all(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return MS_ERR_IO;
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    while (b != NULL) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        uint8_t *nb = realloc(b, cap * 2);
        if (nb == NULL) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    fclose(f);
    if (b == NULL)
        return MS_ERR_NOMEM;
    *out = b;
    *len = n;
    return MS_OK;
}

ms_err ms_tkms_node_share(const char *dir, const uint8_t *pass, size_t pass_len,
                          const char *period, const char *uri,
                          const uint8_t device_pub[MS_HPKE_PK_BYTES], const char *out_path,
                          char *detail, size_t detail_cap)
{
    if (dir == NULL || pass == NULL || period == NULL || uri == NULL || device_pub == NULL ||
        out_path == NULL)
        return MS_ERR_ARG;
    if (!period_ok(period))
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "the period is malformed");
    char path[MS_TKMS_PATH_MAX], name[64];
    uint8_t id[ID_MAX];
    size_t id_len = identifier(id, sizeof id, period, uri);
    if (id_len == 0)
        return ms_detail_fail(MS_ERR_IDENTITY, detail, detail_cap, "the URI is too long");
    ms_peer_table *table = calloc(1, sizeof *table);
    node nd;
    memset(&nd, 0, sizeof nd);
    ms_kms_secrets *sec = NULL;
    uint8_t *sealed = NULL, *shares = NULL, *records = NULL, *payload = NULL, *msg = NULL;
    size_t sealed_len = 0, records_len = 0, shares_len = 0;
    ms_err err = table != NULL ? MS_OK : MS_ERR_NOMEM;
    join(path, dir, "peers.txt");
    if (err == MS_OK)
        err = ms_peer_table_read(path, table, detail, detail_cap);
    if (err == MS_OK)
        err = node_open(&nd, dir, table, detail, detail_cap);
    if (err == MS_OK)
        err = unseal_secrets(dir, pass, pass_len, &sec, detail, detail_cap);
    snprintf(name, sizeof name, "batch-%s.sealed", period);
    join(path, dir, name);
    static const char shdr[] = "mikeysakke-tkms-shares 1\n", phdr[] = "mikeysakke-tkms-records 1\n";
    if (err == MS_OK && read_all(path, &sealed, &sealed_len) != MS_OK)
        err = ms_detail_fail(MS_ERR_IO, detail, detail_cap, "no batch for period %s (%s)",
                             period, path);
    if (err == MS_OK && (sealed_len < sizeof shdr - 1 + 28 ||
                         memcmp(sealed, shdr, sizeof shdr - 1) != 0 ||
                         (shares = malloc(sealed_len)) == NULL ||
                         gcm(0, sec->store_key, (const uint8_t *)period, strlen(period),
                             sealed + sizeof shdr - 1, sealed_len - (sizeof shdr - 1), shares,
                             &shares_len) != MS_OK))
        err = ms_detail_fail(MS_ERR_SEALED_FILE, detail, detail_cap, "%s does not open", path);
    snprintf(name, sizeof name, "batch-%s.records", period);
    join(path, dir, name);
    if (err == MS_OK && (read_all(path, &records, &records_len) != MS_OK ||
                         records_len < sizeof phdr - 1 ||
                         memcmp(records, phdr, sizeof phdr - 1) != 0))
        err = ms_detail_fail(MS_ERR_IO, detail, detail_cap, "cannot read %s", path);
    size_t sl = 0, rl = 0;
    const uint8_t *sh = NULL, *rec = NULL;
    if (err == MS_OK) {
        sh = find_entry(shares, shares_len, id, id_len,
                        MS_SAKKE_SECRET_BYTES + MS_ECCSI_SCALAR_BYTES, &sl);
        rec = find_entry(records + sizeof phdr - 1, records_len - (sizeof phdr - 1), id, id_len,
                         0, &rl);
        if (sh == NULL || rec == NULL)
            err = ms_detail_fail(MS_ERR_IDENTITY, detail, detail_cap,
                                 "%s is not in the batch of period %s", uri, period);
    }
    ms_tkms_record r;
    size_t used = 0;
    if (err == MS_OK)
        err = ms_tkms_record_decode(&r, rec, rl, &used);
    /* payload: u16 record length | record | HPKE(device, u || SSK) */
    size_t cap = 2 + rl + sl + MS_HPKE_OVERHEAD, pl = 0, ml = 0;
    payload = malloc(cap);
    msg = malloc(cap + MS_PEER_MSG_OVERHEAD);
    if (err == MS_OK && (payload == NULL || msg == NULL))
        err = MS_ERR_NOMEM;
    if (err == MS_OK) {
        payload[0] = (uint8_t)(rl >> 8);
        payload[1] = (uint8_t)rl;
        memcpy(payload + 2, rec, rl);
        uint8_t info[64];
        size_t il = ms_tkms_share_info(info, r.sid, nd.me);
        size_t sealed_share = 0;
        err = ms_hpke_seal(device_pub, info, il, rec, rl, sh, sl, payload + 2 + rl,
                           cap - 2 - rl, &sealed_share, NULL);
        pl = 2 + rl + sealed_share;
    }
    if (err == MS_OK) {
        ms_peer_msg_hdr h = {.sender = (uint8_t)nd.me, .recipient = MS_PEER_TO_ALL,
                             .kind = KIND_SHARE, .round = 1};
        memcpy(h.session, r.sid, 32);
        err = ms_peer_msg_sign(nd.seed, &h, payload, pl, msg, cap + MS_PEER_MSG_OVERHEAD, &ml);
    }
    if (err == MS_OK)
        err = ms_peer_file_create(out_path, msg, ml, false, detail, detail_cap);
    if (shares != NULL)
        ms_wipe(shares, sealed_len);
    free(shares);
    free(sealed);
    free(records);
    free(payload);
    free(msg);
    ms_kms_secrets_free(sec);
    node_close(&nd);
    free(table);
    return err;
}

ms_err ms_tkms_device_combine(const char *peers_file, const char *public_file,
                              const uint8_t device_sk[MS_HPKE_SK_BYTES], const char *period,
                              const char *uri, const char *const *files, size_t count,
                              uint8_t rsk[MS_SAKKE_POINT_BYTES],
                              uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                              uint8_t pvt[MS_ECCSI_POINT_BYTES], unsigned *cheater,
                              char *detail, size_t detail_cap)
{
    if (peers_file == NULL || public_file == NULL || device_sk == NULL || period == NULL ||
        uri == NULL || files == NULL || count == 0 || count > MS_TKMS_MAX_N || cheater == NULL)
        return MS_ERR_ARG;
    *cheater = 0;
    uint8_t id[ID_MAX], sid[32], tr[32];
    size_t id_len = identifier(id, sizeof id, period, uri);
    if (id_len == 0)
        return ms_detail_fail(MS_ERR_IDENTITY, detail, detail_cap, "the URI is too long");
    ms_peer_table *table = calloc(1, sizeof *table);
    ms_tkms_public pub;
    unsigned pidx = 0;
    ms_tkms_share *shares = calloc(count, sizeof *shares);
    ms_tkms_record rec, other;
    ms_peer_keys keys;
    ms_err err = table != NULL && shares != NULL ? MS_OK : MS_ERR_NOMEM;
    if (err == MS_OK)
        err = ms_peer_table_read(peers_file, table, detail, detail_cap);
    if (err == MS_OK)
        err = ms_tkms_public_read(public_file, &pub, &pidx, tr, detail, detail_cap);
    if (err == MS_OK && (pub.n != table->n || pub.t != table->t))
        err = ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap,
                             "the public result is not of this peers table");
    if (err == MS_OK)
        err = tkms_sid(sid, pub.Z, pub.kpak, id, id_len);
    if (err == MS_OK)
        ms_peer_table_keys(table, &keys);
    for (size_t i = 0; i < count && err == MS_OK; i++) {
        uint8_t *buf = NULL;
        size_t len = 0, pl = 0, used = 0, ptl = 0;
        const uint8_t *payload = NULL;
        ms_peer_msg_hdr h;
        char why[200] = "";
        if (read_all(files[i], &buf, &len) != MS_OK) {
            err = ms_detail_fail(MS_ERR_IO, detail, detail_cap, "cannot read %s", files[i]);
            break;
        }
        err = ms_peer_msg_open(&keys, sid, 0, NULL, buf, len, &h, &payload, &pl, why,
                               sizeof why);
        if (err != MS_OK || h.kind != KIND_SHARE) {
            /* the sender named in the header, if the file has one */
            unsigned claimed = len > 5 ? buf[5] : 0;
            *cheater = claimed;
            ms_detail_set(detail, detail_cap, "%s (the share of server %u): %s", files[i],
                          claimed, why[0] ? why : "not a share");
            err = MS_ERR_THRESHOLD_SHARE;
            free(buf);
            break;
        }
        size_t rl = pl >= 2 ? (size_t)payload[0] << 8 | payload[1] : 0;
        ms_tkms_record *r = i == 0 ? &rec : &other;
        uint8_t pt[MS_SAKKE_SECRET_BYTES + MS_ECCSI_SCALAR_BYTES], info[64];
        size_t il = ms_tkms_share_info(info, sid, h.sender);
        if (rl == 0 || 2 + rl > pl || ms_tkms_record_decode(r, payload + 2, rl, &used) != MS_OK ||
            used != rl ||
            ms_hpke_open(device_sk, info, il, payload + 2, rl, payload + 2 + rl, pl - 2 - rl, pt,
                         sizeof pt, &ptl) != MS_OK ||
            ptl != sizeof pt ||
            (i > 0 && memcmp(r, &rec, sizeof rec) != 0)) {
            *cheater = h.sender;
            err = ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, detail_cap,
                                 "%s: the share of server %u does not open or its record "
                                 "differs",
                                 files[i], h.sender);
        } else {
            shares[i].index = h.sender;
            memcpy(shares[i].u, pt, MS_SAKKE_SECRET_BYTES);
            memcpy(shares[i].ssk, pt + MS_SAKKE_SECRET_BYTES, MS_ECCSI_SCALAR_BYTES);
        }
        ms_wipe(pt, sizeof pt);
        free(buf);
    }
    if (err == MS_OK) {
        char why[200] = "";
        err = ms_tkms_combine(&pub, id, id_len, &rec, shares, count, rsk, ssk, pvt, cheater, why,
                              sizeof why);
        if (err != MS_OK)
            ms_detail_set(detail, detail_cap, "%s", why);
    }
    if (shares != NULL)
        ms_wipe(shares, count * sizeof *shares);
    free(shares);
    free(table);
    return err;
}
