/* Unit tests for the expression language (src/server/expr): the CEL subset
 * used in trigger `if`s, waitForEvent/cancelOn matches and flow-control keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "common/json.h"
#include "server/expr/expr.h"

static json_t *event, *async_ev;

static int setup(void **state)
{
    (void)state;
    const char *e =
        "{\"name\":\"shop/order\",\"data\":{\"id\":\"o-1\",\"amount\":120,\"plan\":\"pro\","
        "\"email\":\"ann@example.com\",\"tags\":[\"a\",\"b\"],\"n\":null,\"nested\":{\"x\":[1,2,3]}"
        "}}";
    const char *a = "{\"name\":\"shop/paid\",\"data\":{\"id\":\"o-1\",\"total\":120.0}}";
    event = sb_json_parse(e, strlen(e), NULL);
    async_ev = sb_json_parse(a, strlen(a), NULL);
    return event && async_ev ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(event);
    json_decref(async_ev);
    return 0;
}

static json_t *run(const char *src)
{
    struct sb_err err = { 0 };
    struct sb_expr *e = sb_expr_compile(src, &err);
    if (!e)
        fail_msg("compile '%s': %s", src, err.msg);
    struct sb_expr_var vars[] = { { "event", event }, { "async", async_ev } };
    json_t *v = sb_expr_eval(e, vars, 2, &err);
    sb_expr_free(e);
    return v;
}

static bool truth(const char *src)
{
    json_t *v = run(src);
    bool t = json_is_true(v);
    json_decref(v);
    return t;
}

static void comparisons_and_logic(void **state)
{
    (void)state;
    assert_true(truth("event.data.amount > 100"));
    assert_true(truth("event.data.amount >= 120 && event.data.amount <= 120"));
    assert_false(truth("event.data.amount < 100"));
    assert_true(truth("async.data.id == event.data.id"));
    assert_true(truth("async.data.total == event.data.amount")); /* 120.0 == 120 */
    assert_true(truth("event.data.plan != 'free' || false"));
    assert_true(truth("!(event.data.plan == \"free\")"));
    assert_true(truth("event.name == 'shop/order'"));
    assert_false(truth("event.data.amount == '120'")); /* types differ */
    assert_false(truth("event.data.amount < 'z'"));    /* never ordered */
    assert_true(truth("'abc' < 'abd'"));
    assert_true(truth("event.data.n == null"));
    assert_true(truth("event.data.missing == null")); /* missing is null */
    assert_true(truth("event.data.amount > 100 ? true : false"));
    assert_true(truth("1 + 2 * 3 == 7 && (1 + 2) * 3 == 9 && 7 % 4 == 3 && -2 < 0"));
    assert_true(truth("'ab' + 'c' == 'abc'"));
}

static void lists_strings_and_functions(void **state)
{
    (void)state;
    assert_true(truth("event.data.plan in ['pro', 'team']"));
    assert_false(truth("event.data.plan in ['free']"));
    assert_true(truth("'a' in event.data.tags"));
    assert_true(truth("'plan' in event.data"));
    assert_true(truth("size(event.data.tags) == 2 && event.data.tags.size() == 2"));
    assert_true(truth("size('héllo') == 5"));
    assert_true(truth("event.data.email.endsWith('@example.com')"));
    assert_true(truth("event.data.email.startsWith('ann')"));
    assert_true(truth("event.data.email.contains('@ex')"));
    assert_true(truth("has(event.data.plan) && !has(event.data.nope)"));
    assert_true(truth("event.data.nested.x[1] == 2 && event.data['plan'] == 'pro'"));
    assert_true(truth("string(event.data.amount) == '120' && int('42') == 42"));
}

static void keys_are_values(void **state)
{
    (void)state;
    json_t *v = run("event.data.id");
    assert_string_equal(json_string_value(v), "o-1");
    json_decref(v);
    v = run("event.data.plan + '-' + event.data.id");
    assert_string_equal(json_string_value(v), "pro-o-1");
    json_decref(v);
}

static void syntax_errors_say_where(void **state)
{
    (void)state;
    const char *bad[] = { "event.data.x ==",
                          "event.data.x = 1",
                          "(a",
                          "a &",
                          "'open",
                          "a ? b",
                          "[1, 2",
                          "a.",
                          "a b",
                          "",
                          "event.data.x ==== 2",
                          "1 +* 2" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sb_err err = { 0 };
        struct sb_expr *e = sb_expr_compile(bad[i], &err);
        if (e)
            fail_msg("'%s' compiled", bad[i]);
        assert_non_null(strstr(err.msg, "position"));
    }
    char deep[300];
    memset(deep, '(', 200);
    deep[200] = '1';
    memset(deep + 201, ')', 98);
    deep[299] = '\0';
    struct sb_err err = { 0 };
    assert_null(sb_expr_compile(deep, &err));
}

static void runtime_errors_are_not_matches(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    struct sb_expr *e = sb_expr_compile("event.data.plan > 1 || event.data.email * 2 == 1", &err);
    assert_non_null(e);
    struct sb_expr_var vars[] = { { "event", event } };
    assert_null(sb_expr_eval(e, vars, 1, &err));
    assert_non_null(strstr(err.msg, "arithmetic"));
    assert_false(sb_expr_test(e, vars, 1));
    sb_expr_free(e);
    e = sb_expr_compile("nobody.data == 1", &err);
    assert_false(sb_expr_test(e, vars, 1)); /* unknown variable */
    sb_expr_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(comparisons_and_logic),
        cmocka_unit_test(lists_strings_and_functions),
        cmocka_unit_test(keys_are_values),
        cmocka_unit_test(syntax_errors_say_where),
        cmocka_unit_test(runtime_errors_are_not_matches),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
