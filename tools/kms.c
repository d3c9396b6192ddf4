/*
 * `mikeysakke kms ...`: the KMS commands and the Vault-style unseal agent.
 *
 * The master secrets live only in the agent (`kms agent`, started in the background by
 * the first `kms unseal`): a process with core dumps off, not ptrace-able, its memory
 * locked where allowed, listening on DIR/agent.sock (mode 0600, peer uid checked). The
 * other commands send it a request (a verb and its options, never a master secret; a
 * passphrase, PIN, share or auditor credential read from a file by the CLI may travel)
 * and print its answer. Commands that need no secret (status, user list, cert,
 * audit verify, init) open the KMS directory themselves.
 *
 * Wire format (one request and one answer per connection): a 4-octet big-endian length,
 * then fields [1-octet name length][name][4-octet value length][value]. An answer has
 * "status" (the ms_err as decimal), "out" (stdout text), "err" (message detail) and, for
 * some verbs, "data" fields.
 */
/* struct ucred, SO_PEERCRED, accept4 */
#define _GNU_SOURCE
#include "kms_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

#include "config.h"
#include "mikeysakke/kms.h"
#include "mikeysakke/mikey.h"
#include "net/http.h"

#define MSG_MAX (1u << 20)
#define SECRET_TEXT_MAX 1024
#define XML_MAX (256 * 1024)
#define MS_KMSIF_MAX_BODY (256 * 1024) /* the XML reader's own limit */

/* ---- option tables ------------------------------------------------------------------------ */

#define OPT_DIR {"--dir", "DIR", CLI_REQUIRED, "the KMS directory"}
#define OPT_END {NULL, NULL, 0, NULL}

const struct cli_opt cli_kms_init_opts[] = {
    OPT_DIR,
    {"--uri", "KMS_URI", CLI_REQUIRED, "the KMS URI (kms.example.org)"},
    {"--scheme", "NAME", 0, "rfc6509 (monthly tel URIs, default) or 3gpp (hashed UIDs)"},
    {"--period-len", "N", 0, "3gpp: key period length in seconds"},
    {"--period-offset", "N", 0, "3gpp: key period offset in seconds (default 0)"},
    {"--first-period", "TIME", 0, "a time in the first key period (default now)"},
    {"--passphrase-file", "FILE", 0, "seal under a passphrase read from FILE (mode 0600)"},
    {"--shares", "K/N", 0, "seal under K-of-N custodian shares"},
    {"--share-out-dir", "DIR", 0, "with --shares: write share-1.key ... share-N.key here"},
    {"--pkcs11-module", "SO", 0, "seal with a key in a PKCS#11 token (module path)"},
    {"--token", "LABEL", 0, "the token label"},
    {"--pin-file", "FILE", 0, "the token user PIN (mode 0600)"},
    {"--key-label", "L", 0, "the AES key's label in the token (default mikeysakke-kms)"},
    {"--auditors", "N", CLI_REQUIRED, "auditor credentials to create (1 to 16)"},
    {"--approvals", "M", 0, "distinct credentials an extraction needs (default 1)"},
    {"--max-periods-ahead", "N", 0, "kms issue: at most N key periods after the current one (1-1000, default 2)"},
    {"--auditor-out-dir", "DIR", CLI_REQUIRED, "write auditor-1.key ... here (mode 0600)"},
    {"--scrypt-log2n", "N", 0, "scrypt cost (default 17); small values for tests only"},
    {"--audit-syslog", NULL, CLI_FLAG, "copy the audit log to syslog as it is written"},
    OPT_END,
};
const struct cli_opt cli_kms_unseal_opts[] = {
    OPT_DIR,
    {"--share", "FILE", 0, "one custodian share"},
    {"--passphrase-file", "FILE", 0, "the passphrase (default: prompt without echo)"},
    {"--pin-file", "FILE", 0, "the PKCS#11 token PIN"},
    {"--adopt-settings", NULL, CLI_FLAG, "authenticate settings that carry no MAC yet (once, "
                                         "after checking them)"},
    OPT_END,
};
const struct cli_opt cli_kms_status_opts[] = {OPT_DIR, OPT_END};
const struct cli_opt cli_kms_seal_opts[] = {OPT_DIR, OPT_END};
const struct cli_opt cli_kms_agent_opts[] = {OPT_DIR, OPT_END};
#define OPT_USER {"--user", "URI", CLI_REQUIRED, "the user's URI (tel:, sip:, MC service ID)"}
const struct cli_opt cli_kms_user_add_opts[] = {OPT_DIR, OPT_USER, OPT_END};
const struct cli_opt cli_kms_user_list_opts[] = {OPT_DIR, OPT_END};
const struct cli_opt cli_kms_user_suspend_opts[] = {OPT_DIR, OPT_USER, OPT_END};
const struct cli_opt cli_kms_user_resume_opts[] = {OPT_DIR, OPT_USER, OPT_END};
const struct cli_opt cli_kms_user_remove_opts[] = {OPT_DIR, OPT_USER, OPT_END};
const struct cli_opt cli_kms_device_enrol_opts[] = {
    OPT_DIR, OPT_USER,
    {"--device", "ID", CLI_REQUIRED, "the device ID (letters, digits, . _ - : @)"},
    {"--out", "FILE", CLI_REQUIRED, "write the enrolment file here (mode 0600)"},
    OPT_END,
};
#define OPT_PERIOD {"--period", "P", CLI_REQUIRED, "key period: number, current, next or a TIME"}
const struct cli_opt cli_kms_issue_opts[] = {
    OPT_DIR, OPT_PERIOD,
    {"--threads", "N", 0, "threads (default 2)"},
    OPT_END,
};
const struct cli_opt cli_kms_export_opts[] = {
    OPT_DIR, OPT_PERIOD,
    {"--out", "DIR", CLI_REQUIRED, "write the packages and index.txt here"},
    OPT_END,
};
const struct cli_opt cli_kms_audit_extract_opts[] = {
    OPT_DIR, OPT_USER, OPT_PERIOD,
    {"--reason", "TEXT", CLI_REQUIRED, "why (recorded in the audit log)"},
    {"--credential", "FILE[,FILE]", CLI_REQUIRED, "auditor credential file(s), comma separated"},
    {"--out", "FILE", CLI_REQUIRED, "write the RSK here (mode 0600)"},
    {"--checkpoint-out", "FILE", 0, "write the extraction's audit checkpoint here (default: "
                                    "stderr)"},
    OPT_END,
};
const struct cli_opt cli_kms_audit_verify_opts[] = {
    {"--dir", "DIR", 0, "the KMS directory (also checks the head kept in the store)"},
    {"--log", "FILE", 0, "a copied audit log (with --public)"},
    {"--public", "FILE", 0, "the audit public key file (audit.pub)"},
    {"--checkpoint", "FILE", 0, "a checkpoint kept by the auditors: the log must still hold it"},
    OPT_END,
};
const struct cli_opt cli_kms_audit_checkpoint_opts[] = {OPT_DIR, OPT_END};
const struct cli_opt cli_kms_audit_syslog_opts[] = {
    OPT_DIR,
    {"--copy", "yes|no", CLI_REQUIRED, "copy the audit log to syslog (authpriv) or stop"},
    OPT_END,
};
const struct cli_opt cli_kms_rollover_opts[] = {
    OPT_DIR,
    {"--from-period", "P", CLI_REQUIRED, "first key period of the new keys (future: number or next)"},
    {"--passphrase-file", "FILE", 0, "passphrase seal: the (new) passphrase"},
    {"--share-out-dir", "DIR", 0, "shares seal: write the new shares here"},
    {"--pin-file", "FILE", 0, "PKCS#11 seal: the token PIN"},
    OPT_END,
};
const struct cli_opt cli_kms_serve_opts[] = {
    {"--dir", "DIR", 0, "the KMS directory (or [kms] dir in --config)"},
    {"--config", "FILE", 0, "settings from the [kms] section of FILE (options override)"},
    {"--listen", "ADDR", 0, "address to listen on (default all)"},
    {"--port", "N", 0, "TCP port (default 8443; 0: any free port)"},
    {"--cert", "PEM", 0, "TLS server certificate chain (required here or in --config)"},
    {"--key", "PEM", 0, "TLS private key (mode 0600 or 0640)"},
    {"--rate", "R", 0, "requests per second per client address (default 10; 0: no limit)"},
    {"--burst", "B", 0, "rate limit burst (default 20)"},
    {"--threads", "N", 0, "server threads (default 2)"},
    {"--max-body", "N", 0, "largest request body in octets (default 65536)"},
    {"--max-connections", "N", 0, "connections in total (default 1024)"},
    {"--max-per-client", "N", 0, "connections per IPv4 address or IPv6 /64 (default 32)"},
    {"--timeout", "S", 0, "seconds to complete a request, and idle (default 30)"},
    OPT_END,
};
const struct cli_opt cli_kms_cert_opts[] = {
    OPT_DIR,
    {"--period", "P", 0, "the certificate in force for this key period (default current)"},
    OPT_END,
};

/* ---- small helpers ------------------------------------------------------------------------ */

static ms_err parse_uint(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return cli_fail(MS_ERR_USAGE, "%s: not a number: %s", opt, s ? s : "");
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return cli_fail(MS_ERR_USAGE, "%s: not a number in range: %s", opt, s);
    *out = (uint64_t)v;
    return MS_OK;
}

