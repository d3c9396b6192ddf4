/*
 * The KMS store: open/create and what it refuses, settings, users, devices, key sets,
 * transactions, each rejection with its exact code, and the sealing of secret columns:
 * nothing secret in clear in the file, the wrong store key refused, and a sealed value
 * copied to another row or column refused (the associated data binds it to its place).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "kms/store.h"
#include "testutil.h"

static char dir[] = "/tmp/ms_test_store_XXXXXX";
static char path[256];
static ms_kms_secrets *sec;

static void path_for(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* Direct SQL on the store file, as an attacker with the file (or a test) would. */
static int raw_exec(const char *file, const char *sql)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(file, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        fprintf(stderr, "raw_exec: %s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc;
}

/* First column of the first row of `sql` as a blob copied to out (returns its length,
 * or -1). */
static int raw_blob(const char *file, const char *sql, uint8_t *out, size_t cap)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int n = -1;
    if (sqlite3_open(file, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW) {
        int len = sqlite3_column_bytes(q, 0);
        if (len >= 0 && (size_t)len <= cap) {
            memcpy(out, sqlite3_column_blob(q, 0), (size_t)len);
            n = len;
        }
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return 1;
    return 0;
}

static void file_contains_check(const char *file, const uint8_t *secret, size_t len,
                                int *found)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL)
        return;
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (contains(buf, n, secret, len))
        *found = 1;
}

static void make_device(ms_device *d, const char *id, const char *uri)
{
    memset(d, 0, sizeof *d);
    snprintf(d->id, sizeof d->id, "%s", id);
    snprintf(d->user_uri, sizeof d->user_uri, "%s", uri);
    ms_test_random(d->trk, sizeof d->trk);
    ms_test_random(d->ink, sizeof d->ink);
    d->trk_id = 0x20000001u + (uint32_t)(ms_test_random_u64() & 0xffff);
    d->ink_id = 0x30000001u + (uint32_t)(ms_test_random_u64() & 0xffff);
}

static void make_keyset(ms_keyset *ks, const char *dev, const char *uri, uint64_t period)
{
    memset(ks, 0, sizeof *ks);
    snprintf(ks->device_id, sizeof ks->device_id, "%s", dev);
    snprintf(ks->user_uri, sizeof ks->user_uri, "%s", uri);
    ks->period_no = period;
    ks->user_id_len = 32;
    ms_test_random(ks->user_id, ks->user_id_len);
    ks->rsk[0] = 0x04;
    ms_test_random(ks->rsk + 1, sizeof ks->rsk - 1);
    ms_test_random(ks->ssk, sizeof ks->ssk);
    ks->pvt[0] = 0x04;
    ms_test_random(ks->pvt + 1, sizeof ks->pvt - 1);
    ks->issued_at = 3900000000u;
}

static int keyset_equal(const ms_keyset *a, const ms_keyset *b)
{
    return strcmp(a->device_id, b->device_id) == 0 && strcmp(a->user_uri, b->user_uri) == 0 &&
           a->period_no == b->period_no && a->user_id_len == b->user_id_len &&
           memcmp(a->user_id, b->user_id, a->user_id_len) == 0 &&
           memcmp(a->rsk, b->rsk, sizeof a->rsk) == 0 &&
           memcmp(a->ssk, b->ssk, sizeof a->ssk) == 0 &&
           memcmp(a->pvt, b->pvt, sizeof a->pvt) == 0 && a->issued_at == b->issued_at;
}

/* ---- open ------------------------------------------------------------------------- */

