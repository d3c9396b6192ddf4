/*
 * SDP (RFC 4566) for one audio stream, as text: the offer and answer of a secure call,
 * with RFC 4567's a=key-mgmt. Key-less: the attribute's MIKEY message is opaque here.
 */
#ifndef MS_SIP_SDP_H
#define MS_SIP_SDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

#define MS_SDP_MAX 16384 /* octets of one SDP body we build or accept */

typedef struct ms_sdp_audio {
    char addr[64];          /* c= connection address (IPv4 or IPv6 literal) */
    uint16_t port;          /* m=audio port */
    char proto[16];         /* "RTP/SAVP" for a secure call; anything else is refused */
    int payload_type;       /* dynamic PT of Opus (e.g. 96); -1 if none */
    char codec[32];         /* "opus/48000/2" from a=rtpmap */
    char crypto_suite[40];  /* a=x-ms-srtp:<suite>, the SRTP suite the offerer's policy
                               chose ("AEAD_AES_128_GCM" or "AES_CM_128_HMAC_SHA1_80";
                               "" = absent, meaning GCM). TS 33.180's PCK profile carries no
                               SP payload, so the suite travels here; the answerer checks it
                               against its own policy, never takes it blindly. */
    char direction[10];     /* "sendrecv" (default), "sendonly", "recvonly", "inactive" */
    const char *key_mgmt;   /* the whole "mikey <base64>" value after "a=key-mgmt:",
                               NULL when absent (points into the parsed text) */
    size_t key_mgmt_len;
} ms_sdp_audio;

/* Build an SDP with one audio stream: session id from `session_id`, origin address and
 * c= from addr. `key_mgmt_line`, when not NULL, is a whole "a=key-mgmt:mikey ..." line
 * (without CR LF) as ms_sdp_key_mgmt_format writes it. */
ms_err ms_sdp_format(char *out, size_t cap, const ms_sdp_audio *a, uint64_t session_id,
                     const char *key_mgmt_line);

/* Parse the first audio stream of `sdp`. MS_ERR_SDP (detail says which line) when the
 * text is not SDP or has no m=audio; protocol and key-mgmt presence are reported, not
 * judged (the caller decides to refuse RTP/AVP). */
ms_err ms_sdp_parse(ms_sdp_audio *out, const char *sdp, size_t len, char *detail,
                    size_t detail_cap);

#endif
