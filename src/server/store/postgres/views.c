/* views.c - the PostgreSQL backend's reads for the REST API (runs, a run's
 * queue and steps, events, apps, functions, cancellations): records handed
 * to a callback, row by row; api/views.c makes the JSON. A port of
 * sqlite/views.c. The fixed queries are in PGS_STMT_LIST; the two lists
 * whose filters vary (runs_list, events_list) build their SQL here from
 * literals and $n placeholders, every value a parameter. A result is read
 * in full before the first callback, so a read either fails before any row
 * or hands every row; a row that cannot be read (a value that is not a
 * number) ends the scan with its error after the rows so far (the caller
 * drops them: a page is whole or absent). Every text column is read as
 * nullable, so a NULL where none belongs shows as null instead of failing
 * the page. */
#include "pgs.h"
#include "common/buf.h"

#include <stdio.h>
#include <string.h>

/* A scan's callback: the operation's fn (one member of cb, by the record it
 * takes), its ctx, and where a row that cannot be read reports why. */
struct rows {
    struct sb_err *err;
    void *ctx;
    union {
        int (*run)(void *ctx, const struct sbd_run_info *r);
        int (*queue)(void *ctx, const struct sbd_qitem_rec *q, const struct sbd_wait_rec *w);
        int (*step)(void *ctx, const struct sbd_step_rec *s);
        int (*event)(void *ctx, const struct sbd_ev_rec *e);
        int (*app)(void *ctx, const struct sbd_app_info *a);
        int (*function)(void *ctx, const struct sbd_fn_info *f);
        int (*cancellation)(void *ctx, const struct sbd_cancellation_rec *c);
    } cb;
};

/* Reads row i of res into a record and calls its callback: the callback's
 * return, or an error (r->err filled) when a column could not be read. */
typedef int row_fn(const PGresult *res, int i, struct rows *r);

/* Calls row for each row of res, then clears res: 0, or the first nonzero
 * return of row. */
static int scan(PGresult *res, row_fn *row, struct rows *r)
{
    int rc = 0;
    for (int i = 0, n = PQntuples(res); i < n && !rc; i++)
        rc = row(res, i, r);
    PQclear(res);
    return rc;
}

/* Runs statement id with p and scans its rows; the statement's error when
 * it failed. */
static int scan_stmt(struct sbd_store *st, enum pgs_stmt_id id, const struct pgs_params *p,
                     row_fn *row, struct rows *r)
{
    PGresult *res;
    int rc = pgs_run(st, id, p, &res, r->err);
    return rc ? rc : scan(res, row, r);
}

/* As scan_stmt for its one row; SB_ENOTFOUND with "no such <what>: id" when
 * there is none. */
static int one(struct sbd_store *st, enum pgs_stmt_id id, row_fn *row, struct rows *r,
               const char *what, const char *key)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, key);
    PGresult *res;
    int rc = pgs_run(st, id, &p, &res, r->err);
    if (rc)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return sb_err_set(r->err, SB_ENOTFOUND, "no such %s: %s", what, key);
    }
    return scan(res, row, r);
}

/* A LIMIT: SQLite takes a negative one for none, PostgreSQL NULL. */
static void limit_param(struct pgs_params *p, int limit)
{
    if (limit >= 0)
        pgs_int(p, limit);
    else
        pgs_text(p, NULL);
}

/* Appends " AND <cond>" with its placeholder numbered after the parameters
 * so far (cond has one "%d" for it, or two for a value used twice); the
 * caller adds the value next. Nonzero when out of memory: the SQL is then
 * not to be run (a filter missing from it would widen the page). */
static int filter(struct sb_buf *q, const struct pgs_params *p, const char *cond, bool twice)
{
    int k = p->n + 1; /* the number of the parameter added next */
    if (sb_buf_puts(q, " AND ") != 0)
        return -1;
    return twice ? sb_buf_printf(q, cond, k, k) : sb_buf_printf(q, cond, k);
}

/* ---- runs ---- */

