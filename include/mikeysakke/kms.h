/*
 * mikeysakke KMS facade: one KMS directory (store, sealed master secrets, audit log,
 * certificate) behind one handle, for embedding the KMS in a program. The `mikeysakke
 * kms` commands and the unseal agent are thin layers over these functions
 * (docs/kms.md is the security officer's guide).
 *
 * Directory layout: kms.db (SQLite store), sealed (the sealed master secrets),
 * audit.log and audit.pub (the hash-chained log and its Ed25519 public key, hex),
 * certificate.xml (the KmsCertificate in force at creation), certificate-P.xml (one per
 * later master key generation, from key period P).
 *
 * A handle starts sealed. Read-only calls (status, user list, certificate, audit
 * verify) work sealed; everything else returns MS_ERR_SEALED until unsealed. Every
 * unseal, seal, enrolment, issuance, export, extraction and rollover is appended to the
 * audit log (and fsynced) before anything is released; if it cannot be, the call fails
 * with MS_ERR_AUDIT_LOG and releases nothing. A handle is not thread-safe: threads
 * sharing one take ms_kms_lock around every call.
 */
#ifndef MIKEYSAKKE_KMS_H
#define MIKEYSAKKE_KMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/crypto.h"
#include "mikeysakke/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms_kms ms_kms;

/* How the master secrets are sealed (the values the sealed file records). */
#define MS_KMS_SEAL_PASSPHRASE 1
#define MS_KMS_SEAL_SHARES 2
#define MS_KMS_SEAL_PKCS11 3

#define MS_KMS_MAX_SHARES 16
#define MS_KMS_SHARE_MAX 64            /* octets of one encoded custodian share */
#define MS_KMS_MAX_AUDITORS 16
#define MS_KMS_MAX_OFFICERS 16
#define MS_KMS_ROLE_KEY_BYTES 32       /* an Ed25519 public key of a role */
#define MS_KMS_ROLE_SIG_BYTES 64
#define MS_KMS_AUDIT_PUBLIC_BYTES 32

/* The key-encryption material for sealing (create, rollover). Exactly the fields of
 * `method` are read; with rollover, k, n, module, token and key label come from the
 * KMS's own settings and only passphrase / pin are read. */
typedef struct ms_kms_seal_material {
    int method;                 /* MS_KMS_SEAL_* */
    const uint8_t *passphrase;  /* passphrase */
    size_t passphrase_len;
    unsigned scrypt_log2_n;     /* 0: the default (17); tests use small values */
    unsigned k, n;              /* shares: k of n, 1 <= k <= n <= 16 */
    const char *pkcs11_module;  /* PKCS#11: module path, token label, PIN, key label */
    const char *token_label;
    const uint8_t *pin;
    size_t pin_len;
    const char *key_label;      /* NULL: "mikeysakke-kms" */
} ms_kms_seal_material;

/* Community settings of a new KMS. */
typedef struct ms_kms_config {
    const char *kms_uri;
    uint8_t id_scheme;          /* MS_MIKEY_ID_SCHEME_TEL_MONTHLY or _HASHED_UID */
    uint64_t period_len;        /* hashed UID: key period length in seconds */
    uint64_t period_offset;     /* hashed UID: key period offset in seconds */
    uint64_t first_time;        /* NTP seconds in the first key period; 0 = now */
    bool audit_syslog;          /* copy the audit log to syslog as it is written */
    uint64_t max_periods_ahead; /* issue at most this many key periods after the current
                                 * one (0 = MS_KMS_DEFAULT_MAX_AHEAD) */

    /* Roles (docs/audit.md): Ed25519 public keys, fixed at creation. */
    const uint8_t *operator_key;                              /* one operator */
    unsigned n_officers;                                      /* 1..MS_KMS_MAX_OFFICERS */
    const uint8_t (*officer_keys)[MS_KMS_ROLE_KEY_BYTES];
    unsigned enrol_approvals;   /* officers approving a user's second device (0 = 2, at most n_officers) */
    unsigned n_auditors;                                      /* 1..MS_KMS_MAX_AUDITORS */
    const uint8_t (*auditor_keys)[MS_KMS_ROLE_KEY_BYTES];
    unsigned approvals;         /* distinct auditors an extraction needs (0 = 1) */
} ms_kms_config;

