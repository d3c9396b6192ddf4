/*
 * Client keystore: create, open, import of key packages and every refusal: wrong TrK,
 * wrong InK, tampered, replayed, other device, other user, expired period, RSK or SSK
 * that fails validation, wrong UserID, corrupted or foreign keystore file, wrong
 * passphrase, open directory.
 */
#include "fixture.h"

#define D_CAP 256

static void test_create_open(fx *f)
{
    char d[D_CAP];
    fx_create(f);
    struct stat st;
    CHECK(stat(f->dir, &st) == 0 && (st.st_mode & 0777) == 0700);
    char p[512];
    fx_path(f, p, sizeof p, KS_IDENTITY_NAME);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
    fx_path(f, p, sizeof p, KS_HEADER_NAME);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);

    /* The TrK must not be on disk in clear (hex or binary). */
    char cmd[1024], hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", f->dev.trk[i]);
    snprintf(cmd, sizeof cmd, "grep -rqi %s '%s'", hex, f->dir);
    CHECK(system(cmd) != 0);

    /* Not twice in the same place. */
    fx_enrolment(f, &f->dev, &f->cert);
    CHECK_ERR(ms_keystore_create(f->dir, f->xml, f->xml_len, FX_PASS, strlen(FX_PASS),
                                 &fx_params, d, sizeof d),
              MS_ERR_EXISTS);
    /* Malformed enrolment file. */
    char other[300];
    snprintf(other, sizeof other, "%s/other", f->root);
    CHECK_ERR(ms_keystore_create(other, "<nope/>", 7, FX_PASS, strlen(FX_PASS), &fx_params, d,
                                 sizeof d),
              MS_ERR_XML);
    CHECK(access(other, F_OK) != 0); /* nothing left behind */

    ms_keystore *ks = fx_open(f);
    ms_keystore_identity id;
    CHECK_ERR(ms_keystore_identity_get(ks, &id), MS_OK);
    CHECK(strcmp(id.user_uri, f->dev.user_uri) == 0);
    CHECK(strcmp(id.device_id, FX_DEVICE) == 0);
    CHECK(strcmp(id.kms_uri, FX_KMS) == 0);
    CHECK(id.scheme.scheme == MS_MIKEY_ID_SCHEME_HASHED_UID);
    CHECK(id.scheme.period_len == FX_PERIOD_LEN);
    CHECK_MEM(id.Z, f->cert.Z, sizeof id.Z);
    ms_keystore_close(ks);

    /* Wrong passphrase. */
    ks = NULL;
    CHECK_ERR(ms_keystore_open(&ks, f->dir, "wrong", 5, d, sizeof d), MS_ERR_PASSPHRASE);
    CHECK(ks == NULL);
    CHECK_ERR(ms_keystore_open(&ks, f->dir, FX_PASS, strlen(FX_PASS) - 1, d, sizeof d),
              MS_ERR_PASSPHRASE);
    /* Not a keystore. */
    CHECK(chmod(f->root, 0700) == 0);
    CHECK_ERR(ms_keystore_open(&ks, f->root, FX_PASS, strlen(FX_PASS), d, sizeof d),
              MS_ERR_KEYSTORE);
}

