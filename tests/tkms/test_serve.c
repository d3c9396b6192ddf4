/*
 * The pieces of threshold serving without a network: the device's signed request (round
 * trip and every refusal), the device file, enrolment at a server (unknown user,
 * duplicates, shared keys, the audit log, the table reloaded while serving) and the
 * batch cache (lookups, no batch, wrong key, a new batch of the same period re-read).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "kms/audit.h"
#include "net/peer_msg.h"
#include "testutil.h"
#include "tkms/batch_cache.h"
#include "tkms/enrol.h"
#include "tkms/log.h"
#include "tkms/node.h"
#include "tkms/request.h"
#include "util/file.h"

static char dir[] = "/tmp/ms-test-tserve-XXXXXX";

static void test_request(void)
{
    uint8_t seed[32], pub[32], other_seed[32], other_pub[32];
    CHECK_ERR(ms_peer_keygen(seed, pub, NULL), MS_OK);
    CHECK_ERR(ms_peer_keygen(other_seed, other_pub, NULL), MS_OK);
    ms_tkms_request r = {.server = 2, .time = 3974400000u};
    memset(r.nonce, 7, sizeof r.nonce);
    strcpy(r.period, "2026-12");
    strcpy(r.device_id, "alice-phone");
    strcpy(r.user, "tel:+447700900123");
    uint8_t buf[MS_TKMS_REQ_MAX];
    size_t len = 0;
    CHECK_ERR(ms_tkms_request_sign(&r, seed, buf, sizeof buf, &len), MS_OK);
    CHECK(len == 4 + 1 + 1 + 8 + 16 + 1 + 7 + 1 + 11 + 2 + 17 + 64);
    CHECK(memcmp(buf, "MSTQ\x01\x02", 6) == 0);
    ms_tkms_request back;
    CHECK_ERR(ms_tkms_request_parse(&back, buf, len, NULL, 0), MS_OK);
    CHECK(back.server == 2 && back.time == r.time && strcmp(back.period, "2026-12") == 0 &&
          strcmp(back.device_id, "alice-phone") == 0 &&
          strcmp(back.user, "tel:+447700900123") == 0 && memcmp(back.nonce, r.nonce, 16) == 0);
    CHECK_ERR(ms_tkms_request_verify(buf, len, pub), MS_OK);
    CHECK_ERR(ms_tkms_request_verify(buf, len, other_pub), MS_ERR_SIGNATURE);
    for (size_t i = 0; i < len; i += 9) { /* any octet altered: the signature fails */
        buf[i] ^= 0x20;
        CHECK_ERR(ms_tkms_request_verify(buf, len, pub), MS_ERR_SIGNATURE);
        buf[i] ^= 0x20;
    }
    /* malformed */
    CHECK_ERR(ms_tkms_request_parse(&back, buf, len - 1, NULL, 0), MS_ERR_BAD_ENCODING);
    CHECK_ERR(ms_tkms_request_parse(&back, buf, 40, NULL, 0), MS_ERR_BAD_ENCODING);
    buf[0] = 'X';
    CHECK_ERR(ms_tkms_request_parse(&back, buf, len, NULL, 0), MS_ERR_BAD_ENCODING);
    buf[0] = 'M';
    buf[4] = 2;
    CHECK_ERR(ms_tkms_request_parse(&back, buf, len, NULL, 0), MS_ERR_BAD_ENCODING);
    buf[4] = 1;
    buf[31] = '/'; /* a character a period may not have */
    CHECK_ERR(ms_tkms_request_parse(&back, buf, len, NULL, 0), MS_ERR_BAD_ENCODING);
    /* what cannot be signed */
    r.server = 0;
    CHECK_ERR(ms_tkms_request_sign(&r, seed, buf, sizeof buf, &len), MS_ERR_ARG);
    r.server = 1;
    strcpy(r.device_id, "a b");
    CHECK_ERR(ms_tkms_request_sign(&r, seed, buf, sizeof buf, &len), MS_ERR_ARG);
    strcpy(r.device_id, "x");
    CHECK_ERR(ms_tkms_request_sign(&r, seed, buf, 10, &len), MS_ERR_BUFFER_TOO_SMALL);
}

static void test_names(void)
{
    CHECK(ms_tkms_device_id_ok("phone-1.a_b:c@d"));
    CHECK(!ms_tkms_device_id_ok(""));
    CHECK(!ms_tkms_device_id_ok("a/b"));
    char long_id[80];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    CHECK(!ms_tkms_device_id_ok(long_id));
    CHECK(ms_tkms_uri_ok("sip:alice@example.org"));
    CHECK(!ms_tkms_uri_ok("tel:+44 77"));
    CHECK(!ms_tkms_uri_ok(""));
}

