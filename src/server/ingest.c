/* ingest.c - store events and start their runs (see ingest.h). */
#include "ingest.h"
#include "common/clock.h"
#include "common/json.h"
#include "expr/expr.h"
#include "cron/scheduler.h"
#include "defer.h"
#include "flow.h"
#include "engine/engine.h"
#include "metrics.h"
#include "registry.h"
#include "sbd.h"
#include "store/store.h"
#include "waiters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEDUPE_WINDOW_MS (24LL * 3600 * 1000)

int sbd_ingest_init(struct ingest_batch *b, struct parsed_event *evs, size_t n, int64_t received_at)
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

void sbd_ingest_free(struct ingest_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        struct ingest_event *ev = &b->events[i];
        for (size_t j = 0; j < ev->nruns; j++) {
            free(ev->runs[j].function_id);
            free(ev->runs[j].app_id);
        }
        free(ev->runs);
        free(ev->ev.name);
        free(ev->ev.body);
        free(ev->ev.dedupe_key);
    }
    free(b->events);
    free(b->cancels);
    sb_snap_release(b->snap);
    sb_wait_resolutions_free(b->resolved, b->nresolved);
    memset(b, 0, sizeof *b);
}

struct match_ctx {
    struct ingest_event *ev;
    struct sbd *sbd;
    int64_t now;
    int failed;
};

static void add_match(void *ctx, const struct fn *f)
{
    struct match_ctx *mc = ctx;
    struct ingest_event *ev = mc->ev;
    struct ingest_run *nr = realloc(ev->runs, (ev->nruns + 1) * sizeof *nr);
    if (!nr) {
        mc->failed = 1;
        return;
    }
    ev->runs = nr;
    struct ingest_run *r = &nr[ev->nruns++];
    memset(r, 0, sizeof *r);
    sb_ulid_new(mc->now, r->run_id);
    r->function_id = strdup(f->id);
    r->app_id = strdup(f->app_id);
    r->qid = sb_engine_alloc_qid(mc->sbd->engine);
    if (!r->function_id || !r->app_id)
        mc->failed = 1;
}

int sbd_ingest_prepare(struct sbd *sbd, struct ingest_batch *b)
{
    sb_snap_release(b->snap);
    b->snap = sb_registry_acquire(sbd->registry); /* kept for the cancel rules */
    int failed = 0;
    for (size_t i = 0; i < b->n && !failed; i++) {
        struct match_ctx mc = { &b->events[i], sbd, b->received_at, 0 };
        sb_snap_match(b->snap, b->events[i].ev.name, b->events[i].ev.body, add_match, &mc);
        failed = mc.failed;
    }
    return failed ? SB_ENOMEM : 0;
}

struct cancel_ctx {
    struct sb_store *st;
    const struct sb_expr *expr;
    json_t *async_ev;
    int64_t timeout_ms, now;
    const char *reason;
    char (**ids)[SB_ULID_SIZE];
    size_t *nids;
    struct sb_err *err;
};

static int cancel_one(void *ctx, const char *run_id, int64_t created_at, const char *trigger)
{
    struct cancel_ctx *cc = ctx;
    if (cc->timeout_ms > 0 && created_at + cc->timeout_ms < cc->now)
        return 0; /* the rule applies only this long after the run started */
    if (cc->expr) {
        json_t *ev = trigger ? sb_json_parse(trigger, strlen(trigger), NULL) : NULL;
        struct sb_expr_var vars[] = { { "event", ev }, { "async", cc->async_ev } };
        bool ok = sb_expr_test(cc->expr, vars, cc->async_ev ? 2 : 1);
        json_decref(ev);
        if (!ok)
            return 0;
    }
    bool added;
    int rc = sb_store_cancel_request_put(cc->st, run_id, cc->reason, cc->now, &added, cc->err);
    if (rc || !added)
        return rc;
    char(*n)[SB_ULID_SIZE] = realloc(*cc->ids, (*cc->nids + 1) * sizeof *n);
    if (!n)
        return sb_err_set(cc->err, SB_ENOMEM, "out of memory");
    *cc->ids = n;
    snprintf(n[(*cc->nids)++], SB_ULID_SIZE, "%s", run_id);
    return 0;
}

static int cancel_matching_rule(struct sb_store *st, const struct cancel_rule *c,
                                const char *function_id, const char *async_body, const char *reason,
                                int64_t now, char (**ids)[SB_ULID_SIZE], size_t *nids,
                                struct sb_err *err)
{
    json_t *async_ev = async_body ? sb_json_parse(async_body, strlen(async_body), NULL) : NULL;
    struct cancel_ctx cc = {
        st, c ? c->expr : NULL, async_ev, c ? c->timeout_ms : 0, now, reason, ids, nids, err
    };
    int rc = sb_store_running_runs(st, NULL, function_id, 0, 0, cancel_one, &cc, err);
    json_decref(async_ev);
    return rc;
}

