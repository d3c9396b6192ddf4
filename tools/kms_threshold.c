/*
 * `kms threshold keygen` and `kms threshold init`: options and output only; the work is
 * src/tkms/node.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms_threshold_cli.h"
#include "mikeysakke/crypto.h"
#include "tkms/node.h"
#include "tkms/report.h"
#include "util/hex.h"

const struct cli_opt cli_kms_threshold_keygen_opts[] = {
    {"--dir", "DIR", CLI_REQUIRED, "this server's directory (created, mode 0700)"},
    {"--index", "I", CLI_REQUIRED, "this server's index 1..n in the peers table"},
    {"--url", "URL", CLI_REQUIRED, "this server's address for the others: https://HOST:PORT"},
    {NULL, NULL, 0, NULL},
};

const struct cli_opt cli_kms_threshold_init_opts[] = {
    {"--dir", "DIR", CLI_REQUIRED, "this server's directory (from kms threshold keygen)"},
    {"--peers", "FILE", CLI_REQUIRED, "the peers table of the n servers and t"},
    {"--passphrase-file", "FILE", CLI_REQUIRED, "seal this server's shares under this passphrase (mode 0600)"},
    {"--scrypt-log2n", "N", 0, "scrypt cost (default 17); small values for tests only"},
    {"--timeout", "SECONDS", 0, "how long a round waits for the other servers (default 120)"},
    {NULL, NULL, 0, NULL},
};

const struct cli_opt cli_kms_threshold_batch_opts[] = {
    {"--dir", "DIR", CLI_REQUIRED, "this server's directory (after kms threshold init)"},
    {"--peers", "FILE", CLI_REQUIRED, "the peers table (every server takes part)"},
    {"--period", "P", CLI_REQUIRED, "the key period, e.g. 2026-12"},
    {"--users", "FILE", CLI_REQUIRED, "the users' URIs, one a line (the same file at every server)"},
    {"--passphrase-file", "FILE", CLI_REQUIRED, "the passphrase of this server's sealed shares (mode 0600)"},
    {"--timeout", "SECONDS", 0, "how long a round waits for the other servers (default 600)"},
    {NULL, NULL, 0, NULL},
};

const struct cli_opt cli_kms_threshold_share_opts[] = {
    {"--dir", "DIR", CLI_REQUIRED, "this server's directory (after kms threshold batch)"},
    {"--user", "URI", CLI_REQUIRED, "the user"},
    {"--period", "P", CLI_REQUIRED, "the key period of the batch"},
    {"--device-pub", "HEX", CLI_REQUIRED, "the enrolled device's X25519 key (32 octets)"},
    {"--passphrase-file", "FILE", CLI_REQUIRED, "the passphrase of this server's sealed shares (mode 0600)"},
    {"--out", "FILE", CLI_REQUIRED, "write the sealed, signed share here"},
    {NULL, NULL, 0, NULL},
};

const struct cli_opt cli_user_threshold_combine_opts[] = {
    {"--shares", "F1,F2,...", CLI_REQUIRED, "t+1 share files from distinct servers"},
    {"--device-key", "FILE", CLI_REQUIRED, "the device's X25519 private key (hex line, mode 0600)"},
    {"--peers", "FILE", CLI_REQUIRED, "the threshold KMS's peers table"},
    {"--public", "FILE", CLI_REQUIRED, "the KMS's public result (public.txt)"},
    {"--user", "URI", CLI_REQUIRED, "own URI"},
    {"--period", "P", CLI_REQUIRED, "the key period"},
    {"--rsk-out", "FILE", CLI_REQUIRED, "write the RSK here (mode 0600)"},
    {"--ssk-out", "FILE", CLI_REQUIRED, "write the SSK here (mode 0600)"},
    {"--report-out", "FILE", 0, "if a server is named as a cheater, write a report against it here"},
    {NULL, NULL, 0, NULL},
};

const struct cli_opt cli_kms_threshold_check_report_opts[] = {
    {"--report", "FILE", CLI_REQUIRED, "the cheater report (user threshold-combine --report-out)"},
    {"--dir", "DIR", 0, "a server's directory: its peers.txt, public.txt and batch records"},
    {"--peers", "FILE", 0, "without --dir: the peers table"},
    {"--public", "FILE", 0, "without --dir: the KMS's public result (public.txt)"},
    {"--records", "FILE", 0, "without --dir: the batch's records (the share's record is compared)"},
    {NULL, NULL, 0, NULL},
};

static ms_err parse_small(const char *opt, const char *v, unsigned lo, unsigned hi,
                          unsigned *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long x = v != NULL ? strtoul(v, &end, 10) : 0;
    if (v == NULL || end == v || *end != '\0' || errno != 0 || x < lo || x > hi)
        return cli_fail(MS_ERR_USAGE, "%s: a number from %u to %u", opt, lo, hi);
    *out = (unsigned)x;
    return MS_OK;
}

ms_err cli_kms_threshold_keygen(const struct cli_args *args)
{
    unsigned index = 0;
    ms_err e = parse_small("--index", cli_get(args, "--index"), 1, 32, &index);
    if (e != MS_OK)
        return e;
    char line[MS_TKMS_LINE_MAX], detail[300] = "";
    e = ms_tkms_node_keygen(cli_get(args, "--dir"), index, cli_get(args, "--url"), line,
                            sizeof line, detail, sizeof detail);
    if (e != MS_OK)
        return cli_fail(e, "%s", detail[0] ? detail : "kms threshold keygen");
    fputs(line, stdout);
    return MS_OK;
}

ms_err cli_kms_threshold_init(const struct cli_args *args)
{
    ms_tkms_init_params p = {0};
    p.dir = cli_get(args, "--dir");
    p.peers_file = cli_get(args, "--peers");
    ms_err e = MS_OK;
    if (cli_get(args, "--scrypt-log2n") != NULL &&
        (e = parse_small("--scrypt-log2n", cli_get(args, "--scrypt-log2n"), 4, 22,
                         &p.scrypt_log2_n)) != MS_OK)
        return e;
    unsigned timeout = 120;
    if (cli_get(args, "--timeout") != NULL &&
        (e = parse_small("--timeout", cli_get(args, "--timeout"), 1, 86400, &timeout)) != MS_OK)
        return e;
    p.timeout_ms = timeout * 1000u;
    char pass[CLI_PASSPHRASE_MAX];
    size_t pass_len = 0;
    if ((e = cli_read_passphrase(cli_get(args, "--passphrase-file"), 0, pass, sizeof pass,
                                 &pass_len)) != MS_OK) {
        ms_wipe(pass, sizeof pass);
        return e;
    }
    p.passphrase = (const uint8_t *)pass;
    p.passphrase_len = pass_len;
    ms_tkms_public pub;
    uint8_t transcript[32];
    char detail[400] = "";
    e = ms_tkms_node_init(&p, &pub, transcript, detail, sizeof detail);
    ms_wipe(pass, sizeof pass);
    if (e != MS_OK)
        return cli_fail(e, "%s", detail[0] ? detail : "kms threshold init");
    char fp[17], th[65], z[2 * MS_SAKKE_POINT_BYTES + 1], k[2 * MS_ECCSI_POINT_BYTES + 1];
    ms_tkms_fingerprint(&pub, fp);
    ms_hex_encode_lower(th, transcript, 32);
    th[64] = '\0';
    ms_hex_encode_upper(z, pub.Z, sizeof pub.Z);
    ms_hex_encode_upper(k, pub.kpak, sizeof pub.kpak);
    printf("fingerprint %s\ntranscript %s\nqualified %08x\nZ %s\nKPAK %s\n", fp, th,
           (unsigned)pub.qual, z, k);
    return MS_OK;
}

/* The users file: one URI a line; blank lines and lines starting with '#' skipped. */
static ms_err read_users(const char *path, char ***out, size_t *count)
{
    uint8_t *text = NULL;
    size_t len = 0;
    ms_err e = cli_read_input("--users", path, &text, &len);
    if (e != MS_OK)
        return e;
    char **users = calloc(len / 2 + 1, sizeof *users);
    size_t n = 0;
    char *save = NULL;
    char *buf = realloc(text, len + 1);
    if (users == NULL || buf == NULL) {
        free(users);
        free(buf != NULL ? buf : (char *)text);
        return cli_fail(MS_ERR_NOMEM, "--users");
    }
    buf[len] = '\0';
    for (char *l = strtok_r(buf, "\r\n", &save); l != NULL; l = strtok_r(NULL, "\r\n", &save)) {
        if (l[0] == '\0' || l[0] == '#')
            continue;
        users[n++] = strdup(l);
    }
    free(buf);
    if (n == 0) {
        free(users);
        return cli_fail(MS_ERR_USAGE, "--users %s: no user", path);
    }
    *out = users;
    *count = n;
    return MS_OK;
}

