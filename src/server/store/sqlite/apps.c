/* apps.c - the SQLite backend's apps and functions: registration writes,
 * pruning, and the scans the registry and the syncer load them with. */
#include "sq.h"

#include <stdlib.h>
#include <string.h>

int sq_app_upsert(struct sbd_store *st, const struct sbd_app_rec *a, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_APP_UPSERT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, a->url, -1, SQLITE_STATIC);
    sq_bind_text(s, 3, a->sdk);
    sq_bind_text(s, 4, a->framework);
    sq_bind_text(s, 5, a->app_version);
    sq_bind_text(s, 6, a->checksum);
    sqlite3_bind_int64(s, 7, a->now);
    sqlite3_bind_int64(s, 8, a->now);
    return sq_exec(st, s, err);
}

int sq_app_sync_error(struct sbd_store *st, const char *url, const char *error, int64_t now,
                      struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_APP_SYNC_ERROR);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sq_bind_text(s, 1, error);
    sqlite3_bind_int64(s, 2, now);
    sqlite3_bind_text(s, 3, url, -1, SQLITE_STATIC);
    return sq_exec(st, s, err);
}

int sq_app_delete(struct sbd_store *st, const char *app_id, int64_t now, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_APP_DELETE);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_text(s, 2, app_id, -1, SQLITE_STATIC);
    int rc = sq_exec(st, s, err);
    if (rc)
        return rc;
    s = sq_stmt(st, STMT_APP_FNS_REMOVE);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_text(s, 2, app_id, -1, SQLITE_STATIC);
    return sq_exec(st, s, err);
}

int sq_function_put(struct sbd_store *st, const struct sbd_fn_rec *f, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_FN_PUT);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, f->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, f->app_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, f->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, f->config, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, f->now);
    sqlite3_bind_int64(s, 6, f->now);
    return sq_exec(st, s, err);
}

int sq_functions_prune(struct sbd_store *st, const char *app_id, const char *const *keep, size_t n,
                       int64_t now, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_FN_LIST_APP);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, app_id, -1, SQLITE_STATIC);
    char **drop = NULL;
    size_t ndrop = 0;
    int rc;
    while ((rc = sq_next_row(st, s, err)) > 0) {
        int crc = 0;
        const char *id = sq_col_req(s, 0, &crc);
        if (crc) {
            rc = sq_col_error(err, crc);
            break;
        }
        size_t i = 0;
        while (i < n && strcmp(keep[i], id) != 0)
            i++;
        if (i < n)
            continue;
        char **nd = realloc(drop, (ndrop + 1) * sizeof *nd);
        if (!nd || !(nd[ndrop] = strdup(id))) {
            drop = nd ? nd : drop;
            rc = sb_err_set(err, SB_ENOMEM, "out of memory");
            break;
        }
        drop = nd;
        ndrop++;
    }
    sqlite3_reset(s);
    for (size_t i = 0; i < ndrop; i++) {
        if (!rc) {
            sqlite3_stmt *u = sq_stmt(st, STMT_FN_REMOVE);
            if (!u) {
                rc = sb_err_set(err, SB_ESTORE, "statement unavailable");
            } else {
                sqlite3_bind_int64(u, 1, now);
                sqlite3_bind_text(u, 2, drop[i], -1, SQLITE_STATIC);
                rc = sq_exec(st, u, err);
            }
        }
        free(drop[i]);
    }
    free(drop);
    return rc;
}

int sq_functions_scan(struct sbd_store *st,
                      int (*fn)(void *ctx, const char *id, const char *app_id, const char *config,
                                bool removed, const char *app_url),
                      void *ctx, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_FN_SCAN);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    int rc;
    while ((rc = sq_next_row(st, s, err)) > 0) {
        int crc = 0;
        const char *id = sq_col_req(s, 0, &crc);
        const char *app_id = sq_col_req(s, 1, &crc);
        const char *config = sq_col_req(s, 2, &crc);
        const char *url = sq_col_text(s, 4, &crc);
        if (crc) {
            rc = sq_col_error(err, crc);
            break;
        }
        if ((rc = fn(ctx, id, app_id, config, sqlite3_column_int(s, 3) != 0, url)))
            break;
    }
    sqlite3_reset(s);
    return rc;
}

int sq_apps_scan(struct sbd_store *st,
                 int (*fn)(void *ctx, const char *id, const char *url, const char *checksum),
                 void *ctx, struct sb_err *err)
{
    sqlite3_stmt *s = sq_stmt(st, STMT_APP_SCAN);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    int rc;
    while ((rc = sq_next_row(st, s, err)) > 0) {
        int crc = 0;
        const char *id = sq_col_req(s, 0, &crc);
        const char *url = sq_col_req(s, 1, &crc);
        const char *checksum = sq_col_text(s, 2, &crc);
        if (crc) {
            rc = sq_col_error(err, crc);
            break;
        }
        if ((rc = fn(ctx, id, url, checksum)))
            break;
    }
    sqlite3_reset(s);
    return rc;
}

int sq_apps_at_url(struct sbd_store *st, const char *url, const char *except_id, char ***ids,
                   size_t *n, struct sb_err *err)
{
    *ids = NULL;
    *n = 0;
    sqlite3_stmt *s = sq_stmt(st, STMT_APPS_AT_URL);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, url, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, except_id, -1, SQLITE_STATIC);
    int rc, crc = 0;
    while ((rc = sq_next_row(st, s, err)) > 0) {
        char **nv = realloc(*ids, (*n + 1) * sizeof *nv);
        char *id = sq_col_dup(s, 0, &crc);
        if (nv)
            *ids = nv;
        if (!nv || !id) {
            free(id);
            rc = sq_col_error(err, crc ? crc : SB_ENOMEM);
            break;
        }
        (*ids)[(*n)++] = id;
    }
    sqlite3_reset(s);
    if (rc) { /* no partial list: the caller would act on it */
        for (size_t i = 0; i < *n; i++)
            free((*ids)[i]);
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

int sq_app_get(struct sbd_store *st, const char *app_id, char **checksum, char **url,
               struct sb_err *err)
{
    if (checksum)
        *checksum = NULL;
    if (url)
        *url = NULL;
    sqlite3_stmt *s = sq_stmt(st, STMT_APP_GET);
    if (!s)
        return sb_err_set(err, SB_ESTORE, "statement unavailable");
    sqlite3_bind_text(s, 1, app_id, -1, SQLITE_STATIC);
    int rc = sq_next_row(st, s, err);
    if (rc == 0)
        rc = sb_err_set(err, SB_ENOTFOUND, "no app %s", app_id);
    if (rc > 0) {
        int crc = 0;
        char *c = checksum ? sq_col_dup(s, 0, &crc) : NULL;
        char *u = url ? sq_col_dup(s, 1, &crc) : NULL;
        if (crc || (url && !u)) {
            free(c);
            free(u);
            rc = sq_col_error(err, crc ? crc : SB_ESTORE);
        } else {
            if (checksum)
                *checksum = c;
            if (url)
                *url = u;
            rc = 0;
        }
    }
    sqlite3_reset(s);
    return rc;
}
