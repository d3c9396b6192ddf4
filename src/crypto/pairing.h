/*
 * The Tate-Lichtenbaum pairing of RFC 6508 (parameter set 1, c = (p+1)/q = 4) and
 * arithmetic in F_p^2 and PF_p.
 *
 * <R, Q> = f_R([i]Q)^c mod F_p*, represented in PF_p by the single F_p value x2/x1 of
 * t = x1 + i x2 (RFC 6508 2.1). Because R and Q both lie in the cyclic group E(F_p)[q]
 * and [i] is the distortion map, <R, Q> = <Q, R>: decapsulation evaluates the Miller
 * function of the receiver's fixed RSK at the incoming point, so the RSK's line
 * coefficients can be computed once per key period ("prepared").
 */
#ifndef MS_CRYPTO_PAIRING_H
#define MS_CRYPTO_PAIRING_H

#include "sakke_curve.h"

/* F_p^2 = F_p[i]/(i^2 + 1), element a + i b, both parts in Montgomery form. */
typedef struct ms_fp2 {
    ms_fp a, b;
} ms_fp2;

/* The textbook pairing exactly as written in RFC 6508 3.2: affine Miller loop with one
 * inversion per step. Variable time, slow; the reference the fast paths are tested
 * against. Returns -1 if the loop meets an impossible case (inputs not in E[q]). */
int ms_pairing_ref_var(ms_fp *out, const ms_sakke_affine *r, const ms_sakke_affine *q);

/* <R, Q> by the fast projective Miller loop, constant time in both points.
 * Returns -1 if the blinded final inversion fails: the RNG failed, or the Miller value
 * was zero, which an R outside E[q] (of order 2, say) can cause. */
int ms_pairing(ms_fp *out, const ms_sakke_affine *r, const ms_sakke_affine *q);

/* As ms_pairing, for any r on the curve, and also reports (all-ones mask in *r_in_eq)
 * whether r lies in E(F_p)[q], at no extra cost: the Miller loop's point ends at
 * [q-1]r. (RSK validation now uses the KMS's prepared P and Z and ms_sakke_point_in_eq.) */
int ms_pairing_order_checked(ms_fp *out, uint64_t *r_in_eq, const ms_sakke_affine *r,
                             const ms_sakke_affine *q);

/* The Miller-loop line coefficients of a fixed first argument K (the RSK). Secret if K
 * is; allocate ms_pairing_prepared_size() octets (from ms_secure_alloc for an RSK). */
typedef struct ms_pairing_prepared ms_pairing_prepared;
size_t ms_pairing_prepared_size(void);
int ms_pairing_prepare(ms_pairing_prepared *pp, const ms_sakke_affine *k);
/* <K, Q> (= <Q, K>) with K prepared; constant time. -1 only on RNG failure. */
int ms_pairing_prepared_eval(ms_fp *out, const ms_pairing_prepared *pp, const ms_sakke_affine *q);

/* PF_p exponentiation: out = g^k where g is given by its PF_p representative and k is a
 * secret scalar < q; constant time. */
int ms_pfp_pow(ms_fp *out, const ms_fp *g, const uint64_t k[MS_LIMBS]);

/* Fixed-base table for g = <P, P> (public content, secret exponents). */
typedef struct ms_pfp_table ms_pfp_table;
size_t ms_pfp_table_size(void);
int ms_pfp_table_build(ms_pfp_table *t, const ms_fp *g);
int ms_pfp_table_pow(ms_fp *out, const ms_pfp_table *t, const uint64_t k[MS_LIMBS]);
/* The same without the final inversion: g^k is the class of out = a + i b (a != 0), so
 * its representative is b/a. For callers that batch this inversion with another one
 * (encapsulation also converts [r]Q to affine). Constant time; never fails for a built
 * table (-1 only for one that is not). */
int ms_pfp_table_pow_fp2(ms_fp2 *out, const ms_pfp_table *t, const uint64_t k[MS_LIMBS]);

#endif
