/* Fuzz target: worker responses through the whole engine, not only the
 * parser. A sysbusd runs in this process (daemon.c: store, writer, engine,
 * HTTP) on a store in a temporary directory, with one registered function
 * whose URL is a worker served here (sb_httpd). That worker answers the
 * run's calls with the input, split into up to 4 responses at the bytes
 * "\xff\xfe" (first byte of each: status and headers, the rest: the body);
 * calls past those get 200 null. Per input: one event; its run must end
 * within 1 s (a run left waiting, e.g. on a long sleep, is cancelled and
 * must then end within 10 s), and the run's pages must be served (200).
 * A crash, a wedged run or a page that cannot be encoded aborts. */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/httpc.h"
#include "common/httpd.h"
#include "common/json.h"
#include "common/log.h"
#include "server/sbd.h"
#include "server/settings.h"

#define MAX_PARTS 4

static struct sbd sbd;
static struct sb_httpd *worker;
static char base_url[64];

/* the responses of the current input (guarded by lock: the worker runs on
 * its own HTTP threads) */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct part {
    const uint8_t *body;
    size_t len;
    uint8_t ctl;
} parts[MAX_PARTS];
static size_t nparts, ncalls;

static const int statuses[8] = { 200, 206, 206, 206, 400, 500, 503, 404 };

static void worker_call(struct sb_req *req)
{
    pthread_mutex_lock(&lock);
    struct part p = ncalls < nparts ? parts[ncalls] : (struct part){ (const uint8_t *)"null", 4, 0 };
    ncalls++;
    char *body = malloc(p.len + 1);
    if (body)
        memcpy(body, p.body, p.len);
    pthread_mutex_unlock(&lock);
    if (!(p.ctl & 0x08))
        sb_reply_header(req, "X-Inngest-Sdk", "fuzz:1");
    if (p.ctl & 0x10)
        sb_reply_header(req, "X-Inngest-No-Retry", (p.ctl & 0x20) ? "true" : "false");
    if (p.ctl & 0x40)
        sb_reply_header(req, "Retry-After", (p.ctl & 0x80) ? "1" : "Fri, 27 Nov 2026 17:01:00 GMT");
    sb_reply_raw(req, statuses[p.ctl & 7], "application/json", body, body ? p.len : 0);
}

static const struct sb_route worker_routes[] = {
    { "POST", "/api/inngest", worker_call, 0, 0 },
};

/* One request to the in-process sysbusd; returns the status (0: none). */
static long bus(const char *method, const char *path, const char *body, struct sb_buf *out)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", base_url, path);
    struct sb_httpc_req rq = { .method = method, .url = url, .body = body,
                               .body_len = body ? strlen(body) : 0, .timeout_ms = 20000 };
    const char *hdrs[] = { "Content-Type: application/json", NULL };
    rq.headers = hdrs;
    struct sb_httpc_resp resp = { 0 };
    struct sb_err err = { 0 };
    long status = sb_httpc_do(&rq, &resp, &err) == 0 ? resp.status : 0;
    if (out) {
        sb_buf_reset(out);
        sb_buf_append(out, resp.body.data ? resp.body.data : "", resp.body.len);
    }
    sb_httpc_resp_free(&resp);
    return status;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* a store in memory when the machine has one: commits stay real, fsyncs cheap */
    static char dir[64];
    snprintf(dir, sizeof dir, "%s/fuzz-engine-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir))
        abort();
    char *args[] = { "sysbusd",        "--dev",        "--port",
                     "0",              "--data-dir",   dir,
                     "--retry-base",   "1ms",          "--call-timeout",
                     "2s",             "--sync-interval", "0",
                     "--transport-retry-window", "50ms", "--transport-backoff-max",
                     "10ms",           "--log-level",  "error" };
    int n = (int)(sizeof args / sizeof args[0]);
    struct sb_err err = { 0 };
    size_t npos;
    if (sb_config_parse(&sbd_config_spec, &sbd.cfg, n, args, NULL, 0, &npos, &err) != 0)
        abort();
    sb_log_init("fuzz_engine", SB_ERROR, 2);
    signal(SIGPIPE, SIG_IGN);
    sb_httpc_global_init();
    const char *stage;
    if (sbd_start(&sbd, &stage, &err) != 0) {
        fprintf(stderr, "fuzz_engine: %s: %s\n", stage, err.msg);
        abort();
    }
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", sb_httpd_port(sbd.httpd));
    struct sb_httpd_config wc = { .host = "127.0.0.1", .threads = 2, .body_max = 1 << 20,
                                  .idle_timeout_s = 30, .routes = worker_routes, .nroutes = 1 };
    if (sb_httpd_start(&wc, &worker, &err) != 0)
        abort();
    char reg[1024];
    snprintf(reg, sizeof reg,
             "{\"appName\":\"fuzz\",\"url\":\"http://127.0.0.1:%d/api/inngest\",\"sdk\":\"fuzz\","
             "\"functions\":[{\"id\":\"fuzz-fn\",\"name\":\"fn\",\"triggers\":[{\"event\":"
             "\"fuzz/go\"}],\"steps\":{\"step\":{\"id\":\"step\",\"retries\":{\"attempts\":1},"
             "\"runtime\":{\"url\":\"http://127.0.0.1:%d/api/inngest?fnId=fuzz-fn\"}}}}]}",
             sb_httpd_port(worker), sb_httpd_port(worker));
    if (bus("POST", "/fn/register", reg, NULL) != 200)
        abort();
    return 0;
}

