/* event_parse.h - validation and normalization of an event API body
 * (POST /e/{key}), separate from the handler so that it can be fuzzed.
 *
 * Input: one event object or an array of at most 5000, through the JSON
 * envelope (json.h: at most SB_JSON_MAX_DEPTH levels). Each event needs a
 * `name` (1..512 bytes, no control characters); `data` and `user` must be
 * objects when present, `id` a string of at most 512 bytes without control
 * characters ("" = none), `ts` an integer of ms from 0 to 9999-12-31, `v` a
 * string of at most 128 bytes. Whatever passes can be re-encoded in every
 * later shape (lifecycle events, call requests, REST pages). Output: for each event its
 * ULID (seeded from x-inngest-event-id-seed when valid, as the Inngest
 * server derives them: index i+1 added to entropy bytes 6..9), and its
 * normalized canonical JSON {data, id, name, ts, user, v?} where `id` is the
 * user's id or else the ULID, and `ts` defaults to the receive time. */
#ifndef SBD_EVENT_PARSE_H
#define SBD_EVENT_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/ulid.h"

#define SBD_MAX_EVENTS 5000

struct parsed_event {
    char id[SB_ULID_SIZE];
    char *name;
    char *body;       /* normalized, canonical JSON */
    char *dedupe_key; /* the user's `id`, or NULL */
    int64_t ts;
};

/* Returns 0 with *out (malloc'd, *n events), or an HTTP status (400, 413,
 * 500) with *code (a stable string such as "MISSING_NAME") and err->msg. */
int sbd_events_parse(const char *body, size_t len, const char *seed_header, int64_t now,
                     struct parsed_event **out, size_t *n, const char **code, struct sb_err *err);
void sbd_events_free(struct parsed_event *evs, size_t n);

#endif
