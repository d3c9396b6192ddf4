/*
 * Capture files on libpcap: a LINKTYPE_RAW writer for the voicemail store and a reader
 * that turns any capture (pcap or pcapng; Ethernet, Linux cooked, raw IP, BSD loopback)
 * into SIP messages and UDP datagrams in time order. TCP is reassembled per direction;
 * SIP messages are cut from the byte stream by their header end and Content-Length.
 * Key-less by design: nothing here touches key material.
 *
 * Every buffer the reader keeps is bounded (streams, bytes per stream, out-of-order bytes,
 * bytes overall), so a hostile capture costs at most a few tens of MiB.
 */
#include "capture/capture.h"
#include "util/bytes.h"
#include "util/detail.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pcap/pcap.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- limits ---------------------------------------------------------------------------- */

#define CAP_SNAPLEN 65535u            /* largest IPv4 packet */
#define CAP_UDP_MAX (65535u - 20u - 8u)
#define CAP_TCP_SEGMENT_MAX 65000u    /* TCP data per written segment */
#define CAP_WRITER_FLOWS_MAX 4096u    /* TCP directions one writer tracks */
#define CAP_ISN 0x10000000u           /* first sequence number of every written direction */

#define CAP_STREAMS_MAX 512u          /* TCP directions tracked at once (oldest evicted) */
#define CAP_HEADER_MAX (64u * 1024u)  /* start line + headers of one SIP message */
#define CAP_BODY_MAX (256u * 1024u)   /* Content-Length accepted */
#define CAP_OOO_MAX (256u * 1024u)    /* out-of-order bytes held per direction */
#define CAP_OOO_SEGMENTS 256u         /* ... in this many segments (the list is linear) */
#define CAP_TOTAL_MAX (48u * 1024u * 1024u) /* bytes held by all streams together */
#define CAP_IPV6_EXT_MAX 8            /* extension headers walked */

/* One's complement sum (RFC 1071), folded by the caller. */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
    while (len > 1) {
        sum += ms_load_be16(p);
        p += 2;
        len -= 2;
    }
    if (len)
        sum += (uint32_t)p[0] << 8;
    return sum;
}
static uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffffu) + (sum >> 16);
    return (uint16_t)~sum;
}

/* ---- SIP recognition (shared by UDP and TCP) ------------------------------------------- */

/* A SIP start line: "SIP/2.0 NNN ..." or "METHOD scheme:... SIP/2.0". */
static bool sip_start_line(const uint8_t *p, size_t len)
{
    static const char ver[] = "SIP/2.0";
    if (len >= 11 && memcmp(p, "SIP/2.0 ", 8) == 0)
        return p[8] >= '1' && p[8] <= '6' && p[9] >= '0' && p[9] <= '9' && p[10] >= '0' &&
               p[10] <= '9' && (len == 11 || p[11] == ' ');
    size_t i = 0;
    while (i < len && i < 32 && ((p[i] >= 'A' && p[i] <= 'Z') || p[i] == '-'))
        i++;
    if (i == 0 || i >= len || p[i] != ' ')
        return false;
    size_t uri = ++i, colon = 0;
    while (i < len && p[i] != ' ') {
        if (p[i] == ':' && colon == 0)
            colon = i;
        if (p[i] < 0x21 || p[i] > 0x7e)
            return false;
        i++;
    }
    if (colon <= uri || i == len) /* a scheme is needed, and the version after it */
        return false;
    for (size_t k = uri; k < colon; k++)
        if (!((p[k] | 0x20) >= 'a' && (p[k] | 0x20) <= 'z'))
            return false;
    return len - i - 1 == sizeof ver - 1 && memcmp(p + i + 1, ver, sizeof ver - 1) == 0;
}

/* Length of the first line (without CRLF) if a CRLF is within `len`, else SIZE_MAX. */
static size_t line_end(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (p[i] == '\r' && p[i + 1] == '\n')
            return i;
    return SIZE_MAX;
}

static bool looks_like_sip(const uint8_t *p, size_t len)
{
    size_t n = line_end(p, len < 1024 ? len : 1024);
    return n != SIZE_MAX && sip_start_line(p, n);
}

static bool name_is(const uint8_t *p, size_t n, const char *name)
{
    size_t k = strlen(name);
    if (n != k)
        return false;
    for (size_t i = 0; i < k; i++)
        if ((p[i] | 0x20) != name[i])
            return false;
    return true;
}

/* Content-Length from the header block p[0..len) (start line included). Returns false on
 * a malformed or conflicting value; a message without one has no body. */
