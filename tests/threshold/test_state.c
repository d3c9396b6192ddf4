/* The state of t servers after a batch, with a client's own keys, gives neither z nor
 * another user's keys (issue's test), at (3,1) and (5,2).
 *
 * In process: key generation and a batch of three identities (a victim V, the client C
 * and a third). The view of the corrupt servers 1..t is everything they hold: every
 * secret field of their server and batch objects (as octets and as the bytes in memory),
 * every message they received (private ones included), and C's combined keys (RSK_C,
 * SSK_C, u_C) with the t+1 shares C combined them from.
 *  1. Byte search, with the project's own code: z, KSAK, V's u, rho, v, SSK and RSK
 *     (computed here from all servers) appear nowhere in that view; a corrupt server's
 *     own share z_1 does (the search works).
 *  2. The Python oracle (oracle/state_check.py) rebuilds the honest servers' polynomials
 *     around the view for freshly drawn random z' and KSAK' and checks that every scalar
 *     of the view is reproduced: the view is as consistent with z' as with z. For C's
 *     slot u is fixed at C's u_C (so rho' = u_C / (a_C + z')), and SSK at SSK_C.
 *  3. Negative control: the view of t+1 servers; the oracle must find it inconsistent
 *     with a random z' and must rebuild z itself from it.
 * The public commitments pin z only computationally (discrete logarithms): they are not
 * part of the oracle's check, as in the GJKR simulation argument. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "driver.h"

#define NIDS 3
#define VICTIM 0
#define CLIENT 1
static const char ID0[] = "2026-12\0tel:+447700900123";
static const char ID1[] = "2026-12\0tel:+447700900456";
static const char ID2[] = "2026-12\0sip:alice@org.example";
static const char *const ID_TEXT[NIDS] = {ID0, ID1, ID2};
static const size_t ID_LEN[NIDS] = {sizeof ID0, sizeof ID1, sizeof ID2};

/* ---- the haystack: every byte the corrupt servers and the client hold ---------------- */

typedef struct hay {
    uint8_t *buf;
    size_t len, cap;
} hay;

static void hay_add(hay *h, const void *p, size_t n)
{
    if (h->len + n > h->cap) {
        size_t cap = (h->cap + n) * 2;
        uint8_t *nb = realloc(h->buf, cap);
        if (nb == NULL) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        h->buf = nb;
        h->cap = cap;
    }
    memcpy(h->buf + h->len, p, n);
    h->len += n;
}

static int hay_has(const hay *h, const uint8_t *needle, size_t n)
{
    if (n == 0 || h->len < n)
        return 0;
    for (size_t i = 0; i + n <= h->len; i++)
        if (h->buf[i] == needle[0] && memcmp(h->buf + i, needle, n) == 0)
            return 1;
    return 0;
}

/* A scalar as the view holds it: its big-endian octets and its limbs in memory. */
static void hay_scalar(hay *h, const tsc *x, const tgroup *g)
{
    uint8_t be[TG_SC_MAX];
    tsc_to_bytes(be, x, g);
    hay_add(h, be, g->sc_bytes);
    hay_add(h, x, sizeof *x);
}

/* A needle is absent in both forms (big-endian and in-memory limbs). */
static int absent(const hay *h, const tsc *x, const tgroup *g)
{
    uint8_t be[TG_SC_MAX];
    tsc_to_bytes(be, x, g);
    return !hay_has(h, be, g->sc_bytes) && !hay_has(h, (const uint8_t *)x, sizeof *x);
}

/* Messages received by the corrupt servers, taken on their way by the driver's hook. */
typedef struct grab_ctx {
    uint32_t corrupt;
    hay *h;
} grab_ctx;

static void grab(unsigned round, unsigned from, unsigned to, uint8_t *msg, size_t len,
                 uint8_t *priv, size_t priv_len, void *vctx)
{
    grab_ctx *c = vctx;
    (void)round;
    (void)from;
    if (to == 0 || !(c->corrupt & (1u << (to - 1))))
        return;
    hay_add(c->h, msg, len);
    if (priv != NULL)
        hay_add(c->h, priv, priv_len);
}

/* ---- one corrupt server's batch scalars, by field --------------------------------------- */

