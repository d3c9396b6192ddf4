/*
 * The MIKEY-SAKKE I_MESSAGE (RFC 6509) and its TS 33.180 profile: one user's context
 * (trusted KMSs, own keys by key period, peer and replay caches), the initiator that
 * builds and signs the message and the responder that checks it in the order of
 * mikey.h and recovers the key.
 *
 * Message layout we send (digest 4.1, 6.3):
 *   HDR, T (NTP-UTC), RAND (16), IDRi|IDRuidi, IDRr|IDRuidr, IDRkmsi, IDRkmsr, [SP],
 *   SAKKE, [GENERAL-EXT 6 SAKKE-to-self], [GENERAL-EXT 7 key parameters], SIGN (ECCSI)
 * The signature covers the message up to and including the SIGN header (digest 4.7).
 *
 * Secrets: the key (SSV) only lives in stack buffers that are wiped and in the caller's
 * result; raw RSKs of the cold path are kept in ms_secure memory; SSKs and prepared RSKs
 * are inside the crypto objects, which wipe themselves.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto/rng.h"
#include "crypto/secmem.h"
#include "imessage_internal.h"
#include "util/bytes.h"

#define MAX_KMS 16
#define MAX_KEYS 64
#define MAX_PEERS 8
#define DEFAULT_SKEW 300u
#define DEFAULT_REPLAY 4096u
#define DEFAULT_REPLAY_PER_SENDER 64u
#define DEFAULT_GRACE (2u * 86400u)
#define RAND_BYTES 16
#define URI_MAX 255 /* so that every URI fits the result's 256-octet strings */
#define KEY_BYTES MS_SAKKE_SSV_BYTES
#define INNER_SAKKE_BYTES (5 + MS_SAKKE_SED_BYTES)

typedef struct kms_entry {
    char *uri;
    char *scheme_uri; /* the KMS URI of the UID (P2); may alias uri */
    ms_id_scheme scheme;
    uint8_t kpak[MS_ECCSI_POINT_BYTES];
    ms_sakke_kms *sakke;
    ms_eccsi_verifier *verifier;
} kms_entry;

typedef struct key_entry {
    size_t kms;
    uint64_t period_no;
    uint8_t id[MS_SAKKE_ID_MAX_BYTES]; /* own identifier for this KMS and period */
    size_t id_len;
    ms_sakke_prepared_rsk *prep; /* cfg.prepare */
    uint8_t *rsk;                /* cold path: MS_SAKKE_POINT_BYTES in secure memory */
    ms_eccsi_signer *signer;
} key_entry;

typedef struct peer_entry {
    size_t kms;
    uint64_t period_no;
    uint8_t id[MS_SAKKE_ID_MAX_BYTES];
    size_t id_len;
    ms_sakke_peer *peer;
    uint64_t used; /* least recently used is evicted */
} peer_entry;

struct ms_mikey_ctx {
    ms_mikey_config cfg;
    char *own_uri;
    kms_entry kms[MAX_KMS];
    size_t n_kms;
    key_entry keys[MAX_KEYS];
    size_t n_keys;
    peer_entry peers[MAX_PEERS];
    size_t n_peers;
    uint64_t use_counter;
    ms_replay_cache *replay;
    /* SAKKE encapsulation is deterministic in (SSV, identifier): a GMS sending one key
     * to many members reuses its SAKKE-to-self. Tag = SHA-256(key || KMS || own id). */
    bool self_cached;
    uint8_t self_tag[32];
    uint8_t self_sed[MS_SAKKE_SED_BYTES];
};

/* ---- helpers -------------------------------------------------------------------------- */

static bool is_3gpp(ms_mikey_profile p)
{
    return p == MS_MIKEY_PROFILE_PCK || p == MS_MIKEY_PROFILE_GMK || p == MS_MIKEY_PROFILE_CSK;
}

static uint8_t profile_scheme(ms_mikey_profile p)
{
    return is_3gpp(p) ? MS_MIKEY_ID_SCHEME_HASHED_UID : MS_MIKEY_ID_SCHEME_TEL_MONTHLY;
}

static uint32_t profile_purpose(ms_mikey_profile p)
{
    switch (p) {
    case MS_MIKEY_PROFILE_PCK: return MS_MIKEY_PURPOSE_PCK;
    case MS_MIKEY_PROFILE_CSK: return MS_MIKEY_PURPOSE_CSK;
    default: return MS_MIKEY_PURPOSE_GMK;
    }
}

/* Errors that say the machine failed rather than the message. */
static bool is_resource_err(ms_err e)
{
    return e == MS_ERR_NOMEM || e == MS_ERR_INTERNAL || e == MS_ERR_RNG;
}

static uint64_t now_ntp(const ms_mikey_ctx *ctx)
{
    return ctx->cfg.clock != NULL ? ctx->cfg.clock(ctx->cfg.clock_ctx) : ms_ntp_now();
}

static uint64_t skew32(const ms_mikey_ctx *ctx)
{
    return ctx->cfg.max_skew << 32;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 5, 6)))
