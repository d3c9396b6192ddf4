/*
 * The KMS store: one SQLite file in WAL mode with synchronous=FULL, so a commit is on
 * disk when it returns and a crash (kill -9, power loss) leaves the last committed state.
 * Every change is one statement inside a transaction (the caller's, or one of its own
 * started with BEGIN IMMEDIATE so a writer never has to upgrade a read lock).
 *
 * Secret columns are sealed: nonce (12, random) || AES-256-GCM ciphertext || tag (16),
 * under the store key, with associated data naming the table, the column and the row
 * (device id, and the key period for key sets). A sealed value copied into another row
 * or column does not open. With random nonces one store key may seal about 2^32 values
 * (NIST SP 800-38D); a community of a million devices uses ~2.4e7 a year.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "crypto/rng.h"
#include "kms/store.h"

#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 30000

#define GCM_NONCE 12
#define GCM_TAG 16
#define SEALED_LEN(n) (GCM_NONCE + (n) + GCM_TAG)
#define AAD_MAX 160

/* Cached prepared statements (list queries get their own: their callbacks may call back
 * into the store). */
enum {
    S_SET,
    S_GET,
    S_USER_ADD,
    S_USER_STATUS,
    S_USER_SET_STATUS,
    S_USER_REMOVE,
    S_DEVICE_ADD,
    S_DEVICE_GET,
    S_DEVICE_EXISTS,
    S_KEYSET_PUT,
    S_KEYSET_PUT_NEW,
    S_KEYSET_GET,
    S_KEYSET_USER_FIRST,
    S_NONCE_USE,
    S_DEVICE_COUNT,
    N_STMT
};

static const char *const stmt_sql[N_STMT] = {
    [S_SET] = "INSERT INTO settings(key, value) VALUES(?1, ?2) "
              "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [S_GET] = "SELECT value FROM settings WHERE key = ?1",
    [S_USER_ADD] = "INSERT INTO users(uri, status, created_at) VALUES(?1, 0, ?2)",
    [S_USER_STATUS] = "SELECT status FROM users WHERE uri = ?1",
    [S_USER_SET_STATUS] = "UPDATE users SET status = ?2 WHERE uri = ?1",
    [S_USER_REMOVE] = "DELETE FROM users WHERE uri = ?1",
    [S_DEVICE_ADD] = "INSERT INTO devices(id, user_uri, trk, ink, trk_id, ink_id, created_at) "
                     "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_DEVICE_GET] = "SELECT user_uri, trk, ink, trk_id, ink_id FROM devices WHERE id = ?1",
    [S_DEVICE_EXISTS] = "SELECT 1 FROM devices WHERE id = ?1",
    /* The device row supplies the user: a key set can only be filed under its own
     * user's device. */
    [S_KEYSET_PUT] = "INSERT INTO keysets(device_id, period_no, user_uri, user_id, rsk, ssk, "
                     "pvt, issued_at) SELECT id, ?2, user_uri, ?3, ?4, ?5, ?6, ?7 "
                     "FROM devices WHERE id = ?1 AND user_uri = ?8",
    /* Issuance: skip what exists (a concurrent or earlier run's key set stays), and file
     * nothing for a device removed or a user suspended since the plan was made. */
    [S_KEYSET_PUT_NEW] = "INSERT INTO keysets(device_id, period_no, user_uri, user_id, rsk, "
                         "ssk, pvt, issued_at) SELECT d.id, ?2, d.user_uri, ?3, ?4, ?5, ?6, ?7 "
                         "FROM devices d JOIN users u ON u.uri = d.user_uri "
                         "WHERE d.id = ?1 AND d.user_uri = ?8 AND u.status = 0 "
                         "ON CONFLICT(period_no, device_id) DO NOTHING",
    [S_KEYSET_GET] = "SELECT user_uri, user_id, rsk, ssk, pvt, issued_at FROM keysets "
                     "WHERE device_id = ?1 AND period_no = ?2",
    [S_KEYSET_USER_FIRST] = "SELECT d.id FROM devices d JOIN keysets k ON k.period_no = ?2 "
                            "AND k.device_id = d.id WHERE d.user_uri = ?1 ORDER BY d.id "
                            "LIMIT 1",
    [S_NONCE_USE] = "INSERT INTO used_nonces(nonce, used_at) VALUES(?1, ?2)",
    [S_DEVICE_COUNT] = "SELECT count(*) FROM devices WHERE user_uri = ?1",
};

/* The nonces of signed requests and approved acts already carried out (never reused).
 * IF NOT EXISTS: a store made before roles gets the table when opened. */
#define NONCES_SQL \
    "CREATE TABLE IF NOT EXISTS used_nonces(nonce TEXT PRIMARY KEY, used_at INTEGER NOT NULL)" \
    " WITHOUT ROWID;"

