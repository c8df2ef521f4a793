/* backoff.h - retry delays.
 *
 * Function retries follow Inngest's table (15 s, 30 s, 1 m, 2 m, 5 m, 10 m,
 * 20 m, 40 m, 1 h, 2 h for the default base of 15 s), scaled by the configured
 * base, plus a jitter of up to 2x the base (0-30 s by default). Transport
 * failures (the worker could not be reached) use their own short exponential
 * backoff, capped, so a restarting worker is found again within a second or
 * two. Retry-After from a worker overrides the table, clamped to 1 s .. 24 h. */
#ifndef SBD_BACKOFF_H
#define SBD_BACKOFF_H

#include <stdint.h>

/* Delay before the retry that follows failed attempt `attempt` (0-based). */
int64_t sbd_backoff_retry_ms(int attempt, int64_t base_ms, int jitter);
/* Delay before transport retry number n (0-based), capped at max_ms. */
int64_t sbd_backoff_transport_ms(int n, int64_t max_ms);
/* Parses a Retry-After value relative to now_ms: all digits (any number of
 * them) are seconds; anything else must be an HTTP date or an ISO 8601 time.
 * Surrounding spaces and tabs are ignored. Returns the delay clamped to
 * 1 s .. 24 h (a date in the past gives 1 s), or -1 when the value is empty
 * or unparseable (e.g. "-5", "1.5", "soon"): the caller then uses its own
 * backoff. */
int64_t sbd_retry_after_ms(const char *value, int64_t now_ms);

#endif
