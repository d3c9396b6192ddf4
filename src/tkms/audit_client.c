/*
 * The auditor's side of a threshold extraction (audit.h): the warrant submitted to every
 * server, their checkpoints gathered as evidence, t+1 shares u_j asked for, each checked
 * against the slot's commitments before it is used, then RSK = [u^-1]R0 validated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mikeysakke/crypto.h"
#include "net/hpke.h"
#include "net/peer.h"
#include "net/peer_msg.h"
#include "net/peer_table.h"
#include "threshold/tkms_internal.h"
#include "tkms/audit.h"
#include "tkms/audit_wire.h"
#include "util/detail.h"
#include "util/bytes.h"

#define ID_MAX 600

/* The error a server named in its answer ("E<code> sentence"), else the transport's. */
static ms_err server_error(ms_err e, const ms_peer_response *r, unsigned j, char *why,
                           size_t cap, const char *transport)
{
    /* ms_peer_post reads a 403 as a refused certificate; the audit routes answer 403 for
     * a refused warrant, with their reason in the body */
    if ((e == MS_ERR_HTTP || e == MS_ERR_UNAUTHORISED) && r->body != NULL && r->len > 5 &&
        memcmp(r->body, "code ", 5) == 0) {
        char *end = NULL;
        long code = strtol((const char *)r->body + 5, &end, 10);
        if (end != NULL && end[0] == ':' && end[1] == ' ' && code > 0 && code < MS_ERR__LAST) {
            size_t l = strcspn(end + 2, "\n");
            ms_detail_set(why, cap, "server %u: %.*s", j, (int)(l > 400 ? 400 : l), end + 2);
            return (ms_err)code;
        }
    }
    ms_detail_set(why, cap, "server %u: %s", j, transport);
    return e;
}

typedef struct evidence_item {
    uint8_t *msg;
    size_t msg_len;
    uint8_t *proof;
    size_t proof_len;
} evidence_item;

/* One server's answer to the warrant: its checkpoint holds w. */
static ms_err check_logged(const ms_peer_keys *keys, const uint8_t session[32],
                           const uint8_t kms_hash[32], unsigned j, const uint8_t *b, size_t len,
                           const uint8_t w[32], evidence_item *it)
{
    if (len < 4 || ms_load_be32(b) > len - 4)
        return MS_ERR_BAD_ENCODING;
    size_t ml = ms_load_be32(b);
    if (len - 4 - ml < 4 || ms_load_be32(b + 4 + ml) != len - 8 - ml)
        return MS_ERR_BAD_ENCODING;
    size_t pl = ms_load_be32(b + 4 + ml);
    ms_peer_msg_hdr h;
    const uint8_t *text = NULL;
    size_t tl = 0;
    ms_tkms_checkpoint cp;
    ms_err e = ms_peer_msg_open(keys, session, 0, NULL, b + 4, ml, &h, &text, &tl, NULL, 0);
    if (e != MS_OK || h.sender != j || h.kind != MS_TKMS_KIND_CHECKPOINT)
        return MS_ERR_PEER_MESSAGE;
    if ((e = ms_tkms_checkpoint_parse(text, tl, &cp)) != MS_OK)
        return e;
    if (memcmp(cp.kms_hash, kms_hash, 32) != 0)
        return MS_ERR_CONFIG;
    if ((e = ms_tkms_proof_check(b + 8 + ml, pl, cp.size, cp.head, w)) != MS_OK)
        return e;
    it->msg = malloc(ml);
    it->proof = malloc(pl);
    if (it->msg == NULL || it->proof == NULL)
        return MS_ERR_NOMEM;
    memcpy(it->msg, b + 4, ml);
    memcpy(it->proof, b + 8 + ml, pl);
    it->msg_len = ml;
    it->proof_len = pl;
    return MS_OK;
}

/* [d u_j]P = sum_k j^k uc_k (the commitments checked to lie in E[q] by the caller). */
static ms_err share_matches(const ms_tkms_record *rec, const tsc *u, unsigned j, int *ok)
{
    uint8_t want[TG_PT_MAX], got[TG_PT_MAX];
    tsc d, du;
    tsc_from_u64(&d, rec->d, &tg_sakke);
    tsc_mul(&du, u, &d, &tg_sakke);
    ms_err e = tg_feldman_eval_var(&tg_sakke, want, &rec->uc[0][0], rec->t, j);
    if (e == MS_OK)
        e = tg_mul_gen(&tg_sakke, got, &du);
    ms_wipe(&du, sizeof du);
    *ok = e == MS_OK && memcmp(want, got, MS_SAKKE_POINT_BYTES) == 0;
    return e;
}

