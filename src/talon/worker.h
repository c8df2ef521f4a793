/* worker.h - talon's supervision of system-bus-worker: one lifecycle, an
 * explicit state x event table (worker.c) whose rows are the actions in
 * lifecycle.c (start, health, drain, backoff, the crash-loop guard),
 * leases.c (failing closed on secrets) and restart.c (the zero-downtime
 * restart). Everything here runs on the main loop's thread; the health
 * server only sees talon_sup_status()'s JSON. The design note, with the
 * whole table, is docs/internals/talon-supervisor.md.
 *
 * States:
 *   stopped   no worker, none wanted (before the start, after shutdown)
 *   starting  spawned, polled until its health endpoint answers 2xx
 *   running   healthy; GET every health_interval_secs
 *   draining  SIGTERM sent (health failures, startup timeout, shutdown);
 *             SIGKILL to its group if it has not exited in time
 *   backoff   waiting 1, 2, 4 ... restart_backoff_max_secs before a start
 *   crashloop crashloop_threshold quick failures in a row: no more starts
 *             until `talon restart`
 *   secrets_unavailable
 *             a start found a required secret it cannot lease: no worker
 *             runs; the leases are retried after 1, 2, 4 ... [secrets]
 *             retry_max_secs (with jitter) and the worker starts as soon as
 *             they all succeed (leases.c)
 *   restart_blocked
 *             the running worker failed its health checks, but its
 *             replacement's required secrets cannot be leased: it keeps
 *             running (still health-checked) while the leases are retried
 *   replacing (zero-downtime restart) the active worker serves; a new one
 *             started on the other port is polled until healthy
 *   registering
 *             the new worker is healthy; its sync endpoint is PUT; the 2xx
 *             is the swap: the new worker becomes the active one (running)
 *             and the old one is retired
 * /health and STATUS= show replacing and registering as the active worker's
 * condition (talon_sup_shown_state): running, or restart_blocked once it
 * failed health_failures_before_restart checks in a row. */
#ifndef TALON_WORKER_H
#define TALON_WORKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "talon/settings.h"
#include "talon/spawn.h"

enum talon_wstate {
    TW_STOPPED,
    TW_STARTING,
    TW_RUNNING,
    TW_DRAINING,
    TW_BACKOFF,
    TW_CRASHLOOP,
    TW_SECRETS,
    TW_HELD,
    TW_REPLACING,
    TW_REGISTERING,
    TW_NSTATES
};

enum talon_wevent {
    TE_START,       /* start now (talon's own start) */
    TE_HEALTHY,     /* a health GET of the active worker answered 2xx */
    TE_UNHEALTHY,   /* a health GET of the active worker failed */
    TE_EXITED,      /* the active worker exited (reaped) */
    TE_DEADLINE,    /* the state's deadline passed (startup, kill, backoff, lease, restart) */
    TE_STOP,        /* shutdown: drain and stop */
    TE_RESTART,     /* `talon restart` (none under way: talon_restart_request) */
    TE_NEW_HEALTHY, /* a health GET of the restart's new worker answered 2xx */
    TE_NEW_EXITED,  /* the restart's new worker exited (reaped) */
    TE_SYNCED,      /* the new worker's sync PUT answered 2xx: it is registered */
    TE_SYNC_FAILED, /* the new worker's sync PUT failed (rs.error says why) */
    TE_NEVENTS
};

#define TALON_MAX_RETIRED 16

/* A worker that is no longer the active one but has not exited yet. */
struct talon_retired {
    struct talon_child *c;
    int64_t term_at; /* monotonic ms: SIGTERM then (0 = already sent) */
    int64_t kill_at; /* monotonic ms: SIGKILL then (0 = not yet due) */
    const char *why; /* "replaced", "restart failed", ... (static) */
};

/* Who waits for the answer of a `talon restart`: it is not a state of the
 * worker but an open reply, answered by the row that ends the restart. */
enum talon_reply_wait {
    RW_NONE,
    RW_SWAP,     /* replacing/registering: the row that ends them answers */
    RW_START,    /* a plain start: the first of running or a failure state */
    RW_OLD_EXIT, /* swapped: the old worker's exit (rs.old_pid) */
};

struct talon_restart {
    enum talon_reply_wait wait;
    struct talon_child *next; /* replacing/registering: the new worker */
    int64_t next_poll;        /* its next health GET or sync PUT (monotonic ms) */
    int sync_tries;           /* its failed sync PUTs */
    pid_t old_pid;            /* RW_OLD_EXIT: the worker being drained */
    int64_t started_ms;       /* when the request came */
    char error[600];          /* the new worker's last failed GET or PUT */
    json_t *outcome;          /* the answer, sent when the transition is over */
};

/* The fail-closed wait for a worker's required secrets (leases.c). The
 * retry itself is the state's deadline (sup->deadline). */
struct talon_lease_wait {
    int attempts;         /* lease rounds failed in a row; 0 after one succeeds */
    int64_t next_unix_ms; /* when the next round is due, wall clock (for /health) */
    json_t *unavailable;  /* [{name, env, code, error}] of the last lease round */
    char error[512];      /* "secrets unavailable: NAME (CODE: error), ..." of that round */
};

