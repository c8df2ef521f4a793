/* Unit tests for the store's read errors: a scan that breaks part way is
 * reported as an error, never as a shorter result (docs/internals/store.md,
 * "Row scans and read errors").
 *
 * The fault injector: this program is linked with -Wl,--wrap=sqlite3_step
 * (the Makefile does that for every unit test whose name ends in _faults),
 * so the store's calls to sqlite3_step land in __wrap_sqlite3_step below.
 * Armed with a piece of SQL, it lets `rows` rows of the statements whose
 * text contains it through and then fails every further step of them with
 * SQLITE_IOERR, as a disk error in the middle of a scan would. Release builds
 * have no such hook: it exists only in this test's link. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "server/api/views.h"
#include "server/engine/engine.h"
#include "server/event.h"
#include "server/flow.h"
#include "server/registry.h"
#include "server/sbd.h"
#include "server/store/store.h"

static struct {
    const char *sql; /* fail statements whose SQL contains this; NULL: off */
    int rows;        /* rows still let through */
    int failed;      /* steps failed so far */
} fault;

int __real_sqlite3_step(sqlite3_stmt *s);
int __wrap_sqlite3_step(sqlite3_stmt *s);

int __wrap_sqlite3_step(sqlite3_stmt *s)
{
    if (fault.sql && strstr(sqlite3_sql(s), fault.sql)) {
        if (fault.rows <= 0) {
            fault.failed++;
            return SQLITE_IOERR;
        }
        int rc = __real_sqlite3_step(s);
        if (rc == SQLITE_ROW)
            fault.rows--;
        return rc;
    }
    return __real_sqlite3_step(s);
}

static void fail_after(const char *sql, int rows)
{
    fault.sql = sql;
    fault.rows = rows;
    fault.failed = 0;
}

static void heal(void)
{
    fault.sql = NULL;
}

static char dir[64];
static struct sbd_store *st;

static void put_run(const char *run_id, const char *event_id, int nsteps)
{
    struct sb_err err = { 0 };
    struct sbd_ev_rec ev = {
        .name = "a/b", .body = "{\"name\":\"a/b\"}", .ts = 1, .received_at = 1000
    };
    snprintf(ev.id, sizeof ev.id, "%s", event_id);
    bool inserted;
    assert_int_equal(sbd_store_event_insert(st, &ev, &inserted, &err), 0);
    struct sbd_run_rec run = { .function_id = "app-f", .app_id = "app", .created_at = 1000 };
    snprintf(run.id, sizeof run.id, "%s", run_id);
    snprintf(run.event_id, sizeof run.event_id, "%s", event_id);
    assert_int_equal(sbd_store_run_insert(st, &run, &err), 0);
    for (int i = 0; i < nsteps; i++) {
        char hash[41];
        snprintf(hash, sizeof hash, "%040d", i);
        struct sbd_step_rec s = { .run_id = run_id,
                                  .hash = hash,
                                  .seq = i,
                                  .op = "StepRun",
                                  .status = STEP_COMPLETED,
                                  .attempts = 1,
                                  .output = "{\"data\":1}" };
        assert_int_equal(sbd_store_step_put(st, &s, &err), 0);
    }
}

#define RUN_A "01RUNA00000000000000000000"
#define RUN_B "01RUNB00000000000000000000"

