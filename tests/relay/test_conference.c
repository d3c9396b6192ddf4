/*
 * The conference relay (relay/conference.h): a group of 33 members (more than the 32 the
 * relay must carry) where each member's datagram reaches every other member unchanged and
 * nobody else (not the sender, not another group); datagrams from a wrong address or that
 * are not RTP are dropped; over SIP, the answer is RTP/SAVP on the relay's own port with
 * no key-mgmt, an RTP/AVP offer is refused with 488 and a full group with 486, and joins
 * and leaves are counted.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "relay/conference.h"
#include "sip/sdp.h"
#include "sip/sip.h"
#include "testutil.h"

#define N_A 33

static int udp_bound(uint16_t *port)
{
    *port = 0;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

static void send_to(int fd, uint16_t port, const uint8_t *p, size_t len)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(sendto(fd, p, len, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)len);
}

/* Every datagram waiting on fd, first octet of payload after the header = who sent it. */
static int drain(int fd, int *from, int max, uint16_t *relay_src)
{
    int n = 0;
    uint8_t buf[2048];
    struct sockaddr_in src;
    socklen_t sl = sizeof src;
    ssize_t r;
    while ((r = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&src, &sl)) > 0) {
        if (n < max) {
            from[n] = r == 100 && buf[0] == 0x80 ? buf[12] : -1;
            relay_src[n] = ntohs(src.sin_port);
        }
        n++;
        sl = sizeof src;
    }
    return n;
}

static void make_pkt(uint8_t *p, int who)
{
    memset(p, 0xa5, 100);
    p[0] = 0x80;
    p[1] = 96;
    p[12] = (uint8_t)who;
}

static void forwarding(void)
{
    ms_conference_config cfg = {.listen = "127.0.0.1:0"};
    ms_conference *c = NULL;
    char detail[256] = "";
    CHECK_ERR(ms_conference_new(&c, &cfg, detail, sizeof detail), MS_OK);
    int fa[N_A], fb[2];
    uint16_t ra[N_A], rb[2], port = 0;
    for (int i = 0; i < N_A; i++) {
        fa[i] = udp_bound(&port);
        CHECK(fa[i] >= 0);
        CHECK_ERR(ms_conference_add_member(c, "sip:a@example.org", "127.0.0.1", port, &ra[i]),
                  MS_OK);
    }
    for (int i = 0; i < 2; i++) {
        fb[i] = udp_bound(&port);
        CHECK_ERR(ms_conference_add_member(c, "sip:b@example.org", "127.0.0.1", port, &rb[i]),
                  MS_OK);
    }
    uint8_t p[100];
    make_pkt(p, 0);
    send_to(fa[0], ra[0], p, sizeof p);
    make_pkt(p, 5);
    send_to(fa[5], ra[5], p, sizeof p);
    make_pkt(p, 100);
    send_to(fb[0], rb[0], p, sizeof p);
    /* dropped: from another address than the member's, and not RTP */
    uint16_t sport = 0;
    int stranger = udp_bound(&sport);
    make_pkt(p, 66);
    send_to(stranger, ra[1], p, sizeof p);
    make_pkt(p, 67);
    p[0] = 0x00;
    send_to(fa[2], ra[2], p, sizeof p);

    volatile int stop = 1; /* one poll period (200 ms) of the loop handles what is queued */
    CHECK_ERR(ms_conference_stop_on(c, &stop), MS_OK);
    CHECK_ERR(ms_conference_run(c), MS_OK);

    int from[8];
    uint16_t via[8];
    for (int i = 0; i < N_A; i++) {
        int n = drain(fa[i], from, 8, via);
        int want = (i == 0 || i == 5) ? 1 : 2;
        CHECK(n == want);
        bool got0 = false, got5 = false;
        for (int k = 0; k < n && k < 8; k++) {
            got0 |= from[k] == 0;
            got5 |= from[k] == 5;
            CHECK(via[k] == ra[i]); /* from the relay's port for this member */
        }
        CHECK(got0 == (i != 0));
        CHECK(got5 == (i != 5));
    }
    CHECK(drain(fb[1], from, 8, via) == 1 && from[0] == 100);
    CHECK(drain(fb[0], from, 8, via) == 0);
    ms_conference_stats st;
    ms_conference_get_stats(c, &st);
    CHECK(st.packets_in == 3);
    CHECK(st.packets_out == 2 * (N_A - 1) + 1);
    CHECK(st.packets_dropped == 2);
    CHECK(st.members == N_A + 2);
    ms_conference_free(c);
    for (int i = 0; i < N_A; i++)
        close(fa[i]);
    close(fb[0]);
    close(fb[1]);
    close(stranger);
}

/* ---- over SIP --------------------------------------------------------------------------- */

typedef struct dialer {
    ms_sip *sip;
    ms_sip_call *call;
    int status;
    char warning[256];
    char answer[4096];
    bool established;
    bool stay; /* do not hang up: wait for the relay's BYE */
} dialer;

