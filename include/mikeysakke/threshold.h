/*
 * Threshold KMS, cryptographic core (protocol: the design note on the threshold KMS).
 * n servers, indices 1..n; any t+1 issue a user's keys, t learn nothing of z or KSAK.
 *
 * Everything here runs in one process: the servers' messages are byte blobs the caller
 * carries between the server objects (broadcast blobs go to every other server unchanged;
 * private blobs carry shares to one server and are what a transport must encrypt).
 * Rounds are driven by the caller: for round r, every server produces its messages, every
 * server receives every other server's, then every server ends the round. A message not
 * received counts as absent (its sender gets the consequences: complaint, exclusion).
 *
 * Memory is the caller's: structures below are plain data; objects are made by _new and
 * released by _free (which wipes secrets). Functions return MS_OK or an ms_err; where a
 * `detail` buffer is taken it receives one sentence naming the cause.
 */
#ifndef MIKEYSAKKE_THRESHOLD_H
#define MIKEYSAKKE_THRESHOLD_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/crypto.h"
#include "mikeysakke/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MS_TKMS_MAX_N 16 /* servers */
#define MS_TKMS_MAX_T 7  /* threshold: 2t + 1 <= n */

/* Public outcome of key generation, the same at every honest server. */
typedef struct ms_tkms_public {
    unsigned n, t;
    uint32_t qual;                                     /* bit i-1: dealer i qualified */
    uint8_t Z[MS_SAKKE_POINT_BYTES];                   /* [z]P */
    uint8_t kpak[MS_ECCSI_POINT_BYTES];                /* [KSAK]G */
    uint8_t Zj[MS_TKMS_MAX_N][MS_SAKKE_POINT_BYTES];   /* [z_j]P of server j (index j-1) */
    uint8_t kpakj[MS_TKMS_MAX_N][MS_ECCSI_POINT_BYTES]; /* [KSAK_j]G */
} ms_tkms_public;

/* ---- a server and key generation (GJKR, z and KSAK in parallel) -------------------- */

typedef struct ms_tkms_server ms_tkms_server;

/* Server `index` (1..n) of n with threshold t (1 <= t, 2t + 1 <= n <= MS_TKMS_MAX_N);
 * draws its polynomials from rng (NULL: OpenSSL's generator). */
MS_API MS_WARN_UNUSED ms_err ms_tkms_server_new(ms_tkms_server **out, unsigned n, unsigned t,
                                                unsigned index, const ms_rng *rng);
MS_API void ms_tkms_server_free(ms_tkms_server *s);

/* Octets enough for any key-generation or batch message of this configuration for a
 * batch of `identities` (0 for key generation). */
MS_API size_t ms_tkms_msg_max(unsigned n, unsigned t, size_t identities);

/* Key generation rounds:
 *   1 Pedersen commitments (broadcast) and shares (private, one per other server);
 *   2 complaints about shares that do not match the commitments;
 *   3 dealers answer complaints publicly; the qualified set is fixed when it ends;
 *   4 Feldman commitments of the qualified dealers;
 *   5 complaints against Feldman commitments, each proven by the complainer's shares;
 *   6 every server reveals its shares from the accused dealers, whose secrets are rebuilt.
 * After round 6 ends, ms_tkms_server_public gives the result. */
#define MS_TKMS_DKG_ROUNDS 6
MS_API MS_WARN_UNUSED ms_err ms_tkms_dkg_broadcast(ms_tkms_server *s, unsigned round,
                                                   uint8_t *out, size_t cap, size_t *len);
/* Round 1 only: the shares for server `to`. */
MS_API MS_WARN_UNUSED ms_err ms_tkms_dkg_private(ms_tkms_server *s, unsigned to, uint8_t *out,
                                                 size_t cap, size_t *len);
/* Server `from`'s broadcast of `round` (priv: its private blob to us, round 1 only, else
 * NULL). MS_ERR_BAD_ENCODING for a malformed blob (the sender is then treated as absent). */
MS_API MS_WARN_UNUSED ms_err ms_tkms_dkg_receive(ms_tkms_server *s, unsigned round,
                                                 unsigned from, const uint8_t *msg,
                                                 size_t len, const uint8_t *priv,
                                                 size_t priv_len);
MS_API MS_WARN_UNUSED ms_err ms_tkms_dkg_end_round(ms_tkms_server *s, unsigned round,
                                                   char *detail, size_t detail_cap);
/* The public result (MS_ERR_ARG before round 6 has ended). */
MS_API MS_WARN_UNUSED ms_err ms_tkms_server_public(const ms_tkms_server *s,
                                                   ms_tkms_public *pub);
/* Dealers this server complained about in round 2 / 5 (bit i-1 for dealer i). */
MS_API uint32_t ms_tkms_dkg_complaints(const ms_tkms_server *s, unsigned round);

