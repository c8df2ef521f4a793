/* test_views_expected.h - what the REST views answered for test_views.c's
 * store before the store seam (taken from store_views.c's JSON), one
 * compact JSON text each (sb_json_dumps: keys sorted). */
#define WANT_R1 \
    "{\"app_id\":\"app\",\"created_at\":\"1970-01-01T00:00:01.000Z\",\"ended_at\":\"1970-01-0" \
    "1T00:00:01.200Z\",\"error\":null,\"event_id\":\"01E1AAAAAAAAAAAAAAAAAAAAAA\",\"function_" \
    "id\":\"app-f\",\"output\":{\"ok\":true},\"run_id\":\"01R1AAAAAAAAAAAAAAAAAAAAAA\",\"star" \
    "ted_at\":\"1970-01-01T00:00:01.050Z\",\"status\":\"Completed\",\"updated_at\":\"1970-01-" \
    "01T00:00:01.200Z\"}"
#define WANT_R2 \
    "{\"app_id\":\"app\",\"created_at\":\"1970-01-01T00:00:01.100Z\",\"ended_at\":\"1970-01-0" \
    "1T00:00:01.300Z\",\"error\":{\"message\":\"x\",\"name\":\"Error\"},\"event_id\":\"01E1AA" \
    "AAAAAAAAAAAAAAAAAAAA\",\"function_id\":\"app-f\",\"output\":null,\"run_id\":\"01R2AAAAAA" \
    "AAAAAAAAAAAAAAAA\",\"started_at\":\"1970-01-01T00:00:01.300Z\",\"status\":\"Failed\",\"u" \
    "pdated_at\":\"1970-01-01T00:00:01.300Z\"}"
#define WANT_R3 \
    "{\"app_id\":\"app\",\"created_at\":\"1970-01-01T00:00:02.000Z\",\"ended_at\":\"1970-01-0" \
    "1T00:00:02.100Z\",\"error\":\"plain text\",\"event_id\":\"01E2AAAAAAAAAAAAAAAAAAAAAA\"," \
    "\"function_id\":\"app-g\",\"output\":{\"sysbus_note\":\"this value is nested too deeply " \
    "to show\"},\"run_id\":\"01R3AAAAAAAAAAAAAAAAAAAAAA\",\"started_at\":\"1970-01-01T00:00:0" \
    "2.100Z\",\"status\":\"Cancelled\",\"updated_at\":\"1970-01-01T00:00:02.100Z\"}"
#define WANT_R4 \
    "{\"app_id\":\"app\",\"created_at\":\"1970-01-01T00:00:03.000Z\",\"ended_at\":null,\"erro" \
    "r\":null,\"event_id\":\"01E3AAAAAAAAAAAAAAAAAAAAAA\",\"function_id\":\"app-f\",\"output" \
    "\":null,\"queue\":[{\"attempt\":2,\"due_at\":\"1970-01-01T00:00:05.001Z\",\"due_at_ms\":" \
    "5001,\"kind\":\"call\",\"last_error\":{\"message\":\"refused\"},\"step_id\":\"step\",\"t" \
    "ransport_failing_since\":\"1970-01-01T00:00:04.500Z\",\"transport_failures\":3},{\"attem" \
    "pt\":0,\"due_at\":\"1970-01-01T00:00:05.002Z\",\"due_at_ms\":5002,\"kind\":\"sleep\",\"l" \
    "ast_error\":null,\"step_id\":\"s3\",\"transport_failing_since\":null,\"transport_failure" \
    "s\":0},{\"attempt\":0,\"due_at\":\"1970-01-01T00:00:05.003Z\",\"due_at_ms\":5003,\"if\":" \
    "\"event.data.a == async.data.a\",\"kind\":\"wait\",\"last_error\":null,\"step_id\":\"s4" \
    "\",\"transport_failing_since\":null,\"transport_failures\":0,\"waiting_for\":\"x/y\"},{" \
    "\"attempt\":0,\"due_at\":\"1970-01-01T00:00:05.004Z\",\"due_at_ms\":5004,\"invoked_run_i" \
    "d\":\"01R5AAAAAAAAAAAAAAAAAAAAAA\",\"kind\":\"invoke\",\"last_error\":null,\"step_id\":" \
    "\"s7\",\"transport_failing_since\":null,\"transport_failures\":0},{\"attempt\":0,\"due_a" \
    "t\":\"1970-01-01T00:00:05.005Z\",\"due_at_ms\":5005,\"kind\":\"deadline\",\"last_error\"" \
    ":null,\"step_id\":\"step\",\"transport_failing_since\":null,\"transport_failures\":0},{" \
    "\"attempt\":0,\"due_at\":\"1970-01-01T00:00:05.006Z\",\"due_at_ms\":5006,\"kind\":\"call" \
    "\",\"last_error\":null,\"step_id\":\"s8\",\"transport_failing_since\":null,\"transport_f" \
    "ailures\":0}],\"run_id\":\"01R4AAAAAAAAAAAAAAAAAAAAAA\",\"started_at\":\"1970-01-01T00:0" \
    "0:03.050Z\",\"status\":\"Running\",\"updated_at\":\"1970-01-01T00:00:03.050Z\"}"
