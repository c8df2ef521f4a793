/* main.c - sysbusd: settings, start-up in dependency order, signal wait,
 * orderly shutdown.
 *
 * Start: the components in dependency order (daemon.c), then READY=1 to
 * systemd (sdnotify.h). Stop (SIGTERM/SIGINT): STOPPING=1 to systemd, then
 * the components in reverse (daemon.c). Calls that were in flight are
 * simply made again at the next start. */
#include "common/clock.h"
#include "common/httpc.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/sdnotify.h"
#include "engine/backoff.h"
#include "backup.h"
#include "sbd.h"
#include "settings.h"
#include "store/store.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_STORE_NEWER = 3 };

static int fail(const char *event, int code, const char *msg)
{
    SB_LOG(SB_ERROR, event, "%s", msg);
    fprintf(stderr, "sysbusd: %s\n", msg);
    return code;
}

/* Parses the signing key and its fallback; the checks that need both. 0, or
 * SB_ECONFIG after printing why (exit 2: the configuration must change). */
static int load_keys(struct sbd *sbd)
{
    struct sb_err err = { 0 };
    if (sbd->cfg.signing_key) {
        if (sb_signing_key_init(&sbd->signing_key, sbd->cfg.signing_key, &err) != 0) {
            fprintf(stderr, "sysbusd: --signing-key: %s\n", err.msg);
            return SB_ECONFIG;
        }
        sbd->has_signing_key = true;
    }
    if (sbd->cfg.signing_key_fallback) {
        if (!sbd->has_signing_key) {
            fprintf(stderr, "sysbusd: --signing-key-fallback needs --signing-key (the key calls "
                            "are signed with)\n");
            return SB_ECONFIG;
        }
        if (sb_signing_key_init(&sbd->signing_key_fallback, sbd->cfg.signing_key_fallback, &err) !=
            0) {
            fprintf(stderr, "sysbusd: --signing-key-fallback: %s\n", err.msg);
            return SB_ECONFIG;
        }
        sbd->has_signing_key_fallback = true;
    }
    if (!sbd->cfg.dev && (!sbd->has_signing_key || sbd->cfg.event_keys.n == 0)) {
        fprintf(stderr,
                "sysbusd: refusing to start unsigned: give the signing key (SYSBUS_SIGNING_KEY or\n"
                "--signing-key-file) and at least one event key (SYSBUS_EVENT_KEY or\n"
                "--event-key-file), or run with --dev for local development (no authentication,\n"
                "unsigned calls).\n");
        return SB_ECONFIG;
    }
    return 0;
}

/* A password in --store on the command line is readable by every user of
 * the machine, as a key would be (sb_config_warn_secret_flags): said once,
 * without the URL. */
static void warn_store_password(int argc, char **argv)
{
    for (int a = 1; a < argc; a++) {
        const char *v = NULL;
        if (strcmp(argv[a], "--store") == 0 && a + 1 < argc)
            v = argv[a + 1];
        else if (strncmp(argv[a], "--store=", 8) == 0)
            v = argv[a] + 8;
        if (v && sbd_store_url_has_password(v)) {
            SB_LOGK(SB_WARN, "secret_on_command_line", ((struct sb_lf[]){ LF_S("flag", "store") }),
                    "--store holds a password and was given on the command line, where every "
                    "user of this machine can read it (/proc/PID/cmdline, ps): use SYSBUS_STORE, "
                    "--store-file PATH or the database client's password file instead");
            return;
        }
    }
}

#define STORE_WAIT_MAX_STEP_MS 30000

/* A store whose server cannot be reached yet (a database starting with the
 * same boot, a PostgreSQL restarting): kept trying with backoff for
 * --store-wait, each try logged with the reason, instead of an exit into a
 * restart loop; SIGTERM or SIGINT end the wait. 0 when the store is open,
 * 1 when a signal asked to stop, else the open's error. */
