/*
 * The `user` subcommands: the device's client keystore (docs/client.md). init creates it
 * from an enrolment file, import loads a key package (no network), list and status show
 * the held key periods and when the next period's keys are due, purge deletes expired
 * ones. The passphrase comes from a 0600 file or the terminal, never the command line.
 */
#include "user_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "kms_threshold_cli.h"
#include "tkms/device.h"
#include "mikeysakke/client.h"
#include "util/file.h"

#define OPT_KEYSTORE {"--keystore", "DIR", CLI_REQUIRED, "the keystore directory"}
#define OPT_PASSFILE {"--passphrase-file", "FILE", 0, "read the passphrase from FILE (mode 0600; default: ask)"}
#define OPT_NOW {"--now", "TIME", 0, "the current time (default: the clock), YYYY-MM-DDTHH:MM:SSZ"}

const struct cli_opt cli_user_init_opts[] = {
    OPT_KEYSTORE,
    {"--enrolment", "FILE", CLI_REQUIRED, "the enrolment file from `kms device enrol`"},
    OPT_PASSFILE,
    {"--scrypt-cost", "N", 0, "scrypt log2 N, 10 to 22 (default 17: 128 MiB); lower is weaker"},
    {NULL, NULL, 0, NULL},
};
const struct cli_opt cli_user_import_opts[] = {
    OPT_KEYSTORE,
    {"--in", "FILE", CLI_REQUIRED | CLI_POSITIONAL,
     "the key package (KmsResponse XML); also as the bare FILE argument"},
    OPT_PASSFILE,
    OPT_NOW,
    {NULL, NULL, 0, NULL},
};
const struct cli_opt cli_user_list_opts[] = {
    OPT_KEYSTORE,
    OPT_PASSFILE,
    OPT_NOW,
    {NULL, NULL, 0, NULL},
};
const struct cli_opt cli_user_status_opts[] = {
    OPT_KEYSTORE,
    OPT_PASSFILE,
    OPT_NOW,
    {"--accept-devices", NULL, CLI_FLAG, "the devices listed as new are this user's: stop warning"},
    {NULL, NULL, 0, NULL},
};
const struct cli_opt cli_user_purge_opts[] = {
    OPT_KEYSTORE,
    OPT_PASSFILE,
    OPT_NOW,
    {NULL, NULL, 0, NULL},
};
const struct cli_opt cli_user_fetch_opts[] = {
    {"--keystore", "DIR", 0, "the keystore directory (or keystore in [fetch] of --config)"},
    OPT_PASSFILE,
    {"--config", "FILE", 0, "read url, cacert, keystore, passphrase-file, cert, key, retries, timeout from [fetch]"},
    {"--url", "URL", 0, "the KMS or distribution server, https://host[:port]"},
    {"--cacert", "PEM", 0, "the CA certificate(s) trusted for the server's TLS certificate"},
    {"--cert", "PEM", 0, "a TLS client certificate (optional, with --key)"},
    {"--key", "PEM", 0, "the client certificate's private key (mode 0600)"},
    {"--retries", "N", 0, "retries per request after a connection failure, 429 or 5xx (default 3)"},
    {"--timeout", "SECONDS", 0, "time limit of one attempt (default 30)"},
    {"--no-certcache", NULL, CLI_FLAG, "do not ask for the certificate cache"},
    OPT_NOW,
    {"--period", "YYYY-MM", 0, "threshold keystore: the key period (default the current month)"},
    {"--order", "listed|random", 0, "threshold keystore: the order servers are asked in (default random)"},
    {NULL, NULL, 0, NULL},
};

/* ---- shared ----------------------------------------------------------------------------- */

static ms_err get_now(const struct cli_args *args, uint64_t *now)
{
    const char *s = cli_get(args, "--now");
    *now = 0;
    if (s == NULL)
        return MS_OK;
    uint64_t ntp = 0;
    ms_err err = cli_time_arg("--now", s, &ntp);
    *now = ntp >> 32;
    return err;
}

static ms_err open_ks_at(const char *dir, const char *passfile, ms_keystore **ks)
{
    char pass[CLI_PASSPHRASE_MAX];
    size_t len = 0;
    ms_err err = cli_read_passphrase(passfile, 0, pass, sizeof pass, &len);
    if (err != MS_OK)
        return err;
    char detail[512] = "";
    err = ms_keystore_open(ks, dir, pass, len, detail, sizeof detail);
    ms_wipe(pass, sizeof pass);
    if (err != MS_OK)
        return cli_fail(err, "--keystore %s: %s", dir, detail);
    return MS_OK;
}

