/*
 * The RFC 6508 Tate-Lichtenbaum pairing: the textbook reference and the cold
 * (unprepared) constant-time pairing. The prepared pairing is in pairing_prep.c and the
 * PF_p exponentiations in pairing_pfp.c.
 *
 * Both loops compute f_R([i]Q) for the Miller function of R over q - 1. Every line
 * value is only needed up to a factor in F_p (the final b/a of RFC 6508 2.1 discards
 * it), so vertical lines and projective denominators are simply dropped.
 *
 * The cold loop runs over the width-6 NAF of q - 1 (1019 doublings, 144 additions of
 * an odd multiple [d]R, |d| <= 31, each also multiplying by f_d([i]Q), precomputed;
 * width 5 and 7 both cost about 2% more). Per doubling: 7 M + 5 S for the point and the
 * tangent's value, 2 M for v^2 and 2.5 M for v l (lazy reduction); about 19 k
 * multiplications in all. (For a fixed first argument use the prepared pairing, 5 k
 * per evaluation.)
 */
#include <string.h>

#include "fp2.h"
#include "mikeysakke/crypto.h"
#include "pairing.h"

/* ---- public schedule: q - 1 -------------------------------------------------------- */

void ms_pairing_qm1(uint64_t n[MS_LIMBS])
{
    static const uint64_t one[MS_LIMBS] = {1};
    ms_u1024_sub(n, ms_mont_q.m, one);
}

unsigned ms_pairing_qm1_wnaf(int8_t d[MS_PAIRING_NAF_MAX], unsigned w)
{
    /* variable time is fine: q - 1 is a constant of the parameter set */
    uint64_t n[MS_LIMBS];
    ms_pairing_qm1(n);
    unsigned len = 0;
    const int64_t full = (int64_t)1 << w, half = full / 2;
    while (!ms_u1024_iszero(n) && len < MS_PAIRING_NAF_MAX) {
        int64_t digit = 0;
        if (n[0] & 1) {
            digit = (int64_t)(n[0] & (uint64_t)(full - 1));
            if (digit >= half)
                digit -= full;
            uint64_t t[MS_LIMBS] = {0};
            t[0] = (uint64_t)(digit < 0 ? -digit : digit);
            if (digit > 0)
                ms_u1024_sub(n, n, t);
            else
                ms_u1024_add(n, n, t);
        }
        d[len++] = (int8_t)digit;
        for (int i = 0; i < MS_LIMBS - 1; i++)
            n[i] = (n[i] >> 1) | (n[i + 1] << 63);
        n[MS_LIMBS - 1] >>= 1;
    }
    return len;
}

/* ---- the reference (RFC 6508 3.2, affine, one inversion per step) ------------------- */

static void ref_line(ms_fp2 *l, const ms_fp *slope, const ms_sakke_affine *c,
                    const ms_sakke_affine *q)
{
    /* l * (Qx + Cx) + (i Qy - Cy) */
    ms_fp t;
    ms_fp_add(&t, &q->x, &c->x);
    ms_fp_mul(&t, &t, slope);
    ms_fp_sub(&l->a, &t, &c->y);
    l->b = q->y;
}

