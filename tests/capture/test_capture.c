/*
 * Capture files: the writer's output read back by our reader and by tshark; real
 * captures taken by tcpdump on loopback (Ethernet, Linux cooked v1 and v2); hand-made
 * files for TCP reassembly corner cases, IPv6, BSD loopback; damaged and garbage files.
 * With MS_CAPTURE_SEED_DIR set, the hand-made files are also written there (the fuzz
 * seed corpus in fuzz/corpus/capture comes from this).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capture/capture.h"
#include "testutil.h"

static char tmpdir[64];

/* ---- reading everything back ----------------------------------------------------------- */

#define MAX_GOT 64
typedef struct got_item {
    ms_capture_kind kind;
    uint64_t t_us;
    char src[64], dst[64];
    bool tcp;
    uint8_t *data;
    size_t len;
} got_item;

typedef struct got_all {
    got_item item[MAX_GOT];
    size_t n;
    int last_rc;
    char detail[256];
    ms_capture_stats st;
} got_all;

static void got_free(got_all *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->item[i].data);
    g->n = 0;
}

/* Reads all items of `path`; returns the open status. */
static ms_err read_all(const char *path, got_all *g)
{
    memset(g, 0, sizeof *g);
    ms_capture_reader *r;
    ms_err e = ms_capture_open(&r, path, g->detail, sizeof g->detail);
    if (e != MS_OK)
        return e;
    ms_capture_item it;
    int rc;
    while ((rc = ms_capture_next(r, &it, g->detail, sizeof g->detail)) == 1) {
        if (g->n == MAX_GOT)
            continue;
        got_item *o = &g->item[g->n++];
        o->kind = it.kind;
        o->t_us = it.t_us;
        memcpy(o->src, it.src, sizeof o->src);
        memcpy(o->dst, it.dst, sizeof o->dst);
        o->tcp = it.tcp;
        o->len = it.len;
        o->data = malloc(it.len + 1);
        memcpy(o->data, it.data, it.len);
        o->data[it.len] = 0;
    }
    g->last_rc = rc;
    ms_capture_stats_get(r, &g->st);
    ms_capture_close_reader(r);
    return MS_OK;
}

static bool item_is(const got_item *it, ms_capture_kind kind, bool tcp, const char *src,
                    const char *dst, const void *data, size_t len)
{
    return it->kind == kind && it->tcp == tcp && strcmp(it->src, src) == 0 &&
           strcmp(it->dst, dst) == 0 && it->len == len && memcmp(it->data, data, len) == 0;
}

/* ---- SIP messages used throughout ------------------------------------------------------ */

static const char invite[] =
    "INVITE sip:bob@example.org SIP/2.0\r\n"
    "Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK776asdhds\r\n"
    "From: <sip:alice@example.org>;tag=1928301774\r\n"
    "To: <sip:bob@example.org>\r\n"
    "Call-ID: a84b4c76e66710@pc33\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 36\r\n"
    "\r\n"
    "v=0\r\n"
    "o=- 1 1 IN IP4 127.0.0.1\r\n"
    "s=-\r\n";

static const char ok200[] =
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK776asdhds\r\n"
    "Call-ID: a84b4c76e66710@pc33\r\n"
    "CSeq: 314159 INVITE\r\n"
    "content-length:   0\r\n"
    "\r\n";

/* compact form, odd case, a body */
static const char bye_compact[] =
    "BYE sip:alice@example.org SIP/2.0\r\n"
    "i: a84b4c76e66710@pc33\r\n"
    "L : 11\r\n"
    "\r\n"
    "hello\r\nbody";

/* ---- hand-made pcap files -------------------------------------------------------------- */

typedef struct pbuf {
    uint8_t d[1 << 18];
    size_t len;
} pbuf;

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void pcap_begin(pbuf *b, uint32_t linktype)
{
    b->len = 24;
    put_le32(b->d, 0xa1b2c3d4);
    b->d[4] = 2; /* version 2.4 */
    b->d[5] = 0;
    b->d[6] = 4;
    b->d[7] = 0;
    memset(b->d + 8, 0, 8);
    put_le32(b->d + 16, 262144);
    put_le32(b->d + 20, linktype);
}

static void pcap_record(pbuf *b, uint64_t t_us, const uint8_t *pkt, size_t len)
{
    put_le32(b->d + b->len, (uint32_t)(t_us / 1000000));
    put_le32(b->d + b->len + 4, (uint32_t)(t_us % 1000000));
    put_le32(b->d + b->len + 8, (uint32_t)len);
    put_le32(b->d + b->len + 12, (uint32_t)len);
    memcpy(b->d + b->len + 16, pkt, len);
    b->len += 16 + len;
}

static void save_seed(const char *name, const uint8_t *d, size_t len)
{
    const char *seeds = getenv("MS_CAPTURE_SEED_DIR");
    if (seeds == NULL)
        return;
    char seed[512];
    snprintf(seed, sizeof seed, "%s/%s", seeds, name);
    FILE *f = fopen(seed, "wb");
    if (f == NULL || fwrite(d, 1, len, f) != len || fclose(f) != 0)
        fprintf(stderr, "cannot write seed %s\n", seed);
}

static void save(const pbuf *b, const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(b->d, 1, b->len, f) != b->len || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    save_seed(name, b->d, b->len);
}

