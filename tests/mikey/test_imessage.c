/*
 * MIKEY-SAKKE I_MESSAGE initiator and responder: round trips in every profile (RFC 6509,
 * TS 33.180 PCK, GMK, CSK), SAKKE-to-self, identity hiding, key parameters, prepared and
 * cold paths, the message layout checked field by field with the codec and an
 * independent ECCSI verification, and the SRTP keys against the digest's vectors.
 *
 * Keys come from a test KMS made with the crypto layer; the clock is fixed
 * (2025-10-15 12:00:00 UTC) through cfg.clock. Every ms_mikey_ctx builds a SAKKE KMS
 * table, so the test keeps their number small.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "mikey_fixture.h"
#include "testutil.h"

#define GMS_SIP "sip:gms@example.org"
#define MDSI_SIP "sip:mdsi@example.org"

typedef struct user {
    const char *uri;
    ms_mikey_ctx *ctx;
    uint8_t rsk[MS_SAKKE_POINT_BYTES];
    uint8_t id[MS_SAKKE_ID_MAX_BYTES];
    size_t id_len;
} user;

static void user_init(user *u, ms_mikey_profile profile, const char *uri, bool prepare)
{
    memset(u, 0, sizeof *u);
    u->uri = uri;
    ms_mikey_config cfg = {0};
    cfg.prepare = prepare;
    u->ctx = test_ctx_new(&cfg, profile, uri);
    test_user_keys k;
    ms_err e = test_issue_keys(&k, u->ctx, scheme_of_profile(profile), uri,
                               period_of_profile(profile));
    if (e != MS_OK)
        die("keys", e);
    memcpy(u->id, k.id, k.id_len);
    u->id_len = k.id_len;
    memcpy(u->rsk, k.rsk, sizeof u->rsk);
    ms_wipe(&k, sizeof k);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Both sides derive the same SRTP keys for crypto session cs_id; returns the keys. */
static void check_srtp_agree(const ms_mikey_result *a, const ms_mikey_result *b, uint8_t cs_id,
                             ms_srtp_keys *ka)
{
    ms_srtp_keys kb;
    CHECK_ERR(ms_mikey_srtp_keys(ka, a, cs_id, 16, 12), MS_OK);
    CHECK_ERR(ms_mikey_srtp_keys(&kb, b, cs_id, 16, 12), MS_OK);
    CHECK_MEM(ka->master_key, kb.master_key, 16);
    CHECK_MEM(ka->master_salt, kb.master_salt, 12);
    CHECK(ka->mki_len == kb.mki_len);
    CHECK_MEM(ka->mki, kb.mki, kb.mki_len);
    ms_wipe(&kb, sizeof kb);
}

/* The parts of a result both ends must agree on. */
static void check_same_result(const ms_mikey_result *i, const ms_mikey_result *r)
{
    CHECK(i->key_len == 16 && r->key_len == 16);
    CHECK_MEM(i->key, r->key, 16);
    CHECK(i->csb_id == r->csb_id);
    CHECK(i->key_id == r->key_id);
    CHECK(i->prf == r->prf);
    CHECK(i->rand_len == r->rand_len);
    CHECK_MEM(i->rand, r->rand, r->rand_len);
    CHECK(i->timestamp == r->timestamp);
    CHECK(i->period_no == r->period_no);
    CHECK(i->map_type == r->map_type && i->n_cs == r->n_cs);
}

/* ---- RFC 6509 ------------------------------------------------------------------------- */

static user alice, alice_prep, bob, bob_prep; /* RFC 6509 */