/* "YYYY-MM-DDTHH:MM:SSZ" -> NTP seconds; -1 if s is not one. */
static int parse_time(const char *s, uint64_t *ntp)
{
    unsigned y, mo, d, h, mi, se;
    char z = 0;
    int used = 0;
    if (strlen(s) != 20 ||
        sscanf(s, "%4u-%2u-%2uT%2u:%2u:%2u%c%n", &y, &mo, &d, &h, &mi, &se, &z, &used) != 7 ||
        used != 20 || z != 'Z' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        se > 60 || y < 1970)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = (int)y - 1900;
    tm.tm_mon = (int)mo - 1;
    tm.tm_mday = (int)d;
    tm.tm_hour = (int)h;
    tm.tm_min = (int)mi;
    tm.tm_sec = (int)se;
    time_t t = timegm(&tm);
    if (t < 0)
        return -1;
    *ntp = (uint64_t)t + MS_NTP_UNIX_OFFSET;
    return 0;
}

/* Reads a private file whole: regular, no group/other bits (MS_ERR_KEYFILE_MODE); a
 * final newline is dropped. */
static ms_err read_private(const char *opt, const char *path, uint8_t *out, size_t cap,
                           size_t *len)
{
    int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, strerror(errno));
    struct stat st;
    ms_err e = MS_OK;
    size_t n = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        e = cli_fail(MS_ERR_KEYFILE_MODE, "%s %s: not a regular file", opt, path);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        e = cli_fail(MS_ERR_KEYFILE_MODE, "%s %s: mode %04o lets other users access it", opt,
                     path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, out + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            e = cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap) {
            e = cli_fail(MS_ERR_BAD_LENGTH, "%s %s: file too long", opt, path);
            goto out;
        }
    }
    if (n > 0 && out[n - 1] == '\n')
        n--;
    if (n > 0 && out[n - 1] == '\r')
        n--;
    if (n == 0)
        e = cli_fail(MS_ERR_BAD_LENGTH, "%s %s: empty", opt, path);
out:
    close(fd);
    if (e != MS_OK)
        ms_wipe(out, cap);
    else
        *len = n;
    return e;
}

/* A hex-line private file (a share). */
static ms_err read_private_hex(const char *opt, const char *path, uint8_t *out, size_t cap,
                               size_t *len)
{
    uint8_t text[2 * MS_KMS_SHARE_MAX + 4];
    size_t n = 0;
    ms_err e = read_private(opt, path, text, sizeof text, &n);
    if (e != MS_OK)
        return e;
    if (n % 2 != 0 || n / 2 > cap || cli_hex_decode(out, (const char *)text, n / 2) != 0)
        e = cli_fail(MS_ERR_SHARE, "%s %s: not a share (hex line)", opt, path);
    else
        *len = n / 2;
    ms_wipe(text, sizeof text);
    return e;
}

/* A secret from a file, or typed at a no-echo prompt when stdin is a terminal. */
static ms_err get_secret(const char *opt, const char *path, const char *prompt, int confirm,
                         uint8_t *out, size_t cap, size_t *len)
{
    if (path != NULL)
        return read_private(opt, path, out, cap, len);
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0 || !isatty(fd)) {
        if (fd >= 0)
            close(fd);
        return cli_fail(MS_ERR_USAGE, "%s is needed (no terminal to prompt on)", opt);
    }
    struct termios old, quiet;
    ms_err e = MS_OK;
    if (tcgetattr(fd, &old) != 0) {
        close(fd);
        return cli_fail(MS_ERR_IO, "terminal");
    }
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    uint8_t again[SECRET_TEXT_MAX];
    for (int round = 0; round < (confirm ? 2 : 1) && e == MS_OK; round++) {
        uint8_t *dst = round == 0 ? out : again;
        size_t n = 0;
        const char *p = round == 0 ? prompt : "Again: ";
        if (write(fd, p, strlen(p)) < 0 || tcsetattr(fd, TCSAFLUSH, &quiet) != 0) {
            e = cli_fail(MS_ERR_IO, "terminal");
            break;
        }
        for (;;) {
            char c;
            ssize_t r = read(fd, &c, 1);
            if (r <= 0 || c == '\n')
                break;
            if (n < cap)
                dst[n++] = (uint8_t)c;
        }
        (void)tcsetattr(fd, TCSAFLUSH, &old);
        (void)write(fd, "\n", 1);
        if (n == 0 || n >= cap)
            e = cli_fail(MS_ERR_PASSPHRASE, "empty or too long");
        else if (round == 0)
            *len = n;
        else if (n != *len || memcmp(out, again, n) != 0)
            e = cli_fail(MS_ERR_PASSPHRASE, "the two entries differ");
    }
    ms_wipe(again, sizeof again);
    close(fd);
    return e;
}

/* Writes a private file atomically (temp O_EXCL 0600, fsync, link: never replaces). */
static ms_err write_private(const char *opt, const char *path, const void *data, size_t len)
{
    char tmp[PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, strerror(errno));
    size_t done = 0;
    const uint8_t *p = data;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    int ok = done == len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || link(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        return cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, ok ? strerror(err) : "write failed");
    }
    unlink(tmp);
    return MS_OK;
}

static ms_err make_dir(const char *opt, const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return cli_fail(MS_ERR_IO, "%s %s: %s", opt, dir, strerror(errno));
    return MS_OK;
}

static const char *method_name(int m)
{
    return m == MS_KMS_SEAL_PASSPHRASE ? "passphrase"
           : m == MS_KMS_SEAL_SHARES   ? "custodian shares"
           : m == MS_KMS_SEAL_PKCS11   ? "PKCS#11 token"
                                       : "unknown";
}

/* Messages for the KMS's refusals: the code's sentence plus what to do. */
static ms_err kms_fail(ms_err e, const char *what)
{
    if (e == MS_ERR_SEALED)
        return cli_fail(e, "%s: run 'mikeysakke kms unseal' first", what);
    return cli_fail(e, "%s", what);
}

/* Writes the handed-out shares and credentials; wipes them. */
static ms_err write_handout(ms_kms_handout *h, const char *share_dir, const char *auditor_dir)
{
    ms_err e = MS_OK;
    char path[PATH_MAX + 64];
    for (size_t i = 0; i < h->n_shares && e == MS_OK; i++) {
        snprintf(path, sizeof path, "%s/share-%zu.key", share_dir, i + 1);
        e = cli_write_secret("--share-out-dir", path, h->share[i], h->share_len[i], 0);
        if (e == MS_OK)
            printf("custodian share %zu: %s\n", i + 1, path);
    }
    for (size_t i = 0; auditor_dir != NULL && i < h->n_credentials && e == MS_OK; i++) {
        snprintf(path, sizeof path, "%s/auditor-%zu.key", auditor_dir, i + 1);
        e = cli_write_secret("--auditor-out-dir", path, h->credential[i],
                             MS_KMS_CREDENTIAL_BYTES, 0);
        if (e == MS_OK)
            printf("auditor credential %zu: %s\n", i + 1, path);
    }
    ms_wipe(h, sizeof *h);
    return e;
}

/* ---- kms init ------------------------------------------------------------------------------ */

