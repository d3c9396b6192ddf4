/*
 * MIKEY codec: round trips of every payload type, map type and TS type; two messages
 * assembled byte by byte from the field layouts and compared with the encoder; every
 * truncation and length-field corruption of valid messages (no crash, a clear error or
 * a parse that re-encodes to the same octets); each rejection path with its exact code
 * and, where it matters, the exact diagnostic offset; the encoder's refusals.
 */
#include <stdlib.h>
#include <string.h>

#include "mikeysakke/mikey.h"
#include "testutil.h"

#define BUF 10000

/* ---- a model with every payload type -------------------------------------------------- */

static uint8_t rand16[16];
static uint8_t sakke_data[273];
static uint8_t sig[129];
static uint8_t spi8[8];
static uint8_t mac20[20], mac32[32];
static uint8_t to_self[5 + 273];
static uint8_t key_params[40];
static const uint8_t sp_params[] = {0, 1, 1, 1, 1, 16, 2, 1, 1, 11, 1, 10};
static const char *const tel_i = "tel:+447700900123";
static const char *const tel_r = "tel:+447700900456";
static const char *const kms = "kms.example.org";

static void init_data(void)
{
    for (size_t i = 0; i < sizeof rand16; i++)
        rand16[i] = (uint8_t)i;
    sakke_data[0] = 0x04;
    for (size_t i = 1; i < sizeof sakke_data; i++)
        sakke_data[i] = (uint8_t)(i * 7);
    for (size_t i = 0; i < sizeof sig; i++)
        sig[i] = (uint8_t)(0xa0 ^ i);
    for (size_t i = 0; i < sizeof spi8; i++)
        spi8[i] = (uint8_t)(0x11 + i);
    memset(mac20, 0x55, sizeof mac20);
    memset(mac32, 0x66, sizeof mac32);
    /* SAKKE-to-self: a whole SAKKE payload (next payload 0, set 1, hashed UID). */
    to_self[0] = 0;
    to_self[1] = 1;
    to_self[2] = 2;
    to_self[3] = 0x01;
    to_self[4] = 0x11;
    memcpy(to_self + 5, sakke_data, sizeof sakke_data);
    for (size_t i = 0; i < sizeof key_params; i++)
        key_params[i] = (uint8_t)(0x30 + i);
}

static ms_mikey_span sp_of(const void *d, size_t n)
{
    ms_mikey_span s = {(const uint8_t *)d, n};
    return s;
}

static ms_mikey_span str_span(const char *s) { return sp_of(s, strlen(s)); }

static ms_mikey_payload *add(ms_mikey_message *m, uint8_t type)
{
    ms_mikey_payload *pl = &m->payloads[m->n_payloads++];
    memset(pl, 0, sizeof *pl);
    pl->type = type;
    return pl;
}

static void add_idr(ms_mikey_message *m, uint8_t role, uint8_t id_type, ms_mikey_span id)
{
    ms_mikey_payload *pl = add(m, MS_MIKEY_PT_IDR);
    pl->u.idr.role = role;
    pl->u.idr.id_type = id_type;
    pl->u.idr.id = id;
}

/* HDR with the given map type; the CS entries are in the form the parser produces. */
static void set_hdr(ms_mikey_message *m, uint8_t map_type)
{
    ms_mikey_hdr *h = &m->hdr;
    h->version = 1;
    h->data_type = MS_MIKEY_DT_SAKKE;
    h->prf = MS_MIKEY_PRF_HMAC_SHA256;
    h->csb_id = 0x1c5f7886;
    h->map_type = map_type;
    switch (map_type) {
    case MS_MIKEY_MAP_SRTP_ID:
        h->n_cs = 2;
        for (unsigned i = 0; i < 2; i++) {
            h->cs[i].cs_id = (uint8_t)(i + 1);
            h->cs[i].prot_type = MS_MIKEY_PROT_SRTP;
            h->cs[i].n_policies = 1;
            h->cs[i].policies[0] = (uint8_t)i;
            h->cs[i].ssrc = 0xdeadbee0u + i;
            h->cs[i].has_roc = true;
            h->cs[i].roc = 7 * i;
        }
        break;
    case MS_MIKEY_MAP_EMPTY:
        h->n_cs = 0;
        break;
    case MS_MIKEY_MAP_GENERIC_ID:
        h->n_cs = 4;
        /* GMK-like: CS ID 4, SRTP, one policy, no session data, SPI = 8 octets. */
        h->cs[0].cs_id = 4;
        h->cs[0].n_policies = 1;
        h->cs[0].spi = sp_of(spi8, sizeof spi8);
        /* S = 1 with SSRC, ROC, SEQ; two policies; empty SPI. */
        h->cs[1].cs_id = 6;
        h->cs[1].n_policies = 2;
        h->cs[1].policies[0] = 1;
        h->cs[1].policies[1] = 2;
        h->cs[1].has_roc = true;
        h->cs[1].has_session_data = true;
        h->cs[1].ssrc = 0x01020304;
        h->cs[1].roc = 5;
        h->cs[1].seq = 6;
        /* S = 0 with SSRC only; no policies. */
        h->cs[2].cs_id = 9;
        h->cs[2].has_session_data = true;
        h->cs[2].ssrc = 0xffffffffu;
        h->cs[2].spi = sp_of(spi8, 3);
        /* TESLA, which has no session data layout we know, without session data. */
        h->cs[3].cs_id = 200;
        h->cs[3].prot_type = MS_MIKEY_PROT_TESLA;
        h->cs[3].n_policies = MS_MIKEY_MAX_POLICIES;
        for (unsigned i = 0; i < MS_MIKEY_MAX_POLICIES; i++)
            h->cs[3].policies[i] = (uint8_t)(i + 3);
        break;
    default:
        break;
    }
}

