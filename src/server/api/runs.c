/* runs.c - runs: GET /v1/runs, GET /v1/runs/{id}[?wait_ms=N],
 * GET /v1/runs/{id}/steps, DELETE /v1/runs/{id} (cancel).
 * Responses are {"data": ...} (lists add "metadata" with the next cursor). */
#include "api.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/ulid.h"
#include "server/engine/engine.h"
#include "server/sbd.h"
#include "server/store/store.h"
#include "server/waiters.h"
#include "views.h"

#include <stdlib.h>
#include <string.h>

#define MAX_WAIT_MS (10 * 60 * 1000)

static bool valid_id(struct sb_req *req, const char *id, const char *what)
{
    if (sb_ulid_valid(id))
        return true;
    sb_reply_error(req, 404, "NOT_FOUND", "no such %s: %s (ids are 26-character ULIDs)", what, id);
    return false;
}

void h_runs_list(struct sb_req *req)
{
    int64_t limit, hours;
    if (api_query_int(req, "limit", 20, 1, 1000, &limit) ||
        api_query_int(req, "hours", 0, 0, 24 * 3650, &hours))
        return;
    struct sbd_run_filter f = { .status = -1, .limit = (int)limit };
    const char *status = sb_req_query(req, "status");
    if (status && *status && (f.status = run_status_parse(status)) < 0) {
        sb_reply_error(req, 400, "BAD_QUERY",
                       "status must be Running, Completed, Failed or Cancelled (got '%s')", status);
        return;
    }
    const char *fn = sb_req_query(req, "function_id");
    const char *app = sb_req_query(req, "app_id");
    const char *cursor = sb_req_query(req, "cursor");
    f.function_id = fn && *fn ? fn : NULL;
    f.app_id = app && *app ? app : NULL;
    f.cursor = cursor && *cursor ? cursor : NULL;
    f.since_ms = hours > 0 ? sb_now_ms() - hours * 3600000 : 0;
    struct sbd_store *st = sbd_store_reader();
    struct sb_err err = { SB_EUNAVAIL, 0, "no read connection" };
    json_t *runs = st ? api_view_runs(st, &f, NULL, &err) : NULL;
    if (!runs) {
        api_store_error(req, "runs", &err);
        return;
    }
    size_t n = json_array_size(runs);
    json_t *next = n == (size_t)limit
                       ? json_incref(json_object_get(json_array_get(runs, n - 1), "run_id"))
                       : json_null();
    sb_reply_json(req, 200,
                  json_pack("{s:o, s:{s:o, s:I}}", "data", runs, "metadata", "next_cursor", next,
                            "count", (json_int_t)n));
}

/* A Running run's answer gets what the engine holds of it (in a call,
 * parked on a concurrency key): answered from the engine thread. */
struct describe_wait {
    struct sb_req *req;
    json_t *body;
};

static void described(void *ctx, json_t *desc)
{
    struct describe_wait *dw = ctx;
    json_object_set_new(json_object_get(dw->body, "data"), "engine", desc ? desc : json_null());
    sb_reply_json(dw->req, 200, dw->body);
    free(dw);
}

/* Shared by GET /v1/runs/{id} and GET /v1/events/{id}/runs. */
static void get_with_wait(struct sb_req *req, enum sbd_waiter_kind kind)
{
    struct sbd *sbd = sb_req_app(req);
    const char *id = sb_req_param(req, 0);
    if (!valid_id(req, id, kind == WAIT_RUN ? "run" : "event"))
        return;
    int64_t wait_ms;
    if (api_query_int(req, "wait_ms", 0, 0, MAX_WAIT_MS, &wait_ms))
        return;
    json_t *body;
    bool done = false;
    struct sb_err err = { 0 };
    int rc = kind == WAIT_RUN ? sbd_read_run(id, &body, &done, &err)
                              : sbd_read_event_runs(id, &body, &done, &err);
    if (rc) {
        sbd_reply_read_error(req, kind == WAIT_RUN ? "run" : "event", id, rc, &err);
        return;
    }
    struct describe_wait *dw;
    if (kind == WAIT_RUN && !done && wait_ms == 0 && (dw = calloc(1, sizeof *dw))) {
        dw->req = req;
        dw->body = body;
        sb_req_suspend(req);
        sbd_engine_describe(sbd->engine, id, described, dw);
        return;
    }
    if (done || wait_ms == 0) {
        sb_reply_json(req, 200, body);
        return;
    }
    json_decref(body);
    sb_req_suspend(req);
    sbd_waiters_add(sbd->waiters, req, kind, id, sb_now_ms() + wait_ms);
}

void h_run_get(struct sb_req *req)
{
    get_with_wait(req, WAIT_RUN);
}

void h_event_runs(struct sb_req *req)
{
    get_with_wait(req, WAIT_EVENT_RUNS);
}

void h_run_steps(struct sb_req *req)
{
    const char *id = sb_req_param(req, 0);
    if (!valid_id(req, id, "run"))
        return;
    struct sbd_store *st = sbd_store_reader();
    struct sb_err err = { SB_EUNAVAIL, 0, "no read connection" };
    json_t *run = st ? api_view_run(st, id, NULL, &err) : NULL;
    if (!run) {
        sbd_reply_read_error(req, "run", id, err.code, &err);
        return;
    }
    json_decref(run);
    json_t *steps = api_view_run_steps(st, id, &err);
    if (!steps) {
        sbd_reply_read_error(req, "the steps of run", id, SB_ESTORE, &err);
        return;
    }
    sb_reply_json(req, 200, json_pack("{s:o}", "data", steps));
}

static void cancel_done(void *ctx, int rc, int status)
{
    struct sb_req *req = ctx;
    if (rc == 0) {
        json_t *body;
        bool ended;
        struct sb_err err = { 0 };
        sbd_read_run(sb_req_param(req, 0), &body, &ended, &err);
        sb_reply_json(req, 200,
                      body ? body : json_pack("{s:{s:s}}", "data", "status", "Cancelled"));
    } else if (rc == SB_ENOTFOUND) {
        sb_reply_error(req, 404, "NOT_FOUND", "no such run: %s", sb_req_param(req, 0));
    } else if (rc == SB_ECONFLICT) {
        sb_reply_error(req, 409, "RUN_ENDED", "run %s has already ended (%s)", sb_req_param(req, 0),
                       run_status_name(status));
    } else {
        sb_reply_error(req, 503, "UNAVAILABLE", "could not cancel run %s: %s", sb_req_param(req, 0),
                       sb_strerror(rc));
    }
}

void h_run_cancel(struct sb_req *req)
{
    struct sbd *sbd = sb_req_app(req);
    const char *id = sb_req_param(req, 0);
    if (!valid_id(req, id, "run"))
        return;
    sb_req_suspend(req);
    sbd_engine_cancel(sbd->engine, id, cancel_done, req);
}
