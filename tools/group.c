/*
 * The `group` subcommands (include/mikeysakke/group.h): the group management server
 * (create, add, remove, rekey, send, show) and the member that receives group keys
 * (join). The GMS delivers each member's GMK I_MESSAGE and the signed roster as one SIP
 * MESSAGE through the provider; every change of the members is delivered at once when
 * --proxy is given (else `group send` does it later).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mikeysakke/client.h"
#include "mikeysakke/crypto.h"
#include "mikeysakke/group.h"
#include "group_cli.h"
#include "sip/sip.h"
#include "user_cli.h"

#define MAX_SECONDS_DEFAULT 30

#define OPT_GMS                                                                             \
    {"--name", "URI", CLI_REQUIRED, "the group (its URI, the MCPTT group ID)"},             \
    {"--gms-keystore", "DIR", CLI_REQUIRED, "the GMS's keystore (its identity and keys)"},  \
    {"--passphrase-file", "FILE", 0, "keystore passphrase (mode 0600; default: ask)"}
#define OPT_SIP                                                                             \
    {"--uri", "SIPURI", 0, "our SIP address (default: the keystore's user URI)"},           \
    {"--transport", "tcp|tls|udp", 0, "SIP transport (default tcp)"},                       \
    {"--auth-user", "USER", 0, "digest user name for the provider"},                        \
    {"--password-file", "FILE", 0, "digest password (mode 0600)"},                          \
    {"--ca-file", "FILE", 0, "trust anchors for SIP over TLS"}
#define OPT_SEND                                                                            \
    {"--proxy", "SIPURI", 0, "deliver through this proxy now (else: later, group send)"},   \
    OPT_SIP,                                                                                \
    {"--max-seconds", "N", 0, "give up on answers after N seconds (default 30)"},           \
    {"--threads", "N", 0, "build the messages on N threads (default: one per CPU)"}
#define OPT_KEYTIME                                                                         \
    {"--activation-delay", "SECONDS", 0, "the new key takes over this long from now (default 0)"}, \
    {"--lifetime", "SECONDS", 0, "the key expires this long after activation (default 30 days)"}

const struct cli_opt cli_group_create_opts[] = {
    OPT_GMS,
    {"--members", "URI,...", CLI_REQUIRED, "the members, comma separated"},
    OPT_KEYTIME,
    OPT_SEND,
    {NULL, NULL, 0, NULL},
};
const struct cli_opt cli_group_add_opts[] = {
    OPT_GMS,
    {"--members", "URI,...", CLI_REQUIRED, "who joins (they receive the current key)"},
    OPT_SEND,
    {NULL, NULL, 0, NULL},
};
const struct cli_opt cli_group_remove_opts[] = {
    OPT_GMS,
    {"--members", "URI,...", CLI_REQUIRED, "who leaves (a new key is made, not sent to them)"},
    OPT_KEYTIME,
    OPT_SEND,
    {NULL, NULL, 0, NULL},
};
const struct cli_opt cli_group_rekey_opts[] = {
    OPT_GMS,
    OPT_KEYTIME,
    OPT_SEND,
    {NULL, NULL, 0, NULL},
};
const struct cli_opt cli_group_send_opts[] = {
    OPT_GMS,
    OPT_SEND,
    {NULL, NULL, 0, NULL},
};
const struct cli_opt cli_group_show_opts[] = {
    OPT_GMS,
    {NULL, NULL, 0, NULL},
};
const struct cli_opt cli_group_join_opts[] = {
    {"--keystore", "DIR", CLI_REQUIRED, "the member's keystore"},
    {"--passphrase-file", "FILE", 0, "keystore passphrase (mode 0600; default: ask)"},
    {"--proxy", "SIPURI", 0, "the provider's proxy (and registrar)"},
    OPT_SIP,
    {"--register", NULL, CLI_FLAG, "register at the proxy first"},
    {"--max-seconds", "N", 0, "give up after N seconds (default: wait)"},
    {"--listen", "IP:PORT", 0, "local SIP address (default 127.0.0.1, any port)"},
    {"--messages", "N", 0, "return after N group keys were accepted (default 1; 0: until "
                          "interrupted or --max-seconds)"},
    {NULL, NULL, 0, NULL},
};

/* ---- shared ------------------------------------------------------------------------------ */

