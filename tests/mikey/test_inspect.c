/*
 * ms_mikey_print: the tree names every field it should (payload types, roles, TS types
 * with the UTC date, SP parameters and values by name, the CS ID map, SAKKE R and H,
 * ECCSI r, s and PVT, the 3GPP extensions, ERR names), and the JSON form is well formed
 * (checked by a strict validator written here, which is itself tested) and carries the
 * same values.
 */
#include <stdlib.h>
#include <string.h>

#include "mikeysakke/mikey.h"
#include "testutil.h"

/* ---- a strict JSON validator (RFC 8259), refusing duplicate keys ---------------------- */

typedef struct js {
    const char *p, *end;
    int depth;
} js;

static void ws(js *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r'))
        j->p++;
}

static int lit(js *j, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
        return 0;
    j->p += n;
    return 1;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string; its raw text (between the quotes) is copied to key if not NULL. */
static int jstring(js *j, char *key, size_t cap)
{
    if (j->p >= j->end || *j->p != '"')
        return 0;
    const char *start = ++j->p;
    while (j->p < j->end && *j->p != '"') {
        unsigned char c = (unsigned char)*j->p;
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            j->p++;
            if (j->p >= j->end)
                return 0;
            if (*j->p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (j->p + i >= j->end || !is_hex(j->p[i]))
                        return 0;
                j->p += 4;
            } else if (strchr("\"\\/bfnrt", *j->p) == NULL || *j->p == 0) {
                return 0;
            }
        }
        j->p++;
    }
    if (j->p >= j->end)
        return 0;
    if (key != NULL) {
        size_t n = (size_t)(j->p - start);
        if (n >= cap)
            n = cap - 1;
        memcpy(key, start, n);
        key[n] = 0;
    }
    j->p++;
    return 1;
}

static int jnumber(js *j)
{
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p >= j->end || !is_digit(*j->p))
        return 0;
    if (*j->p == '0')
        j->p++;
    else
        while (j->p < j->end && is_digit(*j->p))
            j->p++;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (j->p >= j->end || !is_digit(*j->p))
            return 0;
        while (j->p < j->end && is_digit(*j->p))
            j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (j->p >= j->end || !is_digit(*j->p))
            return 0;
        while (j->p < j->end && is_digit(*j->p))
            j->p++;
    }
    return 1;
}

static int jvalue(js *j);

#define MAX_KEYS 64

static int jobject(js *j)
{
    char keys[MAX_KEYS][48];
    int nk = 0;
    j->p++; /* { */
    ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return 1;
    }
    for (;;) {
        char key[48];
        ws(j);
        if (!jstring(j, key, sizeof key))
            return 0;
        for (int i = 0; i < nk; i++)
            if (strcmp(keys[i], key) == 0)
                return 0; /* duplicate key */
        if (nk < MAX_KEYS)
            strcpy(keys[nk++], key);
        ws(j);
        if (j->p >= j->end || *j->p != ':')
            return 0;
        j->p++;
        if (!jvalue(j))
            return 0;
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            return 1;
        }
        return 0;
    }
}

static int jarray(js *j)
{
    j->p++; /* [ */
    ws(j);
    if (j->p < j->end && *j->p == ']') {
        j->p++;
        return 1;
    }
    for (;;) {
        if (!jvalue(j))
            return 0;
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            return 1;
        }
        return 0;
    }
}

static int jvalue(js *j)
{
    int ok;
    ws(j);
    if (j->p >= j->end || ++j->depth > 64)
        return 0;
    switch (*j->p) {
    case '{': ok = jobject(j); break;
    case '[': ok = jarray(j); break;
    case '"': ok = jstring(j, NULL, 0); break;
    case 't': ok = lit(j, "true"); break;
    case 'f': ok = lit(j, "false"); break;
    case 'n': ok = lit(j, "null"); break;
    default: ok = jnumber(j); break;
    }
    j->depth--;
    return ok;
}

/* One JSON value, an object at the top, nothing after it but white space. */
static int json_valid(const char *s, size_t n)
{
    js j = {s, s + n, 0};
    ws(&j);
    if (j.p >= j.end || *j.p != '{')
        return 0;
    if (!jvalue(&j))
        return 0;
    ws(&j);
    return j.p == j.end;
}

