/* waits.c - resolving open waits in a writer transaction (see waits.h). */
#include "waits.h"
#include "common/clock.h"
#include "common/json.h"
#include "event.h"
#include "expr/expr.h"
#include "qid.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool sbd_wait_matches(const char *expr, const char *trigger_body, const json_t *candidate)
{
    if (!expr)
        return true;
    struct sbd_expr *x = sbd_expr_compile(expr, NULL);
    if (!x)
        return false;
    json_t *ev = trigger_body ? sb_json_parse(trigger_body, strlen(trigger_body), NULL) : NULL;
    struct sbd_expr_var vars[] = { { "event", ev }, { "async", candidate } };
    bool ok = sbd_expr_test(x, vars, 2);
    json_decref(ev);
    sbd_expr_free(x);
    return ok;
}

int sbd_wait_resolve_in_txn(struct sbd_store *st, const char *run_id, int64_t item_id,
                            const char *hash, const char *op_name, const char *memo, int64_t seq,
                            int64_t discovery_qid, int flags, int64_t now, struct sb_err *err)
{
    bool deleted;
    int rc = sbd_store_wait_delete(st, item_id, &deleted, err);
    if (!rc)
        rc = sbd_store_queue_del(st, item_id, err);
    if (!rc) {
        struct sbd_step_rec s = { .run_id = run_id,
                                  .hash = hash,
                                  .seq = seq,
                                  .op = op_name,
                                  .status = STEP_COMPLETED,
                                  .attempts = 1,
                                  .output = memo,
                                  .ended_at = now };
        rc = sbd_store_step_put(st, &s, err);
    }
    if (!rc && discovery_qid > 0) {
        struct sbd_qitem_rec q = { .id = discovery_qid,
                                   .run_id = run_id,
                                   .step_id = "step",
                                   .due_at = now,
                                   .flags = flags & QF_PARALLEL };
        rc = sbd_store_queue_put(st, &q, err);
    }
    return rc;
}

/* ---- at ingest ---- */

struct on_event_ctx {
    struct sbd_store *st;
    struct sbd_qids *qids;
    struct sbd_event *ev;
    struct sbd_wait_resolution **res;
    size_t *nres;
    struct sb_err *err;
    int64_t now;
};

static int on_wait_in_txn(void *ctx, const struct sbd_wait_rec *w, const char *trigger_event,
                          int64_t run_queue_rows, int flags)
{
    struct on_event_ctx *oc = ctx;
    /* the event is parsed only for a wait with an `if`, and then only once */
    if (w->expression && !sbd_wait_matches(w->expression, trigger_event, sbd_event_json(oc->ev)))
        return 0;
    /* the timeout item is the run's only queue row: the discovery call is next */
    int64_t discovery = run_queue_rows <= 1 ? sbd_qid_new(oc->qids) : 0;
    int64_t seq;
    int rc = sbd_store_next_seq(oc->st, w->run_id, &seq, oc->err);
    if (rc)
        return sb_err_set(oc->err, rc, "cannot read the step position of run %s", w->run_id);
    rc = sbd_wait_resolve_in_txn(oc->st, w->run_id, w->item_id, w->step_hash, "WaitForEvent",
                                 oc->ev->body, seq, discovery, flags, oc->now, oc->err);
    if (rc)
        return rc;
    struct sbd_wait_resolution *nr = realloc(*oc->res, (*oc->nres + 1) * sizeof *nr);
    if (!nr)
        return sb_err_set(oc->err, SB_ENOMEM, "out of memory");
    *oc->res = nr;
    struct sbd_wait_resolution *r = &nr[(*oc->nres)++];
    memset(r, 0, sizeof *r);
    snprintf(r->run_id, sizeof r->run_id, "%s", w->run_id);
    snprintf(r->hash, sizeof r->hash, "%s", w->step_hash);
    r->item_id = w->item_id;
    r->memo = strdup(oc->ev->body);
    r->discovery_qid = discovery;
    r->flags = flags;
    return r->memo ? 0 : sb_err_set(oc->err, SB_ENOMEM, "out of memory");
}

int sbd_waits_on_event_in_txn(struct sbd_store *st, struct sbd_qids *qids, struct sbd_event *ev,
                              struct sbd_wait_resolution **res, size_t *nres, struct sb_err *err)
{
    if (!sbd_store_has_waits(st))
        return 0;
    struct on_event_ctx oc = { st, qids, ev, res, nres, err, sb_now_ms() };
    return sbd_store_waits_for(st, ev->name, on_wait_in_txn, &oc, err);
}

void sbd_wait_resolutions_free(struct sbd_wait_resolution *res, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(res[i].memo);
    free(res);
}
