/*
 * The KMS facade (include/mikeysakke/kms.h): one directory, one handle. It ties the
 * store, the seal, the audit log and the TS 33.180 formats together and enforces the
 * policy: nothing privileged while sealed, an audit entry fsynced before anything is
 * released, extraction of exactly one user's RSK for exactly one period.
 */
#include "mikeysakke/kms.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto/rng.h"
#include "crypto/secmem.h"
#include "kms/audit.h"
#include "kms/seal.h"
#include "kms/server.h"
#include "kms/settings.h"
#include "kms/kms_internal.h"
#include "kms/roles.h"
#include "kms/store.h"
#include "kmsif/annexd.h"
#include "kmsif/kmsif.h"
#include "mikeysakke/mikey.h"
#include "util/detail.h"
#include "util/file.h"
#include "util/hex.h"

#define SETTING_MAX 256
#define CERT_MAX 16384
#define DEFAULT_KEY_LABEL "mikeysakke-kms"

struct ms_kms {
    char dir[PATH_MAX];
    ms_store *st;
    ms_kms_secrets *s; /* NULL while sealed */
    ms_unseal *u;      /* share collection in progress */
    ms_audit *audit;   /* open while unsealed */
    ms_rng rng;
    bool has_rng;
    uint64_t (*now)(void *);
    void *now_ctx;
    char kms_uri[MS_STORE_URI_MAX + 1];
    ms_id_scheme ids;
    int method;
    unsigned approvals, n_auditors, n_officers, enrol_approvals;
    uint8_t operator_key[MS_KMS_ROLE_KEY_BYTES];
    uint8_t officer_key[MS_KMS_MAX_OFFICERS][MS_KMS_ROLE_KEY_BYTES];
    uint8_t auditor_key[MS_KMS_MAX_AUDITORS][MS_KMS_ROLE_KEY_BYTES];
    char actor[32]; /* the role of the signed command being carried out ("" if none) */
    uint64_t max_ahead; /* issuance at most this many key periods after the current one */
    uint8_t audit_pub[MS_AUDIT_PUBLIC_BYTES];
    bool in_batch; /* inside the issuer's transaction: the head is saved afterwards */
    ms_kms_progress_fn progress; /* ms_kms_set_progress */
    void *progress_ctx;
    uint64_t head_seq;
    uint8_t head_hash[MS_AUDIT_HASH_BYTES];
    bool head_dirty;
    pthread_mutex_t lock; /* ms_kms_lock: for callers sharing the handle */
    /* Read-held by audit appends made without `lock` (the server's keyprov), so their
     * fsyncs overlap; write-held to close the log. Never taken while holding it. */
    pthread_rwlock_t audit_rw;
    atomic_bool unsealed; /* mirrors s != NULL, readable without the lock */
    /* The parsed certificate last asked for: every key package carries one, and parsing
     * its XML per request showed in the serving profile. Public data. */
    bool cert_cached;
    size_t cert_cached_index;
    ms_kms_certificate cert_cache;
    char detail[512]; /* ms_kms_detail: why the last refused call failed */
    bool adopt_settings; /* ms_kms_adopt_settings: the custodians' order to add a MAC */
    char extract_checkpoint[MS_AUDIT_CHECKPOINT_MAX]; /* of the last extraction, or "" */
    ms_audit_copy_fn copy_sink; /* where audit_syslog copies go (NULL: syslog(3)) */
    void *copy_ctx;
};

/* ---- small helpers ------------------------------------------------------------------- */

static const ms_rng *kms_rng(const ms_kms *k)
{
    return k->has_rng ? &k->rng : NULL;
}

static uint64_t now_secs(const ms_kms *k)
{
    if (k->now != NULL)
        return k->now(k->now_ctx);
    return ms_ntp_now() >> 32;
}

static ms_err join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= cap) ? MS_ERR_ARG : MS_OK;
}

static ms_err sha256(uint8_t out[32], const void *in, size_t len)
{
    unsigned int n = 0;
    return EVP_Digest(in, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32
               ? MS_OK
               : MS_ERR_INTERNAL;
}

static ms_err set_u64(ms_store *st, const char *key, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return ms_store_set(st, key, buf);
}

static ms_err get_u64(ms_store *st, const char *key, uint64_t *v)
{
    char buf[32];
    ms_err e = ms_store_get(st, key, buf, sizeof buf);
    if (e != MS_OK)
        return e;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(buf, &end, 10);
    if (errno != 0 || end == buf || *end != '\0')
        return MS_ERR_STORE;
    *v = (uint64_t)x;
    return MS_OK;
}

static ms_err read_small_file(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return MS_ERR_IO;
    size_t n = fread(out, 1, cap - 1, f);
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (bad)
        return MS_ERR_IO;
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = '\0';
    return MS_OK;
}

static ms_err read_public_key_file(const char *path, uint8_t pub[MS_AUDIT_PUBLIC_BYTES])
{
    char buf[2 * MS_AUDIT_PUBLIC_BYTES + 8];
    ms_err e = read_small_file(path, buf, sizeof buf);
    if (e != MS_OK)
        return e;
    return ms_hex_decode(pub, MS_AUDIT_PUBLIC_BYTES, buf, strlen(buf));
}

static int uri_ok(const char *uri)
{
    size_t n = uri ? strlen(uri) : 0;
    if (n == 0 || n > MS_STORE_URI_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)uri[i] <= 0x20 || (unsigned char)uri[i] == 0x7f)
            return 0;
    return 1;
}

static int device_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > MS_STORE_DEVICE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ':' || c == '@'))
            return 0;
    }
    return 1;
}

/* ---- settings and certificates ---------------------------------------------------------- */

static ms_err load_settings(ms_kms *k)
{
    ms_err e = ms_store_get(k->st, "kms_uri", k->kms_uri, sizeof k->kms_uri);
    uint64_t scheme = 0, plen = 0, poff = 0, method = 0, appr = 0, naud = 0, noff = 0, eappr = 0;
    if (e == MS_OK)
        e = get_u64(k->st, "id_scheme", &scheme);
    if (e == MS_OK)
        e = get_u64(k->st, "period_len", &plen);
    if (e == MS_OK)
        e = get_u64(k->st, "period_offset", &poff);
    if (e == MS_OK)
        e = get_u64(k->st, "seal_method", &method);
    if (e == MS_OK)
        e = get_u64(k->st, "approvals", &appr);
    if (e == MS_OK)
        e = get_u64(k->st, "auditors", &naud);
    if (e == MS_OK)
        e = get_u64(k->st, "officers", &noff);
    if (e == MS_OK)
        e = get_u64(k->st, "enrol_approvals", &eappr);
    if (e != MS_OK)
        return MS_ERR_STORE;
    if (naud == 0 || naud > MS_KMS_MAX_AUDITORS || appr == 0 || appr > naud || noff == 0 ||
        noff > MS_KMS_MAX_OFFICERS || eappr == 0 || eappr > noff)
        return MS_ERR_STORE;
    k->ids.scheme = (uint8_t)scheme;
    k->ids.kms_uri = k->kms_uri;
    k->ids.period_len = plen;
    k->ids.period_offset = poff;
    k->method = (int)method;
    k->approvals = (unsigned)appr;
    k->n_auditors = (unsigned)naud;
    /* absent in a KMS made before the setting existed: the default */
    if (get_u64(k->st, "max_periods_ahead", &k->max_ahead) != MS_OK)
        k->max_ahead = MS_KMS_DEFAULT_MAX_AHEAD;
    k->n_officers = (unsigned)noff;
    k->enrol_approvals = (unsigned)eappr;
    for (unsigned i = 0; i < k->n_auditors + k->n_officers; i++) {
        char key[32], hex[80];
        bool aud = i < k->n_auditors;
        unsigned n = aud ? i + 1 : i - k->n_auditors + 1;
        snprintf(key, sizeof key, "%s_%u", aud ? "auditor" : "officer", n);
        if (ms_store_get(k->st, key, hex, sizeof hex) != MS_OK ||
            ms_hex_decode(aud ? k->auditor_key[n - 1] : k->officer_key[n - 1],
                          MS_KMS_ROLE_KEY_BYTES, hex, strlen(hex)) != MS_OK)
            return MS_ERR_STORE;
    }
    char hex[80];
    if (ms_store_get(k->st, "operator_key", hex, sizeof hex) != MS_OK ||
        ms_hex_decode(k->operator_key, sizeof k->operator_key, hex, strlen(hex)) != MS_OK)
        return MS_ERR_STORE;
    if (ms_store_get(k->st, "audit_pub", hex, sizeof hex) != MS_OK ||
        ms_hex_decode(k->audit_pub, sizeof k->audit_pub, hex, strlen(hex)) != MS_OK)
        return MS_ERR_STORE;
    return MS_OK;
}

static ms_err make_certificate(const ms_kms *k, const ms_kms_generation *g, size_t index,
                               char *xml, size_t cap, size_t *len)
{
    ms_kms_certificate cert;
    memset(&cert, 0, sizeof cert);
    snprintf(cert.kms_uri, sizeof cert.kms_uri, "%s", k->kms_uri);
    snprintf(cert.cert_uri, sizeof cert.cert_uri, "%.200s/certificate/%zu", k->kms_uri, index);
    snprintf(cert.issuer, sizeof cert.issuer, "%s", k->kms_uri);
    uint64_t start = 0, end = 0;
    if (ms_key_period_bounds(&k->ids, &start, &end, g->from_period) != MS_OK)
        return MS_ERR_PERIOD;
    cert.valid_from = start;
    cert.valid_to = 0;
    cert.user_id_format = k->ids.scheme;
    cert.period_len = k->ids.period_len;
    cert.period_offset = k->ids.period_offset;
    memcpy(cert.Z, g->Z, sizeof cert.Z);
    memcpy(cert.kpak, g->kpak, sizeof cert.kpak);
    cert.parameter_set = 1;
    cert.root = true;
    return ms_kmsif_certificate_write(xml, cap, len, &cert);
}

/* Stores generation `index`'s certificate and start period (public, usable sealed). */
static ms_err save_generation(ms_kms *k, size_t index, const char *xml)
{
    char key[48];
    snprintf(key, sizeof key, "certificate_%zu", index);
    k->cert_cached = false;
    ms_err e = ms_store_set(k->st, key, xml);
    if (e == MS_OK) {
        snprintf(key, sizeof key, "generation_%zu_from", index);
        e = set_u64(k->st, key, k->s->gen[index].from_period);
    }
    if (e == MS_OK)
        e = set_u64(k->st, "generations", index + 1);
    return e;
}

/* The index of the generation in force for period_no, from the public settings. */
static ms_err generation_index(ms_kms *k, uint64_t period_no, size_t *index)
{
    uint64_t n = 0;
    ms_err e = get_u64(k->st, "generations", &n);
    if (e != MS_OK)
        return e;
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        char key[48];
        uint64_t from = 0;
        snprintf(key, sizeof key, "generation_%zu_from", i);
        if (get_u64(k->st, key, &from) != MS_OK)
            return MS_ERR_STORE;
        if (from <= period_no) {
            *index = i;
            found = 1;
        }
    }
    return found ? MS_OK : MS_ERR_PERIOD;
}

static ms_err certificate_for(ms_kms *k, uint64_t period_no, char *xml, size_t cap)
{
    size_t index = 0;
    ms_err e = generation_index(k, period_no, &index);
    if (e != MS_OK)
        return e;
    char key[48];
    snprintf(key, sizeof key, "certificate_%zu", index);
    return ms_store_get(k->st, key, xml, cap);
}

static ms_err parsed_certificate_for(ms_kms *k, uint64_t period_no, ms_kms_certificate *cert)
{
    size_t index = 0;
    ms_err e = generation_index(k, period_no, &index);
    if (e != MS_OK)
        return e;
    if (k->cert_cached && k->cert_cached_index == index) {
        *cert = k->cert_cache;
        return MS_OK;
    }
    char *xml = malloc(CERT_MAX);
    if (xml == NULL)
        return MS_ERR_NOMEM;
    e = certificate_for(k, period_no, xml, CERT_MAX);
    if (e == MS_OK)
        e = ms_kmsif_certificate_parse(cert, xml, strlen(xml), NULL, 0);
    free(xml);
    if (e == MS_OK) {
        k->cert_cache = *cert;
        k->cert_cached_index = index;
        k->cert_cached = true;
    }
    return e;
}

/* ---- the audit log ---------------------------------------------------------------------- */

static void save_head(ms_kms *k)
{
    char hex[2 * MS_AUDIT_HASH_BYTES + 1];
    if (!k->head_dirty)
        return;
    ms_hex_encode_upper(hex, k->head_hash, sizeof k->head_hash);
    /* The log is the record; the head in the store only detects truncation, so a
     * failure here is not a reason to withhold what was already logged. */
    char seq[32];
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)k->head_seq);
    static const char *const keys[] = {"audit_seq", "audit_head"};
    const char *const values[] = {seq, hex};
    /* Once per answer on the serving path: one relaxed commit, not two synced ones
     * (the audit log's own fsync is what makes the entry durable). */
    ms_err e = ms_store_in_transaction(k->st) ? MS_ERR_ARG
                                              : ms_store_set_relaxed(k->st, keys, values, 2);
    if (e == MS_ERR_ARG)
        e = set_u64(k->st, "audit_seq", k->head_seq) == MS_OK
                ? ms_store_set(k->st, "audit_head", hex)
                : MS_ERR_STORE;
    if (e == MS_OK)
        k->head_dirty = false;
}

/* Appends one entry and fsyncs it; anything else is MS_ERR_AUDIT_LOG (fail closed).
 * seq_out and head_out (may be NULL) give the entry's place in the log. */
