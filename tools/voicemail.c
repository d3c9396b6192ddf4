/*
 * The `voicemail` subcommands. `serve` and `add-user` run the key-less store program,
 * mikeysakke-voicemail (git-style: this binary never holds the store's role itself);
 * `list`, `fetch`, `play` and `delete` are the mailbox owner's side: fetch over HTTPS and
 * open each message with the device's own keystore.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "call/keys.h"
#include "call/mailbox_client.h"
#include "call/voicemail.h"
#include "call_cli.h"
#include "mikeysakke/crypto.h"
#include "user_cli.h"
#include "util/timefmt.h"

#define MAX_MESSAGES 1000

/* The main options of the store program, for `mikeysakke help voicemail serve`; the
 * options themselves are parsed by mikeysakke-voicemail, whose --help lists them all. */
const struct cli_opt cli_voicemail_serve_opts[] = {
    {"--dir", "DIR", 0, "the store: one folder per mailbox"},
    {"--listen", "IP:PORT", 0, "SIP address the provider diverts calls to"},
    {"--https", "IP:PORT", 0, "owners fetch their messages here"},
    {"--tls-cert", "PEM", 0, "the HTTPS server's certificate"},
    {"--tls-key", "PEM", 0, "its private key"},
    {"--credentials", "FILE", 0, "mailbox owners' password hashes (voicemail add-user)"},
    {"--register", NULL, CLI_FLAG, "register --aor at --proxy"},
    {"--proxy", "SIPURI", 0, "the provider"},
    {"--aor", "SIPURI", 0, "the store's own address of record"},
    {"--max-seconds", "N", 0, "longest message (default 300)"},
    {NULL, NULL, 0, NULL},
};
const struct cli_opt cli_voicemail_add_user_opts[] = {
    {"--credentials", "FILE", 0, "the credentials file (created mode 0600)"},
    {"--uri", "URI", 0, "the mailbox owner"},
    {"--password-file", "FILE", 0, "the password (first line; mode 0600)"},
    {NULL, NULL, 0, NULL},
};

#define OPT_OWNER                                                                           \
    {"--keystore", "DIR", CLI_REQUIRED, "the device keystore (its user owns the mailbox)"},  \
    {"--passphrase-file", "FILE", 0, "keystore passphrase (mode 0600; default: ask)"},      \
    {"--server", "URL", CLI_REQUIRED, "the voicemail store, https://HOST:PORT"},             \
    {"--cacert", "PEM", 0, "trust anchors for the store (default: the system's)"},          \
    {"--password-file", "FILE", CLI_REQUIRED, "the mailbox password (mode 0600)"}

const struct cli_opt cli_voicemail_list_opts[] = {
    OPT_OWNER,
    {"--json", NULL, CLI_FLAG, "the listing as JSON lines"},
    {NULL, NULL, 0, NULL},
};
const struct cli_opt cli_voicemail_fetch_opts[] = {
    OPT_OWNER,
    {"--id", "ID", CLI_REQUIRED, "the message (from voicemail list)"},
    {"--out", "FILE", CLI_REQUIRED, "write the message's capture here (mode 0600)"},
    {NULL, NULL, 0, NULL},
};
const struct cli_opt cli_voicemail_play_opts[] = {
    {"--keystore", "DIR", CLI_REQUIRED, "the device keystore"},
    {"--passphrase-file", "FILE", 0, "keystore passphrase (mode 0600; default: ask)"},
    {"--server", "URL", 0, "the voicemail store (with --id)"},
    {"--cacert", "PEM", 0, "trust anchors for the store"},
    {"--password-file", "FILE", 0, "the mailbox password (with --server)"},
    {"--id", "ID", 0, "the message to fetch and play"},
    {"--in", "FILE", 0, "a message fetched before (instead of --server and --id)"},
    {"--out", "WAV", CLI_REQUIRED, "write what the caller said here"},
    {"--now", "TIME", 0, "the current time (default: the clock)"},
    {"--json", NULL, CLI_FLAG, "the result as JSON"},
    {NULL, NULL, 0, NULL},
};
const struct cli_opt cli_voicemail_delete_opts[] = {
    OPT_OWNER,
    {"--id", "ID", CLI_REQUIRED, "the message to delete"},
    {NULL, NULL, 0, NULL},
};

/* ---- the store program -------------------------------------------------------------- */

ms_err cli_voicemail_serve(const struct cli_args *args)
{
    (void)args; /* main() hands `voicemail serve` to mikeysakke-voicemail before parsing */
    return MS_ERR_USAGE;
}

