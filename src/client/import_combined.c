/*
 * Keys a device combined itself (a threshold KMS's shares, src/tkms/device.c) stored
 * through the one import path: they are wrapped as a key package from the enrolled KMS to
 * this device, under the device's own TrK and InK, and imported with every check of
 * ms_keystore_import (identifier, RSK and SSK validation against the enrolled
 * certificate, period not ended).
 */
#include "client/keystore_internal.h"

#include <stdlib.h>
#include <string.h>

#include "crypto/secmem.h"

ms_err ms_keystore_import_combined(ms_keystore *ks, uint64_t period_no,
                                   const uint8_t rsk[MS_SAKKE_POINT_BYTES],
                                   const uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                                   const uint8_t pvt[MS_ECCSI_POINT_BYTES], uint64_t now,
                                   char *detail, size_t cap)
{
    if (ks == NULL || rsk == NULL || ssk == NULL || pvt == NULL)
        return ks_fail(MS_ERR_ARG, detail, cap, "ms_keystore_import_combined: NULL argument");
    now = ks_now(now);
    ms_id_scheme scheme;
    if (ks_scheme(ks, &ks->cert, &scheme) != MS_OK)
        return ks_fail(MS_ERR_MIKEY_UNSUPPORTED, detail, cap, "unknown identifier scheme");
    ms_key_package *pkg = ms_secure_alloc(sizeof *pkg);
    if (pkg == NULL)
        return ks_fail(MS_ERR_NOMEM, detail, cap, "key package");
    memset(pkg, 0, sizeof *pkg);
    memcpy(pkg->user_uri, ks->dev.user_uri, sizeof pkg->user_uri);
    memcpy(pkg->kms_uri, ks->cert.kms_uri, sizeof pkg->kms_uri);
    memcpy(pkg->device_id, ks->dev.device_id, sizeof pkg->device_id);
    pkg->cert = ks->cert;
    /* newer than the package the period's keys came from, else import calls it a replay */
    pkg->time = now;
    ms_keyset *held = ms_secure_alloc(sizeof *held);
    if (held != NULL && ms_keystore_get(ks, held, NULL, period_no, NULL, 0) == MS_OK &&
        held->package_time >= pkg->time)
        pkg->time = held->package_time + 1;
    if (held != NULL)
        ms_secure_free(held, sizeof *held);
    pkg->n_keysets = 1;
    ms_kmsif_keyset *k = &pkg->keysets[0];
    memcpy(k->kms_uri, ks->cert.kms_uri, sizeof k->kms_uri);
    memcpy(k->user_uri, ks->dev.user_uri, sizeof k->user_uri);
    k->period_no = period_no;
    memcpy(k->rsk, rsk, sizeof k->rsk);
    memcpy(k->ssk, ssk, sizeof k->ssk);
    memcpy(k->pvt, pvt, sizeof k->pvt);
    ms_err err = ms_identifier(&scheme, k->user_id, sizeof k->user_id, &k->user_id_len,
                               ks->dev.user_uri, period_no);
    size_t len = 0;
    char *xml = NULL;
    if (err == MS_OK) {
        err = ms_kmsif_package_write(NULL, 0, &len, pkg, &ks->dev, NULL);
        if (err == MS_ERR_BUFFER_TOO_SMALL)
            err = (xml = malloc(len + 1)) != NULL ? MS_OK : MS_ERR_NOMEM;
    }
    if (err == MS_OK)
        err = ms_kmsif_package_write(xml, len + 1, &len, pkg, &ks->dev, NULL);
    ms_secure_free(pkg, sizeof *pkg);
    if (err != MS_OK) {
        free(xml);
        return ks_fail(err, detail, cap, "the combined keys cannot be packaged: %s",
                       ms_strerror(err));
    }
    err = ms_keystore_import(ks, NULL, xml, len, now, detail, cap);
    free(xml); /* key material in it is wrapped under the TrK */
    return err;
}
