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
 *   anything else      -> run Failed: unsupported operation
 * What reaches the store goes through the run_update (runop.c). */
#include "engine_internal.h"
#include "backoff.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "server/metrics.h"
#include "server/sbd.h"
#include "server/store/store.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The error a run ends with when not even its error can be allocated. */
static const char FALLBACK_ERROR[] =
    "{\"message\":\"out of memory while recording the run's end\",\"name\":\"InternalError\"}";

static void set_last_error(struct sbd_item *it, const char *err)
{
    free(it->last_error);
    it->last_error = err ? strdup(err) : NULL;
}

static void reset_transport(struct sbd_item *it)
{
    it->transport_failures = 0;
    it->transport_since = 0;
}

void decide_finish(struct sbd_engine *e, struct sbd_run *r, struct sbd_run_update *op, int status,
                   const char *output, const char *error, int64_t started_at)
{
    if (!op)
        op = runop_new(e, r);
    if (!op) {
        SB_LOG(SB_ERROR, "oom", "cannot end run %s", r->id);
        return;
    }
    if (status == RUN_FAILED && !error)
        error = FALLBACK_ERROR; /* a failed run always says why */
    /* a run that ends starts nothing more: an invocation or a wait that an
     * earlier op of the same answer asked for is not registered */
    runop_drop_pending(op);
    op->finish_status = status;
    op->output = output ? strdup(output) : NULL;
    op->error = error ? strdup(error) : NULL;
    if ((output && !op->output) || (error && !op->error))
        op->alloc_failed = true; /* the writer refuses it; the run is rebuilt and retried */
    op->started_at = started_at;
    r->ended = true;
    engine_run_drop_items(e, r);
    runop_submit(op);
}

void decide_fail(struct sbd_engine *e, struct sbd_run *r, struct sbd_run_update *op, int status,
                 int64_t started_at, const char *name, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *err = outcome_error_json(name, msg);
    decide_finish(e, r, op, status, NULL, err ? err : FALLBACK_ERROR, started_at);
    free(err);
}

static bool memo_has(const struct sbd_run *r, const char *hash)
{
    for (size_t i = 0; i < r->nmemo; i++)
        if (strcmp(r->memo[i].hash, hash) == 0)
            return true;
    return false;
}

static bool item_pending_for(const struct sbd_run *r, const char *step_id)
{
    for (const struct sbd_item *it = r->items; it; it = it->next)
        if (strcmp(it->step_id, step_id) == 0)
            return true;
    return false;
}

/* The step's display name: bounded, printable, or NULL. */
static const char *op_display_name(const json_t *op)
{
    const json_t *cands[] = { json_object_get(op, "displayName"), json_object_get(op, "name"),
                              json_object_get(json_object_get(op, "userland"), "id") };
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++)
        if (sb_json_name(cands[i], "name", SB_MAX_ID, NULL) == 0)
            return json_string_value(cands[i]);
    return NULL;
}

/* Schedules the retry of `it` after a retriable failure; records err. */
static void schedule_retry(struct sbd_engine *e, struct sbd_item *it,
                           const struct sbd_call_result *res, const char *err)
{
    int64_t delay = res->retry_after_ms >= 0
                        ? res->retry_after_ms
                        : sbd_backoff_retry_ms(it->attempt, e->sbd->cfg.retry_base_ms, 1);
    it->attempt++;
    it->due_at = sb_now_ms() + delay;
    set_last_error(it, err);
}

const char *engine_op_step_id(const json_t *op)
{
    const json_t *v = json_object_get(op, "id");
    if (sb_json_name(v, "id", 47, NULL) != 0)
        return NULL;
    const char *id = json_string_value(v);
    for (const char *p = id; *p; p++)
        if ((unsigned char)*p < 0x21 || *p == '"' || *p == '\\' || *p == '&' || *p == '#')
            return NULL;
    return id;
}

/* Wake time of a Sleep op: `name` (or opts.duration) is a duration such as
 * "1h30m" (step.sleep) or an ISO date (step.sleepUntil). 0 with *wake set,
 * or SB_EINVAL when it is unreadable (or before 1970). */
