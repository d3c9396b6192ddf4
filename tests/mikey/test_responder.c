/*
 * The responder's checks, one test per check, each producing exactly its error code in
 * the order of mikey.h: structure, version, data type, V bit, T window, replay,
 * initiator, responder, KMS, key period, signature, SAKKE TEST, 3GPP key id, key
 * parameters. Messages come from the initiator and are then altered with the codec;
 * where the targeted check comes after the signature the message is re-signed with the
 * initiator's real key so that only that check can fail. Every refusal must fill the
 * diagnostic and leave no key in the result.
 */
#include <stdlib.h>
#include <string.h>

#include "mikey_fixture.h"
#include "testutil.h"

#define OCT31_2358 3970943880ull   /* 2025-10-31 23:58:00 UTC */
#define NOV1_0000 3970944000ull    /* 2025-11-01 00:00:00 UTC: both schemes roll over */
#define CAROL_TEL "tel:+447700900789"
#define GMS_SIP "sip:gms@example.org"

typedef struct user {
    const char *uri;
    ms_mikey_profile profile;
    ms_mikey_ctx *ctx;
    ms_eccsi_signer *signer; /* for re-signing altered messages (current period) */
} user;

/* Issue and add this user's RSK, SSK and PVT for one key period. */
static void user_add_period(user *u, uint64_t period, bool keep_signer)
{
    test_user_keys k;
    ms_err e = test_issue_keys(&k, u->ctx, scheme_of_profile(u->profile), u->uri, period);
    if (e == MS_OK && keep_signer)
        e = ms_eccsi_signer_new(&u->signer, kpak, k.id, k.id_len, k.ssk, k.pvt);
    if (e != MS_OK)
        die("keys", e);
    ms_wipe(&k, sizeof k);
}

static void user_init(user *u, ms_mikey_profile profile, const char *uri, uint64_t grace)
{
    memset(u, 0, sizeof *u);
    u->uri = uri;
    u->profile = profile;
    ms_mikey_config cfg = {0};
    cfg.period_grace = grace;
    u->ctx = test_ctx_new(&cfg, profile, uri);
    user_add_period(u, period_of_profile(profile), true);
}

static void user_free(user *u)
{
    ms_eccsi_signer_free(u->signer);
    ms_mikey_ctx_free(u->ctx);
}

static user alice, bob;     /* RFC 6509 */
static user pa, pb;         /* PCK; Bob accepts the previous period for 50 s only */
static user gms, gm;        /* GMK */

/* ---- helpers ------------------------------------------------------------------------ */

static size_t initiate(user *from, const ms_mikey_init_params *p, uint8_t *msg,
                       ms_mikey_result *res)
{
    size_t len = 0;
    CHECK_ERR(ms_mikey_initiate(from->ctx, msg, BUF, &len, res, p), MS_OK);
    return len;
}

static size_t simple(user *from, const char *to, uint8_t *msg)
{
    ms_mikey_init_params p = {0};
    p.responder = to;
    return initiate(from, &p, msg, NULL);
}

static ms_mikey_payload *find_mut(ms_mikey_message *m, uint8_t type, int role)
{
    return (ms_mikey_payload *)(uintptr_t)ms_mikey_find(m, type, role);
}

static ms_mikey_payload *find_ext(ms_mikey_message *m, uint8_t ext_type)
{
    for (size_t i = 0; i < m->n_payloads; i++)
        if (m->payloads[i].type == MS_MIKEY_PT_GENERAL_EXT &&
            m->payloads[i].u.ext.type == ext_type)
            return &m->payloads[i];
    return NULL;
}

static void drop(ms_mikey_message *m, const ms_mikey_payload *p)
{
    size_t i = (size_t)(p - m->payloads);
    memmove(&m->payloads[i], &m->payloads[i + 1], (m->n_payloads - i - 1) * sizeof *p);
    m->n_payloads--;
}

/* Encode an altered message into out. With a signer, sign it again (what a real
 * initiator holding that key could send); without, keep the old signature. */
