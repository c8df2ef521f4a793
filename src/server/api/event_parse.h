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
#include "server/event.h"

#define SBD_MAX_EVENTS 5000

/* Returns 0 with *out (malloc'd, *n events: free with sbd_events_free), or
 * a negative code with err->msg saying what is wrong and *rule naming the
 * rule the body broke as the API's stable error code:
 *  - SB_EINVAL: the body is not a valid event or array of events (rule
 *    "EMPTY_BODY", "INVALID_JSON", "TOO_DEEP", "MISSING_NAME",
 *    "INVALID_EVENT");
 *  - SB_ETOOBIG: more than SBD_MAX_EVENTS events ("TOO_MANY_EVENTS");
 *  - SB_ENOMEM: out of memory ("INTERNAL").
 * Mapping a code to an HTTP status is the API handler's (events.c). */
int sbd_events_parse(const char *body, size_t len, const char *seed_header, int64_t now,
                     struct sbd_event **out, size_t *n, const char **rule, struct sb_err *err);

#endif