static int wait_for_store(struct sbd *sbd, const sigset_t *sigs, struct sb_err *err)
{
    int64_t deadline = sb_mono_ms() + sbd->cfg.store_wait_ms;
    for (int attempt = 0;; attempt++) {
        int rc = sbd_open_store(sbd, err);
        int64_t left = deadline - sb_mono_ms();
        if (rc != SB_EUNAVAIL || left <= 0)
            return rc;
        int64_t ms = sbd_backoff_transport_ms(attempt + 4, STORE_WAIT_MAX_STEP_MS);
        ms = ms < left ? ms : left;
        SB_LOGK(SB_WARN, "store_unavailable",
                ((struct sb_lf[]){ LF_I("attempt", attempt + 1), LF_I("retry_in_ms", ms) }),
                "%s; trying again in %lld ms", err->msg, (long long)ms);
        sb_sd_notifyf("STATUS=waiting for the store: %.200s", err->msg);
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
        int sig = sigtimedwait(sigs, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            SB_LOG(SB_INFO, "stopping", "received %s while waiting for the store, stopping",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
            return 1;
        }
    }
}

/* Settings, the logger, keys and the store URL: -1 to go on, else the exit
 * code (0 after --help). */
static int configure(struct sbd *sbd, int argc, char **argv)
{
    struct sb_err err = { 0 };
    char *pos[1];
    size_t npos;
    int rc = sb_config_parse(&sbd_config_spec, &sbd->cfg, argc, argv, pos, 0, &npos, &err);
    if (rc == SB_CONFIG_HELP) {
        sb_config_print_help(&sbd_config_spec, stdout);
        return 0;
    }
    if (rc) {
        fprintf(stderr, "sysbusd: %s\n", err.msg);
        return EXIT_USAGE;
    }
    int level = sb_log_level_parse(sbd->cfg.log_level);
    if (level < 0) {
        fprintf(stderr, "sysbusd: --log-level: '%s' is not one of debug, info, warn, error\n",
                sbd->cfg.log_level);
        return EXIT_USAGE;
    }
    sb_log_init("sysbusd", level, 2);

    sb_config_warn_secret_flags(&sbd_config_spec, argc, argv);
    warn_store_password(argc, argv);
    if (load_keys(sbd) != 0)
        return EXIT_USAGE;
    /* a store URL this build cannot open must change: a usage error */
    char *store_url = NULL;
    if (sbd_store_url(sbd->cfg.store, sbd->cfg.data_dir, &store_url, &err) != 0) {
        fprintf(stderr, "sysbusd: --store: %s\n", err.msg);
        return EXIT_USAGE;
    }
    free(store_url);
    sbd->signed_mode = !sbd->cfg.dev;
    return -1;
}

/* The store (waited for), then every component: -1 when running, else the
 * exit code (0 when a signal ended the wait for the store). */
static int start(struct sbd *sbd, const sigset_t *sigs)
{
    struct sb_err err = { 0 };
    const char *stage = "store_open_failed";
    int rc = wait_for_store(sbd, sigs, &err);
    if (rc == 1)
        return 0;
    if (rc == 0)
        rc = sbd_start(sbd, &stage, &err);
    if (rc == 0)
        return -1;
    /* a store URL its backend cannot use (a bad PostgreSQL URL or schema
     * name) must change: a usage error, not one to restart on */
    bool at_open = strcmp(stage, "store_open_failed") == 0;
    return fail(stage,
                at_open && rc == SB_ECONFIG  ? EXIT_STORE_NEWER
                : at_open && rc == SB_EINVAL ? EXIT_USAGE
                                             : EXIT_RUNTIME,
                err.msg);
}

int main(int argc, char **argv)
{
    static struct sbd sbd; /* owned by main for the process lifetime */
    if (argc > 1 && (strcmp(argv[1], "backup") == 0 || strcmp(argv[1], "restore") == 0 ||
                     strcmp(argv[1], "migrate") == 0))
        return sbd_backup_main(argc - 1, argv + 1);
    int code = configure(&sbd, argc, argv);
    if (code >= 0) {
        sb_config_free(&sbd_config_spec, &sbd.cfg);
        return code;
    }
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

    if ((code = start(&sbd, &sigs)) >= 0) {
        sb_config_free(&sbd_config_spec, &sbd.cfg);
        return code;
    }
    /* Under systemd (Type=notify) this is what ends "activating": the store
     * is open and the port is listening. A failed notification is logged,
     * not fatal: systemd's start timeout then says the rest. */
    int rc =
        sb_sd_notifyf("READY=1\nSTATUS=listening on %s:%d", sbd.cfg.host, sb_httpd_port(sbd.httpd));
    if (rc < 0)
        SB_LOG(SB_WARN, "sd_notify_failed", "cannot tell systemd we are ready (NOTIFY_SOCKET): %s",
               rc == SB_EIO ? strerror(errno) : sb_strerror(rc));

    int sig = 0;
    sigwait(&sigs, &sig);
    SB_LOG(SB_INFO, "stopping", "received %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    sb_sd_notify("STOPPING=1");

    sbd_stop(&sbd);
    sb_config_free(&sbd_config_spec, &sbd.cfg);
    curl_global_cleanup();
    SB_LOG(SB_INFO, "stopped", "sysbusd stopped");
    return 0;
}