static size_t reencode(uint8_t *out, ms_mikey_message *m, const ms_eccsi_signer *signer)
{
    ms_mikey_payload *s = find_mut(m, MS_MIKEY_PT_SIGN, -1);
    if (s != NULL && signer != NULL)
        s->u.sign.sig.data = NULL;
    size_t len = 0, signed_len = 0;
    CHECK_ERR(ms_mikey_encode(out, BUF, &len, &signed_len, m), MS_OK);
    if (s != NULL && signer != NULL) {
        uint8_t sig[MS_ECCSI_SIG_BYTES];
        CHECK_ERR(ms_eccsi_sign(signer, sig, out, signed_len, &ms_test_rng, NULL), MS_OK);
        memcpy(out + signed_len, sig, sizeof sig);
    }
    return len;
}

static void parse(ms_mikey_message *m, const uint8_t *msg, size_t len)
{
    CHECK_ERR(ms_mikey_parse(m, msg, len, NULL), MS_OK);
}

/* simple(), then the message parsed into *m for altering. */
static size_t simple_parsed(user *from, const char *to, uint8_t *msg, ms_mikey_message *m)
{
    size_t len = simple(from, to, msg);
    parse(m, msg, len);
    return len;
}

/* Respond and expect exactly `want`, a diagnostic naming `payload` (-1: any) and an
 * empty result. */
static void expect(user *to, const uint8_t *msg, size_t len, const char *initiator, ms_err want,
                   int payload)
{
    ms_mikey_result r;
    ms_mikey_diag d;
    memset(&r, 0xA5, sizeof r);
    memset(&d, 0, sizeof d);
    ms_err got = ms_mikey_respond(to->ctx, &r, msg, len, initiator, &d);
    CHECK_ERR(got, want);
    if (got == MS_OK) {
        ms_mikey_result_wipe(&r);
        return;
    }
    CHECK(d.detail[0] != '\0');
    if (payload >= 0 && d.payload != payload)
        fprintf(stderr, "diag payload %d, want %d (%s)\n", d.payload, payload, d.detail);
    CHECK(payload < 0 || d.payload == payload);
    CHECK(d.offset <= len);
    static const uint8_t zero[16] = {0};
    CHECK_MEM(r.key, zero, 16);
    CHECK(r.key_len == 0);
}

/* ---- structure and header ------------------------------------------------------------ */

static void test_malformed(void)
{
    uint8_t msg[BUF];
    size_t len = simple(&alice, BOB_TEL, msg);
    expect(&bob, msg, len - 1, ALICE_TEL, MS_ERR_MIKEY_MALFORMED, -1);
    expect(&bob, msg, 0, ALICE_TEL, MS_ERR_MIKEY_MALFORMED, -1);
    /* a second T makes the message ambiguous */
    ms_mikey_message m;
    uint8_t out[BUF];
    parse(&m, msg, len);
    memmove(&m.payloads[1], &m.payloads[0], m.n_payloads * sizeof m.payloads[0]);
    m.n_payloads++;
    expect(&bob, out, reencode(out, &m, NULL), ALICE_TEL, MS_ERR_MIKEY_MALFORMED,
           MS_MIKEY_PT_T);
    /* the correct message is accepted (the alterations were the only fault) */
    expect(&bob, msg, len, ALICE_TEL, MS_OK, -1);
}

static void test_missing_payload(void)
{
    uint8_t msg[BUF], out[BUF];
    ms_mikey_message m;
    size_t len = simple_parsed(&alice, BOB_TEL, msg, &m);
    drop(&m, find_mut(&m, MS_MIKEY_PT_RAND, -1));
    expect(&bob, out, reencode(out, &m, NULL), ALICE_TEL, MS_ERR_MIKEY_MISSING_PAYLOAD,
           MS_MIKEY_PT_RAND);

    /* TS 33.180 makes IDRkmsr mandatory */
    len = simple(&pa, BOB_SIP, msg);
    parse(&m, msg, len);
    drop(&m, find_mut(&m, MS_MIKEY_PT_IDR, MS_MIKEY_ROLE_KMS_RESPONDER));
    expect(&pb, out, reencode(out, &m, pa.signer), ALICE_SIP, MS_ERR_MIKEY_MISSING_PAYLOAD,
           MS_MIKEY_PT_IDR);
}

