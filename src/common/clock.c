/* clock.c - clocks, ISO-8601 / HTTP dates and duration strings (see clock.h). */
#include "clock.h"
#include "err.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t sb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sb_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t sb_mono_ms(void)
{
    return sb_mono_us() / 1000;
}

void sb_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void sb_time_format_iso(int64_t ms, char *out, size_t outsz)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

int64_t sb_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void sb_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

int sb_time_parse_iso(const char *s, int64_t *ms_out)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, se = 0, ms = 0;
    if (read_digits(&p, 4, &y) || *p++ != '-' || read_digits(&p, 2, &mo) || *p++ != '-' ||
        read_digits(&p, 2, &d))
        return SB_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return SB_EINVAL;
    int64_t offset_min = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (read_digits(&p, 2, &h) || *p++ != ':' || read_digits(&p, 2, &mi))
            return SB_EINVAL;
        if (*p == ':') {
            p++;
            if (read_digits(&p, 2, &se))
                return SB_EINVAL;
            if (*p == '.' || *p == ',') {
                p++;
                int digits = 0;
                while (isdigit((unsigned char)*p)) {
                    if (digits < 3)
                        ms = ms * 10 + (*p - '0');
                    digits++;
                    p++;
                }
                if (digits == 0)
                    return SB_EINVAL;
                for (; digits < 3; digits++)
                    ms *= 10;
            }
        }
        if (h > 23 || mi > 59 || se > 60)
            return SB_EINVAL;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1;
            int oh, om = 0;
            p++;
            if (read_digits(&p, 2, &oh))
                return SB_EINVAL;
            if (*p == ':')
                p++;
            if (isdigit((unsigned char)*p) && read_digits(&p, 2, &om))
                return SB_EINVAL;
            offset_min = sign * (oh * 60 + om);
        } else {
            return SB_EINVAL; /* a time without a zone is ambiguous */
        }
    }
    if (*p != '\0')
        return SB_EINVAL;
    int64_t days = sb_days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - offset_min * 60;
    *ms_out = secs * 1000 + ms;
    return 0;
}

int sb_time_parse_http(const char *s, int64_t *ms_out)
{
    static const char *months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    char wd[4], mon[4], zone[4];
    int d, y, h, mi, se;
    /* field widths bound every number: no overflow on hostile input */
    if (sscanf(s, "%3s, %2d %3s %4d %2d:%2d:%2d %3s", wd, &d, mon, &y, &h, &mi, &se, zone) != 8)
        return SB_EINVAL;
    if (strcmp(zone, "GMT") != 0 && strcmp(zone, "UTC") != 0)
        return SB_EINVAL;
    int m = -1;
    for (int i = 0; i < 12; i++)
        if (strcmp(mon, months[i]) == 0)
            m = i + 1;
    if (m < 0 || y < 1970 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 ||
        se > 60)
        return SB_EINVAL;
    *ms_out = (sb_days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + se) * 1000;
    return 0;
}

int sb_duration_parse(const char *s, int64_t bare_unit_ms, int64_t *ms_out)
{
    const char *p = s;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0')
        return SB_EINVAL;
    double total = 0;
    int parts = 0;
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || v < 0 || v != v)
            return SB_EINVAL;
        p = end;
        double unit;
        if (*p == '\0' || isspace((unsigned char)*p)) {
            if (parts > 0 || bare_unit_ms <= 0)
                return SB_EINVAL;
            unit = (double)bare_unit_ms;
        } else if (strncmp(p, "ms", 2) == 0) {
            unit = 1, p += 2;
        } else if (*p == 's') {
            unit = 1000, p++;
        } else if (*p == 'm') {
            unit = 60000, p++;
        } else if (*p == 'h') {
            unit = 3600000, p++;
        } else if (*p == 'd') {
            unit = 86400000, p++;
        } else if (*p == 'w') {
            unit = 7 * 86400000.0, p++;
        } else {
            return SB_EINVAL;
        }
        total += v * unit;
        parts++;
        while (isspace((unsigned char)*p))
            p++;
    }
    if (total > 9.0e15)
        return SB_EINVAL;
    *ms_out = (int64_t)(total + 0.5);
    return 0;
}

void sb_duration_format(int64_t ms, char *out, size_t outsz)
{
    if (ms < 1000) {
        snprintf(out, outsz, ms == 0 ? "0s" : "%lldms", (long long)ms);
        return;
    }
    static const struct {
        int64_t ms;
        const char *u;
    } units[] = { { 86400000, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" }, { 1, "ms" } };
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < 5 && ms > 0; i++) {
        int64_t q = ms / units[i].ms;
        if (q > 0 && n < outsz) {
            n += (size_t)snprintf(out + n, outsz - n, "%lld%s", (long long)q, units[i].u);
            ms -= q * units[i].ms;
        }
    }
}
