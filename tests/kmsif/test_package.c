/*
 * Key packages (SignedKmsResponse with KmsKeyProv or KmsInit): round trips, and every
 * refusal with its exact code, in the reader's order - structure (MS_ERR_XML: malformed,
 * oversized, DOCTYPE / entity expansion, external entity, wrong namespace, missing,
 * extra or out-of-order element, bad hex length, wrong algorithm URI, unencrypted key),
 * signature (tampered text, removed signature, wrong InK), addressee (another device,
 * user, TrK-ID or InK-ID) and decryption (wrong TrK, corrupted CipherValue re-signed).
 */
#include <stdlib.h>
#include <string.h>

#include "kmsif/kmsif.h"
#include "kmsif/xml_internal.h"
#include "testutil.h"

#define CAP (64 * 1024)

static ms_device_keys dev;
static ms_key_package pkg;

static void make_cert(ms_kms_certificate *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->kms_uri, "kms.example.org");
    strcpy(c->cert_uri, "kms.example.org/cert/1");
    strcpy(c->issuer, "Example Org KMS");
    c->valid_from = 4004769600ULL; /* 2026-11-27T12:00:00Z */
    c->valid_to = 4004769600ULL + 365ULL * 86400;
    c->user_id_format = 2;
    c->period_len = 2592000;
    c->period_offset = 0;
    ms_test_random(c->Z, sizeof c->Z);
    c->Z[0] = 0x04;
    ms_test_random(c->kpak, sizeof c->kpak);
    c->kpak[0] = 0x04;
    c->parameter_set = 1;
    c->root = true;
}

static void make_fixture(void)
{
    memset(&dev, 0, sizeof dev);
    strcpy(dev.user_uri, "sip:alice@example.org");
    strcpy(dev.device_id, "phone-1 <A&B>");
    ms_test_random(dev.trk, sizeof dev.trk);
    ms_test_random(dev.ink, sizeof dev.ink);
    dev.trk_id = 0x1A2B3C4D;
    dev.ink_id = 0x00000007;

    memset(&pkg, 0, sizeof pkg);
    strcpy(pkg.user_uri, dev.user_uri);
    strcpy(pkg.kms_uri, "kms.example.org");
    strcpy(pkg.device_id, dev.device_id);
    pkg.time = 4004769600ULL + 42;
    strcpy(pkg.client_req_url, "https://kms.example.org/keymanagement/identity/v1/keyprov");
    make_cert(&pkg.cert);
    pkg.n_keysets = 2;
    for (size_t i = 0; i < 2; i++) {
        ms_kmsif_keyset *k = &pkg.keysets[i];
        strcpy(k->kms_uri, "kms.example.org");
        strcpy(k->user_uri, dev.user_uri);
        ms_test_random(k->user_id, 32);
        k->user_id_len = 32;
        k->period_no = 1545 + i;
        k->valid_from = 4004769600ULL + i * 2592000;
        k->valid_to = k->valid_from + 2592000 - 1;
        ms_test_random(k->rsk, sizeof k->rsk);
        k->rsk[0] = 0x04;
        ms_test_random(k->ssk, sizeof k->ssk);
        ms_test_random(k->pvt, sizeof k->pvt);
        k->pvt[0] = 0x04;
    }
    pkg.keysets[1].revoked = true;
}

static char *write_pkg(const ms_key_package *p, size_t *len)
{
    char *xml = malloc(CAP);
    if (xml == NULL || ms_kmsif_package_write(xml, CAP, len, p, &dev, &ms_test_rng) != MS_OK)
        abort();
    return xml;
}

/* Replaces the first `from` in xml (in place, CAP bytes) by `to`; aborts if absent. */
static size_t replace(char *xml, const char *from, const char *to)
{
    char *at = strstr(xml, from);
    if (at == NULL) {
        fprintf(stderr, "test bug: \"%s\" not in the document\n", from);
        abort();
    }
    size_t fl = strlen(from), tl = strlen(to), rest = strlen(at + fl);
    if (strlen(xml) - fl + tl >= CAP)
        abort();
    memmove(at + tl, at + fl, rest + 1);
    memcpy(at, to, tl);
    return strlen(xml);
}

