/*
 * The `call` subcommands: place and answer end-to-end encrypted calls (include/
 * mikeysakke/call.h). Each call prints one line per event: who the peer is as MIKEY
 * verified it, the key period, the PCK-ID, the SRTP suite, or why a call was refused.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call/group_call.h"
#include "call_cli.h"
#include "mikeysakke/call.h"
#include "mikeysakke/crypto.h"
#include "user_cli.h"

#define OPT_COMMON                                                                          \
    {"--keystore", "DIR", CLI_REQUIRED, "the device keystore"},                             \
    {"--passphrase-file", "FILE", 0, "keystore passphrase (mode 0600; default: ask)"},      \
    {"--uri", "SIPURI", 0, "our address of record (default: the keystore's user URI)"},     \
    {"--proxy", "SIPURI", 0, "outbound proxy, e.g. sip:127.0.0.1:5060;transport=tcp"},      \
    {"--register", NULL, CLI_FLAG, "register at the proxy first"},                          \
    {"--auth-user", "USER", 0, "digest user name for the provider"},                        \
    {"--password-file", "FILE", 0, "digest password (mode 0600)"},                          \
    {"--transport", "tcp|tls|udp", 0, "SIP transport (default tcp)"},                       \
    {"--ca-file", "FILE", 0, "trust anchors for SIP over TLS"},                             \
    {"--play", "WAV", 0, "send this 48 kHz mono WAV (neither --play nor --record: the sound card)"}, \
    {"--record", "WAV", 0, "write what the other side says here"},                         \
    {"--device", "ALSA", 0, "sound card device (default: default)"},                        \
    {"--max-seconds", "N", 0, "hang up after N seconds (default 3600)"},                    \
    {"--json", NULL, CLI_FLAG, "one JSON object per event"}

const struct cli_opt cli_call_dial_opts[] = {
    OPT_COMMON,
    {"--to", "URI", 0, "whom to call (SIP URI; tel: or ;user=phone in a tel community)"},
    {"--group", "URI", 0, "join this group's call at the relay instead (no --to)"},
    {"--gmk-id", "HEX", 0, "with --group: send under this stored group key (default: the "
                          "one in force)"},
    {"--record-dir", "DIR", 0, "with --group: also one WAV per member heard"},
    {"--start-after", "N", 0, "with --group: send once N members are heard (default 0)"},
    {"--roc-every", "R", 0, "with --group: carry the ROC when SEQ % R == 0 (default 1)"},
    {"--listen", "IP:PORT", 0, "local SIP address (default 127.0.0.1, any port)"},
    {"--suite", "NAME", 0, "SRTP suite: AEAD_AES_128_GCM (default), AES_CM_128_HMAC_SHA1_80"},
    {"--no-sakke-to-self", NULL, CLI_FLAG, "leave out SAKKE-to-self (auditors cannot open "
                                            "this call with our key)"},
    {"--ring-seconds", "N", 0, "give up when unanswered after N seconds (default 30)"},
    {NULL, NULL, 0, NULL},
};

const struct cli_opt cli_call_answer_opts[] = {
    OPT_COMMON,
    {"--listen", "IP:PORT", 0, "wait for calls here (default 127.0.0.1, any port)"},
    {"--calls", "N", 0, "return after N calls (default: run until interrupted)"},
    {"--gcm-only", NULL, CLI_FLAG, "refuse offers of AES_CM_128_HMAC_SHA1_80"},
    {NULL, NULL, 0, NULL},
};

static int json_output;

static const char *event_name(ms_call_event_type t)
{
    switch (t) {
    case MS_CALL_EV_REGISTERED: return "registered";
    case MS_CALL_EV_ESTABLISHED: return "established";
    case MS_CALL_EV_REFUSED: return "refused";
    case MS_CALL_EV_REJECTED: return "rejected";
    case MS_CALL_EV_ENDED: return "ended";
    }
    return "event";
}

/* JSON string body: the values printed are URIs and reasons, so only quote, backslash
 * and control characters need escaping. */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void print_event(void *arg, const ms_call_event *ev)
{
    (void)arg;
    if (json_output) {
        printf("{\"event\":\"%s\",\"incoming\":%s,\"peer\":", event_name(ev->type),
               ev->incoming ? "true" : "false");
        json_str(ev->peer);
        printf(",\"call_id\":");
        json_str(ev->call_id);
        printf(",\"period\":%llu,\"pck_id\":\"%08X\",\"suite\":\"%s\",\"sip_status\":%d,"
               "\"warning\":",
               (unsigned long long)ev->period_no, (unsigned)ev->key_id, ev->suite,
               ev->sip_status);
        json_str(ev->warning);
        printf(",\"error\":\"%s\",\"packets_sent\":%llu,\"packets_received\":%llu,"
               "\"packets_auth_failed\":%llu,\"packets_replayed\":%llu,"
               "\"frames_recorded\":%llu,\"setup_us\":%llu,\"mikey_us\":%llu}\n",
               ms_errname(ev->err), (unsigned long long)ev->packets_sent,
               (unsigned long long)ev->packets_received,
               (unsigned long long)ev->packets_auth_failed,
               (unsigned long long)ev->packets_replayed,
               (unsigned long long)ev->frames_recorded, (unsigned long long)ev->setup_us,
               (unsigned long long)ev->mikey_us);
        fflush(stdout);
        return;
    }
    switch (ev->type) {
    case MS_CALL_EV_REGISTERED:
        if (ev->sip_status == 200)
            printf("registered %s\n", ev->peer);
        else
            printf("registration failed: %d %s\n", ev->sip_status, ev->warning);
        break;
    case MS_CALL_EV_ESTABLISHED:
        printf("call %s %s: verified by MIKEY-SAKKE, key period %llu, PCK-ID %08X, %s\n",
               ev->incoming ? "from" : "to", ev->peer, (unsigned long long)ev->period_no,
               (unsigned)ev->key_id, ev->suite);
        break;
    case MS_CALL_EV_REFUSED:
        printf("refused call from %s: %d, %s\n", ev->peer, ev->sip_status, ev->warning);
        break;
    case MS_CALL_EV_REJECTED:
        printf("call to %s refused: %d%s%s\n", ev->peer, ev->sip_status,
               ev->warning[0] ? ", " : "", ev->warning);
        break;
    case MS_CALL_EV_ENDED:
        printf("call %s %s ended: %llu packets sent, %llu received, %llu failed "
               "authentication, %llu replayed\n",
               ev->incoming ? "from" : "to", ev->peer, (unsigned long long)ev->packets_sent,
               (unsigned long long)ev->packets_received,
               (unsigned long long)ev->packets_auth_failed,
               (unsigned long long)ev->packets_replayed);
        break;
    }
    fflush(stdout);
}

