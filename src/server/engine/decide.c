/* decide.c - a call's result becomes the run's next state. Engine thread.
 *
 * The in-memory run changes at once; its items are held back (committing >
 * 0) until the writer has committed the same change, and only then
 * dispatched (runop_committed). The transitions (docs/internals/engine.md):
 *   transport failure  -> same item, transport backoff, attempt unchanged,
 *                         while inside the transport window; else an error
 *   error, retriable   -> same item, attempt + 1, retry backoff/Retry-After
 *   error, final       -> run Failed
 *   200 / RunComplete  -> run Completed
 *   StepRun            -> memoize {"data":X}; next discovery call
 *   StepError          -> retry the step (attempt + 1) or, when final, as
 *   StepFailed         -> memoize {"error":E}; next discovery call
 *   StepPlanned (n)    -> one item per planned step (parallel mode); the
 *                         discovery call comes after the last of them
 *   Sleep              -> a timer item (no call) due at the wake time; when it
 *                         fires, the step is memoized as null
 *   WaitForEvent       -> a wait (wait.c) and its timeout item; the step is
 *                         memoized with the matching event, or null at timeout
 *   InvokeFunction     -> a child run and a wait for it (invoke.c); the step is
 *                         memoized with its result or error, or a timeout error
 *   anything else      -> run Failed: unsupported operation */
#include "engine_internal.h"
#include "backoff.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "server/metrics.h"
#include "server/sbd.h"
#include "server/store/store.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_last_error(struct item *it, const char *err)
{
    free(it->last_error);
    it->last_error = err ? strdup(err) : NULL;
}

static void reset_transport(struct item *it)
{
    it->transport_failures = 0;
    it->transport_since = 0;
}

void decide_finish(struct sb_engine *e, struct run *r, struct run_update *op, int status,
                   const char *output, const char *error, int64_t started_at)
{
    if (!op)
        op = runop_new(e, r);
    if (!op) {
        SB_LOG(SB_ERROR, "oom", "cannot end run %s", r->id);
        return;
    }
    op->finish_status = status;
    op->output = output ? strdup(output) : NULL;
    op->error = error ? strdup(error) : NULL;
    op->started_at = started_at;
    r->ended = true;
    engine_run_drop_items(e, r);
    runop_submit(op);
}

static bool memo_has(const struct run *r, const char *hash)
{
    for (size_t i = 0; i < r->nmemo; i++)
        if (strcmp(r->memo[i].hash, hash) == 0)
            return true;
    return false;
}

static bool item_pending_for(const struct run *r, const char *step_id)
{
    for (const struct item *it = r->items; it; it = it->next)
        if (strcmp(it->step_id, step_id) == 0)
            return true;
    return false;
}

static const char *op_display_name(const json_t *op)
{
    const char *n = sb_json_str(op, "displayName");
    if (!n)
        n = sb_json_str(op, "name");
    if (!n)
        n = sb_json_str(json_object_get(op, "userland"), "id");
    return n;
}

/* Schedules the retry of `it` after a retriable failure; records err. */
static void schedule_retry(struct sb_engine *e, struct item *it, const struct call_result *res,
                           const char *err)
{
    int64_t delay = res->retry_after_ms >= 0
                        ? res->retry_after_ms
                        : sb_backoff_retry_ms(it->attempt, e->sbd->cfg.retry_base_ms, 1);
    it->attempt++;
    it->due_at = sb_now_ms() + delay;
    set_last_error(it, err);
}

/* A valid step id from an op: non-empty, short, no quotes or controls. */
static const char *op_step_id(const json_t *op)
{
    const char *id = sb_json_str(op, "id");
    if (!id || !*id || strlen(id) >= 48)
        return NULL;
    for (const char *p = id; *p; p++)
        if ((unsigned char)*p < 0x21 || *p == '"' || *p == '\\' || *p == '&' || *p == '#')
            return NULL;
    return id;
}

/* Wake time of a Sleep op: `name` (or opts.duration) is a duration such as
 * "1h30m" (step.sleep) or an ISO date (step.sleepUntil). -1 if unreadable. */
