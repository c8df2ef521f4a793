/* restart.c - `talon restart`: the table's rows for TE_RESTART and for the
 * zero-downtime restart's states (see worker.h, worker.c's table and
 * docs/internals/talon-supervisor.md), and the answer to the request.
 *
 * Zero-downtime, from running (or restart_blocked) on port P:
 *   1. TE_RESTART: start the new worker on the other port Q -> replacing;
 *      its health endpoint is polled (TE_NEW_HEALTHY) within the startup
 *      budget (TE_DEADLINE);
 *   2. TE_NEW_HEALTHY -> registering: PUT its sync endpoint (TE_SYNCED,
 *      TE_SYNC_FAILED: TALON_SYNC_TRIES, 1 s apart, within the same budget);
 *      the worker registers with sysbusd under its own URL (port Q);
 *      sysbusd replaces the app's URL in one commit, so every call
 *      dispatched after the PUT's 200 goes to Q;
 *   3. TE_SYNCED is the swap -> running: Q is the active worker, P's is
 *      retired (SIGTERM 250 ms later); it answers 503 to anything new
 *      (sysbusd retries those at Q without spending an attempt) while its
 *      calls in flight finish;
 *   4. when P's worker has exited, the answer is sent (RW_OLD_EXIT).
 * If the new worker does not get healthy, exits or cannot register, the
 * active worker's sync endpoint is PUT again (the new one may have
 * registered itself at start), the new one is retired and the answer is a
 * failure; the old worker never stopped serving. Should the old worker exit
 * meanwhile, the new one becomes the active worker as a plain start.
 * The answer is not a state: rows store it (reply) and talon_sup_event
 * sends it once the transition is over. Main loop thread only. */
#include "common/clock.h"
#include "common/log.h"
#include "talon/sup_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Ends the wait and keeps the answer for talon_restart_flush. */
static void reply(struct talon_sup *sup, json_t *outcome)
{
    json_decref(sup->rs.outcome);
    sup->rs.outcome = outcome;
    sup->rs.wait = RW_NONE;
    sup->rs.old_pid = 0;
}

void talon_restart_flush(struct talon_sup *sup)
{
    json_t *outcome = sup->rs.outcome;
    if (!outcome)
        return;
    sup->rs.outcome = NULL;
    json_object_set_new(outcome, "ms", json_integer(sb_mono_ms() - sup->rs.started_ms));
    json_object_set_new(outcome, "worker_state",
                        json_string(talon_wstate_name(talon_sup_shown_state(sup))));
    json_object_set_new(outcome, "worker_pid",
                        sup->cur ? json_integer(sup->cur->pid) : json_null());
    json_object_set_new(outcome, "worker_port", json_integer(sup->port));
    if (sup->restart_done)
        sup->restart_done(sup->ctx, outcome);
    json_decref(outcome);
}

void talon_restart_request(struct talon_sup *sup)
{
    if (sup->rs.wait != RW_NONE) {
        SB_LOG(SB_INFO, "restart_joined", "a restart is already under way: waiting for it");
        return;
    }
    sup->rs.started_ms = sb_mono_ms();
    talon_sup_event(sup, TE_RESTART);
}

static void log_failed(const char *msg)
{
    SB_LOGK(SB_ERROR, "restart_failed", ((struct sb_lf[]){ LF_S("error", msg) }),
            "restart failed: %s", msg);
}

static bool refused_when_stopping(struct talon_sup *sup)
{
    if (!sup->stopping)
        return false;
    reply(sup,
          json_pack("{s:b, s:b, s:s}", "ok", 0, "stopping", 1, "error", "talon is shutting down"));
    return true;
}

/* stopped, backoff, crashloop, secrets_unavailable: a plain start. */
enum talon_wstate talon_act_restart_start(struct talon_sup *sup)
{
    if (refused_when_stopping(sup))
        return sup->state;
    SB_LOGK(SB_INFO, "restart_start",
            ((struct sb_lf[]){ LF_S("from", talon_wstate_name(sup->state)),
                               LF_I("quick_failures", sup->quick_failures) }),
            "restart: clearing the crash-loop guard and starting the worker now");
    sup->quick_failures = 0;
    sup->backoff_ms = TALON_BACKOFF_FIRST_MS;
    sup->lease.attempts = 0; /* a new episode: escalated again if it lasts */
    sup->rs.wait = RW_START;
    return talon_act_start(sup);
}

/* starting, draining: not now. */
enum talon_wstate talon_act_restart_busy(struct talon_sup *sup)
{
    if (refused_when_stopping(sup))
        return sup->state;
    char msg[200];
    snprintf(msg, sizeof msg, "the worker is %s: try again once it is running",
             talon_wstate_name(sup->state));
    reply(sup, json_pack("{s:b, s:s, s:b}", "ok", 0, "error", msg, "busy", 1));
    return sup->state;
}

/* running, restart_blocked: the new worker leases first; if it cannot (or
 * cannot start), nothing changed and the active worker keeps serving. */
