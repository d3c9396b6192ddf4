/*
 * mikeysakke groups: what a member holds of a group key (TS 33.180 GMK) and how every
 * member's SRTP keys follow from it.
 *
 * A group management server (GMS) makes one GMK, GMK-ID and RAND per group key and sends
 * the GMK to each member in that member's own MIKEY-SAKKE I_MESSAGE (GMK profile). The
 * RAND belongs to the group key, not to one message, so that every member derives every
 * other member's SRTP master key, salt and MKI (GMK-ID || GUK-ID of the sender) from the
 * same values. This header is the contract between the group layer (src/group: the GMS,
 * delivery, the member's store of group keys) and the media side (src/call: one SRTP
 * context per sender, chosen by MKI).
 */
#ifndef MIKEYSAKKE_GROUP_H
#define MIKEYSAKKE_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"
#include "mikeysakke/mikey.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One group key as a member holds it. gmk is secret: wipe the whole struct
 * (ms_group_key_wipe) when done. */
typedef struct ms_group_key {
    char group[128];        /* the group's URI (its MCPTT group ID) */
    uint8_t gmk[16];
    size_t gmk_len;         /* 16 */
    uint32_t gmk_id;        /* K-ID, purpose tag 0 (MS_MIKEY_PURPOSE_GMK) in the top 4 bits */
    uint8_t rand[255];      /* the group key's RAND, the same in every member's message */
    size_t rand_len;
    uint8_t prf;            /* MS_MIKEY_PRF_HMAC_SHA256 for 3GPP profiles */
    uint8_t cs_id;          /* crypto session of the GENERIC-ID map that SRTP keys use */
    uint64_t activation;    /* NTP 32.32 from the key parameters; 0: at once */
    uint64_t expiry;        /* NTP 32.32; 0: none */
} ms_group_key;

MS_API void ms_group_key_wipe(ms_group_key *key);

/* SRTP master key (16), salt (12 for GCM, 14 for AES-CM: salt_len) and MKI (8 octets:
 * GMK-ID || GUK-ID) under which member `sender_uri` sends: GUK-ID from ms_guk_id, then
 * RFC 3830 4.1.3 derivation with csb_id = that GUK-ID. */
MS_API MS_WARN_UNUSED ms_err ms_group_sender_keys(ms_srtp_keys *out, const ms_group_key *key,
                                                  const char *sender_uri, size_t salt_len);

#ifdef __cplusplus
}
#endif
#endif
