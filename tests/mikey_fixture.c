/* The MIKEY tests' shared KMS and clock (see mikey_fixture.h). */
#include "mikey_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

uint64_t g_now = NOW_SECS << 32;

uint64_t test_clock(void *c)
{
    (void)c;
    return g_now;
}

uint8_t z[MS_SAKKE_SECRET_BYTES], Z[MS_SAKKE_POINT_BYTES];
uint8_t ksak[MS_ECCSI_SCALAR_BYTES], kpak[MS_ECCSI_POINT_BYTES];
ms_sakke_kms *issuer;

const ms_id_scheme tel_scheme = {MS_MIKEY_ID_SCHEME_TEL_MONTHLY, NULL, 0, 0};
const ms_id_scheme uid_scheme = {MS_MIKEY_ID_SCHEME_HASHED_UID, KMS_URI, UID_PERIOD_LEN, 0};

const ms_id_scheme *scheme_of_profile(ms_mikey_profile profile)
{
    return profile == MS_MIKEY_PROFILE_RFC6509 ? &tel_scheme : &uid_scheme;
}

uint64_t period_of_profile(ms_mikey_profile profile)
{
    return profile == MS_MIKEY_PROFILE_RFC6509 ? MONTH_PERIOD : UID_PERIOD;
}

void die(const char *what, ms_err e)
{
    fprintf(stderr, "setup: %s failed: %s\n", what, ms_errname(e));
    exit(2);
}

void test_kms_new(void)
{
    ms_err e = ms_sakke_master_keygen(z, Z, &ms_test_rng);
    if (e == MS_OK)
        e = ms_eccsi_master_keygen(ksak, kpak, &ms_test_rng);
    if (e == MS_OK)
        e = ms_sakke_kms_new(&issuer, Z);
    if (e != MS_OK)
        die("KMS", e);
}

void test_kms_free(void)
{
    ms_sakke_kms_free(issuer);
    issuer = NULL;
    ms_wipe(z, sizeof z);
    ms_wipe(ksak, sizeof ksak);
}

ms_err test_issue_keys(test_user_keys *k, ms_mikey_ctx *ctx, const ms_id_scheme *scheme,
                       const char *uri, uint64_t period)
{
    ms_err e = ms_identifier(scheme, k->id, sizeof k->id, &k->id_len, uri, period);
    if (e == MS_OK)
        e = ms_sakke_rsk_issue(issuer, k->rsk, z, k->id, k->id_len);
    if (e == MS_OK)
        e = ms_eccsi_ssk_issue(k->ssk, k->pvt, ksak, kpak, k->id, k->id_len, &ms_test_rng);
    if (e == MS_OK && ctx != NULL)
        e = ms_mikey_add_keys(ctx, KMS_URI, period, k->rsk, k->ssk, k->pvt);
    return e;
}

ms_mikey_ctx *test_ctx_new(ms_mikey_config *cfg, ms_mikey_profile profile, const char *uri)
{
    cfg->profile = profile;
    cfg->own_uri = uri;
    cfg->clock = test_clock;
    cfg->rng = &ms_test_rng;
    ms_mikey_ctx *ctx = NULL;
    ms_err e = ms_mikey_ctx_new(&ctx, cfg);
    if (e != MS_OK)
        die("ms_mikey_ctx_new", e);
    ms_mikey_kms_info info = {KMS_URI, *scheme_of_profile(profile), Z, kpak};
    if ((e = ms_mikey_add_kms(ctx, &info)) != MS_OK)
        die("ms_mikey_add_kms", e);
    return ctx;
}