static void d_established(void *arg, ms_sip_call *call, const char *sdp, size_t len)
{
    dialer *d = arg;
    d->established = true;
    snprintf(d->answer, sizeof d->answer, "%.*s", (int)len, sdp);
    if (!d->stay)
        ms_sip_hangup(call);
}

static void d_closed(void *arg, ms_sip_call *call, int status, const char *reason,
                     const char *warning)
{
    dialer *d = arg;
    (void)call;
    (void)reason;
    d->status = status;
    snprintf(d->warning, sizeof d->warning, "%s", warning);
    ms_sip_stop(d->sip);
}

static void dial(dialer *d, const char *to, const char *proto)
{
    char sdp[1024];
    snprintf(sdp, sizeof sdp,
             "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
             "m=audio 40000 %s 96\r\na=rtpmap:96 opus/48000/2\r\na=sendrecv\r\n", proto);
    d->status = -1;
    d->established = false;
    d->answer[0] = 0;
    CHECK_ERR(ms_sip_dial(d->sip, &d->call, to, sdp), MS_OK);
    CHECK_ERR(ms_sip_run(d->sip), MS_OK);
}

static char last_log[600];

static void keep_log(void *ctx, const char *line)
{
    (void)ctx;
    snprintf(last_log, sizeof last_log, "%s", line);
}

static void signalling(void)
{
    ms_conference_config cfg = {.listen = "127.0.0.1:0", .max_members = 2, .log = keep_log};
    ms_conference *c = NULL;
    char detail[256] = "";
    CHECK_ERR(ms_conference_new(&c, &cfg, detail, sizeof detail), MS_OK);
    char addr[80], to[128], full[128];
    CHECK_ERR(ms_conference_local_addr(c, addr, sizeof addr), MS_OK);
    snprintf(to, sizeof to, "sip:team@%s", addr);
    snprintf(full, sizeof full, "sip:full@%s", addr);
    dialer d = {0};
    ms_sip_config sc = {.local_uri = "sip:alice@127.0.0.1"};
    ms_sip_handlers h = {.established = d_established, .closed = d_closed};
    CHECK_ERR(ms_sip_new(&d.sip, &sc, &h, &d, detail, sizeof detail), MS_OK);

    dial(&d, to, "RTP/SAVP");
    CHECK(d.established);
    ms_sdp_audio ans;
    CHECK_ERR(ms_sdp_parse(&ans, d.answer, strlen(d.answer), detail, sizeof detail), MS_OK);
    CHECK(strcmp(ans.proto, "RTP/SAVP") == 0);
    CHECK(strcmp(ans.addr, "127.0.0.1") == 0 && ans.port != 0 && ans.port != 40000);
    CHECK(ans.key_mgmt == NULL && strstr(d.answer, "key-mgmt") == NULL);
    CHECK(ans.payload_type == 96);

    dial(&d, to, "RTP/AVP");
    CHECK(!d.established && d.status == 488);
    CHECK(strstr(d.warning, "SRTP") != NULL);

    uint16_t lp;
    CHECK_ERR(ms_conference_add_member(c, full, "127.0.0.1", 40002, &lp), MS_OK);
    CHECK_ERR(ms_conference_add_member(c, full, "127.0.0.1", 40004, &lp), MS_OK);
    dial(&d, full, "RTP/SAVP");
    CHECK(!d.established && d.status == 486);
    if (d.status != 486)
        fprintf(stderr, "status %d, relay: %s\n", d.status, last_log);
    CHECK(strstr(d.warning, "full") != NULL);

    ms_conference_stats st;
    ms_conference_get_stats(c, &st);
    CHECK(st.joined == 3 && st.left == 1 && st.members == 2);
    ms_sip_free(d.sip);
    ms_conference_free(c);
}

/* A member that sends nothing is hung up on after the media time-out. */
static void media_timeout(void)
{
    ms_conference_config cfg = {.listen = "127.0.0.1:0", .media_timeout_s = 1,
                                .log = keep_log};
    ms_conference *c = NULL;
    char detail[256] = "", addr[80], to[128];
    CHECK_ERR(ms_conference_new(&c, &cfg, detail, sizeof detail), MS_OK);
    CHECK_ERR(ms_conference_local_addr(c, addr, sizeof addr), MS_OK);
    snprintf(to, sizeof to, "sip:team@%s", addr);
    dialer d = {.stay = true};
    ms_sip_config sc = {.local_uri = "sip:bob@127.0.0.1"};
    ms_sip_handlers h = {.established = d_established, .closed = d_closed};
    CHECK_ERR(ms_sip_new(&d.sip, &sc, &h, &d, detail, sizeof detail), MS_OK);
    dial(&d, to, "RTP/SAVP"); /* returns when the call is closed: by the relay's BYE */
    CHECK(d.established && d.status == 0);
    CHECK(strstr(last_log, "media timeout") != NULL);
    ms_conference_stats st;
    ms_conference_get_stats(c, &st);
    CHECK(st.joined == 1 && st.left == 1 && st.members == 0);
    ms_sip_free(d.sip);
    ms_conference_free(c);
}

int main(void)
{
    forwarding();
    signalling();
    media_timeout();
    return ms_test_finish();
}
