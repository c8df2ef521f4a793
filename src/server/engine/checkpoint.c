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
 * mid-call, the retry carries every checkpointed step as memoized. */
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

void engine_handle_checkpoint(struct sb_engine *e, struct inbox_msg *m)
{
    struct run *r = engine_run_find(e, m->run_id);
    struct item *it = NULL;
    for (struct item *x = r ? r->items : NULL; x; x = x->next)
        if (x->id == m->qi_id && x->call)
            it = x;
    if (!r || r->ended || r->cancelled || !it || !r->loaded) {
        sb_reply_error(m->req, 409, "STALE_DISPATCH",
                       "run %s has no call %lld in flight: this dispatch is stale", m->run_id,
                       (long long)m->qi_id);
        json_decref(m->steps);
        return;
    }
    if (json_array_size(m->steps) > OUTCOME_MAX_OPS) {
        sb_reply_error(m->req, 400, "INVALID_CHECKPOINT", "%zu steps in one checkpoint; at most %d",
                       json_array_size(m->steps), OUTCOME_MAX_OPS);
        json_decref(m->steps);
        return;
    }
    size_t i;
    json_t *o;
    json_array_foreach(m->steps, i, o)
    {
        if (is_step_run(o) && !engine_op_step_id(o)) {
            sb_reply_error(m->req, 400, "INVALID_CHECKPOINT", "checkpoint step %zu has no valid id",
                           i);
            json_decref(m->steps);
            return;
        }
    }
    struct run_update *op = runop_new(e, r);
    if (!op) {
        sb_reply_error(m->req, 503, "UNAVAILABLE", "out of memory");
        json_decref(m->steps);
        return;
    }
    int64_t now = sb_now_ms();
    json_array_foreach(m->steps, i, o)
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
        struct step_rec s = { .run_id = r->id,
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
    it->progress_at = now;
    op->progress = true;
    op->checkpoint_req = m->req;
    json_decref(m->steps);
    runop_submit(op);
}