static int run_row(const PGresult *res, int i, struct rows *r)
{
    int crc = 0;
    struct sbd_run_info run = {
        .id = pgs_col_text(res, i, 0),
        .function_id = pgs_col_text(res, i, 1),
        .app_id = pgs_col_text(res, i, 2),
        .event_id = pgs_col_text(res, i, 3),
        .status = (int)pgs_col_int(res, i, 4, &crc),
        .created_at = pgs_col_time(res, i, 5, &crc),
        .started_at = pgs_col_time(res, i, 6, &crc),
        .updated_at = pgs_col_time(res, i, 7, &crc),
        .ended_at = pgs_col_time(res, i, 8, &crc),
        .output = pgs_col_text(res, i, 9),
        .error = pgs_col_text(res, i, 10),
    };
    return crc ? pgs_col_error(r->err, crc) : r->cb.run(r->ctx, &run);
}

int pgs_run_get(struct sbd_store *st, const char *run_id,
                int (*fn)(void *ctx, const struct sbd_run_info *r), void *ctx, struct sb_err *err)
{
    struct rows r = { .err = err, .ctx = ctx, .cb.run = fn };
    return one(st, PGS_VIEW_RUN, run_row, &r, "run", run_id);
}

int pgs_run_status(struct sbd_store *st, const char *run_id, int *status, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, run_id);
    PGresult *res;
    int rc = pgs_run(st, PGS_RUN_STATUS, &p, &res, err);
    if (rc)
        return rc;
    int crc = 0;
    int64_t s = PQntuples(res) ? pgs_col_int(res, 0, 0, &crc) : 0;
    if (PQntuples(res) == 0)
        rc = sb_err_set(err, SB_ENOTFOUND, "no such run: %s", run_id);
    else if (crc)
        rc = pgs_col_error(err, crc);
    else
        *status = (int)s;
    PQclear(res);
    return rc;
}

int pgs_runs_list(struct sbd_store *st, const struct sbd_run_filter *f,
                  int (*fn)(void *ctx, const struct sbd_run_info *r), void *ctx, struct sb_err *err)
{
    /* SQL from this function's literals and numbers (values are parameters);
     * its longest form is about 400 bytes */
    struct sb_buf q = SB_BUF_INIT(4096);
    struct pgs_params p = PGS_PARAMS_INIT;
    int brc = sb_buf_puts(&q, "SELECT " PGS_RUN_COLS " FROM runs r WHERE true");
    if (f->status >= 0) {
        brc |= filter(&q, &p, "r.status=$%d", false);
        pgs_int(&p, f->status);
    }
    if (f->function_id) {
        brc |= filter(&q, &p, "r.function_id=$%d", false);
        pgs_text(&p, f->function_id);
    }
    if (f->app_id) {
        brc |= filter(&q, &p, "r.app_id=$%d", false);
        pgs_text(&p, f->app_id);
    }
    if (f->event_id) { /* a batch's other events too */
        brc |= filter(&q, &p,
                      "(r.event_id=$%d OR r.id IN (SELECT run_id FROM run_events WHERE "
                      "event_id=$%d))",
                      true);
        pgs_text(&p, f->event_id);
    }
    if (f->since_ms > 0) {
        brc |= filter(&q, &p, "r.created_at>=$%d", false);
        pgs_int(&p, f->since_ms);
    }
    if (f->cursor) {
        brc |= filter(&q, &p, "r.id<$%d", false);
        pgs_text(&p, f->cursor);
    }
    brc |= sb_buf_printf(&q, " ORDER BY r.id DESC LIMIT $%d", p.n + 1);
    limit_param(&p, f->limit);
    PGresult *res = NULL;
    int rc = brc ? sb_err_set(err, SB_ENOMEM, "out of memory")
                 : pgs_run_sql(st, sb_buf_cstr(&q), &p, &res, err);
    sb_buf_free(&q);
    struct rows r = { .err = err, .ctx = ctx, .cb.run = fn };
    return rc ? rc : scan(res, run_row, &r);
}

