/* registry.c - function snapshots and trigger matching (see registry.h).
 * Writers (syncs) are serialized by r->lock; readers only take the lock for
 * the instant of acquiring a snapshot reference. */
#include "registry.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/json.h"
#include "cron/cron.h"
#include "event.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RETRIES 20
#define DEFAULT_RETRIES 4

struct sbd_registry {
    pthread_mutex_t lock;
    struct sbd_reg_snap *cur;
};

void sbd_fn_ref(struct sbd_fn *f)
{
    __atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
}

void sbd_fn_unref(struct sbd_fn *f)
{
    if (!f || __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < f->ntriggers; i++) {
        free(f->triggers[i].event);
        free(f->triggers[i].expression);
        sbd_expr_free(f->triggers[i].expr);
        free(f->triggers[i].cron);
    }
    free(f->triggers);
    for (size_t i = 0; i < f->ncancels; i++) {
        free(f->cancels[i].event);
        free(f->cancels[i].expression);
        sbd_expr_free(f->cancels[i].expr);
    }
    free(f->cancels);
    sbd_flow_config_free(&f->flow);
    free(f->id);
    free(f->app_id);
    free(f->name);
    free(f->url_base);
    json_decref(f->config);
    free(f);
}

static struct sbd_reg_snap *snap_new(size_t n)
{
    struct sbd_reg_snap *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->fns = calloc(n ? n : 1, sizeof *s->fns);
    if (!s->fns) {
        free(s);
        return NULL;
    }
    s->refs = 1;
    return s;
}

void sbd_snap_release(struct sbd_reg_snap *s)
{
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < s->n; i++)
        sbd_fn_unref(s->fns[i]);
    free(s->fns);
    free(s);
}

int sbd_registry_new(struct sbd_registry **out)
{
    struct sbd_registry *r = calloc(1, sizeof *r);
    if (!r || !(r->cur = snap_new(0))) {
        free(r);
        return SB_ENOMEM;
    }
    pthread_mutex_init(&r->lock, NULL);
    *out = r;
    return 0;
}

void sbd_registry_free(struct sbd_registry *r)
{
    if (!r)
        return;
    sbd_snap_release(r->cur);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

struct sbd_reg_snap *sbd_registry_acquire(struct sbd_registry *r)
{
    pthread_mutex_lock(&r->lock);
    struct sbd_reg_snap *s = r->cur;
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&r->lock);
    return s;
}

static int fn_cmp(const void *a, const void *b)
{
    return strcmp((*(struct sbd_fn *const *)a)->id, (*(struct sbd_fn *const *)b)->id);
}

const struct sbd_fn *sbd_snap_find(const struct sbd_reg_snap *s, const char *id)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->fns[mid]->id, id);
        if (c == 0)
            return s->fns[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool trigger_matches(const struct sbd_trigger *t, const char *name)
{
    if (t->kind != TRIGGER_EVENT)
        return false;
    if (t->wildcard)
        return strncmp(name, t->event, strlen(t->event)) == 0;
    return strcmp(name, t->event) == 0;
}

void sbd_snap_match(const struct sbd_reg_snap *s, struct sbd_event *ev,
                    void (*cb)(void *ctx, const struct sbd_fn *f), void *ctx)
{
    const char *name = ev->name;
    for (size_t i = 0; i < s->n; i++) {
        const struct sbd_fn *f = s->fns[i];
        if (f->removed)
            continue;
        for (size_t j = 0; j < f->ntriggers; j++) {
            const struct sbd_trigger *t = &f->triggers[j];
            if (!trigger_matches(t, name))
                continue;
            if (t->expr) { /* the event parsed on first need, once (event.h) */
                struct sbd_expr_var var = { "event", sbd_event_json(ev) };
                if (!sbd_expr_test(t->expr, &var, 1))
                    continue;
            }
            cb(ctx, f);
            break;
        }
    }
}

void sbd_snap_cancel_rules(const struct sbd_reg_snap *s, const char *name,
                           void (*cb)(void *ctx, const struct sbd_fn *f,
                                      const struct sbd_cancel_rule *c),
                           void *ctx)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct sbd_fn *f = s->fns[i];
        for (size_t j = 0; j < f->ncancels; j++)
            if (strcmp(f->cancels[j].event, name) == 0)
                cb(ctx, f, &f->cancels[j]);
    }
}

