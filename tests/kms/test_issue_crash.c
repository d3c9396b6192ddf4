/*
 * Crash safety of batch issuance: a child process runs the issuance for a community and
 * is killed with SIGKILL after a random delay, several times over; then a run goes to the
 * end. After every kill the store must pass PRAGMA integrity_check, every key set in it
 * must be right (RSK equal to the deterministic ms_sakke_rsk_issue value, SSK/PVT valid),
 * and every key set seen after an earlier kill must be unchanged, octet for octet. At the
 * end the store must hold exactly the (device, period) rows of an uninterrupted run, each
 * once, with the same RSKs.
 *
 * The seed is fixed (MS_TEST_SEED overrides it) and printed; the kill points come from
 * it: half the kills come once the child has committed a random number of further key
 * sets (watched through a read-only connection) plus up to 3 ms, the other half after a
 * random time scaled to an uninterrupted run, so kills land mid-run on fast and slow
 * (sanitizer) builds alike; at least one kill must have cut a run between its first and
 * its last key set. Nothing asserts on time.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "kms/store.h"
#include "testutil.h"

#define N_USERS 100
#define MAX_ROWS (N_USERS * 2)
#define PERIOD 500u
#define BATCH 4
#define THREADS 2
#define KILLS 10

static char dir[] = "/tmp/ms_test_crash_XXXXXX";
static char ref_path[300], crash_path[300];
static ms_kms_secrets *sec;
static ms_sakke_kms *kms;
static int n_devices[N_USERS];
static size_t expected_rows;

static const ms_id_scheme scheme = {
    .scheme = MS_MIKEY_ID_SCHEME_HASHED_UID,
    .kms_uri = "kms.example.org",
    .period_len = 604800,
    .period_offset = 0,
};

/* One key set row as stored (sealed columns included): equal rows are equal octets. */
typedef struct row {
    char device_id[MS_STORE_DEVICE_ID_MAX + 1];
    int64_t period;
    uint8_t data[1024];
    size_t len;
    int checked; /* its key set was validated */
} row;

static row snapshot[MAX_ROWS];
static size_t n_snapshot;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void user_uri(char *out, size_t cap, int i)
{
    snprintf(out, cap, "tel:+4477009%05d", i * 37 % 100000);
}

static void populate(const char *path)
{
    ms_store *st = NULL;
    if (ms_store_open(&st, path, true) != MS_OK) {
        fprintf(stderr, "cannot create %s\n", path);
        exit(2);
    }
    ms_err err = ms_store_begin(st);
    for (int i = 0; i < N_USERS && err == MS_OK; i++) {
        char uri[40];
        user_uri(uri, sizeof uri, i);
        err = ms_store_user_add(st, uri);
        for (int d = 0; d < n_devices[i] && err == MS_OK; d++) {
            ms_device dev = {.trk_id = 1, .ink_id = 2};
            snprintf(dev.id, sizeof dev.id, "%s/%d", uri, d);
            snprintf(dev.user_uri, sizeof dev.user_uri, "%s", uri);
            ms_test_random(dev.trk, sizeof dev.trk);
            ms_test_random(dev.ink, sizeof dev.ink);
            err = ms_store_device_add(st, sec, &dev);
        }
    }
    /* one suspended user with a device: must never get keys */
    if (err == MS_OK)
        err = ms_store_user_add(st, "tel:+449999999999");
    if (err == MS_OK) {
        ms_device dev = {.id = "suspended/0", .user_uri = "tel:+449999999999"};
        err = ms_store_device_add(st, sec, &dev);
    }
    if (err == MS_OK)
        err = ms_store_user_set_status(st, "tel:+449999999999", MS_USER_SUSPENDED);
    if (err == MS_OK)
        err = ms_store_commit(st);
    ms_store_close(st);
    if (err != MS_OK) {
        fprintf(stderr, "populate %s: %s\n", path, ms_errname(err));
        exit(2);
    }
}

