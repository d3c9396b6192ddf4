/* The `sakke` subcommands (RFC 6508 with RFC 6509 parameter set 1): see docs/cli.md. */
#include "cli.h"

#include <stdlib.h>

#include <openssl/rand.h>

/* Offsets in the encapsulated data R_(b,S) || H: R is 0x04 || x || y. */
#define SED_RX 1
#define SED_RY (1 + MS_SAKKE_FP_BYTES)
#define SED_H MS_SAKKE_POINT_BYTES

/* Parses --public and builds the KMS object (which checks Z). */
static ms_err load_kms(const struct cli_args *args, ms_sakke_kms **kms)
{
    uint8_t Z[MS_SAKKE_POINT_BYTES];
    ms_err err = cli_hex_arg_fixed("--public", cli_get(args, "--public"), Z, sizeof Z);
    if (err != MS_OK)
        return err;
    err = ms_sakke_kms_new(kms, Z);
    if (err != MS_OK)
        return cli_fail(err, "--public");
    return MS_OK;
}

/* Names the argument a library error most likely concerns; `what` otherwise. */
static ms_err sakke_fail(ms_err err, const char *what)
{
    if (err == MS_ERR_ID_RANGE)
        return cli_fail(err, "--id");
    if (err == MS_ERR_SSV_SIZE)
        return cli_fail(err, "--ssv");
    return cli_fail(err, "%s", what);
}

ms_err cli_sakke_keygen(const struct cli_args *args)
{
    const char *out = cli_get(args, "--secret-out");
    int force = cli_get(args, "--force") != NULL;
    uint8_t z[MS_SAKKE_SECRET_BYTES];
    uint8_t Z[MS_SAKKE_POINT_BYTES];

    ms_err err = cli_check_new_file("--secret-out", out, force);
    if (err != MS_OK)
        return err;
    err = ms_sakke_master_keygen(z, Z, NULL);
    if (err != MS_OK) {
        err = cli_fail(err, "sakke keygen");
        goto out;
    }
    err = cli_write_secret("--secret-out", out, z, sizeof z, force);
    if (err == MS_OK)
        err = cli_print_hex(Z, sizeof Z);
out:
    ms_wipe(z, sizeof z);
    return err;
}

ms_err cli_sakke_rsk(const struct cli_args *args)
{
    const char *secret = cli_get(args, "--secret");
    const char *out = cli_get(args, "--out");
    int force = cli_get(args, "--force") != NULL;
    uint8_t z[MS_SAKKE_SECRET_BYTES];
    uint8_t Z[MS_SAKKE_POINT_BYTES];
    uint8_t rsk[MS_SAKKE_POINT_BYTES];
    uint8_t *id = NULL;
    size_t id_len = 0;
    ms_sakke_kms *kms = NULL;

    ms_err err = cli_hex_arg("--id", cli_get(args, "--id"), &id, &id_len);
    if (err != MS_OK)
        return err;
    err = cli_check_new_file("--out", out, force);
    if (err != MS_OK)
        goto out_id;
    /* z files hold 1..128 octets: the RFC 6508 example z is a 20-octet integer. */
    err = cli_read_secret("--secret", secret, z, 1, sizeof z);
    if (err != MS_OK)
        goto out_id;

    /* The KMS object (Z's table) makes issuing cheap; Z comes from z itself. */
    err = ms_sakke_master_public(Z, z);
    if (err != MS_OK) {
        err = cli_fail(err, "--secret %s", secret);
        goto out;
    }
    err = ms_sakke_kms_new(&kms, Z);
    if (err != MS_OK) {
        err = cli_fail(err, "--secret %s: its public key", secret);
        goto out;
    }
    err = ms_sakke_rsk_issue(kms, rsk, z, id, id_len);
    if (err != MS_OK) {
        err = sakke_fail(err, "sakke rsk");
        goto out;
    }
    err = cli_write_secret("--out", out, rsk, sizeof rsk, force);
out:
    if (kms != NULL)
        ms_sakke_kms_free(kms);
    ms_wipe(z, sizeof z);
    ms_wipe(rsk, sizeof rsk);
out_id:
    free(id);
    return err;
}

ms_err cli_sakke_validate(const struct cli_args *args)
{
    const char *rsk_path = cli_get(args, "--rsk");
    uint8_t rsk[MS_SAKKE_POINT_BYTES];
    uint8_t *id = NULL;
    size_t id_len = 0;
    ms_sakke_kms *kms = NULL;

    ms_err err = load_kms(args, &kms);
    if (err != MS_OK)
        return err;
    err = cli_hex_arg("--id", cli_get(args, "--id"), &id, &id_len);
    if (err != MS_OK)
        goto out_kms;
    err = cli_read_secret("--rsk", rsk_path, rsk, sizeof rsk, sizeof rsk);
    if (err != MS_OK)
        goto out_id;

    err = ms_sakke_rsk_validate(kms, id, id_len, rsk);
    if (err == MS_ERR_RSK_INVALID)
        err = cli_invalid(err, "--rsk %s: not the RSK of this identifier and KMS", rsk_path);
    else if (err != MS_OK && err != MS_ERR_ID_RANGE)
        err = cli_fail(err, "--rsk %s", rsk_path);
    else if (err != MS_OK)
        err = sakke_fail(err, "sakke validate");

    ms_wipe(rsk, sizeof rsk);
out_id:
    free(id);
out_kms:
    if (kms != NULL)
        ms_sakke_kms_free(kms);
    return err;
}

