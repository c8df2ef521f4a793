/* Unit tests for the PostgreSQL store backend, its records: an event, a
 * run, a step, a queue row with its lease, a wait, flow keys, a throttle, a
 * rate hit, a cron, a deferred batch with its event read back as they were
 * written (and deferred_put replacing a row of the same key as SQLite's
 * INSERT OR REPLACE does); the writable connection's tally surviving
 * rollbacks. Against a real server: see pg_fixture.h (SYSBUS_TEST_PG_URL). */
#include "pg_fixture.h"

#ifdef SBD_STORE_POSTGRES

/* ---- the records ---- */

#define EV1 "01EVREC0000000000000000001"
#define EV2 "01EVREC0000000000000000002"
#define RUN1 "01RUNREC000000000000000001"

struct seen {
    int n;
    struct sbd_qitem_rec q;
    struct sbd_wait_rec w;
    char run_id[SB_ULID_SIZE], step_id[48], function_id[48], event_id[SB_ULID_SIZE];
    char lease_keys[64], event_name[32], expression[64], trigger[64];
    int64_t rows;
    int flags;
};

static int seen_queue(void *ctx, const struct sbd_qitem_rec *q)
{
    struct seen *s = ctx;
    s->n++;
    s->q = *q;
    snprintf(s->run_id, sizeof s->run_id, "%s", q->run_id);
    snprintf(s->step_id, sizeof s->step_id, "%s", q->step_id);
    snprintf(s->function_id, sizeof s->function_id, "%s", q->function_id);
    snprintf(s->event_id, sizeof s->event_id, "%s", q->event_id);
    snprintf(s->lease_keys, sizeof s->lease_keys, "%s", q->lease_keys ? q->lease_keys : "-");
    return 0;
}

static int seen_wait(void *ctx, const struct sbd_wait_rec *w, const char *trigger, int64_t rows,
                     int flags)
{
    struct seen *s = ctx;
    s->n++;
    s->w = *w;
    snprintf(s->event_name, sizeof s->event_name, "%s", w->event_name);
    snprintf(s->expression, sizeof s->expression, "%s", w->expression ? w->expression : "-");
    snprintf(s->trigger, sizeof s->trigger, "%s", trigger);
    s->rows = rows;
    s->flags = flags;
    return 0;
}

static int seen_step(void *ctx, const struct sbd_step_rec *st)
{
    struct seen *s = ctx;
    s->n++;
    assert_string_equal(st->hash, "h1");
    assert_int_equal(st->seq, 0);
    assert_string_equal(st->name, "first");
    assert_string_equal(st->op, "StepRun");
    assert_int_equal(st->status, STEP_COMPLETED);
    assert_int_equal(st->attempts, 2);
    assert_string_equal(st->output, "{\"data\":{\"x\":1}}");
    assert_null(st->error);
    assert_int_equal(st->started_at, 1010);
    assert_int_equal(st->ended_at, 1020);
    return 0;
}

static int seen_run(void *ctx, const struct sbd_run_info *r)
{
    struct seen *s = ctx;
    s->n++;
    assert_string_equal(r->id, RUN1);
    assert_string_equal(r->function_id, "app-f");
    assert_string_equal(r->app_id, "app");
    assert_string_equal(r->event_id, EV1);
    assert_int_equal(r->created_at, 1000);
    snprintf(s->run_id, sizeof s->run_id, "%d", r->status);
    s->q.started_at = r->started_at;
    s->q.due_at = r->ended_at;
    snprintf(s->trigger, sizeof s->trigger, "%s", r->output ? r->output : "-");
    return 0;
}

static int seen_event(void *ctx, const struct sbd_ev_rec *e)
{
    struct seen *s = ctx;
    s->n++;
    assert_string_equal(e->id, EV1);
    assert_string_equal(e->name, "rec/one");
    assert_string_equal(e->body, "{\"name\":\"rec/one\",\"data\":{}}");
    assert_int_equal(e->ts, 990);
    assert_int_equal(e->received_at, 1000);
    assert_string_equal(e->dedupe_key, "user-7");
    return 0;
}

