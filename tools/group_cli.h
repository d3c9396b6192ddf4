/*
 * The `group` subcommands (tools/group.c): entry points and option tables for main.c's
 * subcommand table.
 */
#ifndef MIKEYSAKKE_TOOLS_GROUP_CLI_H
#define MIKEYSAKKE_TOOLS_GROUP_CLI_H

#include "cli.h"

#define CLI_GROUP_VERBS(X) X(create) X(add) X(remove) X(rekey) X(send) X(show) X(join)
#define CLI_GROUP_DECLARE(v)                                                               \
    ms_err cli_group_##v(const struct cli_args *args);                                     \
    extern const struct cli_opt cli_group_##v##_opts[];
CLI_GROUP_VERBS(CLI_GROUP_DECLARE)
#undef CLI_GROUP_DECLARE

#endif
