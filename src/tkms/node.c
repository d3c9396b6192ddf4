/*
 * One threshold-KMS server over the network: its keys, and the key-generation ceremony
 * (see node.h for the files and the wire form).
 */
#include "tkms/node.h"
#include "tkms/batch_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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
#include "util/file.h"
#include "threshold/tkms_internal.h"
#include "tkms/root.h"
#include "util/hex.h"
#include "util/bytes.h"

#define KIND_DKG 1
#define MAX_ROUNDS 8 /* protocol rounds + the confirmation round */
#define MSG_PATH "/tkms/msg"

/* ---- files -------------------------------------------------------------------------- */

static void join(char *out, const char *dir, const char *name)
{
    /* callers bound dir's length; a path that would not fit becomes "" and fails to open */
    if (snprintf(out, MS_TKMS_PATH_MAX, "%s/%s", dir, name) >= MS_TKMS_PATH_MAX)
        out[0] = '\0';
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
                           const uint8_t transcript[32], unsigned epoch, char *detail,
                           size_t detail_cap)
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
    if (epoch > 0) /* after a share refresh (ms_tkms_node_refresh) */
        fprintf(f, "epoch %u\n", epoch);
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
            else if (strcmp(key, "epoch") == 0 && sscanf(val, "%u", &u) == 1)
                ; /* read by ms_tkms_public_epoch */
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
    uint32_t live; /* the servers of this run (bit i-1: server i) */
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
    if (err == MS_OK && !(mb->live >> (h.sender - 1) & 1)) {
        err = MS_ERR_PEER_MESSAGE;
        snprintf(why, sizeof why, "server %u is not one of the servers of this run", h.sender);
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
    uint32_t live; /* the servers taking part (bit i-1: server i), this one among them */
    mailbox *mb;
    EVP_MD_CTX *transcript;
} node;

/* Another server of this run (messages go to and come from it). */
static int takes_part(const node *nd, unsigned j)
{
    return j != nd->me && (nd->live >> (j - 1) & 1);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
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
    ms_store_be32(info + o, round);
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
        if (!takes_part(nd, j))
            continue;
        size_t o = 0;
        ms_store_be32(payload, (uint32_t)bl);
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
        ms_store_be32(payload + o, (uint32_t)sealed);
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
            if (takes_part(nd, j) && mb->msg[round][j - 1] == NULL)
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
    *bl = ms_load_be32(p);
    if (*bl > len - 8)
        return 0;
    *bc = p + 4;
    *pl = ms_load_be32(p + 4 + *bl);
    if (*pl != len - 8 - *bl)
        return 0;
    *pv = p + 8 + *bl;
    return 1;
}

static void hash_blob(EVP_MD_CTX *md, unsigned round, unsigned from, const uint8_t *p,
                      size_t len)
{
    uint8_t hdr[9];
    ms_store_be32(hdr, round);
    hdr[4] = (uint8_t)from;
    ms_store_be32(hdr + 5, (uint32_t)len);
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
            if (!takes_part(nd, j))
                continue;
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
        if (!takes_part(nd, j))
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
    if (nd->live == 0)
        nd->live = (uint32_t)((1ull << nd->table->n) - 1);
    mb->live = nd->live;
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
    ms_store_be32(hdr, pub->n);
    ms_store_be32(hdr + 4, pub->t);
    ms_store_be32(hdr + 8, pub->qual);
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
        if (p->seal != NULL) {
            sp = *p->seal;
        } else {
            sp.method = MS_SEAL_PASSPHRASE;
            sp.passphrase = p->passphrase;
            sp.passphrase_len = p->passphrase_len;
            sp.scrypt_log2_n = p->scrypt_log2_n;
        }
        err = ms_seal_write(path, sec, &sp, p->shares_out, p->share_lens_out, detail,
                            detail_cap);
    }
    ms_kms_secrets_free(sec);
    return err;
}

