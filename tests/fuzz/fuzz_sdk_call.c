/* Fuzz target: a call to a C worker (the SDK's body handling and replay,
 * exec.c and steps.c). The first byte picks the function and the step the
 * call asks for; the rest is the call body, parsed as serve.c parses it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "sdk/sdk_internal.h"

static json_t *give(sysbus_ctx *c, void *arg)
{
    return json_pack("{s:s, s:i}", "v", (const char *)arg, "attempt", sysbus_attempt(c));
}

static json_t *fail(sysbus_ctx *c, void *arg)
{
    (void)arg;
    return sysbus_fail(c, sysbus_attempt(c) % 2 ? SYSBUS_NO_RETRY : SYSBUS_RETRY, "no");
}

static json_t *everything(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)event;
    (void)user;
    const json_t *err;
    sysbus_step_run(c, "one", give, "1");
    sysbus_step_run_try(c, "maybe", fail, NULL, &err);
    sysbus_parallel_begin(c);
    const json_t *a = sysbus_step_run(c, "a", give, "a");
    const json_t *b = sysbus_step_run(c, "a", give, "a2");
    sysbus_step_sleep(c, "p-nap", "1s");
    sysbus_parallel_end(c);
    sysbus_step_sleep(c, "nap", "1s");
    const json_t *w = sysbus_step_wait_for_event(c, "wait", "x", "async.data.a == 1", "1m");
    const json_t *i = sysbus_step_invoke(c, "inv", "app-x", w, NULL);
    return json_pack("[O?O?O?O?]", a, b, w, i);
}

static json_t *failing(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)user;
    sysbus_step_run(c, "s", fail, NULL);
    return json_incref((json_t *)event);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sysbus_app *app;
    if (!app) {
        struct sysbus_options o = {
            .app_id = "f", .dev = 1, .drain_grace_ms = -1, .register_at_start = 0
        };
        app = sysbus_app_new(&o);
        sysbus_fn_new(app, "everything", everything, NULL);
        sysbus_fn_new(app, "failing", failing, NULL);
    }
    if (size < 1)
        return 0;
    json_t *body = sb_json_parse_ints((const char *)data + 1, size - 1, NULL);
    if (!json_is_object(body) || !json_is_object(json_object_get(body, "event"))) {
        json_decref(body);
        return 0; /* serve.c answers 400 before executing */
    }
    static const char *const targets[] = { "step", "a9993e364706816aba3e25717850c26c9cd0d89d",
                                           "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8" };
    struct sdk_response r;
    sdk_execute(app, sdk_fn_find(app, data[0] & 1 ? "failing" : "everything"), body,
                targets[(data[0] >> 1) % 3], &r);
    if (r.status != 200 && r.status != 206 && r.status != 400 && r.status != 500)
        abort();
    json_decref(r.body);
    json_decref(body);
    return 0;
}
