/*
 * The KMS store (src/kms/store.c): SQLite, one file, WAL, every change in a transaction.
 * Secret columns (TrK, InK, SSK, RSK) are AES-256-GCM sealed under the store key of the
 * unsealed secrets, with the row's identity as associated data, so a row copied onto
 * another is refused. Issuance (src/kms/issue.c) is crash-safe: a key set is committed
 * in the same transaction as its audit "issue" record, and a re-run skips what exists.
 */
#ifndef MS_KMS_STORE_H
#define MS_KMS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/seal.h"
#include "mikeysakke/mikey.h"

typedef struct ms_store ms_store;

#define MS_STORE_URI_MAX 255
#define MS_STORE_DEVICE_ID_MAX 64

ms_err ms_store_open(ms_store **out, const char *path, bool create);
void ms_store_close(ms_store *st);

/* Community settings as key/value text ("kms_uri", "id_scheme", "period_len",
 * "period_offset", "certificate" (the KmsCertificate XML), ...). */
ms_err ms_store_set(ms_store *st, const char *key, const char *value);
ms_err ms_store_get(ms_store *st, const char *key, char *value, size_t cap); /* MS_ERR_NO_KEYS? no: MS_ERR_STORE if absent */

typedef enum ms_user_status { MS_USER_ACTIVE = 0, MS_USER_SUSPENDED = 1 } ms_user_status;

ms_err ms_store_user_add(ms_store *st, const char *uri);          /* MS_ERR_EXISTS */
ms_err ms_store_user_status(ms_store *st, const char *uri, ms_user_status *status);
ms_err ms_store_user_set_status(ms_store *st, const char *uri, ms_user_status status);
ms_err ms_store_user_remove(ms_store *st, const char *uri);       /* and its devices, key sets */
/* Calls cb for every user in URI order; stops early if cb returns non-zero. */
ms_err ms_store_user_list(ms_store *st,
                          int (*cb)(void *ctx, const char *uri, ms_user_status status,
                                    size_t n_devices),
                          void *ctx);

/* A device: its transport key (TrK, AES-256) and integrity key (InK, HMAC-SHA256). */
typedef struct ms_device {
    char id[MS_STORE_DEVICE_ID_MAX + 1];
    char user_uri[MS_STORE_URI_MAX + 1];
    uint8_t trk[MS_KMS_KEY_BYTES]; /* secret */
    uint8_t ink[MS_KMS_KEY_BYTES]; /* secret */
    uint32_t trk_id, ink_id;
} ms_device;

ms_err ms_store_device_add(ms_store *st, const ms_kms_secrets *s, const ms_device *dev);
ms_err ms_store_device_get(ms_store *st, const ms_kms_secrets *s, const char *id,
                           ms_device *dev); /* MS_ERR_DEVICE_UNKNOWN */
ms_err ms_store_device_list(ms_store *st, const char *user_uri /* NULL: all */,
                            int (*cb)(void *ctx, const char *id, const char *user_uri),
                            void *ctx);

/* One issued key set (TS 33.180 KmsKeySet content) of one device for one period. */
typedef struct ms_keyset {
    char user_uri[MS_STORE_URI_MAX + 1];
    char device_id[MS_STORE_DEVICE_ID_MAX + 1];
    uint64_t period_no;
    uint8_t user_id[MS_SAKKE_ID_MAX_BYTES]; /* the identifier (RFC 6509) or UID */
    size_t user_id_len;
    uint8_t rsk[MS_SAKKE_POINT_BYTES];      /* secret */
    uint8_t ssk[MS_ECCSI_SCALAR_BYTES];     /* secret */
    uint8_t pvt[MS_ECCSI_POINT_BYTES];
    uint64_t issued_at;                      /* NTP seconds */
} ms_keyset;

ms_err ms_store_keyset_get(ms_store *st, const ms_kms_secrets *s, const char *device_id,
                           uint64_t period_no, ms_keyset *ks); /* MS_ERR_NO_KEYS */

/* Transactions: BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
ms_err ms_store_begin(ms_store *st);
ms_err ms_store_commit(ms_store *st);
void ms_store_rollback(ms_store *st);
ms_err ms_store_keyset_put(ms_store *st, const ms_kms_secrets *s, const ms_keyset *ks);

/* Batch issuance (src/kms/issue.c) for every device of every active user lacking a key
 * set for `period_no`, on `threads` threads, committing in batches; `log` (may be NULL)
 * is called inside each batch's transaction before commit for the audit record, and a
 * failure there rolls the batch back (fail closed). *issued counts new key sets. */
typedef ms_err (*ms_issue_log_fn)(void *ctx, uint64_t period_no, size_t n_keysets);
ms_err ms_kms_issue_period(ms_store *st, const ms_kms_secrets *s, const ms_id_scheme *scheme,
                           uint64_t period_no, unsigned threads, ms_issue_log_fn log,
                           void *log_ctx, size_t *issued);

#endif