/* An event, its run, a step, a queue row with its lease, and a wait. */
static void write_run_records(struct sbd_store *st, struct sb_err *err)
{
    struct sbd_ev_rec ev = { .id = EV1,
                             .name = "rec/one",
                             .body = "{\"name\":\"rec/one\",\"data\":{}}",
                             .ts = 990,
                             .received_at = 1000,
                             .dedupe_key = "user-7" };
    bool inserted = false;
    assert_int_equal(sbd_store_event_insert(st, &ev, &inserted, err), 0);
    assert_true(inserted);
    struct sbd_run_rec run = {
        .id = RUN1, .function_id = "app-f", .app_id = "app", .event_id = EV1, .created_at = 1000
    };
    assert_int_equal(sbd_store_run_insert(st, &run, err), 0);
    assert_int_equal(sbd_store_run_progress(st, RUN1, 1005, 2, err), 0);
    struct sbd_step_rec step = { .run_id = RUN1,
                                 .hash = "h1",
                                 .seq = 0,
                                 .name = "first",
                                 .op = "StepRun",
                                 .status = STEP_COMPLETED,
                                 .attempts = 2,
                                 .output = "{\"data\":{\"x\":1}}",
                                 .started_at = 1010,
                                 .ended_at = 1020 };
    assert_int_equal(sbd_store_step_put(st, &step, err), 0);
    struct sbd_qitem_rec q = { .id = 42,
                               .run_id = RUN1,
                               .step_id = "h2",
                               .attempt = 3,
                               .due_at = 1796305610104,
                               .started_at = 1030,
                               .transport_failures = 1,
                               .transport_since = 1040,
                               .last_error = "{\"message\":\"x\"}",
                               .flags = QF_WAIT };
    assert_int_equal(sbd_store_queue_put(st, &q, err), 0);
    assert_int_equal(sbd_store_queue_lease(st, 42, 5000, "[\"k1\"]", err), 0);
    struct sbd_wait_rec w = { .item_id = 42,
                              .run_id = RUN1,
                              .step_hash = "h2",
                              .event_name = "rec/two",
                              .expression = "event.data.a == 1",
                              .created_at = 1050 };
    assert_int_equal(sbd_store_wait_put(st, &w, err), 0);
}

static int count_run(void *ctx, const char *run_id, int64_t created_at, const char *trigger)
{
    assert_string_equal(run_id, RUN1);
    assert_int_equal(created_at, 1000);
    assert_string_equal(trigger, "{\"name\":\"rec/one\",\"data\":{}}");
    ++*(int *)ctx;
    return 0;
}

static void the_run_records_read_back_as_written(void **state)
{
    (void)state;
    struct sbd_store *st = open_store();
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_begin(st, &err), 0);
    write_run_records(st, &err);
    assert_int_equal(sbd_store_commit(st, &err), 0);

    struct seen s = { 0 };
    assert_int_equal(sbd_store_event_get(st, EV1, seen_event, &s, &err), 0);
    char id[SB_ULID_SIZE];
    assert_int_equal(sbd_store_event_find_dedupe(st, "user-7", 1000, id, &err), 0);
    assert_string_equal(id, EV1);
    assert_int_equal(sbd_store_event_find_dedupe(st, "user-7", 1001, id, &err), SB_ENOTFOUND);
    assert_int_equal(sbd_store_run_get(st, RUN1, seen_run, &s, &err), 0);
    assert_string_equal(s.run_id, "0"); /* Running */
    assert_int_equal(s.q.started_at, 1005);
    assert_int_equal(s.q.due_at, SBD_STORE_NO_TIME); /* not ended */
    assert_int_equal(sbd_store_run_steps(st, RUN1, seen_step, &s, &err), 0);
    assert_int_equal(s.n, 3);

    memset(&s, 0, sizeof s);
    assert_int_equal(sbd_store_queue_scan(st, seen_queue, &s, &err), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.q.id, 42);
    assert_string_equal(s.run_id, RUN1);
    assert_string_equal(s.step_id, "h2");
    assert_int_equal(s.q.attempt, 3);
    assert_int_equal(s.q.due_at, 1796305610104);
    assert_int_equal(s.q.started_at, 1030);
    assert_int_equal(s.q.transport_failures, 1);
    assert_int_equal(s.q.transport_since, 1040);
    assert_int_equal(s.q.flags, QF_WAIT);
    assert_string_equal(s.function_id, "app-f");
    assert_string_equal(s.event_id, EV1);
    assert_int_equal(s.q.lease_until, 5000);
    assert_string_equal(s.lease_keys, "[\"k1\"]");
    int64_t max_id = 0;
    assert_int_equal(sbd_store_queue_max_id(st, &max_id, &err), 0);
    assert_int_equal(max_id, 42);

    memset(&s, 0, sizeof s);
    assert_true(sbd_store_has_waits(st));
    assert_int_equal(sbd_store_waits_for(st, "rec/two", seen_wait, &s, &err), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.w.item_id, 42);
    assert_string_equal(s.expression, "event.data.a == 1");
    assert_string_equal(s.trigger, "{\"name\":\"rec/one\",\"data\":{}}");
    assert_int_equal(s.rows, 1);
    assert_int_equal(s.flags, QF_WAIT);
    /* a cancellation's window, in ms (beyond a 32-bit integer) */
    int n = 0;
    assert_int_equal(
        sbd_store_running_runs(st, NULL, "app-f", 1000, 1796305610104, count_run, &n, &err), 0);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(sbd_store_running_runs(st, "app", NULL, 1796305610104, 0, count_run, &n, &err),
                     0);
    assert_int_equal(n, 0); /* created before the window */
    assert_int_equal(sbd_store_running_runs(st, "app", NULL, 0, 1001, count_run, &n, &err), 0);
    assert_int_equal(n, 1);
    int64_t seq = -1;
    assert_int_equal(sbd_store_next_seq(st, RUN1, &seq, &err), 0);
    assert_int_equal(seq, 1);

    struct sbd_run_state rs;
    assert_int_equal(sbd_store_run_state(st, RUN1, &rs, &err), 0);
    assert_string_equal(rs.function_id, "app-f");
    assert_int_equal(rs.req_version, 2);
    assert_int_equal(rs.nsteps, 1);
    assert_string_equal(rs.steps[0].hash, "h1");
    assert_string_equal(rs.steps[0].output, "{\"data\":{\"x\":1}}");
    assert_null(rs.events);
    sbd_run_state_free(&rs);
    assert_int_equal(sbd_store_run_state(st, "01NOSUCHRUN000000000000000", &rs, &err),
                     SB_ENOTFOUND);

    /* the end of the run takes its queue rows and waits with it */
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(
        sbd_store_run_finish(st, RUN1, RUN_COMPLETED, "{\"ok\":1}", NULL, 0, 2000, &err), 0);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    assert_false(sbd_store_has_waits(st));
    memset(&s, 0, sizeof s);
    assert_int_equal(sbd_store_run_get(st, RUN1, seen_run, &s, &err), 0);
    assert_string_equal(s.run_id, "1");
    assert_int_equal(s.q.due_at, 2000);
    assert_string_equal(s.trigger, "{\"ok\":1}");
    assert_int_equal(sbd_store_queue_scan(st, seen_queue, &s, &err), 0);
    assert_int_equal(s.n, 1); /* the run_get only */
    sbd_store_close(st);
}

