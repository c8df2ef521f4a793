/* Unit tests for common/json: canonical (RFC 8785) output, ES number format,
 * key order by UTF-16 code units, parsing limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

static void assert_canonical(const char *in, const char *expected)
{
    json_t *v = sb_json_parse(in, strlen(in), NULL);
    assert_non_null(v);
    char *out = sb_json_dumps(v, NULL);
    assert_string_equal(out, expected);
    free(out);
    json_decref(v);
}

static void numbers_print_as_javascript_does(void **state)
{
    (void)state;
    char b[40];
    struct {
        double d;
        const char *s;
    } cases[] = {
        { 0, "0" },
        { -0.0, "0" },
        { 1, "1" },
        { 1.0, "1" },
        { -1.5, "-1.5" },
        { 0.1, "0.1" },
        { 1e21, "1e+21" },
        { 1e20, "100000000000000000000" },
        { 1e-7, "1e-7" },
        { 0.000001, "0.000001" },
        { 123.456, "123.456" },
        { 5e-324, "5e-324" },
        { 1.7976931348623157e308, "1.7976931348623157e+308" },
        { 9007199254740993.0, "9007199254740992" },
        { 333333333.33333329, "333333333.3333333" },
        { 1e23, "1e+23" },
        { 1.5e-10, "1.5e-10" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sb_json_format_number(cases[i].d, b, sizeof b);
        assert_string_equal(b, cases[i].s);
    }
}

static void objects_are_sorted_and_compact(void **state)
{
    (void)state;
    assert_canonical("{ \"b\" : 1, \"a\" : [ true, false, null ], \"c\": {\"z\":1,\"y\":2} }",
                     "{\"a\":[true,false,null],\"b\":1,\"c\":{\"y\":2,\"z\":1}}");
    /* integers above 2^53 lose precision exactly as JSON.parse does */
    assert_canonical("12345678901234567890", "12345678901234567000");
    assert_canonical("1.0", "1");
    assert_canonical("[1e21, -0, 0.5e-6]", "[1e+21,0,5e-7]");
}

static void strings_escape_minimally(void **state)
{
    (void)state;
    assert_canonical("\"a/b<>\\u00e9\\u2028\"", "\"a/b<>\xc3\xa9\xe2\x80\xa8\"");
    assert_canonical("\"\\b\\f\\n\\r\\t\\u0001\\\"\\\\\"", "\"\\b\\f\\n\\r\\t\\u0001\\\"\\\\\"");
    assert_canonical("\"nul\\u0000inside\"", "\"nul\\u0000inside\"");
}

static void keys_sort_by_utf16_code_units(void **state)
{
    (void)state;
    /* U+1F600 (surrogates D83D DE00) sorts before U+FB01 in UTF-16 order,
     * although its UTF-8 bytes sort after. */
    assert_true(sb_json_keycmp("\xf0\x9f\x98\x80", "\xef\xac\x81") < 0);
    assert_true(sb_json_keycmp("a", "b") < 0);
    assert_true(sb_json_keycmp("ab", "a") > 0);
    assert_int_equal(sb_json_keycmp("same", "same"), 0);
    assert_canonical("{\"\xef\xac\x81\":1,\"\xf0\x9f\x98\x80\":2}",
                     "{\"\xf0\x9f\x98\x80\":2,\"\xef\xac\x81\":1}");
}

static void invalid_json_is_rejected_with_position(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    assert_null(sb_json_parse("{\"a\":", 5, &err));
    assert_int_equal(err.code, SB_EINVAL);
    assert_non_null(strstr(err.msg, "line"));
    assert_null(sb_json_parse("", 0, &err));
}

static void paths_follow_objects(void **state)
{
    (void)state;
    const char *txt = "{\"data\":{\"user\":{\"id\":7}}}";
    json_t *v = sb_json_parse(txt, strlen(txt), NULL);
    int64_t id;
    assert_true(sb_json_as_int(sb_json_path(v, "data.user.id"), &id));
    assert_int_equal(id, 7);
    assert_null(sb_json_path(v, "data.nope.id"));
    json_decref(v);
}


static char *nested(int n)
{
    char *s = malloc((size_t)n * 6 + 2);
    char *p = s;
    for (int i = 0; i < n; i++)
        p += sprintf(p, "{\"a\":");
    *p++ = '1';
    for (int i = 0; i < n; i++)
        *p++ = '}';
    *p = '\0';
    return s;
}