static bool content_length(const uint8_t *p, size_t len, size_t *out)
{
    size_t pos = line_end(p, len), found = SIZE_MAX;
    if (pos == SIZE_MAX)
        return false;
    pos += 2;
    while (pos < len) {
        size_t n = line_end(p + pos, len - pos);
        if (n == SIZE_MAX)
            n = len - pos;
        const uint8_t *l = p + pos;
        pos += n + 2;
        size_t c = 0;
        while (c < n && l[c] != ':' && l[c] != ' ' && l[c] != '\t')
            c++;
        size_t name_len = c;
        while (c < n && (l[c] == ' ' || l[c] == '\t'))
            c++;
        if (c >= n || l[c] != ':')
            continue;
        if (!name_is(l, name_len, "content-length") && !name_is(l, name_len, "l"))
            continue;
        c++;
        while (c < n && (l[c] == ' ' || l[c] == '\t'))
            c++;
        size_t v = 0, digits = 0;
        while (c < n && l[c] >= '0' && l[c] <= '9') {
            v = v * 10 + (size_t)(l[c] - '0');
            if (v > CAP_BODY_MAX)
                return false;
            c++;
            digits++;
        }
        while (c < n && (l[c] == ' ' || l[c] == '\t'))
            c++;
        if (digits == 0 || c != n || (found != SIZE_MAX && found != v))
            return false;
        found = v;
    }
    *out = found == SIZE_MAX ? 0 : found;
    return true;
}

/* ---- writer ---------------------------------------------------------------------------- */

typedef struct writer_flow {
    uint8_t src[4], dst[4];
    uint16_t sport, dport;
    uint32_t next_seq;
} writer_flow;

struct ms_capture_writer {
    pcap_t *dead;
    pcap_dumper_t *dumper;
    char *path, *tmp;
    writer_flow *flows;
    size_t n_flows, cap_flows;
    uint16_t ip_id;
    uint8_t pkt[CAP_SNAPLEN];
};

ms_err ms_capture_create(ms_capture_writer **out, const char *path, char *detail,
                         size_t detail_cap)
{
    if (out == NULL || path == NULL || path[0] == 0) {
        ms_detail_set(detail, detail_cap, "no capture file path given");
        return MS_ERR_ARG;
    }
    *out = NULL;
    ms_capture_writer *w = calloc(1, sizeof *w);
    size_t plen = strlen(path);
    if (w == NULL || (w->path = strdup(path)) == NULL ||
        (w->tmp = malloc(plen + 5)) == NULL) {
        if (w)
            free(w->path);
        free(w);
        ms_detail_set(detail, detail_cap, "out of memory creating the capture writer");
        return MS_ERR_NOMEM;
    }
    memcpy(w->tmp, path, plen);
    memcpy(w->tmp + plen, ".tmp", 5);
    w->dead = pcap_open_dead(DLT_RAW, (int)CAP_SNAPLEN);
    int fd = w->dead ? open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)
                     : -1;
    FILE *fp = NULL;
    if (fd < 0 || fchmod(fd, 0600) != 0 || (fp = fdopen(fd, "wb")) == NULL ||
        (w->dumper = pcap_dump_fopen(w->dead, fp)) == NULL) {
        ms_detail_set(detail, detail_cap, "cannot create capture file %s: %s", w->tmp,
                   w->dead == NULL ? "libpcap failed" : strerror(errno));
        if (fp)
            fclose(fp);
        else if (fd >= 0)
            close(fd);
        if (fd >= 0)
            unlink(w->tmp);
        if (w->dead)
            pcap_close(w->dead);
        free(w->tmp);
        free(w->path);
        free(w);
        return MS_ERR_IO;
    }
    *out = w;
    return MS_OK;
}