#endif
static ms_err refuse(ms_mikey_diag *diag, ms_err err, int payload, size_t offset,
                     const char *fmt, ...)
{
    if (diag != NULL) {
        diag->payload = payload;
        diag->offset = offset;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(diag->detail, sizeof diag->detail, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* KMS by name; NULL names the default (first) KMS. -1 if unknown. */
static int kms_by_name(const ms_mikey_ctx *ctx, const char *uri)
{
    if (uri == NULL)
        return ctx->n_kms > 0 ? 0 : -1;
    for (size_t i = 0; i < ctx->n_kms; i++)
        if (strcmp(ctx->kms[i].uri, uri) == 0)
            return (int)i;
    return -1;
}

static int kms_by_span(const ms_mikey_ctx *ctx, ms_mikey_span s)
{
    for (size_t i = 0; i < ctx->n_kms; i++)
        if (strlen(ctx->kms[i].uri) == s.len && memcmp(ctx->kms[i].uri, s.data, s.len) == 0)
            return (int)i;
    return -1;
}

static key_entry *find_keys(ms_mikey_ctx *ctx, size_t kms, uint64_t period_no)
{
    for (size_t i = 0; i < ctx->n_keys; i++)
        if (ctx->keys[i].kms == kms && ctx->keys[i].period_no == period_no)
            return &ctx->keys[i];
    return NULL;
}

static void key_entry_clear(key_entry *k)
{
    ms_sakke_prepared_rsk_free(k->prep);
    ms_secure_free(k->rsk, MS_SAKKE_POINT_BYTES);
    ms_eccsi_signer_free(k->signer);
    memset(k, 0, sizeof *k);
}

static void peer_entry_clear(peer_entry *p)
{
    ms_sakke_peer_free(p->peer);
    memset(p, 0, sizeof *p);
}

static ms_err identifier(const ms_mikey_ctx *ctx, size_t kms, uint8_t out[MS_SAKKE_ID_MAX_BYTES],
                         size_t *out_len, const char *uri, uint64_t period_no)
{
    return ms_identifier(&ctx->kms[kms].scheme, out, MS_SAKKE_ID_MAX_BYTES, out_len, uri,
                         period_no);
}

/* Key period of NTP 32.32 time t in the scheme of KMS kms. */
static ms_err period_of(const ms_mikey_ctx *ctx, size_t kms, uint64_t *period_no, uint64_t t)
{
    return ms_key_period(&ctx->kms[kms].scheme, period_no, t >> 32);
}

/* An IDR's URI as a C string; false when it is empty, too long or holds a NUL. */
static bool span_uri(char out[URI_MAX + 1], ms_mikey_span s)
{
    if (s.len == 0 || s.len > URI_MAX || memchr(s.data, 0, s.len) != NULL)
        return false;
    memcpy(out, s.data, s.len);
    out[s.len] = '\0';
    return true;
}

static bool span_is(ms_mikey_span s, const char *str)
{
    return strlen(str) == s.len && memcmp(s.data, str, s.len) == 0;
}

static void copy_str(char dst[256], const char *src)
{
    size_t n = strlen(src);
    if (n > 255)
        n = 255;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ---- context --------------------------------------------------------------------------- */

ms_err ms_mikey_ctx_new(ms_mikey_ctx **out, const ms_mikey_config *cfg)
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    if (cfg == NULL || cfg->own_uri == NULL)
        return MS_ERR_ARG;
    size_t ul = strlen(cfg->own_uri);
    if (ul == 0 || ul > URI_MAX)
        return MS_ERR_IDENTITY;
    if (cfg->profile != MS_MIKEY_PROFILE_RFC6509 && !is_3gpp(cfg->profile))
        return MS_ERR_ARG;
    /* max_skew is shifted into 32.32 fixed point: keep it meaningful. */
    if (cfg->max_skew > 0xFFFFFFFFu)
        return MS_ERR_ARG;

    ms_mikey_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return MS_ERR_NOMEM;
    ctx->cfg = *cfg;
    ctx->own_uri = dup_str(cfg->own_uri);
    if (ctx->own_uri == NULL) {
        free(ctx);
        return MS_ERR_NOMEM;
    }
    ctx->cfg.own_uri = ctx->own_uri;
    if (ctx->cfg.max_skew == 0)
        ctx->cfg.max_skew = DEFAULT_SKEW;
    if (ctx->cfg.replay_capacity == 0)
        ctx->cfg.replay_capacity = DEFAULT_REPLAY;
    if (ctx->cfg.period_grace == 0)
        ctx->cfg.period_grace = DEFAULT_GRACE;
    if (ctx->cfg.replay_per_sender == 0)
        ctx->cfg.replay_per_sender = DEFAULT_REPLAY_PER_SENDER;
    if (ctx->cfg.replay_per_sender > ctx->cfg.replay_capacity)
        ctx->cfg.replay_per_sender = ctx->cfg.replay_capacity;
    ms_err err = ms_replay_cache_new(&ctx->replay, ctx->cfg.replay_capacity,
                                     ctx->cfg.replay_per_sender);
    if (err != MS_OK) {
        free(ctx->own_uri);
        free(ctx);
        return err;
    }
    *out = ctx;
    return MS_OK;
}

void ms_mikey_ctx_free(ms_mikey_ctx *ctx)
{
    if (ctx == NULL)
        return;
    /* peers and prepared RSKs refer to their KMS object: free them first */
    for (size_t i = 0; i < ctx->n_peers; i++)
        peer_entry_clear(&ctx->peers[i]);
    for (size_t i = 0; i < ctx->n_keys; i++)
        key_entry_clear(&ctx->keys[i]);
    for (size_t i = 0; i < ctx->n_kms; i++) {
        kms_entry *k = &ctx->kms[i];
        ms_sakke_kms_free(k->sakke);
        ms_eccsi_verifier_free(k->verifier);
        if (k->scheme_uri != k->uri)
            free(k->scheme_uri);
        free(k->uri);
    }
    ms_replay_cache_free(ctx->replay);
    free(ctx->own_uri);
    ms_wipe(ctx, sizeof *ctx);
    free(ctx);
}

ms_err ms_mikey_add_kms(ms_mikey_ctx *ctx, const ms_mikey_kms_info *info)
{
    if (ctx == NULL || info == NULL || info->uri == NULL || info->Z == NULL ||
        info->kpak == NULL)
        return MS_ERR_ARG;
    size_t ul = strlen(info->uri);
    if (ul == 0 || ul > URI_MAX)
        return MS_ERR_IDENTITY;
    /* The profile fixes the identifier scheme: RFC 6509 monthly tel identifiers, 3GPP
     * the hashed UID (TS 33.180 F.2.1). */
    if (info->scheme.scheme != profile_scheme(ctx->cfg.profile))
        return MS_ERR_MIKEY_UNSUPPORTED;
    if (info->scheme.scheme == MS_MIKEY_ID_SCHEME_HASHED_UID && info->scheme.period_len == 0)
        return MS_ERR_ARG;
    if (kms_by_name(ctx, info->uri) >= 0 || ctx->n_kms == MAX_KMS)
        return MS_ERR_ARG;

    kms_entry k;
    memset(&k, 0, sizeof k);
    ms_err err = MS_ERR_NOMEM;
    k.uri = dup_str(info->uri);
    if (k.uri == NULL)
        goto fail;
    k.scheme_uri = k.uri;
    if (info->scheme.kms_uri != NULL) {
        k.scheme_uri = dup_str(info->scheme.kms_uri);
        if (k.scheme_uri == NULL)
            goto fail;
    }
    k.scheme = info->scheme;
    k.scheme.kms_uri = k.scheme_uri;
    memcpy(k.kpak, info->kpak, MS_ECCSI_POINT_BYTES);
    err = ms_eccsi_verifier_new(&k.verifier, info->kpak);
    if (err != MS_OK)
        goto fail;
    err = ms_sakke_kms_new(&k.sakke, info->Z);
    if (err != MS_OK)
        goto fail;
    /* a prepared (live) context makes offers: their cold SAKKE-to-self encapsulation
     * needs the KMS object's sender tables, built now rather than in the first call */
    if (ctx->cfg.prepare && (err = ms_sakke_kms_prepare_sender(k.sakke)) != MS_OK) {
        ms_sakke_kms_free(k.sakke);
        goto fail;
    }
    ctx->kms[ctx->n_kms++] = k;
    return MS_OK;
fail:
    ms_eccsi_verifier_free(k.verifier);
    if (k.scheme_uri != k.uri)
        free(k.scheme_uri);
    free(k.uri);
    return err;
}

ms_err ms_mikey_add_keys(ms_mikey_ctx *ctx, const char *kms_uri, uint64_t period_no,
                         const uint8_t rsk[MS_SAKKE_POINT_BYTES],
                         const uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                         const uint8_t pvt[MS_ECCSI_POINT_BYTES])
{
    if (ctx == NULL || (rsk == NULL && ssk == NULL) || ((ssk == NULL) != (pvt == NULL)))
        return MS_ERR_ARG;
    int ki = kms_by_name(ctx, kms_uri);
    if (ki < 0)
        return MS_ERR_MIKEY_UNKNOWN_KMS;
    const kms_entry *kms = &ctx->kms[ki];

    key_entry k;
    memset(&k, 0, sizeof k);
    k.kms = (size_t)ki;
    k.period_no = period_no;
    ms_err err = identifier(ctx, k.kms, k.id, &k.id_len, ctx->own_uri, period_no);
    if (err != MS_OK)
        return err;
    if (rsk != NULL) {
        if (ctx->cfg.prepare) {
            err = ms_sakke_prepared_rsk_new(&k.prep, kms->sakke, k.id, k.id_len, rsk);
        } else {
            err = ms_sakke_rsk_validate(kms->sakke, k.id, k.id_len, rsk);
            if (err == MS_OK) {
                k.rsk = ms_secure_alloc(MS_SAKKE_POINT_BYTES);
                if (k.rsk == NULL)
                    err = MS_ERR_NOMEM;
                else
                    memcpy(k.rsk, rsk, MS_SAKKE_POINT_BYTES);
            }
        }
        if (err != MS_OK)
            goto fail;
    }
    if (ssk != NULL) {
        err = ms_eccsi_signer_new(&k.signer, kms->kpak, k.id, k.id_len, ssk, pvt);
        if (err != MS_OK)
            goto fail;
    }

    key_entry *old = find_keys(ctx, k.kms, period_no);
    if (old != NULL) {
        key_entry_clear(old);
        *old = k;
    } else if (ctx->n_keys < MAX_KEYS) {
        ctx->keys[ctx->n_keys++] = k;
    } else {
        err = MS_ERR_NOMEM;
        goto fail;
    }
    return MS_OK;
fail:
    key_entry_clear(&k);
    return err;
}

void ms_mikey_purge_keys(ms_mikey_ctx *ctx, const char *kms_uri, uint64_t period_no)
{
    if (ctx == NULL)
        return;
    int ki = -2; /* NULL: every KMS */
    if (kms_uri != NULL) {
        ki = kms_by_name(ctx, kms_uri);
        if (ki < 0)
            return;
    }
    size_t w = 0;
    for (size_t i = 0; i < ctx->n_keys; i++) {
        key_entry *k = &ctx->keys[i];
        if ((ki == -2 || k->kms == (size_t)ki) && k->period_no < period_no) {
            key_entry_clear(k);
            continue;
        }
        if (w != i) {
            ctx->keys[w] = *k;
            memset(k, 0, sizeof *k);
        }
        w++;
    }
    ctx->n_keys = w;
    w = 0;
    for (size_t i = 0; i < ctx->n_peers; i++) {
        peer_entry *p = &ctx->peers[i];
        if ((ki == -2 || p->kms == (size_t)ki) && p->period_no < period_no) {
            peer_entry_clear(p);
            continue;
        }
        if (w != i) {
            ctx->peers[w] = *p;
            memset(p, 0, sizeof *p);
        }
        w++;
    }
    ctx->n_peers = w;
}

static peer_entry *find_peer(ms_mikey_ctx *ctx, size_t kms, uint64_t period_no,
                             const uint8_t *id, size_t id_len)
{
    for (size_t i = 0; i < ctx->n_peers; i++) {
        peer_entry *p = &ctx->peers[i];
        if (p->kms == kms && p->period_no == period_no && p->id_len == id_len &&
            memcmp(p->id, id, id_len) == 0) {
            p->used = ++ctx->use_counter;
            return p;
        }
    }
    return NULL;
}

ms_err ms_mikey_prepare_peer(ms_mikey_ctx *ctx, const char *peer_uri, const char *peer_kms_uri,
                             uint64_t ntp)
{
    if (ctx == NULL || peer_uri == NULL)
        return MS_ERR_ARG;
    int ki = kms_by_name(ctx, peer_kms_uri);
    if (ki < 0)
        return MS_ERR_MIKEY_UNKNOWN_KMS;
    if (!ctx->cfg.prepare)
        return MS_OK; /* cold configuration: nothing to build */
    if (ntp == 0)
        ntp = now_ntp(ctx);
    uint64_t period_no;
    ms_err err = period_of(ctx, (size_t)ki, &period_no, ntp);
    if (err != MS_OK)
        return err;
    uint8_t id[MS_SAKKE_ID_MAX_BYTES];
    size_t id_len;
    err = identifier(ctx, (size_t)ki, id, &id_len, peer_uri, period_no);
    if (err != MS_OK)
        return err;
    if (find_peer(ctx, (size_t)ki, period_no, id, id_len) != NULL)
        return MS_OK;

    ms_sakke_peer *peer;
    err = ms_sakke_peer_new(&peer, ctx->kms[ki].sakke, id, id_len);
    if (err != MS_OK)
        return err;
    peer_entry *slot;
    if (ctx->n_peers < MAX_PEERS) {
        slot = &ctx->peers[ctx->n_peers++];
    } else {
        slot = &ctx->peers[0];
        for (size_t i = 1; i < ctx->n_peers; i++)
            if (ctx->peers[i].used < slot->used)
                slot = &ctx->peers[i];
        peer_entry_clear(slot);
    }
    slot->kms = (size_t)ki;
    slot->period_no = period_no;
    memcpy(slot->id, id, id_len);
    slot->id_len = id_len;
    slot->peer = peer;
    slot->used = ++ctx->use_counter;
    return MS_OK;
}

/* ---- initiator --------------------------------------------------------------------------- */

/* RFC 3830 SRTP policy of the RFC 6509 default session: AES-CM 128, HMAC-SHA1 with a
 * 160-bit key and an 80-bit tag, 112-bit salt. */
static const uint8_t default_srtp_policy[] = {
    0, 1, 1,  /* encryption algorithm: AES-CM */
    1, 1, 16, /* session encryption key length */
    2, 1, 1,  /* authentication algorithm: HMAC-SHA1 */
    3, 1, 20, /* session authentication key length */
    4, 1, 14, /* session salt key length */
    11, 1, 10 /* authentication tag length */
};

static ms_err encap(ms_mikey_ctx *ctx, uint8_t sed[MS_SAKKE_SED_BYTES], size_t kms,
                    uint64_t period_no, const uint8_t *id, size_t id_len, const uint8_t *key)
{
    if (ctx->cfg.prepare) {
        peer_entry *p = find_peer(ctx, kms, period_no, id, id_len);
        if (p != NULL)
            return ms_sakke_peer_encap(p->peer, sed, key, KEY_BYTES);
    }
    return ms_sakke_encap(ctx->kms[kms].sakke, sed, id, id_len, key, KEY_BYTES);
}

static ms_err self_encap(ms_mikey_ctx *ctx, uint8_t sed[MS_SAKKE_SED_BYTES], size_t kms,
                         uint64_t period_no, const uint8_t *id, size_t id_len,
                         const uint8_t *key)
{
    uint8_t tag[32], k = (uint8_t)kms;
    unsigned int tl = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, key, KEY_BYTES) == 1 && EVP_DigestUpdate(md, &k, 1) == 1 &&
             EVP_DigestUpdate(md, id, id_len) == 1 && EVP_DigestFinal_ex(md, tag, &tl) == 1;
    EVP_MD_CTX_free(md);
    if (!ok)
        return MS_ERR_INTERNAL;
    if (ctx->self_cached && CRYPTO_memcmp(tag, ctx->self_tag, sizeof tag) == 0) {
        memcpy(sed, ctx->self_sed, MS_SAKKE_SED_BYTES);
        return MS_OK;
    }
    ms_err err = encap(ctx, sed, kms, period_no, id, id_len, key);
    if (err != MS_OK)
        return err;
    memcpy(ctx->self_tag, tag, sizeof tag);
    memcpy(ctx->self_sed, sed, MS_SAKKE_SED_BYTES);
    ctx->self_cached = true;
    return MS_OK;
}

static void add_idr(ms_mikey_message *m, uint8_t role, const uint8_t *id, size_t len)
{
    ms_mikey_payload *p = &m->payloads[m->n_payloads++];
    p->type = MS_MIKEY_PT_IDR;
    p->u.idr.role = role;
    p->u.idr.id_type = MS_MIKEY_IDTYPE_URI;
    p->u.idr.id.data = id;
    p->u.idr.id.len = len;
}

static void copy_cs(ms_mikey_result *res, const ms_mikey_hdr *h)
{
    res->map_type = h->map_type;
    res->n_cs = h->n_cs;
    for (size_t i = 0; i < h->n_cs && i < MS_MIKEY_MAX_CS; i++) {
        res->cs[i] = h->cs[i];
        size_t n = h->cs[i].spi.len < 16 ? h->cs[i].spi.len : 16;
        if (n > 0)
            memcpy(res->cs_spi[i], h->cs[i].spi.data, n);
        res->cs[i].spi.data = NULL;
        res->cs[i].spi.len = n;
    }
}

ms_err ms_mikey_initiate(ms_mikey_ctx *ctx, uint8_t *out, size_t cap, size_t *out_len,
                         ms_mikey_result *res, const ms_mikey_init_params *p) {
    if (res != NULL)
        memset(res, 0, sizeof *res);
    if (ctx == NULL || out_len == NULL || p == NULL || p->responder == NULL ||
        (out == NULL && cap > 0))
        return MS_ERR_ARG;
    *out_len = 0;
    const ms_mikey_profile profile = ctx->cfg.profile;
    const bool g3 = is_3gpp(profile);
    size_t resp_len = strlen(p->responder);
    if (resp_len == 0 || resp_len > URI_MAX)
        return MS_ERR_IDENTITY;
    if (!g3 && (p->sakke_to_self || p->hide_identities || p->with_key_params))
        return MS_ERR_ARG; /* 3GPP features */
    if (g3 && p->omit_idr)
        return MS_ERR_ARG; /* IDRs are mandatory in TS 33.180 */
    if (p->n_cs > MS_MIKEY_MAX_CS)
        return MS_ERR_ARG;
    if (p->key != NULL && p->key_len != KEY_BYTES)
        return MS_ERR_SSV_SIZE;
    if (p->rand != NULL && (p->rand_len == 0 || p->rand_len > 255))
        return MS_ERR_ARG;
    uint8_t prf = p->prf;
    if (g3 && prf == MS_MIKEY_PRF_MIKEY1)
        prf = MS_MIKEY_PRF_HMAC_SHA256; /* 3GPP default (E.1.2) */
    if (prf > MS_MIKEY_PRF_HMAC_SHA256)
        return MS_ERR_ARG;

    int ik = kms_by_name(ctx, p->own_kms), rk = kms_by_name(ctx, p->responder_kms);
    if (ik < 0 || rk < 0)
        return MS_ERR_MIKEY_UNKNOWN_KMS;
    const uint64_t t = p->timestamp != 0 ? p->timestamp : now_ntp(ctx);
    uint64_t pi, pr;
    ms_err err = period_of(ctx, (size_t)ik, &pi, t);
    if (err == MS_OK)
        err = period_of(ctx, (size_t)rk, &pr, t);
    if (err != MS_OK)
        return MS_ERR_MIKEY_KEY_PERIOD;
    key_entry *own = find_keys(ctx, (size_t)ik, pi);
    if (own == NULL || own->signer == NULL)
        return MS_ERR_MIKEY_KEY_PERIOD;
    uint8_t rid[MS_SAKKE_ID_MAX_BYTES];
    size_t rid_len;
    err = identifier(ctx, (size_t)rk, rid, &rid_len, p->responder, pr);
    if (err != MS_OK)
        return err;

    const ms_rng *rng = ctx->cfg.rng;
    uint8_t key[KEY_BYTES];
    uint8_t rnd[255];
    const size_t rnd_len = p->rand != NULL ? p->rand_len : RAND_BYTES;
    uint8_t sed[MS_SAKKE_SED_BYTES];
    uint8_t self[INNER_SAKKE_BYTES];
    uint8_t kp[MS_KP_MAX_BYTES];
    size_t kp_len = 0;
    uint8_t spi[8];
    uint8_t sig[MS_ECCSI_SIG_BYTES];
    uint8_t r4[4];
    ms_mikey_message m;
    memset(&m, 0, sizeof m);

    if (p->key != NULL)
        memcpy(key, p->key, KEY_BYTES);
    else if ((err = ms_rng_fill(rng, key, KEY_BYTES)) != MS_OK)
        goto done;

    /* K-ID and CSB-ID (TS 33.180 5.2.2, 5.2.3; RFC 6509: random CSB-ID). */
    uint32_t key_id = p->key_id, csb_id;
    if (key_id == 0) {
        if ((err = ms_rng_fill(rng, r4, 4)) != MS_OK)
            goto done;
        key_id = ms_load_be32(r4);
        if (g3)
            key_id = (profile_purpose(profile) << 28) | (key_id & 0x0FFFFFFFu);
    } else if (g3 && (key_id >> 28) != profile_purpose(profile)) {
        err = MS_ERR_ARG;
        goto done;
    }
    csb_id = key_id;
    if (profile == MS_MIKEY_PROFILE_GMK &&
        (err = ms_guk_id(&csb_id, key, KEY_BYTES, key_id, p->responder)) != MS_OK)
        goto done;
    if (p->rand != NULL)
        memcpy(rnd, p->rand, rnd_len);
    else if ((err = ms_rng_fill(rng, rnd, RAND_BYTES)) != MS_OK)
        goto done;

    /* HDR and its crypto session map */
    ms_mikey_hdr *h = &m.hdr;
    h->version = MS_MIKEY_VERSION;
    h->data_type = MS_MIKEY_DT_SAKKE;
    h->v = false;
    h->prf = prf;
    h->csb_id = csb_id;
    if (p->n_cs > 0) {
        h->map_type = p->map_type;
        h->n_cs = p->n_cs;
        memcpy(h->cs, p->cs, p->n_cs * sizeof p->cs[0]);
    } else if (profile == MS_MIKEY_PROFILE_RFC6509) {
        h->map_type = MS_MIKEY_MAP_SRTP_ID;
        h->n_cs = 1;
        h->cs[0].cs_id = 1;
        h->cs[0].prot_type = MS_MIKEY_PROT_SRTP;
        h->cs[0].n_policies = 1;
        h->cs[0].policies[0] = 0;
        h->cs[0].ssrc = 0; /* "to be filled by the responder" */
        h->cs[0].has_roc = true;
    } else if (profile == MS_MIKEY_PROFILE_GMK) {
        ms_store_be32(spi, key_id);
        ms_store_be32(spi + 4, csb_id);
        h->map_type = MS_MIKEY_MAP_GENERIC_ID;
        h->n_cs = 1;
        h->cs[0].cs_id = 4; /* MCPTT group call (Table E.1.3-1) */
        h->cs[0].prot_type = MS_MIKEY_PROT_SRTP;
        h->cs[0].n_policies = 1;
        h->cs[0].policies[0] = 0;
        h->cs[0].spi.data = spi;
        h->cs[0].spi.len = sizeof spi;
    } else {
        h->map_type = MS_MIKEY_MAP_EMPTY; /* #CS 0: the E.3.2 / E.4.2 default profile */
        h->n_cs = 0;
    }

    ms_mikey_payload *pl = &m.payloads[m.n_payloads++];
    pl->type = MS_MIKEY_PT_T;
    pl->u.t.ts_type = MS_MIKEY_TS_NTP_UTC;
    pl->u.t.value = t;
    pl = &m.payloads[m.n_payloads++];
    pl->type = MS_MIKEY_PT_RAND;
    pl->u.rand.data = rnd;
    pl->u.rand.len = rnd_len;

    /* Identities: in the hidden form the UIDs are the identifiers we sign and
     * encapsulate with, so the responder can use them directly (E.7). */
    const char *own_kms_uri = ctx->kms[ik].uri, *resp_kms_uri = ctx->kms[rk].uri;
    if (!p->omit_idr) {
        if (p->hide_identities) {
            add_idr(&m, MS_MIKEY_ROLE_UID_INITIATOR, own->id, own->id_len);
            add_idr(&m, MS_MIKEY_ROLE_UID_RESPONDER, rid, rid_len);
        } else {
            add_idr(&m, MS_MIKEY_ROLE_INITIATOR, (const uint8_t *)ctx->own_uri,
                    strlen(ctx->own_uri));
            add_idr(&m, MS_MIKEY_ROLE_RESPONDER, (const uint8_t *)p->responder, resp_len);
        }
        add_idr(&m, MS_MIKEY_ROLE_KMS_INITIATOR, (const uint8_t *)own_kms_uri,
                strlen(own_kms_uri));
        add_idr(&m, MS_MIKEY_ROLE_KMS_RESPONDER, (const uint8_t *)resp_kms_uri,
                strlen(resp_kms_uri));
    }

    if (profile == MS_MIKEY_PROFILE_RFC6509 && h->map_type != MS_MIKEY_MAP_EMPTY) {
        pl = &m.payloads[m.n_payloads++];
        pl->type = MS_MIKEY_PT_SP;
        pl->u.sp.policy_no = 0;
        pl->u.sp.prot_type = MS_MIKEY_PROT_SRTP;
        pl->u.sp.params.data = default_srtp_policy;
        pl->u.sp.params.len = sizeof default_srtp_policy;
    }

    if ((err = encap(ctx, sed, (size_t)rk, pr, rid, rid_len, key)) != MS_OK)
        goto done;
    const uint8_t scheme = profile_scheme(profile);
    pl = &m.payloads[m.n_payloads++];
    pl->type = MS_MIKEY_PT_SAKKE;
    pl->u.sakke.params = MS_MIKEY_SAKKE_PARAMS_SET1;
    pl->u.sakke.id_scheme = scheme;
    pl->u.sakke.data.data = sed;
    pl->u.sakke.data.len = sizeof sed;

    if (p->sakke_to_self) {
        /* E.5: a whole SAKKE payload (inner next payload 0) to the initiator's UID. */
        self[0] = 0;
        self[1] = MS_MIKEY_SAKKE_PARAMS_SET1;
        self[2] = scheme;
        self[3] = (uint8_t)(MS_SAKKE_SED_BYTES >> 8);
        self[4] = (uint8_t)MS_SAKKE_SED_BYTES;
        err = self_encap(ctx, self + 5, (size_t)ik, pi, own->id, own->id_len, key);
        if (err != MS_OK)
            goto done;
        pl = &m.payloads[m.n_payloads++];
        pl->type = MS_MIKEY_PT_GENERAL_EXT;
        pl->u.ext.type = MS_MIKEY_EXT_SAKKE_TO_SELF;
        pl->u.ext.data.data = self;
        pl->u.ext.data.len = sizeof self;
    }
    if (p->with_key_params) {
        err = ms_mikey_kp_seal(kp, sizeof kp, &kp_len, &p->key_params, key, KEY_BYTES, csb_id,
                               t >> 32, rng);
        if (err != MS_OK)
            goto done;
        pl = &m.payloads[m.n_payloads++];
        pl->type = MS_MIKEY_PT_GENERAL_EXT;
        pl->u.ext.type = MS_MIKEY_EXT_KEY_PARAMS;
        pl->u.ext.data.data = kp;
        pl->u.ext.data.len = kp_len;
    }

    pl = &m.payloads[m.n_payloads++];
    pl->type = MS_MIKEY_PT_SIGN;
    pl->u.sign.s_type = MS_MIKEY_STYPE_ECCSI;
    pl->u.sign.sig.data = NULL; /* place holder, signed below */
    pl->u.sign.sig.len = MS_ECCSI_SIG_BYTES;

    size_t signed_len = 0;
    if ((err = ms_mikey_encode(out, cap, out_len, &signed_len, &m)) != MS_OK)
        goto done;
    if (signed_len + MS_ECCSI_SIG_BYTES != *out_len) {
        err = MS_ERR_INTERNAL;
        goto done;
    }
    if ((err = ms_eccsi_sign(own->signer, sig, out, signed_len, rng, NULL)) != MS_OK)
        goto done;
    memcpy(out + signed_len, sig, sizeof sig);

    if (res != NULL) {
        res->profile = profile;
        memcpy(res->key, key, KEY_BYTES);
        res->key_len = KEY_BYTES;
        res->csb_id = csb_id;
        res->key_id = key_id;
        res->prf = prf;
        memcpy(res->rand, rnd, rnd_len);
        res->rand_len = rnd_len;
        res->timestamp = t;
        res->period_no = pr;
        copy_str(res->initiator, ctx->own_uri);
        copy_str(res->initiator_kms, own_kms_uri);
        copy_str(res->responder, p->responder);
        res->initiator_hidden = p->hide_identities;
        if (p->hide_identities && own->id_len == MS_ID_UID_BYTES)
            memcpy(res->initiator_uid, own->id, MS_ID_UID_BYTES);
        copy_cs(res, h);
        res->has_key_params = p->with_key_params;
        if (p->with_key_params)
            res->key_params = p->key_params;
    }
done:
    ms_wipe(key, sizeof key);
    ms_wipe(&m, sizeof m);
    if (err != MS_OK && err != MS_ERR_BUFFER_TOO_SMALL)
        *out_len = 0;
    return err;
}

/* ---- responder --------------------------------------------------------------------------- */

/* The payloads the responder works with, found once. */
typedef struct found {
    const ms_mikey_payload *t, *rand, *sakke, *sign, *self, *kp;
    const ms_mikey_payload *idri, *idrr, *kmsi, *kmsr, *uidi, *uidr;
} found;

static ms_err check_structure(const ms_mikey_ctx *ctx, const ms_mikey_message *m, found *f,
                              size_t msg_len, ms_mikey_diag *diag)
{
    const bool g3 = is_3gpp(ctx->cfg.profile);
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < m->n_payloads; i++) {
        const ms_mikey_payload *p = &m->payloads[i];
        const ms_mikey_payload **slot = NULL;
        switch (p->type) {
        case MS_MIKEY_PT_T: slot = &f->t; break;
        case MS_MIKEY_PT_RAND: slot = &f->rand; break;
        case MS_MIKEY_PT_SAKKE: slot = &f->sakke; break;
        case MS_MIKEY_PT_SIGN: slot = &f->sign; break;
        case MS_MIKEY_PT_IDR:
            switch (p->u.idr.role) {
            case MS_MIKEY_ROLE_INITIATOR: slot = &f->idri; break;
            case MS_MIKEY_ROLE_RESPONDER: slot = &f->idrr; break;
            case MS_MIKEY_ROLE_KMS_INITIATOR: slot = &f->kmsi; break;
            case MS_MIKEY_ROLE_KMS_RESPONDER: slot = &f->kmsr; break;
            case MS_MIKEY_ROLE_UID_INITIATOR: slot = &f->uidi; break;
            case MS_MIKEY_ROLE_UID_RESPONDER: slot = &f->uidr; break;
            default: break; /* other roles carry nothing we act on */
            }
            break;
        case MS_MIKEY_PT_GENERAL_EXT:
            if (!g3)
                break; /* the 3GPP extensions mean nothing to an RFC 6509 responder */
            if (p->u.ext.type == MS_MIKEY_EXT_SAKKE_TO_SELF)
                slot = &f->self;
            else if (p->u.ext.type == MS_MIKEY_EXT_KEY_PARAMS)
                slot = &f->kp;
            break;
        case MS_MIKEY_PT_CERT:
            return refuse(diag, MS_ERR_MIKEY_UNSUPPORTED, p->type, p->offset,
                          "a CERT payload is not allowed with an ECCSI signature (RFC 6509 2.2.1)");
        default: break;
        }
        if (slot == NULL)
            continue;
        if (*slot != NULL)
            return refuse(diag, MS_ERR_MIKEY_MALFORMED, p->type, p->offset,
                          "a second %s payload at offset %zu makes the message ambiguous",
                          p->type == MS_MIKEY_PT_IDR ? ms_mikey_role_name(p->u.idr.role)
                                                     : ms_mikey_payload_name(p->type),
                          p->offset);
        *slot = p;
    }

    static const struct { uint8_t type; size_t off; } req[] = {
        {MS_MIKEY_PT_T, offsetof(found, t)},
        {MS_MIKEY_PT_RAND, offsetof(found, rand)},
        {MS_MIKEY_PT_SAKKE, offsetof(found, sakke)},
        {MS_MIKEY_PT_SIGN, offsetof(found, sign)},
    };
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
        const ms_mikey_payload *const *slot =
            (const ms_mikey_payload *const *)(const void *)((const char *)f + req[i].off);
        if (*slot == NULL)
            return refuse(diag, MS_ERR_MIKEY_MISSING_PAYLOAD, req[i].type, msg_len,
                          "the I_MESSAGE has no %s payload", ms_mikey_payload_name(req[i].type));
    }
    if (f->idri != NULL && f->uidi != NULL)
        return refuse(diag, MS_ERR_MIKEY_MALFORMED, MS_MIKEY_PT_IDR, f->uidi->offset,
                      "both IDRi and IDRuidi name the initiator");
    if (f->idrr != NULL && f->uidr != NULL)
        return refuse(diag, MS_ERR_MIKEY_MALFORMED, MS_MIKEY_PT_IDR, f->uidr->offset,
                      "both IDRr and IDRuidr name the responder");
    if (g3) {
        /* E.1: IDRi, IDRr, IDRkmsi and IDRkmsr are mandatory (the UID roles stand in for
         * the user IDs with identity hiding). */
        static const char *const names[] = {"IDRi (or IDRuidi)", "IDRr (or IDRuidr)",
                                            "IDRkmsi", "IDRkmsr"};
        const void *have[] = {f->idri != NULL ? (const void *)f->idri : (const void *)f->uidi,
                              f->idrr != NULL ? (const void *)f->idrr : (const void *)f->uidr,
                              f->kmsi, f->kmsr};
        for (size_t i = 0; i < 4; i++)
            if (have[i] == NULL)
                return refuse(diag, MS_ERR_MIKEY_MISSING_PAYLOAD, MS_MIKEY_PT_IDR, msg_len,
                              "the TS 33.180 I_MESSAGE has no %s payload", names[i]);
    }

    const ms_mikey_payload *uris[] = {f->idri, f->idrr, f->kmsi, f->kmsr};
    for (size_t i = 0; i < 4; i++) {
        const ms_mikey_payload *p = uris[i];
        if (p == NULL)
            continue;
        char tmp[URI_MAX + 1];
        if (!span_uri(tmp, p->u.idr.id))
            return refuse(diag, MS_ERR_MIKEY_MALFORMED, MS_MIKEY_PT_IDR, p->offset + 5,
                          "%s is empty, longer than %d octets or holds a NUL octet",
                          ms_mikey_role_name(p->u.idr.role), URI_MAX);
    }
    const ms_mikey_payload *uids[] = {f->uidi, f->uidr};
    for (size_t i = 0; i < 2; i++)
        if (uids[i] != NULL && uids[i]->u.idr.id.len != MS_ID_UID_BYTES)
            return refuse(diag, MS_ERR_MIKEY_MALFORMED, MS_MIKEY_PT_IDR, uids[i]->offset + 3,
                          "%s carries %zu octets, a UID has 32",
                          ms_mikey_role_name(uids[i]->u.idr.role), uids[i]->u.idr.id.len);

    if (m->hdr.prf > MS_MIKEY_PRF_HMAC_SHA256)
        return refuse(diag, MS_ERR_MIKEY_UNSUPPORTED, MS_MIKEY_PT_HDR, 3,
                      "HDR PRF function %u is not supported (MIKEY-1 or PRF-HMAC-SHA-256)",
                      m->hdr.prf);
    for (size_t i = 0; i < m->hdr.n_cs && i < MS_MIKEY_MAX_CS; i++)
        if (m->hdr.cs[i].spi.len > 16)
            return refuse(diag, MS_ERR_MIKEY_UNSUPPORTED, MS_MIKEY_PT_HDR, 10,
                          "crypto session %zu has a %zu-octet SPI (at most 16 supported)",
                          i + 1, m->hdr.cs[i].spi.len);
    if (f->t->u.t.ts_type != MS_MIKEY_TS_NTP_UTC && f->t->u.t.ts_type != MS_MIKEY_TS_NTP)
        return refuse(diag, MS_ERR_MIKEY_UNSUPPORTED, MS_MIKEY_PT_T, f->t->offset + 1,
                      "T type %u cannot give a key period (NTP-UTC or NTP required)",
                      f->t->u.t.ts_type);
    if (f->rand->u.rand.len == 0)
        return refuse(diag, MS_ERR_MIKEY_MALFORMED, MS_MIKEY_PT_RAND, f->rand->offset + 1,
                      "RAND is empty");
    if (f->sign->u.sign.s_type != MS_MIKEY_STYPE_ECCSI)
        return refuse(diag, MS_ERR_MIKEY_UNSUPPORTED, MS_MIKEY_PT_SIGN, f->sign->offset,
                      "signature type %u is not ECCSI (2)", f->sign->u.sign.s_type);
    if (f->sign->u.sign.sig.len != MS_ECCSI_SIG_BYTES)
        return refuse(diag, MS_ERR_MIKEY_MALFORMED, MS_MIKEY_PT_SIGN, f->sign->offset,
                      "ECCSI signature of %zu octets, want %d", f->sign->u.sign.sig.len,
                      MS_ECCSI_SIG_BYTES);

    const uint8_t scheme = profile_scheme(ctx->cfg.profile);
    if (f->sakke->u.sakke.params != MS_MIKEY_SAKKE_PARAMS_SET1)
        return refuse(diag, MS_ERR_MIKEY_UNSUPPORTED, MS_MIKEY_PT_SAKKE, f->sakke->offset + 1,
                      "SAKKE parameter set %u is not supported (1 only)",
                      f->sakke->u.sakke.params);
    if (f->sakke->u.sakke.id_scheme != scheme)
        return refuse(diag, MS_ERR_MIKEY_UNSUPPORTED, MS_MIKEY_PT_SAKKE, f->sakke->offset + 2,
                      "SAKKE ID scheme %u is not the scheme of this profile (%u)",
                      f->sakke->u.sakke.id_scheme, scheme);
    if (f->sakke->u.sakke.data.len != MS_SAKKE_SED_BYTES)
        return refuse(diag, MS_ERR_MIKEY_MALFORMED, MS_MIKEY_PT_SAKKE, f->sakke->offset + 3,
                      "SAKKE data of %zu octets, parameter set 1 has %d",
                      f->sakke->u.sakke.data.len, MS_SAKKE_SED_BYTES);
    if (f->self != NULL) {
        const ms_mikey_span d = f->self->u.ext.data;
        const size_t off = f->self->offset + 4;
        if (d.len != INNER_SAKKE_BYTES ||
            (((size_t)d.data[3] << 8) | d.data[4]) != MS_SAKKE_SED_BYTES)
            return refuse(diag, MS_ERR_MIKEY_MALFORMED, MS_MIKEY_PT_GENERAL_EXT, off,
                          "the SAKKE-to-self extension of %zu octets is not one SAKKE payload "
                          "with %d octets of SAKKE data", d.len, MS_SAKKE_SED_BYTES);
        if (d.data[1] != MS_MIKEY_SAKKE_PARAMS_SET1 || d.data[2] != scheme)
            return refuse(diag, MS_ERR_MIKEY_UNSUPPORTED, MS_MIKEY_PT_GENERAL_EXT, off + 1,
                          "SAKKE-to-self parameter set %u / ID scheme %u not supported",
                          d.data[1], d.data[2]);
    }
    return MS_OK;
}