static void input_deeper_than_the_envelope_is_refused_before_parsing(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    char *ok = nested(SB_JSON_MAX_DEPTH), *deep = nested(SB_JSON_MAX_DEPTH + 1);
    json_t *v = sb_json_parse_input(ok, strlen(ok), 0, &err);
    assert_non_null(v);
    json_decref(v);
    assert_null(sb_json_parse_input(deep, strlen(deep), 0, &err));
    assert_int_equal(err.code, SB_ETOOBIG);
    assert_non_null(strstr(err.msg, "nested deeper than 64 levels"));
    /* embedded documents may be deeper, within their own limit */
    v = sb_json_parse_input(deep, strlen(deep), SB_JSON_EMBEDDED, &err);
    assert_non_null(v);
    json_decref(v);
    free(ok);
    free(deep);
    /* brackets inside strings, and escaped quotes, do not count */
    const char *str = "[\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"{{\"]";
    assert_int_equal(sb_json_check_depth(str, strlen(str), 2, &err), 0);
    /* and whatever passes the envelope, the writer can write */
    char *edge = nested(SB_JSON_MAX_DEPTH_EMBEDDED);
    v = sb_json_parse_input(edge, strlen(edge), SB_JSON_EMBEDDED, &err);
    char *out = sb_json_dumps(v, NULL);
    assert_string_equal(out, edge);
    free(out);
    json_decref(v);
    free(edge);
}

static void names_refuse_nul_controls_and_length(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    json_t *o = json_pack("{s:s#, s:s, s:s, s:i}", "nul", "a\0b", (size_t)3, "nl", "a\nb", "ok",
                          "app/event.name", "num", 1);
    assert_int_equal(sb_json_name(json_object_get(o, "nul"), "'name'", 512, &err), SB_EINVAL);
    assert_non_null(strstr(err.msg, "control character"));
    assert_int_equal(sb_json_name(json_object_get(o, "nl"), "'name'", 512, &err), SB_EINVAL);
    assert_int_equal(sb_json_name(json_object_get(o, "ok"), "'name'", 512, &err), 0);
    assert_int_equal(sb_json_name(json_object_get(o, "ok"), "'name'", 5, &err), SB_EINVAL);
    assert_non_null(strstr(err.msg, "longer than 5 bytes"));
    assert_int_equal(sb_json_name(json_object_get(o, "num"), "'name'", 512, &err), SB_EINVAL);
    assert_int_equal(sb_json_name(json_object_get(o, "missing"), "'name'", 512, &err),
                     SB_ENOTFOUND);
    json_decref(o);
}

static void integers_are_exact_in_a_double_or_refused(void **state)
{
    (void)state;
    int64_t n;
    json_t *v = sb_json_parse("9007199254740991", 16, NULL);
    assert_true(sb_json_as_int(v, &n));
    assert_int_equal(n, 9007199254740991LL);
    json_decref(v);
    v = sb_json_parse("9007199254740993", 16, NULL);
    assert_false(sb_json_as_int(v, &n));
    json_decref(v);
    v = sb_json_parse_ints("9007199254740993", 16, NULL);
    assert_false(sb_json_as_int(v, &n));
    json_decref(v);
    v = sb_json_parse("1e20", 4, NULL);
    assert_false(sb_json_as_int(v, &n));
    json_decref(v);
}

static void utf8_scrub_keeps_valid_text_and_marks_the_rest(void **state)
{
    (void)state;
    char cut[] = "caf\xc3\xa9 \xe2\x82"; /* "café " then a euro sign cut in half */
    sb_utf8_scrub(cut);
    assert_string_equal(cut, "caf\xc3\xa9 ??");
    char bad[] = "\xff\xc0\x80ok\xf0\x9f\x98\x80";
    sb_utf8_scrub(bad);
    assert_string_equal(bad, "???ok\xf0\x9f\x98\x80");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numbers_print_as_javascript_does),
        cmocka_unit_test(objects_are_sorted_and_compact),
        cmocka_unit_test(strings_escape_minimally),
        cmocka_unit_test(keys_sort_by_utf16_code_units),
        cmocka_unit_test(invalid_json_is_rejected_with_position),
        cmocka_unit_test(paths_follow_objects),
        cmocka_unit_test(input_deeper_than_the_envelope_is_refused_before_parsing),
        cmocka_unit_test(names_refuse_nul_controls_and_length),
        cmocka_unit_test(integers_are_exact_in_a_double_or_refused),
        cmocka_unit_test(utf8_scrub_keeps_valid_text_and_marks_the_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