/* "a.b.c.d:port" (IPv4 only: the file is LINKTYPE_RAW IPv4). */
static bool parse_v4(const char *s, uint8_t addr[4], uint16_t *port)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (colon == NULL || colon == s || (size_t)(colon - s) >= INET_ADDRSTRLEN)
        return false;
    char host[INET_ADDRSTRLEN];
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    if (inet_pton(AF_INET, host, addr) != 1)
        return false;
    unsigned long v = 0;
    const char *d = colon + 1;
    if (*d == 0 || strlen(d) > 5)
        return false;
    for (; *d; d++) {
        if (*d < '0' || *d > '9')
            return false;
        v = v * 10 + (unsigned long)(*d - '0');
    }
    if (v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

static void ipv4_header(ms_capture_writer *w, uint8_t *ip, size_t total, uint8_t proto,
                        const uint8_t src[4], const uint8_t dst[4])
{
    ip[0] = 0x45;
    ip[1] = 0;
    ms_store_be16(ip + 2, (uint16_t)total);
    ms_store_be16(ip + 4, w->ip_id++);
    ms_store_be16(ip + 6, 0x4000); /* DF */
    ip[8] = 64;
    ip[9] = proto;
    ms_store_be16(ip + 10, 0);
    memcpy(ip + 12, src, 4);
    memcpy(ip + 16, dst, 4);
    ms_store_be16(ip + 10, csum_fold(csum_add(0, ip, 20)));
}

/* Checksum over the IPv4 pseudo-header and the transport header + data at ip + 20. */
static uint16_t l4_checksum(const uint8_t *ip, size_t l4_len)
{
    uint8_t pseudo[12];
    memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = ip[9];
    ms_store_be16(pseudo + 10, (uint16_t)l4_len);
    return csum_fold(csum_add(csum_add(0, pseudo, 12), ip + 20, l4_len));
}

static ms_err dump_packet(ms_capture_writer *w, uint64_t t_us, size_t len)
{
    struct pcap_pkthdr h;
    memset(&h, 0, sizeof h);
    h.ts.tv_sec = (time_t)(t_us / 1000000u);
    h.ts.tv_usec = (suseconds_t)(t_us % 1000000u);
    h.caplen = h.len = (bpf_u_int32)len;
    pcap_dump((u_char *)w->dumper, &h, w->pkt);
    return ferror(pcap_dump_file(w->dumper)) ? MS_ERR_IO : MS_OK;
}

ms_err ms_capture_write_udp(ms_capture_writer *w, uint64_t t_us, const char *src,
                            const char *dst, const uint8_t *data, size_t len)
{
    uint8_t sa[4], da[4];
    uint16_t sp, dp;
    if (w == NULL || (data == NULL && len > 0) || len > CAP_UDP_MAX || !parse_v4(src, sa, &sp) ||
        !parse_v4(dst, da, &dp))
        return MS_ERR_ARG;
    uint8_t *ip = w->pkt, *udp = ip + 20;
    size_t total = 20 + 8 + len;
    ipv4_header(w, ip, total, 17, sa, da);
    ms_store_be16(udp, sp);
    ms_store_be16(udp + 2, dp);
    ms_store_be16(udp + 4, (uint16_t)(8 + len));
    ms_store_be16(udp + 6, 0);
    if (len)
        memcpy(udp + 8, data, len);
    uint16_t c = l4_checksum(ip, 8 + len);
    ms_store_be16(udp + 6, c ? c : 0xffff);
    return dump_packet(w, t_us, total);
}

static writer_flow *writer_flow_get(ms_capture_writer *w, const uint8_t s[4], uint16_t sp,
                                    const uint8_t d[4], uint16_t dp, bool create)
{
    for (size_t i = 0; i < w->n_flows; i++) {
        writer_flow *f = &w->flows[i];
        if (f->sport == sp && f->dport == dp && memcmp(f->src, s, 4) == 0 &&
            memcmp(f->dst, d, 4) == 0)
            return f;
    }
    if (!create || w->n_flows == CAP_WRITER_FLOWS_MAX)
        return NULL;
    if (w->n_flows == w->cap_flows) {
        size_t n = w->cap_flows ? w->cap_flows * 2 : 8;
        writer_flow *f = realloc(w->flows, n * sizeof *f);
        if (f == NULL)
            return NULL;
        w->flows = f;
        w->cap_flows = n;
    }
    writer_flow *f = &w->flows[w->n_flows++];
    memcpy(f->src, s, 4);
    memcpy(f->dst, d, 4);
    f->sport = sp;
    f->dport = dp;
    f->next_seq = CAP_ISN;
    return f;
}

ms_err ms_capture_write_tcp(ms_capture_writer *w, uint64_t t_us, const char *src,
                            const char *dst, const uint8_t *data, size_t len)
{
    uint8_t sa[4], da[4];
    uint16_t sp, dp;
    if (w == NULL || data == NULL || len == 0 || len > UINT32_MAX / 2 ||
        !parse_v4(src, sa, &sp) || !parse_v4(dst, da, &dp))
        return MS_ERR_ARG;
    writer_flow *f = writer_flow_get(w, sa, sp, da, dp, true);
    if (f == NULL)
        return w->n_flows == CAP_WRITER_FLOWS_MAX ? MS_ERR_ARG : MS_ERR_NOMEM;
    /* The acknowledgement is what the other direction has sent so far. */
    writer_flow *rev = writer_flow_get(w, da, dp, sa, sp, false);
    uint32_t ack = rev ? rev->next_seq : CAP_ISN;
    for (size_t off = 0; off < len;) {
        size_t n = len - off < CAP_TCP_SEGMENT_MAX ? len - off : CAP_TCP_SEGMENT_MAX;
        uint8_t *ip = w->pkt, *tcp = ip + 20;
        ipv4_header(w, ip, 40 + n, 6, sa, da);
        ms_store_be16(tcp, sp);
        ms_store_be16(tcp + 2, dp);
        ms_store_be32(tcp + 4, f->next_seq);
        ms_store_be32(tcp + 8, ack);
        tcp[12] = 5 << 4;
        tcp[13] = 0x18; /* ACK | PSH */
        ms_store_be16(tcp + 14, 65535);
        ms_store_be16(tcp + 16, 0);
        ms_store_be16(tcp + 18, 0);
        memcpy(tcp + 20, data + off, n);
        ms_store_be16(tcp + 16, l4_checksum(ip, 20 + n));
        ms_err e = dump_packet(w, t_us, 40 + n);
        if (e != MS_OK)
            return e;
        f->next_seq += (uint32_t)n;
        off += n;
    }
    return MS_OK;
}

/* The directory entry of a renamed file is durable only once its directory is synced. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    if (slash == NULL) {
        strcpy(dir, ".");
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        if (n >= sizeof dir)
            return;
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

ms_err ms_capture_close(ms_capture_writer *w, bool commit)
{
    if (w == NULL)
        return MS_ERR_ARG;
    ms_err e = MS_OK;
    FILE *fp = pcap_dump_file(w->dumper);
    if (pcap_dump_flush(w->dumper) != 0 || ferror(fp) || (commit && fsync(fileno(fp)) != 0))
        e = MS_ERR_IO;
    pcap_dump_close(w->dumper); /* closes fp */
    pcap_close(w->dead);
    if (commit && e == MS_OK) {
        if (rename(w->tmp, w->path) != 0)
            e = MS_ERR_IO;
        else
            sync_parent_dir(w->path);
    }
    if (!commit || e != MS_OK)
        unlink(w->tmp);
    free(w->flows);
    free(w->tmp);
    free(w->path);
    free(w);
    return e;
}

