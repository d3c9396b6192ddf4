/*
 * Parts of the KMS facade for the server (src/kms/server.c): a key package in three
 * steps, so that only the store reads and the audit entry run under ms_kms_lock and the
 * XML (encryption, canonicalisation, HMAC) is built by several threads at once.
 *   begin  (lock held)  copy device keys, key sets and certificate out of the store
 *   build  (no lock)    write the TrK-encrypted, InK-signed KmsResponse
 *   commit (NO lock)    append the audit entry (fsynced): only then may it be sent;
 *                       it takes what it needs itself, so the fsyncs of concurrent
 *                       requests overlap instead of queueing behind the KMS lock
 * ms_kms_device_package does all three for callers that hold the lock throughout.
 */
#ifndef MS_KMS_INTERNAL_H
#define MS_KMS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kms/audit.h"
#include "mikeysakke/kms.h"

typedef struct ms_kms_pkg_job ms_kms_pkg_job;

ms_err ms_kms_package_begin(ms_kms *k, ms_kms_pkg_job **out, const char *device_id,
                            const uint64_t *periods, size_t n_periods,
                            const char *client_req_url, const char *peer);
ms_err ms_kms_package_build(const ms_kms_pkg_job *job, char *xml, size_t cap, size_t *xml_len);
ms_err ms_kms_package_commit(ms_kms *k, const ms_kms_pkg_job *job);
void ms_kms_package_free(ms_kms_pkg_job *job);

/* Tests: where the audit_syslog copies go instead of syslog(3) (fn NULL: syslog). Set
 * before unsealing. */
void ms_kms_set_audit_sink(ms_kms *k, ms_audit_copy_fn fn, void *ctx);

#endif
