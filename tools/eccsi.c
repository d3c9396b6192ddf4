/* The `eccsi` subcommands (RFC 6507, P-256 with SHA-256): see docs/cli.md. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void trace_sign(const ms_eccsi_trace *t)
{
    /* In the order RFC 6507 5.2.1 computes them. */
    cli_trace_hex("HS", t->hs, sizeof t->hs);
    cli_trace_hex("J", t->j, sizeof t->j);
    cli_trace_hex("r", t->r, sizeof t->r);
    cli_trace_hex("HE", t->he, sizeof t->he);
    cli_trace_hex("s", t->s, sizeof t->s);
}

static void trace_verify(const ms_eccsi_trace *t)
{
    /* In the order RFC 6507 5.2.2 computes them. */
    cli_trace_hex("r", t->r, sizeof t->r);
    cli_trace_hex("s", t->s, sizeof t->s);
    cli_trace_hex("HS", t->hs, sizeof t->hs);
    cli_trace_hex("HE", t->he, sizeof t->he);
    cli_trace_hex("Y", t->y, sizeof t->y);
    cli_trace_hex("J", t->j, sizeof t->j);
}

ms_err cli_eccsi_keygen(const struct cli_args *args)
{
    const char *out = cli_get(args, "--secret-out");
    int force = cli_get(args, "--force") != NULL;
    uint8_t ksak[MS_ECCSI_SCALAR_BYTES];
    uint8_t kpak[MS_ECCSI_POINT_BYTES];

    ms_err err = cli_check_new_file("--secret-out", out, force);
    if (err != MS_OK)
        return err;
    err = ms_eccsi_master_keygen(ksak, kpak, NULL);
    if (err != MS_OK) {
        err = cli_fail(err, "eccsi keygen");
        goto out;
    }
    err = cli_write_secret("--secret-out", out, ksak, sizeof ksak, force);
    if (err == MS_OK)
        err = cli_print_hex(kpak, sizeof kpak);
out:
    ms_wipe(ksak, sizeof ksak);
    return err;
}

ms_err cli_eccsi_issue(const struct cli_args *args)
{
    const char *secret = cli_get(args, "--secret");
    const char *out = cli_get(args, "--ssk-out");
    int force = cli_get(args, "--force") != NULL;
    uint8_t ksak[MS_ECCSI_SCALAR_BYTES];
    uint8_t kpak[MS_ECCSI_POINT_BYTES], kpak_of_ksak[MS_ECCSI_POINT_BYTES];
    uint8_t ssk[MS_ECCSI_SCALAR_BYTES];
    uint8_t pvt[MS_ECCSI_POINT_BYTES];
    uint8_t hs[MS_ECCSI_SCALAR_BYTES];
    uint8_t *id = NULL;
    size_t id_len = 0;

    ms_err err = cli_hex_arg_fixed("--kpak", cli_get(args, "--kpak"), kpak, sizeof kpak);
    if (err != MS_OK)
        return err;
    err = cli_hex_arg("--id", cli_get(args, "--id"), &id, &id_len);
    if (err != MS_OK)
        return err;
    err = cli_check_new_file("--ssk-out", out, force);
    if (err != MS_OK)
        goto out_id;
    err = cli_read_secret("--secret", secret, ksak, sizeof ksak, sizeof ksak);
    if (err != MS_OK)
        goto out_id;

    /* A KPAK from another KMS would yield keys that never validate: refuse it here. */
    err = ms_eccsi_master_public(kpak_of_ksak, ksak);
    if (err != MS_OK) {
        err = cli_fail(err, "--secret %s", secret);
        goto out;
    }
    if (memcmp(kpak, kpak_of_ksak, sizeof kpak) != 0) {
        err = cli_fail(MS_ERR_ARG, "--kpak: not the KPAK of the KSAK in %s", secret);
        goto out;
    }
    err = ms_eccsi_ssk_issue(ssk, pvt, ksak, kpak, id, id_len, NULL);
    if (err != MS_OK) {
        err = cli_fail(err, "eccsi issue");
        goto out;
    }
    /* What the user will do first (RFC 6507 5.1.2); it also yields HS for --verbose. */
    err = ms_eccsi_ssk_validate(hs, kpak, id, id_len, ssk, pvt);
    if (err != MS_OK) {
        err = cli_fail(err, "eccsi issue: the issued SSK");
        goto out;
    }
    if (args->verbose)
        cli_trace_hex("HS", hs, sizeof hs);
    err = cli_write_secret("--ssk-out", out, ssk, sizeof ssk, force);
    if (err == MS_OK)
        err = cli_print_hex(pvt, sizeof pvt);
out:
    ms_wipe(ksak, sizeof ksak);
    ms_wipe(ssk, sizeof ssk);
out_id:
    free(id);
    return err;
}

