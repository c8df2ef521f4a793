/* why.c - why a Running run is not progressing, from the queue state that
 * GET /v1/runs/{id} exposes (its due items) and the function's config:
 * sleeping until T, waiting for an event or an invoked run until T, backing
 * off after attempt n of m, worker unreachable since T, held by a
 * concurrency key (the engine's view, `engine.parked_on`), in a call, or
 * queued behind a throttle or the server's call limit. */
#include "cli.h"
#include "common/clock.h"
#include "common/json.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *reason(const char *code, const char *msg, const json_t *item)
{
    json_t *o = json_pack("{s:s, s:s}", "reason", code, "message", msg);
    if (item && sb_json_str(item, "due_at"))
        json_object_set_new(o, "until", json_string(sb_json_str(item, "due_at")));
    return o;
}

/* The function's retries and its limits ("concurrency"/"throttle"), from
 * GET /v1/functions. */
static void function_info(struct cli *c, const char *fn_id, int64_t *retries, char *limits,
                          size_t limsz)
{
    *retries = 4;
    limits[0] = '\0';
    struct api_res r;
    if (cli_api(c, "GET", "/v1/functions", NULL, &r) != 0) {
        api_res_free(&r);
        return;
    }
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(r.json, "data"), i, f)
    {
        if (!fn_id || strcmp(sb_json_str(f, "id"), fn_id) != 0)
            continue;
        const json_t *cfg = json_object_get(f, "config");
        *retries = cli_fn_retries(f);
        const char *names[] = { "concurrency", "throttle" };
        for (int k = 0; k < 2; k++) {
            json_t *v = json_object_get(cfg, names[k]);
            if (!v)
                continue;
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            size_t n = strlen(limits);
            snprintf(limits + n, limsz - n, "%s%s %s", n ? ", " : "", names[k], text ? text : "");
            free(text);
        }
    }
    api_res_free(&r);
}

/* What one explanation is built from: the run, its earliest due item and
 * what the engine holds of it. */
struct why {
    struct cli *c;
    const json_t *run, *item, *engine, *parked, *err;
    const char *kind, *err_msg;
    int64_t now, due, attempt, failures;
    char msg[1200];
};

static json_t *why_nothing_queued(struct why *w)
{
    if (w->item)
        return NULL;
    return reason("no_work", "nothing is queued for it: sysbusd gives it a new call at its next start",
                  NULL);
}

/* A step that needs no call: a sleep, a wait for an event or an invoked run. */
static json_t *why_waiting(struct why *w)
{
    const json_t *it = w->item;
    if (strcmp(w->kind, "sleep") == 0) {
        snprintf(w->msg, sizeof w->msg, "sleeping until %s", sb_json_str(it, "due_at"));
        return reason("sleeping", w->msg, it);
    }
    if (strcmp(w->kind, "wait") == 0) {
        const char *cond = sb_json_str(it, "if");
        snprintf(w->msg, sizeof w->msg, "waiting for event %s%s%s until %s",
                 sb_json_str(it, "waiting_for"), cond ? " matching " : "", cond ? cond : "",
                 sb_json_str(it, "due_at"));
        json_t *why = reason("waiting_for_event", w->msg, it);
        json_object_set_new(why, "event", json_string(sb_json_str(it, "waiting_for")));
        return why;
    }
    if (strcmp(w->kind, "invoke") == 0) {
        snprintf(w->msg, sizeof w->msg, "waiting for the invoked run %s until %s",
                 sb_json_str(it, "invoked_run_id"), sb_json_str(it, "due_at"));
        return reason("waiting_for_invoke", w->msg, it);
    }
    return NULL;
}

static json_t *why_unreachable(struct why *w)
{
    if (w->failures <= 0)
        return NULL;
    const json_t *it = w->item;
    snprintf(w->msg, sizeof w->msg,
             "the worker is unreachable since %s (%lld failed tries); next try at %s: %s",
             sb_json_str(it, "transport_failing_since"), (long long)w->failures,
             sb_json_str(it, "due_at"), w->err_msg ? w->err_msg : "no answer");
    json_t *why = reason("worker_unreachable", w->msg, it);
    json_object_set_new(why, "since", json_string(sb_json_str(it, "transport_failing_since")));
    return why;
}

