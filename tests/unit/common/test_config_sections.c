/* Unit tests for common/config's INI sections and MAP settings: a
 * "[section]" header prefixes the keys after it, a MAP collects a free-form
 * section, merges across layers and takes a repeatable NAME=VALUE flag;
 * unknown sections and keys, bad values and validator refusals name
 * file:line and the key; flag-only settings are refused in a file; a
 * default config file is read only when it exists (sb_config_parse_ext). */
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
    char *cfg, *dir, *cmd;
    int64_t port, timeout_ms;
    bool check;
    struct sb_strmap secrets;
};

static int env_name_check(const char *key, const char *value, char *why, size_t whylen)
{
    (void)key;
    for (const char *p = value; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || *p == '_' || (p > value && *p >= '0' && *p <= '9')))
            return snprintf(why, whylen, "is not an environment variable name"), -1;
    return 0;
}

static const struct sb_opt opts[] = {
    { "config", SB_OPT_STR, offsetof(struct st, cfg), NULL, "FILE", "config", SB_OPTF_CONFIGFILE, 0,
      0, 0, NULL, 0 },
    { "worker-dir", SB_OPT_STR, offsetof(struct st, dir), NULL, "DIR", "dir", 0, 0, 0, 0, NULL, 0 },
    { "worker-command", SB_OPT_STR, offsetof(struct st, cmd), NULL, "CMD", "cmd", 0, 0, 0, 0, NULL,
      0 },
    { "worker-port", SB_OPT_INT, offsetof(struct st, port), "3111", "PORT", "port", 0, 1, 65535, 0,
      NULL, 0 },
    { "secrets-timeout", SB_OPT_DURATION, offsetof(struct st, timeout_ms), "5s", "D", "timeout", 0,
      0, 0, 1000, NULL, 0 },
    { "secret", SB_OPT_MAP, offsetof(struct st, secrets), NULL, "NAME=ENV", "secret mapping", 0, 0,
      0, 0, NULL, 0 },
    { "check", SB_OPT_BOOL, offsetof(struct st, check), "false", NULL, "check once",
      SB_OPTF_NOFILE | SB_OPTF_NOENV, 0, 0, 0, NULL, 0 },
};
static const struct sb_config_spec spec = {
    "t", "TSEC", "t [OPTIONS]", "summary", NULL, opts, sizeof opts / sizeof opts[0]
};
static const struct sb_opt_ext extras[] = { { "secret", "secrets", env_name_check } };
static const struct sb_config_ext ext = { NULL, extras, 1 };

static char *write_file(const char *text)
{
    static char path[64];
    strcpy(path, "/tmp/sbcfgsecXXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static int parse_with(const struct sb_config_ext *x, struct st *s, int argc, char **argv,
                      struct sb_err *err)
{
    char *pos[4];
    size_t npos;
    memset(s, 0, sizeof *s);
    memset(err, 0, sizeof *err);
    return sb_config_parse_ext(&spec, x, s, argc, argv, pos, 4, &npos, err);
}

static int parse_file(const char *text, struct st *s, struct sb_err *err, char **path_out)
{
    char *path = write_file(text);
    if (path_out)
        *path_out = path;
    char *argv[] = { "t", "--config", path, NULL };
    return parse_with(&ext, s, 3, argv, err);
}

static void a_section_header_prefixes_the_keys_after_it(void **state)
{
    (void)state;
    struct st s;
    struct sb_err err;
    char *path;
    assert_int_equal(parse_file("# talon\n[worker]\nport = 3200\ndir = /srv/w\n"
                                "command = \"./worker --x\"\n\n[ secrets ] # comment\n"
                                "timeout = 2s\nclaude_oauth_token = CLAUDE_CODE_OAUTH_TOKEN\n"
                                "front_api_token=FRONT_API_TOKEN\n",
                                &s, &err, &path),
                     0);
    assert_int_equal(s.port, 3200);
    assert_string_equal(s.dir, "/srv/w");
    assert_string_equal(s.cmd, "./worker --x");
    assert_int_equal(s.timeout_ms, 2000); /* a known key of [secrets] is a setting */
    assert_int_equal(s.secrets.n, 2);     /* the others are map entries */
    assert_string_equal(sb_strmap_get(&s.secrets, "claude_oauth_token"), "CLAUDE_CODE_OAUTH_TOKEN");
    assert_string_equal(sb_strmap_get(&s.secrets, "front_api_token"), "FRONT_API_TOKEN");
    assert_null(sb_strmap_get(&s.secrets, "nope"));
    json_t *dump = sb_config_dump(&spec, &s);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(dump, "secret"), "front_api_token")),
        "FRONT_API_TOKEN");
    assert_int_equal(json_integer_value(json_object_get(dump, "worker-port")), 3200);
    json_decref(dump);
    sb_config_free(&spec, &s);
    assert_int_equal(s.secrets.n, 0);
    unlink(path);
}

