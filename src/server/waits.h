/* waits.h - resolving open step.waitForEvent waits when a matching event
 * arrives (engine/wait.c). Called by event ingest inside the writer's
 * transaction that stores the event, so that a wait and an event are
 * ordered by the transactions that wrote them: a wait registered before the
 * event sees it here, one registered after scans for it when it registers. */
#ifndef SBD_WAITS_H
#define SBD_WAITS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/ulid.h"

struct sb_store;
struct sb_engine;

struct wait_resolution {
    char run_id[SB_ULID_SIZE];
    int64_t item_id;       /* the wait's timeout item (deleted) */
    char hash[48];         /* the waitForEvent step */
    char *memo;            /* the matching event (canonical JSON, owned) */
    int64_t discovery_qid; /* discovery item added in the transaction, or 0 */
    int flags;             /* the wait item's flags (parallel mode) */
};

/* In the writer's transaction: resolves the open waits that the event
 * (name, canonical body) satisfies; appends to *res (realloc'd). */
int sb_waits_on_event(struct sb_store *st, struct sb_engine *e, const char *name, const char *body,
                      struct wait_resolution **res, size_t *nres, struct sb_err *err);
/* After the commit: hands the resolutions to the engine (takes the array
 * and its strings). */
void sb_engine_waits_resolved(struct sb_engine *e, struct wait_resolution *res, size_t n);
void sb_wait_resolutions_free(struct wait_resolution *res, size_t n);

#endif
