/* Unit tests for the fail-closed rows of talon's worker state machine
 * (worker.c, leases.c), driven through talon_sup_event with real processes
 * and a secrets socket that does not exist (a stopped daemon): a required
 * secret that cannot be leased keeps the worker from starting
 * (secrets_unavailable, retried with backoff), an optional one does not; an
 * unhealthy worker whose replacement cannot be leased keeps running
 * (restart_blocked) and so does the worker of a zero-downtime restart that
 * cannot lease; the backoff arithmetic and its jitter. The integration
 * test 24c-talon-secrets.test.mjs does the same with a real daemon. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "talon/worker.h"

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

static char dir[64], marker[128];

/* Settings for a worker that touches the marker file and sleeps, with one
 * secret mapping (mapping: "tok=TOK_ENV" or "tok=TOK_ENV optional") leased
 * from a socket nobody serves. */
static void load(struct talon_settings *s, const char *mapping)
{
    strcpy(dir, "/tmp/talontableXXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(marker, sizeof marker, "%s/started", dir);
    char cmd[300], sock[128], state_dir[128], port[16], alt[16];
    snprintf(cmd, sizeof cmd, "/bin/sh -c 'echo $$ >> %s; exec sleep 30'", marker);
    snprintf(sock, sizeof sock, "%s/no-daemon.sock", dir);
    snprintf(state_dir, sizeof state_dir, "%s/state", dir);
    snprintf(port, sizeof port, "%d", free_port());
    snprintf(alt, sizeof alt, "%d", free_port());
    char *argv[] = { "talon",
                     "--worker-command",
                     cmd,
                     "--worker-port",
                     port,
                     "--worker-alt-port",
                     alt,
                     "--secrets-socket",
                     sock,
                     "--secret",
                     (char *)mapping,
                     "--secrets-timeout-secs",
                     "1",
                     "--secrets-retry-max-secs",
                     "4",
                     "--worker-crashloop-threshold",
                     "3",
                     "--worker-health-failures-before-restart",
                     "2",
                     "--worker-drain-timeout-secs",
                     "1",
                     "--worker-log-stderr",
                     "/dev/null",
                     "--health-state-dir",
                     state_dir };
    char *pos[1];
    size_t npos;
    struct sb_err err = { 0 };
    memset(s, 0, sizeof *s);
    setenv("XDG_CONFIG_HOME", dir, 1); /* no default config file */
    assert_int_equal(
        talon_settings_load(s, (int)(sizeof argv / sizeof argv[0]), argv, pos, &npos, &err), 0);
}

static void cleanup(struct talon_settings *s)
{
    talon_settings_free(s);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static bool started(void)
{
    return access(marker, F_OK) == 0;
}

/* Reaps until the state is not from (the worker exited and was handled). */
static void wait_leave(struct talon_sup *sup, enum talon_wstate from)
{
    int64_t deadline = sb_mono_ms() + 10000;
    while (sup->state == from && sb_mono_ms() < deadline) {
        talon_sup_reap(sup);
        usleep(10000);
    }
    assert_int_not_equal(sup->state, from);
}

static void wait_marker(void)
{
    int64_t deadline = sb_mono_ms() + 10000;
    while (!started() && sb_mono_ms() < deadline)
        usleep(10000);
    assert_true(started());
}

static const char *status_str(const struct talon_sup *sup, const char *key, char *buf, size_t n)
{
    json_t *st = talon_sup_status(sup);
    const char *v = json_string_value(json_object_get(st, key));
    snprintf(buf, n, "%s", v ? v : "");
    json_decref(st);
    return buf;
}

static void lease_backoff_doubles_from_one_second_to_the_cap_with_jitter(void **state)
{
    (void)state;
    /* rnd 0 is the full delay; every other value lands in [d/2, d] */
    int64_t want[] = { 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000 };
    for (int a = 1; a <= 8; a++) {
        int64_t d = want[a - 1];
        assert_int_equal(talon_lease_backoff_ms(a, 60000, 0), d);
        int64_t lo = d, hi = 0;
        for (uint32_t r = 0; r < 200000; r += 7) {
            int64_t v = talon_lease_backoff_ms(a, 60000, r * 2654435761u);
            assert_true(v >= d / 2 && v <= d);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        assert_true(lo < d * 6 / 10 && hi > d * 9 / 10); /* the jitter spreads */
    }
    /* however many rounds failed: the cap, no overflow */
    int64_t v = talon_lease_backoff_ms(1000000, 60000, 0xffffffffu);
    assert_true(v >= 30000 && v <= 60000);
    assert_int_equal(talon_lease_backoff_ms(1000000, 3600000, 0), 3600000);
    /* a cap of one second: every retry within a second */
    for (int a = 1; a < 40; a++)
        assert_true(talon_lease_backoff_ms(a, 1000, (uint32_t)a * 97) <= 1000);
}

static void a_required_secret_that_cannot_be_leased_keeps_the_worker_from_starting(void **state)
{
    (void)state;
    struct talon_settings s;
    load(&s, "tok=TOK_ENV");
    struct talon_sup sup;
    talon_sup_init(&sup, &s);
    int64_t t0 = sb_mono_ms();
    talon_sup_event(&sup, TE_START);
    assert_int_equal(sup.state, TW_SECRETS);
    assert_null(sup.cur);
    assert_int_equal(sup.starts, 0);
    assert_int_equal(sup.quick_failures, 0); /* nothing ran: not a crash */
    assert_int_equal(sup.lease.attempts, 1);
    assert_true(sup.deadline >= t0 + 500 && sup.deadline <= sb_mono_ms() + 1000);

    json_t *st = talon_sup_status(&sup);
    assert_string_equal(json_string_value(json_object_get(st, "worker_state")),
                        "secrets_unavailable");
    const char *reason = json_string_value(json_object_get(st, "reason"));
    assert_non_null(strstr(reason, "worker not started: secrets unavailable: tok (UNAVAIL: "));
    json_t *u = json_array_get(json_object_get(st, "secrets_unavailable"), 0);
    assert_string_equal(json_string_value(json_object_get(u, "name")), "tok");
    assert_string_equal(json_string_value(json_object_get(u, "env")), "TOK_ENV");
    assert_string_equal(json_string_value(json_object_get(u, "code")), "UNAVAIL");
    assert_true(json_integer_value(json_object_get(st, "next_retry_unix_ms")) > sb_now_ms());
    assert_int_equal(json_integer_value(json_object_get(st, "lease_attempts")), 1);
    json_decref(st);

    /* the retries back off: round 2 waits 1-2 s, round 3 2-4 s (the cap, 4 s, next) */
    int64_t before = sb_mono_ms();
    talon_sup_event(&sup, TE_DEADLINE);
    assert_int_equal(sup.state, TW_SECRETS);
    assert_int_equal(sup.lease.attempts, 2);
    assert_true(sup.deadline >= before + 1000 && sup.deadline <= sb_mono_ms() + 2000);
    talon_sup_event(&sup, TE_DEADLINE); /* the crash-loop threshold: escalated, still waiting */
    assert_int_equal(sup.lease.attempts, 3);
    assert_int_equal(sup.state, TW_SECRETS);
    assert_true(sup.deadline > 0);
    /* a health result has no row here; a stop does */
    talon_sup_event(&sup, TE_HEALTHY);
    assert_int_equal(sup.state, TW_SECRETS);
    talon_sup_event(&sup, TE_STOP);
    assert_int_equal(sup.state, TW_STOPPED);
    assert_true(talon_sup_done(&sup));
    assert_false(started());
    talon_sup_free(&sup);
    cleanup(&s);
}

static void an_optional_secret_that_cannot_be_leased_is_left_out(void **state)
{
    (void)state;
    struct talon_settings s;
    load(&s, "tok=TOK_ENV optional");
    struct talon_sup sup;
    talon_sup_init(&sup, &s);
    talon_sup_event(&sup, TE_START);
    assert_int_equal(sup.state, TW_STARTING);
    assert_non_null(sup.cur);
    assert_string_equal(json_string_value(json_array_get(sup.secret_failures, 0)), "tok");
    wait_marker();
    char buf[200];
    assert_string_equal(status_str(&sup, "reason", buf, sizeof buf), ""); /* no reason field */
    talon_sup_event(&sup, TE_STOP);
    assert_int_equal(sup.state, TW_DRAINING);
    wait_leave(&sup, TW_DRAINING);
    assert_int_equal(sup.state, TW_STOPPED);
    talon_sup_free(&sup);
    cleanup(&s);
}

static json_t *outcome;

static void keep_outcome(void *ctx, json_t *o)
{
    (void)ctx;
    json_decref(outcome);
    outcome = json_incref(o);
}

static void a_running_worker_keeps_running_when_its_replacement_cannot_lease(void **state)
{
    (void)state;
    struct talon_settings s;
    load(&s, "tok=TOK_ENV optional");
    struct talon_sup sup;
    talon_sup_init(&sup, &s);
    sup.restart_done = keep_outcome;
    talon_sup_event(&sup, TE_START);
    talon_sup_event(&sup, TE_HEALTHY);
    assert_int_equal(sup.state, TW_RUNNING);
    pid_t pid = sup.cur->pid;
    s.secret_maps[0].optional = false; /* from now on the secret is required */

    /* zero-downtime restart: aborted, the worker keeps serving */
    talon_restart_request(&sup);
    assert_non_null(outcome);
    assert_false(json_is_true(json_object_get(outcome, "ok")));
    assert_non_null(strstr(json_string_value(json_object_get(outcome, "error")),
                           "cannot start the new worker on port"));
    assert_non_null(
        strstr(json_string_value(json_object_get(outcome, "error")), "secrets unavailable: tok"));
    assert_int_equal(sup.state, TW_RUNNING);
    assert_int_equal(sup.cur->pid, pid);
    assert_int_equal(sup.rs.phase, RS_IDLE);

    /* health restart: blocked, the worker keeps running and is still polled */
    talon_sup_event(&sup, TE_UNHEALTHY);
    assert_int_equal(sup.state, TW_RUNNING);
    talon_sup_event(&sup, TE_UNHEALTHY);
    assert_int_equal(sup.state, TW_HELD);
    assert_int_equal(sup.cur->pid, pid);
    assert_int_equal(kill(pid, 0), 0);
    assert_true(sup.deadline > 0);
    char buf[800], want[100];
    snprintf(want, sizeof want,
             "worker pid %d failed its health checks and is not restarted: ", (int)pid);
    assert_non_null(strstr(status_str(&sup, "reason", buf, sizeof buf), want));
    assert_string_equal(status_str(&sup, "worker_state", buf, sizeof buf), "restart_blocked");
    talon_sup_event(&sup, TE_DEADLINE); /* the next lease round fails too */
    assert_int_equal(sup.state, TW_HELD);
    assert_int_equal(sup.lease.attempts, 2);
    talon_sup_event(&sup, TE_HEALTHY); /* recovered: the restart is dropped */
    assert_int_equal(sup.state, TW_RUNNING);
    assert_int_equal(sup.deadline, 0);
    assert_int_equal(sup.lease.attempts, 0);

    /* blocked again, then the worker exits: nothing new is started */
    talon_sup_event(&sup, TE_UNHEALTHY);
    talon_sup_event(&sup, TE_UNHEALTHY);
    assert_int_equal(sup.state, TW_HELD);
    talon_sup_event(&sup, TE_UNHEALTHY); /* counted, no other effect */
    assert_int_equal(sup.health_failures, 3);
    kill(pid, SIGKILL);
    wait_leave(&sup, TW_HELD);
    assert_int_equal(sup.state, TW_BACKOFF);
    assert_null(sup.cur);
    talon_sup_event(&sup, TE_DEADLINE);
    assert_int_equal(sup.state, TW_SECRETS);
    assert_null(sup.cur);
    assert_int_equal(sup.starts, 1);

    /* `talon restart` out of the wait: one more round at once, its outcome says why */
    json_decref(outcome);
    outcome = NULL;
    talon_restart_request(&sup);
    assert_int_equal(sup.state, TW_SECRETS);
    assert_int_equal(sup.lease.attempts, 1);
    assert_non_null(outcome);
    assert_non_null(strstr(json_string_value(json_object_get(outcome, "error")),
                           "worker not started: secrets unavailable: tok"));
    json_decref(outcome);
    outcome = NULL;
    talon_sup_event(&sup, TE_STOP);
    assert_true(talon_sup_done(&sup));
    talon_sup_free(&sup);
    cleanup(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lease_backoff_doubles_from_one_second_to_the_cap_with_jitter),
        cmocka_unit_test(a_required_secret_that_cannot_be_leased_keeps_the_worker_from_starting),
        cmocka_unit_test(an_optional_secret_that_cannot_be_leased_is_left_out),
        cmocka_unit_test(a_running_worker_keeps_running_when_its_replacement_cannot_lease),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
