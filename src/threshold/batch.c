/*
 * The monthly batch (design note (b)+(c)): for each identity of the period, a slot with
 * degree-t shares of u = (a + z) rho and of SSK = KSAK + HS v, and its public record.
 *
 *   B1 every live server deals rho (Feldman) and v (Pedersen), for all slots at once.
 *   B2 each receiver checks its shares by one random linear combination over the batch
 *      (rho: of all dealers together, then per dealer only if that fails, to name who);
 *      dealers complained about are left out of the qualified set Q.
 *   B3 Feldman reveal of v; the first 2t+1 servers of Q (the set M) re-share
 *      h_i = (a + z_i) rho_i at degree t; receivers check their sub-shares (again one
 *      combination, per dealer on failure) and
 *   B4 one batched pairing check of the whole batch,
 *        e(Z, [d] sum r_s R0_s) = e(P, sum r_s UC_s - sum [r_s a_s d] R0_s),
 *      which holds exactly when every slot's commitment UC_s,0 = [d (a_s + z) rho_s]P
 *      (so the device's RSK = [u^-1] R0 is valid); if it fails, the design's check per
 *      dealer, e(Z_i, sum r_s E_i^s) = e(P, sum r_s (H_i^s - a_s E_i^s)), names the dealer.
 *   Each server then stores u_j = sum lambda_i g_i(j) and SSK_j = KSAK_j + HS v_j.
 *
 * Message layouts: round 1 broadcast [1, from] then per slot rho's (t+1) Feldman SAKKE
 * points and v's (t+1) Pedersen P-256 points; round 1 private [1, from, to] then per slot
 * rho(to) (128), v(to) (32), v'(to) (32). Round 2 [2, from, complaint mask (4)]. Round 3
 * broadcast [3, from] then per slot v's (t+1) Feldman P-256 points and, from a server of
 * M, the (t+1) SAKKE commitments of its re-sharing; round 3 private [3, from, to] then,
 * from a server of M, per slot g(to) (128).
 */
#include <stdlib.h>
#include <string.h>

#include "crypto/ct.h"
#include "crypto/rng.h"
#include "crypto/secmem.h"
#include "tkms_internal.h"
#include "util/detail.h"

#define BIT(i) ((uint32_t)1 << ((i) - 1))

struct ms_tkms_batch {
    ms_tkms_server *s;
    size_t count;
    unsigned n, t, me, ended;
    uint32_t live, have1, havep1, have3, havep3, qual, mmask, mine;
    uint32_t complaints_by[MS_TKMS_MAX_N];
    unsigned m_ids[2 * MS_TKMS_MAX_T + 1];
    tsc lam[MS_TKMS_MAX_N], cl[MS_TKMS_MAX_N]; /* lambda_i and d lambda_i, by index */
    uint64_t d;
    uint8_t *idbuf;
    size_t *idoff, *idlen;
    tsc *a;                              /* [slot] */
    tsc *rho_f, *v_f, *vb_f, *g_f;       /* my polynomials [slot][t+1] */
    tsc *rho_sh, *v_sh, *vb_sh, *g_sh;   /* received shares [dealer][slot] */
    tsc *rho_me, *v_me;                  /* joint shares [slot] */
    uint8_t *rhoC, *vP, *vF, *gC;        /* commitments [dealer][slot][t+1] */
    uint8_t *jC;                         /* joint rho commitments [slot][t+1] */
    tsc *r;                              /* this server's random multipliers [slot] */
    tsc *u, *ssk;                        /* results [slot] */
    ms_tkms_record *rec;                 /* [slot] */
};

static size_t sh_at(const ms_tkms_batch *b, unsigned i, size_t s)
{
    return (size_t)(i - 1) * b->count + s;
}

static uint8_t *comm_at(const ms_tkms_batch *b, uint8_t *base, unsigned i, size_t s, size_t ptb)
{
    return base + ((size_t)(i - 1) * b->count + s) * (b->t + 1) * ptb;
}

/* Secret arrays live in locked memory (best effort), wiped when freed. */
static void *secret_calloc(size_t count, size_t size)
{
    return count != 0 && size > SIZE_MAX / count ? NULL : ms_secure_alloc(count * size);
}

static void wipe_free(void *p, size_t len)
{
    ms_secure_free(p, len);
}

void ms_tkms_batch_free(ms_tkms_batch *b)
{
    if (b == NULL)
        return;
    size_t N = b->count, T = b->t + 1, n = b->n;
    free(b->idbuf);
    free(b->idoff);
    free(b->idlen);
    free(b->a);
    wipe_free(b->rho_f, N * T * sizeof(tsc));
    wipe_free(b->v_f, N * T * sizeof(tsc));
    wipe_free(b->vb_f, N * T * sizeof(tsc));
    wipe_free(b->g_f, N * T * sizeof(tsc));
    wipe_free(b->rho_sh, n * N * sizeof(tsc));
    wipe_free(b->v_sh, n * N * sizeof(tsc));
    wipe_free(b->vb_sh, n * N * sizeof(tsc));
    wipe_free(b->g_sh, n * N * sizeof(tsc));
    wipe_free(b->rho_me, N * sizeof(tsc));
    wipe_free(b->v_me, N * sizeof(tsc));
    free(b->rhoC);
    free(b->vP);
    free(b->vF);
    free(b->gC);
    free(b->jC);
    free(b->r);
    wipe_free(b->u, N * sizeof(tsc));
    wipe_free(b->ssk, N * sizeof(tsc));
    free(b->rec);
    ms_wipe(b, sizeof *b);
    free(b);
}

