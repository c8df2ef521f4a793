/* app.c - the SDK's app and function definitions: options and environment,
 * functions with their triggers and options, and the registration body
 * built from them. */
#include "sdk_internal.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/json.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sdk_config_error(sysbus_app *app, const char *fmt, ...)
{
    if (app->config_error[0])
        return; /* the first one is the one to fix */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(app->config_error, sizeof app->config_error, fmt, ap);
    va_end(ap);
}

static char *dup_or(const char *a, const char *b)
{
    const char *v = a && *a ? a : b;
    if (!v)
        return NULL;
    char *s = strdup(v);
    if (!s)
        abort();
    return s;
}

/* INNGEST_DEV: "1"/"true" or a URL = dev (a URL is also the server);
 * "0"/"false" or unset = signed. As in the official SDKs (v3 and later),
 * development mode must be asked for: a worker deployed without its key
 * refuses to start instead of serving anyone unsigned. */
static void read_dev(sysbus_app *app, const struct sysbus_options *o, const char **dev_url)
{
    const char *v = sb_env("INNGEST_DEV");
    *dev_url = NULL;
    if (o->dev >= 0) {
        app->dev = o->dev == 1;
    } else if (v && (strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0)) {
        app->dev = true;
        *dev_url = v;
    } else if (v && *v) {
        app->dev = strcmp(v, "0") != 0 && strcasecmp(v, "false") != 0;
    } else {
        app->dev = false;
    }
}

/* INNGEST_SIGNING_KEY (or the option) and INNGEST_SIGNING_KEY_FALLBACK: the
 * fallback is the other key of a rotation, tried when a call's signature
 * does not verify with the key, and as the bearer when the server refuses
 * the key's (401/403), as the official SDKs do. */
static void read_keys(sysbus_app *app, const struct sysbus_options *o)
{
    const char *key = o->signing_key ? o->signing_key : sb_env("INNGEST_SIGNING_KEY");
    const char *fb = sb_env("INNGEST_SIGNING_KEY_FALLBACK");
    struct sb_err err = { 0 };
    if (key && *key) {
        if (sb_signing_key_init(&app->key, key, &err) != 0)
            sdk_config_error(app, "INNGEST_SIGNING_KEY: %s", err.msg);
        else
            app->has_key = true;
    }
    if (fb && *fb) {
        if (sb_signing_key_init(&app->key_fallback, fb, &err) != 0)
            sdk_config_error(app, "INNGEST_SIGNING_KEY_FALLBACK: %s", err.msg);
        else if (!key || !*key)
            sdk_config_error(app, "INNGEST_SIGNING_KEY_FALLBACK is set but INNGEST_SIGNING_KEY "
                                  "is not (the fallback is the other key of a rotation)");
        else
            app->has_fallback = true;
    }
}

static int64_t env_int(const char *name, int64_t dflt, int64_t lo, int64_t hi, sysbus_app *app)
{
    const char *v = sb_env(name);
    if (!v || !*v)
        return dflt;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*end || n < lo || n > hi) {
        sdk_config_error(app, "%s must be a number from %lld to %lld (got '%s')", name,
                         (long long)lo, (long long)hi, v);
        return dflt;
    }
    return n;
}