ms_err cli_voicemail_add_user(const struct cli_args *args)
{
    (void)args;
    return MS_ERR_USAGE;
}

/* ---- the owner's side ----------------------------------------------------------------- */

static uint64_t fixed_now;
static uint64_t fixed_clock(void *ctx)
{
    (void)ctx;
    return fixed_now;
}

typedef struct owner {
    ms_call_keys *keys;
    char uri[256];
    char password[CLI_PASSPHRASE_MAX];
    ms_vm_server srv;
    char played[4200];
} owner;

static void owner_close(owner *o)
{
    ms_call_keys_free(o->keys);
    ms_wipe(o->password, sizeof o->password);
}

/* Opens the keystore (stored-message mode) and, when the server is named, reads the
 * mailbox password. */
static ms_err owner_open(owner *o, const struct cli_args *args, int need_server)
{
    memset(o, 0, sizeof *o);
    char pass[CLI_PASSPHRASE_MAX];
    size_t pass_len = 0, pw_len = 0;
    ms_err err = cli_read_passphrase(cli_get(args, "--passphrase-file"), 0, pass, sizeof pass,
                                     &pass_len);
    if (err != MS_OK)
        return err;
    const char *dir = cli_get(args, "--keystore");
    ms_call_keys_options ko = {.mode = MS_CALL_KEYS_STORED, .profile = MS_MIKEY_PROFILE_PCK};
    const struct cli_opt *opts = args->cmd->opts;
    for (size_t i = 0; opts[i].name != NULL; i++)
        if (strcmp(opts[i].name, "--now") == 0 && args->val[i] != NULL) {
            if ((err = cli_time_arg("--now", args->val[i], &fixed_now)) != MS_OK) {
                ms_wipe(pass, sizeof pass);
                return err;
            }
            ko.clock = fixed_clock;
        }
    char detail[512] = "";
    err = ms_call_keys_open(&o->keys, dir, pass, pass_len, &ko, detail, sizeof detail);
    ms_wipe(pass, sizeof pass);
    if (err != MS_OK)
        return cli_fail(err, "%s", detail[0] ? detail : dir);
    snprintf(o->uri, sizeof o->uri, "%s", ms_call_keys_own_uri(o->keys));
    snprintf(o->played, sizeof o->played, "%s/voicemail-played", dir);
    if (!need_server)
        return MS_OK;
    const char *pwfile = cli_get(args, "--password-file");
    if (cli_get(args, "--server") == NULL || pwfile == NULL)
        return cli_fail(MS_ERR_USAGE, "--server and --password-file name the voicemail store");
    if ((err = cli_read_secret_line("--password-file", pwfile, o->password,
                                    sizeof o->password, &pw_len)) != MS_OK)
        return err;
    o->srv.url = cli_get(args, "--server");
    o->srv.cacert = cli_get(args, "--cacert");
    o->srv.user_uri = o->uri;
    o->srv.password = o->password;
    return MS_OK;
}

static ms_err hold_periods(owner *o, const ms_vm_message *msgs, size_t n)
{
    ms_keystore *ks = ms_call_keys_keystore(o->keys);
    ms_keystore_identity id;
    ms_err err = ms_keystore_identity_get(ks, &id);
    if (err != MS_OK)
        return cli_fail(err, "the keystore's identity");
    uint64_t periods[MS_KEYSTORE_MAX_HOLDS];
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t p;
        if (ms_key_period(&id.scheme, &p, msgs[i].time + MS_NTP_UNIX_OFFSET) != MS_OK)
            continue;
        size_t j = 0;
        while (j < np && periods[j] != p)
            j++;
        if (j == np && np < MS_KEYSTORE_MAX_HOLDS)
            periods[np++] = p;
    }
    char detail[256] = "";
    if ((err = ms_keystore_set_holds(ks, periods, np, detail, sizeof detail)) != MS_OK)
        return cli_fail(err, "keeping the keys of waiting messages: %s", detail);
    return MS_OK;
}

