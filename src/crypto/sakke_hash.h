/*
 * HashToIntegerRange of RFC 6508 5.1 with SHA-256, for the two ranges SAKKE parameter
 * set 1 needs: n = q (r = HashToIntegerRange(SSV || b, q)) and n = 2^128 (the mask
 * HashToIntegerRange(g^r, 2^n)). Inputs are given in two parts so SSV || b needs no
 * copy; either part may be empty. Outputs are secret: reduced in constant time and
 * temporary buffers wiped. Return 0, or -1 if OpenSSL failed (outputs zeroed then).
 */
#ifndef MS_CRYPTO_SAKKE_HASH_H
#define MS_CRYPTO_SAKKE_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "mont.h"

#define MS_SAKKE_HASH_BYTES 32 /* SHA-256 */

/* v' = v_1 || ... || v_l (32 l octets) of RFC 6508 5.1 steps 1-5, for s = s1 || s2. */
int ms_sakke_htir_blocks(uint8_t *out, unsigned l, const uint8_t *s1, size_t n1,
                         const uint8_t *s2, size_t n2);

/* r = HashToIntegerRange(s1 || s2, q) as 16 plain limbs, r < q (l = 4 blocks). */
int ms_sakke_htir_q(uint64_t r[MS_LIMBS], const uint8_t *s1, size_t n1, const uint8_t *s2,
                    size_t n2);

/* mask = HashToIntegerRange(s, 2^128) as 16 big-endian octets: the low half of v_1. */
int ms_sakke_htir_mask(uint8_t mask[16], const uint8_t *s, size_t len);

#endif
