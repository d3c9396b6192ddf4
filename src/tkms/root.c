/*
 * The batch's Merkle tree and its signed root (see root.h).
 */
#include "tkms/root.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util/detail.h"
#include "util/hex.h"

static ms_err sha256_parts(uint8_t out[32], uint8_t prefix, const uint8_t *a, size_t al,
                           const uint8_t *b, size_t bl)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, &prefix, 1) == 1 && EVP_DigestUpdate(md, a, al) == 1 &&
             (bl == 0 || EVP_DigestUpdate(md, b, bl) == 1) &&
             EVP_DigestFinal_ex(md, out, NULL) == 1;
    EVP_MD_CTX_free(md);
    return ok ? MS_OK : MS_ERR_INTERNAL;
}

ms_err tkms_merkle_leaf(uint8_t out[32], const uint8_t *rec, size_t len)
{
    return sha256_parts(out, 0x00, rec, len, NULL, 0);
}

static ms_err node_hash(uint8_t out[32], const uint8_t l[32], const uint8_t r[32])
{
    return sha256_parts(out, 0x01, l, 32, r, 32);
}

/* Bottom up, a level's odd last node rising unchanged: the same tree as RFC 9162's split
 * at the largest power of two, built in place over one copy of the leaves. */
ms_err tkms_merkle_root(uint8_t root[32], const uint8_t (*leaves)[32], size_t count,
                        size_t index, uint8_t (*proof)[32], size_t *proof_len)
{
    if (count == 0 || (proof != NULL && (index >= count || proof_len == NULL)))
        return MS_ERR_ARG;
    uint8_t(*level)[32] = malloc(count * 32);
    if (level == NULL)
        return MS_ERR_NOMEM;
    memcpy(level, leaves, count * 32);
    size_t size = count, idx = index, pl = 0;
    ms_err err = MS_OK;
    while (size > 1 && err == MS_OK) {
        if (proof != NULL && (idx ^ 1) < size) {
            if (pl == TKMS_PROOF_MAX) {
                err = MS_ERR_INTERNAL;
                break;
            }
            memcpy(proof[pl++], level[idx ^ 1], 32);
        }
        size_t half = size / 2;
        for (size_t i = 0; i < half && err == MS_OK; i++)
            err = node_hash(level[i], level[2 * i], level[2 * i + 1]);
        if (size & 1)
            memcpy(level[half], level[size - 1], 32);
        size = half + (size & 1);
        idx >>= 1;
    }
    if (err == MS_OK)
        memcpy(root, level[0], 32);
    if (proof_len != NULL)
        *proof_len = pl;
    free(level);
    return err;
}