ms_err cli_kms_init(const struct cli_args *args)
{
    const char *dir = cli_get(args, "--dir");
    const char *pass_file = cli_get(args, "--passphrase-file");
    const char *shares = cli_get(args, "--shares");
    const char *share_dir = cli_get(args, "--share-out-dir");
    const char *module = cli_get(args, "--pkcs11-module");
    const char *token = cli_get(args, "--token");
    const char *pin_file = cli_get(args, "--pin-file");
    const char *scheme = cli_get(args, "--scheme");
    const char *auditor_dir = cli_get(args, "--auditor-out-dir");
    ms_kms_config cfg;
    ms_kms_seal_material m;
    memset(&cfg, 0, sizeof cfg);
    memset(&m, 0, sizeof m);
    ms_err e;
    uint64_t v;

    cfg.kms_uri = cli_get(args, "--uri");
    cfg.id_scheme = MS_MIKEY_ID_SCHEME_TEL_MONTHLY;
    if (scheme != NULL && strcmp(scheme, "3gpp") == 0) {
        cfg.id_scheme = MS_MIKEY_ID_SCHEME_HASHED_UID;
        if (cli_get(args, "--period-len") == NULL)
            return cli_fail(MS_ERR_USAGE, "--scheme 3gpp needs --period-len");
        if ((e = parse_uint("--period-len", cli_get(args, "--period-len"), UINT32_MAX, &v)) != MS_OK)
            return e;
        if (v == 0)
            return cli_fail(MS_ERR_USAGE, "--period-len must be > 0");
        cfg.period_len = v;
        if (cli_get(args, "--period-offset") != NULL) {
            if ((e = parse_uint("--period-offset", cli_get(args, "--period-offset"), UINT32_MAX,
                                &v)) != MS_OK)
                return e;
            cfg.period_offset = v;
        }
    } else if (scheme != NULL && strcmp(scheme, "rfc6509") != 0) {
        return cli_fail(MS_ERR_USAGE, "--scheme: rfc6509 or 3gpp, not %s", scheme);
    } else if (cli_get(args, "--period-len") || cli_get(args, "--period-offset")) {
        return cli_fail(MS_ERR_USAGE, "--period-len/--period-offset need --scheme 3gpp");
    }
    if (cli_get(args, "--first-period") != NULL &&
        parse_time(cli_get(args, "--first-period"), &cfg.first_time) != 0)
        return cli_fail(MS_ERR_USAGE, "--first-period: YYYY-MM-DDTHH:MM:SSZ");
    if ((e = parse_uint("--auditors", cli_get(args, "--auditors"), MS_KMS_MAX_AUDITORS, &v)) != MS_OK)
        return e;
    if (v == 0)
        return cli_fail(MS_ERR_USAGE, "--auditors: 1 to %d", MS_KMS_MAX_AUDITORS);
    cfg.n_auditors = (unsigned)v;
    cfg.approvals = 1;
    cfg.audit_syslog = cli_get(args, "--audit-syslog") != NULL;
    if (cli_get(args, "--approvals") != NULL) {
        if ((e = parse_uint("--approvals", cli_get(args, "--approvals"), cfg.n_auditors, &v)) != MS_OK)
            return e;
        if (v == 0)
            return cli_fail(MS_ERR_USAGE, "--approvals: 1 to --auditors");
        cfg.approvals = (unsigned)v;
    }
    if (cli_get(args, "--max-periods-ahead") != NULL) {
        if ((e = parse_uint("--max-periods-ahead", cli_get(args, "--max-periods-ahead"), 1000,
                            &cfg.max_periods_ahead)) != MS_OK)
            return e;
        if (cfg.max_periods_ahead == 0)
            return cli_fail(MS_ERR_USAGE, "--max-periods-ahead: 1 to 1000");
    }

    int methods = (pass_file != NULL) + (shares != NULL) + (module != NULL);
    if (methods > 1)
        return cli_fail(MS_ERR_USAGE, "choose one of --passphrase-file, --shares, --pkcs11-module");
    uint8_t secret[SECRET_TEXT_MAX];
    size_t secret_len = 0;
    if (cli_get(args, "--scrypt-log2n") != NULL) {
        if ((e = parse_uint("--scrypt-log2n", cli_get(args, "--scrypt-log2n"), 22, &v)) != MS_OK)
            return e;
        if (v < 4)
            return cli_fail(MS_ERR_USAGE, "--scrypt-log2n: 4 to 22");
        m.scrypt_log2_n = (unsigned)v;
    }
    if (shares != NULL) {
        unsigned k = 0, n = 0;
        int used = 0;
        if (sscanf(shares, "%u/%u%n", &k, &n, &used) != 2 || shares[used] != '\0' || k < 1 ||
            k > n || n > MS_KMS_MAX_SHARES)
            return cli_fail(MS_ERR_USAGE, "--shares K/N with 1 <= K <= N <= 16");
        if (share_dir == NULL)
            return cli_fail(MS_ERR_USAGE, "--shares needs --share-out-dir");
        m.method = MS_KMS_SEAL_SHARES;
        m.k = k;
        m.n = n;
    } else if (module != NULL) {
        if (token == NULL || pin_file == NULL)
            return cli_fail(MS_ERR_USAGE, "--pkcs11-module needs --token and --pin-file");
        if ((e = read_private("--pin-file", pin_file, secret, sizeof secret, &secret_len)) != MS_OK)
            return e;
        m.method = MS_KMS_SEAL_PKCS11;
        m.pkcs11_module = module;
        m.token_label = token;
        m.key_label = cli_get(args, "--key-label");
        m.pin = secret;
        m.pin_len = secret_len;
    } else {
        if ((e = get_secret("--passphrase-file", pass_file, "New KMS passphrase: ", 1, secret,
                            sizeof secret, &secret_len)) != MS_OK)
            return e;
        m.method = MS_KMS_SEAL_PASSPHRASE;
        m.passphrase = secret;
        m.passphrase_len = secret_len;
    }
    if ((e = make_dir("--auditor-out-dir", auditor_dir)) != MS_OK ||
        (share_dir != NULL && (e = make_dir("--share-out-dir", share_dir)) != MS_OK)) {
        ms_wipe(secret, sizeof secret);
        return e;
    }

    ms_kms_handout *h = calloc(1, sizeof *h);
    if (h == NULL) {
        ms_wipe(secret, sizeof secret);
        return cli_fail(MS_ERR_NOMEM, "kms init");
    }
    e = ms_kms_create(dir, &cfg, &m, h, NULL);
    ms_wipe(secret, sizeof secret);
    if (e != MS_OK) {
        free(h);
        return kms_fail(e, dir);
    }
    printf("KMS %s created in %s (sealed with %s)\n", cfg.kms_uri, dir, method_name(m.method));
    e = write_handout(h, share_dir, auditor_dir);
    free(h);
    if (e == MS_OK)
        printf("certificate: %s/certificate.xml\naudit public key: %s/audit.pub\n", dir, dir);
    return e;
}

/* ---- wire format ------------------------------------------------------------------------------ */

struct msg {
    uint8_t *buf; /* 4-octet length, then fields */
    size_t len;
    int overflow;
};

static int msg_init(struct msg *m)
{
    m->buf = malloc(MSG_MAX + 4);
    m->len = 4;
    m->overflow = 0;
    return m->buf != NULL;
}

static void msg_free(struct msg *m)
{
    if (m->buf != NULL) {
        ms_wipe(m->buf, m->len); /* may carry a share, PIN, credential, RSK, TrK */
        free(m->buf);
    }
    m->buf = NULL;
}

static void msg_add(struct msg *m, const char *key, const void *val, size_t vlen)
{
    size_t klen = strlen(key);
    if (m->overflow || klen > 255 || m->len + 5 + klen + vlen > MSG_MAX + 4) {
        m->overflow = 1;
        return;
    }
    uint8_t *p = m->buf + m->len;
    p[0] = (uint8_t)klen;
    memcpy(p + 1, key, klen);
    p += 1 + klen;
    p[0] = (uint8_t)(vlen >> 24);
    p[1] = (uint8_t)(vlen >> 16);
    p[2] = (uint8_t)(vlen >> 8);
    p[3] = (uint8_t)vlen;
    if (vlen)
        memcpy(p + 4, val, vlen);
    m->len += 5 + klen + vlen;
}

static void msg_adds(struct msg *m, const char *key, const char *val)
{
    msg_add(m, key, val, strlen(val));
}

static void msg_addf(struct msg *m, const char *key, const char *fmt, ...) CLI_PRINTF(3, 4);
static void msg_addf(struct msg *m, const char *key, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    msg_adds(m, key, buf);
}

/* The `index`-th field named key, or NULL. */
static const uint8_t *msg_get(const struct msg *m, const char *key, size_t index, size_t *vlen)
{
    size_t klen = strlen(key), off = 4;
    while (off + 5 <= m->len) {
        size_t kl = m->buf[off];
        if (off + 5 + kl > m->len)
            return NULL;
        const uint8_t *p = m->buf + off + 1 + kl;
        size_t vl = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        if (vl > m->len - (off + 5 + kl))
            return NULL;
        if (kl == klen && memcmp(m->buf + off + 1, key, klen) == 0 && index-- == 0) {
            *vlen = vl;
            return p + 4;
        }
        off += 5 + kl + vl;
    }
    return NULL;
}