/* Publishes next (taking ownership) and drops the registry's old reference. */
static void publish(struct sbd_registry *r, struct sbd_reg_snap *next)
{
    qsort(next->fns, next->n, sizeof *next->fns, fn_cmp);
    struct sbd_reg_snap *old = r->cur;
    r->cur = next;
    sbd_snap_release(old);
}

/* A removed copy of f (shares nothing mutable with f). f's config was
 * accepted once, maybe only as a stored function: it is not checked again. */
static struct sbd_fn *fn_removed_copy(const struct sbd_fn *f)
{
    struct sb_err err;
    struct sbd_fn *c = sbd_fn_parse_stored(f->config, f->app_id, &err);
    if (c)
        c->removed = true;
    return c;
}

int sbd_registry_replace_app(struct sbd_registry *r, const char *app_id, struct sbd_fn **fns,
                             size_t n)
{
    pthread_mutex_lock(&r->lock);
    struct sbd_reg_snap *cur = r->cur;
    struct sbd_reg_snap *next = snap_new(cur->n + n);
    if (!next) {
        pthread_mutex_unlock(&r->lock);
        return SB_ENOMEM;
    }
    for (size_t i = 0; i < cur->n; i++) {
        struct sbd_fn *f = cur->fns[i];
        bool replaced = false;
        for (size_t j = 0; j < n && !replaced; j++)
            replaced = strcmp(fns[j]->id, f->id) == 0;
        if (replaced)
            continue;
        if (strcmp(f->app_id, app_id) == 0 && !f->removed) {
            struct sbd_fn *c = fn_removed_copy(f);
            if (c)
                next->fns[next->n++] = c;
            continue;
        }
        sbd_fn_ref(f);
        next->fns[next->n++] = f;
    }
    for (size_t j = 0; j < n; j++) {
        sbd_fn_ref(fns[j]);
        next->fns[next->n++] = fns[j];
    }
    publish(r, next);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

int sbd_registry_remove_app(struct sbd_registry *r, const char *app_id)
{
    return sbd_registry_replace_app(r, app_id, NULL, 0);
}

int sbd_registry_load_fn(struct sbd_registry *r, struct sbd_fn *f)
{
    pthread_mutex_lock(&r->lock);
    struct sbd_reg_snap *cur = r->cur;
    struct sbd_fn **nf = realloc(cur->fns, (cur->n + 1) * sizeof *nf);
    if (!nf) {
        pthread_mutex_unlock(&r->lock);
        return SB_ENOMEM;
    }
    cur->fns = nf;
    cur->fns[cur->n++] = f;
    qsort(cur->fns, cur->n, sizeof *cur->fns, fn_cmp);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

/* ---- parsing a function of a register body ---- */

/* URL without its stepId parameter, ending in '?' or '&' so that
 * "stepId=<x>" can be appended. */
static char *url_base_of(const char *url)
{
    struct sb_buf b = SB_BUF_INIT(8192);
    const char *q = strchr(url, '?');
    if (!q) {
        sb_buf_puts(&b, url);
        sb_buf_putc(&b, '?');
        return sb_buf_steal(&b, NULL);
    }
    sb_buf_append(&b, url, (size_t)(q - url) + 1);
    const char *p = q + 1;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        if (n > 0 && !(n >= 7 && strncmp(p, "stepId=", 7) == 0) && strncmp(p, "stepId", n) != 0) {
            sb_buf_append(&b, p, n);
            sb_buf_putc(&b, '&');
        }
        p += n + (amp ? 1 : 0);
    }
    return sb_buf_steal(&b, NULL);
}

static int parse_triggers(struct sbd_fn *f, const json_t *arr, const char *fid, unsigned xf,
                          struct sb_err *err)
{
    if (!json_is_array(arr))
        return sb_err_set(err, SB_EINVAL, "function '%s': triggers must be an array", fid);
    size_t n = json_array_size(arr);
    if (n == 0)
        return sb_err_set(err, SB_EINVAL, "function '%s': at least one trigger is required", fid);
    f->triggers = calloc(n, sizeof *f->triggers);
    if (!f->triggers)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_array_get(arr, i);
        struct sbd_trigger *tr = &f->triggers[i];
        const char *ev = sb_json_str(t, "event"), *cron = sb_json_str(t, "cron");
        struct sb_err nerr = { 0 };
        if ((ev && *ev &&
             sb_json_name(json_object_get(t, "event"), "'event'", SB_MAX_ID, &nerr) != 0) ||
            (cron && *cron &&
             sb_json_name(json_object_get(t, "cron"), "'cron'", SB_MAX_ID, &nerr) != 0))
            return sb_err_set(err, SB_EINVAL, "function '%s': trigger %zu: %s", fid, i, nerr.msg);
        json_t *expr = json_object_get(t, "expression");
        f->ntriggers++;
        if (ev && *ev) {
            tr->kind = TRIGGER_EVENT;
            size_t len = strlen(ev);
            tr->wildcard = len >= 1 && ev[len - 1] == '*';
            tr->event = strndup(ev, tr->wildcard ? len - 1 : len);
        } else if (cron && *cron) {
            tr->kind = TRIGGER_CRON;
            tr->cron = strdup(cron);
            struct sb_err cerr = { 0 };
            struct sbd_cron *c = sbd_cron_parse(cron, &cerr);
            if (!c)
                return sb_err_set(err, SB_EINVAL, "function '%s': trigger %zu: %s", fid, i,
                                  cerr.msg);
            sbd_cron_free(c);
            const char *jitter = sb_json_str(t, "jitter");
            if (jitter && *jitter && sb_duration_parse(jitter, 0, &tr->jitter_ms) != 0)
                return sb_err_set(err, SB_EINVAL,
                                  "function '%s': trigger %zu: jitter must be a duration", fid, i);
        } else {
            return sb_err_set(err, SB_EINVAL,
                              "function '%s': trigger %zu needs a non-empty 'event' or 'cron'", fid,
                              i);
        }
        if (expr && !json_is_null(expr)) {
            if (!json_is_string(expr))
                return sb_err_set(err, SB_EINVAL,
                                  "function '%s': trigger %zu: expression must be a string", fid,
                                  i);
            if (json_string_length(expr) > 0) {
                struct sb_err xerr = { 0 };
                tr->expression = strdup(json_string_value(expr));
                tr->expr = sbd_expr_compile_as(json_string_value(expr),
                                               SBD_EXPR_EVENT | SBD_EXPR_COND | xf, &xerr);
                if (!tr->expr)
                    return sb_err_set(err, SB_EINVAL,
                                      "function '%s': trigger %zu 'if': %s in '%.200s'", fid, i,
                                      xerr.msg, json_string_value(expr));
            }
        }
    }
    return 0;
}