static ms_err audit_at(ms_kms *k, const char *event, const ms_audit_field *f, size_t n,
                       uint64_t *seq_out, uint8_t *head_out)
{
    if (k->audit == NULL)
        return MS_ERR_AUDIT_LOG;
    uint64_t seq = 0;
    uint8_t head[MS_AUDIT_HASH_BYTES];
    /* who asked (the role of the signed command), beside what was done */
    ms_audit_field all[MS_AUDIT_MAX_FIELDS];
    if (k->actor[0] != '\0' && n < MS_AUDIT_MAX_FIELDS) {
        if (n > 0)
            memcpy(all, f, n * sizeof *f);
        all[n].key = "by";
        all[n].value = k->actor;
        f = all;
        n++;
    }
    if (ms_audit_append(k->audit, now_secs(k), event, f, n, &seq, head) != MS_OK)
        return MS_ERR_AUDIT_LOG;
    if (seq_out != NULL)
        *seq_out = seq;
    if (head_out != NULL)
        memcpy(head_out, head, sizeof head);
    /* Every extraction hands the auditors a checkpoint of its own entry (kept outside
     * the directory, it shows whether the log was later cut back before it). The log
     * entry is the record: a failure here leaves the checkpoint empty. */
    if (strcmp(event, "extract") == 0 &&
        ms_audit_checkpoint(k->audit, seq, head, now_secs(k), k->extract_checkpoint,
                            sizeof k->extract_checkpoint) != MS_OK)
        k->extract_checkpoint[0] = '\0';
    /* Appends made without the lock (ms_kms_package_commit) may have got further. */
    if (seq > k->head_seq) {
        k->head_seq = seq;
        memcpy(k->head_hash, head, sizeof head);
        k->head_dirty = true;
    }
    if (!k->in_batch)
        save_head(k);
    return MS_OK;
}

static ms_err audit(ms_kms *k, const char *event, const ms_audit_field *f, size_t n)
{
    return audit_at(k, event, f, n, NULL, NULL);
}

/* ---- copies of the log to syslog (setting audit_syslog = yes) ------------------------------ */

static void open_syslog(void)
{
    /* authpriv: journald and rsyslog keep it from ordinary users' eyes. */
    openlog(MS_KMS_AUDIT_SYSLOG_IDENT, LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
}

static void syslog_copy(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, open_syslog);
    syslog(LOG_AUTHPRIV | LOG_NOTICE, "%.*s", (int)(len > INT_MAX ? INT_MAX : len), line);
}

void ms_kms_set_audit_sink(ms_kms *k, ms_audit_copy_fn fn, void *ctx)
{
    if (k == NULL)
        return;
    k->copy_sink = fn;
    k->copy_ctx = ctx;
}

/* Copies the log as it is written when the settings ask for it. */
static void start_copy(ms_kms *k)
{
    char v[16];
    if (k->audit != NULL && ms_store_get(k->st, "audit_syslog", v, sizeof v) == MS_OK &&
        strcmp(v, "yes") == 0)
        ms_audit_set_copy(k->audit, k->copy_sink ? k->copy_sink : syslog_copy,
                          k->copy_sink ? k->copy_ctx : NULL);
    else if (k->audit != NULL)
        ms_audit_set_copy(k->audit, NULL, NULL);
}

static ms_err audit1(ms_kms *k, const char *event, const char *key, const char *value)
{
    ms_audit_field f = {key, value};
    return audit(k, event, &f, 1);
}

/* ---- create, open, close ------------------------------------------------------------------ */

static void to_seal_params(ms_seal_params *p, const ms_kms_seal_material *m)
{
    memset(p, 0, sizeof *p);
    p->method = (ms_seal_method)m->method;
    p->passphrase = m->passphrase;
    p->passphrase_len = m->passphrase_len;
    p->scrypt_log2_n = m->scrypt_log2_n;
    p->k = m->k;
    p->n = m->n;
    p->module = m->pkcs11_module;
    p->token_label = m->token_label;
    p->pin = m->pin;
    p->pin_len = m->pin_len;
    p->key_label = m->key_label ? m->key_label : DEFAULT_KEY_LABEL;
}

static ms_err check_material(const ms_kms_seal_material *m)
{
    switch (m->method) {
    case MS_KMS_SEAL_PASSPHRASE:
        return m->passphrase != NULL && m->passphrase_len > 0 ? MS_OK : MS_ERR_ARG;
    case MS_KMS_SEAL_SHARES:
        return m->k >= 1 && m->k <= m->n && m->n <= MS_KMS_MAX_SHARES ? MS_OK : MS_ERR_ARG;
    case MS_KMS_SEAL_PKCS11:
        return m->pkcs11_module && m->token_label && m->pin ? MS_OK : MS_ERR_ARG;
    default:
        return MS_ERR_ARG;
    }
}

static ms_err seal_now(ms_kms *k, const ms_kms_seal_material *m, ms_kms_handout *out)
{
    char path[PATH_MAX];
    ms_err e = join(path, sizeof path, k->dir, "sealed");
    if (e != MS_OK)
        return e;
    ms_seal_params p;
    to_seal_params(&p, m);
    uint8_t (*shares)[MS_KMS_SHARE_BYTES] = NULL;
    size_t share_len[MS_KMS_MAX_SHARES] = {0};
    if (m->method == MS_KMS_SEAL_SHARES) {
        shares = ms_secure_alloc(MS_KMS_MAX_SHARES * MS_KMS_SHARE_BYTES);
        if (shares == NULL)
            return MS_ERR_NOMEM;
    }
    e = ms_seal_write(path, k->s, &p, shares, share_len, k->detail, sizeof k->detail);
    if (e == MS_OK && shares != NULL) {
        out->n_shares = m->n;
        for (unsigned i = 0; i < m->n; i++) {
            if (share_len[i] > MS_KMS_SHARE_MAX) {
                e = MS_ERR_INTERNAL;
                break;
            }
            memcpy(out->share[i], shares[i], share_len[i]);
            out->share_len[i] = share_len[i];
        }
    }
    ms_secure_free(shares, MS_KMS_MAX_SHARES * MS_KMS_SHARE_BYTES);
    return e;
}

static ms_err create_in(ms_kms *k, const ms_kms_config *cfg, const ms_kms_seal_material *seal,
                        ms_kms_handout *out)
{
    ms_err e;
    uint64_t first = 0;
    e = ms_key_period(&k->ids, &first, cfg->first_time ? cfg->first_time : now_secs(k));
    if (e != MS_OK)
        return MS_ERR_PERIOD;
    /* identifiers must be computable under this scheme */
    uint8_t probe[MS_SAKKE_ID_MAX_BYTES];
    size_t probe_len;
    if (cfg->id_scheme == MS_MIKEY_ID_SCHEME_HASHED_UID &&
        ms_identifier(&k->ids, probe, sizeof probe, &probe_len, "sip:probe@example.org",
                      first) != MS_OK)
        return MS_ERR_ARG;

    char path[PATH_MAX];
    if ((e = join(path, sizeof path, k->dir, "kms.db")) != MS_OK ||
        (e = ms_store_open(&k->st, path, true)) != MS_OK)
        return e;
    if ((e = ms_store_set(k->st, "kms_uri", cfg->kms_uri)) != MS_OK ||
        (e = set_u64(k->st, "id_scheme", cfg->id_scheme)) != MS_OK ||
        (e = set_u64(k->st, "period_len", k->ids.period_len)) != MS_OK ||
        (e = set_u64(k->st, "period_offset", k->ids.period_offset)) != MS_OK ||
        (e = set_u64(k->st, "seal_method", (uint64_t)seal->method)) != MS_OK ||
        (e = set_u64(k->st, "seal_k", seal->k)) != MS_OK ||
        (e = set_u64(k->st, "seal_n", seal->n)) != MS_OK ||
        (e = set_u64(k->st, "scrypt_log2n", seal->scrypt_log2_n)) != MS_OK ||
        (e = set_u64(k->st, "auditors", cfg->n_auditors)) != MS_OK ||
        (e = set_u64(k->st, "approvals", k->approvals)) != MS_OK ||
        (e = ms_store_set(k->st, "audit_syslog", cfg->audit_syslog ? "yes" : "no")) != MS_OK ||
        (e = set_u64(k->st, "max_periods_ahead", k->max_ahead)) != MS_OK ||
        (e = set_u64(k->st, "officers", cfg->n_officers)) != MS_OK ||
        (e = set_u64(k->st, "enrol_approvals", k->enrol_approvals)) != MS_OK)
        return e;
    /* the roles' public keys: only these may ask for privileged acts */
    char rk[2 * MS_KMS_ROLE_KEY_BYTES + 1];
    ms_hex_encode_upper(rk, cfg->operator_key, MS_KMS_ROLE_KEY_BYTES);
    if ((e = ms_store_set(k->st, "operator_key", rk)) != MS_OK)
        return e;
    for (unsigned i = 0; i < cfg->n_officers + cfg->n_auditors; i++) {
        bool off = i < cfg->n_officers;
        unsigned n = off ? i + 1 : i - cfg->n_officers + 1;
        char key[32];
        ms_hex_encode_upper(rk, off ? cfg->officer_keys[n - 1] : cfg->auditor_keys[n - 1],
                   MS_KMS_ROLE_KEY_BYTES);
        snprintf(key, sizeof key, "%s_%u", off ? "officer" : "auditor", n);
        if ((e = ms_store_set(k->st, key, rk)) != MS_OK)
            return e;
    }
    if (seal->method == MS_KMS_SEAL_PKCS11 &&
        ((e = ms_store_set(k->st, "pkcs11_module", seal->pkcs11_module)) != MS_OK ||
         (e = ms_store_set(k->st, "token_label", seal->token_label)) != MS_OK ||
         (e = ms_store_set(k->st, "key_label",
                           seal->key_label ? seal->key_label : DEFAULT_KEY_LABEL)) != MS_OK))
        return e;

    if ((e = ms_kms_secrets_new(&k->s)) != MS_OK ||
        (e = ms_kms_secrets_generate(k->s, first, kms_rng(k))) != MS_OK)
        return e;
    if ((e = seal_now(k, seal, out)) != MS_OK)
        return e;

    char *xml = malloc(CERT_MAX);
    size_t xml_len = 0;
    if (xml == NULL)
        return MS_ERR_NOMEM;
    e = make_certificate(k, &k->s->gen[0], 0, xml, CERT_MAX - 1, &xml_len);
    if (e == MS_OK) {
        xml[xml_len] = '\0';
        e = save_generation(k, 0, xml);
    }
    if (e == MS_OK && (e = join(path, sizeof path, k->dir, "certificate.xml")) == MS_OK)
        e = ms_file_write_atomic(path, xml, xml_len, 0644, MS_FILE_REPLACE, NULL, 0);
    free(xml);
    if (e != MS_OK)
        return e;

    /* the audit key's public half, in the store and as a file for offline checks */
    char hex[2 * MS_AUDIT_PUBLIC_BYTES + 2];
    if ((e = ms_audit_public_key(k->audit_pub, k->s->audit_key)) != MS_OK)
        return e;
    ms_hex_encode_upper(hex, k->audit_pub, sizeof k->audit_pub);
    if ((e = ms_store_set(k->st, "audit_pub", hex)) != MS_OK)
        return e;
    strcat(hex, "\n");
    if ((e = join(path, sizeof path, k->dir, "audit.pub")) != MS_OK ||
        (e = ms_file_write_atomic(path, hex, strlen(hex), 0644, MS_FILE_REPLACE, NULL, 0)) != MS_OK)
        return e;

    if ((e = join(path, sizeof path, k->dir, "audit.log")) != MS_OK ||
        (e = ms_audit_open(&k->audit, path, k->s->audit_key)) != MS_OK)
        return e;
    start_copy(k);
    char num[4][24];
    snprintf(num[0], sizeof num[0], "%u", (unsigned)seal->method);
    snprintf(num[1], sizeof num[1], "%u/%u", k->approvals, cfg->n_auditors);
    snprintf(num[2], sizeof num[2], "%llu", (unsigned long long)first);
    snprintf(num[3], sizeof num[3], "%u/%u", k->enrol_approvals, cfg->n_officers);
    ms_audit_field f[] = {{"kms_uri", cfg->kms_uri},
                          {"seal_method", num[0]},
                          {"approvals", num[1]},
                          {"enrol_approvals", num[3]},
                          {"first_period", num[2]}};
    if ((e = audit(k, "init", f, sizeof f / sizeof f[0])) != MS_OK)
        return e;
    /* Last, so that it covers every setting written above. */
    return ms_settings_mac_write(k->st, k->s);
}

/* Every role key given, valid, and no key in two places (a key's role must be one). */
static ms_err roles_ok(const ms_kms_config *cfg)
{
    unsigned eappr = cfg->enrol_approvals ? cfg->enrol_approvals : 2;
    if (cfg->operator_key == NULL || cfg->n_officers == 0 ||
        cfg->n_officers > MS_KMS_MAX_OFFICERS || cfg->officer_keys == NULL ||
        cfg->auditor_keys == NULL || eappr > cfg->n_officers)
        return MS_ERR_ARG;
    const uint8_t *all[1 + MS_KMS_MAX_OFFICERS + MS_KMS_MAX_AUDITORS];
    size_t n = 0;
    all[n++] = cfg->operator_key;
    for (unsigned i = 0; i < cfg->n_officers; i++)
        all[n++] = cfg->officer_keys[i];
    for (unsigned i = 0; i < cfg->n_auditors; i++)
        all[n++] = cfg->auditor_keys[i];
    for (size_t i = 0; i < n; i++) {
        EVP_PKEY *p = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, all[i],
                                                  MS_KMS_ROLE_KEY_BYTES);
        if (p == NULL)
            return MS_ERR_ARG;
        EVP_PKEY_free(p);
        for (size_t j = 0; j < i; j++)
            if (memcmp(all[i], all[j], MS_KMS_ROLE_KEY_BYTES) == 0)
                return MS_ERR_ARG;
    }
    return MS_OK;
}