/* Removes the text from the first `from` through the end of the following `until`. */
static size_t cut(char *xml, const char *from, const char *until)
{
    char *a = strstr(xml, from);
    char *b = a != NULL ? strstr(a, until) : NULL;
    if (b == NULL)
        abort();
    b += strlen(until);
    memmove(a, b, strlen(b) + 1);
    return strlen(xml);
}

/* Changes the base64 character `off` places after the first `tag` to another one. */
static void flip_after(char *xml, const char *tag, size_t off)
{
    char *at = strstr(xml, tag);
    if (at == NULL)
        abort();
    at += strlen(tag) + off;
    *at = *at == 'A' ? 'B' : 'A';
}

static ms_err parse(const char *xml, size_t len, const ms_device_keys *d, char *detail)
{
    static ms_key_package got;
    ms_err e = ms_kmsif_package_parse(&got, xml, len, d, detail, 256);
    if (e != MS_OK) {
        /* Nothing is left behind on failure. */
        static const ms_key_package zero;
        CHECK(memcmp(&got, &zero, sizeof got) == 0);
        CHECK(detail[0] != 0);
    }
    return e;
}

static void check_same(const ms_key_package *a, const ms_key_package *b)
{
    CHECK(strcmp(a->user_uri, b->user_uri) == 0);
    CHECK(strcmp(a->kms_uri, b->kms_uri) == 0);
    CHECK(strcmp(a->device_id, b->device_id) == 0);
    CHECK(strcmp(a->client_req_url, b->client_req_url) == 0);
    CHECK(a->time == b->time);
    CHECK(memcmp(&a->cert, &b->cert, sizeof a->cert) == 0);
    CHECK(a->n_keysets == b->n_keysets);
    for (size_t i = 0; i < a->n_keysets && i < b->n_keysets; i++)
        CHECK(memcmp(&a->keysets[i], &b->keysets[i], sizeof a->keysets[i]) == 0);
}

static void test_round_trips(void)
{
    size_t len = 0, need = 0;
    char *xml = write_pkg(&pkg, &len);
    static ms_key_package got;
    char detail[256];
    CHECK(len == strlen(xml));
    CHECK_ERR(ms_kmsif_package_parse(&got, xml, len, &dev, detail, sizeof detail), MS_OK);
    check_same(&got, &pkg);
    /* The device id needed escaping; the secret keys are not there in clear. */
    CHECK(strstr(xml, "phone-1 &lt;A&amp;B&gt;") != NULL);
    char hex[80];
    ms_hex_encode_upper(hex, pkg.keysets[0].ssk, 32);
    CHECK(strstr(xml, hex) == NULL);
    CHECK(strstr(xml, "xsi:type=\"EncKeyContentType\"") != NULL);
    CHECK(strstr(xml, "<Time>2026-11-27T12:00:42Z</Time>") != NULL);
    CHECK(strstr(xml, "Algorithm=\"http://www.w3.org/2009/xmlenc11#kw-aes-256-pad\"") != NULL);
    CHECK(strstr(xml, "<ds:KeyName>1A2B3C4D</ds:KeyName>") != NULL);
    CHECK(strstr(xml, "<ds:KeyName>00000007</ds:KeyName>") != NULL);

    /* Size query and a buffer one short (the NUL is counted). */
    CHECK_ERR(ms_kmsif_package_write(NULL, 0, &need, &pkg, &dev, &ms_test_rng),
              MS_ERR_BUFFER_TOO_SMALL);
    CHECK(need == len);
    CHECK_ERR(ms_kmsif_package_write(xml, len, &need, &pkg, &dev, &ms_test_rng),
              MS_ERR_BUFFER_TOO_SMALL);

    /* KmsInit: no key sets, the certificate in KmsInit. */
    ms_key_package init = pkg;
    init.n_keysets = 0;
    memset(init.keysets, 0, sizeof init.keysets);
    free(xml);
    xml = write_pkg(&init, &len);
    CHECK(strstr(xml, "<KmsInit Version=\"1.0.0\">") != NULL);
    CHECK(strstr(xml, "mskms:Certificate") == NULL);
    CHECK_ERR(ms_kmsif_package_parse(&got, xml, len, &dev, detail, sizeof detail), MS_OK);
    check_same(&got, &init);

    /* Four key sets, the most a package may carry, and optional fields left out. */
    ms_key_package four = pkg;
    four.n_keysets = 4;
    four.keysets[2] = pkg.keysets[0];
    four.keysets[3] = pkg.keysets[1];
    four.keysets[3].valid_from = four.keysets[3].valid_to = 0;
    memset(four.client_req_url, 0, sizeof four.client_req_url);
    memset(four.cert.cert_uri, 0, sizeof four.cert.cert_uri);
    memset(four.cert.issuer, 0, sizeof four.cert.issuer);
    four.cert.valid_from = four.cert.valid_to = 0;
    four.cert.root = false;
    free(xml);
    xml = write_pkg(&four, &len);
    CHECK_ERR(ms_kmsif_package_parse(&got, xml, len, &dev, detail, sizeof detail), MS_OK);
    check_same(&got, &four);
    /* A fifth is refused by the writer and by the reader. */
    four.n_keysets = 5;
    CHECK_ERR(ms_kmsif_package_write(xml, CAP, &len, &four, &dev, NULL), MS_ERR_ARG);
    {
        char *ks = strstr(xml, "        <KmsKeySet");
        char *ke = strstr(xml, "</KmsKeySet>") + strlen("</KmsKeySet>");
        char *block = strndup(ks, (size_t)(ke - ks));
        char *five = malloc(CAP), *signed5 = malloc(CAP);
        size_t l5 = 0;
        memcpy(five, xml, strlen(xml) + 1);
        char *at = strstr(five, "\n      </KmsKeyProv>");
        size_t bl = strlen(block);
        memmove(at + 1 + bl, at, strlen(at) + 1);
        at[0] = '\n';
        memcpy(at + 1, block, bl);
        CHECK_ERR(ms_kmsif_package_resign(signed5, CAP, &l5, five, strlen(five), dev.ink),
                  MS_OK);
        CHECK_ERR(ms_kmsif_package_parse(&got, signed5, l5, &dev, detail, sizeof detail),
                  MS_ERR_XML);
        CHECK(strstr(detail, "more than 4") != NULL);
        free(block);
        free(five);
        free(signed5);
    }
    free(xml);
}

