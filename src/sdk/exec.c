/* exec.c - one call of a function: set up the context from the call body,
 * run the handler under setjmp, turn how it ended into the HTTP answer
 * (200 output, 206 step operations, 500/400 failure), and free everything
 * the call allocated (the arena, kept JSON) however it ended. Step
 * primitives (steps.c) end a call early through sdk_unwind. */
#include "sdk_internal.h"
#include "common/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the per-call arena ---- */

struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(max_align_t) unsigned char data[];
};

void *sysbus_alloc(sysbus_ctx *c, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct arena_block *b = c->arena;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        b = malloc(sizeof *b + cap);
        if (!b)
            abort();
        b->used = 0;
        b->cap = cap;
        b->next = c->arena;
        c->arena = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

char *sysbus_strdup(sysbus_ctx *c, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = sysbus_alloc(c, n);
    memcpy(d, s, n);
    return d;
}

static char *arena_vprintf(sysbus_ctx *c, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *s = sysbus_alloc(c, n > 0 ? (size_t)n + 1 : 1);
    vsnprintf(s, n > 0 ? (size_t)n + 1 : 1, fmt, ap);
    return s;
}

char *sysbus_printf(sysbus_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = arena_vprintf(c, fmt, ap);
    va_end(ap);
    return s;
}

json_t *sysbus_keep(sysbus_ctx *c, json_t *v)
{
    if (v)
        json_array_append_new(c->kept, v);
    return v;
}

static void ctx_free(sysbus_ctx *c)
{
    while (c->arena) {
        struct arena_block *b = c->arena;
        c->arena = b->next;
        free(b);
    }
    json_decref(c->kept);
    json_decref(c->seen);
    json_decref(c->found);
    json_decref(c->group_ops);
    json_decref(c->error);
}

/* ---- failing ---- */

json_t *sdk_error_json(const char *name, const char *message)
{
    return json_pack("{s:s, s:s, s:s, s:b}", "name", name, "message", message, "stack", "",
                     "__serialized", 1);
}

static json_t *fail_v(sysbus_ctx *c, enum sysbus_fail_mode mode, const char *name, const char *fmt,
                      va_list ap)
{
    c->failed = true;
    c->fail_mode = mode;
    json_decref(c->error);
    c->error = sdk_error_json(name && *name ? name : "Error", arena_vprintf(c, fmt, ap));
    return NULL;
}

json_t *sysbus_fail(sysbus_ctx *c, enum sysbus_fail_mode mode, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(c, mode, NULL, fmt, ap);
    va_end(ap);
    return NULL;
}

json_t *sysbus_fail_named(sysbus_ctx *c, enum sysbus_fail_mode mode, const char *name,
                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(c, mode, name, fmt, ap);
    va_end(ap);
    return NULL;
}

void sysbus_retry_after(sysbus_ctx *c, int64_t seconds)
{
    c->retry_after_s = seconds < 1 ? 1 : seconds > 86400 ? 86400 : seconds;
}

/* ---- accessors ---- */

const char *sysbus_run_id(const sysbus_ctx *c)
{
    return c->run_id;
}

const char *sysbus_function_id(const sysbus_ctx *c)
{
    return c->fn->full_id;
}

int sysbus_attempt(const sysbus_ctx *c)
{
    return c->attempt;
}

const json_t *sysbus_event(const sysbus_ctx *c)
{
    return c->event;
}

const json_t *sysbus_events(const sysbus_ctx *c)
{
    return c->events;
}

sysbus_app *sysbus_ctx_app(const sysbus_ctx *c)
{
    return c->app;
}

/* ---- ending a call ---- */

json_t *sdk_step_not_found(const sysbus_ctx *c)
{
    return json_pack("{s:s, s:s, s:O}", "error", "step not found", "requestedStep", c->target,
                     "foundSteps", c->found);
}

_Noreturn void sdk_unwind(sysbus_ctx *c)
{
    longjmp(c->unwind, 1);
}

_Noreturn void sdk_unwind_ops(sysbus_ctx *c, json_t *ops)
{
    c->resp->status = 206;
    c->resp->body = ops;
    sdk_unwind(c);
}

/* A failure of the function itself: 500 retriable, 400 final. */
static void failure_response(sysbus_ctx *c)
{
    bool final = c->fail_mode == SYSBUS_NO_RETRY;
    c->resp->status = final ? 400 : 500;
    c->resp->no_retry = final;
    c->resp->body = json_incref(c->error);
}

_Noreturn void sdk_unwind_failure(sysbus_ctx *c)
{
    failure_response(c);
    sdk_unwind(c);
}

void sdk_execute(sysbus_app *app, struct sysbus_fn *fn, const json_t *body, const char *target,
                 struct sdk_response *out)
{
    memset(out, 0, sizeof *out);
    out->no_retry = -1;
    sysbus_ctx c = { 0 };
    c.app = app;
    c.fn = fn;
    c.resp = out;
    c.target = target && *target ? target : "step";
    c.kept = json_array();
    c.seen = json_object();
    c.found = json_array();
    c.event = json_object_get(body, "event");
    c.events = json_object_get(body, "events");
    if (!json_is_array(c.events) || json_array_size(c.events) == 0)
        c.events = sysbus_keep(&c, json_pack("[O]", c.event));
    c.steps = json_object_get(body, "steps");
    if (!json_is_object(c.steps))
        c.steps = sysbus_keep(&c, json_object());
    const json_t *ctx = json_object_get(body, "ctx");
    const char *run_id = sb_json_str(ctx, "run_id");
    c.run_id = run_id ? run_id : "";
    int64_t n;
    c.attempt = sb_json_get_int(ctx, "attempt", &n) && n >= 0 ? (int)n : 0;
    c.max_attempts = sb_json_get_int(ctx, "max_attempts", &n) && n > 0 ? (int)n : fn->retries + 1;
    bool b = false;
    c.disable_immediate = sb_json_get_bool(ctx, "disable_immediate_execution", &b) && b;

    /* volatile: read after a longjmp */
    json_t *volatile result = NULL;
    if (setjmp(c.unwind) == 0) {
        result = fn->handler(&c, c.event, fn->user);
        if (c.in_group) {
            json_decref(result);
            result = NULL;
            c.in_group = false;
            sysbus_fail(&c, SYSBUS_NO_RETRY, "sysbus_parallel_begin without sysbus_parallel_end");
        }
        if (c.failed) {
            json_decref(result);
            failure_response(&c);
        } else if (strcmp(c.target, "step") != 0) {
            /* the server asked for a step this run never reached */
            json_decref(result);
            out->status = 500;
            out->body = sdk_step_not_found(&c);
        } else {
            out->status = 200;
            out->body = result ? result : json_null();
        }
    }
    out->retry_after_s = c.retry_after_s;
    ctx_free(&c);
}