static ms_kms *kms_alloc(const char *dir, const ms_rng *rng)
{
    ms_kms *k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    if (strlen(dir) >= sizeof k->dir) {
        free(k);
        return NULL;
    }
    strcpy(k->dir, dir);
    pthread_mutex_init(&k->lock, NULL);
    pthread_rwlock_init(&k->audit_rw, NULL);
    atomic_init(&k->unsealed, false);
    if (rng != NULL) {
        k->rng = *rng;
        k->has_rng = true;
    }
    return k;
}

static void drop_secrets(ms_kms *k)
{
    atomic_store(&k->unsealed, false);
    pthread_rwlock_wrlock(&k->audit_rw); /* waits for appends in flight */
    if (k->audit != NULL)
        ms_audit_close(k->audit);
    k->audit = NULL;
    pthread_rwlock_unlock(&k->audit_rw);
    ms_kms_secrets_free(k->s);
    k->s = NULL;
    if (k->u != NULL)
        ms_unseal_free(k->u);
    k->u = NULL;
}

void ms_kms_close(ms_kms *k)
{
    if (k == NULL)
        return;
    drop_secrets(k);
    if (k->st != NULL)
        ms_store_close(k->st);
    pthread_mutex_destroy(&k->lock);
    pthread_rwlock_destroy(&k->audit_rw);
    ms_wipe(k, sizeof *k);
    free(k);
}

ms_err ms_kms_create(ms_kms_handout *out, const char *dir, const ms_kms_config *cfg,
                     const ms_kms_seal_material *seal, const ms_rng *rng, char *detail,
                     size_t detail_cap) {
    ms_detail_set(detail, detail_cap, "%s", "");
    if (dir == NULL || cfg == NULL || seal == NULL || out == NULL || !uri_ok(cfg->kms_uri) ||
        cfg->n_auditors == 0 || cfg->n_auditors > MS_KMS_MAX_AUDITORS ||
        cfg->approvals > cfg->n_auditors || check_material(seal) != MS_OK ||
        roles_ok(cfg) != MS_OK)
        return MS_ERR_ARG;
    if (cfg->id_scheme != MS_MIKEY_ID_SCHEME_TEL_MONTHLY &&
        !(cfg->id_scheme == MS_MIKEY_ID_SCHEME_HASHED_UID && cfg->period_len > 0))
        return MS_ERR_ARG;
    memset(out, 0, sizeof *out);

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap,
                              "cannot create the KMS directory %s: %s", dir, strerror(errno));
    ms_kms *k = kms_alloc(dir, rng);
    if (k == NULL)
        return MS_ERR_NOMEM;
    char path[PATH_MAX];
    struct stat sb;
    const char *mine[] = {"kms.db", "sealed", "audit.log"};
    for (size_t i = 0; i < 3; i++)
        if (join(path, sizeof path, dir, mine[i]) != MS_OK || stat(path, &sb) == 0) {
            ms_kms_close(k);
            return ms_detail_fail(MS_ERR_EXISTS, detail, detail_cap,
                                  "%s already holds a KMS (%s)", dir, mine[i]);
        }
    snprintf(k->kms_uri, sizeof k->kms_uri, "%s", cfg->kms_uri);
    k->ids.scheme = cfg->id_scheme;
    k->ids.kms_uri = k->kms_uri;
    k->ids.period_len = cfg->id_scheme == MS_MIKEY_ID_SCHEME_HASHED_UID ? cfg->period_len : 0;
    k->ids.period_offset =
        cfg->id_scheme == MS_MIKEY_ID_SCHEME_HASHED_UID ? cfg->period_offset : 0;
    k->method = seal->method;
    k->approvals = cfg->approvals ? cfg->approvals : 1;
    k->n_auditors = cfg->n_auditors;
    k->max_ahead = cfg->max_periods_ahead ? cfg->max_periods_ahead : MS_KMS_DEFAULT_MAX_AHEAD;
    k->n_officers = cfg->n_officers;
    k->enrol_approvals = cfg->enrol_approvals ? cfg->enrol_approvals : 2;

    ms_err e = create_in(k, cfg, seal, out);
    if (e != MS_OK && k->detail[0] != '\0')
        ms_detail_set(detail, detail_cap, "%s", k->detail);
    ms_kms_close(k);
    if (e != MS_OK)
        ms_wipe(out, sizeof *out);
    return e;
}

ms_err ms_kms_open(ms_kms **out, const char *dir, const ms_rng *rng, char *detail,
                   size_t detail_cap)
{
    ms_detail_set(detail, detail_cap, "%s", "");
    if (out == NULL || dir == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    char path[PATH_MAX];
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap, "KMS directory %s: %s", dir,
                              strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap, "%s is not a directory", dir);
    ms_err e = join(path, sizeof path, dir, "kms.db");
    if (e != MS_OK)
        return ms_detail_fail(e, detail, detail_cap, "%s: path too long", dir);
    if (stat(path, &sb) != 0) /* no KMS here: never create one by accident */
        return ms_detail_fail(MS_ERR_STORE, detail, detail_cap, "%s holds no KMS: %s: %s", dir,
                              path, strerror(errno));
    ms_kms *k = kms_alloc(dir, rng);
    if (k == NULL)
        return MS_ERR_NOMEM;
    e = ms_store_open(&k->st, path, false);
    if (e != MS_OK)
        ms_detail_set(detail, detail_cap, "%s cannot be opened as the KMS database", path);
    if (e == MS_OK && (e = load_settings(k)) != MS_OK)
        ms_detail_set(detail, detail_cap, "%s lacks the KMS settings or holds invalid ones",
                      path);
    if (e != MS_OK) {
        ms_kms_close(k);
        return e;
    }
    *out = k;
    return MS_OK;
}

void ms_kms_set_clock(ms_kms *k, uint64_t (*now)(void *ctx), void *ctx)
{
    if (k == NULL)
        return;
    k->now = now;
    k->now_ctx = ctx;
}

void ms_kms_set_progress(ms_kms *k, ms_kms_progress_fn fn, void *ctx)
{
    if (k == NULL)
        return;
    k->progress = fn;
    k->progress_ctx = ctx;
}

ms_err ms_kms_period_of(ms_kms *k, uint64_t *period_no, uint64_t ntp_seconds) {
    if (k == NULL || period_no == NULL)
        return MS_ERR_ARG;
    return ms_key_period(&k->ids, period_no, ntp_seconds);
}

static ms_err current_period(ms_kms *k, uint64_t *p)
{
    return ms_key_period(&k->ids, p, now_secs(k));
}

ms_err ms_kms_status_get(ms_kms *k, ms_kms_status *st)
{
    if (k == NULL || st == NULL)
        return MS_ERR_ARG;
    memset(st, 0, sizeof *st);
    st->unsealed = k->s != NULL;
    st->seal_method = k->method;
    if (k->u != NULL)
        ms_unseal_progress(k->u, &st->shares_have, &st->shares_need);
    else if (k->method == MS_KMS_SEAL_SHARES) {
        uint64_t need = 0;
        if (get_u64(k->st, "seal_k", &need) == MS_OK)
            st->shares_need = (unsigned)need;
    }
    snprintf(st->kms_uri, sizeof st->kms_uri, "%s", k->kms_uri);
    st->id_scheme = k->ids.scheme;
    st->period_len = k->ids.period_len;
    st->period_offset = k->ids.period_offset;
    (void)current_period(k, &st->current_period);
    (void)get_u64(k->st, "audit_seq", &st->audit_seq);
    st->n_generations = k->s ? k->s->n_generations : 0;
    return MS_OK;
}

/* ---- unseal and seal ---------------------------------------------------------------------- */

static ms_err unseal_open(ms_kms *k)
{
    if (k->u != NULL)
        return MS_OK;
    char path[PATH_MAX];
    ms_err e = join(path, sizeof path, k->dir, "sealed");
    if (e != MS_OK)
        return e;
    return ms_unseal_open(&k->u, path, k->detail, sizeof k->detail);
}

const char *ms_kms_detail(const ms_kms *k)
{
    return k != NULL ? k->detail : "";
}

void ms_kms_detail_clear(ms_kms *k)
{
    if (k != NULL)
        k->detail[0] = '\0';
}

void ms_kms_adopt_settings(ms_kms *k, bool adopt)
{
    if (k != NULL)
        k->adopt_settings = adopt;
}

/* The settings in kms.db must be the ones the KMS wrote (their MAC needs the secrets s
 * just unsealed); the values in force are then re-read from them in the same
 * transaction, so nothing read before the check is used. Settings without a MAC (a KMS
 * made before the MAC existed, or the row deleted) are refused unless the custodians
 * ordered their adoption (ms_kms_adopt_settings): then they get one, logged with the
 * settings it vouches for. A refusal is logged too (MS_ERR_SETTINGS_CHANGED, k->detail
 * names the rows). Needs k->audit. */
static ms_err check_settings(ms_kms *k, const ms_kms_secrets *s)
{
    bool missing = false;
    char *described = NULL;
    ms_err e = ms_store_begin(k->st);
    if (e != MS_OK)
        return e;
    e = ms_settings_mac_check(k->st, s, &missing, k->detail, sizeof k->detail);
    if (e == MS_OK && missing && !k->adopt_settings)
        e = ms_detail_fail(MS_ERR_SETTINGS_CHANGED, k->detail, sizeof k->detail,
                           "the KMS settings in kms.db were changed outside the KMS or predate "
                           "their MAC: row '%s' is missing (a KMS made before settings were "
                           "authenticated, or the row was deleted); once the custodians have "
                           "checked the settings, unseal with --adopt-settings",
                           MS_SETTINGS_MAC_ROW);
    if (e == MS_OK && missing) {
        described = malloc(MS_AUDIT_LINE_MAX / 2);
        e = described == NULL ? MS_ERR_NOMEM
                              : ms_settings_describe(k->st, described, MS_AUDIT_LINE_MAX / 2);
        if (e == MS_OK)
            e = ms_settings_mac_write(k->st, s);
    }
    if (e == MS_OK)
        e = load_settings(k);
    if (e == MS_OK)
        e = ms_store_commit(k->st);
    else
        ms_store_rollback(k->st);
    if (e == MS_ERR_SETTINGS_CHANGED) {
        /* Refused loudly: in the log too (the log stays the log: it is not in kms.db). */
        ms_audit_field f[] = {{"reason", k->detail}};
        (void)audit(k, "unseal_refused", f, 1);
    } else if (e == MS_OK && missing) {
        ms_audit_field f[] = {
            {"reason", "settings without a MAC adopted on the custodians' order: the "
                       "settings as found are authenticated from now on"},
            {"settings", described}};
        e = audit(k, "settings_sealed", f, 2);
        k->adopt_settings = false;
    }
    free(described);
    return e;
}

/* The secrets are in: check they belong to this KMS, open the log, check the settings,
 * record the unseal. Any failure leaves the KMS sealed. */
static ms_err unsealed(ms_kms *k, ms_kms_secrets *s)
{
    uint8_t pub[MS_AUDIT_PUBLIC_BYTES];
    char path[PATH_MAX];
    ms_err e = ms_audit_public_key(pub, s->audit_key);
    if (e == MS_OK && CRYPTO_memcmp(pub, k->audit_pub, sizeof pub) != 0)
        e = MS_ERR_SEALED_FILE; /* a sealed file from another KMS */
    if (e == MS_OK && (e = join(path, sizeof path, k->dir, "audit.log")) == MS_OK &&
        ms_audit_open(&k->audit, path, s->audit_key) != MS_OK)
        e = MS_ERR_AUDIT_LOG;
    if (e == MS_OK)
        start_copy(k); /* a refusal below is copied too */
    if (e == MS_OK)
        e = check_settings(k, s);
    if (e == MS_OK) {
        char m[8];
        snprintf(m, sizeof m, "%d", k->method);
        e = audit1(k, "unseal", "seal_method", m);
    }
    if (e != MS_OK) {
        if (k->audit != NULL)
            ms_audit_close(k->audit);
        k->audit = NULL;
        ms_kms_secrets_free(s);
        return e;
    }
    k->s = s;
    ms_unseal_free(k->u);
    k->u = NULL;
    atomic_store(&k->unsealed, true);
    return MS_OK;
}

/* The seal layer's reason for a refusal, kept on the handle (ms_kms_detail) so that the
 * agent can pass it on: which of wrong, corrupted, duplicated or another KMS's share. */
static ms_err keep_seal_detail(ms_kms *k, ms_err e)
{
    if (e != MS_OK && k->detail[0] == '\0')
        ms_detail_set(k->detail, sizeof k->detail, "%s", ms_unseal_detail(k->u));
    return e;
}

/* The passphrase and the PKCS#11 PIN differ only in which seal-layer call opens the secrets. */
typedef ms_err (*unseal_with_secret)(ms_unseal *u, ms_kms_secrets **out, const uint8_t *secret,
                                     size_t len);

static ms_err unseal_with(ms_kms *k, unseal_with_secret open_secrets, const uint8_t *secret,
                          size_t len)
{
    if (k == NULL || secret == NULL)
        return MS_ERR_ARG;
    k->detail[0] = '\0';
    if (k->s != NULL)
        return MS_OK;
    ms_err e = unseal_open(k);
    if (e != MS_OK)
        return e;
    ms_kms_secrets *s = NULL;
    e = open_secrets(k->u, &s, secret, len);
    if (e != MS_OK)
        return keep_seal_detail(k, e);
    return s != NULL ? unsealed(k, s) : MS_ERR_INTERNAL;
}

ms_err ms_kms_unseal_passphrase(ms_kms *k, const uint8_t *pass, size_t len)
{
    return unseal_with(k, ms_unseal_passphrase, pass, len);
}

ms_err ms_kms_unseal_pkcs11(ms_kms *k, const uint8_t *pin, size_t len)
{
    return unseal_with(k, ms_unseal_pkcs11, pin, len);
}

