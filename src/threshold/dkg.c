/*
 * GJKR distributed key generation (Gennaro, Jarecki, Krawczyk, Rabin), run for z on the
 * SAKKE curve and KSAK on P-256 in the same messages: Pedersen VSS first (so that no
 * dealer can bias the public key after seeing the others'), then the Feldman reveal, with
 * the secret of a dealer whose Feldman commitments do not match rebuilt from shares.
 *
 * Message layouts (every blob starts with round, sender):
 *   1 bcast: Pedersen commitments, (t+1) SAKKE points then (t+1) P-256 points
 *   1 priv:  1, sender, receiver, one share record (TK_REC: s, s' on SAKKE; s, s' on P-256)
 *   2 bcast: complaint mask (4 octets, bit i-1 for dealer i)
 *   3 bcast: count, then count x (complainer index, share record for it)
 *   4 bcast: Feldman commitments, (t+1) SAKKE points then (t+1) P-256 points
 *   5 bcast: count, then count x (accused dealer, the sender's share record from it)
 *   6 bcast: count, then count x (accused dealer, the sender's share record from it)
 */
#include <stdlib.h>
#include <string.h>

#include "crypto/ct.h"
#include "crypto/secmem.h"
#include "tkms_internal.h"
#include "util/detail.h"

const tgroup *const tk_groups[TK_NCURVE] = {&tg_sakke, &tg_p256};

#define BIT(i) ((uint32_t)1 << ((i) - 1))

const ms_rng *tk_rng(const ms_tkms_server *s)
{
    return s->has_rng ? &s->rng : NULL;
}

static size_t comm_bytes(unsigned t)
{
    return (size_t)(t + 1) * (257 + 65);
}

size_t ms_tkms_msg_max(unsigned n, unsigned t, size_t identities)
{
    size_t dkg = 3 + (size_t)n * (1 + TK_REC);
    if (2 + comm_bytes(t) > dkg)
        dkg = 2 + comm_bytes(t);
    /* batch: per identity, rho's Feldman and v's Pedersen commitments (round 1) or v's
     * Feldman and the re-sharing commitments (round 3); shares 128 + 64 */
    size_t batch = 2 + identities * comm_bytes(t) + 8;
    return dkg > batch ? dkg : batch;
}

ms_err ms_tkms_server_new(ms_tkms_server **out, unsigned n, unsigned t, unsigned index,
                          const ms_rng *rng)
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    if (t < 1 || t > MS_TKMS_MAX_T || n > MS_TKMS_MAX_N || 2 * t + 1 > n || index < 1 ||
        index > n)
        return MS_ERR_ARG;
    ms_err err = tg_init();
    if (err != MS_OK)
        return err;
    /* shares and polynomials: locked memory, wiped on free */
    ms_tkms_server *s = ms_secure_alloc(sizeof *s);
    if (s == NULL)
        return MS_ERR_NOMEM;
    s->n = n;
    s->t = t;
    s->idx = index;
    if (rng != NULL) {
        s->rng = *rng;
        s->has_rng = 1;
    }
    for (unsigned c = 0; c < TK_NCURVE && err == MS_OK; c++)
        for (unsigned k = 0; k <= t && err == MS_OK; k++)
            if ((err = tsc_random(&s->f[c][k], tk_groups[c], rng)) == MS_OK)
                err = tsc_random(&s->fb[c][k], tk_groups[c], rng);
    if (err != MS_OK) {
        ms_tkms_server_free(s);
        return err;
    }
    for (unsigned c = 0; c < TK_NCURVE; c++) {
        tsc_poly_eval(&s->sh[c][index - 1], s->f[c], t, index, tk_groups[c]);
        tsc_poly_eval(&s->shb[c][index - 1], s->fb[c], t, index, tk_groups[c]);
    }
    *out = s;
    return MS_OK;
}

void ms_tkms_server_free(ms_tkms_server *s)
{
    if (s == NULL)
        return;
    ms_secure_free(s, sizeof *s);
}

/* ---- share records ------------------------------------------------------------------- */

