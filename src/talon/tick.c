/* tick.c - what is due when (see worker.h): the loop's tick turns the
 * supervisor's timers into the table's events (health GETs of the active
 * worker, GETs and sync PUTs of a restart's new worker, the state's
 * deadline), runs the startup sync PUT, and signals retired workers at
 * their times; talon_sup_next_due says when the loop must wake. The tick
 * never changes the state itself: only the rows it triggers do. Main loop
 * thread only. */
#include "common/clock.h"
#include "common/log.h"
#include "talon/sup_internal.h"

#include <stdio.h>
#include <string.h>

/* The active worker's health GET, when due. */
static void poll_active(struct talon_sup *sup)
{
    char why[600];
    if (!talon_in(sup->state, TALON_POLLED) || !sup->next_health || sb_mono_ms() < sup->next_health)
        return;
    bool ok = talon_sup_http(sup, false, sup->port, why, sizeof why);
    if (!ok && sup->state != TW_STARTING)
        SB_LOGK(SB_WARN, "worker_health_failed",
                ((struct sb_lf[]){ LF_I("pid", sup->cur->pid), LF_S("error", why),
                                   LF_I("failures", sup->health_failures + 1) }),
                "health check failed: %s", why);
    sup->next_health =
        sb_mono_ms() +
        (sup->state == TW_STARTING ? TALON_POLL_MS : sup->cfg->worker_health_interval_secs * 1000);
    talon_sup_event(sup, ok ? TE_HEALTHY : TE_UNHEALTHY);
}

/* The startup sync PUT (the worker also registers itself at start; the PUT
 * makes sure): TALON_SYNC_TRIES tries, 2, 4, 6 s apart. */
static void sync_active(struct talon_sup *sup)
{
    char why[600];
    if (!talon_in(sup->state, TALON_SYNCED) || !sup->sync_at || sb_mono_ms() < sup->sync_at)
        return;
    bool ok = talon_sup_http(sup, true, sup->port, why, sizeof why);
    sup->sync_left--;
    if (ok) {
        SB_LOGK(SB_INFO, "worker_synced", ((struct sb_lf[]){ LF_I("port", sup->port) }),
                "PUT the worker's sync endpoint: registered");
        sup->sync_at = 0;
        return;
    }
    SB_LOGK(sup->sync_left > 0 ? SB_WARN : SB_ERROR, "worker_sync_failed",
            ((struct sb_lf[]){ LF_S("error", why), LF_I("tries_left", sup->sync_left) }),
            "sync PUT failed: %s", why);
    sup->sync_at = sup->sync_left > 0 ? sb_mono_ms() + (int64_t)TALON_STARTUP_SYNC_STEP_MS *
                                                           (TALON_SYNC_TRIES - sup->sync_left)
                                      : 0;
}

/* A restart's new worker: GETs until healthy (replacing), then its sync
 * PUT (registering). In this order in one tick, so the PUT is tried at
 * least once even when the GET answered just before the deadline. */
static void poll_new(struct talon_sup *sup)
{
    struct talon_restart *rs = &sup->rs;
    if (sup->state == TW_REPLACING && sb_mono_ms() >= rs->next_poll) {
        if (talon_sup_http(sup, false, rs->next->port, rs->error, sizeof rs->error)) {
            talon_sup_event(sup, TE_NEW_HEALTHY);
        } else {
            rs->next_poll = sb_mono_ms() + TALON_POLL_MS;
        }
    }
    if (sup->state == TW_REGISTERING && sb_mono_ms() >= rs->next_poll) {
        bool ok = talon_sup_http(sup, true, rs->next->port, rs->error, sizeof rs->error);
        talon_sup_event(sup, ok ? TE_SYNCED : TE_SYNC_FAILED);
    }
}

/* SIGTERM to retired workers at their time, SIGKILL after the drain. */
static void signal_retired(struct talon_sup *sup)
{
    int64_t now = sb_mono_ms();
    for (int i = 0; i < TALON_MAX_RETIRED; i++) {
        struct talon_retired *r = &sup->retired[i];
        if (r->c && r->term_at && now >= r->term_at) {
            talon_child_term(r->c);
            r->term_at = 0;
            r->kill_at = now + talon_drain_ms(sup);
        }
        if (r->c && r->kill_at && now >= r->kill_at) {
            SB_LOGK(SB_WARN, "worker_killed", ((struct sb_lf[]){ LF_I("pid", r->c->pid) }),
                    "retired worker pid %d did not exit within the drain timeout: SIGKILL",
                    (int)r->c->pid);
            talon_child_kill(r->c);
            r->kill_at = now + TALON_KILL_RECHECK_MS;
        }
    }
}

void talon_sup_tick(struct talon_sup *sup)
{
    talon_sup_reap(sup);
    poll_active(sup);
    sync_active(sup);
    poll_new(sup);
    if (sup->deadline && sb_mono_ms() >= sup->deadline) {
        sup->deadline = 0; /* every state with a deadline has its row: it sets the next one */
        talon_sup_event(sup, TE_DEADLINE);
    }
    signal_retired(sup);
}

static void due(int64_t *best, int64_t t)
{
    if (t && (!*best || t < *best))
        *best = t;
}

int64_t talon_sup_next_due(const struct talon_sup *sup)
{
    int64_t best = 0;
    if (talon_in(sup->state, TALON_POLLED))
        due(&best, sup->next_health);
    if (talon_in(sup->state, TALON_SYNCED))
        due(&best, sup->sync_at);
    if (talon_in(sup->state, TALON_HOLDS_NEW))
        due(&best, sup->rs.next_poll);
    due(&best, sup->deadline);
    for (int i = 0; i < TALON_MAX_RETIRED; i++) {
        if (sup->retired[i].c) {
            due(&best, sup->retired[i].term_at);
            due(&best, sup->retired[i].kill_at);
        }
    }
    return best;
}
