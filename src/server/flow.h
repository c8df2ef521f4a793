/* flow.h - flow control decided when a run would start, inside the
 * transaction that stores its event (ingest.c):
 *  - idempotency: at most one run per key value per 24 h;
 *  - rateLimit: at most N runs per key per period (sliding window); the rest
 *    are dropped;
 *  - singleton: one running run per key; "skip" drops the new one, "cancel"
 *    cancels the running one (a durable cancel request) and starts the new.
 * Keys are expressions over the event (`event`), prefixed with the function
 * id; without a key the function itself is the key. Dropped runs are never
 * created (counted in sysbus_runs_skipped_total). */
#ifndef SBD_FLOW_H
#define SBD_FLOW_H

#include <jansson.h>
#include <stdint.h>

#include "common/err.h"
#include "common/ulid.h"

struct sb_store;
struct fn;
struct sb_expr;

enum flow_verdict { FLOW_START = 0, FLOW_SKIP = 1 };

/* "<scope>\x1f<key value>": the value of expr over event (a string as is,
 * else its JSON; an expression that fails counts as null; no expr = empty).
 * Malloc'd; NULL when out of memory. */
char *sbd_flow_key(const char *scope, const struct sb_expr *expr, const json_t *event);

/* priority.run of f for event: seconds of advantage in -600..600 (0 when
 * none or when the expression does not give a number). */
int64_t sbd_flow_priority_s(const struct fn *f, const json_t *event);

/* Decides for a run of f triggered by event (parsed). *why names the rule
 * that skipped it. A singleton "cancel" appends the run to cancel to
 * *cancels. SB_E* on store errors, including a key or rate count that
 * cannot be read: flow control fails closed (the event's transaction fails
 * and its sender gets 503 and retries), it never starts a run it cannot
 * vouch for. */
int sbd_flow_admit(struct sb_store *st, const struct fn *f, const char *run_id, const json_t *event,
                   int64_t now, char (**cancels)[SB_ULID_SIZE], size_t *ncancels, const char **why,
                   struct sb_err *err);

#endif