static void be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void be32(uint8_t *p, uint32_t v)
{
    be16(p, (uint16_t)(v >> 16));
    be16(p + 2, (uint16_t)v);
}

/* IPv4 packet (checksums left zero: the reader does not check them). */
static size_t ip4(uint8_t *out, uint8_t proto, uint32_t src, uint32_t dst, uint16_t frag,
                  const uint8_t *l4, size_t l4_len)
{
    memset(out, 0, 20);
    out[0] = 0x45;
    be16(out + 2, (uint16_t)(20 + l4_len));
    be16(out + 6, frag);
    out[8] = 64;
    out[9] = proto;
    be32(out + 12, src);
    be32(out + 16, dst);
    memcpy(out + 20, l4, l4_len);
    return 20 + l4_len;
}

static size_t tcp_seg(uint8_t *out, uint16_t sport, uint16_t dport, uint32_t seq,
                      uint8_t flags, const void *data, size_t len)
{
    memset(out, 0, 20);
    be16(out, sport);
    be16(out + 2, dport);
    be32(out + 4, seq);
    out[12] = 5 << 4;
    out[13] = flags;
    be16(out + 14, 65535);
    if (len)
        memcpy(out + 20, data, len);
    return 20 + len;
}

static size_t udp_dgram(uint8_t *out, uint16_t sport, uint16_t dport, const void *data,
                        size_t len)
{
    be16(out, sport);
    be16(out + 2, dport);
    be16(out + 4, (uint16_t)(8 + len));
    be16(out + 6, 0);
    memcpy(out + 8, data, len);
    return 8 + len;
}

#define LOCAL 0x7f000001u
#define TCP_SYN 0x02
#define TCP_ACK 0x10
#define TCP_PSH 0x08
#define TCP_FIN 0x01

/* A TCP segment 127.0.0.1:5070 -> 127.0.0.1:5060 in raw IPv4, data[off, off+len). */
static void add_seg(pbuf *b, uint64_t t, uint32_t isn, uint8_t flags, const char *msg,
                    size_t off, size_t len)
{
    static uint8_t l4[70000], pkt[70000];
    size_t n = tcp_seg(l4, 5070, 5060, isn + 1 + (uint32_t)off, flags, msg + off, len);
    n = ip4(pkt, 6, LOCAL, LOCAL, 0x4000, l4, n);
    pcap_record(b, t, pkt, n);
}

/* B -> A: a bare acknowledgement of everything up to `ack`. */
static void add_ack_back(pbuf *b, uint64_t t, uint32_t ack)
{
    uint8_t l4[20], pkt[40];
    size_t n = tcp_seg(l4, 5060, 5070, 5555, TCP_ACK, NULL, 0);
    be32(l4 + 8, ack);
    n = ip4(pkt, 6, LOCAL, LOCAL, 0x4000, l4, n);
    pcap_record(b, t, pkt, n);
}

static void add_syn(pbuf *b, uint64_t t, uint32_t isn)
{
    uint8_t l4[20], pkt[40];
    size_t n = tcp_seg(l4, 5070, 5060, isn, TCP_SYN, NULL, 0);
    n = ip4(pkt, 6, LOCAL, LOCAL, 0x4000, l4, n);
    pcap_record(b, t, pkt, n);
}