/* Every payload type the codec knows, SIGN last. */
static void full_model(ms_mikey_message *m, uint8_t map_type, uint8_t ts_type)
{
    memset(m, 0, sizeof *m);
    set_hdr(m, map_type);
    ms_mikey_payload *pl = add(m, MS_MIKEY_PT_T);
    pl->u.t.ts_type = ts_type;
    switch (ts_type) {
    case MS_MIKEY_TS_COUNTER: pl->u.t.value = 0x89abcdefu; break;
    case MS_MIKEY_TS_NTP_UTC_32: pl->u.t.value = (uint64_t)0xd0f1c880u << 32; break;
    default: pl->u.t.value = 0xd0f1c88080000001ull; break;
    }
    add(m, MS_MIKEY_PT_RAND)->u.rand = sp_of(rand16, sizeof rand16);
    add_idr(m, MS_MIKEY_ROLE_INITIATOR, MS_MIKEY_IDTYPE_URI, str_span(tel_i));
    add_idr(m, MS_MIKEY_ROLE_RESPONDER, MS_MIKEY_IDTYPE_URI, str_span(tel_r));
    for (uint8_t role = MS_MIKEY_ROLE_KMS; role <= MS_MIKEY_ROLE_KMS_RESPONDER; role++)
        add_idr(m, role, MS_MIKEY_IDTYPE_NAI, str_span(kms));
    add_idr(m, MS_MIKEY_ROLE_UID_INITIATOR, MS_MIKEY_IDTYPE_URI, sp_of(sakke_data + 1, 32));
    add_idr(m, MS_MIKEY_ROLE_UID_RESPONDER, MS_MIKEY_IDTYPE_BYTES, sp_of(sakke_data + 33, 32));
    pl = add(m, MS_MIKEY_PT_ID);
    pl->u.id.id_type = MS_MIKEY_IDTYPE_URI;
    pl->u.id.id = str_span(tel_i);
    pl = add(m, MS_MIKEY_PT_CERT);
    pl->u.id.id_type = 0;
    pl->u.id.id = sp_of(sig, 40);
    pl = add(m, MS_MIKEY_PT_SP);
    pl->u.sp.policy_no = 0;
    pl->u.sp.prot_type = MS_MIKEY_PROT_SRTP;
    pl->u.sp.params = sp_of(sp_params, sizeof sp_params);
    pl = add(m, MS_MIKEY_PT_SP); /* empty parameter list */
    pl->u.sp.policy_no = 1;
    pl = add(m, MS_MIKEY_PT_SAKKE);
    pl->u.sakke.params = MS_MIKEY_SAKKE_PARAMS_SET1;
    pl->u.sakke.id_scheme = MS_MIKEY_ID_SCHEME_TEL_MONTHLY;
    pl->u.sakke.data = sp_of(sakke_data, sizeof sakke_data);
    pl = add(m, MS_MIKEY_PT_GENERAL_EXT);
    pl->u.ext.type = MS_MIKEY_EXT_SAKKE_TO_SELF;
    pl->u.ext.data = sp_of(to_self, sizeof to_self);
    pl = add(m, MS_MIKEY_PT_GENERAL_EXT);
    pl->u.ext.type = MS_MIKEY_EXT_KEY_PARAMS;
    pl->u.ext.data = sp_of(key_params, sizeof key_params);
    pl = add(m, MS_MIKEY_PT_GENERAL_EXT); /* empty extension */
    pl->u.ext.type = MS_MIKEY_EXT_VENDOR_ID;
    for (uint8_t alg = 0; alg <= 2; alg++) {
        pl = add(m, MS_MIKEY_PT_V);
        pl->u.v.auth_alg = alg;
        pl->u.v.mac = alg == 0 ? sp_of(NULL, 0) : alg == 1 ? sp_of(mac20, 20) : sp_of(mac32, 32);
    }
    add(m, MS_MIKEY_PT_ERR)->u.err.error_no = MS_MIKEY_ERRNO_INVALID_SPPAR;
    pl = add(m, MS_MIKEY_PT_SIGN);
    pl->u.sign.s_type = MS_MIKEY_STYPE_ECCSI;
    pl->u.sign.sig = sp_of(sig, sizeof sig);
}

/* ---- model comparison ----------------------------------------------------------------- */

static int span_eq(ms_mikey_span a, ms_mikey_span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

#define SAME(cond)                                                         \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "models differ (%s) at %s\n", what, #cond);   \
            return 0;                                                      \
        }                                                                  \
    } while (0)

static int same_model(const ms_mikey_message *a, const ms_mikey_message *b, const char *what)
{
    const ms_mikey_hdr *x = &a->hdr, *y = &b->hdr;
    SAME(x->version == y->version && x->data_type == y->data_type && x->v == y->v);
    SAME(x->prf == y->prf && x->csb_id == y->csb_id && x->n_cs == y->n_cs);
    SAME(x->map_type == y->map_type);
    if (x->map_type != MS_MIKEY_MAP_EMPTY) {
        for (unsigned i = 0; i < x->n_cs; i++) {
            const ms_mikey_cs *c = &x->cs[i], *d = &y->cs[i];
            SAME(c->cs_id == d->cs_id && c->prot_type == d->prot_type);
            SAME(c->n_policies == d->n_policies &&
                 memcmp(c->policies, d->policies, c->n_policies) == 0);
            SAME(c->ssrc == d->ssrc && c->has_roc == d->has_roc && c->roc == d->roc);
            SAME(c->seq == d->seq && c->has_session_data == d->has_session_data);
            SAME(span_eq(c->spi, d->spi));
        }
    }
    SAME(a->n_payloads == b->n_payloads);
    for (size_t i = 0; i < a->n_payloads; i++) {
        const ms_mikey_payload *p = &a->payloads[i], *q = &b->payloads[i];
        SAME(p->type == q->type);
        switch (p->type) {
        case MS_MIKEY_PT_T:
            SAME(p->u.t.ts_type == q->u.t.ts_type && p->u.t.value == q->u.t.value);
            break;
        case MS_MIKEY_PT_RAND: SAME(span_eq(p->u.rand, q->u.rand)); break;
        case MS_MIKEY_PT_ID:
        case MS_MIKEY_PT_CERT:
            SAME(p->u.id.id_type == q->u.id.id_type && span_eq(p->u.id.id, q->u.id.id));
            break;
        case MS_MIKEY_PT_IDR:
            SAME(p->u.idr.role == q->u.idr.role && p->u.idr.id_type == q->u.idr.id_type);
            SAME(span_eq(p->u.idr.id, q->u.idr.id));
            break;
        case MS_MIKEY_PT_SP:
            SAME(p->u.sp.policy_no == q->u.sp.policy_no);
            SAME(p->u.sp.prot_type == q->u.sp.prot_type);
            SAME(span_eq(p->u.sp.params, q->u.sp.params));
            break;
        case MS_MIKEY_PT_SAKKE:
            SAME(p->u.sakke.params == q->u.sakke.params);
            SAME(p->u.sakke.id_scheme == q->u.sakke.id_scheme);
            SAME(span_eq(p->u.sakke.data, q->u.sakke.data));
            break;
        case MS_MIKEY_PT_SIGN:
            SAME(p->u.sign.s_type == q->u.sign.s_type && span_eq(p->u.sign.sig, q->u.sign.sig));
            break;
        case MS_MIKEY_PT_GENERAL_EXT:
            SAME(p->u.ext.type == q->u.ext.type && span_eq(p->u.ext.data, q->u.ext.data));
            break;
        case MS_MIKEY_PT_V:
            SAME(p->u.v.auth_alg == q->u.v.auth_alg && span_eq(p->u.v.mac, q->u.v.mac));
            break;
        case MS_MIKEY_PT_ERR: SAME(p->u.err.error_no == q->u.err.error_no); break;
        default: SAME(!"unexpected payload type");
        }
    }
    return 1;
}

/* ---- round trips ---------------------------------------------------------------------- */

static size_t encode_ok(const ms_mikey_message *m, uint8_t *out, size_t *signed_len)
{
    size_t n = 0;
    CHECK_ERR(ms_mikey_encode(out, BUF, &n, signed_len, m), MS_OK);
    return n;
}

