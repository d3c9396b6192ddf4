/*
 * The Annex D handler of `kms serve` (src/kms/server.c) driven directly, without
 * sockets: one check per refusal with its HTTP status and KmsError code (sealed, no
 * token, wrong token, another user's URI in the body, the URL or DeviceId, malformed
 * XML, an entity expansion attempt, a KrrList, another KMS's URI, a ClientReqUrl for
 * another resource, a replayed request, a stale Time, no key set for the period, an
 * audit log that cannot be written, GET, unknown resource), the happy paths (init,
 * keyprov now and for a given time, certcache) with the answers checked by the device's
 * own keys, the audit entry written before the answer, /metrics and /healthz. Also the
 * KmsRequest and the KmsCertCache/KmsError formats (src/kmsif/request.c): round trips
 * and their rejections.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "kms/roles.h"
#include "kms/server.h"
#include "kmsif/kmsif.h"
#include "mikeysakke/kms.h"
#include "mikeysakke/mikey.h"
#include "kms_fixture.h"
#include "testutil.h"

/* 2025-10-02T12:00:00Z in NTP seconds: key period 1509 (monthly). */
#define T0 (1759406400ull + 2208988800ull)
#define P0 1509u
#define ALICE "tel:+447700900123"
#define BOB "tel:+447700900456"
#define KMS_URI "kms.example.org"
#define PFX "/keymanagement/identity/v1"

static uint64_t clock_now = T0;
static uint64_t fixed_clock(void *ctx)
{
    return *(const uint64_t *)ctx;
}

static const uint8_t pass[] = "correct horse battery staple";
static char token_a[80], token_b[80];
static ms_device_keys keys_a;
static uint32_t next_us = 1;

/* ---- helpers ------------------------------------------------------------------------- */

static size_t request_xml(char *out, size_t cap, const char *user, const char *kms,
                          const char *device, const char *path, uint64_t t, uint32_t us)
{
    ms_kms_request r;
    memset(&r, 0, sizeof r);
    snprintf(r.user_uri, sizeof r.user_uri, "%s", user);
    snprintf(r.kms_uri, sizeof r.kms_uri, "%s", kms);
    snprintf(r.device_id, sizeof r.device_id, "%s", device ? device : "");
    snprintf(r.client_req_url, sizeof r.client_req_url, "https://kms.example.org%s", path);
    r.time = t;
    r.time_us = us;
    size_t len = 0;
    if (ms_kmsif_request_write(out, cap, &len, &r) != MS_OK)
        return 0;
    return len;
}

typedef struct answer {
    int status;
    char *body;
    size_t len;
} answer;

/* The Content-Type of the requests call() makes. */
static const char *content_type = "application/xml";

static answer call(ms_kms_server *s, const char *method, const char *path, const char *bearer,
                   const char *body, size_t body_len)
{
    ms_http_request req = {method, path, "192.0.2.1", bearer, (const uint8_t *)body, body_len,
                           NULL, content_type};
    ms_http_response resp;
    memset(&resp, 0, sizeof resp);
    ms_kms_server_handle(s, &req, &resp);
    answer a = {resp.status, resp.body, resp.body_len};
    return a;
}

/* POSTs a fresh, valid request of `user` for `path`, authenticated with bearer. */
static answer post(ms_kms_server *s, const char *path, const char *bearer, const char *user)
{
    char xml[4096];
    size_t n = request_xml(xml, sizeof xml, user, KMS_URI, NULL, path, clock_now, next_us++);
    return call(s, "POST", path, bearer, xml, n);
}

/* The answer is a KmsError with this status and ErrorCode. */
static void expect_error(answer a, int status, ms_err code, int line)
{
    ms_kms_reply *r = calloc(1, sizeof *r);
    char detail[200] = "";
    ms_err e = a.body ? ms_kmsif_reply_parse(r, a.body, a.len, detail, sizeof detail) : MS_ERR_ARG;
    if (a.status != status || e != MS_OK || r->error_code != (int)code) {
        fprintf(stderr, "line %d: status %d (want %d), parse %s %s, ErrorCode %d (want %d) %s\n",
                line, a.status, status, ms_errname(e), detail, r->error_code, (int)code,
                r->error_msg);
        ms_test_failed++;
    } else {
        ms_test_passed++;
    }
    free(r);
    free(a.body);
}
#define EXPECT_ERROR(a, status, code) expect_error((a), (status), (code), __LINE__)

