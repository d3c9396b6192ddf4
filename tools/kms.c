/*
 * `mikeysakke kms ...`: the KMS commands and the Vault-style unseal agent.
 *
 * The master secrets live only in the agent (`kms agent`, started in the background by
 * the first `kms unseal`): a process with core dumps off, not ptrace-able, its memory
 * locked where allowed, listening on DIR/agent.sock (mode 0600, peer uid checked). The
 * other commands send it a request (a verb and its options, never a master secret; a
 * passphrase, PIN or share read from a file by the CLI may travel) and print its answer.
 * A privileged verb is signed by a role's key (protocol v2: fields v, auth, auth_key,
 * auth_sig); the agent checks it with ms_kms_authorise before doing anything. Commands
 * that need no secret (status, user list, cert, audit verify, init) open the KMS
 * directory themselves.
 *
 * The agent itself (its protocol, the table of verbs and their roles, the answers as
 * structured fields) is src/kms/agent*.c, described in docs/agent-protocol.md; this file
 * parses options, sends requests and prints the answers as text or, with --json, JSON.
 */
/* flock, MCL_ONFAULT, realpath */
#define _GNU_SOURCE
#include "kms_cli.h"
#include "tkms_audit_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

#include "config.h"
#include "json_out.h"
#include "kms_threshold_cli.h"
#include "progress.h"
#include "kms/agent.h"
#include "kms/roles.h"
#include "mikeysakke/kms.h"
#include "mikeysakke/mikey.h"
#include "net/http.h"
#include "util/file.h"
#include "util/hex.h"
#include "util/prompt.h"
#include "util/timefmt.h"

#define SECRET_TEXT_MAX 1024
#define XML_MAX (256 * 1024)
#define MS_KMSIF_MAX_BODY (256 * 1024) /* the XML reader's own limit */

/* ---- option tables ------------------------------------------------------------------------ */