ms_err ms_tkms_batch_new(ms_tkms_batch **out, ms_tkms_server *s, const uint8_t *const *ids,
                         const size_t *id_lens, size_t count, uint32_t live, char *detail,
                         size_t cap)
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    if (s == NULL || ids == NULL || id_lens == NULL || count == 0 ||
        s->ended != MS_TKMS_DKG_ROUNDS || !(live & BIT(s->idx)) ||
        (live & ~((1u << s->n) - 1)) != 0)
        return ms_detail_fail(MS_ERR_ARG, detail, cap,
                              "a batch needs a server after key generation, identities, and "
                              "a live set of its servers including itself");
    unsigned nlive = 0;
    for (uint32_t x = live; x; x &= x - 1)
        nlive++;
    if (nlive < 2 * s->t + 1)
        return ms_detail_fail(MS_ERR_ARG, detail, cap,
                              "a batch needs at least 2t+1 = %u live servers, not %u",
                              2 * s->t + 1, nlive);
    ms_tkms_batch *b = calloc(1, sizeof *b);
    if (b == NULL)
        return MS_ERR_NOMEM;
    b->s = s;
    b->count = count;
    b->n = s->n;
    b->t = s->t;
    b->me = s->idx;
    b->live = live;
    size_t N = count, T = s->t + 1, n = s->n, total = 0;
    for (size_t i = 0; i < N; i++)
        total += id_lens[i];
    b->idbuf = malloc(total + 1);
    b->idoff = calloc(N, sizeof(size_t));
    b->idlen = calloc(N, sizeof(size_t));
    b->a = calloc(N, sizeof(tsc));
    b->rho_f = secret_calloc(N * T, sizeof(tsc));
    b->v_f = secret_calloc(N * T, sizeof(tsc));
    b->vb_f = secret_calloc(N * T, sizeof(tsc));
    b->g_f = secret_calloc(N * T, sizeof(tsc));
    b->rho_sh = secret_calloc(n * N, sizeof(tsc));
    b->v_sh = secret_calloc(n * N, sizeof(tsc));
    b->vb_sh = secret_calloc(n * N, sizeof(tsc));
    b->g_sh = secret_calloc(n * N, sizeof(tsc));
    b->rho_me = secret_calloc(N, sizeof(tsc));
    b->v_me = secret_calloc(N, sizeof(tsc));
    b->rhoC = calloc(n * N * T, 257);
    b->vP = calloc(n * N * T, 65);
    b->vF = calloc(n * N * T, 65);
    b->gC = calloc(n * N * T, 257);
    b->jC = calloc(N * T, 257);
    b->r = calloc(N, sizeof(tsc));
    b->u = secret_calloc(N, sizeof(tsc));
    b->ssk = secret_calloc(N, sizeof(tsc));
    b->rec = calloc(N, sizeof(ms_tkms_record));
    if (b->idbuf == NULL || b->idoff == NULL || b->idlen == NULL || b->a == NULL ||
        b->rho_f == NULL || b->v_f == NULL || b->vb_f == NULL || b->g_f == NULL ||
        b->rho_sh == NULL || b->v_sh == NULL || b->vb_sh == NULL || b->g_sh == NULL ||
        b->rho_me == NULL || b->v_me == NULL || b->rhoC == NULL || b->vP == NULL ||
        b->vF == NULL || b->gC == NULL || b->jC == NULL || b->r == NULL || b->u == NULL ||
        b->ssk == NULL || b->rec == NULL) {
        ms_tkms_batch_free(b);
        return MS_ERR_NOMEM;
    }
    ms_err err = MS_OK;
    size_t off = 0;
    for (size_t i = 0; i < N && err == MS_OK; i++) {
        if (ids[i] == NULL || (err = tkms_id_scalar(&b->a[i], ids[i], id_lens[i])) != MS_OK) {
            err = ms_detail_fail(MS_ERR_ID_RANGE, detail, cap,
                                 "identity %zu is not a SAKKE identifier (empty, or not below q)",
                                 i + 1);
            break;
        }
        memcpy(b->idbuf + off, ids[i], id_lens[i]);
        b->idoff[i] = off;
        b->idlen[i] = id_lens[i];
        off += id_lens[i];
        /* [a]P + Z = O would make u = 0: refuse the identity before any secret is used */
        uint8_t aP[257];
        if ((err = tg_mul_gen(&tg_sakke, aP, &b->a[i])) != MS_OK ||
            (err = tg_add_var(&tg_sakke, aP, aP, s->pub.Z)) != MS_OK)
            break;
        if (tg_is_infinity(&tg_sakke, aP)) {
            err = ms_detail_fail(MS_ERR_ID_RANGE, detail, cap,
                                 "identity %zu has [a]P + Z = O: no RSK exists for it", i + 1);
            break;
        }
        if ((err = tkms_sid(b->rec[i].sid, s->pub.Z, s->pub.kpak, ids[i], id_lens[i])) != MS_OK)
            break;
        b->rec[i].t = s->t;
        for (size_t k = 0; k < T && err == MS_OK; k++) {
            if ((err = tsc_random(&b->rho_f[i * T + k], &tg_sakke, tk_rng(s))) == MS_OK &&
                (err = tsc_random(&b->v_f[i * T + k], &tg_p256, tk_rng(s))) == MS_OK)
                err = tsc_random(&b->vb_f[i * T + k], &tg_p256, tk_rng(s));
        }
        tsc_poly_eval(&b->rho_sh[sh_at(b, b->me, i)], &b->rho_f[i * T], b->t, b->me, &tg_sakke);
        tsc_poly_eval(&b->v_sh[sh_at(b, b->me, i)], &b->v_f[i * T], b->t, b->me, &tg_p256);
        tsc_poly_eval(&b->vb_sh[sh_at(b, b->me, i)], &b->vb_f[i * T], b->t, b->me, &tg_p256);
    }
    if (err != MS_OK) {
        ms_tkms_batch_free(b);
        return err;
    }
    *out = b;
    return MS_OK;
}

/* ---- rounds -------------------------------------------------------------------------- */

static int in_m(const ms_tkms_batch *b, unsigned i)
{
    return (b->mmask & BIT(i)) != 0;
}

