/* views.c - the REST views' JSON, built from the store's records (see
 * views.h). The shapes are the API's contract (docs/sysbusd.md, the sysbus
 * CLI's envelope schema): keys, ISO times, nulls and the note for values
 * nested too deeply to embed stay as they are; tests/unit/server/test_views.c
 * checks them byte for byte. A list collects every row before it is
 * returned: a read that fails part way gives NULL, never a short page. */
#include "views.h"
#include "common/clock.h"
#include "common/json.h"

#include <string.h>

/* ---- values ---- */

static json_t *iso_or_null(int64_t ms)
{
    if (ms == SBD_STORE_NO_TIME)
        return json_null();
    char buf[40];
    sb_time_format_iso(ms, buf, sizeof buf);
    return json_string(buf);
}

/* Stored JSON text as JSON (its text when it does not parse); null for
 * none. */
static json_t *stored_json(const char *t)
{
    if (!t)
        return json_null();
    size_t len = strlen(t);
    /* a value stored before the JSON envelope existed may be nested too
     * deeply to embed in a page: it is shown as a note, and the page works */
    if (sb_json_check_depth(t, len, SB_JSON_MAX_DEPTH_EMBEDDED, NULL) != 0)
        return json_pack("{s:s}", "sysbus_note", "this value is nested too deeply to show");
    json_t *v = sb_json_parse(t, len, NULL);
    return v ? v : json_string(t);
}

static json_t *text_or_null(const char *t)
{
    return t ? json_string(t) : json_null();
}

/* Appends o to arr: 0, or SB_ENOMEM (o released) when either is missing. */
static int append(json_t *arr, json_t *o)
{
    return o && json_array_append_new(arr, o) == 0 ? 0 : SB_ENOMEM;
}

/* The end of a list: arr when the read (rc) succeeded, else NULL with err
 * (arr released). */
static json_t *list_done(json_t *arr, int rc, struct sb_err *err)
{
    if (rc == SB_ENOMEM)
        sb_err_set(err, SB_ENOMEM, "out of memory reading a stored row");
    if (rc == 0)
        return arr;
    json_decref(arr);
    return NULL;
}

/* The end of a one-row view: o when the read (rc) succeeded, else NULL. */
static json_t *one_done(json_t *o, int rc, struct sb_err *err)
{
    if (rc == 0 && !o)
        rc = sb_err_set(err, SB_ENOMEM, "out of memory");
    else if (rc == SB_ENOMEM)
        sb_err_set(err, SB_ENOMEM, "out of memory reading a stored row");
    if (rc == 0)
        return o;
    json_decref(o);
    return NULL;
}

/* ---- runs ---- */

static json_t *run_json(const struct sbd_run_info *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "run_id", text_or_null(r->id));
    json_object_set_new(o, "function_id", text_or_null(r->function_id));
    json_object_set_new(o, "app_id", text_or_null(r->app_id));
    json_object_set_new(o, "event_id", text_or_null(r->event_id));
    json_object_set_new(o, "status", json_string(run_status_name(r->status)));
    json_object_set_new(o, "created_at", iso_or_null(r->created_at));
    json_object_set_new(o, "started_at", iso_or_null(r->started_at));
    json_object_set_new(o, "updated_at", iso_or_null(r->updated_at));
    json_object_set_new(o, "ended_at", iso_or_null(r->ended_at));
    json_object_set_new(o, "output", stored_json(r->output));
    json_object_set_new(o, "error", stored_json(r->error));
    return o;
}

static const char *item_kind(int flags)
{
    return (flags & QF_SLEEP)      ? "sleep"
           : (flags & QF_WAIT)     ? "wait"
           : (flags & QF_INVOKE)   ? "invoke"
           : (flags & QF_DEADLINE) ? "deadline"
                                   : "call";
}

static int queue_item(void *ctx, const struct sbd_qitem_rec *q, const struct sbd_wait_rec *w)
{
    json_t *o = json_object();
    json_object_set_new(o, "step_id", text_or_null(q->step_id));
    json_object_set_new(o, "kind", json_string(item_kind(q->flags)));
    if (q->flags & QF_INVOKE)
        json_object_set_new(o, "invoked_run_id", text_or_null(w->child_run_id));
    if (q->flags & QF_WAIT) {
        json_object_set_new(o, "waiting_for", text_or_null(w->event_name));
        json_object_set_new(o, "if", text_or_null(w->expression));
    }
    json_object_set_new(o, "attempt", json_integer(q->attempt));
    json_object_set_new(o, "due_at", iso_or_null(q->due_at));
    json_object_set_new(o, "due_at_ms",
                        json_integer(q->due_at == SBD_STORE_NO_TIME ? 0 : q->due_at));
    json_object_set_new(o, "transport_failures", json_integer(q->transport_failures));
    json_object_set_new(o, "transport_failing_since", iso_or_null(q->transport_since));
    json_object_set_new(o, "last_error", stored_json(q->last_error));
    return append(ctx, o);
}

