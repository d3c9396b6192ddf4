/*
 * SDP a=key-mgmt (RFC 4567): the two example attributes of RFC 4567 5.1 parse and are
 * reproduced exactly, random round trips at every padding length and at the size limit,
 * agreement with OpenSSL's base64 encoder, the accepted spellings (with or without
 * "a=", one space after the colon, CR LF or LF), and each rejection with MS_ERR_SDP,
 * diag.payload = -1 and the character offset of the fault.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "mikeysakke/mikey.h"
#include "testutil.h"

/* RFC 4567 5.1: the offer's attribute (the RFC wraps it over three lines) and the
 * answer's (with one '=' of padding). */
static const char rfc_offer[] =
    "a=key-mgmt:mikey AQAFgM0XflABAAAAAAAAAAAAAAsAyONQ6gAAAAAGEEoo2pee4hp2"
    "UaDX8ZE22YwKAAAPZG9uYWxkQGR1Y2suY29tAQAAAAAAAQAk0JKpgaVkDaawi9whVBtBt"
    "0KZ14ymNuu62+Nv3ozPLygwK/GbAV9iemnGUIZ19fWQUOSrzKTAv9zV";
static const char rfc_answer[] =
    "a=key-mgmt:mikey AQEFgM0XflABAAAAAAAAAAAAAAYAyONQ6gAAAAAJAAAQbWlja2"
    "V5QG1vdXNlLmNvbQABn8HdGE5BMDXFIuGEga+62AgY5cc=";

static uint8_t buf[MS_MIKEY_MAX_MESSAGE + 16];
static char line[MS_SDP_KEY_MGMT_MAX + 64];

static ms_err parse_str(const char *s, size_t *len, ms_mikey_diag *diag)
{
    return ms_sdp_key_mgmt_parse(buf, sizeof buf, len, s, strlen(s), diag);
}

static void test_rfc_examples(void)
{
    size_t len = 0;
    ms_mikey_diag diag;
    CHECK_ERR(parse_str(rfc_offer, &len, &diag), MS_OK);
    CHECK(len == 132);
    /* HDR: version 1, data type 0 (PSK init), next payload T, V = 1, PRF 0,
     * CSB ID 0xCD177E50. */
    static const uint8_t hdr[8] = {0x01, 0x00, 0x05, 0x80, 0xCD, 0x17, 0x7E, 0x50};
    CHECK_MEM(buf, hdr, 8);
    CHECK(memcmp(buf + 0x33, "donald@duck.com", 15) == 0);
    /* Our encoder writes exactly the RFC's line. */
    uint8_t msg[132];
    memcpy(msg, buf, 132);
    char out[256];
    CHECK_ERR(ms_sdp_key_mgmt_format(out, sizeof out, msg, 132), MS_OK);
    CHECK(strcmp(out, rfc_offer) == 0);

    CHECK_ERR(parse_str(rfc_answer, &len, &diag), MS_OK);
    CHECK(len == 71);
    CHECK(buf[0] == 0x01 && buf[1] == 0x01 && memcmp(buf + 0x21, "mickey@mouse.com", 16) == 0);
    memcpy(msg, buf, 71);
    CHECK_ERR(ms_sdp_key_mgmt_format(out, sizeof out, msg, 71), MS_OK);
    CHECK(strcmp(out, rfc_answer) == 0);

    /* The printed prefix of the example, cut at a 4-character boundary, is a valid
     * attribute of 39 octets starting with the same header. */
    CHECK_ERR(parse_str("a=key-mgmt:mikey AQAFgM0XflABAAAAAAAAAAAAAAsAyONQ6gAAAAAGEEoo2pee4hp2",
                        &len, &diag),
              MS_OK);
    CHECK(len == 39);
    CHECK_MEM(buf, hdr, 8);
}

