/* ulid.h - ULIDs: 48-bit millisecond time + 80 random bits, 26 chars of
 * Crockford base32. Generated ids are monotonic within a process: two ids made
 * in the same millisecond sort in creation order (the random part of the
 * second is the first's plus one), so ordering by id is ordering by creation. */
#ifndef SB_ULID_H
#define SB_ULID_H

#include <stdbool.h>
#include <stdint.h>

#define SB_ULID_LEN 26
#define SB_ULID_SIZE 27 /* with NUL */

/* New monotonic ULID for time ms (use sb_now_ms()). Thread-safe. */
void sb_ulid_new(int64_t ms, char out[SB_ULID_SIZE]);
/* ULID from explicit parts (deterministic; used for seeded event ids). */
void sb_ulid_from_parts(int64_t ms, const uint8_t entropy[10], char out[SB_ULID_SIZE]);
/* Checks syntax (26 Crockford chars, first char <= '7'); case-insensitive. */
bool sb_ulid_valid(const char *s);
/* Time part of a valid ULID, in ms. */
int64_t sb_ulid_time(const char *s);

#endif
