/* waits.c - the PostgreSQL backend's side of waits (step.waitForEvent and
 * step.invoke): wait rows, the events that may satisfy them, and a run's
 * trigger for `if` expressions. A port of sqlite/waits.c.
 *
 * Single writer: has_waits and wait_for_child answer from the writable
 * connection's tally of wait rows (pgs.h), which wait_put, wait_delete and
 * run_finish keep. */
#include "pgs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pgs_wait_put(struct sbd_store *st, const struct sbd_wait_rec *w, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, w->item_id);
    pgs_text(&p, w->run_id);
    pgs_text(&p, w->step_hash);
    pgs_text(&p, w->event_name);
    pgs_text(&p, w->expression);
    pgs_text(&p, w->child_run_id);
    pgs_int(&p, w->created_at);
    int rc = pgs_exec(st, PGS_WAIT_PUT, &p, NULL, err);
    if (!rc) /* a replaced row counts twice: above the truth is allowed */
        pgs_conn(st)->tally.open_waits++;
    return rc;
}

int pgs_wait_delete(struct sbd_store *st, int64_t item_id, bool *deleted, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, item_id);
    int64_t n = 0;
    int rc = pgs_exec(st, PGS_WAIT_DEL, &p, &n, err);
    if (!rc) {
        *deleted = n > 0;
        if (*deleted)
            pgs_conn(st)->tally.open_waits--;
    }
    return rc;
}

/* Single writer: the tally counts every wait row there is. */
bool pgs_has_waits(struct sbd_store *st)
{
    return pgs_conn(st)->tally.open_waits > 0;
}

/* A row of WAITS_FOR, copied out of the result so that fn, which writes,
 * never sees a half-read list. */
struct wait_row {
    struct sbd_wait_rec w;
    const char *trigger;
    int64_t rows;
    int flags;
};

/* Reads every row of r into rows (strings point into r): 0, or the error of
 * the first row that cannot be read. */
static int read_waits(const PGresult *r, struct wait_row *rows, int n, struct sb_err *err)
{
    for (int i = 0; i < n; i++) {
        int crc = 0;
        struct wait_row *wr = &rows[i];
        wr->w.item_id = pgs_col_int(r, i, 0, &crc);
        wr->w.run_id = pgs_col_req(r, i, 1, &crc);
        wr->w.step_hash = pgs_col_req(r, i, 2, &crc);
        wr->w.event_name = pgs_col_req(r, i, 3, &crc); /* the query matched the name */
        wr->w.expression = pgs_col_text(r, i, 4);
        wr->w.created_at = pgs_col_int(r, i, 5, &crc);
        wr->trigger = pgs_col_req(r, i, 6, &crc);
        wr->rows = pgs_col_int(r, i, 7, &crc);
        wr->flags = (int)pgs_col_int(r, i, 8, &crc);
        if (crc)
            return pgs_col_error(err, crc);
    }
    return 0;
}

int pgs_waits_for(struct sbd_store *st, const char *event_name,
                  int (*fn)(void *ctx, const struct sbd_wait_rec *w, const char *trigger_event,
                            int64_t run_queue_rows, int flags),
                  void *ctx, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    /* a run's timeouts.finish row is not a step: it does not count */
    pgs_int(&p, QF_DEADLINE);
    pgs_text(&p, event_name);
    PGresult *r;
    int rc = pgs_run(st, PGS_WAITS_FOR, &p, &r, err);
    if (rc)
        return rc;
    int n = PQntuples(r);
    struct wait_row *rows = n ? calloc((size_t)n, sizeof *rows) : NULL;
    if (n && !rows)
        rc = sb_err_set(err, SB_ENOMEM, "out of memory");
    /* Only a complete list is acted on: a wait missed here would stay open
     * while its event was taken (the event's transaction fails instead).
     * The result outlives fn's own statements on this connection. */
    if (!rc)
        rc = read_waits(r, rows, n, err);
    for (int i = 0; !rc && i < n; i++)
        rc = fn(ctx, &rows[i].w, rows[i].trigger, rows[i].rows, rows[i].flags);
    free(rows);
    PQclear(r);
    return rc;
}

int pgs_wait_for_child(struct sbd_store *st, const char *child_run_id, struct sbd_wait_rec *w,
                       int64_t *run_queue_rows, int *flags, struct sb_err *err)
{
    memset(w, 0, sizeof *w);
    if (pgs_conn(st)->tally.open_waits <= 0) /* single writer: see pgs_has_waits */
        return SB_ENOTFOUND;
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, QF_DEADLINE); /* a timeouts.finish row does not count */
    pgs_text(&p, child_run_id);
    PGresult *r;
    int rc = pgs_run_row(st, PGS_WAIT_CHILD, &p, &r, err);
    if (rc)
        return rc;
    int crc = 0;
    w->item_id = pgs_col_int(r, 0, 0, &crc);
    w->run_id = pgs_col_dup(r, 0, 1, &crc);
    w->step_hash = pgs_col_dup(r, 0, 2, &crc);
    w->created_at = pgs_col_int(r, 0, 3, &crc);
    int64_t rows = pgs_col_int(r, 0, 4, &crc);
    int fl = (int)pgs_col_int(r, 0, 5, &crc);
    PQclear(r);
    if (crc || !w->run_id || !w->step_hash) {
        sbd_wait_rec_free(w);
        return pgs_col_error(err, crc ? crc : SB_ESTORE);
    }
    *run_queue_rows = rows;
    *flags = fl;
    return 0;
}

int pgs_events_since(struct sbd_store *st, const char *name, const char *min_id,
                     int (*fn)(void *ctx, const char *id, const char *body), void *ctx,
                     struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, name);
    pgs_text(&p, min_id);
    PGresult *r;
    int rc = pgs_run(st, PGS_EVENTS_SINCE, &p, &r, err);
    if (rc)
        return rc;
    for (int i = 0, n = PQntuples(r); i < n; i++) {
        int crc = 0;
        const char *id = pgs_col_req(r, i, 0, &crc);
        const char *body = pgs_col_req(r, i, 1, &crc);
        if ((rc = crc ? pgs_col_error(err, crc) : fn(ctx, id, body)))
            break;
    }
    PQclear(r);
    return rc;
}

int pgs_next_seq(struct sbd_store *st, const char *run_id, int64_t *seq, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, run_id);
    return pgs_query_int64(st, PGS_NEXT_SEQ, &p, seq, err); /* *seq is only written on success */
}

int pgs_run_trigger(struct sbd_store *st, const char *run_id, char **function_id, char **event_name,
                    char **event_body, struct sb_err *err)
{
    *function_id = *event_name = *event_body = NULL;
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, run_id);
    PGresult *r;
    int rc = pgs_run_row(st, PGS_RUN_TRIGGER, &p, &r, err);
    if (rc)
        return rc;
    int crc = 0;
    *function_id = pgs_col_dup(r, 0, 0, &crc);
    *event_name = pgs_col_dup(r, 0, 1, &crc);
    *event_body = pgs_col_dup(r, 0, 2, &crc);
    PQclear(r);
    if (crc || !*function_id || !*event_name || !*event_body) {
        free(*function_id);
        free(*event_name);
        free(*event_body);
        *function_id = *event_name = *event_body = NULL;
        return pgs_col_error(err, crc ? crc : SB_ESTORE);
    }
    return 0;
}
