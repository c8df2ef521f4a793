/* clock.h - time: wall and monotonic clocks, ISO-8601, and durations.
 *
 * Wall time is Unix milliseconds (int64). Durations in text accept Go/Inngest
 * style strings: "500ms", "2s", "1h30m", "1d", "2w" (units ms, s, m, h, d, w;
 * several may be chained, each at most once in decreasing order is NOT
 * required) and a bare integer meaning milliseconds only where a caller says so. */
#ifndef SB_CLOCK_H
#define SB_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t sb_now_ms(void);  /* CLOCK_REALTIME, ms since epoch */
int64_t sb_mono_us(void); /* CLOCK_MONOTONIC, microseconds */
int64_t sb_mono_ms(void);

/* "2026-11-27T17:00:00.123Z" into out (>= 25 bytes). */
void sb_time_format_iso(int64_t ms, char *out, size_t outsz);
/* Parses RFC 3339 / ISO-8601 date-times: "2026-11-27T17:00:00Z",
 * "...T17:00:00.5+02:00", "2026-11-27" (midnight UTC). 0 ok, SB_EINVAL. */
int sb_time_parse_iso(const char *s, int64_t *ms_out);
/* Parses an RFC 7231 HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT"). */
int sb_time_parse_http(const char *s, int64_t *ms_out);

/* Parses a duration string as described above into ms. A bare number is
 * rejected unless bare_unit_ms > 0, in which case it is multiplied by it. */
int sb_duration_parse(const char *s, int64_t bare_unit_ms, int64_t *ms_out);
/* Formats ms compactly: "1h30m", "250ms", "0s". */
void sb_duration_format(int64_t ms, char *out, size_t outsz);

/* Proleptic Gregorian calendar: days since 1970-01-01 and back. */
int64_t sb_days_from_civil(int64_t y, int m, int d);
void sb_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

/* Sleeps for ms milliseconds (restarts on EINTR). */
void sb_sleep_ms(int64_t ms);

#endif
