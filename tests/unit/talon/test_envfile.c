/* Unit tests for talon's env file parser: KEY=VALUE, comments, "export ",
 * quotes stripped, a later line replacing an earlier one, and errors that
 * name file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "talon/envfile.h"

static char *write_file(const char *text)
{
    static char path[64];
    strcpy(path, "/tmp/talonenvXXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void lines_parse_as_a_shell_env_file_would(void **state)
{
    (void)state;
    struct {
        const char *line, *name, *value;
    } cases[] = {
        { "A=1", "A", "1" },
        { "  export B = two words  ", "B", "two words" },
        { "C=\"quoted # not a comment\"", "C", "quoted # not a comment" },
        { "D='single'  # trailing comment", "D", "single" },
        { "E=", "E", "" },
        { "F=a#b", "F", "a#b" },
        { "G=value # comment", "G", "value" },
        { "export_H=x", "export_H", "x" },
        { "URL=http://h:1/p?q=1", "URL", "http://h:1/p?q=1" },
        { "", NULL, NULL },
        { "   # comment", NULL, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *n, *v, why[200];
        assert_int_equal(talon_envfile_parse_line(cases[i].line, &n, &v, why, sizeof why), 0);
        if (!cases[i].name) {
            assert_null(n);
            continue;
        }
        assert_string_equal(n, cases[i].name);
        assert_string_equal(v, cases[i].value);
        free(n);
        free(v);
    }
}

static void bad_lines_are_refused_with_a_reason(void **state)
{
    (void)state;
    const char *bad[] = { "NOEQUALS", "1X=1", "A B=1", "Q=\"open", "R='x' y", "-=1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *n, *v, why[200] = "";
        assert_int_equal(talon_envfile_parse_line(bad[i], &n, &v, why, sizeof why), SB_EINVAL);
        assert_true(why[0] != '\0');
    }
}

static void a_file_loads_with_later_lines_winning(void **state)
{
    (void)state;
    char *path = write_file("# worker env\nexport INNGEST_DEV=1\nKEY=first\n\nKEY=\"second\"\r\n"
                            "OTHER='x'\n");
    struct talon_envfile f = { 0 };
    struct sb_err err = { 0 };
    assert_int_equal(talon_envfile_load(path, &f, &err), 0);
    assert_int_equal(f.n, 3);
    assert_string_equal(talon_envfile_get(&f, "KEY")->value, "second");
    assert_int_equal(talon_envfile_get(&f, "KEY")->line, 5);
    assert_string_equal(talon_envfile_get(&f, "INNGEST_DEV")->value, "1");
    assert_null(talon_envfile_get(&f, "NOPE"));
    talon_envfile_free(&f);
    unlink(path);
}

static void errors_name_the_file_and_line(void **state)
{
    (void)state;
    char *path = write_file("A=1\n\nB=\"unterminated\n");
    struct talon_envfile f = { 0 };
    struct sb_err err = { 0 };
    assert_int_equal(talon_envfile_load(path, &f, &err), SB_EINVAL);
    char want[100];
    snprintf(want, sizeof want, "%s:3: unterminated double quote", path);
    assert_non_null(strstr(err.msg, want));
    talon_envfile_free(&f);
    unlink(path);
    assert_int_equal(talon_envfile_load("/nonexistent/env", &f, &err), SB_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/env"));
    talon_envfile_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lines_parse_as_a_shell_env_file_would),
        cmocka_unit_test(bad_lines_are_refused_with_a_reason),
        cmocka_unit_test(a_file_loads_with_later_lines_winning),
        cmocka_unit_test(errors_name_the_file_and_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
