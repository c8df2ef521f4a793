/* sup_internal.h - what the supervisor's own files share, and nothing else
 * includes: worker.c (the state x event table, the invariants, the status),
 * lifecycle.c and restart.c (the table's actions), children.c (the workers
 * talon holds and the one walk over them), tick.c (what is due when) and
 * leases.c (the secrets wait). One set of constants and budgets lives here;
 * docs/talon.md states them to operators. Main loop thread only. */
#ifndef TALON_SUP_INTERNAL_H
#define TALON_SUP_INTERNAL_H

#include "talon/worker.h"

/* ---- one set of constants ---- */

/* A starting worker (a plain start's or a restart's new one) is polled this
 * often until its health endpoint answers 2xx. */
#define TALON_POLL_MS 200
/* ... within max(health_interval x failures_before_restart, this). */
#define TALON_STARTUP_BUDGET_MIN_MS 15000
/* PUTs of a sync endpoint before giving up: the startup sync (retried
 * 2, 4, 6 s apart, docs/talon.md) and a restart's registration (1 s apart,
 * within the startup budget: the restart is waiting for it). */
#define TALON_SYNC_TRIES 4
#define TALON_STARTUP_SYNC_STEP_MS 2000
#define TALON_REGISTER_RETRY_MS 1000
/* After a SIGKILL, the next one if the worker is somehow still there. */
#define TALON_KILL_RECHECK_MS 5000
/* The old worker's SIGTERM after a swap (a call sysbusd sent it just
 * before switching URLs is still accepted). */
#define TALON_SWAP_TERM_DELAY_MS 250
/* The first delay of both backoffs (restarts, lease rounds). */
#define TALON_BACKOFF_FIRST_MS 1000

/* drain_timeout_secs + 1 s: the worker's own drain (SYSBUS_DRAIN_GRACE) is
 * drain_timeout_secs, so it normally exits by itself before the SIGKILL. */
int64_t talon_drain_ms(const struct talon_sup *sup);
/* How long a new worker has to become healthy (and, in a restart, to be
 * registered): max(health_interval x failures_before_restart, 15 s). */
int64_t talon_startup_budget_ms(const struct talon_sup *sup);

/* Sets of states, for the table's neighbours (the tick, the invariants). */
#define TALON_SET(s) (1u << (s))
/* The states with an active worker (sup->cur), and with a restart's new one. */
#define TALON_HOLDS_ACTIVE                                                     \
    (TALON_SET(TW_STARTING) | TALON_SET(TW_RUNNING) | TALON_SET(TW_DRAINING) | \
     TALON_SET(TW_HELD) | TALON_SET(TW_REPLACING) | TALON_SET(TW_REGISTERING))
#define TALON_HOLDS_NEW (TALON_SET(TW_REPLACING) | TALON_SET(TW_REGISTERING))
/* The states whose active worker gets health GETs (restart_blocked too: a
 * worker that recovers is kept; replacing too: one that fails meanwhile is
 * acted on if the restart fails), and the startup sync PUT. */
#define TALON_POLLED                                                       \
    (TALON_SET(TW_STARTING) | TALON_SET(TW_RUNNING) | TALON_SET(TW_HELD) | \
     TALON_SET(TW_REPLACING) | TALON_SET(TW_REGISTERING))
#define TALON_SYNCED (TALON_SET(TW_STARTING) | TALON_SET(TW_RUNNING))
/* The states that end by a deadline (sup->deadline set); the others have none. */
#define TALON_TIMED                                                            \
    (TALON_SET(TW_STARTING) | TALON_SET(TW_DRAINING) | TALON_SET(TW_BACKOFF) | \
     TALON_SET(TW_SECRETS) | TALON_SET(TW_HELD) | TALON_SET(TW_REPLACING) |    \
     TALON_SET(TW_REGISTERING))

static inline bool talon_in(enum talon_wstate s, unsigned set)
{
    return (set >> s) & 1u;
}

/* ---- children.c: the workers talon holds ---- */

/* Where a child is: slot 0 the active worker (sup->cur), 1 a restart's new
 * worker (sup->rs.next), 2.. the retired ones (sup->retired[slot - 2]). */
enum { TALON_SLOT_ACTIVE, TALON_SLOT_NEW, TALON_SLOT_RETIRED };
#define TALON_SLOTS (TALON_SLOT_RETIRED + TALON_MAX_RETIRED)

/* The one walk over every child talon holds: fn(child, slot, arg) for each
 * occupied slot in slot order, each slot read when its turn comes (fn may
 * move children between slots). Stops at the first non-zero return of fn
 * and returns it; 0 when fn returned 0 for all. */
typedef int (*talon_child_fn)(struct talon_child *c, int slot, void *arg);
int talon_sup_each_child(const struct talon_sup *sup, talon_child_fn fn, void *arg);

