/* cancel.h - recording cancel requests for the running runs that match a
 * rule, inside a writer transaction: the cancelOn rules of an ingested
 * event (ingest.c) and bulk cancellations (api/cancellations.c). A request
 * is durable before anyone acts on it; the engine carries it out after the
 * commit (ingest's cancels notification, docs/internals/ingest.md), and a
 * crash in between is finished at the next start (cancel_requests_scan).
 *
 * Threads: writer thread, in its transaction; the store and the arguments
 * only. */
#ifndef SBD_CANCEL_H
#define SBD_CANCEL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/ulid.h"

struct sbd_store;
struct sbd_expr;

/* Which running runs to cancel. */
struct sbd_cancel_match {
    const char *app_id, *function_id; /* NULL: any */
    int64_t after, before;            /* created in [after, before) (0: unbounded) */
    int64_t timeout_ms;               /* > 0: only runs created less than this long before now */
    const struct sbd_expr *expr;      /* NULL, or an `if` over `event` (the run's trigger) */
    const json_t *async;              /* and `async` (the event that cancels), when given */
    const char *reason;               /* recorded with each request */
    int64_t now;
};

/* Records a cancel request for every run m matches that has none yet and
 * appends their ids to *ids (realloc'd, the caller's). 0, or the store's
 * error: the runs are read in full first, so a failed read records nothing
 * and the transaction fails. */
int sbd_cancel_matching_in_txn(struct sbd_store *st, const struct sbd_cancel_match *m,
                               char (**ids)[SB_ULID_SIZE], size_t *nids, struct sb_err *err);

#endif