static ms_err parse_u32(const char *opt, const char *s, uint32_t *out)
{
    if (s == NULL)
        return MS_OK;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == 0 || *end != 0 || v > 1000000)
        return cli_fail(MS_ERR_USAGE, "%s %s: not a number from 0 to 1000000", opt, s);
    *out = (uint32_t)v;
    return MS_OK;
}

static const char *group_event_name(ms_group_call_event_type t)
{
    switch (t) {
    case MS_GROUP_EV_REGISTERED: return "registered";
    case MS_GROUP_EV_JOINED: return "joined";
    case MS_GROUP_EV_HEARD: return "heard";
    case MS_GROUP_EV_SENDING: return "sending";
    case MS_GROUP_EV_BYE: return "bye";
    case MS_GROUP_EV_REJECTED: return "rejected";
    case MS_GROUP_EV_LEFT: return "left";
    }
    return "event";
}

static void print_group_event(void *arg, const ms_group_call_event *ev)
{
    (void)arg;
    if (json_output) {
        printf("{\"event\":\"%s\",\"group\":", group_event_name(ev->type));
        json_str(ev->group);
        printf(",\"peer\":");
        json_str(ev->peer);
        printf(",\"gmk_id\":\"%08X\",\"other_gmk_id\":\"%08X\",\"ssrc\":\"%08X\","
               "\"suite\":\"%s\",\"sip_status\":%d,\"warning\":",
               (unsigned)ev->gmk_id, (unsigned)ev->other_gmk_id, (unsigned)ev->ssrc, ev->suite,
               ev->sip_status);
        json_str(ev->warning);
        printf(",\"members_heard\":%u,\"packets_sent\":%llu,\"packets_received\":%llu,"
               "\"packets_auth_failed\":%llu,\"packets_replayed\":%llu,"
               "\"packets_other_key\":%llu,\"frames_decoded\":%llu}\n",
               (unsigned)ev->members_heard, (unsigned long long)ev->packets_sent,
               (unsigned long long)ev->packets_received,
               (unsigned long long)ev->packets_auth_failed,
               (unsigned long long)ev->packets_replayed,
               (unsigned long long)ev->packets_other_key,
               (unsigned long long)ev->frames_decoded);
        fflush(stdout);
        return;
    }
    switch (ev->type) {
    case MS_GROUP_EV_REGISTERED:
        if (ev->sip_status == 200)
            printf("registered %s\n", ev->peer);
        else
            printf("registration failed: %d %s\n", ev->sip_status, ev->warning);
        break;
    case MS_GROUP_EV_JOINED:
        printf("joined %s (relay media %s), GMK-ID %08X, %s\n", ev->group, ev->peer,
               (unsigned)ev->gmk_id, ev->suite);
        break;
    case MS_GROUP_EV_HEARD:
        printf("hearing %s\n", ev->peer);
        break;
    case MS_GROUP_EV_SENDING:
        printf("sending to %s\n", ev->group);
        break;
    case MS_GROUP_EV_BYE:
        printf("%s has finished\n", ev->peer);
        break;
    case MS_GROUP_EV_REJECTED:
        printf("joining %s refused: %d%s%s\n", ev->group, ev->sip_status,
               ev->warning[0] ? ", " : "", ev->warning);
        break;
    case MS_GROUP_EV_LEFT:
        printf("left %s: %llu packets sent, %llu received from %u members, %llu failed "
               "authentication, %llu replayed\n",
               ev->group, (unsigned long long)ev->packets_sent,
               (unsigned long long)ev->packets_received, (unsigned)ev->members_heard,
               (unsigned long long)ev->packets_auth_failed,
               (unsigned long long)ev->packets_replayed);
        break;
    }
    fflush(stdout);
}

