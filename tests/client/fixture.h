/*
 * Shared set-up of the client tests: a KMS community (master secrets, certificate), a
 * device (TrK, InK), its enrolment file, key sets issued with the crypto layer and
 * packages written with the kmsif writer, and a fresh keystore directory.
 * Static functions: each test program includes this once.
 */
#ifndef MS_TESTS_CLIENT_FIXTURE_H
#define MS_TESTS_CLIENT_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/keystore_internal.h"
#include "kmsif/kmsif.h"
#include "mikeysakke/client.h"
#include "testutil.h"

#define FX_PASS "correct horse battery staple"
#define FX_KMS "kms.example.org"
#define FX_USER "sip:alice@example.org"
#define FX_DEVICE "alice-phone-1"
#define FX_PERIOD_LEN (30ull * 86400)
#define FX_XML_CAP (64 * 1024)

typedef struct fx {
    uint8_t z[MS_SAKKE_SECRET_BYTES];
    uint8_t ksak[MS_ECCSI_SCALAR_BYTES];
    ms_kms_certificate cert;
    ms_device_keys dev;
    ms_sakke_kms *sakke;
    ms_id_scheme scheme;
    uint64_t now;        /* NTP seconds: middle of period p0 */
    uint64_t p0;         /* the current period at now */
    uint64_t p0_start, p0_end;
    char dir[256];
    char root[128];
    char *xml;
    size_t xml_len;
} fx;

static const ms_keystore_params fx_params = {10, 8, 1}; /* small scrypt: tests only */

static inline void fx_die(const char *what, ms_err e)
{
    fprintf(stderr, "fixture: %s: %s\n", what, ms_errname(e));
    exit(1);
}

static inline void fx_monthly(fx *f, int monthly)
{
    f->cert.user_id_format = monthly ? MS_MIKEY_ID_SCHEME_TEL_MONTHLY
                                     : MS_MIKEY_ID_SCHEME_HASHED_UID;
    f->cert.period_len = monthly ? 0 : FX_PERIOD_LEN;
    memset(&f->scheme, 0, sizeof f->scheme);
    f->scheme.scheme = f->cert.user_id_format;
    f->scheme.kms_uri = f->cert.kms_uri;
    f->scheme.period_len = f->cert.period_len;
    snprintf(f->dev.user_uri, sizeof f->dev.user_uri, "%s",
             monthly ? "tel:+447700900123" : FX_USER);
    if (ms_key_period(&f->scheme, &f->p0, f->now) != MS_OK ||
        ms_key_period_bounds(&f->scheme, &f->p0_start, &f->p0_end, f->p0) != MS_OK)
        fx_die("period", MS_ERR_INTERNAL);
}

static inline void fx_init(fx *f, int monthly)
{
    memset(f, 0, sizeof *f);
    uint8_t Z[MS_SAKKE_POINT_BYTES], kpak[MS_ECCSI_POINT_BYTES];
    ms_err e = ms_sakke_master_keygen(f->z, Z, NULL);
    if (e == MS_OK)
        e = ms_eccsi_master_keygen(f->ksak, kpak, NULL);
    if (e == MS_OK)
        e = ms_sakke_kms_new(&f->sakke, Z);
    if (e != MS_OK)
        fx_die("KMS keys", e);
    ms_kms_certificate *c = &f->cert;
    snprintf(c->kms_uri, sizeof c->kms_uri, "%s", FX_KMS);
    snprintf(c->cert_uri, sizeof c->cert_uri, "%s", "cert1." FX_KMS);
    snprintf(c->issuer, sizeof c->issuer, "%s", "www." FX_KMS);
    memcpy(c->Z, Z, sizeof Z);
    memcpy(c->kpak, kpak, sizeof kpak);
    c->parameter_set = 1;
    c->root = true;
    ms_device_keys *d = &f->dev;
    snprintf(d->device_id, sizeof d->device_id, "%s", FX_DEVICE);
    ms_test_random(d->trk, sizeof d->trk);
    ms_test_random(d->ink, sizeof d->ink);
    d->trk_id = 0x11111111;
    d->ink_id = 0x22222222;
    /* 2026-06-15T00:00:00Z, a fixed time in the middle of a period. */
    f->now = 1781481600ull + MS_NTP_UNIX_OFFSET;
    fx_monthly(f, monthly);
    if (ms_key_period(&f->scheme, &f->p0, f->now) != MS_OK)
        fx_die("period", MS_ERR_INTERNAL);
    f->now = f->p0_start + (f->p0_end - f->p0_start) / 2;

    snprintf(f->root, sizeof f->root, "/tmp/ms-client-test-XXXXXX");
    if (mkdtemp(f->root) == NULL)
        fx_die("mkdtemp", MS_ERR_IO);
    snprintf(f->dir, sizeof f->dir, "%s/ks", f->root);
    f->xml = malloc(FX_XML_CAP);
    if (f->xml == NULL)
        fx_die("malloc", MS_ERR_NOMEM);
}