static void rec_put(uint8_t *out, const tsc sh[TK_NCURVE], const tsc shb[TK_NCURVE])
{
    tsc_to_bytes(out, &sh[0], &tg_sakke);
    tsc_to_bytes(out + 128, &shb[0], &tg_sakke);
    tsc_to_bytes(out + 256, &sh[1], &tg_p256);
    tsc_to_bytes(out + 288, &shb[1], &tg_p256);
}

static ms_err rec_get(const uint8_t *in, tsc sh[TK_NCURVE], tsc shb[TK_NCURVE])
{
    ms_err err;
    if ((err = tsc_from_bytes(&sh[0], in, &tg_sakke)) != MS_OK ||
        (err = tsc_from_bytes(&shb[0], in + 128, &tg_sakke)) != MS_OK ||
        (err = tsc_from_bytes(&sh[1], in + 256, &tg_p256)) != MS_OK ||
        (err = tsc_from_bytes(&shb[1], in + 288, &tg_p256)) != MS_OK)
        return err;
    return MS_OK;
}

/* The shares dealer i gave server j match its Pedersen commitments, on both curves. */
static int pedersen_ok(const ms_tkms_server *s, unsigned i, unsigned j,
                       const tsc sh[TK_NCURVE], const tsc shb[TK_NCURVE])
{
    for (unsigned c = 0; c < TK_NCURVE; c++) {
        uint8_t want[TG_PT_MAX], got[TG_PT_MAX];
        const tgroup *g = tk_groups[c];
        if (tg_feldman_eval_var(g, want, s->ped[c][i - 1], s->t, j) != MS_OK ||
            tg_pedersen(g, got, &sh[c], &shb[c]) != MS_OK || memcmp(want, got, g->pt_bytes) != 0)
            return 0;
    }
    return 1;
}

static int feldman_ok(const ms_tkms_server *s, unsigned i, unsigned j, const tsc sh[TK_NCURVE])
{
    if (!(s->have_r4 & BIT(i)))
        return 0;
    for (unsigned c = 0; c < TK_NCURVE; c++) {
        uint8_t want[TG_PT_MAX], got[TG_PT_MAX];
        const tgroup *g = tk_groups[c];
        if (tg_feldman_eval_var(g, want, s->feld[c][i - 1], s->t, j) != MS_OK ||
            tg_mul_gen(g, got, &sh[c]) != MS_OK || memcmp(want, got, g->pt_bytes) != 0)
            return 0;
    }
    return 1;
}

static ms_err put_comms(uint8_t *out, const ms_tkms_server *s, int pedersen)
{
    size_t off = 0;
    ms_err err = MS_OK;
    for (unsigned c = 0; c < TK_NCURVE && err == MS_OK; c++)
        for (unsigned k = 0; k <= s->t && err == MS_OK; k++) {
            const tgroup *g = tk_groups[c];
            err = pedersen ? tg_pedersen(g, out + off, &s->f[c][k], &s->fb[c][k])
                           : tg_mul_gen(g, out + off, &s->f[c][k]);
            off += g->pt_bytes;
        }
    return err;
}

static ms_err get_comms(uint8_t dst[TK_NCURVE][MS_TKMS_MAX_N][TK_COMM_MAX], unsigned from,
                        const ms_tkms_server *s, const uint8_t *in)
{
    size_t off = 0;
    for (unsigned c = 0; c < TK_NCURVE; c++)
        for (unsigned k = 0; k <= s->t; k++) {
            const tgroup *g = tk_groups[c];
            /* a zero coefficient commits to infinity: allowed (it is no secret) */
            if (tg_check_var(g, in + off, 1) != MS_OK)
                return MS_ERR_BAD_ENCODING;
            memcpy(dst[c][from - 1] + k * g->pt_bytes, in + off, g->pt_bytes);
            off += g->pt_bytes;
        }
    return MS_OK;
}