static void test_unsupported(void)
{
    uint8_t msg[BUF], out[BUF];
    ms_mikey_message m;
    size_t len = simple_parsed(&alice, BOB_TEL, msg, &m);
    find_mut(&m, MS_MIKEY_PT_SAKKE, -1)->u.sakke.params = 2;
    expect(&bob, out, reencode(out, &m, alice.signer), ALICE_TEL, MS_ERR_MIKEY_UNSUPPORTED,
           MS_MIKEY_PT_SAKKE);
    parse(&m, msg, len);
    find_mut(&m, MS_MIKEY_PT_SAKKE, -1)->u.sakke.id_scheme = MS_MIKEY_ID_SCHEME_HASHED_UID;
    expect(&bob, out, reencode(out, &m, alice.signer), ALICE_TEL, MS_ERR_MIKEY_UNSUPPORTED,
           MS_MIKEY_PT_SAKKE);
    parse(&m, msg, len);
    /* RFC 6509 2.2.1 requires NTP-UTC or NTP */
    find_mut(&m, MS_MIKEY_PT_T, -1)->u.t.ts_type = MS_MIKEY_TS_NTP_UTC_32;
    expect(&bob, out, reencode(out, &m, alice.signer), ALICE_TEL, MS_ERR_MIKEY_UNSUPPORTED,
           MS_MIKEY_PT_T);
    parse(&m, msg, len);
    m.hdr.prf = 5;
    expect(&bob, out, reencode(out, &m, alice.signer), ALICE_TEL, MS_ERR_MIKEY_UNSUPPORTED,
           MS_MIKEY_PT_HDR);
}

static void test_version(void)
{
    uint8_t msg[BUF], out[BUF];
    ms_mikey_message m;
    simple_parsed(&alice, BOB_TEL, msg, &m);
    m.hdr.version = 2;
    expect(&bob, out, reencode(out, &m, alice.signer), ALICE_TEL, MS_ERR_MIKEY_VERSION,
           MS_MIKEY_PT_HDR);
}

static void test_data_type(void)
{
    uint8_t msg[BUF], out[BUF];
    ms_mikey_message m;
    simple_parsed(&alice, BOB_TEL, msg, &m);
    m.hdr.data_type = MS_MIKEY_DT_ERROR;
    expect(&bob, out, reencode(out, &m, alice.signer), ALICE_TEL, MS_ERR_MIKEY_DATA_TYPE,
           MS_MIKEY_PT_HDR);
}

static void test_v_bit(void)
{
    uint8_t msg[BUF], out[BUF];
    ms_mikey_message m;
    simple_parsed(&alice, BOB_TEL, msg, &m);
    m.hdr.v = true;
    expect(&bob, out, reencode(out, &m, alice.signer), ALICE_TEL, MS_ERR_MIKEY_V_BIT,
           MS_MIKEY_PT_HDR);
}

/* ---- time and replay ---------------------------------------------------------------- */

static void test_timestamp(void)
{
    uint8_t msg[BUF];
    ms_mikey_init_params p = {0};
    p.responder = BOB_TEL;
    p.timestamp = g_now + (301ull << 32); /* default window is 300 s */
    size_t len = initiate(&alice, &p, msg, NULL);
    expect(&bob, msg, len, ALICE_TEL, MS_ERR_MIKEY_TIMESTAMP, MS_MIKEY_PT_T);
    p.timestamp = g_now - (301ull << 32);
    len = initiate(&alice, &p, msg, NULL);
    expect(&bob, msg, len, ALICE_TEL, MS_ERR_MIKEY_TIMESTAMP, MS_MIKEY_PT_T);
    /* just inside the window on both sides */
    p.timestamp = g_now + (299ull << 32);
    len = initiate(&alice, &p, msg, NULL);
    expect(&bob, msg, len, ALICE_TEL, MS_OK, -1);
    p.timestamp = g_now - (299ull << 32);
    len = initiate(&alice, &p, msg, NULL);
    expect(&bob, msg, len, ALICE_TEL, MS_OK, -1);
}