/* The child: one issuance run, exit status 0 when it completed. */
static pid_t spawn_issue(const char *path)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        ms_store *st = NULL;
        size_t issued = 0;
        ms_err err = ms_store_open(&st, path, false);
        if (err == MS_OK)
            err = ms_kms_issue_period_batch(st, sec, &scheme, PERIOD, THREADS, BATCH, NULL,
                                            NULL, &issued);
        ms_store_close(st);
        _exit(err == MS_OK ? 0 : 10 + (int)err);
    }
    return pid;
}

/* Waits for pid; returns 0 if it exited 0, 1 if killed by SIGKILL, -1 otherwise. */
static int reap(pid_t pid)
{
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        return 1;
    fprintf(stderr, "child ended with status 0x%x\n", status);
    return -1;
}

/* The child has not ended yet (it stays reapable). */
static bool running(pid_t pid)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    return waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == 0;
}

/* Reads every key set row of `path` (raw, sealed) into rows; returns the count or -1. */
static int read_rows(const char *path, row *rows, size_t cap)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int n = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT device_id, period_no, user_uri || '|' || hex(user_id) "
                               "|| '|' || hex(rsk) || '|' || hex(ssk) || '|' || hex(pvt) || "
                               "'|' || issued_at FROM keysets ORDER BY device_id, period_no",
                           -1, &q, NULL) != SQLITE_OK) {
        n = -1;
    } else {
        int rc;
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            const char *dev = (const char *)sqlite3_column_text(q, 0);
            const char *data = (const char *)sqlite3_column_text(q, 2);
            size_t len = (size_t)sqlite3_column_bytes(q, 2);
            if ((size_t)n == cap || dev == NULL || data == NULL || len > sizeof rows[0].data ||
                strlen(dev) > MS_STORE_DEVICE_ID_MAX) {
                n = -1;
                break;
            }
            row *r = &rows[n++];
            memset(r, 0, sizeof *r);
            snprintf(r->device_id, sizeof r->device_id, "%s", dev);
            r->period = sqlite3_column_int64(q, 1);
            memcpy(r->data, data, len);
            r->len = len;
        }
        if (n >= 0 && rc != SQLITE_DONE)
            n = -1;
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

static int integrity_ok(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int ok = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(q, 0);
        ok = t != NULL && strcmp(t, "ok") == 0 && sqlite3_step(q) == SQLITE_DONE;
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return ok;
}

/* The user URI of a device id "uri/n". */
static void uri_of(char *out, size_t cap, const char *device_id)
{
    snprintf(out, cap, "%s", device_id);
    char *slash = strrchr(out, '/');
    if (slash != NULL)
        *slash = '\0';
}

/* The key set of device_id opens and is right. */
static int keyset_right(ms_store *st, const char *device_id)
{
    ms_keyset ks;
    char uri[MS_STORE_URI_MAX + 1];
    uri_of(uri, sizeof uri, device_id);
    uint8_t id[MS_SAKKE_ID_MAX_BYTES], rsk[MS_SAKKE_POINT_BYTES];
    size_t id_len = 0;
    int ok = ms_store_keyset_get(st, sec, device_id, PERIOD, &ks) == MS_OK &&
             ms_identifier(&scheme, id, sizeof id, &id_len, uri, PERIOD) == MS_OK &&
             strcmp(ks.user_uri, uri) == 0 && ks.user_id_len == id_len &&
             memcmp(ks.user_id, id, id_len) == 0 &&
             ms_sakke_rsk_issue(kms, rsk, sec->gen[0].z, id, id_len) == MS_OK &&
             memcmp(rsk, ks.rsk, sizeof rsk) == 0 &&
             ms_eccsi_ssk_validate(NULL, sec->gen[0].kpak, id, id_len, ks.ssk, ks.pvt) ==
                 MS_OK;
    ms_wipe(&ks, sizeof ks);
    return ok;
}

