/*
 * `mikeysakke kms ...`: the KMS commands and the Vault-style unseal agent.
 *
 * The master secrets live only in the agent (`kms agent`, started in the background by
 * the first `kms unseal`): a process with core dumps off, not ptrace-able, its memory
 * locked where allowed, listening on DIR/agent.sock (mode 0600, peer uid checked). The
 * other commands send it a request (a verb and its options, never a master secret; a
 * passphrase, PIN or share read from a file by the CLI may travel) and print its answer.
 * A privileged verb is signed by a role's key (protocol v2: fields v, auth, auth_key,
 * auth_sig); the agent checks it with ms_kms_authorise before doing anything. Commands that need no secret (status, user list, cert,
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
#include "kms/roles.h"
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
    {"--auditors", "N", 0, "auditor key pairs to create (1 to 16)"},
    {"--auditor-keys", "PUB[,PUB]", 0, "or: the auditors' public key files"},
    {"--approvals", "M", 0, "distinct auditors an extraction needs (default 1)"},
    {"--auditor-out-dir", "DIR", 0, "write auditor-N.key (0600) and auditor-N.pub here"},
    {"--max-periods-ahead", "N", 0, "kms issue: at most N key periods after the current one (1-1000, default 2)"},
    {"--officers", "N", 0, "enrolment officer key pairs to create (default 2)"},
    {"--officer-keys", "PUB[,PUB]", 0, "or: the enrolment officers' public key files"},
    {"--enrol-approvals", "M", 0, "officers approving a user's second device (default 2)"},
    {"--officer-out-dir", "DIR", 0, "write officer-N.key/.pub here (default --auditor-out-dir)"},
    {"--operator-key", "PUB", 0, "the operator's public key file (else one is created)"},
    {"--operator-out-dir", "DIR", 0, "write operator.key/.pub here (default --auditor-out-dir)"},
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
#define OPT_OPERATOR_KEY {"--key", "FILE", CLI_REQUIRED, "the operator's private key (mode 0600)"}
const struct cli_opt cli_kms_user_add_opts[] = {OPT_DIR, OPT_USER, OPT_OPERATOR_KEY, OPT_END};
const struct cli_opt cli_kms_user_list_opts[] = {OPT_DIR, OPT_END};
const struct cli_opt cli_kms_user_suspend_opts[] = {OPT_DIR, OPT_USER, OPT_OPERATOR_KEY, OPT_END};
const struct cli_opt cli_kms_user_resume_opts[] = {OPT_DIR, OPT_USER, OPT_OPERATOR_KEY, OPT_END};
const struct cli_opt cli_kms_user_remove_opts[] = {OPT_DIR, OPT_USER, OPT_OPERATOR_KEY, OPT_END};
const struct cli_opt cli_kms_device_enrol_opts[] = {
    OPT_DIR, OPT_USER,
    {"--device", "ID", CLI_REQUIRED, "the device ID (letters, digits, . _ - : @)"},
    {"--out", "FILE", CLI_REQUIRED, "write the enrolment file here (mode 0600)"},
    {"--key", "FILE", CLI_REQUIRED, "an enrolment officer's private key (mode 0600)"},
    {"--request", "FILE", 0, "second device: the approved request (kms device request)"},
    {"--approval", "FILE[,FILE]", 0, "second device: officers' or the user's device's approvals"},
    OPT_END,
};
const struct cli_opt cli_kms_device_request_opts[] = {
    OPT_DIR, OPT_USER,
    {"--device", "ID", CLI_REQUIRED, "the new device's ID"},
    {"--expires-in", "SECONDS", 0, "how long approvals stay usable (default 86400)"},
    {"--out", "FILE", CLI_REQUIRED, "write the request here"},
    OPT_END,
};
const struct cli_opt cli_kms_device_approve_opts[] = {
    {"--request", "FILE", CLI_REQUIRED, "the request to approve (read it first)"},
    {"--key", "FILE", CLI_REQUIRED, "your enrolment officer key (mode 0600)"},
    {"--out", "FILE", CLI_REQUIRED, "write the approval here"},
    OPT_END,
};
#define OPT_PERIOD {"--period", "P", CLI_REQUIRED, "key period: number, current, next or a TIME"}
const struct cli_opt cli_kms_issue_opts[] = {
    OPT_DIR, OPT_PERIOD,
    {"--threads", "N", 0, "threads (default 2)"},
    OPT_OPERATOR_KEY,
    OPT_END,
};
const struct cli_opt cli_kms_export_opts[] = {
    OPT_DIR, OPT_PERIOD,
    {"--out", "DIR", CLI_REQUIRED, "write the packages and index.txt here"},
    OPT_OPERATOR_KEY,
    OPT_END,
};
const struct cli_opt cli_kms_audit_request_opts[] = {
    OPT_DIR, OPT_USER, OPT_PERIOD,
    {"--reason", "TEXT", CLI_REQUIRED, "why (recorded in the audit log)"},
    {"--expires-in", "SECONDS", 0, "how long approvals stay usable (default 86400)"},
    {"--out", "FILE", CLI_REQUIRED, "write the request here"},
    OPT_END,
};
const struct cli_opt cli_kms_audit_approve_opts[] = {
    {"--request", "FILE", CLI_REQUIRED, "the extraction request to approve (read it first)"},
    {"--key", "FILE", CLI_REQUIRED, "your auditor key (mode 0600)"},
    {"--out", "FILE", CLI_REQUIRED, "write the approval here"},
    OPT_END,
};
const struct cli_opt cli_kms_audit_extract_opts[] = {
    OPT_DIR,
    {"--request", "FILE", CLI_REQUIRED, "the extraction request (kms audit request)"},
    {"--approval", "FILE[,FILE]", CLI_REQUIRED, "auditors' approvals of it, comma separated"},
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
    OPT_OPERATOR_KEY,
    OPT_END,
};
const struct cli_opt cli_kms_rollover_opts[] = {
    OPT_DIR,
    {"--from-period", "P", CLI_REQUIRED, "first key period of the new keys (future: number or next)"},
    {"--passphrase-file", "FILE", 0, "passphrase seal: the (new) passphrase"},
    {"--share-out-dir", "DIR", 0, "shares seal: write the new shares here"},
    {"--pin-file", "FILE", 0, "PKCS#11 seal: the token PIN"},
    OPT_OPERATOR_KEY,
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

/* Writes the handed-out shares; wipes them. */
static ms_err write_handout(ms_kms_handout *h, const char *share_dir)
{
    ms_err e = MS_OK;
    char path[PATH_MAX + 64];
    for (size_t i = 0; i < h->n_shares && e == MS_OK; i++) {
        snprintf(path, sizeof path, "%s/share-%zu.key", share_dir, i + 1);
        e = cli_write_secret("--share-out-dir", path, h->share[i], h->share_len[i], 0);
        if (e == MS_OK)
            printf("custodian share %zu: %s\n", i + 1, path);
    }
    ms_wipe(h, sizeof *h);
    return e;
}