/* One server's answer to the extraction: its u_j, opened and checked. *rec_bytes holds
 * the first record seen; every later one must be the same. */
static ms_err open_share(const ms_peer_keys *keys, const ms_tkms_public *pub,
                         const ms_tkms_warrant *w, const uint8_t *id, size_t id_len,
                         const uint8_t sk[32], unsigned j, const uint8_t *b, size_t len,
                         uint8_t *rec_bytes, size_t *rec_len, ms_tkms_record *rec, tsc *u,
                         char *why, size_t cap)
{
    ms_peer_msg_hdr h;
    const uint8_t *p = NULL;
    size_t pl = 0;
    if (ms_peer_msg_open(keys, w->hash, 0, NULL, b, len, &h, &p, &pl, NULL, 0) != MS_OK ||
        h.sender != j || h.kind != MS_TKMS_KIND_AUDIT_SHARE || pl < 2)
        return ms_detail_fail(MS_ERR_PEER_MESSAGE, why, cap,
                              "server %u: its answer is not signed by it for this warrant", j);
    size_t rl = (size_t)p[0] << 8 | p[1];
    ms_tkms_record r;
    size_t used = 0;
    if (rl > pl - 2 || rl > MS_TKMS_RECORD_MAX ||
        ms_tkms_record_decode(&r, p + 2, rl, &used) != MS_OK || used != rl)
        return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, why, cap,
                              "server %u: its answer carries no valid record", j);
    uint8_t sid[32];
    ms_err e = tkms_sid(sid, pub->Z, pub->kpak, id, id_len);
    if (e != MS_OK)
        return e;
    if (memcmp(sid, r.sid, 32) != 0 || r.t != pub->t)
        return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, why, cap,
                              "server %u: the record it sent is not the slot of %s in %s", j,
                              w->user, w->period);
    if (*rec_len == 0) {
        for (unsigned k = 0; k <= r.t; k++)
            if (tg_check_var(&tg_sakke, r.uc[k], 1) != MS_OK)
                return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, why, cap,
                                      "server %u: the record's commitments are not in E[q]", j);
        memcpy(rec_bytes, p + 2, rl);
        *rec_len = rl;
        *rec = r;
    } else if (rl != *rec_len || memcmp(rec_bytes, p + 2, rl) != 0) {
        return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, why, cap,
                              "server %u: its record differs from the other servers'", j);
    }
    uint8_t info[128], plain[MS_SAKKE_SECRET_BYTES];
    size_t il = ms_tkms_audit_share_info(info, sid, j, w->hash), got = 0;
    if (ms_hpke_open(sk, info, il, p + 2, rl, p + 2 + rl, pl - 2 - rl, plain, sizeof plain,
                     &got) != MS_OK ||
        got != sizeof plain)
        return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, why, cap,
                              "server %u: its share does not open with the auditor key", j);
    e = tsc_from_bytes(u, plain, &tg_sakke);
    ms_wipe(plain, sizeof plain);
    int ok = 0;
    if (e == MS_OK)
        e = share_matches(rec, u, j, &ok);
    if (e == MS_OK && !ok)
        e = MS_ERR_THRESHOLD_SHARE;
    if (e != MS_OK)
        return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, why, cap,
                              "server %u: its share does not match the slot's commitments", j);
    return MS_OK;
}

static ms_err post(const ms_peer_table *t, unsigned j, unsigned timeout_ms, const char *path,
                   const uint8_t *body, size_t len, ms_peer_response *resp, char *why,
                   size_t cap)
{
    ms_peer_link link = {.url = t->server[j - 1].url, .timeout_ms = timeout_ms};
    memcpy(link.pin, t->server[j - 1].tls_pin, sizeof link.pin);
    char d[400] = "";
    ms_err e = ms_peer_post(&link, path, body, len, resp, d, sizeof d);
    if (e != MS_OK)
        e = server_error(e, resp, j, why, cap, d);
    return e;
}

static void note(char *all, size_t cap, const char *why)
{
    size_t l = strlen(all);
    if (l + 3 < cap)
        snprintf(all + l, cap - l, "%s%s", l != 0 ? "; " : "", why);
}