int ms_pairing_ref_var(ms_fp *out, const ms_sakke_affine *r, const ms_sakke_affine *q)
{
    uint64_t n[MS_LIMBS];
    ms_pairing_qm1(n);
    int top = 1023;
    while (top > 0 && !((n[top / 64] >> (top % 64)) & 1))
        top--;

    ms_fp2 v, l;
    ms_fp2_set_one(&v);
    ms_sakke_affine c = *r;
    ms_fp one, three, t, u, slope;
    ms_fp_set_one(&one);
    ms_fp_add(&three, &one, &one);
    ms_fp_add(&three, &three, &one);
    for (int bit = top - 1; bit >= 0; bit--) {
        /* tangent: l = 3 (Cx^2 - 1) / (2 Cy) */
        if (ms_fp_iszero(&c.y))
            return -1;
        ms_fp_sqr(&t, &c.x);
        ms_fp_sub(&t, &t, &one);
        ms_fp_mul(&t, &t, &three);
        ms_fp_add(&u, &c.y, &c.y);
        ms_fp_inv(&u, &u);
        ms_fp_mul(&slope, &t, &u);
        ref_line(&l, &slope, &c, q);
        ms_fp2_sqr(&v, &v);
        ms_fp2_mul(&v, &v, &l);
        /* C = [2]C */
        ms_sakke_affine d;
        ms_fp_sqr(&t, &slope);
        ms_fp_sub(&t, &t, &c.x);
        ms_fp_sub(&d.x, &t, &c.x);
        ms_fp_sub(&t, &c.x, &d.x);
        ms_fp_mul(&t, &t, &slope);
        ms_fp_sub(&d.y, &t, &c.y);
        c = d;
        if ((n[bit / 64] >> (bit % 64)) & 1) {
            /* chord: l = (Cy - Ry) / (Cx - Rx) */
            ms_fp_sub(&u, &c.x, &r->x);
            if (ms_fp_iszero(&u))
                return -1;
            ms_fp_inv(&u, &u);
            ms_fp_sub(&t, &c.y, &r->y);
            ms_fp_mul(&slope, &t, &u);
            ref_line(&l, &slope, &c, q);
            ms_fp2_mul(&v, &v, &l);
            /* C = C + R */
            ms_fp_sqr(&t, &slope);
            ms_fp_sub(&t, &t, &c.x);
            ms_fp_sub(&d.x, &t, &r->x);
            ms_fp_sub(&t, &c.x, &d.x);
            ms_fp_mul(&t, &t, &slope);
            ms_fp_sub(&d.y, &t, &c.y);
            c = d;
        }
    }
    /* t = v^c with c = 4, then b/a */
    ms_fp2_sqr(&v, &v);
    ms_fp2_sqr(&v, &v);
    if (ms_fp_iszero(&v.a))
        return -1;
    ms_fp_inv(&u, &v.a);
    ms_fp_mul(out, &v.b, &u);
    return 0;
}

/* ---- the cold pairing: Jacobian Miller loop over R, lines at [i]Q ------------------- */

/* C = [2]C (Jacobian, a = -3) and the tangent at C evaluated at [i]Q, scaled by
 * 2 Y Z^3 (an F_p factor):
 *   l = alpha (Z^2 Qx + X) - 2 Y^2 + i (2YZ) Z^2 Qy,  alpha = 3 (X - Z^2)(X + Z^2).
 * 7 M + 5 S, one reduction fewer with Y3 reduced lazily. */
static void dbl_line(ms_sakke_jac *c, ms_fp2 *l, const ms_fp *qx, const ms_fp *qy)
{
    ms_fp delta, gamma, gamma2, beta, alpha, t0, t1, z3;
    ms_fp_sqr(&delta, &c->z);
    ms_fp_sqr(&gamma, &c->y);
    ms_fp_mul(&beta, &c->x, &gamma);
    ms_fp_sub(&t0, &c->x, &delta);
    ms_fp_add(&t1, &c->x, &delta);
    ms_fp_mul(&t0, &t0, &t1);
    ms_fp_add(&alpha, &t0, &t0);
    ms_fp_add(&alpha, &alpha, &t0);
    ms_fp_add(&z3, &c->y, &c->z); /* Z3 = (Y + Z)^2 - Y^2 - Z^2 = 2YZ */
    ms_fp_sqr(&z3, &z3);
    ms_fp_sub(&z3, &z3, &gamma);
    ms_fp_sub(&z3, &z3, &delta);

    ms_fp_mul(&t0, &delta, qx);
    ms_fp_add(&t0, &t0, &c->x);
    ms_fp_mul(&t0, &t0, &alpha);
    ms_fp_add(&gamma2, &gamma, &gamma);
    ms_fp_sub(&l->a, &t0, &gamma2);
    ms_fp_mul(&t1, &z3, &delta);
    ms_fp_mul(&l->b, &t1, qy);

    /* X3 = alpha^2 - 8 beta, Y3 = alpha (4 beta - X3) - 8 gamma^2, the latter reduced
     * once: 8 gamma^2 = 2 (2 gamma)^2 */
    ms_fp_add(&beta, &beta, &beta);
    ms_fp_add(&beta, &beta, &beta);
    ms_fp_sqr(&t0, &alpha);
    ms_fp_sub(&t0, &t0, &beta);
    ms_fp_sub(&c->x, &t0, &beta);
    ms_fp_sub(&t0, &beta, &c->x);
    ms_fp_mul_sub_mul(&c->y, &t0, &alpha, 2, &gamma2, &gamma2);
    c->z = z3;
}

/* C = C + A (A affine, never +-C in the Miller schedule) and the chord through C and A
 * evaluated at [i]Q, scaled by Z3:  l = r (Qx + xa) - Z3 ya + i Z3 Qy with
 * r = ya Z^3 - Y, H = xa Z^2 - X, Z3 = Z H. sum = Qx + xa. 11 M + 3 S, two of them
 * differences of products reduced once. */
