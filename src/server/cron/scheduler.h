/* scheduler.h - cron triggers. Each cron trigger of a registered function
 * has a row (crons table) with the time it fires next. A thread sleeps until
 * the earliest; firing is one writer transaction that checks the row is
 * still due, starts the run (event inngest/scheduled.timer, data {cron})
 * and moves next_at past now. So a tick fires exactly once, even across
 * crashes, and after a downtime the latest missed tick fires once (not one
 * run per missed tick). The same thread fires deferred starts (debounce and
 * batchEvents rows, defer.h) when they come due. */
#ifndef SBD_SCHEDULER_H
#define SBD_SCHEDULER_H

#include <stdint.h>

#include "common/err.h"

struct sbd;
struct sbd_store;
struct sbd_scheduler;
struct sbd_fn;

int sbd_scheduler_start(struct sbd *sbd, struct sbd_scheduler **out, struct sb_err *err);
/* Stops the thread; s stays valid (a later kick does nothing) until
 * sbd_scheduler_free, which comes after the writer has stopped, since the
 * writer's commits kick it (daemon.c). */
void sbd_scheduler_stop(struct sbd_scheduler *s);
void sbd_scheduler_free(struct sbd_scheduler *s);
/* Re-reads the cron and deferred rows (after a change to them): an app's
 * sync, and ingest's deferred_changed notification (daemon.c). Any thread;
 * it only sets a flag and signals. */
void sbd_scheduler_kick(struct sbd_scheduler *s);
/* In the registration's transaction: the function's cron rows follow its
 * triggers (an unchanged expression keeps its next fire time). */
int sbd_scheduler_sync_function_in_txn(struct sbd_store *st, const struct sbd_fn *f, int64_t now,
                                       struct sb_err *err);

#endif
