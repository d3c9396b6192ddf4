/*
 * The `kms` subcommands (tools/kms.c): entry points and option tables for main.c's
 * subcommand table.
 */
#ifndef MIKEYSAKKE_TOOLS_KMS_CLI_H
#define MIKEYSAKKE_TOOLS_KMS_CLI_H

#include "cli.h"

#define CLI_KMS_VERBS(X)                                                                   \
    X(init) X(unseal) X(status) X(seal) X(agent) X(user_add) X(user_list) X(user_suspend)  \
    X(user_resume) X(user_remove) X(device_enrol) X(device_request) X(device_approve) X(issue) X(export)        \
    X(audit_request) X(audit_approve) X(audit_extract)     \
    X(audit_verify) X(rollover) X(cert) X(serve) X(audit_checkpoint) X(audit_syslog)

#define CLI_KMS_DECLARE(v)                                                                 \
    ms_err cli_kms_##v(const struct cli_args *args);                                       \
    extern const struct cli_opt cli_kms_##v##_opts[];
CLI_KMS_VERBS(CLI_KMS_DECLARE)
#undef CLI_KMS_DECLARE

#endif
