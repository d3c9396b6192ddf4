/*
 * ECCSI internals exposed to the tests only (not exported from the shared library).
 */
#ifndef MS_CRYPTO_ECCSI_INTERNAL_H
#define MS_CRYPTO_ECCSI_INTERNAL_H

#include <stddef.h>

#include "mikeysakke/crypto.h"

/* Signers the verifier keeps (identifier and PVT -> HS and Y), replaced round robin. */
#define MS_ECCSI_VERIFIER_CACHE_SLOTS 8

/* How many verifications found their signer in the cache, and how many computed HS and
 * Y afresh; lets the tests see the cache work. */
typedef struct ms_eccsi_cache_stats {
    size_t hits;
    size_t misses;
} ms_eccsi_cache_stats;

ms_eccsi_cache_stats ms_eccsi_verifier_cache_stats(const ms_eccsi_verifier *verifier);

#endif
