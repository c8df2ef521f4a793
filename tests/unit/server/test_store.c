/* Unit tests for the store: store URLs (--store, --data-dir's shorthand,
 * unknown schemes), and the SQLite backend's schema creation and version
 * refusal, event dedupe, run state round trip, finishing a run clears its
 * queue, retention purge, deferred starts (debounce/batch rows), the
 * migrations from version 2, and the writable connection's counts surviving
 * a rollback. Each test uses its own temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/api/views.h"
#include "server/store/store.h"

static char dir[64];
static char url[96]; /* sqlite://<dir>/sysbus.db */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/sbstoreXXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(url, sizeof url, "sqlite://%s/sysbus.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void newer_schema_is_refused(void **state)
{
    (void)state;
    struct sbd_store *st;
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_open(url, &st, &err), 0);
    int version = -1;
    assert_int_equal(sbd_store_schema_version(st, &version, &err), 0);
    assert_int_equal(version, SBD_STORE_SCHEMA_VERSION);
    sbd_store_close(st);
    char path[128];
    snprintf(path, sizeof path, "%s/sysbus.db", dir);
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL);
    sqlite3_close(db);
    assert_int_equal(sbd_store_open(url, &st, &err), SB_ECONFIG);
    assert_non_null(strstr(err.msg, "newer"));
}

static void events_dedupe_and_runs_round_trip(void **state)
{
    (void)state;
    struct sbd_store *st;
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_open(url, &st, &err), 0);
    assert_int_equal(sbd_store_begin(st, &err), 0);
    struct sbd_ev_rec ev = { .name = "a/b",
                             .body = "{\"name\":\"a/b\"}",
                             .ts = 1,
                             .received_at = 1000,
                             .dedupe_key = "user-key" };
    sb_ulid_new(1000, ev.id); /* ids carry their time: retention purges by id */
    bool inserted;
    assert_int_equal(sbd_store_event_insert(st, &ev, &inserted, &err), 0);
    assert_true(inserted);
    assert_int_equal(sbd_store_event_insert(st, &ev, &inserted, &err), 0);
    assert_false(inserted); /* same id: idempotent */
    char found[SB_ULID_SIZE];
    assert_int_equal(sbd_store_event_find_dedupe(st, "user-key", 0, found, &err), 0);
    assert_string_equal(found, ev.id);
    assert_int_equal(sbd_store_event_find_dedupe(st, "user-key", 2000, found, &err), SB_ENOTFOUND);

    struct sbd_run_rec run = { .function_id = "app-f", .app_id = "app", .created_at = 1000 };
    sb_ulid_new(1000, run.id);
    memcpy(run.event_id, ev.id, sizeof run.event_id);
    assert_int_equal(sbd_store_run_insert(st, &run, &err), 0);
    struct sbd_qitem_rec q = { .id = 1, .run_id = run.id, .step_id = "step", .due_at = 1000 };
    assert_int_equal(sbd_store_queue_put(st, &q, &err), 0);
    struct sbd_step_rec s = { .run_id = run.id,
                              .hash = "aaaa",
                              .seq = 0,
                              .name = "one",
                              .op = "StepRun",
                              .status = STEP_COMPLETED,
                              .attempts = 1,
                              .output = "{\"data\":1}",
                              .started_at = 1000,
                              .ended_at = 1001 };
    assert_int_equal(sbd_store_step_put(st, &s, &err), 0);
    assert_int_equal(sbd_store_commit(st, &err), 0);

    struct sbd_run_state rs;
    assert_int_equal(sbd_store_run_state(st, run.id, &rs, &err), 0);
    assert_int_equal(rs.nsteps, 1);
    assert_string_equal(rs.steps[0].output, "{\"data\":1}");
    assert_string_equal(rs.event, "{\"name\":\"a/b\"}");
    sbd_run_state_free(&rs);

    int64_t qrows, running;
    assert_int_equal(sbd_store_counts(st, &qrows, &running, &err), 0);
    assert_int_equal(qrows, 1);
    assert_int_equal(running, 1);

    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(
        sbd_store_run_finish(st, run.id, RUN_COMPLETED, "{\"ok\":true}", NULL, 1000, 2000, &err),
        0);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    assert_int_equal(sbd_store_counts(st, &qrows, &running, &err), 0);
    assert_int_equal(qrows, 0); /* status and queue rows change together */
    assert_int_equal(running, 0);

    json_t *rj = api_view_run(st, run.id, NULL, &err);
    assert_string_equal(json_string_value(json_object_get(rj, "status")), "Completed");
    json_decref(rj);

    /* retention: the run ended at 2000; purge everything before 3000 */
    int deleted = 0;
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(sbd_store_purge(st, 3000, 100, &deleted, &err), 0);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    assert_int_equal(deleted, 2); /* the run, then its event */
    assert_null(api_view_run(st, run.id, NULL, &err));
    assert_null(api_view_event(st, ev.id, &err));
    assert_int_equal(err.code, SB_ENOTFOUND); /* absent, not a store error */
    sbd_store_close(st);
}