static void add_line(ms_sakke_jac *c, ms_fp2 *l, const ms_fp *xa, const ms_fp *ya,
                     const ms_fp *sum, const ms_fp *qy)
{
    ms_fp zz, u2, s2, h, rr, hh, hhh, vv, t;
    ms_fp_sqr(&zz, &c->z);
    ms_fp_mul(&u2, xa, &zz);
    ms_fp_mul(&s2, &c->z, &zz);
    ms_fp_mul(&s2, &s2, ya);
    ms_fp_sub(&h, &u2, &c->x);
    ms_fp_sub(&rr, &s2, &c->y);
    ms_fp_sqr(&hh, &h);
    ms_fp_mul(&hhh, &h, &hh);
    ms_fp_mul(&vv, &c->x, &hh);
    ms_fp_mul(&c->z, &c->z, &h);
    /* X3 = r^2 - H^3 - 2V, Y3 = r (V - X3) - Y H^3 */
    ms_fp_sqr(&t, &rr);
    ms_fp_sub(&t, &t, &hhh);
    ms_fp_sub(&t, &t, &vv);
    ms_fp_sub(&t, &t, &vv);
    ms_fp_sub(&vv, &vv, &t);
    c->x = t;
    ms_fp_mul_sub_mul(&c->y, &vv, &rr, 1, &hhh, &c->y);
    ms_fp_mul_sub_mul(&l->a, &rr, sum, 1, &c->z, ya);
    ms_fp_mul(&l->b, &c->z, qy);
}

int ms_pairing_final(ms_fp *out, const ms_fp2 *f)
{
    /* t = f^4 (c = (p + 1)/q = 4), then the PF_p representative b/a. a is secret (in
     * decapsulation it determines the SSV) so the inversion is blinded. */
    ms_fp2 t;
    ms_fp inv;
    ms_fp2_sqr(&t, f);
    ms_fp2_sqr(&t, &t);
    int ret = ms_fp_inv_blinded(&inv, &t.a);
    ms_fp_mul(out, &t.b, &inv);
    ms_wipe(&t, sizeof t);
    ms_wipe(&inv, sizeof inv);
    return ret;
}

/* Odd multiples [j]R (j = 1, 3, ..., 2^(W-1) - 1) in affine coordinates and their Miller
 * values f_j([i]Q) normalised to 1 + i rho_j (rho_j is the PF_p representative), for the
 * width-W NAF of the cold loop. */
#define COLD_W 6
#define COLD_NODD (1 << (COLD_W - 2))

typedef struct cold_pre {
    ms_sakke_affine pt[COLD_NODD]; /* [2j+1]R */
    ms_fp negy[COLD_NODD];         /* -y of [2j+1]R */
    ms_fp sum[COLD_NODD];          /* Qx + x([2j+1]R), for the chord */
    ms_fp rho[COLD_NODD];          /* f_{2j+1}([i]Q) ~ 1 + i rho; rho[0] = 0 */
} cold_pre;

static int cold_precompute(cold_pre *pre, const ms_sakke_affine *r, const ms_sakke_affine *q)
{
    /* [j]R = [j-1]R + R along the chain j = 2..2^(W-1)-1, with f_j = f_{j-1} l_{(j-1)R,R}
     * (f_2 = the tangent at R); then one batch inversion gives the affine odd multiples
     * and the normalised f's. */
    ms_sakke_jac c, odd[COLD_NODD];
    ms_fp2 f, l, fodd[COLD_NODD];
    ms_fp sum1;
    c.x = r->x;
    c.y = r->y;
    ms_fp_set_one(&c.z);
    ms_fp_add(&sum1, &q->x, &r->x);
    dbl_line(&c, &f, &q->x, &q->y);
    for (unsigned j = 3; j < 2 * COLD_NODD; j++) {
        add_line(&c, &l, &r->x, &r->y, &sum1, &q->y);
        ms_fp2_mul(&f, &f, &l);
        if (j % 2) {
            odd[j / 2] = c;
            fodd[j / 2] = f;
        }
    }
    /* invert Z_j and Re f_j for j = 1..NODD-1 together */
    enum { NB = 2 * (COLD_NODD - 1) };
    ms_fp el[NB], pre_[NB], inv;
    for (unsigned j = 1; j < COLD_NODD; j++) {
        el[2 * (j - 1)] = odd[j].z;
        el[2 * (j - 1) + 1] = fodd[j].a;
    }
    pre_[0] = el[0];
    for (unsigned i = 1; i < NB; i++)
        ms_fp_mul(&pre_[i], &pre_[i - 1], &el[i]);
    int ret = ms_fp_inv_blinded(&inv, &pre_[NB - 1]);
    for (unsigned i = NB; i-- > 0;) {
        ms_fp t;
        if (i > 0) {
            ms_fp_mul(&t, &inv, &pre_[i - 1]);
            ms_fp_mul(&inv, &inv, &el[i]);
        } else {
            t = inv;
        }
        el[i] = t; /* el[i]^-1 */
    }
    pre->pt[0] = *r;
    ms_fp_set_zero(&pre->rho[0]);
    for (unsigned j = 1; j < COLD_NODD; j++) {
        ms_fp zi = el[2 * (j - 1)], zi2;
        ms_fp_sqr(&zi2, &zi);
        ms_fp_mul(&pre->pt[j].x, &odd[j].x, &zi2);
        ms_fp_mul(&zi2, &zi2, &zi);
        ms_fp_mul(&pre->pt[j].y, &odd[j].y, &zi2);
        ms_fp_mul(&pre->rho[j], &fodd[j].b, &el[2 * (j - 1) + 1]);
    }
    for (unsigned j = 0; j < COLD_NODD; j++) {
        ms_fp_neg(&pre->negy[j], &pre->pt[j].y);
        ms_fp_add(&pre->sum[j], &q->x, &pre->pt[j].x);
    }
    ms_wipe(&c, sizeof c);
    ms_wipe(odd, sizeof odd);
    ms_wipe(&f, sizeof f);
    ms_wipe(&l, sizeof l);
    ms_wipe(fodd, sizeof fodd);
    ms_wipe(el, sizeof el);
    ms_wipe(pre_, sizeof pre_);
    ms_wipe(&inv, sizeof inv);
    return ret;
}

