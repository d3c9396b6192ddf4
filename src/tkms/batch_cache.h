/*
 * The batches a serving threshold server keeps open (src/tkms/batch_cache.c), internal to
 * src/tkms: for each recently asked period, the decrypted shares (wiped when dropped),
 * the records file mapped read-only, and an index of both by identifier, so that a
 * share costs one hash lookup instead of reading and decrypting the whole batch. A
 * period's batch is read again when either of its files changed (a new batch is written
 * by rename, so a changed inode, size or time shows it). Thread-safe.
 */
#ifndef MS_TKMS_BATCH_CACHE_H
#define MS_TKMS_BATCH_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"
#include "mikeysakke/threshold.h"
#include "tkms/root.h"

#define MS_TKMS_CACHE_PERIODS 4 /* periods kept at once (the oldest used is dropped) */
#define MS_TKMS_PERIOD_NAME_MAX 33 /* a period name and its NUL */

typedef struct tkms_batch_cache tkms_batch_cache;

/* Where a record sits in the Merkle tree over the period's records (src/tkms/root.h). */
typedef struct tkms_cache_proof {
    uint64_t index, count;  /* the record's leaf, the leaves */
    uint8_t root[32];       /* the tree's root as computed from the records file */
    size_t len;
    uint8_t hashes[TKMS_PROOF_MAX][32]; /* the inclusion proof, bottom up */
} tkms_cache_proof;

ms_err tkms_batch_cache_new(tkms_batch_cache **out);
/* Wipes the shares and frees; NULL is fine. */
void tkms_batch_cache_free(tkms_batch_cache *c);

/* u and SSK (secret) and the record (wire form) of identifier id in the batch of period
 * at dir, opened with store_key, and (proof not NULL) its place in the records' Merkle
 * tree, whose levels are kept with the batch (no hashing per call). MS_ERR_IO no batch for the period, MS_ERR_SEALED_FILE its
 * shares do not open or a file is malformed, MS_ERR_IDENTITY no slot for id,
 * MS_ERR_BUFFER_TOO_SMALL. */
ms_err tkms_batch_cache_slot(tkms_batch_cache *c, const char *dir, const uint8_t store_key[32],
                             const char *period, const uint8_t *id, size_t id_len,
                             uint8_t u[MS_SAKKE_SECRET_BYTES], uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                             uint8_t *record, size_t record_cap, size_t *record_len,
                             tkms_cache_proof *proof, char *detail, size_t detail_cap);

#endif
