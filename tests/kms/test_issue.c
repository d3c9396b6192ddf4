/*
 * Batch issuance: every device of every active user gets one key set whose identifier,
 * RSK (deterministic, validated, one per user), SSK and PVT (validated, fresh per device)
 * are right; suspended users get nothing; a re-run issues only what is missing and
 * changes nothing already issued; the audit callback sees every committed key set and a
 * failing callback rolls its batch back (fail closed); a period before the first master
 * key generation is refused; after a rollover a period issues under its own z.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kms/store.h"
#include "testutil.h"

static char dir[] = "/tmp/ms_test_issue_XXXXXX";
static ms_kms_secrets *sec;
static ms_sakke_kms *kms0, *kms1;

#define P0 1000u /* generation 0 from here */
#define P1 1002u /* generation 1 (rollover) from here */

static const ms_id_scheme uid_scheme = {
    .scheme = MS_MIKEY_ID_SCHEME_HASHED_UID,
    .kms_uri = "kms.example.org",
    .period_len = 2592000,
    .period_offset = 0,
};
static const ms_id_scheme tel_scheme = {.scheme = MS_MIKEY_ID_SCHEME_TEL_MONTHLY};

static void make_generation(ms_kms_generation *g, uint64_t from)
{
    g->from_period = from;
    if (ms_sakke_master_keygen(g->z, g->Z, &ms_test_rng) != MS_OK ||
        ms_eccsi_master_keygen(g->ksak, g->kpak, &ms_test_rng) != MS_OK) {
        fprintf(stderr, "master keygen failed\n");
        exit(2);
    }
}

static ms_store *open_fresh(const char *name)
{
    char p[300];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unlink(p);
    ms_store *st = NULL;
    if (ms_store_open(&st, p, true) != MS_OK) {
        fprintf(stderr, "cannot open %s\n", p);
        exit(2);
    }
    return st;
}

static void add_user(ms_store *st, const char *uri, int n_devices)
{
    CHECK_ERR(ms_store_user_add(st, uri), MS_OK);
    for (int i = 0; i < n_devices; i++) {
        ms_device d;
        memset(&d, 0, sizeof d);
        snprintf(d.id, sizeof d.id, "%s#%d", uri, i);
        snprintf(d.user_uri, sizeof d.user_uri, "%s", uri);
        ms_test_random(d.trk, sizeof d.trk);
        ms_test_random(d.ink, sizeof d.ink);
        d.trk_id = 0x20000000u + (uint32_t)i;
        d.ink_id = 0x30000000u + (uint32_t)i;
        CHECK_ERR(ms_store_device_add(st, sec, &d), MS_OK);
    }
}

/* Checks one device's key set in full; returns 1 if everything holds. */
static int check_keyset(ms_store *st, const ms_id_scheme *scheme, const char *uri,
                        const char *dev, uint64_t period, ms_keyset *out)
{
    ms_keyset ks;
    if (ms_store_keyset_get(st, sec, dev, period, &ks) != MS_OK)
        return 0;
    const ms_kms_generation *g = ms_kms_secrets_generation(sec, period);
    const ms_sakke_kms *kms = period >= P1 ? kms1 : kms0;
    uint8_t id[MS_SAKKE_ID_MAX_BYTES], rsk[MS_SAKKE_POINT_BYTES];
    size_t id_len = 0;
    int ok = g != NULL && ms_identifier(scheme, id, sizeof id, &id_len, uri, period) == MS_OK;
    ok = ok && strcmp(ks.user_uri, uri) == 0 && ks.period_no == period &&
         ks.user_id_len == id_len && memcmp(ks.user_id, id, id_len) == 0;
    ok = ok && ms_sakke_rsk_issue(kms, rsk, g->z, id, id_len) == MS_OK &&
         memcmp(rsk, ks.rsk, sizeof rsk) == 0;
    ok = ok && ms_sakke_rsk_validate(kms, id, id_len, ks.rsk) == MS_OK;
    ok = ok && ms_eccsi_ssk_validate(NULL, g->kpak, id, id_len, ks.ssk, ks.pvt) == MS_OK;
    if (out != NULL)
        *out = ks;
    return ok;
}

