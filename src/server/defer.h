/* defer.h - deferred run starts: debounce and batchEvents, their rows.
 *
 * An event for a function with debounce or batchEvents does not start a run
 * at ingest (flow control decides so: flow.c). In the ingest transaction it
 * updates the function's open `deferred` row for its key (creating it when
 * there is none): a debounce keeps the latest event and moves due_at to now
 * + period (never past first_at + timeout); a batch appends the event
 * (run_events) and is due at first_at + timeout. The row's id keys a batch's
 * run_events until its run starts, under an id of its own (so the run is
 * created when it starts).
 *
 * The run starts in the transaction that deletes the row: at ingest when a
 * batch reaches maxSize, else when the row comes due (the scheduler thread
 * fires it through ingest: sbd_ingest_fire_deferred_new, which takes the row
 * with sbd_defer_take_in_txn). A batch run's call carries all its events.
 * Rows survive restarts; a due row whose function is gone is dropped.
 *
 * Threads: every function here runs on the writer thread, in its
 * transaction; they touch the store only. */
#ifndef SBD_DEFER_H
#define SBD_DEFER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/ulid.h"

struct sbd_store;
struct sbd_fn;
struct sbd_deferred_rec;

/* Debounce: event event_id of f, whose run would have been run_id, under
 * the debounce key `key` (flow.c makes it), is now the one the debounce
 * keeps. *due_at: when the row is due. */
int sbd_defer_debounce_in_txn(struct sbd_store *st, const struct sbd_fn *f, const char *run_id,
                              const char *event_id, const char *key, int64_t now, int64_t *due_at,
                              struct sb_err *err);
/* batchEvents: event event_id joins the batch of f for `key`. When that
 * fills it, *full is true: the row is gone, its events belong to run_id,
 * whose trigger is the batch's first event (first_event_id), and the run
 * starts now. Otherwise *due_at: when the batch is due. */
int sbd_defer_batch_in_txn(struct sbd_store *st, const struct sbd_fn *f, const char *run_id,
                           const char *event_id, const char *key, int64_t now, bool *full,
                           int64_t *due_at, char first_event_id[SB_ULID_SIZE], struct sb_err *err);
/* A due row, taken: 0 with *taken and, when taken, *d (the caller frees it
 * with sbd_deferred_rec_free) and the row deleted. Not taken when the row is
 * gone (a full batch started it) or no longer due (a debounce moved it). */
int sbd_defer_take_in_txn(struct sbd_store *st, const char *id, int64_t now, bool *taken,
                          struct sbd_deferred_rec *d, struct sb_err *err);

#endif