static int seen_cron(void *ctx, const struct sbd_cron_rec *c)
{
    struct seen *s = ctx;
    s->n++;
    assert_string_equal(c->function_id, "app-cron");
    assert_int_equal(c->idx, 1);
    assert_string_equal(c->expression, "*/5 * * * *");
    assert_int_equal(c->next_at, 1796305610104);
    return 0;
}

static void seen_throttle(void *ctx, const char *key, int64_t tat)
{
    struct seen *s = ctx;
    s->n++;
    assert_string_equal(key, "t1");
    s->rows = tat;
}

static void the_flow_records_read_back_as_written(void **state)
{
    (void)state;
    struct sbd_store *st = open_store();
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(sbd_store_flow_key_put(st, FLOW_IDEMPOTENCY, "i1", RUN1, 90000, &err), 0);
    assert_int_equal(sbd_store_throttle_put(st, "t1", 1796305610104, &err), 0);
    assert_int_equal(sbd_store_throttle_put(st, "t1", 1000, &err), 0); /* never goes back */
    assert_int_equal(sbd_store_rate_hit(st, "r1", 100, &err), 0);
    assert_int_equal(sbd_store_rate_hit(st, "r1", 200, &err), 0);
    struct sbd_cron_rec c = { "app-cron", 1, "*/5 * * * *", 1796305610104 };
    assert_int_equal(sbd_store_cron_put(st, &c, &err), 0);
    struct sbd_deferred_rec d = { .id = "01DEFREC000000000000000001",
                                  .kind = DEFER_BATCH,
                                  .function_id = "app-f",
                                  .app_id = "app",
                                  .key = "k",
                                  .event_id = EV2,
                                  .size = 2,
                                  .first_at = 100,
                                  .due_at = 1796305610104 };
    assert_int_equal(sbd_store_deferred_put(st, &d, &err), 0);
    assert_int_equal(sbd_store_run_event_add(st, d.id, 0, EV2, &err), 0);
    assert_int_equal(sbd_store_commit(st, &err), 0);

    char *run_id = NULL;
    int64_t expires = 0, count = 0;
    assert_int_equal(sbd_store_flow_key_get(st, FLOW_IDEMPOTENCY, "i1", &run_id, &expires, &err),
                     0);
    assert_string_equal(run_id, RUN1);
    assert_int_equal(expires, 90000);
    free(run_id);
    assert_int_equal(sbd_store_flow_key_get(st, FLOW_SINGLETON, "i1", &run_id, &expires, &err),
                     SB_ENOTFOUND);
    struct seen s = { 0 };
    assert_int_equal(sbd_store_throttles_scan(st, 1000, seen_throttle, &s, &err), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.rows, 1796305610104);
    assert_int_equal(sbd_store_rate_count(st, "r1", 150, &count, &err), 0);
    assert_int_equal(count, 1);
    char *expr = NULL;
    int64_t next_at = 0;
    assert_int_equal(sbd_store_cron_get(st, "app-cron", 1, &expr, &next_at, &err), 0);
    assert_string_equal(expr, "*/5 * * * *");
    assert_int_equal(next_at, 1796305610104);
    free(expr);
    assert_int_equal(sbd_store_cron_get(st, "app-cron", 2, &expr, &next_at, &err), SB_ENOTFOUND);
    s.n = 0;
    assert_int_equal(sbd_store_crons_scan(st, seen_cron, &s, &err), 0);
    assert_int_equal(s.n, 1);

    struct sbd_deferred_rec got;
    assert_int_equal(sbd_store_deferred_find(st, DEFER_BATCH, "app-f", "k", &got, &err), 0);
    assert_string_equal(got.id, d.id);
    assert_int_equal(got.kind, DEFER_BATCH);
    assert_string_equal(got.app_id, "app");
    assert_string_equal(got.event_id, EV2);
    assert_int_equal(got.size, 2);
    assert_int_equal(got.first_at, 100);
    assert_int_equal(got.due_at, 1796305610104);
    sbd_deferred_rec_free(&got);
    bool held = false;
    int64_t due = 0;
    assert_int_equal(sbd_store_event_held(st, EV2, &held, &due, &err), 0);
    assert_true(held);
    assert_int_equal(due, 1796305610104);

    /* as SQLite's INSERT OR REPLACE: another id with the same key replaces it */
    snprintf(d.id, sizeof d.id, "%s", "01DEFREC000000000000000002");
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(sbd_store_deferred_put(st, &d, &err), 0);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    assert_int_equal(sbd_store_deferred_get(st, "01DEFREC000000000000000001", &got, &err),
                     SB_ENOTFOUND);
    assert_int_equal(sbd_store_deferred_find(st, DEFER_BATCH, "app-f", "k", &got, &err), 0);
    assert_string_equal(got.id, d.id);
    sbd_deferred_rec_free(&got);
    sbd_store_close(st);
}

