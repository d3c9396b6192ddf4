/*
 * The settings MAC: see settings.h. Canonical encoding of one row: key length (4 octets,
 * big-endian) || key || value length (4) || value, rows in bytewise key order. The MAC
 * is HMAC-SHA-256 under HKDF-SHA-256(store key, info "mikeysakke kms settings MAC v1")
 * over "mikeysakke-kms-settings-v1" NUL || the encoded rows; a row's tag is the first 8
 * octets of HMAC-SHA-256 under the same key over "mikeysakke-kms-setting-v1" NUL || the
 * encoded row.
 */
#include "kms/settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include "util/detail.h"
#include "util/hex.h"

#define MAC_BYTES 32
#define TAG_BYTES 8
#define MAC_PREFIX "v1 "

static const char all_label[] = "mikeysakke-kms-settings-v1";
static const char row_label[] = "mikeysakke-kms-setting-v1";
static const char hkdf_info[] = "mikeysakke kms settings MAC v1";

bool ms_settings_row_volatile(const char *key)
{
    /* The audit head moves with every entry; the log itself is the record. */
    static const char *const rows[] = {MS_SETTINGS_MAC_ROW, "audit_seq", "audit_head"};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (strcmp(key, rows[i]) == 0)
            return true;
    return false;
}

static ms_err mac_key(uint8_t key[MAC_BYTES], const ms_kms_secrets *s)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (ctx == NULL)
        return MS_ERR_INTERNAL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)(uintptr_t)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                          (void *)(uintptr_t)s->store_key, MS_KMS_KEY_BYTES),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)(uintptr_t)hkdf_info,
                                          sizeof hkdf_info - 1),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_KDF_derive(ctx, key, MAC_BYTES, params);
    EVP_KDF_CTX_free(ctx);
    return ok == 1 ? MS_OK : MS_ERR_INTERNAL;
}

/* A growing octet buffer. */
typedef struct buf {
    uint8_t *p;
    size_t len, cap;
    bool failed;
} buf;

