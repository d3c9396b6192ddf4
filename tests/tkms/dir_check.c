/* What t servers' directories hold after the network ceremony and a batch (run by
 * tests/e2e/test_threshold.sh): no file of servers 1..t contains z, KSAK, or the
 * victim's u, SSK or RSK (as octets or hex), and the sealed files, opened with the
 * passphrase, hold only this server's shares: z_i and KSAK_i behind its public key
 * shares, and per identity u_i and SSK_i matching the record's commitments at i, nothing
 * more. The truth (z, KSAK, the victim's keys) is computed here from t+1 directories.
 *
 * Usage: tkms_dir_check PASSFILE PERIOD VICTIM_URI T DIR_1 ... DIR_n
 * Prints "N passed, N failed"; exit 0 when all passed. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


#include "kms/seal.h"
#include "testutil.h"
#include "threshold/tkms_internal.h"
#include "tkms/node.h"

#define MAXN MS_TKMS_MAX_N

typedef struct buf {
    uint8_t *p;
    size_t len;
} buf;

static int read_file(const char *path, buf *out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    fseek(f, 0, SEEK_END);
    long l = ftell(f);
    fseek(f, 0, SEEK_SET);
    out->p = malloc(l > 0 ? (size_t)l : 1);
    out->len = l > 0 ? (size_t)l : 0;
    int ok = out->p != NULL && fread(out->p, 1, out->len, f) == out->len;
    fclose(f);
    return ok ? 0 : -1;
}

static int has(const uint8_t *h, size_t hl, const uint8_t *n, size_t nl)
{
    for (size_t i = 0; nl <= hl && i + nl <= hl; i++)
        if (memcmp(h + i, n, nl) == 0)
            return 1;
    return 0;
}

/* The needles: each secret as octets and as lower- and upper-case hex. */
typedef struct needle {
    const char *name;
    uint8_t raw[257];
    size_t len;
} needle;

static int found(const uint8_t *h, size_t hl, const needle *nd)
{
    char hex[2 * 257 + 1];
    for (int upper = 0; upper < 2; upper++) {
        for (size_t i = 0; i < nd->len; i++)
            snprintf(hex + 2 * i, 3, upper ? "%02X" : "%02x", nd->raw[i]);
        if (has(h, hl, (const uint8_t *)hex, 2 * nd->len))
            return 1;
    }
    return has(h, hl, nd->raw, nd->len);
}

/* A batch file's shares opened (src/tkms/node.h, ms_tkms_batch_crypt). */
static int gcm_open(const uint8_t key[32], const char *period, const uint8_t *in, size_t len,
                    buf *out)
{
    out->p = malloc(len + 1);
    return out->p != NULL &&
                   ms_tkms_batch_crypt(0, key, period, in, len, out->p, &out->len) == MS_OK
               ? 0
               : -1;
}

typedef struct server {
    const char *dir;
    ms_tkms_public pub;
    unsigned index;
    ms_kms_secrets *sec;
    buf shares;  /* the opened batch file: u16 len | id | u (128) | SSK (32) */
    buf records; /* the records file */
} server;

static const uint8_t *entry(const buf *b, size_t skip, const uint8_t *id, size_t id_len,
                            size_t fixed, size_t *elen)
{
    size_t o = skip;
    while (o + 2 <= b->len) {
        size_t l = (size_t)b->p[o] << 8 | b->p[o + 1];
        const uint8_t *e = b->p + o + 2 + l;
        size_t el = fixed;
        if (fixed == 0) {
            ms_tkms_record r;
            if (ms_tkms_record_decode(&r, e, b->len - (o + 2 + l), &el) != MS_OK)
                return NULL;
        }
        if (l == id_len && memcmp(b->p + o + 2, id, id_len) == 0) {
            *elen = el;
            return e;
        }
        o += 2 + l + el;
    }
    return NULL;
}

static const char SHDR[] = "mikeysakke-tkms-shares 1\n", PHDR[] = "mikeysakke-tkms-records 1\n";

