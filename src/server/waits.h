/* waits.h - resolving open waits (step.waitForEvent, step.invoke) inside a
 * writer transaction: memoize the step, delete the wait and its timeout
 * item, add the run's discovery item when nothing else is left to do.
 *
 * Three transactions resolve a wait: the ingest of a matching event
 * (sbd_waits_on_event_in_txn, from ingest.c), the registration of a wait
 * whose event was stored while the call was being answered, and the end of
 * an invoked run (both in the engine: engine/wait.c, engine/invoke.c). Doing
 * it in the event's transaction orders a wait and an event by the
 * transactions that wrote them: a wait registered before the event sees it
 * here, one registered after scans for it when it registers. The engine's
 * memory follows after the commit, from the resolutions (the ingest's
 * waits_resolved notification, docs/internals/ingest.md).
 *
 * Threads: every function here runs on the writer thread, in its
 * transaction, and touches the store and its arguments only. */
#ifndef SBD_WAITS_H
#define SBD_WAITS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/ulid.h"

struct sbd_store;
struct sbd_event;
struct sbd_qids;

/* A wait resolved in the store, for the engine to follow. */
struct sbd_wait_resolution {
    char run_id[SB_ULID_SIZE];
    int64_t item_id;       /* the wait's timeout item (deleted) */
    char hash[48];         /* the waitForEvent step */
    char *memo;            /* the matching event (canonical JSON, owned) */
    int64_t discovery_qid; /* discovery item added in the transaction, or 0 */
    int flags;             /* the wait item's flags (parallel mode) */
};

/* Whether the event `candidate` (parsed) satisfies a wait's `if` (expr
 * NULL: every event of the name does). In the expression `event` is the
 * waiting run's trigger event (trigger_body, canonical JSON) and `async`
 * the candidate. An expression that does not compile matches nothing. */
bool sbd_wait_matches(const char *expr, const char *trigger_body, const json_t *candidate);

/* Memoizes `memo` for the waiting step `hash` of run_id at stack position
 * seq (op_name: "WaitForEvent", "InvokeFunction"), deletes the wait and its
 * timeout item item_id, and adds the discovery item discovery_qid (0: none;
 * flags: the wait item's, for parallel mode). 0 or the store's error. */
int sbd_wait_resolve_in_txn(struct sbd_store *st, const char *run_id, int64_t item_id,
                            const char *hash, const char *op_name, const char *memo, int64_t seq,
                            int64_t discovery_qid, int flags, int64_t now, struct sb_err *err);

/* Resolves the open waits that ev (being stored in this transaction)
 * satisfies; appends one resolution per wait to *res (realloc'd; the
 * caller's, with sbd_wait_resolutions_free). Discovery items take their ids
 * from qids. 0, or an error that fails the event's transaction (a wait that
 * could not be read must not be passed over). */
int sbd_waits_on_event_in_txn(struct sbd_store *st, struct sbd_qids *qids, struct sbd_event *ev,
                              struct sbd_wait_resolution **res, size_t *nres, struct sb_err *err);

void sbd_wait_resolutions_free(struct sbd_wait_resolution *res, size_t n);

#endif
