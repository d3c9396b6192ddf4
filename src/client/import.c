/*
 * Importing a key package into the keystore: everything is checked
 * (signature, decryption, addressee, KMS, replay, period, identifier, RSK and SSK
 * validity) before anything is stored; no network is involved.
 */
#include "client/keystore_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto/secmem.h"

/* Checks one key set of the package; on success fills *out (to be stored). */
static ms_err check_keyset(const ms_keystore *ks, const ms_key_package *pkg,
                           const ms_kmsif_keyset *in, size_t idx, const ms_id_scheme *scheme,
                           const ms_sakke_kms *sakke, uint64_t now, ms_keyset *out,
                           char *detail, size_t cap)
{
    unsigned long long p = (unsigned long long)in->period_no;
    if (strcmp(in->user_uri, ks->dev.user_uri) != 0)
        return ks_fail(MS_ERR_PACKAGE_DEVICE, detail, cap, "key set %zu is for user %s, not "
                       "%s", idx + 1, in->user_uri, ks->dev.user_uri);
    if (strcmp(in->kms_uri, ks->cert.kms_uri) != 0)
        return ks_fail(MS_ERR_MIKEY_UNKNOWN_KMS, detail, cap, "key set %zu is from KMS %s, "
                       "not the enrolled KMS %s", idx + 1, in->kms_uri, ks->cert.kms_uri);
    if (in->revoked)
        return ks_fail(MS_ERR_INVALID, detail, cap, "key set for period %llu is marked "
                       "revoked", p);
    for (size_t j = 0; j < idx; j++)
        if (pkg->keysets[j].period_no == in->period_no)
            return ks_fail(MS_ERR_INVALID, detail, cap, "two key sets for period %llu", p);

    uint64_t start = 0, end = 0;
    ms_err err = ms_key_period_bounds(scheme, &start, &end, in->period_no);
    if (err != MS_OK)
        return ks_fail(MS_ERR_PERIOD, detail, cap, "key period %llu does not exist", p);
    if (end <= now)
        return ks_fail(MS_ERR_PERIOD, detail, cap, "key period %llu has ended", p);
    if (in->valid_to != 0 && in->valid_to <= now)
        return ks_fail(MS_ERR_PERIOD, detail, cap, "key set for period %llu expired "
                       "(ValidTo is past)", p);

    /* Replay: the package must be newer than the one this period's keys came from. */
    ms_keyset *held = ms_secure_alloc(sizeof *held);
    if (held == NULL)
        return ks_fail(MS_ERR_NOMEM, detail, cap, "key set");
    char name[96];
    ks_entry_name(name, sizeof name, in->kms_uri, in->period_no);
    err = ks_entry_read(ks, name, held, detail, cap);
    uint64_t held_time = held->package_time;
    ms_secure_free(held, sizeof *held);
    if (err == MS_OK && pkg->time <= held_time)
        return ks_fail(MS_ERR_PACKAGE_REPLAY, detail, cap, "package Time %llu is not newer "
                       "than that of the package already imported for period %llu (%llu)",
                       (unsigned long long)pkg->time, p, (unsigned long long)held_time);
    if (err != MS_OK && err != MS_ERR_NO_KEYS)
        return err;

    /* UserID must be the identifier of this user for this period. */
    uint8_t id[MS_SAKKE_ID_MAX_BYTES];
    size_t id_len = 0;
    err = ms_identifier(scheme, id, sizeof id, &id_len, ks->dev.user_uri, in->period_no);
    if (err != MS_OK)
        return ks_fail(err, detail, cap, "no identifier for %s in period %llu",
                       ks->dev.user_uri, p);
    if (id_len != in->user_id_len || CRYPTO_memcmp(id, in->user_id, id_len) != 0)
        return ks_fail(MS_ERR_IDENTITY, detail, cap, "UserID of the key set for period %llu "
                       "is not the identifier of %s for that period", p, ks->dev.user_uri);

    err = ms_sakke_rsk_validate(sakke, id, id_len, in->rsk);
    if (err != MS_OK)
        return ks_fail(MS_ERR_RSK_INVALID, detail, cap, "the RSK for period %llu fails "
                       "validation (RFC 6508 6.1.2) against the KMS certificate: %s", p,
                       ms_strerror(err));
    err = ms_eccsi_ssk_validate(NULL, pkg->cert.kpak, id, id_len, in->ssk, in->pvt);
    if (err != MS_OK)
        return ks_fail(MS_ERR_SSK_INVALID, detail, cap, "the SSK/PVT for period %llu fails "
                       "validation (RFC 6507 5.1.2) against the KMS certificate: %s", p,
                       ms_strerror(err));

    memset(out, 0, sizeof *out);
    snprintf(out->kms_uri, sizeof out->kms_uri, "%s", in->kms_uri);
    snprintf(out->user_uri, sizeof out->user_uri, "%s", in->user_uri);
    memcpy(out->user_id, id, id_len);
    out->user_id_len = id_len;
    out->period_no = in->period_no;
    out->period_start = start;
    out->period_end = end;
    out->valid_from = in->valid_from;
    out->valid_to = in->valid_to;
    out->package_time = pkg->time;
    out->imported_at = now;
    memcpy(out->Z, pkg->cert.Z, sizeof out->Z);
    memcpy(out->kpak, pkg->cert.kpak, sizeof out->kpak);
    memcpy(out->rsk, in->rsk, sizeof out->rsk);
    memcpy(out->ssk, in->ssk, sizeof out->ssk);
    memcpy(out->pvt, in->pvt, sizeof out->pvt);
    return MS_OK;
}

