/*
 * The KMS facade (include/mikeysakke/kms.h) end to end in one process: create, open
 * sealed, unseal by passphrase and by shares, users, enrolment, issuance, export,
 * audited extraction, rollover, seal, audit verification; and one check per refusal:
 * sealed, wrong passphrase, too few / corrupted / duplicated share, unknown or
 * suspended user, wrong credential, too few approvals, multi-user or multi-period
 * extraction, an audit log that cannot be written (nothing released), rollover not in
 * the future, an edited audit log.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kms/roles.h"
#include "kmsif/kmsif.h"
#include "mikeysakke/kms.h"
#include "mikeysakke/mikey.h"
#include "kms_fixture.h"
#include "testutil.h"

/* 2025-10-02T12:00:00Z in NTP seconds: key period (125 * 12 + 9) = 1509. */
#define T0 (1759406400ull + 2208988800ull)
#define P0 1509u
#define ALICE "tel:+447700900123"
#define BOB "tel:+447700900456"

static uint64_t fixed_clock(void *ctx)
{
    return *(const uint64_t *)ctx;
}

static uint64_t clock_now = T0;

static const uint8_t pass[] = "correct horse battery staple";

static ms_err open_kms(ms_kms **k, const char *dir)
{
    ms_err e = ms_kms_open(k, dir, NULL, NULL, 0);
    if (e == MS_OK)
        ms_kms_set_clock(*k, fixed_clock, &clock_now);
    return e;
}

