/* Unit tests for the logger's helpers that keep clients from filling or
 * leaking through the log: sb_redact_path (no event key in a logged path
 * or message) and the per-kind rate limit sb_log_limit_pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "common/log.h"

static const char *redact(const char *in)
{
    static char buf[256];
    return sb_redact_path(in, buf, sizeof buf);
}

static void event_key_segment_is_redacted(void **state)
{
    (void)state;
    assert_string_equal(redact("/e/secret-key"), "/e/<redacted>");
    assert_string_equal(redact("/e/secret-key/"), "/e/<redacted>");
    assert_string_equal(redact("/e/secret/more/segments"), "/e/<redacted>");
    assert_string_equal(redact("//e/secret"), "//e/<redacted>");
    assert_string_equal(redact("/E/secret"), "/E/<redacted>");
    assert_string_equal(redact("/%65/secret"), "/%65/<redacted>");
    assert_string_equal(redact("/%45/secret"), "/%45/<redacted>");
    assert_string_equal(redact("/e/secret?x=1"), "/e/<redacted>?x=1");
}

static void paths_without_a_key_are_unchanged(void **state)
{
    (void)state;
    assert_string_equal(redact("/v1/runs/01J0"), "/v1/runs/01J0");
    assert_string_equal(redact("/v1/events/abc/runs"), "/v1/events/abc/runs");
    assert_string_equal(redact("/e"), "/e");
    assert_string_equal(redact("/e/"), "/e/");
    assert_string_equal(redact("/ee/x"), "/ee/x");
    assert_string_equal(redact("/health"), "/health");
    assert_string_equal(redact(""), "");
    assert_string_equal(redact(NULL), "");
}

static void a_path_quoted_in_a_message_is_redacted(void **state)
{
    (void)state;
    assert_string_equal(
        redact("Failed to send the response for the request for `/e/k1'. Error: x"),
        "Failed to send the response for the request for `/e/<redacted>'. Error: x");
    assert_string_equal(redact("POST /e/k1 and GET /e/k2"),
                        "POST /e/<redacted> and GET /e/<redacted>");
    assert_string_equal(redact("\"/e/k1\""), "\"/e/<redacted>\"");
}

static void a_short_buffer_cuts_but_never_leaks(void **state)
{
    (void)state;
    char small[8];
    assert_string_equal(sb_redact_path("/e/secret", small, sizeof small), "/e/<red");
    char tiny[4];
    assert_string_equal(sb_redact_path("/e/secret", tiny, sizeof tiny), "/e/");
    char one[1];
    assert_string_equal(sb_redact_path("/e/secret", one, sizeof one), "");
}

static void limit_passes_one_line_per_interval_and_counts_the_rest(void **state)
{
    (void)state;
    struct sb_log_limit l;
    sb_log_limit_init(&l, 1000);
    static const char kind[] = "k";
    uint64_t n = 99;
    assert_true(sb_log_limit_pass(&l, kind, 10000, &n));
    assert_int_equal(n, 0);
    for (int i = 1; i <= 5; i++)
        assert_false(sb_log_limit_pass(&l, kind, 10000 + i * 100, &n));
    assert_true(sb_log_limit_pass(&l, kind, 11000, &n));
    assert_int_equal(n, 5); /* the next line says how many were left out */
    assert_false(sb_log_limit_pass(&l, kind, 11999, &n));
    assert_true(sb_log_limit_pass(&l, kind, 12000, &n));
    assert_int_equal(n, 1);
    sb_log_limit_destroy(&l);
}

static void limit_keeps_kinds_apart_and_makes_room_for_new_ones(void **state)
{
    (void)state;
    struct sb_log_limit l;
    sb_log_limit_init(&l, 1000);
    static const char kinds[SB_LOG_LIMIT_KINDS + 1][2] = { { 0 } };
    uint64_t n;
    for (int i = 0; i < SB_LOG_LIMIT_KINDS; i++)
        assert_true(sb_log_limit_pass(&l, kinds[i], 5000 + i, &n));
    assert_false(sb_log_limit_pass(&l, kinds[3], 5100, &n));
    /* one kind more than there are slots: the longest unseen one goes */
    assert_true(sb_log_limit_pass(&l, kinds[SB_LOG_LIMIT_KINDS], 5200, &n));
    assert_false(sb_log_limit_pass(&l, kinds[3], 5300, &n)); /* still known */
    assert_true(sb_log_limit_pass(&l, kinds[0], 5400, &n));  /* evicted: new again */
    sb_log_limit_destroy(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(event_key_segment_is_redacted),
        cmocka_unit_test(paths_without_a_key_are_unchanged),
        cmocka_unit_test(a_path_quoted_in_a_message_is_redacted),
        cmocka_unit_test(a_short_buffer_cuts_but_never_leaks),
        cmocka_unit_test(limit_passes_one_line_per_interval_and_counts_the_rest),
        cmocka_unit_test(limit_keeps_kinds_apart_and_makes_room_for_new_ones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
