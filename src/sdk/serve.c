/* serve.c - the SDK's HTTP side (libmicrohttpd through common/httpd): the
 * serve path (GET introspection, PUT sync, POST call with signature checks
 * and signed answers), the app's extra routes, start, drain and stop. */
#include "sdk_internal.h"
#include "common/clock.h"
#include "common/httpc.h"
#include "common/json.h"
#include "common/log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CALL_BODY_MAX (64u << 20)
#define ROUTE_BODY_DEFAULT (1u << 20)
#define SIGNATURE_SKEW_S 300

/* ---- extra routes ---- */

void sysbus_route(sysbus_app *app, const char *method, const char *pattern, sysbus_route_fn fn,
                  void *user, size_t body_max)
{
    struct sb_route *r = realloc(app->routes, (app->nroutes + 1) * sizeof *r);
    struct sdk_route *u = realloc(app->route_user, (app->nroutes + 1) * sizeof *u);
    if (!r || !u)
        abort();
    app->routes = r;
    app->route_user = u;
    r[app->nroutes] = (struct sb_route){ .method = strdup(method),
                                         .pattern = strdup(pattern),
                                         .body_max = body_max ? body_max : ROUTE_BODY_DEFAULT };
    u[app->nroutes] = (struct sdk_route){ fn, user };
    app->nroutes++;
}

const char *sysbus_http_method(const sysbus_http *req)
{
    return sb_req_method((const struct sb_req *)req);
}

const char *sysbus_http_path(const sysbus_http *req)
{
    return sb_req_path((const struct sb_req *)req);
}

const char *sysbus_http_param(const sysbus_http *req, int i)
{
    return sb_req_param((const struct sb_req *)req, i);
}

const char *sysbus_http_header(const sysbus_http *req, const char *name)
{
    return sb_req_header((const struct sb_req *)req, name);
}

const char *sysbus_http_body(const sysbus_http *req, size_t *len)
{
    return sb_req_body((const struct sb_req *)req, len);
}

void sysbus_http_reply(sysbus_http *req, int status, json_t *body)
{
    sb_reply_json((struct sb_req *)req, status, body);
}

/* ---- the serve path ---- */

/* The routes in use: the app's, then the serve path's three. */
struct served {
    struct sb_route *all;
    size_t n;
};

static void user_route(struct sb_req *req)
{
    sysbus_app *app = sb_req_app(req);
    size_t i = (size_t)(sb_req_route(req) - ((struct served *)app->httpd_routes)->all);
    app->route_user[i].fn((sysbus_http *)req, app->route_user[i].user);
}

static void sdk_headers(struct sb_req *req)
{
    char v[16];
    snprintf(v, sizeof v, "%d", SDK_REQ_VERSION);
    sb_reply_header(req, "X-Inngest-Sdk", SDK_NAME ":v" SYSBUS_VERSION);
    sb_reply_header(req, "X-Inngest-Req-Version", v);
    sb_reply_header(req, "x-inngest-sdk-handled", "true");
}

static bool signed_mode(const sysbus_app *app)
{
    return !app->dev && app->has_key;
}

/* The key that verified the request's signature (the answer is signed with
 * it, as the official SDKs do), or NULL in dev mode (nothing to verify); sets
 * *refused and replies 401 when it does not verify with the key or its
 * fallback. */
static const struct sb_signing_key *check_signature(sysbus_app *app, struct sb_req *req,
                                                    bool *refused)
{
    *refused = false;
    if (!signed_mode(app))
        return NULL;
    size_t len;
    const char *body = sb_req_body(req, &len);
    struct sb_err err = { 0 };
    const char *sig = sb_req_header(req, "X-Inngest-Signature");
    const struct sb_signing_key *used =
        sb_sign_verify_any(&app->key, app->has_fallback ? &app->key_fallback : NULL, sig, body, len,
                           sb_now_ms() / 1000, SIGNATURE_SKEW_S, &err);
    if (used)
        return used;
    *refused = true;
    sdk_headers(req);
    sb_reply_error(req, 401, "BAD_SIGNATURE", "%s", err.msg);
    return NULL;
}

