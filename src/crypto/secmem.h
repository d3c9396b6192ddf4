/*
 * Memory for secrets: zeroed, locked against swapping (best effort), excluded from core
 * dumps, wiped before it is returned. Tables derived from secrets (the prepared RSK)
 * and unsealed master secrets live here.
 */
#ifndef MS_CRYPTO_SECMEM_H
#define MS_CRYPTO_SECMEM_H

#include <stddef.h>

/* Zeroed block of len octets, or NULL. Locking is best effort: if the process has no
 * locked-memory allowance left the block is still returned, only unlocked. */
void *ms_secure_alloc(size_t len);

/* Wipe and release a block from ms_secure_alloc; NULL is allowed. */
void ms_secure_free(void *p, size_t len);

#endif