/* Each structural defect is MS_ERR_XML, whatever the keys. */
static void expect_xml(const char *what, char *xml, size_t len)
{
    char detail[256];
    ms_err e = parse(xml, len, &dev, detail);
    if (e != MS_ERR_XML || getenv("MS_TEST_VERBOSE") != NULL)
        fprintf(stderr, "  case: %s (%s: %s)\n", what, ms_errname(e), detail);
    CHECK_ERR(e, MS_ERR_XML);
}

static void test_structure(void)
{
    size_t len0 = 0, len;
    char *orig = write_pkg(&pkg, &len0);
    char *xml = malloc(CAP);
    char detail[256];
#define FRESH() (memcpy(xml, orig, len0 + 1), len = len0)

    FRESH();
    expect_xml("truncated", xml, len / 2);
    FRESH();
    len = replace(xml, "</UserUri>", "</UserUr>");
    expect_xml("mismatched tag", xml, len);
    CHECK(parse(xml, len, &dev, detail) == MS_ERR_XML && strstr(detail, "line 4") != NULL);

    /* Found by fuzz_key_package: a namespace name that is not an absolute URI parses,
     * but exclusive C14N refuses it; that is the document's fault (MS_ERR_XML). */
    FRESH();
    len = replace(xml, "<KmsResponse ", "<KmsResponse xmlns:rel=\"not/absolute\" ");
    expect_xml("relative namespace URI", xml, len);
    CHECK(parse(xml, len, &dev, detail) == MS_ERR_XML && strstr(detail, "C14N") != NULL);

    /* Oversized: valid XML padded with whitespace past the limit. */
    {
        size_t big = MS_KMSIF_MAX_XML + 1;
        char *huge = malloc(big + 1);
        memcpy(huge, orig, len0);
        memset(huge + len0, ' ', big - len0);
        huge[big] = 0;
        expect_xml("oversized", huge, big);
        free(huge);
    }

    static const char laughs[] =
        "<?xml version=\"1.0\"?>\n"
        "<!DOCTYPE lolz [<!ENTITY lol \"lol\">"
        "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
        "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">"
        "<!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">]>\n"
        "<SignedKmsResponse xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\">&lol4;"
        "</SignedKmsResponse>\n";
    memcpy(xml, laughs, sizeof laughs);
    expect_xml("billion laughs", xml, strlen(xml));
    CHECK(parse(xml, strlen(xml), &dev, detail) == MS_ERR_XML && strstr(detail, "DOCTYPE"));

    static const char xxe[] =
        "<?xml version=\"1.0\"?>\n"
        "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n"
        "<SignedKmsResponse xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\">&x;"
        "</SignedKmsResponse>\n";
    memcpy(xml, xxe, sizeof xxe);
    expect_xml("external entity", xml, strlen(xml));

    /* An undeclared entity without any DTD is simply malformed. */
    FRESH();
    len = replace(xml, "<UserUri>sip:", "<UserUri>&x;sip:");
    expect_xml("undeclared entity", xml, len);

    /* UTF-16 cannot smuggle a DOCTYPE past the scan. */
    {
        const char *s = "<!DOCTYPE a>";
        size_t n = strlen(s);
        for (size_t i = 0; i < n; i++) {
            xml[2 * i] = s[i];
            xml[2 * i + 1] = 0;
        }
        expect_xml("UTF-16", xml, 2 * n);
    }

    /* Each row: a replacement (or, with cut, the text from `from` through the end of the
     * following `to` removed), refused as MS_ERR_XML, the detail naming `names` if set. */
    static const struct {
        const char *what, *from, *to, *names;
        bool cut;
    } defects[] = {
        {"wrong namespace",
         "xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"",
         "xmlns=\"urn:3gpp:ns:mcsecKMSInterface:2.0\"",
         NULL, false},
        {"missing ClientReqUrl", "<ClientReqUrl>", "</ClientReqUrl>", "ClientReqUrl", true},
        {"missing UserPubTokenPVT", "<UserPubTokenPVT>", "</UserPubTokenPVT>", NULL, true},
        {"extra KmsUri",
         "<KmsUri>kms.example.org</KmsUri>",
         "<KmsUri>kms.example.org</KmsUri><KmsUri>kms.example.org</KmsUri>",
         NULL, false},
        {"extra element in the 3GPP namespace",
         "</KmsMessage>",
         "</KmsMessage><Surprise/>",
         NULL, false},
        {"unknown element in our namespace",
         "</KmsMessage>",
         "</KmsMessage><mskms:Surprise/>",
         NULL, false},
        {"second DeviceId",
         "</KmsMessage>",
         "</KmsMessage><mskms:DeviceId>x</mskms:DeviceId>",
         NULL, false},
        {"missing DeviceId", "<mskms:DeviceId>", "</mskms:DeviceId>", NULL, true},
        {"missing certificate", "<mskms:Certificate>", "</mskms:Certificate>", NULL, true},
        {"UserUri and KmsUri swapped",
         "<UserUri>sip:alice@example.org</UserUri>\n    <KmsUri>kms.example.org</KmsUri>",
         "<KmsUri>kms.example.org</KmsUri>\n    <UserUri>sip:alice@example.org</UserUri>",
         NULL, false},
        {"KmsId after ClientReqUrl", "<KmsMessage>", "<KmsId>x</KmsId><KmsMessage>", NULL, false},
        {"PVT of 64 octets", "<UserPubTokenPVT>04", "<UserPubTokenPVT>", NULL, false},
        {"PVT with a non-hex digit", "<UserPubTokenPVT>04", "<UserPubTokenPVT>0Z", NULL, false},
        {"PubEncKey of 258 octets", "<PubEncKey>04", "<PubEncKey>0400", NULL, false},
        {"negative KeyPeriodNo", "<KeyPeriodNo>1545", "<KeyPeriodNo>-1545", NULL, false},
        {"31 November", "<Time>2026-11-27", "<Time>2026-11-31", NULL, false},
        {"RFC 3394 algorithm URI",
         "xmlenc11#kw-aes-256-pad",
         "xmlenc#kw-aes256",
         "EncryptionMethod", false},
        {"HMAC-SHA1", "xmldsig-more#hmac-sha256", "xmldsig#hmac-sha1", NULL, false},
        {"canonicalisation with comments",
         "xml-exc-c14n#\"/>\n      <ds:SignatureMethod",
         "xml-exc-c14n#WithComments\"/>\n      <ds:SignatureMethod",
         NULL, false},
        {"truncated HMAC",
         "xmldsig-more#hmac-sha256\"/>",
         "xmldsig-more#hmac-sha256\"><ds:HMACOutputLength>80</ds:HMACOutputLength>"
         "</ds:SignatureMethod>",
         NULL, false},
        {"Reference to another element", "URI=\"#KmsResponse-", "URI=\"#Other-", NULL, false},
        {"KmsKeyProv version",
         "<KmsKeyProv Version=\"1.0.0\">",
         "<KmsKeyProv Version=\"1.1.0\">",
         NULL, false},
        {"comment", "<UserUri>", "<!-- hi --><UserUri>", NULL, false},
        {"processing instruction", "<UserUri>", "<?pi x?><UserUri>", NULL, false},
        {"text between elements", "<UserUri>", "stray text<UserUri>", NULL, false},
    };
    for (size_t i = 0; i < sizeof defects / sizeof defects[0]; i++) {
        FRESH();
        len = defects[i].cut ? cut(xml, defects[i].from, defects[i].to)
                             : replace(xml, defects[i].from, defects[i].to);
        expect_xml(defects[i].what, xml, len);
        if (defects[i].names != NULL)
            CHECK(parse(xml, len, &dev, detail) == MS_ERR_XML &&
                  strstr(detail, defects[i].names) != NULL);
    }

    /* A key sent in clear (KeyContentType) is refused: we only accept encrypted keys. */
    FRESH();
    len = cut(xml, "<UserSigningKeySSK", "</UserSigningKeySSK>");
    char plain[200];
    char hex[65];
    ms_hex_encode_upper(hex, pkg.keysets[0].ssk, 32);
    snprintf(plain, sizeof plain, "<UserSigningKeySSK>%s</UserSigningKeySSK><UserPubTokenPVT>",
             hex);
    len = replace(xml, "<UserPubTokenPVT>", plain);
    expect_xml("SSK in clear", xml, len);
    CHECK(parse(xml, len, &dev, detail) == MS_ERR_XML && strstr(detail, "in clear") != NULL);

    FRESH();
    len = replace(xml, "<xenc:CipherValue>", "<xenc:CipherValue>AAAA");
    expect_xml("CipherValue of the wrong length", xml, len);

    FRESH();
    len = replace(xml, "<xenc:CipherValue>", "<xenc:CipherValue>*");
    expect_xml("CipherValue not base64", xml, len);

    /* Deep nesting inside a foreign element. */
    FRESH();
    {
        char deep[2048] = "";
        for (int i = 0; i < 40; i++)
            strcat(deep, "<f:a xmlns:f=\"urn:x\">");
        for (int i = 0; i < 40; i++)
            strcat(deep, "</f:a>");
        len = replace(xml, "</KmsResponse>", "");
        len = replace(xml, "  <ds:Signature", "</KmsResponse>\n  <ds:Signature");
        len = replace(xml, "</KmsResponse>", deep);
        len = replace(xml, "  <ds:Signature", "</KmsResponse>\n  <ds:Signature");
        expect_xml("nesting", xml, len);
    }

    /* The wrong root. */
    memcpy(xml, "<KmsCertificate xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\"/>", 60);
    expect_xml("not a response", xml, strlen(xml));
    free(xml);
    free(orig);