static void test_rfc6509_layout_and_round_trip(void)
{
    uint8_t msg[BUF];
    size_t len = 0;
    ms_mikey_init_params p = {0};
    p.responder = BOB_TEL;
    ms_mikey_result ri, rr;
    CHECK_ERR(ms_mikey_initiate(alice.ctx, msg, sizeof msg, &len, &ri, &p), MS_OK);

    /* Layout, read back with the codec. */
    ms_mikey_message m;
    CHECK_ERR(ms_mikey_parse(&m, msg, len, NULL), MS_OK);
    CHECK(m.hdr.version == 1 && m.hdr.data_type == 26 && !m.hdr.v);
    CHECK(m.hdr.prf == MS_MIKEY_PRF_MIKEY1);
    CHECK(m.hdr.csb_id == ri.csb_id);
    CHECK(m.hdr.map_type == MS_MIKEY_MAP_SRTP_ID && m.hdr.n_cs == 1);
    CHECK(m.hdr.cs[0].ssrc == 0 && m.hdr.cs[0].policies[0] == 0);
    static const uint8_t order[] = {MS_MIKEY_PT_T, MS_MIKEY_PT_RAND, MS_MIKEY_PT_IDR,
                                    MS_MIKEY_PT_IDR, MS_MIKEY_PT_IDR, MS_MIKEY_PT_IDR,
                                    MS_MIKEY_PT_SP, MS_MIKEY_PT_SAKKE, MS_MIKEY_PT_SIGN};
    CHECK(m.n_payloads == sizeof order);
    for (size_t i = 0; i < m.n_payloads && i < sizeof order; i++)
        CHECK(m.payloads[i].type == order[i]);
    const ms_mikey_payload *pl = ms_mikey_find(&m, MS_MIKEY_PT_T, -1);
    CHECK(pl != NULL && pl->u.t.ts_type == MS_MIKEY_TS_NTP_UTC && pl->u.t.value == g_now);
    pl = ms_mikey_find(&m, MS_MIKEY_PT_RAND, -1);
    CHECK(pl != NULL && pl->u.rand.len == 16);
    static const struct { int role; const char *v; } idrs[] = {
        {MS_MIKEY_ROLE_INITIATOR, ALICE_TEL}, {MS_MIKEY_ROLE_RESPONDER, BOB_TEL},
        {MS_MIKEY_ROLE_KMS_INITIATOR, KMS_URI}, {MS_MIKEY_ROLE_KMS_RESPONDER, KMS_URI}};
    for (size_t i = 0; i < 4; i++) {
        pl = ms_mikey_find(&m, MS_MIKEY_PT_IDR, idrs[i].role);
        CHECK(pl != NULL && pl->u.idr.id_type == MS_MIKEY_IDTYPE_URI &&
              pl->u.idr.id.len == strlen(idrs[i].v) &&
              memcmp(pl->u.idr.id.data, idrs[i].v, strlen(idrs[i].v)) == 0);
    }
    pl = ms_mikey_find(&m, MS_MIKEY_PT_SP, -1);
    static const uint8_t sp_want[] = {0, 1, 1, 1, 1, 16, 2, 1, 1, 3, 1, 20, 4, 1, 14, 11, 1, 10};
    CHECK(pl != NULL && pl->u.sp.prot_type == MS_MIKEY_PROT_SRTP && pl->u.sp.policy_no == 0 &&
          pl->u.sp.params.len == sizeof sp_want &&
          memcmp(pl->u.sp.params.data, sp_want, sizeof sp_want) == 0);
    pl = ms_mikey_find(&m, MS_MIKEY_PT_SAKKE, -1);
    CHECK(pl != NULL && pl->u.sakke.params == 1 && pl->u.sakke.id_scheme == 1 &&
          pl->u.sakke.data.len == MS_SAKKE_SED_BYTES);
    pl = ms_mikey_find(&m, MS_MIKEY_PT_SIGN, -1);
    CHECK(pl != NULL && pl->u.sign.s_type == MS_MIKEY_STYPE_ECCSI &&
          pl->u.sign.sig.len == MS_ECCSI_SIG_BYTES);

    /* What is signed (digest 4.7): everything up to and including 0x20 0x81, verified
     * independently with the identifier written out by hand. */
    CHECK(len > 131 && msg[len - 131] == 0x20 && msg[len - 130] == 0x81);
    CHECK(m.signed_len == len - MS_ECCSI_SIG_BYTES);
    static const char alice_id[] = "2025-10\0" ALICE_TEL; /* + the literal's own NUL */
    ms_eccsi_verifier *ver;
    CHECK_ERR(ms_eccsi_verifier_new(&ver, kpak), MS_OK);
    CHECK_ERR(ms_eccsi_verify(ver, (const uint8_t *)alice_id, sizeof alice_id, msg, len - 129,
                              msg + len - 129, 129, NULL),
              MS_OK);
    CHECK_ERR(ms_eccsi_verify(ver, (const uint8_t *)alice_id, sizeof alice_id, msg, len - 131,
                              msg + len - 129, 129, NULL),
              MS_ERR_SIGNATURE);
    ms_eccsi_verifier_free(ver);
    /* ... and the SAKKE data decapsulates with Bob's identifier and RSK directly. */
    uint8_t ssv[16];
    static const char bob_id[] = "2025-10\0" BOB_TEL;
    pl = ms_mikey_find(&m, MS_MIKEY_PT_SAKKE, -1);
    CHECK_ERR(ms_sakke_decap(issuer, ssv, 16, (const uint8_t *)bob_id, sizeof bob_id, bob.rsk,
                             pl->u.sakke.data.data, pl->u.sakke.data.len),
              MS_OK);
    CHECK_MEM(ssv, ri.key, 16);

    /* Initiator's view of the result */
    CHECK(ri.profile == MS_MIKEY_PROFILE_RFC6509 && ri.key_id == ri.csb_id);
    CHECK(ri.period_no == MONTH_PERIOD);
    CHECK(strcmp(ri.initiator, ALICE_TEL) == 0 && strcmp(ri.responder, BOB_TEL) == 0);

    /* The responder, prepared and cold, recovers the same key. */
    ms_mikey_diag d;
    CHECK_ERR(ms_mikey_respond(bob_prep.ctx, &rr, msg, len, ALICE_TEL, &d), MS_OK);
    check_same_result(&ri, &rr);
    CHECK(strcmp(rr.initiator, ALICE_TEL) == 0 && strcmp(rr.initiator_kms, KMS_URI) == 0);
    CHECK(strcmp(rr.responder, BOB_TEL) == 0 && !rr.initiator_hidden);
    CHECK(rr.n_cs == 1 && rr.cs[0].cs_id == 1 && rr.cs[0].spi.data == NULL);
    ms_mikey_result rc;
    CHECK_ERR(ms_mikey_respond(bob.ctx, &rc, msg, len, NULL, &d), MS_OK);
    check_same_result(&ri, &rc);

    ms_srtp_keys k;
    check_srtp_agree(&ri, &rr, 1, &k);
    CHECK(k.mki_len == 0 && k.key_len == 16 && k.salt_len == 12);
    /* keys of another crypto session differ */
    ms_srtp_keys k2;
    CHECK_ERR(ms_mikey_srtp_keys(&k2, &rr, 2, 16, 12), MS_OK);
    CHECK(memcmp(k.master_key, k2.master_key, 16) != 0);

    ms_mikey_result_wipe(&ri);
    static const uint8_t zero[sizeof ri] = {0};
    CHECK_MEM(&ri, zero, sizeof ri);
    ms_mikey_result_wipe(&rr);
    ms_mikey_result_wipe(&rc);
}

