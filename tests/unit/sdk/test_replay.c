/* Unit tests for the SDK's replay engine (sdk_execute): memoized vs new
 * steps, repeated ids, step and function errors, parallel planning and
 * targeted steps, the other step kinds, and unwinding without leaks (the
 * ASan build checks the arena and kept JSON are freed on every path). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "common/json.h"
#include "sdk/sdk_internal.h"

static sysbus_app *app;
static int body_runs; /* how many times step bodies ran */

static json_t *give(sysbus_ctx *c, void *arg)
{
    (void)c;
    body_runs++;
    return json_pack("{s:s}", "v", (const char *)arg);
}

static json_t *boom(sysbus_ctx *c, void *arg)
{
    body_runs++;
    return sysbus_fail(c, arg ? SYSBUS_NO_RETRY : SYSBUS_RETRY, "boom %d", sysbus_attempt(c));
}

static json_t *three(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)event;
    (void)user;
    sysbus_alloc(c, 100000); /* freed however the call ends */
    const json_t *a = sysbus_step_run(c, "one", give, "1");
    sysbus_step_run(c, "two", give, "2");
    sysbus_step_run(c, "two", give, "2b"); /* a repeated id */
    return json_pack("{s:O}", "first", a);
}

static json_t *failing_step(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)user;
    bool final = json_is_true(json_object_get(event, "final"));
    sysbus_step_run(c, "s", boom, final ? "x" : NULL);
    return json_null();
}

static json_t *catching(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)event;
    (void)user;
    const json_t *err = NULL;
    const json_t *v = sysbus_step_run_try(c, "s", boom, NULL, &err);
    return json_pack("{s:b, s:O?}", "got_value", v != NULL, "error", err);
}

static json_t *failing_fn(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)user;
    sysbus_retry_after(c, 30);
    if (json_is_true(json_object_get(event, "final")))
        return sysbus_fail_named(c, SYSBUS_NO_RETRY, "BadInput", "no %s", "way");
    return sysbus_fail(c, SYSBUS_RETRY, "later");
}

static json_t *parallel(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)user;
    int n = (int)json_integer_value(json_object_get(event, "n"));
    const char *names[] = { "a", "b", "c" };
    const json_t *got[3];
    sysbus_parallel_begin(c);
    for (int i = 0; i < n; i++)
        got[i] = sysbus_step_run(c, names[i], give, (void *)names[i]);
    sysbus_parallel_end(c);
    json_t *r = json_array();
    for (int i = 0; i < n; i++)
        json_array_append(r, (json_t *)got[i]);
    return r;
}

static json_t *kinds(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)event;
    (void)user;
    sysbus_step_sleep(c, "nap", "2s");
    const json_t *w = sysbus_step_wait_for_event(c, "wait", "x/done", "async.data.id == 1", "1m");
    const json_t *inv = sysbus_step_invoke(c, "call", "app-other", NULL, "30s");
    return json_pack("{s:O, s:O}", "waited", w, "invoked", inv);
}

static json_t *nested_inner(sysbus_ctx *c, void *arg)
{
    (void)arg;
    sysbus_step_run(c, "inner", give, "i");
    return NULL;
}

static json_t *nested(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)event;
    (void)user;
    sysbus_step_run(c, "outer", nested_inner, NULL);
    return NULL;
}

static const char *hash(const char *id)
{
    static char h[4][41];
    static int k;
    k = (k + 1) % 4;
    sb_sha1_hex(id, strlen(id), h[k]);
    return h[k];
}

/* Runs fn on a body built from a JSON text; returns the response. */
static struct sdk_response call(const char *fn_id, const char *target, const char *body_json)
{
    json_t *body = json_loads(body_json, 0, NULL);
    assert_non_null(body);
    struct sdk_response r;
    sdk_execute(app, sdk_fn_find(app, fn_id), body, target, &r);
    json_decref(body);
    return r;
}

static int setup(void **state)
{
    (void)state;
    struct sysbus_options o = {
        .app_id = "t", .dev = 1, .drain_grace_ms = -1, .register_at_start = 0
    };
    app = sysbus_app_new(&o);
    sysbus_fn_new(app, "three", three, NULL);
    sysbus_fn_new(app, "failing-step", failing_step, NULL);
    sysbus_fn_new(app, "catching", catching, NULL);
    sysbus_fn_new(app, "failing-fn", failing_fn, NULL);
    sysbus_fn_new(app, "parallel", parallel, NULL);
    sysbus_fn_new(app, "kinds", kinds, NULL);
    sysbus_fn_new(app, "nested", nested, NULL);
    return app->config_error[0] ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    sysbus_app_free(app);
    return 0;
}

