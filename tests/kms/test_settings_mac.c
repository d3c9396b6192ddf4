/*
 * The settings MAC (src/kms/settings.c) through the facade: whoever can write kms.db
 * lowers the quorum, swaps an auditor, adds a row (a role key of any name), removes one,
 * garbles or deletes the MAC: each is refused at unseal with MS_ERR_SETTINGS_CHANGED,
 * the row named, the KMS left sealed and the refusal in the audit log; undoing the edit
 * unseals again. A KMS without a MAC (made
 * before it existed) unseals only on the custodians' order, which is logged. Rollover
 * re-authenticates the settings it writes, and refuses if they were changed meanwhile.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kms/settings.h"
#include "kms/roles.h"
#include "mikeysakke/kms.h"
#include "mikeysakke/mikey.h"
#include "kms_fixture.h"
#include "testutil.h"

/* 2025-10-02T12:00:00Z in NTP seconds: key period 1509. */
#define T0 (1759406400ull + 2208988800ull)
#define P0 1509u

static uint64_t clock_now = T0;
static const uint8_t pass[] = "correct horse battery staple";
static char dir[512];

static uint64_t fixed_clock(void *ctx)
{
    return *(const uint64_t *)ctx;
}

/* Runs one SQL statement on kms.db behind the KMS's back, as an intruder would. */
static void tamper(const char *sql)
{
    char path[600];
    snprintf(path, sizeof path, "%s/kms.db", dir);
    sqlite3 *db = NULL;
    int ok = sqlite3_open(path, &db) == SQLITE_OK &&
             sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
    if (!ok)
        fprintf(stderr, "tamper: %s: %s\n", sql, db ? sqlite3_errmsg(db) : "no db");
    CHECK(ok);
    sqlite3_close(db);
}

