/* register.c - POST /fn/register: an app syncs its function set.
 *
 * Body (from an Inngest SDK or the sysbus C SDK): {appName, url, functions[],
 * sdk, framework, appVersion?, ...}. Every function is validated; one bad
 * function rejects the whole sync with a message naming it (the previous set
 * stays). A checksum over what matters (app, url, functions, version) makes a
 * re-sync of an unchanged app cheap ({"modified":false}). Otherwise one write
 * replaces the app's functions atomically (removed ones stop triggering),
 * marks any other app registered at the same URL as stale (deleted: the worker
 * at that URL now says it is this app), and, after the commit, publishes the
 * new registry snapshot. Errors carry "status" because SDKs copy it into
 * their answer to the PUT that started the sync. */
#include "api.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "common/json.h"
#include "common/log.h"
#include "server/metrics.h"
#include "server/cron/scheduler.h"
#include "server/registry.h"
#include "server/sbd.h"
#include "server/store/writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FUNCTIONS 2000

struct register_op {
    struct sbd_wop wop;
    struct sb_req *req;
    struct sbd *sbd;
    char *app_id, *url, *sdk, *framework, *app_version, *checksum;
    struct sbd_fn **fns;
    size_t nfns;
    bool modified;
    char **stale; /* other apps found at the same URL (filled by apply) */
    size_t nstale;
    int64_t now;
};

static void register_free(struct register_op *op)
{
    for (size_t i = 0; i < op->nfns; i++)
        sbd_fn_unref(op->fns[i]);
    free(op->fns);
    for (size_t i = 0; i < op->nstale; i++)
        free(op->stale[i]);
    free(op->stale);
    free(op->app_id);
    free(op->url);
    free(op->sdk);
    free(op->framework);
    free(op->app_version);
    free(op->checksum);
    free(op);
}

static int register_apply_in_txn(struct sbd_store *st, struct sbd_wop *w, struct sb_err *err)
{
    struct register_op *op = (struct register_op *)w;
    struct sbd_app_rec app = { op->app_id,      op->url,      op->sdk, op->framework,
                               op->app_version, op->checksum, op->now };
    int rc = sbd_store_app_upsert(st, &app, err);
    if (rc || !op->modified)
        return rc;
    /* stale registrations: other app ids at the same URL */
    char **stale = NULL;
    size_t nstale = 0;
    if ((rc = sbd_store_apps_at_url(st, op->url, op->app_id, &stale, &nstale, err)))
        return rc;
    op->stale = stale;
    op->nstale = nstale;
    for (size_t i = 0; !rc && i < nstale; i++)
        rc = sbd_store_app_delete(st, stale[i], op->now, err);
    const char **keep = calloc(op->nfns ? op->nfns : 1, sizeof *keep);
    if (!keep)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < op->nfns; i++) {
        char *cfg = sb_json_dumps(op->fns[i]->config, NULL);
        struct sbd_fn_rec f = { op->fns[i]->id, op->app_id, op->fns[i]->name, cfg, op->now };
        rc = cfg ? sbd_store_function_put(st, &f, err) : sb_err_set(err, SB_ENOMEM, "oom");
        free(cfg);
        keep[i] = op->fns[i]->id;
    }
    if (!rc)
        rc = sbd_store_functions_prune(st, op->app_id, keep, op->nfns, op->now, err);
    free(keep);
    for (size_t i = 0; !rc && i < op->nfns; i++)
        rc = sbd_scheduler_sync_function_in_txn(st, op->fns[i], op->now, err);
    if (!rc)
        rc = sbd_store_cron_prune(st, err); /* crons of removed functions */
    return rc;
}

