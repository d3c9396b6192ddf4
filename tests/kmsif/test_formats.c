/*
 * KmsCertificate and enrolment documents: the exact XML written for a fixed certificate,
 * round trips, foreign (##other) elements, and each refusal; xs:dateTime <-> NTP seconds
 * with known values; base64 strictness.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "kmsif/kmsif.h"
#include "kmsif/xml_internal.h"
#include "testutil.h"

#define CAP (16 * 1024)

static void fixed_cert(ms_kms_certificate *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->kms_uri, "kms.example.org");
    strcpy(c->cert_uri, "kms.example.org/cert/1");
    strcpy(c->issuer, "Example & Co <KMS>");
    c->valid_from = 4004769600ULL; /* 2026-11-27T12:00:00Z */
    c->valid_to = 4036305600ULL;   /* 2027-11-27T12:00:00Z */
    c->user_id_format = 2;
    c->period_len = 2592000;
    c->period_offset = 3600;
    c->Z[0] = 0x04;
    memset(c->Z + 1, 0xab, sizeof c->Z - 1);
    c->kpak[0] = 0x04;
    memset(c->kpak + 1, 0x5c, sizeof c->kpak - 1);
    c->parameter_set = 1;
    c->root = true;
}

static char *repeat(const char *two, size_t n)
{
    char *s = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(s + 2 * i, two, 2);
    s[2 * n] = 0;
    return s;
}