static void test_round_trips(void)
{
    static const uint8_t maps[] = {MS_MIKEY_MAP_SRTP_ID, MS_MIKEY_MAP_EMPTY,
                                   MS_MIKEY_MAP_GENERIC_ID};
    static uint8_t buf[BUF], buf2[BUF];
    static ms_mikey_message m, parsed;
    for (size_t mi = 0; mi < sizeof maps; mi++) {
        for (uint8_t ts = 0; ts <= MS_MIKEY_TS_NTP_UTC_32; ts++) {
            full_model(&m, maps[mi], ts);
            size_t sl = 0, sl2 = 0;
            size_t n = encode_ok(&m, buf, &sl);
            ms_mikey_diag diag;
            CHECK_ERR(ms_mikey_parse(&parsed, buf, n, &diag), MS_OK);
            CHECK(same_model(&m, &parsed, "round trip"));
            /* signed part: up to and including SIGN's two header octets */
            const ms_mikey_payload *s = ms_mikey_find(&parsed, MS_MIKEY_PT_SIGN, -1);
            CHECK(s != NULL && s == &parsed.payloads[parsed.n_payloads - 1]);
            CHECK(parsed.signed_len == sl && sl == n - sizeof sig);
            CHECK(s != NULL && s->offset + 2 == sl && s->offset + s->len == n);
            /* every payload's offset/len tile the message after HDR */
            size_t pos = parsed.payloads[0].offset;
            int tiled = 1;
            for (size_t i = 0; i < parsed.n_payloads; i++) {
                tiled &= parsed.payloads[i].offset == pos;
                pos += parsed.payloads[i].len;
            }
            CHECK(tiled && pos == n);
            /* spans point into the message */
            const ms_mikey_payload *r = ms_mikey_find(&parsed, MS_MIKEY_PT_RAND, -1);
            CHECK(r != NULL && r->u.rand.data == buf + r->offset + 2);
            if (maps[mi] == MS_MIKEY_MAP_GENERIC_ID)
                CHECK(parsed.hdr.cs[0].spi.data > buf && parsed.hdr.cs[0].spi.data < buf + n);
            size_t n2 = encode_ok(&parsed, buf2, &sl2);
            CHECK(n2 == n && sl2 == sl);
            CHECK_MEM(buf2, buf, n);
        }
    }
    /* HDR alone (next payload "Last"), and the V bit and data type preserved. */
    memset(&m, 0, sizeof m);
    set_hdr(&m, MS_MIKEY_MAP_EMPTY);
    m.hdr.v = true;
    m.hdr.data_type = MS_MIKEY_DT_ERROR;
    m.hdr.n_cs = 5; /* the empty map carries no map info whatever #CS says */
    size_t sl = 99;
    size_t n = encode_ok(&m, buf, &sl);
    CHECK(n == 10 && sl == 0 && buf[2] == 0 && buf[3] == 0x81);
    CHECK_ERR(ms_mikey_parse(&parsed, buf, n, NULL), MS_OK);
    CHECK(same_model(&m, &parsed, "HDR only") && parsed.n_payloads == 0 && parsed.signed_len == 0);
}

/* ---- messages assembled by hand -------------------------------------------------------- */

/* An RFC 6509-shaped I_MESSAGE: SRTP-ID map, T, RAND, IDRi, IDRkmsr, SP, a short SAKKE
 * payload and a SIGN place holder (sig.data NULL). */
static const uint8_t hand1_head[] = {
    /* HDR */
    0x01,                   /* version 1 */
    0x1a,                   /* data type 26: SAKKE msg */
    0x05,                   /* next payload: T */
    0x00,                   /* V 0, PRF MIKEY-1 */
    0x12, 0x34, 0x56, 0x78, /* CSB ID */
    0x01,                   /* #CS 1 */
    0x00,                   /* map type SRTP-ID */
    0x00, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00, 0x00, /* policy 0, SSRC, ROC */
    /* T (offset 19) */
    0x0b,                                           /* next: RAND */
    0x00,                                           /* NTP-UTC */
    0xd0, 0xf1, 0xc8, 0x80, 0x80, 0x00, 0x00, 0x00, /* seconds . fraction */
    /* RAND (offset 29) */
    0x0e, 0x10, /* next: IDR, length 16 */
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
    0x0f,
    /* IDRi (offset 47) */
    0x0e, 0x01, 0x01, 0x00, 0x11, /* next: IDR, role 1, URI, length 17 */
    't', 'e', 'l', ':', '+', '4', '4', '7', '7', '0', '0', '9', '0', '0', '1', '2', '3',
    /* IDRkmsr (offset 69) */
    0x0a, 0x07, 0x01, 0x00, 0x0f, /* next: SP, role 7, URI, length 15 */
    'k', 'm', 's', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'o', 'r', 'g',
    /* SP (offset 89) */
    0x1a, 0x00, 0x00, 0x00, 0x06, /* next: SAKKE, policy 0, SRTP, 6 octets of params */
    0x00, 0x01, 0x01,             /* encryption algorithm AES-CM */
    0x01, 0x01, 0x10,             /* session encryption key length 16 */
    /* SAKKE (offset 100) */
    0x04, 0x01, 0x01, 0x00, 0x03, /* next: SIGN, set 1, tel monthly, 3 octets */
    0x04, 0xaa, 0xbb,
    /* SIGN (offset 108) */
    0x20, 0x81, /* ECCSI, 129 octets (zeros follow) */
};
#define HAND1_LEN (sizeof hand1_head + 129)

static void hand1_model(ms_mikey_message *m)
{
    static const uint8_t sakke3[] = {0x04, 0xaa, 0xbb};
    memset(m, 0, sizeof *m);
    m->hdr.version = 1;
    m->hdr.data_type = 26;
    m->hdr.csb_id = 0x12345678;
    m->hdr.n_cs = 1;
    m->hdr.map_type = MS_MIKEY_MAP_SRTP_ID;
    m->hdr.cs[0].cs_id = 1;
    m->hdr.cs[0].n_policies = 1;
    m->hdr.cs[0].ssrc = 0xdeadbeef;
    m->hdr.cs[0].has_roc = true;
    ms_mikey_payload *pl = add(m, MS_MIKEY_PT_T);
    pl->u.t.value = 0xd0f1c88080000000ull;
    add(m, MS_MIKEY_PT_RAND)->u.rand = sp_of(rand16, 16);
    add_idr(m, MS_MIKEY_ROLE_INITIATOR, MS_MIKEY_IDTYPE_URI, str_span(tel_i));
    add_idr(m, MS_MIKEY_ROLE_KMS_RESPONDER, MS_MIKEY_IDTYPE_URI, str_span(kms));
    pl = add(m, MS_MIKEY_PT_SP);
    pl->u.sp.params = sp_of(sp_params, 6);
    pl = add(m, MS_MIKEY_PT_SAKKE);
    pl->u.sakke.params = 1;
    pl->u.sakke.id_scheme = 1;
    pl->u.sakke.data = sp_of(sakke3, 3);
    pl = add(m, MS_MIKEY_PT_SIGN);
    pl->u.sign.s_type = MS_MIKEY_STYPE_ECCSI;
    pl->u.sign.sig = sp_of(NULL, 129);
}

static size_t hand1(uint8_t *out)
{
    memcpy(out, hand1_head, sizeof hand1_head);
    memset(out + sizeof hand1_head, 0, 129);
    return HAND1_LEN;
}

/* An error-type message with a GENERIC-ID map, both 32-bit T types, ID, CERT,
 * GENERAL-EXT, ERR and V (no SIGN). */
static const uint8_t hand2[] = {
    /* HDR */
    0x01, 0x06, 0x05, 0x81, /* version 1, data type 6 (Error), next T, V 1 + PRF 1 */
    0xca, 0xfe, 0xba, 0xbe, /* CSB ID */
    0x02, 0x02,             /* #CS 2, GENERIC-ID */
    /* CS 1 (offset 10): CS ID 4, SRTP, S 0 #P 1, policy 0, no session data, SPI 8 */
    0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x08, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
    /* CS 2 (offset 25): CS ID 6, SRTP, S 1 #P 2, policies 1 2, session data 10, no SPI */
    0x06, 0x00, 0x82, 0x01, 0x02, 0x00, 0x0a, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x05,
    0x00, 0x06, 0x00,
    /* T COUNTER (offset 43) */
    0x05, 0x02, 0x01, 0x02, 0x03, 0x04,
    /* T NTP-UTC-32 (offset 49) */
    0x06, 0x03, 0xaa, 0xbb, 0xcc, 0xdd,
    /* ID (offset 55): next CERT, NAI, 3 octets */
    0x07, 0x00, 0x00, 0x03, 'a', '@', 'b',
    /* CERT (offset 62): next GENERAL-EXT, X.509v3, 5 octets */
    0x15, 0x00, 0x00, 0x05, 0x30, 0x03, 0x02, 0x01, 0x00,
    /* GENERAL-EXT (offset 71): next ERR, SDP IDs, 5 octets */
    0x0c, 0x01, 0x00, 0x05, 'm', 'i', 'k', 'e', 'y',
    /* ERR (offset 80): next V, Invalid SPpar, reserved */
    0x09, 0x0a, 0x00, 0x00,
    /* V (offset 84): last, HMAC-SHA-1, 20-octet MAC */
    0x00, 0x01, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
};

