/* Unit tests for ingest on its own: no engine, no scheduler, no waiters. An
 * event goes through prepare, apply (in a real store's transaction) and
 * committed, and what the commit did reaches the test only through the
 * notification table (docs/internals/ingest.md): runs created, waits
 * resolved, cancels, deferred starts, held events.
 *
 * It also counts how often the event's body is parsed: this program is
 * linked with -Wl,--wrap=sb_json_parse (the Makefile's rule for
 * test_ingest), so the server's calls land in __wrap_sb_json_parse below,
 * which counts those of the body being ingested. An event that a trigger's
 * `if`, priority.run, idempotency, a debounce key, a wait's `if` and a
 * cancelOn `if` all look into is parsed once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "server/ingest.h"
#include "server/qid.h"
#include "server/registry.h"
#include "server/store/store.h"

/* ---- counting parses of one text ---- */

static const char *counted_text; /* the body whose parses are counted */
static int parses;

json_t *__real_sb_json_parse(const char *text, size_t len, struct sb_err *err);
json_t *__wrap_sb_json_parse(const char *text, size_t len, struct sb_err *err);

json_t *__wrap_sb_json_parse(const char *text, size_t len, struct sb_err *err)
{
    if (counted_text && text == counted_text)
        parses++;
    return __real_sb_json_parse(text, len, err);
}

/* ---- what the notifications carried ---- */

static struct {
    size_t runs;
    char run_fn[4][64];
    int64_t run_due[4];
    bool run_has_event[4];
    size_t waits;
    char wait_run[SB_ULID_SIZE];
    char wait_memo[512];
    size_t cancels;
    char cancel_run[SB_ULID_SIZE];
    int64_t deferred_due;
    int held;
} heard;

static void on_runs_created(void *ctx, struct sbd_new_run *runs, size_t n)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        if (heard.runs < 4) {
            snprintf(heard.run_fn[heard.runs], sizeof heard.run_fn[0], "%s", runs[i].function_id);
            heard.run_due[heard.runs] = runs[i].due_at;
            heard.run_has_event[heard.runs] = runs[i].event != NULL;
        }
        heard.runs++;
        free(runs[i].function_id); /* the listener's */
        free(runs[i].event);
    }
}

static void on_waits_resolved(void *ctx, struct sbd_wait_resolution *res, size_t n)
{
    (void)ctx;
    heard.waits += n;
    snprintf(heard.wait_run, sizeof heard.wait_run, "%s", res[0].run_id);
    snprintf(heard.wait_memo, sizeof heard.wait_memo, "%s", res[0].memo);
    sbd_wait_resolutions_free(res, n); /* the listener's */
}

static void on_cancels(void *ctx, char (*ids)[SB_ULID_SIZE], size_t n)
{
    (void)ctx;
    heard.cancels += n;
    snprintf(heard.cancel_run, sizeof heard.cancel_run, "%s", ids[0]);
}

static void on_deferred_changed(void *ctx, int64_t due_at)
{
    (void)ctx;
    heard.deferred_due = due_at;
}

static void on_events_held(void *ctx)
{
    (void)ctx;
    heard.held++;
}

static const struct sbd_ingest_notify table = {
    .deferred_changed = on_deferred_changed,
    .events_held = on_events_held,
    .runs_created = on_runs_created,
    .waits_resolved = on_waits_resolved,
    .cancels = on_cancels,
};

/* ---- a store, a registry, ingest ---- */

static char dir[64];
static struct sbd_store *st;
static struct sbd_registry *reg;
static struct sbd_qids qids;
static struct sbd_ingest *in;

#define STEPS "\"steps\":{\"step\":{\"id\":\"step\",\"runtime\":{\"url\":\"http://w/api\"}}}"

static struct sbd_fn *fn_of(const char *text)
{
    json_t *o = sb_json_parse(text, strlen(text), NULL);
    struct sb_err err = { 0 };
    struct sbd_fn *f = sbd_fn_parse(o, "app", &err);
    json_decref(o);
    if (!f)
        fail_msg("%s", err.msg);
    return f;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/sbingestXXXXXX");
    if (!mkdtemp(dir))
        return -1;
    char url[96];
    snprintf(url, sizeof url, "sqlite://%s/sysbus.db", dir);
    struct sb_err err = { 0 };
    if (sbd_store_open(url, &st, &err) != 0 || sbd_qids_load(&qids, st, &err) != 0 ||
        sbd_registry_new(&reg) != 0 || sbd_ingest_create(reg, &qids, &table, NULL, &in, &err) != 0)
        return -1;
    /* app-order: an order over 10, priority 60 s, once per order id;
     * app-watch: started by shop/start, cancelled by the order of its id;
     * app-later: debounces orders by id for 10 s */
    struct sbd_fn *fns[3] = {
        fn_of("{\"id\":\"app-order\",\"triggers\":[{\"event\":\"shop/order\","
              "\"expression\":\"event.data.total > 10\"}],"
              "\"priority\":{\"run\":\"60\"},\"idempotency\":\"event.data.id\"," STEPS "}"),
        fn_of("{\"id\":\"app-watch\",\"triggers\":[{\"event\":\"shop/start\"}],"
              "\"cancel\":[{\"event\":\"shop/order\",\"if\":\"event.data.id == "
              "async.data.id\"}]," STEPS "}"),
        fn_of("{\"id\":\"app-later\",\"triggers\":[{\"event\":\"shop/order\"}],"
              "\"debounce\":{\"period\":\"10s\",\"key\":\"event.data.id\"}," STEPS "}"),
    };
    sbd_registry_replace_app(reg, "app", fns, 3); /* takes its own references */
    for (size_t i = 0; i < 3; i++)
        sbd_fn_unref(fns[i]);
    memset(&heard, 0, sizeof heard);
    counted_text = NULL;
    parses = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sbd_ingest_destroy(in);
    sbd_registry_free(reg);
    sbd_store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* One event through the three stages, as the event API does it. */
static void ingest(const char *name, const char *data, int64_t now, struct sbd_ingest_batch *b)
{
    struct sbd_event ev = { .ts = now };
    sb_ulid_new(now, ev.id);
    char body[512];
    snprintf(body, sizeof body,
             "{\"data\":%s,\"id\":\"%s\",\"name\":\"%s\",\"ts\":%lld,\"user\":{}}", data, ev.id,
             name, (long long)now);
    ev.name = strdup(name);
    ev.body = strdup(body);
    assert_int_equal(sbd_ingest_init(b, &ev, 1, now), 0);
    counted_text = b->events[0].ev.body;
    assert_int_equal(sbd_ingest_prepare(in, b), 0);
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_begin(st, &err), 0);
    assert_int_equal(sbd_ingest_apply_in_txn(st, in, b, &err), 0);
    assert_int_equal(sbd_store_commit(st, &err), 0);
    sbd_ingest_committed(in, b);
    counted_text = NULL;
}

