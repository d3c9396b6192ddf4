/*
 * HPKE (RFC 9180) base mode with one suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
 * AES-128-GCM (kem 0x0020, kdf 0x0001, aead 0x0001, the suite of RFC 9180 A.1). Debian
 * 12's OpenSSL 3.0 has no OSSL_HPKE_* (added in 3.2), so the scheme is built here from
 * OpenSSL's X25519, HMAC-SHA256 and AES-GCM, following the RFC's pseudocode step by step
 * and checked against its Appendix A.1.1 vectors (tests/net/test_hpke.c). The suite is one
 * OSSL_HPKE supports, so a later switch changes no octet on the wire.
 *
 * Used by the threshold KMS to encrypt shares to a server or to an enrolled device. The
 * single-shot form (ms_hpke_seal / ms_hpke_open) is what callers want: the sealed blob is
 * enc (32) || ciphertext (plaintext + 16). `info` binds the envelope to its purpose
 * (protocol, session, recipient); `aad` is authenticated but not encrypted. Secrets
 * (private keys, shared secrets, AEAD keys) are wiped after use.
 */
#ifndef MS_NET_HPKE_H
#define MS_NET_HPKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/crypto.h"
#include "mikeysakke/errors.h"

#define MS_HPKE_PK_BYTES 32   /* Npk: an X25519 public key */
#define MS_HPKE_SK_BYTES 32   /* Nsk */
#define MS_HPKE_ENC_BYTES 32  /* Nenc */
#define MS_HPKE_KEY_BYTES 16  /* Nk (AES-128-GCM) */
#define MS_HPKE_NONCE_BYTES 12 /* Nn */
#define MS_HPKE_TAG_BYTES 16  /* Nt */
#define MS_HPKE_SECRET_BYTES 32 /* Nh, Nsecret */
/* What a single-shot seal adds to the plaintext. */
#define MS_HPKE_OVERHEAD (MS_HPKE_ENC_BYTES + MS_HPKE_TAG_BYTES)
/* Longest info, exporter context and ikm taken (RFC 9180 recommends 64; a little
 * room for identities and session ids). */
#define MS_HPKE_LABEL_MAX 1024
/* Longest plaintext sealed in one call, and longest aad (an AEAD input, not a KDF one:
 * it may carry a whole public record). */
#define MS_HPKE_PT_MAX (16u * 1024u * 1024u)
#define MS_HPKE_AAD_MAX (1024u * 1024u)

/* A key pair: DeriveKeyPair(random(32)). rng NULL = OpenSSL's. */
ms_err ms_hpke_keygen(uint8_t sk[MS_HPKE_SK_BYTES], uint8_t pk[MS_HPKE_PK_BYTES],
                      const ms_rng *rng);
/* DeriveKeyPair(ikm) of RFC 9180 7.1.3 (ikm of 32 octets or more of entropy). */
ms_err ms_hpke_derive_keypair(const uint8_t *ikm, size_t ikm_len, uint8_t sk[MS_HPKE_SK_BYTES],
                              uint8_t pk[MS_HPKE_PK_BYTES]);
/* The public key of a private key. */
ms_err ms_hpke_public(const uint8_t sk[MS_HPKE_SK_BYTES], uint8_t pk[MS_HPKE_PK_BYTES]);

/* SealBase(pkR, info, aad, pt): out = enc || ct, pt_len + MS_HPKE_OVERHEAD octets.
 * MS_ERR_BUFFER_TOO_SMALL if out_cap is less; MS_ERR_ARG for NULLs or over-long inputs;
 * MS_ERR_INVALID for a recipient key whose shared secret is zero (a low-order point). */
ms_err ms_hpke_seal(const uint8_t pk_r[MS_HPKE_PK_BYTES], const uint8_t *info, size_t info_len,
                    const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                    uint8_t *out, size_t out_cap, size_t *out_len, const ms_rng *rng);
/* OpenBase(enc, skR, info, aad, ct) of a blob from ms_hpke_seal: pt is in_len -
 * MS_HPKE_OVERHEAD octets. MS_ERR_DECRYPT when it does not open (another key, another
 * info or aad, altered or truncated; pt is then zeroed); MS_ERR_BAD_LENGTH when in_len is
 * below MS_HPKE_OVERHEAD; MS_ERR_BUFFER_TOO_SMALL. */
