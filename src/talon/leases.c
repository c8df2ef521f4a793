/* leases.c - the supervisor failing closed on secrets (see worker.h): a
 * worker whose required secrets cannot be leased is not started (or, when
 * it runs and failed its health checks, not replaced), and talon retries
 * the lease round with bounded exponential backoff and jitter, says why in
 * /health and systemd's STATUS=, and escalates through the crash-loop path
 * after crashloop_threshold rounds in a row. What is due when is the
 * lifecycle table's (worker.c, its actions in lifecycle.c); this file owns
 * the arithmetic, the accounting in sup->lease and the report texts. Main loop thread only. Never
 * sees a secret value: it handles names and lease errors. */
#include "common/clock.h"
#include "common/log.h"
#include "talon/inject.h"
#include "talon/sup_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

int64_t talon_lease_backoff_ms(int attempt, int64_t max_ms, uint32_t rnd)
{
    if (max_ms < TALON_BACKOFF_FIRST_MS)
        max_ms = TALON_BACKOFF_FIRST_MS;
    int64_t d = TALON_BACKOFF_FIRST_MS;
    for (int i = 1; i < attempt && d < max_ms; i++)
        d *= 2; /* stops at the cap: no overflow however many rounds failed */
    if (d > max_ms)
        d = max_ms;
    /* jitter in [d/2, d]: talons on many hosts waiting for one secrets
     * daemon do not all ask again in the same second */
    return d - (int64_t)(rnd % (uint32_t)(d / 2 + 1));
}

int talon_lease_env(struct talon_sup *sup, int port, struct talon_env *env, struct sb_err *err)
{
    int rc = talon_env_build(sup->cfg, port, true, env, err);
    if (env->secret_failures) {
        json_decref(sup->secret_failures);
        sup->secret_failures = json_incref(env->secret_failures);
    }
    if (rc == SB_EUNAVAIL) {
        json_decref(sup->lease.unavailable);
        sup->lease.unavailable = json_incref(env->unavailable);
        snprintf(sup->lease.error, sizeof sup->lease.error, "%s", err->msg);
    }
    return rc;
}

int talon_lease_check(struct talon_sup *sup, struct sb_err *err)
{
    struct talon_env env = { 0 };
    int rc = talon_lease_env(sup, sup->port, &env, err);
    talon_env_free(&env); /* wipes what was leased: only the answer mattered */
    return rc;
}

/* The names of the unavailable secrets, comma-separated, into out. */
static void unavailable_names(const struct talon_sup *sup, char *out, size_t outsz)
{
    size_t n = 0, i;
    json_t *u;
    out[0] = '\0';
    json_array_foreach(sup->lease.unavailable, i, u)
    {
        if (n >= outsz)
            break;
        n += (size_t)snprintf(out + n, outsz - n, "%s%s", i ? ", " : "",
                              json_string_value(json_object_get(u, "name")));
    }
}

void talon_lease_reason(const struct talon_sup *sup, char *out, size_t outsz)
{
    enum talon_wstate shown = talon_sup_shown_state(sup);
    if (shown == TW_SECRETS)
        snprintf(out, outsz, "worker not started: %s", sup->lease.error);
    else if (shown == TW_HELD &&
             sup->state != TW_HELD) /* `talon restart` leased for its new worker */
        snprintf(out, outsz, "worker pid %d failed its health checks; a restart is replacing it",
                 (int)sup->cur->pid);
    else if (shown == TW_HELD)
        snprintf(out, outsz, "worker pid %d failed its health checks and is not restarted%s%s",
                 (int)sup->cur->pid, sup->lease.error[0] ? ": " : "", sup->lease.error);
    else
        out[0] = '\0';
}

static void escalate(struct talon_sup *sup, enum talon_wstate next, int64_t delay)
{
    char names[400];
    unavailable_names(sup, names, sizeof names);
    SB_LOGK(SB_ERROR, "worker_secrets_escalated",
            ((struct sb_lf[]){ LF_S("secrets", names), LF_I("attempts", sup->lease.attempts),
                               LF_S("error", sup->lease.error) }),
            "worker %s: secrets unavailable (%s) for %d lease rounds in a row; still retrying",
            next == TW_SECRETS ? "not started" : "not restarted", names, sup->lease.attempts);
    json_t *secrets = json_array();
    size_t i;
    json_t *u;
    json_array_foreach(sup->lease.unavailable, i, u)
        json_array_append(secrets, json_object_get(u, "name"));
    char what[600];
    snprintf(what, sizeof what, "worker %s: secrets unavailable: %s",
             next == TW_SECRETS ? "not started" : "not restarted", names);
    json_t *data = json_pack("{s:s, s:s, s:o, s:s, s:i, s:i, s:I}", "reason", "secrets_unavailable",
                             "last_exit", what, "secrets", secrets, "error", sup->lease.error,
                             "attempts", sup->lease.attempts, "exits", sup->quick_failures,
                             "next_retry_in_ms", (json_int_t)delay);
    talon_sup_escalate(sup, data);
    json_decref(data);
}

enum talon_wstate talon_lease_wait(struct talon_sup *sup, enum talon_wstate next)
{
    struct talon_lease_wait *l = &sup->lease;
    if (l->attempts < 1000000)
        l->attempts++;
    int64_t delay = talon_lease_backoff_ms(l->attempts, sup->cfg->secrets_retry_max_secs * 1000,
                                           randombytes_random());
    sup->deadline = sb_mono_ms() + delay;
    l->next_unix_ms = sb_now_ms() + delay;
    SB_LOGK(
        SB_WARN, "worker_secrets_unavailable",
        ((struct sb_lf[]){ LF_S("error", l->error), LF_I("attempts", l->attempts),
                           LF_I("retry_in_ms", delay), LF_I("pid", sup->cur ? sup->cur->pid : 0) }),
        "%s: %s; leasing again in %lld ms",
        next == TW_SECRETS ? "not starting the worker"
                           : "not restarting the unhealthy worker (it keeps running)",
        l->error, (long long)delay);
    /* the crash-loop guard's threshold, once per episode: the operator
     * hears about it the way a crash loop is reported, and talon goes on
     * retrying (a secrets daemon coming back needs no action) */
    if (l->attempts == sup->cfg->worker_crashloop_threshold)
        escalate(sup, next, delay);
    return next;
}

void talon_lease_ok(struct talon_sup *sup)
{
    struct talon_lease_wait *l = &sup->lease;
    if (l->attempts)
        SB_LOGK(SB_INFO, "worker_secrets_available",
                ((struct sb_lf[]){ LF_I("attempts", l->attempts) }),
                "the worker's required secrets were leased after %d failed rounds", l->attempts);
    l->attempts = 0;
    l->next_unix_ms = 0;
    l->error[0] = '\0';
    json_decref(l->unavailable);
    l->unavailable = NULL;
}

void talon_lease_status(const struct talon_sup *sup, json_t *status)
{
    enum talon_wstate shown = talon_sup_shown_state(sup);
    if (shown != TW_SECRETS && shown != TW_HELD)
        return;
    char reason[800];
    talon_lease_reason(sup, reason, sizeof reason);
    json_object_set_new(status, "reason", json_string(reason));
    json_object_set_new(status, "secrets_unavailable",
                        sup->lease.unavailable ? json_deep_copy(sup->lease.unavailable)
                                               : json_array());
    json_object_set_new(status, "lease_attempts", json_integer(sup->lease.attempts));
    json_object_set_new(status, "next_retry_unix_ms", json_integer(sup->lease.next_unix_ms));
}
