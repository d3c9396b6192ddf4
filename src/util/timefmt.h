/*
 * Times as text: the one parser and the one formatter of the library and the command.
 * Private to src/ and tools/.
 *
 * Accepted, on the command line and in XML alike: an xs:dateTime, which is RFC 3339
 * (section 5.6) in capitals with the zone optional:
 *     YYYY-MM-DDTHH:MM:SS[.fraction][Z|{+|-}HH:MM]
 * No zone means UTC; offsets up to 14:00. Years 1900 to 9999, days checked against the
 * month, seconds 00 to 59 (NTP and Unix time have no leap second). Written: always
 * "YYYY-MM-DDTHH:MM:SSZ" (UTC, whole seconds). Times are NTP seconds, since
 * 1900-01-01T00:00:00Z.
 */
#ifndef MS_UTIL_TIMEFMT_H
#define MS_UTIL_TIMEFMT_H

#include <stdbool.h>
#include <stdint.h>

/* Characters of a written time, and a buffer for it with its NUL. */
#define MS_TIME_CHARS 20
#define MS_TIME_BUF (MS_TIME_CHARS + 1)

/* Seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix). */
#define MS_TIME_NTP_UNIX 2208988800u

/* Parses text into NTP seconds; the fraction, when given, as a 32-bit binary fraction
 * rounded down (digits past the ninth ignored) into *ntp_fraction if not NULL (0 when
 * there is none). False, and nothing written, when text is not a time above. */
bool ms_time_parse(const char *text, uint64_t *ntp_seconds, uint32_t *ntp_fraction);

/* NTP seconds as "YYYY-MM-DDTHH:MM:SSZ"; false (out = "") past 9999-12-31T23:59:59Z. */
bool ms_time_format(char out[MS_TIME_BUF], uint64_t ntp_seconds);

/* The same for seconds since 1970 (a time_t); before 1970 is written as 1970. */
bool ms_time_format_unix(char out[MS_TIME_BUF], int64_t unix_seconds);

#endif