ms_err ms_tkms_batch_broadcast(ms_tkms_batch *b, unsigned round, uint8_t *out, size_t cap,
                               size_t *len)
{
    if (b == NULL || out == NULL || len == NULL || round < 1 || round > MS_TKMS_BATCH_ROUNDS ||
        b->ended != round - 1)
        return MS_ERR_ARG;
    size_t T = b->t + 1, need = 6;
    if (round == 1)
        need = 2 + b->count * T * (257 + 65);
    else if (round == 3)
        need = 2 + b->count * T * (65 + (in_m(b, b->me) ? 257 : 0));
    if (cap < need)
        return MS_ERR_BUFFER_TOO_SMALL;
    out[0] = (uint8_t)round;
    out[1] = (uint8_t)b->me;
    ms_err err = MS_OK;
    size_t off = 2;
    if (round == 2) {
        uint32_t m = b->mine;
        out[2] = (uint8_t)(m >> 24);
        out[3] = (uint8_t)(m >> 16);
        out[4] = (uint8_t)(m >> 8);
        out[5] = (uint8_t)m;
        *len = 6;
        return MS_OK;
    }
    for (size_t s = 0; s < b->count && err == MS_OK; s++) {
        if (round == 1) {
            uint8_t *rc = comm_at(b, b->rhoC, b->me, s, 257);
            uint8_t *vp = comm_at(b, b->vP, b->me, s, 65);
            for (size_t k = 0; k < T && err == MS_OK; k++)
                if ((err = tg_mul_gen(&tg_sakke, rc + k * 257, &b->rho_f[s * T + k])) == MS_OK)
                    err = tg_pedersen(&tg_p256, vp + k * 65, &b->v_f[s * T + k],
                                      &b->vb_f[s * T + k]);
            memcpy(out + off, rc, T * 257);
            memcpy(out + off + T * 257, vp, T * 65);
            off += T * (257 + 65);
        } else {
            uint8_t *vf = comm_at(b, b->vF, b->me, s, 65);
            for (size_t k = 0; k < T && err == MS_OK; k++)
                err = tg_mul_gen(&tg_p256, vf + k * 65, &b->v_f[s * T + k]);
            memcpy(out + off, vf, T * 65);
            off += T * 65;
            if (in_m(b, b->me)) {
                uint8_t *gc = comm_at(b, b->gC, b->me, s, 257);
                for (size_t k = 0; k < T && err == MS_OK; k++)
                    err = tg_mul_gen(&tg_sakke, gc + k * 257, &b->g_f[s * T + k]);
                memcpy(out + off, gc, T * 257);
                off += T * 257;
            }
        }
    }
    *len = off;
    return err;
}

ms_err ms_tkms_batch_private(ms_tkms_batch *b, unsigned round, unsigned to, uint8_t *out,
                             size_t cap, size_t *len)
{
    if (b == NULL || out == NULL || len == NULL || (round != 1 && round != 3) ||
        b->ended != round - 1 || to < 1 || to > b->n || to == b->me || !(b->live & BIT(to)))
        return MS_ERR_ARG;
    size_t per = round == 1 ? 128 + 64 : (in_m(b, b->me) ? 128 : 0);
    if (cap < 3 + b->count * per)
        return MS_ERR_BUFFER_TOO_SMALL;
    out[0] = (uint8_t)round;
    out[1] = (uint8_t)b->me;
    out[2] = (uint8_t)to;
    size_t T = b->t + 1, off = 3;
    for (size_t s = 0; s < b->count && per > 0; s++) {
        tsc x;
        if (round == 1) {
            tsc_poly_eval(&x, &b->rho_f[s * T], b->t, to, &tg_sakke);
            tsc_to_bytes(out + off, &x, &tg_sakke);
            tsc_poly_eval(&x, &b->v_f[s * T], b->t, to, &tg_p256);
            tsc_to_bytes(out + off + 128, &x, &tg_p256);
            tsc_poly_eval(&x, &b->vb_f[s * T], b->t, to, &tg_p256);
            tsc_to_bytes(out + off + 160, &x, &tg_p256);
        } else {
            tsc_poly_eval(&x, &b->g_f[s * T], b->t, to, &tg_sakke);
            tsc_to_bytes(out + off, &x, &tg_sakke);
        }
        ms_wipe(&x, sizeof x);
        off += per;
    }
    *len = off;
    return MS_OK;
}

static ms_err take_points(const tgroup *g, uint8_t *dst, const uint8_t *in, size_t count)
{
    for (size_t k = 0; k < count; k++) {
        ms_err err = tg_check_curve_var(g, in + k * g->pt_bytes, 1, 0);
        if (err != MS_OK)
            return MS_ERR_BAD_ENCODING;
    }
    memcpy(dst, in, count * g->pt_bytes);
    return MS_OK;
}