sysbus_app *sysbus_app_new(const struct sysbus_options *opts)
{
    static const struct sysbus_options none = { .dev = -1,
                                                .drain_grace_ms = -1,
                                                .register_at_start = -1 };
    const struct sysbus_options *o = opts ? opts : &none;
    sysbus_app *app = calloc(1, sizeof *app);
    if (!app)
        abort();
    pthread_mutex_init(&app->lock, NULL);
    pthread_cond_init(&app->cond, NULL);
    app->fns_tail = &app->fns;

    read_keys(app, o);
    const char *dev_url;
    read_dev(app, o, &dev_url);
    app->app_id = dup_or(o->app_id, sb_env("INNGEST_APP_ID"));
    if (!app->app_id)
        sdk_config_error(app, "no app id: set INNGEST_APP_ID or sysbus_options.app_id");
    app->base_url =
        dup_or(o->base_url, sb_env("INNGEST_BASE_URL") ? sb_env("INNGEST_BASE_URL") : dev_url);
    if (!app->base_url)
        app->base_url = dup_or("http://127.0.0.1:8288", NULL);
    size_t bl = strlen(app->base_url);
    while (bl > 0 && app->base_url[bl - 1] == '/')
        app->base_url[--bl] = '\0';
    app->event_key = dup_or(o->event_key, sb_env("INNGEST_EVENT_KEY"));
    const char *origin = sb_env("INNGEST_SERVE_ORIGIN");
    app->serve_origin = dup_or(o->serve_origin, origin ? origin : sb_env("INNGEST_SERVE_HOST"));
    app->serve_path = dup_or(o->serve_path, sb_env("INNGEST_SERVE_PATH"));
    if (!app->serve_path)
        app->serve_path = dup_or("/api/inngest", NULL);
    if (app->serve_path[0] != '/')
        sdk_config_error(app, "the serve path must start with '/' (got '%s')", app->serve_path);
    app->host = dup_or(o->host, sb_env("HOST"));
    if (!app->host)
        app->host = dup_or("0.0.0.0", NULL);
    app->app_version = dup_or(o->app_version, NULL);
    app->port = o->port ? o->port : (int)env_int("PORT", 3111, 0, 65535, app);
    if (app->port < 0)
        app->port = 0; /* any free port */
    app->threads = o->threads > 0 ? o->threads : (int)env_int("SYSBUS_THREADS", 32, 1, 1024, app);
    if (o->drain_grace_ms >= 0) {
        app->drain_grace_ms = o->drain_grace_ms;
    } else {
        const char *g = sb_env("SYSBUS_DRAIN_GRACE");
        app->drain_grace_ms = 25000;
        if (g && *g && sb_duration_parse(g, 1000, &app->drain_grace_ms) != 0)
            sdk_config_error(app, "SYSBUS_DRAIN_GRACE must be a duration like 25s (got '%s')", g);
    }
    app->register_at_start = o->register_at_start != 0;
    if (!app->dev && !app->has_key)
        sdk_config_error(app, "no signing key: set INNGEST_SIGNING_KEY (a worker runs signed "
                              "unless INNGEST_DEV=1 asks for development mode, where nothing "
                              "is authenticated)");
    return app;
}

const char *sysbus_config_error(const sysbus_app *app)
{
    return app->config_error[0] ? app->config_error : NULL;
}

const char *sysbus_app_id(const sysbus_app *app)
{
    return app->app_id ? app->app_id : "";
}

void sysbus_app_free(sysbus_app *app)
{
    if (!app || app->httpd)
        return; /* still serving (a drain that timed out): its threads use it */
    for (struct sysbus_fn *f = app->fns, *next; f; f = next) {
        next = f->next;
        free(f->id);
        free(f->full_id);
        free(f->name);
        json_decref(f->triggers);
        json_decref(f->options);
        json_decref(f->cancel);
        free(f);
    }
    for (size_t i = 0; i < app->nroutes; i++) {
        free((char *)app->routes[i].method);
        free((char *)app->routes[i].pattern);
    }
    free(app->routes);
    free(app->route_user);
    free(app->app_id);
    free(app->base_url);
    free(app->event_key);
    free(app->serve_origin);
    free(app->serve_path);
    free(app->host);
    free(app->app_version);
    pthread_mutex_destroy(&app->lock);
    pthread_cond_destroy(&app->cond);
    free(app);
}

/* ---- functions ---- */