static const json_t *op0(const struct sdk_response *r)
{
    assert_int_equal(r->status, 206);
    assert_true(json_is_array(r->body));
    return json_array_get(r->body, 0);
}

static void steps_replay_then_finish(void **state)
{
    (void)state;
    body_runs = 0;
    struct sdk_response r = call("t-three", "step", "{\"event\":{\"name\":\"e\"},\"steps\":{}}");
    const json_t *op = op0(&r);
    assert_string_equal(sb_json_str(op, "op"), "StepRun");
    assert_string_equal(sb_json_str(op, "id"), hash("one"));
    assert_string_equal(sb_json_str(json_object_get(op, "data"), "v"), "1");
    assert_int_equal(body_runs, 1);
    json_decref(r.body);

    char body[600];
    snprintf(body, sizeof body,
             "{\"event\":{},\"steps\":{\"%s\":{\"data\":{\"v\":\"1\"}},\"%s\":{\"data\":2}}}",
             hash("one"), hash("two"));
    r = call("t-three", "step", body);
    op = op0(&r);
    assert_string_equal(sb_json_str(op, "id"), hash("two:1")); /* the repeat */
    assert_int_equal(body_runs, 2); /* memoized steps did not run again */
    json_decref(r.body);

    snprintf(body, sizeof body,
             "{\"event\":{},\"steps\":{\"%s\":{\"data\":{\"v\":\"1\"}},\"%s\":{\"data\":2},"
             "\"%s\":{\"data\":3}}}",
             hash("one"), hash("two"), hash("two:1"));
    r = call("t-three", "step", body);
    assert_int_equal(r.status, 200);
    assert_string_equal(sb_json_str(json_object_get(r.body, "first"), "v"), "1");
    assert_int_equal(body_runs, 2);
    json_decref(r.body);
}

static void step_errors(void **state)
{
    (void)state;
    /* retriable, attempts left: StepError */
    struct sdk_response r =
        call("t-failing-step", "step", "{\"event\":{},\"ctx\":{\"attempt\":0,\"max_attempts\":3}}");
    assert_string_equal(sb_json_str(op0(&r), "op"), "StepError");
    assert_string_equal(sb_json_str(json_object_get(op0(&r), "error"), "message"), "boom 0");
    json_decref(r.body);
    /* last attempt: StepFailed */
    r = call("t-failing-step", "step", "{\"event\":{},\"ctx\":{\"attempt\":2,\"max_attempts\":3}}");
    assert_string_equal(sb_json_str(op0(&r), "op"), "StepFailed");
    json_decref(r.body);
    /* non-retriable: StepFailed at once */
    r = call("t-failing-step", "step",
             "{\"event\":{\"final\":true},\"ctx\":{\"attempt\":0,\"max_attempts\":3}}");
    assert_string_equal(sb_json_str(op0(&r), "op"), "StepFailed");
    json_decref(r.body);
    /* a memoized failure fails the run for good... */
    char body[400];
    snprintf(body, sizeof body,
             "{\"event\":{},\"steps\":{\"%s\":{\"error\":{\"name\":\"Error\",\"message\":\"m\"}}}}",
             hash("s"));
    r = call("t-failing-step", "step", body);
    assert_int_equal(r.status, 400);
    assert_int_equal(r.no_retry, 1);
    assert_string_equal(sb_json_str(r.body, "message"), "m");
    json_decref(r.body);
    /* ...unless caught */
    r = call("t-catching", "step", body);
    assert_int_equal(r.status, 200);
    assert_false(json_is_true(json_object_get(r.body, "got_value")));
    assert_string_equal(sb_json_str(json_object_get(r.body, "error"), "message"), "m");
    json_decref(r.body);
}

static void function_errors(void **state)
{
    (void)state;
    struct sdk_response r = call("t-failing-fn", "step", "{\"event\":{}}");
    assert_int_equal(r.status, 500);
    assert_int_equal(r.no_retry, 0);
    assert_int_equal(r.retry_after_s, 30);
    assert_string_equal(sb_json_str(r.body, "message"), "later");
    json_decref(r.body);
    r = call("t-failing-fn", "step", "{\"event\":{\"final\":true}}");
    assert_int_equal(r.status, 400);
    assert_int_equal(r.no_retry, 1);
    assert_string_equal(sb_json_str(r.body, "name"), "BadInput");
    assert_string_equal(sb_json_str(r.body, "message"), "no way");
    json_decref(r.body);
    r = call("t-nested", "step", "{\"event\":{}}");
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(sb_json_str(r.body, "message"), "cannot be nested"));
    json_decref(r.body);
}

