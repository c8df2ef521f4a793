/* runop.c - the write operation that records one state change of a run:
 * step rows, queue rows put/deleted, progress, and possibly the run's end,
 * all in the writer's batch transaction (so a run's status and its queue rows
 * always change together). After the commit the engine continues the run.
 *
 * Threads, in the order an op goes through them:
 *  - engine thread: runop_new, runop_add_step / put_item / del_item,
 *    runop_submit build the op from the run (copies of what it writes;
 *    op->run is dereferenced on the engine thread only);
 *  - writer thread, inside its transaction: runop_apply_in_txn (and the
 *    *_in_txn functions of wait.c, invoke.c and lifecycle.c it calls): the
 *    store and the op only;
 *  - writer thread, after the commit: runop_done answers a checkpoint,
 *    hands invoked and triggered runs on, and posts MSG_COMMITTED;
 *  - engine thread: runop_committed (MSG_COMMITTED) continues the run and
 *    frees the op. */
#include "engine_internal.h"
#include "common/clock.h"
#include "common/httpd.h"
#include "common/log.h"
#include "server/lifecycle.h"
#include "server/metrics.h"
#include "server/sbd.h"
#include "server/waiters.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

void runop_free(struct sbd_run_update *op)
{
    if (!op)
        return;
    for (size_t i = 0; i < op->nsteps; i++) {
        free((char *)op->steps[i].hash);
        free((char *)op->steps[i].name);
        free((char *)op->steps[i].op);
        free((char *)op->steps[i].output);
        free((char *)op->steps[i].error);
    }
    free(op->steps);
    for (size_t i = 0; i < op->nputs; i++) {
        free((char *)op->puts[i].step_id);
        free((char *)op->puts[i].last_error);
    }
    free(op->puts);
    free(op->dels);
    for (size_t i = 0; i < op->nwaits; i++)
        wait_reg_free(&op->waits[i]);
    free(op->waits);
    for (size_t i = 0; i < op->ninvokes; i++)
        invoke_reg_free(&op->invokes[i]);
    free(op->invokes);
    sbd_wait_resolutions_free(op->resolved, op->nresolved);
    sbd_ingest_free(&op->lifecycle);
    free(op->output);
    free(op->error);
    free(op->fail_msg);
    free(op);
}

static int runop_apply_in_txn(struct sbd_store *st, struct sbd_wop *w, struct sb_err *err)
{
    struct sbd_run_update *op = (struct sbd_run_update *)w;
    int rc = 0;
    if (op->alloc_failed) /* a partial change must not be stored */
        return sb_err_set(err, SB_ENOMEM, "out of memory while preparing the change");
    if (op->wait_timeout_item) {
        bool deleted;
        if ((rc = sbd_store_wait_delete(st, op->wait_timeout_item, &deleted, err)))
            return rc;
        if (!deleted)
            return sb_err_set(err, SB_ECONFLICT, "the wait was resolved by an event first");
    }
    for (size_t i = 0; !rc && i < op->nsteps; i++)
        rc = sbd_store_step_put(st, &op->steps[i], err);
    for (size_t i = 0; !rc && i < op->ndels; i++)
        rc = sbd_store_queue_del(st, op->dels[i], err);
    for (size_t i = 0; !rc && i < op->nputs; i++)
        rc = sbd_store_queue_put(st, &op->puts[i], err);
    for (size_t i = 0; !rc && i < op->nwaits; i++)
        rc = wait_register_in_txn(st, op, &op->waits[i], err);
    for (size_t i = 0; !rc && i < op->ninvokes; i++)
        rc = invoke_register_in_txn(st, op, &op->invokes[i], err);
    if (!rc && op->progress)
        rc = sbd_store_run_progress(st, op->run_id, op->now, op->req_version, err);
    if (!rc && op->finish_status >= 0)
        rc = sbd_store_run_finish(st, op->run_id, op->finish_status, op->output, op->error,
                                  op->started_at, op->now, err);
    if (!rc && op->finish_status >= 0) {
        sbd_ingest_free(&op->lifecycle); /* a retried apply starts afresh */
        rc = sbd_lifecycle_emit_in_txn(st, op->e->sbd->ingest, op->run_id, op->finish_status,
                                       op->output, op->error, op->now, &op->lifecycle, err);
        if (!rc)
            rc = invoke_resolve_parent_in_txn(st, op, err); /* was it invoked by a step.invoke? */
    }
    return rc;
}