/* ---- reader: TCP streams --------------------------------------------------------------- */

typedef struct endpoint_pair {
    uint8_t family; /* 4 or 6 */
    uint8_t src[16], dst[16];
    uint16_t sport, dport;
} endpoint_pair;

typedef struct ooo_segment {
    struct ooo_segment *next;
    uint32_t seq;
    size_t len;
    uint8_t data[];
} ooo_segment;

typedef struct tcp_stream {
    endpoint_pair ep;
    bool have_seq;
    bool resync;    /* lost our place: discard up to the next SIP start line */
    bool closing;   /* FIN or RST seen: free once drained */
    bool in_headers; /* the start line at buf[start] is a SIP one; looking for CRLF CRLF */
    size_t scanned; /* bytes from start already searched for the current terminator */
    size_t first;   /* length of the start line when in_headers */
    uint32_t next_seq;
    uint8_t *buf;   /* in-order bytes not yet returned: buf[start..end) */
    size_t start, end, cap;
    ooo_segment *ooo; /* sorted by sequence number */
    size_t ooo_bytes, ooo_count;
    uint64_t t_us;  /* time of the last packet that added bytes */
    uint64_t last_used;
} tcp_stream;

struct ms_capture_reader {
    pcap_t *pcap;
    int linktype;
    ms_capture_stats st;
    bool failed;
    tcp_stream *streams[CAP_STREAMS_MAX];
    size_t n_streams;
    size_t held;           /* bytes held by all streams (buffers and out-of-order) */
    uint64_t clock;        /* packet counter for least-recently-used eviction */
    tcp_stream *ready;     /* stream that may hold complete messages */
    tcp_stream *pending;   /* a second one, looked at after ready */
    size_t consume;        /* bytes of ready's buffer returned by the last call */
};

static void stream_free(ms_capture_reader *r, tcp_stream *s)
{
    for (ooo_segment *o = s->ooo, *n; o; o = n) {
        n = o->next;
        free(o);
    }
    r->held -= s->ooo_bytes + s->cap;
    free(s->buf);
    free(s);
}

static void stream_remove(ms_capture_reader *r, tcp_stream *s)
{
    for (size_t i = 0; i < r->n_streams; i++) {
        if (r->streams[i] == s) {
            r->streams[i] = r->streams[--r->n_streams];
            break;
        }
    }
    if (r->ready == s) {
        r->ready = NULL;
        r->consume = 0;
    }
    if (r->pending == s)
        r->pending = NULL;
    stream_free(r, s);
}

static tcp_stream *stream_get(ms_capture_reader *r, const endpoint_pair *ep)
{
    for (size_t i = 0; i < r->n_streams; i++) {
        tcp_stream *s = r->streams[i];
        if (s->ep.family == ep->family && s->ep.sport == ep->sport &&
            s->ep.dport == ep->dport && memcmp(s->ep.src, ep->src, 16) == 0 &&
            memcmp(s->ep.dst, ep->dst, 16) == 0) {
            s->last_used = r->clock;
            return s;
        }
    }
    if (r->n_streams == CAP_STREAMS_MAX) {
        /* Full: the direction quiet for longest is most likely finished. */
        tcp_stream *oldest = r->streams[0];
        for (size_t i = 1; i < r->n_streams; i++)
            if (r->streams[i]->last_used < oldest->last_used)
                oldest = r->streams[i];
        if (oldest->end > oldest->start || oldest->ooo)
            r->st.skipped++;
        stream_remove(r, oldest);
    }
    tcp_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->ep = *ep;
    s->last_used = r->clock;
    r->streams[r->n_streams++] = s;
    return s;
}

/* Drop whatever partial message the stream holds and start again at the next start line. */
static void stream_lose_place(ms_capture_reader *r, tcp_stream *s)
{
    s->start = s->end = 0;
    s->in_headers = false;
    s->scanned = 0;
    s->resync = true;
    r->st.skipped++;
}

static bool stream_append(ms_capture_reader *r, tcp_stream *s, const uint8_t *p, size_t n)
{
    if (n == 0)
        return true;
    if (s->start > 0 && s->start == s->end)
        s->start = s->end = 0;
    if (s->end + n > s->cap && s->start > 0) {
        memmove(s->buf, s->buf + s->start, s->end - s->start);
        s->end -= s->start;
        s->start = 0;
    }
    if (s->end + n > s->cap) {
        size_t want = s->cap ? s->cap : 4096;
        while (want < s->end + n)
            want *= 2;
        if (r->held - s->cap + want > CAP_TOTAL_MAX)
            return false;
        uint8_t *b = realloc(s->buf, want);
        if (b == NULL)
            return false;
        r->held += want - s->cap;
        s->buf = b;
        s->cap = want;
    }
    memcpy(s->buf + s->end, p, n);
    s->end += n;
    return true;
}