/* count, then count x (index, record): the entries for `mask`, each record from `pick`. */
static size_t put_records(uint8_t *out, const ms_tkms_server *s, uint32_t mask, int as_dealer)
{
    size_t off = 3, count = 0;
    for (unsigned i = 1; i <= s->n; i++) {
        if (!(mask & BIT(i)))
            continue;
        out[off] = (uint8_t)i;
        if (as_dealer) {
            /* my polynomials at complainer i */
            tsc sh[TK_NCURVE], shb[TK_NCURVE];
            for (unsigned c = 0; c < TK_NCURVE; c++) {
                tsc_poly_eval(&sh[c], s->f[c], s->t, i, tk_groups[c]);
                tsc_poly_eval(&shb[c], s->fb[c], s->t, i, tk_groups[c]);
            }
            rec_put(out + off + 1, sh, shb);
            ms_wipe(sh, sizeof sh);
            ms_wipe(shb, sizeof shb);
        } else {
            /* the shares dealer i gave me */
            tsc sh[TK_NCURVE] = {s->sh[0][i - 1], s->sh[1][i - 1]};
            tsc shb[TK_NCURVE] = {s->shb[0][i - 1], s->shb[1][i - 1]};
            rec_put(out + off + 1, sh, shb);
            ms_wipe(sh, sizeof sh);
            ms_wipe(shb, sizeof shb);
        }
        off += 1 + TK_REC;
        count++;
    }
    out[2] = (uint8_t)count;
    return off;
}

static unsigned popcount32(uint32_t x)
{
    unsigned c = 0;
    for (; x; x &= x - 1)
        c++;
    return c;
}

ms_err ms_tkms_dkg_broadcast(ms_tkms_server *s, unsigned round, uint8_t *out, size_t cap,
                             size_t *len)
{
    if (s == NULL || out == NULL || len == NULL || round < 1 || round > MS_TKMS_DKG_ROUNDS ||
        s->ended != round - 1)
        return MS_ERR_ARG;
    if (cap < ms_tkms_msg_max(s->n, s->t, 0))
        return MS_ERR_BUFFER_TOO_SMALL;
    out[0] = (uint8_t)round;
    out[1] = (uint8_t)s->idx;
    ms_err err = MS_OK;
    switch (round) {
    case 1:
    case 4:
        err = put_comms(out + 2, s, round == 1);
        *len = 2 + comm_bytes(s->t);
        break;
    case 2: {
        uint32_t m = s->complaints_by[s->idx - 1];
        out[2] = (uint8_t)(m >> 24);
        out[3] = (uint8_t)(m >> 16);
        out[4] = (uint8_t)(m >> 8);
        out[5] = (uint8_t)m;
        *len = 6;
        break;
    }
    case 3: {
        uint32_t complainers = 0;
        for (unsigned j = 1; j <= s->n; j++)
            if (s->complaints_by[j - 1] & BIT(s->idx))
                complainers |= BIT(j);
        *len = put_records(out, s, complainers, 1);
        break;
    }
    case 5:
        *len = put_records(out, s, s->r5_mine, 0);
        break;
    default: /* 6 */
        *len = put_records(out, s, s->accused & s->qual, 0);
        break;
    }
    return err;
}

ms_err ms_tkms_dkg_private(ms_tkms_server *s, unsigned to, uint8_t *out, size_t cap, size_t *len)
{
    if (s == NULL || out == NULL || len == NULL || to < 1 || to > s->n || to == s->idx ||
        s->ended != 0)
        return MS_ERR_ARG;
    if (cap < 3 + TK_REC)
        return MS_ERR_BUFFER_TOO_SMALL;
    tsc sh[TK_NCURVE], shb[TK_NCURVE];
    for (unsigned c = 0; c < TK_NCURVE; c++) {
        tsc_poly_eval(&sh[c], s->f[c], s->t, to, tk_groups[c]);
        tsc_poly_eval(&shb[c], s->fb[c], s->t, to, tk_groups[c]);
    }
    out[0] = 1;
    out[1] = (uint8_t)s->idx;
    out[2] = (uint8_t)to;
    rec_put(out + 3, sh, shb);
    ms_wipe(sh, sizeof sh);
    ms_wipe(shb, sizeof shb);
    *len = 3 + TK_REC;
    return MS_OK;
}

