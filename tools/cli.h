/*
 * Internal interface of the `mikeysakke` command, shared by the files in tools/.
 *
 * main.c       the subcommand table, option parsing, usage text, main()
 * io.c         hex, error messages, key files, message input, output lines
 * config.c     the servers' and the provisioning client's configuration file (config.h)
 * sakke.c      the `sakke` subcommands
 * eccsi.c      the `eccsi` subcommands
 * mikey.c      the `mikey` subcommands (MIKEY-SAKKE I_MESSAGE, identifiers)
 * user.c       the `user` subcommands: the device's keystore (user_cli.h)
 * kms.c        the `kms` subcommands and the unseal agent (kms_cli.h)
 * dist.c       `dist serve`: the distribution server of an offline KMS's export
 * call.c       the `call` subcommands (call_cli.h)
 * group.c      the `group` subcommands (group_cli.h)
 * audit.c      `audit decrypt`, the auditor's side (audit_cli.h)
 * voicemail.c  the `voicemail` subcommands; voicemail/main.c is the key-less store program
 * relay.c      the `relay` subcommands; relay/main.c is the key-less conference relay
 * json_out.c   the --json writer (json_out.h)
 * progress.c   the progress line of long commands on a terminal (progress.h)
 * lazy_net_libs.c  libcurl and libmicrohttpd loaded at their first call, not at start
 * keyless/     what mikeysakke-voicemail and mikeysakke-relay share (keyless/cli.h)
 *
 * A subcommand returns an ms_err that becomes the exit status. Whoever detects a failure
 * prints it (cli_fail) so the message can carry the detail; the caller just passes the
 * code up. A "no" from a validity check is reported with cli_invalid and exits 1.
 */
#ifndef MIKEYSAKKE_TOOLS_CLI_H
#define MIKEYSAKKE_TOOLS_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/crypto.h"

#if defined(__GNUC__) || defined(__clang__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

/* ---- subcommands and their options ---------------------------------------------------- */

#define CLI_MAX_OPTS 32 /* per subcommand, not counting the global --verbose and --help */

enum {
    CLI_REQUIRED = 1u, /* the option must be given */
    CLI_FLAG = 2u,     /* takes no value */
    CLI_POSITIONAL = 4u, /* may also be given as the one bare word after the verb */
};

struct cli_opt {
    const char *name; /* "--id" */
    const char *arg;  /* value placeholder for usage ("HEX"); NULL for a flag */
    unsigned flags;
    const char *help;
};

struct cli_cmd;

/* What the parser found: val[i] belongs to cmd->opts[i] (NULL if absent, "" for a flag). */
struct cli_args {
    const struct cli_cmd *cmd;
    const char *val[CLI_MAX_OPTS];
    int verbose;
};

struct cli_cmd {
    const char *area;
    const char *verb;
    ms_err (*run)(const struct cli_args *args);
    const char *help;           /* one line, for the command list */
    const struct cli_opt *opts; /* ends with a {NULL} entry */
};

/* The value of option `name` of the running command, or NULL if it was not given.
 * Aborts on a name the command does not declare (a bug in this program). */
const char *cli_get(const struct cli_args *args, const char *name);

/* Subcommand entry points (sakke.c, eccsi.c, mikey.c). */
ms_err cli_sakke_keygen(const struct cli_args *args);
ms_err cli_sakke_rsk(const struct cli_args *args);
ms_err cli_sakke_validate(const struct cli_args *args);
ms_err cli_sakke_encap(const struct cli_args *args);
ms_err cli_sakke_decap(const struct cli_args *args);
ms_err cli_eccsi_keygen(const struct cli_args *args);
ms_err cli_eccsi_issue(const struct cli_args *args);
ms_err cli_eccsi_sign(const struct cli_args *args);
ms_err cli_eccsi_verify(const struct cli_args *args);
ms_err cli_mikey_init(const struct cli_args *args);
ms_err cli_mikey_respond(const struct cli_args *args);
ms_err cli_mikey_inspect(const struct cli_args *args);
ms_err cli_mikey_id(const struct cli_args *args);
ms_err cli_mikey_uid(const struct cli_args *args);

/* ---- messages ------------------------------------------------------------------------- */

/* Prints "mikeysakke: (N) <detail>: <ms_strerror(N)>" to stderr and returns err.
 * The detail must never contain secret material. */
ms_err cli_fail(ms_err err, const char *fmt, ...) CLI_PRINTF(2, 3);