/* The package as a whole: addressee, KMS, certificate. */
static ms_err check_package(const ms_keystore *ks, const ms_key_package *pkg, uint64_t now,
                            ms_id_scheme *scheme, char *detail, size_t cap)
{
    if (strcmp(pkg->user_uri, ks->dev.user_uri) != 0)
        return ks_fail(MS_ERR_PACKAGE_DEVICE, detail, cap, "package is for user %s, not %s",
                       pkg->user_uri, ks->dev.user_uri);
    if (strcmp(pkg->device_id, ks->dev.device_id) != 0)
        return ks_fail(MS_ERR_PACKAGE_DEVICE, detail, cap, "package is for device %s, not "
                       "%s", pkg->device_id, ks->dev.device_id);
    if (strcmp(pkg->kms_uri, ks->cert.kms_uri) != 0 ||
        strcmp(pkg->cert.kms_uri, ks->cert.kms_uri) != 0)
        return ks_fail(MS_ERR_MIKEY_UNKNOWN_KMS, detail, cap, "package is from KMS %s, not "
                       "the enrolled KMS %s", pkg->kms_uri, ks->cert.kms_uri);
    const ms_kms_certificate *c = &pkg->cert;
    if (c->revoked)
        return ks_fail(MS_ERR_INVALID, detail, cap, "the package's KMS certificate is "
                       "revoked");
    if (c->valid_to != 0 && c->valid_to <= now)
        return ks_fail(MS_ERR_PERIOD, detail, cap, "the package's KMS certificate expired");
    /* A new certificate (master key rollover) is accepted, as the package is
     * authenticated under the InK, but it may not change how identifiers are made. */
    if (c->user_id_format != ks->cert.user_id_format ||
        c->period_len != ks->cert.period_len || c->period_offset != ks->cert.period_offset)
        return ks_fail(MS_ERR_INVALID, detail, cap, "the package's KMS certificate changes "
                       "the identifier scheme or key period of the enrolment");
    if (ks_scheme(ks, &ks->cert, scheme) != MS_OK)
        return ks_fail(MS_ERR_MIKEY_UNSUPPORTED, detail, cap, "unknown identifier scheme");
    if (pkg->n_keysets == 0)
        return ks_fail(MS_ERR_NO_KEYS, detail, cap, "the package carries no key set");
    if (pkg->n_keysets > MS_KMSIF_MAX_KEYSETS)
        return ks_fail(MS_ERR_XML, detail, cap, "too many key sets");
    return MS_OK;
}

ms_err ms_keystore_import(ms_keystore *ks, ms_keystore_import_report *report, const char *xml,
                          size_t len, uint64_t now, char *detail, size_t cap)
{
    if (ks == NULL || xml == NULL)
        return ks_fail(MS_ERR_ARG, detail, cap, "ms_keystore_import: NULL argument");
    if (report != NULL)
        memset(report, 0, sizeof *report);
    now = ks_now(now);
    ms_err err = ks_lock(ks, detail, cap);
    if (err != MS_OK)
        return err;

    ms_key_package *pkg = ms_secure_alloc(sizeof *pkg);
    ms_keyset *sets = ms_secure_alloc(MS_KMSIF_MAX_KEYSETS * sizeof *sets);
    ms_sakke_kms *sakke = NULL;
    ms_id_scheme scheme;
    char sub[256] = "";
    if (pkg == NULL || sets == NULL) {
        err = ks_fail(MS_ERR_NOMEM, detail, cap, "key package");
        goto out;
    }
    err = ms_kmsif_package_parse(pkg, xml, len, &ks->dev, sub, sizeof sub);
    if (err != MS_OK) {
        err = ks_fail(err, detail, cap, "%s", sub[0] != '\0' ? sub : ms_strerror(err));
        goto out;
    }
    err = check_package(ks, pkg, now, &scheme, detail, cap);
    if (err != MS_OK)
        goto out;
    err = ms_sakke_kms_new(&sakke, pkg->cert.Z);
    if (err != MS_OK) {
        err = ks_fail(MS_ERR_KMS_PUBLIC_INVALID, detail, cap, "the package's KMS certificate "
                      "has an invalid PubEncKey");
        goto out;
    }
    ms_eccsi_verifier *v = NULL;
    err = ms_eccsi_verifier_new(&v, pkg->cert.kpak);
    ms_eccsi_verifier_free(v);
    if (err != MS_OK) {
        err = ks_fail(MS_ERR_KPAK_INVALID, detail, cap, "the package's KMS certificate has "
                      "an invalid PubAuthKey");
        goto out;
    }
    for (size_t i = 0; i < pkg->n_keysets; i++) {
        err = check_keyset(ks, pkg, &pkg->keysets[i], i, &scheme, sakke, now, &sets[i],
                           detail, cap);
        if (err != MS_OK)
            goto out;
    }
    /* Only now, with every key set accepted, is anything written. */
    for (size_t i = 0; i < pkg->n_keysets; i++) {
        err = ks_entry_write(ks, &sets[i], detail, cap);
        if (err != MS_OK)
            goto out;
        if (report != NULL && i < sizeof report->periods / sizeof report->periods[0]) {
            report->periods[i] = sets[i].period_no;
            report->n_periods = i + 1;
        }
    }
    if (report != NULL)
        report->package_time = pkg->time;
    /* the signed list of the user's devices: one added beside this one shows */
    err = ks_devices_record(ks, pkg->user_devices, detail, cap);
out:
    ms_sakke_kms_free(sakke);
    if (pkg != NULL)
        ms_secure_free(pkg, sizeof *pkg);
    if (sets != NULL)
        ms_secure_free(sets, MS_KMSIF_MAX_KEYSETS * sizeof *sets);
    ks_unlock(ks);
    return err;
}
