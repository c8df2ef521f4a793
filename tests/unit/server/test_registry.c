/* Unit tests for the registry: parsing a registered function, trigger
 * matching (exact and prefix wildcard), removed functions, snapshots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "server/event.h"
#include "server/registry.h"

/* sbd_snap_match for an event of this name (and no body). */
static void match(const struct sbd_reg_snap *s, const char *name,
                  void (*cb)(void *ctx, const struct sbd_fn *f), void *ctx)
{
    struct sbd_event ev = { .name = (char *)name };
    sbd_snap_match(s, &ev, cb, ctx);
    json_decref(ev.json);
}

static struct sbd_fn *parse(const char *text, struct sb_err *err)
{
    json_t *o = sb_json_parse(text, strlen(text), NULL);
    struct sbd_fn *f = sbd_fn_parse(o, "app", err);
    json_decref(o);
    return f;
}

#define FN(id, trig, extra)                                                                  \
    "{\"id\":\"" id "\",\"name\":\"n\",\"triggers\":[" trig "],\"steps\":{\"step\":{\"id\":" \
    "\"step\",\"runtime\":{\"type\":\"http\",\"url\":\"http://w:3111/api/inngest?fnId=" id   \
    "&stepId=step\"}" extra "}}}"

static void functions_parse_with_defaults_and_limits(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    struct sbd_fn *f = parse(FN("app-a", "{\"event\":\"x/y\"}", ""), &err);
    assert_non_null(f);
    assert_int_equal(f->retries, 4);
    assert_string_equal(f->url_base, "http://w:3111/api/inngest?fnId=app-a&");
    sbd_fn_unref(f);
    f = parse(FN("app-b", "{\"event\":\"x/y\"}", ",\"retries\":{\"attempts\":0}"), &err);
    assert_int_equal(f->retries, 0);
    assert_int_equal(f->flow.finish_timeout_ms, 0);
    sbd_fn_unref(f);
    {
        const char *t =
            "{\"id\":\"app-t\",\"triggers\":[{\"event\":\"a\"}],\"timeouts\":{\"finish\":\"10m\"},"
            "\"steps\":{\"step\":{\"runtime\":{\"url\":\"http://w/api\"}}}}";
        f = parse(t, &err);
        assert_non_null(f);
        assert_int_equal(f->flow.finish_timeout_ms, 600000); /* caps one call's response timeout */
        assert_string_equal(f->url_base, "http://w/api?");
    }
    sbd_fn_unref(f);
    assert_null(parse(
        "{\"id\":\"app-u\",\"triggers\":[{\"event\":\"a\"}],\"timeouts\":{\"finish\":\"soon\"},"
        "\"steps\":{\"step\":{\"runtime\":{\"url\":\"http://w/api\"}}}}",
        &err));
    assert_non_null(strstr(err.msg, "timeouts.finish"));
    {
        const char *bad[] = {
            "{\"id\":\"app-r\",\"triggers\":[{\"event\":\"a\"}],\"rateLimit\":{\"limit\":0,"
            "\"period\":\"1m\"},"
            "\"steps\":{\"step\":{\"runtime\":{\"url\":\"http://w/api\"}}}}",
            "{\"id\":\"app-s\",\"triggers\":[{\"event\":\"a\"}],\"singleton\":{\"mode\":\"later\"},"
            "\"steps\":{\"step\":{\"runtime\":{\"url\":\"http://w/api\"}}}}",
            "{\"id\":\"app-i\",\"triggers\":[{\"event\":\"a\"}],\"idempotency\":\"event.data.\","
            "\"steps\":{\"step\":{\"runtime\":{\"url\":\"http://w/api\"}}}}",
        };
        const char *names[] = { "app-r", "app-s", "app-i" };
        for (int k = 0; k < 3; k++) {
            assert_null(parse(bad[k], &err));
            assert_non_null(strstr(err.msg, names[k])); /* the message names the function */
        }
    }
    assert_null(parse(FN("app-c", "{\"event\":\"x/y\"}", ",\"retries\":{\"attempts\":21}"), &err));
    assert_non_null(strstr(err.msg, "app-c"));
    assert_null(parse(FN("app-d", "", ""), &err));
    assert_non_null(strstr(err.msg, "app-d"));
    assert_null(parse("{\"id\":\"app-e\",\"triggers\":[{\"event\":\"a\"}],\"steps\":{}}", &err));
    assert_non_null(strstr(err.msg, "app-e"));
}