/* After a kill: integrity, earlier rows unchanged, new rows right; the snapshot grows. */
static void check_after_kill(int round)
{
    static row now[MAX_ROWS + 8];
    CHECK(integrity_ok(crash_path));
    int n = read_rows(crash_path, now, MAX_ROWS + 8);
    CHECK(n >= 0 && (size_t)n >= n_snapshot && (size_t)n <= expected_rows);
    if (n < 0)
        return;
    size_t unchanged = 0, lost = 0;
    for (size_t i = 0; i < n_snapshot; i++) {
        int found = 0;
        for (int j = 0; j < n; j++) {
            if (strcmp(now[j].device_id, snapshot[i].device_id) == 0 &&
                now[j].period == snapshot[i].period) {
                found = 1;
                unchanged += now[j].len == snapshot[i].len &&
                             memcmp(now[j].data, snapshot[i].data, now[j].len) == 0;
            }
        }
        lost += !found;
    }
    CHECK(lost == 0);
    CHECK(unchanged == n_snapshot);

    ms_store *st = NULL;
    CHECK_ERR(ms_store_open(&st, crash_path, false), MS_OK);
    size_t bad = 0;
    for (int j = 0; j < n && st != NULL; j++) {
        int known = 0;
        for (size_t i = 0; i < n_snapshot; i++)
            known |= strcmp(now[j].device_id, snapshot[i].device_id) == 0;
        if (!known) {
            bad += !keyset_right(st, now[j].device_id) || now[j].period != PERIOD;
            if (n_snapshot < MAX_ROWS)
                snapshot[n_snapshot++] = now[j];
        }
    }
    CHECK(bad == 0);
    ms_store_close(st);
    printf("round %d: %d key sets after the kill (%zu earlier ones unchanged)\n", round, n,
           unchanged);
}

