/*
 * Threshold mode of `kms serve` and `user fetch`, and the enrolment commands
 * `kms threshold enrol` and `user threshold-init`: options and output only; the work is
 * src/tkms/serve.c, enrol.c and device.c.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kms/audit.h"
#include "kms_threshold_cli.h"
#include "mikeysakke/client.h"
#include "mikeysakke/crypto.h"
#include "tkms/device.h"
#include "tkms/enrol.h"
#include "tkms/log.h"
#include "tkms/node.h"
#include "tkms/serve.h"
#include "util/hex.h"

const struct cli_opt cli_kms_threshold_enrol_opts[] = {
    {"--dir", "DIR", CLI_REQUIRED, "this server's directory (after kms threshold batch)"},
    {"--user", "URI", CLI_REQUIRED, "the user the device belongs to"},
    {"--device-id", "ID", CLI_REQUIRED, "the device's id"},
    {"--device-pubs", "FILE", CLI_REQUIRED, "the device file from `user threshold-init`"},
    CLI_TKMS_UNLOCK_OPTS,
    {NULL, NULL, 0, NULL},
};

const struct cli_opt cli_user_threshold_init_opts[] = {
    {"--keystore", "DIR", CLI_REQUIRED, "the keystore directory (created, mode 0700)"},
    {"--user", "URI", CLI_REQUIRED, "own URI"},
    {"--device-id", "ID", CLI_REQUIRED, "this device's id (1 to 64 of A-Z a-z 0-9 . _ - : @)"},
    {"--peers", "FILE", CLI_REQUIRED, "the threshold KMS's peers table"},
    {"--public", "FILE", CLI_REQUIRED, "the KMS's public result (public.txt)"},
    {"--out", "FILE", CLI_REQUIRED, "write the device file the operators enrol here"},
    {"--kms-uri", "URI", 0, "the community's KMS URI (default tkms-<fingerprint>)"},
    {"--passphrase-file", "FILE", 0, "the keystore's passphrase (mode 0600; default: ask)"},
    {"--scrypt-cost", "N", 0, "scrypt log2 N, 10 to 22 (default 17); lower is weaker"},
    {NULL, NULL, 0, NULL},
};

static int is_file(const char *dir, const char *name)
{
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

bool cli_tkms_is_server_dir(const char *dir)
{
    return dir != NULL && is_file(dir, "public.txt") && is_file(dir, "peers.txt");
}

/* Opens the server of --dir with its unlock material (passphrase, custodian shares or
 * PIN), after finishing or undoing a refresh a crash interrupted. */
static ms_err open_service(const struct cli_args *args, ms_tkms_service **svc)
{
    uint8_t pass[CLI_TKMS_UNLOCK_MAX];
    char detail[400] = "";
    size_t len = 0;
    ms_err e = cli_tkms_read_unlock(args, pass, sizeof pass, &len);
    if (e == MS_OK && (e = ms_tkms_node_recover(cli_get(args, "--dir"), NULL, detail,
                                                sizeof detail)) != MS_OK)
        cli_fail(e, "%s", detail[0] ? detail : "the threshold server does not open");
    if (e == MS_OK) {
        e = ms_tkms_service_open(svc, cli_get(args, "--dir"), pass, len, detail, sizeof detail);
        if (e != MS_OK)
            cli_fail(e, "%s", detail[0] ? detail : "the threshold server does not open");
    }
    ms_wipe(pass, sizeof pass);
    return e;
}

