/* diag.c - the diagnostic functions, served in both roles and used by tests,
 * benchmarks and post-deploy checks. Their ids, events and behaviour are a
 * contract (docs/system-bus-worker.md). With SYSBUS_DIAG_LOG=<file>, every
 * execution of one of their steps appends "<run_id> <function_id> <step_id>
 * <attempt>" to that file, so tests can count executions across crashes. */
#include "registry.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/crypto.h"

static int diag_fd = -1;

int diag_log_open(void)
{
    const char *path = getenv("SYSBUS_DIAG_LOG");
    if (!path || !*path)
        return 0;
    diag_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (diag_fd < 0) {
        fprintf(stderr, "system-bus-worker: cannot open SYSBUS_DIAG_LOG %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    return 0;
}

/* One line per execution; a single write() on an O_APPEND fd, so lines of
 * concurrent calls (and processes) never interleave. */
static void diag_log(sysbus_ctx *c, const char *step_id)
{
    if (diag_fd < 0)
        return;
    const char *fid = sysbus_function_id(c);
    const char *app = sysbus_app_id(sysbus_ctx_app(c));
    size_t al = strlen(app);
    if (strncmp(fid, app, al) == 0 && fid[al] == '-')
        fid += al + 1; /* the id as written in the code */
    char *line =
        sysbus_printf(c, "%s %s %s %d\n", sysbus_run_id(c), fid, step_id, sysbus_attempt(c));
    ssize_t n = write(diag_fd, line, strlen(line));
    (void)n;
}

static json_t *data_field(const json_t *event, const char *key)
{
    return json_object_get(json_object_get(event, "data"), key);
}

/* ---- diag-three-steps ---- */

static json_t *step_one(sysbus_ctx *c, void *arg)
{
    (void)arg;
    diag_log(c, "one");
    return json_pack("{s:i}", "one", 1);
}

static json_t *step_two(sysbus_ctx *c, void *arg)
{
    (void)arg;
    diag_log(c, "two");
    return json_pack("{s:i}", "two", 2);
}

static json_t *step_three(sysbus_ctx *c, void *arg)
{
    (void)arg;
    diag_log(c, "three");
    return json_pack("{s:i}", "three", 3);
}

json_t *diag_three_steps(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)user;
    sysbus_step_run(c, "one", step_one, NULL);
    sysbus_step_run(c, "two", step_two, NULL);
    sysbus_step_run(c, "three", step_three, NULL);
    json_t *n = data_field(event, "n");
    return json_pack("{s:i, s:O}", "steps", 3, "n", n ? n : json_null());
}

/* ---- diag-flaky ---- */

static json_t *flaky_step(sysbus_ctx *c, void *arg)
{
    const json_t *event = arg;
    diag_log(c, "flaky");
    json_int_t fail_times = json_integer_value(data_field(event, "fail_times"));
    if (sysbus_attempt(c) < fail_times)
        return sysbus_fail(c, SYSBUS_RETRY, "failing on purpose: attempt %d of %lld failures",
                           sysbus_attempt(c) + 1, (long long)fail_times);
    return json_pack("{s:i}", "succeeded_on_attempt", sysbus_attempt(c));
}

json_t *diag_flaky(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)user;
    const json_t *r = sysbus_step_run(c, "flaky", flaky_step, (void *)event);
    return json_deep_copy(r);
}

/* ---- diag-slow ---- */

static json_t *slow_step(sysbus_ctx *c, void *arg)
{
    const json_t *event = arg;
    diag_log(c, "slow");
    json_int_t ms = json_integer_value(data_field(event, "ms"));
    if (ms < 0 || ms > 3600000)
        return sysbus_fail(c, SYSBUS_NO_RETRY, "data.ms must be 0..3600000 (got %lld)",
                           (long long)ms);
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return json_pack("{s:I}", "slept_ms", ms);
}

json_t *diag_slow(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)user;
    return json_deep_copy(sysbus_step_run(c, "slow", slow_step, (void *)event));
}

/* ---- diag-sleep ---- */

