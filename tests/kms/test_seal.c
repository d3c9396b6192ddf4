/*
 * Sealed master secrets: the locked secrets object and its generations, passphrase and
 * custodian-share seals (round trips, every k-subset, refusals by name), and damage to
 * every region of a sealed file. PKCS#11 is in test_pkcs11.c.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "kms/seal.h"
#include "testutil.h"

#define LOG2N 10 /* small scrypt cost for tests; the default (17) is tried once */

static char dir[256];

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static int contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

/* The detail of the last call without an object (or copied from an unseal object). */
static char why[256];

#define CHECK_DETAIL_OF(detail, needle)                                                            \
    do {                                                                                           \
        int ok_ = contains((detail), (needle));                                                    \
        CHECK(ok_);                                                                                \
        if (!ok_)                                                                                  \
            fprintf(stderr, "  detail was \"%s\", want \"%s\"\n", (detail), (needle));             \
    } while (0)
#define CHECK_DETAIL(needle) CHECK_DETAIL_OF(why, needle)

static int secrets_equal(const ms_kms_secrets *a, const ms_kms_secrets *b)
{
    if (a->n_generations != b->n_generations)
        return 0;
    for (size_t i = 0; i < a->n_generations; i++) {
        const ms_kms_generation *x = &a->gen[i], *y = &b->gen[i];
        if (x->from_period != y->from_period || memcmp(x->z, y->z, sizeof x->z) ||
            memcmp(x->Z, y->Z, sizeof x->Z) || memcmp(x->ksak, y->ksak, sizeof x->ksak) ||
            memcmp(x->kpak, y->kpak, sizeof x->kpak))
            return 0;
    }
    return memcmp(a->store_key, b->store_key, MS_KMS_KEY_BYTES) == 0 &&
           memcmp(a->audit_key, b->audit_key, MS_KMS_KEY_BYTES) == 0;
}

static int all_zero(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint8_t acc = 0;
    for (size_t i = 0; i < len; i++)
        acc |= b[i];
    return acc == 0;
}

