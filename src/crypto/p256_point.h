/*
 * P-256 point doubling and mixed addition, included by p256.c once per field
 * multiplication (P256_MUL, P256_SQR; names through P256_POINT_FN), so that each copy
 * has its multiplications inlined and the CPU check is made once per point operation
 * rather than once per multiplication. Not a header of its own: no include guard.
 */

/* r = 2a for a = -3 (Hankerson, Menezes and Vanstone's Algorithm 3.21: 4M + 4S and
 * ten additions, subtractions or halvings, four fewer than dbl-2001-b's constant
 * multiples, which cost as much as a fifth of the doubling; chained ones keep their
 * running value in registers). Infinity (Z = 0) stays
 * infinity. r may be a. */
static void P256_POINT_FN(point_double)(jacobian *r, const jacobian *a)
{
    fe t1, t2, t3, y2, z3;
    P256_SQR(t1, a->z);
    fe_sub(t2, a->x, t1);
    fe_add(t1, a->x, t1);
    P256_MUL(t2, t2, t1);
    fe_triple(t2, t2); /* alpha = 3 (X - Z^2)(X + Z^2) */
    fe_double(y2, a->y);
    P256_MUL(z3, y2, a->z); /* 2 Y Z */
    P256_SQR(y2, y2);
    P256_MUL(t3, y2, a->x); /* S = 4 X Y^2 */
    P256_SQR(y2, y2);
    fe_half(y2, y2); /* 8 Y^4 */
    P256_SQR(r->x, t2);
    fe_sub_twice(r->x, r->x, t3); /* alpha^2 - 2 S */
    fe_sub(t1, t3, r->x);
    P256_MUL(t1, t1, t2);
    fe_sub(r->y, t1, y2); /* alpha (S - X3) - 8 Y^4 */
    fe_copy(r->z, z3);
}

/* r = a + b for b affine (madd-2004-hmv: 8M + 3S and seven additions or subtractions,
 * five fewer than madd-2007-bl). Exceptional cases are the caller's: a at infinity
 * gives garbage; a = -b gives Z = 0 (infinity, correctly); a = b gives Z = 0 too,
 * wrongly, so callers rule it out (or, in _var code, test for it): both H = U2 - X1 and
 * R = S2 - Y1 are zero exactly then, and they go to h_out and r_out for that test. r
 * may be a. */
static void P256_POINT_FN(point_add_affine)(jacobian *r, const jacobian *a, const affine *b,
                                            fe h_out, fe r_out)
{
    fe t1, t2, h, rr, hh, hhh, v;
    P256_SQR(t1, a->z);
    P256_MUL(t2, t1, a->z);
    P256_MUL(t1, t1, b->x); /* U2 */
    P256_MUL(t2, t2, b->y); /* S2 */
    fe_sub(h, t1, a->x);
    fe_sub(rr, t2, a->y);
    if (h_out != NULL) {
        fe_copy(h_out, h);
        fe_copy(r_out, rr);
    }
    P256_MUL(r->z, a->z, h); /* a->z is not read after this */
    P256_SQR(hh, h);
    P256_MUL(hhh, hh, h);
    P256_MUL(v, hh, a->x); /* X1 H^2 */
    P256_MUL(t2, hhh, a->y); /* Y1 H^3, before r->y may overwrite a->y */
    P256_SQR(h, rr);
    fe_sub_twice_sub(r->x, h, v, hhh); /* R^2 - 2 X1 H^2 - H^3 */
    fe_sub(v, v, r->x);
    P256_MUL(v, v, rr);
    fe_sub(r->y, v, t2);
}
