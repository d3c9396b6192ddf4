/*
 * libFuzzer target for the MIKEY parser. Any input: the parser must not read outside it
 * (ASan), must explain every refusal, and whatever it accepts must re-encode to the same
 * octets (ERR's reserved octets aside, which the model does not keep), re-parse, and
 * print as a tree and as JSON.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mikeysakke/mikey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

/* Encodes `m`, which was parsed from `msg`, and checks the result against it. */
static uint8_t *reencode(const ms_mikey_message *m, const uint8_t *msg, size_t len)
{
    size_t n = 0, sl = 0;
    if (ms_mikey_encode(NULL, 0, &n, NULL, m) != MS_ERR_BUFFER_TOO_SMALL || n != len)
        abort(); /* the size query must give the parsed length */
    uint8_t *out = malloc(len ? len : 1);
    if (out == NULL)
        abort();
    if (ms_mikey_encode(out, len, &n, &sl, m) != MS_OK || n != len || sl != m->signed_len)
        abort();
    uint8_t *cmp = malloc(len ? len : 1);
    if (cmp == NULL)
        abort();
    memcpy(cmp, out, len);
    for (size_t i = 0; i < m->n_payloads; i++)
        if (m->payloads[i].type == MS_MIKEY_PT_ERR)
            memcpy(cmp + m->payloads[i].offset + 2, msg + m->payloads[i].offset + 2, 2);
    if (len > 0 && memcmp(cmp, msg, len) != 0)
        abort();
    free(cmp);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ms_mikey_message m, m2;
    ms_mikey_diag diag;
    if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
        abort();

    ms_err e = ms_mikey_parse(&m, data, size, &diag);
    if (e != MS_OK) {
        if ((e != MS_ERR_MIKEY_MALFORMED && e != MS_ERR_MIKEY_UNSUPPORTED) ||
            diag.detail[0] == 0 || diag.offset > size)
            abort();
        return 0;
    }
    uint8_t *again = reencode(&m, data, size);
    if (ms_mikey_parse(&m2, again, size, &diag) != MS_OK)
        abort();
    uint8_t *third = reencode(&m2, again, size);
    if (size > 0 && memcmp(third, again, size) != 0)
        abort();
    free(third);
    free(again);
    if (ms_mikey_print(devnull, &m, false) != MS_OK || ms_mikey_print(devnull, &m, true) != MS_OK)
        abort();
    return 0;
}