static void hand2_model(ms_mikey_message *m)
{
    static const uint8_t cert[] = {0x30, 0x03, 0x02, 0x01, 0x00};
    memset(m, 0, sizeof *m);
    ms_mikey_hdr *h = &m->hdr;
    h->version = 1;
    h->data_type = MS_MIKEY_DT_ERROR;
    h->v = true;
    h->prf = 1;
    h->csb_id = 0xcafebabe;
    h->n_cs = 2;
    h->map_type = MS_MIKEY_MAP_GENERIC_ID;
    h->cs[0].cs_id = 4;
    h->cs[0].n_policies = 1;
    h->cs[0].spi = sp_of(spi8, 8);
    h->cs[1].cs_id = 6;
    h->cs[1].has_roc = true;
    h->cs[1].n_policies = 2;
    h->cs[1].policies[0] = 1;
    h->cs[1].policies[1] = 2;
    h->cs[1].has_session_data = true;
    h->cs[1].ssrc = 0x01020304;
    h->cs[1].roc = 5;
    h->cs[1].seq = 6;
    ms_mikey_payload *pl = add(m, MS_MIKEY_PT_T);
    pl->u.t.ts_type = MS_MIKEY_TS_COUNTER;
    pl->u.t.value = 0x01020304;
    pl = add(m, MS_MIKEY_PT_T);
    pl->u.t.ts_type = MS_MIKEY_TS_NTP_UTC_32;
    pl->u.t.value = (uint64_t)0xaabbccdd << 32;
    pl = add(m, MS_MIKEY_PT_ID);
    pl->u.id.id_type = MS_MIKEY_IDTYPE_NAI;
    pl->u.id.id = str_span("a@b");
    pl = add(m, MS_MIKEY_PT_CERT);
    pl->u.id.id = sp_of(cert, sizeof cert);
    pl = add(m, MS_MIKEY_PT_GENERAL_EXT);
    pl->u.ext.type = MS_MIKEY_EXT_SDP_IDS;
    pl->u.ext.data = str_span("mikey");
    add(m, MS_MIKEY_PT_ERR)->u.err.error_no = MS_MIKEY_ERRNO_INVALID_SPPAR;
    pl = add(m, MS_MIKEY_PT_V);
    pl->u.v.auth_alg = 1;
    pl->u.v.mac = sp_of(mac20, 20);
}

static void test_hand_assembled(void)
{
    static uint8_t want[BUF], got[BUF];
    static ms_mikey_message m, parsed;
    size_t sl = 0;

    hand1_model(&m);
    size_t n = hand1(want);
    CHECK(encode_ok(&m, got, &sl) == n);
    CHECK_MEM(got, want, n);
    CHECK(sl == 110);
    CHECK_ERR(ms_mikey_parse(&parsed, want, n, NULL), MS_OK);
    CHECK(parsed.signed_len == 110 && parsed.n_payloads == 7);
    CHECK(parsed.payloads[0].offset == 19 && parsed.payloads[0].len == 10);
    CHECK(parsed.payloads[6].offset == 108 && parsed.payloads[6].len == 131);
    const ms_mikey_payload *idr = ms_mikey_find(&parsed, MS_MIKEY_PT_IDR, MS_MIKEY_ROLE_KMS_RESPONDER);
    CHECK(idr != NULL && idr->offset == 69 && idr->u.idr.id.len == 15 &&
          memcmp(idr->u.idr.id.data, kms, 15) == 0);
    /* the placeholder parses as 129 zero octets */
    ms_mikey_message zeros = m;
    static const uint8_t z129[129];
    zeros.payloads[6].u.sign.sig = sp_of(z129, 129);
    CHECK(same_model(&zeros, &parsed, "hand 1"));

    hand2_model(&m);
    CHECK(encode_ok(&m, got, &sl) == sizeof hand2);
    CHECK_MEM(got, hand2, sizeof hand2);
    CHECK(sl == 0);
    CHECK_ERR(ms_mikey_parse(&parsed, hand2, sizeof hand2, NULL), MS_OK);
    CHECK(same_model(&m, &parsed, "hand 2") && parsed.signed_len == 0);
    CHECK(parsed.hdr.cs[0].spi.data == hand2 + 17);
    CHECK(parsed.payloads[6].offset == 84 && parsed.payloads[6].len == 22);
}

/* ---- damaged messages ------------------------------------------------------------------ */

static int n_truncations;

/* Every proper prefix fails as malformed, with a diagnostic inside the prefix. */
static void truncate_all(const uint8_t *msg, size_t n)
{
    static ms_mikey_message parsed;
    int bad = 0;
    for (size_t cut = 0; cut < n; cut++) {
        ms_mikey_diag diag;
        uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan sees any over-read */
        memcpy(copy, msg, cut);
        ms_err e = ms_mikey_parse(&parsed, copy, cut, &diag);
        free(copy);
        if (e != MS_ERR_MIKEY_MALFORMED || diag.detail[0] == 0 || diag.offset > cut) {
            fprintf(stderr, "cut at %zu: %s (%s) offset %zu\n", cut, ms_errname(e), diag.detail,
                    diag.offset);
            bad++;
        }
        n_truncations++;
    }
    CHECK(bad == 0);
}

static void test_truncation(void)
{
    static uint8_t buf[BUF];
    static ms_mikey_message m;
    truncate_all(buf, hand1(buf));
    truncate_all(hand2, sizeof hand2);
    for (uint8_t map = 0; map <= 2; map++) {
        full_model(&m, map, MS_MIKEY_TS_NTP_UTC);
        truncate_all(buf, encode_ok(&m, buf, NULL));
    }
    /* one example of the message at the cut point */
    ms_mikey_diag diag;
    static ms_mikey_message parsed;
    hand1(buf);
    CHECK_ERR(ms_mikey_parse(&parsed, buf, 19, &diag), MS_ERR_MIKEY_MALFORMED);
    CHECK(diag.payload == MS_MIKEY_PT_T && diag.offset == 19);
    CHECK(strstr(diag.detail, "HDR announces a T payload") != NULL);
    CHECK_ERR(ms_mikey_parse(&parsed, buf, 5, &diag), MS_ERR_MIKEY_MALFORMED);
    CHECK(diag.payload == MS_MIKEY_PT_HDR && diag.offset == 0);
    CHECK_ERR(ms_mikey_parse(&parsed, NULL, 0, &diag), MS_ERR_MIKEY_MALFORMED);
}

/* Parses a damaged copy: an error with a diagnostic, or a parse that re-encodes to
 * exactly the same octets. Returns 1 when consistent. */
