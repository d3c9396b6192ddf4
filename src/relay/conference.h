/*
 * The conference relay (src/relay/conference.c): a SIP conference focus and an RTP
 * transport translator (RFC 7667 3.3). Members INVITE a group's URI at the relay (through
 * the provider); the relay answers with a media port of its own per member and forwards
 * every SRTP and SRTCP packet a member sends, unchanged, to every other member of the same
 * group. It holds no key: the SDP it answers carries no a=key-mgmt, and the packets are
 * opaque to it (a member's keys come from the group's GMK, which the relay never sees).
 *
 * A member joins with its INVITE (the group is the request's To URI without parameters)
 * and leaves with a BYE, or when nothing came from it for media_timeout_s (the relay
 * hangs up). Offers that are not RTP/SAVP are refused (488): unencrypted audio is never
 * fanned out. A datagram is forwarded only if it comes from the address the member's SDP
 * named (symmetric RTP) and looks like RTP or RTCP version 2.
 */
#ifndef MS_RELAY_CONFERENCE_H
#define MS_RELAY_CONFERENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

typedef struct ms_conference ms_conference;

typedef struct ms_conference_config {
    const char *listen;      /* SIP "IP:PORT" (NULL: 127.0.0.1:0) */
    const char *transport;   /* "tcp" (NULL), "tls", "udp" */
    const char *local_uri;   /* our address of record (NULL: "sip:relay@<media IP>") */
    const char *media_ip;    /* IPv4 for media and the SDP (NULL: the listen IP, or
                                127.0.0.1 when that is a wildcard) */
    bool do_register;        /* register local_uri at proxy (the group's URI routes here) */
    const char *proxy;
    const char *auth_user;
    const char *password;    /* secret: the SIP agent copies it */
    uint32_t max_members;    /* per group (0: 64) */
    uint32_t media_timeout_s; /* hang up on a silent member after this (0: 30) */
    /* One line per join, leave and refusal; never media. May be NULL. */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
} ms_conference_config;

typedef struct ms_conference_stats {
    uint64_t packets_in;        /* accepted from members */
    uint64_t packets_out;       /* sent to members */
    uint64_t packets_dropped;   /* from a wrong address, not RTP, or no member */
    uint32_t members;           /* now, all groups */
    uint32_t joined, left;      /* since start */
} ms_conference_stats;

ms_err ms_conference_new(ms_conference **out, const ms_conference_config *cfg, char *detail,
                         size_t detail_cap);
void ms_conference_free(ms_conference *c); /* hangs up on every member; NULL allowed */
ms_err ms_conference_local_addr(const ms_conference *c, char *out, size_t cap);
ms_err ms_conference_run(ms_conference *c);
void ms_conference_stop(ms_conference *c);
/* Stops once *flag becomes non-zero (checked every 200 ms): safe from a signal handler. */
ms_err ms_conference_stop_on(ms_conference *c, volatile int *flag);
void ms_conference_get_stats(const ms_conference *c, ms_conference_stats *out);

/* A member without signalling (the benchmark; tests): joins `group` with its media at
 * remote_ip:remote_port; *local_port is the relay's port for it. */
ms_err ms_conference_add_member(ms_conference *c, const char *group, const char *remote_ip,
                                uint16_t remote_port, uint16_t *local_port);

#endif
