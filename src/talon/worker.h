/* worker.h - talon's supervision of system-bus-worker: the worker state
 * machine (worker.c, an explicit state x event table), the zero-downtime
 * restart (restart.c) and the crash-loop guard. Everything here runs on the
 * main loop's thread; the health server only sees talon_sup_status()'s JSON.
 * The design note is docs/internals/talon-supervisor.md.
 *
 * States of the active worker:
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
 *             running (still health-checked) while the leases are retried */
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
    TW_NSTATES
};

enum talon_wevent {
    TE_START,     /* start now (talon start, `talon restart` out of backoff/crashloop) */
    TE_HEALTHY,   /* a health GET answered 2xx */
    TE_UNHEALTHY, /* a health GET failed */
    TE_EXITED,    /* the active worker exited (reaped) */
    TE_DEADLINE,  /* the state's deadline passed (startup, kill, backoff) */
    TE_STOP,      /* shutdown: drain and stop */
    TE_SWAP,      /* zero-downtime restart: sup->incoming replaces the worker */
    TE_NEVENTS
};

#define TALON_MAX_RETIRED 16

/* A worker that is no longer the active one but has not exited yet. */
struct talon_retired {
    struct talon_child *c;
    int64_t term_at; /* monotonic ms: SIGTERM then (0 = already sent) */
    int64_t kill_at; /* monotonic ms: SIGKILL then (0 = already sent) */
    const char *why; /* "replaced", "restart failed", ... (static) */
};

enum talon_rs_phase { RS_IDLE, RS_STARTING, RS_SYNCING, RS_DRAINING_OLD, RS_WAIT_START };

struct talon_restart {
    enum talon_rs_phase phase;
    struct talon_child *next; /* RS_STARTING/RS_SYNCING: the new worker */
    int64_t deadline;         /* when the new worker must be healthy and synced */
    int64_t next_poll;
    int sync_tries;
    pid_t old_pid; /* RS_DRAINING_OLD: the worker being drained */
    int64_t started_ms;
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
    struct talon_child *cur;      /* the active worker, or NULL */
    struct talon_child *incoming; /* TE_SWAP's argument */
    int port;                     /* the active port: [worker] port or alt_port */
    bool stopping;
    bool ever_ready;
    int health_failures;     /* in a row, running */
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
    int64_t next_health;    /* next health GET (0 = none) */
    int64_t sync_at;        /* next startup sync PUT (0 = none) */
    int sync_left;
    struct talon_retired retired[TALON_MAX_RETIRED];
    struct talon_restart rs;
    /* Called with the outcome of a `talon restart` ({ok, ...}, borrowed). */
    void (*restart_done)(void *ctx, json_t *outcome);
    void *ctx;
};

const char *talon_wstate_name(enum talon_wstate s);

/* Prepares sup (state stopped); cfg must outlive it. */
void talon_sup_init(struct talon_sup *sup, const struct talon_settings *cfg);
/* Feeds one event through the state x event table. */
void talon_sup_event(struct talon_sup *sup, enum talon_wevent ev);
/* Runs what is due at the current time: health GETs, the startup sync PUT,
 * deadlines, the restart's steps, SIGKILLs of retired workers. Blocks at most
 * http_timeout_secs per HTTP call. */
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

/* ---- worker.c helpers used by restart.c ---- */

/* Leases, builds the environment and spawns a worker on port; the lease
 * round is recorded (secret_failures, lease.unavailable). On success fills
 * *out. SB_EUNAVAIL: a required secret could not be leased, nothing was
 * started or touched (no port takeover either); other codes: the port,
 * the env file or the spawn failed. err says which. */
int talon_sup_spawn(struct talon_sup *sup, int port, struct talon_child **out, struct sb_err *err);
/* Hands c to the retired list: SIGTERM after delay_ms (0 = now), SIGKILL
 * after the drain grace that follows. */
void talon_sup_retire(struct talon_sup *sup, struct talon_child *c, int64_t delay_ms,
                      const char *why);
/* GET the health endpoint (or PUT the sync endpoint) of a worker on port. */
bool talon_sup_http(const struct talon_sup *sup, bool sync, int port, char *why, size_t whylen);
/* The port a zero-downtime restart moves to. */
int talon_sup_other_port(const struct talon_sup *sup);

/* Sends talon/worker.crashloop (data borrowed, "reason" set by the caller)
 * when a [bus] is configured; a failed send is logged. */
void talon_sup_escalate(struct talon_sup *sup, json_t *data);

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
 * into out for the waiting states; "" otherwise. */
void talon_lease_reason(const struct talon_sup *sup, char *out, size_t outsz);
/* Adds {reason, secrets_unavailable, lease_attempts, next_retry_unix_ms}
 * to status in the waiting states. */
void talon_lease_status(const struct talon_sup *sup, json_t *status);

/* ---- restart.c ---- */

/* `talon restart` / SIGUSR2: running -> zero-downtime restart; backoff,
 * crashloop, stopped -> clear the crash-loop guard and start now; starting,
 * draining or a restart under way -> joins or is refused (outcome says).
 * The outcome arrives through sup->restart_done. */
void talon_restart_request(struct talon_sup *sup);
void talon_restart_tick(struct talon_sup *sup);
/* The restart's view of events: a worker exited (pid), the state changed. */
void talon_restart_on_exit(struct talon_sup *sup, struct talon_child *c);
void talon_restart_on_state(struct talon_sup *sup);
/* Shutdown: a restart under way fails, its new worker is retired. */
void talon_restart_abort(struct talon_sup *sup, const char *why);

#endif
