/*
 * SRTP and SRTCP (RFC 3711) on libsrtp2, with TS 33.180's MKI on every packet. The only
 * file that calls libsrtp2 (no project symbol starts with srtp_; libre's SRTP is never
 * used). One ms_srtp is one direction of one call: outbound protects, inbound unprotects
 * (with libsrtp's replay protection).
 */
#ifndef MS_CALL_SRTP_H
#define MS_CALL_SRTP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"
#include "mikeysakke/mikey.h"

typedef enum ms_srtp_suite {
    MS_SRTP_AEAD_AES_128_GCM = 0,        /* RFC 7714: 16-octet key, 12-octet salt, 16-octet tag */
    MS_SRTP_AES_CM_128_HMAC_SHA1_80 = 1  /* RFC 3711: 16-octet key, 14-octet salt, 10-octet tag */
} ms_srtp_suite;

/* Octets protect may add to an RTP packet (tag + MKI) or an RTCP packet (+ SRTCP index). */
#define MS_SRTP_MAX_OVERHEAD 48

/* "AEAD_AES_128_GCM" / "AES_CM_128_HMAC_SHA1_80"; parse accepts those names. */
const char *ms_srtp_suite_name(ms_srtp_suite s);
ms_err ms_srtp_suite_parse(ms_srtp_suite *out, const char *name);
/* Master key and salt lengths the suite takes (for ms_mikey_srtp_keys). */
void ms_srtp_suite_lengths(ms_srtp_suite s, size_t *key_len, size_t *salt_len);

typedef struct ms_srtp ms_srtp;

/* keys: master key, salt and MKI (keys->mki_len may be 0 for plain RFC 6509). libsrtp is
 * initialised once per process on first use. */
ms_err ms_srtp_new(ms_srtp **out, ms_srtp_suite suite, const ms_srtp_keys *keys,
                   bool outbound);

/* libsrtp's one-time initialisation (its cipher self-tests, ~10 ms) on a thread of its
 * own, so that a command can overlap it with other work (the auditor with reading the
 * keys). The first ms_srtp_new waits for it if it is still running. Every started warm-up
 * is joined before the process exits (a library initialising while exit runs the
 * destructors is asking for a crash). */
typedef struct ms_srtp_warm_up {
    pthread_t thread;
    bool started;
} ms_srtp_warm_up;
void ms_srtp_warm_up_start(ms_srtp_warm_up *w);
void ms_srtp_warm_up_join(ms_srtp_warm_up *w);
void ms_srtp_free(ms_srtp *s); /* wipes; NULL allowed */

/* In place: pkt holds *len octets of RTP (RTCP) and has room for cap octets. */
ms_err ms_srtp_protect(ms_srtp *s, uint8_t *pkt, size_t *len, size_t cap);
ms_err ms_srtp_protect_rtcp(ms_srtp *s, uint8_t *pkt, size_t *len, size_t cap);
/* MS_ERR_SRTP_AUTH (tampered, wrong key or wrong MKI), MS_ERR_SRTP_REPLAY, or
 * MS_ERR_INVALID for a packet too short to be SRTP. */
ms_err ms_srtp_unprotect(ms_srtp *s, uint8_t *pkt, size_t *len);
ms_err ms_srtp_unprotect_rtcp(ms_srtp *s, uint8_t *pkt, size_t *len);

/* Late entry (RFC 4771): the roll-over counter of the sender's stream `ssrc`, as carried
 * in a packet, is set on this inbound context before the packet is unprotected (a stream
 * for that SSRC is added if none exists yet). A wrong ROC makes the packet fail
 * authentication, so a forged one cannot open anything; ms_srtp_undo_roc then takes back
 * what the forged packet changed (the stream it added, the ROC it set), so that it can
 * neither fill the context with streams nor derail the sender's real stream. */
typedef struct ms_srtp_roc_undo {
    bool added, changed;
    uint32_t ssrc, previous;
} ms_srtp_roc_undo;
ms_err ms_srtp_set_roc(ms_srtp *s, uint32_t ssrc, uint32_t roc, ms_srtp_roc_undo *undo);
void ms_srtp_undo_roc(ms_srtp *s, const ms_srtp_roc_undo *undo);
/* The ROC libsrtp holds for `ssrc` (MS_ERR_INVALID: no stream for it yet). */
ms_err ms_srtp_roc(ms_srtp *s, uint32_t ssrc, uint32_t *roc);

#endif
