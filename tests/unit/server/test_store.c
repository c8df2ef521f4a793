/* Unit tests for the SQLite store: schema creation and version refusal,
 * event dedupe, run state round trip, finishing a run clears its queue,
 * retention purge, deferred starts (debounce/batch rows) and the migrations
 * from version 2. Each test uses its own temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/store/store.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/sbstoreXXXXXX");
    return mkdtemp(dir) ? 0 : -1;
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
    struct sb_store *st;
    struct sb_err err = { 0 };
    assert_int_equal(sb_store_open(dir, &st, &err), 0);
    assert_int_equal(sb_store_schema_version(st), SB_STORE_SCHEMA_VERSION);
    sb_store_close(st);
    char path[128];
    snprintf(path, sizeof path, "%s/sysbus.db", dir);
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL);
    sqlite3_close(db);
    assert_int_equal(sb_store_open(dir, &st, &err), SB_ECONFIG);
    assert_non_null(strstr(err.msg, "newer"));
}

static void events_dedupe_and_runs_round_trip(void **state)
{
    (void)state;
    struct sb_store *st;
    struct sb_err err = { 0 };
    assert_int_equal(sb_store_open(dir, &st, &err), 0);
    assert_int_equal(sb_store_begin(st, &err), 0);
    struct ev_rec ev = { .name = "a/b",
                         .body = "{\"name\":\"a/b\"}",
                         .ts = 1,
                         .received_at = 1000,
                         .dedupe_key = "user-key" };
    sb_ulid_new(1000, ev.id); /* ids carry their time: retention purges by id */
    bool inserted;
    assert_int_equal(sb_store_event_insert(st, &ev, &inserted, &err), 0);
    assert_true(inserted);
    assert_int_equal(sb_store_event_insert(st, &ev, &inserted, &err), 0);
    assert_false(inserted); /* same id: idempotent */
    char found[SB_ULID_SIZE];
    assert_int_equal(sb_store_event_find_dedupe(st, "user-key", 0, found, &err), 0);
    assert_string_equal(found, ev.id);
    assert_int_equal(sb_store_event_find_dedupe(st, "user-key", 2000, found, &err), SB_ENOTFOUND);

    struct run_rec run = { .function_id = "app-f", .app_id = "app", .created_at = 1000 };
    sb_ulid_new(1000, run.id);
    memcpy(run.event_id, ev.id, sizeof run.event_id);
    assert_int_equal(sb_store_run_insert(st, &run, &err), 0);
    struct qitem_rec q = { .id = 1, .run_id = run.id, .step_id = "step", .due_at = 1000 };
    assert_int_equal(sb_store_queue_put(st, &q, &err), 0);
    struct step_rec s = { .run_id = run.id,
                          .hash = "aaaa",
                          .seq = 0,
                          .name = "one",
                          .op = "StepRun",
                          .status = STEP_COMPLETED,
                          .attempts = 1,
                          .output = "{\"data\":1}",
                          .started_at = 1000,
                          .ended_at = 1001 };
    assert_int_equal(sb_store_step_put(st, &s, &err), 0);
    assert_int_equal(sb_store_commit(st, &err), 0);

    struct run_state rs;
    assert_int_equal(sb_store_run_state(st, run.id, &rs, &err), 0);
    assert_int_equal(rs.nsteps, 1);
    assert_string_equal(rs.steps[0].output, "{\"data\":1}");
    assert_string_equal(rs.event, "{\"name\":\"a/b\"}");
    sb_run_state_free(&rs);

    int64_t qrows, running;
    assert_int_equal(sb_store_counts(st, &qrows, &running, &err), 0);
    assert_int_equal(qrows, 1);
    assert_int_equal(running, 1);

    assert_int_equal(sb_store_begin(st, &err), 0);
    assert_int_equal(
        sb_store_run_finish(st, run.id, RUN_COMPLETED, "{\"ok\":true}", NULL, 1000, 2000, &err), 0);
    assert_int_equal(sb_store_commit(st, &err), 0);
    assert_int_equal(sb_store_counts(st, &qrows, &running, &err), 0);
    assert_int_equal(qrows, 0); /* status and queue rows change together */
    assert_int_equal(running, 0);

    json_t *rj = sb_store_run_json(st, run.id, &err);
    assert_string_equal(json_string_value(json_object_get(rj, "status")), "Completed");
    json_decref(rj);

    /* retention: the run ended at 2000; purge everything before 3000 */
    int deleted = 0;
    assert_int_equal(sb_store_begin(st, &err), 0);
    assert_int_equal(sb_store_purge(st, 3000, 100, &deleted, &err), 0);
    assert_int_equal(sb_store_commit(st, &err), 0);
    assert_int_equal(deleted, 2); /* the run, then its event */
    assert_null(sb_store_run_json(st, run.id, &err));
    assert_null(sb_store_event_json(st, ev.id, &err));
    assert_int_equal(err.code, SB_ENOTFOUND); /* absent, not a store error */
    sb_store_close(st);
}