static void device(ms_tkms_device *d, const char *user, const char *id)
{
    memset(d, 0, sizeof *d);
    strcpy(d->user, user);
    strcpy(d->device_id, id);
    RAND_bytes(d->hpke_pub, 32);
    RAND_bytes(d->sign_pub, 32);
}

static void test_device_file(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/alice.dev", dir);
    ms_tkms_device d, back;
    device(&d, "tel:+447700900123", "alice-phone");
    CHECK_ERR(ms_tkms_device_file_write(path, &d, NULL, 0), MS_OK);
    CHECK_ERR(ms_tkms_device_file_write(path, &d, NULL, 0), MS_ERR_EXISTS);
    CHECK_ERR(ms_tkms_device_file_read(path, &back, NULL, 0), MS_OK);
    CHECK(memcmp(&d, &back, sizeof d) == 0);
    static const char *const bad[] = {
        "mikeysakke-tkms-device 2\nuser tel:+1\n",
        "mikeysakke-tkms-device 1\nuser tel:+1\ndevice x\nhpke 00\nsign 00\n",
        "mikeysakke-tkms-device 1\nuser tel:+1\ndevice x\n",
        "mikeysakke-tkms-device 1\nwho tel:+1\n",
    };
    char detail[200];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "%s/bad%zu.dev", dir, i);
        CHECK_ERR(ms_file_write_atomic(path, bad[i], strlen(bad[i]), 0644, 0, NULL, 0), MS_OK);
        detail[0] = '\0';
        CHECK_ERR(ms_tkms_device_file_read(path, &back, detail, sizeof detail), MS_ERR_CONFIG);
        CHECK(strstr(detail, path) != NULL);
    }
    snprintf(path, sizeof path, "%s/none.dev", dir);
    CHECK_ERR(ms_tkms_device_file_read(path, &back, NULL, 0), MS_ERR_IO);
}

/* A records file of period P with the given users (records with t = 1, zeros). */
static void write_records(const char *period, const char *const *users, size_t n)
{
    uint8_t *buf = malloc(64 + n * (300 + MS_TKMS_RECORD_MAX));
    size_t o = 0;
    memcpy(buf, "mikeysakke-tkms-records 1\n", 26);
    o = 26;
    ms_tkms_record r;
    memset(&r, 0, sizeof r);
    r.t = 1;
    r.d = 1;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(period) + strlen(users[i]) + 2;
        buf[o] = (uint8_t)(l >> 8);
        buf[o + 1] = (uint8_t)l;
        memcpy(buf + o + 2, period, strlen(period) + 1);
        memcpy(buf + o + 2 + strlen(period) + 1, users[i], strlen(users[i]) + 1);
        o += 2 + l;
        r.sid[0] = (uint8_t)i; /* tells the records apart */
        o += ms_tkms_record_encode(&r, buf + o);
    }
    char path[256];
    snprintf(path, sizeof path, "%s/batch-%s.records", dir, period);
    CHECK_ERR(ms_file_write_atomic(path, buf, o, 0644, 0, NULL, 0), MS_OK);
    free(buf);
}