/* A validity check said no: prints "mikeysakke: (1) <detail>: <ms_strerror(why)>" and
 * returns MS_ERR_INVALID, so the command exits 1 while the message keeps the reason. */
ms_err cli_invalid(ms_err why, const char *fmt, ...) CLI_PRINTF(2, 3);

/* --verbose output: "label = HEX" on stderr, the layout of tests/vectors. Public values only. */
void cli_trace_hex(const char *label, const uint8_t *p, size_t len);

/* ---- hex -------------------------------------------------------------------------------- */

/* Hex itself: src/util/hex.h (ms_hex_decode_secret for secrets, ms_hex_encode_upper). */

/* A hex command-line argument of any length: *out is malloc'd (free with free after
 * wiping if secret); *out_len octets. Errors name the option. */
ms_err cli_hex_arg(const char *opt, const char *hex, uint8_t **out, size_t *out_len);

/* A hex command-line argument of exactly len octets. */
ms_err cli_hex_arg_fixed(const char *opt, const char *hex, uint8_t *out, size_t len);

/* ---- output ------------------------------------------------------------------------------ */

/* Writes one upper-case hex line to stdout with write(2) from a buffer that is wiped
 * afterwards, so a printed SSV leaves no copy in a stdio buffer. */
ms_err cli_print_hex(const uint8_t *p, size_t len);

/* ---- files -------------------------------------------------------------------------------- */

/* Reads a secret key file: one line of hex. Refuses (MS_ERR_KEYFILE_MODE) a file that is
 * not regular or has any group/other permission bit; the decoded length must lie in
 * [min_len, max_len]; the value is right-aligned in out[0..max_len) with leading zeros.
 * `opt` names the option in messages. */
ms_err cli_read_secret(const char *opt, const char *path, uint8_t *out, size_t min_len,
                       size_t max_len);

/* Early check that a key file may be written: refuses an existing path without force, so
 * no work is done for a write that would fail. cli_write_secret checks again atomically. */
ms_err cli_check_new_file(const char *opt, const char *path, int force);

/* Writes a secret as one line of upper-case hex: temp file (O_EXCL, mode 0600) in the same
 * directory, fsync, then link (no force: fails if the target exists) or rename (force). */
ms_err cli_write_secret(const char *opt, const char *path, const uint8_t *p, size_t len,
                        int force);

/* Reads a whole file, or standard input if path is "-". *out is malloc'd (non-NULL even
 * when empty). */
ms_err cli_read_input(const char *opt, const char *path, uint8_t **out, size_t *out_len);

/* cli_read_input for a file holding secrets: refused as cli_read_secret refuses a key file
 * (MS_ERR_KEYFILE_MODE: not regular, or any group/other permission bit). "-" reads
 * standard input unchecked. The caller wipes and frees *out. */
ms_err cli_read_secret_input(const char *opt, const char *path, uint8_t **out,
                             size_t *out_len);

/* Runs a key-less companion program (mikeysakke-voicemail, mikeysakke-relay) with argv,
 * argv[0] replaced: the one beside this binary, else from PATH. Returns only on failure. */
int cli_exec_program(const char *program, char **argv);

/* ---- passphrases and times (io.c) ------------------------------------------------------ */

#define CLI_PASSPHRASE_MAX 1024

/* The keystore passphrase: first line of `path` (a regular file of mode 0600 or
 * stricter), or read from the terminal without echo (twice when `confirm`). */
ms_err cli_read_passphrase(const char *path, int confirm, char *out, size_t cap,
                           size_t *out_len);

/* The first line of a secret file named by option `opt` (mode 0600 or stricter). */
ms_err cli_read_secret_line(const char *opt, const char *path, char *out, size_t cap,
                            size_t *out_len);

/* The last second of NTP era 0 (2036-02-07T06:28:15Z): MIKEY's T carries 32-bit seconds. */
#define CLI_NTP_ERA0_LAST 0xFFFFFFFFull

/* A TIME argument (docs/cli.md "Times"): src/util/timefmt.h's form, its fraction kept, or
 * exactly 16 hex digits (NTP 32.32 as in MIKEY's T), until the end of NTP era 0. Result
 * NTP 32.32; errors name the option. */
ms_err cli_time_arg(const char *opt, const char *s, uint64_t *ntp);
/* NTP 32.32 as "YYYY-MM-DDTHH:MM:SSZ" (the fraction dropped). */
void cli_time_format(char out[32], uint64_t ntp);

#endif