/* A text field as a C string in out (cap), or NULL if absent/too long/not text. */
static const char *msg_str(const struct msg *m, const char *key, size_t index, char *out,
                           size_t cap)
{
    size_t n = 0;
    const uint8_t *v = msg_get(m, key, index, &n);
    if (v == NULL || n >= cap || memchr(v, 0, n) != NULL)
        return NULL;
    memcpy(out, v, n);
    out[n] = '\0';
    return out;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

static int msg_send(int fd, struct msg *m)
{
    if (m->overflow)
        return -1;
    size_t body = m->len - 4;
    m->buf[0] = (uint8_t)(body >> 24);
    m->buf[1] = (uint8_t)(body >> 16);
    m->buf[2] = (uint8_t)(body >> 8);
    m->buf[3] = (uint8_t)body;
    return write_all(fd, m->buf, m->len);
}

static int msg_recv(int fd, struct msg *m)
{
    uint8_t hdr[4];
    if (read_all(fd, hdr, 4) != 0)
        return -1;
    size_t body = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
    if (body > MSG_MAX)
        return -1;
    memcpy(m->buf, hdr, 4);
    m->len = 4 + body;
    return read_all(fd, m->buf + 4, body);
}

/* ---- socket paths ------------------------------------------------------------------------------ */

static ms_err sock_addr(const char *opt, const char *dir, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    int n = snprintf(sa->sun_path, sizeof sa->sun_path, "%s/agent.sock", dir);
    if (n < 0 || (size_t)n >= sizeof sa->sun_path)
        return cli_fail(MS_ERR_ARG, "%s %s: path too long for a socket", opt, dir);
    return MS_OK;
}

/* Connects to the agent of dir: the socket, or -1 if no agent answers. */
static int agent_connect(const char *dir)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/agent.sock", dir);
    if (n < 0 || (size_t)n >= sizeof sa.sun_path)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends req to the agent and prints its answer; returns the agent's status. The answer
 * stays in *ans for the caller (data fields). */
static ms_err agent_call(const char *dir, struct msg *req, struct msg *ans)
{
    int fd = agent_connect(dir);
    if (fd < 0)
        return cli_fail(MS_ERR_SEALED, "%s: no unseal agent runs; run 'mikeysakke kms unseal'",
                        dir);
    struct timeval tv = {600, 0}; /* issuance of a large community takes a while */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (msg_send(fd, req) != 0 || msg_recv(fd, ans) != 0) {
        close(fd);
        return cli_fail(MS_ERR_IO, "%s: the agent did not answer", dir);
    }
    close(fd);
    char status[16], text[4096];
    uint64_t st = 0;
    if (msg_str(ans, "status", 0, status, sizeof status) == NULL ||
        parse_uint("status", status, MS_ERR__LAST, &st) != MS_OK)
        return cli_fail(MS_ERR_IO, "%s: malformed answer from the agent", dir);
    size_t n = 0;
    const uint8_t *out = msg_get(ans, "out", 0, &n);
    if (out != NULL && n > 0)
        fwrite(out, 1, n, stdout);
    if (st != MS_OK)
        return kms_fail((ms_err)st, msg_str(ans, "err", 0, text, sizeof text) ? text : dir);
    return MS_OK;
}

static ms_err simple_request(const struct cli_args *args, const char *verb,
                             const char *const *opts, size_t n_opts)
{
    const char *dir = cli_get(args, "--dir");
    struct msg req, ans;
    if (!msg_init(&req) || !msg_init(&ans)) {
        msg_free(&req);
        return cli_fail(MS_ERR_NOMEM, "request");
    }
    msg_adds(&req, "verb", verb);
    for (size_t i = 0; i < n_opts; i++)
        if (cli_get(args, opts[i]) != NULL)
            msg_adds(&req, opts[i] + 2, cli_get(args, opts[i]));
    ms_err e = agent_call(dir, &req, &ans);
    msg_free(&req);
    msg_free(&ans);
    return e;
}

/* ---- the agent ------------------------------------------------------------------------------ */

static volatile sig_atomic_t agent_stop;

static void on_signal(int sig)
{
    (void)sig;
    agent_stop = 1;
}

/* Locked memory where allowed (all of it when the limit permits, else the library still
 * locks the blocks holding secrets), no core, no ptrace by other processes. */
static void harden(void)
{
    struct rlimit rl = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &rl);
#if defined(__linux__)
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
#if defined(__SANITIZE_ADDRESS__)
    /* ASan's shadow spans terabytes: locking it is neither possible nor useful. */
#else
    struct rlimit ml;
    if (getrlimit(RLIMIT_MEMLOCK, &ml) == 0 && (ml.rlim_cur == RLIM_INFINITY || geteuid() == 0)) {
#ifdef MCL_ONFAULT
        (void)mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT);
#else
        (void)mlockall(MCL_CURRENT | MCL_FUTURE);
#endif
    }
#endif
}

struct agent {
    ms_kms *kms;
    char dir[PATH_MAX];
    int seal_now;
    int serving; /* kms serve: sealing wipes the secrets but the process stays */
};

static ms_err resolve_period(ms_kms *k, const char *s, uint64_t *p)
{
    ms_kms_status st;
    uint64_t t;
    if (strcmp(s, "current") == 0 || strcmp(s, "next") == 0) {
        ms_err e = ms_kms_status_get(k, &st);
        if (e != MS_OK)
            return e;
        *p = st.current_period + (s[0] == 'n');
        return MS_OK;
    }
    if (parse_time(s, &t) == 0)
        return ms_kms_period_of(k, t, p);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] >= '0' && s[0] <= '9' && errno == 0 && *end == '\0') {
        *p = v;
        return MS_OK;
    }
    /* "all", "*", "N-M", "N..", ...: more than one period */
    if (strcmp(s, "all") == 0 || strchr(s, '*') || strchr(s, '-') || strstr(s, ".."))
        return MS_ERR_AUDIT_SCOPE;
    return MS_ERR_USAGE;
}

static int print_user(void *ctx, const char *uri, bool suspended, size_t n_devices)
{
    struct msg *ans = ctx;
    msg_addf(ans, "out", "%s %s %zu device%s\n", uri, suspended ? "suspended" : "active",
             n_devices, n_devices == 1 ? "" : "s");
    return 0;
}

static void status_text(ms_kms *k, char *out, size_t cap, const char *agent)
{
    ms_kms_status st;
    if (ms_kms_status_get(k, &st) != MS_OK) {
        snprintf(out, cap, "status unavailable\n");
        return;
    }
    char progress[96] = "";
    if (!st.unsealed && st.seal_method == MS_KMS_SEAL_SHARES)
        snprintf(progress, sizeof progress, "Unseal progress: %u of %u shares accepted\n",
                 st.shares_have, st.shares_need);
    char scheme[96];
    if (st.id_scheme == MS_MIKEY_ID_SCHEME_HASHED_UID)
        snprintf(scheme, sizeof scheme, "3gpp (period length %llu s, offset %llu s)",
                 (unsigned long long)st.period_len, (unsigned long long)st.period_offset);
    else
        snprintf(scheme, sizeof scheme, "rfc6509 (monthly)");
    snprintf(out, cap,
             "KMS: %s\nState: %s\n%sSeal: %s\nScheme: %s\nCurrent period: %llu\n"
             "Audit entries: %llu\nAgent: %s\n",
             st.kms_uri, st.unsealed ? "unsealed" : "sealed", progress,
             method_name(st.seal_method), scheme, (unsigned long long)st.current_period,
             (unsigned long long)st.audit_seq, agent);
}

/* What a settings refusal names (the rows), without the sentence the exit code's message
 * repeats. */
static const char *settings_why(const struct agent *a)
{
    static const char said[] = "the KMS settings in kms.db were changed outside the KMS: ";
    const char *d = ms_kms_detail(a->kms);
    if (d[0] == '\0')
        return a->dir;
    return strncmp(d, said, sizeof said - 1) == 0 ? d + sizeof said - 1 : d;
}

