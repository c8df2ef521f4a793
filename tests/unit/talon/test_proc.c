/* Unit tests for talon's command runner (src/talon/proc.c): shell-like word
 * splitting, and talon_run_command's contract: exit codes and signals, stdin,
 * the capped output tail, lookup in the PATH of envp (never the caller's),
 * timeouts that kill the whole process group, no zombies, no leaked fds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "talon/proc.h"

static char *const std_env[] = { "PATH=/usr/bin:/bin", NULL };

/* ---- word splitting ---- */

static void expect_words(const char *line, const char *const *want)
{
    char **argv = NULL;
    struct sb_err err = { 0 };
    if (talon_split_words(line, &argv, &err) != 0)
        fail_msg("'%s' was refused: %s", line, err.msg);
    size_t i = 0;
    for (; want[i]; i++) {
        if (!argv[i])
            fail_msg("'%s': word %zu missing (want '%s')", line, i, want[i]);
        if (strcmp(argv[i], want[i]) != 0)
            fail_msg("'%s': word %zu is '%s', want '%s'", line, i, argv[i], want[i]);
    }
    if (argv[i])
        fail_msg("'%s': extra word '%s'", line, argv[i]);
    talon_words_free(argv);
}

#define WORDS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void split_words_follows_shell_quoting_without_expansion(void **state)
{
    (void)state;
    expect_words("a b\t c\n", WORDS("a", "b", "c"));
    expect_words("  lead and trail  ", WORDS("lead", "and", "trail"));
    expect_words("'a b' c", WORDS("a b", "c"));
    expect_words("'it''s'", WORDS("its"));
    expect_words("'no \\escape \"here\"'", WORDS("no \\escape \"here\""));
    expect_words("\"say \\\"hi\\\" \\\\ \\$x \\`y\\`\"", WORDS("say \"hi\" \\ $x `y`"));
    /* inside double quotes other backslashes stay */
    expect_words("\"a\\tb\\n\"", WORDS("a\\tb\\n"));
    expect_words("\"it's\"", WORDS("it's"));
    expect_words("a\\ b c\\'d", WORDS("a b", "c'd"));
    expect_words("\"a\"'b'c", WORDS("abc"));
    expect_words("x '' \"\"", WORDS("x", "", ""));
    expect_words("line\\\ncontinued", WORDS("linecontinued"));
    expect_words("\"dq\\\ncont\"", WORDS("dqcont"));
    /* nothing is expanded or interpreted */
    expect_words("echo $HOME * ~ a|b ; c && d > e",
                 WORDS("echo", "$HOME", "*", "~", "a|b", ";", "c", "&&", "d", ">", "e"));
    expect_words("/bin/sh -c 'echo healed >> /tmp/x/heal.log'",
                 WORDS("/bin/sh", "-c", "echo healed >> /tmp/x/heal.log"));
    expect_words("caf\xc3\xa9", WORDS("caf\xc3\xa9"));
}