static inline void fx_cleanup(fx *f)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root);
    if (system(cmd) != 0)
        fprintf(stderr, "fixture: could not remove %s\n", f->root);
    ms_sakke_kms_free(f->sakke);
    free(f->xml);
}

/* The enrolment file of f's device (into f->xml). */
static inline void fx_enrolment(fx *f, const ms_device_keys *dev, const ms_kms_certificate *cert)
{
    ms_err e = ms_kmsif_enrolment_write(f->xml, FX_XML_CAP, &f->xml_len, dev, cert);
    if (e != MS_OK)
        fx_die("enrolment write", e);
}

static inline void fx_create(fx *f)
{
    fx_enrolment(f, &f->dev, &f->cert);
    char detail[256] = "";
    ms_err e = ms_keystore_create(f->dir, f->xml, f->xml_len, FX_PASS, strlen(FX_PASS),
                                  &fx_params, detail, sizeof detail);
    if (e != MS_OK) {
        fprintf(stderr, "create: %s\n", detail);
        fx_die("keystore create", e);
    }
}

static inline ms_keystore *fx_open(fx *f)
{
    ms_keystore *ks = NULL;
    char detail[256] = "";
    ms_err e = ms_keystore_open(&ks, f->dir, FX_PASS, strlen(FX_PASS), detail, sizeof detail);
    if (e != MS_OK) {
        fprintf(stderr, "open: %s\n", detail);
        fx_die("keystore open", e);
    }
    return ks;
}

/* A correct key set of `uri` for `period`. */
static inline void fx_keyset(const fx *f, ms_kmsif_keyset *k, const char *uri, uint64_t period)
{
    memset(k, 0, sizeof *k);
    snprintf(k->kms_uri, sizeof k->kms_uri, "%s", f->cert.kms_uri);
    snprintf(k->user_uri, sizeof k->user_uri, "%s", uri);
    k->period_no = period;
    ms_err e = ms_identifier(&f->scheme, k->user_id, sizeof k->user_id, &k->user_id_len, uri,
                             period);
    if (e == MS_OK)
        e = ms_sakke_rsk_issue(f->sakke, k->rsk, f->z, k->user_id, k->user_id_len);
    if (e == MS_OK)
        e = ms_eccsi_ssk_issue(k->ssk, k->pvt, f->ksak, f->cert.kpak, k->user_id,
                               k->user_id_len, NULL);
    if (e != MS_OK)
        fx_die("issue", e);
}

/* A package for f's device with one key set of `period` and Time `time`. */
static inline void fx_package(const fx *f, ms_key_package *pkg, uint64_t period, uint64_t time)
{
    memset(pkg, 0, sizeof *pkg);
    snprintf(pkg->user_uri, sizeof pkg->user_uri, "%s", f->dev.user_uri);
    snprintf(pkg->kms_uri, sizeof pkg->kms_uri, "%s", f->cert.kms_uri);
    snprintf(pkg->device_id, sizeof pkg->device_id, "%s", f->dev.device_id);
    snprintf(pkg->client_req_url, sizeof pkg->client_req_url,
             "https://%s/keymanagement/identity/v1/keyprov", FX_KMS);
    pkg->time = time;
    pkg->cert = f->cert;
    pkg->n_keysets = 1;
    fx_keyset(f, &pkg->keysets[0], f->dev.user_uri, period);
}

/* Writes pkg under dev's keys into f->xml. */
static inline void fx_write(fx *f, const ms_key_package *pkg, const ms_device_keys *dev)
{
    ms_err e = ms_kmsif_package_write(f->xml, FX_XML_CAP, &f->xml_len, pkg, dev, NULL);
    if (e != MS_OK)
        fx_die("package write", e);
}

static inline ms_err fx_import(fx *f, ms_keystore *ks, uint64_t now, char *detail, size_t cap)
{
    detail[0] = '\0';
    return ms_keystore_import(ks, NULL, f->xml, f->xml_len, now, detail, cap);
}

/* Path of a file in the keystore. */
static inline void fx_path(const fx *f, char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", f->dir, name);
}

/* Flips one bit of a file in place at offset (from the end when negative). */
static inline void fx_flip(const char *path, long offset)
{
    FILE *fp = fopen(path, "r+b");
    if (fp == NULL)
        fx_die(path, MS_ERR_IO);
    if (offset < 0)
        fseek(fp, offset, SEEK_END);
    else
        fseek(fp, offset, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, -1, SEEK_CUR);
    fputc(c ^ 0x01, fp);
    fclose(fp);
}

#endif