static void test_rfc6509_omit_idr(void)
{
    uint8_t msg[BUF];
    size_t len = 0;
    ms_mikey_init_params p = {0};
    p.responder = BOB_TEL;
    p.omit_idr = true;
    ms_mikey_result ri, rr;
    CHECK_ERR(ms_mikey_initiate(alice.ctx, msg, sizeof msg, &len, &ri, &p), MS_OK);
    ms_mikey_message m;
    CHECK_ERR(ms_mikey_parse(&m, msg, len, NULL), MS_OK);
    CHECK(ms_mikey_find(&m, MS_MIKEY_PT_IDR, -1) == NULL);
    /* The initiator must then come from the signalling. */
    ms_mikey_diag d;
    d.detail[0] = '\0';
    CHECK_ERR(ms_mikey_respond(bob.ctx, &rr, msg, len, NULL, &d), MS_ERR_MIKEY_INITIATOR);
    CHECK(d.detail[0] != '\0');
    CHECK_ERR(ms_mikey_respond(bob.ctx, &rr, msg, len, ALICE_TEL, &d), MS_OK);
    check_same_result(&ri, &rr);
    CHECK(strcmp(rr.initiator, ALICE_TEL) == 0 && strcmp(rr.responder, BOB_TEL) == 0);
    ms_mikey_result_wipe(&ri);
    ms_mikey_result_wipe(&rr);
}

/* Prepared initiator (peer table) and given key, CSB-ID and PRF: the cold and prepared
 * responders agree with the key that was put in. */
static void test_rfc6509_prepared_paths(void)
{
    CHECK_ERR(ms_mikey_prepare_peer(alice_prep.ctx, BOB_TEL, NULL, 0), MS_OK);
    CHECK_ERR(ms_mikey_prepare_peer(alice_prep.ctx, BOB_TEL, KMS_URI, g_now), MS_OK);
    CHECK_ERR(ms_mikey_prepare_peer(alice_prep.ctx, BOB_TEL, "kms.unknown.org", 0),
              MS_ERR_MIKEY_UNKNOWN_KMS);
    static const uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    ms_mikey_init_params p = {0};
    p.responder = BOB_TEL;
    p.key = key;
    p.key_len = 16;
    p.key_id = 0x12345678;
    p.prf = MS_MIKEY_PRF_HMAC_SHA256;
    uint8_t m1[BUF], m2[BUF];
    size_t l1 = 0, l2 = 0;
    ms_mikey_result ri, r1, r2;
    CHECK_ERR(ms_mikey_initiate(alice_prep.ctx, m1, sizeof m1, &l1, &ri, &p), MS_OK);
    CHECK_MEM(ri.key, key, 16);
    CHECK(ri.csb_id == 0x12345678 && ri.prf == MS_MIKEY_PRF_HMAC_SHA256);
    CHECK_ERR(ms_mikey_initiate(alice.ctx, m2, sizeof m2, &l2, NULL, &p), MS_OK);
    CHECK(l1 == l2 && memcmp(m1, m2, l1) != 0); /* fresh RAND, SAKKE r and signature */

    CHECK_ERR(ms_mikey_respond(bob.ctx, &r1, m1, l1, ALICE_TEL, NULL), MS_OK);
    CHECK_ERR(ms_mikey_respond(bob_prep.ctx, &r2, m2, l2, ALICE_TEL, NULL), MS_OK);
    CHECK_MEM(r1.key, key, 16);
    CHECK_MEM(r2.key, key, 16);
    CHECK(r1.prf == MS_MIKEY_PRF_HMAC_SHA256 && r1.csb_id == 0x12345678);
    ms_srtp_keys k;
    check_srtp_agree(&ri, &r1, 1, &k);

    /* Wrong key length, too small a buffer. */
    p.key_len = 15;
    CHECK_ERR(ms_mikey_initiate(alice.ctx, m1, sizeof m1, &l1, NULL, &p), MS_ERR_SSV_SIZE);
    p.key_len = 16;
    CHECK_ERR(ms_mikey_initiate(alice.ctx, m1, 100, &l1, NULL, &p), MS_ERR_BUFFER_TOO_SMALL);
    CHECK(l1 == l2);
    ms_mikey_result_wipe(&ri);
    ms_mikey_result_wipe(&r1);
    ms_mikey_result_wipe(&r2);
}

static void test_ctx_arguments(void)
{
    ms_mikey_ctx *ctx = NULL;
    ms_mikey_config cfg = {0};
    CHECK_ERR(ms_mikey_ctx_new(&ctx, &cfg), MS_ERR_ARG); /* no own URI */
    CHECK(ctx == NULL);
    cfg.own_uri = ALICE_TEL;
    cfg.profile = (ms_mikey_profile)9;
    CHECK_ERR(ms_mikey_ctx_new(&ctx, &cfg), MS_ERR_ARG);
    CHECK_ERR(ms_mikey_ctx_new(NULL, &cfg), MS_ERR_ARG);

    /* The profile fixes the identifier scheme: a 3GPP KMS in an RFC 6509 context. */
    ms_mikey_kms_info info = {"kms.other.org", uid_scheme, Z, kpak};
    CHECK_ERR(ms_mikey_add_kms(alice.ctx, &info), MS_ERR_MIKEY_UNSUPPORTED);
    info.scheme = tel_scheme;
    info.uri = KMS_URI;
    CHECK_ERR(ms_mikey_add_kms(alice.ctx, &info), MS_ERR_ARG); /* already there */

    /* Keys are checked: Alice's RSK is not Bob's. */
    CHECK_ERR(ms_mikey_add_keys(bob.ctx, KMS_URI, MONTH_PERIOD, alice.rsk, NULL, NULL),
              MS_ERR_RSK_INVALID);
    CHECK_ERR(ms_mikey_add_keys(bob.ctx, "kms.unknown.org", MONTH_PERIOD, bob.rsk, NULL, NULL),
              MS_ERR_MIKEY_UNKNOWN_KMS);
    CHECK_ERR(ms_mikey_add_keys(bob.ctx, KMS_URI, MONTH_PERIOD, NULL, NULL, NULL), MS_ERR_ARG);

    /* Initiating without signing keys for the period of T, or to an unknown KMS. */
    uint8_t msg[BUF];
    size_t len;
    ms_mikey_init_params p = {0};
    p.responder = BOB_TEL;
    p.timestamp = (NOW_SECS + 40 * 86400ull) << 32; /* next month */
    CHECK_ERR(ms_mikey_initiate(alice.ctx, msg, sizeof msg, &len, NULL, &p),
              MS_ERR_MIKEY_KEY_PERIOD);
    p.timestamp = 0;
    p.responder_kms = "kms.unknown.org";
    CHECK_ERR(ms_mikey_initiate(alice.ctx, msg, sizeof msg, &len, NULL, &p),
              MS_ERR_MIKEY_UNKNOWN_KMS);
    p.responder_kms = NULL;
    p.responder = "sip:bob@example.org"; /* not a tel URI */
    CHECK_ERR(ms_mikey_initiate(alice.ctx, msg, sizeof msg, &len, NULL, &p), MS_ERR_IDENTITY);
    p.responder = BOB_TEL;
    p.hide_identities = true; /* a 3GPP feature */
    CHECK_ERR(ms_mikey_initiate(alice.ctx, msg, sizeof msg, &len, NULL, &p), MS_ERR_ARG);
}

