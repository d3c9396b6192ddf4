/*
 * `kms threshold keygen` and `kms threshold init`: options and output only; the work is
 * src/tkms/node.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json_out.h"
#include "kms_threshold_cli.h"
#include "mikeysakke/crypto.h"
#include "tkms/node.h"
#include "tkms/root.h"
#include "tkms/report.h"
#include "util/hex.h"

#define OPT_JSON {"--json", NULL, CLI_FLAG, "print the result as one JSON object"}

const struct cli_opt cli_kms_threshold_keygen_opts[] = {
    {"--dir", "DIR", CLI_REQUIRED, "this server's directory (created, mode 0700)"},
    {"--index", "I", CLI_REQUIRED, "this server's index 1..n in the peers table"},
    {"--url", "URL", CLI_REQUIRED, "this server's address for the others: https://HOST:PORT"},
    OPT_JSON,
    {NULL, NULL, 0, NULL},
};

const struct cli_opt cli_kms_threshold_init_opts[] = {
    {"--dir", "DIR", CLI_REQUIRED, "this server's directory (from kms threshold keygen)"},
    {"--peers", "FILE", CLI_REQUIRED, "the peers table of the n servers and t"},
    {"--threshold", "T", 0, "check: the table's t (kms init --threshold T runs this command)"},
    {"--servers", "N", 0, "check: the table's number of servers"},
    {"--passphrase-file", "FILE", 0, "seal this server's shares under this passphrase (mode 0600)"},
    {"--scrypt-log2n", "N", 0, "scrypt cost (default 17); small values for tests only"},
    {"--shares", "K/N", 0, "or: seal under K-of-N custodian shares"},
    {"--share-out-dir", "DIR", 0, "with --shares: write share-1.key ... share-N.key here"},
    {"--pkcs11-module", "SO", 0, "or: seal with a key in a PKCS#11 token (module path)"},
    {"--token", "LABEL", 0, "with --pkcs11-module: the token's label"},
    {"--pin-file", "FILE", 0, "with --pkcs11-module: the token's user PIN (mode 0600)"},
    {"--key-label", "LABEL", 0, "with --pkcs11-module: the AES key's label (default mikeysakke-kms-seal)"},
    {"--timeout", "SECONDS", 0, "how long a round waits for the other servers (default 120)"},
    OPT_JSON,
    {NULL, NULL, 0, NULL},
};

const struct cli_opt cli_kms_threshold_batch_opts[] = {
    {"--dir", "DIR", CLI_REQUIRED, "this server's directory (after kms threshold init)"},
    {"--peers", "FILE", CLI_REQUIRED, "the peers table"},
    {"--servers", "I,J,...", 0, "the live servers taking part, this one among them (default: all n)"},
    {"--period", "P", CLI_REQUIRED, "the key period, e.g. 2026-12"},
    {"--users", "FILE", CLI_REQUIRED, "the users' URIs, one a line (the same file at every server)"},
    CLI_TKMS_UNLOCK_OPTS,
    {"--timeout", "SECONDS", 0, "how long a round waits for the other servers (default 600)"},
    OPT_JSON,
    {NULL, NULL, 0, NULL},
};

const struct cli_opt cli_kms_threshold_share_opts[] = {
    {"--dir", "DIR", CLI_REQUIRED, "this server's directory (after kms threshold batch)"},
    {"--user", "URI", CLI_REQUIRED, "the user"},
    {"--period", "P", CLI_REQUIRED, "the key period of the batch"},
    {"--device-pub", "HEX", CLI_REQUIRED, "the enrolled device's X25519 key (32 octets)"},
    CLI_TKMS_UNLOCK_OPTS,
    {"--out", "FILE", CLI_REQUIRED, "write the sealed, signed share here"},
    OPT_JSON,
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
    OPT_JSON,
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

ms_err cli_tkms_read_unlock(const struct cli_args *args, uint8_t *out, size_t cap, size_t *len)
{
    const char *pass = cli_get(args, "--passphrase-file"), *shares = cli_get(args, "--share"),
               *pin = cli_get(args, "--pin-file");
    if ((pass != NULL) + (shares != NULL) + (pin != NULL) != 1)
        return cli_fail(MS_ERR_USAGE, "give one of --passphrase-file, --share, --pin-file "
                                      "(by how this server's shares are sealed)");
    ms_err e = MS_OK;
    *len = 0;
    if (pass != NULL) {
        e = cli_read_passphrase(pass, 0, (char *)out, cap, len);
    } else if (pin != NULL) {
        e = cli_read_secret_line("--pin-file", pin, (char *)out, cap, len);
    } else {
        char *copy = strdup(shares), *save = NULL;
        if (copy == NULL)
            return cli_fail(MS_ERR_NOMEM, "--share");
        for (char *f = strtok_r(copy, ",", &save); f != NULL && e == MS_OK;
             f = strtok_r(NULL, ",", &save)) {
            if (*len + MS_KMS_SHARE_LEN > cap)
                e = cli_fail(MS_ERR_USAGE, "--share: too many files");
            else if ((e = cli_read_secret("--share", f, out + *len, MS_KMS_SHARE_LEN,
                                          MS_KMS_SHARE_LEN)) == MS_OK)
                *len += MS_KMS_SHARE_LEN;
        }
        free(copy);
    }
    if (e != MS_OK) {
        ms_wipe(out, cap);
        *len = 0;
    }
    return e;
}

/* The seal of kms threshold init: --shares K/N, --pkcs11-module or a passphrase. The PIN
 * or passphrase goes to secret (the caller wipes it). */