ms_err cli_sakke_encap(const struct cli_args *args)
{
    const char *ssv_hex = cli_get(args, "--ssv");
    uint8_t ssv[MS_SAKKE_SSV_BYTES];
    uint8_t *ssv_arg = NULL;
    size_t ssv_len = sizeof ssv;
    uint8_t sed[MS_SAKKE_SED_BYTES];
    uint8_t *id = NULL;
    size_t id_len = 0;
    ms_sakke_kms *kms = NULL;
    const uint8_t *ssv_in = ssv;

    ms_err err = load_kms(args, &kms);
    if (err != MS_OK)
        return err;
    err = cli_hex_arg("--id", cli_get(args, "--id"), &id, &id_len);
    if (err != MS_OK)
        goto out;

    if (ssv_hex != NULL) {
        /* Any length goes to the library, which names a wrong one (MS_ERR_SSV_SIZE). */
        err = cli_hex_arg("--ssv", ssv_hex, &ssv_arg, &ssv_len);
        if (err != MS_OK)
            goto out;
        ssv_in = ssv_arg;
    } else if (RAND_priv_bytes(ssv, (int)sizeof ssv) != 1) {
        /* The private DRBG: the SSV is the key of the call. */
        err = cli_fail(MS_ERR_RNG, "--ssv: drawing a random SSV");
        goto out;
    }

    if (args->verbose) {
        /* RFC 6508 6.2.1 is computed to I = [b]P + Z_S; R_(b,S) = [r]I. */
        uint8_t I[MS_SAKKE_POINT_BYTES];
        err = ms_sakke_identity_point(kms, I, id, id_len);
        if (err != MS_OK) {
            err = sakke_fail(err, "sakke encap: [b]P + Z");
            goto out;
        }
        cli_trace_hex("b", id, id_len);
        cli_trace_hex("I", I, sizeof I);
    }

    err = ms_sakke_encap(kms, sed, id, id_len, ssv_in, ssv_len);
    if (err != MS_OK) {
        err = sakke_fail(err, "sakke encap");
        goto out;
    }
    if (args->verbose) {
        cli_trace_hex("Rbx", sed + SED_RX, MS_SAKKE_FP_BYTES);
        cli_trace_hex("Rby", sed + SED_RY, MS_SAKKE_FP_BYTES);
        cli_trace_hex("H", sed + SED_H, MS_SAKKE_SED_BYTES - SED_H);
    }
    err = cli_print_hex(ssv_in, ssv_len);
    if (err == MS_OK)
        err = cli_print_hex(sed, sizeof sed);

out:
    ms_wipe(ssv, sizeof ssv);
    if (ssv_arg != NULL) {
        ms_wipe(ssv_arg, ssv_len);
        free(ssv_arg);
    }
    free(id);
    if (kms != NULL)
        ms_sakke_kms_free(kms);
    return err;
}

ms_err cli_sakke_decap(const struct cli_args *args)
{
    const char *rsk_path = cli_get(args, "--rsk");
    uint8_t rsk[MS_SAKKE_POINT_BYTES];
    uint8_t ssv[MS_SAKKE_SSV_BYTES];
    uint8_t *id = NULL, *sed = NULL;
    size_t id_len = 0, sed_len = 0;
    ms_sakke_kms *kms = NULL;

    ms_err err = load_kms(args, &kms);
    if (err != MS_OK)
        return err;
    err = cli_hex_arg("--id", cli_get(args, "--id"), &id, &id_len);
    if (err != MS_OK)
        goto out;
    err = cli_hex_arg("--sed", cli_get(args, "--sed"), &sed, &sed_len);
    if (err != MS_OK)
        goto out;
    err = cli_read_secret("--rsk", rsk_path, rsk, sizeof rsk, sizeof rsk);
    if (err != MS_OK)
        goto out;

    /* Shown before decapsulating, so they are there when the TEST check fails. */
    if (args->verbose && sed_len == MS_SAKKE_SED_BYTES) {
        cli_trace_hex("Rbx", sed + SED_RX, MS_SAKKE_FP_BYTES);
        cli_trace_hex("Rby", sed + SED_RY, MS_SAKKE_FP_BYTES);
        cli_trace_hex("H", sed + SED_H, MS_SAKKE_SED_BYTES - SED_H);
    }

    err = ms_sakke_decap(kms, ssv, sizeof ssv, id, id_len, rsk, sed, sed_len);
    if (err != MS_OK) {
        /* Only the length of --sed and the TEST check are surely about the data. */
        if (err == MS_ERR_DECAP_TEST || err == MS_ERR_BAD_LENGTH)
            err = cli_fail(err, "--sed");
        else
            err = sakke_fail(err, "sakke decap");
        goto out;
    }
    err = cli_print_hex(ssv, sizeof ssv);

out:
    ms_wipe(rsk, sizeof rsk);
    ms_wipe(ssv, sizeof ssv);
    free(id);
    free(sed);
    if (kms != NULL)
        ms_sakke_kms_free(kms);
    return err;
}
