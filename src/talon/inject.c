/* inject.c - building the worker's environment and leasing its secrets (see
 * inject.h). Logs each failed lease (by name and error, never a value);
 * reads talon's environment only through sb_env. */
#include "talon/inject.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "secrets/client.h"
#include "talon/envfile.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) : strlen(entry);
}

static void entry_free(char *entry, bool guarded)
{
    if (guarded) {
        sodium_free(entry); /* zeroes before unmapping */
    } else if (entry) {
        sodium_memzero(entry, strlen(entry)); /* env file values can be keys too */
        free(entry);
    }
}

/* Adds entry (owned from now on), replacing a variable of the same name. */
static int env_put(struct talon_env *e, char *entry, bool guarded, const char *source)
{
    char *src = strdup(source);
    if (!src) {
        entry_free(entry, guarded);
        return SB_ENOMEM;
    }
    size_t nl = name_len(entry);
    for (size_t i = 0; i < e->n; i++) {
        if (name_len(e->envp[i]) == nl && strncmp(e->envp[i], entry, nl) == 0) {
            entry_free(e->envp[i], e->guarded[i]);
            free(e->source[i]);
            e->envp[i] = entry;
            e->guarded[i] = guarded;
            e->source[i] = src;
            return 0;
        }
    }
    if (e->n + 2 > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 32;
        char **ne = realloc(e->envp, cap * sizeof *ne);
        if (ne)
            e->envp = ne;
        bool *ng = ne ? realloc(e->guarded, cap * sizeof *ng) : NULL;
        if (ng)
            e->guarded = ng;
        char **ns = ng ? realloc(e->source, cap * sizeof *ns) : NULL;
        if (ns)
            e->source = ns;
        if (!ns) {
            entry_free(entry, guarded);
            free(src);
            return SB_ENOMEM;
        }
        e->cap = cap;
    }
    e->envp[e->n] = entry;
    e->guarded[e->n] = guarded;
    e->source[e->n] = src;
    e->n++;
    e->envp[e->n] = NULL;
    return 0;
}

static int env_set(struct talon_env *e, const char *name, const char *value, const char *source)
{
    size_t len = strlen(name) + 1 + strlen(value) + 1;
    char *entry = malloc(len);
    if (!entry)
        return SB_ENOMEM;
    snprintf(entry, len, "%s=%s", name, value);
    return env_put(e, entry, false, source);
}

/* Leases one secret into e. A failure is recorded (secret_failures, and
 * unavailable for a required secret), not returned: the caller decides
 * once all are tried. *lease_rc gets the lease's own result. */
static int lease_one(struct talon_env *e, const struct talon_settings *s, const char *socket,
                     const struct talon_secret_map *m, int timeout_ms, int *lease_rc)
{
    struct secrets_lease l;
    struct sb_err err = { 0 };
    memset(&l, 0, sizeof l);
    int rc = SB_EUNAVAIL;
    const char *secret = m->name, *var = m->env;
    if (!socket)
        sb_err_set(&err, rc, "not tried: the secrets daemon did not answer an earlier lease");
    else if (timeout_ms <= 0)
        sb_err_set(&err, rc = SB_ETIMEOUT, "not tried: the time for leases ran out");
    else
        rc = secrets_lease(socket, secret, s->secrets_ttl_ms / 1000, "talon", timeout_ms, &l, &err);
    *lease_rc = rc;
    if (rc) {
        SB_LOGK(SB_WARN, "secret_lease_failed",
                ((struct sb_lf[]){ LF_S("secret", secret), LF_S("env", var),
                                   LF_B("optional", m->optional), LF_S("code", sb_errname(rc)),
                                   LF_S("error", err.msg) }),
                "cannot lease secret %s for %s: %s", secret, var,
                m->optional ? "optional, the worker starts without it"
                            : "required, the worker is not started without it");
        json_array_append_new(e->secret_failures, json_string(secret));
        if (!m->optional)
            json_array_append_new(e->unavailable,
                                  json_pack("{s:s, s:s, s:s, s:s}", "name", secret, "env", var,
                                            "code", sb_errname(rc), "error", err.msg));
        return 0;
    }
    size_t vl = strlen(var), len = vl + 1 + l.value_len + 1;
    char *entry = sodium_malloc(len);
    if (!entry) {
        secrets_lease_clear(&l);
        return SB_ENOMEM;
    }
    memcpy(entry, var, vl);
    entry[vl] = '=';
    memcpy(entry + vl + 1, l.value, l.value_len);
    entry[len - 1] = '\0';
    secrets_lease_clear(&l);
    char src[200];
    snprintf(src, sizeof src, "secret %s", secret);
    return env_put(e, entry, true, src);
}

