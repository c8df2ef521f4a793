/* ingest.c - store events and start their runs (see ingest.h); the path of
 * one event is in docs/internals/ingest.md.
 *
 * Threads: sbd_ingest_init*, sbd_ingest_prepare on the thread that made the
 * events; *_in_txn and the fire op's apply on the writer thread inside its
 * transaction (the store, the batch and the registry snapshot only);
 * sbd_ingest_committed and the fire op's done on the writer thread after the
 * commit: they only count and call the notification table. */
#include "ingest.h"
#include "cancel.h"
#include "common/clock.h"
#include "common/log.h"
#include "defer.h"
#include "flow.h"
#include "metrics.h"
#include "qid.h"
#include "registry.h"
#include "store/store.h"
#include "store/writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEDUPE_WINDOW_MS (24LL * 3600 * 1000)

struct sbd_ingest {
    struct sbd_registry *registry;
    struct sbd_qids *qids;
    const struct sbd_ingest_notify *notify;
    void *ctx;
};

int sbd_ingest_create(struct sbd_registry *registry, struct sbd_qids *qids,
                      const struct sbd_ingest_notify *notify, void *ctx, struct sbd_ingest **out,
                      struct sb_err *err)
{
    struct sbd_ingest *in = calloc(1, sizeof *in);
    if (!in)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    in->registry = registry;
    in->qids = qids;
    in->notify = notify;
    in->ctx = ctx;
    *out = in;
    return 0;
}

void sbd_ingest_destroy(struct sbd_ingest *in)
{
    free(in);
}

/* ---- batches ---- */

int sbd_ingest_init(struct sbd_ingest_batch *b, struct sbd_event *evs, size_t n,
                    int64_t received_at)
{
    memset(b, 0, sizeof *b);
    b->received_at = received_at;
    if (n && !(b->events = calloc(n, sizeof *b->events)))
        return SB_ENOMEM;
    b->n = n;
    for (size_t i = 0; i < n; i++)
        b->events[i].ev = evs[i];
    return 0;
}

void sbd_ingest_free(struct sbd_ingest_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        struct sbd_ingest_event *ev = &b->events[i];
        for (size_t j = 0; j < ev->nruns; j++) {
            free(ev->runs[j].function_id);
            free(ev->runs[j].app_id);
        }
        free(ev->runs);
        sbd_event_clear(&ev->ev);
    }
    free(b->events);
    free(b->cancels);
    sbd_snap_release(b->snap);
    sbd_wait_resolutions_free(b->resolved, b->nresolved);
    memset(b, 0, sizeof *b);
}

/* A run of f for ev, with a fresh id and first queue item. */
static int add_run(struct sbd_ingest *in, struct sbd_ingest_event *ev, const struct sbd_fn *f,
                   int64_t now)
{
    struct sbd_ingest_run *nr = realloc(ev->runs, (ev->nruns + 1) * sizeof *nr);
    if (!nr)
        return SB_ENOMEM;
    ev->runs = nr;
    struct sbd_ingest_run *r = &nr[ev->nruns++];
    memset(r, 0, sizeof *r);
    sb_ulid_new(now, r->run_id);
    r->function_id = strdup(f->id);
    r->app_id = strdup(f->app_id);
    r->qid = sbd_qid_new(in->qids);
    return r->function_id && r->app_id ? 0 : SB_ENOMEM;
}

int sbd_ingest_init_run(struct sbd_ingest *in, struct sbd_ingest_batch *b, struct sbd_event *ev,
                        const struct sbd_fn *f, int64_t now, char run_id[SB_ULID_SIZE])
{
    if (sbd_ingest_init(b, ev, 1, now) != 0) {
        sbd_event_clear(ev);
        return SB_ENOMEM;
    }
    b->emitted = true;
    memset(ev, 0, sizeof *ev); /* the batch's now */
    int rc = add_run(in, &b->events[0], f, now);
    if (rc == 0 && run_id)
        memcpy(run_id, b->events[0].runs[0].run_id, SB_ULID_SIZE);
    return rc; /* on failure what was made is the batch's, freed with it */
}

