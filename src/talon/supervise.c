/* supervise.c - talon's supervising mode: the lock, the start-up checks (env
 * file, the worker port's owner), the health server and watchdog, and the
 * one event loop.
 *
 * The loop: every signal talon acts on (SIGTERM, SIGINT, SIGHUP, SIGCHLD,
 * SIGUSR2) is blocked in every thread from the start and read from a
 * signalfd; restart requests from the health server arrive on an eventfd;
 * the workers' stderr pipes are polled too; the timeout is the supervisor's
 * next deadline (at most 1 s). Nothing in the loop blocks without a timeout:
 * HTTP calls to the worker have [worker] http_timeout_secs, leases
 * [secrets] timeout_secs. Main thread only (the health server and the
 * watchdog run on their own threads and share nothing else with it). */
#include "common/clock.h"
#include "common/fsutil.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/sdnotify.h"
#include "talon/envfile.h"
#include "talon/health.h"
#include "talon/portowner.h"
#include "talon/talon.h"
#include "talon/worker.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define LOOP_MAX_WAIT_MS 1000

struct loop {
    struct talon_settings *s;
    struct talon_sup sup;
    struct talon_health *health;
    struct talon_watchdog *wd;
    int sigfd;
    char health_url[300];
    char *last_state; /* the last supervisor.json written */
    uint64_t wd_usec; /* systemd WatchdogSec (0 = none) */
    int64_t next_wd_ping;
};

/* Publishes the supervisor's status to the health server and, when it
 * changed, to supervisor.json. */
static void publish(struct loop *l)
{
    json_t *st = talon_sup_status(&l->sup);
    json_t *file = json_pack("{s:i, s:s, s:O, s:O, s:O}", "talon_pid", (int)getpid(), "health_url",
                             l->health_url, "worker_pid", json_object_get(st, "worker_pid"),
                             "worker_port", json_object_get(st, "worker_port"), "worker_state",
                             json_object_get(st, "worker_state"));
    char *text = json_dumps(file, JSON_COMPACT | JSON_SORT_KEYS);
    if (text && (!l->last_state || strcmp(text, l->last_state) != 0)) {
        json_object_set_new(file, "updated_at_unix", json_integer(sb_now_ms() / 1000));
        if (talon_state_write(l->s->health_state_dir, file) != 0)
            SB_LOGK(SB_WARN, "state_write_failed",
                    ((struct sb_lf[]){ LF_S("dir", l->s->health_state_dir) }),
                    "cannot write supervisor.json in %s", l->s->health_state_dir);
        free(l->last_state);
        l->last_state = text;
    } else {
        free(text);
    }
    json_decref(file);
    talon_health_publish(l->health, st);
}

/* The status goes out before the outcome: whoever reads /health after
 * `talon restart` returned sees the restart over (the loop would publish it
 * only after the rest of its tick, a health GET for instance). */
static void restart_done(void *ctx, json_t *outcome)
{
    struct loop *l = ctx;
    publish(l);
    talon_health_restart_done(l->health, outcome);
}

static void on_signal(struct loop *l, int sig)
{
    switch (sig) {
    case SIGTERM:
    case SIGINT:
        if (!l->sup.stopping) {
            SB_LOGK(SB_INFO, "shutdown", ((struct sb_lf[]){ LF_S("signal", strsignal(sig)) }),
                    "got %s: draining the worker, then exiting", strsignal(sig));
            sb_sd_notify("STOPPING=1");
            talon_sup_event(&l->sup, TE_STOP); /* also ends a restart under way */
        } else {
            SB_LOG(SB_WARN, "shutdown_forced", "second %s: SIGKILL to every worker",
                   strsignal(sig));
            talon_sup_kill_all(&l->sup);
        }
        break;
    case SIGHUP:
        SB_LOG(SB_INFO, "reload", "SIGHUP: reloading the probes");
        sb_sd_notify("RELOADING=1");
        if (l->wd)
            talon_watchdog_reload(l->wd);
        sb_sd_notify("READY=1");
        break;
    case SIGUSR2:
        SB_LOG(SB_INFO, "restart_signal", "SIGUSR2: restart");
        talon_restart_request(&l->sup);
        break;
    case SIGCHLD: talon_sup_reap(&l->sup); break;
    default: break;
    }
}