static json_t *after_sleep(sysbus_ctx *c, void *arg)
{
    (void)arg;
    diag_log(c, "after");
    return json_pack("{s:b}", "woke", 1);
}

json_t *diag_sleep(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)user;
    const char *until = json_string_value(data_field(event, "until"));
    const char *d = json_string_value(data_field(event, "duration"));
    if (until) /* an ISO 8601 time instead of a duration */
        sysbus_step_sleep_until(c, "nap", until);
    else
        sysbus_step_sleep(c, "nap", d ? d : "1s");
    return json_deep_copy(sysbus_step_run(c, "after", after_sleep, NULL));
}

/* ---- diag-wait ---- */

json_t *diag_wait(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)user;
    const char *t = json_string_value(data_field(event, "timeout"));
    const json_t *got = sysbus_step_wait_for_event(c, "approval", "diag/wait.resolve",
                                                   "async.data.id == event.data.id", t ? t : "1m");
    json_t *o = json_pack("{s:b}", "matched", !json_is_null(got));
    if (!json_is_null(got))
        json_object_set(o, "event", (json_t *)got);
    return o;
}

/* ---- diag-parallel: three steps planned at once ---- */

static json_t *part(sysbus_ctx *c, void *arg)
{
    const char *name = arg;
    diag_log(c, name);
    return json_string(name);
}

json_t *diag_parallel(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)event;
    (void)user;
    sysbus_parallel_begin(c);
    const json_t *a = sysbus_step_run(c, "a", part, "a");
    const json_t *b = sysbus_step_run(c, "b", part, "b");
    const json_t *d = sysbus_step_run(c, "c", part, "c");
    sysbus_parallel_end(c);
    /* build the result only after the last step: a step may end the call */
    const json_t *after = sysbus_step_run(c, "after", part, "after");
    return json_pack("[OOOO]", a, b, d, after);
}

/* ---- diag-invoke: runs diag-three-steps as a child ---- */

json_t *diag_invoke(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)user;
    const char *app = sysbus_app_id(sysbus_ctx_app(c));
    char *target = sysbus_printf(c, "%s-diag-three-steps", app);
    json_t *n = data_field(event, "n");
    json_t *data = sysbus_keep(c, json_pack("{s:O}", "n", n ? n : json_null()));
    const json_t *child = sysbus_step_invoke(c, "child", target, data, "1m");
    return json_pack("{s:O}", "child", child);
}

/* ---- diag-send: fans out two diag/three-steps events ---- */

json_t *diag_send(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)user;
    json_t *n = data_field(event, "n");
    json_t *evs =
        sysbus_keep(c, json_pack("[{s:s, s:{s:O}}, {s:s, s:{s:O}}]", "name", "diag/three-steps",
                                 "data", "n", n ? n : json_null(), "name", "diag/three-steps",
                                 "data", "n", n ? n : json_null()));
    const json_t *sent = sysbus_step_send_event(c, "fan-out", evs);
    return json_deep_copy(sent);
}

/* ---- diag-env: which of the named environment variables are set ----
 * For checking what a supervisor injected (talon's leased secrets) through
 * the worker itself. Never returns a value: only whether each variable is set
 * and the SHA-256 of its value, which a test holding the value can compare. */

json_t *diag_env(sysbus_ctx *c, const json_t *event, void *user)
{
    (void)c;
    (void)user;
    json_t *names = data_field(event, "names");
    json_t *out = json_object();
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        const char *name = json_string_value(n);
        if (!name)
            continue;
        const char *v = getenv(name);
        if (!v) {
            json_object_set_new(out, name, json_pack("{s:b}", "set", 0));
            continue;
        }
        uint8_t md[SB_SHA256_LEN];
        char hex[2 * SB_SHA256_LEN + 1];
        sb_sha256(v, strlen(v), md);
        sb_hex_encode(md, sizeof md, hex);
        json_object_set_new(out, name, json_pack("{s:b, s:s}", "set", 1, "sha256", hex));
    }
    return out;
}