static uint64_t audit_lines(const char *dir)
{
    char path[700];
    snprintf(path, sizeof path, "%s/audit.log", dir);
    FILE *f = fopen(path, "r");
    uint64_t n = 0;
    int c;
    while (f != NULL && (c = fgetc(f)) != EOF)
        n += c == '\n';
    if (f != NULL)
        fclose(f);
    return n;
}

static int audit_last_is_keyprov(const char *dir)
{
    char path[700], line[4096], last[4096] = "";
    snprintf(path, sizeof path, "%s/audit.log", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL)
        memcpy(last, line, sizeof last);
    fclose(f);
    return strstr(last, "keyprov") != NULL && strstr(last, "alice-1") != NULL &&
           strstr(last, "1509") != NULL;
}

/* ---- the formats ---------------------------------------------------------------------- */

static void test_request_format(void)
{
    char xml[4096], detail[200];
    ms_kms_request r, back;
    memset(&r, 0, sizeof r);
    snprintf(r.user_uri, sizeof r.user_uri, "sip:alice@example.org");
    snprintf(r.kms_uri, sizeof r.kms_uri, KMS_URI);
    snprintf(r.client_id, sizeof r.client_id, "client-7");
    snprintf(r.device_id, sizeof r.device_id, "alice-1");
    snprintf(r.client_req_url, sizeof r.client_req_url, "https://kms.example.org" PFX "/init");
    r.time = T0;
    r.time_us = 123456;
    size_t len = 0;
    CHECK_ERR(ms_kmsif_request_write(xml, sizeof xml, &len, &r), MS_OK);
    CHECK(strstr(xml, "<Time>2025-10-02T12:00:00.123456Z</Time>") != NULL);
    CHECK(strstr(xml, "Version=\"1.1.0\"") != NULL);
    CHECK_ERR(ms_kmsif_request_parse(&back, xml, len, detail, sizeof detail), MS_OK);
    CHECK(memcmp(&r, &back, sizeof r) == 0);
    /* size query */
    size_t need = 0;
    CHECK_ERR(ms_kmsif_request_write(NULL, 0, &need, &r), MS_ERR_BUFFER_TOO_SMALL);
    CHECK(need == len);
    /* writer refusals */
    ms_kms_request bad = r;
    bad.user_uri[0] = '\0';
    CHECK_ERR(ms_kmsif_request_write(xml, sizeof xml, &len, &bad), MS_ERR_ARG);
    bad = r;
    bad.time_us = 1000000;
    CHECK_ERR(ms_kmsif_request_write(xml, sizeof xml, &len, &bad), MS_ERR_ARG);
    bad = r;
    bad.device_id[2] = '\n';
    CHECK_ERR(ms_kmsif_request_write(xml, sizeof xml, &len, &bad), MS_ERR_ARG);

    /* a minimal document as a foreign client writes it, signed variant, fractions */
    const char *plain =
        "<KmsRequest xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\" Id=\"r1\">"
        "<UserUri>sip:a@b</UserUri><KmsUri>k</KmsUri><Time>2025-10-02T12:00:00.5Z</Time>"
        "<ClientReqUrl>http://k/keymanagement/identity/v1/init</ClientReqUrl>"
        "<x:Ext xmlns:x=\"urn:other\">1</x:Ext></KmsRequest>";
    CHECK_ERR(ms_kmsif_request_parse(&back, plain, strlen(plain), NULL, 0), MS_OK);
    CHECK(back.time == T0 && back.time_us == 500000 && back.device_id[0] == '\0');
    const char *signed_req =
        "<SignedKmsRequest xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\">"
        "<KmsRequest><UserUri>sip:a@b</UserUri><KmsUri>k</KmsUri>"
        "<Time>2025-10-02T12:00:00Z</Time><ClientReqUrl>u</ClientReqUrl></KmsRequest>"
        "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"/></SignedKmsRequest>";
    CHECK_ERR(ms_kmsif_request_parse(&back, signed_req, strlen(signed_req), NULL, 0), MS_OK);
    CHECK(strcmp(back.user_uri, "sip:a@b") == 0);

    /* parser refusals: each MS_ERR_XML and a wiped output */
    static const char *const bad_docs[] = {
        /* entity expansion (billion laughs) */
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;\">]>"
        "<KmsRequest xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"><UserUri>&b;</UserUri>"
        "</KmsRequest>",
        /* external entity */
        "<!DOCTYPE r SYSTEM \"file:///etc/passwd\"><KmsRequest/>",
        /* not well-formed */
        "<KmsRequest xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"><UserUri>x</KmsRequest>",
        /* wrong namespace */
        "<KmsRequest><UserUri>a</UserUri><KmsUri>k</KmsUri><Time>2025-10-02T12:00:00Z</Time>"
        "<ClientReqUrl>u</ClientReqUrl></KmsRequest>",
        /* missing Time */
        "<KmsRequest xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"><UserUri>a</UserUri>"
        "<KmsUri>k</KmsUri><ClientReqUrl>u</ClientReqUrl></KmsRequest>",
        /* out of order */
        "<KmsRequest xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"><KmsUri>k</KmsUri>"
        "<UserUri>a</UserUri><Time>2025-10-02T12:00:00Z</Time><ClientReqUrl>u</ClientReqUrl>"
        "</KmsRequest>",
        /* bad time */
        "<KmsRequest xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"><UserUri>a</UserUri>"
        "<KmsUri>k</KmsUri><Time>yesterday</Time><ClientReqUrl>u</ClientReqUrl></KmsRequest>",
        /* wrong version */
        "<KmsRequest xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\" Version=\"2.0\"><UserUri>a"
        "</UserUri><KmsUri>k</KmsUri><Time>2025-10-02T12:00:00Z</Time><ClientReqUrl>u"
        "</ClientReqUrl></KmsRequest>",
        /* KrrList (redirect) */
        "<KmsRequest xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"><UserUri>a</UserUri>"
        "<KmsUri>k</KmsUri><Time>2025-10-02T12:00:00Z</Time><ClientReqUrl>u</ClientReqUrl>"
        "<KrrList/></KmsRequest>",
        /* unknown 3GPP element */
        "<KmsRequest xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"><UserUri>a</UserUri>"
        "<KmsUri>k</KmsUri><Time>2025-10-02T12:00:00Z</Time><ClientReqUrl>u</ClientReqUrl>"
        "<Extra/></KmsRequest>",
        /* device ID too long */
        "<KmsRequest xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"><UserUri>a</UserUri>"
        "<KmsUri>k</KmsUri><Time>2025-10-02T12:00:00Z</Time><DeviceId>"
        "0123456789012345678901234567890123456789012345678901234567890123456789</DeviceId>"
        "<ClientReqUrl>u</ClientReqUrl></KmsRequest>",
        /* a KmsResponse is not a request */
        "<KmsResponse xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"/>",
        /* a comment (refused by the hardened reader) */
        "<KmsRequest xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"><!-- x --></KmsRequest>",
    };
    for (size_t i = 0; i < sizeof bad_docs / sizeof bad_docs[0]; i++) {
        memset(&back, 0x55, sizeof back);
        ms_err e = ms_kmsif_request_parse(&back, bad_docs[i], strlen(bad_docs[i]), detail,
                                          sizeof detail);
        if (e != MS_ERR_XML)
            fprintf(stderr, "bad request %zu: %s\n", i, ms_errname(e));
        CHECK_ERR(e, MS_ERR_XML);
        CHECK(back.user_uri[0] == 0 && back.time == 0);
    }
    /* oversized */
    size_t big = MS_KMSIF_MAX_XML + 1;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    memcpy(huge, "<KmsRequest", 11);
    CHECK_ERR(ms_kmsif_request_parse(&back, huge, big, NULL, 0), MS_ERR_XML);
    free(huge);
}

