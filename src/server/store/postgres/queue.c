/* queue.c - the PostgreSQL backend's queue table: a run's due items (calls,
 * sleeps, wait and invoke timeouts, deadlines) written with the run's
 * changes, their call leases, and the scans the engine loads them with at
 * start. A port of sqlite/queue.c.
 *
 * Single writer: queue ids come from the engine (queue_max_id, read once at
 * start, then counted up), and queue_put replaces a row of the same id. */
#include "pgs.h"

int pgs_queue_put(struct sbd_store *st, const struct sbd_qitem_rec *q, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, q->id);
    pgs_text(&p, q->run_id);
    pgs_text(&p, q->step_id);
    pgs_int(&p, q->attempt);
    pgs_int(&p, q->due_at);
    pgs_opt_time(&p, q->started_at);
    pgs_int(&p, q->transport_failures);
    pgs_opt_time(&p, q->transport_since);
    pgs_text(&p, q->last_error);
    pgs_int(&p, q->flags);
    return pgs_exec(st, PGS_QUEUE_PUT, &p, NULL, err);
}

int pgs_queue_lease(struct sbd_store *st, int64_t id, int64_t until, const char *keys_json,
                    struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, until);
    pgs_text(&p, keys_json);
    pgs_int(&p, id);
    return pgs_exec(st, PGS_QUEUE_LEASE, &p, NULL, err);
}

int pgs_queue_del(struct sbd_store *st, int64_t id, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, id);
    return pgs_exec(st, PGS_QUEUE_DEL, &p, NULL, err);
}

int pgs_queue_max_id(struct sbd_store *st, int64_t *max_id, struct sb_err *err)
{
    return pgs_query_int64(st, PGS_QUEUE_MAX, NULL, max_id, err);
}

/* Calls fn for each row of r (QUEUE_SCAN's columns), then clears r. */
static int scan_rows(PGresult *r, int (*fn)(void *ctx, const struct sbd_qitem_rec *q), void *ctx,
                     struct sb_err *err)
{
    int rc = 0;
    for (int i = 0, n = PQntuples(r); i < n; i++) {
        int crc = 0;
        struct sbd_qitem_rec q = {
            .id = pgs_col_int(r, i, 0, &crc),
            .run_id = pgs_col_req(r, i, 1, &crc),
            .step_id = pgs_col_req(r, i, 2, &crc),
            .attempt = (int)pgs_col_int(r, i, 3, &crc),
            .due_at = pgs_col_int(r, i, 4, &crc),
            .started_at = pgs_col_int(r, i, 5, &crc),
            .transport_failures = (int)pgs_col_int(r, i, 6, &crc),
            .transport_since = pgs_col_int(r, i, 7, &crc),
            .last_error = pgs_col_text(r, i, 8),
            .flags = (int)pgs_col_int(r, i, 9, &crc),
            .function_id = pgs_col_req(r, i, 10, &crc),
            .event_id = pgs_col_req(r, i, 11, &crc),
            .lease_until = pgs_col_int(r, i, 12, &crc),
            .lease_keys = pgs_col_text(r, i, 13),
        };
        if (crc) {
            rc = pgs_col_error(err, crc);
            break;
        }
        if ((rc = fn(ctx, &q)))
            break;
    }
    PQclear(r);
    return rc;
}

int pgs_queue_scan(struct sbd_store *st, int (*fn)(void *ctx, const struct sbd_qitem_rec *q),
                   void *ctx, struct sb_err *err)
{
    PGresult *r;
    int rc = pgs_run(st, PGS_QUEUE_SCAN, NULL, &r, err);
    return rc ? rc : scan_rows(r, fn, ctx, err);
}

int pgs_queue_scan_run(struct sbd_store *st, const char *run_id,
                       int (*fn)(void *ctx, const struct sbd_qitem_rec *q), void *ctx,
                       struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, run_id);
    pgs_int(&p, RUN_RUNNING);
    PGresult *r;
    int rc = pgs_run(st, PGS_QUEUE_SCAN_RUN, &p, &r, err);
    return rc ? rc : scan_rows(r, fn, ctx, err);
}

int pgs_orphan_runs(struct sbd_store *st, void (*fn)(void *ctx, const char *run_id), void *ctx,
                    struct sb_err *err)
{
    /* a deadline is no work of the run's own: a run with only that is stuck */
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, RUN_RUNNING);
    pgs_int(&p, QF_DEADLINE);
    PGresult *r;
    int rc = pgs_run(st, PGS_ORPHANS, &p, &r, err);
    if (rc)
        return rc;
    for (int i = 0, n = PQntuples(r); i < n; i++) {
        int crc = 0;
        const char *id = pgs_col_req(r, i, 0, &crc);
        if (crc) {
            rc = pgs_col_error(err, crc);
            break;
        }
        fn(ctx, id);
    }
    PQclear(r);
    return rc;
}