ms_err cli_kms_threshold_enrol(const struct cli_args *args)
{
    ms_tkms_device d;
    char detail[400] = "";
    ms_err e = ms_tkms_device_file_read(cli_get(args, "--device-pubs"), &d, detail,
                                        sizeof detail);
    if (e != MS_OK)
        return cli_fail(e, "--device-pubs: %s", detail);
    /* the operator names whom they enrol; the file must say the same */
    if (strcmp(d.user, cli_get(args, "--user")) != 0 ||
        strcmp(d.device_id, cli_get(args, "--device-id")) != 0)
        return cli_fail(MS_ERR_ARG, "--device-pubs is the file of device %s of %s, not of "
                        "device %s of %s", d.device_id, d.user, cli_get(args, "--device-id"),
                        cli_get(args, "--user"));
    ms_tkms_service *svc = NULL;
    if ((e = open_service(args, &svc)) != MS_OK)
        return e;
    ms_audit *log = NULL;
    const char *dir = cli_get(args, "--dir");
    e = ms_tkms_log_open(&log, dir, detail, sizeof detail);
    if (e == MS_OK)
        e = ms_tkms_enrol(dir, log, &d, detail, sizeof detail);
    if (e != MS_OK)
        cli_fail(e, "kms threshold enrol: %s", detail);
    ms_audit_close(log);
    unsigned me = ms_tkms_service_index(svc);
    ms_tkms_service_close(svc);
    if (e == MS_OK) {
        char h[65];
        ms_hex_encode_lower(h, d.hpke_pub, 32);
        h[64] = '\0';
        printf("enrolled device %s of %s at server %u (hpke %s)\n", d.device_id, d.user, me, h);
    }
    return e;
}

ms_err cli_kms_threshold_serve(const struct cli_args *args)
{
    ms_tkms_serve_config sc;
    memset(&sc, 0, sizeof sc);
    sc.port = -1;
    char detail[400] = "";
    sc.detail = detail;
    sc.detail_cap = sizeof detail;
    sc.bind_addr = cli_get(args, "--listen");
    const char *v;
    char *end = NULL;
    if ((v = cli_get(args, "--port")) != NULL) {
        errno = 0;
        unsigned long p = strtoul(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || p > 65535)
            return cli_fail(MS_ERR_USAGE, "--port: a number from 0 to 65535");
        sc.port = (int)p;
    }
    struct { const char *opt; double *out; double max; } nums[] = {
        {"--rate", &sc.rate_per_sec, 1e6}, {"--burst", &sc.rate_burst, 1e6},
        {"--device-rate", &sc.device_rate, 1e6}, {"--device-burst", &sc.device_burst, 1e6}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if ((v = cli_get(args, nums[i].opt)) != NULL) {
            errno = 0;
            double x = strtod(v, &end);
            if (errno != 0 || end == v || *end != '\0' || !(x > 0) || x > nums[i].max)
                return cli_fail(MS_ERR_USAGE, "%s: a number above 0", nums[i].opt);
            *nums[i].out = x;
        }
    if ((v = cli_get(args, "--threads")) != NULL) {
        errno = 0;
        unsigned long t = strtoul(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || t == 0 || t > 256)
            return cli_fail(MS_ERR_USAGE, "--threads: a number from 1 to 256");
        sc.threads = (unsigned)t;
    }
    ms_tkms_service *svc = NULL;
    ms_err e = open_service(args, &svc);
    if (e != MS_OK)
        return e;
    /* the stop signals blocked in every thread (the server's inherit the mask) */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN); /* a device gone mid-answer is not a reason to stop */
    ms_tkms_server *srv = NULL;
    e = ms_tkms_serve_start(&srv, svc, &sc);
    if (e != MS_OK) {
        ms_tkms_service_close(svc);
        return cli_fail(e, "kms serve: %s", detail[0] ? detail : "cannot start");
    }
    const ms_peer_table *table = ms_tkms_service_peers(svc);
    unsigned me = ms_tkms_service_index(svc);
    unsigned port = ms_tkms_serve_port(srv);
    if (cli_get(args, "--json") != NULL)
        printf("{\"threshold_server\":%u,\"port\":%u}\n", me, port);
    else
        printf("threshold server %u of %u (t = %u) serving on port %u\n", me, table->n,
               table->t, port);
    fflush(stdout);
    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    fprintf(stderr, "kms serve: stopping (signal %d)\n", sig);
    ms_tkms_serve_stop(srv);
    ms_tkms_service_close(svc);
    return MS_OK;
}

