/* cmd_doctor.c - `sysbus doctor`: checks the wiring between sysbusd and each
 * worker in both directions and says, for each failed check, the exact fix.
 * The failures it looks for are the runbook's "Unable to reach SDK URL" and
 * "function missing after deploy":
 *   server      sysbusd answers; its mode (dev or signed)
 *   clock       this machine, the server and each worker agree within the
 *               signature window (5 minutes), from their Date headers
 *   per app:
 *   reachable   the worker's serve URL answers this machine
 *   mode/keys   the worker's introspection agrees with the server's mode and
 *               has a signing key when the server is signed
 *   functions   the worker serves as many functions as are registered
 *   round trip  sysbusd reaches the worker (PUT) and the worker registers
 *               back (POST /fn/register): POST /v1/apps/{id}/sync. This is a
 *               re-sync, so it also repairs a stale registration. */
#include "cli.h"
#include "common/clock.h"
#include "common/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SKEW_MAX_MS (5 * 60 * 1000)

static void add(json_t *checks, const char *name, bool ok, const char *detail, const char *fix)
{
    json_t *o = json_pack("{s:s, s:b, s:s}", "name", name, "ok", ok, "detail", detail);
    if (!ok && fix)
        json_object_set_new(o, "fix", json_string(fix));
    json_array_append_new(checks, o);
}

static void clock_check(json_t *checks, const char *who, int64_t date_ms)
{
    if (!date_ms)
        return;
    int64_t skew = date_ms - sb_now_ms();
    char name[200], detail[200];
    snprintf(name, sizeof name, "clock %s", who);
    snprintf(detail, sizeof detail, "%+.1f s from this machine", (double)skew / 1000);
    /* Date has a 1 s resolution: allow that on top of the window */
    add(checks, name, llabs(skew) <= SKEW_MAX_MS + 1000, detail,
        "synchronise the clocks (NTP): signatures older than 5 minutes are refused");
}

static void app_checks(struct cli *c, json_t *checks, const json_t *app, bool server_dev)
{
    const char *id = sb_json_str(app, "id"), *url = sb_json_str(app, "url");
    char name[300], detail[800], fix[800];
    struct api_res p;
    int rc = cli_probe(url, 3000, &p);
    snprintf(name, sizeof name, "%s: reachable", id);
    snprintf(fix, sizeof fix, "start the worker of app %s, or check that %s is its address", id,
             url);
    add(checks, name, rc == 0, rc == 0 ? url : p.message, fix);
    if (rc == 0) {
        const char *mode = sb_json_str(p.json, "mode");
        bool worker_dev = mode && strcmp(mode, "dev") == 0;
        bool has_key = json_is_true(json_object_get(p.json, "has_signing_key"));
        snprintf(name, sizeof name, "%s: mode and keys", id);
        snprintf(detail, sizeof detail, "server %s, worker %s%s", server_dev ? "dev" : "signed",
                 mode ? mode : "unknown",
                 has_key ? " with a signing key" : " without a signing key");
        /* a signed worker refuses a dev server's unsigned calls, and the other way round */
        bool ok = server_dev ? worker_dev : !worker_dev && has_key;
        add(checks, name, ok, detail,
            "run the worker signed with the server's key: INNGEST_DEV=0 and "
            "INNGEST_SIGNING_KEY=<the key sysbusd uses>");
        snprintf(name, sizeof name, "worker %s", id);
        clock_check(checks, name, p.date_ms);
        /* functions served vs registered */
        int64_t served = -1;
        sb_json_get_int(p.json, "function_count", &served);
        int64_t registered = -1;
        sb_json_get_int(app, "function_count", &registered);
        snprintf(name, sizeof name, "%s: functions", id);
        snprintf(detail, sizeof detail, "worker serves %lld, sysbusd has %lld registered",
                 (long long)served, (long long)registered);
        snprintf(fix, sizeof fix, "re-register them: sysbus refresh --app %s", id);
        add(checks, name, served < 0 || served == registered, detail, fix);
    }
    api_res_free(&p);
    /* sysbusd -> worker -> sysbusd */
    char path[300];
    snprintf(path, sizeof path, "/v1/apps/%s/sync", id);
    struct api_res s;
    rc = cli_api(c, "POST", path, NULL, &s);
    const char *code = s.json ? sb_json_str(s.json, "code") : NULL;
    snprintf(name, sizeof name, "%s: server round trip", id);
    if (rc == 0)
        snprintf(fix, sizeof fix, "-");
    else if (code && strcmp(code, "SDK_UNREACHABLE") == 0)
        snprintf(fix, sizeof fix,
                 "sysbusd cannot reach %s (Unable to reach SDK URL): set INNGEST_SERVE_ORIGIN on "
                 "the worker to an address sysbusd can reach, then restart it",
                 url);
    else if (code && strcmp(code, "NOT_REGISTERED") == 0)
        snprintf(fix, sizeof fix,
                 "the worker registers somewhere else: set its INNGEST_BASE_URL to %s", c->url);
    else
        snprintf(fix, sizeof fix,
                 "the worker refused the sync: check that its INNGEST_SIGNING_KEY is the server's "
                 "and read its log");
    add(checks, name, rc == 0,
        rc == 0 ? "sysbusd reached the worker and it registered back" : s.message, fix);
    api_res_free(&s);
}

int cmd_doctor(struct cli *c, int argc, char **argv)
{
    if (argc > 0)
        return cli_usage(c, "unknown option", argv[0]);
    json_t *checks = json_array();
    struct api_res h;
    int rc = cli_api(c, "GET", "/health", NULL, &h);
    const char *mode = h.json ? sb_json_str(h.json, "mode") : NULL;
    bool server_dev = mode && strcmp(mode, "dev") == 0;
    char detail[600];
    snprintf(detail, sizeof detail, "%s answers (%s mode)", c->url, mode ? mode : "?");
    add(checks, "server", rc == 0, rc == 0 ? detail : h.message,
        "start sysbusd, or point --url / SYSBUS_URL at it");
    if (rc == 0)
        clock_check(checks, "server", h.date_ms);
    api_res_free(&h);
    if (rc == 0) {
        struct api_res a;
        if (cli_api(c, "GET", "/v1/apps", NULL, &a) != 0) {
            add(checks, "apps", false, a.message,
                a.code && strcmp(a.code, "UNAUTHORIZED") == 0
                    ? "pass the server's signing key in SYSBUS_SIGNING_KEY (or --signing-key)"
                    : "look at sysbusd's log");
        } else {
            const json_t *apps = json_object_get(a.json, "data");
            if (json_array_size(apps) == 0)
                add(checks, "apps", false, "no app is registered",
                    "start a worker with INNGEST_BASE_URL pointing at this server (it registers "
                    "itself), or: curl -X POST <server>/v1/apps -d '{\"url\":\"<worker url>\"}'");
            size_t i;
            json_t *app;
            json_array_foreach((json_t *)apps, i, app) app_checks(c, checks, app, server_dev);
        }
        api_res_free(&a);
    }
    if (cli_checks_ok(checks))
        cli_next(c, "send a test event through the whole path",
                 "sysbus send diag/three-steps -d '{\"n\":1}' --follow");
    return cli_checks_done(c, checks, "apply the fix of each failed check in error.details.checks",
                           "the wiring between sysbusd and its workers is broken");
}
