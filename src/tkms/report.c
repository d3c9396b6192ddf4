/*
 * Cheater reports (report.h): the accused server's signed share and the key of its one
 * envelope, and the check anyone with the peers table and the public result can run.
 */
#include "tkms/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mikeysakke/crypto.h"
#include "net/hpke.h"
#include "net/peer_msg.h"
#include "net/peer_table.h"
#include "threshold/tkms_internal.h"
#include "tkms/node.h"
#include "util/detail.h"
#include "util/hex.h"
#include "util/bytes.h"
#include "util/file.h"

#define ID_MAX 1024
#define SHARE_BYTES (MS_SAKKE_SECRET_BYTES + MS_ECCSI_SCALAR_BYTES)
#define MSG_MAX (1u << 20)

/* The RFC 6509 identifier: period, NUL, URI, NUL. */
static size_t identifier(uint8_t *out, const char *period, size_t pl, const char *uri,
                         size_t ul)
{
    if (pl + ul + 2 > ID_MAX)
        return 0;
    memcpy(out, period, pl);
    out[pl] = 0;
    memcpy(out + pl + 1, uri, ul);
    out[pl + ul + 1] = 0;
    return pl + ul + 2;
}

/* What both sides share: the table's keys, the public result, the identity's slot. */
typedef struct report_ctx {
    ms_peer_table table;
    ms_peer_keys keys;
    ms_tkms_public pub;
    uint8_t id[ID_MAX], sid[32];
    size_t id_len;
} report_ctx;

static ms_err ctx_open(report_ctx *c, const char *peers_file, const char *public_file,
                       const char *period, size_t pl, const char *uri, size_t ul, char *detail,
                       size_t cap)
{
    unsigned idx = 0;
    uint8_t tr[32];
    ms_err err = ms_peer_table_read(peers_file, &c->table, detail, cap);
    if (err == MS_OK)
        err = ms_tkms_public_read(public_file, &c->pub, &idx, tr, detail, cap);
    if (err == MS_OK && (c->pub.n != c->table.n || c->pub.t != c->table.t))
        err = ms_detail_fail(MS_ERR_CONFIG, detail, cap,
                             "the public result is not of this peers table");
    if (err == MS_OK && (c->id_len = identifier(c->id, period, pl, uri, ul)) == 0)
        err = ms_detail_fail(MS_ERR_IDENTITY, detail, cap, "the URI is too long");
    if (err == MS_OK)
        err = tkms_sid(c->sid, c->pub.Z, c->pub.kpak, c->id, c->id_len);
    if (err == MS_OK)
        ms_peer_table_keys(&c->table, &c->keys);
    return err;
}

/* A share message of this slot: signed by the server it names (h), its record (decoded,
 * and its octets), its envelope. */
typedef struct share_msg {
    ms_peer_msg_hdr h;
    ms_tkms_record rec;
    const uint8_t *rec_bytes, *env, *aad; /* aad: the payload's public part */
    size_t rec_len, env_len, aad_len;
} share_msg;

static ms_err share_open(const report_ctx *c, const uint8_t *msg, size_t len, share_msg *s,
                         char *detail, size_t cap)
{
    const uint8_t *payload = NULL;
    size_t pl = 0, used = 0;
    char why[200] = "";
    ms_err err = ms_peer_msg_open(&c->keys, c->sid, 0, NULL, msg, len, &s->h, &payload, &pl, why,
                                  sizeof why);
    if (err != MS_OK || s->h.kind != MS_TKMS_KIND_SHARE)
        return ms_detail_fail(MS_ERR_PEER_MESSAGE, detail, cap,
                              "the share is not a share message signed by a server of the "
                              "table for this identity's slot%s%s",
                              why[0] ? ": " : "", why);
    s->rec_len = pl >= 2 ? (size_t)payload[0] << 8 | payload[1] : 0;
    s->aad_len = ms_tkms_share_public_len(payload, pl);
    if (s->rec_len == 0 || s->aad_len == 0 || s->aad_len + MS_HPKE_OVERHEAD > pl ||
        ms_tkms_record_decode(&s->rec, payload + 2, s->rec_len, &used) != MS_OK ||
        used != s->rec_len)
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, cap,
                              "server %u's share message carries no well-formed record",
                              s->h.sender);
    s->rec_bytes = payload + 2;
    s->aad = payload;
    s->env = payload + s->aad_len;
    s->env_len = pl - s->aad_len;
    return MS_OK;
}