static ms_err parse_uint(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
    if (s == NULL)
        return MS_OK;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == 0 || *s == '-' || *end != 0 || v > max)
        return cli_fail(MS_ERR_USAGE, "%s %s: not a number from 0 to %llu", opt, s,
                        (unsigned long long)max);
    *out = v;
    return MS_OK;
}

/* Splits a comma list in place. */
static ms_err split_members(char *list, const char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    const char **v = calloc(cap, sizeof *v);
    if (v == NULL)
        return cli_fail(MS_ERR_NOMEM, "--members");
    char *save = NULL;
    for (char *f = strtok_r(list, ",", &save); f != NULL; f = strtok_r(NULL, ",", &save))
        v[(*n)++] = f;
    if (*n == 0) {
        free(v);
        return cli_fail(MS_ERR_USAGE, "--members names no member");
    }
    *out = v;
    return MS_OK;
}

static ms_err read_pass(const struct cli_args *args, char *pass, size_t cap, size_t *len)
{
    return cli_read_passphrase(cli_get(args, "--passphrase-file"), 0, pass, cap, len);
}

static void iso_time(char out[32], uint64_t ntp_seconds)
{
    if (ntp_seconds == 0) {
        snprintf(out, 32, "-");
        return;
    }
    cli_time_format(out, ntp_seconds << 32);
}

static volatile sig_atomic_t interrupted;
static ms_sip *running_sip;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
    if (running_sip != NULL)
        ms_sip_stop(running_sip);
}

static void on_deadline(void *arg)
{
    ms_sip_stop(arg);
}

/* The SIP agent of either side, from the common options. */
static ms_err sip_start(ms_sip **out, const struct cli_args *args, const char *own_uri,
                        bool do_register, const char *listen, const ms_sip_handlers *h,
                        void *arg)
{
    char password[CLI_PASSPHRASE_MAX];
    size_t password_len = 0;
    ms_sip_config cfg = {0};
    cfg.local_uri = cli_get(args, "--uri") ? cli_get(args, "--uri") : own_uri;
    cfg.proxy = cli_get(args, "--proxy");
    cfg.transport = cli_get(args, "--transport");
    cfg.tls_ca_file = cli_get(args, "--ca-file");
    cfg.auth_user = cli_get(args, "--auth-user");
    cfg.do_register = do_register;
    cfg.listen = listen;
    const char *pwfile = cli_get(args, "--password-file");
    ms_err err;
    if (pwfile != NULL) {
        if ((err = cli_read_secret_line("--password-file", pwfile, password, sizeof password,
                                        &password_len)) != MS_OK)
            return err;
        cfg.password = password;
    }
    char detail[256] = "";
    err = ms_sip_new(out, &cfg, h, arg, detail, sizeof detail);
    ms_wipe(password, sizeof password);
    if (err != MS_OK)
        return cli_fail(err, "%s", detail[0] ? detail : "cannot start SIP");
    return MS_OK;
}

/* ---- the GMS ------------------------------------------------------------------------------ */

typedef struct send_state {
    ms_sip *sip;
    size_t pending, failed;
    const ms_group_delivery *d;
    uint32_t gmk_id;
} send_state;

typedef struct send_one {
    send_state *st;
    size_t i;
} send_one;

static void on_sent(void *arg, int status, const char *reason)
{
    send_one *one = arg;
    send_state *st = one->st;
    if (status >= 200 && status < 300) {
        printf("delivered GMK-ID %08X to %s: %d %s\n", (unsigned)st->gmk_id,
               st->d[one->i].member, status, reason);
    } else {
        printf("not delivered to %s: %d %s\n", st->d[one->i].member, status, reason);
        st->failed++;
    }
    fflush(stdout);
    if (--st->pending == 0)
        ms_sip_stop(st->sip);
}