typedef struct bview {
    tsc rho_f[NIDS][MS_TKMS_MAX_T + 1], v_f[NIDS][MS_TKMS_MAX_T + 1],
        vb_f[NIDS][MS_TKMS_MAX_T + 1], g_f[NIDS][MS_TKMS_MAX_T + 1];
    tsc rho_sh[MS_TKMS_MAX_N][NIDS], v_sh[MS_TKMS_MAX_N][NIDS], vb_sh[MS_TKMS_MAX_N][NIDS],
        g_sh[MS_TKMS_MAX_N][NIDS];
    tsc rho_me[NIDS], v_me[NIDS], u[NIDS], ssk[NIDS], r[NIDS];
    hay *h;
} bview;

static void take(void *vctx, const char *what, unsigned i, size_t s, const tgroup *g,
                 const tsc *x)
{
    bview *v = vctx;
    struct {
        const char *name;
        tsc *at;
    } map[] = {
        {"rho_f", &v->rho_f[s][i]}, {"v_f", &v->v_f[s][i]},   {"vb_f", &v->vb_f[s][i]},
        {"g_f", &v->g_f[s][i]},     {"rho_me", &v->rho_me[s]}, {"v_me", &v->v_me[s]},
        {"u", &v->u[s]},            {"ssk", &v->ssk[s]},       {"r", &v->r[s]},
    };
    for (size_t m = 0; m < sizeof map / sizeof map[0]; m++)
        if (strcmp(what, map[m].name) == 0)
            *map[m].at = *x;
    if (i >= 1) {
        if (strcmp(what, "rho_sh") == 0)
            v->rho_sh[i - 1][s] = *x;
        else if (strcmp(what, "v_sh") == 0)
            v->v_sh[i - 1][s] = *x;
        else if (strcmp(what, "vb_sh") == 0)
            v->vb_sh[i - 1][s] = *x;
        else if (strcmp(what, "g_sh") == 0)
            v->g_sh[i - 1][s] = *x;
    }
    hay_scalar(v->h, x, g);
}

/* ---- the view file for the oracle ----------------------------------------------------- */

static void put_hex(FILE *f, const uint8_t *p, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
    fputc('"', f);
}

static void put_sc(FILE *f, const tsc *x, const tgroup *g)
{
    uint8_t be[TG_SC_MAX];
    tsc_to_bytes(be, x, g);
    put_hex(f, be, g->sc_bytes);
}

static void put_list(FILE *f, const tsc *x, size_t count, const tgroup *g)
{
    fputc('[', f);
    for (size_t i = 0; i < count; i++) {
        if (i)
            fputc(',', f);
        put_sc(f, &x[i], g);
    }
    fputc(']', f);
}

static void put_ids(FILE *f, uint32_t mask, unsigned n)
{
    fputc('[', f);
    int first = 1;
    for (unsigned i = 1; i <= n; i++)
        if (mask & (1u << (i - 1))) {
            fprintf(f, first ? "%u" : ",%u", i);
            first = 0;
        }
    fputc(']', f);
}

typedef struct world {
    unsigned n, t;
    ms_tkms_server *sv[MS_TKMS_MAX_N];
    ms_tkms_batch *bt[MS_TKMS_MAX_N];
    ms_tkms_public pub;
    ms_tkms_record rec[NIDS];
    uint32_t bqual;
    /* the client's own keys */
    tsc u_c, ssk_c;
    uint8_t rsk_c[257], ssk_c_be[32];
    ms_tkms_share c_shares[MS_TKMS_MAX_T + 1];
} world;

