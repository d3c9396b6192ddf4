/*
 * The KMS audit log (src/kms/audit.c): the RFC 8032 key derivation, the line format
 * checked independently with OpenSSL (signature over the octets before " sig=", prev =
 * SHA-256 of the previous line), append/verify round trips, every kind of tampering on
 * a copy of a ten-entry log with the line and reason verify names, escaping of hostile
 * field values, logs that cannot be written (fail closed, nothing appended), reopening,
 * several handles and threads on one log, and argument errors.
 */
#define _GNU_SOURCE /* nftw's FTW_DEPTH */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "kms/audit.h"
#include "mikeysakke/mikey.h"
#include "testutil.h"

#define NTP(sec) ((uint64_t)(sec)) /* the API takes NTP seconds */
#define T_2026_11_27_120000 4004769600u /* NTP seconds of 2026-11-27T12:00:00Z */
#define T_2024_02_29_235959 3918239999u

static char dir[64];
static uint8_t seed[32], other_seed[32], pub[32], other_pub[32];

/* ---- file helpers ------------------------------------------------------------------ */

/* dir/name in one of 8 rotating buffers: hold no result across more than 7 calls. */
static char *path_of(const char *name)
{
    static char buf[8][256];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 256, "%s/%s", dir, name);
    return p;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *len = 0;
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    size_t r;
    while (b != NULL && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap + 1);
        }
    }
    fclose(f);
    if (b == NULL)
        abort();
    b[n] = '\0';
    *len = n;
    return b;
}

static void spit(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        abort();
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* The log as lines (each without its "\n"); at most 64. */
typedef struct lines {
    char *l[64];
    size_t n;
} lines;

static void load_lines(lines *ls, const char *path)
{
    size_t len;
    char *b = slurp(path, &len);
    ls->n = 0;
    for (char *p = b, *nl; p != NULL && *p != '\0' && ls->n < 64; p = nl + 1) {
        nl = strchr(p, '\n');
        if (nl == NULL)
            abort(); /* the writer always ends lines */
        ls->l[ls->n++] = strndup(p, (size_t)(nl - p));
    }
    free(b);
}

static void save_lines(const lines *ls, const char *path)
{
    FILE *f = fopen(path, "wb");
    for (size_t i = 0; i < ls->n; i++)
        fprintf(f, "%s\n", ls->l[i]);
    fclose(f);
}

static void free_lines(lines *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        free(ls->l[i]);
    ls->n = 0;
}

static size_t count_newlines(const char *path)
{
    size_t len, n = 0;
    char *b = slurp(path, &len);
    for (size_t i = 0; i < len; i++)
        n += b[i] == '\n';
    free(b);
    return n;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    chmod(p, 0700);
    return remove(p);
}

/* ---- independent crypto (OpenSSL directly, not through audit.c) --------------------- */

static void sha256_hex(char out[65], const char *s, size_t len)
{
    uint8_t h[32];
    unsigned n;
    EVP_Digest(s, len, h, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", h[i]);
}

static void sha256_raw(uint8_t out[32], const char *s)
{
    unsigned n;
    EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL);
}

static int ossl_verify(const uint8_t key[32], const char *line)
{
    /* The last " sig=": a quoted value may contain the same octets. */
    const char *sig = NULL;
    for (const char *p = strstr(line, " sig="); p != NULL; p = strstr(p + 1, " sig="))
        sig = p;
    uint8_t s[64];
    if (sig == NULL || strlen(sig + 5) != 128)
        return 0;
    ms_test_hex(s, sizeof s, sig + 5);
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key, 32);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = EVP_DigestVerifyInit(c, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestVerify(c, s, 64, (const unsigned char *)line, (size_t)(sig - line)) == 1;
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    return ok;
}

/* A line "<body> sig=<hex>" signed with seed k: how a forger (or the test) builds one. */
static char *ossl_signed_line(const uint8_t k[32], const char *body)
{
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, k, 32);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    uint8_t s[64];
    size_t sl = 64;
    if (EVP_DigestSignInit(c, NULL, NULL, NULL, key) != 1 ||
        EVP_DigestSign(c, s, &sl, (const unsigned char *)body, strlen(body)) != 1)
        abort();
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(key);
    char *out = malloc(strlen(body) + 5 + 128 + 1);
    strcpy(out, body);
    strcat(out, " sig=");
    for (int i = 0; i < 64; i++)
        sprintf(out + strlen(out), "%02x", s[i]);
    return out;
}

