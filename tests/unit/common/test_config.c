/* Unit tests for common/config: precedence flag > env > file > default,
 * types and range errors that name the setting, lists, --help. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"

struct st {
    char *cfg, *host;
    int64_t port, wait;
    bool dev;
    struct sb_strlist keys;
};

static const struct sb_opt opts[] = {
    { "config", SB_OPT_STR, offsetof(struct st, cfg), NULL, "FILE", "config", SB_OPTF_CONFIGFILE, 0,
      0, 0, NULL, 0 },
    { "host", SB_OPT_STR, offsetof(struct st, host), "127.0.0.1", "ADDR", "host", 0, 0, 0, 0, NULL,
      0 },
    { "port", SB_OPT_INT, offsetof(struct st, port), "8288", "PORT", "port", 0, 0, 65535, 0, NULL,
      'p' },
    { "wait", SB_OPT_DURATION, offsetof(struct st, wait), "5s", "D", "wait", 0, 0, 0, 1, NULL, 0 },
    { "dev", SB_OPT_BOOL, offsetof(struct st, dev), "false", NULL, "dev", 0, 0, 0, 0, NULL, 0 },
    { "key", SB_OPT_LIST, offsetof(struct st, keys), NULL, "K", "keys", SB_OPTF_SECRET, 0, 0, 0,
      NULL, 0 },
};
static const struct sb_config_spec spec = {
    "t", "TCFG", "t [OPTIONS]", "summary", NULL, opts, sizeof opts / sizeof opts[0]
};

static int parse(struct st *s, int argc, char **argv, struct sb_err *err)
{
    char *pos[4];
    size_t npos;
    memset(s, 0, sizeof *s);
    return sb_config_parse(&spec, s, argc, argv, pos, 4, &npos, err);
}

static void flags_beat_env_beat_file_beat_defaults(void **state)
{
    (void)state;
    char path[] = "/tmp/sbcfgXXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# comment\nport = 1000\nhost = \"file-host\"\nkey = a, b\n");
    fclose(f);
    setenv("TCFG_PORT", "2000", 1);
    struct st s;
    struct sb_err err = { 0 };
    char *argv1[] = { "t", "--config", path, NULL };
    assert_int_equal(parse(&s, 3, argv1, &err), 0);
    assert_int_equal(s.port, 2000);           /* env over file */
    assert_string_equal(s.host, "file-host"); /* file over default */
    assert_int_equal(s.keys.n, 2);
    assert_int_equal(s.wait, 5000); /* default */
    sb_config_free(&spec, &s);
    char *argv2[] = { "t", "--config", path, "-p", "3000", "--key", "x", "--dev", NULL };
    assert_int_equal(parse(&s, 8, argv2, &err), 0);
    assert_int_equal(s.port, 3000); /* flag over env */
    assert_int_equal(s.keys.n, 1);  /* flag list replaces */
    assert_string_equal(s.keys.v[0], "x");
    assert_true(s.dev);
    json_t *dump = sb_config_dump(&spec, &s);
    assert_string_equal(json_string_value(json_array_get(json_object_get(dump, "key"), 0)),
                        "<redacted>");
    json_decref(dump);
    sb_config_free(&spec, &s);
    unsetenv("TCFG_PORT");
    unlink(path);
}

static void bad_values_name_the_setting(void **state)
{
    (void)state;
    struct st s;
    struct sb_err err = { 0 };
    char *a1[] = { "t", "--port", "99999", NULL };
    assert_int_equal(parse(&s, 3, a1, &err), SB_EINVAL);
    assert_non_null(strstr(err.msg, "--port"));
    sb_config_free(&spec, &s);
    char *a2[] = { "t", "--wait", "soon", NULL };
    assert_int_equal(parse(&s, 3, a2, &err), SB_EINVAL);
    assert_non_null(strstr(err.msg, "--wait"));
    sb_config_free(&spec, &s);
    char *a3[] = { "t", "--nope", NULL };
    assert_int_equal(parse(&s, 2, a3, &err), SB_EINVAL);
    assert_non_null(strstr(err.msg, "--nope"));
    sb_config_free(&spec, &s);
    char *a4[] = { "t", "--port", NULL };
    assert_int_equal(parse(&s, 2, a4, &err), SB_EINVAL);
    sb_config_free(&spec, &s);
    setenv("TCFG_DEV", "maybe", 1);
    char *a5[] = { "t", NULL };
    assert_int_equal(parse(&s, 1, a5, &err), SB_EINVAL);
    assert_non_null(strstr(err.msg, "TCFG_DEV"));
    unsetenv("TCFG_DEV");
    sb_config_free(&spec, &s);
    char *a6[] = { "t", "--help", NULL };
    assert_int_equal(parse(&s, 2, a6, &err), SB_CONFIG_HELP);
    sb_config_free(&spec, &s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flags_beat_env_beat_file_beat_defaults),
        cmocka_unit_test(bad_values_name_the_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