static ms_err open_ks(const struct cli_args *args, ms_keystore **ks)
{
    return open_ks_at(cli_get(args, "--keystore"), cli_get(args, "--passphrase-file"), ks);
}

static void when(char out[32], uint64_t ntp_seconds)
{
    cli_time_format(out, ntp_seconds << 32);
}

static void print_identity(const ms_keystore *ks)
{
    ms_keystore_identity id;
    if (ms_keystore_identity_get(ks, &id) != MS_OK)
        return;
    printf("user = %s\ndevice = %s\nkms = %s\n", id.user_uri, id.device_id, id.kms_uri);
    if (id.scheme.scheme == MS_MIKEY_ID_SCHEME_TEL_MONTHLY)
        printf("scheme = monthly tel identifiers (RFC 6509)\n");
    else
        printf("scheme = hashed UID (TS 33.180), period %llu s, offset %llu s\n",
               (unsigned long long)id.scheme.period_len,
               (unsigned long long)id.scheme.period_offset);
}

static void print_entry(const ms_keystore_entry *e)
{
    char a[32], b[32];
    when(a, e->period_start);
    when(b, e->period_end);
    printf("period %llu %s to %s%s\n", (unsigned long long)e->period_no, a, b,
           e->in_force ? " in force" : e->expired ? " expired (purge removes it)" : "");
}

/* ---- commands --------------------------------------------------------------------------- */

ms_err cli_user_init(const struct cli_args *args)
{
    const char *dir = cli_get(args, "--keystore");
    const char *enrol = cli_get(args, "--enrolment");
    const char *cost = cli_get(args, "--scrypt-cost");
    ms_keystore_params params = {0, 0, 0};
    if (cost != NULL) {
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(cost, &end, 10);
        if (errno != 0 || end == cost || *end != '\0' || v < 10 || v > 22)
            return cli_fail(MS_ERR_USAGE, "--scrypt-cost %s: not a number from 10 to 22", cost);
        params.scrypt_log2_n = (unsigned)v;
    }
    uint8_t *xml = NULL;
    size_t xml_len = 0;
    ms_err err = cli_read_secret_input("--enrolment", enrol, &xml, &xml_len);
    if (err != MS_OK)
        return err;
    char pass[CLI_PASSPHRASE_MAX];
    size_t len = 0;
    err = cli_read_passphrase(cli_get(args, "--passphrase-file"), 1, pass, sizeof pass, &len);
    ms_keystore *ks = NULL;
    if (err == MS_OK) {
        char detail[512] = "";
        err = ms_keystore_create(dir, (const char *)xml, xml_len, pass, len, &params, detail,
                                 sizeof detail);
        /* Opened again to show what it holds, with the passphrase just given. */
        if (err == MS_OK)
            err = ms_keystore_open(&ks, dir, pass, len, detail, sizeof detail);
        if (err != MS_OK)
            err = cli_fail(err, "--keystore %s: %s", dir, detail);
    }
    ms_wipe(pass, sizeof pass);
    ms_wipe(xml, xml_len); /* the enrolment file holds the TrK and InK */
    free(xml);
    if (err == MS_OK) {
        printf("keystore = %s\n", dir);
        print_identity(ks);
        ms_keystore_close(ks);
    }
    return err;
}

const struct cli_opt cli_user_approve_device_opts[] = {
    OPT_KEYSTORE,
    OPT_PASSFILE,
    {"--request", "FILE", CLI_REQUIRED, "the enrolment request (kms device request): read it first"},
    {"--out", "FILE", CLI_REQUIRED, "write the approval here"},
    {NULL, NULL, 0, NULL},
};

/* This device approves another device of its user: an HMAC under its InK over exactly
 * the request shown. */
ms_err cli_user_approve_device(const struct cli_args *args)
{
    const char *in = cli_get(args, "--request"), *out = cli_get(args, "--out");
    ms_err err = cli_check_new_file("--out", out, 0);
    uint8_t *req = NULL;
    size_t len = 0;
    if (err == MS_OK)
        err = cli_read_input("--request", in, &req, &len);
    if (err != MS_OK)
        return err;
    ms_keystore *ks = NULL;
    err = open_ks(args, &ks);
    char line[256], detail[512] = "";
    if (err == MS_OK) {
        err = ms_keystore_approve_device(ks, line, sizeof line, (const char *)req, len, detail,
                                         sizeof detail);
        ms_keystore_close(ks);
        if (err != MS_OK)
            err = cli_fail(err, "--request %s: %s", in, detail);
    }
    if (err == MS_OK) {
        /* an approval of one request, used once: not secret, but nobody else's to change */
        if (ms_file_write_atomic(out, line, strlen(line), 0600, MS_FILE_NO_REPLACE, NULL, 0) !=
            MS_OK)
            err = cli_fail(MS_ERR_IO, "--out %s: %s", out, strerror(errno));
    }
    if (err == MS_OK)
        printf("Approved:\n%.*sapproval written to %s\n", (int)len, (const char *)req, out);
    free(req);
    return err;
}

