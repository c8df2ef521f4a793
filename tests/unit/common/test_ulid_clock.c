/* Unit tests for common/ulid and common/clock: ULID encoding (including the
 * Inngest server's seeded ids), monotonic order, ISO/HTTP dates, durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/crypto.h"
#include "common/ulid.h"

static void seeded_ulid_matches_inngest_server(void **state)
{
    (void)state;
    /* Header "1743130137367,eii2YKXRVTJPuA==": event index 1 adds 1 to
     * entropy bytes 6..9 (big-endian), as pkg/event/id.go does. */
    uint8_t e[16];
    assert_int_equal(sb_base64_decode("eii2YKXRVTJPuA==", 16, e, sizeof e), 10);
    uint32_t tail = ((uint32_t)e[6] << 24 | (uint32_t)e[7] << 16 | (uint32_t)e[8] << 8 | e[9]) + 1;
    e[6] = (uint8_t)(tail >> 24), e[7] = (uint8_t)(tail >> 16), e[8] = (uint8_t)(tail >> 8),
    e[9] = (uint8_t)tail;
    char id[SB_ULID_SIZE];
    sb_ulid_from_parts(1743130137367, e, id);
    assert_string_equal(id, "01JQDAE4RQF8MBCR55T5AK4KXS");
    assert_int_equal(sb_ulid_time(id), 1743130137367);
}

static void ulids_are_monotonic_within_a_millisecond(void **state)
{
    (void)state;
    char prev[SB_ULID_SIZE], cur[SB_ULID_SIZE];
    sb_ulid_new(1795800000000, prev);
    for (int i = 0; i < 1000; i++) {
        sb_ulid_new(1795800000000, cur);
        assert_true(strcmp(prev, cur) < 0);
        assert_true(sb_ulid_valid(cur));
        memcpy(prev, cur, sizeof prev);
    }
    assert_false(sb_ulid_valid("01JQDAE4RQF8MBCR55T5AK4KX"));
    assert_false(sb_ulid_valid("81JQDAE4RQF8MBCR55T5AK4KXS"));
    assert_false(sb_ulid_valid("01JQDAE4RQF8MBCR55T5AK4KXU"));
}

static void iso_dates_parse_and_format(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(sb_time_parse_iso("2026-11-27T17:00:00Z", &ms), 0);
    assert_int_equal(ms, 1795798800000);
    assert_int_equal(sb_time_parse_iso("2026-11-27T19:00:00.5+02:00", &ms), 0);
    assert_int_equal(ms, 1795798800500);
    assert_int_equal(sb_time_parse_iso("2026-11-27", &ms), 0);
    assert_int_equal(sb_time_parse_iso("2026-11-27T17:00:00", &ms), SB_EINVAL);
    assert_int_equal(sb_time_parse_iso("yesterday", &ms), SB_EINVAL);
    char buf[32];
    sb_time_format_iso(1795798800500, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-27T17:00:00.500Z");
    assert_int_equal(sb_time_parse_http("Fri, 27 Nov 2026 17:00:00 GMT", &ms), 0);
    assert_int_equal(ms, 1795798800000);
    /* regression (found by fuzz_text): absurd years must not overflow */
    assert_int_equal(sb_time_parse_http("Fri,2Nov68990042379 1:0:0GMT", &ms), SB_EINVAL);
    assert_int_equal(sb_time_parse_http("Fri, 27 Nov 99999999999 17:00:00 GMT", &ms), SB_EINVAL);
}

static void durations_parse_like_inngest(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(sb_duration_parse("2s", 0, &ms), 0);
    assert_int_equal(ms, 2000);
    assert_int_equal(sb_duration_parse("1h30m", 0, &ms), 0);
    assert_int_equal(ms, 5400000);
    assert_int_equal(sb_duration_parse("500ms", 0, &ms), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(sb_duration_parse("1w2d", 0, &ms), 0);
    assert_int_equal(ms, 9 * 86400000LL);
    assert_int_equal(sb_duration_parse("1.5s", 0, &ms), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(sb_duration_parse("250", 1, &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(sb_duration_parse("250", 0, &ms), SB_EINVAL);
    assert_int_equal(sb_duration_parse("", 0, &ms), SB_EINVAL);
    assert_int_equal(sb_duration_parse("5x", 0, &ms), SB_EINVAL);
    assert_int_equal(sb_duration_parse("-5s", 0, &ms), SB_EINVAL);
    char buf[32];
    sb_duration_format(5400000, buf, sizeof buf);
    assert_string_equal(buf, "1h30m");
    sb_duration_format(250, buf, sizeof buf);
    assert_string_equal(buf, "250ms");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seeded_ulid_matches_inngest_server),
        cmocka_unit_test(ulids_are_monotonic_within_a_millisecond),
        cmocka_unit_test(iso_dates_parse_and_format),
        cmocka_unit_test(durations_parse_like_inngest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