/* ---- the reference log: ten entries ------------------------------------------------ */

static ms_err append_extract(ms_audit *a, uint64_t ntp, const char *user, const char *period,
                             const char *reason, uint64_t *seq, uint8_t head[32])
{
    ms_audit_field f[3] = {{"user", user}, {"period", period}, {"reason", reason}};
    return ms_audit_append(a, ntp, "extract", f, 3, seq, head);
}

static uint8_t head10[32], head5[32], head7[32];

static void make_reference(const char *path)
{
    ms_audit *a = NULL;
    CHECK_ERR(ms_audit_open(&a, path, seed), MS_OK);
    for (uint64_t i = 1; i <= 10; i++) {
        char user[32], period[16];
        uint64_t seq = 0;
        uint8_t h[32], h2[32];
        snprintf(user, sizeof user, "tel:+4477009001%02u", (unsigned)i);
        snprintf(period, sizeof period, "%u", (unsigned)(1520 + i));
        CHECK_ERR(append_extract(a, NTP(T_2026_11_27_120000 + i), user, period,
                                 "warrant 2026/118", &seq, h),
                  MS_OK);
        CHECK(seq == i);
        uint64_t hs = 0;
        CHECK_ERR(ms_audit_head(a, &hs, h2), MS_OK);
        CHECK(hs == i);
        CHECK_MEM(h2, h, 32);
        if (i == 5)
            memcpy(head5, h, 32);
        if (i == 7)
            memcpy(head7, h, 32);
        if (i == 10)
            memcpy(head10, h, 32);
    }
    ms_audit_close(a);
}

static void copy_file(const char *from, const char *to)
{
    size_t len;
    char *b = slurp(from, &len);
    spit(to, b, len);
    free(b);
}

