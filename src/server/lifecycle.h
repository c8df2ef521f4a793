/* lifecycle.h - the events sysbusd emits when a run ends, in the same
 * transaction as the end: `inngest/function.finished` always (with `result`
 * or `error`), plus `inngest/function.failed` for a failure (what triggers an
 * SDK's onFailure handler, `<id>-failure`) or `inngest/function.cancelled`
 * for a cancellation. Data: {function_id, run_id, event, events, result |
 * error}. Runs started by a lifecycle event emit none, so a function that
 * listens to them cannot trigger itself forever. */
#ifndef SBD_LIFECYCLE_H
#define SBD_LIFECYCLE_H

#include "common/err.h"
#include "ingest.h"

struct sbd_store;

/* Inside the writer's transaction that ends run_id with status: stores the
 * lifecycle events and starts what they trigger (through in), filling
 * *batch (to be passed to sbd_ingest_committed after the commit, then
 * freed). */
int sbd_lifecycle_emit_in_txn(struct sbd_store *st, struct sbd_ingest *in, const char *run_id,
                              int status, const char *output, const char *error, int64_t now,
                              struct sbd_ingest_batch *batch, struct sb_err *err);

#endif