ms_err ms_tkms_node_init(const ms_tkms_init_params *p, ms_tkms_public *pub,
                         uint8_t transcript[32], char *detail, size_t detail_cap)
{
    if (p == NULL || p->dir == NULL || p->peers_file == NULL || pub == NULL ||
        transcript == NULL ||
        (p->seal == NULL && (p->passphrase == NULL || p->passphrase_len == 0)))
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
        err = public_write(path, pub, nd.me, transcript, 0, detail, detail_cap);
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
/* Tests only: a test program that defines this function (tests/tkms) has it called after
 * each batch round a server ends, to play a cheating dealer; the product defines none, so
 * the call below is never made there. */
void tkms_node_test_batch_round(ms_tkms_batch *b, unsigned round) __attribute__((weak));

static ms_err b_end(void *o, unsigned r, char *d, size_t cap)
{
    ms_err err = ms_tkms_batch_end_round(o, r, d, cap);
    if (err == MS_OK && tkms_node_test_batch_round != NULL)
        tkms_node_test_batch_round(o, r);
    return err;
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

ms_err ms_tkms_batch_crypt(int enc, const uint8_t key[32], const char *period,
                          const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
    const uint8_t *aad = (const uint8_t *)period;
    size_t aad_len = strlen(period);
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

int ms_tkms_period_ok(const char *p)
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

/* Unseals this server's secrets (generation 0: z_i, KSAK_i; the store key) with the
 * unlock material of its seal method (see node.h). */
static ms_err unseal_secrets(const char *dir, const uint8_t *unlock, size_t unlock_len,
                             ms_kms_secrets **out, char *detail, size_t detail_cap)
{
    char path[MS_TKMS_PATH_MAX];
    join(path, dir, "secrets.sealed");
    ms_unseal *u = NULL;
    *out = NULL;
    ms_err err = ms_unseal_open(&u, path, detail, detail_cap);
    if (err != MS_OK)
        return err;
    switch (ms_unseal_method(u)) {
    case MS_SEAL_PASSPHRASE:
        err = ms_unseal_passphrase(u, out, unlock, unlock_len);
        break;
    case MS_SEAL_PKCS11:
        err = ms_unseal_pkcs11(u, out, unlock, unlock_len);
        break;
    case MS_SEAL_SHARES:
        if (unlock_len == 0 || unlock_len % MS_KMS_SHARE_LEN != 0) {
            err = ms_detail_fail(MS_ERR_SHARE, detail, detail_cap,
                                 "%s is sealed with custodian shares: give the shares", path);
            ms_unseal_free(u);
            return err;
        }
        for (size_t o = 0; err == MS_OK && *out == NULL && o < unlock_len; o += MS_KMS_SHARE_LEN)
            err = ms_unseal_share(u, out, unlock + o, MS_KMS_SHARE_LEN);
        if (err == MS_OK && *out == NULL) {
            unsigned have = 0, need = 0;
            ms_unseal_progress(u, &have, &need);
            err = ms_detail_fail(MS_ERR_SHARE, detail, detail_cap,
                                 "%s needs %u custodian shares, %u given", path, need, have);
            ms_unseal_free(u);
            return err;
        }
        break;
    default:
        err = MS_ERR_SEALED_FILE;
    }
    if (err != MS_OK)
        ms_detail_set(detail, detail_cap, "%s: %s", path, ms_unseal_detail(u));
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

#define REC_MAX MS_TKMS_RECORD_MAX
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
        err = ms_tkms_batch_crypt(1, store_key, period, sec, so,
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

static unsigned popcount(uint32_t x)
{
    unsigned c = 0;
    for (; x; x &= x - 1)
        c++;
    return c;
}

/* B5: this server signs the root of the records' tree; the live servers exchange their
 * signatures in one more round and each must be of the same root. */
static ms_err root_round(node *nd, unsigned round, tkms_root *root, char *detail,
                         size_t detail_cap)
{
    uint8_t *mine = root->sig[nd->me - 1];
    ms_err err = tkms_root_sign(nd->seed, root, mine);
    if (err != MS_OK)
        return err;
    root->have = 1u << (nd->me - 1);
    uint64_t deadline = now_ms() + nd->timeout_ms;
    err = send_round(nd, KIND_BATCH, round, mine, MS_PEER_SIG_BYTES, NULL, NULL, 256,
                     deadline, detail, detail_cap);
    if (err == MS_OK)
        err = wait_round(nd, round, deadline, detail, detail_cap);
    if (err != MS_OK)
        return err;
    uint32_t bad = 0;
    for (unsigned j = 1; j <= nd->table->n; j++) {
        const uint8_t *bc, *pv;
        size_t bl, pl;
        if (!takes_part(nd, j))
            continue;
        if (split(nd->mb->msg[round][j - 1], nd->mb->len[round][j - 1], &bc, &bl, &pv, &pl) &&
            bl == MS_PEER_SIG_BYTES && tkms_root_sig_ok(nd->table->server[j - 1].sign_pub, root, bc)) {
            memcpy(root->sig[j - 1], bc, MS_PEER_SIG_BYTES);
            root->have |= 1u << (j - 1);
        } else {
            bad |= 1u << (j - 1);
        }
    }
    char list[100];
    tkms_mask_list(list, sizeof list, bad);
    if (bad != 0)
        return ms_detail_fail(MS_ERR_THRESHOLD_ROUND, detail, detail_cap,
                              "server %s did not sign this server's root of the batch of %s: "
                              "nothing is kept",
                              list, root->period);
    unsigned need = tkms_root_needed(nd->table->n, nd->table->t);
    if (popcount(root->have) < need)
        return ms_detail_fail(MS_ERR_THRESHOLD_INACTIVE, detail, detail_cap,
                              "the batch of %s is not active: %u of the %u signatures it needs",
                              root->period, popcount(root->have), need);
    return MS_OK;
}

static unsigned live_minimum(const ms_peer_table *table)
{
    unsigned resharing = 2 * table->t + 1, activating = tkms_root_needed(table->n, table->t);
    return resharing > activating ? resharing : activating;
}

/* The live set of a batch: servers of the table, this one among them, enough of them to
 * re-share (2t + 1) and to activate the batch (ceil((n + t + 1) / 2) signatures). */
static ms_err check_live(uint32_t live, const ms_peer_table *table, unsigned me, char *detail,
                         size_t detail_cap)
{
    unsigned n = table->n, t = table->t;
    uint32_t all = (uint32_t)((1ull << n) - 1);
    unsigned need = live_minimum(table);
    char list[100];
    tkms_mask_list(list, sizeof list, live);
    if ((live & ~all) != 0)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                              "the live servers (%s) must be among the table's servers 1 to %u",
                              list, n);
    if (!(live >> (me - 1) & 1))
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                              "this server (%u) is not one of the live servers (%s)", me, list);
    if (popcount(live) < need)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                              "a batch at (n, t) = (%u, %u) needs at least %u live servers "
                              "(2t+1 = %u re-share, %u signatures activate it), not %u (%s)",
                              n, t, need, 2 * t + 1, tkms_root_needed(n, t), popcount(live),
                              list);
    return MS_OK;
}

ms_err ms_tkms_node_batch(const ms_tkms_batch_params *p, uint8_t digest_out[32], char *detail,
                          size_t detail_cap)
{
    if (p == NULL || p->dir == NULL || p->peers_file == NULL || p->period == NULL ||
        p->users == NULL || p->count == 0 || p->passphrase == NULL)
        return MS_ERR_ARG;
    if (!ms_tkms_period_ok(p->period))
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
    if (err == MS_OK) {
        nd.live = p->live != 0 ? p->live : (uint32_t)((1ull << table->n) - 1);
        err = check_live(nd.live, table, nd.me, detail, detail_cap);
    }
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
        err = ms_tkms_batch_new(&b, s, (const uint8_t *const *)ids, id_lens, p->count, nd.live,
                                why, sizeof why);
        if (err != MS_OK)
            ms_detail_set(detail, detail_cap, "%s", why);
    }
    /* the session binds the table, the key generation, the live set, the period and the
     * identities: servers given other users files or other live sets do not talk */
    EVP_MD_CTX *sm = EVP_MD_CTX_new();
    uint8_t inputs[32], live_be[4];
    ms_store_be32(live_be, nd.live);
    if (err == MS_OK &&
        (sm == NULL || EVP_DigestInit_ex(sm, EVP_sha256(), NULL) != 1 ||
         EVP_DigestUpdate(sm, dkg_transcript, 32) != 1 || EVP_DigestUpdate(sm, live_be, 4) != 1))
        err = MS_ERR_INTERNAL;
    for (size_t i = 0; i < p->count && err == MS_OK; i++) {
        uint8_t l[4];
        ms_store_be32(l, (uint32_t)id_lens[i]);
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
        err = start_server(&nd, mb, KIND_BATCH, MS_TKMS_BATCH_ROUNDS + 2, &srv, &pins, detail,
                           detail_cap);
    if (err == MS_OK) {
        err = run_rounds(&nd, KIND_BATCH, &batch_ops, b,
                         ms_tkms_msg_max(table->n, table->t, p->count), detail, detail_cap);
        /* a server down or cheating: the batch can run again without it */
        size_t dl = detail != NULL ? strlen(detail) : 0;
        if ((err == MS_ERR_UNREACHABLE || err == MS_ERR_THRESHOLD_ROUND ||
             err == MS_ERR_THRESHOLD_SHARE) &&
            dl + 1 < detail_cap)
            snprintf(detail + dl, detail_cap - dl,
                     "; the batch can run again with the other servers as the live set (at "
                     "least %u of the %u)",
                     live_minimum(table), table->n);
    }
    uint8_t digest[64];
    uint8_t(*leaves)[32] = err == MS_OK ? malloc(p->count * 32) : NULL;
    if (err == MS_OK && leaves == NULL)
        err = MS_ERR_NOMEM;
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
            uint8_t enc[MS_TKMS_RECORD_MAX];
            if (err == MS_OK)
                err = tkms_merkle_leaf(leaves[i], enc, ms_tkms_record_encode(&rec, enc));
        }
        if (err == MS_OK && EVP_DigestFinal_ex(rm, digest + 32, NULL) != 1)
            err = MS_ERR_INTERNAL;
        EVP_MD_CTX_free(rm);
        if (err == MS_OK)
            memcpy(digest_out, digest + 32, 32);
    }
    if (err == MS_OK)
        err = confirm(&nd, KIND_BATCH, MS_TKMS_BATCH_ROUNDS + 1, digest, detail, detail_cap);
    tkms_root root;
    memset(&root, 0, sizeof root);
    snprintf(root.period, sizeof root.period, "%s", p->period);
    root.count = p->count;
    root.live = nd.live;
    if (err == MS_OK)
        err = tkms_merkle_root(root.root, (const uint8_t(*)[32])leaves, p->count, 0, NULL, NULL);
    if (err == MS_OK)
        err = root_round(&nd, MS_TKMS_BATCH_ROUNDS + 2, &root, detail, detail_cap);
    free(leaves);
    if (srv != NULL)
        stop_server(srv);
    if (err == MS_OK)
        err = batch_write(p->dir, p->period, b, (const uint8_t *const *)ids, id_lens, p->count,
                          sec->store_key, detail, detail_cap);
    /* written last: its signatures make the batch active */
    snprintf(name, sizeof name, "batch-%s.root", p->period);
    join(path, p->dir, name);
    if (err == MS_OK)
        err = tkms_root_write(path, &root, detail, detail_cap);
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
#define SHARE_FORM 2 /* the header's round field: the payload form (node.h) */

size_t ms_tkms_share_info(uint8_t *info, const uint8_t sid[32], unsigned index)
{
    static const char label[] = "mikeysakke tkms share";
    memcpy(info, label, sizeof label);
    memcpy(info + sizeof label, sid, 32);
    info[sizeof label + 32] = (uint8_t)index;
    return sizeof label + 33;
}

/* ---- a server opened for serving -------------------------------------------------------- */

struct ms_tkms_service {
    char dir[MS_TKMS_PATH_MAX];
    ms_peer_table table;
    node nd;
    ms_tkms_public pub;
    ms_kms_secrets *sec;
    tkms_batch_cache *cache; /* the batches asked for, kept open */
};

ms_err ms_tkms_service_open(ms_tkms_service **out, const char *dir, const uint8_t *pass,
                            size_t pass_len, char *detail, size_t detail_cap)
{
    if (out == NULL || dir == NULL || pass == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    if (strlen(dir) + 32 >= MS_TKMS_PATH_MAX)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "the directory name is too long");
    ms_tkms_service *s = calloc(1, sizeof *s);
    if (s == NULL)
        return MS_ERR_NOMEM;
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    char path[MS_TKMS_PATH_MAX];
    unsigned index = 0;
    uint8_t transcript[32];
    join(path, dir, "peers.txt");
    ms_err err = ms_peer_table_read(path, &s->table, detail, detail_cap);
    if (err == MS_OK)
        err = node_open(&s->nd, dir, &s->table, detail, detail_cap);
    s->nd.table = &s->table;
    join(path, dir, "public.txt");
    if (err == MS_OK)
        err = ms_tkms_public_read(path, &s->pub, &index, transcript, detail, detail_cap);
    if (err == MS_OK && index != s->nd.me)
        err = ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap,
                             "%s is server %u's, this is server %u", path, index, s->nd.me);
    if (err == MS_OK)
        err = unseal_secrets(dir, pass, pass_len, &s->sec, detail, detail_cap);
    if (err == MS_OK)
        err = tkms_batch_cache_new(&s->cache);
    if (err != MS_OK) {
        ms_tkms_service_close(s);
        return err;
    }
    *out = s;
    return MS_OK;
}