/* Appends in-order data at sequence number `seq` (trimming what was already seen). */
static void stream_take(ms_capture_reader *r, tcp_stream *s, uint32_t seq, const uint8_t *p,
                        size_t n)
{
    uint32_t skip = s->next_seq - seq; /* seq <= next_seq here, modulo 2^32 */
    if (skip >= n)
        return; /* retransmission */
    if (!stream_append(r, s, p + skip, n - skip)) {
        stream_lose_place(r, s);
    }
    s->next_seq = seq + (uint32_t)n;
}

static void stream_drain_ooo(ms_capture_reader *r, tcp_stream *s)
{
    while (s->ooo && (int32_t)(s->ooo->seq - s->next_seq) <= 0) {
        ooo_segment *o = s->ooo;
        s->ooo = o->next;
        s->ooo_bytes -= o->len;
        s->ooo_count--;
        r->held -= o->len;
        stream_take(r, s, o->seq, o->data, o->len);
        free(o);
    }
}

static bool ooo_full(const ms_capture_reader *r, const tcp_stream *s, size_t n)
{
    return s->ooo_bytes + n > CAP_OOO_MAX || s->ooo_count == CAP_OOO_SEGMENTS ||
           r->held + n > CAP_TOTAL_MAX;
}

static void stream_hold_ooo(ms_capture_reader *r, tcp_stream *s, uint32_t seq,
                            const uint8_t *p, size_t n)
{
    if (ooo_full(r, s, n)) {
        /* The gap is not going to be filled (the capture lost a packet): give up the
         * partial message and continue from the earliest data held. */
        stream_lose_place(r, s);
        s->next_seq = s->ooo && (int32_t)(s->ooo->seq - seq) < 0 ? s->ooo->seq : seq;
        stream_drain_ooo(r, s);
        if ((int32_t)(seq - s->next_seq) <= 0) {
            stream_take(r, s, seq, p, n);
            stream_drain_ooo(r, s);
            return;
        }
        if (ooo_full(r, s, n)) {
            r->st.skipped++;
            return;
        }
    }
    ooo_segment **at = &s->ooo;
    while (*at && (int32_t)((*at)->seq - seq) < 0)
        at = &(*at)->next;
    if (*at && (*at)->seq == seq && (*at)->len >= n)
        return; /* same segment again */
    ooo_segment *o = malloc(sizeof *o + n);
    if (o == NULL) {
        r->st.skipped++;
        return;
    }
    o->seq = seq;
    o->len = n;
    memcpy(o->data, p, n);
    o->next = *at;
    *at = o;
    s->ooo_bytes += n;
    s->ooo_count++;
    r->held += n;
}

/* The peer acknowledged `ack` in the direction opposite to `ep`: bytes up to there that
 * the capture does not hold were lost by it and will never come. Skips those gaps and
 * returns the stream if it moved on. */
static tcp_stream *stream_skip_lost(ms_capture_reader *r, const endpoint_pair *ep,
                                    const tcp_stream *own, uint32_t ack, uint64_t t_us)
{
    tcp_stream *rev = NULL;
    for (size_t i = 0; i < r->n_streams && rev == NULL; i++) {
        tcp_stream *c = r->streams[i];
        if (c->ep.family == ep->family && c->ep.sport == ep->dport &&
            c->ep.dport == ep->sport && memcmp(c->ep.src, ep->dst, 16) == 0 &&
            memcmp(c->ep.dst, ep->src, 16) == 0)
            rev = c;
    }
    if (rev == NULL || rev == own || !rev->have_seq || (int32_t)(ack - rev->next_seq) <= 0)
        return NULL;
    while ((int32_t)(ack - rev->next_seq) > 0) {
        stream_lose_place(r, rev);
        if (rev->ooo && (int32_t)(rev->ooo->seq - ack) < 0)
            rev->next_seq = rev->ooo->seq;
        else
            rev->next_seq = ack;
        stream_drain_ooo(r, rev);
    }
    rev->t_us = t_us;
    return rev;
}

