/* daemon.c - sysbusd's components, created and wired here (the composition
 * root), started in dependency order and stopped in reverse; main.c (the
 * process: settings, signals, systemd) and the engine fuzz target
 * (tests/fuzz/fuzz_engine.c, a whole sysbusd in one process) both run a bus
 * through it.
 *
 * Start: store (migrate; the queue ids) -> registry (load) -> ingest (its
 * notification table, below) -> writer -> waiters -> engine (load the
 * queue: crash recovery is the normal start path) -> cron scheduler -> HTTP
 * -> syncer, janitor. Stop: stop taking work (syncer, janitor, scheduler,
 * engine), let the writer commit and answer what it holds, answer the
 * long-polls, then close HTTP, free what the writer's commits still
 * notified, and close the store. */
#include "api/api.h"
#include "busid.h"
#include "common/httpd.h"
#include "common/json.h"
#include "common/log.h"
#include "cron/scheduler.h"
#include "engine/engine.h"
#include "ingest.h"
#include "janitor.h"
#include "registry.h"
#include "sbd.h"
#include "store/store.h"
#include "store/writer.h"
#include "syncer.h"
#include "waiters.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int load_fn(void *ctx, const char *id, const char *app_id, const char *config, bool removed,
                   const char *app_url)
{
    (void)app_url;
    struct sbd_registry *reg = ctx;
    json_t *obj = sb_json_parse(config, strlen(config), NULL);
    struct sb_err err = { 0 }, serr = { 0 };
    struct sbd_fn *f = obj ? sbd_fn_parse(obj, app_id, &err) : NULL;
    /* Accepted by an earlier sysbusd but refused now (an expression outside
     * the subset): loaded as before, so its runs go on, and reported; the
     * app's next sync is refused until the expression is fixed. */
    if (!f && obj && (f = sbd_fn_parse_stored(obj, app_id, &serr)))
        SB_LOG(SB_WARN, "function_expression_refused",
               "stored function %s is loaded as before, but a sync would refuse it: %s", id,
               err.msg);
    json_decref(obj);
    if (!f) {
        SB_LOG(SB_WARN, "function_load_failed", "stored function %s cannot be loaded: %s", id,
               serr.msg[0] ? serr.msg : err.msg);
        return 0;
    }
    f->removed = removed;
    sbd_registry_load_fn(reg, f);
    return 0;
}

/* ---- what ingest announces after a commit, and who listens ----
 * The table is docs/internals/ingest.md's. Each entry runs on the writer
 * thread after the commit and only posts (the engine's inbox, the
 * scheduler's kick, the waiters' notes): the writer's next batch waits for
 * it. Ingest exists before its listeners, so they are read from sbd: the
 * engine is set before its thread runs (sbd_engine_start), the scheduler is
 * published when it has started (a commit before that has no scheduler to
 * kick: its first scan reads every row anyway), the waiters start before
 * anything can commit an ingest. Each stays valid until the writer has
 * stopped (sbd_stop). */

static struct sbd_scheduler *scheduler_of(struct sbd *sbd)
{
    return __atomic_load_n(&sbd->scheduler, __ATOMIC_ACQUIRE);
}

static void on_deferred_changed(void *ctx, int64_t due_at)
{
    (void)due_at; /* the scheduler re-reads every due time */
    sbd_scheduler_kick(scheduler_of(ctx));
}

static void on_events_held(void *ctx)
{
    struct sbd *sbd = ctx;
    sbd_waiters_notify(sbd->waiters, "", NULL); /* every event waiter re-checks */
}

static void on_runs_created(void *ctx, struct sbd_new_run *runs, size_t n)
{
    struct sbd *sbd = ctx;
    sbd_engine_add_runs(sbd->engine, runs, n);
}

static void on_waits_resolved(void *ctx, struct sbd_wait_resolution *res, size_t n)
{
    struct sbd *sbd = ctx;
    sbd_engine_waits_resolved(sbd->engine, res, n);
}

static void on_cancels(void *ctx, char (*ids)[SB_ULID_SIZE], size_t n)
{
    struct sbd *sbd = ctx;
    for (size_t i = 0; i < n; i++)
        sbd_engine_cancel(sbd->engine, ids[i], NULL, NULL);
}

static const struct sbd_ingest_notify ingest_notify = {
    .deferred_changed = on_deferred_changed, /* scheduler */
    .events_held = on_events_held,           /* waiters */
    .runs_created = on_runs_created,         /* engine */
    .waits_resolved = on_waits_resolved,     /* engine */
    .cancels = on_cancels,                   /* engine */
};

/* The store, the queue ids, the registry and ingest: what the threads
 * started after them need. */
