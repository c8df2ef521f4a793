/* Unit tests for slog's line format (entry.c) and file handling (logfile.c),
 * through their internal API (src/slog/slog.h): a formatted line parses back
 * to the same fields, field caps and UTF-8 are enforced, bad lines are named
 * precisely, the reader bounds and flags long and unterminated lines, and an
 * append after a torn line starts a new one. Files live in a fresh temporary
 * directory per test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slog/slog.h"

static char *tmp_path(const char *name)
{
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/sb-slog-unit-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void a_formatted_line_parses_back_to_its_fields(void **state)
{
    (void)state;
    struct slog_fields f = { "deploy", "kubectl", "two\nlines \"quoted\" \x01", NULL, "s-1", NULL };
    assert_int_equal(slog_fields_check(&f, NULL), 0);
    struct sb_buf line = SB_BUF_INIT(SLOG_LINE_MAX);
    assert_int_equal(slog_entry_format(&f, 1764262800123LL, &line), 0);
    assert_true(line.len > 0 && line.data[line.len - 1] == '\n');
    assert_null(memchr(line.data, '\n', line.len - 1)); /* one line */
    assert_string_equal(line.data,
                        "{\"timestamp\":\"2025-11-27T17:00:00.123Z\",\"sessionId\":\"s-1\","
                        "\"systemId\":null,\"action\":\"deploy\",\"tool\":\"kubectl\","
                        "\"detail\":\"two\\nlines \\\"quoted\\\" \\u0001\",\"reason\":null}\n");
    struct slog_entry e;
    struct sb_err err = { 0 };
    assert_int_equal(slog_entry_parse(line.data, line.len - 1, &e, &err), 0);
    assert_int_equal(e.ts_ms, 1764262800123LL);
    assert_string_equal(e.detail, f.detail);
    assert_string_equal(e.session, "s-1");
    assert_null(e.system);
    assert_null(e.reason);
    slog_entry_free(&e);
    sb_buf_free(&line);
}

static void fields_over_their_caps_or_not_utf8_are_refused(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    char *big = malloc(SLOG_DETAIL_MAX + 2);
    memset(big, 'x', SLOG_DETAIL_MAX + 1);
    big[SLOG_DETAIL_MAX + 1] = '\0';
    struct slog_fields f = { "a", "t", big, NULL, NULL, NULL };
    assert_int_equal(slog_fields_check(&f, &err), SB_ETOOBIG);
    assert_string_equal(err.msg, "--detail is 65537 bytes; the limit is 65536 bytes");
    big[SLOG_DETAIL_MAX] = '\0';
    assert_int_equal(slog_fields_check(&f, &err), 0);
    free(big);

    static const char *bad_utf8[] = {
        "\xc0\xaf",         /* overlong '/' */
        "\xed\xa0\x80",     /* a UTF-16 surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "caf\xc3",          /* truncated */
        "\xff",
    };
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        struct slog_fields g = { "a", "t", "d", bad_utf8[i], NULL, NULL };
        assert_int_equal(slog_fields_check(&g, &err), SB_EINVAL);
        assert_string_equal(err.msg, "--reason is not valid UTF-8");
    }
    struct slog_fields ok = { "a", "t", "caf\xc3\xa9 \xf0\x9f\x9a\x80", NULL, NULL, NULL };
    assert_int_equal(slog_fields_check(&ok, &err), 0);
    struct slog_fields missing = { "a", NULL, "d", NULL, NULL, NULL };
    assert_int_equal(slog_fields_check(&missing, &err), SB_EINVAL);
    assert_string_equal(err.msg, "--tool is required");
    struct slog_fields empty = { "", "t", "d", NULL, NULL, NULL };
    assert_int_equal(slog_fields_check(&empty, &err), SB_EINVAL);
    assert_string_equal(err.msg, "--action must not be empty");
}

