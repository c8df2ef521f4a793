/* tz.h - time zones from the system's zoneinfo files (TZif, as shipped by
 * Debian's tzdata), read directly: changing the process-wide TZ to convert
 * times is not safe while other threads run. Transitions are taken from the
 * file's 64-bit section; past its last transition (2037 for Debian's "fat"
 * files) the last offset is used. Loaded zones are immutable. */
#ifndef SBD_TZ_H
#define SBD_TZ_H

#include <stdint.h>

#include "common/err.h"

struct sbd_tz;

/* Loads a zone by name ("Europe/Paris", "UTC"). SB_ENOTFOUND / SB_EINVAL. */
struct sbd_tz *sbd_tz_load(const char *name, struct sb_err *err);
void sbd_tz_free(struct sbd_tz *tz);
/* UTC offset in seconds at the instant utc_s (seconds since the epoch). */
int32_t sbd_tz_offset(const struct sbd_tz *tz, int64_t utc_s);
/* The instant at which the local wall-clock time local_s (seconds since the
 * epoch as if local time were UTC) happens: the earlier one when it happens
 * twice (clocks go back), -1 when it does not happen (clocks go forward). */
int64_t sbd_tz_local_to_utc(const struct sbd_tz *tz, int64_t local_s);

#endif
