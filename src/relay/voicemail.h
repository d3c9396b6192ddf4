/*
 * The voicemail server's SIP side (src/relay/voicemail.c): a SIP user agent (src/sip)
 * that answers the calls a provider diverts to it and records each one into the
 * callee's mailbox (mailbox.h) as a capture file (src/capture): first the INVITE as
 * received (a TCP segment from the provider's address, so readers find the SDP and its
 * I_MESSAGE), then every datagram that reaches its media port, with arrival times. It
 * holds no key: the media stay the opaque SRTP they arrived as.
 *
 * Per INVITE: the mailbox is chosen from X-Original-To, Diversion, To, Request-URI
 * (divert.h) among the provisioned ones (404 otherwise); an offer that is not RTP/SAVP
 * with a=key-mgmt is refused with 488 (never unencrypted audio); a full mailbox gets 486;
 * the answer is RTP/SAVP on our media port, recvonly, with the offer's payload type and
 * no key-mgmt. The message ends on BYE, after max_seconds (we hang up) or when the file
 * would pass max_bytes (we hang up); it is kept if at least one media datagram came,
 * and only then added to the index.
 */
#ifndef MS_RELAY_VOICEMAIL_H
#define MS_RELAY_VOICEMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"
#include "relay/mailbox.h"

typedef struct ms_voicemail ms_voicemail;

typedef struct ms_voicemail_config {
    const char *listen;     /* SIP "IP:PORT" (NULL: 127.0.0.1:0) */
    const char *transport;  /* "tcp" (NULL), "tls", "udp" */
    const char *local_uri;  /* our address of record (NULL: "sip:voicemail@<listen IP>") */
    const char *media_ip;   /* IPv4 for media and the SDP (NULL: the listen IP, or
                               127.0.0.1 when that is a wildcard) */
    /* Registration at the provider (optional). */
    bool do_register;
    const char *proxy;
    const char *auth_user;
    const char *password;   /* secret: handed to the SIP agent, which copies it */
    uint32_t max_seconds;   /* per message; 0: the store's limit */
    /* Is a mailbox provisioned? (e.g. ms_vm_credentials_has). NULL: every URI is. */
    bool (*mailbox_known)(void *ctx, const char *uri);
    void *known_ctx;
    /* One line per event: message stored (mailbox, caller as claimed, duration, size),
     * call refused and why, registration. Never media or secrets. May be NULL. */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
} ms_voicemail_config;

/* Starts the SIP agent; `store` must outlive the server. */
ms_err ms_voicemail_new(ms_voicemail **out, const ms_voicemail_config *cfg,
                        ms_mailbox_store *store, char *detail, size_t detail_cap);
/* The SIP "IP:PORT" bound. */
ms_err ms_voicemail_local_addr(const ms_voicemail *vm, char *out, size_t cap);
/* Runs the event loop until ms_voicemail_stop (from a timer or handler on that loop). */
ms_err ms_voicemail_run(ms_voicemail *vm);
void ms_voicemail_stop(ms_voicemail *vm);
/* Calls ms_voicemail_stop once `*flag` becomes non-zero (checked every 200 ms on the
 * loop): the safe way to stop from a signal handler. */
ms_err ms_voicemail_stop_on(ms_voicemail *vm, volatile int *flag);
/* Messages stored since start. */
unsigned long ms_voicemail_stored(const ms_voicemail *vm);
/* Ends every message in progress (kept if it has media), then frees. NULL allowed. */
void ms_voicemail_free(ms_voicemail *vm);

#endif