static ms_phone *running_phone;
static volatile int group_stop;

static void on_signal(int sig)
{
    (void)sig;
    if (running_phone != NULL)
        ms_phone_stop(running_phone);
    group_stop = 1;
}

/* `call dial --group`: the member side of a group call (src/call/group_call.c). */
static ms_err run_group(const struct cli_args *args, const ms_group_call_config *base)
{
    ms_group_call_config cfg = *base;
    ms_err err;
    cfg.group_uri = cli_get(args, "--group");
    cfg.record_dir = cli_get(args, "--record-dir");
    cfg.suite = cli_get(args, "--suite");
    cfg.event = print_group_event;
    cfg.stop_flag = &group_stop;
    if (cli_get(args, "--to") != NULL)
        return cli_fail(MS_ERR_USAGE, "--to and --group exclude each other");
    const char *gmk = cli_get(args, "--gmk-id");
    if (gmk != NULL) {
        char *end;
        unsigned long long v = strtoull(gmk, &end, 16);
        if (*gmk == 0 || *gmk == '-' || *end != 0 || v == 0 || v > UINT32_MAX)
            return cli_fail(MS_ERR_USAGE, "--gmk-id %s: not 1 to 8 hex digits (not 0)", gmk);
        cfg.gmk_id = (uint32_t)v;
    }
    uint32_t roc_every = 1;
    if ((err = parse_u32("--start-after", cli_get(args, "--start-after"), &cfg.start_after)) ||
        (err = parse_u32("--roc-every", cli_get(args, "--roc-every"), &roc_every)))
        return err;
    if (roc_every == 0 || roc_every > 65535)
        return cli_fail(MS_ERR_USAGE, "--roc-every wants a number from 1 to 65535");
    cfg.roc_every = (uint16_t)roc_every;
    char detail[512] = "";
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    err = ms_group_call_run(&cfg, detail, sizeof detail);
    if (err != MS_OK)
        return cli_fail(err, "%s", detail[0] ? detail : "the group call failed");
    return MS_OK;
}

