/*
 * Audited extraction at a threshold KMS (tools/kms_threshold_audit.c): entry points and
 * option tables for main.c's subcommand table; `kms audit extract --threshold` comes here
 * from tools/kms.c.
 */
#ifndef MIKEYSAKKE_TOOLS_TKMS_AUDIT_CLI_H
#define MIKEYSAKKE_TOOLS_TKMS_AUDIT_CLI_H

#include "cli.h"

ms_err cli_kms_threshold_audit_keygen(const struct cli_args *args);
ms_err cli_kms_threshold_audit_setup(const struct cli_args *args);
ms_err cli_kms_threshold_warrant(const struct cli_args *args);
ms_err cli_kms_threshold_warrant_sign(const struct cli_args *args);
ms_err cli_kms_threshold_extract(const struct cli_args *args);
extern const struct cli_opt cli_kms_threshold_audit_keygen_opts[];
extern const struct cli_opt cli_kms_threshold_audit_setup_opts[];
extern const struct cli_opt cli_kms_threshold_warrant_opts[];
extern const struct cli_opt cli_kms_threshold_warrant_sign_opts[];

#endif
