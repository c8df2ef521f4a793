/* Unit tests for the engine's invariants and error convention: the item
 * heap keeps its order and its back-pointers through any pushes and removes
 * (iheap_check), engine_check notices each broken invariant of
 * engine_internal.h, every inbox kind has its row, and the op parsers
 * (wait_parse_op, invoke_prepare) answer 0 or a negative code with a
 * message in struct sb_err. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "server/engine/engine_internal.h"
#include "server/ingest.h"
#include "server/registry.h"
#include "server/sbd.h"

/* ---- the heap ---- */

static struct sbd_item *new_item(int64_t id, int64_t due_at)
{
    struct sbd_item *it = calloc(1, sizeof *it);
    assert_non_null(it);
    it->id = id;
    it->due_at = due_at;
    return it;
}

static void heap_keeps_its_order_through_random_pushes_and_removes(void **state)
{
    (void)state;
    enum { N = 400 };
    struct sbd_item *items[N];
    struct sbd_iheap h = { 0 };
    struct sb_err err = { 0 };
    srand(13);
    for (int i = 0; i < N; i++)
        items[i] = new_item(i, rand() % 50); /* many ties: the id decides */
    for (int round = 0; round < 4000; round++) {
        struct sbd_item *it = items[rand() % N];
        if (it->heap)
            iheap_remove(it);
        else
            iheap_push(&h, it);
        assert_int_equal(iheap_check(&h, &err), 0);
        assert_true(it->heap == NULL || it->heap == &h);
    }
    /* what comes out comes out in (due_at, id) order */
    int64_t last_due = -1, last_id = -1;
    while (iheap_top(&h)) {
        struct sbd_item *top = iheap_top(&h);
        assert_true(top->due_at > last_due || (top->due_at == last_due && top->id > last_id));
        last_due = top->due_at;
        last_id = top->id;
        iheap_remove(top);
        assert_null(top->heap);
        assert_int_equal(iheap_check(&h, &err), 0);
    }
    for (int i = 0; i < N; i++)
        free(items[i]);
    iheap_free(&h);
}

static void heap_check_names_an_item_before_its_parent(void **state)
{
    (void)state;
    struct sbd_iheap h = { 0 };
    struct sbd_item *a = new_item(1, 10), *b = new_item(2, 20), *c = new_item(3, 30);
    iheap_push(&h, a);
    iheap_push(&h, b);
    iheap_push(&h, c);
    struct sb_err err = { 0 };
    assert_int_equal(iheap_check(&h, &err), 0);
    h.v[2]->due_at = 1; /* changed in place, not through the heap */
    assert_int_equal(iheap_check(&h, &err), SB_EINTERNAL);
    assert_non_null(strstr(err.msg, "before its parent"));
    h.v[2]->due_at = 30;
    h.v[1]->heap_idx = 0; /* says it is elsewhere */
    assert_int_equal(iheap_check(&h, &err), SB_EINTERNAL);
    assert_non_null(strstr(err.msg, "says it is at"));
    h.v[1]->heap_idx = 1;
    iheap_free(&h);
    free(a);
    free(b);
    free(c);
}

/* ---- engine_check ---- */

/* What an engine reaches through its sysbusd: the queue ids and ingest
 * (with nobody listening to its notifications). */
static struct sbd fake_sbd;
static const struct sbd_ingest_notify no_listeners = { 0 };

static struct sbd_engine *fake_engine(void)
{
    struct sbd_engine *e = calloc(1, sizeof *e);
    assert_non_null(e);
    e->nbuckets = 16;
    e->buckets = calloc(e->nbuckets, sizeof *e->buckets);
    assert_non_null(e->buckets);
    struct sb_err err = { 0 };
    assert_int_equal(
        sbd_ingest_create(NULL, &fake_sbd.qids, &no_listeners, NULL, &fake_sbd.ingest, &err), 0);
    e->sbd = &fake_sbd;
    return e;
}

static void fake_engine_free(struct sbd_engine *e)
{
    sbd_ingest_destroy(fake_sbd.ingest);
    fake_sbd.ingest = NULL;
    for (size_t i = 0; i < e->nbuckets; i++)
        while (e->buckets[i])
            engine_run_free(e, e->buckets[i]);
    admit_free(e);
    iheap_free(&e->queue);
    free(e->buckets);
    free(e);
}

/* A running run with one item due, in the queue: what a new run is. */
static struct sbd_run *add_run(struct sbd_engine *e, const char *id, int64_t qid)
{
    struct sbd_run *r = engine_run_add(e, id);
    struct sbd_item *it = engine_item_new(e, r, qid, "step");
    it->due_at = qid;
    engine_heap_push(e, it);
    return r;
}