/* ---- TS 33.180 ---------------------------------------------------------------------- */

static user pa, pb;     /* PCK: Alice and Bob */
static user gms, gm;    /* GMK: group management server and a member */
static user cu, mdsi;   /* CSK upload: user to the MDSI */

static void check_uid_idr(const ms_mikey_message *m, int role, const char *uri)
{
    uint8_t uid[32];
    CHECK_ERR(ms_uid(uid, uri, KMS_URI, UID_PERIOD_LEN, 0, UID_PERIOD), MS_OK);
    const ms_mikey_payload *pl = ms_mikey_find(m, MS_MIKEY_PT_IDR, role);
    CHECK(pl != NULL && pl->u.idr.id_type == MS_MIKEY_IDTYPE_URI && pl->u.idr.id.len == 32 &&
          memcmp(pl->u.idr.id.data, uid, 32) == 0);
}

static void test_pck_round_trip(void)
{
    uint8_t msg[BUF];
    size_t len = 0;
    ms_mikey_init_params p = {0};
    p.responder = BOB_SIP;
    ms_mikey_result ri, rr;
    CHECK_ERR(ms_mikey_initiate(pa.ctx, msg, sizeof msg, &len, &ri, &p), MS_OK);
    CHECK((ri.key_id >> 28) == MS_MIKEY_PURPOSE_PCK && ri.csb_id == ri.key_id);
    CHECK(ri.prf == MS_MIKEY_PRF_HMAC_SHA256);

    ms_mikey_message m;
    CHECK_ERR(ms_mikey_parse(&m, msg, len, NULL), MS_OK);
    CHECK(m.hdr.prf == MS_MIKEY_PRF_HMAC_SHA256 && m.hdr.n_cs == 0 &&
          m.hdr.map_type == MS_MIKEY_MAP_EMPTY);
    CHECK(ms_mikey_find(&m, MS_MIKEY_PT_SP, -1) == NULL);
    CHECK(ms_mikey_find(&m, MS_MIKEY_PT_GENERAL_EXT, -1) == NULL);
    const ms_mikey_payload *pl = ms_mikey_find(&m, MS_MIKEY_PT_SAKKE, -1);
    CHECK(pl != NULL && pl->u.sakke.id_scheme == MS_MIKEY_ID_SCHEME_HASHED_UID);
    pl = ms_mikey_find(&m, MS_MIKEY_PT_IDR, MS_MIKEY_ROLE_INITIATOR);
    CHECK(pl != NULL && pl->u.idr.id.len == strlen(ALICE_SIP));
    CHECK(ms_mikey_find(&m, MS_MIKEY_PT_IDR, MS_MIKEY_ROLE_KMS_RESPONDER) != NULL);

    /* Signed with UID(initiator), computed here with ms_uid. */
    uint8_t uid[32];
    CHECK_ERR(ms_uid(uid, ALICE_SIP, KMS_URI, UID_PERIOD_LEN, 0, UID_PERIOD), MS_OK);
    ms_eccsi_verifier *ver;
    CHECK_ERR(ms_eccsi_verifier_new(&ver, kpak), MS_OK);
    CHECK_ERR(ms_eccsi_verify(ver, uid, 32, msg, m.signed_len, msg + m.signed_len, 129, NULL),
              MS_OK);
    ms_eccsi_verifier_free(ver);

    CHECK_ERR(ms_mikey_respond(pb.ctx, &rr, msg, len, ALICE_SIP, NULL), MS_OK);
    check_same_result(&ri, &rr);
    CHECK(rr.profile == MS_MIKEY_PROFILE_PCK && rr.period_no == UID_PERIOD);
    CHECK(!rr.has_key_params);

    /* SRTP: both streams of the private call, MKI = PCK-ID */
    for (uint8_t cs = 0; cs < 2; cs++) {
        ms_srtp_keys k;
        check_srtp_agree(&ri, &rr, cs, &k);
        uint8_t mki[4];
        put32(mki, ri.key_id);
        CHECK(k.mki_len == 4);
        CHECK_MEM(k.mki, mki, 4);
    }
    ms_mikey_result_wipe(&ri);
    ms_mikey_result_wipe(&rr);
}

