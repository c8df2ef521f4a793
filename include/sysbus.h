/* sysbus.h - the sysbus worker SDK (libsysbus): durable functions in C.
 *
 * A worker is an *app*: a set of *functions*, served over HTTP with the
 * Inngest serve protocol, so it runs on sysbusd (and on an Inngest server).
 * The server calls the worker once per step; the worker stores nothing.
 *
 *     static json_t *fetch(sysbus_ctx *c, void *arg)
 *     {
 *         return json_pack("{s:i}", "rows", 42);       // the step's result
 *     }
 *
 *     static json_t *pipeline(sysbus_ctx *c, const json_t *event, void *user)
 *     {
 *         const json_t *rows = sysbus_step_run(c, "fetch", fetch, NULL);
 *         sysbus_step_sleep(c, "cool-down", "10s");
 *         return json_pack("{s:O}", "fetched", rows);   // the run's output
 *     }
 *
 *     int main(void)
 *     {
 *         sysbus_app *app = sysbus_app_new(NULL);       // configured from the environment
 *         sysbus_fn *f = sysbus_fn_new(app, "pipeline", pipeline, NULL);
 *         sysbus_fn_trigger_event(f, "app/data.uploaded", NULL);
 *         sysbus_fn_retries(f, 2);
 *         return sysbus_serve(app);                     // until SIGTERM, then drains
 *     }
 *
 * Deterministic replay. Every call runs the handler from the top. Each step
 * primitive looks its step up in the results the server sent: a step that
 * already ran returns its stored result at once; the first step that has
 * not, runs (or is reported to the server) and the handler is *unwound*:
 * the SDK jumps (longjmp) from inside the step primitive back to its
 * caller, abandoning the handler's stack frames. Therefore:
 *   - code between steps must be deterministic and may run many times; put
 *     side effects inside sysbus_step_run callbacks;
 *   - do not hold malloc'd memory, locks or open files across a step
 *     primitive: allocate with sysbus_alloc / sysbus_strdup / sysbus_printf
 *     (a per-call arena) or hand JSON to sysbus_keep; all of it is freed
 *     when the call ends, however it ends;
 *   - step ids must be unique per run and stable between calls (a repeated
 *     id is allowed: it becomes "id:1", "id:2", ...).
 * JSON values returned by step primitives and the event are borrowed: valid
 * until the call ends; json_incref them to keep them in a result.
 *
 * Errors. A step callback or a handler fails by returning sysbus_fail(...):
 *   SYSBUS_RETRY     retried with backoff (a step: until its attempts run
 *                    out, then the step fails for good);
 *   SYSBUS_NO_RETRY  fails at once, no further attempts.
 * sysbus_retry_after() asks the server to wait before the next attempt.
 * A step that failed for good makes sysbus_step_run fail the run too, with
 * the step's error; use sysbus_step_run_try to handle it instead.
 *
 * Threads: handlers run on the HTTP server's threads, several at once; a
 * handler must not share mutable state without locking. Every function
 * here that takes a sysbus_ctx must be called only from the thread running
 * that call. Definitions (sysbus_app_*, sysbus_fn_*) must be done before
 * sysbus_start / sysbus_serve.
 *
 * Environment, read as the Inngest SDKs read it (an option set in struct
 * sysbus_options wins):
 *   INNGEST_BASE_URL      the server (default http://127.0.0.1:8288)
 *   INNGEST_DEV           1 or a URL: development mode (nothing signed; a URL
 *                         is also the server); 0 or unset: signed, which
 *                         needs a signing key (sysbus_start fails without)
 *   INNGEST_SIGNING_KEY   signkey-<env>-<hex> or bare hex: verifies calls,
 *                         signs answers, authenticates registration and API
 *                         reads
 *   INNGEST_SIGNING_KEY_FALLBACK  the other key of a rotation: a call that
 *                         does not verify with the key is tried with it, and
 *                         a request the server refuses (401/403) is sent
 *                         again with its bearer
 *   INNGEST_EVENT_KEY     key for sending events (sysbus_step_send_event)
 *   INNGEST_APP_ID        the app id
 *   INNGEST_SERVE_ORIGIN  the URL the server reaches this worker at, e.g.
 *                         http://worker.ns.svc:3111 (INNGEST_SERVE_HOST is
 *                         accepted too); default http://127.0.0.1:<port>
 *   INNGEST_SERVE_PATH    default /api/inngest
 *   PORT                  listening port (default 3111); HOST the listening
 *                         address (default 0.0.0.0)
 *   SYSBUS_DRAIN_GRACE    how long calls in flight may finish after SIGTERM
 *                         (default 25s)
 *   SYSBUS_THREADS        HTTP threads, i.e. calls run at once (default 32)
 */