static int queue_row(const PGresult *res, int i, struct rows *r)
{
    int crc = 0;
    struct sbd_qitem_rec q = {
        .run_id = pgs_col_text(res, i, 11),
        .step_id = pgs_col_text(res, i, 0),
        .attempt = (int)pgs_col_int(res, i, 1, &crc),
        .due_at = pgs_col_time(res, i, 2, &crc),
        .started_at = pgs_col_time(res, i, 3, &crc),
        .transport_failures = (int)pgs_col_int(res, i, 4, &crc),
        .transport_since = pgs_col_time(res, i, 5, &crc),
        .last_error = pgs_col_text(res, i, 6),
        .flags = (int)pgs_col_int(res, i, 7, &crc),
    };
    struct sbd_wait_rec w = {
        .event_name = pgs_col_text(res, i, 8),
        .expression = pgs_col_text(res, i, 9),
        .child_run_id = pgs_col_text(res, i, 10),
    };
    q.id = w.item_id = pgs_col_int(res, i, 12, &crc);
    w.run_id = q.run_id;
    w.step_hash = q.step_id;
    return crc ? pgs_col_error(r->err, crc) : r->cb.queue(r->ctx, &q, &w);
}

int pgs_run_queue(struct sbd_store *st, const char *run_id,
                  int (*fn)(void *ctx, const struct sbd_qitem_rec *q, const struct sbd_wait_rec *w),
                  void *ctx, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, run_id);
    struct rows r = { .err = err, .ctx = ctx, .cb.queue = fn };
    return scan_stmt(st, PGS_VIEW_QUEUE, &p, queue_row, &r);
}

static int step_row(const PGresult *res, int i, struct rows *r)
{
    int crc = 0;
    struct sbd_step_rec step = {
        .run_id = pgs_col_text(res, i, 10),
        .hash = pgs_col_text(res, i, 0),
        .seq = PQgetisnull(res, i, 9) ? -1 : pgs_col_int(res, i, 9, &crc),
        .name = pgs_col_text(res, i, 1),
        .op = pgs_col_text(res, i, 2),
        .status = (int)pgs_col_int(res, i, 3, &crc),
        .attempts = (int)pgs_col_int(res, i, 4, &crc),
        .output = pgs_col_text(res, i, 5),
        .error = pgs_col_text(res, i, 6),
        .started_at = pgs_col_time(res, i, 7, &crc),
        .ended_at = pgs_col_time(res, i, 8, &crc),
    };
    return crc ? pgs_col_error(r->err, crc) : r->cb.step(r->ctx, &step);
}

int pgs_run_steps(struct sbd_store *st, const char *run_id,
                  int (*fn)(void *ctx, const struct sbd_step_rec *s), void *ctx, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, run_id);
    struct rows r = { .err = err, .ctx = ctx, .cb.step = fn };
    return scan_stmt(st, PGS_VIEW_STEPS, &p, step_row, &r);
}

/* ---- events ---- */

static int event_row(const PGresult *res, int i, struct rows *r)
{
    int crc = 0;
    struct sbd_ev_rec e = {
        .name = pgs_col_text(res, i, 1),
        .body = pgs_col_text(res, i, 2),
        .ts = pgs_col_int(res, i, 3, &crc),
        .received_at = pgs_col_time(res, i, 4, &crc),
        .dedupe_key = pgs_col_text(res, i, 5),
    };
    const char *id = pgs_col_text(res, i, 0);
    snprintf(e.id, sizeof e.id, "%s", id ? id : "");
    return crc ? pgs_col_error(r->err, crc) : r->cb.event(r->ctx, &e);
}

int pgs_event_get(struct sbd_store *st, const char *event_id,
                  int (*fn)(void *ctx, const struct sbd_ev_rec *e), void *ctx, struct sb_err *err)
{
    struct rows r = { .err = err, .ctx = ctx, .cb.event = fn };
    return one(st, PGS_VIEW_EVENT, event_row, &r, "event", event_id);
}

int pgs_events_list(struct sbd_store *st, const struct sbd_event_filter *f,
                    int (*fn)(void *ctx, const struct sbd_ev_rec *e), void *ctx, struct sb_err *err)
{
    struct sb_buf q = SB_BUF_INIT(4096); /* as runs_list */
    struct pgs_params p = PGS_PARAMS_INIT;
    int brc = sb_buf_puts(&q, "SELECT " PGS_EVENT_COLS " FROM events WHERE true");
    if (f->name) {
        brc |= filter(&q, &p, "name=$%d", false);
        pgs_text(&p, f->name);
    }
    if (f->after_ms > 0) {
        brc |= filter(&q, &p, "received_at>=$%d", false);
        pgs_int(&p, f->after_ms);
    }
    if (f->before_ms > 0) {
        brc |= filter(&q, &p, "received_at<$%d", false);
        pgs_int(&p, f->before_ms);
    }
    if (f->cursor) {
        brc |= filter(&q, &p, "id<$%d", false);
        pgs_text(&p, f->cursor);
    }
    brc |= sb_buf_printf(&q, " ORDER BY id DESC LIMIT $%d", p.n + 1);
    limit_param(&p, f->limit);
    PGresult *res = NULL;
    int rc = brc ? sb_err_set(err, SB_ENOMEM, "out of memory")
                 : pgs_run_sql(st, sb_buf_cstr(&q), &p, &res, err);
    sb_buf_free(&q);
    struct rows r = { .err = err, .ctx = ctx, .cb.event = fn };
    return rc ? rc : scan(res, event_row, &r);
}

