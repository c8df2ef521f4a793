/* Unit tests for the logger's file sink: lines go to the file (and the fd
 * only when asked), the file is renamed to <file>.1 before a line would take
 * it past the maximum, at most two files exist, and no line is split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0, c, last = '\n';
    while ((c = fgetc(f)) != EOF) {
        if (c == '\n')
            n++;
        last = c;
    }
    fclose(f);
    assert_int_equal(last, '\n'); /* whole lines only */
    return n;
}

static void lines_rotate_to_dot_one_before_passing_the_maximum(void **state)
{
    (void)state;
    char dir[] = "/tmp/sblogXXXXXX", path[100], old[110];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.log", dir);
    snprintf(old, sizeof old, "%s.1", path);
    int p[2];
    assert_int_equal(pipe(p), 0);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    sb_log_init("t", SB_INFO, p[1]);
    struct sb_err err = { 0 };
    assert_int_equal(sb_log_open_file(path, 4096, false, &err), 0);
    for (int i = 0; i < 100; i++)
        SB_LOGK(SB_INFO, "line", ((struct sb_lf[]){ LF_I("i", i) }), "line %d of the test", i);
    char buf[64];
    assert_true(read(p[0], buf, sizeof buf) < 0); /* nothing on the fd */
    assert_true(file_size(path) > 0 && file_size(path) <= 4096);
    assert_true(file_size(old) > 0 && file_size(old) <= 4096);
    int total = count_lines(path) + count_lines(old);
    assert_true(total > 0 && total < 100); /* older lines are gone: two files at most */
    sb_log_close_file();
    SB_LOG(SB_INFO, "after", "after close");
    assert_true(read(p[0], buf, sizeof buf) > 0); /* back to the fd only */
    assert_int_equal(sb_log_open_file("/nonexistent-dir/x.log", 0, true, &err), SB_EIO);
    sb_log_init("t", SB_INFO, 2);
    close(p[0]);
    close(p[1]);
    unlink(path);
    unlink(old);
    rmdir(dir);
}

/* A write the disk cuts short (here: RLIMIT_FSIZE) leaves no torn line:
 * the file is cut back to its last whole line. Runs in a child, as the
 * limit applies to the whole process. */
static void a_short_write_leaves_no_torn_line(void **state)
{
    (void)state;
    char dir[] = "/tmp/sblogXXXXXX", path[100];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.log", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        int devnull = open("/dev/null", O_WRONLY);
        sb_log_init("t", SB_INFO, devnull);
        struct sb_err err = { 0 };
        if (sb_log_open_file(path, 1 << 20, false, &err) != 0)
            _exit(2);
        SB_LOG(SB_INFO, "first", "a first whole line");
        struct rlimit rl = { (rlim_t)file_size(path) + 40, (rlim_t)file_size(path) + 40 };
        setrlimit(RLIMIT_FSIZE, &rl);
        SB_LOG(SB_INFO, "second",
               "a line far longer than the forty bytes the limit leaves room for");
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(count_lines(path), 1); /* the first line, whole, and nothing after it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lines_rotate_to_dot_one_before_passing_the_maximum),
        cmocka_unit_test(a_short_write_leaves_no_torn_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