static void register_done(struct sbd_wop *w, int rc, const struct sb_err *err)
{
    struct register_op *op = (struct register_op *)w;
    if (rc) {
        sb_reply_json(
            op->req, 500,
            json_pack("{s:s, s:i}", "error", err ? err->msg : "store error", "status", 500));
        register_free(op);
        return;
    }
    if (op->modified) {
        for (size_t i = 0; i < op->nstale; i++) {
            sbd_registry_remove_app(op->sbd->registry, op->stale[i]);
            SB_LOGK(SB_INFO, "app_replaced",
                    ((struct sb_lf[]){ LF_S("app_id", op->stale[i]), LF_S("url", op->url),
                                       LF_S("by", op->app_id) }),
                    "app %s removed: its URL now serves app %s", op->stale[i], op->app_id);
        }
        sbd_registry_replace_app(op->sbd->registry, op->app_id, op->fns, op->nfns);
        sbd_scheduler_kick(op->sbd->scheduler);
        SB_LOGK(SB_INFO, "app_synced",
                ((struct sb_lf[]){ LF_S("app_id", op->app_id), LF_S("url", op->url),
                                   LF_I("functions", op->nfns) }),
                "app %s synced with %zu functions", op->app_id, op->nfns);
    }
    SBD_COUNT(syncs);
    sb_reply_json(op->req, 200,
                  json_pack("{s:b, s:b, s:s, s:i}", "ok", 1, "modified", op->modified, "app_id",
                            op->app_id, "status", 200));
    register_free(op);
}

static void reply_400(struct sb_req *req, const char *msg)
{
    sb_reply_json(req, 400, json_pack("{s:s, s:i}", "error", msg, "status", 400));
}

static char *checksum_of(const json_t *body)
{
    json_t *c =
        json_pack("{s:O?, s:O?, s:O?, s:O?}", "appName", json_object_get(body, "appName"), "url",
                  json_object_get(body, "url"), "functions", json_object_get(body, "functions"),
                  "appVersion", json_object_get(body, "appVersion"));
    size_t len;
    char *text = sb_json_dumps(c, &len);
    json_decref(c);
    if (!text)
        return NULL;
    uint8_t d[SB_SHA256_LEN];
    sb_sha256(text, len, d);
    free(text);
    char *hex = malloc(2 * SB_SHA256_LEN + 1);
    if (hex)
        sb_hex_encode(d, SB_SHA256_LEN, hex);
    return hex;
}

/* The app's own fields: bounded names without control characters. 0, or
 * SB_EINVAL with err naming the field. */
static int register_check_fields(const json_t *body, struct sb_err *err)
{
    static const struct {
        const char *key;
        size_t max;
    } fields[] = { { "appName", SB_MAX_ID },
                   { "url", SB_MAX_URL },
                   { "sdk", 128 },
                   { "framework", 128 },
                   { "appVersion", 128 } };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char what[40];
        snprintf(what, sizeof what, "'%s'", fields[i].key);
        json_t *v = json_object_get(body, fields[i].key);
        if (json_is_string(v) && json_string_length(v) == 0 && strcmp(fields[i].key, "appName"))
            continue; /* "" = not given, except for the app's name */
        if (sb_json_name(v, what, fields[i].max, err) == SB_EINVAL)
            return SB_EINVAL;
    }
    return 0;
}

/* A worker that expects the other mode (X-Inngest-Expected-Server-Kind) is
 * told so (400) rather than synced into calls it would refuse. */
static bool server_kind_ok(struct sb_req *req, const struct sbd *sbd)
{
    const char *expected = sb_req_header(req, "X-Inngest-Expected-Server-Kind");
    const char *kind = sbd->cfg.dev ? "dev" : "cloud";
    if (!expected || !*expected || strcmp(expected, kind) == 0)
        return true;
    char msg[200];
    snprintf(msg, sizeof msg,
             "Expected server kind %s, got %s: the worker runs in %s mode but sysbusd %s", expected,
             kind, expected, sbd->cfg.dev ? "runs with --dev" : "requires signed requests");
    reply_400(req, msg);
    return false;
}

/* The app's part of the body (appName, its fields, url, the functions
 * array and its size): 0, or SB_EINVAL after answering 400. */
static int register_check_body(struct sb_req *req, const json_t *body)
{
    const char *app = sb_json_str(body, "appName");
    const char *url = sb_json_str(body, "url");
    json_t *fns = json_object_get(body, "functions");
    const char *why = NULL;
    char msg[100];
    struct sb_err ferr = { 0 };
    if (!json_is_object(body) || !app || !*app)
        why = "appName is required";
    else if (register_check_fields(body, &ferr) != 0)
        why = ferr.msg;
    else if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        why = "url is required and must be an http(s) URL";
    else if (fns && !json_is_null(fns) && !json_is_array(fns))
        why = "functions must be an array";
    else if (json_array_size(fns) > MAX_FUNCTIONS) {
        snprintf(msg, sizeof msg, "%zu functions; at most %d per app", json_array_size(fns),
                 MAX_FUNCTIONS);
        why = msg;
    }
    if (!why)
        return 0;
    reply_400(req, why);
    return SB_EINVAL;
}