ms_err ms_kms_unseal_share(ms_kms *k, unsigned *have, unsigned *need, const uint8_t *share,
                           size_t len) {
    if (k == NULL || share == NULL)
        return MS_ERR_ARG;
    k->detail[0] = '\0';
    if (k->s != NULL) {
        if (have)
            *have = 0;
        if (need)
            *need = 0;
        return MS_OK;
    }
    ms_err e = unseal_open(k);
    if (e != MS_OK)
        return e;
    ms_kms_secrets *s = NULL;
    unsigned h = 0, n = 0;
    e = keep_seal_detail(k, ms_unseal_share(k->u, &s, share, len));
    ms_unseal_progress(k->u, &h, &n);
    if (e == MS_OK && s != NULL) {
        e = unsealed(k, s);
        if (e == MS_OK)
            h = n;
    }
    if (have)
        *have = h;
    if (need)
        *need = n;
    return e;
}

ms_err ms_kms_seal(ms_kms *k)
{
    if (k == NULL)
        return MS_ERR_ARG;
    ms_err e = MS_OK;
    if (k->s != NULL)
        e = audit(k, "seal", NULL, 0);
    drop_secrets(k);
    return e;
}

/* ---- users and devices ----------------------------------------------------------------------- */

static ms_err need_unsealed(const ms_kms *k)
{
    return k == NULL ? MS_ERR_ARG : k->s == NULL ? MS_ERR_SEALED : MS_OK;
}

static ms_err user_status(ms_kms *k, const char *uri, ms_user_status *status)
{
    ms_err e = ms_store_user_status(k->st, uri, status);
    return e;
}

ms_err ms_kms_user_add(ms_kms *k, const char *uri)
{
    ms_err e = need_unsealed(k);
    if (e != MS_OK)
        return e;
    if (!uri_ok(uri) || ms_kms_uri_check(uri, NULL, 0) != MS_OK)
        return MS_ERR_IDENTITY;
    /* the URI must make an identifier under this community's scheme */
    uint64_t p = 0;
    uint8_t id[MS_SAKKE_ID_MAX_BYTES];
    size_t id_len = 0;
    if ((e = current_period(k, &p)) != MS_OK)
        return e;
    if ((e = ms_identifier(&k->ids, id, sizeof id, &id_len, uri, p)) != MS_OK)
        return e;
    ms_user_status st;
    if (user_status(k, uri, &st) == MS_OK)
        return MS_ERR_EXISTS;
    if ((e = audit1(k, "user_add", "user", uri)) != MS_OK)
        return e;
    return ms_store_user_add(k->st, uri);
}

static ms_err user_change(ms_kms *k, const char *uri, const char *event, int what)
{
    ms_err e = need_unsealed(k);
    if (e != MS_OK)
        return e;
    if (!uri_ok(uri))
        return MS_ERR_IDENTITY;
    ms_user_status st;
    if ((e = user_status(k, uri, &st)) != MS_OK)
        return e;
    if ((e = audit1(k, event, "user", uri)) != MS_OK)
        return e;
    if (what == 0)
        return ms_store_user_set_status(k->st, uri, MS_USER_SUSPENDED);
    if (what == 1)
        return ms_store_user_set_status(k->st, uri, MS_USER_ACTIVE);
    return ms_store_user_remove(k->st, uri);
}

ms_err ms_kms_user_suspend(ms_kms *k, const char *uri)
{
    return user_change(k, uri, "user_suspend", 0);
}

ms_err ms_kms_user_resume(ms_kms *k, const char *uri)
{
    return user_change(k, uri, "user_resume", 1);
}

ms_err ms_kms_user_remove(ms_kms *k, const char *uri)
{
    return user_change(k, uri, "user_remove", 2);
}

struct list_ctx {
    ms_kms_user_fn cb;
    void *ctx;
};

static int list_adapter(void *ctx, const char *uri, ms_user_status status, size_t n_devices)
{
    struct list_ctx *l = ctx;
    return l->cb(l->ctx, uri, status == MS_USER_SUSPENDED, n_devices);
}

ms_err ms_kms_user_list(ms_kms *k, ms_kms_user_fn cb, void *ctx)
{
    if (k == NULL || cb == NULL)
        return MS_ERR_ARG;
    struct list_ctx l = {cb, ctx};
    return ms_store_user_list(k->st, list_adapter, &l);
}

static ms_err active_user(ms_kms *k, const char *uri)
{
    ms_user_status st;
    ms_err e = user_status(k, uri, &st);
    if (e != MS_OK)
        return e;
    return st == MS_USER_SUSPENDED ? MS_ERR_USER_SUSPENDED : MS_OK;
}

/* approved_by: NULL for a user's first device; else who approved it, and nonce the
 * approved request's, spent in the transaction that files the device. */
static ms_err enrol(ms_kms *k, const char *user_uri, const char *device_id, char *xml,
                    size_t cap, size_t *xml_len, const char *approved_by, const char *nonce)
{
    ms_err e = need_unsealed(k);
    if (e != MS_OK)
        return e;
    if (xml == NULL || xml_len == NULL || !uri_ok(user_uri))
        return MS_ERR_ARG;
    if (!device_id_ok(device_id))
        return MS_ERR_ARG;
    if ((e = active_user(k, user_uri)) != MS_OK)
        return e;

    ms_device *dev = ms_secure_alloc(sizeof *dev);
    ms_device_keys *keys = ms_secure_alloc(sizeof *keys);
    ms_kms_certificate cert;
    uint64_t p = 0;
    if (dev == NULL || keys == NULL) {
        e = MS_ERR_NOMEM;
        goto done;
    }
    if (ms_store_device_get(k->st, k->s, device_id, dev) == MS_OK) {
        e = MS_ERR_EXISTS;
        goto done;
    }
    size_t n_dev = 0;
    if ((e = ms_store_device_count(k->st, user_uri, &n_dev)) != MS_OK)
        goto done;
    if (n_dev > 0 && approved_by == NULL) {
        e = MS_ERR_APPROVAL; /* a quiet extra device would read the user's calls */
        goto done;
    }
    memset(dev, 0, sizeof *dev);
    snprintf(dev->id, sizeof dev->id, "%s", device_id);
    snprintf(dev->user_uri, sizeof dev->user_uri, "%s", user_uri);
    uint8_t ids[8];
    if ((e = ms_rng_fill(kms_rng(k), dev->trk, sizeof dev->trk)) != MS_OK ||
        (e = ms_rng_fill(kms_rng(k), dev->ink, sizeof dev->ink)) != MS_OK ||
        (e = ms_rng_fill(kms_rng(k), ids, sizeof ids)) != MS_OK)
        goto done;
    dev->trk_id = (uint32_t)ids[0] << 24 | (uint32_t)ids[1] << 16 | (uint32_t)ids[2] << 8 | ids[3];
    dev->ink_id = (uint32_t)ids[4] << 24 | (uint32_t)ids[5] << 16 | (uint32_t)ids[6] << 8 | ids[7];
    snprintf(keys->user_uri, sizeof keys->user_uri, "%s", user_uri);
    snprintf(keys->device_id, sizeof keys->device_id, "%s", device_id);
    memcpy(keys->trk, dev->trk, 32);
    memcpy(keys->ink, dev->ink, 32);
    keys->trk_id = dev->trk_id;
    keys->ink_id = dev->ink_id;
    if ((e = current_period(k, &p)) != MS_OK)
        goto done;
    if (generation_index(k, p, &(size_t){0}) != MS_OK) {
        uint64_t first = 0;
        if (get_u64(k->st, "generation_0_from", &first) == MS_OK)
            p = first; /* a KMS whose first period is still ahead */
    }
    if ((e = parsed_certificate_for(k, p, &cert)) != MS_OK)
        goto done;
    /* the file first (so nothing is stored for a buffer too small), released last */
    if ((e = ms_kmsif_enrolment_write(xml, cap, xml_len, keys, &cert)) != MS_OK)
        goto done;
    ms_audit_field f[] = {{"user", user_uri}, {"device", device_id}, {"second_device", "1"},
                          {"approved_by", approved_by}, {"nonce", nonce}};
    if (approved_by == NULL) {
        if ((e = audit(k, "enrol", f, 2)) != MS_OK)
            goto done;
        e = ms_store_device_add(k->st, k->s, dev);
        goto done;
    }
    /* the nonce, the log entry and the device commit together */
    if ((e = ms_store_begin(k->st)) != MS_OK)
        goto done;
    e = ms_store_nonce_use(k->st, nonce);
    if (e == MS_ERR_EXISTS)
        e = MS_ERR_REQUEST_STALE;
    if (e == MS_OK)
        e = audit(k, "enrol", f, 5);
    if (e == MS_OK)
        e = ms_store_device_add(k->st, k->s, dev);
    if (e == MS_OK)
        e = ms_store_commit(k->st);
    else
        ms_store_rollback(k->st);
done:
    if (e != MS_OK && xml != NULL && xml_len != NULL) {
        ms_wipe(xml, cap);
        *xml_len = 0;
    }
    ms_secure_free(dev, sizeof *dev);
    ms_secure_free(keys, sizeof *keys);
    return e;
}

ms_err ms_kms_device_enrol(ms_kms *k, char *xml, size_t cap, size_t *xml_len,
                           const char *user_uri, const char *device_id)
{
    return enrol(k, user_uri, device_id, xml, cap, xml_len, NULL, NULL);
}

/* ---- issuance and export ----------------------------------------------------------------------- */

static ms_err issue_log(void *ctx, uint64_t period_no, size_t n_keysets)
{
    ms_kms *k = ctx;
    char p[24], n[24];
    snprintf(p, sizeof p, "%llu", (unsigned long long)period_no);
    snprintf(n, sizeof n, "%zu", n_keysets);
    ms_audit_field f[] = {{"period", p}, {"keysets", n}};
    return audit(k, "issue", f, 2);
}

static ms_err period_open(ms_kms *k, uint64_t period_no)
{
    uint64_t cur = 0;
    ms_err e = current_period(k, &cur);
    if (e != MS_OK)
        return e;
    if (period_no < cur)
        return MS_ERR_PERIOD; /* expired */
    return ms_kms_secrets_generation(k->s, period_no) != NULL ? MS_OK : MS_ERR_PERIOD;
}

ms_err ms_kms_issue_check(ms_kms *k, uint64_t period_no, char *detail, size_t cap)
{
    if (k == NULL)
        return MS_ERR_ARG;
    uint64_t cur = 0;
    if (current_period(k, &cur) != MS_OK)
        return ms_detail_fail(MS_ERR_PERIOD, detail, cap,
                              "the clock lies before the first key period");
    if (period_no < cur)
        return ms_detail_fail(MS_ERR_PERIOD, detail, cap,
                              "key period %llu has ended (the current one is %llu)",
                              (unsigned long long)period_no, (unsigned long long)cur);
    /* Keys far ahead would stay valid for decades once handed out (and a typo such as
     * current + 1200 would fill the store); the limit is set at creation. */
    if (period_no - cur > k->max_ahead)
        return ms_detail_fail(MS_ERR_PERIOD, detail, cap,
                              "key period %llu is %llu periods after the current one (%llu); "
                              "this KMS issues at most %llu ahead (max_periods_ahead, set "
                              "by kms init --max-periods-ahead)",
                              (unsigned long long)period_no,
                              (unsigned long long)(period_no - cur), (unsigned long long)cur,
                              (unsigned long long)k->max_ahead);
    return MS_OK;
}

ms_err ms_kms_issue(ms_kms *k, size_t *issued, uint64_t period_no, unsigned threads) {
    ms_err e = need_unsealed(k);
    if (e != MS_OK)
        return e;
    if (issued == NULL)
        return MS_ERR_ARG;
    *issued = 0;
    if ((e = ms_kms_issue_check(k, period_no, NULL, 0)) != MS_OK ||
        (e = period_open(k, period_no)) != MS_OK)
        return e;
    k->in_batch = true;
    ms_issue_opts o = {.threads = threads ? threads : 2, .log = issue_log, .log_ctx = k,
                       .progress = k->progress, .progress_ctx = k->progress_ctx};
    e = ms_kms_issue_period_opts(k->st, k->s, &k->ids, period_no, &o, issued);
    k->in_batch = false;
    save_head(k);
    return e;
}

struct dev_list {
    size_t n, cap;
    char (*id)[MS_STORE_DEVICE_ID_MAX + 1];
};

static int collect_device(void *ctx, const char *id, const char *user_uri)
{
    (void)user_uri;
    struct dev_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        void *p = realloc(l->id, cap * sizeof *l->id);
        if (p == NULL)
            return 1;
        l->id = p;
        l->cap = cap;
    }
    snprintf(l->id[l->n++], sizeof l->id[0], "%s", id);
    return 0;
}

/* A file name for a device: its ID with anything unusual replaced, plus a hash so two
 * IDs that map to the same text still get two files. */
