/*
 * mikeysakke: the command line. One table of {area, verb, function, help, options}
 * drives dispatch, option parsing and the usage text (the wireguard-tools habit); the
 * exit status is the ms_err code, 1 meaning "checked and invalid" (docs/cli.md).
 */
#include "call_cli.h"
#include "cli.h"
#include "kms_cli.h"
#include "kms_threshold_cli.h"
#include "tkms_audit_cli.h"
#include "user_cli.h"
#include "audit_cli.h"
#include "group_cli.h"

/* tools/dist.c */
ms_err cli_dist_serve(const struct cli_args *args);
extern const struct cli_opt cli_dist_serve_opts[];

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

/* ---- options of each subcommand --------------------------------------------------------- */

#define OPT_FORCE {"--force", NULL, CLI_FLAG, "replace an existing output file"}

static const struct cli_opt sakke_keygen_opts[] = {
    {"--secret-out", "FILE", CLI_REQUIRED, "write the master secret z here (mode 0600)"},
    OPT_FORCE,
    {NULL, NULL, 0, NULL},
};
static const struct cli_opt sakke_rsk_opts[] = {
    {"--secret", "FILE", CLI_REQUIRED, "the KMS master secret z (1 to 128 octets)"},
    {"--id", "HEX", CLI_REQUIRED, "the user's identifier b"},
    {"--out", "FILE", CLI_REQUIRED, "write the RSK here (mode 0600)"},
    OPT_FORCE,
    {NULL, NULL, 0, NULL},
};
static const struct cli_opt sakke_validate_opts[] = {
    {"--public", "HEX", CLI_REQUIRED, "the KMS public key Z (257 octets)"},
    {"--id", "HEX", CLI_REQUIRED, "the identifier the RSK was issued for"},
    {"--rsk", "FILE", CLI_REQUIRED, "the RSK to check"},
    {NULL, NULL, 0, NULL},
};
static const struct cli_opt sakke_encap_opts[] = {
    {"--public", "HEX", CLI_REQUIRED, "the KMS public key Z (257 octets)"},
    {"--id", "HEX", CLI_REQUIRED, "the receiver's identifier b"},
    {"--ssv", "HEX", 0, "the SSV to send (16 octets; default: random; for tests only)"},
    {NULL, NULL, 0, NULL},
};
static const struct cli_opt sakke_decap_opts[] = {
    {"--public", "HEX", CLI_REQUIRED, "the KMS public key Z (257 octets)"},
    {"--id", "HEX", CLI_REQUIRED, "the receiver's own identifier"},
    {"--rsk", "FILE", CLI_REQUIRED, "the receiver's RSK"},
    {"--sed", "HEX", CLI_REQUIRED, "the encapsulated data (273 octets)"},
    {NULL, NULL, 0, NULL},
};
static const struct cli_opt eccsi_keygen_opts[] = {
    {"--secret-out", "FILE", CLI_REQUIRED, "write the KSAK here (mode 0600)"},
    OPT_FORCE,
    {NULL, NULL, 0, NULL},
};
static const struct cli_opt eccsi_issue_opts[] = {
    {"--secret", "FILE", CLI_REQUIRED, "the KMS secret authentication key KSAK"},
    {"--kpak", "HEX", CLI_REQUIRED, "the KMS public authentication key (65 octets)"},
    {"--id", "HEX", CLI_REQUIRED, "the signer's identifier"},
    {"--ssk-out", "FILE", CLI_REQUIRED, "write the SSK here (mode 0600)"},
    OPT_FORCE,
    {NULL, NULL, 0, NULL},
};
static const struct cli_opt eccsi_sign_opts[] = {
    {"--kpak", "HEX", CLI_REQUIRED, "the KMS public authentication key (65 octets)"},
    {"--id", "HEX", CLI_REQUIRED, "the signer's identifier"},
    {"--ssk", "FILE", CLI_REQUIRED, "the signer's SSK"},
    {"--pvt", "HEX", CLI_REQUIRED, "the signer's PVT (65 octets)"},
    {"--in", "FILE", CLI_REQUIRED, "the message to sign ('-' for standard input)"},
    {NULL, NULL, 0, NULL},
};
static const struct cli_opt eccsi_verify_opts[] = {
    {"--kpak", "HEX", CLI_REQUIRED, "the KMS public authentication key (65 octets)"},
    {"--id", "HEX", CLI_REQUIRED, "the signer's identifier"},
    {"--in", "FILE", CLI_REQUIRED, "the signed message ('-' for standard input)"},
    {"--sig", "HEX", CLI_REQUIRED, "the signature (129 octets)"},
    {NULL, NULL, 0, NULL},
};