/* ---- role keys ------------------------------------------------------------------------------ */

/* The roles of a new KMS: public keys given as files, or pairs made here (the private
 * halves written once the KMS exists). */
struct role_set {
    uint8_t operator_pub[MS_KMS_ROLE_KEY_BYTES];
    uint8_t officer_pub[MS_KMS_MAX_OFFICERS][MS_KMS_ROLE_KEY_BYTES];
    uint8_t auditor_pub[MS_KMS_MAX_AUDITORS][MS_KMS_ROLE_KEY_BYTES];
    uint8_t operator_seed[MS_ROLE_KEY_BYTES]; /* secret, when made here */
    uint8_t officer_seed[MS_KMS_MAX_OFFICERS][MS_ROLE_KEY_BYTES];
    uint8_t auditor_seed[MS_KMS_MAX_AUDITORS][MS_ROLE_KEY_BYTES];
    bool operator_made, officers_made, auditors_made;
    unsigned n_officers, n_auditors;
};

/* Public key files named in a comma-separated list. */
static ms_err read_pub_list(const char *opt, const char *list, uint8_t (*out)[MS_KMS_ROLE_KEY_BYTES],
                            unsigned max, unsigned *n)
{
    char *copy = strdup(list), *save = NULL;
    if (copy == NULL)
        return cli_fail(MS_ERR_NOMEM, "%s", opt);
    ms_err e = MS_OK;
    *n = 0;
    for (char *f = strtok_r(copy, ",", &save); f != NULL && e == MS_OK;
         f = strtok_r(NULL, ",", &save)) {
        char detail[PATH_MAX + 128] = "";
        if (*n == max)
            e = cli_fail(MS_ERR_USAGE, "%s: at most %u keys", opt, max);
        else if ((e = ms_role_pub_read(f, out[*n], detail, sizeof detail)) != MS_OK)
            e = cli_fail(e, "%s %s", opt, detail);
        else
            (*n)++;
    }
    free(copy);
    if (e == MS_OK && *n == 0)
        e = cli_fail(MS_ERR_USAGE, "%s: no key file named", opt);
    return e;
}