#define MS_KMS_DEFAULT_MAX_AHEAD 2

/* Secrets handed out once (by create and rollover), for the caller to deliver to
 * custodians and auditors and then wipe with ms_wipe. */
typedef struct ms_kms_handout {
    size_t n_shares;
    uint8_t share[MS_KMS_MAX_SHARES][MS_KMS_SHARE_MAX];
    size_t share_len[MS_KMS_MAX_SHARES];
} ms_kms_handout;

/* Creates a KMS in `dir` (made 0700 if absent; MS_ERR_EXISTS if it already holds a
 * KMS): store, master secrets (generation 0 from the key period of first_time), the
 * seal, certificate.xml, audit.pub, the role public keys and quorums (settings rows)
 * and the first audit entry. `rng` may be NULL (OpenSSL's). On failure, detail (may be
 * NULL) names the cause where known (e.g. the directory that cannot be made and why). */
MS_API MS_WARN_UNUSED ms_err ms_kms_create(ms_kms_handout *out, const char *dir,
                                           const ms_kms_config *cfg,
                                           const ms_kms_seal_material *seal, const ms_rng *rng,
                                           char *detail, size_t detail_cap)
    MS_NONNULL(1, 2, 3, 4);

/* Opens an existing KMS, sealed. `rng` may be NULL. On failure detail (may be NULL)
 * names the cause: MS_ERR_IO for a directory that cannot be reached (with the system's
 * reason), MS_ERR_STORE for one holding no KMS or an unreadable kms.db. */
MS_API MS_WARN_UNUSED ms_err ms_kms_open(ms_kms **out, const char *dir, const ms_rng *rng,
                                         char *detail, size_t detail_cap)
    MS_NONNULL(1, 2);
/* Wipes the unsealed secrets (without an audit entry: call ms_kms_seal first for one). */
MS_API void ms_kms_close(ms_kms *k);

/* The clock used for "current period", NTP seconds (default: the system clock). */
MS_API void ms_kms_set_clock(ms_kms *k, uint64_t (*now)(void *ctx), void *ctx)
    MS_NONNULL(1);

typedef struct ms_kms_status {
    bool unsealed;
    int seal_method;              /* MS_KMS_SEAL_* */
    unsigned shares_have, shares_need;
    char kms_uri[256];
    uint8_t id_scheme;
    uint64_t period_len, period_offset;
    uint64_t current_period;      /* the key period of the clock */
    uint64_t audit_seq;           /* entries in the audit log (the head kept in the store) */
    size_t n_generations;         /* master key generations (0 while sealed) */
} ms_kms_status;

MS_API MS_WARN_UNUSED ms_err ms_kms_status_get(ms_kms *k, ms_kms_status *st)
    MS_NONNULL(1, 2);

/* Unsealing. A share call returns MS_OK when the share was accepted; the KMS is then
 * unsealed once `need` shares are in (see have/need, may be NULL). Errors:
 * MS_ERR_PASSPHRASE, MS_ERR_SHARE, MS_ERR_PKCS11, MS_ERR_SEALED_FILE, MS_ERR_AUDIT_LOG
 * (the "unseal" entry could not be written: the KMS stays sealed). Unsealing an
 * unsealed KMS is MS_OK and does nothing. */
MS_API MS_WARN_UNUSED ms_err ms_kms_unseal_passphrase(ms_kms *k, const uint8_t *pass,
                                                      size_t len)
    MS_NONNULL(1, 2);
MS_API MS_WARN_UNUSED ms_err ms_kms_unseal_share(ms_kms *k, unsigned *have, unsigned *need,
                                                 const uint8_t *share, size_t len)
    MS_NONNULL(1, 4);
