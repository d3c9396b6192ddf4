/* src/util/timefmt: every accepted form with its known answer, every rejection, and
 * format/parse round trips. */
#include <string.h>

#include "testutil.h"
#include "util/timefmt.h"

/* 2025-10-02T23:47:52Z (docs/cli.md: NTP EC898DA800000000) */
#define T0 0xEC898DA8ull

static void check_accepts(const char *s, uint64_t want_secs, uint32_t want_frac)
{
    uint64_t secs = 1;
    uint32_t frac = 1;
    bool ok = ms_time_parse(s, &secs, &frac);
    CHECK(ok);
    if (!ok || secs != want_secs || frac != want_frac)
        fprintf(stderr, "  %s: got %d %llu %u\n", s, ok, (unsigned long long)secs, frac);
    CHECK(secs == want_secs);
    CHECK(frac == want_frac);
}

static void accepted_forms(void)
{
    check_accepts("2025-10-02T23:47:52Z", T0, 0);
    check_accepts("2025-10-02T23:47:52", T0, 0); /* no zone: UTC */
    check_accepts("2025-10-03T01:47:52+02:00", T0, 0);
    check_accepts("2025-10-02T21:17:52-02:30", T0, 0);
    check_accepts("2025-10-02T23:47:52+00:00", T0, 0);
    check_accepts("2025-10-02T23:47:52.5Z", T0, 0x80000000u);
    check_accepts("2025-10-02T23:47:52.25", T0, 0x40000000u);
    check_accepts("2025-10-02T23:47:52.000000000000001Z", T0, 0); /* past the 9th: ignored */
    check_accepts("2025-10-02T23:47:52.999999999Z", T0, 0xFFFFFFFBu);
    check_accepts("2025-10-02T23:47:52.5+01:00", T0 - 3600, 0x80000000u);
    check_accepts("1900-01-01T00:00:00Z", 0, 0);
    check_accepts("1970-01-01T00:00:00Z", MS_TIME_NTP_UNIX, 0);
    check_accepts("2036-02-07T06:28:15Z", 0xFFFFFFFFull, 0);
    check_accepts("2036-02-07T06:28:16Z", 0x100000000ull, 0);
    check_accepts("2000-02-29T00:00:00Z", 3160771200ull, 0);
    check_accepts("2024-02-29T12:00:00Z", 3918196800ull, 0);
    check_accepts("2025-10-03T13:47:52+14:00", T0, 0);
    check_accepts("2025-10-02T09:47:52-14:00", T0, 0);
    check_accepts("9999-12-31T23:59:59Z", 255611289599ull, 0);
    /* a time with a fraction: its '-' are no range */
    check_accepts("2026-12-07T15:29:06.5Z", 4005646146ull, 0x80000000u);

    uint64_t secs;
    CHECK(ms_time_parse("2025-10-02T23:47:52Z", &secs, NULL) && secs == T0);
}

static void rejected_forms(void)
{
    static const char *const bad[] = {
        "", "2025", "2025-10-02", "2025-10-02T23:47", "2025-10-02T23:47:5",
        "2025-10-02T23:47:52ZZ", "2025-10-02T23:47:52.Z", "2025-10-02T23:47:52.",
        "2025-10-02T23:47:52 ", " 2025-10-02T23:47:52Z", "+2025-10-02T23:47:52Z",
        "2025-10-02X23:47:52Z", "2025/10/02T23:47:52Z", "2025-1-02T23:47:52Z",
        "2025-10-2T23:47:52Z", "2025-10-02T3:47:52Z", "25-10-02T23:47:52Z",
        "2025-13-01T00:00:00Z", "2025-00-01T00:00:00Z", "2025-10-00T00:00:00Z",
        "2025-04-31T00:00:00Z", "2025-02-29T00:00:00Z", "2100-02-29T00:00:00Z",
        "2025-10-02T24:00:00Z", "2025-10-02T23:60:00Z", "2025-10-02T23:59:61Z",
        "1899-12-31T23:59:59Z", "1900-01-01T00:00:00+00:01", "10000-01-01T00:00:00Z",
        "2025-10-02T23:47:52+2:00", "2025-10-02T23:47:52+02", "2025-10-02T23:47:52+0200",
        "2025-10-02T23:47:52+24:00", "2025-10-02T23:47:52+02:60", "2025-10-02T23:47:52 UTC",
        "2025-10-02T23:47:52Z+01:00", "2025-10-02t23:47:52Z", "2025-10-02 23:47:52Z",
        "2025-10-02T23:47:52z", "2016-12-31T23:59:60Z", "2025-10-02T23:47:52+14:01",
        "2025-10-02T23:47:52+15:00", "EC898DA800000000", "1509", "1509-1510", "current",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t secs = 7;
        uint32_t frac = 7;
        bool ok = ms_time_parse(bad[i], &secs, &frac);
        if (ok)
            fprintf(stderr, "  accepted: \"%s\"\n", bad[i]);
        CHECK(!ok);
        CHECK(secs == 7 && frac == 7); /* nothing written */
    }
    CHECK(!ms_time_parse(NULL, &(uint64_t){0}, NULL));
}

static void formatting(void)
{
    char s[MS_TIME_BUF];
    CHECK(ms_time_format(s, T0) && strcmp(s, "2025-10-02T23:47:52Z") == 0);
    CHECK(ms_time_format(s, 0) && strcmp(s, "1900-01-01T00:00:00Z") == 0);
    CHECK(ms_time_format(s, 0xFFFFFFFFull) && strcmp(s, "2036-02-07T06:28:15Z") == 0);
    CHECK(ms_time_format(s, 3160771200ull) && strcmp(s, "2000-02-29T00:00:00Z") == 0);
    CHECK(ms_time_format(s, 3160771200ull - 1) && strcmp(s, "2000-02-28T23:59:59Z") == 0);
    CHECK(ms_time_format(s, 255611289599ull) && strcmp(s, "9999-12-31T23:59:59Z") == 0);
    CHECK(!ms_time_format(s, 255611289600ull) && s[0] == '\0');
    CHECK(ms_time_format_unix(s, 0) && strcmp(s, "1970-01-01T00:00:00Z") == 0);
    CHECK(ms_time_format_unix(s, 1759448872) && strcmp(s, "2025-10-02T23:47:52Z") == 0);

    /* round trips over four centuries, in steps that visit every field */
    int bad = 0;
    for (uint64_t t = 0; t < 255611289600ull; t += 86400ull * 97 + 3607) {
        uint64_t back;
        if (!ms_time_format(s, t) || strlen(s) != MS_TIME_CHARS ||
            !ms_time_parse(s, &back, NULL) || back != t)
            bad++;
    }
    CHECK(bad == 0);
}

int main(void)
{
    accepted_forms();
    rejected_forms();
    formatting();
    return ms_test_finish();
}
