/* Unit tests for the REST views: what GET /v1/runs, /v1/runs/{id},
 * /v1/runs/{id}/steps, /v1/events, /v1/events/{id}, /v1/apps,
 * /v1/functions and /v1/cancellations put in "data", byte for byte, for a
 * store holding every kind of row they show (runs in each status, a running
 * run's queue items of every kind, steps of every op, values nested too
 * deeply to embed, text that is not JSON, NULL times, a batch's events).
 *
 * The expected texts were taken from the views as they were when the store
 * shaped the JSON itself (store_views.c, before the store seam): the views
 * now built from store records must answer exactly the same. Set
 * SB_VIEWS_PRINT=1 to print what the views answer instead of checking.
 *
 * With SYSBUS_TEST_PG_URL set (a PostgreSQL database the test may create a
 * schema in), the same views are checked again on the PostgreSQL backend,
 * in a schema sbviews_<pid> dropped after each test: both backends must
 * answer the same bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "server/api/views.h"
#include "server/store/store.h"

#ifdef SBD_STORE_POSTGRES
#include <libpq-fe.h>
#include <unistd.h>
#endif

static char dir[64];
static struct sbd_store *st;
static const char *pg_url; /* SYSBUS_TEST_PG_URL, or NULL: SQLite only */
static char schema[64];    /* the PostgreSQL schema of the current test ("": SQLite) */

#define E1 "01E1AAAAAAAAAAAAAAAAAAAAAA"
#define E2 "01E2AAAAAAAAAAAAAAAAAAAAAA"
#define E3 "01E3AAAAAAAAAAAAAAAAAAAAAA"
#define R1 "01R1AAAAAAAAAAAAAAAAAAAAAA"
#define R2 "01R2AAAAAAAAAAAAAAAAAAAAAA"
#define R3 "01R3AAAAAAAAAAAAAAAAAAAAAA"
#define R4 "01R4AAAAAAAAAAAAAAAAAAAAAA"
#define R5 "01R5AAAAAAAAAAAAAAAAAAAAAA"

/* A JSON text nested `depth` arrays deep (malloc'd). */
static char *nested(int depth, const char *prefix, const char *suffix)
{
    size_t n = strlen(prefix) + strlen(suffix) + 2 * (size_t)depth + 1;
    char *t = malloc(n);
    assert_non_null(t);
    size_t k = 0;
    k += (size_t)sprintf(t + k, "%s", prefix);
    for (int i = 0; i < depth; i++)
        t[k++] = '[';
    for (int i = 0; i < depth; i++)
        t[k++] = ']';
    sprintf(t + k, "%s", suffix);
    return t;
}

static void put_event(const char *id, const char *name, const char *body, int64_t at)
{
    struct sb_err err = { 0 };
    struct sbd_ev_rec ev = { .name = name, .body = body, .ts = at, .received_at = at };
    snprintf(ev.id, sizeof ev.id, "%s", id);
    bool inserted;
    assert_int_equal(sbd_store_event_insert(st, &ev, &inserted, &err), 0);
}

static void put_run(const char *id, const char *fn, const char *event_id, int64_t at)
{
    struct sb_err err = { 0 };
    struct sbd_run_rec r = { .function_id = fn, .app_id = "app", .created_at = at };
    snprintf(r.id, sizeof r.id, "%s", id);
    snprintf(r.event_id, sizeof r.event_id, "%s", event_id);
    assert_int_equal(sbd_store_run_insert(st, &r, &err), 0);
}

static void put_step(const char *hash, int64_t seq, const char *op, int status, const char *output,
                     const char *error, int64_t started, int64_t ended)
{
    struct sb_err err = { 0 };
    struct sbd_step_rec s = { .run_id = R4,
                              .hash = hash,
                              .seq = seq,
                              .name = hash,
                              .op = op,
                              .status = status,
                              .attempts = 1,
                              .output = output,
                              .error = error,
                              .started_at = started,
                              .ended_at = ended };
    assert_int_equal(sbd_store_step_put(st, &s, &err), 0);
}

static void put_item(int64_t id, int flags, const char *step)
{
    struct sb_err err = { 0 };
    struct sbd_qitem_rec q = {
        .id = id, .run_id = R4, .step_id = step, .due_at = 5000 + id, .flags = flags
    };
    if (id == 1) { /* a call that failed to reach its worker */
        q.attempt = 2;
        q.transport_failures = 3;
        q.transport_since = 4500;
        q.last_error = "{\"message\":\"refused\"}";
    }
    assert_int_equal(sbd_store_queue_put(st, &q, &err), 0);
}

