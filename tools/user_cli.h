/*
 * The `user` subcommands (tools/user.c): the client keystore. Entry points and option
 * tables for main.c's subcommand table, and helpers shared with mikey.c.
 */
#ifndef MIKEYSAKKE_TOOLS_USER_CLI_H
#define MIKEYSAKKE_TOOLS_USER_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"

#define CLI_USER_VERBS(X) X(init) X(import) X(list) X(status) X(purge) X(fetch) X(approve_device)

#define CLI_USER_DECLARE(v)                                                                \
    ms_err cli_user_##v(const struct cli_args *args);                                      \
    extern const struct cli_opt cli_user_##v##_opts[];
CLI_USER_VERBS(CLI_USER_DECLARE)
#undef CLI_USER_DECLARE

#define CLI_PASSPHRASE_MAX 1024

/* The keystore passphrase: first line of `path` (a regular file of mode 0600 or
 * stricter), or read from the terminal without echo (twice when `confirm`). */
ms_err cli_read_passphrase(const char *path, int confirm, char *out, size_t cap,
                           size_t *out_len);

/* The first line of a secret file named by option `opt` (mode 0600 or stricter). */
ms_err cli_read_secret_line(const char *opt, const char *path, char *out, size_t cap,
                            size_t *out_len);

/* TIME arguments and output as in mikey.c (NTP 32.32). */
ms_err cli_time_arg(const char *opt, const char *s, uint64_t *ntp);
void cli_time_format(char out[32], uint64_t ntp);

#endif