static int64_t sleep_wake_at(const json_t *op, int64_t now)
{
    const char *v = sb_json_str(json_object_get(op, "opts"), "duration");
    if (!v)
        v = sb_json_str(op, "name");
    if (!v)
        return -1;
    int64_t t;
    if (sb_time_parse_iso(v, &t) == 0)
        return t;
    if (*v == '\0') /* v3 sends "" for sub-second sleeps */
        return now;
    if (sb_duration_parse(v, 0, &t) == 0)
        return now + t;
    return -1;
}

static void handle_ops(struct sb_engine *e, struct item *it, struct call_result *res,
                       const struct fn *f, struct run_update *op)
{
    struct run *r = it->run;
    int max_attempts = f->retries + 1;
    int64_t now = sb_now_ms();
    const char *planned[256];
    size_t nplanned = 0;
    struct {
        const char *hash;
        int64_t wake;
        int flags;
    } timers[64];
    size_t ntimers = 0;
    bool memoized = false, retrying = false;
    size_t i;
    json_t *o;
    json_array_foreach(res->ops, i, o)
    {
        const char *opcode = sb_json_str(o, "op");
        const char *hash = op_step_id(o);
        bool is_run = strcmp(opcode, "StepRun") == 0 || strcmp(opcode, "Step") == 0;
        bool is_error = strcmp(opcode, "StepError") == 0;
        bool is_failed = strcmp(opcode, "StepFailed") == 0;
        if (strcmp(opcode, "RunComplete") == 0) {
            json_t *data = json_object_get(o, "data");
            char *out = sb_json_dumps(data ? data : json_null(), NULL);
            decide_finish(e, r, op, RUN_COMPLETED, out, NULL, it->started_at);
            free(out);
            return;
        }
        if ((is_run || is_error || is_failed || strcmp(opcode, "StepPlanned") == 0) && !hash) {
            char *err = outcome_error_json("InvalidResponse",
                                           "the worker sent a step operation without a valid id");
            decide_finish(e, r, op, RUN_FAILED, NULL, err, it->started_at);
            free(err);
            return;
        }
        struct step_rec s = { .run_id = r->id,
                              .hash = hash,
                              .seq = -1,
                              .name = op_display_name(o),
                              .op = opcode,
                              .attempts = it->attempt + 1,
                              .started_at = it->started_at,
                              .ended_at = now };
        if (is_error && res->retriable && it->attempt + 1 < max_attempts) {
            json_t *err = json_object_get(o, "error");
            char *ej = sb_json_dumps(err ? err : json_null(), NULL);
            s.status = STEP_RUNNING;
            s.error = ej;
            s.ended_at = 0;
            runop_add_step(op, &s);
            schedule_retry(e, it, res, ej);
            free(ej);
            retrying = true;
            SBD_COUNT(step_errors);
            continue;
        }
        if (is_run || is_error || is_failed) {
            json_t *memo;
            if (is_run) {
                json_t *data = json_object_get(o, "data");
                memo = json_pack("{s:O}", "data", data ? data : json_null());
                s.status = STEP_COMPLETED;
            } else {
                json_t *err = json_object_get(o, "error");
                if (!json_is_object(err))
                    err = json_object_get(o, "data");
                memo = json_is_object(err) ? json_pack("{s:O}", "error", err)
                                           : json_pack("{s:{s:s,s:s}}", "error", "name", "Error",
                                                       "message", "step failed");
                s.status = STEP_FAILED;
                SBD_COUNT(step_errors);
            }
            char *mv = sb_json_dumps(memo, NULL);
            json_decref(memo);
            s.seq = (int64_t)r->nmemo;
            s.output = mv;
            if (s.status == STEP_FAILED)
                s.error = mv;
            runop_add_step(op, &s);
            engine_memo_put(e, r, hash, mv);
            free(mv);
            memoized = true;
            continue;
        }
        if (strcmp(opcode, "Sleep") == 0) {
            if (!hash) {
                char *err =
                    outcome_error_json("InvalidResponse", "a Sleep operation without an id");
                decide_finish(e, r, op, RUN_FAILED, NULL, err, it->started_at);
                free(err);
                return;
            }
            int64_t wake = sleep_wake_at(o, now);
            if (wake < 0) {
                char msg[300];
                snprintf(msg, sizeof msg, "cannot read the sleep duration or date '%.100s'",
                         sb_json_str(o, "name") ? sb_json_str(o, "name") : "");
                char *err = outcome_error_json("InvalidSleep", msg);
                decide_finish(e, r, op, RUN_FAILED, NULL, err, it->started_at);
                free(err);
                return;
            }
            if (!memo_has(r, hash) && !item_pending_for(r, hash) && ntimers < 64) {
                timers[ntimers].hash = hash;
                timers[ntimers].wake = wake;
                timers[ntimers].flags = ITEM_SLEEP;
                ntimers++;
                s.status = STEP_RUNNING; /* sleeping */
                s.started_at = now;
                s.ended_at = 0;
                s.attempts = 1;
                runop_add_step(op, &s);
            }
            continue;
        }
        if (strcmp(opcode, "WaitForEvent") == 0) {
            struct wait_reg w;
            int64_t timeout_at = 0;
            char msg[400];
            if (!hash || wait_parse_op(o, now, &w, &timeout_at, msg, sizeof msg) != 0) {
                char *err = outcome_error_json("InvalidWaitForEvent",
                                               hash ? msg : "a WaitForEvent without an id");
                decide_finish(e, r, op, RUN_FAILED, NULL, err, it->started_at);
                free(err);
                return;
            }
            if (memo_has(r, hash) || item_pending_for(r, hash) || ntimers >= 64) {
                wait_reg_free(&w);
                continue;
            }
            struct wait_reg *nw = realloc(op->waits, (op->nwaits + 1) * sizeof *nw);
            if (!nw || !(w.hash = strdup(hash)) || !(w.trigger_event = strdup(r->event))) {
                if (nw)
                    op->waits = nw;
                wait_reg_free(&w);
                SB_LOG(SB_ERROR, "oom", "cannot register a wait of run %s", r->id);
                continue;
            }
            op->waits = nw;
            /* events stored since this call was dispatched may already match */
            static const uint8_t zero[10];
            sb_ulid_from_parts(it->dispatched_at ? it->dispatched_at : now, zero, w.min_event_id);
            op->waits[op->nwaits++] = w;
            timers[ntimers].hash = hash;
            timers[ntimers].wake = timeout_at;
            timers[ntimers].flags = ITEM_WAIT;
            ntimers++;
            s.status = STEP_RUNNING; /* waiting */
            s.started_at = now;
            s.ended_at = 0;
            s.attempts = 1;
            runop_add_step(op, &s);
            continue;
        }
        if (strcmp(opcode, "InvokeFunction") == 0) {
            struct invoke_reg inv;
            int64_t timeout_at = 0;
            char msg[400];
            if (!hash) {
                char *err =
                    outcome_error_json("InvalidResponse", "an InvokeFunction without an id");
                decide_finish(e, r, op, RUN_FAILED, NULL, err, it->started_at);
                free(err);
                return;
            }
            if (memo_has(r, hash) || item_pending_for(r, hash) || ntimers >= 64)
                continue;
            int prc = invoke_prepare(e, r, o, now, &inv, &timeout_at, msg, sizeof msg);
            if (prc < 0) {
                invoke_reg_free(&inv);
                char *err = outcome_error_json("InvalidInvoke", msg);
                decide_finish(e, r, op, RUN_FAILED, NULL, err, it->started_at);
                free(err);
                return;
            }
            if (prc > 0) { /* unknown target: the step fails, the function sees it */
                invoke_reg_free(&inv);
                json_t *m = json_pack("{s:{s:s, s:s}}", "error", "name", "Error", "message", msg);
                char *mv = sb_json_dumps(m, NULL);
                json_decref(m);
                s.status = STEP_FAILED;
                s.seq = (int64_t)r->nmemo;
                s.output = s.error = mv;
                runop_add_step(op, &s);
                engine_memo_put(e, r, hash, mv ? mv : "null");
                free(mv);
                memoized = true;
                continue;
            }
            struct invoke_reg *ni = realloc(op->invokes, (op->ninvokes + 1) * sizeof *ni);
            if (!ni || !(inv.hash = strdup(hash))) {
                if (ni)
                    op->invokes = ni;
                invoke_reg_free(&inv);
                SB_LOG(SB_ERROR, "oom", "cannot start an invocation of run %s", r->id);
                continue;
            }
            op->invokes = ni;
            op->invokes[op->ninvokes++] = inv;
            timers[ntimers].hash = hash;
            timers[ntimers].wake = timeout_at;
            timers[ntimers].flags = ITEM_INVOKE;
            ntimers++;
            s.status = STEP_RUNNING; /* waiting for the invoked run */
            s.started_at = now;
            s.ended_at = 0;
            s.attempts = 1;
            runop_add_step(op, &s);
            continue;
        }
        if (strcmp(opcode, "StepPlanned") == 0) {
            if (!memo_has(r, hash) && !item_pending_for(r, hash) && nplanned < 256) {
                size_t k = 0;
                while (k < nplanned && strcmp(planned[k], hash) != 0)
                    k++;
                if (k == nplanned)
                    planned[nplanned++] = hash;
            }
            continue;
        }
        char msg[400];
        snprintf(msg, sizeof msg,
                 "unsupported step operation '%s' in function '%s' (sysbusd does not implement "
                 "it)",
                 opcode, f->id);
        char *err = outcome_error_json("UnsupportedOperation", msg);
        decide_finish(e, r, op, RUN_FAILED, NULL, err, it->started_at);
        free(err);
        return;
    }

    if (retrying && !memoized && nplanned == 0 && ntimers == 0) {
        runop_put_item(op, it);
        runop_submit(op);
        return;
    }
    bool parallel = (it->flags & ITEM_PARALLEL) || nplanned > 0;
    bool is_discovery = strcmp(it->step_id, "step") == 0;
    if (!is_discovery || nplanned > 0 || ntimers > 0) {
        runop_del_item(op, it->id);
        engine_item_free(e, it);
        it = NULL;
    }
    for (size_t k = 0; k < nplanned; k++) {
        struct item *pi = engine_item_new(e, r, sb_engine_alloc_qid(e), planned[k]);
        pi->flags = ITEM_PARALLEL;
        pi->due_at = now;
        runop_put_item(op, pi);
    }
    size_t waits_seen = 0, invokes_seen = 0;
    for (size_t k = 0; k < ntimers; k++) {
        struct item *ti = engine_item_new(e, r, sb_engine_alloc_qid(e), timers[k].hash);
        ti->flags = timers[k].flags | (parallel ? ITEM_PARALLEL : 0);
        ti->due_at = timers[k].wake;
        runop_put_item(op, ti);
        if (timers[k].flags & ITEM_INVOKE)
            op->invokes[invokes_seen++].item_id = ti->id; /* same order as timers[] */
        if (timers[k].flags & ITEM_WAIT) {
            struct wait_reg *w = &op->waits[waits_seen++]; /* same order as timers[] */
            w->item_id = ti->id;
            w->flags = ti->flags;
            w->seq = (int64_t)r->nmemo;
        }
    }
    /* a wait that is the run's only item and resolves at once (an event
     * already arrived) needs the next discovery call in the same commit */
    if (op->nwaits == 1 && r->items && !r->items->next)
        op->waits[0].discovery_qid = sb_engine_alloc_qid(e);
    if (it) {
        /* the discovery item goes on to the next step */
        it->attempt = 0;
        it->started_at = 0;
        it->due_at = now;
        set_last_error(it, NULL);
        runop_put_item(op, it);
    } else if (!r->items) {
        struct item *d = engine_item_new(e, r, sb_engine_alloc_qid(e), "step");
        d->flags = parallel ? ITEM_PARALLEL : 0;
        d->due_at = now;
        runop_put_item(op, d);
    }
    runop_submit(op);
}

