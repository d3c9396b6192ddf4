/*
 * Identities and key periods: RFC 6509 monthly tel-URI identifiers (RFC 6509 3.2, 3.3)
 * and the TS 33.180 / 33.179 F.2.1 hashed UID.
 *
 * The calendar arithmetic is done here on plain integers (proleptic Gregorian, UTC, no
 * leap seconds, as NTP counts), so nothing depends on TZ or on the C library's time
 * functions.
 */
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "mikeysakke/mikey.h"

#define SECONDS_PER_DAY 86400u
#define MAX_YEAR 9999u /* the identifier's year has four digits */

/* ---- calendar -------------------------------------------------------------------------- */

static bool is_leap(uint64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Leap years in [1, y]. */
static uint64_t leaps_through(uint64_t y)
{
    return y / 4 - y / 100 + y / 400;
}

/* Days from 1900-01-01 to January 1 of year y (y >= 1900). */
static uint64_t days_to_year(uint64_t y)
{
    return 365 * (y - 1900) + leaps_through(y - 1) - leaps_through(1899);
}

/* Days from January 1 to the first of month m (1..12). */
static uint64_t days_to_month(uint64_t y, unsigned m)
{
    static const uint16_t cum[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    return cum[m - 1] + (m > 2 && is_leap(y) ? 1 : 0);
}

/* UTC year and month (1..12) of day number `days` since 1900-01-01. */
static void civil_from_days(uint64_t days, uint64_t *year, unsigned *month)
{
    /* 146097 days per 400 years is the exact mean; the estimate is off by at most one
     * year either way, which the two loops correct. */
    uint64_t y = 1900 + days * 400 / 146097;
    while (y > 1900 && days_to_year(y) > days)
        y--;
    while (days_to_year(y + 1) <= days)
        y++;
    uint64_t doy = days - days_to_year(y);
    unsigned m = 12;
    while (m > 1 && days_to_month(y, m) > doy)
        m--;
    *year = y;
    *month = m;
}

/* ---- key periods ----------------------------------------------------------------------- */

static ms_err check_scheme(const ms_id_scheme *scheme)
{
    if (scheme == NULL)
        return MS_ERR_ARG;
    if (scheme->scheme == MS_MIKEY_ID_SCHEME_TEL_MONTHLY)
        return MS_OK;
    if (scheme->scheme == MS_MIKEY_ID_SCHEME_HASHED_UID)
        return scheme->period_len > 0 ? MS_OK : MS_ERR_ARG;
    return MS_ERR_MIKEY_UNSUPPORTED;
}

ms_err ms_key_period(const ms_id_scheme *scheme, uint64_t *period_no, uint64_t ntp_seconds)
{
    ms_err e = check_scheme(scheme);
    if (e != MS_OK)
        return e;
    if (period_no == NULL)
        return MS_ERR_ARG;
    if (scheme->scheme == MS_MIKEY_ID_SCHEME_TEL_MONTHLY) {
        uint64_t y;
        unsigned m;
        civil_from_days(ntp_seconds / SECONDS_PER_DAY, &y, &m);
        *period_no = (y - 1900) * 12 + (m - 1);
        return MS_OK;
    }
    if (ntp_seconds < scheme->period_offset)
        return MS_ERR_ARG;
    *period_no = (ntp_seconds - scheme->period_offset) / scheme->period_len;
    return MS_OK;
}

ms_err ms_key_period_bounds(const ms_id_scheme *scheme, uint64_t *start, uint64_t *end,
                            uint64_t period_no)
{
    ms_err e = check_scheme(scheme);
    if (e != MS_OK)
        return e;
    if (start == NULL || end == NULL)
        return MS_ERR_ARG;
    if (scheme->scheme == MS_MIKEY_ID_SCHEME_TEL_MONTHLY) {
        /* Keep to years with four digits: far below any overflow. */
        if (period_no / 12 > MAX_YEAR - 1900)
            return MS_ERR_ARG;
        uint64_t y = 1900 + period_no / 12;
        unsigned m = (unsigned)(period_no % 12) + 1;
        *start = (days_to_year(y) + days_to_month(y, m)) * SECONDS_PER_DAY;
        uint64_t ny = m == 12 ? y + 1 : y;
        unsigned nm = m == 12 ? 1 : m + 1;
        *end = (days_to_year(ny) + days_to_month(ny, nm)) * SECONDS_PER_DAY;
        return MS_OK;
    }
    uint64_t len = scheme->period_len;
    if (period_no > (UINT64_MAX - scheme->period_offset) / len)
        return MS_ERR_ARG;
    uint64_t s = scheme->period_offset + period_no * len;
    if (s > UINT64_MAX - len)
        return MS_ERR_ARG;
    *start = s;
    *end = s + len;
    return MS_OK;
}

ms_err ms_key_periods_accepted(const ms_id_scheme *scheme, uint64_t periods[2], size_t *n,
                               uint64_t ntp_seconds, uint64_t grace)
{
    if (periods == NULL || n == NULL)
        return MS_ERR_ARG;
    uint64_t cur, start, end;
    ms_err e = ms_key_period(scheme, &cur, ntp_seconds);
    if (e != MS_OK)
        return e;
    e = ms_key_period_bounds(scheme, &start, &end, cur);
    if (e != MS_OK)
        return e;
    periods[0] = cur;
    *n = 1;
    uint64_t into = ntp_seconds - start; /* seconds already gone in this period */
    uint64_t left = end - ntp_seconds;   /* seconds to its end, >= 1 */
    bool prev = cur > 0 && into < grace;
    uint64_t nstart, nend;
    bool next = left <= grace && ms_key_period_bounds(scheme, &nstart, &nend, cur + 1) == MS_OK;
    /* Only when grace spans half a period can both apply; the nearer boundary wins. */
    if (prev && next) {
        if (into < left)
            next = false;
        else
            prev = false;
    }
    if (prev)
        periods[(*n)++] = cur - 1;
    else if (next)
        periods[(*n)++] = cur + 1;
    return MS_OK;
}

uint64_t ms_ntp_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || ts.tv_sec < 0)
        return 0;
    uint64_t sec = (uint64_t)ts.tv_sec + MS_NTP_UNIX_OFFSET;
    uint64_t frac = ((uint64_t)ts.tv_nsec << 32) / 1000000000u;
    return (sec << 32) | (frac & 0xFFFFFFFFu);
}

