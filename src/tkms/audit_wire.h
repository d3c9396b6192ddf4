/*
 * The pieces of the audit routes' wire format (audit.h) that the server (audit.c) and
 * the auditor's client (audit_client.c) both build or check. Private to src/tkms and
 * the tests.
 */
#ifndef MS_TKMS_AUDIT_WIRE_H
#define MS_TKMS_AUDIT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"
#include "mikeysakke/threshold.h"

#define MS_TKMS_CP_HEADER "mikeysakke-tkms-warrant-checkpoint 1\n"
/* Server-message kinds of the audit routes (the protocol's kinds stay below 20). */
#define MS_TKMS_KIND_CHECKPOINT 20
#define MS_TKMS_KIND_AUDIT_SHARE 21

typedef struct ms_tkms_checkpoint {
    uint8_t kms_hash[32];
    uint8_t roles_hash[32];
    uint64_t size;
    uint8_t head[32];
} ms_tkms_checkpoint;

/* head_N from head_{N-1} and w_N (out may be prev). */
void ms_tkms_wlog_next(uint8_t out[32], const uint8_t prev[32], const uint8_t w[32]);
/* The checkpoint text; its length, 0 if cap is too small. */
size_t ms_tkms_checkpoint_text(char *out, size_t cap, const uint8_t kms_hash[32],
                               const uint8_t roles_hash[32], uint64_t size,
                               const uint8_t head[32]);
/* Only the canonical text: MS_ERR_BAD_ENCODING otherwise. */
ms_err ms_tkms_checkpoint_parse(const uint8_t *text, size_t len, ms_tkms_checkpoint *cp);
/* The session of checkpoint messages, and SHA-256(Z || KPAK). */
void ms_tkms_audit_session(uint8_t out[32], const ms_tkms_public *pub);
void ms_tkms_kms_hash(uint8_t out[32], const ms_tkms_public *pub);
/* An inclusion proof of w in the log of (size, head): MS_OK, MS_ERR_BAD_ENCODING
 * (malformed), MS_ERR_INVALID (another entry, or does not lead to head). */
ms_err ms_tkms_proof_check(const uint8_t *proof, size_t len, uint64_t size,
                           const uint8_t head[32], const uint8_t w[32]);
/* The HPKE info of server `index`'s share for warrant w (at most 100 octets). */
size_t ms_tkms_audit_share_info(uint8_t *info, const uint8_t sid[32], unsigned index,
                                const uint8_t w[32]);

#endif