enum talon_wstate talon_act_restart_begin(struct talon_sup *sup)
{
    if (refused_when_stopping(sup))
        return sup->state;
    int port = talon_sup_other_port(sup);
    struct sb_err err = { 0 };
    struct talon_child *c;
    if (talon_sup_spawn(sup, port, &c, &err) != 0) {
        char msg[800];
        snprintf(msg, sizeof msg, "cannot start the new worker on port %d: %s", port, err.msg);
        log_failed(msg);
        reply(sup, json_pack("{s:b, s:s}", "ok", 0, "error", msg));
        return sup->state;
    }
    int64_t now = sb_mono_ms();
    struct talon_restart *rs = &sup->rs;
    rs->next = c;
    rs->wait = RW_SWAP;
    rs->next_poll = now + TALON_POLL_MS;
    rs->sync_tries = 0;
    snprintf(rs->error, sizeof rs->error, "no answer yet");
    sup->deadline = now + talon_startup_budget_ms(sup);
    /* whichever worker ends up active is (re-)registered by the restart */
    sup->sync_at = 0;
    SB_LOGK(SB_INFO, "restart_begin",
            ((struct sb_lf[]){ LF_I("old_pid", sup->cur->pid), LF_I("old_port", sup->port),
                               LF_I("new_pid", c->pid), LF_I("new_port", port) }),
            "zero-downtime restart: new worker pid %d on port %d", (int)c->pid, port);
    return TW_REPLACING;
}

/* The restart is over without a swap: the active worker goes on as it
 * was, or, if it failed its checks meanwhile, gets the health restart. */
static enum talon_wstate after_restart(struct talon_sup *sup)
{
    sup->deadline = 0;
    sup->rs.next_poll = 0;
    if (sup->health_failures >= sup->cfg->worker_health_failures_before_restart)
        return talon_act_health_restart(sup);
    return TW_RUNNING;
}