/* ---- the monthly batch ---------------------------------------------------------------- */

/* Public record of one (period, identity) slot, published with the batch. */
typedef struct ms_tkms_record {
    unsigned t;
    /* uc commits to d u, d the common denominator of the re-sharing servers' Lagrange
     * coefficients (the commitments are then small-integer combinations): a share u_j
     * is checked as [d u_j]P = sum_k j^k uc_k */
    uint64_t d;
    uint8_t sid[32];                                       /* H(Z || KPAK || ID) */
    uint8_t r0[MS_SAKKE_POINT_BYTES];                      /* [rho]P */
    uint8_t pvt[MS_ECCSI_POINT_BYTES];                     /* [v]G */
    uint8_t uc[MS_TKMS_MAX_T + 1][MS_SAKKE_POINT_BYTES];   /* Feldman commitments to u */
    uint8_t vc[MS_TKMS_MAX_T + 1][MS_ECCSI_POINT_BYTES];   /* Feldman commitments to v */
} ms_tkms_record;

/* One server's issuance share of a slot: u_j and SSK_j (secret; for the device only). */
typedef struct ms_tkms_share {
    unsigned index;
    uint8_t u[MS_SAKKE_SECRET_BYTES];
    uint8_t ssk[MS_ECCSI_SCALAR_BYTES];
} ms_tkms_share;

typedef struct ms_tkms_batch ms_tkms_batch;

/* A batch at server `s` (whose key generation has ended) for `count` identities; `live`
 * (bit i-1: server i) names the servers taking part (at least 2t + 1, s among them).
 * MS_ERR_ID_RANGE if an identifier is not a SAKKE identifier or has [a]P + Z = O (detail
 * names which). The batch refers to s: free it first. */
MS_API MS_WARN_UNUSED ms_err ms_tkms_batch_new(ms_tkms_batch **out, ms_tkms_server *s,
                                               const uint8_t *const *ids,
                                               const size_t *id_lens, size_t count,
                                               uint32_t live, char *detail,
                                               size_t detail_cap);
MS_API void ms_tkms_batch_free(ms_tkms_batch *b);

/* Batch rounds:
 *   1 (B1) Feldman commitments to rho, Pedersen commitments to v (broadcast), shares
 *     (private);
 *   2 (B2) complaints, from one random linear combination per dealer over the batch;
 *     dealers complained about are left out;
 *   3 (B3) Feldman commitments to v; the re-sharing of h_i = (a + z_i) rho_i by the first
 *     2t + 1 qualified servers (broadcast commitments, private shares). Ending round 3
 *     checks v's commitments, the re-shared shares and (B4) one batched pairing check per
 *     re-sharing dealer, then stores u_j and SSK_j per slot. MS_ERR_THRESHOLD_SHARE names
 *     a dealer caught (the batch is then to be run again without it). */
#define MS_TKMS_BATCH_ROUNDS 3
MS_API MS_WARN_UNUSED ms_err ms_tkms_batch_broadcast(ms_tkms_batch *b, unsigned round,
                                                     uint8_t *out, size_t cap, size_t *len);
MS_API MS_WARN_UNUSED ms_err ms_tkms_batch_private(ms_tkms_batch *b, unsigned round,
                                                   unsigned to, uint8_t *out, size_t cap,
                                                   size_t *len);
MS_API MS_WARN_UNUSED ms_err ms_tkms_batch_receive(ms_tkms_batch *b, unsigned round,
                                                   unsigned from, const uint8_t *msg,
                                                   size_t len, const uint8_t *priv,
                                                   size_t priv_len);
MS_API MS_WARN_UNUSED ms_err ms_tkms_batch_end_round(ms_tkms_batch *b, unsigned round,
                                                     char *detail, size_t detail_cap);
/* Dealers this server complained about in batch round 2, and the qualified dealers. */
MS_API uint32_t ms_tkms_batch_complaints(const ms_tkms_batch *b);
MS_API uint32_t ms_tkms_batch_qualified(const ms_tkms_batch *b);

/* Issuance: this server's share and the public record for `id`, found by its slot id
 * H(Z || KPAK || ID) (nothing is computed with the identifier's a). MS_ERR_IDENTITY if
 * the batch has no slot for it. */
MS_API MS_WARN_UNUSED ms_err ms_tkms_issue(const ms_tkms_batch *b, const uint8_t *id,
                                           size_t id_len, ms_tkms_share *share,
                                           ms_tkms_record *record);

/* ---- the device ---------------------------------------------------------------------- */

