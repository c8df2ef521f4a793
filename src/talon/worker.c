/* worker.c - the supervisor's one lifecycle table (see worker.h): state x
 * event -> action, the zero-downtime restart included; the invariants,
 * checked after every event; the status (JSON for /health, STATUS= for
 * systemd). The actions are in lifecycle.c and restart.c, the children in
 * children.c, the timers in tick.c. Main loop thread only.
 *
 * Only the table's actions change sup->state (the return value of the row
 * that ran). Invariants, asserted after each event (talon_sup_violation):
 *   - the state says which workers run: sup->cur is non-NULL exactly in
 *     starting, running, draining, restart_blocked, replacing and
 *     registering, so at most one worker is active and the secrets-waiting
 *     state secrets_unavailable holds none; sup->rs.next (a restart's new
 *     worker) exactly in replacing and registering;
 *   - no child is held twice (active, new, retired), the active one is on
 *     sup->port and the new one on the other port;
 *   - a retired worker is always signalled or due its signal (term_at or
 *     kill_at set), so each one exits and is reaped: no zombies;
 *   - a state that ends by a deadline has one, the others (stopped,
 *     running, crashloop) none; a polled worker has its next GET due;
 *   - stopping leaves only stopped and draining;
 *   - running means healthy: ever_ready and fewer failed checks in a row
 *     than health_failures_before_restart; restart_blocked has at least that
 *     many; secrets_unavailable has a failed lease round behind it;
 *   - a `talon restart` answer is pending in replacing and registering
 *     (RW_SWAP) and nowhere else; after a swap it waits for an old worker
 *     that is still in the retired list.
 * No worker is spawned unless every required secret was leased for it
 * (talon_sup_spawn). assert() is live in every build (the Makefile never
 * defines NDEBUG); a violation is logged before the abort. */
#include "common/log.h"
#include "common/sdnotify.h"
#include "talon/sup_internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[TW_NSTATES] = {
    [TW_STOPPED] = "stopped",
    [TW_STARTING] = "starting",
    [TW_RUNNING] = "running",
    [TW_DRAINING] = "draining",
    [TW_BACKOFF] = "backoff",
    [TW_CRASHLOOP] = "crashloop",
    [TW_SECRETS] = "secrets_unavailable",
    [TW_HELD] = "restart_blocked",
    [TW_REPLACING] = "replacing",
    [TW_REGISTERING] = "registering",
};

static const char *const event_names[TE_NEVENTS] = {
    [TE_START] = "start",     [TE_HEALTHY] = "healthy",         [TE_UNHEALTHY] = "unhealthy",
    [TE_EXITED] = "exited",   [TE_DEADLINE] = "deadline",       [TE_STOP] = "stop",
    [TE_RESTART] = "restart", [TE_NEW_HEALTHY] = "new_healthy", [TE_NEW_EXITED] = "new_exited",
    [TE_SYNCED] = "synced",   [TE_SYNC_FAILED] = "sync_failed",
};

const char *talon_wstate_name(enum talon_wstate s)
{
    return s < TW_NSTATES ? state_names[s] : "?";
}

enum talon_wstate talon_sup_shown_state(const struct talon_sup *sup)
{
    if (!talon_in(sup->state, TALON_HOLDS_NEW))
        return sup->state;
    return sup->health_failures >= sup->cfg->worker_health_failures_before_restart ? TW_HELD
                                                                                   : TW_RUNNING;
}

int64_t talon_drain_ms(const struct talon_sup *sup)
{
    return sup->cfg->worker_drain_timeout_secs * 1000 + 1000;
}

int64_t talon_startup_budget_ms(const struct talon_sup *sup)
{
    int64_t b = sup->cfg->worker_health_interval_secs *
                sup->cfg->worker_health_failures_before_restart * 1000;
    return b < TALON_STARTUP_BUDGET_MIN_MS ? TALON_STARTUP_BUDGET_MIN_MS : b;
}

/* The lifecycle table. A missing cell: the event does not apply in that
 * state (a health result that arrives while draining) and is ignored. The
 * design note draws the same table (docs/internals/talon-supervisor.md). */
