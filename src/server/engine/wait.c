/* wait.c - step.waitForEvent.
 *
 * A WaitForEvent op gives the run a wait: a row in `waits` (event name,
 * optional `if` expression) and a timeout item (QF_WAIT) due at the timeout.
 * Three things can end it, each in one writer transaction:
 *  - registration (runop_apply_in_txn, wait_register_in_txn): events of
 *    that name stored since the call was dispatched are scanned first, so
 *    an event that arrived while the wait was being set up resolves it at
 *    once;
 *  - ingest of a matching event (sbd_waits_on_event_in_txn in
 *    server/waits.c, in the event's transaction): the step is memoized with
 *    the event, the wait and its timeout item are deleted, and the engine is
 *    told after the commit (MSG_WAITS_RESOLVED);
 *  - the timeout (decide_timer in decide.c): memoizes null, but only if it can
 *    still delete the wait row; if an event won the race, the timeout's
 *    transaction is rolled back (SB_ECONFLICT) and the event's result stands.
 * In the expression, `event` is the run's trigger event and `async` the
 * candidate event.
 *
 * The store side of a resolution (sbd_wait_resolve_in_txn) and the match of
 * an event against a wait's `if` (sbd_wait_matches) are server/waits.c's,
 * shared with ingest, which resolves waits without the engine.
 *
 * Threads: wait_parse_op, wait_apply_resolution, wait_after_commit and
 * engine_handle_waits_resolved run on the engine thread; the *_in_txn
 * functions in the writer's transaction (from runop_apply_in_txn) and touch
 * only the store and their op. */
#include "engine_internal.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "server/expr/expr.h"
#include "server/sbd.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wait_reg_free(struct sbd_wait_reg *w)
{
    free(w->hash);
    free(w->event_name);
    free(w->expr);
    free(w->trigger_event);
    free(w->matched);
    memset(w, 0, sizeof *w);
}

/* The wait's timeout: a duration from now ("1h") or an ISO time. */
static int wait_timeout(const char *name, const char *timeout, int64_t now, int64_t *timeout_at,
                        struct sb_err *err)
{
    int64_t t;
    if (timeout && sb_duration_parse(timeout, 0, &t) == 0) {
        *timeout_at = now + t;
        return 0;
    }
    if (timeout && sb_time_parse_iso(timeout, &t) == 0) {
        *timeout_at = t;
        return 0;
    }
    return sb_err_set(err, SB_EINVAL,
                      "waitForEvent('%.100s') needs a timeout such as \"1h\" (got '%.50s')", name,
                      timeout ? timeout : "");
}

int wait_parse_op(const json_t *op, int64_t now, struct sbd_wait_reg *w, int64_t *timeout_at,
                  struct sb_err *err)
{
    memset(w, 0, sizeof *w);
    const char *name = sb_json_str(op, "name");
    const json_t *opts = json_object_get(op, "opts");
    const char *timeout = sb_json_str(opts, "timeout");
    const char *expr = sb_json_str(opts, "if");
    if (!name || !*name)
        return sb_err_set(err, SB_EINVAL, "waitForEvent without an event name");
    struct sb_err nerr = { 0 };
    if (sb_json_name(json_object_get(op, "name"), "its event name", SB_MAX_ID, &nerr) != 0)
        return sb_err_set(err, SB_EINVAL, "waitForEvent: %s", nerr.msg);
    int rc = wait_timeout(name, timeout, now, timeout_at, err);
    if (rc)
        return rc;
    if (expr && *expr) {
        struct sb_err xerr = { 0 };
        struct sbd_expr *x = sbd_expr_compile(expr, &xerr);
        if (!x)
            return sb_err_set(err, SB_EINVAL,
                              "waitForEvent('%.100s'): invalid expression '%.200s': %s", name, expr,
                              xerr.msg);
        sbd_expr_free(x);
        w->expr = strdup(expr);
    }
    w->event_name = strdup(name);
    if (!w->event_name || (expr && *expr && !w->expr)) {
        wait_reg_free(w);
        return sb_err_set(err, SB_ENOMEM, "out of memory registering waitForEvent('%.100s')", name);
    }
    return 0;
}

struct scan_ctx {
    struct sbd_wait_reg *w;
    const char *found;
    char *found_copy;
};

static int scan_event_in_txn(void *ctx, const char *id, const char *body)
{
    (void)id;
    struct scan_ctx *sc = ctx;
    bool match = true;
    if (sc->w->expr) {
        json_t *as = sb_json_parse(body, strlen(body), NULL);
        match = sbd_wait_matches(sc->w->expr, sc->w->trigger_event, as);
        json_decref(as);
    }
    if (match) {
        sc->found_copy = strdup(body);
        return sc->found_copy ? 1 : SB_ENOMEM; /* stop: the first matching event wins */
    }
    return 0;
}