struct match_ctx {
    struct sbd_ingest *in;
    struct sbd_ingest_event *ev;
    int64_t now;
    int failed;
};

static void add_match(void *ctx, const struct sbd_fn *f)
{
    struct match_ctx *mc = ctx;
    if (add_run(mc->in, mc->ev, f, mc->now) != 0)
        mc->failed = 1;
}

int sbd_ingest_prepare(struct sbd_ingest *in, struct sbd_ingest_batch *b)
{
    sbd_snap_release(b->snap);
    b->snap = sbd_registry_acquire(in->registry); /* kept for flow control and cancel rules */
    int failed = 0;
    for (size_t i = 0; i < b->n && !failed; i++) {
        struct match_ctx mc = { in, &b->events[i], b->received_at, 0 };
        sbd_snap_match(b->snap, &b->events[i].ev, add_match, &mc);
        failed = mc.failed;
    }
    return failed ? SB_ENOMEM : 0;
}

/* ---- apply: in the writer's transaction ---- */

int sbd_ingest_insert_run_in_txn(struct sbd_store *st, const char *run_id, const char *function_id,
                                 const char *app_id, const char *event_id, int64_t created_at,
                                 int64_t qid, int64_t due_at, struct sb_err *err)
{
    struct sbd_run_rec run = { .function_id = function_id,
                               .app_id = app_id,
                               .created_at = created_at };
    snprintf(run.id, sizeof run.id, "%s", run_id);
    snprintf(run.event_id, sizeof run.event_id, "%s", event_id);
    int rc = sbd_store_run_insert(st, &run, err);
    if (rc)
        return rc;
    struct sbd_qitem_rec q = { .id = qid, .run_id = run_id, .step_id = "step", .due_at = due_at };
    return sbd_store_queue_put(st, &q, err);
}

static int add_cancel(struct sbd_ingest_batch *b, const char *run_id, struct sb_err *err)
{
    char(*n)[SB_ULID_SIZE] = realloc(b->cancels, (b->ncancels + 1) * sizeof *n);
    if (!n)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    b->cancels = n;
    snprintf(n[b->ncancels++], SB_ULID_SIZE, "%s", run_id);
    return 0;
}

/* Stores ev unless it is a duplicate (same user id within the dedupe
 * window, or same event id): then ev takes the stored event's id. */
static int store_event_in_txn(struct sbd_store *st, struct sbd_ingest_batch *b,
                              struct sbd_ingest_event *ev, struct sb_err *err)
{
    ev->duplicate = false;
    if (ev->ev.dedupe_key) {
        char existing[SB_ULID_SIZE];
        int rc = sbd_store_event_find_dedupe(st, ev->ev.dedupe_key,
                                             b->received_at - DEDUPE_WINDOW_MS, existing, err);
        if (rc == 0) {
            memcpy(ev->ev.id, existing, sizeof ev->ev.id);
            ev->duplicate = true;
            return 0;
        }
        if (rc != SB_ENOTFOUND) /* unknown: fail the batch rather than run it twice */
            return rc;
    }
    struct sbd_ev_rec rec = { .name = ev->ev.name,
                              .body = ev->ev.body,
                              .ts = ev->ev.ts,
                              .received_at = b->received_at,
                              .dedupe_key = ev->ev.dedupe_key };
    memcpy(rec.id, ev->ev.id, sizeof rec.id);
    bool inserted;
    int rc = sbd_store_event_insert(st, &rec, &inserted, err);
    if (!rc && !inserted)
        ev->duplicate = true;
    return rc;
}

/* One run of ev: flow control decides, and a run that starts is stored with
 * its first queue item. */