/* Writes name.key (private, 0600) and name.pub into dir; wipes nothing (the caller does). */
static ms_err write_role_pair(const char *opt, const char *dir, const char *name,
                              const uint8_t seed[MS_ROLE_KEY_BYTES],
                              const uint8_t pub[MS_KMS_ROLE_KEY_BYTES])
{
    char path[PATH_MAX + 64], line[2 * MS_ROLE_KEY_BYTES + 2];
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    ms_role_hex_line(line, seed);
    ms_err e = write_private(opt, path, line, strlen(line));
    ms_wipe(line, sizeof line);
    if (e != MS_OK)
        return e;
    printf("%s key: %s\n", name, path);
    snprintf(path, sizeof path, "%s/%s.pub", dir, name);
    ms_role_hex_line(line, pub);
    e = write_private(opt, path, line, strlen(line));
    if (e == MS_OK)
        chmod(path, 0644); /* public */
    return e;
}

static ms_err write_roles(const struct role_set *r, const char *operator_dir,
                          const char *officer_dir, const char *auditor_dir)
{
    ms_err e = MS_OK;
    char name[32];
    if (r->operator_made)
        e = write_role_pair("--operator-out-dir", operator_dir, "operator", r->operator_seed,
                            r->operator_pub);
    for (unsigned i = 0; r->officers_made && i < r->n_officers && e == MS_OK; i++) {
        snprintf(name, sizeof name, "officer-%u", i + 1);
        e = write_role_pair("--officer-out-dir", officer_dir, name, r->officer_seed[i],
                            r->officer_pub[i]);
    }
    for (unsigned i = 0; r->auditors_made && i < r->n_auditors && e == MS_OK; i++) {
        snprintf(name, sizeof name, "auditor-%u", i + 1);
        e = write_role_pair("--auditor-out-dir", auditor_dir, name, r->auditor_seed[i],
                            r->auditor_pub[i]);
    }
    return e;
}

/* The roles from init's options. */
static ms_err init_roles(const struct cli_args *args, struct role_set *r, ms_kms_config *cfg)
{
    ms_err e;
    uint64_t v;
    const char *aud_keys = cli_get(args, "--auditor-keys"), *off_keys = cli_get(args, "--officer-keys");
    const char *aud_dir = cli_get(args, "--auditor-out-dir");
    const char *off_dir = cli_get(args, "--officer-out-dir") ? cli_get(args, "--officer-out-dir") : aud_dir;
    const char *op_dir = cli_get(args, "--operator-out-dir") ? cli_get(args, "--operator-out-dir") : aud_dir;
    if ((cli_get(args, "--auditors") != NULL) == (aud_keys != NULL))
        return cli_fail(MS_ERR_USAGE, "give --auditors N (with --auditor-out-dir) or --auditor-keys");
    if (cli_get(args, "--officers") != NULL && off_keys != NULL)
        return cli_fail(MS_ERR_USAGE, "give --officers N or --officer-keys, not both");
    if (aud_keys != NULL) {
        if ((e = read_pub_list("--auditor-keys", aud_keys, r->auditor_pub, MS_KMS_MAX_AUDITORS,
                               &r->n_auditors)) != MS_OK)
            return e;
    } else {
        if ((e = parse_uint("--auditors", cli_get(args, "--auditors"), MS_KMS_MAX_AUDITORS, &v)) != MS_OK)
            return e;
        if (v == 0)
            return cli_fail(MS_ERR_USAGE, "--auditors: 1 to %d", MS_KMS_MAX_AUDITORS);
        if (aud_dir == NULL)
            return cli_fail(MS_ERR_USAGE, "--auditors needs --auditor-out-dir");
        r->n_auditors = (unsigned)v;
        r->auditors_made = true;
        for (unsigned i = 0; i < r->n_auditors; i++)
            if ((e = ms_role_keygen(r->auditor_seed[i], r->auditor_pub[i], NULL)) != MS_OK)
                return cli_fail(e, "auditor keys");
    }
    if (off_keys != NULL) {
        if ((e = read_pub_list("--officer-keys", off_keys, r->officer_pub, MS_KMS_MAX_OFFICERS,
                               &r->n_officers)) != MS_OK)
            return e;
    } else {
        v = 2;
        if (cli_get(args, "--officers") != NULL &&
            (e = parse_uint("--officers", cli_get(args, "--officers"), MS_KMS_MAX_OFFICERS, &v)) != MS_OK)
            return e;
        if (v == 0)
            return cli_fail(MS_ERR_USAGE, "--officers: 1 to %d", MS_KMS_MAX_OFFICERS);
        if (off_dir == NULL)
            return cli_fail(MS_ERR_USAGE, "new officer keys need --officer-out-dir");
        r->n_officers = (unsigned)v;
        r->officers_made = true;
        for (unsigned i = 0; i < r->n_officers; i++)
            if ((e = ms_role_keygen(r->officer_seed[i], r->officer_pub[i], NULL)) != MS_OK)
                return cli_fail(e, "officer keys");
    }
    if (cli_get(args, "--operator-key") != NULL) {
        char detail[PATH_MAX + 128] = "";
        if ((e = ms_role_pub_read(cli_get(args, "--operator-key"), r->operator_pub, detail,
                                  sizeof detail)) != MS_OK)
            return cli_fail(e, "--operator-key %s", detail);
    } else {
        if (op_dir == NULL)
            return cli_fail(MS_ERR_USAGE, "a new operator key needs --operator-out-dir");
        r->operator_made = true;
        if ((e = ms_role_keygen(r->operator_seed, r->operator_pub, NULL)) != MS_OK)
            return cli_fail(e, "operator key");
    }
    cfg->operator_key = r->operator_pub;
    cfg->n_officers = r->n_officers;
    cfg->officer_keys = (const uint8_t(*)[MS_KMS_ROLE_KEY_BYTES])r->officer_pub;
    cfg->n_auditors = r->n_auditors;
    cfg->auditor_keys = (const uint8_t(*)[MS_KMS_ROLE_KEY_BYTES])r->auditor_pub;
    cfg->approvals = 1;
    if (cli_get(args, "--approvals") != NULL) {
        if ((e = parse_uint("--approvals", cli_get(args, "--approvals"), cfg->n_auditors, &v)) != MS_OK)
            return e;
        if (v == 0)
            return cli_fail(MS_ERR_USAGE, "--approvals: 1 to the number of auditors");
        cfg->approvals = (unsigned)v;
    }
    cfg->enrol_approvals = r->n_officers < 2 ? r->n_officers : 2;
    if (cli_get(args, "--enrol-approvals") != NULL) {
        if ((e = parse_uint("--enrol-approvals", cli_get(args, "--enrol-approvals"),
                            cfg->n_officers, &v)) != MS_OK)
            return e;
        if (v == 0)
            return cli_fail(MS_ERR_USAGE, "--enrol-approvals: 1 to the number of officers");
        cfg->enrol_approvals = (unsigned)v;
    }
    const char *dirs[3] = {r->auditors_made ? aud_dir : NULL, r->officers_made ? off_dir : NULL,
                           r->operator_made ? op_dir : NULL};
    for (size_t i = 0; i < 3; i++)
        if (dirs[i] != NULL && (e = make_dir("--*-out-dir", dirs[i])) != MS_OK)
            return e;
    return MS_OK;
}

