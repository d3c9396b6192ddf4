/*
 * One GMK I_MESSAGE per member (TS 33.180 5.2.3, E.6): the same GMK, GMK-ID and RAND in
 * every message, each to its member's identifier, with GUK-ID as CSB-ID, the GENERIC-ID
 * crypto session with SPI = GMK-ID || GUK-ID (the initiator's GMK default), key
 * parameters (activation, expiry, status) and SAKKE-to-self for the GMS's own devices.
 *
 * Each message costs a SAKKE encapsulation to a member seen once (nothing to prepare)
 * and an ECCSI signature; the SAKKE-to-self is the same in every message and is
 * computed once per context. The work is split over threads, one MIKEY context each
 * (a context is not thread-safe).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/secmem.h"
#include "group/group_internal.h"

typedef struct worker {
    ms_mikey_ctx *ctx;
    const group_key_spec *key;
    const char *const *members;
    size_t n, first, step;
    uint8_t **msgs;
    size_t *lens;
    ms_err err;
    long failed;
    bool running; /* a thread of its own was started */
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    ms_mikey_init_params p;
    memset(&p, 0, sizeof p);
    p.key = w->key->gmk;
    p.key_len = sizeof w->key->gmk;
    p.key_id = w->key->gmk_id;
    p.rand = w->key->rand;
    p.rand_len = sizeof w->key->rand;
    p.sakke_to_self = true;
    p.with_key_params = true;
    p.key_params.key_type = MS_MIKEY_PURPOSE_GMK;
    p.key_params.status = 1; /* not revoked */
    p.key_params.activation = w->key->activation;
    p.key_params.expiry = w->key->expiry;
    p.key_params.has_group_ids = true;
    uint8_t *buf = malloc(MS_MIKEY_MAX_MESSAGE);
    if (buf == NULL) {
        w->err = MS_ERR_NOMEM;
        return NULL;
    }
    for (size_t i = w->first; i < w->n; i += w->step) {
        p.responder = w->members[i];
        size_t len = 0;
        ms_err err = ms_mikey_initiate(w->ctx, buf, MS_MIKEY_MAX_MESSAGE, &len, NULL, &p);
        uint8_t *copy = err == MS_OK ? malloc(len) : NULL;
        if (err == MS_OK && copy == NULL)
            err = MS_ERR_NOMEM;
        if (err != MS_OK) {
            w->err = err;
            w->failed = (long)i;
            break;
        }
        memcpy(copy, buf, len);
        w->msgs[i] = copy;
        w->lens[i] = len;
    }
    free(buf);
    return NULL;
}

ms_err group_build_messages(ms_mikey_ctx *const *ctxs, size_t n_ctx, const group_key_spec *key,
                            const char *const *members, size_t n, uint8_t **msgs, size_t *lens,
                            long *failed_member)
{
    *failed_member = -1;
    if (ctxs == NULL || n_ctx == 0 || key == NULL || (n > 0 && (members == NULL ||
        msgs == NULL || lens == NULL)))
        return MS_ERR_ARG;
    memset(msgs, 0, n * sizeof *msgs);
    memset(lens, 0, n * sizeof *lens);
    if (n_ctx > n)
        n_ctx = n > 0 ? n : 1;
    worker *w = calloc(n_ctx, sizeof *w);
    pthread_t *th = calloc(n_ctx, sizeof *th);
    if (w == NULL || th == NULL) {
        free(w);
        free(th);
        return MS_ERR_NOMEM;
    }
    for (size_t t = 0; t < n_ctx; t++) {
        w[t] = (worker){.ctx = ctxs[t], .key = key, .members = members, .n = n, .first = t,
                        .step = n_ctx, .msgs = msgs, .lens = lens, .err = MS_OK,
                        .failed = -1};
        /* the first share runs on this thread */
        if (t > 0) {
            if (pthread_create(&th[t], NULL, work, &w[t]) == 0)
                w[t].running = true;
            else
                w[t].err = MS_ERR_INTERNAL;
        }
    }
    (void)work(&w[0]);
    ms_err err = w[0].err;
    *failed_member = w[0].failed;
    for (size_t t = 1; t < n_ctx; t++) {
        if (w[t].running)
            (void)pthread_join(th[t], NULL);
        if (err == MS_OK && w[t].err != MS_OK) {
            err = w[t].err;
            *failed_member = w[t].failed;
        }
    }
    free(w);
    free(th);
    if (err != MS_OK) {
        for (size_t i = 0; i < n; i++) {
            free(msgs[i]);
            msgs[i] = NULL;
            lens[i] = 0;
        }
    }
    return err;
}
