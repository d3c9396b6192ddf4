/*
 * mikeysakke client keystore: a device's identity and key sets, encrypted
 * at rest, imported from TS 33.180 key packages with no network, or fetched over HTTPS
 * (ms_keystore_fetch, at the end).
 *
 * A keystore is a directory (mode 0700) of files (mode 0600), each AES-256-GCM encrypted
 * under a key derived with scrypt from a passphrase; docs/client.md gives the format.
 * It holds the identity from the enrolment file (user URI, device id, TrK, InK, the KMS
 * certificate) and one entry per (KMS, key period) with the key set (RSK, SSK, PVT, UID).
 * RFC 6509 3.3: two periods are held at once around a period boundary; status says which
 * are in force and when the next period's keys are due; purge removes expired ones.
 *
 * Conventions of crypto.h and mikey.h: MS_OK or an ms_err; `detail` (may be NULL) gets
 * one English sentence saying why, naming the file or element at fault. Times `now` are
 * NTP seconds (since 1900); 0 means the system clock.
 */
#ifndef MIKEYSAKKE_CLIENT_H
#define MIKEYSAKKE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/crypto.h"
#include "mikeysakke/errors.h"
#include "mikeysakke/mikey.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MS_KEYSTORE_URI_MAX 255
#define MS_KEYSTORE_MAX_ENTRIES 64    /* key periods held at most */
#define MS_KEYSTORE_GRACE (2 * 86400) /* RFC 6509 3.3: two days */

typedef struct ms_keystore ms_keystore;

/* scrypt cost, stored in the keystore header. Zeros take the defaults
 * (log2 N = 17, r = 8, p = 1: 128 MiB). log2 N may be 10 to 22; small values are for
 * tests only. */
typedef struct ms_keystore_params {
    unsigned scrypt_log2_n;
    unsigned scrypt_r;
    unsigned scrypt_p;
} ms_keystore_params;

/* Create a keystore in `dir` (created with mode 0700; an existing directory must be
 * empty, else MS_ERR_EXISTS) from an enrolment file (ms_kmsif_enrolment_write format).
 * The KMS certificate's public keys are checked. params may be NULL. */
MS_API MS_WARN_UNUSED ms_err ms_keystore_create(const char *dir, const char *enrolment_xml,
                                                size_t enrolment_len, const char *passphrase,
                                                size_t passphrase_len,
                                                const ms_keystore_params *params,
                                                char *detail, size_t detail_cap)
    MS_NONNULL(1, 2, 4);

/* Open: MS_ERR_PASSPHRASE for a wrong passphrase, MS_ERR_KEYFILE_MODE when the
 * directory or a file is open to other users, MS_ERR_KEYSTORE for a corrupted, tampered
 * or foreign file (named in detail). The key sets are read on demand. */
MS_API MS_WARN_UNUSED ms_err ms_keystore_open(ms_keystore **out, const char *dir,
                                              const char *passphrase, size_t passphrase_len,
                                              char *detail, size_t detail_cap)
    MS_NONNULL(1, 2, 3);
/* Wipes the keystore key and frees; NULL allowed. */
MS_API void ms_keystore_close(ms_keystore *ks);

/* The device's identity (public parts only). */
typedef struct ms_keystore_identity {
    char user_uri[MS_KEYSTORE_URI_MAX + 1];
    char device_id[65];
    uint32_t trk_id, ink_id;
    char kms_uri[MS_KEYSTORE_URI_MAX + 1];
    ms_id_scheme scheme;               /* scheme.kms_uri points into this struct */
    uint8_t Z[MS_SAKKE_POINT_BYTES];   /* from the enrolment's KMS certificate */
    uint8_t kpak[MS_ECCSI_POINT_BYTES];
} ms_keystore_identity;

MS_API MS_WARN_UNUSED ms_err ms_keystore_identity_get(const ms_keystore *ks,
                                                      ms_keystore_identity *id)
    MS_NONNULL(1, 2);