/* The view of the servers in `corrupt` as JSON for the oracle. */
static int write_view(const char *path, const world *w, uint32_t corrupt, hay *h)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    unsigned n = w->n, t = w->t, T = t + 1;
    fprintf(f, "{\"n\":%u,\"t\":%u,\"corrupt\":", n, t);
    put_ids(f, corrupt, n);
    fprintf(f, ",\"qual\":");
    put_ids(f, w->sv[0]->qual, n);
    fprintf(f, ",\"bqual\":");
    put_ids(f, w->bqual, n);
    fprintf(f, ",\"victim\":%d,\"client\":%d,\"kpak\":", VICTIM, CLIENT);
    put_hex(f, w->pub.kpak, 65);
    fprintf(f, ",\"ids\":[");
    for (size_t s = 0; s < NIDS; s++) {
        if (s)
            fputc(',', f);
        put_hex(f, (const uint8_t *)ID_TEXT[s], ID_LEN[s]);
    }
    fprintf(f, "],\"pvt\":[");
    for (size_t s = 0; s < NIDS; s++) {
        if (s)
            fputc(',', f);
        put_hex(f, w->rec[s].pvt, 65);
    }
    fprintf(f, "],\"client_u\":");
    put_sc(f, &w->u_c, &tg_sakke);
    fprintf(f, ",\"client_ssk\":");
    put_sc(f, &w->ssk_c, &tg_p256);
    fprintf(f, ",\"servers\":{");
    int first = 1;
    for (unsigned i = 1; i <= n; i++) {
        if (!(corrupt & (1u << (i - 1))))
            continue;
        const ms_tkms_server *s = w->sv[i - 1];
        bview *v = calloc(1, sizeof *v);
        if (v == NULL) {
            fclose(f);
            return -1;
        }
        v->h = h;
        tkms_batch_test_view(w->bt[i - 1], take, v);
        fprintf(f, "%s\"%u\":{", first ? "" : ",", i);
        first = 0;
        const char *names[2] = {"f", "fb"};
        for (int pass = 0; pass < 2; pass++) {
            fprintf(f, "\"%s\":[", names[pass]);
            for (unsigned c = 0; c < TK_NCURVE; c++) {
                if (c)
                    fputc(',', f);
                put_list(f, pass == 0 ? s->f[c] : s->fb[c], T, tk_groups[c]);
            }
            fprintf(f, "],\"%s\":[", pass == 0 ? "sh" : "shb");
            for (unsigned c = 0; c < TK_NCURVE; c++) {
                if (c)
                    fputc(',', f);
                put_list(f, pass == 0 ? s->sh[c] : s->shb[c], n, tk_groups[c]);
            }
            fprintf(f, "],");
        }
        fprintf(f, "\"z\":");
        put_sc(f, &s->z_j, &tg_sakke);
        fprintf(f, ",\"ksak\":");
        put_sc(f, &s->ksak_j, &tg_p256);
        struct {
            const char *name;
            tsc(*poly)[MS_TKMS_MAX_T + 1];
            const tgroup *g;
        } polys[] = {{"rho_f", v->rho_f, &tg_sakke},
                     {"v_f", v->v_f, &tg_p256},
                     {"vb_f", v->vb_f, &tg_p256},
                     {"g_f", v->g_f, &tg_sakke}};
        for (size_t p = 0; p < 4; p++) {
            fprintf(f, ",\"%s\":[", polys[p].name);
            for (size_t sl = 0; sl < NIDS; sl++) {
                if (sl)
                    fputc(',', f);
                put_list(f, polys[p].poly[sl], T, polys[p].g);
            }
            fputc(']', f);
        }
        struct {
            const char *name;
            tsc(*sh)[NIDS];
            const tgroup *g;
        } shs[] = {{"rho_sh", v->rho_sh, &tg_sakke},
                   {"v_sh", v->v_sh, &tg_p256},
                   {"vb_sh", v->vb_sh, &tg_p256},
                   {"g_sh", v->g_sh, &tg_sakke}};
        for (size_t p = 0; p < 4; p++) {
            fprintf(f, ",\"%s\":[", shs[p].name); /* [dealer][slot] */
            for (unsigned d = 0; d < n; d++) {
                if (d)
                    fputc(',', f);
                put_list(f, shs[p].sh[d], NIDS, shs[p].g);
            }
            fputc(']', f);
        }
        fprintf(f, ",\"rho_me\":");
        put_list(f, v->rho_me, NIDS, &tg_sakke);
        fprintf(f, ",\"v_me\":");
        put_list(f, v->v_me, NIDS, &tg_p256);
        fprintf(f, ",\"u\":");
        put_list(f, v->u, NIDS, &tg_sakke);
        fprintf(f, ",\"ssk\":");
        put_list(f, v->ssk, NIDS, &tg_p256);
        fputc('}', f);
        ms_wipe(v, sizeof *v);
        free(v);
    }
    fprintf(f, "}}\n");
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- the run ---------------------------------------------------------------------------- */

static char oracle[1024];

static void find_oracle(void)
{
    const char *src = __FILE__; /* .../tests/threshold/test_state.c */
    const char *slash = strrchr(src, '/');
    size_t dir = slash != NULL ? (size_t)(slash - src) : 0;
    snprintf(oracle, sizeof oracle, "%.*s%soracle/state_check.py", (int)dir, src,
             dir ? "/" : "");
}

static int run_oracle(const char *view, const char *extra)
{
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "python3 '%s' '%s' %s", oracle, view, extra);
    fflush(stdout);
    int rc = system(cmd);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* The secret behind the shares of servers 1..t+1 of a per-server value. */
