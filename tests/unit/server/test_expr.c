/* Unit tests for the expression language (src/server/expr): the CEL subset
 * used in trigger `if`s, waitForEvent/cancelOn matches and flow-control keys,
 * and the refusal, at compile time, of everything outside it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
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

#define ANY_VARS (SBD_EXPR_EVENT | SBD_EXPR_ASYNC)

static json_t *run(const char *src)
{
    struct sb_err err = { 0 };
    struct sbd_expr *e = sbd_expr_compile_as(src, ANY_VARS, &err);
    if (!e)
        fail_msg("compile '%s': %s", src, err.msg);
    struct sbd_expr_var vars[] = { { "event", event }, { "async", async_ev } };
    json_t *v = sbd_expr_eval(e, vars, 2, &err);
    sbd_expr_free(e);
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
        struct sbd_expr *e = sbd_expr_compile(bad[i], &err);
        if (e)
            fail_msg("'%s' compiled", bad[i]);
        if (!strstr(err.msg, " at column "))
            fail_msg("'%s': %s", bad[i], err.msg);
    }
    char deep[300];
    memset(deep, '(', 200);
    deep[200] = '1';
    memset(deep + 201, ')', 98);
    deep[299] = '\0';
    struct sb_err err = { 0 };
    assert_null(sbd_expr_compile(deep, &err));
}

static void runtime_errors_are_not_matches(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    struct sbd_expr *e = sbd_expr_compile("event.data.plan > 1 || event.data.email * 2 == 1", &err);
    assert_non_null(e);
    struct sbd_expr_var vars[] = { { "event", event } };
    assert_null(sbd_expr_eval(e, vars, 1, &err));
    assert_non_null(strstr(err.msg, "arithmetic"));
    assert_false(sbd_expr_test(e, vars, 1));
    sbd_expr_free(e);
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail);

/* Compiles src with flags; fails the test unless it is refused with a
 * message containing want. */
static void refused_as(const char *src, unsigned flags, const char *want)
{
    struct sb_err err = { 0 };
    struct sbd_expr *e = sbd_expr_compile_as(src, flags, &err);
    if (e) {
        sbd_expr_free(e);
        fail_msg("'%s' compiled; want a refusal with \"%s\"", src, want);
    }
    if (!strstr(err.msg, want))
        fail_msg("'%s': got \"%s\", want \"%s\"", src, err.msg, want);
}

static void refused(const char *src, const char *want)
{
    refused_as(src, ANY_VARS, want);
}

static void accepted_as(const char *src, unsigned flags)
{
    struct sb_err err = { 0 };
    struct sbd_expr *e = sbd_expr_compile_as(src, flags, &err);
    if (!e)
        fail_msg("'%s' refused: %s", src, err.msg);
    sbd_expr_free(e);
}

/* These used to compile and then fail at every evaluation: never a match. */
static void calls_outside_the_subset_are_refused_naming_them(void **state)
{
    (void)state;
    refused("event.data.x.matches(\"a.*\")", "unsupported method call 'matches' at column 14");
    refused("foo(event.data.x)", "unsupported function call 'foo' at column 1");
    refused("event.data.x.bar()", "unsupported method call 'bar' at column 14");
    refused("matches(event.data.x, 'a.*')", "unsupported function call 'matches' at column 1");
    refused("double(event.data.x) > 1.5", "unsupported function call 'double' at column 1");
    refused("timestamp(event.ts) > 0", "unsupported function call 'timestamp'");
    refused("event.data.n == 1 && event.data.s.lowerAscii() == 'a'",
            "unsupported method call 'lowerAscii' at column 35");
    /* supported names in the wrong form or with the wrong arguments */
    refused("startsWith(event.data.x, 'a')", "unsupported function call 'startsWith' (write x.");
    refused("event.data.x.string()", "unsupported method call 'string' (write string(x))");
    refused("event.data.x.has()", "unsupported method call 'has'");
    refused("size()", "size() takes 1 argument, not 0 at column 1");
    refused("event.data.tags.size(1) == 1", "size() takes 0 arguments, not 1 at column 17");
    refused("event.data.x.startsWith()", "startsWith() takes 1 argument, not 0");
    refused("event.data.x.contains('a', 'b')", "contains() takes 1 argument, not 2");
    refused("has(event)", "has() needs a field selection");
    refused("has(event.data['x'])", "has() needs a field selection");
    refused("has(event.data.x, 1)", "has() takes 1 argument, not 2");
}

static void macros_are_refused_naming_them(void **state)
{
    (void)state;
    refused("event.data.tags.exists(t, t == 'a')", "unsupported macro 'exists' at column 17");
    refused("event.data.tags.all(t, t == 'a')", "unsupported macro 'all'");
    refused("event.data.tags.exists_one(t, t == 'a')", "unsupported macro 'exists_one'");
    refused("size(event.data.tags.map(t, t + 1)) > 0", "unsupported macro 'map' at column 22");
    refused("size(event.data.tags.filter(t, t == 'a')) > 0", "unsupported macro 'filter'");
    refused("all(event.data.tags)", "unsupported macro 'all' at column 1");
}