static void bad_lines_say_what_is_wrong(void **state)
{
    (void)state;
    static const struct {
        const char *line, *why;
    } cases[] = {
        { "", "empty line" },
        { "[1]", "not a JSON object" },
        { "{\"timestamp\":\"2026-01-01T00:00:00Z\",\"tool\":\"t\",\"detail\":\"d\"}",
          "field \"action\" is missing" },
        { "{\"timestamp\":\"2026-01-01T00:00:00Z\",\"action\":1,\"tool\":\"t\",\"detail\":\"d\"}",
          "field \"action\" is not a string" },
        { "{\"timestamp\":\"2026-01-01T00:00:00Z\",\"action\":\"a\",\"tool\":\"\",\"detail\":"
          "\"d\"}",
          "field \"tool\" is empty" },
        { "{\"timestamp\":\"soon\",\"action\":\"a\",\"tool\":\"t\",\"detail\":\"d\"}",
          "timestamp \"soon\" is not an ISO-8601 date-time" },
        { "{\"timestamp\":\"2026-01-01T00:00:00Z\",\"action\":\"a\",\"tool\":\"t\",\"detail\":"
          "\"d\","
          "\"reason\":7}",
          "field \"reason\" is neither a string nor null" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct slog_entry e;
        struct sb_err err = { 0 };
        assert_int_equal(slog_entry_parse(cases[i].line, strlen(cases[i].line), &e, &err),
                         SB_EINVAL);
        assert_string_equal(err.msg, cases[i].why);
        assert_null(e.json);
    }
    struct slog_entry e;
    struct sb_err err = { 0 };
    assert_int_equal(slog_entry_parse("{\"timestamp\":", 13, &e, &err), SB_EINVAL);
    assert_true(strncmp(err.msg, "not JSON (", 10) == 0);
    /* optional fields may be absent, unknown keys are ignored */
    const char *minimal = "{\"timestamp\":\"2026-01-01T00:00:00.5+02:00\",\"action\":\"a\","
                          "\"tool\":\"t\",\"detail\":\"d\",\"later\":true}";
    assert_int_equal(slog_entry_parse(minimal, strlen(minimal), &e, &err), 0);
    assert_int_equal(e.ts_ms, 1767225600500LL - 2 * 3600000LL);
    slog_entry_free(&e);
}

static void the_reader_flags_long_and_unterminated_lines(void **state)
{
    (void)state;
    char *path = tmp_path("r.jsonl");
    FILE *f = fopen(path, "w");
    fputs("one\n\n", f);
    for (size_t i = 0; i < SLOG_LINE_MAX + 10; i++)
        fputc('x', f);
    fputs("\nlast", f);
    fclose(f);
    struct slog_reader r;
    struct sb_err err = { 0 };
    assert_int_equal(slog_reader_open(&r, path, &err), 0);
    const char *line;
    size_t len;
    assert_int_equal(slog_reader_next(&r, &line, &len, &err), 1);
    assert_string_equal(line, "one");
    assert_int_equal(slog_reader_next(&r, &line, &len, &err), 1);
    assert_int_equal(len, 0);
    assert_int_equal(r.lineno, 2);
    assert_int_equal(slog_reader_next(&r, &line, &len, &err), 1);
    assert_true(r.too_long);
    assert_int_equal(len, SLOG_LINE_MAX); /* only the start is kept */
    assert_int_equal(r.full_len, SLOG_LINE_MAX + 10);
    struct slog_entry e;
    assert_int_equal(slog_reader_entry(&r, line, len, &e, &err), SB_EINVAL);
    assert_string_equal(err.msg, "line is 1048586 bytes, longer than the 1048576 byte limit");
    assert_int_equal(slog_reader_next(&r, &line, &len, &err), 1);
    assert_string_equal(line, "last");
    assert_true(r.unterminated);
    assert_int_equal(r.lineno, 4);
    assert_int_equal(slog_reader_next(&r, &line, &len, &err), 0);
    slog_reader_close(&r);
    unlink(path);
    assert_int_equal(slog_reader_open(&r, path, &err), SB_ENOTFOUND);
    assert_string_equal(err.msg, "No such file or directory");
    free(path);
}

static void an_append_creates_private_parents_and_heals_a_torn_end(void **state)
{
    (void)state;
    char *base = tmp_path("a/b/log.jsonl");
    const char *l1 = "{\"x\":1}\n";
    struct sb_err err = { 0 };
    assert_int_equal(slog_append(base, l1, strlen(l1), 1000, &err), 0);
    struct stat st;
    assert_int_equal(stat(base, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *dir = strdup(base);
    *strrchr(dir, '/') = '\0';
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    free(dir);
    /* something else tears the end; the next entry starts on its own line */
    int fd = open(base, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "{\"torn", 6), 6);
    close(fd);
    assert_int_equal(slog_append(base, l1, strlen(l1), 1000, &err), 0);
    assert_string_equal(slurp(base), "{\"x\":1}\n{\"torn\n{\"x\":1}\n");
    /* a write that fails leaves the file as it was */
    assert_int_equal(slog_append("/dev/full", l1, strlen(l1), 1000, &err), SB_EIO);
    assert_string_equal(err.msg, "No space left on device");
    free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_formatted_line_parses_back_to_its_fields),
        cmocka_unit_test(fields_over_their_caps_or_not_utf8_are_refused),
        cmocka_unit_test(bad_lines_say_what_is_wrong),
        cmocka_unit_test(the_reader_flags_long_and_unterminated_lines),
        cmocka_unit_test(an_append_creates_private_parents_and_heals_a_torn_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