/* Who signed, for the replay cache: the signer's KMS and ECCSI identifier (what the
 * signature is verified against), so one initiator's entries are counted together. */
static ms_err sender_key(uint8_t out[32], const char *kms_uri, const uint8_t *sid,
                         size_t sid_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    const uint8_t sep = 0;
    const bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
                    EVP_DigestUpdate(md, kms_uri, strlen(kms_uri)) == 1 &&
                    EVP_DigestUpdate(md, &sep, 1) == 1 &&
                    EVP_DigestUpdate(md, sid, sid_len) == 1 &&
                    EVP_DigestFinal_ex(md, out, NULL) == 1;
    EVP_MD_CTX_free(md);
    return ok ? MS_OK : MS_ERR_INTERNAL;
}

/* Everything the checks learn about the message, kept for the result. */
typedef struct verdict {
    int kmsi, kmsr;         /* -1: unknown */
    bool pi_ok, pr_ok;
    uint64_t pi, pr;        /* key periods of T for the initiator's / responder's KMS */
    char initiator[URI_MAX + 1]; /* empty while hidden and not learnt */
    bool self_path;         /* this user is the initiator: use SAKKE-to-self */
    uint8_t sid[MS_SAKKE_ID_MAX_BYTES];
    size_t sid_len;
} verdict;