/* One request: fills ans; returns the status. */
static ms_err agent_handle(struct agent *a, const struct msg *req, struct msg *ans)
{
    char verb[32], user[512], text[512];
    uint64_t p = 0;
    ms_err e;
    ms_kms *k = a->kms;
    if (msg_str(req, "verb", 0, verb, sizeof verb) == NULL)
        return MS_ERR_ARG;
    const char *u = msg_str(req, "user", 0, user, sizeof user);

    if (strcmp(verb, "status") == 0) {
        char out[1024];
        status_text(k, out, sizeof out, "running");
        msg_adds(ans, "out", out);
        return MS_OK;
    }
    if (strcmp(verb, "unseal") == 0) {
        size_t n = 0;
        const uint8_t *v;
        unsigned have = 0, need = 0;
        ms_kms_adopt_settings(k, msg_get(req, "adopt_settings", 0, &n) != NULL);
        if ((v = msg_get(req, "share", 0, &n)) != NULL) {
            e = ms_kms_unseal_share(k, v, n, &have, &need);
            if (e != MS_OK)
                return e;
            ms_kms_status st;
            if (ms_kms_status_get(k, &st) == MS_OK && st.unsealed)
                msg_adds(ans, "out", "Unsealed\n");
            else
                msg_addf(ans, "out", "Unseal progress: %u of %u shares accepted\n", have, need);
            return MS_OK;
        }
        if ((v = msg_get(req, "passphrase", 0, &n)) != NULL)
            e = ms_kms_unseal_passphrase(k, v, n);
        else if ((v = msg_get(req, "pin", 0, &n)) != NULL)
            e = ms_kms_unseal_pkcs11(k, v, n);
        else
            return MS_ERR_ARG;
        if (e == MS_OK)
            msg_adds(ans, "out", "Unsealed\n");
        return e;
    }
    if (strcmp(verb, "seal") == 0) {
        e = ms_kms_seal(k);
        if (a->serving) {
            /* kms serve keeps answering (503, /healthz "sealed") until unsealed again */
            msg_adds(ans, "stays", "1");
            msg_adds(ans, "out", "Sealed: the master secrets are wiped; kms serve answers "
                                 "503 until unsealed\n");
            return e;
        }
        a->seal_now = 1;
        msg_adds(ans, "out", "Sealed: the agent wiped the master secrets and exits\n");
        return e;
    }
    if (strcmp(verb, "user_list") == 0)
        return ms_kms_user_list(k, print_user, ans);
    if (strncmp(verb, "user_", 5) == 0) {
        if (u == NULL)
            return MS_ERR_ARG;
        if (strcmp(verb, "user_add") == 0) {
            char why[200] = "";
            if ((e = ms_kms_uri_check(u, why, sizeof why)) != MS_OK)
                msg_adds(ans, "err", why);
            else
                e = ms_kms_user_add(k, u);
        } else if (strcmp(verb, "user_suspend") == 0)
            e = ms_kms_user_suspend(k, u);
        else if (strcmp(verb, "user_resume") == 0)
            e = ms_kms_user_resume(k, u);
        else if (strcmp(verb, "user_remove") == 0)
            e = ms_kms_user_remove(k, u);
        else
            return MS_ERR_ARG;
        if (e == MS_OK)
            msg_addf(ans, "out", "%s: %s\n", verb + 5, u);
        return e;
    }
    if (strcmp(verb, "enrol") == 0) {
        char device[128];
        if (u == NULL || msg_str(req, "device", 0, device, sizeof device) == NULL)
            return MS_ERR_ARG;
        char *xml = malloc(XML_MAX);
        size_t len = 0;
        if (xml == NULL)
            return MS_ERR_NOMEM;
        e = ms_kms_device_enrol(k, u, device, xml, XML_MAX, &len);
        if (e == MS_OK)
            msg_add(ans, "data", xml, len);
        ms_wipe(xml, XML_MAX);
        free(xml);
        return e;
    }
    if (strcmp(verb, "issue") == 0 || strcmp(verb, "export") == 0) {
        if (msg_str(req, "period", 0, text, sizeof text) == NULL)
            return MS_ERR_ARG;
        if ((e = resolve_period(k, text, &p)) != MS_OK)
            return e == MS_ERR_AUDIT_SCOPE ? MS_ERR_USAGE : e;
        size_t n = 0;
        if (verb[0] == 'i') {
            uint64_t threads = 0;
            char t[16];
            if (msg_str(req, "threads", 0, t, sizeof t) != NULL &&
                (sscanf(t, "%llu", (unsigned long long *)&threads) != 1 || threads > 256))
                return MS_ERR_USAGE;
            char why[256] = "";
            if ((e = ms_kms_issue_check(k, p, why, sizeof why)) != MS_OK) {
                msg_addf(ans, "err", "%s: %s", a->dir, why); /* names the limit */
                return e;
            }
            e = ms_kms_issue(k, p, (unsigned)threads, &n);
            if (e == MS_OK)
                msg_addf(ans, "out", "Issued %zu key set%s for period %llu\n", n,
                         n == 1 ? "" : "s", (unsigned long long)p);
        } else {
            char dir[PATH_MAX];
            if (msg_str(req, "out", 0, dir, sizeof dir) == NULL)
                return MS_ERR_ARG;
            e = ms_kms_export(k, p, dir, &n);
            if (e == MS_OK)
                msg_addf(ans, "out", "Exported %zu package%s for period %llu to %s\n", n,
                         n == 1 ? "" : "s", (unsigned long long)p, dir);
        }
        return e;
    }
    if (strcmp(verb, "extract") == 0) {
        const char *users[2];
        uint64_t periods[2];
        char ubuf[2][512];
        size_t nu = 0, np = 0, nc = 0;
        uint8_t(*creds)[MS_KMS_CREDENTIAL_BYTES] = calloc(MS_KMS_MAX_AUDITORS * 2, MS_KMS_CREDENTIAL_BYTES);
        if (creds == NULL)
            return MS_ERR_NOMEM;
        for (size_t i = 0; i < 8 && nu < 2; i++) {
            const char *s = msg_str(req, "user", i, ubuf[nu], sizeof ubuf[nu]);
            if (s == NULL)
                break;
            if (strcmp(s, "*") == 0 || strcmp(s, "all") == 0) {
                users[nu++] = s; /* a wildcard is never one user */
                if (nu < 2)
                    users[nu++] = s;
                continue;
            }
            users[nu++] = s;
        }
        e = MS_OK;
        for (size_t i = 0; i < 8 && np < 2; i++) {
            if (msg_str(req, "period", i, text, sizeof text) == NULL)
                break;
            ms_err r = resolve_period(k, text, &periods[np]);
            if (r == MS_ERR_AUDIT_SCOPE) {
                periods[0] = periods[1] = 0;
                np = 2; /* a range is never one period */
            } else if (r != MS_OK) {
                e = r;
                break;
            } else {
                np++;
            }
        }
        size_t n = 0;
        const uint8_t *c;
        while (e == MS_OK && nc < MS_KMS_MAX_AUDITORS * 2 &&
               (c = msg_get(req, "credential", nc, &n)) != NULL) {
            if (n != MS_KMS_CREDENTIAL_BYTES) {
                e = MS_ERR_AUDITOR;
                break;
            }
            memcpy(creds[nc++], c, n);
        }
        char reason[1024];
        if (e == MS_OK && msg_str(req, "reason", 0, reason, sizeof reason) == NULL)
            e = MS_ERR_ARG;
        uint8_t rsk[MS_SAKKE_POINT_BYTES], id[MS_SAKKE_ID_MAX_BYTES];
        size_t id_len = 0;
        if (e == MS_OK) {
            ms_kms_extract_request r = {users, nu, periods, np, reason,
                                        (const uint8_t(*)[MS_KMS_CREDENTIAL_BYTES])creds, nc};
            e = ms_kms_audit_extract(k, &r, rsk, id, &id_len);
        }
        if (e == MS_OK) {
            char idhex[2 * MS_SAKKE_ID_MAX_BYTES + 1];
            cli_hex_encode(idhex, id, id_len);
            idhex[2 * id_len] = '\0';
            msg_add(ans, "data", rsk, sizeof rsk);
            char cp[MS_KMS_CHECKPOINT_MAX];
            if (ms_kms_extract_checkpoint(k, cp, sizeof cp) == MS_OK)
                msg_adds(ans, "checkpoint", cp);
            msg_addf(ans, "out", "Extracted the RSK of %s for key period %llu (audited)\n"
                     "identifier = %s\n", users[0], (unsigned long long)periods[0], idhex);
        }
        ms_wipe(rsk, sizeof rsk);
        ms_wipe(creds, MS_KMS_MAX_AUDITORS * 2 * MS_KMS_CREDENTIAL_BYTES);
        free(creds);
        return e;
    }
    if (strcmp(verb, "checkpoint") == 0) {
        char cp[MS_KMS_CHECKPOINT_MAX];
        if ((e = ms_kms_audit_checkpoint(k, cp, sizeof cp)) == MS_OK)
            msg_adds(ans, "out", cp);
        return e;
    }
    if (strcmp(verb, "audit_syslog") == 0) {
        if (msg_str(req, "copy", 0, text, sizeof text) == NULL ||
            (strcmp(text, "yes") != 0 && strcmp(text, "no") != 0))
            return MS_ERR_USAGE;
        if ((e = ms_kms_audit_set_syslog(k, text[0] == 'y')) == MS_OK)
            msg_addf(ans, "out", "Audit log copy to syslog: %s\n", text);
        return e;
    }
    if (strcmp(verb, "rollover") == 0) {
        if (msg_str(req, "from_period", 0, text, sizeof text) == NULL)
            return MS_ERR_ARG;
        if ((e = resolve_period(k, text, &p)) != MS_OK)
            return e == MS_ERR_AUDIT_SCOPE ? MS_ERR_USAGE : e;
        ms_kms_status st;
        if ((e = ms_kms_status_get(k, &st)) != MS_OK)
            return e;
        ms_kms_seal_material m;
        memset(&m, 0, sizeof m);
        m.method = st.seal_method;
        size_t n = 0;
        const uint8_t *v;
        if ((v = msg_get(req, "passphrase", 0, &n)) != NULL) {
            m.passphrase = v;
            m.passphrase_len = n;
        }
        if ((v = msg_get(req, "pin", 0, &n)) != NULL) {
            m.pin = v;
            m.pin_len = n;
        }
        ms_kms_handout *h = calloc(1, sizeof *h);
        if (h == NULL)
            return MS_ERR_NOMEM;
        e = ms_kms_rollover(k, p, &m, h);
        if (e == MS_OK) {
            for (size_t i = 0; i < h->n_shares; i++)
                msg_add(ans, "data", h->share[i], h->share_len[i]);
            msg_addf(ans, "out", "New master keys from key period %llu; certificate-%llu.xml "
                     "written\n", (unsigned long long)p, (unsigned long long)p);
        }
        ms_wipe(h, sizeof *h);
        free(h);
        return e;
    }
    return MS_ERR_USAGE;
}

static int agent_serve(struct agent *a, int lfd)
{
    struct msg req, ans;
    if (!msg_init(&req) || !msg_init(&ans)) {
        msg_free(&req);
        return MS_ERR_NOMEM;
    }
    while (!agent_stop && !a->seal_now) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break;
        }
        /* Only our own user may talk to us (the socket mode says so too). */
        struct ucred cred;
        socklen_t cl = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 || cred.uid != getuid()) {
            close(fd);
            continue;
        }
        struct timeval tv = {10, 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (msg_recv(fd, &req) == 0) {
            ans.len = 4;
            ans.overflow = 0;
            /* status first so the client finds it in any answer */
            struct msg body;
            if (msg_init(&body)) {
                /* kms serve: the HTTPS threads share the handle */
                ms_kms_lock(a->kms);
                ms_err e = agent_handle(a, &req, &body);
                ms_kms_unlock(a->kms);
                msg_addf(&ans, "status", "%d", (int)e);
                if (e != MS_OK && msg_get(&body, "err", 0, &(size_t){0}) == NULL) /* unless the verb said why */
                    msg_adds(&ans, "err", e == MS_ERR_SETTINGS_CHANGED ? settings_why(a) : a->dir);
                if (!body.overflow && body.len > 4 && ans.len + body.len - 4 <= MSG_MAX + 4) {
                    memcpy(ans.buf + ans.len, body.buf + 4, body.len - 4);
                    ans.len += body.len - 4;
                }
                msg_free(&body);
            } else {
                msg_addf(&ans, "status", "%d", (int)MS_ERR_NOMEM);
            }
            (void)msg_send(fd, &ans);
            ms_wipe(ans.buf, ans.len);
        }
        ms_wipe(req.buf, req.len);
        close(fd);
    }
    msg_free(&req);
    msg_free(&ans);
    return 0;
}