static void test_certificate_golden(void)
{
    ms_kms_certificate c, got;
    fixed_cert(&c);
    char *z = repeat("AB", 256), *k = repeat("5C", 64);
    char *want = malloc(CAP), *xml = malloc(CAP), detail[256];
    snprintf(want, CAP,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<KmsCertificate xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\" Version=\"1.1.0\" "
             "Role=\"Root\">\n"
             "  <CertUri>kms.example.org/cert/1</CertUri>\n"
             "  <KmsUri>kms.example.org</KmsUri>\n"
             "  <Issuer>Example &amp; Co &lt;KMS&gt;</Issuer>\n"
             "  <ValidFrom>2026-11-27T12:00:00Z</ValidFrom>\n"
             "  <ValidTo>2027-11-27T12:00:00Z</ValidTo>\n"
             "  <UserIdFormat>2</UserIdFormat>\n"
             "  <UserKeyPeriod>2592000</UserKeyPeriod>\n"
             "  <UserKeyOffset>3600</UserKeyOffset>\n"
             "  <PubEncKey>04%s</PubEncKey>\n"
             "  <PubAuthKey>04%s</PubAuthKey>\n"
             "  <ParameterSet>1</ParameterSet>\n"
             "</KmsCertificate>\n",
             z, k);
    size_t len = 0, need = 0;
    CHECK_ERR(ms_kmsif_certificate_write(xml, CAP, &len, &c), MS_OK);
    CHECK(len == strlen(want));
    CHECK(strcmp(xml, want) == 0);
    if (strcmp(xml, want) != 0)
        fprintf(stderr, "got:\n%s\nwant:\n%s\n", xml, want);
    CHECK_ERR(ms_kmsif_certificate_write(NULL, 0, &need, &c), MS_ERR_BUFFER_TOO_SMALL);
    CHECK(need == len);
    CHECK_ERR(ms_kmsif_certificate_write(xml, len, &need, &c), MS_ERR_BUFFER_TOO_SMALL);

    CHECK_ERR(ms_kmsif_certificate_parse(&got, want, strlen(want), detail, sizeof detail),
              MS_OK);
    CHECK(memcmp(&got, &c, sizeof c) == 0);

    /* External role, optional fields absent, lower-case hex, whitespace around values,
     * a KmsDomainList, a foreign element, no ParameterSet (reads as 1). */
    snprintf(want, CAP,
             "<KmsCertificate xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\" Version=\"1.1.0\" "
             "Role=\"External\" Id=\"c1\" IsSecurityGateway=\"false\">"
             "<KmsUri> other.example </KmsUri><Revoked>true</Revoked>"
             "<UserIdFormat>1</UserIdFormat><UserKeyPeriod>60</UserKeyPeriod>"
             "<UserKeyOffset>0</UserKeyOffset><PubEncKey>04%s</PubEncKey>"
             "<PubAuthKey>\n04%s\n</PubAuthKey><KmsDomainList><KmsDomain>a.example</KmsDomain>"
             "<KmsDomain>b.example</KmsDomain></KmsDomainList>"
             "<x:Note xmlns:x=\"urn:example\"><x:Deep/></x:Note></KmsCertificate>",
             z, "5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c"
                "5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c");
    CHECK_ERR(ms_kmsif_certificate_parse(&got, want, strlen(want), detail, sizeof detail),
              MS_OK);
    CHECK(!got.root && got.revoked && got.user_id_format == 1 && got.period_len == 60);
    CHECK(strcmp(got.kms_uri, "other.example") == 0);
    CHECK(got.parameter_set == 1 && got.valid_from == 0 && got.cert_uri[0] == 0);
    CHECK_MEM(got.kpak, c.kpak, sizeof c.kpak);

    /* Written by us, read back: External and revoked survive. */
    c.root = false;
    c.revoked = true;
    CHECK_ERR(ms_kmsif_certificate_write(xml, CAP, &len, &c), MS_OK);
    CHECK_ERR(ms_kmsif_certificate_parse(&got, xml, len, detail, sizeof detail), MS_OK);
    CHECK(memcmp(&got, &c, sizeof c) == 0);

    /* Writer refusals. */
    ms_kms_certificate bad = c;
    bad.kms_uri[0] = 0;
    CHECK_ERR(ms_kmsif_certificate_write(xml, CAP, &len, &bad), MS_ERR_ARG);
    bad = c;
    bad.issuer[0] = '\n';
    CHECK_ERR(ms_kmsif_certificate_write(xml, CAP, &len, &bad), MS_ERR_ARG);
    bad = c;
    strcpy(bad.issuer, "\xff\xfe");
    CHECK_ERR(ms_kmsif_certificate_write(xml, CAP, &len, &bad), MS_ERR_ARG);
    bad = c;
    bad.valid_to = UINT64_MAX;
    CHECK_ERR(ms_kmsif_certificate_write(xml, CAP, &len, &bad), MS_ERR_ARG);
    free(z);
    free(k);
    free(want);
    free(xml);
}

/* Writes the fixed certificate, applies one edit, expects MS_ERR_XML naming `needle`. */
static void cert_reject(const char *from, const char *to, const char *needle)
{
    ms_kms_certificate c, got;
    fixed_cert(&c);
    char *xml = malloc(CAP), detail[256];
    size_t len = 0;
    if (ms_kmsif_certificate_write(xml, CAP, &len, &c) != MS_OK)
        abort();
    char *at = strstr(xml, from);
    if (at == NULL) {
        fprintf(stderr, "test bug: %s not found\n", from);
        abort();
    }
    size_t fl = strlen(from), tl = strlen(to);
    memmove(at + tl, at + fl, strlen(at + fl) + 1);
    memcpy(at, to, tl);
    ms_err e = ms_kmsif_certificate_parse(&got, xml, strlen(xml), detail, sizeof detail);
    CHECK_ERR(e, MS_ERR_XML);
    if (strstr(detail, needle) == NULL) {
        CHECK(!"detail does not name the problem");
        fprintf(stderr, "  detail \"%s\" lacks \"%s\"\n", detail, needle);
    }
    static const ms_kms_certificate zero;
    CHECK(memcmp(&got, &zero, sizeof got) == 0);
    free(xml);
}