/* A function object with flow-control fields (fields: JSON members to add). */
static struct sbd_fn *parse_flow(const char *fields, struct sb_err *err)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"id\":\"app-f\",\"triggers\":[{\"event\":\"a\"}],%s,"
             "\"steps\":{\"step\":{\"runtime\":{\"url\":\"http://w/api\"}}}}",
             fields);
    return parse(text, err);
}

static void flow_control_settings_parse(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    /* concurrency: a number, an object, an array of two */
    struct sbd_fn *f = parse_flow("\"concurrency\":3", &err);
    assert_non_null(f);
    assert_int_equal(f->flow.nconcurrency, 1);
    assert_int_equal(f->flow.concurrency[0].limit, 3);
    assert_int_equal(f->flow.concurrency[0].scope, SCOPE_FN);
    assert_null(f->flow.concurrency[0].key);
    sbd_fn_unref(f);
    f = parse_flow("\"concurrency\":[{\"limit\":1,\"key\":\"event.data.u\"},"
                   "{\"limit\":5,\"scope\":\"env\",\"key\":\"'shared'\"}]",
                   &err);
    assert_non_null(f);
    assert_int_equal(f->flow.nconcurrency, 2);
    assert_non_null(f->flow.concurrency[0].key);
    assert_int_equal(f->flow.concurrency[1].scope, SCOPE_ENV);
    sbd_fn_unref(f);
    /* throttle and timeouts */
    f = parse_flow("\"throttle\":{\"limit\":2,\"period\":\"6s\",\"burst\":1},"
                   "\"timeouts\":{\"start\":\"1m\",\"finish\":\"2h\"}",
                   &err);
    assert_non_null(f);
    assert_true(f->flow.throttle);
    assert_int_equal(f->flow.throttle_limit, 2);
    assert_int_equal(f->flow.throttle_period_ms, 6000);
    assert_int_equal(f->flow.throttle_burst, 1);
    assert_int_equal(f->flow.start_timeout_ms, 60000);
    assert_int_equal(f->flow.finish_timeout_ms, 7200000);
    sbd_fn_unref(f);
    /* deferred starts */
    f = parse_flow("\"debounce\":{\"period\":\"5s\",\"key\":\"event.data.u\",\"timeout\":\"1m\"}",
                   &err);
    assert_non_null(f);
    assert_true(f->flow.debounce);
    assert_int_equal(f->flow.debounce_period_ms, 5000);
    assert_int_equal(f->flow.debounce_timeout_ms, 60000);
    assert_non_null(f->flow.debounce_key);
    sbd_fn_unref(f);
    f = parse_flow("\"batchEvents\":{\"maxSize\":100,\"timeout\":\"5s\",\"if\":\"event.data.ok\"}",
                   &err);
    assert_non_null(f);
    assert_true(f->flow.batch);
    assert_int_equal(f->flow.batch_max, 100);
    assert_int_equal(f->flow.batch_timeout_ms, 5000);
    assert_null(f->flow.batch_key);
    assert_non_null(f->flow.batch_if);
    sbd_fn_unref(f);
    /* each bad setting is refused with a message naming it */
    const struct {
        const char *fields, *names;
    } bad[] = {
        { "\"concurrency\":[1,2,3]", "at most 2" },
        { "\"concurrency\":{\"limit\":-1}", "concurrency" },
        { "\"concurrency\":{\"limit\":2,\"scope\":\"env\"}", "needs a key" },
        { "\"concurrency\":{\"limit\":2,\"scope\":\"planet\"}", "concurrency.scope" },
        { "\"throttle\":{\"limit\":1}", "throttle needs a period" },
        { "\"throttle\":{\"limit\":1,\"period\":\"10ms\"}", "throttle.period" },
        { "\"throttle\":{\"limit\":1,\"period\":\"1s\",\"burst\":-2}", "throttle.burst" },
        { "\"timeouts\":{\"start\":\"later\"}", "timeouts.start" },
        { "\"timeouts\":\"1m\"", "timeouts must be an object" },
        { "\"debounce\":{\"key\":\"event.data.u\"}", "debounce needs a period" },
        { "\"debounce\":{\"period\":\"100ms\"}", "debounce.period" },
        { "\"debounce\":{\"period\":\"1s\",\"key\":\"event.data.\"}", "debounce.key" },
        { "\"batchEvents\":{\"timeout\":\"1s\"}", "maxSize" },
        { "\"batchEvents\":{\"maxSize\":5000,\"timeout\":\"1s\"}", "maxSize" },
        { "\"batchEvents\":{\"maxSize\":5}", "batchEvents needs a timeout" },
        { "\"batchEvents\":{\"maxSize\":5,\"timeout\":\"1s\",\"if\":\"==\"}", "batchEvents.if" },
        { "\"debounce\":{\"period\":\"1s\"},\"batchEvents\":{\"maxSize\":2,\"timeout\":\"1s\"}",
          "cannot be used together" },
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        assert_null(parse_flow(bad[k].fields, &err));
        if (!strstr(err.msg, bad[k].names))
            fail_msg("%s: message '%s' lacks '%s'", bad[k].fields, err.msg, bad[k].names);
        assert_non_null(strstr(err.msg, "app-f"));
    }
}