ms_err cli_voicemail_list(const struct cli_args *args)
{
    owner o;
    ms_err err = owner_open(&o, args, 1);
    if (err != MS_OK) {
        owner_close(&o);
        return err;
    }
    ms_vm_message *msgs = calloc(MAX_MESSAGES, sizeof *msgs);
    size_t n = 0;
    char detail[512] = "";
    if (msgs == NULL)
        err = cli_fail(MS_ERR_NOMEM, "the listing");
    else if ((err = ms_vm_list(&o.srv, msgs, MAX_MESSAGES, &n, detail, sizeof detail)) !=
             MS_OK)
        err = cli_fail(err, "%s", detail[0] ? detail : "listing the mailbox");
    /* Keep the keys of every period a waiting message needs, past their expiry. */
    if (err == MS_OK)
        err = hold_periods(&o, msgs, n < MAX_MESSAGES ? n : MAX_MESSAGES);
    int json = cli_get(args, "--json") != NULL;
    for (size_t i = 0; err == MS_OK && i < n; i++) {
        char when[MS_TIME_BUF];
        ms_time_format_unix(when, (int64_t)msgs[i].time);
        if (json)
            printf("{\"id\":\"%s\",\"time\":\"%s\",\"duration_ms\":%u,\"size\":%llu,"
                   "\"caller_claimed\":\"%s\"}\n",
                   msgs[i].id, when, (unsigned)msgs[i].duration_ms,
                   (unsigned long long)msgs[i].size, msgs[i].caller);
        else
            printf("%s %s %5.1f s from %s (as the provider said; play verifies it)\n",
                   msgs[i].id, when, msgs[i].duration_ms / 1000.0, msgs[i].caller);
    }
    if (err == MS_OK && !json)
        printf("%zu message%s for %s\n", n, n == 1 ? "" : "s", o.uri);
    free(msgs);
    owner_close(&o);
    return err;
}

ms_err cli_voicemail_fetch(const struct cli_args *args)
{
    owner o;
    ms_err err = owner_open(&o, args, 1);
    char detail[512] = "";
    if (err == MS_OK && (err = ms_vm_fetch(&o.srv, cli_get(args, "--id"), cli_get(args, "--out"),
                                           detail, sizeof detail)) != MS_OK)
        err = cli_fail(err, "%s", detail[0] ? detail : "fetching the message");
    owner_close(&o);
    return err;
}

ms_err cli_voicemail_delete(const struct cli_args *args)
{
    owner o;
    ms_err err = owner_open(&o, args, 1);
    char detail[512] = "";
    if (err == MS_OK &&
        (err = ms_vm_delete(&o.srv, cli_get(args, "--id"), detail, sizeof detail)) != MS_OK)
        err = cli_fail(err, "%s", detail[0] ? detail : "deleting the message");
    owner_close(&o);
    return err;
}

ms_err cli_voicemail_play(const struct cli_args *args)
{
    const char *in = cli_get(args, "--in"), *id = cli_get(args, "--id");
    if ((in == NULL) == (id == NULL))
        return cli_fail(MS_ERR_USAGE, "give --in FILE, or --server, --password-file and --id");
    owner o;
    ms_err err = owner_open(&o, args, id != NULL);
    char detail[512] = "", fetched[4200] = "";
    const char *out = cli_get(args, "--out");
    if (err == MS_OK && id != NULL) {
        snprintf(fetched, sizeof fetched, "%s.pcap.tmp", out);
        if ((err = ms_vm_fetch(&o.srv, id, fetched, detail, sizeof detail)) != MS_OK)
            err = cli_fail(err, "%s", detail[0] ? detail : "fetching the message");
        in = fetched;
    }
    ms_vm_play_result r;
    if (err == MS_OK &&
        (err = ms_vm_play(o.keys, in, out, o.played, &r, detail, sizeof detail)) != MS_OK)
        err = cli_fail(err, "%s", detail[0] ? detail : "playing the message");
    if (fetched[0])
        unlink(fetched);
    if (err == MS_OK) {
        if (cli_get(args, "--json") != NULL)
            printf("{\"caller\":\"%s\",\"caller_claimed\":\"%s\",\"period\":%llu,"
                   "\"pck_id\":\"%08X\",\"frames\":%llu,\"failed_auth\":%llu,"
                   "\"played_before\":%s}\n",
                   r.caller, r.caller_claimed, (unsigned long long)r.period_no,
                   (unsigned)r.key_id, (unsigned long long)r.frames,
                   (unsigned long long)r.failed_auth, r.played_before ? "true" : "false");
        else
            printf("voicemail from %s (verified by MIKEY-SAKKE), key period %llu, PCK-ID "
                   "%08X: %.1f s written to %s%s\n",
                   r.caller, (unsigned long long)r.period_no, (unsigned)r.key_id,
                   r.frames * 0.02, out,
                   r.played_before ? "\nWARNING: this message was played before on this "
                                     "device: it came again (a replay?)"
                                   : "");
    }
    owner_close(&o);
    return err;
}