static int collect_due(void *ctx, const char *id)
{
    snprintf(ctx, SB_ULID_SIZE, "%s", id);
    return 0;
}

static void deferred_rows_hold_events_until_due(void **state)
{
    (void)state;
    struct sb_store *st;
    struct sb_err err = { 0 };
    assert_int_equal(sb_store_open(dir, &st, &err), 0);
    assert_int_equal(sb_store_begin(st, &err), 0);
    struct deferred_rec d = { .id = "01BATCH0000000000000000000",
                              .kind = 2,
                              .function_id = "app-f",
                              .app_id = "app",
                              .key = "u1",
                              .event_id = "01EVENTA000000000000000000",
                              .size = 2,
                              .first_at = 1000,
                              .due_at = 3000 };
    assert_int_equal(sb_store_deferred_put(st, &d, &err), 0);
    assert_int_equal(sb_store_run_event_add(st, d.id, 0, "01EVENTA000000000000000000", &err), 0);
    assert_int_equal(sb_store_run_event_add(st, d.id, 1, "01EVENTB000000000000000000", &err), 0);
    assert_int_equal(sb_store_commit(st, &err), 0);

    struct deferred_rec got;
    assert_int_equal(sb_store_deferred_find(st, 2, "app-f", "u1", &got), 0);
    assert_string_equal(got.id, d.id);
    assert_int_equal(got.size, 2);
    assert_int_equal(got.due_at, 3000);
    sb_deferred_rec_free(&got);
    assert_int_equal(sb_store_deferred_find(st, 2, "app-f", "u2", &got), SB_ENOTFOUND);
    assert_int_equal(sb_store_deferred_find(st, 1, "app-f", "u1", &got), SB_ENOTFOUND);

    int64_t due = 0;
    assert_int_equal(sb_store_event_held(st, "01EVENTB000000000000000000", &due), 1);
    assert_int_equal(due, 3000);
    assert_int_equal(sb_store_event_held(st, "01EVENTC000000000000000000", &due), 0);

    char fired[SB_ULID_SIZE] = "";
    int64_t earliest;
    assert_int_equal(sb_store_deferred_due(st, 2999, collect_due, fired, &earliest), 0);
    assert_string_equal(fired, "");
    assert_int_equal(earliest, 3000);
    assert_int_equal(sb_store_deferred_due(st, 3000, collect_due, fired, &earliest), 0);
    assert_string_equal(fired, d.id);

    /* the run starts: the row goes, its events follow the run */
    assert_int_equal(sb_store_begin(st, &err), 0);
    assert_int_equal(sb_store_deferred_delete(st, d.id, &err), 0);
    assert_int_equal(sb_store_run_events_move(st, d.id, "01RUN00000000000000000000", &err), 0);
    assert_int_equal(sb_store_commit(st, &err), 0);
    assert_int_equal(sb_store_event_held(st, "01EVENTB000000000000000000", &due), 0);
    assert_int_equal(sb_store_deferred_get(st, d.id, &got), SB_ENOTFOUND);
    sb_store_close(st);
}

static void version_2_store_is_migrated(void **state)
{
    (void)state;
    struct sb_store *st;
    struct sb_err err = { 0 };
    assert_int_equal(sb_store_open(dir, &st, &err), 0);
    sb_store_close(st);
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
    assert_int_equal(sb_store_open(dir, &st, &err), 0);
    assert_int_equal(sb_store_schema_version(st), SB_STORE_SCHEMA_VERSION);
    struct deferred_rec got;
    assert_int_equal(sb_store_deferred_find(st, 1, "f", "k", &got), SB_ENOTFOUND);
    sb_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(newer_schema_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(events_dedupe_and_runs_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(deferred_rows_hold_events_until_due, setup, teardown),
        cmocka_unit_test_setup_teardown(version_2_store_is_migrated, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
