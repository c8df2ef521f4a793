/* cmd_read.c - the read commands: functions, apps, runs, run, events. */
#include "cli.h"
#include "common/clock.h"
#include "common/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STUCK_AFTER_MS (10 * 60 * 1000) /* Running without progress this long */

int cmd_functions(struct cli *c, int argc, char **argv)
{
    const char *app = NULL;
    for (int i = 0; i < argc; i++) {
        int o = cli_opt(argc, argv, &i, "--app", &app);
        if (o <= 0)
            return cli_usage(c, o < 0 ? "--app needs a value" : "unknown option", argv[i]);
    }
    char path[512] = "/v1/functions";
    cli_query(path, sizeof path, "app", app);
    struct api_res r;
    if (cli_api(c, "GET", path, NULL, &r) != 0)
        return cli_fail_api(c, &r);
    json_t *out = json_array();
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(r.json, "data"), i, f)
    {
        const json_t *cfg = json_object_get(f, "config");
        const json_t *triggers = json_object_get(cfg, "triggers");
        int64_t retries = cli_fn_retries(f);
        json_t *t = triggers ? json_incref((json_t *)triggers) : json_array();
        json_array_append_new(
            out, json_pack("{s:O, s:O, s:O, s:o, s:I}", "id", json_object_get(f, "id"), "name",
                           json_object_get(f, "name"), "app", json_object_get(f, "app_id"),
                           "triggers", t, "retries", (json_int_t)retries));
        const char *ev = sb_json_str(json_array_get(triggers, 0), "event");
        if (ev && !strchr(ev, '*'))
            cli_next(c, "send an event that triggers it", "sysbus send %s -d '{}'", ev);
    }
    api_res_free(&r);
    return cli_ok(c, out);
}

int cmd_apps(struct cli *c, int argc, char **argv)
{
    if (argc > 0)
        return cli_usage(c, "unknown option", argv[0]);
    struct api_res r;
    if (cli_api(c, "GET", "/v1/apps", NULL, &r) != 0)
        return cli_fail_api(c, &r);
    json_t *out = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(r.json, "data"), i, a)
    {
        const char *url = sb_json_str(a, "url");
        struct api_res p;
        bool reachable = url && cli_probe(url, 1500, &p) == 0;
        if (url)
            api_res_free(&p);
        json_array_append_new(
            out, json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:b}", "id", json_object_get(a, "id"),
                           "url", json_object_get(a, "url"), "sdk", json_object_get(a, "sdk"),
                           "synced_at", json_object_get(a, "synced_at"), "function_count",
                           json_object_get(a, "function_count"), "sync_error",
                           json_object_get(a, "sync_error"), "reachable", reachable));
        if (!reachable)
            cli_next(c, "why the worker cannot be reached", "sysbus status");
    }
    api_res_free(&r);
    cli_next(c, "re-sync every app with its worker", "sysbus refresh --all");
    return cli_ok(c, out);
}

