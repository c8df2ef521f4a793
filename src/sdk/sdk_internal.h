/* sdk_internal.h - what the SDK's files share: the app and function records
 * (app.c), the call executor's context (exec.c, steps.c), registration and
 * server calls (client.c), serving (serve.c). */
#ifndef SYSBUS_SDK_INTERNAL_H
#define SYSBUS_SDK_INTERNAL_H

#include "sysbus.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>

#include "common/httpd.h"
#include "common/sign.h"

#define SDK_NAME "sysbus-c"
#define SDK_REQ_VERSION 1 /* the execution version we answer with */
#define SDK_DEFAULT_RETRIES 4
#define SDK_MAX_RETRIES 20

struct sysbus_fn {
    struct sysbus_fn *next;
    sysbus_app *app;
    char *id;      /* as written in code */
    char *full_id; /* "<app>-<id>" */
    char *name;
    sysbus_handler handler;
    void *user;
    json_t *triggers; /* array of {event, expression?} / {cron} */
    int retries;
    json_t *options; /* object: flow control as in the protocol */
    json_t *cancel;  /* array of {event, if?, timeout?} */
};

struct sdk_route {
    sysbus_route_fn fn;
    void *user;
};

struct sysbus_app {
    /* configuration (app.c) */
    char *app_id, *base_url, *event_key, *serve_origin, *serve_path, *host, *app_version;
    struct sb_signing_key key;
    struct sb_signing_key key_fallback; /* INNGEST_SIGNING_KEY_FALLBACK (rotation) */
    bool has_key, has_fallback, dev, register_at_start;
    int port, threads;
    int64_t drain_grace_ms;
    char config_error[300]; /* first definition or option error */
    struct sysbus_fn *fns, **fns_tail;
    size_t nfns;
    /* extra routes (serve.c adds its own after them) */
    struct sb_route *routes;
    struct sdk_route *route_user;
    size_t nroutes;
    /* running (serve.c, client.c) */
    struct sb_httpd *httpd;
    void *httpd_routes; /* serve.c: the route table in use */
    int bound_port;
    pthread_t reg_thread;
    bool reg_thread_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;           /* lock */
    int64_t last_registered; /* atomic: unix ms */
    int64_t inflight;        /* atomic: calls being executed */
    int draining;            /* atomic */
};

/* ---- app.c ---- */
/* The URL the server calls: serve_origin + serve_path. Caller frees. */
char *sdk_serve_url(const sysbus_app *app);
struct sysbus_fn *sdk_fn_find(const sysbus_app *app, const char *fn_id);
/* The registration body (POST /fn/register). */
json_t *sdk_register_body(const sysbus_app *app);
void sdk_config_error(sysbus_app *app, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- client.c: requests to the server ---- */
/* Bearer header for the server ("" in dev mode). */
void sdk_auth_header(const sysbus_app *app, char *out, size_t outsz);
/* POST /fn/register: 0 ok; else -1 with errbuf set and *status the server's
 * status (0 when unreachable). */
int sdk_register_once(sysbus_app *app, int *status, char *errbuf, size_t errlen);
/* Background registration with backoff until it succeeds or the app stops. */
int sdk_register_thread_start(sysbus_app *app);
void sdk_register_thread_stop(sysbus_app *app);
/* GET <base>/<path> with the bearer: the JSON body (new ref) or NULL. */
json_t *sdk_api_get(sysbus_app *app, const char *path, char *errbuf, size_t errlen);

/* ---- exec.c: one call ---- */
struct sdk_response {
    int status;
    json_t *body; /* owned */
    int no_retry; /* -1 unset, 0 false, 1 true */
    int64_t retry_after_s;
};

enum step_kind { STEP_RUN, STEP_SLEEP, STEP_WAIT, STEP_INVOKE };

struct arena_block;

struct sysbus_ctx {
    sysbus_app *app;
    struct sysbus_fn *fn;
    jmp_buf unwind;
    const json_t *event, *events, *steps;
    const char *run_id;
    int attempt, max_attempts;
    bool disable_immediate;
    const char *target; /* "step" or the hash of the step to run */
    json_t *seen;       /* step id -> times seen (for ":N" suffixes) */
    json_t *found;      /* hashes of new steps found (for "step not found") */
    bool in_step, in_group;
    json_t *group_ops; /* new steps found in the group */
    struct {           /* the group's only new step.run, if it may run at once */
        char hash[41];
        const char *id;
        sysbus_step_fn fn;
        void *arg;
        int nrun;
    } group;
    /* failure recorded by sysbus_fail */
    bool failed;
    enum sysbus_fail_mode fail_mode;
    json_t *error;         /* {name, message, stack, __serialized} */
    int64_t retry_after_s; /* 0 = none */
    /* the answer, when the handler was unwound */
    struct sdk_response *resp;
    /* memory */
    struct arena_block *arena;
    json_t *kept; /* array */
};

/* Runs fn for a call body (parsed) and step target ("step" or a hash). */
void sdk_execute(sysbus_app *app, struct sysbus_fn *fn, const json_t *body, const char *target,
                 struct sdk_response *out);
/* Ends the call with out set (never returns). */
_Noreturn void sdk_unwind(sysbus_ctx *c);
/* A serialized error object. */
json_t *sdk_error_json(const char *name, const char *message);
/* Sets c->resp to a 206 with ops (taken) and unwinds. */
_Noreturn void sdk_unwind_ops(sysbus_ctx *c, json_t *ops);
/* The 500 body when the server asked for a step the call cannot reach. */
json_t *sdk_step_not_found(const sysbus_ctx *c);
/* Fails the whole call (not a step) with c->error and unwinds. */
_Noreturn void sdk_unwind_failure(sysbus_ctx *c);

#endif
