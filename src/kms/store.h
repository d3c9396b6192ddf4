/*
 * The KMS store (src/kms/store.c): SQLite, one file, WAL, every change in a transaction.
 * Secret columns (TrK, InK, SSK, RSK) are AES-256-GCM sealed under the store key of the
 * unsealed secrets, with the row's identity as associated data, so a row copied onto
 * another is refused. Issuance (src/kms/issue.c) is crash-safe: key sets are committed
 * in batches, each batch's audit "issue" record written (by the log callback) inside its
 * transaction before COMMIT, and a re-run skips what exists.
 */
#ifndef MS_KMS_STORE_H
#define MS_KMS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/seal.h"
#include "mikeysakke/kms.h"
#include "mikeysakke/mikey.h"

/* One ms_store (one SQLite connection) is used by one thread at a time; several
 * processes may open the same file (SQLite's locks and the busy timeout order them). */
typedef struct ms_store ms_store;

#define MS_STORE_URI_MAX 255
#define MS_STORE_DEVICE_ID_MAX 64

/* Opens the store at path (create: make the file, mode 0600, and its schema if absent).
 * MS_ERR_STORE if it cannot be opened, is not a KMS store or has another schema version. */
ms_err ms_store_open(ms_store **out, const char *path, bool create);
void ms_store_close(ms_store *st); /* rolls back an open transaction */
/* SQLite's message for the last failure (for diagnostics; never holds secrets). */
const char *ms_store_errmsg(const ms_store *st);

/* Community settings as key/value text ("kms_uri", "id_scheme", "period_len",
 * "period_offset", "certificate" (the KmsCertificate XML), ...). */
ms_err ms_store_set(ms_store *st, const char *key, const char *value);
/* ms_store_get: MS_ERR_STORE if the key is absent, MS_ERR_BUFFER_TOO_SMALL if value
 * (with its NUL) does not fit in cap. */
/* Several settings in one transaction that does not wait for the disk (WAL with
 * synchronous=NORMAL): survives a process crash, may lose the last writes in a power
 * cut. Only for values whose loss is harmless (the audit head: the log is the record).
 * Not inside a caller's transaction (MS_ERR_ARG). */
ms_err ms_store_set_relaxed(ms_store *st, const char *const keys[],
                            const char *const values[], size_t n);
ms_err ms_store_get(ms_store *st, const char *key, char *value, size_t cap);
/* Calls cb for every setting in key order (bytewise); stops early if cb returns
 * non-zero. value_len: the value's length (a value may hold a NUL if written by hand). */
ms_err ms_store_settings_list(ms_store *st,
                              int (*cb)(void *ctx, const char *key, const char *value,
                                        size_t value_len),
                              void *ctx);

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
/* A user's key set for a period (the one of its first device by id: the RSK is the
 * same on every device). MS_ERR_USER_UNKNOWN, MS_ERR_NO_KEYS. For audit extraction. */
ms_err ms_store_keyset_get_user(ms_store *st, const ms_kms_secrets *s, const char *user_uri,
                                uint64_t period_no, ms_keyset *ks);
/* Calls cb for every key set of `period_no` (device id order); stops if cb returns
 * non-zero. Public data only (for export). */
ms_err ms_store_keyset_list(ms_store *st, uint64_t period_no,
                            int (*cb)(void *ctx, const char *device_id, const char *user_uri),
                            void *ctx);

/* Records a request nonce as spent: MS_ERR_EXISTS if it already was. Joins a caller's
 * transaction (so an act and its nonce commit together). */
ms_err ms_store_nonce_use(ms_store *st, const char *nonce);
/* How many devices user_uri has. */
ms_err ms_store_device_count(ms_store *st, const char *user_uri, size_t *n);

