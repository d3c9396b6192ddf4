/*
 * The call-side subcommands (tools/call.c): entry points and option tables for main.c's
 * subcommand table.
 */
#ifndef MIKEYSAKKE_TOOLS_CALL_CLI_H
#define MIKEYSAKKE_TOOLS_CALL_CLI_H

#include "cli.h"

ms_err cli_call_dial(const struct cli_args *args);
ms_err cli_call_answer(const struct cli_args *args);
extern const struct cli_opt cli_call_dial_opts[];
extern const struct cli_opt cli_call_answer_opts[];

/* tools/voicemail.c */
#define CLI_VOICEMAIL_VERBS(X) X(serve) X(add_user) X(list) X(fetch) X(play) X(delete)
#define CLI_VOICEMAIL_DECLARE(v)                                                           \
    ms_err cli_voicemail_##v(const struct cli_args *args);                                 \
    extern const struct cli_opt cli_voicemail_##v##_opts[];
CLI_VOICEMAIL_VERBS(CLI_VOICEMAIL_DECLARE)
#undef CLI_VOICEMAIL_DECLARE

#endif
