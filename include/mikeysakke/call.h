/*
 * mikeysakke call layer: a phone that places and answers end-to-end encrypted calls
 * through any SIP provider. Signalling is SIP (libre) over TCP or TLS; each INVITE carries
 * a MIKEY-SAKKE I_MESSAGE in its SDP (RFC 4567 a=key-mgmt), TS 33.180 PCK profile with
 * SAKKE-to-self by default; media is Opus in SRTP (libsrtp2, AEAD_AES_128_GCM by default)
 * with the PCK-ID as MKI. A call needs the device's keystore and nothing else: no KMS,
 * no server on the media path that holds a key.
 *
 * One ms_phone per thread: dial and answer run the event loop on the calling thread and
 * return when their calls are over. Events (registered, established, refused, ended)
 * reach the caller's callback on that thread.
 */
#ifndef MIKEYSAKKE_CALL_H
#define MIKEYSAKKE_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"
#include "mikeysakke/mikey.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ms_call_event_type {
    MS_CALL_EV_REGISTERED = 1, /* the registrar accepted us (or refused: sip_status) */
    MS_CALL_EV_ESTABLISHED = 2, /* keys agreed, media flowing */
    MS_CALL_EV_REFUSED = 3,    /* we refused an incoming offer (sip_status, warning) */
    MS_CALL_EV_REJECTED = 4,   /* the other side or the provider refused our call */
    MS_CALL_EV_ENDED = 5       /* an established call ended (statistics filled) */
} ms_call_event_type;

typedef struct ms_call_event {
    ms_call_event_type type;
    bool incoming;
    char peer[256];        /* as MIKEY verified it (established), else as signalled */
    char call_id[128];
    uint64_t period_no;    /* key period of the call's I_MESSAGE */
    uint32_t key_id;       /* PCK-ID (3GPP) or CSB-ID (RFC 6509): the MKI */
    char suite[32];        /* "AEAD_AES_128_GCM" or "AES_CM_128_HMAC_SHA1_80" */
    int sip_status;        /* refused / rejected / registration status */
    char warning[256];     /* the Warning text of a refusal */
    ms_err err;            /* why we refused, or what failed */
    /* ENDED: media statistics */
    uint64_t packets_sent, packets_received, packets_auth_failed, packets_replayed;
    uint64_t frames_recorded;
    uint64_t setup_us;     /* dial: INVITE sent to first decrypted frame (0 if none) */
    uint64_t mikey_us;     /* time spent building or checking the I_MESSAGE */
} ms_call_event;

typedef struct ms_phone_config {
    /* Keys: the device keystore and its passphrase (secret: copied, wiped on free). */
    const char *keystore_dir;
    const char *passphrase;
    size_t passphrase_len;
    /* The profile follows the keystore's community: TS 33.180 PCK (with SAKKE-to-self)
     * for hashed-UID identifiers, RFC 6509 for monthly tel URI identifiers. */
    bool no_sakke_to_self;     /* PCK: leave out SAKKE-to-self (auditors then cannot open
                                  our outgoing calls with our key) */
    const char *suite;         /* offered SRTP suite name (NULL: AEAD_AES_128_GCM) */
    bool gcm_only;             /* answer only AEAD_AES_128_GCM offers */

    /* SIP */
    const char *sip_uri;       /* our address of record (NULL: the keystore's user URI) */
    const char *proxy;         /* outbound proxy, "sip:127.0.0.1:5060;transport=tcp" */
    const char *listen;        /* "IP:PORT" (NULL: 127.0.0.1, any port) */
    const char *transport;     /* "tcp" (NULL), "tls", "udp" */
    bool do_register;
    const char *auth_user;
    const char *password;      /* secret: copied, wiped on free */
    const char *tls_ca_file;

    /* Media: WAV files (48 kHz mono 16-bit) or, with both NULL, the sound card. */
    const char *play_wav;
    const char *record_wav;    /* answer: one file per call gets "-N" before ".wav" */
    const char *sound_device;  /* ALSA device (NULL: "default") */
    uint32_t max_seconds;      /* hang up an established call after this (0: 3600) */
    uint32_t answer_calls;     /* answer: return after this many calls (0: forever) */
    uint32_t ring_timeout_s;   /* dial: give up after (0: 30) */

    void (*event)(void *arg, const ms_call_event *ev);
    void *event_arg;
    /* NTP 32.32 clock for tests (NULL: real time). */
    uint64_t (*clock)(void *clock_ctx);
    void *clock_ctx;
} ms_phone_config;

typedef struct ms_phone ms_phone;

/* Opens the keystore, loads its keys and starts SIP (registering when asked; the
 * REGISTERED event follows once the registrar answers). detail names what failed. */
MS_API MS_WARN_UNUSED ms_err ms_phone_new(ms_phone **out, const ms_phone_config *cfg,
                                          char *detail, size_t detail_cap)
    MS_NONNULL(1, 2);
MS_API void ms_phone_free(ms_phone *phone);

/* Places one call and returns when it ends: MS_OK after a call that was established,
 * MS_ERR_CALL_REFUSED (detail: status and Warning) when refused, MS_ERR_SIP when the
 * signalling failed. Hangs up at the end of play_wav or on the peer's BYE. */
MS_API MS_WARN_UNUSED ms_err ms_phone_dial(ms_phone *phone, const char *to_uri, char *detail,
                                           size_t detail_cap)
    MS_NONNULL(1, 2);

/* Waits for and answers calls (refusing bad offers with a SIP error and a Warning),
 * until answer_calls calls have ended or ms_phone_stop. */
MS_API MS_WARN_UNUSED ms_err ms_phone_answer(ms_phone *phone, char *detail, size_t detail_cap)
    MS_NONNULL(1);

/* From a signal handler or an event callback: leave dial/answer soon. */
MS_API void ms_phone_stop(ms_phone *phone);

#ifdef __cplusplus
}
#endif
#endif