static int damaged_ok(const uint8_t *msg, size_t n, ms_err *err)
{
    static ms_mikey_message parsed;
    static uint8_t again[BUF];
    ms_mikey_diag diag;
    uint8_t *copy = malloc(n);
    memcpy(copy, msg, n);
    ms_err e = ms_mikey_parse(&parsed, copy, n, &diag);
    int ok;
    if (err != NULL)
        *err = e;
    if (e == MS_OK) {
        size_t m = 0;
        ok = ms_mikey_encode(again, sizeof again, &m, NULL, &parsed) == MS_OK && m == n;
        /* ERR's reserved octets are the only ones the model does not keep */
        for (size_t i = 0; ok && i < parsed.n_payloads; i++)
            if (parsed.payloads[i].type == MS_MIKEY_PT_ERR)
                memcpy(again + parsed.payloads[i].offset + 2,
                       copy + parsed.payloads[i].offset + 2, 2);
        ok = ok && memcmp(again, copy, n) == 0;
    } else {
        ok = (e == MS_ERR_MIKEY_MALFORMED || e == MS_ERR_MIKEY_UNSUPPORTED) &&
             diag.detail[0] != 0 && diag.offset <= n;
    }
    free(copy);
    return ok;
}

typedef struct field {
    size_t off;
    int width; /* 1, 2 octets; 12 = SIGN's 12-bit length */
} field;

/* The length, count and next-payload fields of a valid message. */
static size_t fields_of(const uint8_t *msg, size_t n, field *f)
{
    static ms_mikey_message p;
    size_t k = 0;
    if (ms_mikey_parse(&p, msg, n, NULL) != MS_OK)
        return 0;
    f[k++] = (field){2, 1}; /* HDR next payload */
    f[k++] = (field){8, 1}; /* #CS */
    f[k++] = (field){9, 1}; /* map type */
    if (p.hdr.map_type == MS_MIKEY_MAP_GENERIC_ID) {
        size_t pos = 10;
        for (unsigned i = 0; i < p.hdr.n_cs; i++) {
            unsigned np = msg[pos + 2] & 0x7f;
            f[k++] = (field){pos + 2, 1}; /* S | #P */
            size_t sd = pos + 3 + np;
            f[k++] = (field){sd, 2};
            size_t spi = sd + 2 + ((size_t)(msg[sd] << 8) | msg[sd + 1]);
            f[k++] = (field){spi, 1};
            pos = spi + 1 + msg[spi];
        }
    }
    for (size_t i = 0; i < p.n_payloads; i++) {
        size_t o = p.payloads[i].offset;
        switch (p.payloads[i].type) {
        case MS_MIKEY_PT_SIGN: f[k++] = (field){o, 12}; continue;
        case MS_MIKEY_PT_T: f[k++] = (field){o + 1, 1}; break;
        case MS_MIKEY_PT_RAND: f[k++] = (field){o + 1, 1}; break;
        case MS_MIKEY_PT_ID:
        case MS_MIKEY_PT_CERT:
        case MS_MIKEY_PT_GENERAL_EXT: f[k++] = (field){o + 2, 2}; break;
        case MS_MIKEY_PT_IDR:
        case MS_MIKEY_PT_SP:
        case MS_MIKEY_PT_SAKKE: f[k++] = (field){o + 3, 2}; break;
        case MS_MIKEY_PT_V: f[k++] = (field){o + 1, 1}; break;
        default: break;
        }
        if (p.payloads[i].type == MS_MIKEY_PT_SP && p.payloads[i].u.sp.params.len > 0)
            f[k++] = (field){o + 6, 1}; /* first parameter's length */
        f[k++] = (field){o, 1};         /* next payload */
    }
    return k;
}

static int n_corruptions;

static void corrupt_all(const uint8_t *msg, size_t n)
{
    static field f[400];
    static uint8_t copy[BUF];
    size_t k = fields_of(msg, n, f);
    int bad = 0, accepted = 0;
    CHECK(k > 5);
    for (size_t i = 0; i < k; i++) {
        unsigned orig = f[i].width == 1 ? msg[f[i].off]
                        : f[i].width == 2 ? (unsigned)(msg[f[i].off] << 8 | msg[f[i].off + 1])
                                          : (unsigned)((msg[f[i].off] & 0x0f) << 8 | msg[f[i].off + 1]);
        unsigned vals[] = {0, 1, orig + 1, orig - 1, 0xff, 0xffff, 0x100, 4, 5, 26, 21};
        for (size_t v = 0; v < sizeof vals / sizeof vals[0]; v++) {
            unsigned x = vals[v];
            memcpy(copy, msg, n);
            if (f[i].width == 1) {
                copy[f[i].off] = (uint8_t)x;
            } else if (f[i].width == 2) {
                copy[f[i].off] = (uint8_t)(x >> 8);
                copy[f[i].off + 1] = (uint8_t)x;
            } else {
                copy[f[i].off] = (uint8_t)((copy[f[i].off] & 0xf0) | ((x >> 8) & 0x0f));
                copy[f[i].off + 1] = (uint8_t)x;
            }
            ms_err e;
            if (!damaged_ok(copy, n, &e)) {
                fprintf(stderr, "field at %zu set to %u: inconsistent (%s)\n", f[i].off, x,
                        ms_errname(e));
                bad++;
            }
            accepted += e == MS_OK;
            n_corruptions++;
        }
    }
    CHECK(bad == 0);
    CHECK(accepted > 0); /* at least the "set to its own value" cases parse */
}

static void test_corruption(void)
{
    static uint8_t buf[BUF];
    static ms_mikey_message m;
    corrupt_all(buf, hand1(buf));
    corrupt_all(hand2, sizeof hand2);
    for (uint8_t map = 0; map <= 2; map++) {
        full_model(&m, map, MS_MIKEY_TS_NTP);
        corrupt_all(buf, encode_ok(&m, buf, NULL));
    }
}

/* Random octet changes: never a crash, always consistent. */
static void test_random_damage(void)
{
    static uint8_t buf[BUF], copy[BUF];
    static ms_mikey_message m;
    full_model(&m, MS_MIKEY_MAP_GENERIC_ID, MS_MIKEY_TS_NTP_UTC);
    size_t n = encode_ok(&m, buf, NULL);
    int bad = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(copy, buf, n);
        int flips = 1 + (int)(ms_test_random_u64() % 4);
        for (int j = 0; j < flips; j++) {
            uint64_t r = ms_test_random_u64();
            copy[r % n] = (uint8_t)(r >> 32);
        }
        size_t len = n - (size_t)(ms_test_random_u64() % 3);
        if (!damaged_ok(copy, len, NULL))
            bad++;
    }
    CHECK(bad == 0);
}

/* ---- exact rejections -------------------------------------------------------------------- */

static ms_err parse_mod(const uint8_t *msg, size_t n, size_t off, uint8_t val, ms_mikey_diag *d)
{
    static uint8_t copy[BUF];
    static ms_mikey_message p;
    memcpy(copy, msg, n);
    copy[off] = val;
    return ms_mikey_parse(&p, copy, n, d);
}