ms_err tkms_merkle_from_proof(uint8_t root[32], const uint8_t leaf[32], uint64_t index,
                              uint64_t size, const uint8_t (*proof)[32], size_t proof_len)
{
    if (size == 0 || index >= size)
        return MS_ERR_INVALID;
    uint64_t fn = index, sn = size - 1;
    uint8_t r[32];
    memcpy(r, leaf, 32);
    for (size_t i = 0; i < proof_len; i++) {
        if (sn == 0)
            return MS_ERR_INVALID;
        ms_err err;
        if ((fn & 1) || fn == sn) {
            err = node_hash(r, proof[i], r);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            err = node_hash(r, r, proof[i]);
        }
        if (err != MS_OK)
            return err;
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return MS_ERR_INVALID;
    memcpy(root, r, 32);
    return MS_OK;
}

unsigned tkms_root_needed(unsigned n, unsigned t)
{
    return (n + t + 2) / 2;
}

static size_t signed_text(uint8_t *out, const tkms_root *r)
{
    size_t o = 0, pl = strlen(r->period);
    memcpy(out, TKMS_ROOT_CONTEXT, sizeof TKMS_ROOT_CONTEXT); /* with its NUL */
    o = sizeof TKMS_ROOT_CONTEXT;
    out[o++] = (uint8_t)pl;
    memcpy(out + o, r->period, pl);
    o += pl;
    memcpy(out + o, r->root, 32);
    o += 32;
    for (int k = 7; k >= 0; k--)
        out[o++] = (uint8_t)(r->count >> (8 * k));
    for (int k = 3; k >= 0; k--)
        out[o++] = (uint8_t)(r->live >> (8 * k));
    return o;
}

#define SIGNED_MAX (sizeof TKMS_ROOT_CONTEXT + 1 + 32 + 32 + 8 + 4)

ms_err tkms_root_sign(const uint8_t seed[MS_PEER_KEY_BYTES], const tkms_root *r,
                      uint8_t sig[MS_PEER_SIG_BYTES])
{
    uint8_t text[SIGNED_MAX];
    size_t tl = signed_text(text, r), sl = MS_PEER_SIG_BYTES;
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, MS_PEER_KEY_BYTES);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = k != NULL && md != NULL && EVP_DigestSignInit(md, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestSign(md, sig, &sl, text, tl) == 1 && sl == MS_PEER_SIG_BYTES;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    return ok ? MS_OK : MS_ERR_INTERNAL;
}

int tkms_root_sig_ok(const uint8_t pub[MS_PEER_KEY_BYTES], const tkms_root *r,
                     const uint8_t sig[MS_PEER_SIG_BYTES])
{
    uint8_t text[SIGNED_MAX];
    size_t tl = signed_text(text, r);
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, MS_PEER_KEY_BYTES);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = k != NULL && md != NULL && EVP_DigestVerifyInit(md, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestVerify(md, sig, MS_PEER_SIG_BYTES, text, tl) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    return ok;
}

uint32_t tkms_root_valid(const tkms_root *r, const ms_peer_table *table)
{
    uint32_t ok = 0;
    for (unsigned j = 1; j <= table->n && j <= MS_PEER_MAX; j++)
        if ((r->have >> (j - 1) & 1) &&
            tkms_root_sig_ok(table->server[j - 1].sign_pub, r, r->sig[j - 1]))
            ok |= 1u << (j - 1);
    return ok;
}

ms_err tkms_root_write(const char *path, const tkms_root *r, char *detail, size_t detail_cap)
{
    char *buf = NULL, hex[2 * MS_PEER_SIG_BYTES + 1];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return MS_ERR_NOMEM;
    ms_hex_encode_lower(hex, r->root, 32);
    hex[64] = '\0';
    fprintf(f, "mikeysakke-tkms-root 1\nperiod %s\ncount %llu\nlive %08x\nroot %s\n", r->period,
            (unsigned long long)r->count, (unsigned)r->live, hex);
    for (unsigned j = 1; j <= MS_PEER_MAX; j++)
        if (r->have >> (j - 1) & 1) {
            ms_hex_encode_lower(hex, r->sig[j - 1], MS_PEER_SIG_BYTES);
            hex[2 * MS_PEER_SIG_BYTES] = '\0';
            fprintf(f, "sig %u %s\n", j, hex);
        }
    fclose(f);
    ms_err err = buf != NULL ? ms_peer_file_create(path, buf, len, false, detail, detail_cap)
                             : MS_ERR_NOMEM;
    free(buf);
    return err;
}

ms_err tkms_root_read(const char *path, tkms_root *r, char *detail, size_t detail_cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap, "cannot read %s", path);
    memset(r, 0, sizeof *r);
    char line[300];
    unsigned lineno = 0, seen = 0;
    int bad = 0;
    while (!bad && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        if (strchr(line, '\n') == NULL) {
            bad = 1;
            break;
        }
        line[strcspn(line, "\n")] = '\0';
        char key[16], val[2 * MS_PEER_SIG_BYTES + 2];
        unsigned j = 0;
        unsigned long long c = 0;
        if (lineno == 1) {
            bad = strcmp(line, "mikeysakke-tkms-root 1") != 0;
        } else if (sscanf(line, "sig %u %129s", &j, val) == 2) {
            bad = j < 1 || j > MS_PEER_MAX || (r->have >> (j - 1) & 1) ||
                  strlen(val) != 2 * MS_PEER_SIG_BYTES ||
                  ms_hex_decode(r->sig[j - 1], MS_PEER_SIG_BYTES, val, strlen(val)) != MS_OK;
            if (!bad)
                r->have |= 1u << (j - 1);
        } else if (sscanf(line, "%15s %129s", key, val) == 2) {
            seen++;
            if (strcmp(key, "period") == 0 && strlen(val) < sizeof r->period)
                memcpy(r->period, val, strlen(val) + 1);
            else if (strcmp(key, "count") == 0 && sscanf(val, "%llu", &c) == 1)
                r->count = c;
            else if (strcmp(key, "live") == 0 && strlen(val) == 8 && sscanf(val, "%x", &j) == 1)
                r->live = j;
            else if (strcmp(key, "root") == 0 && strlen(val) == 64)
                bad = ms_hex_decode(r->root, 32, val, 64) != MS_OK;
            else
                bad = 1;
        } else {
            bad = 1;
        }
    }
    fclose(f);
    if (bad)
        return ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap, "%s line %u is malformed",
                              path, lineno);
    if (seen != 4 || r->period[0] == '\0' || r->count == 0)
        return ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap, "%s is incomplete", path);
    return MS_OK;
}

void tkms_mask_list(char *out, size_t cap, uint32_t mask)
{
    size_t o = 0;
    if (cap == 0)
        return;
    out[0] = '\0';
    for (unsigned j = 1; j <= 32 && o < cap; j++)
        if (mask >> (j - 1) & 1) {
            int w = snprintf(out + o, cap - o, "%s%u", o ? ", " : "", j);
            if (w < 0)
                break;
            o += (size_t)w;
        }
}