static void runop_done(struct sbd_wop *w, int rc, const struct sb_err *err)
{
    struct sbd_run_update *op = (struct sbd_run_update *)w;
    if (rc == SB_ECONFLICT)
        SB_LOGK(SB_DEBUG, "run_update_conflict", ((struct sb_lf[]){ LF_S("run_id", op->run_id) }),
                "run %s: %s", op->run_id, err ? err->msg : "conflict");
    else if (rc)
        SB_LOGK(SB_ERROR, "run_update_failed", ((struct sb_lf[]){ LF_S("run_id", op->run_id) }),
                "could not record a change of run %s: %s", op->run_id, err ? err->msg : "?");
    if (rc && rc != SB_ECONFLICT)
        op->fail_msg = strdup(err && err->msg[0] ? err->msg : sb_strerror(rc));
    if (!rc) {
        for (size_t i = 0; i < op->ninvokes; i++)
            sbd_ingest_committed(op->e->sbd->ingest, &op->invokes[i].child); /* invoked runs */
    }
    if (op->checkpoint_req) { /* the SDK goes on to its next step only now */
        if (rc)
            sb_reply_error(op->checkpoint_req, 503, "STORE_ERROR", "checkpoint not stored: %s",
                           sbd_store_err_public(err));
        else
            sb_reply_raw(op->checkpoint_req, 200, "application/json", strdup("{}"), 2);
        op->checkpoint_req = NULL;
    }
    if (!rc && op->finish_status >= 0) {
        sbd_ingest_committed(op->e->sbd->ingest, &op->lifecycle); /* runs the end triggered */
        if (op->nresolved) { /* the parent that invoked this run goes on */
            sbd_engine_waits_resolved(op->e, op->resolved, op->nresolved);
            op->resolved = NULL;
            op->nresolved = 0;
        }
        sbd_waiters_notify(op->e->sbd->waiters, op->run_id, op->batch ? NULL : op->event_id);
    }
    engine_post_committed(op->e, op, rc);
}

struct sbd_run_update *runop_new(struct sbd_engine *e, struct sbd_run *r)
{
    struct sbd_run_update *op = calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->wop.apply = runop_apply_in_txn;
    op->wop.done = runop_done;
    op->e = e;
    op->run = r;
    op->finish_status = -1;
    op->now = sb_now_ms();
    op->req_version = r->req_version;
    snprintf(op->run_id, sizeof op->run_id, "%s", r->id);
    snprintf(op->event_id, sizeof op->event_id, "%s", r->event_id);
    op->batch = r->events != NULL;
    /* a new timeouts.finish timer is stored with the run's first change */
    if (r->deadline && !r->deadline_saved && runop_put_item(op, r->deadline) == 0)
        r->deadline_saved = true;
    return op;
}

void runop_drop_pending(struct sbd_run_update *op)
{
    for (size_t i = 0; i < op->nwaits; i++)
        wait_reg_free(&op->waits[i]);
    free(op->waits);
    op->waits = NULL;
    op->nwaits = 0;
    for (size_t i = 0; i < op->ninvokes; i++)
        invoke_reg_free(&op->invokes[i]);
    free(op->invokes);
    op->invokes = NULL;
    op->ninvokes = 0;
}

