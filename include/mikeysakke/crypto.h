/*
 * mikeysakke crypto layer: ECCSI (RFC 6507, P-256, SHA-256) and SAKKE (RFC 6508 with
 * parameter set 1 of RFC 6509).
 *
 * Conventions
 * - Argument order: context or object first, then outputs, then inputs; a length follows
 *   its buffer. Fixed-size buffers are given as arrays of the MS_* sizes below. Optional
 *   diagnostics (a trace, an ms_mikey_diag, a detail buffer and its capacity) come last.
 *   Every public header follows this order.
 * - Every function returns MS_OK or an ms_err naming what was wrong; outputs are only
 *   meaningful on MS_OK (secret outputs are wiped on failure).
 * - Pointers must not be NULL unless the comment says "may be NULL" (rng, trace, hs);
 *   MS_NONNULL marks them for the compiler.
 * - Encodings are those of the RFCs: integers big-endian, fixed width; points
 *   0x04 || x || y. Identifiers are the exact identifier octets.
 * - Randomness: functions that need it take `const ms_rng *rng`; NULL means the operating
 *   system's generator through OpenSSL (RAND_priv_bytes). A caller-supplied generator
 *   exists for known-answer tests; production code passes NULL.
 * - Objects (ms_sakke_kms, ms_sakke_peer, ms_sakke_prepared_rsk, ms_eccsi_signer,
 *   ms_eccsi_verifier) hold precomputation tied to long-lived values. They are created
 *   once per key period (or per peer) and reused; `_free` wipes secret state. An object
 *   is not modified by the functions taking it as const, so those may run concurrently
 *   from several threads; functions taking it non-const need the caller's lock.
 * - Constant time: every operation on a secret (z, KSAK, RSK and its prepared table,
 *   SSK, r, SSV, the ECCSI ephemeral j) runs without secret-dependent branches or
 *   memory indices. Public inputs (identifiers, points received) may be handled in
 *   variable time.
 */
#ifndef MIKEYSAKKE_CRYPTO_H
#define MIKEYSAKKE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MS_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define MS_WARN_UNUSED
#endif

/* MS_NONNULL(i, ...): the arguments at those positions (from 1) must not be NULL, and the
 * compiler says so where a caller passes one. The library checks them all the same
 * (MS_ERR_ARG): it is built with MS_NO_NONNULL, so that the compiler keeps those checks. */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(MS_NO_NONNULL)
#define MS_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#else
#define MS_NONNULL(...)
#endif

/* ---- sizes ------------------------------------------------------------------------- */

#define MS_SAKKE_FP_BYTES 128    /* L: one element of F_p, parameter set 1 */
#define MS_SAKKE_POINT_BYTES 257 /* 0x04 || x || y */
#define MS_SAKKE_SECRET_BYTES 128 /* z, the KMS master secret, as an L-octet integer */
#define MS_SAKKE_SSV_BYTES 16    /* n/8 */
#define MS_SAKKE_SED_BYTES 273   /* encapsulated data: R (257) || H (16) */
#define MS_SAKKE_ID_MAX_BYTES 128 /* an identifier longer than L octets is >= q */

#define MS_ECCSI_SCALAR_BYTES 32 /* KSAK, SSK, HS, HE, r, s */
#define MS_ECCSI_POINT_BYTES 65  /* KPAK, PVT, Y, J */
#define MS_ECCSI_SIG_BYTES 129   /* r || s || PVT */

/* ---- randomness -------------------------------------------------------------------- */

typedef struct ms_rng {
    /* Fill out[0..len) with random octets; return MS_OK or MS_ERR_RNG. */
    ms_err (*fill)(void *ctx, uint8_t *out, size_t len);
    void *ctx;
} ms_rng;

/* Name of the 1024-bit field multiplication backend in use: "x86_64-adx", or "c64" (the
 * portable one, also used when the adx backend is built but the CPU lacks BMI2/ADX). */
MS_API const char *ms_fp_backend_name(void);

/* ---- SAKKE: KMS side --------------------------------------------------------------- */

