/*
 * The group layer end to end in one process: a KMS community (GMS and four members, each
 * a keystore with this period's keys), a group created, delivered, received; every
 * member derives every other member's SRTP keys equal to what the sender derives from
 * its own GMK I_MESSAGE; the roster's signature is checked and a tampered or foreign
 * roster refused; a removed member is not sent the new key and cannot open another's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/fixture.h"
#include "group/group_internal.h"
#include "mikeysakke/group.h"
#include "testutil.h"

#define GMS "sip:gms@example.org"
#define GROUP "sip:team@example.org"
#define N_USERS 5

static const char *const users[N_USERS] = {GMS, "sip:alice@example.org", "sip:bob@example.org",
                                           "sip:carol@example.org", "sip:dave@example.org"};
enum { U_GMS, U_ALICE, U_BOB, U_CAROL, U_DAVE };

static fx f;
static char dirs[N_USERS][256];

/* A keystore for users[u] with this period's keys, in its own directory. */
static void make_user(int u)
{
    snprintf(f.dev.user_uri, sizeof f.dev.user_uri, "%s", users[u]);
    snprintf(f.dev.device_id, sizeof f.dev.device_id, "device-%d", u);
    snprintf(f.dir, sizeof f.dir, "%.128s/user%d", f.root, u);
    memcpy(dirs[u], f.dir, sizeof dirs[u]);
    fx_create(&f);
    ms_keystore *ks = fx_open(&f);
    ms_key_package pkg;
    fx_package(&f, &pkg, f.p0, f.now);
    fx_write(&f, &pkg, &f.dev);
    char detail[256];
    ms_err e = fx_import(&f, ks, f.now, detail, sizeof detail);
    if (e != MS_OK) {
        fprintf(stderr, "import: %s\n", detail);
        fx_die("import", e);
    }
    ms_keystore_close(ks);
}

static ms_keystore *open_user(int u)
{
    ms_keystore *ks = NULL;
    char detail[256] = "";
    ms_err e = ms_keystore_open(&ks, dirs[u], FX_PASS, strlen(FX_PASS), detail, sizeof detail);
    if (e != MS_OK) {
        fprintf(stderr, "open %s: %s\n", dirs[u], detail);
        fx_die("open", e);
    }
    return ks;
}

static const ms_group_delivery *delivery_for(const ms_group_delivery *d, size_t n,
                                             const char *uri)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(d[i].member, uri) == 0)
            return &d[i];
    return NULL;
}

/* The sender's own view: ms_mikey_respond on its own message in a fresh context. */
static ms_err own_result(ms_mikey_result *res, int u, const ms_group_delivery *d)
{
    ms_mikey_span mk, ro;
    ms_err e = group_body_parse(d->content_type, d->body, d->body_len, &mk, &ro, NULL, 0);
    if (e != MS_OK)
        return e;
    ms_keystore *ks = open_user(u);
    ms_mikey_config cfg = {.profile = MS_MIKEY_PROFILE_GMK, .own_uri = users[u]};
    ms_mikey_ctx *ctx = NULL;
    e = ms_mikey_ctx_new(&ctx, &cfg);
    if (e == MS_OK)
        e = ms_keystore_load_mikey(ks, ctx, NULL, 0, NULL, 0);
    if (e == MS_OK)
        e = ms_mikey_respond(ctx, res, mk.data, mk.len, GMS, NULL);
    ms_mikey_ctx_free(ctx);
    ms_keystore_close(ks);
    return e;
}

static ms_err receive(int u, const ms_group_delivery *d, ms_group_received *r)
{
    ms_keystore *ks = open_user(u);
    ms_group_member *m = NULL;
    char detail[256] = "";
    ms_err e = ms_group_member_open(&m, ks, detail, sizeof detail);
    if (e == MS_OK)
        e = ms_group_member_receive(m, r, d->content_type, d->body, d->body_len, detail,
                                    sizeof detail);
    if (e != MS_OK && getenv("MS_TEST_VERBOSE"))
        fprintf(stderr, "receive by %s: %s\n", users[u], detail);
    ms_group_member_close(m);
    ms_keystore_close(ks);
    return e;
}