static void engine_check_accepts_runs_items_and_deadlines(void **state)
{
    (void)state;
    struct sbd_engine *e = fake_engine();
    struct sb_err err = { 0 };
    assert_int_equal(engine_check(e, &err), 0);
    for (unsigned i = 0; i < 40; i++) {
        char id[SB_ULID_SIZE];
        snprintf(id, sizeof id, "01J0000000000000000000%04u", i % 10000u);
        struct sbd_run *r = add_run(e, id, 100 + i);
        if (i % 3 == 0)
            engine_deadline_new(e, r, 5000 + i);
        if (i % 5 == 0) { /* a second item, out of the queue while a commit is pending */
            engine_item_new(e, r, 1000 + i, "abc");
            r->committing = 1;
        }
    }
    assert_int_equal(engine_check(e, &err), 0);
    fake_engine_free(e);
}

static void engine_check_names_a_stranded_run(void **state)
{
    (void)state;
    struct sbd_engine *e = fake_engine();
    struct sbd_run *r = add_run(e, "01J00000000000000000000001", 1);
    struct sb_err err = { 0 };
    engine_item_free(e, r->items); /* its last item went, and nothing is being committed */
    assert_true(engine_run_stranded(r));
    assert_int_equal(engine_check(e, &err), SB_EINTERNAL);
    assert_non_null(strstr(err.msg, "no item and no commit pending"));
    r->committing = 1; /* a commit pending brings the next item */
    assert_false(engine_run_stranded(r));
    assert_int_equal(engine_check(e, &err), 0);
    r->committing = 0;
    r->ended = true; /* or the run has ended */
    assert_int_equal(engine_check(e, &err), 0);
    fake_engine_free(e);
}

static void engine_check_names_an_ended_run_with_items(void **state)
{
    (void)state;
    struct sbd_engine *e = fake_engine();
    struct sbd_run *r = add_run(e, "01J00000000000000000000002", 1);
    r->ended = true;
    struct sb_err err = { 0 };
    assert_int_equal(engine_check(e, &err), SB_EINTERNAL);
    assert_non_null(strstr(err.msg, "has ended but still has items"));
    fake_engine_free(e);
}

static void engine_check_names_an_item_queued_with_its_call_under_way(void **state)
{
    (void)state;
    struct sbd_engine *e = fake_engine();
    struct sbd_run *r = add_run(e, "01J00000000000000000000003", 1);
    struct sbd_item *it = r->items;
    struct sbd_call c = { .item = it };
    it->call = &c;
    e->inflight = 1;
    struct sb_err err = { 0 };
    assert_int_equal(engine_check(e, &err), SB_EINTERNAL);
    assert_non_null(strstr(err.msg, "call under way"));
    engine_heap_remove(e, it); /* dispatched: out of the queue */
    assert_int_equal(engine_check(e, &err), 0);
    it->call = NULL;
    e->inflight = 0;
    engine_heap_push(e, it);
    it->leasing = true; /* its lease began while it stayed queued */
    assert_int_equal(engine_check(e, &err), SB_EINTERNAL);
    assert_non_null(strstr(err.msg, "lease under way"));
    engine_heap_remove(e, it);
    it->leasing = false;
    fake_engine_free(e);
}

static void engine_check_names_counts_that_disagree(void **state)
{
    (void)state;
    struct sbd_engine *e = fake_engine();
    add_run(e, "01J00000000000000000000004", 1);
    struct sb_err err = { 0 };
    e->nitems++;
    assert_int_equal(engine_check(e, &err), SB_EINTERNAL);
    assert_non_null(strstr(err.msg, "items counted"));
    e->nitems--;
    e->inflight = 2;
    assert_int_equal(engine_check(e, &err), SB_EINTERNAL);
    assert_non_null(strstr(err.msg, "calls in flight"));
    e->inflight = 0;
    assert_int_equal(engine_check(e, &err), 0);
    fake_engine_free(e);
}

static void every_inbox_kind_has_a_handler_and_a_stopped_answer(void **state)
{
    (void)state;
    assert_true(inbox_table_complete());
}

/* ---- the op parsers: 0 or a negative code, the message in sb_err ---- */

static json_t *op_of(const char *text)
{
    json_t *o = sb_json_parse(text, strlen(text), NULL);
    assert_non_null(o);
    return o;
}

