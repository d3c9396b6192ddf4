/*
 * Identities and key periods: the RFC 6509 example identifier, the five TS 33.179 F.2.1
 * UID vectors (hash input S and UID), monthly period numbers and bounds at month and
 * year edges and across leap-year rules, the hashed-UID period arithmetic with the
 * vendor T, the "hold two periods" rule at its edges, and every tel URI rejection.
 * The NTP times below were computed independently (date -u) and are hard-coded.
 */
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "mikeysakke/mikey.h"
#include "testutil.h"

#define TS_FILE "ts33180.txt"
#define DAY 86400u

static const ms_id_scheme monthly = {MS_MIKEY_ID_SCHEME_TEL_MONTHLY, NULL, 0, 0};

static uint64_t period_of(const ms_id_scheme *s, uint64_t t)
{
    uint64_t p = UINT64_MAX;
    CHECK_ERR(ms_key_period(s, &p, t), MS_OK);
    return p;
}

/* Monthly period number of year y, month m. */
static uint64_t pm(unsigned y, unsigned m)
{
    return (uint64_t)(y - 1900) * 12 + (m - 1);
}

static void check_bounds(uint64_t period, uint64_t want_start, uint64_t want_end)
{
    uint64_t s = 0, e = 0;
    CHECK_ERR(ms_key_period_bounds(&monthly, &s, &e, period), MS_OK);
    CHECK(s == want_start);
    CHECK(e == want_end);
    CHECK(period_of(&monthly, want_start) == period);
    CHECK(period_of(&monthly, want_end - 1) == period);
    CHECK(period_of(&monthly, want_end) == period + 1);
}

static void test_rfc6509_identifier(void)
{
    uint8_t want[64], got[MS_SAKKE_ID_MAX_BYTES];
    size_t want_len = ms_test_vector(TS_FILE, "rfc6509_ID", want, sizeof want);
    CHECK(want_len == 26);
    /* Any time in February 2011 is period (2011 - 1900) * 12 + 1. */
    CHECK(period_of(&monthly, 3505507200u) == 1333);
    CHECK(period_of(&monthly, 3505507200u + 10 * DAY + 12345) == 1333);
    size_t len = 0;
    CHECK_ERR(ms_identifier(&monthly, got, sizeof got, &len, "tel:+447700900123", 1333),
              MS_OK);
    CHECK(len == want_len);
    CHECK_MEM(got, want, want_len);

    /* Too small a buffer says how much is needed. */
    len = 0;
    CHECK_ERR(ms_identifier(&monthly, got, 25, &len, "tel:+447700900123", 1333),
              MS_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 26);
    /* Month and year digits: period 0 is 1900-01, the last is 9999-12. */
    CHECK_ERR(ms_identifier(&monthly, got, sizeof got, &len, "tel:+1", 0), MS_OK);
    CHECK(len == 8 + 6 + 1 && memcmp(got, "1900-01\0tel:+1\0", 15) == 0);
    CHECK_ERR(ms_identifier(&monthly, got, sizeof got, &len, "tel:+1", pm(9999, 12)), MS_OK);
    CHECK(memcmp(got, "9999-12\0", 8) == 0);
    CHECK_ERR(ms_identifier(&monthly, got, sizeof got, &len, "tel:+1", pm(9999, 12) + 1),
              MS_ERR_ARG);
    /* 15 digits is the E.164 maximum. */
    CHECK_ERR(ms_identifier(&monthly, got, sizeof got, &len, "tel:+123456789012345", 1333),
              MS_OK);
    CHECK(len == 8 + 20 + 1);
}

static void test_bad_tel_uris(void)
{
    static const char *const bad[] = {
        "",                          /* empty */
        "tel:",                      /* no number */
        "tel:+",                     /* no digits */
        "tel:447700900123",          /* local form, no + */
        "tel:+44770090012a",         /* letter */
        "tel:+44-7700-900123",       /* visual separator */
        "tel:+44.7700.900123",       /* visual separator */
        "tel:+44(7700)900123",       /* visual separator */
        "tel:+44 7700900123",        /* space */
        "tel:+447700900123;ext=12",  /* parameter */
        "tel:+447700900123;phone-context=example.com",
        "tel:+1234567890123456",     /* 16 digits */
        "TEL:+447700900123",         /* not the normalised scheme */
        "tel:++447700900123",
        "sip:+447700900123@example.com",
        "tel:+447700900123 ",        /* trailing space */
        "+447700900123",
    };
    uint8_t out[MS_SAKKE_ID_MAX_BYTES];
    size_t len;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms_err e = ms_identifier(&monthly, out, sizeof out, &len, bad[i], 1333);
        CHECK(e == MS_ERR_IDENTITY);
        if (e != MS_ERR_IDENTITY)
            fprintf(stderr, "  accepted or misreported: \"%s\" (%s)\n", bad[i], ms_errname(e));
    }
    CHECK_ERR(ms_identifier(&monthly, out, sizeof out, &len, NULL, 1333), MS_ERR_ARG);
    CHECK_ERR(ms_identifier(NULL, out, sizeof out, &len, "tel:+1", 1333), MS_ERR_ARG);
    ms_id_scheme unknown = {9, NULL, 0, 0};
    CHECK_ERR(ms_identifier(&unknown, out, sizeof out, &len, "tel:+1", 1333),
              MS_ERR_MIKEY_UNSUPPORTED);
}

