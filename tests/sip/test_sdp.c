/*
 * SDP text of one audio stream (src/sip/sdp.c): what the formatter writes, round trips
 * through the parser, and every form the parser refuses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip/sdp.h"
#include "testutil.h"

#define KM "a=key-mgmt:mikey AQIDBA=="

static ms_sdp_audio stream(const char *addr, uint16_t port)
{
    ms_sdp_audio a;
    memset(&a, 0, sizeof a);
    snprintf(a.addr, sizeof a.addr, "%s", addr);
    a.port = port;
    snprintf(a.proto, sizeof a.proto, "RTP/SAVP");
    a.payload_type = 96;
    snprintf(a.codec, sizeof a.codec, "opus/48000/2");
    snprintf(a.crypto_suite, sizeof a.crypto_suite, "AEAD_AES_128_GCM");
    snprintf(a.direction, sizeof a.direction, "sendrecv");
    return a;
}

static void test_format_exact(void)
{
    char out[2048];
    ms_sdp_audio a = stream("192.0.2.10", 40000);
    CHECK_ERR(ms_sdp_format(out, sizeof out, &a, 1234567, KM), MS_OK);
    const char *want = "v=0\r\n"
                       "o=- 1234567 1234567 IN IP4 192.0.2.10\r\n"
                       "s=-\r\n"
                       "c=IN IP4 192.0.2.10\r\n"
                       "t=0 0\r\n"
                       "m=audio 40000 RTP/SAVP 96\r\n"
                       "a=rtpmap:96 opus/48000/2\r\n"
                       "a=fmtp:96 minptime=20\r\n"
                       "a=ptime:20\r\n"
                       "a=x-ms-srtp:AEAD_AES_128_GCM\r\n"
                       "a=sendrecv\r\n"
                       KM "\r\n";
    CHECK(strcmp(out, want) == 0);

    /* IPv6, no suite, no key-mgmt: neither line is written */
    a = stream("2001:db8::1", 5004);
    a.crypto_suite[0] = '\0';
    CHECK_ERR(ms_sdp_format(out, sizeof out, &a, 7, NULL), MS_OK);
    CHECK(strstr(out, "o=- 7 7 IN IP6 2001:db8::1\r\n") != NULL);
    CHECK(strstr(out, "c=IN IP6 2001:db8::1\r\n") != NULL);
    CHECK(strstr(out, "x-ms-srtp") == NULL && strstr(out, "key-mgmt") == NULL);

    /* a buffer too small is said so, and left empty */
    a = stream("192.0.2.10", 40000);
    CHECK_ERR(ms_sdp_format(out, 40, &a, 1, KM), MS_ERR_BUFFER_TOO_SMALL);
    CHECK(out[0] == '\0');
}

static void test_format_refusals(void)
{
    char out[2048];
    ms_sdp_audio a = stream("host.example.org", 1);
    CHECK_ERR(ms_sdp_format(out, sizeof out, &a, 1, NULL), MS_ERR_ARG); /* not a literal */
    a = stream("192.0.2.1", 1);
    a.payload_type = 128;
    CHECK_ERR(ms_sdp_format(out, sizeof out, &a, 1, NULL), MS_ERR_ARG);
    a = stream("192.0.2.1", 1);
    snprintf(a.crypto_suite, sizeof a.crypto_suite, "X\r\na=evil");
    CHECK_ERR(ms_sdp_format(out, sizeof out, &a, 1, NULL), MS_ERR_ARG); /* line injection */
    a = stream("192.0.2.1", 1);
    snprintf(a.direction, sizeof a.direction, "both");
    CHECK_ERR(ms_sdp_format(out, sizeof out, &a, 1, NULL), MS_ERR_ARG);
    a = stream("192.0.2.1", 1);
    CHECK_ERR(ms_sdp_format(out, sizeof out, &a, 1, "a=crypto:1 AES"), MS_ERR_ARG);
    CHECK_ERR(ms_sdp_format(out, sizeof out, &a, 1, KM "\r\nm=video 1 RTP/AVP 0"), MS_ERR_ARG);
    CHECK_ERR(ms_sdp_format(out, sizeof out, NULL, 1, NULL), MS_ERR_ARG);
}

static void test_round_trip(void)
{
    char out[2048], detail[200];
    ms_sdp_audio a = stream("198.51.100.7", 49170), b;
    snprintf(a.direction, sizeof a.direction, "recvonly");
    CHECK_ERR(ms_sdp_format(out, sizeof out, &a, 99, KM), MS_OK);
    CHECK_ERR(ms_sdp_parse(&b, out, strlen(out), detail, sizeof detail), MS_OK);
    CHECK(strcmp(b.addr, a.addr) == 0 && b.port == a.port);
    CHECK(strcmp(b.proto, "RTP/SAVP") == 0 && b.payload_type == 96);
    CHECK(strcmp(b.codec, "opus/48000/2") == 0);
    CHECK(strcmp(b.crypto_suite, "AEAD_AES_128_GCM") == 0);
    CHECK(strcmp(b.direction, "recvonly") == 0);
    CHECK(b.key_mgmt != NULL && b.key_mgmt_len == strlen("mikey AQIDBA==") &&
          memcmp(b.key_mgmt, "mikey AQIDBA==", b.key_mgmt_len) == 0);
    CHECK(b.key_mgmt >= out && b.key_mgmt < out + strlen(out)); /* points into the text */

    /* IPv6 and port 0, no key-mgmt */
    a = stream("::1", 0);
    CHECK_ERR(ms_sdp_format(out, sizeof out, &a, 1, NULL), MS_OK);
    CHECK_ERR(ms_sdp_parse(&b, out, strlen(out), detail, sizeof detail), MS_OK);
    CHECK(strcmp(b.addr, "::1") == 0 && b.port == 0 && b.key_mgmt == NULL);
}