ms_err ms_mikey_respond(ms_mikey_ctx *ctx, ms_mikey_result *res, const uint8_t *msg,
                        size_t msg_len, const char *expected_initiator, ms_mikey_diag *diag)
{
    if (res != NULL)
        memset(res, 0, sizeof *res);
    if (ctx == NULL || res == NULL || (msg == NULL && msg_len > 0))
        return MS_ERR_ARG;
    const ms_mikey_profile profile = ctx->cfg.profile;
    const bool g3 = is_3gpp(profile);
    ms_mikey_message m;
    found f;
    verdict v;
    uint8_t ssv[KEY_BYTES];
    uint8_t digest[32], sender[32];
    memset(&v, 0, sizeof v);
    v.kmsi = v.kmsr = -1;

    /* 1. structure */
    ms_err err = ms_mikey_parse(&m, msg, msg_len, diag);
    if (err != MS_OK)
        return err;
    if ((err = check_structure(ctx, &m, &f, msg_len, diag)) != MS_OK)
        return err;

    /* 2. HDR: version, data type, V bit */
    if (m.hdr.version != MS_MIKEY_VERSION)
        return refuse(diag, MS_ERR_MIKEY_VERSION, MS_MIKEY_PT_HDR, 0,
                      "HDR version %u is not 1", m.hdr.version);
    if (m.hdr.data_type != MS_MIKEY_DT_SAKKE)
        return refuse(diag, MS_ERR_MIKEY_DATA_TYPE, MS_MIKEY_PT_HDR, 1,
                      "HDR data type %u is not SAKKE msg (26)", m.hdr.data_type);
    if (m.hdr.v)
        return refuse(diag, MS_ERR_MIKEY_V_BIT, MS_MIKEY_PT_HDR, 3,
                      "HDR V bit is set; a SAKKE message expects no response");

    /* 3. T inside the clock skew window (RFC 3830 5.3) */
    const uint64_t now = now_ntp(ctx), t = f.t->u.t.value, skew = skew32(ctx);
    const uint64_t diff = t > now ? t - now : now - t;
    if (diff > skew)
        return refuse(diag, MS_ERR_MIKEY_TIMESTAMP, MS_MIKEY_PT_T, f.t->offset + 2,
                      "T is %llu s %s the local clock, more than the allowed %llu s",
                      (unsigned long long)(diff >> 32), t > now ? "ahead of" : "behind",
                      (unsigned long long)ctx->cfg.max_skew);

    /* 4. replay cache, keyed on what the signature binds: SHA-256 of the signed part
     * (everything but the signature: T, RAND, CSB-ID, the identities, the SAKKE data).
     * ECCSI signatures are malleable: (r, s) and (r, q - s) both verify, and RFC 6507
     * 5.2.1 lets the signer send either (its own test vector and wolfSSL send s' as
     * computed, above or below q/2), so refusing the "high" s would refuse valid
     * signers. Keying on the signed part instead makes the swap useless: both forms are
     * the same message here. The sender's own floor is checked once it is known. */
    if (EVP_Digest(msg, m.signed_len, digest, NULL, EVP_sha256(), NULL) != 1)
        return MS_ERR_INTERNAL;
    if (!ctx->cfg.no_replay_cache &&
        (err = ms_replay_cache_check(ctx->replay, NULL, t, digest)) != MS_OK)
        return err == MS_ERR_MIKEY_REPLAY
                   ? refuse(diag, err, MS_MIKEY_PT_T, f.t->offset + 2,
                            "this message (or one older than the replay cache keeps) was "
                            "already accepted")
                   : err;

    /* Which KMSs the message names (errors come in their turn below). */
    if (f.kmsi != NULL)
        v.kmsi = kms_by_span(ctx, f.kmsi->u.idr.id);
    else if (!g3 && ctx->n_kms > 0)
        v.kmsi = 0;
    if (f.kmsr != NULL)
        v.kmsr = kms_by_span(ctx, f.kmsr->u.idr.id);
    else if (!g3 && ctx->n_kms > 0)
        v.kmsr = 0;
    if (v.kmsi >= 0)
        v.pi_ok = period_of(ctx, (size_t)v.kmsi, &v.pi, t) == MS_OK;
    if (v.kmsr >= 0)
        v.pr_ok = period_of(ctx, (size_t)v.kmsr, &v.pr, t) == MS_OK;

    /* 5. initiator: named by IDRi (or its UID), and what the signalling says */
    if (f.idri != NULL) {
        (void)span_uri(v.initiator, f.idri->u.idr.id); /* checked in check_structure */
        if (expected_initiator != NULL && strcmp(v.initiator, expected_initiator) != 0)
            return refuse(diag, MS_ERR_MIKEY_INITIATOR, MS_MIKEY_PT_IDR, f.idri->offset + 5,
                          "IDRi names another initiator than the one expected");
    } else if (f.uidi != NULL) {
        if (expected_initiator != NULL && v.pi_ok) {
            uint8_t uid[MS_SAKKE_ID_MAX_BYTES];
            size_t uid_len = 0;
            err = identifier(ctx, (size_t)v.kmsi, uid, &uid_len, expected_initiator, v.pi);
            if (err != MS_OK || uid_len != MS_ID_UID_BYTES ||
                memcmp(uid, f.uidi->u.idr.id.data, MS_ID_UID_BYTES) != 0)
                return refuse(diag, MS_ERR_MIKEY_INITIATOR, MS_MIKEY_PT_IDR,
                              f.uidi->offset + 5,
                              "IDRuidi is not the UID of the expected initiator");
            copy_str(v.initiator, expected_initiator);
        }
    } else if (expected_initiator != NULL) {
        /* RFC 6509: identities may be implied by the signalling */
        if (strlen(expected_initiator) == 0 || strlen(expected_initiator) > URI_MAX)
            return MS_ERR_ARG;
        copy_str(v.initiator, expected_initiator);
    } else {
        return refuse(diag, MS_ERR_MIKEY_INITIATOR, MS_MIKEY_PT_IDR, msg_len,
                      "the initiator is named neither by IDRi nor by the caller");
    }
    if (v.initiator[0] != '\0' && v.pi_ok) {
        /* the signer's identifier (RFC 6509: also proves the URI is a usable tel URI) */
        err = identifier(ctx, (size_t)v.kmsi, v.sid, &v.sid_len, v.initiator, v.pi);
        if (err != MS_OK)
            return is_resource_err(err)
                       ? err
                       : refuse(diag, MS_ERR_MIKEY_INITIATOR, MS_MIKEY_PT_IDR,
                                f.idri != NULL ? f.idri->offset + 5 : msg_len,
                                "the initiator URI gives no identifier (%s)", ms_errname(err));
    } else if (f.uidi != NULL) {
        memcpy(v.sid, f.uidi->u.idr.id.data, MS_ID_UID_BYTES);
        v.sid_len = MS_ID_UID_BYTES;
    }

    /* 6. responder: this user, or this user as the initiator with SAKKE-to-self */
    bool for_me = true;
    if (f.idrr != NULL) {
        for_me = span_is(f.idrr->u.idr.id, ctx->own_uri);
    } else if (f.uidr != NULL && v.pr_ok) {
        uint8_t uid[MS_SAKKE_ID_MAX_BYTES];
        size_t uid_len = 0;
        err = identifier(ctx, (size_t)v.kmsr, uid, &uid_len, ctx->own_uri, v.pr);
        if (err != MS_OK)
            return refuse(diag, err, MS_MIKEY_PT_IDR, f.uidr->offset + 5,
                          "this user's own URI gives no identifier (%s)", ms_errname(err));
        for_me = uid_len == MS_ID_UID_BYTES &&
                 memcmp(uid, f.uidr->u.idr.id.data, MS_ID_UID_BYTES) == 0;
    }
    if (!for_me) {
        bool i_am_initiator = false;
        if (f.self != NULL && f.idri != NULL)
            i_am_initiator = strcmp(v.initiator, ctx->own_uri) == 0;
        else if (f.self != NULL && f.uidi != NULL && v.pi_ok) {
            uint8_t uid[MS_SAKKE_ID_MAX_BYTES];
            size_t uid_len = 0;
            err = identifier(ctx, (size_t)v.kmsi, uid, &uid_len, ctx->own_uri, v.pi);
            if (err != MS_OK)
                return refuse(diag, err, MS_MIKEY_PT_IDR, f.uidi->offset + 5,
                              "this user's own URI gives no identifier (%s)", ms_errname(err));
            i_am_initiator = uid_len == MS_ID_UID_BYTES &&
                             memcmp(uid, f.uidi->u.idr.id.data, MS_ID_UID_BYTES) == 0;
            if (i_am_initiator)
                copy_str(v.initiator, ctx->own_uri);
        }
        if (!i_am_initiator) {
            const ms_mikey_payload *r = f.idrr != NULL ? f.idrr : f.uidr;
            return refuse(diag, MS_ERR_MIKEY_RESPONDER, MS_MIKEY_PT_IDR, r->offset + 5,
                          "%s does not name this user", ms_mikey_role_name(r->u.idr.role));
        }
        v.self_path = true;
    }

    /* 7. KMSs known and trusted */
    if (v.kmsi < 0)
        return refuse(diag, MS_ERR_MIKEY_UNKNOWN_KMS, MS_MIKEY_PT_IDR,
                      f.kmsi != NULL ? f.kmsi->offset + 5 : msg_len,
                      f.kmsi != NULL ? "IDRkmsi names a KMS this user does not trust"
                                     : "no IDRkmsi and no default KMS");
    if (v.kmsr < 0)
        return refuse(diag, MS_ERR_MIKEY_UNKNOWN_KMS, MS_MIKEY_PT_IDR,
                      f.kmsr != NULL ? f.kmsr->offset + 5 : msg_len,
                      f.kmsr != NULL ? "IDRkmsr names a KMS this user does not trust"
                                     : "no IDRkmsr and no default KMS");

    /* 8. key period of T: keys held for it and accepted now (RFC 6509 3.3) */
    const size_t dk = v.self_path ? (size_t)v.kmsi : (size_t)v.kmsr;
    const bool dp_ok = v.self_path ? v.pi_ok : v.pr_ok;
    const uint64_t dp = v.self_path ? v.pi : v.pr;
    if (!dp_ok || !v.pi_ok)
        return refuse(diag, MS_ERR_MIKEY_KEY_PERIOD, MS_MIKEY_PT_T, f.t->offset + 2,
                      "T lies before the first key period of the KMS");
    key_entry *keys = find_keys(ctx, dk, dp);
    if (keys == NULL || (keys->prep == NULL && keys->rsk == NULL))
        return refuse(diag, MS_ERR_MIKEY_KEY_PERIOD, MS_MIKEY_PT_T, f.t->offset + 2,
                      "no RSK held from KMS %s for key period %llu of T", ctx->kms[dk].uri,
                      (unsigned long long)dp);
    uint64_t accepted[2];
    size_t n_acc = 0;
    err = ms_key_periods_accepted(&ctx->kms[dk].scheme, accepted, &n_acc, now >> 32,
                                  ctx->cfg.period_grace);
    if (err != MS_OK)
        return refuse(diag, MS_ERR_MIKEY_KEY_PERIOD, MS_MIKEY_PT_T, f.t->offset + 2,
                      "the local clock lies before the first key period of KMS %s (%s)",
                      ctx->kms[dk].uri, ms_errname(err));
    bool period_ok = false;
    for (size_t i = 0; i < n_acc && i < 2; i++)
        period_ok = period_ok || accepted[i] == dp;
    if (!period_ok)
        return refuse(diag, MS_ERR_MIKEY_KEY_PERIOD, MS_MIKEY_PT_T, f.t->offset + 2,
                      "key period %llu of T is not accepted at the current time",
                      (unsigned long long)dp);

    /* 8b. replay cache again, now that the signer is known: its own eviction floor */
    if (!ctx->cfg.no_replay_cache) {
        if ((err = sender_key(sender, ctx->kms[v.kmsi].uri, v.sid, v.sid_len)) != MS_OK)
            return err;
        if ((err = ms_replay_cache_check(ctx->replay, sender, t, digest)) != MS_OK)
            return err == MS_ERR_MIKEY_REPLAY
                       ? refuse(diag, err, MS_MIKEY_PT_T, f.t->offset + 2,
                                "T is no newer than messages of this initiator the replay "
                                "cache no longer keeps")
                       : err;
    }

    /* 9. signature over everything up to and including the SIGN header (digest 4.7) */
    err = ms_eccsi_verify(ctx->kms[v.kmsi].verifier, v.sid, v.sid_len, msg, m.signed_len,
                          f.sign->u.sign.sig.data, f.sign->u.sign.sig.len, NULL);
    if (err != MS_OK)
        return is_resource_err(err)
                   ? err
                   : refuse(diag, MS_ERR_SIGNATURE, MS_MIKEY_PT_SIGN, f.sign->offset + 2,
                            "the ECCSI signature does not verify for the initiator's "
                            "identifier (%s)", ms_errname(err));

    /* 10. SAKKE with the TEST check (RFC 6508 6.2.2) */
    const uint8_t *sed = v.self_path ? f.self->u.ext.data.data + 5 : f.sakke->u.sakke.data.data;
    const size_t sed_off = v.self_path ? f.self->offset + 9 : f.sakke->offset + 5;
    if (keys->prep != NULL)
        err = ms_sakke_prepared_rsk_decap(keys->prep, ssv, KEY_BYTES, sed, MS_SAKKE_SED_BYTES);
    else
        err = ms_sakke_decap(ctx->kms[dk].sakke, ssv, KEY_BYTES, keys->id, keys->id_len,
                             keys->rsk, sed, MS_SAKKE_SED_BYTES);
    if (err != MS_OK) {
        ms_wipe(ssv, sizeof ssv);
        return is_resource_err(err)
                   ? err
                   : refuse(diag, MS_ERR_DECAP_TEST, MS_MIKEY_PT_SAKKE, sed_off,
                            "the SAKKE data was not made for this user's identifier (%s)",
                            ms_errname(err));
    }

    /* 11. 3GPP key identifier: purpose tag, GUK-ID and SPI (TS 33.180 5.2.3) */
    const uint32_t csb = m.hdr.csb_id;
    uint32_t key_id = csb;
    if (g3) {
        const uint32_t purpose = profile_purpose(profile);
        if ((csb >> 28) != purpose) {
            err = refuse(diag, MS_ERR_MIKEY_KEY_ID, MS_MIKEY_PT_HDR, 4,
                         "CSB-ID %08x has purpose tag %u, this profile needs %u", csb, csb >> 28,
                         purpose);
            goto fail;
        }
        if (profile == MS_MIKEY_PROFILE_GMK) {
            char uri[URI_MAX + 1];
            const char *guk_uri = ctx->own_uri;
            if (v.self_path)
                guk_uri = f.idrr != NULL && span_uri(uri, f.idrr->u.idr.id) ? uri : NULL;
            bool any_spi = false;
            if (guk_uri != NULL) {
                err = ms_guk_id(&key_id, ssv, KEY_BYTES, csb, guk_uri);
                if (err != MS_OK)
                    goto fail;
            }
            for (size_t i = 0; i < m.hdr.n_cs && i < MS_MIKEY_MAX_CS; i++) {
                const ms_mikey_span spi = m.hdr.cs[i].spi;
                if (spi.len == 0)
                    continue;
                if (guk_uri == NULL && spi.len == 8 && !any_spi)
                    key_id = ms_load_be32(spi.data); /* hidden responder: trust the signed SPI */
                any_spi = true;
                if (spi.len != 8 || ms_load_be32(spi.data) != key_id ||
                    ms_load_be32(spi.data + 4) != csb) {
                    err = refuse(diag, MS_ERR_MIKEY_KEY_ID, MS_MIKEY_PT_HDR, 10,
                                 "the SPI of crypto session %zu is not GMK-ID || GUK-ID for "
                                 "this user", i + 1);
                    goto fail;
                }
            }
            if (guk_uri == NULL && !any_spi) {
                err = refuse(diag, MS_ERR_MIKEY_KEY_ID, MS_MIKEY_PT_HDR, 4,
                             "the GMK-ID cannot be recovered without the responder's URI or "
                             "an SPI");
                goto fail;
            }
        }
    }

    /* 12. key parameters (TS 33.180 E.6) */
    ms_mikey_key_params kp;
    memset(&kp, 0, sizeof kp);
    if (g3 && f.kp != NULL) {
        size_t where = 0;
        char why[128];
        const size_t off = f.kp->offset + 4;
        err = ms_mikey_kp_open(&kp, f.kp->u.ext.data.data, f.kp->u.ext.data.len, ssv,
                               KEY_BYTES, csb, &where, why, sizeof why);
        if (err != MS_OK) {
            if (err == MS_ERR_MIKEY_KEY_PARAMS)
                (void)refuse(diag, err, MS_MIKEY_PT_GENERAL_EXT, off + where, "%s", why);
            goto fail;
        }
        const uint64_t now_s = now >> 32;
        if (kp.key_type != profile_purpose(profile))
            err = refuse(diag, MS_ERR_MIKEY_KEY_PARAMS, MS_MIKEY_PT_GENERAL_EXT, off,
                         "key parameters give key type %u, the message carries a key of "
                         "purpose %u", kp.key_type, profile_purpose(profile));
        else if ((kp.status & 1u) == 0)
            err = refuse(diag, MS_ERR_MIKEY_KEY_PARAMS, MS_MIKEY_PT_GENERAL_EXT, off,
                         "key parameters say the key is revoked (status %08x)", kp.status);
        else if (kp.expiry != 0 && kp.expiry < now_s)
            err = refuse(diag, MS_ERR_MIKEY_KEY_PARAMS, MS_MIKEY_PT_GENERAL_EXT, off,
                         "key parameters say the key expired %llu s ago",
                         (unsigned long long)(now_s - kp.expiry));
        if (err != MS_OK)
            goto fail;
    }

    /* 13. accepted: remember it, then report */
    const uint64_t expire = now > skew ? now - skew : 0;
    if (!ctx->cfg.no_replay_cache &&
        (err = ms_replay_cache_add(ctx->replay, sender, t, digest, expire)) != MS_OK)
        goto fail;

    res->profile = profile;
    memcpy(res->key, ssv, KEY_BYTES);
    res->key_len = KEY_BYTES;
    res->csb_id = csb;
    res->key_id = key_id;
    res->prf = m.hdr.prf;
    memcpy(res->rand, f.rand->u.rand.data, f.rand->u.rand.len);
    res->rand_len = f.rand->u.rand.len;
    res->timestamp = t;
    res->period_no = dp;
    copy_str(res->initiator, v.initiator);
    copy_str(res->initiator_kms, ctx->kms[v.kmsi].uri);
    if (f.idrr != NULL)
        (void)span_uri(res->responder, f.idrr->u.idr.id);
    else if (!v.self_path)
        copy_str(res->responder, ctx->own_uri);
    res->initiator_hidden = f.uidi != NULL;
    if (f.uidi != NULL)
        memcpy(res->initiator_uid, f.uidi->u.idr.id.data, MS_ID_UID_BYTES);
    copy_cs(res, &m.hdr);
    res->has_key_params = g3 && f.kp != NULL;
    res->key_params = kp;
    ms_wipe(ssv, sizeof ssv);
    return MS_OK;
fail:
    ms_wipe(ssv, sizeof ssv);
    ms_mikey_result_wipe(res);
    return err;
}