static ms_err read_seal(const struct cli_args *args, ms_seal_params *sp, char *secret,
                        size_t cap)
{
    const char *pass = cli_get(args, "--passphrase-file"), *shares = cli_get(args, "--shares"),
               *module = cli_get(args, "--pkcs11-module");
    if ((pass != NULL) + (shares != NULL) + (module != NULL) != 1)
        return cli_fail(MS_ERR_USAGE, "choose one of --passphrase-file, --shares, --pkcs11-module");
    size_t len = 0;
    ms_err e = MS_OK;
    if (shares != NULL) {
        unsigned k = 0, n = 0;
        int used = 0;
        if (sscanf(shares, "%u/%u%n", &k, &n, &used) != 2 || shares[used] != '\0' || k < 1 ||
            k > n || n > 16)
            return cli_fail(MS_ERR_USAGE, "--shares K/N with 1 <= K <= N <= 16");
        if (cli_get(args, "--share-out-dir") == NULL)
            return cli_fail(MS_ERR_USAGE, "--shares needs --share-out-dir");
        sp->method = MS_SEAL_SHARES;
        sp->k = k;
        sp->n = n;
    } else if (module != NULL) {
        if (cli_get(args, "--token") == NULL || cli_get(args, "--pin-file") == NULL)
            return cli_fail(MS_ERR_USAGE, "--pkcs11-module needs --token and --pin-file");
        if ((e = cli_read_secret_line("--pin-file", cli_get(args, "--pin-file"), secret, cap,
                                      &len)) != MS_OK)
            return e;
        sp->method = MS_SEAL_PKCS11;
        sp->module = module;
        sp->token_label = cli_get(args, "--token");
        sp->key_label = cli_get(args, "--key-label") != NULL ? cli_get(args, "--key-label")
                                                              : "mikeysakke-kms-seal";
        sp->pin = (const uint8_t *)secret;
        sp->pin_len = len;
    } else {
        if ((e = cli_read_passphrase(pass, 0, secret, cap, &len)) != MS_OK)
            return e;
        sp->method = MS_SEAL_PASSPHRASE;
        sp->passphrase = (const uint8_t *)secret;
        sp->passphrase_len = len;
    }
    return MS_OK;
}

