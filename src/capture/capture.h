/*
 * Capture files (libpcap): writing the voicemail store's messages, and reading any capture
 * (tcpdump on the provider, a voicemail file) back as SIP messages and UDP datagrams in
 * time order. Key-less: the untrusted voicemail store links it.
 *
 * Link types read: Ethernet (tcpdump -i lo), Linux cooked (SLL, SLL2; tcpdump -i any),
 * raw IP and BSD loopback; IPv4 and IPv6; UDP; TCP with reassembly per direction
 * (in-order data, retransmissions dropped), SIP messages split by Content-Length.
 * Written: LINKTYPE_RAW (IPv4), so tcpdump, tshark and this reader all open it.
 */
#ifndef MS_CAPTURE_CAPTURE_H
#define MS_CAPTURE_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct ms_capture_writer ms_capture_writer;

/* Create `path` (mode 0600, written to path.tmp and renamed into place on close, so a
 * reader never sees half a file). */
ms_err ms_capture_create(ms_capture_writer **out, const char *path, char *detail,
                         size_t detail_cap);
/* One UDP datagram src -> dst ("IPv4:port" strings) at Unix time t_us. */
ms_err ms_capture_write_udp(ms_capture_writer *w, uint64_t t_us, const char *src,
                            const char *dst, const uint8_t *data, size_t len);
/* A SIP message seen on a TCP connection src -> dst: written as one TCP segment (with a
 * plausible sequence number per direction) so that readers reassemble it as TCP. */
ms_err ms_capture_write_tcp(ms_capture_writer *w, uint64_t t_us, const char *src,
                            const char *dst, const uint8_t *data, size_t len);
/* Flush, fsync and rename into place (commit = true) or remove (false); frees. */
ms_err ms_capture_close(ms_capture_writer *w, bool commit);

/* ---- reading ---------------------------------------------------------------------------- */

typedef enum ms_capture_kind {
    MS_CAPTURE_SIP = 1, /* one whole SIP message (UDP datagram, or reassembled from TCP) */
    MS_CAPTURE_UDP = 2  /* any other UDP datagram (media, RTCP) */
} ms_capture_kind;

typedef struct ms_capture_item {
    ms_capture_kind kind;
    uint64_t t_us;           /* capture time of the (last) packet, Unix microseconds */
    char src[64], dst[64];   /* "IP:port" ("[v6]:port" for IPv6) */
    bool tcp;                /* SIP over TCP */
    const uint8_t *data;     /* valid until the next ms_capture_next / close */
    size_t len;
} ms_capture_item;

typedef struct ms_capture_reader ms_capture_reader;

/* Opens pcap and pcapng files. MS_ERR_CAPTURE with detail on an unreadable file. */
ms_err ms_capture_open(ms_capture_reader **out, const char *path, char *detail,
                       size_t detail_cap);
/* Next item: returns 1 with *item filled, 0 at the end, or -1 on a malformed file (detail says where). Packets that are neither
 * UDP nor TCP, and TCP data that is not SIP, are skipped and counted. */
int ms_capture_next(ms_capture_reader *r, ms_capture_item *item, char *detail,
                    size_t detail_cap);
typedef struct ms_capture_stats {
    uint64_t packets, sip_messages, udp_datagrams, skipped;
} ms_capture_stats;
void ms_capture_stats_get(const ms_capture_reader *r, ms_capture_stats *st);
void ms_capture_close_reader(ms_capture_reader *r); /* NULL allowed */

#endif
