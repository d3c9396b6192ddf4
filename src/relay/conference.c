/*
 * The conference relay (relay/conference.h): SIP focus and RTP transport translator, on
 * the SIP agent's single event loop. Key-less: SDP is handled as text and media as opaque
 * datagrams.
 */
#include "relay/conference.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sip/sdp.h"
#include "sip/sip.h"
#include "util/detail.h"

#define GROUP_MAX 128
#define PEER_MAX 256
#define TIMEOUT_CHECK_MS 1000
#define STOP_POLL_MS 200

typedef struct member {
    ms_conference *conf;
    ms_sip_call *call; /* NULL for members added without signalling */
    int group;         /* index into conf->groups */
    char peer[PEER_MAX];
    char remote_ip[64];
    uint16_t remote_port;
    char remote[80];   /* "IP:PORT" as the agent names datagram sources */
    ms_sip_udp *udp;
    uint64_t last_us;
    bool hanging_up;
} member;

typedef struct group {
    char uri[GROUP_MAX];
    uint32_t members;
} group;

struct ms_conference {
    ms_conference_config cfg;
    ms_sip *sip;
    char media_ip[64];
    member **members;
    size_t n_members, cap_members;
    group *groups;
    size_t n_groups;
    ms_conference_stats stats;
    ms_sip_timer *timeout_timer, *stop_timer;
    volatile int *stop_flag;
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void logf_(ms_conference *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void logf_(ms_conference *c, const char *fmt, ...)
{
    if (c->cfg.log == NULL)
        return;
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->cfg.log(c->cfg.log_ctx, line);
}

/* A group is its URI without parameters or headers: a request's To may carry
 * ";transport=..." or other decoration that does not change whom it names. */
static int find_group(ms_conference *c, const char *to_uri, bool create)
{
    char uri[GROUP_MAX];
    size_t n = strcspn(to_uri, ";?>");
    if (n >= sizeof uri)
        return -1;
    memcpy(uri, to_uri, n);
    uri[n] = 0;
    for (size_t i = 0; i < c->n_groups; i++)
        if (strcmp(c->groups[i].uri, uri) == 0)
            return (int)i;
    if (!create)
        return -1;
    group *ng = realloc(c->groups, (c->n_groups + 1) * sizeof *ng);
    if (ng == NULL)
        return -1;
    c->groups = ng;
    memset(&ng[c->n_groups], 0, sizeof *ng);
    snprintf(ng[c->n_groups].uri, GROUP_MAX, "%s", uri);
    return (int)c->n_groups++;
}

/* The translator: a member's datagram goes out, unchanged, from each other member's
 * port of the same group to that member. */
static void on_media(void *arg, const uint8_t *data, size_t len, const char *src,
                     uint64_t arrival_us)
{
    member *m = arg;
    ms_conference *c = m->conf;
    if (len < 12 || (data[0] >> 6) != 2 || strcmp(src, m->remote) != 0) {
        c->stats.packets_dropped++;
        return;
    }
    (void)arrival_us; /* wall-clock time; the time-out runs on the monotonic clock */
    m->last_us = now_us();
    c->stats.packets_in++;
    for (size_t i = 0; i < c->n_members; i++) {
        member *o = c->members[i];
        if (o == m || o->group != m->group || o->hanging_up)
            continue;
        if (ms_sip_udp_send(o->udp, o->remote_ip, o->remote_port, data, len) == MS_OK)
            c->stats.packets_out++;
    }
}

static void member_free(member *m)
{
    if (m == NULL)
        return;
    ms_sip_udp_close(m->udp);
    free(m);
}

static void member_remove(ms_conference *c, member *m)
{
    for (size_t i = 0; i < c->n_members; i++) {
        if (c->members[i] != m)
            continue;
        c->members[i] = c->members[--c->n_members];
        c->groups[m->group].members--;
        c->stats.members--;
        c->stats.left++;
        break;
    }
    member_free(m);
}

/* A new member of group g with media at ip:port: its relay socket, in the table. */
static ms_err member_add(ms_conference *c, member **out, int g, const char *ip, uint16_t port,
                         const char *peer)
{
    if (c->n_members == c->cap_members) {
        size_t ncap = c->cap_members ? 2 * c->cap_members : 16;
        member **nm = realloc(c->members, ncap * sizeof *nm);
        if (nm == NULL)
            return MS_ERR_NOMEM;
        c->members = nm;
        c->cap_members = ncap;
    }
    member *m = calloc(1, sizeof *m);
    if (m == NULL)
        return MS_ERR_NOMEM;
    m->conf = c;
    m->group = g;
    snprintf(m->peer, sizeof m->peer, "%s", peer);
    snprintf(m->remote_ip, sizeof m->remote_ip, "%s", ip);
    m->remote_port = port;
    snprintf(m->remote, sizeof m->remote, "%s:%u", ip, (unsigned)port);
    m->last_us = now_us();
    ms_err err = ms_sip_udp_open(c->sip, &m->udp, c->media_ip, on_media, m);
    if (err != MS_OK) {
        free(m);
        return err;
    }
    c->members[c->n_members++] = m;
    c->groups[g].members++;
    c->stats.members++;
    c->stats.joined++;
    *out = m;
    return MS_OK;
}

ms_err ms_conference_add_member(ms_conference *c, const char *group_uri, const char *remote_ip,
                                uint16_t remote_port, uint16_t *local_port)
{
    if (c == NULL || group_uri == NULL || remote_ip == NULL || local_port == NULL)
        return MS_ERR_ARG;
    int g = find_group(c, group_uri, true);
    if (g < 0)
        return MS_ERR_NOMEM;
    member *m;
    ms_err err = member_add(c, &m, g, remote_ip, remote_port, "(no signalling)");
    if (err == MS_OK)
        *local_port = ms_sip_udp_port(m->udp);
    return err;
}

static int refuse(ms_conference *c, int status, char *warning, size_t cap, const char *from,
                  const char *why)
{
    snprintf(warning, cap, "%s", why);
    logf_(c, "refused %s: %d %s", from, status, why);
    return status;
}

static int on_incoming(void *arg, ms_sip_call *call, const char *from_uri, const char *to_uri,
                       const char *request_uri, const char *sdp, size_t sdp_len,
                       const uint8_t *raw, size_t raw_len, char *answer, size_t answer_cap,
                       char *warning, size_t warning_cap)
{
    ms_conference *c = arg;
    (void)request_uri;
    (void)raw;
    (void)raw_len;
    ms_sdp_audio offer;
    char detail[200] = "";
    if (ms_sdp_parse(&offer, sdp, sdp_len, detail, sizeof detail) != MS_OK)
        return refuse(c, 488, warning, warning_cap, from_uri, "no usable SDP audio offer");
    if (strcmp(offer.proto, "RTP/SAVP") != 0)
        return refuse(c, 488, warning, warning_cap, from_uri,
                      "the group's media must be SRTP (RTP/SAVP)");
    struct in_addr a;
    if (offer.port == 0 || inet_pton(AF_INET, offer.addr, &a) != 1)
        return refuse(c, 488, warning, warning_cap, from_uri,
                      "the offer names no IPv4 media address and port");
    int g = find_group(c, to_uri, true);
    if (g < 0)
        return refuse(c, 500, warning, warning_cap, from_uri, "no room for another group");
    uint32_t max = c->cfg.max_members ? c->cfg.max_members : 64;
    if (c->groups[g].members >= max)
        return refuse(c, 486, warning, warning_cap, from_uri, "the group's call is full");
    member *m;
    if (member_add(c, &m, g, offer.addr, offer.port, from_uri) != MS_OK)
        return refuse(c, 500, warning, warning_cap, from_uri, "cannot open a media port");
    ms_sdp_audio ans = offer;
    snprintf(ans.addr, sizeof ans.addr, "%s", c->media_ip);
    ans.port = ms_sip_udp_port(m->udp);
    snprintf(ans.direction, sizeof ans.direction, "sendrecv");
    ans.key_mgmt = NULL; /* the relay holds no key and passes none on */
    ans.key_mgmt_len = 0;
    if (ms_sdp_format(answer, answer_cap, &ans, (uint64_t)now_us(), NULL) != MS_OK) {
        member_remove(c, m);
        return refuse(c, 500, warning, warning_cap, from_uri, "cannot write the SDP answer");
    }
    m->call = call;
    ms_sip_call_set_arg(call, m);
    logf_(c, "join %s to %s: %u members", from_uri, c->groups[g].uri,
          (unsigned)c->groups[g].members);
    return 0;
}

static void on_established(void *arg, ms_sip_call *call, const char *sdp, size_t len)
{
    (void)arg;
    (void)call;
    (void)sdp;
    (void)len;
}

static void on_closed(void *arg, ms_sip_call *call, int status, const char *reason,
                      const char *warning)
{
    ms_conference *c = arg;
    member *m = ms_sip_call_arg(call);
    (void)warning;
    if (m == NULL)
        return;
    int g = m->group;
    const char *why = m->hanging_up ? "media timeout" : status == 0 ? "BYE" : reason;
    logf_(c, "leave %s from %s (%s): %u members", m->peer, c->groups[g].uri,
          why ? why : "?", (unsigned)c->groups[g].members - 1);
    member_remove(c, m);
}

static void on_registered(void *arg, int status, const char *reason)
{
    ms_conference *c = arg;
    logf_(c, "registration: %d %s", status, reason ? reason : "");
}

static void check_timeouts(void *arg)
{
    ms_conference *c = arg;
    ms_sip_timer_cancel(c->timeout_timer);
    c->timeout_timer = NULL;
    uint64_t limit = (uint64_t)(c->cfg.media_timeout_s ? c->cfg.media_timeout_s : 30) * 1000000u;
    uint64_t now = now_us();
    for (size_t i = 0; i < c->n_members; i++) {
        member *m = c->members[i];
        if (m->call != NULL && !m->hanging_up && now - m->last_us > limit) {
            m->hanging_up = true;
            ms_sip_hangup(m->call); /* on_closed removes it */
        }
    }
    (void)ms_sip_timer_start(c->sip, &c->timeout_timer, TIMEOUT_CHECK_MS, check_timeouts, c);
}

ms_err ms_conference_new(ms_conference **out, const ms_conference_config *cfg, char *detail,
                         size_t cap)
{
    if (out == NULL || cfg == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    ms_conference *c = calloc(1, sizeof *c);
    if (c == NULL)
        return MS_ERR_NOMEM;
    c->cfg = *cfg;
    c->cfg.password = NULL;
    const char *listen = cfg->listen ? cfg->listen : "127.0.0.1:0";
    if (cfg->media_ip != NULL) {
        snprintf(c->media_ip, sizeof c->media_ip, "%s", cfg->media_ip);
    } else {
        const char *colon = strrchr(listen, ':');
        size_t l = colon ? (size_t)(colon - listen) : strlen(listen);
        if (l >= sizeof c->media_ip)
            l = sizeof c->media_ip - 1;
        memcpy(c->media_ip, listen, l);
        c->media_ip[l] = 0;
        if (c->media_ip[0] == 0 || strcmp(c->media_ip, "0.0.0.0") == 0)
            snprintf(c->media_ip, sizeof c->media_ip, "127.0.0.1");
    }
    struct in_addr a;
    if (inet_pton(AF_INET, c->media_ip, &a) != 1) {
        ms_detail_set(detail, cap, "media address %s is not an IPv4 address", c->media_ip);
        free(c);
        return MS_ERR_ARG;
    }
    if (cfg->do_register && (cfg->proxy == NULL || cfg->local_uri == NULL)) {
        ms_detail_set(detail, cap, "registering needs the proxy and our address of record");
        free(c);
        return MS_ERR_ARG;
    }
    char local_uri[PEER_MAX];
    if (cfg->local_uri != NULL)
        snprintf(local_uri, sizeof local_uri, "%s", cfg->local_uri);
    else
        snprintf(local_uri, sizeof local_uri, "sip:relay@%s", c->media_ip);
    ms_sip_config sc = {.local_uri = local_uri,
                        .listen = listen,
                        .transport = cfg->transport,
                        .proxy = cfg->proxy,
                        .do_register = cfg->do_register,
                        .auth_user = cfg->auth_user,
                        .password = cfg->password,
                        .user_agent = "mikeysakke-relay"};
    ms_sip_handlers h = {.incoming = on_incoming,
                         .established = on_established,
                         .closed = on_closed,
                         .registered = on_registered};
    ms_err err = ms_sip_new(&c->sip, &sc, &h, c, detail, cap);
    if (err != MS_OK) {
        free(c);
        return err;
    }
    if ((err = ms_sip_timer_start(c->sip, &c->timeout_timer, TIMEOUT_CHECK_MS, check_timeouts,
                                  c)) != MS_OK) {
        ms_conference_free(c);
        return err;
    }
    *out = c;
    return MS_OK;
}

void ms_conference_free(ms_conference *c)
{
    if (c == NULL)
        return;
    ms_sip_timer_cancel(c->timeout_timer);
    ms_sip_timer_cancel(c->stop_timer);
    /* the agent's teardown closes the calls; their handlers must find nothing to free */
    for (size_t i = 0; i < c->n_members; i++) {
        if (c->members[i]->call != NULL)
            ms_sip_call_set_arg(c->members[i]->call, NULL);
        member_free(c->members[i]);
    }
    c->n_members = 0;
    ms_sip_free(c->sip);
    free(c->members);
    free(c->groups);
    free(c);
}

ms_err ms_conference_local_addr(const ms_conference *c, char *out, size_t cap)
{
    if (c == NULL)
        return MS_ERR_ARG;
    return ms_sip_local_addr(c->sip, out, cap);
}

ms_err ms_conference_run(ms_conference *c)
{
    if (c == NULL)
        return MS_ERR_ARG;
    return ms_sip_run(c->sip);
}

void ms_conference_stop(ms_conference *c)
{
    if (c != NULL)
        ms_sip_stop(c->sip);
}

static void poll_stop(void *arg)
{
    ms_conference *c = arg;
    ms_sip_timer_cancel(c->stop_timer);
    c->stop_timer = NULL;
    if (*c->stop_flag != 0) {
        ms_sip_stop(c->sip);
        return;
    }
    if (ms_sip_timer_start(c->sip, &c->stop_timer, STOP_POLL_MS, poll_stop, c) != MS_OK)
        ms_sip_stop(c->sip);
}

ms_err ms_conference_stop_on(ms_conference *c, volatile int *flag)
{
    if (c == NULL || flag == NULL)
        return MS_ERR_ARG;
    c->stop_flag = flag;
    ms_sip_timer_cancel(c->stop_timer);
    c->stop_timer = NULL;
    return ms_sip_timer_start(c->sip, &c->stop_timer, STOP_POLL_MS, poll_stop, c);
}

void ms_conference_get_stats(const ms_conference *c, ms_conference_stats *out)
{
    if (c != NULL && out != NULL)
        *out = c->stats;
}