static void test_round_trips(void)
{
    static uint8_t msg[MS_MIKEY_MAX_MESSAGE], want_b64[MS_SDP_KEY_MGMT_MAX];
    for (size_t n = 1; n <= 300; n++) {
        ms_test_random(msg, n);
        CHECK_ERR(ms_sdp_key_mgmt_format(line, sizeof line, msg, n), MS_OK);
        /* Same base64 as OpenSSL's encoder, after our prefix. */
        int b64 = EVP_EncodeBlock(want_b64, msg, (int)n);
        CHECK(strncmp(line, "a=key-mgmt:mikey ", 17) == 0);
        CHECK(strlen(line) == 17 + (size_t)b64 && memcmp(line + 17, want_b64, (size_t)b64) == 0);
        size_t len = 0;
        CHECK_ERR(ms_sdp_key_mgmt_parse(buf, sizeof buf, &len, line, strlen(line), NULL),
                  MS_OK);
        CHECK(len == n && memcmp(buf, msg, n) == 0);
    }
    /* The largest message fits the line limit and comes back. */
    ms_test_random(msg, sizeof msg);
    CHECK_ERR(ms_sdp_key_mgmt_format(line, sizeof line, msg, sizeof msg), MS_OK);
    CHECK(strlen(line) <= MS_SDP_KEY_MGMT_MAX);
    size_t len = 0;
    CHECK_ERR(ms_sdp_key_mgmt_parse(buf, sizeof buf, &len, line, strlen(line), NULL), MS_OK);
    CHECK(len == sizeof msg && memcmp(buf, msg, len) == 0);
    /* Exactly the needed buffer, then one octet less. */
    CHECK_ERR(ms_sdp_key_mgmt_parse(buf, sizeof msg, &len, line, strlen(line), NULL), MS_OK);
    len = 0;
    CHECK_ERR(ms_sdp_key_mgmt_parse(buf, sizeof msg - 1, &len, line, strlen(line), NULL),
              MS_ERR_BUFFER_TOO_SMALL);
    CHECK(len == sizeof msg);

    /* Format: the output buffer must hold the line and its NUL. */
    size_t need = strlen(line) + 1;
    CHECK_ERR(ms_sdp_key_mgmt_format(line, need, msg, sizeof msg), MS_OK);
    CHECK_ERR(ms_sdp_key_mgmt_format(line, need - 1, msg, sizeof msg), MS_ERR_BUFFER_TOO_SMALL);
    CHECK_ERR(ms_sdp_key_mgmt_format(line, sizeof line, msg, 0), MS_ERR_ARG);
    CHECK_ERR(ms_sdp_key_mgmt_format(line, sizeof line, msg, sizeof msg + 1), MS_ERR_ARG);
    CHECK_ERR(ms_sdp_key_mgmt_format(line, sizeof line, NULL, 10), MS_ERR_ARG);
    CHECK_ERR(ms_sdp_key_mgmt_format(NULL, sizeof line, msg, 10), MS_ERR_ARG);
}

/* Accepted spellings of one attribute carrying 01 02 03 04. */
static void test_spellings(void)
{
    static const char *const ok[] = {
        "a=key-mgmt:mikey AQIDBA==",
        "key-mgmt:mikey AQIDBA==",
        "a=key-mgmt: mikey AQIDBA==",
        "key-mgmt: mikey AQIDBA==",
        "a=key-mgmt:mikey AQIDBA==\r\n",
        "a=key-mgmt:mikey AQIDBA==\n",
    };
    static const uint8_t want[4] = {1, 2, 3, 4};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t len = 0;
        ms_err e = parse_str(ok[i], &len, NULL);
        CHECK(e == MS_OK && len == 4 && memcmp(buf, want, 4) == 0);
        if (e != MS_OK)
            fprintf(stderr, "  refused: \"%s\" (%s)\n", ok[i], ms_errname(e));
    }
}

typedef struct bad_case {
    const char *what;
    const char *text;
    size_t len;    /* 0: strlen(text) */
    size_t offset; /* expected diag.offset */
} bad_case;

static void check_bad(const bad_case *c)
{
    ms_mikey_diag diag;
    memset(&diag, 0x55, sizeof diag);
    size_t len = 1234;
    size_t n = c->len ? c->len : strlen(c->text);
    ms_err e = ms_sdp_key_mgmt_parse(buf, sizeof buf, &len, c->text, n, &diag);
    bool good = e == MS_ERR_SDP && diag.payload == -1 && diag.offset == c->offset &&
                memchr(diag.detail, '\0', sizeof diag.detail) != NULL && diag.detail[0] != '\0';
    CHECK(good);
    if (!good)
        fprintf(stderr, "  %s: got %s, offset %zu, detail \"%.*s\"\n", c->what, ms_errname(e),
                diag.offset, (int)sizeof diag.detail, diag.detail);
    /* Without a diag, the same error. */
    CHECK_ERR(ms_sdp_key_mgmt_parse(buf, sizeof buf, &len, c->text, n, NULL), MS_ERR_SDP);
}

