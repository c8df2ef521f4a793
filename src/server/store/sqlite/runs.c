/* runs.c - the SQLite backend's events, runs and steps: the writes of the
 * event and run paths, retention, and the reads the engine makes of a run
 * (its state for a call, its status, the counts /health shows). */
#include "sq.h"
#include "common/buf.h"
#include "common/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sq_event_insert(struct sbd_store *st, const struct sbd_ev_rec *ev, bool *inserted,
                    struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_EVENT_INSERT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, ev->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, ev->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, ev->body, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, ev->ts);
    sqlite3_bind_int64(s, 5, ev->received_at);
    sq_bind_text(s, 6, ev->dedupe_key);
    int rc = sq_exec(st, s, err);
    if (!rc)
        *inserted = sq_changes(st) > 0;
    return rc;
}

int sq_event_find_dedupe(struct sbd_store *st, const char *key, int64_t since_ms,
                         char out_id[SB_ULID_SIZE], struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_EVENT_DEDUPE);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, since_ms);
    int rc = sq_next_row(st, s, err);
    if (rc > 0) {
        int crc = 0;
        snprintf(out_id, SB_ULID_SIZE, "%s", sq_col_req(s, 0, &crc));
        rc = crc ? sq_col_error(err, crc) : 0;
    } else if (rc == 0) {
        rc = SB_ENOTFOUND;
    }
    sqlite3_reset(s);
    return rc;
}

int sq_run_insert(struct sbd_store *st, const struct sbd_run_rec *run, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_RUN_INSERT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, run->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, run->function_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, run->app_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, run->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, RUN_RUNNING);
    sqlite3_bind_int64(s, 6, run->created_at);
    sqlite3_bind_int64(s, 7, run->created_at);
    return sq_exec(st, s, err);
}

/* Runs statement id, whose one parameter is a run id; *changed (when not
 * NULL) = the rows it changed. */
static int exec_for_run(struct sbd_store *st, enum sq_stmt_id id, const char *run_id,
                        int64_t *changed, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, id);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    int rc = sq_exec(st, s, err);
    if (!rc && changed)
        *changed = sq_changes(st);
    return rc;
}

int sq_run_finish(struct sbd_store *st, const char *run_id, int status, const char *output,
                  const char *error, int64_t started_at, int64_t ended_at, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_RUN_FINISH);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int(s, 1, status);
    sq_bind_text(s, 2, output);
    sq_bind_text(s, 3, error);
    sqlite3_bind_int64(s, 4, ended_at);
    sqlite3_bind_int64(s, 5, ended_at);
    sqlite3_bind_int64(s, 6, started_at > 0 ? started_at : ended_at);
    sqlite3_bind_text(s, 7, run_id, -1, SQLITE_STATIC);
    int rc = sq_exec(st, s, err);
    if (rc || (rc = exec_for_run(st, STMT_QUEUE_DEL_RUN, run_id, NULL, err)))
        return rc;
    /* Single writer: the tally says which of these rows can exist at all,
     * which spares most runs three deletes. */
    struct sq_tally *t = &sq_conn(st)->tally;
    int64_t n = 0;
    /* its singleton key, if any, is free again */
    if (t->singletons && (rc = exec_for_run(st, STMT_FLOW_DEL_RUN, run_id, NULL, err)))
        return rc;
    /* its cancel request, if any, is done */
    if (t->open_cancels > 0) {
        if ((rc = exec_for_run(st, STMT_CANCEL_REQ_DEL, run_id, &n, err)))
            return rc;
        t->open_cancels -= n;
    }
    /* an ended run waits for nothing */
    if (t->open_waits > 0) {
        if ((rc = exec_for_run(st, STMT_WAIT_DEL_RUN, run_id, &n, err)))
            return rc;
        t->open_waits -= n;
    }
    return 0;
}

int sq_run_progress(struct sbd_store *st, const char *run_id, int64_t now, int req_version,
                    struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_RUN_PROGRESS);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, now);
    sqlite3_bind_int(s, 3, req_version);
    sqlite3_bind_text(s, 4, run_id, -1, SQLITE_STATIC);
    return sq_exec(st, s, err);
}

int sq_step_put(struct sbd_store *st, const struct sbd_step_rec *r, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_STEP_PUT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, r->run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, r->hash, -1, SQLITE_STATIC);
    if (r->seq >= 0)
        sqlite3_bind_int64(s, 3, r->seq);
    else
        sqlite3_bind_null(s, 3);
    sq_bind_text(s, 4, r->name);
    sq_bind_text(s, 5, r->op);
    sqlite3_bind_int(s, 6, r->status);
    sqlite3_bind_int(s, 7, r->attempts);
    sq_bind_text(s, 8, r->output);
    sq_bind_text(s, 9, r->error);
    sq_bind_opt_int64(s, 10, r->started_at);
    sq_bind_opt_int64(s, 11, r->ended_at);
    return sq_exec(st, s, err);
}