ms_err cli_kms_threshold_batch(const struct cli_args *args)
{
    ms_tkms_batch_params p = {0};
    p.dir = cli_get(args, "--dir");
    p.peers_file = cli_get(args, "--peers");
    p.period = cli_get(args, "--period");
    ms_err e = MS_OK;
    unsigned timeout = 600;
    if (cli_get(args, "--timeout") != NULL &&
        (e = parse_small("--timeout", cli_get(args, "--timeout"), 1, 86400, &timeout)) != MS_OK)
        return e;
    p.timeout_ms = timeout * 1000u;
    char **users = NULL;
    size_t count = 0;
    if ((e = read_users(cli_get(args, "--users"), &users, &count)) != MS_OK)
        return e;
    p.users = (const char *const *)users;
    p.count = count;
    char pass[CLI_PASSPHRASE_MAX];
    size_t pass_len = 0;
    e = cli_read_passphrase(cli_get(args, "--passphrase-file"), 0, pass, sizeof pass,
                            &pass_len);
    uint8_t digest[32];
    char detail[400] = "";
    if (e == MS_OK) {
        p.passphrase = (const uint8_t *)pass;
        p.passphrase_len = pass_len;
        e = ms_tkms_node_batch(&p, digest, detail, sizeof detail);
        if (e != MS_OK)
            cli_fail(e, "%s", detail[0] ? detail : "kms threshold batch");
    }
    ms_wipe(pass, sizeof pass);
    for (size_t i = 0; i < count; i++)
        free(users[i]);
    free(users);
    if (e != MS_OK)
        return e;
    char hex[65];
    ms_hex_encode_lower(hex, digest, 32);
    printf("users %zu\nrecords %s\n", count, hex);
    return MS_OK;
}