static void parallel_planning(void **state)
{
    (void)state;
    body_runs = 0;
    /* several new steps: all planned, none run */
    struct sdk_response r = call("t-parallel", "step", "{\"event\":{\"n\":3}}");
    assert_int_equal(json_array_size(r.body), 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(sb_json_str(json_array_get(r.body, i), "op"), "StepPlanned");
    assert_string_equal(sb_json_str(json_array_get(r.body, 1), "id"), hash("b"));
    assert_int_equal(body_runs, 0);
    json_decref(r.body);
    /* the server calls one of them by hash: only it runs */
    char body[400];
    snprintf(body, sizeof body,
             "{\"event\":{\"n\":3},\"ctx\":{\"disable_immediate_execution\":true},"
             "\"steps\":{\"%s\":{\"data\":\"a\"}}}",
             hash("a"));
    r = call("t-parallel", hash("c"), body);
    assert_string_equal(sb_json_str(op0(&r), "op"), "StepRun");
    assert_string_equal(sb_json_str(op0(&r), "id"), hash("c"));
    assert_int_equal(body_runs, 1);
    json_decref(r.body);
    /* one new step alone in a group runs at once */
    r = call("t-parallel", "step", "{\"event\":{\"n\":1}}");
    assert_string_equal(sb_json_str(op0(&r), "op"), "StepRun");
    json_decref(r.body);
    /* all done: the group's values are there after the end */
    snprintf(body, sizeof body,
             "{\"event\":{\"n\":2},\"steps\":{\"%s\":{\"data\":\"A\"},\"%s\":{\"data\":\"B\"}}}",
             hash("a"), hash("b"));
    r = call("t-parallel", "step", body);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_array_get(r.body, 1)), "B");
    json_decref(r.body);
    /* a step the run does not reach */
    r = call("t-parallel", "0000000000000000000000000000000000000000", "{\"event\":{\"n\":1}}");
    assert_int_equal(r.status, 500);
    assert_string_equal(sb_json_str(r.body, "error"), "step not found");
    json_decref(r.body);
}

static void other_step_kinds(void **state)
{
    (void)state;
    struct sdk_response r = call("t-kinds", "step", "{\"event\":{}}");
    assert_string_equal(sb_json_str(op0(&r), "op"), "Sleep");
    assert_string_equal(sb_json_str(op0(&r), "name"), "2s");
    json_decref(r.body);
    char body[600];
    snprintf(body, sizeof body, "{\"event\":{},\"steps\":{\"%s\":null}}", hash("nap"));
    r = call("t-kinds", "step", body);
    const json_t *op = op0(&r);
    assert_string_equal(sb_json_str(op, "op"), "WaitForEvent");
    assert_string_equal(sb_json_str(json_object_get(op, "opts"), "event"), "x/done");
    assert_string_equal(sb_json_str(json_object_get(op, "opts"), "if"), "async.data.id == 1");
    json_decref(r.body);
    snprintf(body, sizeof body, "{\"event\":{},\"steps\":{\"%s\":null,\"%s\":null}}", hash("nap"),
             hash("wait"));
    r = call("t-kinds", "step", body);
    op = op0(&r);
    assert_string_equal(sb_json_str(op, "op"), "InvokeFunction");
    assert_string_equal(sb_json_str(json_object_get(op, "opts"), "function_id"), "app-other");
    json_decref(r.body);
    snprintf(body, sizeof body,
             "{\"event\":{},\"steps\":{\"%s\":null,\"%s\":null,\"%s\":{\"data\":{\"ok\":1}}}}",
             hash("nap"), hash("wait"), hash("call"));
    r = call("t-kinds", "step", body);
    assert_int_equal(r.status, 200);
    assert_true(json_is_null(json_object_get(r.body, "waited"))); /* timed out */
    assert_non_null(json_object_get(json_object_get(r.body, "invoked"), "ok"));
    json_decref(r.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(steps_replay_then_finish), cmocka_unit_test(step_errors),
        cmocka_unit_test(function_errors),          cmocka_unit_test(parallel_planning),
        cmocka_unit_test(other_step_kinds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
