/*
 * The audit log of one threshold server (src/tkms/log.c): ONE file per server directory,
 * audit.log, the hash-chained, signed, fsynced log of src/kms/audit.h, signed with the
 * server's Ed25519 audit key audit.key (seed, hex line, mode 0600) and audit.pub, both
 * made at first need. Enrolments ("enrol"), issued shares ("share") and audited
 * extractions are all entries of this one log; `mikeysakke audit verify` style checks
 * need only audit.pub. Several handles and processes may append to it at once (the log
 * checks the tail another writer left before appending).
 */
#ifndef MS_TKMS_LOG_H
#define MS_TKMS_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "kms/audit.h"
#include "mikeysakke/errors.h"

#define MS_TKMS_LOG_NAME "audit.log"
#define MS_TKMS_LOG_KEY "audit.key"
#define MS_TKMS_LOG_PUB "audit.pub"

/* Opens dir/audit.log for appending, making audit.key and audit.pub first if absent.
 * MS_ERR_AUDIT_LOG, MS_ERR_AUDIT_CHAIN (a damaged tail), MS_ERR_KEYFILE_MODE (audit.key
 * open to others), MS_ERR_IO; detail names the file. */
ms_err ms_tkms_log_open(ms_audit **out, const char *dir, char *detail, size_t detail_cap);

/* The public key of dir's audit log (MS_ERR_IO if it has none yet). */
ms_err ms_tkms_log_public(const char *dir, uint8_t pub[MS_AUDIT_PUBLIC_BYTES], char *detail,
                          size_t detail_cap);

#endif