ms_err ms_tkms_batch_receive(ms_tkms_batch *b, unsigned round, unsigned from,
                             const uint8_t *msg, size_t len, const uint8_t *priv,
                             size_t priv_len)
{
    if (b == NULL || msg == NULL || round < 1 || round > MS_TKMS_BATCH_ROUNDS ||
        b->ended != round - 1 || from < 1 || from > b->n || from == b->me ||
        !(b->live & BIT(from)))
        return MS_ERR_ARG;
    if (len < 2 || msg[0] != round || msg[1] != from)
        return MS_ERR_BAD_ENCODING;
    size_t T = b->t + 1;
    if (round == 2) {
        if (len != 6)
            return MS_ERR_BAD_ENCODING;
        b->complaints_by[from - 1] = ((uint32_t)msg[2] << 24 | (uint32_t)msg[3] << 16 |
                                      (uint32_t)msg[4] << 8 | msg[5]) &
                                     b->live;
        return MS_OK;
    }
    if (round == 3 && !(b->qual & BIT(from)))
        return MS_ERR_ARG;
    int dealer_m = round == 3 && in_m(b, from);
    size_t per = round == 1 ? T * (257 + 65) : T * (65 + (dealer_m ? 257 : 0));
    if (len != 2 + b->count * per)
        return MS_ERR_BAD_ENCODING;
    for (size_t s = 0; s < b->count; s++) {
        const uint8_t *p = msg + 2 + s * per;
        ms_err err;
        if (round == 1)
            err = take_points(&tg_sakke, comm_at(b, b->rhoC, from, s, 257), p, T);
        else
            err = take_points(&tg_p256, comm_at(b, b->vF, from, s, 65), p, T);
        if (err == MS_OK && round == 1)
            err = take_points(&tg_p256, comm_at(b, b->vP, from, s, 65), p + T * 257, T);
        if (err == MS_OK && dealer_m)
            err = take_points(&tg_sakke, comm_at(b, b->gC, from, s, 257), p + T * 65, T);
        if (err != MS_OK)
            return err;
    }
    if (round == 1)
        b->have1 |= BIT(from);
    else
        b->have3 |= BIT(from);
    size_t pper = round == 1 ? 128 + 64 : (dealer_m ? 128 : 0);
    if (pper == 0)
        return MS_OK;
    if (priv == NULL || priv_len != 3 + b->count * pper || priv[0] != round ||
        priv[1] != from || priv[2] != b->me)
        return MS_ERR_BAD_ENCODING;
    for (size_t s = 0; s < b->count; s++) {
        const uint8_t *p = priv + 3 + s * pper;
        ms_err err;
        if (round == 1) {
            if ((err = tsc_from_bytes(&b->rho_sh[sh_at(b, from, s)], p, &tg_sakke)) != MS_OK ||
                (err = tsc_from_bytes(&b->v_sh[sh_at(b, from, s)], p + 128, &tg_p256)) != MS_OK ||
                (err = tsc_from_bytes(&b->vb_sh[sh_at(b, from, s)], p + 160, &tg_p256)) != MS_OK)
                return MS_ERR_BAD_ENCODING;
        } else if ((err = tsc_from_bytes(&b->g_sh[sh_at(b, from, s)], p, &tg_sakke)) != MS_OK) {
            return MS_ERR_BAD_ENCODING;
        }
    }
    if (round == 1)
        b->havep1 |= BIT(from);
    else
        b->havep3 |= BIT(from);
    return MS_OK;
}

/* ---- checks ---------------------------------------------------------------------------- */

/* Random multipliers, odd and below 2^128 (public once drawn: they only need to be
 * unpredictable to the dealers, who have sent everything before they are drawn). */
static ms_err draw_multipliers(ms_tkms_batch *b)
{
    for (size_t s = 0; s < b->count; s++) {
        uint8_t raw[16];
        ms_err err = ms_rng_fill(tk_rng(b->s), raw, sizeof raw);
        if (err != MS_OK)
            return err;
        raw[15] |= 1;
        /* declassified for the constant-time check: the checks multiply public
         * commitments by them in variable time */
        MS_CT_PUBLIC(raw, sizeof raw);
        uint64_t plain[MS_LIMBS] = {0};
        ms_u1024_from_be(plain, raw, sizeof raw);
        ms_mont_to(b->r[s].v, plain, &ms_mont_q);
    }
    return MS_OK;
}

/* The same multiplier as a P-256 scalar. */
static void r_p256(tsc *out, const ms_tkms_batch *b, size_t s)
{
    uint64_t plain[MS_LIMBS];
    ms_mont_from(plain, b->r[s].v, &ms_mont_q);
    ms_mont_to(out->v, plain, &ms_tkms_mont_n256);
}

/* sum_s sum_k (r_s x^k) C_{s,k} over the commitments of dealer i (base: an array of
 * [dealer][slot][t+1] points; i = 0: base is [slot][t+1] already) */
static ms_err comb_rhs(const ms_tkms_batch *b, const tgroup *g, uint8_t *out, uint8_t *base,
                       unsigned i, unsigned x)
{
    size_t T = b->t + 1, n = b->count * T;
    const uint8_t **pts = malloc(n * sizeof *pts);
    tsc *k = malloc(n * sizeof *k);
    if (pts == NULL || k == NULL) {
        free(pts);
        free(k);
        return MS_ERR_NOMEM;
    }
    for (size_t s = 0; s < b->count; s++) {
        tsc rs, xs, pw;
        if (g == &tg_sakke)
            rs = b->r[s];
        else
            r_p256(&rs, b, s);
        tsc_from_u64(&xs, x, g);
        tsc_from_u64(&pw, 1, g);
        const uint8_t *c = i == 0 ? base + s * T * g->pt_bytes : comm_at(b, base, i, s, g->pt_bytes);
        for (size_t kk = 0; kk < T; kk++) {
            pts[s * T + kk] = c + kk * g->pt_bytes;
            tsc_mul(&k[s * T + kk], &rs, &pw, g);
            tsc_mul(&pw, &pw, &xs, g);
        }
    }
    ms_err err = tg_msm_var(g, out, pts, k, n);
    free(pts);
    free(k);
    return err;
}

/* sum_s r_s sh[s] for the shares of dealer i (i = 0: sh is [slot] already) */
static void comb_lhs(const ms_tkms_batch *b, const tgroup *g, tsc *out, const tsc *sh, unsigned i)
{
    tsc_zero(out);
    for (size_t s = 0; s < b->count; s++) {
        tsc rs, term;
        if (g == &tg_sakke)
            rs = b->r[s];
        else
            r_p256(&rs, b, s);
        tsc_mul(&term, &rs, &sh[i == 0 ? s : sh_at(b, i, s)], g);
        tsc_add(out, out, &term, g);
        ms_wipe(&term, sizeof term);
    }
}