ms_err cli_user_import(const struct cli_args *args)
{
    const char *in = cli_get(args, "--in");
    uint64_t now = 0;
    ms_err err = get_now(args, &now);
    if (err != MS_OK)
        return err;
    uint8_t *xml = NULL;
    size_t xml_len = 0;
    err = cli_read_input("--in", in, &xml, &xml_len);
    if (err != MS_OK)
        return err;
    ms_keystore *ks = NULL;
    err = open_ks(args, &ks);
    if (err == MS_OK) {
        char detail[512] = "";
        ms_keystore_import_report rep;
        err = ms_keystore_import(ks, &rep, (const char *)xml, xml_len, now, detail,
                                 sizeof detail);
        if (err != MS_OK) {
            err = cli_fail(err, "--in %s: refused (%s): %s", in, ms_errname(err), detail);
        } else {
            char t[32];
            when(t, rep.package_time);
            printf("imported package of %s\n", t);
            for (size_t i = 0; i < rep.n_periods; i++)
                printf("period %llu\n", (unsigned long long)rep.periods[i]);
        }
        ms_keystore_close(ks);
    }
    free(xml); /* the package is encrypted to this device: not secret in itself */
    return err;
}

ms_err cli_user_list(const struct cli_args *args)
{
    uint64_t now = 0;
    ms_err err = get_now(args, &now);
    ms_keystore *ks = NULL;
    if (err == MS_OK)
        err = open_ks(args, &ks);
    if (err != MS_OK)
        return err;
    ms_keystore_entry *list = calloc(MS_KEYSTORE_MAX_ENTRIES, sizeof *list);
    size_t n = 0;
    char detail[512] = "";
    if (list == NULL)
        err = cli_fail(MS_ERR_NOMEM, "user list");
    else
        err = ms_keystore_list(ks, list, MS_KEYSTORE_MAX_ENTRIES, &n, now, detail,
                               sizeof detail);
    if (list != NULL && err != MS_OK)
        err = cli_fail(err, "--keystore %s: %s", cli_get(args, "--keystore"), detail);
    for (size_t i = 0; err == MS_OK && i < n; i++)
        print_entry(&list[i]);
    free(list);
    ms_keystore_close(ks);
    return err;
}

/* The user's devices as the KMS's signed packages list them; a device added since the
 * first list is announced until the user accepts it. */
static ms_err print_devices(ms_keystore *ks, bool accept)
{
    char detail[512] = "";
    char *seen = malloc(2 * MS_KEYSTORE_DEVICES_MAX), *unseen = seen + MS_KEYSTORE_DEVICES_MAX;
    if (seen == NULL)
        return cli_fail(MS_ERR_NOMEM, "devices");
    ms_err err = MS_OK;
    if (accept && (err = ms_keystore_devices_accept(ks, detail, sizeof detail)) != MS_OK) {
        free(seen);
        return cli_fail(err, "devices: %s", detail);
    }
    err = ms_keystore_devices(ks, seen, MS_KEYSTORE_DEVICES_MAX, unseen,
                              MS_KEYSTORE_DEVICES_MAX, detail, sizeof detail);
    if (err == MS_OK && (seen[0] != '\0' || unseen[0] != '\0'))
        printf("devices of this user = %s%s%s\n", seen, seen[0] && unseen[0] ? " " : "", unseen);
    for (const char *p = unseen; err == MS_OK && *p != '\0';) {
        size_t n = strcspn(p, " ");
        printf("WARNING: new device %.*s was added to this user; if it is not yours, tell "
               "your security officer (accept it with --accept-devices)\n", (int)n, p);
        fprintf(stderr, "mikeysakke: WARNING: a device not seen before was added to this "
                "user: %.*s\n", (int)n, p);
        p += n;
        while (*p == ' ')
            p++;
    }
    free(seen);
    return err == MS_OK ? MS_OK : cli_fail(err, "devices: %s", detail);
}

