/*
 * P-256 point doubling and mixed addition, included by p256.c once per field
 * multiplication (P256_MUL, P256_SQR; names through P256_POINT_FN), so that each copy
 * has its multiplications inlined and the CPU check is made once per point operation
 * rather than once per multiplication. Not a header of its own: no include guard.
 */

/* r = 2a (dbl-2001-b for a = -3, with Z3 = 2YZ: 4M + 4S). Infinity (Z = 0) stays
 * infinity. r may be a. */
static void P256_POINT_FN(point_double)(jacobian *r, const jacobian *a)
{
    fe delta, gamma, beta, alpha, t1, t2;
    P256_SQR(delta, a->z);
    P256_SQR(gamma, a->y);
    P256_MUL(beta, a->x, gamma);
    fe_sub(t1, a->x, delta);
    fe_add(t2, a->x, delta);
    P256_MUL(alpha, t1, t2);
    fe_add(t1, alpha, alpha);
    fe_add(alpha, alpha, t1); /* 3 (X - delta)(X + delta) */
    P256_MUL(t1, a->y, a->z);
    fe_add(r->z, t1, t1); /* 2 Y Z: a product for a square and three additions */
    fe_add(beta, beta, beta);
    fe_add(beta, beta, beta); /* 4 beta */
    P256_SQR(t1, alpha);
    fe_add(t2, beta, beta);
    fe_sub(r->x, t1, t2); /* alpha^2 - 8 beta */
    fe_sub(t1, beta, r->x);
    P256_MUL(t1, alpha, t1);
    P256_SQR(gamma, gamma);
    fe_add(gamma, gamma, gamma);
    fe_add(gamma, gamma, gamma);
    fe_add(gamma, gamma, gamma); /* 8 gamma^2 */
    fe_sub(r->y, t1, gamma);
}

/* r = a + b for b affine (madd-2007-bl with Z3 = 2 Z1 H: 8M + 3S). Exceptional cases are the caller's:
 * a at infinity gives garbage; a = -b gives Z = 0 (infinity, correctly); a = b gives
 * Z = 0 too, wrongly, so callers rule it out (or, in _var code, test for it). The H
 * and r of the formula go to h_out and r_out for that test. r may be a. */
static void P256_POINT_FN(point_add_affine)(jacobian *r, const jacobian *a, const affine *b,
                                            fe h_out, fe r_out)
{
    fe z1z1, u2, s2, h, hh, i, j, rr, v, t, y1j, z3;
    P256_SQR(z1z1, a->z);
    P256_MUL(u2, b->x, z1z1);
    P256_MUL(s2, b->y, a->z);
    P256_MUL(s2, s2, z1z1);
    fe_sub(h, u2, a->x);
    fe_sub(rr, s2, a->y);
    fe_add(rr, rr, rr);
    if (h_out != NULL) {
        fe_copy(h_out, h);
        fe_copy(r_out, rr);
    }
    P256_SQR(hh, h);
    fe_add(i, hh, hh);
    fe_add(i, i, i);
    P256_MUL(j, h, i);
    P256_MUL(v, a->x, i);
    P256_MUL(t, a->y, j);
    fe_add(y1j, t, t); /* 2 Y1 J */
    P256_MUL(z3, a->z, h);
    fe_add(z3, z3, z3); /* 2 Z1 H */
    P256_SQR(r->x, rr);
    fe_sub(r->x, r->x, j);
    fe_sub(r->x, r->x, v);
    fe_sub(r->x, r->x, v); /* r^2 - J - 2V */
    fe_sub(v, v, r->x);
    P256_MUL(v, rr, v);
    fe_sub(r->y, v, y1j);
    fe_copy(r->z, z3);
}