static void test_open(void)
{
    char p[300];
    ms_store *st = NULL;
    path_for(p, sizeof p, "absent.db");
    CHECK_ERR(ms_store_open(&st, p, false), MS_ERR_STORE);
    CHECK(st == NULL);
    CHECK(access(p, F_OK) != 0); /* not created by a failed open */
    CHECK_ERR(ms_store_open(NULL, p, true), MS_ERR_ARG);
    CHECK_ERR(ms_store_open(&st, NULL, true), MS_ERR_ARG);
    CHECK_ERR(ms_store_open(&st, "", true), MS_ERR_ARG);

    CHECK_ERR(ms_store_open(&st, p, true), MS_OK);
    CHECK(ms_store_errmsg(st) != NULL);
    ms_store_close(st);
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    /* reopen without create; WAL is the journal mode on disk */
    CHECK_ERR(ms_store_open(&st, p, false), MS_OK);
    ms_store_close(st);
    uint8_t mode[8] = {0};
    CHECK(raw_blob(p, "PRAGMA journal_mode", mode, sizeof mode - 1) == 3 &&
          memcmp(mode, "wal", 3) == 0);
    /* create on an existing store keeps it */
    CHECK_ERR(ms_store_open(&st, p, true), MS_OK);
    CHECK_ERR(ms_store_user_add(st, "tel:+441111"), MS_OK);
    ms_store_close(st);
    CHECK_ERR(ms_store_open(&st, p, true), MS_OK);
    ms_user_status status;
    CHECK_ERR(ms_store_user_status(st, "tel:+441111", &status), MS_OK);
    ms_store_close(st);

    /* a schema version this code does not know */
    CHECK(raw_exec(p, "UPDATE schema_version SET version = 2") == SQLITE_OK);
    CHECK_ERR(ms_store_open(&st, p, false), MS_ERR_STORE);
    CHECK_ERR(ms_store_open(&st, p, true), MS_ERR_STORE);

    /* an SQLite file that is not a KMS store */
    path_for(p, sizeof p, "other.db");
    CHECK(raw_exec(p, "CREATE TABLE t(x)") == SQLITE_OK);
    CHECK_ERR(ms_store_open(&st, p, false), MS_ERR_STORE);

    /* a symbolic link is not followed */
    char target[300];
    path_for(target, sizeof target, "target.db");
    path_for(p, sizeof p, "link.db");
    CHECK(symlink(target, p) == 0);
    CHECK_ERR(ms_store_open(&st, p, true), MS_ERR_STORE);
    CHECK(access(target, F_OK) != 0);

    /* not SQLite at all */
    path_for(p, sizeof p, "junk.db");
    FILE *f = fopen(p, "wb");
    if (f != NULL) {
        for (int i = 0; i < 4096; i++)
            fputc(0x5a, f);
        fclose(f);
    }
    CHECK_ERR(ms_store_open(&st, p, false), MS_ERR_STORE);
    CHECK_ERR(ms_store_open(&st, p, true), MS_ERR_STORE);
    ms_store_close(NULL);
}

/* ---- settings --------------------------------------------------------------------- */

static void test_settings(ms_store *st)
{
    char v[64];
    CHECK_ERR(ms_store_get(st, "kms_uri", v, sizeof v), MS_ERR_STORE); /* absent */
    CHECK_ERR(ms_store_set(st, "kms_uri", "kms.example.org"), MS_OK);
    CHECK_ERR(ms_store_get(st, "kms_uri", v, sizeof v), MS_OK);
    CHECK(strcmp(v, "kms.example.org") == 0);
    CHECK_ERR(ms_store_set(st, "kms_uri", "kms2.example.org"), MS_OK); /* overwrite */
    CHECK_ERR(ms_store_get(st, "kms_uri", v, sizeof v), MS_OK);
    CHECK(strcmp(v, "kms2.example.org") == 0);
    CHECK_ERR(ms_store_get(st, "kms_uri", v, 16), MS_ERR_BUFFER_TOO_SMALL); /* 16 + NUL */
    CHECK_ERR(ms_store_get(st, "kms_uri", v, 17), MS_OK);
    CHECK_ERR(ms_store_set(st, "empty", ""), MS_OK);
    CHECK_ERR(ms_store_get(st, "empty", v, 1), MS_OK);
    CHECK(v[0] == '\0');
    CHECK_ERR(ms_store_set(st, "", "x"), MS_ERR_ARG);
    CHECK_ERR(ms_store_set(st, "k", NULL), MS_ERR_ARG);
    CHECK_ERR(ms_store_set(st, NULL, "x"), MS_ERR_ARG);
    CHECK_ERR(ms_store_get(st, "kms_uri", v, 0), MS_ERR_ARG);
    CHECK_ERR(ms_store_get(st, "kms_uri", NULL, 8), MS_ERR_ARG);

    /* Relaxed settings: both written together, and never inside a caller's transaction
     * (that would make the caller's commit relaxed too). */
    static const char *const keys[] = {"audit_seq", "audit_head"};
    static const char *const vals[] = {"7", "abcd"};
    CHECK_ERR(ms_store_set_relaxed(st, keys, vals, 2), MS_OK);
    CHECK_ERR(ms_store_get(st, "audit_seq", v, sizeof v), MS_OK);
    CHECK(strcmp(v, "7") == 0);
    CHECK_ERR(ms_store_get(st, "audit_head", v, sizeof v), MS_OK);
    CHECK(strcmp(v, "abcd") == 0);
    static const char *const bad_keys[] = {"ok_key", ""};
    CHECK_ERR(ms_store_set_relaxed(st, bad_keys, vals, 2), MS_ERR_ARG);
    CHECK_ERR(ms_store_get(st, "ok_key", v, sizeof v), MS_ERR_STORE); /* rolled back */
    CHECK_ERR(ms_store_begin(st), MS_OK);
    CHECK_ERR(ms_store_set_relaxed(st, keys, vals, 2), MS_ERR_ARG);
    ms_store_rollback(st);
    CHECK_ERR(ms_store_set_relaxed(st, keys, vals, 0), MS_ERR_ARG);
}

