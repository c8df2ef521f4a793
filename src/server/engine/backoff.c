/* backoff.c - retry delay tables (see backoff.h). No state: any thread. */
#include "backoff.h"
#include "common/clock.h"
#include "common/crypto.h"

#include <stdlib.h>
#include <string.h>

/* Inngest's schedule divided by its 15 s base. */
static const int64_t retry_multiplier[] = { 1, 2, 4, 8, 20, 40, 80, 160, 240, 480 };
#define NMULT (int)(sizeof retry_multiplier / sizeof retry_multiplier[0])

int64_t sbd_backoff_retry_ms(int attempt, int64_t base_ms, int jitter)
{
    if (attempt < 0)
        attempt = 0;
    int64_t d = base_ms * retry_multiplier[attempt < NMULT ? attempt : NMULT - 1];
    if (jitter && base_ms > 0)
        d += (int64_t)sb_random_below((uint64_t)(2 * base_ms));
    return d;
}

int64_t sbd_backoff_transport_ms(int n, int64_t max_ms)
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

#define RETRY_AFTER_MIN_MS 1000LL
#define RETRY_AFTER_MAX_MS 86400000LL

/* Seconds of an all-digit value, saturating: once the running value passes
 * the 24 h cap, more digits cannot bring it back, so they are not added
 * (no overflow however long the value is). */
static int64_t digits_ms(const char *s, size_t n)
{
    int64_t secs = 0;
    for (size_t i = 0; i < n && secs <= RETRY_AFTER_MAX_MS / 1000; i++)
        secs = secs * 10 + (s[i] - '0');
    return secs > RETRY_AFTER_MAX_MS / 1000 ? RETRY_AFTER_MAX_MS : secs * 1000;
}

int64_t sbd_retry_after_ms(const char *value, int64_t now_ms)
{
    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strlen(value);
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    if (n == 0)
        return -1;
    size_t ndigits = 0;
    while (ndigits < n && value[ndigits] >= '0' && value[ndigits] <= '9')
        ndigits++;
    int64_t ms;
    if (ndigits == n) {
        ms = digits_ms(value, n);
    } else {
        char date[64];
        int64_t at;
        if (n >= sizeof date)
            return -1;
        memcpy(date, value, n);
        date[n] = '\0';
        if (sb_time_parse_http(date, &at) != 0 && sb_time_parse_iso(date, &at) != 0)
            return -1;
        ms = at - now_ms;
    }
    if (ms < RETRY_AFTER_MIN_MS)
        ms = RETRY_AFTER_MIN_MS;
    if (ms > RETRY_AFTER_MAX_MS)
        ms = RETRY_AFTER_MAX_MS;
    return ms;
}
