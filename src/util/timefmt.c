/* Times as text (timefmt.h). */
#include "util/timefmt.h"

#include <stddef.h>

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 0001-01-01 to y-01-01 in the proleptic Gregorian calendar. */
static int64_t days_before_year(int64_t y)
{
    y -= 1;
    return 365 * y + y / 4 - y / 100 + y / 400;
}

static int month_days(int64_t y, int m)
{
    static const int md[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return md[m - 1] + (m == 2 && is_leap(y));
}

/* n decimal digits at s, no sign or space. */
static bool digits(const char *s, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return true;
}

bool ms_time_parse(const char *s, uint64_t *ntp_seconds, uint32_t *ntp_fraction)
{
    int y, mo, d, h, mi, se;
    if (s == NULL || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) ||
        s[10] != 'T' || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se))
        return false;
    if (y < 1900 || mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || h > 23 ||
        mi > 59 || se > 59)
        return false;
    const char *t = s + 19;
    uint64_t frac = 0;
    if (*t == '.') {
        /* decimal to binary fraction: floor(f * 2^32); 9 digits are finer than 2^-32 s */
        uint64_t num = 0, den = 1;
        if (t[1] < '0' || t[1] > '9')
            return false;
        for (t++; *t >= '0' && *t <= '9'; t++) {
            if (den < 1000000000u) {
                num = num * 10 + (uint64_t)(*t - '0');
                den *= 10;
            }
        }
        frac = (num << 32) / den;
    }
    int64_t off = 0;
    if (*t == 'Z') {
        t++;
    } else if (*t == '+' || *t == '-') {
        int oh, om;
        if (!digits(t + 1, 2, &oh) || t[3] != ':' || !digits(t + 4, 2, &om) || oh > 14 ||
            om > 59 || (oh == 14 && om != 0))
            return false;
        off = (int64_t)(oh * 3600 + om * 60) * (*t == '+' ? 1 : -1);
        t += 6;
    }
    if (*t != '\0')
        return false;
    static const int cum_days[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t days = days_before_year(y) - days_before_year(1900) + cum_days[mo - 1] +
                   (mo > 2 && is_leap(y)) + (d - 1);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - off;
    if (secs < 0)
        return false;
    *ntp_seconds = (uint64_t)secs;
    if (ntp_fraction != NULL)
        *ntp_fraction = (uint32_t)frac;
    return true;
}

bool ms_time_format(char out[MS_TIME_BUF], uint64_t ntp)
{
    const int64_t base = days_before_year(1900);
    out[0] = '\0';
    if (ntp / 86400 >= (uint64_t)(days_before_year(10000) - base))
        return false;
    int64_t days = (int64_t)(ntp / 86400);
    int64_t rem = (int64_t)(ntp % 86400);
    int64_t y = 1900 + days / 366;
    while (days_before_year(y + 1) - base <= days)
        y++;
    int64_t doy = days - (days_before_year(y) - base);
    int m = 1;
    while (m < 12 && doy >= month_days(y, m)) {
        doy -= month_days(y, m);
        m++;
    }
    /* digit by digit: every field has a fixed width */
    const int v[6] = {(int)y, m, (int)doy + 1, (int)(rem / 3600), (int)(rem / 60 % 60),
                      (int)(rem % 60)};
    static const char seps[6] = {'-', '-', 'T', ':', ':', 'Z'};
    char *o = out;
    for (size_t i = 0; i < 6; i++) {
        int width = i == 0 ? 4 : 2, x = v[i];
        for (int k = width; k-- > 0; x /= 10)
            o[k] = (char)('0' + x % 10);
        o += width;
        *o++ = seps[i];
    }
    *o = '\0';
    return true;
}

bool ms_time_format_unix(char out[MS_TIME_BUF], int64_t unix_seconds)
{
    return ms_time_format(out, (uint64_t)(unix_seconds > 0 ? unix_seconds : 0) + MS_TIME_NTP_UNIX);
}
