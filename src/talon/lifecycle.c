/* lifecycle.c - the table's actions for one worker's life (see worker.c's
 * table and worker.h's states): start, readiness, health checks, the
 * health restart (failing closed on secrets: restart_blocked), drain,
 * SIGKILL, exit, backoff and the crash-loop guard, stop. Each action
 * returns the next state and sets what that state needs (its deadline,
 * its next health GET); none changes sup->state itself. The zero-downtime
 * restart's actions are in restart.c. Main loop thread only. */
#include "common/clock.h"
#include "common/log.h"
#include "common/sdnotify.h"
#include "talon/bus.h"
#include "talon/sup_internal.h"

#include <stdio.h>
#include <string.h>

#define SHUTDOWN_WHY "talon is shutting down"

int64_t talon_sup_record_exit(struct talon_sup *sup)
{
    struct talon_child *c = sup->cur;
    char d[64];
    talon_child_describe(c, d, sizeof d);
    if (sup->kill_reason)
        snprintf(sup->last_exit, sizeof sup->last_exit, "%s (%s)", d, sup->kill_reason);
    else
        snprintf(sup->last_exit, sizeof sup->last_exit, "%s", d);
    sup->kill_reason = NULL;
    talon_child_tail(c, sup->stderr_tail, sizeof sup->stderr_tail);
    int64_t run_ms = sb_mono_ms() - c->started_ms;
    SB_LOGK(sup->stopping ? SB_INFO : SB_WARN, "worker_exited",
            ((struct sb_lf[]){ LF_I("pid", c->pid), LF_S("last_exit", sup->last_exit),
                               LF_I("run_ms", run_ms) }),
            "worker pid %d ended: %s after %lld ms", (int)c->pid, sup->last_exit,
            (long long)run_ms);
    talon_child_free(c);
    sup->cur = NULL;
    return run_ms;
}

void talon_sup_escalate(struct talon_sup *sup, json_t *data)
{
    json_object_set_new(data, "port", json_integer(sup->port));
    json_object_set_new(data, "command", json_string(sup->cfg->worker_command));
    if (!json_object_get(data, "stderr_tail"))
        json_object_set_new(data, "stderr_tail", json_string(""));
    talon_bus_report(sup->cfg, "talon/worker.crashloop", data);
}

static void send_crashloop_event(struct talon_sup *sup)
{
    json_t *data = json_pack("{s:s, s:i, s:s}", "reason", "crashloop", "exits", sup->quick_failures,
                             "last_exit", sup->last_exit);
    json_object_set_new(data, "stderr_tail", talon_json_text(sup->stderr_tail));
    talon_sup_escalate(sup, data);
    json_decref(data);
}

void talon_sup_count_failure(struct talon_sup *sup, int64_t run_ms)
{
    if (run_ms < sup->cfg->worker_crashloop_window_secs * 1000)
        sup->quick_failures++;
    else
        sup->quick_failures = 0;
}

/* After a failed run (or start) of run_ms: backoff, or the crash-loop guard. */
static enum talon_wstate after_failure(struct talon_sup *sup, int64_t run_ms)
{
    const struct talon_settings *c = sup->cfg;
    talon_sup_count_failure(sup, run_ms);
    if (sup->quick_failures >= c->worker_crashloop_threshold) {
        SB_LOGK(SB_ERROR, "worker_crashloop",
                ((struct sb_lf[]){ LF_I("exits", sup->quick_failures),
                                   LF_S("last_exit", sup->last_exit),
                                   LF_S("stderr_tail", sup->stderr_tail) }),
                "the worker failed %d times in a row within %llds of starting: not restarting it "
                "(talon restart starts it again)",
                sup->quick_failures, (long long)c->worker_crashloop_window_secs);
        sup->deadline = 0;
        send_crashloop_event(sup);
        return TW_CRASHLOOP;
    }
    int64_t delay = sup->backoff_ms;
    sup->deadline = sb_mono_ms() + delay;
    sup->backoff_ms = delay * 2 > c->worker_restart_backoff_max_secs * 1000
                          ? c->worker_restart_backoff_max_secs * 1000
                          : delay * 2;
    SB_LOGK(SB_WARN, "worker_backoff",
            ((struct sb_lf[]){ LF_I("delay_ms", delay), LF_I("quick_failures", sup->quick_failures),
                               LF_S("last_exit", sup->last_exit) }),
            "restarting the worker in %lld ms", (long long)delay);
    return TW_BACKOFF;
}