static int start_run_in_txn(struct sbd_store *st, struct sbd_ingest_batch *b,
                            struct sbd_ingest_event *ev, struct sbd_ingest_run *ir,
                            struct sb_err *err)
{
    ir->skipped = ir->deferred = ir->load_events = false;
    ir->event_id[0] = 0;
    const struct sbd_fn *f = b->snap ? sbd_snap_find(b->snap, ir->function_id) : NULL;
    struct sbd_flow_start fs;
    int rc = sbd_flow_start_in_txn(st, f, ir->run_id, &ev->ev, b->received_at, &fs, err);
    if (rc)
        return rc;
    ir->due_at = fs.due_at;
    if (fs.cancel[0] && (rc = add_cancel(b, fs.cancel, err)))
        return rc;
    if (fs.verdict == FLOW_HELD) {
        ir->deferred = true;
        if (!b->defer_due || fs.held_until < b->defer_due)
            b->defer_due = fs.held_until;
        return 0;
    }
    if (fs.verdict == FLOW_SKIP) {
        ir->skipped = true;
        return 0;
    }
    if (fs.batch_full) {
        memcpy(ir->event_id, fs.event_id, sizeof ir->event_id);
        ir->load_events = true;
    }
    return sbd_ingest_insert_run_in_txn(st, ir->run_id, ir->function_id, ir->app_id,
                                        ir->event_id[0] ? ir->event_id : ev->ev.id, b->received_at,
                                        ir->qid, ir->due_at, err);
}

struct rule_ctx {
    struct sbd_store *st;
    struct sbd_ingest_batch *b;
    struct sbd_event *ev;
    int rc;
    struct sb_err *err;
};

static void on_cancel_rule(void *ctx, const struct sbd_fn *f, const struct sbd_cancel_rule *c)
{
    struct rule_ctx *rc = ctx;
    if (rc->rc)
        return;
    char reason[300];
    snprintf(reason, sizeof reason, "cancelOn %.250s", c->event);
    struct sbd_cancel_match m = { .function_id = f->id,
                                  .timeout_ms = c->timeout_ms,
                                  .expr = c->expr,
                                  .async = c->expr ? sbd_event_json(rc->ev) : NULL,
                                  .reason = reason,
                                  .now = rc->b->received_at };
    rc->rc = sbd_cancel_matching_in_txn(rc->st, &m, &rc->b->cancels, &rc->b->ncancels, rc->err);
}

/* What a stored event does to other runs: the open waitForEvent waits it
 * satisfies are resolved, and the running runs its cancelOn rules match get
 * durable cancel requests, all in this transaction. */
static int event_effects_in_txn(struct sbd_store *st, struct sbd_ingest *in,
                                struct sbd_ingest_batch *b, struct sbd_ingest_event *ev,
                                struct sb_err *err)
{
    int rc = sbd_waits_on_event_in_txn(st, in->qids, &ev->ev, &b->resolved, &b->nresolved, err);
    if (rc || !b->snap)
        return rc;
    struct rule_ctx rctx = { st, b, &ev->ev, 0, err };
    sbd_snap_cancel_rules(b->snap, ev->ev.name, on_cancel_rule, &rctx);
    return rctx.rc;
}

int sbd_ingest_apply_in_txn(struct sbd_store *st, struct sbd_ingest *in, struct sbd_ingest_batch *b,
                            struct sb_err *err)
{
    for (size_t i = 0; i < b->n; i++) {
        struct sbd_ingest_event *ev = &b->events[i];
        int rc = store_event_in_txn(st, b, ev, err);
        if (rc)
            return rc;
        if (ev->duplicate)
            continue;
        for (size_t j = 0; j < ev->nruns; j++)
            if ((rc = start_run_in_txn(st, b, ev, &ev->runs[j], err)))
                return rc;
        if ((rc = event_effects_in_txn(st, in, b, ev, err)))
            return rc;
    }
    return 0;
}

/* ---- committed: announcing ---- */