ms_err ms_tkms_audit_extract(const ms_tkms_extract_params *p, ms_tkms_extract_result *res,
                             char *detail, size_t detail_cap)
{
    if (p == NULL || res == NULL || p->peers_file == NULL || p->public_file == NULL ||
        p->warrant == NULL || p->auditor_sk == NULL)
        return MS_ERR_ARG;
    memset(res, 0, sizeof *res);
    ms_peer_table *table = malloc(sizeof *table);
    if (table == NULL)
        return MS_ERR_NOMEM;
    ms_tkms_public pub;
    unsigned idx = 0;
    uint8_t tr[32], apk[32];
    ms_tkms_warrant w;
    ms_err e = ms_peer_table_read(p->peers_file, table, detail, detail_cap);
    if (e == MS_OK)
        e = ms_tkms_public_read(p->public_file, &pub, &idx, tr, detail, detail_cap);
    if (e == MS_OK)
        e = ms_tkms_warrant_parse(p->warrant, p->warrant_len, &w, detail, detail_cap);
    if (e == MS_OK && (e = ms_hpke_public(p->auditor_sk, apk)) == MS_OK &&
        memcmp(apk, w.auditor_pub, 32) != 0)
        e = ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                           "the auditor key is not the one the warrant names");
    if (e == MS_OK && (pub.n != table->n || pub.t != table->t))
        e = ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap,
                           "the public result and the peers table are of different KMSs");
    if (e == MS_OK)
        e = tg_init();
    if (e != MS_OK) {
        free(table);
        return e;
    }
    snprintf(res->user, sizeof res->user, "%s", w.user);
    snprintf(res->period, sizeof res->period, "%s", w.period);
    ms_peer_keys keys;
    ms_peer_table_keys(table, &keys);
    uint8_t session[32], kms_hash[32];
    ms_tkms_audit_session(session, &pub);
    ms_tkms_kms_hash(kms_hash, &pub);
    const unsigned n = table->n, t1 = table->t + 1;
    char failures[1200] = "", why[500];

    /* 1. the warrant into every server's log */
    evidence_item items[MS_PEER_MAX];
    memset(items, 0, sizeof items);
    unsigned logged = 0;
    for (unsigned j = 1; j <= n && e == MS_OK; j++) {
        ms_peer_response r;
        why[0] = '\0';
        ms_err pe = post(table, j, p->timeout_ms, "/tkms/audit/warrant",
                         (const uint8_t *)p->warrant, p->warrant_len, &r, why, sizeof why);
        if (pe == MS_OK) {
            pe = check_logged(&keys, session, kms_hash, j, r.body, r.len, w.hash,
                              &items[logged]);
            if (pe == MS_ERR_NOMEM)
                e = pe;
            else if (pe != MS_OK)
                ms_detail_set(why, sizeof why, "server %u: its checkpoint %s", j,
                              pe == MS_ERR_PEER_MESSAGE ? "is not signed by it"
                              : pe == MS_ERR_CONFIG     ? "is of another KMS"
                                                        : "does not include the warrant");
        }
        ms_peer_response_free(&r);
        if (pe == MS_OK) {
            logged++;
            res->logged |= 1u << (j - 1);
        } else {
            note(failures, sizeof failures, why);
        }
    }
    /* 2. the request with the evidence */
    size_t blen = 2 + strlen(w.user) + 2 + strlen(w.period) + 4 + p->warrant_len + 1;
    for (unsigned i = 0; i < logged; i++)
        blen += 8 + items[i].msg_len + items[i].proof_len;
    uint8_t *body = e == MS_OK ? malloc(blen) : NULL;
    if (e == MS_OK && logged < t1)
        e = ms_detail_fail(MS_ERR_WARRANT_UNLOGGED, detail, detail_cap,
                           "the warrant is logged by %u server%s, %u needed: %s", logged,
                           logged == 1 ? "" : "s", t1, failures);
    else if (e == MS_OK && body == NULL)
        e = MS_ERR_NOMEM;
    if (e == MS_OK) {
        size_t o = 0, ul = strlen(w.user), pl = strlen(w.period);
        body[o++] = (uint8_t)(ul >> 8);
        body[o++] = (uint8_t)ul;
        memcpy(body + o, w.user, ul);
        o += ul;
        body[o++] = (uint8_t)(pl >> 8);
        body[o++] = (uint8_t)pl;
        memcpy(body + o, w.period, pl);
        o += pl;
        ms_store_be32(body + o, (uint32_t)p->warrant_len);
        memcpy(body + o + 4, p->warrant, p->warrant_len);
        o += 4 + p->warrant_len;
        body[o++] = (uint8_t)logged;
        for (unsigned i = 0; i < logged; i++) {
            ms_store_be32(body + o, (uint32_t)items[i].msg_len);
            memcpy(body + o + 4, items[i].msg, items[i].msg_len);
            o += 4 + items[i].msg_len;
            ms_store_be32(body + o, (uint32_t)items[i].proof_len);
            memcpy(body + o + 4, items[i].proof, items[i].proof_len);
            o += 4 + items[i].proof_len;
        }
        blen = o;
    }
    for (unsigned i = 0; i < logged; i++) {
        free(items[i].msg);
        free(items[i].proof);
    }

    /* 3. t+1 shares */
    uint8_t id[ID_MAX];
    size_t ul = strlen(w.user), pl = strlen(w.period), id_len = pl + ul + 2;
    memcpy(id, w.period, pl + 1);
    memcpy(id + pl + 1, w.user, ul + 1);
    uint8_t *rec_bytes = malloc(MS_TKMS_RECORD_MAX);
    ms_tkms_record *rec = malloc(sizeof *rec);
    size_t rec_len = 0;
    tsc u[MS_TKMS_MAX_T + 1];
    unsigned ids[MS_TKMS_MAX_T + 1], got = 0;
    ms_err first_refusal = MS_OK; /* every server refusing alike: that error */
    if (e == MS_OK && (rec_bytes == NULL || rec == NULL))
        e = MS_ERR_NOMEM;
    failures[0] = '\0';
    for (unsigned j = 1; j <= n && got < t1 && e == MS_OK; j++) {
        ms_peer_response r;
        why[0] = '\0';
        ms_err pe = post(table, j, p->timeout_ms, "/tkms/audit/extract", body, blen, &r, why,
                         sizeof why);
        if (pe == MS_OK)
            pe = open_share(&keys, &pub, &w, id, id_len, p->auditor_sk, j, r.body, r.len,
                            rec_bytes, &rec_len, rec, &u[got], why, sizeof why);
        ms_peer_response_free(&r);
        if (pe != MS_OK && first_refusal == MS_OK)
            first_refusal = pe;
        if (pe == MS_OK) {
            ids[got++] = j;
            res->released |= 1u << (j - 1);
        } else {
            note(failures, sizeof failures, why);
        }
    }
    if (e == MS_OK && got < t1)
        e = ms_detail_fail(got == 0 && first_refusal != MS_OK ? first_refusal
                                                             : MS_ERR_THRESHOLD_ROUND,
                           detail, detail_cap, "%u of the %u shares needed were released: %s",
                           got, t1, failures);
    /* 4. u = sum lambda_j u_j, RSK = [u^-1]R0, validated */
    if (e == MS_OK) {
        tsc uu, lam, term, inv;
        tsc_zero(&uu);
        for (unsigned x = 0; x < got; x++) {
            tsc_lagrange_var(&lam, ids, got, x, 0, &tg_sakke);
            tsc_mul(&term, &lam, &u[x], &tg_sakke);
            tsc_add(&uu, &uu, &term, &tg_sakke);
        }
        tsc_inv(&inv, &uu, &tg_sakke);
        e = tg_mul_point(&tg_sakke, res->rsk, rec->r0, &inv);
        ms_wipe(&uu, sizeof uu);
        ms_wipe(&term, sizeof term);
        ms_wipe(&inv, sizeof inv);
        ms_sakke_kms *kms = NULL;
        if (e == MS_OK && (e = ms_sakke_kms_new(&kms, pub.Z)) == MS_OK) {
            e = ms_sakke_rsk_validate(kms, id, id_len, res->rsk);
            ms_sakke_kms_free(kms);
        }
        if (e != MS_OK) {
            ms_wipe(res->rsk, sizeof res->rsk);
            e = ms_detail_fail(MS_ERR_RSK_INVALID, detail, detail_cap,
                               "the combined RSK does not validate (RFC 6508 6.1.2)");
        }
    }
    ms_wipe(u, sizeof u);
    free(rec_bytes);
    free(rec);
    free(body);
    free(table);
    return e;
}
