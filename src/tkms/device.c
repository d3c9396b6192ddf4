/*
 * A device of a threshold KMS: its keystore and fetching from t+1 servers (device.h).
 */
#include "tkms/device.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "kmsif/kmsif.h"
#include "mikeysakke/mikey.h"
#include "net/hpke.h"
#include "net/peer.h"
#include "net/peer_table.h"
#include "tkms/node.h"
#include "tkms/request.h"
#include "util/detail.h"
#include "util/file.h"
#include "util/hex.h"

static void join(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* Copies a public file into the keystore (mode 0600, never replacing). */
static ms_err copy_file(const char *from, const char *to, char *detail, size_t detail_cap)
{
    FILE *f = fopen(from, "rb");
    if (f == NULL)
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap, "cannot read %s", from);
    char *buf = malloc(MS_PEER_TABLE_MAX + 1);
    size_t n = buf != NULL ? fread(buf, 1, MS_PEER_TABLE_MAX + 1, f) : 0;
    fclose(f);
    ms_err e = buf == NULL ? MS_ERR_NOMEM
               : n > MS_PEER_TABLE_MAX
                   ? ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap, "%s is too large", from)
                   : ms_file_write_atomic(to, buf, n, 0600, MS_FILE_NO_REPLACE, detail,
                                          detail_cap);
    free(buf);
    return e;
}

/* The table and the public result, checked to belong together. */
static ms_err read_community(const char *peers, const char *public_file, ms_peer_table *table,
                             ms_tkms_public *pub, char *detail, size_t detail_cap)
{
    unsigned idx = 0;
    uint8_t tr[32];
    ms_err e = ms_peer_table_read(peers, table, detail, detail_cap);
    if (e == MS_OK)
        e = ms_tkms_public_read(public_file, pub, &idx, tr, detail, detail_cap);
    if (e == MS_OK && (pub->n != table->n || pub->t != table->t))
        e = ms_detail_fail(MS_ERR_CONFIG, detail, detail_cap,
                           "%s is not the public result of the servers of %s", public_file,
                           peers);
    return e;
}