static int load(server *s, const char *pass, size_t pass_len, const char *period)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/public.txt", s->dir);
    uint8_t tr[32];
    if (ms_tkms_public_read(path, &s->pub, &s->index, tr, NULL, 0) != MS_OK)
        return -1;
    snprintf(path, sizeof path, "%s/secrets.sealed", s->dir);
    ms_unseal *u = NULL;
    if (ms_unseal_open(&u, path, NULL, 0) != MS_OK ||
        ms_unseal_passphrase(u, &s->sec, (const uint8_t *)pass, pass_len) != MS_OK) {
        ms_unseal_free(u);
        return -1;
    }
    ms_unseal_free(u);
    buf sealed;
    snprintf(path, sizeof path, "%s/batch-%s.sealed", s->dir, period);
    if (read_file(path, &sealed) != 0 || sealed.len < sizeof SHDR - 1 ||
        memcmp(sealed.p, SHDR, sizeof SHDR - 1) != 0 ||
        gcm_open(s->sec->store_key, period, sealed.p + sizeof SHDR - 1,
                 sealed.len - (sizeof SHDR - 1), &s->shares) != 0)
        return -1;
    free(sealed.p);
    snprintf(path, sizeof path, "%s/batch-%s.records", s->dir, period);
    return read_file(path, &s->records);
}

/* Every regular file of dir (and one level of subdirectories) is free of the needles. */
static void scan_dir(const char *dir, const needle *nd, size_t count, int depth, size_t *files)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth < 1) {
            scan_dir(path, nd, count, depth + 1, files);
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        buf b;
        CHECK(read_file(path, &b) == 0);
        (*files)++;
        for (size_t k = 0; k < count; k++)
            if (found(b.p, b.len, &nd[k])) {
                fprintf(stderr, "%s holds %s\n", path, nd[k].name);
                CHECK(0);
            }
        free(b.p);
    }
    closedir(d);
}

static void combine0(tsc *out, const tsc *v, const unsigned *ids, unsigned count, const tgroup *g)
{
    tsc lam, term;
    tsc_zero(out);
    for (unsigned k = 0; k < count; k++) {
        tsc_lagrange_var(&lam, ids, count, k, 0, g);
        tsc_mul(&term, &lam, &v[k], g);
        tsc_add(out, out, &term, g);
    }
}

/* z_i, KSAK_i of the sealed secrets are this server's: [z_i]P = Z_i, [KSAK_i]G = KPAK_i;
 * every batch entry is (id, u_i, SSK_i) with [d u_i]P and [SSK_i]G on the record's
 * commitments at i, and the entries fill the opened file exactly. */