ms_err ms_tkms_report_write(const char *peers_file, const char *public_file,
                            const uint8_t device_sk[32], const char *period, const char *uri,
                            const char *const *files, size_t count, unsigned accused,
                            const char *out_path, char *detail, size_t cap)
{
    if (peers_file == NULL || public_file == NULL || device_sk == NULL || period == NULL ||
        uri == NULL || files == NULL || out_path == NULL || accused == 0)
        return MS_ERR_ARG;
    report_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return MS_ERR_NOMEM;
    size_t pl = strlen(period), ul = strlen(uri);
    ms_err err = ctx_open(c, peers_file, public_file, period, pl, uri, ul, detail, cap);
    uint8_t *msg = NULL, *out = NULL;
    size_t len = 0;
    share_msg s;
    int have = 0;
    /* the accused server's signed share, and no other file */
    for (size_t i = 0; i < count && err == MS_OK && !have; i++) {
        uint8_t *b = NULL;
        size_t bl = 0;
        if (ms_file_read(files[i], MSG_MAX, &b, &bl) != MS_OK)
            continue;
        if (share_open(c, b, bl, &s, NULL, 0) == MS_OK && s.h.sender == accused) {
            msg = b;
            len = bl;
            have = 1;
        } else {
            free(b);
        }
    }
    if (err == MS_OK && !have)
        err = ms_detail_fail(MS_ERR_PEER_MESSAGE, detail, cap,
                             "no share file signed by server %u for this slot: a report "
                             "needs the accused server's own signed share",
                             accused);
    uint8_t key[MS_HPKE_KEY_BYTES], nonce[MS_HPKE_NONCE_BYTES], info[64];
    if (err == MS_OK) {
        size_t il = ms_tkms_share_info(info, c->sid, accused);
        if (ms_hpke_blob_key(device_sk, info, il, s.aad, s.aad_len, s.env, s.env_len, key,
                             nonce) != MS_OK)
            err = ms_detail_fail(MS_ERR_DECRYPT, detail, cap,
                                 "server %u's share does not open with the device's key: a "
                                 "report cannot show what it holds",
                                 accused);
    }
    size_t ol = 0;
    if (err == MS_OK) {
        size_t hl = sizeof MS_TKMS_REPORT_HEADER - 1;
        out = malloc(hl + 2 + pl + 2 + ul + sizeof key + sizeof nonce + 4 + len);
        if (out == NULL) {
            err = MS_ERR_NOMEM;
        } else {
            memcpy(out, MS_TKMS_REPORT_HEADER, hl);
            ol = hl;
            ms_store_be16(out + ol, (uint16_t)(pl));
            memcpy(out + ol + 2, period, pl);
            ol += 2 + pl;
            ms_store_be16(out + ol, (uint16_t)(ul));
            memcpy(out + ol + 2, uri, ul);
            ol += 2 + ul;
            memcpy(out + ol, key, sizeof key);
            ol += sizeof key;
            memcpy(out + ol, nonce, sizeof nonce);
            ol += sizeof nonce;
            out[ol] = (uint8_t)(len >> 24);
            out[ol + 1] = (uint8_t)(len >> 16);
            out[ol + 2] = (uint8_t)(len >> 8);
            out[ol + 3] = (uint8_t)len;
            memcpy(out + ol + 4, msg, len);
            ol += 4 + len;
            err = ms_peer_file_create(out_path, out, ol, false, detail, cap);
        }
    }
    ms_wipe(key, sizeof key);
    ms_wipe(nonce, sizeof nonce);
    if (out != NULL)
        ms_wipe(out, ol);
    free(out);
    free(msg);
    free(c);
    return err;
}

/* The record of `id` in a batch's records file ("mikeysakke-tkms-records 1\n", then
 * u16 id length | id | record). */