void ms_tkms_service_close(ms_tkms_service *s)
{
    if (s == NULL)
        return;
    node_close(&s->nd);
    tkms_batch_cache_free(s->cache);
    ms_kms_secrets_free(s->sec);
    ms_wipe(s, sizeof *s);
    free(s);
}

unsigned ms_tkms_service_index(const ms_tkms_service *s)
{
    return s->nd.me;
}

const char *ms_tkms_service_dir(const ms_tkms_service *s)
{
    return s->dir;
}

const ms_peer_table *ms_tkms_service_peers(const ms_tkms_service *s)
{
    return &s->table;
}

const ms_tkms_public *ms_tkms_service_public(const ms_tkms_service *s)
{
    return &s->pub;
}

ms_err ms_tkms_service_sign(const ms_tkms_service *s, const ms_peer_msg_hdr *h,
                            const uint8_t *payload, size_t payload_len, uint8_t *out,
                            size_t cap, size_t *out_len)
{
    ms_peer_msg_hdr hh = *h;
    hh.sender = (uint8_t)s->nd.me;
    return ms_peer_msg_sign(s->nd.seed, &hh, payload, payload_len, out, cap, out_len);
}

/* Where a slot's record sits in the batch's signed tree (what the share message carries
 * for the device to check). */
typedef struct slot_proof {
    tkms_root root; /* read from batch-P.root; the valid signatures only */
    uint64_t index;
    size_t proof_len;
    uint8_t proof[TKMS_PROOF_MAX][32];
} slot_proof;

