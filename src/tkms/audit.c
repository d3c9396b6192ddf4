/*
 * Audited extraction at one threshold server (formats and routes in audit.h). The order
 * of every extraction: warrant checked, its logging by t+1 servers checked, the slot
 * read, this server's own audit entry fsynced, and only then the share sealed and sent.
 * Nothing here ever reads SSK_j out of the slot into an answer.
 */
#include "tkms/audit.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "kms/audit.h"
#include "mikeysakke/crypto.h"
#include "net/hpke.h"
#include "net/peer_msg.h"
#include "net/peer_table.h"
#include "tkms/audit_wire.h"
#include "util/detail.h"
#include "util/hex.h"
#include "util/bytes.h"

#define ROLES_HEADER "mikeysakke-tkms-audit-roles 1\n"
#define LOG_FILE "warrants.log"

struct ms_tkms_audit {
    ms_tkms_service *svc;
    ms_audit *log;           /* audit.log */
    bool roles_set;
    ms_tkms_audit_roles roles;
    uint8_t roles_hash[32];
    uint8_t kms_hash[32];    /* SHA-256(Z || KPAK) */
    uint8_t session[32];     /* of checkpoints */
    pthread_mutex_t lock;    /* the warrant log */
    size_t size, cap;
    uint8_t (*w)[32];        /* w_1..w_size at [0..size-1] */
    uint8_t (*head)[32];     /* head_0..head_size */
    uint64_t now;            /* tests: a fixed clock */
};

static void join(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir != NULL ? dir : ".", name);
}

/* SHA-256 of a || b || c (b, c may be empty) */
static void sha256_3(uint8_t out[32], const void *a, size_t al, const void *b, size_t bl,
                     const void *c, size_t cl)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned ol = 0;
    if (m == NULL || EVP_DigestInit_ex(m, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(m, a, al) != 1 || EVP_DigestUpdate(m, b, bl) != 1 ||
        EVP_DigestUpdate(m, c, cl) != 1 || EVP_DigestFinal_ex(m, out, &ol) != 1)
        memset(out, 0, 32); /* never equal to a real head: every check then fails */
    EVP_MD_CTX_free(m);
}

/* ---- the audit key ------------------------------------------------------------------- */

ms_err ms_tkms_audit_key(const char *dir, uint8_t seed[32], uint8_t pub[32], char *detail,
                         size_t detail_cap)
{
    if (dir == NULL || seed == NULL || pub == NULL)
        return MS_ERR_ARG;
    char kp[MS_TKMS_PATH_MAX], pp[MS_TKMS_PATH_MAX];
    join(kp, sizeof kp, dir, "audit.key");
    join(pp, sizeof pp, dir, "audit.pub");
    struct stat st;
    if (stat(kp, &st) != 0 && errno == ENOENT) {
        uint8_t s[32], p[32];
        ms_err e = ms_peer_keygen(s, p, NULL);
        if (e == MS_OK)
            e = ms_peer_key_write(kp, s, true, detail, detail_cap);
        ms_wipe(s, sizeof s);
        /* another process made it meanwhile: use that one */
        if (e != MS_OK && e != MS_ERR_EXISTS)
            return e;
    }
    ms_err e = ms_peer_key_read(kp, seed, detail, detail_cap);
    if (e == MS_OK)
        e = ms_peer_public(seed, pub);
    if (e == MS_OK && stat(pp, &st) != 0) {
        e = ms_peer_key_write(pp, pub, false, detail, detail_cap);
        if (e == MS_ERR_EXISTS)
            e = MS_OK;
    }
    uint8_t on_file[32];
    if (e == MS_OK && (e = ms_peer_pub_read(pp, on_file, detail, detail_cap)) == MS_OK &&
        memcmp(on_file, pub, 32) != 0)
        e = ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap,
                           "%s is not the public key of %s", pp, kp);
    if (e != MS_OK)
        ms_wipe(seed, 32);
    return e;
}

/* ---- roles ----------------------------------------------------------------------------- */

