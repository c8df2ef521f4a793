/* defer.c - deferred run starts: debounce and batchEvents (see defer.h). */
#include "defer.h"
#include "common/clock.h"
#include "common/log.h"
#include "engine/engine.h"
#include "expr/expr.h"
#include "flow.h"
#include "ingest.h"
#include "metrics.h"
#include "registry.h"
#include "sbd.h"
#include "store/store.h"
#include "store/writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* A new row of kind for f and key, under the id of the run it replaces. */
static int deferred_new(struct deferred_rec *d, int kind, const struct fn *f,
                        const struct ingest_run *ir, const char *key, int64_t now,
                        struct sb_err *err)
{
    memset(d, 0, sizeof *d);
    memcpy(d->id, ir->run_id, sizeof d->id);
    d->kind = kind;
    d->first_at = now;
    d->function_id = strdup(f->id);
    d->app_id = strdup(f->app_id);
    d->key = strdup(key);
    if (d->function_id && d->app_id && d->key)
        return 0;
    sb_deferred_rec_free(d);
    return sb_err_set(err, SB_ENOMEM, "out of memory");
}

static int debounce(struct sb_store *st, const struct fn *f, struct ingest_run *ir,
                    const char *event_id, const char *key, int64_t now, int64_t *due_at,
                    struct sb_err *err)
{
    const struct flow_config *fl = &f->flow;
    struct deferred_rec d;
    int rc = sb_store_deferred_find(st, DEFER_DEBOUNCE, f->id, key, &d, err);
    if (rc == SB_ENOTFOUND) {
        if ((rc = deferred_new(&d, DEFER_DEBOUNCE, f, ir, key, now, err)))
            return rc;
    } else if (rc) {
        return sb_err_set(err, rc, "cannot read a debounce");
    }
    snprintf(d.event_id, sizeof d.event_id, "%s", event_id); /* the latest event wins */
    d.size++;
    d.due_at = now + fl->debounce_period_ms;
    if (fl->debounce_timeout_ms > 0)
        d.due_at = min64(d.due_at, d.first_at + fl->debounce_timeout_ms);
    rc = sb_store_deferred_put(st, &d, err);
    *due_at = d.due_at;
    sb_deferred_rec_free(&d);
    return rc;
}

static int batch(struct sb_store *st, const struct fn *f, struct ingest_run *ir,
                 const char *event_id, const char *key, int64_t now, enum defer_outcome *outcome,
                 int64_t *due_at, struct sb_err *err)
{
    const struct flow_config *fl = &f->flow;
    struct deferred_rec d;
    int rc = sb_store_deferred_find(st, DEFER_BATCH, f->id, key, &d, err);
    if (rc == SB_ENOTFOUND) {
        if ((rc = deferred_new(&d, DEFER_BATCH, f, ir, key, now, err)))
            return rc;
        d.due_at = now + fl->batch_timeout_ms;
        snprintf(d.event_id, sizeof d.event_id, "%s", event_id); /* the first event */
    } else if (rc) {
        return sb_err_set(err, rc, "cannot read a batch");
    }
    if ((rc = sb_store_run_event_add(st, d.id, d.size, event_id, err)))
        goto out;
    d.size++;
    if (d.size >= fl->batch_max) { /* full: the run starts now, in this transaction */
        rc = sb_store_deferred_delete(st, d.id, err);
        if (!rc && strcmp(d.id, ir->run_id) != 0)
            rc = sb_store_run_events_move(st, d.id, ir->run_id, err);
        memcpy(ir->event_id, d.event_id, sizeof ir->event_id);
        ir->load_events = true;
        *outcome = DEFER_START;
    } else {
        rc = sb_store_deferred_put(st, &d, err);
        *due_at = d.due_at;
        *outcome = DEFER_HELD;
    }
out:
    sb_deferred_rec_free(&d);
    return rc;
}

