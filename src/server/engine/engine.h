/* engine.h - the run engine: owns every unfinished run and drives it.
 *
 * One thread. It keeps the queue (each unfinished run's due calls) in a
 * min-heap by due time, calls workers through curl multi (many calls in
 * flight, keep-alive), turns each response into the run's next state, has
 * that state committed by the writer, and only after the commit dispatches
 * the next call, at once, without any polling tick. Other threads talk to it
 * through its inbox (new runs after an ingest commit, cancellations), which
 * wakes the loop. Mechanism: docs/internals/engine.md. */
#ifndef SBD_ENGINE_H
#define SBD_ENGINE_H

#include <jansson.h>
#include <stdint.h>

#include "common/err.h"
#include "common/ulid.h"

struct sbd;
struct sbd_engine;
struct sbd_new_run;         /* ingest.h */
struct sbd_wait_resolution; /* waits.h */

/* Loads the queue from the store and starts the thread; *out is set before
 * the thread runs (what the thread causes may already reach it). */
int sbd_engine_start(struct sbd *sbd, struct sbd_engine **out, struct sb_err *err);
/* Stops the thread (calls in flight are abandoned; they are in the store).
 * Commits still in the writer are then dropped by sbd_engine_free. */
void sbd_engine_stop(struct sbd_engine *e);
void sbd_engine_free(struct sbd_engine *e);

/* Allocates a queue item id (thread-safe, unique for the store's life):
 * the process's one counter (qid.h). */
int64_t sbd_engine_alloc_qid(struct sbd_engine *e);
/* Runs created by a commit (ingest's runs_created notification, daemon.c):
 * takes ownership of runs[0..n) contents (not of the array). */
void sbd_engine_add_runs(struct sbd_engine *e, struct sbd_new_run *runs, size_t n);
/* Waits resolved in the store by a commit (ingest's waits_resolved
 * notification, and the end of an invoked run): the runs' memory follows.
 * Takes the array and its strings. */
void sbd_engine_waits_resolved(struct sbd_engine *e, struct sbd_wait_resolution *res, size_t n);

/* Cancels a running run. cb(ctx, rc, status) (may be NULL) runs on some
 * thread once the cancellation is committed: rc 0 ok; SB_ENOTFOUND unknown
 * run; SB_ECONFLICT the run had already ended (status tells how). */
void sbd_engine_cancel(struct sbd_engine *e, const char *run_id,
                       void (*cb)(void *ctx, int rc, int status), void *ctx);

/* A v4 SDK checkpoint (POST /v1/checkpoint/{runId}/async): steps completed
 * inside the call qi_id, which is still in flight. The engine memoizes them
 * and answers req (200 after the commit; 409 when the call is not the run's
 * current one). Takes steps. */
struct sb_req;
/* What the engine holds of a run in memory, answered from the engine thread
 * (or at once when the engine has stopped): cb(ctx, desc) with desc (new
 * ref) = {in_call, parked_on?: {kind, scope, value}}, or NULL when the run
 * is not in the engine's memory. */
void sbd_engine_describe(struct sbd_engine *e, const char *run_id,
                         void (*cb)(void *ctx, json_t *desc), void *ctx);

void sbd_engine_checkpoint(struct sbd_engine *e, const char *run_id, int64_t qi_id, json_t *steps,
                           struct sb_req *req);

struct sbd_engine_stats {
    int64_t queue_items, inflight, runs;
};
void sbd_engine_stats(struct sbd_engine *e, struct sbd_engine_stats *out);

#endif
