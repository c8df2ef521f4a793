/* worker.c - the worker state machine (see worker.h): one table of state x
 * event -> action, the actions (spawn, health, backoff, crash-loop guard,
 * drain, kill), the periodic tick and the status JSON. Main loop thread only.
 *
 * Invariants: sup->cur is non-NULL exactly in starting, running,
 * restart_blocked and draining; no worker is spawned unless every required
 * secret was leased for it (talon_sup_spawn); a worker leaves talon's hands
 * only through record_exit (active) or the retired list (replaced or failed
 * new workers), and both reap it, so there are no zombies; every state
 * change goes through talon_sup_event. */
#include "talon/worker.h"
#include "common/clock.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/sdnotify.h"
#include "talon/bus.h"
#include "talon/inject.h"
#include "talon/portowner.h"
#include "talon/proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STARTUP_POLL_MS 200
#define STARTUP_BUDGET_MIN_MS 15000
#define KILL_RECHECK_MS 5000
#define SYNC_TRIES 4
#define SWAP_TERM_DELAY_MS 250

static const char *const state_names[TW_NSTATES] = { "stopped",
                                                     "starting",
                                                     "running",
                                                     "draining",
                                                     "backoff",
                                                     "crashloop",
                                                     "secrets_unavailable",
                                                     "restart_blocked" };

const char *talon_wstate_name(enum talon_wstate s)
{
    return s < TW_NSTATES ? state_names[s] : "?";
}

static int64_t drain_ms(const struct talon_sup *sup)
{
    /* the worker's own drain (SYSBUS_DRAIN_GRACE) is the same length: one
     * more second lets it exit by itself before the SIGKILL */
    return sup->cfg->worker_drain_timeout_secs * 1000 + 1000;
}

static int64_t startup_budget_ms(const struct talon_sup *sup)
{
    int64_t b = sup->cfg->worker_health_interval_secs *
                sup->cfg->worker_health_failures_before_restart * 1000;
    return b < STARTUP_BUDGET_MIN_MS ? STARTUP_BUDGET_MIN_MS : b;
}

/* ---- helpers shared with restart.c ---- */

int talon_sup_other_port(const struct talon_sup *sup)
{
    const struct talon_settings *c = sup->cfg;
    return sup->port == (int)c->worker_port ? (int)c->worker_alt_port : (int)c->worker_port;
}

bool talon_sup_http(const struct talon_sup *sup, bool sync, int port, char *why, size_t whylen)
{
    const struct talon_settings *c = sup->cfg;
    char url[2048];
    if (talon_url_for_port(sync ? c->worker_sync_endpoint : c->worker_health_endpoint,
                           (int)c->worker_port, port, url, sizeof url)) {
        snprintf(why, whylen, "endpoint URL too long");
        return false;
    }
    struct sb_httpc_req req = { .method = sync ? "PUT" : "GET",
                                .url = url,
                                .connect_timeout_ms = c->worker_http_timeout_secs * 1000,
                                .timeout_ms = c->worker_http_timeout_secs * 1000,
                                .max_response = 1 << 20 };
    struct sb_httpc_resp resp = { 0 };
    struct sb_err err = { 0 };
    int rc = sb_httpc_do(&req, &resp, &err);
    bool ok = rc == 0 && resp.status >= 200 && resp.status < 300;
    if (rc)
        snprintf(why, whylen, "%s %s: %s", req.method, url, err.msg);
    else if (!ok)
        snprintf(why, whylen, "%s %s: HTTP %ld %.200s", req.method, url, resp.status,
                 resp.body.data ? resp.body.data : "");
    sb_httpc_resp_free(&resp);
    return ok;
}

static bool is_ours(const struct talon_sup *sup, pid_t pid)
{
    if (sup->cur && sup->cur->pid == pid)
        return true;
    if (sup->rs.next && sup->rs.next->pid == pid)
        return true;
    for (int i = 0; i < TALON_MAX_RETIRED; i++)
        if (sup->retired[i].c && sup->retired[i].c->pid == pid)
            return true;
    return false;
}

