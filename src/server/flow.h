/* flow.h - flow control decided when a run would start, inside the
 * transaction that stores its event (ingest.c), as one decision per run:
 *  - priority.run: the first call is due up to 600 s earlier (or later);
 *  - debounce, batchEvents: the run is held in a deferred row and starts
 *    later (defer.h), or now when a batch is full;
 *  - idempotency: at most one run per key value per 24 h;
 *  - rateLimit: at most N runs per key per period (sliding window); the rest
 *    are dropped;
 *  - singleton: one running run per key; "skip" drops the new one, "cancel"
 *    cancels the running one (a durable cancel request) and starts the new.
 * In that order: a held run consults no later rule and writes no key.
 * Keys are expressions over the event (`event`), prefixed with the function
 * id; without a key the function itself is the key. Each key of a run is
 * computed once, from the event parsed once (sbd_event_json), and a function
 * without any of these rules costs neither. Dropped runs are never created
 * (counted in sysbus_runs_skipped_total). The engine's rules (concurrency,
 * throttle, timeouts) are decided before each call instead (engine/admit.c),
 * with keys made by sbd_flow_key too. */
#ifndef SBD_FLOW_H
#define SBD_FLOW_H

#include <jansson.h>
#include <stdint.h>

#include "common/err.h"
#include "common/ulid.h"

struct sbd_store;
struct sbd_fn;
struct sbd_expr;
struct sbd_event;

/* "<scope>\x1f<key value>": the value of expr over event (a string as is,
 * else its JSON; an expression that fails counts as null; no expr = empty;
 * a value over 256 bytes as "#sha256:<hex>" of it, so that every key fits a
 * store's index).
 * Malloc'd; NULL when out of memory. */
char *sbd_flow_key(const char *scope, const struct sbd_expr *expr, const json_t *event);

enum sbd_flow_verdict {
    FLOW_START = 0, /* the run starts now (its first call due at due_at) */
    FLOW_SKIP = 1,  /* dropped (why names the rule) */
    FLOW_HELD = 2,  /* held by a debounce or batch, due at held_until */
};

/* What flow control decided for one run start. */
struct sbd_flow_start {
    enum sbd_flow_verdict verdict;
    const char *why;    /* FLOW_SKIP: "idempotency", "rateLimit", "singleton" */
    int64_t due_at;     /* FLOW_START: its first call */
    int64_t held_until; /* FLOW_HELD: when the deferred row is due */
    /* FLOW_START of a full batch: the run's trigger is the batch's first
     * event (event_id) and its events are loaded from the store */
    bool batch_full;
    char event_id[SB_ULID_SIZE];
    /* a singleton "cancel" recorded a cancel request for this run ("" none) */
    char cancel[SB_ULID_SIZE];
};

/* Decides the start of run run_id of f (NULL: a function the registry does
 * not know, which starts as it is) triggered by ev, at now, writing what the
 * rules keep (deferred rows, keys, rate hits, a cancel request) in the
 * transaction. 0 with *out, or SB_E* on store errors, including a key or
 * rate count that cannot be read: flow control fails closed (the event's
 * transaction fails and its sender gets 503 and retries), it never starts a
 * run it cannot vouch for. */
int sbd_flow_start_in_txn(struct sbd_store *st, const struct sbd_fn *f, const char *run_id,
                          struct sbd_event *ev, int64_t now, struct sbd_flow_start *out,
                          struct sb_err *err);

#endif