/* Entries of a round 3, 5 or 6 message: count, (index, record)*. */
static ms_err records_ok(const uint8_t *msg, size_t len, unsigned n)
{
    if (len < 3 || len != 3 + (size_t)msg[2] * (1 + TK_REC))
        return MS_ERR_BAD_ENCODING;
    for (size_t e = 0; e < msg[2]; e++) {
        unsigned who = msg[3 + e * (1 + TK_REC)];
        if (who < 1 || who > n)
            return MS_ERR_BAD_ENCODING;
    }
    return MS_OK;
}

ms_err ms_tkms_dkg_receive(ms_tkms_server *s, unsigned round, unsigned from, const uint8_t *msg,
                           size_t len, const uint8_t *priv, size_t priv_len)
{
    if (s == NULL || msg == NULL || round < 1 || round > MS_TKMS_DKG_ROUNDS ||
        s->ended != round - 1 || from < 1 || from > s->n || from == s->idx)
        return MS_ERR_ARG;
    if (len < 2 || msg[0] != round || msg[1] != from)
        return MS_ERR_BAD_ENCODING;
    switch (round) {
    case 1: {
        if (len != 2 + comm_bytes(s->t) || get_comms(s->ped, from, s, msg + 2) != MS_OK)
            return MS_ERR_BAD_ENCODING;
        s->have_r1 |= BIT(from);
        if (priv == NULL || priv_len != 3 + TK_REC || priv[0] != 1 || priv[1] != from ||
            priv[2] != s->idx)
            return MS_ERR_BAD_ENCODING;
        tsc sh[TK_NCURVE], shb[TK_NCURVE];
        if (rec_get(priv + 3, sh, shb) != MS_OK)
            return MS_ERR_BAD_ENCODING;
        for (unsigned c = 0; c < TK_NCURVE; c++) {
            s->sh[c][from - 1] = sh[c];
            s->shb[c][from - 1] = shb[c];
        }
        ms_wipe(sh, sizeof sh);
        ms_wipe(shb, sizeof shb);
        s->have_priv |= BIT(from);
        return MS_OK;
    }
    case 2:
        if (len != 6)
            return MS_ERR_BAD_ENCODING;
        s->complaints_by[from - 1] = ((uint32_t)msg[2] << 24 | (uint32_t)msg[3] << 16 |
                                      (uint32_t)msg[4] << 8 | msg[5]) &
                                     ((s->n >= 32 ? 0 : (BIT(s->n + 1) - 1)));
        return MS_OK;
    case 3:
    case 5:
    case 6: {
        if (records_ok(msg, len, s->n) != MS_OK)
            return MS_ERR_BAD_ENCODING;
        for (size_t e = 0; e < msg[2]; e++) {
            const uint8_t *p = msg + 3 + e * (1 + TK_REC);
            unsigned who = p[0];
            tsc sh[TK_NCURVE], shb[TK_NCURVE];
            if (rec_get(p + 1, sh, shb) != MS_OK)
                continue; /* a malformed answer counts as none */
            if (round == 3) {
                /* dealer `from` answers complainer `who` publicly */
                if (!(s->complaints_by[who - 1] & BIT(from)) || !pedersen_ok(s, from, who, sh, shb))
                    continue;
                s->answered[from - 1] |= BIT(who);
                if (who == s->idx)
                    for (unsigned c = 0; c < TK_NCURVE; c++) {
                        s->sh[c][from - 1] = sh[c];
                        s->shb[c][from - 1] = shb[c];
                    }
            } else if (round == 5) {
                /* `from` accuses dealer `who`: valid if its shares are the dealer's
                 * (Pedersen) and do not match the dealer's Feldman commitments */
                if ((s->qual & BIT(who)) && pedersen_ok(s, who, from, sh, shb) &&
                    !feldman_ok(s, who, from, sh))
                    s->accused |= BIT(who);
            } else {
                /* `from` reveals its shares from accused dealer `who` */
                if ((s->accused & s->qual & BIT(who)) && pedersen_ok(s, who, from, sh, shb)) {
                    for (unsigned c = 0; c < TK_NCURVE; c++)
                        s->rev[c][who - 1][from - 1] = sh[c];
                    s->rev_have[who - 1] |= BIT(from);
                }
            }
            ms_wipe(sh, sizeof sh);
            ms_wipe(shb, sizeof shb);
        }
        return MS_OK;
    }
    default: /* 4 */
        if (len != 2 + comm_bytes(s->t) || get_comms(s->feld, from, s, msg + 2) != MS_OK)
            return MS_ERR_BAD_ENCODING;
        s->have_r4 |= BIT(from);
        return MS_OK;
    }
}