static void split_words_refuses_broken_lines_with_a_reason(void **state)
{
    (void)state;
    const struct {
        const char *line, *why;
    } bad[] = {
        { "echo 'open", "unterminated single quote at column 6" },
        { "echo \"open", "unterminated double quote at column 6" },
        { "echo \"esc\\\"", "unterminated double quote" },
        { "echo trailing\\", "trailing backslash" },
        { "", "empty command" },
        { " \t\n ", "empty command" },
        { "'' arg", "empty command name" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char **argv = (char **)1;
        struct sb_err err = { 0 };
        int rc = talon_split_words(bad[i].line, &argv, &err);
        if (rc != SB_EINVAL)
            fail_msg("'%s' gave %d, want SB_EINVAL", bad[i].line, rc);
        assert_null(argv);
        if (!strstr(err.msg, bad[i].why))
            fail_msg("'%s': message '%s' lacks '%s'", bad[i].line, err.msg, bad[i].why);
    }
}

/* ---- running ---- */

static int run_line(const char *line, char *const envp[], const char *in, int timeout_ms,
                    struct talon_cmd_result *r, struct sb_err *err)
{
    char **argv;
    if (talon_split_words(line, &argv, err) != 0)
        fail_msg("split '%s': %s", line, err->msg);
    int rc = talon_run_command(argv, envp, in, timeout_ms, r, err);
    talon_words_free(argv);
    return rc;
}

static void assert_no_children(void)
{
    int st;
    assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static void run_reports_exit_code_and_merged_output(void **state)
{
    (void)state;
    struct talon_cmd_result r;
    struct sb_err err = { 0 };
    assert_int_equal(
        run_line("sh -c 'echo out; echo err >&2; exit 3'", std_env, NULL, 5000, &r, &err), 0);
    assert_int_equal(r.exit_code, 3);
    assert_int_equal(r.signal, 0);
    assert_false(r.timed_out);
    assert_string_equal(r.output.data, "out\nerr\n");
    talon_cmd_result_free(&r);

    assert_int_equal(run_line("sh -c 'kill -9 $$'", std_env, NULL, 5000, &r, &err), 0);
    assert_int_equal(r.exit_code, -1);
    assert_int_equal(r.signal, SIGKILL);
    talon_cmd_result_free(&r);
    assert_no_children();
}

static void run_feeds_stdin_and_survives_a_command_that_does_not_read_it(void **state)
{
    (void)state;
    struct talon_cmd_result r;
    struct sb_err err = { 0 };
    assert_int_equal(run_line("cat", std_env, "{\"state\":\"Critical\"}", 5000, &r, &err), 0);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.output.data, "{\"state\":\"Critical\"}");
    talon_cmd_result_free(&r);

    /* 1 MiB to a command that exits at once: EPIPE, not a SIGPIPE death */
    char *big = malloc(1 << 20);
    memset(big, 'x', (1 << 20) - 1);
    big[(1 << 20) - 1] = '\0';
    assert_int_equal(run_line("true", std_env, big, 5000, &r, &err), 0);
    assert_int_equal(r.exit_code, 0);
    talon_cmd_result_free(&r);
    free(big);

    /* no stdin: the command reads /dev/null (EOF), it does not hang */
    assert_int_equal(run_line("sh -c 'cat; echo done'", std_env, NULL, 5000, &r, &err), 0);
    assert_string_equal(r.output.data, "done\n");
    assert_false(r.timed_out);
    talon_cmd_result_free(&r);
    assert_no_children();
}

static void run_keeps_only_the_tail_of_long_output(void **state)
{
    (void)state;
    struct talon_cmd_result r;
    struct sb_err err = { 0 };
    assert_int_equal(run_line("sh -c 'head -c 200000 /dev/zero | tr \"\\000\" a; echo END'",
                              std_env, NULL, 10000, &r, &err),
                     0);
    assert_int_equal(r.exit_code, 0);
    assert_true(r.output.len <= 8192);
    assert_true(r.output.len >= 8000);
    assert_int_equal(strlen(r.output.data), r.output.len);
    assert_string_equal(r.output.data + r.output.len - 4, "END\n");
    assert_int_equal(r.output.data[0], 'a');
    talon_cmd_result_free(&r);
}

/* The buffer itself is capped, not only trimmed: a command printing far
 * more than TALON_OUTPUT_MAX leaves exactly its last TALON_OUTPUT_MAX bytes
 * (the last line whole: what a script probe's error shows), and the buffer
 * refuses to grow past them. */
static void run_output_buffer_is_capped_at_the_output_max(void **state)
{
    (void)state;
    struct talon_cmd_result r;
    struct sb_err err = { 0 };
    assert_int_equal(
        run_line("sh -c 'head -c 100000 /dev/zero | tr \"\\000\" a; printf \"last line\\n\"'",
                 std_env, NULL, 10000, &r, &err),
        0);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.output.max, TALON_OUTPUT_MAX);
    assert_int_equal(r.output.len, TALON_OUTPUT_MAX);
    assert_int_equal(strlen(r.output.data), TALON_OUTPUT_MAX);
    const char *last = "last line\n";
    size_t ll = strlen(last);
    assert_memory_equal(r.output.data + TALON_OUTPUT_MAX - ll, last, ll);
    for (size_t i = 0; i < TALON_OUTPUT_MAX - ll; i++)
        if (r.output.data[i] != 'a')
            fail_msg("byte %zu of the kept tail is 0x%02x, want 'a'", i,
                     (unsigned char)r.output.data[i]);
    assert_int_equal(sb_buf_append(&r.output, "x", 1), SB_ETOOBIG);
    assert_int_equal(r.output.len, TALON_OUTPUT_MAX);
    talon_cmd_result_free(&r);
    assert_no_children();
}