enum talon_wstate talon_act_start(struct talon_sup *sup)
{
    if (sup->stopping)
        return sup->state;
    struct sb_err err = { 0 };
    struct talon_child *c;
    int rc = talon_sup_spawn(sup, sup->port, &c, &err);
    if (rc == SB_EUNAVAIL) /* fail closed: nothing ran, so no quick failure either */
        return talon_lease_wait(sup, TW_SECRETS);
    if (rc != 0) {
        snprintf(sup->last_exit, sizeof sup->last_exit, "spawn failed: %s", err.msg);
        sup->stderr_tail[0] = '\0';
        SB_LOGK(SB_ERROR, "worker_spawn_failed",
                ((struct sb_lf[]){ LF_I("port", sup->port), LF_S("error", err.msg) }),
                "cannot start the worker: %s", err.msg);
        return after_failure(sup, 0);
    }
    int64_t now = sb_mono_ms();
    sup->cur = c;
    sup->health_failures = 0;
    sup->next_health = now + TALON_POLL_MS;
    sup->deadline = now + talon_startup_budget_ms(sup);
    sup->sync_at = now + sup->cfg->worker_startup_sync_delay_secs * 1000;
    sup->sync_left = TALON_SYNC_TRIES;
    return TW_STARTING;
}

enum talon_wstate talon_act_ready(struct talon_sup *sup)
{
    int64_t now = sb_mono_ms();
    SB_LOGK(SB_INFO, "worker_ready",
            ((struct sb_lf[]){ LF_I("pid", sup->cur->pid), LF_I("port", sup->port),
                               LF_I("startup_ms", now - sup->cur->started_ms) }),
            "worker pid %d is healthy on port %d", (int)sup->cur->pid, sup->port);
    if (!sup->ever_ready) {
        sup->ever_ready = true;
        sb_sd_notify("READY=1");
    }
    sup->deadline = 0;
    sup->next_health = now + sup->cfg->worker_health_interval_secs * 1000;
    return TW_RUNNING;
}

/* running, and the active worker of a restart: stays where it is. */
enum talon_wstate talon_act_healthy(struct talon_sup *sup)
{
    if (sup->health_failures)
        SB_LOGK(SB_INFO, "worker_health_recovered",
                ((struct sb_lf[]){ LF_I("failures", sup->health_failures) }),
                "worker healthy again after %d failed checks", sup->health_failures);
    sup->health_failures = 0;
    sup->backoff_ms = TALON_BACKOFF_FIRST_MS; /* a healthy periodic check resets the backoff */
    return sup->state;
}

static enum talon_wstate drain_active(struct talon_sup *sup, const char *reason)
{
    sup->kill_reason = reason;
    talon_child_term(sup->cur);
    sup->deadline = sb_mono_ms() + talon_drain_ms(sup);
    SB_LOGK(SB_INFO, "worker_draining",
            ((struct sb_lf[]){ LF_I("pid", sup->cur->pid),
                               LF_S("reason", reason ? reason : "shutdown") }),
            "SIGTERM to worker pid %d (%s); SIGKILL in %lld ms if it has not exited",
            (int)sup->cur->pid, reason ? reason : "shutdown", (long long)talon_drain_ms(sup));
    return TW_DRAINING;
}

/* The unhealthy worker is replaced only when its replacement can have its
 * secrets: an unhealthy worker serves better than none (fail closed). Also
 * restart_blocked's retry (its deadline) and a failed restart's end. */
