/* main.c - system-bus-worker: picks its role, defines the role's functions
 * from the one registry, adds the health endpoint (GET /) and serves them
 * with the SDK until SIGTERM (then drains). See docs/system-bus-worker.md. */
#include "common/clock.h"
#include "common/log.h"
#include "registry.h"
#include "webhooks.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SB_VERSION
#define SB_VERSION "dev"
#endif

enum { EXIT_CONFIG = 2 }; /* bad command line or configuration: do not restart */

struct worker {
    sysbus_app *app;
    const char *role;
    char started_at[40];
    json_t *ids; /* the ids served */
};

static void usage(FILE *out)
{
    fputs("usage: system-bus-worker [--help] [--version] [--list]\n"
          "\n"
          "Serves sysbus's durable functions to sysbusd (Inngest protocol) on\n"
          "PORT (default 3111), path /api/inngest, and health JSON on GET /.\n"
          "\n"
          "  --list      print the functions of the role as JSON and exit\n"
          "  --version   print the version and exit\n"
          "\n"
          "Environment: WORKER_ROLE=host|cluster (default host), INNGEST_APP_ID\n"
          "(default system-bus-<role>), INNGEST_BASE_URL, INNGEST_SIGNING_KEY\n"
          "(required unless INNGEST_DEV=1), INNGEST_SIGNING_KEY_FALLBACK,\n"
          "INNGEST_EVENT_KEY, INNGEST_DEV, INNGEST_SERVE_ORIGIN, PORT,\n"
          "SYSBUS_DRAIN_GRACE (default 25s), SYSBUS_DIAG_LOG, LOG_LEVEL, and the\n"
          "webhook secrets GITHUB_WEBHOOK_SECRET, VERCEL_WEBHOOK_SECRET,\n"
          "WEBHOOK_SECRET_<PROVIDER>.\n"
          "\n"
          "Exit codes: 0 stopped after draining; 1 could not start (cannot listen,\n"
          "duplicate function ids, SYSBUS_DIAG_LOG); 2 bad command line or\n"
          "configuration, e.g. no INNGEST_SIGNING_KEY outside INNGEST_DEV=1\n"
          "(permanent: do not restart without changing it).\n",
          out);
}

static void health(sysbus_http *req, void *user)
{
    struct worker *w = user;
    char last[40] = "";
    int64_t reg = sysbus_last_registration(w->app);
    if (reg)
        sb_time_format_iso(reg, last, sizeof last);
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:O, s:i, s:{s:s, s:s, s:s?, s:[], s:b}, s:{s:s, s:s}, s:{s:s}}",
                  "service", "system-bus", "appId", sysbus_app_id(w->app), "status", "running",
                  "functions", w->ids, "count", (int)json_array_size(w->ids), "worker", "role",
                  w->role, "startedAt", w->started_at, "lastRegistrationAt", reg ? last : NULL,
                  "duplicateFunctionIds", "hasDuplicateFunctionIds", 0, "sdk", "name", "sysbus-c",
                  "version", SYSBUS_VERSION, "build", "version", SB_VERSION);
    sysbus_http_reply(req, 200, body);
}

/* The command line: -1 to go on (*list set for --list), else the exit
 * code (after --help, --version or a bad argument). */
static int parse_args(int argc, char **argv, bool *list)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("system-bus-worker %s (sdk %s)\n", SB_VERSION, SYSBUS_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--list") == 0) {
            *list = true;
        } else {
            fprintf(stderr, "system-bus-worker: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return EXIT_CONFIG;
        }
    }
    return -1;
}

/* WORKER_ROLE into w->role; returns the role's bit in the registry. An
 * unknown role is warned about and served as host. */
static unsigned pick_role(struct worker *w)
{
    const char *role = getenv("WORKER_ROLE");
    w->role = "host";
    if (role && strcmp(role, "cluster") == 0) {
        w->role = "cluster";
        return ROLE_CLUSTER;
    }
    if (role && *role && strcmp(role, "host") != 0)
        SB_LOG(SB_WARN, "bad_role", "WORKER_ROLE '%s' is neither host nor cluster: using host",
               role);
    return ROLE_HOST;
}

/* The app (INNGEST_APP_ID, else system-bus-<role>) with the role's
 * functions defined, and their ids in w->ids. */
static void define_app(struct worker *w, unsigned role_bit)
{
    char app_id[128];
    const char *env_app = getenv("INNGEST_APP_ID");
    snprintf(app_id, sizeof app_id, "%s",
             env_app && *env_app
                 ? env_app
                 : (strcmp(w->role, "host") ? "system-bus-cluster" : "system-bus-host"));
    struct sysbus_options opts = { .app_id = app_id,
                                   .dev = -1,
                                   .drain_grace_ms = -1,
                                   .register_at_start = -1,
                                   .app_version = SB_VERSION };
    w->app = sysbus_app_new(&opts);
    worker_define(w->app, worker_functions, role_bit);
    w->ids = json_array();
    for (size_t i = 0; worker_functions[i].id; i++)
        if (worker_functions[i].roles & role_bit)
            json_array_append_new(w->ids, json_string(worker_functions[i].id));
}

int main(int argc, char **argv)
{
    bool list = false;
    int code = parse_args(argc, argv, &list);
    if (code >= 0)
        return code;
    const char *lvl = getenv("LOG_LEVEL");
    sb_log_init("system-bus-worker", sb_log_level_parse(lvl && *lvl ? lvl : "info"), 2);

    struct worker w = { 0 };
    unsigned role_bit = pick_role(&w);
    char dups[512];
    if (worker_duplicate_ids(worker_functions, dups, sizeof dups) > 0) {
        fprintf(stderr,
                "system-bus-worker: refusing to start: function ids defined more than once: %s\n",
                dups);
        return 1;
    }
    define_app(&w, role_bit);
    if (list) {
        char *s = json_dumps(w.ids, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(w.ids);
        sysbus_app_free(w.app);
        return 0;
    }
    const char *cfg_err = sysbus_config_error(w.app);
    if (cfg_err) {
        /* permanent until the environment changes: exit 2, which systemd's
         * RestartPreventExitStatus=2 and an operator read as "fix the config" */
        fprintf(stderr, "system-bus-worker: configuration error: %s\n", cfg_err);
        SB_LOG(SB_ERROR, "config_error", "configuration error: %s", cfg_err);
        json_decref(w.ids);
        sysbus_app_free(w.app);
        return EXIT_CONFIG;
    }
    if (diag_log_open() != 0)
        return 1;
    sb_time_format_iso(sb_now_ms(), w.started_at, sizeof w.started_at);
    sysbus_route(w.app, "GET", "/", health, &w, 0);
    webhooks_install(w.app);
    int rc = sysbus_serve(w.app);
    sysbus_app_free(w.app);
    json_decref(w.ids);
    return rc;
}
