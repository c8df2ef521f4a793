/* why.c - why a Running run is not progressing, from the queue state that
 * GET /v1/runs/{id} exposes (its due items) and the function's config:
 * sleeping until T, waiting for an event or an invoked run until T, backing
 * off after attempt n of m, worker unreachable since T, held by a
 * concurrency key (the engine's view, `engine.parked_on`), in a call, or
 * queued behind a throttle or the server's call limit. */
#include "cli.h"
#include "common/clock.h"
#include "common/json.h"

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

json_t *cli_why(struct cli *c, const json_t *run)
{
    const char *status = sb_json_str(run, "status");
    if (!status || strcmp(status, "Running") != 0)
        return NULL;
    const json_t *queue = json_object_get(run, "queue");
    const json_t *item = NULL, *deadline = NULL;
    size_t i;
    json_t *q;
    json_array_foreach((json_t *)queue, i, q)
    {
        if (strcmp(sb_json_str(q, "kind"), "deadline") == 0)
            deadline = q;
        else if (!item)
            item = q; /* the earliest due */
    }
    char msg[1200];
    json_t *why;
    int64_t now = sb_now_ms(), due = 0;
    sb_json_get_int(item, "due_at_ms", &due);
    const char *kind = item ? sb_json_str(item, "kind") : "";
    const json_t *engine = json_object_get(run, "engine"); /* what sysbusd holds in memory */
    const json_t *parked = json_object_get(engine, "parked_on");
    const json_t *err = item ? json_object_get(item, "last_error") : NULL;
    const char *err_msg = sb_json_str(err, "message");
    int64_t attempt = 0, failures = 0;
    sb_json_get_int(item, "attempt", &attempt);
    sb_json_get_int(item, "transport_failures", &failures);
    if (!item) {
        why = reason("no_work",
                     "nothing is queued for it: sysbusd gives it a new call at its next "
                     "start",
                     NULL);
    } else if (strcmp(kind, "sleep") == 0) {
        snprintf(msg, sizeof msg, "sleeping until %s", sb_json_str(item, "due_at"));
        why = reason("sleeping", msg, item);
    } else if (strcmp(kind, "wait") == 0) {
        const char *cond = sb_json_str(item, "if");
        snprintf(msg, sizeof msg, "waiting for event %s%s%s until %s",
                 sb_json_str(item, "waiting_for"), cond ? " matching " : "", cond ? cond : "",
                 sb_json_str(item, "due_at"));
        why = reason("waiting_for_event", msg, item);
        json_object_set_new(why, "event", json_string(sb_json_str(item, "waiting_for")));
    } else if (strcmp(kind, "invoke") == 0) {
        snprintf(msg, sizeof msg, "waiting for the invoked run %s until %s",
                 sb_json_str(item, "invoked_run_id"), sb_json_str(item, "due_at"));
        why = reason("waiting_for_invoke", msg, item);
    } else if (failures > 0) {
        snprintf(msg, sizeof msg,
                 "the worker is unreachable since %s (%lld failed tries); next try at %s: %s",
                 sb_json_str(item, "transport_failing_since"), (long long)failures,
                 sb_json_str(item, "due_at"), err_msg ? err_msg : "no answer");
        why = reason("worker_unreachable", msg, item);
        json_object_set_new(why, "since",
                            json_string(sb_json_str(item, "transport_failing_since")));
    } else if (attempt > 0 && due > now) {
        int64_t retries;
        char limits[400];
        function_info(c, sb_json_str(run, "function_id"), &retries, limits, sizeof limits);
        snprintf(msg, sizeof msg, "backing off until %s after attempt %lld of %lld: %s",
                 sb_json_str(item, "due_at"), (long long)attempt, (long long)retries + 1,
                 err_msg ? err_msg : "(no error recorded)");
        why = reason("backoff", msg, item);
        json_object_set_new(why, "attempt", json_integer(attempt));
        json_object_set_new(why, "max_attempts", json_integer(retries + 1));
        if (err)
            json_object_set(why, "last_error", (json_t *)err);
    } else if (due > now && !parked) {
        snprintf(msg, sizeof msg, "queued until %s (a throttle or a negative priority delays it)",
                 sb_json_str(item, "due_at"));
        why = reason("delayed", msg, item);
    } else if (parked) {
        const char *value = sb_json_str(parked, "value");
        bool throttle = strcmp(sb_json_str(parked, "kind"), "throttle") == 0;
        snprintf(msg, sizeof msg, "held by the %s of %s%s%s%s, %s %s",
                 throttle ? "throttle" : "concurrency limit", sb_json_str(parked, "scope"),
                 value ? " on key '" : "", value ? value : "", value ? "'" : "",
                 throttle ? "next start at" : "due since", sb_json_str(item, "due_at"));
        why = reason(throttle ? "held_by_throttle" : "held_by_concurrency", msg, item);
        json_object_set(why, "key", (json_t *)parked);
    } else if (json_is_true(json_object_get(engine, "in_call"))) {
        why = reason("in_call", "being called now", item);
    } else {
        int64_t retries;
        char limits[400];
        function_info(c, sb_json_str(run, "function_id"), &retries, limits, sizeof limits);
        if (limits[0])
            snprintf(msg, sizeof msg,
                     "due since %s and held by the function's limits (%s), or "
                     "being called now",
                     sb_json_str(item, "due_at"), limits);
        else
            snprintf(msg, sizeof msg,
                     "due since %s: being called now, or waiting for a free "
                     "call slot (sysbusd --max-inflight)",
                     sb_json_str(item, "due_at"));
        why = reason(limits[0] ? "held_by_limit" : "due", msg, item);
    }
    if (deadline)
        json_object_set_new(why, "cancelled_at", json_string(sb_json_str(deadline, "due_at")));
    return why;
}
