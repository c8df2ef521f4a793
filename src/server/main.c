/* main.c - sysbusd: settings, start-up in dependency order, signal wait,
 * orderly shutdown.
 *
 * Start: store (migrate) -> registry (load) -> writer -> waiters -> engine
 * (load the queue: crash recovery is the normal start path) -> cron
 * scheduler -> HTTP -> syncer, janitor -> READY=1 to systemd (sdnotify.h).
 * Stop (SIGTERM/SIGINT): STOPPING=1 to systemd, stop taking work (syncer,
 * janitor, engine), let the writer commit and answer what it holds, answer
 * the long-polls, then close HTTP and the store. Calls that were in flight
 * are simply made again at the next start. */
#include "api/api.h"
#include "common/clock.h"
#include "common/httpc.h"
#include "common/httpd.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sdnotify.h"
#include "cron/scheduler.h"
#include "engine/engine.h"
#include "janitor.h"
#include "registry.h"
#include "sbd.h"
#include "settings.h"
#include "store/store.h"
#include "store/writer.h"
#include "syncer.h"
#include "waiters.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_STORE_NEWER = 3 };

static int load_fn(void *ctx, const char *id, const char *app_id, const char *config, bool removed,
                   const char *app_url)
{
    (void)app_url;
    struct sb_registry *reg = ctx;
    json_t *obj = sb_json_parse(config, strlen(config), NULL);
    struct sb_err err = { 0 };
    struct fn *f = obj ? sb_fn_parse(obj, app_id, &err) : NULL;
    json_decref(obj);
    if (!f) {
        SB_LOG(SB_WARN, "function_load_failed", "stored function %s cannot be loaded: %s", id,
               err.msg);
        return 0;
    }
    f->removed = removed;
    sb_registry_load_fn(reg, f);
    return 0;
}

static int fail(const char *event, int code, const char *msg)
{
    SB_LOG(SB_ERROR, event, "%s", msg);
    fprintf(stderr, "sysbusd: %s\n", msg);
    return code;
}

