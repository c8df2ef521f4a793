/* defer.h - deferred run starts: debounce and batchEvents.
 *
 * An event for a function with debounce or batchEvents does not start a run
 * at ingest. In the ingest transaction it updates the function's open
 * `deferred` row for its key (creating it when there is none): a debounce
 * keeps the latest event and moves due_at to now + period (never past
 * first_at + timeout); a batch appends the event (run_events) and is due at
 * first_at + timeout. The row's id keys a batch's run_events until its run
 * starts, under an id of its own (so the run is created when it starts).
 *
 * The run starts in the transaction that deletes the row: at ingest when a
 * batch reaches maxSize, else when the row comes due (the scheduler thread
 * fires it: sbd_defer_fire_new). A batch run's call carries all its events.
 * Rows survive restarts; a due row whose function is gone is dropped. */
#ifndef SBD_DEFER_H
#define SBD_DEFER_H

#include <jansson.h>
#include <stdint.h>

#include "common/err.h"

struct sbd;
struct sb_store;
struct fn;
struct ingest_run;
struct wop;

enum defer_outcome {
    DEFER_NONE,  /* not deferred (batchEvents.if was false): start as usual */
    DEFER_HELD,  /* held in a deferred row: no run now */
    DEFER_START, /* a full batch: start ir now (ir->event_id = the first event) */
};

/* Writer thread, in the ingest transaction: event (parsed; id event_id) for
 * f, whose prepared run is ir. *due_at: when the held row is due. */
int sbd_defer_event(struct sb_store *st, const struct fn *f, struct ingest_run *ir,
                    const char *event_id, const json_t *event, int64_t now,
                    enum defer_outcome *outcome, int64_t *due_at, struct sb_err *err);

/* A writer op that starts the run of deferred row id if it is still due;
 * done(ctx) is called after it committed or failed. */
struct wop *sbd_defer_fire_new(struct sbd *sbd, const char *id, void (*done)(void *ctx), void *ctx);

#endif