/* "secrets unavailable: a (UNAVAIL: ...), b (NOTFOUND: ...)" into err,
 * cut to fit. Returns SB_EUNAVAIL. */
static int unavailable_error(json_t *unavailable, struct sb_err *err)
{
    char msg[sizeof err->msg];
    size_t n = (size_t)snprintf(msg, sizeof msg, "secrets unavailable:");
    size_t i;
    json_t *u;
    json_array_foreach(unavailable, i, u)
    {
        if (n >= sizeof msg)
            break;
        n += (size_t)snprintf(msg + n, sizeof msg - n, "%s %s (%s: %s)", i ? "," : "",
                              json_string_value(json_object_get(u, "name")),
                              json_string_value(json_object_get(u, "code")),
                              json_string_value(json_object_get(u, "error")));
    }
    return sb_err_set(err, SB_EUNAVAIL, "%s", msg);
}

/* 1. What [worker] pass_env names, from talon's environment (never
 * NOTIFY_SOCKET: systemd's notifications are talon's). */
static int add_inherited(struct talon_env *out, const struct talon_settings *s)
{
    int rc = 0;
    for (size_t i = 0; i < s->worker_pass_env.n && !rc; i++) {
        const char *name = s->worker_pass_env.v[i];
        const char *v = sb_env(name);
        if (v && strcmp(name, "NOTIFY_SOCKET") != 0)
            rc = env_set(out, name, v, "inherited ([worker] pass_env)");
    }
    return rc;
}

/* 2. talon's defaults, which the env file may override. */
static int add_defaults(struct talon_env *out, const struct talon_settings *s)
{
    char grace[64];
    snprintf(grace, sizeof grace, "%llds", (long long)s->worker_drain_timeout_secs);
    int rc = env_set(out, "WORKER_ROLE", "host", "talon default");
    return rc ? rc
              : env_set(out, "SYSBUS_DRAIN_GRACE", grace, "talon ([worker] drain_timeout_secs)");
}

/* Warns when the env file's SYSBUS_DRAIN_GRACE outlasts the time talon
 * gives a draining worker. */
static void warn_long_drain_grace(const struct talon_settings *s, const struct talon_envfile *f,
                                  size_t i)
{
    int64_t grace_ms;
    if (sb_duration_parse(f->v[i].value, 1000, &grace_ms) != 0 ||
        grace_ms <= s->worker_drain_timeout_secs * 1000)
        return;
    SB_LOGK(SB_WARN, "drain_grace_too_long",
            ((struct sb_lf[]){ LF_S("file", s->worker_env_file), LF_I("line", f->v[i].line),
                               LF_I("drain_timeout_secs", s->worker_drain_timeout_secs) }),
            "%s:%d: SYSBUS_DRAIN_GRACE=%s is longer than [worker] drain_timeout_secs "
            "(%lld): talon will SIGKILL the worker before its drain ends",
            s->worker_env_file, f->v[i].line, f->v[i].value,
            (long long)s->worker_drain_timeout_secs);
}

/* 3. The env file, but for PATH and PORT, which talon sets (step 4). */
static int add_env_file(struct talon_env *out, const struct talon_settings *s, struct sb_err *err)
{
    char src[1200];
    struct talon_envfile f = { 0 };
    int rc = talon_envfile_load(s->worker_env_file, &f, err);
    for (size_t i = 0; i < f.n && !rc; i++) {
        const char *name = f.v[i].name;
        if (strcmp(name, "PATH") == 0 || strcmp(name, "PORT") == 0) {
            SB_LOGK(SB_WARN, "env_file_ignored",
                    ((struct sb_lf[]){ LF_S("file", s->worker_env_file), LF_S("name", name),
                                       LF_I("line", f.v[i].line) }),
                    "%s:%d: %s is set by talon ([worker] %s); the env file's value is ignored",
                    s->worker_env_file, f.v[i].line, name, name[1] == 'A' ? "path" : "port");
            continue;
        }
        if (strcmp(name, "SYSBUS_DRAIN_GRACE") == 0)
            warn_long_drain_grace(s, &f, i);
        snprintf(src, sizeof src, "env file %s:%d", s->worker_env_file, f.v[i].line);
        rc = env_set(out, name, f.v[i].value, src);
    }
    talon_envfile_free(&f);
    return rc;
}

