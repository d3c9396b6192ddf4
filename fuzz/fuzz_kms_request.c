/*
 * libFuzzer target for the KmsRequest reader of `kms serve` (ms_kmsif_request_parse),
 * the bytes a network client controls, plus the KmsCertCache/KmsError reader of the
 * provisioning client (ms_kmsif_reply_parse) on the same input. Any input: no crash or
 * sanitizer report, a refusal is MS_ERR_XML with a detail and leaves the output zeroed,
 * and a request that is accepted writes back and reads back to the same content.
 * Seeds: fuzz/corpus/request (hand-written requests, signed and plain, and replies).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmsif/kmsif.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ms_kms_request req, again;
    static ms_kms_reply reply;
    static char out[8192];
    char detail[256];

    ms_err e = ms_kmsif_request_parse(&req, (const char *)data, size, detail, sizeof detail);
    if (e != MS_OK) {
        if (e != MS_ERR_XML || detail[0] == '\0' || !all_zero(&req, sizeof req))
            abort();
    } else {
        size_t len = 0;
        e = ms_kmsif_request_write(out, sizeof out, &len, &req);
        /* whatever we accepted we can write (it passed the same string checks) */
        if (e != MS_OK)
            abort();
        if (ms_kmsif_request_parse(&again, out, len, detail, sizeof detail) != MS_OK ||
            memcmp(&req, &again, sizeof req) != 0)
            abort();
    }

    e = ms_kmsif_reply_parse(&reply, (const char *)data, size, detail, sizeof detail);
    if (e != MS_OK && (e != MS_ERR_XML || !all_zero(&reply, sizeof reply)))
        abort();
    return 0;
}
