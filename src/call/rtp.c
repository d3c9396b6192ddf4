/* RTP (RFC 3550) fixed headers, parsing, and the RTCP sender report. */
#include "call/rtp.h"
#include "util/bytes.h"

#include <string.h>

#include <openssl/rand.h>

void ms_rtp_write_header(uint8_t out[MS_RTP_HEADER], const ms_rtp_header *h)
{
    out[0] = 0x80; /* V=2, P=0, X=0, CC=0 */
    out[1] = (uint8_t)((h->marker ? 0x80 : 0) | (h->payload_type & 0x7f));
    ms_store_be16(out + 2, h->seq);
    ms_store_be32(out + 4, h->timestamp);
    ms_store_be32(out + 8, h->ssrc);
}

ms_err ms_rtp_parse(ms_rtp_header *h, size_t *payload_off, size_t *payload_len,
                    const uint8_t *pkt, size_t len)
{
    if (h == NULL || payload_off == NULL || payload_len == NULL || pkt == NULL)
        return MS_ERR_ARG;
    if (len < MS_RTP_HEADER || (pkt[0] >> 6) != 2)
        return MS_ERR_INVALID;
    bool padding = (pkt[0] & 0x20) != 0;
    bool extension = (pkt[0] & 0x10) != 0;
    size_t off = MS_RTP_HEADER + 4u * (pkt[0] & 0x0f);
    if (off > len)
        return MS_ERR_INVALID;
    if (extension) {
        /* 16-bit profile field, 16-bit length in 32-bit words (RFC 3550 5.3.1) */
        if (off + 4 > len)
            return MS_ERR_INVALID;
        size_t ext_words = ms_load_be16(pkt + off + 2);
        off += 4 + 4 * ext_words;
        if (off > len)
            return MS_ERR_INVALID;
    }
    size_t end = len;
    if (padding) {
        /* the last octet counts the padding, itself included */
        size_t pad = pkt[len - 1];
        if (pad == 0 || pad > len - off)
            return MS_ERR_INVALID;
        end -= pad;
    }
    h->payload_type = pkt[1] & 0x7f;
    h->marker = (pkt[1] & 0x80) != 0;
    h->seq = ms_load_be16(pkt + 2);
    h->timestamp = ms_load_be32(pkt + 4);
    h->ssrc = ms_load_be32(pkt + 8);
    *payload_off = off;
    *payload_len = end - off;
    return MS_OK;
}

bool ms_rtp_is_rtcp(const uint8_t *pkt, size_t len)
{
    /* RFC 5761 4: RTCP packet types 192-223 never collide with RTP payload types
     * 0-63 and 96-127 (with or without the marker bit), so the second octet decides. */
    return pkt != NULL && len >= 2 && (pkt[0] >> 6) == 2 && pkt[1] >= 192 && pkt[1] <= 223;
}

size_t ms_rtcp_write_sr(uint8_t *out, size_t cap, uint32_t ssrc, uint64_t ntp,
                        uint32_t rtp_ts, uint32_t packets, uint32_t octets)
{
    const size_t sr_len = 28;
    if (out == NULL || cap < sr_len)
        return 0;
    out[0] = 0x80; /* V=2, P=0, RC=0 */
    out[1] = 200;  /* SR */
    ms_store_be16(out + 2, (uint16_t)(sr_len / 4 - 1));
    ms_store_be32(out + 4, ssrc);
    ms_store_be32(out + 8, (uint32_t)(ntp >> 32));
    ms_store_be32(out + 12, (uint32_t)ntp);
    ms_store_be32(out + 16, rtp_ts);
    ms_store_be32(out + 20, packets);
    ms_store_be32(out + 24, octets);
    return sr_len;
}

ms_err ms_rtp_random_start(uint32_t *ssrc, uint16_t *seq, uint32_t *timestamp)
{
    if (ssrc == NULL || seq == NULL || timestamp == NULL)
        return MS_ERR_ARG;
    uint8_t r[10];
    if (RAND_bytes(r, (int)sizeof r) != 1)
        return MS_ERR_RNG;
    *ssrc = ms_load_be32(r);
    /* random (RFC 3550 5.1) but below 2^15: the first rollover is then at least 2^15
     * packets away, so a receiver's index estimate from the first packet it sees
     * (RFC 3711 3.3.1, ROC 0) is never off by one rollover */
    *seq = (uint16_t)(ms_load_be16(r + 4) & 0x7fff);
    *timestamp = ms_load_be32(r + 6);
    return MS_OK;
}