static ms_err run(const struct cli_args *args, int dial)
{
    json_output = cli_get(args, "--json") != NULL;
    ms_phone_config cfg = {0};
    cfg.keystore_dir = cli_get(args, "--keystore");
    cfg.sip_uri = cli_get(args, "--uri");
    cfg.proxy = cli_get(args, "--proxy");
    cfg.listen = cli_get(args, "--listen");
    cfg.transport = cli_get(args, "--transport");
    cfg.do_register = cli_get(args, "--register") != NULL;
    cfg.auth_user = cli_get(args, "--auth-user");
    cfg.tls_ca_file = cli_get(args, "--ca-file");
    cfg.play_wav = cli_get(args, "--play");
    cfg.record_wav = cli_get(args, "--record");
    cfg.sound_device = cli_get(args, "--device");
    cfg.event = print_event;
    ms_err err;
    if ((err = parse_u32("--max-seconds", cli_get(args, "--max-seconds"), &cfg.max_seconds)))
        return err;
    if (dial) {
        cfg.suite = cli_get(args, "--suite");
        cfg.no_sakke_to_self = cli_get(args, "--no-sakke-to-self") != NULL;
        if ((err = parse_u32("--ring-seconds", cli_get(args, "--ring-seconds"),
                             &cfg.ring_timeout_s)))
            return err;
    } else {
        cfg.gcm_only = cli_get(args, "--gcm-only") != NULL;
        if ((err = parse_u32("--calls", cli_get(args, "--calls"), &cfg.answer_calls)))
            return err;
    }
    if (cfg.do_register && cfg.proxy == NULL)
        return cli_fail(MS_ERR_USAGE, "--register needs --proxy");
    bool group = dial && cli_get(args, "--group") != NULL;
    if (dial && !group && cli_get(args, "--to") == NULL)
        return cli_fail(MS_ERR_USAGE, "call dial needs --to or --group");
    if (!dial && !cfg.do_register && cfg.listen == NULL)
        return cli_fail(MS_ERR_USAGE, "call answer needs --listen or --register --proxy");

    char pass[CLI_PASSPHRASE_MAX], password[CLI_PASSPHRASE_MAX];
    size_t pass_len = 0, password_len = 0;
    if ((err = cli_read_passphrase(cli_get(args, "--passphrase-file"), 0, pass, sizeof pass,
                                   &pass_len)) != MS_OK)
        return err;
    const char *pwfile = cli_get(args, "--password-file");
    if (pwfile != NULL) {
        if ((err = cli_read_secret_line("--password-file", pwfile, password, sizeof password,
                                        &password_len)) != MS_OK) {
            ms_wipe(pass, sizeof pass);
            return err;
        }
        cfg.password = password;
    }
    cfg.passphrase = pass;
    cfg.passphrase_len = pass_len;
    if (group) {
        ms_group_call_config gc = {.keystore_dir = cfg.keystore_dir,
                                   .passphrase = pass,
                                   .passphrase_len = pass_len,
                                   .own_uri = cfg.sip_uri,
                                   .proxy = cfg.proxy,
                                   .listen = cfg.listen,
                                   .transport = cfg.transport,
                                   .auth_user = cfg.auth_user,
                                   .password = cfg.password,
                                   .tls_ca_file = cfg.tls_ca_file,
                                   .do_register = cfg.do_register,
                                   .play_wav = cfg.play_wav,
                                   .record_wav = cfg.record_wav,
                                   .sound_device = cfg.sound_device,
                                   .max_seconds = cfg.max_seconds,
                                   .ring_timeout_s = cfg.ring_timeout_s};
        err = run_group(args, &gc);
        ms_wipe(pass, sizeof pass);
        ms_wipe(password, sizeof password);
        return err;
    }

    ms_phone *phone = NULL;
    char detail[512] = "";
    err = ms_phone_new(&phone, &cfg, detail, sizeof detail);
    ms_wipe(pass, sizeof pass);
    ms_wipe(password, sizeof password);
    if (err != MS_OK)
        return cli_fail(err, "%s", detail[0] ? detail : "cannot start the phone");
    running_phone = phone;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    detail[0] = 0;
    if (dial)
        err = ms_phone_dial(phone, cli_get(args, "--to"), detail, sizeof detail);
    else
        err = ms_phone_answer(phone, detail, sizeof detail);
    running_phone = NULL;
    ms_phone_free(phone);
    if (err != MS_OK)
        return cli_fail(err, "%s", detail[0] ? detail : (dial ? "the call failed" : "answering failed"));
    return MS_OK;
}

ms_err cli_call_dial(const struct cli_args *args)
{
    return run(args, 1);
}

ms_err cli_call_answer(const struct cli_args *args)
{
    return run(args, 0);
}