static void test_diag_offsets(void)
{
    static uint8_t h1[BUF];
    size_t n = hand1(h1);
    ms_mikey_diag d;
    char want[160];

    /* RAND length 255 with 208 octets left: the length field at 30 is at fault */
    CHECK_ERR(parse_mod(h1, n, 30, 0xff, &d), MS_ERR_MIKEY_MALFORMED);
    CHECK(d.payload == MS_MIKEY_PT_RAND && d.offset == 30);
    CHECK(strcmp(d.detail, "RAND RAND length 255 runs past the end of the message (208 octets "
                           "left)") == 0);
    /* SAKKE data length 0x0203 = 515 */
    CHECK_ERR(parse_mod(h1, n, 103, 0x02, &d), MS_ERR_MIKEY_MALFORMED);
    CHECK(d.payload == MS_MIKEY_PT_SAKKE && d.offset == 103);
    snprintf(want, sizeof want, "SAKKE data length 515 runs past the end of the message (%zu "
                                "octets left)", n - 105);
    CHECK(strcmp(d.detail, want) == 0);
    /* SIGN length 0x8ff */
    CHECK_ERR(parse_mod(h1, n, 108, 0x28, &d), MS_ERR_MIKEY_MALFORMED);
    CHECK(d.payload == MS_MIKEY_PT_SIGN && d.offset == 108);
    /* an SP parameter running past the parameter list (first TLV at 94) */
    CHECK_ERR(parse_mod(h1, n, 95, 0x05, &d), MS_ERR_MIKEY_MALFORMED);
    CHECK(d.payload == MS_MIKEY_PT_SP && d.offset == 94);
    /* IDRi length one short: IDRkmsr is then read from offset 68, where its length
     * field (octets 71..72 = 0x0100) runs past the end */
    CHECK_ERR(parse_mod(h1, n, 51, 0x10, &d), MS_ERR_MIKEY_MALFORMED);
    CHECK(d.payload == MS_MIKEY_PT_IDR && d.offset == 71);
    snprintf(want, sizeof want, "IDR ID data length 256 runs past the end of the message (%zu "
                                "octets left)", n - 73);
    CHECK(strcmp(d.detail, want) == 0);
    /* unsupported and unknown payload types name the type and where they start */
    CHECK_ERR(parse_mod(h1, n, 2, MS_MIKEY_PT_KEMAC, &d), MS_ERR_MIKEY_UNSUPPORTED);
    CHECK(d.payload == MS_MIKEY_PT_KEMAC && d.offset == 19);
    CHECK(strcmp(d.detail, "payload type 1 (KEMAC) at offset 19 is not supported (announced "
                           "at offset 2)") == 0);
    CHECK_ERR(parse_mod(h1, n, 19, 200, &d), MS_ERR_MIKEY_UNSUPPORTED);
    CHECK(d.payload == 200 && d.offset == 29 && strstr(d.detail, "type 200") != NULL);
    static const uint8_t others[] = {MS_MIKEY_PT_PKE, MS_MIKEY_PT_DH, MS_MIKEY_PT_CHASH, 13,
                                     15, 16, 17, MS_MIKEY_PT_KEY_DATA, 22, 25};
    for (size_t i = 0; i < sizeof others; i++)
        CHECK_ERR(parse_mod(h1, n, 19, others[i], &d), MS_ERR_MIKEY_UNSUPPORTED);
    /* HDR fields */
    CHECK_ERR(parse_mod(h1, n, 9, 3, &d), MS_ERR_MIKEY_UNSUPPORTED);
    CHECK(d.payload == MS_MIKEY_PT_HDR && d.offset == 9);
    CHECK_ERR(parse_mod(h1, n, 8, MS_MIKEY_MAX_CS + 1, &d), MS_ERR_MIKEY_UNSUPPORTED);
    CHECK(d.payload == MS_MIKEY_PT_HDR && d.offset == 8);
    /* #CS 2: the T payload is taken as the second entry, then T is read at 28 and its
     * TS type (octet 29, 0x0e) is not one we know */
    CHECK_ERR(parse_mod(h1, n, 8, 2, &d), MS_ERR_MIKEY_UNSUPPORTED);
    CHECK(d.payload == MS_MIKEY_PT_T && d.offset == 29);
    CHECK_ERR(parse_mod(h1, n, 20, 4, &d), MS_ERR_MIKEY_UNSUPPORTED);  /* TS type 4 */
    CHECK(d.payload == MS_MIKEY_PT_T && d.offset == 20);
    /* trailing octet after SIGN */
    static uint8_t longer[BUF];
    memcpy(longer, h1, n);
    longer[n] = 0;
    static ms_mikey_message p;
    CHECK_ERR(ms_mikey_parse(&p, longer, n + 1, &d), MS_ERR_MIKEY_MALFORMED);
    CHECK(d.payload == MS_MIKEY_PT_SIGN && d.offset == n);
    CHECK(strcmp(d.detail, "1 octets follow the SIGN payload, which must be last") == 0);

    /* hand 2: GENERIC-ID and V */
    const uint8_t *h2 = hand2;
    size_t n2 = sizeof hand2;
    CHECK_ERR(parse_mod(h2, n2, 12, MS_MIKEY_MAX_POLICIES + 1, &d), MS_ERR_MIKEY_UNSUPPORTED);
    CHECK(d.payload == MS_MIKEY_PT_HDR && d.offset == 12);
    CHECK_ERR(parse_mod(h2, n2, 31, 0x04, &d), MS_ERR_MIKEY_MALFORMED); /* S 1 needs 10 */
    CHECK(d.payload == MS_MIKEY_PT_HDR && d.offset == 30);
    CHECK_ERR(parse_mod(h2, n2, 26, MS_MIKEY_PROT_TESLA, &d), MS_ERR_MIKEY_UNSUPPORTED);
    CHECK(d.payload == MS_MIKEY_PT_HDR && d.offset == 30);
    CHECK_ERR(parse_mod(h2, n2, 16, 0xff, &d), MS_ERR_MIKEY_MALFORMED); /* SPI past end */
    CHECK(d.payload == MS_MIKEY_PT_HDR && d.offset == 16);
    CHECK(n2 == 106);
    CHECK_ERR(parse_mod(h2, n2, 85, 7, &d), MS_ERR_MIKEY_UNSUPPORTED); /* V auth alg */
    CHECK(d.payload == MS_MIKEY_PT_V && d.offset == 85);
    CHECK_ERR(parse_mod(h2, n2, 85, 2, &d), MS_ERR_MIKEY_MALFORMED); /* 32-octet MAC */
    CHECK(d.payload == MS_MIKEY_PT_V && d.offset == 86);
    CHECK(strcmp(d.detail, "V MAC needs 32 octets at offset 86, but only 20 remain") == 0);
    CHECK_ERR(parse_mod(h2, n2, 85, 0, &d), MS_ERR_MIKEY_MALFORMED); /* MAC becomes trailing */
    CHECK(d.payload == MS_MIKEY_PT_V && d.offset == 86);
    CHECK(strcmp(d.detail, "20 trailing octets after the last payload (V) at offset 86") == 0);
    memcpy(longer, h2, n2);
    longer[n2] = 0;
    CHECK_ERR(ms_mikey_parse(&p, longer, n2 + 1, &d), MS_ERR_MIKEY_MALFORMED);
    CHECK(d.payload == MS_MIKEY_PT_V && d.offset == n2);

    /* arguments */
    CHECK_ERR(ms_mikey_parse(NULL, h1, n, &d), MS_ERR_ARG);
    CHECK_ERR(ms_mikey_parse(&p, NULL, 5, NULL), MS_ERR_ARG);
}

