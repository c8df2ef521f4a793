/* children.c - the workers talon holds (see sup_internal.h): the slots
 * (active, a restart's new one, the retired ones) and the one walk over
 * them; spawning one (leases first, then the port, then fork/exec);
 * retiring one; HTTP to one; reaping them, each exit fed to the table as
 * the event of its slot. Every child talon starts leaves its hands through
 * a reap here, so there are no zombies. Main loop thread only. */
#include "common/clock.h"
#include "common/httpc.h"
#include "common/log.h"
#include "talon/inject.h"
#include "talon/portowner.h"
#include "talon/proc.h"
#include "talon/sup_internal.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct talon_child *child_at(const struct talon_sup *sup, int slot)
{
    if (slot == TALON_SLOT_ACTIVE)
        return sup->cur;
    if (slot == TALON_SLOT_NEW)
        return sup->rs.next;
    return sup->retired[slot - TALON_SLOT_RETIRED].c;
}

int talon_sup_each_child(const struct talon_sup *sup, talon_child_fn fn, void *arg)
{
    for (int slot = 0; slot < TALON_SLOTS; slot++) {
        struct talon_child *c = child_at(sup, slot);
        int rc = c ? fn(c, slot, arg) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

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

static int has_pid(struct talon_child *c, int slot, void *arg)
{
    (void)slot;
    return c->pid == *(const pid_t *)arg;
}

/* Who holds port before a start: free, or taken over (--takeover). */
static int claim_port(struct talon_sup *sup, int port, struct sb_err *err)
{
    const struct talon_settings *c = sup->cfg;
    struct talon_port_owner o;
    int held = talon_port_owner(port, &o, err);
    if (held < 0)
        return held;
    if (held && o.pid && talon_sup_each_child(sup, has_pid, &o.pid))
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
    return talon_port_takeover(port, o.pid, (int)talon_drain_ms(sup), err);
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

int talon_sup_retire(struct talon_sup *sup, struct talon_child *c, int64_t delay_ms,
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
                r->kill_at = now + talon_drain_ms(sup);
            }
            SB_LOGK(SB_INFO, "worker_retiring",
                    ((struct sb_lf[]){ LF_I("pid", c->pid), LF_I("port", c->port), LF_S("why", why),
                                       LF_I("term_in_ms", delay_ms) }),
                    "SIGTERM to worker pid %d in %lld ms (%s): it drains, then exits", (int)c->pid,
                    (long long)delay_ms, why);
            return 0;
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
    return 1;
}

/* A retired worker that exited: logged, its slot freed, its exit maybe the
 * one a restart's answer waits for. */
static void reap_retired(struct talon_sup *sup, struct talon_retired *r)
{
    char d[64];
    talon_child_describe(r->c, d, sizeof d);
    SB_LOGK(SB_INFO, "worker_exited",
            ((struct sb_lf[]){ LF_I("pid", r->c->pid), LF_S("last_exit", d), LF_S("why", r->why) }),
            "retired worker pid %d ended: %s", (int)r->c->pid, d);
    struct talon_child *c = r->c;
    r->c = NULL;
    talon_restart_on_retired_exit(sup, c);
    talon_child_free(c);
    talon_restart_flush(sup);
}

static int reap_one(struct talon_child *c, int slot, void *arg)
{
    struct talon_sup *sup = arg;
    if (!talon_child_reap(c))
        return 0;
    if (slot == TALON_SLOT_ACTIVE)
        talon_sup_event(sup, TE_EXITED); /* the row frees it */
    else if (slot == TALON_SLOT_NEW)
        talon_sup_event(sup, TE_NEW_EXITED);
    else
        reap_retired(sup, &sup->retired[slot - TALON_SLOT_RETIRED]);
    return 0;
}

void talon_sup_reap(struct talon_sup *sup)
{
    talon_sup_each_child(sup, reap_one, sup);
}

struct fd_list {
    int *fds;
    int n, max;
};

static int add_fd(struct talon_child *c, int slot, void *arg)
{
    (void)slot;
    struct fd_list *l = arg;
    if (c->err_fd >= 0 && l->n < l->max)
        l->fds[l->n++] = c->err_fd;
    return 0;
}

int talon_sup_fds(const struct talon_sup *sup, int *fds, int max)
{
    struct fd_list l = { fds, 0, max };
    talon_sup_each_child(sup, add_fd, &l);
    return l.n;
}

static int pump(struct talon_child *c, int slot, void *arg)
{
    (void)slot;
    (void)arg;
    talon_child_pump(c);
    return 0;
}

void talon_sup_pump(struct talon_sup *sup)
{
    talon_sup_each_child(sup, pump, NULL);
}

static int kill_child(struct talon_child *c, int slot, void *arg)
{
    (void)slot;
    (void)arg;
    talon_child_kill(c);
    return 0;
}

void talon_sup_kill_all(struct talon_sup *sup)
{
    talon_sup_each_child(sup, kill_child, NULL);
}

static int any(struct talon_child *c, int slot, void *arg)
{
    (void)c;
    (void)slot;
    (void)arg;
    return 1;
}

bool talon_sup_done(const struct talon_sup *sup)
{
    /* stopping leaves only draining and stopped (an invariant) */
    return sup->stopping && sup->state == TW_STOPPED && !talon_sup_each_child(sup, any, NULL);
}