/* Does dealer i's Feldman (or Pedersen, with blind shares shb) sharing match my shares? */
static ms_err dealer_ok(const ms_tkms_batch *b, const tgroup *g, uint8_t *comms, const tsc *sh,
                        const tsc *shb, unsigned i, int *ok)
{
    uint8_t want[TG_PT_MAX], got[TG_PT_MAX];
    tsc l, lb;
    ms_err err = comb_rhs(b, g, want, comms, i, b->me);
    if (err != MS_OK)
        return err;
    comb_lhs(b, g, &l, sh, i);
    if (shb != NULL) {
        comb_lhs(b, g, &lb, shb, i);
        err = tg_pedersen(g, got, &l, &lb);
        ms_wipe(&lb, sizeof lb);
    } else {
        err = tg_mul_gen(g, got, &l);
    }
    ms_wipe(&l, sizeof l);
    *ok = err == MS_OK && memcmp(want, got, g->pt_bytes) == 0;
    return err;
}

static ms_err end_round1(ms_tkms_batch *b)
{
    size_t T = b->t + 1;
    b->have1 |= BIT(b->me);
    b->havep1 |= BIT(b->me);
    uint32_t dealers = b->live & b->have1 & b->havep1;
    b->mine = b->live & ~dealers;
    ms_err err = draw_multipliers(b);
    if (err != MS_OK)
        return err;
    /* rho: all dealers' sharings summed first (one check for the batch) */
    tsc *sum = calloc(b->count, sizeof(tsc));
    uint8_t *agg = calloc(b->count * T, 257);
    const uint8_t **pts = calloc(b->n, sizeof *pts);
    tsc ones[MS_TKMS_MAX_N];
    if (sum == NULL || agg == NULL || pts == NULL)
        err = MS_ERR_NOMEM;
    for (unsigned i = 0; i < b->n; i++)
        tsc_from_u64(&ones[i], 1, &tg_sakke);
    for (size_t s = 0; s < b->count && err == MS_OK; s++) {
        for (size_t k = 0; k < T && err == MS_OK; k++) {
            size_t m = 0;
            for (unsigned i = 1; i <= b->n; i++)
                if (dealers & BIT(i))
                    pts[m++] = comm_at(b, b->rhoC, i, s, 257) + k * 257;
            err = tg_msm_var(&tg_sakke, agg + (s * T + k) * 257, pts, ones, m);
        }
        for (unsigned i = 1; i <= b->n; i++)
            if (dealers & BIT(i))
                tsc_add(&sum[s], &sum[s], &b->rho_sh[sh_at(b, i, s)], &tg_sakke);
    }
    int ok = 0;
    if (err == MS_OK)
        err = dealer_ok(b, &tg_sakke, agg, sum, NULL, 0, &ok);
    for (unsigned i = 1; i <= b->n && err == MS_OK && !ok; i++) {
        int dok = 0;
        if (i != b->me && (dealers & BIT(i)) &&
            (err = dealer_ok(b, &tg_sakke, b->rhoC, b->rho_sh, NULL, i, &dok)) == MS_OK && !dok)
            b->mine |= BIT(i);
    }
    /* v: Pedersen, per dealer (P-256 is cheap) */
    for (unsigned i = 1; i <= b->n && err == MS_OK; i++) {
        int dok = 0;
        if (i != b->me && (dealers & BIT(i)) &&
            (err = dealer_ok(b, &tg_p256, b->vP, b->v_sh, b->vb_sh, i, &dok)) == MS_OK && !dok)
            b->mine |= BIT(i);
    }
    if (sum != NULL)
        ms_wipe(sum, b->count * sizeof(tsc));
    free(sum);
    free(agg);
    free(pts);
    b->complaints_by[b->me - 1] = b->mine;
    return err;
}

static unsigned popcount32(uint32_t x)
{
    unsigned c = 0;
    for (; x; x &= x - 1)
        c++;
    return c;
}

/* A published point of slot s is outside E[q]: name a dealer (of `dealers`) whose
 * commitments for the slot are. */
static ms_err name_off_eq(const ms_tkms_batch *b, uint8_t *comms, uint32_t dealers, size_t s,
                          char *detail, size_t cap)
{
    for (unsigned i = 1; i <= b->n; i++) {
        if (!(dealers & BIT(i)))
            continue;
        const uint8_t *c = comm_at(b, comms, i, s, 257);
        for (unsigned k = 0; k <= b->t; k++)
            if (tg_check_var(&tg_sakke, c + k * 257, 1) != MS_OK)
                return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                                      "dealer %u committed to a point outside E[q] (slot %zu)", i,
                                      s + 1);
    }
    return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                          "slot %zu: a published point is outside E[q]", s + 1);
}