static void test_replay(void)
{
    uint8_t msg[BUF];
    size_t len = simple(&alice, BOB_TEL, msg);
    expect(&bob, msg, len, ALICE_TEL, MS_OK, -1);
    expect(&bob, msg, len, ALICE_TEL, MS_ERR_MIKEY_REPLAY, MS_MIKEY_PT_T);

    /* A refused message does not enter the cache: refused twice for the same reason. */
    ms_mikey_init_params p = {0};
    p.responder = BOB_SIP;
    p.with_key_params = true;
    p.key_params.key_type = MS_MIKEY_PURPOSE_PCK;
    p.key_params.status = 0; /* revoked */
    len = initiate(&pa, &p, msg, NULL);
    expect(&pb, msg, len, ALICE_SIP, MS_ERR_MIKEY_KEY_PARAMS, MS_MIKEY_PT_GENERAL_EXT);
    expect(&pb, msg, len, ALICE_SIP, MS_ERR_MIKEY_KEY_PARAMS, MS_MIKEY_PT_GENERAL_EXT);
    /* nor does one refused for its expected initiator */
    len = simple(&alice, BOB_TEL, msg);
    expect(&bob, msg, len, CAROL_TEL, MS_ERR_MIKEY_INITIATOR, MS_MIKEY_PT_IDR);
    expect(&bob, msg, len, ALICE_TEL, MS_OK, -1);
}

/* ---- identities and KMSs -------------------------------------------------------------- */

static void test_initiator(void)
{
    uint8_t msg[BUF];
    size_t len = simple(&alice, BOB_TEL, msg);
    expect(&bob, msg, len, CAROL_TEL, MS_ERR_MIKEY_INITIATOR, MS_MIKEY_PT_IDR);

    /* hidden initiator: the UID of the expected URI must match IDRuidi */
    ms_mikey_init_params p = {0};
    p.responder = BOB_SIP;
    p.hide_identities = true;
    len = initiate(&pa, &p, msg, NULL);
    expect(&pb, msg, len, "sip:mallory@example.org", MS_ERR_MIKEY_INITIATOR, MS_MIKEY_PT_IDR);
    expect(&pb, msg, len, ALICE_SIP, MS_OK, -1);

    /* an RFC 6509 IDRi that is not a tel URI gives no identifier */
    uint8_t out[BUF];
    len = simple(&alice, BOB_TEL, msg);
    ms_mikey_message m;
    parse(&m, msg, len);
    ms_mikey_payload *idri = find_mut(&m, MS_MIKEY_PT_IDR, MS_MIKEY_ROLE_INITIATOR);
    idri->u.idr.id.data = (const uint8_t *)"sip:a@b";
    idri->u.idr.id.len = 7;
    expect(&bob, out, reencode(out, &m, alice.signer), NULL, MS_ERR_MIKEY_INITIATOR,
           MS_MIKEY_PT_IDR);
}

static void test_responder(void)
{
    uint8_t msg[BUF];
    size_t len = simple(&alice, CAROL_TEL, msg);
    expect(&bob, msg, len, ALICE_TEL, MS_ERR_MIKEY_RESPONDER, MS_MIKEY_PT_IDR);

    /* hidden responder: IDRuidr is the UID of someone else */
    ms_mikey_init_params p = {0};
    p.responder = "sip:carol@example.org";
    p.hide_identities = true;
    len = initiate(&pa, &p, msg, NULL);
    expect(&pb, msg, len, ALICE_SIP, MS_ERR_MIKEY_RESPONDER, MS_MIKEY_PT_IDR);
}

static void test_unknown_kms(void)
{
    uint8_t msg[BUF], out[BUF];
    static const char other[] = "kms.other.org";
    ms_mikey_message m;
    size_t len = simple_parsed(&alice, BOB_TEL, msg, &m);
    ms_mikey_payload *k = find_mut(&m, MS_MIKEY_PT_IDR, MS_MIKEY_ROLE_KMS_INITIATOR);
    k->u.idr.id.data = (const uint8_t *)other;
    k->u.idr.id.len = strlen(other);
    expect(&bob, out, reencode(out, &m, alice.signer), ALICE_TEL, MS_ERR_MIKEY_UNKNOWN_KMS,
           MS_MIKEY_PT_IDR);
    parse(&m, msg, len);
    k = find_mut(&m, MS_MIKEY_PT_IDR, MS_MIKEY_ROLE_KMS_RESPONDER);
    k->u.idr.id.data = (const uint8_t *)other;
    k->u.idr.id.len = strlen(other);
    expect(&bob, out, reencode(out, &m, alice.signer), ALICE_TEL, MS_ERR_MIKEY_UNKNOWN_KMS,
           MS_MIKEY_PT_IDR);
}

