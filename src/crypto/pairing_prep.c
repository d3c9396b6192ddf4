/*
 * The prepared pairing: <K, R> for a fixed first argument K (the RSK).
 *
 * The Miller loop for f_K over q - 1 is cut into blocks. A block takes the running
 * point C = [m]K to [2^k m + e]K (k in {1, 2, 3}, |e| < 2^k) and multiplies the Miller
 * value by one function h instead of by k to 2k separate lines:
 *
 *     v <- v^(2^k) * h([i]R),   h = (f_{2^k m + e} / f_m^(2^k)) * (x - x_new)
 *
 * up to F_p factors. h is regular away from O, with zeros 2^k (C) + |e| (sign(e) K) +
 * (-C_new), so it lies in L(n O) with n = 2^k + |e| + 1: h = r(x) + y s(x) with one
 * monomial of pole order n (coefficient 1, because every line is y - lambda x - mu)
 * and n - 1 other coefficients. At [i]R = (-Rx, i Ry) it costs n - 2 products given
 * the powers of -Rx and Ry (-Rx)^j, summed with lazy reduction (one reduction for r,
 * one for s). An octupling block (k = 3, e = 0) costs 6 M of squarings, 4.5 M for h
 * and 2.5 M for the product: 4.3 M per doubling, against 4.5 M for quadrupling blocks
 * and 6 M for a line per doubling. The block boundaries and the digits e are chosen by
 * a small dynamic program over the public q - 1 that minimises this cost.
 *
 * Preparation walks the same schedule over K in Jacobian coordinates, keeping for each
 * step the slope's numerator and the new Z (the slope is num / Z); one blinded
 * inversion per batch of 512 steps (Montgomery's trick) gives the affine slopes, from
 * which the affine points follow by the chord-and-tangent formulas. Each h is then built
 * by multiplying lines in F_p[x, y]/(y^2 - x^3 + 3x) and dividing exactly by verticals.
 *
 * Costs (F_p multiplications, counting a wide product or a reduction as half of
 * one): evaluation about 5.9 k including the final exponentiation, preparation about
 * 30 k. 399 blocks, 2884 stored coefficients (369 KiB).
 */
#include <string.h>

#include "fp2.h"
#include "mikeysakke/crypto.h"
#include "pairing.h"
#include "secmem.h"

/* ---- the schedule ------------------------------------------------------------------- */

#define SCHED_MAX 1100 /* blocks; at most one per bit of q - 1 */
#define PP_NCOEF 2884  /* sum of (n - 1) over the blocks of the schedule for q - 1 */
#define KMAX 3         /* the longest block: 2^KMAX doublings */
#define PP_MAGIC 0x6d7370617270ULL

typedef struct sched {
    unsigned nblocks;
    unsigned ncoef;
    uint8_t k[SCHED_MAX];
    int8_t e[SCHED_MAX];
} sched;

static unsigned bits_at(const uint64_t n[MS_LIMBS], unsigned i, unsigned k)
{
    unsigned v = 0;
    for (unsigned j = 0; j < k; j++) {
        unsigned b = i + j;
        if (b < 64 * MS_LIMBS)
            v |= (unsigned)((n[b / 64] >> (b % 64)) & 1) << j;
    }
    return v;
}

/* True if floor(n / 2^i) + c == 1 (the start of the chain, C = K). */
static int is_one(unsigned i, unsigned c, unsigned nbits)
{
    if (i >= nbits)
        return c == 1;
    return c == 0 && i + 1 == nbits;
}

/* The pole order n = 2^k + |e| + 1 of a block's function h (see above). */
static unsigned block_order(unsigned k, int e)
{
    return (1u << k) + (unsigned)(e < 0 ? -e : e) + 1;
}

/* Stored coefficient counts of a block with pole order n: r_0..r_{nr-1} then
 * s_0..s_{ns-1}; the monomial of order n (x^(n/2) or y x^((n-3)/2)) has coefficient 1. */
static void block_shape(unsigned n, unsigned *nr, unsigned *ns)
{
    if (n % 2 == 0) {
        *nr = n / 2;
        *ns = (n - 2) / 2;
    } else {
        *nr = (n + 1) / 2;
        *ns = (n - 3) / 2;
    }
}

