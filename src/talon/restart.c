/* restart.c - `talon restart`: the zero-downtime restart and the restart out
 * of backoff/crashloop (see worker.h and docs/internals/talon-supervisor.md).
 *
 * Zero-downtime, from running on port P:
 *   1. start the new worker on the other port Q (RS_STARTING); poll its
 *      health endpoint until 2xx (budget: the startup budget);
 *   2. PUT its sync endpoint (RS_SYNCING): the worker registers with
 *      sysbusd under its own URL (port Q); sysbusd replaces the app's URL in
 *      one commit, so every call dispatched after the PUT's 200 goes to Q;
 *   3. swap (TE_SWAP): Q becomes the active worker, P's is retired: SIGTERM,
 *      it answers 503 to anything new (sysbusd retries those without spending
 *      an attempt, at Q) while its calls in flight finish (RS_DRAINING_OLD);
 *   4. when P's worker has exited, the outcome is reported.
 * If the new worker does not get healthy or cannot register, the active
 * worker's sync endpoint is PUT again (the new one may have registered
 * itself at start), the new one is retired and the outcome is a failure;
 * the old worker never stopped serving. Main loop thread only. */
#include "talon/worker.h"
#include "common/clock.h"
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define POLL_MS 200
#define SYNC_RETRY_MS 1000
#define SYNC_TRIES 5
#define BUDGET_MIN_MS 15000

static int64_t budget_ms(const struct talon_sup *sup)
{
    int64_t b = sup->cfg->worker_health_interval_secs *
                sup->cfg->worker_health_failures_before_restart * 1000;
    return b < BUDGET_MIN_MS ? BUDGET_MIN_MS : b;
}

static void done(struct talon_sup *sup, json_t *outcome)
{
    sup->rs.phase = RS_IDLE;
    sup->rs.old_pid = 0;
    if (outcome) {
        json_object_set_new(outcome, "ms", json_integer(sb_mono_ms() - sup->rs.started_ms));
        json_object_set_new(outcome, "worker_state", json_string(talon_wstate_name(sup->state)));
        json_object_set_new(outcome, "worker_pid",
                            sup->cur ? json_integer(sup->cur->pid) : json_null());
        json_object_set_new(outcome, "worker_port", json_integer(sup->port));
    }
    if (sup->restart_done && outcome)
        sup->restart_done(sup->ctx, outcome);
    json_decref(outcome);
}