/* Draw a master secret z in [2, q-1] and compute Z = [z]P. */
MS_API MS_WARN_UNUSED ms_err ms_sakke_master_keygen(uint8_t z[MS_SAKKE_SECRET_BYTES],
                                                    uint8_t Z[MS_SAKKE_POINT_BYTES],
                                                    const ms_rng *rng)
    MS_NONNULL(1, 2);

/* Z = [z]P for a stored master secret; MS_ERR_SCALAR_RANGE unless z is in [2, q-1]. */
MS_API MS_WARN_UNUSED ms_err ms_sakke_master_public(uint8_t Z[MS_SAKKE_POINT_BYTES],
                                                    const uint8_t z[MS_SAKKE_SECRET_BYTES])
    MS_NONNULL(1, 2);

/* ---- SAKKE: one KMS's public parameters --------------------------------------------- */

/* Z checked (on the curve, order q) with its fixed-base tables; built once per community.
 * The tables are built by the first operation that needs each (thread-safe: one object may
 * serve several threads); ms_sakke_kms_new itself is cheap. */
typedef struct ms_sakke_kms ms_sakke_kms;

MS_API MS_WARN_UNUSED ms_err ms_sakke_kms_new(ms_sakke_kms **out,
                                              const uint8_t Z[MS_SAKKE_POINT_BYTES])
    MS_NONNULL(1, 2);
MS_API void ms_sakke_kms_free(ms_sakke_kms *kms);
/* Builds now the tables a sender needs (the combs of P and Z, g's table), so that the
 * first encapsulation does not pay for them: for a phone, at start rather than in a call. */
MS_API MS_WARN_UNUSED ms_err ms_sakke_kms_prepare_sender(const ms_sakke_kms *kms);
MS_API size_t ms_sakke_kms_table_bytes(const ms_sakke_kms *kms);

/* RSK = [(a + z)^-1 mod q]P for identifier a (RFC 6508 6.1.1). `kms` must hold the Z
 * belonging to z (its table for P makes issuing cheap); z is not checked against it. */
MS_API MS_WARN_UNUSED ms_err ms_sakke_rsk_issue(const ms_sakke_kms *kms,
                                                uint8_t rsk[MS_SAKKE_POINT_BYTES],
                                                const uint8_t z[MS_SAKKE_SECRET_BYTES],
                                                const uint8_t *id, size_t id_len)
    MS_NONNULL(1, 2, 3, 4);

/* I = [a]P + Z for identifier a (public; what an encapsulation is made to). */
MS_API MS_WARN_UNUSED ms_err ms_sakke_identity_point(const ms_sakke_kms *kms,
                                                     uint8_t I[MS_SAKKE_POINT_BYTES],
                                                     const uint8_t *id, size_t id_len)
    MS_NONNULL(1, 2, 3);

/* Check < [a]P + Z, RSK > == g (RFC 6508 6.1.2). MS_OK or MS_ERR_RSK_INVALID (or a
 * decoding error naming what was malformed). */
MS_API MS_WARN_UNUSED ms_err ms_sakke_rsk_validate(const ms_sakke_kms *kms,
                                                   const uint8_t *id, size_t id_len,
                                                   const uint8_t rsk[MS_SAKKE_POINT_BYTES])
    MS_NONNULL(1, 2, 4);

/* Encapsulate `ssv` (16 octets) to identifier `id` (RFC 6508 6.2.1). */
MS_API MS_WARN_UNUSED ms_err ms_sakke_encap(const ms_sakke_kms *kms,
                                            uint8_t sed[MS_SAKKE_SED_BYTES],
                                            const uint8_t *id, size_t id_len,
                                            const uint8_t *ssv, size_t ssv_len)
    MS_NONNULL(1, 2, 3, 5);

/* Decapsulate (RFC 6508 6.2.2) with the TEST check: MS_ERR_DECAP_TEST if the data was
 * not made for this identifier, KMS and RSK. */