/* Two runs with three memoized steps each, two queue rows, two rate hits. */
static int setup(void **state)
{
    (void)state;
    heal();
    snprintf(dir, sizeof dir, "/tmp/sbfaultXXXXXX");
    if (!mkdtemp(dir))
        return -1;
    struct sb_err err = { 0 };
    char url[96];
    snprintf(url, sizeof url, "sqlite://%s/sysbus.db", dir);
    if (sbd_store_open(url, &st, &err) != 0)
        return -1;
    assert_int_equal(sbd_store_begin(st, &err), 0);
    put_run(RUN_A, "01EVA000000000000000000000", 3);
    put_run(RUN_B, "01EVB000000000000000000000", 3);
    struct sbd_qitem_rec q = { .id = 1, .run_id = RUN_A, .step_id = "step", .due_at = 1000 };
    assert_int_equal(sbd_store_queue_put(st, &q, &err), 0);
    q = (struct sbd_qitem_rec){ .id = 2, .run_id = RUN_B, .step_id = "step", .due_at = 2000 };
    assert_int_equal(sbd_store_queue_put(st, &q, &err), 0);
    assert_int_equal(sbd_store_rate_hit(st, "k", 1000, &err), 0);
    assert_int_equal(sbd_store_rate_hit(st, "k", 1001, &err), 0);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    heal();
    sbd_store_close(st);
    st = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void run_state_fails_when_the_step_scan_breaks_midway(void **state)
{
    (void)state;
    struct sbd_run_state rs;
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_run_state(st, RUN_A, &rs, &err), 0);
    assert_int_equal(rs.nsteps, 3);
    sbd_run_state_free(&rs);

    fail_after("FROM steps WHERE run_id=? AND seq IS NOT NULL", 1);
    int rc = sbd_store_run_state(st, RUN_A, &rs, &err);
    assert_int_equal(fault.failed, 1);
    /* not "a run with one memoized step": that call would rerun the others */
    assert_int_equal(rc, SB_EIO);
    assert_int_equal(err.code, SB_EIO);
    assert_int_equal(rs.nsteps, 0);
    assert_null(rs.steps);
    assert_null(rs.event);

    heal(); /* the next try, once the store reads again, has everything */
    assert_int_equal(sbd_store_run_state(st, RUN_A, &rs, &err), 0);
    assert_int_equal(rs.nsteps, 3);
    sbd_run_state_free(&rs);
}

static void run_state_of_a_missing_run_is_not_found_but_a_failed_read_is_not(void **state)
{
    (void)state;
    struct sbd_run_state rs;
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_run_state(st, "01NOSUCHRUN000000000000000", &rs, &err),
                     SB_ENOTFOUND);
    fail_after("JOIN events e ON e.id=r.event_id WHERE r.id=?", 0);
    assert_int_equal(sbd_store_run_state(st, RUN_A, &rs, &err), SB_EIO);
}

static void next_seq_and_rate_count_return_errors_not_zero(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    int64_t seq = -1;
    assert_int_equal(sbd_store_next_seq(st, RUN_A, &seq, &err), 0);
    assert_int_equal(seq, 3);
    int64_t hits = -1;
    assert_int_equal(sbd_store_rate_count(st, "k", 0, &hits, &err), 0);
    assert_int_equal(hits, 2);

    fail_after("MAX(seq)", 0);
    seq = -1;
    assert_true(sbd_store_next_seq(st, RUN_A, &seq, &err) < 0); /* never position 0 */
    assert_int_equal(seq, -1);
    assert_int_equal(err.code, SB_EIO);
    fail_after("FROM rate_hits", 0);
    hits = -1;
    assert_int_equal(sbd_store_rate_count(st, "k", 0, &hits, &err), SB_EIO);
    assert_int_equal(hits, -1);
}

static int count_cron(void *ctx, const struct sbd_cron_rec *c)
{
    (void)c;
    ++*(int *)ctx;
    return 0;
}

static int count_id(void *ctx, const char *id)
{
    (void)id;
    ++*(int *)ctx;
    return 0;
}

static int count_event(void *ctx, const char *id, const char *body)
{
    (void)id, (void)body;
    ++*(int *)ctx;
    return 0;
}

/* The reads that returned a bare code (or 1/0) before the one error
 * convention: each now fails with the scan's code and says why in err,
 * and leaves its results untouched. */