static int parse_cancels(struct sbd_fn *f, const json_t *arr, const char *fid, unsigned xf,
                         struct sb_err *err)
{
    if (!arr || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return sb_err_set(err, SB_EINVAL, "function '%s': cancel must be an array", fid);
    size_t n = json_array_size(arr);
    if (n == 0)
        return 0;
    f->cancels = calloc(n, sizeof *f->cancels);
    if (!f->cancels)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(arr, i);
        struct sbd_cancel_rule *cr = &f->cancels[i];
        f->ncancels++;
        const char *ev = sb_json_str(c, "event");
        if (!ev || !*ev)
            return sb_err_set(err, SB_EINVAL, "function '%s': cancel %zu needs an 'event'", fid, i);
        struct sb_err nerr = { 0 };
        if (sb_json_name(json_object_get(c, "event"), "'event'", SB_MAX_ID, &nerr) != 0)
            return sb_err_set(err, SB_EINVAL, "function '%s': cancel %zu: %s", fid, i, nerr.msg);
        cr->event = strdup(ev);
        const char *expr = sb_json_str(c, "if");
        if (expr && *expr) {
            struct sb_err xerr = { 0 };
            cr->expression = strdup(expr);
            /* event: the run's trigger; async: the event that may cancel it */
            if (!(cr->expr = sbd_expr_compile_as(
                      expr, SBD_EXPR_EVENT | SBD_EXPR_ASYNC | SBD_EXPR_COND | xf, &xerr)))
                return sb_err_set(err, SB_EINVAL,
                                  "function '%s': cancelOn %zu 'if': %s in '%.200s'", fid, i,
                                  xerr.msg, expr);
        }
        const char *timeout = sb_json_str(c, "timeout");
        if (timeout && *timeout && sb_duration_parse(timeout, 0, &cr->timeout_ms) != 0)
            return sb_err_set(
                err, SB_EINVAL,
                "function '%s': cancel %zu: timeout must be a duration such as \"1h\"", fid, i);
        if (!cr->event || (expr && *expr && !cr->expression))
            return sb_err_set(err, SB_ENOMEM, "out of memory");
    }
    return 0;
}

