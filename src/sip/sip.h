/*
 * SIP user agent on libre (private to src/; key-less: the voicemail store links it).
 *
 * One agent per process, one thread: ms_sip_run() drives libre's event loop, and every
 * callback, timer and socket handler runs on that thread. TCP is the default transport
 * (an INVITE with an I_MESSAGE is ~1.4 kB, over RFC 3261's UDP limit); TLS and UDP on
 * request. The agent knows SDP only as text: what the body means is the caller's business.
 */
#ifndef MS_SIP_SIP_H
#define MS_SIP_SIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

typedef struct ms_sip ms_sip;
typedef struct ms_sip_call ms_sip_call;

typedef struct ms_sip_config {
    const char *local_uri;   /* our address of record, e.g. "sip:alice@example.org" */
    const char *display;     /* display name (may be NULL) */
    const char *listen;      /* "IP:PORT" to listen on (answer --listen); NULL: 127.0.0.1:0 */
    const char *transport;   /* "tcp" (NULL), "tls" or "udp" */
    const char *proxy;       /* outbound proxy SIP URI, e.g. "sip:127.0.0.1:5060;transport=tcp";
                                NULL: requests go to the request URI's host */
    bool do_register;        /* REGISTER local_uri at the proxy (registrar) and keep it */
    uint32_t register_expires; /* seconds (0: 600) */
    const char *auth_user;   /* digest credentials (NULL: none) */
    const char *password;    /* secret: the agent copies and wipes it */
    const char *tls_ca_file; /* trust anchors for TLS (NULL: system) */
    const char *user_agent;  /* User-Agent header (NULL: "mikeysakke") */
} ms_sip_config;

/* What the agent tells its owner. Every pointer is valid only during the call. */
typedef struct ms_sip_handlers {
    /* An INVITE arrived. Return 0 to accept with `answer_sdp` (written into answer_cap
     * octets, NUL-terminated), or a SIP status (4xx-6xx) to refuse it, with `warning`
     * (may be left empty) sent as `Warning: 399 <host> "<warning>"`. `raw` is the whole
     * INVITE as received (for the voicemail store's capture). A call refused here ends
     * here: no closed handler follows for it. */
    int (*incoming)(void *arg, ms_sip_call *call, const char *from_uri, const char *to_uri,
                    const char *request_uri, const char *sdp, size_t sdp_len,
                    const uint8_t *raw, size_t raw_len, char *answer_sdp, size_t answer_cap,
                    char *warning, size_t warning_cap);
    /* The call is up: on our side after 200 OK (dial) or ACK (answer). remote_sdp is
     * the answer (dial) or the offer (answer). */
    void (*established)(void *arg, ms_sip_call *call, const char *remote_sdp,
                        size_t remote_sdp_len);
    /* The call ended or failed: status is the final SIP status for a refused or failed
     * INVITE (e.g. 488, 606, 408), 0 for a BYE from either side; reason the reason
     * phrase or why the transport failed; warning the text of a Warning header ("" if
     * none). After our own ms_sip_hangup: 0, or 487 if it cancelled an unanswered
     * INVITE. The ms_sip_call is freed after this returns. */
    void (*closed)(void *arg, ms_sip_call *call, int status, const char *reason,
                   const char *warning);
    /* Registration result: status 200 when registered, else the failure. May be NULL. */
    void (*registered)(void *arg, int status, const char *reason);
    /* A MESSAGE outside any dialog (RFC 3428): return the SIP status to answer (200, or
     * 4xx-6xx); `warning` (may be left empty) goes into a Warning header. May be NULL:
     * MESSAGE is then refused with 405. content_type is the whole header value. */
    int (*message)(void *arg, const char *from_uri, const char *content_type,
                   const uint8_t *body, size_t body_len, char *warning, size_t warning_cap);
} ms_sip_handlers;

/* Starts libre (once per process), the transport and, with do_register, registration.
 * detail names what failed (bad URI, port in use, ...). */
ms_err ms_sip_new(ms_sip **out, const ms_sip_config *cfg, const ms_sip_handlers *h, void *arg,
                  char *detail, size_t detail_cap);
/* Unregisters (best effort), closes every call and frees. NULL allowed. */
void ms_sip_free(ms_sip *sip);

/* "IP:PORT" actually bound (after listen with port 0). */
ms_err ms_sip_local_addr(const ms_sip *sip, char *out, size_t cap);

/* Send an INVITE to `to_uri` with `offer_sdp` as application/sdp body. */
ms_err ms_sip_dial(ms_sip *sip, ms_sip_call **out, const char *to_uri, const char *offer_sdp);

/* Send a MESSAGE (RFC 3428) outside any dialog, through the proxy when there is one; one
 * digest challenge is answered. done (may be NULL) gets the final status (2xx: taken;
 * 408/503 made here when no answer came or the transport failed) and reason, once. */
ms_err ms_sip_message(ms_sip *sip, const char *to_uri, const char *content_type,
                      const uint8_t *body, size_t body_len,
                      void (*done)(void *arg, int status, const char *reason), void *arg);

/* Send BYE (or CANCEL before the answer). The closed handler follows. */
void ms_sip_hangup(ms_sip_call *call);

/* Per-call owner data. */
void ms_sip_call_set_arg(ms_sip_call *call, void *arg);
void *ms_sip_call_arg(const ms_sip_call *call);
/* The peer's address of record as the signalling names it (From for incoming, To for
 * outgoing) and the Call-ID. */
const char *ms_sip_call_peer(const ms_sip_call *call);
const char *ms_sip_call_id(const ms_sip_call *call);
/* During `closed`: non-zero when our own stack ended the call (the transport failed, or no
 * final answer came in time: the 503 and 408 it reports were made here, not received). */
int ms_sip_call_failed_locally(const ms_sip_call *call);

/* The event loop: runs until ms_sip_stop (or a fatal error). */
ms_err ms_sip_run(ms_sip *sip);
void ms_sip_stop(ms_sip *sip);

/* Timers and UDP sockets on the same loop, for media. */
typedef struct ms_sip_timer ms_sip_timer;
ms_err ms_sip_timer_start(ms_sip *sip, ms_sip_timer **out, uint64_t delay_ms,
                          void (*fn)(void *arg), void *arg);
/* Stops (if still running) and frees; NULL allowed. A timer that fired is still the
 * owner's to free: its function may call this on it. */
void ms_sip_timer_cancel(ms_sip_timer *t);

typedef struct ms_sip_udp ms_sip_udp;
/* Bind a UDP socket on `ip` (port 0: any free). recv gets each datagram with its
 * source "IP:PORT" and the arrival time (Unix microseconds). */
ms_err ms_sip_udp_open(ms_sip *sip, ms_sip_udp **out, const char *ip,
                       void (*recv)(void *arg, const uint8_t *data, size_t len,
                                    const char *src, uint64_t arrival_us),
                       void *arg);
uint16_t ms_sip_udp_port(const ms_sip_udp *u);
ms_err ms_sip_udp_send(ms_sip_udp *u, const char *dst_ip, uint16_t dst_port,
                       const uint8_t *data, size_t len);
void ms_sip_udp_close(ms_sip_udp *u); /* NULL allowed */

#endif