/* One held key set. rsk and ssk are secret: ms_keyset_wipe when done. */
typedef struct ms_keyset {
    char kms_uri[MS_KEYSTORE_URI_MAX + 1];
    char user_uri[MS_KEYSTORE_URI_MAX + 1];
    uint8_t user_id[MS_SAKKE_ID_MAX_BYTES]; /* the identifier (UID or monthly ID) */
    size_t user_id_len;
    uint64_t period_no;
    uint64_t period_start, period_end;  /* NTP seconds: [start, end) */
    uint64_t valid_from, valid_to;      /* NTP seconds from the package; 0 = absent */
    uint64_t package_time;              /* Time of the package it came from */
    uint64_t imported_at;
    uint8_t Z[MS_SAKKE_POINT_BYTES];    /* the certificate it was validated against */
    uint8_t kpak[MS_ECCSI_POINT_BYTES];
    uint8_t rsk[MS_SAKKE_POINT_BYTES];
    uint8_t ssk[MS_ECCSI_SCALAR_BYTES];
    uint8_t pvt[MS_ECCSI_POINT_BYTES];
} ms_keyset;

MS_API void ms_keyset_wipe(ms_keyset *k);

/* What was imported (public). */
typedef struct ms_keystore_import_report {
    uint64_t package_time;
    size_t n_periods;
    uint64_t periods[4];
} ms_keystore_import_report;

/* Import a key package (KmsResponse with KmsKeyProv): signature under the InK, then
 * decryption under the TrK, then: for this user and device
 * (MS_ERR_PACKAGE_DEVICE), from the enrolled KMS (MS_ERR_MIKEY_UNKNOWN_KMS), newer than
 * the last package imported for each of its periods (MS_ERR_PACKAGE_REPLAY), periods not
 * ended before now (MS_ERR_PERIOD), key set not revoked (MS_ERR_INVALID), UserID equal
 * to the identifier recomputed from the user URI and period (MS_ERR_IDENTITY), every RSK
 * and SSK valid against the certificate (MS_ERR_RSK_INVALID, MS_ERR_SSK_INVALID). Nothing
 * is stored unless everything passes. report may be NULL. */
MS_API MS_WARN_UNUSED ms_err ms_keystore_import(ms_keystore *ks,
                                                ms_keystore_import_report *report,
                                                const char *xml, size_t len, uint64_t now,
                                                char *detail, size_t detail_cap)
    MS_NONNULL(1, 3);

/* Keys this device combined itself from a threshold KMS's shares (RSK, SSK, PVT of the
 * enrolled user for `period_no`): stored as if imported from a package of the enrolled
 * KMS, through every check of ms_keystore_import (identifier, RSK and SSK valid against
 * the enrolled certificate, period not ended); they replace keys held for that period. */
MS_API MS_WARN_UNUSED ms_err ms_keystore_import_combined(ms_keystore *ks, uint64_t period_no,
                                                         const uint8_t rsk[MS_SAKKE_POINT_BYTES],
                                                         const uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                                                         const uint8_t pvt[MS_ECCSI_POINT_BYTES],
                                                         uint64_t now, char *detail,
                                                         size_t detail_cap)
    MS_NONNULL(1, 3, 4, 5);

/* The key set of `period_no` from `kms_uri` (NULL: the enrolled KMS); MS_ERR_NO_KEYS if
 * none is held. */
MS_API MS_WARN_UNUSED ms_err ms_keystore_get(const ms_keystore *ks, ms_keyset *out,
                                             const char *kms_uri, uint64_t period_no,
                                             char *detail, size_t detail_cap)
    MS_NONNULL(1, 2);

/* One held period (public). */
typedef struct ms_keystore_entry {
    char kms_uri[MS_KEYSTORE_URI_MAX + 1];
    uint64_t period_no;
    uint64_t period_start, period_end; /* NTP seconds */
    uint64_t package_time, imported_at;
    bool in_force; /* accepted now (ms_key_periods_accepted, 2-day grace) */
    bool expired;  /* ended more than the grace ago: purge removes it */
} ms_keystore_entry;

/* Held periods in increasing order. */
MS_API MS_WARN_UNUSED ms_err ms_keystore_list(const ms_keystore *ks, ms_keystore_entry *out,
                                              size_t cap, size_t *n, uint64_t now,
                                              char *detail, size_t detail_cap)
    MS_NONNULL(1, 2, 4);

typedef struct ms_keystore_state {
    uint64_t now;
    uint64_t current_period;
    uint64_t accepted[2]; /* periods accepted now, current first */
    size_t n_accepted;
    bool current_held;
    uint64_t next_period;
    uint64_t next_start;  /* NTP seconds */
    uint64_t next_due;    /* next_start - grace (not before the current period's start) */
    bool next_held;
    size_t n_entries;
    ms_keystore_entry entries[MS_KEYSTORE_MAX_ENTRIES];
} ms_keystore_state;

/* Fills st and returns MS_OK, or MS_ERR_NO_KEYS (st filled too) when the current
 * period's keys are missing, or the next period's are missing and due (now >= next_due). */