ms_err ms_mikey_confirm_initiator(const ms_mikey_ctx *ctx, ms_mikey_result *res,
                                  const char *initiator_uri)
{
    if (ctx == NULL || res == NULL || initiator_uri == NULL)
        return MS_ERR_ARG;
    size_t n = strlen(initiator_uri);
    if (n == 0 || n > URI_MAX)
        return MS_ERR_MIKEY_INITIATOR;
    if (!res->initiator_hidden)
        return strcmp(res->initiator, initiator_uri) == 0 ? MS_OK : MS_ERR_MIKEY_INITIATOR;
    int ki = kms_by_name(ctx, res->initiator_kms);
    if (ki < 0)
        return MS_ERR_MIKEY_UNKNOWN_KMS;
    uint64_t period_no;
    ms_err err = period_of(ctx, (size_t)ki, &period_no, res->timestamp);
    if (err != MS_OK)
        return err;
    uint8_t uid[MS_SAKKE_ID_MAX_BYTES];
    size_t uid_len = 0;
    err = identifier(ctx, (size_t)ki, uid, &uid_len, initiator_uri, period_no);
    if (err != MS_OK)
        return is_resource_err(err) ? err : MS_ERR_MIKEY_INITIATOR;
    if (uid_len != MS_ID_UID_BYTES || CRYPTO_memcmp(uid, res->initiator_uid, uid_len) != 0)
        return MS_ERR_MIKEY_INITIATOR;
    copy_str(res->initiator, initiator_uri);
    return MS_OK;
}

