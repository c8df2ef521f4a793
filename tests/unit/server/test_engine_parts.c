/* Unit tests for the engine's pure parts: retry backoff, Retry-After,
 * response classification (outcome.c), the call body (call.c) and the cap
 * on a worker's values (decide.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "server/engine/backoff.h"
#include "server/engine/engine_internal.h"

static void retry_backoff_follows_inngest_table(void **state)
{
    (void)state;
    int64_t expect[] = { 15000,   30000,   60000,   120000,  300000, 600000,
                         1200000, 2400000, 3600000, 7200000, 7200000 };
    for (int i = 0; i < 11; i++)
        assert_int_equal(sbd_backoff_retry_ms(i, 15000, 0), expect[i]);
    for (int i = 0; i < 100; i++) {
        int64_t d = sbd_backoff_retry_ms(0, 15000, 1);
        assert_true(d >= 15000 && d < 45000); /* 0-30 s jitter */
    }
    assert_int_equal(sbd_backoff_retry_ms(2, 10, 0), 40); /* scaled base for tests */
}

static void transport_backoff_is_short_and_capped(void **state)
{
    (void)state;
    for (int n = 0; n < 30; n++) {
        int64_t d = sbd_backoff_transport_ms(n, 5000);
        assert_true(d >= 1 && d <= 6000);
    }
    assert_true(sbd_backoff_transport_ms(0, 5000) <= 60);
}

static void retry_after_parses_seconds_and_dates(void **state)
{
    (void)state;
    assert_int_equal(sbd_retry_after_ms("30", 0), 30000);
    assert_int_equal(sbd_retry_after_ms("0", 0), 1000);           /* clamped up */
    assert_int_equal(sbd_retry_after_ms("9999999", 0), 86400000); /* clamped down */
    assert_int_equal(sbd_retry_after_ms("2026-11-27T17:00:10Z", 1795798800000), 10000);
    assert_int_equal(sbd_retry_after_ms("Fri, 27 Nov 2026 17:01:00 GMT", 1795798800000), 60000);
    assert_int_equal(sbd_retry_after_ms("soon", 0), -1);
}

/* Any all-digit value is seconds, however many digits: 8+ digits used to be
 * taken for a date, fail to parse and be ignored. */
static void retry_after_of_many_digits_is_clamped_to_a_day(void **state)
{
    (void)state;
    assert_int_equal(sbd_retry_after_ms("99999999", 0), 86400000);
    assert_int_equal(sbd_retry_after_ms("999999999", 0), 86400000);
    assert_int_equal(sbd_retry_after_ms("123456789012345678901234567890", 0), 86400000);
    assert_int_equal(sbd_retry_after_ms("99999999999999999999999999999999999999999999999999", 0),
                     86400000);
    assert_int_equal(sbd_retry_after_ms("86400", 0), 86400000);
    assert_int_equal(sbd_retry_after_ms("86399", 0), 86399000);
    assert_int_equal(sbd_retry_after_ms("00000000000000000000000000045", 0), 45000);
    assert_int_equal(sbd_retry_after_ms(" 30\t", 0), 30000);
    /* neither seconds nor a date: ignored */
    assert_int_equal(sbd_retry_after_ms("-5", 0), -1);
    assert_int_equal(sbd_retry_after_ms("1.5", 0), -1);
    assert_int_equal(sbd_retry_after_ms("30s", 0), -1);
    assert_int_equal(sbd_retry_after_ms("   ", 0), -1);
    assert_int_equal(sbd_retry_after_ms("", 0), -1);
    assert_int_equal(sbd_retry_after_ms(NULL, 0), -1);
    /* a date in the past is the minimum */
    assert_int_equal(sbd_retry_after_ms("2026-11-27T17:00:10Z", 1795798900000), 1000);
}

static struct sbd_call *fake_call(const char *body, long no_retry, bool sdk)
{
    struct sbd_call *c = calloc(1, sizeof *c);
    c->no_retry = (int)no_retry;
    c->req_version = INT_MIN;
    c->has_sdk_header = sdk;
    c->resp.max = 1 << 20;
    if (body)
        sb_buf_puts(&c->resp, body);
    return c;
}

