/* repair.c - a run whose change was not stored. Memory changes at once and
 * the store follows at the commit (decide.c), so a failed commit leaves
 * memory ahead of the store; the run is then rebuilt from the store once
 * none of its changes is pending (runop_committed), with three rules:
 *  - a transient failure (the store busy, I/O, out of memory) makes the run
 *    wait with backoff and jitter before it goes on: a full disk must not
 *    call every worker once a second;
 *  - a change that can never be stored (it cannot be encoded, the store
 *    refuses it) is not retried: the run is ended with the reason
 *    (StateNotStorable); if that end fails transiently it is tried again
 *    after the backoff, and only if it fails for good is the run left to
 *    the next start (run_not_ended);
 *  - a read that fails during the rebuild is retried after the backoff by a
 *    memory-only item (ITEM_REBUILD), never proceeding on part of the rows.
 * Engine thread only. */
#include "engine_internal.h"
#include "backoff.h"
#include "common/clock.h"
#include "common/log.h"
#include "server/store/store.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define REPAIR_BACKOFF_MAX_MS 30000

void repair_note_failure(struct sbd_run *r, struct sbd_run_update *op, int rc)
{
    r->out_of_step = true;
    if (rc != SB_ECONFLICT) /* a conflict is the store deciding, not failing */
        r->commit_failures++;
    if (op->fallback && !sb_err_transient(rc)) {
        SB_LOGK(SB_ERROR, "run_not_ended", ((struct sb_lf[]){ LF_S("run_id", r->id) }),
                "run %s could not be ended: %s; the next start takes it up", r->id,
                op->fail_msg ? op->fail_msg : "?");
        r->abandoned = true;
        return;
    }
    if (rc == SB_ECONFLICT || sb_err_transient(rc) || r->unstorable)
        return;
    r->unstorable = op->fail_msg ? op->fail_msg : strdup(sb_strerror(rc));
    op->fail_msg = NULL;
    r->unstorable_status = op->finish_status == RUN_CANCELLED ? RUN_CANCELLED : RUN_FAILED;
}

/* Ends a run whose change could not be stored, with a short error; the
 * reason stays with the run until that end is stored. */
static void end_unstorable(struct sbd_engine *e, struct sbd_run *r)
{
    struct sbd_run_update *op = runop_new(e, r);
    if (!op)
        return;
    op->fallback = true;
    decide_fail(e, r, op, r->unstorable_status, 0, "StateNotStorable",
                "sysbusd could not store this run's state, so it ended the run: %.400s",
                r->unstorable ? r->unstorable : "?");
}

struct reload_ctx {
    struct sbd_engine *e;
    int64_t not_before; /* wall ms */
};

static int reload_item(void *ctx, const struct sbd_qitem_rec *q)
{
    struct reload_ctx *rc = ctx;
    struct sbd_run *r = engine_run_find(rc->e, q->run_id);
    if (!r)
        return 0;
    struct sbd_item *it = engine_item_load(rc->e, r, q);
    if (it->due_at < rc->not_before)
        it->due_at = rc->not_before;
    return 0;
}

/* The run comes back after delay_ms through a memory-only item. */
static void rebuild_later(struct sbd_engine *e, struct sbd_run *r, int64_t delay_ms)
{
    engine_run_drop_items(e, r);
    struct sbd_item *it = engine_item_new(e, r, sbd_engine_alloc_qid(e), "rebuild");
    it->flags = ITEM_REBUILD;
    it->due_at = sb_now_ms() + delay_ms;
}

static void answer_cancels(struct sbd_run *r, int rc)
{
    while (r->cancels) {
        struct sbd_cancel_req *c = r->cancels;
        r->cancels = c->next;
        if (c->cb)
            c->cb(c->ctx, rc, -1);
        free(c);
    }
}

void repair_rebuild(struct sbd_engine *e, struct sbd_run *r)
{
    assert(r->committing == 0);
    r->out_of_step = false;
    r->ended = false;
    r->cancelled = false;
    engine_run_drop_items(e, r);
    engine_run_unload(e, r);
    int64_t delay = r->commit_failures > 0
                        ? sbd_backoff_transport_ms(r->commit_failures + 2, REPAIR_BACKOFF_MAX_MS)
                        : 0;
    if (r->abandoned) {
        r->ended = true;
        answer_cancels(r, SB_EIO);
        return;
    }
    struct sbd_store *st = sbd_store_reader();
    struct reload_ctx ctx = { e, sb_now_ms() + delay };
    struct sb_err err = { 0 };
    int rc = st ? sbd_store_queue_scan_run(st, r->id, reload_item, &ctx, &err)
                : sb_err_set(&err, SB_EUNAVAIL, "no read connection to the store");
    if (rc < 0) {
        SB_LOGK(SB_ERROR, "run_rebuild_failed",
                ((struct sb_lf[]){ LF_S("run_id", r->id), LF_I("retry_in_ms", delay) }),
                "cannot read run %s back from the store: %s", r->id, err.msg);
        rebuild_later(e, r, delay > 1000 ? delay : 1000);
        answer_cancels(r, SB_EIO);
        return;
    }
    if (!r->items) {
        r->ended = true; /* nothing left in the store for it: ended, or to be repaired */
    } else if (r->unstorable) {
        if (r->commit_failures > 1)
            rebuild_later(e, r, delay); /* its end failed too: after the backoff */
        else
            end_unstorable(e, r); /* its cancellations are answered by that end */
        return;
    }
    answer_cancels(r, SB_EIO);
}

void repair_rebuild_due(struct sbd_engine *e, struct sbd_item *it)
{
    struct sbd_run *r = it->run;
    engine_item_free(e, it);
    repair_rebuild(e, r);
    if (r->committing == 0) {
        assert(!engine_run_stranded(r));
        if (r->ended)
            engine_run_free(e, r);
        else
            engine_run_schedule(e, r);
    }
}