typedef struct log_state {
    int calls;
    int fail_at; /* 1-based call that fails; 0: never */
    size_t total;
    uint64_t period;
    int bad_period;
} log_state;

static ms_err log_cb(void *ctx, uint64_t period_no, size_t n)
{
    log_state *l = ctx;
    l->calls++;
    if (period_no != l->period)
        l->bad_period = 1;
    if (l->fail_at > 0 && l->calls == l->fail_at)
        return MS_ERR_AUDIT_LOG;
    l->total += n;
    return MS_OK;
}

static int count_cb(void *ctx, const char *a, const char *b)
{
    (void)a;
    (void)b;
    (*(size_t *)ctx)++;
    return 0;
}

static size_t count_keysets(ms_store *st, uint64_t period)
{
    size_t n = 0;
    if (ms_store_keyset_list(st, period, count_cb, &n) != MS_OK)
        return (size_t)-1;
    return n;
}

static void test_issue_basic(void)
{
    ms_store *st = open_fresh("basic.db");
    const char *users[] = {"tel:+447700900001", "tel:+447700900002", "sip:carol@example.org",
                           "mcptt-id:dave@example.org", "tel:+447700900005"};
    const int devs[] = {1, 3, 2, 1, 0};
    for (int i = 0; i < 5; i++)
        add_user(st, users[i], devs[i]);
    add_user(st, "tel:+447700900099", 2); /* suspended */
    CHECK_ERR(ms_store_user_set_status(st, "tel:+447700900099", MS_USER_SUSPENDED), MS_OK);

    log_state lg = {.period = P0};
    size_t issued = 99;
    CHECK_ERR(ms_kms_issue_period_batch(st, sec, &uid_scheme, P0, 2, 3, log_cb, &lg, &issued),
              MS_OK);
    CHECK(issued == 7);
    CHECK(lg.total == 7 && lg.calls == 3 && !lg.bad_period); /* batches of 3: 3 + 3 + 1 */
    CHECK(count_keysets(st, P0) == 7);

    /* every key set right; one RSK per user, SSK/PVT fresh per device */
    ms_keyset ks[3];
    for (int i = 0; i < 4; i++) {
        for (int d = 0; d < devs[i]; d++) {
            char id[80];
            snprintf(id, sizeof id, "%s#%d", users[i], d);
            CHECK(check_keyset(st, &uid_scheme, users[i], id, P0, &ks[d]));
        }
    }
    /* the last checked user with several devices was users[2] (2 devices); check users[1] */
    for (int d = 0; d < 3; d++) {
        char id[80];
        snprintf(id, sizeof id, "%s#%d", users[1], d);
        CHECK(check_keyset(st, &uid_scheme, users[1], id, P0, &ks[d]));
    }
    CHECK_MEM(ks[1].rsk, ks[0].rsk, sizeof ks[0].rsk);
    CHECK_MEM(ks[2].rsk, ks[0].rsk, sizeof ks[0].rsk);
    CHECK(memcmp(ks[0].ssk, ks[1].ssk, sizeof ks[0].ssk) != 0);
    CHECK(memcmp(ks[1].pvt, ks[2].pvt, sizeof ks[1].pvt) != 0);

    /* suspended: nothing */
    ms_keyset none;
    CHECK_ERR(ms_store_keyset_get(st, sec, "tel:+447700900099#0", P0, &none), MS_ERR_NO_KEYS);
    CHECK_ERR(ms_store_keyset_get(st, sec, "tel:+447700900099#1", P0, &none), MS_ERR_NO_KEYS);

    /* re-run: nothing new, nothing changed */
    ms_keyset before;
    CHECK_ERR(ms_store_keyset_get(st, sec, "tel:+447700900002#1", P0, &before), MS_OK);
    log_state lg2 = {.period = P0};
    CHECK_ERR(ms_kms_issue_period(st, sec, &uid_scheme, P0, 2, log_cb, &lg2, &issued), MS_OK);
    CHECK(issued == 0 && lg2.calls == 0);
    ms_keyset after;
    CHECK_ERR(ms_store_keyset_get(st, sec, "tel:+447700900002#1", P0, &after), MS_OK);
    CHECK(memcmp(&before, &after, sizeof before) == 0);

    /* a new device, and the suspended user reinstated: only those are issued */
    ms_device d = {.trk_id = 1, .ink_id = 2};
    snprintf(d.id, sizeof d.id, "tel:+447700900001#new");
    snprintf(d.user_uri, sizeof d.user_uri, "tel:+447700900001");
    CHECK_ERR(ms_store_device_add(st, sec, &d), MS_OK);
    CHECK_ERR(ms_store_user_set_status(st, "tel:+447700900099", MS_USER_ACTIVE), MS_OK);
    CHECK_ERR(ms_kms_issue_period(st, sec, &uid_scheme, P0, 1, NULL, NULL, &issued), MS_OK);
    CHECK(issued == 3);
    CHECK(check_keyset(st, &uid_scheme, "tel:+447700900001", "tel:+447700900001#new", P0, NULL));
    CHECK(check_keyset(st, &uid_scheme, "tel:+447700900099", "tel:+447700900099#1", P0, NULL));
    CHECK(count_keysets(st, P0) == 10);

    /* the next period issues under the same generation; 4 threads, default batch */
    CHECK_ERR(ms_kms_issue_period(st, sec, &uid_scheme, P0 + 1, 4, NULL, NULL, &issued), MS_OK);
    CHECK(issued == 10);
    CHECK(check_keyset(st, &uid_scheme, "sip:carol@example.org", "sip:carol@example.org#1",
                       P0 + 1, NULL));
    /* identifiers differ per period */
    ms_keyset a, b;
    CHECK_ERR(ms_store_keyset_get(st, sec, "tel:+447700900001#0", P0, &a), MS_OK);
    CHECK_ERR(ms_store_keyset_get(st, sec, "tel:+447700900001#0", P0 + 1, &b), MS_OK);
    CHECK(memcmp(a.user_id, b.user_id, 32) != 0 && memcmp(a.rsk, b.rsk, sizeof a.rsk) != 0);
    ms_store_close(st);
}

