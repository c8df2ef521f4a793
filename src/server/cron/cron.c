/* cron.c - cron expression parser and next-fire computation (see cron.h).
 * Each field is a bit set; the search walks local calendar days and, in
 * each matching day, the matching times, converting each to UTC through the
 * zone (tz.c). */
#include "cron.h"
#include "tz.h"
#include "common/clock.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct sbd_cron {
    uint64_t sec, min, hour, dom, month, dow; /* bit i set = value i allowed */
    bool dom_star, dow_star;
    struct sbd_tz *tz;
};

struct field {
    const char *name;
    int lo, hi;
    const char *const *names; /* index 0 = value lo */
};

static const char *const month_names[] = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
                                           "AUG", "SEP", "OCT", "NOV", "DEC", NULL };
static const char *const dow_names[] = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL };

static const struct field F_SEC = { "second", 0, 59, NULL }, F_MIN = { "minute", 0, 59, NULL },
                          F_HOUR = { "hour", 0, 23, NULL }, F_DOM = { "day of month", 1, 31, NULL },
                          F_MON = { "month", 1, 12, month_names },
                          F_DOW = { "day of week", 0, 7, dow_names };

static int value(const char **p, const struct field *f, int *out)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        int v = 0;
        while (isdigit((unsigned char)*s) && v < 1000)
            v = v * 10 + (*s++ - '0');
        *out = v;
        *p = s;
        return 0;
    }
    for (int i = 0; f->names && f->names[i]; i++) {
        if (strncasecmp(s, f->names[i], 3) == 0) {
            *out = f->lo + i;
            *p = s + 3;
            return 0;
        }
    }
    return -1;
}

static int parse_field(const char *text, const struct field *f, uint64_t *bits, bool *star,
                       struct sb_err *err)
{
    *bits = 0;
    *star = strcmp(text, "*") == 0 || strcmp(text, "?") == 0;
    const char *p = text;
    for (;;) {
        int lo = f->lo, hi = f->hi, step = 1;
        if (*p == '*' || *p == '?') {
            p++;
        } else {
            if (value(&p, f, &lo))
                return sb_err_set(err, SB_EINVAL, "cron %s: cannot read '%s'", f->name, text);
            hi = lo;
            if (*p == '-') {
                p++;
                if (value(&p, f, &hi))
                    return sb_err_set(err, SB_EINVAL, "cron %s: cannot read '%s'", f->name, text);
            }
        }
        if (*p == '/') {
            p++;
            if (!isdigit((unsigned char)*p))
                return sb_err_set(err, SB_EINVAL, "cron %s: bad step in '%s'", f->name, text);
            step = 0;
            while (isdigit((unsigned char)*p) && step < 1000)
                step = step * 10 + (*p++ - '0');
            if (hi == lo && text[0] != '*' && strchr(text, '-') == NULL)
                hi = f->hi; /* "5/15": from 5 to the end */
        }
        if (lo < f->lo || hi > f->hi || lo > hi || step < 1)
            return sb_err_set(err, SB_EINVAL, "cron %s: '%s' is outside %d-%d", f->name, text,
                              f->lo, f->hi);
        for (int v = lo; v <= hi; v += step)
            *bits |= 1ull << v;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p != '\0')
            return sb_err_set(err, SB_EINVAL, "cron %s: unexpected '%c' in '%s'", f->name, *p,
                              text);
        return 0;
    }
}

void sbd_cron_free(struct sbd_cron *c)
{
    if (!c)
        return;
    sbd_tz_free(c->tz);
    free(c);
}