/* Writes the custodian shares init handed out (mode 0600, never over a file) and wipes
 * them. */
static ms_err write_shares(const char *dir, uint8_t (*shares)[MS_KMS_SHARE_BYTES],
                           const size_t *lens, unsigned n)
{
    ms_err e = MS_OK;
    char path[4200];
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        e = cli_fail(MS_ERR_IO, "--share-out-dir %s: %s", dir, strerror(errno));
    for (unsigned i = 0; i < n && e == MS_OK; i++) {
        snprintf(path, sizeof path, "%s/share-%u.key", dir, i + 1);
        e = cli_write_secret("--share-out-dir", path, shares[i], lens[i], 0);
        if (e == MS_OK)
            printf("custodian share %u: %s\n", i + 1, path);
    }
    ms_wipe(shares, (size_t)16 * MS_KMS_SHARE_BYTES);
    return e;
}

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

/* --timeout SECONDS (1 to a day), per round, in milliseconds; dflt when absent. */
static ms_err read_timeout(const struct cli_args *args, unsigned dflt, unsigned *ms)
{
    unsigned seconds = dflt;
    ms_err e = MS_OK;
    if (cli_get(args, "--timeout") != NULL &&
        (e = parse_small("--timeout", cli_get(args, "--timeout"), 1, 86400, &seconds)) != MS_OK)
        return e;
    *ms = seconds * 1000u;
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
    if (cli_get(args, "--json") == NULL) {
        fputs(line, stdout);
        return MS_OK;
    }
    /* the line's three keys, by name */
    struct cli_json j;
    cli_json_begin(&j, stdout);
    cli_json_u64(&j, "index", index);
    cli_json_str(&j, "url", cli_get(args, "--url"));
    cli_json_str(&j, "dir", cli_get(args, "--dir"));
    static const char *const keys[] = {"sign=", "hpke=", "tls="};
    for (size_t k = 0; k < 3; k++) {
        const char *at = strstr(line, keys[k]);
        if (at != NULL)
            cli_json_strn(&j, k == 0 ? "sign" : k == 1 ? "hpke" : "tls", at + strlen(keys[k]),
                          64);
    }
    cli_json_strn(&j, "line", line, strcspn(line, "\n"));
    cli_json_end(&j);
    return MS_OK;
}

/* --threshold and --servers, when given, must be the table's t and n: an operator who
 * typed them learns before the ceremony that the table is not the one meant. */