int sbd_defer_event(struct sb_store *st, const struct fn *f, struct ingest_run *ir,
                    const char *event_id, const json_t *event, int64_t now,
                    enum defer_outcome *outcome, int64_t *due_at, struct sb_err *err)
{
    const struct flow_config *fl = &f->flow;
    *outcome = DEFER_NONE;
    struct sb_expr_var var = { "event", event };
    if (fl->batch && fl->batch_if && !sb_expr_test(fl->batch_if, &var, 1))
        return 0; /* not for the batch: runs on its own */
    char *key = sbd_flow_key(f->id, fl->debounce ? fl->debounce_key : fl->batch_key, event);
    if (!key)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    int rc;
    if (fl->debounce) {
        rc = debounce(st, f, ir, event_id, key, now, due_at, err);
        *outcome = DEFER_HELD;
    } else {
        rc = batch(st, f, ir, event_id, key, now, outcome, due_at, err);
    }
    free(key);
    return rc;
}

/* ---- firing a due row ---- */

struct fire_op {
    struct wop wop;
    struct sbd *sbd;
    char id[SB_ULID_SIZE];
    void (*on_done)(void *ctx);
    void *ctx;
    struct new_run run; /* set when a run started */
    bool started;
};

static int fire_apply(struct sb_store *st, struct wop *w, struct sb_err *err)
{
    struct fire_op *op = (struct fire_op *)w;
    int64_t now = sb_now_ms();
    op->started = false;
    struct deferred_rec d;
    int rc = sb_store_deferred_get(st, op->id, &d, err);
    if (rc == SB_ENOTFOUND)
        return 0; /* fired by a full batch meanwhile */
    if (rc)
        return sb_err_set(err, rc, "cannot read deferred start %s", op->id);
    if (d.due_at > now) { /* a debounce moved meanwhile */
        sb_deferred_rec_free(&d);
        return 0;
    }
    if ((rc = sb_store_deferred_delete(st, d.id, err)))
        goto out;
    struct reg_snap *snap = sb_registry_acquire(op->sbd->registry);
    const struct fn *f = sb_snap_find(snap, d.function_id);
    bool gone = !f || f->removed;
    sb_snap_release(snap);
    if (gone) {
        SB_LOGK(SB_WARN, "deferred_dropped",
                ((struct sb_lf[]){ LF_S("function_id", d.function_id) }),
                "function %s is gone: its pending %s is dropped", d.function_id,
                d.kind == DEFER_DEBOUNCE ? "debounce" : "batch");
        goto out;
    }
    free(op->run.function_id);
    op->run.function_id = strdup(d.function_id);
    if (!op->run.function_id) {
        rc = sb_err_set(err, SB_ENOMEM, "out of memory");
        goto out;
    }
    /* a fresh run id: the run is created now (timeouts.start counts from here) */
    sb_ulid_new(now, op->run.run_id);
    memcpy(op->run.event_id, d.event_id, sizeof op->run.event_id);
    op->run.qid = sb_engine_alloc_qid(op->sbd->engine);
    op->run.due_at = now;
    op->run.event = NULL; /* the engine loads the event(s) */
    if (d.kind == DEFER_BATCH)
        rc = sb_store_run_events_move(st, d.id, op->run.run_id, err);
    if (!rc)
        rc = sbd_ingest_insert_run(st, op->run.run_id, d.function_id, d.app_id, d.event_id, now,
                                   op->run.qid, now, err);
    op->started = rc == 0;
out:
    sb_deferred_rec_free(&d);
    return rc;
}

static void fire_done(struct wop *w, int rc, const struct sb_err *err)
{
    struct fire_op *op = (struct fire_op *)w;
    if (rc) {
        SB_LOG(SB_ERROR, "deferred_fire_failed", "deferred start %s did not fire: %s", op->id,
               err ? err->msg : "?");
    } else if (op->started) {
        SBD_COUNT(runs_started);
        sb_engine_add_runs(op->sbd->engine, &op->run, 1); /* takes function_id */
        op->run.function_id = NULL;
    }
    free(op->run.function_id);
    void (*on_done)(void *) = op->on_done;
    void *ctx = op->ctx;
    free(op);
    if (on_done)
        on_done(ctx);
}

struct wop *sbd_defer_fire_new(struct sbd *sbd, const char *id, void (*done)(void *ctx), void *ctx)
{
    struct fire_op *op = calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->wop.apply = fire_apply;
    op->wop.done = fire_done;
    op->sbd = sbd;
    snprintf(op->id, sizeof op->id, "%s", id);
    op->on_done = done;
    op->ctx = ctx;
    return &op->wop;
}
