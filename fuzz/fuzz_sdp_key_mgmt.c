/*
 * libFuzzer target for the SDP a=key-mgmt parser. The input is one attribute line,
 * given with its exact length and no terminating NUL (so ASan sees any over-read).
 * Whatever is accepted must format back to a line that parses to the same octets;
 * the decoded octets then go through the MIKEY parser as a receiver would.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mikeysakke/mikey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP (MS_SDP_KEY_MGMT_MAX / 4 * 3 + 3)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[CAP], out2[CAP];
    static char line[MS_SDP_KEY_MGMT_MAX + 1];
    static ms_mikey_message m;
    ms_mikey_diag diag;
    size_t n = 0, n2 = 0;

    char *in = malloc(size ? size : 1);
    if (in == NULL)
        abort();
    memcpy(in, data, size);
    ms_err e = ms_sdp_key_mgmt_parse(out, sizeof out, &n, in, size, &diag);
    free(in);
    if (e != MS_OK) {
        if (e == MS_ERR_SDP && diag.detail[0] == 0)
            abort(); /* every refusal says why */
        return 0;
    }
    if (n > sizeof out)
        abort();
    e = ms_sdp_key_mgmt_format(line, sizeof line, out, n);
    if (e == MS_OK) {
        if (ms_sdp_key_mgmt_parse(out2, sizeof out2, &n2, line, strlen(line), &diag) != MS_OK ||
            n2 != n || memcmp(out, out2, n) != 0)
            abort();
    } else if (e != MS_ERR_BUFFER_TOO_SMALL && e != MS_ERR_ARG) {
        abort();
    }
    (void)ms_mikey_parse(&m, out, n, &diag);
    return 0;
}