static void read_signals(struct loop *l)
{
    struct signalfd_siginfo si;
    while (read(l->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
        on_signal(l, (int)si.ssi_signo);
}

static int run_loop(struct loop *l)
{
    talon_sup_event(&l->sup, TE_START);
    for (;;) {
        publish(l);
        if (talon_sup_done(&l->sup))
            return 0;
        int64_t now = sb_mono_ms(), due = talon_sup_next_due(&l->sup);
        int64_t wait = LOOP_MAX_WAIT_MS;
        if (due)
            wait = due <= now ? 0 : due - now < wait ? due - now : wait;
        if (l->wd_usec && now >= l->next_wd_ping) {
            sb_sd_notify("WATCHDOG=1");
            l->next_wd_ping = now + (int64_t)(l->wd_usec / 2000);
        }
        struct pollfd pfd[2 + 2 + TALON_MAX_RETIRED];
        int fds[2 + TALON_MAX_RETIRED];
        pfd[0] = (struct pollfd){ l->sigfd, POLLIN, 0 };
        pfd[1] = (struct pollfd){ talon_health_wake_fd(l->health), POLLIN, 0 };
        int n = talon_sup_fds(&l->sup, fds, 2 + TALON_MAX_RETIRED);
        for (int i = 0; i < n; i++)
            pfd[2 + i] = (struct pollfd){ fds[i], POLLIN, 0 };
        int r = poll(pfd, (nfds_t)(2 + n), (int)wait);
        if (r < 0 && errno != EINTR) {
            SB_LOG(SB_ERROR, "poll_failed", "poll: %s", strerror(errno));
            return TALON_EXIT_FAIL;
        }
        if (r > 0 && (pfd[0].revents & POLLIN))
            read_signals(l);
        if (r > 0 && (pfd[1].revents & POLLIN) && talon_health_claim(l->health) > 0)
            talon_restart_request(&l->sup);
        talon_sup_pump(&l->sup);
        talon_sup_tick(&l->sup);
    }
}

/* The worker port before the first start: free; held by the orphan of an
 * earlier talon on this state dir (reclaimed); held by another process
 * (refused unless --takeover). Returns 0 or an exit code. */
static int check_port(struct talon_settings *s)
{
    struct talon_port_owner o;
    struct sb_err err = { 0 };
    int port = (int)s->worker_port;
    int held = talon_port_owner(port, &o, &err);
    if (held < 0) {
        SB_LOG(SB_WARN, "port_check_failed", "cannot tell who holds port %d: %s", port, err.msg);
        return 0;
    }
    if (!held)
        return 0;
    json_t *st = talon_state_read(s->health_state_dir);
    json_int_t orphan = json_integer_value(json_object_get(st, "worker_pid"));
    json_decref(st);
    bool reclaim = o.pid && orphan == o.pid;
    if (!reclaim && !s->takeover) {
        SB_LOGK(SB_ERROR, "port_held",
                ((struct sb_lf[]){ LF_I("port", port), LF_I("pid", o.pid), LF_S("cmd", o.cmd) }),
                "port %d is held by pid %d (%s), a process talon did not start", port, (int)o.pid,
                o.pid ? o.cmd : "not visible to talon");
        fprintf(stderr,
                "talon: port %d is held by pid %d (%s), a process talon did not start; stop it or "
                "run talon --takeover\n",
                port, (int)o.pid, o.pid ? o.cmd : "not visible to talon");
        return TALON_EXIT_PORT;
    }
    SB_LOGK(SB_WARN, "port_takeover",
            ((struct sb_lf[]){ LF_I("port", port), LF_I("pid", o.pid), LF_S("cmd", o.cmd),
                               LF_B("orphan", reclaim) }),
            "%s: stopping pid %d (%s) that holds port %d",
            reclaim ? "the worker of an earlier talon is still running" : "--takeover", (int)o.pid,
            o.cmd, port);
    if (talon_port_takeover(port, o.pid, (int)(s->worker_drain_timeout_secs * 1000 + 1000), &err) !=
        0) {
        fprintf(stderr, "talon: %s\n", err.msg);
        return TALON_EXIT_PORT;
    }
    return 0;
}

static int block_signals(sigset_t *set)
{
    sigemptyset(set);
    int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR2 };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(set, sigs[i]);
    signal(SIGPIPE, SIG_IGN);
    return pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* What the process needs before anything else: libsodium, libcurl, the
 * state dir, its lock (one talon per state dir) and the log file. Returns
 * the lock's fd, or -1 with *exit_code set (and the reason on stderr). */
static int take_state_dir(struct talon_settings *s, int *exit_code)
{
    struct sb_err err = { 0 };
    if (sodium_init() < 0) {
        fprintf(stderr, "talon: libsodium failed to initialise\n");
        *exit_code = TALON_EXIT_FAIL;
        return -1;
    }
    sb_httpc_global_init();
    if (sb_mkdir_p(s->health_state_dir, 0700, &err) != 0) {
        fprintf(stderr, "talon: [health] state_dir: %s\n", err.msg);
        *exit_code = TALON_EXIT_CONFIG;
        return -1;
    }
    pid_t holder;
    int lock_fd = talon_lock_take(s->health_state_dir, &holder, &err);
    if (lock_fd < 0) {
        fprintf(stderr, "talon: %s\n", err.msg);
        *exit_code = TALON_EXIT_LOCKED;
        return -1;
    }
    if (s->health_log_file &&
        sb_log_open_file(s->health_log_file, s->health_log_max_bytes, isatty(2), &err) != 0) {
        fprintf(stderr, "talon: [health] log_file: %s\n", err.msg);
        close(lock_fd);
        *exit_code = TALON_EXIT_CONFIG;
        return -1;
    }
    return lock_fd;
}

/* A bad env file is a config error: said now, not at the first start. */
static int check_env_file(const struct talon_settings *s)
{
    if (!s->worker_env_file)
        return 0;
    struct sb_err err = { 0 };
    struct talon_envfile ef = { 0 };
    int erc = talon_envfile_load(s->worker_env_file, &ef, &err);
    talon_envfile_free(&ef);
    if (!erc)
        return 0;
    fprintf(stderr, "talon: [worker] env_file: %s\n", err.msg);
    SB_LOG(SB_ERROR, "config_error", "[worker] env_file: %s", err.msg);
    return TALON_EXIT_CONFIG;
}

static int open_signalfd(struct loop *l, const sigset_t *set)
{
    l->sigfd = signalfd(-1, set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (l->sigfd >= 0)
        return 0;
    SB_LOG(SB_ERROR, "signalfd_failed", "signalfd: %s", strerror(errno));
    return TALON_EXIT_FAIL;
}

/* The probes' thread, unless --worker-only. */
static int start_watchdog(struct loop *l)
{
    if (l->s->worker_only)
        return 0;
    struct sb_err err = { 0 };
    struct talon_watchdog_config wc;
    talon_watchdog_config_from(l->s, &wc);
    if (talon_watchdog_start(&wc, &l->wd, &err) == 0)
        return 0;
    fprintf(stderr, "talon: watchdog: %s\n", err.msg);
    SB_LOG(SB_ERROR, "config_error", "watchdog: %s", err.msg);
    return TALON_EXIT_CONFIG;
}

/* The health server's thread, and the URL it is reached at (written to
 * supervisor.json: 0.0.0.0 becomes 127.0.0.1, an IPv6 host gets brackets). */
static int start_health(struct loop *l)
{
    struct talon_settings *s = l->s;
    struct sb_err err = { 0 };
    char host[256];
    int hport;
    talon_parse_bind(s->health_bind, host, sizeof host, &hport);
    if (talon_health_start(host, hport, l->wd, &l->health, &err) != 0) {
        fprintf(stderr, "talon: cannot serve health on %s: %s\n", s->health_bind, err.msg);
        SB_LOG(SB_ERROR, "health_listen_failed", "cannot serve health on %s: %s", s->health_bind,
               err.msg);
        return TALON_EXIT_FAIL;
    }
    snprintf(l->health_url, sizeof l->health_url,
             strchr(host, ':') ? "http://[%s]:%d" : "http://%s:%d",
             strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1" : host, talon_health_port(l->health));
    SB_LOGK(
        SB_INFO, "listening",
        ((struct sb_lf[]){ LF_S("url", l->health_url), LF_I("port", talon_health_port(l->health)),
                           LF_I("worker_port", s->worker_port), LF_B("watchdog", l->wd != NULL) }),
        "talon %d: health on %s, supervising '%s'", (int)getpid(), l->health_url,
        s->worker_command);
    return 0;
}

/* Supervises the worker until the loop ends; returns the loop's exit code. */
static int supervise_worker(struct loop *l)
{
    if (sb_sd_watchdog_usec(&l->wd_usec) != 1)
        l->wd_usec = 0;
    talon_sup_init(&l->sup, l->s);
    l->sup.restart_done = restart_done;
    l->sup.ctx = l;
    int rc = run_loop(l);
    publish(l);
    SB_LOGK(SB_INFO, "stopped", ((struct sb_lf[]){ LF_S("last_exit", l->sup.last_exit) }),
            "talon stopped (worker: %s)", l->sup.last_exit[0] ? l->sup.last_exit : "never started");
    talon_sup_free(&l->sup);
    return rc;
}

int talon_supervise(struct talon_settings *s)
{
    sigset_t set;
    block_signals(&set); /* before any thread starts: they all inherit it */
    int rc = TALON_EXIT_OK;
    int lock_fd = take_state_dir(s, &rc);
    if (lock_fd < 0)
        return rc;
    struct loop l = { .s = s, .sigfd = -1 };
    /* In this order: the checks that can refuse to start come before the
     * threads, and the health server (which reports the watchdog) last. */
    if (!(rc = check_env_file(s)) && !(rc = check_port(s)) && !(rc = open_signalfd(&l, &set)) &&
        !(rc = start_watchdog(&l)) && !(rc = start_health(&l)))
        rc = supervise_worker(&l);
    talon_health_stop(l.health);
    if (l.wd)
        talon_watchdog_stop(l.wd);
    if (l.sigfd >= 0)
        close(l.sigfd);
    free(l.last_state);
    sb_log_close_file();
    close(lock_fd);
    return rc;
}