/* mikey: the KMS options are shared by init and respond ("peer" = the other party's KMS). */
#define OPT_PROFILE {"--profile", "NAME", 0, "rfc6509 (default), pck, gmk or csk"}
#define OPT_KMS {"--kms", "URI", 0, "own KMS URI (IDRkmsi for init, IDRkmsr for respond); not with --keystore"}
#define OPT_PUBLIC {"--public", "HEX", 0, "own KMS's SAKKE public key Z (257 octets); not with --keystore"}
#define OPT_KPAK {"--kpak", "HEX", 0, "own KMS's ECCSI KPAK (65 octets); not with --keystore"}
#define OPT_KEYSTORE_MIKEY {"--keystore", "DIR", 0, "own URI, KMS and keys from this keystore (user init)"}
#define OPT_PASSFILE_MIKEY {"--passphrase-file", "FILE", 0, "the keystore passphrase (mode 0600; default: ask)"}
#define OPT_PEER_KMS {"--peer-kms", "URI", 0, "the other party's KMS URI (default: --kms)"}
#define OPT_PEER_PUBLIC {"--peer-public", "HEX", 0, "the other party's KMS Z (with --peer-kms)"}
#define OPT_PEER_KPAK {"--peer-kpak", "HEX", 0, "the other party's KMS KPAK (with --peer-kms)"}
#define OPT_PERIOD_LEN {"--period-len", "N", 0, "3GPP key period length in seconds (pck, gmk, csk)"}
#define OPT_PERIOD_OFFSET {"--period-offset", "N", 0, "3GPP key period offset in seconds (default 0)"}