#define WANT_STEPS_R4 \
    "[{\"attempts\":1,\"duration_ms\":10,\"ended_at\":\"1970-01-01T00:00:03.010Z\",\"error\":" \
    "null,\"id\":\"s1\",\"name\":\"s1\",\"op\":\"StepRun\",\"output\":{\"v\":1},\"started_at" \
    "\":\"1970-01-01T00:00:03.000Z\",\"status\":\"Completed\"},{\"attempts\":1,\"duration_ms" \
    "\":10,\"ended_at\":\"1970-01-01T00:00:03.030Z\",\"error\":{\"message\":\"bad\"},\"id\":" \
    "\"s2\",\"name\":\"s2\",\"op\":\"StepRun\",\"output\":null,\"started_at\":\"1970-01-01T00" \
    ":00:03.020Z\",\"status\":\"Failed\"},{\"attempts\":1,\"duration_ms\":10,\"ended_at\":\"1" \
    "970-01-01T00:00:03.050Z\",\"error\":null,\"id\":\"s3\",\"name\":\"s3\",\"op\":\"Sleep\"," \
    "\"output\":null,\"started_at\":\"1970-01-01T00:00:03.040Z\",\"status\":\"Completed\"},{" \
    "\"attempts\":1,\"duration_ms\":null,\"ended_at\":null,\"error\":null,\"id\":\"s4\",\"nam" \
    "e\":\"s4\",\"op\":\"WaitForEvent\",\"output\":{\"data\":{},\"name\":\"x/y\"},\"started_a" \
    "t\":\"1970-01-01T00:00:03.060Z\",\"status\":\"Completed\"},{\"attempts\":1,\"duration_ms" \
    "\":10,\"ended_at\":\"1970-01-01T00:00:03.080Z\",\"error\":null,\"id\":\"s6\",\"name\":\"" \
    "s6\",\"op\":\"StepRun\",\"output\":{\"sysbus_note\":\"this value is nested too deeply to" \
    " show\"},\"started_at\":\"1970-01-01T00:00:03.070Z\",\"status\":\"Completed\"},{\"attemp" \
    "ts\":1,\"duration_ms\":5,\"ended_at\":\"1970-01-01T00:00:03.095Z\",\"error\":null,\"id\"" \
    ":\"s9\",\"name\":\"s9\",\"op\":null,\"output\":\"text\",\"started_at\":\"1970-01-01T00:0" \
    "0:03.090Z\",\"status\":\"Completed\"},{\"attempts\":1,\"duration_ms\":null,\"ended_at\":" \
    "null,\"error\":{\"message\":\"retry\"},\"id\":\"s5\",\"name\":\"s5\",\"op\":\"StepRun\"," \
    "\"output\":null,\"started_at\":null,\"status\":\"Running\"}]"