MS_API MS_WARN_UNUSED ms_err ms_kms_unseal_pkcs11(ms_kms *k, const uint8_t *pin, size_t len)
    MS_NONNULL(1, 2);
/* The settings in kms.db (quorum, auditors, roles, seal parameters, certificates) are
 * authenticated by a MAC only the unsealed secrets can make: unsealing refuses them if
 * they were changed outside the KMS (MS_ERR_SETTINGS_CHANGED, an "unseal_refused" audit
 * entry, ms_kms_detail naming the rows). Settings without a MAC (a KMS made before
 * it existed) are refused the same way unless ms_kms_adopt_settings(k, true) was called
 * first, on the custodians' order: the unseal then authenticates them as found and logs
 * a "settings_sealed" entry listing them. */
/* Why the last refused call on this handle failed, one sentence, like curl's error
 * buffer: the unseal calls, requests, extractions and rollover set it; "" if the library gave no
 * reason since ms_kms_detail_clear (which a caller sharing the handle, like the agent,
 * calls before each request). Never holds secrets. */
MS_API const char *ms_kms_detail(const ms_kms *k);
MS_API void ms_kms_detail_clear(ms_kms *k);
MS_API void ms_kms_adopt_settings(ms_kms *k, bool adopt);
/* Appends the "seal" entry and wipes the secrets (they are wiped even if the entry
 * fails, which is then reported). */
MS_API ms_err ms_kms_seal(ms_kms *k)
    MS_NONNULL(1);

/* Users, by URI (tel:, sip:, MC service IDs). Changes need the KMS unsealed (they are
 * audited); the list does not. */
MS_API MS_WARN_UNUSED ms_err ms_kms_user_add(ms_kms *k, const char *uri)
    MS_NONNULL(1, 2);
/* Checks a user URI's syntax (RFC 3986: a scheme, then only the ASCII the RFC allows,
 * anything else percent-encoded): MS_ERR_IDENTITY with detail naming what is wrong and
 * where. ms_kms_user_add makes the same check. */
MS_API MS_WARN_UNUSED ms_err ms_kms_uri_check(const char *uri, char *detail, size_t detail_cap)
    MS_NONNULL(1);
MS_API MS_WARN_UNUSED ms_err ms_kms_user_suspend(ms_kms *k, const char *uri)
    MS_NONNULL(1, 2);
MS_API MS_WARN_UNUSED ms_err ms_kms_user_resume(ms_kms *k, const char *uri)
    MS_NONNULL(1, 2);
MS_API MS_WARN_UNUSED ms_err ms_kms_user_remove(ms_kms *k, const char *uri)
    MS_NONNULL(1, 2);
typedef int (*ms_kms_user_fn)(void *ctx, const char *uri, bool suspended, size_t n_devices);
MS_API MS_WARN_UNUSED ms_err ms_kms_user_list(ms_kms *k, ms_kms_user_fn cb, void *ctx)
    MS_NONNULL(1);

/* Enrols device `device_id` of an active user who has no device yet: draws its TrK and
 * InK, stores them, and writes the enrolment file (XML, secret to the device) to
 * xml[0..*xml_len). A user who already has a device: MS_ERR_APPROVAL (use
 * ms_kms_device_enrol_approved). */
MS_API MS_WARN_UNUSED ms_err ms_kms_device_enrol(ms_kms *k, char *xml, size_t cap,
                                                 size_t *xml_len, const char *user_uri,
                                                 const char *device_id)
    MS_NONNULL(1, 2, 4, 5, 6);

/* Whether `period_no` may be issued now: not ended, and at most the KMS's
 * max_periods_ahead (set at creation, kms.db setting "max_periods_ahead") after the
 * current period; else MS_ERR_PERIOD with the reason, naming the limit, in detail. */
