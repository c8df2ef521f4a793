/* tz.h - time zones from the system's zoneinfo files (TZif, as shipped by
 * Debian's tzdata), read directly: changing the process-wide TZ to convert
 * times is not safe while other threads run. Transitions are taken from the
 * file's 64-bit section; past its last transition (2037 for Debian's "fat"
 * files) the last offset is used. Loaded zones are immutable. */
#ifndef SBD_TZ_H
#define SBD_TZ_H

#include <stdint.h>

#include "common/err.h"

struct sb_tz;

/* Loads a zone by name ("Europe/Paris", "UTC"). SB_ENOTFOUND / SB_EINVAL. */
struct sb_tz *sb_tz_load(const char *name, struct sb_err *err);
void sb_tz_free(struct sb_tz *tz);
/* UTC offset in seconds at the instant utc_s (seconds since the epoch). */
int32_t sb_tz_offset(const struct sb_tz *tz, int64_t utc_s);
/* The instant at which the local wall-clock time local_s (seconds since the
 * epoch as if local time were UTC) happens: the earlier one when it happens
 * twice (clocks go back), -1 when it does not happen (clocks go forward). */
int64_t sb_tz_local_to_utc(const struct sb_tz *tz, int64_t local_s);

#endif