/* Leases, builds the environment and spawns a worker on port; the lease
 * round is recorded (secret_failures, lease.unavailable). On success fills
 * *out. SB_EUNAVAIL: a required secret could not be leased, nothing was
 * started or touched (no port takeover either); other codes: the port,
 * the env file or the spawn failed. err says which. */
int talon_sup_spawn(struct talon_sup *sup, int port, struct talon_child **out, struct sb_err *err);
/* Hands c to the retired list: SIGTERM after delay_ms (0 = now), SIGKILL
 * after the drain time that follows. Returns 0; 1 when no slot was free and
 * c was SIGKILLed, reaped and freed at once. */
int talon_sup_retire(struct talon_sup *sup, struct talon_child *c, int64_t delay_ms,
                     const char *why);
/* GET the health endpoint (or PUT the sync endpoint) of a worker on port. */
bool talon_sup_http(const struct talon_sup *sup, bool sync, int port, char *why, size_t whylen);
/* The port a zero-downtime restart moves to. */
int talon_sup_other_port(const struct talon_sup *sup);

/* ---- the table's actions: each returns the next state ---- */

typedef enum talon_wstate (*talon_action)(struct talon_sup *sup);

/* lifecycle.c */
enum talon_wstate talon_act_start(struct talon_sup *sup);
enum talon_wstate talon_act_ready(struct talon_sup *sup);
enum talon_wstate talon_act_healthy(struct talon_sup *sup);
enum talon_wstate talon_act_unhealthy(struct talon_sup *sup);
enum talon_wstate talon_act_startup_timeout(struct talon_sup *sup);
enum talon_wstate talon_act_exited(struct talon_sup *sup);
enum talon_wstate talon_act_drained(struct talon_sup *sup);
enum talon_wstate talon_act_kill(struct talon_sup *sup);
enum talon_wstate talon_act_stop_live(struct talon_sup *sup);
enum talon_wstate talon_act_stop_draining(struct talon_sup *sup);
enum talon_wstate talon_act_stop_idle(struct talon_sup *sup);
enum talon_wstate talon_act_held_healthy(struct talon_sup *sup);
enum talon_wstate talon_act_held_unhealthy(struct talon_sup *sup);
enum talon_wstate talon_act_health_restart(struct talon_sup *sup);
/* restart.c */
enum talon_wstate talon_act_restart_start(struct talon_sup *sup);
enum talon_wstate talon_act_restart_busy(struct talon_sup *sup);
enum talon_wstate talon_act_restart_begin(struct talon_sup *sup);
enum talon_wstate talon_act_new_healthy(struct talon_sup *sup);
enum talon_wstate talon_act_new_never_healthy(struct talon_sup *sup);
enum talon_wstate talon_act_new_exited(struct talon_sup *sup);
enum talon_wstate talon_act_sync_failed(struct talon_sup *sup);
enum talon_wstate talon_act_register_timeout(struct talon_sup *sup);
enum talon_wstate talon_act_swap(struct talon_sup *sup);
enum talon_wstate talon_act_replaced_unhealthy(struct talon_sup *sup);
enum talon_wstate talon_act_old_exited(struct talon_sup *sup);

/* ---- lifecycle.c helpers the restart's actions use ---- */

/* Records how the active worker ended (last_exit, stderr_tail, log) and
 * frees it (sup->cur = NULL); returns its run time. */
int64_t talon_sup_record_exit(struct talon_sup *sup);
/* Counts a failed run of run_ms for the crash-loop guard (quick_failures). */
void talon_sup_count_failure(struct talon_sup *sup, int64_t run_ms);
/* Sends talon/worker.crashloop (data borrowed, "reason" set by the caller)
 * when a [bus] is configured; a failed send is logged. */
void talon_sup_escalate(struct talon_sup *sup, json_t *data);

/* ---- restart.c: the answer to `talon restart` ---- */

/* Shutdown: a restart's new worker is retired and pending answers are
 * given ("why"). Called by the stop actions. */
void talon_restart_abort(struct talon_sup *sup, const char *why);
/* After each transition: a plain start's answer once it ran or failed. */
void talon_restart_on_state(struct talon_sup *sup);
/* A retired worker c exited: after a swap, it may be the awaited old one. */
void talon_restart_on_retired_exit(struct talon_sup *sup, const struct talon_child *c);
/* Sends the answer a row gave (sup->rs.outcome), with the state it left. */
void talon_restart_flush(struct talon_sup *sup);

/* ---- worker.c ---- */

/* STATUS= for systemd, sent when its text changes. */
void talon_sup_set_status(struct talon_sup *sup);
/* A JSON string of text even when it is not valid UTF-8 (bytes >= 0x80 of
 * a broken sequence become '?'). New reference. */
json_t *talon_json_text(const char *text);

#endif