struct talon_sup {
    const struct talon_settings *cfg;
    enum talon_wstate state;
    struct talon_child *cur; /* the active worker, or NULL */
    int port;                /* the active port: [worker] port or alt_port */
    bool stopping;
    bool ever_ready;
    int health_failures;     /* of the active worker, in a row */
    int64_t backoff_ms;      /* the next backoff */
    int quick_failures;      /* in a row */
    int64_t starts;          /* workers started, all kinds */
    int64_t restarts;        /* starts after the first */
    char last_exit[600];     /* "exit 1", "signal 9", "spawn failed: ..." */
    const char *kill_reason; /* why talon is draining the active worker (static text) */
    char stderr_tail[TALON_TAIL_MAX + 1]; /* of the last failed run */
    json_t *secret_failures;              /* [name] that failed in the last lease round */
    struct talon_lease_wait lease;
    char status_sent[1024]; /* the last STATUS= sent to systemd */
    int64_t deadline;       /* TE_DEADLINE at this monotonic ms (0 = none) */
    int64_t next_health;    /* next health GET of the active worker (0 = none) */
    int64_t sync_at;        /* next startup sync PUT (0 = none) */
    int sync_left;
    struct talon_retired retired[TALON_MAX_RETIRED];
    struct talon_restart rs;
    /* Called with the outcome of a `talon restart` ({ok, ...}, borrowed). */
    void (*restart_done)(void *ctx, json_t *outcome);
    void *ctx;
};

/* The state's own name ("replacing" included), for logs. */
const char *talon_wstate_name(enum talon_wstate s);
/* The state /health, supervisor.json and STATUS= show: replacing and
 * registering as running or restart_blocked (see above), others as is. */
enum talon_wstate talon_sup_shown_state(const struct talon_sup *sup);

/* Prepares sup (state stopped); cfg must outlive it. */
void talon_sup_init(struct talon_sup *sup, const struct talon_settings *cfg);
/* Feeds one event through the state x event table, then checks the
 * invariants (assert) and sends a restart's answer if the row gave one. */
void talon_sup_event(struct talon_sup *sup, enum talon_wevent ev);
/* NULL when every invariant in worker.c's header holds, else the one that
 * does not (static text). talon_sup_event asserts it after every event. */
const char *talon_sup_violation(const struct talon_sup *sup);
/* Runs what is due at the current time: health GETs, the startup sync PUT,
 * the new worker's GETs and PUTs, deadlines, SIGTERMs and SIGKILLs of
 * retired workers. Blocks at most http_timeout_secs per HTTP call. */
void talon_sup_tick(struct talon_sup *sup);
/* Reaps every worker talon started (never waitpid(-1): the watchdog's
 * commands are reaped by their runner). */
void talon_sup_reap(struct talon_sup *sup);
/* Monotonic ms of the next thing due (0 = nothing). */
int64_t talon_sup_next_due(const struct talon_sup *sup);
/* stderr pipe fds to poll, into fds (at most max); returns how many. */
int talon_sup_fds(const struct talon_sup *sup, int *fds, int max);
/* Copies every worker's pending stderr. */
void talon_sup_pump(struct talon_sup *sup);
/* True when stopped and every worker has exited (talon may exit). */
bool talon_sup_done(const struct talon_sup *sup);
/* SIGKILL every worker (second SIGTERM). */
void talon_sup_kill_all(struct talon_sup *sup);
/* {worker_state, worker_pid, worker_port, worker_restarts, last_exit,
 *  stderr_tail (crashloop/backoff only), secret_failures,
 *  restart_in_progress, worker_health_failures, quick_failures}, and in
 *  secrets_unavailable / restart_blocked {reason, secrets_unavailable,
 *  lease_attempts, next_retry_unix_ms}. New reference. */
json_t *talon_sup_status(const struct talon_sup *sup);
void talon_sup_free(struct talon_sup *sup);

/* `talon restart` / SIGUSR2: joins a restart under way (its answer is
 * pending), else feeds TE_RESTART: running or restart_blocked -> a
 * zero-downtime restart; backoff, crashloop, secrets_unavailable, stopped ->
 * clear the crash-loop guard and start now; starting or draining -> busy.
 * The outcome arrives through sup->restart_done. */
void talon_restart_request(struct talon_sup *sup);

/* ---- leases.c: the fail-closed wait for required secrets ---- */

/* The delay before lease round attempt+1 after attempt (>= 1) failed rounds:
 * 1 s doubling, capped at max_ms, with jitter: a value in [d/2, d] picked by
 * rnd (any 32-bit number). Pure. */
int64_t talon_lease_backoff_ms(int attempt, int64_t max_ms, uint32_t rnd);
/* A lease round: builds the worker's environment for port into env (the
 * caller frees it with talon_env_free), recording failed secrets and, on
 * SB_EUNAVAIL, what is unavailable and why in sup->lease. */
struct talon_env;
int talon_lease_env(struct talon_sup *sup, int port, struct talon_env *env, struct sb_err *err);
/* A lease round without a spawn (before a health restart drains the
 * worker): builds the environment, wipes it. 0, SB_EUNAVAIL (recorded as
 * by talon_sup_spawn) or another failure (err). */
int talon_lease_check(struct talon_sup *sup, struct sb_err *err);
/* After a failed round (lease.error filled): counts it, schedules the next
 * one (sup->deadline), logs, and at crashloop_threshold rounds in a row
 * escalates (log at error, talon/worker.crashloop with reason
 * secrets_unavailable). Returns next, the state to wait in (TW_SECRETS or
 * TW_HELD). */
enum talon_wstate talon_lease_wait(struct talon_sup *sup, enum talon_wstate next);
/* After a round that leased every required secret: ends the wait. */
void talon_lease_ok(struct talon_sup *sup);
/* "worker not started: secrets unavailable: ..." (or "not restarted")
 * into out for the waiting states (as shown); "" otherwise. */
void talon_lease_reason(const struct talon_sup *sup, char *out, size_t outsz);
/* Adds {reason, secrets_unavailable, lease_attempts, next_retry_unix_ms}
 * to status in the waiting states (as shown). */
void talon_lease_status(const struct talon_sup *sup, json_t *status);

#endif
