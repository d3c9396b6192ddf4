/* In-process drivers for the threshold tests: carry every server's messages to every
 * other server round by round, with a hook that may alter a message on its way (a
 * cheating server). Header-only: each test includes it. */
#ifndef MS_TESTS_THRESHOLD_DRIVER_H
#define MS_TESTS_THRESHOLD_DRIVER_H

#include <stdlib.h>
#include <string.h>

#include "mikeysakke/threshold.h"
#include "testutil.h"
#include "threshold/tkms_internal.h"

/* Called for the message from `from` to `to` in `round` (priv NULL outside private
 * rounds); may change bytes in place. Also called with from = to = 0 and no message once
 * every server has ended `round`. */
typedef void (*tk_tamper)(unsigned round, unsigned from, unsigned to, uint8_t *msg, size_t len,
                          uint8_t *priv, size_t priv_len, void *ctx);

typedef struct tk_ops {
    unsigned rounds;
    ms_err (*bcast)(void *obj, unsigned round, uint8_t *out, size_t cap, size_t *len);
    /* NULL result: no private message in this round */
    ms_err (*priv)(void *obj, unsigned round, unsigned to, uint8_t *out, size_t cap, size_t *len);
    int (*has_priv)(unsigned round);
    ms_err (*recv)(void *obj, unsigned round, unsigned from, const uint8_t *msg, size_t len,
                   const uint8_t *priv, size_t priv_len);
    ms_err (*end)(void *obj, unsigned round, char *detail, size_t cap);
} tk_ops;

/* The detail of the first error tk_run saw. */
static char tk_last_detail[256];

/* Runs every round among the objects of the servers in `live` (bit i-1: server i, objs[i-1]);
 * returns the first error an end of round gave (and which server in *who). */
static inline ms_err tk_run(const tk_ops *ops, void **objs, unsigned n, uint32_t live,
                            size_t cap, tk_tamper tamper, void *ctx, unsigned *who)
{
    uint8_t **bc = calloc(n, sizeof *bc);
    uint8_t **pv = calloc((size_t)n * n, sizeof *pv);
    size_t *bl = calloc(n, sizeof *bl), *pl = calloc((size_t)n * n, sizeof *pl);
    uint8_t *m = malloc(cap), *p = malloc(cap);
    ms_err result = MS_OK;
    for (unsigned i = 0; i < n; i++) {
        bc[i] = malloc(cap);
        for (unsigned j = 0; j < n; j++)
            pv[i * n + j] = malloc(cap);
    }
    for (unsigned r = 1; r <= ops->rounds && result == MS_OK; r++) {
        for (unsigned i = 1; i <= n; i++) {
            if (!(live & (1u << (i - 1))))
                continue;
            CHECK_ERR(ops->bcast(objs[i - 1], r, bc[i - 1], cap, &bl[i - 1]), MS_OK);
            if (ops->has_priv(r))
                for (unsigned j = 1; j <= n; j++)
                    if (j != i && (live & (1u << (j - 1))))
                        CHECK_ERR(ops->priv(objs[i - 1], r, j, pv[(i - 1) * n + j - 1], cap,
                                            &pl[(i - 1) * n + j - 1]),
                                  MS_OK);
        }
        for (unsigned j = 1; j <= n; j++) {
            if (!(live & (1u << (j - 1))))
                continue;
            for (unsigned i = 1; i <= n; i++) {
                if (i == j || !(live & (1u << (i - 1))))
                    continue;
                memcpy(m, bc[i - 1], bl[i - 1]);
                size_t plen = 0;
                if (ops->has_priv(r)) {
                    plen = pl[(i - 1) * n + j - 1];
                    memcpy(p, pv[(i - 1) * n + j - 1], plen);
                }
                if (tamper != NULL)
                    tamper(r, i, j, m, bl[i - 1], ops->has_priv(r) ? p : NULL, plen, ctx);
                (void)ops->recv(objs[j - 1], r, i, m, bl[i - 1], ops->has_priv(r) ? p : NULL,
                                plen);
            }
        }
        for (unsigned j = 1; j <= n; j++) {
            if (!(live & (1u << (j - 1))))
                continue;
            char detail[200] = "";
            ms_err err = ops->end(objs[j - 1], r, detail, sizeof detail);
            if (err != MS_OK && result == MS_OK) {
                result = err;
                snprintf(tk_last_detail, sizeof tk_last_detail, "%s", detail);
                if (who != NULL)
                    *who = j;
                fprintf(stderr, "server %u, round %u: %s (%s)\n", j, r, ms_errname(err), detail);
            }
        }
        if (tamper != NULL && result == MS_OK)
            tamper(r, 0, 0, NULL, 0, NULL, 0, ctx);
    }
    for (unsigned i = 0; i < n; i++) {
        free(bc[i]);
        for (unsigned j = 0; j < n; j++)
            free(pv[i * n + j]);
    }
    free(bc);
    free(pv);
    free(bl);
    free(pl);
    free(m);
    free(p);
    return result;
}