/* The audit callback fails: its batch is rolled back and the run stops there. */
static void test_log_failure(void)
{
    ms_store *st = open_fresh("logfail.db");
    for (int i = 0; i < 5; i++) {
        char uri[40];
        snprintf(uri, sizeof uri, "tel:+4420700%05d", i);
        add_user(st, uri, 1);
    }
    log_state lg = {.period = P0, .fail_at = 1};
    size_t issued = 99;
    CHECK_ERR(ms_kms_issue_period_batch(st, sec, &uid_scheme, P0, 2, 2, log_cb, &lg, &issued),
              MS_ERR_AUDIT_LOG);
    CHECK(issued == 0 && lg.calls == 1);
    CHECK(count_keysets(st, P0) == 0);

    /* fails on the second batch: the first stays, nothing after it */
    log_state lg2 = {.period = P0, .fail_at = 2};
    CHECK_ERR(ms_kms_issue_period_batch(st, sec, &uid_scheme, P0, 2, 2, log_cb, &lg2, &issued),
              MS_ERR_AUDIT_LOG);
    CHECK(issued == 2 && lg2.calls == 2 && lg2.total == 2);
    CHECK(count_keysets(st, P0) == 2);
    CHECK(check_keyset(st, &uid_scheme, "tel:+442070000000", "tel:+442070000000#0", P0, NULL));
    CHECK(check_keyset(st, &uid_scheme, "tel:+442070000001", "tel:+442070000001#0", P0, NULL));

    /* the store is usable and a working log completes the rest */
    log_state lg3 = {.period = P0};
    CHECK_ERR(ms_kms_issue_period_batch(st, sec, &uid_scheme, P0, 2, 2, log_cb, &lg3, &issued),
              MS_OK);
    CHECK(issued == 3 && lg3.total == 3);
    CHECK(count_keysets(st, P0) == 5);
    ms_store_close(st);
}

/* Users suspended or removed after the plan was made get nothing: the callback of the
 * first batch (inside its transaction) suspends one user and removes another whose
 * devices sit in the second, already planned, batch. */
typedef struct meddle {
    ms_store *st;
    int calls;
} meddle;

static ms_err meddle_cb(void *ctx, uint64_t period_no, size_t n)
{
    (void)period_no;
    (void)n;
    meddle *m = ctx;
    if (m->calls++ == 0) {
        CHECK_ERR(ms_store_user_set_status(m->st, "tel:+4420710003", MS_USER_SUSPENDED), MS_OK);
        CHECK_ERR(ms_store_user_remove(m->st, "tel:+4420710004"), MS_OK);
    }
    return MS_OK;
}

