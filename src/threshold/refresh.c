/*
 * Proactive share refresh (Herzberg, Jarecki, Krawczyk, Yung 1995, with the Feldman checks
 * of GJKR's second phase): every server deals a random degree-t polynomial whose constant
 * term is 0, on the SAKKE curve for z and on P-256 for KSAK, and adds the qualified
 * dealers' values at its index to its shares. The secrets do not move (the sum of the
 * polynomials is 0 at 0), the shares do: old and new shares no longer combine.
 *
 * Plain Feldman VSS suffices here, unlike key generation: the dealt secret is 0 and public,
 * so a dealer that sees the others' commitments first has nothing to bias.
 *
 * Message layouts (every blob starts with round, sender):
 *   1 bcast: Feldman commitments, (t+1) SAKKE points then (t+1) P-256 points; the first of
 *            each (coefficient 0) must be the point at infinity
 *   1 priv:  1, sender, receiver, one share record (RF_REC: SAKKE share, then P-256 share)
 *   2 bcast: complaint mask (4 octets, bit i-1 for dealer i)
 *   3 bcast: count, then count x (complainer index, share record for it)
 */
#include <stdlib.h>
#include <string.h>

#include "crypto/secmem.h"
#include "refresh_test.h"
#include "tkms_internal.h"
#include "util/detail.h"

#define BIT(i) ((uint32_t)1 << ((i) - 1))
#define RF_REC (128 + 32)

struct ms_tkms_refresh {
    ms_tkms_server *s;
    unsigned n, t, idx, ended;
    int test_mode; /* tkms_refresh_test_* */
    tsc f[TK_NCURVE][MS_TKMS_MAX_T + 1];  /* my polynomials; f[c][0] = 0 when honest */
    tsc sh[TK_NCURVE][MS_TKMS_MAX_N];     /* from dealer i at [i - 1] */
    uint8_t feld[TK_NCURVE][MS_TKMS_MAX_N][TK_COMM_MAX];
    uint32_t have_r1, have_priv, nonzero; /* nonzero: dealers whose constant is not 0 */
    uint32_t complaints_by[MS_TKMS_MAX_N];
    uint32_t answered[MS_TKMS_MAX_N];
    uint32_t qual;
    tsc z_new, ksak_new;
    ms_tkms_public pub;
};

static size_t comm_bytes(unsigned t)
{
    return (size_t)(t + 1) * (257 + 65);
}

size_t ms_tkms_refresh_msg_max(unsigned n, unsigned t)
{
    size_t answers = 3 + (size_t)n * (1 + RF_REC), comms = 2 + comm_bytes(t);
    return answers > comms ? answers : comms;
}

ms_err ms_tkms_refresh_new(ms_tkms_refresh **out, ms_tkms_server *s)
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    if (s == NULL || s->ended != MS_TKMS_DKG_ROUNDS)
        return MS_ERR_ARG;
    ms_tkms_refresh *r = ms_secure_alloc(sizeof *r);
    if (r == NULL)
        return MS_ERR_NOMEM;
    r->s = s;
    r->n = s->n;
    r->t = s->t;
    r->idx = s->idx;
    ms_err err = MS_OK;
    for (unsigned c = 0; c < TK_NCURVE && err == MS_OK; c++) {
        tsc_zero(&r->f[c][0]);
        for (unsigned k = 1; k <= r->t && err == MS_OK; k++)
            err = tsc_random(&r->f[c][k], tk_groups[c], tk_rng(s));
    }
    if (err != MS_OK) {
        ms_tkms_refresh_free(r);
        return err;
    }
    *out = r;
    return MS_OK;
}

void ms_tkms_refresh_free(ms_tkms_refresh *r)
{
    if (r != NULL)
        ms_secure_free(r, sizeof *r);
}

void tkms_refresh_test_cheat(ms_tkms_refresh *r, int mode)
{
    r->test_mode = mode;
    if (mode == TKMS_REFRESH_TEST_NONZERO_OPEN || mode == TKMS_REFRESH_TEST_NONZERO_HIDDEN)
        for (unsigned c = 0; c < TK_NCURVE; c++)
            tsc_from_u64(&r->f[c][0], 12345, tk_groups[c]);
}