MS_API MS_WARN_UNUSED ms_err ms_kms_issue_check(ms_kms *k, uint64_t period_no, char *detail,
                                                size_t cap)
    MS_NONNULL(1);

/* ---- roles, signed requests and approvals (docs/audit.md) ------------------------------ */

/* A request text for an act others approve: kind "extract" (user, period, reason) or
 * "enrol" (user, device), with this KMS's URI, a fresh nonce and an expiry `lifetime`
 * seconds from now (1..7 days). Works sealed. Scope: user "*" or "all": MS_ERR_AUDIT_SCOPE.
 * A reason longer than MS_KMS_REASON_MAX characters is MS_ERR_ARG and a period no
 * identifier of this KMS can name MS_ERR_PERIOD, each with ms_kms_detail naming the limit. */
#define MS_KMS_REASON_MAX 1023
MS_API MS_WARN_UNUSED ms_err ms_kms_request_extract(ms_kms *k, char *text, size_t cap,
                                                    size_t *len, const char *user_uri,
                                                    uint64_t period_no, const char *reason,
                                                    uint64_t lifetime)
    MS_NONNULL(1, 2, 4, 5, 7);
MS_API MS_WARN_UNUSED ms_err ms_kms_request_enrol(ms_kms *k, char *text, size_t cap,
                                                  size_t *len, const char *user_uri,
                                                  const char *device_id, uint64_t lifetime)
    MS_NONNULL(1, 2, 4, 5, 6);

/* Checks a command signed by a role key (`pub`, `sig` over the text, context
 * "mikeysakke kms command"): the key is one fixed at creation, the text names this KMS,
 * kind=command, a verb the role may ask for (operator: user_add/suspend/resume/remove,
 * issue, export, rollover; officer: enrol), a time within 5 minutes of the clock and a
 * nonce never used before (recorded). MS_OK names the role ("operator", "officer-2") in
 * role and makes the following audit entries carry "by=<role>" until
 * ms_kms_actor_clear. Errors: MS_ERR_ROLE, MS_ERR_REQUEST_STALE, MS_ERR_ARG (malformed). */
MS_API MS_WARN_UNUSED ms_err ms_kms_authorise(ms_kms *k, char role[32], const char *text,
                                              size_t len,
                                              const uint8_t pub[MS_KMS_ROLE_KEY_BYTES],
                                              const uint8_t sig[MS_KMS_ROLE_SIG_BYTES])
    MS_NONNULL(1, 2, 3, 5, 6);
MS_API void ms_kms_actor_clear(ms_kms *k);

/* Enrols a second (or later) device on an "enrol" request approved by `enrol_approvals`
 * distinct enrolment officers or by one of the user's existing devices (approvals in
 * their one-line text form). Logged as "enrol ... second_device=1 approved_by=...";
 * the request's nonce is spent in the same transaction. Errors as ms_kms_device_enrol,
 * and MS_ERR_APPROVAL (too few or wrong approvals), MS_ERR_REQUEST_STALE. */
MS_API MS_WARN_UNUSED ms_err ms_kms_device_enrol_approved(ms_kms *k, char *xml, size_t cap,
                                                          size_t *xml_len,
                                                          const char *request,
                                                          size_t request_len,
                                                          const char *const *approvals,
                                                          size_t n_approvals)
    MS_NONNULL(1, 2, 4, 5);

/* Progress of a long operation on k (ms_kms_issue: devices, ms_kms_export: packages):
 * called on the calling thread, first with done 0, then as work is done (done never
 * falls; total is the work counted at the start, raised if more turns up); a run that
 * succeeds ends with a call where done == total. The library prints nothing: the callback
 * decides what to show, and how often. */
typedef void (*ms_kms_progress_fn)(void *ctx, size_t done, size_t total);
/* Sets the progress callback of k's long operations (fn NULL: none, the default). */
MS_API void ms_kms_set_progress(ms_kms *k, ms_kms_progress_fn fn, void *ctx)
    MS_NONNULL(1);