int cmd_runs(struct cli *c, int argc, char **argv)
{
    const char *count = "10", *status = NULL, *fn = NULL, *hours = NULL;
    for (int i = 0; i < argc; i++) {
        int o = cli_opt(argc, argv, &i, "--count", &count);
        if (!o)
            o = cli_opt(argc, argv, &i, "--status", &status);
        if (!o)
            o = cli_opt(argc, argv, &i, "--function", &fn);
        if (!o)
            o = cli_opt(argc, argv, &i, "--hours", &hours);
        if (o <= 0)
            return cli_usage(c, o < 0 ? "option needs a value" : "unknown option", argv[i]);
    }
    if (cli_num(count, 1000) < 0)
        return cli_usage(c, "--count must be 1..1000", count);
    if (hours && cli_num(hours, 24 * 3650) < 0)
        return cli_usage(c, "--hours must be a positive number of hours", hours);
    char path[512] = "/v1/runs";
    cli_query(path, sizeof path, "limit", count);
    cli_query(path, sizeof path, "status", status);
    cli_query(path, sizeof path, "function_id", fn);
    cli_query(path, sizeof path, "hours", hours);
    struct api_res r;
    if (cli_api(c, "GET", path, NULL, &r) != 0)
        return cli_fail_api(c, &r);
    json_t *runs = json_incref(json_object_get(r.json, "data"));
    api_res_free(&r);
    int64_t now = sb_now_ms();
    size_t i, stuck = 0;
    json_t *run;
    json_array_foreach(runs, i, run)
    {
        int64_t updated = 0;
        const char *u = sb_json_str(run, "updated_at");
        bool is_stuck =
            strcmp(sb_json_str(run, "status") ? sb_json_str(run, "status") : "", "Running") == 0 &&
            u && sb_time_parse_iso(u, &updated) == 0 && now - updated > STUCK_AFTER_MS;
        json_object_set_new(run, "stuck", json_boolean(is_stuck));
        if (is_stuck && stuck++ < 3)
            cli_next(c, "why this run is not progressing", "sysbus run %s",
                     sb_json_str(run, "run_id"));
    }
    if (json_array_size(runs) > 0)
        cli_next(c, "the newest run with its steps", "sysbus run %s",
                 sb_json_str(json_array_get(runs, 0), "run_id"));
    return cli_ok(c, runs);
}

int cmd_run(struct cli *c, int argc, char **argv)
{
    if (argc != 1 || argv[0][0] == '-')
        return cli_usage(c, "usage: sysbus run <run-id>", NULL);
    char path[300];
    snprintf(path, sizeof path, "/v1/runs/%s", argv[0]);
    struct api_res r, s, e = { 0 };
    if (cli_api(c, "GET", path, NULL, &r) != 0)
        return cli_fail_api(c, &r);
    snprintf(path, sizeof path, "/v1/runs/%s/steps", argv[0]);
    if (cli_api(c, "GET", path, NULL, &s) != 0) {
        api_res_free(&r);
        return cli_fail_api(c, &s);
    }
    json_t *run = json_object_get(r.json, "data");
    const char *status = sb_json_str(run, "status");
    if (status && strcmp(status, "Running") == 0)
        cli_next(c, "cancel it", "sysbus cancel %s", argv[0]);
    const char *event_id = sb_json_str(run, "event_id");
    if (event_id) { /* rerun: the same event again */
        snprintf(path, sizeof path, "/v1/events/%s", event_id);
        if (cli_api(c, "GET", path, NULL, &e) == 0) {
            const json_t *ev = json_object_get(e.json, "data");
            char *data = json_dumps(json_object_get(ev, "data"), JSON_COMPACT | JSON_ENCODE_ANY);
            char q[2048];
            cli_quote(data ? data : "{}", q, sizeof q);
            cli_next(c, "run it again with the same event", "sysbus send %s -d %s --follow",
                     sb_json_str(ev, "name"), q);
            free(data);
        }
    }
    json_t *out = json_pack("{s:O, s:O}", "run", run, "steps", json_object_get(s.json, "data"));
    json_t *why = cli_why(c, run);
    if (why)
        json_object_set_new(out, "why", why);
    api_res_free(&r);
    api_res_free(&s);
    api_res_free(&e);
    return cli_ok(c, out);
}

int cmd_events(struct cli *c, int argc, char **argv)
{
    const char *name = NULL, *count = "10";
    for (int i = 0; i < argc; i++) {
        int o = cli_opt(argc, argv, &i, "--name", &name);
        if (!o)
            o = cli_opt(argc, argv, &i, "--count", &count);
        if (o <= 0)
            return cli_usage(c, o < 0 ? "option needs a value" : "unknown option", argv[i]);
    }
    if (cli_num(count, 1000) < 0)
        return cli_usage(c, "--count must be 1..1000", count);
    char path[512] = "/v1/events";
    cli_query(path, sizeof path, "limit", count);
    cli_query(path, sizeof path, "name", name);
    struct api_res r;
    if (cli_api(c, "GET", path, NULL, &r) != 0)
        return cli_fail_api(c, &r);
    json_t *events = json_incref(json_object_get(r.json, "data"));
    api_res_free(&r);
    return cli_ok(c, events);
}