static const talon_action table[TW_NSTATES][TE_NEVENTS] = {
    [TW_STOPPED] = { [TE_START] = talon_act_start,
                     [TE_STOP] = talon_act_stop_idle,
                     [TE_RESTART] = talon_act_restart_start },
    [TW_STARTING] = { [TE_HEALTHY] = talon_act_ready,
                      [TE_EXITED] = talon_act_exited,
                      [TE_DEADLINE] = talon_act_startup_timeout,
                      [TE_STOP] = talon_act_stop_live,
                      [TE_RESTART] = talon_act_restart_busy },
    [TW_RUNNING] = { [TE_HEALTHY] = talon_act_healthy,
                     [TE_UNHEALTHY] = talon_act_unhealthy,
                     [TE_EXITED] = talon_act_exited,
                     [TE_STOP] = talon_act_stop_live,
                     [TE_RESTART] = talon_act_restart_begin },
    [TW_DRAINING] = { [TE_EXITED] = talon_act_drained,
                      [TE_DEADLINE] = talon_act_kill,
                      [TE_STOP] = talon_act_stop_draining,
                      [TE_RESTART] = talon_act_restart_busy },
    [TW_BACKOFF] = { [TE_START] = talon_act_start,
                     [TE_DEADLINE] = talon_act_start,
                     [TE_STOP] = talon_act_stop_idle,
                     [TE_RESTART] = talon_act_restart_start },
    [TW_CRASHLOOP] = { [TE_START] = talon_act_start,
                       [TE_STOP] = talon_act_stop_idle,
                       [TE_RESTART] = talon_act_restart_start },
    [TW_SECRETS] = { [TE_START] = talon_act_start,
                     [TE_DEADLINE] = talon_act_start,
                     [TE_STOP] = talon_act_stop_idle,
                     [TE_RESTART] = talon_act_restart_start },
    [TW_HELD] = { [TE_HEALTHY] = talon_act_held_healthy,
                  [TE_UNHEALTHY] = talon_act_held_unhealthy,
                  [TE_EXITED] = talon_act_exited,
                  [TE_DEADLINE] = talon_act_health_restart,
                  [TE_STOP] = talon_act_stop_live,
                  [TE_RESTART] = talon_act_restart_begin },
    [TW_REPLACING] = { [TE_HEALTHY] = talon_act_healthy,
                       [TE_UNHEALTHY] = talon_act_replaced_unhealthy,
                       [TE_EXITED] = talon_act_old_exited,
                       [TE_DEADLINE] = talon_act_new_never_healthy,
                       [TE_STOP] = talon_act_stop_live,
                       [TE_NEW_HEALTHY] = talon_act_new_healthy,
                       [TE_NEW_EXITED] = talon_act_new_exited },
    [TW_REGISTERING] = { [TE_HEALTHY] = talon_act_healthy,
                         [TE_UNHEALTHY] = talon_act_replaced_unhealthy,
                         [TE_EXITED] = talon_act_old_exited,
                         [TE_DEADLINE] = talon_act_register_timeout,
                         [TE_STOP] = talon_act_stop_live,
                         [TE_NEW_EXITED] = talon_act_new_exited,
                         [TE_SYNCED] = talon_act_swap,
                         [TE_SYNC_FAILED] = talon_act_sync_failed },
};

/* ---- invariants ---- */

struct child_check {
    const struct talon_sup *sup;
    const struct talon_child *seen[TALON_SLOTS];
    int n;
    bool old_retired; /* RW_OLD_EXIT: the awaited old worker is in the list */
    const char *bad;
};