static void tcp_segment(ms_capture_reader *r, const endpoint_pair *ep, uint64_t t_us,
                        const uint8_t *tcp, size_t len)
{
    if (len < 20 || (size_t)(tcp[12] >> 4) * 4 < 20 || (size_t)(tcp[12] >> 4) * 4 > len) {
        r->st.skipped++;
        return;
    }
    size_t off = (size_t)(tcp[12] >> 4) * 4;
    uint32_t seq = ms_load_be32(tcp + 4);
    uint8_t flags = tcp[13];
    bool syn = flags & 0x02, fin = flags & 0x01, rst = flags & 0x04;
    const uint8_t *data = tcp + off;
    size_t n = len - off;

    tcp_stream *s = stream_get(r, ep);
    if (s == NULL) {
        r->st.skipped++;
        return;
    }
    /* The other direction first: its data was sent before this acknowledgement. */
    r->ready = (flags & 0x10) ? stream_skip_lost(r, ep, s, ms_load_be32(tcp + 8), t_us) : NULL;
    r->pending = NULL;
    r->consume = 0;
    if (syn) {
        if (s->have_seq && s->next_seq == seq + 1)
            return; /* SYN retransmitted */
        /* A new connection on this 4-tuple: forget the old one. */
        if (s->end > s->start || s->ooo)
            r->st.skipped++;
        for (ooo_segment *o = s->ooo, *nx; o; o = nx) {
            nx = o->next;
            r->held -= o->len;
            free(o);
        }
        s->ooo = NULL;
        s->ooo_bytes = 0;
        s->ooo_count = 0;
        s->start = s->end = 0;
        s->in_headers = false;
        s->scanned = 0;
        s->resync = false;
        s->closing = false;
        s->have_seq = true;
        s->next_seq = seq + 1;
        seq++;
    } else if (!s->have_seq) {
        if (n == 0) /* a bare ACK does not tell where the data starts */
            return;
        /* The capture began mid-connection: take this segment as the start, and find
         * the next message boundary. */
        s->have_seq = true;
        s->next_seq = seq;
        s->resync = true;
    }
    if (n > 0) {
        s->t_us = t_us;
        int32_t ahead = (int32_t)(seq - s->next_seq);
        if (ahead > 0) {
            stream_hold_ooo(r, s, seq, data, n);
        } else {
            stream_take(r, s, seq, data, n);
            stream_drain_ooo(r, s);
        }
    }
    if (rst || (fin && s->ooo == NULL && (uint32_t)(seq + n) == s->next_seq))
        s->closing = true;
    if (r->ready == NULL)
        r->ready = s;
    else
        r->pending = s;
}

/* Cuts the next SIP message from the ready stream. Returns 1 with item filled, or 0 when
 * the stream needs more data. */
static int stream_next_message(ms_capture_reader *r, tcp_stream *s, ms_capture_item *item)
{
    for (;;) {
        if (!s->in_headers && s->scanned == 0) {
            /* Keep-alive CRLFs between messages (RFC 5626) carry nothing. */
            while (s->start < s->end &&
                   (s->buf[s->start] == '\r' || s->buf[s->start] == '\n'))
                s->start++;
        }
        if (s->start == s->end)
            return 0;
        const uint8_t *p = s->buf + s->start;
        size_t avail = s->end - s->start;
        size_t lim = avail < CAP_HEADER_MAX ? avail : CAP_HEADER_MAX;
        if (!s->in_headers) {
            /* Searches resume where the last one stopped (one byte back, for a CR at the
             * end), so a message trickling in a byte per segment costs linear time. */
            size_t from = s->scanned ? s->scanned - 1 : 0;
            size_t n = line_end(p + from, lim - from);
            if (n == SIZE_MAX) {
                s->scanned = lim;
                if (avail >= CAP_HEADER_MAX)
                    stream_lose_place(r, s);
                return 0;
            }
            size_t first = from + n;
            s->scanned = 0;
            if (!sip_start_line(p, first)) {
                /* Not SIP here: skip the line (counted once per lost stretch). */
                if (!s->resync)
                    r->st.skipped++;
                s->resync = true;
                s->start += first + 2;
                continue;
            }
            s->resync = false;
            s->in_headers = true;
            s->first = first;
            s->scanned = first;
        }
        size_t hdr = SIZE_MAX;
        for (size_t i = s->scanned > s->first + 3 ? s->scanned - 3 : s->first; i + 3 < lim;
             i++) {
            if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') {
                hdr = i + 4;
                break;
            }
        }
        if (hdr == SIZE_MAX) {
            s->scanned = lim;
            if (avail >= CAP_HEADER_MAX)
                stream_lose_place(r, s);
            return 0;
        }
        s->scanned = hdr - 4;
        size_t body;
        if (!content_length(p, hdr - 2, &body)) {
            r->st.skipped++;
            s->resync = true;
            s->in_headers = false;
            s->scanned = 0;
            s->start += hdr;
            continue;
        }
        if (avail - hdr < body)
            return 0;
        s->in_headers = false;
        s->scanned = 0;
        item->kind = MS_CAPTURE_SIP;
        item->tcp = true;
        item->t_us = s->t_us;
        item->data = p;
        item->len = hdr + body;
        r->consume = hdr + body;
        r->st.sip_messages++;
        return 1;
    }
}

/* ---- reader: packets ------------------------------------------------------------------- */

static void format_endpoint(char *out, size_t cap, int family, const uint8_t *addr,
                            uint16_t port)
{
    char a[INET6_ADDRSTRLEN];
    if (inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, a, sizeof a) == NULL)
        strcpy(a, "?");
    if (family == 4)
        snprintf(out, cap, "%s:%u", a, (unsigned)port);
    else
        snprintf(out, cap, "[%s]:%u", a, (unsigned)port);
}

static void fill_endpoints(ms_capture_item *item, const endpoint_pair *ep)
{
    format_endpoint(item->src, sizeof item->src, ep->family, ep->src, ep->sport);
    format_endpoint(item->dst, sizeof item->dst, ep->family, ep->dst, ep->dport);
}

/* Finds the IP header behind the link-layer header. Returns the IP version (4 or 6) with
 * *off set, or 0 when the frame carries something else or is too short. */