static bool valid_id(const char *id)
{
    if (!id || !*id || strlen(id) > 128)
        return false;
    for (const char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
    return true;
}

sysbus_fn *sysbus_fn_new(sysbus_app *app, const char *id, sysbus_handler handler, void *user)
{
    struct sysbus_fn *f = calloc(1, sizeof *f);
    if (!f)
        abort();
    f->app = app;
    f->id = dup_or(id, "");
    f->handler = handler;
    f->user = user;
    f->retries = SDK_DEFAULT_RETRIES;
    f->triggers = json_array();
    f->options = json_object();
    f->cancel = json_array();
    size_t n = strlen(sysbus_app_id(app)) + strlen(f->id) + 2;
    f->full_id = malloc(n);
    if (!f->full_id || !f->triggers || !f->options || !f->cancel)
        abort();
    snprintf(f->full_id, n, "%s-%s", sysbus_app_id(app), f->id);
    if (!valid_id(id))
        sdk_config_error(app, "function id '%s' must be 1-128 letters, digits, '-' or '_'",
                         id ? id : "(null)");
    if (!handler)
        sdk_config_error(app, "function '%s' has no handler", f->id);
    if (sdk_fn_find(app, f->full_id))
        sdk_config_error(app, "two functions have the id '%s'", f->id);
    *app->fns_tail = f;
    app->fns_tail = &f->next;
    app->nfns++;
    return f;
}

void sysbus_fn_name(sysbus_fn *f, const char *name)
{
    free(f->name);
    f->name = dup_or(name, NULL);
}

void sysbus_fn_trigger_event(sysbus_fn *f, const char *event, const char *if_expr)
{
    if (!event || !*event) {
        sdk_config_error(f->app, "function '%s': an event trigger needs an event name", f->id);
        return;
    }
    json_t *t = json_pack("{s:s}", "event", event);
    if (if_expr && *if_expr)
        json_object_set_new(t, "expression", json_string(if_expr));
    json_array_append_new(f->triggers, t);
}

void sysbus_fn_trigger_cron(sysbus_fn *f, const char *cron)
{
    if (!cron || !*cron) {
        sdk_config_error(f->app, "function '%s': a cron trigger needs a schedule", f->id);
        return;
    }
    json_array_append_new(f->triggers, json_pack("{s:s}", "cron", cron));
}

void sysbus_fn_retries(sysbus_fn *f, int retries)
{
    if (retries < 0 || retries > SDK_MAX_RETRIES) {
        sdk_config_error(f->app, "function '%s': retries must be 0..%d (got %d)", f->id,
                         SDK_MAX_RETRIES, retries);
        return;
    }
    f->retries = retries;
}

void sysbus_fn_option(sysbus_fn *f, const char *name, json_t *value)
{
    static const char *const known[] = { "concurrency", "throttle",    "rateLimit",
                                         "debounce",    "batchEvents", "idempotency",
                                         "priority",    "timeouts",    "singleton" };
    bool ok = false;
    for (size_t i = 0; name && i < sizeof known / sizeof *known; i++)
        ok = ok || strcmp(name, known[i]) == 0;
    if (!ok || !value) {
        sdk_config_error(f->app, "function '%s': unknown option '%s'", f->id,
                         name ? name : "(null)");
        json_decref(value);
        return;
    }
    json_object_set_new(f->options, name, value);
}

void sysbus_fn_cancel_on(sysbus_fn *f, const char *event, const char *if_expr, const char *timeout)
{
    if (!event || !*event) {
        sdk_config_error(f->app, "function '%s': cancel_on needs an event name", f->id);
        return;
    }
    json_t *c = json_pack("{s:s}", "event", event);
    if (if_expr && *if_expr)
        json_object_set_new(c, "if", json_string(if_expr));
    if (timeout && *timeout)
        json_object_set_new(c, "timeout", json_string(timeout));
    json_array_append_new(f->cancel, c);
}

struct sysbus_fn *sdk_fn_find(const sysbus_app *app, const char *fn_id)
{
    for (struct sysbus_fn *f = app->fns; f; f = f->next)
        if (strcmp(f->full_id, fn_id) == 0 || strcmp(f->id, fn_id) == 0)
            return f;
    return NULL;
}

/* ---- registration body ---- */

char *sdk_serve_url(const sysbus_app *app)
{
    char origin[300];
    if (app->serve_origin) {
        const char *o = app->serve_origin;
        bool scheme = strncmp(o, "http://", 7) == 0 || strncmp(o, "https://", 8) == 0;
        snprintf(origin, sizeof origin, "%s%s", scheme ? "" : "http://", o);
        size_t n = strlen(origin);
        while (n > 0 && origin[n - 1] == '/')
            origin[--n] = '\0';
    } else {
        snprintf(origin, sizeof origin, "http://127.0.0.1:%d",
                 app->bound_port ? app->bound_port : app->port);
    }
    size_t n = strlen(origin) + strlen(app->serve_path) + 1;
    char *url = malloc(n);
    if (!url)
        abort();
    snprintf(url, n, "%s%s", origin, app->serve_path);
    return url;
}

json_t *sdk_register_body(const sysbus_app *app)
{
    char *url = sdk_serve_url(app);
    json_t *fns = json_array();
    for (struct sysbus_fn *f = app->fns; f; f = f->next) {
        char *step_url = malloc(strlen(url) + strlen(f->full_id) + 32);
        if (!step_url)
            abort();
        sprintf(step_url, "%s?fnId=%s&stepId=step", url, f->full_id);
        json_t *fn =
            json_pack("{s:s, s:s, s:O, s:{s:{s:s, s:s, s:{s:s, s:s}, s:{s:i}}}}", "id", f->full_id,
                      "name", f->name ? f->name : f->id, "triggers", f->triggers, "steps", "step",
                      "id", "step", "name", "step", "runtime", "type", "http", "url", step_url,
                      "retries", "attempts", f->retries);
        free(step_url);
        json_object_update(fn, f->options);
        if (json_array_size(f->cancel))
            json_object_set(fn, "cancel", f->cancel);
        json_array_append_new(fns, fn);
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}, s:o}", "url", url,
                             "deployType", "ping", "v", "0.1", "framework", "sysbus", "appName",
                             sysbus_app_id(app), "sdk", SDK_NAME ":v" SYSBUS_VERSION,
                             "capabilities", "trust_probe", "v1", "functions", fns);
    if (app->app_version)
        json_object_set_new(body, "appVersion", json_string(app->app_version));
    free(url);
    return body;
}
