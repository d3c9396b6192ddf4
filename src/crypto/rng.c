#include "rng.h"

#include <limits.h>
#include <openssl/rand.h>

ms_err ms_rng_fill(const ms_rng *rng, uint8_t *out, size_t len)
{
    if (rng != NULL)
        return rng->fill(rng->ctx, out, len);
    while (len > 0) {
        int chunk = len > INT_MAX ? INT_MAX : (int)len;
        if (RAND_priv_bytes(out, chunk) != 1)
            return MS_ERR_RNG;
        out += chunk;
        len -= (size_t)chunk;
    }
    return MS_OK;
}