static ms_err parse(ms_sdp_audio *b, const char *text, char *detail, size_t cap)
{
    return ms_sdp_parse(b, text, strlen(text), detail, cap);
}

static void test_parse_forms(void)
{
    char detail[200];
    ms_sdp_audio b;
    /* LF line ends, session-level c= and key-mgmt (with the optional space), a video
     * stream first, RTP/AVP reported as is, direction from the session */
    const char *s = "v=0\n"
                    "o=bob 1 1 IN IP4 192.0.2.2\n"
                    "s=call\n"
                    "c=IN IP4 192.0.2.2\n"
                    "t=0 0\n"
                    "a=key-mgmt: mikey AAAA\n"
                    "a=sendonly\n"
                    "m=video 5000 RTP/AVP 31\n"
                    "c=IN IP4 192.0.2.99\n"
                    "a=key-mgmt:mikey BBBB\n"
                    "m=audio 6000 RTP/AVP 0 8\n"
                    "a=rtpmap:0 PCMU/8000\n";
    CHECK_ERR(parse(&b, s, detail, sizeof detail), MS_OK);
    CHECK(strcmp(b.addr, "192.0.2.2") == 0 && b.port == 6000);
    CHECK(strcmp(b.proto, "RTP/AVP") == 0 && b.payload_type == 0);
    CHECK(strcmp(b.codec, "PCMU/8000") == 0 && b.crypto_suite[0] == '\0');
    CHECK(strcmp(b.direction, "sendonly") == 0);
    CHECK(b.key_mgmt != NULL && b.key_mgmt_len == 10 && memcmp(b.key_mgmt, "mikey AAAA", 10) == 0);

    /* media-level c= and key-mgmt win over the session's; no key-mgmt at all */
    s = "v=0\r\no=- 1 1 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\n"
        "a=key-mgmt:mikey AAAA\r\n"
        "m=audio 7000 RTP/SAVP 96\r\nc=IN IP6 2001:db8::5\r\na=key-mgmt:mikey CCCC\r\n"
        "a=x-ms-srtp:AES_CM_128_HMAC_SHA1_80\r\n\r\n";
    CHECK_ERR(parse(&b, s, detail, sizeof detail), MS_OK);
    CHECK(strcmp(b.addr, "2001:db8::5") == 0 && memcmp(b.key_mgmt, "mikey CCCC", 10) == 0);
    CHECK(strcmp(b.crypto_suite, "AES_CM_128_HMAC_SHA1_80") == 0 && b.codec[0] == '\0');
    CHECK(strcmp(b.direction, "sendrecv") == 0);
    s = "v=0\r\no=- 1 1 IN IP4 192.0.2.2\r\ns=-\r\nt=0 0\r\n"
        "m=audio 7000 RTP/SAVP 96\r\nc=IN IP4 192.0.2.3\r\n";
    CHECK_ERR(parse(&b, s, detail, sizeof detail), MS_OK);
    CHECK(b.key_mgmt == NULL && b.key_mgmt_len == 0);
    /* another protocol first, then mikey: mikey is the one reported */
    s = "v=0\r\no=- 1 1 IN IP4 192.0.2.2\r\ns=-\r\nt=0 0\r\n"
        "m=audio 7000 RTP/SAVP 96\r\nc=IN IP4 192.0.2.3\r\n"
        "a=key-mgmt:kerberos XYZ\r\na=key-mgmt:mikey DDDD\r\n";
    CHECK_ERR(parse(&b, s, detail, sizeof detail), MS_OK);
    CHECK(b.key_mgmt != NULL && memcmp(b.key_mgmt, "mikey DDDD", 10) == 0);
    /* a protocol longer than the field is reported shortened, never as RTP/SAVP */
    s = "v=0\r\no=- 1 1 IN IP4 192.0.2.2\r\ns=-\r\nt=0 0\r\n"
        "m=audio 7000 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 192.0.2.3\r\n";
    CHECK_ERR(parse(&b, s, detail, sizeof detail), MS_OK);
    CHECK(strcmp(b.proto, "UDP/TLS/RTP/...") == 0 && b.payload_type == 111);
}