static const char schema_sql[] =
    "CREATE TABLE schema_version(version INTEGER NOT NULL);"
    "CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE users(uri TEXT PRIMARY KEY, status INTEGER NOT NULL CHECK(status IN (0, 1)),"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE devices(id TEXT PRIMARY KEY,"
    " user_uri TEXT NOT NULL REFERENCES users(uri) ON DELETE CASCADE,"
    " trk BLOB NOT NULL, ink BLOB NOT NULL, trk_id INTEGER NOT NULL, ink_id INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX devices_by_user ON devices(user_uri, id);"
    "CREATE TABLE keysets(device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
    " period_no INTEGER NOT NULL CHECK(period_no >= 0),"
    " user_uri TEXT NOT NULL, user_id BLOB NOT NULL, rsk BLOB NOT NULL, ssk BLOB NOT NULL,"
    " pvt BLOB NOT NULL, issued_at INTEGER NOT NULL,"
    " PRIMARY KEY(period_no, device_id)) WITHOUT ROWID;"
    NONCES_SQL;
/* The key set primary key leads with the period: issuance's "lacking a key set" test,
 * the listing by period and the lookup by (device, period) all use it, so an insert
 * updates one B-tree only. */

struct ms_store {
    sqlite3 *db;
    sqlite3_stmt *stmt[N_STMT];
    EVP_CIPHER *gcm;       /* fetched once: an implicit fetch per value costs more than */
    EVP_CIPHER_CTX *cctx;  /* the encryption of it */
};

/* ---- helpers ----------------------------------------------------------------------- */

static uint64_t ntp_seconds(void)
{
    return ms_ntp_now() >> 32;
}

static ms_err prep(ms_store *st, int which, sqlite3_stmt **out)
{
    if (st->stmt[which] == NULL) {
        if (sqlite3_prepare_v3(st->db, stmt_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                               &st->stmt[which], NULL) != SQLITE_OK)
            return MS_ERR_STORE;
    } else {
        sqlite3_reset(st->stmt[which]);
        sqlite3_clear_bindings(st->stmt[which]);
    }
    *out = st->stmt[which];
    return MS_OK;
}

/* Leave a cached statement reset, so it holds no read snapshot or blob. */
static void done(sqlite3_stmt *q)
{
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
}

static ms_err exec(ms_store *st, const char *sql)
{
    return sqlite3_exec(st->db, sql, NULL, NULL, NULL) == SQLITE_OK ? MS_OK : MS_ERR_STORE;
}

/* Text that names a row: non-empty, at most max octets, no control characters. */
static bool name_ok(const char *s, size_t max)
{
    if (s == NULL)
        return false;
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static bool period_ok(uint64_t period_no)
{
    return period_no <= (uint64_t)INT64_MAX; /* SQLite integers are signed 64-bit */
}

/* A text column copied into out[cap]; MS_ERR_STORE if absent or too long (corruption). */
static ms_err col_text(sqlite3_stmt *q, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    int n = sqlite3_column_bytes(q, col);
    if (t == NULL || n < 0 || (size_t)n >= cap)
        return MS_ERR_STORE;
    memcpy(out, t, (size_t)n);
    out[n] = '\0';
    return MS_OK;
}

/* Joins the caller's transaction or runs in one of its own. */
static ms_err tx_enter(ms_store *st, bool *own)
{
    *own = sqlite3_get_autocommit(st->db) != 0;
    return *own ? exec(st, "BEGIN IMMEDIATE") : MS_OK;
}

static ms_err tx_leave(ms_store *st, bool own, ms_err err)
{
    if (!own)
        return err;
    if (err == MS_OK && exec(st, "COMMIT") == MS_OK)
        return MS_OK;
    exec(st, "ROLLBACK");
    return err == MS_OK ? MS_ERR_STORE : err;
}

/* ---- sealing ----------------------------------------------------------------------- */

/* table \0 column \0 device-id \0 period (8 octets, big-endian) */
static size_t make_aad(uint8_t aad[AAD_MAX], const char *table, const char *column,
                       const char *id, uint64_t period_no)
{
    size_t n = 0, l;
    l = strlen(table) + 1;
    memcpy(aad + n, table, l);
    n += l;
    l = strlen(column) + 1;
    memcpy(aad + n, column, l);
    n += l;
    l = strnlen(id, MS_STORE_DEVICE_ID_MAX) + 1;
    memcpy(aad + n, id, l - 1);
    aad[n + l - 1] = 0;
    n += l;
    for (int i = 7; i >= 0; i--)
        aad[n++] = (uint8_t)(period_no >> (8 * i));
    return n;
}

static ms_err seal(ms_store *st, const ms_kms_secrets *s, uint8_t *out, const uint8_t *pt,
                   size_t len, const uint8_t *aad, size_t aad_len)
{
    ms_err err = ms_rng_fill(NULL, out, GCM_NONCE);
    if (err != MS_OK)
        return err;
    EVP_CIPHER_CTX *c = st->cctx;
    int outl = 0, ok = 1;
    ok = ok && EVP_EncryptInit_ex(c, st->gcm, NULL, s->store_key, out) == 1;
    ok = ok && EVP_EncryptUpdate(c, NULL, &outl, aad, (int)aad_len) == 1;
    ok = ok && EVP_EncryptUpdate(c, out + GCM_NONCE, &outl, pt, (int)len) == 1 &&
         (size_t)outl == len;
    ok = ok && EVP_EncryptFinal_ex(c, out + GCM_NONCE + len, &outl) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, GCM_TAG,
                                   out + GCM_NONCE + len) == 1;
    EVP_CIPHER_CTX_reset(c); /* drops the key schedule */
    return ok ? MS_OK : MS_ERR_INTERNAL;
}

/* Opens a sealed column of exactly SEALED_LEN(len) octets; any mismatch (wrong store
 * key, altered or moved value) is MS_ERR_STORE and leaves pt zeroed. */
static ms_err unseal(ms_store *st, const ms_kms_secrets *s, uint8_t *pt, size_t len,
                     const void *blob, int blob_len, const uint8_t *aad, size_t aad_len)
{
    if (blob == NULL || blob_len < 0 || (size_t)blob_len != SEALED_LEN(len))
        return MS_ERR_STORE;
    const uint8_t *in = blob;
    uint8_t tag[GCM_TAG];
    memcpy(tag, in + GCM_NONCE + len, GCM_TAG);
    EVP_CIPHER_CTX *c = st->cctx;
    int outl = 0, ok = 1;
    ok = ok && EVP_DecryptInit_ex(c, st->gcm, NULL, s->store_key, in) == 1;
    ok = ok && EVP_DecryptUpdate(c, NULL, &outl, aad, (int)aad_len) == 1;
    ok = ok && EVP_DecryptUpdate(c, pt, &outl, in + GCM_NONCE, (int)len) == 1 &&
         (size_t)outl == len;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, GCM_TAG, tag) == 1;
    uint8_t none[GCM_TAG];
    ok = ok && EVP_DecryptFinal_ex(c, none, &outl) == 1; /* checks the tag */
    EVP_CIPHER_CTX_reset(c);
    if (!ok) {
        ms_wipe(pt, len);
        return MS_ERR_STORE;
    }
    return MS_OK;
}