static void test_reply_format(const ms_kms_certificate *cert)
{
    ms_kms_reply *r = calloc(1, sizeof *r), *back = calloc(1, sizeof *back);
    char *xml = malloc(65536);
    size_t len = 0;
    snprintf(r->user_uri, sizeof r->user_uri, ALICE);
    snprintf(r->kms_uri, sizeof r->kms_uri, KMS_URI);
    snprintf(r->client_req_url, sizeof r->client_req_url, "u");
    r->time = T0;
    r->cache_num = 2;
    r->n_certs = 2;
    r->certs[0] = *cert;
    r->certs[1] = *cert;
    CHECK_ERR(ms_kmsif_reply_write(xml, 65536, &len, r), MS_OK);
    CHECK_ERR(ms_kmsif_reply_parse(back, xml, len, NULL, 0), MS_OK);
    CHECK(back->n_certs == 2 && back->cache_num == 2 && back->error_code == 0);
    CHECK(memcmp(&back->certs[1], cert, sizeof *cert) == 0);
    r->error_code = MS_ERR_NO_KEYS;
    snprintf(r->error_msg, sizeof r->error_msg, "no keys & <none>");
    CHECK_ERR(ms_kmsif_reply_write(xml, 65536, &len, r), MS_OK);
    CHECK(strstr(xml, "KmsCertCache") == NULL);
    CHECK_ERR(ms_kmsif_reply_parse(back, xml, len, NULL, 0), MS_OK);
    CHECK(back->error_code == MS_ERR_NO_KEYS && strcmp(back->error_msg, "no keys & <none>") == 0);
    /* neither message nor error, ErrorCode 0, or both: refused */
    const char *neither =
        "<KmsResponse xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"><UserUri/><KmsUri>k</KmsUri>"
        "<Time>2025-10-02T12:00:00Z</Time><ClientReqUrl/></KmsResponse>";
    CHECK_ERR(ms_kmsif_reply_parse(back, neither, strlen(neither), NULL, 0), MS_ERR_XML);
    const char *zero =
        "<KmsResponse xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"><UserUri/><KmsUri>k</KmsUri>"
        "<Time>2025-10-02T12:00:00Z</Time><ClientReqUrl/><KmsError><ErrorCode>0</ErrorCode>"
        "<ErrorMsg/></KmsError></KmsResponse>";
    CHECK_ERR(ms_kmsif_reply_parse(back, zero, strlen(zero), NULL, 0), MS_ERR_XML);
    const char *nan =
        "<KmsResponse xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"><UserUri/><KmsUri>k</KmsUri>"
        "<Time>2025-10-02T12:00:00Z</Time><ClientReqUrl/><KmsError><ErrorCode>x</ErrorCode>"
        "<ErrorMsg/></KmsError></KmsResponse>";
    CHECK_ERR(ms_kmsif_reply_parse(back, nan, strlen(nan), NULL, 0), MS_ERR_XML);
    r->error_code = 0;
    r->n_certs = MS_KMSIF_MAX_CERTS + 1;
    CHECK_ERR(ms_kmsif_reply_write(xml, 65536, &len, r), MS_ERR_ARG);
    free(xml);
    free(r);
    free(back);
}