/* Build the current key's messages for every member and, with --proxy, send them. */
static ms_err deliver(const struct cli_args *args, ms_gms *gms, const char *group,
                      const char *gms_uri)
{
    uint64_t threads = 0, max_seconds = MAX_SECONDS_DEFAULT;
    ms_err err;
    if ((err = parse_uint("--threads", cli_get(args, "--threads"), 64, &threads)) != MS_OK ||
        (err = parse_uint("--max-seconds", cli_get(args, "--max-seconds"), 86400,
                          &max_seconds)) != MS_OK)
        return err;
    ms_gms_group_info info;
    char detail[256] = "";
    if ((err = ms_gms_show(gms, &info, NULL, group, detail, sizeof detail)) != MS_OK)
        return cli_fail(err, "%s", detail);
    char act[32], exp[32];
    iso_time(act, info.keys[0].activation);
    iso_time(exp, info.keys[0].expiry);
    printf("group %s: GMK-ID %08X, activation %s, expiry %s, %zu members, generation %llu\n",
           group, (unsigned)info.keys[0].gmk_id, act, exp, info.n_members,
           (unsigned long long)info.generation);
    if (cli_get(args, "--proxy") == NULL) {
        printf("not delivered (no --proxy): run group send\n");
        fflush(stdout);
        return MS_OK;
    }
    ms_group_delivery *d = NULL;
    size_t n = 0;
    if ((err = ms_gms_deliveries(gms, &d, &n, group, (unsigned)threads, detail,
                                 sizeof detail)) != MS_OK)
        return cli_fail(err, "%s", detail);

    send_state st = {.d = d, .gmk_id = info.keys[0].gmk_id};
    send_one *ones = calloc(n, sizeof *ones);
    ms_sip_handlers h = {0};
    if (ones == NULL) {
        ms_group_deliveries_free(d, n);
        return cli_fail(MS_ERR_NOMEM, "delivery");
    }
    err = sip_start(&st.sip, args, gms_uri, false, NULL, &h, &st);
    for (size_t i = 0; i < n && err == MS_OK; i++) {
        ones[i] = (send_one){&st, i};
        err = ms_sip_message(st.sip, d[i].member, d[i].content_type, d[i].body, d[i].body_len,
                             on_sent, &ones[i]);
        if (err != MS_OK)
            cli_fail(err, "cannot send the MESSAGE to %s", d[i].member);
        else
            st.pending++;
    }
    ms_sip_timer *deadline = NULL;
    if (err == MS_OK && st.pending > 0 &&
        ms_sip_timer_start(st.sip, &deadline, max_seconds * 1000, on_deadline, st.sip) == MS_OK) {
        running_sip = st.sip;
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        err = ms_sip_run(st.sip);
        running_sip = NULL;
    }
    ms_sip_timer_cancel(deadline);
    size_t unanswered = st.pending;
    ms_sip_free(st.sip); /* frees what is still unanswered: no callback follows */
    free(ones);
    ms_group_deliveries_free(d, n);
    if (err != MS_OK)
        return err;
    if (unanswered > 0 || st.failed > 0)
        return cli_fail(MS_ERR_SIP, "%zu of %zu members were not reached (%zu unanswered)",
                        st.failed + unanswered, n, unanswered);
    return MS_OK;
}

typedef enum { OP_CREATE, OP_ADD, OP_REMOVE, OP_REKEY, OP_SEND, OP_SHOW } gms_op;