/* Cost of a sum of `terms` products reduced once, in half multiplications: a wide
 * product and a reduction each cost about half a multiplication. */
static unsigned sum_cost(unsigned terms)
{
    return terms == 0 ? 0 : terms == 1 ? 2 : terms + 1;
}

/* Evaluation cost of a block, in half multiplications (see block_shape) */
static unsigned block_cost(unsigned k, int e, int first)
{
    unsigned n = block_order(k, e), nr, ns;
    block_shape(n, &nr, &ns);
    unsigned h = sum_cost(nr - 1) + sum_cost(ns);
    /* first block: v = h, no squarings and no product; else k squarings in F_p^2
     * (2 M each) and one product (3 wide products, 2 reductions) */
    return first ? h : 4 * k + h + 5;
}

/* Public computation over q - 1 (variable time is fine). State (i, c) stands for the
 * value floor((q-1) / 2^i) + c still to be reached from 1; a block (k, e) from it leads
 * to (i + k, c') with value (V - e) / 2^k. */
static void schedule(sched *s)
{
    uint64_t n[MS_LIMBS];
    ms_pairing_qm1(n);
    unsigned nbits = 1024;
    while (nbits > 0 && !((n[(nbits - 1) / 64] >> ((nbits - 1) % 64)) & 1))
        nbits--;

    enum { IMAX = 64 * MS_LIMBS + 4 };
    static const unsigned INF = 0xffffffffu;
    unsigned cost[IMAX][2];
    uint8_t ck[IMAX][2] = {{0}};
    int8_t ce[IMAX][2] = {{0}};
    for (unsigned i = IMAX; i-- > 0;) {
        for (unsigned c = 0; c < 2; c++) {
            cost[i][c] = INF;
            if (is_one(i, c, nbits)) {
                cost[i][c] = 0;
                continue;
            }
            if (i >= nbits && c == 0)
                continue; /* value 0: unreachable */
            for (unsigned k = 1; k <= KMAX; k++) {
                if (i + k >= IMAX)
                    continue;
                unsigned mask = (1u << k) - 1;
                unsigned low = bits_at(n, i, k) + c;
                unsigned r = low & mask, cout = low >> k;
                for (int opt = 0; opt < 2; opt++) {
                    int e;
                    unsigned c2;
                    if (opt == 0) {
                        e = (int)r;
                        c2 = cout;
                    } else {
                        if (r == 0)
                            continue;
                        e = (int)r - (int)(1u << k);
                        c2 = cout + 1;
                    }
                    if (c2 > 1 || cost[i + k][c2] == INF)
                        continue;
                    int first = is_one(i + k, c2, nbits);
                    unsigned total = cost[i + k][c2] + block_cost(k, e, first);
                    /* ties: fewer stored coefficients */
                    int ae = e < 0 ? -e : e, aold = ce[i][c] < 0 ? -ce[i][c] : ce[i][c];
                    if (total < cost[i][c] || (total == cost[i][c] && ae < aold)) {
                        cost[i][c] = total;
                        ck[i][c] = (uint8_t)k;
                        ce[i][c] = (int8_t)e;
                    }
                }
            }
        }
    }
    /* Walk from (0, 0): that gives the blocks last-first; store them in Miller order. */
    unsigned i = 0, c = 0, nb = 0;
    uint8_t rk[SCHED_MAX];
    int8_t re[SCHED_MAX];
    while (!is_one(i, c, nbits) && nb < SCHED_MAX) {
        unsigned k = ck[i][c];
        int e = ce[i][c];
        rk[nb] = (uint8_t)k;
        re[nb] = (int8_t)e;
        nb++;
        unsigned low = bits_at(n, i, k) + c;
        unsigned cout = low >> k;
        c = cout + (e < 0 ? 1u : 0u);
        i += k;
    }
    s->nblocks = nb;
    s->ncoef = 0;
    for (unsigned b = 0; b < nb; b++) {
        s->k[b] = rk[nb - 1 - b];
        s->e[b] = re[nb - 1 - b];
        s->ncoef += block_order(s->k[b], s->e[b]) - 1;
    }
}


/* The schedule is public and is kept with the coefficients, so evaluation need not
 * rerun the dynamic program (about 70 us); evaluation checks its shape before use. */
