/*
 * libFuzzer target for the capture reader. The input is a whole capture file (pcap or
 * pcapng); it goes to a scratch file because the reader opens paths. Every item must lie
 * within bounds (each octet is read, for ASan), carry terminated address strings and a
 * known kind, and the counters must agree with what was returned; a refusal says why.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/capture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch[256];
static volatile unsigned sink; /* keeps the reads of item data */

static void remove_scratch(void)
{
    unlink(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (scratch[0] == 0) {
        const char *dir = getenv("TMPDIR");
        snprintf(scratch, sizeof scratch, "%s/fuzz_capture.%ld.pcap", dir ? dir : "/tmp",
                 (long)getpid());
        atexit(remove_scratch);
    }
    FILE *f = fopen(scratch, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();

    char detail[256] = "";
    ms_capture_reader *r = NULL;
    ms_err e = ms_capture_open(&r, scratch, detail, sizeof detail);
    if (e != MS_OK) {
        if (e != MS_ERR_CAPTURE || detail[0] == 0 || r != NULL)
            abort();
        return 0;
    }
    ms_capture_item it;
    uint64_t sip = 0, udp = 0;
    unsigned sum = 0;
    int rc;
    while ((rc = ms_capture_next(r, &it, detail, sizeof detail)) == 1) {
        if (memchr(it.src, 0, sizeof it.src) == NULL || memchr(it.dst, 0, sizeof it.dst) == NULL)
            abort();
        if (it.kind == MS_CAPTURE_SIP)
            sip++;
        else if (it.kind == MS_CAPTURE_UDP && !it.tcp)
            udp++;
        else
            abort();
        if (it.len > 0 && it.data == NULL)
            abort();
        for (size_t i = 0; i < it.len; i++)
            sum += it.data[i];
    }
    if (rc == -1 && detail[0] == 0)
        abort();
    ms_capture_stats st;
    ms_capture_stats_get(r, &st);
    if (st.sip_messages != sip || st.udp_datagrams != udp)
        abort();
    ms_capture_close_reader(r);
    sink = sum;
    return 0;
}