/* ---- key periods ---------------------------------------------------------------------- */

static void test_key_period_no_keys(void)
{
    /* Two minutes before the month ends, Alice (who holds next month's keys) sends with
     * T in November; Bob holds only October's keys. */
    g_now = OCT31_2358 << 32;
    uint8_t msg[BUF];
    ms_mikey_init_params p = {0};
    p.responder = BOB_TEL;
    p.timestamp = (NOV1_0000 + 30) << 32;
    size_t len = initiate(&alice, &p, msg, NULL);
    expect(&bob, msg, len, ALICE_TEL, MS_ERR_MIKEY_KEY_PERIOD, MS_MIKEY_PT_T);
    /* the same instant with T in October is fine */
    p.timestamp = (OCT31_2358 + 30) << 32;
    len = initiate(&alice, &p, msg, NULL);
    expect(&bob, msg, len, ALICE_TEL, MS_OK, -1);
    g_now = NOW_SECS << 32;
}

static void test_key_period_not_accepted(void)
{
    /* 100 s into the next period Bob (grace 50 s) no longer accepts the old period, for
     * which he still holds keys; T lies 200 s back, inside the 300 s window. */
    g_now = (NOV1_0000 + 100) << 32;
    uint8_t msg[BUF];
    ms_mikey_init_params p = {0};
    p.responder = BOB_SIP;
    p.timestamp = (NOV1_0000 - 100) << 32;
    size_t len = initiate(&pa, &p, msg, NULL);
    expect(&pb, msg, len, ALICE_SIP, MS_ERR_MIKEY_KEY_PERIOD, MS_MIKEY_PT_T);
    /* 30 s into the period the old keys are still accepted */
    g_now = (NOV1_0000 + 30) << 32;
    p.timestamp = (NOV1_0000 - 100) << 32;
    len = initiate(&pa, &p, msg, NULL);
    expect(&pb, msg, len, ALICE_SIP, MS_OK, -1);
    g_now = NOW_SECS << 32;
}

/* ---- signature and SAKKE ------------------------------------------------------------- */

static void test_signature(void)
{
    uint8_t msg[BUF], out[BUF];
    ms_mikey_message m;
    size_t len = simple_parsed(&alice, BOB_TEL, msg, &m);
    /* one octet of RAND changed after signing */
    const ms_mikey_payload *r = ms_mikey_find(&m, MS_MIKEY_PT_RAND, -1);
    memcpy(out, msg, len);
    out[r->offset + 2] ^= 0x01;
    expect(&bob, out, len, ALICE_TEL, MS_ERR_SIGNATURE, MS_MIKEY_PT_SIGN);
    /* the signature itself damaged */
    memcpy(out, msg, len);
    out[len - 70] ^= 0x80;
    expect(&bob, out, len, ALICE_TEL, MS_ERR_SIGNATURE, MS_MIKEY_PT_SIGN);
    /* Carol claims Alice's message: valid signature, but not by Carol's identifier */
    ms_mikey_payload *idri = find_mut(&m, MS_MIKEY_PT_IDR, MS_MIKEY_ROLE_INITIATOR);
    idri->u.idr.id.data = (const uint8_t *)CAROL_TEL;
    idri->u.idr.id.len = strlen(CAROL_TEL);
    expect(&bob, out, reencode(out, &m, NULL), CAROL_TEL, MS_ERR_SIGNATURE, MS_MIKEY_PT_SIGN);
}