struct ms_pairing_prepared {
    uint64_t magic;
    sched sc;
    ms_fp c[PP_NCOEF];
};

/* All-or-nothing shape check of a stored schedule (public data). */
static int sched_valid(const sched *s)
{
    unsigned total = 0;
    if (s->nblocks == 0 || s->nblocks > SCHED_MAX)
        return 0;
    for (unsigned b = 0; b < s->nblocks; b++) {
        unsigned k = s->k[b];
        int e = s->e[b];
        unsigned ae = (unsigned)(e < 0 ? -e : e);
        if (k < 1 || k > KMAX || ae >= (1u << k))
            return 0;
        total += block_order(k, e) - 1;
    }
    return total == s->ncoef && total <= PP_NCOEF;
}

size_t ms_pairing_prepared_size(void)
{
    return sizeof(ms_pairing_prepared);
}

/* ---- functions on the curve: h = r(x) + y s(x) ---------------------------------------- */

/* Polynomials over F_p with public shape: n coefficients, of which those below lo were
 * not computed (a division that follows does not need them), and `one` set when the top
 * coefficient is exactly 1 (the leading monomial of every h is monic), so products with
 * it are additions. */
#define PMAX 12 /* the largest intermediate polynomial has 8 coefficients */

typedef struct poly {
    unsigned n, lo, one;
    ms_fp c[PMAX];
} poly;

typedef struct hfun {
    poly r, s;
} hfun;

/* acc += a_i b_j, skipping the multiplication when a factor is the monic top */
static void acc_mul(ms_fp *acc, const poly *a, unsigned i, const poly *b, unsigned j)
{
    int a1 = a->one && i + 1 == a->n, b1 = b->one && j + 1 == b->n;
    if (a1 && b1) {
        ms_fp one;
        ms_fp_set_one(&one);
        ms_fp_add(acc, acc, &one);
    } else if (a1) {
        ms_fp_add(acc, acc, &b->c[j]);
    } else if (b1) {
        ms_fp_add(acc, acc, &a->c[i]);
    } else {
        ms_fp m;
        ms_fp_mul(&m, &a->c[i], &b->c[j]);
        ms_fp_add(acc, acc, &m);
    }
}

/* out = a b, coefficients from lo up (a, b complete) */
static void poly_mul(poly *out, const poly *a, const poly *b, unsigned lo)
{
    poly t;
    t.n = a->n + b->n - 1;
    t.lo = lo;
    t.one = a->one && b->one;
    for (unsigned k = 0; k < t.n; k++) {
        ms_fp_set_zero(&t.c[k]);
        if (k < lo)
            continue;
        for (unsigned i = 0; i < a->n; i++)
            if (k >= i && k - i < b->n)
                acc_mul(&t.c[k], a, i, b, k - i);
    }
    *out = t;
}

/* out = a^2, coefficients from lo up: the cross products once, doubled */
static void poly_sqr(poly *out, const poly *a, unsigned lo)
{
    poly t;
    t.n = 2 * a->n - 1;
    t.lo = lo;
    t.one = a->one;
    for (unsigned k = 0; k < t.n; k++) {
        ms_fp_set_zero(&t.c[k]);
        if (k < lo)
            continue;
        for (unsigned i = 0; 2 * i < k; i++)
            if (k - i < a->n)
                acc_mul(&t.c[k], a, i, a, k - i);
        ms_fp_add(&t.c[k], &t.c[k], &t.c[k]);
        if (k % 2 == 0)
            acc_mul(&t.c[k], a, k / 2, a, k / 2);
    }
    *out = t;
}

static void poly_add(poly *out, const poly *a, const poly *b)
{
    poly t;
    t.n = a->n > b->n ? a->n : b->n;
    t.lo = a->lo > b->lo ? a->lo : b->lo;
    t.one = a->n > b->n ? a->one : b->n > a->n ? b->one : 0;
    for (unsigned k = 0; k < t.n; k++) {
        if (k < a->n && k < b->n)
            ms_fp_add(&t.c[k], &a->c[k], &b->c[k]);
        else
            t.c[k] = k < a->n ? a->c[k] : b->c[k];
    }
    *out = t;
}