/* The runs apply stored, for runs_created (NULL when there are none or the
 * array cannot be allocated: the runs are committed anyway, and the next
 * start picks them up from the queue). An event's body goes to its last
 * run as it is, to the others as a copy. */
static struct sbd_new_run *started_runs(struct sbd_ingest_batch *b, size_t total, size_t *n)
{
    struct sbd_new_run *runs = total ? calloc(total, sizeof *runs) : NULL;
    *n = 0;
    for (size_t i = 0; runs && i < b->n; i++) {
        struct sbd_ingest_event *ev = &b->events[i];
        if (ev->duplicate)
            continue;
        size_t with_body = 0; /* the runs that take the event's body */
        for (size_t j = 0; j < ev->nruns; j++)
            with_body += !ev->runs[j].skipped && !ev->runs[j].deferred && !ev->runs[j].load_events;
        for (size_t j = 0; j < ev->nruns; j++) {
            struct sbd_ingest_run *ir = &ev->runs[j];
            if (ir->skipped || ir->deferred)
                continue;
            struct sbd_new_run *nr = &runs[(*n)++];
            memcpy(nr->run_id, ir->run_id, sizeof nr->run_id);
            memcpy(nr->event_id, ir->event_id[0] ? ir->event_id : ev->ev.id, sizeof nr->event_id);
            nr->function_id = ir->function_id;
            ir->function_id = NULL;
            if (!ir->load_events && --with_body == 0) { /* the last one: no copy */
                nr->event = ev->ev.body;
                ev->ev.body = NULL;
            } else if (!ir->load_events) {
                nr->event = strdup(ev->ev.body);
            }
            nr->qid = ir->qid;
            nr->due_at = ir->due_at ? ir->due_at : b->received_at;
        }
    }
    return runs;
}

void sbd_ingest_committed(struct sbd_ingest *in, struct sbd_ingest_batch *b)
{
    const struct sbd_ingest_notify *nt = in->notify;
    size_t total = 0, skipped = 0, deferred = 0;
    b->duplicates = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->events[i].duplicate) {
            b->duplicates++;
            continue;
        }
        for (size_t j = 0; j < b->events[i].nruns; j++) {
            const struct sbd_ingest_run *ir = &b->events[i].runs[j];
            skipped += ir->skipped;
            deferred += !ir->skipped && ir->deferred;
            total += !ir->skipped && !ir->deferred;
        }
    }
    SBD_COUNT_N(runs_skipped, skipped);
    SBD_COUNT_N(events_deferred, deferred);
    if (b->defer_due && nt->deferred_changed) /* a deferred start may now be due sooner */
        nt->deferred_changed(in->ctx, b->defer_due);
    if (deferred && nt->events_held) /* a debounce may have let go of an event someone waits on */
        nt->events_held(in->ctx);
    size_t k = 0;
    struct sbd_new_run *runs = started_runs(b, total, &k);
    if (runs && nt->runs_created)
        nt->runs_created(in->ctx, runs, k);
    else
        for (size_t i = 0; runs && i < k; i++)
            free(runs[i].function_id), free(runs[i].event);
    free(runs);
    if (b->nresolved && nt->waits_resolved) {
        nt->waits_resolved(in->ctx, b->resolved, b->nresolved);
        b->resolved = NULL;
        b->nresolved = 0;
    }
    b->new_runs = k;
    sbd_ingest_announce_cancels(in, b->cancels, b->ncancels);
    if (b->emitted)
        SBD_COUNT_N(events_emitted, b->n - b->duplicates);
    else
        SBD_COUNT_N(events_received, b->n - b->duplicates);
    SBD_COUNT_N(events_duplicate, b->duplicates);
    SBD_COUNT_N(runs_started, k);
}

void sbd_ingest_announce_cancels(struct sbd_ingest *in, char (*ids)[SB_ULID_SIZE], size_t n)
{
    if (n && in->notify->cancels)
        in->notify->cancels(in->ctx, ids, n);
}

/* ---- a deferred start that came due (the scheduler fires it) ---- */