ms_err cli_user_status(const struct cli_args *args)
{
    uint64_t now = 0;
    ms_err err = get_now(args, &now);
    ms_keystore *ks = NULL;
    if (err == MS_OK)
        err = open_ks(args, &ks);
    if (err != MS_OK)
        return err;
    ms_keystore_state *st = calloc(1, sizeof *st);
    char detail[512] = "";
    if (st == NULL) {
        ms_keystore_close(ks);
        return cli_fail(MS_ERR_NOMEM, "user status");
    }
    err = ms_keystore_status(ks, st, now, detail, sizeof detail);
    if (err == MS_OK || err == MS_ERR_NO_KEYS) {
        char t[32], a[32], b[32];
        print_identity(ks);
        when(t, st->now);
        printf("now = %s (period %llu)\n", t, (unsigned long long)st->current_period);
        printf("in force =");
        for (size_t i = 0; i < st->n_accepted; i++)
            printf(" %llu", (unsigned long long)st->accepted[i]);
        printf("\n");
        for (size_t i = 0; i < st->n_entries; i++) {
            printf("held ");
            print_entry(&st->entries[i]);
        }
        if (!st->current_held)
            printf("current period %llu: keys MISSING\n",
                   (unsigned long long)st->current_period);
        when(a, st->next_start);
        when(b, st->next_due);
        printf("next period %llu starts %s; keys due by %s (2 days before): %s\n",
               (unsigned long long)st->next_period, a, b,
               st->next_held ? "held" : st->now >= st->next_due ? "MISSING" : "not yet");
        if (err != MS_OK)
            err = cli_fail(err, "--keystore %s: %s", cli_get(args, "--keystore"), detail);
    } else {
        err = cli_fail(err, "--keystore %s: %s", cli_get(args, "--keystore"), detail);
    }
    if (err == MS_OK || err == MS_ERR_NO_KEYS) {
        ms_err de = print_devices(ks, cli_get(args, "--accept-devices") != NULL);
        if (err == MS_OK)
            err = de;
    }
    free(st);
    ms_keystore_close(ks);
    return err;
}

ms_err cli_user_purge(const struct cli_args *args)
{
    uint64_t now = 0;
    ms_err err = get_now(args, &now);
    ms_keystore *ks = NULL;
    if (err == MS_OK)
        err = open_ks(args, &ks);
    if (err != MS_OK)
        return err;
    uint64_t purged[MS_KEYSTORE_MAX_ENTRIES];
    size_t n = 0;
    char detail[512] = "";
    err =
        ms_keystore_purge(ks, purged, MS_KEYSTORE_MAX_ENTRIES, &n, now, detail, sizeof detail);
    for (size_t i = 0; i < n && i < MS_KEYSTORE_MAX_ENTRIES; i++)
        printf("purged period %llu\n", (unsigned long long)purged[i]);
    uint64_t holds[MS_KEYSTORE_MAX_HOLDS];
    size_t n_holds = 0;
    if (err == MS_OK &&
        ms_keystore_get_holds(ks, holds, MS_KEYSTORE_MAX_HOLDS, &n_holds, NULL, 0) == MS_OK)
        for (size_t i = 0; i < n_holds; i++)
            printf("held period %llu: a voicemail of that period waits in the mailbox\n",
                   (unsigned long long)holds[i]);
    if (err != MS_OK)
        err = cli_fail(err, "--keystore %s: %s", cli_get(args, "--keystore"), detail);
    else if (n == 0)
        printf("nothing to purge\n");
    ms_keystore_close(ks);
    return err;
}

/* ---- fetch ------------------------------------------------------------------------------ */

static ms_err uint_arg(const char *what, const char *s, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max)
        return cli_fail(MS_ERR_USAGE, "%s %s: not a number from 0 to %lu", what, s, max);
    *out = v;
    return MS_OK;
}