static json_t *why_backoff(struct why *w)
{
    if (w->attempt <= 0 || w->due <= w->now)
        return NULL;
    int64_t retries;
    char limits[400];
    function_info(w->c, sb_json_str(w->run, "function_id"), &retries, limits, sizeof limits);
    snprintf(w->msg, sizeof w->msg, "backing off until %s after attempt %lld of %lld: %s",
             sb_json_str(w->item, "due_at"), (long long)w->attempt, (long long)retries + 1,
             w->err_msg ? w->err_msg : "(no error recorded)");
    json_t *why = reason("backoff", w->msg, w->item);
    json_object_set_new(why, "attempt", json_integer(w->attempt));
    json_object_set_new(why, "max_attempts", json_integer(retries + 1));
    if (w->err)
        json_object_set(why, "last_error", (json_t *)w->err);
    return why;
}

static json_t *why_delayed(struct why *w)
{
    if (w->due <= w->now || w->parked)
        return NULL;
    snprintf(w->msg, sizeof w->msg,
             "queued until %s (a throttle or a negative priority delays it)",
             sb_json_str(w->item, "due_at"));
    return reason("delayed", w->msg, w->item);
}

static json_t *why_parked(struct why *w)
{
    if (!w->parked)
        return NULL;
    const char *value = sb_json_str(w->parked, "value");
    bool throttle = strcmp(sb_json_str(w->parked, "kind"), "throttle") == 0;
    snprintf(w->msg, sizeof w->msg, "held by the %s of %s%s%s%s, %s %s",
             throttle ? "throttle" : "concurrency limit", sb_json_str(w->parked, "scope"),
             value ? " on key '" : "", value ? value : "", value ? "'" : "",
             throttle ? "next start at" : "due since", sb_json_str(w->item, "due_at"));
    json_t *why = reason(throttle ? "held_by_throttle" : "held_by_concurrency", w->msg, w->item);
    json_object_set(why, "key", (json_t *)w->parked);
    return why;
}

static json_t *why_in_call(struct why *w)
{
    if (!json_is_true(json_object_get(w->engine, "in_call")))
        return NULL;
    return reason("in_call", "being called now", w->item);
}

/* Due, and not in a call the engine knows of: the function's limits or
 * the server's call limit hold it. */
static json_t *why_due(struct why *w)
{
    int64_t retries;
    char limits[400];
    function_info(w->c, sb_json_str(w->run, "function_id"), &retries, limits, sizeof limits);
    if (limits[0])
        snprintf(w->msg, sizeof w->msg,
                 "due since %s and held by the function's limits (%s), or being called now",
                 sb_json_str(w->item, "due_at"), limits);
    else
        snprintf(w->msg, sizeof w->msg,
                 "due since %s: being called now, or waiting for a free call slot (sysbusd "
                 "--max-inflight)",
                 sb_json_str(w->item, "due_at"));
    return reason(limits[0] ? "held_by_limit" : "due", w->msg, w->item);
}

/* The explanations, tried in order: the first that applies is the answer. */
static json_t *(*const WHY_RULES[])(struct why *w) = {
    why_nothing_queued, why_waiting, why_unreachable, why_backoff,
    why_delayed,        why_parked,  why_in_call,     why_due,
};

json_t *cli_why(struct cli *c, const json_t *run)
{
    const char *status = sb_json_str(run, "status");
    if (!status || strcmp(status, "Running") != 0)
        return NULL;
    struct why w = { .c = c, .run = run, .now = sb_now_ms() };
    const json_t *deadline = NULL;
    size_t i;
    json_t *q;
    json_array_foreach(json_object_get(run, "queue"), i, q)
    {
        if (strcmp(sb_json_str(q, "kind"), "deadline") == 0)
            deadline = q;
        else if (!w.item)
            w.item = q; /* the earliest due */
    }
    sb_json_get_int(w.item, "due_at_ms", &w.due);
    w.kind = w.item ? sb_json_str(w.item, "kind") : "";
    w.engine = json_object_get(run, "engine"); /* what sysbusd holds in memory */
    w.parked = json_object_get(w.engine, "parked_on");
    w.err = w.item ? json_object_get(w.item, "last_error") : NULL;
    w.err_msg = sb_json_str(w.err, "message");
    sb_json_get_int(w.item, "attempt", &w.attempt);
    sb_json_get_int(w.item, "transport_failures", &w.failures);
    json_t *why = NULL;
    for (size_t k = 0; !why && k < sizeof WHY_RULES / sizeof WHY_RULES[0]; k++)
        why = WHY_RULES[k](&w);
    if (deadline)
        json_object_set_new(why, "cancelled_at", json_string(sb_json_str(deadline, "due_at")));
    return why;
}