enum talon_wstate talon_act_health_restart(struct talon_sup *sup)
{
    struct sb_err err = { 0 };
    if (talon_lease_check(sup, &err) == SB_EUNAVAIL) {
        if (sup->state != TW_HELD) /* once: each retry logs worker_secrets_unavailable */
            SB_LOGK(SB_ERROR, "worker_restart_blocked",
                    ((struct sb_lf[]){ LF_I("pid", sup->cur->pid), LF_S("error", err.msg) }),
                    "worker pid %d is unhealthy, but its replacement cannot be started (%s): it "
                    "keeps running",
                    (int)sup->cur->pid, err.msg);
        return talon_lease_wait(sup, TW_HELD);
    }
    return drain_active(sup, "killed: health checks failed");
}

enum talon_wstate talon_act_unhealthy(struct talon_sup *sup)
{
    sup->health_failures++;
    if (sup->health_failures < sup->cfg->worker_health_failures_before_restart)
        return TW_RUNNING;
    SB_LOGK(
        SB_ERROR, "worker_unhealthy",
        ((struct sb_lf[]){ LF_I("pid", sup->cur->pid), LF_I("failures", sup->health_failures) }),
        "worker pid %d failed %d health checks in a row: restarting it", (int)sup->cur->pid,
        sup->health_failures);
    return talon_act_health_restart(sup);
}

enum talon_wstate talon_act_held_unhealthy(struct talon_sup *sup)
{
    sup->health_failures++;
    return TW_HELD;
}

enum talon_wstate talon_act_held_healthy(struct talon_sup *sup)
{
    SB_LOGK(SB_INFO, "worker_health_recovered",
            ((struct sb_lf[]){ LF_I("failures", sup->health_failures) }),
            "worker healthy again after %d failed checks: its blocked restart is dropped",
            sup->health_failures);
    sup->health_failures = 0;
    sup->deadline = 0;
    sup->lease.attempts = 0; /* no restart is wanted any more: the wait is over */
    return TW_RUNNING;
}

enum talon_wstate talon_act_startup_timeout(struct talon_sup *sup)
{
    SB_LOGK(SB_ERROR, "worker_never_healthy",
            ((struct sb_lf[]){ LF_I("pid", sup->cur->pid),
                               LF_I("budget_ms", talon_startup_budget_ms(sup)) }),
            "worker pid %d was not healthy within %lld ms of its start", (int)sup->cur->pid,
            (long long)talon_startup_budget_ms(sup));
    return drain_active(sup, "killed: never healthy");
}

enum talon_wstate talon_act_exited(struct talon_sup *sup)
{
    return after_failure(sup, talon_sup_record_exit(sup));
}

enum talon_wstate talon_act_drained(struct talon_sup *sup)
{
    int64_t run_ms = talon_sup_record_exit(sup);
    if (sup->stopping) {
        sup->deadline = 0;
        return TW_STOPPED;
    }
    return after_failure(sup, run_ms);
}

enum talon_wstate talon_act_kill(struct talon_sup *sup)
{
    SB_LOGK(SB_WARN, "worker_killed", ((struct sb_lf[]){ LF_I("pid", sup->cur->pid) }),
            "worker pid %d did not exit within the drain timeout: SIGKILL", (int)sup->cur->pid);
    talon_child_kill(sup->cur);
    sup->deadline = sb_mono_ms() + TALON_KILL_RECHECK_MS;
    return TW_DRAINING;
}

/* Every stop first ends a restart under way (its new worker is retired)
 * and answers whoever waits for one. */
enum talon_wstate talon_act_stop_live(struct talon_sup *sup)
{
    sup->stopping = true;
    talon_restart_abort(sup, SHUTDOWN_WHY);
    return drain_active(sup, NULL);
}

enum talon_wstate talon_act_stop_draining(struct talon_sup *sup)
{
    sup->stopping = true;
    talon_restart_abort(sup, SHUTDOWN_WHY);
    sup->kill_reason = NULL;
    return TW_DRAINING;
}

enum talon_wstate talon_act_stop_idle(struct talon_sup *sup)
{
    sup->stopping = true;
    talon_restart_abort(sup, SHUTDOWN_WHY);
    sup->deadline = 0;
    return TW_STOPPED;
}