/* Issues the key sets of every device of every active user for `period_no` (crash-safe,
 * re-runnable; one audit entry per committed batch). threads 0 = 2. MS_ERR_PERIOD if
 * ms_kms_issue_check refuses the period or no master keys cover it. */
MS_API MS_WARN_UNUSED ms_err ms_kms_issue(ms_kms *k, size_t *issued, uint64_t period_no,
                                          unsigned threads)
    MS_NONNULL(1, 2);

/* Writes one key package per device holding keys for `period_no` into out_dir
 * (created 0700 if absent) and index.txt listing them ("device user file sha256" per
 * line). Each file is written atomically; only its device can read the keys in it. */
MS_API MS_WARN_UNUSED ms_err ms_kms_export(ms_kms *k, size_t *n_packages, uint64_t period_no,
                                           const char *out_dir)
    MS_NONNULL(1, 2, 4);

/* An audited extraction: a request text made by ms_kms_request_extract and the
 * approvals (one-line text form "key <pub> <sig>") of at least `approvals` distinct
 * auditors whose keys were fixed at creation, each over exactly that text. */
typedef struct ms_kms_extract_request {
    const char *request;
    size_t request_len;
    const char *const *approvals;
    size_t n_approvals;
} ms_kms_extract_request;

/* Releases the user's RSK for the period into rsk (and its identifier into id) after the
 * "extract" entry (user, period, reason, the approving auditors, the request's nonce)
 * has been appended and fsynced and the nonce recorded as spent in the same store
 * transaction. Never a signing key. Errors: MS_ERR_AUDITOR (an approval that is not an
 * auditor's, does not verify over this request, or too few distinct auditors),
 * MS_ERR_REQUEST_STALE (expired, or nonce already used), MS_ERR_AUDIT_SCOPE, MS_ERR_ARG
 * (malformed request, another KMS). */
MS_API MS_WARN_UNUSED ms_err ms_kms_audit_extract(ms_kms *k, uint8_t rsk[MS_SAKKE_POINT_BYTES],
                                                  uint8_t id[MS_SAKKE_ID_MAX_BYTES],
                                                  size_t *id_len,
                                                  const ms_kms_extract_request *req)
    MS_NONNULL(1, 2, 3, 4, 5);

/* Verifies the audit log of `dir` with audit.pub and the head kept in the store (which
 * also finds a truncated tail). No unseal needed. *first_bad: 1-based line of the first
 * bad entry on MS_ERR_AUDIT_CHAIN. detail may be NULL. */
MS_API MS_WARN_UNUSED ms_err ms_kms_audit_verify(uint64_t *n_entries, uint64_t *first_bad,
                                                 const char *dir, char *detail, size_t cap)
    MS_NONNULL(1, 2, 3);
/* The same for a copied log and public key file (hex), without the head check. */
MS_API MS_WARN_UNUSED ms_err ms_kms_audit_verify_files(uint64_t *n_entries, uint64_t *first_bad,
                                                       const char *log_path,
                                                       const char *pub_path, char *detail,
                                                       size_t cap)
    MS_NONNULL(1, 2, 3, 4);

/* Checkpoints: a signed statement of the audit log's head that auditors keep outside the
 * KMS directory (a file of theirs, a ticket): one line,
 *   mikeysakke-audit-checkpoint seq=N head=<64 hex> time=<UTC> sig=<128 hex>
 * signed by the KMS audit key. ms_kms_audit_checkpoint appends a "checkpoint" entry and
 * writes the statement of that entry into out (needs the KMS unsealed). Every
 * extraction makes one of its "extract" entry: ms_kms_extract_checkpoint gives the last
 * one made on this handle (MS_ERR_AUDIT_LOG if none). */
#define MS_KMS_CHECKPOINT_MAX 384
MS_API MS_WARN_UNUSED ms_err ms_kms_audit_checkpoint(ms_kms *k, char *out, size_t cap)
    MS_NONNULL(1, 2);
