/* queue.c - the SQLite backend's queue table: a run's due items (calls, sleeps, wait
 * and invoke timeouts, deadlines) written with the run's changes, their
 * call leases, and the scans the engine loads them with at start. */
#include "sq.h"

#include <string.h>

int sq_queue_put(struct sbd_store *st, const struct sbd_qitem_rec *q, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_QUEUE_PUT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int64(s, 1, q->id);
    sqlite3_bind_text(s, 2, q->run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, q->step_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, q->attempt);
    sqlite3_bind_int64(s, 5, q->due_at);
    sq_bind_opt_int64(s, 6, q->started_at);
    sqlite3_bind_int(s, 7, q->transport_failures);
    sq_bind_opt_int64(s, 8, q->transport_since);
    sq_bind_text(s, 9, q->last_error);
    sqlite3_bind_int(s, 10, q->flags);
    return sq_exec(st, s, err);
}

int sq_queue_lease(struct sbd_store *st, int64_t id, int64_t until, const char *keys_json,
                   struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_QUEUE_LEASE);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int64(s, 1, until);
    sq_bind_text(s, 2, keys_json);
    sqlite3_bind_int64(s, 3, id);
    return sq_exec(st, s, err);
}

int sq_queue_del(struct sbd_store *st, int64_t id, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_QUEUE_DEL);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int64(s, 1, id);
    return sq_exec(st, s, err);
}

int sq_queue_max_id(struct sbd_store *st, int64_t *max_id, struct sb_err *err)
{
    return sq_query_int64(st, sq_stmt(st, STMT_QUEUE_MAX), max_id, err);
}

static int scan_rows(struct sbd_store *st, sqlite3_stmt *s,
                     int (*fn)(void *ctx, const struct sbd_qitem_rec *q), void *ctx,
                     struct sb_err *err)
{
    int rc;
    while ((rc = sq_next_row(st, s, err)) > 0) {
        int crc = 0;
        struct sbd_qitem_rec q = {
            .id = sqlite3_column_int64(s, 0),
            .run_id = sq_col_req(s, 1, &crc),
            .step_id = sq_col_req(s, 2, &crc),
            .attempt = sqlite3_column_int(s, 3),
            .due_at = sqlite3_column_int64(s, 4),
            .started_at = sqlite3_column_int64(s, 5),
            .transport_failures = sqlite3_column_int(s, 6),
            .transport_since = sqlite3_column_int64(s, 7),
            .last_error = sq_col_text(s, 8, &crc),
            .flags = sqlite3_column_int(s, 9),
            .function_id = sq_col_req(s, 10, &crc),
            .event_id = sq_col_req(s, 11, &crc),
            .lease_until = sqlite3_column_int64(s, 12),
            .lease_keys = sq_col_text(s, 13, &crc),
        };
        if (crc) {
            rc = sq_col_error(err, crc);
            break;
        }
        if ((rc = fn(ctx, &q)))
            break;
    }
    sqlite3_reset(s);
    return rc;
}

int sq_queue_scan(struct sbd_store *st, int (*fn)(void *ctx, const struct sbd_qitem_rec *q),
                  void *ctx, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_QUEUE_SCAN);
    return s ? scan_rows(st, s, fn, ctx, err) : sb_err_set(err, SB_ESTORE, "statement unavailable");
}

int sq_queue_scan_run(struct sbd_store *st, const char *run_id,
                      int (*fn)(void *ctx, const struct sbd_qitem_rec *q), void *ctx,
                      struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_QUEUE_SCAN_RUN);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, RUN_RUNNING);
    return scan_rows(st, s, fn, ctx, err);
}

int sq_orphan_runs(struct sbd_store *st, void (*fn)(void *ctx, const char *run_id), void *ctx,
                   struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_ORPHANS);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    /* a deadline is no work of the run's own: a run with only that is stuck */
    sqlite3_bind_int(s, 1, RUN_RUNNING);
    sqlite3_bind_int(s, 2, QF_DEADLINE);
    int rc;
    while ((rc = sq_next_row(st, s, err)) > 0) {
        int crc = 0;
        const char *id = sq_col_req(s, 0, &crc);
        if (crc) {
            rc = sq_col_error(err, crc);
            break;
        }
        fn(ctx, id);
    }
    sqlite3_reset(s);
    return rc;
}
