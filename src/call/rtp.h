/* RTP (RFC 3550) headers and a minimal RTCP sender report, for the call's media. */
#ifndef MS_CALL_RTP_H
#define MS_CALL_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

#define MS_RTP_HEADER 12

typedef struct ms_rtp_header {
    uint8_t payload_type;
    bool marker;
    uint16_t seq;
    uint32_t timestamp;
    uint32_t ssrc;
} ms_rtp_header;

/* Writes the 12-octet fixed header (V=2, no padding, extension or CSRC). */
void ms_rtp_write_header(uint8_t out[MS_RTP_HEADER], const ms_rtp_header *h);
/* Parses a packet; *payload_off receives where the payload starts (after CSRCs and an
 * extension). MS_ERR_INVALID if it is not RTP version 2 or is truncated. */
ms_err ms_rtp_parse(ms_rtp_header *h, size_t *payload_off, size_t *payload_len,
                    const uint8_t *pkt, size_t len);
/* RTCP (PT 200-204) or RTP? RFC 5761's rule on the second octet. */
bool ms_rtp_is_rtcp(const uint8_t *pkt, size_t len);
/* An RTCP sender report (no report blocks) into out (28 octets). */
size_t ms_rtcp_write_sr(uint8_t *out, size_t cap, uint32_t ssrc, uint64_t ntp,
                        uint32_t rtp_ts, uint32_t packets, uint32_t octets);
/* A random SSRC and initial sequence number from the system CSPRNG. */
ms_err ms_rtp_random_start(uint32_t *ssrc, uint16_t *seq, uint32_t *timestamp);

#endif