/* Verifies path and checks the verdict: code, first bad line, words in the detail. */
static void expect_verdict(const char *path, const uint8_t *key, uint64_t eseq,
                           const uint8_t *ehash, ms_err want, uint64_t want_bad,
                           uint64_t want_n, const char *words)
{
    uint64_t n = 99, bad = 99;
    char detail[256];
    CHECK_ERR(ms_audit_verify(path, key, eseq, ehash, &n, &bad, detail, sizeof detail), want);
    CHECK(bad == want_bad);
    CHECK(n == want_n);
    if (words != NULL && strstr(detail, words) == NULL) {
        ms_test_failed++;
        fprintf(stderr, "detail \"%s\" lacks \"%s\"\n", detail, words);
    } else {
        ms_test_passed++;
    }
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_public_key(void)
{
    /* RFC 8032 section 7.1, TEST 1 and TEST 2. */
    uint8_t s[32], want[32], got[32];
    ms_test_hex(s, 32, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    ms_test_hex(want, 32, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    CHECK_ERR(ms_audit_public_key(got, s), MS_OK);
    CHECK_MEM(got, want, 32);
    ms_test_hex(s, 32, "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
    ms_test_hex(want, 32, "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
    CHECK_ERR(ms_audit_public_key(got, s), MS_OK);
    CHECK_MEM(got, want, 32);
    CHECK_ERR(ms_audit_public_key(NULL, s), MS_ERR_ARG);
    CHECK_ERR(ms_audit_public_key(got, NULL), MS_ERR_ARG);
}

static void test_round_trip_and_format(const char *ref)
{
    struct stat st;
    CHECK(stat(ref, &st) == 0 && (st.st_mode & 0777) == 0600);
    expect_verdict(ref, pub, 0, NULL, MS_OK, 0, 10, "10 entries verified");
    expect_verdict(ref, pub, 10, head10, MS_OK, 0, 10, NULL);
    /* An older head still recorded elsewhere: later entries are allowed. */
    expect_verdict(ref, pub, 5, head5, MS_OK, 0, 10, NULL);

    lines ls;
    load_lines(&ls, ref);
    CHECK(ls.n == 10);
    /* The documented format, checked without audit.c. */
    CHECK(strncmp(ls.l[0],
                  "seq=1 time=2026-11-27T12:00:01Z event=extract user=tel:+447700900101 "
                  "period=1521 reason=\"warrant 2026/118\" prev=0000000000000000000000000000"
                  "000000000000000000000000000000000000 sig=",
                  strlen("seq=1 time=2026-11-27T12:00:01Z event=extract user=tel:+447700900101 "
                         "period=1521 reason=\"warrant 2026/118\" prev=") +
                      64 + 5) == 0);
    int all_sig = 1, all_prev = 1;
    for (size_t i = 0; i < ls.n; i++) {
        all_sig &= ossl_verify(pub, ls.l[i]);
        if (i > 0) {
            char want[65], *p = strstr(ls.l[i], " prev=");
            sha256_hex(want, ls.l[i - 1], strlen(ls.l[i - 1]));
            all_prev &= p != NULL && strncmp(p + 6, want, 64) == 0;
        }
    }
    CHECK(all_sig);
    CHECK(all_prev);
    uint8_t h[32];
    sha256_raw(h, ls.l[9]);
    CHECK_MEM(h, head10, 32);
    CHECK(!ossl_verify(other_pub, ls.l[0]));
    free_lines(&ls);
}

static void test_time_format(void)
{
    const char *p = path_of("time.log");
    ms_audit *a = NULL;
    CHECK_ERR(ms_audit_open(&a, p, seed), MS_OK);
    CHECK_ERR(ms_audit_append(a, NTP(T_2024_02_29_235959), "seal", NULL, 0,
                              NULL, NULL),
              MS_OK);
    CHECK_ERR(ms_audit_append(a, NTP(1), "seal", NULL, 0, NULL, NULL), MS_OK);
    CHECK_ERR(ms_audit_append(a, 0, "seal", NULL, 0, NULL, NULL), MS_OK); /* now */
    ms_audit_close(a);
    lines ls;
    load_lines(&ls, p);
    CHECK(ls.n == 3);
    CHECK(starts_with(ls.l[0], "seq=1 time=2024-02-29T23:59:59Z event=seal prev="));
    CHECK(starts_with(ls.l[1], "seq=2 time=1900-01-01T00:00:01Z event=seal prev="));
    CHECK(starts_with(ls.l[2], "seq=3 time=20"));
    free_lines(&ls);
    expect_verdict(p, pub, 0, NULL, MS_OK, 0, 3, NULL);
}

static void test_tampering(const char *ref)
{
    const char *c = path_of("copy.log");
    lines ls;
    char *s;

    /* Edit one field value. */
    load_lines(&ls, ref);
    s = strstr(ls.l[3], "period=1524");
    CHECK(s != NULL);
    if (s != NULL)
        s[10] = '5';
    save_lines(&ls, c);
    free_lines(&ls);
    expect_verdict(c, pub, 0, NULL, MS_ERR_AUDIT_CHAIN, 4, 3, "signature does not verify");

    /* Delete a middle line. */
    load_lines(&ls, ref);
    free(ls.l[4]);
    memmove(&ls.l[4], &ls.l[5], 5 * sizeof ls.l[0]);
    ls.n = 9;
    save_lines(&ls, c);
    free_lines(&ls);
    expect_verdict(c, pub, 0, NULL, MS_ERR_AUDIT_CHAIN, 5, 4, "1 entry removed");

    /* Delete the first line. */
    load_lines(&ls, ref);
    free(ls.l[0]);
    memmove(&ls.l[0], &ls.l[1], 9 * sizeof ls.l[0]);
    ls.n = 9;
    save_lines(&ls, c);
    free_lines(&ls);
    expect_verdict(c, pub, 0, NULL, MS_ERR_AUDIT_CHAIN, 1, 0, "removed");

    /* Swap two lines. */
    load_lines(&ls, ref);
    s = ls.l[5], ls.l[5] = ls.l[6], ls.l[6] = s;
    save_lines(&ls, c);
    free_lines(&ls);
    expect_verdict(c, pub, 0, NULL, MS_ERR_AUDIT_CHAIN, 6, 5, "reordered");

    /* A line repeated. */
    load_lines(&ls, ref);
    ls.l[10] = strdup(ls.l[9]);
    ls.n = 11;
    save_lines(&ls, c);
    free_lines(&ls);
    expect_verdict(c, pub, 0, NULL, MS_ERR_AUDIT_CHAIN, 11, 10, "repeated");

    /* Truncate the tail: undetectable without the head, caught with it. */
    load_lines(&ls, ref);
    for (size_t i = 7; i < 10; i++)
        free(ls.l[i]);
    ls.n = 7;
    save_lines(&ls, c);
    free_lines(&ls);
    expect_verdict(c, pub, 0, NULL, MS_OK, 0, 7, "7 entries verified");
    expect_verdict(c, pub, 7, head7, MS_OK, 0, 7, NULL);
    expect_verdict(c, pub, 10, head10, MS_ERR_AUDIT_CHAIN, 8, 7, "truncated");
    expect_verdict(c, pub, 10, NULL, MS_ERR_AUDIT_CHAIN, 8, 7, "truncated");
    /* Same seq, other hash: the head does not belong to this log. */
    expect_verdict(c, pub, 7, head10, MS_ERR_AUDIT_CHAIN, 7, 7, "expected head hash");
    /* An empty file is a fully truncated log. */
    spit(c, "", 0);
    expect_verdict(c, pub, 0, NULL, MS_OK, 0, 0, "0 entries");
    expect_verdict(c, pub, 3, NULL, MS_ERR_AUDIT_CHAIN, 1, 0, "truncated");

    /* A forged line with the right seq and prev, signed with another key; the same line
     * signed with the audit key is the control showing the forgery is otherwise right. */
    load_lines(&ls, ref);
    char body[512], prev[65];
    sha256_hex(prev, ls.l[9], strlen(ls.l[9]));
    snprintf(body, sizeof body,
             "seq=11 time=2026-11-28T09:00:00Z event=extract user=tel:+447700900999 "
             "period=1530 reason=forged prev=%s",
             prev);
    ls.l[10] = ossl_signed_line(other_seed, body);
    ls.n = 11;
    save_lines(&ls, c);
    expect_verdict(c, pub, 0, NULL, MS_ERR_AUDIT_CHAIN, 11, 10, "signature does not verify");
    free(ls.l[10]);
    ls.l[10] = ossl_signed_line(seed, body);
    save_lines(&ls, c);
    expect_verdict(c, pub, 0, NULL, MS_OK, 0, 11, NULL);
    /* ... and with a prev that does not match the line before it. */
    free(ls.l[10]);
    memset(prev, 'a', 64);
    snprintf(body, sizeof body, "seq=11 time=2026-11-28T09:00:00Z event=seal prev=%s", prev);
    ls.l[10] = ossl_signed_line(seed, body);
    save_lines(&ls, c);
    expect_verdict(c, pub, 0, NULL, MS_ERR_AUDIT_CHAIN, 11, 10, "previous-hash mismatch");
    /* ms_audit_open refuses to continue either tail. */
    ms_audit *a = (ms_audit *)1;
    CHECK_ERR(ms_audit_open(&a, c, seed), MS_ERR_AUDIT_CHAIN);
    CHECK(a == NULL);
    free_lines(&ls);

    /* A malformed line in the middle. */
    load_lines(&ls, ref);
    free(ls.l[2]);
    ls.l[2] = strdup("seq=3 time=2026-11-27T12:00:03Z event=extract  prev=00 sig=00");
    save_lines(&ls, c);
    free_lines(&ls);
    expect_verdict(c, pub, 0, NULL, MS_ERR_AUDIT_CHAIN, 3, 2, "malformed");

    /* A partial last line (crash in the middle of a write). */
    size_t len;
    char *b = slurp(ref, &len);
    spit(c, b, len - 40);
    free(b);
    expect_verdict(c, pub, 0, NULL, MS_ERR_AUDIT_CHAIN, 10, 9, "partial last line");
    CHECK_ERR(ms_audit_open(&a, c, seed), MS_ERR_AUDIT_CHAIN);

    /* The last entry edited, or the one before it removed: open refuses the tail. */
    load_lines(&ls, ref);
    s = strstr(ls.l[9], "warrant");
    s[0] = 'W';
    save_lines(&ls, c);
    free_lines(&ls);
    CHECK_ERR(ms_audit_open(&a, c, seed), MS_ERR_AUDIT_CHAIN);
    load_lines(&ls, ref);
    free(ls.l[8]);
    ls.l[8] = ls.l[9];
    ls.n = 9;
    save_lines(&ls, c);
    free_lines(&ls);
    CHECK_ERR(ms_audit_open(&a, c, seed), MS_ERR_AUDIT_CHAIN);

    /* Wrong public key: the first entry already fails; wrong seed: open refuses. */
    expect_verdict(ref, other_pub, 0, NULL, MS_ERR_AUDIT_CHAIN, 1, 0, "signature");
    copy_file(ref, c);
    CHECK_ERR(ms_audit_open(&a, c, other_seed), MS_ERR_AUDIT_CHAIN);
    CHECK(file_size(c) == file_size(ref));
}

static void test_escaping(void)
{
    const char *p = path_of("escape.log");
    ms_audit *a = NULL;
    CHECK_ERR(ms_audit_open(&a, p, seed), MS_OK);
    const char *inject = "x\nseq=99 time=2026-11-27T12:00:00Z event=forged prev=0 sig=0";
    ms_audit_field f[] = {
        {"reason", inject},
        {"quote", "say \"hi\" \\ back\tslash\r"},
        {"ctl", "\x01\x7f"},
        {"bad_utf", "\xff\xc3"},
        {"name", "Jos\xc3\xa9"},
        {"bidi", "ab\xe2\x80\xae" "cd"},
        {"eq", "a=b"},
        {"empty", ""},
        {"fake_sig", " sig=00"},
    };
    uint64_t seq = 0;
    CHECK_ERR(ms_audit_append(a, NTP(T_2026_11_27_120000), "extract", f, sizeof f / sizeof f[0],
                              &seq, NULL),
              MS_OK);
    CHECK(seq == 1);
    CHECK_ERR(ms_audit_append(a, NTP(T_2026_11_27_120000), "seal", NULL, 0, &seq, NULL), MS_OK);
    CHECK(seq == 2);
    ms_audit_close(a);
    CHECK(count_newlines(p) == 2);
    lines ls;
    load_lines(&ls, p);
    const char *l = ls.n > 0 ? ls.l[0] : "";
    CHECK(strstr(l, " reason=\"x\\nseq=99 time=2026-11-27T12:00:00Z event=forged prev=0 "
                    "sig=0\" ") != NULL);
    CHECK(strstr(l, " quote=\"say \\\"hi\\\" \\\\ back\\tslash\\r\" ") != NULL);
    CHECK(strstr(l, " ctl=\"\\x01\\x7f\" ") != NULL);
    CHECK(strstr(l, " bad_utf=\"\\xff\\xc3\" ") != NULL);
    CHECK(strstr(l, " name=\"Jos\xc3\xa9\" ") != NULL);
    CHECK(strstr(l, " bidi=\"ab\\xe2\\x80\\xaecd\" ") != NULL);
    CHECK(strstr(l, " eq=a=b ") != NULL);
    CHECK(strstr(l, " empty=\"\" ") != NULL);
    CHECK(strstr(l, " fake_sig=\" sig=00\" ") != NULL);
    CHECK(ossl_verify(pub, l));
    free_lines(&ls);
    expect_verdict(p, pub, 0, NULL, MS_OK, 0, 2, NULL);
}

static void test_bad_arguments(const char *ref)
{
    const char *p = path_of("args.log");
    copy_file(ref, p);
    ms_audit *a = NULL;
    CHECK_ERR(ms_audit_open(&a, p, seed), MS_OK);
    long size = file_size(p);
    ms_audit_field dup[2] = {{"user", "a"}, {"user", "b"}};
    ms_audit_field reserved[1] = {{"sig", "a"}};
    ms_audit_field badkey[1] = {{"User", "a"}};
    ms_audit_field nullval[1] = {{"user", NULL}};
    ms_audit_field many[MS_AUDIT_MAX_FIELDS + 1];
    static char keys[MS_AUDIT_MAX_FIELDS + 1][8];
    for (int i = 0; i <= MS_AUDIT_MAX_FIELDS; i++) {
        snprintf(keys[i], sizeof keys[i], "k%c%c", 'a' + i / 26, 'a' + i % 26);
        many[i].key = keys[i];
        many[i].value = "v";
    }
    char *huge = malloc(MS_AUDIT_LINE_MAX);
    memset(huge, 'x', MS_AUDIT_LINE_MAX - 1);
    huge[MS_AUDIT_LINE_MAX - 1] = '\0';
    ms_audit_field big[1] = {{"reason", huge}};
    uint64_t ntp = NTP(T_2026_11_27_120000);
    CHECK_ERR(ms_audit_append(a, ntp, "Extract", NULL, 0, NULL, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_audit_append(a, ntp, "", NULL, 0, NULL, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_audit_append(a, ntp, NULL, NULL, 0, NULL, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_audit_append(a, ntp, "seal", NULL, 1, NULL, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_audit_append(a, ntp, "seal", dup, 2, NULL, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_audit_append(a, ntp, "seal", reserved, 1, NULL, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_audit_append(a, ntp, "seal", badkey, 1, NULL, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_audit_append(a, ntp, "seal", nullval, 1, NULL, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_audit_append(a, ntp, "seal", many, MS_AUDIT_MAX_FIELDS + 1, NULL, NULL),
              MS_ERR_ARG);
    CHECK_ERR(ms_audit_append(a, ntp, "seal", many, MS_AUDIT_MAX_FIELDS, NULL, NULL), MS_OK);
    CHECK_ERR(ms_audit_append(a, ntp, "seal", big, 1, NULL, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_audit_append(NULL, ntp, "seal", NULL, 0, NULL, NULL), MS_ERR_ARG);
    /* NTP 32.32 where seconds are due: the year would be far past 9999. */
    CHECK_ERR(ms_audit_append(a, ms_ntp_now(), "seal", NULL, 0, NULL, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_audit_append(a, 255611289600u, "seal", NULL, 0, NULL, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_audit_append(a, 255611289599u, "seal", NULL, 0, NULL, NULL), MS_OK);
    free(huge);
    uint64_t seq = 0;
    CHECK_ERR(ms_audit_head(a, &seq, NULL), MS_OK);
    CHECK(seq == 12);
    CHECK(count_newlines(p) == 12);
    CHECK(file_size(p) > size);
    ms_audit_close(a);
    lines ls;
    load_lines(&ls, p);
    CHECK(ls.n == 12 && starts_with(ls.l[11], "seq=12 time=9999-12-31T23:59:59Z event=seal "));
    free_lines(&ls);
    expect_verdict(p, pub, 0, NULL, MS_OK, 0, 12, NULL);

    CHECK_ERR(ms_audit_open(NULL, p, seed), MS_ERR_ARG);
    CHECK_ERR(ms_audit_open(&a, NULL, seed), MS_ERR_ARG);
    CHECK_ERR(ms_audit_open(&a, p, NULL), MS_ERR_ARG);
    CHECK_ERR(ms_audit_verify(NULL, pub, 0, NULL, NULL, NULL, NULL, 0), MS_ERR_ARG);
    CHECK_ERR(ms_audit_verify(p, NULL, 0, NULL, NULL, NULL, NULL, 0), MS_ERR_ARG);
    CHECK_ERR(ms_audit_verify(path_of("absent.log"), pub, 0, NULL, NULL, NULL, NULL, 0),
              MS_ERR_IO);
    CHECK_ERR(ms_audit_head(NULL, &seq, NULL), MS_ERR_ARG);
}

/* Appending must fail with MS_ERR_AUDIT_LOG and leave the file exactly as it was. */
static void expect_refused(ms_audit *a, const char *p)
{
    size_t len0, len1;
    char *before = slurp(p, &len0);
    uint64_t seq0 = 0, seq1 = 0, seq = 77;
    uint8_t h0[32], h1[32], h[32] = {0};
    ms_audit_head(a, &seq0, h0);
    CHECK_ERR(append_extract(a, NTP(T_2026_11_27_120000), "tel:+447700900123", "1523",
                             "must not be released", &seq, h),
              MS_ERR_AUDIT_LOG);
    char *after = slurp(p, &len1);
    CHECK(before != NULL && after != NULL && len0 == len1 && memcmp(before, after, len0) == 0);
    ms_audit_head(a, &seq1, h1);
    CHECK(seq1 == seq0);
    CHECK_MEM(h1, h0, 32);
    CHECK(seq == 77); /* outputs untouched */
    free(before);
    free(after);
}

static void test_unwritable(const char *ref)
{
    ms_audit *a = (ms_audit *)1;
    /* Paths that are no writable regular file. */
    CHECK_ERR(ms_audit_open(&a, dir, seed), MS_ERR_AUDIT_LOG);
    CHECK(a == NULL);
    CHECK_ERR(ms_audit_open(&a, "/dev/full", seed), MS_ERR_AUDIT_LOG);
    CHECK_ERR(ms_audit_open(&a, "/dev/null", seed), MS_ERR_AUDIT_LOG);
    CHECK_ERR(ms_audit_open(&a, path_of("no/such/dir.log"), seed), MS_ERR_AUDIT_LOG);
    const char *ro = path_of("readonly.log");
    copy_file(ref, ro);
    chmod(ro, 0400);
    CHECK_ERR(ms_audit_open(&a, ro, seed), MS_ERR_AUDIT_LOG);

    const char *p = path_of("unwritable.log");
    copy_file(ref, p);
    CHECK_ERR(ms_audit_open(&a, p, seed), MS_OK);

    /* Made read-only while open. */
    chmod(p, 0400);
    expect_refused(a, p);
    chmod(p, 0600);

    /* No space left: the file size limit stands in for a full disk (EFBIG, nothing
     * written), and for a short write (part of the line written, then cut off again). */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)file_size(p);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    expect_refused(a, p);
    lim.rlim_cur = (rlim_t)file_size(p) + 100;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    expect_refused(a, p);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    expect_verdict(p, pub, 10, head10, MS_OK, 0, 10, NULL);

    /* Writable again: the chain continues where it was. */
    uint64_t seq = 0;
    CHECK_ERR(append_extract(a, NTP(T_2026_11_27_120000), "tel:+447700900123", "1523", "ok",
                             &seq, NULL),
              MS_OK);
    CHECK(seq == 11);

    /* Moved away or deleted while open: its entries would go nowhere anyone looks. */
    const char *moved = path_of("moved.log");
    CHECK(rename(p, moved) == 0);
    expect_refused(a, moved);
    copy_file(moved, p); /* same contents, another file */
    expect_refused(a, p);
    CHECK(unlink(p) == 0);
    CHECK(rename(moved, p) == 0);
    CHECK_ERR(append_extract(a, NTP(T_2026_11_27_120000), "tel:+447700900123", "1523", "ok",
                             &seq, NULL),
              MS_OK);
    CHECK(seq == 12);
    ms_audit_close(a);
    expect_verdict(p, pub, 0, NULL, MS_OK, 0, 12, NULL);
}

static void test_reopen(const char *ref)
{
    const char *p = path_of("reopen.log");
    copy_file(ref, p);
    ms_audit *a = NULL;
    uint64_t seq = 0;
    uint8_t h[32];
    CHECK_ERR(ms_audit_open(&a, p, seed), MS_OK);
    CHECK_ERR(ms_audit_head(a, &seq, h), MS_OK);
    CHECK(seq == 10);
    CHECK_MEM(h, head10, 32);
    CHECK_ERR(ms_audit_append(a, NTP(T_2026_11_27_120000), "unseal", NULL, 0, &seq, h),
              MS_OK);
    CHECK(seq == 11);
    ms_audit_close(a);
    CHECK_ERR(ms_audit_open(&a, p, seed), MS_OK);
    CHECK_ERR(ms_audit_append(a, NTP(T_2026_11_27_120000), "seal", NULL, 0, &seq, h), MS_OK);
    CHECK(seq == 12);
    ms_audit_close(a);
    expect_verdict(p, pub, 12, h, MS_OK, 0, 12, NULL);

    /* Two handles (as two processes would) keep one chain. */
    ms_audit *b = NULL;
    CHECK_ERR(ms_audit_open(&a, p, seed), MS_OK);
    CHECK_ERR(ms_audit_open(&b, p, seed), MS_OK);
    CHECK_ERR(ms_audit_append(a, 0, "issue", NULL, 0, &seq, NULL), MS_OK);
    CHECK(seq == 13);
    CHECK_ERR(ms_audit_append(b, 0, "issue", NULL, 0, &seq, NULL), MS_OK);
    CHECK(seq == 14);
    CHECK_ERR(ms_audit_append(a, 0, "issue", NULL, 0, &seq, h), MS_OK);
    CHECK(seq == 15);
    ms_audit_close(a);
    ms_audit_close(b);
    expect_verdict(p, pub, 15, h, MS_OK, 0, 15, NULL);

    /* A new log in a new file: created 0600, first entry seq 1. */
    const char *q = path_of("fresh.log");
    CHECK_ERR(ms_audit_open(&a, q, seed), MS_OK);
    CHECK_ERR(ms_audit_head(a, &seq, h), MS_OK);
    CHECK(seq == 0);
    ms_audit_close(a);
    CHECK(file_size(q) == 0);
    expect_verdict(q, pub, 0, NULL, MS_OK, 0, 0, NULL);
}

/* Entries near the size limit: the tail is then found past the first read. */
static void test_big_entries(void)
{
    const char *p = path_of("big.log");
    ms_audit *a = NULL;
    char *v = malloc(MS_AUDIT_LINE_MAX);
    ms_audit_field f[1] = {{"reason", v}};
    uint64_t seq = 0;
    CHECK_ERR(ms_audit_open(&a, p, seed), MS_OK);
    memset(v, 'r', 40000);
    v[40000] = '\0';
    for (int i = 0; i < 6; i++)
        CHECK_ERR(ms_audit_append(a, NTP(T_2026_11_27_120000), "seal", f, 1, &seq, NULL),
                  MS_OK);
    CHECK(seq == 6);
    /* seq=7: 50 octets before the value, 204 after it ("prev", "sig", newline). */
    size_t most = MS_AUDIT_LINE_MAX - 254;
    memset(v, 'x', most + 1);
    v[most + 1] = '\0';
    CHECK_ERR(ms_audit_append(a, NTP(T_2026_11_27_120000), "seal", f, 1, &seq, NULL),
              MS_ERR_ARG);
    v[most] = '\0';
    CHECK_ERR(ms_audit_append(a, NTP(T_2026_11_27_120000), "seal", f, 1, &seq, NULL), MS_OK);
    CHECK(seq == 7);
    CHECK_ERR(ms_audit_append(a, NTP(T_2026_11_27_120000), "seal", f, 1, &seq, NULL), MS_OK);
    CHECK(seq == 8);
    ms_audit_close(a);
    CHECK(file_size(p) == 6 * (40000 + 254) + 2 * MS_AUDIT_LINE_MAX);
    /* Reopening reads the two longest possible lines at the end. */
    CHECK_ERR(ms_audit_open(&a, p, seed), MS_OK);
    CHECK_ERR(ms_audit_append(a, NTP(T_2026_11_27_120000), "seal", NULL, 0, &seq, NULL),
              MS_OK);
    CHECK(seq == 9);
    ms_audit_close(a);
    expect_verdict(p, pub, 9, NULL, MS_OK, 0, 9, NULL);
    /* One octet more in the file than any entry may have: malformed. */
    size_t len;
    char *b = slurp(p, &len);
    char *big = malloc(len + 2);
    size_t cut = 6 * (40000 + 254) + 60; /* inside the long line's value */
    memcpy(big, b, cut);
    big[cut] = 'x';
    memcpy(big + cut + 1, b + cut, len - cut);
    spit(p, big, len + 1);
    expect_verdict(p, pub, 0, NULL, MS_ERR_AUDIT_CHAIN, 7, 6, "longer than");
    free(b);
    free(big);
    free(v);
}

typedef struct worker {
    ms_audit *a;
    int id;
    int failures;
    uint64_t seqs[20];
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 20; i++) {
        char who[32];
        snprintf(who, sizeof who, "thread %d #%d", w->id, i);
        ms_audit_field f[1] = {{"who", who}};
        if (ms_audit_append(w->a, 0, "issue", f, 1, &w->seqs[i], NULL) != MS_OK)
            w->failures++;
    }
    return NULL;
}

static void test_threads(void)
{
    const char *p = path_of("threads.log");
    ms_audit *a = NULL;
    CHECK_ERR(ms_audit_open(&a, p, seed), MS_OK);
    worker w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].a = a;
        w[i].id = i;
        CHECK(pthread_create(&th[i], NULL, work, &w[i]) == 0);
    }
    uint8_t seen[81] = {0};
    int failures = 0, dup = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        failures += w[i].failures;
        for (int j = 0; j < 20; j++) {
            uint64_t s = w[i].seqs[j];
            if (s < 1 || s > 80 || seen[s]++)
                dup++;
        }
    }
    CHECK(failures == 0);
    CHECK(dup == 0);
    ms_audit_close(a);
    expect_verdict(p, pub, 80, NULL, MS_OK, 0, 80, NULL);
}

int main(void)
{
    strcpy(dir, "/tmp/ms_audit_XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    ms_test_seed();
    ms_test_random(seed, sizeof seed);
    ms_test_random(other_seed, sizeof other_seed);
    CHECK_ERR(ms_audit_public_key(pub, seed), MS_OK);
    CHECK_ERR(ms_audit_public_key(other_pub, other_seed), MS_OK);

    static char ref[256];
    snprintf(ref, sizeof ref, "%s", path_of("reference.log"));
    make_reference(ref);

    test_public_key();
    test_round_trip_and_format(ref);
    test_time_format();
    test_tampering(ref);
    test_escaping();
    test_bad_arguments(ref);
    test_unwritable(ref);
    test_reopen(ref);
    test_threads();
    test_big_entries();

    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return ms_test_finish();
}