/* out = (x^3 - 3x) a (a complete) */
static void poly_mul_curve(poly *out, const poly *a)
{
    poly t;
    t.n = a->n + 3;
    t.lo = 0;
    t.one = a->one;
    for (unsigned k = 0; k < t.n; k++) {
        ms_fp_set_zero(&t.c[k]);
        if (k >= 3 && k - 3 < a->n)
            t.c[k] = a->c[k - 3];
        if (k >= 1 && k - 1 < a->n) {
            ms_fp m;
            ms_fp_add(&m, &a->c[k - 1], &a->c[k - 1]);
            ms_fp_add(&m, &m, &a->c[k - 1]);
            ms_fp_sub(&t.c[k], &t.c[k], &m);
        }
    }
    *out = t;
}

/* Exact division by (x - x0), from the top: q_{n-2} = a_{n-1}, q_{j-1} = a_j + x0 q_j.
 * The remainder is zero by construction and is not computed, nor are quotient
 * coefficients below lo - 1 (q_j needs a_{j+1}). */
static void poly_div_lin(poly *a, const ms_fp *x0)
{
    unsigned n = a->n;
    unsigned lo = a->lo > 0 ? a->lo - 1 : 0;
    ms_fp q = a->c[n - 1];
    int q_one = (int)a->one;
    for (unsigned j = n - 1; j-- > lo;) {
        ms_fp next = a->c[j];
        a->c[j] = q;
        if (j == lo)
            break;
        if (q_one)
            q = *x0;
        else
            ms_fp_mul(&q, &q, x0);
        q_one = 0;
        ms_fp_add(&q, &q, &next);
    }
    a->n = n - 1;
    a->lo = lo;
}

/* h = h^2 (y + L) / (x - x0)^2 with L = -mu - lambda x the rest of the tangent line
 * y - lambda x - mu at the point with abscissa x0 (h^2 line vanishes twice at both
 * points above x0):
 *   h^2 = (r^2 + F s^2) + y (2 r s) = A + y B,  (A + yB)(L + y) = (A L + F B) + y (A + B L). */
static void h_dbl(hfun *h, const poly *line, const ms_fp *x0)
{
    poly a, b, t;
    poly_mul(&b, &h->r, &h->s, 0);
    poly_add(&b, &b, &b);
    poly_sqr(&a, &h->s, 0);
    poly_mul_curve(&a, &a);
    poly_sqr(&t, &h->r, 1);
    poly_add(&a, &a, &t);
    poly_mul(&h->r, &a, line, 2);
    poly_mul_curve(&t, &b);
    poly_add(&h->r, &h->r, &t);
    poly_mul(&t, &b, line, 2);
    poly_add(&h->s, &a, &t);
    poly_div_lin(&h->r, x0);
    poly_div_lin(&h->s, x0);
    poly_div_lin(&h->r, x0);
    poly_div_lin(&h->s, x0);
}

/* h = h (y + L) / (x - x0) for the chord through the point with abscissa x0 */
static void h_add(hfun *h, const poly *line, const ms_fp *x0)
{
    poly a, t;
    poly_mul(&a, &h->r, line, 1);
    poly_mul_curve(&t, &h->s);
    poly_add(&a, &a, &t);
    poly_mul(&t, &h->s, line, 1);
    poly_add(&h->s, &h->r, &t);
    h->r = a;
    poly_div_lin(&h->r, x0);
    poly_div_lin(&h->s, x0);
}

/* ---- preparation ------------------------------------------------------------------------ */

#define CHUNK 512 /* Miller steps per batch inversion */

typedef struct scratch {
    ms_fp num[CHUNK]; /* slope numerators, then slopes lambda */
    ms_fp zn[CHUNK];  /* Z of each step's result, then its inverse */
    ms_fp pre[CHUNK]; /* prefix products, then mu */
    ms_fp x0[CHUNK];  /* affine abscissa of each step's input point */
    uint8_t dbl[CHUNK];
} scratch;