int sq_purge(struct sbd_store *st, int64_t before_ms, int limit, int *deleted, struct sb_err *err)
{
    /* expired idempotency keys and rate-limit hits older than the longest
     * period (a day): they expire on their own clock, not the retention's */
    int64_t now = sb_now_ms();
    sqlite3_stmt *fs = sq_stmt(st, STMT_PURGE_FLOW);
    if (fs)
        sqlite3_bind_int64(fs, 1, now);
    int frc = sq_exec(st, fs, err);
    if (frc)
        return frc;
    sqlite3_stmt *rs = sq_stmt(st, STMT_PURGE_RATE);
    if (rs)
        sqlite3_bind_int64(rs, 1, now - SBD_STORE_RATE_KEEP_MS);
    if ((frc = sq_exec(st, rs, err)))
        return frc;
    static const enum sq_stmt_id order[] = { STMT_PURGE_STEPS, STMT_PURGE_RUN_EVENTS,
                                             STMT_PURGE_RUNS, STMT_PURGE_EVENTS };
    /* events by id range (sbd_store_purge_cutoff) */
    char cutoff[SB_ULID_SIZE];
    sbd_store_purge_cutoff(before_ms, cutoff);
    *deleted = 0;
    for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
        sqlite3_stmt *s = sq_stmt(st, order[i]);
        if (!s)
            return sb_err_set(err, SB_ESTORE, "statement unavailable");
        if (order[i] == STMT_PURGE_EVENTS)
            sqlite3_bind_text(s, 1, cutoff, -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_int64(s, 1, before_ms);
        sqlite3_bind_int(s, 2, limit);
        int rc = sq_exec(st, s, err);
        if (rc)
            return rc;
        if (order[i] == STMT_PURGE_RUNS || order[i] == STMT_PURGE_EVENTS)
            *deleted += (int)sq_changes(st);
    }
    return 0;
}

/* ---- engine reads ---- */

/* The events of a batched run as a JSON array into out->events (left NULL
 * for a run of one event). */
static int run_state_events(struct sbd_store *st, const char *run_id, struct sbd_run_state *out,
                            struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_RUN_STATE_EVENTS);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    struct sb_buf b = SB_BUF_INIT(0); /* stored events: at most maxSize, each within --max-body */
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    int n = 0, brc = 0, crc = 0, rc;
    while ((rc = sq_next_row(st, s, err)) > 0) {
        brc |= sb_buf_puts(&b, n++ ? "," : "[");
        brc |= sb_buf_puts(&b, sq_col_req(s, 0, &crc));
    }
    sqlite3_reset(s);
    if (!rc && crc)
        rc = sq_col_error(err, crc);
    if (!rc && n && (brc || sb_buf_puts(&b, "]") != 0 || !(out->events = sb_buf_steal(&b, NULL))))
        rc = sb_err_set(err, SB_ENOMEM, "out of memory");
    sb_buf_free(&b);
    return rc;
}

/* The memoized steps, in stack order, into out->steps. */
static int run_state_steps(struct sbd_store *st, const char *run_id, struct sbd_run_state *out,
                           struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_RUN_STATE_STEPS);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    size_t cap = 0;
    int rc;
    while ((rc = sq_next_row(st, s, err)) > 0) {
        if (out->nsteps == cap) {
            cap = cap ? cap * 2 : 8;
            void *p = realloc(out->steps, cap * sizeof *out->steps);
            if (!p) {
                rc = sb_err_set(err, SB_ENOMEM, "out of memory");
                break;
            }
            out->steps = p;
        }
        int crc = 0;
        snprintf(out->steps[out->nsteps].hash, sizeof out->steps[0].hash, "%s",
                 sq_col_req(s, 0, &crc));
        const char *o = sq_col_text(s, 1, &crc);
        char *copy = crc ? NULL : strdup(o ? o : "null");
        if (!copy) {
            rc = sq_col_error(err, crc ? crc : SB_ENOMEM);
            break;
        }
        out->steps[out->nsteps++].output = copy;
    }
    sqlite3_reset(s);
    return rc;
}

int sq_run_state(struct sbd_store *st, const char *run_id, struct sbd_run_state *out,
                 struct sb_err *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = sq_stmt(st, STMT_RUN_STATE);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    int rc = sq_next_row(st, s, err);
    if (rc <= 0) {
        sqlite3_reset(s);
        return rc ? rc : sb_err_set(err, SB_ENOTFOUND, "run %s not found", run_id);
    }
    snprintf(out->id, sizeof out->id, "%s", run_id);
    int crc = 0;
    out->function_id = sq_col_dup(s, 0, &crc);
    out->status = sqlite3_column_int(s, 1);
    out->req_version = sqlite3_column_int(s, 2);
    out->event = sq_col_dup(s, 3, &crc);
    sqlite3_reset(s);
    if (!out->function_id || !out->event)
        rc = sq_col_error(err, crc ? crc : SB_ESTORE);
    else if (!(rc = run_state_events(st, run_id, out, err)))
        rc = run_state_steps(st, run_id, out, err);
    /* all or nothing: a run state missing some of its memoized steps would
     * make the worker run completed steps again */
    if (rc)
        sbd_run_state_free(out);
    return rc;
}

int sq_counts(struct sbd_store *st, int64_t *queue_rows, int64_t *running, struct sb_err *err)
{
    int rc = sq_query_int64(st, sq_stmt(st, STMT_COUNT_QUEUE), queue_rows, err);
    if (rc)
        return rc;
    sqlite3_stmt *s = sq_stmt(st, STMT_COUNT_RUNNING);
    if (s)
        sqlite3_bind_int(s, 1, RUN_RUNNING);
    return sq_query_int64(st, s, running, err);
}
