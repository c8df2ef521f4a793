/* Unit tests for common/config: precedence flag > env > file > default,
 * types and range errors that name the setting, lists, --help. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* ---- secrets from files (SB_OPTF_FILEVALUE) ---- */

struct fst {
    char *cfg, *key;
    struct sb_strlist keys;
    char *plain;
};

static const struct sb_opt fopts[] = {
    { "config", SB_OPT_STR, offsetof(struct fst, cfg), NULL, "FILE", "config", SB_OPTF_CONFIGFILE,
      0, 0, 0, NULL, 0 },
    { "key", SB_OPT_STR, offsetof(struct fst, key), NULL, "K", "key",
      SB_OPTF_SECRET | SB_OPTF_FILEVALUE, 0, 0, 0, NULL, 0 },
    { "keys", SB_OPT_LIST, offsetof(struct fst, keys), NULL, "K", "keys",
      SB_OPTF_SECRET | SB_OPTF_FILEVALUE, 0, 0, 0, NULL, 0 },
    { "plain", SB_OPT_STR, offsetof(struct fst, plain), NULL, "P", "not a secret", 0, 0, 0, 0, NULL,
      0 },
};
static const struct sb_config_spec fspec = {
    "t", "TCFG", "t [OPTIONS]", "summary", NULL, fopts, sizeof fopts / sizeof fopts[0]
};

static int fparse(struct fst *s, int argc, char **argv, struct sb_err *err)
{
    char *pos[1];
    size_t npos;
    sb_config_free(&fspec, s);
    memset(s, 0, sizeof *s);
    return sb_config_parse(&fspec, s, argc, argv, pos, 0, &npos, err);
}

/* A temporary file with content and mode; path must hold 32 bytes. */
static void secret_file(char *path, const char *content, int mode)
{
    strcpy(path, "/tmp/sbsecXXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    chmod(path, (mode_t)mode);
}

static void a_secret_comes_from_its_file(void **state)
{
    (void)state;
    char p[32], lp[32], cp[32];
    secret_file(p, "s3cret-value\n", 0600);
    secret_file(lp, "k1\r\nk2, k3\n\n", 0640); /* group-readable is allowed */
    struct fst s = { 0 };
    struct sb_err err = { 0 };
    char keys_flag[64];
    snprintf(keys_flag, sizeof keys_flag, "--keys-file=%s", lp);
    char *argv[] = { "t", "--key-file", p, keys_flag, NULL };
    assert_int_equal(fparse(&s, 4, argv, &err), 0);
    assert_string_equal(s.key, "s3cret-value");
    assert_int_equal(s.keys.n, 3);
    assert_string_equal(s.keys.v[2], "k3");
    /* the environment, and the config file */
    setenv("TCFG_KEY_FILE", p, 1);
    char *argv0[] = { "t", NULL };
    assert_int_equal(fparse(&s, 1, argv0, &err), 0);
    assert_string_equal(s.key, "s3cret-value");
    unsetenv("TCFG_KEY_FILE");
    char body[100];
    snprintf(body, sizeof body, "key_file = %s\n", p);
    secret_file(cp, body, 0600);
    char *argvc[] = { "t", "--config", cp, NULL };
    assert_int_equal(fparse(&s, 3, argvc, &err), 0);
    assert_string_equal(s.key, "s3cret-value");
    /* a flag beats the config file's file */
    char *argvf[] = { "t", "--config", cp, "--key", "from-flag", NULL };
    assert_int_equal(fparse(&s, 5, argvf, &err), 0);
    assert_string_equal(s.key, "from-flag");
    sb_config_free(&fspec, &s);
    unlink(p);
    unlink(lp);
    unlink(cp);
}

static void a_bad_secret_file_is_refused_without_its_value(void **state)
{
    (void)state;
    char p[32];
    secret_file(p, "s3cret-value\n", 0644);
    struct fst s = { 0 };
    struct sb_err err = { 0 };
    char *argv[] = { "t", "--key-file", p, NULL };
    assert_int_not_equal(fparse(&s, 3, argv, &err), 0);
    assert_non_null(strstr(err.msg, "--key-file"));
    assert_non_null(strstr(err.msg, "chmod 600"));
    assert_null(strstr(err.msg, "s3cret"));
    chmod(p, 0620); /* group-writable */
    assert_int_not_equal(fparse(&s, 3, argv, &err), 0);
    chmod(p, 0600);
    assert_int_equal(fparse(&s, 3, argv, &err), 0);
    /* value and file in one layer: which one was meant? */
    char *both[] = { "t", "--key", "x", "--key-file", p, NULL };
    assert_int_not_equal(fparse(&s, 5, both, &err), 0);
    assert_non_null(strstr(err.msg, "not both"));
    setenv("TCFG_KEY", "x", 1);
    setenv("TCFG_KEY_FILE", p, 1);
    char *argv0[] = { "t", NULL };
    assert_int_not_equal(fparse(&s, 1, argv0, &err), 0);
    assert_non_null(strstr(err.msg, "TCFG_KEY_FILE"));
    unsetenv("TCFG_KEY");
    unsetenv("TCFG_KEY_FILE");
    /* missing, empty, and a setting that has no file companion */
    char *missing[] = { "t", "--key-file", "/nonexistent/key", NULL };
    assert_int_not_equal(fparse(&s, 3, missing, &err), 0);
    assert_non_null(strstr(err.msg, "/nonexistent/key"));
    FILE *f = fopen(p, "w");
    fputs("\n", f);
    fclose(f);
    assert_int_not_equal(fparse(&s, 3, argv, &err), 0);
    assert_non_null(strstr(err.msg, "empty"));
    char *plain[] = { "t", "--plain-file", p, NULL };
    assert_int_not_equal(fparse(&s, 3, plain, &err), 0);
    assert_non_null(strstr(err.msg, "unknown option"));
    sb_config_free(&fspec, &s);
    unlink(p);
}

static void secrets_given_as_flags_are_named(void **state)
{
    (void)state;
    char *argv[] = { "t", "--plain",    "p",  "--key=v", "--keys", "a", "--keys",
                     "b", "--key-file", "/x", "--",      "--keys", NULL };
    const char *names[4];
    assert_int_equal(sb_config_secret_flags(&fspec, 12, argv, names, 4), 2);
    assert_string_equal(names[0], "key");
    assert_string_equal(names[1], "keys");
    char *none[] = { "t", "--key-file", "/x", NULL };
    assert_int_equal(sb_config_secret_flags(&fspec, 3, none, names, 4), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flags_beat_env_beat_file_beat_defaults),
        cmocka_unit_test(bad_values_name_the_setting),
        cmocka_unit_test(a_secret_comes_from_its_file),
        cmocka_unit_test(a_bad_secret_file_is_refused_without_its_value),
        cmocka_unit_test(secrets_given_as_flags_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