#ifndef SYSBUS_H
#define SYSBUS_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SYSBUS_API __attribute__((visibility("default")))
#define SYSBUS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SYSBUS_API
#define SYSBUS_PRINTF(a, b)
#endif

#define SYSBUS_VERSION "0.1.0"

typedef struct sysbus_app sysbus_app;
typedef struct sysbus_fn sysbus_fn;
typedef struct sysbus_ctx sysbus_ctx;
typedef struct sysbus_http sysbus_http;

/* A function body: returns the run's output (a new reference; NULL is JSON
 * null unless sysbus_fail was called). event is the triggering event. */
typedef json_t *(*sysbus_handler)(sysbus_ctx *c, const json_t *event, void *user);
/* A step body, run once per attempt: returns the step's result (a new
 * reference, NULL = null) or sysbus_fail(...). */
typedef json_t *(*sysbus_step_fn)(sysbus_ctx *c, void *arg);

/* ---- the app ---- */

/* Every field is optional: NULL / 0 / -1 means "from the environment, else
 * the default" (see the top of this file). */
struct sysbus_options {
    const char *app_id;
    const char *base_url;
    const char *signing_key;
    const char *event_key;
    int dev; /* -1 environment, 0 signed, 1 development */
    const char *serve_origin;
    const char *serve_path;
    const char *host;
    int port; /* 0 = environment; -1 = any free port (see sysbus_port) */
    int threads;
    int64_t drain_grace_ms;  /* -1 = environment */
    const char *app_version; /* reported at registration */
    int register_at_start;   /* -1/1 yes (default), 0 no */
};

/* A new app (opts may be NULL). Never NULL: a bad option is reported by
 * sysbus_start. */
SYSBUS_API sysbus_app *sysbus_app_new(const struct sysbus_options *opts);
/* The first configuration error (a bad option or variable, signed mode
 * without a signing key, a bad function definition), or NULL: what
 * sysbus_start would refuse with. A program can exit with its own
 * "configuration error" code on it before starting. */
SYSBUS_API const char *sysbus_config_error(const sysbus_app *app);
/* Frees a stopped app (nothing, while its server still runs). */
SYSBUS_API void sysbus_app_free(sysbus_app *app);
SYSBUS_API const char *sysbus_app_id(const sysbus_app *app);

/* ---- functions ---- */

/* A function with the given id (unique in the app; [A-Za-z0-9_-]). Its
 * registered id is "<app id>-<id>". Defaults: name = id, 4 retries. */
SYSBUS_API sysbus_fn *sysbus_fn_new(sysbus_app *app, const char *id, sysbus_handler handler,
                                    void *user);
SYSBUS_API void sysbus_fn_name(sysbus_fn *f, const char *name);
/* Triggered by an event name ("app/user.created", or a prefix such as "app/" followed by "*"),
 * optionally only when if_expr holds (a CEL expression over `event`). */
