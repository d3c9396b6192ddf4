/*
 * Group calls: (1) the relay's forwarding rate per core: one member's packets fanned out
 * by the real relay code (src/relay/conference.c, on libre's loop) to 31 other members,
 * counted against the relay thread's own CPU time, so the figure is per core whatever
 * else runs on the machine; (2) a member receiving 31 streams at once: 10 s of 31
 * senders' Opus in SRTP (per-sender contexts by MKI), opened, decoded and mixed, as a
 * share of one core (CPU time over the audio's duration).
 *   ms_conference_bench [--json] [--quick]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "call/audio.h"
#include "call/group_media.h"
#include "call/rtp.h"
#include "relay/conference.h"

#define MEMBERS 32
#define PKT_LEN 120 /* a 20 ms Opus frame at 32 kbit/s in SRTP with the MKI */

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int udp_bound(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

typedef struct blaster {
    int fd;
    uint16_t relay_port;
    double seconds;
    volatile int *stop;
    unsigned long sent;
} blaster;

static void *blast(void *arg)
{
    blaster *b = arg;
    uint8_t pkt[PKT_LEN];
    memset(pkt, 0x5a, sizeof pkt);
    pkt[0] = 0x80;
    pkt[1] = 96;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(b->relay_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    double end = wall_s() + b->seconds;
    while (wall_s() < end) {
        for (int i = 0; i < 64; i++) {
            pkt[2] = (uint8_t)(b->sent >> 8);
            pkt[3] = (uint8_t)b->sent;
            if (sendto(b->fd, pkt, sizeof pkt, 0, (struct sockaddr *)&to, sizeof to) > 0)
                b->sent++;
        }
        /* leave the relay's socket room: a full receive buffer only measures drops */
        usleep(200);
    }
    *b->stop = 1;
    return NULL;
}

static int bench_relay(bool json, bool quick)
{
    ms_conference_config cfg = {.listen = "127.0.0.1:0", .media_timeout_s = 3600};
    ms_conference *c = NULL;
    char detail[256] = "";
    if (ms_conference_new(&c, &cfg, detail, sizeof detail) != MS_OK) {
        fprintf(stderr, "conference_bench: %s\n", detail);
        return 1;
    }
    int fds[MEMBERS];
    uint16_t relay_ports[MEMBERS];
    for (int i = 0; i < MEMBERS; i++) {
        uint16_t port;
        fds[i] = udp_bound(&port);
        int small = 4096; /* the members do not read: keep what piles up small */
        if (i > 0)
            setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        if (fds[i] < 0 || ms_conference_add_member(c, "sip:bench@example.org", "127.0.0.1",
                                                   port, &relay_ports[i]) != MS_OK) {
            fprintf(stderr, "conference_bench: cannot add member %d\n", i);
            return 1;
        }
    }
    volatile int stop = 0;
    blaster b = {.fd = fds[0], .relay_port = relay_ports[0], .seconds = quick ? 0.5 : 2.0,
                 .stop = &stop};
    pthread_t t;
    (void)ms_conference_stop_on(c, &stop);
    pthread_create(&t, NULL, blast, &b);
    double cpu0 = thread_cpu_s();
    (void)ms_conference_run(c);
    double cpu = thread_cpu_s() - cpu0;
    pthread_join(t, NULL);
    ms_conference_stats st;
    ms_conference_get_stats(c, &st);
    double out_rate = (double)st.packets_out / cpu, in_rate = (double)st.packets_in / cpu;
    if (json)
        printf("{\"bench\":\"relay_forwarding\",\"members\":%d,\"packets_in\":%llu,"
               "\"packets_out\":%llu,\"cpu_s\":%.3f,\"out_per_core_s\":%.0f,"
               "\"in_per_core_s\":%.0f,\"target_out_per_core_s\":100000}\n",
               MEMBERS, (unsigned long long)st.packets_in, (unsigned long long)st.packets_out,
               cpu, out_rate, in_rate);
    else
        printf("relay, %d members: %llu packets in, %llu forwarded in %.2f s of relay CPU: "
               "%.0f packets/s forwarded per core (%.0f in), target >= 100000 %s\n",
               MEMBERS, (unsigned long long)st.packets_in, (unsigned long long)st.packets_out,
               cpu, out_rate, in_rate, out_rate >= 100000 ? "(met)" : "(NOT met)");
    ms_conference_free(c);
    for (int i = 0; i < MEMBERS; i++)
        close(fds[i]);
    return 0;
}

/* ---- a member receiving 31 streams --------------------------------------------------- */

static int bench_member(bool json, bool quick)
{
    enum { SENDERS = 31 };
    const int frames = quick ? 100 : 500; /* 2 s or 10 s of audio */
    ms_group_key key;
    memset(&key, 0, sizeof key);
    snprintf(key.group, sizeof key.group, "sip:bench@example.org");
    for (int i = 0; i < 16; i++) {
        key.gmk[i] = (uint8_t)(i * 7 + 1);
        key.rand[i] = (uint8_t)(i * 13 + 5);
    }
    key.gmk_len = 16;
    key.rand_len = 16;
    key.gmk_id = 0x0123456u;
    key.prf = MS_MIKEY_PRF_HMAC_SHA256;
    char uris[SENDERS + 1][48];
    for (int i = 0; i <= SENDERS; i++)
        snprintf(uris[i], sizeof uris[i], "sip:m%02d@example.org", i);
    char detail[200] = "";
    ms_group_media *rx = NULL, *tx[SENDERS];
    if (ms_group_media_new(&rx, &key, uris[0], MS_SRTP_AEAD_AES_128_GCM, 1, detail,
                           sizeof detail) != MS_OK)
        return 1;
    for (int i = 0; i < SENDERS; i++)
        if (ms_group_media_new(&tx[i], &key, uris[i + 1], MS_SRTP_AEAD_AES_128_GCM, 1, detail,
                               sizeof detail) != MS_OK ||
            ms_group_media_add_sender(rx, uris[i + 1], NULL) != MS_OK)
            return 1;
    /* the traffic, made beforehand: each sender's own tone, encoded and protected */
    size_t n_pkts = (size_t)frames * SENDERS;
    uint8_t(*pkts)[MS_RTP_HEADER + MS_AUDIO_MAX_PACKET + MS_GROUP_MEDIA_OVERHEAD] =
        malloc(n_pkts * sizeof *pkts);
    size_t *lens = malloc(n_pkts * sizeof *lens);
    ms_opus_enc *enc[SENDERS];
    ms_opus_dec *dec[SENDERS];
    for (int i = 0; i < SENDERS; i++)
        if (ms_opus_enc_new(&enc[i], 1) != MS_OK || ms_opus_dec_new(&dec[i], 1) != MS_OK)
            return 1;
    if (pkts == NULL || lens == NULL)
        return 1;
    int16_t pcm[MS_AUDIO_FRAME];
    for (int f = 0; f < frames; f++) {
        for (int s = 0; s < SENDERS; s++) {
            for (int k = 0; k < MS_AUDIO_FRAME; k++)
                pcm[k] = (int16_t)(((f * MS_AUDIO_FRAME + k) * (s + 3) % 200 - 100) * 60);
            size_t idx = (size_t)f * SENDERS + (size_t)s, olen = 0;
            uint8_t *p = pkts[idx];
            (void)ms_opus_encode(enc[s], p + MS_RTP_HEADER, MS_AUDIO_MAX_PACKET, &olen, pcm);
            ms_rtp_header h = {.payload_type = 96, .seq = (uint16_t)f,
                               .timestamp = (uint32_t)f * MS_AUDIO_FRAME,
                               .ssrc = 0x1000u + (uint32_t)s};
            ms_rtp_write_header(p, &h);
            lens[idx] = MS_RTP_HEADER + olen;
            if (ms_group_media_protect(tx[s], p, &lens[idx], sizeof pkts[idx]) != MS_OK)
                return 1;
        }
    }
    /* the receiving side: open, decode, mix */
    int32_t mix[MS_AUDIO_FRAME];
    unsigned long ok = 0;
    double cpu0 = thread_cpu_s();
    for (size_t i = 0; i < n_pkts; i++) {
        if (i % SENDERS == 0)
            memset(mix, 0, sizeof mix);
        size_t len = lens[i], who;
        bool rtcp;
        if (ms_group_media_unprotect(rx, pkts[i], &len, &rtcp, &who) != MS_OK)
            continue;
        ms_rtp_header h;
        size_t off, plen;
        if (ms_rtp_parse(&h, &off, &plen, pkts[i], len) != MS_OK ||
            ms_opus_decode(dec[who], pcm, pkts[i] + off, plen) != MS_OK)
            continue;
        for (int k = 0; k < MS_AUDIO_FRAME; k++)
            mix[k] += pcm[k];
        ok++;
    }
    double cpu = thread_cpu_s() - cpu0;
    double audio_s = frames * 0.020;
    double share = cpu / audio_s;
    if (json)
        printf("{\"bench\":\"member_31_streams\",\"packets\":%zu,\"opened\":%lu,\"audio_s\":%.1f,"
               "\"cpu_s\":%.3f,\"core_share\":%.3f,\"target_core_share\":1.0}\n",
               n_pkts, ok, audio_s, cpu, share);
    else
        printf("member receiving %d streams: %lu of %zu packets opened, decoded and mixed; "
               "%.2f s CPU for %.1f s of audio = %.1f%% of one core, target < 100%% %s\n",
               SENDERS, ok, n_pkts, cpu, audio_s, 100 * share,
               share < 1.0 && ok == n_pkts ? "(met)" : "(NOT met)");
    for (int i = 0; i < SENDERS; i++) {
        ms_opus_enc_free(enc[i]);
        ms_opus_dec_free(dec[i]);
        ms_group_media_free(tx[i]);
    }
    ms_group_media_free(rx);
    free(pkts);
    free(lens);
    return ok == n_pkts ? 0 : 1;
}

int main(int argc, char **argv)
{
    bool json = false, quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else {
            fprintf(stderr, "usage: ms_conference_bench [--json] [--quick]\n");
            return 2;
        }
    }
    int rc = bench_relay(json, quick);
    if (rc == 0)
        rc = bench_member(json, quick);
    return rc;
}