MS_API MS_WARN_UNUSED ms_err ms_keystore_status(const ms_keystore *ks, ms_keystore_state *st,
                                                uint64_t now, char *detail, size_t detail_cap)
    MS_NONNULL(1, 2);

/* The user's devices as the KMS last listed them in a signed key package (recorded by
 * ms_keystore_import): the first list is taken as seen; a device the KMS adds later is
 * unseen until accepted, so a device quietly added beside this one shows. Both are
 * space-separated ids ("" when no package carried a list yet). */
#define MS_KEYSTORE_DEVICES_MAX 1536
MS_API MS_WARN_UNUSED ms_err ms_keystore_devices(const ms_keystore *ks, char *seen,
                                                 size_t seen_cap, char *unseen,
                                                 size_t unseen_cap, char *detail,
                                                 size_t detail_cap)
    MS_NONNULL(1, 2, 4);
/* This device approves an enrolment request (kms device request) for another device of
 * its own user: line receives "device <id> <hex HMAC-SHA256 under the InK>\n" for
 * `kms device enrol --approval`. MS_ERR_ARG for any other request. */
MS_API MS_WARN_UNUSED ms_err ms_keystore_approve_device(const ms_keystore *ks, char *line,
                                                        size_t cap, const char *request,
                                                        size_t len, char *detail,
                                                        size_t detail_cap)
    MS_NONNULL(1, 2, 4);
/* The user has checked the unseen devices (they are theirs): they become seen. */
MS_API MS_WARN_UNUSED ms_err ms_keystore_devices_accept(ms_keystore *ks, char *detail,
                                                        size_t detail_cap)
    MS_NONNULL(1);

/* Delete (overwrite, fsync, unlink) entries of periods that ended more than the grace
 * ago, except held periods (ms_keystore_set_holds). purged (may be NULL) receives their period numbers. */
MS_API MS_WARN_UNUSED ms_err ms_keystore_purge(ms_keystore *ks, uint64_t *purged, size_t cap,
                                               size_t *n_purged, uint64_t now, char *detail,
                                               size_t detail_cap)
    MS_NONNULL(1);

/* Key periods kept past their expiry: a voicemail of such a period still waits in the
 * mailbox, and only the keys of its period open it. ms_keystore_purge leaves them.
 * set_holds replaces the whole set (n = 0 clears it); the set is stored encrypted and
 * authenticated like the key sets, so it cannot be edited outside the keystore.
 * get_holds: MS_ERR_BUFFER_TOO_SMALL (with *n set) when cap is too small. */
#define MS_KEYSTORE_MAX_HOLDS 64
MS_API MS_WARN_UNUSED ms_err ms_keystore_set_holds(ms_keystore *ks, const uint64_t *periods,
                                                   size_t n, char *detail, size_t detail_cap)
    MS_NONNULL(1);
MS_API MS_WARN_UNUSED ms_err ms_keystore_get_holds(const ms_keystore *ks, uint64_t *periods,
                                                   size_t cap, size_t *n, char *detail,
                                                   size_t detail_cap)
    MS_NONNULL(1, 4);

/* Give a MIKEY context this device's keys: ms_mikey_add_kms for the enrolled KMS (with
 * the certificate of the period of `now`, which matters only after a master key
 * rollover), then ms_mikey_add_keys for every held period validated against that
 * certificate. The context must have been made with own_uri = the keystore's user URI
 * and a profile that fits the KMS's identifier scheme, and must not know the KMS yet.
 * n_loaded (may be NULL) receives the number of periods loaded. */
MS_API MS_WARN_UNUSED ms_err ms_keystore_load_mikey(const ms_keystore *ks, ms_mikey_ctx *ctx,
                                                    size_t *n_loaded, uint64_t now,
                                                    char *detail, size_t detail_cap)
    MS_NONNULL(1, 2);

/* ==== provisioning over HTTPS ============================================================= */

/* TS 33.180 Annex D over HTTPS, on libcurl: KMS Initialize (the KMS certificate, compared
 * with the enrolled one), KeyProvision for the current and the next key period, CertCache.
 * Every key package goes through ms_keystore_import's checks before anything is stored.
 * The device authenticates with its bearer token, HMAC-SHA256(InK,
 * "mikeysakke-device-token:" || device id) in lower-case hex, sent as
 * "Authorization: Bearer <device id>.<token>"; optionally also with a TLS client
 * certificate. TLS 1.2 or later, the server certificate checked against `cacert` only
 * (peer and host name, never off), https only, no redirects, answers over
 * MS_KMSIF_MAX_XML (256 KiB) aborted. Zeros in the options take the defaults. */
