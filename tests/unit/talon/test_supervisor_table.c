/* Unit tests for rows of talon's lifecycle table (worker.c; actions in
 * lifecycle.c, restart.c, leases.c), driven through talon_sup_event and
 * talon_restart_request with real processes and a secrets socket that does
 * not exist (a stopped daemon).
 * Fail-closed rows: a required secret that cannot be leased keeps the
 * worker from starting (secrets_unavailable, retried with backoff), an
 * optional one does not; an unhealthy worker whose replacement cannot be
 * leased keeps running (restart_blocked) and so does the worker of a
 * zero-downtime restart that cannot lease; the backoff arithmetic and its
 * jitter. The integration test 24c-talon-secrets.test.mjs does the same
 * with a real daemon.
 * Restart rows: replacing -> registering -> the swap, and each way a
 * restart fails (the new worker exits, is never healthy, cannot register;
 * a stop), the active worker exiting or failing its checks meanwhile, a
 * busy refusal and a plain start out of backoff; the answers they give.
 * 24-talon.test.mjs runs the restart over HTTP with real workers.
 * Invariants: talon_sup_violation names each broken one, and an event
 * that leaves one broken aborts talon (assert, in a child process). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
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
    assert_int_equal(sup.rs.wait, RW_NONE);

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

/* ---- the zero-downtime restart's rows ---- */

static bool alive(pid_t pid)
{
    return kill(pid, 0) == 0;
}

/* A supervisor whose worker runs (marked healthy by hand), answers kept. */
static void running_sup(struct talon_settings *s, struct talon_sup *sup)
{
    load(s, "tok=TOK_ENV optional");
    talon_sup_init(sup, s);
    sup->restart_done = keep_outcome;
    talon_sup_event(sup, TE_START);
    talon_sup_event(sup, TE_HEALTHY);
    assert_int_equal(sup->state, TW_RUNNING);
    json_decref(outcome);
    outcome = NULL;
}

/* Stops, reaps every worker and frees. */
static void stop_all(struct talon_settings *s, struct talon_sup *sup)
{
    talon_sup_event(sup, TE_STOP);
    int64_t deadline = sb_mono_ms() + 10000;
    while (!talon_sup_done(sup) && sb_mono_ms() < deadline) {
        talon_sup_tick(sup);
        usleep(10000);
    }
    assert_true(talon_sup_done(sup));
    talon_sup_free(sup);
    json_decref(outcome);
    outcome = NULL;
    cleanup(s);
}

static const char *outcome_error(void)
{
    assert_non_null(outcome);
    const char *e = json_string_value(json_object_get(outcome, "error"));
    return e ? e : "";
}

static void a_zero_downtime_restart_goes_replacing_registering_then_swaps(void **state)
{
    (void)state;
    struct talon_settings s;
    struct talon_sup sup;
    running_sup(&s, &sup);
    pid_t old = sup.cur->pid;
    talon_restart_request(&sup);
    assert_int_equal(sup.state, TW_REPLACING);
    assert_non_null(sup.rs.next);
    assert_int_equal(sup.rs.next->port, (int)s.worker_alt_port);
    assert_int_equal(sup.cur->pid, old);
    assert_null(outcome);
    char buf[200];
    assert_string_equal(status_str(&sup, "worker_state", buf, sizeof buf), "running");
    json_t *st = talon_sup_status(&sup);
    assert_true(json_is_true(json_object_get(st, "restart_in_progress")));
    json_decref(st);
    pid_t fresh = sup.rs.next->pid;
    talon_restart_request(&sup); /* joins: no second new worker, no answer yet */
    assert_int_equal(sup.rs.next->pid, fresh);
    assert_null(outcome);

    talon_sup_event(&sup, TE_NEW_HEALTHY);
    assert_int_equal(sup.state, TW_REGISTERING);
    for (int i = 1; i < 4; i++) { /* 4 sync tries in all: 3 may fail */
        talon_sup_event(&sup, TE_SYNC_FAILED);
        assert_int_equal(sup.state, TW_REGISTERING);
        assert_int_equal(sup.rs.sync_tries, i);
    }
    talon_sup_event(&sup, TE_SYNCED);
    assert_int_equal(sup.state, TW_RUNNING);
    assert_int_equal(sup.cur->pid, fresh);
    assert_int_equal(sup.port, (int)s.worker_alt_port);
    assert_null(sup.rs.next);
    assert_int_equal(sup.retired[0].c->pid, old);
    assert_true(sup.retired[0].term_at > 0); /* SIGTERM in 250 ms */
    assert_true(alive(old));
    assert_null(outcome); /* the answer waits for the old worker's exit */
    assert_int_equal(sup.rs.wait, RW_OLD_EXIT);

    int64_t deadline = sb_mono_ms() + 10000;
    while (!outcome && sb_mono_ms() < deadline) {
        talon_sup_tick(&sup);
        usleep(10000);
    }
    assert_non_null(outcome);
    assert_true(json_is_true(json_object_get(outcome, "ok")));
    assert_int_equal(json_integer_value(json_object_get(outcome, "old_pid")), old);
    assert_string_equal(json_string_value(json_object_get(outcome, "old_exit")), "signal 15");
    assert_int_equal(json_integer_value(json_object_get(outcome, "worker_port")),
                     s.worker_alt_port);
    assert_false(alive(old));
    assert_int_equal(sup.rs.wait, RW_NONE);
    stop_all(&s, &sup);
}