/* ---- open and close ------------------------------------------------------------------ */

static ms_err has_table(ms_store *st, const char *name, bool *has)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                   "name = ?1", -1, &q, NULL) != SQLITE_OK)
        return MS_ERR_STORE;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return MS_ERR_STORE;
    *has = rc == SQLITE_ROW;
    return MS_OK;
}

static ms_err check_or_create_schema(ms_store *st, bool create)
{
    ms_err err = exec(st, "BEGIN IMMEDIATE");
    if (err != MS_OK)
        return err;
    bool has = false;
    err = has_table(st, "schema_version", &has);
    if (err == MS_OK && !has) {
        if (!create)
            err = MS_ERR_STORE; /* not a KMS store */
        else if (exec(st, schema_sql) != MS_OK)
            err = MS_ERR_STORE;
        else {
            char sql[80];
            snprintf(sql, sizeof sql, "INSERT INTO schema_version VALUES(%d)", SCHEMA_VERSION);
            err = exec(st, sql);
        }
    } else if (err == MS_OK) {
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(st->db, "SELECT version FROM schema_version", -1, &q, NULL) !=
            SQLITE_OK)
            err = MS_ERR_STORE;
        else {
            int rc = sqlite3_step(q);
            if (rc != SQLITE_ROW || sqlite3_column_int64(q, 0) != SCHEMA_VERSION)
                err = MS_ERR_STORE; /* a version this code does not know */
            sqlite3_finalize(q);
        }
        if (err == MS_OK)
            err = exec(st, NONCES_SQL);
    }
    return tx_leave(st, true, err);
}

ms_err ms_store_open(ms_store **out, const char *path, bool create)
{
    if (out == NULL || path == NULL || path[0] == '\0')
        return MS_ERR_ARG;
    *out = NULL;
    if (create) {
        /* Made here first so it is 0600; SQLite gives its -wal and -shm the same mode. */
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            return MS_ERR_STORE;
        close(fd);
    }
    ms_store *st = calloc(1, sizeof *st);
    if (st == NULL)
        return MS_ERR_NOMEM;
    st->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    st->cctx = EVP_CIPHER_CTX_new();
    if (st->gcm == NULL || st->cctx == NULL) {
        ms_store_close(st);
        return MS_ERR_INTERNAL;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
    ms_err err = MS_OK;
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
        err = MS_ERR_STORE;
        goto fail;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
    /* journal_mode answers with the mode in force: anything but "wal" is a failure. */
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode=WAL", -1, &q, NULL) != SQLITE_OK) {
        err = MS_ERR_STORE;
        goto fail;
    }
    int rc = sqlite3_step(q);
    bool wal = rc == SQLITE_ROW && sqlite3_column_text(q, 0) != NULL &&
               strcmp((const char *)sqlite3_column_text(q, 0), "wal") == 0;
    sqlite3_finalize(q);
    if (!wal) {
        err = MS_ERR_STORE;
        goto fail;
    }
    /* FULL: the WAL is synced at every commit, so a committed key set survives power
     * loss too; secure_delete overwrites removed rows' pages. */
    if ((err = exec(st, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
                        "PRAGMA secure_delete=ON; PRAGMA trusted_schema=OFF")) != MS_OK)
        goto fail;
    if ((err = check_or_create_schema(st, create)) != MS_OK)
        goto fail;
    *out = st;
    return MS_OK;
fail:
    ms_store_close(st);
    return err;
}

void ms_store_close(ms_store *st)
{
    if (st == NULL)
        return;
    for (int i = 0; i < N_STMT; i++)
        sqlite3_finalize(st->stmt[i]);
    if (st->db != NULL) {
        if (!sqlite3_get_autocommit(st->db))
            exec(st, "ROLLBACK");
        sqlite3_close_v2(st->db);
    }
    EVP_CIPHER_CTX_free(st->cctx);
    EVP_CIPHER_free(st->gcm);
    free(st);
}