static void package_name(char out[128], const char *device_id)
{
    char safe[MS_STORE_DEVICE_ID_MAX + 1];
    size_t i;
    for (i = 0; device_id[i] != '\0' && i < MS_STORE_DEVICE_ID_MAX; i++) {
        char c = device_id[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_';
        safe[i] = ok ? c : '_';
    }
    safe[i] = '\0';
    uint8_t h[32];
    char hh[65];
    if (sha256(h, device_id, strlen(device_id)) != MS_OK)
        memset(h, 0, sizeof h);
    ms_hex_encode_upper(hh, h, 4);
    snprintf(out, 128, "%.64s-%.8s.xml", safe, hh);
}

struct device_list {
    char *out;
    size_t cap, len;
    bool full;
};

static int add_device_id(void *ctx, const char *id, const char *user_uri)
{
    (void)user_uri;
    struct device_list *l = ctx;
    size_t n = strlen(id);
    if (l->len + (l->len ? 1 : 0) + n + 1 > l->cap) {
        l->full = true;
        return 1;
    }
    if (l->len)
        l->out[l->len++] = ' ';
    memcpy(l->out + l->len, id, n + 1);
    l->len += n;
    return 0;
}

/* Every device id of the user, for the package (so each device sees one added beside
 * it). A list that does not fit is not sent: MS_ERR_BUFFER_TOO_SMALL. */
static ms_err user_devices(ms_kms *k, const char *user_uri, char *out, size_t cap)
{
    struct device_list l = {out, cap, 0, false};
    out[0] = '\0';
    ms_err e = ms_store_device_list(k->st, user_uri, add_device_id, &l);
    if (e == MS_OK && l.full)
        e = MS_ERR_BUFFER_TOO_SMALL;
    if (e != MS_OK)
        out[0] = '\0';
    return e;
}

/* What a key package for device dev starts with: the device's keys for wrapping and
 * signing, and the package's names, the user's device list and the time. */
static ms_err package_for(ms_kms *k, const ms_device *dev, ms_device_keys *keys,
                          ms_key_package *pkg)
{
    snprintf(keys->user_uri, sizeof keys->user_uri, "%s", dev->user_uri);
    snprintf(keys->device_id, sizeof keys->device_id, "%s", dev->id);
    memcpy(keys->trk, dev->trk, 32);
    memcpy(keys->ink, dev->ink, 32);
    keys->trk_id = dev->trk_id;
    keys->ink_id = dev->ink_id;
    snprintf(pkg->user_uri, sizeof pkg->user_uri, "%s", dev->user_uri);
    snprintf(pkg->kms_uri, sizeof pkg->kms_uri, "%s", k->kms_uri);
    snprintf(pkg->device_id, sizeof pkg->device_id, "%s", dev->id);
    ms_err e = user_devices(k, dev->user_uri, pkg->user_devices, sizeof pkg->user_devices);
    pkg->time = now_secs(k);
    return e;
}

static ms_err export_one(ms_kms *k, const char *device_id, uint64_t period_no,
                         const ms_kms_certificate *cert, const char *out_dir, char *buf,
                         FILE *index, int *written)
{
    *written = 0;
    ms_device *dev = ms_secure_alloc(sizeof *dev);
    ms_keyset *ks = ms_secure_alloc(sizeof *ks);
    ms_key_package *pkg = ms_secure_alloc(sizeof *pkg);
    ms_device_keys *keys = ms_secure_alloc(sizeof *keys);
    ms_err e = MS_OK;
    if (dev == NULL || ks == NULL || pkg == NULL || keys == NULL) {
        e = MS_ERR_NOMEM;
        goto done;
    }
    if ((e = ms_store_device_get(k->st, k->s, device_id, dev)) != MS_OK)
        goto done;
    if (active_user(k, dev->user_uri) != MS_OK)
        goto done; /* suspended users get nothing */
    e = ms_store_keyset_get(k->st, k->s, device_id, period_no, ks);
    if (e == MS_ERR_NO_KEYS) {
        e = MS_OK;
        goto done;
    }
    if (e != MS_OK)
        goto done;
    if ((e = package_for(k, dev, keys, pkg)) != MS_OK)
        goto done;
    pkg->cert = *cert;
    pkg->n_keysets = 1;
    ms_kmsif_keyset *o = &pkg->keysets[0];
    snprintf(o->kms_uri, sizeof o->kms_uri, "%s", k->kms_uri);
    snprintf(o->user_uri, sizeof o->user_uri, "%s", dev->user_uri);
    memcpy(o->user_id, ks->user_id, ks->user_id_len);
    o->user_id_len = ks->user_id_len;
    o->period_no = period_no;
    if ((e = ms_key_period_bounds(&k->ids, &o->valid_from, &o->valid_to, period_no)) != MS_OK)
        goto done;
    memcpy(o->rsk, ks->rsk, sizeof o->rsk);
    memcpy(o->ssk, ks->ssk, sizeof o->ssk);
    memcpy(o->pvt, ks->pvt, sizeof o->pvt);

    size_t len = 0;
    if ((e = ms_kmsif_package_write(buf, MS_KMSIF_MAX_XML, &len, pkg, keys, kms_rng(k))) != MS_OK)
        goto done;
    /* One file per device and period, so exports of several periods share a folder. */
    char base[128], name[160], path[PATH_MAX];
    package_name(base, dev->id);
    base[strlen(base) - 4] = '\0'; /* drop ".xml" */
    snprintf(name, sizeof name, "%s-%llu.xml", base, (unsigned long long)period_no);
    if ((e = join(path, sizeof path, out_dir, name)) != MS_OK ||
        (e = ms_file_write_atomic(path, buf, len, 0644, MS_FILE_REPLACE, NULL, 0)) != MS_OK)
        goto done;
    ms_annexd_index_entry line = {.device = dev->id, .user = dev->user_uri, .file = name,
                                  .period = period_no};
    if ((e = sha256(line.package_sha256, buf, len)) != MS_OK)
        goto done;
    /* The distribution server holds no secret: it gets SHA-256 of the device's bearer
     * token (kmsif.h). */
    {
        char tok[MS_KMSIF_TOKEN_HEX + 1];
        e = ms_kmsif_device_token(tok, dev->ink, dev->id);
        if (e == MS_OK)
            e = sha256(line.token_sha256, tok, MS_KMSIF_TOKEN_HEX);
        ms_wipe(tok, sizeof tok);
        if (e != MS_OK)
            goto done;
    }
    {
        char text[MS_ANNEXD_INDEX_LINE_MAX + 1];
        if ((e = ms_annexd_index_line_write(&line, text, sizeof text, NULL, NULL, 0)) != MS_OK)
            goto done;
        fputs(text, index);
    }
    *written = 1;
done:
    ms_secure_free(dev, sizeof *dev);
    ms_secure_free(ks, sizeof *ks);
    ms_secure_free(pkg, sizeof *pkg);
    ms_secure_free(keys, sizeof *keys);
    return e;
}

/* Whether an earlier index line may stay: its device still exists under that user, the
 * user is active, and the device has not been enrolled again since (a new token). */
static bool still_entitled(ms_kms *k, const char *device_id, const char *user_uri,
                           const uint8_t token_sha256[32])
{
    ms_device *dev = ms_secure_alloc(sizeof *dev);
    bool ok = false;
    if (dev != NULL && ms_store_device_get(k->st, k->s, device_id, dev) == MS_OK &&
        strcmp(dev->user_uri, user_uri) == 0 && active_user(k, user_uri) == MS_OK) {
        char tok[MS_KMSIF_TOKEN_HEX + 1];
        uint8_t h[32];
        if (ms_kmsif_device_token(tok, dev->ink, dev->id) == MS_OK &&
            sha256(h, tok, MS_KMSIF_TOKEN_HEX) == MS_OK)
            ok = memcmp(h, token_sha256, 32) == 0;
        ms_wipe(tok, sizeof tok);
    }
    ms_secure_free(dev, sizeof *dev);
    return ok;
}

/* Carries over the lines of an earlier index.txt in the folder for other periods that
 * have not yet expired, so that the folder serves the current and the next period; but
 * not those of users suspended or removed (or devices re-enrolled) since. The package
 * files of every line not carried over are listed in *dropped (one per line): those the
 * new index does not name again are removed once it is written. */
static void keep_other_periods(ms_kms *k, FILE *index, const char *path, uint64_t period_no,
                               FILE *dropped)
{
    uint64_t cur = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL || current_period(k, &cur) != MS_OK) {
        if (f != NULL)
            fclose(f);
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) > 0) {
        ms_annexd_index_entry old;
        if (line[got - 1] == '\n')
            line[got - 1] = '\0';
        if (line[0] == '#' || line[0] == '\0' ||
            ms_annexd_index_line_parse(line, &old, NULL, 0) != MS_OK)
            continue; /* comments, and lines `dist serve` would skip */
        char text[MS_ANNEXD_INDEX_LINE_MAX + 1];
        if (old.period != period_no && old.period >= cur &&
            still_entitled(k, old.device, old.user, old.token_sha256) &&
            ms_annexd_index_line_write(&old, text, sizeof text, NULL, NULL, 0) == MS_OK)
            fputs(text, index);
        else
            fprintf(dropped, "%s\n", old.file);
    }
    free(line);
    fclose(f);
}

/* Removes the package files of dropped index lines that the new index does not name
 * (plain names written by an earlier export; anything else is left alone). */
static void remove_dropped(const char *out_dir, char *names, const char *new_index)
{
    char *save = NULL;
    for (char *name = strtok_r(names, "\n", &save); name != NULL;
         name = strtok_r(NULL, "\n", &save)) {
        char path[PATH_MAX];
        if (name[0] == '.' || strchr(name, '/') != NULL || strlen(name) < 5 ||
            strcmp(name + strlen(name) - 4, ".xml") != 0 ||
            join(path, sizeof path, out_dir, name) != MS_OK)
            continue;
        char field[168];
        snprintf(field, sizeof field, " %s ", name);
        if (new_index != NULL && strstr(new_index, field) != NULL)
            continue; /* written again by this export */
        (void)unlink(path);
    }
}

ms_err ms_kms_export(ms_kms *k, size_t *n_packages, uint64_t period_no, const char *out_dir) {
    ms_err e = need_unsealed(k);
    if (e != MS_OK)
        return e;
    if (out_dir == NULL || n_packages == NULL)
        return MS_ERR_ARG;
    *n_packages = 0;
    if (ms_kms_secrets_generation(k->s, period_no) == NULL)
        return MS_ERR_PERIOD;
    if (mkdir(out_dir, 0700) != 0 && errno != EEXIST)
        return MS_ERR_IO;

    struct dev_list l = {0, 0, NULL};
    char *buf = NULL, *index_text = NULL;
    size_t index_len = 0;
    FILE *index = NULL, *dropped = NULL;
    char *dropped_text = NULL;
    size_t dropped_len = 0;
    ms_kms_certificate cert;
    if ((e = ms_store_device_list(k->st, NULL, collect_device, &l)) != MS_OK)
        goto done;
    if ((e = parsed_certificate_for(k, period_no, &cert)) != MS_OK)
        goto done;
    char p[24], n[24];
    snprintf(p, sizeof p, "%llu", (unsigned long long)period_no);
    snprintf(n, sizeof n, "%zu", l.n);
    ms_audit_field f[] = {{"period", p}, {"devices", n}, {"dir", out_dir}};
    if ((e = audit(k, "export", f, 3)) != MS_OK)
        goto done;
    buf = malloc(MS_KMSIF_MAX_XML);
    index = open_memstream(&index_text, &index_len);
    dropped = open_memstream(&dropped_text, &dropped_len);
    if (buf == NULL || index == NULL || dropped == NULL) {
        e = MS_ERR_NOMEM;
        goto done;
    }
    fprintf(index,
            "# mikeysakke key packages: kms %s period %s\n" MS_ANNEXD_INDEX_COLUMNS,
            k->kms_uri, p);
    {
        char old_index[PATH_MAX];
        if (join(old_index, sizeof old_index, out_dir, "index.txt") == MS_OK)
            keep_other_periods(k, index, old_index, period_no, dropped);
    }
    if (k->progress != NULL)
        k->progress(k->progress_ctx, 0, l.n);
    for (size_t i = 0; i < l.n; i++) {
        int written = 0;
        if ((e = export_one(k, l.id[i], period_no, &cert, out_dir, buf, index, &written)) != MS_OK)
            goto done;
        *n_packages += (size_t)written;
        /* the last call waits for the index: the export is not done before it is written */
        if (k->progress != NULL && i + 1 < l.n)
            k->progress(k->progress_ctx, i + 1, l.n);
    }
    if (fclose(index) != 0) {
        index = NULL;
        e = MS_ERR_NOMEM;
        goto done;
    }
    index = NULL;
    /* The certificate for `dist serve` (KmsInit, the period arithmetic), then the index
     * last: it is what makes the export visible. */
    char path[PATH_MAX];
    if ((e = certificate_for(k, period_no, buf, MS_KMSIF_MAX_XML)) != MS_OK ||
        (e = join(path, sizeof path, out_dir, "certificate.xml")) != MS_OK ||
        (e = ms_file_write_atomic(path, buf, strlen(buf), 0644, MS_FILE_REPLACE, NULL, 0)) != MS_OK)
        goto done;
    if ((e = join(path, sizeof path, out_dir, "index.txt")) == MS_OK)
        e = ms_file_write_atomic(path, index_text, index_len, 0644, MS_FILE_REPLACE, NULL, 0);
    /* only once the new index no longer lists them */
    {
        bool listed = fclose(dropped) == 0;
        dropped = NULL;
        if (e == MS_OK && listed && dropped_text != NULL)
            remove_dropped(out_dir, dropped_text, index_text);
    }
    if (e == MS_OK && k->progress != NULL)
        k->progress(k->progress_ctx, l.n, l.n);
done:
    if (dropped != NULL)
        fclose(dropped);
    free(dropped_text);
    if (index != NULL)
        fclose(index);
    free(index_text);
    free(buf);
    free(l.id);
    return e;
}

/* ---- roles, requests and approvals --------------------------------------------------------------- */

#define COMMAND_SKEW 300                /* seconds a signed command's time may differ */
#define REQUEST_LIFETIME_MAX (7 * 86400) /* the longest an approved act stays valid */

static uint64_t unix_now(const ms_kms *k)
{
    uint64_t t = now_secs(k);
    return t > MS_NTP_UNIX_OFFSET ? t - MS_NTP_UNIX_OFFSET : 0;
}

/* The role of a public key: "operator", "officer-N", "auditor-N"; 0 if none. Returns
 * 1 operator, 2 officer, 3 auditor; *index is 1-based. */
