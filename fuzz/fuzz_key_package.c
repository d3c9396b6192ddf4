/*
 * libFuzzer target for the key package reader (ms_kmsif_package_parse) with fixed device
 * keys, plus the certificate and enrolment readers on the same input (they share the
 * hardened XML layer). Any input: no crash or sanitizer report, every refusal is one of
 * the documented codes with a detail, nothing is left in the output on a refusal, and a
 * package that is accepted writes back and reads back to the same content.
 *
 * The seeds in fuzz/corpus/package are valid packages under these keys, written once by
 * this file's generator:
 *   cc -std=c17 -DMS_KEY_PACKAGE_GEN -Iinclude -Isrc fuzz/fuzz_key_package.c \
 *      build/libmikeysakke.a $(pkg-config --libs libxml-2.0 sqlite3) -lcrypto -o gen \
 *      && ./gen fuzz/corpus/package
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmsif/kmsif.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fixed_device(ms_device_keys *dev)
{
    memset(dev, 0, sizeof *dev);
    strcpy(dev->user_uri, "sip:alice@example.org");
    strcpy(dev->device_id, "alice-phone-1");
    for (size_t i = 0; i < 32; i++) {
        dev->trk[i] = (uint8_t)(0x01 + i);
        dev->ink[i] = (uint8_t)(0x81 + i);
    }
    dev->trk_id = 0x0000A001;
    dev->ink_id = 0x0000B001;
}

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ms_device_keys dev;
    static ms_key_package pkg, again;
    static char out[MS_KMSIF_MAX_XML];
    static bool init;
    char detail[256];
    if (!init) {
        fixed_device(&dev);
        init = true;
    }
    const char *xml = (const char *)data;

    ms_err e = ms_kmsif_package_parse(&pkg, xml, size, &dev, detail, sizeof detail);
    if (e != MS_OK) {
        if (e != MS_ERR_XML && e != MS_ERR_PACKAGE_SIGNATURE && e != MS_ERR_PACKAGE_DEVICE &&
            e != MS_ERR_PACKAGE_DECRYPT && e != MS_ERR_NOMEM)
            abort();
        if (detail[0] == 0 || !all_zero(&pkg, sizeof pkg))
            abort();
    } else {
        size_t n = 0;
        if (ms_kmsif_package_write(out, sizeof out, &n, &pkg, &dev, NULL) != MS_OK ||
            ms_kmsif_package_parse(&again, out, n, &dev, detail, sizeof detail) != MS_OK)
            abort();
        if (memcmp(&pkg.cert, &again.cert, sizeof pkg.cert) != 0 ||
            pkg.n_keysets != again.n_keysets ||
            memcmp(pkg.keysets, again.keysets, sizeof pkg.keysets) != 0 ||
            strcmp(pkg.device_id, again.device_id) != 0 || pkg.time != again.time)
            abort();
    }

    ms_kms_certificate cert;
    e = ms_kmsif_certificate_parse(&cert, xml, size, detail, sizeof detail);
    if (e != MS_OK && (e != MS_ERR_XML || detail[0] == 0 || !all_zero(&cert, sizeof cert)))
        abort();
    ms_device_keys d2;
    e = ms_kmsif_enrolment_parse(&d2, &cert, xml, size, detail, sizeof detail);
    if (e != MS_OK && (e != MS_ERR_XML || detail[0] == 0 || !all_zero(&d2, sizeof d2)))
        abort();
    return 0;
}

#ifdef MS_KEY_PACKAGE_GEN
/* Seed generator: a KmsInit, one and two key sets, and four with optional fields. */
int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    ms_device_keys dev;
    fixed_device(&dev);
    static ms_key_package pkg;
    static char out[MS_KMSIF_MAX_XML];
    strcpy(pkg.user_uri, dev.user_uri);
    strcpy(pkg.kms_uri, "kms.example.org");
    strcpy(pkg.device_id, dev.device_id);
    strcpy(pkg.client_req_url, "https://kms.example.org/keymanagement/identity/v1/keyprov");
    pkg.time = 4004769600ULL; /* 2026-11-27T12:00:00Z */
    ms_kms_certificate *c = &pkg.cert;
    strcpy(c->kms_uri, "kms.example.org");
    strcpy(c->cert_uri, "kms.example.org/cert");
    c->valid_from = pkg.time;
    c->valid_to = pkg.time + 31536000;
    c->user_id_format = 2;
    c->period_len = 2592000;
    c->parameter_set = 1;
    c->root = true;
    c->Z[0] = c->kpak[0] = 0x04;
    for (size_t i = 1; i < sizeof c->Z; i++)
        c->Z[i] = (uint8_t)(i * 7);
    for (size_t i = 1; i < sizeof c->kpak; i++)
        c->kpak[i] = (uint8_t)(i * 13);
    for (size_t k = 0; k < MS_KMSIF_MAX_KEYSETS; k++) {
        ms_kmsif_keyset *s = &pkg.keysets[k];
        strcpy(s->kms_uri, "kms.example.org");
        strcpy(s->user_uri, dev.user_uri);
        s->user_id_len = 32;
        for (size_t i = 0; i < 32; i++)
            s->user_id[i] = (uint8_t)(i + k);
        s->period_no = 1545 + k;
        if (k < 3) {
            s->valid_from = pkg.time + k * 2592000;
            s->valid_to = s->valid_from + 2591999;
        }
        s->revoked = k == 3;
        s->rsk[0] = s->pvt[0] = 0x04;
        for (size_t i = 1; i < sizeof s->rsk; i++)
            s->rsk[i] = (uint8_t)(i + 3 * k);
        for (size_t i = 0; i < sizeof s->ssk; i++)
            s->ssk[i] = (uint8_t)(0x40 + i + k);
        for (size_t i = 1; i < sizeof s->pvt; i++)
            s->pvt[i] = (uint8_t)(i * 5 + k);
    }
    static const size_t counts[] = {0, 1, 2, 4};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        pkg.n_keysets = counts[i];
        size_t n = 0;
        char path[512];
        if (ms_kmsif_package_write(out, sizeof out, &n, &pkg, &dev, NULL) != MS_OK)
            return 1;
        snprintf(path, sizeof path, "%s/seed-%02zu.xml", argv[1], i);
        FILE *f = fopen(path, "wb");
        if (f == NULL || fwrite(out, 1, n, f) != n || fclose(f) != 0)
            return 1;
        if (LLVMFuzzerTestOneInput((const uint8_t *)out, n) != 0)
            return 1;
    }
    return 0;
}
#endif