static void test_validator(void)
{
    static const char *const good[] = {
        "{}", "{\"a\":[1,-2.5e3,true,false,null,\"x\\u00e9\\n\"]}", " {\"a\": {\"b\": []}}\n",
        "{\"a\":0,\"b\":0.5,\"c\":1E+2}",
    };
    static const char *const bad[] = {
        "", "[]", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":[1,2}", "{\"a\":01}", "{\"a\":\"\\x\"}",
        "{\"a\":1}{}", "{\"a\":1,\"a\":2}", "{\"a\":\"\x01\"}", "{\"a\":tru}", "{\"a\":1.}",
        "{\"a\":\"\\u12g4\"}", "{a:1}", "{\"a\":\"open}", "{\"a\":-}",
    };
    int wrong = 0;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!json_valid(good[i], strlen(good[i]))) {
            fprintf(stderr, "validator refused %s\n", good[i]);
            wrong++;
        }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (json_valid(bad[i], strlen(bad[i]))) {
            fprintf(stderr, "validator accepted %s\n", bad[i]);
            wrong++;
        }
    CHECK(wrong == 0);
}

/* ---- messages ------------------------------------------------------------------------- */

static uint8_t sakke_data[273], sig[129], rand16[16], mac32[32], spi8[8];
static uint8_t to_self[5 + 273], key_params[35 + 33];
static uint8_t uid[32];
static const uint8_t sp_params[] = {
    0, 1, 1,   /* Encryption algorithm: AES-CM */
    1, 1, 16,  /* Session Encr. key length */
    2, 1, 1,   /* Authentication algorithm: HMAC-SHA-1 */
    5, 1, 0,   /* SRTP PRF: AES-CM */
    7, 1, 1,   /* SRTP encryption: on */
    8, 1, 0,   /* SRTCP encryption: off */
    13, 2, 0, 1, /* ROC transmission rate (16 bits) */
    14, 1, 4,  /* SRTP Auth. algorithm: RCCm3 */
    20, 1, 16, /* AEAD authentication tag length */
    99, 1, 5,  /* unknown */
    12, 0,     /* empty value */
};

static void init_data(void)
{
    sakke_data[0] = 0x04;
    for (size_t i = 1; i < sizeof sakke_data; i++)
        sakke_data[i] = (uint8_t)(i < 257 ? 0x10 + i % 16 : 0xe0 + i % 16);
    for (size_t i = 0; i < sizeof sig; i++)
        sig[i] = (uint8_t)(i < 32 ? 0x11 : i < 64 ? 0x22 : i == 64 ? 0x04 : 0x33);
    for (size_t i = 0; i < 16; i++)
        rand16[i] = (uint8_t)(0xa0 + i);
    memset(mac32, 0x66, sizeof mac32);
    for (size_t i = 0; i < 8; i++)
        spi8[i] = (uint8_t)(0x11 + i);
    for (size_t i = 0; i < 32; i++)
        uid[i] = (uint8_t)(0xc0 + i);
    to_self[0] = 0;
    to_self[1] = 1;
    to_self[2] = 2;
    to_self[3] = 0x01;
    to_self[4] = 0x11;
    memcpy(to_self + 5, sakke_data, sizeof sakke_data);
    /* E.6 framing: type 0x43, time, payload ID, seq, alg 1, IV, DPPK-ID, IEI, length */
    memset(key_params, 0, sizeof key_params);
    key_params[0] = 0x43;
    key_params[5] = 0x01;
    key_params[11] = 0x01;
    for (size_t i = 0; i < 16; i++)
        key_params[12 + i] = (uint8_t)(0x70 + i);
    key_params[28] = 0x1c;
    key_params[29] = 0x5f;
    key_params[30] = 0x78;
    key_params[31] = 0x86;
    key_params[34] = 33;
    memset(key_params + 35, 0x99, 33);
}

static ms_mikey_span sp_of(const void *d, size_t n)
{
    ms_mikey_span s = {(const uint8_t *)d, n};
    return s;
}

static ms_mikey_payload *add(ms_mikey_message *m, uint8_t type)
{
    ms_mikey_payload *pl = &m->payloads[m->n_payloads++];
    memset(pl, 0, sizeof *pl);
    pl->type = type;
    return pl;
}

static void add_idr(ms_mikey_message *m, uint8_t role, uint8_t type, ms_mikey_span id)
{
    ms_mikey_payload *pl = add(m, MS_MIKEY_PT_IDR);
    pl->u.idr.role = role;
    pl->u.idr.id_type = type;
    pl->u.idr.id = id;
}