typedef struct ms_fetch_options {
    const char *url;             /* https://host[:port] (a trailing /keymanagement/identity/v1 is allowed) */
    const char *cacert;          /* PEM file of the CA(s) trusted to sign the server certificate */
    const char *client_cert;     /* optional PEM TLS client certificate, with client_key */
    const char *client_key;
    unsigned max_attempts;       /* per request, 0 = 4 (1 + 3 retries) */
    unsigned connect_timeout_ms; /* 0 = 10 000 */
    unsigned timeout_ms;         /* per attempt, 0 = 30 000 */
    unsigned backoff_ms;         /* first wait before a retry, 0 = 500; doubled each retry, with jitter */
    unsigned max_wait_ms;        /* longest wait, 0 = 60 000; a longer Retry-After gives up */
    uint64_t now;                /* NTP seconds: which periods are current and next; 0 = clock */
    bool skip_certcache;
} ms_fetch_options;

typedef enum ms_fetch_state {
    MS_FETCH_NONE = 0,
    MS_FETCH_STORED = 1,      /* imported now */
    MS_FETCH_HELD = 2,        /* this or a newer package was already imported */
    MS_FETCH_NOT_ISSUED = 3,  /* 404, or the answer had no key set of that period */
} ms_fetch_state;

typedef enum ms_fetch_cert {
    MS_FETCH_CERT_UNCHECKED = 0,
    MS_FETCH_CERT_SAME = 1,           /* the KMS announces the enrolled certificate */
    MS_FETCH_CERT_ROLLOVER = 2,       /* same KMS URI, new keys, signed under the InK */
    MS_FETCH_CERT_UNSIGNED_CHANGE = 3 /* new keys in an unsigned KmsInit: not trusted */
} ms_fetch_cert;

typedef struct ms_fetch_period {
    uint64_t period_no;
    ms_fetch_state state;
    uint64_t valid_until;  /* NTP seconds: end of the period, or the key set's ValidTo */
    uint64_t package_time; /* Time of the package answered (0 if none) */
    bool requested;        /* asked for (current or next), not only carried along */
} ms_fetch_period;

typedef struct ms_fetch_report {
    ms_fetch_cert cert;
    char cert_uri[MS_KEYSTORE_URI_MAX + 1]; /* CertUri of the certificate the KMS announced */
    uint64_t cert_valid_from;               /* its ValidFrom (NTP seconds, 0 = absent) */
    uint64_t current_period, next_period;
    size_t n_periods;
    ms_fetch_period periods[6];
    bool certcache_offered;
    size_t n_cache_certs;                   /* certificates of other domains (not stored) */
    unsigned requests;                      /* HTTP requests made, retries included */
    unsigned retries;
    long last_status;                       /* HTTP status of the last answer (0: none) */
} ms_fetch_report;

/* Fetch into the open keystore. Filled in as far as it got, report (may be NULL) says
 * what happened even on failure. Errors: MS_ERR_ARG (not https, missing option),
 * MS_ERR_IO (CA or client file unreadable), MS_ERR_UNREACHABLE (connection failed or timed
 * out after the retries), MS_ERR_TLS (server certificate not trusted, wrong name,
 * handshake), MS_ERR_UNAUTHORISED (401, 403), MS_ERR_RATE_LIMITED (429 after the
 * retries), MS_ERR_HTTP (any other status, a redirect, an oversized answer; detail has
 * the KmsError text), MS_ERR_NO_KEYS (404 for the current period),
 * MS_ERR_MIKEY_UNKNOWN_KMS (the KMS announces a certificate of another KMS URI),
 * MS_ERR_INVALID (the announced certificate is revoked or changes the identifier
 * scheme), and every error of the import (MS_ERR_PACKAGE_SIGNATURE, MS_ERR_RSK_INVALID,
 * MS_ERR_SSK_INVALID, ...). Connection failures, 429 (after Retry-After) and 5xx are
 * retried with exponential back-off and jitter; other 4xx are not. */
MS_API MS_WARN_UNUSED ms_err ms_keystore_fetch(ms_keystore *ks, ms_fetch_report *report,
                                               const ms_fetch_options *opt, char *detail,
                                               size_t detail_cap)
    MS_NONNULL(1, 3);

#ifdef __cplusplus
}
#endif
#endif