/* ---- apps, functions, cancellations ---- */

static int app_row(const PGresult *res, int i, struct rows *r)
{
    int crc = 0;
    struct sbd_app_info a = {
        .id = pgs_col_text(res, i, 0),
        .url = pgs_col_text(res, i, 1),
        .sdk = pgs_col_text(res, i, 2),
        .framework = pgs_col_text(res, i, 3),
        .app_version = pgs_col_text(res, i, 4),
        .checksum = pgs_col_text(res, i, 5),
        .created_at = pgs_col_time(res, i, 6, &crc),
        .synced_at = pgs_col_time(res, i, 7, &crc),
        .sync_error = pgs_col_text(res, i, 8),
        .sync_error_at = pgs_col_time(res, i, 9, &crc),
        .function_count = pgs_col_int(res, i, 10, &crc),
    };
    return crc ? pgs_col_error(r->err, crc) : r->cb.app(r->ctx, &a);
}

int pgs_apps_list(struct sbd_store *st, int (*fn)(void *ctx, const struct sbd_app_info *a),
                  void *ctx, struct sb_err *err)
{
    struct rows r = { .err = err, .ctx = ctx, .cb.app = fn };
    return scan_stmt(st, PGS_VIEW_APPS, NULL, app_row, &r);
}

static int function_row(const PGresult *res, int i, struct rows *r)
{
    int crc = 0;
    struct sbd_fn_info f = {
        .id = pgs_col_text(res, i, 0),
        .app_id = pgs_col_text(res, i, 1),
        .name = pgs_col_text(res, i, 2),
        .config = pgs_col_text(res, i, 3),
        .created_at = pgs_col_time(res, i, 4, &crc),
        .updated_at = pgs_col_time(res, i, 5, &crc),
        .removed_at = pgs_col_time(res, i, 6, &crc),
    };
    return crc ? pgs_col_error(r->err, crc) : r->cb.function(r->ctx, &f);
}

int pgs_functions_list(struct sbd_store *st, const char *app_id, bool include_removed,
                       int (*fn)(void *ctx, const struct sbd_fn_info *f), void *ctx,
                       struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, app_id);
    pgs_int(&p, include_removed);
    struct rows r = { .err = err, .ctx = ctx, .cb.function = fn };
    return scan_stmt(st, PGS_VIEW_FUNCTIONS, &p, function_row, &r);
}

static int cancellation_row(const PGresult *res, int i, struct rows *r)
{
    int crc = 0;
    struct sbd_cancellation_rec c = {
        .app_id = pgs_col_text(res, i, 1),
        .function_id = pgs_col_text(res, i, 2),
        .started_after = pgs_col_int(res, i, 3, &crc),
        .started_before = pgs_col_int(res, i, 4, &crc),
        .expression = pgs_col_text(res, i, 5),
        .created_at = pgs_col_time(res, i, 6, &crc),
        .run_count = pgs_col_int(res, i, 7, &crc),
    };
    const char *id = pgs_col_text(res, i, 0);
    snprintf(c.id, sizeof c.id, "%s", id ? id : "");
    return crc ? pgs_col_error(r->err, crc) : r->cb.cancellation(r->ctx, &c);
}

int pgs_cancellations_list(struct sbd_store *st, int limit,
                           int (*fn)(void *ctx, const struct sbd_cancellation_rec *c), void *ctx,
                           struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    limit_param(&p, limit);
    struct rows r = { .err = err, .ctx = ctx, .cb.cancellation = fn };
    return scan_stmt(st, PGS_VIEW_CANCELLATIONS, &p, cancellation_row, &r);
}
