/*
 * Client keystore over time (RFC 6509 3.3): two periods held, which are in force, when
 * the next period's keys are due, purge of expired periods, and the MIKEY initiator and
 * responder taking their keys from the keystore.
 */
#include "fixture.h"

#define D_CAP 256
#define DAY 86400ull

static void import_period(fx *f, ms_keystore *ks, uint64_t period, uint64_t now)
{
    char d[D_CAP];
    ms_key_package pkg;
    fx_package(f, &pkg, period, now);
    fx_write(f, &pkg, &f->dev);
    ms_err e = fx_import(f, ks, now, d, sizeof d);
    if (e != MS_OK)
        fprintf(stderr, "import %llu: %s\n", (unsigned long long)period, d);
    CHECK_ERR(e, MS_OK);
}

static const ms_keystore_entry *entry(const ms_keystore_state *st, uint64_t period)
{
    for (size_t i = 0; i < st->n_entries; i++)
        if (st->entries[i].period_no == period)
            return &st->entries[i];
    return NULL;
}

static void test_periods(fx *f)
{
    char d[D_CAP];
    ms_keystore *ks = fx_open(f);
    ms_keystore_state *st = calloc(1, sizeof *st);
    const ms_keystore_entry *e;

    /* Nothing held: the current period's keys are missing. */
    CHECK_ERR(ms_keystore_status(ks, st, f->now, d, sizeof d), MS_ERR_NO_KEYS);
    CHECK(st->current_period == f->p0 && !st->current_held && st->n_entries == 0);

    import_period(f, ks, f->p0, f->now);
    /* Mid-period: only the current one in force; next not yet due. */
    CHECK_ERR(ms_keystore_status(ks, st, f->now, d, sizeof d), MS_OK);
    CHECK(st->n_accepted == 1 && st->accepted[0] == f->p0);
    CHECK(st->current_held && !st->next_held);
    CHECK(st->next_period == f->p0 + 1);
    CHECK(st->next_start == f->p0_end);
    CHECK(st->next_due == f->p0_end - 2 * DAY);
    CHECK(st->n_entries == 1 && (e = entry(st, f->p0)) != NULL && e->in_force && !e->expired);

    /* Due: within two days of the boundary without the next period's keys. */
    uint64_t late = f->p0_end - DAY;
    CHECK_ERR(ms_keystore_status(ks, st, f->p0_end - 2 * DAY, d, sizeof d), MS_ERR_NO_KEYS);
    CHECK_ERR(ms_keystore_status(ks, st, f->p0_end - 2 * DAY - 1, d, sizeof d), MS_OK);
    CHECK_ERR(ms_keystore_status(ks, st, late, d, sizeof d), MS_ERR_NO_KEYS);
    CHECK(strstr(d, "next") != NULL);

    /* Two periods held: both in force near the boundary. */
    import_period(f, ks, f->p0 + 1, late);
    CHECK_ERR(ms_keystore_status(ks, st, late, d, sizeof d), MS_OK);
    CHECK(st->n_accepted == 2 && st->accepted[0] == f->p0 && st->accepted[1] == f->p0 + 1);
    CHECK(st->current_held && st->next_held && st->n_entries == 2);
    CHECK((e = entry(st, f->p0)) != NULL && e->in_force);
    CHECK((e = entry(st, f->p0 + 1)) != NULL && e->in_force);
    /* Both key sets are there and distinct. */
    ms_keyset a, b;
    CHECK_ERR(ms_keystore_get(ks, &a, NULL, f->p0, d, sizeof d), MS_OK);
    CHECK_ERR(ms_keystore_get(ks, &b, NULL, f->p0 + 1, d, sizeof d), MS_OK);
    CHECK(memcmp(a.rsk, b.rsk, sizeof a.rsk) != 0);
    CHECK(a.period_end == b.period_start);
    ms_keyset_wipe(&a);
    ms_keyset_wipe(&b);

    /* Just after the boundary: the new period is current, the old one still in force. */
    uint64_t after = f->p0_end + DAY;
    CHECK_ERR(ms_keystore_status(ks, st, after, d, sizeof d), MS_OK);
    CHECK(st->current_period == f->p0 + 1 && st->n_accepted == 2 &&
          st->accepted[1] == f->p0);
    CHECK((e = entry(st, f->p0)) != NULL && e->in_force && !e->expired);

    /* Purge: nothing while in the grace; the old period after it. */
    uint64_t purged[4] = {0};
    size_t n = 99;
    CHECK_ERR(ms_keystore_purge(ks, purged, 4, &n, after, d, sizeof d), MS_OK);
    CHECK(n == 0);
    uint64_t later = f->p0_end + 2 * DAY;
    CHECK_ERR(ms_keystore_status(ks, st, later, d, sizeof d), MS_OK);
    CHECK((e = entry(st, f->p0)) != NULL && !e->in_force && e->expired);
    char name[96], p[512];
    ks_entry_name(name, sizeof name, FX_KMS, f->p0);
    fx_path(f, p, sizeof p, name);
    CHECK(access(p, F_OK) == 0);
    CHECK_ERR(ms_keystore_purge(ks, purged, 4, &n, later, d, sizeof d), MS_OK);
    CHECK(n == 1 && purged[0] == f->p0);
    CHECK(access(p, F_OK) != 0);
    CHECK_ERR(ms_keystore_get(ks, &a, NULL, f->p0, d, sizeof d), MS_ERR_NO_KEYS);
    CHECK_ERR(ms_keystore_get(ks, &a, NULL, f->p0 + 1, d, sizeof d), MS_OK);
    ms_keyset_wipe(&a);
    ms_keystore_entry list[4];
    CHECK_ERR(ms_keystore_list(ks, list, 4, &n, later, d, sizeof d), MS_OK);
    CHECK(n == 1 && list[0].period_no == f->p0 + 1);
    /* A purged period cannot come back by replaying its package: it has ended. */
    ms_key_package pkg;
    fx_package(f, &pkg, f->p0, later);
    fx_write(f, &pkg, &f->dev);
    CHECK_ERR(fx_import(f, ks, later, d, sizeof d), MS_ERR_PERIOD);

    /* A later period with no keys: current missing. */
    CHECK_ERR(ms_keystore_status(ks, st, f->p0_end + FX_PERIOD_LEN + DAY, d, sizeof d),
              MS_ERR_NO_KEYS);
    free(st);
    ms_keystore_close(ks);
}