static void misplaced_in_and_other_syntax_are_refused(void **state)
{
    (void)state;
    refused("in", "'in' needs a value on its left, as in x in [1, 2] at column 1");
    refused("in [1, 2]", "'in' needs a value on its left");
    refused("event.data.x == 1 || in [1]", "as in x in [1, 2] at column 22");
    refused("event.data.x in", "unexpected end of the expression at column 16");
    refused("event.data.x in 'abc'", "'in' needs a list (or a map) on its right, not a string at "
                                     "column 14");
    refused("event.data.x in 5", "not a number");
    refused("event.data.x in null", "not a null");
    refused("event.data.x in (1 == 1)", "not a bool");
    refused("{'a': 1}", "unexpected character '{' at column 1");
    refused("'a\\d' == 'x'", "unknown escape '\\d' in a string at column 3");
    refused("b'abc' == 'x'", "unexpected text after the expression at column 2");
    refused("1e999 > 0", "number out of range at column 1");
    refused("nobody.data == 1", "unknown variable 'nobody' (this expression can use event and "
                                "async) at column 1");
    refused("event.data.x == true1", "unknown variable 'true1'");
}

/* An operator on a literal of the wrong type can only fail when evaluated. */
static void literal_type_errors_are_refused(void **state)
{
    (void)state;
    refused("!5", "'!' applied to a number at column 1");
    refused("-'a' == 1", "'-' applied to a string");
    refused("'a' && event.data.x", "'&&' needs bools, not a string at column 5");
    refused("event.data.x || null", "'||' needs bools, not a null");
    refused("1 + 'a' == 2", "'+' cannot add a number and a string at column 3");
    refused("true + 1 == 2", "'+' applied to a bool");
    refused("[1] + 'a' == 2", "'+' cannot add a list and a string");
    refused("'a' * 2 == 2", "'*' needs numbers, not a string");
    refused("event.data.amount - [1] == 2", "'-' needs numbers, not a list");
    refused("event.data.amount / 0 > 1", "division by zero");
    refused("event.data.amount % 0 == 1", "modulus by zero");
    refused("1 ? true : false", "the condition of '?:' is a number, not a bool");
    refused("size(5) == 1", "size() of a number");
    refused("size(true) == 1", "size() of a bool");
    refused("int('abc') == 1", "int(): 'abc' is not a number");
    refused("int(true) == 1", "int() of a bool");
    refused("'abc'.startsWith(1)", "startsWith() needs strings, not a number");
    refused("(5).endsWith('a')", "endsWith() needs strings, not a number");
    /* what only the data decides is accepted */
    accepted_as("event.data.amount * 2 > event.data.limit + 1", ANY_VARS);
    accepted_as("event.data.a + event.data.b == 'ab' && int(event.data.s) == 3", ANY_VARS);
    accepted_as("event.data.tags + ['x'] == ['a', 'x'] && 'a' + event.data.s == 'ab'", ANY_VARS);
    accepted_as("(event.data.c ? 1 : 'a') == 1 && int('42') == 42 && size([1, 2]) == 2", ANY_VARS);
    accepted_as("1 == 'a' || null == event.data.x || event.data.x in event.data", ANY_VARS);
}

static void variables_are_those_the_caller_provides(void **state)
{
    (void)state;
    refused_as("async.data.id == event.data.id", SBD_EXPR_EVENT,
               "unknown variable 'async' (this expression can use event) at column 1");
    refused_as("event.data.id == 1", SBD_EXPR_ASYNC, "unknown variable 'event'");
    accepted_as("async.data.id == event.data.id", SBD_EXPR_EVENT | SBD_EXPR_ASYNC);
    accepted_as("event", SBD_EXPR_EVENT);
}

/* For expressions stored by an earlier sysbusd: the subset is not checked,
 * syntax and limits are. */
static void unchecked_expressions_keep_syntax_and_limits(void **state)
{
    (void)state;
    accepted_as("event.data.x.matches('a') || nobody(1)", SBD_EXPR_EVENT | SBD_EXPR_UNCHECKED);
    refused_as("event.data.x ==", SBD_EXPR_EVENT | SBD_EXPR_UNCHECKED, "unexpected end");
    char *s = repeat("event", ".a", 100, "");
    refused_as(s, SBD_EXPR_EVENT | SBD_EXPR_UNCHECKED, "nested too deeply");
    free(s);
}