static ms_err roles_text(const ms_tkms_audit_roles *r, char *out, size_t cap, size_t *len)
{
    size_t o = (size_t)snprintf(out, cap, "%s", ROLES_HEADER);
    char hex[65];
    ms_hex_encode_lower(hex, r->authority, 32);
    o += (size_t)snprintf(out + o, cap - o, "authority %s\n", hex);
    for (unsigned i = 0; i < r->n_approvers && o < cap; i++) {
        ms_hex_encode_lower(hex, r->approver[i], 32);
        o += (size_t)snprintf(out + o, cap - o, "approver %s\n", hex);
    }
    if (o >= cap)
        return MS_ERR_BUFFER_TOO_SMALL;
    *len = o;
    return MS_OK;
}

static ms_err roles_valid(const ms_tkms_audit_roles *r, char *detail, size_t detail_cap)
{
    if (r->n_approvers == 0 || r->n_approvers > MS_TKMS_AUDIT_MAX_APPROVERS)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                              "give 1 to %d approver keys", MS_TKMS_AUDIT_MAX_APPROVERS);
    for (unsigned i = 0; i < r->n_approvers; i++) {
        if (memcmp(r->approver[i], r->authority, 32) == 0)
            return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                                  "approver %u is the audit authority's key: a warrant needs "
                                  "two different people",
                                  i + 1);
        for (unsigned j = 0; j < i; j++)
            if (memcmp(r->approver[i], r->approver[j], 32) == 0)
                return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                                      "approvers %u and %u are the same key", j + 1, i + 1);
    }
    return MS_OK;
}

ms_err ms_tkms_audit_setup(const char *dir, const ms_tkms_audit_roles *roles, uint8_t hash[32],
                           char *detail, size_t detail_cap)
{
    if (dir == NULL || roles == NULL || hash == NULL)
        return MS_ERR_ARG;
    ms_err e = roles_valid(roles, detail, detail_cap);
    if (e != MS_OK)
        return e;
    char text[128 + 80 * (MS_TKMS_AUDIT_MAX_APPROVERS + 1)], path[MS_TKMS_PATH_MAX];
    size_t len = 0;
    if ((e = roles_text(roles, text, sizeof text, &len)) != MS_OK)
        return e;
    join(path, sizeof path, dir, "audit-roles.txt");
    if ((e = ms_peer_file_create(path, text, len, false, detail, detail_cap)) != MS_OK)
        return e == MS_ERR_EXISTS ? ms_detail_fail(e, detail, detail_cap,
                                                   "%s exists: this server's audit is set up "
                                                   "already",
                                                   path)
                                  : e;
    SHA256((const unsigned char *)text, len, hash);
    return MS_OK;
}

ms_err ms_tkms_audit_roles_read(const char *path, ms_tkms_audit_roles *r, uint8_t hash[32],
                                char *detail, size_t detail_cap)
{
    if (path == NULL || r == NULL || hash == NULL)
        return MS_ERR_ARG;
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap, "cannot read %s", path);
    char text[2048];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    size_t hl = strlen(ROLES_HEADER);
    ms_err bad = ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap, "%s is not an audit-roles "
                                                                  "file",
                                path);
    if (len < hl || memcmp(text, ROLES_HEADER, hl) != 0 || strlen(text) != len)
        return bad;
    bool have_auth = false;
    for (char *line = text + hl; *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl == NULL)
            return bad;
        *nl = '\0';
        const char *hex = NULL;
        uint8_t *dst = NULL;
        if (strncmp(line, "authority ", 10) == 0 && !have_auth) {
            hex = line + 10;
            dst = r->authority;
            have_auth = true;
        } else if (strncmp(line, "approver ", 9) == 0 &&
                   r->n_approvers < MS_TKMS_AUDIT_MAX_APPROVERS) {
            hex = line + 9;
            dst = r->approver[r->n_approvers++];
        }
        if (hex == NULL || ms_hex_decode(dst, 32, hex, strlen(hex)) != MS_OK)
            return bad;
        *nl = '\n';
        line = nl + 1;
    }
    if (!have_auth || roles_valid(r, NULL, 0) != MS_OK)
        return bad;
    SHA256((const unsigned char *)text, len, hash);
    return MS_OK;
}

/* ---- the warrant log ------------------------------------------------------------------- */

void ms_tkms_wlog_next(uint8_t out[32], const uint8_t prev[32], const uint8_t w[32])
{
    static const char label[] = "mikeysakke tkms warrant log";
    uint8_t pw[64]; /* out may be prev */
    memcpy(pw, prev, 32);
    memcpy(pw + 32, w, 32);
    sha256_3(out, label, sizeof label /* with its NUL */, pw, 64, "", 0);
}