static void test_import_ok(fx *f)
{
    char d[D_CAP];
    ms_keystore *ks = fx_open(f);
    ms_key_package pkg;
    fx_package(f, &pkg, f->p0, f->now - 3600);
    fx_write(f, &pkg, &f->dev);

    ms_keyset k;
    CHECK_ERR(ms_keystore_get(ks, &k, NULL, f->p0, d, sizeof d), MS_ERR_NO_KEYS);
    ms_keystore_import_report rep;
    CHECK_ERR(ms_keystore_import(ks, &rep, f->xml, f->xml_len, f->now, d, sizeof d), MS_OK);
    CHECK(rep.n_periods == 1 && rep.periods[0] == f->p0);
    CHECK(rep.package_time == f->now - 3600);

    CHECK_ERR(ms_keystore_get(ks, &k, NULL, f->p0, d, sizeof d), MS_OK);
    CHECK_MEM(k.rsk, pkg.keysets[0].rsk, sizeof k.rsk);
    CHECK_MEM(k.ssk, pkg.keysets[0].ssk, sizeof k.ssk);
    CHECK_MEM(k.pvt, pkg.keysets[0].pvt, sizeof k.pvt);
    CHECK(k.user_id_len == 32);
    CHECK_MEM(k.user_id, pkg.keysets[0].user_id, 32);
    CHECK(k.period_start == f->p0_start && k.period_end == f->p0_end);
    CHECK(k.package_time == f->now - 3600);
    CHECK(strcmp(k.kms_uri, FX_KMS) == 0);
    ms_keyset_wipe(&k);
    ms_keystore_close(ks);

    /* Reopened: still there (stored, encrypted). */
    ks = fx_open(f);
    CHECK_ERR(ms_keystore_get(ks, &k, NULL, f->p0, d, sizeof d), MS_OK);
    CHECK_MEM(k.rsk, pkg.keysets[0].rsk, sizeof k.rsk);
    ms_keyset_wipe(&k);
    /* Its RSK must not be on disk in clear. */
    char cmd[1024], hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", pkg.keysets[0].rsk[1 + i]);
    snprintf(cmd, sizeof cmd, "grep -rqi %s '%s'", hex, f->dir);
    CHECK(system(cmd) != 0);

    /* Replays: the same package, and an older one. A newer one replaces the keys. */
    CHECK_ERR(fx_import(f, ks, f->now, d, sizeof d), MS_ERR_PACKAGE_REPLAY);
    CHECK(strstr(d, "not newer") != NULL);
    fx_package(f, &pkg, f->p0, f->now - 7200);
    fx_write(f, &pkg, &f->dev);
    CHECK_ERR(fx_import(f, ks, f->now, d, sizeof d), MS_ERR_PACKAGE_REPLAY);
    fx_package(f, &pkg, f->p0, f->now - 60);
    fx_write(f, &pkg, &f->dev);
    CHECK_ERR(fx_import(f, ks, f->now, d, sizeof d), MS_OK);
    CHECK_ERR(ms_keystore_get(ks, &k, NULL, f->p0, d, sizeof d), MS_OK);
    CHECK_MEM(k.ssk, pkg.keysets[0].ssk, sizeof k.ssk); /* fresh SSK of the new package */
    CHECK(k.package_time == f->now - 60);
    ms_keyset_wipe(&k);
    ms_keystore_close(ks);
}

/* Each refusal leaves the store as it was: nothing for period p0 + 1. */
static void expect_refused(fx *f, ms_keystore *ks, ms_err want, const char *why)
{
    char d[D_CAP];
    ms_err got = fx_import(f, ks, f->now, d, sizeof d);
    if (got != want)
        fprintf(stderr, "refusal '%s': got %s (%s), want %s\n", why, ms_errname(got), d,
                ms_errname(want));
    CHECK(got == want);
    CHECK(d[0] != '\0'); /* says why */
    ms_keyset k;
    CHECK_ERR(ms_keystore_get(ks, &k, NULL, f->p0 + 1, d, sizeof d), MS_ERR_NO_KEYS);
}