/* 4. What talon fixes: PATH and the port this worker listens on. */
static int add_fixed(struct talon_env *out, const struct talon_settings *s, int port)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%d", port);
    int rc = env_set(out, "PATH", s->worker_path, "[worker] path");
    return rc ? rc
              : env_set(out, "PORT", buf,
                        port == s->worker_port ? "[worker] port" : "[worker] alt_port");
}

/* 5. The secrets: leased when lease is set, else named with an empty value
 * (a plan). A failed lease is recorded in out, not returned. */
static int add_secrets(struct talon_env *out, const struct talon_settings *s, bool lease)
{
    char socket[256], *sockp = NULL, src[1200];
    struct sb_err serr = { 0 };
    if (lease && s->nsecret_maps) {
        if (secrets_socket_path(s->secrets_socket, socket, sizeof socket, &serr) == 0)
            sockp = socket;
        else
            SB_LOG(SB_WARN, "secret_lease_failed", "secrets socket: %s", serr.msg);
    }
    /* One time budget ([secrets] timeout_secs) for all the leases, and a
     * daemon that is down or does not answer is not asked again: a stuck
     * daemon delays a worker start by the timeout, not by timeout x secrets.
     * Every mapping is tried even after a required one failed, so that the
     * report names all that are missing, not one per retry. */
    int64_t deadline = sb_mono_ms() + s->secrets_timeout_secs * 1000;
    int rc = 0;
    for (size_t i = 0; i < s->nsecret_maps && !rc; i++) {
        const struct talon_secret_map *m = &s->secret_maps[i];
        if (lease) {
            int lrc = 0;
            rc = lease_one(out, s, sockp, m, (int)(deadline - sb_mono_ms()), &lrc);
            if (lrc == SB_EUNAVAIL || lrc == SB_ETIMEOUT)
                sockp = NULL;
        } else {
            snprintf(src, sizeof src, "secret %s%s", m->name, m->optional ? " (optional)" : "");
            rc = env_set(out, m->env, "", src);
        }
    }
    return rc;
}

int talon_env_build(const struct talon_settings *s, int port, bool lease, struct talon_env *out,
                    struct sb_err *err)
{
    if (!(out->secret_failures = json_array()) || !(out->unavailable = json_array()))
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    /* In this order: a later step replaces a variable an earlier one set. */
    int rc = add_inherited(out, s);
    if (!rc)
        rc = add_defaults(out, s);
    if (!rc && s->worker_env_file)
        rc = add_env_file(out, s, err);
    if (!rc)
        rc = add_fixed(out, s, port);
    if (!rc)
        rc = add_secrets(out, s, lease);
    if (rc == SB_ENOMEM)
        return sb_err_set(err, rc, "out of memory");
    if (!rc && json_array_size(out->unavailable))
        rc = unavailable_error(out->unavailable, err);
    return rc;
}

json_t *talon_env_plan(const struct talon_env *e)
{
    json_t *a = json_array();
    for (size_t i = 0; i < e->n; i++) {
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)name_len(e->envp[i]), e->envp[i]);
        json_array_append_new(a, json_pack("{s:s, s:s}", "name", name, "source", e->source[i]));
    }
    return a;
}

void talon_env_free(struct talon_env *e)
{
    for (size_t i = 0; i < e->n; i++) {
        entry_free(e->envp[i], e->guarded[i]);
        free(e->source[i]);
    }
    free(e->envp);
    free(e->guarded);
    free(e->source);
    json_decref(e->secret_failures);
    json_decref(e->unavailable);
    memset(e, 0, sizeof *e);
}
