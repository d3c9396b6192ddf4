/*
 * NIST P-256 group arithmetic of our own, for ECCSI (RFC 6507 with RFC 6509's curve).
 *
 * Field elements are 4 little-endian 64-bit limbs in Montgomery form (R = 2^256), always
 * fully reduced. Points are affine (x, y) or Jacobian (X, Y, Z) with Z = 0 for infinity.
 *
 * Unless a name ends in _var, a function runs in time independent of the values of its
 * arguments: those take secrets. The _var functions branch on their inputs and are
 * given public values only (verification, SSK validation's public half).
 *
 * The tables of multiples of G are built once per process, on first use (pthread_once).
 */
#ifndef MS_CRYPTO_P256_H
#define MS_CRYPTO_P256_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

#define MS_P256_BYTES 32       /* a field element or a scalar, big-endian */
#define MS_P256_POINT_BYTES 65 /* 0x04 || x || y */

typedef struct ms_p256_affine {
    uint64_t x[4], y[4];
} ms_p256_affine;

typedef struct ms_p256_jacobian {
    uint64_t x[4], y[4], z[4];
} ms_p256_jacobian;

/* Odd multiples P, 3P, ..., (2^(w-1) - 1)P of a public point, affine: its width-w
 * wNAF table, w = 5 (8 points, for 256-bit scalars) or 4 (4 points, for 128-bit ones,
 * where the smaller table saves more than the extra additions cost). */
#define MS_P256_TABLE_POINTS 8
typedef struct ms_p256_table {
    ms_p256_affine p[MS_P256_TABLE_POINTS];
    int width;
} ms_p256_table;

/* 0x04 || x || y into a point: MS_ERR_BAD_ENCODING for another prefix or a coordinate
 * not below p, MS_ERR_POINT_NOT_ON_CURVE off the curve. Cofactor 1, and infinity has no
 * such encoding, so a decoded point has order q. Public input (branches on it). */
ms_err ms_p256_decode(ms_p256_affine *out, const uint8_t in[MS_P256_POINT_BYTES]);
void ms_p256_encode(uint8_t out[MS_P256_POINT_BYTES], const ms_p256_affine *p);

/* ---- constant time: secret scalars ------------------------------------------------- */

/* out = [k]G for a big-endian k in [1, q-1]: a window-6 comb of odd signed digits over
 * a table of 43 x 32 odd multiples of G (88 KB), read whole at every step. Never
 * infinity for such k. */
void ms_p256_mul_g(ms_p256_jacobian *out, const uint8_t k[MS_P256_BYTES]);
/* Affine coordinates of a point that is not infinity (inversion by Fermat). */
void ms_p256_to_affine(ms_p256_affine *out, const ms_p256_jacobian *in);
/* All ones if a (not infinity) and b are the same point, compared without inverting. */
uint64_t ms_p256_equal(const ms_p256_jacobian *a, const ms_p256_affine *b);

/* All ones if a and b are the same point, neither at infinity (no inversion). */
uint64_t ms_p256_equal_jacobian(const ms_p256_jacobian *a, const ms_p256_jacobian *b);
/* r = -a. */
void ms_p256_negate(ms_p256_affine *r, const ms_p256_affine *a);
/* out = [k]P for a public point P and a secret big-endian k < q (k = 0: infinity, Z = 0):
 * signed window-4 digits over P's table of odd multiples, every entry read. */
void ms_p256_mul_point(ms_p256_jacobian *out, const ms_p256_affine *p,
                       const uint8_t k[MS_P256_BYTES]);
/* r = a + b for a not at infinity (a = b and a = -b handled; the latter gives Z = 0). */
void ms_p256_add_affine(ms_p256_jacobian *r, const ms_p256_jacobian *a, const ms_p256_affine *b);
/* out = a * b and out = a + b mod q for a, b < q, big-endian (out may be a or b). */
void ms_p256_scalar_mul(uint8_t out[MS_P256_BYTES], const uint8_t a[MS_P256_BYTES],
                        const uint8_t b[MS_P256_BYTES]);