MS_API MS_WARN_UNUSED ms_err ms_sakke_decap(const ms_sakke_kms *kms, uint8_t *ssv,
                                            size_t ssv_len, const uint8_t *id, size_t id_len,
                                            const uint8_t rsk[MS_SAKKE_POINT_BYTES],
                                            const uint8_t *sed, size_t sed_len)
    MS_NONNULL(1, 2, 4, 6, 7);

/* ---- SAKKE: prepared objects -------------------------------------------------------- */

/* A peer the sender calls often: a fixed-base table for I = [b]P + Z. Public data.
 * The peer refers to `kms` (for its g table): free the peer before the kms.
 * MS_ERR_ID_RANGE also when I is infinity (b = -z mod q, a negligible chance). */
typedef struct ms_sakke_peer ms_sakke_peer;

MS_API MS_WARN_UNUSED ms_err ms_sakke_peer_new(ms_sakke_peer **out, const ms_sakke_kms *kms,
                                               const uint8_t *id, size_t id_len)
    MS_NONNULL(1, 2, 3);
MS_API void ms_sakke_peer_free(ms_sakke_peer *peer);
MS_API size_t ms_sakke_peer_table_bytes(const ms_sakke_peer *peer);
MS_API MS_WARN_UNUSED ms_err ms_sakke_peer_encap(const ms_sakke_peer *peer,
                                                 uint8_t sed[MS_SAKKE_SED_BYTES],
                                                 const uint8_t *ssv, size_t ssv_len)
    MS_NONNULL(1, 2, 3);

/* The receiver's RSK for one key period, validated, with its Miller-loop lines and a
 * table for its own I = [a]P + Z. Secret: kept in locked memory, wiped on free. */
typedef struct ms_sakke_prepared_rsk ms_sakke_prepared_rsk;

MS_API MS_WARN_UNUSED ms_err ms_sakke_prepared_rsk_new(ms_sakke_prepared_rsk **out,
                                                       const ms_sakke_kms *kms,
                                                       const uint8_t *id, size_t id_len,
                                                       const uint8_t rsk[MS_SAKKE_POINT_BYTES])
    MS_NONNULL(1, 2, 3, 5);
MS_API void ms_sakke_prepared_rsk_free(ms_sakke_prepared_rsk *prep);
MS_API size_t ms_sakke_prepared_rsk_table_bytes(const ms_sakke_prepared_rsk *prep);
MS_API MS_WARN_UNUSED ms_err ms_sakke_prepared_rsk_decap(const ms_sakke_prepared_rsk *prep,
                                                         uint8_t *ssv, size_t ssv_len,
                                                         const uint8_t *sed, size_t sed_len)
    MS_NONNULL(1, 2, 4);

/* ---- ECCSI: KMS side ---------------------------------------------------------------- */

/* Draw KSAK in [1, q-1] and compute KPAK = [KSAK]G. */
MS_API MS_WARN_UNUSED ms_err ms_eccsi_master_keygen(uint8_t ksak[MS_ECCSI_SCALAR_BYTES],
                                                    uint8_t kpak[MS_ECCSI_POINT_BYTES],
                                                    const ms_rng *rng)
    MS_NONNULL(1, 2);

/* KPAK = [KSAK]G for a stored KSAK; MS_ERR_SCALAR_RANGE unless KSAK is in [1, q-1]. */
MS_API MS_WARN_UNUSED ms_err ms_eccsi_master_public(uint8_t kpak[MS_ECCSI_POINT_BYTES],
                                                    const uint8_t ksak[MS_ECCSI_SCALAR_BYTES])
    MS_NONNULL(1, 2);

/* Issue (SSK, PVT) for identifier `id` (RFC 6507 5.1.1), fresh v from rng. */
MS_API MS_WARN_UNUSED ms_err ms_eccsi_ssk_issue(uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                                                uint8_t pvt[MS_ECCSI_POINT_BYTES],
                                                const uint8_t ksak[MS_ECCSI_SCALAR_BYTES],
                                                const uint8_t kpak[MS_ECCSI_POINT_BYTES],
                                                const uint8_t *id, size_t id_len,
                                                const ms_rng *rng)
    MS_NONNULL(1, 2, 3, 4, 5);