/* ---- the handler ----------------------------------------------------------------------- */

static void setup(const char *dir, ms_kms **out)
{
    ms_kms_config cfg = {.kms_uri = KMS_URI,
                         .id_scheme = MS_MIKEY_ID_SCHEME_TEL_MONTHLY,
                         .first_time = T0,
                         .n_auditors = 1,
                         .approvals = 1};
    ms_test_roles roles = {.made = false};
    ms_test_kms_create(dir, &cfg, &roles, pass, sizeof pass - 1, NULL);
    ms_wipe(&roles, sizeof roles);
    CHECK_ERR(ms_kms_open(out, dir, NULL, NULL, 0), MS_OK);
    ms_kms_set_clock(*out, fixed_clock, &clock_now);
}

static void enrol_all(ms_kms *k)
{
    char *xml = malloc(MS_KMSIF_MAX_XML);
    size_t len = 0;
    ms_kms_certificate cert;
    CHECK_ERR(ms_kms_user_add(k, ALICE), MS_OK);
    CHECK_ERR(ms_kms_user_add(k, BOB), MS_OK);
    CHECK_ERR(ms_kms_device_enrol(k, xml, MS_KMSIF_MAX_XML, &len, ALICE, "alice-1"), MS_OK);
    CHECK_ERR(ms_kmsif_enrolment_parse(&keys_a, &cert, xml, len, NULL, 0), MS_OK);
    CHECK_ERR(ms_kms_device_enrol(k, xml, MS_KMSIF_MAX_XML, &len, BOB, "bob.1"), MS_OK);
    size_t issued = 0;
    CHECK_ERR(ms_kms_issue(k, &issued, P0, 1), MS_OK);
    CHECK(issued == 2);
    char t[MS_KMS_TOKEN_HEX + 1];
    CHECK_ERR(ms_kms_device_token(k, t, "alice-1"), MS_OK);
    snprintf(token_a, sizeof token_a, "alice-1.%s", t);
    CHECK_ERR(ms_kms_device_token(k, t, "bob.1"), MS_OK);
    snprintf(token_b, sizeof token_b, "bob.1.%s", t);
    CHECK_ERR(ms_kms_device_token(k, t, "nobody"), MS_ERR_DEVICE_UNKNOWN);
    free(xml);
    test_reply_format(&cert);
}