/* Completes item `it` (a step that needs no call) with the memoized value,
 * then schedules the discovery call if no other item of the run remains. */
static void complete_without_call(struct sb_engine *e, struct item *it, const char *memo,
                                  const char *op_name, int64_t wait_timeout_item)
{
    struct run *r = it->run;
    int64_t now = sb_now_ms();
    struct run_update *op = runop_new(e, r);
    if (!op) {
        it->due_at = now + 1000;
        engine_heap_push(e, it);
        return;
    }
    /* a wait timing out loses to an event that resolved it first: the op
     * is then rolled back (SB_ECONFLICT) and the run rebuilt from the store */
    op->wait_timeout_item = wait_timeout_item;
    struct step_rec s = { .run_id = r->id,
                          .hash = it->step_id,
                          .seq = (int64_t)r->nmemo,
                          .op = op_name,
                          .status = STEP_COMPLETED,
                          .attempts = 1,
                          .output = memo,
                          .ended_at = now };
    runop_add_step(op, &s);
    engine_memo_put(e, r, it->step_id, memo);
    bool parallel = it->flags & ITEM_PARALLEL;
    runop_del_item(op, it->id);
    engine_item_free(e, it);
    if (!r->items) {
        struct item *d = engine_item_new(e, r, sb_engine_alloc_qid(e), "step");
        d->flags = parallel ? ITEM_PARALLEL : 0;
        d->due_at = now;
        runop_put_item(op, d);
    }
    op->progress = true;
    runop_submit(op);
}

