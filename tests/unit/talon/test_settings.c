/* Unit tests for talon's settings: the INI sections map onto the table,
 * derived defaults (alt_port, endpoints), errors that name file:line and
 * key, validators (command words, env names, bind), cross-checks, the
 * grouped JSON view (names only, the event key redacted), endpoint URLs for
 * the alternate port, [health] bind parsing, and the required/optional
 * flag of a secret mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "talon/settings.h"

static char path[64];

static int load_text(const char *text, struct talon_settings *s, struct sb_err *err, int extra_argc,
                     char **extra)
{
    strcpy(path, "/tmp/talonsetXXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char *argv[16] = { "talon", "--config", path };
    for (int i = 0; i < extra_argc; i++)
        argv[3 + i] = extra[i];
    char *pos[1];
    size_t npos;
    memset(s, 0, sizeof *s);
    memset(err, 0, sizeof *err);
    int rc = talon_settings_load(s, 3 + extra_argc, argv, pos, &npos, err);
    unlink(path);
    return rc;
}

static void sections_fill_the_settings_and_derive_defaults(void **state)
{
    (void)state;
    struct talon_settings s;
    struct sb_err err;
    char *extra[] = { "--secret", "front_api_token=FRONT_API_TOKEN" };
    assert_int_equal(load_text("[worker]\ncommand = bun run serve.ts --port \"3 1\"\nport = 4000\n"
                               "drain_timeout_secs = 7\n[secrets]\nclaude_oauth_token = "
                               "CLAUDE_CODE_OAUTH_TOKEN\nttl = 2h\n[health]\nbind = "
                               "127.0.0.1:9000\nstate_dir = /tmp/x\n[bus]\nurl = "
                               "http://127.0.0.1:8288\nevent_key = sekret\n",
                               &s, &err, 2, extra),
                     0);
    assert_int_equal(s.worker_port, 4000);
    assert_int_equal(s.worker_alt_port, 4001);
    assert_int_equal(s.worker_drain_timeout_secs, 7);
    assert_int_equal(s.worker_health_interval_secs, 30); /* defaults of the original */
    assert_int_equal(s.worker_health_failures_before_restart, 3);
    assert_int_equal(s.worker_crashloop_threshold, 5);
    assert_string_equal(s.worker_path, "/usr/local/bin:/usr/bin:/bin");
    assert_int_equal(s.secrets_ttl_ms, 2 * 3600 * 1000);
    assert_int_equal(s.secrets_timeout_secs, 5);
    assert_int_equal(s.secrets.n, 2);
    assert_string_equal(sb_strmap_get(&s.secrets, "front_api_token"), "FRONT_API_TOKEN");
    assert_string_equal(s.worker_health_endpoint, "http://127.0.0.1:{port}/");
    json_t *j = talon_settings_json(&s);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(j, "secrets"), "mappings"), "claude_oauth_token")),
        "CLAUDE_CODE_OAUTH_TOKEN");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "bus"), "event_key")),
                        "<redacted>");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "secrets"), "ttl")),
                        "2h");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "worker"), "alt_port")),
                     4001);
    assert_null(json_object_get(j, "dry_run")); /* command-line modes are not config */
    char *text = json_dumps(j, 0);
    assert_null(strstr(text, "sekret"));
    free(text);
    json_decref(j);
    talon_settings_free(&s);
}

static void bad_keys_and_values_name_file_line_and_key(void **state)
{
    (void)state;
    struct talon_settings s;
    struct sb_err err;
    char want[200];
    assert_int_equal(load_text("[worker]\ncommand = w\nprot = 1\n", &s, &err, 0, NULL), SB_EINVAL);
    snprintf(want, sizeof want, "%s:3: unknown key 'prot' in [worker]", path);
    assert_string_equal(err.msg, want);
    talon_settings_free(&s);
    assert_int_equal(load_text("[worker]\ncommand = w\nport = lots\n", &s, &err, 0, NULL),
                     SB_EINVAL);
    snprintf(want, sizeof want, "%s:3, [worker] port", path);
    assert_non_null(strstr(err.msg, want));
    talon_settings_free(&s);
    assert_int_equal(load_text("[worker]\ncommand = w 'open\n", &s, &err, 0, NULL), SB_EINVAL);
    assert_non_null(strstr(err.msg, "[worker] command"));
    assert_non_null(strstr(err.msg, "cannot be split into words"));
    talon_settings_free(&s);
    assert_int_equal(load_text("[secrets]\ntoken = not-an-env\n", &s, &err, 0, NULL), SB_EINVAL);
    assert_non_null(strstr(err.msg, "is not an environment variable name"));
    talon_settings_free(&s);
    assert_int_equal(load_text("[health]\nbind = nowhere\n", &s, &err, 0, NULL), SB_EINVAL);
    assert_non_null(strstr(err.msg, "[health] bind"));
    talon_settings_free(&s);
    assert_int_equal(load_text("[worker]\npath = bin:/usr/bin\n", &s, &err, 0, NULL), SB_EINVAL);
    talon_settings_free(&s);
    assert_int_equal(load_text("[secrets]\nttl = 48h\n", &s, &err, 0, NULL), SB_EINVAL);
    talon_settings_free(&s);
    assert_int_equal(load_text("[nope]\n", &s, &err, 0, NULL), SB_EINVAL);
    assert_non_null(strstr(err.msg, "unknown section [nope]"));
    talon_settings_free(&s);
    assert_int_equal(load_text("dry_run = true\n", &s, &err, 0, NULL), SB_EINVAL);
    talon_settings_free(&s);
}