/* The agent for dir_arg; with srv, also the HTTPS server on the same handle (kms serve).
 * Returns when sealed through the socket (agent only) or on SIGTERM/SIGINT/SIGHUP. */
static ms_err agent_run(const char *dir_arg, const ms_kms_server_config *srv, const char *shown)
{
    harden();
    char dir[PATH_MAX];
    if (realpath(dir_arg, dir) == NULL)
        return cli_fail(MS_ERR_IO, "--dir %s: %s", dir_arg, strerror(errno));
    struct sockaddr_un sa;
    ms_err e = sock_addr("--dir", dir, &sa);
    if (e != MS_OK)
        return e;

    /* one agent per KMS: the lock is held for the agent's life */
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/agent.lock", dir);
    int lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) != 0) {
        if (lock >= 0)
            close(lock);
        return cli_fail(MS_ERR_EXISTS,
                        "%s: an unseal agent or 'kms serve' already runs for this KMS; stop it "
                        "first ('mikeysakke kms seal --dir %s')",
                        dir, dir_arg);
    }

    struct agent a;
    memset(&a, 0, sizeof a);
    snprintf(a.dir, sizeof a.dir, "%s", dir);
    a.serving = srv != NULL;
    if ((e = ms_kms_open(&a.kms, dir, NULL)) != MS_OK) {
        close(lock);
        return kms_fail(e, dir);
    }

    unlink(sa.sun_path); /* stale: we hold the lock, so no agent owns it */
    mode_t old = umask(077);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        chmod(sa.sun_path, 0600) != 0 || listen(lfd, 8) != 0) {
        umask(old);
        ms_kms_close(a.kms);
        close(lock);
        return cli_fail(MS_ERR_IO, "%s: %s", sa.sun_path, strerror(errno));
    }
    umask(old);

    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = on_signal; /* no SA_RESTART: accept returns so we can wipe and leave */
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    sigaction(SIGHUP, &act, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The server's threads start with these signals blocked, so they reach this thread
     * and interrupt its accept. */
    ms_kms_server *server = NULL;
    if (srv != NULL) {
        sigset_t set, prev;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &set, &prev);
        e = ms_kms_server_start(&server, a.kms, srv);
        pthread_sigmask(SIG_SETMASK, &prev, NULL);
        if (e != MS_OK) {
            close(lfd);
            unlink(sa.sun_path);
            ms_kms_close(a.kms);
            close(lock);
            return cli_fail(e, "cannot serve on %s port %u: %s", shown, (unsigned)srv->port,
                            srv->detail != NULL && srv->detail[0] ? srv->detail : ms_strerror(e));
        }
        fprintf(stderr,
                "listening on %s://%s:%u (sealed: unseal with 'mikeysakke kms unseal --dir %s')\n",
                srv->cert_file != NULL ? "https" : "http", shown,
                (unsigned)ms_kms_server_port(server), dir_arg);
        fflush(stderr);
    }

    snprintf(path, sizeof path, "%s/agent.pid", dir);
    char pid[24];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    int pfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (pfd >= 0) {
        (void)!write(pfd, pid, (size_t)n);
        close(pfd);
    }

    agent_serve(&a, lfd);

    close(lfd);
    unlink(sa.sun_path);
    unlink(path);
    ms_kms_server_stop(server); /* no handler runs past this */
    if (!a.seal_now)
        (void)ms_kms_seal(a.kms); /* a signal: record the seal, wipe */
    ms_kms_close(a.kms);
    close(lock);
    if (srv != NULL)
        fprintf(stderr, "sealed and stopped\n");
    return MS_OK;
}

ms_err cli_kms_agent(const struct cli_args *args)
{
    return agent_run(cli_get(args, "--dir"), NULL, NULL);
}

static ms_err parse_double(const char *what, const char *s, double max, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = s != NULL ? strtod(s, &end) : -1;
    if (s == NULL || end == s || *end != '\0' || errno != 0 || !(v >= 0) || v > max)
        return cli_fail(MS_ERR_USAGE, "%s: not a number from 0 to %g: %s", what, max,
                        s ? s : "");
    *out = v;
    return MS_OK;
}

ms_err cli_kms_serve(const struct cli_args *args)
{
    static const char *const keys[] = {"dir",  "listen",  "port",     "cert", "key",
                                       "rate", "burst",   "threads",  "max-body",
                                       "max-connections", "max-per-client", "timeout", NULL};
    static const char *const opts[] = {"--dir",  "--listen", "--port",    "--cert", "--key",
                                       "--rate", "--burst",  "--threads", "--max-body",
                                       "--max-connections", "--max-per-client", "--timeout"};
    cli_config *c = NULL;
    char detail[512] = "";
    ms_err e;
    const char *cfg_path = cli_get(args, "--config");
    if (cfg_path != NULL) {
        if ((e = cli_config_load(&c, cfg_path, detail, sizeof detail)) != MS_OK)
            return cli_fail(e, "%s", detail);
        if ((e = cli_config_check(c, "kms", keys, detail, sizeof detail)) != MS_OK) {
            cli_config_free(c);
            return cli_fail(e, "%s", detail);
        }
    }
    const char *v[12];
    for (size_t i = 0; i < 12; i++)
        v[i] = cli_config_pick(cli_get(args, opts[i]), c, "kms", keys[i]);
    const char *dir = v[0];
    ms_kms_server_config sc;
    memset(&sc, 0, sizeof sc);
    sc.bind_addr = v[1];
    sc.cert_file = v[3];
    sc.key_file = v[4];
    sc.rate_per_sec = 10;
    sc.rate_burst = 20;
    sc.detail = detail;
    sc.detail_cap = sizeof detail;
    uint64_t u = 8443;
    e = MS_OK;
    if (dir == NULL)
        e = cli_fail(MS_ERR_USAGE, "kms serve: --dir DIR (or [kms] dir in --config)");
    else if (sc.cert_file == NULL || sc.key_file == NULL)
        e = cli_fail(MS_ERR_USAGE, "kms serve: --cert PEM and --key PEM (or [kms] cert/key)");
    if (e == MS_OK && v[2] != NULL && (e = parse_uint("--port", v[2], 65535, &u)) == MS_OK)
        sc.port = (uint16_t)u;
    else if (e == MS_OK && v[2] == NULL)
        sc.port = (uint16_t)u;
    if (e == MS_OK && v[5] != NULL)
        e = parse_double("--rate", v[5], 1e6, &sc.rate_per_sec);
    if (e == MS_OK && v[6] != NULL)
        e = parse_double("--burst", v[6], 1e6, &sc.rate_burst);
    if (e == MS_OK && v[7] != NULL && (e = parse_uint("--threads", v[7], 256, &u)) == MS_OK)
        sc.threads = (unsigned)u;
    if (e == MS_OK && v[8] != NULL &&
        (e = parse_uint("--max-body", v[8], MS_KMSIF_MAX_BODY, &u)) == MS_OK)
        sc.max_body = (size_t)u;
    if (e == MS_OK &&
        (e = ms_http_limits_parse(v[9], v[10], v[11], &sc.max_connections,
                                  &sc.max_per_client, &sc.timeout_sec, detail,
                                  sizeof detail)) != MS_OK)
        e = cli_fail(e, "kms serve: %s", detail);
    if (e == MS_OK && sc.rate_per_sec > 0 && sc.rate_burst < 1)
        e = cli_fail(MS_ERR_USAGE, "--burst must be at least 1 with a rate limit");
    if (e == MS_OK) {
        /* a running agent answers on the socket: refuse before touching anything */
        int fd = agent_connect(dir);
        if (fd >= 0) {
            close(fd);
            e = cli_fail(MS_ERR_EXISTS,
                         "%s: an unseal agent or 'kms serve' already runs for this KMS; stop "
                         "it first ('mikeysakke kms seal --dir %s')",
                         dir, dir);
        }
    }
    if (e == MS_OK)
        e = agent_run(dir, &sc, sc.bind_addr != NULL ? sc.bind_addr : "0.0.0.0");
    cli_config_free(c);
    return e;
}

/* Starts `mikeysakke kms agent --dir DIR` detached (double fork, new session, stdio on
 * /dev/null) and waits until it answers. */