const char *ms_store_errmsg(const ms_store *st)
{
    return st != NULL && st->db != NULL ? sqlite3_errmsg(st->db) : "no store";
}

/* ---- transactions -------------------------------------------------------------------- */

ms_err ms_store_begin(ms_store *st)
{
    if (st == NULL)
        return MS_ERR_ARG;
    if (!sqlite3_get_autocommit(st->db))
        return MS_ERR_ARG; /* already in one: SQLite does not nest BEGIN */
    return exec(st, "BEGIN IMMEDIATE");
}

bool ms_store_in_transaction(const ms_store *st)
{
    return st != NULL && st->db != NULL && !sqlite3_get_autocommit(st->db);
}

ms_err ms_store_commit(ms_store *st)
{
    if (st == NULL)
        return MS_ERR_ARG;
    if (sqlite3_get_autocommit(st->db))
        return MS_ERR_ARG;
    if (exec(st, "COMMIT") == MS_OK)
        return MS_OK;
    exec(st, "ROLLBACK");
    return MS_ERR_STORE;
}

void ms_store_rollback(ms_store *st)
{
    if (st != NULL && !sqlite3_get_autocommit(st->db))
        exec(st, "ROLLBACK");
}

/* ---- settings ------------------------------------------------------------------------ */

ms_err ms_store_set(ms_store *st, const char *key, const char *value)
{
    if (st == NULL || !name_ok(key, 64) || value == NULL)
        return MS_ERR_ARG;
    bool own;
    ms_err err = tx_enter(st, &own);
    if (err != MS_OK)
        return err;
    sqlite3_stmt *q;
    if ((err = prep(st, S_SET, &q)) == MS_OK) {
        sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE)
            err = MS_ERR_STORE;
        done(q);
    }
    return tx_leave(st, own, err);
}

ms_err ms_store_set_relaxed(ms_store *st, const char *const keys[],
                            const char *const values[], size_t n)
{
    if (st == NULL || keys == NULL || values == NULL || n == 0)
        return MS_ERR_ARG;
    /* A pragma cannot change inside a transaction, and joining the caller's would make
     * its durable commit relaxed too. */
    if (ms_store_in_transaction(st))
        return MS_ERR_ARG;
    ms_err err = exec(st, "PRAGMA synchronous=NORMAL");
    if (err != MS_OK)
        return err;
    bool own = false;
    if ((err = tx_enter(st, &own)) == MS_OK) {
        for (size_t i = 0; i < n && err == MS_OK; i++)
            err = ms_store_set(st, keys[i], values[i]);
        err = tx_leave(st, own, err);
    }
    if (exec(st, "PRAGMA synchronous=FULL") != MS_OK && err == MS_OK)
        err = MS_ERR_STORE;
    return err;
}

ms_err ms_store_get(ms_store *st, const char *key, char *value, size_t cap)
{
    if (st == NULL || key == NULL || value == NULL || cap == 0)
        return MS_ERR_ARG;
    value[0] = '\0';
    sqlite3_stmt *q;
    ms_err err = prep(st, S_GET, &q);
    if (err != MS_OK)
        return err;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(q, 0);
        int n = sqlite3_column_bytes(q, 0);
        if (t == NULL || n < 0)
            err = MS_ERR_STORE;
        else if ((size_t)n >= cap)
            err = MS_ERR_BUFFER_TOO_SMALL;
        else {
            memcpy(value, t, (size_t)n);
            value[n] = '\0';
        }
    } else {
        err = MS_ERR_STORE; /* absent, or the query failed */
    }
    done(q);
    return err;
}

ms_err ms_store_settings_list(ms_store *st,
                              int (*cb)(void *ctx, const char *key, const char *value,
                                        size_t value_len),
                              void *ctx)
{
    if (st == NULL || cb == NULL)
        return MS_ERR_ARG;
    sqlite3_stmt *q = NULL;
    /* BINARY collation: byte order, the same on every machine. */
    if (sqlite3_prepare_v2(st->db, "SELECT key, value FROM settings ORDER BY key", -1, &q,
                           NULL) != SQLITE_OK)
        return MS_ERR_STORE;
    ms_err err = MS_OK;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(q, 0);
        const char *value = (const char *)sqlite3_column_text(q, 1);
        int n = sqlite3_column_bytes(q, 1);
        if (key == NULL || value == NULL || n < 0) {
            err = MS_ERR_STORE;
            break;
        }
        if (cb(ctx, key, value, (size_t)n) != 0)
            break;
    }
    if (err == MS_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = MS_ERR_STORE;
    sqlite3_finalize(q);
    return err;
}

/* ---- users --------------------------------------------------------------------------- */

/* Runs a one-statement change on a user; MS_ERR_USER_UNKNOWN when no row changed. */
static ms_err user_change(ms_store *st, int which, const char *uri, int64_t arg)
{
    if (st == NULL || !name_ok(uri, MS_STORE_URI_MAX))
        return MS_ERR_ARG;
    bool own;
    ms_err err = tx_enter(st, &own);
    if (err != MS_OK)
        return err;
    sqlite3_stmt *q;
    if ((err = prep(st, which, &q)) == MS_OK) {
        sqlite3_bind_text(q, 1, uri, -1, SQLITE_STATIC);
        if (which != S_USER_REMOVE)
            sqlite3_bind_int64(q, 2, arg);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
            err = MS_ERR_EXISTS;
        else if (rc != SQLITE_DONE)
            err = MS_ERR_STORE;
        else if (sqlite3_changes(st->db) == 0)
            err = MS_ERR_USER_UNKNOWN;
        done(q);
    }
    return tx_leave(st, own, err);
}