static int role_of(const ms_kms *k, const uint8_t pub[MS_KMS_ROLE_KEY_BYTES], unsigned *index,
                   char name[32])
{
    if (CRYPTO_memcmp(pub, k->operator_key, MS_KMS_ROLE_KEY_BYTES) == 0) {
        *index = 1;
        snprintf(name, 32, "operator");
        return 1;
    }
    for (unsigned i = 0; i < k->n_officers; i++)
        if (CRYPTO_memcmp(pub, k->officer_key[i], MS_KMS_ROLE_KEY_BYTES) == 0) {
            *index = i + 1;
            snprintf(name, 32, "officer-%u", i + 1);
            return 2;
        }
    for (unsigned i = 0; i < k->n_auditors; i++)
        if (CRYPTO_memcmp(pub, k->auditor_key[i], MS_KMS_ROLE_KEY_BYTES) == 0) {
            *index = i + 1;
            snprintf(name, 32, "auditor-%u", i + 1);
            return 3;
        }
    return 0;
}

/* Which role may ask for verb: 1 operator, 2 officer, 0 none (through a command). */
static int role_for_verb(const char *verb)
{
    static const char *const operator_verbs[] = {"user_add", "user_suspend", "user_resume",
                                                 "user_remove", "issue", "export", "rollover",
                                                 "audit_syslog"};
    for (size_t i = 0; i < sizeof operator_verbs / sizeof operator_verbs[0]; i++)
        if (strcmp(verb, operator_verbs[i]) == 0)
            return 1;
    return strcmp(verb, "enrol") == 0 ? 2 : 0;
}

static bool digits(const char *s, size_t max_len)
{
    size_t n = strlen(s);
    if (n == 0 || n > max_len)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static ms_err request_begin(ms_kms *k, const char *kind, char *text, size_t cap, size_t *len)
{
    ms_err e = ms_request_start(text, cap, len);
    if (e == MS_OK)
        e = ms_request_add(text, cap, len, "kind", kind);
    if (e == MS_OK)
        e = ms_request_add(text, cap, len, "kms", k->kms_uri);
    return e;
}

static ms_err request_end(ms_kms *k, uint64_t lifetime, char *text, size_t cap, size_t *len)
{
    if (lifetime == 0 || lifetime > REQUEST_LIFETIME_MAX)
        return MS_ERR_ARG;
    return ms_request_add_nonce(text, cap, len, unix_now(k) + lifetime, kms_rng(k));
}

/* Whether an identifier of this KMS's scheme can name period_no; else MS_ERR_PERIOD with
 * the range allowed in k->detail. */
static ms_err period_in_range(ms_kms *k, uint64_t period_no)
{
    uint64_t start = 0, end = 0;
    if (ms_key_period_bounds(&k->ids, &start, &end, period_no) == MS_OK)
        return MS_OK;
    if (k->ids.scheme == MS_MIKEY_ID_SCHEME_TEL_MONTHLY) /* "YYYY-MM": years 1900 to 9999 */
        return ms_detail_fail(MS_ERR_PERIOD, k->detail, sizeof k->detail,
                              "key period %llu is out of range: monthly identifiers name "
                              "periods 0 (1900-01) to %u (9999-12)",
                              (unsigned long long)period_no, (9999u - 1900u + 1u) * 12u - 1u);
    return ms_detail_fail(MS_ERR_PERIOD, k->detail, sizeof k->detail,
                          "key period %llu is out of range for a period length of %llu s",
                          (unsigned long long)period_no, (unsigned long long)k->ids.period_len);
}

ms_err ms_kms_request_extract(ms_kms *k, char *text, size_t cap, size_t *len,
                              const char *user_uri, uint64_t period_no, const char *reason,
                              uint64_t lifetime) {
    if (k == NULL || user_uri == NULL || reason == NULL || reason[0] == '\0' || text == NULL ||
        len == NULL)
        return MS_ERR_ARG;
    if (strcmp(user_uri, "*") == 0 || strcmp(user_uri, "all") == 0)
        return MS_ERR_AUDIT_SCOPE;
    if (!uri_ok(user_uri))
        return MS_ERR_IDENTITY;
    if (strlen(reason) > MS_KMS_REASON_MAX)
        return ms_detail_fail(MS_ERR_ARG, k->detail, sizeof k->detail,
                              "the reason is %zu characters long; at most %d are allowed",
                              strlen(reason), MS_KMS_REASON_MAX);
    ms_err e = period_in_range(k, period_no);
    if (e != MS_OK)
        return e;
    char p[24];
    snprintf(p, sizeof p, "%llu", (unsigned long long)period_no);
    e = request_begin(k, "extract", text, cap, len);
    if (e == MS_OK)
        e = ms_request_add(text, cap, len, "user", user_uri);
    if (e == MS_OK)
        e = ms_request_add(text, cap, len, "period", p);
    if (e == MS_OK)
        e = ms_request_add(text, cap, len, "reason", reason);
    if (e == MS_OK)
        e = request_end(k, lifetime, text, cap, len);
    return e;
}

ms_err ms_kms_request_enrol(ms_kms *k, char *text, size_t cap, size_t *len,
                            const char *user_uri, const char *device_id, uint64_t lifetime) {
    if (k == NULL || user_uri == NULL || device_id == NULL || text == NULL || len == NULL)
        return MS_ERR_ARG;
    if (!uri_ok(user_uri))
        return MS_ERR_IDENTITY;
    if (!device_id_ok(device_id))
        return MS_ERR_ARG;
    ms_err e = request_begin(k, "enrol", text, cap, len);
    if (e == MS_OK)
        e = ms_request_add(text, cap, len, "user", user_uri);
    if (e == MS_OK)
        e = ms_request_add(text, cap, len, "device", device_id);
    if (e == MS_OK)
        e = request_end(k, lifetime, text, cap, len);
    return e;
}

/* The common checks of a request text: well formed, of `kind`, for this KMS, a nonce,
 * and (with expires) not expired. */
static ms_err request_common(ms_kms *k, const char *text, size_t len, const char *kind,
                             char nonce[2 * MS_REQUEST_NONCE_BYTES + 1])
{
    char v[SETTING_MAX];
    if (text == NULL || ms_request_check(text, len) != MS_OK ||
        ms_request_get(text, len, "kind", v, sizeof v) != MS_OK || strcmp(v, kind) != 0 ||
        ms_request_get(text, len, "kms", v, sizeof v) != MS_OK || strcmp(v, k->kms_uri) != 0)
        return MS_ERR_ARG;
    uint8_t raw[MS_REQUEST_NONCE_BYTES];
    if (ms_request_get(text, len, "nonce", nonce, 2 * MS_REQUEST_NONCE_BYTES + 1) != MS_OK ||
        ms_hex_decode(raw, sizeof raw, nonce, strlen(nonce)) != MS_OK)
        return MS_ERR_ARG;
    return MS_OK;
}

static ms_err request_unexpired(ms_kms *k, const char *text, size_t len)
{
    char v[32];
    if (ms_request_get(text, len, "expires", v, sizeof v) != MS_OK || !digits(v, 19))
        return MS_ERR_ARG;
    uint64_t exp = strtoull(v, NULL, 10), now = unix_now(k);
    if (exp < now || exp > now + REQUEST_LIFETIME_MAX + COMMAND_SKEW)
        return MS_ERR_REQUEST_STALE;
    return MS_OK;
}

ms_err ms_kms_authorise(ms_kms *k, char role[32], const char *text, size_t len,
                        const uint8_t pub[MS_KMS_ROLE_KEY_BYTES],
                        const uint8_t sig[MS_KMS_ROLE_SIG_BYTES]) {
    if (k == NULL || pub == NULL || sig == NULL || role == NULL)
        return MS_ERR_ARG;
    role[0] = '\0';
    k->actor[0] = '\0';
    char nonce[2 * MS_REQUEST_NONCE_BYTES + 1], verb[32], t[32], name[32];
    unsigned index = 0;
    int r = role_of(k, pub, &index, name);
    if (r == 0 || ms_role_verify(pub, MS_ROLE_CTX_COMMAND, text, len, sig) != MS_OK)
        return MS_ERR_ROLE; /* unknown key or bad signature: not told apart */
    ms_err e = request_common(k, text, len, "command", nonce);
    if (e != MS_OK)
        return e;
    if (ms_request_get(text, len, "verb", verb, sizeof verb) != MS_OK ||
        ms_request_get(text, len, "time", t, sizeof t) != MS_OK || !digits(t, 19))
        return MS_ERR_ARG;
    if (role_for_verb(verb) != r)
        return MS_ERR_ROLE;
    uint64_t when = strtoull(t, NULL, 10), now = unix_now(k);
    if (when + COMMAND_SKEW < now || when > now + COMMAND_SKEW)
        return MS_ERR_REQUEST_STALE;
    e = ms_store_nonce_use(k->st, nonce);
    if (e == MS_ERR_EXISTS)
        return MS_ERR_REQUEST_STALE; /* a replayed command */
    if (e != MS_OK)
        return e;
    snprintf(role, 32, "%s", name);
    snprintf(k->actor, sizeof k->actor, "%s", name);
    return MS_OK;
}

void ms_kms_actor_clear(ms_kms *k)
{
    if (k != NULL)
        k->actor[0] = '\0';
}

/* Counts the distinct holders of role `want` (2 officers, 3 auditors) whose approvals
 * verify over text; any approval that is not one spoils the lot. who: "auditor-1,...". */
static ms_err count_approvals(const ms_kms *k, int want, const char *text, size_t len,
                              const char *const *approvals, size_t n, unsigned *distinct,
                              char *who, size_t who_cap)
{
    uint32_t seen = 0;
    *distinct = 0;
    who[0] = '\0';
    if (approvals == NULL && n > 0)
        return MS_ERR_ARG;
    for (size_t i = 0; i < n; i++) {
        ms_approval a;
        unsigned index = 0;
        char name[32];
        if (approvals[i] == NULL ||
            ms_approval_parse(approvals[i], strlen(approvals[i]), &a) != MS_OK ||
            a.kind != MS_APPROVAL_KEY || role_of(k, a.pub, &index, name) != want ||
            ms_role_verify(a.pub, MS_ROLE_CTX_APPROVAL, text, len, a.sig) != MS_OK)
            return MS_ERR_SIGNATURE;
        if (seen & (1u << (index - 1)))
            continue;
        seen |= 1u << (index - 1);
        (*distinct)++;
        size_t w = strlen(who);
        snprintf(who + w, who_cap - w, "%s%s", w ? "," : "", name);
    }
    return MS_OK;
}

ms_err ms_kms_device_enrol_approved(ms_kms *k, char *xml, size_t cap, size_t *xml_len,
                                    const char *request, size_t request_len,
                                    const char *const *approvals, size_t n_approvals)
{
    ms_err e = need_unsealed(k);
    if (e != MS_OK)
        return e;
    char nonce[2 * MS_REQUEST_NONCE_BYTES + 1], user[MS_STORE_URI_MAX + 1],
        device[MS_STORE_DEVICE_ID_MAX + 1];
    if ((e = request_common(k, request, request_len, "enrol", nonce)) != MS_OK)
        return e;
    if (ms_request_get(request, request_len, "user", user, sizeof user) != MS_OK ||
        ms_request_get(request, request_len, "device", device, sizeof device) != MS_OK)
        return MS_ERR_ARG;
    if ((e = request_unexpired(k, request, request_len)) != MS_OK)
        return e;
    char who[MS_KMS_MAX_OFFICERS * 12 + 80] = "";
    unsigned distinct = 0;
    /* one of the user's own devices, or a quorum of officers */
    if (n_approvals == 1 && approvals != NULL && approvals[0] != NULL) {
        ms_approval a;
        if (ms_approval_parse(approvals[0], strlen(approvals[0]), &a) == MS_OK &&
            a.kind == MS_APPROVAL_DEVICE) {
            ms_device *dev = ms_secure_alloc(sizeof *dev);
            if (dev == NULL)
                return MS_ERR_NOMEM;
            e = ms_store_device_get(k->st, k->s, a.device_id, dev);
            if (e == MS_OK && strcmp(dev->user_uri, user) != 0)
                e = MS_ERR_APPROVAL; /* another user's device approves nothing here */
            if (e == MS_OK && ms_approval_device_check(dev->ink, request, request_len, &a) != MS_OK)
                e = MS_ERR_APPROVAL;
            ms_secure_free(dev, sizeof *dev);
            if (e != MS_OK)
                return e == MS_ERR_DEVICE_UNKNOWN ? MS_ERR_APPROVAL : e;
            snprintf(who, sizeof who, "device:%s", a.device_id);
            return enrol(k, user, device, xml, cap, xml_len, who, nonce);
        }
    }
    if (count_approvals(k, 2, request, request_len, approvals, n_approvals, &distinct, who,
                        sizeof who) != MS_OK ||
        distinct < k->enrol_approvals)
        return MS_ERR_APPROVAL;
    return enrol(k, user, device, xml, cap, xml_len, who, nonce);
}

/* ---- audited extraction ------------------------------------------------------------------------ */

ms_err ms_kms_audit_extract(ms_kms *k, uint8_t rsk[MS_SAKKE_POINT_BYTES],
                            uint8_t id[MS_SAKKE_ID_MAX_BYTES], size_t *id_len,
                            const ms_kms_extract_request *req) {
    ms_err e = need_unsealed(k);
    if (e != MS_OK)
        return e;
    if (req == NULL || rsk == NULL || id == NULL || id_len == NULL)
        return MS_ERR_ARG;
    char nonce[2 * MS_REQUEST_NONCE_BYTES + 1], user[MS_STORE_URI_MAX + 1], pbuf[32],
        reason[MS_KMS_REASON_MAX + 1];
    if ((e = request_common(k, req->request, req->request_len, "extract", nonce)) != MS_OK)
        return e;
    if (ms_request_get(req->request, req->request_len, "user", user, sizeof user) != MS_OK ||
        ms_request_get(req->request, req->request_len, "period", pbuf, sizeof pbuf) != MS_OK)
        return ms_detail_fail(MS_ERR_ARG, k->detail, sizeof k->detail,
                              "the request lacks its user or key period, or one is too long");
    if ((e = ms_request_get(req->request, req->request_len, "reason", reason, sizeof reason)) !=
            MS_OK ||
        reason[0] == '\0')
        return ms_detail_fail(MS_ERR_ARG, k->detail, sizeof k->detail,
                              e == MS_ERR_BUFFER_TOO_SMALL
                                  ? "the request's reason is longer than %d characters"
                                  : "the request gives no reason (at most %d characters)",
                              MS_KMS_REASON_MAX);
    if (!digits(pbuf, 19) || strcmp(user, "*") == 0 || strcmp(user, "all") == 0)
        return MS_ERR_AUDIT_SCOPE;
    char who[MS_KMS_MAX_AUDITORS * 12 + 1];
    unsigned distinct = 0;
    if (req->n_approvals == 0 ||
        count_approvals(k, 3, req->request, req->request_len, req->approvals, req->n_approvals,
                        &distinct, who, sizeof who) != MS_OK ||
        distinct < k->approvals)
        return MS_ERR_AUDITOR;
    if ((e = request_unexpired(k, req->request, req->request_len)) != MS_OK)
        return e;

    uint64_t period = strtoull(pbuf, NULL, 10);
    if ((e = period_in_range(k, period)) != MS_OK)
        return e;
    ms_user_status st;
    if ((e = user_status(k, user, &st)) != MS_OK)
        return e;
    const ms_kms_generation *g = ms_kms_secrets_generation(k->s, period);
    if (g == NULL)
        return MS_ERR_PERIOD;
    uint8_t ident[MS_SAKKE_ID_MAX_BYTES];
    size_t ident_len = 0;
    if ((e = ms_identifier(&k->ids, ident, sizeof ident, &ident_len, user, period)) != MS_OK)
        return e;

    uint8_t *tmp = ms_secure_alloc(MS_SAKKE_POINT_BYTES);
    ms_sakke_kms *sk = NULL;
    if (tmp == NULL)
        return MS_ERR_NOMEM;
    if ((e = ms_sakke_kms_new(&sk, g->Z)) == MS_OK)
        e = ms_sakke_rsk_issue(sk, tmp, g->z, ident, ident_len);
    ms_sakke_kms_free(sk);
    if (e == MS_OK) {
        char p[24];
        snprintf(p, sizeof p, "%llu", (unsigned long long)period);
        ms_audit_field f[] = {{"user", user}, {"period", p}, {"reason", reason},
                              {"auditors", who}, {"nonce", nonce}, {"key", "RSK"}};
        /* the nonce is spent in the transaction of the entry, fsynced before the key
         * leaves: an approved request is carried out once */
        e = ms_store_begin(k->st);
        if (e == MS_OK) {
            e = ms_store_nonce_use(k->st, nonce);
            if (e == MS_ERR_EXISTS)
                e = MS_ERR_REQUEST_STALE;
            if (e == MS_OK)
                e = audit(k, "extract", f, 6);
            if (e == MS_OK)
                e = ms_store_commit(k->st);
            else
                ms_store_rollback(k->st);
        }
    }
    if (e == MS_OK) {
        memcpy(rsk, tmp, MS_SAKKE_POINT_BYTES);
        memcpy(id, ident, ident_len);
        *id_len = ident_len;
    }
    ms_secure_free(tmp, MS_SAKKE_POINT_BYTES);
    return e;
}

/* ---- audit verification (no unseal) -------------------------------------------------------------- */

ms_err ms_kms_audit_notable(const char *log_path,
                            int (*cb)(void *ctx, const char *kind, const char *entry), void *ctx)
{
    if (log_path == NULL || cb == NULL)
        return MS_ERR_ARG;
    FILE *f = fopen(log_path, "re");
    if (f == NULL)
        return MS_ERR_IO;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        /* the fixed fields come first (seq, time, event), the chain fields last */
        char *prev = strstr(line, " prev=");
        if (prev != NULL)
            *prev = '\0';
        const char *kind = NULL;
        if (strstr(line, " event=extract ") != NULL)
            kind = "extract";
        else if (strstr(line, " event=enrol ") != NULL && strstr(line, " second_device=1") != NULL)
            kind = "second_device";
        if (kind != NULL && cb(ctx, kind, line) != 0)
            break;
    }
    free(line);
    int err = ferror(f);
    fclose(f);
    return err ? MS_ERR_IO : MS_OK;
}