static void cross_checks_refuse_what_cannot_work(void **state)
{
    (void)state;
    struct talon_settings s;
    struct sb_err err;
    assert_int_equal(load_text("[bus]\nurl = http://x:1\n", &s, &err, 0, NULL), SB_EINVAL);
    assert_non_null(strstr(err.msg, "event_key"));
    talon_settings_free(&s);
    assert_int_equal(load_text("[secrets]\nx = PATH\n", &s, &err, 0, NULL), SB_EINVAL);
    assert_non_null(strstr(err.msg, "talon sets PATH itself"));
    talon_settings_free(&s);
    assert_int_equal(load_text("[secrets]\na = SAME\nb = SAME\n", &s, &err, 0, NULL), SB_EINVAL);
    talon_settings_free(&s);
    assert_int_equal(load_text("[worker]\nport = 5\nalt_port = 5\n", &s, &err, 0, NULL), SB_EINVAL);
    talon_settings_free(&s);
    char *extra[] = { "frobnicate" };
    assert_int_equal(load_text("", &s, &err, 1, extra), SB_EINVAL);
    assert_non_null(strstr(err.msg, "unknown command 'frobnicate'"));
    talon_settings_free(&s);
}

static void endpoints_follow_the_worker_port(void **state)
{
    (void)state;
    char out[200];
    assert_int_equal(talon_url_for_port("http://127.0.0.1:{port}/", 3111, 3112, out, sizeof out),
                     0);
    assert_string_equal(out, "http://127.0.0.1:3112/");
    talon_url_for_port("http://127.0.0.1:3111/api/inngest", 3111, 3112, out, sizeof out);
    assert_string_equal(out, "http://127.0.0.1:3112/api/inngest");
    talon_url_for_port("http://localhost:3111", 3111, 3112, out, sizeof out);
    assert_string_equal(out, "http://localhost:3112");
    talon_url_for_port("http://h:31110/x", 3111, 3112, out, sizeof out); /* another port */
    assert_string_equal(out, "http://h:31110/x");
    talon_url_for_port("http://[::1]:3111/x", 3111, 3112, out, sizeof out);
    assert_string_equal(out, "http://[::1]:3112/x");
    assert_int_equal(talon_url_for_port("http://a:{port}/", 1, 2, out, 5), SB_ETOOBIG);
}

