/*
 * What an embedder who wants SAKKE and MIKEY alone writes: it includes only the core's
 * public headers and links only libmikeysakke-core and OpenSSL (tests/build/
 * test_core_unit.sh builds it so). A SAKKE round trip to a MIKEY-SAKKE identifier, then a
 * MIKEY key from the shared secret. Exit 0 when everything agrees.
 */
#include <stdio.h>
#include <string.h>

#include "mikeysakke/crypto.h"
#include "mikeysakke/mikey.h"

int main(void)
{
    static uint8_t z[MS_SAKKE_SECRET_BYTES], Z[MS_SAKKE_POINT_BYTES], rsk[MS_SAKKE_POINT_BYTES];
    uint8_t id[MS_SAKKE_ID_MAX_BYTES], sed[MS_SAKKE_SED_BYTES];
    uint8_t ssv[MS_SAKKE_SSV_BYTES] = "0123456789abcdef", got[MS_SAKKE_SSV_BYTES];
    uint8_t tek[16], tek2[16];
    size_t id_len = 0;
    uint64_t period = 0;
    ms_sakke_kms *kms = NULL;
    ms_id_scheme scheme = {.scheme = MS_MIKEY_ID_SCHEME_TEL_MONTHLY};
    ms_err e = ms_sakke_master_keygen(z, Z, NULL);
    if (e == MS_OK)
        e = ms_sakke_kms_new(&kms, Z);
    if (e == MS_OK)
        e = ms_key_period(&scheme, &period, ms_ntp_now() >> 32); /* NTP 32.32 */
    if (e == MS_OK)
        e = ms_identifier(&scheme, id, sizeof id, &id_len, "tel:+447700900123", period);
    if (e == MS_OK)
        e = ms_sakke_rsk_issue(kms, rsk, z, id, id_len);
    if (e == MS_OK)
        e = ms_sakke_encap(kms, sed, id, id_len, ssv, sizeof ssv);
    if (e == MS_OK)
        e = ms_sakke_decap(kms, got, sizeof got, id, id_len, rsk, sed, sizeof sed);
    if (e == MS_OK)
        e = ms_mikey_derive(MS_MIKEY_PRF_MIKEY1, tek, sizeof tek, 0x2AD01C64u, got, sizeof got,
                            1, 0x12345678u, (const uint8_t *)"rand", 4);
    if (e == MS_OK)
        e = ms_mikey_derive(MS_MIKEY_PRF_MIKEY1, tek2, sizeof tek2, 0x2AD01C64u, ssv,
                            sizeof ssv, 1, 0x12345678u, (const uint8_t *)"rand", 4);
    ms_sakke_kms_free(kms);
    ms_wipe(z, sizeof z);
    if (e != MS_OK) {
        fprintf(stderr, "core_embedder: %s\n", ms_strerror(e));
        return 1;
    }
    if (memcmp(got, ssv, sizeof ssv) != 0 || memcmp(tek, tek2, sizeof tek) != 0) {
        fprintf(stderr, "core_embedder: the decapsulated SSV or the MIKEY key differs\n");
        return 1;
    }
    printf("core_embedder: SAKKE and MIKEY agree (%s backend)\n", ms_fp_backend_name());
    return 0;
}