/* Who holds port before a start: free, or taken over (--takeover). */
static int claim_port(struct talon_sup *sup, int port, struct sb_err *err)
{
    const struct talon_settings *c = sup->cfg;
    struct talon_port_owner o;
    int held = talon_port_owner(port, &o, err);
    if (held < 0)
        return held;
    if (held && o.pid && is_ours(sup, o.pid))
        return sb_err_set(err, SB_EBUSY, "port %d is still held by an earlier worker (pid %d)",
                          port, (int)o.pid);
    if (held && !c->takeover)
        return sb_err_set(err, SB_EBUSY,
                          "port %d is held by pid %d (%s), a process talon did not start: stop "
                          "it, or run talon with --takeover",
                          port, (int)o.pid, o.pid ? o.cmd : "not visible to talon");
    if (!held)
        return 0;
    SB_LOGK(SB_WARN, "port_takeover",
            ((struct sb_lf[]){ LF_I("port", port), LF_I("pid", o.pid), LF_S("cmd", o.cmd) }),
            "--takeover: stopping pid %d (%s) that holds port %d", (int)o.pid, o.cmd, port);
    return talon_port_takeover(port, o.pid, (int)drain_ms(sup), err);
}

int talon_sup_spawn(struct talon_sup *sup, int port, struct talon_child **out, struct sb_err *err)
{
    const struct talon_settings *c = sup->cfg;
    char **argv = NULL;
    int rc = talon_split_words(c->worker_command, &argv, err);
    if (rc)
        return rc;
    /* The leases come first: a start that cannot have its required secrets
     * must not take the port over from anyone either. */
    struct talon_env env = { 0 };
    rc = talon_lease_env(sup, port, &env, err);
    if (rc == 0) {
        talon_lease_ok(sup);
        rc = claim_port(sup, port, err);
    }
    if (rc == 0) {
        struct talon_spawn_req req = { .argv = argv,
                                       .envp = env.envp,
                                       .path = c->worker_path,
                                       .dir = c->worker_dir,
                                       .stdout_file = c->worker_log_stdout,
                                       .stderr_file = c->worker_log_stderr,
                                       .port = port };
        rc = talon_child_spawn(&req, out, err);
    }
    talon_env_free(&env); /* wipes the secret values: the child has its copy */
    if (rc == 0) {
        sup->starts++;
        if (sup->starts > 1)
            sup->restarts++;
        SB_LOGK(SB_INFO, "worker_started",
                ((struct sb_lf[]){ LF_I("pid", (*out)->pid), LF_I("port", port),
                                   LF_S("command", argv[0]), LF_I("restarts", sup->restarts) }),
                "started %s as pid %d on port %d", argv[0], (int)(*out)->pid, port);
    }
    talon_words_free(argv);
    return rc;
}

void talon_sup_retire(struct talon_sup *sup, struct talon_child *c, int64_t delay_ms,
                      const char *why)
{
    int64_t now = sb_mono_ms();
    for (int i = 0; i < TALON_MAX_RETIRED; i++) {
        if (!sup->retired[i].c) {
            struct talon_retired *r = &sup->retired[i];
            *r = (struct talon_retired){ c, now + delay_ms, 0, why };
            if (delay_ms <= 0) {
                talon_child_term(c);
                r->term_at = 0;
                r->kill_at = now + drain_ms(sup);
            }
            SB_LOGK(SB_INFO, "worker_retiring",
                    ((struct sb_lf[]){ LF_I("pid", c->pid), LF_I("port", c->port), LF_S("why", why),
                                       LF_I("term_in_ms", delay_ms) }),
                    "SIGTERM to worker pid %d in %lld ms (%s): it drains, then exits", (int)c->pid,
                    (long long)delay_ms, why);
            return;
        }
    }
    /* no slot: cannot let it drain; make sure it goes, and reap it here
     * (SIGKILLed, it exits at once: bounded wait, no zombie left) */
    SB_LOGK(SB_ERROR, "worker_retire_overflow", ((struct sb_lf[]){ LF_I("pid", c->pid) }),
            "too many workers exiting at once: SIGKILL to pid %d", (int)c->pid);
    talon_child_kill(c);
    for (int i = 0; i < 200 && !talon_child_reap(c); i++)
        usleep(10000);
    talon_child_free(c);
}