static void test_changed_meanwhile(void)
{
    ms_store *st = open_fresh("meanwhile.db");
    for (int i = 0; i < 6; i++) {
        char uri[40];
        snprintf(uri, sizeof uri, "tel:+44207100%02d", i);
        add_user(st, uri, 1);
    }
    meddle m = {.st = st};
    size_t issued = 0;
    CHECK_ERR(ms_kms_issue_period_batch(st, sec, &uid_scheme, P0, 2, 3, meddle_cb, &m, &issued),
              MS_OK);
    CHECK(issued == 4 && m.calls == 2);
    ms_keyset ks;
    CHECK_ERR(ms_store_keyset_get(st, sec, "tel:+4420710003#0", P0, &ks), MS_ERR_NO_KEYS);
    CHECK_ERR(ms_store_keyset_get(st, sec, "tel:+4420710004#0", P0, &ks), MS_ERR_DEVICE_UNKNOWN);
    CHECK(check_keyset(st, &uid_scheme, "tel:+4420710005", "tel:+4420710005#0", P0, NULL));
    CHECK(count_keysets(st, P0) == 4);
    ms_store_close(st);
}

/* Progress: the count pending at the start, done rising batch by batch, and a last call
 * with done == total; a run with nothing pending reports 0 of 0; a failed run never
 * reports done == total of more than it went through; no callback without one. */