static int sleep_wake_at(const json_t *op, int64_t now, int64_t *wake)
{
    const char *v = sb_json_str(json_object_get(op, "opts"), "duration");
    if (!v)
        v = sb_json_str(op, "name");
    if (!v)
        return SB_EINVAL;
    int64_t t;
    if (sb_time_parse_iso(v, &t) == 0)
        *wake = t;
    else if (*v == '\0') /* v3 sends "" for sub-second sleeps */
        *wake = now;
    else if (sb_duration_parse(v, 0, &t) == 0)
        *wake = now + t;
    else
        return SB_EINVAL;
    return *wake < 0 ? SB_EINVAL : 0; /* a date before 1970 is unreadable too */
}

/* ---- the ops of one response, one handler per op code ---- */

#define MAX_PLANNED 256
#define MAX_TIMERS 64

struct timer {
    const char *hash;
    int64_t wake;
    int flags;
};

/* What the ops of one response add up to. The handlers fill it; the end of
 * handle_ops turns it into queue items. */
struct ops_state {
    struct sbd_engine *e;
    struct sbd_item *it;
    struct sbd_run *r;
    const struct sbd_fn *f;
    const struct sbd_call_result *res;
    struct sbd_run_update *op;
    int64_t now;
    const char *planned[MAX_PLANNED];
    size_t nplanned;
    struct timer timers[MAX_TIMERS];
    size_t ntimers;
    bool memoized, retrying;
};

/* Returned by a handler that ended the run: the remaining ops are ignored. */
#define OPS_ENDED 1