static void test_monthly_bounds(void)
{
    /* Period 0 starts at the NTP epoch. */
    check_bounds(0, 0, 2678400u);
    CHECK(period_of(&monthly, 0) == 0);
    /* February 1900: 1900 is not a leap year (divisible by 100, not by 400). */
    check_bounds(pm(1900, 2), 2678400u, 5097600u);
    CHECK(5097600u - 2678400u == 28 * DAY);
    /* February 2000 is a leap month (divisible by 400). */
    check_bounds(pm(2000, 2), 3158352000u, 3160857600u);
    CHECK(3160857600u - 3158352000u == 29 * DAY);
    /* February 2100: not leap. */
    check_bounds(pm(2100, 2), 6314112000u, 6316531200u);
    CHECK(6316531200u - 6314112000u == 28 * DAY);
    /* February 2024: leap; March; December 2023 into January 2024. */
    check_bounds(pm(2024, 2), 3915734400u, 3918240000u);
    check_bounds(pm(2024, 3), 3918240000u, 3920918400u);
    check_bounds(pm(2023, 12), 3910377600u, 3913056000u);
    check_bounds(pm(2011, 2), 3505507200u, 3507926400u);
    /* NTP seconds past 2^32 (era 1): 2036-02-07 06:28:16 UTC is 2^32. */
    CHECK(period_of(&monthly, 4294967296u) == pm(2036, 2));
    CHECK(period_of(&monthly, 4294425600u) == pm(2036, 2));
    CHECK(period_of(&monthly, 4294425600u - 1) == pm(2036, 1));
    /* The vendor T 0xEC898DA8 is 2025-10-02 23:47:52 UTC. */
    CHECK(period_of(&monthly, 0xEC898DA8u) == pm(2025, 10));
    /* The last representable month. */
    check_bounds(pm(9999, 12), 255608611200u, 255611289600u);
    uint64_t s, e;
    CHECK_ERR(ms_key_period_bounds(&monthly, &s, &e, pm(9999, 12) + 1), MS_ERR_ARG);
    CHECK_ERR(ms_key_period_bounds(&monthly, NULL, &e, 0), MS_ERR_ARG);

    /* Every month from 1900 to 9999: contiguous, 28 to 31 days, and period_of agrees at
     * both ends. Failures are counted once, not per month. */
    uint64_t prev_end = 0;
    int bad = 0;
    for (uint64_t p = 0; p <= pm(9999, 12); p++) {
        uint64_t a = 0, b = 0, q1 = 0, q2 = 0;
        if (ms_key_period_bounds(&monthly, &a, &b, p) != MS_OK || a != prev_end ||
            b - a < 28 * DAY || b - a > 31 * DAY || ms_key_period(&monthly, &q1, a) != MS_OK ||
            ms_key_period(&monthly, &q2, b - 1) != MS_OK || q1 != p || q2 != p) {
            if (bad++ < 3)
                fprintf(stderr, "  month %llu inconsistent\n", (unsigned long long)p);
        }
        prev_end = b;
    }
    CHECK(bad == 0);
    /* 400 years are exactly 146097 days. */
    uint64_t a0, b0, a1, b1;
    CHECK_ERR(ms_key_period_bounds(&monthly, &a0, &b0, pm(2000, 1)), MS_OK);
    CHECK_ERR(ms_key_period_bounds(&monthly, &a1, &b1, pm(2400, 1)), MS_OK);
    CHECK(a1 - a0 == 146097ull * DAY);
    /* Huge times do not crash and give a huge period. */
    uint64_t big = 0;
    CHECK_ERR(ms_key_period(&monthly, &big, UINT64_MAX), MS_OK);
    CHECK(big > pm(9999, 12));
}