/* What the JS SDK reports of a key in introspection: the first 12 hex
 * digits of its hashed form (no prefix), or null. */
static json_t *key_hash12(const struct sb_signing_key *k, bool has)
{
    return has ? json_stringn(k->hashed + k->prefix_len, 12) : json_null();
}

static void introspect(struct sb_req *req)
{
    sysbus_app *app = sb_req_app(req);
    const char *sig = sb_req_header(req, "X-Inngest-Signature");
    struct sb_err err = { 0 };
    bool authed =
        app->dev || (signed_mode(app) && sig &&
                     sb_sign_verify_any(&app->key, app->has_fallback ? &app->key_fallback : NULL,
                                        sig, "", 0, sb_now_ms() / 1000, SIGNATURE_SKEW_S, &err));
    json_t *o =
        json_pack("{s:i, s:b, s:b, s:s, s:s}", "function_count", (int)app->nfns, "has_event_key",
                  app->event_key && *app->event_key, "has_signing_key", app->has_key, "mode",
                  app->dev ? "dev" : "cloud", "schema_version", "2024-05-24");
    if (authed) {
        char *url = sdk_serve_url(app);
        json_object_set_new(o, "authentication_succeeded", json_true());
        json_object_set_new(o, "app_id", json_string(sysbus_app_id(app)));
        json_object_set_new(o, "sdk_language", json_string("c"));
        json_object_set_new(o, "sdk_version", json_string(SYSBUS_VERSION));
        json_object_set_new(o, "framework", json_string("sysbus"));
        json_object_set_new(o, "serve_url", json_string(url));
        json_object_set_new(o, "api_origin", json_string(app->base_url));
        json_object_set_new(o, "signing_key_hash", key_hash12(&app->key, app->has_key));
        json_object_set_new(o, "signing_key_fallback_hash",
                            key_hash12(&app->key_fallback, app->has_fallback));
        free(url);
    } else if (sig) {
        json_object_set_new(o, "authentication_succeeded", json_false());
    }
    sdk_headers(req);
    sb_reply_json(req, 200, o);
}

static void sync_now(struct sb_req *req)
{
    sysbus_app *app = sb_req_app(req);
    char err[400];
    int status;
    sdk_headers(req);
    if (sdk_register_once(app, &status, err, sizeof err) == 0) {
        sb_reply_json(req, 200, json_pack("{s:s}", "message", "Successfully registered"));
        return;
    }
    SB_LOG(SB_WARN, "register_failed", "registration asked by PUT failed: %s", err);
    sb_reply_json(req, status >= 400 ? status : 500,
                  json_pack("{s:s, s:i}", "message", err, "status", status >= 400 ? status : 500));
}

/* use_api: the events and step results come from the server's API. */
static json_t *load_from_api(sysbus_app *app, const json_t *body, char *err, size_t errlen)
{
    const char *run_id = sb_json_str(json_object_get(body, "ctx"), "run_id");
    if (!run_id) {
        snprintf(err, errlen, "use_api without ctx.run_id");
        return NULL;
    }
    char path[200];
    snprintf(path, sizeof path, "/v0/runs/%s/batch", run_id);
    json_t *events = sdk_api_get(app, path, err, errlen);
    snprintf(path, sizeof path, "/v0/runs/%s/actions", run_id);
    json_t *steps = events ? sdk_api_get(app, path, err, errlen) : NULL;
    if (!events || !steps) {
        json_decref(events);
        json_decref(steps);
        return NULL;
    }
    json_t *full = json_deep_copy(body);
    json_object_set_new(full, "events", events);
    json_object_set_new(full, "steps", steps);
    if (json_array_size(events) > 0)
        json_object_set(full, "event", json_array_get(events, 0));
    return full;
}