struct one_run {
    json_t *o;
    int status;
};

static int one_run(void *ctx, const struct sbd_run_info *r)
{
    struct one_run *one = ctx;
    one->status = r->status;
    one->o = run_json(r);
    return one->o ? 0 : SB_ENOMEM;
}

json_t *api_view_run(struct sbd_store *st, const char *run_id, int *status, struct sb_err *err)
{
    struct one_run one = { NULL, -1 };
    int rc = sbd_store_run_get(st, run_id, one_run, &one, err);
    json_t *o = one_done(one.o, rc, err);
    if (!o)
        return NULL;
    if (status)
        *status = one.status;
    if (one.status != RUN_RUNNING)
        return o;
    /* a running run shows what it is waiting for */
    json_t *queue = json_array();
    if (!queue)
        rc = SB_ENOMEM;
    else
        rc = sbd_store_run_queue(st, run_id, queue_item, queue, err);
    if (!(queue = list_done(queue, rc, err))) {
        json_decref(o);
        return NULL;
    }
    json_object_set_new(o, "queue", queue);
    return o;
}

struct runs_ctx {
    json_t *arr;
    size_t running;
};

static int list_run(void *ctx, const struct sbd_run_info *r)
{
    struct runs_ctx *rc = ctx;
    rc->running += r->status == RUN_RUNNING;
    return append(rc->arr, run_json(r));
}

json_t *api_view_runs(struct sbd_store *st, const struct sbd_run_filter *f, size_t *running,
                      struct sb_err *err)
{
    struct runs_ctx c = { json_array(), 0 };
    if (!c.arr)
        return list_done(NULL, SB_ENOMEM, err);
    json_t *arr = list_done(c.arr, sbd_store_runs_list(st, f, list_run, &c, err), err);
    if (arr && running)
        *running = c.running;
    return arr;
}

/* ---- steps ---- */

static int step_item(void *ctx, const struct sbd_step_rec *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", text_or_null(s->hash));
    json_object_set_new(o, "name", text_or_null(s->name));
    json_object_set_new(o, "op", text_or_null(s->op));
    json_object_set_new(o, "status", json_string(step_status_name(s->status)));
    json_object_set_new(o, "attempts", json_integer(s->attempts));
    /* a step.run result is memoized as {"data": X} (output X) or
     * {"error": E}; sleeps and waits memoize the value itself (null, or
     * the matching event, which has a "data" key of its own) */
    json_t *memo = stored_json(s->output);
    bool raw = s->op && (strcmp(s->op, "WaitForEvent") == 0 || strcmp(s->op, "Sleep") == 0);
    json_t *data = raw ? NULL : json_object_get(memo, "data");
    json_t *merr = raw ? NULL : json_object_get(memo, "error");
    json_object_set(o, "output", data ? data : (merr ? json_null() : memo));
    bool ok = s->status == STEP_COMPLETED && !merr;
    json_object_set_new(o, "error",
                        ok     ? json_null()
                        : merr ? json_incref(merr)
                               : stored_json(s->error));
    json_decref(memo);
    json_object_set_new(o, "started_at", iso_or_null(s->started_at));
    json_object_set_new(o, "ended_at", iso_or_null(s->ended_at));
    bool timed = s->started_at != SBD_STORE_NO_TIME && s->ended_at != SBD_STORE_NO_TIME;
    json_object_set_new(o, "duration_ms",
                        timed ? json_integer(s->ended_at - s->started_at) : json_null());
    return append(ctx, o);
}

json_t *api_view_run_steps(struct sbd_store *st, const char *run_id, struct sb_err *err)
{
    json_t *arr = json_array();
    if (!arr)
        return list_done(NULL, SB_ENOMEM, err);
    return list_done(arr, sbd_store_run_steps(st, run_id, step_item, arr, err), err);
}

/* ---- events ---- */

static json_t *event_json(const struct sbd_ev_rec *e)
{
    /* body is the normalized event; add the internal id and receive time */
    json_t *o = stored_json(e->body);
    if (!json_is_object(o)) {
        json_decref(o);
        o = json_object();
    }
    json_object_set_new(o, "internal_id", json_string(e->id));
    json_object_set_new(o, "received_at", iso_or_null(e->received_at));
    return o;
}