static void test_handmade_tcp(void)
{
    static pbuf b;
    char path[256];
    got_all g;
    size_t il = strlen(invite), bl = strlen(bye_compact), ol = strlen(ok200);
    const char *A = "127.0.0.1:5070", *B = "127.0.0.1:5060";

    /* Out of order: SYN, then the third, first and second parts. The ISN is near 2^32
     * so that the sequence numbers wrap inside the message. */
    uint32_t isn = 0xffffff80u;
    pcap_begin(&b, 101);
    add_syn(&b, 1000, isn);
    add_seg(&b, 1001, isn, TCP_ACK, invite, 200, il - 200);
    add_seg(&b, 1002, isn, TCP_ACK, invite, 0, 100);
    add_seg(&b, 1003, isn, TCP_ACK, invite, 100, 100);
    save(&b, "tcp-out-of-order.pcap", path, sizeof path);
    CHECK_ERR(read_all(path, &g), MS_OK);
    CHECK(g.last_rc == 0);
    CHECK(g.n == 1 && item_is(&g.item[0], MS_CAPTURE_SIP, true, A, B, invite, il));
    CHECK(g.n == 1 && g.item[0].t_us == 1003);
    CHECK(g.st.packets == 4 && g.st.sip_messages == 1 && g.st.skipped == 0);
    got_free(&g);

    /* Retransmissions: a segment repeated whole, and one overlapping the data before it. */
    isn = 1000;
    pcap_begin(&b, 101);
    add_syn(&b, 1000, isn);
    add_seg(&b, 1001, isn, TCP_ACK, invite, 0, 150);
    add_seg(&b, 1002, isn, TCP_ACK, invite, 0, 150);
    add_seg(&b, 1003, isn, TCP_ACK, invite, 100, 100);
    add_seg(&b, 1004, isn, TCP_ACK, invite, 200, il - 200);
    add_seg(&b, 1005, isn, TCP_ACK, invite, 200, il - 200);
    save(&b, "tcp-retransmit.pcap", path, sizeof path);
    CHECK_ERR(read_all(path, &g), MS_OK);
    CHECK(g.last_rc == 0);
    CHECK(g.n == 1 && item_is(&g.item[0], MS_CAPTURE_SIP, true, A, B, invite, il));
    got_free(&g);

    /* Two messages in one segment, then one over three segments, keep-alive CRLFs between
     * them, the compact Content-Length with a body; then FIN. No SYN: the capture starts
     * mid-connection at a message boundary. */
    static char stream[4096];
    int sl = snprintf(stream, sizeof stream, "%s%s\r\n\r\n%s", invite, ok200, bye_compact);
    size_t two = il + ol, third = (size_t)sl - two;
    pcap_begin(&b, 101);
    add_seg(&b, 2000, isn, TCP_ACK | TCP_PSH, stream, 0, two);
    add_seg(&b, 2001, isn, TCP_ACK, stream, two, 10);
    add_seg(&b, 2002, isn, TCP_ACK, stream, two + 10, 30);
    add_seg(&b, 2003, isn, TCP_ACK | TCP_FIN, stream, two + 40, third - 40);
    save(&b, "tcp-several.pcap", path, sizeof path);
    CHECK_ERR(read_all(path, &g), MS_OK);
    CHECK(g.last_rc == 0);
    CHECK(g.n == 3);
    if (g.n == 3) {
        CHECK(item_is(&g.item[0], MS_CAPTURE_SIP, true, A, B, invite, il));
        CHECK(item_is(&g.item[1], MS_CAPTURE_SIP, true, A, B, ok200, ol));
        CHECK(item_is(&g.item[2], MS_CAPTURE_SIP, true, A, B, bye_compact, bl));
        CHECK(g.item[0].t_us == 2000 && g.item[1].t_us == 2000 && g.item[2].t_us == 2003);
    }
    CHECK(g.st.skipped == 0 && g.st.sip_messages == 3);
    got_free(&g);

    /* A message whose end never arrives is counted as skipped, not returned; non-SIP
     * data before a message is skipped and the message after it still found. */
    static char junk[512];
    int jl = snprintf(junk, sizeof junk, "GET / HTTP/1.1\r\nHost: x\r\n\r\n%s", ok200);
    pcap_begin(&b, 101);
    add_syn(&b, 3000, isn);
    add_seg(&b, 3001, isn, TCP_ACK, junk, 0, (size_t)jl);
    add_seg(&b, 3002, isn, TCP_ACK, invite, 0, 0); /* bare ACK */
    save(&b, "tcp-junk.pcap", path, sizeof path);
    CHECK_ERR(read_all(path, &g), MS_OK);
    CHECK(g.n == 1 && item_is(&g.item[0], MS_CAPTURE_SIP, true, A, B, ok200, ol));
    CHECK(g.st.skipped == 1);
    got_free(&g);

    /* A bad Content-Length skips that message; a later good one is found. */
    static char badcl[512];
    int bcl = snprintf(badcl, sizeof badcl,
                       "MESSAGE sip:x@y SIP/2.0\r\nContent-Length: 5\r\nl: 6\r\n\r\n%s", ok200);
    pcap_begin(&b, 101);
    add_syn(&b, 3000, isn);
    add_seg(&b, 3001, isn, TCP_ACK, badcl, 0, (size_t)bcl);
    save(&b, "tcp-bad-length.pcap", path, sizeof path);
    CHECK_ERR(read_all(path, &g), MS_OK);
    CHECK(g.n == 1 && item_is(&g.item[0], MS_CAPTURE_SIP, true, A, B, ok200, ol));
    CHECK(g.st.skipped == 1);
    got_free(&g);

    /* The capture lost the middle of the INVITE (the peer's ACK covers it): the INVITE is
     * given up, the 200 after it still comes, at the time of the ACK. */
    static char lost[4096];
    int ll = snprintf(lost, sizeof lost, "%s%s", invite, ok200);
    pcap_begin(&b, 101);
    add_syn(&b, 4000, isn);
    add_seg(&b, 4001, isn, TCP_ACK, lost, 0, 100);
    add_seg(&b, 4003, isn, TCP_ACK, lost, 200, (size_t)ll - 200);
    add_ack_back(&b, 4004, isn + 1 + (uint32_t)ll);
    save(&b, "tcp-lost.pcap", path, sizeof path);
    CHECK_ERR(read_all(path, &g), MS_OK);
    CHECK(g.n == 1 && item_is(&g.item[0], MS_CAPTURE_SIP, true, A, B, ok200, ol));
    CHECK(g.n == 1 && g.item[0].t_us == 4004);
    CHECK(g.st.skipped >= 1);
    got_free(&g);

    /* Headers that never end (over the 64 KiB limit) are given up; the next message in a
     * later segment is found. A Content-Length over the body limit skips that message. */
    static char huge[100000];
    size_t hl = (size_t)snprintf(huge, sizeof huge, "INVITE sip:x@y SIP/2.0\r\nX: ");
    memset(huge + hl, 'a', 90000);
    hl += 90000;
    memcpy(huge + hl, "\r\n", 2);
    hl += 2;
    static char after[1024];
    int al2 = snprintf(after, sizeof after,
                       "MESSAGE sip:x@y SIP/2.0\r\nContent-Length: 999999999\r\n\r\nabc\r\n%s",
                       ok200);
    pcap_begin(&b, 101);
    add_syn(&b, 3000, isn);
    add_seg(&b, 3001, isn, TCP_ACK, huge, 0, 60000);
    add_seg(&b, 3002, isn, TCP_ACK, huge, 60000, hl - 60000);
    /* continue the sequence space after the huge part */
    {
        static uint8_t l4[2048], pk[2048];
        size_t n = tcp_seg(l4, 5070, 5060, isn + 1 + (uint32_t)hl, TCP_ACK, ok200, ol);
        n = ip4(pk, 6, LOCAL, LOCAL, 0x4000, l4, n);
        pcap_record(&b, 3003, pk, n);
        n = tcp_seg(l4, 5070, 5060, isn + 1 + (uint32_t)(hl + ol), TCP_ACK, after,
                    (size_t)al2);
        n = ip4(pk, 6, LOCAL, LOCAL, 0x4000, l4, n);
        pcap_record(&b, 3004, pk, n);
    }
    snprintf(path, sizeof path, "%s/tcp-huge.pcap", tmpdir); /* too big for a seed */
    FILE *hf = fopen(path, "wb");
    CHECK(hf != NULL && fwrite(b.d, 1, b.len, hf) == b.len);
    if (hf)
        fclose(hf);
    CHECK_ERR(read_all(path, &g), MS_OK);
    CHECK(g.last_rc == 0 && g.n == 2);
    if (g.n == 2) {
        CHECK(item_is(&g.item[0], MS_CAPTURE_SIP, true, A, B, ok200, ol));
        CHECK(item_is(&g.item[1], MS_CAPTURE_SIP, true, A, B, ok200, ol));
        CHECK(g.item[0].t_us == 3003 && g.item[1].t_us == 3004);
    }
    CHECK(g.st.skipped == 2);
    got_free(&g);

    /* Half a message at the end of the file: nothing returned, one skipped. */
    pcap_begin(&b, 101);
    add_syn(&b, 3000, isn);
    add_seg(&b, 3001, isn, TCP_ACK, invite, 0, il - 5);
    save(&b, "tcp-incomplete.pcap", path, sizeof path);
    CHECK_ERR(read_all(path, &g), MS_OK);
    CHECK(g.n == 0 && g.last_rc == 0 && g.st.skipped == 1);
    got_free(&g);
}