/* Jacobian doubling (a = -3); num = 3 (X^2 - Z^4), so the tangent slope is num / Z3. */
static void jac_dbl(ms_fp *x, ms_fp *y, ms_fp *z, ms_fp *num)
{
    ms_fp delta, gamma, beta, alpha, t0, t1;
    ms_fp_sqr(&delta, z);
    ms_fp_sqr(&gamma, y);
    ms_fp_mul(&beta, x, &gamma);
    ms_fp_sub(&t0, x, &delta);
    ms_fp_add(&t1, x, &delta);
    ms_fp_mul(&t0, &t0, &t1);
    ms_fp_add(&alpha, &t0, &t0);
    ms_fp_add(&alpha, &alpha, &t0);
    ms_fp_add(&t0, y, z);
    ms_fp_sqr(&t0, &t0);
    ms_fp_sub(&t0, &t0, &gamma);
    ms_fp_sub(z, &t0, &delta);
    ms_fp_add(&beta, &beta, &beta);
    ms_fp_add(&beta, &beta, &beta);
    ms_fp_sqr(&t0, &alpha);
    ms_fp_sub(&t0, &t0, &beta);
    ms_fp_sub(x, &t0, &beta);
    ms_fp_sub(&t1, &beta, x);
    ms_fp_mul(&t1, &t1, &alpha);
    ms_fp_sqr(&gamma, &gamma);
    ms_fp_add(&gamma, &gamma, &gamma);
    ms_fp_add(&gamma, &gamma, &gamma);
    ms_fp_add(&gamma, &gamma, &gamma);
    ms_fp_sub(y, &t1, &gamma);
    *num = alpha;
}

/* Jacobian + affine (xa, ya), never +-each other in the schedule; num = ya Z^3 - Y, so
 * the chord slope is num / Z3. */
static void jac_add(ms_fp *x, ms_fp *y, ms_fp *z, ms_fp *num, const ms_fp *xa, const ms_fp *ya)
{
    ms_fp zz, u2, s2, h, rr, hh, hhh, vv, t;
    ms_fp_sqr(&zz, z);
    ms_fp_mul(&u2, xa, &zz);
    ms_fp_mul(&s2, z, &zz);
    ms_fp_mul(&s2, &s2, ya);
    ms_fp_sub(&h, &u2, x);
    ms_fp_sub(&rr, &s2, y);
    ms_fp_sqr(&hh, &h);
    ms_fp_mul(&hhh, &h, &hh);
    ms_fp_mul(&vv, x, &hh);
    ms_fp_mul(z, z, &h);
    ms_fp_sqr(&t, &rr);
    ms_fp_sub(&t, &t, &hhh);
    ms_fp_sub(&t, &t, &vv);
    ms_fp_sub(&t, &t, &vv);
    ms_fp_sub(&vv, &vv, &t);
    ms_fp_mul(&vv, &vv, &rr);
    ms_fp_mul(&hhh, &hhh, y);
    *x = t;
    ms_fp_sub(y, &vv, &hhh);
    *num = rr;
}

/* Replaces zn[0..m-1] by their inverses (Montgomery's trick, one blinded inversion). */
static int batch_inv(scratch *s, unsigned m)
{
    s->pre[0] = s->zn[0];
    for (unsigned j = 1; j < m; j++)
        ms_fp_mul(&s->pre[j], &s->pre[j - 1], &s->zn[j]);
    ms_fp inv;
    int ret = ms_fp_inv_blinded(&inv, &s->pre[m - 1]);
    for (unsigned j = m - 1; j > 0; j--) {
        ms_fp t;
        ms_fp_mul(&t, &inv, &s->zn[j]);
        ms_fp_mul(&s->zn[j], &inv, &s->pre[j - 1]);
        inv = t;
    }
    s->zn[0] = inv;
    ms_wipe(&inv, sizeof inv);
    return ret;
}

static void block_digits(int8_t d[KMAX], unsigned k, int e)
{
    /* e as k signed binary digits, all of the sign of e (most significant first); mixed
     * signs would leave a spurious factor x - Kx in h and raise its degree */
    unsigned a = (unsigned)(e < 0 ? -e : e);
    int sg = e < 0 ? -1 : 1;
    for (unsigned j = 0; j < k; j++)
        d[j] = (int8_t)(sg * (int)((a >> (k - 1 - j)) & 1));
}