static void a_new_worker_that_cannot_register_fails_the_restart_and_the_old_one_serves(void **state)
{
    (void)state;
    struct talon_settings s;
    struct talon_sup sup;
    running_sup(&s, &sup);
    pid_t old = sup.cur->pid;
    talon_restart_request(&sup);
    pid_t fresh = sup.rs.next->pid;
    talon_sup_event(&sup, TE_NEW_HEALTHY);
    snprintf(sup.rs.error, sizeof sup.rs.error, "PUT x: HTTP 500");
    for (int i = 0; i < 4; i++)
        talon_sup_event(&sup, TE_SYNC_FAILED);
    assert_int_equal(sup.state, TW_RUNNING);
    assert_int_equal(sup.cur->pid, old);
    assert_int_equal(sup.port, (int)s.worker_port);
    assert_null(sup.rs.next);
    assert_int_equal(sup.deadline, 0);
    assert_false(json_is_true(json_object_get(outcome, "ok")));
    assert_string_equal(outcome_error(), "the new worker could not register: PUT x: HTTP 500");
    /* the new worker is retired: SIGTERM now, SIGKILL after the drain */
    assert_int_equal(sup.retired[0].c->pid, fresh);
    assert_int_equal(sup.retired[0].term_at, 0);
    assert_true(sup.retired[0].kill_at > 0);
    int64_t deadline = sb_mono_ms() + 10000;
    while (sup.retired[0].c && sb_mono_ms() < deadline) {
        talon_sup_reap(&sup);
        usleep(10000);
    }
    assert_null(sup.retired[0].c);
    assert_false(alive(fresh));
    assert_true(alive(old));
    stop_all(&s, &sup);
}

static void a_new_worker_that_exits_or_is_never_healthy_fails_the_restart(void **state)
{
    (void)state;
    struct talon_settings s;
    struct talon_sup sup;
    running_sup(&s, &sup);
    pid_t old = sup.cur->pid;
    talon_restart_request(&sup);
    kill(sup.rs.next->pid, SIGKILL);
    wait_leave(&sup, TW_REPLACING);
    assert_int_equal(sup.state, TW_RUNNING);
    assert_int_equal(sup.cur->pid, old);
    assert_null(sup.rs.next);
    assert_non_null(
        strstr(outcome_error(), "the new worker exited (signal 9) before it was registered"));
    json_decref(outcome);
    outcome = NULL;

    talon_restart_request(&sup); /* again: this one never gets healthy */
    assert_int_equal(sup.state, TW_REPLACING);
    talon_sup_event(&sup, TE_DEADLINE);
    assert_int_equal(sup.state, TW_RUNNING);
    assert_string_equal(outcome_error(),
                        "the new worker was not healthy within 60000 ms: no answer yet");
    json_decref(outcome);
    outcome = NULL;

    talon_restart_request(&sup); /* and this one is healthy but never registered */
    talon_sup_event(&sup, TE_NEW_HEALTHY);
    talon_sup_event(&sup, TE_DEADLINE);
    assert_int_equal(sup.state, TW_RUNNING);
    assert_non_null(strstr(outcome_error(), "the new worker could not register"));
    assert_int_equal(sup.cur->pid, old);
    assert_int_equal(sup.starts, 4);
    stop_all(&s, &sup);
}