ms_err cli_user_threshold_init(const struct cli_args *args)
{
    ms_keystore_params params = {0, 0, 0};
    const char *cost = cli_get(args, "--scrypt-cost");
    if (cost != NULL) {
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(cost, &end, 10);
        if (errno != 0 || end == cost || *end != '\0' || v < 10 || v > 22)
            return cli_fail(MS_ERR_USAGE, "--scrypt-cost %s: not a number from 10 to 22", cost);
        params.scrypt_log2_n = (unsigned)v;
    }
    ms_err e = cli_check_new_file("--out", cli_get(args, "--out"), 0);
    if (e != MS_OK)
        return e;
    char pass[CLI_PASSPHRASE_MAX], detail[400] = "";
    size_t len = 0;
    e = cli_read_passphrase(cli_get(args, "--passphrase-file"), 1, pass, sizeof pass, &len);
    ms_tkms_device d;
    if (e == MS_OK) {
        ms_tkms_device_init_params p = {
            .keystore = cli_get(args, "--keystore"), .user = cli_get(args, "--user"),
            .device_id = cli_get(args, "--device-id"), .peers_file = cli_get(args, "--peers"),
            .public_file = cli_get(args, "--public"), .kms_uri = cli_get(args, "--kms-uri"),
            .passphrase = pass, .passphrase_len = len, .params = &params,
            .out = cli_get(args, "--out")};
        e = ms_tkms_device_init(&p, &d, detail, sizeof detail);
        if (e != MS_OK)
            cli_fail(e, "user threshold-init: %s", detail);
    }
    ms_wipe(pass, sizeof pass);
    if (e == MS_OK) {
        char h[65], s[65];
        ms_hex_encode_lower(h, d.hpke_pub, 32);
        ms_hex_encode_lower(s, d.sign_pub, 32);
        h[64] = s[64] = '\0';
        printf("keystore = %s\nuser = %s\ndevice = %s\nhpke = %s\nsign = %s\n"
               "device file = %s (each server's operator enrols it)\n",
               cli_get(args, "--keystore"), d.user, d.device_id, h, s, cli_get(args, "--out"));
    }
    return e;
}

ms_err cli_user_fetch_threshold(const struct cli_args *args)
{
    const char *dir = cli_get(args, "--keystore");
    ms_tkms_fetch_options o;
    memset(&o, 0, sizeof o);
    o.period = cli_get(args, "--period");
    const char *order = cli_get(args, "--order");
    if (order != NULL && strcmp(order, "listed") != 0 && strcmp(order, "random") != 0)
        return cli_fail(MS_ERR_USAGE, "--order: listed or random");
    o.listed_order = order != NULL && strcmp(order, "listed") == 0;
    const char *timeout = cli_get(args, "--timeout");
    if (timeout != NULL) {
        char *end = NULL;
        errno = 0;
        unsigned long t = strtoul(timeout, &end, 10);
        if (errno != 0 || end == timeout || *end != '\0' || t == 0 || t > 3600)
            return cli_fail(MS_ERR_USAGE, "--timeout: seconds from 1 to 3600");
        o.timeout_ms = (unsigned)t * 1000u;
    }
    const char *now = cli_get(args, "--now");
    if (now != NULL) {
        uint64_t ntp = 0;
        ms_err e = cli_time_arg("--now", now, &ntp);
        if (e != MS_OK)
            return e;
        o.now = ntp >> 32;
    }
    char pass[CLI_PASSPHRASE_MAX], detail[4600] = "";
    size_t len = 0;
    ms_err e = cli_read_passphrase(cli_get(args, "--passphrase-file"), 0, pass, sizeof pass,
                                   &len);
    ms_keystore *ks = NULL;
    if (e == MS_OK) {
        e = ms_keystore_open(&ks, dir, pass, len, detail, sizeof detail);
        if (e != MS_OK)
            cli_fail(e, "--keystore %s: %s", dir, detail);
    }
    ms_wipe(pass, sizeof pass);
    if (e != MS_OK)
        return e;
    ms_tkms_fetch_report *rep = calloc(1, sizeof *rep);
    if (rep == NULL) {
        ms_keystore_close(ks);
        return cli_fail(MS_ERR_NOMEM, "user fetch");
    }
    e = ms_tkms_device_fetch(ks, dir, &o, rep, detail, sizeof detail);
    ms_keystore_close(ks);
    /* the servers skipped, on stderr either way */
    fputs(rep->notes, stderr);
    if (e != MS_OK) {
        cli_fail(e, "user fetch: %s", detail);
    } else {
        printf("period %s (%llu) stored\nservers", rep->period,
               (unsigned long long)rep->period_no);
        for (size_t i = 0; i < rep->n_used; i++)
            printf(" %u", rep->used[i]);
        printf("\nasked %u\nkeys %s\n", rep->asked, rep->fingerprint);
    }
    free(rep);
    return e;
}