/* ms_tkms_service_slot, and where the record sits in the signed tree (proof may be NULL). */
static ms_err slot_lookup(const ms_tkms_service *s, const char *period, const char *uri,
                          ms_tkms_share *share, uint8_t *record, size_t record_cap,
                          size_t *record_len, slot_proof *proof, char *detail,
                          size_t detail_cap)
{
    if (s == NULL || period == NULL || uri == NULL || share == NULL || record == NULL ||
        record_len == NULL)
        return MS_ERR_ARG;
    if (!ms_tkms_period_ok(period))
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "the period is malformed");
    char name[80], rpath[MS_TKMS_PATH_MAX];
    uint8_t id[ID_MAX];
    size_t id_len = identifier(id, sizeof id, period, uri);
    if (id_len == 0)
        return ms_detail_fail(MS_ERR_IDENTITY, detail, detail_cap, "the URI is too long");
    unsigned me = s->nd.me, n = s->table.n;
    slot_proof local;
    slot_proof *sp = proof != NULL ? proof : &local;
    memset(sp, 0, sizeof *sp);
    snprintf(name, sizeof name, "batch-%.32s.root", period);
    join(rpath, s->dir, name);
    char why[300] = "";
    ms_err root_err = tkms_root_read(rpath, &sp->root, why, sizeof why);
    if (root_err == MS_OK && strcmp(sp->root.period, period) != 0)
        root_err = ms_detail_fail(MS_ERR_CONFIG, why, sizeof why, "%s is of period %s", rpath,
                                  sp->root.period);
    char list[100];
    tkms_mask_list(list, sizeof list, sp->root.live);
    /* a server outside the live set of a validly signed root holds no share: say so
     * before anything else (an edited root is "not active" below) */
    unsigned need = tkms_root_needed(n, s->table.t);
    uint32_t valid = root_err == MS_OK ? tkms_root_valid(&sp->root, &s->table) : 0;
    if (root_err == MS_OK && !(sp->root.live >> (me - 1) & 1) && popcount(valid) >= need)
        return ms_detail_fail(MS_ERR_THRESHOLD_INACTIVE, detail, detail_cap,
                              "server %u did not take part in the batch of %s (servers %s did)",
                              me, period, list);
    tkms_cache_proof *cp = calloc(1, sizeof *cp);
    if (cp == NULL)
        return MS_ERR_NOMEM;
    ms_err err = tkms_batch_cache_slot(s->cache, s->dir, s->sec->store_key, period, id, id_len,
                                       share->u, share->ssk, record, record_cap, record_len, cp,
                                       detail, detail_cap);
    if (err == MS_ERR_IO)
        ms_detail_set(detail, detail_cap,
                      "server %u holds no batch of period %s: it did not take part in one, or "
                      "none has run",
                      me, period);
    if (err == MS_ERR_IDENTITY)
        ms_detail_set(detail, detail_cap, "%s is not in the batch of period %s", uri, period);
    /* the signed root activates the batch */
    if (err == MS_OK && root_err != MS_OK)
        err = ms_detail_fail(MS_ERR_THRESHOLD_INACTIVE, detail, detail_cap,
                             "the batch of %s is not active: no signed root (%s)", period, why);
    if (err == MS_OK) {
        sp->root.have = valid;
        if (popcount(valid) < need)
            err = ms_detail_fail(MS_ERR_THRESHOLD_INACTIVE, detail, detail_cap,
                                 "the batch of %s is not active: %u of the %u signatures it "
                                 "needs (%s)",
                                 period, popcount(valid), need, rpath);
    }
    /* the records must be those whose root was signed: the record is then in the tree */
    if (err == MS_OK && (cp->count != sp->root.count || memcmp(cp->root, sp->root.root, 32) != 0))
        err = ms_detail_fail(MS_ERR_THRESHOLD_INACTIVE, detail, detail_cap,
                             "the record of %s is not in the signed root of the batch of %s "
                             "(batch-%s.records differs from its root)",
                             uri, period, period);
    if (err == MS_OK) {
        sp->index = cp->index;
        sp->proof_len = cp->len;
        memcpy(sp->proof, cp->hashes, cp->len * 32);
        share->index = me;
    } else {
        ms_wipe(share, sizeof *share);
    }
    free(cp);
    return err;
}

ms_err ms_tkms_service_slot(const ms_tkms_service *s, const char *period, const char *uri,
                            ms_tkms_share *share, uint8_t *record, size_t record_cap,
                            size_t *record_len, char *detail, size_t detail_cap)
{
    return slot_lookup(s, period, uri, share, record, record_cap, record_len, NULL, detail,
                       detail_cap);
}

/* The share payload's public part after the record (node.h): index, count, proof, live
 * set and the root's signatures. */
static size_t proof_encode(uint8_t *out, const slot_proof *sp)
{
    size_t o = 0;
    ms_store_be64(out, sp->index);
    ms_store_be64(out + 8, sp->root.count);
    o = 16;
    out[o++] = (uint8_t)sp->proof_len;
    memcpy(out + o, sp->proof, sp->proof_len * 32);
    o += sp->proof_len * 32;
    ms_store_be32(out + o, sp->root.live);
    o += 4;
    size_t at = o++;
    out[at] = 0;
    for (unsigned j = 1; j <= MS_PEER_MAX; j++)
        if (sp->root.have >> (j - 1) & 1) {
            out[o++] = (uint8_t)j;
            memcpy(out + o, sp->root.sig[j - 1], MS_PEER_SIG_BYTES);
            o += MS_PEER_SIG_BYTES;
            out[at]++;
        }
    return o;
}

#define PROOF_WIRE_MAX (16 + 1 + TKMS_PROOF_MAX * 32 + 4 + 1 + MS_PEER_MAX * (1 + MS_PEER_SIG_BYTES))

size_t tkms_share_proof_encode(uint8_t *out, const tkms_root *root, uint64_t index,
                               const uint8_t (*proof)[32], size_t proof_len)
{
    slot_proof *sp = calloc(1, sizeof *sp);
    if (sp == NULL || proof_len > TKMS_PROOF_MAX) {
        free(sp);
        return 0;
    }
    sp->root = *root;
    sp->index = index;
    sp->proof_len = proof_len;
    memcpy(sp->proof, proof, proof_len * 32);
    size_t n = proof_encode(out, sp);
    free(sp);
    return n;
}

/* Decodes it (the signatures unchecked); the octets used, 0 when malformed. */
static size_t proof_decode(slot_proof *sp, const uint8_t *in, size_t len)
{
    memset(sp, 0, sizeof *sp);
    if (len < 17)
        return 0;
    sp->index = ms_load_be64(in);
    sp->root.count = ms_load_be64(in + 8);
    sp->proof_len = in[16];
    size_t o = 17;
    if (sp->proof_len > TKMS_PROOF_MAX || len < o + sp->proof_len * 32 + 5)
        return 0;
    memcpy(sp->proof, in + o, sp->proof_len * 32);
    o += sp->proof_len * 32;
    sp->root.live = ms_load_be32(in + o);
    o += 4;
    unsigned m = in[o++];
    for (unsigned k = 0; k < m; k++) {
        if (len < o + 1 + MS_PEER_SIG_BYTES)
            return 0;
        unsigned j = in[o];
        if (j < 1 || j > MS_PEER_MAX || (sp->root.have >> (j - 1) & 1))
            return 0;
        sp->root.have |= 1u << (j - 1);
        memcpy(sp->root.sig[j - 1], in + o + 1, MS_PEER_SIG_BYTES);
        o += 1 + MS_PEER_SIG_BYTES;
    }
    return o;
}