static void conditions_and_priorities_must_be_able_to_be_bools_and_numbers(void **state)
{
    (void)state;
    refused_as("event.data.amount + 1", SBD_EXPR_EVENT | SBD_EXPR_COND,
               "the expression is a number, not a condition (true or false) at column 1");
    refused_as("'pro'", SBD_EXPR_EVENT | SBD_EXPR_COND, "is a string, not a condition");
    refused_as("[true]", SBD_EXPR_EVENT | SBD_EXPR_COND, "is a list, not a condition");
    refused_as("null", SBD_EXPR_EVENT | SBD_EXPR_COND, "is a null, not a condition");
    accepted_as("event.data.flag", SBD_EXPR_EVENT | SBD_EXPR_COND);
    accepted_as("event.data.plan + '-' + event.data.id", SBD_EXPR_EVENT); /* a key */
    /* a priority must be able to be a number */
    refused_as("event.data.vip ? 'high' : 'low'", SBD_EXPR_EVENT | SBD_EXPR_NUM,
               "the expression is a string, not a number at column 1");
    refused_as("event.data.n > 1", SBD_EXPR_EVENT | SBD_EXPR_NUM, "is a bool, not a number");
    accepted_as("event.data.vip ? 60 : -event.data.n", SBD_EXPR_EVENT | SBD_EXPR_NUM);
    accepted_as("event.data.prio", SBD_EXPR_EVENT | SBD_EXPR_NUM);
    /* sbd_expr_compile is a waitForEvent condition over event and async */
    struct sb_err err = { 0 };
    assert_null(sbd_expr_compile("async.data.n + 1", &err));
    assert_non_null(strstr(err.msg, "not a condition"));
    struct sbd_expr *e = sbd_expr_compile("async.data.id == event.data.id", &err);
    assert_non_null(e);
    sbd_expr_free(e);
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * n + tl + 1);
    assert_non_null(s);
    memcpy(s, head, hl);
    for (size_t i = 0; i < n; i++)
        memcpy(s + hl + ul * i, unit, ul);
    memcpy(s + hl + ul * n, tail, tl + 1);
    return s;
}

static void source_length_is_bounded(void **state)
{
    (void)state;
    char *s = repeat("'", "a", SBD_EXPR_MAX_SOURCE - 9, "' == 'a'"); /* 4096 bytes */
    assert_int_equal(strlen(s), SBD_EXPR_MAX_SOURCE);
    accepted_as(s, ANY_VARS);
    free(s);
    s = repeat("'", "a", SBD_EXPR_MAX_SOURCE - 8, "' == 'a'");
    refused(s, "expression of 4097 bytes: at most 4096");
    free(s);
    refused_as(NULL, ANY_VARS, "expression missing");
}

/* Evaluation and freeing recurse once per level of the tree, so its height
 * is bounded however it is built: brackets, unary operators, chains of
 * fields or of binary operators (which the parser builds in a loop). */
static void nesting_depth_is_bounded(void **state)
{
    (void)state;
    char *s = repeat("", "!", 63, "true"); /* 64 levels */
    accepted_as(s, ANY_VARS);
    free(s);
    s = repeat("", "!", 64, "true");
    refused(s, "expression nested too deeply: more than 64 levels at column 64");
    free(s);
    s = repeat("", "(", 200, "1");
    refused(s, "nested too deeply");
    free(s);
    s = repeat("event", ".a", 2000, " == 1");
    refused(s, "nested too deeply");
    free(s);
    s = repeat("event", "[0]", 1300, " == 1");
    refused(s, "nested too deeply");
    free(s);
    s = repeat("true", " || true", 100, "");
    refused(s, "nested too deeply: more than 64 levels (a chain of N '||' or '&&' is N levels");
    free(s);
    s = repeat("1", " + 1", 1000, " > 0");
    refused(s, "nested too deeply");
    free(s);
    s = repeat("event.data.x == 1", " || event.data.x == 1", 40, "");
    accepted_as(s, ANY_VARS);
    free(s);
    s = repeat("event.data.x in [1", ", 1", 1000, "]"); /* wide, not deep */
    accepted_as(s, ANY_VARS);
    free(s);
    s = repeat("", "[", 100, "");
    refused(s, "nested too deeply");
    free(s);
    s = repeat("", "size(", 100, "");
    refused(s, "nested too deeply");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(comparisons_and_logic),
        cmocka_unit_test(lists_strings_and_functions),
        cmocka_unit_test(keys_are_values),
        cmocka_unit_test(syntax_errors_say_where),
        cmocka_unit_test(runtime_errors_are_not_matches),
        cmocka_unit_test(calls_outside_the_subset_are_refused_naming_them),
        cmocka_unit_test(macros_are_refused_naming_them),
        cmocka_unit_test(misplaced_in_and_other_syntax_are_refused),
        cmocka_unit_test(literal_type_errors_are_refused),
        cmocka_unit_test(variables_are_those_the_caller_provides),
        cmocka_unit_test(conditions_and_priorities_must_be_able_to_be_bools_and_numbers),
        cmocka_unit_test(unchecked_expressions_keep_syntax_and_limits),
        cmocka_unit_test(source_length_is_bounded),
        cmocka_unit_test(nesting_depth_is_bounded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