static void test_progress(void)
{
    ms_store *st = open_fresh("progress.db");
    for (int i = 0; i < 7; i++) {
        char uri[40];
        snprintf(uri, sizeof uri, "tel:+4420720%05d", i);
        add_user(st, uri, i == 3 ? 2 : 1); /* 8 devices */
    }
    add_user(st, "tel:+442072099999", 1);
    CHECK_ERR(ms_store_user_set_status(st, "tel:+442072099999", MS_USER_SUSPENDED), MS_OK);
    size_t n = 0;
    CHECK_ERR(ms_store_pending_count(st, P0, &n), MS_OK);
    CHECK(n == 8);

    ms_test_progress pr;
    memset(&pr, 0, sizeof pr);
    ms_issue_opts o = {.threads = 2, .batch_size = 3, .progress = ms_test_progress_cb,
                       .progress_ctx = &pr};
    size_t issued = 0;
    CHECK_ERR(ms_kms_issue_period_opts(st, sec, &uid_scheme, P0, &o, &issued), MS_OK);
    CHECK(issued == 8);
    /* start, 3 + 3 + 2, end */
    CHECK(pr.calls == 5 && pr.first_done == 0 && pr.first_total == 8);
    CHECK(pr.last_done == 8 && pr.last_total == 8 && !pr.fell && !pr.overshot);
    CHECK_ERR(ms_store_pending_count(st, P0, &n), MS_OK);
    CHECK(n == 0);

    /* nothing pending: 0 of 0, start and end */
    memset(&pr, 0, sizeof pr);
    CHECK_ERR(ms_kms_issue_period_opts(st, sec, &uid_scheme, P0, &o, &issued), MS_OK);
    CHECK(issued == 0 && pr.calls == 2 && pr.last_done == 0 && pr.last_total == 0);

    /* the audit log fails on the second batch: no call claims the run finished */
    log_state lg = {.period = P0 + 1, .fail_at = 2};
    memset(&pr, 0, sizeof pr);
    o.log = log_cb;
    o.log_ctx = &lg;
    CHECK_ERR(ms_kms_issue_period_opts(st, sec, &uid_scheme, P0 + 1, &o, &issued),
              MS_ERR_AUDIT_LOG);
    CHECK(issued == 3 && pr.calls == 2 && pr.last_done == 3 && pr.last_total == 8);

    /* without a callback, nothing is counted or called; bad options refused */
    o = (ms_issue_opts){.threads = 1};
    CHECK_ERR(ms_kms_issue_period_opts(st, sec, &uid_scheme, P0 + 1, &o, &issued), MS_OK);
    CHECK(issued == 5);
    CHECK_ERR(ms_kms_issue_period_opts(st, sec, &uid_scheme, P0 + 1, NULL, &issued),
              MS_ERR_ARG);
    CHECK_ERR(ms_store_pending_count(st, P0, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_store_pending_count(NULL, P0, &n), MS_ERR_ARG);
    ms_store_close(st);
}

static void test_refusals(void)
{
    ms_store *st = open_fresh("refuse.db");
    add_user(st, "tel:+447700900001", 1);
    size_t issued = 99;
    /* before the first generation */
    CHECK_ERR(ms_kms_issue_period(st, sec, &uid_scheme, P0 - 1, 2, NULL, NULL, &issued),
              MS_ERR_PERIOD);
    CHECK(issued == 0);
    CHECK_ERR(ms_kms_issue_period(st, sec, &uid_scheme, 0, 2, NULL, NULL, &issued),
              MS_ERR_PERIOD);
    CHECK_ERR(ms_kms_issue_period(st, sec, &uid_scheme, (uint64_t)INT64_MAX + 1, 2, NULL,
                                  NULL, &issued), MS_ERR_PERIOD);
    CHECK(count_keysets(st, P0 - 1) == 0);
    /* bad arguments */
    CHECK_ERR(ms_kms_issue_period(NULL, sec, &uid_scheme, P0, 2, NULL, NULL, &issued),
              MS_ERR_ARG);
    CHECK_ERR(ms_kms_issue_period(st, NULL, &uid_scheme, P0, 2, NULL, NULL, &issued),
              MS_ERR_ARG);
    CHECK_ERR(ms_kms_issue_period(st, sec, NULL, P0, 2, NULL, NULL, &issued), MS_ERR_ARG);
    CHECK_ERR(ms_kms_issue_period_batch(st, sec, &uid_scheme, P0, 2, 1u << 20, NULL, NULL,
                                        &issued), MS_ERR_ARG);
    /* inside a transaction the caller opened */
    CHECK_ERR(ms_store_begin(st), MS_OK);
    CHECK(ms_store_in_transaction(st));
    CHECK_ERR(ms_kms_issue_period(st, sec, &uid_scheme, P0, 2, NULL, NULL, &issued),
              MS_ERR_ARG);
    ms_store_rollback(st);
    CHECK(count_keysets(st, P0) == 0);
    /* the monthly tel scheme cannot name a sip: user: the run stops, nothing filed for it */
    add_user(st, "sip:erin@example.org", 1);
    CHECK_ERR(ms_kms_issue_period(st, sec, &tel_scheme, P0, 2, NULL, NULL, &issued),
              MS_ERR_IDENTITY);
    ms_keyset ks;
    CHECK_ERR(ms_store_keyset_get(st, sec, "sip:erin@example.org#0", P0, &ks), MS_ERR_NO_KEYS);
    CHECK_ERR(ms_store_user_remove(st, "sip:erin@example.org"), MS_OK);
    /* the monthly scheme with a tel user, threads = 0 taken as 1 */
    CHECK_ERR(ms_kms_issue_period(st, sec, &tel_scheme, P0, 0, NULL, NULL, &issued), MS_OK);
    CHECK(issued == 1);
    CHECK(check_keyset(st, &tel_scheme, "tel:+447700900001", "tel:+447700900001#0", P0, NULL));
    /* nothing to do: no users at all */
    ms_store *empty = open_fresh("empty.db");
    CHECK_ERR(ms_kms_issue_period(empty, sec, &uid_scheme, P0, 2, NULL, NULL, &issued), MS_OK);
    CHECK(issued == 0);
    ms_store_close(empty);
    ms_store_close(st);
}

/* Rollover: P1 onwards issue under generation 1's z and KSAK, not generation 0's. */
static void test_rollover(void)
{
    ms_store *st = open_fresh("rollover.db");
    add_user(st, "tel:+447700900001", 2);
    add_user(st, "tel:+447700900002", 1);
    size_t issued = 0;
    CHECK_ERR(ms_kms_issue_period(st, sec, &uid_scheme, P1 - 1, 2, NULL, NULL, &issued), MS_OK);
    CHECK(issued == 3);
    CHECK_ERR(ms_kms_issue_period(st, sec, &uid_scheme, P1, 2, NULL, NULL, &issued), MS_OK);
    CHECK(issued == 3);
    ms_keyset old, cur;
    CHECK(check_keyset(st, &uid_scheme, "tel:+447700900001", "tel:+447700900001#1", P1 - 1,
                       &old));
    CHECK(check_keyset(st, &uid_scheme, "tel:+447700900001", "tel:+447700900001#1", P1, &cur));
    /* each validates only under its own generation */
    CHECK_ERR(ms_sakke_rsk_validate(kms1, old.user_id, old.user_id_len, old.rsk),
              MS_ERR_RSK_INVALID);
    CHECK_ERR(ms_sakke_rsk_validate(kms0, cur.user_id, cur.user_id_len, cur.rsk),
              MS_ERR_RSK_INVALID);
    CHECK_ERR(ms_eccsi_ssk_validate(NULL, sec->gen[0].kpak, cur.user_id, cur.user_id_len,
                                    cur.ssk, cur.pvt), MS_ERR_SSK_INVALID);
    CHECK_ERR(ms_eccsi_ssk_validate(NULL, sec->gen[1].kpak, cur.user_id, cur.user_id_len,
                                    cur.ssk, cur.pvt), MS_OK);
    ms_store_close(st);
}

/* The thread count changes nothing but speed: RSKs equal across runs with 1 and 3. */
static void test_threads_agree(void)
{
    ms_store *a = open_fresh("t1.db"), *b = open_fresh("t3.db");
    for (int i = 0; i < 12; i++) {
        char uri[40];
        snprintf(uri, sizeof uri, "tel:+4413%06d", i * 7);
        add_user(a, uri, 1 + i % 3);
        add_user(b, uri, 1 + i % 3);
    }
    size_t na = 0, nb = 0;
    CHECK_ERR(ms_kms_issue_period_batch(a, sec, &uid_scheme, P0, 1, 5, NULL, NULL, &na), MS_OK);
    CHECK_ERR(ms_kms_issue_period_batch(b, sec, &uid_scheme, P0, 3, 4, NULL, NULL, &nb), MS_OK);
    CHECK(na == 24 && nb == 24);
    int same = 1;
    for (int i = 0; i < 12; i++) {
        char uri[40], dev[80];
        snprintf(uri, sizeof uri, "tel:+4413%06d", i * 7);
        for (int d = 0; d < 1 + i % 3; d++) {
            snprintf(dev, sizeof dev, "%s#%d", uri, d);
            ms_keyset x, y;
            same &= ms_store_keyset_get(a, sec, dev, P0, &x) == MS_OK &&
                    ms_store_keyset_get(b, sec, dev, P0, &y) == MS_OK &&
                    memcmp(x.rsk, y.rsk, sizeof x.rsk) == 0 &&
                    memcmp(x.ssk, y.ssk, sizeof x.ssk) != 0;
            same &= check_keyset(b, &uid_scheme, uri, dev, P0, NULL);
        }
    }
    CHECK(same);
    ms_store_close(a);
    ms_store_close(b);
}

int main(void)
{
    ms_test_seed();
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    if (ms_kms_secrets_new(&sec) != MS_OK)
        return 2;
    make_generation(&sec->gen[0], P0);
    make_generation(&sec->gen[1], P1);
    sec->n_generations = 2;
    ms_test_random(sec->store_key, sizeof sec->store_key);
    ms_test_random(sec->audit_key, sizeof sec->audit_key);
    if (ms_sakke_kms_new(&kms0, sec->gen[0].Z) != MS_OK ||
        ms_sakke_kms_new(&kms1, sec->gen[1].Z) != MS_OK)
        return 2;
    /* the contract this file relies on */
    CHECK(ms_kms_secrets_generation(sec, P0 - 1) == NULL);
    CHECK(ms_kms_secrets_generation(sec, P0) == &sec->gen[0]);
    CHECK(ms_kms_secrets_generation(sec, P1) == &sec->gen[1]);

    test_issue_basic();
    test_log_failure();
    test_changed_meanwhile();
    test_refusals();
    test_progress();
    test_rollover();
    test_threads_agree();

    ms_sakke_kms_free(kms0);
    ms_sakke_kms_free(kms1);
    ms_kms_secrets_free(sec);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return ms_test_finish();
}