static void the_active_worker_exiting_during_a_restart_hands_over_to_the_new_one(void **state)
{
    (void)state;
    struct talon_settings s;
    struct talon_sup sup;
    running_sup(&s, &sup);
    talon_restart_request(&sup);
    pid_t fresh = sup.rs.next->pid;
    int64_t budget = sup.deadline;
    kill(sup.cur->pid, SIGKILL);
    wait_leave(&sup, TW_REPLACING);
    /* a plain start of the new worker, within its restart budget */
    assert_int_equal(sup.state, TW_STARTING);
    assert_int_equal(sup.cur->pid, fresh);
    assert_int_equal(sup.port, (int)s.worker_alt_port);
    assert_null(sup.rs.next);
    assert_int_equal(sup.deadline, budget);
    assert_int_equal(sup.quick_failures, 1);
    char buf[100];
    assert_string_equal(status_str(&sup, "last_exit", buf, sizeof buf), "signal 9");
    assert_null(outcome); /* answered once it runs */
    talon_sup_event(&sup, TE_HEALTHY);
    assert_int_equal(sup.state, TW_RUNNING);
    assert_true(json_is_true(json_object_get(outcome, "ok")));
    assert_int_equal(json_integer_value(json_object_get(outcome, "worker_pid")), fresh);
    stop_all(&s, &sup);
}

static void failed_checks_during_a_restart_are_counted_then_acted_on_if_it_fails(void **state)
{
    (void)state;
    struct talon_settings s;
    struct talon_sup sup;
    running_sup(&s, &sup);
    pid_t old = sup.cur->pid;
    talon_restart_request(&sup);
    talon_sup_event(&sup, TE_UNHEALTHY);
    talon_sup_event(&sup, TE_UNHEALTHY); /* the threshold: the restart replaces it */
    assert_int_equal(sup.state, TW_REPLACING);
    assert_int_equal(sup.health_failures, 2);
    char buf[200];
    assert_string_equal(status_str(&sup, "worker_state", buf, sizeof buf), "restart_blocked");
    char want[100];
    snprintf(want, sizeof want, "worker pid %d failed its health checks; a restart is replacing it",
             (int)old);
    assert_string_equal(status_str(&sup, "reason", buf, sizeof buf), want);
    talon_sup_event(&sup, TE_HEALTHY); /* recovered */
    assert_string_equal(status_str(&sup, "worker_state", buf, sizeof buf), "running");
    talon_sup_event(&sup, TE_NEW_HEALTHY);
    talon_sup_event(&sup, TE_UNHEALTHY);
    talon_sup_event(&sup, TE_UNHEALTHY);
    assert_int_equal(sup.state, TW_REGISTERING);
    /* the restart fails: now the failed checks get the health restart */
    talon_sup_event(&sup, TE_DEADLINE);
    assert_int_equal(sup.state, TW_DRAINING);
    assert_int_equal(sup.cur->pid, old);
    assert_false(json_is_true(json_object_get(outcome, "ok")));
    wait_leave(&sup, TW_DRAINING);
    assert_int_equal(sup.state, TW_BACKOFF);
    assert_non_null(strstr(sup.last_exit, "killed: health checks failed"));
    stop_all(&s, &sup);
}