int ms_pairing_prepare(ms_pairing_prepared *pp, const ms_sakke_affine *kp)
{
    sched sc;
    schedule(&sc);
    if (!sched_valid(&sc))
        return -1;
    scratch *s = ms_secure_alloc(sizeof *s);
    if (s == NULL)
        return -1;
    int ret = 0;
    ms_fp knegy;
    ms_fp_neg(&knegy, &kp->y);

    /* the running point, Jacobian (for the chain) and affine (recovered per chunk) */
    ms_fp cx = kp->x, cy = kp->y, cz, ax = kp->x, ay = kp->y;
    ms_fp_set_one(&cz);
    unsigned b = 0, pos = 0;
    while (b < sc.nblocks) {
        /* 1. a chunk of whole blocks: the points in Jacobian coordinates, keeping each
         * step's slope numerator and resulting Z */
        unsigned b_end = b, m = 0;
        while (b_end < sc.nblocks) {
            int8_t d[KMAX];
            unsigned k = sc.k[b_end];
            block_digits(d, k, sc.e[b_end]);
            unsigned nops = k;
            for (unsigned j = 0; j < k; j++)
                nops += d[j] != 0;
            if (m + nops > CHUNK)
                break;
            for (unsigned j = 0; j < k; j++) {
                s->dbl[m] = 1;
                jac_dbl(&cx, &cy, &cz, &s->num[m]);
                s->zn[m++] = cz;
                if (d[j] != 0) {
                    s->dbl[m] = 0;
                    jac_add(&cx, &cy, &cz, &s->num[m], &kp->x, d[j] > 0 ? &kp->y : &knegy);
                    s->zn[m++] = cz;
                }
            }
            b_end++;
        }

        /* 2. the affine slopes lambda = num / Z3; the affine points follow from them
         * by the chord-and-tangent formulas, and mu = y - lambda x */
        if (batch_inv(s, m) != 0) {
            ret = -1;
            break;
        }
        for (unsigned t = 0; t < m; t++) {
            ms_fp lam, nx, u;
            ms_fp_mul(&lam, &s->num[t], &s->zn[t]);
            ms_fp_mul(&u, &lam, &ax);
            ms_fp_sub(&s->pre[t], &ay, &u);
            s->x0[t] = ax;
            ms_fp_sqr(&nx, &lam);
            ms_fp_sub(&nx, &nx, &ax);
            ms_fp_sub(&nx, &nx, s->dbl[t] ? &ax : &kp->x);
            ms_fp_sub(&u, &ax, &nx);
            ms_fp_mul(&u, &u, &lam);
            ms_fp_sub(&ay, &u, &ay);
            ax = nx;
            s->num[t] = lam;
        }

        /* 3. the block functions */
        unsigned t = 0;
        for (; b < b_end; b++) {
            unsigned k = sc.k[b];
            int e = sc.e[b];
            unsigned n = block_order(k, e);
            unsigned nsteps = k;
            int8_t d[KMAX];
            block_digits(d, k, e);
            for (unsigned j = 0; j < k; j++)
                nsteps += d[j] != 0;
            hfun h;
            for (unsigned j = 0; j < nsteps; j++, t++) {
                /* the step's line is y + L with L = -mu - lambda x */
                poly line;
                line.n = 2;
                line.lo = 0;
                line.one = 0;
                ms_fp_neg(&line.c[0], &s->pre[t]);
                ms_fp_neg(&line.c[1], &s->num[t]);
                if (j == 0) {
                    /* h = (x - x0)^2 line / (x - x0)^2 */
                    h.r = line;
                    h.s.n = 1;
                    h.s.lo = 0;
                    h.s.one = 1;
                    ms_fp_set_one(&h.s.c[0]);
                } else if (s->dbl[t]) {
                    h_dbl(&h, &line, &s->x0[t]);
                } else {
                    h_add(&h, &line, &s->x0[t]);
                }
            }
            unsigned nr, ns;
            block_shape(n, &nr, &ns);
            if (h.r.n < nr || h.s.n < ns || h.r.lo != 0 || h.s.lo != 0) {
                ret = -1; /* cannot happen: the shape follows from n */
                break;
            }
            for (unsigned j = 0; j < nr; j++)
                pp->c[pos++] = h.r.c[j];
            for (unsigned j = 0; j < ns; j++)
                pp->c[pos++] = h.s.c[j];
            ms_wipe(&h, sizeof h);
        }
        if (ret != 0)
            break;
    }
    pp->sc = sc;
    pp->magic = ret == 0 ? PP_MAGIC : 0;
    if (ret != 0)
        ms_wipe(pp, sizeof *pp);
    ms_secure_free(s, sizeof *s);
    ms_wipe(&cx, sizeof cx);
    ms_wipe(&cy, sizeof cy);
    ms_wipe(&cz, sizeof cz);
    ms_wipe(&ax, sizeof ax);
    ms_wipe(&ay, sizeof ay);
    ms_wipe(&knegy, sizeof knegy);
    return ret;
}