size_t ms_tkms_share_public_len(const uint8_t *payload, size_t len)
{
    size_t rl = len >= 2 ? (size_t)payload[0] << 8 | payload[1] : 0;
    if (rl == 0 || 2 + rl > len)
        return 0;
    slot_proof *sp = malloc(sizeof *sp);
    size_t ul = sp != NULL ? proof_decode(sp, payload + 2 + rl, len - 2 - rl) : 0;
    free(sp);
    return ul > 0 ? 2 + rl + ul : 0;
}

ms_err ms_tkms_service_share_msg(const ms_tkms_service *s, const char *period, const char *uri,
                                 const uint8_t device_pub[MS_HPKE_PK_BYTES], uint8_t **msg_out,
                                 size_t *msg_len, char *detail, size_t detail_cap)
{
    if (s == NULL || device_pub == NULL || msg_out == NULL || msg_len == NULL)
        return MS_ERR_ARG;
    *msg_out = NULL;
    *msg_len = 0;
    ms_tkms_share share;
    uint8_t rec[MS_TKMS_RECORD_MAX];
    size_t rl = 0;
    slot_proof *sp = malloc(sizeof *sp);
    if (sp == NULL)
        return MS_ERR_NOMEM;
    ms_err err = slot_lookup(s, period, uri, &share, rec, sizeof rec, &rl, sp, detail,
                             detail_cap);
    ms_tkms_record r;
    size_t used = 0;
    if (err == MS_OK)
        err = ms_tkms_record_decode(&r, rec, rl, &used);
    uint8_t plain[MS_SAKKE_SECRET_BYTES + MS_ECCSI_SCALAR_BYTES];
    memcpy(plain, share.u, MS_SAKKE_SECRET_BYTES);
    memcpy(plain + MS_SAKKE_SECRET_BYTES, share.ssk, MS_ECCSI_SCALAR_BYTES);
    ms_wipe(&share, sizeof share);
    size_t cap = 2 + rl + PROOF_WIRE_MAX + sizeof plain + MS_HPKE_OVERHEAD, pl = 0, ml = 0;
    uint8_t *payload = malloc(cap), *msg = malloc(cap + MS_PEER_MSG_OVERHEAD);
    if (err == MS_OK && (payload == NULL || msg == NULL))
        err = MS_ERR_NOMEM;
    if (err == MS_OK) {
        /* the public part, then the share sealed to the device with it as aad */
        payload[0] = (uint8_t)(rl >> 8);
        payload[1] = (uint8_t)rl;
        memcpy(payload + 2, rec, rl);
        size_t pub_len = 2 + rl + proof_encode(payload + 2 + rl, sp);
        uint8_t info[64];
        size_t il = ms_tkms_share_info(info, r.sid, s->nd.me);
        size_t sealed_share = 0;
        err = ms_hpke_seal(device_pub, info, il, payload, pub_len, plain, sizeof plain,
                           payload + pub_len, cap - pub_len, &sealed_share, NULL);
        pl = pub_len + sealed_share;
    }
    ms_wipe(plain, sizeof plain);
    free(sp);
    if (err == MS_OK) {
        ms_peer_msg_hdr h = {.sender = (uint8_t)s->nd.me, .recipient = MS_PEER_TO_ALL,
                             .kind = KIND_SHARE, .round = SHARE_FORM};
        memcpy(h.session, r.sid, 32);
        err = ms_peer_msg_sign(s->nd.seed, &h, payload, pl, msg, cap + MS_PEER_MSG_OVERHEAD, &ml);
    }
    free(payload);
    if (err != MS_OK) {
        free(msg);
        return err;
    }
    *msg_out = msg;
    *msg_len = ml;
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
    ms_tkms_service *s = NULL;
    uint8_t *msg = NULL;
    size_t ml = 0;
    ms_err err = ms_tkms_service_open(&s, dir, pass, pass_len, detail, detail_cap);
    if (err == MS_OK)
        err = ms_tkms_service_share_msg(s, period, uri, device_pub, &msg, &ml, detail,
                                        detail_cap);
    if (err == MS_OK)
        err = ms_peer_file_create(out_path, msg, ml, false, detail, detail_cap);
    free(msg);
    ms_tkms_service_close(s);
    return err;
}

/* The device's check of a share's public part: the sender took part in the batch, and
 * the record leads through the proof to a root that enough servers of the table signed. */
static ms_err share_in_root(const ms_peer_table *table, const char *period, unsigned sender,
                            const uint8_t *rec, size_t rec_len, slot_proof *sp, char *detail,
                            size_t detail_cap)
{
    uint8_t leaf[32];
    unsigned need = tkms_root_needed(table->n, table->t);
    snprintf(sp->root.period, sizeof sp->root.period, "%s", period);
    if (!(sp->root.live >> (sender - 1) & 1))
        return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, detail_cap,
                              "server %u did not take part in the batch of %s", sender, period);
    if (tkms_merkle_leaf(leaf, rec, rec_len) != MS_OK ||
        tkms_merkle_from_proof(sp->root.root, leaf, sp->index, sp->root.count,
                               (const uint8_t(*)[32])sp->proof, sp->proof_len) != MS_OK)
        return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, detail_cap,
                              "its inclusion proof is malformed");
    unsigned valid = popcount(tkms_root_valid(&sp->root, table));
    if (valid < need)
        return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, detail_cap,
                              "its record is not in a signed root of the batch of %s (%u of "
                              "the %u signatures it needs)",
                              period, valid, need);
    return MS_OK;
}

/* The i-th share message: a file's content, or a copy of one in memory. */
static ms_err load_msg(const char *const *files, const uint8_t *const *msgs,
                       const size_t *lens, size_t i, uint8_t **buf, size_t *len)
{
    if (files != NULL)
        return ms_file_read(files[i], SIZE_MAX, buf, len);
    if ((*buf = malloc(lens[i] + 1)) == NULL)
        return MS_ERR_NOMEM;
    memcpy(*buf, msgs[i], lens[i]);
    *len = lens[i];
    return MS_OK;
}