MS_API MS_WARN_UNUSED ms_err ms_kms_extract_checkpoint(ms_kms *k, char *out, size_t cap)
    MS_NONNULL(1, 2);
/* Verifies the log as ms_kms_audit_verify (dir) or ms_kms_audit_verify_files (log_path
 * and pub_path; dir NULL) do, and against a checkpoint: its signature must verify under
 * the log's public key, and the log must still hold entry seq with exactly that hash
 * (so a log cut or rewritten back to before the checkpoint is MS_ERR_AUDIT_CHAIN, even
 * with the head in the store rewritten to match). A malformed checkpoint is
 * MS_ERR_BAD_ENCODING. detail says which. */
MS_API MS_WARN_UNUSED ms_err ms_kms_audit_verify_checkpoint(
    uint64_t *n_entries, uint64_t *first_bad, const char *dir, const char *log_path,
    const char *pub_path, const char *checkpoint, char *detail, size_t cap)
    MS_NONNULL(1, 2, 6);
/* Turns the syslog copy of the audit log on or off (setting audit_syslog, authenticated
 * like every setting; logged). Copies go to syslog(3), facility authpriv, ident
 * MS_KMS_AUDIT_SYSLOG_IDENT, one message per entry holding the entry's line exactly, so a
 * copy can be checked as the log is. Needs the KMS unsealed. */
#define MS_KMS_AUDIT_SYSLOG_IDENT "mikeysakke-kms-audit"
MS_API MS_WARN_UNUSED ms_err ms_kms_audit_set_syslog(ms_kms *k, bool on)
    MS_NONNULL(1);

/* The entries of an audit log (verify it first) that auditors look for: kind
 * "extract" for every extraction, "second_device" for every device enrolled for a user
 * who already had one. cb gets the entry without its prev and sig fields; it stops the
 * walk by returning non-zero. MS_ERR_IO if the log cannot be read. */
MS_API MS_WARN_UNUSED ms_err ms_kms_audit_notable(const char *log_path,
                                                  int (*cb)(void *ctx, const char *kind,
                                                            const char *entry),
                                                  void *ctx)
    MS_NONNULL(1);

/* Master key rollover: a new generation valid from key period from_period, which must be
 * in the future (> the current period, > the last generation's): else MS_ERR_PERIOD.
 * Re-seals with `seal` (same method; shares: new shares in out) and writes
 * certificate-<from_period>.xml. */
MS_API MS_WARN_UNUSED ms_err ms_kms_rollover(ms_kms *k, ms_kms_handout *out,
                                             uint64_t from_period,
                                             const ms_kms_seal_material *seal)
    MS_NONNULL(1, 2, 4);

/* The KmsCertificate XML in force for `period_no` (works sealed). */
MS_API MS_WARN_UNUSED ms_err ms_kms_certificate_xml(ms_kms *k, char *xml, size_t cap,
                                                    size_t *xml_len, uint64_t period_no)
    MS_NONNULL(1, 2, 4);

/* The key period of NTP time t under this KMS's scheme. */
MS_API MS_WARN_UNUSED ms_err ms_kms_period_of(ms_kms *k, uint64_t *period_no,
                                              uint64_t ntp_seconds)
    MS_NONNULL(1, 2);

/* ---- the network interface (TS 33.180 Annex D over HTTPS: `mikeysakke kms serve`) -------- */

/* A handle shared between threads (the HTTPS server and the unseal agent of `kms serve`)
 * is used under this lock: every facade call is made between ms_kms_lock and
 * ms_kms_unlock. ms_kms_is_unsealed needs no lock. */
MS_API void ms_kms_lock(ms_kms *k);
MS_API void ms_kms_unlock(ms_kms *k);
MS_API bool ms_kms_is_unsealed(const ms_kms *k);

#define MS_KMS_TOKEN_HEX 64
#define MS_KMS_DEVICE_ID_MAX 64
#define MS_KMS_URI_MAX 255