void ms_mikey_result_wipe(ms_mikey_result *res)
{
    if (res != NULL)
        ms_wipe(res, sizeof *res);
}

ms_err ms_mikey_srtp_keys(ms_srtp_keys *keys, const ms_mikey_result *res, uint8_t cs_id,
                          size_t key_len, size_t salt_len)
{
    if (keys == NULL)
        return MS_ERR_ARG;
    memset(keys, 0, sizeof *keys);
    if (res == NULL || res->key_len == 0 || res->key_len > sizeof res->key ||
        res->rand_len > sizeof res->rand || (key_len != 16 && key_len != 32) ||
        (salt_len != 12 && salt_len != 14))
        return MS_ERR_ARG;
    ms_err err = ms_mikey_derive(res->prf, keys->master_key, key_len, MS_MIKEY_KDF_TEK, res->key,
                                 res->key_len, cs_id, res->csb_id, res->rand, res->rand_len);
    if (err == MS_OK)
        err = ms_mikey_derive(res->prf, keys->master_salt, salt_len, MS_MIKEY_KDF_SALT,
                              res->key, res->key_len, cs_id, res->csb_id, res->rand,
                              res->rand_len);
    if (err != MS_OK) {
        ms_wipe(keys, sizeof *keys);
        return err;
    }
    keys->key_len = key_len;
    keys->salt_len = salt_len;
    /* TS 33.180 7.4: MKI = the PCK-ID / CSK-ID; group media: GMK-ID || GUK-ID. */
    switch (res->profile) {
    case MS_MIKEY_PROFILE_PCK:
    case MS_MIKEY_PROFILE_CSK:
        ms_store_be32(keys->mki, res->key_id);
        keys->mki_len = 4;
        break;
    case MS_MIKEY_PROFILE_GMK:
        ms_store_be32(keys->mki, res->key_id);
        ms_store_be32(keys->mki + 4, res->csb_id);
        keys->mki_len = 8;
        break;
    default:
        keys->mki_len = 0;
        break;
    }
    return MS_OK;
}