/* ---- evaluation ------------------------------------------------------------------------- */

int ms_pairing_prepared_eval(ms_fp *out, const ms_pairing_prepared *pp, const ms_sakke_affine *q)
{
    if (pp->magic != PP_MAGIC || !sched_valid(&pp->sc))
        return -1;
    const sched *sc = &pp->sc;

    /* xi[j] = (-Qx)^j, eta[j] = Qy (-Qx)^j: the monomials x^j and y x^j at [i]Q, up to
     * the largest pole order of a block, 2^KMAX + 2^KMAX - 1 + 1 */
    enum { NXI = (1 << KMAX) + 1, NETA = (1 << KMAX) };
    ms_fp xi[NXI], eta[NETA];
    ms_fp_set_one(&xi[0]);
    ms_fp_neg(&xi[1], &q->x);
    for (unsigned j = 2; j < NXI; j++)
        ms_fp_mul(&xi[j], &xi[j - 1], &xi[1]);
    eta[0] = q->y;
    for (unsigned j = 1; j < NETA; j++)
        ms_fp_mul(&eta[j], &eta[j - 1], &xi[1]);

    ms_fp2 v, h;
    ms_fpw acc, prod;
    unsigned pos = 0;
    for (unsigned b = 0; b < sc->nblocks; b++) {
        unsigned k = sc->k[b];
        int e = sc->e[b];
        unsigned n = block_order(k, e), nr, ns;
        block_shape(n, &nr, &ns);
        const ms_fp *c = &pp->c[pos];
        pos += nr + ns;

        /* each part is a sum of products, reduced once (lazy reduction); a single
         * product is a plain multiplication, cheaper than a wide product and a
         * reduction called apart */
        if (nr == 2) {
            ms_fp_mul(&h.a, &c[1], &xi[1]);
            ms_fp_add(&h.a, &h.a, &c[0]);
        } else if (nr > 2) {
            ms_fp_mulw(&acc, &c[1], &xi[1]);
            for (unsigned j = 2; j < nr; j++) {
                ms_fp_mulw(&prod, &c[j], &xi[j]);
                ms_fpw_add(&acc, &acc, &prod);
            }
            ms_fp_redc(&h.a, &acc);
            ms_fp_add(&h.a, &h.a, &c[0]);
        } else {
            h.a = c[0];
        }
        if (ns == 1) {
            ms_fp_mul(&h.b, &c[nr], &eta[0]);
        } else if (ns > 1) {
            ms_fp_mulw(&acc, &c[nr], &eta[0]);
            for (unsigned j = 1; j < ns; j++) {
                ms_fp_mulw(&prod, &c[nr + j], &eta[j]);
                ms_fpw_add(&acc, &acc, &prod);
            }
            ms_fp_redc(&h.b, &acc);
        } else {
            ms_fp_set_zero(&h.b);
        }
        if (n % 2 == 0)
            ms_fp_add(&h.a, &h.a, &xi[n / 2]);
        else
            ms_fp_add(&h.b, &h.b, &eta[(n - 3) / 2]);

        if (b == 0) {
            v = h;
        } else {
            for (unsigned j = 0; j < k; j++)
                ms_fp2_sqr(&v, &v);
            ms_fp2_mul(&v, &v, &h);
        }
    }
    int ret = ms_pairing_final(out, &v);
    ms_wipe(&v, sizeof v);
    ms_wipe(&h, sizeof h);
    ms_wipe(&acc, sizeof acc);
    ms_wipe(&prod, sizeof prod);
    return ret;
}
