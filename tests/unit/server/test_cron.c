/* Unit tests for cron expressions and time zones (src/server/cron). The
 * expected instants were computed with Python's zoneinfo. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "server/cron/cron.h"
#include "server/cron/tz.h"

static int64_t next(const char *spec, int64_t after)
{
    struct sb_err err = { 0 };
    struct sbd_cron *c = sbd_cron_parse(spec, &err);
    if (!c)
        fail_msg("'%s': %s", spec, err.msg);
    int64_t t = sbd_cron_next(c, after);
    sbd_cron_free(c);
    return t;
}

static void fields_ranges_steps_lists_names(void **state)
{
    (void)state;
    assert_int_equal(next("*/15 * * * *", 1795798860000), 1795799700000); /* 17:01 -> 17:15 */
    assert_int_equal(next("0 9 * * MON-FRI", 1795773600000),
                     1796029200000);                                    /* Fri 10:00 -> Mon 09:00 */
    assert_int_equal(next("0 0 29 2 *", 1767225600000), 1835395200000); /* next Feb 29: 2028 */
    assert_int_equal(next("*/5 * * * * *", 1795798801000), 1795798805000); /* seconds field */
    assert_int_equal(next("0 0 1 * MON", 1795798801000), 1795996800000);   /* day fields OR */
    assert_int_equal(next("0 12 * JAN,JUL SUN", 1795798801000), 1798977600000);
    assert_int_equal(next("@hourly", 1795798801000), 1795802400000);
    assert_int_equal(next("0 0 * * 7", 1795798801000), next("0 0 * * SUN", 1795798801000));
    assert_int_equal(next("0 0 31 2 *", 1795798801000), -1); /* never */
    /* strictly after: a fire time equal to `after` is not returned */
    assert_int_equal(next("*/15 * * * *", 1795799700000), 1795799700000 + 15 * 60000);
}

static void time_zones_and_daylight_saving(void **state)
{
    (void)state;
    assert_int_equal(next("TZ=Europe/Paris 0 9 * * *", 1795737600000), 1795766400000);
    /* 2027-03-28 02:30 does not exist in Paris: skipped to the next day */
    assert_int_equal(next("TZ=Europe/Paris 30 2 * * *", 1806148800000), 1806280200000);
    /* 2026-10-25 02:30 happens twice: fires once, at the first */
    assert_int_equal(next("TZ=Europe/Paris 30 2 * * *", 1792843200000), 1792888200000);
    assert_int_equal(next("TZ=Europe/Paris 30 2 * * *", 1792888200000), 1792978200000);
    struct sb_err err = { 0 };
    struct sbd_tz *ny = sbd_tz_load("America/New_York", &err);
    assert_non_null(ny);
    assert_int_equal(sbd_tz_offset(ny, 1782864000), -14400); /* 2026-07-01: EDT */
    sbd_tz_free(ny);
}

static void bad_expressions_say_what(void **state)
{
    (void)state;
    const char *bad[] = { "61 * * * *",    "* * *",
                          "* * * * * * *", "TZ=Nowhere/City * * * * *",
                          "@fortnightly",  "1- * * * *",
                          "*/0 * * * *",   "5-1 * * * *",
                          "* * * 13 *",    "TZ=../../etc/passwd * * * * *",
                          "x * * * *",     "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sb_err err = { 0 };
        struct sbd_cron *c = sbd_cron_parse(bad[i], &err);
        if (c)
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(strlen(err.msg) > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fields_ranges_steps_lists_names),
        cmocka_unit_test(time_zones_and_daylight_saving),
        cmocka_unit_test(bad_expressions_say_what),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