static ms_err end_round2(ms_tkms_batch *b, char *detail, size_t cap)
{
    size_t T = b->t + 1;
    uint32_t accused = 0;
    for (unsigned j = 1; j <= b->n; j++)
        if (b->live & BIT(j))
            accused |= b->complaints_by[j - 1];
    b->qual = b->live & b->have1 & b->havep1 & ~accused;
    /* a server left out still receives its shares of the slots (it is only no dealer) */
    if (popcount32(b->qual) < 2 * b->t + 1)
        return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                              "after complaints (against %#x) fewer than 2t+1 dealers remain: "
                              "the batch must be run again",
                              (unsigned)accused);
    /* M: the first 2t+1 qualified servers; d lambda_i are small integers */
    unsigned msz = 0;
    for (unsigned i = 1; i <= b->n && msz < 2 * b->t + 1; i++)
        if (b->qual & BIT(i)) {
            b->m_ids[msz++] = i;
            b->mmask |= BIT(i);
        }
    uint64_t d = 1;
    for (unsigned x = 0; x < msz; x++) {
        int64_t den = 1;
        for (unsigned y = 0; y < msz; y++)
            if (y != x)
                den *= (int64_t)b->m_ids[y] - (int64_t)b->m_ids[x];
        uint64_t ad = (uint64_t)(den < 0 ? -den : den), g0 = d, g1 = ad;
        while (g1 != 0) {
            uint64_t tmp = g0 % g1;
            g0 = g1;
            g1 = tmp;
        }
        d = d / g0 * ad;
    }
    b->d = d;
    tsc ds;
    tsc_from_u64(&ds, d, &tg_sakke);
    for (unsigned x = 0; x < msz; x++) {
        unsigned i = b->m_ids[x];
        tsc_lagrange_var(&b->lam[i - 1], b->m_ids, msz, x, 0, &tg_sakke);
        tsc_mul(&b->cl[i - 1], &b->lam[i - 1], &ds, &tg_sakke);
    }
    /* joint rho and v shares, joint rho commitments */
    const uint8_t *pts[MS_TKMS_MAX_N];
    tsc ones[MS_TKMS_MAX_N];
    for (unsigned i = 0; i < b->n; i++)
        tsc_from_u64(&ones[i], 1, &tg_sakke);
    ms_err err = MS_OK;
    for (size_t s = 0; s < b->count && err == MS_OK; s++) {
        tsc_zero(&b->rho_me[s]);
        tsc_zero(&b->v_me[s]);
        for (unsigned i = 1; i <= b->n; i++)
            if (b->qual & BIT(i)) {
                tsc_add(&b->rho_me[s], &b->rho_me[s], &b->rho_sh[sh_at(b, i, s)], &tg_sakke);
                tsc_add(&b->v_me[s], &b->v_me[s], &b->v_sh[sh_at(b, i, s)], &tg_p256);
            }
        for (size_t k = 0; k < T && err == MS_OK; k++) {
            size_t m = 0;
            for (unsigned i = 1; i <= b->n; i++)
                if (b->qual & BIT(i))
                    pts[m++] = comm_at(b, b->rhoC, i, s, 257) + k * 257;
            err = tg_msm_var(&tg_sakke, b->jC + (s * T + k) * 257, pts, ones, m);
        }
        if (err != MS_OK)
            break;
        memcpy(b->rec[s].r0, b->jC + s * T * 257, 257);
        if (tg_is_infinity(&tg_sakke, b->rec[s].r0))
            return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                                  "slot %zu drew rho = 0: the batch must be run again", s + 1);
        if (tg_check_var(&tg_sakke, b->rec[s].r0, 0) != MS_OK)
            return name_off_eq(b, b->rhoC, b->qual, s, detail, cap);
        /* a server of M re-shares h = (a + z_me) rho_me */
        if (in_m(b, b->me)) {
            tsc h;
            tsc_add(&h, &b->a[s], &b->s->z_j, &tg_sakke);
            tsc_mul(&b->g_f[s * T], &h, &b->rho_me[s], &tg_sakke);
            ms_wipe(&h, sizeof h);
            for (size_t k = 1; k < T && err == MS_OK; k++)
                err = tsc_random(&b->g_f[s * T + k], &tg_sakke, tk_rng(b->s));
            tsc_poly_eval(&b->g_sh[sh_at(b, b->me, s)], &b->g_f[s * T], b->t, b->me, &tg_sakke);
        }
    }
    return err;
}

/* The design's check of one re-sharing dealer i over the whole batch:
 * e(Z_i, sum r_s E_i^s) = e(P, sum r_s (H_i^s - a_s E_i^s)), E_i^s = [rho_i]P of slot s. */
static ms_err pairing_dealer(const ms_tkms_batch *b, unsigned i, int *ok)
{
    size_t N = b->count;
    uint8_t *E = malloc(N * 257);
    const uint8_t **pts = malloc(2 * N * sizeof *pts);
    tsc *k = malloc(2 * N * sizeof *k);
    ms_err err = (E == NULL || pts == NULL || k == NULL) ? MS_ERR_NOMEM : MS_OK;
    uint8_t X[257], Y[257], W[257], P[257], e1[128], e2[128];
    for (size_t s = 0; s < N && err == MS_OK; s++)
        err = tg_feldman_eval_var(&tg_sakke, E + s * 257, b->jC + s * (b->t + 1) * 257, b->t, i);
    for (size_t s = 0; s < N && err == MS_OK; s++) {
        pts[s] = E + s * 257;
        k[s] = b->r[s];
        pts[N + s] = comm_at(b, b->gC, i, s, 257);
        k[N + s] = b->r[s];
    }
    if (err == MS_OK)
        err = tg_msm_var(&tg_sakke, X, pts, k, N);
    if (err == MS_OK)
        err = tg_msm_var(&tg_sakke, Y, pts + N, k + N, N);
    for (size_t s = 0; s < N && err == MS_OK; s++)
        tsc_mul(&k[s], &b->r[s], &b->a[s], &tg_sakke);
    if (err == MS_OK && (err = tg_msm_var(&tg_sakke, W, pts, k, N)) == MS_OK &&
        (err = tg_neg_var(&tg_sakke, W, W)) == MS_OK)
        err = tg_add_var(&tg_sakke, Y, Y, W);
    tg_generator(&tg_sakke, P);
    *ok = 0;
    if (err == MS_OK && !tg_is_infinity(&tg_sakke, X) && !tg_is_infinity(&tg_sakke, Y) &&
        (err = tg_pairing_var(e1, b->s->pub.Zj[i - 1], X)) == MS_OK &&
        (err = tg_pairing_var(e2, P, Y)) == MS_OK)
        *ok = memcmp(e1, e2, 128) == 0;
    free(E);
    free(pts);
    free(k);
    return err;
}

