/*
 * Sealing the KMS master secrets (src/kms/seal.c, shamir.c, scrypt via OpenSSL; the PKCS#11
 * token is kms/pkcs11.h).
 *
 * The master secrets exist in clear only inside an ms_kms_secrets in locked memory
 * (ms_secure_alloc); on disk they are one sealed file, AES-256-GCM under a key-encryption
 * key (KEK) that comes from exactly one of: a passphrase (scrypt, memory-hard), k-of-n
 * custodian shares (Shamir over GF(2^8), fewer than k reveal nothing), or an AES key that
 * never leaves a PKCS#11 token (the token wraps and unwraps the KEK).
 */
#ifndef MS_KMS_SEAL_H
#define MS_KMS_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mikeysakke/crypto.h"

#define MS_KMS_MAX_GENERATIONS 16 /* master key generations (rollover) kept */
#define MS_KMS_KEY_BYTES 32
#define MS_KMS_SHARE_BYTES 64 /* upper bound of one encoded share (see seal.c) */

/* One master key generation: valid for key periods >= from_period (until the next). */
typedef struct ms_kms_generation {
    uint64_t from_period;
    uint8_t z[MS_SAKKE_SECRET_BYTES];
    uint8_t Z[MS_SAKKE_POINT_BYTES];   /* public, kept for convenience */
    uint8_t ksak[MS_ECCSI_SCALAR_BYTES];
    uint8_t kpak[MS_ECCSI_POINT_BYTES]; /* public */
} ms_kms_generation;

/* Everything the seal protects. Allocate with ms_kms_secrets_new (locked memory). */
typedef struct ms_kms_secrets {
    size_t n_generations;
    ms_kms_generation gen[MS_KMS_MAX_GENERATIONS];
    uint8_t store_key[MS_KMS_KEY_BYTES]; /* AES-256-GCM key for TrK, InK, SSK at rest */
    uint8_t audit_key[MS_KMS_KEY_BYTES]; /* Ed25519 private seed of the audit log */
} ms_kms_secrets;

ms_err ms_kms_secrets_new(ms_kms_secrets **out);  /* zeroed, locked */
void ms_kms_secrets_free(ms_kms_secrets *s);      /* wipes; NULL allowed */
/* Wipes the contents but keeps the block (n_generations becomes 0). */
void ms_kms_secrets_clear(ms_kms_secrets *s);

/* Fresh secrets: generation 0 from `first_period`, store and audit keys. */
ms_err ms_kms_secrets_generate(ms_kms_secrets *s, uint64_t first_period, const ms_rng *rng);
/* Add a generation (rollover); from_period must be > the last generation's (else
 * MS_ERR_PERIOD), at most MS_KMS_MAX_GENERATIONS (else MS_ERR_ARG); detail says which. */
ms_err ms_kms_secrets_add_generation(ms_kms_secrets *s, uint64_t from_period,
                                     const ms_rng *rng, char *detail, size_t detail_cap);
/* The generation in force for `period_no`, or NULL (before the first). */
const ms_kms_generation *ms_kms_secrets_generation(const ms_kms_secrets *s,
                                                   uint64_t period_no);

typedef enum ms_seal_method {
    MS_SEAL_PASSPHRASE = 1,
    MS_SEAL_SHARES = 2,
    MS_SEAL_PKCS11 = 3
} ms_seal_method;

typedef struct ms_seal_params {
    ms_seal_method method;
    /* passphrase */
    const uint8_t *passphrase;
    size_t passphrase_len;
    unsigned scrypt_log2_n; /* 0: default (17, i.e. 128 MiB with r = 8) */
    /* shares */
    unsigned k, n;          /* 1 <= k <= n <= 16 */
    /* PKCS#11 */
    const char *module;     /* path of the PKCS#11 module (.so) */
    const char *token_label;
    const uint8_t *pin;
    size_t pin_len;
    const char *key_label;  /* AES key in the token (created by ms_seal_write if absent) */
} ms_seal_params;