/* The run of event id (a new reference), waiting up to wait_s for it to
 * end; *running tells whether it still runs. */
static json_t *run_of(const char *event_id, int wait_s, bool *running)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/events/%s/runs?wait_ms=%d", event_id, wait_s * 1000);
    struct sb_buf b = SB_BUF_INIT(0); /* a copy of an answer httpc capped */
    long st = bus("GET", path, NULL, &b);
    json_t *page = st == 200 ? sb_json_parse(b.data, b.len, NULL) : NULL;
    sb_buf_free(&b);
    json_t *run = json_incref(json_array_get(json_object_get(page, "data"), 0));
    json_decref(page);
    if (!run)
        abort(); /* an event's run must always be served */
    *running = strcmp(sb_json_str(run, "status"), "Running") == 0;
    return run;
}

static void split_input(const uint8_t *data, size_t size)
{
    nparts = ncalls = 0;
    while (size > 0 && nparts < MAX_PARTS) {
        const uint8_t *cut = NULL;
        for (size_t i = 0; i + 1 < size; i++)
            if (data[i] == 0xff && data[i + 1] == 0xfe) {
                cut = data + i;
                break;
            }
        size_t len = cut ? (size_t)(cut - data) : size;
        if (len > 0)
            parts[nparts++] = (struct part){ data + 1, len - 1, data[0] };
        if (!cut)
            break;
        size -= len + 2;
        data = cut + 2;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pthread_mutex_lock(&lock);
    split_input(data, size);
    pthread_mutex_unlock(&lock);
    struct sb_buf b = SB_BUF_INIT(0); /* a copy of an answer httpc capped */
    if (bus("POST", "/e/key", "{\"name\":\"fuzz/go\",\"data\":{\"x\":1}}", &b) != 200)
        abort();
    json_t *ack = sb_json_parse(b.data, b.len, NULL);
    const char *event_id = json_string_value(json_array_get(json_object_get(ack, "ids"), 0));
    if (!event_id)
        abort();
    bool running;
    json_t *run = run_of(event_id, 1, &running);
    if (running) {
        /* waiting for something (a sleep, an event): a cancel must end it */
        char path[160];
        snprintf(path, sizeof path, "/v1/runs/%s", sb_json_str(run, "run_id"));
        bus("DELETE", path, NULL, NULL);
        json_decref(run);
        run = run_of(event_id, 10, &running);
        if (running)
            abort(); /* a run that cannot be ended */
    }
    /* its pages encode */
    char path[160];
    snprintf(path, sizeof path, "/v1/runs/%s/steps", sb_json_str(run, "run_id"));
    if (bus("GET", path, NULL, NULL) != 200)
        abort();
    json_decref(run);
    json_decref(ack);
    sb_buf_free(&b);
    return 0;
}