static ms_err gms_run(const struct cli_args *args, gms_op op)
{
    const char *group = cli_get(args, "--name");
    uint64_t delay = 0, lifetime = 0;
    ms_err err = MS_OK;
    if (op == OP_CREATE || op == OP_REMOVE || op == OP_REKEY) {
        if ((err = parse_uint("--activation-delay", cli_get(args, "--activation-delay"),
                              366u * 86400u, &delay)) != MS_OK ||
            (err = parse_uint("--lifetime", cli_get(args, "--lifetime"), 366u * 86400u,
                              &lifetime)) != MS_OK)
            return err;
    }
    char *list = NULL;
    const char **members = NULL;
    size_t n = 0;
    if (op == OP_CREATE || op == OP_ADD || op == OP_REMOVE) {
        list = strdup(cli_get(args, "--members"));
        if (list == NULL)
            return cli_fail(MS_ERR_NOMEM, "--members");
        if ((err = split_members(list, &members, &n)) != MS_OK) {
            free(list);
            return err;
        }
    }
    char pass[CLI_PASSPHRASE_MAX];
    size_t pass_len = 0;
    ms_gms *gms = NULL;
    char detail[256] = "";
    if ((err = read_pass(args, pass, sizeof pass, &pass_len)) == MS_OK) {
        err = ms_gms_open(&gms, cli_get(args, "--gms-keystore"), pass, pass_len, detail,
                          sizeof detail);
        if (err != MS_OK)
            cli_fail(err, "%s", detail[0] ? detail : "cannot open the GMS keystore");
    }
    ms_wipe(pass, sizeof pass);
    if (err != MS_OK)
        goto out;
    switch (op) {
    case OP_CREATE:
        err = ms_gms_create(gms, group, members, n, delay, lifetime, detail, sizeof detail);
        break;
    case OP_ADD:
        err = ms_gms_add(gms, group, members, n, detail, sizeof detail);
        break;
    case OP_REMOVE:
        err = ms_gms_remove(gms, group, members, n, delay, lifetime, detail, sizeof detail);
        break;
    case OP_REKEY:
        err = ms_gms_rekey(gms, group, delay, lifetime, detail, sizeof detail);
        break;
    default:
        break;
    }
    if (err != MS_OK) {
        cli_fail(err, "%s", detail[0] ? detail : "the group change failed");
        goto out;
    }
    if (op == OP_SHOW) {
        ms_gms_group_info info;
        char *roster = NULL;
        if ((err = ms_gms_show(gms, &info, &roster, group, detail, sizeof detail)) != MS_OK) {
            cli_fail(err, "%s", detail);
            goto out;
        }
        printf("group %s: %zu members, generation %llu\n", info.group, info.n_members,
               (unsigned long long)info.generation);
        for (size_t k = 0; k < info.n_keys; k++) {
            char c[32], a[32], e[32];
            iso_time(c, info.keys[k].created);
            iso_time(a, info.keys[k].activation);
            iso_time(e, info.keys[k].expiry);
            printf("%s key: GMK-ID %08X, created %s, activation %s, expiry %s\n",
                   k == 0 ? "current" : "previous", (unsigned)info.keys[k].gmk_id, c, a, e);
        }
        for (char *p = roster, *eol; p != NULL && (eol = strchr(p, '\n')) != NULL; p = eol + 1)
            printf("member %.*s\n", (int)(eol - p), p);
        free(roster);
        goto out;
    }
    err = deliver(args, gms, group, ms_gms_uri(gms));
out:
    ms_gms_close(gms);
    free(members);
    free(list);
    return err;
}

ms_err cli_group_create(const struct cli_args *args) { return gms_run(args, OP_CREATE); }
ms_err cli_group_add(const struct cli_args *args) { return gms_run(args, OP_ADD); }
ms_err cli_group_remove(const struct cli_args *args) { return gms_run(args, OP_REMOVE); }
ms_err cli_group_rekey(const struct cli_args *args) { return gms_run(args, OP_REKEY); }
ms_err cli_group_send(const struct cli_args *args) { return gms_run(args, OP_SEND); }
ms_err cli_group_show(const struct cli_args *args) { return gms_run(args, OP_SHOW); }

/* ---- the member ---------------------------------------------------------------------------- */

typedef struct join_state {
    ms_sip *sip;
    ms_group_member *member;
    uint64_t want, accepted;
} join_state;