/* A waitForEvent of run_id for the order of its id, with its timeout item. */
static void wait_for_order(const char *run_id)
{
    struct sb_err err = { 0 };
    assert_int_equal(sbd_store_begin(st, &err), 0);
    struct sbd_qitem_rec q = {
        .id = sbd_qid_new(&qids), .run_id = run_id, .step_id = "w1", .due_at = 1, .flags = QF_WAIT
    };
    assert_int_equal(sbd_store_queue_put(st, &q, &err), 0);
    struct sbd_wait_rec w = { .item_id = q.id,
                              .run_id = run_id,
                              .step_hash = "w1",
                              .event_name = "shop/order",
                              .expression = "async.data.id == event.data.id" };
    assert_int_equal(sbd_store_wait_put(st, &w, &err), 0);
    assert_int_equal(sbd_store_commit(st, &err), 0);
}

static void a_commit_is_announced_through_the_table_only(void **state)
{
    (void)state;
    struct sbd_ingest_batch b;
    ingest("shop/start", "{\"id\":7}", 1000000, &b);
    assert_int_equal(heard.runs, 1);
    assert_string_equal(heard.run_fn[0], "app-watch");
    assert_true(heard.run_has_event[0]); /* the engine gets the event with the run */
    assert_int_equal(heard.run_due[0], 1000000);
    char watcher[SB_ULID_SIZE];
    memcpy(watcher, b.events[0].runs[0].run_id, sizeof watcher);
    sbd_ingest_free(&b);
    wait_for_order(watcher);

    memset(&heard, 0, sizeof heard);
    ingest("shop/order", "{\"id\":7,\"total\":20}", 2000000, &b);
    /* app-order starts, 60 s early; app-later is held by its debounce */
    assert_int_equal(heard.runs, 1);
    assert_string_equal(heard.run_fn[0], "app-order");
    assert_int_equal(heard.run_due[0], 2000000 - 60000);
    assert_int_equal(heard.deferred_due, 2000000 + 10000);
    assert_int_equal(heard.held, 1);
    /* the watcher's wait is resolved with the order, and the order cancels it */
    assert_int_equal(heard.waits, 1);
    assert_string_equal(heard.wait_run, watcher);
    assert_non_null(strstr(heard.wait_memo, "\"total\":20"));
    assert_int_equal(heard.cancels, 1);
    assert_string_equal(heard.cancel_run, watcher);
    sbd_ingest_free(&b);

    /* the same order id again: idempotency drops app-order's run */
    memset(&heard, 0, sizeof heard);
    ingest("shop/order", "{\"id\":7,\"total\":30}", 2001000, &b);
    assert_int_equal(heard.runs, 0);
    assert_int_equal(heard.held, 1); /* the debounce takes the newer order */
    sbd_ingest_free(&b);
}

static void an_event_is_parsed_once_however_many_rules_read_it(void **state)
{
    (void)state;
    struct sbd_ingest_batch b;
    ingest("shop/start", "{\"id\":7}", 1000000, &b);
    char watcher[SB_ULID_SIZE];
    memcpy(watcher, b.events[0].runs[0].run_id, sizeof watcher);
    sbd_ingest_free(&b);
    wait_for_order(watcher);
    /* read by app-order's trigger `if`, priority and idempotency key,
     * app-later's debounce key, the wait's `if` and app-watch's cancelOn */
    ingest("shop/order", "{\"id\":7,\"total\":20}", 2000000, &b);
    assert_int_equal(heard.waits, 1);
    assert_int_equal(heard.cancels, 1);
    assert_int_equal(parses, 1);
    sbd_ingest_free(&b);
}

static void an_event_no_rule_reads_is_not_parsed(void **state)
{
    (void)state;
    struct sbd_ingest_batch b;
    ingest("shop/start", "{\"id\":8}", 1000000, &b);
    assert_int_equal(heard.runs, 1);
    assert_int_equal(parses, 0); /* the hot path: stored and started as it is */
    sbd_ingest_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_commit_is_announced_through_the_table_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_event_is_parsed_once_however_many_rules_read_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_event_no_rule_reads_is_not_parsed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
