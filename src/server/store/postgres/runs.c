/* runs.c - the PostgreSQL backend's events, runs and steps: the writes of the
 * event and run paths, retention, and the reads the engine makes of a run
 * (its state for a call, its status, the counts /health shows). A port of
 * sqlite/runs.c: same rows touched, same results and errors. */
#include "pgs.h"
#include "common/buf.h"
#include "common/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pgs_event_insert(struct sbd_store *st, const struct sbd_ev_rec *ev, bool *inserted,
                     struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, ev->id);
    pgs_text(&p, ev->name);
    pgs_text(&p, ev->body);
    pgs_int(&p, ev->ts);
    pgs_int(&p, ev->received_at);
    pgs_text(&p, ev->dedupe_key);
    int64_t n = 0;
    int rc = pgs_exec(st, PGS_EVENT_INSERT, &p, &n, err);
    if (!rc)
        *inserted = n > 0;
    return rc;
}

int pgs_event_find_dedupe(struct sbd_store *st, const char *key, int64_t since_ms,
                          char out_id[SB_ULID_SIZE], struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, key);
    pgs_int(&p, since_ms);
    PGresult *r;
    int rc = pgs_run(st, PGS_EVENT_DEDUPE, &p, &r, err);
    if (rc)
        return rc;
    if (PQntuples(r) == 0) {
        rc = SB_ENOTFOUND;
    } else {
        int crc = 0;
        const char *id = pgs_col_req(r, 0, 0, &crc);
        if (crc)
            rc = pgs_col_error(err, crc);
        else
            snprintf(out_id, SB_ULID_SIZE, "%s", id);
    }
    PQclear(r);
    return rc;
}

int pgs_run_insert(struct sbd_store *st, const struct sbd_run_rec *run, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, run->id);
    pgs_text(&p, run->function_id);
    pgs_text(&p, run->app_id);
    pgs_text(&p, run->event_id);
    pgs_int(&p, RUN_RUNNING);
    pgs_int(&p, run->created_at);
    pgs_int(&p, run->created_at);
    return pgs_exec(st, PGS_RUN_INSERT, &p, NULL, err);
}

/* Runs statement id, whose one parameter is a run id; *changed (when not
 * NULL) = the rows it changed. */
static int exec_for_run(struct sbd_store *st, enum pgs_stmt_id id, const char *run_id,
                        int64_t *changed, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, run_id);
    return pgs_exec(st, id, &p, changed, err);
}

int pgs_run_finish(struct sbd_store *st, const char *run_id, int status, const char *output,
                   const char *error, int64_t started_at, int64_t ended_at, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, status);
    pgs_text(&p, output);
    pgs_text(&p, error);
    pgs_int(&p, ended_at);
    pgs_int(&p, ended_at);
    pgs_int(&p, started_at > 0 ? started_at : ended_at);
    pgs_text(&p, run_id);
    int rc = pgs_exec(st, PGS_RUN_FINISH, &p, NULL, err);
    if (rc || (rc = exec_for_run(st, PGS_QUEUE_DEL_RUN, run_id, NULL, err)))
        return rc;
    /* Single writer: the tally says which of these rows can exist at all,
     * which spares most runs three deletes. */
    struct pgs_tally *t = &pgs_conn(st)->tally;
    int64_t n = 0;
    /* its singleton key, if any, is free again */
    if (t->singletons && (rc = exec_for_run(st, PGS_FLOW_DEL_RUN, run_id, NULL, err)))
        return rc;
    /* its cancel request, if any, is done */
    if (t->open_cancels > 0) {
        if ((rc = exec_for_run(st, PGS_CANCEL_REQ_DEL, run_id, &n, err)))
            return rc;
        t->open_cancels -= n;
    }
    /* an ended run waits for nothing */
    if (t->open_waits > 0) {
        if ((rc = exec_for_run(st, PGS_WAIT_DEL_RUN, run_id, &n, err)))
            return rc;
        t->open_waits -= n;
    }
    return 0;
}

int pgs_run_progress(struct sbd_store *st, const char *run_id, int64_t now, int req_version,
                     struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, now);
    pgs_int(&p, now);
    pgs_int(&p, req_version);
    pgs_text(&p, run_id);
    return pgs_exec(st, PGS_RUN_PROGRESS, &p, NULL, err);
}

int pgs_step_put(struct sbd_store *st, const struct sbd_step_rec *s, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, s->run_id);
    pgs_text(&p, s->hash);
    if (s->seq >= 0)
        pgs_int(&p, s->seq);
    else
        pgs_text(&p, NULL);
    pgs_text(&p, s->name);
    pgs_text(&p, s->op);
    pgs_int(&p, s->status);
    pgs_int(&p, s->attempts);
    pgs_text(&p, s->output);
    pgs_text(&p, s->error);
    pgs_opt_time(&p, s->started_at);
    pgs_opt_time(&p, s->ended_at);
    return pgs_exec(st, PGS_STEP_PUT, &p, NULL, err);
}

/* One statement of the purge with its cutoff (an id or a time) and limit;
 * *deleted += the rows it removed when count is set. */
static int purge_step(struct sbd_store *st, enum pgs_stmt_id id, const char *cutoff_id,
                      int64_t before_ms, int limit, bool count, int *deleted, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    if (cutoff_id)
        pgs_text(&p, cutoff_id);
    else
        pgs_int(&p, before_ms);
    pgs_int(&p, limit);
    int64_t n = 0;
    int rc = pgs_exec(st, id, &p, &n, err);
    if (!rc && count)
        *deleted += (int)n;
    return rc;
}