static int link_payload(int linktype, const uint8_t *p, size_t len, size_t *off)
{
    uint16_t proto;
    switch (linktype) {
    case DLT_EN10MB: {
        size_t o = 12;
        if (len < 14)
            return 0;
        proto = ms_load_be16(p + o);
        for (int tags = 0; (proto == 0x8100 || proto == 0x88a8) && tags < 2; tags++) {
            o += 4;
            if (len < o + 2)
                return 0;
            proto = ms_load_be16(p + o);
        }
        *off = o + 2;
        break;
    }
    case DLT_LINUX_SLL:
        if (len < 16)
            return 0;
        proto = ms_load_be16(p + 14);
        *off = 16;
        break;
    case DLT_LINUX_SLL2:
        if (len < 20)
            return 0;
        proto = ms_load_be16(p);
        *off = 20;
        break;
    case DLT_NULL:
    case DLT_LOOP: {
        if (len < 4)
            return 0;
        uint32_t be = ms_load_be32(p), le = (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
                                     ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
        /* The AF value is in the capturing host's byte order (DLT_NULL) or big-endian
         * (DLT_LOOP); AF_INET6 differs between systems (10, 24, 28, 30). */
        uint32_t af = linktype == DLT_LOOP ? be : (be < 256 ? be : le);
        *off = 4;
        if (af == 2)
            return 4;
        if (af == 10 || af == 24 || af == 28 || af == 30)
            return 6;
        return 0;
    }
    default: /* raw IP: the version nibble says which */
        *off = 0;
        if (len < 1)
            return 0;
        return (p[0] >> 4) == 4 ? 4 : (p[0] >> 4) == 6 ? 6 : 0;
    }
    if (proto == 0x0800)
        return 4;
    if (proto == 0x86dd)
        return 6;
    return 0;
}

static bool supported_link(int linktype)
{
    return linktype == DLT_EN10MB || linktype == DLT_LINUX_SLL || linktype == DLT_LINUX_SLL2 ||
           linktype == DLT_NULL || linktype == DLT_LOOP || linktype == 12 || linktype == 14 ||
           linktype == 101 || linktype == DLT_IPV4 || linktype == DLT_IPV6;
}

/* Handles one captured frame. Returns 1 with a UDP item filled, else 0 (TCP data goes to
 * its stream and r->ready is set when it got new bytes). */
static int handle_packet(ms_capture_reader *r, const struct pcap_pkthdr *h, const uint8_t *p,
                         ms_capture_item *item)
{
    uint64_t t_us = (uint64_t)h->ts.tv_sec * 1000000u + (uint64_t)h->ts.tv_usec;
    size_t caplen = h->caplen, off;
    bool truncated = h->caplen < h->len;
    int v = link_payload(r->linktype, p, caplen, &off);
    if (v == 0) {
        r->st.skipped++;
        return 0;
    }
    p += off;
    caplen -= off;
    endpoint_pair ep;
    memset(&ep, 0, sizeof ep);
    ep.family = (uint8_t)v;
    uint8_t proto;
    const uint8_t *l4;
    size_t l4_len;
    if (v == 4) {
        if (caplen < 20 || (p[0] >> 4) != 4) {
            r->st.skipped++;
            return 0;
        }
        size_t ihl = (size_t)(p[0] & 0x0f) * 4, total = ms_load_be16(p + 2);
        if (ihl < 20 || total < ihl) {
            r->st.skipped++;
            return 0;
        }
        if (total > caplen) {
            if (!truncated) {
                r->st.skipped++; /* claims more than the frame holds */
                return 0;
            }
            truncated = true;
        } else {
            truncated = false; /* only the link trailer (Ethernet padding) was cut */
        }
        uint16_t frag = ms_load_be16(p + 6);
        if ((frag & 0x3fff) != 0) { /* a fragment: offset set or more fragments follow */
            r->st.skipped++;
            return 0;
        }
        if (caplen < ihl) {
            r->st.skipped++;
            return 0;
        }
        proto = p[9];
        memcpy(ep.src, p + 12, 4);
        memcpy(ep.dst, p + 16, 4);
        l4 = p + ihl;
        l4_len = (total <= caplen ? total : caplen) - ihl;
    } else {
        if (caplen < 40 || (p[0] >> 4) != 6) {
            r->st.skipped++;
            return 0;
        }
        size_t plen = ms_load_be16(p + 4);
        if (plen == 0) { /* jumbogram or nothing: neither is SIP */
            r->st.skipped++;
            return 0;
        }
        if (40 + plen > caplen) {
            if (!truncated) {
                r->st.skipped++;
                return 0;
            }
        } else {
            truncated = false;
            caplen = 40 + plen;
        }
        memcpy(ep.src, p + 8, 16);
        memcpy(ep.dst, p + 24, 16);
        proto = p[6];
        size_t o = 40;
        for (int k = 0; k < CAP_IPV6_EXT_MAX; k++) {
            if (proto == 0 || proto == 43 || proto == 60 || proto == 51 || proto == 44) {
                if (caplen < o + 8) {
                    r->st.skipped++;
                    return 0;
                }
                size_t el = proto == 44 ? 8 : proto == 51 ? ((size_t)p[o + 1] + 2) * 4
                                                          : ((size_t)p[o + 1] + 1) * 8;
                if (proto == 44 && (ms_load_be16(p + o + 2) & 0xfff9) != 0) {
                    r->st.skipped++; /* a fragment */
                    return 0;
                }
                proto = p[o];
                o += el;
                continue;
            }
            break;
        }
        if (o > caplen) {
            r->st.skipped++;
            return 0;
        }
        l4 = p + o;
        l4_len = caplen - o;
    }
    if (proto == 17) {
        if (l4_len < 8) {
            r->st.skipped++;
            return 0;
        }
        size_t ulen = ms_load_be16(l4 + 4);
        if (ulen < 8 || ulen > l4_len) { /* cut short by the snapshot length, or bogus */
            r->st.skipped++;
            return 0;
        }
        ep.sport = ms_load_be16(l4);
        ep.dport = ms_load_be16(l4 + 2);
        item->data = l4 + 8;
        item->len = ulen - 8;
        item->tcp = false;
        item->t_us = t_us;
        item->kind = looks_like_sip(item->data, item->len) ? MS_CAPTURE_SIP : MS_CAPTURE_UDP;
        if (item->kind == MS_CAPTURE_SIP)
            r->st.sip_messages++;
        else
            r->st.udp_datagrams++;
        fill_endpoints(item, &ep);
        return 1;
    }
    if (proto == 6) {
        if (truncated || l4_len < 20) {
            r->st.skipped++; /* the data is incomplete: the stream resyncs later */
            return 0;
        }
        ep.sport = ms_load_be16(l4);
        ep.dport = ms_load_be16(l4 + 2);
        tcp_segment(r, &ep, t_us, l4, l4_len);
        return 0;
    }
    r->st.skipped++;
    return 0;
}

ms_err ms_capture_open(ms_capture_reader **out, const char *path, char *detail,
                       size_t detail_cap)
{
    if (out == NULL || path == NULL) {
        ms_detail_set(detail, detail_cap, "no capture file path given");
        return MS_ERR_ARG;
    }
    *out = NULL;
    char err[PCAP_ERRBUF_SIZE] = "";
    pcap_t *pc = pcap_open_offline(path, err);
    if (pc == NULL) {
        ms_detail_set(detail, detail_cap, "%s is not a readable pcap or pcapng file: %s", path,
                   err);
        return MS_ERR_CAPTURE;
    }
    int lt = pcap_datalink(pc);
    if (!supported_link(lt)) {
        const char *name = pcap_datalink_val_to_name(lt);
        ms_detail_set(detail, detail_cap, "%s: link type %d (%s) is not supported", path, lt,
                   name ? name : "unknown");
        pcap_close(pc);
        return MS_ERR_CAPTURE;
    }
    ms_capture_reader *r = calloc(1, sizeof *r);
    if (r == NULL) {
        pcap_close(pc);
        ms_detail_set(detail, detail_cap, "out of memory opening %s", path);
        return MS_ERR_NOMEM;
    }
    r->pcap = pc;
    r->linktype = lt;
    *out = r;
    return MS_OK;
}

int ms_capture_next(ms_capture_reader *r, ms_capture_item *item, char *detail,
                    size_t detail_cap)
{
    if (r == NULL || item == NULL) {
        ms_detail_set(detail, detail_cap, "no reader or item given");
        return -1;
    }
    if (r->failed) {
        ms_detail_set(detail, detail_cap, "capture file is damaged after packet %llu",
                   (unsigned long long)r->st.packets);
        return -1;
    }
    memset(item, 0, sizeof *item);
    for (;;) {
        tcp_stream *s = r->ready;
        if (s != NULL) {
            s->start += r->consume;
            r->consume = 0;
            if (stream_next_message(r, s, item) == 1) {
                fill_endpoints(item, &s->ep);
                return 1;
            }
            r->ready = NULL;
            if (s->closing) {
                if (s->end > s->start || s->ooo)
                    r->st.skipped++; /* an incomplete message at the close */
                stream_remove(r, s);
            }
        }
        if (r->pending != NULL) {
            r->ready = r->pending;
            r->pending = NULL;
            continue;
        }
        struct pcap_pkthdr *h;
        const u_char *pkt;
        int rc = pcap_next_ex(r->pcap, &h, &pkt);
        if (rc == PCAP_ERROR_BREAK) {
            /* End of file: incomplete messages left in streams are lost. */
            while (r->n_streams) {
                tcp_stream *left = r->streams[r->n_streams - 1];
                if (left->end > left->start || left->ooo)
                    r->st.skipped++;
                stream_remove(r, left);
            }
            return 0;
        }
        if (rc != 1) {
            r->failed = true;
            ms_detail_set(detail, detail_cap, "capture file is damaged after packet %llu: %s",
                       (unsigned long long)r->st.packets, pcap_geterr(r->pcap));
            return -1;
        }
        r->st.packets++;
        r->clock++;
        if (handle_packet(r, h, pkt, item) == 1)
            return 1;
    }
}

void ms_capture_stats_get(const ms_capture_reader *r, ms_capture_stats *st)
{
    if (st == NULL)
        return;
    if (r == NULL)
        memset(st, 0, sizeof *st);
    else
        *st = r->st;
}

void ms_capture_close_reader(ms_capture_reader *r)
{
    if (r == NULL)
        return;
    while (r->n_streams)
        stream_remove(r, r->streams[r->n_streams - 1]);
    pcap_close(r->pcap);
    free(r);
}
