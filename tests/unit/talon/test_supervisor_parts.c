/* Unit tests for the parts talon's supervisor is built from, each through
 * its API with real processes and sockets: who holds a port (portowner),
 * spawning a command without a shell (exit status, stderr tail, a missing
 * command, a bad directory), the worker's environment layers (inject), the
 * lock that keeps two talons apart, and supervisor.json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fsutil.h"
#include "talon/inject.h"
#include "talon/portowner.h"
#include "talon/spawn.h"
#include "talon/talon.h"

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    return fd;
}

static void the_owner_of_a_listening_port_is_found(void **state)
{
    (void)state;
    int port;
    int fd = listen_any(&port);
    struct talon_port_owner o;
    struct sb_err err = { 0 };
    assert_int_equal(talon_port_owner(port, &o, &err), 1);
    assert_int_equal(o.pid, getpid());
    assert_non_null(strstr(o.cmd, "test_supervisor_parts"));
    close(fd);
    assert_int_equal(talon_port_owner(port, &o, &err), 0);
}

static struct talon_child *run(const char *cmd, const char *dir, struct sb_err *err, int *rc)
{
    char *argv[] = { "sh", "-c", (char *)cmd, NULL };
    char *envp[] = { "PATH=/usr/bin:/bin", "X=from-env", NULL };
    struct talon_spawn_req r = {
        .argv = argv, .envp = envp, .path = "/usr/bin:/bin", .dir = dir, .stderr_file = "/dev/null"
    };
    struct talon_child *c = NULL;
    *rc = talon_child_spawn(&r, &c, err);
    return c;
}

static void wait_exit(struct talon_child *c)
{
    int64_t deadline = sb_mono_ms() + 10000;
    while (!talon_child_reap(c) && sb_mono_ms() < deadline) {
        struct pollfd p = { c->err_fd, POLLIN, 0 };
        poll(&p, c->err_fd >= 0 ? 1 : 0, 20);
        talon_child_pump(c);
    }
    assert_true(c->exited);
}

static void a_spawned_command_reports_its_exit_and_stderr_tail(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    int rc;
    /* stderr is copied to talon's stderr here; keep the test output short */
    struct talon_child *c = run("echo \"boom $X in $(pwd)\" >&2; exit 3", "/tmp", &err, &rc);
    assert_int_equal(rc, 0);
    wait_exit(c);
    char d[64], tail[TALON_TAIL_MAX + 1];
    talon_child_describe(c, d, sizeof d);
    assert_string_equal(d, "exit 3");
    talon_child_tail(c, tail, sizeof tail);
    assert_string_equal(tail, "boom from-env in /tmp\n");
    talon_child_free(c);

    c = run("kill -SEGV $$", NULL, &err, &rc);
    assert_int_equal(rc, 0);
    wait_exit(c);
    talon_child_describe(c, d, sizeof d);
    assert_string_equal(d, "signal 11");
    talon_child_free(c);

    /* more than the tail holds: the last bytes are kept */
    c = run("i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxx >&2; i=$((i+1)); "
            "done",
            NULL, &err, &rc);
    assert_int_equal(rc, 0);
    wait_exit(c);
    talon_child_tail(c, tail, sizeof tail);
    assert_int_equal(strlen(tail), TALON_TAIL_MAX);
    assert_non_null(strstr(tail, "line-299-xxxxxxxxxxxxxxxxxxxxxx\n"));
    assert_null(strstr(tail, "line-0-"));
    talon_child_free(c);
}

static void a_command_that_cannot_run_is_an_error_at_spawn(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    char *argv[] = { "no-such-worker-binary", NULL };
    char *envp[] = { NULL };
    struct talon_spawn_req r = { .argv = argv, .envp = envp, .path = "/usr/bin:/bin" };
    struct talon_child *c = NULL;
    assert_int_equal(talon_child_spawn(&r, &c, &err), SB_ENOTFOUND);
    assert_non_null(strstr(err.msg, "not found in the worker's PATH (/usr/bin:/bin)"));
    int rc;
    c = run("exit 0", "/nonexistent-dir", &err, &rc);
    assert_int_equal(rc, SB_EIO);
    assert_non_null(strstr(err.msg, "cannot enter [worker] dir /nonexistent-dir"));
    assert_null(c);
}

