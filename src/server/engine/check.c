/* check.c - the engine's invariants (engine_internal.h, heap.h), checked in
 * full by walking every run, item, heap and slot. O(runs + items), so never
 * on the hot path of a release build: the unit tests call engine_check, and
 * a build with CHECK_INVARIANTS=1 (-DSBD_CHECK_INVARIANTS) runs it at every
 * turn of the engine loop (ENGINE_CHECK), aborting at the first violation
 * with what was broken. The cheap ones are also asserted where they change
 * (runop_committed, the heap's push and remove). Engine thread. */
#include "engine_internal.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>

/* Counts of what the walk saw, compared with the engine's own. */
struct tally {
    size_t runs, items, in_queue, parked, inflight, loaded;
};

static int check_item(const struct sbd_engine *e, const struct sbd_run *r,
                      const struct sbd_item *it, struct tally *t, struct sb_err *err)
{
    t->items++;
    if (it->run != r)
        return sb_err_set(err, SB_EINTERNAL, "item %lld of run %s belongs to another run",
                          (long long)it->id, r->id);
    if (it->call) {
        t->inflight++;
        if (it->call->item != it)
            return sb_err_set(err, SB_EINTERNAL, "the call of item %lld is another item's",
                              (long long)it->id);
    }
    if (it->heap) {
        if (it->heap_idx >= it->heap->n || it->heap->v[it->heap_idx] != it)
            return sb_err_set(err, SB_EINTERNAL, "item %lld is not where its heap says",
                              (long long)it->id);
        if (it->call || it->leasing)
            return sb_err_set(err, SB_EINTERNAL, "item %lld is in a heap with its %s under way",
                              (long long)it->id, it->call ? "call" : "lease");
        if (it->heap == &e->queue)
            t->in_queue++;
        else
            t->parked++;
    }
    return 0;
}

static int check_run(const struct sbd_engine *e, const struct sbd_run *r, struct tally *t,
                     struct sb_err *err)
{
    t->runs++;
    t->loaded += r->loaded;
    if (r->committing < 0)
        return sb_err_set(err, SB_EINTERNAL, "run %s has %d commits pending", r->id, r->committing);
    if (r->ended && (r->items || r->deadline))
        return sb_err_set(err, SB_EINTERNAL, "run %s has ended but still has items", r->id);
    if (!r->ended && r->committing == 0 && !r->items)
        return sb_err_set(err, SB_EINTERNAL, "run %s is running with no item and no commit pending",
                          r->id);
    int rc;
    for (const struct sbd_item *it = r->items; it; it = it->next) {
        if (it == r->deadline)
            return sb_err_set(err, SB_EINTERNAL, "the deadline of run %s is in its items", r->id);
        if ((rc = check_item(e, r, it, t, err)))
            return rc;
    }
    if (r->deadline) {
        if (!(r->deadline->flags & ITEM_DEADLINE))
            return sb_err_set(err, SB_EINTERNAL, "the deadline of run %s is not a deadline item",
                              r->id);
        if ((rc = check_item(e, r, r->deadline, t, err)))
            return rc;
    }
    return 0;
}

int engine_check(const struct sbd_engine *e, struct sb_err *err)
{
    struct tally t = { 0 };
    int rc = iheap_check(&e->queue, err);
    for (size_t b = 0; !rc && b < e->nbuckets; b++)
        for (const struct sbd_run *r = e->buckets[b]; !rc && r; r = r->hnext)
            rc = check_run(e, r, &t, err);
    size_t parked = 0;
    if (!rc)
        rc = admit_check(e, &parked, err);
    if (rc)
        return rc;
    if (t.in_queue != e->queue.n || t.parked != parked)
        return sb_err_set(
            err, SB_EINTERNAL,
            "the queue holds %zu items and the slots %zu, the runs %zu and %zu of them", e->queue.n,
            parked, t.in_queue, t.parked);
    if (t.runs != e->nruns || t.items != e->nitems)
        return sb_err_set(err, SB_EINTERNAL, "%zu runs and %zu items counted, %zu and %zu found",
                          e->nruns, e->nitems, t.runs, t.items);
    if ((int64_t)t.inflight != e->inflight || (int64_t)t.loaded != e->loaded_runs)
        return sb_err_set(err, SB_EINTERNAL,
                          "%lld calls in flight and %lld runs loaded counted, %zu and %zu found",
                          (long long)e->inflight, (long long)e->loaded_runs, t.inflight, t.loaded);
    return 0;
}

void engine_check_or_abort(const struct sbd_engine *e)
{
    struct sb_err err = { 0 };
    if (engine_check(e, &err) == 0)
        return;
    SB_LOG(SB_ERROR, "engine_invariant_broken", "%s", err.msg);
    fprintf(stderr, "sysbusd: engine invariant broken: %s\n", err.msg);
    abort();
}