static void one_row_reads_and_scans_fill_err_when_they_fail(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    bool held = true;
    int64_t due = -7;
    fail_after("FROM deferred WHERE kind=?2", 0);
    assert_int_equal(sbd_store_event_held(st, "01EVA000000000000000000000", &held, &due, &err),
                     SB_EIO);
    assert_int_equal(err.code, SB_EIO);
    assert_true(held); /* untouched: not "not held" */
    assert_int_equal(due, -7);
    heal();
    assert_int_equal(sbd_store_event_held(st, "01EVA000000000000000000000", &held, &due, &err), 0);
    assert_false(held);

    struct sbd_deferred_rec d;
    err = (struct sb_err){ 0 };
    fail_after("FROM deferred WHERE kind=? AND", 0);
    assert_int_equal(sbd_store_deferred_find(st, DEFER_BATCH, "app-f", "k", &d, &err), SB_EIO);
    assert_int_equal(err.code, SB_EIO);
    err = (struct sb_err){ 0 };
    fail_after("FROM deferred WHERE id=?", 0);
    assert_int_equal(sbd_store_deferred_get(st, "01D00000000000000000000000", &d, &err), SB_EIO);
    assert_int_equal(err.code, SB_EIO);
    int n = 0;
    int64_t earliest;
    err = (struct sb_err){ 0 };
    fail_after("FROM deferred ORDER BY due_at", 0);
    assert_int_equal(sbd_store_deferred_due(st, 0, count_id, &n, &earliest, &err), SB_EIO);
    assert_int_equal(err.code, SB_EIO);

    char *expr = NULL;
    int64_t next_at;
    err = (struct sb_err){ 0 };
    fail_after("FROM crons WHERE function_id=?", 0);
    assert_int_equal(sbd_store_cron_get(st, "app-f", 0, &expr, &next_at, &err), SB_EIO);
    assert_int_equal(err.code, SB_EIO);
    assert_null(expr);
    err = (struct sb_err){ 0 };
    fail_after("FROM crons ORDER BY next_at", 0);
    assert_int_equal(sbd_store_crons_scan(st, count_cron, &n, &err), SB_EIO);
    assert_int_equal(err.code, SB_EIO);

    char *fn_id, *ev_name, *ev_body;
    err = (struct sb_err){ 0 };
    fail_after("SELECT r.function_id,e.name,e.body", 0);
    assert_int_equal(sbd_store_run_trigger(st, RUN_A, &fn_id, &ev_name, &ev_body, &err), SB_EIO);
    assert_int_equal(err.code, SB_EIO);
    assert_null(fn_id);
    err = (struct sb_err){ 0 };
    fail_after("FROM events WHERE name=? AND id>=?", 0);
    assert_int_equal(sbd_store_events_since(st, "a/b", "0", count_event, &n, &err), SB_EIO);
    assert_int_equal(err.code, SB_EIO);
    assert_int_equal(n, 0);
    heal();
    assert_int_equal(sbd_store_events_since(st, "a/b", "0", count_event, &n, &err), 0);
    assert_int_equal(n, 2);
}

static struct sbd_fn *rate_limited_fn(void)
{
    const char *text = "{\"id\":\"app-f\",\"triggers\":[{\"event\":\"a/b\"}],"
                       "\"rateLimit\":{\"limit\":5,\"period\":\"1m\"},"
                       "\"steps\":{\"step\":{\"runtime\":{\"url\":\"http://w/api\"}}}}";
    json_t *o = sb_json_parse(text, strlen(text), NULL);
    struct sb_err err = { 0 };
    struct sbd_fn *f = sbd_fn_parse(o, "app", &err);
    json_decref(o);
    assert_non_null(f);
    return f;
}

static void rate_limit_that_cannot_count_does_not_admit(void **state)
{
    (void)state;
    struct sbd_fn *f = rate_limited_fn();
    struct sbd_event ev = { .name = "a/b", .body = "{\"name\":\"a/b\"}" };
    struct sbd_flow_start fs;
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_begin(st, &err), 0);
    fail_after("FROM rate_hits", 0);
    int rc = sbd_flow_start_in_txn(st, f, "01RUNC00000000000000000000", &ev, 2000, &fs, &err);
    heal();
    sbd_store_rollback(st);
    /* an error (the event's ingest fails and is retried), not FLOW_START */
    assert_true(rc < 0);
    assert_int_not_equal(rc, FLOW_START);
    assert_int_equal(err.code, SB_EIO);
    json_decref(ev.json); /* the event's name and body are the test's */
    sbd_fn_unref(f);
}

static void event_dedupe_lookup_failure_is_an_error_not_a_new_event(void **state)
{
    (void)state;
    char found[SB_ULID_SIZE];
    struct sb_err err = { 0 };
    fail_after("WHERE dedupe_key=?", 0);
    assert_int_equal(sbd_store_event_find_dedupe(st, "user-key", 0, found, &err), SB_EIO);
    heal();
    assert_int_equal(sbd_store_event_find_dedupe(st, "user-key", 0, found, &err), SB_ENOTFOUND);
}