/* Validate a received (SSK, PVT) (RFC 6507 5.1.2); hs (may be NULL) receives HS. */
MS_API MS_WARN_UNUSED ms_err ms_eccsi_ssk_validate(uint8_t hs[MS_ECCSI_SCALAR_BYTES],
                                                   const uint8_t kpak[MS_ECCSI_POINT_BYTES],
                                                   const uint8_t *id, size_t id_len,
                                                   const uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                                                   const uint8_t pvt[MS_ECCSI_POINT_BYTES])
    MS_NONNULL(2, 3, 5, 6);

/* ---- ECCSI: signing and verifying ---------------------------------------------------- */

/* Non-secret intermediate values of RFC 6507, for interoperability debugging. */
typedef struct ms_eccsi_trace {
    uint8_t hs[MS_ECCSI_SCALAR_BYTES]; /* HS = hash(G || KPAK || ID || PVT) */
    uint8_t he[MS_ECCSI_SCALAR_BYTES]; /* HE = hash(HS || r || M) */
    uint8_t r[MS_ECCSI_SCALAR_BYTES];
    uint8_t s[MS_ECCSI_SCALAR_BYTES];
    uint8_t y[MS_ECCSI_POINT_BYTES];   /* verifier: Y = [HS]PVT + KPAK (zero when signing) */
    uint8_t j[MS_ECCSI_POINT_BYTES];   /* J = [j]G (signer) or [s]([HE]G + [r]Y) (verifier) */
} ms_eccsi_trace;

/* A signer: validated SSK with HS cached, for one identifier and key period. */
typedef struct ms_eccsi_signer ms_eccsi_signer;

MS_API MS_WARN_UNUSED ms_err ms_eccsi_signer_new(ms_eccsi_signer **out,
                                                 const uint8_t kpak[MS_ECCSI_POINT_BYTES],
                                                 const uint8_t *id, size_t id_len,
                                                 const uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                                                 const uint8_t pvt[MS_ECCSI_POINT_BYTES])
    MS_NONNULL(1, 2, 3, 5, 6);
MS_API void ms_eccsi_signer_free(ms_eccsi_signer *signer);

/* Sign msg (RFC 6507 5.2.1); trace may be NULL. */
MS_API MS_WARN_UNUSED ms_err ms_eccsi_sign(const ms_eccsi_signer *signer,
                                           uint8_t sig[MS_ECCSI_SIG_BYTES],
                                           const uint8_t *msg, size_t msg_len,
                                           const ms_rng *rng, ms_eccsi_trace *trace)
    MS_NONNULL(1, 2);

/* A verifier for one KMS (KPAK). It remembers the last signers it saw (identifier and
 * PVT -> HS and Y = [HS]PVT + KPAK), so a signer seen again is verified cheaply. */
typedef struct ms_eccsi_verifier ms_eccsi_verifier;

MS_API MS_WARN_UNUSED ms_err ms_eccsi_verifier_new(ms_eccsi_verifier **out,
                                                   const uint8_t kpak[MS_ECCSI_POINT_BYTES])
    MS_NONNULL(1, 2);
MS_API void ms_eccsi_verifier_free(ms_eccsi_verifier *verifier);

/* Verify sig over msg from `id` (RFC 6507 5.2.2): MS_OK or MS_ERR_SIGNATURE (or a
 * decoding error). Updates the verifier's cache, hence non-const. trace may be NULL. */
MS_API MS_WARN_UNUSED ms_err ms_eccsi_verify(ms_eccsi_verifier *verifier,
                                             const uint8_t *id, size_t id_len,
                                             const uint8_t *msg, size_t msg_len,
                                             const uint8_t *sig, size_t sig_len,
                                             ms_eccsi_trace *trace)
    MS_NONNULL(1, 2, 6);

/* ---- memory ------------------------------------------------------------------------- */

/* Overwrite len octets at p with zeros in a way the compiler cannot drop. */
MS_API void ms_wipe(void *p, size_t len);

#ifdef __cplusplus
}
#endif
#endif