#define OPT_DIR {"--dir", "DIR", CLI_REQUIRED, "the KMS directory"}
#define OPT_END {NULL, NULL, 0, NULL}
#define OPT_JSON {"--json", NULL, CLI_FLAG, "print the result as one JSON object"}

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
    OPT_JSON, OPT_END,
};
const struct cli_opt cli_kms_unseal_opts[] = {
    OPT_DIR,
    {"--share", "FILE", 0, "one custodian share"},
    {"--passphrase-file", "FILE", 0, "the passphrase (default: prompt without echo)"},
    {"--pin-file", "FILE", 0, "the PKCS#11 token PIN"},
    {"--adopt-settings", NULL, CLI_FLAG, "authenticate settings that carry no MAC yet (once, "
                                         "after checking them)"},
    OPT_JSON, OPT_END,
};
const struct cli_opt cli_kms_status_opts[] = {OPT_DIR, OPT_JSON, OPT_END};
const struct cli_opt cli_kms_seal_opts[] = {OPT_DIR, OPT_JSON, OPT_END};
const struct cli_opt cli_kms_agent_opts[] = {OPT_DIR, OPT_END};
#define OPT_USER {"--user", "URI", CLI_REQUIRED, "the user's URI (tel:, sip:, MC service ID)"}
#define OPT_OPERATOR_KEY {"--key", "FILE", CLI_REQUIRED, "the operator's private key (mode 0600)"}
const struct cli_opt cli_kms_user_add_opts[] = {OPT_DIR, OPT_USER, OPT_OPERATOR_KEY, OPT_JSON, OPT_END};
const struct cli_opt cli_kms_user_list_opts[] = {OPT_DIR, OPT_JSON, OPT_END};
const struct cli_opt cli_kms_user_suspend_opts[] = {OPT_DIR, OPT_USER, OPT_OPERATOR_KEY, OPT_JSON, OPT_END};
const struct cli_opt cli_kms_user_resume_opts[] = {OPT_DIR, OPT_USER, OPT_OPERATOR_KEY, OPT_JSON, OPT_END};
const struct cli_opt cli_kms_user_remove_opts[] = {OPT_DIR, OPT_USER, OPT_OPERATOR_KEY, OPT_JSON, OPT_END};
const struct cli_opt cli_kms_device_enrol_opts[] = {
    OPT_DIR, OPT_USER,
    {"--device", "ID", CLI_REQUIRED, "the device ID (letters, digits, . _ - : @)"},
    {"--out", "FILE", CLI_REQUIRED, "write the enrolment file here (mode 0600)"},
    {"--key", "FILE", CLI_REQUIRED, "an enrolment officer's private key (mode 0600)"},
    {"--request", "FILE", 0, "second device: the approved request (kms device request)"},
    {"--approval", "FILE[,FILE]", 0, "second device: officers' or the user's device's approvals"},
    OPT_JSON, OPT_END,
};
const struct cli_opt cli_kms_device_request_opts[] = {
    OPT_DIR, OPT_USER,
    {"--device", "ID", CLI_REQUIRED, "the new device's ID"},
    {"--expires-in", "SECONDS", 0, "how long approvals stay usable (default 86400)"},
    {"--out", "FILE", CLI_REQUIRED, "write the request here"},
    OPT_JSON, OPT_END,
};
const struct cli_opt cli_kms_device_approve_opts[] = {
    {"--request", "FILE", CLI_REQUIRED, "the request to approve (read it first)"},
    {"--key", "FILE", CLI_REQUIRED, "your enrolment officer key (mode 0600)"},
    {"--out", "FILE", CLI_REQUIRED, "write the approval here"},
    OPT_JSON, OPT_END,
};
#define OPT_PERIOD {"--period", "P", CLI_REQUIRED, "key period: number, current, next or a TIME"}
const struct cli_opt cli_kms_issue_opts[] = {
    OPT_DIR, OPT_PERIOD,
    {"--threads", "N", 0, "threads (default 2)"},
    OPT_OPERATOR_KEY,
    OPT_JSON, OPT_END,
};
const struct cli_opt cli_kms_export_opts[] = {
    OPT_DIR, OPT_PERIOD,
    {"--out", "DIR", CLI_REQUIRED, "write the packages and index.txt here"},
    OPT_OPERATOR_KEY,
    OPT_JSON, OPT_END,
};
const struct cli_opt cli_kms_audit_request_opts[] = {
    OPT_DIR, OPT_USER, OPT_PERIOD,
    {"--reason", "TEXT", CLI_REQUIRED, "why (recorded in the audit log)"},
    {"--expires-in", "SECONDS", 0, "how long approvals stay usable (default 86400)"},
    {"--out", "FILE", CLI_REQUIRED, "write the request here"},
    OPT_JSON, OPT_END,
};
const struct cli_opt cli_kms_audit_approve_opts[] = {
    {"--request", "FILE", CLI_REQUIRED, "the extraction request to approve (read it first)"},
    {"--key", "FILE", CLI_REQUIRED, "your auditor key (mode 0600)"},
    {"--out", "FILE", CLI_REQUIRED, "write the approval here"},
    OPT_JSON, OPT_END,
};
const struct cli_opt cli_kms_audit_extract_opts[] = {
    {"--dir", "DIR", 0, "the KMS directory"},
    {"--request", "FILE", 0, "the extraction request (kms audit request)"},
    {"--approval", "FILE[,FILE]", 0, "auditors' approvals of it, comma separated"},
    {"--out", "FILE", CLI_REQUIRED, "write the RSK here (mode 0600)"},
    {"--checkpoint-out", "FILE", 0, "write the extraction's audit checkpoint here (default: "
                                    "stderr)"},
    {"--threshold", NULL, CLI_FLAG, "a threshold KMS: t+1 servers' shares for a warrant"},
    {"--peers", "FILE", 0, "with --threshold: the peers table"},
    {"--public", "FILE", 0, "with --threshold: the KMS's public.txt"},
    {"--warrant", "FILE", 0, "with --threshold: the signed warrant (kms threshold warrant)"},
    {"--auditor-key", "FILE", 0, "with --threshold: the X25519 key the warrant names (0600)"},
    OPT_JSON, OPT_END,
};
const struct cli_opt cli_kms_audit_verify_opts[] = {
    {"--dir", "DIR", 0, "the KMS directory (also checks the head kept in the store)"},
    {"--log", "FILE", 0, "a copied audit log (with --public)"},
    {"--public", "FILE", 0, "the audit public key file (audit.pub)"},
    {"--checkpoint", "FILE", 0, "a checkpoint kept by the auditors: the log must still hold it"},
    OPT_JSON, OPT_END,
};
const struct cli_opt cli_kms_audit_checkpoint_opts[] = {OPT_DIR, OPT_JSON, OPT_END};
const struct cli_opt cli_kms_audit_syslog_opts[] = {
    OPT_DIR,
    {"--copy", "yes|no", CLI_REQUIRED, "copy the audit log to syslog (authpriv) or stop"},
    OPT_OPERATOR_KEY,
    OPT_JSON, OPT_END,
};
const struct cli_opt cli_kms_rollover_opts[] = {
    OPT_DIR,
    {"--from-period", "P", CLI_REQUIRED, "first key period of the new keys (future: number or next)"},
    {"--passphrase-file", "FILE", 0, "passphrase seal: the (new) passphrase"},
    {"--share-out-dir", "DIR", 0, "shares seal: write the new shares here"},
    {"--pin-file", "FILE", 0, "PKCS#11 seal: the token PIN"},
    OPT_OPERATOR_KEY,
    OPT_JSON, OPT_END,
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
    {"--json", NULL, CLI_FLAG, "print one JSON line (the address and port) once listening"},
    {"--passphrase-file", "FILE", 0, "threshold server: the passphrase of its sealed shares"},
    {"--share", "FILE[,FILE]", 0, "threshold server: or custodian share files (mode 0600)"},
    {"--pin-file", "FILE", 0, "threshold server: or the PKCS#11 token's PIN (mode 0600)"},
    {"--device-rate", "R", 0, "threshold server: requests per second per device (default 0.2)"},
    {"--device-burst", "B", 0, "threshold server: device rate limit burst (default 10)"},
    OPT_END,
};
const struct cli_opt cli_kms_cert_opts[] = {
    OPT_DIR,
    {"--period", "P", 0, "the certificate in force for this key period (default current)"},
    OPT_JSON, OPT_END,
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
    if (n % 2 != 0 || n / 2 > cap ||
        ms_hex_decode_secret(out, n / 2, (const char *)text, n) != MS_OK)
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
    char again[SECRET_TEXT_MAX];
    ms_err e = MS_OK;
    for (int round = 0; round < (confirm ? 2 : 1) && e == MS_OK; round++) {
        char *dst = round == 0 ? (char *)out : again;
        size_t n = 0;
        ms_err pe = ms_prompt_secret(fd, round == 0 ? prompt : "Again: ", dst,
                                     round == 0 ? cap : sizeof again, &n);
        if (pe == MS_ERR_USAGE || pe == MS_ERR_IO)
            e = cli_fail(MS_ERR_IO, "terminal");
        else if (pe != MS_OK || n == 0)
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

/* Writes a private file atomically (src/util/file.h; never replaces one). */
static ms_err write_private(const char *opt, const char *path, const void *data, size_t len)
{
    if (ms_file_write_atomic(path, data, len, 0600, MS_FILE_NO_REPLACE, NULL, 0) != MS_OK)
        return cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, strerror(errno));
    return MS_OK;
}

static ms_err make_dir(const char *opt, const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return cli_fail(MS_ERR_IO, "%s %s: %s", opt, dir, strerror(errno));
    return MS_OK;
}

/* kms init's output directories: those it made are removed again if init fails (rmdir
 * removes only empty ones, so nothing written is lost). */
struct made_dirs {
    const char *dir[4];
    size_t n;
};

static ms_err make_dir_noted(const char *opt, const char *dir, struct made_dirs *made)
{
    if (mkdir(dir, 0700) == 0) {
        if (made->n < sizeof made->dir / sizeof made->dir[0])
            made->dir[made->n++] = dir;
        return MS_OK;
    }
    return make_dir(opt, dir);
}

static void remove_made_dirs(const struct made_dirs *made)
{
    for (size_t i = made->n; i > 0; i--)
        (void)rmdir(made->dir[i - 1]);
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

/* Opens the KMS in dir; a failure is printed with the library's reason. */
static ms_err open_kms(ms_kms **k, const char *dir)
{
    char why[PATH_MAX + 128] = "";
    ms_err e = ms_kms_open(k, dir, NULL, why, sizeof why);
    return e == MS_OK ? MS_OK : kms_fail(e, why[0] != '\0' ? why : dir);
}

/* Writes the handed-out shares; wipes them. */
static ms_err write_handout(ms_kms_handout *h, const char *share_dir, bool print)
{
    ms_err e = MS_OK;
    char path[PATH_MAX + 64];
    for (size_t i = 0; i < h->n_shares && e == MS_OK; i++) {
        snprintf(path, sizeof path, "%s/share-%zu.key", share_dir, i + 1);
        e = cli_write_secret("--share-out-dir", path, h->share[i], h->share_len[i], 0);
        if (e == MS_OK && print)
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
    struct made_dirs made; /* by init_roles and init_sealed */
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
                              const uint8_t pub[MS_KMS_ROLE_KEY_BYTES], bool print)
{
    char path[PATH_MAX + 64], line[2 * MS_ROLE_KEY_BYTES + 2];
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    ms_role_hex_line(line, seed);
    ms_err e = write_private(opt, path, line, strlen(line));
    ms_wipe(line, sizeof line);
    if (e != MS_OK)
        return e;
    if (print)
        printf("%s key: %s\n", name, path);
    snprintf(path, sizeof path, "%s/%s.pub", dir, name);
    ms_role_hex_line(line, pub);
    e = write_private(opt, path, line, strlen(line));
    if (e == MS_OK)
        chmod(path, 0644); /* public */
    return e;
}

static ms_err write_roles(const struct role_set *r, const char *operator_dir,
                          const char *officer_dir, const char *auditor_dir, bool print)
{
    ms_err e = MS_OK;
    char name[32];
    if (r->operator_made)
        e = write_role_pair("--operator-out-dir", operator_dir, "operator", r->operator_seed,
                            r->operator_pub, print);
    for (unsigned i = 0; r->officers_made && i < r->n_officers && e == MS_OK; i++) {
        snprintf(name, sizeof name, "officer-%u", i + 1);
        e = write_role_pair("--officer-out-dir", officer_dir, name, r->officer_seed[i],
                            r->officer_pub[i], print);
    }
    for (unsigned i = 0; r->auditors_made && i < r->n_auditors && e == MS_OK; i++) {
        snprintf(name, sizeof name, "auditor-%u", i + 1);
        e = write_role_pair("--auditor-out-dir", auditor_dir, name, r->auditor_seed[i],
                            r->auditor_pub[i], print);
    }
    return e;
}

/* kms init --json: what the text lists, as one object ("keys": the private role keys
 * made here by role name). */
static void print_init_json(const char *kms_uri, const char *dir, int method,
                            const char *share_dir, size_t n_shares, const struct role_set *r,
                            const char *operator_dir, const char *officer_dir,
                            const char *auditor_dir)
{
    char path[PATH_MAX + 64], name[32];
    struct cli_json j;
    cli_json_begin(&j, stdout);
    cli_json_str(&j, "kms", kms_uri);
    cli_json_str(&j, "dir", dir);
    cli_json_str(&j, "seal", method == MS_KMS_SEAL_PASSPHRASE ? "passphrase"
                             : method == MS_KMS_SEAL_SHARES   ? "shares"
                                                              : "pkcs11");
    if (n_shares > 0) {
        cli_json_array(&j, "shares");
        for (size_t i = 0; i < n_shares; i++) {
            snprintf(path, sizeof path, "%s/share-%zu.key", share_dir, i + 1);
            cli_json_str(&j, NULL, path);
        }
        cli_json_close(&j);
    }
    cli_json_object(&j, "keys");
    if (r->operator_made) {
        snprintf(path, sizeof path, "%s/operator.key", operator_dir);
        cli_json_str(&j, "operator", path);
    }
    for (unsigned i = 0; r->officers_made && i < r->n_officers; i++) {
        snprintf(name, sizeof name, "officer-%u", i + 1);
        snprintf(path, sizeof path, "%s/%s.key", officer_dir, name);
        cli_json_str(&j, name, path);
    }
    for (unsigned i = 0; r->auditors_made && i < r->n_auditors; i++) {
        snprintf(name, sizeof name, "auditor-%u", i + 1);
        snprintf(path, sizeof path, "%s/%s.key", auditor_dir, name);
        cli_json_str(&j, name, path);
    }
    cli_json_close(&j);
    snprintf(path, sizeof path, "%s/certificate.xml", dir);
    cli_json_str(&j, "certificate", path);
    snprintf(path, sizeof path, "%s/audit.pub", dir);
    cli_json_str(&j, "audit_pub", path);
    cli_json_end(&j);
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
        if (dirs[i] != NULL && (e = make_dir_noted("--*-out-dir", dirs[i], &r->made)) != MS_OK)
            return e;
    return MS_OK;
}

/* ---- kms init ------------------------------------------------------------------------------ */

static ms_err init_sealed(const struct cli_args *args, const char *dir, ms_kms_config *cfgp,
                          struct role_set *roles);

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
        !ms_time_parse(cli_get(args, "--first-period"), &cfg.first_time, NULL))
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
    e = init_roles(args, roles, &cfg);
    if (e == MS_OK)
        e = init_sealed(args, dir, &cfg, roles);
    if (e != MS_OK)
        remove_made_dirs(&roles->made);
    ms_wipe(roles, sizeof *roles);
    free(roles);
    return e;
}

/* kms init, once the roles are settled: the seal, the KMS, the handed-out files. */
static ms_err init_sealed(const struct cli_args *args, const char *dir, ms_kms_config *cfgp,
                          struct role_set *roles)
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
    if (share_dir != NULL &&
        (e = make_dir_noted("--share-out-dir", share_dir, &roles->made)) != MS_OK) {
        ms_wipe(secret, sizeof secret);
        return e;
    }

    ms_kms_handout *h = calloc(1, sizeof *h);
    if (h == NULL) {
        ms_wipe(secret, sizeof secret);
        return cli_fail(MS_ERR_NOMEM, "kms init");
    }
    char why[PATH_MAX + 128] = "";
    e = ms_kms_create(h, dir, &cfg, &m, NULL, why, sizeof why);
    ms_wipe(secret, sizeof secret);
    if (e != MS_OK) {
        free(h);
        return kms_fail(e, why[0] != '\0' ? why : dir);
    }
    bool json = cli_get(args, "--json") != NULL;
    const char *aud_dir = cli_get(args, "--auditor-out-dir");
    const char *op_dir = cli_get(args, "--operator-out-dir") ? cli_get(args, "--operator-out-dir")
                                                              : aud_dir;
    const char *off_dir = cli_get(args, "--officer-out-dir") ? cli_get(args, "--officer-out-dir")
                                                              : aud_dir;
    size_t n_shares = h->n_shares;
    if (!json)
        printf("KMS %s created in %s (sealed with %s)\n", cfg.kms_uri, dir, method_name(m.method));
    e = write_handout(h, share_dir, !json);
    free(h);
    if (e == MS_OK)
        e = write_roles(roles, op_dir, off_dir, aud_dir, !json);
    if (e == MS_OK && json)
        print_init_json(cfg.kms_uri, dir, m.method, share_dir, n_shares, roles, op_dir, off_dir,
                        aud_dir);
    else if (e == MS_OK)
        printf("certificate: %s/certificate.xml\naudit public key: %s/audit.pub\n", dir, dir);
    return e;
}