static void section_keys_have_flags_and_env_that_win_over_the_file(void **state)
{
    (void)state;
    struct st s;
    struct sb_err err;
    char *path = write_file("[worker]\nport = 3200\n[secrets]\na = A_ENV\nb = B_ENV\n");
    setenv("TSEC_WORKER_PORT", "3300", 1);
    setenv("TSEC_SECRET", "b=B_FROM_ENV, c=C_ENV", 1);
    char *argv[] = { "t", "--config", path, "--secret", "a=A_FLAG", "--secret", "d=D_FLAG", NULL };
    assert_int_equal(parse_with(&ext, &s, 7, argv, &err), 0);
    assert_int_equal(s.port, 3300);
    /* the map merges: file a,b; env replaces b, adds c; flags replace a, add d */
    assert_int_equal(s.secrets.n, 4);
    assert_string_equal(sb_strmap_get(&s.secrets, "a"), "A_FLAG");
    assert_string_equal(sb_strmap_get(&s.secrets, "b"), "B_FROM_ENV");
    assert_string_equal(sb_strmap_get(&s.secrets, "c"), "C_ENV");
    assert_string_equal(sb_strmap_get(&s.secrets, "d"), "D_FLAG");
    sb_config_free(&spec, &s);
    char *argv2[] = { "t", "--worker-port", "4000", "--secret", "x", NULL };
    assert_int_equal(parse_with(&ext, &s, 5, argv2, &err), SB_EINVAL);
    assert_non_null(strstr(err.msg, "'x' is not NAME=VALUE"));
    sb_config_free(&spec, &s);
    unsetenv("TSEC_WORKER_PORT");
    unsetenv("TSEC_SECRET");
    unlink(path);
}

static void unknown_sections_keys_and_bad_values_name_file_line_and_key(void **state)
{
    (void)state;
    struct st s;
    struct sb_err err;
    char *path, want[200];

    assert_int_equal(parse_file("[worker]\nport = 1\nbogus = 2\n", &s, &err, &path), SB_EINVAL);
    snprintf(want, sizeof want, "%s:3: unknown key 'bogus' in [worker]", path);
    assert_string_equal(err.msg, want);
    sb_config_free(&spec, &s);
    unlink(path);

    assert_int_equal(parse_file("\n[workers]\nport = 1\n", &s, &err, &path), SB_EINVAL);
    snprintf(want, sizeof want, "%s:2: unknown section [workers]", path);
    assert_string_equal(err.msg, want);
    sb_config_free(&spec, &s);
    unlink(path);

    assert_int_equal(parse_file("[worker]\n\nport = many\n", &s, &err, &path), SB_EINVAL);
    snprintf(want, sizeof want, "(config file %s:3, [worker] port): 'many' is not an integer",
             path);
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, "--worker-port"));
    sb_config_free(&spec, &s);
    unlink(path);

    assert_int_equal(parse_file("[secrets]\ngood = OK_NAME\nbad = not-an-env\n", &s, &err, &path),
                     SB_EINVAL);
    snprintf(want, sizeof want, "config file %s:3, [secrets] bad", path);
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, "is not an environment variable name"));
    sb_config_free(&spec, &s);
    unlink(path);

    assert_int_equal(parse_file("[worker\nport = 1\n", &s, &err, &path), SB_EINVAL);
    assert_non_null(strstr(err.msg, ":1: expected '[section]'"));
    sb_config_free(&spec, &s);
    unlink(path);

    /* a key outside any section keeps its own name; flag-only settings are refused */
    assert_int_equal(parse_file("worker-port = 7\n", &s, &err, &path), 0);
    assert_int_equal(s.port, 7);
    sb_config_free(&spec, &s);
    unlink(path);
    assert_int_equal(parse_file("check = true\n", &s, &err, &path), SB_EINVAL);
    assert_non_null(strstr(err.msg, ":1: unknown setting 'check'"));
    sb_config_free(&spec, &s);
    unlink(path);

    /* an empty map entry value */
    assert_int_equal(parse_file("[secrets]\nx =\n", &s, &err, &path), SB_EINVAL);
    assert_non_null(strstr(err.msg, "needs a name and a value"));
    sb_config_free(&spec, &s);
    unlink(path);
}

static void a_default_file_is_read_only_when_it_exists(void **state)
{
    (void)state;
    struct st s;
    struct sb_err err;
    char *path = write_file("[worker]\nport = 5000\n");
    struct sb_config_ext x = ext;
    x.default_file = path;
    char *argv[] = { "t", NULL };
    assert_int_equal(parse_with(&x, &s, 1, argv, &err), 0);
    assert_int_equal(s.port, 5000);
    assert_string_equal(s.cfg, path);
    sb_config_free(&spec, &s);
    unlink(path);
    assert_int_equal(parse_with(&x, &s, 1, argv, &err), 0); /* gone: defaults */
    assert_int_equal(s.port, 3111);
    assert_null(s.cfg);
    sb_config_free(&spec, &s);
    /* a file named explicitly must exist */
    char *argv2[] = { "t", "--config", path, NULL };
    assert_int_equal(parse_with(&x, &s, 3, argv2, &err), SB_EIO);
    sb_config_free(&spec, &s);
    /* without the extras, [secrets] holds settings only, no map entries */
    char *p2 = write_file("[secrets]\na = B\n");
    char *argv3[] = { "t", "--config", p2, NULL };
    assert_int_equal(parse_with(NULL, &s, 3, argv3, &err), SB_EINVAL);
    assert_non_null(strstr(err.msg, "unknown key 'a' in [secrets]"));
    sb_config_free(&spec, &s);
    unlink(p2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_section_header_prefixes_the_keys_after_it),
        cmocka_unit_test(section_keys_have_flags_and_env_that_win_over_the_file),
        cmocka_unit_test(unknown_sections_keys_and_bad_values_name_file_line_and_key),
        cmocka_unit_test(a_default_file_is_read_only_when_it_exists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
