/* cron.h - cron expressions of function triggers.
 *
 *   "0-59/15 9-17 * * MON-FRI"       every 15 min in office hours
 *   "TZ=Europe/Paris 0 9 1,15 * *"   09:00 Paris time, 1st and 15th
 *   "@daily", "@hourly", "@weekly", "@monthly", "@yearly"
 *   "0-59/5 * * * * *"               6 fields: a leading seconds field
 *
 * Fields: minute hour day-of-month month day-of-week, each "*", a number, a
 * range a-b, a step (a star or a range, then "/n"), or a comma list of those;
 * months and
 * weekdays also by name (JAN, MON); weekday 7 is Sunday. As in Vixie cron,
 * when both day fields are restricted a day matches either. A leading
 * seconds field is an extension of sysbus (Inngest has minutes only). The
 * time zone (TZ= or CRON_TZ= prefix) defaults to UTC; local times that do
 * not exist (clocks going forward) are skipped, repeated ones fire once. */
#ifndef SBD_CRON_H
#define SBD_CRON_H

#include <stdint.h>

#include "common/err.h"

struct sbd_cron;

struct sbd_cron *sbd_cron_parse(const char *spec, struct sb_err *err);
void sbd_cron_free(struct sbd_cron *c);
/* The first fire time strictly after after_ms (Unix ms), or -1 when none
 * exists within eight years (e.g. "0 0 31 2 *"). */
int64_t sbd_cron_next(const struct sbd_cron *c, int64_t after_ms);

#endif
