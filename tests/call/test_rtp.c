/* RTP headers, parsing (CSRCs, extension, padding, every truncation), RTCP/RTP
 * demultiplexing, the sender report, and the random start. */
#include <string.h>

#include "call/rtp.h"
#include "testutil.h"

static void test_write_parse(void)
{
    ms_rtp_header h = {.payload_type = 111, .marker = true, .seq = 0xfedc,
                       .timestamp = 0x89abcdef, .ssrc = 0x01234567};
    uint8_t pkt[64];
    ms_rtp_write_header(pkt, &h);
    uint8_t want[12];
    ms_test_hex(want, sizeof want, "80effedc89abcdef01234567");
    CHECK_MEM(pkt, want, 12);
    memcpy(pkt + 12, "opus", 4);

    ms_rtp_header got;
    size_t off = 0, plen = 0;
    CHECK_ERR(ms_rtp_parse(&got, &off, &plen, pkt, 16), MS_OK);
    CHECK(got.payload_type == 111 && got.marker && got.seq == 0xfedc &&
          got.timestamp == 0x89abcdef && got.ssrc == 0x01234567);
    CHECK(off == 12 && plen == 4);
    CHECK_ERR(ms_rtp_parse(&got, &off, &plen, pkt, 12), MS_OK);
    CHECK(plen == 0);

    h.marker = false;
    h.payload_type = 0xff; /* only 7 bits are written */
    ms_rtp_write_header(pkt, &h);
    CHECK(pkt[1] == 0x7f);
}

static void test_parse_options(void)
{
    /* 2 CSRCs, an extension of 1 word, 3 payload octets, 4 octets of padding */
    uint8_t pkt[64];
    ms_test_hex(pkt, sizeof pkt,
                "b2600001" "00000002" "00000003" /* V=2 P=1 X=1 CC=2, PT 96 */
                "11111111" "22222222"             /* CSRCs */
                "bede0001" "aabbccdd"             /* extension, 1 word */
                "010203"                          /* payload */
                "00000004");                      /* padding, count 4 */
    size_t len = 12 + 8 + 8 + 3 + 4;
    ms_rtp_header h;
    size_t off = 0, plen = 0;
    CHECK_ERR(ms_rtp_parse(&h, &off, &plen, pkt, len), MS_OK);
    CHECK(off == 28 && plen == 3);
    CHECK(h.payload_type == 96 && !h.marker && h.seq == 1 && h.ssrc == 3);

    /* every truncation is refused or still consistent */
    for (size_t cut = 0; cut < len; cut++) {
        ms_err err = ms_rtp_parse(&h, &off, &plen, pkt, cut);
        if (err == MS_OK)
            CHECK(off + plen <= cut);
        else
            CHECK(err == MS_ERR_INVALID);
    }
    /* cut inside header, CSRCs, extension: always invalid */
    for (size_t cut = 0; cut < 28; cut++)
        CHECK_ERR(ms_rtp_parse(&h, &off, &plen, pkt, cut), MS_ERR_INVALID);

    uint8_t bad[64];
    memcpy(bad, pkt, len);
    bad[len - 1] = 0; /* padding count 0 */
    CHECK_ERR(ms_rtp_parse(&h, &off, &plen, bad, len), MS_ERR_INVALID);
    bad[len - 1] = 8; /* padding into the extension */
    CHECK_ERR(ms_rtp_parse(&h, &off, &plen, bad, len), MS_ERR_INVALID);
    memcpy(bad, pkt, len);
    bad[0] = (uint8_t)((bad[0] & 0x3f) | 0x40); /* version 1 */
    CHECK_ERR(ms_rtp_parse(&h, &off, &plen, bad, len), MS_ERR_INVALID);
    memcpy(bad, pkt, len);
    bad[23] = 9; /* extension length beyond the packet */
    CHECK_ERR(ms_rtp_parse(&h, &off, &plen, bad, len), MS_ERR_INVALID);
    CHECK_ERR(ms_rtp_parse(NULL, &off, &plen, pkt, len), MS_ERR_ARG);
}

static void test_rtcp(void)
{
    uint8_t sr[32];
    CHECK(ms_rtcp_write_sr(sr, 27, 1, 2, 3, 4, 5) == 0);
    CHECK(ms_rtcp_write_sr(sr, sizeof sr, 0xdeadbeef, 0x0102030405060708ull, 0x11223344,
                           0x55, 0x66) == 28);
    uint8_t want[28];
    ms_test_hex(want, sizeof want,
                "80c80006deadbeef01020304050607081122334400000055" "00000066");
    CHECK_MEM(sr, want, 28);
    CHECK(ms_rtp_is_rtcp(sr, 28));

    uint8_t rtp[12];
    ms_rtp_header h = {.payload_type = 111, .marker = true, .seq = 1, .timestamp = 2,
                       .ssrc = 3};
    ms_rtp_write_header(rtp, &h);
    CHECK(!ms_rtp_is_rtcp(rtp, 12));
    h.payload_type = 0;
    ms_rtp_write_header(rtp, &h);
    CHECK(!ms_rtp_is_rtcp(rtp, 12)); /* second octet 0x80 */
    for (int pt = 192; pt <= 223; pt++) {
        uint8_t p[2] = {0x80, (uint8_t)pt};
        CHECK(ms_rtp_is_rtcp(p, 2));
    }
    uint8_t p224[2] = {0x80, 224}, p191[2] = {0x80, 191};
    CHECK(!ms_rtp_is_rtcp(p224, 2) && !ms_rtp_is_rtcp(p191, 2));
    CHECK(!ms_rtp_is_rtcp(sr, 1));
    CHECK(!ms_rtp_is_rtcp(NULL, 28));
}

static void test_random_start(void)
{
    uint32_t ssrc[8], ts[8];
    uint16_t seq[8];
    for (int i = 0; i < 8; i++) {
        CHECK_ERR(ms_rtp_random_start(&ssrc[i], &seq[i], &ts[i]), MS_OK);
        CHECK(seq[i] < 0x8000);
    }
    /* eight draws of 32 bits: equal values would mean no randomness at all */
    int same = 0;
    for (int i = 1; i < 8; i++)
        same += ssrc[i] == ssrc[0] && ts[i] == ts[0];
    CHECK(same == 0);
    CHECK_ERR(ms_rtp_random_start(NULL, &seq[0], &ts[0]), MS_ERR_ARG);
}

int main(void)
{
    test_write_parse();
    test_parse_options();
    test_rtcp();
    test_random_start();
    return ms_test_finish();
}