ms_err cli_kms_threshold_share(const struct cli_args *args)
{
    uint8_t dev[32];
    ms_err e = cli_hex_arg_fixed("--device-pub", cli_get(args, "--device-pub"), dev, sizeof dev);
    if (e != MS_OK)
        return e;
    char pass[CLI_PASSPHRASE_MAX];
    size_t pass_len = 0;
    e = cli_read_passphrase(cli_get(args, "--passphrase-file"), 0, pass, sizeof pass,
                            &pass_len);
    char detail[400] = "";
    if (e == MS_OK) {
        e = ms_tkms_node_share(cli_get(args, "--dir"), (const uint8_t *)pass, pass_len,
                               cli_get(args, "--period"), cli_get(args, "--user"), dev, cli_get(args, "--out"), detail,
                               sizeof detail);
        if (e != MS_OK)
            cli_fail(e, "%s", detail[0] ? detail : "kms threshold share");
    }
    ms_wipe(pass, sizeof pass);
    return e;
}

ms_err cli_user_threshold_combine(const struct cli_args *args)
{
    const char *list = cli_get(args, "--shares");
    char *copy = strdup(list), *save = NULL;
    const char *files[32];
    size_t count = 0;
    if (copy == NULL)
        return cli_fail(MS_ERR_NOMEM, "--shares");
    for (char *f = strtok_r(copy, ",", &save); f != NULL && count < 32;
         f = strtok_r(NULL, ",", &save))
        files[count++] = f;
    uint8_t sk[32], rsk[MS_SAKKE_POINT_BYTES], ssk[MS_ECCSI_SCALAR_BYTES],
        pvt[MS_ECCSI_POINT_BYTES];
    ms_err e = count > 0 ? cli_read_secret("--device-key", cli_get(args, "--device-key"), sk,
                                           32, 32)
                         : cli_fail(MS_ERR_USAGE, "--shares: no file");
    unsigned cheater = 0;
    char detail[400] = "";
    if (e == MS_OK) {
        e = ms_tkms_device_combine(cli_get(args, "--peers"), cli_get(args, "--public"), sk,
                                   cli_get(args, "--period"), cli_get(args, "--user"), files,
                                   count, rsk, ssk, pvt, &cheater, detail, sizeof detail);
        if (e != MS_OK)
            cli_fail(e, "%s%s", detail[0] ? detail : "user threshold-combine",
                     cheater ? " (a server sent a bad share)" : "");
        const char *report = cli_get(args, "--report-out");
        if (e == MS_ERR_THRESHOLD_SHARE && cheater != 0 && report != NULL) {
            char why[400] = "";
            ms_err re = ms_tkms_report_write(cli_get(args, "--peers"), cli_get(args, "--public"),
                                             sk, cli_get(args, "--period"),
                                             cli_get(args, "--user"), files, count, cheater,
                                             report, why, sizeof why);
            if (re == MS_OK)
                fprintf(stderr, "mikeysakke: report against server %u written to %s\n", cheater,
                        report);
            else
                fprintf(stderr, "mikeysakke: no report written: %s\n",
                        why[0] ? why : ms_strerror(re));
        }
    }
    ms_wipe(sk, sizeof sk);
    if (e == MS_OK)
        e = cli_write_secret("--rsk-out", cli_get(args, "--rsk-out"), rsk, sizeof rsk, 0);
    if (e == MS_OK)
        e = cli_write_secret("--ssk-out", cli_get(args, "--ssk-out"), ssk, sizeof ssk, 0);
    if (e == MS_OK) {
        char hex[2 * MS_ECCSI_POINT_BYTES + 1];
        ms_hex_encode_upper(hex, pvt, sizeof pvt);
        printf("PVT %s\n", hex);
    }
    ms_wipe(rsk, sizeof rsk);
    ms_wipe(ssk, sizeof ssk);
    free(copy);
    return e;
}

ms_err cli_kms_threshold_check_report(const struct cli_args *args)
{
    const char *dir = cli_get(args, "--dir"), *peers = cli_get(args, "--peers"),
               *pub = cli_get(args, "--public"), *records = cli_get(args, "--records");
    if (dir != NULL && (peers != NULL || pub != NULL || records != NULL))
        return cli_fail(MS_ERR_USAGE,
                        "--dir takes the server's files: no --peers, --public or --records");
    if (dir == NULL && (peers == NULL || pub == NULL))
        return cli_fail(MS_ERR_USAGE, "give --dir, or --peers and --public");
    unsigned server = 0;
    uint8_t sid[32];
    char detail[400] = "";
    ms_err e = dir != NULL ? ms_tkms_report_check_dir(dir, cli_get(args, "--report"), &server,
                                                      sid, detail, sizeof detail)
                           : ms_tkms_report_check(peers, pub, records, cli_get(args, "--report"),
                                                  &server, sid, detail, sizeof detail);
    if (e == MS_ERR_THRESHOLD_SHARE) {
        /* the report is upheld: the verdict is the output, and the status says it */
        printf("%s\n", detail);
        return e;
    }
    return cli_fail(e, "%s", detail[0] ? detail : "kms threshold check-report");
}