static void test_decap(void)
{
    uint8_t msg[BUF], out[BUF], sed[MS_SAKKE_SED_BYTES];
    ms_mikey_message m;
    size_t len = simple_parsed(&alice, BOB_TEL, msg, &m);
    /* H changed: the recovered SSV fails TEST = R */
    ms_mikey_payload *s = find_mut(&m, MS_MIKEY_PT_SAKKE, -1);
    memcpy(sed, s->u.sakke.data.data, sizeof sed);
    sed[sizeof sed - 1] ^= 0x01;
    s->u.sakke.data.data = sed;
    expect(&bob, out, reencode(out, &m, alice.signer), ALICE_TEL, MS_ERR_DECAP_TEST,
           MS_MIKEY_PT_SAKKE);

    /* SAKKE data made for Carol under a message addressed to Bob */
    uint8_t msg2[BUF];
    size_t len2 = simple(&alice, CAROL_TEL, msg2);
    ms_mikey_message m2;
    parse(&m2, msg2, len2);
    parse(&m, msg, len);
    find_mut(&m, MS_MIKEY_PT_SAKKE, -1)->u.sakke.data =
        ms_mikey_find(&m2, MS_MIKEY_PT_SAKKE, -1)->u.sakke.data;
    expect(&bob, out, reencode(out, &m, alice.signer), ALICE_TEL, MS_ERR_DECAP_TEST,
           MS_MIKEY_PT_SAKKE);
}

/* ---- 3GPP key identifiers and key parameters ----------------------------------------- */

static void test_key_id_purpose(void)
{
    uint8_t msg[BUF], out[BUF];
    ms_mikey_message m;
    size_t len = simple_parsed(&pa, BOB_SIP, msg, &m);
    m.hdr.csb_id = (m.hdr.csb_id & 0x0FFFFFFFu) | (MS_MIKEY_PURPOSE_CSK << 28);
    expect(&pb, out, reencode(out, &m, pa.signer), ALICE_SIP, MS_ERR_MIKEY_KEY_ID,
           MS_MIKEY_PT_HDR);
    /* and the untouched message is accepted */
    expect(&pb, msg, len, ALICE_SIP, MS_OK, -1);
}

static void test_key_id_gmk(void)
{
    uint8_t msg[BUF], out[BUF];
    ms_mikey_init_params p = {0};
    p.responder = BOB_SIP;
    ms_mikey_result ri;
    size_t len = initiate(&gms, &p, msg, &ri);
    ms_mikey_message m;

    /* GUK-ID (and SPI) computed for another member: the GMK-ID Bob recovers does not
     * match the SPI. */
    uint32_t guk;
    CHECK_ERR(ms_guk_id(&guk, ri.key, 16, ri.key_id, "sip:carol@example.org"), MS_OK);
    CHECK(guk != ri.csb_id);
    uint8_t spi[8];
    for (int i = 0; i < 4; i++) {
        spi[i] = (uint8_t)(ri.key_id >> (24 - 8 * i));
        spi[4 + i] = (uint8_t)(guk >> (24 - 8 * i));
    }
    parse(&m, msg, len);
    m.hdr.csb_id = guk;
    m.hdr.cs[0].spi.data = spi;
    expect(&gm, out, reencode(out, &m, gms.signer), GMS_SIP, MS_ERR_MIKEY_KEY_ID,
           MS_MIKEY_PT_HDR);
    /* only the GUK-ID changed */
    parse(&m, msg, len);
    m.hdr.csb_id = guk;
    expect(&gm, out, reencode(out, &m, gms.signer), GMS_SIP, MS_ERR_MIKEY_KEY_ID,
           MS_MIKEY_PT_HDR);
    /* only the SPI's GUK-ID half changed */
    for (int i = 0; i < 4; i++)
        spi[i] = (uint8_t)(ri.key_id >> (24 - 8 * i));
    spi[7] = (uint8_t)(ri.csb_id ^ 1u);
    spi[6] = (uint8_t)(ri.csb_id >> 8);
    spi[5] = (uint8_t)(ri.csb_id >> 16);
    spi[4] = (uint8_t)(ri.csb_id >> 24);
    parse(&m, msg, len);
    m.hdr.cs[0].spi.data = spi;
    expect(&gm, out, reencode(out, &m, gms.signer), GMS_SIP, MS_ERR_MIKEY_KEY_ID,
           MS_MIKEY_PT_HDR);
    /* a GUK-ID with the PCK purpose tag */
    parse(&m, msg, len);
    m.hdr.csb_id |= 1u << 28;
    expect(&gm, out, reencode(out, &m, gms.signer), GMS_SIP, MS_ERR_MIKEY_KEY_ID,
           MS_MIKEY_PT_HDR);
    expect(&gm, msg, len, GMS_SIP, MS_OK, -1);
    ms_mikey_result_wipe(&ri);
}