int ms_pairing(ms_fp *out, const ms_sakke_affine *r, const ms_sakke_affine *q)
{
    uint64_t in_eq;
    return ms_pairing_order_checked(out, &in_eq, r, q);
}

int ms_pairing_order_checked(ms_fp *out, uint64_t *r_in_eq, const ms_sakke_affine *r,
                             const ms_sakke_affine *q)
{
    int8_t naf[MS_PAIRING_NAF_MAX];
    unsigned len = ms_pairing_qm1_wnaf(naf, COLD_W);
    cold_pre pre;
    int ret = cold_precompute(&pre, r, q);

    /* The schedule (naf) is public; only the arithmetic sees the points. The top digit
     * d gives the start C = [d]R, v = f_d. Each addition of [d]R multiplies by the chord
     * and by f_d, and f_-d ~ conj(f_d) (f_-d = 1 / (f_d v_dR) and v_dR([i]Q) is in F_p). */
    ms_sakke_jac c;
    ms_fp2 v, l;
    ms_fp rho;
    unsigned top = (unsigned)naf[len - 1] / 2;
    c.x = pre.pt[top].x;
    c.y = pre.pt[top].y;
    ms_fp_set_one(&c.z);
    ms_fp_set_one(&v.a);
    v.b = pre.rho[top];
    for (unsigned j = len - 1; j-- > 0;) {
        dbl_line(&c, &l, &q->x, &q->y);
        ms_fp2_sqr(&v, &v);
        ms_fp2_mul(&v, &v, &l);
        int d = naf[j];
        if (d != 0) {
            unsigned idx = (unsigned)(d < 0 ? -d : d) / 2;
            add_line(&c, &l, &pre.pt[idx].x, d > 0 ? &pre.pt[idx].y : &pre.negy[idx],
                     &pre.sum[idx], &q->y);
            ms_fp2_mul(&v, &v, &l);
            if (idx != 0) {
                if (d > 0)
                    rho = pre.rho[idx];
                else
                    ms_fp_neg(&rho, &pre.rho[idx]);
                ms_fp2_mul_pfp(&v, &v, &rho);
            }
        }
    }
    /* The loop has computed C = [q-1]R exactly: for any R on the curve no intermediate
     * multiple [m]R (0 < m < q) is infinity or meets a degenerate addition, since R's
     * order is a multiple of q. So [q]R = 0 exactly when C = -R. */
    ms_sakke_affine neg_r = *r;
    ms_fp_neg(&neg_r.y, &r->y);
    *r_in_eq = ms_sakke_jac_eq_affine(&c, &neg_r);
    if (ms_pairing_final(out, &v) != 0)
        ret = -1;
    ms_wipe(&neg_r, sizeof neg_r);
    ms_wipe(&pre, sizeof pre);
    ms_wipe(&c, sizeof c);
    ms_wipe(&v, sizeof v);
    ms_wipe(&l, sizeof l);
    ms_wipe(&rho, sizeof rho);
    return ret;
}