#undef FRESH
}

static void test_signature_and_addressee(void)
{
    size_t len0 = 0, len;
    char *orig = write_pkg(&pkg, &len0);
    char *xml = malloc(CAP), *re = malloc(CAP);
    char detail[256];
    static ms_key_package got;
#define FRESH() (memcpy(xml, orig, len0 + 1), len = len0)

    /* A foreign element (##other) is allowed, but it is signed like everything else. */
    FRESH();
    len = replace(xml, "</KmsResponse>", "<f:Note xmlns:f=\"urn:example:x\">hi</f:Note></KmsResponse>");
    CHECK_ERR(parse(xml, len, &dev, detail), MS_ERR_PACKAGE_SIGNATURE);
    size_t rl = 0;
    CHECK_ERR(ms_kmsif_package_resign(re, CAP, &rl, xml, len, dev.ink), MS_OK);
    CHECK_ERR(ms_kmsif_package_parse(&got, re, rl, &dev, detail, sizeof detail), MS_OK);

    /* Tampered text in each part. */
    FRESH();
    len = replace(xml, "<KeyPeriodNo>1545", "<KeyPeriodNo>1546");
    CHECK_ERR(parse(xml, len, &dev, detail), MS_ERR_PACKAGE_SIGNATURE);
    FRESH();
    len = replace(xml, "<UserPubTokenPVT>04", "<UserPubTokenPVT>05");
    CHECK_ERR(parse(xml, len, &dev, detail), MS_ERR_PACKAGE_SIGNATURE);
    FRESH();
    flip_after(xml, "<ds:DigestValue>", 5);
    CHECK_ERR(parse(xml, len, &dev, detail), MS_ERR_PACKAGE_SIGNATURE);
    FRESH();
    flip_after(xml, "<ds:SignatureValue>", 5);
    CHECK_ERR(parse(xml, len, &dev, detail), MS_ERR_PACKAGE_SIGNATURE);
    /* The device id of someone else, unsigned: signature first. */
    FRESH();
    len = replace(xml, ">phone-1 &lt;A&amp;B&gt;<", ">phone-2<");
    CHECK_ERR(parse(xml, len, &dev, detail), MS_ERR_PACKAGE_SIGNATURE);

    /* Signature removed; a bare KmsResponse. */
    FRESH();
    len = cut(xml, "<ds:Signature>", "</ds:Signature>");
    CHECK_ERR(parse(xml, len, &dev, detail), MS_ERR_PACKAGE_SIGNATURE);
    FRESH();
    len = cut(xml, "<SignedKmsResponse", ">\n");
    len = cut(xml, "  <ds:Signature>", "</SignedKmsResponse>");
    len = replace(xml, "<KmsResponse ", "<KmsResponse xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\" "
                                        "xmlns:mskms=\"urn:mikeysakke:kms:1\" "
                                        "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
                                        "xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\" "
                                        "xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" ");
    CHECK_ERR(parse(xml, len, &dev, detail), MS_ERR_PACKAGE_SIGNATURE);

    /* Wrong InK (and wrong TrK too): the signature fails first. */
    ms_device_keys other = dev;
    other.ink[0] ^= 1;
    FRESH();
    CHECK_ERR(parse(xml, len, &other, detail), MS_ERR_PACKAGE_SIGNATURE);
    other.trk[0] ^= 1;
    CHECK_ERR(parse(xml, len, &other, detail), MS_ERR_PACKAGE_SIGNATURE);

    /* Right InK, wrong TrK of the same id: decryption fails. */
    other = dev;
    other.trk[5] ^= 0x40;
    CHECK_ERR(parse(xml, len, &other, detail), MS_ERR_PACKAGE_DECRYPT);
    /* Right InK, another TrK-ID: not for us. */
    other = dev;
    other.trk_id ^= 1;
    CHECK_ERR(parse(xml, len, &other, detail), MS_ERR_PACKAGE_DEVICE);
    /* Same keys, another InK-ID. */
    other = dev;
    other.ink_id = 8;
    CHECK_ERR(parse(xml, len, &other, detail), MS_ERR_PACKAGE_DEVICE);
    /* A package for another device or user (same keys, so the signature holds). */
    other = dev;
    strcpy(other.device_id, "phone-2");
    CHECK_ERR(parse(xml, len, &other, detail), MS_ERR_PACKAGE_DEVICE);
    other = dev;
    strcpy(other.user_uri, "sip:bob@example.org");
    CHECK_ERR(parse(xml, len, &other, detail), MS_ERR_PACKAGE_DEVICE);
    /* A key set for another user inside a package addressed to us. */
    ms_key_package mixed = pkg;
    strcpy(mixed.keysets[1].user_uri, "sip:bob@example.org");
    free(orig);
    orig = write_pkg(&mixed, &len0);
    FRESH();
    CHECK_ERR(parse(xml, len, &dev, detail), MS_ERR_PACKAGE_DEVICE);
    free(orig);
    orig = write_pkg(&pkg, &len0);

    /* Corrupted CipherValue: without re-signing the signature catches it; re-signed
     * under the right InK, the unwrap does. Likewise swapped wrapped keys. */
    FRESH();
    flip_after(xml, "<xenc:CipherValue>", 10);
    CHECK_ERR(parse(xml, len, &dev, detail), MS_ERR_PACKAGE_SIGNATURE);
    CHECK_ERR(ms_kmsif_package_resign(re, CAP, &rl, xml, len, dev.ink), MS_OK);
    CHECK_ERR(parse(re, rl, &dev, detail), MS_ERR_PACKAGE_DECRYPT);
    CHECK(strstr(detail, "RSK") != NULL);

    /* The re-signer itself is sound: re-signing an untouched package changes nothing
     * that matters. */
    CHECK_ERR(ms_kmsif_package_resign(re, CAP, &rl, orig, len0, dev.ink), MS_OK);
    CHECK_ERR(ms_kmsif_package_parse(&got, re, rl, &dev, detail, sizeof detail), MS_OK);
    check_same(&got, &pkg);

    /* Arguments. */
    CHECK_ERR(ms_kmsif_package_parse(NULL, orig, len0, &dev, detail, sizeof detail), MS_ERR_ARG);
    CHECK_ERR(ms_kmsif_package_parse(&got, orig, len0, NULL, detail, sizeof detail), MS_ERR_ARG);
    CHECK_ERR(ms_kmsif_package_parse(&got, orig, len0, &dev, NULL, 0), MS_OK);
    ms_key_package bad = pkg;
    strcpy(bad.user_uri, "sip:\x01@x");
    CHECK_ERR(ms_kmsif_package_write(xml, CAP, &len, &bad, &dev, NULL), MS_ERR_ARG);
    bad = pkg;
    bad.device_id[0] = 0;
    CHECK_ERR(ms_kmsif_package_write(xml, CAP, &len, &bad, &dev, NULL), MS_ERR_ARG);
    bad = pkg;
    bad.keysets[0].user_id_len = 0;
    CHECK_ERR(ms_kmsif_package_write(xml, CAP, &len, &bad, &dev, NULL), MS_ERR_ARG);
    free(xml);
    free(re);
    free(orig);
#undef FRESH
}

/* The user's device list (our extension) rides inside the signed KmsResponse. */
static void test_user_devices(void)
{
    static ms_key_package with, got;
    char detail[256];
    size_t len = 0;
    with = pkg;
    strcpy(with.user_devices, "phone-1 tablet-2");
    char *xml = write_pkg(&with, &len);
    CHECK(strstr(xml, "<mskms:UserDevices>phone-1 tablet-2</mskms:UserDevices>") != NULL);
    CHECK_ERR(ms_kmsif_package_parse(&got, xml, len, &dev, detail, sizeof detail), MS_OK);
    CHECK(strcmp(got.user_devices, "phone-1 tablet-2") == 0);
    /* a device cut from the list in transit: the signature no longer verifies */
    char *cut = malloc(CAP);
    if (cut != NULL) {
        memcpy(cut, xml, len + 1);
        size_t n = replace(cut, "phone-1 tablet-2<", "phone-1<");
        CHECK_ERR(ms_kmsif_package_parse(&got, cut, n, &dev, detail, sizeof detail),
                  MS_ERR_PACKAGE_SIGNATURE);
        memcpy(cut, xml, len + 1);
        n = replace(cut, "phone-1 tablet-2<", "phone-1  tablet-2<");
        CHECK_ERR(ms_kmsif_package_parse(&got, cut, n, &dev, detail, sizeof detail), MS_ERR_XML);
        memcpy(cut, xml, len + 1);
        n = replace(cut, "phone-1 tablet-2<", "phone/1<");
        CHECK_ERR(ms_kmsif_package_parse(&got, cut, n, &dev, detail, sizeof detail), MS_ERR_XML);
        free(cut);
    }
    free(xml);
    /* none sent: none read */
    xml = write_pkg(&pkg, &len);
    CHECK(strstr(xml, "UserDevices") == NULL);
    CHECK_ERR(ms_kmsif_package_parse(&got, xml, len, &dev, detail, sizeof detail), MS_OK);
    CHECK(got.user_devices[0] == '\0');
    free(xml);
    /* the writer refuses a malformed list */
    char *out = malloc(CAP);
    strcpy(with.user_devices, "a  b");
    if (out != NULL)
        CHECK_ERR(ms_kmsif_package_write(out, CAP, &len, &with, &dev, NULL), MS_ERR_ARG);
    strcpy(with.user_devices, "a ");
    if (out != NULL)
        CHECK_ERR(ms_kmsif_package_write(out, CAP, &len, &with, &dev, NULL), MS_ERR_ARG);
    free(out);
}

int main(void)
{
    ms_test_seed();
    make_fixture();
    test_round_trips();
    test_structure();
    test_signature_and_addressee();
    test_user_devices();
    return ms_test_finish();
}