static int ops_fail(struct ops_state *st, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ops_fail(struct ops_state *st, const char *name, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    decide_fail(st->e, st->r, st->op, RUN_FAILED, st->it->started_at, name, "%s", msg);
    return OPS_ENDED;
}

/* The step row of op o, as the handlers start from it. */
static struct sbd_step_rec step_of(const struct ops_state *st, const json_t *o, const char *hash,
                                   const char *opcode)
{
    return (struct sbd_step_rec){ .run_id = st->r->id,
                                  .hash = hash,
                                  .seq = -1,
                                  .name = op_display_name(o),
                                  .op = opcode,
                                  .attempts = st->it->attempt + 1,
                                  .started_at = st->it->started_at,
                                  .ended_at = st->now };
}

int decide_encode_value(const char *key, const json_t *v, size_t max, char **out)
{
    struct sb_buf b = SB_BUF_INIT(max);
    int rc = key ? sb_buf_printf(&b, "{\"%s\":", key) : 0;
    if (!rc)
        rc = sb_json_write(&b, v ? v : json_null());
    if (!rc && key)
        rc = sb_buf_putc(&b, '}');
    *out = rc ? NULL : sb_buf_steal(&b, NULL);
    sb_buf_free(&b);
    return rc ? rc : *out ? 0 : SB_ENOMEM;
}

/* decide_encode_value within MEMO_MAX_BYTES: the text, or NULL with the
 * reason in why. */
static char *memo_encode(const char *key, const json_t *v, const char **why)
{
    char *text;
    int rc = decide_encode_value(key, v, MEMO_MAX_BYTES, &text);
    _Static_assert(MEMO_MAX_BYTES == 128u << 20, "the message names the limit");
    if (rc == SB_ETOOBIG)
        *why = "it is larger than 128 MiB";
    else if (rc)
        *why = rc == SB_ENOMEM ? "out of memory" : "it is nested too deeply";
    return text;
}

/* Records a step that ended: its row and its memoized value. */
static int ops_memoize(struct ops_state *st, struct sbd_step_rec *s, const char *key,
                       const json_t *v)
{
    const char *why = "";
    char *mv = memo_encode(key, v, &why);
    if (!mv)
        return ops_fail(st, "OutputNotStorable", "the %s of step '%s' cannot be stored: %s",
                        strcmp(key, "data") == 0 ? "output" : "error", s->hash, why);
    s->seq = (int64_t)st->r->nmemo;
    s->output = mv;
    if (s->status == STEP_FAILED)
        s->error = mv;
    runop_add_step(st->op, s);
    if (engine_memo_put(st->e, st->r, s->hash, mv) != 0)
        st->op->alloc_failed = true; /* refused by the writer; rebuilt from the store */
    free(mv);
    st->memoized = true;
    return 0;
}

/* A step waiting on something other than a call (a sleep, a wait, an
 * invocation): its row says so, and a timer item ends it at `wake`. */
static void ops_add_timer(struct ops_state *st, struct sbd_step_rec *s, int64_t wake, int flags)
{
    st->timers[st->ntimers++] = (struct timer){ s->hash, wake, flags };
    s->status = STEP_RUNNING;
    s->started_at = st->now;
    s->ended_at = 0;
    s->attempts = 1;
    runop_add_step(st->op, s);
}

static int op_run_complete(struct ops_state *st, const json_t *o, const char *hash)
{
    (void)hash;
    json_t *data = json_object_get(o, "data");
    const char *why = "";
    char *out = memo_encode(NULL, data, &why);
    if (!out)
        return ops_fail(st, "OutputNotStorable", "the function's result cannot be stored: %s", why);
    decide_finish(st->e, st->r, st->op, RUN_COMPLETED, out, NULL, st->it->started_at);
    free(out);
    return OPS_ENDED;
}

static int op_step_run(struct ops_state *st, const json_t *o, const char *hash)
{
    struct sbd_step_rec s = step_of(st, o, hash, sb_json_str(o, "op"));
    s.status = STEP_COMPLETED;
    return ops_memoize(st, &s, "data", json_object_get(o, "data"));
}

static int op_step_failed(struct ops_state *st, const json_t *o, const char *hash)
{
    struct sbd_step_rec s = step_of(st, o, hash, sb_json_str(o, "op"));
    s.status = STEP_FAILED;
    SBD_COUNT(step_errors);
    json_t *err = json_object_get(o, "error");
    if (!json_is_object(err))
        err = json_object_get(o, "data");
    if (json_is_object(err))
        return ops_memoize(st, &s, "error", err);
    json_t *generic = json_pack("{s:s, s:s}", "name", "Error", "message", "step failed");
    int rc = ops_memoize(st, &s, "error", generic);
    json_decref(generic);
    return rc;
}

/* A StepError is retried while attempts remain, else it fails the step. */
static int op_step_error(struct ops_state *st, const json_t *o, const char *hash)
{
    if (!st->res->retriable || st->it->attempt + 1 >= st->f->retries + 1)
        return op_step_failed(st, o, hash);
    json_t *err = json_object_get(o, "error");
    const char *why = "";
    char *ej = memo_encode(NULL, err, &why);
    if (!ej)
        return ops_fail(st, "OutputNotStorable", "the error of step '%s' cannot be stored: %s",
                        hash, why);
    struct sbd_step_rec s = step_of(st, o, hash, "StepError");
    s.status = STEP_RUNNING;
    s.error = ej;
    s.ended_at = 0;
    runop_add_step(st->op, &s);
    schedule_retry(st->e, st->it, st->res, ej);
    free(ej);
    st->retrying = true;
    SBD_COUNT(step_errors);
    return 0;
}

static int op_step_planned(struct ops_state *st, const json_t *o, const char *hash)
{
    (void)o;
    if (memo_has(st->r, hash) || item_pending_for(st->r, hash) || st->nplanned >= MAX_PLANNED)
        return 0; /* done, under way, or planned again by the next discovery call */
    for (size_t k = 0; k < st->nplanned; k++)
        if (strcmp(st->planned[k], hash) == 0)
            return 0;
    st->planned[st->nplanned++] = hash;
    return 0;
}

/* Is there room for one more timer, and is the step not known already? */
static bool timer_wanted(const struct ops_state *st, const char *hash)
{
    return !memo_has(st->r, hash) && !item_pending_for(st->r, hash) && st->ntimers < MAX_TIMERS;
}

static int op_sleep(struct ops_state *st, const json_t *o, const char *hash)
{
    int64_t wake;
    if (sleep_wake_at(o, st->now, &wake) != 0)
        return ops_fail(st, "InvalidSleep", "cannot read the sleep duration or date '%.100s'",
                        sb_json_str(o, "name") ? sb_json_str(o, "name") : "");
    if (timer_wanted(st, hash)) {
        struct sbd_step_rec s = step_of(st, o, hash, "Sleep");
        ops_add_timer(st, &s, wake, ITEM_SLEEP);
    }
    return 0;
}

static int op_wait_for_event(struct ops_state *st, const json_t *o, const char *hash)
{
    struct sbd_wait_reg w;
    int64_t timeout_at = 0;
    struct sb_err err = { 0 };
    if (wait_parse_op(o, st->now, &w, &timeout_at, &err) != 0)
        return ops_fail(st, "InvalidWaitForEvent", "%.399s", err.msg);
    if (!timer_wanted(st, hash)) {
        wait_reg_free(&w);
        return 0;
    }
    struct sbd_run_update *op = st->op;
    struct sbd_wait_reg *nw = realloc(op->waits, (op->nwaits + 1) * sizeof *nw);
    if (nw)
        op->waits = nw;
    if (!nw || !(w.hash = strdup(hash)) || !(w.trigger_event = strdup(st->r->event))) {
        wait_reg_free(&w);
        return ops_fail(st, "InternalError", "out of memory registering the wait of step '%s'",
                        hash);
    }
    /* events stored since this call was dispatched may already match */
    static const uint8_t zero[10];
    sb_ulid_from_parts(st->it->dispatched_at ? st->it->dispatched_at : st->now, zero,
                       w.min_event_id);
    op->waits[op->nwaits++] = w;
    struct sbd_step_rec s = step_of(st, o, hash, "WaitForEvent");
    ops_add_timer(st, &s, timeout_at, ITEM_WAIT);
    return 0;
}

static int op_invoke(struct ops_state *st, const json_t *o, const char *hash)
{
    if (!timer_wanted(st, hash))
        return 0;
    struct sbd_invoke_reg inv;
    int64_t timeout_at = 0;
    struct sb_err err = { 0 };
    int prc = invoke_prepare(st->e, st->r, o, st->now, &inv, &timeout_at, &err);
    if (prc && prc != SB_ENOTFOUND) {
        invoke_reg_free(&inv);
        return ops_fail(st, "InvalidInvoke", "%.399s", err.msg);
    }
    struct sbd_step_rec s = step_of(st, o, hash, "InvokeFunction");
    if (prc == SB_ENOTFOUND) { /* unknown target: the step fails, the function sees it */
        invoke_reg_free(&inv);
        json_t *ej = json_pack("{s:s, s:s}", "name", "Error", "message", err.msg);
        s.status = STEP_FAILED;
        int rc =
            ej ? ops_memoize(st, &s, "error", ej) : ops_fail(st, "InternalError", "out of memory");
        json_decref(ej);
        return rc;
    }
    struct sbd_run_update *op = st->op;
    struct sbd_invoke_reg *ni = realloc(op->invokes, (op->ninvokes + 1) * sizeof *ni);
    if (ni)
        op->invokes = ni;
    if (!ni || !(inv.hash = strdup(hash))) {
        invoke_reg_free(&inv);
        return ops_fail(st, "InternalError", "out of memory starting the invocation of step '%s'",
                        hash);
    }
    op->invokes[op->ninvokes++] = inv;
    ops_add_timer(st, &s, timeout_at, ITEM_INVOKE);
    return 0;
}

typedef int (*op_handler)(struct ops_state *st, const json_t *o, const char *hash);

/* The step operations sysbusd implements. needs_id: the op names a step
 * (its "id", checked by engine_op_step_id, is passed to the handler). */
static const struct op_def {
    const char *name;
    op_handler handle;
    bool needs_id;
} OP_TABLE[] = {
    { "RunComplete", op_run_complete, false },
    { "StepRun", op_step_run, true },
    { "Step", op_step_run, true },
    { "StepError", op_step_error, true },
    { "StepFailed", op_step_failed, true },
    { "StepPlanned", op_step_planned, true },
    { "Sleep", op_sleep, true },
    { "WaitForEvent", op_wait_for_event, true },
    { "InvokeFunction", op_invoke, true },
};

static const struct op_def *op_find(const char *name)
{
    for (size_t i = 0; i < sizeof OP_TABLE / sizeof OP_TABLE[0]; i++)
        if (strcmp(OP_TABLE[i].name, name) == 0)
            return &OP_TABLE[i];
    return NULL;
}

/* Runs each op through its handler; OPS_ENDED when one ended the run. */
static int apply_ops(struct ops_state *st)
{
    size_t i;
    json_t *o;
    json_array_foreach(st->res->ops, i, o)
    {
        const char *opcode = sb_json_str(o, "op"); /* checked by outcome_parse */
        const struct op_def *def = op_find(opcode);
        if (!def)
            return ops_fail(st, "UnsupportedOperation",
                            "unsupported step operation '%.64s' in function '%s' (sysbusd does "
                            "not implement it)",
                            opcode, st->f->id);
        const char *hash = def->needs_id ? engine_op_step_id(o) : NULL;
        if (def->needs_id && !hash)
            return ops_fail(st, "InvalidResponse",
                            "the worker sent a step operation without a valid id (%s)", opcode);
        if (def->handle(st, o, hash) == OPS_ENDED)
            return OPS_ENDED;
    }
    return 0;
}

/* The run goes on after its ops: planned steps and timers become items, the
 * discovery call follows when nothing else is pending. */
static void schedule_after_ops(struct ops_state *st)
{
    struct sbd_engine *e = st->e;
    struct sbd_run *r = st->r;
    struct sbd_run_update *op = st->op;
    struct sbd_item *it = st->it;
    int64_t now = st->now;
    bool parallel = (it->flags & ITEM_PARALLEL) || st->nplanned > 0;
    bool is_discovery = strcmp(it->step_id, "step") == 0;
    if (!is_discovery || st->nplanned > 0 || st->ntimers > 0) {
        runop_del_item(op, it->id);
        engine_item_free(e, it);
        it = NULL;
    }
    for (size_t k = 0; k < st->nplanned; k++) {
        struct sbd_item *pi = engine_item_new(e, r, sbd_engine_alloc_qid(e), st->planned[k]);
        pi->flags = ITEM_PARALLEL;
        pi->due_at = now;
        runop_put_item(op, pi);
    }
    size_t waits_seen = 0, invokes_seen = 0;
    for (size_t k = 0; k < st->ntimers; k++) {
        struct sbd_item *ti = engine_item_new(e, r, sbd_engine_alloc_qid(e), st->timers[k].hash);
        ti->flags = st->timers[k].flags | (parallel ? ITEM_PARALLEL : 0);
        ti->due_at = st->timers[k].wake;
        runop_put_item(op, ti);
        if (st->timers[k].flags & ITEM_INVOKE)
            op->invokes[invokes_seen++].item_id = ti->id; /* same order as timers[] */
        if (st->timers[k].flags & ITEM_WAIT) {
            struct sbd_wait_reg *w = &op->waits[waits_seen++]; /* same order as timers[] */
            w->item_id = ti->id;
            w->flags = ti->flags;
            w->seq = (int64_t)r->nmemo;
        }
    }
    /* a wait that is the run's only item and resolves at once (an event
     * already arrived) needs the next discovery call in the same commit */
    if (op->nwaits == 1 && r->items && !r->items->next)
        op->waits[0].discovery_qid = sbd_engine_alloc_qid(e);
    if (it) {
        /* the discovery item goes on to the next step */
        it->attempt = 0;
        it->started_at = 0;
        it->due_at = now;
        set_last_error(it, NULL);
        runop_put_item(op, it);
    } else if (!r->items) {
        struct sbd_item *d = engine_item_new(e, r, sbd_engine_alloc_qid(e), "step");
        d->flags = parallel ? ITEM_PARALLEL : 0;
        d->due_at = now;
        runop_put_item(op, d);
    }
}

static void handle_ops(struct sbd_engine *e, struct sbd_item *it, struct sbd_call_result *res,
                       const struct sbd_fn *f, struct sbd_run_update *op)
{
    struct ops_state st = {
        .e = e, .it = it, .r = it->run, .f = f, .res = res, .op = op, .now = sb_now_ms()
    };
    if (apply_ops(&st) == OPS_ENDED)
        return;
    if (st.retrying && !st.memoized && st.nplanned == 0 && st.ntimers == 0) {
        runop_put_item(op, it); /* only a step error to retry */
        runop_submit(op);
        return;
    }
    schedule_after_ops(&st);
    runop_submit(op);
}

/* Completes item `it` (a step that needs no call) with the memoized value,
 * then schedules the discovery call if no other item of the run remains. */
static void complete_without_call(struct sbd_engine *e, struct sbd_item *it, const char *memo,
                                  const char *op_name, int64_t wait_timeout_item)
{
    struct sbd_run *r = it->run;
    int64_t now = sb_now_ms();
    struct sbd_run_update *op = runop_new(e, r);
    if (!op) {
        it->due_at = now + 1000;
        engine_heap_push(e, it);
        return;
    }
    /* a wait timing out loses to an event that resolved it first: the op
     * is then rolled back (SB_ECONFLICT) and the run rebuilt from the store */
    op->wait_timeout_item = wait_timeout_item;
    struct sbd_step_rec s = { .run_id = r->id,
                              .hash = it->step_id,
                              .seq = (int64_t)r->nmemo,
                              .op = op_name,
                              .status = STEP_COMPLETED,
                              .attempts = 1,
                              .output = memo,
                              .ended_at = now };
    runop_add_step(op, &s);
    if (engine_memo_put(e, r, it->step_id, memo) != 0)
        op->alloc_failed = true;
    bool parallel = it->flags & ITEM_PARALLEL;
    runop_del_item(op, it->id);
    engine_item_free(e, it);
    if (!r->items) {
        struct sbd_item *d = engine_item_new(e, r, sbd_engine_alloc_qid(e), "step");
        d->flags = parallel ? ITEM_PARALLEL : 0;
        d->due_at = now;
        runop_put_item(op, d);
    }
    op->progress = true;
    runop_submit(op);
}

void decide_timer(struct sbd_engine *e, struct sbd_item *it)
{
    it->run->handoff_us = 0; /* a timer is not a hand-off */
    if (it->flags & ITEM_INVOKE)
        complete_without_call(e, it, INVOKE_TIMEOUT_MEMO, "InvokeFunction", it->id);
    else if (it->flags & ITEM_WAIT)
        complete_without_call(e, it, "null", "WaitForEvent", it->id);
    else
        complete_without_call(e, it, "null", "Sleep", 0);
}

/* A transport failure (the worker could not be reached): inside the
 * transport window the same item is retried after the transport backoff,
 * without spending an attempt (true: op submitted); after it, res becomes a
 * retriable error (false: the caller goes on with it). */
static bool transport_retry(struct sbd_engine *e, struct sbd_item *it, struct sbd_call_result *res,
                            const struct sbd_fn *f, struct sbd_run_update *op, int64_t now)
{
    const struct sbd *sbd = e->sbd;
    SBD_COUNT(transport_failures);
    if (!it->transport_since)
        it->transport_since = now;
    int64_t failing_for = now - it->transport_since;
    if (failing_for < sbd->cfg.transport_window_ms) {
        int64_t delay =
            sbd_backoff_transport_ms(it->transport_failures, sbd->cfg.transport_backoff_max_ms);
        it->transport_failures++;
        it->due_at = now + delay;
        char *err = outcome_error_json("WorkerUnreachable", res->message);
        set_last_error(it, err);
        free(err);
        SB_LOGK(
            SB_INFO, "call_transport_retry",
            ((struct sb_lf[]){ LF_S("run_id", it->run->id), LF_S("function_id", f->id),
                               LF_I("failures", it->transport_failures), LF_I("delay_ms", delay) }),
            "%s; retrying", res->message);
        runop_put_item(op, it);
        runop_submit(op);
        return true;
    }
    /* The worker stayed unreachable for the whole window: that now counts
     * as a failed attempt. */
    char msg[600];
    snprintf(msg, sizeof msg, "%s (unreachable for %llds)", res->message,
             (long long)(failing_for / 1000));
    free(res->message);
    res->message = strdup(msg);
    res->error = outcome_error_json("WorkerUnreachable", msg);
    res->kind = RES_ERROR;
    res->retriable = true;
    return false;
}

void decide_call_result(struct sbd_engine *e, struct sbd_item *it, struct sbd_call_result *res)
{
    struct sbd_run *r = it->run;
    int64_t now = sb_now_ms();
    const struct sbd_fn *f = sbd_snap_find(e->snap, r->function_id);
    struct sbd_run_update *op = runop_new(e, r);
    if (!op) {
        SB_LOG(SB_ERROR, "oom", "cannot record the result of a call of run %s", r->id);
        it->due_at = now + 1000;
        engine_heap_push(e, it);
        return;
    }
    if (!f) {
        decide_fail(e, r, op, RUN_FAILED, it->started_at, "FunctionNotFound",
                    "function '%s' is not registered any more", r->function_id);
        return;
    }
    if (res->req_version != INT_MIN && res->req_version != r->req_version) {
        r->req_version = res->req_version;
    }
    op->progress = true;
    op->req_version = r->req_version;

    if (res->kind == RES_TRANSPORT && transport_retry(e, it, res, f, op, now))
        return;
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