static ms_err records_find(const char *path, const uint8_t *id, size_t id_len, uint8_t **rec,
                           size_t *rec_len, char *detail, size_t cap)
{
    static const char hdr[] = "mikeysakke-tkms-records 1\n";
    uint8_t *b = NULL;
    size_t len = 0;
    if (ms_file_read(path, 1u << 30, &b, &len) != MS_OK)
        return ms_detail_fail(MS_ERR_IO, detail, cap, "cannot read %s", path);
    ms_err err = len >= sizeof hdr - 1 && memcmp(b, hdr, sizeof hdr - 1) == 0
                     ? MS_ERR_IDENTITY
                     : MS_ERR_BAD_ENCODING;
    size_t o = sizeof hdr - 1;
    while (err == MS_ERR_IDENTITY && o + 2 <= len) {
        size_t l = (size_t)b[o] << 8 | b[o + 1], used = 0;
        ms_tkms_record r;
        if (o + 2 + l > len ||
            ms_tkms_record_decode(&r, b + o + 2 + l, len - o - 2 - l, &used) != MS_OK) {
            err = MS_ERR_BAD_ENCODING;
            break;
        }
        if (l == id_len && memcmp(b + o + 2, id, id_len) == 0) {
            *rec = malloc(used);
            if (*rec == NULL) {
                err = MS_ERR_NOMEM;
                break;
            }
            memcpy(*rec, b + o + 2 + l, used);
            *rec_len = used;
            err = MS_OK;
        }
        o += 2 + l + used;
    }
    free(b);
    if (err == MS_ERR_BAD_ENCODING)
        return ms_detail_fail(err, detail, cap, "%s is not a records file", path);
    if (err == MS_ERR_IDENTITY)
        return ms_detail_fail(err, detail, cap, "%s has no record for the report's user", path);
    return err;
}

static size_t get16(const uint8_t *p)
{
    return (size_t)p[0] << 8 | p[1];
}

/* The check, with the table, public result and records either named or those of a
 * server's directory (the records of the report's period). */
