/* registry.c - every function system-bus-worker serves, in one table, with
 * the roles that serve it (see registry.h). Adding a function: write its
 * handler, add one line here. */
#include "registry.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static void on(sysbus_fn *f, const char *event, int retries)
{
    sysbus_fn_trigger_event(f, event, NULL);
    sysbus_fn_retries(f, retries);
}

static void cfg_three_steps(sysbus_fn *f)
{
    on(f, "diag/three-steps", 4);
}

static void cfg_flaky(sysbus_fn *f)
{
    on(f, "diag/flaky", 3);
}

static void cfg_slow(sysbus_fn *f)
{
    on(f, "diag/slow", 0); /* survives worker restarts without retries */
}

static void cfg_sleep(sysbus_fn *f)
{
    on(f, "diag/sleep", 4);
}

static void cfg_wait(sysbus_fn *f)
{
    on(f, "diag/wait", 4);
}

static void cfg_parallel(sysbus_fn *f)
{
    on(f, "diag/parallel", 4);
}

static void cfg_invoke(sysbus_fn *f)
{
    on(f, "diag/invoke", 4);
}

static void cfg_send(sysbus_fn *f)
{
    on(f, "diag/send", 4);
}

static void cfg_env(sysbus_fn *f)
{
    on(f, "diag/env", 0);
}

static void cfg_story(sysbus_fn *f)
{
    sysbus_fn_name(f, "Story pipeline");
    on(f, "story/submitted", 2);
    /* one story per author at a time */
    sysbus_fn_option(f, "concurrency",
                     json_pack("{s:i, s:s}", "limit", 1, "key", "event.data.author"));
}

static void cfg_heartbeat(sysbus_fn *f)
{
    sysbus_fn_name(f, "Heartbeat");
    sysbus_fn_trigger_cron(f, "*/5 * * * *");
    sysbus_fn_retries(f, 0);
}

const struct worker_fn worker_functions[] = {
    { "diag-three-steps", ROLE_BOTH, diag_three_steps, cfg_three_steps },
    { "diag-flaky", ROLE_BOTH, diag_flaky, cfg_flaky },
    { "diag-slow", ROLE_BOTH, diag_slow, cfg_slow },
    { "diag-sleep", ROLE_BOTH, diag_sleep, cfg_sleep },
    { "diag-wait", ROLE_BOTH, diag_wait, cfg_wait },
    { "diag-parallel", ROLE_BOTH, diag_parallel, cfg_parallel },
    { "diag-invoke", ROLE_BOTH, diag_invoke, cfg_invoke },
    { "diag-send", ROLE_BOTH, diag_send, cfg_send },
    { "diag-env", ROLE_BOTH, diag_env, cfg_env },
    { "story-pipeline", ROLE_CLUSTER, story_pipeline, cfg_story },
    { "heartbeat", ROLE_HOST, heartbeat, cfg_heartbeat },
    { NULL, 0, NULL, NULL },
};

int worker_duplicate_ids(const struct worker_fn *fns, char *out, size_t outsz)
{
    int n = 0;
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; fns[i].id; i++) {
        bool first = true, dup = false;
        for (size_t j = 0; fns[j].id; j++) {
            if (j != i && strcmp(fns[i].id, fns[j].id) == 0) {
                dup = true;
                first = first && j > i;
            }
        }
        if (dup && first) {
            int w = snprintf(out + len, outsz - len, "%s%s", n ? ", " : "", fns[i].id);
            if (w > 0 && (size_t)w < outsz - len)
                len += (size_t)w;
            n++;
        }
    }
    return n;
}

size_t worker_define(sysbus_app *app, const struct worker_fn *fns, unsigned role)
{
    size_t n = 0;
    for (size_t i = 0; fns[i].id; i++) {
        if (!(fns[i].roles & role))
            continue;
        sysbus_fn *f = sysbus_fn_new(app, fns[i].id, fns[i].handler, NULL);
        if (fns[i].configure)
            fns[i].configure(f);
        n++;
    }
    return n;
}