static ms_err device_combine(const char *peers_file, const char *public_file,
                             const uint8_t device_sk[MS_HPKE_SK_BYTES], const char *period,
                             const char *uri, const char *const *files,
                             const uint8_t *const *msgs, const size_t *lens,
                             const char *const *names, size_t count,
                             uint8_t rsk[MS_SAKKE_POINT_BYTES],
                             uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                             uint8_t pvt[MS_ECCSI_POINT_BYTES], unsigned *cheater,
                             char *detail, size_t detail_cap)
{
    if (files != NULL)
        names = files; /* a file is named by its path */
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
    slot_proof *sp = malloc(sizeof *sp);
    ms_err err = table != NULL && shares != NULL && sp != NULL ? MS_OK : MS_ERR_NOMEM;
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
        if (load_msg(files, msgs, lens, i, &buf, &len) != MS_OK) {
            err = ms_detail_fail(MS_ERR_IO, detail, detail_cap, "cannot read %s", names[i]);
            break;
        }
        err = ms_peer_msg_open(&keys, sid, 0, NULL, buf, len, &h, &payload, &pl, why,
                               sizeof why);
        if (err == MS_OK && (h.kind != KIND_SHARE || h.round != SHARE_FORM))
            snprintf(why, sizeof why, "not a share message of this form");
        if (err != MS_OK || h.kind != KIND_SHARE || h.round != SHARE_FORM) {
            /* the sender named in the header, if the file has one */
            unsigned claimed = len > 5 ? buf[5] : 0;
            *cheater = claimed;
            ms_detail_set(detail, detail_cap, "%s (the share of server %u): %s", names[i],
                          claimed, why[0] ? why : "not a share");
            err = MS_ERR_THRESHOLD_SHARE;
            free(buf);
            break;
        }
        size_t rl = pl >= 2 ? (size_t)payload[0] << 8 | payload[1] : 0;
        ms_tkms_record *r = i == 0 ? &rec : &other;
        uint8_t pt[MS_SAKKE_SECRET_BYTES + MS_ECCSI_SCALAR_BYTES], info[64];
        size_t il = ms_tkms_share_info(info, sid, h.sender);
        size_t pub_len = 0;
        if (rl > 0 && 2 + rl <= pl && ms_tkms_record_decode(r, payload + 2, rl, &used) == MS_OK &&
            used == rl) {
            size_t ul = proof_decode(sp, payload + 2 + rl, pl - 2 - rl);
            pub_len = ul > 0 ? 2 + rl + ul : 0;
        }
        /* the record must be in a batch root signed by enough servers of the table */
        if (pub_len > 0) {
            char why2[200];
            err = share_in_root(table, period, h.sender, payload + 2, rl, sp, why2,
                                sizeof why2);
            /* ... and be this identity's: a signed record of another slot is refused here,
             * so the first share's record, checked like every other, is the slot's own */
            if (err == MS_OK && memcmp(r->sid, sid, 32) != 0) {
                snprintf(why2, sizeof why2, "its record is of another identity's slot");
                err = MS_ERR_THRESHOLD_SHARE;
            }
            if (err != MS_OK) {
                *cheater = h.sender;
                ms_detail_set(detail, detail_cap, "%s: the share of server %u: %s", names[i],
                              h.sender, why2);
                ms_wipe(pt, sizeof pt);
                free(buf);
                break;
            }
        }
        if (pub_len == 0 ||
            ms_hpke_open(device_sk, info, il, payload, pub_len, payload + pub_len, pl - pub_len,
                         pt, sizeof pt, &ptl) != MS_OK ||
            ptl != sizeof pt ||
            (i > 0 && memcmp(r, &rec, sizeof rec) != 0)) {
            *cheater = h.sender;
            err = ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, detail_cap,
                                 "%s: the share of server %u does not open or its record "
                                 "differs",
                                 names[i], h.sender);
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
    free(sp);
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
    return device_combine(peers_file, public_file, device_sk, period, uri, files, NULL, NULL,
                          NULL, count, rsk, ssk, pvt, cheater, detail, detail_cap);
}

ms_err ms_tkms_device_combine_msgs(const char *peers_file, const char *public_file,
                                   const uint8_t device_sk[MS_HPKE_SK_BYTES],
                                   const char *period, const char *uri,
                                   const uint8_t *const *msgs, const size_t *lens,
                                   const char *const *names, size_t count,
                                   uint8_t rsk[MS_SAKKE_POINT_BYTES],
                                   uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                                   uint8_t pvt[MS_ECCSI_POINT_BYTES], unsigned *cheater,
                                   char *detail, size_t detail_cap)
{
    if (peers_file == NULL || public_file == NULL || device_sk == NULL || period == NULL ||
        uri == NULL || msgs == NULL || lens == NULL || names == NULL || count == 0 ||
        count > MS_TKMS_MAX_N || cheater == NULL)
        return MS_ERR_ARG;
    return device_combine(peers_file, public_file, device_sk, period, uri, NULL, msgs, lens,
                          names, count, rsk, ssk, pvt, cheater, detail, detail_cap);
}

/* ---- proactive share refresh ----------------------------------------------------------- */

#define KIND_REFRESH 7
#define REFRESH_MARK "refresh.commit"
#define SECRETS_NEW "secrets.sealed.new"
#define PUBLIC_NEW "public.txt.new"

static ms_err rf_bcast(void *o, unsigned r, uint8_t *out, size_t cap, size_t *len)
{
    return ms_tkms_refresh_broadcast(o, r, out, cap, len);
}
static ms_err rf_priv(void *o, unsigned r, unsigned to, uint8_t *out, size_t cap, size_t *len)
{
    (void)r;
    return ms_tkms_refresh_private(o, to, out, cap, len);
}
static int rf_has_priv(unsigned r)
{
    return r == 1;
}
static ms_err rf_recv(void *o, unsigned r, unsigned from, const uint8_t *msg, size_t len,
                      const uint8_t *priv, size_t plen)
{
    return ms_tkms_refresh_receive(o, r, from, msg, len, priv, plen);
}
static ms_err rf_end(void *o, unsigned r, char *d, size_t cap)
{
    return ms_tkms_refresh_end_round(o, r, d, cap);
}
static const proto_ops refresh_ops = {MS_TKMS_REFRESH_ROUNDS, rf_bcast, rf_priv, rf_has_priv,
                                      rf_recv, rf_end};

ms_err ms_tkms_public_epoch(const char *path, unsigned *epoch)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return MS_ERR_IO;
    char line[1200];
    unsigned e = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "epoch ", 6) == 0 && sscanf(line + 6, "%u", &e) != 1)
            e = 0;
    fclose(f);
    *epoch = e;
    return MS_OK;
}

static ms_err rename_in(const char *dir, const char *from, const char *to, char *detail,
                        size_t detail_cap)
{
    char a[MS_TKMS_PATH_MAX], b[MS_TKMS_PATH_MAX];
    join(a, dir, from);
    join(b, dir, to);
    if (rename(a, b) != 0)
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap, "cannot rename %s to %s: %s", a, to,
                              strerror(errno));
    ms_file_sync_parent(b);
    return MS_OK;
}