/* ---- shares and commitments ------------------------------------------------------------ */

static void rec_put(uint8_t *out, const tsc sh[TK_NCURVE])
{
    tsc_to_bytes(out, &sh[0], &tg_sakke);
    tsc_to_bytes(out + 128, &sh[1], &tg_p256);
}

static ms_err rec_get(const uint8_t *in, tsc sh[TK_NCURVE])
{
    ms_err err = tsc_from_bytes(&sh[0], in, &tg_sakke);
    if (err == MS_OK)
        err = tsc_from_bytes(&sh[1], in + 128, &tg_p256);
    return err;
}

/* My polynomials at x (secret: the caller wipes). */
static void eval_mine(const ms_tkms_refresh *r, unsigned x, tsc sh[TK_NCURVE])
{
    for (unsigned c = 0; c < TK_NCURVE; c++)
        tsc_poly_eval(&sh[c], r->f[c], r->t, x, tk_groups[c]);
}

/* The shares dealer i gave server j match its Feldman commitments, on both curves. The
 * comparison's verdict is all that is public of the shares. */
static int feldman_ok(const ms_tkms_refresh *r, unsigned i, unsigned j, const tsc sh[TK_NCURVE])
{
    for (unsigned c = 0; c < TK_NCURVE; c++) {
        uint8_t want[TG_PT_MAX], got[TG_PT_MAX];
        const tgroup *g = tk_groups[c];
        if (tg_feldman_eval_var(g, want, r->feld[c][i - 1], r->t, j) != MS_OK ||
            tg_mul_gen(g, got, &sh[c]) != MS_OK || memcmp(want, got, g->pt_bytes) != 0)
            return 0;
    }
    return 1;
}

static ms_err put_comms(uint8_t *out, const ms_tkms_refresh *r)
{
    size_t off = 0;
    ms_err err = MS_OK;
    for (unsigned c = 0; c < TK_NCURVE && err == MS_OK; c++) {
        const tgroup *g = tk_groups[c];
        for (unsigned k = 0; k <= r->t && err == MS_OK; k++) {
            if (k == 0 && r->test_mode != TKMS_REFRESH_TEST_NONZERO_OPEN)
                memset(out + off, 0, g->pt_bytes); /* [0]gen: infinity */
            else
                err = tg_mul_gen(g, out + off, &r->f[c][k]);
            off += g->pt_bytes;
        }
    }
    return err;
}

/* Stores dealer `from`'s commitments; notes a constant term other than 0. */
static ms_err get_comms(ms_tkms_refresh *r, unsigned from, const uint8_t *in)
{
    size_t off = 0;
    for (unsigned c = 0; c < TK_NCURVE; c++) {
        const tgroup *g = tk_groups[c];
        for (unsigned k = 0; k <= r->t; k++) {
            if (tg_check_var(g, in + off, 1) != MS_OK)
                return MS_ERR_BAD_ENCODING;
            off += g->pt_bytes;
        }
    }
    off = 0;
    for (unsigned c = 0; c < TK_NCURVE; c++) {
        const tgroup *g = tk_groups[c];
        if (!tg_is_infinity(g, in + off))
            r->nonzero |= BIT(from);
        memcpy(r->feld[c][from - 1], in + off, (size_t)(r->t + 1) * g->pt_bytes);
        off += (size_t)(r->t + 1) * g->pt_bytes;
    }
    return MS_OK;
}

static unsigned popcount32(uint32_t x)
{
    unsigned c = 0;
    for (; x; x &= x - 1)
        c++;
    return c;
}

/* ---- rounds ------------------------------------------------------------------------------ */

