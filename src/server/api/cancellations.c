/* cancellations.c - bulk cancellation: POST /v1/cancellations cancels the
 * running runs of a function (or app) started inside a time window whose
 * trigger event satisfies an optional `if`; GET /v1/cancellations lists
 * them. The matching runs get cancel requests in one transaction (with a
 * record of the cancellation), then the engine cancels them; a crash in
 * between is finished at the next start. */
#include "api.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/ulid.h"
#include "server/cancel.h"
#include "server/expr/expr.h"
#include "server/ingest.h"
#include "server/sbd.h"
#include "server/store/store.h"
#include "server/store/writer.h"
#include "views.h"

#include <stdlib.h>
#include <string.h>

struct cancel_op {
    struct sbd_wop wop;
    struct sb_req *req;
    struct sbd *sbd;
    struct sbd_cancellation_rec rec;
    char *app_id, *function_id, *expr_src;
    struct sbd_expr *expr;
    char (*ids)[SB_ULID_SIZE];
    size_t nids;
};

static void cancel_op_free(struct cancel_op *op)
{
    free(op->app_id);
    free(op->function_id);
    free(op->expr_src);
    sbd_expr_free(op->expr);
    free(op->ids);
    free(op);
}

static int cancel_apply_in_txn(struct sbd_store *st, struct sbd_wop *w, struct sb_err *err)
{
    struct cancel_op *op = (struct cancel_op *)w;
    op->nids = 0;
    struct sbd_cancel_match m = { .app_id = op->app_id,
                                  .function_id = op->function_id,
                                  .after = op->rec.started_after,
                                  .before = op->rec.started_before,
                                  .expr = op->expr,
                                  .reason = "bulk cancellation",
                                  .now = op->rec.created_at };
    int rc = sbd_cancel_matching_in_txn(st, &m, &op->ids, &op->nids, err);
    if (rc)
        return rc;
    op->rec.run_count = (int64_t)op->nids;
    return sbd_store_cancellation_put(st, &op->rec, err);
}

static void cancel_done(struct sbd_wop *w, int rc, const struct sb_err *err)
{
    struct cancel_op *op = (struct cancel_op *)w;
    if (rc) {
        /* the running runs could not be read (or written): nothing was
         * cancelled, and a retry may succeed */
        bool transient = sb_err_transient(rc);
        sb_reply_error(op->req, transient ? 503 : 500, "STORE_ERROR",
                       "cancellation not recorded: %s", sbd_store_err_public(err));
    } else {
        sbd_ingest_announce_cancels(op->sbd->ingest, op->ids, op->nids); /* the engine's */
        json_t *runs = json_array();
        for (size_t i = 0; i < op->nids; i++)
            json_array_append_new(runs, json_string(op->ids[i]));
        sb_reply_json(op->req, 200,
                      json_pack("{s:{s:s, s:s?, s:s?, s:s?, s:I, s:o}}", "data", "id", op->rec.id,
                                "app_id", op->app_id, "function_id", op->function_id, "if",
                                op->expr_src, "run_count", (json_int_t)op->nids, "run_ids", runs));
    }
    cancel_op_free(op);
}

static int time_field(struct sb_req *req, const json_t *body, const char *name, int64_t *out)
{
    const char *v = sb_json_str(body, name);
    *out = 0;
    if (!json_object_get(body, name) || json_is_null(json_object_get(body, name)))
        return 0;
    if (v && sb_time_parse_iso(v, out) == 0)
        return 0;
    sb_reply_error(req, 400, "INVALID_CANCELLATION",
                   "%s must be an RFC 3339 time, e.g. 2026-11-27T17:00:00Z", name);
    return SB_EINVAL;
}

void h_cancellations_post(struct sb_req *req)
{
    struct sbd *sbd = sb_req_app(req);
    json_t *body = api_body_json(req);
    if (!body)
        return;
    const char *app = sb_json_str(body, "app_id");
    const char *fn = sb_json_str(body, "function_id");
    const char *expr = sb_json_str(body, "if");
    struct cancel_op *op = NULL;
    if (!json_is_object(body) || (!app && !fn)) {
        sb_reply_error(req, 400, "INVALID_CANCELLATION",
                       "give function_id and/or app_id (and optionally started_after, "
                       "started_before, if)");
        goto out;
    }
    op = calloc(1, sizeof *op);
    if (!op) {
        sb_reply_error(req, 500, "INTERNAL", "out of memory");
        goto out;
    }
    if (time_field(req, body, "started_after", &op->rec.started_after) ||
        time_field(req, body, "started_before", &op->rec.started_before))
        goto out;
    if (expr && *expr) {
        struct sb_err xerr = { 0 };
        /* matched against each run's trigger event, the only variable */
        if (!(op->expr = sbd_expr_compile_as(expr, SBD_EXPR_EVENT | SBD_EXPR_COND, &xerr))) {
            sb_reply_error(req, 400, "INVALID_EXPRESSION", "if: %s in '%.200s'", xerr.msg, expr);
            goto out;
        }
        op->expr_src = strdup(expr);
    }
    op->app_id = app ? strdup(app) : NULL;
    op->function_id = fn ? strdup(fn) : NULL;
    op->rec.app_id = op->app_id;
    op->rec.function_id = op->function_id;
    op->rec.expression = op->expr_src;
    op->rec.created_at = sb_now_ms();
    sb_ulid_new(op->rec.created_at, op->rec.id);
    op->wop.apply = cancel_apply_in_txn;
    op->wop.done = cancel_done;
    op->req = req;
    op->sbd = sbd;
    json_decref(body);
    sb_req_suspend(req);
    sbd_writer_submit(sbd->writer, &op->wop);
    return;
out:
    if (op)
        cancel_op_free(op);
    json_decref(body);
}

void h_cancellations_list(struct sb_req *req)
{
    int64_t limit;
    if (api_query_int(req, "limit", 20, 1, 1000, &limit))
        return;
    struct sbd_store *st = sbd_store_reader();
    struct sb_err err = { SB_EUNAVAIL, 0, "no read connection" };
    json_t *list = st ? api_view_cancellations(st, (int)limit, &err) : NULL;
    if (!list) {
        api_store_error(req, "cancellations", &err);
        return;
    }
    sb_reply_json(req, 200, json_pack("{s:o}", "data", list));
}