static int one_event(void *ctx, const struct sbd_ev_rec *e)
{
    json_t **out = ctx;
    *out = event_json(e);
    return *out ? 0 : SB_ENOMEM;
}

json_t *api_view_event(struct sbd_store *st, const char *event_id, struct sb_err *err)
{
    json_t *o = NULL;
    int rc = sbd_store_event_get(st, event_id, one_event, &o, err);
    return one_done(o, rc, err);
}

static int event_item(void *ctx, const struct sbd_ev_rec *e)
{
    return append(ctx, event_json(e));
}

json_t *api_view_events(struct sbd_store *st, const struct sbd_event_filter *f, struct sb_err *err)
{
    json_t *arr = json_array();
    if (!arr)
        return list_done(NULL, SB_ENOMEM, err);
    return list_done(arr, sbd_store_events_list(st, f, event_item, arr, err), err);
}

/* ---- apps, functions, cancellations ---- */

static int app_item(void *ctx, const struct sbd_app_info *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", text_or_null(a->id));
    json_object_set_new(o, "url", text_or_null(a->url));
    json_object_set_new(o, "sdk", text_or_null(a->sdk));
    json_object_set_new(o, "framework", text_or_null(a->framework));
    json_object_set_new(o, "app_version", text_or_null(a->app_version));
    json_object_set_new(o, "checksum", text_or_null(a->checksum));
    json_object_set_new(o, "created_at", iso_or_null(a->created_at));
    json_object_set_new(o, "synced_at", iso_or_null(a->synced_at));
    json_object_set_new(o, "sync_error", text_or_null(a->sync_error));
    json_object_set_new(o, "sync_error_at", iso_or_null(a->sync_error_at));
    json_object_set_new(o, "function_count", json_integer(a->function_count));
    return append(ctx, o);
}

json_t *api_view_apps(struct sbd_store *st, struct sb_err *err)
{
    json_t *arr = json_array();
    if (!arr)
        return list_done(NULL, SB_ENOMEM, err);
    return list_done(arr, sbd_store_apps_list(st, app_item, arr, err), err);
}

static int function_item(void *ctx, const struct sbd_fn_info *f)
{
    json_t *o = json_object();
    json_t *cfg = stored_json(f->config);
    json_object_set_new(o, "id", text_or_null(f->id));
    json_object_set_new(o, "app_id", text_or_null(f->app_id));
    json_object_set_new(o, "name", text_or_null(f->name));
    json_t *trig = json_object_get(cfg, "triggers");
    json_object_set_new(o, "triggers", trig ? json_incref(trig) : json_array());
    json_t *retries = json_object_get(
        json_object_get(json_object_get(json_object_get(cfg, "steps"), "step"), "retries"),
        "attempts");
    json_object_set_new(o, "retries", retries ? json_incref(retries) : json_integer(4));
    json_object_set_new(o, "config", cfg);
    json_object_set_new(o, "created_at", iso_or_null(f->created_at));
    json_object_set_new(o, "updated_at", iso_or_null(f->updated_at));
    json_object_set_new(o, "removed_at", iso_or_null(f->removed_at));
    return append(ctx, o);
}

json_t *api_view_functions(struct sbd_store *st, const char *app_id, bool include_removed,
                           struct sb_err *err)
{
    json_t *arr = json_array();
    if (!arr)
        return list_done(NULL, SB_ENOMEM, err);
    return list_done(
        arr, sbd_store_functions_list(st, app_id, include_removed, function_item, arr, err), err);
}

static int cancellation_item(void *ctx, const struct sbd_cancellation_rec *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(c->id));
    json_object_set_new(o, "app_id", text_or_null(c->app_id));
    json_object_set_new(o, "function_id", text_or_null(c->function_id));
    /* 0: unbounded */
    json_object_set_new(o, "started_after",
                        c->started_after ? iso_or_null(c->started_after) : json_null());
    json_object_set_new(o, "started_before",
                        c->started_before ? iso_or_null(c->started_before) : json_null());
    json_object_set_new(o, "if", text_or_null(c->expression));
    json_object_set_new(o, "created_at", iso_or_null(c->created_at));
    json_object_set_new(o, "run_count", json_integer(c->run_count));
    return append(ctx, o);
}

json_t *api_view_cancellations(struct sbd_store *st, int limit, struct sb_err *err)
{
    json_t *arr = json_array();
    if (!arr)
        return list_done(NULL, SB_ENOMEM, err);
    return list_done(arr, sbd_store_cancellations_list(st, limit, cancellation_item, arr, err),
                     err);
}