/* Each text is refused with MS_ERR_SDP and a detail containing `want`. */
static void refused(const char *text, size_t len, const char *want)
{
    char detail[200] = "";
    ms_sdp_audio b;
    ms_err e = ms_sdp_parse(&b, text, len, detail, sizeof detail);
    CHECK_ERR(e, MS_ERR_SDP);
    if (strstr(detail, want) == NULL) {
        fprintf(stderr, "detail \"%s\" lacks \"%s\"\n", detail, want);
        CHECK(0);
    }
}

#define HEAD "v=0\r\no=- 1 1 IN IP4 192.0.2.2\r\ns=-\r\nt=0 0\r\n"

static void test_parse_refusals(void)
{
    refused("", 0, "empty");
    refused("hello world\r\n", 13, "line 1");
    refused("v=1\r\n", 5, "v=0");
    refused(HEAD "c=IN IP4 192.0.2.2\r\n", strlen(HEAD) + 20, "no m=audio");
    refused(HEAD "m=video 1 RTP/AVP 31\r\nc=IN IP4 192.0.2.2\r\n", strlen(HEAD) + 42,
            "no m=audio");
    const char *t = HEAD "m=audio 1 RTP/SAVP 96\r\n";
    refused(t, strlen(t), "no c= line");
    t = HEAD "c=IN IP4 192.0.2.2\r\nm=audio 70000 RTP/SAVP 96\r\n";
    refused(t, strlen(t), "port");
    t = HEAD "c=IN IP4 192.0.2.2\r\nm=audio x RTP/SAVP 96\r\n";
    refused(t, strlen(t), "port");
    t = HEAD "c=IN IP4 192.0.2.2\r\nm=audio 1 RTP/SAVP\r\n";
    refused(t, strlen(t), "m= needs");
    t = HEAD "c=IN IP4 host.example.org\r\nm=audio 1 RTP/SAVP 96\r\n";
    refused(t, strlen(t), "not an IP4 literal");
    t = HEAD "c=IN IP4 224.2.1.1/127\r\nm=audio 1 RTP/SAVP 96\r\n";
    refused(t, strlen(t), "literal");
    t = HEAD "c=IN IP6 192.0.2.2\r\nm=audio 1 RTP/SAVP 96\r\n";
    refused(t, strlen(t), "IP6");
    t = HEAD "c=IN IP4\r\nm=audio 1 RTP/SAVP 96\r\n";
    refused(t, strlen(t), "c= must be");
    t = HEAD "c=IN IP4 192.0.2.2\r\nm=audio 1 RTP/SAVP 96\r\nthis is not sdp\r\n";
    refused(t, strlen(t), "line 7");
    t = HEAD "c=IN IP4 192.0.2.2\r\nm=audio 1 RTP/SAVP 96\r\nx=unknown\r\n";
    refused(t, strlen(t), "known SDP type");
    t = HEAD "c=IN IP4 192.0.2.2\r\n\r\nm=audio 1 RTP/SAVP 96\r\n";
    refused(t, strlen(t), "blank line");
    t = HEAD "c=IN IP4 192.0.2.2\r\nm=audio 1 RTP/SAVP 96\r\na=x\001y\r\n";
    refused(t, strlen(t), "control character");
    t = "v=0\r\ns=-\r\nt=0 0\r\nc=IN IP4 192.0.2.2\r\nm=audio 1 RTP/SAVP 96\r\n";
    refused(t, strlen(t), "o=");
    t = HEAD "c=IN IP4 192.0.2.2\r\nm=audio 1 RTP/SAVP 96\r\ns=again\r\n";
    refused(t, strlen(t), "inside a media section");
    t = HEAD "v=0\r\nc=IN IP4 192.0.2.2\r\nm=audio 1 RTP/SAVP 96\r\n";
    refused(t, strlen(t), "second v=");
    t = HEAD "c=IN IP4 192.0.2.2\r\nm=audio 1 RTP/SAVP 96\r\na=rtpmap:96\r\n";
    refused(t, strlen(t), "rtpmap");
    t = HEAD "c=IN IP4 192.0.2.2\r\nm=audio 1 RTP/SAVP 96\r\na=x-ms-srtp:\r\n";
    refused(t, strlen(t), "x-ms-srtp");
    /* an embedded NUL is a control character, not the end of the text */
    char nul[128];
    int n = snprintf(nul, sizeof nul, HEAD "c=IN IP4 192.0.2.2\r\nm=audio 1 RTP/SAVP 96\r\n");
    nul[n - 3] = '\0';
    refused(nul, (size_t)n, "control character");
    /* oversized */
    size_t big = MS_SDP_MAX + 1;
    char *huge = malloc(big);
    if (huge != NULL) {
        memset(huge, 'a', big);
        refused(huge, big, "exceeds");
        free(huge);
    }
    ms_sdp_audio b;
    CHECK_ERR(ms_sdp_parse(NULL, "v=0", 3, NULL, 0), MS_ERR_ARG);
    CHECK_ERR(ms_sdp_parse(&b, NULL, 3, NULL, 0), MS_ERR_ARG);
}

int main(void)
{
    test_format_exact();
    test_format_refusals();
    test_round_trip();
    test_parse_forms();
    test_parse_refusals();
    return ms_test_finish();
}
