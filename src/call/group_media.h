/*
 * A member's SRTP for a group call (TS 33.180 group crypto session): one outbound context
 * under the member's own keys, and one inbound context per sender, chosen by the MKI
 * (GMK-ID || GUK-ID of the sender) carried in every packet. libsrtp2 holds at most 16
 * master keys per policy, so the lookup is ours and a group has no such limit.
 *
 * Late entry (RFC 4771): packets whose sequence number is a multiple of R carry the
 * sender's 4-octet roll-over counter after the SRTP packet; a receiver that joins after
 * a sequence-number wrap sets the sender's ROC from it. libsrtp2 knows nothing of it.
 */
#ifndef MS_CALL_GROUP_MEDIA_H
#define MS_CALL_GROUP_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "call/srtp.h"
#include "mikeysakke/group.h"

/* What protect may add to an RTP packet: SRTP's tag and MKI, and the ROC. */
#define MS_GROUP_MEDIA_OVERHEAD (MS_SRTP_MAX_OVERHEAD + 4)
#define MS_GROUP_ROC_LEN 4

typedef struct ms_group_media ms_group_media;

/* key: the group key (copied, wiped on free); own_uri: whose keys we send under.
 * roc_every: R of RFC 4771 (0 or 1: every packet carries the ROC). */
ms_err ms_group_media_new(ms_group_media **out, const ms_group_key *key, const char *own_uri,
                          ms_srtp_suite suite, uint16_t roc_every, char *detail,
                          size_t detail_cap);
void ms_group_media_free(ms_group_media *g); /* wipes; NULL allowed */

/* The roster: a sender's keys are derived when it is added. *index (may be NULL) is the
 * sender's slot, stable until it is removed; MS_ERR_EXISTS if its URI or its MKI is
 * already there. Removing a sender makes its packets fail authentication. */
ms_err ms_group_media_add_sender(ms_group_media *g, const char *uri, size_t *index);
ms_err ms_group_media_remove_sender(ms_group_media *g, const char *uri);
/* Slots in use so far (some may be empty after a removal) and a slot's URI ("" if empty). */
size_t ms_group_media_slots(const ms_group_media *g);
const char *ms_group_media_sender(const ms_group_media *g, size_t index);
/* Our own MKI (8 octets). */
const uint8_t *ms_group_media_own_mki(const ms_group_media *g);

/* In place; pkt has room for cap octets. RTP gets the ROC appended when SEQ % R == 0. */
ms_err ms_group_media_protect(ms_group_media *g, uint8_t *pkt, size_t *len, size_t cap);
ms_err ms_group_media_protect_rtcp(ms_group_media *g, uint8_t *pkt, size_t *len, size_t cap);

/* An SRTP or SRTCP packet (RFC 5761 decides which) from any sender: *rtcp says which it
 * was and *sender whose it was. MS_ERR_SRTP_AUTH for an unknown (or removed) MKI, a
 * wrong key or a tampered packet; MS_ERR_SRTP_REPLAY; MS_ERR_INVALID if too short. */
ms_err ms_group_media_unprotect(ms_group_media *g, uint8_t *pkt, size_t *len, bool *rtcp,
                                size_t *sender);

#endif