static const struct cli_opt mikey_init_opts[] = {
    OPT_PROFILE,
    {"--uri", "URI", 0, "own URI (tel:+... for rfc6509; GMS URI for gmk)"},
    OPT_KEYSTORE_MIKEY,
    OPT_PASSFILE_MIKEY,
    {"--to", "URI", CLI_REQUIRED, "the responder's URI"},
    OPT_KMS,
    OPT_PUBLIC,
    OPT_KPAK,
    OPT_PEER_KMS,
    OPT_PEER_PUBLIC,
    OPT_PEER_KPAK,
    OPT_PERIOD_LEN,
    OPT_PERIOD_OFFSET,
    {"--ssk", "FILE", 0, "own SSK for the key period of the timestamp"},
    {"--pvt", "HEX", 0, "own PVT (65 octets)"},
    {"--time", "TIME", 0, "timestamp T: YYYY-MM-DDTHH:MM:SSZ or 16 hex digits NTP (default now)"},
    {"--key", "FILE", 0, "the key to send (16 octets; default: random)"},
    {"--key-id", "HEX", 0, "key id / CSB ID, 8 hex digits (3GPP: with the purpose tag)"},
    {"--sakke-to-self", NULL, CLI_FLAG, "3GPP: also encapsulate the key to the initiator"},
    {"--hide-ids", NULL, CLI_FLAG, "3GPP: send UIDs (IDRuidi, IDRuidr) instead of URIs"},
    {"--key-params", "SPEC", 0, "3GPP: add key parameters (see docs/cli.md)"},
    {"--format", "FMT", 0, "binary, base64 (default) or sdp"},
    {"--out", "FILE", 0, "write the message here (default: standard output)"},
    {"--keys", NULL, CLI_FLAG, "also print the key and the derived SRTP keys"},
    {NULL, NULL, 0, NULL},
};
static const struct cli_opt mikey_respond_opts[] = {
    OPT_PROFILE,
    {"--uri", "URI", 0, "own URI"},
    OPT_KEYSTORE_MIKEY,
    OPT_PASSFILE_MIKEY,
    OPT_KMS,
    OPT_PUBLIC,
    OPT_KPAK,
    OPT_PEER_KMS,
    OPT_PEER_PUBLIC,
    OPT_PEER_KPAK,
    OPT_PERIOD_LEN,
    OPT_PERIOD_OFFSET,
    {"--rsk", "FILE", 0, "own RSK"},
    {"--period", "N", 0, "key period of the RSK (default: the period of --now)"},
    {"--expect-from", "URI", 0, "refuse unless the initiator is URI"},
    {"--now", "TIME", 0, "the current time (default: the clock), as for --time"},
    {"--max-skew", "SECONDS", 0, "accepted clock difference (default 300)"},
    {"--in", "FILE", 0, "the message: binary, base64 or SDP (default '-')"},
    {NULL, NULL, 0, NULL},
};
static const struct cli_opt mikey_inspect_opts[] = {
    {"--in", "FILE", 0, "the message: binary, base64 or SDP (default '-')"},
    {"--json", NULL, CLI_FLAG, "print one JSON object instead of a tree"},
    {NULL, NULL, 0, NULL},
};
static const struct cli_opt mikey_id_opts[] = {
    {"--uri", "URI", CLI_REQUIRED, "a global tel URI (tel:+447700900123)"},
    {"--time", "TIME", 0, "a time in the month (default now), as for init --time"},
    {NULL, NULL, 0, NULL},
};
static const struct cli_opt mikey_uid_opts[] = {
    {"--uri", "URI", CLI_REQUIRED, "the user's URI (MC service user ID)"},
    {"--kms", "URI", CLI_REQUIRED, "the KMS URI"},
    {"--period-len", "N", CLI_REQUIRED, "key period length in seconds"},
    {"--period-offset", "N", 0, "key period offset in seconds (default 0)"},
    {"--time", "TIME", 0, "a time in the period (default now), as for init --time"},
    {"--period", "N", 0, "the key period number (instead of --time)"},
    {NULL, NULL, 0, NULL},
};

/* ---- the subcommand table ----------------------------------------------------------------- */