static ms_err end_round3(ms_tkms_batch *b, char *detail, size_t cap)
{
    size_t T = b->t + 1, N = b->count;
    b->have3 |= BIT(b->me);
    b->havep3 |= BIT(b->me);
    ms_err err = MS_OK;
    /* (a) v's Feldman reveal against my shares, per dealer */
    for (unsigned i = 1; i <= b->n && err == MS_OK; i++) {
        if (!(b->qual & BIT(i)) || i == b->me)
            continue;
        int ok = 0;
        if (!(b->have3 & BIT(i)) ||
            ((err = dealer_ok(b, &tg_p256, b->vF, b->v_sh, NULL, i, &ok)) == MS_OK && !ok))
            return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                                  "dealer %u: its Feldman commitments to v do not match its "
                                  "shares (or are missing)",
                                  i);
    }
    for (unsigned x = 0; x < 2 * b->t + 1; x++) {
        unsigned i = b->m_ids[x];
        if (i != b->me && !(b->have3 & b->havep3 & BIT(i)))
            return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                                  "re-sharing dealer %u sent nothing", i);
    }
    /* (b) u_s(me) = sum lambda_i g_i(me); UC_s = sum (d lambda_i) G_i: one check */
    tsc dl;
    tsc_from_u64(&dl, b->d, &tg_sakke);
    const uint8_t *pts[2 * MS_TKMS_MAX_T + 1];
    tsc ks[2 * MS_TKMS_MAX_T + 1];
    uint8_t *uc = calloc(N * T, 257);
    if (uc == NULL)
        return MS_ERR_NOMEM;
    for (size_t s = 0; s < N && err == MS_OK; s++) {
        tsc_zero(&b->u[s]);
        for (unsigned x = 0; x < 2 * b->t + 1; x++) {
            unsigned i = b->m_ids[x];
            tsc term;
            tsc_mul(&term, &b->lam[i - 1], &b->g_sh[sh_at(b, i, s)], &tg_sakke);
            tsc_add(&b->u[s], &b->u[s], &term, &tg_sakke);
            ms_wipe(&term, sizeof term);
        }
        for (size_t k = 0; k < T && err == MS_OK; k++) {
            for (unsigned x = 0; x < 2 * b->t + 1; x++) {
                pts[x] = comm_at(b, b->gC, b->m_ids[x], s, 257) + k * 257;
                ks[x] = b->cl[b->m_ids[x] - 1];
            }
            err = tg_msm_var(&tg_sakke, uc + (s * T + k) * 257, pts, ks, 2 * b->t + 1);
        }
    }
    tsc *du = err == MS_OK ? calloc(N, sizeof(tsc)) : NULL;
    if (err == MS_OK && du == NULL)
        err = MS_ERR_NOMEM;
    int ok = 0;
    if (err == MS_OK) {
        for (size_t s = 0; s < N; s++)
            tsc_mul(&du[s], &b->u[s], &dl, &tg_sakke);
        err = dealer_ok(b, &tg_sakke, uc, du, NULL, 0, &ok);
        ms_wipe(du, N * sizeof(tsc));
    }
    free(du);
    for (unsigned x = 0; x < 2 * b->t + 1 && err == MS_OK && !ok; x++) {
        unsigned i = b->m_ids[x];
        int dok = 0;
        if (i != b->me && (err = dealer_ok(b, &tg_sakke, b->gC, b->g_sh, NULL, i, &dok)) == MS_OK &&
            !dok) {
            free(uc);
            return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                                  "re-sharing dealer %u: its shares do not match its commitments",
                                  i);
        }
    }
    if (err == MS_OK && !ok) {
        free(uc);
        return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                              "the re-shared u does not match its commitments");
    }
    /* (c) B4: one pairing check for the whole batch, then per dealer to name one */
    uint8_t X[257], Y[257], W[257], P[257], e1[128], e2[128];
    tg_generator(&tg_sakke, P);
    const uint8_t **vp = err == MS_OK ? malloc(N * sizeof *vp) : NULL;
    tsc *vk = err == MS_OK ? malloc(N * sizeof *vk) : NULL;
    if (err == MS_OK && (vp == NULL || vk == NULL))
        err = MS_ERR_NOMEM;
    if (err == MS_OK) {
        for (size_t s = 0; s < N; s++) {
            vp[s] = b->rec[s].r0;
            tsc_mul(&vk[s], &b->r[s], &dl, &tg_sakke);
        }
        err = tg_msm_var(&tg_sakke, X, vp, vk, N);
    }
    if (err == MS_OK) {
        for (size_t s = 0; s < N; s++) {
            vp[s] = uc + s * T * 257;
            vk[s] = b->r[s];
        }
        err = tg_msm_var(&tg_sakke, Y, vp, vk, N);
    }
    if (err == MS_OK) {
        for (size_t s = 0; s < N; s++) {
            vp[s] = b->rec[s].r0;
            tsc_mul(&vk[s], &b->r[s], &b->a[s], &tg_sakke);
            tsc_mul(&vk[s], &vk[s], &dl, &tg_sakke);
        }
        if ((err = tg_msm_var(&tg_sakke, W, vp, vk, N)) == MS_OK &&
            (err = tg_neg_var(&tg_sakke, W, W)) == MS_OK)
            err = tg_add_var(&tg_sakke, Y, Y, W);
    }
    ok = 0;
    if (err == MS_OK && !tg_is_infinity(&tg_sakke, X) && !tg_is_infinity(&tg_sakke, Y) &&
        (err = tg_pairing_var(e1, b->s->pub.Z, X)) == MS_OK &&
        (err = tg_pairing_var(e2, P, Y)) == MS_OK)
        ok = memcmp(e1, e2, 128) == 0;
    free(vp);
    free(vk);
    for (unsigned x = 0; x < 2 * b->t + 1 && err == MS_OK && !ok; x++) {
        unsigned i = b->m_ids[x];
        int dok = 0;
        if ((err = pairing_dealer(b, i, &dok)) == MS_OK && !dok) {
            free(uc);
            return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                                  "re-sharing dealer %u did not re-share (a + z_i) rho_i "
                                  "(batched pairing check)",
                                  i);
        }
    }
    if (err == MS_OK && !ok) {
        free(uc);
        return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                              "the batched pairing check failed for no single dealer");
    }
    /* (d) PVT, HS, SSK_j; the public records */
    tsc ones[MS_TKMS_MAX_N];
    for (unsigned i = 0; i < b->n; i++)
        tsc_from_u64(&ones[i], 1, &tg_p256);
    for (size_t s = 0; s < N && err == MS_OK; s++) {
        ms_tkms_record *rec = &b->rec[s];
        rec->d = b->d;
        /* the commitments to u are used only by a device blaming a server, which checks
         * their order first (RSK validation covers the keys themselves) */
        memcpy(rec->uc, uc + s * T * 257, T * 257);
        for (size_t k = 0; k < T && err == MS_OK; k++) {
            const uint8_t *vpts[MS_TKMS_MAX_N];
            size_t m = 0;
            for (unsigned i = 1; i <= b->n; i++)
                if (b->qual & BIT(i))
                    vpts[m++] = comm_at(b, b->vF, i, s, 65) + k * 65;
            err = tg_msm_var(&tg_p256, rec->vc[k], vpts, ones, m);
        }
        if (err != MS_OK)
            break;
        memcpy(rec->pvt, rec->vc[0], 65);
        if (tg_is_infinity(&tg_p256, rec->pvt)) {
            err = ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                                 "slot %zu drew PVT = O: the batch must be run again", s + 1);
            break;
        }
        tsc hs;
        if ((err = tkms_hs(&hs, b->s->pub.kpak, b->idbuf + b->idoff[s], b->idlen[s],
                           rec->pvt)) != MS_OK)
            break;
        tsc_mul(&b->ssk[s], &hs, &b->v_me[s], &tg_p256);
        tsc_add(&b->ssk[s], &b->ssk[s], &b->s->ksak_j, &tg_p256);
    }
    free(uc);
    return err;
}