static const ms_mikey_payload *rand_of(ms_mikey_message *msg, const ms_group_delivery *d)
{
    ms_mikey_span mk, ro;
    if (group_body_parse(d->content_type, d->body, d->body_len, &mk, &ro, NULL, 0) != MS_OK ||
        ms_mikey_parse(msg, mk.data, mk.len, NULL) != MS_OK)
        return NULL;
    return ms_mikey_find(msg, MS_MIKEY_PT_RAND, -1);
}

/* A copy of d's body with the first occurrence of `from` replaced by `to` (same length). */
static uint8_t *tampered(const ms_group_delivery *d, const char *from, const char *to)
{
    uint8_t *b = malloc(d->body_len);
    memcpy(b, d->body, d->body_len);
    size_t fl = strlen(from);
    for (size_t i = 0; i + fl <= d->body_len; i++)
        if (memcmp(b + i, from, fl) == 0) {
            memcpy(b + i, to, fl);
            return b;
        }
    free(b);
    return NULL;
}

static void test_sender_keys_args(void)
{
    ms_group_key k;
    memset(&k, 0, sizeof k);
    ms_srtp_keys out;
    k.gmk_len = 16;
    k.rand_len = 16;
    k.prf = MS_MIKEY_PRF_HMAC_SHA256;
    k.cs_id = 4;
    k.gmk_id = 0x01234567;
    CHECK_ERR(ms_group_sender_keys(&out, &k, "sip:a@example.org", 12), MS_OK);
    CHECK(out.mki_len == 8 && out.key_len == 16 && out.salt_len == 12);
    uint32_t guk;
    CHECK_ERR(ms_guk_id(&guk, k.gmk, 16, k.gmk_id, "sip:a@example.org"), MS_OK);
    CHECK(out.mki[0] == 0x01 && out.mki[3] == 0x67 && out.mki[4] == (uint8_t)(guk >> 24) &&
          out.mki[7] == (uint8_t)guk);
    CHECK_ERR(ms_group_sender_keys(&out, &k, "sip:a@example.org", 13), MS_ERR_ARG);
    CHECK_ERR(ms_group_sender_keys(&out, &k, "", 12), MS_ERR_ARG);
    CHECK_ERR(ms_group_sender_keys(&out, NULL, "sip:a@example.org", 12), MS_ERR_ARG);
    k.gmk_id = 0x11234567; /* a PCK purpose tag */
    CHECK_ERR(ms_group_sender_keys(&out, &k, "sip:a@example.org", 12), MS_ERR_ARG);
    k.gmk_id = 0x01234567;
    k.rand_len = 0;
    CHECK_ERR(ms_group_sender_keys(&out, &k, "sip:a@example.org", 12), MS_ERR_ARG);
    CHECK(out.key_len == 0); /* wiped on failure */
    ms_group_key_wipe(&k);
    CHECK(k.gmk_len == 0);
}