static enum talon_wstate restart_failed(struct talon_sup *sup, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum talon_wstate restart_failed(struct talon_sup *sup, const char *fmt, ...)
{
    char msg[800], why[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* The new worker registers itself when it starts: point sysbusd back at
     * the active worker before the new one goes away. */
    if (talon_sup_http(sup, true, sup->port, why, sizeof why))
        SB_LOGK(SB_INFO, "worker_synced", ((struct sb_lf[]){ LF_I("port", sup->port) }),
                "re-registered the active worker on port %d", sup->port);
    else
        SB_LOGK(SB_ERROR, "worker_sync_failed", ((struct sb_lf[]){ LF_S("error", why) }),
                "cannot re-register the active worker: %s", why);
    if (sup->rs.next) {
        talon_sup_retire(sup, sup->rs.next, 0, "restart failed");
        sup->rs.next = NULL;
    }
    log_failed(msg);
    reply(sup, json_pack("{s:b, s:s}", "ok", 0, "error", msg));
    return after_restart(sup);
}

enum talon_wstate talon_act_new_healthy(struct talon_sup *sup)
{
    struct talon_child *c = sup->rs.next;
    SB_LOGK(SB_INFO, "restart_new_healthy",
            ((struct sb_lf[]){ LF_I("pid", c->pid), LF_I("port", c->port) }),
            "the new worker is healthy: registering it");
    sup->rs.next_poll = sb_mono_ms(); /* the PUT at once */
    return TW_REGISTERING;
}

enum talon_wstate talon_act_new_never_healthy(struct talon_sup *sup)
{
    return restart_failed(sup, "the new worker was not healthy within %lld ms: %s",
                          (long long)talon_startup_budget_ms(sup), sup->rs.error);
}

enum talon_wstate talon_act_new_exited(struct talon_sup *sup)
{
    struct talon_child *c = sup->rs.next;
    char d[64], tail[512];
    talon_child_describe(c, d, sizeof d);
    talon_child_tail(c, tail, sizeof tail);
    sup->rs.next = NULL;
    talon_child_free(c);
    return restart_failed(sup, "the new worker exited (%s) before it was registered; stderr: %s", d,
                          tail);
}

enum talon_wstate talon_act_sync_failed(struct talon_sup *sup)
{
    if (++sup->rs.sync_tries >= TALON_SYNC_TRIES)
        return restart_failed(sup, "the new worker could not register: %s", sup->rs.error);
    sup->rs.next_poll = sb_mono_ms() + TALON_REGISTER_RETRY_MS;
    return TW_REGISTERING;
}

enum talon_wstate talon_act_register_timeout(struct talon_sup *sup)
{
    return restart_failed(sup, "the new worker could not register: %s", sup->rs.error);
}

/* Registered: every call from now on goes to the new worker. */
enum talon_wstate talon_act_swap(struct talon_sup *sup)
{
    struct talon_child *old = sup->cur, *c = sup->rs.next;
    pid_t old_pid = old->pid;
    SB_LOGK(SB_INFO, "restart_swapped",
            ((struct sb_lf[]){ LF_I("old_pid", old_pid), LF_I("new_pid", c->pid),
                               LF_I("port", c->port) }),
            "the new worker is registered on port %d; draining the old one", c->port);
    sup->rs.next = NULL;
    sup->rs.next_poll = 0;
    sup->cur = c;
    sup->port = c->port;
    sup->kill_reason = NULL;
    sup->health_failures = 0;
    sup->backoff_ms = TALON_BACKOFF_FIRST_MS;
    sup->deadline = 0;
    sup->sync_at = 0; /* just synced */
    sup->next_health = sb_mono_ms() + sup->cfg->worker_health_interval_secs * 1000;
    /* The old worker gets its SIGTERM a moment later: a call sysbusd sent
     * it just before it switched to the new URL is then still accepted
     * (and finishes in the drain) rather than answered 503. */
    if (talon_sup_retire(sup, old, TALON_SWAP_TERM_DELAY_MS, "replaced by a zero-downtime restart"))
        reply(sup, json_pack("{s:b, s:b, s:i, s:s}", "ok", 1, "drained", 0, "old_pid", (int)old_pid,
                             "old_exit", "signal 9 (no retired slot)"));
    else {
        sup->rs.wait = RW_OLD_EXIT;
        sup->rs.old_pid = old_pid;
    }
    return TW_RUNNING;
}

enum talon_wstate talon_act_replaced_unhealthy(struct talon_sup *sup)
{
    if (++sup->health_failures == sup->cfg->worker_health_failures_before_restart)
        SB_LOGK(SB_ERROR, "worker_unhealthy",
                ((struct sb_lf[]){ LF_I("pid", sup->cur->pid),
                                   LF_I("failures", sup->health_failures) }),
                "worker pid %d failed %d health checks in a row: the restart under way "
                "replaces it",
                (int)sup->cur->pid, sup->health_failures);
    return sup->state;
}

/* The active worker exited during the restart: the new one takes over as a
 * plain start (polled within what is left of its startup budget, its
 * startup sync PUT), and the request's answer waits for it as for one. */
enum talon_wstate talon_act_old_exited(struct talon_sup *sup)
{
    talon_sup_count_failure(sup, talon_sup_record_exit(sup));
    struct talon_child *c = sup->rs.next;
    int64_t now = sb_mono_ms(),
            sync_at = c->started_ms + sup->cfg->worker_startup_sync_delay_secs * 1000;
    SB_LOGK(SB_WARN, "restart_handover",
            ((struct sb_lf[]){ LF_I("pid", c->pid), LF_I("port", c->port) }),
            "the active worker exited during the restart: new worker pid %d on port %d takes "
            "over as a start",
            (int)c->pid, c->port);
    sup->rs.next = NULL;
    sup->rs.next_poll = 0;
    sup->rs.wait = RW_START;
    sup->cur = c;
    sup->port = c->port;
    sup->health_failures = 0;
    sup->next_health = now;
    sup->sync_at = sync_at > now ? sync_at : now;
    sup->sync_left = TALON_SYNC_TRIES;
    return TW_STARTING; /* sup->deadline: the restart's, the startup budget from its spawn */
}

/* ---- the answer ---- */

void talon_restart_abort(struct talon_sup *sup, const char *why)
{
    switch (sup->rs.wait) {
    case RW_SWAP:
        if (sup->rs.next) {
            talon_sup_retire(sup, sup->rs.next, 0, "restart failed");
            sup->rs.next = NULL;
        }
        sup->rs.next_poll = 0;
        log_failed(why);
        reply(sup, json_pack("{s:b, s:s}", "ok", 0, "error", why));
        break;
    case RW_START: reply(sup, json_pack("{s:b, s:s}", "ok", 0, "error", why)); break;
    case RW_OLD_EXIT: reply(sup, json_pack("{s:b, s:s}", "ok", 1, "note", why)); break;
    case RW_NONE: break;
    }
}

void talon_restart_on_state(struct talon_sup *sup)
{
    if (sup->rs.wait != RW_START)
        return;
    char reason[800];
    talon_lease_reason(sup, reason, sizeof reason);
    if (sup->state == TW_RUNNING)
        reply(sup, json_pack("{s:b}", "ok", 1));
    else if (sup->state == TW_SECRETS)
        reply(sup, json_pack("{s:b, s:s}", "ok", 0, "error", reason));
    else if (sup->state == TW_BACKOFF || sup->state == TW_CRASHLOOP || sup->state == TW_STOPPED)
        reply(sup, json_pack("{s:b, s:s}", "ok", 0, "error", sup->last_exit));
}

void talon_restart_on_retired_exit(struct talon_sup *sup, const struct talon_child *c)
{
    if (sup->rs.wait != RW_OLD_EXIT || c->pid != sup->rs.old_pid)
        return;
    char d[64];
    talon_child_describe(c, d, sizeof d);
    bool drained = strcmp(d, "exit 0") == 0;
    SB_LOGK(drained ? SB_INFO : SB_WARN, "restart_done",
            ((struct sb_lf[]){ LF_I("old_pid", c->pid), LF_S("old_exit", d) }),
            "zero-downtime restart done: the old worker %s (%s)",
            drained ? "drained and exited" : "was stopped before it drained", d);
    reply(sup, json_pack("{s:b, s:b, s:i, s:s}", "ok", 1, "drained", drained, "old_pid",
                         (int)c->pid, "old_exit", d));
}