SYSBUS_API void sysbus_fn_trigger_event(sysbus_fn *f, const char *event, const char *if_expr);
/* Triggered on a schedule: 5-field cron, optionally prefixed "TZ=Zone ". */
SYSBUS_API void sysbus_fn_trigger_cron(sysbus_fn *f, const char *cron);
/* Retries after the first attempt, 0..20. */
SYSBUS_API void sysbus_fn_retries(sysbus_fn *f, int retries);
/* A flow-control option as in the protocol, e.g. "concurrency" with
 * json_pack("{s:i, s:s}", "limit", 2, "key", "event.data.user"), or
 * "throttle", "rateLimit", "debounce", "batchEvents", "idempotency",
 * "priority", "timeouts", "singleton". Takes value. */
SYSBUS_API void sysbus_fn_option(sysbus_fn *f, const char *name, json_t *value);
/* Cancels a running run when `event` arrives (and if_expr over `event`
 * and `async` holds), within timeout (NULL = no limit). */
SYSBUS_API void sysbus_fn_cancel_on(sysbus_fn *f, const char *event, const char *if_expr,
                                    const char *timeout);

/* ---- serving ---- */

/* Listens, registers with the server (retried with backoff until it
 * answers) and serves until SIGTERM or SIGINT; then drains: new calls get
 * 503 (the server retries them), calls in flight may finish within the
 * drain grace. Returns 0 after a clean drain, 1 on a start-up error
 * (printed on stderr). */
SYSBUS_API int sysbus_serve(sysbus_app *app);

/* The same in pieces, for embedding and tests: start (errbuf gets the
 * reason on failure), the bound port, and a drain + stop (returns 0 when
 * every call in flight finished within the grace). */
SYSBUS_API int sysbus_start(sysbus_app *app, char *errbuf, size_t errlen);
SYSBUS_API int sysbus_port(const sysbus_app *app);
SYSBUS_API int sysbus_stop(sysbus_app *app);

/* Registers the app's functions with the server now (what PUT does).
 * 0 ok, -1 with errbuf set. */
SYSBUS_API int sysbus_register(sysbus_app *app, char *errbuf, size_t errlen);
/* Unix ms of the last successful registration, 0 = none yet. */
SYSBUS_API int64_t sysbus_last_registration(const sysbus_app *app);

/* Extra routes next to the serve path (health, webhooks, ...). pattern is a
 * path, "{}" matching one segment. body_max 0 = 1 MiB. The handler must
 * call sysbus_http_reply exactly once. */
typedef void (*sysbus_route_fn)(sysbus_http *req, void *user);
SYSBUS_API void sysbus_route(sysbus_app *app, const char *method, const char *pattern,
                             sysbus_route_fn fn, void *user, size_t body_max);
SYSBUS_API const char *sysbus_http_method(const sysbus_http *req);
SYSBUS_API const char *sysbus_http_path(const sysbus_http *req);
SYSBUS_API const char *sysbus_http_param(const sysbus_http *req, int i);
SYSBUS_API const char *sysbus_http_header(const sysbus_http *req, const char *name);
SYSBUS_API const char *sysbus_http_body(const sysbus_http *req, size_t *len);
SYSBUS_API void sysbus_http_reply(sysbus_http *req, int status, json_t *body /* taken */);

/* Sends events to the server (outside a run; inside one use
 * sysbus_step_send_event). events: one object or an array. Returns the
 * ids array (new reference) or NULL with errbuf set. */
SYSBUS_API json_t *sysbus_send_events(sysbus_app *app, const json_t *events, char *errbuf,
                                      size_t errlen);
/* The same, and *http_status (may be NULL) is the server's HTTP status (0
 * when it could not be reached), so that a caller can tell a refusal that
 * will not change (4xx: the events themselves are wrong) from an outage. */
SYSBUS_API json_t *sysbus_send_events_status(sysbus_app *app, const json_t *events,
                                             int *http_status, char *errbuf, size_t errlen);

/* ---- steps (inside a handler) ---- */

/* Runs fn once (memoized): returns its result. */
SYSBUS_API const json_t *sysbus_step_run(sysbus_ctx *c, const char *id, sysbus_step_fn fn,
                                         void *arg);
/* The same, but a step that failed for good returns NULL and sets *error
 * (its {name, message} object) instead of failing the run. */
