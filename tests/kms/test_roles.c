/*
 * KMS roles (src/kms/roles.c and the facade's checks): role keys and their files, the
 * request text, approvals, signed commands (role, time, replay, tampering, another KMS)
 * and a user's second device (officers' quorum, the user's own device, another user's
 * device, replay, expiry), each refusal and the audit entries they leave.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kms/roles.h"
#include "kmsif/kmsif.h"
#include "mikeysakke/kms.h"
#include "mikeysakke/mikey.h"
#include "kms_fixture.h"
#include "testutil.h"

#define T0 (1759406400ull + 2208988800ull) /* 2025-10-02T12:00:00Z */
#define UNIX0 1759406400ull
#define ALICE "tel:+447700900123"
#define BOB "tel:+447700900456"
#define KMS_URI "kms.example.org"

static uint64_t clock_now = T0;
static uint64_t fixed_clock(void *ctx)
{
    return *(const uint64_t *)ctx;
}

static const uint8_t pass[] = "roles test passphrase";
/* 0 operator, 1-3 officers, 4-5 auditors, 6 nobody */
static uint8_t seed[7][MS_ROLE_KEY_BYTES], pub[7][MS_ROLE_KEY_BYTES];

static void test_keys_and_files(const char *root)
{
    uint8_t sig[MS_ROLE_SIG_BYTES];
    const char text[] = "mikeysakke-request 1\nkind=command\n";
    CHECK_ERR(ms_role_sign(seed[0], MS_ROLE_CTX_COMMAND, text, strlen(text), sig), MS_OK);
    CHECK_ERR(ms_role_verify(pub[0], MS_ROLE_CTX_COMMAND, text, strlen(text), sig), MS_OK);
    /* a command signature is no approval, and another key's signature is nothing */
    CHECK_ERR(ms_role_verify(pub[0], MS_ROLE_CTX_APPROVAL, text, strlen(text), sig),
              MS_ERR_SIGNATURE);
    CHECK_ERR(ms_role_verify(pub[1], MS_ROLE_CTX_COMMAND, text, strlen(text), sig),
              MS_ERR_SIGNATURE);
    sig[10] ^= 1;
    CHECK_ERR(ms_role_verify(pub[0], MS_ROLE_CTX_COMMAND, text, strlen(text), sig),
              MS_ERR_SIGNATURE);

    char path[600], line[2 * MS_ROLE_KEY_BYTES + 2], detail[256];
    uint8_t got[MS_ROLE_KEY_BYTES];
    snprintf(path, sizeof path, "%s/role.key", root);
    ms_role_hex_line(line, seed[0]);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fputs(line, f);
    fclose(f);
    chmod(path, 0644);
    CHECK_ERR(ms_role_key_read(path, got, detail, sizeof detail), MS_ERR_KEYFILE_MODE);
    CHECK(strstr(detail, "0644") != NULL);
    CHECK_ERR(ms_role_pub_read(path, got, detail, sizeof detail), MS_OK); /* public: any mode */
    chmod(path, 0600);
    CHECK_ERR(ms_role_key_read(path, got, detail, sizeof detail), MS_OK);
    CHECK(memcmp(got, seed[0], sizeof got) == 0);
    f = fopen(path, "w");
    if (f != NULL) {
        fputs("not hex\n", f);
        fclose(f);
    }
    CHECK_ERR(ms_role_key_read(path, got, detail, sizeof detail), MS_ERR_ARG);
    snprintf(path, sizeof path, "%s/absent.key", root);
    CHECK_ERR(ms_role_key_read(path, got, detail, sizeof detail), MS_ERR_IO);
}