static void test_certificate_rejections(void)
{
    cert_reject("Version=\"1.1.0\"", "Version=\"1.0.0\"", "Version");
    cert_reject("Role=\"Root\"", "Role=\"Boss\"", "Role");
    cert_reject("Role=\"Root\"", "", "Role");
    cert_reject("Role=\"Root\"", "Role=\"Root\" Colour=\"red\"", "Colour");
    cert_reject("Role=\"Root\"", "Role=\"Root\" IsSecurityGateway=\"true\"", "gateway");
    cert_reject("  <PubAuthKey>", "  <PubAuthKy>", "PubAuthKey");
    cert_reject("<PubEncKey>04", "<PubEncKey>", "PubEncKey");
    cert_reject("<PubAuthKey>04", "<PubAuthKey>0400", "PubAuthKey");
    cert_reject("<UserIdFormat>2", "<UserIdFormat>256", "UserIdFormat");
    cert_reject("<UserKeyPeriod>2592000", "<UserKeyPeriod>99999999999999999999",
                "UserKeyPeriod");
    cert_reject("<ValidFrom>2026-11-27T12:00:00Z", "<ValidFrom>2026-11-27 12:00:00",
                "ValidFrom");
    cert_reject("<Issuer>", "<Issuer><b/>", "only text");
    cert_reject("  <KmsUri>kms.example.org</KmsUri>\n", "", "KmsUri");
    cert_reject("<ParameterSet>1</ParameterSet>",
                "<ParameterSet>1</ParameterSet><ParameterSet>1</ParameterSet>", "ParameterSet");
    cert_reject("  <CertUri>kms.example.org/cert/1</CertUri>\n  <KmsUri>kms.example.org</KmsUri>",
                "  <KmsUri>kms.example.org</KmsUri>\n  <CertUri>kms.example.org/cert/1</CertUri>",
                "CertUri");
    cert_reject("</KmsCertificate>", "<KmsDomainList/></KmsCertificate>", "KmsDomain");
    cert_reject("<KmsUri>kms", "<KmsUri xmlns=\"urn:other\">kms", "KmsUri");
    cert_reject("  <KmsUri>", "  <!-- note --><KmsUri>", "comment");
    cert_reject("<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                "<!DOCTYPE KmsCertificate SYSTEM \"http://example.org/x.dtd\">", "DOCTYPE");
}