SYSBUS_API const json_t *sysbus_step_run_try(sysbus_ctx *c, const char *id, sysbus_step_fn fn,
                                             void *arg, const json_t **error);
/* Sleeps for duration ("30s", "1h30m", "2d") / until an ISO 8601 time. */
SYSBUS_API void sysbus_step_sleep(sysbus_ctx *c, const char *id, const char *duration);
SYSBUS_API void sysbus_step_sleep_until(sysbus_ctx *c, const char *id, const char *iso_time);
/* Waits for event (matching if_expr over `event`, the trigger, and `async`,
 * the candidate; NULL = any) up to timeout. Returns the event, or JSON
 * null on timeout. */
SYSBUS_API const json_t *sysbus_step_wait_for_event(sysbus_ctx *c, const char *id,
                                                    const char *event, const char *if_expr,
                                                    const char *timeout);
/* Sends events (one object or an array) once: returns {"ids": [...]}. */
SYSBUS_API const json_t *sysbus_step_send_event(sysbus_ctx *c, const char *id,
                                                const json_t *events);
/* Runs another function (its registered id, "<app>-<fn>") with data as its
 * event's data and returns its output; fails the run when it fails (or
 * within timeout, NULL = none, does not finish). */
SYSBUS_API const json_t *sysbus_step_invoke(sysbus_ctx *c, const char *id, const char *function_id,
                                            const json_t *data, const char *timeout);
/* Parallel steps: the steps between begin and end are planned together and
 * run concurrently by the server (each in its own call). Inside the group
 * sysbus_step_run returns NULL for a step that has not run yet; after
 * sysbus_parallel_end every step of the group has its result. */
SYSBUS_API void sysbus_parallel_begin(sysbus_ctx *c);
SYSBUS_API void sysbus_parallel_end(sysbus_ctx *c);

/* ---- failing ---- */

enum sysbus_fail_mode { SYSBUS_RETRY = 0, SYSBUS_NO_RETRY = 1 };
/* Records the error; returns NULL for `return sysbus_fail(...)`. */
SYSBUS_API json_t *sysbus_fail(sysbus_ctx *c, enum sysbus_fail_mode mode, const char *fmt, ...)
    SYSBUS_PRINTF(3, 4);
/* Same, with an error name other than "Error". */
SYSBUS_API json_t *sysbus_fail_named(sysbus_ctx *c, enum sysbus_fail_mode mode, const char *name,
                                     const char *fmt, ...) SYSBUS_PRINTF(4, 5);
/* The next attempt should wait at least this long (seconds, 1..86400). */
SYSBUS_API void sysbus_retry_after(sysbus_ctx *c, int64_t seconds);

/* ---- the call ---- */

SYSBUS_API const char *sysbus_run_id(const sysbus_ctx *c);
/* The function's id as registered ("<app>-<fn>"). */
SYSBUS_API const char *sysbus_function_id(const sysbus_ctx *c);
/* 0-based attempt of the step (or of the function body) being run. */
SYSBUS_API int sysbus_attempt(const sysbus_ctx *c);
SYSBUS_API const json_t *sysbus_event(const sysbus_ctx *c);
/* Every event of the run (more than one for batchEvents). */
SYSBUS_API const json_t *sysbus_events(const sysbus_ctx *c);
SYSBUS_API sysbus_app *sysbus_ctx_app(const sysbus_ctx *c);

/* Per-call arena: freed when the call ends. Never NULL (aborts on OOM). */
SYSBUS_API void *sysbus_alloc(sysbus_ctx *c, size_t n);
SYSBUS_API char *sysbus_strdup(sysbus_ctx *c, const char *s);
SYSBUS_API char *sysbus_printf(sysbus_ctx *c, const char *fmt, ...) SYSBUS_PRINTF(2, 3);
/* Hands v (a new reference) to the call: released when it ends. Returns v. */
SYSBUS_API json_t *sysbus_keep(sysbus_ctx *c, json_t *v);

#ifdef __cplusplus
}
#endif

#endif