/* ---- failure accounting ---- */

/* STATUS= for systemd, sent when its text changes (a lease retry changes
 * it without a state change). */
static void set_status(struct talon_sup *sup)
{
    char text[sizeof sup->status_sent], reason[800];
    talon_lease_reason(sup, reason, sizeof reason);
    if (reason[0])
        snprintf(text, sizeof text, "STATUS=%s; lease round %d failed, retrying with backoff",
                 reason, sup->lease.attempts);
    else if (sup->cur)
        snprintf(text, sizeof text, "STATUS=worker %s (pid %d, port %d)",
                 talon_wstate_name(sup->state), (int)sup->cur->pid, sup->port);
    else
        snprintf(text, sizeof text, "STATUS=worker %s%s%s", talon_wstate_name(sup->state),
                 sup->last_exit[0] ? ", last exit: " : "", sup->last_exit);
    if (strcmp(text, sup->status_sent) == 0)
        return;
    snprintf(sup->status_sent, sizeof sup->status_sent, "%s", text);
    sb_sd_notify(text);
}

/* Records how the active worker ended and frees it; returns its run time. */
static int64_t record_exit(struct talon_sup *sup)
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

/* A JSON string of text even when it is not valid UTF-8 (bytes >= 0x80 of a
 * broken sequence become '?'). */
static json_t *safe_string(const char *text)
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
    json_object_set_new(data, "stderr_tail", safe_string(sup->stderr_tail));
    talon_sup_escalate(sup, data);
    json_decref(data);
}

