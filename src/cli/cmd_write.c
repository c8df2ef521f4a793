/* cmd_write.c - the commands that change things: send (and --follow),
 * cancel, refresh. */
#include "cli.h"
#include "common/clock.h"
#include "common/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* -d JSON or -d @file: the event's data (an object). */
static json_t *read_data(struct cli *c, const char *arg, int *rc)
{
    char *text = NULL;
    if (arg[0] == '@') {
        FILE *f = fopen(arg + 1, "r");
        if (!f) {
            *rc = cli_fail(c, "INVALID_JSON", "pass a readable file: -d @path/to/data.json",
                           "cannot read %s", arg + 1);
            return NULL;
        }
        size_t cap = 0, len = 0;
        char buf[8192];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
            char *t = realloc(text, cap = len + n + 1);
            if (!t)
                break;
            text = t;
            memcpy(text + len, buf, n);
            len += n;
            text[len] = '\0';
        }
        fclose(f);
    }
    struct sb_err err = { 0 };
    const char *src = text ? text : (arg[0] == '@' ? "" : arg);
    json_t *data = sb_json_parse_ints(src, strlen(src), &err);
    free(text);
    if (!json_is_object(data)) {
        *rc = cli_fail(c, "INVALID_JSON", "-d takes a JSON object, e.g. -d '{\"id\": 1}'",
                       "the event data is not a JSON object%s%s", data ? "" : ": ",
                       data ? "" : err.msg);
        json_decref(data);
        return NULL;
    }
    return data;
}

/* --follow: one NDJSON line per change of the event's runs and their steps,
 * until every run ended or the timeout. Returns the runs (new ref), or NULL
 * when the server stopped answering (*failed holds why). */
static json_t *follow(struct cli *c, const char *event_id, long timeout_s, bool *timed_out,
                      struct api_res *failed)
{
    int64_t deadline = sb_mono_ms() + timeout_s * 1000;
    json_t *seen = json_object(); /* "run:step" -> status */
    json_t *runs = NULL;
    *timed_out = false;
    for (;;) {
        char path[300];
        snprintf(path, sizeof path, "/v1/events/%s/runs", event_id);
        struct api_res r;
        if (cli_api(c, "GET", path, NULL, &r) != 0) {
            *failed = r;
            json_decref(runs);
            json_decref(seen);
            return NULL;
        }
        json_decref(runs);
        runs = json_object_get(r.json, "data");
        runs = json_is_array(runs) ? json_incref(runs) : json_array();
        api_res_free(&r);
        bool all_ended = json_array_size(runs) > 0;
        size_t i;
        json_t *run;
        json_array_foreach(runs, i, run)
        {
            const char *id = sb_json_str(run, "run_id");
            const char *status = sb_json_str(run, "status");
            all_ended = all_ended && status && strcmp(status, "Running") != 0;
            snprintf(path, sizeof path, "/v1/runs/%s/steps", id);
            struct api_res s;
            if (cli_api(c, "GET", path, NULL, &s) == 0) {
                size_t k;
                json_t *step;
                json_array_foreach(json_object_get(s.json, "data"), k, step)
                {
                    char key[200];
                    snprintf(key, sizeof key, "%s:%s", id, sb_json_str(step, "id"));
                    const char *st = sb_json_str(step, "status");
                    const char *old = sb_json_str(seen, key);
                    if (st && (!old || strcmp(old, st) != 0)) {
                        json_object_set_new(seen, key, json_string(st));
                        json_t *line = json_pack("{s:s, s:s, s:O}", "type", "step", "run_id", id,
                                                 "step", step);
                        char *t = json_dumps(line, JSON_COMPACT);
                        printf("%s\n", t);
                        fflush(stdout);
                        free(t);
                        json_decref(line);
                    }
                }
            }
            api_res_free(&s);
            const char *old = sb_json_str(seen, id);
            if (status && (!old || strcmp(old, status) != 0)) {
                json_object_set_new(seen, id, json_string(status));
                json_t *line = json_pack("{s:s, s:O}", "type", "run", "run", run);
                char *t = json_dumps(line, JSON_COMPACT);
                printf("%s\n", t);
                fflush(stdout);
                free(t);
                json_decref(line);
            }
        }
        if (all_ended)
            break;
        if (sb_mono_ms() >= deadline) {
            *timed_out = true;
            break;
        }
        usleep(100000);
    }
    json_decref(seen);
    return runs;
}