#define WANT_RUNS \
    "[{\"app_id\":\"app\",\"created_at\":\"1970-01-01T00:00:03.100Z\",\"ended_at\":null,\"err" \
    "or\":null,\"event_id\":\"01E1AAAAAAAAAAAAAAAAAAAAAA\",\"function_id\":\"app-g\",\"output" \
    "\":null,\"run_id\":\"01R5AAAAAAAAAAAAAAAAAAAAAA\",\"started_at\":null,\"status\":\"Runni" \
    "ng\",\"updated_at\":\"1970-01-01T00:00:03.100Z\"},{\"app_id\":\"app\",\"created_at\":\"1" \
    "970-01-01T00:00:03.000Z\",\"ended_at\":null,\"error\":null,\"event_id\":\"01E3AAAAAAAAAA" \
    "AAAAAAAAAAAA\",\"function_id\":\"app-f\",\"output\":null,\"run_id\":\"01R4AAAAAAAAAAAAAA" \
    "AAAAAAAA\",\"started_at\":\"1970-01-01T00:00:03.050Z\",\"status\":\"Running\",\"updated_" \
    "at\":\"1970-01-01T00:00:03.050Z\"},{\"app_id\":\"app\",\"created_at\":\"1970-01-01T00:00" \
    ":02.000Z\",\"ended_at\":\"1970-01-01T00:00:02.100Z\",\"error\":\"plain text\",\"event_id" \
    "\":\"01E2AAAAAAAAAAAAAAAAAAAAAA\",\"function_id\":\"app-g\",\"output\":{\"sysbus_note\":" \
    "\"this value is nested too deeply to show\"},\"run_id\":\"01R3AAAAAAAAAAAAAAAAAAAAAA\"," \
    "\"started_at\":\"1970-01-01T00:00:02.100Z\",\"status\":\"Cancelled\",\"updated_at\":\"19" \
    "70-01-01T00:00:02.100Z\"},{\"app_id\":\"app\",\"created_at\":\"1970-01-01T00:00:01.100Z" \
    "\",\"ended_at\":\"1970-01-01T00:00:01.300Z\",\"error\":{\"message\":\"x\",\"name\":\"Err" \
    "or\"},\"event_id\":\"01E1AAAAAAAAAAAAAAAAAAAAAA\",\"function_id\":\"app-f\",\"output\":n" \
    "ull,\"run_id\":\"01R2AAAAAAAAAAAAAAAAAAAAAA\",\"started_at\":\"1970-01-01T00:00:01.300Z" \
    "\",\"status\":\"Failed\",\"updated_at\":\"1970-01-01T00:00:01.300Z\"},{\"app_id\":\"app" \
    "\",\"created_at\":\"1970-01-01T00:00:01.000Z\",\"ended_at\":\"1970-01-01T00:00:01.200Z\"" \
    ",\"error\":null,\"event_id\":\"01E1AAAAAAAAAAAAAAAAAAAAAA\",\"function_id\":\"app-f\",\"" \
    "output\":{\"ok\":true},\"run_id\":\"01R1AAAAAAAAAAAAAAAAAAAAAA\",\"started_at\":\"1970-0" \
    "1-01T00:00:01.050Z\",\"status\":\"Completed\",\"updated_at\":\"1970-01-01T00:00:01.200Z" \
    "\"}]"
