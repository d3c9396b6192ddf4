/*
 * The `user` subcommands (tools/user.c): the client keystore. Entry points and option
 * tables for main.c's subcommand table.
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

#endif