int sbd_open_store(struct sbd *sbd, struct sb_err *err)
{
    assert(!sbd->store);
    char *url = NULL;
    int rc = sbd_store_url(sbd->cfg.store, sbd->cfg.data_dir, &url, err);
    if (rc == 0)
        rc = sbd_store_open(url, &sbd->store, err);
    free(url);
    if (rc == 0 && (rc = sbd_bind_data_dir(sbd->cfg.data_dir, sbd->store, sbd->bus_id, err))) {
        sbd_store_close(sbd->store);
        sbd->store = NULL;
    }
    return rc;
}

static int start_core(struct sbd *sbd, struct sb_err *err)
{
    int rc;
    if (!sbd->store && (rc = sbd_open_store(sbd, err)) != 0)
        return rc;
    char why[sizeof err->msg];
    if ((rc = sbd_qids_load(&sbd->qids, sbd->store, err)) != 0) {
        snprintf(why, sizeof why, "%s", err->msg); /* sb_err_set writes err->msg */
        return sb_err_set(err, rc, "cannot load the largest queue id from the store: %.400s", why);
    }
    if (sbd_registry_new(&sbd->registry) != 0)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    /* A registry missing some functions would fail their runs
     * (FunctionNotFound): a start that cannot read them all does not start. */
    if ((rc = sbd_store_functions_scan(sbd->store, load_fn, sbd->registry, err)) != 0) {
        snprintf(why, sizeof why, "%s", err->msg);
        return sb_err_set(err, rc, "cannot load the stored functions: %.400s", why);
    }
    return sbd_ingest_create(sbd->registry, &sbd->qids, &ingest_notify, sbd, &sbd->ingest, err);
}

int sbd_start(struct sbd *sbd, const char **stage, struct sb_err *err)
{
    int rc;
    *stage = "store_open_failed";
    if ((rc = start_core(sbd, err)) != 0) {
        if (sbd->store)
            *stage = "start_failed";
        return rc;
    }
    *stage = "start_failed";
    struct sbd_scheduler *scheduler = NULL;
    if ((rc = sbd_writer_start(sbd->store, (int)sbd->cfg.max_batch, &sbd->writer, err)) ||
        (rc = sbd_waiters_start(sbd, &sbd->waiters, err)) ||
        (rc = sbd_engine_start(sbd, &sbd->engine, err)) ||
        (rc = sbd_scheduler_start(sbd, &scheduler, err)))
        return rc;
    __atomic_store_n(&sbd->scheduler, scheduler, __ATOMIC_RELEASE);
    struct sb_httpd_config hc = {
        .host = sbd->cfg.host,
        .port = (int)sbd->cfg.port,
        .threads = (int)sbd->cfg.http_threads,
        .body_max = (size_t)sbd->cfg.max_body,
        .idle_timeout_s = 300,
        .max_conns_per_peer = (unsigned)sbd->cfg.http_max_conns_per_peer,
        .header_timeout_ms = (unsigned)sbd->cfg.http_header_timeout_ms,
        .body_timeout_ms = (unsigned)sbd->cfg.http_body_timeout_ms,
        .routes = sbd_routes,
        .nroutes = sbd_nroutes,
        .authorize = api_authorize,
        .on_reply = api_on_reply,
        .app = sbd,
    };
    *stage = "listen_failed";
    if ((rc = sb_httpd_start(&hc, &sbd->httpd, err)) != 0)
        return rc;
    *stage = "start_failed";
    if ((rc = sbd_syncer_start(sbd, &sbd->syncer, err)) ||
        (rc = sbd_janitor_start(sbd, &sbd->janitor, err)))
        return rc;
    SB_LOGK(SB_INFO, "listening",
            ((struct sb_lf[]){ LF_S("host", sbd->cfg.host), LF_I("port", sb_httpd_port(sbd->httpd)),
                               LF_S("mode", sbd->cfg.dev ? "dev" : "signed"),
                               LF_S("data_dir", sbd->cfg.data_dir), LF_S("version", SB_VERSION) }),
            "sysbusd listening on http://%s:%d (%s mode)", sbd->cfg.host, sb_httpd_port(sbd->httpd),
            sbd->cfg.dev ? "dev" : "signed");
    *stage = NULL;
    return 0;
}

void sbd_stop(struct sbd *sbd)
{
    sbd_syncer_stop(sbd->syncer);
    sbd_janitor_stop(sbd->janitor);
    sbd_scheduler_stop(sbd->scheduler);
    sbd_engine_stop(sbd->engine);   /* no new run changes after this */
    sbd_writer_stop(sbd->writer);   /* commits and answers what it holds */
    sbd_waiters_stop(sbd->waiters); /* answers long-polls */
    sb_httpd_stop(sbd->httpd);
    /* the writer's last commits notified these: freed only now */
    sbd_engine_free(sbd->engine);
    sbd_scheduler_free(sbd->scheduler);
    sbd_ingest_destroy(sbd->ingest);
    sbd_registry_free(sbd->registry);
    sbd_store_close(sbd->store);
    sbd_store_close_readers();
}