static void build(ms_mikey_message *m, uint8_t map_type)
{
    memset(m, 0, sizeof *m);
    m->hdr.version = 1;
    m->hdr.data_type = MS_MIKEY_DT_SAKKE;
    m->hdr.prf = MS_MIKEY_PRF_HMAC_SHA256;
    m->hdr.csb_id = 0x1c5f7886;
    m->hdr.map_type = map_type;
    if (map_type == MS_MIKEY_MAP_SRTP_ID) {
        m->hdr.n_cs = 1;
        m->hdr.cs[0] = (ms_mikey_cs){.cs_id = 1, .n_policies = 1, .policies = {3},
                                     .ssrc = 0xdeadbeef, .has_roc = true, .roc = 42};
    } else if (map_type == MS_MIKEY_MAP_GENERIC_ID) {
        m->hdr.n_cs = 2;
        m->hdr.cs[0] = (ms_mikey_cs){.cs_id = 4, .n_policies = 1, .spi = sp_of(spi8, 8)};
        m->hdr.cs[1] = (ms_mikey_cs){.cs_id = 6, .n_policies = 2, .policies = {7, 8},
                                     .has_roc = true, .has_session_data = true,
                                     .ssrc = 0x01020304, .roc = 5, .seq = 777};
    }
    ms_mikey_payload *pl = add(m, MS_MIKEY_PT_T);
    pl->u.t.ts_type = MS_MIKEY_TS_NTP_UTC;
    pl->u.t.value = ((uint64_t)3505507200u << 32) | 0x80000000u;
    add(m, MS_MIKEY_PT_RAND)->u.rand = sp_of(rand16, 16);
    add_idr(m, MS_MIKEY_ROLE_INITIATOR, MS_MIKEY_IDTYPE_URI, sp_of("tel:+447700900123", 17));
    add_idr(m, MS_MIKEY_ROLE_KMS_INITIATOR, MS_MIKEY_IDTYPE_URI, sp_of("kms.example.org", 15));
    add_idr(m, MS_MIKEY_ROLE_UID_RESPONDER, MS_MIKEY_IDTYPE_URI, sp_of(uid, 32));
    add_idr(m, MS_MIKEY_ROLE_KMS_RESPONDER, MS_MIKEY_IDTYPE_NAI, sp_of("a\"b\\c", 5));
    pl = add(m, MS_MIKEY_PT_SP);
    pl->u.sp.policy_no = 3;
    pl->u.sp.params = sp_of(sp_params, sizeof sp_params);
    pl = add(m, MS_MIKEY_PT_SAKKE);
    pl->u.sakke.params = 1;
    pl->u.sakke.id_scheme = 1;
    pl->u.sakke.data = sp_of(sakke_data, sizeof sakke_data);
    pl = add(m, MS_MIKEY_PT_GENERAL_EXT);
    pl->u.ext.type = MS_MIKEY_EXT_SAKKE_TO_SELF;
    pl->u.ext.data = sp_of(to_self, sizeof to_self);
    pl = add(m, MS_MIKEY_PT_GENERAL_EXT);
    pl->u.ext.type = MS_MIKEY_EXT_KEY_PARAMS;
    pl->u.ext.data = sp_of(key_params, sizeof key_params);
    pl = add(m, MS_MIKEY_PT_GENERAL_EXT);
    pl->u.ext.type = MS_MIKEY_EXT_SDP_IDS;
    pl->u.ext.data = sp_of("mikey", 5);
    pl = add(m, MS_MIKEY_PT_V);
    pl->u.v.auth_alg = 2;
    pl->u.v.mac = sp_of(mac32, 32);
    add(m, MS_MIKEY_PT_ERR)->u.err.error_no = MS_MIKEY_ERRNO_INVALID_SPPAR;
    pl = add(m, MS_MIKEY_PT_SIGN);
    pl->u.sign.s_type = MS_MIKEY_STYPE_ECCSI;
    pl->u.sign.sig = sp_of(sig, sizeof sig);
}

/* Prints msg and returns the text (malloc'd, NUL-terminated). */
static char *print(const ms_mikey_message *msg, bool json, size_t *len)
{
    FILE *f = tmpfile();
    if (f == NULL) {
        perror("tmpfile");
        exit(2);
    }
    CHECK_ERR(ms_mikey_print(f, msg, json), MS_OK);
    long n = ftell(f);
    rewind(f);
    char *s = calloc((size_t)n + 1, 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "short read\n");
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return s;
}