ms_err cli_eccsi_sign(const struct cli_args *args)
{
    const char *ssk_path = cli_get(args, "--ssk");
    uint8_t kpak[MS_ECCSI_POINT_BYTES];
    uint8_t pvt[MS_ECCSI_POINT_BYTES];
    uint8_t ssk[MS_ECCSI_SCALAR_BYTES];
    uint8_t sig[MS_ECCSI_SIG_BYTES];
    uint8_t *id = NULL, *msg = NULL;
    size_t id_len = 0, msg_len = 0;
    ms_eccsi_signer *signer = NULL;
    ms_eccsi_trace trace;

    memset(&trace, 0, sizeof trace);
    ms_err err = cli_hex_arg_fixed("--kpak", cli_get(args, "--kpak"), kpak, sizeof kpak);
    if (err != MS_OK)
        return err;
    err = cli_hex_arg_fixed("--pvt", cli_get(args, "--pvt"), pvt, sizeof pvt);
    if (err != MS_OK)
        return err;
    err = cli_hex_arg("--id", cli_get(args, "--id"), &id, &id_len);
    if (err != MS_OK)
        return err;
    err = cli_read_input("--in", cli_get(args, "--in"), &msg, &msg_len);
    if (err != MS_OK)
        goto out;
    err = cli_read_secret("--ssk", ssk_path, ssk, sizeof ssk, sizeof ssk);
    if (err != MS_OK)
        goto out;

    /* The signer validates SSK and PVT against KPAK and the identifier. */
    err = ms_eccsi_signer_new(&signer, kpak, id, id_len, ssk, pvt);
    ms_wipe(ssk, sizeof ssk);
    if (err != MS_OK) {
        if (err == MS_ERR_KPAK_INVALID)
            err = cli_fail(err, "--kpak");
        else
            err = cli_fail(err, "--ssk %s with --pvt and --id", ssk_path);
        goto out;
    }
    err = ms_eccsi_sign(signer, sig, msg, msg_len, NULL, args->verbose ? &trace : NULL);
    if (err != MS_OK) {
        err = cli_fail(err, "eccsi sign");
        goto out;
    }
    if (args->verbose)
        trace_sign(&trace);
    err = cli_print_hex(sig, sizeof sig);
out:
    if (signer != NULL)
        ms_eccsi_signer_free(signer);
    free(id);
    free(msg);
    return err;
}

ms_err cli_eccsi_verify(const struct cli_args *args)
{
    uint8_t kpak[MS_ECCSI_POINT_BYTES];
    uint8_t *id = NULL, *msg = NULL, *sig = NULL;
    size_t id_len = 0, msg_len = 0, sig_len = 0;
    ms_eccsi_verifier *verifier = NULL;
    ms_eccsi_trace trace;

    memset(&trace, 0, sizeof trace);
    ms_err err = cli_hex_arg_fixed("--kpak", cli_get(args, "--kpak"), kpak, sizeof kpak);
    if (err != MS_OK)
        return err;
    err = cli_hex_arg("--id", cli_get(args, "--id"), &id, &id_len);
    if (err != MS_OK)
        goto out;
    /* Any length goes to the library, which reports a wrong one. */
    err = cli_hex_arg("--sig", cli_get(args, "--sig"), &sig, &sig_len);
    if (err != MS_OK)
        goto out;
    err = cli_read_input("--in", cli_get(args, "--in"), &msg, &msg_len);
    if (err != MS_OK)
        goto out;

    err = ms_eccsi_verifier_new(&verifier, kpak);
    if (err != MS_OK) {
        err = cli_fail(err, "--kpak");
        goto out;
    }
    err = ms_eccsi_verify(verifier, id, id_len, msg, msg_len, sig, sig_len,
                          args->verbose ? &trace : NULL);
    /* A "no" still shows what was computed: that is what interop debugging needs. */
    if (args->verbose && (err == MS_OK || err == MS_ERR_SIGNATURE))
        trace_verify(&trace);
    if (err == MS_ERR_SIGNATURE)
        err = cli_invalid(err, "--sig: not a signature of --in by --id under --kpak");
    else if (err != MS_OK)
        err = cli_fail(err, "--sig");
out:
    if (verifier != NULL)
        ms_eccsi_verifier_free(verifier);
    free(id);
    free(sig);
    free(msg);
    return err;
}