static void test_request_text(void)
{
    char buf[MS_REQUEST_MAX + 1], v[64];
    size_t len = 0;
    CHECK_ERR(ms_request_start(buf, sizeof buf, &len), MS_OK);
    CHECK_ERR(ms_request_add(buf, sizeof buf, &len, "user", BOB), MS_OK);
    CHECK_ERR(ms_request_add(buf, sizeof buf, &len, "user", ALICE), MS_ERR_ARG); /* unique */
    CHECK_ERR(ms_request_add(buf, sizeof buf, &len, "reason", "a\nkind=extract"), MS_ERR_ARG);
    CHECK_ERR(ms_request_add(buf, sizeof buf, &len, "Bad", "x"), MS_ERR_ARG);
    CHECK_ERR(ms_request_add(buf, sizeof buf, &len, "reason", "case = 7"), MS_OK);
    CHECK_ERR(ms_request_check(buf, len), MS_OK);
    CHECK_ERR(ms_request_get(buf, len, "reason", v, sizeof v), MS_OK);
    CHECK(strcmp(v, "case = 7") == 0);
    CHECK_ERR(ms_request_get(buf, len, "period", v, sizeof v), MS_ERR_ARG);
    CHECK_ERR(ms_request_get(buf, len, "user", v, 4), MS_ERR_BUFFER_TOO_SMALL);
    CHECK_ERR(ms_request_check(buf, len - 1), MS_ERR_ARG); /* last line without newline */
    const char dup[] = "mikeysakke-request 1\nuser=a\nuser=b\n";
    CHECK_ERR(ms_request_check(dup, strlen(dup)), MS_ERR_ARG);
    const char head[] = "mikeysakke-request 2\nuser=a\n";
    CHECK_ERR(ms_request_check(head, strlen(head)), MS_ERR_ARG);

    ms_approval a, b;
    char line[MS_APPROVAL_TEXT_MAX];
    CHECK_ERR(ms_approval_sign(seed[4], buf, len, &a), MS_OK);
    CHECK_ERR(ms_approval_format(&a, line, sizeof line), MS_OK);
    CHECK_ERR(ms_approval_parse(line, strlen(line), &b), MS_OK);
    CHECK(b.kind == MS_APPROVAL_KEY && memcmp(b.pub, pub[4], 32) == 0 &&
          memcmp(b.sig, a.sig, 64) == 0);
    CHECK_ERR(ms_approval_parse("key 00 11", 9, &b), MS_ERR_ARG);
    CHECK_ERR(ms_approval_parse("device bad/id 00", 16, &b), MS_ERR_ARG);
    CHECK_ERR(ms_approval_sign(seed[4], "no request", 10, &a), MS_ERR_ARG);
}

/* A command as `kms` sends it: signed by key `who` at unix time `when`. */
static ms_err command(ms_kms *k, int who, const char *kms_uri, const char *verb,
                      uint64_t when, const char *nonce, char role[32], int tamper)
{
    char text[MS_REQUEST_MAX + 1], t[24];
    size_t len = 0;
    uint8_t sig[MS_ROLE_SIG_BYTES];
    snprintf(t, sizeof t, "%llu", (unsigned long long)when);
    if (ms_request_start(text, sizeof text, &len) != MS_OK ||
        ms_request_add(text, sizeof text, &len, "kind", "command") != MS_OK ||
        ms_request_add(text, sizeof text, &len, "kms", kms_uri) != MS_OK ||
        ms_request_add(text, sizeof text, &len, "verb", verb) != MS_OK ||
        ms_request_add(text, sizeof text, &len, "user", BOB) != MS_OK ||
        ms_request_add(text, sizeof text, &len, "time", t) != MS_OK ||
        ms_request_add(text, sizeof text, &len, "nonce", nonce) != MS_OK ||
        ms_role_sign(seed[who], tamper == 2 ? MS_ROLE_CTX_APPROVAL : MS_ROLE_CTX_COMMAND, text,
                     len, sig) != MS_OK)
        return MS_ERR_INTERNAL;
    if (tamper == 1)
        text[len - 40] ^= 1; /* inside the user's URI... or nonce: changed after signing */
    return ms_kms_authorise(k, role, text, len, pub[who], sig);
}

static int grep_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf == NULL)
        return 0;
    buf[n] = '\0';
    int found = strstr(buf, needle) != NULL;
    free(buf);
    return found;
}

static void approval_text(int who, const char *req, size_t len, char out[MS_APPROVAL_TEXT_MAX])
{
    ms_approval a;
    CHECK_ERR(ms_approval_sign(seed[who], req, len, &a), MS_OK);
    CHECK_ERR(ms_approval_format(&a, out, MS_APPROVAL_TEXT_MAX), MS_OK);
}