ms_err ms_tkms_batch_end_round(ms_tkms_batch *b, unsigned round, char *detail, size_t cap)
{
    if (b == NULL || round < 1 || round > MS_TKMS_BATCH_ROUNDS || b->ended != round - 1)
        return MS_ERR_ARG;
    ms_err err = round == 1 ? end_round1(b) : round == 2 ? end_round2(b, detail, cap)
                                                          : end_round3(b, detail, cap);
    if (err == MS_OK)
        b->ended = round;
    return err;
}

uint32_t ms_tkms_batch_complaints(const ms_tkms_batch *b)
{
    return b == NULL ? 0 : b->mine;
}

uint32_t ms_tkms_batch_qualified(const ms_tkms_batch *b)
{
    return b == NULL ? 0 : b->qual;
}

ms_err ms_tkms_issue(const ms_tkms_batch *b, const uint8_t *id, size_t id_len,
                     ms_tkms_share *share, ms_tkms_record *record)
{
    if (b == NULL || id == NULL || share == NULL || record == NULL ||
        b->ended != MS_TKMS_BATCH_ROUNDS)
        return MS_ERR_ARG;
    uint8_t sid[32];
    ms_err err = tkms_sid(sid, b->s->pub.Z, b->s->pub.kpak, id, id_len);
    if (err != MS_OK)
        return err;
    for (size_t s = 0; s < b->count; s++) {
        if (memcmp(sid, b->rec[s].sid, 32) != 0)
            continue;
        share->index = b->me;
        tsc_to_bytes(share->u, &b->u[s], &tg_sakke);
        tsc_to_bytes(share->ssk, &b->ssk[s], &tg_p256);
        *record = b->rec[s];
        return MS_OK;
    }
    return MS_ERR_IDENTITY;
}

void tkms_batch_test_corrupt_h(ms_tkms_batch *b, size_t slot)
{
    tsc one;
    tsc_from_u64(&one, 1, &tg_sakke);
    tsc_add(&b->g_f[slot * (b->t + 1)], &b->g_f[slot * (b->t + 1)], &one, &tg_sakke);
    tsc_add(&b->g_sh[sh_at(b, b->me, slot)], &b->g_sh[sh_at(b, b->me, slot)], &one, &tg_sakke);
}

void tkms_batch_test_view(const ms_tkms_batch *b, tkms_view_fn fn, void *ctx)
{
    size_t T = b->t + 1;
    for (size_t s = 0; s < b->count; s++) {
        for (unsigned k = 0; k < T; k++) {
            fn(ctx, "rho_f", k, s, &tg_sakke, &b->rho_f[s * T + k]);
            fn(ctx, "v_f", k, s, &tg_p256, &b->v_f[s * T + k]);
            fn(ctx, "vb_f", k, s, &tg_p256, &b->vb_f[s * T + k]);
            fn(ctx, "g_f", k, s, &tg_sakke, &b->g_f[s * T + k]);
        }
        for (unsigned i = 1; i <= b->n; i++) {
            fn(ctx, "rho_sh", i, s, &tg_sakke, &b->rho_sh[sh_at(b, i, s)]);
            fn(ctx, "v_sh", i, s, &tg_p256, &b->v_sh[sh_at(b, i, s)]);
            fn(ctx, "vb_sh", i, s, &tg_p256, &b->vb_sh[sh_at(b, i, s)]);
            fn(ctx, "g_sh", i, s, &tg_sakke, &b->g_sh[sh_at(b, i, s)]);
        }
        fn(ctx, "rho_me", 0, s, &tg_sakke, &b->rho_me[s]);
        fn(ctx, "v_me", 0, s, &tg_p256, &b->v_me[s]);
        fn(ctx, "u", 0, s, &tg_sakke, &b->u[s]);
        fn(ctx, "ssk", 0, s, &tg_p256, &b->ssk[s]);
        fn(ctx, "r", 0, s, &tg_sakke, &b->r[s]);
    }
}