static void test_key_params(void)
{
    uint8_t msg[BUF], out[BUF];
    ms_mikey_init_params p = {0};
    p.responder = BOB_SIP;
    p.with_key_params = true;
    p.key_params.key_type = MS_MIKEY_PURPOSE_PCK;
    p.key_params.status = 0xFFFFFFFE; /* bit 0 clear: revoked */
    size_t len = initiate(&pa, &p, msg, NULL);
    expect(&pb, msg, len, ALICE_SIP, MS_ERR_MIKEY_KEY_PARAMS, MS_MIKEY_PT_GENERAL_EXT);

    p.key_params.status = 1;
    p.key_params.expiry = NOW_SECS - 1; /* expired a second ago */
    len = initiate(&pa, &p, msg, NULL);
    expect(&pb, msg, len, ALICE_SIP, MS_ERR_MIKEY_KEY_PARAMS, MS_MIKEY_PT_GENERAL_EXT);

    p.key_params.expiry = NOW_SECS + 1;
    p.key_params.key_type = MS_MIKEY_PURPOSE_GMK; /* not the key this message carries */
    len = initiate(&pa, &p, msg, NULL);
    expect(&pb, msg, len, ALICE_SIP, MS_ERR_MIKEY_KEY_PARAMS, MS_MIKEY_PT_GENERAL_EXT);

    /* ciphertext changed and the message re-signed: the GCM tag fails */
    p.key_params.key_type = MS_MIKEY_PURPOSE_PCK;
    len = initiate(&pa, &p, msg, NULL);
    ms_mikey_message m;
    parse(&m, msg, len);
    ms_mikey_payload *e = find_ext(&m, MS_MIKEY_EXT_KEY_PARAMS);
    uint8_t data[512];
    CHECK(e != NULL && e->u.ext.data.len <= sizeof data);
    memcpy(data, e->u.ext.data.data, e->u.ext.data.len);
    data[36] ^= 0x01;
    e->u.ext.data.data = data;
    expect(&pb, out, reencode(out, &m, pa.signer), ALICE_SIP, MS_ERR_MIKEY_KEY_PARAMS,
           MS_MIKEY_PT_GENERAL_EXT);
    /* DPPK-ID not the CSB-ID */
    data[36] ^= 0x01;
    data[31] ^= 0x01;
    expect(&pb, out, reencode(out, &m, pa.signer), ALICE_SIP, MS_ERR_MIKEY_KEY_PARAMS,
           MS_MIKEY_PT_GENERAL_EXT);
    /* the message as sent (valid until one second from now) is accepted */
    expect(&pb, msg, len, ALICE_SIP, MS_OK, -1);
}

int main(void)
{
    ms_test_seed();
    test_kms_new();
    user_init(&alice, MS_MIKEY_PROFILE_RFC6509, ALICE_TEL, 0);
    user_add_period(&alice, MONTH_PERIOD + 1, false);
    user_init(&bob, MS_MIKEY_PROFILE_RFC6509, BOB_TEL, 0);
    user_init(&pa, MS_MIKEY_PROFILE_PCK, ALICE_SIP, 0);
    user_init(&pb, MS_MIKEY_PROFILE_PCK, BOB_SIP, 50);
    user_init(&gms, MS_MIKEY_PROFILE_GMK, GMS_SIP, 0);
    user_init(&gm, MS_MIKEY_PROFILE_GMK, BOB_SIP, 0);

    test_malformed();
    test_missing_payload();
    test_unsupported();
    test_version();
    test_data_type();
    test_v_bit();
    test_timestamp();
    test_replay();
    test_initiator();
    test_responder();
    test_unknown_kms();
    test_key_period_no_keys();
    test_key_period_not_accepted();
    test_signature();
    test_decap();
    test_key_id_purpose();
    test_key_id_gmk();
    test_key_params();

    user_free(&alice);
    user_free(&bob);
    user_free(&pa);
    user_free(&pb);
    user_free(&gms);
    user_free(&gm);
    test_kms_free();
    return ms_test_finish();
}