ms_err ms_store_user_add(ms_store *st, const char *uri)
{
    return user_change(st, S_USER_ADD, uri, (int64_t)ntp_seconds());
}

/* Statement `which` with text bound to ?1: the first column of its first row into *value
 * (may be NULL), or `none` when there is no row. */
static ms_err row_int(ms_store *st, int which, const char *text, ms_err none, int64_t *value)
{
    sqlite3_stmt *q;
    ms_err err = prep(st, which, &q);
    if (err != MS_OK)
        return err;
    sqlite3_bind_text(q, 1, text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW && value != NULL)
        *value = sqlite3_column_int64(q, 0);
    err = rc == SQLITE_ROW ? MS_OK : rc == SQLITE_DONE ? none : MS_ERR_STORE;
    done(q);
    return err;
}

ms_err ms_store_user_status(ms_store *st, const char *uri, ms_user_status *status)
{
    if (st == NULL || !name_ok(uri, MS_STORE_URI_MAX) || status == NULL)
        return MS_ERR_ARG;
    int64_t v = 0;
    ms_err err = row_int(st, S_USER_STATUS, uri, MS_ERR_USER_UNKNOWN, &v);
    if (err == MS_OK)
        *status = v == 0 ? MS_USER_ACTIVE : MS_USER_SUSPENDED;
    return err;
}

ms_err ms_store_user_set_status(ms_store *st, const char *uri, ms_user_status status)
{
    if (status != MS_USER_ACTIVE && status != MS_USER_SUSPENDED)
        return MS_ERR_ARG;
    return user_change(st, S_USER_SET_STATUS, uri, (int64_t)status);
}

ms_err ms_store_user_remove(ms_store *st, const char *uri)
{
    return user_change(st, S_USER_REMOVE, uri, 0); /* devices and key sets cascade */
}

ms_err ms_store_user_list(ms_store *st,
                          int (*cb)(void *ctx, const char *uri, ms_user_status status,
                                    size_t n_devices),
                          void *ctx)
{
    if (st == NULL || cb == NULL)
        return MS_ERR_ARG;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT u.uri, u.status, (SELECT count(*) FROM devices d "
                           "WHERE d.user_uri = u.uri) FROM users u ORDER BY u.uri",
                           -1, &q, NULL) != SQLITE_OK)
        return MS_ERR_STORE;
    ms_err err = MS_OK;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *uri = (const char *)sqlite3_column_text(q, 0);
        int64_t n = sqlite3_column_int64(q, 2);
        if (uri == NULL || n < 0) {
            err = MS_ERR_STORE;
            break;
        }
        ms_user_status status = sqlite3_column_int(q, 1) == 0 ? MS_USER_ACTIVE
                                                               : MS_USER_SUSPENDED;
        if (cb(ctx, uri, status, (size_t)n) != 0)
            break;
    }
    if (err == MS_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = MS_ERR_STORE;
    sqlite3_finalize(q);
    return err;
}

/* ---- devices ------------------------------------------------------------------------- */

static ms_err user_exists(ms_store *st, const char *uri)
{
    ms_user_status status;
    return ms_store_user_status(st, uri, &status);
}

static ms_err device_exists(ms_store *st, const char *id)
{
    return row_int(st, S_DEVICE_EXISTS, id, MS_ERR_DEVICE_UNKNOWN, NULL);
}

ms_err ms_store_device_add(ms_store *st, const ms_kms_secrets *s, const ms_device *dev)
{
    if (st == NULL || s == NULL || dev == NULL || !name_ok(dev->id, MS_STORE_DEVICE_ID_MAX) ||
        !name_ok(dev->user_uri, MS_STORE_URI_MAX))
        return MS_ERR_ARG;
    uint8_t trk[SEALED_LEN(MS_KMS_KEY_BYTES)], ink[SEALED_LEN(MS_KMS_KEY_BYTES)];
    uint8_t aad[AAD_MAX];
    size_t aad_len = make_aad(aad, "devices", "trk", dev->id, 0);
    ms_err err = seal(st, s, trk, dev->trk, MS_KMS_KEY_BYTES, aad, aad_len);
    if (err != MS_OK)
        return err;
    aad_len = make_aad(aad, "devices", "ink", dev->id, 0);
    if ((err = seal(st, s, ink, dev->ink, MS_KMS_KEY_BYTES, aad, aad_len)) != MS_OK)
        return err;
    bool own;
    if ((err = tx_enter(st, &own)) != MS_OK)
        return err;
    err = user_exists(st, dev->user_uri);
    sqlite3_stmt *q;
    if (err == MS_OK && (err = prep(st, S_DEVICE_ADD, &q)) == MS_OK) {
        sqlite3_bind_text(q, 1, dev->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, dev->user_uri, -1, SQLITE_STATIC);
        sqlite3_bind_blob(q, 3, trk, (int)sizeof trk, SQLITE_STATIC);
        sqlite3_bind_blob(q, 4, ink, (int)sizeof ink, SQLITE_STATIC);
        sqlite3_bind_int64(q, 5, dev->trk_id);
        sqlite3_bind_int64(q, 6, dev->ink_id);
        sqlite3_bind_int64(q, 7, (int64_t)ntp_seconds());
        int rc = sqlite3_step(q);
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
            err = MS_ERR_EXISTS;
        else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            err = MS_ERR_USER_UNKNOWN;
        else if (rc != SQLITE_DONE)
            err = MS_ERR_STORE;
        done(q);
    }
    return tx_leave(st, own, err);
}