static inline ms_err tk_dkg_bcast(void *o, unsigned r, uint8_t *out, size_t cap, size_t *len)
{
    return ms_tkms_dkg_broadcast(o, r, out, cap, len);
}
static inline ms_err tk_dkg_priv(void *o, unsigned r, unsigned to, uint8_t *out, size_t cap,
                                 size_t *len)
{
    (void)r;
    return ms_tkms_dkg_private(o, to, out, cap, len);
}
static inline int tk_dkg_has_priv(unsigned r)
{
    return r == 1;
}
static inline ms_err tk_dkg_recv(void *o, unsigned r, unsigned from, const uint8_t *msg,
                                 size_t len, const uint8_t *priv, size_t plen)
{
    return ms_tkms_dkg_receive(o, r, from, msg, len, priv, plen);
}
static inline ms_err tk_dkg_end(void *o, unsigned r, char *d, size_t cap)
{
    return ms_tkms_dkg_end_round(o, r, d, cap);
}
static const tk_ops tk_dkg_ops = {MS_TKMS_DKG_ROUNDS, tk_dkg_bcast, tk_dkg_priv, tk_dkg_has_priv,
                                  tk_dkg_recv, tk_dkg_end};

/* n servers through key generation. */
static inline ms_err tk_dkg(ms_tkms_server **sv, unsigned n, unsigned t, tk_tamper tamper,
                            void *ctx)
{
    for (unsigned i = 1; i <= n; i++) {
        ms_err err = ms_tkms_server_new(&sv[i - 1], n, t, i, &ms_test_rng);
        if (err != MS_OK)
            return err;
    }
    return tk_run(&tk_dkg_ops, (void **)sv, n, (1u << n) - 1, ms_tkms_msg_max(n, t, 0), tamper,
                  ctx, NULL);
}

static inline ms_err tk_b_bcast(void *o, unsigned r, uint8_t *out, size_t cap, size_t *len)
{
    return ms_tkms_batch_broadcast(o, r, out, cap, len);
}
static inline ms_err tk_b_priv(void *o, unsigned r, unsigned to, uint8_t *out, size_t cap,
                               size_t *len)
{
    return ms_tkms_batch_private(o, r, to, out, cap, len);
}
static inline int tk_b_has_priv(unsigned r)
{
    return r == 1 || r == 3;
}
static inline ms_err tk_b_recv(void *o, unsigned r, unsigned from, const uint8_t *msg,
                               size_t len, const uint8_t *priv, size_t plen)
{
    return ms_tkms_batch_receive(o, r, from, msg, len, priv, plen);
}
static inline ms_err tk_b_end(void *o, unsigned r, char *d, size_t cap)
{
    return ms_tkms_batch_end_round(o, r, d, cap);
}
static const tk_ops tk_batch_ops = {MS_TKMS_BATCH_ROUNDS, tk_b_bcast, tk_b_priv, tk_b_has_priv,
                                    tk_b_recv, tk_b_end};

/* The secret behind t+1 shares (test only): sum lambda_j share_j. */
static inline void tk_combine0(tsc *out, const tsc *shares, const unsigned *ids, size_t count,
                               const tgroup *g)
{
    tsc lam, term;
    tsc_zero(out);
    for (size_t k = 0; k < count; k++) {
        tsc_lagrange_var(&lam, ids, count, k, 0, g);
        tsc_mul(&term, &lam, &shares[k], g);
        tsc_add(out, out, &term, g);
    }
}

#endif