/* After a failed run (or start) of run_ms: backoff, or the crash-loop guard. */
static enum talon_wstate after_failure(struct talon_sup *sup, int64_t run_ms)
{
    const struct talon_settings *c = sup->cfg;
    if (run_ms < c->worker_crashloop_window_secs * 1000)
        sup->quick_failures++;
    else
        sup->quick_failures = 0;
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

/* ---- actions: each returns the next state ---- */

typedef enum talon_wstate (*action_fn)(struct talon_sup *sup);

static enum talon_wstate a_start(struct talon_sup *sup)
{
    if (sup->stopping)
        return sup->state;
    if (sup->rs.phase == RS_STARTING || sup->rs.phase == RS_SYNCING) {
        sup->deadline = sb_mono_ms() + 1000; /* a restart is bringing one up */
        return TW_BACKOFF;
    }
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
    sup->next_health = now + STARTUP_POLL_MS;
    sup->deadline = now + startup_budget_ms(sup);
    sup->sync_at = now + sup->cfg->worker_startup_sync_delay_secs * 1000;
    sup->sync_left = SYNC_TRIES;
    return TW_STARTING;
}

static enum talon_wstate a_ready(struct talon_sup *sup)
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

static enum talon_wstate a_healthy(struct talon_sup *sup)
{
    if (sup->health_failures)
        SB_LOGK(SB_INFO, "worker_health_recovered",
                ((struct sb_lf[]){ LF_I("failures", sup->health_failures) }),
                "worker healthy again after %d failed checks", sup->health_failures);
    sup->health_failures = 0;
    sup->backoff_ms = 1000; /* a healthy periodic check resets the backoff */
    return TW_RUNNING;
}

static enum talon_wstate drain_active(struct talon_sup *sup, const char *reason)
{
    sup->kill_reason = reason;
    talon_child_term(sup->cur);
    sup->deadline = sb_mono_ms() + drain_ms(sup);
    SB_LOGK(SB_INFO, "worker_draining",
            ((struct sb_lf[]){ LF_I("pid", sup->cur->pid),
                               LF_S("reason", reason ? reason : "shutdown") }),
            "SIGTERM to worker pid %d (%s); SIGKILL in %lld ms if it has not exited",
            (int)sup->cur->pid, reason ? reason : "shutdown", (long long)drain_ms(sup));
    return TW_DRAINING;
}

/* The unhealthy worker is replaced only when its replacement can have its
 * secrets: an unhealthy worker serves better than none (fail closed). */
static enum talon_wstate restart_unhealthy(struct talon_sup *sup)
{
    struct sb_err err = { 0 };
    if (talon_lease_check(sup, &err) == SB_EUNAVAIL) {
        if (sup->state == TW_RUNNING) /* once: each retry logs worker_secrets_unavailable */
            SB_LOGK(SB_ERROR, "worker_restart_blocked",
                    ((struct sb_lf[]){ LF_I("pid", sup->cur->pid), LF_S("error", err.msg) }),
                    "worker pid %d is unhealthy, but its replacement cannot be started (%s): it "
                    "keeps running",
                    (int)sup->cur->pid, err.msg);
        return talon_lease_wait(sup, TW_HELD);
    }
    return drain_active(sup, "killed: health checks failed");
}

static enum talon_wstate a_unhealthy(struct talon_sup *sup)
{
    sup->health_failures++;
    if (sup->health_failures < sup->cfg->worker_health_failures_before_restart)
        return TW_RUNNING;
    SB_LOGK(
        SB_ERROR, "worker_unhealthy",
        ((struct sb_lf[]){ LF_I("pid", sup->cur->pid), LF_I("failures", sup->health_failures) }),
        "worker pid %d failed %d health checks in a row: restarting it", (int)sup->cur->pid,
        sup->health_failures);
    return restart_unhealthy(sup);
}

static enum talon_wstate a_held_unhealthy(struct talon_sup *sup)
{
    sup->health_failures++;
    return TW_HELD;
}

static enum talon_wstate a_held_healthy(struct talon_sup *sup)
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

static enum talon_wstate a_held_retry(struct talon_sup *sup)
{
    if (sup->rs.phase == RS_STARTING || sup->rs.phase == RS_SYNCING) {
        sup->deadline = sb_mono_ms() + 1000; /* `talon restart` is replacing it */
        return TW_HELD;
    }
    return restart_unhealthy(sup);
}

static enum talon_wstate a_startup_timeout(struct talon_sup *sup)
{
    SB_LOGK(
        SB_ERROR, "worker_never_healthy",
        ((struct sb_lf[]){ LF_I("pid", sup->cur->pid), LF_I("budget_ms", startup_budget_ms(sup)) }),
        "worker pid %d was not healthy within %lld ms of its start", (int)sup->cur->pid,
        (long long)startup_budget_ms(sup));
    return drain_active(sup, "killed: never healthy");
}

static enum talon_wstate a_exited(struct talon_sup *sup)
{
    return after_failure(sup, record_exit(sup));
}

static enum talon_wstate a_drained(struct talon_sup *sup)
{
    int64_t run_ms = record_exit(sup);
    if (sup->stopping) {
        sup->deadline = 0;
        return TW_STOPPED;
    }
    return after_failure(sup, run_ms);
}

static enum talon_wstate a_kill(struct talon_sup *sup)
{
    SB_LOGK(SB_WARN, "worker_killed", ((struct sb_lf[]){ LF_I("pid", sup->cur->pid) }),
            "worker pid %d did not exit within the drain timeout: SIGKILL", (int)sup->cur->pid);
    talon_child_kill(sup->cur);
    sup->deadline = sb_mono_ms() + KILL_RECHECK_MS;
    return TW_DRAINING;
}

static enum talon_wstate a_stop_live(struct talon_sup *sup)
{
    sup->stopping = true;
    return drain_active(sup, NULL);
}

static enum talon_wstate a_stop_draining(struct talon_sup *sup)
{
    sup->stopping = true;
    sup->kill_reason = NULL;
    return TW_DRAINING;
}

static enum talon_wstate a_stop_idle(struct talon_sup *sup)
{
    sup->stopping = true;
    sup->deadline = 0;
    return TW_STOPPED;
}

static enum talon_wstate a_swap(struct talon_sup *sup)
{
    struct talon_child *n = sup->incoming;
    sup->incoming = NULL;
    /* The old worker gets its SIGTERM a moment later: a call sysbusd sent
     * it just before it switched to the new URL is then still accepted
     * (and finishes in the drain) rather than answered 503. */
    if (sup->cur)
        talon_sup_retire(sup, sup->cur, SWAP_TERM_DELAY_MS, "replaced by a zero-downtime restart");
    sup->kill_reason = NULL;
    sup->cur = n;
    sup->port = n->port;
    sup->health_failures = 0;
    sup->backoff_ms = 1000;
    sup->deadline = 0;
    sup->sync_at = 0; /* the restart has just synced it */
    sup->next_health = sb_mono_ms() + sup->cfg->worker_health_interval_secs * 1000;
    if (!sup->ever_ready) {
        sup->ever_ready = true;
        sb_sd_notify("READY=1");
    }
    return TW_RUNNING;
}

/* The state x event table. NULL: the event does not apply in that state
 * (e.g. a health result that arrives while draining) and is ignored. */
static const action_fn table[TW_NSTATES][TE_NEVENTS] = {
    /* columns:    START, HEALTHY, UNHEALTHY, EXITED, DEADLINE, STOP, SWAP */
    [TW_STOPPED] = { a_start, NULL, NULL, NULL, NULL, a_stop_idle, a_swap },
    [TW_STARTING] = { NULL, a_ready, NULL, a_exited, a_startup_timeout, a_stop_live, a_swap },
    [TW_RUNNING] = { NULL, a_healthy, a_unhealthy, a_exited, NULL, a_stop_live, a_swap },
    [TW_DRAINING] = { NULL, NULL, NULL, a_drained, a_kill, a_stop_draining, a_swap },
    [TW_BACKOFF] = { a_start, NULL, NULL, NULL, a_start, a_stop_idle, a_swap },
    [TW_CRASHLOOP] = { a_start, NULL, NULL, NULL, NULL, a_stop_idle, a_swap },
    [TW_SECRETS] = { a_start, NULL, NULL, NULL, a_start, a_stop_idle, a_swap },
    [TW_HELD] = { NULL, a_held_healthy, a_held_unhealthy, a_exited, a_held_retry, a_stop_live,
                  a_swap },
};

void talon_sup_event(struct talon_sup *sup, enum talon_wevent ev)
{
    action_fn fn = table[sup->state][ev];
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
    set_status(sup);
    talon_restart_on_state(sup);
}

/* ---- the loop's entry points ---- */

void talon_sup_init(struct talon_sup *sup, const struct talon_settings *cfg)
{
    memset(sup, 0, sizeof *sup);
    sup->cfg = cfg;
    sup->state = TW_STOPPED;
    sup->port = (int)cfg->worker_port;
    sup->backoff_ms = 1000;
    sup->secret_failures = json_array();
}

void talon_sup_reap(struct talon_sup *sup)
{
    if (sup->cur && talon_child_reap(sup->cur))
        talon_sup_event(sup, TE_EXITED);
    if (sup->rs.next && talon_child_reap(sup->rs.next))
        talon_restart_on_exit(sup, sup->rs.next);
    for (int i = 0; i < TALON_MAX_RETIRED; i++) {
        struct talon_retired *r = &sup->retired[i];
        if (!r->c || !talon_child_reap(r->c))
            continue;
        char d[64];
        talon_child_describe(r->c, d, sizeof d);
        SB_LOGK(
            SB_INFO, "worker_exited",
            ((struct sb_lf[]){ LF_I("pid", r->c->pid), LF_S("last_exit", d), LF_S("why", r->why) }),
            "retired worker pid %d ended: %s", (int)r->c->pid, d);
        struct talon_child *c = r->c;
        r->c = NULL;
        talon_restart_on_exit(sup, c);
        talon_child_free(c);
    }
}

/* States whose worker gets health GETs (restart_blocked too: a worker that
 * recovers is kept) and the startup sync PUT. */
static bool health_polled(enum talon_wstate s)
{
    return s == TW_STARTING || s == TW_RUNNING || s == TW_HELD;
}

static bool sync_due_in(enum talon_wstate s)
{
    return s == TW_STARTING || s == TW_RUNNING;
}

void talon_sup_tick(struct talon_sup *sup)
{
    char why[600];
    talon_sup_reap(sup);
    int64_t now = sb_mono_ms();
    if (health_polled(sup->state) && sup->next_health && now >= sup->next_health) {
        bool ok = talon_sup_http(sup, false, sup->port, why, sizeof why);
        now = sb_mono_ms();
        if (!ok && sup->state != TW_STARTING)
            SB_LOGK(SB_WARN, "worker_health_failed",
                    ((struct sb_lf[]){ LF_I("pid", sup->cur->pid), LF_S("error", why),
                                       LF_I("failures", sup->health_failures + 1) }),
                    "health check failed: %s", why);
        sup->next_health =
            now + (sup->state == TW_STARTING ? STARTUP_POLL_MS
                                             : sup->cfg->worker_health_interval_secs * 1000);
        talon_sup_event(sup, ok ? TE_HEALTHY : TE_UNHEALTHY);
    }
    if (sync_due_in(sup->state) && sup->sync_at && now >= sup->sync_at) {
        bool ok = talon_sup_http(sup, true, sup->port, why, sizeof why);
        now = sb_mono_ms();
        sup->sync_left--;
        if (ok) {
            SB_LOGK(SB_INFO, "worker_synced", ((struct sb_lf[]){ LF_I("port", sup->port) }),
                    "PUT the worker's sync endpoint: registered");
            sup->sync_at = 0;
        } else {
            SB_LOGK(sup->sync_left > 0 ? SB_WARN : SB_ERROR, "worker_sync_failed",
                    ((struct sb_lf[]){ LF_S("error", why), LF_I("tries_left", sup->sync_left) }),
                    "sync PUT failed: %s", why);
            sup->sync_at = sup->sync_left > 0 ? now + 2000LL * (SYNC_TRIES - sup->sync_left) : 0;
        }
    }
    if (sup->deadline && now >= sup->deadline) {
        sup->deadline = 0;
        talon_sup_event(sup, TE_DEADLINE);
    }
    for (int i = 0; i < TALON_MAX_RETIRED; i++) {
        struct talon_retired *r = &sup->retired[i];
        if (r->c && r->term_at && now >= r->term_at) {
            talon_child_term(r->c);
            r->term_at = 0;
            r->kill_at = now + drain_ms(sup);
        }
        if (r->c && r->kill_at && now >= r->kill_at) {
            SB_LOGK(SB_WARN, "worker_killed", ((struct sb_lf[]){ LF_I("pid", r->c->pid) }),
                    "retired worker pid %d did not exit within the drain timeout: SIGKILL",
                    (int)r->c->pid);
            talon_child_kill(r->c);
            r->kill_at = now + KILL_RECHECK_MS;
        }
    }
    talon_restart_tick(sup);
}

static void due(int64_t *best, int64_t t)
{
    if (t && (!*best || t < *best))
        *best = t;
}

int64_t talon_sup_next_due(const struct talon_sup *sup)
{
    int64_t best = 0;
    if (health_polled(sup->state))
        due(&best, sup->next_health);
    if (sync_due_in(sup->state))
        due(&best, sup->sync_at);
    due(&best, sup->deadline);
    for (int i = 0; i < TALON_MAX_RETIRED; i++) {
        if (sup->retired[i].c) {
            due(&best, sup->retired[i].term_at);
            due(&best, sup->retired[i].kill_at);
        }
    }
    if (sup->rs.phase == RS_STARTING || sup->rs.phase == RS_SYNCING)
        due(&best, sup->rs.next_poll);
    return best;
}

int talon_sup_fds(const struct talon_sup *sup, int *fds, int max)
{
    int n = 0;
    if (sup->cur && sup->cur->err_fd >= 0 && n < max)
        fds[n++] = sup->cur->err_fd;
    if (sup->rs.next && sup->rs.next->err_fd >= 0 && n < max)
        fds[n++] = sup->rs.next->err_fd;
    for (int i = 0; i < TALON_MAX_RETIRED; i++)
        if (sup->retired[i].c && sup->retired[i].c->err_fd >= 0 && n < max)
            fds[n++] = sup->retired[i].c->err_fd;
    return n;
}

void talon_sup_pump(struct talon_sup *sup)
{
    if (sup->cur)
        talon_child_pump(sup->cur);
    if (sup->rs.next)
        talon_child_pump(sup->rs.next);
    for (int i = 0; i < TALON_MAX_RETIRED; i++)
        if (sup->retired[i].c)
            talon_child_pump(sup->retired[i].c);
}

bool talon_sup_done(const struct talon_sup *sup)
{
    if (sup->state != TW_STOPPED && sup->state != TW_CRASHLOOP && sup->state != TW_BACKOFF &&
        sup->state != TW_SECRETS)
        return false;
    if (sup->cur || sup->rs.next)
        return false;
    for (int i = 0; i < TALON_MAX_RETIRED; i++)
        if (sup->retired[i].c)
            return false;
    return sup->stopping;
}

void talon_sup_kill_all(struct talon_sup *sup)
{
    if (sup->cur)
        talon_child_kill(sup->cur);
    if (sup->rs.next)
        talon_child_kill(sup->rs.next);
    for (int i = 0; i < TALON_MAX_RETIRED; i++)
        if (sup->retired[i].c)
            talon_child_kill(sup->retired[i].c);
}

json_t *talon_sup_status(const struct talon_sup *sup)
{
    bool failed = sup->state == TW_CRASHLOOP || sup->state == TW_BACKOFF;
    json_t *o = json_pack("{s:s, s:o, s:i, s:I, s:o, s:O, s:b, s:i, s:i}", "worker_state",
                          talon_wstate_name(sup->state), "worker_pid",
                          sup->cur ? json_integer(sup->cur->pid) : json_null(), "worker_port",
                          sup->port, "worker_restarts", (json_int_t)sup->restarts, "last_exit",
                          sup->last_exit[0] ? json_string(sup->last_exit) : json_null(),
                          "secret_failures", sup->secret_failures, "restart_in_progress",
                          sup->rs.phase != RS_IDLE, "worker_health_failures", sup->health_failures,
                          "quick_failures", sup->quick_failures);
    if (o && failed)
        json_object_set_new(o, "stderr_tail", safe_string(sup->stderr_tail));
    if (o)
        talon_lease_status(sup, o);
    return o;
}

void talon_sup_free(struct talon_sup *sup)
{
    talon_child_free(sup->cur);
    talon_child_free(sup->rs.next);
    for (int i = 0; i < TALON_MAX_RETIRED; i++)
        talon_child_free(sup->retired[i].c);
    json_decref(sup->secret_failures);
    json_decref(sup->lease.unavailable);
    memset(sup, 0, sizeof *sup);
}