/* ---- requests to the agent (the protocol is src/kms/agent_protocol.c) ---------------------- */

/* Signs req with the role key in key_path for the KMS in dir. */
static ms_err sign_command(const char *dir, ms_agent_msg *req, const char *key_path)
{
    uint8_t seed[MS_ROLE_KEY_BYTES];
    char detail[PATH_MAX + 128] = "";
    ms_err e = ms_role_key_read(key_path, seed, detail, sizeof detail);
    if (e != MS_OK)
        return cli_fail(e, "--key %s", detail);
    ms_kms *k = NULL;
    ms_kms_status st;
    e = open_kms(&k, dir);
    if (e != MS_OK) {
        ms_wipe(seed, sizeof seed);
        return e;
    }
    e = ms_kms_status_get(k, &st);
    ms_kms_close(k);
    if (e == MS_OK)
        e = ms_agent_sign(req, st.kms_uri, (uint64_t)time(NULL), seed);
    ms_wipe(seed, sizeof seed);
    return e == MS_OK ? MS_OK : kms_fail(e, "signing the request");
}

/* A request naming verb, and room for the answer. */
static ms_err request_init(ms_agent_msg *req, ms_agent_msg *ans, const char *verb)
{
    bool ok = ms_agent_msg_init(req);
    ok = ms_agent_msg_init(ans) && ok;
    if (!ok) {
        ms_agent_msg_free(req);
        ms_agent_msg_free(ans);
        return cli_fail(MS_ERR_NOMEM, "request");
    }
    ms_agent_msg_adds(req, "verb", verb);
    return MS_OK;
}

static void request_free(ms_agent_msg *req, ms_agent_msg *ans)
{
    ms_agent_msg_free(req);
    ms_agent_msg_free(ans);
}

/* ---- printing answers ------------------------------------------------------------------------ */