static void only_shares(const server *s)
{
    uint8_t pt[TG_PT_MAX], want[TG_PT_MAX];
    tsc x;
    const ms_kms_generation *g = &s->sec->gen[0];
    CHECK(s->sec->n_generations == 1);
    CHECK_ERR(tsc_from_bytes(&x, g->z, &tg_sakke), MS_OK);
    CHECK_ERR(tg_mul_gen(&tg_sakke, pt, &x), MS_OK);
    CHECK(memcmp(pt, s->pub.Zj[s->index - 1], 257) == 0);
    CHECK_ERR(tsc_from_bytes(&x, g->ksak, &tg_p256), MS_OK);
    CHECK_ERR(tg_mul_gen(&tg_p256, pt, &x), MS_OK);
    CHECK(memcmp(pt, s->pub.kpakj[s->index - 1], 65) == 0);
    size_t o = 0, entries = 0;
    while (o + 2 <= s->shares.len) {
        size_t l = (size_t)s->shares.p[o] << 8 | s->shares.p[o + 1];
        const uint8_t *id = s->shares.p + o + 2, *e = id + l;
        CHECK(o + 2 + l + 160 <= s->shares.len);
        if (o + 2 + l + 160 > s->shares.len)
            break;
        size_t rl = 0;
        const uint8_t *re = entry(&s->records, sizeof PHDR - 1, id, l, 0, &rl);
        ms_tkms_record rec;
        size_t used;
        CHECK(re != NULL);
        if (re == NULL || ms_tkms_record_decode(&rec, re, rl, &used) != MS_OK)
            break;
        tsc d, hs;
        CHECK_ERR(tsc_from_bytes(&x, e, &tg_sakke), MS_OK);
        tsc_from_u64(&d, rec.d, &tg_sakke);
        tsc_mul(&x, &x, &d, &tg_sakke);
        CHECK_ERR(tg_mul_gen(&tg_sakke, pt, &x), MS_OK);
        CHECK_ERR(tg_feldman_eval_var(&tg_sakke, want, &rec.uc[0][0], rec.t, s->index), MS_OK);
        CHECK(memcmp(pt, want, 257) == 0);
        CHECK_ERR(tsc_from_bytes(&x, e + 128, &tg_p256), MS_OK);
        CHECK_ERR(tg_mul_gen(&tg_p256, pt, &x), MS_OK);
        CHECK_ERR(tkms_hs(&hs, s->pub.kpak, id, l, rec.pvt), MS_OK);
        uint8_t vpt[TG_PT_MAX];
        CHECK_ERR(tg_feldman_eval_var(&tg_p256, vpt, &rec.vc[0][0], rec.t, s->index), MS_OK);
        const uint8_t *pts[2] = {s->pub.kpakj[s->index - 1], vpt};
        tsc ks[2];
        tsc_from_u64(&ks[0], 1, &tg_p256);
        ks[1] = hs;
        CHECK_ERR(tg_msm_var(&tg_p256, want, pts, ks, 2), MS_OK);
        CHECK(memcmp(pt, want, 65) == 0);
        o += 2 + l + 160;
        entries++;
    }
    CHECK(o == s->shares.len);
    printf("server %u: its sealed secrets are z_%u and KSAK_%u; its batch file holds %zu "
           "entries (id, u_%u, SSK_%u), each on the record's commitments, nothing more\n",
           s->index, s->index, s->index, entries, s->index, s->index);
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: tkms_dir_check PASSFILE PERIOD VICTIM_URI T DIR_1 ... DIR_n\n");
        return 2;
    }
    const char *period = argv[2], *victim = argv[3];
    unsigned t = (unsigned)atoi(argv[4]), n = (unsigned)(argc - 5);
    if (t < 1 || n < 2 * t + 1 || n > MAXN) {
        fprintf(stderr, "need 1 <= t and 2t+1 <= n <= %d\n", MAXN);
        return 2;
    }
    buf pass;
    if (read_file(argv[1], &pass) != 0)
        return 2;
    while (pass.len > 0 && (pass.p[pass.len - 1] == '\n' || pass.p[pass.len - 1] == '\r'))
        pass.len--;
    CHECK_ERR(tg_init(), MS_OK);
    server *sv = calloc(n, sizeof *sv);
    for (unsigned i = 0; i < n; i++) {
        sv[i].dir = argv[5 + i];
        int ok = load(&sv[i], (const char *)pass.p, pass.len, period) == 0;
        CHECK(ok);
        if (!ok) {
            fprintf(stderr, "%s does not open\n", sv[i].dir);
            return ms_test_finish();
        }
        CHECK(sv[i].index == i + 1);
    }
    ms_wipe(pass.p, pass.len);
    free(pass.p);

    /* the truth from servers 1..t+1 */
    uint8_t id[1024];
    size_t pl = strlen(period), ul = strlen(victim), id_len = pl + ul + 2;
    memcpy(id, period, pl + 1);
    memcpy(id + pl + 1, victim, ul + 1);
    unsigned ids[MS_TKMS_MAX_T + 1];
    tsc zs[MS_TKMS_MAX_T + 1], ks[MS_TKMS_MAX_T + 1], us[MS_TKMS_MAX_T + 1],
        ss[MS_TKMS_MAX_T + 1];
    ms_tkms_share shares[MS_TKMS_MAX_T + 1];
    ms_tkms_record rec;
    for (unsigned k = 0; k <= t; k++) {
        ids[k] = k + 1;
        CHECK_ERR(tsc_from_bytes(&zs[k], sv[k].sec->gen[0].z, &tg_sakke), MS_OK);
        CHECK_ERR(tsc_from_bytes(&ks[k], sv[k].sec->gen[0].ksak, &tg_p256), MS_OK);
        size_t el = 0, rl = 0, used;
        const uint8_t *e = entry(&sv[k].shares, 0, id, id_len, 160, &el);
        const uint8_t *re = entry(&sv[k].records, sizeof PHDR - 1, id, id_len, 0, &rl);
        CHECK(e != NULL && re != NULL);
        if (e == NULL || re == NULL)
            return ms_test_finish();
        CHECK_ERR(ms_tkms_record_decode(&rec, re, rl, &used), MS_OK);
        CHECK_ERR(tsc_from_bytes(&us[k], e, &tg_sakke), MS_OK);
        CHECK_ERR(tsc_from_bytes(&ss[k], e + 128, &tg_p256), MS_OK);
        shares[k].index = k + 1;
        memcpy(shares[k].u, e, 128);
        memcpy(shares[k].ssk, e + 128, 32);
    }
    needle nd[6] = {{"z", {0}, 128},       {"KSAK", {0}, 32},  {"the victim's u", {0}, 128},
                    {"the victim's SSK", {0}, 32}, {"the victim's RSK", {0}, 257},
                    {"the victim's RSK's x", {0}, 128}};
    tsc x;
    combine0(&x, zs, ids, t + 1, &tg_sakke);
    tsc_to_bytes(nd[0].raw, &x, &tg_sakke);
    combine0(&x, ks, ids, t + 1, &tg_p256);
    tsc_to_bytes(nd[1].raw, &x, &tg_p256);
    /* KPAK = [KSAK]G: the truth is right */
    uint8_t pt[TG_PT_MAX];
    CHECK_ERR(tg_mul_gen(&tg_p256, pt, &x), MS_OK);
    CHECK(memcmp(pt, sv[0].pub.kpak, 65) == 0);
    combine0(&x, us, ids, t + 1, &tg_sakke);
    tsc_to_bytes(nd[2].raw, &x, &tg_sakke);
    uint8_t ssk[32], pvt[65];
    unsigned cheater = 0;
    CHECK_ERR(ms_tkms_combine(&sv[0].pub, id, id_len, &rec, shares, t + 1, nd[4].raw, ssk, pvt,
                              &cheater, NULL, 0),
              MS_OK);
    memcpy(nd[3].raw, ssk, 32);
    memcpy(nd[5].raw, nd[4].raw + 1, 128);
    ms_wipe(shares, sizeof shares);

    /* servers 1..t: their files, and what the sealed files hold once opened */
    for (unsigned i = 0; i < t; i++) {
        size_t files = 0;
        scan_dir(sv[i].dir, nd, 6, 0, &files);
        printf("server %u: %zu files, none holds z, KSAK or the victim's u, SSK, RSK\n", i + 1,
               files);
        const uint8_t *plain[2] = {(const uint8_t *)sv[i].sec, sv[i].shares.p};
        size_t plen[2] = {sizeof *sv[i].sec, sv[i].shares.len};
        for (int p = 0; p < 2; p++)
            for (size_t k = 0; k < 6; k++)
                if (found(plain[p], plen[p], &nd[k])) {
                    fprintf(stderr, "server %u's opened %s holds %s\n", i + 1,
                            p == 0 ? "secrets" : "batch file", nd[k].name);
                    CHECK(0);
                }
        only_shares(&sv[i]);
        /* the search finds what is there: the server's own share */
        needle own = {"z_i", {0}, 128};
        memcpy(own.raw, sv[i].sec->gen[0].z, 128);
        CHECK(found(plain[0], plen[0], &own));
    }
    for (unsigned i = 0; i < n; i++) {
        ms_kms_secrets_free(sv[i].sec);
        if (sv[i].shares.p != NULL)
            ms_wipe(sv[i].shares.p, sv[i].shares.len);
        free(sv[i].shares.p);
        free(sv[i].records.p);
    }
    free(sv);
    return ms_test_finish();
}
