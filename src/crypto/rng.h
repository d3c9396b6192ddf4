/* Random octets from the caller's ms_rng, or OpenSSL's private generator when NULL. */
#ifndef MS_CRYPTO_RNG_H
#define MS_CRYPTO_RNG_H

#include "mikeysakke/crypto.h"

ms_err ms_rng_fill(const ms_rng *rng, uint8_t *out, size_t len);

#endif