struct hits {
    const char *ids[8];
    int n;
};

static void hit(void *ctx, const struct sbd_fn *f)
{
    struct hits *h = ctx;
    h->ids[h->n++] = f->id;
}

static void triggers_match_exact_and_prefix(void **state)
{
    (void)state;
    struct sbd_registry *reg;
    sbd_registry_new(&reg);
    struct sbd_fn *fns[3];
    fns[0] = parse(FN("app-exact", "{\"event\":\"shop/order.created\"}", ""), NULL);
    fns[1] = parse(FN("app-wild", "{\"event\":\"shop/*\"}", ""), NULL);
    fns[2] = parse(FN("app-cron", "{\"cron\":\"* * * * *\"}", ""), NULL);
    sbd_registry_replace_app(reg, "app", fns, 3);
    struct sbd_reg_snap *s = sbd_registry_acquire(reg);
    struct hits h = { 0 };
    match(s, "shop/order.created", hit, &h);
    assert_int_equal(h.n, 2);
    h.n = 0;
    match(s, "shop/refund", hit, &h);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.ids[0], "app-wild");
    h.n = 0;
    match(s, "shopping/x", hit, &h);
    assert_int_equal(h.n, 0);
    assert_non_null(sbd_snap_find(s, "app-cron"));

    /* a sync without app-wild: it stops triggering, old snapshot unchanged */
    sbd_registry_replace_app(reg, "app", fns, 1);
    struct sbd_reg_snap *s2 = sbd_registry_acquire(reg);
    h.n = 0;
    match(s2, "shop/refund", hit, &h);
    assert_int_equal(h.n, 0);
    const struct sbd_fn *gone = sbd_snap_find(s2, "app-wild");
    assert_non_null(gone); /* kept for runs in progress */
    assert_true(gone->removed);
    h.n = 0;
    match(s, "shop/refund", hit, &h);
    assert_int_equal(h.n, 1);
    sbd_snap_release(s);
    sbd_snap_release(s2);
    for (int i = 0; i < 3; i++)
        sbd_fn_unref(fns[i]);
    sbd_registry_free(reg);
}

/* A registration refuses an expression outside the subset; the same config
 * read back from the store (accepted by an earlier sysbusd) still loads. */
static void stored_functions_keep_expressions_a_sync_refuses(void **state)
{
    (void)state;
    const char *cfg =
        FN("app-m", "{\"event\":\"a\",\"expression\":\"event.data.x.matches('a')\"}", "");
    struct sb_err err = { 0 };
    assert_null(parse(cfg, &err));
    assert_non_null(strstr(err.msg, "function 'app-m': trigger 0 'if': unsupported method call "
                                    "'matches' at column 14"));
    json_t *o = sb_json_parse(cfg, strlen(cfg), NULL);
    struct sbd_fn *f = sbd_fn_parse_stored(o, "app", &err);
    assert_non_null(f);
    assert_non_null(f->triggers[0].expr);
    sbd_fn_unref(f);
    json_decref(o);
    /* syntax errors and limits are not lifted */
    const char *broken = FN("app-n", "{\"event\":\"a\",\"expression\":\"event.data.x ==\"}", "");
    o = sb_json_parse(broken, strlen(broken), NULL);
    assert_null(sbd_fn_parse_stored(o, "app", &err));
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(functions_parse_with_defaults_and_limits),
        cmocka_unit_test(flow_control_settings_parse),
        cmocka_unit_test(triggers_match_exact_and_prefix),
        cmocka_unit_test(stored_functions_keep_expressions_a_sync_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