/* A private key file must not be open to other users. */
static ms_err check_key_mode(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return cli_fail(MS_ERR_IO, "--key %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0)
        return cli_fail(MS_ERR_KEYFILE_MODE, "--key %s: not a regular file of mode 0600",
                        path);
    return MS_OK;
}

static void print_fetch_report(const ms_fetch_report *r, ms_err err)
{
    char t[32];
    switch (r->cert) {
    case MS_FETCH_CERT_SAME:
        printf("kms certificate: unchanged (%s)\n", r->cert_uri);
        break;
    case MS_FETCH_CERT_ROLLOVER:
        when(t, r->cert_valid_from);
        printf("kms certificate: ROLLOVER announced, new certificate %s valid from %s "
               "(signed under the InK; key packages carry it)\n", r->cert_uri,
               r->cert_valid_from != 0 ? t : "now");
        break;
    case MS_FETCH_CERT_UNSIGNED_CHANGE:
        printf("kms certificate: CHANGED in an unsigned answer (%s): not trusted; key "
               "packages are checked against the certificate they carry\n", r->cert_uri);
        break;
    default:
        if (err == MS_OK)
            printf("kms certificate: not checked (no KMS Initialize at this server)\n");
        break;
    }
    for (size_t i = 0; i < r->n_periods; i++) {
        const ms_fetch_period *p = &r->periods[i];
        when(t, p->valid_until);
        unsigned long long n = (unsigned long long)p->period_no;
        switch (p->state) {
        case MS_FETCH_STORED:
            printf("period %llu: stored (valid until %s)\n", n, t);
            break;
        case MS_FETCH_HELD:
            printf("period %llu: already held (valid until %s)\n", n, t);
            break;
        case MS_FETCH_NOT_ISSUED:
            printf("period %llu: not issued yet\n", n);
            break;
        default:
            break;
        }
    }
    if (r->certcache_offered)
        printf("certcache: %zu certificate%s (not stored)\n",
               r->n_cache_certs, r->n_cache_certs == 1 ? "" : "s");
}

ms_err cli_user_fetch(const struct cli_args *args)
{
    static const char *const keys[] = {"url", "cacert", "keystore", "passphrase-file", "cert",
                                       "key", "retries", "timeout", NULL};
    /* a keystore of `user threshold-init`: t+1 servers of its table (tools/kms_tserve.c) */
    if (cli_get(args, "--keystore") != NULL &&
        ms_tkms_device_is_threshold(cli_get(args, "--keystore")))
        return cli_user_fetch_threshold(args);
    cli_config *cfg = NULL;
    char detail[1024] = "";
    ms_err err = MS_OK;
    const char *cfg_path = cli_get(args, "--config");
    if (cfg_path != NULL) {
        err = cli_config_load(&cfg, cfg_path, detail, sizeof detail);
        if (err == MS_OK)
            err = cli_config_check(cfg, "fetch", keys, detail, sizeof detail);
        if (err != MS_OK) {
            cli_config_free(cfg);
            return cli_fail(err, "%s", detail);
        }
    }
#define PICK(opt, key) cli_config_pick(cli_get(args, opt), cfg, "fetch", key)
    const char *dir = PICK("--keystore", "keystore");
    const char *passfile = PICK("--passphrase-file", "passphrase-file");
    const char *retries = PICK("--retries", "retries");
    const char *timeout = PICK("--timeout", "timeout");
    ms_fetch_options o;
    memset(&o, 0, sizeof o);
    o.url = PICK("--url", "url");
    o.cacert = PICK("--cacert", "cacert");
    o.client_cert = PICK("--cert", "cert");
    o.client_key = PICK("--key", "key");
#undef PICK
    o.skip_certcache = cli_get(args, "--no-certcache") != NULL;
    if (dir == NULL)
        err = cli_fail(MS_ERR_USAGE, "user fetch: no keystore (--keystore or keystore in "
                       "[fetch])");
    else if (o.url == NULL)
        err = cli_fail(MS_ERR_USAGE, "user fetch: no server (--url or url in [fetch])");
    else if (o.cacert == NULL)
        err = cli_fail(MS_ERR_USAGE, "user fetch: no CA file (--cacert or cacert in [fetch])");
    else if ((o.client_cert == NULL) != (o.client_key == NULL))
        err = cli_fail(MS_ERR_USAGE, "user fetch: --cert and --key go together");
    unsigned long v = 0;
    if (err == MS_OK && retries != NULL && (err = uint_arg("--retries", retries, 20, &v)) == MS_OK)
        o.max_attempts = (unsigned)v + 1;
    else if (err == MS_OK && retries == NULL)
        o.max_attempts = 4;
    if (err == MS_OK && timeout != NULL && (err = uint_arg("--timeout", timeout, 3600, &v)) == MS_OK)
        o.timeout_ms = v == 0 ? 1 : (unsigned)v * 1000u;
    if (err == MS_OK && o.client_key != NULL)
        err = check_key_mode(o.client_key);
    if (err == MS_OK)
        err = get_now(args, &o.now);
    ms_keystore *ks = NULL;
    if (err == MS_OK)
        err = open_ks_at(dir, passfile, &ks);
    if (err == MS_OK) {
        ms_fetch_report rep;
        err = ms_keystore_fetch(ks, &rep, &o, detail, sizeof detail);
        print_fetch_report(&rep, err);
        if (err != MS_OK)
            err = cli_fail(err, "user fetch: %s", detail);
        ms_keystore_close(ks);
    }
    cli_config_free(cfg);
    return err;
}