static int check_child(struct talon_child *c, int slot, void *arg)
{
    struct child_check *w = arg;
    const struct talon_sup *sup = w->sup;
    for (int i = 0; i < w->n; i++)
        if (w->seen[i] == c)
            return (w->bad = "a worker is held twice (active, new, retired)") != NULL;
    w->seen[w->n++] = c;
    const struct talon_retired *r =
        slot >= TALON_SLOT_RETIRED ? &sup->retired[slot - TALON_SLOT_RETIRED] : NULL;
    if (r && !r->term_at && !r->kill_at)
        w->bad = "a retired worker is neither signalled nor due its SIGTERM";
    else if (slot == TALON_SLOT_ACTIVE && c->port != sup->port)
        w->bad = "the active worker is not on the active port";
    else if (slot == TALON_SLOT_NEW && c->port == sup->port)
        w->bad = "the new worker is on the active port";
    if (r && sup->rs.wait == RW_OLD_EXIT && c->pid == sup->rs.old_pid)
        w->old_retired = true;
    return w->bad != NULL;
}

/* Which workers the state says run, and how they are held. */
static const char *children_violation(const struct talon_sup *sup)
{
    if ((sup->cur != NULL) != talon_in(sup->state, TALON_HOLDS_ACTIVE))
        return sup->cur ? "an active worker in a state that has none"
                        : "no active worker in a state that has one";
    if ((sup->rs.next != NULL) != talon_in(sup->state, TALON_HOLDS_NEW))
        return sup->rs.next ? "a restart's new worker outside replacing/registering"
                            : "no new worker in replacing/registering";
    struct child_check w = { .sup = sup };
    talon_sup_each_child(sup, check_child, &w);
    if (w.bad)
        return w.bad;
    if (sup->rs.wait == RW_OLD_EXIT && !w.old_retired)
        return "a restart waits for an old worker that is not retired";
    return NULL;
}

const char *talon_sup_violation(const struct talon_sup *sup)
{
    const struct talon_settings *c = sup->cfg;
    enum talon_wstate s = sup->state;
    if (s >= TW_NSTATES)
        return "no such state";
    const char *bad = children_violation(sup);
    if (bad)
        return bad;
    if ((sup->deadline != 0) != talon_in(s, TALON_TIMED))
        return sup->deadline ? "a deadline in a state that has none"
                             : "no deadline in a state that ends by one";
    if (talon_in(s, TALON_POLLED) && !sup->next_health)
        return "a polled worker has no health GET due";
    if (talon_in(s, TALON_HOLDS_NEW) && !sup->rs.next_poll)
        return "the new worker has no GET or PUT due";
    if (sup->stopping && s != TW_STOPPED && s != TW_DRAINING)
        return "stopping, but neither stopped nor draining";
    if (s == TW_RUNNING &&
        (!sup->ever_ready || sup->health_failures >= c->worker_health_failures_before_restart))
        return "running, but not healthy";
    if (s == TW_HELD && sup->health_failures < c->worker_health_failures_before_restart)
        return "restart_blocked, but the worker did not fail its health checks";
    if (s == TW_SECRETS && sup->lease.attempts < 1)
        return "secrets_unavailable without a failed lease round";
    if ((sup->rs.wait == RW_SWAP) != talon_in(s, TALON_HOLDS_NEW))
        return sup->rs.wait == RW_SWAP ? "a restart's answer waits for a swap that cannot come"
                                       : "a restart under way that nobody waits for";
    return NULL;
}

static void check_invariants(const struct talon_sup *sup, enum talon_wstate prev,
                             enum talon_wevent ev)
{
    const char *bad = talon_sup_violation(sup);
    if (bad)
        SB_LOGK(SB_ERROR, "supervisor_invariant",
                ((struct sb_lf[]){ LF_S("from", talon_wstate_name(prev)),
                                   LF_S("event", event_names[ev]),
                                   LF_S("to", talon_wstate_name(sup->state)), LF_S("error", bad) }),
                "supervisor invariant broken by %s in %s -> %s: %s", event_names[ev],
                talon_wstate_name(prev), talon_wstate_name(sup->state), bad);
    assert(bad == NULL && "a supervisor invariant does not hold (worker.c)");
}