int runop_add_step(struct sbd_run_update *op, const struct sbd_step_rec *s)
{
    struct sbd_step_rec *ns = realloc(op->steps, (op->nsteps + 1) * sizeof *ns);
    if (!ns) {
        op->alloc_failed = true;
        return SB_ENOMEM;
    }
    op->steps = ns;
    struct sbd_step_rec *d = &ns[op->nsteps++];
    *d = *s;
    d->run_id = op->run_id;
    d->hash = dup_or_null(s->hash);
    d->name = dup_or_null(s->name);
    d->op = dup_or_null(s->op);
    d->output = dup_or_null(s->output);
    d->error = dup_or_null(s->error);
    if ((s->hash && !d->hash) || (s->name && !d->name) || (s->op && !d->op) ||
        (s->output && !d->output) || (s->error && !d->error)) {
        op->alloc_failed = true;
        return SB_ENOMEM;
    }
    return 0;
}

int runop_put_item(struct sbd_run_update *op, const struct sbd_item *it)
{
    /* the same item twice in one op: keep the last state */
    for (size_t i = 0; i < op->nputs; i++) {
        if (op->puts[i].id == it->id) {
            free((char *)op->puts[i].step_id);
            free((char *)op->puts[i].last_error);
            op->nputs--;
            memmove(&op->puts[i], &op->puts[i + 1], (op->nputs - i) * sizeof *op->puts);
            break;
        }
    }
    struct sbd_qitem_rec *np = realloc(op->puts, (op->nputs + 1) * sizeof *np);
    if (!np) {
        op->alloc_failed = true;
        return SB_ENOMEM;
    }
    op->puts = np;
    struct sbd_qitem_rec *q = &np[op->nputs++];
    memset(q, 0, sizeof *q);
    q->id = it->id;
    q->run_id = op->run_id;
    q->step_id = strdup(it->step_id);
    q->attempt = it->attempt;
    q->due_at = it->due_at;
    q->started_at = it->started_at;
    q->transport_failures = it->transport_failures;
    q->transport_since = it->transport_since;
    q->last_error = dup_or_null(it->last_error);
    q->flags = it->flags;
    if (!q->step_id || (it->last_error && !q->last_error)) {
        op->alloc_failed = true;
        return SB_ENOMEM;
    }
    return 0;
}

int runop_del_item(struct sbd_run_update *op, int64_t id)
{
    int64_t *nd = realloc(op->dels, (op->ndels + 1) * sizeof *nd);
    if (!nd) {
        op->alloc_failed = true;
        return SB_ENOMEM;
    }
    op->dels = nd;
    op->dels[op->ndels++] = id;
    return 0;
}

void runop_submit(struct sbd_run_update *op)
{
    op->run->committing++;
    sbd_writer_submit(op->e->sbd->writer, &op->wop);
}

void runop_committed(struct sbd_engine *e, struct sbd_run_update *op, int rc)
{
    struct sbd_run *r = op->run;
    r->committing--;
    assert(r->committing >= 0);
    if (rc == 0 && op->nwaits > 0 && !r->ended)
        wait_after_commit(e, r, op);
    if (rc == 0 && op->finish_status >= 0) {
        switch (op->finish_status) {
        case RUN_COMPLETED: SBD_COUNT(runs_completed); break;
        case RUN_FAILED: SBD_COUNT(runs_failed); break;
        case RUN_CANCELLED: SBD_COUNT(runs_cancelled); break;
        }
        SB_LOGK(SB_DEBUG, "run_ended",
                ((struct sb_lf[]){ LF_S("run_id", r->id),
                                   LF_S("status", run_status_name(op->finish_status)) }),
                "run ended");
        while (r->cancels) {
            struct sbd_cancel_req *c = r->cancels;
            r->cancels = c->next;
            if (c->cb)
                c->cb(c->ctx, op->finish_status == RUN_CANCELLED ? 0 : SB_ECONFLICT,
                      op->finish_status);
            free(c);
        }
    }
    if (rc == 0) {
        r->commit_failures = 0;
        if (op->finish_status >= 0)
            r->out_of_step = false; /* ended in the store: nothing to rebuild */
    } else {
        repair_note_failure(r, op, rc);
    }
    if (r->committing == 0 && r->out_of_step)
        repair_rebuild(e, r);
    if (r->committing == 0) {
        assert(!engine_run_stranded(r));
        if (r->ended)
            engine_run_free(e, r);
        else
            engine_run_schedule(e, r);
    }
    runop_free(op);
}