ms_err ms_store_device_get(ms_store *st, const ms_kms_secrets *s, const char *id,
                           ms_device *dev)
{
    if (st == NULL || s == NULL || dev == NULL || !name_ok(id, MS_STORE_DEVICE_ID_MAX))
        return MS_ERR_ARG;
    memset(dev, 0, sizeof *dev);
    sqlite3_stmt *q;
    ms_err err = prep(st, S_DEVICE_GET, &q);
    if (err != MS_OK)
        return err;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        uint8_t aad[AAD_MAX];
        size_t aad_len;
        int64_t trk_id = sqlite3_column_int64(q, 3), ink_id = sqlite3_column_int64(q, 4);
        memcpy(dev->id, id, strlen(id) + 1);
        err = col_text(q, 0, dev->user_uri, sizeof dev->user_uri);
        if (err == MS_OK && (trk_id < 0 || trk_id > UINT32_MAX || ink_id < 0 ||
                             ink_id > UINT32_MAX))
            err = MS_ERR_STORE;
        if (err == MS_OK) {
            aad_len = make_aad(aad, "devices", "trk", id, 0);
            err = unseal(st, s, dev->trk, MS_KMS_KEY_BYTES, sqlite3_column_blob(q, 1),
                         sqlite3_column_bytes(q, 1), aad, aad_len);
        }
        if (err == MS_OK) {
            aad_len = make_aad(aad, "devices", "ink", id, 0);
            err = unseal(st, s, dev->ink, MS_KMS_KEY_BYTES, sqlite3_column_blob(q, 2),
                         sqlite3_column_bytes(q, 2), aad, aad_len);
        }
        dev->trk_id = (uint32_t)trk_id;
        dev->ink_id = (uint32_t)ink_id;
    } else {
        err = rc == SQLITE_DONE ? MS_ERR_DEVICE_UNKNOWN : MS_ERR_STORE;
    }
    done(q);
    if (err != MS_OK)
        ms_wipe(dev, sizeof *dev);
    return err;
}

/* Runs a listing query whose rows are (text, text) through cb. */
static ms_err list2(sqlite3_stmt *q, int (*cb)(void *ctx, const char *a, const char *b),
                    void *ctx)
{
    ms_err err = MS_OK;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *a = (const char *)sqlite3_column_text(q, 0);
        const char *b = (const char *)sqlite3_column_text(q, 1);
        if (a == NULL || b == NULL) {
            err = MS_ERR_STORE;
            break;
        }
        if (cb(ctx, a, b) != 0)
            break;
    }
    if (err == MS_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = MS_ERR_STORE;
    sqlite3_finalize(q);
    return err;
}

ms_err ms_store_device_list(ms_store *st, const char *user_uri,
                            int (*cb)(void *ctx, const char *id, const char *user_uri),
                            void *ctx)
{
    if (st == NULL || cb == NULL || (user_uri != NULL && !name_ok(user_uri, MS_STORE_URI_MAX)))
        return MS_ERR_ARG;
    if (user_uri != NULL) {
        ms_err err = user_exists(st, user_uri);
        if (err != MS_OK)
            return err;
    }
    sqlite3_stmt *q = NULL;
    const char *sql = user_uri != NULL
                          ? "SELECT id, user_uri FROM devices WHERE user_uri = ?1 ORDER BY id"
                          : "SELECT id, user_uri FROM devices ORDER BY id";
    if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
        return MS_ERR_STORE;
    if (user_uri != NULL)
        sqlite3_bind_text(q, 1, user_uri, -1, SQLITE_TRANSIENT);
    return list2(q, cb, ctx);
}

/* ---- key sets ------------------------------------------------------------------------ */

/* Inserts ks; `only_new`: the issuance form (see S_KEYSET_PUT_NEW), which sets
 * *inserted instead of failing when nothing was filed. */