/* A directory holding one executable script, `name`, printing `says`. */
static void make_tool(const char *dir, const char *name, const char *says)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\necho %s\n", says);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
}

static void run_looks_commands_up_in_the_path_of_envp_only(void **state)
{
    (void)state;
    char dir[] = "/tmp/talon-proc-XXXXXX";
    assert_non_null(mkdtemp(dir));
    make_tool(dir, "mytool", "from-envp-path");
    char pathvar[600];
    snprintf(pathvar, sizeof pathvar, "PATH=/nonexistent:%s:/usr/bin:/bin", dir);
    char *const env[] = { pathvar, NULL };
    char *const argv[] = { "mytool", NULL };
    struct talon_cmd_result r;
    struct sb_err err = { 0 };

    /* the caller's PATH has the tool, envp's does not: not found, and the
     * message names the command and the PATH searched */
    const char *saved = getenv("PATH");
    char *old = saved ? strdup(saved) : NULL;
    setenv("PATH", dir, 1);
    assert_int_equal(talon_run_command(argv, std_env, NULL, 5000, &r, &err), SB_ENOTFOUND);
    assert_non_null(strstr(err.msg, "mytool"));
    assert_non_null(strstr(err.msg, "PATH=/usr/bin:/bin"));

    /* envp's PATH has it, the caller's does not */
    setenv("PATH", "/nonexistent", 1);
    assert_int_equal(talon_run_command(argv, env, NULL, 5000, &r, &err), 0);
    assert_string_equal(r.output.data, "from-envp-path\n");
    talon_cmd_result_free(&r);
    if (old)
        setenv("PATH", old, 1);
    free(old);

    /* the environment is exactly envp */
    char *const env2[] = { pathvar, "ONLY=this", NULL };
    assert_int_equal(run_line("env", env2, NULL, 5000, &r, &err), 0);
    char want[700];
    snprintf(want, sizeof want, "%s\nONLY=this\n", pathvar);
    assert_string_equal(r.output.data, want);
    talon_cmd_result_free(&r);

    /* no PATH at all, a missing absolute path, a non-executable file */
    char *const nopath[] = { "HOME=/", NULL };
    assert_int_equal(talon_run_command(argv, nopath, NULL, 5000, &r, &err), SB_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no PATH"));
    char *const missing[] = { "/nonexistent/tool", NULL };
    assert_int_equal(talon_run_command(missing, env, NULL, 5000, &r, &err), SB_ENOTFOUND);
    char plain[600];
    snprintf(plain, sizeof plain, "%s/plain", dir);
    close(open(plain, O_WRONLY | O_CREAT, 0644));
    char *const noexec[] = { plain, NULL };
    assert_int_equal(talon_run_command(noexec, env, NULL, 5000, &r, &err), SB_ENOTFOUND);
    assert_no_children();
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Whether pid is gone (or a zombie nobody reaped yet: not running). */
static int pid_dead(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

static void run_timeout_kills_the_whole_process_group(void **state)
{
    (void)state;
    char pidfile[] = "/tmp/talon-proc-pid-XXXXXX";
    int fd = mkstemp(pidfile);
    assert_true(fd >= 0);
    close(fd);
    char line[300];
    /* the shell starts a grandchild in its group, records its pid, waits */
    snprintf(line, sizeof line, "sh -c 'sleep 30 & echo $! > %s; wait'", pidfile);
    struct talon_cmd_result r;
    struct sb_err err = { 0 };
    int64_t t0 = sb_mono_ms();
    assert_int_equal(run_line(line, std_env, NULL, 300, &r, &err), 0);
    int64_t took = sb_mono_ms() - t0;
    assert_true(r.timed_out);
    assert_int_equal(r.signal, SIGTERM);
    assert_true(took >= 300 && took < 2000);
    talon_cmd_result_free(&r);
    FILE *f = fopen(pidfile, "r");
    int gc = 0;
    assert_int_equal(fscanf(f, "%d", &gc), 1);
    fclose(f);
    unlink(pidfile);
    int64_t deadline = sb_mono_ms() + 3000;
    while (!pid_dead(gc) && sb_mono_ms() < deadline)
        sb_sleep_ms(10);
    if (!pid_dead(gc))
        fail_msg("grandchild %d survived the timeout", gc);
    assert_no_children();
}

static void run_timeout_escalates_to_sigkill_when_term_is_ignored(void **state)
{
    (void)state;
    struct talon_cmd_result r;
    struct sb_err err = { 0 };
    int64_t t0 = sb_mono_ms();
    /* the trap makes TERM ignored for the shell and the sleep it execs */
    assert_int_equal(run_line("sh -c 'trap \"\" TERM; echo armed; sleep 30; echo never'", std_env,
                              NULL, 200, &r, &err),
                     0);
    int64_t took = sb_mono_ms() - t0;
    assert_true(r.timed_out);
    assert_int_equal(r.exit_code, -1);
    assert_int_equal(r.signal, SIGKILL);
    assert_true(took >= 2000 && took < 5000); /* 200 ms + the 2 s grace */
    assert_string_equal(r.output.data, "armed\n");
    talon_cmd_result_free(&r);
    assert_no_children();
}

static void run_does_not_wait_for_a_background_process_holding_the_output(void **state)
{
    (void)state;
    struct talon_cmd_result r;
    struct sb_err err = { 0 };
    int64_t t0 = sb_mono_ms();
    assert_int_equal(run_line("sh -c 'sleep 3 & echo started'", std_env, NULL, 10000, &r, &err), 0);
    assert_true(sb_mono_ms() - t0 < 2000);
    assert_false(r.timed_out);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.output.data, "started\n");
    talon_cmd_result_free(&r);
    assert_no_children();
}

static void run_leaks_no_descriptor_into_the_child(void **state)
{
    (void)state;
    int leaky = open("/dev/null", O_RDONLY); /* deliberately not O_CLOEXEC */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    assert_true(leaky > 2);
    char line[300];
    snprintf(line, sizeof line,
             "sh -c 'for fd in %d %d %d; do test -e /proc/self/fd/$fd && echo "
             "leaked $fd; done; ls /proc/self/fd | wc -l'",
             leaky, pfd[0], pfd[1]);
    struct talon_cmd_result r;
    struct sb_err err = { 0 };
    assert_int_equal(run_line(line, std_env, NULL, 5000, &r, &err), 0);
    assert_null(strstr(r.output.data, "leaked"));
    /* ls sees 0, 1, 2 and its own directory fd */
    assert_string_equal(r.output.data, "4\n");
    talon_cmd_result_free(&r);
    close(leaky);
    close(pfd[0]);
    close(pfd[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(split_words_follows_shell_quoting_without_expansion),
        cmocka_unit_test(split_words_refuses_broken_lines_with_a_reason),
        cmocka_unit_test(run_reports_exit_code_and_merged_output),
        cmocka_unit_test(run_feeds_stdin_and_survives_a_command_that_does_not_read_it),
        cmocka_unit_test(run_keeps_only_the_tail_of_long_output),
        cmocka_unit_test(run_output_buffer_is_capped_at_the_output_max),
        cmocka_unit_test(run_looks_commands_up_in_the_path_of_envp_only),
        cmocka_unit_test(run_timeout_kills_the_whole_process_group),
        cmocka_unit_test(run_timeout_escalates_to_sigkill_when_term_is_ignored),
        cmocka_unit_test(run_does_not_wait_for_a_background_process_holding_the_output),
        cmocka_unit_test(run_leaks_no_descriptor_into_the_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