static void put(buf *b, const void *data, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (q == NULL) {
            b->failed = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_len(buf *b, size_t n)
{
    uint8_t l[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    put(b, l, 4);
}

static void put_hex(buf *b, const uint8_t *in, size_t n)
{
    char h[3];
    for (size_t i = 0; i < n; i++) {
        ms_hex_encode_upper(h, in + i, 1);
        put(b, h, 2);
    }
}

/* The MAC over every authenticated row and the text of the row tags. */
typedef struct collect {
    const uint8_t *key;
    buf all;   /* label || encoded rows */
    buf tags;  /* " <hex key>:<hex tag>" per row */
    buf row;   /* scratch: one encoded row */
    const char *stored; /* the stored MAC row, when seen */
    char *stored_copy;
} collect;

static int collect_row(void *ctx, const char *key, const char *value, size_t value_len)
{
    collect *c = ctx;
    if (strcmp(key, MS_SETTINGS_MAC_ROW) == 0) {
        free(c->stored_copy);
        c->stored_copy = malloc(value_len + 1);
        if (c->stored_copy == NULL) {
            c->all.failed = true;
            return 1;
        }
        memcpy(c->stored_copy, value, value_len);
        c->stored_copy[value_len] = '\0';
        c->stored = c->stored_copy;
        return 0;
    }
    if (ms_settings_row_volatile(key))
        return 0;
    size_t klen = strlen(key);
    c->row.len = 0;
    put(&c->row, row_label, sizeof row_label); /* with its NUL */
    put_len(&c->row, klen);
    put(&c->row, key, klen);
    put_len(&c->row, value_len);
    put(&c->row, value, value_len);
    if (c->row.failed)
        return 1;
    put(&c->all, c->row.p + sizeof row_label, c->row.len - sizeof row_label);
    uint8_t tag[MAC_BYTES];
    unsigned int tl = 0;
    if (HMAC(EVP_sha256(), c->key, MAC_BYTES, c->row.p, c->row.len, tag, &tl) == NULL) {
        c->all.failed = true;
        return 1;
    }
    put(&c->tags, " ", 1);
    put_hex(&c->tags, (const uint8_t *)key, klen);
    put(&c->tags, ":", 1);
    put_hex(&c->tags, tag, TAG_BYTES);
    return 0;
}

static void collect_free(collect *c)
{
    free(c->all.p);
    free(c->tags.p);
    free(c->row.p);
    free(c->stored_copy);
}

/* Reads the rows and computes the MAC (mac) and the row tags (c->tags, NUL-terminated). */
static ms_err compute(ms_store *st, const ms_kms_secrets *s, collect *c, uint8_t mac[MAC_BYTES])
{
    uint8_t key[MAC_BYTES];
    ms_err e = mac_key(key, s);
    if (e != MS_OK)
        return e;
    c->key = key;
    put(&c->all, all_label, sizeof all_label);
    e = ms_store_settings_list(st, collect_row, c);
    put(&c->tags, "", 1);
    if (e == MS_OK && (c->all.failed || c->tags.failed || c->row.failed))
        e = MS_ERR_NOMEM;
    unsigned int ml = 0;
    if (e == MS_OK &&
        HMAC(EVP_sha256(), key, MAC_BYTES, c->all.p, c->all.len, mac, &ml) == NULL)
        e = MS_ERR_INTERNAL;
    OPENSSL_cleanse(key, sizeof key);
    c->key = NULL;
    return e;
}

ms_err ms_settings_mac_write(ms_store *st, const ms_kms_secrets *s)
{
    if (st == NULL || s == NULL)
        return MS_ERR_ARG;
    collect c;
    memset(&c, 0, sizeof c);
    uint8_t mac[MAC_BYTES];
    ms_err e = compute(st, s, &c, mac);
    buf out = {0};
    if (e == MS_OK) {
        put(&out, MAC_PREFIX, strlen(MAC_PREFIX));
        put_hex(&out, mac, MAC_BYTES);
        put(&out, c.tags.p, c.tags.len); /* with its NUL */
        e = out.failed ? MS_ERR_NOMEM : ms_store_set(st, MS_SETTINGS_MAC_ROW, (char *)out.p);
    }
    free(out.p);
    collect_free(&c);
    return e;
}

/* Decodes n octets of hex at p (exactly 2n digits followed by end, ' ' or ':'). */
static bool unhex(uint8_t *out, size_t n, const char *p, size_t avail)
{
    return avail >= 2 * n && ms_hex_decode(out, n, p, 2 * n) == MS_OK;
}

/* The tag entries " <hexkey>:<hextag>" parsed one at a time: key (decoded, NUL-ended)
 * and the 16 tag digits. Returns the position after the entry, or NULL at the end or on
 * a malformed entry (*bad set). */
static const char *next_entry(const char *p, char *key, size_t key_cap, const char **tag,
                              bool *bad)
{
    *bad = false;
    if (*p == '\0')
        return NULL;
    if (*p != ' ') {
        *bad = true;
        return NULL;
    }
    p++;
    const char *colon = strchr(p, ':');
    if (colon == NULL || (size_t)(colon - p) % 2 != 0 || (size_t)(colon - p) / 2 >= key_cap ||
        colon == p ||
        !unhex((uint8_t *)key, (size_t)(colon - p) / 2, p, (size_t)(colon - p))) {
        *bad = true;
        return NULL;
    }
    key[(colon - p) / 2] = '\0';
    *tag = colon + 1;
    if (strlen(*tag) < 2 * TAG_BYTES || ((*tag)[2 * TAG_BYTES] != ' ' &&
                                        (*tag)[2 * TAG_BYTES] != '\0')) {
        *bad = true;
        return NULL;
    }
    return *tag + 2 * TAG_BYTES;
}

/* Whether the tag list `list` has `key`, and with which tag (16 digits). */
static const char *find_tag(const char *list, const char *key)
{
    char k[256];
    const char *tag = NULL;
    bool bad = false;
    for (const char *p = list; (p = next_entry(p, k, sizeof k, &tag, &bad)) != NULL;)
        if (strcmp(k, key) == 0)
            return tag;
    return NULL;
}

/* Names in detail the rows that differ between the stored tags and the current ones. */
static void name_rows(const char *stored_tags, const char *now_tags, char *detail, size_t cap)
{
    char list[512] = "";
    size_t used = 0;
    char k[256];
    const char *tag = NULL;
    bool bad = false, any = false;
#define NOTE(...)                                                                       \
    do {                                                                                \
        if (used < sizeof list) {                                                       \
            int w_ = snprintf(list + used, sizeof list - used, __VA_ARGS__);            \
            used += w_ > 0 ? (size_t)w_ : 0;                                            \
        }                                                                               \
        any = true;                                                                     \
    } while (0)
    for (const char *p = now_tags; (p = next_entry(p, k, sizeof k, &tag, &bad)) != NULL;) {
        const char *was = find_tag(stored_tags, k);
        if (was == NULL)
            NOTE("%srow '%s' was added", any ? ", " : "", k);
        else if (memcmp(was, tag, 2 * TAG_BYTES) != 0)
            NOTE("%srow '%s' was changed", any ? ", " : "", k);
    }
    for (const char *p = stored_tags; (p = next_entry(p, k, sizeof k, &tag, &bad)) != NULL;)
        if (find_tag(now_tags, k) == NULL)
            NOTE("%srow '%s' was removed", any ? ", " : "", k);
#undef NOTE
    if (any)
        ms_detail_set(detail, cap, "the KMS settings in kms.db were changed outside the KMS: %s",
                      list);
    else
        ms_detail_set(detail, cap, "the KMS settings in kms.db were changed outside the KMS: "
                                   "the settings MAC does not match (which row is not known)");
}

ms_err ms_settings_mac_check(ms_store *st, const ms_kms_secrets *s, bool *missing,
                             char *detail, size_t cap)
{
    if (st == NULL || s == NULL || missing == NULL)
        return MS_ERR_ARG;
    *missing = false;
    ms_detail_set(detail, cap, "%s", "");
    collect c;
    memset(&c, 0, sizeof c);
    uint8_t mac[MAC_BYTES], want[MAC_BYTES];
    ms_err e = compute(st, s, &c, mac);
    if (e == MS_OK && c.stored == NULL) {
        *missing = true;
    } else if (e == MS_OK) {
        size_t pl = strlen(MAC_PREFIX);
        const char *v = c.stored;
        if (strncmp(v, MAC_PREFIX, pl) != 0 ||
            !unhex(want, MAC_BYTES, v + pl, strlen(v + pl))) {
            e = ms_detail_fail(MS_ERR_SETTINGS_CHANGED, detail, cap,
                               "the KMS settings in kms.db were changed outside the KMS: "
                               "row '%s' is malformed", MS_SETTINGS_MAC_ROW);
        } else if (CRYPTO_memcmp(mac, want, MAC_BYTES) != 0) {
            name_rows(v + pl + 2 * MAC_BYTES, (const char *)c.tags.p, detail, cap);
            e = MS_ERR_SETTINGS_CHANGED;
        }
    }
    collect_free(&c);
    return e;
}

static int describe_row(void *ctx, const char *key, const char *value, size_t value_len)
{
    buf *b = ctx;
    if (ms_settings_row_volatile(key))
        return 0;
    bool plain = value_len <= 64;
    for (size_t i = 0; plain && i < value_len; i++)
        if ((unsigned char)value[i] < 0x21 || (unsigned char)value[i] > 0x7e)
            plain = false;
    if (b->len > 0)
        put(b, " ", 1);
    put(b, key, strlen(key));
    put(b, "=", 1);
    if (plain) {
        put(b, value, value_len);
    } else {
        uint8_t h[32];
        unsigned int hl = 0;
        if (EVP_Digest(value, value_len, h, &hl, EVP_sha256(), NULL) != 1) {
            b->failed = true;
            return 1;
        }
        put(b, "sha256:", 7);
        put_hex(b, h, 8);
    }
    return b->failed ? 1 : 0;
}

ms_err ms_settings_describe(ms_store *st, char *out, size_t cap)
{
    if (st == NULL || out == NULL || cap == 0)
        return MS_ERR_ARG;
    buf b = {0};
    ms_err e = ms_store_settings_list(st, describe_row, &b);
    if (e == MS_OK && b.failed)
        e = MS_ERR_NOMEM;
    if (e == MS_OK) {
        size_t n = b.len < cap - 1 ? b.len : cap - 1;
        memcpy(out, b.p, n);
        out[n] = '\0';
    }
    free(b.p);
    return e;
}
