/*
 * Batch issuance of one key period's key sets.
 *
 * The calling thread is the only one that touches SQLite: it plans a batch (a page of
 * devices still lacking a key set, in (user, device) order), hands it to the worker
 * threads, and writes finished batches in order, one transaction each, with the audit
 * callback called inside that transaction before COMMIT. A small ring of batches lets the
 * workers compute the next ones while a batch is written.
 *
 * Crash safety comes from the store, not from this file's state: a key set is either in
 * a committed transaction or nowhere, a re-run plans only the devices without one, and
 * the insert never replaces a row (ON CONFLICT DO NOTHING), so two runs racing cannot
 * leave two different key sets for one (device, period). Work computed and not committed
 * when the process dies is lost and recomputed; the RSK is deterministic, so only the
 * SSK/PVT of the recomputed, never released, key sets differ.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/secmem.h"
#include "kms/store.h"

#define RING 4            /* batches planned ahead of the one being written */
#define MAX_THREADS 64
#define MAX_BATCH 65536

#define SSK_CHUNK 8        /* devices per SSK claim */

/* Each key set is two jobs: its SSK/PVT (needs only the KSAK) and its RSK (needs the
 * SAKKE KMS tables, built once per run, ~70 ms on one core). The tables are built by
 * the writer while the workers already issue SSKs, and the RSK is computed once per run
 * of one user's devices. */
typedef struct batch {
    ms_keyset *ks;    /* cap entries, secure memory */
    size_t n;         /* planned */
    size_t ssk_next;  /* first device whose SSK is not yet claimed */
    size_t rsk_next;  /* first device whose RSK is not yet claimed */
    size_t done;      /* jobs done: complete at 2n */
    bool ready;       /* planned, open to workers */
} batch;

typedef struct issue_run {
    pthread_mutex_t mu;
    pthread_cond_t work;     /* workers: a batch has work, the tables are ready, or stop */
    pthread_cond_t finished; /* writer: a batch is complete, or stop */
    batch ring[RING];
    unsigned head;           /* the batch the writer commits next */
    bool stop;
    ms_err err;              /* first worker failure */
    const ms_sakke_kms *kms; /* NULL until built */

    const ms_kms_secrets *s;
    const ms_kms_generation *gen;
    const ms_id_scheme *scheme;
    uint64_t period_no;
    size_t cap;              /* batch size */

    /* planning cursor (writer only) */
    char after_uri[MS_STORE_URI_MAX + 1];
    char after_id[MS_STORE_DEVICE_ID_MAX + 1];
    bool exhausted;
    uint64_t now;
    ms_err plan_err;
} issue_run;

/* ---- workers ----------------------------------------------------------------------- */

/* The RSK of ks[0..n), one user's devices: computed once (deterministic in the
 * identifier) and copied. */
static ms_err compute_rsk(const issue_run *r, const ms_sakke_kms *kms, ms_keyset *ks, size_t n)
{
    ms_err err = ms_sakke_rsk_issue(kms, ks[0].rsk, r->gen->z, ks[0].user_id,
                                    ks[0].user_id_len);
    for (size_t i = 1; err == MS_OK && i < n; i++)
        memcpy(ks[i].rsk, ks[0].rsk, sizeof ks[i].rsk);
    return err;
}

/* SSK and PVT, fresh for every device. */
static ms_err compute_ssk(const issue_run *r, ms_keyset *ks, size_t n)
{
    ms_err err = MS_OK;
    for (size_t i = 0; err == MS_OK && i < n; i++)
        err = ms_eccsi_ssk_issue(ks[i].ssk, ks[i].pvt, r->gen->ksak, r->gen->kpak,
                                 ks[i].user_id, ks[i].user_id_len, NULL);
    return err;
}

typedef struct claim {
    batch *b;
    size_t i, j; /* devices [i, j) */
    bool rsk;
} claim;

/* The next job, oldest batch first (the writer waits for it), RSKs before SSKs once the
 * tables exist; false when there is none now. */
