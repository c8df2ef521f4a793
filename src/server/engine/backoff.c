/* backoff.c - retry delay tables (see backoff.h). */
#include "backoff.h"
#include "common/clock.h"
#include "common/crypto.h"

#include <stdlib.h>
#include <string.h>

/* Inngest's schedule divided by its 15 s base. */
static const int64_t retry_multiplier[] = { 1, 2, 4, 8, 20, 40, 80, 160, 240, 480 };
#define NMULT (int)(sizeof retry_multiplier / sizeof retry_multiplier[0])

int64_t sb_backoff_retry_ms(int attempt, int64_t base_ms, int jitter)
{
    if (attempt < 0)
        attempt = 0;
    int64_t d = base_ms * retry_multiplier[attempt < NMULT ? attempt : NMULT - 1];
    if (jitter && base_ms > 0)
        d += (int64_t)sb_random_below((uint64_t)(2 * base_ms));
    return d;
}

int64_t sb_backoff_transport_ms(int n, int64_t max_ms)
{
    int64_t d = 50;
    for (int i = 0; i < n && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    /* +-20% jitter so many runs waiting for one worker do not retry in step */
    int64_t spread = d / 5;
    if (spread > 0)
        d += (int64_t)sb_random_below((uint64_t)(2 * spread)) - spread;
    return d > 1 ? d : 1;
}

int64_t sb_retry_after_ms(const char *value, int64_t now_ms)
{
    if (!value || !*value)
        return -1;
    int64_t ms;
    if (strlen(value) <= 7) {
        char *end;
        long long s = strtoll(value, &end, 10);
        if (*end != '\0' || end == value)
            return -1;
        ms = s * 1000;
    } else {
        int64_t at;
        if (sb_time_parse_http(value, &at) != 0 && sb_time_parse_iso(value, &at) != 0)
            return -1;
        ms = at - now_ms;
    }
    if (ms < 1000)
        ms = 1000;
    if (ms > 86400000)
        ms = 86400000;
    return ms;
}