#define WANT_RUNS_RUNNING \
    "[{\"app_id\":\"app\",\"created_at\":\"1970-01-01T00:00:03.100Z\",\"ended_at\":null,\"err" \
    "or\":null,\"event_id\":\"01E1AAAAAAAAAAAAAAAAAAAAAA\",\"function_id\":\"app-g\",\"output" \
    "\":null,\"run_id\":\"01R5AAAAAAAAAAAAAAAAAAAAAA\",\"started_at\":null,\"status\":\"Runni" \
    "ng\",\"updated_at\":\"1970-01-01T00:00:03.100Z\"},{\"app_id\":\"app\",\"created_at\":\"1" \
    "970-01-01T00:00:03.000Z\",\"ended_at\":null,\"error\":null,\"event_id\":\"01E3AAAAAAAAAA" \
    "AAAAAAAAAAAA\",\"function_id\":\"app-f\",\"output\":null,\"run_id\":\"01R4AAAAAAAAAAAAAA" \
    "AAAAAAAA\",\"started_at\":\"1970-01-01T00:00:03.050Z\",\"status\":\"Running\",\"updated_" \
    "at\":\"1970-01-01T00:00:03.050Z\"}]"
#define WANT_RUNS_G \
    "[{\"app_id\":\"app\",\"created_at\":\"1970-01-01T00:00:03.100Z\",\"ended_at\":null,\"err" \
    "or\":null,\"event_id\":\"01E1AAAAAAAAAAAAAAAAAAAAAA\",\"function_id\":\"app-g\",\"output" \
    "\":null,\"run_id\":\"01R5AAAAAAAAAAAAAAAAAAAAAA\",\"started_at\":null,\"status\":\"Runni" \
    "ng\",\"updated_at\":\"1970-01-01T00:00:03.100Z\"},{\"app_id\":\"app\",\"created_at\":\"1" \
    "970-01-01T00:00:02.000Z\",\"ended_at\":\"1970-01-01T00:00:02.100Z\",\"error\":\"plain te" \
    "xt\",\"event_id\":\"01E2AAAAAAAAAAAAAAAAAAAAAA\",\"function_id\":\"app-g\",\"output\":{" \
    "\"sysbus_note\":\"this value is nested too deeply to show\"},\"run_id\":\"01R3AAAAAAAAAA" \
    "AAAAAAAAAAAA\",\"started_at\":\"1970-01-01T00:00:02.100Z\",\"status\":\"Cancelled\",\"up" \
    "dated_at\":\"1970-01-01T00:00:02.100Z\"}]"
#define WANT_RUNS_E3 \
    "[{\"app_id\":\"app\",\"created_at\":\"1970-01-01T00:00:03.100Z\",\"ended_at\":null,\"err" \
    "or\":null,\"event_id\":\"01E1AAAAAAAAAAAAAAAAAAAAAA\",\"function_id\":\"app-g\",\"output" \
    "\":null,\"run_id\":\"01R5AAAAAAAAAAAAAAAAAAAAAA\",\"started_at\":null,\"status\":\"Runni" \
    "ng\",\"updated_at\":\"1970-01-01T00:00:03.100Z\"},{\"app_id\":\"app\",\"created_at\":\"1" \
    "970-01-01T00:00:03.000Z\",\"ended_at\":null,\"error\":null,\"event_id\":\"01E3AAAAAAAAAA" \
    "AAAAAAAAAAAA\",\"function_id\":\"app-f\",\"output\":null,\"run_id\":\"01R4AAAAAAAAAAAAAA" \
    "AAAAAAAA\",\"started_at\":\"1970-01-01T00:00:03.050Z\",\"status\":\"Running\",\"updated_" \
    "at\":\"1970-01-01T00:00:03.050Z\"}]"
