/* apps.c - apps and functions: GET/POST /v1/apps, DELETE /v1/apps/{id},
 * POST /v1/apps/{id}/sync, GET /v1/functions.
 *
 * Adding an app by URL (POST /v1/apps {"url"}) makes sysbusd PUT that URL;
 * the worker then registers itself (POST /fn/register), and the reply
 * reports the app as registered, or 502 with why the URL could not be
 * synced ("Unable to reach SDK URL ..."). */
#include "api.h"
#include "common/clock.h"
#include "common/json.h"
#include "server/registry.h"
#include "server/sbd.h"
#include "server/store/store.h"
#include "server/store/writer.h"
#include "server/syncer.h"
#include "views.h"

#include <stdlib.h>
#include <string.h>

void h_apps_list(struct sb_req *req)
{
    struct sbd_store *st = sbd_store_reader();
    struct sb_err err = { SB_EUNAVAIL, 0, "no read connection" };
    json_t *apps = st ? api_view_apps(st, &err) : NULL;
    if (!apps) {
        api_store_error(req, "apps", &err);
        return;
    }
    sb_reply_json(req, 200, json_pack("{s:o}", "data", apps));
}

void h_functions_list(struct sb_req *req)
{
    struct sbd_store *st = sbd_store_reader();
    const char *app = sb_req_query(req, "app");
    const char *removed = sb_req_query(req, "include_removed");
    struct sb_err err = { SB_EUNAVAIL, 0, "no read connection" };
    json_t *fns = st ? api_view_functions(st, app && *app ? app : NULL,
                                          removed && strcmp(removed, "true") == 0, &err)
                     : NULL;
    if (!fns) {
        api_store_error(req, "functions", &err);
        return;
    }
    sb_reply_json(req, 200, json_pack("{s:o}", "data", fns));
}

/* The answer to a sync request: the app now registered at url, or why not. */
struct sync_wait {
    struct sb_req *req;
    char *url;
};

/* The app registered at url; NULL with err when there is none (SB_ENOTFOUND)
 * or the store could not be read. */
static json_t *app_at_url(const char *url, struct sb_err *err)
{
    struct sbd_store *st = sbd_store_reader();
    json_t *apps = st ? api_view_apps(st, err) : NULL;
    if (!apps)
        return NULL;
    json_t *found = NULL;
    size_t i;
    json_t *a;
    json_array_foreach(apps, i, a)
    {
        const char *u = sb_json_str(a, "url");
        if (u && strcmp(u, url) == 0)
            found = json_incref(a);
    }
    json_decref(apps);
    if (!found)
        sb_err_set(err, SB_ENOTFOUND, "no app at %s", url);
    return found;
}

static void sync_answered(void *ctx, int rc, long status, const char *message)
{
    struct sync_wait *sw = ctx;
    if (rc) {
        sb_reply_error(sw->req, 502, "SDK_UNREACHABLE", "%s", message);
    } else if (status >= 300) {
        sb_reply_error(sw->req, 502, "SYNC_FAILED",
                       "the worker at %s answered the sync with %ld: %s", sw->url, status, message);
    } else {
        struct sb_err err = { SB_EUNAVAIL, 0, "no read connection" };
        json_t *app = app_at_url(sw->url, &err);
        if (app)
            sb_reply_json(sw->req, 200, json_pack("{s:o, s:s}", "data", app, "message", message));
        else if (err.code != SB_ENOTFOUND)
            api_store_error(sw->req, "the synced app", &err);
        else
            sb_reply_error(sw->req, 502, "NOT_REGISTERED",
                           "the worker at %s answered the sync (%s) but did not register: is its "
                           "INNGEST_BASE_URL pointing at this sysbusd?",
                           sw->url, message);
    }
    free(sw->url);
    free(sw);
}

static void start_sync(struct sb_req *req, const char *url)
{
    struct sbd *sbd = sb_req_app(req);
    struct sync_wait *sw = calloc(1, sizeof *sw);
    if (!sw || !(sw->url = strdup(url))) {
        free(sw);
        sb_reply_error(req, 500, "INTERNAL", "out of memory");
        return;
    }
    sw->req = req;
    sb_req_suspend(req);
    sbd_syncer_request(sbd->syncer, url, sync_answered, sw);
}

void h_apps_add(struct sb_req *req)
{
    json_t *body = api_body_json(req);
    if (!body)
        return;
    const char *url = sb_json_str(body, "url");
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        sb_name_check(url, strlen(url), "url", SB_MAX_URL, NULL) != 0) {
        json_decref(body);
        sb_reply_error(req, 400, "INVALID_URL",
                       "body must be {\"url\": \"http(s)://...\"} with a URL of at most %d "
                       "bytes without control characters",
                       SB_MAX_URL);
        return;
    }
    start_sync(req, url);
    json_decref(body);
}

void h_app_sync(struct sb_req *req)
{
    struct sbd_store *st = sbd_store_reader();
    struct sb_err err = { SB_EUNAVAIL, 0, "no read connection" };
    char *url = NULL;
    if (!st || sbd_store_app_get(st, sb_req_param(req, 0), NULL, &url, &err) != 0) {
        if (err.code == SB_ENOTFOUND)
            sb_reply_error(req, 404, "NOT_FOUND", "no such app: %s", sb_req_param(req, 0));
        else
            api_store_error(req, "the app", &err);
        return;
    }
    start_sync(req, url);
    free(url);
}

struct delete_op {
    struct sbd_wop wop;
    struct sb_req *req;
    struct sbd *sbd;
    char *app_id;
};

static int delete_apply_in_txn(struct sbd_store *st, struct sbd_wop *w, struct sb_err *err)
{
    struct delete_op *op = (struct delete_op *)w;
    int rc = sbd_store_app_delete(st, op->app_id, sb_now_ms(), err);
    return rc ? rc : sbd_store_cron_prune(st, err);
}

static void delete_done(struct sbd_wop *w, int rc, const struct sb_err *err)
{
    struct delete_op *op = (struct delete_op *)w;
    if (rc) {
        sb_reply_error(op->req, 500, "STORE_ERROR", "%s", sbd_store_err_public(err));
    } else {
        sbd_registry_remove_app(op->sbd->registry, op->app_id);
        sb_reply_json(op->req, 200,
                      json_pack("{s:{s:s, s:b}}", "data", "id", op->app_id, "deleted", 1));
    }
    free(op->app_id);
    free(op);
}

void h_app_delete(struct sb_req *req)
{
    struct sbd *sbd = sb_req_app(req);
    const char *id = sb_req_param(req, 0);
    struct sbd_store *st = sbd_store_reader();
    struct sb_err err = { SB_EUNAVAIL, 0, "no read connection" };
    if (!st || sbd_store_app_get(st, id, NULL, NULL, &err) != 0) {
        if (err.code == SB_ENOTFOUND)
            sb_reply_error(req, 404, "NOT_FOUND", "no such app: %s", id);
        else
            api_store_error(req, "the app", &err);
        return;
    }
    struct delete_op *op = calloc(1, sizeof *op);
    if (!op || !(op->app_id = strdup(id))) {
        free(op);
        sb_reply_error(req, 500, "INTERNAL", "out of memory");
        return;
    }
    op->wop.apply = delete_apply_in_txn;
    op->wop.done = delete_done;
    op->req = req;
    op->sbd = sbd;
    sb_req_suspend(req);
    sbd_writer_submit(sbd->writer, &op->wop);
}