struct sbd_cron *sbd_cron_parse(const char *spec, struct sb_err *err)
{
    char buf[256];
    if (!spec || strlen(spec) >= sizeof buf) {
        sb_err_set(err, SB_EINVAL, "cron expression missing or too long");
        return NULL;
    }
    snprintf(buf, sizeof buf, "%s", spec);
    char *words[8];
    int n = 0;
    for (char *save = NULL, *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        if (n == 8) {
            sb_err_set(err, SB_EINVAL, "cron '%s': too many fields", spec);
            return NULL;
        }
        words[n++] = w;
    }
    struct sbd_cron *c = calloc(1, sizeof *c);
    if (!c) {
        sb_err_set(err, SB_ENOMEM, "out of memory");
        return NULL;
    }
    int i = 0;
    const char *zone = "UTC";
    if (n > 0 && (strncmp(words[0], "TZ=", 3) == 0 || strncmp(words[0], "CRON_TZ=", 8) == 0)) {
        zone = strchr(words[0], '=') + 1;
        i = 1;
    }
    if (!(c->tz = sbd_tz_load(zone, err)))
        goto fail;
    static const struct {
        const char *name, *expansion;
    } macros[] = {
        { "@yearly", "0 0 1 1 *" }, { "@annually", "0 0 1 1 *" }, { "@monthly", "0 0 1 * *" },
        { "@weekly", "0 0 * * 0" }, { "@daily", "0 0 * * *" },    { "@midnight", "0 0 * * *" },
        { "@hourly", "0 * * * *" },
    };
    char mbuf[32];
    if (n - i == 1 && words[i][0] == '@') {
        size_t k = 0;
        while (k < sizeof macros / sizeof macros[0] && strcmp(words[i], macros[k].name) != 0)
            k++;
        if (k == sizeof macros / sizeof macros[0]) {
            sb_err_set(err, SB_EINVAL, "cron '%s': unknown shorthand '%s'", spec, words[i]);
            goto fail;
        }
        snprintf(mbuf, sizeof mbuf, "%s", macros[k].expansion);
        n = i;
        for (char *save = NULL, *w = strtok_r(mbuf, " ", &save); w; w = strtok_r(NULL, " ", &save))
            words[n++] = w;
    }
    int fields = n - i;
    if (fields != 5 && fields != 6) {
        sb_err_set(err, SB_EINVAL,
                   "cron '%s': expected 5 fields (minute hour day month weekday), got %d", spec,
                   fields);
        goto fail;
    }
    bool unused;
    if (fields == 6) {
        if (parse_field(words[i++], &F_SEC, &c->sec, &unused, err))
            goto fail;
    } else {
        c->sec = 1; /* second 0 */
    }
    if (parse_field(words[i], &F_MIN, &c->min, &unused, err) ||
        parse_field(words[i + 1], &F_HOUR, &c->hour, &unused, err) ||
        parse_field(words[i + 2], &F_DOM, &c->dom, &c->dom_star, err) ||
        parse_field(words[i + 3], &F_MON, &c->month, &unused, err) ||
        parse_field(words[i + 4], &F_DOW, &c->dow, &c->dow_star, err))
        goto fail;
    if (c->dow & (1ull << 7))
        c->dow |= 1; /* 7 is Sunday too */
    return c;
fail:
    sbd_cron_free(c);
    return NULL;
}

static bool day_matches(const struct sbd_cron *c, int64_t days)
{
    int64_t y;
    int m, d;
    sb_civil_from_days(days, &y, &m, &d);
    if (!(c->month & (1ull << m)))
        return false;
    int wd = (int)(((days % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    bool dom = (c->dom >> d) & 1, dow = (c->dow >> wd) & 1;
    if (c->dom_star || c->dow_star)
        return dom && dow;
    return dom || dow;
}

int64_t sbd_cron_next(const struct sbd_cron *c, int64_t after_ms)
{
    int64_t after_s = after_ms >= 0 ? after_ms / 1000 : -((-after_ms + 999) / 1000);
    int64_t local = after_s + sbd_tz_offset(c->tz, after_s);
    int64_t day = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
    for (int64_t k = 0; k < 8 * 366; k++, day++) {
        if (!day_matches(c, day))
            continue;
        for (int h = 0; h < 24; h++) {
            if (!((c->hour >> h) & 1))
                continue;
            for (int mi = 0; mi < 60; mi++) {
                if (!((c->min >> mi) & 1))
                    continue;
                for (int s = 0; s < 60; s++) {
                    if (!((c->sec >> s) & 1))
                        continue;
                    int64_t u = sbd_tz_local_to_utc(c->tz, day * 86400 + h * 3600 + mi * 60 + s);
                    if (u > after_s)
                        return u * 1000;
                }
            }
        }
    }
    return -1;
}