static void test_limits(void)
{
    static uint8_t buf[MS_MIKEY_MAX_MESSAGE + 16];
    static ms_mikey_message p;
    ms_mikey_diag d;
    /* HDR (empty map) + one GENERAL-EXT filling the message to exactly the limit */
    memset(buf, 0, sizeof buf);
    static const uint8_t hdr[] = {1, 26, 21, 0, 0, 0, 0, 1, 0, 1};
    memcpy(buf, hdr, sizeof hdr);
    size_t data = MS_MIKEY_MAX_MESSAGE - 10 - 4;
    buf[10] = 0;
    buf[11] = 0;
    buf[12] = (uint8_t)(data >> 8);
    buf[13] = (uint8_t)data;
    CHECK_ERR(ms_mikey_parse(&p, buf, MS_MIKEY_MAX_MESSAGE, &d), MS_OK);
    CHECK(p.payloads[0].u.ext.data.len == data);
    CHECK_ERR(ms_mikey_parse(&p, buf, MS_MIKEY_MAX_MESSAGE + 1, &d), MS_ERR_MIKEY_UNSUPPORTED);
    CHECK(d.payload == MS_MIKEY_PT_HDR && d.offset == MS_MIKEY_MAX_MESSAGE);

    /* 32 ERR payloads are fine, a 33rd is not */
    memcpy(buf, hdr, sizeof hdr);
    buf[2] = MS_MIKEY_PT_ERR;
    for (int i = 0; i < 33; i++) {
        uint8_t *e = buf + 10 + 4 * i;
        e[0] = i == 32 ? 0 : MS_MIKEY_PT_ERR;
        e[1] = (uint8_t)i;
        e[2] = e[3] = 0;
    }
    CHECK_ERR(ms_mikey_parse(&p, buf, 10 + 4 * 33, &d), MS_ERR_MIKEY_UNSUPPORTED);
    CHECK(d.payload == MS_MIKEY_PT_ERR && d.offset == 10 + 4 * 32);
    buf[10 + 4 * 31] = 0;
    CHECK_ERR(ms_mikey_parse(&p, buf, 10 + 4 * 32, &d), MS_OK);
    CHECK(p.n_payloads == 32 && p.payloads[31].u.err.error_no == 31);

    /* #CS = 16 SRTP-ID entries */
    static ms_mikey_message m;
    static uint8_t out[BUF];
    memset(&m, 0, sizeof m);
    set_hdr(&m, MS_MIKEY_MAP_SRTP_ID);
    m.hdr.n_cs = MS_MIKEY_MAX_CS;
    for (unsigned i = 0; i < MS_MIKEY_MAX_CS; i++) {
        m.hdr.cs[i] = m.hdr.cs[0];
        m.hdr.cs[i].cs_id = (uint8_t)(i + 1);
        m.hdr.cs[i].ssrc = i * 1000u;
    }
    size_t n = encode_ok(&m, out, NULL);
    CHECK(n == 10 + 9 * MS_MIKEY_MAX_CS);
    CHECK_ERR(ms_mikey_parse(&p, out, n, NULL), MS_OK);
    CHECK(same_model(&m, &p, "16 sessions"));
}

/* ---- encoder -------------------------------------------------------------------------------- */

static ms_err enc(const ms_mikey_message *m)
{
    static uint8_t out[BUF];
    size_t n;
    return ms_mikey_encode(out, sizeof out, &n, NULL, m);
}