int pgs_purge(struct sbd_store *st, int64_t before_ms, int limit, int *deleted, struct sb_err *err)
{
    /* expired idempotency keys and rate-limit hits older than the longest
     * period (a day): they expire on their own clock, not the retention's */
    int64_t now = sb_now_ms();
    struct pgs_params fp = PGS_PARAMS_INIT, rp = PGS_PARAMS_INIT;
    pgs_int(&fp, now);
    pgs_int(&rp, now - SBD_STORE_RATE_KEEP_MS);
    int rc = pgs_exec(st, PGS_PURGE_FLOW, &fp, NULL, err);
    if (rc || (rc = pgs_exec(st, PGS_PURGE_RATE, &rp, NULL, err)))
        return rc;
    /* events by id range (sbd_store_purge_cutoff) */
    char cutoff[SB_ULID_SIZE];
    sbd_store_purge_cutoff(before_ms, cutoff);
    *deleted = 0;
    if ((rc = purge_step(st, PGS_PURGE_STEPS, NULL, before_ms, limit, false, deleted, err)) ||
        (rc = purge_step(st, PGS_PURGE_RUN_EVENTS, NULL, before_ms, limit, false, deleted, err)) ||
        (rc = purge_step(st, PGS_PURGE_RUNS, NULL, before_ms, limit, true, deleted, err)))
        return rc;
    return purge_step(st, PGS_PURGE_EVENTS, cutoff, 0, limit, true, deleted, err);
}

/* ---- engine reads ---- */

/* The events of a batched run as a JSON array into out->events (left NULL
 * for a run of one event). */
static int run_state_events(struct sbd_store *st, const char *run_id, struct sbd_run_state *out,
                            struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, run_id);
    PGresult *r;
    int rc = pgs_run(st, PGS_RUN_STATE_EVENTS, &p, &r, err);
    if (rc)
        return rc;
    int n = PQntuples(r), brc = 0, crc = 0;
    struct sb_buf b = SB_BUF_INIT(0); /* stored events: at most maxSize, each within --max-body */
    for (int i = 0; i < n; i++) {
        brc |= sb_buf_puts(&b, i ? "," : "[");
        brc |= sb_buf_puts(&b, pgs_col_req(r, i, 0, &crc));
    }
    PQclear(r);
    if (crc)
        rc = pgs_col_error(err, crc);
    else if (n && (brc || sb_buf_puts(&b, "]") != 0 || !(out->events = sb_buf_steal(&b, NULL))))
        rc = sb_err_set(err, SB_ENOMEM, "out of memory");
    sb_buf_free(&b);
    return rc;
}

/* The memoized steps, in stack order, into out->steps. */
static int run_state_steps(struct sbd_store *st, const char *run_id, struct sbd_run_state *out,
                           struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, run_id);
    PGresult *r;
    int rc = pgs_run(st, PGS_RUN_STATE_STEPS, &p, &r, err);
    if (rc)
        return rc;
    int n = PQntuples(r);
    if (n > 0 && !(out->steps = calloc((size_t)n, sizeof *out->steps)))
        rc = sb_err_set(err, SB_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < n; i++) {
        int crc = 0;
        snprintf(out->steps[i].hash, sizeof out->steps[i].hash, "%s", pgs_col_req(r, i, 0, &crc));
        const char *o = pgs_col_text(r, i, 1);
        char *copy = crc ? NULL : strdup(o ? o : "null");
        if (!copy) {
            rc = pgs_col_error(err, crc ? crc : SB_ENOMEM);
            break;
        }
        out->steps[i].output = copy;
        out->nsteps++;
    }
    PQclear(r);
    return rc;
}

int pgs_run_state(struct sbd_store *st, const char *run_id, struct sbd_run_state *out,
                  struct sb_err *err)
{
    memset(out, 0, sizeof *out);
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, run_id);
    PGresult *r;
    int rc = pgs_run(st, PGS_RUN_STATE, &p, &r, err);
    if (rc)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return sb_err_set(err, SB_ENOTFOUND, "run %s not found", run_id);
    }
    snprintf(out->id, sizeof out->id, "%s", run_id);
    int crc = 0;
    out->function_id = pgs_col_dup(r, 0, 0, &crc);
    out->status = (int)pgs_col_int(r, 0, 1, &crc);
    out->req_version = (int)pgs_col_int(r, 0, 2, &crc);
    out->event = pgs_col_dup(r, 0, 3, &crc);
    PQclear(r);
    if (crc || !out->function_id || !out->event)
        rc = pgs_col_error(err, crc ? crc : SB_ESTORE);
    else if (!(rc = run_state_events(st, run_id, out, err)))
        rc = run_state_steps(st, run_id, out, err);
    /* all or nothing: a run state missing some of its memoized steps would
     * make the worker run completed steps again */
    if (rc)
        sbd_run_state_free(out);
    return rc;
}

int pgs_counts(struct sbd_store *st, int64_t *queue_rows, int64_t *running, struct sb_err *err)
{
    int rc = pgs_query_int64(st, PGS_COUNT_QUEUE, NULL, queue_rows, err);
    if (rc)
        return rc;
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, RUN_RUNNING);
    return pgs_query_int64(st, PGS_COUNT_RUNNING, &p, running, err);
}