void talon_sup_event(struct talon_sup *sup, enum talon_wevent ev)
{
    assert(sup->state < TW_NSTATES && ev < TE_NEVENTS);
    talon_action fn = table[sup->state][ev];
    if (!fn)
        return;
    enum talon_wstate prev = sup->state;
    sup->state = fn(sup);
    if (sup->state != prev) {
        SB_LOGK(SB_INFO, "worker_state",
                ((struct sb_lf[]){ LF_S("from", talon_wstate_name(prev)),
                                   LF_S("to", talon_wstate_name(sup->state)),
                                   LF_I("pid", sup->cur ? sup->cur->pid : 0) }),
                "worker %s -> %s", talon_wstate_name(prev), talon_wstate_name(sup->state));
    }
    talon_sup_set_status(sup);
    talon_restart_on_state(sup);
    check_invariants(sup, prev, ev);
    /* last: the answer's callback publishes the status, now the new state's */
    talon_restart_flush(sup);
}

/* ---- status ---- */

void talon_sup_set_status(struct talon_sup *sup)
{
    char text[sizeof sup->status_sent], reason[800];
    const char *shown = talon_wstate_name(talon_sup_shown_state(sup));
    talon_lease_reason(sup, reason, sizeof reason);
    if (reason[0] && sup->lease.attempts)
        snprintf(text, sizeof text, "STATUS=%s; lease round %d failed, retrying with backoff",
                 reason, sup->lease.attempts);
    else if (reason[0])
        snprintf(text, sizeof text, "STATUS=%s", reason);
    else if (sup->cur)
        snprintf(text, sizeof text, "STATUS=worker %s (pid %d, port %d)", shown, (int)sup->cur->pid,
                 sup->port);
    else
        snprintf(text, sizeof text, "STATUS=worker %s%s%s", shown,
                 sup->last_exit[0] ? ", last exit: " : "", sup->last_exit);
    if (strcmp(text, sup->status_sent) == 0)
        return;
    snprintf(sup->status_sent, sizeof sup->status_sent, "%s", text);
    sb_sd_notify(text);
}

json_t *talon_json_text(const char *text)
{
    json_t *s = json_string(text);
    if (s)
        return s;
    char *copy = strdup(text);
    if (!copy)
        return json_string("");
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    s = json_string(copy);
    free(copy);
    return s;
}

json_t *talon_sup_status(const struct talon_sup *sup)
{
    enum talon_wstate shown = talon_sup_shown_state(sup);
    bool failed = shown == TW_CRASHLOOP || shown == TW_BACKOFF;
    json_t *o = json_pack(
        "{s:s, s:o, s:i, s:I, s:o, s:O, s:b, s:i, s:i}", "worker_state", talon_wstate_name(shown),
        "worker_pid", sup->cur ? json_integer(sup->cur->pid) : json_null(), "worker_port",
        sup->port, "worker_restarts", (json_int_t)sup->restarts, "last_exit",
        sup->last_exit[0] ? json_string(sup->last_exit) : json_null(), "secret_failures",
        sup->secret_failures, "restart_in_progress", sup->rs.wait != RW_NONE,
        "worker_health_failures", sup->health_failures, "quick_failures", sup->quick_failures);
    if (o && failed)
        json_object_set_new(o, "stderr_tail", talon_json_text(sup->stderr_tail));
    if (o)
        talon_lease_status(sup, o);
    return o;
}

/* ---- life of the struct ---- */

void talon_sup_init(struct talon_sup *sup, const struct talon_settings *cfg)
{
    memset(sup, 0, sizeof *sup);
    sup->cfg = cfg;
    sup->state = TW_STOPPED;
    sup->port = (int)cfg->worker_port;
    sup->backoff_ms = TALON_BACKOFF_FIRST_MS;
    sup->secret_failures = json_array();
}

static int free_child(struct talon_child *c, int slot, void *arg)
{
    (void)slot;
    (void)arg;
    talon_child_free(c);
    return 0;
}

void talon_sup_free(struct talon_sup *sup)
{
    talon_sup_each_child(sup, free_child, NULL);
    json_decref(sup->secret_failures);
    json_decref(sup->lease.unavailable);
    json_decref(sup->rs.outcome);
    memset(sup, 0, sizeof *sup);
}