static int collect_due(void *ctx, const char *id)
{
    snprintf(ctx, SB_ULID_SIZE, "%s", id);
    return 0;
}

static void deferred_rows_hold_events_until_due(void **state)
{
    (void)state;
    struct sbd_store *st;
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_open(url, &st, &err), 0);
    assert_int_equal(sbd_store_begin(st, &err), 0);
    struct sbd_deferred_rec d = { .id = "01BATCH0000000000000000000",
                                  .kind = 2,
                                  .function_id = "app-f",
                                  .app_id = "app",
                                  .key = "u1",
                                  .event_id = "01EVENTA000000000000000000",
                                  .size = 2,
                                  .first_at = 1000,
                                  .due_at = 3000 };
    assert_int_equal(sbd_store_deferred_put(st, &d, &err), 0);
    assert_int_equal(sbd_store_run_event_add(st, d.id, 0, "01EVENTA000000000000000000", &err), 0);
    assert_int_equal(sbd_store_run_event_add(st, d.id, 1, "01EVENTB000000000000000000", &err), 0);
    assert_int_equal(sbd_store_commit(st, &err), 0);

    struct sbd_deferred_rec got;
    assert_int_equal(sbd_store_deferred_find(st, 2, "app-f", "u1", &got, &err), 0);
    assert_string_equal(got.id, d.id);
    assert_int_equal(got.size, 2);
    assert_int_equal(got.due_at, 3000);
    sbd_deferred_rec_free(&got);
    assert_int_equal(sbd_store_deferred_find(st, 2, "app-f", "u2", &got, &err), SB_ENOTFOUND);
    assert_int_equal(sbd_store_deferred_find(st, 1, "app-f", "u1", &got, &err), SB_ENOTFOUND);

    int64_t due = 0;
    bool held = false;
    assert_int_equal(sbd_store_event_held(st, "01EVENTB000000000000000000", &held, &due, &err), 0);
    assert_true(held);
    assert_int_equal(due, 3000);
    assert_int_equal(sbd_store_event_held(st, "01EVENTC000000000000000000", &held, &due, &err), 0);
    assert_false(held);

    char fired[SB_ULID_SIZE] = "";
    int64_t earliest;
    assert_int_equal(sbd_store_deferred_due(st, 2999, collect_due, fired, &earliest, &err), 0);
    assert_string_equal(fired, "");
    assert_int_equal(earliest, 3000);
    assert_int_equal(sbd_store_deferred_due(st, 3000, collect_due, fired, &earliest, &err), 0);
    assert_string_equal(fired, d.id);

    /* the run starts: the row goes, its events follow the run */
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(sbd_store_deferred_delete(st, d.id, &err), 0);
    assert_int_equal(sbd_store_run_events_move(st, d.id, "01RUN00000000000000000000", &err), 0);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    assert_int_equal(sbd_store_event_held(st, "01EVENTB000000000000000000", &held, &due, &err), 0);
    assert_false(held);
    assert_int_equal(sbd_store_deferred_get(st, d.id, &got, &err), SB_ENOTFOUND);
    sbd_store_close(st);
}