ms_err ms_tkms_refresh_broadcast(ms_tkms_refresh *r, unsigned round, uint8_t *out, size_t cap,
                                 size_t *len)
{
    if (r == NULL || out == NULL || len == NULL || round < 1 ||
        round > MS_TKMS_REFRESH_ROUNDS || r->ended != round - 1)
        return MS_ERR_ARG;
    if (cap < ms_tkms_refresh_msg_max(r->n, r->t))
        return MS_ERR_BUFFER_TOO_SMALL;
    out[0] = (uint8_t)round;
    out[1] = (uint8_t)r->idx;
    if (round == 1) {
        *len = 2 + comm_bytes(r->t);
        return put_comms(out + 2, r);
    }
    if (round == 2) {
        uint32_t m = r->complaints_by[r->idx - 1];
        out[2] = (uint8_t)(m >> 24);
        out[3] = (uint8_t)(m >> 16);
        out[4] = (uint8_t)(m >> 8);
        out[5] = (uint8_t)m;
        *len = 6;
        return MS_OK;
    }
    /* 3: my answers, my polynomials at each complainer */
    size_t off = 3, count = 0;
    for (unsigned j = 1; j <= r->n; j++) {
        if (j == r->idx || !(r->complaints_by[j - 1] & BIT(r->idx)))
            continue;
        tsc sh[TK_NCURVE];
        eval_mine(r, j, sh);
        if (r->test_mode == TKMS_REFRESH_TEST_BAD_SHARE)
            tsc_add(&sh[0], &sh[0], &sh[0], &tg_sakke); /* the same wrong share again */
        out[off] = (uint8_t)j;
        rec_put(out + off + 1, sh);
        ms_wipe(sh, sizeof sh);
        off += 1 + RF_REC;
        count++;
    }
    out[2] = (uint8_t)count;
    *len = off;
    return MS_OK;
}

ms_err ms_tkms_refresh_private(ms_tkms_refresh *r, unsigned to, uint8_t *out, size_t cap,
                               size_t *len)
{
    if (r == NULL || out == NULL || len == NULL || to < 1 || to > r->n || to == r->idx ||
        r->ended != 0)
        return MS_ERR_ARG;
    if (cap < 3 + RF_REC)
        return MS_ERR_BUFFER_TOO_SMALL;
    tsc sh[TK_NCURVE];
    eval_mine(r, to, sh);
    /* tests: a wrong share for the last server (twice the right one) */
    if (r->test_mode == TKMS_REFRESH_TEST_BAD_SHARE && to == (r->idx == r->n ? 1 : r->n))
        tsc_add(&sh[0], &sh[0], &sh[0], &tg_sakke);
    out[0] = 1;
    out[1] = (uint8_t)r->idx;
    out[2] = (uint8_t)to;
    rec_put(out + 3, sh);
    ms_wipe(sh, sizeof sh);
    *len = 3 + RF_REC;
    return MS_OK;
}

ms_err ms_tkms_refresh_receive(ms_tkms_refresh *r, unsigned round, unsigned from,
                               const uint8_t *msg, size_t len, const uint8_t *priv,
                               size_t priv_len)
{
    if (r == NULL || msg == NULL || round < 1 || round > MS_TKMS_REFRESH_ROUNDS ||
        r->ended != round - 1 || from < 1 || from > r->n || from == r->idx)
        return MS_ERR_ARG;
    if (len < 2 || msg[0] != round || msg[1] != from)
        return MS_ERR_BAD_ENCODING;
    if (round == 1) {
        if (len != 2 + comm_bytes(r->t) || get_comms(r, from, msg + 2) != MS_OK)
            return MS_ERR_BAD_ENCODING;
        r->have_r1 |= BIT(from);
        tsc sh[TK_NCURVE];
        if (priv == NULL || priv_len != 3 + RF_REC || priv[0] != 1 || priv[1] != from ||
            priv[2] != r->idx || rec_get(priv + 3, sh) != MS_OK)
            return MS_ERR_BAD_ENCODING;
        for (unsigned c = 0; c < TK_NCURVE; c++)
            r->sh[c][from - 1] = sh[c];
        ms_wipe(sh, sizeof sh);
        r->have_priv |= BIT(from);
        return MS_OK;
    }
    if (round == 2) {
        if (len != 6)
            return MS_ERR_BAD_ENCODING;
        uint32_t m = (uint32_t)msg[2] << 24 | (uint32_t)msg[3] << 16 | (uint32_t)msg[4] << 8 |
                     msg[5];
        r->complaints_by[from - 1] = m & (BIT(r->n + 1) - 1);
        return MS_OK;
    }
    /* 3: dealer `from` answers its complainers publicly */
    if (len < 3 || len != 3 + (size_t)msg[2] * (1 + RF_REC))
        return MS_ERR_BAD_ENCODING;
    for (size_t e = 0; e < msg[2]; e++) {
        const uint8_t *p = msg + 3 + e * (1 + RF_REC);
        unsigned who = p[0];
        tsc sh[TK_NCURVE];
        if (who < 1 || who > r->n || !(r->complaints_by[who - 1] & BIT(from)) ||
            !(r->have_r1 & BIT(from)) || rec_get(p + 1, sh) != MS_OK)
            continue; /* a malformed or unasked-for answer counts as none */
        if (feldman_ok(r, from, who, sh)) {
            r->answered[from - 1] |= BIT(who);
            if (who == r->idx)
                for (unsigned c = 0; c < TK_NCURVE; c++)
                    r->sh[c][from - 1] = sh[c];
        }
        ms_wipe(sh, sizeof sh);
    }
    return MS_OK;
}

