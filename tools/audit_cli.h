/*
 * The `audit` subcommands (tools/audit.c): an auditor decrypts one user's calls of one
 * key period from captures with the RSK `kms audit extract` released.
 */
#ifndef MIKEYSAKKE_TOOLS_AUDIT_CLI_H
#define MIKEYSAKKE_TOOLS_AUDIT_CLI_H

#include "cli.h"

ms_err cli_audit_decrypt(const struct cli_args *args);
extern const struct cli_opt cli_audit_decrypt_opts[];

#endif