static void test_handmade_links(void)
{
    static pbuf b;
    static uint8_t pkt[4096], l4[4096];
    char path[256];
    got_all g;
    size_t ol = strlen(ok200);
    static const uint8_t rtp[12] = {0x80, 0x60, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4};

    /* IPv6 over Ethernet with a hop-by-hop options header, SIP over UDP; then raw IPv6
     * media. */
    pcap_begin(&b, 1);
    uint8_t *eth = pkt;
    memset(eth, 0, 12);
    be16(eth + 12, 0x86dd);
    uint8_t *ip = eth + 14;
    memset(ip, 0, 48);
    ip[0] = 0x60;
    ip[6] = 0; /* hop-by-hop */
    ip[7] = 64;
    ip[23] = 1;                 /* ::1 */
    ip[39] = 1;
    ip[40] = 17;                /* then UDP */
    ip[41] = 0;                 /* 8 octets */
    ip[42] = 1;                 /* PadN */
    ip[43] = 4;
    size_t u = udp_dgram(ip + 48, 5060, 5062, ok200, ol);
    be16(ip + 4, (uint16_t)(8 + u));
    pcap_record(&b, 5000, pkt, 14 + 48 + u);
    save(&b, "ipv6-udp.pcap", path, sizeof path);
    CHECK_ERR(read_all(path, &g), MS_OK);
    CHECK(g.n == 1 && item_is(&g.item[0], MS_CAPTURE_SIP, false, "[::1]:5060", "[::1]:5062",
                              ok200, ol));
    CHECK(g.n == 1 && g.item[0].t_us == 5000);
    got_free(&g);

    /* BSD loopback (DLT_NULL, AF_INET in little-endian host order): SIP then RTP over
     * UDP, a non-first fragment (skipped), an ICMP packet (skipped), a bad IHL. */
    pcap_begin(&b, 0);
    put_le32(pkt, 2);
    size_t n = udp_dgram(l4, 5060, 5062, ok200, ol);
    n = ip4(pkt + 4, 17, 0x0a000001, 0x0a000002, 0, l4, n);
    pcap_record(&b, 6000, pkt, 4 + n);
    n = udp_dgram(l4, 4000, 4002, rtp, sizeof rtp);
    n = ip4(pkt + 4, 17, 0x0a000002, 0x0a000001, 0, l4, n);
    pcap_record(&b, 6001, pkt, 4 + n);
    n = ip4(pkt + 4, 17, 0x0a000002, 0x0a000001, 0x0010, l4, 40); /* offset 128 */
    pcap_record(&b, 6002, pkt, 4 + n);
    n = ip4(pkt + 4, 1, 0x0a000002, 0x0a000001, 0, l4, 8);
    pcap_record(&b, 6003, pkt, 4 + n);
    n = ip4(pkt + 4, 17, 0x0a000002, 0x0a000001, 0, l4, 20);
    pkt[4] = 0x44;
    pcap_record(&b, 6004, pkt, 4 + n);
    save(&b, "null-udp.pcap", path, sizeof path);
    CHECK_ERR(read_all(path, &g), MS_OK);
    CHECK(g.last_rc == 0);
    CHECK(g.n == 2);
    if (g.n == 2) {
        CHECK(item_is(&g.item[0], MS_CAPTURE_SIP, false, "10.0.0.1:5060", "10.0.0.2:5062",
                      ok200, ol));
        CHECK(item_is(&g.item[1], MS_CAPTURE_UDP, false, "10.0.0.2:4000", "10.0.0.1:4002",
                      rtp, sizeof rtp));
    }
    CHECK(g.st.packets == 5 && g.st.sip_messages == 1 && g.st.udp_datagrams == 1 &&
          g.st.skipped == 3);
    got_free(&g);

    /* Ethernet with padding after a short IPv4 packet: the trailer is not data. */
    pcap_begin(&b, 1);
    memset(pkt, 0, 14);
    be16(pkt + 12, 0x0800);
    n = udp_dgram(l4, 4000, 4002, rtp, 4);
    n = ip4(pkt + 14, 17, LOCAL, LOCAL, 0, l4, n);
    memset(pkt + 14 + n, 0xee, 60 - 14 - n);
    pcap_record(&b, 7000, pkt, 60);
    /* IPv4 with options (IHL 6: NOP NOP NOP EOL) in a VLAN-tagged frame. */
    be16(pkt + 12, 0x8100);
    be16(pkt + 14, 7);
    be16(pkt + 16, 0x0800);
    n = udp_dgram(l4, 5060, 5062, ok200, ol);
    uint8_t *ip4o = pkt + 18;
    ip4(ip4o, 17, LOCAL, LOCAL, 0, l4, 0);
    ip4o[0] = 0x46;
    be16(ip4o + 2, (uint16_t)(24 + n));
    ip4o[20] = 1;
    ip4o[21] = 1;
    ip4o[22] = 1;
    ip4o[23] = 0;
    memcpy(ip4o + 24, l4, n);
    pcap_record(&b, 7001, pkt, 18 + 24 + n);
    save(&b, "ether-padding.pcap", path, sizeof path);
    CHECK_ERR(read_all(path, &g), MS_OK);
    CHECK(g.n == 2 && g.item[0].kind == MS_CAPTURE_UDP && g.item[0].len == 4);
    CHECK(g.n == 2 && item_is(&g.item[1], MS_CAPTURE_SIP, false, "127.0.0.1:5060",
                              "127.0.0.1:5062", ok200, ol));
    got_free(&g);
}

