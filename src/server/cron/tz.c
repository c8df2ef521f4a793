/* tz.c - TZif reader (see tz.h). Format: RFC 8536. */
#include "tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZONEINFO "/usr/share/zoneinfo"
#define MAX_TZ_FILE (1 << 20)

struct sbd_tz {
    size_t n;          /* transitions */
    int64_t *at;       /* transition instants */
    int32_t *off;      /* offset in effect from at[i] */
    int32_t first_off; /* before the first transition */
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

void sbd_tz_free(struct sbd_tz *tz)
{
    if (!tz)
        return;
    free(tz->at);
    free(tz->off);
    free(tz);
}

static struct sbd_tz *parse(const uint8_t *d, size_t len, struct sb_err *err)
{
    if (len < 44 || memcmp(d, "TZif", 4) != 0) {
        sb_err_set(err, SB_EINVAL, "not a TZif file");
        return NULL;
    }
    /* counts: isut, isstd, leap, time, type, char */
    uint32_t c[6];
    for (int i = 0; i < 6; i++)
        c[i] = be32(d + 20 + 4 * i);
    size_t tsz = 4, lsz = 8;
    const uint8_t *p = d + 44;
    if (d[4] >= '2') { /* skip the 32-bit block, use the 64-bit one */
        size_t v1 = (size_t)c[3] * 5 + (size_t)c[4] * 6 + c[5] + (size_t)c[2] * 8 + c[1] + c[0];
        if (44 + v1 + 44 > len) {
            sb_err_set(err, SB_EINVAL, "truncated TZif file");
            return NULL;
        }
        p = d + 44 + v1;
        if (memcmp(p, "TZif", 4) != 0) {
            sb_err_set(err, SB_EINVAL, "bad TZif v2 header");
            return NULL;
        }
        for (int i = 0; i < 6; i++)
            c[i] = be32(p + 20 + 4 * i);
        p += 44;
        tsz = 8;
        lsz = 12;
    }
    size_t need = (size_t)c[3] * tsz + c[3] + (size_t)c[4] * 6 + c[5] + (size_t)c[2] * lsz;
    if (c[4] == 0 || c[4] > 256 || c[3] > 100000 || (size_t)(p - d) + need > len) {
        sb_err_set(err, SB_EINVAL, "truncated or implausible TZif file");
        return NULL;
    }
    const uint8_t *times = p, *idx = p + (size_t)c[3] * tsz, *types = idx + c[3];
    struct sbd_tz *tz = calloc(1, sizeof *tz);
    if (!tz || (c[3] && (!(tz->at = calloc(c[3], 8)) || !(tz->off = calloc(c[3], 4))))) {
        sbd_tz_free(tz);
        sb_err_set(err, SB_ENOMEM, "out of memory");
        return NULL;
    }
    tz->n = c[3];
    for (size_t i = 0; i < c[3]; i++) {
        tz->at[i] = tsz == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
        uint8_t t = idx[i];
        if (t >= c[4]) {
            sbd_tz_free(tz);
            sb_err_set(err, SB_EINVAL, "TZif transition to a missing type");
            return NULL;
        }
        tz->off[i] = (int32_t)be32(types + 6 * t);
    }
    /* before the first transition: the first standard-time type */
    tz->first_off = (int32_t)be32(types);
    for (uint32_t t = 0; t < c[4]; t++) {
        if (types[6 * t + 4] == 0) {
            tz->first_off = (int32_t)be32(types + 6 * t);
            break;
        }
    }
    return tz;
}

struct sbd_tz *sbd_tz_load(const char *name, struct sb_err *err)
{
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0 || strcmp(name, "GMT") == 0) {
        struct sbd_tz *tz = calloc(1, sizeof *tz);
        if (!tz)
            sb_err_set(err, SB_ENOMEM, "out of memory");
        return tz;
    }
    /* a zone name: letters, digits, '/', '_', '-', '+'; no "..", no leading '/' */
    if (!*name || name[0] == '/' || strstr(name, "..") || strlen(name) > 64 ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_-+") !=
            strlen(name)) {
        sb_err_set(err, SB_EINVAL, "'%s' is not a time zone name", name);
        return NULL;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/%s", ZONEINFO, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        sb_err_set(err, SB_ENOTFOUND, "unknown time zone '%s' (no %s; is tzdata installed?)", name,
                   path);
        return NULL;
    }
    uint8_t *buf = malloc(MAX_TZ_FILE);
    size_t len = buf ? fread(buf, 1, MAX_TZ_FILE, f) : 0;
    fclose(f);
    struct sbd_tz *tz = buf ? parse(buf, len, err) : NULL;
    if (!buf)
        sb_err_set(err, SB_ENOMEM, "out of memory");
    free(buf);
    return tz;
}

int32_t sbd_tz_offset(const struct sbd_tz *tz, int64_t utc_s)
{
    if (tz->n == 0 || utc_s < tz->at[0])
        return tz->first_off;
    size_t lo = 0, hi = tz->n; /* last transition <= utc_s */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (tz->at[mid] <= utc_s)
            lo = mid;
        else
            hi = mid;
    }
    return tz->off[lo];
}

int64_t sbd_tz_local_to_utc(const struct sbd_tz *tz, int64_t local_s)
{
    /* the offsets in effect around that time; a candidate instant is valid
     * when the offset at that instant is the one it was computed with */
    int32_t offs[3] = { sbd_tz_offset(tz, local_s - 86400), sbd_tz_offset(tz, local_s),
                        sbd_tz_offset(tz, local_s + 86400) };
    int64_t best = -1;
    for (int i = 0; i < 3; i++) {
        int64_t u = local_s - offs[i];
        if (sbd_tz_offset(tz, u) == offs[i] && (best < 0 || u < best))
            best = u;
    }
    return best;
}
