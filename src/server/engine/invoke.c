/* invoke.c - step.invoke.
 *
 * An InvokeFunction op starts a child run of the target function, triggered
 * by an `inngest/function.invoked` event whose data is the payload's data,
 * and gives the parent step a wait: a row in `waits` naming the child run,
 * with a timeout item (QF_INVOKE). Both are written in the parent's
 * transaction. When the child ends, the transaction that ends it memoizes
 * {"data": result} (or {"error": ...}) for the parent's step, removes the
 * wait and its timeout item (adding the discovery item when nothing else is
 * pending), and the engine learns of it after the commit. The timeout
 * memoizes InngestInvokeTimeoutError, but like a waitForEvent timeout only if
 * the wait row is still there. An unknown target fails the step (not the
 * run) with Inngest's error, {"name": "Error", "message": "could not find
 * function with ID: <id>"}: the function sees it, as with a failed step.
 *
 * Threads: invoke_prepare runs on the engine thread (it reads the registry
 * snapshot); the *_in_txn functions in the writer's transaction, on the op's
 * copies only. */
#include "engine_internal.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/ulid.h"
#include "server/sbd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_INVOKE_TIMEOUT_MS (365LL * 86400 * 1000)

void invoke_reg_free(struct sbd_invoke_reg *inv)
{
    free(inv->hash);
    sbd_ingest_free(&inv->child);
    memset(inv, 0, sizeof *inv);
}

/* The target and the timeout of an InvokeFunction op: 0, or SB_EINVAL. */
static int invoke_opts(const json_t *opts, int64_t now, const char **target, int64_t *timeout_at,
                       struct sb_err *err)
{
    *target = sb_json_str(opts, "function_id");
    if (!*target || !**target)
        return sb_err_set(err, SB_EINVAL, "step.invoke without opts.function_id");
    struct sb_err nerr = { 0 };
    const json_t *fid = json_object_get(opts, "function_id");
    if (sb_json_name(fid, "opts.function_id", SB_MAX_ID, &nerr) != 0) {
        /* a NUL would otherwise invoke the function named by what precedes it */
        return sb_err_set(err, SB_EINVAL, "step.invoke: %s", nerr.msg);
    }
    const char *timeout = sb_json_str(opts, "timeout");
    int64_t t;
    if (!timeout || !*timeout)
        *timeout_at = now + DEFAULT_INVOKE_TIMEOUT_MS;
    else if (sb_duration_parse(timeout, 0, &t) == 0)
        *timeout_at = now + t;
    else if (sb_time_parse_iso(timeout, &t) == 0)
        *timeout_at = t;
    else
        return sb_err_set(err, SB_EINVAL, "step.invoke of '%.200s': unreadable timeout '%.50s'",
                          *target, timeout);
    return 0;
}

/* The child's inngest/function.invoked event, in canonical form (malloc'd;
 * NULL when out of memory): the payload's data and user, and where it came
 * from as data._inngest. */
static char *invoked_event(const struct sbd_run *r, const json_t *opts, const char *id, int64_t now)
{
    const json_t *payload = json_object_get(opts, "payload");
    json_t *data = json_object_get(payload, "data");
    json_t *user = json_object_get(payload, "user");
    json_t *v = json_object_get(payload, "v");
    json_t *ev = json_object();
    json_t *evdata = json_is_object(data) ? json_deep_copy(data) : json_object();
    json_object_set_new(evdata, "_inngest",
                        json_pack("{s:s, s:s}", "source_run_id", r->id, "source_fn_id",
                                  r->function_id ? r->function_id : ""));
    json_object_set_new(ev, "name", json_string("inngest/function.invoked"));
    json_object_set_new(ev, "data", evdata);
    json_object_set_new(ev, "id", json_string(id));
    json_object_set_new(ev, "ts", json_integer(now));
    json_object_set_new(ev, "user", json_is_object(user) ? json_incref(user) : json_object());
    if (json_is_string(v))
        json_object_set(ev, "v", v);
    char *body = ev ? sb_json_dumps(ev, NULL) : NULL;
    json_decref(ev);
    return body;
}