static void a_stop_during_a_restart_retires_the_new_worker_and_drains_the_old(void **state)
{
    (void)state;
    struct talon_settings s;
    struct talon_sup sup;
    running_sup(&s, &sup);
    talon_restart_request(&sup);
    pid_t fresh = sup.rs.next->pid;
    talon_sup_event(&sup, TE_NEW_HEALTHY);
    talon_sup_event(&sup, TE_STOP);
    assert_int_equal(sup.state, TW_DRAINING);
    assert_null(sup.rs.next);
    assert_int_equal(sup.retired[0].c->pid, fresh);
    assert_string_equal(outcome_error(), "talon is shutting down");
    talon_restart_request(&sup); /* refused while stopping */
    assert_true(json_is_true(json_object_get(outcome, "stopping")));
    stop_all(&s, &sup);
}

static void a_restart_while_starting_is_busy_and_out_of_backoff_is_a_start(void **state)
{
    (void)state;
    struct talon_settings s;
    load(&s, "tok=TOK_ENV optional");
    struct talon_sup sup;
    talon_sup_init(&sup, &s);
    sup.restart_done = keep_outcome;
    talon_sup_event(&sup, TE_START);
    talon_restart_request(&sup);
    assert_int_equal(sup.state, TW_STARTING);
    assert_true(json_is_true(json_object_get(outcome, "busy")));
    assert_string_equal(outcome_error(), "the worker is starting: try again once it is running");
    json_decref(outcome);
    outcome = NULL;
    kill(sup.cur->pid, SIGKILL);
    wait_leave(&sup, TW_STARTING);
    assert_int_equal(sup.state, TW_BACKOFF);
    talon_restart_request(&sup);
    assert_int_equal(sup.state, TW_STARTING);
    assert_int_equal(sup.quick_failures, 0); /* the guard is cleared */
    assert_null(outcome);
    talon_sup_event(&sup, TE_HEALTHY);
    assert_true(json_is_true(json_object_get(outcome, "ok")));
    stop_all(&s, &sup);
}

/* ---- invariants ---- */

static struct talon_child *fake_child(int port)
{
    struct talon_child *c = calloc(1, sizeof *c);
    c->pid = 999999; /* never signalled: these tests only look */
    c->port = port;
    c->err_fd = -1;
    c->err_out_fd = -1;
    return c;
}

static void each_broken_invariant_is_named(void **state)
{
    (void)state;
    struct talon_settings s;
    load(&s, "tok=TOK_ENV optional");
    struct talon_sup sup;
    talon_sup_init(&sup, &s);
    assert_null(talon_sup_violation(&sup));
    struct talon_child *a = fake_child((int)s.worker_port), *b = fake_child((int)s.worker_alt_port);

    sup.state = TW_RUNNING;
    assert_string_equal(talon_sup_violation(&sup), "no active worker in a state that has one");
    sup.cur = a;
    sup.next_health = 1;
    assert_string_equal(talon_sup_violation(&sup), "running, but not healthy"); /* never ready */
    sup.ever_ready = true;
    assert_null(talon_sup_violation(&sup));
    sup.health_failures = 2;
    assert_string_equal(talon_sup_violation(&sup), "running, but not healthy");
    sup.health_failures = 0;
    sup.deadline = 5;
    assert_string_equal(talon_sup_violation(&sup), "a deadline in a state that has none");
    sup.deadline = 0;
    sup.rs.next = b;
    assert_string_equal(talon_sup_violation(&sup),
                        "a restart's new worker outside replacing/registering");
    sup.state = TW_REPLACING;
    sup.deadline = 5;
    sup.rs.next_poll = 5;
    assert_string_equal(talon_sup_violation(&sup), "a restart under way that nobody waits for");
    sup.rs.wait = RW_SWAP;
    assert_null(talon_sup_violation(&sup));
    b->port = a->port;
    assert_string_equal(talon_sup_violation(&sup), "the new worker is on the active port");
    b->port = (int)s.worker_alt_port;
    sup.retired[3] = (struct talon_retired){ b, 0, 0, "test" };
    assert_string_equal(talon_sup_violation(&sup), "a worker is held twice (active, new, retired)");
    sup.rs.next = NULL;
    sup.rs.wait = RW_NONE;
    sup.state = TW_RUNNING;
    sup.deadline = 0;
    assert_string_equal(talon_sup_violation(&sup),
                        "a retired worker is neither signalled nor due its SIGTERM");
    sup.retired[3].term_at = 7;
    assert_null(talon_sup_violation(&sup));
    sup.rs.wait = RW_OLD_EXIT;
    sup.rs.old_pid = 4242;
    assert_string_equal(talon_sup_violation(&sup),
                        "a restart waits for an old worker that is not retired");
    sup.rs.old_pid = b->pid;
    assert_null(talon_sup_violation(&sup));

    sup.state = TW_SECRETS; /* the secrets wait holds no worker */
    sup.deadline = 5;
    assert_string_equal(talon_sup_violation(&sup), "an active worker in a state that has none");
    sup.cur = NULL;
    assert_string_equal(talon_sup_violation(&sup),
                        "secrets_unavailable without a failed lease round");
    sup.lease.attempts = 1;
    assert_null(talon_sup_violation(&sup));
    sup.stopping = true;
    assert_string_equal(talon_sup_violation(&sup), "stopping, but neither stopped nor draining");
    sup.state = TW_HELD;
    sup.cur = a;
    sup.stopping = false;
    assert_string_equal(talon_sup_violation(&sup),
                        "restart_blocked, but the worker did not fail its health checks");
    sup.health_failures = 2;
    assert_null(talon_sup_violation(&sup));
    sup.next_health = 0;
    assert_string_equal(talon_sup_violation(&sup), "a polled worker has no health GET due");
    sup.state = TW_BACKOFF;
    sup.cur = NULL;
    sup.deadline = 0;
    assert_string_equal(talon_sup_violation(&sup), "no deadline in a state that ends by one");

    sup.cur = NULL;
    sup.rs.next = NULL;
    sup.retired[3].c = NULL;
    free(a);
    free(b);
    talon_sup_free(&sup);
    cleanup(&s);
}

