/* steps.c - the step primitives. Each looks its step up by hash (SHA-1 of
 * the id, ":N" appended to the N-th repeat) in the results the server sent.
 * A memoized step returns its result. A new step is either run now (a
 * step.run the server asked for, or the first one found when immediate
 * execution is allowed), planned inside a parallel group, or reported as
 * its operation (Sleep, WaitForEvent, InvokeFunction, StepPlanned); then
 * the call ends (sdk_unwind). See docs/internals/sdk-replay.md. */
#include "sdk_internal.h"
#include "common/crypto.h"
#include "common/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The step's hash; its memoized value (borrowed) or NULL when new. */
static const json_t *step_lookup(sysbus_ctx *c, const char *id, char hash[41])
{
    if (c->in_step) {
        sysbus_fail(c, SYSBUS_NO_RETRY,
                    "step '%s' was called inside another step; steps cannot "
                    "be nested",
                    id);
        sdk_unwind_failure(c);
    }
    if (!id || !*id) {
        sysbus_fail(c, SYSBUS_NO_RETRY, "a step needs an id");
        sdk_unwind_failure(c);
    }
    json_t *count = json_object_get(c->seen, id);
    int64_t n = count ? json_integer_value(count) : 0;
    json_object_set_new(c->seen, id, json_integer(n + 1));
    if (n == 0) {
        sb_sha1_hex(id, strlen(id), hash);
    } else {
        char *full = sysbus_printf(c, "%s:%lld", id, (long long)n);
        sb_sha1_hex(full, strlen(full), hash);
    }
    return json_object_get(c->steps, hash);
}

static json_t *op_new(const char *op, const char *hash, const char *name, const char *id)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "op", op, "id", hash, "name", name, "displayName", id);
}

/* Runs a step.run body now and ends the call with its outcome. */
static _Noreturn void run_now(sysbus_ctx *c, const char *hash, const char *id, sysbus_step_fn fn,
                              void *arg)
{
    c->in_step = true;
    c->failed = false;
    json_t *v = fn(c, arg);
    c->in_step = false;
    json_t *op;
    if (c->failed) {
        json_decref(v);
        bool final = c->fail_mode == SYSBUS_NO_RETRY || c->attempt + 1 >= c->max_attempts;
        op = op_new(final ? "StepFailed" : "StepError", hash, id, id);
        json_object_set(op, "error", c->error);
        c->failed = false; /* the step failed, not the call */
    } else {
        op = op_new("StepRun", hash, id, id);
        json_object_set_new(op, "data", v ? v : json_null());
    }
    sdk_unwind_ops(c, json_pack("[o]", op));
}

/* The server asked for a step this call cannot reach. */
static _Noreturn void not_found(sysbus_ctx *c)
{
    c->resp->status = 500;
    c->resp->body = sdk_step_not_found(c);
    sdk_unwind(c);
}

/* A step that is not memoized. op: what to report when it does not run now
 * (taken). fn: the body of a step.run (NULL for the other kinds). Returns
 * only inside a parallel group (the step was planned). */
static void new_step(sysbus_ctx *c, const char *hash, const char *id, json_t *op, sysbus_step_fn fn,
                     void *arg)
{
    json_array_append_new(c->found, json_string(hash));
    bool targeted = strcmp(c->target, "step") != 0;
    if (targeted && strcmp(c->target, hash) == 0) { /* the step the server asked for */
        if (fn) {
            json_decref(op);
            run_now(c, hash, id, fn, arg);
        }
        sdk_unwind_ops(c, json_pack("[o]", op));
    }
    if (c->in_group) {
        if (!c->group_ops)
            c->group_ops = json_array();
        json_array_append_new(c->group_ops, op);
        if (fn && c->group.nrun++ == 0) {
            memcpy(c->group.hash, hash, sizeof c->group.hash);
            c->group.id = id;
            c->group.fn = fn;
            c->group.arg = arg;
        }
        return;
    }
    if (targeted) { /* a new step before the one asked for: it cannot be reached */
        json_decref(op);
        not_found(c);
    }
    if (fn && !c->disable_immediate) {
        json_decref(op);
        run_now(c, hash, id, fn, arg);
    }
    sdk_unwind_ops(c, json_pack("[o]", op));
}

/* A memoized {"data": X} / {"error": E}: X, or NULL with *error set. */
static const json_t *unwrap(sysbus_ctx *c, const json_t *memo, const json_t **error)
{
    const json_t *e = json_is_object(memo) ? json_object_get(memo, "error") : NULL;
    if (e && !json_object_get(memo, "data")) {
        if (error) {
            *error = e;
            return NULL;
        }
        /* uncaught: the run fails with the step's error */
        c->failed = true;
        c->fail_mode = SYSBUS_NO_RETRY;
        json_decref(c->error);
        c->error = json_deep_copy(e);
        sdk_unwind_failure(c);
    }
    if (json_is_object(memo) && json_object_get(memo, "data"))
        return json_object_get(memo, "data");
    return memo;
}

static const json_t *step_run(sysbus_ctx *c, const char *id, sysbus_step_fn fn, void *arg,
                              const json_t **error)
{
    char hash[41];
    if (error)
        *error = NULL;
    const json_t *memo = step_lookup(c, id, hash);
    if (memo)
        return unwrap(c, memo, error);
    if (!fn) {
        sysbus_fail(c, SYSBUS_NO_RETRY, "step '%s' has no function", id);
        sdk_unwind_failure(c);
    }
    new_step(c, hash, id, op_new("StepPlanned", hash, id, id), fn, arg);
    return NULL; /* planned in a group */
}