static void reply_call(const struct sb_signing_key *key, struct sb_req *req, struct sdk_response *r)
{
    sdk_headers(req);
    if (r->no_retry >= 0)
        sb_reply_header(req, "X-Inngest-No-Retry", r->no_retry ? "true" : "false");
    if (r->retry_after_s > 0) {
        char v[24];
        snprintf(v, sizeof v, "%lld", (long long)r->retry_after_s);
        sb_reply_header(req, "Retry-After", v);
    }
    size_t len = 0;
    char *text = sb_json_dumps(r->body ? r->body : json_null(), &len);
    json_decref(r->body);
    if (!text) {
        sb_reply_error(req, 500, "UNSERIALIZABLE", "the function's result is not valid JSON");
        return;
    }
    if (key) {
        char sig[128];
        sb_sign_body(key, text, len, sb_now_ms() / 1000, sig, sizeof sig);
        sb_reply_header(req, "X-Inngest-Signature", sig);
    }
    sb_reply_raw(req, r->status, "application/json", text, len);
}

static void call(struct sb_req *req)
{
    sysbus_app *app = sb_req_app(req);
    const char *probe = sb_req_query(req, "probe");
    bool refused;
    if (probe && strcmp(probe, "trust") == 0) {
        check_signature(app, req, &refused);
        if (!refused) {
            sdk_headers(req);
            sb_reply_raw(req, 200, "application/json", strdup(""), 0);
        }
        return;
    }
    __atomic_add_fetch(&app->inflight, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&app->draining, __ATOMIC_SEQ_CST)) {
        sdk_headers(req);
        sb_reply_header(req, "Retry-After", "1");
        sb_reply_error(req, 503, "DRAINING", "the worker is shutting down; retry elsewhere");
        goto out;
    }
    const struct sb_signing_key *key = check_signature(app, req, &refused);
    if (refused)
        goto out;
    const char *fn_id = sb_req_query(req, "fnId");
    const char *step_id = sb_req_query(req, "stepId");
    struct sysbus_fn *fn = fn_id ? sdk_fn_find(app, fn_id) : NULL;
    if (!fn) {
        sdk_headers(req);
        sb_reply_error(req, fn_id ? 404 : 400, "UNKNOWN_FUNCTION",
                       fn_id ? "this worker has no function '%s'" : "the fnId query is missing%s",
                       fn_id ? fn_id : "");
        goto out;
    }
    size_t len;
    const char *text = sb_req_body(req, &len);
    struct sb_err perr = { 0 };
    /* a call embeds accepted values in the server's envelope: the deeper
     * limit for embedded documents applies */
    json_t *body = sb_json_parse_input(text ? text : "", len, SB_JSON_INTS | SB_JSON_EMBEDDED, &perr);
    if (!json_is_object(body) || !json_is_object(json_object_get(body, "event"))) {
        sdk_headers(req);
        sb_reply_error(req, 400, "BAD_CALL", "%s",
                       body ? "the call body has no event object" : perr.msg);
        json_decref(body);
        goto out;
    }
    bool use_api = false;
    if (sb_json_get_bool(body, "use_api", &use_api) && use_api) {
        char err[400];
        json_t *full = load_from_api(app, body, err, sizeof err);
        json_decref(body);
        if (!full) {
            sdk_headers(req);
            sb_reply_error(req, 500, "USE_API_FAILED", "cannot load the run's state: %s", err);
            goto out;
        }
        body = full;
    }
    struct sdk_response r;
    sdk_execute(app, fn, body, step_id, &r);
    json_decref(body);
    reply_call(key, req, &r);
out:
    __atomic_sub_fetch(&app->inflight, 1, __ATOMIC_SEQ_CST);
}

/* ---- start, drain, stop ---- */