static void wait_parse_op_answers_codes_with_messages(void **state)
{
    (void)state;
    static const struct {
        const char *op;
        const char *msg; /* NULL: accepted */
    } cases[] = {
        { "{\"name\":\"x/y\",\"opts\":{\"timeout\":\"1h\"}}", NULL },
        { "{\"name\":\"x/y\",\"opts\":{\"timeout\":\"2026-12-01T00:00:00Z\",\"if\":"
          "\"event.data.a == async.data.a\"}}",
          NULL },
        { "{\"opts\":{\"timeout\":\"1h\"}}", "waitForEvent without an event name" },
        { "{\"name\":\"x/y\",\"opts\":{}}", "needs a timeout such as \"1h\" (got '')" },
        { "{\"name\":\"x/y\",\"opts\":{\"timeout\":\"soon\"}}", "(got 'soon')" },
        { "{\"name\":\"x/y\",\"opts\":{\"timeout\":\"1h\",\"if\":\"event.a ==\"}}",
          "invalid expression 'event.a =='" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *o = op_of(cases[i].op);
        struct sbd_wait_reg w;
        int64_t at = 0;
        struct sb_err err = { 0 };
        int rc = wait_parse_op(o, 1000, &w, &at, &err);
        if (!cases[i].msg) {
            assert_int_equal(rc, 0);
            assert_string_equal(w.event_name, "x/y");
            assert_true(at > 1000);
        } else {
            assert_int_equal(rc, SB_EINVAL);
            assert_int_equal(err.code, SB_EINVAL);
            assert_non_null(strstr(err.msg, cases[i].msg));
            assert_null(w.event_name);
        }
        wait_reg_free(&w);
        json_decref(o);
    }
}

static void invoke_prepare_answers_codes_with_messages(void **state)
{
    (void)state;
    struct sbd_registry *reg;
    assert_int_equal(sbd_registry_new(&reg), 0);
    json_t *fo = op_of("{\"id\":\"app-child\",\"name\":\"c\",\"triggers\":[{\"event\":\"x/y\"}],"
                       "\"steps\":{\"step\":{\"id\":\"step\",\"runtime\":{\"type\":\"http\","
                       "\"url\":\"http://w:3111/api/inngest?fnId=app-child&stepId=step\"}}}}");
    struct sb_err err = { 0 };
    struct sbd_fn *f = sbd_fn_parse(fo, "app", &err);
    json_decref(fo);
    assert_non_null(f);
    assert_int_equal(sbd_registry_load_fn(reg, f), 0);
    struct sbd_engine *e = fake_engine();
    e->snap = sbd_registry_acquire(reg);
    struct sbd_run *r = add_run(e, "01J00000000000000000000005", 1);
    static const struct {
        const char *op;
        int rc;
        const char *msg;
    } cases[] = {
        { "{\"opts\":{\"function_id\":\"app-child\",\"payload\":{\"data\":{\"a\":1}}}}", 0, "" },
        { "{\"opts\":{}}", SB_EINVAL, "step.invoke without opts.function_id" },
        { "{\"opts\":{\"function_id\":\"app-child\",\"timeout\":\"later\"}}", SB_EINVAL,
          "unreadable timeout 'later'" },
        { "{\"opts\":{\"function_id\":\"app-none\"}}", SB_ENOTFOUND,
          "could not find function with ID: app-none" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *o = op_of(cases[i].op);
        struct sbd_invoke_reg inv;
        int64_t at = 0;
        memset(&err, 0, sizeof err);
        int rc = invoke_prepare(e, r, o, 1000, &inv, &at, &err);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0) {
            assert_int_equal(inv.child.n, 1);
            assert_non_null(strstr(inv.child.events[0].ev.body, "\"source_run_id\""));
            assert_string_equal(inv.child.events[0].runs->function_id, "app-child");
        } else {
            assert_int_equal(err.code, cases[i].rc);
            assert_non_null(strstr(err.msg, cases[i].msg));
        }
        invoke_reg_free(&inv);
        json_decref(o);
    }
    sbd_snap_release(e->snap);
    e->snap = NULL;
    fake_engine_free(e);
    sbd_registry_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(heap_keeps_its_order_through_random_pushes_and_removes),
        cmocka_unit_test(heap_check_names_an_item_before_its_parent),
        cmocka_unit_test(engine_check_accepts_runs_items_and_deadlines),
        cmocka_unit_test(engine_check_names_a_stranded_run),
        cmocka_unit_test(engine_check_names_an_ended_run_with_items),
        cmocka_unit_test(engine_check_names_an_item_queued_with_its_call_under_way),
        cmocka_unit_test(engine_check_names_counts_that_disagree),
        cmocka_unit_test(every_inbox_kind_has_a_handler_and_a_stopped_answer),
        cmocka_unit_test(wait_parse_op_answers_codes_with_messages),
        cmocka_unit_test(invoke_prepare_answers_codes_with_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
