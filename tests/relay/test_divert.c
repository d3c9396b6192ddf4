/*
 * Which mailbox a diverted INVITE is for (src/relay/divert.c): URI normalisation and its
 * refusals, header lookup (long and compact forms, never in the body), the sender from
 * the top Via, and the order of the candidates X-Original-To, Diversion, To, R-URI,
 * R-URI user at the To domain.
 */
#include <stdio.h>
#include <string.h>

#include "relay/divert.h"
#include "testutil.h"

static void check_norm(const char *in, const char *want)
{
    char out[MS_VM_URI_MAX];
    ms_err e = ms_vm_uri_normalise(in, out, sizeof out);
    CHECK(e == MS_OK);
    if (e != MS_OK || strcmp(out, want) != 0) {
        fprintf(stderr, "normalise(%s) = %s (%d), want %s\n", in, out, (int)e, want);
        CHECK(!"normalised form");
    }
}

static void test_normalise(void)
{
    check_norm("sip:bob@example.org", "sip:bob@example.org");
    check_norm("\"Bob\" <sip:bob@Example.ORG:5060;transport=tcp>;tag=abc", "sip:bob@example.org");
    check_norm("<sips:bob@example.org>", "sip:bob@example.org");
    check_norm("SIP:bob@example.org;user=phone?subject=x", "sip:bob@example.org");
    check_norm("sip:bob:secret@example.org", "sip:bob@example.org");
    check_norm("  sip:Bob@example.org  ", "sip:Bob@example.org"); /* user part keeps case */
    check_norm("sip:bob@[::1]:5070", "sip:bob@[::1]");
    check_norm("tel:+441234567890;phone-context=example.org", "tel:+441234567890");
    check_norm("<tel:+15551234>", "tel:+15551234");

    char out[MS_VM_URI_MAX];
    const char *bad[] = {
        "bob@example.org", "http://example.org/", "sip:example.org", "sip:@example.org",
        "sip:bob@", "sip:bob@:5060", "<sip:bob@example.org", "tel:", "sip:bo\"b@example.org",
        "sip:bo b@example.org", "sip:bo\\b@example.org", "sip:bob@exa<mple.org", "",
        "sip:bob@[::1", "mailto:bob@example.org",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms_err e = ms_vm_uri_normalise(bad[i], out, sizeof out);
        CHECK(e == MS_ERR_IDENTITY);
        if (e != MS_ERR_IDENTITY)
            fprintf(stderr, "accepted: %s\n", bad[i]);
    }
    char small[8];
    CHECK_ERR(ms_vm_uri_normalise("sip:bob@example.org", small, sizeof small),
              MS_ERR_BUFFER_TOO_SMALL);
    CHECK_ERR(ms_vm_uri_normalise(NULL, out, sizeof out), MS_ERR_ARG);
    char huge[600];
    memset(huge, 'a', sizeof huge);
    memcpy(huge, "sip:", 4);
    huge[300] = '@';
    huge[sizeof huge - 1] = '\0';
    CHECK_ERR(ms_vm_uri_normalise(huge, out, sizeof out), MS_ERR_IDENTITY);
}

static const char invite[] =
    "INVITE sip:bob@127.0.0.1:5090;transport=tcp SIP/2.0\r\n"
    "Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKp1;rport=5061;received=127.0.0.2,"
    " SIP/2.0/TCP 10.0.0.9:5070;branch=z9hG4bKc1\r\n"
    "v: SIP/2.0/TCP 10.0.0.9:5070;branch=z9hG4bKc0\r\n"
    "From: \"Alice\" <sip:alice@example.org>;tag=1\r\n"
    "t: <sip:bob@example.org>\r\n"
    "X-Original-To: <sip:carol@example.org>\r\n"
    "Diversion: <sip:dave@example.org>;reason=no-answer, <sip:erin@example.org>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 30\r\n"
    "\r\n"
    "X-Secret: not a header at all\r\n";