static void combine_first(tsc *out, const tsc *vals, unsigned t, const tgroup *g)
{
    unsigned ids[MS_TKMS_MAX_T + 1];
    for (unsigned k = 0; k <= t; k++)
        ids[k] = k + 1;
    tk_combine0(out, vals, ids, t + 1, g);
}

static void run(unsigned n, unsigned t, const char *dir)
{
    printf("(%u,%u):\n", n, t);
    world *w = calloc(1, sizeof *w);
    hay h = {0};
    const uint32_t all = (1u << n) - 1, corrupt = (1u << t) - 1;
    grab_ctx gc = {corrupt, &h};
    if (w == NULL)
        exit(2);
    w->n = n;
    w->t = t;
    /* key generation and a batch, the corrupt servers' mail taken on its way */
    for (unsigned i = 1; i <= n; i++)
        CHECK_ERR(ms_tkms_server_new(&w->sv[i - 1], n, t, i, &ms_test_rng), MS_OK);
    CHECK_ERR(tk_run(&tk_dkg_ops, (void **)w->sv, n, all, ms_tkms_msg_max(n, t, 0), grab, &gc,
                     NULL),
              MS_OK);
    CHECK_ERR(ms_tkms_server_public(w->sv[0], &w->pub), MS_OK);
    const uint8_t *ids[NIDS];
    for (size_t s = 0; s < NIDS; s++)
        ids[s] = (const uint8_t *)ID_TEXT[s];
    for (unsigned i = 1; i <= n; i++)
        CHECK_ERR(ms_tkms_batch_new(&w->bt[i - 1], w->sv[i - 1], ids, ID_LEN, NIDS, all, NULL, 0),
                  MS_OK);
    ms_err err = tk_run(&tk_batch_ops, (void **)w->bt, n, all, ms_tkms_msg_max(n, t, NIDS), grab,
                        &gc, NULL);
    CHECK_ERR(err, MS_OK);
    if (err != MS_OK)
        exit(ms_test_finish());
    w->bqual = ms_tkms_batch_qualified(w->bt[0]);

    /* the truth, from every server: z, KSAK, and V's and C's keys */
    tsc zs[MS_TKMS_MAX_N], ks[MS_TKMS_MAX_N], z, ksak;
    tsc u[NIDS][MS_TKMS_MAX_N], sk[NIDS][MS_TKMS_MAX_N], rho[NIDS][MS_TKMS_MAX_N],
        v[NIDS][MS_TKMS_MAX_N];
    for (unsigned i = 0; i < n; i++) {
        zs[i] = w->sv[i]->z_j;
        ks[i] = w->sv[i]->ksak_j;
    }
    combine_first(&z, zs, t, &tg_sakke);
    combine_first(&ksak, ks, t, &tg_p256);
    bview *all_b = calloc(n, sizeof *all_b);
    hay scratch = {0};
    for (unsigned i = 0; i < n; i++) {
        all_b[i].h = &scratch;
        tkms_batch_test_view(w->bt[i], take, &all_b[i]);
        for (size_t s = 0; s < NIDS; s++) {
            u[s][i] = all_b[i].u[s];
            sk[s][i] = all_b[i].ssk[s];
            rho[s][i] = all_b[i].rho_me[s];
            v[s][i] = all_b[i].v_me[s];
        }
    }
    tsc u_v, ssk_v, rho_v, v_v;
    combine_first(&u_v, u[VICTIM], t, &tg_sakke);
    combine_first(&ssk_v, sk[VICTIM], t, &tg_p256);
    combine_first(&rho_v, rho[VICTIM], t, &tg_sakke);
    combine_first(&v_v, v[VICTIM], t, &tg_p256);
    combine_first(&w->u_c, u[CLIENT], t, &tg_sakke);
    combine_first(&w->ssk_c, sk[CLIENT], t, &tg_p256);
    /* sanity: u = (a + z) rho for the victim's slot */
    tsc a_v, want;
    CHECK_ERR(tkms_id_scalar(&a_v, ids[VICTIM], ID_LEN[VICTIM]), MS_OK);
    tsc_add(&want, &a_v, &z, &tg_sakke);
    tsc_mul(&want, &want, &rho_v, &tg_sakke);
    CHECK(tsc_eq(&want, &u_v) != 0);

    /* the victim's RSK and the client's keys, combined as a device does */
    uint8_t rsk_v[257], ssk_be[32], pvt[65];
    unsigned cheater = 0;
    ms_tkms_share shv[MS_TKMS_MAX_T + 1];
    for (unsigned k = 0; k <= t; k++) {
        CHECK_ERR(ms_tkms_issue(w->bt[n - 1 - k], ids[VICTIM], ID_LEN[VICTIM], &shv[k],
                                &w->rec[VICTIM]),
                  MS_OK);
        CHECK_ERR(ms_tkms_issue(w->bt[n - 1 - k], ids[CLIENT], ID_LEN[CLIENT], &w->c_shares[k],
                                &w->rec[CLIENT]),
                  MS_OK);
    }
    ms_tkms_share dummy;
    CHECK_ERR(ms_tkms_issue(w->bt[0], ids[2], ID_LEN[2], &dummy, &w->rec[2]), MS_OK);
    CHECK_ERR(ms_tkms_combine(&w->pub, ids[VICTIM], ID_LEN[VICTIM], &w->rec[VICTIM], shv, t + 1,
                              rsk_v, ssk_be, pvt, &cheater, NULL, 0),
              MS_OK);
    CHECK_ERR(ms_tkms_combine(&w->pub, ids[CLIENT], ID_LEN[CLIENT], &w->rec[CLIENT], w->c_shares,
                              t + 1, w->rsk_c, w->ssk_c_be, pvt, &cheater, NULL, 0),
              MS_OK);

    /* the corrupt servers' state: server objects whole, batch scalars, the client's keys
     * and the shares it combined them from (write_view adds the batch scalars) */
    for (unsigned i = 1; i <= n; i++)
        if (corrupt & (1u << (i - 1)))
            hay_add(&h, w->sv[i - 1], sizeof *w->sv[i - 1]);
    hay_add(&h, w->rsk_c, sizeof w->rsk_c);
    hay_add(&h, w->ssk_c_be, sizeof w->ssk_c_be);
    hay_scalar(&h, &w->u_c, &tg_sakke);
    hay_add(&h, w->c_shares, sizeof w->c_shares);
    char view[512], view_more[512];
    snprintf(view, sizeof view, "%s/view_%u_%u.json", dir, n, t);
    snprintf(view_more, sizeof view_more, "%s/view_%u_%u_plus1.json", dir, n, t);
    CHECK(write_view(view, w, corrupt, &h) == 0);
    hay throwaway = {0};
    CHECK(write_view(view_more, w, (1u << (t + 1)) - 1, &throwaway) == 0);
    printf("  view of servers 1..%u: %zu octets\n", t, h.len);

    /* 1. byte search */
    CHECK(absent(&h, &z, &tg_sakke));
    CHECK(absent(&h, &ksak, &tg_p256));
    CHECK(absent(&h, &u_v, &tg_sakke));
    CHECK(absent(&h, &rho_v, &tg_sakke));
    CHECK(absent(&h, &v_v, &tg_p256));
    CHECK(absent(&h, &ssk_v, &tg_p256));
    CHECK(!hay_has(&h, rsk_v, sizeof rsk_v));
    CHECK(!hay_has(&h, rsk_v + 1, 128)); /* nor its x coordinate alone */
    /* the search finds what is there: server 1's own share, the client's u */
    CHECK(!absent(&h, &w->sv[0]->z_j, &tg_sakke));
    CHECK(!absent(&h, &w->u_c, &tg_sakke));
    CHECK(hay_has(&h, w->rsk_c, sizeof w->rsk_c));
    printf("  z, KSAK and V's u, rho, v, SSK, RSK: not in the view\n");

    /* 2. the oracle: consistent with random z' */
    int rc = run_oracle(view, "");
    CHECK(rc == 0);
    /* 3. negative control: t+1 servers pin z */
    char arg[400];
    uint8_t zb[128];
    tsc_to_bytes(zb, &z, &tg_sakke);
    char zhex[257];
    for (int i = 0; i < 128; i++)
        snprintf(zhex + 2 * i, 3, "%02x", zb[i]);
    snprintf(arg, sizeof arg, "--negative %s", zhex);
    rc = run_oracle(view_more, arg);
    CHECK(rc == 0);

    ms_wipe(all_b, n * sizeof *all_b);
    free(all_b);
    free(h.buf);
    free(scratch.buf);
    free(throwaway.buf);
    for (unsigned i = 0; i < n; i++) {
        ms_tkms_batch_free(w->bt[i]);
        ms_tkms_server_free(w->sv[i]);
    }
    ms_wipe(w, sizeof *w);
    free(w);
}

int main(void)
{
    ms_test_seed();
    find_oracle();
    char dir[] = "/tmp/ms_tstate_XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    run(3, 1, dir);
    run(5, 2, dir);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return ms_test_finish();
}