/* Combines t+1 (or more; the first t+1 are used) shares of servers with distinct indices:
 * u = sum lambda_j u_j, RSK = [u^-1] R0, SSK = sum lambda_j SSK_j, PVT from the record;
 * then validates RSK (RFC 6508 6.1.2) against Z and SSK/PVT (RFC 6507 5.1.2) against
 * KPAK. On a failed validation checks every share against the record's commitments and
 * the servers' public key shares: MS_ERR_THRESHOLD_SHARE with *cheater = the index of
 * the first share that fails (0 if none does). MS_ERR_INVALID if the record is not the
 * slot of `id`. Outputs are written only on MS_OK. */
MS_API MS_WARN_UNUSED ms_err ms_tkms_combine(const ms_tkms_public *pub, const uint8_t *id,
                                             size_t id_len, const ms_tkms_record *record,
                                             const ms_tkms_share *shares, size_t count,
                                             uint8_t rsk[MS_SAKKE_POINT_BYTES],
                                             uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                                             uint8_t pvt[MS_ECCSI_POINT_BYTES],
                                             unsigned *cheater, char *detail,
                                             size_t detail_cap);

/* ---- proactive share refresh ------------------------------------------------------------ */

/* Every server re-randomises its shares of z and KSAK while Z and KPAK stay the same: each
 * deals a random degree-t polynomial with constant term 0 on both curves (Feldman
 * commitments [a_k]P, [b_k]G for k = 0..t, the k = 0 ones the point at infinity), and
 * server j's new share is its old one plus the qualified dealers' polynomials at j. Old
 * and new shares do not combine: t shares stolen before and t after give nothing.
 * Run by all n servers together, after key generation ended (or a server restored). */
typedef struct ms_tkms_refresh ms_tkms_refresh;

/* A refresh at server s; draws its polynomials from s's generator. The refresh refers to
 * s: free it first. MS_ERR_ARG if s has no shares yet. */
MS_API MS_WARN_UNUSED ms_err ms_tkms_refresh_new(ms_tkms_refresh **out, ms_tkms_server *s);
MS_API void ms_tkms_refresh_free(ms_tkms_refresh *r);
/* Octets enough for any refresh message of this configuration. */
MS_API size_t ms_tkms_refresh_msg_max(unsigned n, unsigned t);

/* Refresh rounds:
 *   1 Feldman commitments (broadcast) and shares (private, one per other server);
 *   2 complaints about shares that do not match the commitments;
 *   3 dealers answer complaints publicly. Ending round 3 fixes the qualified dealers
 *     (commitments received, constant term the point at infinity, at most t complaints,
 *     every one answered with a share matching the commitments; at least t+1 of them,
 *     else MS_ERR_THRESHOLD_SHARE), computes the new shares and public key shares and
 *     checks that they still interpolate to Z and KPAK and that this server's new shares
 *     match its public key shares. */
#define MS_TKMS_REFRESH_ROUNDS 3
MS_API MS_WARN_UNUSED ms_err ms_tkms_refresh_broadcast(ms_tkms_refresh *r, unsigned round,
                                                       uint8_t *out, size_t cap, size_t *len);
/* Round 1 only: the shares for server `to`. */
MS_API MS_WARN_UNUSED ms_err ms_tkms_refresh_private(ms_tkms_refresh *r, unsigned to,
                                                     uint8_t *out, size_t cap, size_t *len);
/* As ms_tkms_dkg_receive: a malformed blob is MS_ERR_BAD_ENCODING and its sender absent. */
MS_API MS_WARN_UNUSED ms_err ms_tkms_refresh_receive(ms_tkms_refresh *r, unsigned round,
                                                     unsigned from, const uint8_t *msg,
                                                     size_t len, const uint8_t *priv,
                                                     size_t priv_len);
MS_API MS_WARN_UNUSED ms_err ms_tkms_refresh_end_round(ms_tkms_refresh *r, unsigned round,
                                                       char *detail, size_t detail_cap);
/* Dealers this server complained about in round 2; the qualified dealers (after round 3). */
MS_API uint32_t ms_tkms_refresh_complaints(const ms_tkms_refresh *r);
MS_API uint32_t ms_tkms_refresh_qualified(const ms_tkms_refresh *r);
/* The public result after round 3: Z, KPAK, n, t and qual (key generation's) as before,
 * the new Zj and kpakj. MS_ERR_ARG before round 3 has ended. */
MS_API MS_WARN_UNUSED ms_err ms_tkms_refresh_public(const ms_tkms_refresh *r,
                                                    ms_tkms_public *pub);
/* Puts the new shares and public result into the server (the old shares are wiped): to be
 * called once the result is confirmed by every server. */
MS_API MS_WARN_UNUSED ms_err ms_tkms_refresh_apply(ms_tkms_refresh *r);

#ifdef __cplusplus
}
#endif

#endif