ms_err ms_kms_audit_verify_files(uint64_t *n_entries, uint64_t *first_bad, const char *log_path,
                                 const char *pub_path, char *detail, size_t cap) {
    if (log_path == NULL || pub_path == NULL || n_entries == NULL || first_bad == NULL)
        return MS_ERR_ARG;
    uint8_t pub[MS_AUDIT_PUBLIC_BYTES];
    ms_err e = read_public_key_file(pub_path, pub);
    if (e != MS_OK)
        return e;
    return ms_audit_verify(log_path, pub, 0, NULL, n_entries, first_bad, detail, cap);
}

ms_err ms_kms_audit_verify(uint64_t *n_entries, uint64_t *first_bad, const char *dir,
                           char *detail, size_t cap) {
    if (dir == NULL || n_entries == NULL || first_bad == NULL)
        return MS_ERR_ARG;
    *n_entries = 0;
    *first_bad = 0;
    ms_kms *k = NULL;
    ms_err e = ms_kms_open(&k, dir, NULL, detail, cap);
    if (e != MS_OK)
        return e;
    uint64_t seq = 0;
    uint8_t head[MS_AUDIT_HASH_BYTES];
    char hex[2 * MS_AUDIT_HASH_BYTES + 1];
    const uint8_t *hp = NULL;
    if (get_u64(k->st, "audit_seq", &seq) == MS_OK &&
        ms_store_get(k->st, "audit_head", hex, sizeof hex) == MS_OK &&
        ms_hex_decode(head, sizeof head, hex, strlen(hex)) == MS_OK)
        hp = head;
    else
        seq = 0;
    char path[PATH_MAX];
    e = join(path, sizeof path, dir, "audit.log");
    if (e == MS_OK)
        e = ms_audit_verify(path, k->audit_pub, seq, hp, n_entries, first_bad, detail, cap);
    ms_kms_close(k);
    return e;
}

/* ---- checkpoints and the syslog copy ----------------------------------------------------------- */

ms_err ms_kms_audit_checkpoint(ms_kms *k, char *out, size_t cap)
{
    ms_err e = need_unsealed(k);
    if (e != MS_OK)
        return e;
    if (out == NULL || cap == 0)
        return MS_ERR_ARG;
    out[0] = '\0';
    /* The checkpoint is of its own entry: the log records that one was handed out. */
    uint64_t seq = 0;
    uint8_t head[MS_AUDIT_HASH_BYTES];
    if ((e = audit_at(k, "checkpoint", NULL, 0, &seq, head)) != MS_OK)
        return e;
    return ms_audit_checkpoint(k->audit, seq, head, now_secs(k), out, cap);
}

ms_err ms_kms_extract_checkpoint(ms_kms *k, char *out, size_t cap)
{
    if (k == NULL || out == NULL || cap == 0)
        return MS_ERR_ARG;
    size_t n = strlen(k->extract_checkpoint);
    if (n == 0)
        return MS_ERR_AUDIT_LOG;
    if (n + 1 > cap)
        return MS_ERR_BUFFER_TOO_SMALL;
    memcpy(out, k->extract_checkpoint, n + 1);
    return MS_OK;
}

ms_err ms_kms_audit_verify_checkpoint(uint64_t *n_entries, uint64_t *first_bad, const char *dir,
                                      const char *log_path, const char *pub_path,
                                      const char *checkpoint, char *detail, size_t cap) {
    if ((dir == NULL) == (log_path == NULL) || (log_path != NULL && pub_path == NULL) ||
        checkpoint == NULL || n_entries == NULL || first_bad == NULL)
        return MS_ERR_ARG;
    *n_entries = 0;
    *first_bad = 0;
    uint8_t pub[MS_AUDIT_PUBLIC_BYTES];
    char path[PATH_MAX];
    ms_err e = MS_OK;
    if (dir != NULL) {
        /* The key the store names: had it been replaced (with a log rewritten under a
         * key of the intruder's), the checkpoint's signature would not verify. */
        ms_kms *k = NULL;
        if ((e = ms_kms_open(&k, dir, NULL, detail, cap)) != MS_OK)
            return e;
        memcpy(pub, k->audit_pub, sizeof pub);
        ms_kms_close(k);
        if ((e = join(path, sizeof path, dir, "audit.log")) != MS_OK)
            return e;
        log_path = path;
    } else if ((e = read_public_key_file(pub_path, pub)) != MS_OK) {
        return e;
    }
    uint64_t seq = 0;
    uint8_t head[MS_AUDIT_HASH_BYTES];
    if ((e = ms_audit_checkpoint_check(checkpoint, pub, &seq, head, detail, cap)) != MS_OK)
        return e;
    e = ms_audit_verify(log_path, pub, seq, head, n_entries, first_bad, detail, cap);
    if (e == MS_ERR_AUDIT_CHAIN && detail != NULL && cap > 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", detail);
        ms_detail_set(detail, cap, "against the checkpoint of entry %llu: %s",
                      (unsigned long long)seq, why);
    }
    /* In a KMS directory the head kept in the store is checked as well. */
    if (e == MS_OK && dir != NULL)
        e = ms_kms_audit_verify(n_entries, first_bad, dir, detail, cap);
    return e;
}

ms_err ms_kms_audit_set_syslog(ms_kms *k, bool on)
{
    ms_err e = need_unsealed(k);
    if (e != MS_OK)
        return e;
    /* A settings change: only over settings that are still the KMS's own. */
    bool missing = false;
    if ((e = ms_settings_mac_check(k->st, k->s, &missing, k->detail, sizeof k->detail)) != MS_OK)
        return e;
    if ((e = audit1(k, "audit_syslog", "copy", on ? "yes" : "no")) != MS_OK)
        return e;
    if ((e = ms_store_begin(k->st)) != MS_OK)
        return e;
    e = ms_store_set(k->st, "audit_syslog", on ? "yes" : "no");
    if (e == MS_OK)
        e = ms_settings_mac_write(k->st, k->s);
    if (e == MS_OK)
        e = ms_store_commit(k->st);
    else
        ms_store_rollback(k->st);
    if (e == MS_OK)
        start_copy(k);
    return e;
}

/* ---- rollover and certificates ---------------------------------------------------------------- */

ms_err ms_kms_rollover(ms_kms *k, ms_kms_handout *out, uint64_t from_period,
                       const ms_kms_seal_material *seal) {
    ms_err e = need_unsealed(k);
    if (e != MS_OK)
        return e;
    if (seal == NULL || out == NULL || seal->method != k->method)
        return MS_ERR_ARG;
    memset(out, 0, sizeof *out);
    uint64_t cur = 0;
    if ((e = current_period(k, &cur)) != MS_OK)
        return e;
    size_t n = k->s->n_generations;
    if ((e = period_in_range(k, from_period)) != MS_OK)
        return e;
    if (from_period <= cur)
        return ms_detail_fail(MS_ERR_PERIOD, k->detail, sizeof k->detail,
                              "new master keys must start after the current key period (%llu)",
                              (unsigned long long)cur);
    if (n == 0 || from_period <= k->s->gen[n - 1].from_period)
        return ms_detail_fail(MS_ERR_PERIOD, k->detail, sizeof k->detail,
                              "new master keys must start after key period %llu, where the "
                              "last ones start",
                              (unsigned long long)(n ? k->s->gen[n - 1].from_period : 0));
    if (n >= MS_KMS_MAX_GENERATIONS)
        return ms_detail_fail(MS_ERR_PERIOD, k->detail, sizeof k->detail,
                              "at most %d master key generations are kept",
                              MS_KMS_MAX_GENERATIONS);
    /* The settings are re-authenticated below: first make sure nobody changed them
     * since the unseal, or the new MAC would vouch for that change. */
    bool missing = false;
    if ((e = ms_settings_mac_check(k->st, k->s, &missing, k->detail, sizeof k->detail)) != MS_OK)
        return e;

    /* the stored settings complete the material */
    ms_kms_seal_material m = *seal;
    char module[SETTING_MAX], token[SETTING_MAX], label[SETTING_MAX];
    uint64_t kk = 0, nn = 0, log2n = 0;
    (void)get_u64(k->st, "scrypt_log2n", &log2n);
    if (m.scrypt_log2_n == 0)
        m.scrypt_log2_n = (unsigned)log2n;
    if (k->method == MS_KMS_SEAL_SHARES) {
        if (get_u64(k->st, "seal_k", &kk) != MS_OK || get_u64(k->st, "seal_n", &nn) != MS_OK)
            return MS_ERR_STORE;
        m.k = (unsigned)kk;
        m.n = (unsigned)nn;
    } else if (k->method == MS_KMS_SEAL_PKCS11) {
        if (ms_store_get(k->st, "pkcs11_module", module, sizeof module) != MS_OK ||
            ms_store_get(k->st, "token_label", token, sizeof token) != MS_OK ||
            ms_store_get(k->st, "key_label", label, sizeof label) != MS_OK)
            return MS_ERR_STORE;
        m.pkcs11_module = module;
        m.token_label = token;
        m.key_label = label;
    }
    if ((e = check_material(&m)) != MS_OK)
        return e;

    char p[24];
    snprintf(p, sizeof p, "%llu", (unsigned long long)from_period);
    if ((e = audit1(k, "rollover", "from_period", p)) != MS_OK)
        return e;
    if ((e = ms_kms_secrets_add_generation(k->s, from_period, kms_rng(k), k->detail,
                                           sizeof k->detail)) != MS_OK)
        return e;
    if ((e = seal_now(k, &m, out)) != MS_OK) {
        /* the sealed file still holds the old generations: forget the new one */
        k->s->n_generations = n;
        ms_wipe(&k->s->gen[n], sizeof k->s->gen[n]);
        ms_wipe(out, sizeof *out);
        return e;
    }
    char *xml = malloc(CERT_MAX);
    size_t xml_len = 0;
    if (xml == NULL)
        return MS_ERR_NOMEM;
    e = make_certificate(k, &k->s->gen[n], n, xml, CERT_MAX - 1, &xml_len);
    if (e == MS_OK) {
        xml[xml_len] = '\0';
        e = save_generation(k, n, xml);
    }
    if (e == MS_OK)
        e = ms_settings_mac_write(k->st, k->s);
    char name[64], path[PATH_MAX];
    snprintf(name, sizeof name, "certificate-%s.xml", p);
    if (e == MS_OK && (e = join(path, sizeof path, k->dir, name)) == MS_OK)
        e = ms_file_write_atomic(path, xml, xml_len, 0644, MS_FILE_REPLACE, NULL, 0);
    free(xml);
    return e;
}