int cmd_send(struct cli *c, int argc, char **argv)
{
    const char *name = NULL, *data_arg = NULL, *timeout = "300";
    bool do_follow = false;
    for (int i = 0; i < argc; i++) {
        int o = cli_opt(argc, argv, &i, "-d", &data_arg);
        if (!o)
            o = cli_opt(argc, argv, &i, "--data", &data_arg);
        if (!o)
            o = cli_opt(argc, argv, &i, "--timeout", &timeout);
        if (!o && strcmp(argv[i], "--follow") == 0) {
            do_follow = true;
            o = 1;
        }
        if (!o && argv[i][0] != '-' && !name) {
            name = argv[i];
            o = 1;
        }
        if (o <= 0)
            return cli_usage(c, o < 0 ? "option needs a value" : "unknown option", argv[i]);
    }
    if (!name)
        return cli_usage(c, "usage: sysbus send <event> [-d JSON | -d @file] [--follow]", NULL);
    long timeout_s = cli_num(timeout, 86400);
    if (timeout_s < 0)
        return cli_usage(c, "--timeout must be 1..86400 seconds", timeout);
    int rc = 0;
    json_t *data = data_arg ? read_data(c, data_arg, &rc) : json_object();
    if (!data)
        return rc;
    json_t *ev = json_pack("{s:s, s:o}", "name", name, "data", data);
    char *body = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    char path[300];
    snprintf(path, sizeof path, "/e/%s", c->event_key && *c->event_key ? c->event_key : "dev");
    struct api_res r;
    rc = cli_api(c, "POST", path, body, &r);
    free(body);
    if (rc != 0) {
        if (r.code && strcmp(r.code, "UNAUTHORIZED") == 0)
            rc = cli_fail(c, "UNAUTHORIZED",
                          "pass the event key in SYSBUS_EVENT_KEY (or --event-key)", "%s",
                          r.message);
        else
            rc = cli_fail_api(c, &r);
        api_res_free(&r);
        return rc;
    }
    const char *id = json_string_value(json_array_get(json_object_get(r.json, "ids"), 0));
    char event_id[64];
    snprintf(event_id, sizeof event_id, "%s", id ? id : "");
    api_res_free(&r);
    if (!do_follow) {
        cli_next(c, "the runs it started", "sysbus runs --count 5");
        return cli_ok(c, json_pack("{s:s, s:s}", "event_id", event_id, "name", name));
    }
    bool timed_out;
    struct api_res failed;
    json_t *runs = follow(c, event_id, timeout_s, &timed_out, &failed);
    if (!runs)
        return cli_fail_api(c, &failed);
    if (timed_out) {
        json_decref(runs);
        return cli_fail(c, "TIMEOUT", "raise --timeout, or look at the run with sysbus run <id>",
                        "the runs of event %s did not end within %ld s", event_id, timeout_s);
    }
    size_t i;
    json_t *run;
    bool all_ok = true;
    json_array_foreach(runs, i, run)
    {
        cli_next(c, "the run with its steps", "sysbus run %s", sb_json_str(run, "run_id"));
        all_ok = all_ok && strcmp(sb_json_str(run, "status"), "Completed") == 0;
    }
    if (!all_ok)
        cli_next(c, "the failed or cancelled runs", "sysbus runs --status Failed --count 5");
    return cli_ok(c,
                  json_pack("{s:s, s:s, s:o}", "event_id", event_id, "name", name, "runs", runs));
}

int cmd_cancel(struct cli *c, int argc, char **argv)
{
    if (argc != 1 || argv[0][0] == '-')
        return cli_usage(c, "usage: sysbus cancel <run-id>", NULL);
    char path[300];
    snprintf(path, sizeof path, "/v1/runs/%s", argv[0]);
    struct api_res r;
    if (cli_api(c, "DELETE", path, NULL, &r) != 0) {
        int rc = r.code && strcmp(r.code, "CONFLICT") == 0
                     ? cli_fail(c, "NOT_RUNNING", "nothing to do: the run has already ended", "%s",
                                r.message)
                     : cli_fail_api(c, &r);
        api_res_free(&r);
        return rc;
    }
    api_res_free(&r);
    cli_next(c, "the cancelled run", "sysbus run %s", argv[0]);
    return cli_ok(c, json_pack("{s:s, s:s}", "run_id", argv[0], "status", "Cancelled"));
}