/* Transactions: BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
ms_err ms_store_begin(ms_store *st);
ms_err ms_store_commit(ms_store *st);
void ms_store_rollback(ms_store *st);
/* Inserts a key set; never replaces one. MS_ERR_EXISTS if (device, period) has one,
 * MS_ERR_DEVICE_UNKNOWN if the device is unknown or belongs to another user than
 * ks->user_uri. Inside ms_store_begin/commit it joins that transaction, otherwise it
 * makes its own (so do all changing functions). */
ms_err ms_store_keyset_put(ms_store *st, const ms_kms_secrets *s, const ms_keyset *ks);

/* Batch issuance (src/kms/issue.c) for every device of every active user lacking a key
 * set for `period_no`, on `threads` threads, committing in batches; `log` (may be NULL)
 * is called inside each batch's transaction before commit for the audit record, and a
 * failure there rolls the batch back (fail closed). *issued counts new key sets
 * (committed ones, also when an error stops the run). Identifier: ms_identifier(scheme,
 * user URI, period); RSK under the generation in force (ms_kms_secrets_generation), the
 * same for all of a user's devices; SSK/PVT fresh per device. Errors: MS_ERR_PERIOD
 * (before the first generation), MS_ERR_ARG (inside a caller's transaction), the log's
 * error, MS_ERR_IDENTITY (a URI the scheme cannot name: the run stops there, batches
 * before it stay committed), MS_ERR_STORE. A re-run issues only what is missing; a key
 * set is never replaced. The log may use the store (same connection, same transaction). */
typedef ms_err (*ms_issue_log_fn)(void *ctx, uint64_t period_no, size_t n_keysets);
ms_err ms_kms_issue_period(ms_store *st, const ms_kms_secrets *s, const ms_id_scheme *scheme,
                           uint64_t period_no, unsigned threads, ms_issue_log_fn log,
                           void *log_ctx, size_t *issued);
/* The same with a chosen batch size (key sets per transaction; 0: the default). */
#define MS_ISSUE_BATCH_DEFAULT 256
ms_err ms_kms_issue_period_batch(ms_store *st, const ms_kms_secrets *s,
                                 const ms_id_scheme *scheme, uint64_t period_no,
                                 unsigned threads, size_t batch, ms_issue_log_fn log,
                                 void *log_ctx, size_t *issued);
/* The same with every option: `progress` (may be NULL) is called on the calling thread
 * after each committed batch with the devices gone through so far and the number pending
 * at the start (counted only when progress is set), and once more with done == total when
 * the run succeeds (mikeysakke/kms.h, ms_kms_progress_fn). */
typedef struct ms_issue_opts {
    unsigned threads;   /* 0: 1 */
    size_t batch_size;  /* 0: MS_ISSUE_BATCH_DEFAULT */
    ms_issue_log_fn log;
    void *log_ctx;
    ms_kms_progress_fn progress;
    void *progress_ctx;
} ms_issue_opts;
ms_err ms_kms_issue_period_opts(ms_store *st, const ms_kms_secrets *s,
                                const ms_id_scheme *scheme, uint64_t period_no,
                                const ms_issue_opts *opts, size_t *issued);

/* ---- internal to store.c and issue.c ---------------------------------------------- */

bool ms_store_in_transaction(const ms_store *st);
/* The issuance form of keyset_put: files ks only if (device, period) has no key set, the
 * device is still ks->user_uri's and that user is active; *inserted says whether it did. */
ms_err ms_store_keyset_put_new(ms_store *st, const ms_kms_secrets *s, const ms_keyset *ks,
                               bool *inserted);
/* Up to `limit` devices of active users lacking a key set for period_no, in (user URI,
 * device id) order strictly after (after_uri, after_id) ("", "" for the start). */
ms_err ms_store_pending_page(ms_store *st, uint64_t period_no, const char *after_uri,
                             const char *after_id, size_t limit,
                             int (*cb)(void *ctx, const char *device_id, const char *user_uri),
                             void *ctx);
/* How many devices ms_store_pending_page would page through from the start. */
ms_err ms_store_pending_count(ms_store *st, uint64_t period_no, size_t *n);

#endif