/* The public values of dealer i's polynomial at x (0: its constant), per curve, added
 * into acc: from its Feldman commitments, or for an accused dealer from t+1 revealed
 * shares. */
static ms_err add_dealer_at(ms_tkms_server *s, unsigned i, unsigned x, unsigned c, uint8_t *acc)
{
    const tgroup *g = tk_groups[c];
    uint8_t pt[TG_PT_MAX];
    ms_err err;
    if (!(s->accused & BIT(i))) {
        err = tg_feldman_eval_var(g, pt, s->feld[c][i - 1], s->t, x);
    } else {
        unsigned ids[MS_TKMS_MAX_T + 1];
        size_t m = 0;
        for (unsigned j = 1; j <= s->n && m <= s->t; j++)
            if (s->rev_have[i - 1] & BIT(j))
                ids[m++] = j;
        if (m < s->t + 1)
            return MS_ERR_THRESHOLD_SHARE;
        tsc val, lam, term;
        tsc_zero(&val);
        for (size_t k = 0; k < m; k++) {
            tsc_lagrange_var(&lam, ids, m, k, x, g);
            tsc_mul(&term, &lam, &s->rev[c][i - 1][ids[k] - 1], g);
            tsc_add(&val, &val, &term, g);
        }
        err = tg_mul_gen(g, pt, &val);
    }
    if (err == MS_OK)
        err = tg_add_var(g, acc, acc, pt);
    return err;
}

static ms_err finish(ms_tkms_server *s, char *detail, size_t cap)
{
    ms_tkms_public *pub = &s->pub;
    memset(pub, 0, sizeof *pub);
    pub->n = s->n;
    pub->t = s->t;
    pub->qual = s->qual;
    ms_err err = MS_OK;
    for (unsigned i = 1; i <= s->n && err == MS_OK; i++) {
        if (!(s->qual & BIT(i)))
            continue;
        if ((err = add_dealer_at(s, i, 0, 0, pub->Z)) != MS_OK ||
            (err = add_dealer_at(s, i, 0, 1, pub->kpak)) != MS_OK)
            break;
        for (unsigned x = 1; x <= s->n && err == MS_OK; x++)
            if ((err = add_dealer_at(s, i, x, 0, pub->Zj[x - 1])) == MS_OK)
                err = add_dealer_at(s, i, x, 1, pub->kpakj[x - 1]);
        if (err == MS_ERR_THRESHOLD_SHARE)
            return ms_detail_fail(err, detail, cap,
                                  "fewer than t+1 valid shares of accused dealer %u were revealed",
                                  i);
    }
    if (err != MS_OK)
        return err;
    if (tg_is_infinity(&tg_sakke, pub->Z) || tg_is_infinity(&tg_p256, pub->kpak))
        return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                              "the generated public key is the point at infinity");
    /* our own share must match what everybody computes for us */
    uint8_t mine[TG_PT_MAX];
    if ((err = tg_mul_gen(&tg_sakke, mine, &s->z_j)) != MS_OK)
        return err;
    if (memcmp(mine, pub->Zj[s->idx - 1], 257) != 0)
        return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                              "our z share does not match the public commitments");
    if ((err = tg_mul_gen(&tg_p256, mine, &s->ksak_j)) != MS_OK)
        return err;
    if (memcmp(mine, pub->kpakj[s->idx - 1], 65) != 0)
        return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                              "our KSAK share does not match the public commitments");
    return MS_OK;
}