static ms_err start_agent(const char *dir)
{
    pid_t pid = fork();
    if (pid < 0)
        return cli_fail(MS_ERR_IO, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (setsid() < 0)
            _exit(1);
        pid_t again = fork();
        if (again != 0)
            _exit(again < 0 ? 1 : 0);
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
            dup2(nul, 2);
            if (nul > 2)
                close(nul);
        }
        if (chdir("/") != 0)
            _exit(1);
        execl("/proc/self/exe", "mikeysakke", "kms", "agent", "--dir", dir, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    (void)waitpid(pid, &status, 0);
    for (int i = 0; i < 300; i++) { /* up to 30 s: a sanitizer build starts slowly */
        int fd = agent_connect(dir);
        if (fd >= 0) {
            close(fd);
            return MS_OK;
        }
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    return cli_fail(MS_ERR_IO, "%s: the unseal agent did not start", dir);
}

/* ---- commands that talk to the agent -------------------------------------------------------- */

ms_err cli_kms_unseal(const struct cli_args *args)
{
    char dir[PATH_MAX];
    if (realpath(cli_get(args, "--dir"), dir) == NULL)
        return cli_fail(MS_ERR_IO, "--dir %s: %s", cli_get(args, "--dir"), strerror(errno));
    const char *share = cli_get(args, "--share");
    const char *pass = cli_get(args, "--passphrase-file");
    const char *pin = cli_get(args, "--pin-file");
    if ((share != NULL) + (pass != NULL) + (pin != NULL) > 1)
        return cli_fail(MS_ERR_USAGE, "give one of --share, --passphrase-file, --pin-file");

    /* the material first: a typo should not leave an agent behind */
    ms_kms *k = NULL;
    ms_kms_status st;
    ms_err e = ms_kms_open(&k, dir, NULL);
    if (e != MS_OK)
        return kms_fail(e, dir);
    e = ms_kms_status_get(k, &st);
    ms_kms_close(k);
    if (e != MS_OK)
        return kms_fail(e, dir);
    uint8_t secret[SECRET_TEXT_MAX];
    size_t len = 0;
    const char *field;
    if (st.seal_method == MS_KMS_SEAL_SHARES) {
        if (share == NULL)
            return cli_fail(MS_ERR_USAGE, "this KMS is sealed with custodian shares: --share FILE");
        e = read_private_hex("--share", share, secret, MS_KMS_SHARE_MAX, &len);
        field = "share";
    } else if (st.seal_method == MS_KMS_SEAL_PKCS11) {
        if (pin == NULL)
            return cli_fail(MS_ERR_USAGE, "this KMS is sealed with a PKCS#11 token: --pin-file FILE");
        e = read_private("--pin-file", pin, secret, sizeof secret, &len);
        field = "pin";
    } else {
        if (share != NULL || pin != NULL)
            return cli_fail(MS_ERR_USAGE, "this KMS is sealed with a passphrase");
        e = get_secret("--passphrase-file", pass, "KMS passphrase: ", 0, secret, sizeof secret,
                       &len);
        field = "passphrase";
    }
    if (e != MS_OK)
        return e;

    int fd = agent_connect(dir);
    if (fd >= 0)
        close(fd);
    else if ((e = start_agent(dir)) != MS_OK) {
        ms_wipe(secret, sizeof secret);
        return e;
    }
    struct msg req, ans;
    if (!msg_init(&req) || !msg_init(&ans)) {
        msg_free(&req);
        ms_wipe(secret, sizeof secret);
        return cli_fail(MS_ERR_NOMEM, "request");
    }
    msg_adds(&req, "verb", "unseal");
    msg_add(&req, field, secret, len);
    if (cli_get(args, "--adopt-settings") != NULL)
        msg_adds(&req, "adopt_settings", "1");
    ms_wipe(secret, sizeof secret);
    e = agent_call(dir, &req, &ans);
    msg_free(&req);
    msg_free(&ans);
    return e;
}

ms_err cli_kms_status(const struct cli_args *args)
{
    const char *dir = cli_get(args, "--dir");
    int fd = agent_connect(dir);
    if (fd >= 0) {
        close(fd);
        static const char *const none[] = {NULL};
        return simple_request(args, "status", none, 0);
    }
    ms_kms *k = NULL;
    ms_err e = ms_kms_open(&k, dir, NULL);
    if (e != MS_OK)
        return kms_fail(e, dir);
    char out[1024];
    status_text(k, out, sizeof out, "not running");
    ms_kms_close(k);
    fputs(out, stdout);
    return MS_OK;
}

/* Whether process pid has ended (gone, or a zombie nobody reaped yet). */
static int process_ended(long pid)
{
    char path[64], stat[256];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return kill((pid_t)pid, 0) != 0;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *rp = strrchr(stat, ')');
    return rp != NULL && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

ms_err cli_kms_seal(const struct cli_args *args)
{
    const char *dir = cli_get(args, "--dir");
    int fd = agent_connect(dir);
    if (fd < 0) {
        printf("Sealed (no agent was running)\n");
        return MS_OK;
    }
    close(fd);
    char path[PATH_MAX + 64], text[32];
    long pid = 0;
    snprintf(path, sizeof path, "%s/agent.pid", dir);
    FILE *f = fopen(path, "re");
    if (f != NULL) {
        if (fgets(text, sizeof text, f) != NULL)
            pid = strtol(text, NULL, 10);
        fclose(f);
    }
    struct msg req, ans;
    if (!msg_init(&req) || !msg_init(&ans)) {
        msg_free(&req);
        return cli_fail(MS_ERR_NOMEM, "request");
    }
    msg_adds(&req, "verb", "seal");
    ms_err e = agent_call(dir, &req, &ans);
    size_t sn = 0;
    if (e == MS_OK && msg_get(&ans, "stays", 0, &sn) != NULL)
        pid = 0; /* kms serve: wiped, and it goes on answering 503 */
    msg_free(&req);
    msg_free(&ans);
    /* wait for the agent to end, so "sealed" means the secrets are gone */
    for (int i = 0; i < 200 && e == MS_OK && pid > 0 && !process_ended(pid); i++) {
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    return e;
}

static ms_err user_request(const struct cli_args *args, const char *verb)
{
    static const char *const opts[] = {"--user"};
    return simple_request(args, verb, opts, 1);
}

ms_err cli_kms_user_add(const struct cli_args *args)
{
    return user_request(args, "user_add");
}
ms_err cli_kms_user_suspend(const struct cli_args *args)
{
    return user_request(args, "user_suspend");
}
ms_err cli_kms_user_resume(const struct cli_args *args)
{
    return user_request(args, "user_resume");
}
ms_err cli_kms_user_remove(const struct cli_args *args)
{
    return user_request(args, "user_remove");
}

static int list_user(void *ctx, const char *uri, bool suspended, size_t n_devices)
{
    (void)ctx;
    printf("%s %s %zu device%s\n", uri, suspended ? "suspended" : "active", n_devices,
           n_devices == 1 ? "" : "s");
    return 0;
}

ms_err cli_kms_user_list(const struct cli_args *args)
{
    const char *dir = cli_get(args, "--dir");
    ms_kms *k = NULL;
    ms_err e = ms_kms_open(&k, dir, NULL);
    if (e != MS_OK)
        return kms_fail(e, dir);
    e = ms_kms_user_list(k, list_user, NULL);
    ms_kms_close(k);
    return e == MS_OK ? MS_OK : kms_fail(e, dir);
}

ms_err cli_kms_device_enrol(const struct cli_args *args)
{
    const char *out = cli_get(args, "--out");
    ms_err e = cli_check_new_file("--out", out, 0);
    if (e != MS_OK)
        return e;
    struct msg req, ans;
    if (!msg_init(&req) || !msg_init(&ans)) {
        msg_free(&req);
        return cli_fail(MS_ERR_NOMEM, "request");
    }
    msg_adds(&req, "verb", "enrol");
    msg_adds(&req, "user", cli_get(args, "--user"));
    msg_adds(&req, "device", cli_get(args, "--device"));
    e = agent_call(cli_get(args, "--dir"), &req, &ans);
    size_t n = 0;
    const uint8_t *xml = e == MS_OK ? msg_get(&ans, "data", 0, &n) : NULL;
    if (e == MS_OK && xml == NULL)
        e = cli_fail(MS_ERR_IO, "the agent sent no enrolment file");
    if (xml != NULL && (e = write_private("--out", out, xml, n)) == MS_OK)
        printf("Enrolled device %s of %s: %s (deliver out of band; secret)\n",
               cli_get(args, "--device"), cli_get(args, "--user"), out);
    msg_free(&req);
    msg_free(&ans);
    return e;
}

ms_err cli_kms_issue(const struct cli_args *args)
{
    static const char *const opts[] = {"--period", "--threads"};
    return simple_request(args, "issue", opts, 2);
}

ms_err cli_kms_export(const struct cli_args *args)
{
    const char *out = cli_get(args, "--out");
    char abs[PATH_MAX];
    ms_err e = make_dir("--out", out);
    if (e != MS_OK)
        return e;
    if (realpath(out, abs) == NULL) /* the agent runs in another directory */
        return cli_fail(MS_ERR_IO, "--out %s: %s", out, strerror(errno));
    struct msg req, ans;
    if (!msg_init(&req) || !msg_init(&ans)) {
        msg_free(&req);
        return cli_fail(MS_ERR_NOMEM, "request");
    }
    msg_adds(&req, "verb", "export");
    msg_adds(&req, "period", cli_get(args, "--period"));
    msg_adds(&req, "out", abs);
    e = agent_call(cli_get(args, "--dir"), &req, &ans);
    msg_free(&req);
    msg_free(&ans);
    return e;
}

/* Adds each comma-separated item of list as one field. */
static void add_list(struct msg *m, const char *key, const char *list)
{
    const char *p = list;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        msg_add(m, key, p, n);
        if (c == NULL)
            break;
        p = c + 1;
    }
}

ms_err cli_kms_audit_extract(const struct cli_args *args)
{
    const char *out = cli_get(args, "--out");
    ms_err e = cli_check_new_file("--out", out, 0);
    if (e != MS_OK)
        return e;
    struct msg req, ans;
    if (!msg_init(&req) || !msg_init(&ans)) {
        msg_free(&req);
        return cli_fail(MS_ERR_NOMEM, "request");
    }
    msg_adds(&req, "verb", "extract");
    add_list(&req, "user", cli_get(args, "--user"));
    add_list(&req, "period", cli_get(args, "--period"));
    msg_adds(&req, "reason", cli_get(args, "--reason"));
    /* credentials: files named in a comma-separated list */
    char *list = strdup(cli_get(args, "--credential"));
    if (list == NULL) {
        msg_free(&req);
        msg_free(&ans);
        return cli_fail(MS_ERR_NOMEM, "request");
    }
    char *save = NULL;
    for (char *f = strtok_r(list, ",", &save); f != NULL && e == MS_OK;
         f = strtok_r(NULL, ",", &save)) {
        uint8_t cred[MS_KMS_CREDENTIAL_BYTES];
        e = cli_read_secret("--credential", f, cred, sizeof cred, sizeof cred);
        if (e == MS_OK)
            msg_add(&req, "credential", cred, sizeof cred);
        ms_wipe(cred, sizeof cred);
    }
    free(list);
    if (e == MS_OK)
        e = agent_call(cli_get(args, "--dir"), &req, &ans);
    size_t n = 0;
    const uint8_t *rsk = e == MS_OK ? msg_get(&ans, "data", 0, &n) : NULL;
    if (e == MS_OK && (rsk == NULL || n != MS_SAKKE_POINT_BYTES))
        e = cli_fail(MS_ERR_IO, "the agent sent no RSK");
    if (e == MS_OK && (e = cli_write_secret("--out", out, rsk, n, 0)) == MS_OK)
        printf("RSK written to %s (mode 0600)\n", out);
    char cp[MS_KMS_CHECKPOINT_MAX];
    const char *cp_out = cli_get(args, "--checkpoint-out");
    if (e == MS_OK && msg_str(&ans, "checkpoint", 0, cp, sizeof cp) != NULL) {
        /* The auditors keep it outside the KMS directory: audit verify --checkpoint. */
        if (cp_out == NULL)
            fprintf(stderr, "Audit checkpoint (keep it; 'kms audit verify --checkpoint' checks "
                            "the log against it):\n%s", cp);
        else if ((e = write_private("--checkpoint-out", cp_out, cp, strlen(cp))) == MS_OK)
            printf("Audit checkpoint written to %s\n", cp_out);
    }
    msg_free(&req);
    msg_free(&ans);
    return e;
}

ms_err cli_kms_audit_verify(const struct cli_args *args)
{
    const char *dir = cli_get(args, "--dir");
    const char *log = cli_get(args, "--log");
    const char *pub = cli_get(args, "--public");
    if ((dir != NULL) == (log != NULL) || (log != NULL) != (pub != NULL))
        return cli_fail(MS_ERR_USAGE, "give --dir DIR, or --log FILE with --public FILE");
    uint64_t n = 0, bad = 0;
    char detail[256] = "";
    const char *cp_file = cli_get(args, "--checkpoint");
    uint8_t *cp = NULL;
    size_t cp_len = 0;
    ms_err e = cp_file != NULL ? cli_read_input("--checkpoint", cp_file, &cp, &cp_len) : MS_OK;
    if (e != MS_OK)
        return e;
    if (cp != NULL && (cp_len >= MS_KMS_CHECKPOINT_MAX || memchr(cp, '\0', cp_len) != NULL)) {
        free(cp);
        return cli_fail(MS_ERR_BAD_ENCODING, "--checkpoint %s: not a checkpoint", cp_file);
    }
    char cp_text[MS_KMS_CHECKPOINT_MAX];
    if (cp != NULL) {
        memcpy(cp_text, cp, cp_len);
        cp_text[cp_len] = '\0';
        free(cp);
        e = ms_kms_audit_verify_checkpoint(dir, log, pub, cp_text, &n, &bad, detail,
                                           sizeof detail);
    } else {
        e = dir != NULL ? ms_kms_audit_verify(dir, &n, &bad, detail, sizeof detail)
                        : ms_kms_audit_verify_files(log, pub, &n, &bad, detail, sizeof detail);
    }
    if (e == MS_ERR_BAD_ENCODING)
        return cli_fail(e, "--checkpoint %s: %s", cp_file, detail);
    char where[PATH_MAX + 64];
    snprintf(where, sizeof where, "%s%s", dir ? dir : log, dir ? "/audit.log" : "");
    if (e == MS_ERR_AUDIT_CHAIN) {
        printf("audit log NOT OK: first bad entry at line %llu: %s\n", (unsigned long long)bad,
               detail);
        return cli_fail(e, "%s line %llu: %s", where, (unsigned long long)bad, detail);
    }
    if (e != MS_OK)
        return kms_fail(e, where);
    printf("audit log OK: %llu entries verified\n", (unsigned long long)n);
    return MS_OK;
}

ms_err cli_kms_audit_checkpoint(const struct cli_args *args)
{
    static const char *const none[] = {NULL};
    return simple_request(args, "checkpoint", none, 0);
}

ms_err cli_kms_audit_syslog(const struct cli_args *args)
{
    static const char *const opts[] = {"--copy"};
    return simple_request(args, "audit_syslog", opts, 1);
}

ms_err cli_kms_rollover(const struct cli_args *args)
{
    const char *dir = cli_get(args, "--dir");
    const char *pass = cli_get(args, "--passphrase-file");
    const char *pin = cli_get(args, "--pin-file");
    const char *share_dir = cli_get(args, "--share-out-dir");
    ms_kms *k = NULL;
    ms_kms_status st;
    ms_err e = ms_kms_open(&k, dir, NULL);
    if (e != MS_OK)
        return kms_fail(e, dir);
    e = ms_kms_status_get(k, &st);
    ms_kms_close(k);
    if (e != MS_OK)
        return kms_fail(e, dir);
    uint8_t secret[SECRET_TEXT_MAX];
    size_t len = 0;
    const char *field = NULL;
    if (st.seal_method == MS_KMS_SEAL_SHARES) {
        if (share_dir == NULL)
            return cli_fail(MS_ERR_USAGE, "shares seal: --share-out-dir DIR for the new shares");
        if ((e = make_dir("--share-out-dir", share_dir)) != MS_OK)
            return e;
    } else if (st.seal_method == MS_KMS_SEAL_PKCS11) {
        if (pin == NULL)
            return cli_fail(MS_ERR_USAGE, "PKCS#11 seal: --pin-file FILE");
        if ((e = read_private("--pin-file", pin, secret, sizeof secret, &len)) != MS_OK)
            return e;
        field = "pin";
    } else {
        if ((e = get_secret("--passphrase-file", pass, "KMS passphrase for the new seal: ", 1,
                            secret, sizeof secret, &len)) != MS_OK)
            return e;
        field = "passphrase";
    }
    struct msg req, ans;
    if (!msg_init(&req) || !msg_init(&ans)) {
        msg_free(&req);
        ms_wipe(secret, sizeof secret);
        return cli_fail(MS_ERR_NOMEM, "request");
    }
    msg_adds(&req, "verb", "rollover");
    msg_adds(&req, "from_period", cli_get(args, "--from-period"));
    if (field != NULL)
        msg_add(&req, field, secret, len);
    ms_wipe(secret, sizeof secret);
    e = agent_call(dir, &req, &ans);
    if (e == MS_OK && share_dir != NULL) {
        ms_kms_handout *h = calloc(1, sizeof *h);
        if (h == NULL)
            e = cli_fail(MS_ERR_NOMEM, "shares");
        size_t n = 0;
        const uint8_t *v;
        while (h != NULL && h->n_shares < MS_KMS_MAX_SHARES &&
               (v = msg_get(&ans, "data", h->n_shares, &n)) != NULL && n <= MS_KMS_SHARE_MAX) {
            memcpy(h->share[h->n_shares], v, n);
            h->share_len[h->n_shares++] = n;
        }
        if (h != NULL) {
            /* the old shares no longer open the new seal: new names */
            char sub[PATH_MAX];
            snprintf(sub, sizeof sub, "%s", share_dir);
            e = write_handout(h, sub, NULL);
            free(h);
        }
    }
    msg_free(&req);
    msg_free(&ans);
    return e;
}

ms_err cli_kms_cert(const struct cli_args *args)
{
    const char *dir = cli_get(args, "--dir");
    ms_kms *k = NULL;
    ms_err e = ms_kms_open(&k, dir, NULL);
    if (e != MS_OK)
        return kms_fail(e, dir);
    uint64_t p = 0;
    const char *ps = cli_get(args, "--period");
    e = resolve_period(k, ps ? ps : "current", &p);
    char *xml = malloc(XML_MAX);
    size_t len = 0;
    if (e == MS_OK && xml == NULL)
        e = MS_ERR_NOMEM;
    if (e == MS_OK)
        e = ms_kms_certificate_xml(k, p, xml, XML_MAX, &len);
    ms_kms_close(k);
    if (e == MS_OK) {
        fwrite(xml, 1, len, stdout);
        if (len == 0 || xml[len - 1] != '\n')
            putchar('\n');
    }
    free(xml);
    return e == MS_OK ? MS_OK : kms_fail(e, dir);
}