static void test_hashed_periods(void)
{
    ms_id_scheme vendor = {MS_MIKEY_ID_SCHEME_HASHED_UID, "kms.example.org", 16777215, 0};
    CHECK(period_of(&vendor, 0xEC898DA8u) == 236);
    uint64_t s = 0, e = 0;
    CHECK_ERR(ms_key_period_bounds(&vendor, &s, &e, 236), MS_OK);
    CHECK(s == 236ull * 16777215 && e == 237ull * 16777215);
    CHECK(s <= 0xEC898DA8u && 0xEC898DA8u < e);

    ms_id_scheme off = {MS_MIKEY_ID_SCHEME_HASHED_UID, "kms.example.org", 2592000, 100};
    CHECK(period_of(&off, 100) == 0);
    CHECK(period_of(&off, 100 + 2592000 - 1) == 0);
    CHECK(period_of(&off, 100 + 2592000) == 1);
    CHECK_ERR(ms_key_period_bounds(&off, &s, &e, 3), MS_OK);
    CHECK(s == 100 + 3 * 2592000ull && e == 100 + 4 * 2592000ull);
    uint64_t p;
    CHECK_ERR(ms_key_period(&off, &p, 99), MS_ERR_ARG); /* before the offset */
    CHECK_ERR(ms_key_period_bounds(&off, &s, &e, UINT64_MAX / 2592000), MS_ERR_ARG);

    ms_id_scheme zero = {MS_MIKEY_ID_SCHEME_HASHED_UID, "kms.example.org", 0, 0};
    CHECK_ERR(ms_key_period(&zero, &p, 1000), MS_ERR_ARG);
    CHECK_ERR(ms_key_period_bounds(&zero, &s, &e, 1), MS_ERR_ARG);
    ms_id_scheme unknown = {0, NULL, 10, 0};
    CHECK_ERR(ms_key_period(&unknown, &p, 1000), MS_ERR_MIKEY_UNSUPPORTED);
    CHECK_ERR(ms_key_period_bounds(&unknown, &s, &e, 1), MS_ERR_MIKEY_UNSUPPORTED);
    CHECK_ERR(ms_key_period(NULL, &p, 1000), MS_ERR_ARG);
    CHECK_ERR(ms_key_period(&vendor, NULL, 1000), MS_ERR_ARG);
}

/* The five UID rows of the digest: period length, offset and number. */
static const uint64_t uid_rows[5][3] = {
    {2592000, 0, 1},
    {10, 0, 10},
    {25920000, 100, 1},
    {25920000, 100, 2048},
    {25920000, 45920000, 20393844},
};

static void test_uid(void)
{
    for (int r = 0; r < 5; r++) {
        char name[16];
        uint8_t S[256], want[32], hashed[32], got[32];
        snprintf(name, sizeof name, "uid%d_S", r + 1);
        size_t s_len = ms_test_vector(TS_FILE, name, S, sizeof S);
        snprintf(name, sizeof name, "uid%d_UID", r + 1);
        CHECK(ms_test_vector(TS_FILE, name, want, sizeof want) == 32);
        /* The vector's S really hashes to its UID... */
        unsigned int hl = 0;
        CHECK(EVP_Digest(S, s_len, hashed, &hl, EVP_sha256(), NULL) == 1 && hl == 32);
        CHECK_MEM(hashed, want, 32);
        /* ...and ours, from the parameters, is the same. */
        CHECK_ERR(ms_uid(got, "sip:user@example.org", "kms.example.org", uid_rows[r][0],
                         uid_rows[r][1], uid_rows[r][2]),
                  MS_OK);
        CHECK_MEM(got, want, 32);
        /* ms_identifier with the hashed-UID scheme gives the same 32 octets. */
        ms_id_scheme sc = {MS_MIKEY_ID_SCHEME_HASHED_UID, "kms.example.org", uid_rows[r][0],
                           uid_rows[r][1]};
        uint8_t id[MS_SAKKE_ID_MAX_BYTES];
        size_t len = 0;
        CHECK_ERR(ms_identifier(&sc, id, sizeof id, &len, "sip:user@example.org",
                                uid_rows[r][2]),
                  MS_OK);
        CHECK(len == MS_ID_UID_BYTES);
        CHECK_MEM(id, want, 32);
    }
    uint8_t uid[32], id[64];
    size_t len;
    CHECK_ERR(ms_uid(uid, "", "kms.example.org", 10, 0, 1), MS_ERR_IDENTITY);
    CHECK_ERR(ms_uid(uid, "sip:user@example.org", "", 10, 0, 1), MS_ERR_IDENTITY);
    CHECK_ERR(ms_uid(uid, NULL, "kms.example.org", 10, 0, 1), MS_ERR_ARG);
    CHECK_ERR(ms_uid(uid, "sip:user@example.org", NULL, 10, 0, 1), MS_ERR_ARG);
    ms_id_scheme sc = {MS_MIKEY_ID_SCHEME_HASHED_UID, "kms.example.org", 10, 0};
    CHECK_ERR(ms_identifier(&sc, id, 31, &len, "sip:user@example.org", 1),
              MS_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 32);
    CHECK_ERR(ms_identifier(&sc, id, sizeof id, &len, "", 1), MS_ERR_IDENTITY);
    sc.kms_uri = NULL;
    CHECK_ERR(ms_identifier(&sc, id, sizeof id, &len, "sip:user@example.org", 1), MS_ERR_ARG);
}