static void test_handler(const char *dir)
{
    ms_kms *k = NULL;
    setup(dir, &k);
    if (k == NULL)
        return;
    ms_kms_server *s = NULL;
    CHECK_ERR(ms_kms_server_new(&s, k), MS_OK);
    ms_kms_server_set_clock(s, fixed_clock, &clock_now);
    const char *status = NULL;
    char metrics[4096];

    /* sealed: everything 503, health says so */
    CHECK(!ms_kms_server_health(s, &status) && strcmp(status, "sealed") == 0);
    CHECK(ms_kms_server_metrics(s, metrics, sizeof metrics) > 0);
    CHECK(strstr(metrics, "mikeysakke_kms_sealed 1\n") != NULL);
    EXPECT_ERROR(post(s, PFX "/keyprov", "alice-1.00", ALICE), 503, MS_ERR_SEALED);
    EXPECT_ERROR(post(s, PFX "/init", NULL, ALICE), 503, MS_ERR_SEALED);

    CHECK_ERR(ms_kms_unseal_passphrase(k, pass, sizeof pass - 1), MS_OK);
    CHECK(ms_kms_server_health(s, &status) && strcmp(status, "unsealed") == 0);
    enrol_all(k);
    CHECK_ERR(ms_kms_device_auth(k, (char[65]){0}, (char[256]){0}, token_a), MS_OK);

    /* routing */
    EXPECT_ERROR(post(s, PFX "/nothing", token_a, ALICE), 404, MS_ERR_HTTP);
    EXPECT_ERROR(post(s, "/keymanagement/identity/v2/init", token_a, ALICE), 404, MS_ERR_HTTP);
    EXPECT_ERROR(call(s, "GET", PFX "/init", token_a, NULL, 0), 405, MS_ERR_HTTP);
    EXPECT_ERROR(post(s, PFX "/keyprov/tel%3A%2B447700900123/12", token_a, ALICE), 400,
                 MS_ERR_IDENTITY);
    EXPECT_ERROR(post(s, PFX "/keyprov/tel%3", token_a, ALICE), 400, MS_ERR_IDENTITY);
    EXPECT_ERROR(post(s, PFX "/keyprov/tel%00x", token_a, ALICE), 400, MS_ERR_IDENTITY);

    /* a KmsRequest is XML (TS 33.180 D.2): any other or no Content-Type is 415 */
    static const char *const not_xml[] = {"application/json", "text/plain", "text/xml",
                                          "application/xml-dtd", "", NULL};
    for (size_t i = 0; i < sizeof not_xml / sizeof not_xml[0]; i++) {
        content_type = not_xml[i];
        EXPECT_ERROR(post(s, PFX "/keyprov", token_a, ALICE), 415, MS_ERR_HTTP);
    }
    content_type = "Application/XML; charset=UTF-8";
    answer ok = post(s, PFX "/init", token_a, ALICE);
    CHECK(ok.status == 200);
    free(ok.body);
    content_type = "application/xml";

    /* credentials */
    EXPECT_ERROR(post(s, PFX "/keyprov", NULL, ALICE), 401, MS_ERR_UNAUTHORISED);
    char wrong[80];
    snprintf(wrong, sizeof wrong, "%s", token_a);
    wrong[strlen(wrong) - 1] ^= 1; /* '0'<->'1', 'a'<->'`' ... still one character off */
    EXPECT_ERROR(post(s, PFX "/keyprov", wrong, ALICE), 401, MS_ERR_UNAUTHORISED);
    snprintf(wrong, sizeof wrong, "nobody.%s", token_a + 8);
    EXPECT_ERROR(post(s, PFX "/keyprov", wrong, ALICE), 401, MS_ERR_UNAUTHORISED);
    snprintf(wrong, sizeof wrong, "bob.1.%s", token_a + 8); /* alice's token, bob's name */
    EXPECT_ERROR(post(s, PFX "/keyprov", wrong, BOB), 401, MS_ERR_UNAUTHORISED);
    EXPECT_ERROR(post(s, PFX "/keyprov", token_a + 8, ALICE), 401, MS_ERR_UNAUTHORISED);
    EXPECT_ERROR(post(s, PFX "/keyprov", "alice-1", ALICE), 401, MS_ERR_UNAUTHORISED);

    /* malformed bodies */
    const char *junk = "<KmsRequest";
    EXPECT_ERROR(call(s, "POST", PFX "/keyprov", token_a, junk, strlen(junk)), 400, MS_ERR_XML);
    EXPECT_ERROR(call(s, "POST", PFX "/keyprov", token_a, "", 0), 400, MS_ERR_XML);
    const char *laughs =
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
        "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
        "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
        "<KmsRequest xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"><UserUri>&lol3;</UserUri>"
        "<KmsUri>kms.example.org</KmsUri><Time>2025-10-02T12:00:00Z</Time>"
        "<ClientReqUrl>" PFX "/keyprov</ClientReqUrl></KmsRequest>";
    EXPECT_ERROR(call(s, "POST", PFX "/keyprov", token_a, laughs, strlen(laughs)), 400,
                 MS_ERR_XML);
    char xml[4096];
    size_t n = request_xml(xml, sizeof xml, ALICE, "kms.other.org", NULL, PFX "/keyprov",
                           clock_now, next_us++);
    EXPECT_ERROR(call(s, "POST", PFX "/keyprov", token_a, xml, n), 400, MS_ERR_XML);
    n = request_xml(xml, sizeof xml, ALICE, KMS_URI, NULL, PFX "/init", clock_now, next_us++);
    EXPECT_ERROR(call(s, "POST", PFX "/keyprov", token_a, xml, n), 400, MS_ERR_XML);

    /* another user's keys */
    EXPECT_ERROR(post(s, PFX "/keyprov", token_a, BOB), 403, MS_ERR_PACKAGE_DEVICE);
    EXPECT_ERROR(post(s, PFX "/keyprov/tel%3A%2B447700900456", token_a, ALICE), 403,
                 MS_ERR_PACKAGE_DEVICE);
    n = request_xml(xml, sizeof xml, ALICE, KMS_URI, "bob.1", PFX "/keyprov", clock_now,
                    next_us++);
    EXPECT_ERROR(call(s, "POST", PFX "/keyprov", token_a, xml, n), 403, MS_ERR_PACKAGE_DEVICE);

    /* replay and stale time */
    n = request_xml(xml, sizeof xml, ALICE, KMS_URI, "alice-1", PFX "/init", clock_now, 777);
    answer a = call(s, "POST", PFX "/init", token_a, xml, n);
    CHECK(a.status == 200);
    free(a.body);
    EXPECT_ERROR(call(s, "POST", PFX "/init", token_a, xml, n), 409, MS_ERR_MIKEY_REPLAY);
    /* the same Time from another device is not a replay */
    n = request_xml(xml, sizeof xml, BOB, KMS_URI, NULL, PFX "/init", clock_now, 777);
    a = call(s, "POST", PFX "/init", token_b, xml, n);
    CHECK(a.status == 200);
    free(a.body);
    n = request_xml(xml, sizeof xml, ALICE, KMS_URI, NULL, PFX "/init", clock_now - 301, 0);
    EXPECT_ERROR(call(s, "POST", PFX "/init", token_a, xml, n), 409, MS_ERR_MIKEY_TIMESTAMP);
    n = request_xml(xml, sizeof xml, ALICE, KMS_URI, NULL, PFX "/init", clock_now + 301, 0);
    EXPECT_ERROR(call(s, "POST", PFX "/init", token_a, xml, n), 409, MS_ERR_MIKEY_TIMESTAMP);

    /* init: KmsInit with the certificate, signed for alice's device */
    ms_key_package *pkg = calloc(1, sizeof *pkg);
    char detail[200];
    a = post(s, PFX "/init", token_a, ALICE);
    CHECK(a.status == 200);
    CHECK_ERR(ms_kmsif_package_parse(pkg, a.body, a.len, &keys_a, detail, sizeof detail), MS_OK);
    CHECK(pkg->n_keysets == 0 && strcmp(pkg->cert.kms_uri, KMS_URI) == 0);
    CHECK(strcmp(pkg->client_req_url, "https://kms.example.org" PFX "/init") == 0);
    free(a.body);

    /* keyprov now: the audit entry is there when the answer is */
    uint64_t before = audit_lines(dir);
    a = post(s, PFX "/keyprov", token_a, ALICE);
    CHECK(a.status == 200);
    CHECK(audit_lines(dir) == before + 1 && audit_last_is_keyprov(dir));
    CHECK_ERR(ms_kmsif_package_parse(pkg, a.body, a.len, &keys_a, detail, sizeof detail), MS_OK);
    CHECK(pkg->n_keysets == 1 && pkg->keysets[0].period_no == P0 &&
          strcmp(pkg->keysets[0].user_uri, ALICE) == 0);
    free(a.body);

    /* keyprov for a given time: this period, and the next (not issued: 404) */
    char path[256];
    snprintf(path, sizeof path, PFX "/keyprov/tel%%3A%%2B447700900123/%016llX",
             (unsigned long long)(clock_now << 32));
    a = post(s, path, token_a, ALICE);
    CHECK(a.status == 200);
    CHECK_ERR(ms_kmsif_package_parse(pkg, a.body, a.len, &keys_a, detail, sizeof detail), MS_OK);
    CHECK(pkg->n_keysets == 1 && pkg->keysets[0].period_no == P0);
    free(a.body);
    snprintf(path, sizeof path, PFX "/keyprov/tel%%3A%%2B447700900123/%016llX",
             (unsigned long long)((clock_now + 40 * 86400) << 32));
    before = audit_lines(dir);
    EXPECT_ERROR(post(s, path, token_a, ALICE), 404, MS_ERR_NO_KEYS);
    CHECK(audit_lines(dir) == before);
    snprintf(path, sizeof path, PFX "/keyprov/tel%%3A%%2B447700900123/%016llX",
             (unsigned long long)((clock_now + 20 * 365 * 86400ull) << 32));
    /* no master key generation for it */
    EXPECT_ERROR(post(s, path, token_a, ALICE), 404, MS_ERR_PERIOD);
    /* bob gets his own */
    a = post(s, PFX "/keyprov/tel%3A%2B447700900456", token_b, BOB);
    CHECK(a.status == 200);
    free(a.body);

    /* certcache */
    a = post(s, PFX "/certcache", token_a, ALICE);
    CHECK(a.status == 200);
    ms_kms_reply *r = calloc(1, sizeof *r);
    CHECK_ERR(ms_kmsif_reply_parse(r, a.body, a.len, NULL, 0), MS_OK);
    CHECK(r->n_certs == 1 && strcmp(r->certs[0].kms_uri, KMS_URI) == 0 && r->error_code == 0);
    free(r);
    free(a.body);
    a = post(s, PFX "/certcache/3", token_a, ALICE);
    CHECK(a.status == 200);
    free(a.body);

    /* suspended user: nothing */
    CHECK_ERR(ms_kms_user_suspend(k, ALICE), MS_OK);
    EXPECT_ERROR(post(s, PFX "/keyprov", token_a, ALICE), 403, MS_ERR_USER_SUSPENDED);
    CHECK_ERR(ms_kms_user_resume(k, ALICE), MS_OK);

    /* the audit log cannot grow: 503, nothing released */
    struct rlimit old_rl, rl;
    char logpath[700];
    snprintf(logpath, sizeof logpath, "%s/audit.log", dir);
    struct stat sb;
    CHECK(stat(logpath, &sb) == 0);
    getrlimit(RLIMIT_FSIZE, &old_rl);
    signal(SIGXFSZ, SIG_IGN);
    rl.rlim_cur = (rlim_t)sb.st_size;
    rl.rlim_max = old_rl.rlim_max;
    setrlimit(RLIMIT_FSIZE, &rl);
    EXPECT_ERROR(post(s, PFX "/keyprov", token_a, ALICE), 503, MS_ERR_AUDIT_LOG);
    setrlimit(RLIMIT_FSIZE, &old_rl);
    a = post(s, PFX "/keyprov", token_a, ALICE);
    CHECK(a.status == 200);
    free(a.body);

    /* metrics count what happened */
    ms_kms_server_metrics(s, metrics, sizeof metrics);
    CHECK(strstr(metrics, "mikeysakke_kms_sealed 0\n") != NULL);
    CHECK(strstr(metrics, "mikeysakke_kms_answers_total{resource=\"keyprov\"} 4\n") != NULL);
    CHECK(strstr(metrics, "mikeysakke_kms_refused_total{reason=\"unauthorised\"} 6\n") != NULL);
    CHECK(strstr(metrics, "mikeysakke_kms_refused_total{reason=\"replay\"} 3\n") != NULL);
    CHECK(strstr(metrics, "mikeysakke_kms_refused_total{reason=\"audit_log\"} 1\n") != NULL);
    /* the plumbing's own refusals get a KmsError body too */
    ms_http_request pr = {"POST", PFX "/keyprov", "192.0.2.1", NULL, NULL, 0, NULL, NULL};
    static const int plumbing[] = {413, 429, 405};
    static const ms_err plumbing_code[] = {MS_ERR_XML, MS_ERR_RATE_LIMITED, MS_ERR_HTTP};
    for (int i = 0; i < 3; i++) {
        ms_http_response resp = {plumbing[i], NULL, NULL, 0};
        ms_kms_server_error_body(s, &pr, &resp);
        answer pa = {resp.status, resp.body, resp.body_len};
        EXPECT_ERROR(pa, plumbing[i], plumbing_code[i]);
    }

    /* a past key period is not served (only an auditor's extraction reaches it), even
     * with its key set still in the store; the current and the next are */
    CHECK_ERR(ms_kms_issue(k, &(size_t){0}, P0 + 1, 1), MS_OK);
    clock_now = T0 + 31 * 86400ull; /* period P0 + 1 */
    snprintf(path, sizeof path, PFX "/keyprov/tel%%3A%%2B447700900123/%016llX",
             (unsigned long long)(T0 << 32));
    before = audit_lines(dir);
    EXPECT_ERROR(post(s, path, token_a, ALICE), 404, MS_ERR_PERIOD);
    CHECK(audit_lines(dir) == before);
    a = post(s, PFX "/keyprov", token_a, ALICE);
    CHECK(a.status == 200);
    CHECK_ERR(ms_kmsif_package_parse(pkg, a.body, a.len, &keys_a, detail, sizeof detail), MS_OK);
    CHECK(pkg->n_keysets == 1 && pkg->keysets[0].period_no == P0 + 1);
    free(a.body);
    clock_now = T0;
    snprintf(path, sizeof path, PFX "/keyprov/tel%%3A%%2B447700900123/%016llX",
             (unsigned long long)((T0 + 31 * 86400ull) << 32));
    a = post(s, path, token_a, ALICE); /* the next period, asked for in this one */
    CHECK(a.status == 200);
    free(a.body);
    snprintf(path, sizeof path, PFX "/keyprov/tel%%3A%%2B447700900123/%016llX",
             (unsigned long long)((T0 + 62 * 86400ull) << 32));
    EXPECT_ERROR(post(s, path, token_a, ALICE), 404, MS_ERR_PERIOD); /* two ahead */

    /* sealing takes effect at once */
    CHECK_ERR(ms_kms_seal(k), MS_OK);
    EXPECT_ERROR(post(s, PFX "/keyprov", token_a, ALICE), 503, MS_ERR_SEALED);
    free(pkg);
    ms_kms_server_free(s);
    ms_kms_close(k);
}

int main(void)
{
    char root[64];
    if (!ms_test_tmpdir(root, sizeof root, "server"))
        return 1;
    test_request_format();
    char dir[600];
    snprintf(dir, sizeof dir, "%s/kms", root);
    test_handler(dir);
    ms_test_rmtree(root);
    return ms_test_finish();
}