ms_err ms_hpke_open(const uint8_t sk_r[MS_HPKE_SK_BYTES], const uint8_t *info, size_t info_len,
                    const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len,
                    uint8_t *pt, size_t pt_cap, size_t *pt_len);

/* The AEAD key and nonce of a single-shot blob (from ms_hpke_seal: its one message, seq 0)
 * as its recipient derives them: with these a third party opens that one blob
 * (ms_hpke_open_key) and nothing else; the recipient's private key and the KEM's shared
 * secret stay private. The blob must open (MS_ERR_DECRYPT otherwise). For cheater
 * reports of the threshold KMS. */
ms_err ms_hpke_blob_key(const uint8_t sk_r[MS_HPKE_SK_BYTES], const uint8_t *info,
                        size_t info_len, const uint8_t *aad, size_t aad_len, const uint8_t *in,
                        size_t in_len, uint8_t key[MS_HPKE_KEY_BYTES],
                        uint8_t nonce[MS_HPKE_NONCE_BYTES]);
/* Opens a single-shot blob (enc || ct) with its AEAD key and nonce: MS_ERR_DECRYPT (pt
 * zeroed) when it does not open; MS_ERR_BAD_LENGTH, MS_ERR_BUFFER_TOO_SMALL. */
ms_err ms_hpke_open_key(const uint8_t key[MS_HPKE_KEY_BYTES],
                        const uint8_t nonce[MS_HPKE_NONCE_BYTES], const uint8_t *aad,
                        size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *pt,
                        size_t pt_cap, size_t *pt_len);

/* ---- contexts (RFC 9180 5.1, 5.2, 5.3): several messages under one setup -------------- */

typedef struct ms_hpke_ctx {
    uint8_t key[MS_HPKE_KEY_BYTES];
    uint8_t base_nonce[MS_HPKE_NONCE_BYTES];
    uint8_t exporter_secret[MS_HPKE_SECRET_BYTES];
    uint64_t seq;
    bool sender; /* a sender's context only seals, a recipient's only opens */
    bool ready;
} ms_hpke_ctx;

/* SetupBaseS(pkR, info): ctx and enc. */
ms_err ms_hpke_setup_sender(ms_hpke_ctx *ctx, uint8_t enc[MS_HPKE_ENC_BYTES],
                            const uint8_t pk_r[MS_HPKE_PK_BYTES], const uint8_t *info,
                            size_t info_len, const ms_rng *rng);
/* The same with the ephemeral key pair DeriveKeyPair(ikm_e): for the RFC's test vectors
 * only (a fixed ikm_e reuses the ephemeral key). */
ms_err ms_hpke_setup_sender_ikm(ms_hpke_ctx *ctx, uint8_t enc[MS_HPKE_ENC_BYTES],
                                const uint8_t pk_r[MS_HPKE_PK_BYTES], const uint8_t *info,
                                size_t info_len, const uint8_t *ikm_e, size_t ikm_e_len);
/* SetupBaseR(enc, skR, info). MS_ERR_DECRYPT for an enc whose shared secret is zero. */
ms_err ms_hpke_setup_recipient(ms_hpke_ctx *ctx, const uint8_t enc[MS_HPKE_ENC_BYTES],
                               const uint8_t sk_r[MS_HPKE_SK_BYTES], const uint8_t *info,
                               size_t info_len);
/* ContextS.Seal(aad, pt): ct of pt_len + MS_HPKE_TAG_BYTES octets. */
ms_err ms_hpke_ctx_seal(ms_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                        size_t pt_len, uint8_t *ct, size_t ct_cap, size_t *ct_len);
/* ContextR.Open(aad, ct): MS_ERR_DECRYPT (pt zeroed, sequence number not advanced). */
ms_err ms_hpke_ctx_open(ms_hpke_ctx *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                        size_t ct_len, uint8_t *pt, size_t pt_cap, size_t *pt_len);
/* Context.Export(exporter_context, L), L up to 255 * 32. */
ms_err ms_hpke_export(const ms_hpke_ctx *ctx, const uint8_t *exporter_context, size_t ec_len,
                      uint8_t *out, size_t out_len);
/* Wipes the context's secrets. */
void ms_hpke_ctx_wipe(ms_hpke_ctx *ctx);

#endif