#define WANT_RUNS_PAGE \
    "[{\"app_id\":\"app\",\"created_at\":\"1970-01-01T00:00:03.000Z\",\"ended_at\":null,\"err" \
    "or\":null,\"event_id\":\"01E3AAAAAAAAAAAAAAAAAAAAAA\",\"function_id\":\"app-f\",\"output" \
    "\":null,\"run_id\":\"01R4AAAAAAAAAAAAAAAAAAAAAA\",\"started_at\":\"1970-01-01T00:00:03.0" \
    "50Z\",\"status\":\"Running\",\"updated_at\":\"1970-01-01T00:00:03.050Z\"},{\"app_id\":\"" \
    "app\",\"created_at\":\"1970-01-01T00:00:02.000Z\",\"ended_at\":\"1970-01-01T00:00:02.100" \
    "Z\",\"error\":\"plain text\",\"event_id\":\"01E2AAAAAAAAAAAAAAAAAAAAAA\",\"function_id\"" \
    ":\"app-g\",\"output\":{\"sysbus_note\":\"this value is nested too deeply to show\"},\"ru" \
    "n_id\":\"01R3AAAAAAAAAAAAAAAAAAAAAA\",\"started_at\":\"1970-01-01T00:00:02.100Z\",\"stat" \
    "us\":\"Cancelled\",\"updated_at\":\"1970-01-01T00:00:02.100Z\"}]"
#define WANT_E1 \
    "{\"data\":{\"x\":1},\"internal_id\":\"01E1AAAAAAAAAAAAAAAAAAAAAA\",\"name\":\"a/b\",\"re" \
    "ceived_at\":\"1970-01-01T00:00:01.000Z\",\"ts\":1000}"
#define WANT_E2 \
    "{\"internal_id\":\"01E2AAAAAAAAAAAAAAAAAAAAAA\",\"received_at\":\"1970-01-01T00:00:02.00" \
    "0Z\",\"sysbus_note\":\"this value is nested too deeply to show\"}"
#define WANT_E3 \
    "{\"internal_id\":\"01E3AAAAAAAAAAAAAAAAAAAAAA\",\"received_at\":\"1970-01-01T00:00:03.00" \
    "0Z\"}"
#define WANT_EVENTS \
    "[{\"internal_id\":\"01E3AAAAAAAAAAAAAAAAAAAAAA\",\"received_at\":\"1970-01-01T00:00:03.0" \
    "00Z\"},{\"internal_id\":\"01E2AAAAAAAAAAAAAAAAAAAAAA\",\"received_at\":\"1970-01-01T00:0" \
    "0:02.000Z\",\"sysbus_note\":\"this value is nested too deeply to show\"},{\"data\":{\"x" \
    "\":1},\"internal_id\":\"01E1AAAAAAAAAAAAAAAAAAAAAA\",\"name\":\"a/b\",\"received_at\":\"" \
    "1970-01-01T00:00:01.000Z\",\"ts\":1000}]"
#define WANT_EVENTS_AB \
    "[{\"data\":{\"x\":1},\"internal_id\":\"01E1AAAAAAAAAAAAAAAAAAAAAA\",\"name\":\"a/b\",\"r" \
    "eceived_at\":\"1970-01-01T00:00:01.000Z\",\"ts\":1000}]"
#define WANT_EVENTS_PAGE \
    "[{\"internal_id\":\"01E2AAAAAAAAAAAAAAAAAAAAAA\",\"received_at\":\"1970-01-01T00:00:02.0" \
    "00Z\",\"sysbus_note\":\"this value is nested too deeply to show\"}]"
#define WANT_APPS \
    "[{\"app_version\":\"1\",\"checksum\":\"c1\",\"created_at\":\"1970-01-01T00:00:01.000Z\"," \
    "\"framework\":null,\"function_count\":2,\"id\":\"app\",\"sdk\":\"js:v3\",\"sync_error\":" \
    "\"unreachable\",\"sync_error_at\":\"1970-01-01T00:00:01.500Z\",\"synced_at\":\"1970-01-0" \
    "1T00:00:01.000Z\",\"url\":\"http://w/api\"},{\"app_version\":null,\"checksum\":null,\"cr" \
    "eated_at\":\"1970-01-01T00:00:01.100Z\",\"framework\":null,\"function_count\":0,\"id\":" \
    "\"b\",\"sdk\":null,\"sync_error\":null,\"sync_error_at\":null,\"synced_at\":\"1970-01-01" \
    "T00:00:01.100Z\",\"url\":\"http://b/api\"}]"