static void the_worker_environment_is_layered_and_lists_names_only(void **state)
{
    (void)state;
    char envpath[] = "/tmp/talonenvlayerXXXXXX";
    int fd = mkstemp(envpath);
    const char *text = "WORKER_ROLE=cluster\nPATH=/evil\nPORT=1\nFROM_FILE=secret-ish\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char *pass[] = { "HOME", "TALON_TEST_UNSET_VAR" };
    struct talon_secret_map maps[] = { { "tok", "TOKEN_ENV", false } };
    struct talon_settings s = { 0 };
    s.worker_pass_env = (struct sb_strlist){ pass, 2 };
    s.worker_env_file = envpath;
    s.worker_path = "/usr/bin:/bin";
    s.worker_port = 3111;
    s.worker_alt_port = 3112;
    s.worker_drain_timeout_secs = 5;
    s.secret_maps = maps;
    s.nsecret_maps = 1;
    setenv("HOME", "/home/t", 1);
    struct talon_env e = { 0 };
    struct sb_err err = { 0 };
    assert_int_equal(talon_env_build(&s, 3112, false, &e, &err), 0);
    const char *want[] = { "HOME=/home/t",
                           "WORKER_ROLE=cluster",
                           "SYSBUS_DRAIN_GRACE=5s",
                           "FROM_FILE=secret-ish",
                           "PATH=/usr/bin:/bin",
                           "PORT=3112",
                           "TOKEN_ENV=" };
    assert_int_equal(e.n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < e.n; i++)
        assert_string_equal(e.envp[i], want[i]);
    assert_null(e.envp[e.n]);
    json_t *plan = talon_env_plan(&e);
    char *ptext = json_dumps(plan, 0);
    assert_null(strstr(ptext, "secret-ish")); /* names and sources, never values */
    assert_non_null(strstr(ptext, "\"source\": \"[worker] alt_port\""));
    assert_non_null(strstr(ptext, "\"source\": \"secret tok\""));
    free(ptext);
    json_decref(plan);
    talon_env_free(&e);
    unlink(envpath);
}

static void a_second_lock_is_refused_naming_the_holder(void **state)
{
    (void)state;
    char dir[] = "/tmp/talonlockXXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[200];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    struct sb_err err = { 0 };
    assert_int_equal(sb_mkdir_p(sub, 0700, &err), 0);
    pid_t holder = -1;
    int fd = talon_lock_take(sub, &holder, &err);
    assert_true(fd >= 0);
    int fd2 = talon_lock_take(sub, &holder, &err);
    assert_int_equal(fd2, -1);
    assert_int_equal(holder, getpid());
    char want[100];
    snprintf(want, sizeof want, "another talon (pid %d)", (int)getpid());
    assert_non_null(strstr(err.msg, want));
    close(fd);
    fd = talon_lock_take(sub, &holder, &err); /* released: free again */
    assert_true(fd >= 0);
    close(fd);

    json_t *st = json_pack("{s:i, s:s}", "worker_pid", 42, "health_url", "http://127.0.0.1:1");
    assert_int_equal(talon_state_write(sub, st), 0);
    json_decref(st);
    st = talon_state_read(sub);
    assert_int_equal(json_integer_value(json_object_get(st, "worker_pid")), 42);
    json_decref(st);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_owner_of_a_listening_port_is_found),
        cmocka_unit_test(a_spawned_command_reports_its_exit_and_stderr_tail),
        cmocka_unit_test(a_command_that_cannot_run_is_an_error_at_spawn),
        cmocka_unit_test(the_worker_environment_is_layered_and_lists_names_only),
        cmocka_unit_test(a_second_lock_is_refused_naming_the_holder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