static int count_one(void *ctx, const struct sbd_wait_rec *w, const char *trigger, int64_t rows,
                     int flags)
{
    (void)w, (void)trigger, (void)rows, (void)flags;
    ++*(int *)ctx;
    return 0;
}

/* As test_store.c's test of the SQLite backend: a rolled-back delete leaves
 * its wait counted, or events would stop looking for it. */
static void rolled_back_deletes_leave_the_waits_counted(void **state)
{
    (void)state;
    struct sbd_store *st = open_store();
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_begin(st, &err), 0);
    write_run_records(st, &err);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    bool deleted = false;
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(sbd_store_savepoint(st, &err), 0);
    assert_int_equal(sbd_store_wait_delete(st, 42, &deleted, &err), 0);
    assert_true(deleted);
    assert_false(sbd_store_has_waits(st));
    sbd_store_rollback_savepoint(st);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    assert_true(sbd_store_has_waits(st));
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(sbd_store_run_finish(st, RUN1, RUN_CANCELLED, NULL, NULL, 1, 2, &err), 0);
    assert_false(sbd_store_has_waits(st));
    sbd_store_rollback(st);
    assert_true(sbd_store_has_waits(st));
    int n = 0;
    assert_int_equal(sbd_store_waits_for(st, "rec/two", count_one, &n, &err), 0);
    assert_int_equal(n, 1);
    sbd_store_close(st);
}

int main(void)
{
    if (!pg_wanted("test_store_pg_records"))
        return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(the_run_records_read_back_as_written, setup, teardown),
        cmocka_unit_test_setup_teardown(the_flow_records_read_back_as_written, setup, teardown),
        cmocka_unit_test_setup_teardown(rolled_back_deletes_leave_the_waits_counted, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else
PG_SKIPPED_MAIN("test_store_pg_records")
#endif