ms_err ms_tkms_device_init(const ms_tkms_device_init_params *p, ms_tkms_device *dev,
                           char *detail, size_t detail_cap)
{
    if (p == NULL || dev == NULL || p->keystore == NULL || p->peers_file == NULL ||
        p->public_file == NULL || p->passphrase == NULL)
        return MS_ERR_ARG;
    if (!ms_tkms_uri_ok(p->user))
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                              "the user URI must be 1 to 255 printable characters, no space");
    if (!ms_tkms_device_id_ok(p->device_id))
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                              "the device id must be 1 to 64 of A-Z a-z 0-9 . _ - : @");
    ms_peer_table *table = calloc(1, sizeof *table);
    ms_kms_certificate *cert = calloc(1, sizeof *cert);
    ms_device_keys *keys = calloc(1, sizeof *keys);
    if (table == NULL || cert == NULL || keys == NULL) {
        free(table);
        free(cert);
        free(keys);
        return MS_ERR_NOMEM;
    }
    ms_tkms_public pub;
    ms_err e = read_community(p->peers_file, p->public_file, table, &pub, detail, detail_cap);
    char fp[17];
    if (e == MS_OK) {
        ms_tkms_fingerprint(&pub, fp);
        if (p->kms_uri != NULL)
            snprintf(cert->kms_uri, sizeof cert->kms_uri, "%s", p->kms_uri);
        else
            snprintf(cert->kms_uri, sizeof cert->kms_uri, "tkms-%s", fp);
        memcpy(cert->cert_uri, cert->kms_uri, sizeof cert->cert_uri);
        memcpy(cert->issuer, cert->kms_uri, sizeof cert->issuer);
        cert->user_id_format = MS_MIKEY_ID_SCHEME_TEL_MONTHLY;
        cert->parameter_set = 1;
        cert->root = true;
        memcpy(cert->Z, pub.Z, sizeof cert->Z);
        memcpy(cert->kpak, pub.kpak, sizeof cert->kpak);
        snprintf(keys->user_uri, sizeof keys->user_uri, "%s", p->user);
        snprintf(keys->device_id, sizeof keys->device_id, "%s", p->device_id);
        if (RAND_bytes(keys->trk, sizeof keys->trk) != 1 ||
            RAND_bytes(keys->ink, sizeof keys->ink) != 1 ||
            RAND_bytes((unsigned char *)&keys->trk_id, sizeof keys->trk_id) != 1 ||
            RAND_bytes((unsigned char *)&keys->ink_id, sizeof keys->ink_id) != 1)
            e = MS_ERR_RNG;
    }
    char *xml = NULL;
    size_t xl = 0;
    if (e == MS_OK) {
        e = ms_kmsif_enrolment_write(NULL, 0, &xl, keys, cert);
        if (e == MS_ERR_BUFFER_TOO_SMALL)
            e = (xml = malloc(xl + 1)) != NULL ? MS_OK : MS_ERR_NOMEM;
        if (e == MS_OK)
            e = ms_kmsif_enrolment_write(xml, xl + 1, &xl, keys, cert);
        if (e != MS_OK)
            ms_detail_set(detail, detail_cap, "the keystore's enrolment cannot be made: %s",
                          ms_strerror(e));
    }
    if (e == MS_OK)
        e = ms_keystore_create(p->keystore, xml, xl, p->passphrase, p->passphrase_len,
                               p->params, detail, detail_cap);
    if (xml != NULL) {
        ms_wipe(xml, xl);
        free(xml);
    }
    ms_wipe(keys, sizeof *keys);
    free(keys);
    free(cert);
    free(table);
    /* the device's own keys, beside the keystore's files */
    uint8_t hsk[MS_HPKE_SK_BYTES], seed[MS_PEER_KEY_BYTES];
    memset(dev, 0, sizeof *dev);
    snprintf(dev->user, sizeof dev->user, "%s", p->user);
    snprintf(dev->device_id, sizeof dev->device_id, "%s", p->device_id);
    char path[4096];
    if (e == MS_OK && (ms_hpke_keygen(hsk, dev->hpke_pub, NULL) != MS_OK ||
                       ms_peer_keygen(seed, dev->sign_pub, NULL) != MS_OK))
        e = MS_ERR_RNG;
    if (e == MS_OK) {
        join(path, sizeof path, p->keystore, MS_TKMS_KS_HPKE);
        e = ms_peer_key_write(path, hsk, true, detail, detail_cap);
    }
    if (e == MS_OK) {
        join(path, sizeof path, p->keystore, MS_TKMS_KS_SIGN);
        e = ms_peer_key_write(path, seed, true, detail, detail_cap);
    }
    ms_wipe(hsk, sizeof hsk);
    ms_wipe(seed, sizeof seed);
    if (e == MS_OK) {
        join(path, sizeof path, p->keystore, MS_TKMS_KS_PEERS);
        e = copy_file(p->peers_file, path, detail, detail_cap);
    }
    if (e == MS_OK) {
        join(path, sizeof path, p->keystore, MS_TKMS_KS_PUBLIC);
        e = copy_file(p->public_file, path, detail, detail_cap);
    }
    if (e == MS_OK) {
        join(path, sizeof path, p->keystore, MS_TKMS_KS_DEVICE);
        e = ms_tkms_device_file_write(path, dev, detail, detail_cap);
    }
    if (e == MS_OK && p->out != NULL)
        e = ms_tkms_device_file_write(p->out, dev, detail, detail_cap);
    return e;
}

bool ms_tkms_device_is_threshold(const char *keystore)
{
    char path[4096];
    struct stat sb;
    join(path, sizeof path, keystore, MS_TKMS_KS_SIGN);
    return stat(path, &sb) == 0;
}

/* ---- fetch -------------------------------------------------------------------------------- */

/* "YYYY-MM" and its RFC 6509 period number, (year - 1900) * 12 + month - 1. */
static ms_err month_period(const char *period, uint64_t now, char out[33], uint64_t *no)
{
    unsigned y = 0, m = 0;
    if (period == NULL) {
        time_t t = (time_t)(now - MS_NTP_UNIX_OFFSET);
        struct tm tm;
        if (gmtime_r(&t, &tm) == NULL)
            return MS_ERR_ARG;
        y = (unsigned)tm.tm_year + 1900;
        m = (unsigned)tm.tm_mon + 1;
    } else {
        int used = 0;
        if (strlen(period) != 7 || sscanf(period, "%4u-%2u%n", &y, &m, &used) != 2 ||
            used != 7 || y < 1900 || m < 1 || m > 12)
            return MS_ERR_PERIOD;
    }
    snprintf(out, 33, "%04u-%02u", y % 10000, m % 100);
    *no = (uint64_t)(y - 1900) * 12 + (m - 1);
    return MS_OK;
}

/* The ms_err a server's refusal names ("code N: why"), or fallback. */
static ms_err refusal_code(const ms_peer_response *r, ms_err fallback)
{
    int code = 0;
    if (r->body != NULL && sscanf((const char *)r->body, "code %d:", &code) == 1 && code > 0 &&
        code < (int)MS_ERR__LAST)
        return (ms_err)code;
    return fallback;
}