static void unlink_in(const char *dir, const char *name)
{
    char a[MS_TKMS_PATH_MAX];
    join(a, dir, name);
    if (unlink(a) == 0)
        ms_file_sync_parent(a);
}

static int exists_in(const char *dir, const char *name)
{
    char a[MS_TKMS_PATH_MAX];
    join(a, dir, name);
    return access(a, F_OK) == 0;
}

/* refresh.lock, held (flock) by a refresh for its whole run: another process opening the
 * directory meanwhile must not take the refresh's new files for a crash's leftovers. */
#define REFRESH_LOCK "refresh.lock"

/* -1 when another process holds the lock; else an fd holding it (close to release). */
static int refresh_lock(const char *dir, int wait)
{
    char path[MS_TKMS_PATH_MAX];
    join(path, dir, REFRESH_LOCK);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -2; /* no lock file (a read-only directory): nothing to protect against */
    if (flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static ms_err recover_locked(const char *dir, int *rolled, char *detail, size_t detail_cap);

ms_err ms_tkms_node_recover(const char *dir, int *rolled, char *detail, size_t detail_cap)
{
    if (dir == NULL)
        return MS_ERR_ARG;
    if (rolled != NULL)
        *rolled = 0;
    int fd = refresh_lock(dir, 0);
    if (fd == -1)
        return ms_detail_fail(MS_ERR_EXISTS, detail, detail_cap,
                              "a share refresh is running in %s: wait for it to end", dir);
    ms_err err = recover_locked(dir, rolled, detail, detail_cap);
    if (fd >= 0)
        close(fd);
    return err;
}

static ms_err recover_locked(const char *dir, int *rolled, char *detail, size_t detail_cap)
{
    if (!exists_in(dir, REFRESH_MARK)) {
        /* no commit decision: the old files stand; drop a half-made new pair */
        if (exists_in(dir, SECRETS_NEW) || exists_in(dir, PUBLIC_NEW)) {
            unlink_in(dir, SECRETS_NEW);
            unlink_in(dir, PUBLIC_NEW);
            if (rolled != NULL)
                *rolled = -1;
        }
        return MS_OK;
    }
    /* the refresh was confirmed by every server: finish putting the new files in place
     * (each rename done already is skipped) */
    ms_err err = MS_OK;
    if (exists_in(dir, SECRETS_NEW))
        err = rename_in(dir, SECRETS_NEW, "secrets.sealed", detail, detail_cap);
    if (err == MS_OK && exists_in(dir, PUBLIC_NEW))
        err = rename_in(dir, PUBLIC_NEW, "public.txt", detail, detail_cap);
    if (err == MS_OK) {
        unlink_in(dir, REFRESH_MARK);
        if (rolled != NULL)
            *rolled = 1;
    }
    return err;
}

/* A custodian share file as `kms threshold init` writes it: one upper-case hex line. */
static ms_err share_file_write(const char *path, const uint8_t *share, size_t len, char *detail,
                               size_t detail_cap)
{
    char text[2 * MS_KMS_SHARE_BYTES + 2];
    if (len > MS_KMS_SHARE_BYTES)
        return MS_ERR_ARG;
    ms_hex_encode_upper(text, share, len);
    text[2 * len] = '\n';
    ms_err err = ms_file_write_atomic(path, text, 2 * len + 1, 0600, MS_FILE_NO_REPLACE, detail,
                                      detail_cap);
    ms_wipe(text, sizeof text);
    if (err == MS_ERR_EXISTS)
        ms_detail_set(detail, detail_cap, "%s exists: give an empty --share-out-dir", path);
    return err;
}

ms_err ms_tkms_node_refresh(const ms_tkms_refresh_params *p, ms_tkms_public *pub,
                            unsigned *epoch_out, char *detail, size_t detail_cap)
{
    if (p == NULL || p->dir == NULL || p->peers_file == NULL || pub == NULL ||
        epoch_out == NULL || p->unlock == NULL)
        return MS_ERR_ARG;
    if (strlen(p->dir) + 32 >= MS_TKMS_PATH_MAX)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "the directory name is too long");
    /* one refresh at a time, and no other process recovering under it */
    int lock = refresh_lock(p->dir, 0);
    if (lock == -1)
        return ms_detail_fail(MS_ERR_EXISTS, detail, detail_cap,
                              "a share refresh is running in %s already", p->dir);
    /* an earlier refresh interrupted here is finished or undone first */
    ms_err err = recover_locked(p->dir, NULL, detail, detail_cap);
    if (err != MS_OK) {
        if (lock >= 0)
            close(lock);
        return err;
    }
    char path[MS_TKMS_PATH_MAX];
    ms_peer_table *table = calloc(1, sizeof *table);
    mailbox *mb = calloc(1, sizeof *mb);
    node nd;
    memset(&nd, 0, sizeof nd);
    ms_tkms_server *s = NULL;
    ms_tkms_refresh *rf = NULL;
    ms_kms_secrets *sec = NULL;
    ms_unseal *u = NULL;
    ms_peer_server *srv = NULL;
    ms_peer_pins pins;
    ms_tkms_public old;
    ms_seal_params sp;
    unsigned pidx = 0, epoch = 0;
    uint8_t old_transcript[32], digest[64];
    int wrote_new = 0;
    err = table != NULL && mb != NULL ? MS_OK : MS_ERR_NOMEM;
    if (mb != NULL) {
        pthread_mutex_init(&mb->mu, NULL);
        pthread_cond_init(&mb->cv, NULL);
    }
    if (err == MS_OK)
        err = ms_peer_table_read(p->peers_file, table, detail, detail_cap);
    if (err == MS_OK)
        err = node_open(&nd, p->dir, table, detail, detail_cap);
    join(path, p->dir, "public.txt");
    if (err == MS_OK)
        err = ms_tkms_public_read(path, &old, &pidx, old_transcript, detail, detail_cap);
    if (err == MS_OK)
        err = ms_tkms_public_epoch(path, &epoch);
    if (err == MS_OK && (old.n != table->n || old.t != table->t || pidx != nd.me))
        err = ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap,
                             "public.txt is not of this table and server");
    /* the seal's method and parameters, to seal the new shares the same way */
    join(path, p->dir, "secrets.sealed");
    if (err == MS_OK)
        err = ms_unseal_open(&u, path, detail, detail_cap);
    if (err == MS_OK) {
        ms_unseal_params(u, &sp);
        if (sp.method == MS_SEAL_SHARES && p->share_out_dir == NULL)
            err = ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                                 "%s is sealed with custodian shares: the new shares need a "
                                 "--share-out-dir",
                                 path);
    }
    /* the new custodian shares must have room before the servers start: once the others
     * commit, this server has to as well */
    for (unsigned i = 1; err == MS_OK && sp.method == MS_SEAL_SHARES && i <= sp.n; i++) {
        char name[64];
        snprintf(name, sizeof name, "share-%u.key", i);
        if (exists_in(p->share_out_dir, name))
            err = ms_detail_fail(MS_ERR_EXISTS, detail, detail_cap,
                                 "%s/%s exists: give an empty --share-out-dir",
                                 p->share_out_dir, name);
    }
    if (err == MS_OK)
        err = unseal_secrets(p->dir, p->unlock, p->unlock_len, &sec, detail, detail_cap);
    if (err == MS_OK)
        err = ms_tkms_server_new(&s, table->n, table->t, nd.me, NULL);
    if (err == MS_OK && tkms_server_restore(s, &old, sec->gen[0].z, sec->gen[0].ksak) != MS_OK)
        err = ms_detail_fail(MS_ERR_INVALID, detail, detail_cap,
                             "the sealed shares are not those behind public.txt");
    if (err == MS_OK)
        err = ms_tkms_refresh_new(&rf, s);
    /* the session binds the table, the current transcript and epoch: servers at another
     * epoch (one that missed a refresh) do not talk */
    uint8_t extra[36];
    memcpy(extra, old_transcript, 32);
    ms_store_be32(extra + 32, epoch);
    if (err == MS_OK)
        err = session_id(mb->session, table, KIND_REFRESH, extra, sizeof extra);
    nd.timeout_ms = p->timeout_ms ? p->timeout_ms : 120000;
    nd.transcript = EVP_MD_CTX_new();
    if (err == MS_OK && (nd.transcript == NULL ||
                         EVP_DigestInit_ex(nd.transcript, EVP_sha256(), NULL) != 1))
        err = MS_ERR_INTERNAL;
    if (err == MS_OK)
        err = start_server(&nd, mb, KIND_REFRESH, MS_TKMS_REFRESH_ROUNDS + 1, &srv, &pins, detail,
                           detail_cap);
    if (err == MS_OK)
        err = run_rounds(&nd, KIND_REFRESH, &refresh_ops, rf,
                         ms_tkms_refresh_msg_max(table->n, table->t), detail, detail_cap);
    if (err == MS_OK)
        err = ms_tkms_refresh_public(rf, pub);
    if (err == MS_OK && (EVP_DigestFinal_ex(nd.transcript, digest, NULL) != 1 ||
                         result_hash(pub, digest + 32) != MS_OK))
        err = MS_ERR_INTERNAL;
    /* the new pair is written beside the old one before the confirmation: a server that
     * crashes now keeps its old files (ms_tkms_node_recover drops the new ones) */
    uint8_t shares[16][MS_KMS_SHARE_BYTES];
    size_t share_lens[16] = {0};
    if (err == MS_OK)
        err = ms_tkms_refresh_apply(rf);
    if (err == MS_OK) {
        ms_kms_generation *g = &sec->gen[0];
        tkms_share_bytes(s, g->z, g->ksak);
        memcpy(g->Z, pub->Zj[nd.me - 1], sizeof g->Z);
        memcpy(g->kpak, pub->kpakj[nd.me - 1], sizeof g->kpak);
        if (sp.method == MS_SEAL_PASSPHRASE) {
            sp.passphrase = p->unlock;
            sp.passphrase_len = p->unlock_len;
        } else if (sp.method == MS_SEAL_PKCS11) {
            sp.pin = p->unlock;
            sp.pin_len = p->unlock_len;
        }
        wrote_new = 1;
        join(path, p->dir, SECRETS_NEW);
        err = ms_seal_write(path, sec, &sp, shares, share_lens, detail, detail_cap);
    }
    if (err == MS_OK) {
        join(path, p->dir, PUBLIC_NEW);
        (void)unlink(path);
        err = public_write(path, pub, nd.me, digest, epoch + 1, detail, detail_cap);
    }
    if (err == MS_OK)
        err = confirm(&nd, KIND_REFRESH, MS_TKMS_REFRESH_ROUNDS + 1, digest, detail, detail_cap);
    if (srv != NULL)
        stop_server(srv);
    /* confirmed: the new custodian shares first (the new seal needs them), then the
     * commit mark, then the renames; a crash after the mark is finished by recover */
    for (unsigned i = 0; err == MS_OK && sp.method == MS_SEAL_SHARES && i < sp.n; i++) {
        if (i == 0 && mkdir(p->share_out_dir, 0700) != 0 && errno != EEXIST)
            err = ms_detail_fail(MS_ERR_IO, detail, detail_cap, "cannot create %s",
                                 p->share_out_dir);
        char name[64];
        snprintf(name, sizeof name, "share-%u.key", i + 1);
        join(path, p->share_out_dir, name);
        if (err == MS_OK)
            err = share_file_write(path, shares[i], share_lens[i], detail, detail_cap);
    }
    ms_wipe(shares, sizeof shares);
    /* the old public key shares stay public as public-eE.txt: a device naming the cheater
     * of a batch made before this refresh needs them */
    if (err == MS_OK) {
        uint8_t *text = NULL;
        size_t tl = 0;
        char name[64];
        snprintf(name, sizeof name, "public-e%u.txt", epoch);
        join(path, p->dir, "public.txt");
        if (ms_file_read(path, SIZE_MAX, &text, &tl) == MS_OK) {
            join(path, p->dir, name);
            (void)ms_peer_file_create(path, text, tl, false, NULL, 0); /* kept if there */
            free(text);
        }
    }
    if (err == MS_OK) {
        char mark[16];
        int ml = snprintf(mark, sizeof mark, "%u\n", epoch + 1);
        join(path, p->dir, REFRESH_MARK);
        (void)unlink(path);
        err = ms_peer_file_create(path, mark, (size_t)ml, false, detail, detail_cap);
    }
    if (err == MS_OK)
        err = recover_locked(p->dir, NULL, detail, detail_cap);
    else if (wrote_new && !exists_in(p->dir, REFRESH_MARK)) {
        unlink_in(p->dir, SECRETS_NEW);
        unlink_in(p->dir, PUBLIC_NEW);
    }
    if (err == MS_OK)
        *epoch_out = epoch + 1;
    ms_tkms_refresh_free(rf);
    ms_tkms_server_free(s);
    ms_kms_secrets_free(sec);
    ms_unseal_free(u);
    node_close(&nd);
    EVP_MD_CTX_free(nd.transcript);
    if (mb != NULL) {
        mailbox_free(mb);
        pthread_mutex_destroy(&mb->mu);
        pthread_cond_destroy(&mb->cv);
    }
    free(mb);
    free(table);
    if (lock >= 0)
        close(lock);
    return err;
}
