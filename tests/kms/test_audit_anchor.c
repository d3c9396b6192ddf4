/*
 * The audit log anchored outside the KMS directory. Checkpoints: `kms audit checkpoint`
 * and every extraction hand out a signed (seq, head); verification against one passes
 * while the log only grew, and fails when whoever can write the directory cut the log
 * back before it and rewrote the head in kms.db to match (which plain verification
 * accepts: the attack of the issue), or replaced the log and its public key with ones
 * of their own; forged and malformed checkpoints are refused. The syslog copy: off by
 * default, once on every entry goes to the sink exactly as written, and with syslog(3)
 * through a /dev/log socket of the test's (when it may make one).
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "kms/kms_internal.h"
#include "kms/roles.h"
#include "mikeysakke/kms.h"
#include "mikeysakke/mikey.h"
#include "kms_fixture.h"
#include "testutil.h"

/* 2025-10-02T12:00:00Z in NTP seconds: key period 1509. */
#define T0 (1759406400ull + 2208988800ull)
#define P0 1509u
#define ALICE "tel:+447700900123"

static uint64_t clock_now = T0;
static const uint8_t pass[] = "correct horse battery staple";

static uint64_t fixed_clock(void *ctx)
{
    return *(const uint64_t *)ctx;
}

static ms_kms_handout handout;

/* Role keys: 0 operator, 1 officer, 2-3 auditors. */
static ms_test_roles roles;

static void create(const char *dir, bool syslog_copy)
{
    ms_kms_config cfg = {.kms_uri = "kms.example.org",
                         .id_scheme = MS_MIKEY_ID_SCHEME_TEL_MONTHLY,
                         .first_time = T0,
                         .n_auditors = 2,
                         .approvals = 1,
                         .audit_syslog = syslog_copy};
    cfg.n_officers = 1;
    cfg.enrol_approvals = 1;
    ms_test_kms_roles(&cfg, &roles);
    ms_kms_seal_material m = {.method = MS_KMS_SEAL_PASSPHRASE,
                              .passphrase = pass,
                              .passphrase_len = sizeof pass - 1,
                              .scrypt_log2_n = 10};
    CHECK_ERR(ms_kms_create(&handout, dir, &cfg, &m, NULL, NULL, 0), MS_OK);
}

static ms_kms *open_unsealed(const char *dir, ms_audit_copy_fn sink, void *ctx)
{
    ms_kms *k = NULL;
    CHECK_ERR(ms_kms_open(&k, dir, NULL, NULL, 0), MS_OK);
    if (k == NULL)
        return NULL;
    ms_kms_set_clock(k, fixed_clock, &clock_now);
    if (sink != NULL)
        ms_kms_set_audit_sink(k, sink, ctx);
    CHECK_ERR(ms_kms_unseal_passphrase(k, pass, sizeof pass - 1), MS_OK);
    return k;
}

/* The copies a sink received, in order. */
typedef struct copies {
    size_t n;
    char line[64][1024];
} copies;

static void sink(void *ctx, const char *line, size_t len)
{
    copies *c = ctx;
    if (c->n < 64 && len < sizeof c->line[0]) {
        memcpy(c->line[c->n], line, len);
        c->line[c->n][len] = '\0';
    }
    c->n++;
}

/* The file's last line (without "\n") and how many lines it has. */
static size_t last_line(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    char buf[70000];
    out[0] = '\0';
    if (f == NULL)
        return 0;
    while (fgets(buf, sizeof buf, f) != NULL) {
        n++;
        buf[strcspn(buf, "\n")] = '\0';
        snprintf(out, cap, "%s", buf);
    }
    fclose(f);
    return n;
}

/* Keeps the first `keep` lines of the log and sets the head in kms.db to the last of
 * them: what an intruder who can write the directory does to hide entries. */