int sysbus_start(sysbus_app *app, char *errbuf, size_t errlen)
{
    if (app->config_error[0]) {
        snprintf(errbuf, errlen, "%s", app->config_error);
        return -1;
    }
    sb_httpc_global_init();
    struct served *s = calloc(1, sizeof *s);
    size_t n = app->nroutes + 3;
    if (!s || !(s->all = calloc(n, sizeof *s->all)))
        abort();
    for (size_t i = 0; i < app->nroutes; i++) {
        s->all[i] = app->routes[i];
        s->all[i].handler = user_route;
    }
    s->all[app->nroutes] = (struct sb_route){ "GET", app->serve_path, introspect, 0, 0 };
    s->all[app->nroutes + 1] = (struct sb_route){ "PUT", app->serve_path, sync_now, 0, 0 };
    s->all[app->nroutes + 2] = (struct sb_route){ "POST", app->serve_path, call, 0, CALL_BODY_MAX };
    s->n = n;
    app->httpd_routes = s;
    struct sb_httpd_config cfg = { .host = app->host,
                                   .port = app->port,
                                   .threads = app->threads,
                                   .body_max = ROUTE_BODY_DEFAULT,
                                   .idle_timeout_s = 120,
                                   .routes = s->all,
                                   .nroutes = n,
                                   .app = app };
    struct sb_err err = { 0 };
    if (sb_httpd_start(&cfg, &app->httpd, &err) != 0) {
        snprintf(errbuf, errlen, "cannot listen on %s:%d: %s", app->host, app->port, err.msg);
        return -1;
    }
    app->bound_port = sb_httpd_port(app->httpd);
    char *url = sdk_serve_url(app);
    SB_LOGK(SB_INFO, "listening",
            ((struct sb_lf[]){ LF_I("port", app->bound_port), LF_S("url", url),
                               LF_S("app_id", sysbus_app_id(app)) }),
            "serving %zu functions at %s (%s mode)", app->nfns, url,
            app->dev ? "development" : "signed");
    free(url);
    if (app->register_at_start && sdk_register_thread_start(app) != 0)
        SB_LOG(SB_ERROR, "register_failed", "cannot start the registration thread");
    return 0;
}

int sysbus_port(const sysbus_app *app)
{
    return app->bound_port;
}

int sysbus_stop(sysbus_app *app)
{
    if (!app->httpd)
        return 0;
    __atomic_store_n(&app->draining, 1, __ATOMIC_SEQ_CST);
    int64_t deadline = sb_mono_ms() + app->drain_grace_ms;
    int64_t left;
    SB_LOGK(SB_INFO, "draining",
            ((struct sb_lf[]){ LF_I("inflight", __atomic_load_n(&app->inflight, __ATOMIC_SEQ_CST)),
                               LF_I("grace_ms", app->drain_grace_ms) }),
            "draining: new calls get 503, calls in flight may finish");
    while ((left = __atomic_load_n(&app->inflight, __ATOMIC_SEQ_CST)) > 0 &&
           sb_mono_ms() < deadline)
        usleep(5000);
    sdk_register_thread_stop(app);
    if (left > 0) { /* stopping the server would wait for them: leave it to exit() */
        SB_LOG(SB_WARN, "drain_timeout", "%lld calls were still running after the drain grace",
               (long long)left);
        return 1;
    }
    sb_httpd_stop(app->httpd);
    app->httpd = NULL;
    struct served *s = app->httpd_routes;
    if (s) {
        free(s->all);
        free(s);
        app->httpd_routes = NULL;
    }
    SB_LOG(SB_INFO, "stopped", "drained; stopped");
    return 0;
}

int sysbus_serve(sysbus_app *app)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* threads started below inherit it */
    signal(SIGPIPE, SIG_IGN);
    char err[400];
    if (sysbus_start(app, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", sysbus_app_id(app)[0] ? sysbus_app_id(app) : "worker", err);
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    SB_LOG(SB_INFO, "signal", "got %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    sysbus_stop(app);
    return 0;
}