static int count_user(void *ctx, const char *uri, bool suspended, size_t n_devices)
{
    (void)uri;
    (void)suspended;
    (void)n_devices;
    (*(int *)ctx)++;
    return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static off_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

/* Role keys for a test KMS: 0 operator, 1-2 officers, 3-5 auditors. */
static ms_test_roles roles;

static void set_roles(ms_kms_config *cfg)
{
    cfg->n_officers = 2;
    ms_test_kms_roles(cfg, &roles);
}

/* The text form of role key `who`'s approval of req. */
static void approval_of(int who, const char *req, size_t len, char out[MS_APPROVAL_TEXT_MAX])
{
    ms_approval a;
    CHECK_ERR(ms_approval_sign(roles.seed[who], req, len, &a), MS_OK);
    CHECK_ERR(ms_approval_format(&a, out, MS_APPROVAL_TEXT_MAX), MS_OK);
}

static void test_passphrase_kms(const char *root)
{
    char dir[512], path[800];
    snprintf(dir, sizeof dir, "%s/pass", root);
    ms_kms_config cfg = {.kms_uri = "kms.example.org",
                         .id_scheme = MS_MIKEY_ID_SCHEME_TEL_MONTHLY,
                         .first_time = T0,
                         .n_auditors = 3,
                         .approvals = 2};
    ms_kms_seal_material m = {.method = MS_KMS_SEAL_PASSPHRASE,
                              .passphrase = pass,
                              .passphrase_len = sizeof pass - 1,
                              .scrypt_log2_n = 10};
    ms_kms_handout *h = calloc(1, sizeof *h);
    set_roles(&cfg);
    ms_kms_config dup = cfg;
    dup.auditor_keys = (const uint8_t(*)[MS_KMS_ROLE_KEY_BYTES])roles.pub[2]; /* officer-2 twice */
    CHECK_ERR(ms_kms_create(h, dir, &dup, &m, NULL, NULL, 0), MS_ERR_ARG);
    dup = cfg;
    dup.operator_key = NULL;
    CHECK_ERR(ms_kms_create(h, dir, &dup, &m, NULL, NULL, 0), MS_ERR_ARG);
    CHECK_ERR(ms_kms_create(h, dir, &cfg, &m, NULL, NULL, 0), MS_OK);
    CHECK(h->n_shares == 0);
    char reason[PATH_MAX + 128] = "";
    CHECK_ERR(ms_kms_create(h, dir, &cfg, &m, NULL, reason, sizeof reason), MS_ERR_EXISTS);
    CHECK(strstr(reason, "already holds a KMS (kms.db)") != NULL);
    /* opening names what is missing and why */
    char missing[PATH_MAX];
    snprintf(missing, sizeof missing, "%s/no/such", dir);
    ms_kms *none = NULL;
    CHECK_ERR(ms_kms_open(&none, missing, NULL, reason, sizeof reason), MS_ERR_IO);
    CHECK(none == NULL && strstr(reason, "No such file or directory") != NULL);
    CHECK_ERR(ms_kms_create(h, missing, &cfg, &m, NULL, reason, sizeof reason), MS_ERR_IO);
    CHECK(strstr(reason, "cannot create the KMS directory") != NULL);
    snprintf(missing, sizeof missing, "%s/empty", dir);
    CHECK(mkdir(missing, 0700) == 0);
    CHECK_ERR(ms_kms_open(&none, missing, NULL, reason, sizeof reason), MS_ERR_STORE);
    CHECK(strstr(reason, "holds no KMS") != NULL);
    ms_wipe(h, sizeof *h);
    free(h);

    ms_kms *k = NULL;
    CHECK_ERR(open_kms(&k, dir), MS_OK);
    if (k == NULL)
        return;

    /* sealed: read-only works, the rest is refused */
    ms_kms_status st;
    CHECK_ERR(ms_kms_status_get(k, &st), MS_OK);
    CHECK(!st.unsealed && st.seal_method == MS_KMS_SEAL_PASSPHRASE && st.current_period == P0);
    CHECK(st.audit_seq == 1);
    int n_users = 0;
    CHECK_ERR(ms_kms_user_list(k, count_user, &n_users), MS_OK);
    char *xml = malloc(MS_KMSIF_MAX_XML);
    size_t xml_len = 0;
    CHECK_ERR(ms_kms_certificate_xml(k, xml, MS_KMSIF_MAX_XML, &xml_len, P0), MS_OK);
    ms_kms_certificate cert;
    CHECK_ERR(ms_kmsif_certificate_parse(&cert, xml, xml_len, NULL, 0), MS_OK);
    CHECK_ERR(ms_kms_user_add(k, ALICE), MS_ERR_SEALED);
    size_t issued = 0;
    CHECK_ERR(ms_kms_issue(k, &issued, P0, 1), MS_ERR_SEALED);
    CHECK_ERR(ms_kms_device_enrol(k, xml, MS_KMSIF_MAX_XML, &xml_len, ALICE, "a1"),
              MS_ERR_SEALED);

    /* unseal */
    CHECK_ERR(ms_kms_unseal_passphrase(k, (const uint8_t *)"wrong", 5), MS_ERR_PASSPHRASE);
    CHECK_ERR(ms_kms_status_get(k, &st), MS_OK);
    CHECK(!st.unsealed);
    CHECK_ERR(ms_kms_unseal_passphrase(k, pass, sizeof pass - 1), MS_OK);
    CHECK_ERR(ms_kms_status_get(k, &st), MS_OK);
    CHECK(st.unsealed && st.n_generations == 1 && st.audit_seq == 2);

    /* users */
    CHECK_ERR(ms_kms_user_add(k, ALICE), MS_OK);
    CHECK_ERR(ms_kms_user_add(k, BOB), MS_OK);
    CHECK_ERR(ms_kms_user_add(k, ALICE), MS_ERR_EXISTS);
    CHECK_ERR(ms_kms_user_add(k, "sip:alice@example.org"), MS_ERR_IDENTITY); /* monthly: tel */
    n_users = 0;
    CHECK_ERR(ms_kms_user_list(k, count_user, &n_users), MS_OK);
    CHECK(n_users == 2);

    /* devices */
    CHECK_ERR(ms_kms_device_enrol(k, xml, MS_KMSIF_MAX_XML, &xml_len, "tel:+15550000000", "x"),
              MS_ERR_USER_UNKNOWN);
    CHECK_ERR(ms_kms_user_suspend(k, BOB), MS_OK);
    CHECK_ERR(ms_kms_device_enrol(k, xml, MS_KMSIF_MAX_XML, &xml_len, BOB, "bob-1"),
              MS_ERR_USER_SUSPENDED);
    CHECK_ERR(ms_kms_user_resume(k, BOB), MS_OK);
    CHECK_ERR(ms_kms_device_enrol(k, xml, MS_KMSIF_MAX_XML, &xml_len, ALICE, "alice 1"),
              MS_ERR_ARG);
    CHECK_ERR(ms_kms_device_enrol(k, xml, MS_KMSIF_MAX_XML, &xml_len, ALICE, "alice-1"), MS_OK);
    ms_device_keys alice_keys;
    ms_kms_certificate ecert;
    CHECK_ERR(ms_kmsif_enrolment_parse(&alice_keys, &ecert, xml, xml_len, NULL, 0), MS_OK);
    CHECK(strcmp(alice_keys.device_id, "alice-1") == 0);
    CHECK_MEM(ecert.Z, cert.Z, sizeof cert.Z);
    CHECK_ERR(ms_kms_device_enrol(k, xml, MS_KMSIF_MAX_XML, &xml_len, ALICE, "alice-1"),
              MS_ERR_EXISTS);
    CHECK_ERR(ms_kms_device_enrol(k, xml, MS_KMSIF_MAX_XML, &xml_len, BOB, "bob-1"), MS_OK);

    /* issuance: idempotent; an expired period is refused */
    CHECK_ERR(ms_kms_issue(k, &issued, P0 - 1, 1), MS_ERR_PERIOD);
    ms_test_progress pr;
    memset(&pr, 0, sizeof pr);
    ms_kms_set_progress(k, ms_test_progress_cb, &pr);
    CHECK_ERR(ms_kms_issue(k, &issued, P0, 2), MS_OK);
    CHECK(issued == 2);
    CHECK(pr.calls >= 2 && pr.first_done == 0 && pr.first_total == 2);
    CHECK(pr.last_done == 2 && pr.last_total == 2 && !pr.fell && !pr.overshot);
    ms_kms_set_progress(k, NULL, NULL);
    size_t calls = pr.calls;
    CHECK_ERR(ms_kms_issue(k, &issued, P0, 2), MS_OK);
    CHECK(issued == 0 && pr.calls == calls); /* no longer called */
    /* at most 2 periods ahead by default: current + 1200 would issue keys for 2123 */
    CHECK_ERR(ms_kms_issue(k, &issued, P0 + 1200, 1), MS_ERR_PERIOD);
    CHECK(issued == 0);
    CHECK_ERR(ms_kms_issue(k, &issued, P0 + 3, 1), MS_ERR_PERIOD);
    char why[256] = "";
    CHECK_ERR(ms_kms_issue_check(k, P0 + 3, why, sizeof why), MS_ERR_PERIOD);
    CHECK(strstr(why, "3 periods after the current one") != NULL);
    CHECK(strstr(why, "at most 2 ahead") != NULL);
    CHECK_ERR(ms_kms_issue_check(k, P0 - 1, why, sizeof why), MS_ERR_PERIOD);
    CHECK(strstr(why, "has ended") != NULL);
    CHECK_ERR(ms_kms_issue_check(k, P0 + 2, why, sizeof why), MS_OK);
    CHECK_ERR(ms_kms_issue_check(k, P0, NULL, 0), MS_OK);

    /* export: one package per device, readable by that device only */
    char out[700];
    snprintf(out, sizeof out, "%s/export", root);
    size_t n_pkg = 0;
    memset(&pr, 0, sizeof pr);
    ms_kms_set_progress(k, ms_test_progress_cb, &pr);
    CHECK_ERR(ms_kms_export(k, &n_pkg, P0, out), MS_OK);
    CHECK(n_pkg == 2);
    /* 0 of 2, 1 of 2, and 2 of 2 once the index is written */
    CHECK(pr.calls == 3 && pr.first_done == 0 && pr.first_total == 2);
    CHECK(pr.last_done == 2 && pr.last_total == 2 && !pr.fell && !pr.overshot);
    ms_kms_set_progress(k, NULL, NULL);
    snprintf(path, sizeof path, "%s/index.txt", out);
    CHECK(file_size(path) > 0);

    /* audited extraction: every refusal, then the release */
    char req[MS_REQUEST_MAX + 1], other[MS_REQUEST_MAX + 1];
    size_t req_len = 0, other_len = 0;
    CHECK_ERR(ms_kms_request_extract(k, req, sizeof req, &req_len, "*", P0, "warrant 42", 3600),
              MS_ERR_AUDIT_SCOPE);
    CHECK_ERR(ms_kms_request_extract(k, req, sizeof req, &req_len, BOB, P0, "", 3600),
              MS_ERR_ARG);
    CHECK_ERR(ms_kms_request_extract(k, req, sizeof req, &req_len, BOB, P0, "warrant 42", 3600),
              MS_OK);
    CHECK_ERR(ms_kms_request_extract(k, other, sizeof other, &other_len, ALICE, P0,
                                     "warrant 42", 3600),
              MS_OK);
    char ap[4][MS_APPROVAL_TEXT_MAX], ap_other[MS_APPROVAL_TEXT_MAX], ap_officer[MS_APPROVAL_TEXT_MAX];
    approval_of(3, req, req_len, ap[0]);
    approval_of(5, req, req_len, ap[1]);
    approval_of(4, other, other_len, ap_other);  /* auditor-2, but over Alice's request */
    approval_of(1, req, req_len, ap_officer);    /* an officer is no auditor */
    uint8_t rsk[MS_SAKKE_POINT_BYTES], id[MS_SAKKE_ID_MAX_BYTES];
    size_t id_len = 0;
    const char *good[] = {ap[0], ap[1]};
    const char *one_only[] = {ap[0]};
    const char *twice[] = {ap[0], ap[0]};
    const char *wrong_req[] = {ap[0], ap_other};
    const char *officer[] = {ap[0], ap_officer};
    ms_kms_extract_request r = {req, req_len, good, 2};
    ms_kms_extract_request bad = r;
    bad.approvals = one_only;
    bad.n_approvals = 1; /* approvals = 2 */
    CHECK_ERR(ms_kms_audit_extract(k, rsk, id, &id_len, &bad), MS_ERR_AUDITOR);
    bad.approvals = twice; /* the same auditor twice */
    bad.n_approvals = 2;
    CHECK_ERR(ms_kms_audit_extract(k, rsk, id, &id_len, &bad), MS_ERR_AUDITOR);
    bad.approvals = wrong_req; /* a signature over another request */
    CHECK_ERR(ms_kms_audit_extract(k, rsk, id, &id_len, &bad), MS_ERR_AUDITOR);
    bad.approvals = officer;
    CHECK_ERR(ms_kms_audit_extract(k, rsk, id, &id_len, &bad), MS_ERR_AUDITOR);
    bad = r;
    bad.n_approvals = 0;
    CHECK_ERR(ms_kms_audit_extract(k, rsk, id, &id_len, &bad), MS_ERR_AUDITOR);
    /* the request changed after approval (another period): no approval covers it */
    char *edited = strstr(req, "period=");
    CHECK(edited != NULL);
    if (edited != NULL) {
        edited[7] = edited[7] == '9' ? '8' : (char)(edited[7] + 1);
        CHECK_ERR(ms_kms_audit_extract(k, rsk, id, &id_len, &r), MS_ERR_AUDITOR);
        edited[7] = edited[7] == '8' ? '9' : (char)(edited[7] - 1);
    }
    char nob[MS_REQUEST_MAX + 1], nob_ap[2][MS_APPROVAL_TEXT_MAX];
    size_t nob_len = 0;
    CHECK_ERR(
        ms_kms_request_extract(k, nob, sizeof nob, &nob_len, "tel:+15550000000", P0, "x", 3600),
        MS_OK);
    approval_of(3, nob, nob_len, nob_ap[0]);
    approval_of(4, nob, nob_len, nob_ap[1]);
    const char *nob_good[] = {nob_ap[0], nob_ap[1]};
    bad.request = nob;
    bad.request_len = nob_len;
    bad.approvals = nob_good;
    bad.n_approvals = 2;
    CHECK_ERR(ms_kms_audit_extract(k, rsk, id, &id_len, &bad), MS_ERR_USER_UNKNOWN);

    /* an audit log that cannot grow: refused, nothing released */
    snprintf(path, sizeof path, "%s/audit.log", dir);
    off_t log_size = file_size(path);
    struct rlimit old_rl, rl;
    getrlimit(RLIMIT_FSIZE, &old_rl);
    signal(SIGXFSZ, SIG_IGN);
    rl.rlim_cur = (rlim_t)log_size;
    rl.rlim_max = old_rl.rlim_max;
    setrlimit(RLIMIT_FSIZE, &rl);
    memset(rsk, 0, sizeof rsk);
    id_len = 0;
    CHECK_ERR(ms_kms_audit_extract(k, rsk, id, &id_len, &r), MS_ERR_AUDIT_LOG);
    setrlimit(RLIMIT_FSIZE, &old_rl);
    CHECK(all_zero(rsk, sizeof rsk) && id_len == 0);
    CHECK(file_size(path) == log_size);

    CHECK_ERR(ms_kms_audit_extract(k, rsk, id, &id_len, &r), MS_OK);
    CHECK(file_size(path) > log_size);
    /* an approved request is carried out once */
    CHECK_ERR(ms_kms_audit_extract(k, rsk, id, &id_len, &r), MS_ERR_REQUEST_STALE);
    /* the released RSK is Bob's for P0: it validates against his identifier */
    uint8_t bob_id[MS_SAKKE_ID_MAX_BYTES];
    size_t bob_len = 0;
    ms_id_scheme ids = {MS_MIKEY_ID_SCHEME_TEL_MONTHLY, NULL, 0, 0};
    CHECK_ERR(ms_identifier(&ids, bob_id, sizeof bob_id, &bob_len, BOB, P0), MS_OK);
    CHECK(id_len == bob_len && memcmp(id, bob_id, bob_len) == 0);
    ms_sakke_kms *sk = NULL;
    CHECK_ERR(ms_sakke_kms_new(&sk, cert.Z), MS_OK);
    CHECK_ERR(ms_sakke_rsk_validate(sk, bob_id, bob_len, rsk), MS_OK);
    ms_sakke_kms_free(sk);

    /* rollover only from a future period */
    ms_kms_handout *h2 = calloc(1, sizeof *h2);
    CHECK_ERR(ms_kms_rollover(k, h2, P0, &m), MS_ERR_PERIOD);
    CHECK_ERR(ms_kms_rollover(k, h2, P0 - 3, &m), MS_ERR_PERIOD);
    CHECK_ERR(ms_kms_rollover(k, h2, P0 + 1, &m), MS_OK);
    CHECK_ERR(ms_kms_rollover(k, h2, P0 + 1, &m), MS_ERR_PERIOD); /* not after the last */
    free(h2);
    ms_kms_certificate cert2;
    CHECK_ERR(ms_kms_certificate_xml(k, xml, MS_KMSIF_MAX_XML, &xml_len, P0 + 1), MS_OK);
    CHECK_ERR(ms_kmsif_certificate_parse(&cert2, xml, xml_len, NULL, 0), MS_OK);
    CHECK(memcmp(cert2.Z, cert.Z, sizeof cert.Z) != 0);

    /* seal: privileged calls refused again; the re-sealed file opens with both keys */
    CHECK_ERR(ms_kms_seal(k), MS_OK);
    CHECK_ERR(ms_kms_user_add(k, "tel:+447700900789"), MS_ERR_SEALED);
    CHECK_ERR(ms_kms_audit_extract(k, rsk, id, &id_len, &r), MS_ERR_SEALED);
    CHECK_ERR(ms_kms_unseal_passphrase(k, pass, sizeof pass - 1), MS_OK);
    CHECK_ERR(ms_kms_status_get(k, &st), MS_OK);
    CHECK(st.unsealed && st.n_generations == 2);
    CHECK_ERR(ms_kms_seal(k), MS_OK);
    ms_kms_close(k);

    /* the audit log verifies, and an edit is found at its line */
    uint64_t n = 0, first_bad = 0;
    char detail[128];
    CHECK_ERR(ms_kms_audit_verify(&n, &first_bad, dir, detail, sizeof detail), MS_OK);
    CHECK(n >= 12);
    snprintf(out, sizeof out, "%s/audit.pub", dir);
    CHECK_ERR(ms_kms_audit_verify_files(&n, &first_bad, path, out, detail, sizeof detail),
              MS_OK);
    FILE *f = fopen(path, "r+");
    char line[4096];
    long third = 0;
    for (int i = 0; f != NULL && i < 2 && fgets(line, sizeof line, f); i++)
        third = ftell(f);
    if (f != NULL) {
        fseek(f, third + 3, SEEK_SET); /* "seq=3" -> a different digit */
        int c = fgetc(f);
        fseek(f, third + 3, SEEK_SET);
        fputc(c == '9' ? '8' : c + 1, f);
        fclose(f);
    }
    CHECK_ERR(ms_kms_audit_verify(&n, &first_bad, dir, detail, sizeof detail),
              MS_ERR_AUDIT_CHAIN);
    CHECK(first_bad == 3);
    free(xml);
}

static void test_shares_kms(const char *root)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/shares", root);
    ms_kms_config cfg = {.kms_uri = "kms.example.org",
                         .id_scheme = MS_MIKEY_ID_SCHEME_HASHED_UID,
                         .period_len = 2592000,
                         .first_time = T0,
                         .n_auditors = 1,
                         .max_periods_ahead = 5};
    ms_kms_seal_material m = {.method = MS_KMS_SEAL_SHARES, .k = 2, .n = 3};
    ms_kms_handout *h = calloc(1, sizeof *h);
    set_roles(&cfg);
    CHECK_ERR(ms_kms_create(h, dir, &cfg, &m, NULL, NULL, 0), MS_OK);
    CHECK(h->n_shares == 3);
    ms_kms *k = NULL;
    CHECK_ERR(open_kms(&k, dir), MS_OK);
    if (k == NULL) {
        free(h);
        return;
    }
    unsigned have = 9, need = 9;
    ms_kms_status st;
    CHECK_ERR(ms_kms_unseal_share(k, &have, &need, h->share[0], h->share_len[0]), MS_OK);
    CHECK(have == 1 && need == 2);
    CHECK_ERR(ms_kms_status_get(k, &st), MS_OK);
    CHECK(!st.unsealed && st.shares_have == 1 && st.shares_need == 2);
    CHECK_ERR(ms_kms_user_add(k, "sip:alice@example.org"), MS_ERR_SEALED); /* too few */
    CHECK_ERR(ms_kms_unseal_share(k, &have, &need, h->share[0], h->share_len[0]),
              MS_ERR_SHARE); /* duplicate */
    uint8_t bad[MS_KMS_SHARE_MAX];
    memcpy(bad, h->share[1], h->share_len[1]);
    bad[h->share_len[1] - 1] ^= 0x40;
    CHECK_ERR(ms_kms_unseal_share(k, &have, &need, bad, h->share_len[1]), MS_ERR_SHARE);
    CHECK_ERR(ms_kms_unseal_share(k, &have, &need, h->share[2], h->share_len[2]), MS_OK);
    CHECK_ERR(ms_kms_status_get(k, &st), MS_OK);
    CHECK(st.unsealed);
    /* hashed UIDs: any URI is a user */
    CHECK_ERR(ms_kms_user_add(k, "sip:alice@example.org"), MS_OK);
    /* created with max_periods_ahead 5: kept in kms.db, read back by open */
    size_t issued = 9;
    char why[256] = "";
    CHECK_ERR(ms_kms_issue(k, &issued, st.current_period + 5, 1), MS_OK);
    CHECK(issued == 0); /* no device enrolled */
    CHECK_ERR(ms_kms_issue(k, &issued, st.current_period + 6, 1), MS_ERR_PERIOD);
    CHECK_ERR(ms_kms_issue_check(k, st.current_period + 6, why, sizeof why), MS_ERR_PERIOD);
    CHECK(strstr(why, "at most 5 ahead") != NULL);
    CHECK_ERR(ms_kms_seal(k), MS_OK);
    ms_kms_close(k);
    ms_wipe(h, sizeof *h);
    free(h);
}

int main(void)
{
    char root[64];
    if (!ms_test_tmpdir(root, sizeof root, "kms"))
        return 1;
    test_passphrase_kms(root);
    test_shares_kms(root);
    ms_test_rmtree(root);
    return ms_test_finish();
}