int sbd_cancel_matching(struct sb_store *st, const char *app_id, const char *function_id,
                        int64_t after, int64_t before, const struct sb_expr *expr,
                        const char *async_body, const char *reason, int64_t now,
                        char (**ids)[SB_ULID_SIZE], size_t *nids, struct sb_err *err)
{
    json_t *async_ev = async_body ? sb_json_parse(async_body, strlen(async_body), NULL) : NULL;
    struct cancel_ctx cc = { st, expr, async_ev, 0, now, reason, ids, nids, err };
    int rc = sb_store_running_runs(st, app_id, function_id, after, before, cancel_one, &cc, err);
    json_decref(async_ev);
    return rc;
}

void sbd_cancel_committed(struct sbd *sbd, char (*ids)[SB_ULID_SIZE], size_t n)
{
    for (size_t i = 0; i < n; i++)
        sb_engine_cancel(sbd->engine, ids[i], NULL, NULL);
}

struct rule_ctx {
    struct sb_store *st;
    struct ingest_batch *b;
    const char *body;
    int rc;
    struct sb_err *err;
};

static void on_cancel_rule(void *ctx, const struct fn *f, const struct cancel_rule *c)
{
    struct rule_ctx *rc = ctx;
    if (rc->rc)
        return;
    char reason[300];
    snprintf(reason, sizeof reason, "cancelOn %.250s", c->event);
    rc->rc = cancel_matching_rule(rc->st, c, f->id, rc->body, reason, rc->b->received_at,
                                  &rc->b->cancels, &rc->b->ncancels, rc->err);
}

int sbd_ingest_insert_run(struct sb_store *st, const char *run_id, const char *function_id,
                          const char *app_id, const char *event_id, int64_t created_at, int64_t qid,
                          int64_t due_at, struct sb_err *err)
{
    struct run_rec run = { .function_id = function_id, .app_id = app_id, .created_at = created_at };
    snprintf(run.id, sizeof run.id, "%s", run_id);
    snprintf(run.event_id, sizeof run.event_id, "%s", event_id);
    int rc = sb_store_run_insert(st, &run, err);
    if (rc)
        return rc;
    struct qitem_rec q = { .id = qid, .run_id = run_id, .step_id = "step", .due_at = due_at };
    return sb_store_queue_put(st, &q, err);
}

int sbd_ingest_apply(struct sb_store *st, struct sbd *sbd, struct ingest_batch *b,
                     struct sb_err *err)
{
    for (size_t i = 0; i < b->n; i++) {
        struct ingest_event *ev = &b->events[i];
        ev->duplicate = false;
        if (ev->ev.dedupe_key) {
            char existing[SB_ULID_SIZE];
            int drc = sb_store_event_find_dedupe(st, ev->ev.dedupe_key,
                                                 b->received_at - DEDUPE_WINDOW_MS, existing, err);
            if (drc == 0) {
                memcpy(ev->ev.id, existing, sizeof ev->ev.id);
                ev->duplicate = true;
                continue;
            }
            if (drc != SB_ENOTFOUND) /* unknown: fail the batch rather than run it twice */
                return drc;
        }
        struct ev_rec rec = { .name = ev->ev.name,
                              .body = ev->ev.body,
                              .ts = ev->ev.ts,
                              .received_at = b->received_at,
                              .dedupe_key = ev->ev.dedupe_key };
        memcpy(rec.id, ev->ev.id, sizeof rec.id);
        bool inserted;
        int rc = sb_store_event_insert(st, &rec, &inserted, err);
        if (rc)
            return rc;
        if (!inserted) {
            ev->duplicate = true;
            continue;
        }
        json_t *event = NULL; /* parsed when a flow rule needs it */
        bool parsed = false;
        for (size_t j = 0; j < ev->nruns; j++) {
            struct ingest_run *ir = &ev->runs[j];
            ir->skipped = ir->deferred = ir->load_events = false;
            ir->event_id[0] = 0;
            ir->due_at = b->received_at;
            const struct fn *f = b->snap ? sb_snap_find(b->snap, ir->function_id) : NULL;
            if (f && f->flow.priority) { /* an earlier place in the queue */
                if (!parsed) {
                    event = sb_json_parse(ev->ev.body, strlen(ev->ev.body), NULL);
                    parsed = true;
                }
                ir->due_at = b->received_at - 1000 * sbd_flow_priority_s(f, event);
            }
            if (f && (f->flow.debounce || f->flow.batch)) {
                if (!parsed) {
                    event = sb_json_parse(ev->ev.body, strlen(ev->ev.body), NULL);
                    parsed = true;
                }
                enum defer_outcome out;
                int64_t due = 0;
                rc = sbd_defer_event(st, f, ir, ev->ev.id, event, b->received_at, &out, &due, err);
                if (rc) {
                    json_decref(event);
                    return rc;
                }
                if (out == DEFER_HELD) {
                    ir->deferred = true;
                    if (!b->defer_due || due < b->defer_due)
                        b->defer_due = due;
                    continue;
                }
            }
            if (f && (f->flow.idempotency || f->flow.rate_limit || f->flow.singleton)) {
                if (!parsed) {
                    event = sb_json_parse(ev->ev.body, strlen(ev->ev.body), NULL);
                    parsed = true;
                }
                const char *why = NULL;
                rc = sbd_flow_admit(st, f, ir->run_id, event, b->received_at, &b->cancels,
                                    &b->ncancels, &why, err);
                if (rc < 0) {
                    json_decref(event);
                    return rc;
                }
                if (rc == FLOW_SKIP) {
                    ir->skipped = true;
                    rc = 0;
                    continue;
                }
            }
            if ((rc = sbd_ingest_insert_run(st, ir->run_id, ir->function_id, ir->app_id,
                                            ir->event_id[0] ? ir->event_id : ev->ev.id,
                                            b->received_at, ir->qid, ir->due_at, err))) {
                json_decref(event);
                return rc;
            }
        }
        json_decref(event);
        /* open waitForEvent waits this event satisfies, in this transaction */
        if ((rc = sb_waits_on_event(st, sbd->engine, ev->ev.name, ev->ev.body, &b->resolved,
                                    &b->nresolved, err)))
            return rc;
        /* running runs this event cancels (cancelOn), recorded durably */
        if (b->snap) {
            struct rule_ctx rctx = { st, b, ev->ev.body, 0, err };
            sb_snap_cancel_rules(b->snap, ev->ev.name, on_cancel_rule, &rctx);
            if (rctx.rc)
                return rctx.rc;
        }
    }
    return 0;
}