static int on_message(void *arg, const char *from_uri, const char *content_type,
                      const uint8_t *body, size_t body_len, char *warning, size_t warning_cap)
{
    join_state *st = arg;
    ms_group_received r;
    char detail[256] = "";
    ms_err err = ms_group_member_receive(st->member, &r, content_type, body, body_len, detail,
                                         sizeof detail);
    if (err != MS_OK) {
        printf("refused group message from %s: (%d) %s\n", from_uri, (int)err,
               detail[0] ? detail : ms_strerror(err));
        fflush(stdout);
        snprintf(warning, warning_cap, "%s", ms_errname(err));
        return 488;
    }
    char act[32], exp[32];
    iso_time(act, r.activation);
    iso_time(exp, r.expiry);
    printf("group %s: GMK-ID %08X from %s, GUK-ID %08X, activation %s, expiry %s, %zu members:",
           r.group, (unsigned)r.gmk_id, r.gms, (unsigned)r.guk_id, act, exp, r.n_members);
    for (char *p = r.members, *eol; p != NULL && (eol = strchr(p, '\n')) != NULL; p = eol + 1)
        printf(" %.*s", (int)(eol - p), p);
    printf("\n");
    fflush(stdout);
    ms_group_received_free(&r);
    st->accepted++;
    if (st->want > 0 && st->accepted >= st->want)
        ms_sip_stop(st->sip);
    return 200;
}

static void on_registered(void *arg, int status, const char *reason)
{
    join_state *st = arg;
    if (status == 200) {
        printf("registered\n");
    } else {
        printf("registration failed: %d %s\n", status, reason);
        ms_sip_stop(st->sip);
    }
    fflush(stdout);
}

ms_err cli_group_join(const struct cli_args *args)
{
    uint64_t want = 1, max_seconds = 0;
    ms_err err;
    if ((err = parse_uint("--messages", cli_get(args, "--messages"), 1000000, &want)) != MS_OK ||
        (err = parse_uint("--max-seconds", cli_get(args, "--max-seconds"), 86400 * 366,
                          &max_seconds)) != MS_OK)
        return err;
    bool do_register = cli_get(args, "--register") != NULL;
    if (do_register && cli_get(args, "--proxy") == NULL)
        return cli_fail(MS_ERR_USAGE, "--register needs --proxy");
    if (!do_register && cli_get(args, "--listen") == NULL)
        return cli_fail(MS_ERR_USAGE, "group join needs --listen or --register --proxy");
    char pass[CLI_PASSPHRASE_MAX];
    size_t pass_len = 0;
    ms_keystore *ks = NULL;
    char detail[256] = "";
    if ((err = read_pass(args, pass, sizeof pass, &pass_len)) != MS_OK)
        return err;
    err = ms_keystore_open(&ks, cli_get(args, "--keystore"), pass, pass_len, detail,
                           sizeof detail);
    ms_wipe(pass, sizeof pass);
    if (err != MS_OK)
        return cli_fail(err, "%s", detail[0] ? detail : "cannot open the keystore");
    join_state st = {.want = want};
    ms_keystore_identity id;
    ms_sip_timer *deadline = NULL;
    if ((err = ms_keystore_identity_get(ks, &id)) != MS_OK) {
        cli_fail(err, "the keystore has no identity");
        goto out;
    }
    if ((err = ms_group_member_open(&st.member, ks, detail, sizeof detail)) != MS_OK) {
        cli_fail(err, "%s", detail[0] ? detail : "cannot load the keys");
        goto out;
    }
    ms_sip_handlers h = {.registered = on_registered, .message = on_message};
    if ((err = sip_start(&st.sip, args, id.user_uri, do_register, cli_get(args, "--listen"), &h,
                         &st)) != MS_OK)
        goto out;
    if (!do_register) {
        char addr[64];
        if (ms_sip_local_addr(st.sip, addr, sizeof addr) == MS_OK)
            printf("listening %s\n", addr);
        fflush(stdout);
    }
    if (max_seconds > 0 &&
        (err = ms_sip_timer_start(st.sip, &deadline, max_seconds * 1000, on_deadline,
                                  st.sip)) != MS_OK)
        goto out;
    running_sip = st.sip;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    err = ms_sip_run(st.sip);
    running_sip = NULL;
    if (err == MS_OK && st.want > 0 && st.accepted < st.want && !interrupted)
        err = cli_fail(MS_ERR_GROUP, "%llu of %llu group keys received before giving up",
                       (unsigned long long)st.accepted, (unsigned long long)st.want);
out:
    ms_sip_timer_cancel(deadline);
    ms_sip_free(st.sip);
    ms_group_member_close(st.member);
    ms_keystore_close(ks);
    return err;
}