const json_t *sysbus_step_run(sysbus_ctx *c, const char *id, sysbus_step_fn fn, void *arg)
{
    return step_run(c, id, fn, arg, NULL);
}

const json_t *sysbus_step_run_try(sysbus_ctx *c, const char *id, sysbus_step_fn fn, void *arg,
                                  const json_t **error)
{
    const json_t *dummy;
    return step_run(c, id, fn, arg, error ? error : &dummy);
}

static void sleep_op(sysbus_ctx *c, const char *id, const char *when, bool until)
{
    char hash[41];
    if (step_lookup(c, id, hash))
        return;
    if (!when || !*when) {
        sysbus_fail(c, SYSBUS_NO_RETRY, "sleep '%s' needs a %s", id, until ? "time" : "duration");
        sdk_unwind_failure(c);
    }
    json_t *op = op_new("Sleep", hash, when, id);
    json_object_set_new(op, "opts", json_pack("{s:s}", until ? "until" : "duration", when));
    new_step(c, hash, id, op, NULL, NULL);
}

void sysbus_step_sleep(sysbus_ctx *c, const char *id, const char *duration)
{
    sleep_op(c, id, duration, false);
}

void sysbus_step_sleep_until(sysbus_ctx *c, const char *id, const char *iso_time)
{
    sleep_op(c, id, iso_time, true);
}

const json_t *sysbus_step_wait_for_event(sysbus_ctx *c, const char *id, const char *event,
                                         const char *if_expr, const char *timeout)
{
    char hash[41];
    const json_t *memo = step_lookup(c, id, hash);
    if (memo)
        return memo; /* the event, or null on timeout */
    if (!event || !*event || !timeout || !*timeout) {
        sysbus_fail(c, SYSBUS_NO_RETRY, "wait_for_event '%s' needs an event and a timeout", id);
        sdk_unwind_failure(c);
    }
    json_t *op = op_new("WaitForEvent", hash, event, id);
    json_t *opts = json_pack("{s:s, s:s}", "event", event, "timeout", timeout);
    if (if_expr && *if_expr)
        json_object_set_new(opts, "if", json_string(if_expr));
    json_object_set_new(op, "opts", opts);
    new_step(c, hash, id, op, NULL, NULL);
    return json_null(); /* planned in a group: no value yet */
}

const json_t *sysbus_step_invoke(sysbus_ctx *c, const char *id, const char *function_id,
                                 const json_t *data, const char *timeout)
{
    char hash[41];
    const json_t *memo = step_lookup(c, id, hash);
    if (memo)
        return unwrap(c, memo, NULL);
    if (!function_id || !*function_id) {
        sysbus_fail(c, SYSBUS_NO_RETRY, "invoke '%s' needs a function id", id);
        sdk_unwind_failure(c);
    }
    json_t *op = op_new("InvokeFunction", hash, id, id);
    json_t *opts = json_pack("{s:s, s:{s:o}}", "function_id", function_id, "payload", "data",
                             data ? json_incref((json_t *)data) : json_object());
    if (timeout && *timeout)
        json_object_set_new(opts, "timeout", json_string(timeout));
    json_object_set_new(op, "opts", opts);
    new_step(c, hash, id, op, NULL, NULL);
    return NULL; /* planned in a group */
}

static json_t *send_body(sysbus_ctx *c, void *arg)
{
    char err[400];
    json_t *ids = sysbus_send_events(c->app, arg, err, sizeof err);
    if (!ids)
        return sysbus_fail(c, SYSBUS_RETRY, "sending events failed: %s", err);
    return json_pack("{s:o}", "ids", ids);
}

const json_t *sysbus_step_send_event(sysbus_ctx *c, const char *id, const json_t *events)
{
    if (!json_is_object(events) && !json_is_array(events)) {
        sysbus_fail(c, SYSBUS_NO_RETRY, "send_event '%s' needs an event object or an array", id);
        sdk_unwind_failure(c);
    }
    return sysbus_step_run(c, id, send_body, (void *)events);
}

void sysbus_parallel_begin(sysbus_ctx *c)
{
    if (c->in_group || c->in_step) {
        sysbus_fail(c, SYSBUS_NO_RETRY, "sysbus_parallel_begin: already in a group or a step");
        sdk_unwind_failure(c);
    }
    c->in_group = true;
    json_decref(c->group_ops);
    c->group_ops = NULL;
    c->group.nrun = 0;
}

void sysbus_parallel_end(sysbus_ctx *c)
{
    if (!c->in_group) {
        sysbus_fail(c, SYSBUS_NO_RETRY, "sysbus_parallel_end without sysbus_parallel_begin");
        sdk_unwind_failure(c);
    }
    c->in_group = false;
    size_t nnew = json_array_size(c->group_ops);
    if (nnew == 0)
        return; /* every step of the group has its result */
    if (strcmp(c->target, "step") != 0)
        not_found(c); /* the step asked for is not in this group */
    if (nnew == 1 && c->group.nrun == 1 && !c->disable_immediate)
        run_now(c, c->group.hash, c->group.id, c->group.fn, c->group.arg);
    json_t *ops = c->group_ops;
    c->group_ops = NULL;
    sdk_unwind_ops(c, ops);
}