static ms_err check_table_shape(const struct cli_args *args, const char *peers_file)
{
    const char *t = cli_get(args, "--threshold"), *n = cli_get(args, "--servers");
    if (t == NULL && n == NULL)
        return MS_OK;
    unsigned tv = 0, nv = 0;
    ms_err e = MS_OK;
    if ((t != NULL && (e = parse_small("--threshold", t, 1, MS_TKMS_MAX_T, &tv)) != MS_OK) ||
        (n != NULL && (e = parse_small("--servers", n, 3, MS_TKMS_MAX_N, &nv)) != MS_OK))
        return e;
    ms_peer_table *table = calloc(1, sizeof *table);
    char detail[300] = "";
    if (table == NULL)
        return cli_fail(MS_ERR_NOMEM, "--peers");
    e = ms_peer_table_read(peers_file, table, detail, sizeof detail);
    if (e != MS_OK)
        cli_fail(e, "%s", detail[0] ? detail : peers_file);
    else if (t != NULL && table->t != tv)
        e = cli_fail(MS_ERR_CONFIG, "--threshold %u, but %s has threshold %u", tv, peers_file,
                     table->t);
    else if (n != NULL && table->n != nv)
        e = cli_fail(MS_ERR_CONFIG, "--servers %u, but %s lists %u servers", nv, peers_file,
                     table->n);
    free(table);
    return e;
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
    if ((e = read_timeout(args, 120, &p.timeout_ms)) != MS_OK)
        return e;
    if ((e = check_table_shape(args, p.peers_file)) != MS_OK)
        return e;
    char secret[CLI_PASSPHRASE_MAX];
    ms_seal_params sp = {0};
    uint8_t shares[16][MS_KMS_SHARE_BYTES];
    size_t share_lens[16] = {0};
    const char *share_dir = cli_get(args, "--share-out-dir");
    if (share_dir != NULL && cli_get(args, "--shares") == NULL)
        return cli_fail(MS_ERR_USAGE, "--share-out-dir goes with --shares");
    if ((e = read_seal(args, &sp, secret, sizeof secret)) != MS_OK) {
        ms_wipe(secret, sizeof secret);
        return e;
    }
    sp.scrypt_log2_n = p.scrypt_log2_n;
    p.seal = &sp;
    p.shares_out = shares;
    p.share_lens_out = share_lens;
    ms_tkms_public pub;
    uint8_t transcript[32];
    char detail[400] = "";
    e = ms_tkms_node_init(&p, &pub, transcript, detail, sizeof detail);
    ms_wipe(secret, sizeof secret);
    if (e != MS_OK) {
        ms_wipe(shares, sizeof shares);
        return cli_fail(e, "%s", detail[0] ? detail : "kms threshold init");
    }
    if (sp.method == MS_SEAL_SHARES &&
        (e = write_shares(share_dir, shares, share_lens, sp.n)) != MS_OK)
        return e;
    char fp[17], th[65], z[2 * MS_SAKKE_POINT_BYTES + 1], k[2 * MS_ECCSI_POINT_BYTES + 1];
    ms_tkms_fingerprint(&pub, fp);
    ms_hex_encode_lower(th, transcript, 32);
    th[64] = '\0';
    ms_hex_encode_upper(z, pub.Z, sizeof pub.Z);
    ms_hex_encode_upper(k, pub.kpak, sizeof pub.kpak);
    if (cli_get(args, "--json") != NULL) {
        char q[9];
        snprintf(q, sizeof q, "%08x", (unsigned)pub.qual);
        struct cli_json j;
        cli_json_begin(&j, stdout);
        cli_json_u64(&j, "n", pub.n);
        cli_json_u64(&j, "t", pub.t);
        cli_json_str(&j, "fingerprint", fp);
        cli_json_str(&j, "transcript", th);
        cli_json_str(&j, "qualified", q);
        cli_json_str(&j, "Z", z);
        cli_json_str(&j, "KPAK", k);
        cli_json_end(&j);
        return MS_OK;
    }
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

/* "1,2,4" -> bit i-1 for server i */
static ms_err parse_servers(const char *v, uint32_t *mask)
{
    *mask = 0;
    const char *p = v;
    for (;;) {
        char *end = NULL;
        errno = 0;
        unsigned long x = strtoul(p, &end, 10);
        if (end == p || errno != 0 || x < 1 || x > MS_TKMS_MAX_N || (*end != ',' && *end != '\0'))
            return cli_fail(MS_ERR_USAGE, "--servers %s: server indices 1 to %d, separated by commas",
                            v, MS_TKMS_MAX_N);
        if (*mask >> (x - 1) & 1)
            return cli_fail(MS_ERR_USAGE, "--servers %s: server %lu is named twice", v, x);
        *mask |= 1u << (x - 1);
        if (*end == '\0')
            return MS_OK;
        p = end + 1;
    }
}

ms_err cli_kms_threshold_batch(const struct cli_args *args)
{
    ms_tkms_batch_params p = {0};
    p.dir = cli_get(args, "--dir");
    p.peers_file = cli_get(args, "--peers");
    p.period = cli_get(args, "--period");
    ms_err e = MS_OK;
    if ((e = read_timeout(args, 600, &p.timeout_ms)) != MS_OK)
        return e;
    if (cli_get(args, "--servers") != NULL &&
        (e = parse_servers(cli_get(args, "--servers"), &p.live)) != MS_OK)
        return e;
    char **users = NULL;
    size_t count = 0;
    if ((e = read_users(cli_get(args, "--users"), &users, &count)) != MS_OK)
        return e;
    p.users = (const char *const *)users;
    p.count = count;
    uint8_t pass[CLI_TKMS_UNLOCK_MAX];
    size_t pass_len = 0;
    e = cli_tkms_read_unlock(args, pass, sizeof pass, &pass_len);
    uint8_t digest[32];
    char detail[400] = "";
    if (e == MS_OK && (e = ms_tkms_node_recover(p.dir, NULL, detail, sizeof detail)) != MS_OK)
        cli_fail(e, "%s", detail);
    if (e == MS_OK) {
        p.passphrase = pass;
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
    /* the signed root the batch wrote: what activates it */
    char hex[65], rhex[65], path[MS_TKMS_PATH_MAX], live[100] = "", why[300] = "";
    tkms_root root;
    ms_hex_encode_lower(hex, digest, 32);
    hex[64] = '\0';
    snprintf(path, sizeof path, "%s/batch-%s.root", p.dir, p.period);
    if ((e = tkms_root_read(path, &root, why, sizeof why)) != MS_OK)
        return cli_fail(e, "%s", why);
    ms_hex_encode_lower(rhex, root.root, 32);
    rhex[64] = '\0';
    if (cli_get(args, "--json") != NULL) {
        struct cli_json j;
        cli_json_begin(&j, stdout);
        cli_json_str(&j, "period", p.period);
        cli_json_u64(&j, "users", count);
        cli_json_str(&j, "records", hex);
        cli_json_str(&j, "root", rhex);
        cli_json_array(&j, "servers");
        for (unsigned i = 1; i <= 32; i++)
            if (root.live >> (i - 1) & 1)
                cli_json_u64(&j, NULL, i);
        cli_json_close(&j);
        cli_json_array(&j, "signatures");
        for (unsigned i = 1; i <= 32; i++)
            if (root.have >> (i - 1) & 1)
                cli_json_u64(&j, NULL, i);
        cli_json_close(&j);
        cli_json_str(&j, "root_file", path);
        cli_json_end(&j);
        return MS_OK;
    }
    tkms_mask_list(live, sizeof live, root.live);
    printf("users %zu\nrecords %s\nroot %s\nservers %s\n", count, hex, rhex, live);
    return MS_OK;
}

ms_err cli_kms_threshold_share(const struct cli_args *args)
{
    uint8_t dev[32];
    ms_err e = cli_hex_arg_fixed("--device-pub", cli_get(args, "--device-pub"), dev, sizeof dev);
    if (e != MS_OK)
        return e;
    uint8_t pass[CLI_TKMS_UNLOCK_MAX];
    size_t pass_len = 0;
    e = cli_tkms_read_unlock(args, pass, sizeof pass, &pass_len);
    char detail[400] = "";
    if (e == MS_OK &&
        (e = ms_tkms_node_recover(cli_get(args, "--dir"), NULL, detail, sizeof detail)) != MS_OK)
        cli_fail(e, "%s", detail);
    if (e == MS_OK) {
        e = ms_tkms_node_share(cli_get(args, "--dir"), pass, pass_len,
                               cli_get(args, "--period"), cli_get(args, "--user"), dev, cli_get(args, "--out"), detail,
                               sizeof detail);
        if (e != MS_OK)
            cli_fail(e, "%s", detail[0] ? detail : "kms threshold share");
    }
    ms_wipe(pass, sizeof pass);
    if (e == MS_OK && cli_get(args, "--json") != NULL) {
        char path[MS_TKMS_PATH_MAX];
        unsigned index = 0;
        snprintf(path, sizeof path, "%s/index", cli_get(args, "--dir"));
        FILE *f = fopen(path, "r");
        if (f == NULL || fscanf(f, "%u", &index) != 1)
            index = 0;
        if (f != NULL)
            fclose(f);
        struct cli_json j;
        cli_json_begin(&j, stdout);
        cli_json_u64(&j, "server", index);
        cli_json_str(&j, "user", cli_get(args, "--user"));
        cli_json_str(&j, "period", cli_get(args, "--period"));
        cli_json_str(&j, "out", cli_get(args, "--out"));
        cli_json_end(&j);
    }
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
        if (cli_get(args, "--json") != NULL) {
            struct cli_json j;
            cli_json_begin(&j, stdout);
            cli_json_str(&j, "user", cli_get(args, "--user"));
            cli_json_str(&j, "period", cli_get(args, "--period"));
            cli_json_u64(&j, "shares", count);
            cli_json_strn(&j, "PVT", hex, 2 * MS_ECCSI_POINT_BYTES);
            cli_json_str(&j, "rsk_out", cli_get(args, "--rsk-out"));
            cli_json_str(&j, "ssk_out", cli_get(args, "--ssk-out"));
            cli_json_end(&j);
        } else {
            printf("PVT %s\n", hex);
        }
    }
    ms_wipe(rsk, sizeof rsk);
    ms_wipe(ssk, sizeof ssk);
    free(copy);
    return e;
}

const struct cli_opt cli_kms_threshold_refresh_opts[] = {
    {"--dir", "DIR", CLI_REQUIRED, "this server's directory (after kms threshold init)"},
    {"--peers", "FILE", CLI_REQUIRED, "the peers table (every server takes part)"},
    CLI_TKMS_UNLOCK_OPTS,
    {"--share-out-dir", "DIR", 0, "custodian-share seal: write the new share-1.key ... here"},
    {"--timeout", "SECONDS", 0, "how long a round waits for the other servers (default 120)"},
    {NULL, NULL, 0, NULL},
};

ms_err cli_kms_threshold_refresh(const struct cli_args *args)
{
    ms_tkms_refresh_params p = {0};
    p.dir = cli_get(args, "--dir");
    p.peers_file = cli_get(args, "--peers");
    p.share_out_dir = cli_get(args, "--share-out-dir");
    ms_err e = MS_OK;
    if ((e = read_timeout(args, 120, &p.timeout_ms)) != MS_OK)
        return e;
    if (p.share_out_dir != NULL && cli_get(args, "--share") == NULL)
        return cli_fail(MS_ERR_USAGE, "--share-out-dir goes with --share (a server sealed "
                                      "with custodian shares)");
    uint8_t pass[CLI_TKMS_UNLOCK_MAX];
    size_t pass_len = 0;
    e = cli_tkms_read_unlock(args, pass, sizeof pass, &pass_len);
    ms_tkms_public pub;
    unsigned epoch = 0;
    char detail[400] = "";
    if (e == MS_OK) {
        p.unlock = pass;
        p.unlock_len = pass_len;
        e = ms_tkms_node_refresh(&p, &pub, &epoch, detail, sizeof detail);
        if (e != MS_OK)
            cli_fail(e, "%s", detail[0] ? detail : "kms threshold refresh");
    }
    ms_wipe(pass, sizeof pass);
    if (e != MS_OK)
        return e;
    if (p.share_out_dir != NULL)
        for (unsigned i = 1; i <= 16; i++) { /* a seal has at most 16 custodians */
            char path[4200];
            snprintf(path, sizeof path, "%s/share-%u.key", p.share_out_dir, i);
            if (access(path, F_OK) == 0)
                printf("custodian share %u: %s\n", i, path);
        }
    char fp[17];
    ms_tkms_fingerprint(&pub, fp);
    printf("fingerprint %s\nepoch %u\n", fp, epoch);
    return MS_OK;
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