static int count_item(void *ctx, const struct sbd_qitem_rec *q)
{
    (void)q;
    ++*(int *)ctx;
    return 0;
}

static void queue_scan_reports_an_error_after_part_of_the_queue(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    int n = 0;
    assert_int_equal(sbd_store_queue_scan(st, count_item, &n, &err), 0);
    assert_int_equal(n, 2);
    n = 0;
    fail_after("ORDER BY q.due_at,q.id", 1);
    assert_int_equal(sbd_store_queue_scan(st, count_item, &n, &err), SB_EIO);
    assert_int_equal(n, 1); /* the caller was told it has only part of it */
    assert_non_null(strstr(err.msg, "database"));
}

static void engine_start_fails_rather_than_start_with_half_its_queue(void **state)
{
    (void)state;
    static struct sbd sbd;
    memset(&sbd, 0, sizeof sbd);
    assert_int_equal(sbd_registry_new(&sbd.registry), 0);
    struct sbd_engine *e = NULL;
    struct sb_err err = { 0 };
    fail_after("ORDER BY q.due_at,q.id", 1);
    int rc = sbd_engine_start(&sbd, &e, &err);
    heal();
    assert_int_not_equal(rc, 0);
    assert_null(e);
    assert_non_null(strstr(err.msg, "cannot load the queue"));
    sbd_registry_free(sbd.registry);
}

static void runs_view_is_null_not_a_short_page(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    struct sbd_run_filter f = { .status = -1, .limit = 20 };
    json_t *all = api_view_runs(st, &f, NULL, &err);
    assert_int_equal(json_array_size(all), 2);
    json_decref(all);
    fail_after("FROM runs r WHERE 1=1", 1);
    assert_null(api_view_runs(st, &f, NULL, &err));
    assert_int_equal(err.code, SB_EIO);
    fail_after("FROM steps WHERE run_id=? ORDER BY", 2);
    assert_null(api_view_run_steps(st, RUN_A, &err));
    fail_after("FROM queue q LEFT JOIN waits", 0); /* the queue part of a running run */
    assert_null(api_view_run(st, RUN_A, NULL, &err));
    assert_int_not_equal(err.code, SB_ENOTFOUND);
}

static int never(void *ctx, const struct sbd_wait_rec *w, const char *trigger, int64_t rows,
                 int flags)
{
    (void)w, (void)trigger, (void)rows, (void)flags;
    ++*(int *)ctx;
    return 0;
}

static void waits_scan_failure_calls_nobody_and_reports(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_begin(st, &err), 0);
    struct sbd_wait_rec w = {
        .item_id = 1, .run_id = RUN_A, .step_hash = "h1", .event_name = "x/y"
    };
    assert_int_equal(sbd_store_wait_put(st, &w, &err), 0);
    w = (struct sbd_wait_rec){
        .item_id = 2, .run_id = RUN_B, .step_hash = "h2", .event_name = "x/y"
    };
    assert_int_equal(sbd_store_wait_put(st, &w, &err), 0);
    int called = 0;
    fail_after("WHERE w.event_name=?", 1);
    int rc = sbd_store_waits_for(st, "x/y", never, &called, &err);
    heal();
    sbd_store_rollback(st);
    assert_int_equal(rc, SB_EIO);
    assert_int_equal(called, 0); /* not the first wait and then silence */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(run_state_fails_when_the_step_scan_breaks_midway, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            run_state_of_a_missing_run_is_not_found_but_a_failed_read_is_not, setup, teardown),
        cmocka_unit_test_setup_teardown(next_seq_and_rate_count_return_errors_not_zero, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(one_row_reads_and_scans_fill_err_when_they_fail, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(rate_limit_that_cannot_count_does_not_admit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(event_dedupe_lookup_failure_is_an_error_not_a_new_event,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(queue_scan_reports_an_error_after_part_of_the_queue, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(engine_start_fails_rather_than_start_with_half_its_queue,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(runs_view_is_null_not_a_short_page, setup, teardown),
        cmocka_unit_test_setup_teardown(waits_scan_failure_calls_nobody_and_reports, setup,
                                        teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    /* the engine test's read connection (the thread keeps it until then) */
    sbd_store_close_readers();
    return failed;
}
