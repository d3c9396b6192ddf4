/*
 * A member in a group call (`mikeysakke call dial --group`): dials the group's URI (the
 * conference relay answers, through the provider), sends its audio in SRTP under its own
 * keys of the group key (call/group_media.h) and decodes every other member's stream,
 * mixed into one WAV (or the sound card) and, on request, one WAV per sender.
 *
 * The relay is key-less and the offer carries no a=key-mgmt: the keys come from the group
 * key every member already holds (TS 33.180 GMK) in its keystore (`group join`), the
 * GMS-signed roster stored with it names the senders. The member sends under the key in
 * force and, during a rekey hand-over, also opens packets under the other key it holds
 * (the previous or the next one), for the members of the current roster only.
 *
 * Starting and ending without losing audio: with start_after = N the member sends its
 * first audio frame only once it has heard (authenticated SRTP or SRTCP) from N other
 * members, so that a five-member call hears every frame; every member sends an SRTCP
 * sender report each 200 ms from joining, and an SRTCP BYE when its input ends. It hangs
 * up once its own input has ended and every member it heard has said BYE (or after
 * max_seconds).
 */
#ifndef MS_CALL_GROUP_CALL_H
#define MS_CALL_GROUP_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

typedef enum ms_group_call_event_type {
    MS_GROUP_EV_REGISTERED = 1, /* sip_status: 200 or the failure */
    MS_GROUP_EV_JOINED,         /* the relay answered */
    MS_GROUP_EV_HEARD,          /* the first authenticated packet of a member (peer) */
    MS_GROUP_EV_SENDING,        /* our audio starts */
    MS_GROUP_EV_BYE,            /* a member's input ended (its SRTCP BYE) */
    MS_GROUP_EV_REJECTED,       /* the relay or the provider refused the INVITE */
    MS_GROUP_EV_LEFT            /* we left; the counters are final */
} ms_group_call_event_type;

typedef struct ms_group_call_event {
    ms_group_call_event_type type;
    char group[128];
    char peer[256];           /* HEARD, BYE: the member; JOINED: the relay's media address */
    int sip_status;
    char warning[256];
    char suite[32];
    uint32_t gmk_id;          /* the key we send under */
    uint32_t other_gmk_id;    /* the other key we accept (0: none) */
    uint32_t ssrc;            /* ours */
    uint64_t packets_sent, packets_received, packets_auth_failed, packets_replayed;
    uint64_t packets_other_key; /* of packets_received: opened under the other key */
    uint64_t frames_decoded;
    uint32_t members_heard;
} ms_group_call_event;

typedef struct ms_group_call_config {
    const char *keystore_dir;   /* the device; its user is who we are (unless own_uri) */
    const char *passphrase;
    size_t passphrase_len;
    const char *own_uri;
    const char *group_uri;      /* whom to dial */
    uint32_t gmk_id;            /* the group key to send under; 0: the one in force */
    const char *suite;          /* NULL: AEAD_AES_128_GCM */
    uint16_t roc_every;         /* R of RFC 4771 (0: 1) */
    uint32_t start_after;       /* members to hear before sending (0: at once) */
    /* SIP */
    const char *proxy, *listen, *transport, *auth_user, *password, *tls_ca_file;
    bool do_register;
    /* audio */
    const char *play_wav;       /* 48 kHz mono; NULL and no record: the sound card */
    const char *record_wav;     /* the mix */
    const char *record_dir;     /* one WAV per sender, named after its URI's user part */
    const char *sound_device;
    uint32_t max_seconds;       /* 0: 3600 */
    uint32_t ring_timeout_s;    /* 0: 30 */
    void (*event)(void *arg, const ms_group_call_event *ev);
    void *event_arg;
    /* When *stop_flag becomes non-zero (e.g. from a signal handler) the member hangs up
     * and the WAVs are completed. May be NULL. */
    volatile int *stop_flag;
} ms_group_call_config;

/* Joins, talks, leaves. MS_ERR_CALL_REFUSED when the relay refuses, MS_ERR_SIP for
 * signalling failures. */
ms_err ms_group_call_run(const ms_group_call_config *cfg, char *detail, size_t detail_cap);

#endif