static void note(ms_tkms_fetch_report *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note(ms_tkms_fetch_report *rep, const char *fmt, ...)
{
    size_t n = strlen(rep->notes);
    if (n + 2 >= sizeof rep->notes)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->notes + n, sizeof rep->notes - n, fmt, ap);
    va_end(ap);
    n = strlen(rep->notes);
    if (n + 1 < sizeof rep->notes) {
        rep->notes[n] = '\n';
        rep->notes[n + 1] = '\0';
    }
}

/* Trims a refusal text to its first line. */
static void first_line(char *out, size_t cap, const uint8_t *body, size_t len)
{
    size_t n = 0;
    while (n < len && n + 1 < cap && body[n] != '\n' && body[n] >= ' ' && body[n] < 0x7f) {
        out[n] = (char)body[n];
        n++;
    }
    out[n] = '\0';
}

ms_err ms_tkms_device_fetch(ms_keystore *ks, const char *keystore,
                            const ms_tkms_fetch_options *opt, ms_tkms_fetch_report *rep,
                            char *detail, size_t detail_cap)
{
    if (ks == NULL || keystore == NULL || opt == NULL || rep == NULL)
        return MS_ERR_ARG;
    memset(rep, 0, sizeof *rep);
    uint64_t now = opt->now != 0 ? opt->now : ms_ntp_now() >> 32;
    if (month_period(opt->period, now, rep->period, &rep->period_no) != MS_OK)
        return ms_detail_fail(MS_ERR_PERIOD, detail, detail_cap,
                              "a threshold key period is a month, YYYY-MM");
    ms_keystore_identity id;
    ms_err e = ms_keystore_identity_get(ks, &id);
    if (e != MS_OK)
        return e;
    char peers[4096], pubf[4096], path[4096];
    join(peers, sizeof peers, keystore, MS_TKMS_KS_PEERS);
    join(pubf, sizeof pubf, keystore, MS_TKMS_KS_PUBLIC);
    ms_peer_table *table = calloc(1, sizeof *table);
    if (table == NULL)
        return MS_ERR_NOMEM;
    ms_tkms_public pub;
    uint8_t hsk[MS_HPKE_SK_BYTES], seed[MS_PEER_KEY_BYTES];
    e = read_community(peers, pubf, table, &pub, detail, detail_cap);
    if (e == MS_OK) {
        join(path, sizeof path, keystore, MS_TKMS_KS_HPKE);
        e = ms_file_read_hex_key(path, true, hsk, sizeof hsk, "device key", detail, detail_cap);
    }
    if (e == MS_OK) {
        join(path, sizeof path, keystore, MS_TKMS_KS_SIGN);
        e = ms_file_read_hex_key(path, true, seed, sizeof seed, "device signing key", detail,
                                 detail_cap);
    }
    if (e != MS_OK) {
        free(table);
        ms_wipe(hsk, sizeof hsk);
        return e;
    }
    unsigned n = table->n, need = table->t + 1, order[MS_PEER_MAX];
    for (unsigned i = 0; i < n; i++)
        order[i] = i + 1;
    if (!opt->listed_order)
        for (unsigned i = n - 1; i > 0; i--) { /* Fisher-Yates */
            uint32_t r = 0;
            if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
                break;
            unsigned j = r % (i + 1), tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
    uint8_t *msgs[MS_PEER_MAX] = {0};
    size_t lens[MS_PEER_MAX] = {0};
    char names[MS_PEER_MAX][48];
    const char *name_ptr[MS_PEER_MAX];
    const uint8_t *msg_ptr[MS_PEER_MAX];
    unsigned from[MS_PEER_MAX];
    size_t have = 0;
    ms_err first_code = MS_OK;
    bool mixed = false, done = false;
    uint8_t rsk[MS_SAKKE_POINT_BYTES], ssk[MS_ECCSI_SCALAR_BYTES], pvt[MS_ECCSI_POINT_BYTES];
    e = MS_OK;
    for (unsigned k = 0; k < n && !done && e == MS_OK; k++) {
        unsigned j = order[k];
        const ms_peer_entry *srv = &table->server[j - 1];
        ms_tkms_request r;
        memset(&r, 0, sizeof r);
        r.server = j;
        r.time = ms_ntp_now() >> 32;
        snprintf(r.period, sizeof r.period, "%s", rep->period);
        snprintf(r.device_id, sizeof r.device_id, "%s", id.device_id);
        snprintf(r.user, sizeof r.user, "%s", id.user_uri);
        uint8_t body[MS_TKMS_REQ_MAX];
        size_t bl = 0;
        if (RAND_bytes(r.nonce, sizeof r.nonce) != 1 ||
            ms_tkms_request_sign(&r, seed, body, sizeof body, &bl) != MS_OK) {
            e = ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                               "the request cannot be made (user URI or device id)");
            break;
        }
        ms_peer_link link;
        memset(&link, 0, sizeof link);
        link.url = srv->url;
        memcpy(link.pin, srv->tls_pin, sizeof link.pin);
        link.timeout_ms = opt->timeout_ms != 0 ? opt->timeout_ms : 10000;
        link.max_response = 1u << 20;
        ms_peer_response resp;
        char why[400] = "";
        rep->asked++;
        ms_err pe = ms_peer_post(&link, MS_TKMS_KEYPROV_PATH, body, bl, &resp, why, sizeof why);
        ms_err code = pe;
        if (pe != MS_OK) {
            if (resp.status > 0 && resp.body != NULL && resp.len > 0) {
                code = refusal_code(&resp, pe);
                first_line(why, sizeof why, resp.body, resp.len);
                note(rep, "server %u (%s) refused: HTTP %ld, %s", j, srv->url, resp.status, why);
            } else {
                note(rep, "server %u (%s) skipped: %s", j, srv->url, why);
            }
            ms_peer_response_free(&resp);
        } else {
            msgs[have] = resp.body; /* taken over: freed below */
            lens[have] = resp.len;
            from[have] = j;
            snprintf(names[have], sizeof names[have], "the answer of server %u", j);
            have++;
        }
        if (code != MS_OK) {
            if (first_code == MS_OK)
                first_code = code;
            else if (code != first_code)
                mixed = true;
        }
        if (have < need)
            continue;
        for (size_t i = 0; i < have; i++) {
            name_ptr[i] = names[i];
            msg_ptr[i] = msgs[i];
        }
        unsigned cheater = 0;
        char cwhy[400] = "";
        ms_err ce = ms_tkms_device_combine_msgs(peers, pubf, hsk, rep->period, id.user_uri,
                                                msg_ptr, lens, name_ptr, have, rsk, ssk, pvt,
                                                &cheater, cwhy, sizeof cwhy);
        if (ce == MS_OK) {
            done = true;
            break;
        }
        if (ce != MS_ERR_THRESHOLD_SHARE || cheater == 0) {
            e = ms_detail_fail(ce, detail, detail_cap, "%s", cwhy);
            break;
        }
        /* a wrong share: name its server, drop it and ask the next */
        note(rep, "server %u sent a wrong share: %s", cheater, cwhy);
        if (first_code == MS_OK)
            first_code = MS_ERR_THRESHOLD_SHARE;
        else if (first_code != MS_ERR_THRESHOLD_SHARE)
            mixed = true;
        for (size_t i = 0; i < have; i++)
            if (from[i] == cheater) {
                free(msgs[i]);
                for (size_t m = i + 1; m < have; m++) {
                    msgs[m - 1] = msgs[m];
                    lens[m - 1] = lens[m];
                    from[m - 1] = from[m];
                    memcpy(names[m - 1], names[m], sizeof names[m]);
                }
                have--;
                break;
            }
    }
    ms_wipe(hsk, sizeof hsk);
    ms_wipe(seed, sizeof seed);
    for (size_t i = 0; i < have; i++) {
        if (done)
            rep->used[rep->n_used++] = from[i];
        free(msgs[i]); /* sealed to the device: nothing in clear */
    }
    if (e == MS_OK && !done) {
        e = mixed || first_code == MS_OK ? MS_ERR_UNREACHABLE : first_code;
        /* the notes on one line, "; " between them */
        char list[sizeof rep->notes + 64];
        size_t o = 0;
        for (const char *c = rep->notes; *c != '\0' && o + 3 < sizeof list; c++) {
            if (*c != '\n') {
                list[o++] = *c;
            } else if (c[1] != '\0') {
                list[o++] = ';';
                list[o++] = ' ';
            }
        }
        list[o] = '\0';
        ms_detail_set(detail, detail_cap,
                      "%zu of the %u shares needed (t+1 of %u servers): %s", have, need, n,
                      list);
    }
    free(table);
    if (e == MS_OK) {
        uint8_t h[32];
        unsigned hl = 0;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        if (md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
            EVP_DigestUpdate(md, rsk, sizeof rsk) == 1 &&
            EVP_DigestUpdate(md, ssk, sizeof ssk) == 1 &&
            EVP_DigestUpdate(md, pvt, sizeof pvt) == 1 && EVP_DigestFinal_ex(md, h, &hl) == 1) {
            ms_hex_encode_lower(rep->fingerprint, h, 8);
            rep->fingerprint[16] = '\0';
        }
        EVP_MD_CTX_free(md);
        e = ms_keystore_import_combined(ks, rep->period_no, rsk, ssk, pvt, opt->now, detail,
                                        detail_cap);
    }
    ms_wipe(rsk, sizeof rsk);
    ms_wipe(ssk, sizeof ssk);
    return e;
}