#define WANT_FUNCTIONS \
    "[{\"app_id\":\"app\",\"config\":{\"id\":\"app-f\",\"steps\":{\"step\":{\"retries\":{\"at" \
    "tempts\":2}}},\"triggers\":[{\"event\":\"a/b\"}]},\"created_at\":\"1970-01-01T00:00:01.0" \
    "00Z\",\"id\":\"app-f\",\"name\":\"F\",\"removed_at\":null,\"retries\":2,\"triggers\":[{" \
    "\"event\":\"a/b\"}],\"updated_at\":\"1970-01-01T00:00:01.000Z\"},{\"app_id\":\"app\",\"c" \
    "onfig\":{},\"created_at\":\"1970-01-01T00:00:01.001Z\",\"id\":\"app-g\",\"name\":\"G\"," \
    "\"removed_at\":null,\"retries\":4,\"triggers\":[],\"updated_at\":\"1970-01-01T00:00:01.0" \
    "01Z\"}]"
#define WANT_FUNCTIONS_ALL \
    "[{\"app_id\":\"app\",\"config\":{\"id\":\"app-f\",\"steps\":{\"step\":{\"retries\":{\"at" \
    "tempts\":2}}},\"triggers\":[{\"event\":\"a/b\"}]},\"created_at\":\"1970-01-01T00:00:01.0" \
    "00Z\",\"id\":\"app-f\",\"name\":\"F\",\"removed_at\":null,\"retries\":2,\"triggers\":[{" \
    "\"event\":\"a/b\"}],\"updated_at\":\"1970-01-01T00:00:01.000Z\"},{\"app_id\":\"app\",\"c" \
    "onfig\":{},\"created_at\":\"1970-01-01T00:00:01.001Z\",\"id\":\"app-g\",\"name\":\"G\"," \
    "\"removed_at\":null,\"retries\":4,\"triggers\":[],\"updated_at\":\"1970-01-01T00:00:01.0" \
    "01Z\"},{\"app_id\":\"app\",\"config\":\"not json\",\"created_at\":\"1970-01-01T00:00:01." \
    "002Z\",\"id\":\"app-h\",\"name\":\"H\",\"removed_at\":\"1970-01-01T00:00:01.700Z\",\"ret" \
    "ries\":4,\"triggers\":[],\"updated_at\":\"1970-01-01T00:00:01.002Z\"}]"
#define WANT_CANCELLATIONS \
    "[{\"app_id\":null,\"created_at\":\"1970-01-01T00:00:03.100Z\",\"function_id\":null,\"id" \
    "\":\"01C2AAAAAAAAAAAAAAAAAAAAAA\",\"if\":null,\"run_count\":0,\"started_after\":\"1970-0" \
    "1-01T00:00:01.000Z\",\"started_before\":null},{\"app_id\":\"app\",\"created_at\":\"1970-" \
    "01-01T00:00:03.000Z\",\"function_id\":\"app-f\",\"id\":\"01C1AAAAAAAAAAAAAAAAAAAAAA\",\"" \
    "if\":\"event.data.x == 1\",\"run_count\":2,\"started_after\":null,\"started_before\":\"1" \
    "970-01-01T00:00:05.000Z\"}]"
#define WANT_CANCELLATIONS_1 \
    "[{\"app_id\":null,\"created_at\":\"1970-01-01T00:00:03.100Z\",\"function_id\":null,\"id" \
    "\":\"01C2AAAAAAAAAAAAAAAAAAAAAA\",\"if\":null,\"run_count\":0,\"started_after\":\"1970-0" \
    "1-01T00:00:01.000Z\",\"started_before\":null}]"