static void test_damaged(void)
{
    static pbuf b;
    char path[256], detail[256];
    got_all g;
    size_t ol = strlen(ok200);
    static uint8_t l4[4096], pkt[4096];

    /* Two whole records, then the third cut short. */
    pcap_begin(&b, 101);
    for (int i = 0; i < 3; i++) {
        size_t n = udp_dgram(l4, 5060, 5062, ok200, ol);
        n = ip4(pkt, 17, LOCAL, LOCAL, 0, l4, n);
        pcap_record(&b, 8000 + (uint64_t)i, pkt, n);
    }
    b.len -= 30;
    save(&b, "truncated.pcap", path, sizeof path);
    CHECK_ERR(read_all(path, &g), MS_OK);
    CHECK(g.n == 2);
    CHECK(g.last_rc == -1);
    CHECK(strstr(g.detail, "after packet 2") != NULL);
    got_free(&g);

    /* Garbage. */
    snprintf(path, sizeof path, "%s/garbage.pcap", tmpdir);
    FILE *f = fopen(path, "wb");
    fputs("this is not a capture file at all, just some text\n", f);
    fclose(f);
    ms_capture_reader *r = NULL;
    detail[0] = 0;
    CHECK_ERR(ms_capture_open(&r, path, detail, sizeof detail), MS_ERR_CAPTURE);
    CHECK(r == NULL && strstr(detail, path) != NULL);

    /* Missing file, and a link type we do not read (IEEE 802.11). */
    snprintf(path, sizeof path, "%s/missing.pcap", tmpdir);
    CHECK_ERR(ms_capture_open(&r, path, detail, sizeof detail), MS_ERR_CAPTURE);
    pcap_begin(&b, 105);
    save(&b, "wifi.pcap", path, sizeof path);
    detail[0] = 0;
    CHECK_ERR(ms_capture_open(&r, path, detail, sizeof detail), MS_ERR_CAPTURE);
    CHECK(strstr(detail, "link type 105") != NULL);
}

/* ---- writer round trip and tshark ------------------------------------------------------ */