void ms_p256_scalar_add(uint8_t out[MS_P256_BYTES], const uint8_t a[MS_P256_BYTES],
                        const uint8_t b[MS_P256_BYTES]);

/* ---- variable time: public values only ---------------------------------------------- */

/* The width-5 wNAF table of a public point; the width-w tables (w = 4 or 5) of n <= 4
 * points, with one inversion. */
void ms_p256_table_var(ms_p256_table *t, const ms_p256_affine *p);
void ms_p256_tables_var(ms_p256_table *t, const ms_p256_affine *p, size_t n, int width);

/* out = [g]G + sum [k_i]P_i for big-endian scalars (any 256-bit values; g may be NULL)
 * and the tables of the P_i (n <= 4): one run of 256 doublings shared by all terms
 * (Straus), G from a window-8 table. */
void ms_p256_mul_var(ms_p256_jacobian *out, const uint8_t g[MS_P256_BYTES],
                     const ms_p256_table *const *tables, const uint8_t *const *k, size_t n);

/* r = a + b for a public b (r may be a). */
void ms_p256_add_affine_var(ms_p256_jacobian *r, const ms_p256_jacobian *a,
                            const ms_p256_affine *b);

/* Affine coordinates; 0 (and out untouched) if in is infinity. */
int ms_p256_to_affine_var(ms_p256_affine *out, const ms_p256_jacobian *in);

/* 1 if in is not infinity and its affine x, as 32 big-endian octets, equals x. Needs no
 * inversion: X == x Z^2. */
int ms_p256_x_equals_var(const ms_p256_jacobian *in, const uint8_t x[MS_P256_BYTES]);

/* out = a * b mod q, and out = a mod q, for big-endian values (a, b any 256-bit). */
void ms_p256_scalar_mul_var(uint8_t out[MS_P256_BYTES], const uint8_t a[MS_P256_BYTES],
                            const uint8_t b[MS_P256_BYTES]);
void ms_p256_scalar_reduce_var(uint8_t out[MS_P256_BYTES], const uint8_t a[MS_P256_BYTES]);

/* Half-size scalars for checking [h]P = Q (P, Q, h public) with 128-bit multipliers:
 * c and d below 2^128, d > 0, with c = (-1)^neg d h mod q, where neg is the return
 * value (1 or 0). Then [h]P = Q exactly when [c]((-1)^neg P) = [d]Q. */
int ms_p256_half_scalars_var(uint8_t c[MS_P256_BYTES], uint8_t d[MS_P256_BYTES],
                             const uint8_t h[MS_P256_BYTES]);

/* ---- for the tests ------------------------------------------------------------------- */

/* The field operations the point formulas are made of, on big-endian values below p
 * (converted into and out of Montgomery form around the operation): the tests compare
 * them with OpenSSL's BIGNUM arithmetic. b and c are read only by the operations that
 * take them. */
typedef enum ms_p256_fe_op {
    MS_P256_FE_MUL,       /* a b */
    MS_P256_FE_SQR,       /* a^2 */
    MS_P256_FE_ADD,       /* a + b */
    MS_P256_FE_SUB,       /* a - b */
    MS_P256_FE_HALF,      /* a / 2 */
    MS_P256_FE_DOUBLE,    /* 2a */
    MS_P256_FE_TRIPLE,    /* 3a */
    MS_P256_FE_SUB_TWICE, /* a - 2b */
    MS_P256_FE_SUB_TWICE_SUB, /* a - 2b - c */
    MS_P256_FE_INV_VAR,   /* a^-1 (0 for 0), variable time */
    MS_P256_FE_INV        /* a^-1 (0 for 0), constant time */
} ms_p256_fe_op;
void ms_p256_fe_op_for_test(uint8_t out[MS_P256_BYTES], ms_p256_fe_op op,
                            const uint8_t a[MS_P256_BYTES], const uint8_t b[MS_P256_BYTES],
                            const uint8_t c[MS_P256_BYTES]);

#endif
