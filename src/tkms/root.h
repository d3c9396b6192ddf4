/*
 * The signed Merkle root that activates a threshold batch (design note B5;
 * src/tkms/root.c). Private to src/tkms, its tests and the bench.
 *
 * Tree: RFC 9162 section 2.1 over the period's public records in the order of
 * batch-P.records: leaf = SHA-256(0x00 || record wire form), node = SHA-256(0x01 || l || r),
 * a tree of n > 1 leaves split at the largest power of two below n.
 *
 * Each live server signs with its Ed25519 message key
 *   "mikeysakke tkms batch root" || 0x00 || u8 period length || period || root (32) ||
 *   u64 count || u32 live set (bit i-1: server i)
 * The batch is active with valid signatures of at least ceil((n + t + 1) / 2) distinct
 * servers of the table: two sets that large share t + 1 servers, one of them honest, and
 * an honest server signs one root per period, so no period has two active batches.
 *
 * batch-P.root (text, lowercase hex):
 *   mikeysakke-tkms-root 1 / period P / count N / live HEX8 / root HEX64 /
 *   sig J HEX128 (one line per signing server, ascending J)
 */
#ifndef MS_TKMS_ROOT_H
#define MS_TKMS_ROOT_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"
#include "net/peer_msg.h"
#include "net/peer_table.h"

#define TKMS_ROOT_CONTEXT "mikeysakke tkms batch root"
#define TKMS_PROOF_MAX 64 /* hashes in an inclusion proof (trees below 2^64 leaves) */

typedef struct tkms_root {
    char period[33];
    uint64_t count;
    uint32_t live;
    uint8_t root[32];
    uint32_t have; /* bit j-1: a signature of server j is present */
    uint8_t sig[MS_PEER_MAX][MS_PEER_SIG_BYTES];
} tkms_root;

/* SHA-256(0x00 || rec) */
ms_err tkms_merkle_leaf(uint8_t out[32], const uint8_t *rec, size_t len);
/* The root over count >= 1 leaf hashes and, if proof is not NULL, the inclusion proof of
 * leaf `index` (*proof_len hashes, at most TKMS_PROOF_MAX). */
ms_err tkms_merkle_root(uint8_t root[32], const uint8_t (*leaves)[32], size_t count,
                        size_t index, uint8_t (*proof)[32], size_t *proof_len);
/* The root an inclusion proof leads to (RFC 9162 2.1.3.2): MS_ERR_INVALID when the proof
 * cannot be one of leaf `index` of a tree of `size` leaves. */
ms_err tkms_merkle_from_proof(uint8_t root[32], const uint8_t leaf[32], uint64_t index,
                              uint64_t size, const uint8_t (*proof)[32], size_t proof_len);

/* ceil((n + t + 1) / 2) */
unsigned tkms_root_needed(unsigned n, unsigned t);
ms_err tkms_root_sign(const uint8_t seed[MS_PEER_KEY_BYTES], const tkms_root *r,
                      uint8_t sig[MS_PEER_SIG_BYTES]);
/* 1 if sig is server pub's signature of r's period, root, count and live set */
int tkms_root_sig_ok(const uint8_t pub[MS_PEER_KEY_BYTES], const tkms_root *r,
                     const uint8_t sig[MS_PEER_SIG_BYTES]);
/* The servers (bit j-1) whose signature in r is valid against the table. */
uint32_t tkms_root_valid(const tkms_root *r, const ms_peer_table *table);

ms_err tkms_root_write(const char *path, const tkms_root *r, char *detail, size_t detail_cap);
/* MS_ERR_IO cannot read, MS_ERR_CONFIG malformed (the line named). */
ms_err tkms_root_read(const char *path, tkms_root *r, char *detail, size_t detail_cap);

/* The share payload's public part after the record (node.h's wire form): index, count,
 * proof, live set and the signatures of root (those in root->have). For tests that make
 * share messages by hand. 0 for a proof over TKMS_PROOF_MAX. */
size_t tkms_share_proof_encode(uint8_t *out, const tkms_root *root, uint64_t index,
                               const uint8_t (*proof)[32], size_t proof_len);
/* "1, 2, 4": the servers of a mask */
void tkms_mask_list(char *out, size_t cap, uint32_t mask);

#endif