static void version_2_store_is_migrated(void **state)
{
    (void)state;
    struct sbd_store *st;
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_open(url, &st, &err), 0);
    sbd_store_close(st);
    char path[128];
    snprintf(path, sizeof path, "%s/sysbus.db", dir);
    sqlite3 *db;
    sqlite3_open(path, &db); /* back to what a version 2 store looked like */
    assert_int_equal(
        sqlite3_exec(db,
                     "DROP TABLE deferred; DROP TABLE run_events; ALTER TABLE queue DROP COLUMN "
                     "lease_until; ALTER TABLE queue DROP COLUMN lease_keys; "
                     "PRAGMA user_version=2",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(sbd_store_open(url, &st, &err), 0);
    int version = -1;
    assert_int_equal(sbd_store_schema_version(st, &version, &err), 0);
    assert_int_equal(version, SBD_STORE_SCHEMA_VERSION);
    struct sbd_deferred_rec got;
    assert_int_equal(sbd_store_deferred_find(st, 1, "f", "k", &got, &err), SB_ENOTFOUND);
    sbd_store_close(st);
}

static void store_urls_name_a_backend_of_this_build(void **state)
{
    (void)state;
    struct sb_err err = { 0 };
    char *u = NULL;
    assert_int_equal(sbd_store_url(NULL, "/var/lib/sysbus", &u, &err), 0);
    assert_string_equal(u, "sqlite:///var/lib/sysbus/sysbus.db"); /* --data-dir's shorthand */
    free(u);
    assert_int_equal(sbd_store_url("", ".sysbus", &u, &err), 0);
    assert_string_equal(u, "sqlite://.sysbus/sysbus.db");
    free(u);
    assert_int_equal(sbd_store_url("sqlite:///srv/bus.db", ".sysbus", &u, &err), 0);
    assert_string_equal(u, "sqlite:///srv/bus.db"); /* --store wins */
    free(u);

    /* a usage error naming what this build has, never echoing the URL (a
     * password may be in it) */
    assert_int_equal(sbd_store_url("mysql://bus:s3cret@db/bus", ".", &u, &err), SB_EINVAL);
    assert_null(u);
    assert_non_null(strstr(err.msg, "unknown store scheme 'mysql'"));
    assert_non_null(strstr(err.msg, "sqlite://"));
    assert_null(strstr(err.msg, "s3cret"));
#ifdef SBD_STORE_POSTGRES
    assert_non_null(strstr(err.msg, "postgres://")); /* built with libpq: a backend */
    assert_int_equal(sbd_store_url("postgres://bus:s3cret@db/bus", ".", &u, &err), 0);
    assert_string_equal(u, "postgres://bus:s3cret@db/bus");
    free(u);
#else
    assert_int_equal(sbd_store_url("postgres://bus:s3cret@db/bus", ".", &u, &err), SB_EINVAL);
    assert_null(strstr(err.msg, "s3cret"));
#endif
    assert_int_equal(sbd_store_url("/srv/bus.db", ".", &u, &err), SB_EINVAL);
    assert_non_null(strstr(err.msg, "scheme://"));
    assert_int_equal(sbd_store_url("sqlite://", ".", &u, &err), SB_EINVAL);
    struct sbd_store *st;
    assert_int_equal(sbd_store_open("nosuch://x", &st, &err), SB_EINVAL);
}

static void relative_sqlite_url_is_under_the_working_directory(void **state)
{
    (void)state;
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    struct sbd_store *st;
    struct sb_err err = { 0 };
    int rc = sbd_store_open("sqlite://data/bus.db", &st, &err);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, 0);
    assert_string_equal(sbd_store_kind(), "sqlite");
    sbd_store_close(st);
    char path[128];
    struct stat sb;
    snprintf(path, sizeof path, "%s/data/bus.db", dir); /* its directory made as well */
    assert_int_equal(stat(path, &sb), 0);
}

static int count_wait(void *ctx, const struct sbd_wait_rec *w, const char *trigger, int64_t rows,
                      int flags)
{
    (void)w, (void)trigger, (void)rows, (void)flags;
    ++*(int *)ctx;
    return 0;
}

/* A wait deleted by an operation that is then rolled back is open again,
 * and the connection must still count it: events look for waits only while
 * it counts some (a count of 0 would leave the wait unresolved forever). */
static void rolled_back_deletes_leave_the_waits_counted(void **state)
{
    (void)state;
    struct sbd_store *st;
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_open(url, &st, &err), 0);
    struct sbd_wait_rec w = { .item_id = 7,
                              .run_id = "01RUNW0000000000000000000",
                              .step_hash = "h",
                              .event_name = "x/y",
                              .created_at = 1 };
    struct sbd_wait_rec c = { .item_id = 8,
                              .run_id = "01RUNW0000000000000000000",
                              .step_hash = "i",
                              .child_run_id = "01CHILD000000000000000000",
                              .created_at = 1 };
    assert_int_equal(sbd_store_begin(st, &err), 0);
    struct sbd_ev_rec ev = { .id = "01EVW00000000000000000000", .name = "a/b", .body = "{}" };
    bool inserted;
    assert_int_equal(sbd_store_event_insert(st, &ev, &inserted, &err), 0);
    struct sbd_run_rec run = { .id = "01RUNW0000000000000000000",
                               .function_id = "app-f",
                               .app_id = "app",
                               .event_id = "01EVW00000000000000000000" };
    assert_int_equal(sbd_store_run_insert(st, &run, &err), 0);
    assert_int_equal(sbd_store_wait_put(st, &w, &err), 0);
    assert_int_equal(sbd_store_wait_put(st, &c, &err), 0);
    assert_int_equal(sbd_store_commit(st, &err), 0);

    /* one writer op's savepoint rolled back (its apply failed) */
    bool deleted = false;
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(sbd_store_savepoint(st, &err), 0);
    assert_int_equal(sbd_store_wait_delete(st, 7, &deleted, &err), 0);
    assert_true(deleted);
    assert_int_equal(sbd_store_wait_delete(st, 8, &deleted, &err), 0);
    sbd_store_rollback_savepoint(st);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    assert_true(sbd_store_has_waits(st));
    int n = 0;
    assert_int_equal(sbd_store_waits_for(st, "x/y", count_wait, &n, &err), 0);
    assert_int_equal(n, 1);

    /* a whole transaction rolled back (its commit failed) after the run
     * ended, which deletes its waits */
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(sbd_store_run_finish(st, w.run_id, RUN_CANCELLED, NULL, NULL, 1, 2, &err), 0);
    assert_false(sbd_store_has_waits(st));
    sbd_store_rollback(st);
    assert_true(sbd_store_has_waits(st));
    struct sbd_wait_rec got;
    int64_t rows;
    int flags;
    assert_int_equal(sbd_store_wait_for_child(st, c.child_run_id, &got, &rows, &flags, &err), 0);
    assert_string_equal(got.step_hash, "i");
    sbd_wait_rec_free(&got);
    sbd_store_close(st);
}