static ms_err check(const char *dir, const char *peers_file, const char *public_file,
                    const char *records_file, const char *report_path, unsigned *server,
                    uint8_t sid_out[32], char *detail, size_t cap)
{
    if ((dir == NULL && (peers_file == NULL || public_file == NULL)) || report_path == NULL ||
        server == NULL || sid_out == NULL)
        return MS_ERR_ARG;
    *server = 0;
    uint8_t *r = NULL, *own = NULL;
    size_t rl = 0, own_len = 0;
    ms_err err = ms_file_read(report_path, MSG_MAX + 4096, &r, &rl);
    if (err != MS_OK)
        return ms_detail_fail(err, detail, cap, "cannot read the report %s", report_path);
    /* parse: header, period, URI, key, nonce, message */
    size_t hl = sizeof MS_TKMS_REPORT_HEADER - 1, o = hl, pl = 0, ul = 0, ml = 0;
    const char *period = NULL, *uri = NULL;
    const uint8_t *key = NULL, *nonce = NULL, *msg = NULL;
    int ok = rl >= hl + 2 && memcmp(r, MS_TKMS_REPORT_HEADER, hl) == 0;
    if (ok) {
        pl = get16(r + o);
        period = (const char *)r + o + 2;
        o += 2 + pl;
        ok = o + 2 <= rl;
    }
    if (ok) {
        ul = get16(r + o);
        uri = (const char *)r + o + 2;
        o += 2 + ul;
        ok = o + MS_HPKE_KEY_BYTES + MS_HPKE_NONCE_BYTES + 4 <= rl;
    }
    if (ok) {
        key = r + o;
        nonce = key + MS_HPKE_KEY_BYTES;
        o += MS_HPKE_KEY_BYTES + MS_HPKE_NONCE_BYTES;
        ml = (size_t)r[o] << 24 | (size_t)r[o + 1] << 16 | (size_t)r[o + 2] << 8 | r[o + 3];
        msg = r + o + 4;
        ok = ml == rl - o - 4 && pl > 0 && pl <= 32 && ul > 0 && memchr(uri, 0, ul) == NULL;
    }
    /* a period is letters, digits and '-' (it names a file under --dir) */
    for (size_t i = 0; ok && i < pl; i++)
        ok = (period[i] >= '0' && period[i] <= '9') || (period[i] >= 'A' && period[i] <= 'Z') ||
             (period[i] >= 'a' && period[i] <= 'z') || period[i] == '-';
    if (!ok) {
        free(r);
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, cap, "%s is not a cheater report",
                              report_path);
    }
    report_ctx *c = calloc(1, sizeof *c);
    if (c == NULL) {
        free(r);
        return MS_ERR_NOMEM;
    }
    char pp[MS_TKMS_PATH_MAX], pubp[MS_TKMS_PATH_MAX], recp[MS_TKMS_PATH_MAX];
    if (dir != NULL) {
        snprintf(pp, sizeof pp, "%s/peers.txt", dir);
        snprintf(pubp, sizeof pubp, "%s/public.txt", dir);
        snprintf(recp, sizeof recp, "%s/batch-%.*s.records", dir, (int)pl, period);
        peers_file = pp;
        public_file = pubp;
        records_file = recp;
    }
    err = ctx_open(c, peers_file, public_file, period, pl, uri, ul, detail, cap);
    share_msg s;
    if (err == MS_OK)
        err = share_open(c, msg, ml, &s, detail, cap);
    ms_tkms_share share;
    memset(&share, 0, sizeof share);
    char sidhex[65] = "";
    if (err == MS_OK) {
        *server = s.h.sender;
        memcpy(sid_out, c->sid, 32);
        ms_hex_encode_lower(sidhex, c->sid, 32);
        size_t got = 0;
        uint8_t pt[SHARE_BYTES];
        if (ms_hpke_open_key(key, nonce, s.aad, s.aad_len, s.env, s.env_len, pt,
                             sizeof pt, &got) != MS_OK ||
            got != SHARE_BYTES)
            err = ms_detail_fail(MS_ERR_DECRYPT, detail, cap,
                                 "the report's key does not open server %u's share: the "
                                 "report is no evidence",
                                 s.h.sender);
        share.index = s.h.sender;
        memcpy(share.u, pt, MS_SAKKE_SECRET_BYTES);
        memcpy(share.ssk, pt + MS_SAKKE_SECRET_BYTES, MS_ECCSI_SCALAR_BYTES);
        ms_wipe(pt, sizeof pt);
    }
    /* the record: of this slot, and the batch's when the records are at hand */
    const char *wrong = NULL;
    if (err == MS_OK && memcmp(s.rec.sid, c->sid, 32) != 0)
        wrong = "a record of another slot";
    if (err == MS_OK && wrong == NULL && records_file != NULL &&
        (err = records_find(records_file, c->id, c->id_len, &own, &own_len, detail, cap)) ==
            MS_OK &&
        (own_len != s.rec_len || memcmp(own, s.rec_bytes, own_len) != 0))
        wrong = "a record that is not the batch's";
    if (err == MS_OK && wrong == NULL) {
        int good = 0;
        ms_err e = tkms_share_check(&c->pub, c->id, c->id_len, &s.rec, &share, &good);
        if (e == MS_ERR_POINT_ORDER)
            wrong = "a record whose commitments are outside E[q]";
        else if (e != MS_OK)
            err = e;
        else if (!good)
            wrong = "a share that does not match the slot's commitments";
    }
    if (err == MS_OK && wrong != NULL)
        err = ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                             "server %u sent a wrong share for slot %s (%s)", s.h.sender, sidhex,
                             wrong);
    else if (err == MS_OK)
        err = ms_detail_fail(MS_ERR_REPORT_FALSE, detail, cap,
                             "the report is false: server %u's share for slot %s is correct",
                             s.h.sender, sidhex);
    ms_wipe(&share, sizeof share);
    ms_wipe(r, rl);
    free(r);
    free(own);
    free(c);
    return err;
}

ms_err ms_tkms_report_check(const char *peers_file, const char *public_file,
                            const char *records_file, const char *report_path,
                            unsigned *server, uint8_t sid[32], char *detail, size_t detail_cap)
{
    return check(NULL, peers_file, public_file, records_file, report_path, server, sid, detail,
                 detail_cap);
}

ms_err ms_tkms_report_check_dir(const char *dir, const char *report_path, unsigned *server,
                                uint8_t sid[32], char *detail, size_t detail_cap)
{
    if (dir == NULL)
        return MS_ERR_ARG;
    return check(dir, NULL, NULL, NULL, report_path, server, sid, detail, detail_cap);
}