static uint64_t fixed_clock(void *c)
{
    return *(const uint64_t *)c;
}

static ms_mikey_ctx *new_ctx(const char *uri, uint64_t *clock)
{
    ms_mikey_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.profile = MS_MIKEY_PROFILE_PCK;
    cfg.own_uri = uri;
    cfg.clock = fixed_clock;
    cfg.clock_ctx = clock;
    ms_mikey_ctx *ctx = NULL;
    CHECK_ERR(ms_mikey_ctx_new(&ctx, &cfg), MS_OK);
    return ctx;
}

static void test_mikey(fx *f)
{
    char d[D_CAP];
    ms_keystore *ks = fx_open(f);
    uint64_t now = f->p0_end + DAY; /* period p0 + 1, held since test_periods */
    uint64_t clock = now << 32;
    const char *bob = "sip:bob@example.org";

    ms_mikey_ctx *alice_ctx = new_ctx(FX_USER, &clock);
    size_t n = 0;
    CHECK_ERR(ms_keystore_load_mikey(ks, alice_ctx, &n, now, d, sizeof d), MS_OK);
    CHECK(n == 1);
    /* The KMS is known now: loading twice is refused. */
    CHECK_ERR(ms_keystore_load_mikey(ks, alice_ctx, &n, now, d, sizeof d), MS_ERR_ARG);

    /* Bob's keys straight from the KMS. */
    ms_mikey_ctx *bob_ctx = new_ctx(bob, &clock);
    ms_mikey_kms_info info = {FX_KMS, f->scheme, f->cert.Z, f->cert.kpak};
    CHECK_ERR(ms_mikey_add_kms(bob_ctx, &info), MS_OK);
    ms_kmsif_keyset bk;
    fx_keyset(f, &bk, bob, f->p0 + 1);
    CHECK_ERR(ms_mikey_add_keys(bob_ctx, FX_KMS, f->p0 + 1, bk.rsk, bk.ssk, bk.pvt), MS_OK);

    static uint8_t msg[MS_MIKEY_MAX_MESSAGE];
    size_t len = 0;
    ms_mikey_init_params ip;
    ms_mikey_result *r1 = calloc(1, sizeof *r1), *r2 = calloc(1, sizeof *r2);

    /* Alice (keystore) to Bob: her SSK signs. */
    memset(&ip, 0, sizeof ip);
    ip.responder = bob;
    ip.timestamp = clock;
    CHECK_ERR(ms_mikey_initiate(alice_ctx, msg, sizeof msg, &len, r1, &ip), MS_OK);
    CHECK_ERR(ms_mikey_respond(bob_ctx, r2, msg, len, FX_USER, NULL), MS_OK);
    CHECK(r1->key_len == 16 && r2->key_len == 16);
    CHECK_MEM(r1->key, r2->key, 16);

    /* Bob to Alice: her RSK decrypts. */
    memset(&ip, 0, sizeof ip);
    ip.responder = FX_USER;
    ip.timestamp = clock + (1ull << 32);
    CHECK_ERR(ms_mikey_initiate(bob_ctx, msg, sizeof msg, &len, r1, &ip), MS_OK);
    CHECK_ERR(ms_mikey_respond(alice_ctx, r2, msg, len, bob, NULL), MS_OK);
    CHECK_MEM(r1->key, r2->key, 16);

    /* A period the keystore does not hold: the MIKEY layer refuses. */
    uint64_t far = (now + 3 * FX_PERIOD_LEN) << 32;
    memset(&ip, 0, sizeof ip);
    ip.responder = bob;
    ip.timestamp = far;
    CHECK_ERR(ms_mikey_initiate(alice_ctx, msg, sizeof msg, &len, r1, &ip),
              MS_ERR_MIKEY_KEY_PERIOD);

    /* A profile that does not fit the KMS's scheme. */
    ms_mikey_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.profile = MS_MIKEY_PROFILE_RFC6509;
    cfg.own_uri = "tel:+447700900123";
    ms_mikey_ctx *wrong = NULL;
    CHECK_ERR(ms_mikey_ctx_new(&wrong, &cfg), MS_OK);
    CHECK_ERR(ms_keystore_load_mikey(ks, wrong, &n, now, d, sizeof d),
              MS_ERR_MIKEY_UNSUPPORTED);
    ms_mikey_ctx_free(wrong);

    ms_mikey_result_wipe(r1);
    ms_mikey_result_wipe(r2);
    free(r1);
    free(r2);
    ms_mikey_ctx_free(alice_ctx);
    ms_mikey_ctx_free(bob_ctx);
    ms_keystore_close(ks);
}

int main(void)
{
    ms_test_seed();
    fx f;
    fx_init(&f, 0);
    fx_create(&f);
    test_periods(&f);
    test_mikey(&f);
    fx_cleanup(&f);
    return ms_test_finish();
}