static bool want_json(const struct cli_args *args)
{
    return cli_get(args, "--json") != NULL;
}

/* Answer fields that are counts or numbers (JSON numbers), and those never printed. */
static bool numeric_field(const char *name)
{
    static const char *const names[] = {"shares_have", "shares_need", "period_len",
                                        "period_offset", "current_period", "audit_entries",
                                        "issued", "exported", "period", "devices"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

static bool hidden_field(const char *name)
{
    static const char *const names[] = {"v", "status", "err", "rsk", "enrolment", "share", "stays"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

static void json_value(struct cli_json *j, const char *key, const char *name,
                       const uint8_t *v, size_t n)
{
    char num[24];
    uint64_t u = 0;
    if (numeric_field(name) && n > 0 && n < sizeof num && v[0] >= '0' && v[0] <= '9') {
        memcpy(num, v, n);
        num[n] = '\0';
        char *end;
        u = strtoull(num, &end, 10);
        if (*end == '\0') {
            cli_json_u64(j, key, u);
            return;
        }
    }
    cli_json_strn(j, key, (const char *)v, n);
}

/* The answer's public fields as JSON members: a name that repeats becomes an array. */
static void json_fields(struct cli_json *j, const ms_agent_msg *ans)
{
    char name[MS_AGENT_FIELD_NAME_MAX + 1], other[MS_AGENT_FIELD_NAME_MAX + 1];
    size_t off = 0, n = 0;
    const uint8_t *v;
    while (ms_agent_msg_next(ans, &off, name, &v, &n)) {
        if (hidden_field(name))
            continue;
        size_t count = ms_agent_msg_count(ans, name), before = 0, o2 = 0, n2 = 0;
        const uint8_t *v2;
        while (ms_agent_msg_next(ans, &o2, other, &v2, &n2) && o2 < off)
            before += strcmp(other, name) == 0;
        if (count == 1) {
            json_value(j, name, name, v, n);
        } else if (before == 0) {
            cli_json_array(j, name);
            for (size_t i = 0; i < count; i++)
                if ((v2 = ms_agent_msg_get(ans, name, i, &n2)) != NULL)
                    json_value(j, NULL, name, v2, n2);
            cli_json_close(j);
        }
    }
}

/* An answer as one JSON object, with the command's own members (NULL-terminated pairs). */
static void print_json(const ms_agent_msg *ans, ...)
{
    struct cli_json j;
    cli_json_begin(&j, stdout);
    json_fields(&j, ans);
    va_list ap;
    va_start(ap, ans);
    for (const char *key; (key = va_arg(ap, const char *)) != NULL;)
        cli_json_str(&j, key, va_arg(ap, const char *));
    va_end(ap);
    cli_json_end(&j);
}

static uint64_t field_u64(const ms_agent_msg *ans, const char *name)
{
    uint64_t v = 0;
    (void)ms_agent_msg_u64(ans, name, 0, &v);
    return v;
}

static const char *field_str(const ms_agent_msg *ans, const char *name, char *out, size_t cap)
{
    const char *s = ms_agent_msg_str(ans, name, 0, out, cap);
    return s != NULL ? s : "";
}

static const char *seal_text(const char *name)
{
    return strcmp(name, "passphrase") == 0 ? "passphrase"
           : strcmp(name, "shares") == 0   ? "custodian shares"
           : strcmp(name, "pkcs11") == 0   ? "PKCS#11 token"
                                           : "unknown";
}

/* `kms status`, from the agent or from the directory. */
static void print_status(const ms_agent_msg *st, const char *agent, bool json)
{
    char kms[512], state[16], seal[16], scheme[16];
    if (json) {
        print_json(st, "agent", agent, (const char *)NULL);
        return;
    }
    if (ms_agent_msg_str(st, "kms", 0, kms, sizeof kms) == NULL) {
        printf("status unavailable\n");
        return;
    }
    char progress[96] = "", scheme_text[96];
    if (ms_agent_msg_get(st, "shares_need", 0, &(size_t){0}) != NULL)
        snprintf(progress, sizeof progress, "Unseal progress: %llu of %llu shares accepted\n",
                 (unsigned long long)field_u64(st, "shares_have"),
                 (unsigned long long)field_u64(st, "shares_need"));
    if (strcmp(field_str(st, "scheme", scheme, sizeof scheme), "3gpp") == 0)
        snprintf(scheme_text, sizeof scheme_text, "3gpp (period length %llu s, offset %llu s)",
                 (unsigned long long)field_u64(st, "period_len"),
                 (unsigned long long)field_u64(st, "period_offset"));
    else
        snprintf(scheme_text, sizeof scheme_text, "rfc6509 (monthly)");
    printf("KMS: %s\nState: %s\n%sSeal: %s\nScheme: %s\nCurrent period: %llu\n"
           "Audit entries: %llu\nAgent: %s\n",
           kms, field_str(st, "state", state, sizeof state), progress,
           seal_text(field_str(st, "seal", seal, sizeof seal)), scheme_text,
           (unsigned long long)field_u64(st, "current_period"),
           (unsigned long long)field_u64(st, "audit_entries"), agent);
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

/* The answer, after the progress messages a request with "progress" = 1 gets first. */
static ms_err recv_answer(int fd, ms_agent_msg *ans, struct cli_progress *progress)
{
    ms_err e;
    while ((e = ms_agent_msg_recv(fd, ans)) == MS_OK && progress != NULL &&
           ms_agent_is_progress(ans)) {
        uint64_t done = 0, total = 0;
        if (ms_agent_msg_u64(ans, "progress_done", 0, &done) &&
            ms_agent_msg_u64(ans, "progress_total", 0, &total))
            cli_progress_update(progress, (size_t)done, (size_t)total);
    }
    return e;
}

static ms_err agent_call_progress(const char *dir, ms_agent_msg *req, ms_agent_msg *ans,
                                  struct cli_progress *progress);

/* Sends req to the agent; the answer stays in *ans for the caller to print. Returns the
 * agent's status, its error printed with the detail the agent gave. */
static ms_err agent_call(const char *dir, ms_agent_msg *req, ms_agent_msg *ans)
{
    return agent_call_progress(dir, req, ans, NULL);
}

/* The same for a request that asks for progress messages, shown on progress (NULL:
 * none asked), whose line it ends. */
static ms_err agent_call_progress(const char *dir, ms_agent_msg *req, ms_agent_msg *ans,
                                  struct cli_progress *progress)
{
    size_t n = 0;
    if (ms_agent_msg_get(req, "v", 0, &n) == NULL) /* a signed request has it already */
        ms_agent_msg_addu(req, "v", MS_AGENT_PROTOCOL);
    int fd = agent_connect(dir);
    struct stat sb;
    if (fd < 0 && stat(dir, &sb) != 0) /* say first that there is no KMS to unseal */
        return cli_fail(MS_ERR_IO, "KMS directory %s: %s", dir, strerror(errno));
    if (fd < 0)
        return cli_fail(MS_ERR_SEALED, "%s: no unseal agent runs; run 'mikeysakke kms unseal'",
                        dir);
    struct timeval tv = {600, 0}; /* issuance of a large community takes a while */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (ms_agent_msg_send(fd, req) != MS_OK || recv_answer(fd, ans, progress) != MS_OK) {
        cli_progress_finish(progress, false);
        close(fd);
        return cli_fail(MS_ERR_IO, "%s: the agent did not answer", dir);
    }
    close(fd);
    char text[4096];
    uint64_t st = 0, v = 0;
    /* the final line before the result, or a newline before the error */
    cli_progress_finish(progress, ms_agent_msg_u64(ans, "status", 0, &st) && st == MS_OK);
    if (!ms_agent_msg_u64(ans, "v", 0, &v) || v != MS_AGENT_PROTOCOL)
        return cli_fail(MS_ERR_IO, "%s: the running agent speaks another protocol version; "
                        "seal it and unseal again", dir);
    if (!ms_agent_msg_u64(ans, "status", 0, &st) || st >= MS_ERR__LAST)
        return cli_fail(MS_ERR_IO, "%s: malformed answer from the agent", dir);
    if (st != MS_OK)
        return kms_fail((ms_err)st,
                        ms_agent_msg_str(ans, "err", 0, text, sizeof text) ? text : dir);
    return MS_OK;
}

/* A verb with options passed as fields of the same names, signed unless the verb is open;
 * on success, the answer in *ans. */
static ms_err simple_request(const struct cli_args *args, const char *verb,
                             const char *const *opts, size_t n_opts, ms_agent_msg *ans)
{
    const char *dir = cli_get(args, "--dir");
    ms_agent_msg req;
    ms_err e = request_init(&req, ans, verb);
    if (e != MS_OK)
        return e;
    for (size_t i = 0; i < n_opts; i++)
        if (cli_get(args, opts[i]) != NULL)
            ms_agent_msg_adds(&req, opts[i] + 2, cli_get(args, opts[i]));
    if (ms_agent_verb_role(verb, NULL) != NULL)
        e = sign_command(dir, &req, cli_get(args, "--key"));
    if (e == MS_OK)
        e = agent_call(dir, &req, ans);
    ms_agent_msg_free(&req);
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

/* The agent for dir_arg; with srv, also the HTTPS server on the same handle (kms serve),
 * saying where it listens as text on stderr or (json) as a JSON line on stdout.
 * Returns when sealed through the socket (agent only) or on SIGTERM/SIGINT/SIGHUP. */
static ms_err agent_run(const char *dir_arg, const ms_kms_server_config *srv, const char *shown,
                        bool json)
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

    ms_agent a;
    memset(&a, 0, sizeof a);
    snprintf(a.dir, sizeof a.dir, "%s", dir);
    a.serving = srv != NULL;
    if ((e = open_kms(&a.kms, dir)) != MS_OK) {
        close(lock);
        return e;
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
        const char *scheme = srv->cert_file != NULL ? "https" : "http";
        unsigned port = (unsigned)ms_kms_server_port(server);
        if (json) {
            struct cli_json j;
            char url[300];
            snprintf(url, sizeof url, "%s://%s:%u", scheme, shown, port);
            cli_json_begin(&j, stdout);
            cli_json_str(&j, "url", url);
            cli_json_str(&j, "address", shown);
            cli_json_u64(&j, "port", port);
            cli_json_str(&j, "state", "sealed");
            cli_json_str(&j, "dir", dir_arg);
            cli_json_end(&j);
            fflush(stdout);
        } else {
            fprintf(stderr,
                    "listening on %s://%s:%u (sealed: unseal with 'mikeysakke kms unseal "
                    "--dir %s')\n",
                    scheme, shown, port, dir_arg);
            fflush(stderr);
        }
    }

    snprintf(path, sizeof path, "%s/agent.pid", dir);
    char pid[24];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    int pfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (pfd >= 0) {
        (void)!write(pfd, pid, (size_t)n);
        close(pfd);
    }

    (void)ms_agent_serve(&a, lfd, &agent_stop);

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
    return agent_run(cli_get(args, "--dir"), NULL, NULL, false);
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
    /* a threshold server's directory: its own service (tools/kms_tserve.c) */
    if (cli_tkms_is_server_dir(cli_get(args, "--dir")))
        return cli_kms_threshold_serve(args);
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
        e = agent_run(dir, &sc, sc.bind_addr != NULL ? sc.bind_addr : "0.0.0.0",
                      cli_get(args, "--json") != NULL);
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
    ms_err e = open_kms(&k, dir);
    if (e != MS_OK)
        return e;
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
    ms_agent_msg req, ans;
    if ((e = request_init(&req, &ans, "unseal")) != MS_OK) {
        ms_wipe(secret, sizeof secret);
        return e;
    }
    ms_agent_msg_add(&req, field, secret, len);
    if (cli_get(args, "--adopt-settings") != NULL)
        ms_agent_msg_adds(&req, "adopt_settings", "1");
    ms_wipe(secret, sizeof secret);
    e = agent_call(dir, &req, &ans);
    char state[16];
    if (e == MS_OK && want_json(args))
        print_json(&ans, (const char *)NULL);
    else if (e == MS_OK && strcmp(field_str(&ans, "state", state, sizeof state), "unsealed") == 0)
        printf("Unsealed\n");
    else if (e == MS_OK)
        printf("Unseal progress: %llu of %llu shares accepted\n",
               (unsigned long long)field_u64(&ans, "shares_have"),
               (unsigned long long)field_u64(&ans, "shares_need"));
    request_free(&req, &ans);
    return e;
}

ms_err cli_kms_status(const struct cli_args *args)
{
    const char *dir = cli_get(args, "--dir");
    ms_agent_msg ans;
    ms_err e;
    int fd = agent_connect(dir);
    if (fd >= 0) {
        close(fd);
        static const char *const none[] = {NULL};
        if ((e = simple_request(args, "status", none, 0, &ans)) == MS_OK)
            print_status(&ans, "running", want_json(args));
        ms_agent_msg_free(&ans);
        return e;
    }
    ms_kms *k = NULL;
    if ((e = open_kms(&k, dir)) != MS_OK)
        return e;
    if (!ms_agent_msg_init(&ans)) {
        ms_kms_close(k);
        return cli_fail(MS_ERR_NOMEM, "status");
    }
    ms_agent_status_fields(k, &ans);
    ms_kms_close(k);
    print_status(&ans, "not running", want_json(args));
    ms_agent_msg_free(&ans);
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
        ms_kms *k = NULL;
        ms_err e = open_kms(&k, dir); /* no agent: is there a KMS at all? */
        ms_kms_close(k);
        if (e != MS_OK)
            return e;
        if (want_json(args))
            printf("{\"state\":\"sealed\",\"agent\":\"not running\"}\n");
        else
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
    ms_agent_msg req, ans;
    ms_err e = request_init(&req, &ans, "seal");
    if (e != MS_OK)
        return e;
    e = agent_call(dir, &req, &ans);
    bool stays = e == MS_OK && field_u64(&ans, "stays") != 0;
    if (stays)
        pid = 0; /* kms serve: wiped, and it goes on answering 503 */
    if (e == MS_OK && want_json(args))
        print_json(&ans, "agent", stays ? "serving" : "exits", (const char *)NULL);
    else if (e == MS_OK && stays)
        printf("Sealed: the master secrets are wiped; kms serve answers 503 until unsealed\n");
    else if (e == MS_OK)
        printf("Sealed: the agent wiped the master secrets and exits\n");
    request_free(&req, &ans);
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
    ms_agent_msg ans;
    char user[512];
    ms_err e = simple_request(args, verb, opts, 1, &ans);
    if (e == MS_OK && want_json(args))
        print_json(&ans, "action", verb + 5, (const char *)NULL);
    else if (e == MS_OK)
        printf("%s: %s\n", verb + 5, field_str(&ans, "user", user, sizeof user));
    ms_agent_msg_free(&ans);
    return e;
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

ms_err cli_kms_user_list(const struct cli_args *args)
{
    const char *dir = cli_get(args, "--dir");
    ms_kms *k = NULL;
    ms_agent_msg ans;
    ms_err e = open_kms(&k, dir);
    if (e != MS_OK)
        return e;
    if (!ms_agent_msg_init(&ans)) {
        ms_kms_close(k);
        return cli_fail(MS_ERR_NOMEM, "user list");
    }
    e = ms_agent_user_fields(k, &ans);
    ms_kms_close(k);
    if (e == MS_OK && ans.overflow)
        e = MS_ERR_BAD_LENGTH;
    struct cli_json j;
    size_t n = ms_agent_msg_count(&ans, "user");
    if (e == MS_OK && want_json(args)) {
        cli_json_begin(&j, stdout);
        cli_json_array(&j, "users");
    }
    for (size_t i = 0; e == MS_OK && i < n; i++) {
        char uri[512] = "", state[16] = "";
        uint64_t d = 0;
        (void)ms_agent_msg_str(&ans, "user", i, uri, sizeof uri);
        (void)ms_agent_msg_str(&ans, "user_state", i, state, sizeof state);
        (void)ms_agent_msg_u64(&ans, "devices", i, &d);
        if (want_json(args)) {
            cli_json_object(&j, NULL);
            cli_json_str(&j, "user", uri);
            cli_json_str(&j, "state", state);
            cli_json_u64(&j, "devices", d);
            cli_json_close(&j);
        } else {
            printf("%s %s %llu device%s\n", uri, state, (unsigned long long)d, d == 1 ? "" : "s");
        }
    }
    if (e == MS_OK && want_json(args)) {
        cli_json_close(&j);
        cli_json_u64(&j, "count", n);
        cli_json_end(&j);
    }
    ms_agent_msg_free(&ans);
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
static ms_err add_approved_request(ms_agent_msg *req, const char *request_path, const char *list)
{
    char *text = malloc(MS_REQUEST_MAX + 2);
    size_t len = 0;
    if (text == NULL)
        return cli_fail(MS_ERR_NOMEM, "request");
    ms_err e = read_text_file("--request", request_path, text, MS_REQUEST_MAX + 1, &len);
    if (e == MS_OK && ms_request_check(text, len) != MS_OK)
        e = cli_fail(MS_ERR_ARG, "--request %s: not a request file", request_path);
    if (e == MS_OK)
        ms_agent_msg_add(req, "request", text, len);
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
        ms_agent_msg_add(req, "approval", line, len);
    }
    free(copy);
    return e;
}

/* A request's name=value lines as members of a JSON object (numbers as numbers). */
static int json_request_field(void *ctx, const char *key, const char *value)
{
    struct cli_json *j = ctx;
    size_t digits = strspn(value, "0123456789");
    bool number = (strcmp(key, "period") == 0 || strcmp(key, "expires") == 0) &&
                  digits > 0 && digits < 20 && value[digits] == '\0';
    if (number)
        cli_json_u64(j, key, strtoull(value, NULL, 10));
    else
        cli_json_str(j, key, value);
    return 0;
}

/* --json of `kms audit/device request` and `approve`: the file written and the
 * request's fields (what the text shows), and the whole text. */
static void print_request_json(const char *out, const char *text, size_t len)
{
    struct cli_json j;
    cli_json_begin(&j, stdout);
    cli_json_str(&j, "out", out);
    cli_json_object(&j, "request");
    (void)ms_request_each(text, len, json_request_field, &j);
    cli_json_close(&j);
    cli_json_strn(&j, "text", text, len);
    cli_json_end(&j);
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
    if ((e = open_kms(&k, dir)) != MS_OK)
        return e;
    char *text = malloc(MS_REQUEST_MAX + 1);
    size_t len = 0;
    uint64_t p = 0;
    if (text == NULL)
        e = MS_ERR_NOMEM;
    else if (!extract)
        e = ms_kms_request_enrol(k, text, MS_REQUEST_MAX + 1, &len, user,
                                 cli_get(args, "--device"), lifetime);
    else if ((e = ms_agent_extract_scope(k, user, cli_get(args, "--period"), &p)) == MS_OK)
        e = ms_kms_request_extract(k, text, MS_REQUEST_MAX + 1, &len, user, p,
                                   cli_get(args, "--reason"), lifetime);
    char why[512];
    snprintf(why, sizeof why, "%s", ms_kms_detail(k));
    ms_kms_close(k);
    if (e == MS_OK && (e = write_private("--out", out, text, len)) == MS_OK) {
        chmod(out, 0644); /* nothing secret: approvers read it */
        if (want_json(args)) {
            print_request_json(out, text, len);
        } else {
            fwrite(text, 1, len, stdout);
            printf("request written to %s: each approver runs 'mikeysakke kms %s approve'\n",
                   out, extract ? "audit" : "device");
        }
    }
    free(text);
    if (e != MS_OK && why[0] == '\0')
        snprintf(why, sizeof why, "%s", extract ? "audit request" : "device request");
    return e == MS_OK ? MS_OK : kms_fail(e, why);
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
            if (want_json(args))
                print_request_json(out, text, len);
            else
                printf("Approved:\n%sapproval written to %s\n",
                       text + strlen(MS_REQUEST_HEADER), out);
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
    ms_agent_msg req, ans;
    if ((e = request_init(&req, &ans, "enrol")) != MS_OK)
        return e;
    ms_agent_msg_adds(&req, "user", cli_get(args, "--user"));
    ms_agent_msg_adds(&req, "device", cli_get(args, "--device"));
    if ((cli_get(args, "--request") != NULL) != (cli_get(args, "--approval") != NULL))
        e = cli_fail(MS_ERR_USAGE, "--request and --approval go together");
    if (e == MS_OK && cli_get(args, "--request") != NULL)
        e = add_approved_request(&req, cli_get(args, "--request"), cli_get(args, "--approval"));
    if (e == MS_OK)
        e = sign_command(cli_get(args, "--dir"), &req, cli_get(args, "--key"));
    if (e == MS_OK)
        e = agent_call(cli_get(args, "--dir"), &req, &ans);
    size_t n = 0;
    const uint8_t *xml = e == MS_OK ? ms_agent_msg_get(&ans, "enrolment", 0, &n) : NULL;
    if (e == MS_OK && xml == NULL)
        e = cli_fail(MS_ERR_IO, "the agent sent no enrolment file");
    if (xml != NULL && (e = write_private("--out", out, xml, n)) == MS_OK) {
        if (want_json(args))
            print_json(&ans, "out", out, (const char *)NULL);
        else
            printf("Enrolled device %s of %s: %s (deliver out of band; secret)\n",
                   cli_get(args, "--device"), cli_get(args, "--user"), out);
    }
    request_free(&req, &ans);
    return e;
}

ms_err cli_kms_issue(const struct cli_args *args)
{
    const char *dir = cli_get(args, "--dir");
    ms_agent_msg req, ans;
    ms_err e = request_init(&req, &ans, "issue");
    if (e != MS_OK)
        return e;
    ms_agent_msg_adds(&req, "period", cli_get(args, "--period"));
    if (cli_get(args, "--threads") != NULL)
        ms_agent_msg_adds(&req, "threads", cli_get(args, "--threads"));
    /* always asked: the messages also show the agent is still at work on a long run */
    ms_agent_msg_adds(&req, "progress", "1");
    struct cli_progress progress;
    cli_progress_init(&progress, "key sets", want_json(args));
    e = sign_command(dir, &req, cli_get(args, "--key"));
    if (e == MS_OK)
        e = agent_call_progress(dir, &req, &ans, &progress);
    ms_agent_msg_free(&req);
    uint64_t n = field_u64(&ans, "issued");
    if (e == MS_OK && want_json(args))
        print_json(&ans, (const char *)NULL);
    else if (e == MS_OK)
        printf("Issued %llu key set%s for period %llu\n", (unsigned long long)n,
               n == 1 ? "" : "s", (unsigned long long)field_u64(&ans, "period"));
    ms_agent_msg_free(&ans);
    return e;
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
    ms_agent_msg req, ans;
    if ((e = request_init(&req, &ans, "export")) != MS_OK)
        return e;
    ms_agent_msg_adds(&req, "period", cli_get(args, "--period"));
    ms_agent_msg_adds(&req, "out", abs);
    ms_agent_msg_adds(&req, "progress", "1");
    struct cli_progress progress;
    cli_progress_init(&progress, "packages", want_json(args));
    e = sign_command(cli_get(args, "--dir"), &req, cli_get(args, "--key"));
    if (e == MS_OK)
        e = agent_call_progress(cli_get(args, "--dir"), &req, &ans, &progress);
    uint64_t n = field_u64(&ans, "exported");
    if (e == MS_OK && want_json(args))
        print_json(&ans, (const char *)NULL);
    else if (e == MS_OK)
        printf("Exported %llu package%s for period %llu to %s\n", (unsigned long long)n,
               n == 1 ? "" : "s", (unsigned long long)field_u64(&ans, "period"), abs);
    request_free(&req, &ans);
    return e;
}

ms_err cli_kms_audit_extract(const struct cli_args *args)
{
    if (cli_get(args, "--threshold") != NULL)
        return cli_kms_threshold_extract(args);
    static const char *const need[] = {"--dir", "--request", "--approval"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (cli_get(args, need[i]) == NULL)
            return cli_fail(MS_ERR_USAGE, "missing required option %s", need[i]);
    const char *out = cli_get(args, "--out");
    ms_err e = cli_check_new_file("--out", out, 0);
    if (e != MS_OK)
        return e;
    ms_agent_msg req, ans;
    if ((e = request_init(&req, &ans, "extract")) != MS_OK)
        return e;
    e = add_approved_request(&req, cli_get(args, "--request"), cli_get(args, "--approval"));
    if (e == MS_OK)
        e = agent_call(cli_get(args, "--dir"), &req, &ans);
    size_t n = 0;
    bool json = want_json(args);
    const uint8_t *rsk = e == MS_OK ? ms_agent_msg_get(&ans, "rsk", 0, &n) : NULL;
    if (e == MS_OK && (rsk == NULL || n != MS_SAKKE_POINT_BYTES))
        e = cli_fail(MS_ERR_IO, "the agent sent no RSK");
    char user[512], period[32], nonce[64], id[2 * MS_SAKKE_ID_MAX_BYTES + 1];
    if (e == MS_OK && !json)
        printf("Extracted the RSK of %s for key period %s (audited, request %s)\n"
               "identifier = %s\n",
               field_str(&ans, "user", user, sizeof user),
               field_str(&ans, "period", period, sizeof period),
               field_str(&ans, "request_nonce", nonce, sizeof nonce),
               field_str(&ans, "identifier", id, sizeof id));
    if (e == MS_OK && (e = cli_write_secret("--out", out, rsk, n, 0)) == MS_OK && !json)
        printf("RSK written to %s (mode 0600)\n", out);
    char cp[MS_KMS_CHECKPOINT_MAX];
    const char *cp_out = cli_get(args, "--checkpoint-out");
    if (e == MS_OK && ms_agent_msg_str(&ans, "checkpoint", 0, cp, sizeof cp) != NULL) {
        /* The auditors keep it outside the KMS directory: audit verify --checkpoint. */
        if (cp_out == NULL && !json)
            fprintf(stderr, "Audit checkpoint (keep it; 'kms audit verify --checkpoint' checks "
                            "the log against it):\n%s", cp);
        else if (cp_out != NULL &&
                 (e = write_private("--checkpoint-out", cp_out, cp, strlen(cp))) == MS_OK && !json)
            printf("Audit checkpoint written to %s\n", cp_out);
    }
    if (e == MS_OK && json)
        print_json(&ans, "out", out, cp_out != NULL ? "checkpoint_out" : (const char *)NULL,
                   cp_out, (const char *)NULL);
    request_free(&req, &ans);
    return e;
}

struct notable {
    size_t counts[2]; /* extractions, second devices */
    struct cli_json *json; /* NULL: text */
};

/* What auditors look for in a verified log, one line (or one JSON object) each. */
static int print_notable(void *ctx, const char *kind, const char *entry)
{
    struct notable *n = ctx;
    bool extract = strcmp(kind, "extract") == 0;
    n->counts[extract ? 0 : 1]++;
    if (n->json == NULL) {
        printf("%s: %s\n", extract ? "extraction" : "second device", entry);
        return 0;
    }
    cli_json_object(n->json, NULL);
    cli_json_str(n->json, "kind", extract ? "extraction" : "second_device");
    cli_json_str(n->json, "entry", entry);
    cli_json_close(n->json);
    return 0;
}

ms_err cli_kms_audit_verify(const struct cli_args *args)
{
    const char *dir = cli_get(args, "--dir");
    const char *log = cli_get(args, "--log");
    const char *pub = cli_get(args, "--public");
    if ((dir != NULL) == (log != NULL) || (log != NULL) != (pub != NULL))
        return cli_fail(MS_ERR_USAGE, "give --dir DIR, or --log FILE with --public FILE");
    /* a threshold server's directory: its audit.log under its audit.pub */
    char tlog[PATH_MAX], tpub[PATH_MAX], tdb[PATH_MAX];
    if (dir != NULL && snprintf(tdb, sizeof tdb, "%s/kms.db", dir) > 0 &&
        access(tdb, F_OK) != 0 && snprintf(tpub, sizeof tpub, "%s/audit.pub", dir) > 0 &&
        access(tpub, F_OK) == 0 && snprintf(tlog, sizeof tlog, "%s/audit.log", dir) > 0) {
        log = tlog;
        pub = tpub;
        dir = NULL;
    }
    uint64_t n = 0, bad = 0;
    char detail[PATH_MAX + 128] = "";
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
        e = ms_kms_audit_verify_checkpoint(&n, &bad, dir, log, pub, cp_text, detail,
                                           sizeof detail);
    } else {
        e = dir != NULL ? ms_kms_audit_verify(&n, &bad, dir, detail, sizeof detail)
                        : ms_kms_audit_verify_files(&n, &bad, log, pub, detail, sizeof detail);
    }
    if (e == MS_ERR_BAD_ENCODING)
        return cli_fail(e, "--checkpoint %s: %s", cp_file, detail);
    char where[PATH_MAX + 64];
    snprintf(where, sizeof where, "%s%s", dir ? dir : log, dir ? "/audit.log" : "");
    struct cli_json j;
    if (e == MS_ERR_AUDIT_CHAIN) {
        if (want_json(args)) {
            cli_json_begin(&j, stdout);
            cli_json_bool(&j, "ok", false);
            cli_json_u64(&j, "first_bad_line", bad);
            cli_json_str(&j, "detail", detail);
            cli_json_end(&j);
        } else {
            printf("audit log NOT OK: first bad entry at line %llu: %s\n",
                   (unsigned long long)bad, detail);
        }
        return cli_fail(e, "%s line %llu: %s", where, (unsigned long long)bad, detail);
    }
    if (e != MS_OK)
        return kms_fail(e, detail[0] != '\0' ? detail : where);
    struct notable found = {{0, 0}, want_json(args) ? &j : NULL};
    if (found.json != NULL) {
        cli_json_begin(&j, stdout);
        cli_json_bool(&j, "ok", true);
        cli_json_u64(&j, "entries", n);
        cli_json_array(&j, "notable");
    } else {
        printf("audit log OK: %llu entries verified\n", (unsigned long long)n);
    }
    e = ms_kms_audit_notable(dir != NULL ? where : log, print_notable, &found);
    if (found.json != NULL) {
        cli_json_close(&j);
        cli_json_u64(&j, "extractions", found.counts[0]);
        cli_json_u64(&j, "second_devices", found.counts[1]);
        cli_json_end(&j);
    }
    if (e != MS_OK)
        return kms_fail(e, where);
    if (found.json == NULL)
        printf("%zu extraction%s, %zu device%s added to a user who already had one\n",
               found.counts[0], found.counts[0] == 1 ? "" : "s", found.counts[1],
               found.counts[1] == 1 ? "" : "s");
    return MS_OK;
}

ms_err cli_kms_audit_checkpoint(const struct cli_args *args)
{
    static const char *const none[] = {NULL};
    ms_agent_msg ans;
    char cp[MS_KMS_CHECKPOINT_MAX];
    ms_err e = simple_request(args, "checkpoint", none, 0, &ans);
    if (e == MS_OK && want_json(args))
        print_json(&ans, (const char *)NULL);
    else if (e == MS_OK)
        fputs(field_str(&ans, "checkpoint", cp, sizeof cp), stdout);
    ms_agent_msg_free(&ans);
    return e;
}

ms_err cli_kms_audit_syslog(const struct cli_args *args)
{
    static const char *const opts[] = {"--copy"};
    ms_agent_msg ans;
    char copy[8];
    ms_err e = simple_request(args, "audit_syslog", opts, 1, &ans);
    if (e == MS_OK && want_json(args))
        print_json(&ans, (const char *)NULL);
    else if (e == MS_OK)
        printf("Audit log copy to syslog: %s\n", field_str(&ans, "copy", copy, sizeof copy));
    ms_agent_msg_free(&ans);
    return e;
}

ms_err cli_kms_rollover(const struct cli_args *args)
{
    const char *dir = cli_get(args, "--dir");
    const char *pass = cli_get(args, "--passphrase-file");
    const char *pin = cli_get(args, "--pin-file");
    const char *share_dir = cli_get(args, "--share-out-dir");
    ms_kms *k = NULL;
    ms_kms_status st;
    ms_err e = open_kms(&k, dir);
    if (e != MS_OK)
        return e;
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
    ms_agent_msg req, ans;
    if ((e = request_init(&req, &ans, "rollover")) != MS_OK) {
        ms_wipe(secret, sizeof secret);
        return e;
    }
    ms_agent_msg_adds(&req, "from_period", cli_get(args, "--from-period"));
    if (field != NULL)
        ms_agent_msg_add(&req, field, secret, len);
    ms_wipe(secret, sizeof secret);
    e = sign_command(dir, &req, cli_get(args, "--key"));
    if (e == MS_OK)
        e = agent_call(dir, &req, &ans);
    uint64_t p = field_u64(&ans, "period");
    if (e == MS_OK && !want_json(args))
        printf("New master keys from key period %llu; certificate-%llu.xml written\n",
               (unsigned long long)p, (unsigned long long)p);
    if (e == MS_OK && share_dir != NULL) {
        ms_kms_handout *h = calloc(1, sizeof *h);
        if (h == NULL)
            e = cli_fail(MS_ERR_NOMEM, "shares");
        size_t n = 0;
        const uint8_t *v;
        while (h != NULL && h->n_shares < MS_KMS_MAX_SHARES &&
               (v = ms_agent_msg_get(&ans, "share", h->n_shares, &n)) != NULL &&
               n <= MS_KMS_SHARE_MAX) {
            memcpy(h->share[h->n_shares], v, n);
            h->share_len[h->n_shares++] = n;
        }
        if (h != NULL) {
            /* the old shares no longer open the new seal: new names */
            char sub[PATH_MAX];
            snprintf(sub, sizeof sub, "%s", share_dir);
            e = write_handout(h, sub, !want_json(args));
            free(h);
        }
    }
    if (e == MS_OK && want_json(args)) {
        char cert[64];
        snprintf(cert, sizeof cert, "certificate-%llu.xml", (unsigned long long)p);
        print_json(&ans, "certificate", cert, share_dir != NULL ? "share_dir" : (const char *)NULL,
                   share_dir, (const char *)NULL);
    }
    request_free(&req, &ans);
    return e;
}

ms_err cli_kms_cert(const struct cli_args *args)
{
    const char *dir = cli_get(args, "--dir");
    ms_kms *k = NULL;
    ms_err e = open_kms(&k, dir);
    if (e != MS_OK)
        return e;
    uint64_t p = 0;
    const char *ps = cli_get(args, "--period");
    e = ms_agent_period(k, ps ? ps : "current", &p);
    char *xml = malloc(XML_MAX);
    size_t len = 0;
    if (e == MS_OK && xml == NULL)
        e = MS_ERR_NOMEM;
    if (e == MS_OK)
        e = ms_kms_certificate_xml(k, xml, XML_MAX, &len, p);
    ms_kms_close(k);
    if (e == MS_OK && want_json(args)) {
        struct cli_json j;
        cli_json_begin(&j, stdout);
        cli_json_u64(&j, "period", p);
        cli_json_strn(&j, "certificate", xml, len);
        cli_json_end(&j);
    } else if (e == MS_OK) {
        fwrite(xml, 1, len, stdout);
        if (len == 0 || xml[len - 1] != '\n')
            putchar('\n');
    }
    free(xml);
    return e == MS_OK ? MS_OK : kms_fail(e, dir);
}