static ms_err grow(ms_tkms_audit *a)
{
    if (a->size + 1 < a->cap)
        return MS_OK;
    size_t cap = a->cap != 0 ? a->cap * 2 : 64;
    uint8_t(*w)[32] = realloc(a->w, cap * 32);
    if (w == NULL)
        return MS_ERR_NOMEM;
    a->w = w;
    uint8_t(*h)[32] = realloc(a->head, (cap + 1) * 32);
    if (h == NULL)
        return MS_ERR_NOMEM;
    a->head = h;
    a->cap = cap;
    return MS_OK;
}

static ms_err wlog_load(ms_tkms_audit *a, char *detail, size_t detail_cap)
{
    if (grow(a) != MS_OK)
        return MS_ERR_NOMEM;
    memset(a->head[0], 0, 32);
    char path[MS_TKMS_PATH_MAX];
    join(path, sizeof path, ms_tkms_service_dir(a->svc), LOG_FILE);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return errno == ENOENT ? MS_OK
                               : ms_detail_fail(MS_ERR_IO, detail, detail_cap, "cannot read %s",
                                                path);
    char line[256];
    ms_err e = MS_OK;
    while (e == MS_OK && fgets(line, sizeof line, f) != NULL) {
        unsigned long long n = 0;
        char wh[80], hh[80];
        uint8_t w[32], h[32], want[32];
        if (strchr(line, '\n') == NULL || sscanf(line, "%llu %70s %70s", &n, wh, hh) != 3 ||
            n != a->size + 1 || ms_hex_decode(w, 32, wh, strlen(wh)) != MS_OK ||
            ms_hex_decode(h, 32, hh, strlen(hh)) != MS_OK) {
            e = ms_detail_fail(MS_ERR_AUDIT_CHAIN, detail, detail_cap,
                               "%s line %zu is malformed or out of order", path, a->size + 1);
            break;
        }
        ms_tkms_wlog_next(want, a->head[a->size], w);
        if (memcmp(want, h, 32) != 0) {
            e = ms_detail_fail(MS_ERR_AUDIT_CHAIN, detail, detail_cap,
                               "%s line %zu does not follow the line before it", path,
                               a->size + 1);
            break;
        }
        if ((e = grow(a)) != MS_OK)
            break;
        memcpy(a->w[a->size], w, 32);
        memcpy(a->head[a->size + 1], h, 32);
        a->size++;
    }
    fclose(f);
    return e;
}

static ms_err wlog_append(ms_tkms_audit *a, const uint8_t w[32])
{
    ms_err e = grow(a);
    if (e != MS_OK)
        return e;
    uint8_t h[32];
    ms_tkms_wlog_next(h, a->head[a->size], w);
    char line[200], wh[65], hh[65], path[MS_TKMS_PATH_MAX];
    ms_hex_encode_lower(wh, w, 32);
    ms_hex_encode_lower(hh, h, 32);
    int n = snprintf(line, sizeof line, "%zu %s %s\n", a->size + 1, wh, hh);
    join(path, sizeof path, ms_tkms_service_dir(a->svc), LOG_FILE);
    FILE *f = fopen(path, "ab");
    if (f == NULL)
        return MS_ERR_AUDIT_LOG;
    bool ok = fwrite(line, 1, (size_t)n, f) == (size_t)n && fflush(f) == 0 &&
              fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok)
        return MS_ERR_AUDIT_LOG;
    memcpy(a->w[a->size], w, 32);
    memcpy(a->head[a->size + 1], h, 32);
    a->size++;
    return MS_OK;
}

/* 1-based position of w, 0 if absent */
static size_t wlog_find(const ms_tkms_audit *a, const uint8_t w[32])
{
    for (size_t i = 0; i < a->size; i++)
        if (memcmp(a->w[i], w, 32) == 0)
            return i + 1;
    return 0;
}

/* ---- checkpoints ------------------------------------------------------------------------ */