static void test_body_parse(void)
{
    uint8_t *body;
    size_t len;
    char ct[96];
    const uint8_t mk[] = {1, 2, 3, '\r', '\n', '-', '-'};
    CHECK_ERR(group_body_build(&body, &len, ct, sizeof ct, "bnd", mk, sizeof mk, "roster\n", 7),
              MS_OK);
    ms_mikey_span a, b;
    CHECK_ERR(group_body_parse(ct, body, len, &a, &b, NULL, 0), MS_OK);
    CHECK(a.len == sizeof mk && memcmp(a.data, mk, sizeof mk) == 0);
    CHECK(b.len == 7 && memcmp(b.data, "roster\n", 7) == 0);
    CHECK_ERR(group_body_parse("application/mikey", body, len, &a, &b, NULL, 0), MS_ERR_GROUP);
    CHECK_ERR(group_body_parse("multipart/mixed", body, len, &a, &b, NULL, 0), MS_ERR_GROUP);
    CHECK_ERR(group_body_parse("multipart/mixed;boundary=other", body, len, &a, &b, NULL, 0),
              MS_ERR_GROUP);
    CHECK_ERR(group_body_parse(ct, body, len - 1, &a, &b, NULL, 0), MS_ERR_GROUP);
    CHECK_ERR(group_body_parse("multipart/mixed;boundary=\"bnd\"", body, len, &a, &b, NULL, 0),
              MS_OK);
    body[30] = 'X'; /* the first part's Content-Type */
    CHECK_ERR(group_body_parse(ct, body, len, &a, &b, NULL, 0), MS_ERR_GROUP);
    free(body);
}