/* ---- kms init ------------------------------------------------------------------------------ */

static ms_err init_sealed(const struct cli_args *args, const char *dir, ms_kms_config *cfgp,
                          const struct role_set *roles);

ms_err cli_kms_init(const struct cli_args *args)
{
    const char *dir = cli_get(args, "--dir");
    const char *scheme = cli_get(args, "--scheme");
    ms_kms_config cfg;
    memset(&cfg, 0, sizeof cfg);
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
    cfg.audit_syslog = cli_get(args, "--audit-syslog") != NULL;
    if (cli_get(args, "--max-periods-ahead") != NULL) {
        if ((e = parse_uint("--max-periods-ahead", cli_get(args, "--max-periods-ahead"), 1000,
                            &cfg.max_periods_ahead)) != MS_OK)
            return e;
        if (cfg.max_periods_ahead == 0)
            return cli_fail(MS_ERR_USAGE, "--max-periods-ahead: 1 to 1000");
    }
    struct role_set *roles = calloc(1, sizeof *roles);
    if (roles == NULL)
        return cli_fail(MS_ERR_NOMEM, "kms init");
    if ((e = init_roles(args, roles, &cfg)) != MS_OK) {
        ms_wipe(roles, sizeof *roles);
        free(roles);
        return e;
    }
    e = init_sealed(args, dir, &cfg, roles);
    ms_wipe(roles, sizeof *roles);
    free(roles);
    return e;
}

