/* checkpoint.c - v4 SDK async checkpoints.
 *
 * A call carries ctx.fn_id and ctx.qi_id (the item's id). A v4 SDK then runs
 * the function's steps one after the other inside that one call, and after
 * each step POSTs it to /v1/checkpoint/{runId}/async, waiting for the answer
 * before the next step. Here such a checkpoint is accepted only for the
 * run's call in flight with that qi_id (else 409: the SDK stops, the call is
 * stale), its StepRun ops are memoized like a 206 would be, and the answer
 * (200) is sent after the commit, so a step is durable before the next one
 * starts. The call itself stays in flight and ends with a normal response
 * (206 with RunComplete, a step error, a sleep...). If the worker dies
 * mid-call, the retry carries every checkpointed step as memoized.
 *
 * Threads: the HTTP thread posts MSG_CHECKPOINT (sbd_engine_checkpoint);
 * engine_handle_checkpoint runs on the engine thread; the answer is sent by
 * runop_done on the writer thread after the commit. */
#include "engine_internal.h"
#include "common/clock.h"
#include "common/httpd.h"
#include "common/json.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

static bool is_step_run(const json_t *op)
{
    const char *opcode = sb_json_str(op, "op");
    return opcode && (strcmp(opcode, "StepRun") == 0 || strcmp(opcode, "Step") == 0);
}

/* The call in flight that a checkpoint belongs to, and whether its steps can
 * be taken: 0 with *rp and *itp set; SB_ECONFLICT when the run has no such
 * call in flight (the dispatch is stale), SB_EINVAL when the steps are
 * refused; err says why. */
static int checkpoint_target(struct sbd_engine *e, const struct sbd_inbox_msg *m,
                             struct sbd_run **rp, struct sbd_item **itp, struct sb_err *err)
{
    struct sbd_run *r = engine_run_find(e, m->checkpoint.run_id);
    struct sbd_item *it = NULL;
    for (struct sbd_item *x = r ? r->items : NULL; x; x = x->next)
        if (x->id == m->checkpoint.qi_id && x->call)
            it = x;
    if (!r || r->ended || r->cancelled || !it || !r->loaded)
        return sb_err_set(err, SB_ECONFLICT,
                          "run %s has no call %lld in flight: this dispatch is stale",
                          m->checkpoint.run_id, (long long)m->checkpoint.qi_id);
    const json_t *steps = m->checkpoint.steps;
    if (json_array_size(steps) > OUTCOME_MAX_OPS)
        return sb_err_set(err, SB_EINVAL, "%zu steps in one checkpoint; at most %d",
                          json_array_size(steps), OUTCOME_MAX_OPS);
    size_t i;
    const json_t *o;
    json_array_foreach(steps, i, o)
    {
        if (is_step_run(o) && !engine_op_step_id(o))
            return sb_err_set(err, SB_EINVAL, "checkpoint step %zu has no valid id", i);
    }
    *rp = r;
    *itp = it;
    return 0;
}

/* Adds the StepRun ops of steps to op, memoized in the run as well. */
static void checkpoint_memoize(struct sbd_engine *e, struct sbd_run *r, const struct sbd_item *it,
                               struct sbd_run_update *op, const json_t *steps, int64_t now)
{
    size_t i;
    const json_t *o;
    json_array_foreach(steps, i, o)
    {
        if (!is_step_run(o)) {
            const char *opcode = sb_json_str(o, "op");
            SB_LOGK(SB_DEBUG, "checkpoint_op_ignored", ((struct sb_lf[]){ LF_S("run_id", r->id) }),
                    "checkpoint op '%.64s' ignored", opcode ? opcode : "?");
            continue;
        }
        const char *hash = engine_op_step_id(o);
        json_t *data = json_object_get(o, "data");
        json_t *memo = json_pack("{s:O}", "data", data ? data : json_null());
        char *mv = memo ? sb_json_dumps(memo, NULL) : NULL;
        json_decref(memo);
        if (!mv) {
            op->alloc_failed = true; /* the writer refuses it; the SDK gets 503 */
            break;
        }
        const char *name = sb_json_str(o, "displayName");
        if (!name)
            name = sb_json_str(o, "name");
        if (name && sb_name_check(name, strlen(name), "name", SB_MAX_ID, NULL) != 0)
            name = NULL;
        struct sbd_step_rec s = { .run_id = r->id,
                                  .hash = hash,
                                  .seq = (int64_t)r->nmemo,
                                  .name = name,
                                  .op = "StepRun",
                                  .status = STEP_COMPLETED,
                                  .attempts = it->attempt + 1,
                                  .output = mv,
                                  .started_at = it->progress_at ? it->progress_at : it->started_at,
                                  .ended_at = now };
        runop_add_step(op, &s);
        if (engine_memo_put(e, r, hash, mv) != 0)
            op->alloc_failed = true;
        free(mv);
    }
}

void engine_handle_checkpoint(struct sbd_engine *e, struct sbd_inbox_msg *m)
{
    struct sb_err err = { 0 };
    struct sbd_run *r = NULL;
    struct sbd_item *it = NULL;
    int rc = checkpoint_target(e, m, &r, &it, &err);
    struct sbd_run_update *op = rc ? NULL : runop_new(e, r);
    if (!rc && !op)
        rc = sb_err_set(&err, SB_ENOMEM, "out of memory");
    if (rc) {
        if (rc == SB_ECONFLICT)
            sb_reply_error(m->checkpoint.req, 409, "STALE_DISPATCH", "%s", err.msg);
        else if (rc == SB_EINVAL)
            sb_reply_error(m->checkpoint.req, 400, "INVALID_CHECKPOINT", "%s", err.msg);
        else
            sb_reply_error(m->checkpoint.req, 503, "UNAVAILABLE", "%s", err.msg);
        json_decref(m->checkpoint.steps);
        return;
    }
    int64_t now = sb_now_ms();
    checkpoint_memoize(e, r, it, op, m->checkpoint.steps, now);
    it->progress_at = now;
    op->progress = true;
    op->checkpoint_req = m->checkpoint.req;
    json_decref(m->checkpoint.steps);
    runop_submit(op);
}