static const struct cli_cmd commands[] = {
    {"sakke", "keygen", cli_sakke_keygen, "create a master secret z; print Z",
     sakke_keygen_opts},
    {"sakke", "rsk", cli_sakke_rsk, "issue the RSK of an identifier from z", sakke_rsk_opts},
    {"sakke", "validate", cli_sakke_validate, "check an RSK (exit 1 if invalid)",
     sakke_validate_opts},
    {"sakke", "encap", cli_sakke_encap, "encapsulate an SSV; print SSV and data",
     sakke_encap_opts},
    {"sakke", "decap", cli_sakke_decap, "recover the SSV from encapsulated data",
     sakke_decap_opts},
    {"eccsi", "keygen", cli_eccsi_keygen, "create a KSAK; print KPAK", eccsi_keygen_opts},
    {"eccsi", "issue", cli_eccsi_issue, "issue SSK (to a file) and PVT of an identifier",
     eccsi_issue_opts},
    {"eccsi", "sign", cli_eccsi_sign, "sign a message; print the signature", eccsi_sign_opts},
    {"eccsi", "verify", cli_eccsi_verify, "verify a signature (exit 1 if invalid)",
     eccsi_verify_opts},
    {"mikey", "init", cli_mikey_init, "build and sign a MIKEY-SAKKE I_MESSAGE",
     mikey_init_opts},
    {"mikey", "respond", cli_mikey_respond, "check an I_MESSAGE; print the key or the refusal",
     mikey_respond_opts},
    {"mikey", "inspect", cli_mikey_inspect, "print any MIKEY message as a tree or JSON",
     mikey_inspect_opts},
    {"mikey", "id", cli_mikey_id, "print the RFC 6509 identifier of a tel URI",
     mikey_id_opts},
    {"mikey", "uid", cli_mikey_uid, "print the TS 33.180 UID of a user URI", mikey_uid_opts},
    {"kms", "init", cli_kms_init, "create a KMS: master keys, seal, certificate, auditors", cli_kms_init_opts},
    {"kms", "unseal", cli_kms_unseal, "give the unseal agent a passphrase, share or PIN", cli_kms_unseal_opts},
    {"kms", "status", cli_kms_status, "sealed or unsealed, unseal progress, settings", cli_kms_status_opts},
    {"kms", "seal", cli_kms_seal, "wipe the master secrets and stop the agent", cli_kms_seal_opts},
    {"kms", "agent", cli_kms_agent, "the unseal agent (started by kms unseal)", cli_kms_agent_opts},
    {"kms", "user add", cli_kms_user_add, "add a user", cli_kms_user_add_opts},
    {"kms", "user list", cli_kms_user_list, "list users, their status and devices", cli_kms_user_list_opts},
    {"kms", "user suspend", cli_kms_user_suspend, "suspend a user (no new keys)", cli_kms_user_suspend_opts},
    {"kms", "user resume", cli_kms_user_resume, "resume a suspended user", cli_kms_user_resume_opts},
    {"kms", "user remove", cli_kms_user_remove, "remove a user, devices and key sets", cli_kms_user_remove_opts},
    {"kms", "device enrol", cli_kms_device_enrol, "enrol a device: TrK, InK, enrolment file", cli_kms_device_enrol_opts},
    {"kms", "issue", cli_kms_issue, "issue key sets for a key period", cli_kms_issue_opts},
    {"kms", "export", cli_kms_export, "write every device's key package for a period", cli_kms_export_opts},
    {"kms", "device request", cli_kms_device_request, "write a request to enrol a user's second device", cli_kms_device_request_opts},
    {"kms", "device approve", cli_kms_device_approve, "an enrolment officer approves a device request", cli_kms_device_approve_opts},
    {"kms", "audit request", cli_kms_audit_request, "write an extraction request for auditors to approve", cli_kms_audit_request_opts},
    {"kms", "audit approve", cli_kms_audit_approve, "an auditor approves one extraction request", cli_kms_audit_approve_opts},
    {"kms", "audit extract", cli_kms_audit_extract, "release one user's RSK for one period (audited)", cli_kms_audit_extract_opts},
    {"kms", "audit verify", cli_kms_audit_verify, "check the audit log's chain and signatures", cli_kms_audit_verify_opts},
    {"kms", "threshold audit-keygen", cli_kms_threshold_audit_keygen, "threshold KMS: a warrant signer's or the auditor's key pair", cli_kms_threshold_audit_keygen_opts},
    {"kms", "threshold audit-setup", cli_kms_threshold_audit_setup, "threshold KMS: fix which keys may sign warrants at this server", cli_kms_threshold_audit_setup_opts},
    {"kms", "threshold warrant", cli_kms_threshold_warrant, "threshold KMS: write an extraction warrant (to be signed)", cli_kms_threshold_warrant_opts},
    {"kms", "threshold warrant-sign", cli_kms_threshold_warrant_sign, "threshold KMS: sign a warrant as the audit authority or an approver", cli_kms_threshold_warrant_sign_opts},
    {"kms", "audit checkpoint", cli_kms_audit_checkpoint, "print a signed checkpoint of the audit log for the auditors", cli_kms_audit_checkpoint_opts},
    {"kms", "audit syslog", cli_kms_audit_syslog, "copy the audit log to syslog as it is written (yes/no)", cli_kms_audit_syslog_opts},
    {"kms", "rollover", cli_kms_rollover, "new master keys from a future key period", cli_kms_rollover_opts},
    {"kms", "cert", cli_kms_cert, "print the KMS certificate", cli_kms_cert_opts},
    {"kms", "serve", cli_kms_serve, "unseal agent + TS 33.180 Annex D over HTTPS", cli_kms_serve_opts},
    {"kms", "threshold keygen", cli_kms_threshold_keygen, "threshold KMS: this server's keys and its peers-table line", cli_kms_threshold_keygen_opts},
    {"kms", "threshold init", cli_kms_threshold_init, "threshold KMS: the key-generation ceremony with the other servers", cli_kms_threshold_init_opts},
    {"kms", "batch", cli_kms_threshold_batch, "threshold KMS: the batch of a key period (= kms threshold batch)", cli_kms_threshold_batch_opts},
    {"kms", "threshold batch", cli_kms_threshold_batch, "threshold KMS: the batch of a key period with the other servers", cli_kms_threshold_batch_opts},
    {"kms", "threshold share", cli_kms_threshold_share, "threshold KMS: this server's share of a user's keys, sealed to the device", cli_kms_threshold_share_opts},
    {"kms", "threshold refresh", cli_kms_threshold_refresh, "threshold KMS: new shares of z and KSAK at every server (Z and KPAK unchanged)", cli_kms_threshold_refresh_opts},
    {"kms", "threshold enrol", cli_kms_threshold_enrol, "threshold KMS: enrol a device's keys at this server (one of the t+1 approvals)", cli_kms_threshold_enrol_opts},
    {"user", "threshold-init", cli_user_threshold_init, "create a keystore for a threshold KMS and this device's keys", cli_user_threshold_init_opts},
    {"kms", "threshold check-report", cli_kms_threshold_check_report, "threshold KMS: judge a device's cheater report against a server", cli_kms_threshold_check_report_opts},
    {"user", "threshold-combine", cli_user_threshold_combine, "combine t+1 threshold KMS shares into RSK, SSK and PVT (validated)", cli_user_threshold_combine_opts},
    {"user", "init", cli_user_init, "create the device's keystore from an enrolment file", cli_user_init_opts},
    {"user", "import", cli_user_import, "import a key package (no network)", cli_user_import_opts},
    {"user", "list", cli_user_list, "list the key periods held", cli_user_list_opts},
    {"user", "status", cli_user_status, "periods in force, next period's keys due", cli_user_status_opts},
    {"user", "purge", cli_user_purge, "delete key periods that have expired", cli_user_purge_opts},
    {"user", "fetch", cli_user_fetch, "fetch the KMS certificate and keys over HTTPS (Annex D)", cli_user_fetch_opts},
    {"user", "approve-device", cli_user_approve_device, "approve a request to enrol another device of this user", cli_user_approve_device_opts},
    {"call", "dial", cli_call_dial, "place an end-to-end encrypted call (SIP + MIKEY-SAKKE + SRTP)", cli_call_dial_opts},
    {"call", "answer", cli_call_answer, "wait for and answer encrypted calls; refuse bad offers", cli_call_answer_opts},
    {"voicemail", "serve", cli_voicemail_serve, "run the key-less voicemail store (mikeysakke-voicemail)", cli_voicemail_serve_opts},
    {"voicemail", "add-user", cli_voicemail_add_user, "give a mailbox owner a password at the store", cli_voicemail_add_user_opts},
    {"voicemail", "list", cli_voicemail_list, "list one's own voicemail at the store", cli_voicemail_list_opts},
    {"voicemail", "fetch", cli_voicemail_fetch, "download a voicemail (still encrypted)", cli_voicemail_fetch_opts},
    {"voicemail", "play", cli_voicemail_play, "open a voicemail with the keystore and write a WAV", cli_voicemail_play_opts},
    {"voicemail", "delete", cli_voicemail_delete, "delete a voicemail at the store", cli_voicemail_delete_opts},
    {"dist", "serve", cli_dist_serve, "serve an offline KMS's export over HTTPS (holds no secret)", cli_dist_serve_opts},
    {"audit", "decrypt", cli_audit_decrypt, "decrypt one user's calls of one period from captures", cli_audit_decrypt_opts},
    {"group", "create", cli_group_create, "GMS: create a group and its first group key (GMK)", cli_group_create_opts},
    {"group", "add", cli_group_add, "GMS: add members; they receive the current key", cli_group_add_opts},
    {"group", "remove", cli_group_remove, "GMS: remove members and rekey without them", cli_group_remove_opts},
    {"group", "rekey", cli_group_rekey, "GMS: a new group key for the same members", cli_group_rekey_opts},
    {"group", "send", cli_group_send, "GMS: deliver the current key and roster to every member", cli_group_send_opts},
    {"group", "show", cli_group_show, "GMS: members and keys of a group (no secret)", cli_group_show_opts},
    {"group", "join", cli_group_join, "member: receive, check and store group keys (SIP MESSAGE)", cli_group_join_opts},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

const char *cli_get(const struct cli_args *args, const char *name)
{
    for (size_t i = 0; args->cmd->opts[i].name != NULL; i++)
        if (strcmp(args->cmd->opts[i].name, name) == 0)
            return args->val[i];
    fprintf(stderr, "mikeysakke: bug: %s %s has no option %s\n", args->cmd->area,
            args->cmd->verb, name);
    abort();
}

/* ---- usage ---------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs("usage: mikeysakke [--verbose] <area> <verb> [options]\n"
          "       mikeysakke help [<area> [<verb>]]\n\n"
          "Commands:\n",
          f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-5s %-14s %s\n", commands[i].area, commands[i].verb, commands[i].help);
    fprintf(f, "  %-5s %-14s %s\n", "relay", "[options]",
            "run the key-less conference relay (mikeysakke-relay --help)");
    fputs("\nGlobal options (anywhere on the line):\n"
          "  --verbose  print the RFCs' named public intermediate values to stderr\n"
          "  --help     print usage (after a command: that command's options)\n"
          "  --version  print the version and the field arithmetic backend\n\n"
          "Secrets are read from and written to files only (mode 0600, others refused).\n"
          "Hex arguments: digits in either case, no spaces. Output hex is upper case.\n"
          "Exit status: 0 success, 1 checked and invalid, otherwise the error code\n"
          "(docs/cli.md lists them all).\n",
          f);
}

static void cmd_usage(FILE *f, const struct cli_cmd *cmd)
{
    fprintf(f, "usage: mikeysakke %s %s", cmd->area, cmd->verb);
    for (size_t i = 0; cmd->opts[i].name != NULL; i++) {
        const struct cli_opt *o = &cmd->opts[i];
        const char *open = (o->flags & CLI_REQUIRED) ? "" : "[";
        const char *close = (o->flags & CLI_REQUIRED) ? "" : "]";
        if (o->arg != NULL)
            fprintf(f, " %s%s %s%s", open, o->name, o->arg, close);
        else
            fprintf(f, " %s%s%s", open, o->name, close);
    }
    fprintf(f, " [--verbose]\n\n%s.\n\nOptions:\n", cmd->help);
    for (size_t i = 0; cmd->opts[i].name != NULL; i++) {
        const struct cli_opt *o = &cmd->opts[i];
        char left[40];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(f, "  %-18s %s\n", left, o->help);
    }
    fprintf(f, "  %-18s %s\n  %-18s %s\n", "--verbose",
            "print public intermediate values to stderr", "--help", "print this help");
}

static void area_usage(FILE *f, const char *area)
{
    fprintf(f, "usage: mikeysakke %s <verb> [options]\n\nVerbs:\n", area);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].area, area) == 0)
            fprintf(f, "  %-14s %s\n", commands[i].verb, commands[i].help);
    fprintf(f, "\nRun 'mikeysakke %s <verb> --help' for a verb's options.\n", area);
}

static int is_area(const char *area)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].area, area) == 0)
            return 1;
    return 0;
}

static const struct cli_cmd *find_command(const char *area, const char *verb)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].area, area) == 0 && strcmp(commands[i].verb, verb) == 0)
            return &commands[i];
    return NULL;
}

/* A usage error: the message, then where to find the right usage. */
static ms_err usage_error(const struct cli_cmd *cmd, const char *what, const char *name)
{
    if (cmd != NULL) {
        cli_fail(MS_ERR_USAGE, "%s %s: %s%s", cmd->area, cmd->verb, what, name);
        fprintf(stderr, "Try 'mikeysakke %s %s --help'.\n", cmd->area, cmd->verb);
    } else {
        cli_fail(MS_ERR_USAGE, "%s%s", what, name);
        fputs("Try 'mikeysakke --help'.\n", stderr);
    }
    return MS_ERR_USAGE;
}

/* ---- option parsing -------------------------------------------------------------------- */

enum { PARSE_RUN, PARSE_HELP };

/* Parses argv[0..argc) (the words after the verb) into args. Returns PARSE_RUN,
 * PARSE_HELP, or a negated ms_err after printing the problem. Options are matched
 * exactly ("--id VALUE" or "--id=VALUE"); a value may start with '-' ("--in -"). */
static int parse_options(const struct cli_cmd *cmd, int argc, char **argv,
                         struct cli_args *args)
{
    size_t n_opts = 0;
    while (cmd->opts[n_opts].name != NULL)
        n_opts++;
    if (n_opts > CLI_MAX_OPTS)
        abort(); /* a table above outgrew struct cli_args: a bug in this program */

    for (int i = 0; i < argc; i++) {
        const char *word = argv[i];
        if (strcmp(word, "--verbose") == 0) {
            args->verbose = 1;
            continue;
        }
        if (strcmp(word, "--help") == 0 || strcmp(word, "-h") == 0)
            return PARSE_HELP;
        if (strncmp(word, "--", 2) != 0) {
            /* "user import FILE": a bare word fills the command's positional option. */
            size_t p;
            for (p = 0; cmd->opts[p].name != NULL; p++)
                if (cmd->opts[p].flags & CLI_POSITIONAL)
                    break;
            if (cmd->opts[p].name == NULL || args->val[p] != NULL)
                return -(int)usage_error(cmd, "unexpected argument ", word);
            args->val[p] = word;
            continue;
        }

        const char *eq = strchr(word, '=');
        size_t name_len = eq ? (size_t)(eq - word) : strlen(word);
        size_t k;
        for (k = 0; cmd->opts[k].name != NULL; k++)
            if (strlen(cmd->opts[k].name) == name_len &&
                strncmp(cmd->opts[k].name, word, name_len) == 0)
                break;
        const struct cli_opt *o = &cmd->opts[k];
        if (o->name == NULL) {
            /* Quote only the name: a value after '=' could be anything. */
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(name_len < 63 ? name_len : 63), word);
            return -(int)usage_error(cmd, "unknown option ", name);
        }
        if (args->val[k] != NULL)
            return -(int)usage_error(cmd, "option given twice: ", o->name);
        if (o->flags & CLI_FLAG) {
            if (eq != NULL)
                return -(int)usage_error(cmd, "option takes no value: ", o->name);
            args->val[k] = "";
        } else if (eq != NULL) {
            args->val[k] = eq + 1;
        } else if (i + 1 < argc) {
            args->val[k] = argv[++i];
        } else {
            return -(int)usage_error(cmd, "option needs a value: ", o->name);
        }
    }
    for (size_t k = 0; cmd->opts[k].name != NULL; k++)
        if ((cmd->opts[k].flags & CLI_REQUIRED) && args->val[k] == NULL)
            return -(int)usage_error(cmd, "missing required option ", cmd->opts[k].name);
    return PARSE_RUN;
}