static void test_refusals(fx *f)
{
    ms_keystore *ks = fx_open(f);
    ms_key_package pkg;
    ms_device_keys other = f->dev;
    uint64_t t = f->now;

    /* Wrong TrK: the KMS wrapped under another transport key (same ids). */
    fx_package(f, &pkg, f->p0 + 1, t);
    ms_test_random(other.trk, sizeof other.trk);
    fx_write(f, &pkg, &other);
    expect_refused(f, ks, MS_ERR_PACKAGE_DECRYPT, "wrong TrK");

    /* Wrong InK: signed under another integrity key. */
    other = f->dev;
    ms_test_random(other.ink, sizeof other.ink);
    fx_write(f, &pkg, &other);
    expect_refused(f, ks, MS_ERR_PACKAGE_SIGNATURE, "wrong InK");

    /* Tampered: one character of the signed response changed. */
    fx_write(f, &pkg, &f->dev);
    char *url = strstr(f->xml, "keymanagement/identity");
    CHECK(url != NULL);
    if (url != NULL)
        url[0] = 'K';
    expect_refused(f, ks, MS_ERR_PACKAGE_SIGNATURE, "tampered");

    /* Other device, other user (each properly signed under this device's keys). */
    fx_package(f, &pkg, f->p0 + 1, t);
    snprintf(pkg.device_id, sizeof pkg.device_id, "%s", "alice-tablet-2");
    fx_write(f, &pkg, &f->dev);
    expect_refused(f, ks, MS_ERR_PACKAGE_DEVICE, "other device");
    fx_package(f, &pkg, f->p0 + 1, t);
    snprintf(pkg.user_uri, sizeof pkg.user_uri, "%s", "sip:bob@example.org");
    fx_write(f, &pkg, &f->dev);
    expect_refused(f, ks, MS_ERR_PACKAGE_DEVICE, "other user");
    fx_package(f, &pkg, f->p0 + 1, t);
    fx_keyset(f, &pkg.keysets[0], "sip:bob@example.org", f->p0 + 1);
    fx_write(f, &pkg, &f->dev);
    expect_refused(f, ks, MS_ERR_PACKAGE_DEVICE, "key set of another user");

    /* Another KMS. */
    fx_package(f, &pkg, f->p0 + 1, t);
    snprintf(pkg.kms_uri, sizeof pkg.kms_uri, "%s", "kms.other.org");
    snprintf(pkg.cert.kms_uri, sizeof pkg.cert.kms_uri, "%s", "kms.other.org");
    fx_write(f, &pkg, &f->dev);
    expect_refused(f, ks, MS_ERR_MIKEY_UNKNOWN_KMS, "other KMS");

    /* Expired period: a key set for a period that ended. */
    ms_keystore_close(ks);
    ks = fx_open(f);
    fx_package(f, &pkg, f->p0 - 1, t);
    fx_write(f, &pkg, &f->dev);
    expect_refused(f, ks, MS_ERR_PERIOD, "expired period");
    fx_package(f, &pkg, f->p0 + 1, t);
    pkg.keysets[0].valid_to = t - 10;
    fx_write(f, &pkg, &f->dev);
    expect_refused(f, ks, MS_ERR_PERIOD, "ValidTo past");

    /* Revoked key set. */
    fx_package(f, &pkg, f->p0 + 1, t);
    pkg.keysets[0].revoked = true;
    fx_write(f, &pkg, &f->dev);
    expect_refused(f, ks, MS_ERR_INVALID, "revoked");

    /* UserID that is not this user's identifier for the period. */
    fx_package(f, &pkg, f->p0 + 1, t);
    pkg.keysets[0].user_id[5] ^= 1;
    fx_write(f, &pkg, &f->dev);
    expect_refused(f, ks, MS_ERR_IDENTITY, "UserID");

    /* RSK issued for another identifier (UserID correct): fails RFC 6508 6.1.2. */
    ms_kmsif_keyset bob;
    fx_keyset(f, &bob, "sip:bob@example.org", f->p0 + 1);
    fx_package(f, &pkg, f->p0 + 1, t);
    memcpy(pkg.keysets[0].rsk, bob.rsk, sizeof bob.rsk);
    fx_write(f, &pkg, &f->dev);
    expect_refused(f, ks, MS_ERR_RSK_INVALID, "RSK");

    /* SSK/PVT of another identifier: fails RFC 6507 5.1.2. */
    fx_package(f, &pkg, f->p0 + 1, t);
    memcpy(pkg.keysets[0].ssk, bob.ssk, sizeof bob.ssk);
    memcpy(pkg.keysets[0].pvt, bob.pvt, sizeof bob.pvt);
    fx_write(f, &pkg, &f->dev);
    expect_refused(f, ks, MS_ERR_SSK_INVALID, "SSK");

    /* A package whose second key set fails stores neither. */
    fx_package(f, &pkg, f->p0 + 1, t);
    pkg.n_keysets = 2;
    fx_keyset(f, &pkg.keysets[1], f->dev.user_uri, f->p0 + 2);
    pkg.keysets[1].ssk[3] ^= 1;
    fx_write(f, &pkg, &f->dev);
    expect_refused(f, ks, MS_ERR_SSK_INVALID, "second key set");

    /* Malformed and oversized XML. */
    memcpy(f->xml, "<KmsResponse", 12);
    f->xml_len = 12;
    expect_refused(f, ks, MS_ERR_XML, "malformed XML");

    /* After all that, the good package still imports. */
    fx_package(f, &pkg, f->p0 + 1, t);
    fx_write(f, &pkg, &f->dev);
    char d[D_CAP];
    CHECK_ERR(fx_import(f, ks, f->now, d, sizeof d), MS_OK);
    ms_keystore_close(ks);
}

static int copy_file(const char *from, const char *to)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && chmod 600 '%s'", from, to, to);
    return system(cmd);
}