static void test_enrol(void)
{
    static const char *const users[] = {"tel:+447700900123", "tel:+447700900456"};
    write_records("2026-12", users, 2);
    ms_audit *log = NULL;
    char detail[300] = "";
    CHECK_ERR(ms_tkms_log_open(&log, dir, detail, sizeof detail), MS_OK);
    ms_tkms_devices *table = NULL;
    CHECK_ERR(ms_tkms_devices_open(&table, dir, NULL, 0), MS_OK);
    CHECK(ms_tkms_devices_count(table) == 0);

    ms_tkms_device a, b, c, found;
    device(&a, users[0], "alice-phone");
    device(&b, users[1], "bob-phone");
    CHECK_ERR(ms_tkms_devices_find(table, a.user, a.device_id, &found), MS_ERR_DEVICE_UNKNOWN);
    CHECK_ERR(ms_tkms_enrol(dir, log, &a, detail, sizeof detail), MS_OK);
    CHECK_ERR(ms_tkms_enrol(dir, log, &b, detail, sizeof detail), MS_OK);
    /* the serving table sees them without a restart */
    CHECK_ERR(ms_tkms_devices_find(table, a.user, a.device_id, &found), MS_OK);
    CHECK(memcmp(&found, &a, sizeof a) == 0);
    CHECK(ms_tkms_devices_count(table) == 2);
    CHECK_ERR(ms_tkms_devices_find(table, b.user, a.device_id, &found), MS_ERR_DEVICE_UNKNOWN);

    CHECK_ERR(ms_tkms_enrol(dir, log, &a, detail, sizeof detail), MS_ERR_EXISTS);
    CHECK(strstr(detail, "enrolled already") != NULL);
    c = b;
    strcpy(c.device_id, "bob-tablet");
    CHECK_ERR(ms_tkms_enrol(dir, log, &c, detail, sizeof detail), MS_ERR_EXISTS);
    device(&c, "tel:+15550000000", "x");
    CHECK_ERR(ms_tkms_enrol(dir, log, &c, detail, sizeof detail), MS_ERR_USER_UNKNOWN);
    CHECK(strstr(detail, "tel:+15550000000") != NULL);
    device(&c, users[1], "bob-tablet");
    CHECK_ERR(ms_tkms_enrol(dir, log, &c, detail, sizeof detail), MS_OK);
    ms_audit_close(log);

    /* two enrolments logged, each verifiable with audit.pub alone */
    uint8_t pub[32];
    uint64_t entries = 0, bad = 0;
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, MS_TKMS_LOG_NAME);
    CHECK_ERR(ms_tkms_log_public(dir, pub, NULL, 0), MS_OK);
    CHECK_ERR(ms_audit_verify(path, pub, 0, NULL, &entries, &bad, NULL, 0), MS_OK);
    CHECK(entries == 3);
    /* a second handle continues the same chain */
    CHECK_ERR(ms_tkms_log_open(&log, dir, NULL, 0), MS_OK);
    CHECK_ERR(ms_audit_append(log, 0, "share", NULL, 0, NULL, NULL), MS_OK);
    ms_audit_close(log);
    CHECK_ERR(ms_audit_verify(path, pub, 0, NULL, &entries, &bad, NULL, 0), MS_OK);
    CHECK(entries == 4);
    ms_tkms_devices_close(table);
}

static void write_sealed(const char *period, const uint8_t key[32], const char *user,
                         uint8_t fill)
{
    size_t l = strlen(period) + strlen(user) + 2, n = 2 + l + MS_SAKKE_SECRET_BYTES + 32;
    uint8_t plain[600], out[700], nonce[12];
    plain[0] = (uint8_t)(l >> 8);
    plain[1] = (uint8_t)l;
    memcpy(plain + 2, period, strlen(period) + 1);
    memcpy(plain + 2 + strlen(period) + 1, user, strlen(user) + 1);
    memset(plain + 2 + l, fill, MS_SAKKE_SECRET_BYTES + 32);
    RAND_bytes(nonce, 12);
    memcpy(out, "mikeysakke-tkms-shares 1\n", 25);
    memcpy(out + 25, nonce, 12);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ol = 0;
    EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce);
    EVP_EncryptUpdate(c, NULL, &ol, (const uint8_t *)period, (int)strlen(period));
    EVP_EncryptUpdate(c, out + 37, &ol, plain, (int)n);
    EVP_EncryptFinal_ex(c, out + 37 + ol, &ol);
    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + 37 + n);
    EVP_CIPHER_CTX_free(c);
    char path[256];
    snprintf(path, sizeof path, "%s/batch-%s.sealed", dir, period);
    CHECK_ERR(ms_file_write_atomic(path, out, 37 + n + 16, 0600, 0, NULL, 0), MS_OK);
}