static bool claim_job(issue_run *r, claim *c)
{
    for (unsigned k = 0; k < RING; k++) {
        batch *b = &r->ring[(r->head + k) % RING];
        if (!b->ready)
            continue;
        if (r->kms != NULL && b->rsk_next < b->n) {
            size_t i = b->rsk_next, j = i + 1;
            while (j < b->n && strcmp(b->ks[j].user_uri, b->ks[i].user_uri) == 0)
                j++;
            b->rsk_next = j;
            *c = (claim){b, i, j, true};
            return true;
        }
        if (b->ssk_next < b->n) {
            size_t i = b->ssk_next, j = i + SSK_CHUNK < b->n ? i + SSK_CHUNK : b->n;
            b->ssk_next = j;
            *c = (claim){b, i, j, false};
            return true;
        }
    }
    return false;
}

static void fail_locked(issue_run *r, ms_err err)
{
    if (r->err == MS_OK)
        r->err = err;
    r->stop = true;
    pthread_cond_broadcast(&r->work);
    pthread_cond_broadcast(&r->finished);
}

static void *worker(void *arg)
{
    issue_run *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        claim c;
        if (!claim_job(r, &c)) {
            pthread_cond_wait(&r->work, &r->mu);
            continue;
        }
        const ms_sakke_kms *kms = r->kms;
        pthread_mutex_unlock(&r->mu);
        ms_err err = c.rsk ? compute_rsk(r, kms, c.b->ks + c.i, c.j - c.i)
                           : compute_ssk(r, c.b->ks + c.i, c.j - c.i);
        pthread_mutex_lock(&r->mu);
        if (err != MS_OK) {
            fail_locked(r, err);
            break;
        }
        c.b->done += c.j - c.i;
        if (c.b->done == 2 * c.b->n)
            pthread_cond_broadcast(&r->finished);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- planning (writer thread) ------------------------------------------------------ */

typedef struct plan_ctx {
    issue_run *r;
    batch *b;
} plan_ctx;

static int plan_one(void *ctx, const char *device_id, const char *user_uri)
{
    plan_ctx *p = ctx;
    issue_run *r = p->r;
    batch *b = p->b;
    if (b->n >= r->cap)
        return 1; /* cannot happen: the page is LIMITed to cap */
    ms_keyset *ks = &b->ks[b->n];
    memset(ks, 0, sizeof *ks);
    size_t ul = strlen(user_uri), dl = strlen(device_id);
    if (ul > MS_STORE_URI_MAX || dl > MS_STORE_DEVICE_ID_MAX) {
        r->plan_err = MS_ERR_STORE;
        return 1;
    }
    memcpy(ks->user_uri, user_uri, ul + 1);
    memcpy(ks->device_id, device_id, dl + 1);
    ks->period_no = r->period_no;
    ks->issued_at = r->now;
    if (b->n > 0 && strcmp(b->ks[b->n - 1].user_uri, user_uri) == 0) {
        memcpy(ks->user_id, b->ks[b->n - 1].user_id, b->ks[b->n - 1].user_id_len);
        ks->user_id_len = b->ks[b->n - 1].user_id_len;
    } else {
        /* A URI the scheme cannot name (a monthly scheme's non-tel URI) stops the run:
         * the officer must correct or remove that user. */
        ms_err err = ms_identifier(r->scheme, ks->user_id, sizeof ks->user_id,
                                   &ks->user_id_len, user_uri, r->period_no);
        if (err != MS_OK) {
            r->plan_err = err;
            return 1;
        }
    }
    b->n++;
    memcpy(r->after_uri, user_uri, ul + 1);
    memcpy(r->after_id, device_id, dl + 1);
    return 0;
}

/* Fills batch b with the next page of pending devices (b->n == 0 when none are left). */
static ms_err plan(ms_store *st, issue_run *r, batch *b)
{
    b->n = b->ssk_next = b->rsk_next = b->done = 0;
    if (r->exhausted)
        return MS_OK;
    plan_ctx p = {r, b};
    r->plan_err = MS_OK;
    ms_err err = ms_store_pending_page(st, r->period_no, r->after_uri, r->after_id, r->cap,
                                       plan_one, &p);
    if (err == MS_OK)
        err = r->plan_err;
    if (err != MS_OK) {
        ms_wipe(b->ks, r->cap * sizeof *b->ks);
        b->n = 0;
        return err;
    }
    if (b->n < r->cap)
        r->exhausted = true;
    return MS_OK;
}

/* Reopens the just written (and re-planned) batch as the newest and moves the head on. */
static void publish(issue_run *r, batch *b)
{
    pthread_mutex_lock(&r->mu);
    b->ready = b->n > 0;
    r->head = (r->head + 1) % RING;
    pthread_cond_broadcast(&r->work);
    pthread_mutex_unlock(&r->mu);
}

/* Writes one complete batch in one transaction; returns the number filed in *n. */
static ms_err write_batch(ms_store *st, issue_run *r, const batch *b, ms_issue_log_fn log,
                          void *log_ctx, size_t *n)
{
    *n = 0;
    ms_err err = ms_store_begin(st);
    if (err != MS_OK)
        return err;
    size_t filed = 0;
    for (size_t i = 0; err == MS_OK && i < b->n; i++) {
        bool inserted = false;
        err = ms_store_keyset_put_new(st, r->s, &b->ks[i], &inserted);
        filed += inserted;
    }
    if (err == MS_OK && filed == 0) {
        ms_store_rollback(st); /* all filed by someone else meanwhile: nothing to log */
        return MS_OK;
    }
    /* The audit record goes first: if it cannot be written, nothing is committed. */
    if (err == MS_OK && log != NULL)
        err = log(log_ctx, r->period_no, filed);
    if (err != MS_OK) {
        ms_store_rollback(st);
        return err;
    }
    if ((err = ms_store_commit(st)) != MS_OK)
        return err;
    *n = filed;
    return MS_OK;
}

/* ---- the run ------------------------------------------------------------------------- */

ms_err ms_kms_issue_period_opts(ms_store *st, const ms_kms_secrets *s,
                                const ms_id_scheme *scheme, uint64_t period_no,
                                const ms_issue_opts *opts, size_t *issued)
{
    if (issued != NULL)
        *issued = 0;
    if (st == NULL || s == NULL || scheme == NULL || opts == NULL ||
        opts->batch_size > MAX_BATCH)
        return MS_ERR_ARG;
    unsigned threads = opts->threads;
    ms_issue_log_fn log = opts->log;
    void *log_ctx = opts->log_ctx;
    if (ms_store_in_transaction(st))
        return MS_ERR_ARG; /* issuance commits batch by batch: it needs its own */
    if (period_no > (uint64_t)INT64_MAX)
        return MS_ERR_PERIOD;
    const ms_kms_generation *gen = ms_kms_secrets_generation(s, period_no);
    if (gen == NULL)
        return MS_ERR_PERIOD; /* before the first master key generation */
    if (threads == 0)
        threads = 1;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;

    issue_run *r = calloc(1, sizeof *r);
    if (r == NULL)
        return MS_ERR_NOMEM;
    r->s = s;
    r->gen = gen;
    r->scheme = scheme;
    r->period_no = period_no;
    r->cap = opts->batch_size == 0 ? MS_ISSUE_BATCH_DEFAULT : opts->batch_size;
    r->now = ms_ntp_now() >> 32;

    ms_err err = MS_OK;
    ms_sakke_kms *kms = NULL;
    pthread_t tid[MAX_THREADS];
    unsigned started = 0;
    size_t total = 0;
    size_t gone_through = 0, pending = 0; /* progress: devices written or found filed */
    bool sync_ok = false;

    for (unsigned k = 0; k < RING; k++) {
        r->ring[k].ks = ms_secure_alloc(r->cap * sizeof(ms_keyset));
        if (r->ring[k].ks == NULL) {
            err = MS_ERR_NOMEM;
            goto out;
        }
    }
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        err = MS_ERR_INTERNAL;
        goto out;
    }
    if (pthread_cond_init(&r->work, NULL) != 0) {
        pthread_mutex_destroy(&r->mu);
        err = MS_ERR_INTERNAL;
        goto out;
    }
    if (pthread_cond_init(&r->finished, NULL) != 0) {
        pthread_cond_destroy(&r->work);
        pthread_mutex_destroy(&r->mu);
        err = MS_ERR_INTERNAL;
        goto out;
    }
    sync_ok = true;
    if (opts->progress != NULL) {
        if ((err = ms_store_pending_count(st, period_no, &pending)) != MS_OK)
            goto out;
        opts->progress(opts->progress_ctx, 0, pending);
    }

    /* plan the whole ring before starting the workers */
    for (unsigned k = 0; k < RING && err == MS_OK; k++) {
        err = plan(st, r, &r->ring[k]);
        r->ring[k].ready = r->ring[k].n > 0;
    }
    if (err != MS_OK || !r->ring[0].ready)
        goto out; /* nothing to issue: no tables, no threads */
    for (; started < threads; started++) {
        if (pthread_create(&tid[started], NULL, worker, r) != 0) {
            if (started == 0) {
                err = MS_ERR_INTERNAL;
                goto out;
            }
            break; /* fewer threads than asked: still correct */
        }
    }
    /* the SAKKE tables, while the workers issue SSKs */
    {
        ms_err kerr = ms_sakke_kms_new(&kms, gen->Z);
        pthread_mutex_lock(&r->mu);
        if (kerr != MS_OK)
            fail_locked(r, kerr);
        else
            r->kms = kms;
        pthread_cond_broadcast(&r->work);
        pthread_mutex_unlock(&r->mu);
    }

    for (;;) {
        batch *b = &r->ring[r->head];
        pthread_mutex_lock(&r->mu);
        while (b->ready && b->done < 2 * b->n && !r->stop)
            pthread_cond_wait(&r->finished, &r->mu);
        bool stopped = r->stop, any = b->ready;
        if (stopped)
            err = r->err;
        b->ready = false; /* the writer's now */
        pthread_mutex_unlock(&r->mu);
        if (stopped || !any)
            break; /* a worker failed, or nothing left */

        size_t n = 0;
        err = write_batch(st, r, b, log, log_ctx, &n);
        ms_wipe(b->ks, b->n * sizeof *b->ks);
        if (err != MS_OK)
            break;
        total += n;
        gone_through += b->n;
        if (opts->progress != NULL) {
            if (gone_through > pending)
                pending = gone_through; /* devices enrolled since the count */
            opts->progress(opts->progress_ctx, gone_through, pending);
        }
        if ((err = plan(st, r, b)) != MS_OK)
            break;
        publish(r, b);
    }

out:
    if (sync_ok) {
        pthread_mutex_lock(&r->mu);
        r->stop = true;
        pthread_cond_broadcast(&r->work);
        pthread_mutex_unlock(&r->mu);
        for (unsigned k = 0; k < started; k++)
            pthread_join(tid[k], NULL);
        pthread_cond_destroy(&r->finished);
        pthread_cond_destroy(&r->work);
        pthread_mutex_destroy(&r->mu);
    }
    ms_sakke_kms_free(kms);
    for (unsigned k = 0; k < RING; k++)
        ms_secure_free(r->ring[k].ks, r->cap * sizeof(ms_keyset));
    free(r);
    if (issued != NULL)
        *issued = total;
    /* nothing is left: devices removed since the count no longer count */
    if (err == MS_OK && opts->progress != NULL)
        opts->progress(opts->progress_ctx, gone_through, gone_through);
    return err;
}

ms_err ms_kms_issue_period_batch(ms_store *st, const ms_kms_secrets *s,
                                 const ms_id_scheme *scheme, uint64_t period_no,
                                 unsigned threads, size_t batch_size, ms_issue_log_fn log,
                                 void *log_ctx, size_t *issued)
{
    ms_issue_opts o = {threads, batch_size, log, log_ctx, NULL, NULL};
    return ms_kms_issue_period_opts(st, s, scheme, period_no, &o, issued);
}

ms_err ms_kms_issue_period(ms_store *st, const ms_kms_secrets *s, const ms_id_scheme *scheme,
                           uint64_t period_no, unsigned threads, ms_issue_log_fn log,
                           void *log_ctx, size_t *issued)
{
    return ms_kms_issue_period_batch(st, s, scheme, period_no, threads, 0, log, log_ctx,
                                     issued);
}