static void free_call(struct sbd_call *c)
{
    sb_buf_free(&c->resp);
    free(c);
}

static void responses_are_classified(void **state)
{
    (void)state;
    struct sbd_call_result r;
    struct sbd_call *c;

    c = fake_call(NULL, -1, false);
    outcome_parse(CURLE_COULDNT_CONNECT, false, 0, c, &r);
    assert_int_equal(r.kind, RES_TRANSPORT);
    outcome_free(&r), free_call(c);

    c = fake_call("", -1, false);
    outcome_parse(CURLE_GOT_NOTHING, false, 0, c, &r);
    assert_int_equal(r.kind, RES_TRANSPORT);
    outcome_free(&r), free_call(c);

    c = fake_call(NULL, -1, false);
    outcome_parse(CURLE_OPERATION_TIMEDOUT, true, 0, c, &r);
    assert_int_equal(r.kind, RES_ERROR);
    assert_true(r.retriable);
    outcome_free(&r), free_call(c);

    c = fake_call("<html>bad gateway</html>", -1, false);
    outcome_parse(CURLE_OK, false, 503, c, &r);
    assert_int_equal(r.kind, RES_TRANSPORT);
    outcome_free(&r), free_call(c);

    c = fake_call("{\"a\": 1}", -1, true);
    outcome_parse(CURLE_OK, false, 200, c, &r);
    assert_int_equal(r.kind, RES_DONE);
    assert_string_equal(r.output, "{\"a\":1}");
    outcome_free(&r), free_call(c);

    c = fake_call("{\"a\": 1}", -1, false); /* not an SDK */
    outcome_parse(CURLE_OK, false, 200, c, &r);
    assert_int_equal(r.kind, RES_ERROR);
    assert_true(r.retriable);
    outcome_free(&r), free_call(c);

    c = fake_call("{\"op\":\"StepRun\",\"id\":\"abc\",\"data\":1}", -1, true);
    outcome_parse(CURLE_OK, false, 206, c, &r);
    assert_int_equal(r.kind, RES_OPS);
    assert_int_equal(json_array_size(r.ops), 1);
    outcome_free(&r), free_call(c);

    c = fake_call("[{\"nop\":1}]", -1, true);
    outcome_parse(CURLE_OK, false, 206, c, &r);
    assert_int_equal(r.kind, RES_ERROR);
    outcome_free(&r), free_call(c);

    c = fake_call("{\"name\":\"Error\",\"message\":\"boom\"}", 0, true);
    outcome_parse(CURLE_OK, false, 500, c, &r);
    assert_int_equal(r.kind, RES_ERROR);
    assert_true(r.retriable);
    assert_non_null(strstr(r.error, "boom"));
    outcome_free(&r), free_call(c);

    /* the header wins over the status */
    c = fake_call("{\"name\":\"NonRetriableError\",\"message\":\"no\"}", 1, true);
    outcome_parse(CURLE_OK, false, 500, c, &r);
    assert_false(r.retriable);
    outcome_free(&r), free_call(c);

    c = fake_call("{\"message\":\"Unauthorized\"}", -1, false);
    outcome_parse(CURLE_OK, false, 401, c, &r);
    assert_int_equal(r.kind, RES_ERROR);
    assert_non_null(strstr(r.message, "signing-key")); /* says what to fix */
    outcome_free(&r), free_call(c);

    c = fake_call("garbage", -1, true);
    outcome_parse(CURLE_OK, false, 400, c, &r);
    assert_int_equal(r.kind, RES_ERROR);
    assert_false(r.retriable);
    assert_non_null(strstr(r.message, "garbage"));
    outcome_free(&r), free_call(c);
}