static ms_err keyset_insert(ms_store *st, const ms_kms_secrets *s, const ms_keyset *ks,
                            bool only_new, bool *inserted)
{
    if (st == NULL || s == NULL || ks == NULL || !name_ok(ks->device_id, MS_STORE_DEVICE_ID_MAX) ||
        !name_ok(ks->user_uri, MS_STORE_URI_MAX) || !period_ok(ks->period_no) ||
        ks->user_id_len == 0 || ks->user_id_len > sizeof ks->user_id ||
        ks->issued_at > (uint64_t)INT64_MAX)
        return MS_ERR_ARG;
    uint8_t rsk[SEALED_LEN(MS_SAKKE_POINT_BYTES)], ssk[SEALED_LEN(MS_ECCSI_SCALAR_BYTES)];
    uint8_t aad[AAD_MAX];
    size_t aad_len = make_aad(aad, "keysets", "rsk", ks->device_id, ks->period_no);
    ms_err err = seal(st, s, rsk, ks->rsk, MS_SAKKE_POINT_BYTES, aad, aad_len);
    if (err != MS_OK)
        return err;
    aad_len = make_aad(aad, "keysets", "ssk", ks->device_id, ks->period_no);
    if ((err = seal(st, s, ssk, ks->ssk, MS_ECCSI_SCALAR_BYTES, aad, aad_len)) != MS_OK)
        return err;
    bool own;
    if ((err = tx_enter(st, &own)) != MS_OK)
        return err;
    sqlite3_stmt *q;
    if ((err = prep(st, only_new ? S_KEYSET_PUT_NEW : S_KEYSET_PUT, &q)) == MS_OK) {
        sqlite3_bind_text(q, 1, ks->device_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, (int64_t)ks->period_no);
        sqlite3_bind_blob(q, 3, ks->user_id, (int)ks->user_id_len, SQLITE_STATIC);
        sqlite3_bind_blob(q, 4, rsk, (int)sizeof rsk, SQLITE_STATIC);
        sqlite3_bind_blob(q, 5, ssk, (int)sizeof ssk, SQLITE_STATIC);
        sqlite3_bind_blob(q, 6, ks->pvt, MS_ECCSI_POINT_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(q, 7, (int64_t)ks->issued_at);
        sqlite3_bind_text(q, 8, ks->user_uri, -1, SQLITE_STATIC);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
            err = MS_ERR_EXISTS;
        else if (rc != SQLITE_DONE)
            err = MS_ERR_STORE;
        else if (only_new)
            *inserted = sqlite3_changes(st->db) > 0;
        else if (sqlite3_changes(st->db) == 0)
            err = MS_ERR_DEVICE_UNKNOWN; /* no such device, or not this user's */
        done(q);
    }
    return tx_leave(st, own, err);
}

ms_err ms_store_keyset_put(ms_store *st, const ms_kms_secrets *s, const ms_keyset *ks)
{
    return keyset_insert(st, s, ks, false, NULL);
}

ms_err ms_store_keyset_put_new(ms_store *st, const ms_kms_secrets *s, const ms_keyset *ks,
                               bool *inserted)
{
    if (inserted == NULL)
        return MS_ERR_ARG;
    *inserted = false;
    return keyset_insert(st, s, ks, true, inserted);
}

ms_err ms_store_keyset_get(ms_store *st, const ms_kms_secrets *s, const char *device_id,
                           uint64_t period_no, ms_keyset *ks)
{
    if (st == NULL || s == NULL || ks == NULL || !name_ok(device_id, MS_STORE_DEVICE_ID_MAX) ||
        !period_ok(period_no))
        return MS_ERR_ARG;
    memset(ks, 0, sizeof *ks);
    sqlite3_stmt *q;
    ms_err err = prep(st, S_KEYSET_GET, &q);
    if (err != MS_OK)
        return err;
    sqlite3_bind_text(q, 1, device_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, (int64_t)period_no);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        memcpy(ks->device_id, device_id, strlen(device_id) + 1);
        ks->period_no = period_no;
        err = col_text(q, 0, ks->user_uri, sizeof ks->user_uri);
        const void *uid = sqlite3_column_blob(q, 1);
        int uid_len = sqlite3_column_bytes(q, 1);
        const void *pvt = sqlite3_column_blob(q, 4);
        int64_t issued_at = sqlite3_column_int64(q, 5);
        if (err == MS_OK && (uid == NULL || uid_len <= 0 ||
                             (size_t)uid_len > sizeof ks->user_id || pvt == NULL ||
                             sqlite3_column_bytes(q, 4) != MS_ECCSI_POINT_BYTES ||
                             issued_at < 0))
            err = MS_ERR_STORE;
        if (err == MS_OK) {
            memcpy(ks->user_id, uid, (size_t)uid_len);
            ks->user_id_len = (size_t)uid_len;
            memcpy(ks->pvt, pvt, MS_ECCSI_POINT_BYTES);
            ks->issued_at = (uint64_t)issued_at;
            uint8_t aad[AAD_MAX];
            size_t aad_len = make_aad(aad, "keysets", "rsk", device_id, period_no);
            err = unseal(st, s, ks->rsk, MS_SAKKE_POINT_BYTES, sqlite3_column_blob(q, 2),
                         sqlite3_column_bytes(q, 2), aad, aad_len);
            if (err == MS_OK) {
                aad_len = make_aad(aad, "keysets", "ssk", device_id, period_no);
                err = unseal(st, s, ks->ssk, MS_ECCSI_SCALAR_BYTES, sqlite3_column_blob(q, 3),
                             sqlite3_column_bytes(q, 3), aad, aad_len);
            }
        }
        done(q);
    } else {
        done(q);
        if (rc != SQLITE_DONE)
            err = MS_ERR_STORE;
        else {
            err = device_exists(st, device_id);
            if (err == MS_OK)
                err = MS_ERR_NO_KEYS;
        }
    }
    if (err != MS_OK)
        ms_wipe(ks, sizeof *ks);
    return err;
}