/* Seal `s` into `path` (written atomically: temp file, fsync, rename; mode 0600).
 * With MS_SEAL_SHARES, shares[i] (i < n) receive the custodians' shares, share_len[i]
 * their lengths; each share names the KMS and its index, and is checked on entry. A
 * re-seal (after rollover) with shares hands out new shares. On failure detail (may be
 * NULL) names the cause. */
ms_err ms_seal_write(const char *path, const ms_kms_secrets *s, const ms_seal_params *p,
                     uint8_t shares[][MS_KMS_SHARE_BYTES], size_t share_len[], char *detail,
                     size_t detail_cap);

/* Reading a sealed file: open it (public header only), then supply material. */
typedef struct ms_unseal ms_unseal;

/* MS_ERR_SEALED_FILE if the file cannot be read or is damaged; detail (may be NULL) says
 * which. */
ms_err ms_unseal_open(ms_unseal **out, const char *path, char *detail, size_t detail_cap);
void ms_unseal_free(ms_unseal *u);                          /* wipes collected shares */
ms_seal_method ms_unseal_method(const ms_unseal *u);
/* Shares: how many were accepted so far and how many are needed. */
void ms_unseal_progress(const ms_unseal *u, unsigned *have, unsigned *need);

/* Each returns MS_OK when `out` now holds the secrets; for shares, MS_OK with *out
 * still NULL while more are needed. Errors: MS_ERR_PASSPHRASE, MS_ERR_SHARE (corrupted,
 * duplicate, other KMS: the message says which), MS_ERR_PKCS11, MS_ERR_SEALED_FILE.
 * A passphrase is checked against a check value in the header before the body is
 * tried, so a wrong passphrase is MS_ERR_PASSPHRASE and a damaged body with the right
 * one is MS_ERR_SEALED_FILE. Calling the function of another method: MS_ERR_ARG.
 * ms_unseal_detail() says why in every case. */
ms_err ms_unseal_passphrase(ms_unseal *u, ms_kms_secrets **out, const uint8_t *pass,
                            size_t len);
ms_err ms_unseal_share(ms_unseal *u, ms_kms_secrets **out, const uint8_t *share,
                       size_t len);
ms_err ms_unseal_pkcs11(ms_unseal *u, ms_kms_secrets **out, const uint8_t *pin, size_t len);

/* Why the last call on u failed: one English sentence naming what (e.g. "share 3 is
 * corrupted: its SHA-256 is not in the sealed file", "PKCS#11: wrong PIN for token
 * 'kms'"); "" after success. Never contains secrets. */
const char *ms_unseal_detail(const ms_unseal *u);

/* The parameters of an opened sealed file, for a re-seal by the same method: the method;
 * the scrypt log2 N (passphrase); k and n (shares); the module, token and key labels
 * (PKCS#11: pointers into u, valid while u is). The passphrase or PIN is not in the file:
 * the caller adds it. */
void ms_unseal_params(const ms_unseal *u, ms_seal_params *p);

#define MS_KMS_SEAL_ID_BYTES 16
#define MS_KMS_SHARE_LEN 56 /* an encoded share: see the format comment in seal.c */

/* Shamir over GF(2^8), constant time in the secret (exposed for tests). */
ms_err ms_shamir_split(uint8_t *shares /* n * (len + 1): x || y */, const uint8_t *secret,
                       size_t len, unsigned k, unsigned n, const ms_rng *rng);
ms_err ms_shamir_combine(uint8_t *secret, size_t len, const uint8_t *shares /* k * (len+1) */,
                         unsigned k);
/* (combine returns MS_ERR_SHARE for an x of 0 or a repeated x.) */

/* ---- internal to src/kms (exposed for tests) ----------------------------------------- */

/* GF(2^8) arithmetic modulo x^8 + x^4 + x^3 + x + 1, constant time; inv(0) = 0. */
uint8_t ms_gf256_mul(uint8_t a, uint8_t b);
uint8_t ms_gf256_inv(uint8_t a);

#endif