static void call_body_is_canonical_json(void **state)
{
    (void)state;
    struct sbd_run r = { 0 };
    strcpy(r.id, "01M8F0NBYTB68YCVQ8QW17F2SH");
    r.event = "{\"data\":{\"n\":1},\"id\":\"x\",\"name\":\"a/b\",\"ts\":1,\"user\":{}}";
    r.req_version = -1;
    struct sbd_memo m[2] = { { "ffff", "{\"data\":2}" }, { "0000", "{\"data\":1}" } };
    r.memo = m;
    r.nmemo = 2;
    struct sbd_item it = { 0 };
    strcpy(it.step_id, "step");
    it.attempt = 1;
    struct sb_buf b = SB_BUF_INIT(0); /* no cap: the test's own run, as call.c's request */
    assert_int_equal(call_build_body(&r, &it, 4, "production", NULL, &b), 0);
    json_t *v = sb_json_parse(b.data, b.len, NULL);
    assert_non_null(v);
    char *again = sb_json_dumps(v, NULL);
    assert_string_equal(again, b.data); /* already canonical: signable as sent */
    assert_true(json_number_value(json_object_get(json_object_get(v, "ctx"), "max_attempts")) == 4);
    json_t *stack = json_object_get(json_object_get(json_object_get(v, "ctx"), "stack"), "stack");
    assert_string_equal(json_string_value(json_array_get(stack, 0)), "ffff"); /* completion order */
    assert_null(json_object_get(json_object_get(v, "ctx"), "fn_id"));
    free(again);
    json_decref(v);
    sb_buf_reset(&b);
    /* with checkpointing: fn_id and qi_id, still canonical */
    it.id = 42;
    assert_int_equal(call_build_body(&r, &it, 4, "production", "app-fn", &b), 0);
    v = sb_json_parse(b.data, b.len, NULL);
    again = sb_json_dumps(v, NULL);
    assert_string_equal(again, b.data);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "ctx"), "fn_id")),
                        "app-fn");
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "ctx"), "qi_id")),
                        "42");
    free(again);
    json_decref(v);
    sb_buf_free(&b);
}

/* A worker's value is written in canonical form within a cap, which counts
 * the written form: numbers written out in full can make it longer than
 * what the worker sent. */
static void worker_values_are_encoded_within_their_cap(void **state)
{
    (void)state;
    const char *sent = "[1e20,1e20,1e20,1e20]"; /* 21 bytes sent, 89 written */
    json_t *v = sb_json_parse(sent, strlen(sent), NULL);
    assert_non_null(v);
    char *text = NULL;
    assert_int_equal(decide_encode_value("data", v, 1024, &text), 0);
    assert_string_equal(text, "{\"data\":[100000000000000000000,100000000000000000000,"
                              "100000000000000000000,100000000000000000000]}");
    free(text);
    assert_int_equal(decide_encode_value(NULL, v, 1024, &text), 0);
    assert_int_equal(strlen(text), 89);
    free(text);
    assert_int_equal(decide_encode_value(NULL, v, 89, &text), 0);
    free(text);
    assert_int_equal(decide_encode_value(NULL, v, 88, &text), SB_ETOOBIG);
    assert_null(text);
    assert_int_equal(decide_encode_value("data", v, 64, &text), SB_ETOOBIG);
    assert_null(text);
    json_decref(v);
    /* deeper than the writer goes: refused as such, not as too large */
    json_t *deep = json_array();
    for (int i = 0; i < SB_JSON_WRITE_MAX_DEPTH + 5; i++)
        deep = json_pack("[o]", deep);
    assert_int_equal(decide_encode_value("data", deep, 1 << 20, &text), SB_EINVAL);
    assert_null(text);
    json_decref(deep);
    assert_true(MEMO_MAX_BYTES > CALL_MAX_RESPONSE); /* whatever fits an answer fits, mostly */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(retry_backoff_follows_inngest_table),
        cmocka_unit_test(transport_backoff_is_short_and_capped),
        cmocka_unit_test(retry_after_parses_seconds_and_dates),
        cmocka_unit_test(retry_after_of_many_digits_is_clamped_to_a_day),
        cmocka_unit_test(responses_are_classified),
        cmocka_unit_test(call_body_is_canonical_json),
        cmocka_unit_test(worker_values_are_encoded_within_their_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