static void test_enrolment(void)
{
    ms_device_keys dev, got;
    ms_kms_certificate c, gc;
    memset(&dev, 0, sizeof dev);
    strcpy(dev.user_uri, "tel:+441234567890");
    strcpy(dev.device_id, "device-0001");
    ms_test_random(dev.trk, sizeof dev.trk);
    ms_test_random(dev.ink, sizeof dev.ink);
    dev.trk_id = 0xDEADBEEF;
    dev.ink_id = 0x00C0FFEE;
    fixed_cert(&c);
    char *xml = malloc(CAP), detail[256];
    size_t len = 0;
    CHECK_ERR(ms_kmsif_enrolment_write(xml, CAP, &len, &dev, &c), MS_OK);
    CHECK(strstr(xml, "<Enrolment xmlns=\"urn:mikeysakke:kms:1\" Version=\"1\">") != NULL);
    CHECK(strstr(xml, "<TrK-ID>DEADBEEF</TrK-ID>") != NULL);
    CHECK(strstr(xml, "<InK-ID>00C0FFEE</InK-ID>") != NULL);
    CHECK(strstr(xml, "<KmsCertificate xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"") != NULL);
    CHECK_ERR(ms_kmsif_enrolment_parse(&got, &gc, xml, len, detail, sizeof detail), MS_OK);
    CHECK(memcmp(&got, &dev, sizeof dev) == 0);
    CHECK(memcmp(&gc, &c, sizeof c) == 0);

    /* Refusals: each leaves both outputs zero. */
    static const struct {
        const char *from, *to;
    } edits[] = {
        {"<TrK>", "<TrK>00"},                                     /* 33-octet TrK */
        {"<InK-ID>00C0FFEE", "<InK-ID>C0FFEE"},                   /* 3-octet id */
        {"  <InK>", "  <Ink>"},                                    /* unknown element */
        {"urn:mikeysakke:kms:1", "urn:mikeysakke:kms:2"},         /* wrong namespace */
        {"Version=\"1\"", "Version=\"2\""},                       /* unknown version */
        {"<DeviceId>device-0001</DeviceId>", ""},                 /* missing */
        {"</Enrolment>", "<UserUri>x</UserUri></Enrolment>"},     /* extra */
        {"<PubAuthKey>04", "<PubAuthKey>"},                       /* certificate inside */
    };
    char *e = malloc(CAP);
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        memcpy(e, xml, len + 1);
        char *at = strstr(e, edits[i].from);
        if (at == NULL)
            abort();
        size_t fl = strlen(edits[i].from), tl = strlen(edits[i].to);
        memmove(at + tl, at + fl, strlen(at + fl) + 1);
        memcpy(at, edits[i].to, tl);
        memset(&got, 0x55, sizeof got);
        CHECK_ERR(ms_kmsif_enrolment_parse(&got, &gc, e, strlen(e), detail, sizeof detail),
                  MS_ERR_XML);
        static const ms_device_keys zero;
        CHECK(memcmp(&got, &zero, sizeof got) == 0);
        CHECK(detail[0] != 0);
    }
    CHECK_ERR(ms_kmsif_enrolment_parse(&got, &gc, "<a/>", 4, detail, sizeof detail),
              MS_ERR_XML);
    CHECK_ERR(ms_kmsif_enrolment_parse(NULL, &gc, xml, len, detail, sizeof detail), MS_ERR_ARG);
    ms_device_keys bad = dev;
    bad.device_id[0] = 0;
    CHECK_ERR(ms_kmsif_enrolment_write(xml, CAP, &len, &bad, &c), MS_ERR_ARG);
    CHECK_ERR(ms_kmsif_enrolment_write(NULL, 0, &len, &dev, &c), MS_ERR_BUFFER_TOO_SMALL);
    CHECK(len > 0);
    free(e);
    free(xml);
}

static void test_times(void)
{
    static const struct {
        const char *s;
        uint64_t ntp;
    } ok[] = {
        {"1900-01-01T00:00:00Z", 0},
        {"1972-01-01T00:00:00Z", 2272060800ULL},
        {"2000-02-29T23:59:59Z", 3160857599ULL},
        {"2026-11-27T12:00:00Z", 4004769600ULL},
        {"2036-02-07T06:28:16Z", 4294967296ULL}, /* NTP era 1 starts */
        {"9999-12-31T23:59:59Z", 255611289599ULL},
    };
    char buf[32];
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        CHECK(ms_time_parse(ok[i].s, &v, NULL) && v == ok[i].ntp);
        CHECK(ms_time_format(buf, ok[i].ntp) && strcmp(buf, ok[i].s) == 0);
    }
    /* Other spellings of the same instant. */
    CHECK(ms_time_parse("2026-11-27T12:00:00", &v, NULL) && v == 4004769600ULL);
    CHECK(ms_time_parse("2026-11-27T12:00:00.999Z", &v, NULL) && v == 4004769600ULL);
    CHECK(ms_time_parse("2026-11-27T13:30:00+01:30", &v, NULL) && v == 4004769600ULL);
    CHECK(ms_time_parse("2026-11-27T10:00:00-02:00", &v, NULL) && v == 4004769600ULL);
    CHECK(ms_time_parse("2026-11-27T12:00:00+00:00", &v, NULL) && v == 4004769600ULL);
    /* Every day of a leap and a common year round-trips. */
    bool all = true;
    for (uint64_t d = 0; d < 2 * 366; d++) {
        uint64_t t = 3155673600ULL + d * 86400 + 3723; /* from 2000-01-01 */
        all = all && ms_time_format(buf, t) && ms_time_parse(buf, &v, NULL) && v == t;
    }
    CHECK(all);
    static const char *const bad[] = {
        "1899-12-31T23:59:59Z", "2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-11-27T24:00:00Z",
        "2026-11-27T12:60:00Z", "2026-11-27T12:00:60Z", "2026-11-27 12:00:00Z",
        "2026-11-27T12:00:00z", "2026-11-27T12:00:00+1:00", "2026-11-27T12:00:00+15:00",
        "2026-11-27T12:00:00.Z", "2026-11-27T12:00Z", "12026-11-27T12:00:00Z",
        "2026-11-27T12:00:00ZZ", "1900-01-01T00:00:00+00:01", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool r = ms_time_parse(bad[i], &v, NULL);
        CHECK(!r);
        if (r)
            fprintf(stderr, "  accepted %s\n", bad[i]);
    }
    CHECK(!ms_time_format(buf, 255611289600ULL)); /* year 10000 */
}