int main(void)
{
    setenv("MS_TEST_SEED", "20260315", 0); /* fixed unless the caller chooses one */
    ms_test_seed();
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(ref_path, sizeof ref_path, "%s/ref.db", dir);
    snprintf(crash_path, sizeof crash_path, "%s/crash.db", dir);
    if (ms_kms_secrets_new(&sec) != MS_OK)
        return 2;
    sec->gen[0].from_period = PERIOD;
    if (ms_sakke_master_keygen(sec->gen[0].z, sec->gen[0].Z, &ms_test_rng) != MS_OK ||
        ms_eccsi_master_keygen(sec->gen[0].ksak, sec->gen[0].kpak, &ms_test_rng) != MS_OK ||
        ms_sakke_kms_new(&kms, sec->gen[0].Z) != MS_OK)
        return 2;
    sec->n_generations = 1;
    ms_test_random(sec->store_key, sizeof sec->store_key);

    for (int i = 0; i < N_USERS; i++) {
        n_devices[i] = 1 + (int)(ms_test_random_u64() % 2);
        expected_rows += (size_t)n_devices[i];
    }
    populate(ref_path);
    populate(crash_path);

    /* the uninterrupted run, timed to scale the kill delays */
    double t0 = now_s();
    CHECK(reap(spawn_issue(ref_path)) == 0);
    double full = now_s() - t0;
    static row ref[MAX_ROWS + 8];
    int n_ref = read_rows(ref_path, ref, MAX_ROWS + 8);
    CHECK(n_ref >= 0 && (size_t)n_ref == expected_rows);
    printf("%zu key sets, uninterrupted run %.3f s\n", expected_rows, full);

    int kills = 0, completed = 0, mid_run = 0;
    for (int round = 0; round < KILLS; round++) {
        size_t before = n_snapshot;
        size_t left = expected_rows - n_snapshot;
        /* even rounds: kill once the child has committed a random number of further key
         * sets (plus up to 3 ms, so mid-commit too); odd rounds: after a random time, which
         * may be before any work (at open, during WAL recovery) */
        bool by_progress = round % 2 == 0 && left > 1;
        /* a third of what is left at most, so later rounds still have work to cut */
        size_t target = n_snapshot + 1 + (left > 1 ? ms_test_random_u64() % ((left - 1) / 3 + 1) : 0);
        double extra = (double)(ms_test_random_u64() % 3000) * 1e-6;
        double frac = left > 0 ? (double)left / (double)expected_rows : 0.0;
        double delay = full * 0.6 * (frac > 0.15 ? frac : 0.15) *
                       (double)(ms_test_random_u64() % 1000) / 1000.0;
        pid_t pid = spawn_issue(crash_path);
        CHECK(pid > 0);
        if (pid <= 0)
            break;
        if (by_progress) {
            sqlite3 *db = NULL;
            sqlite3_stmt *q = NULL;
            if (sqlite3_open_v2(crash_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
                sqlite3_prepare_v2(db, "SELECT count(*) FROM keysets", -1, &q, NULL) ==
                    SQLITE_OK) {
                double t_end = now_s() + 10.0 * full + 5.0; /* the child may finish first */
                while (now_s() < t_end && running(pid)) {
                    sqlite3_reset(q);
                    if (sqlite3_step(q) == SQLITE_ROW &&
                        (size_t)sqlite3_column_int64(q, 0) >= target)
                        break;
                    struct timespec ts = {0, 1000000};
                    nanosleep(&ts, NULL);
                }
            }
            sqlite3_finalize(q);
            sqlite3_close(db);
            delay = extra;
        }
        struct timespec ts = {(time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9)};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int how = reap(pid);
        CHECK(how >= 0);
        kills += how == 1;
        completed += how == 0;
        if (by_progress)
            printf("round %d: at >= %zu key sets + %.1f ms, %s\n", round, target, extra * 1e3,
                   how == 1 ? "killed" : "completed");
        else
            printf("round %d: after %.3f s, %s\n", round, delay,
                   how == 1 ? "killed" : "completed");
        check_after_kill(round);
        /* mid-run: the kill cut a run that had committed some key sets but not all */
        mid_run += how == 1 && n_snapshot > before && n_snapshot < expected_rows;
    }
    printf("%d runs killed (%d mid-run), %d completed before the kill\n", kills, mid_run,
           completed);
    /* without a kill between the first and the last key set the test shows nothing */
    CHECK(mid_run >= 1);

    /* run to completion, then compare with the uninterrupted run */
    CHECK(reap(spawn_issue(crash_path)) == 0);
    check_after_kill(KILLS);
    CHECK(integrity_ok(crash_path));
    static row fin[MAX_ROWS + 8];
    int n_fin = read_rows(crash_path, fin, MAX_ROWS + 8);
    CHECK(n_fin == n_ref);
    /* same (device, period) set, each once (rows come sorted and unique by key) */
    int same_keys = n_fin == n_ref, same_rsk = 1;
    ms_store *a = NULL, *b = NULL;
    CHECK_ERR(ms_store_open(&a, ref_path, false), MS_OK);
    CHECK_ERR(ms_store_open(&b, crash_path, false), MS_OK);
    for (int i = 0; same_keys && i < n_fin; i++) {
        same_keys &= strcmp(fin[i].device_id, ref[i].device_id) == 0 &&
                     fin[i].period == ref[i].period && fin[i].period == PERIOD;
        if (i > 0)
            same_keys &= strcmp(fin[i - 1].device_id, fin[i].device_id) < 0;
        ms_keyset x, y;
        same_rsk &= a != NULL && b != NULL &&
                    ms_store_keyset_get(a, sec, ref[i].device_id, PERIOD, &x) == MS_OK &&
                    ms_store_keyset_get(b, sec, fin[i].device_id, PERIOD, &y) == MS_OK &&
                    memcmp(x.rsk, y.rsk, sizeof x.rsk) == 0 &&
                    memcmp(x.user_id, y.user_id, sizeof x.user_id) == 0;
    }
    CHECK(same_keys);
    CHECK(same_rsk);
    /* every reference key set is right too, and the suspended user has none */
    int ref_right = 1;
    for (int i = 0; i < n_ref && a != NULL; i++)
        ref_right &= keyset_right(a, ref[i].device_id);
    CHECK(ref_right);
    ms_keyset none;
    CHECK_ERR(ms_store_keyset_get(b, sec, "suspended/0", PERIOD, &none), MS_ERR_NO_KEYS);
    /* a further run changes nothing */
    size_t issued = 1;
    CHECK_ERR(ms_kms_issue_period_batch(b, sec, &scheme, PERIOD, THREADS, BATCH, NULL, NULL,
                                        &issued), MS_OK);
    CHECK(issued == 0);
    ms_store_close(a);
    ms_store_close(b);

    ms_sakke_kms_free(kms);
    ms_kms_secrets_free(sec);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return ms_test_finish();
}