int main(int argc, char **argv)
{
    static struct sbd sbd; /* owned by main for the process lifetime */
    struct sb_err err = { 0 };
    char *pos[1];
    size_t npos;
    int rc = sb_config_parse(&sbd_config_spec, &sbd.cfg, argc, argv, pos, 0, &npos, &err);
    if (rc == SB_CONFIG_HELP) {
        sb_config_print_help(&sbd_config_spec, stdout);
        sb_config_free(&sbd_config_spec, &sbd.cfg);
        return 0;
    }
    if (rc) {
        fprintf(stderr, "sysbusd: %s\n", err.msg);
        sb_config_free(&sbd_config_spec, &sbd.cfg);
        return EXIT_USAGE;
    }
    int level = sb_log_level_parse(sbd.cfg.log_level);
    if (level < 0) {
        fprintf(stderr, "sysbusd: --log-level: '%s' is not one of debug, info, warn, error\n",
                sbd.cfg.log_level);
        return EXIT_USAGE;
    }
    sb_log_init("sysbusd", level, 2);

    if (sbd.cfg.signing_key) {
        if (sb_signing_key_init(&sbd.signing_key, sbd.cfg.signing_key, &err) != 0) {
            fprintf(stderr, "sysbusd: --signing-key: %s\n", err.msg);
            return EXIT_USAGE;
        }
        sbd.has_signing_key = true;
    }
    if (!sbd.cfg.dev && (!sbd.has_signing_key || sbd.cfg.event_keys.n == 0)) {
        fprintf(stderr,
                "sysbusd: refusing to start unsigned: give --signing-key (or SYSBUS_SIGNING_KEY)\n"
                "and at least one --event-key (or SYSBUS_EVENT_KEY), or run with --dev for local\n"
                "development (no authentication, unsigned calls).\n");
        return EXIT_USAGE;
    }
    sbd.signed_mode = !sbd.cfg.dev;
    /* Few threads allocate at once here; two malloc arenas keep memory that
     * one thread freed usable by the others instead of growing RSS. */
    mallopt(M_ARENA_MAX, 2);
    sbd.started_at_ms = sb_now_ms();

    /* Signals go to the main thread's sigwait; every thread inherits this. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    sb_httpc_global_init();

    if ((rc = sb_store_open(sbd.cfg.data_dir, &sbd.store, &err)) != 0)
        return fail("store_open_failed", rc == SB_ECONFIG ? EXIT_STORE_NEWER : EXIT_RUNTIME,
                    err.msg);
    if (sb_registry_new(&sbd.registry) != 0)
        return fail("oom", EXIT_RUNTIME, "out of memory");
    sb_store_functions_scan(sbd.store, load_fn, sbd.registry);
    if (sb_writer_start(sbd.store, (int)sbd.cfg.max_batch, &sbd.writer, &err) ||
        sb_waiters_start(&sbd, &sbd.waiters, &err) || sb_engine_start(&sbd, &sbd.engine, &err) ||
        sb_scheduler_start(&sbd, &sbd.scheduler, &err))
        return fail("start_failed", EXIT_RUNTIME, err.msg);

    struct sb_httpd_config hc = {
        .host = sbd.cfg.host,
        .port = (int)sbd.cfg.port,
        .threads = (int)sbd.cfg.http_threads,
        .body_max = (size_t)sbd.cfg.max_body,
        .idle_timeout_s = 300,
        .max_conns_per_peer = (unsigned)sbd.cfg.http_max_conns_per_peer,
        .header_timeout_ms = (unsigned)sbd.cfg.http_header_timeout_ms,
        .body_timeout_ms = (unsigned)sbd.cfg.http_body_timeout_ms,
        .routes = sbd_routes,
        .nroutes = sbd_nroutes,
        .authorize = api_authorize,
        .on_reply = api_on_reply,
        .app = &sbd,
    };
    if (sb_httpd_start(&hc, &sbd.httpd, &err) != 0)
        return fail("listen_failed", EXIT_RUNTIME, err.msg);
    if (sb_syncer_start(&sbd, &sbd.syncer, &err) || sb_janitor_start(&sbd, &sbd.janitor, &err))
        return fail("start_failed", EXIT_RUNTIME, err.msg);

    SB_LOGK(SB_INFO, "listening",
            ((struct sb_lf[]){ LF_S("host", sbd.cfg.host), LF_I("port", sb_httpd_port(sbd.httpd)),
                               LF_S("mode", sbd.cfg.dev ? "dev" : "signed"),
                               LF_S("data_dir", sbd.cfg.data_dir), LF_S("version", SB_VERSION) }),
            "sysbusd listening on http://%s:%d (%s mode)", sbd.cfg.host, sb_httpd_port(sbd.httpd),
            sbd.cfg.dev ? "dev" : "signed");
    /* Under systemd (Type=notify) this is what ends "activating": the store
     * is open and the port is listening. A failed notification is logged,
     * not fatal: systemd's start timeout then says the rest. */
    if ((rc = sb_sd_notifyf("READY=1\nSTATUS=listening on %s:%d", sbd.cfg.host,
                            sb_httpd_port(sbd.httpd))) < 0)
        SB_LOG(SB_WARN, "sd_notify_failed", "cannot tell systemd we are ready (NOTIFY_SOCKET): %s",
               rc == SB_EIO ? strerror(errno) : sb_strerror(rc));

    int sig = 0;
    sigwait(&sigs, &sig);
    SB_LOG(SB_INFO, "stopping", "received %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    sb_sd_notify("STOPPING=1");

    sb_syncer_stop(sbd.syncer);
    sb_janitor_stop(sbd.janitor);
    sb_scheduler_stop(sbd.scheduler);
    sb_engine_stop(sbd.engine);   /* no new run changes after this */
    sb_writer_stop(sbd.writer);   /* commits and answers what it holds */
    sb_waiters_stop(sbd.waiters); /* answers long-polls */
    sb_httpd_stop(sbd.httpd);
    sb_engine_free(sbd.engine);
    sb_registry_free(sbd.registry);
    sb_store_close(sbd.store);
    sb_store_close_readers();
    sb_config_free(&sbd_config_spec, &sbd.cfg);
    curl_global_cleanup();
    SB_LOG(SB_INFO, "stopped", "sysbusd stopped");
    return 0;
}