static void test_rejections(void)
{
    static const bad_case cases[] = {
        {"wrong protocol id", "a=key-mgmt:kerberos AQIDBA==", 0, 11},
        {"protocol id case", "a=key-mgmt:MIKEY AQIDBA==", 0, 11},
        {"protocol id prefix", "a=key-mgmt:mike AQIDBA==", 0, 11},
        {"protocol id longer", "a=key-mgmt:mikey2 AQIDBA==", 0, 11},
        {"protocol id missing", "a=key-mgmt:", 0, 11},
        {"not key-mgmt", "a=key-mgmx:mikey AQIDBA==", 0, 2},
        {"other attribute", "a=rtpmap:98 AMR/8000", 0, 2},
        {"b= line", "b=key-mgmt:mikey AQIDBA==", 0, 0},
        {"bad base64 char", "a=key-mgmt:mikey AQI*BA==", 0, 20},
        {"url-safe base64", "a=key-mgmt:mikey AQ-_BA==", 0, 19},
        {"space inside data", "a=key-mgmt:mikey AQID BA=", 0, 21},
        {"trailing space", "a=key-mgmt:mikey AQIDBA== ", 0, 25},
        {"missing padding", "a=key-mgmt:mikey AQIDBA", 0, 23},
        {"missing one pad", "a=key-mgmt:mikey AQIDBA=", 0, 24},
        {"padding inside", "a=key-mgmt:mikey AQ==AQID", 0, 19},
        {"three pads", "a=key-mgmt:mikey AQIDA===", 0, 22},
        {"unused bits set", "a=key-mgmt:mikey AQIDBB==", 0, 22},
        {"empty data", "a=key-mgmt:mikey ", 0, 17},
        {"no data", "a=key-mgmt:mikey", 0, 16},
        {"tab separator", "a=key-mgmt:mikey\tAQIDBA==", 0, 16},
        {"two spaces after colon", "a=key-mgmt:  mikey AQIDBA==", 0, 12},
        {"two spaces before data", "a=key-mgmt:mikey  AQIDBA==", 0, 17},
        {"embedded NUL", "a=key-mgmt:mikey AQ\0DBA==", 25, 19},
        {"CR without LF", "a=key-mgmt:mikey AQIDBA==\r", 0, 25},
        {"two line ends", "a=key-mgmt:mikey AQIDBA==\r\n\r\n", 0, 25},
        {"empty line", "", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_bad(&cases[i]);

    /* Too long: MS_SDP_KEY_MGMT_MAX + 1 characters before the line ending. */
    size_t n = MS_SDP_KEY_MGMT_MAX + 1;
    memcpy(line, "a=key-mgmt:mikey ", 17);
    memset(line + 17, 'A', n - 17);
    line[n] = '\0';
    bad_case too_long = {"line too long", line, n, MS_SDP_KEY_MGMT_MAX};
    check_bad(&too_long);
    /* ...but the limit itself plus CR LF is fine as far as length goes (it then fails
     * for its content: 11983 characters of base64 is not a multiple of 4). */
    memcpy(line + MS_SDP_KEY_MGMT_MAX, "\r\n", 3);
    ms_mikey_diag diag;
    size_t len;
    CHECK_ERR(ms_sdp_key_mgmt_parse(buf, sizeof buf, &len, line, MS_SDP_KEY_MGMT_MAX + 2,
                                    &diag),
              MS_ERR_SDP);
    CHECK(diag.offset == MS_SDP_KEY_MGMT_MAX); /* the not-a-multiple-of-4 report */

    /* A decoded message over MS_MIKEY_MAX_MESSAGE inside a line under the limit. */
    static uint8_t big[MS_MIKEY_MAX_MESSAGE + 3];
    int b64 = EVP_EncodeBlock((unsigned char *)line + 17, big, (int)sizeof big);
    CHECK(17 + (size_t)b64 <= MS_SDP_KEY_MGMT_MAX);
    bad_case too_big = {"decoded too large", line, 17 + (size_t)b64, 17};
    check_bad(&too_big);

    /* Argument errors are not SDP errors. */
    CHECK_ERR(ms_sdp_key_mgmt_parse(buf, sizeof buf, NULL, "a=key-mgmt:mikey AQIDBA==", 25,
                                    NULL),
              MS_ERR_ARG);
    CHECK_ERR(ms_sdp_key_mgmt_parse(buf, sizeof buf, &len, NULL, 25, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_sdp_key_mgmt_parse(NULL, 4, &len, "a=key-mgmt:mikey AQIDBA==", 25, NULL),
              MS_ERR_ARG);
    len = 0;
    CHECK_ERR(ms_sdp_key_mgmt_parse(buf, 3, &len, "a=key-mgmt:mikey AQIDBA==", 25, NULL),
              MS_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 4);
}

int main(void)
{
    ms_test_seed();
    test_rfc_examples();
    test_round_trips();
    test_spellings();
    test_rejections();
    return ms_test_finish();
}