static void put_apps(void)
{
    struct sb_err err = { 0 };
    struct sbd_app_rec a = { .id = "app",
                             .url = "http://w/api",
                             .sdk = "js:v3",
                             .app_version = "1",
                             .checksum = "c1",
                             .now = 1000 };
    assert_int_equal(sbd_store_app_upsert(st, &a, &err), 0);
    assert_int_equal(sbd_store_app_sync_error(st, "http://w/api", "unreachable", 1500, &err), 0);
    a = (struct sbd_app_rec){ .id = "b", .url = "http://b/api", .now = 1100 };
    assert_int_equal(sbd_store_app_upsert(st, &a, &err), 0);
    a = (struct sbd_app_rec){ .id = "gone", .url = "http://g/api", .now = 1100 };
    assert_int_equal(sbd_store_app_upsert(st, &a, &err), 0);
    assert_int_equal(sbd_store_app_delete(st, "gone", 1200, &err), 0);
    struct sbd_fn_rec f = { .id = "app-f",
                            .app_id = "app",
                            .name = "F",
                            .now = 1000,
                            .config = "{\"id\":\"app-f\",\"triggers\":[{\"event\":\"a/b\"}],"
                                      "\"steps\":{\"step\":{\"retries\":{\"attempts\":2}}}}" };
    assert_int_equal(sbd_store_function_put(st, &f, &err), 0);
    f = (struct sbd_fn_rec){
        .id = "app-g", .app_id = "app", .name = "G", .config = "{}", .now = 1001
    };
    assert_int_equal(sbd_store_function_put(st, &f, &err), 0);
    f = (struct sbd_fn_rec){
        .id = "app-h", .app_id = "app", .name = "H", .config = "not json", .now = 1002
    };
    assert_int_equal(sbd_store_function_put(st, &f, &err), 0);
    const char *keep[] = { "app-f", "app-g" };
    assert_int_equal(sbd_store_functions_prune(st, "app", keep, 2, 1700, &err), 0);
}

static void put_cancellations(void)
{
    struct sb_err err = { 0 };
    struct sbd_cancellation_rec c = { .id = "01C1AAAAAAAAAAAAAAAAAAAAAA",
                                      .app_id = "app",
                                      .function_id = "app-f",
                                      .expression = "event.data.x == 1",
                                      .started_before = 5000,
                                      .created_at = 3000,
                                      .run_count = 2 };
    assert_int_equal(sbd_store_cancellation_put(st, &c, &err), 0);
    c = (struct sbd_cancellation_rec){ .id = "01C2AAAAAAAAAAAAAAAAAAAAAA",
                                       .started_after = 1000,
                                       .created_at = 3100 };
    assert_int_equal(sbd_store_cancellation_put(st, &c, &err), 0);
}

/* Events, runs in every status, R4 running with every kind of queue item and
 * every kind of step, R5 a running batch of E1 and E3. */