void sbd_ingest_committed(struct sbd *sbd, struct ingest_batch *b)
{
    size_t total = 0, skipped = 0, deferred = 0;
    b->duplicates = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->events[i].duplicate) {
            b->duplicates++;
            continue;
        }
        for (size_t j = 0; j < b->events[i].nruns; j++) {
            if (b->events[i].runs[j].skipped)
                skipped++;
            else if (b->events[i].runs[j].deferred)
                deferred++;
            else
                total++;
        }
    }
    SBD_COUNT_N(runs_skipped, skipped);
    SBD_COUNT_N(events_deferred, deferred);
    if (b->defer_due)
        sb_scheduler_kick(sbd->scheduler); /* a deferred start may now be due sooner */
    if (deferred) /* a debounce may have let go of an event someone waits on */
        sb_waiters_notify(sbd->waiters, "", NULL);
    struct new_run *runs = total ? calloc(total, sizeof *runs) : NULL;
    size_t k = 0;
    for (size_t i = 0; runs && i < b->n; i++) {
        struct ingest_event *ev = &b->events[i];
        if (ev->duplicate)
            continue;
        for (size_t j = 0; j < ev->nruns; j++) {
            struct ingest_run *ir = &ev->runs[j];
            if (ir->skipped || ir->deferred)
                continue;
            memcpy(runs[k].run_id, ir->run_id, sizeof runs[k].run_id);
            memcpy(runs[k].event_id, ir->event_id[0] ? ir->event_id : ev->ev.id,
                   sizeof runs[k].event_id);
            runs[k].function_id = ir->function_id;
            ir->function_id = NULL;
            runs[k].event = ir->load_events ? NULL : strdup(ev->ev.body);
            runs[k].qid = ir->qid;
            runs[k].due_at = ir->due_at ? ir->due_at : b->received_at;
            k++;
        }
    }
    /* If the array could not be allocated the runs are still committed:
     * the next start picks them up from the queue. */
    if (runs) {
        sb_engine_add_runs(sbd->engine, runs, k);
        free(runs);
    }
    if (b->nresolved) {
        sb_engine_waits_resolved(sbd->engine, b->resolved, b->nresolved);
        b->resolved = NULL;
        b->nresolved = 0;
    }
    b->new_runs = k;
    if (b->ncancels) {
        sbd_cancel_committed(sbd, b->cancels, b->ncancels);
        free(b->cancels);
        b->cancels = NULL;
        b->ncancels = 0;
    }
    if (b->emitted)
        SBD_COUNT_N(events_emitted, b->n - b->duplicates);
    else
        SBD_COUNT_N(events_received, b->n - b->duplicates);
    SBD_COUNT_N(events_duplicate, b->duplicates);
    SBD_COUNT_N(runs_started, k);
}