int main(void)
{
    ms_test_seed();
    test_sender_keys_args();
    test_body_parse();

    fx_init(&f, 0);
    /* the real clock: MIKEY's timestamps and key periods follow it */
    f.now = ms_ntp_now() >> 32;
    if (ms_key_period(&f.scheme, &f.p0, f.now) != MS_OK ||
        ms_key_period_bounds(&f.scheme, &f.p0_start, &f.p0_end, f.p0) != MS_OK)
        fx_die("period", MS_ERR_INTERNAL);
    for (int u = 0; u < N_USERS; u++)
        make_user(u);

    char detail[256] = "";
    ms_gms *gms = NULL;
    CHECK_ERR(ms_gms_open(&gms, dirs[U_GMS], FX_PASS, strlen(FX_PASS), detail, sizeof detail),
              MS_OK);
    const char *const three[] = {users[U_ALICE], users[U_BOB], users[U_CAROL]};
    CHECK_ERR(ms_gms_create(gms, GROUP, three, 3, 0, 0, detail, sizeof detail), MS_OK);
    CHECK_ERR(ms_gms_create(gms, GROUP, three, 3, 0, 0, detail, sizeof detail), MS_ERR_EXISTS);
    const char *const twice[] = {users[U_ALICE], users[U_ALICE]};
    CHECK_ERR(ms_gms_create(gms, "sip:other@example.org", twice, 2, 0, 0, NULL, 0), MS_ERR_ARG);
    CHECK_ERR(ms_gms_create(gms, "bad name", three, 3, 0, 0, NULL, 0), MS_ERR_IDENTITY);
    ms_gms_group_info info;
    char *members = NULL;
    CHECK_ERR(ms_gms_show(gms, &info, &members, GROUP, detail, sizeof detail), MS_OK);
    CHECK(info.n_members == 3 && info.n_keys == 1 && info.generation == 1);
    CHECK((info.keys[0].gmk_id >> 28) == MS_MIKEY_PURPOSE_GMK && info.keys[0].gmk_id != 0);
    CHECK(members != NULL && strcmp(members, "sip:alice@example.org\nsip:bob@example.org\n"
                                             "sip:carol@example.org\n") == 0);
    free(members);
    const uint32_t gmk1 = info.keys[0].gmk_id;
    CHECK_ERR(ms_gms_show(gms, &info, NULL, "sip:nobody@example.org", NULL, 0), MS_ERR_GROUP);

    /* ---- first key: one message per member, one RAND for all --------------------------- */
    ms_group_delivery *d = NULL;
    size_t n = 0;
    CHECK_ERR(ms_gms_deliveries(gms, &d, &n, GROUP, 1, detail, sizeof detail), MS_OK);
    CHECK(n == 3);
    ms_mikey_message m0, mi;
    const ms_mikey_payload *r0 = rand_of(&m0, &d[0]);
    CHECK(r0 != NULL);
    for (size_t i = 1; i < n && r0 != NULL; i++) {
        const ms_mikey_payload *ri = rand_of(&mi, &d[i]);
        CHECK(ri != NULL && ri->u.rand.len == r0->u.rand.len &&
              memcmp(ri->u.rand.data, r0->u.rand.data, r0->u.rand.len) == 0);
    }
    /* the message itself: GUK-ID as CSB-ID, SPI = GMK-ID || GUK-ID, key parameters and
     * SAKKE-to-self present */
    ms_mikey_result own[3];
    uint32_t guk[3];
    for (int i = 0; i < 3; i++) {
        CHECK_ERR(own_result(&own[i], U_ALICE + i, &d[i]), MS_OK);
        CHECK(own[i].key_id == gmk1);
        CHECK_ERR(ms_guk_id(&guk[i], own[i].key, 16, gmk1, users[U_ALICE + i]), MS_OK);
        CHECK(own[i].csb_id == guk[i]);
        CHECK(own[i].map_type == MS_MIKEY_MAP_GENERIC_ID && own[i].n_cs == 1 &&
              own[i].cs[0].spi.len == 8);
        CHECK(own[i].cs_spi[0][0] == (uint8_t)(gmk1 >> 24) &&
              own[i].cs_spi[0][4] == (uint8_t)(guk[i] >> 24) &&
              own[i].cs_spi[0][7] == (uint8_t)guk[i]);
        CHECK(own[i].has_key_params && own[i].key_params.status == 1 &&
              own[i].key_params.key_type == MS_MIKEY_PURPOSE_GMK &&
              own[i].key_params.expiry > own[i].key_params.activation);
        ms_mikey_message msg;
        ms_mikey_span mk, ro;
        CHECK(group_body_parse(d[i].content_type, d[i].body, d[i].body_len, &mk, &ro, NULL, 0) ==
                  MS_OK &&
              ms_mikey_parse(&msg, mk.data, mk.len, NULL) == MS_OK);
        const ms_mikey_payload *self = NULL;
        for (size_t p = 0; p < msg.n_payloads; p++)
            if (msg.payloads[p].type == MS_MIKEY_PT_GENERAL_EXT &&
                msg.payloads[p].u.ext.type == MS_MIKEY_EXT_SAKKE_TO_SELF)
                self = &msg.payloads[p];
        CHECK(self != NULL);
    }
    CHECK(guk[0] != guk[1] && guk[1] != guk[2]);
    /* the GMS's own devices read every member's message through SAKKE-to-self (computed
     * once per key and reused: each copy must still open) */
    {
        ms_keystore *gks = open_user(U_GMS);
        ms_mikey_config cfg = {.profile = MS_MIKEY_PROFILE_GMK, .own_uri = GMS};
        ms_mikey_ctx *ctx = NULL;
        CHECK_ERR(ms_mikey_ctx_new(&ctx, &cfg), MS_OK);
        CHECK_ERR(ms_keystore_load_mikey(gks, ctx, NULL, 0, NULL, 0), MS_OK);
        for (size_t i = 0; i < n; i++) {
            ms_mikey_span mk, ro;
            ms_mikey_result res;
            CHECK(group_body_parse(d[i].content_type, d[i].body, d[i].body_len, &mk, &ro, NULL,
                                   0) == MS_OK);
            CHECK_ERR(ms_mikey_respond(ctx, &res, mk.data, mk.len, GMS, NULL), MS_OK);
            CHECK(res.key_id == gmk1 && res.csb_id == guk[i]);
            CHECK_MEM(res.key, own[i].key, 16);
            ms_mikey_result_wipe(&res);
        }
        /* the RAND input of ms_mikey_initiate: 1 to 255 octets */
        uint8_t msg[MS_MIKEY_MAX_MESSAGE], rnd[256] = {0};
        size_t len;
        ms_mikey_init_params p;
        memset(&p, 0, sizeof p);
        p.responder = users[U_ALICE];
        p.rand = rnd;
        p.rand_len = 0;
        CHECK_ERR(ms_mikey_initiate(ctx, msg, sizeof msg, &len, NULL, &p), MS_ERR_ARG);
        p.rand_len = 256;
        CHECK_ERR(ms_mikey_initiate(ctx, msg, sizeof msg, &len, NULL, &p), MS_ERR_ARG);
        p.rand_len = 255;
        rnd[254] = 0x5a;
        ms_mikey_result res;
        CHECK_ERR(ms_mikey_initiate(ctx, msg, sizeof msg, &len, &res, &p), MS_OK);
        CHECK(res.rand_len == 255 && res.rand[254] == 0x5a);
        ms_mikey_message parsed;
        CHECK_ERR(ms_mikey_parse(&parsed, msg, len, NULL), MS_OK);
        const ms_mikey_payload *rp = ms_mikey_find(&parsed, MS_MIKEY_PT_RAND, -1);
        CHECK(rp != NULL && rp->u.rand.len == 255 && rp->u.rand.data[254] == 0x5a);
        ms_mikey_result_wipe(&res);
        ms_mikey_ctx_free(ctx);
        ms_keystore_close(gks);
    }

    /* every member receives, stores and derives every sender's keys */
    ms_group_received rcv[3];
    for (int i = 0; i < 3; i++) {
        CHECK_ERR(receive(U_ALICE + i, &d[i], &rcv[i]), MS_OK);
        CHECK(strcmp(rcv[i].group, GROUP) == 0 && strcmp(rcv[i].gms, GMS) == 0);
        CHECK(rcv[i].gmk_id == gmk1 && rcv[i].guk_id == guk[i] && rcv[i].n_members == 3);
        CHECK(rcv[i].members != NULL && strstr(rcv[i].members, "sip:carol@example.org\n"));
        ms_group_received_free(&rcv[i]);
    }
    for (int i = 0; i < 3; i++) {
        ms_keystore *ks = open_user(U_ALICE + i);
        ms_group_key key;
        CHECK_ERR(ms_group_key_load(&key, ks, GROUP, 0, 0, detail, sizeof detail), MS_OK);
        CHECK(key.gmk_id == gmk1 && key.cs_id == 4 && key.prf == MS_MIKEY_PRF_HMAC_SHA256);
        for (int j = 0; j < 3; j++) {
            ms_srtp_keys mine, theirs;
            CHECK_ERR(ms_group_sender_keys(&mine, &key, users[U_ALICE + j], 12), MS_OK);
            CHECK_ERR(ms_mikey_srtp_keys(&theirs, &own[j], own[j].cs[0].cs_id, 16, 12), MS_OK);
            CHECK_MEM(mine.master_key, theirs.master_key, 16);
            CHECK_MEM(mine.master_salt, theirs.master_salt, 12);
            CHECK(mine.mki_len == 8 && theirs.mki_len == 8);
            CHECK_MEM(mine.mki, theirs.mki, 8);
            CHECK_ERR(ms_group_sender_keys(&mine, &key, users[U_ALICE + j], 14), MS_OK);
            CHECK_ERR(ms_mikey_srtp_keys(&theirs, &own[j], own[j].cs[0].cs_id, 16, 14), MS_OK);
            CHECK_MEM(mine.master_salt, theirs.master_salt, 14);
        }
        char *list = NULL;
        size_t count = 0;
        CHECK_ERR(ms_group_roster_load(&list, &count, ks, GROUP, detail, sizeof detail), MS_OK);
        CHECK(count == 3 && list != NULL && strstr(list, "sip:bob@example.org\n") != NULL);
        free(list);
        CHECK_ERR(ms_group_key_load(&key, ks, GROUP, 0x01010101, 0, NULL, 0), MS_ERR_NO_KEYS);
        CHECK_ERR(ms_group_key_load(&key, ks, "sip:unknown@example.org", 0, 0, NULL, 0),
                  MS_ERR_NO_KEYS);
        ms_group_key_wipe(&key);
        ms_keystore_close(ks);
    }
    for (int i = 0; i < 3; i++)
        ms_mikey_result_wipe(&own[i]);
    ms_group_deliveries_free(d, n);

    /* ---- the roster: tampered, foreign, or without the member: refused -------------------- */
    CHECK_ERR(ms_gms_deliveries(gms, &d, &n, GROUP, 1, detail, sizeof detail), MS_OK);
    const ms_group_delivery *to_carol = delivery_for(d, n, users[U_CAROL]);
    uint8_t *bad = tampered(to_carol, "member sip:bob@", "member sip:eve@");
    CHECK(bad != NULL);
    ms_group_delivery forged = *to_carol;
    forged.body = bad;
    ms_group_received r;
    CHECK_ERR(receive(U_CAROL, &forged, &r), MS_ERR_SIGNATURE);
    free(bad);
    bad = tampered(to_carol, "Content-Type: application/mikey", "Content-Type: application/mikex");
    forged.body = bad;
    CHECK_ERR(receive(U_CAROL, &forged, &r), MS_ERR_GROUP);
    free(bad);
    forged.body = (uint8_t *)"not multipart";
    forged.body_len = 13;
    CHECK_ERR(receive(U_CAROL, &forged, &r), MS_ERR_GROUP);
    /* a correctly signed roster that leaves carol out */
    {
        ms_mikey_span mk, ro;
        CHECK_ERR(group_body_parse(to_carol->content_type, to_carol->body, to_carol->body_len,
                                   &mk, &ro, NULL, 0), MS_OK);
        group_roster gr;
        ms_keystore *gks = open_user(U_GMS);
        ms_keystore_identity gid;
        CHECK_ERR(ms_keystore_identity_get(gks, &gid), MS_OK);
        CHECK_ERR(group_roster_verify(&gr, (const char *)ro.data, ro.len, &gid, NULL, 0), MS_OK);
        const char *const two[] = {users[U_ALICE], users[U_BOB]};
        char *txt = NULL;
        size_t txt_len = 0;
        CHECK_ERR(group_roster_sign(&txt, &txt_len, gks, &gr, two, 2, detail, sizeof detail),
                  MS_OK);
        uint8_t *body2 = NULL;
        size_t body2_len = 0;
        ms_group_delivery other = {.body_len = 0};
        CHECK_ERR(group_body_build(&body2, &body2_len, other.content_type,
                                   sizeof other.content_type, "b2", mk.data, mk.len, txt,
                                   txt_len), MS_OK);
        other.body = body2;
        other.body_len = body2_len;
        CHECK_ERR(receive(U_CAROL, &other, &r), MS_ERR_GROUP);
        free(txt);
        free(body2);
        ms_keystore_close(gks);
    }
    /* alice's message is not for carol */
    CHECK_ERR(receive(U_CAROL, delivery_for(d, n, users[U_ALICE]), &r), MS_ERR_MIKEY_RESPONDER);
    ms_group_delivery *old = d;
    size_t n_old = n;

    /* ---- remove bob: a new key, never sent to him ---------------------------------------- */
    const char *const bob[] = {users[U_BOB]};
    CHECK_ERR(ms_gms_remove(gms, GROUP, bob, 1, 0, 0, detail, sizeof detail), MS_OK);
    CHECK_ERR(ms_gms_remove(gms, GROUP, bob, 1, 0, 0, NULL, 0), MS_ERR_GROUP);
    CHECK_ERR(ms_gms_show(gms, &info, NULL, GROUP, detail, sizeof detail), MS_OK);
    CHECK(info.n_members == 2 && info.n_keys == 2 && info.keys[1].gmk_id == gmk1 &&
          info.keys[0].gmk_id != gmk1 && info.generation == 2);
    const uint32_t gmk2 = info.keys[0].gmk_id;
    CHECK_ERR(ms_gms_deliveries(gms, &d, &n, GROUP, 1, detail, sizeof detail), MS_OK);
    CHECK(n == 2 && delivery_for(d, n, users[U_BOB]) == NULL);
    /* a roster of the old key with the new key's message: refused */
    {
        ms_mikey_span mk_new, ro_new, mk_old, ro_old;
        const ms_group_delivery *nw = delivery_for(d, n, users[U_CAROL]);
        const ms_group_delivery *ol = delivery_for(old, n_old, users[U_CAROL]);
        CHECK_ERR(group_body_parse(nw->content_type, nw->body, nw->body_len, &mk_new, &ro_new,
                                   NULL, 0), MS_OK);
        CHECK_ERR(group_body_parse(ol->content_type, ol->body, ol->body_len, &mk_old, &ro_old,
                                   NULL, 0), MS_OK);
        uint8_t *mixed;
        size_t mixed_len;
        char ct[96];
        CHECK_ERR(group_body_build(&mixed, &mixed_len, ct, sizeof ct, "x1", mk_new.data,
                                   mk_new.len, (const char *)ro_old.data, ro_old.len), MS_OK);
        ms_group_delivery mix = {.body = mixed, .body_len = mixed_len};
        snprintf(mix.content_type, sizeof mix.content_type, "%s", ct);
        CHECK_ERR(receive(U_CAROL, &mix, &r), MS_ERR_GROUP);
        free(mixed);
    }
    for (int u = U_ALICE; u <= U_CAROL; u += 2) {
        CHECK_ERR(receive(u, delivery_for(d, n, users[u]), &r), MS_OK);
        CHECK(r.gmk_id == gmk2 && r.n_members == 2 && strstr(r.members, "bob") == NULL);
        ms_group_received_free(&r);
        ms_keystore *ks = open_user(u);
        ms_group_key key;
        CHECK_ERR(ms_group_key_load(&key, ks, GROUP, 0, 0, NULL, 0), MS_OK);
        CHECK(key.gmk_id == gmk2);
        CHECK_ERR(ms_group_key_load(&key, ks, GROUP, gmk1, 0, NULL, 0), MS_OK);
        CHECK(key.gmk_id == gmk1);
        ms_group_key_wipe(&key);
        /* both keys are listed (a call accepts the other one during the hand-over) */
        uint32_t ids[2];
        size_t n_ids = 9;
        CHECK_ERR(ms_group_key_ids(ids, 2, &n_ids, ks, GROUP, NULL, 0), MS_OK);
        CHECK(n_ids == 2 && ((ids[0] == gmk1 && ids[1] == gmk2) ||
                             (ids[0] == gmk2 && ids[1] == gmk1)));
        CHECK_ERR(ms_group_key_ids(ids, 1, &n_ids, ks, GROUP, detail, sizeof detail),
                  MS_ERR_BUFFER_TOO_SMALL);
        CHECK_ERR(ms_group_key_ids(ids, 2, &n_ids, ks, "sip:unknown@example.org", NULL, 0),
                  MS_OK);
        CHECK(n_ids == 0);
        CHECK_ERR(ms_group_key_ids(ids, 2, &n_ids, ks, "not a uri", NULL, 0), MS_ERR_ARG);
        CHECK_ERR(ms_group_key_ids(ids, 2, NULL, ks, GROUP, NULL, 0), MS_ERR_ARG);
        ms_keystore_close(ks);
    }
    /* bob cannot open what was sent to alice; he still holds only the old key */
    CHECK_ERR(receive(U_BOB, delivery_for(d, n, users[U_ALICE]), &r), MS_ERR_MIKEY_RESPONDER);
    {
        ms_keystore *ks = open_user(U_BOB);
        ms_group_key key;
        CHECK_ERR(ms_group_key_load(&key, ks, GROUP, 0, 0, NULL, 0), MS_OK);
        CHECK(key.gmk_id == gmk1);
        CHECK_ERR(ms_group_key_load(&key, ks, GROUP, gmk2, 0, NULL, 0), MS_ERR_NO_KEYS);
        uint32_t ids[2];
        size_t n_ids = 0;
        CHECK_ERR(ms_group_key_ids(ids, 2, &n_ids, ks, GROUP, NULL, 0), MS_OK);
        CHECK(n_ids == 1 && ids[0] == gmk1);
        ms_keystore_close(ks);
    }
    ms_group_deliveries_free(d, n);

    /* ---- add dave: the same key with a newer roster; an older roster is refused ----------- */
    const char *const dave[] = {users[U_DAVE]};
    CHECK_ERR(ms_gms_add(gms, GROUP, dave, 1, detail, sizeof detail), MS_OK);
    CHECK_ERR(ms_gms_add(gms, GROUP, dave, 1, NULL, 0), MS_ERR_EXISTS);
    CHECK_ERR(ms_gms_deliveries(gms, &d, &n, GROUP, 1, detail, sizeof detail), MS_OK);
    CHECK(n == 3);
    CHECK_ERR(receive(U_DAVE, delivery_for(d, n, users[U_DAVE]), &r), MS_OK);
    CHECK(r.gmk_id == gmk2 && r.n_members == 3);
    ms_group_received_free(&r);
    CHECK_ERR(receive(U_ALICE, delivery_for(d, n, users[U_ALICE]), &r), MS_OK);
    ms_group_received_free(&r);
    /* carol's copy from before dave joined (generation 2 < 3 once she has the new one) */
    CHECK_ERR(receive(U_CAROL, delivery_for(d, n, users[U_CAROL]), &r), MS_OK);
    ms_group_received_free(&r);
    ms_group_deliveries_free(d, n);
    /* old (generation 1, before bob left) to carol: she holds generation 3 now */
    CHECK_ERR(receive(U_CAROL, delivery_for(old, n_old, users[U_CAROL]), &r), MS_ERR_GROUP);
    ms_group_deliveries_free(old, n_old);

    /* ---- a larger group over two threads ----------------------------------------------- */
    enum { BIG = 40 };
    char big_names[BIG][64];
    const char *big[BIG];
    for (int i = 0; i < BIG; i++) {
        snprintf(big_names[i], sizeof big_names[i], "sip:member%02d@example.org", i);
        big[i] = big_names[i];
    }
    CHECK_ERR(ms_gms_create(gms, "sip:big@example.org", big, BIG, 60, 3600, detail,
                            sizeof detail), MS_OK);
    CHECK_ERR(ms_gms_deliveries(gms, &d, &n, "sip:big@example.org", 2, detail, sizeof detail),
              MS_OK);
    CHECK(n == BIG);
    r0 = rand_of(&m0, &d[0]);
    int same = r0 != NULL;
    for (size_t i = 0; i < n && same; i++) {
        const ms_mikey_payload *ri = rand_of(&mi, &d[i]);
        same = ri != NULL && strcmp(d[i].member, big[i]) == 0 &&
               ri->u.rand.len == r0->u.rand.len &&
               memcmp(ri->u.rand.data, r0->u.rand.data, r0->u.rand.len) == 0;
    }
    CHECK(same);
    ms_group_deliveries_free(d, n);

    /* a damaged group file is refused, and create does not replace it */
    {
        char h[17], path[400];
        group_hash_hex(h, "sip:big@example.org");
        snprintf(path, sizeof path, "%s/group-%s", dirs[U_GMS], h);
        fx_flip(path, -5);
        CHECK_ERR(ms_gms_show(gms, &info, NULL, "sip:big@example.org", NULL, 0),
                  MS_ERR_KEYSTORE);
        CHECK_ERR(ms_gms_create(gms, "sip:big@example.org", big, 2, 0, 0, NULL, 0),
                  MS_ERR_KEYSTORE);
        CHECK_ERR(ms_gms_rekey(gms, "sip:big@example.org", 0, 0, NULL, 0), MS_ERR_KEYSTORE);
    }

    ms_gms_close(gms);
    fx_cleanup(&f);
    return ms_test_finish();
}