static void fill(void)
{
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_begin(st, &err), 0);
    put_event(E1, "a/b", "{\"name\":\"a/b\",\"data\":{\"x\":1},\"ts\":1000}", 1000);
    char *deep = nested(300, "{\"name\":\"a/deep\",\"data\":", "}");
    put_event(E2, "a/deep", deep, 2000);
    free(deep);
    put_event(E3, "a/b", "not json", 3000);
    put_run(R1, "app-f", E1, 1000);
    put_run(R2, "app-f", E1, 1100);
    put_run(R3, "app-g", E2, 2000);
    put_run(R4, "app-f", E3, 3000);
    put_run(R5, "app-g", E1, 3100);
    assert_int_equal(sbd_store_run_progress(st, R1, 1050, 2, &err), 0);
    assert_int_equal(
        sbd_store_run_finish(st, R1, RUN_COMPLETED, "{\"ok\":true}", NULL, 1050, 1200, &err), 0);
    assert_int_equal(sbd_store_run_finish(st, R2, RUN_FAILED, NULL,
                                          "{\"name\":\"Error\",\"message\":\"x\"}", 0, 1300, &err),
                     0);
    char *deep_out = nested(300, "", "");
    assert_int_equal(
        sbd_store_run_finish(st, R3, RUN_CANCELLED, deep_out, "plain text", 0, 2100, &err), 0);
    assert_int_equal(sbd_store_run_progress(st, R4, 3050, 1, &err), 0);
    put_item(1, 0, "step");
    put_item(2, QF_SLEEP, "s3");
    put_item(3, QF_WAIT, "s4");
    put_item(4, QF_INVOKE, "s7");
    put_item(5, QF_DEADLINE, "step");
    put_item(6, QF_PARALLEL, "s8");
    struct sbd_wait_rec w = { .item_id = 3,
                              .run_id = R4,
                              .step_hash = "s4",
                              .event_name = "x/y",
                              .expression = "event.data.a == async.data.a",
                              .created_at = 3000 };
    assert_int_equal(sbd_store_wait_put(st, &w, &err), 0);
    w = (struct sbd_wait_rec){
        .item_id = 4, .run_id = R4, .step_hash = "s7", .child_run_id = R5, .created_at = 3000
    };
    assert_int_equal(sbd_store_wait_put(st, &w, &err), 0);
    put_step("s1", 0, "StepRun", STEP_COMPLETED, "{\"data\":{\"v\":1}}", NULL, 3000, 3010);
    put_step("s2", 1, "StepRun", STEP_FAILED, "{\"error\":{\"message\":\"bad\"}}",
             "{\"message\":\"bad\"}", 3020, 3030);
    put_step("s3", 2, "Sleep", STEP_COMPLETED, "null", NULL, 3040, 3050);
    put_step("s4", 3, "WaitForEvent", STEP_COMPLETED, "{\"name\":\"x/y\",\"data\":{}}", NULL, 3060,
             0);
    put_step("s5", -1, "StepRun", STEP_RUNNING, NULL, "{\"message\":\"retry\"}", 0, 0);
    put_step("s6", 4, "StepRun", STEP_COMPLETED, deep_out, NULL, 3070, 3080);
    put_step("s9", 5, NULL, STEP_COMPLETED, "{\"data\":\"text\"}", NULL, 3090, 3095);
    free(deep_out);
    assert_int_equal(sbd_store_run_event_add(st, R5, 0, E1, &err), 0);
    assert_int_equal(sbd_store_run_event_add(st, R5, 1, E3, &err), 0);
    put_apps();
    put_cancellations();
    assert_int_equal(sbd_store_commit(st, &err), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/sbviewsXXXXXX");
    if (!mkdtemp(dir))
        return -1;
    struct sb_err err = { 0 };
    char url[1024];
    if (schema[0])
        snprintf(url, sizeof url, "%s%sschema=%s", pg_url, strchr(pg_url, '?') ? "&" : "?", schema);
    else
        snprintf(url, sizeof url, "sqlite://%s/sysbus.db", dir);
    if (sbd_store_open(url, &st, &err) != 0) {
        fprintf(stderr, "cannot open the store: %s\n", err.msg);
        return -1;
    }
    fill();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sbd_store_close(st);
    st = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

#ifdef SBD_STORE_POSTGRES
static int setup_pg(void **state)
{
    snprintf(schema, sizeof schema, "sbviews_%d", (int)getpid());
    return setup(state);
}

static int teardown_pg(void **state)
{
    int rc = teardown(state);
    PGconn *db = PQconnectdb(pg_url);
    char sql[128];
    snprintf(sql, sizeof sql, "SET client_min_messages TO warning; DROP SCHEMA \"%s\" CASCADE",
             schema);
    PGresult *r = PQexec(db, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = -1;
    PQclear(r);
    PQfinish(db);
    schema[0] = '\0';
    return rc;
}
#endif

/* Checks (or prints, with SB_VIEWS_PRINT=1) the text of a view; v is
 * released. */
static void expect(const char *what, json_t *v, const char *want)
{
    assert_non_null(v);
    char *got = sb_json_dumps(v, NULL);
    json_decref(v);
    assert_non_null(got);
    if (getenv("SB_VIEWS_PRINT"))
        printf("%s\n%s\n\n", what, got);
    else
        assert_string_equal(got, want);
    free(got);
}

/* The views, as the API calls them (api/views.c). */
static json_t *run_view(const char *id, struct sb_err *err)
{
    return api_view_run(st, id, NULL, err);
}
static json_t *steps_view(const char *id, struct sb_err *err)
{
    return api_view_run_steps(st, id, err);
}
static json_t *runs_view(const struct sbd_run_filter *f, struct sb_err *err)
{
    return api_view_runs(st, f, NULL, err);
}
static json_t *event_view(const char *id, struct sb_err *err)
{
    return api_view_event(st, id, err);
}
static json_t *events_view(const struct sbd_event_filter *f, struct sb_err *err)
{
    return api_view_events(st, f, err);
}
static json_t *apps_view(struct sb_err *err)
{
    return api_view_apps(st, err);
}
static json_t *functions_view(const char *app, bool removed, struct sb_err *err)
{
    return api_view_functions(st, app, removed, err);
}
static json_t *cancellations_view(int limit, struct sb_err *err)
{
    return api_view_cancellations(st, limit, err);
}

#include "test_views_expected.h"

static void run_views_are_unchanged(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    expect("R1", run_view(R1, &err), WANT_R1);
    expect("R2", run_view(R2, &err), WANT_R2);
    expect("R3", run_view(R3, &err), WANT_R3);
    expect("R4", run_view(R4, &err), WANT_R4);
    assert_null(run_view("01NOSUCHRUNAAAAAAAAAAAAAAA", &err));
    assert_int_equal(err.code, SB_ENOTFOUND);
    expect("steps R4", steps_view(R4, &err), WANT_STEPS_R4);
    expect("steps none", steps_view("01NOSUCHRUNAAAAAAAAAAAAAAA", &err), "[]");
}

static void run_lists_are_unchanged(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    struct sbd_run_filter f = { .status = -1, .limit = 20 };
    expect("runs", runs_view(&f, &err), WANT_RUNS);
    f = (struct sbd_run_filter){ .status = RUN_RUNNING, .limit = 20 };
    expect("runs running", runs_view(&f, &err), WANT_RUNS_RUNNING);
    f = (struct sbd_run_filter){
        .status = -1, .function_id = "app-g", .app_id = "app", .limit = 20
    };
    expect("runs app-g", runs_view(&f, &err), WANT_RUNS_G);
    f = (struct sbd_run_filter){ .status = -1, .event_id = E3, .limit = 20 };
    expect("runs of E3", runs_view(&f, &err), WANT_RUNS_E3);
    f = (struct sbd_run_filter){ .status = -1, .since_ms = 2000, .cursor = R5, .limit = 2 };
    expect("runs page", runs_view(&f, &err), WANT_RUNS_PAGE);
}

static void event_views_are_unchanged(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    expect("E1", event_view(E1, &err), WANT_E1);
    expect("E2", event_view(E2, &err), WANT_E2);
    expect("E3", event_view(E3, &err), WANT_E3);
    assert_null(event_view("01NOSUCHEVENTAAAAAAAAAAAAA", &err));
    assert_int_equal(err.code, SB_ENOTFOUND);
    struct sbd_event_filter f = { .limit = 20 };
    expect("events", events_view(&f, &err), WANT_EVENTS);
    f = (struct sbd_event_filter){ .name = "a/b", .after_ms = 1000, .before_ms = 3000, .limit = 5 };
    expect("events a/b", events_view(&f, &err), WANT_EVENTS_AB);
    f = (struct sbd_event_filter){ .cursor = E3, .limit = 1 };
    expect("events page", events_view(&f, &err), WANT_EVENTS_PAGE);
}

static void app_function_and_cancellation_views_are_unchanged(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    expect("apps", apps_view(&err), WANT_APPS);
    expect("functions", functions_view(NULL, false, &err), WANT_FUNCTIONS);
    expect("functions all", functions_view("app", true, &err), WANT_FUNCTIONS_ALL);
    expect("cancellations", cancellations_view(10, &err), WANT_CANCELLATIONS);
    expect("cancellations 1", cancellations_view(1, &err), WANT_CANCELLATIONS_1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(run_views_are_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(run_lists_are_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(event_views_are_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(app_function_and_cancellation_views_are_unchanged, setup,
                                        teardown),
    };
    int rc = cmocka_run_group_tests_name("views on SQLite", tests, NULL, NULL);
    pg_url = getenv("SYSBUS_TEST_PG_URL");
#ifdef SBD_STORE_POSTGRES
    if (pg_url && *pg_url) {
        const struct CMUnitTest pg_tests[] = {
            cmocka_unit_test_setup_teardown(run_views_are_unchanged, setup_pg, teardown_pg),
            cmocka_unit_test_setup_teardown(run_lists_are_unchanged, setup_pg, teardown_pg),
            cmocka_unit_test_setup_teardown(event_views_are_unchanged, setup_pg, teardown_pg),
            cmocka_unit_test_setup_teardown(app_function_and_cancellation_views_are_unchanged,
                                            setup_pg, teardown_pg),
        };
        rc |= cmocka_run_group_tests_name("views on PostgreSQL", pg_tests, NULL, NULL);
    }
#endif
    return rc;
}