static void test_corrupted(fx *f)
{
    char d[D_CAP], name[96], p[512], saved[512];
    ms_keystore *ks = fx_open(f);
    ms_keyset k;

    /* A flipped bit in a key set file: named in the refusal. */
    ks_entry_name(name, sizeof name, FX_KMS, f->p0);
    fx_path(f, p, sizeof p, name);
    snprintf(saved, sizeof saved, "%s/saved", f->root);
    CHECK(copy_file(p, saved) == 0);
    fx_flip(p, -5);
    CHECK_ERR(ms_keystore_get(ks, &k, NULL, f->p0, d, sizeof d), MS_ERR_KEYSTORE);
    CHECK(strstr(d, name) != NULL);
    ms_keystore_entry list[8];
    size_t n = 0;
    CHECK_ERR(ms_keystore_list(ks, list, 8, &n, f->now, d, sizeof d), MS_ERR_KEYSTORE);
    CHECK(copy_file(saved, p) == 0);
    CHECK_ERR(ms_keystore_get(ks, &k, NULL, f->p0, d, sizeof d), MS_OK);
    ms_keyset_wipe(&k);

    /* A file renamed to another period's name (the name is authenticated). */
    char name2[96], p2[512];
    ks_entry_name(name2, sizeof name2, FX_KMS, f->p0 + 5);
    fx_path(f, p2, sizeof p2, name2);
    CHECK(copy_file(p, p2) == 0);
    CHECK_ERR(ms_keystore_get(ks, &k, NULL, f->p0 + 5, d, sizeof d), MS_ERR_KEYSTORE);
    CHECK(unlink(p2) == 0);

    /* A foreign file: the same entry from another keystore with the same passphrase. */
    fx g = *f;
    snprintf(g.dir, sizeof g.dir, "%s/ks2", f->root);
    g.xml = malloc(FX_XML_CAP);
    fx_create(&g);
    ms_keystore *ks2 = fx_open(&g);
    ms_key_package pkg;
    fx_package(&g, &pkg, f->p0 + 2, f->now);
    fx_write(&g, &pkg, &g.dev);
    CHECK_ERR(fx_import(&g, ks2, f->now, d, sizeof d), MS_OK);
    ms_keystore_close(ks2);
    char foreign[512], mine[512];
    ks_entry_name(name2, sizeof name2, FX_KMS, f->p0 + 2);
    snprintf(foreign, sizeof foreign, "%s/%s", g.dir, name2);
    fx_path(f, mine, sizeof mine, name2);
    CHECK(copy_file(foreign, mine) == 0);
    CHECK_ERR(ms_keystore_get(ks, &k, NULL, f->p0 + 2, d, sizeof d), MS_ERR_KEYSTORE);
    CHECK(strstr(d, name2) != NULL);
    CHECK(unlink(mine) == 0);
    free(g.xml);
    ms_keystore_close(ks);

    /* Corrupted identity and header: open refuses, naming the file. */
    fx_path(f, p, sizeof p, KS_IDENTITY_NAME);
    CHECK(copy_file(p, saved) == 0);
    fx_flip(p, 30);
    ks = NULL;
    CHECK_ERR(ms_keystore_open(&ks, f->dir, FX_PASS, strlen(FX_PASS), d, sizeof d),
              MS_ERR_KEYSTORE);
    CHECK(strstr(d, KS_IDENTITY_NAME) != NULL);
    CHECK(copy_file(saved, p) == 0);
    fx_path(f, p, sizeof p, KS_HEADER_NAME);
    CHECK(copy_file(p, saved) == 0);
    fx_flip(p, 20); /* the salt: caught by the header checksum */
    CHECK_ERR(ms_keystore_open(&ks, f->dir, FX_PASS, strlen(FX_PASS), d, sizeof d),
              MS_ERR_KEYSTORE);
    CHECK(strstr(d, KS_HEADER_NAME) != NULL);
    CHECK(copy_file(saved, p) == 0);

    /* Permissions: a key file or the directory open to others. */
    fx_path(f, p, sizeof p, KS_IDENTITY_NAME);
    CHECK(chmod(p, 0644) == 0);
    CHECK_ERR(ms_keystore_open(&ks, f->dir, FX_PASS, strlen(FX_PASS), d, sizeof d),
              MS_ERR_KEYFILE_MODE);
    CHECK(chmod(p, 0600) == 0);
    CHECK(chmod(f->dir, 0755) == 0);
    CHECK_ERR(ms_keystore_open(&ks, f->dir, FX_PASS, strlen(FX_PASS), d, sizeof d),
              MS_ERR_KEYFILE_MODE);
    CHECK(chmod(f->dir, 0700) == 0);
    ks = fx_open(f);
    ms_keystore_close(ks);
}

/* RFC 6509 monthly tel identifiers work the same way. */
static void test_monthly(void)
{
    fx f;
    char d[D_CAP];
    fx_init(&f, 1);
    fx_create(&f);
    ms_keystore *ks = fx_open(&f);
    ms_key_package pkg;
    fx_package(&f, &pkg, f.p0, f.now);
    fx_write(&f, &pkg, &f.dev);
    CHECK_ERR(fx_import(&f, ks, f.now, d, sizeof d), MS_OK);
    ms_keyset k;
    CHECK_ERR(ms_keystore_get(ks, &k, NULL, f.p0, d, sizeof d), MS_OK);
    CHECK(k.user_id_len == 26 && memcmp(k.user_id, "2026-06", 7) == 0);
    ms_keyset_wipe(&k);
    ms_keystore_close(ks);
    fx_cleanup(&f);
}

int main(void)
{
    ms_test_seed();
    fx f;
    fx_init(&f, 0);
    test_create_open(&f);
    test_import_ok(&f);
    test_refusals(&f);
    test_corrupted(&f);
    fx_cleanup(&f);
    test_monthly();
    return ms_test_finish();
}