ms_err ms_kms_certificate_xml(ms_kms *k, char *xml, size_t cap, size_t *xml_len,
                              uint64_t period_no) {
    if (k == NULL || xml == NULL || xml_len == NULL || cap == 0)
        return MS_ERR_ARG;
    char *buf = malloc(CERT_MAX);
    if (buf == NULL)
        return MS_ERR_NOMEM;
    ms_err e = certificate_for(k, period_no, buf, CERT_MAX);
    if (e == MS_OK) {
        size_t n = strlen(buf);
        if (n + 1 > cap)
            e = MS_ERR_BUFFER_TOO_SMALL;
        else {
            memcpy(xml, buf, n + 1);
            *xml_len = n;
        }
    }
    free(buf);
    return e;
}

/* ---- the network interface ------------------------------------------------------------------ */

void ms_kms_lock(ms_kms *k)
{
    if (k != NULL)
        pthread_mutex_lock(&k->lock);
}

void ms_kms_unlock(ms_kms *k)
{
    if (k != NULL)
        pthread_mutex_unlock(&k->lock);
}

bool ms_kms_is_unsealed(const ms_kms *k)
{
    return k != NULL && atomic_load(&((ms_kms *)k)->unsealed);
}

_Static_assert(MS_KMS_TOKEN_HEX == MS_KMSIF_TOKEN_HEX, "one token format");

ms_err ms_kms_device_token(ms_kms *k, char token[MS_KMS_TOKEN_HEX + 1], const char *device_id) {
    ms_err e = need_unsealed(k);
    if (e != MS_OK)
        return e;
    if (token == NULL || !device_id_ok(device_id))
        return MS_ERR_ARG;
    ms_device *dev = ms_secure_alloc(sizeof *dev);
    if (dev == NULL)
        return MS_ERR_NOMEM;
    if ((e = ms_store_device_get(k->st, k->s, device_id, dev)) == MS_OK)
        e = ms_kmsif_device_token(token, dev->ink, dev->id);
    ms_secure_free(dev, sizeof *dev);
    return e;
}

ms_err ms_kms_device_auth(ms_kms *k, char device_id[MS_KMS_DEVICE_ID_MAX + 1],
                          char user_uri[MS_KMS_URI_MAX + 1], const char *bearer) {
    ms_err e = need_unsealed(k);
    if (e != MS_OK)
        return e;
    if (device_id == NULL || user_uri == NULL)
        return MS_ERR_ARG;
    device_id[0] = '\0';
    user_uri[0] = '\0';
    if (bearer == NULL)
        return MS_ERR_UNAUTHORISED;
    /* "<device_id>.<64 hex>": device IDs may hold dots, the token never does */
    const char *dot = strrchr(bearer, '.');
    size_t id_len = dot != NULL ? (size_t)(dot - bearer) : 0;
    if (dot == NULL || id_len == 0 || id_len > MS_STORE_DEVICE_ID_MAX ||
        strlen(dot + 1) != MS_KMS_TOKEN_HEX)
        return MS_ERR_UNAUTHORISED;
    char id[MS_STORE_DEVICE_ID_MAX + 1];
    memcpy(id, bearer, id_len);
    id[id_len] = '\0';
    if (!device_id_ok(id))
        return MS_ERR_UNAUTHORISED;

    ms_device *dev = ms_secure_alloc(sizeof *dev);
    char want[MS_KMS_TOKEN_HEX + 1];
    if (dev == NULL)
        return MS_ERR_NOMEM;
    e = ms_store_device_get(k->st, k->s, id, dev);
    int known = e == MS_OK;
    if (e != MS_OK && e != MS_ERR_DEVICE_UNKNOWN) {
        ms_secure_free(dev, sizeof *dev);
        return e;
    }
    /* an unknown device costs the same HMAC and comparison as a known one */
    if (!known)
        memset(dev->ink, 0, sizeof dev->ink);
    e = ms_kmsif_device_token(want, dev->ink, id);
    int same = e == MS_OK && CRYPTO_memcmp(want, dot + 1, MS_KMS_TOKEN_HEX) == 0;
    if (e == MS_OK && known && same) {
        snprintf(device_id, MS_KMS_DEVICE_ID_MAX + 1, "%s", dev->id);
        snprintf(user_uri, MS_KMS_URI_MAX + 1, "%s", dev->user_uri);
    } else if (e == MS_OK) {
        e = MS_ERR_UNAUTHORISED;
    }
    ms_wipe(want, sizeof want);
    ms_secure_free(dev, sizeof *dev);
    return e;
}

/* A package in the making: everything it needs copied out of the store, so that the
 * XML can be built without holding the KMS lock. Secret: locked memory, wiped. */
struct ms_kms_pkg_job {
    ms_device_keys keys;
    ms_key_package pkg;
    char plist[MS_KMSIF_MAX_KEYSETS * 24];
    char peer[64];
    const ms_rng *rng;
};

void ms_kms_package_free(ms_kms_pkg_job *job)
{
    if (job != NULL)
        ms_secure_free(job, sizeof *job);
}

ms_err ms_kms_package_begin(ms_kms *k, ms_kms_pkg_job **out, const char *device_id,
                            const uint64_t *periods, size_t n_periods,
                            const char *client_req_url, const char *peer)
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    ms_err e = need_unsealed(k);
    if (e != MS_OK)
        return e;
    if (n_periods > MS_KMSIF_MAX_KEYSETS || (n_periods > 0 && periods == NULL) ||
        !device_id_ok(device_id))
        return MS_ERR_ARG;
    ms_device *dev = ms_secure_alloc(sizeof *dev);
    ms_keyset *ks = ms_secure_alloc(sizeof *ks);
    ms_kms_pkg_job *job = ms_secure_alloc(sizeof *job);
    if (dev == NULL || ks == NULL || job == NULL) {
        e = MS_ERR_NOMEM;
        goto done;
    }
    ms_device_keys *keys = &job->keys;
    ms_key_package *pkg = &job->pkg;
    job->rng = kms_rng(k);
    snprintf(job->peer, sizeof job->peer, "%s", peer != NULL ? peer : "-");
    if ((e = ms_store_device_get(k->st, k->s, device_id, dev)) != MS_OK ||
        (e = active_user(k, dev->user_uri)) != MS_OK)
        goto done;
    snprintf(pkg->client_req_url, sizeof pkg->client_req_url, "%s",
             client_req_url != NULL ? client_req_url : "");
    if ((e = package_for(k, dev, keys, pkg)) != MS_OK)
        goto done;

    /* the certificate of the (first) period asked for; KmsInit: the one in force now */
    uint64_t cert_period = 0;
    if (n_periods > 0)
        cert_period = periods[0];
    else if ((e = current_period(k, &cert_period)) != MS_OK)
        goto done;
    if ((e = parsed_certificate_for(k, cert_period, &pkg->cert)) != MS_OK)
        goto done;

    for (size_t i = 0; i < n_periods; i++) {
        if (ms_kms_secrets_generation(k->s, periods[i]) == NULL) {
            e = MS_ERR_PERIOD;
            goto done;
        }
        if ((e = ms_store_keyset_get(k->st, k->s, device_id, periods[i], ks)) != MS_OK)
            goto done; /* MS_ERR_NO_KEYS: not issued */
        ms_kmsif_keyset *o = &pkg->keysets[i];
        snprintf(o->kms_uri, sizeof o->kms_uri, "%s", k->kms_uri);
        snprintf(o->user_uri, sizeof o->user_uri, "%s", dev->user_uri);
        memcpy(o->user_id, ks->user_id, ks->user_id_len);
        o->user_id_len = ks->user_id_len;
        o->period_no = periods[i];
        if ((e = ms_key_period_bounds(&k->ids, &o->valid_from, &o->valid_to, periods[i])) != MS_OK)
            goto done;
        memcpy(o->rsk, ks->rsk, sizeof o->rsk);
        memcpy(o->ssk, ks->ssk, sizeof o->ssk);
        memcpy(o->pvt, ks->pvt, sizeof o->pvt);
        size_t w = strlen(job->plist);
        snprintf(job->plist + w, sizeof job->plist - w, "%s%llu", i ? "," : "",
                 (unsigned long long)periods[i]);
    }
    pkg->n_keysets = n_periods;
done:
    ms_secure_free(dev, sizeof *dev);
    ms_secure_free(ks, sizeof *ks);
    if (e != MS_OK) {
        ms_kms_package_free(job);
        return e;
    }
    *out = job;
    return MS_OK;
}

ms_err ms_kms_package_build(const ms_kms_pkg_job *job, char *xml, size_t cap, size_t *xml_len)
{
    if (job == NULL || xml_len == NULL)
        return MS_ERR_ARG;
    return ms_kmsif_package_write(xml, cap, xml_len, &job->pkg, &job->keys, job->rng);
}

static void keyprov_fields(ms_audit_field f[4], const ms_kms_pkg_job *job)
{
    f[0] = (ms_audit_field){"device", job->keys.device_id};
    f[1] = (ms_audit_field){"user", job->keys.user_uri};
    f[2] = (ms_audit_field){"periods", job->plist};
    f[3] = (ms_audit_field){"peer", job->peer};
}

/* With ms_kms_lock held (ms_kms_device_package). */
static ms_err package_commit_locked(ms_kms *k, const ms_kms_pkg_job *job)
{
    ms_err e = need_unsealed(k);
    if (e != MS_OK || job->pkg.n_keysets == 0)
        return e;
    ms_audit_field f[4];
    keyprov_fields(f, job);
    return audit(k, "keyprov", f, 4);
}

ms_err ms_kms_package_commit(ms_kms *k, const ms_kms_pkg_job *job)
{
    if (k == NULL || job == NULL)
        return MS_ERR_ARG;
    if (job->pkg.n_keysets == 0)
        return atomic_load(&k->unsealed) ? MS_OK : MS_ERR_SEALED;
    ms_audit_field f[4];
    keyprov_fields(f, job);
    uint64_t seq = 0;
    uint8_t head[MS_AUDIT_HASH_BYTES];
    ms_err e = MS_ERR_SEALED; /* sealed meanwhile: release nothing */
    pthread_rwlock_rdlock(&k->audit_rw);
    if (atomic_load(&k->unsealed) && k->audit != NULL)
        e = ms_audit_append(k->audit, now_secs(k), "keyprov", f, 4, &seq, head) == MS_OK
                ? MS_OK
                : MS_ERR_AUDIT_LOG;
    pthread_rwlock_unlock(&k->audit_rw);
    if (e != MS_OK)
        return e;
    /* The entry is fsynced; now move the head the store remembers, if no later entry
     * got there first. */
    pthread_mutex_lock(&k->lock);
    if (seq > k->head_seq) {
        k->head_seq = seq;
        memcpy(k->head_hash, head, sizeof head);
        k->head_dirty = true;
        if (!k->in_batch && k->st != NULL)
            save_head(k);
    }
    pthread_mutex_unlock(&k->lock);
    return MS_OK;
}

ms_err ms_kms_device_package(ms_kms *k, char *xml, size_t cap, size_t *xml_len,
                             const char *device_id, const uint64_t *periods, size_t n_periods,
                             const char *client_req_url, const char *peer) {
    if (xml_len == NULL)
        return MS_ERR_ARG;
    *xml_len = 0;
    ms_kms_pkg_job *job = NULL;
    ms_err e = ms_kms_package_begin(k, &job, device_id, periods, n_periods, client_req_url,
                                    peer);
    if (e == MS_OK)
        e = ms_kms_package_build(job, xml, cap, xml_len);
    if (e == MS_OK)
        e = package_commit_locked(k, job);
    if (e != MS_OK && xml != NULL) {
        if (*xml_len > 0 && *xml_len < cap)
            ms_wipe(xml, *xml_len);
        if (e != MS_ERR_BUFFER_TOO_SMALL)
            *xml_len = 0;
    }
    ms_kms_package_free(job);
    return e;
}

ms_err ms_kms_certificates(ms_kms *k, ms_kms_certificate *certs, size_t cap, size_t *n)
{
    if (k == NULL || certs == NULL || n == NULL)
        return MS_ERR_ARG;
    *n = 0;
    uint64_t gens = 0, cur = 0;
    size_t first = 0;
    ms_err e = get_u64(k->st, "generations", &gens);
    if (e == MS_OK)
        e = current_period(k, &cur);
    if (e != MS_OK)
        return e;
    if (generation_index(k, cur, &first) != MS_OK)
        first = 0; /* the first period is still ahead */
    char *xml = malloc(CERT_MAX);
    if (xml == NULL)
        return MS_ERR_NOMEM;
    for (size_t i = first; i < gens && *n < cap && e == MS_OK; i++) {
        char key[48];
        snprintf(key, sizeof key, "certificate_%zu", i);
        e = ms_store_get(k->st, key, xml, CERT_MAX);
        if (e == MS_OK)
            e = ms_kmsif_certificate_parse(&certs[*n], xml, strlen(xml), NULL, 0);
        if (e == MS_OK)
            (*n)++;
    }
    free(xml);
    return e;
}