size_t ms_tkms_checkpoint_text(char *out, size_t cap, const uint8_t kms_hash[32],
                               const uint8_t roles_hash[32], uint64_t size,
                               const uint8_t head[32])
{
    char k[65], r[65], h[65];
    ms_hex_encode_lower(k, kms_hash, 32);
    ms_hex_encode_lower(r, roles_hash, 32);
    ms_hex_encode_lower(h, head, 32);
    int n = snprintf(out, cap, "%skms %s\nroles %s\nsize %llu\nhead %s\n", MS_TKMS_CP_HEADER, k,
                     r, (unsigned long long)size, h);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

ms_err ms_tkms_checkpoint_parse(const uint8_t *text, size_t len, ms_tkms_checkpoint *cp)
{
    char buf[512];
    if (len >= sizeof buf || memchr(text, '\0', len) != NULL)
        return MS_ERR_BAD_ENCODING;
    memcpy(buf, text, len);
    buf[len] = '\0';
    char k[80], r[80], h[80];
    unsigned long long size = 0;
    size_t hl = strlen(MS_TKMS_CP_HEADER);
    if (len < hl || memcmp(buf, MS_TKMS_CP_HEADER, hl) != 0 ||
        sscanf(buf + hl, "kms %70s\nroles %70s\nsize %llu\nhead %70s\n", k, r, &size, h) != 4 ||
        ms_hex_decode(cp->kms_hash, 32, k, strlen(k)) != MS_OK ||
        ms_hex_decode(cp->roles_hash, 32, r, strlen(r)) != MS_OK ||
        ms_hex_decode(cp->head, 32, h, strlen(h)) != MS_OK)
        return MS_ERR_BAD_ENCODING;
    char again[512];
    cp->size = size;
    /* only the canonical form */
    if (ms_tkms_checkpoint_text(again, sizeof again, cp->kms_hash, cp->roles_hash, size,
                                cp->head) != len ||
        memcmp(again, buf, len) != 0)
        return MS_ERR_BAD_ENCODING;
    return MS_OK;
}

void ms_tkms_audit_session(uint8_t out[32], const ms_tkms_public *pub)
{
    static const char label[] = "mikeysakke tkms audit";
    sha256_3(out, label, sizeof label, pub->Z, sizeof pub->Z, pub->kpak, sizeof pub->kpak);
}

void ms_tkms_kms_hash(uint8_t out[32], const ms_tkms_public *pub)
{
    sha256_3(out, pub->Z, sizeof pub->Z, pub->kpak, sizeof pub->kpak, "", 0);
}

ms_err ms_tkms_proof_check(const uint8_t *proof, size_t len, uint64_t size,
                           const uint8_t head[32], const uint8_t w[32])
{
    if (len < 4 + 32)
        return MS_ERR_BAD_ENCODING;
    uint64_t k = (uint64_t)proof[0] << 24 | (uint64_t)proof[1] << 16 | (uint64_t)proof[2] << 8 |
                 proof[3];
    if (k < 1 || k > size || len != 4 + 32 + 32 * (size - k + 1))
        return MS_ERR_BAD_ENCODING;
    const uint8_t *p = proof + 4 + 32;
    if (memcmp(p, w, 32) != 0)
        return MS_ERR_INVALID;
    uint8_t h[32];
    memcpy(h, proof + 4, 32);
    for (uint64_t i = k; i <= size; i++, p += 32)
        ms_tkms_wlog_next(h, h, p);
    return memcmp(h, head, 32) == 0 ? MS_OK : MS_ERR_INVALID;
}

/* u32 len | signed checkpoint of the log now | u32 len | proof of entry k (0: no proof).
 * Called with the lock held. */
static ms_err checkpoint_answer(ms_tkms_audit *a, size_t k, uint8_t **out, size_t *out_len)
{
    char text[512];
    size_t tl = ms_tkms_checkpoint_text(text, sizeof text, a->kms_hash, a->roles_hash, a->size,
                                        a->head[a->size]);
    size_t pl = k != 0 ? 4 + 32 + 32 * (a->size - k + 1) : 0;
    size_t cap = 4 + tl + MS_PEER_MSG_OVERHEAD + 4 + pl, ml = 0;
    uint8_t *b = malloc(cap);
    if (tl == 0 || b == NULL) {
        free(b);
        return MS_ERR_NOMEM;
    }
    ms_peer_msg_hdr h = {.recipient = MS_PEER_TO_ALL, .kind = MS_TKMS_KIND_CHECKPOINT,
                         .round = 1};
    memcpy(h.session, a->session, 32);
    ms_err e = ms_tkms_service_sign(a->svc, &h, (const uint8_t *)text, tl, b + 4, cap - 4, &ml);
    if (e != MS_OK) {
        free(b);
        return e;
    }
    ms_store_be32(b, (uint32_t)ml);
    uint8_t *p = b + 4 + ml;
    ms_store_be32(p, (uint32_t)pl);
    if (k != 0) {
        ms_store_be32(p + 4, (uint32_t)k);
        memcpy(p + 8, a->head[k - 1], 32);
        for (size_t i = k; i <= a->size; i++)
            memcpy(p + 8 + 32 + 32 * (i - k), a->w[i - 1], 32);
    }
    *out = b;
    *out_len = 4 + ml + 4 + pl;
    return MS_OK;
}

/* ---- open and close ---------------------------------------------------------------------- */

ms_err ms_tkms_audit_open(ms_tkms_audit **out, ms_tkms_service *svc, char *detail,
                          size_t detail_cap)
{
    if (out == NULL || svc == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    ms_tkms_audit *a = calloc(1, sizeof *a);
    if (a == NULL)
        return MS_ERR_NOMEM;
    a->svc = svc;
    pthread_mutex_init(&a->lock, NULL);
    ms_tkms_kms_hash(a->kms_hash, ms_tkms_service_public(svc));
    ms_tkms_audit_session(a->session, ms_tkms_service_public(svc));
    const char *dir = ms_tkms_service_dir(svc);
    char path[MS_TKMS_PATH_MAX];
    uint8_t seed[32], pub[32];
    ms_err e = ms_tkms_audit_key(dir, seed, pub, detail, detail_cap);
    join(path, sizeof path, dir, "audit.log");
    if (e == MS_OK && (e = ms_audit_open(&a->log, path, seed)) != MS_OK)
        ms_detail_set(detail, detail_cap, "the audit log %s cannot be opened (%s)", path,
                      e == MS_ERR_AUDIT_CHAIN ? "its last entry does not verify"
                                              : "not writable");
    ms_wipe(seed, sizeof seed);
    join(path, sizeof path, dir, "audit-roles.txt");
    if (e == MS_OK && access(path, F_OK) == 0) {
        e = ms_tkms_audit_roles_read(path, &a->roles, a->roles_hash, detail, detail_cap);
        a->roles_set = e == MS_OK;
    }
    if (e == MS_OK)
        e = wlog_load(a, detail, detail_cap);
    if (e != MS_OK) {
        ms_tkms_audit_close(a);
        return e;
    }
    *out = a;
    return MS_OK;
}

void ms_tkms_audit_close(ms_tkms_audit *a)
{
    if (a == NULL)
        return;
    ms_audit_close(a->log);
    pthread_mutex_destroy(&a->lock);
    free(a->w);
    free(a->head);
    free(a);
}

void ms_tkms_audit_set_time(ms_tkms_audit *a, uint64_t unix_now)
{
    a->now = unix_now;
}

static uint64_t now_of(const ms_tkms_audit *a)
{
    return a->now != 0 ? a->now : (uint64_t)time(NULL);
}

/* ---- routes ---------------------------------------------------------------------------- */

static int status_of(ms_err e)
{
    switch (e) {
    case MS_ERR_ARG:
    case MS_ERR_BAD_ENCODING:
    case MS_ERR_BAD_LENGTH:
        return 400;
    case MS_ERR_APPROVAL:
    case MS_ERR_REQUEST_STALE:
    case MS_ERR_AUDIT_SCOPE:
    case MS_ERR_WARRANT_UNLOGGED:
        return 403;
    case MS_ERR_IDENTITY:
    case MS_ERR_IO:
        return 404;
    case MS_ERR_AUDIT_LOG:
    case MS_ERR_AUDIT_CHAIN:
    case MS_ERR_CONFIG:
        return 503;
    default:
        return 500;
    }
}

static void refuse(ms_http_response *resp, ms_err e, const char *detail)
{
    resp->status = status_of(e);
    resp->content_type = "text/plain";
    size_t cap = strlen(detail) + 32;
    resp->body = malloc(cap);
    if (resp->body == NULL)
        return;
    int n = snprintf(resp->body, cap, "code %d: %s\n", (int)e,
                     detail[0] != '\0' ? detail : ms_strerror(e));
    resp->body_len = n > 0 ? (size_t)n : 0;
}

static ms_err parse_warrant(ms_tkms_audit *a, const char *text, size_t len, ms_tkms_warrant *w,
                            char *detail, size_t cap)
{
    if (!a->roles_set)
        return ms_detail_fail(MS_ERR_CONFIG, detail, cap,
                              "audit is not set up at server %u (kms threshold audit-setup)",
                              ms_tkms_service_index(a->svc));
    ms_err e = ms_tkms_warrant_parse(text, len, w, detail, cap);
    if (e == MS_OK)
        e = ms_tkms_warrant_check(w, text, &a->roles, now_of(a), detail, cap);
    return e;
}

static ms_err on_warrant(ms_tkms_audit *a, const ms_http_request *req, uint8_t **out,
                         size_t *out_len, char *detail, size_t cap)
{
    ms_tkms_warrant w;
    ms_err e = parse_warrant(a, (const char *)req->body, req->body_len, &w, detail, cap);
    if (e != MS_OK)
        return e;
    pthread_mutex_lock(&a->lock);
    size_t k = wlog_find(a, w.hash);
    if (k == 0) {
        /* the audit entry first: a warrant in the log is always in audit.log too */
        char wh[65], ex[24], size[24];
        ms_hex_encode_lower(wh, w.hash, 32);
        snprintf(ex, sizeof ex, "%llu", (unsigned long long)w.expires);
        snprintf(size, sizeof size, "%zu", a->size + 1);
        ms_audit_field f[] = {{"user", w.user},   {"period", w.period}, {"reason", w.reason},
                              {"warrant", wh},    {"expires", ex},      {"nonce", w.nonce},
                              {"log_size", size}};
        e = ms_audit_append(a->log, 0, "warrant", f, sizeof f / sizeof f[0], NULL, NULL);
        if (e != MS_OK)
            ms_detail_set(detail, cap, "server %u cannot write its audit log: the warrant is "
                                       "not logged",
                          ms_tkms_service_index(a->svc));
        if (e == MS_OK && (e = wlog_append(a, w.hash)) != MS_OK)
            ms_detail_set(detail, cap, "server %u cannot write its warrant log",
                          ms_tkms_service_index(a->svc));
        k = a->size;
    }
    if (e == MS_OK)
        e = checkpoint_answer(a, k, out, out_len);
    pthread_mutex_unlock(&a->lock);
    return e;
}

/* Counts the distinct servers whose signed checkpoint (of this KMS and these roles)
 * includes w; *why: the first reason an item did not count. */
static unsigned count_logged(ms_tkms_audit *a, const uint8_t *p, size_t len, const uint8_t w[32],
                             char *why, size_t why_cap)
{
    ms_peer_keys keys;
    ms_peer_table_keys(ms_tkms_service_peers(a->svc), &keys);
    uint32_t seen = 0;
    unsigned count = 0;
    if (len < 1)
        return 0;
    unsigned items = p[0];
    size_t o = 1;
    for (unsigned i = 0; i < items; i++) {
        if (o + 4 > len || ms_load_be32(p + o) > len - o - 4) {
            ms_detail_set(why, why_cap, "item %u of the evidence is cut short", i + 1);
            break;
        }
        size_t ml = ms_load_be32(p + o);
        const uint8_t *msg = p + o + 4;
        o += 4 + ml;
        if (o + 4 > len || ms_load_be32(p + o) > len - o - 4) {
            ms_detail_set(why, why_cap, "item %u of the evidence is cut short", i + 1);
            break;
        }
        size_t pl = ms_load_be32(p + o);
        const uint8_t *proof = p + o + 4;
        o += 4 + pl;
        ms_peer_msg_hdr h;
        const uint8_t *cp_text = NULL;
        size_t cl = 0;
        char d[200] = "";
        ms_tkms_checkpoint cp;
        if (ms_peer_msg_open(&keys, a->session, 0, NULL, msg, ml, &h, &cp_text, &cl, d,
                             sizeof d) != MS_OK ||
            h.kind != MS_TKMS_KIND_CHECKPOINT) {
            if (why[0] == '\0')
                ms_detail_set(why, why_cap, "a checkpoint is not signed by a server of the "
                                            "peers table (%s)",
                              d);
            continue;
        }
        if (ms_tkms_checkpoint_parse(cp_text, cl, &cp) != MS_OK) {
            if (why[0] == '\0')
                ms_detail_set(why, why_cap, "server %u's checkpoint is malformed", h.sender);
            continue;
        }
        if (memcmp(cp.kms_hash, a->kms_hash, 32) != 0 ||
            memcmp(cp.roles_hash, a->roles_hash, 32) != 0) {
            if (why[0] == '\0')
                ms_detail_set(why, why_cap, "server %u's checkpoint is for %s", h.sender,
                              memcmp(cp.kms_hash, a->kms_hash, 32) != 0
                                  ? "another KMS"
                                  : "other warrant keys (its audit-roles.txt differs)");
            continue;
        }
        if (ms_tkms_proof_check(proof, pl, cp.size, cp.head, w) != MS_OK) {
            if (why[0] == '\0')
                ms_detail_set(why, why_cap, "server %u's checkpoint does not include the "
                                            "warrant",
                              h.sender);
            continue;
        }
        if (!(seen & (1u << (h.sender - 1)))) {
            seen |= 1u << (h.sender - 1);
            count++;
        }
    }
    return count;
}

typedef struct extract_req {
    char user[256];
    char period[33];
    const char *warrant;
    size_t warrant_len;
    const uint8_t *evidence;
    size_t evidence_len;
} extract_req;

static ms_err parse_extract(const uint8_t *b, size_t len, extract_req *r)
{
    size_t o = 0;
    if (len < 2 || (size_t)(b[0] << 8 | b[1]) >= sizeof r->user ||
        len - 2 < (size_t)(b[0] << 8 | b[1]))
        return MS_ERR_BAD_ENCODING;
    size_t ul = (size_t)b[0] << 8 | b[1];
    memcpy(r->user, b + 2, ul);
    r->user[ul] = '\0';
    o = 2 + ul;
    if (len - o < 2 || (size_t)(b[o] << 8 | b[o + 1]) >= sizeof r->period ||
        len - o - 2 < (size_t)(b[o] << 8 | b[o + 1]))
        return MS_ERR_BAD_ENCODING;
    size_t pl = (size_t)b[o] << 8 | b[o + 1];
    memcpy(r->period, b + o + 2, pl);
    r->period[pl] = '\0';
    o += 2 + pl;
    if (len - o < 4 || ms_load_be32(b + o) > len - o - 4)
        return MS_ERR_BAD_ENCODING;
    r->warrant_len = ms_load_be32(b + o);
    r->warrant = (const char *)b + o + 4;
    o += 4 + r->warrant_len;
    r->evidence = b + o;
    r->evidence_len = len - o;
    if (strlen(r->user) != ul || strlen(r->period) != pl)
        return MS_ERR_BAD_ENCODING;
    return MS_OK;
}

size_t ms_tkms_audit_share_info(uint8_t *info, const uint8_t sid[32], unsigned index,
                                const uint8_t w[32])
{
    static const char label[] = "mikeysakke tkms audit share";
    memcpy(info, label, sizeof label);
    memcpy(info + sizeof label, sid, 32);
    info[sizeof label + 32] = (uint8_t)index;
    memcpy(info + sizeof label + 33, w, 32);
    return sizeof label + 65;
}

static ms_err on_extract(ms_tkms_audit *a, const ms_http_request *req, uint8_t **out,
                         size_t *out_len, char *detail, size_t cap)
{
    extract_req r;
    unsigned me = ms_tkms_service_index(a->svc);
    if (parse_extract(req->body, req->body_len, &r) != MS_OK)
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, cap, "not an extraction request");
    ms_tkms_warrant w;
    ms_err e = parse_warrant(a, r.warrant, r.warrant_len, &w, detail, cap);
    if (e != MS_OK)
        return e;
    if (strcmp(w.user, r.user) != 0 || strcmp(w.period, r.period) != 0)
        return ms_detail_fail(MS_ERR_AUDIT_SCOPE, detail, cap,
                              "the warrant is for %s in period %s, not %s in period %s", w.user,
                              w.period, r.user, r.period);
    char why[300] = "";
    unsigned logged = count_logged(a, r.evidence, r.evidence_len, w.hash, why, sizeof why);
    unsigned t = ms_tkms_service_peers(a->svc)->t;
    if (logged < t + 1)
        return ms_detail_fail(MS_ERR_WARRANT_UNLOGGED, detail, cap,
                              "the warrant is in the logged checkpoints of %u server%s, %u "
                              "needed%s%s",
                              logged, logged == 1 ? "" : "s", t + 1, why[0] ? ": " : "", why);
    ms_tkms_share share;
    uint8_t rec[MS_TKMS_RECORD_MAX];
    size_t rl = 0;
    if ((e = ms_tkms_service_slot(a->svc, r.period, r.user, &share, rec, sizeof rec, &rl, detail,
                                  cap)) != MS_OK)
        return e;
    ms_wipe(share.ssk, sizeof share.ssk); /* never leaves, never needed */
    ms_tkms_record rc;
    size_t used = 0;
    if ((e = ms_tkms_record_decode(&rc, rec, rl, &used)) != MS_OK) {
        ms_wipe(&share, sizeof share);
        return e;
    }
    /* the entry before anything leaves */
    char wh[65], ak[65], by[12];
    ms_hex_encode_lower(wh, w.hash, 32);
    ms_hex_encode_lower(ak, w.auditor_pub, 32);
    snprintf(by, sizeof by, "%u", me);
    ms_audit_field f[] = {{"user", w.user},       {"period", w.period}, {"reason", w.reason},
                          {"warrant", wh},        {"nonce", w.nonce},   {"auditor_key", ak},
                          {"key", "u_share"},     {"server", by}};
    e = ms_audit_append(a->log, 0, "extract", f, sizeof f / sizeof f[0], NULL, NULL);
    if (e != MS_OK) {
        ms_wipe(&share, sizeof share);
        return ms_detail_fail(MS_ERR_AUDIT_LOG, detail, cap,
                              "server %u cannot write its audit log: nothing is released", me);
    }
    uint8_t info[128];
    size_t il = ms_tkms_audit_share_info(info, rc.sid, me, w.hash);
    size_t pcap = 2 + rl + MS_SAKKE_SECRET_BYTES + MS_HPKE_OVERHEAD, sl = 0, ml = 0;
    uint8_t *payload = malloc(pcap), *msg = malloc(pcap + MS_PEER_MSG_OVERHEAD);
    e = payload != NULL && msg != NULL ? MS_OK : MS_ERR_NOMEM;
    if (e == MS_OK) {
        payload[0] = (uint8_t)(rl >> 8);
        payload[1] = (uint8_t)rl;
        memcpy(payload + 2, rec, rl);
        e = ms_hpke_seal(w.auditor_pub, info, il, rec, rl, share.u, sizeof share.u,
                         payload + 2 + rl, pcap - 2 - rl, &sl, NULL);
    }
    ms_wipe(&share, sizeof share);
    if (e == MS_OK) {
        ms_peer_msg_hdr h = {.recipient = MS_PEER_TO_ALL, .kind = MS_TKMS_KIND_AUDIT_SHARE,
                             .round = 1};
        memcpy(h.session, w.hash, 32);
        e = ms_tkms_service_sign(a->svc, &h, payload, 2 + rl + sl, msg,
                                 pcap + MS_PEER_MSG_OVERHEAD, &ml);
    }
    free(payload);
    if (e != MS_OK) {
        free(msg);
        return ms_detail_fail(e, detail, cap, "server %u could not seal its share", me);
    }
    *out = msg;
    *out_len = ml;
    return MS_OK;
}

bool ms_tkms_audit_handle(ms_tkms_audit *a, const ms_http_request *req, ms_http_response *resp)
{
    static const char prefix[] = "/tkms/audit/";
    if (a == NULL || req == NULL || resp == NULL || req->path == NULL ||
        strncmp(req->path, prefix, sizeof prefix - 1) != 0)
        return false;
    const char *route = req->path + sizeof prefix - 1;
    char detail[600] = "";
    uint8_t *out = NULL;
    size_t out_len = 0;
    ms_err e;
    bool warrant = strcmp(route, "warrant") == 0, extract = strcmp(route, "extract") == 0;
    if (!warrant && !extract)
        e = ms_detail_fail(MS_ERR_IO, detail, sizeof detail, "no such audit route: %s",
                           req->path);
    else if (strcmp(req->method, "POST") != 0)
        e = ms_detail_fail(MS_ERR_ARG, detail, sizeof detail, "%s takes POST", req->path);
    else if (warrant)
        e = on_warrant(a, req, &out, &out_len, detail, sizeof detail);
    else
        e = on_extract(a, req, &out, &out_len, detail, sizeof detail);
    if (e != MS_OK) {
        refuse(resp, e, detail);
        return true;
    }
    resp->status = 200;
    resp->content_type = "application/octet-stream";
    resp->body = (char *)out;
    resp->body_len = out_len;
    return true;
}