static void test_pck_sakke_to_self(void)
{
    uint8_t msg[BUF];
    size_t len = 0;
    ms_mikey_init_params p = {0};
    p.responder = BOB_SIP;
    p.sakke_to_self = true;
    ms_mikey_result ri, rr, rs;
    CHECK_ERR(ms_mikey_initiate(pa.ctx, msg, sizeof msg, &len, &ri, &p), MS_OK);

    /* Extension 6 holds a whole SAKKE payload to UID(initiator): decapsulate it by hand. */
    ms_mikey_message m;
    CHECK_ERR(ms_mikey_parse(&m, msg, len, NULL), MS_OK);
    const ms_mikey_payload *ext = ms_mikey_find(&m, MS_MIKEY_PT_GENERAL_EXT, -1);
    CHECK(ext != NULL && ext->u.ext.type == MS_MIKEY_EXT_SAKKE_TO_SELF);
    if (ext != NULL) {
        const uint8_t *d = ext->u.ext.data.data;
        CHECK(ext->u.ext.data.len == 5 + MS_SAKKE_SED_BYTES);
        CHECK(d[0] == 0 && d[1] == 1 && d[2] == MS_MIKEY_ID_SCHEME_HASHED_UID && d[3] == 0x01 &&
              d[4] == 0x11);
        uint8_t ssv[16];
        CHECK_ERR(ms_sakke_decap(issuer, ssv, 16, pa.id, pa.id_len, pa.rsk, d + 5,
                                 MS_SAKKE_SED_BYTES),
                  MS_OK);
        CHECK_MEM(ssv, ri.key, 16);
        /* and it is not Bob's copy */
        CHECK_ERR(ms_sakke_decap(issuer, ssv, 16, pb.id, pb.id_len, pb.rsk, d + 5,
                                 MS_SAKKE_SED_BYTES),
                  MS_ERR_DECAP_TEST);
    }
    /* Bob reads his copy; Alice's own context reads hers through the extension. */
    CHECK_ERR(ms_mikey_respond(pb.ctx, &rr, msg, len, ALICE_SIP, NULL), MS_OK);
    check_same_result(&ri, &rr);
    CHECK_ERR(ms_mikey_respond(pa.ctx, &rs, msg, len, NULL, NULL), MS_OK);
    CHECK_MEM(rs.key, ri.key, 16);
    CHECK(rs.key_id == ri.key_id && strcmp(rs.initiator, ALICE_SIP) == 0);
    CHECK(strcmp(rs.responder, BOB_SIP) == 0);

    /* Without the extension Alice cannot read her own message. */
    p.sakke_to_self = false;
    CHECK_ERR(ms_mikey_initiate(pa.ctx, msg, sizeof msg, &len, NULL, &p), MS_OK);
    CHECK_ERR(ms_mikey_respond(pa.ctx, &rs, msg, len, NULL, NULL), MS_ERR_MIKEY_RESPONDER);
    ms_mikey_result_wipe(&ri);
    ms_mikey_result_wipe(&rr);
    ms_mikey_result_wipe(&rs);
}

static void test_pck_identity_hiding(void)
{
    uint8_t msg[BUF];
    size_t len = 0;
    ms_mikey_init_params p = {0};
    p.responder = BOB_SIP;
    p.hide_identities = true;
    ms_mikey_result ri, rr;
    CHECK_ERR(ms_mikey_initiate(pa.ctx, msg, sizeof msg, &len, &ri, &p), MS_OK);
    ms_mikey_message m;
    CHECK_ERR(ms_mikey_parse(&m, msg, len, NULL), MS_OK);
    CHECK(ms_mikey_find(&m, MS_MIKEY_PT_IDR, MS_MIKEY_ROLE_INITIATOR) == NULL);
    CHECK(ms_mikey_find(&m, MS_MIKEY_PT_IDR, MS_MIKEY_ROLE_RESPONDER) == NULL);
    check_uid_idr(&m, MS_MIKEY_ROLE_UID_INITIATOR, ALICE_SIP);
    check_uid_idr(&m, MS_MIKEY_ROLE_UID_RESPONDER, BOB_SIP);
    CHECK(ms_mikey_find(&m, MS_MIKEY_PT_IDR, MS_MIKEY_ROLE_KMS_INITIATOR) != NULL);

    CHECK_ERR(ms_mikey_respond(pb.ctx, &rr, msg, len, NULL, NULL), MS_OK);
    check_same_result(&ri, &rr);
    CHECK(rr.initiator_hidden && rr.initiator[0] == '\0');
    CHECK_MEM(rr.initiator_uid, pa.id, 32);
    /* The initiator learnt later: wrong, then right. */
    CHECK_ERR(ms_mikey_confirm_initiator(pb.ctx, &rr, "sip:mallory@example.org"),
              MS_ERR_MIKEY_INITIATOR);
    CHECK(rr.initiator[0] == '\0');
    CHECK_ERR(ms_mikey_confirm_initiator(pb.ctx, &rr, ALICE_SIP), MS_OK);
    CHECK(strcmp(rr.initiator, ALICE_SIP) == 0);
    /* A result with a plain initiator compares the URI. */
    ms_mikey_result plain;
    memset(&plain, 0, sizeof plain);
    strcpy(plain.initiator, ALICE_SIP);
    CHECK_ERR(ms_mikey_confirm_initiator(pb.ctx, &plain, ALICE_SIP), MS_OK);
    CHECK_ERR(ms_mikey_confirm_initiator(pb.ctx, &plain, BOB_SIP), MS_ERR_MIKEY_INITIATOR);

    /* With the initiator known from the signalling at once. */
    CHECK_ERR(ms_mikey_initiate(pa.ctx, msg, sizeof msg, &len, NULL, &p), MS_OK);
    CHECK_ERR(ms_mikey_respond(pb.ctx, &rr, msg, len, ALICE_SIP, NULL), MS_OK);
    CHECK(rr.initiator_hidden && strcmp(rr.initiator, ALICE_SIP) == 0);
    ms_mikey_result_wipe(&ri);
    ms_mikey_result_wipe(&rr);
}

/* Decrypts general extension 7 independently (OpenSSL, DPCK from ms_dpck) and checks
 * the framing and plaintext octets. */