/* kms init, once the roles are settled: the seal, the KMS, the handed-out files. */
static ms_err init_sealed(const struct cli_args *args, const char *dir, ms_kms_config *cfgp,
                          const struct role_set *roles)
{
    const char *pass_file = cli_get(args, "--passphrase-file");
    const char *shares = cli_get(args, "--shares");
    const char *share_dir = cli_get(args, "--share-out-dir");
    const char *module = cli_get(args, "--pkcs11-module");
    const char *token = cli_get(args, "--token");
    const char *pin_file = cli_get(args, "--pin-file");
    ms_kms_config cfg = *cfgp;
    ms_kms_seal_material m;
    memset(&m, 0, sizeof m);
    ms_err e;
    uint64_t v;

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
    if (share_dir != NULL && (e = make_dir("--share-out-dir", share_dir)) != MS_OK) {
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
    e = write_handout(h, share_dir);
    free(h);
    if (e == MS_OK)
        e = write_roles(roles, cli_get(args, "--operator-out-dir") ? cli_get(args, "--operator-out-dir")
                                                                    : cli_get(args, "--auditor-out-dir"),
                        cli_get(args, "--officer-out-dir") ? cli_get(args, "--officer-out-dir")
                                                           : cli_get(args, "--auditor-out-dir"),
                        cli_get(args, "--auditor-out-dir"));
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

/* The field at *off (then advanced): 1, or 0 at the end / on a malformed message. */
static int msg_next(const struct msg *m, size_t *off, char key[256], const uint8_t **v,
                    size_t *vlen)
{
    if (*off + 5 > m->len)
        return 0;
    size_t kl = m->buf[*off];
    if (*off + 5 + kl > m->len)
        return 0;
    const uint8_t *p = m->buf + *off + 1 + kl;
    size_t vl = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
    if (vl > m->len - (*off + 5 + kl))
        return 0;
    memcpy(key, m->buf + *off + 1, kl);
    key[kl] = '\0';
    *v = p + 4;
    *vlen = vl;
    *off += 5 + kl + vl;
    return 1;
}

/* Fields that travel beside a signed command without being part of it: the signature
 * itself, secrets (never in the signed text) and texts that carry their own approvals. */
static bool unsigned_field(const char *key)
{
    static const char *const names[] = {"v", "auth", "auth_key", "auth_sig", "passphrase",
                                        "pin", "request", "approval"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(key, names[i]) == 0)
            return true;
    return false;
}

/* Signs req with the role key in key_path (protocol v2): the text holds every plain
 * field, this KMS's URI, the time and a fresh nonce. */
static ms_err sign_command(const char *dir, struct msg *req, const char *key_path)
{
    uint8_t seed[MS_ROLE_KEY_BYTES], pub[MS_KMS_ROLE_KEY_BYTES], sig[MS_ROLE_SIG_BYTES];
    char detail[PATH_MAX + 128] = "";
    ms_err e = ms_role_key_read(key_path, seed, detail, sizeof detail);
    if (e != MS_OK)
        return cli_fail(e, "--key %s", detail);
    ms_kms *k = NULL;
    ms_kms_status st;
    e = ms_kms_open(&k, dir, NULL);
    if (e == MS_OK)
        e = ms_kms_status_get(k, &st);
    ms_kms_close(k);
    char *text = malloc(MS_REQUEST_MAX + 1), key[256];
    size_t len = 0, off = 4, vl = 0;
    const uint8_t *v;
    if (e == MS_OK && text == NULL)
        e = MS_ERR_NOMEM;
    if (e == MS_OK)
        e = ms_request_start(text, MS_REQUEST_MAX + 1, &len);
    if (e == MS_OK)
        e = ms_request_add(text, MS_REQUEST_MAX + 1, &len, "kind", "command");
    if (e == MS_OK)
        e = ms_request_add(text, MS_REQUEST_MAX + 1, &len, "kms", st.kms_uri);
    while (e == MS_OK && msg_next(req, &off, key, &v, &vl)) {
        char val[2048];
        if (unsigned_field(key))
            continue;
        if (vl >= sizeof val || memchr(v, 0, vl) != NULL) {
            e = MS_ERR_ARG;
            break;
        }
        memcpy(val, v, vl);
        val[vl] = '\0';
        e = ms_request_add(text, MS_REQUEST_MAX + 1, &len, key, val);
    }
    char t[24];
    uint64_t now = (uint64_t)time(NULL);
    snprintf(t, sizeof t, "%llu", (unsigned long long)now);
    if (e == MS_OK)
        e = ms_request_add(text, MS_REQUEST_MAX + 1, &len, "time", t);
    if (e == MS_OK)
        e = ms_request_add_nonce(text, MS_REQUEST_MAX + 1, &len, now + 300, NULL);
    if (e == MS_OK)
        e = ms_role_public(seed, pub);
    if (e == MS_OK)
        e = ms_role_sign(seed, MS_ROLE_CTX_COMMAND, text, len, sig);
    ms_wipe(seed, sizeof seed);
    if (e == MS_OK) {
        msg_adds(req, "v", "2");
        msg_add(req, "auth", text, len);
        msg_add(req, "auth_key", pub, sizeof pub);
        msg_add(req, "auth_sig", sig, sizeof sig);
    }
    free(text);
    return e == MS_OK ? MS_OK : kms_fail(e, "signing the request");
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
    ms_err e = MS_OK;
    if (strcmp(verb, "status") != 0 && strcmp(verb, "checkpoint") != 0) /* the others: a role's */
        e = sign_command(dir, &req, cli_get(args, "--key"));
    if (e == MS_OK)
        e = agent_call(dir, &req, &ans);
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

/* Verbs anyone allowed on the socket may send; every other needs a role's signature. */
static bool open_verb(const char *verb)
{
    static const char *const names[] = {"status", "unseal", "seal", "user_list", "extract",
                                         "checkpoint"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(verb, names[i]) == 0)
            return true;
    return false;
}

static int count_signed(void *ctx, const char *key, const char *value)
{
    (void)value;
    static const char *const envelope[] = {"kind", "kms", "time", "nonce", "expires"};
    for (size_t i = 0; i < sizeof envelope / sizeof envelope[0]; i++)
        if (strcmp(key, envelope[i]) == 0)
            return 0;
    (*(size_t *)ctx)++;
    return 0;
}

/* A request for a role's act: signed by a key of that role (the library checks the key,
 * role, time and nonce), and every plain field is the signed one. */
static ms_err agent_authorise(struct agent *a, const struct msg *req)
{
    char verb[32], v[8], role[32];
    if (msg_str(req, "verb", 0, verb, sizeof verb) == NULL)
        return MS_ERR_ARG;
    if (open_verb(verb))
        return MS_OK;
    size_t tl = 0, kl = 0, sl = 0;
    const uint8_t *t = msg_get(req, "auth", 0, &tl), *pk = msg_get(req, "auth_key", 0, &kl),
                  *sg = msg_get(req, "auth_sig", 0, &sl);
    if (msg_str(req, "v", 0, v, sizeof v) == NULL || strcmp(v, "2") != 0 || t == NULL ||
        pk == NULL || sg == NULL || kl != MS_KMS_ROLE_KEY_BYTES || sl != MS_KMS_ROLE_SIG_BYTES)
        return MS_ERR_ROLE; /* unsigned (protocol 1) or malformed */
    ms_err e = ms_kms_authorise(a->kms, (const char *)t, tl, pk, sg, role);
    if (e != MS_OK)
        return e;
    size_t off = 4, vl = 0, plain = 0, signed_n = 0;
    char key[256], want[2048];
    const uint8_t *val;
    while (e == MS_OK && msg_next(req, &off, key, &val, &vl)) {
        if (unsigned_field(key))
            continue;
        plain++;
        if (ms_request_get((const char *)t, tl, key, want, sizeof want) != MS_OK ||
            strlen(want) != vl || memcmp(want, val, vl) != 0)
            e = MS_ERR_ROLE; /* a field changed or added after signing */
    }
    if (e == MS_OK && (ms_request_each((const char *)t, tl, count_signed, &signed_n) != MS_OK ||
                       signed_n != plain))
        e = MS_ERR_ROLE;
    if (e != MS_OK)
        ms_kms_actor_clear(a->kms);
    return e;
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
        size_t rn = 0, an = 0;
        const uint8_t *rq = msg_get(req, "request", 0, &rn);
        if (rq == NULL) {
            e = ms_kms_device_enrol(k, xml, XML_MAX, &len, u, device);
        } else {
            /* a second device: the approved request must be for this user and device */
            const char *approvals[MS_KMS_MAX_OFFICERS * 2];
            char abuf[MS_KMS_MAX_OFFICERS * 2][MS_APPROVAL_TEXT_MAX], ru[512], rd[128];
            while (an < MS_KMS_MAX_OFFICERS * 2 &&
                   msg_str(req, "approval", an, abuf[an], sizeof abuf[an]) != NULL) {
                approvals[an] = abuf[an];
                an++;
            }
            if (ms_request_get((const char *)rq, rn, "user", ru, sizeof ru) != MS_OK ||
                ms_request_get((const char *)rq, rn, "device", rd, sizeof rd) != MS_OK ||
                strcmp(ru, u) != 0 || strcmp(rd, device) != 0)
                e = MS_ERR_APPROVAL;
            else
                e = ms_kms_device_enrol_approved(k, xml, XML_MAX, &len, (const char *)rq, rn,
                                                 approvals, an);
        }
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
        size_t rn = 0, an = 0;
        const uint8_t *rq = msg_get(req, "request", 0, &rn);
        const char *approvals[MS_KMS_MAX_AUDITORS * 2];
        char abuf[MS_KMS_MAX_AUDITORS * 2][MS_APPROVAL_TEXT_MAX];
        while (an < MS_KMS_MAX_AUDITORS * 2 &&
               msg_str(req, "approval", an, abuf[an], sizeof abuf[an]) != NULL) {
            approvals[an] = abuf[an];
            an++;
        }
        if (rq == NULL)
            return MS_ERR_ARG;
        uint8_t rsk[MS_SAKKE_POINT_BYTES], id[MS_SAKKE_ID_MAX_BYTES];
        size_t id_len = 0;
        ms_kms_extract_request r = {(const char *)rq, rn, approvals, an};
        e = ms_kms_audit_extract(k, &r, rsk, id, &id_len);
        if (e == MS_OK) {
            char idhex[2 * MS_SAKKE_ID_MAX_BYTES + 1], nonce[64] = "";
            cli_hex_encode(idhex, id, id_len);
            idhex[2 * id_len] = '\0';
            (void)ms_request_get(r.request, rn, "user", user, sizeof user);
            (void)ms_request_get(r.request, rn, "period", text, sizeof text);
            (void)ms_request_get(r.request, rn, "nonce", nonce, sizeof nonce);
            msg_add(ans, "data", rsk, sizeof rsk);
            char cp[MS_KMS_CHECKPOINT_MAX];
            if (ms_kms_extract_checkpoint(k, cp, sizeof cp) == MS_OK)
                msg_adds(ans, "checkpoint", cp);
            msg_addf(ans, "out", "Extracted the RSK of %s for key period %s (audited, request "
                     "%s)\nidentifier = %s\n", user, text, nonce, idhex);
        }
        ms_wipe(rsk, sizeof rsk);
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
                ms_err e = agent_authorise(a, &req);
                if (e == MS_OK)
                    e = agent_handle(a, &req, &body);
                ms_kms_actor_clear(a->kms);
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

/* A text file read whole (a request or an approval: public, any mode). */
static ms_err read_text_file(const char *opt, const char *path, char *out, size_t cap,
                             size_t *len)
{
    FILE *f = fopen(path, "rbe");
    if (f == NULL)
        return cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, strerror(errno));
    size_t n = fread(out, 1, cap, f);
    int err = ferror(f);
    fclose(f);
    if (err)
        return cli_fail(MS_ERR_IO, "%s %s: read failed", opt, path);
    if (n == cap)
        return cli_fail(MS_ERR_BAD_LENGTH, "%s %s: file too long", opt, path);
    out[n] = '\0';
    *len = n;
    return MS_OK;
}

/* The request file and each approval file of a comma-separated list, as fields. */
static ms_err add_approved_request(struct msg *req, const char *request_path, const char *list)
{
    char *text = malloc(MS_REQUEST_MAX + 2);
    size_t len = 0;
    if (text == NULL)
        return cli_fail(MS_ERR_NOMEM, "request");
    ms_err e = read_text_file("--request", request_path, text, MS_REQUEST_MAX + 1, &len);
    if (e == MS_OK && ms_request_check(text, len) != MS_OK)
        e = cli_fail(MS_ERR_ARG, "--request %s: not a request file", request_path);
    if (e == MS_OK)
        msg_add(req, "request", text, len);
    free(text);
    char *copy = e == MS_OK ? strdup(list) : NULL, *save = NULL;
    if (e == MS_OK && copy == NULL)
        e = cli_fail(MS_ERR_NOMEM, "request");
    for (char *f = copy ? strtok_r(copy, ",", &save) : NULL; f != NULL && e == MS_OK;
         f = strtok_r(NULL, ",", &save)) {
        char line[MS_APPROVAL_TEXT_MAX + 1];
        ms_approval a;
        if ((e = read_text_file("--approval", f, line, sizeof line, &len)) != MS_OK)
            break;
        if (ms_approval_parse(line, len, &a) != MS_OK) {
            e = cli_fail(MS_ERR_ARG, "--approval %s: not an approval file", f);
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        msg_add(req, "approval", line, len);
    }
    free(copy);
    return e;
}

/* `kms audit request` and `kms device request`: the request text, written for approvers. */
static ms_err write_request(const struct cli_args *args, int extract)
{
    const char *dir = cli_get(args, "--dir"), *out = cli_get(args, "--out");
    ms_err e = cli_check_new_file("--out", out, 0);
    if (e != MS_OK)
        return e;
    uint64_t lifetime = 86400;
    if (cli_get(args, "--expires-in") != NULL &&
        (e = parse_uint("--expires-in", cli_get(args, "--expires-in"), 7 * 86400, &lifetime)) != MS_OK)
        return e;
    if (lifetime == 0)
        return cli_fail(MS_ERR_USAGE, "--expires-in: 1 to 604800 seconds");
    const char *user = cli_get(args, "--user");
    ms_kms *k = NULL;
    if ((e = ms_kms_open(&k, dir, NULL)) != MS_OK)
        return kms_fail(e, dir);
    char *text = malloc(MS_REQUEST_MAX + 1);
    size_t len = 0;
    uint64_t p = 0;
    if (text == NULL)
        e = MS_ERR_NOMEM;
    else if (!extract)
        e = ms_kms_request_enrol(k, user, cli_get(args, "--device"), lifetime, text,
                                 MS_REQUEST_MAX + 1, &len);
    else if (strchr(user, ',') != NULL || strchr(cli_get(args, "--period"), ',') != NULL)
        e = MS_ERR_AUDIT_SCOPE; /* one user, one period */
    else if ((e = resolve_period(k, cli_get(args, "--period"), &p)) == MS_OK)
        e = ms_kms_request_extract(k, user, p, cli_get(args, "--reason"), lifetime, text,
                                   MS_REQUEST_MAX + 1, &len);
    ms_kms_close(k);
    if (e == MS_OK && (e = write_private("--out", out, text, len)) == MS_OK) {
        chmod(out, 0644); /* nothing secret: approvers read it */
        fwrite(text, 1, len, stdout);
        printf("request written to %s: each approver runs 'mikeysakke kms %s approve'\n", out,
               extract ? "audit" : "device");
    }
    free(text);
    return e == MS_OK ? MS_OK : kms_fail(e, extract ? "audit request" : "device request");
}

ms_err cli_kms_audit_request(const struct cli_args *args)
{
    return write_request(args, 1);
}

ms_err cli_kms_device_request(const struct cli_args *args)
{
    return write_request(args, 0);
}

/* An approver signs the request text they were shown, nothing else. */
static ms_err approve(const struct cli_args *args, const char *kind)
{
    const char *out = cli_get(args, "--out"), *path = cli_get(args, "--request");
    ms_err e = cli_check_new_file("--out", out, 0);
    if (e != MS_OK)
        return e;
    char *text = malloc(MS_REQUEST_MAX + 2), kbuf[16], detail[PATH_MAX + 128] = "";
    size_t len = 0;
    if (text == NULL)
        return cli_fail(MS_ERR_NOMEM, "request");
    e = read_text_file("--request", path, text, MS_REQUEST_MAX + 1, &len);
    if (e == MS_OK && (ms_request_check(text, len) != MS_OK ||
                       ms_request_get(text, len, "kind", kbuf, sizeof kbuf) != MS_OK ||
                       strcmp(kbuf, kind) != 0))
        e = cli_fail(MS_ERR_ARG, "--request %s: not a %s request", path, kind);
    uint8_t seed[MS_ROLE_KEY_BYTES];
    ms_approval a;
    char line[MS_APPROVAL_TEXT_MAX];
    if (e == MS_OK && (e = ms_role_key_read(cli_get(args, "--key"), seed, detail,
                                            sizeof detail)) != MS_OK)
        e = cli_fail(e, "--key %s", detail);
    if (e == MS_OK) {
        e = ms_approval_sign(seed, text, len, &a);
        ms_wipe(seed, sizeof seed);
        if (e == MS_OK)
            e = ms_approval_format(&a, line, sizeof line);
        if (e == MS_OK && (e = write_private("--out", out, line, strlen(line))) == MS_OK) {
            chmod(out, 0644);
            printf("Approved:\n%sapproval written to %s\n", text + strlen(MS_REQUEST_HEADER),
                   out);
        }
    }
    free(text);
    return e;
}

ms_err cli_kms_audit_approve(const struct cli_args *args)
{
    return approve(args, "extract");
}

ms_err cli_kms_device_approve(const struct cli_args *args)
{
    return approve(args, "enrol");
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
    if ((cli_get(args, "--request") != NULL) != (cli_get(args, "--approval") != NULL))
        e = cli_fail(MS_ERR_USAGE, "--request and --approval go together");
    if (e == MS_OK && cli_get(args, "--request") != NULL)
        e = add_approved_request(&req, cli_get(args, "--request"), cli_get(args, "--approval"));
    if (e == MS_OK)
        e = sign_command(cli_get(args, "--dir"), &req, cli_get(args, "--key"));
    if (e == MS_OK)
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
    e = sign_command(cli_get(args, "--dir"), &req, cli_get(args, "--key"));
    if (e == MS_OK)
        e = agent_call(cli_get(args, "--dir"), &req, &ans);
    msg_free(&req);
    msg_free(&ans);
    return e;
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
    e = add_approved_request(&req, cli_get(args, "--request"), cli_get(args, "--approval"));
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

/* What auditors look for in a verified log, one line each. */
static int print_notable(void *ctx, const char *kind, const char *entry)
{
    size_t *counts = ctx;
    bool extract = strcmp(kind, "extract") == 0;
    counts[extract ? 0 : 1]++;
    printf("%s: %s\n", extract ? "extraction" : "second device", entry);
    return 0;
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
    size_t counts[2] = {0, 0};
    e = ms_kms_audit_notable(dir != NULL ? where : log, print_notable, counts);
    if (e != MS_OK)
        return kms_fail(e, where);
    printf("%zu extraction%s, %zu device%s added to a user who already had one\n", counts[0],
           counts[0] == 1 ? "" : "s", counts[1], counts[1] == 1 ? "" : "s");
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
    e = sign_command(dir, &req, cli_get(args, "--key"));
    if (e == MS_OK)
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
            e = write_handout(h, sub);
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