static void fail(struct talon_sup *sup, bool resync, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct talon_sup *sup, bool resync, const char *fmt, ...)
{
    char msg[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* The new worker registers itself when it starts: point sysbusd back at
     * the active worker before the new one goes away. */
    if (resync && sup->cur && (sup->state == TW_RUNNING || sup->state == TW_HELD)) {
        char why[600];
        if (talon_sup_http(sup, true, sup->port, why, sizeof why))
            SB_LOGK(SB_INFO, "worker_synced", ((struct sb_lf[]){ LF_I("port", sup->port) }),
                    "re-registered the active worker on port %d", sup->port);
        else
            SB_LOGK(SB_ERROR, "worker_sync_failed", ((struct sb_lf[]){ LF_S("error", why) }),
                    "cannot re-register the active worker: %s", why);
    }
    if (sup->rs.next) {
        talon_sup_retire(sup, sup->rs.next, 0, "restart failed");
        sup->rs.next = NULL;
    }
    SB_LOGK(SB_ERROR, "restart_failed", ((struct sb_lf[]){ LF_S("error", msg) }),
            "restart failed: %s", msg);
    done(sup, json_pack("{s:b, s:s}", "ok", 0, "error", msg));
}

static void begin_zero_downtime(struct talon_sup *sup)
{
    int port = talon_sup_other_port(sup);
    struct sb_err err = { 0 };
    struct talon_child *c;
    if (talon_sup_spawn(sup, port, &c, &err) != 0) {
        fail(sup, false, "cannot start the new worker on port %d: %s", port, err.msg);
        return;
    }
    int64_t now = sb_mono_ms();
    sup->rs.next = c;
    sup->rs.phase = RS_STARTING;
    sup->rs.deadline = now + budget_ms(sup);
    sup->rs.next_poll = now + POLL_MS / 2;
    sup->rs.sync_tries = 0;
    SB_LOGK(SB_INFO, "restart_begin",
            ((struct sb_lf[]){ LF_I("old_pid", sup->cur->pid), LF_I("old_port", sup->port),
                               LF_I("new_pid", c->pid), LF_I("new_port", port) }),
            "zero-downtime restart: new worker pid %d on port %d", (int)c->pid, port);
}

void talon_restart_request(struct talon_sup *sup)
{
    if (sup->rs.phase != RS_IDLE) {
        SB_LOG(SB_INFO, "restart_joined", "a restart is already under way: waiting for it");
        return;
    }
    sup->rs.started_ms = sb_mono_ms();
    if (sup->stopping) {
        done(sup, json_pack("{s:b, s:b, s:s}", "ok", 0, "stopping", 1, "error",
                            "talon is shutting down"));
        return;
    }
    switch (sup->state) {
    case TW_RUNNING:
    case TW_HELD: /* the replacement leases first: if it cannot, the worker keeps running */
        begin_zero_downtime(sup);
        return;
    case TW_BACKOFF:
    case TW_CRASHLOOP:
    case TW_SECRETS:
    case TW_STOPPED:
        SB_LOGK(SB_INFO, "restart_start",
                ((struct sb_lf[]){ LF_S("from", talon_wstate_name(sup->state)),
                                   LF_I("quick_failures", sup->quick_failures) }),
                "restart: clearing the crash-loop guard and starting the worker now");
        sup->quick_failures = 0;
        sup->backoff_ms = 1000;
        sup->lease.attempts = 0; /* a new episode: escalated again if it lasts */
        sup->rs.phase = RS_WAIT_START;
        talon_sup_event(sup, TE_START);
        talon_restart_on_state(sup);
        return;
    case TW_STARTING:
    case TW_DRAINING:
    default: {
        char msg[200];
        snprintf(msg, sizeof msg, "the worker is %s: try again once it is running",
                 talon_wstate_name(sup->state));
        done(sup, json_pack("{s:b, s:s, s:b}", "ok", 0, "error", msg, "busy", 1));
        return;
    }
    }
}

void talon_restart_tick(struct talon_sup *sup)
{
    struct talon_restart *rs = &sup->rs;
    char why[600];
    int64_t now = sb_mono_ms();
    if (rs->phase == RS_STARTING && now >= rs->next_poll) {
        if (talon_sup_http(sup, false, rs->next->port, why, sizeof why)) {
            SB_LOGK(SB_INFO, "restart_new_healthy",
                    ((struct sb_lf[]){ LF_I("pid", rs->next->pid), LF_I("port", rs->next->port) }),
                    "the new worker is healthy: registering it");
            rs->phase = RS_SYNCING;
            rs->next_poll = 0;
        } else if (sb_mono_ms() >= rs->deadline) {
            fail(sup, true, "the new worker was not healthy within %lld ms: %s",
                 (long long)budget_ms(sup), why);
            return;
        } else {
            rs->next_poll = sb_mono_ms() + POLL_MS;
        }
    }
    if (rs->phase == RS_SYNCING && sb_mono_ms() >= rs->next_poll) {
        if (talon_sup_http(sup, true, rs->next->port, why, sizeof why)) {
            /* registered: every call from now on goes to the new worker */
            rs->old_pid = sup->cur ? sup->cur->pid : 0;
            sup->incoming = rs->next;
            rs->next = NULL;
            SB_LOGK(SB_INFO, "restart_swapped",
                    ((struct sb_lf[]){ LF_I("old_pid", rs->old_pid),
                                       LF_I("new_pid", sup->incoming->pid),
                                       LF_I("port", sup->incoming->port) }),
                    "the new worker is registered on port %d; draining the old one",
                    sup->incoming->port);
            rs->phase = RS_DRAINING_OLD;
            talon_sup_event(sup, TE_SWAP);
            if (!rs->old_pid)
                done(sup, json_pack("{s:b, s:b}", "ok", 1, "drained", 1));
        } else if (++rs->sync_tries >= SYNC_TRIES || sb_mono_ms() >= rs->deadline) {
            fail(sup, true, "the new worker could not register: %s", why);
        } else {
            rs->next_poll = sb_mono_ms() + SYNC_RETRY_MS;
        }
    }
}

void talon_restart_on_exit(struct talon_sup *sup, struct talon_child *c)
{
    struct talon_restart *rs = &sup->rs;
    char d[64];
    talon_child_describe(c, d, sizeof d);
    if (c == rs->next) {
        char tail[512];
        talon_child_tail(c, tail, sizeof tail);
        rs->next = NULL;
        talon_child_free(c);
        fail(sup, true, "the new worker exited (%s) before it was registered; stderr: %s", d, tail);
        return;
    }
    if (rs->phase == RS_DRAINING_OLD && c->pid == rs->old_pid) {
        bool drained = strcmp(d, "exit 0") == 0;
        SB_LOGK(drained ? SB_INFO : SB_WARN, "restart_done",
                ((struct sb_lf[]){ LF_I("old_pid", c->pid), LF_S("old_exit", d) }),
                "zero-downtime restart done: the old worker %s (%s)",
                drained ? "drained and exited" : "was stopped before it drained", d);
        done(sup, json_pack("{s:b, s:b, s:i, s:s}", "ok", 1, "drained", drained, "old_pid",
                            (int)c->pid, "old_exit", d));
    }
}

void talon_restart_on_state(struct talon_sup *sup)
{
    if (sup->rs.phase != RS_WAIT_START)
        return;
    char reason[800];
    talon_lease_reason(sup, reason, sizeof reason);
    if (sup->state == TW_RUNNING)
        done(sup, json_pack("{s:b}", "ok", 1));
    else if (sup->state == TW_SECRETS)
        done(sup, json_pack("{s:b, s:s}", "ok", 0, "error", reason));
    else if (sup->state == TW_BACKOFF || sup->state == TW_CRASHLOOP || sup->state == TW_STOPPED)
        done(sup, json_pack("{s:b, s:s}", "ok", 0, "error", sup->last_exit));
}

void talon_restart_abort(struct talon_sup *sup, const char *why)
{
    switch (sup->rs.phase) {
    case RS_STARTING:
    case RS_SYNCING: fail(sup, false, "%s", why); break;
    case RS_WAIT_START: done(sup, json_pack("{s:b, s:s}", "ok", 0, "error", why)); break;
    case RS_DRAINING_OLD: done(sup, json_pack("{s:b, s:s}", "ok", 1, "note", why)); break;
    case RS_IDLE: break;
    }
}