static int count_notable(void *ctx, const char *kind, const char *entry)
{
    size_t *counts = ctx;
    counts[strcmp(kind, "extract") == 0 ? 0 : 1]++;
    CHECK(strstr(entry, " sig=") == NULL && strstr(entry, " prev=") == NULL);
    return 0;
}

static void test_facade(const char *root)
{
    char dir[600], log[700];
    snprintf(dir, sizeof dir, "%s/kms", root);
    snprintf(log, sizeof log, "%s/audit.log", dir);
    ms_kms_config cfg = {.kms_uri = KMS_URI,
                         .id_scheme = MS_MIKEY_ID_SCHEME_TEL_MONTHLY,
                         .first_time = T0,
                         .operator_key = pub[0],
                         .n_officers = 3,
                         .officer_keys = (const uint8_t(*)[MS_KMS_ROLE_KEY_BYTES])pub[1],
                         .n_auditors = 2,
                         .auditor_keys = (const uint8_t(*)[MS_KMS_ROLE_KEY_BYTES])pub[4],
                         .approvals = 2};
    ms_kms_seal_material m = {.method = MS_KMS_SEAL_PASSPHRASE,
                              .passphrase = pass,
                              .passphrase_len = sizeof pass - 1,
                              .scrypt_log2_n = 10};
    ms_kms_handout *h = calloc(1, sizeof *h);
    if (h == NULL)
        return;
    ms_kms_config bad = cfg;
    bad.enrol_approvals = 4; /* more than the officers */
    CHECK_ERR(ms_kms_create(h, dir, &bad, &m, NULL, NULL, 0), MS_ERR_ARG);
    CHECK_ERR(ms_kms_create(h, dir, &cfg, &m, NULL, NULL, 0), MS_OK);
    free(h);
    CHECK(grep_file(log, "approvals=2/2 enrol_approvals=2/3"));
    ms_kms *k = NULL;
    CHECK_ERR(ms_kms_open(&k, dir, NULL, NULL, 0), MS_OK);
    if (k == NULL)
        return;
    ms_kms_set_clock(k, fixed_clock, &clock_now);
    CHECK_ERR(ms_kms_unseal_passphrase(k, pass, sizeof pass - 1), MS_OK);

    /* signed commands */
    char role[32];
    const char *n1 = "00112233445566778899aabbccddeeff", *n2 = "00112233445566778899aabbccddeef0";
    CHECK_ERR(command(k, 0, KMS_URI, "user_add", UNIX0, n1, role, 0), MS_OK);
    CHECK(strcmp(role, "operator") == 0);
    CHECK_ERR(ms_kms_user_add(k, BOB), MS_OK);
    ms_kms_actor_clear(k);
    CHECK(grep_file(log, "event=user_add user=" BOB " by=operator"));
    CHECK_ERR(command(k, 0, KMS_URI, "user_add", UNIX0, n1, role, 0), MS_ERR_REQUEST_STALE);
    CHECK_ERR(command(k, 1, KMS_URI, "user_add", UNIX0, n2, role, 0), MS_ERR_ROLE); /* officer */
    CHECK_ERR(command(k, 4, KMS_URI, "enrol", UNIX0, n2, role, 0), MS_ERR_ROLE);    /* auditor */
    CHECK_ERR(command(k, 0, KMS_URI, "enrol", UNIX0, n2, role, 0), MS_ERR_ROLE);    /* operator */
    CHECK_ERR(command(k, 6, KMS_URI, "user_add", UNIX0, n2, role, 0), MS_ERR_ROLE); /* nobody */
    CHECK_ERR(command(k, 0, KMS_URI, "user_add", UNIX0, n2, role, 1), MS_ERR_ROLE); /* tampered */
    CHECK_ERR(command(k, 0, KMS_URI, "user_add", UNIX0, n2, role, 2), MS_ERR_ROLE); /* approval sig */
    CHECK_ERR(command(k, 0, KMS_URI, "no_such_verb", UNIX0, n2, role, 0), MS_ERR_ROLE);
    CHECK_ERR(command(k, 0, "other.example.org", "user_add", UNIX0, n2, role, 0), MS_ERR_ARG);
    CHECK_ERR(command(k, 0, KMS_URI, "user_add", UNIX0 - 600, n2, role, 0), MS_ERR_REQUEST_STALE);
    CHECK_ERR(command(k, 0, KMS_URI, "user_add", UNIX0 + 600, n2, role, 0), MS_ERR_REQUEST_STALE);
    CHECK_ERR(command(k, 2, KMS_URI, "enrol", UNIX0 + 100, n2, role, 0), MS_OK);
    CHECK(strcmp(role, "officer-2") == 0);
    ms_kms_actor_clear(k);

    /* the first device; a second only with approval */
    CHECK_ERR(ms_kms_user_add(k, ALICE), MS_OK);
    char *xml = malloc(MS_KMSIF_MAX_XML);
    size_t xml_len = 0;
    if (xml == NULL) {
        ms_kms_close(k);
        return;
    }
    CHECK_ERR(ms_kms_device_enrol(k, xml, MS_KMSIF_MAX_XML, &xml_len, BOB, "bob-1"), MS_OK);
    ms_device_keys *bob1 = calloc(1, sizeof *bob1);
    ms_kms_certificate cert;
    CHECK(bob1 != NULL);
    if (bob1 == NULL) {
        free(xml);
        ms_kms_close(k);
        return;
    }
    CHECK_ERR(ms_kmsif_enrolment_parse(bob1, &cert, xml, xml_len, NULL, 0), MS_OK);
    CHECK_ERR(ms_kms_device_enrol(k, xml, MS_KMSIF_MAX_XML, &xml_len, ALICE, "alice-1"), MS_OK);
    ms_device_keys *alice1 = calloc(1, sizeof *alice1);
    if (alice1 != NULL)
        CHECK_ERR(ms_kmsif_enrolment_parse(alice1, &cert, xml, xml_len, NULL, 0), MS_OK);
    CHECK_ERR(ms_kms_device_enrol(k, xml, MS_KMSIF_MAX_XML, &xml_len, BOB, "spy"),
              MS_ERR_APPROVAL);
    CHECK(xml_len == 0);

    char req[MS_REQUEST_MAX + 1], ap[3][MS_APPROVAL_TEXT_MAX];
    size_t req_len = 0;
    CHECK_ERR(ms_kms_request_enrol(k, req, sizeof req, &req_len, BOB, "bob-2", 3600), MS_OK);
    approval_text(1, req, req_len, ap[0]);
    approval_text(3, req, req_len, ap[1]);
    approval_text(4, req, req_len, ap[2]); /* an auditor */
    const char *one[] = {ap[0]};
    const char *twice[] = {ap[0], ap[0]};
    const char *with_auditor[] = {ap[0], ap[2]};
    const char *quorum[] = {ap[0], ap[1]};
    CHECK_ERR(ms_kms_device_enrol_approved(k, xml, MS_KMSIF_MAX_XML, &xml_len, req, req_len,
                                           one, 1), MS_ERR_APPROVAL);
    CHECK_ERR(ms_kms_device_enrol_approved(k, xml, MS_KMSIF_MAX_XML, &xml_len, req, req_len, twice,
                                           2), MS_ERR_APPROVAL);
    CHECK_ERR(ms_kms_device_enrol_approved(k, xml, MS_KMSIF_MAX_XML, &xml_len, req, req_len,
                                           with_auditor, 2), MS_ERR_APPROVAL);
    /* the approvals are over bob-2: the same request for another device is another text */
    char other[MS_REQUEST_MAX + 1];
    memcpy(other, req, req_len + 1);
    char *d = strstr(other, "device=bob-2");
    if (d != NULL)
        d[11] = '3';
    CHECK_ERR(ms_kms_device_enrol_approved(k, xml, MS_KMSIF_MAX_XML, &xml_len, other, req_len,
                                           quorum, 2), MS_ERR_APPROVAL);
    /* expired: the clock a day and more ahead */
    clock_now = T0 + 3601;
    CHECK_ERR(ms_kms_device_enrol_approved(k, xml, MS_KMSIF_MAX_XML, &xml_len, req, req_len,
                                           quorum, 2), MS_ERR_REQUEST_STALE);
    clock_now = T0;
    CHECK_ERR(ms_kms_device_enrol_approved(k, xml, MS_KMSIF_MAX_XML, &xml_len, req, req_len,
                                           quorum, 2), MS_OK);
    CHECK(grep_file(log, "device=bob-2 second_device=1 approved_by=officer-1,officer-3 nonce="));
    /* the approved request again: bob-2 exists now */
    CHECK_ERR(ms_kms_device_enrol_approved(k, xml, MS_KMSIF_MAX_XML, &xml_len, req, strlen(req),
                                           quorum, 2), MS_ERR_EXISTS);

    /* the user's own device approves: a MAC with its InK over the request */
    CHECK_ERR(ms_kms_request_enrol(k, req, sizeof req, &req_len, BOB, "bob-3", 3600), MS_OK);
    ms_approval da;
    char dline[MS_APPROVAL_TEXT_MAX];
    const char *dev[] = {dline};
    if (alice1 != NULL) {
        /* another user's device approves nothing for Bob */
        CHECK_ERR(ms_approval_device_mac(alice1->ink, "alice-1", req, req_len, &da), MS_OK);
        CHECK_ERR(ms_approval_format(&da, dline, sizeof dline), MS_OK);
        CHECK_ERR(ms_kms_device_enrol_approved(k, xml, MS_KMSIF_MAX_XML, &xml_len, req, req_len,
                                               dev, 1), MS_ERR_APPROVAL);
        /* Alice's key under Bob's device id: a wrong MAC */
        CHECK_ERR(ms_approval_device_mac(alice1->ink, "bob-1", req, req_len, &da), MS_OK);
        CHECK_ERR(ms_approval_format(&da, dline, sizeof dline), MS_OK);
        CHECK_ERR(ms_kms_device_enrol_approved(k, xml, MS_KMSIF_MAX_XML, &xml_len, req, req_len,
                                               dev, 1), MS_ERR_APPROVAL);
    }
    CHECK_ERR(ms_approval_device_mac(bob1->ink, "bob-1", req, req_len, &da), MS_OK);
    CHECK_ERR(ms_approval_format(&da, dline, sizeof dline), MS_OK);
    CHECK_ERR(ms_kms_device_enrol_approved(k, xml, MS_KMSIF_MAX_XML, &xml_len, req, req_len,
                                           dev, 1), MS_OK);
    CHECK(grep_file(log, "device=bob-3 second_device=1 approved_by=device:bob-1"));
    /* and once only */
    CHECK_ERR(ms_kms_device_enrol_approved(k, xml, MS_KMSIF_MAX_XML, &xml_len, req, req_len,
                                           dev, 1), MS_ERR_EXISTS);

    ms_wipe(bob1, sizeof *bob1);
    free(bob1);
    if (alice1 != NULL)
        ms_wipe(alice1, sizeof *alice1);
    free(alice1);
    free(xml);
    uint64_t n = 0, first_bad = 0;
    ms_kms_close(k);
    CHECK_ERR(ms_kms_audit_verify(&n, &first_bad, dir, NULL, 0), MS_OK);
    size_t counts[2] = {0, 0};
    CHECK_ERR(ms_kms_audit_notable(log, count_notable, counts), MS_OK);
    CHECK(counts[0] == 0 && counts[1] == 2); /* bob-2 and bob-3; not bob-1 or alice-1 */
    CHECK_ERR(ms_kms_audit_notable("/nonexistent/audit.log", count_notable, counts), MS_ERR_IO);
}

int main(void)
{
    char root[64];
    if (!ms_test_tmpdir(root, sizeof root, "roles"))
        return 1;
    for (int i = 0; i < 7; i++)
        CHECK_ERR(ms_role_keygen(seed[i], pub[i], NULL), MS_OK);
    test_keys_and_files(root);
    test_request_text();
    test_facade(root);
    ms_test_rmtree(root);
    return ms_test_finish();
}