/* The function ids of app (a JSON array of strings, new ref) or NULL. */
static json_t *app_functions(struct cli *c, const char *app)
{
    char path[300] = "/v1/functions";
    cli_query(path, sizeof path, "app", app);
    struct api_res r;
    json_t *ids = NULL;
    if (cli_api(c, "GET", path, NULL, &r) == 0) {
        ids = json_array();
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(r.json, "data"), i, f)
            json_array_append(ids, json_object_get(f, "id"));
    }
    api_res_free(&r);
    return ids;
}

static size_t count_missing(const json_t *a, const json_t *b)
{
    size_t n = 0, i, j;
    json_t *x, *y;
    json_array_foreach((json_t *)a, i, x)
    {
        bool found = false;
        json_array_foreach((json_t *)b, j, y) found = found || json_equal(x, y);
        n += !found;
    }
    return n;
}

int cmd_refresh(struct cli *c, int argc, char **argv)
{
    const char *only = NULL;
    bool all = false, prune = false, yes = false;
    for (int i = 0; i < argc; i++) {
        int o = cli_opt(argc, argv, &i, "--app", &only);
        bool *flag = strcmp(argv[i], "--all") == 0     ? &all
                     : strcmp(argv[i], "--prune") == 0 ? &prune
                     : strcmp(argv[i], "--yes") == 0   ? &yes
                                                       : NULL;
        if (!o && flag) {
            *flag = true;
            o = 1;
        }
        if (o <= 0)
            return cli_usage(c, o < 0 ? "option needs a value" : "unknown option", argv[i]);
    }
    if (only && all)
        return cli_usage(c, "--app and --all exclude each other", NULL);
    if (prune && !yes)
        return cli_fail(c, "CONFIRMATION_REQUIRED",
                        "add --yes to remove apps whose workers cannot be reached",
                        "--prune deletes registrations");
    struct api_res r;
    if (cli_api(c, "GET", "/v1/apps", NULL, &r) != 0)
        return cli_fail_api(c, &r);
    json_t *report = json_array();
    size_t i, unreachable = 0;
    json_t *a;
    json_array_foreach(json_object_get(r.json, "data"), i, a)
    {
        const char *id = sb_json_str(a, "id");
        if (only && strcmp(only, id) != 0)
            continue;
        json_t *before = app_functions(c, id);
        char path[300];
        snprintf(path, sizeof path, "/v1/apps/%s/sync", id);
        struct api_res s;
        int rc = cli_api(c, "POST", path, NULL, &s);
        json_t *after = rc == 0 ? app_functions(c, id) : NULL;
        const char *action = rc != 0 ? "unreachable"
                             : count_missing(after, before) || count_missing(before, after)
                                 ? "refreshed"
                                 : "clean";
        json_t *item =
            json_pack("{s:s, s:O, s:s, s:i, s:i, s:i}", "app", id, "url", json_object_get(a, "url"),
                      "action", action, "added", (int)(after ? count_missing(after, before) : 0),
                      "removed", (int)(after ? count_missing(before, after) : 0), "functionCount",
                      (int)json_array_size(after ? after : before));
        if (rc != 0) {
            unreachable++;
            json_object_set_new(item, "error", json_string(s.message));
            if (prune) {
                snprintf(path, sizeof path, "/v1/apps/%s", id);
                struct api_res d;
                if (cli_api(c, "DELETE", path, NULL, &d) == 0)
                    json_object_set_new(item, "action", json_string("pruned"));
                api_res_free(&d);
            }
        }
        json_array_append_new(report, item);
        api_res_free(&s);
        json_decref(before);
        json_decref(after);
    }
    api_res_free(&r);
    if (only && json_array_size(report) == 0) {
        json_decref(report);
        return cli_fail(c, "NOT_FOUND", "list the apps with: sysbus apps", "no app '%s'", only);
    }
    if (unreachable && !prune) {
        cli_next(c, "remove the apps whose workers cannot be reached",
                 "sysbus refresh --all --prune --yes");
        return cli_fail_details(c, "WORKER_UNREACHABLE",
                                "start those workers, or remove their apps with --prune --yes",
                                json_pack("{s:o}", "apps", report),
                                "%zu app(s) could not be re-synced: sysbusd cannot reach their "
                                "workers (error.details.apps)",
                                unreachable);
    }
    cli_next(c, "the functions now registered", "sysbus functions");
    return cli_ok(c, report);
}
