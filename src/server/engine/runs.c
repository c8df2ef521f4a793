/* runs.c - the engine's run table and queue items: finding and adding runs,
 * their items (new, loaded from the store, freed), the queue heap pushes,
 * memoized values, and unloading a run's heavy state while it waits.
 * Engine-thread only (and, at start, the thread that loads the queue before
 * the engine thread exists). */
#include "engine_internal.h"
#include "common/clock.h"
#include "common/log.h"
#include "server/store/store.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the queue ---- */

void engine_heap_push(struct sbd_engine *e, struct sbd_item *it)
{
    iheap_push(&e->queue, it);
}

void engine_heap_remove(struct sbd_engine *e, struct sbd_item *it)
{
    (void)e;
    iheap_remove(it); /* from the queue or the slot it is parked on */
}

/* ---- run table ---- */

static size_t hash_id(const char *s)
{
    size_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

struct sbd_run *engine_run_find(struct sbd_engine *e, const char *id)
{
    for (struct sbd_run *r = e->buckets[hash_id(id) & (e->nbuckets - 1)]; r; r = r->hnext)
        if (strcmp(r->id, id) == 0)
            return r;
    return NULL;
}

static void table_grow(struct sbd_engine *e)
{
    size_t nb = e->nbuckets * 2;
    struct sbd_run **b = calloc(nb, sizeof *b);
    if (!b)
        return; /* keep the longer chains */
    for (size_t i = 0; i < e->nbuckets; i++) {
        for (struct sbd_run *r = e->buckets[i], *next; r; r = next) {
            next = r->hnext;
            size_t k = hash_id(r->id) & (nb - 1);
            r->hnext = b[k];
            b[k] = r;
        }
    }
    free(e->buckets);
    e->buckets = b;
    e->nbuckets = nb;
}

struct sbd_run *engine_run_add(struct sbd_engine *e, const char *id)
{
    struct sbd_run *r = calloc(1, sizeof *r);
    if (!r) {
        SB_LOG(SB_ERROR, "oom", "cannot allocate a run");
        abort();
    }
    snprintf(r->id, sizeof r->id, "%s", id);
    r->req_version = -1;
    if (e->nruns + 1 > e->nbuckets)
        table_grow(e);
    size_t k = hash_id(id) & (e->nbuckets - 1);
    r->hnext = e->buckets[k];
    e->buckets[k] = r;
    e->nruns++;
    return r;
}

void engine_run_unload(struct sbd_engine *e, struct sbd_run *r)
{
    if (!r->loaded)
        return;
    free(r->event);
    r->event = NULL;
    free(r->events);
    r->events = NULL;
    for (size_t i = 0; i < r->nmemo; i++)
        free(r->memo[i].value);
    free(r->memo);
    r->memo = NULL;
    r->nmemo = r->capmemo = 0;
    r->loaded = false;
    e->loaded_runs--;
}

int engine_memo_put(struct sbd_engine *e, struct sbd_run *r, const char *hash, const char *value)
{
    (void)e;
    assert(hash && value); /* callers encode first and fail the run when they cannot */
    if (!r->loaded)
        return 0; /* the store has it; loaded with the rest when needed */
    for (size_t i = 0; i < r->nmemo; i++) {
        if (strcmp(r->memo[i].hash, hash) == 0) {
            char *v = strdup(value);
            if (!v)
                return SB_ENOMEM;
            free(r->memo[i].value);
            r->memo[i].value = v;
            return 0;
        }
    }
    if (r->nmemo == r->capmemo) {
        size_t nc = r->capmemo ? r->capmemo * 2 : 8;
        struct sbd_memo *nm = realloc(r->memo, nc * sizeof *nm);
        if (!nm)
            return SB_ENOMEM;
        r->memo = nm;
        r->capmemo = nc;
    }
    char *v = strdup(value);
    if (!v)
        return SB_ENOMEM;
    snprintf(r->memo[r->nmemo].hash, sizeof r->memo[r->nmemo].hash, "%s", hash);
    r->memo[r->nmemo].value = v;
    r->nmemo++;
    return 0;
}

void engine_item_free(struct sbd_engine *e, struct sbd_item *it)
{
    engine_heap_remove(e, it);
    if (it->call)
        call_abort(e, it->call);
    if (it->held[0] || it->held[1]) /* parked for its lease */
        admit_release(e, it);
    if (it->run->deadline == it)
        it->run->deadline = NULL;
    struct sbd_item **pp = &it->run->items;
    while (*pp && *pp != it)
        pp = &(*pp)->next;
    if (*pp)
        *pp = it->next;
    free(it->last_error);
    free(it);
    e->nitems--;
}

struct sbd_item *engine_item_new(struct sbd_engine *e, struct sbd_run *r, int64_t id,
                                 const char *step_id)
{
    struct sbd_item *it = calloc(1, sizeof *it);
    if (!it) {
        SB_LOG(SB_ERROR, "oom", "cannot allocate a queue item");
        abort();
    }
    it->id = id;
    it->run = r;
    snprintf(it->step_id, sizeof it->step_id, "%s", step_id);
    it->next = r->items;
    r->items = it;
    e->nitems++;
    return it;
}

void engine_run_drop_items(struct sbd_engine *e, struct sbd_run *r)
{
    while (r->items)
        engine_item_free(e, r->items);
    if (r->deadline)
        engine_item_free(e, r->deadline);
}

void engine_deadline_new(struct sbd_engine *e, struct sbd_run *r, int64_t due_at)
{
    struct sbd_item *it = calloc(1, sizeof *it);
    if (!it) {
        SB_LOG(SB_ERROR, "oom", "cannot allocate a queue item");
        abort();
    }
    it->id = sbd_engine_alloc_qid(e);
    it->run = r;
    it->due_at = due_at;
    it->flags = ITEM_DEADLINE;
    snprintf(it->step_id, sizeof it->step_id, "deadline");
    r->deadline = it;
    r->deadline_saved = false; /* written with the run's next change (runop_new) */
    e->nitems++;
    engine_heap_push(e, it);
}

struct sbd_item *engine_item_load(struct sbd_engine *e, struct sbd_run *r,
                                  const struct sbd_qitem_rec *q)
{
    struct sbd_item *it;
    if (q->flags & ITEM_DEADLINE) {
        if (r->deadline)
            engine_item_free(e, r->deadline);
        it = calloc(1, sizeof *it);
        if (!it) {
            SB_LOG(SB_ERROR, "oom", "cannot allocate a queue item");
            abort();
        }
        it->id = q->id;
        it->run = r;
        snprintf(it->step_id, sizeof it->step_id, "%s", q->step_id);
        r->deadline = it;
        r->deadline_saved = true;
        e->nitems++;
    } else {
        it = engine_item_new(e, r, q->id, q->step_id);
    }
    it->attempt = q->attempt;
    it->due_at = q->due_at;
    it->started_at = q->started_at;
    it->transport_failures = q->transport_failures;
    it->transport_since = q->transport_since;
    it->flags = q->flags;
    it->last_error = q->last_error ? strdup(q->last_error) : NULL;
    return it;
}

void engine_run_free(struct sbd_engine *e, struct sbd_run *r)
{
    engine_run_drop_items(e, r);
    admit_run_free(r);
    engine_run_unload(e, r);
    size_t k = hash_id(r->id) & (e->nbuckets - 1);
    struct sbd_run **pp = &e->buckets[k];
    while (*pp && *pp != r)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = r->hnext;
    e->nruns--;
    free(r->function_id);
    free(r->unstorable);
    free(r);
}

/* Runs idle for longer than this drop their heavy state. */
#define UNLOAD_AFTER_MS 2000

void engine_run_schedule(struct sbd_engine *e, struct sbd_run *r)
{
    int64_t now = sb_now_ms(), soonest = INT64_MAX;
    bool busy = false;
    for (struct sbd_item *it = r->items; it; it = it->next) {
        if (it->call || it->leasing) {
            busy = true;
            continue;
        }
        engine_heap_push(e, it);
        if (it->due_at < soonest)
            soonest = it->due_at;
    }
    if (r->deadline)
        engine_heap_push(e, r->deadline);
    if (!busy && soonest - now > UNLOAD_AFTER_MS)
        engine_run_unload(e, r);
}