ms_err ms_tkms_dkg_end_round(ms_tkms_server *s, unsigned round, char *detail, size_t cap)
{
    if (s == NULL || round < 1 || round > MS_TKMS_DKG_ROUNDS || s->ended != round - 1)
        return MS_ERR_ARG;
    const unsigned me = s->idx;
    ms_err err = MS_OK;
    switch (round) {
    case 1: {
        uint32_t mine = 0;
        for (unsigned i = 1; i <= s->n; i++) {
            if (i == me)
                continue;
            tsc sh[TK_NCURVE] = {s->sh[0][i - 1], s->sh[1][i - 1]};
            tsc shb[TK_NCURVE] = {s->shb[0][i - 1], s->shb[1][i - 1]};
            if (!(s->have_r1 & s->have_priv & BIT(i)) || !pedersen_ok(s, i, me, sh, shb))
                mine |= BIT(i);
            ms_wipe(sh, sizeof sh);
            ms_wipe(shb, sizeof shb);
        }
        s->complaints_by[me - 1] = mine;
        s->have_r1 |= BIT(me);
        uint8_t buf[(MS_TKMS_MAX_T + 1) * (257 + 65)];
        if ((err = put_comms(buf, s, 1)) == MS_OK)
            err = get_comms(s->ped, me, s, buf);
        break;
    }
    case 2:
        break;
    case 3: {
        uint32_t qual = 0;
        for (unsigned i = 1; i <= s->n; i++) {
            uint32_t complainers = 0;
            for (unsigned j = 1; j <= s->n; j++)
                if (s->complaints_by[j - 1] & BIT(i))
                    complainers |= BIT(j);
            if (i == me)
                s->answered[i - 1] = complainers;
            if ((s->have_r1 & BIT(i)) && popcount32(complainers) <= s->t &&
                (complainers & ~s->answered[i - 1]) == 0)
                qual |= BIT(i);
        }
        s->qual = qual;
        /* a server left out as a dealer still holds its share of the others' secrets */
        if (popcount32(qual) < s->t + 1) {
            err = ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                                 "qualified set too small (mask %#x)", (unsigned)qual);
            break;
        }
        tsc_zero(&s->z_j);
        tsc_zero(&s->ksak_j);
        for (unsigned i = 1; i <= s->n; i++)
            if (qual & BIT(i)) {
                tsc_add(&s->z_j, &s->z_j, &s->sh[0][i - 1], &tg_sakke);
                tsc_add(&s->ksak_j, &s->ksak_j, &s->sh[1][i - 1], &tg_p256);
            }
        break;
    }
    case 4: {
        uint8_t buf[(MS_TKMS_MAX_T + 1) * (257 + 65)];
        if ((err = put_comms(buf, s, 0)) != MS_OK || (err = get_comms(s->feld, me, s, buf)) != MS_OK)
            break;
        s->have_r4 |= BIT(me);
        uint32_t mine = 0;
        for (unsigned i = 1; i <= s->n; i++) {
            if (i == me || !(s->qual & BIT(i)))
                continue;
            tsc sh[TK_NCURVE] = {s->sh[0][i - 1], s->sh[1][i - 1]};
            if (!feldman_ok(s, i, me, sh))
                mine |= BIT(i);
            ms_wipe(sh, sizeof sh);
        }
        s->r5_mine = mine;
        s->accused |= mine;
        break;
    }
    case 5:
        /* our own shares of the accused dealers count towards their reconstruction */
        for (unsigned i = 1; i <= s->n; i++)
            if (s->accused & s->qual & BIT(i)) {
                for (unsigned c = 0; c < TK_NCURVE; c++)
                    s->rev[c][i - 1][me - 1] = s->sh[c][i - 1];
                s->rev_have[i - 1] |= BIT(me);
            }
        break;
    default: /* 6 */
        err = finish(s, detail, cap);
        break;
    }
    if (err == MS_OK)
        s->ended = round;
    return err;
}

ms_err ms_tkms_server_public(const ms_tkms_server *s, ms_tkms_public *pub)
{
    if (s == NULL || pub == NULL || s->ended != MS_TKMS_DKG_ROUNDS)
        return MS_ERR_ARG;
    *pub = s->pub;
    return MS_OK;
}

uint32_t ms_tkms_dkg_complaints(const ms_tkms_server *s, unsigned round)
{
    if (s == NULL)
        return 0;
    return round == 2 ? s->complaints_by[s->idx - 1] : round == 5 ? s->r5_mine : 0;
}