static void test_encoder(void)
{
    static ms_mikey_message m, bad;
    static uint8_t out[BUF], big[300];
    size_t n, sl;
    full_model(&m, MS_MIKEY_MAP_GENERIC_ID, MS_MIKEY_TS_NTP_UTC);
    size_t need = encode_ok(&m, out, NULL);

    /* too small: the size needed is reported, at every capacity below it */
    int wrong = 0;
    for (size_t cap = 0; cap < need; cap += 37) {
        uint8_t *o = malloc(cap ? cap : 1);
        n = 0;
        if (ms_mikey_encode(cap ? o : NULL, cap, &n, NULL, &m) != MS_ERR_BUFFER_TOO_SMALL || n != need)
            wrong++;
        free(o);
    }
    CHECK(wrong == 0);
    CHECK_ERR(ms_mikey_encode(out, need - 1, &n, NULL, &m), MS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == need);
    CHECK_ERR(ms_mikey_encode(NULL, 0, &n, NULL, &m), MS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == need);
    CHECK_ERR(ms_mikey_encode(out, need, &n, &sl, &m), MS_OK);
    CHECK(n == need && sl == need - sizeof sig);

    /* SIGN place holder: zeros where the signature goes */
    m.payloads[m.n_payloads - 1].u.sign.sig.data = NULL;
    memset(out, 0xee, sizeof out);
    CHECK_ERR(ms_mikey_encode(out, sizeof out, &n, &sl, &m), MS_OK);
    CHECK(out[sl - 2] == 0x20 && out[sl - 1] == 0x81);
    static const uint8_t z[129];
    CHECK_MEM(out + sl, z, 129);

    /* SIGN not last */
    bad = m;
    ms_mikey_payload tmp = bad.payloads[bad.n_payloads - 1];
    bad.payloads[bad.n_payloads - 1] = bad.payloads[bad.n_payloads - 2];
    bad.payloads[bad.n_payloads - 2] = tmp;
    CHECK_ERR(enc(&bad), MS_ERR_ARG);
    /* lengths beyond their fields, and values a field cannot hold */
#define BAD(stmt, idx)                \
    do {                              \
        bad = m;                      \
        ms_mikey_payload *q = &bad.payloads[idx]; \
        (void)q;                      \
        stmt;                         \
        CHECK_ERR(enc(&bad), MS_ERR_ARG); \
    } while (0)
    BAD(q->u.rand = sp_of(big, 256), 1);
    BAD(q->u.rand = sp_of(NULL, 4), 1);
    BAD(q->u.idr.id = sp_of(big, 0x10000), 2);
    BAD(q->u.t.ts_type = 4, 0);
    BAD((q->u.t.ts_type = MS_MIKEY_TS_COUNTER, q->u.t.value = 0x100000000ull), 0);
    BAD((q->u.t.ts_type = MS_MIKEY_TS_NTP_UTC_32, q->u.t.value = 0x100000001ull), 0);
    BAD(q->u.sign.sig = sp_of(NULL, 0x1000), bad.n_payloads - 1);
    BAD(q->u.sign.s_type = 16, bad.n_payloads - 1);
    BAD(q->type = MS_MIKEY_PT_KEMAC, 3);
    BAD(q->type = 200, 3);
    BAD(bad.hdr.prf = 0x80, 0);
    BAD(bad.hdr.n_cs = MS_MIKEY_MAX_CS + 1, 0);
    BAD(bad.hdr.map_type = 3, 0);
    BAD(bad.hdr.cs[0].spi = sp_of(big, 256), 0);
    BAD(bad.hdr.cs[0].n_policies = MS_MIKEY_MAX_POLICIES + 1, 0);
    BAD((bad.hdr.cs[1].prot_type = MS_MIKEY_PROT_TESLA), 0);
    BAD(bad.n_payloads = MS_MIKEY_MAX_PAYLOADS + 1, 0);
    /* the SP, SAKKE, V payloads */
    for (size_t i = 0; i < m.n_payloads; i++) {
        if (m.payloads[i].type == MS_MIKEY_PT_SP && m.payloads[i].u.sp.params.len > 0) {
            BAD(q->u.sp.params.len -= 1, i); /* last parameter cut */
            BAD(q->u.sp.params = sp_of(big, 0x10000), i);
        }
        if (m.payloads[i].type == MS_MIKEY_PT_SAKKE)
            BAD(q->u.sakke.data = sp_of(big, 0x10000), i);
        if (m.payloads[i].type == MS_MIKEY_PT_GENERAL_EXT)
            BAD(q->u.ext.data = sp_of(big, 0x10000), i);
        if (m.payloads[i].type == MS_MIKEY_PT_V) {
            BAD(q->u.v.mac.len += 1, i);
            BAD(q->u.v.auth_alg = 3, i);
        }
        if (m.payloads[i].type == MS_MIKEY_PT_ID)
            BAD(q->u.id.id = sp_of(big, 0x10000), i);
    }
    /* SRTP-ID entries carry exactly one policy */
    set_hdr(&bad, MS_MIKEY_MAP_SRTP_ID);
    bad.hdr.cs[1].n_policies = 2;
    CHECK_ERR(enc(&bad), MS_ERR_ARG);
    bad.hdr.cs[1].n_policies = 0;
    CHECK_ERR(enc(&bad), MS_ERR_ARG);
    /* over the message limit */
    memset(&bad, 0, sizeof bad);
    set_hdr(&bad, MS_MIKEY_MAP_EMPTY);
    static uint8_t huge[MS_MIKEY_MAX_MESSAGE];
    add(&bad, MS_MIKEY_PT_GENERAL_EXT)->u.ext.data = sp_of(huge, MS_MIKEY_MAX_MESSAGE - 14);
    CHECK_ERR(enc(&bad), MS_OK);
    bad.payloads[0].u.ext.data.len++;
    CHECK_ERR(enc(&bad), MS_ERR_ARG);
    /* arguments */
    CHECK_ERR(ms_mikey_encode(out, sizeof out, NULL, NULL, &m), MS_ERR_ARG);
    CHECK_ERR(ms_mikey_encode(out, sizeof out, &n, NULL, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_mikey_encode(NULL, 10, &n, NULL, &m), MS_ERR_ARG);
}

/* ---- lookups and names ---------------------------------------------------------------------- */

static void test_find_and_sp(void)
{
    static ms_mikey_message m, p;
    static uint8_t out[BUF];
    full_model(&m, MS_MIKEY_MAP_SRTP_ID, MS_MIKEY_TS_NTP_UTC);
    size_t n = encode_ok(&m, out, NULL);
    CHECK_ERR(ms_mikey_parse(&p, out, n, NULL), MS_OK);
    const ms_mikey_payload *x = ms_mikey_find(&p, MS_MIKEY_PT_IDR, -1);
    CHECK(x == &p.payloads[2]); /* IDRi, after T and RAND */
    x = ms_mikey_find(&p, MS_MIKEY_PT_IDR, MS_MIKEY_ROLE_KMS_INITIATOR);
    CHECK(x != NULL && x->u.idr.role == MS_MIKEY_ROLE_KMS_INITIATOR);
    x = ms_mikey_find(&p, MS_MIKEY_PT_IDR, MS_MIKEY_ROLE_UID_RESPONDER);
    CHECK(x != NULL && x->u.idr.id_type == MS_MIKEY_IDTYPE_BYTES && x->u.idr.id.len == 32);
    CHECK(ms_mikey_find(&p, MS_MIKEY_PT_IDR, 0) == NULL);
    CHECK(ms_mikey_find(&p, MS_MIKEY_PT_KEMAC, -1) == NULL);
    CHECK(ms_mikey_find(NULL, MS_MIKEY_PT_T, -1) == NULL);
    x = ms_mikey_find(&p, MS_MIKEY_PT_GENERAL_EXT, 5); /* role ignored for other types */
    CHECK(x != NULL && x->u.ext.type == MS_MIKEY_EXT_SAKKE_TO_SELF);

    const ms_mikey_payload *sp = ms_mikey_find(&p, MS_MIKEY_PT_SP, -1);
    size_t pos = 0;
    uint8_t type;
    ms_mikey_span v;
    static const uint8_t want_t[] = {0, 1, 2, 11}, want_v[] = {1, 16, 1, 10};
    int k = 0, bad = 0, r;
    while ((r = ms_mikey_sp_next(sp, &pos, &type, &v)) == 1) {
        bad += k >= 4 || type != want_t[k] || v.len != 1 || v.data[0] != want_v[k];
        k++;
    }
    CHECK(r == 0 && k == 4 && bad == 0 && pos == sizeof sp_params);
    CHECK(ms_mikey_sp_next(sp, &pos, &type, &v) == 0);
    pos = 0;
    CHECK(ms_mikey_sp_next(&p.payloads[0], &pos, &type, &v) == -1); /* not an SP */
    ms_mikey_payload cut = *sp;
    cut.u.sp.params.len = 4; /* second parameter's value missing */
    pos = 0;
    CHECK(ms_mikey_sp_next(&cut, &pos, &type, &v) == 1);
    CHECK(ms_mikey_sp_next(&cut, &pos, &type, &v) == -1);
    pos = 99;
    CHECK(ms_mikey_sp_next(sp, &pos, &type, &v) == -1);
    CHECK(ms_mikey_sp_next(NULL, &pos, &type, &v) == -1);
    const ms_mikey_payload *empty = &p.payloads[0];
    for (size_t i = 0; i < p.n_payloads; i++)
        if (p.payloads[i].type == MS_MIKEY_PT_SP && p.payloads[i].u.sp.policy_no == 1)
            empty = &p.payloads[i];
    pos = 0;
    CHECK(empty->type == MS_MIKEY_PT_SP && ms_mikey_sp_next(empty, &pos, &type, &v) == 0);
}

static void test_names(void)
{
    CHECK(strcmp(ms_mikey_payload_name(MS_MIKEY_PT_SAKKE), "SAKKE") == 0);
    CHECK(strcmp(ms_mikey_payload_name(MS_MIKEY_PT_SIGN), "SIGN") == 0);
    CHECK(strcmp(ms_mikey_payload_name(MS_MIKEY_PT_GENERAL_EXT), "GENERAL-EXT") == 0);
    CHECK(strcmp(ms_mikey_payload_name(MS_MIKEY_PT_HDR), "HDR") == 0);
    CHECK(strcmp(ms_mikey_payload_name(MS_MIKEY_PT_KEMAC), "KEMAC") == 0);
    CHECK(strcmp(ms_mikey_payload_name(200), "unknown") == 0);
    CHECK(strcmp(ms_mikey_payload_name(-1), "unknown") == 0);
    static const char *const roles[] = {"unknown", "IDRi", "IDRr", "IDRkms", "IDRpsk",
                                        "IDRapp", "IDRkmsi", "IDRkmsr", "IDRuidi", "IDRuidr",
                                        "unknown"};
    int bad = 0;
    for (int i = 0; i <= 10; i++)
        bad += strcmp(ms_mikey_role_name(i), roles[i]) != 0;
    CHECK(bad == 0);
    CHECK(strcmp(ms_mikey_errno_name(MS_MIKEY_ERRNO_AUTH_FAILURE), "Auth failure") == 0);
    CHECK(strcmp(ms_mikey_errno_name(MS_MIKEY_ERRNO_INVALID_SPPAR), "Invalid SPpar") == 0);
    CHECK(strcmp(ms_mikey_errno_name(MS_MIKEY_ERRNO_UNSUPPORTED_MSG),
                 "Unsupported message type") == 0);
    CHECK(strcmp(ms_mikey_errno_name(15), "Invalid TPpar") == 0);
    CHECK(strcmp(ms_mikey_errno_name(16), "unknown") == 0);
    CHECK(strcmp(ms_mikey_errno_name(-3), "unknown") == 0);
}

int main(void)
{
    ms_test_seed();
    init_data();
    test_round_trips();
    test_hand_assembled();
    test_truncation();
    test_corruption();
    test_random_damage();
    test_diag_offsets();
    test_limits();
    test_encoder();
    test_find_and_sp();
    test_names();
    printf("%d truncations, %d corruptions\n", n_truncations, n_corruptions);
    return ms_test_finish();
}