static int has(const char *text, const char *want)
{
    if (strstr(text, want) != NULL)
        return 1;
    fprintf(stderr, "output lacks: %s\n", want);
    return 0;
}

static void hexstr(char *out, const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void parsed_message(ms_mikey_message *p, uint8_t *buf, size_t cap, uint8_t map)
{
    static ms_mikey_message m;
    size_t n;
    build(&m, map);
    CHECK_ERR(ms_mikey_encode(buf, cap, &n, NULL, &m), MS_OK);
    CHECK_ERR(ms_mikey_parse(p, buf, n, NULL), MS_OK);
}

static void test_tree(void)
{
    static ms_mikey_message p;
    static uint8_t buf[4096];
    static char want[1024];
    size_t len;
    parsed_message(&p, buf, sizeof buf, MS_MIKEY_MAP_SRTP_ID);
    char *t = print(&p, false, &len);
    int ok = 1;
    static const char *const lines[] = {
        "MIKEY message, ",
        "  HDR (Common Header)\n",
        "    Version: 1\n",
        "    Data type: SAKKE msg (26)\n",
        "    Next payload: T (5)\n",
        "    V (response expected): 0\n",
        "    PRF func: PRF-HMAC-SHA-256 (1)\n",
        "    CSB ID: 476018822\n",
        "    CSB ID (hex): 1c5f7886\n",
        "    #CS: 1\n",
        "    CS ID map type: SRTP-ID (0)\n",
        "      Crypto session 1\n",
        "        Policy no: 3\n",
        "        SSRC: 3735928559\n",
        "        ROC: 42\n",
        "    TS type: NTP-UTC (0)\n",
        "    Date: 2011-02-01 00:00:00.500000 UTC\n",
        "    Next payload: RAND (11)\n",
        "    RAND length: 16\n",
        "    RAND: a0a1a2a3a4a5a6a7a8a9aaabacadaeaf\n",
        "  IDR (IDRi), offset ",
        "    ID role: IDRi (1)\n",
        "    ID type: URI (1)\n",
        "    ID: tel:+447700900123\n",
        "    ID role: IDRkmsi (6)\n",
        "    ID: kms.example.org\n",
        "    ID role: IDRuidr (9)\n",
        "    ID: c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf\n",
        "    ID role: IDRkmsr (7)\n",
        "    ID type: NAI (0)\n",
        "    ID: a\"b\\c\n",
        "    Policy no: 3\n",
        "    Protocol type: SRTP (0)\n",
        "      Encryption algorithm: AES-CM (1)\n",
        "      Session Encr. key length: 16\n",
        "      Authentication algorithm: HMAC-SHA-1 (1)\n",
        "      SRTP Pseudo Random Function: AES-CM (0)\n",
        "      SRTP encryption off/on: on (1)\n",
        "      SRTCP encryption off/on: off (0)\n",
        "      ROC transmission rate: 1\n",
        "      SRTP Auth. algorithm: RCCm3 (4)\n",
        "      AEAD authentication tag length: 16\n",
        "      Type 99: 5\n",
        "      SRTP prefix length: (empty)\n",
        "    SAKKE params: Parameter Set 1 (1)\n",
        "    ID scheme: tel URI with monthly keys (1)\n",
        "    SAKKE data length: 273\n",
        "      H: e1e2e3e4e5e6e7e8e9eaebecedeeefe0\n",
        "    Type: SAKKE-to-self (6)\n",
        "      Next payload (ignored): 0\n",
        "      ID scheme: 3GPP MCX hashed UID (2)\n",
        ("    Type: 3GPP key parameters (7)\n    Length: 68\n    Protected payload\n"
         "      Message type: 67\n      Date/time: 0000000001\n"),
        "      Algorithm: AES-128-GCM (1)\n",
        "      IV: 707172737475767778797a7b7c7d7e7f\n",
        "      DPPK-ID: 476018822\n",
        "      Payload length: 33\n",
        "    Type: SDP IDs (1)\n",
        "    Data: mikey\n",
        "    Auth alg: HMAC-SHA-256-256 (2)\n",
        "    MAC: 6666666666666666666666666666666666666666666666666666666666666666\n",
        "    Error no: Invalid SPpar (10)\n",
        "    S type: ECCSI (2)\n",
        "    Signature length: 129\n",
        "      r: 1111111111111111111111111111111111111111111111111111111111111111\n",
        "      s: 2222222222222222222222222222222222222222222222222222222222222222\n",
        "      PVT: 0433333333",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        ok &= has(t, lines[i]);
    /* R = 04 || x || y in full, both times (payload and to-self) */
    strcpy(want, "R (04 || x || y): ");
    hexstr(want + strlen(want), sakke_data, 257);
    strcat(want, "\n");
    const char *first = strstr(t, want);
    ok &= first != NULL && strstr(first + 1, want) != NULL;
    CHECK(ok);
    if (!ok)
        fputs(t, stderr);
    /* payload headings in order, with offsets from the parse */
    char heading[96];
    const char *at = t;
    int order = 1;
    for (size_t i = 0; i < p.n_payloads; i++) {
        if (p.payloads[i].type == MS_MIKEY_PT_IDR)
            snprintf(heading, sizeof heading, "  IDR (%s), offset %zu, %zu octets\n",
                     ms_mikey_role_name(p.payloads[i].u.idr.role), p.payloads[i].offset,
                     p.payloads[i].len);
        else
            snprintf(heading, sizeof heading, "  %s, offset %zu, %zu octets\n",
                     ms_mikey_payload_name(p.payloads[i].type), p.payloads[i].offset,
                     p.payloads[i].len);
        const char *h = strstr(at, heading);
        if (h == NULL) {
            fprintf(stderr, "heading missing or out of order: %s", heading);
            order = 0;
            break;
        }
        at = h + 1;
    }
    CHECK(order);
    free(t);

    /* GENERIC-ID map */
    parsed_message(&p, buf, sizeof buf, MS_MIKEY_MAP_GENERIC_ID);
    t = print(&p, false, &len);
    ok = 1;
    static const char *const gen[] = {
        "    CS ID map type: GENERIC-ID (2)\n",
        ("      Crypto session 1\n        CS ID: 4\n        Protocol type: SRTP (0)\n"
         "        Policy no: 0\n        S (ROC and SEQ present): 0\n"
         "        Session data present: 0\n        SPI: 1112131415161718\n"),
        ("      Crypto session 2\n        CS ID: 6\n        Protocol type: SRTP (0)\n"
         "        Policy nos: 7 8\n        S (ROC and SEQ present): 1\n"
         "        Session data present: 1\n        SSRC: 16909060\n        ROC: 5\n"
         "        SEQ: 777\n        SPI: (empty)\n"),
    };
    for (size_t i = 0; i < sizeof gen / sizeof gen[0]; i++)
        ok &= has(t, gen[i]);
    CHECK(ok);
    free(t);

    /* empty map: no crypto session lines */
    parsed_message(&p, buf, sizeof buf, MS_MIKEY_MAP_EMPTY);
    t = print(&p, false, &len);
    CHECK(has(t, "    CS ID map type: Empty map (1)\n") && strstr(t, "Crypto session") == NULL);
    free(t);
}

static void test_dates(void)
{
    static const struct {
        uint64_t ntp;
        const char *want;
    } v[] = {
        {0, "Date: 1900-01-01 00:00:00.000000 UTC\n"},
        {(uint64_t)3539507696u << 32, "Date: 2012-02-29 12:34:56.000000 UTC\n"},
        {((uint64_t)3187295999u << 32) | 0x40000000u, "Date: 2000-12-31 23:59:59.250000 UTC\n"},
        {0xffffffffffffffffull, "Date: 2036-02-07 06:28:15.999999 UTC\n"},
    };
    static ms_mikey_message m;
    int ok = 1;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        memset(&m, 0, sizeof m);
        m.hdr.version = 1;
        m.hdr.map_type = MS_MIKEY_MAP_EMPTY;
        ms_mikey_payload *pl = add(&m, MS_MIKEY_PT_T);
        pl->u.t.ts_type = i % 2 ? MS_MIKEY_TS_NTP : MS_MIKEY_TS_NTP_UTC;
        pl->u.t.value = v[i].ntp;
        size_t len;
        char *t = print(&m, false, &len);
        ok &= has(t, v[i].want);
        free(t);
    }
    /* COUNTER: a number, no date */
    memset(&m, 0, sizeof m);
    ms_mikey_payload *pl = add(&m, MS_MIKEY_PT_T);
    pl->u.t.ts_type = MS_MIKEY_TS_COUNTER;
    pl->u.t.value = 12345;
    size_t len;
    char *t = print(&m, false, &len);
    ok &= has(t, "TS type: COUNTER (2)\n") && has(t, "Counter: 12345\n") &&
          strstr(t, "Date") == NULL;
    free(t);
    CHECK(ok);
}

static void test_json(void)
{
    static ms_mikey_message p;
    static uint8_t buf[4096];
    static char want[1024];
    static const uint8_t maps[] = {MS_MIKEY_MAP_SRTP_ID, MS_MIKEY_MAP_EMPTY,
                                   MS_MIKEY_MAP_GENERIC_ID};
    for (size_t mi = 0; mi < sizeof maps; mi++) {
        size_t len;
        parsed_message(&p, buf, sizeof buf, maps[mi]);
        char *j = print(&p, true, &len);
        CHECK(json_valid(j, len));
        CHECK(len > 0 && j[len - 1] == '\n');
        int ok = 1;
        ok &= has(j, "\"data_type\": 26,\n");
        ok &= has(j, "\"data_type_name\": \"SAKKE msg\"");
        ok &= has(j, "\"csb_id\": 476018822");
        ok &= has(j, "\"role_name\": \"IDRkmsi\"");
        ok &= has(j, "\"role_name\": \"IDRuidr\"");
        ok &= has(j, "\"id_text\": \"tel:+447700900123\"");
        ok &= has(j, "\"id_text\": \"a\\\"b\\\\c\""); /* escaped quote and backslash */
        ok &= has(j, "\"ts_type_name\": \"NTP-UTC\"");
        ok &= has(j, "\"utc\": \"2011-02-01 00:00:00.500000 UTC\"");
        ok &= has(j, "\"rand\": \"a0a1a2a3a4a5a6a7a8a9aaabacadaeaf\"");
        ok &= has(j, "\"value_name\": \"AES-CM\"");
        ok &= has(j, "\"type_name\": \"AEAD authentication tag length\"");
        ok &= has(j, "\"ext_type_name\": \"SAKKE-to-self\"");
        ok &= has(j, "\"id_scheme_name\": \"3GPP MCX hashed UID\"");
        ok &= has(j, "\"error_no_name\": \"Invalid SPpar\"");
        ok &= has(j, "\"s_type_name\": \"ECCSI\"");
        ok &= has(j, "\"r\": \"1111111111111111111111111111111111111111111111111111111111111111\"");
        ok &= has(j, "\"H\": \"e1e2e3e4e5e6e7e8e9eaebecedeeefe0\"");
        ok &= has(j, "\"auth_alg_name\": \"HMAC-SHA-256-256\"");
        snprintf(want, sizeof want, "\"signed_len\": %zu", p.signed_len);
        ok &= has(j, want);
        strcpy(want, "\"R\": \"");
        hexstr(want + strlen(want), sakke_data, 257);
        strcat(want, "\"");
        ok &= has(j, want);
        if (maps[mi] == MS_MIKEY_MAP_GENERIC_ID) {
            ok &= has(j, "\"map_type_name\": \"GENERIC-ID\"");
            ok &= has(j, "\"spi\": \"1112131415161718\"");
            ok &= has(j, "\"seq\": 777");
        }
        CHECK(ok);
        free(j);
    }
    /* HDR alone: empty payload list */
    static ms_mikey_message m;
    memset(&m, 0, sizeof m);
    m.hdr.version = 1;
    size_t len;
    char *j = print(&m, true, &len);
    CHECK(json_valid(j, len) && has(j, "\"payloads\": []") && has(j, "\"cs\": []"));
    free(j);
}

static void test_errors(void)
{
    static ms_mikey_message m;
    memset(&m, 0, sizeof m);
    CHECK_ERR(ms_mikey_print(NULL, &m, false), MS_ERR_ARG);
    CHECK_ERR(ms_mikey_print(stdout, NULL, true), MS_ERR_ARG);
    /* a stream whose writes fail */
    FILE *f = fopen("/dev/full", "w");
    if (f != NULL) {
        build(&m, MS_MIKEY_MAP_SRTP_ID);
        CHECK_ERR(ms_mikey_print(f, &m, false), MS_ERR_IO);
        fclose(f);
    }
}

int main(void)
{
    init_data();
    test_validator();
    test_tree();
    test_dates();
    test_json();
    test_errors();
    return ms_test_finish();
}
