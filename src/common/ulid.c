/* ulid.c - ULID generation and parsing (see ulid.h). The monotonic state (last
 * time and random part) is guarded by one mutex. */
#include "ulid.h"
#include "crypto.h"

#include <pthread.h>
#include <string.h>

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static pthread_mutex_t ulid_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_ms = -1;
static uint8_t last_rand[10];

void sb_ulid_from_parts(int64_t ms, const uint8_t r[10], char out[SB_ULID_SIZE])
{
    uint64_t t = (uint64_t)ms & 0xFFFFFFFFFFFFull;
    for (int i = 9; i >= 0; i--) {
        out[i] = crockford[t & 31];
        t >>= 5;
    }
    /* 80 bits of entropy -> 16 chars, 5 bits each, big-endian. */
    int bit = 0;
    for (int i = 0; i < 16; i++) {
        int v = 0;
        for (int j = 0; j < 5; j++, bit++)
            v = (v << 1) | ((r[bit / 8] >> (7 - bit % 8)) & 1);
        out[10 + i] = crockford[v];
    }
    out[26] = '\0';
}

void sb_ulid_new(int64_t ms, char out[SB_ULID_SIZE])
{
    uint8_t r[10];
    pthread_mutex_lock(&ulid_lock);
    if (ms <= last_ms) {
        /* Same (or earlier: the clock stepped back) millisecond: keep time,
         * increment the random part so the order is kept. */
        ms = last_ms;
        int i = 9;
        while (i >= 0 && ++last_rand[i] == 0)
            i--;
        if (i < 0) /* 2^80 ids in one ms: move to the next millisecond */
            last_ms = ++ms;
    } else {
        last_ms = ms;
        sb_random_fast(last_rand, sizeof last_rand);
        last_rand[0] &= 0x7F; /* room to increment without overflow */
    }
    memcpy(r, last_rand, sizeof r);
    pthread_mutex_unlock(&ulid_lock);
    sb_ulid_from_parts(ms, r, out);
}

static int crockford_val(char c)
{
    if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    const char *p = strchr(crockford, c);
    return (c && p) ? (int)(p - crockford) : -1;
}

bool sb_ulid_valid(const char *s)
{
    if (!s || strlen(s) != SB_ULID_LEN)
        return false;
    if (crockford_val(s[0]) > 7)
        return false;
    for (int i = 0; i < SB_ULID_LEN; i++)
        if (crockford_val(s[i]) < 0)
            return false;
    return true;
}

int64_t sb_ulid_time(const char *s)
{
    int64_t t = 0;
    for (int i = 0; i < 10; i++)
        t = (t << 5) | crockford_val(s[i]);
    return t;
}