void decide_timer(struct sb_engine *e, struct item *it)
{
    it->run->handoff_us = 0; /* a timer is not a hand-off */
    if (it->flags & ITEM_INVOKE)
        complete_without_call(e, it, INVOKE_TIMEOUT_MEMO, "InvokeFunction", it->id);
    else if (it->flags & ITEM_WAIT)
        complete_without_call(e, it, "null", "WaitForEvent", it->id);
    else
        complete_without_call(e, it, "null", "Sleep", 0);
}

void decide_call_result(struct sb_engine *e, struct item *it, struct call_result *res)
{
    struct run *r = it->run;
    struct sbd *sbd = e->sbd;
    int64_t now = sb_now_ms();
    const struct fn *f = sb_snap_find(e->snap, r->function_id);
    struct run_update *op = runop_new(e, r);
    if (!op) {
        SB_LOG(SB_ERROR, "oom", "cannot record the result of a call of run %s", r->id);
        it->due_at = now + 1000;
        engine_heap_push(e, it);
        return;
    }
    if (!f) {
        char msg[600];
        snprintf(msg, sizeof msg, "function '%s' is not registered any more", r->function_id);
        char *err = outcome_error_json("FunctionNotFound", msg);
        decide_finish(e, r, op, RUN_FAILED, NULL, err, it->started_at);
        free(err);
        return;
    }
    if (res->req_version != INT_MIN && res->req_version != r->req_version) {
        r->req_version = res->req_version;
    }
    op->progress = true;
    op->req_version = r->req_version;

    if (res->kind == RES_TRANSPORT) {
        SBD_COUNT(transport_failures);
        if (!it->transport_since)
            it->transport_since = now;
        int64_t failing_for = now - it->transport_since;
        if (failing_for < sbd->cfg.transport_window_ms) {
            int64_t delay =
                sb_backoff_transport_ms(it->transport_failures, sbd->cfg.transport_backoff_max_ms);
            it->transport_failures++;
            it->due_at = now + delay;
            char *err = outcome_error_json("WorkerUnreachable", res->message);
            set_last_error(it, err);
            free(err);
            SB_LOGK(SB_INFO, "call_transport_retry",
                    ((struct sb_lf[]){ LF_S("run_id", r->id), LF_S("function_id", f->id),
                                       LF_I("failures", it->transport_failures),
                                       LF_I("delay_ms", delay) }),
                    "%s; retrying", res->message);
            runop_put_item(op, it);
            runop_submit(op);
            return;
        }
        /* The worker stayed unreachable for the whole window: that now
         * counts as a failed attempt. */
        char msg[600];
        snprintf(msg, sizeof msg, "%s (unreachable for %llds)", res->message,
                 (long long)(failing_for / 1000));
        free(res->message);
        res->message = strdup(msg);
        res->error = outcome_error_json("WorkerUnreachable", msg);
        res->kind = RES_ERROR;
        res->retriable = true;
    }
    reset_transport(it);

    switch (res->kind) {
    case RES_DONE:
        decide_finish(e, r, op, RUN_COMPLETED, res->output, NULL, it->started_at);
        return;
    case RES_ERROR:
        SBD_COUNT(step_errors);
        if (res->retriable && it->attempt + 1 < f->retries + 1) {
            SB_LOGK(SB_INFO, "call_error_retry",
                    ((struct sb_lf[]){ LF_S("run_id", r->id), LF_S("function_id", f->id),
                                       LF_I("attempt", it->attempt) }),
                    "%s", res->message ? res->message : "error");
            schedule_retry(e, it, res, res->error);
            runop_put_item(op, it);
            runop_submit(op);
        } else {
            decide_finish(e, r, op, RUN_FAILED, NULL, res->error, it->started_at);
        }
        return;
    case RES_OPS: handle_ops(e, it, res, f, op); return;
    case RES_TRANSPORT: break;
    }
}
