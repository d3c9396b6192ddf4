/*
 * The `kms threshold` subcommands (tools/kms_threshold.c): one server of a threshold KMS
 * (src/tkms/node.h). Entry points and option tables for main.c's subcommand table.
 */
#ifndef MIKEYSAKKE_TOOLS_KMS_THRESHOLD_CLI_H
#define MIKEYSAKKE_TOOLS_KMS_THRESHOLD_CLI_H

#include "cli.h"

ms_err cli_kms_threshold_keygen(const struct cli_args *args);
ms_err cli_kms_threshold_init(const struct cli_args *args);
extern const struct cli_opt cli_kms_threshold_keygen_opts[];
extern const struct cli_opt cli_kms_threshold_init_opts[];
ms_err cli_kms_threshold_batch(const struct cli_args *args);
extern const struct cli_opt cli_kms_threshold_batch_opts[];
ms_err cli_kms_threshold_share(const struct cli_args *args);
extern const struct cli_opt cli_kms_threshold_share_opts[];
ms_err cli_user_threshold_combine(const struct cli_args *args);
extern const struct cli_opt cli_user_threshold_combine_opts[];
ms_err cli_kms_threshold_check_report(const struct cli_args *args);
extern const struct cli_opt cli_kms_threshold_check_report_opts[];

#endif