static void test_headers(void)
{
    const uint8_t *raw = (const uint8_t *)invite;
    size_t len = sizeof invite - 1;
    char v[256];
    CHECK(ms_vm_sip_header(raw, len, "To", 't', v, sizeof v));
    CHECK(strcmp(v, "<sip:bob@example.org>") == 0);
    CHECK(ms_vm_sip_header(raw, len, "from", 'f', v, sizeof v));
    CHECK(strcmp(v, "\"Alice\" <sip:alice@example.org>;tag=1") == 0);
    CHECK(ms_vm_sip_header(raw, len, "x-original-to", 0, v, sizeof v));
    CHECK(strcmp(v, "<sip:carol@example.org>") == 0);
    CHECK(!ms_vm_sip_header(raw, len, "X-Secret", 0, v, sizeof v)); /* in the body */
    CHECK(!ms_vm_sip_header(raw, len, "Subject", 's', v, sizeof v));
    char tiny[8];
    CHECK(!ms_vm_sip_header(raw, len, "To", 't', tiny, sizeof tiny));

    ms_vm_sip_sender(raw, len, v, sizeof v);
    CHECK(strcmp(v, "127.0.0.2:5061") == 0); /* received= and rport= of the top Via */
    const char plain[] = "INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5080;branch=z\r\n\r\n";
    ms_vm_sip_sender((const uint8_t *)plain, sizeof plain - 1, v, sizeof v);
    CHECK(strcmp(v, "192.0.2.7:5080") == 0);
    const char noport[] = "INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.7;rport\r\n\r\n";
    ms_vm_sip_sender((const uint8_t *)noport, sizeof noport - 1, v, sizeof v);
    CHECK(strcmp(v, "192.0.2.7:5060") == 0);
    const char named[] = "INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/TCP proxy.example.org:5060\r\n\r\n";
    ms_vm_sip_sender((const uint8_t *)named, sizeof named - 1, v, sizeof v);
    CHECK(strcmp(v, "0.0.0.0:5060") == 0);
    const char v6[] = "INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/TCP [::1]:5060\r\n\r\n";
    ms_vm_sip_sender((const uint8_t *)v6, sizeof v6 - 1, v, sizeof v);
    CHECK(strcmp(v, "0.0.0.0:5060") == 0);
    ms_vm_sip_sender((const uint8_t *)"garbage", 7, v, sizeof v);
    CHECK(strcmp(v, "0.0.0.0:5060") == 0);
}

static const char *only;

static bool known_one(void *ctx, const char *uri)
{
    (void)ctx;
    return only != NULL && strcmp(uri, only) == 0;
}

static void test_choose(void)
{
    const uint8_t *raw = (const uint8_t *)invite;
    size_t len = sizeof invite - 1;
    const char *to = "<sip:bob@example.org>";
    const char *ru = "sip:bob@127.0.0.1:5090;transport=tcp";
    char out[MS_VM_URI_MAX], detail[128];

    /* Without a directory the most explicit header wins. */
    CHECK_ERR(ms_vm_choose_mailbox(raw, len, to, ru, NULL, NULL, out, sizeof out, detail,
                                   sizeof detail), MS_OK);
    CHECK(strcmp(out, "sip:carol@example.org") == 0);

    only = "sip:dave@example.org"; /* Diversion's first entry */
    CHECK_ERR(ms_vm_choose_mailbox(raw, len, to, ru, known_one, NULL, out, sizeof out, detail,
                                   sizeof detail), MS_OK);
    CHECK(strcmp(out, "sip:dave@example.org") == 0);
    only = "sip:erin@example.org"; /* not the first Diversion: not a candidate */
    CHECK_ERR(ms_vm_choose_mailbox(raw, len, to, ru, known_one, NULL, out, sizeof out, detail,
                                   sizeof detail), MS_ERR_USER_UNKNOWN);
    CHECK(strstr(detail, "sip:bob@example.org") != NULL);
    CHECK(out[0] == '\0');

    only = "sip:bob@example.org"; /* To */
    CHECK_ERR(ms_vm_choose_mailbox(raw, len, to, ru, known_one, NULL, out, sizeof out, detail,
                                   sizeof detail), MS_OK);
    CHECK(strcmp(out, "sip:bob@example.org") == 0);

    /* kamailio rewrote only the host of the R-URI; To names someone else. */
    only = "sip:bob@example.org";
    CHECK_ERR(ms_vm_choose_mailbox(NULL, 0, "<sip:frank@example.org>", ru, known_one, NULL, out,
                                   sizeof out, detail, sizeof detail), MS_OK);
    CHECK(strcmp(out, "sip:bob@example.org") == 0);
    /* The R-URI as it is. */
    only = "sip:bob@127.0.0.1";
    CHECK_ERR(ms_vm_choose_mailbox(NULL, 0, "<sip:frank@example.org>", ru, known_one, NULL, out,
                                   sizeof out, detail, sizeof detail), MS_OK);
    CHECK(strcmp(out, "sip:bob@127.0.0.1") == 0);
    /* Nothing usable. */
    CHECK_ERR(ms_vm_choose_mailbox(NULL, 0, "garbage", "also garbage", NULL, NULL, out,
                                   sizeof out, detail, sizeof detail), MS_ERR_USER_UNKNOWN);
    CHECK_ERR(ms_vm_choose_mailbox(NULL, 0, NULL, NULL, NULL, NULL, out, sizeof out, NULL, 0),
              MS_ERR_USER_UNKNOWN);
}

int main(void)
{
    test_normalise();
    test_headers();
    test_choose();
    return ms_test_finish();
}