int wait_register_in_txn(struct sbd_store *st, struct sbd_run_update *op, struct sbd_wait_reg *w,
                         struct sb_err *err)
{
    struct sbd_wait_rec rec = { .item_id = w->item_id,
                                .run_id = op->run_id,
                                .step_hash = w->hash,
                                .event_name = w->event_name,
                                .expression = w->expr,
                                .created_at = op->now };
    int rc = sbd_store_wait_put(st, &rec, err);
    if (rc)
        return rc;
    struct scan_ctx sc = { w, NULL, NULL };
    rc = sbd_store_events_since(st, w->event_name, w->min_event_id, scan_event_in_txn, &sc, err);
    if (rc < 0) /* the scan's own code: a busy store is retried, not taken as final */
        return sb_err_set(err, rc, "cannot scan events for a wait");
    if (!sc.found_copy)
        return 0;
    rc = sbd_wait_resolve_in_txn(st, op->run_id, w->item_id, w->hash, "WaitForEvent", sc.found_copy,
                                 w->seq, w->discovery_qid, w->flags, op->now, err);
    if (rc) {
        free(sc.found_copy);
        return rc;
    }
    w->matched = sc.found_copy;
    return 0;
}

static struct sbd_item *find_item(struct sbd_run *r, int64_t id)
{
    for (struct sbd_item *it = r->items; it; it = it->next)
        if (it->id == id)
            return it;
    return NULL;
}

/* After a wait was resolved in the store: the run's memory follows. Adds a
 * discovery item (in the store too) when nothing else is left to do. */
void wait_apply_resolution(struct sbd_engine *e, struct sbd_run *r, int64_t item_id,
                           const char *hash, const char *memo, int64_t discovery_qid, int flags)
{
    struct sbd_item *it = find_item(r, item_id);
    if (it)
        engine_item_free(e, it);
    bool have = false;
    for (size_t i = 0; r->loaded && i < r->nmemo; i++)
        have |= strcmp(r->memo[i].hash, hash) == 0;
    if (!have && engine_memo_put(e, r, hash, memo) != 0)
        engine_run_unload(e, r); /* reloaded from the store, which has it */
    if (discovery_qid > 0 && !find_item(r, discovery_qid)) {
        struct sbd_item *d = engine_item_new(e, r, discovery_qid, "step");
        d->flags = flags & ITEM_PARALLEL;
        d->due_at = sb_now_ms();
    }
    if (!r->items && !r->ended) {
        /* resolved while other steps were still being committed: nothing
         * left now, so the next discovery call is due. Its item exists even
         * when its write cannot be allocated (the run must not be left with
         * nothing to do): the call's result then stores it, and a crash
         * before that leaves a Running run without rows, which the next
         * start repairs. */
        struct sbd_item *d = engine_item_new(e, r, sbd_engine_alloc_qid(e), "step");
        d->flags = flags & ITEM_PARALLEL;
        d->due_at = sb_now_ms();
        struct sbd_run_update *op = runop_new(e, r);
        if (op) {
            runop_put_item(op, d);
            runop_submit(op);
        } else {
            SB_LOG(SB_ERROR, "oom", "cannot store the next call of run %s; it is made anyway",
                   r->id);
        }
    }
}

void wait_after_commit(struct sbd_engine *e, struct sbd_run *r, struct sbd_run_update *op)
{
    for (size_t i = 0; i < op->nwaits; i++) {
        struct sbd_wait_reg *w = &op->waits[i];
        if (w->matched)
            wait_apply_resolution(e, r, w->item_id, w->hash, w->matched, w->discovery_qid,
                                  w->flags);
    }
}

void engine_handle_waits_resolved(struct sbd_engine *e, struct sbd_inbox_msg *m)
{
    for (size_t i = 0; i < m->waits_resolved.n; i++) {
        struct sbd_wait_resolution *res = &m->waits_resolved.res[i];
        struct sbd_run *r = engine_run_find(e, res->run_id);
        if (r && !r->ended)
            wait_apply_resolution(e, r, res->item_id, res->hash, res->memo, res->discovery_qid,
                                  res->flags);
        if (r && r->committing == 0 && !r->ended) {
            assert(!engine_run_stranded(r));
            engine_run_schedule(e, r);
        }
    }
    sbd_wait_resolutions_free(m->waits_resolved.res, m->waits_resolved.n);
}