/* xf: 0, or SBD_EXPR_UNCHECKED for a stored function. */
static struct sbd_fn *fn_parse(const json_t *obj, const char *app_id, unsigned xf,
                               struct sb_err *err)
{
    if (!json_is_object(obj)) {
        sb_err_set(err, SB_EINVAL, "each function must be an object");
        return NULL;
    }
    struct sb_err nerr = { 0 };
    json_t *idv = json_object_get(obj, "id");
    if (sb_json_name(idv, "its 'id'", SB_MAX_ID, &nerr) != 0) {
        sb_err_set(err, SB_EINVAL, "a function has no valid 'id': %s",
                   idv ? nerr.msg : "it is missing");
        return NULL;
    }
    const char *id = json_string_value(idv);
    json_t *namev = json_object_get(obj, "name");
    if (json_is_string(namev) && json_string_length(namev) == 0)
        namev = NULL;
    if (sb_json_name(namev, "'name'", SB_MAX_ID, &nerr) == SB_EINVAL) {
        sb_err_set(err, SB_EINVAL, "function '%s': %s", id, nerr.msg);
        return NULL;
    }
    struct sbd_fn *f = calloc(1, sizeof *f);
    if (!f) {
        sb_err_set(err, SB_ENOMEM, "out of memory");
        return NULL;
    }
    f->refs = 1;
    f->id = strdup(id);
    f->app_id = strdup(app_id);
    const char *name = sb_json_str(obj, "name");
    f->name = strdup(name && *name ? name : id);
    f->config = json_deep_copy(obj);
    f->retries = DEFAULT_RETRIES;
    if (!f->id || !f->app_id || !f->name || !f->config) {
        sb_err_set(err, SB_ENOMEM, "out of memory");
        goto fail;
    }
    if (parse_triggers(f, json_object_get(obj, "triggers"), id, xf, err) ||
        parse_cancels(f, json_object_get(obj, "cancel"), id, xf, err) ||
        sbd_flow_config_parse(&f->flow, obj, id, xf, err))
        goto fail;
    json_t *step = json_object_get(json_object_get(obj, "steps"), "step");
    if (!step) {
        /* SDKs always send steps.step; take the first step of any name */
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(obj, "steps"), k, v)
        {
            step = v;
            break;
        }
    }
    const char *url = sb_json_str(json_object_get(step, "runtime"), "url");
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        sb_name_check(url, strlen(url), "url", SB_MAX_URL, NULL) != 0) {
        sb_err_set(err, SB_EINVAL,
                   "function '%s': steps.step.runtime.url must be an http(s) URL of at most %d "
                   "bytes",
                   id, SB_MAX_URL);
        goto fail;
    }
    f->url_base = url_base_of(url);
    json_t *retries = json_object_get(json_object_get(step, "retries"), "attempts");
    if (retries && !json_is_null(retries)) {
        int64_t n;
        if (!sb_json_as_int(retries, &n) || n < 0 || n > MAX_RETRIES) {
            sb_err_set(err, SB_EINVAL, "function '%s': retries.attempts must be an integer 0..%d",
                       id, MAX_RETRIES);
            goto fail;
        }
        f->retries = (int)n;
    }
    if (!f->url_base) {
        sb_err_set(err, SB_ENOMEM, "out of memory");
        goto fail;
    }
    return f;
fail:
    sbd_fn_unref(f);
    return NULL;
}

struct sbd_fn *sbd_fn_parse(const json_t *obj, const char *app_id, struct sb_err *err)
{
    return fn_parse(obj, app_id, 0, err);
}

struct sbd_fn *sbd_fn_parse_stored(const json_t *obj, const char *app_id, struct sb_err *err)
{
    return fn_parse(obj, app_id, SBD_EXPR_UNCHECKED, err);
}