/* ---- users -------------------------------------------------------------------------- */

typedef struct list_rec {
    int n;
    int stop_after;
    char uri[8][64];
    ms_user_status status[8];
    size_t devices[8];
} list_rec;

static int user_cb(void *ctx, const char *uri, ms_user_status status, size_t n_devices)
{
    list_rec *r = ctx;
    if (r->n < 8) {
        snprintf(r->uri[r->n], sizeof r->uri[r->n], "%s", uri);
        r->status[r->n] = status;
        r->devices[r->n] = n_devices;
    }
    r->n++;
    return r->stop_after > 0 && r->n >= r->stop_after;
}

static int pair_cb(void *ctx, const char *a, const char *b)
{
    list_rec *r = ctx;
    if (r->n < 8)
        snprintf(r->uri[r->n], sizeof r->uri[r->n], "%s|%s", a, b);
    r->n++;
    return r->stop_after > 0 && r->n >= r->stop_after;
}

static void test_users(ms_store *st)
{
    ms_user_status status = MS_USER_SUSPENDED;
    CHECK_ERR(ms_store_user_add(st, "tel:+447700900123"), MS_OK);
    CHECK_ERR(ms_store_user_add(st, "tel:+447700900123"), MS_ERR_EXISTS);
    CHECK_ERR(ms_store_user_add(st, "sip:alice@example.org"), MS_OK);
    CHECK_ERR(ms_store_user_add(st, "mcptt-id:bob@example.org"), MS_OK);
    CHECK_ERR(ms_store_user_status(st, "tel:+447700900123", &status), MS_OK);
    CHECK(status == MS_USER_ACTIVE);
    CHECK_ERR(ms_store_user_set_status(st, "sip:alice@example.org", MS_USER_SUSPENDED), MS_OK);
    CHECK_ERR(ms_store_user_status(st, "sip:alice@example.org", &status), MS_OK);
    CHECK(status == MS_USER_SUSPENDED);
    CHECK_ERR(ms_store_user_set_status(st, "sip:alice@example.org", MS_USER_ACTIVE), MS_OK);
    CHECK_ERR(ms_store_user_status(st, "sip:alice@example.org", &status), MS_OK);
    CHECK(status == MS_USER_ACTIVE);
    CHECK_ERR(ms_store_user_set_status(st, "sip:alice@example.org", MS_USER_SUSPENDED), MS_OK);

    /* unknown users */
    CHECK_ERR(ms_store_user_status(st, "tel:+15550000", &status), MS_ERR_USER_UNKNOWN);
    CHECK_ERR(ms_store_user_set_status(st, "tel:+15550000", MS_USER_SUSPENDED),
              MS_ERR_USER_UNKNOWN);
    CHECK_ERR(ms_store_user_remove(st, "tel:+15550000"), MS_ERR_USER_UNKNOWN);

    /* malformed names */
    char longuri[MS_STORE_URI_MAX + 2];
    memset(longuri, 'a', sizeof longuri - 1);
    longuri[sizeof longuri - 1] = '\0';
    CHECK_ERR(ms_store_user_add(st, longuri), MS_ERR_ARG);
    longuri[MS_STORE_URI_MAX] = '\0'; /* exactly the maximum is fine */
    CHECK_ERR(ms_store_user_add(st, longuri), MS_OK);
    CHECK_ERR(ms_store_user_remove(st, longuri), MS_OK);
    CHECK_ERR(ms_store_user_add(st, ""), MS_ERR_ARG);
    CHECK_ERR(ms_store_user_add(st, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_store_user_add(st, "tel:+44\n1"), MS_ERR_ARG);
    CHECK_ERR(ms_store_user_set_status(st, "tel:+447700900123", (ms_user_status)7), MS_ERR_ARG);
    CHECK_ERR(ms_store_user_status(st, "tel:+447700900123", NULL), MS_ERR_ARG);
    CHECK_ERR(ms_store_user_list(st, NULL, NULL), MS_ERR_ARG);

    /* list: URI order, status, device counts, early stop */
    list_rec r = {0};
    CHECK_ERR(ms_store_user_list(st, user_cb, &r), MS_OK);
    CHECK(r.n == 3);
    CHECK(strcmp(r.uri[0], "mcptt-id:bob@example.org") == 0);
    CHECK(strcmp(r.uri[1], "sip:alice@example.org") == 0 && r.status[1] == MS_USER_SUSPENDED);
    CHECK(strcmp(r.uri[2], "tel:+447700900123") == 0 && r.status[2] == MS_USER_ACTIVE);
    CHECK(r.devices[0] == 0 && r.devices[1] == 0 && r.devices[2] == 0);
    list_rec r1 = {.stop_after = 1};
    CHECK_ERR(ms_store_user_list(st, user_cb, &r1), MS_OK);
    CHECK(r1.n == 1);
}

/* ---- devices ------------------------------------------------------------------------ */

static ms_device dev_a, dev_b;

static void test_devices(ms_store *st)
{
    ms_device d, got;
    make_device(&dev_a, "dev-a", "tel:+447700900123");
    make_device(&dev_b, "dev-b", "tel:+447700900123");
    CHECK_ERR(ms_store_device_add(st, sec, &dev_a), MS_OK);
    CHECK_ERR(ms_store_device_add(st, sec, &dev_b), MS_OK);
    CHECK_ERR(ms_store_device_add(st, sec, &dev_a), MS_ERR_EXISTS);
    make_device(&d, "dev-x", "tel:+15550000");
    CHECK_ERR(ms_store_device_add(st, sec, &d), MS_ERR_USER_UNKNOWN);
    make_device(&d, "dev-c", "sip:alice@example.org"); /* suspended users may enrol */
    CHECK_ERR(ms_store_device_add(st, sec, &d), MS_OK);
    make_device(&d, "", "tel:+447700900123");
    CHECK_ERR(ms_store_device_add(st, sec, &d), MS_ERR_ARG);
    CHECK_ERR(ms_store_device_add(st, NULL, &dev_a), MS_ERR_ARG);
    CHECK_ERR(ms_store_device_add(st, sec, NULL), MS_ERR_ARG);

    CHECK_ERR(ms_store_device_get(st, sec, "dev-a", &got), MS_OK);
    CHECK(strcmp(got.id, "dev-a") == 0 && strcmp(got.user_uri, "tel:+447700900123") == 0);
    CHECK_MEM(got.trk, dev_a.trk, sizeof got.trk);
    CHECK_MEM(got.ink, dev_a.ink, sizeof got.ink);
    CHECK(got.trk_id == dev_a.trk_id && got.ink_id == dev_a.ink_id);
    CHECK_ERR(ms_store_device_get(st, sec, "dev-zz", &got), MS_ERR_DEVICE_UNKNOWN);
    CHECK_ERR(ms_store_device_get(st, sec, NULL, &got), MS_ERR_ARG);

    list_rec r = {0};
    CHECK_ERR(ms_store_device_list(st, NULL, pair_cb, &r), MS_OK);
    CHECK(r.n == 3);
    CHECK(strcmp(r.uri[0], "dev-a|tel:+447700900123") == 0);
    CHECK(strcmp(r.uri[2], "dev-c|sip:alice@example.org") == 0);
    list_rec r2 = {0};
    CHECK_ERR(ms_store_device_list(st, "tel:+447700900123", pair_cb, &r2), MS_OK);
    CHECK(r2.n == 2);
    list_rec r3 = {0};
    CHECK_ERR(ms_store_device_list(st, "mcptt-id:bob@example.org", pair_cb, &r3), MS_OK);
    CHECK(r3.n == 0);
    CHECK_ERR(ms_store_device_list(st, "tel:+15550000", pair_cb, &r3), MS_ERR_USER_UNKNOWN);
    list_rec r4 = {.stop_after = 1};
    CHECK_ERR(ms_store_device_list(st, NULL, pair_cb, &r4), MS_OK);
    CHECK(r4.n == 1);

    list_rec u = {0};
    CHECK_ERR(ms_store_user_list(st, user_cb, &u), MS_OK);
    CHECK(u.n == 3 && u.devices[1] == 1 && u.devices[2] == 2);
}

/* Sealed columns: not in clear on disk, refused under another key, and bound to their
 * row and column. */
static void test_device_sealing(ms_store *st)
{
    ms_device got;
    /* the raw column is nonce || ciphertext || tag, not the key */
    uint8_t blob[128];
    int n = raw_blob(path, "SELECT trk FROM devices WHERE id = 'dev-a'", blob, sizeof blob);
    CHECK(n == 12 + 32 + 16);
    CHECK(n > 0 && !contains(blob, (size_t)n, dev_a.trk, 16));
    int found = 0;
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", path);
    file_contains_check(path, dev_a.trk, sizeof dev_a.trk, &found);
    file_contains_check(wal, dev_a.trk, sizeof dev_a.trk, &found);
    file_contains_check(path, dev_a.ink, sizeof dev_a.ink, &found);
    file_contains_check(wal, dev_a.ink, sizeof dev_a.ink, &found);
    CHECK(found == 0);

    /* another store key */
    ms_kms_secrets *other = NULL;
    CHECK_ERR(ms_kms_secrets_new(&other), MS_OK);
    if (other != NULL) {
        memcpy(other, sec, sizeof *other);
        other->store_key[5] ^= 1;
        CHECK_ERR(ms_store_device_get(st, other, "dev-a", &got), MS_ERR_STORE);
        CHECK(got.trk[0] == 0 && got.ink[0] == 0 && got.id[0] == 0); /* wiped */
        ms_kms_secrets_free(other);
    }

    /* dev-a's TrK copied onto dev-b: dev-b no longer opens, dev-a still does */
    CHECK(raw_exec(path, "UPDATE devices SET trk = (SELECT trk FROM devices WHERE id = "
                         "'dev-a') WHERE id = 'dev-b'") == SQLITE_OK);
    CHECK_ERR(ms_store_device_get(st, sec, "dev-b", &got), MS_ERR_STORE);
    CHECK_ERR(ms_store_device_get(st, sec, "dev-a", &got), MS_OK);
    /* TrK and InK swapped within a row */
    CHECK(raw_exec(path, "UPDATE devices SET trk = ink, ink = trk WHERE id = 'dev-a'") ==
          SQLITE_OK);
    CHECK_ERR(ms_store_device_get(st, sec, "dev-a", &got), MS_ERR_STORE);
    CHECK(raw_exec(path, "UPDATE devices SET trk = ink, ink = trk WHERE id = 'dev-a'") ==
          SQLITE_OK);
    CHECK_ERR(ms_store_device_get(st, sec, "dev-a", &got), MS_OK);
    /* one bit of the ciphertext flipped */
    CHECK(raw_exec(path, "UPDATE devices SET ink = substr(ink, 1, 20) || "
                         "(CASE WHEN substr(ink, 21, 1) = x'00' THEN x'01' ELSE x'00' END) || "
                         "substr(ink, 22) WHERE id = 'dev-a'") == SQLITE_OK);
    CHECK_ERR(ms_store_device_get(st, sec, "dev-a", &got), MS_ERR_STORE);
    /* truncated */
    CHECK(raw_exec(path, "UPDATE devices SET trk = substr(trk, 1, 40) WHERE id = 'dev-c'") ==
          SQLITE_OK);
    CHECK_ERR(ms_store_device_get(st, sec, "dev-c", &got), MS_ERR_STORE);
    /* restore dev-a and dev-b for the next tests */
    CHECK_ERR(ms_store_user_remove(st, "tel:+447700900123"), MS_OK);
    CHECK_ERR(ms_store_user_add(st, "tel:+447700900123"), MS_OK);
    CHECK_ERR(ms_store_device_add(st, sec, &dev_a), MS_OK);
    CHECK_ERR(ms_store_device_add(st, sec, &dev_b), MS_OK);
    CHECK_ERR(ms_store_device_get(st, sec, "dev-b", &got), MS_OK);
    CHECK_MEM(got.trk, dev_b.trk, sizeof got.trk);
}

/* ---- key sets ----------------------------------------------------------------------- */

static void test_keysets(ms_store *st)
{
    const char *alice = "tel:+447700900123";
    ms_keyset ks1, ks2, ks3, got;
    make_keyset(&ks1, "dev-a", alice, 1400);
    make_keyset(&ks2, "dev-a", alice, 1401);
    make_keyset(&ks3, "dev-b", alice, 1400);
    CHECK_ERR(ms_store_keyset_put(st, sec, &ks1), MS_OK);
    CHECK_ERR(ms_store_keyset_put(st, sec, &ks2), MS_OK);
    CHECK_ERR(ms_store_keyset_put(st, sec, &ks3), MS_OK);
    ms_keyset again = ks1;
    again.ssk[0] ^= 1;
    CHECK_ERR(ms_store_keyset_put(st, sec, &again), MS_ERR_EXISTS); /* never replaced */
    CHECK_ERR(ms_store_keyset_get(st, sec, "dev-a", 1400, &got), MS_OK);
    CHECK(keyset_equal(&got, &ks1));
    CHECK_ERR(ms_store_keyset_get(st, sec, "dev-a", 1401, &got), MS_OK);
    CHECK(keyset_equal(&got, &ks2));

    /* rejections */
    ms_keyset bad;
    make_keyset(&bad, "dev-zz", alice, 1400);
    CHECK_ERR(ms_store_keyset_put(st, sec, &bad), MS_ERR_DEVICE_UNKNOWN);
    make_keyset(&bad, "dev-a", "sip:alice@example.org", 1402); /* not this user's device */
    CHECK_ERR(ms_store_keyset_put(st, sec, &bad), MS_ERR_DEVICE_UNKNOWN);
    make_keyset(&bad, "dev-a", alice, (uint64_t)INT64_MAX + 1);
    CHECK_ERR(ms_store_keyset_put(st, sec, &bad), MS_ERR_ARG);
    make_keyset(&bad, "dev-a", alice, 1402);
    bad.user_id_len = 0;
    CHECK_ERR(ms_store_keyset_put(st, sec, &bad), MS_ERR_ARG);
    bad.user_id_len = MS_SAKKE_ID_MAX_BYTES + 1;
    CHECK_ERR(ms_store_keyset_put(st, sec, &bad), MS_ERR_ARG);
    CHECK_ERR(ms_store_keyset_get(st, sec, "dev-a", 1402, &got), MS_ERR_NO_KEYS);
    CHECK_ERR(ms_store_keyset_get(st, sec, "dev-zz", 1400, &got), MS_ERR_DEVICE_UNKNOWN);
    CHECK_ERR(ms_store_keyset_get(st, sec, "dev-a", (uint64_t)INT64_MAX + 1, &got), MS_ERR_ARG);
    CHECK_ERR(ms_store_keyset_get(st, NULL, "dev-a", 1400, &got), MS_ERR_ARG);

    /* by user; list by period */
    CHECK_ERR(ms_store_keyset_get_user(st, sec, alice, 1400, &got), MS_OK);
    CHECK(keyset_equal(&got, &ks1)); /* first device by id */
    CHECK_ERR(ms_store_keyset_get_user(st, sec, alice, 1402, &got), MS_ERR_NO_KEYS);
    CHECK_ERR(ms_store_keyset_get_user(st, sec, "tel:+15550000", 1400, &got),
              MS_ERR_USER_UNKNOWN);
    list_rec r = {0};
    CHECK_ERR(ms_store_keyset_list(st, 1400, pair_cb, &r), MS_OK);
    CHECK(r.n == 2 && strcmp(r.uri[0], "dev-a|tel:+447700900123") == 0 &&
          strcmp(r.uri[1], "dev-b|tel:+447700900123") == 0);
    list_rec r2 = {0};
    CHECK_ERR(ms_store_keyset_list(st, 1399, pair_cb, &r2), MS_OK);
    CHECK(r2.n == 0);

    /* the issuance insert: skips what exists, suspended users and strangers' devices */
    bool ins = true;
    CHECK_ERR(ms_store_keyset_put_new(st, sec, &again, &ins), MS_OK);
    CHECK(!ins);
    CHECK_ERR(ms_store_keyset_get(st, sec, "dev-a", 1400, &got), MS_OK);
    CHECK(keyset_equal(&got, &ks1));
    make_keyset(&bad, "dev-c", "sip:alice@example.org", 1400); /* suspended */
    CHECK_ERR(ms_store_keyset_put_new(st, sec, &bad, &ins), MS_OK);
    CHECK(!ins);
    make_keyset(&bad, "dev-zz", alice, 1400);
    CHECK_ERR(ms_store_keyset_put_new(st, sec, &bad, &ins), MS_OK);
    CHECK(!ins);
    make_keyset(&bad, "dev-b", alice, 1401);
    CHECK_ERR(ms_store_keyset_put_new(st, sec, &bad, &ins), MS_OK);
    CHECK(ins);
    CHECK_ERR(ms_store_keyset_put_new(st, sec, &bad, NULL), MS_ERR_ARG);

    /* secrets are sealed on disk */
    int found = 0;
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", path);
    file_contains_check(path, ks1.ssk, sizeof ks1.ssk, &found);
    file_contains_check(wal, ks1.ssk, sizeof ks1.ssk, &found);
    file_contains_check(path, ks1.rsk + 1, 64, &found);
    file_contains_check(wal, ks1.rsk + 1, 64, &found);
    CHECK(found == 0);

    /* the AAD swap: (dev-a, 1400)'s RSK copied to (dev-a, 1401) and to (dev-b, 1400) */
    CHECK(raw_exec(path, "UPDATE keysets SET rsk = (SELECT rsk FROM keysets WHERE "
                         "device_id = 'dev-a' AND period_no = 1400) WHERE device_id = "
                         "'dev-a' AND period_no = 1401") == SQLITE_OK);
    CHECK_ERR(ms_store_keyset_get(st, sec, "dev-a", 1401, &got), MS_ERR_STORE);
    CHECK(got.rsk[0] == 0 && got.device_id[0] == 0); /* wiped */
    CHECK(raw_exec(path, "UPDATE keysets SET ssk = (SELECT ssk FROM keysets WHERE "
                         "device_id = 'dev-a' AND period_no = 1400) WHERE device_id = "
                         "'dev-b' AND period_no = 1400") == SQLITE_OK);
    CHECK_ERR(ms_store_keyset_get(st, sec, "dev-b", 1400, &got), MS_ERR_STORE);
    CHECK_ERR(ms_store_keyset_get(st, sec, "dev-a", 1400, &got), MS_OK);
    CHECK(keyset_equal(&got, &ks1));
    /* a row renamed to another device does not open either */
    CHECK(raw_exec(path, "PRAGMA foreign_keys=OFF; UPDATE keysets SET device_id = 'dev-b', "
                         "period_no = 1402 WHERE device_id = 'dev-a' AND period_no = 1400") ==
          SQLITE_OK);
    CHECK_ERR(ms_store_keyset_get(st, sec, "dev-b", 1402, &got), MS_ERR_STORE);

    /* removing the user removes its devices and key sets */
    CHECK_ERR(ms_store_user_remove(st, alice), MS_OK);
    CHECK_ERR(ms_store_device_get(st, sec, "dev-a", &(ms_device){0}), MS_ERR_DEVICE_UNKNOWN);
    list_rec r3 = {0};
    CHECK_ERR(ms_store_keyset_list(st, 1400, pair_cb, &r3), MS_OK);
    CHECK(r3.n == 0);
    CHECK_ERR(ms_store_user_status(st, alice, &(ms_user_status){0}), MS_ERR_USER_UNKNOWN);
}

/* ---- transactions ------------------------------------------------------------------- */

static void test_transactions(ms_store *st)
{
    ms_user_status status;
    CHECK_ERR(ms_store_commit(st), MS_ERR_ARG); /* none open */
    ms_store_rollback(st);                       /* harmless */
    CHECK(!ms_store_in_transaction(st));
    CHECK_ERR(ms_store_begin(st), MS_OK);
    CHECK(ms_store_in_transaction(st));
    CHECK_ERR(ms_store_begin(st), MS_ERR_ARG); /* no nesting */
    CHECK_ERR(ms_store_user_add(st, "tel:+449001"), MS_OK);
    CHECK_ERR(ms_store_user_add(st, "tel:+449001"), MS_ERR_EXISTS); /* txn still usable */
    CHECK_ERR(ms_store_set(st, "t", "1"), MS_OK);
    ms_store_rollback(st);
    CHECK_ERR(ms_store_user_status(st, "tel:+449001", &status), MS_ERR_USER_UNKNOWN);
    char v[8];
    CHECK_ERR(ms_store_get(st, "t", v, sizeof v), MS_ERR_STORE);

    CHECK_ERR(ms_store_begin(st), MS_OK);
    CHECK_ERR(ms_store_user_add(st, "tel:+449002"), MS_OK);
    CHECK_ERR(ms_store_set(st, "t", "2"), MS_OK);
    CHECK_ERR(ms_store_commit(st), MS_OK);
    CHECK_ERR(ms_store_user_status(st, "tel:+449002", &status), MS_OK);
    CHECK_ERR(ms_store_get(st, "t", v, sizeof v), MS_OK);
    CHECK(strcmp(v, "2") == 0);

    /* an open transaction is rolled back by close */
    CHECK_ERR(ms_store_begin(st), MS_OK);
    CHECK_ERR(ms_store_user_add(st, "tel:+449003"), MS_OK);
    ms_store_close(st);
    ms_store *st2 = NULL;
    CHECK_ERR(ms_store_open(&st2, path, false), MS_OK);
    CHECK_ERR(ms_store_user_status(st2, "tel:+449003", &status), MS_ERR_USER_UNKNOWN);
    CHECK_ERR(ms_store_user_status(st2, "tel:+449002", &status), MS_OK);

    /* a second connection writing while the first holds a write transaction waits, and a
     * write from outside is seen by the store */
    CHECK(raw_exec(path, "INSERT INTO users(uri, status, created_at) VALUES('tel:+449004', 1, 0)")
          == SQLITE_OK);
    CHECK_ERR(ms_store_user_status(st2, "tel:+449004", &status), MS_OK);
    CHECK(status == MS_USER_SUSPENDED);
    CHECK(raw_exec(path, "PRAGMA integrity_check") == SQLITE_OK);
    ms_store_close(st2);
}

int main(void)
{
    ms_test_seed();
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(path, sizeof path, "%s/kms.db", dir);
    if (ms_kms_secrets_new(&sec) != MS_OK)
        return 2;
    ms_test_random(sec->store_key, sizeof sec->store_key);

    test_open();
    ms_store *st = NULL;
    CHECK_ERR(ms_store_open(&st, path, true), MS_OK);
    if (st != NULL) {
        test_settings(st);
        test_users(st);
        test_devices(st);
        test_device_sealing(st);
        test_keysets(st);
        test_transactions(st); /* closes st */
    }
    ms_kms_secrets_free(sec);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return ms_test_finish();
}