static void bind_addresses_parse(void **state)
{
    (void)state;
    char host[64];
    int port;
    assert_int_equal(talon_parse_bind("127.0.0.1:9999", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9999);
    assert_int_equal(talon_parse_bind("[::1]:0", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(talon_parse_bind("localhost", host, sizeof host, &port), SB_EINVAL);
    assert_int_equal(talon_parse_bind(":80", host, sizeof host, &port), SB_EINVAL);
    assert_int_equal(talon_parse_bind("h:99999", host, sizeof host, &port), SB_EINVAL);
    assert_int_equal(talon_parse_bind("h:", host, sizeof host, &port), SB_EINVAL);
}

static void the_config_file_comes_from_flag_env_or_xdg(void **state)
{
    (void)state;
    char dir[] = "/tmp/talonxdgXXXXXX", sub[200], file[240], other[240];
    assert_non_null(mkdtemp(dir));
    snprintf(sub, sizeof sub, "%s/sysbus", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(file, sizeof file, "%s/talon.ini", sub);
    FILE *f = fopen(file, "w");
    fputs("[worker]\nport = 4321\n", f);
    fclose(f);
    snprintf(other, sizeof other, "%s/other.ini", dir);
    f = fopen(other, "w");
    fputs("[worker]\nport = 5432\n", f);
    fclose(f);
    setenv("XDG_CONFIG_HOME", dir, 1);
    struct talon_settings s;
    struct sb_err err = { 0 };
    char *argv[] = { "talon", NULL }, *pos[1];
    size_t npos;
    memset(&s, 0, sizeof s);
    assert_int_equal(talon_settings_load(&s, 1, argv, pos, &npos, &err), 0);
    assert_int_equal(s.worker_port, 4321); /* $XDG_CONFIG_HOME/sysbus/talon.ini */
    assert_string_equal(s.config, file);
    talon_settings_free(&s);
    setenv("TALON_CONFIG", other, 1);
    memset(&s, 0, sizeof s);
    assert_int_equal(talon_settings_load(&s, 1, argv, pos, &npos, &err), 0);
    assert_int_equal(s.worker_port, 5432); /* TALON_CONFIG wins over the default */
    talon_settings_free(&s);
    char *argv2[] = { "talon", "--config", file, "validate", NULL };
    memset(&s, 0, sizeof s);
    assert_int_equal(talon_settings_load(&s, 4, argv2, pos, &npos, &err), 0);
    assert_int_equal(s.worker_port, 4321); /* the flag wins over TALON_CONFIG */
    assert_int_equal(npos, 1);
    assert_string_equal(pos[0], "validate");
    talon_settings_free(&s);
    unsetenv("TALON_CONFIG");
    unsetenv("XDG_CONFIG_HOME");
    unlink(file);
    unlink(other);
    rmdir(sub);
    rmdir(dir);
}

static void a_secret_mapping_is_required_unless_marked_optional(void **state)
{
    (void)state;
    struct talon_settings s;
    struct sb_err err;
    char *extra[] = { "--secret", "d=D_ENV optional" };
    assert_int_equal(load_text("[secrets]\na = A_ENV\nb = B_ENV optional\nc = C_ENV \t required\n"
                               "retry_max_secs = 7\n",
                               &s, &err, 2, extra),
                     0);
    assert_int_equal(s.nsecret_maps, 4);
    const char *names[] = { "a", "b", "c", "d" }, *envs[] = { "A_ENV", "B_ENV", "C_ENV", "D_ENV" };
    bool optional[] = { false, true, false, true };
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(s.secret_maps[i].name, names[i]);
        assert_string_equal(s.secret_maps[i].env, envs[i]);
        assert_int_equal(s.secret_maps[i].optional, optional[i]);
    }
    assert_int_equal(s.secrets_retry_max_secs, 7);
    /* resolving again rebuilds the same mappings (no leak, no duplicates) */
    assert_int_equal(talon_settings_resolve(&s, &err), 0);
    assert_int_equal(s.nsecret_maps, 4);
    json_t *j = talon_settings_json(&s);
    json_t *sec = json_object_get(j, "secrets");
    assert_string_equal(json_string_value(json_object_get(json_object_get(sec, "mappings"), "b")),
                        "B_ENV");
    char *opt = json_dumps(json_object_get(sec, "optional"), JSON_COMPACT);
    assert_string_equal(opt, "[\"b\",\"d\"]");
    free(opt);
    assert_int_equal(json_integer_value(json_object_get(sec, "retry_max_secs")), 7);
    json_decref(j);
    talon_settings_free(&s);
    assert_int_equal(load_text("", &s, &err, 0, NULL), 0);
    assert_int_equal(s.secrets_retry_max_secs, 60); /* 1 s doubling to a minute */
    talon_settings_free(&s);

    /* a bad flag names the file, the line, the mapping and the word */
    assert_int_equal(load_text("[secrets]\na = A_ENV optinal\n", &s, &err, 0, NULL), SB_EINVAL);
    char want[200];
    snprintf(want, sizeof want, "%s:2, [secrets] a", path);
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, "unknown flag 'optinal' after the variable name"));
    talon_settings_free(&s);
    char *bad[] = { "--secret", "a=A_ENV optional yes" };
    assert_int_equal(load_text("", &s, &err, 2, bad), SB_EINVAL);
    assert_non_null(strstr(err.msg, "unknown flag 'yes'"));
    talon_settings_free(&s);
    assert_int_equal(load_text("[secrets]\na = optional\nb = optional\n", &s, &err, 0, NULL),
                     SB_EINVAL); /* "optional" alone is a variable name: both map to it */
    assert_non_null(strstr(err.msg, "both map to optional"));
    talon_settings_free(&s);
    assert_int_equal(load_text("[secrets]\na = X optional\nb = X\n", &s, &err, 0, NULL), SB_EINVAL);
    assert_non_null(strstr(err.msg, "[secrets] a and b both map to X"));
    talon_settings_free(&s);
    assert_int_equal(load_text("[secrets]\nretry_max_secs = 0\n", &s, &err, 0, NULL), SB_EINVAL);
    talon_settings_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sections_fill_the_settings_and_derive_defaults),
        cmocka_unit_test(bad_keys_and_values_name_file_line_and_key),
        cmocka_unit_test(cross_checks_refuse_what_cannot_work),
        cmocka_unit_test(endpoints_follow_the_worker_port),
        cmocka_unit_test(bind_addresses_parse),
        cmocka_unit_test(the_config_file_comes_from_flag_env_or_xdg),
        cmocka_unit_test(a_secret_mapping_is_required_unless_marked_optional),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