static void test_cache(void)
{
    uint8_t key[32], wrong[32];
    RAND_bytes(key, 32);
    memcpy(wrong, key, 32);
    wrong[0] ^= 1;
    static const char *const users[] = {"tel:+447700900789"};
    write_records("2027-01", users, 1);
    write_sealed("2027-01", key, users[0], 0x11);
    tkms_batch_cache *c = NULL;
    CHECK_ERR(tkms_batch_cache_new(&c), MS_OK);
    uint8_t id[64], u[MS_SAKKE_SECRET_BYTES], ssk[MS_ECCSI_SCALAR_BYTES],
        rec[MS_TKMS_RECORD_MAX];
    size_t il = (size_t)snprintf((char *)id, sizeof id, "2027-01%c%s", 0, users[0]) + 1, rl = 0;
    CHECK_ERR(tkms_batch_cache_slot(c, dir, key, "2027-01", id, il, u, ssk, rec, sizeof rec, &rl,
                                    NULL, NULL, 0),
              MS_OK);
    CHECK(u[0] == 0x11 && ssk[31] == 0x11 && rl > 0 && rec[0] == 1);
    CHECK_ERR(tkms_batch_cache_slot(c, dir, key, "2027-01", id, il - 1, u, ssk, rec, sizeof rec,
                                    &rl, NULL, NULL, 0),
              MS_ERR_IDENTITY);
    CHECK_ERR(tkms_batch_cache_slot(c, dir, key, "2027-01", id, il, u, ssk, rec, 10, &rl, NULL, NULL, 0),
              MS_ERR_BUFFER_TOO_SMALL);
    CHECK_ERR(tkms_batch_cache_slot(c, dir, key, "2027-02", id, il, u, ssk, rec, sizeof rec, &rl,
                                    NULL, NULL, 0),
              MS_ERR_IO);
    /* a new batch of the same period (written by rename): read again */
    usleep(10000);
    write_sealed("2027-01", key, users[0], 0x22);
    CHECK_ERR(tkms_batch_cache_slot(c, dir, key, "2027-01", id, il, u, ssk, rec, sizeof rec, &rl,
                                    NULL, NULL, 0),
              MS_OK);
    CHECK(u[0] == 0x22);
    tkms_batch_cache_free(c);
    CHECK_ERR(tkms_batch_cache_new(&c), MS_OK);
    char detail[300] = "";
    CHECK_ERR(tkms_batch_cache_slot(c, dir, wrong, "2027-01", id, il, u, ssk, rec, sizeof rec,
                                    &rl, NULL, detail, sizeof detail),
              MS_ERR_SEALED_FILE);
    CHECK(strstr(detail, "does not open") != NULL);
    tkms_batch_cache_free(c);
}

/* The cache's Merkle levels give the same root and inclusion proof as computing the
 * tree afresh (src/tkms/root.c), for trees of 1 to 9 records and each position. */
static void test_cache_proof(void)
{
    static const char *const users[] = {"tel:+1", "tel:+2", "tel:+3", "tel:+4", "tel:+5",
                                        "tel:+6", "tel:+7", "tel:+8", "tel:+9"};
    uint8_t key[32];
    RAND_bytes(key, 32);
    for (size_t n = 1; n <= 9; n++) {
        uint8_t leaves[9][32], enc[MS_TKMS_RECORD_MAX];
        ms_tkms_record r;
        memset(&r, 0, sizeof r);
        r.t = 1;
        r.d = 1;
        for (size_t i = 0; i < n; i++) {
            r.sid[0] = (uint8_t)i;
            size_t l = ms_tkms_record_encode(&r, enc);
            CHECK_ERR(tkms_merkle_leaf(leaves[i], enc, l), MS_OK);
        }
        for (size_t k = 0; k < n; k++) {
            char period[16];
            snprintf(period, sizeof period, "2028-%02zu", (n * 9 + k) % 90 + 10);
            write_records(period, users, n);
            write_sealed(period, key, users[k], 0x33);
            tkms_batch_cache *c = NULL;
            CHECK_ERR(tkms_batch_cache_new(&c), MS_OK);
            uint8_t id[64], u[MS_SAKKE_SECRET_BYTES], ssk[MS_ECCSI_SCALAR_BYTES], rec[MS_TKMS_RECORD_MAX];
            size_t il = (size_t)snprintf((char *)id, sizeof id, "%s%c%s", period, 0, users[k]) + 1,
                   rl = 0, plen = 0;
            static tkms_cache_proof cp;
            uint8_t root[32], proof[TKMS_PROOF_MAX][32];
            CHECK_ERR(tkms_batch_cache_slot(c, dir, key, period, id, il, u, ssk, rec, sizeof rec,
                                            &rl, &cp, NULL, 0),
                      MS_OK);
            CHECK_ERR(tkms_merkle_root(root, (const uint8_t(*)[32])leaves, n, k, proof, &plen),
                      MS_OK);
            CHECK(cp.index == k && cp.count == n);
            CHECK(memcmp(cp.root, root, 32) == 0);
            CHECK(cp.len == plen && memcmp(cp.hashes, proof, plen * 32) == 0);
            tkms_batch_cache_free(c);
        }
    }
}

int main(void)
{
    if (mkdtemp(dir) == NULL)
        return 1;
    test_request();
    test_names();
    test_device_file();
    test_enrol();
    test_cache();
    test_cache_proof();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        CHECK(0);
    return ms_test_finish();
}