/* In a child process: an event whose row leaves a retired worker that will
 * never be signalled (a broken invariant, set up by hand) aborts; the same
 * event without it does not. Returns the child's wait status. */
static int event_in_child(bool broken)
{
    struct talon_settings s;
    load(&s, "tok=TOK_ENV optional");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2); /* the assert's message and the log line */
        struct talon_sup sup;
        talon_sup_init(&sup, &s);
        if (broken)
            sup.retired[0] = (struct talon_retired){ fake_child(1), 0, 0, "test" };
        talon_sup_event(&sup, TE_STOP);
        _exit(sup.state == TW_STOPPED ? 0 : 1);
    }
    int ws = 0;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    cleanup(&s);
    return ws;
}

static void an_event_that_breaks_an_invariant_aborts_talon(void **state)
{
    (void)state;
    int ws = event_in_child(false);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    ws = event_in_child(true);
    assert_true(WIFSIGNALED(ws));
    assert_int_equal(WTERMSIG(ws), SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lease_backoff_doubles_from_one_second_to_the_cap_with_jitter),
        cmocka_unit_test(a_required_secret_that_cannot_be_leased_keeps_the_worker_from_starting),
        cmocka_unit_test(an_optional_secret_that_cannot_be_leased_is_left_out),
        cmocka_unit_test(a_running_worker_keeps_running_when_its_replacement_cannot_lease),
        cmocka_unit_test(a_zero_downtime_restart_goes_replacing_registering_then_swaps),
        cmocka_unit_test(
            a_new_worker_that_cannot_register_fails_the_restart_and_the_old_one_serves),
        cmocka_unit_test(a_new_worker_that_exits_or_is_never_healthy_fails_the_restart),
        cmocka_unit_test(the_active_worker_exiting_during_a_restart_hands_over_to_the_new_one),
        cmocka_unit_test(failed_checks_during_a_restart_are_counted_then_acted_on_if_it_fails),
        cmocka_unit_test(a_stop_during_a_restart_retires_the_new_worker_and_drains_the_old),
        cmocka_unit_test(a_restart_while_starting_is_busy_and_out_of_backoff_is_a_start),
        cmocka_unit_test(each_broken_invariant_is_named),
        cmocka_unit_test(an_event_that_breaks_an_invariant_aborts_talon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