static void test_base64(void)
{
    uint8_t out[8];
    size_t n = 0;
    char enc[16];
    CHECK(ms_b64_encode(enc, (const uint8_t *)"foob", 4) == 8 && strcmp(enc, "Zm9vYg==") == 0);
    CHECK(ms_b64_decode(out, sizeof out, &n, "Zm9vYmFy", 8) && n == 6 &&
          memcmp(out, "foobar", 6) == 0);
    CHECK(ms_b64_decode(out, sizeof out, &n, "Zm8=", 4) && n == 2);
    CHECK(!ms_b64_decode(out, sizeof out, &n, "Zm9=", 4));  /* non-zero unused bits */
    CHECK(!ms_b64_decode(out, sizeof out, &n, "Zm=8", 4));  /* padding inside */
    CHECK(!ms_b64_decode(out, sizeof out, &n, "Zm8", 3));   /* not a multiple of 4 */
    CHECK(!ms_b64_decode(out, sizeof out, &n, "Zm 8", 4));  /* space */
    CHECK(!ms_b64_decode(out, sizeof out, &n, "=AAA", 4));
    CHECK(!ms_b64_decode(out, 5, &n, "Zm9vYmFy", 8));       /* too long for cap */
}

/* The bearer token against HMAC-SHA256 computed here, and its limits. */
static void test_device_token(void)
{
    uint8_t ink[32];
    for (size_t i = 0; i < sizeof ink; i++)
        ink[i] = (uint8_t)(i * 7 + 1);
    static const char msg[] = "mikeysakke-device-token:alice-phone";
    uint8_t mac[32];
    size_t mlen = 0;
    CHECK(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, ink, sizeof ink, (const uint8_t *)msg,
                    strlen(msg), mac, sizeof mac, &mlen) != NULL && mlen == 32);
    char want[65];
    for (size_t i = 0; i < 32; i++)
        snprintf(want + 2 * i, 3, "%02x", mac[i]);
    char tok[MS_KMSIF_TOKEN_HEX + 1];
    CHECK_ERR(ms_kmsif_device_token(tok, ink, "alice-phone"), MS_OK);
    CHECK(strcmp(tok, want) == 0);
    CHECK_ERR(ms_kmsif_device_token(tok, ink, "bob-phone"), MS_OK);
    CHECK(strcmp(tok, want) != 0);
    char long_id[MS_KMSIF_DEVICE_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    CHECK_ERR(ms_kmsif_device_token(tok, ink, long_id), MS_ERR_ARG);
    CHECK_ERR(ms_kmsif_device_token(tok, ink, NULL), MS_ERR_ARG);
}

int main(void)
{
    ms_test_seed();
    test_certificate_golden();
    test_certificate_rejections();
    test_enrolment();
    test_times();
    test_base64();
    test_device_token();
    return ms_test_finish();
}