ms_err ms_store_keyset_get_user(ms_store *st, const ms_kms_secrets *s, const char *user_uri,
                                uint64_t period_no, ms_keyset *ks)
{
    if (st == NULL || s == NULL || ks == NULL || !name_ok(user_uri, MS_STORE_URI_MAX) ||
        !period_ok(period_no))
        return MS_ERR_ARG;
    memset(ks, 0, sizeof *ks);
    ms_err err = user_exists(st, user_uri);
    if (err != MS_OK)
        return err;
    sqlite3_stmt *q;
    if ((err = prep(st, S_KEYSET_USER_FIRST, &q)) != MS_OK)
        return err;
    sqlite3_bind_text(q, 1, user_uri, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, (int64_t)period_no);
    char device_id[MS_STORE_DEVICE_ID_MAX + 1];
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        err = col_text(q, 0, device_id, sizeof device_id);
    else
        err = rc == SQLITE_DONE ? MS_ERR_NO_KEYS : MS_ERR_STORE;
    done(q);
    if (err != MS_OK)
        return err;
    return ms_store_keyset_get(st, s, device_id, period_no, ks);
}

ms_err ms_store_keyset_list(ms_store *st, uint64_t period_no,
                            int (*cb)(void *ctx, const char *device_id, const char *user_uri),
                            void *ctx)
{
    if (st == NULL || cb == NULL || !period_ok(period_no))
        return MS_ERR_ARG;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT device_id, user_uri FROM keysets WHERE period_no = ?1 "
                           "ORDER BY device_id",
                           -1, &q, NULL) != SQLITE_OK)
        return MS_ERR_STORE;
    sqlite3_bind_int64(q, 1, (int64_t)period_no);
    return list2(q, cb, ctx);
}

/* ---- issuance's plan --------------------------------------------------------------------- */

ms_err ms_store_pending_page(ms_store *st, uint64_t period_no, const char *after_uri,
                             const char *after_id, size_t limit,
                             int (*cb)(void *ctx, const char *device_id, const char *user_uri),
                             void *ctx)
{
    if (st == NULL || cb == NULL || !period_ok(period_no) || limit == 0 ||
        limit > (size_t)INT_MAX || after_uri == NULL || after_id == NULL)
        return MS_ERR_ARG;
    sqlite3_stmt *q = NULL;
    /* Devices of active users without a key set for the period, in (user, device)
     * order after the given position: the issuer pages forward through them. */
    if (sqlite3_prepare_v2(st->db,
                           "SELECT d.id, d.user_uri FROM devices d JOIN users u ON "
                           "u.uri = d.user_uri WHERE u.status = 0 AND "
                           "(d.user_uri, d.id) > (?2, ?3) AND NOT EXISTS (SELECT 1 FROM "
                           "keysets k WHERE k.device_id = d.id AND k.period_no = ?1) "
                           "ORDER BY d.user_uri, d.id LIMIT ?4",
                           -1, &q, NULL) != SQLITE_OK)
        return MS_ERR_STORE;
    sqlite3_bind_int64(q, 1, (int64_t)period_no);
    sqlite3_bind_text(q, 2, after_uri, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 3, after_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 4, (int64_t)limit);
    return list2(q, cb, ctx);
}

ms_err ms_store_pending_count(ms_store *st, uint64_t period_no, size_t *n)
{
    if (st == NULL || !period_ok(period_no) || n == NULL)
        return MS_ERR_ARG;
    sqlite3_stmt *q = NULL;
    /* The same set as ms_store_pending_page, counted: the total of a progress report. */
    if (sqlite3_prepare_v2(st->db,
                           "SELECT count(*) FROM devices d JOIN users u ON "
                           "u.uri = d.user_uri WHERE u.status = 0 AND NOT EXISTS (SELECT 1 "
                           "FROM keysets k WHERE k.device_id = d.id AND k.period_no = ?1)",
                           -1, &q, NULL) != SQLITE_OK)
        return MS_ERR_STORE;
    sqlite3_bind_int64(q, 1, (int64_t)period_no);
    ms_err err = MS_OK;
    if (sqlite3_step(q) == SQLITE_ROW)
        *n = (size_t)sqlite3_column_int64(q, 0);
    else
        err = MS_ERR_STORE;
    sqlite3_finalize(q);
    return err;
}

/* ---- spent nonces ---------------------------------------------------------------------- */

ms_err ms_store_nonce_use(ms_store *st, const char *nonce)
{
    if (st == NULL || !name_ok(nonce, 64))
        return MS_ERR_ARG;
    bool own;
    ms_err err = tx_enter(st, &own);
    if (err != MS_OK)
        return err;
    sqlite3_stmt *q;
    if ((err = prep(st, S_NONCE_USE, &q)) == MS_OK) {
        sqlite3_bind_text(q, 1, nonce, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, (int64_t)ntp_seconds());
        int rc = sqlite3_step(q);
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || (rc & 0xff) == SQLITE_CONSTRAINT)
            err = MS_ERR_EXISTS;
        else if (rc != SQLITE_DONE)
            err = MS_ERR_STORE;
        done(q);
    }
    return tx_leave(st, own, err);
}

ms_err ms_store_device_count(ms_store *st, const char *user_uri, size_t *n)
{
    if (st == NULL || !name_ok(user_uri, MS_STORE_URI_MAX) || n == NULL)
        return MS_ERR_ARG;
    int64_t v = 0;
    ms_err err = row_int(st, S_DEVICE_COUNT, user_uri, MS_ERR_STORE, &v); /* count(*): a row */
    if (err == MS_OK)
        *n = (size_t)v;
    return err;
}