/* sum over the servers `ids` of lambda_j [s_j]gen, from the public key shares pts. */
static ms_err interpolate0(const tgroup *g, uint8_t *out, const uint8_t *pts, size_t stride,
                           const unsigned *ids, size_t m)
{
    const uint8_t *p[MS_TKMS_MAX_T + 1];
    tsc lam[MS_TKMS_MAX_T + 1];
    for (size_t k = 0; k < m; k++) {
        p[k] = pts + (ids[k] - 1) * stride;
        tsc_lagrange_var(&lam[k], ids, m, k, 0, g);
    }
    return tg_msm_var(g, out, p, lam, m);
}

/* The new shares and public key shares from the qualified dealers; the checks. */
static ms_err finish(ms_tkms_refresh *r, char *detail, size_t cap)
{
    ms_tkms_server *s = r->s;
    ms_tkms_public *pub = &r->pub;
    *pub = s->pub;
    r->z_new = s->z_j;
    r->ksak_new = s->ksak_j;
    ms_err err = MS_OK;
    for (unsigned i = 1; i <= r->n && err == MS_OK; i++) {
        if (!(r->qual & BIT(i)))
            continue;
        tsc_add(&r->z_new, &r->z_new, &r->sh[0][i - 1], &tg_sakke);
        tsc_add(&r->ksak_new, &r->ksak_new, &r->sh[1][i - 1], &tg_p256);
        for (unsigned x = 1; x <= r->n && err == MS_OK; x++)
            for (unsigned c = 0; c < TK_NCURVE && err == MS_OK; c++) {
                const tgroup *g = tk_groups[c];
                uint8_t pt[TG_PT_MAX];
                uint8_t *acc = c == 0 ? pub->Zj[x - 1] : pub->kpakj[x - 1];
                if ((err = tg_feldman_eval_var(g, pt, r->feld[c][i - 1], r->t, x)) == MS_OK)
                    err = tg_add_var(g, acc, acc, pt);
            }
    }
    if (err != MS_OK)
        return err;
    /* Z and KPAK are where they were: from the first and from the last t+1 servers */
    unsigned lo[MS_TKMS_MAX_T + 1], hi[MS_TKMS_MAX_T + 1];
    for (unsigned k = 0; k <= r->t; k++) {
        lo[k] = k + 1;
        hi[k] = r->n - r->t + k;
    }
    for (int pass = 0; pass < 2; pass++) {
        const unsigned *ids = pass == 0 ? lo : hi;
        uint8_t z[TG_PT_MAX], k[TG_PT_MAX];
        if ((err = interpolate0(&tg_sakke, z, pub->Zj[0], sizeof pub->Zj[0], ids, r->t + 1)) !=
                MS_OK ||
            (err = interpolate0(&tg_p256, k, pub->kpakj[0], sizeof pub->kpakj[0], ids,
                                r->t + 1)) != MS_OK)
            return err;
        if (memcmp(z, pub->Z, sizeof pub->Z) != 0 || memcmp(k, pub->kpak, sizeof pub->kpak) != 0)
            return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                                  "the refreshed public key shares no longer give Z and KPAK");
    }
    uint8_t mine[TG_PT_MAX];
    if ((err = tg_mul_gen(&tg_sakke, mine, &r->z_new)) != MS_OK)
        return err;
    if (memcmp(mine, pub->Zj[r->idx - 1], sizeof pub->Zj[0]) != 0)
        return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                              "our new z share does not match the public commitments");
    if ((err = tg_mul_gen(&tg_p256, mine, &r->ksak_new)) != MS_OK)
        return err;
    if (memcmp(mine, pub->kpakj[r->idx - 1], sizeof pub->kpakj[0]) != 0)
        return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                              "our new KSAK share does not match the public commitments");
    return MS_OK;
}