static int wait_rows(void *ctx, const struct sbd_wait_rec *w, const char *trigger, int64_t rows,
                     int flags)
{
    (void)w, (void)trigger, (void)flags;
    *(int64_t *)ctx = rows;
    return 0;
}

/* A waiting run's own queue rows decide whether the transaction that
 * resolves the wait also adds the next discovery call (a count of 1: the
 * wait's timeout item is all it has). Its timeouts.finish row is not a step:
 * counted, the run would get that call only in a later commit, and a crash
 * in between would leave it with nothing to do but its deadline. */
static void a_deadline_row_does_not_count_as_a_step_of_a_waiting_run(void **state)
{
    (void)state;
    struct sbd_store *st;
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_open(url, &st, &err), 0);
#define RUN_D "01RUND0000000000000000000"
    const char *run_id = RUN_D;
    assert_int_equal(sbd_store_begin(st, &err), 0);
    struct sbd_ev_rec ev = { .id = "01EVD00000000000000000000", .name = "a/b", .body = "{}" };
    bool inserted;
    assert_int_equal(sbd_store_event_insert(st, &ev, &inserted, &err), 0);
    struct sbd_run_rec run = { .id = RUN_D,
                               .function_id = "app-f",
                               .app_id = "app",
                               .event_id = "01EVD00000000000000000000" };
#undef RUN_D
    assert_int_equal(sbd_store_run_insert(st, &run, &err), 0);
    struct sbd_qitem_rec wait_item = {
        .id = 11, .run_id = run_id, .step_id = "h", .flags = QF_WAIT
    };
    struct sbd_qitem_rec deadline = {
        .id = 12, .run_id = run_id, .step_id = "deadline", .flags = QF_DEADLINE
    };
    assert_int_equal(sbd_store_queue_put(st, &wait_item, &err), 0);
    assert_int_equal(sbd_store_queue_put(st, &deadline, &err), 0);
    struct sbd_wait_rec w = {
        .item_id = 11, .run_id = run_id, .step_hash = "h", .event_name = "x/d", .created_at = 1
    };
    struct sbd_wait_rec c = { .item_id = 11,
                              .run_id = run_id,
                              .step_hash = "h",
                              .child_run_id = "01CHILDD00000000000000000",
                              .created_at = 1 };
    assert_int_equal(sbd_store_wait_put(st, &w, &err), 0);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    int64_t rows = -1;
    assert_int_equal(sbd_store_waits_for(st, "x/d", wait_rows, &rows, &err), 0);
    assert_int_equal(rows, 1);
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(sbd_store_wait_put(st, &c, &err), 0); /* the same item, as an invoke */
    assert_int_equal(sbd_store_commit(st, &err), 0);
    struct sbd_wait_rec got;
    int flags;
    assert_int_equal(sbd_store_wait_for_child(st, c.child_run_id, &got, &rows, &flags, &err), 0);
    assert_int_equal(rows, 1);
    sbd_wait_rec_free(&got);
    sbd_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(newer_schema_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(a_deadline_row_does_not_count_as_a_step_of_a_waiting_run,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(events_dedupe_and_runs_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(deferred_rows_hold_events_until_due, setup, teardown),
        cmocka_unit_test_setup_teardown(version_2_store_is_migrated, setup, teardown),
        cmocka_unit_test_setup_teardown(store_urls_name_a_backend_of_this_build, setup, teardown),
        cmocka_unit_test_setup_teardown(relative_sqlite_url_is_under_the_working_directory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(rolled_back_deletes_leave_the_waits_counted, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