/* ---- main ---------------------------------------------------------------------------- */

/* No core file may carry z, KSAK, an RSK or an SSK; PR_SET_DUMPABLE also keeps other
 * processes of the same user from ptrace-attaching. */
static void no_core_dumps(void)
{
    struct rlimit rl = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &rl);
#if defined(__linux__)
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
}

/* stdout must reach its destination before we report success. */
static int finish(int status)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (status == 0)
            status = (int)cli_fail(MS_ERR_IO, "standard output");
    }
    return status;
}

static int help_command(int argc, char **argv)
{
    if (argc == 0) {
        usage(stdout);
        return 0;
    }
    if (argc == 1 && is_area(argv[0])) {
        area_usage(stdout, argv[0]);
        return 0;
    }
    const struct cli_cmd *cmd = argc == 2 ? find_command(argv[0], argv[1]) : NULL;
    if (argc == 3) {
        char joined[64];
        snprintf(joined, sizeof joined, "%s %s", argv[1], argv[2]);
        cmd = find_command(argv[0], joined);
    }
    if (cmd == NULL)
        return (int)usage_error(NULL, "help: no such command: ", argv[0]);
    cmd_usage(stdout, cmd);
    return 0;
}

int main(int argc, char **argv)
{
    no_core_dumps();

    struct cli_args args;
    memset(&args, 0, sizeof args);

    /* Global options before the area. */
    int i = 1;
    for (; i < argc && strncmp(argv[i], "-", 1) == 0; i++) {
        if (strcmp(argv[i], "--verbose") == 0) {
            args.verbose = 1;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("mikeysakke %s (field arithmetic: %s)\n", MS_VERSION, ms_fp_backend_name());
            return finish(0);
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return finish(0);
        } else {
            return (int)usage_error(NULL, "unknown option ", argv[i]);
        }
    }
    if (i == argc) {
        usage(stderr);
        return (int)MS_ERR_USAGE;
    }
    const char *area = argv[i];
    if (strcmp(area, "help") == 0)
        return finish(help_command(argc - i - 1, argv + i + 1));
    /* The conference relay is its own key-less program; its options are its own. */
    if (strcmp(area, "relay") == 0)
        return cli_exec_program("mikeysakke-relay", argv + i);
    if (!is_area(area))
        return (int)usage_error(NULL, "unknown command ", area);
    if (i + 1 == argc) {
        area_usage(stderr, area);
        return (int)MS_ERR_USAGE;
    }
    const char *verb = argv[i + 1];
    /* The voicemail store is its own key-less program; its options are its own. */
    if (strcmp(area, "voicemail") == 0 &&
        (strcmp(verb, "serve") == 0 || strcmp(verb, "add-user") == 0))
        return cli_exec_program("mikeysakke-voicemail", argv + i);
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0) {
        area_usage(stdout, area);
        return finish(0);
    }
    const struct cli_cmd *cmd = find_command(area, verb);
    int verb_words = 1;
    /* Two-word verbs ("kms audit extract"); the hyphenated form also works. */
    char joined[64];
    if (cmd == NULL && i + 2 < argc && argv[i + 2][0] != '-') {
        snprintf(joined, sizeof joined, "%s %s", verb, argv[i + 2]);
        cmd = find_command(area, joined);
        verb_words = 2;
    }
    if (cmd == NULL && strchr(verb, '-') != NULL) {
        snprintf(joined, sizeof joined, "%s", verb);
        *strchr(joined, '-') = ' ';
        cmd = find_command(area, joined);
        verb_words = 1;
    }
    if (cmd == NULL) {
        cli_fail(MS_ERR_USAGE, "unknown command %s %s", area, verb);
        fprintf(stderr, "Try 'mikeysakke %s --help'.\n", area);
        return (int)MS_ERR_USAGE;
    }

    /* `kms init --threshold T --servers N` is the threshold ceremony (kms threshold init) */
    if (cmd->run == cli_kms_init)
        for (int k = i + 1 + verb_words; k < argc; k++)
            if (strcmp(argv[k], "--threshold") == 0)
                cmd = find_command("kms", "threshold init");
    args.cmd = cmd;
    int parsed = parse_options(cmd, argc - i - 1 - verb_words, argv + i + 1 + verb_words, &args);
    if (parsed < 0)
        return -parsed;
    if (parsed == PARSE_HELP) {
        cmd_usage(stdout, cmd);
        return finish(0);
    }
    return finish((int)cmd->run(&args));
}
