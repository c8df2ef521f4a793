/* ingest.h - storing events and starting the runs they trigger, shared by
 * the event API (api/events.c) and the lifecycle events a run's end emits
 * (engine/runop.c).
 *
 * A batch goes through three stages: prepare (match each event against the
 * registry: which functions it starts; any thread), apply (inside the
 * writer's transaction: store each event unless it is a duplicate, its runs
 * and their first queue items, and resolve open waits it satisfies), and
 * committed (after the commit: hand the new runs and the resolved waits to
 * the engine). Nothing reaches the engine before its commit. */
#ifndef SBD_INGEST_H
#define SBD_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/event_parse.h"
#include "common/err.h"
#include "waits.h"

struct sbd;
struct sb_store;

struct ingest_run {
    char run_id[SB_ULID_SIZE];
    char *function_id, *app_id;
    int64_t qid;
    bool skipped;                /* flow control decided it does not start (flow.c) */
    bool deferred;               /* held by a debounce or batch (defer.c): no run now */
    bool load_events;            /* a batch: the engine loads its events from the store */
    char event_id[SB_ULID_SIZE]; /* the run's event when not this one (a batch) */
    int64_t due_at;              /* its first call (earlier with priority.run) */
};

struct ingest_event {
    struct parsed_event ev; /* owned */
    bool duplicate;         /* set by apply */
    struct ingest_run *runs;
    size_t nruns;
};

struct reg_snap;

struct ingest_batch {
    struct ingest_event *events;
    size_t n;
    struct reg_snap *snap;         /* registry at prepare time (cancel rules) */
    char (*cancels)[SB_ULID_SIZE]; /* runs to cancel (cancelOn), set by apply */
    size_t ncancels;
    int64_t received_at;
    struct wait_resolution *resolved;
    size_t nresolved;
    size_t new_runs, duplicates; /* set by committed */
    bool emitted;                /* events sysbusd emitted itself (metrics) */
    int64_t defer_due;           /* earliest deferred start changed by apply (0: none) */
};

/* Takes ownership of evs[0..n) strings (not of the array). SB_ENOMEM. */
int sbd_ingest_init(struct ingest_batch *b, struct parsed_event *evs, size_t n,
                    int64_t received_at);
/* Decides which functions each event starts (registry snapshot). */
int sbd_ingest_prepare(struct sbd *sbd, struct ingest_batch *b);
/* Writer thread, inside the transaction. */
int sbd_ingest_apply(struct sb_store *st, struct sbd *sbd, struct ingest_batch *b,
                     struct sb_err *err);
/* Writer thread, inside a transaction: records cancel requests for the
 * running runs of function f (app and function filters, creation window)
 * whose trigger event satisfies expr (vars event, and async when given);
 * appends them to *ids. Used by cancelOn and bulk cancellations. */
struct sb_expr;
int sbd_cancel_matching(struct sb_store *st, const char *app_id, const char *function_id,
                        int64_t after, int64_t before, const struct sb_expr *expr,
                        const char *async_body, const char *reason, int64_t now,
                        char (**ids)[SB_ULID_SIZE], size_t *nids, struct sb_err *err);
/* After the commit: asks the engine to cancel them. */
void sbd_cancel_committed(struct sbd *sbd, char (*ids)[SB_ULID_SIZE], size_t n);
/* Writer thread, in a transaction: a new Running run and its first queue
 * item (stepId=step). */
int sbd_ingest_insert_run(struct sb_store *st, const char *run_id, const char *function_id,
                          const char *app_id, const char *event_id, int64_t created_at, int64_t qid,
                          int64_t due_at, struct sb_err *err);
/* Writer thread, after the commit. */
void sbd_ingest_committed(struct sbd *sbd, struct ingest_batch *b);
void sbd_ingest_free(struct ingest_batch *b);

#endif
