/* waits.c - the SQLite backend's side of waits (step.waitForEvent and
 * step.invoke): wait rows, the events that may satisfy them, and a run's
 * trigger for `if` expressions. */
#include "sq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- waits ---- */

int sq_wait_put(struct sbd_store *st, const struct sbd_wait_rec *w, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_WAIT_PUT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int64(s, 1, w->item_id);
    sqlite3_bind_text(s, 2, w->run_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, w->step_hash, -1, SQLITE_STATIC);
    sq_bind_text(s, 4, w->event_name);
    sq_bind_text(s, 5, w->expression);
    sq_bind_text(s, 6, w->child_run_id);
    sqlite3_bind_int64(s, 7, w->created_at);
    int rc = sq_exec(st, s, err);
    if (!rc)
        sq_conn(st)->tally.open_waits++;
    return rc;
}

int sq_wait_delete(struct sbd_store *st, int64_t item_id, bool *deleted, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_WAIT_DEL);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int64(s, 1, item_id);
    int rc = sq_exec(st, s, err);
    if (!rc) {
        *deleted = sq_changes(st) > 0;
        if (*deleted)
            sq_conn(st)->tally.open_waits--;
    }
    return rc;
}

/* Single writer: the tally counts every wait row there is. */
bool sq_has_waits(struct sbd_store *st)
{
    return sq_conn(st)->tally.open_waits > 0;
}

int sq_waits_for(struct sbd_store *st, const char *event_name,
                 int (*fn)(void *ctx, const struct sbd_wait_rec *w, const char *trigger_event,
                           int64_t run_queue_rows, int flags),
                 void *ctx, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_WAITS_FOR);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    /* a run's timeouts.finish row is not a step: it does not count */
    sqlite3_bind_int(s, 1, QF_DEADLINE);
    sqlite3_bind_text(s, 2, event_name, -1, SQLITE_STATIC);
    /* collect first: fn may change the waits table */
    struct row {
        struct sbd_wait_rec w;
        char *run_id, *hash, *name, *expr, *trigger;
        int64_t rows;
        int flags;
    } *rows = NULL;
    size_t n = 0;
    int rc, crc = 0;
    while ((rc = sq_next_row(st, s, err)) > 0) {
        struct row *nr = realloc(rows, (n + 1) * sizeof *nr);
        if (!nr) {
            rc = sb_err_set(err, SB_ENOMEM, "out of memory");
            break;
        }
        rows = nr;
        struct row *r = &rows[n++];
        r->w.item_id = sqlite3_column_int64(s, 0);
        r->run_id = sq_col_dup(s, 1, &crc);
        r->hash = sq_col_dup(s, 2, &crc);
        r->name = sq_col_dup(s, 3, &crc);
        r->expr = sq_col_dup(s, 4, &crc);
        r->w.created_at = sqlite3_column_int64(s, 5);
        r->trigger = sq_col_dup(s, 6, &crc);
        r->rows = sqlite3_column_int64(s, 7);
        r->flags = sqlite3_column_int(s, 8);
        if (!crc && (!r->run_id || !r->hash || !r->name || !r->trigger))
            crc = SB_ESTORE; /* NOT NULL columns (the query matched the name) */
        if (crc) {
            rc = sq_col_error(err, crc);
            break;
        }
    }
    sqlite3_reset(s);
    /* Only a complete list is acted on: a wait missed here would stay open
     * while its event was taken (the event's transaction fails instead). */
    for (size_t i = 0; i < n; i++) {
        struct row *r = &rows[i];
        r->w.run_id = r->run_id;
        r->w.step_hash = r->hash;
        r->w.event_name = r->name;
        r->w.expression = r->expr;
        if (!rc)
            rc = fn(ctx, &r->w, r->trigger, r->rows, r->flags);
        free(r->run_id);
        free(r->hash);
        free(r->name);
        free(r->expr);
        free(r->trigger);
    }
    free(rows);
    return rc;
}

int sq_wait_for_child(struct sbd_store *st, const char *child_run_id, struct sbd_wait_rec *w,
                      int64_t *run_queue_rows, int *flags, struct sb_err *err)
{
    memset(w, 0, sizeof *w);
    if (sq_conn(st)->tally.open_waits <= 0) /* single writer: see sq_has_waits */
        return SB_ENOTFOUND;
    sqlite3_stmt *s = sq_stmt(st, STMT_WAIT_CHILD);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int(s, 1, QF_DEADLINE); /* a timeouts.finish row does not count */
    sqlite3_bind_text(s, 2, child_run_id, -1, SQLITE_STATIC);
    int rc = sq_next_row(st, s, err);
    if (rc == 0) {
        rc = SB_ENOTFOUND;
    } else if (rc > 0) {
        int crc = 0;
        w->item_id = sqlite3_column_int64(s, 0);
        w->run_id = sq_col_dup(s, 1, &crc);
        w->step_hash = sq_col_dup(s, 2, &crc);
        w->created_at = sqlite3_column_int64(s, 3);
        *run_queue_rows = sqlite3_column_int64(s, 4);
        *flags = sqlite3_column_int(s, 5);
        rc = w->run_id && w->step_hash ? 0 : sq_col_error(err, crc ? crc : SB_ESTORE);
    }
    sqlite3_reset(s);
    if (rc)
        sbd_wait_rec_free(w);
    return rc;
}

int sq_events_since(struct sbd_store *st, const char *name, const char *min_id,
                    int (*fn)(void *ctx, const char *id, const char *body), void *ctx,
                    struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_EVENTS_SINCE);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, min_id, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sq_next_row(st, s, err)) > 0) {
        int crc = 0;
        const char *id = sq_col_req(s, 0, &crc);
        const char *body = sq_col_req(s, 1, &crc);
        if ((rc = crc ? sq_col_error(err, crc) : fn(ctx, id, body)))
            break;
    }
    sqlite3_reset(s);
    return rc;
}

int sq_next_seq(struct sbd_store *st, const char *run_id, int64_t *seq, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_NEXT_SEQ);
    if (s)
        sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    return sq_query_int64(st, s, seq, err); /* *seq is only written on success */
}

int sq_run_trigger(struct sbd_store *st, const char *run_id, char **function_id, char **event_name,
                   char **event_body, struct sb_err *err)
{
    *function_id = *event_name = *event_body = NULL;
    sqlite3_stmt *s = sq_stmt(st, STMT_RUN_TRIGGER);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    int rc = sq_next_row(st, s, err);
    if (rc == 0) {
        rc = SB_ENOTFOUND;
    } else if (rc > 0) {
        int crc = 0;
        *function_id = sq_col_dup(s, 0, &crc);
        *event_name = sq_col_dup(s, 1, &crc);
        *event_body = sq_col_dup(s, 2, &crc);
        rc = (*function_id && *event_name && *event_body)
                 ? 0
                 : sq_col_error(err, crc ? crc : SB_ESTORE);
    }
    sqlite3_reset(s);
    if (rc) {
        free(*function_id);
        free(*event_name);
        free(*event_body);
        *function_id = *event_name = *event_body = NULL;
    }
    return rc;
}
