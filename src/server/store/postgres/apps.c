/* apps.c - the PostgreSQL backend's apps and functions: registration writes,
 * pruning, and the scans the registry and the syncer load them with. A port
 * of sqlite/apps.c. */
#include "pgs.h"

#include <stdlib.h>
#include <string.h>

int pgs_app_upsert(struct sbd_store *st, const struct sbd_app_rec *a, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, a->id);
    pgs_text(&p, a->url);
    pgs_text(&p, a->sdk);
    pgs_text(&p, a->framework);
    pgs_text(&p, a->app_version);
    pgs_text(&p, a->checksum);
    pgs_int(&p, a->now);
    pgs_int(&p, a->now);
    return pgs_exec(st, PGS_APP_UPSERT, &p, NULL, err);
}

int pgs_app_sync_error(struct sbd_store *st, const char *url, const char *error, int64_t now,
                       struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, error);
    pgs_int(&p, now);
    pgs_text(&p, url);
    return pgs_exec(st, PGS_APP_SYNC_ERROR, &p, NULL, err);
}

int pgs_app_delete(struct sbd_store *st, const char *app_id, int64_t now, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_int(&p, now);
    pgs_text(&p, app_id);
    int rc = pgs_exec(st, PGS_APP_DELETE, &p, NULL, err);
    return rc ? rc : pgs_exec(st, PGS_APP_FNS_REMOVE, &p, NULL, err);
}

int pgs_function_put(struct sbd_store *st, const struct sbd_fn_rec *f, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, f->id);
    pgs_text(&p, f->app_id);
    pgs_text(&p, f->name);
    pgs_text(&p, f->config);
    pgs_int(&p, f->now);
    pgs_int(&p, f->now);
    return pgs_exec(st, PGS_FN_PUT, &p, NULL, err);
}

static bool kept(const char *id, const char *const *keep, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keep[i], id) == 0)
            return true;
    return false;
}

int pgs_functions_prune(struct sbd_store *st, const char *app_id, const char *const *keep, size_t n,
                        int64_t now, struct sb_err *err)
{
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, app_id);
    PGresult *r;
    int rc = pgs_run(st, PGS_FN_LIST_APP, &p, &r, err);
    if (rc)
        return rc;
    /* every id is checked before the first is marked: a list that cannot
     * be read marks nothing */
    int rows = PQntuples(r), crc = 0;
    for (int i = 0; i < rows; i++)
        pgs_col_req(r, i, 0, &crc);
    if (crc)
        rc = pgs_col_error(err, crc);
    for (int i = 0; !rc && i < rows; i++) {
        const char *id = PQgetvalue(r, i, 0);
        if (kept(id, keep, n))
            continue;
        struct pgs_params u = PGS_PARAMS_INIT;
        pgs_int(&u, now);
        pgs_text(&u, id);
        rc = pgs_exec(st, PGS_FN_REMOVE, &u, NULL, err);
    }
    PQclear(r);
    return rc;
}

int pgs_functions_scan(struct sbd_store *st,
                       int (*fn)(void *ctx, const char *id, const char *app_id, const char *config,
                                 bool removed, const char *app_url),
                       void *ctx, struct sb_err *err)
{
    PGresult *r;
    int rc = pgs_run(st, PGS_FN_SCAN, NULL, &r, err);
    if (rc)
        return rc;
    for (int i = 0, n = PQntuples(r); i < n; i++) {
        int crc = 0;
        const char *id = pgs_col_req(r, i, 0, &crc);
        const char *app_id = pgs_col_req(r, i, 1, &crc);
        const char *config = pgs_col_req(r, i, 2, &crc);
        bool removed = pgs_col_int(r, i, 3, &crc) != 0;
        const char *url = pgs_col_text(r, i, 4);
        if (crc) {
            rc = pgs_col_error(err, crc);
            break;
        }
        if ((rc = fn(ctx, id, app_id, config, removed, url)))
            break;
    }
    PQclear(r);
    return rc;
}

int pgs_apps_scan(struct sbd_store *st,
                  int (*fn)(void *ctx, const char *id, const char *url, const char *checksum),
                  void *ctx, struct sb_err *err)
{
    PGresult *r;
    int rc = pgs_run(st, PGS_APP_SCAN, NULL, &r, err);
    if (rc)
        return rc;
    for (int i = 0, n = PQntuples(r); i < n; i++) {
        int crc = 0;
        const char *id = pgs_col_req(r, i, 0, &crc);
        const char *url = pgs_col_req(r, i, 1, &crc);
        const char *checksum = pgs_col_text(r, i, 2);
        if (crc) {
            rc = pgs_col_error(err, crc);
            break;
        }
        if ((rc = fn(ctx, id, url, checksum)))
            break;
    }
    PQclear(r);
    return rc;
}

int pgs_apps_at_url(struct sbd_store *st, const char *url, const char *except_id, char ***ids,
                    size_t *n, struct sb_err *err)
{
    *ids = NULL;
    *n = 0;
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, url);
    pgs_text(&p, except_id);
    PGresult *r;
    int rc = pgs_run(st, PGS_APPS_AT_URL, &p, &r, err);
    if (rc)
        return rc;
    int rows = PQntuples(r), crc = 0;
    char **v = rows ? calloc((size_t)rows, sizeof *v) : NULL;
    if (rows && !v)
        rc = sb_err_set(err, SB_ENOMEM, "out of memory");
    size_t k = 0;
    for (int i = 0; !rc && i < rows; i++, k++)
        if (!(v[k] = pgs_col_dup(r, i, 0, &crc)))
            rc = pgs_col_error(err, crc ? crc : SB_ESTORE);
    PQclear(r);
    if (rc) { /* no partial list: the caller would act on it */
        for (size_t i = 0; i < k; i++)
            free(v[i]);
        free(v);
        return rc;
    }
    *ids = v;
    *n = k;
    return 0;
}

int pgs_app_get(struct sbd_store *st, const char *app_id, char **checksum, char **url,
                struct sb_err *err)
{
    if (checksum)
        *checksum = NULL;
    if (url)
        *url = NULL;
    struct pgs_params p = PGS_PARAMS_INIT;
    pgs_text(&p, app_id);
    PGresult *r;
    int rc = pgs_run(st, PGS_APP_GET, &p, &r, err);
    if (rc)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return sb_err_set(err, SB_ENOTFOUND, "no app %s", app_id);
    }
    int crc = 0;
    char *c = checksum ? pgs_col_dup(r, 0, 0, &crc) : NULL;
    char *u = url ? pgs_col_dup(r, 0, 1, &crc) : NULL;
    PQclear(r);
    if (crc || (url && !u)) {
        free(c);
        free(u);
        return pgs_col_error(err, crc ? crc : SB_ESTORE);
    }
    if (checksum)
        *checksum = c;
    if (url)
        *url = u;
    return 0;
}