/* The device's bearer token: lowercase hex of HMAC-SHA256(InK, "mikeysakke-device-token:"
 * || device_id). The device presents "Authorization: Bearer <device_id>.<token>". */
MS_API MS_WARN_UNUSED ms_err ms_kms_device_token(ms_kms *k, char token[MS_KMS_TOKEN_HEX + 1],
                                                 const char *device_id)
    MS_NONNULL(1, 2, 3);
/* Checks a bearer credential "<device_id>.<token>" (the token compared in constant
 * time). MS_OK fills device_id and user_uri; MS_ERR_UNAUTHORISED for a malformed
 * credential, an unknown device or a wrong token (not told apart); MS_ERR_SEALED. */
MS_API MS_WARN_UNUSED ms_err ms_kms_device_auth(ms_kms *k,
                                                char device_id[MS_KMS_DEVICE_ID_MAX + 1],
                                                char user_uri[MS_KMS_URI_MAX + 1],
                                                const char *bearer)
    MS_NONNULL(1, 2, 3, 4);
/* The signed KmsResponse for one device (TrK-encrypted, InK-signed, as `kms export`
 * writes): with n_periods = 0 a KmsInit with the certificate in force now; otherwise a
 * KmsKeyProv with the device's key sets of those periods (1..4, issued beforehand with
 * ms_kms_issue) after a "keyprov" audit entry (device, user, periods, `peer` if not
 * NULL) has been appended and fsynced. client_req_url goes into ClientReqUrl (may be
 * ""). Errors: MS_ERR_SEALED, MS_ERR_DEVICE_UNKNOWN, MS_ERR_USER_SUSPENDED, MS_ERR_NO_KEYS
 * (no key set for a period), MS_ERR_PERIOD, MS_ERR_AUDIT_LOG (nothing released),
 * MS_ERR_BUFFER_TOO_SMALL. */
MS_API MS_WARN_UNUSED ms_err ms_kms_device_package(ms_kms *k, char *xml, size_t cap,
                                                   size_t *xml_len, const char *device_id,
                                                   const uint64_t *periods, size_t n_periods,
                                                   const char *client_req_url,
                                                   const char *peer)
    MS_NONNULL(1, 4, 5, 8);

/* The HTTPS server of `kms serve` (libmicrohttpd): the TS 33.180 Annex D
 * resources /keymanagement/identity/v1/init, /keyprov, /keyprov/<user>/<time> and
 * /certcache answered from the handle k (shared under ms_kms_lock), /healthz and
 * /metrics. Sealed, everything else is 503. */
typedef struct ms_kms_server ms_kms_server;
typedef struct ms_kms_server_config {
    const char *bind_addr;  /* NULL: all addresses */
    uint16_t port;          /* 0: any free port (ms_kms_server_port) */
    const char *cert_file;  /* PEM certificate chain and key; NULL: plain HTTP (tests) */
    const char *key_file;
    double rate_per_sec;    /* per client address; 0: no limit */
    double rate_burst;
    unsigned threads;       /* 0: 2 */
    size_t max_body;        /* 0: 64 KiB */
    char *detail;           /* if not NULL: why ms_kms_server_start failed */
    size_t detail_cap;
    unsigned max_connections; /* in total; 0: 1024 */
    unsigned max_per_client;  /* per IPv4 address or IPv6 /64; 0: 32 */
    unsigned timeout_sec;     /* idle, and to complete a request; 0: 30 */
} ms_kms_server_config;

MS_API MS_WARN_UNUSED ms_err ms_kms_server_start(ms_kms_server **out, ms_kms *k,
                                                 const ms_kms_server_config *cfg)
    MS_NONNULL(1, 2, 3);
MS_API uint16_t ms_kms_server_port(const ms_kms_server *s);
MS_API void ms_kms_server_stop(ms_kms_server *s);

#ifdef __cplusplus
}
#endif
#endif