struct fire_op {
    struct sbd_wop wop;
    struct sbd_ingest *in;
    char id[SB_ULID_SIZE];
    void (*on_done)(void *ctx);
    void *ctx;
    struct sbd_new_run run; /* set when a run started */
    bool started;
};

/* Whether f, whose deferred row was just taken, still exists. */
static bool function_live(struct sbd_ingest *in, const struct sbd_deferred_rec *d)
{
    struct sbd_reg_snap *snap = sbd_registry_acquire(in->registry);
    const struct sbd_fn *f = sbd_snap_find(snap, d->function_id);
    bool live = f && !f->removed;
    sbd_snap_release(snap);
    if (!live)
        SB_LOGK(SB_WARN, "deferred_dropped",
                ((struct sb_lf[]){ LF_S("function_id", d->function_id) }),
                "function %s is gone: its pending %s is dropped", d->function_id,
                d->kind == DEFER_DEBOUNCE ? "debounce" : "batch");
    return live;
}

/* Re-reads the row (a full batch or a later debounce may have changed it),
 * deletes it, moves a batch's events to a new run id and creates the run:
 * one transaction, so a crash leaves the row or the run, never both. */
static int fire_apply_in_txn(struct sbd_store *st, struct sbd_wop *w, struct sb_err *err)
{
    struct fire_op *op = (struct fire_op *)w;
    int64_t now = sb_now_ms();
    op->started = false;
    struct sbd_deferred_rec d;
    bool taken;
    int rc = sbd_defer_take_in_txn(st, op->id, now, &taken, &d, err);
    if (rc || !taken)
        return rc;
    if (!function_live(op->in, &d))
        goto out;
    free(op->run.function_id);
    op->run.function_id = strdup(d.function_id);
    if (!op->run.function_id) {
        rc = sb_err_set(err, SB_ENOMEM, "out of memory");
        goto out;
    }
    /* a fresh run id: the run is created now (timeouts.start counts from here) */
    sb_ulid_new(now, op->run.run_id);
    memcpy(op->run.event_id, d.event_id, sizeof op->run.event_id);
    op->run.qid = sbd_qid_new(op->in->qids);
    op->run.due_at = now;
    op->run.event = NULL; /* loaded from the store (a batch: with its events) */
    if (d.kind == DEFER_BATCH)
        rc = sbd_store_run_events_move(st, d.id, op->run.run_id, err);
    if (!rc)
        rc = sbd_ingest_insert_run_in_txn(st, op->run.run_id, d.function_id, d.app_id, d.event_id,
                                          now, op->run.qid, now, err);
    op->started = rc == 0;
out:
    sbd_deferred_rec_free(&d);
    return rc;
}

static void fire_done(struct sbd_wop *w, int rc, const struct sb_err *err)
{
    struct fire_op *op = (struct fire_op *)w;
    if (rc) {
        SB_LOG(SB_ERROR, "deferred_fire_failed", "deferred start %s did not fire: %s", op->id,
               err ? err->msg : "?");
    } else if (op->started) {
        SBD_COUNT(runs_started);
        if (op->in->notify->runs_created) {
            op->in->notify->runs_created(op->in->ctx, &op->run, 1); /* takes function_id */
            op->run.function_id = NULL;
        }
    }
    free(op->run.function_id);
    void (*on_done)(void *) = op->on_done;
    void *ctx = op->ctx;
    free(op);
    if (on_done)
        on_done(ctx);
}

struct sbd_wop *sbd_ingest_fire_deferred_new(struct sbd_ingest *in, const char *id,
                                             void (*done)(void *ctx), void *ctx)
{
    struct fire_op *op = calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->wop.apply = fire_apply_in_txn;
    op->wop.done = fire_done;
    op->in = in;
    snprintf(op->id, sizeof op->id, "%s", id);
    op->on_done = done;
    op->ctx = ctx;
    return &op->wop;
}