static void test_round_trip(void)
{
    char path[256], tmp[300], detail[256];
    snprintf(path, sizeof path, "%s/written.pcap", tmpdir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    const char *A = "127.0.0.1:5070", *B = "127.0.0.2:5060", *MA = "127.0.0.1:40000",
               *MB = "127.0.0.2:40002";
    size_t il = strlen(invite), ol = strlen(ok200), bl = strlen(bye_compact);

    /* A message over the 65,000-octet segment limit (a large body). */
    size_t big_body = 150000;
    char *big = malloc(big_body + 256);
    int hl = snprintf(big, 256, "MESSAGE sip:bob@example.org SIP/2.0\r\nContent-Length: %zu\r\n\r\n",
                      big_body);
    for (size_t i = 0; i < big_body; i++)
        big[hl + (int)i] = (char)('a' + i % 26);
    size_t bigl = (size_t)hl + big_body;

    uint8_t rtp[172];
    for (size_t i = 0; i < sizeof rtp; i++)
        rtp[i] = (uint8_t)(i * 7 + 3);
    rtp[0] = 0x80;

    ms_capture_writer *w;
    CHECK_ERR(ms_capture_create(&w, path, detail, sizeof detail), MS_OK);
    struct stat sb;
    CHECK(stat(tmp, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    CHECK(stat(path, &sb) != 0); /* not there until committed */
    uint64_t t0 = 1765000000000000ull;
    CHECK_ERR(ms_capture_write_tcp(w, t0 + 1, A, B, (const uint8_t *)invite, il), MS_OK);
    CHECK_ERR(ms_capture_write_udp(w, t0 + 2, MA, MB, rtp, sizeof rtp), MS_OK);
    CHECK_ERR(ms_capture_write_tcp(w, t0 + 3, B, A, (const uint8_t *)ok200, ol), MS_OK);
    CHECK_ERR(ms_capture_write_udp(w, t0 + 4, MB, MA, rtp, 20), MS_OK);
    CHECK_ERR(ms_capture_write_udp(w, t0 + 5, B, A, (const uint8_t *)ok200, ol), MS_OK);
    CHECK_ERR(ms_capture_write_tcp(w, t0 + 6, A, B, (const uint8_t *)big, bigl), MS_OK);
    CHECK_ERR(ms_capture_write_tcp(w, t0 + 7, A, B, (const uint8_t *)bye_compact, bl), MS_OK);
    /* rejected arguments */
    CHECK_ERR(ms_capture_write_udp(w, t0, "127.0.0.1", MB, rtp, 4), MS_ERR_ARG);
    CHECK_ERR(ms_capture_write_udp(w, t0, MA, "[::1]:5", rtp, 4), MS_ERR_ARG);
    CHECK_ERR(ms_capture_write_udp(w, t0, MA, "127.0.0.1:65536", rtp, 4), MS_ERR_ARG);
    CHECK_ERR(ms_capture_write_udp(w, t0, MA, MB, (const uint8_t *)big, 70000), MS_ERR_ARG);
    CHECK_ERR(ms_capture_write_tcp(w, t0, MA, MB, rtp, 0), MS_ERR_ARG);
    CHECK_ERR(ms_capture_close(w, true), MS_OK);
    CHECK(stat(tmp, &sb) != 0);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);

    got_all g;
    CHECK_ERR(read_all(path, &g), MS_OK);
    CHECK(g.last_rc == 0);
    CHECK(g.n == 7);
    if (g.n == 7) {
        CHECK(item_is(&g.item[0], MS_CAPTURE_SIP, true, A, B, invite, il));
        CHECK(item_is(&g.item[1], MS_CAPTURE_UDP, false, MA, MB, rtp, sizeof rtp));
        CHECK(item_is(&g.item[2], MS_CAPTURE_SIP, true, B, A, ok200, ol));
        CHECK(item_is(&g.item[3], MS_CAPTURE_UDP, false, MB, MA, rtp, 20));
        CHECK(item_is(&g.item[4], MS_CAPTURE_SIP, false, B, A, ok200, ol));
        CHECK(item_is(&g.item[5], MS_CAPTURE_SIP, true, A, B, big, bigl));
        CHECK(item_is(&g.item[6], MS_CAPTURE_SIP, true, A, B, bye_compact, bl));
        for (size_t i = 0; i < 7; i++)
            CHECK(g.item[i].t_us == t0 + 1 + i);
    }
    CHECK(g.st.packets == 9 && g.st.skipped == 0); /* the big message is 3 segments */
    got_free(&g);

    /* The IPv4 header checksums verify (sum over the header is 0xffff). */
    FILE *f = fopen(path, "rb");
    static uint8_t file[300000];
    size_t fl = f ? fread(file, 1, sizeof file, f) : 0;
    if (f)
        fclose(f);
    size_t at = 24, records = 0, good = 0;
    while (at + 16 + 20 <= fl) {
        uint32_t caplen = (uint32_t)file[at + 8] | ((uint32_t)file[at + 9] << 8) |
                          ((uint32_t)file[at + 10] << 16) | ((uint32_t)file[at + 11] << 24);
        const uint8_t *ip = file + at + 16;
        uint32_t sum = 0;
        for (int i = 0; i < 20; i += 2)
            sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
        while (sum >> 16)
            sum = (sum & 0xffff) + (sum >> 16);
        records++;
        good += sum == 0xffff;
        at += 16 + caplen;
    }
    CHECK(records == 9 && good == 9);

    /* tshark reads it: the INVITE, the 200 (TCP and UDP), the big MESSAGE reassembled. */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "tshark -r '%s' -Y sip -T fields -e sip.Request-Line -e sip.Status-Line "
             "-e tcp.reassembled.length 2>/dev/null",
             path);
    FILE *p = popen(cmd, "r");
    static char out[65536];
    size_t ol2 = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[ol2] = 0;
    int st = p ? pclose(p) : -1;
    CHECK(st == 0);
    CHECK(strstr(out, "INVITE sip:bob@example.org SIP/2.0") != NULL);
    CHECK(strstr(out, "SIP/2.0 200 OK") != NULL);
    char want[64];
    snprintf(want, sizeof want, "%zu", bigl);
    CHECK(strstr(out, "MESSAGE sip:bob@example.org SIP/2.0") != NULL && strstr(out, want) != NULL);
    CHECK(strstr(out, "BYE sip:alice@example.org SIP/2.0") != NULL);
    if (st != 0 || strstr(out, "INVITE") == NULL)
        fprintf(stderr, "tshark said:\n%s\n", out);

    /* Abandoned: nothing left behind. */
    snprintf(path, sizeof path, "%s/abandoned.pcap", tmpdir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK_ERR(ms_capture_create(&w, path, detail, sizeof detail), MS_OK);
    CHECK_ERR(ms_capture_write_udp(w, t0, MA, MB, rtp, 4), MS_OK);
    CHECK_ERR(ms_capture_close(w, false), MS_OK);
    CHECK(stat(path, &sb) != 0 && stat(tmp, &sb) != 0);
    /* A directory that does not exist. */
    snprintf(path, sizeof path, "%s/no/such/dir.pcap", tmpdir);
    detail[0] = 0;
    CHECK_ERR(ms_capture_create(&w, path, detail, sizeof detail), MS_ERR_IO);
    CHECK(detail[0] != 0);
    free(big);
}

/* ---- real captures by tcpdump ---------------------------------------------------------- */

/* Starts tcpdump and waits until it says it is listening. Returns its pid, or -1. */
static pid_t start_tcpdump(const char *iface, const char *linktype, const char *file,
                           const char *filter, int *err_fd)
{
    int errpipe[2];
    if (pipe(errpipe) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(errpipe[1], 2);
        close(errpipe[0]);
        close(errpipe[1]);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        if (linktype)
            execlp("tcpdump", "tcpdump", "-i", iface, "-y", linktype, "-n", "-U", "-w", file,
                   filter, (char *)NULL);
        else
            execlp("tcpdump", "tcpdump", "-i", iface, "-n", "-U", "-w", file, filter,
                   (char *)NULL);
        _exit(127);
    }
    close(errpipe[1]);
    if (pid < 0) {
        close(errpipe[0]);
        return -1;
    }
    /* "listening on lo, link-type EN10MB ..." comes once the capture is running. */
    char text[1024];
    size_t tl = 0;
    ssize_t k;
    bool listening = false;
    while (!listening && tl < sizeof text - 1 &&
           (k = read(errpipe[0], text + tl, sizeof text - 1 - tl)) > 0) {
        tl += (size_t)k;
        text[tl] = 0;
        listening = strstr(text, "listening on") != NULL;
    }
    if (!listening) {
        fprintf(stderr, "tcpdump did not start: %s\n", tl ? text : "(no output)");
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        close(errpipe[0]);
        return -1;
    }
    /* The pipe stays open until tcpdump has exited: its SIGPIPE handler ends the capture
     * quietly (exit status 0, no packets) if it writes the rest of a line to a closed
     * pipe. What it writes at exit (the packet counts) fits in the pipe. */
    *err_fd = errpipe[0];
    return pid;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_live(const char *iface, const char *linktype, const char *name)
{
    char path[256], filter[128], detail[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);

    /* Listening sockets first, so their free ports go into the filter. */
    int ls = socket(AF_INET, SOCK_STREAM, 0), us = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(LOCAL);
    socklen_t al = sizeof a;
    struct sockaddr_in tcp_addr, udp_addr;
    CHECK(bind(ls, (struct sockaddr *)&a, sizeof a) == 0 && listen(ls, 1) == 0);
    CHECK(bind(us, (struct sockaddr *)&a, sizeof a) == 0);
    getsockname(ls, (struct sockaddr *)&tcp_addr, &al);
    al = sizeof a;
    getsockname(us, (struct sockaddr *)&udp_addr, &al);
    unsigned tport = ntohs(tcp_addr.sin_port), uport = ntohs(udp_addr.sin_port);
    snprintf(filter, sizeof filter, "host 127.0.0.1 and (tcp port %u or udp port %u)", tport,
             uport);

    int td_err = -1;
    pid_t pid = start_tcpdump(iface, linktype, path, filter, &td_err);
    CHECK(pid > 0);
    if (pid <= 0) {
        close(ls);
        close(us);
        return;
    }

    int cs = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(cs, (struct sockaddr *)&tcp_addr, sizeof tcp_addr) == 0);
    int one = 1;
    setsockopt(cs, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int ss = accept(ls, NULL, NULL);
    CHECK(ss >= 0);
    struct sockaddr_in caddr;
    al = sizeof caddr;
    getsockname(cs, (struct sockaddr *)&caddr, &al);

    /* The INVITE in four writes; the receiver reads each before the next is sent, so
     * each is its own segment. */
    size_t il = strlen(invite), cuts[] = {0, 40, 41, 200, il};
    char got[4096];
    size_t gl = 0;
    for (int i = 0; i < 4; i++) {
        size_t n = cuts[i + 1] - cuts[i];
        CHECK(write(cs, invite + cuts[i], n) == (ssize_t)n);
        size_t want = cuts[i + 1];
        while (gl < want) {
            ssize_t k = read(ss, got + gl, sizeof got - gl);
            if (k <= 0)
                break;
            gl += (size_t)k;
        }
    }
    CHECK(gl == il && memcmp(got, invite, il) == 0);
    size_t ol = strlen(ok200);
    CHECK(write(ss, ok200, ol) == (ssize_t)ol);
    gl = 0;
    while (gl < ol) {
        ssize_t k = read(cs, got + gl, sizeof got - gl);
        if (k <= 0)
            break;
        gl += (size_t)k;
    }
    static const uint8_t rtp[] = {0x80, 0x60, 0x12, 0x34, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
    int cu = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(sendto(cu, rtp, sizeof rtp, 0, (struct sockaddr *)&udp_addr, sizeof udp_addr) ==
          (ssize_t)sizeof rtp);
    close(cs);
    close(ss);

    char client[64], server[64], udp_dst[64];
    snprintf(client, sizeof client, "127.0.0.1:%u", (unsigned)ntohs(caddr.sin_port));
    snprintf(server, sizeof server, "127.0.0.1:%u", tport);
    snprintf(udp_dst, sizeof udp_dst, "127.0.0.1:%u", uport);

    /* tcpdump writes each packet as it comes (-U); wait (bounded) until the file holds
     * all three items, then stop it. */
    got_all g;
    memset(&g, 0, sizeof g);
    for (int tries = 0; tries < 100; tries++) {
        got_free(&g);
        if (read_all(path, &g) == MS_OK && g.n >= 3)
            break;
        pause_ms(50);
    }
    got_free(&g);
    kill(pid, SIGINT);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char td_text[512];
    ssize_t td_len = read(td_err, td_text, sizeof td_text - 1);
    td_text[td_len > 0 ? td_len : 0] = 0;
    close(td_err);

    ms_capture_reader *r;
    CHECK_ERR(ms_capture_open(&r, path, detail, sizeof detail), MS_OK);
    ms_capture_close_reader(r);
    CHECK_ERR(read_all(path, &g), MS_OK);
    CHECK(g.last_rc == 0);
    CHECK(g.n == 3);
    if (g.n == 3) {
        CHECK(item_is(&g.item[0], MS_CAPTURE_SIP, true, client, server, invite, il));
        CHECK(item_is(&g.item[1], MS_CAPTURE_SIP, true, server, client, ok200, ol));
        CHECK(g.item[2].kind == MS_CAPTURE_UDP && !g.item[2].tcp &&
              strcmp(g.item[2].dst, udp_dst) == 0 && g.item[2].len == sizeof rtp &&
              memcmp(g.item[2].data, rtp, sizeof rtp) == 0);
        CHECK(g.item[0].t_us <= g.item[1].t_us && g.item[1].t_us <= g.item[2].t_us);
    } else {
        struct stat sb;
        fprintf(stderr, "%s: %zu items from %llu packets, %lld octets (detail: %s)\n", name,
                g.n, (unsigned long long)g.st.packets,
                stat(path, &sb) == 0 ? (long long)sb.st_size : -1LL, g.detail);
        fprintf(stderr, "tcpdump said: %s\n", td_text);
    }
    /* at least SYN, SYN-ACK, ACK, 4 data segments, the 200, the datagram */
    CHECK(g.st.packets >= 9 && g.st.sip_messages == 2 && g.st.udp_datagrams == 1);
    got_free(&g);

    /* The same capture as pcapng (tshark converts it) reads the same. */
    char ng[300], cmd[800];
    snprintf(ng, sizeof ng, "%sng", path);
    snprintf(cmd, sizeof cmd, "tshark -r '%s' -F pcapng -w '%s' 2>/dev/null", path, ng);
    CHECK(system(cmd) == 0);
    got_all g2;
    CHECK_ERR(read_all(ng, &g2), MS_OK);
    CHECK(g2.last_rc == 0 && g2.n == 3);
    if (g2.n == 3)
        CHECK(item_is(&g2.item[0], MS_CAPTURE_SIP, true, client, server, invite, il));
    got_free(&g2);

    if (getenv("MS_CAPTURE_SEED_DIR")) {
        static uint8_t file[65536];
        FILE *f = fopen(path, "rb");
        size_t fl = f ? fread(file, 1, sizeof file, f) : 0;
        if (f)
            fclose(f);
        save_seed(name, file, fl);
        f = fopen(ng, "rb");
        fl = f ? fread(file, 1, sizeof file, f) : 0;
        if (f)
            fclose(f);
        snprintf(cmd, sizeof cmd, "%sng", name);
        save_seed(cmd, file, fl);
    }

    /* The file says which link layer it was. */
    char out[256] = "";
    snprintf(cmd, sizeof cmd, "tcpdump -r '%s' -c 1 2>&1 >/dev/null", path);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = 0;
    if (p)
        pclose(p);
    const char *want = linktype ? linktype : strcmp(iface, "lo") == 0 ? "EN10MB" : "LINUX_SLL2";
    CHECK(strstr(out, want) != NULL);
    close(cu);
    close(ls);
    close(us);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ms-capture-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_handmade_tcp();
    test_handmade_links();
    test_damaged();
    test_round_trip();
    test_live("lo", NULL, "live-lo.pcap");
    test_live("any", NULL, "live-any.pcap");
    test_live("any", "LINUX_SLL", "live-any-sll.pcap");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return ms_test_finish();
}