static void cut_log(const char *dir, size_t keep)
{
    char path[700], db[700], line[70000], last[70000] = "";
    snprintf(path, sizeof path, "%s/audit.log", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    size_t n = 0, len = 0;
    while (n < keep && fgets(line, sizeof line, f) != NULL) {
        n++;
        len += strlen(line);
        snprintf(last, sizeof last, "%s", line);
    }
    fclose(f);
    CHECK(truncate(path, (off_t)len) == 0);
    last[strcspn(last, "\n")] = '\0';
    uint8_t h[32];
    unsigned hl = 0;
    EVP_Digest(last, strlen(last), h, &hl, EVP_sha256(), NULL);
    char hex[65], sql[300];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02X", h[i]);
    snprintf(db, sizeof db, "%s/kms.db", dir);
    sqlite3 *s = NULL;
    snprintf(sql, sizeof sql,
             "UPDATE settings SET value = '%zu' WHERE key = 'audit_seq';"
             "UPDATE settings SET value = '%s' WHERE key = 'audit_head';",
             n, hex);
    CHECK(sqlite3_open(db, &s) == SQLITE_OK && sqlite3_exec(s, sql, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(s);
}

static ms_err verify_cp(const char *dir, const char *cp, char *detail, size_t cap)
{
    uint64_t n = 0, bad = 0;
    return ms_kms_audit_verify_checkpoint(&n, &bad, dir, NULL, NULL, cp, detail, cap);
}

static ms_err verify_plain(const char *dir)
{
    uint64_t n = 0, bad = 0;
    char d[256];
    return ms_kms_audit_verify(&n, &bad, dir, d, sizeof d);
}

static void test_checkpoints(const char *root)
{
    char dir[600], other[600], detail[512], cp[MS_KMS_CHECKPOINT_MAX];
    snprintf(dir, sizeof dir, "%s/a", root);
    create(dir, false);
    ms_kms *k = open_unsealed(dir, NULL, NULL);
    if (k == NULL)
        return;
    CHECK_ERR(ms_kms_user_add(k, ALICE), MS_OK);
    CHECK_ERR(ms_kms_audit_checkpoint(k, cp, sizeof cp), MS_OK);
    CHECK(strncmp(cp, "mikeysakke-audit-checkpoint seq=4 head=", 39) == 0);
    CHECK(strlen(cp) > 0 && cp[strlen(cp) - 1] == '\n');
    /* The entry of the checkpoint is in the log. */
    char path[700], line[70000];
    snprintf(path, sizeof path, "%s/audit.log", dir);
    CHECK(last_line(path, line, sizeof line) == 4 && strstr(line, "event=checkpoint") != NULL);
    CHECK_ERR(verify_cp(dir, cp, detail, sizeof detail), MS_OK);

    /* Extraction returns one of its own entry. */
    char xml[8192];
    size_t xml_len = 0, issued = 0;
    CHECK_ERR(ms_kms_device_enrol(k, xml, sizeof xml, &xml_len, ALICE, "a1"), MS_OK);
    CHECK_ERR(ms_kms_issue(k, &issued, P0, 1), MS_OK);
    char none[MS_KMS_CHECKPOINT_MAX];
    CHECK_ERR(ms_kms_extract_checkpoint(k, none, sizeof none), MS_ERR_AUDIT_LOG);
    char rq[MS_REQUEST_MAX + 1], ap[MS_APPROVAL_TEXT_MAX];
    size_t rq_len = 0;
    CHECK_ERR(
        ms_kms_request_extract(k, rq, sizeof rq, &rq_len, ALICE, P0, "warrant 2026/1", 3600),
        MS_OK);
    ms_approval a;
    CHECK_ERR(ms_approval_sign(roles.seed[2], rq, rq_len, &a), MS_OK);
    CHECK_ERR(ms_approval_format(&a, ap, sizeof ap), MS_OK);
    const char *aps[] = {ap};
    ms_kms_extract_request req = {rq, rq_len, aps, 1};
    uint8_t rsk[MS_SAKKE_POINT_BYTES], id[MS_SAKKE_ID_MAX_BYTES];
    size_t id_len = 0;
    CHECK_ERR(ms_kms_audit_extract(k, rsk, id, &id_len, &req), MS_OK);
    ms_wipe(rsk, sizeof rsk);
    char xcp[MS_KMS_CHECKPOINT_MAX];
    CHECK_ERR(ms_kms_extract_checkpoint(k, xcp, sizeof xcp), MS_OK);
    size_t lines = last_line(path, line, sizeof line);
    char want[64];
    snprintf(want, sizeof want, "checkpoint seq=%zu head=", lines);
    CHECK(strstr(xcp, want) != NULL && strstr(line, "event=extract") != NULL);
    CHECK_ERR(verify_cp(dir, xcp, detail, sizeof detail), MS_OK);
    CHECK_ERR(ms_kms_user_add(k, "tel:+447700900999"), MS_OK); /* the log grows on */
    CHECK_ERR(ms_kms_seal(k), MS_OK);
    ms_kms_close(k);
    CHECK_ERR(verify_cp(dir, cp, detail, sizeof detail), MS_OK);
    CHECK_ERR(verify_cp(dir, xcp, detail, sizeof detail), MS_OK);

    /* A copied log and key verify against it too. */
    char pub[700];
    snprintf(pub, sizeof pub, "%s/audit.pub", dir);
    uint64_t n = 0, bad = 0;
    CHECK_ERR(
        ms_kms_audit_verify_checkpoint(&n, &bad, NULL, path, pub, xcp, detail, sizeof detail),
        MS_OK);

    /* Forged: another seq under the same signature; malformed. */
    char forged[MS_KMS_CHECKPOINT_MAX];
    snprintf(forged, sizeof forged, "%s", cp);
    forged[32] = '3'; /* seq=4 -> seq=3 */
    CHECK_ERR(verify_cp(dir, forged, detail, sizeof detail), MS_ERR_AUDIT_CHAIN);
    CHECK(strstr(detail, "signature does not verify") != NULL);
    CHECK_ERR(verify_cp(dir, "mikeysakke-audit-checkpoint seq=4\n", detail, sizeof detail),
              MS_ERR_BAD_ENCODING);
    CHECK(strstr(detail, "not a checkpoint") != NULL);
    CHECK_ERR(verify_cp(dir, "", detail, sizeof detail), MS_ERR_BAD_ENCODING);

    /* The attack: the extraction and what followed cut off, the head in kms.db rewritten
     * to the new tail. Plain verification is fooled; the checkpoints are not. */
    cut_log(dir, lines - 1);
    CHECK_ERR(verify_plain(dir), MS_OK);
    CHECK_ERR(verify_cp(dir, xcp, detail, sizeof detail), MS_ERR_AUDIT_CHAIN);
    CHECK(strstr(detail, "against the checkpoint") != NULL);
    CHECK_ERR(verify_cp(dir, cp, detail, sizeof detail), MS_OK); /* still before the cut */
    cut_log(dir, 3);
    CHECK_ERR(verify_plain(dir), MS_OK);
    CHECK_ERR(verify_cp(dir, cp, detail, sizeof detail), MS_ERR_AUDIT_CHAIN);

    /* The whole log replaced by another KMS's, with its key in kms.db and audit.pub. */
    snprintf(other, sizeof other, "%s/b", root);
    create(other, false);
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "cp '%s/audit.log' '%s/audit.pub' '%s/'", other, other, dir);
    CHECK(system(cmd) == 0);
    char db[700], sql[1200];
    snprintf(db, sizeof db, "%s/kms.db", other);
    sqlite3 *s = NULL;
    CHECK(sqlite3_open(db, &s) == SQLITE_OK);
    char vals[3][200] = {"", "", ""};
    const char *keys[] = {"audit_pub", "audit_seq", "audit_head"};
    for (int i = 0; i < 3; i++) {
        sqlite3_stmt *q = NULL;
        snprintf(sql, sizeof sql, "SELECT value FROM settings WHERE key = '%s'", keys[i]);
        if (sqlite3_prepare_v2(s, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
            snprintf(vals[i], sizeof vals[i], "%s", (const char *)sqlite3_column_text(q, 0));
        sqlite3_finalize(q);
    }
    sqlite3_close(s);
    snprintf(db, sizeof db, "%s/kms.db", dir);
    CHECK(sqlite3_open(db, &s) == SQLITE_OK);
    for (int i = 0; i < 3; i++) {
        snprintf(sql, sizeof sql, "UPDATE settings SET value = '%s' WHERE key = '%s'", vals[i],
                 keys[i]);
        CHECK(sqlite3_exec(s, sql, NULL, NULL, NULL) == SQLITE_OK);
    }
    sqlite3_close(s);
    CHECK_ERR(verify_plain(dir), MS_OK);
    CHECK_ERR(verify_cp(dir, cp, detail, sizeof detail), MS_ERR_AUDIT_CHAIN);
    CHECK(strstr(detail, "signature does not verify") != NULL);
}

static void test_syslog_sink(const char *root)
{
    char dir[600], path[700], line[70000];
    snprintf(dir, sizeof dir, "%s/s", root);
    create(dir, false);
    snprintf(path, sizeof path, "%s/audit.log", dir);
    copies *c = calloc(1, sizeof *c);
    ms_kms *k = open_unsealed(dir, sink, c);
    if (k == NULL || c == NULL) {
        free(c);
        return;
    }
    CHECK_ERR(ms_kms_user_add(k, ALICE), MS_OK);
    CHECK(c->n == 0); /* off by default */
    CHECK_ERR(ms_kms_audit_set_syslog(k, true), MS_OK);
    CHECK_ERR(ms_kms_user_suspend(k, ALICE), MS_OK);
    CHECK(c->n == 1);
    last_line(path, line, sizeof line);
    CHECK(c->n >= 1 && strcmp(c->line[0], line) == 0); /* exactly the entry */
    CHECK_ERR(ms_kms_seal(k), MS_OK);
    CHECK(c->n == 2 && strstr(c->line[1], "event=seal") != NULL);
    ms_kms_close(k);

    /* The setting holds for the next unseal (and is authenticated like the others). */
    c->n = 0;
    k = open_unsealed(dir, sink, c);
    if (k != NULL) {
        CHECK(c->n == 1 && strstr(c->line[0], "event=unseal") != NULL);
        CHECK_ERR(ms_kms_audit_set_syslog(k, false), MS_OK);
        size_t before = c->n;
        CHECK_ERR(ms_kms_user_resume(k, ALICE), MS_OK);
        CHECK(c->n == before);
        CHECK_ERR(ms_kms_seal(k), MS_OK);
        ms_kms_close(k);
    }
    /* Sealed, it cannot be changed. */
    CHECK_ERR(ms_kms_open(&k, dir, NULL, NULL, 0), MS_OK);
    if (k != NULL) {
        CHECK_ERR(ms_kms_audit_set_syslog(k, true), MS_ERR_SEALED);
        ms_kms_close(k);
    }
    free(c);
}

/* syslog(3) itself, received on a /dev/log of ours: only where none exists and we may
 * create one (root in a container without a syslog daemon, as in CI). */
static void test_syslog_devlog(const char *root)
{
    struct stat sb;
    if (stat("/dev/log", &sb) == 0 || errno != ENOENT) {
        printf("note: /dev/log exists: syslog(3) itself is not checked\n");
        return;
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "/dev/log");
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        printf("note: cannot bind /dev/log (%s): syslog(3) itself is not checked\n",
               strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    struct timeval tv = {10, 0}; /* a bound against hanging, not a timing check */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char dir[600], path[700], line[70000];
    snprintf(dir, sizeof dir, "%s/d", root);
    create(dir, true); /* on from kms init */
    snprintf(path, sizeof path, "%s/audit.log", dir);
    ms_kms *k = open_unsealed(dir, NULL, NULL);
    if (k != NULL) {
        CHECK_ERR(ms_kms_user_add(k, ALICE), MS_OK);
        last_line(path, line, sizeof line);
        /* kms init's entry, the unseal's, then the user's. */
        char msg[70000];
        int got_init = 0, got_unseal = 0, got_user = 0;
        for (int i = 0; i < 3; i++) {
            ssize_t r = recv(fd, msg, sizeof msg - 1, 0);
            if (r <= 0)
                break;
            msg[r] = '\0';
            CHECK(strstr(msg, MS_KMS_AUDIT_SYSLOG_IDENT "[") != NULL);
            CHECK(msg[0] == '<' && atoi(msg + 1) == (LOG_AUTHPRIV | LOG_NOTICE));
            got_init |= strstr(msg, "event=init") != NULL;
            got_unseal |= strstr(msg, "event=unseal") != NULL;
            got_user |= strstr(msg, line) != NULL;
        }
        CHECK(got_init && got_unseal && got_user);
        CHECK_ERR(ms_kms_seal(k), MS_OK);
        ms_kms_close(k);
    }
    close(fd);
    unlink("/dev/log");
}

int main(void)
{
    ms_test_seed();
    const char *tmp = getenv("TMPDIR");
    char root[300];
    snprintf(root, sizeof root, "%s/ms-anchor-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    test_checkpoints(root);
    test_syslog_sink(root);
    test_syslog_devlog(root);
    ms_wipe(&handout, sizeof handout);
    ms_test_rmtree(root);
    return ms_test_finish();
}