static void check_key_params_bytes(const ms_mikey_message *m, const uint8_t key[16],
                                   uint32_t csb_id, const uint8_t *want_plain, size_t want_len)
{
    const ms_mikey_payload *ext = NULL;
    for (size_t i = 0; i < m->n_payloads; i++)
        if (m->payloads[i].type == MS_MIKEY_PT_GENERAL_EXT &&
            m->payloads[i].u.ext.type == MS_MIKEY_EXT_KEY_PARAMS)
            ext = &m->payloads[i];
    CHECK(ext != NULL);
    if (ext == NULL)
        return;
    const uint8_t *d = ext->u.ext.data.data;
    size_t n = ext->u.ext.data.len;
    CHECK(n == 35 + want_len + 16);
    if (n != 35 + want_len + 16)
        return;
    uint8_t id[4];
    put32(id, csb_id);
    CHECK(d[0] == 0x43 && d[11] == 1 && d[32] == 0);
    CHECK_MEM(d + 28, id, 4);
    CHECK(((size_t)d[33] << 8 | d[34]) == want_len + 16);
    static const uint8_t zeros[5] = {0};
    CHECK_MEM(d + 6, zeros, 5); /* payload ID and sequence number */

    uint8_t dpck[16], plain[512];
    CHECK_ERR(ms_dpck(dpck, key, 16, csb_id), MS_OK);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0, ok = 1;
    ok &= EVP_DecryptInit_ex(c, EVP_aes_128_gcm(), NULL, NULL, NULL);
    ok &= EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 16, NULL);
    ok &= EVP_DecryptInit_ex(c, NULL, NULL, dpck, d + 12);
    ok &= EVP_DecryptUpdate(c, NULL, &outl, d, 32);
    ok &= EVP_DecryptUpdate(c, plain, &outl, d + 35, (int)want_len);
    ok &= EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(d + 35 + want_len));
    ok &= EVP_DecryptFinal_ex(c, plain + outl, &outl);
    EVP_CIPHER_CTX_free(c);
    CHECK(ok == 1);
    CHECK_MEM(plain, want_plain, want_len);
}

static void test_pck_key_params(void)
{
    uint8_t msg[BUF];
    size_t len = 0;
    ms_mikey_init_params p = {0};
    p.responder = BOB_SIP;
    p.with_key_params = true;
    p.key_params.key_type = MS_MIKEY_PURPOSE_PCK;
    p.key_params.status = 1;
    p.key_params.activation = NOW_SECS - 100;
    p.key_params.expiry = NOW_SECS + 0x010203;
    strcpy(p.key_params.text, "hi");
    ms_mikey_result ri, rr;
    CHECK_ERR(ms_mikey_initiate(pa.ctx, msg, sizeof msg, &len, &ri, &p), MS_OK);
    ms_mikey_message m;
    CHECK_ERR(ms_mikey_parse(&m, msg, len, NULL), MS_OK);
    uint8_t want[19] = {1, 0, 0, 0, 1};
    uint64_t act = NOW_SECS - 100, exp = NOW_SECS + 0x010203;
    for (int i = 0; i < 5; i++) {
        want[5 + i] = (uint8_t)(act >> (8 * (4 - i)));
        want[10 + i] = (uint8_t)(exp >> (8 * (4 - i)));
    }
    want[15] = 0;
    want[16] = 2;
    want[17] = 'h';
    want[18] = 'i';
    check_key_params_bytes(&m, ri.key, ri.csb_id, want, sizeof want);

    CHECK_ERR(ms_mikey_respond(pb.ctx, &rr, msg, len, ALICE_SIP, NULL), MS_OK);
    check_same_result(&ri, &rr);
    CHECK(rr.has_key_params && rr.key_params.key_type == 1 && rr.key_params.status == 1);
    CHECK(rr.key_params.activation == act && rr.key_params.expiry == exp);
    CHECK(strcmp(rr.key_params.text, "hi") == 0 && !rr.key_params.has_group_ids);
    ms_mikey_result_wipe(&ri);
    ms_mikey_result_wipe(&rr);
}