/* ---- identifiers ----------------------------------------------------------------------- */

/* RFC 6509 3.2: "tel:+" and 1 to 15 digits (E.164): global number, no visual
 * separators, no parameters. Returns the length or 0 when not acceptable. */
static size_t tel_uri_len(const char *uri)
{
    static const char prefix[] = "tel:+";
    size_t plen = sizeof prefix - 1;
    if (strncmp(uri, prefix, plen) != 0)
        return 0;
    size_t i = plen;
    while (uri[i] >= '0' && uri[i] <= '9') {
        i++;
        if (i - plen > 15)
            return 0;
    }
    if (uri[i] != '\0' || i == plen)
        return 0;
    return i;
}

/* Appends the minimal big-endian octets of v (0 gives one 0x00 octet). */
static size_t put_minimal(uint8_t out[8], uint64_t v)
{
    size_t n = 1;
    while (n < 8 && (v >> (8 * n)) != 0)
        n++;
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return n;
}

ms_err ms_uid(uint8_t uid[MS_ID_UID_BYTES], const char *user_uri, const char *kms_uri,
              uint64_t period_len, uint64_t period_offset, uint64_t period_no)
{
    static const char label[] = "MIKEY-SAKKE-UID";
    if (uid == NULL || user_uri == NULL || kms_uri == NULL)
        return MS_ERR_ARG;
    uint8_t ints[3][8];
    size_t ilen[3] = {put_minimal(ints[0], period_len), put_minimal(ints[1], period_offset),
                      put_minimal(ints[2], period_no)};
    struct {
        const void *p;
        size_t len;
    } parts[6] = {{label, sizeof label - 1},
                  {user_uri, strlen(user_uri)},
                  {kms_uri, strlen(kms_uri)},
                  {ints[0], ilen[0]},
                  {ints[1], ilen[1]},
                  {ints[2], ilen[2]}};
    /* Each Li is two octets; the URIs identify someone, so they may not be empty. */
    for (size_t i = 0; i < 6; i++)
        if (parts[i].len > 0xFFFF || parts[i].len == 0)
            return MS_ERR_IDENTITY;

    ms_err ret = MS_ERR_INTERNAL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL)
        return MS_ERR_NOMEM;
    const uint8_t fc = 0x00; /* F.2.1: a dummy FC, the hash is plain SHA-256 */
    unsigned int out_len = 0;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(md, &fc, 1) != 1)
        goto done;
    for (size_t i = 0; i < 6; i++) {
        uint8_t l[2] = {(uint8_t)(parts[i].len >> 8), (uint8_t)parts[i].len};
        if (EVP_DigestUpdate(md, parts[i].p, parts[i].len) != 1 ||
            EVP_DigestUpdate(md, l, 2) != 1)
            goto done;
    }
    if (EVP_DigestFinal_ex(md, uid, &out_len) != 1 || out_len != MS_ID_UID_BYTES)
        goto done;
    ret = MS_OK;
done:
    EVP_MD_CTX_free(md);
    return ret;
}

ms_err ms_identifier(const ms_id_scheme *scheme, uint8_t *out, size_t cap, size_t *out_len,
                     const char *uri, uint64_t period_no)
{
    ms_err e = check_scheme(scheme);
    if (e != MS_OK)
        return e;
    if (out_len == NULL || uri == NULL || (out == NULL && cap > 0))
        return MS_ERR_ARG;

    if (scheme->scheme == MS_MIKEY_ID_SCHEME_HASHED_UID) {
        if (scheme->kms_uri == NULL)
            return MS_ERR_ARG;
        *out_len = MS_ID_UID_BYTES;
        if (cap < MS_ID_UID_BYTES)
            return MS_ERR_BUFFER_TOO_SMALL;
        return ms_uid(out, uri, scheme->kms_uri, scheme->period_len, scheme->period_offset,
                      period_no);
    }

    size_t ulen = tel_uri_len(uri);
    if (ulen == 0)
        return MS_ERR_IDENTITY;
    if (period_no / 12 > MAX_YEAR - 1900)
        return MS_ERR_ARG;
    unsigned year = (unsigned)(1900 + period_no / 12);
    unsigned month = (unsigned)(period_no % 12) + 1;
    size_t need = 8 + ulen + 1; /* "YYYY-MM" NUL uri NUL */
    *out_len = need;
    if (cap < need)
        return MS_ERR_BUFFER_TOO_SMALL;
    out[0] = (uint8_t)('0' + year / 1000);
    out[1] = (uint8_t)('0' + year / 100 % 10);
    out[2] = (uint8_t)('0' + year / 10 % 10);
    out[3] = (uint8_t)('0' + year % 10);
    out[4] = '-';
    out[5] = (uint8_t)('0' + month / 10);
    out[6] = (uint8_t)('0' + month % 10);
    out[7] = 0;
    memcpy(out + 8, uri, ulen);
    out[8 + ulen] = 0;
    return MS_OK;
}
