/*
 * The key side of a call: MIKEY-SAKKE offers and their checks, from a device keystore
 * (caller, callee, voicemail playback) or from one extracted RSK (the auditor). Turns a
 * refused offer into the SIP status and Warning text the callee sends back.
 */
#ifndef MS_CALL_KEYS_H
#define MS_CALL_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "call/srtp.h"
#include "mikeysakke/client.h"
#include "mikeysakke/mikey.h"
#include "sip/sdp.h"

typedef enum ms_call_keys_mode {
    MS_CALL_KEYS_LIVE = 0,   /* a call now: timestamp window, replay cache */
    MS_CALL_KEYS_STORED = 1, /* voicemail played later: no clock window (T must fall in a
                                period whose keys are held), signature, addressee and
                                period still checked; replays reported by the caller */
    MS_CALL_KEYS_AUDIT = 2   /* an auditor with one user's RSK for one period: opens
                                messages to that user, and the user's own through
                                SAKKE-to-self; no clock window */
} ms_call_keys_mode;

#define MS_CALL_SUITE_GCM (1u << MS_SRTP_AEAD_AES_128_GCM)
#define MS_CALL_SUITE_CM (1u << MS_SRTP_AES_CM_128_HMAC_SHA1_80)

typedef struct ms_call_keys_options {
    ms_call_keys_mode mode;
    ms_mikey_profile profile;   /* auditor: MS_MIKEY_PROFILE_PCK or _RFC6509, as the KMS's
                                   identifier scheme says; a keystore's own scheme decides
                                   for devices (monthly tel: RFC 6509, hashed UID: PCK) */
    bool no_sakke_to_self;      /* PCK: leave out SAKKE-to-self (the default puts it in,
                                   so the caller's own key, and so the auditor, opens it) */
    ms_srtp_suite suite;        /* what we offer */
    unsigned accepted_suites;   /* MS_CALL_SUITE_* we answer (0: both) */
    uint64_t max_skew;          /* live: seconds (0: 300) */
    uint64_t (*clock)(void *clock_ctx); /* NTP 32.32 now, for tests; NULL: real time */
    void *clock_ctx;
} ms_call_keys_options;

typedef struct ms_call_keys ms_call_keys;

/* A device: opens the keystore and loads every held period into a MIKEY context. */
ms_err ms_call_keys_open(ms_call_keys **out, const char *keystore_dir, const char *passphrase,
                         size_t passphrase_len, const ms_call_keys_options *opt,
                         char *detail, size_t detail_cap);
/* The auditor: one user's RSK of one period (from kms audit extract) and the KMS's public
 * keys. opt->mode must be MS_CALL_KEYS_AUDIT. */
ms_err ms_call_keys_open_audit(ms_call_keys **out, const char *user_uri, uint64_t period_no,
                               const uint8_t rsk[MS_SAKKE_POINT_BYTES],
                               const ms_mikey_kms_info *kms, const ms_call_keys_options *opt,
                               char *detail, size_t detail_cap);
void ms_call_keys_free(ms_call_keys *k); /* wipes; NULL allowed */
const char *ms_call_keys_own_uri(const ms_call_keys *k);
/* Build the encapsulation table for a peer about to be called (live mode; the SIP
 * identity is mapped as for offers), so the offer itself is quick. Best effort. */
ms_err ms_call_keys_prepare_peer(ms_call_keys *k, const char *callee_uri);
/* The MIKEY profile in use (the keystore's community decides it). */
ms_mikey_profile ms_call_keys_profile(const ms_call_keys *k);
/* The device keystore behind a device-mode object (NULL for the auditor). */
ms_keystore *ms_call_keys_keystore(ms_call_keys *k);

/* What one accepted offer gives both ends. Secret: ms_call_crypto_wipe when done. */
typedef struct ms_call_crypto {
    ms_mikey_result mikey;      /* TGK (the PCK), RAND, T, identities */
    ms_srtp_suite suite;
    ms_srtp_keys srtp;          /* master key, salt, MKI (the PCK-ID) for both directions */
    char peer[256];             /* the other party as MIKEY verified it */
    uint64_t period_no;
    uint32_t key_id;            /* PCK-ID (3GPP) or CSB-ID (RFC 6509) */
    bool opened_as_initiator;   /* our own message, opened through SAKKE-to-self */
} ms_call_crypto;
void ms_call_crypto_wipe(ms_call_crypto *c);

/* Why an offer was refused: the SIP final status (488 for the offer's form: RTP/AVP, no
 * key-mgmt, malformed MIKEY, suite outside policy; 606 for the key checks: bad signature,
 * unknown KMS, stale timestamp, replay, not addressed to me, no keys for that period),
 * the Warning text ("bad signature: ...") and the library's code. */
typedef struct ms_call_refusal {
    int sip_status;
    char warning[256];
    ms_err err;
} ms_call_refusal;

/* Caller: a fresh I_MESSAGE to callee_uri, and the SDP offer carrying it with our media
 * address. */
ms_err ms_call_make_offer(ms_call_keys *k, char *sdp, size_t sdp_cap, ms_call_crypto *out,
                          const char *callee_uri, const char *media_ip, uint16_t media_port,
                          char *detail, size_t detail_cap);

/* Callee (and voicemail playback, and the auditor): check an SDP offer. `claimed_caller`
 * is the From URI the signalling gives (NULL: not checked). On refusal returns the error
 * and fills *why; never accepts an offer without encrypted media. remote (may be NULL)
 * receives the parsed stream (its key_mgmt pointer points into sdp). */
ms_err ms_call_check_offer(ms_call_keys *k, ms_call_crypto *out, ms_sdp_audio *remote,
                           ms_call_refusal *why, const char *sdp, size_t sdp_len,
                           const char *claimed_caller);

/* The same for a bare I_MESSAGE (audit, tests). */
ms_err ms_call_open_imessage(ms_call_keys *k, ms_call_crypto *out, ms_call_refusal *why,
                             const uint8_t *imsg, size_t imsg_len, const char *claimed_caller);

/* Callee: the SDP answer (RTP/SAVP, our media address, the suite of the offer). */
ms_err ms_call_make_answer(char *sdp, size_t sdp_cap, const ms_call_crypto *c,
                           const char *media_ip, uint16_t media_port);

/* SIP identity <-> MIKEY identity: a From URI "sip:+447700900123@host;user=phone" or
 * "tel:+447700900123" is tel:+447700900123 for an RFC 6509 community; a PCK community
 * uses the SIP URI itself (scheme, user and host, without parameters). */
ms_err ms_call_identity_from_sip(char *out, size_t cap, const char *sip_uri,
                                 ms_mikey_profile profile);

#endif