/* The op for a checked body, with copies of the app's fields and room for
 * its functions; NULL when out of memory. */
static struct register_op *register_op_new(struct sb_req *req, struct sbd *sbd, const json_t *body)
{
    size_t n = json_array_size(json_object_get(body, "functions"));
    struct register_op *op = calloc(1, sizeof *op);
    if (!op || !(op->fns = calloc(n ? n : 1, sizeof *op->fns))) {
        free(op);
        return NULL;
    }
    op->wop.apply = register_apply_in_txn;
    op->wop.done = register_done;
    op->req = req;
    op->sbd = sbd;
    op->now = sb_now_ms();
    const char *s;
    op->app_id = strdup(sb_json_str(body, "appName"));
    op->url = strdup(sb_json_str(body, "url"));
    op->sdk = (s = sb_json_str(body, "sdk")) ? strdup(s) : NULL;
    op->framework = (s = sb_json_str(body, "framework")) ? strdup(s) : NULL;
    op->app_version = (s = sb_json_str(body, "appVersion")) ? strdup(s) : NULL;
    op->checksum = checksum_of(body);
    return op;
}

/* Every function of the body, parsed into op: 0, or SB_EINVAL after
 * answering 400 naming the function (one bad function rejects the sync). */
static int register_parse_functions(struct sb_req *req, struct register_op *op, const char *app,
                                    const json_t *fns)
{
    char msg[700];
    for (size_t i = 0; i < json_array_size(fns); i++) {
        struct sb_err err = { 0 };
        struct sbd_fn *f = sbd_fn_parse(json_array_get(fns, i), app, &err);
        if (!f) {
            snprintf(msg, sizeof msg, "app %s: %s", app, err.msg);
            reply_400(req, msg);
            return SB_EINVAL;
        }
        for (size_t j = 0; j < op->nfns; j++) {
            if (strcmp(op->fns[j]->id, f->id) == 0) {
                snprintf(msg, sizeof msg, "app %s: function id '%s' appears twice", app, f->id);
                sbd_fn_unref(f);
                reply_400(req, msg);
                return SB_EINVAL;
            }
        }
        op->fns[op->nfns++] = f;
    }
    return 0;
}

/* Whether the app changed since its last sync. A checksum that cannot be
 * read counts as changed: the full registration is the safe side (it
 * rewrites what an unchanged one would keep). */
static bool app_modified(const char *app, const char *checksum)
{
    struct sbd_store *st = sbd_store_reader();
    char *old = NULL;
    int crc = st ? sbd_store_app_get(st, app, &old, NULL, NULL) : SB_EUNAVAIL;
    bool modified = crc != 0 || !old || strcmp(old, checksum) != 0;
    free(old);
    return modified;
}

void h_register(struct sb_req *req)
{
    struct sbd *sbd = sb_req_app(req);
    if (!server_kind_ok(req, sbd))
        return;
    json_t *body = api_body_json(req);
    if (!body)
        return;
    if (register_check_body(req, body) != 0) {
        json_decref(body);
        return;
    }
    struct register_op *op = register_op_new(req, sbd, body);
    if (!op) {
        json_decref(body);
        sb_reply_error(req, 500, "INTERNAL", "out of memory");
        return;
    }
    const char *app = sb_json_str(body, "appName");
    if (register_parse_functions(req, op, app, json_object_get(body, "functions")) != 0)
        goto fail;
    if (!op->app_id || !op->url || !op->checksum) {
        sb_reply_error(req, 500, "INTERNAL", "out of memory");
        goto fail;
    }
    /* unchanged app: only its sync time is recorded */
    op->modified = app_modified(app, op->checksum);
    json_decref(body);
    sb_req_suspend(req);
    sbd_writer_submit(sbd->writer, &op->wop);
    return;
fail:
    json_decref(body);
    register_free(op);
}