static size_t read_all(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void write_all(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(buf, 1, len, f) != len) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

/* Header geometry from the format comment in seal.c. */
static size_t params_len(const uint8_t *f)
{
    return ((size_t)f[26] << 8) | f[27];
}

static size_t head_len(const uint8_t *f)
{
    return 28 + params_len(f) + 12 + 4 + 32;
}

/* Recompute the header checksum after a deliberate edit (to reach checks behind it). */
static void fix_checksum(uint8_t *f)
{
    size_t h = head_len(f) - 32;
    unsigned int olen = 0;
    EVP_Digest(f, h, f + h, &olen, EVP_sha256(), NULL);
}

static ms_seal_params pass_params(const char *pass)
{
    ms_seal_params p;
    memset(&p, 0, sizeof p);
    p.method = MS_SEAL_PASSPHRASE;
    p.passphrase = (const uint8_t *)pass;
    p.passphrase_len = strlen(pass);
    p.scrypt_log2_n = LOG2N;
    return p;
}

static ms_kms_secrets *secrets; /* generation 0 from 600, generation 1 from 612 */

static void test_secrets(void)
{
    ms_kms_secrets *s = NULL;
    CHECK_ERR(ms_kms_secrets_new(&s), MS_OK);
    CHECK(s != NULL && s->n_generations == 0 && all_zero(s, sizeof *s));
    CHECK(ms_kms_secrets_generation(s, 600) == NULL);
    /* nothing to roll */
    CHECK_ERR(ms_kms_secrets_add_generation(s, 5, NULL, why, sizeof why), MS_ERR_ARG);
    CHECK_ERR(ms_kms_secrets_generate(s, 600, NULL), MS_OK);
    CHECK(s->n_generations == 1 && s->gen[0].from_period == 600);
    /* The publics belong to the secrets. */
    uint8_t Z[MS_SAKKE_POINT_BYTES], kpak[MS_ECCSI_POINT_BYTES];
    CHECK_ERR(ms_sakke_master_public(Z, s->gen[0].z), MS_OK);
    CHECK_MEM(Z, s->gen[0].Z, sizeof Z);
    CHECK_ERR(ms_eccsi_master_public(kpak, s->gen[0].ksak), MS_OK);
    CHECK_MEM(kpak, s->gen[0].kpak, sizeof kpak);
    CHECK(!all_zero(s->store_key, MS_KMS_KEY_BYTES) && !all_zero(s->audit_key, MS_KMS_KEY_BYTES));
    CHECK(memcmp(s->store_key, s->audit_key, MS_KMS_KEY_BYTES) != 0);

    /* Generations: the one in force is the last that started at or before the period. */
    CHECK(ms_kms_secrets_generation(s, 599) == NULL);
    CHECK(ms_kms_secrets_generation(s, 600) == &s->gen[0]);
    CHECK_ERR(ms_kms_secrets_add_generation(s, 600, NULL, why, sizeof why), MS_ERR_PERIOD);
    CHECK_ERR(ms_kms_secrets_add_generation(s, 599, NULL, why, sizeof why), MS_ERR_PERIOD);
    CHECK_ERR(ms_kms_secrets_add_generation(s, 612, NULL, why, sizeof why), MS_OK);
    CHECK(s->n_generations == 2);
    CHECK(memcmp(s->gen[0].z, s->gen[1].z, MS_SAKKE_SECRET_BYTES) != 0);
    CHECK(memcmp(s->gen[0].ksak, s->gen[1].ksak, MS_ECCSI_SCALAR_BYTES) != 0);
    CHECK(ms_kms_secrets_generation(s, 611) == &s->gen[0]);
    CHECK(ms_kms_secrets_generation(s, 612) == &s->gen[1]);
    CHECK(ms_kms_secrets_generation(s, UINT64_MAX) == &s->gen[1]);
    CHECK(ms_kms_secrets_generation(NULL, 612) == NULL);

    /* A failing generator leaves the secrets as they were. */
    ms_fixed_rng st;
    ms_rng dead = ms_fixed_rng_make(&st, (const uint8_t *)"", 0);
    CHECK_ERR(ms_kms_secrets_add_generation(s, 700, &dead, why, sizeof why), MS_ERR_RNG);
    CHECK(s->n_generations == 2 && ms_kms_secrets_generation(s, 700) == &s->gen[1]);

    /* Full: at most MS_KMS_MAX_GENERATIONS (a cheap copy stands in for keygen). */
    ms_kms_secrets *full = NULL;
    CHECK_ERR(ms_kms_secrets_new(&full), MS_OK);
    *full = *s;
    for (size_t i = 2; i < MS_KMS_MAX_GENERATIONS; i++) {
        full->gen[i] = s->gen[1];
        full->gen[i].from_period = 612 + i;
    }
    full->n_generations = MS_KMS_MAX_GENERATIONS;
    CHECK_ERR(ms_kms_secrets_add_generation(full, 10000, NULL, why, sizeof why), MS_ERR_ARG);
    CHECK_DETAIL("at most");
    CHECK(ms_kms_secrets_generation(full, 613) == &full->gen[1]);
    CHECK(ms_kms_secrets_generation(full, 614) == &full->gen[2]);
    CHECK(ms_kms_secrets_generation(full, 9999) == &full->gen[MS_KMS_MAX_GENERATIONS - 1]);

    /* Clearing wipes everything the object held: nothing is in force any more. */
    ms_kms_secrets_clear(full);
    CHECK(full->n_generations == 0 && all_zero(full, sizeof *full));
    CHECK(ms_kms_secrets_generation(full, 9999) == NULL);
    ms_kms_secrets_free(full);
    ms_kms_secrets_free(NULL);
    CHECK_ERR(ms_kms_secrets_new(NULL), MS_ERR_ARG);
    CHECK_ERR(ms_kms_secrets_generate(NULL, 1, NULL), MS_ERR_ARG);
    secrets = s;
}

static int dir_has_temp_files(void)
{
    DIR *d = opendir(dir);
    int found = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp.") != NULL)
            found = 1;
    if (d != NULL)
        closedir(d);
    return found;
}

static void test_passphrase(void)
{
    char path[512];
    path_in(path, sizeof path, "pass.seal");
    ms_seal_params p = pass_params("correct horse battery staple");
    CHECK_ERR(ms_seal_write(path, secrets, &p, NULL, NULL, why, sizeof why), MS_OK);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(!dir_has_temp_files());

    ms_unseal *u = NULL;
    ms_kms_secrets *out = NULL;
    CHECK_ERR(ms_unseal_open(&u, path, why, sizeof why), MS_OK);
    CHECK(ms_unseal_method(u) == MS_SEAL_PASSPHRASE);
    unsigned have = 9, need = 9;
    ms_unseal_progress(u, &have, &need);
    CHECK(have == 0 && need == 0);
    CHECK_ERR(ms_unseal_passphrase(u, &out, (const uint8_t *)"correct horse battery stapler", 29),
              MS_ERR_PASSPHRASE);
    CHECK(out == NULL);
    CHECK_DETAIL_OF(ms_unseal_detail(u), "wrong passphrase");
    CHECK_ERR(ms_unseal_passphrase(u, &out, (const uint8_t *)"", 0), MS_ERR_PASSPHRASE);
    CHECK_ERR(ms_unseal_share(u, &out, (const uint8_t *)"x", 1), MS_ERR_ARG);
    CHECK_ERR(ms_unseal_pkcs11(u, &out, (const uint8_t *)"1234", 4), MS_ERR_ARG);
    CHECK_ERR(ms_unseal_passphrase(u, &out, p.passphrase, p.passphrase_len), MS_OK);
    CHECK(out != NULL && secrets_equal(out, secrets));
    CHECK(ms_kms_secrets_generation(out, 612) == &out->gen[1]);
    CHECK(strcmp(ms_unseal_detail(u), "") == 0);
    ms_kms_secrets_free(out);
    out = NULL;
    ms_unseal_free(u);
    u = NULL;

    /* Re-seal over the existing file (as after a rollover), with another passphrase. */
    ms_seal_params p2 = pass_params("second");
    CHECK_ERR(ms_seal_write(path, secrets, &p2, NULL, NULL, why, sizeof why), MS_OK);
    CHECK_ERR(ms_unseal_open(&u, path, why, sizeof why), MS_OK);
    CHECK_ERR(ms_unseal_passphrase(u, &out, p.passphrase, p.passphrase_len), MS_ERR_PASSPHRASE);
    CHECK_ERR(ms_unseal_passphrase(u, &out, (const uint8_t *)"second", 6), MS_OK);
    CHECK(out != NULL && secrets_equal(out, secrets));
    ms_kms_secrets_free(out);
    out = NULL;
    ms_unseal_free(u);
    u = NULL;
    CHECK(!dir_has_temp_files());

    /* The default cost is memory-hard: N = 2^17 is written to the header. */
    ms_seal_params pd = pass_params("default cost");
    pd.scrypt_log2_n = 0;
    path_in(path, sizeof path, "pass-default.seal");
    CHECK_ERR(ms_seal_write(path, secrets, &pd, NULL, NULL, why, sizeof why), MS_OK);
    uint8_t f[16384];
    size_t flen = read_all(path, f, sizeof f);
    CHECK(flen > 60 && f[28 + 16] == 17 && f[28 + 17 + 3] == 8 && f[28 + 21 + 3] == 1);
    CHECK_ERR(ms_unseal_open(&u, path, why, sizeof why), MS_OK);
    CHECK_ERR(ms_unseal_passphrase(u, &out, pd.passphrase, pd.passphrase_len), MS_OK);
    CHECK(out != NULL && secrets_equal(out, secrets));
    ms_kms_secrets_free(out);
    out = NULL;
    ms_unseal_free(u);

    /* Bad parameters. */
    ms_seal_params bad = pass_params("x");
    bad.scrypt_log2_n = 4;
    CHECK_ERR(ms_seal_write(path, secrets, &bad, NULL, NULL, why, sizeof why), MS_ERR_ARG);
    CHECK_DETAIL("scrypt log2 N must be in [10, 22]");
    bad = pass_params("");
    CHECK_ERR(ms_seal_write(path, secrets, &bad, NULL, NULL, why, sizeof why), MS_ERR_ARG);
    bad = pass_params("x");
    bad.method = (ms_seal_method)7;
    CHECK_ERR(ms_seal_write(path, secrets, &bad, NULL, NULL, why, sizeof why), MS_ERR_ARG);
    ms_kms_secrets *empty = NULL;
    CHECK_ERR(ms_kms_secrets_new(&empty), MS_OK);
    bad = pass_params("x");
    /* nothing to seal */
    CHECK_ERR(ms_seal_write(path, empty, &bad, NULL, NULL, why, sizeof why), MS_ERR_ARG);
    ms_kms_secrets_free(empty);
    path_in(path, sizeof path, "no/such/dir/x.seal");
    CHECK_ERR(ms_seal_write(path, secrets, &bad, NULL, NULL, why, sizeof why), MS_ERR_IO);
    CHECK_DETAIL("cannot create a temporary file next to");
    CHECK_DETAIL("No such file or directory");
}

typedef struct share_set {
    uint8_t s[16][MS_KMS_SHARE_BYTES];
    size_t len[16];
} share_set;

static ms_seal_params share_params(unsigned k, unsigned n)
{
    ms_seal_params p;
    memset(&p, 0, sizeof p);
    p.method = MS_SEAL_SHARES;
    p.k = k;
    p.n = n;
    return p;
}

/* Feeds shares idx[0..m) to a fresh unseal of path; returns the last error and leaves
 * the secrets (or NULL) in *out. */
static ms_err feed(const char *path, const share_set *set, const unsigned *idx, unsigned m,
                   ms_kms_secrets **out, int *progress_ok)
{
    ms_unseal *u = NULL;
    ms_err err = ms_unseal_open(&u, path, why, sizeof why);
    *out = NULL;
    if (err != MS_OK)
        return err;
    unsigned need0 = 0, have = 0;
    ms_unseal_progress(u, &have, &need0);
    *progress_ok = have == 0;
    for (unsigned i = 0; i < m && err == MS_OK; i++) {
        err = ms_unseal_share(u, out, set->s[idx[i]], set->len[idx[i]]);
        unsigned need = 0;
        ms_unseal_progress(u, &have, &need);
        if (err == MS_OK && *out == NULL && (have != i + 1 || need != need0))
            *progress_ok = 0;
    }
    snprintf(why, sizeof why, "%s", ms_unseal_detail(u));
    ms_unseal_free(u);
    return err;
}

static void test_shares(void)
{
    char path[512], other[512];
    path_in(path, sizeof path, "shares.seal");
    path_in(other, sizeof other, "shares-other.seal");
    static share_set set, oset;
    ms_seal_params p = share_params(3, 5);
    CHECK_ERR(ms_seal_write(path, secrets, &p, set.s, set.len, why, sizeof why), MS_OK);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    for (unsigned i = 0; i < 5; i++)
        CHECK(set.len[i] == MS_KMS_SHARE_LEN && set.s[i][23] == i + 1);

    /* Every 3-subset of the 5 shares unseals (in two orders); every 2-subset does not. */
    int subsets_ok = 0, pairs_short = 0, progress_good = 1;
    for (unsigned a = 0; a < 5; a++)
        for (unsigned b = a + 1; b < 5; b++) {
            unsigned two[2] = {b, a};
            ms_kms_secrets *out = NULL;
            int pg = 0;
            if (feed(path, &set, two, 2, &out, &pg) == MS_OK && out == NULL && pg)
                pairs_short++;
            ms_kms_secrets_free(out);
            for (unsigned c = b + 1; c < 5; c++) {
                unsigned fwd[3] = {a, b, c}, rev[3] = {c, a, b};
                for (int o = 0; o < 2; o++) {
                    out = NULL;
                    ms_err e = feed(path, &set, o ? rev : fwd, 3, &out, &pg);
                    if (e == MS_OK && out != NULL && secrets_equal(out, secrets))
                        subsets_ok++;
                    progress_good &= pg;
                    ms_kms_secrets_free(out);
                }
            }
        }
    CHECK(subsets_ok == 20);
    CHECK(pairs_short == 10);
    CHECK(progress_good);

    /* Another KMS's shares. */
    CHECK_ERR(ms_seal_write(other, secrets, &p, oset.s, oset.len, why, sizeof why), MS_OK);
    ms_unseal *u = NULL;
    ms_kms_secrets *out = NULL;
    CHECK_ERR(ms_unseal_open(&u, path, why, sizeof why), MS_OK);
    CHECK(ms_unseal_method(u) == MS_SEAL_SHARES);
    CHECK_ERR(ms_unseal_share(u, &out, oset.s[0], oset.len[0]), MS_ERR_SHARE);
    CHECK_DETAIL_OF(ms_unseal_detail(u), "another KMS");
    CHECK_ERR(ms_unseal_share(u, &out, set.s[1], set.len[1]), MS_OK);
    CHECK(out == NULL);
    /* Duplicate. */
    CHECK_ERR(ms_unseal_share(u, &out, set.s[1], set.len[1]), MS_ERR_SHARE);
    CHECK_DETAIL_OF(ms_unseal_detail(u), "share 2 was already entered");
    /* Corrupted: one flipped bit of y. */
    uint8_t bad[MS_KMS_SHARE_BYTES];
    memcpy(bad, set.s[3], MS_KMS_SHARE_LEN);
    bad[40] ^= 0x01;
    CHECK_ERR(ms_unseal_share(u, &out, bad, MS_KMS_SHARE_LEN), MS_ERR_SHARE);
    CHECK_DETAIL_OF(ms_unseal_detail(u), "share 4 is corrupted");
    /* Corrupted index. */
    memcpy(bad, set.s[3], MS_KMS_SHARE_LEN);
    bad[23] = 1;
    CHECK_ERR(ms_unseal_share(u, &out, bad, MS_KMS_SHARE_LEN), MS_ERR_SHARE);
    CHECK_DETAIL_OF(ms_unseal_detail(u), "corrupted");
    /* Not a share at all: wrong length, wrong tag. */
    CHECK_ERR(ms_unseal_share(u, &out, set.s[3], MS_KMS_SHARE_LEN - 1), MS_ERR_SHARE);
    CHECK_DETAIL_OF(ms_unseal_detail(u), "not a custodian share");
    memcpy(bad, set.s[3], MS_KMS_SHARE_LEN);
    bad[0] = 'X';
    CHECK_ERR(ms_unseal_share(u, &out, bad, MS_KMS_SHARE_LEN), MS_ERR_SHARE);
    CHECK_DETAIL_OF(ms_unseal_detail(u), "not a custodian share");
    unsigned have = 0, need = 0;
    ms_unseal_progress(u, &have, &need);
    CHECK(have == 1 && need == 3); /* the refusals changed nothing */
    CHECK_ERR(ms_unseal_share(u, &out, set.s[4], set.len[4]), MS_OK);
    CHECK(out == NULL);
    CHECK_ERR(ms_unseal_passphrase(u, &out, (const uint8_t *)"x", 1), MS_ERR_ARG);
    CHECK_ERR(ms_unseal_share(u, &out, set.s[0], set.len[0]), MS_OK);
    CHECK(out != NULL && secrets_equal(out, secrets));
    ms_unseal_progress(u, &have, &need);
    CHECK(have == 0 && need == 3); /* shares forgotten once used */
    ms_kms_secrets_free(out);
    ms_unseal_free(u);

    /* A re-seal hands out new shares; the old ones no longer fit. */
    static share_set nset;
    CHECK_ERR(ms_seal_write(path, secrets, &p, nset.s, nset.len, why, sizeof why), MS_OK);
    CHECK(memcmp(nset.s[0], set.s[0], MS_KMS_SHARE_LEN) != 0);
    CHECK_ERR(ms_unseal_open(&u, path, why, sizeof why), MS_OK);
    CHECK_ERR(ms_unseal_share(u, &out, set.s[0], set.len[0]), MS_ERR_SHARE);
    CHECK_DETAIL_OF(ms_unseal_detail(u), "another KMS");
    ms_unseal_free(u);

    /* Edge counts: 1 of 1, 1 of 3, 5 of 5; and bad ones. */
    static const unsigned kn[][2] = {{1, 1}, {1, 3}, {5, 5}, {2, 16}};
    for (size_t i = 0; i < sizeof kn / sizeof kn[0]; i++) {
        static share_set es;
        ms_seal_params ep = share_params(kn[i][0], kn[i][1]);
        CHECK_ERR(ms_seal_write(other, secrets, &ep, es.s, es.len, why, sizeof why), MS_OK);
        unsigned idx[16];
        for (unsigned j = 0; j < kn[i][0]; j++)
            idx[j] = kn[i][1] - 1 - j;
        int pg = 0;
        CHECK_ERR(feed(other, &es, idx, kn[i][0], &out, &pg), MS_OK);
        CHECK(out != NULL && secrets_equal(out, secrets) && pg);
        ms_kms_secrets_free(out);
    }
    ms_seal_params ep = share_params(4, 3);
    CHECK_ERR(ms_seal_write(other, secrets, &ep, oset.s, oset.len, why, sizeof why), MS_ERR_ARG);
    ep = share_params(0, 3);
    CHECK_ERR(ms_seal_write(other, secrets, &ep, oset.s, oset.len, why, sizeof why), MS_ERR_ARG);
    ep = share_params(2, 17);
    CHECK_ERR(ms_seal_write(other, secrets, &ep, oset.s, oset.len, why, sizeof why), MS_ERR_ARG);
    ep = share_params(2, 3);
    CHECK_ERR(ms_seal_write(other, secrets, &ep, NULL, NULL, why, sizeof why), MS_ERR_ARG);
}

/* Opens a damaged copy and returns the error of open, or of the unseal if open passed. */
static ms_err try_damaged(const uint8_t *f, size_t len, ms_seal_method m, const share_set *set)
{
    char path[512];
    path_in(path, sizeof path, "damaged.seal");
    write_all(path, f, len);
    ms_unseal *u = NULL;
    ms_kms_secrets *out = NULL;
    ms_err err = ms_unseal_open(&u, path, why, sizeof why);
    if (err != MS_OK)
        return err;
    if (m == MS_SEAL_PASSPHRASE) {
        err = ms_unseal_passphrase(u, &out, (const uint8_t *)"damage", 6);
    } else {
        for (unsigned i = 0; i < 2 && err == MS_OK; i++)
            err = ms_unseal_share(u, &out, set->s[i], set->len[i]);
    }
    snprintf(why, sizeof why, "%s", ms_unseal_detail(u));
    ms_kms_secrets_free(out);
    ms_unseal_free(u);
    return err;
}

static void test_damage(void)
{
    char ppath[512], spath[512];
    path_in(ppath, sizeof ppath, "dpass.seal");
    path_in(spath, sizeof spath, "dshares.seal");
    ms_seal_params pp = pass_params("damage");
    CHECK_ERR(ms_seal_write(ppath, secrets, &pp, NULL, NULL, why, sizeof why), MS_OK);
    static share_set set;
    ms_seal_params sp = share_params(2, 3);
    CHECK_ERR(ms_seal_write(spath, secrets, &sp, set.s, set.len, why, sizeof why), MS_OK);

    static uint8_t f[16384], g[16384];
    const char *paths[2] = {ppath, spath};
    const ms_seal_method methods[2] = {MS_SEAL_PASSPHRASE, MS_SEAL_SHARES};
    for (int w = 0; w < 2; w++) {
        size_t len = read_all(paths[w], f, sizeof f);
        size_t h = head_len(f);
        CHECK(len == h + (size_t)(1 + 2 * 490 + 64) + 16);
        ms_seal_method m = methods[w];
        /* Intact copy unseals (the harness itself works). */
        CHECK_ERR(try_damaged(f, len, m, &set), MS_OK);

        /* Magic, version. */
        memcpy(g, f, len);
        g[2] ^= 0x20;
        CHECK_ERR(try_damaged(g, len, m, &set), MS_ERR_SEALED_FILE);
        CHECK_DETAIL("bad magic");
        memcpy(g, f, len);
        g[8] = 2;
        CHECK_ERR(try_damaged(g, len, m, &set), MS_ERR_SEALED_FILE);
        CHECK_DETAIL("unknown format version");
        /* Any other header octet (method, seal id, parameters, nonce, length, checksum). */
        int each_named = 1;
        for (size_t off = 9; off < h; off++) {
            memcpy(g, f, len);
            g[off] ^= 0x04;
            ms_err e = try_damaged(g, len, m, &set);
            each_named &= e == MS_ERR_SEALED_FILE;
        }
        CHECK(each_named);
        memcpy(g, f, len);
        g[30] ^= 0x80;
        CHECK_ERR(try_damaged(g, len, m, &set), MS_ERR_SEALED_FILE);
        CHECK_DETAIL("header checksum");
        /* An unknown method behind a valid checksum. */
        memcpy(g, f, len);
        g[9] = 9;
        fix_checksum(g);
        CHECK_ERR(try_damaged(g, len, m, &set), MS_ERR_SEALED_FILE);
        CHECK_DETAIL("unknown seal method");
        /* Parameters of the wrong length behind a valid checksum. */
        memcpy(g, f, len);
        g[9] = (uint8_t)(m == MS_SEAL_PASSPHRASE ? MS_SEAL_SHARES : MS_SEAL_PASSPHRASE);
        fix_checksum(g);
        CHECK_ERR(try_damaged(g, len, m, &set), MS_ERR_SEALED_FILE);
        /* Ciphertext (first, middle, last octet) and tag: the right key, failing tag. */
        const size_t body[] = {h, h + 500, len - 17, len - 16, len - 1};
        for (size_t i = 0; i < sizeof body / sizeof body[0]; i++) {
            memcpy(g, f, len);
            g[body[i]] ^= 0x01;
            CHECK_ERR(try_damaged(g, len, m, &set), MS_ERR_SEALED_FILE);
            CHECK_DETAIL("fail authentication");
        }
        /* Truncations anywhere, and a trailing octet. */
        const size_t cut[] = {0, 5, 8, 20, 28, h - 32, h - 1, h, h + 100, len - 16, len - 1};
        for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
            CHECK_ERR(try_damaged(f, cut[i], m, &set), MS_ERR_SEALED_FILE);
            CHECK_DETAIL("truncated");
        }
        memcpy(g, f, len);
        g[len] = 0;
        CHECK_ERR(try_damaged(g, len + 1, m, &set), MS_ERR_SEALED_FILE);
        CHECK_DETAIL("trailing");
    }
    /* Passphrase with a damaged check value behind a valid checksum: reads as a wrong
     * passphrase (what else could it be), not as success. */
    size_t len = read_all(ppath, f, sizeof f);
    memcpy(g, f, len);
    g[28 + 25] ^= 0x01;
    fix_checksum(g);
    CHECK_ERR(try_damaged(g, len, MS_SEAL_PASSPHRASE, &set), MS_ERR_PASSPHRASE);
    /* scrypt costs out of range (or asking for more than 1 GiB) behind a valid checksum. */
    const uint8_t costs[][2] = {{9, 8}, {23, 8}, {21, 8}, {19, 32}, {17, 0}, {17, 33}};
    for (size_t i = 0; i < sizeof costs / sizeof costs[0]; i++) {
        memcpy(g, f, len);
        g[28 + 16] = costs[i][0];
        g[28 + 20] = costs[i][1];
        fix_checksum(g);
        CHECK_ERR(try_damaged(g, len, MS_SEAL_PASSPHRASE, &set), MS_ERR_SEALED_FILE);
        CHECK_DETAIL("scrypt parameters out of range");
    }
    /* Share hashes in the header edited behind a valid checksum: the share is refused. */
    len = read_all(spath, f, sizeof f);
    memcpy(g, f, len);
    g[28 + 2 + 5] ^= 0x01; /* first octet-ish of share 1's hash */
    fix_checksum(g);
    CHECK_ERR(try_damaged(g, len, MS_SEAL_SHARES, &set), MS_ERR_SHARE);
    CHECK_DETAIL("share 1 is corrupted");
    /* Missing file, oversized file. */
    ms_unseal *u = NULL;
    char path[512];
    path_in(path, sizeof path, "missing.seal");
    CHECK_ERR(ms_unseal_open(&u, path, why, sizeof why), MS_ERR_SEALED_FILE);
    CHECK_DETAIL("cannot open");
    static uint8_t big[70000];
    memcpy(big, f, len);
    CHECK_ERR(try_damaged(big, sizeof big, MS_SEAL_SHARES, &set), MS_ERR_SEALED_FILE);
    CHECK_DETAIL("too large");
    CHECK(u == NULL);
}

int main(void)
{
    ms_test_seed();
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/ms-seal-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    test_secrets();
    test_passphrase();
    test_shares();
    test_damage();
    ms_kms_secrets_free(secrets);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return ms_test_finish();
}