int invoke_prepare(struct sbd_engine *e, struct sbd_run *r, const json_t *op, int64_t now,
                   struct sbd_invoke_reg *inv, int64_t *timeout_at, struct sb_err *err)
{
    memset(inv, 0, sizeof *inv);
    const json_t *opts = json_object_get(op, "opts");
    const char *target;
    int rc = invoke_opts(opts, now, &target, timeout_at, err);
    if (rc)
        return rc;
    const struct sbd_fn *f = sbd_snap_find(e->snap, target);
    if (!f || f->removed) {
        /* Inngest's wording (pkg/execution/runner/runner.go), which SDK-side
         * tests match on; the SDK throws it as a StepError named "Error". */
        return sb_err_set(err, SB_ENOTFOUND, "could not find function with ID: %.300s", target);
    }
    struct sbd_event pe = { 0 };
    sb_ulid_new(now, pe.id);
    pe.body = invoked_event(r, opts, pe.id, now);
    pe.name = strdup("inngest/function.invoked");
    pe.ts = now;
    if (!pe.body || !pe.name) {
        sbd_event_clear(&pe);
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    }
    /* no flow control and no cancelOn for the child: it starts as asked */
    if (sbd_ingest_init_run(e->sbd->ingest, &inv->child, &pe, f, now, inv->child_run_id) != 0)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    return 0;
}

int invoke_register_in_txn(struct sbd_store *st, struct sbd_run_update *op,
                           struct sbd_invoke_reg *inv, struct sb_err *err)
{
    int rc = sbd_ingest_apply_in_txn(st, op->e->sbd->ingest, &inv->child, err);
    if (rc)
        return rc;
    struct sbd_wait_rec w = { .item_id = inv->item_id,
                              .run_id = op->run_id,
                              .step_hash = inv->hash,
                              .child_run_id = inv->child_run_id,
                              .created_at = op->now };
    return sbd_store_wait_put(st, &w, err);
}

int invoke_resolve_parent_in_txn(struct sbd_store *st, struct sbd_run_update *op,
                                 struct sb_err *err)
{
    struct sbd_wait_rec w;
    int64_t rows;
    int flags;
    int rc = sbd_store_wait_for_child(st, op->run_id, &w, &rows, &flags, err);
    if (rc == SB_ENOTFOUND)
        return 0;
    if (rc)
        return sb_err_set(err, rc, "cannot look up who invoked run %s", op->run_id);
    json_t *memo;
    if (op->finish_status == RUN_COMPLETED) {
        json_t *out = op->output ? sb_json_parse(op->output, strlen(op->output), NULL) : NULL;
        memo = json_pack("{s:o}", "data", out ? out : json_null());
    } else {
        json_t *e = op->error ? sb_json_parse(op->error, strlen(op->error), NULL) : NULL;
        if (!json_is_object(e)) {
            json_decref(e);
            e = json_pack("{s:s, s:s}", "name", "Error", "message", "the invoked run failed");
        }
        memo = json_pack("{s:o}", "error", e);
    }
    char *text = sb_json_dumps(memo, NULL);
    json_decref(memo);
    int64_t discovery = rows <= 1 ? sbd_engine_alloc_qid(op->e) : 0;
    int64_t seq = 0;
    rc = text ? sbd_store_next_seq(st, w.run_id, &seq, err)
              : sb_err_set(err, SB_ENOMEM, "out of memory");
    if (rc && text)
        rc = sb_err_set(err, rc, "cannot read the step position of run %s", w.run_id);
    if (!rc)
        rc = sbd_wait_resolve_in_txn(st, w.run_id, w.item_id, w.step_hash, "InvokeFunction", text,
                                     seq, discovery, flags, op->now, err);
    if (!rc) {
        struct sbd_wait_resolution *nr = realloc(op->resolved, (op->nresolved + 1) * sizeof *nr);
        if (!nr) {
            rc = sb_err_set(err, SB_ENOMEM, "out of memory");
        } else {
            op->resolved = nr;
            struct sbd_wait_resolution *res = &nr[op->nresolved++];
            memset(res, 0, sizeof *res);
            snprintf(res->run_id, sizeof res->run_id, "%s", w.run_id);
            snprintf(res->hash, sizeof res->hash, "%s", w.step_hash);
            res->item_id = w.item_id;
            res->memo = text;
            text = NULL;
            res->discovery_qid = discovery;
            res->flags = flags;
        }
    }
    free(text);
    sbd_wait_rec_free(&w);
    return rc;
}