/* The value of a settings row ("" if absent). */
static void setting(const char *key, char *out, size_t cap)
{
    char path[600];
    snprintf(path, sizeof path, "%s/kms.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    out[0] = '\0';
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE key = ?1", -1, &q, NULL) ==
            SQLITE_OK) {
        sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW)
            snprintf(out, cap, "%s", (const char *)sqlite3_column_text(q, 0));
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* Counts lines of audit.log holding `needle`. */
static int log_count(const char *needle)
{
    char path[600], line[70000];
    snprintf(path, sizeof path, "%s/audit.log", dir);
    FILE *f = fopen(path, "r");
    int n = 0;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* Opens the KMS and tries to unseal: the unseal's result, detail copied out. */
static ms_err try_unseal(char *detail, size_t cap, bool adopt)
{
    ms_kms *k = NULL;
    ms_err e = ms_kms_open(&k, dir, NULL, NULL, 0);
    if (e != MS_OK) {
        snprintf(detail, cap, "open failed");
        return e;
    }
    ms_kms_set_clock(k, fixed_clock, &clock_now);
    ms_kms_adopt_settings(k, adopt);
    e = ms_kms_unseal_passphrase(k, pass, sizeof pass - 1);
    snprintf(detail, cap, "%s", ms_kms_detail(k));
    CHECK(ms_kms_is_unsealed(k) == (e == MS_OK)); /* refused: stays sealed */
    if (e == MS_OK)
        CHECK_ERR(ms_kms_seal(k), MS_OK);
    ms_kms_close(k);
    return e;
}

#define CHECK_REFUSED(want_detail)                                                      \
    do {                                                                                \
        char d_[512];                                                                   \
        int before_ = log_count("unseal_refused");                                      \
        CHECK_ERR(try_unseal(d_, sizeof d_, false), MS_ERR_SETTINGS_CHANGED);           \
        int named_ = strstr(d_, (want_detail)) != NULL &&                               \
                     strstr(d_, "changed outside the KMS") != NULL;                     \
        CHECK(named_);                                                                  \
        if (!named_)                                                                    \
            fprintf(stderr, "  detail \"%s\", want \"%s\"\n", d_, (want_detail));       \
        CHECK(log_count("unseal_refused") == before_ + 1);                              \
    } while (0)

static void unseals(void)
{
    char d[512];
    CHECK_ERR(try_unseal(d, sizeof d, false), MS_OK);
}

int main(void)
{
    ms_test_seed();
    const char *tmp = getenv("TMPDIR");
    char root[300];
    snprintf(root, sizeof root, "%s/ms-settings-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(dir, sizeof dir, "%s/kms", root);
    ms_kms_config cfg = {.kms_uri = "kms.example.org",
                         .id_scheme = MS_MIKEY_ID_SCHEME_TEL_MONTHLY,
                         .first_time = T0,
                         .n_auditors = 3,
                         .approvals = 2};
    ms_kms_seal_material m = {.method = MS_KMS_SEAL_PASSPHRASE,
                              .passphrase = pass,
                              .passphrase_len = sizeof pass - 1,
                              .scrypt_log2_n = 10};
    ms_test_roles roles = {.made = false};
    ms_test_kms_create(dir, &cfg, &roles, pass, sizeof pass - 1, NULL);
    ms_wipe(&roles, sizeof roles);
    char mac[4096], value[256];
    setting(MS_SETTINGS_MAC_ROW, mac, sizeof mac);
    CHECK(strncmp(mac, "v1 ", 3) == 0);
    unseals();

    /* The quorum lowered: the attack of the issue. */
    tamper("UPDATE settings SET value = '1' WHERE key = 'approvals'");
    CHECK_REFUSED("row 'approvals' was changed");
    tamper("UPDATE settings SET value = '2' WHERE key = 'approvals'");
    unseals();

    /* An auditor's credential hash swapped for the intruder's. */
    setting("auditor_2", value, sizeof value);
    tamper("UPDATE settings SET value = '00000000000000000000000000000000000000000000000000"
           "00000000000000' WHERE key = 'auditor_2'");
    CHECK_REFUSED("row 'auditor_2' was changed");
    char sql[8192];
    snprintf(sql, sizeof sql, "UPDATE settings SET value = '%s' WHERE key = 'auditor_2'", value);
    tamper(sql);
    unseals();

    /* A row the KMS never wrote (a role key of a name no list here knows). */
    tamper("INSERT INTO settings(key, value) VALUES('officer_key_9', 'AA55')");
    CHECK_REFUSED("row 'officer_key_9' was added");
    tamper("DELETE FROM settings WHERE key = 'officer_key_9'");
    /* A row removed. */
    setting("scrypt_log2n", value, sizeof value);
    tamper("DELETE FROM settings WHERE key = 'scrypt_log2n'");
    CHECK_REFUSED("row 'scrypt_log2n' was removed");
    snprintf(sql, sizeof sql, "INSERT INTO settings(key, value) VALUES('scrypt_log2n', '%s')",
             value);
    tamper(sql);
    unseals();

    /* The MAC garbled; its row tags altered so they no longer tell (still refused). */
    tamper("UPDATE settings SET value = 'v1 00' WHERE key = 'settings_mac'");
    CHECK_REFUSED("row 'settings_mac' is malformed");
    snprintf(sql, sizeof sql, "UPDATE settings SET value = '%s' WHERE key = 'settings_mac'", mac);
    tamper(sql);
    unseals();
    setting(MS_SETTINGS_MAC_ROW, mac, sizeof mac);
    char forged[4096];
    snprintf(forged, sizeof forged, "%s", mac);
    forged[3] = forged[3] == '0' ? '1' : '0'; /* first MAC digit */
    snprintf(sql, sizeof sql, "UPDATE settings SET value = '%s' WHERE key = 'settings_mac'",
             forged);
    tamper(sql);
    CHECK_REFUSED("does not match (which row is not known)");
    snprintf(sql, sizeof sql, "UPDATE settings SET value = '%s' WHERE key = 'settings_mac'", mac);
    tamper(sql);

    /* Every unseal above moved the audit head rows: they are outside the MAC. */
    unseals();

    /* No MAC at all: refused (deleting the row must not turn the check off) unless the
     * custodians order the adoption, which is logged with the settings adopted. */
    tamper("DELETE FROM settings WHERE key = 'settings_mac'");
    CHECK_REFUSED("row 'settings_mac' is missing");
    char d[512];
    CHECK(log_count("settings_sealed") == 0);
    CHECK_ERR(try_unseal(d, sizeof d, true), MS_OK);
    CHECK(log_count("settings_sealed") == 1);
    CHECK(log_count("settings=\"approvals=2 audit_pub=") == 1);
    setting(MS_SETTINGS_MAC_ROW, value, sizeof value);
    CHECK(strncmp(value, "v1 ", 3) == 0);
    unseals();
    /* An adopted MAC protects as well as one from kms init. */
    tamper("UPDATE settings SET value = '1' WHERE key = 'approvals'");
    CHECK_REFUSED("row 'approvals' was changed");
    CHECK_REFUSED("row 'approvals' was changed"); /* adoption was for that one unseal */
    tamper("UPDATE settings SET value = '2' WHERE key = 'approvals'");
    /* With a MAC present, adoption does not excuse a change. */
    tamper("UPDATE settings SET value = '1' WHERE key = 'approvals'");
    CHECK_ERR(try_unseal(d, sizeof d, true), MS_ERR_SETTINGS_CHANGED);
    tamper("UPDATE settings SET value = '2' WHERE key = 'approvals'");

    /* Rollover writes settings (certificate, generation): it re-authenticates them... */
    ms_kms *k = NULL;
    CHECK_ERR(ms_kms_open(&k, dir, NULL, NULL, 0), MS_OK);
    if (k != NULL) {
        ms_kms_set_clock(k, fixed_clock, &clock_now);
        CHECK_ERR(ms_kms_unseal_passphrase(k, pass, sizeof pass - 1), MS_OK);
        ms_kms_handout *out = calloc(1, sizeof *out);
        CHECK_ERR(ms_kms_rollover(k, out, P0 + 2, &m), MS_OK);
        /* ... and refuses to when they were changed while it ran unsealed. */
        tamper("UPDATE settings SET value = '1' WHERE key = 'approvals'");
        CHECK_ERR(ms_kms_rollover(k, out, P0 + 3, &m), MS_ERR_SETTINGS_CHANGED);
        CHECK(strstr(ms_kms_detail(k), "row 'approvals' was changed") != NULL);
        tamper("UPDATE settings SET value = '2' WHERE key = 'approvals'");
        free(out);
        CHECK_ERR(ms_kms_seal(k), MS_OK);
        ms_kms_close(k);
    }
    unseals();
    ms_test_rmtree(root);
    return ms_test_finish();
}