static void test_gmk_round_trip(void)
{
    uint8_t msg[BUF];
    size_t len = 0;
    ms_mikey_init_params p = {0};
    p.responder = BOB_SIP;
    p.key_id = 0x0df9bc39;
    p.with_key_params = true;
    p.key_params.key_type = MS_MIKEY_PURPOSE_GMK;
    p.key_params.status = 1;
    p.key_params.has_group_ids = true;
    p.sakke_to_self = true;
    ms_mikey_result ri, rr;
    CHECK_ERR(ms_mikey_initiate(gms.ctx, msg, sizeof msg, &len, &ri, &p), MS_OK);
    uint32_t guk;
    CHECK_ERR(ms_guk_id(&guk, ri.key, 16, 0x0df9bc39, BOB_SIP), MS_OK);
    CHECK(ri.key_id == 0x0df9bc39 && ri.csb_id == guk && (guk >> 28) == 0);

    ms_mikey_message m;
    CHECK_ERR(ms_mikey_parse(&m, msg, len, NULL), MS_OK);
    CHECK(m.hdr.csb_id == guk && m.hdr.map_type == MS_MIKEY_MAP_GENERIC_ID && m.hdr.n_cs == 1);
    uint8_t spi[8];
    put32(spi, 0x0df9bc39);
    put32(spi + 4, guk);
    CHECK(m.hdr.cs[0].cs_id == 4 && m.hdr.cs[0].prot_type == MS_MIKEY_PROT_SRTP &&
          m.hdr.cs[0].n_policies == 1 && m.hdr.cs[0].policies[0] == 0 &&
          !m.hdr.cs[0].has_session_data && m.hdr.cs[0].spi.len == 8);
    CHECK_MEM(m.hdr.cs[0].spi.data, spi, 8);
    static const uint8_t want[20] = {0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    check_key_params_bytes(&m, ri.key, guk, want, sizeof want);

    CHECK_ERR(ms_mikey_respond(gm.ctx, &rr, msg, len, GMS_SIP, NULL), MS_OK);
    check_same_result(&ri, &rr);
    CHECK(rr.key_id == 0x0df9bc39 && rr.profile == MS_MIKEY_PROFILE_GMK);
    CHECK(rr.n_cs == 1 && rr.cs[0].spi.len == 8);
    CHECK_MEM(rr.cs_spi[0], spi, 8);
    CHECK(rr.has_key_params && rr.key_params.has_group_ids);
    ms_srtp_keys k;
    check_srtp_agree(&ri, &rr, 4, &k);
    CHECK(k.mki_len == 8);
    CHECK_MEM(k.mki, spi, 8);

    /* The GMS reads its own copy and recovers the same GMK-ID. */
    ms_mikey_result rs;
    CHECK_ERR(ms_mikey_respond(gms.ctx, &rs, msg, len, NULL, NULL), MS_OK);
    CHECK_MEM(rs.key, ri.key, 16);
    CHECK(rs.key_id == 0x0df9bc39);
    ms_mikey_result_wipe(&ri);
    ms_mikey_result_wipe(&rr);
    ms_mikey_result_wipe(&rs);
}

static void test_csk_round_trip(void)
{
    uint8_t msg[BUF];
    size_t len = 0;
    ms_mikey_init_params p = {0};
    p.responder = MDSI_SIP;
    p.with_key_params = true;
    p.key_params.key_type = MS_MIKEY_PURPOSE_CSK;
    p.key_params.status = 1;
    p.key_params.expiry = NOW_SECS + 86400;
    ms_mikey_result ri, rr;
    CHECK_ERR(ms_mikey_initiate(cu.ctx, msg, sizeof msg, &len, &ri, &p), MS_OK);
    CHECK((ri.csb_id >> 28) == MS_MIKEY_PURPOSE_CSK && ri.key_id == ri.csb_id);
    CHECK_ERR(ms_mikey_respond(mdsi.ctx, &rr, msg, len, ALICE_SIP, NULL), MS_OK);
    check_same_result(&ri, &rr);
    CHECK(rr.has_key_params && rr.key_params.key_type == MS_MIKEY_PURPOSE_CSK);
    ms_srtp_keys k;
    check_srtp_agree(&ri, &rr, 6, &k);
    uint8_t mki[4];
    put32(mki, ri.csb_id);
    CHECK(k.mki_len == 4);
    CHECK_MEM(k.mki, mki, 4);
    /* A key id with another purpose tag is refused by the initiator. */
    p.key_id = 0x10000001;
    CHECK_ERR(ms_mikey_initiate(cu.ctx, msg, sizeof msg, &len, NULL, &p), MS_ERR_ARG);
    ms_mikey_result_wipe(&ri);
    ms_mikey_result_wipe(&rr);
}

/* ---- SRTP key vectors (digest 6.4 and 5.14) ----------------------------------------- */

static void srtp_vector(ms_mikey_profile profile, uint8_t prf, const char *tgk, uint8_t cs_id,
                        uint32_t csb_id, uint32_t key_id, const char *rand, size_t key_len,
                        size_t salt_len, const char *want_key, const char *want_salt)
{
    ms_mikey_result r;
    memset(&r, 0, sizeof r);
    r.profile = profile;
    r.prf = prf;
    r.key_len = ms_test_hex(r.key, sizeof r.key, tgk);
    r.rand_len = ms_test_hex(r.rand, sizeof r.rand, rand);
    r.csb_id = csb_id;
    r.key_id = key_id;
    uint8_t wk[32], ws[14];
    CHECK(ms_test_hex(wk, sizeof wk, want_key) == key_len);
    CHECK(ms_test_hex(ws, sizeof ws, want_salt) == salt_len);
    ms_srtp_keys k;
    CHECK_ERR(ms_mikey_srtp_keys(&k, &r, cs_id, key_len, salt_len), MS_OK);
    CHECK(k.key_len == key_len && k.salt_len == salt_len);
    CHECK_MEM(k.master_key, wk, key_len);
    CHECK_MEM(k.master_salt, ws, salt_len);
    uint8_t mki[8];
    put32(mki, key_id);
    put32(mki + 4, csb_id);
    if (profile == MS_MIKEY_PROFILE_GMK) {
        CHECK(k.mki_len == 8);
        CHECK_MEM(k.mki, mki, 8);
    } else if (profile == MS_MIKEY_PROFILE_RFC6509) {
        CHECK(k.mki_len == 0);
    } else {
        CHECK(k.mki_len == 4);
        CHECK_MEM(k.mki, mki, 4);
    }
}

static void test_srtp_vectors(void)
{
    const uint8_t S = MS_MIKEY_PRF_HMAC_SHA256;
    /* digest 6.4: GMK to Alice (GMK-ID 0df9bc39, GUK-ID 06a12aea) and PCK Alice to Bob */
    srtp_vector(MS_MIKEY_PROFILE_GMK, S, "07d1a1677ac36d8e81620484689b3c2d", 4, 0x06a12aea,
                0x0df9bc39, "ca2f5d51ff0866362c1d85a56f84651e", 16, 12,
                "acb1b4e2b2dca12291e1794a8ef84947", "ee2f78e5ef16939d4a938327");
    srtp_vector(MS_MIKEY_PROFILE_PCK, S, "b4c96b703acd5c1bf7d4cc45068d9965", 0, 0x16992638,
                0x16992638, "02a28bddaf984c5e0563bc1ce857df83", 16, 12,
                "e392c95d3444f8ab3ca6d340865e4284", "245d9363909f2fafc45add02");
    srtp_vector(MS_MIKEY_PROFILE_PCK, S, "b4c96b703acd5c1bf7d4cc45068d9965", 1, 0x16992638,
                0x16992638, "02a28bddaf984c5e0563bc1ce857df83", 16, 12,
                "85b6731c05a50a3856b68191a942a344", "10993ef963479b780a8c71ee");
    /* digest 5.14 (a): Etherstack vectors (GMK-ID 09bf9d37 with three GUK-IDs; a CSK) */
    static const struct { uint32_t csb; const char *key, *salt; } eth[] = {
        {0x01c8de7b, "64837d2b4d69a266e4489d3807353ad9", "8b2f081ce8e8bdab1f8d9eb8"},
        {0x0abe69d0, "de81b70c4ae0ff3f79364df586c2e0ce", "750ea7422b4d5a8ff475c6d5"},
        {0x0c449727, "f097ac3325f1f784bc8ba4112c5e5f88", "97a154fb24efbfb353a265e2"}};
    for (size_t i = 0; i < 3; i++)
        srtp_vector(MS_MIKEY_PROFILE_GMK, S, "fcfe65cd967c58d260b603ccb9a887a9", 4, eth[i].csb,
                    0x09bf9d37, "6819e679461120e10ac458cce67b8024", 16, 12, eth[i].key,
                    eth[i].salt);
    srtp_vector(MS_MIKEY_PROFILE_CSK, S, "28ba74447f037dcc09ad7f2576dc2def", 6, 0x1c5f7886,
                0x1c5f7886, "30333032343661303730646133333265", 16, 12,
                "185d08cb5a226d19d71679adf5e415be", "d1d648b2a0040633a3dd72e5");
    /* digest 5.14 (b): MIKEY-1 and PRF-HMAC-SHA-256 with a 112-bit salt (RFC 6509) */
    srtp_vector(MS_MIKEY_PROFILE_RFC6509, MS_MIKEY_PRF_MIKEY1, "123456789abcdef0123456789abcdef0",
                1, 0x12345678, 0x12345678, "000102030405060708090a0b0c0d0e0f", 16, 14,
                "e127ff65d098d346e5009e9ec40a55c0", "4723d6ee361698e79eefe958f856");
    srtp_vector(MS_MIKEY_PROFILE_RFC6509, S, "123456789abcdef0123456789abcdef0", 1, 0x12345678,
                0x12345678, "000102030405060708090a0b0c0d0e0f", 16, 14,
                "a340beefdbc70ea55e78ebb3a6122f9e", "b06cc636c2cb5087233aa68f8a64");

    ms_mikey_result r;
    memset(&r, 0, sizeof r);
    ms_srtp_keys k;
    CHECK_ERR(ms_mikey_srtp_keys(&k, &r, 0, 16, 12), MS_ERR_ARG); /* no key */
    r.key_len = 16;
    CHECK_ERR(ms_mikey_srtp_keys(&k, &r, 0, 20, 12), MS_ERR_ARG);
    CHECK_ERR(ms_mikey_srtp_keys(&k, &r, 0, 16, 13), MS_ERR_ARG);
    CHECK_ERR(ms_mikey_srtp_keys(&k, &r, 0, 32, 14), MS_OK);
}

/* Forgetting keys: afterwards a message for the purged period is refused. */
static void test_purge(void)
{
    uint8_t msg[BUF];
    size_t len = 0;
    ms_mikey_init_params p = {0};
    p.responder = BOB_TEL;
    CHECK_ERR(ms_mikey_initiate(alice.ctx, msg, sizeof msg, &len, NULL, &p), MS_OK);
    ms_mikey_purge_keys(bob.ctx, KMS_URI, MONTH_PERIOD); /* keeps this month */
    ms_mikey_result r;
    CHECK_ERR(ms_mikey_respond(bob.ctx, &r, msg, len, ALICE_TEL, NULL), MS_OK);
    ms_mikey_result_wipe(&r);
    CHECK_ERR(ms_mikey_initiate(alice.ctx, msg, sizeof msg, &len, NULL, &p), MS_OK);
    ms_mikey_purge_keys(bob.ctx, NULL, MONTH_PERIOD + 1);
    ms_mikey_diag d;
    CHECK_ERR(ms_mikey_respond(bob.ctx, &r, msg, len, ALICE_TEL, &d), MS_ERR_MIKEY_KEY_PERIOD);
    CHECK(d.payload == MS_MIKEY_PT_T);
    /* and Alice cannot sign for a purged period either */
    ms_mikey_purge_keys(alice.ctx, KMS_URI, MONTH_PERIOD + 1);
    CHECK_ERR(ms_mikey_initiate(alice.ctx, msg, sizeof msg, &len, NULL, &p),
              MS_ERR_MIKEY_KEY_PERIOD);
}

int main(void)
{
    ms_test_seed();
    test_kms_new();

    user_init(&alice, MS_MIKEY_PROFILE_RFC6509, ALICE_TEL, false);
    user_init(&alice_prep, MS_MIKEY_PROFILE_RFC6509, ALICE_TEL, true);
    user_init(&bob, MS_MIKEY_PROFILE_RFC6509, BOB_TEL, false);
    user_init(&bob_prep, MS_MIKEY_PROFILE_RFC6509, BOB_TEL, true);
    test_rfc6509_layout_and_round_trip();
    test_rfc6509_omit_idr();
    test_rfc6509_prepared_paths();
    test_ctx_arguments();
    test_srtp_vectors();

    user_init(&pa, MS_MIKEY_PROFILE_PCK, ALICE_SIP, false);
    user_init(&pb, MS_MIKEY_PROFILE_PCK, BOB_SIP, true);
    test_pck_round_trip();
    test_pck_sakke_to_self();
    test_pck_identity_hiding();
    test_pck_key_params();
    ms_mikey_ctx_free(pa.ctx);
    ms_mikey_ctx_free(pb.ctx);

    user_init(&gms, MS_MIKEY_PROFILE_GMK, GMS_SIP, false);
    user_init(&gm, MS_MIKEY_PROFILE_GMK, BOB_SIP, false);
    test_gmk_round_trip();
    ms_mikey_ctx_free(gms.ctx);
    ms_mikey_ctx_free(gm.ctx);

    user_init(&cu, MS_MIKEY_PROFILE_CSK, ALICE_SIP, false);
    user_init(&mdsi, MS_MIKEY_PROFILE_CSK, MDSI_SIP, false);
    test_csk_round_trip();
    ms_mikey_ctx_free(cu.ctx);
    ms_mikey_ctx_free(mdsi.ctx);

    test_purge();
    ms_mikey_ctx_free(alice.ctx);
    ms_mikey_ctx_free(alice_prep.ctx);
    ms_mikey_ctx_free(bob.ctx);
    ms_mikey_ctx_free(bob_prep.ctx);
    ms_mikey_ctx_free(NULL);
    test_kms_free();
    return ms_test_finish();
}
