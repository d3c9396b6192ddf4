/*
 * The `kms threshold` subcommands (tools/kms_threshold.c): one server of a threshold KMS
 * (src/tkms/node.h). Entry points and option tables for main.c's subcommand table.
 */
#ifndef MIKEYSAKKE_TOOLS_KMS_THRESHOLD_CLI_H
#define MIKEYSAKKE_TOOLS_KMS_THRESHOLD_CLI_H

#include <stdbool.h>

#include "cli.h"

/* What opens a server's sealed shares, by its seal: a passphrase, custodian shares or a
 * PKCS#11 PIN (src/tkms/node.h's "unlock" material). */
#define CLI_TKMS_UNLOCK_OPTS                                                                     \
    {"--passphrase-file", "FILE", 0, "the passphrase of this server's sealed shares (mode 0600)"}, \
    {"--share", "FILE[,FILE]", 0, "or: custodian share files (mode 0600), enough of them"},        \
    {"--pin-file", "FILE", 0, "or: the PKCS#11 token's user PIN (mode 0600)"}
#define CLI_TKMS_UNLOCK_MAX 1024
/* Reads the one unlock option given into out (wipe it after use). */
ms_err cli_tkms_read_unlock(const struct cli_args *args, uint8_t *out, size_t cap, size_t *len);

ms_err cli_kms_threshold_keygen(const struct cli_args *args);
ms_err cli_kms_threshold_init(const struct cli_args *args);
extern const struct cli_opt cli_kms_threshold_keygen_opts[];
extern const struct cli_opt cli_kms_threshold_init_opts[];
ms_err cli_kms_threshold_batch(const struct cli_args *args);
extern const struct cli_opt cli_kms_threshold_batch_opts[];
ms_err cli_kms_threshold_share(const struct cli_args *args);
extern const struct cli_opt cli_kms_threshold_share_opts[];
ms_err cli_kms_threshold_refresh(const struct cli_args *args);
extern const struct cli_opt cli_kms_threshold_refresh_opts[];
ms_err cli_user_threshold_combine(const struct cli_args *args);
extern const struct cli_opt cli_user_threshold_combine_opts[];
/* tools/kms_tserve.c: enrolment, serving and fetching in threshold mode */
ms_err cli_kms_threshold_enrol(const struct cli_args *args);
extern const struct cli_opt cli_kms_threshold_enrol_opts[];
ms_err cli_user_threshold_init(const struct cli_args *args);
extern const struct cli_opt cli_user_threshold_init_opts[];
/* A threshold server's directory (public.txt and peers.txt): `kms serve` hands over. */
bool cli_tkms_is_server_dir(const char *dir);
ms_err cli_kms_threshold_serve(const struct cli_args *args);
/* `user fetch` on a keystore of `user threshold-init` */
ms_err cli_user_fetch_threshold(const struct cli_args *args);
ms_err cli_kms_threshold_check_report(const struct cli_args *args);
extern const struct cli_opt cli_kms_threshold_check_report_opts[];

#endif