ms_err ms_tkms_refresh_end_round(ms_tkms_refresh *r, unsigned round, char *detail, size_t cap)
{
    if (r == NULL || round < 1 || round > MS_TKMS_REFRESH_ROUNDS || r->ended != round - 1)
        return MS_ERR_ARG;
    const unsigned me = r->idx;
    ms_err err = MS_OK;
    if (round == 1) {
        /* my own share of my polynomials, my commitments as everybody sees them */
        tsc own[TK_NCURVE];
        eval_mine(r, me, own);
        for (unsigned c = 0; c < TK_NCURVE; c++)
            r->sh[c][me - 1] = own[c];
        ms_wipe(own, sizeof own);
        uint8_t buf[(MS_TKMS_MAX_T + 1) * (257 + 65)];
        if ((err = put_comms(buf, r)) == MS_OK)
            err = get_comms(r, me, buf);
        r->have_r1 |= BIT(me);
        uint32_t mine = 0;
        for (unsigned i = 1; i <= r->n && err == MS_OK; i++) {
            if (i == me)
                continue;
            tsc sh[TK_NCURVE] = {r->sh[0][i - 1], r->sh[1][i - 1]};
            if (!(r->have_r1 & r->have_priv & BIT(i)) || !feldman_ok(r, i, me, sh))
                mine |= BIT(i);
            ms_wipe(sh, sizeof sh);
        }
        r->complaints_by[me - 1] = mine;
    } else if (round == 3) {
        uint32_t qual = 0;
        for (unsigned i = 1; i <= r->n; i++) {
            uint32_t complainers = 0;
            for (unsigned j = 1; j <= r->n; j++)
                if (r->complaints_by[j - 1] & BIT(i))
                    complainers |= BIT(j);
            if (i == me)
                r->answered[i - 1] = complainers;
            if ((r->have_r1 & BIT(i)) && !(r->nonzero & BIT(i)) &&
                popcount32(complainers) <= r->t && (complainers & ~r->answered[i - 1]) == 0)
                qual |= BIT(i);
        }
        r->qual = qual;
        /* at least t+1 dealers: one of them honest, so the new shares are fresh */
        if (popcount32(qual) < r->t + 1)
            err = ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                                 "qualified set too small (mask %#x)", (unsigned)qual);
        else
            err = finish(r, detail, cap);
    }
    if (err == MS_OK)
        r->ended = round;
    return err;
}

uint32_t ms_tkms_refresh_complaints(const ms_tkms_refresh *r)
{
    return r != NULL ? r->complaints_by[r->idx - 1] : 0;
}

uint32_t ms_tkms_refresh_qualified(const ms_tkms_refresh *r)
{
    return r != NULL && r->ended >= MS_TKMS_REFRESH_ROUNDS ? r->qual : 0;
}

ms_err ms_tkms_refresh_public(const ms_tkms_refresh *r, ms_tkms_public *pub)
{
    if (r == NULL || pub == NULL || r->ended < MS_TKMS_REFRESH_ROUNDS)
        return MS_ERR_ARG;
    *pub = r->pub;
    return MS_OK;
}

ms_err ms_tkms_refresh_apply(ms_tkms_refresh *r)
{
    if (r == NULL || r->ended != MS_TKMS_REFRESH_ROUNDS)
        return MS_ERR_ARG;
    ms_tkms_server *s = r->s;
    s->z_j = r->z_new;
    s->ksak_j = r->ksak_new;
    s->pub = r->pub;
    ms_wipe(&r->z_new, sizeof r->z_new);
    ms_wipe(&r->ksak_new, sizeof r->ksak_new);
    r->ended = MS_TKMS_REFRESH_ROUNDS + 1; /* applied once */
    return MS_OK;
}