static void check_accepted(const ms_id_scheme *sc, uint64_t t, uint64_t grace, size_t want_n,
                           uint64_t want0, uint64_t want1)
{
    uint64_t per[2] = {UINT64_MAX, UINT64_MAX};
    size_t n = 9;
    CHECK_ERR(ms_key_periods_accepted(sc, per, &n, t, grace), MS_OK);
    CHECK(n == want_n);
    CHECK(per[0] == want0);
    if (want_n == 2)
        CHECK(per[1] == want1);
    if (n != want_n || per[0] != want0 || (want_n == 2 && per[1] != want1))
        fprintf(stderr, "  t=%llu grace=%llu: got n=%zu %llu %llu\n", (unsigned long long)t,
                (unsigned long long)grace, n, (unsigned long long)per[0],
                (unsigned long long)per[1]);
}

static void test_accepted(void)
{
    const uint64_t grace = 2 * DAY;
    const uint64_t mar = pm(2024, 3), start = 3918240000u, end = 3920918400u;
    /* First two days of March: March and February. */
    check_accepted(&monthly, start, grace, 2, mar, mar - 1);
    check_accepted(&monthly, start + grace - 1, grace, 2, mar, mar - 1);
    /* From day 3: March only. */
    check_accepted(&monthly, start + grace, grace, 1, mar, 0);
    check_accepted(&monthly, start + 15 * DAY, grace, 1, mar, 0);
    /* Last two days: March and April. */
    check_accepted(&monthly, end - grace - 1, grace, 1, mar, 0);
    check_accepted(&monthly, end - grace, grace, 2, mar, mar + 1);
    check_accepted(&monthly, end - 1, grace, 2, mar, mar + 1);
    /* The first second of April belongs to April (and March, by grace). */
    check_accepted(&monthly, end, grace, 2, mar + 1, mar);
    /* December into January across the year. */
    check_accepted(&monthly, 3913056000u - 1, grace, 2, pm(2023, 12), pm(2024, 1));
    check_accepted(&monthly, 3913056000u, grace, 2, pm(2024, 1), pm(2023, 12));
    /* No grace: one period. */
    check_accepted(&monthly, start, 0, 1, mar, 0);
    check_accepted(&monthly, end - 1, 0, 1, mar, 0);
    /* Period 0 has no predecessor. */
    check_accepted(&monthly, 0, grace, 1, 0, 0);

    /* Hashed UID, 10-second periods at offset 5 and a grace over half a period: the
     * nearer boundary decides. */
    ms_id_scheme h = {MS_MIKEY_ID_SCHEME_HASHED_UID, "kms.example.org", 10, 5};
    check_accepted(&h, 5 + 30 + 3, 8, 2, 3, 2);
    check_accepted(&h, 5 + 30 + 7, 8, 2, 3, 4);
    check_accepted(&h, 5 + 30 + 5, 3, 1, 3, 0);
    check_accepted(&h, 5 + 30 + 2, 3, 2, 3, 2);
    check_accepted(&h, 5 + 30 + 3, 3, 1, 3, 0);
    check_accepted(&h, 5 + 30 + 7, 3, 2, 3, 4);

    uint64_t per[2];
    size_t n;
    CHECK_ERR(ms_key_periods_accepted(&h, per, &n, 4, 3), MS_ERR_ARG); /* before offset */
    CHECK_ERR(ms_key_periods_accepted(&h, NULL, &n, 40, 3), MS_ERR_ARG);
    CHECK_ERR(ms_key_periods_accepted(&h, per, NULL, 40, 3), MS_ERR_ARG);
}

static void test_ntp_now(void)
{
    uint64_t before = (uint64_t)time(NULL) + MS_NTP_UNIX_OFFSET;
    uint64_t ntp = ms_ntp_now();
    uint64_t after = (uint64_t)time(NULL) + MS_NTP_UNIX_OFFSET;
    /* Same clock, different functions: the seconds part lies between the two reads
     * (one second of slack for rounding between the calls). */
    CHECK((ntp >> 32) + 1 >= before && (ntp >> 32) <= after + 1);
}

int main(void)
{
    test_rfc6509_identifier();
    test_bad_tel_uris();
    test_monthly_bounds();
    test_hashed_periods();
    test_uid();
    test_accepted();
    test_ntp_now();
    return ms_test_finish();
}
