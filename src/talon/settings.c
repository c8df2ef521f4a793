/* settings.c - talon's settings table, its validators, the derived defaults
 * and the grouped JSON view (see settings.h). Reads the environment only
 * through sb_env (XDG_CONFIG_HOME, XDG_STATE_HOME, HOME for default paths). */
#include "talon/settings.h"
#include "talon/proc.h"
#include "common/clock.h"
#include "common/log.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(field) offsetof(struct talon_settings, field)
#define DAY_MS (86400LL * 1000)

/* ---- validators (sb_opt_check_fn) ---- */

static int env_name_ok(const char *v)
{
    if (!*v || !(isalpha((unsigned char)*v) || *v == '_'))
        return 0;
    for (const char *p = v; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return 0;
    return 1;
}

static int check_env_name(const char *key, const char *value, char *why, size_t n)
{
    (void)key;
    if (env_name_ok(value))
        return 0;
    snprintf(why, n, "is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
    return -1;
}

/* The value of a [secrets] mapping: "ENV", then flag words: "optional"
 * (the worker starts without the secret when it cannot be leased) or
 * "required" (the default, written out). The variable name goes to env
 * (at most envsz-1 bytes). Returns 0, or -1 with why filled. */
static int parse_mapping(const char *value, char *env, size_t envsz, bool *optional, char *why,
                         size_t n)
{
    size_t len = strcspn(value, " \t");
    if (len >= envsz) {
        snprintf(why, n, "has a variable name longer than %zu bytes", envsz - 1);
        return -1;
    }
    memcpy(env, value, len);
    env[len] = '\0';
    if (check_env_name(NULL, env, why, n) != 0)
        return -1;
    *optional = false;
    for (const char *p = value + len; *p;) {
        p += strspn(p, " \t");
        size_t wl = strcspn(p, " \t");
        if (!wl)
            break;
        if (wl == 8 && strncmp(p, "optional", 8) == 0) {
            *optional = true;
        } else if (wl == 8 && strncmp(p, "required", 8) == 0) {
            *optional = false;
        } else {
            snprintf(why, n,
                     "has an unknown flag '%.*s' after the variable name (only 'optional' or "
                     "'required')",
                     (int)(wl > 40 ? 40 : wl), p);
            return -1;
        }
        p += wl;
    }
    return 0;
}

/* [secrets] name = ENV [optional]: a secret name as the secrets daemon
 * accepts it, a variable name, the flags of parse_mapping. */
static int check_mapping(const char *key, const char *value, char *why, size_t n)
{
    for (const char *p = key; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.')) {
            snprintf(why, n, "has a bad secret name (letters, digits, '_', '-', '.')");
            return -1;
        }
    char env[256];
    bool optional;
    return parse_mapping(value, env, sizeof env, &optional, why, n);
}

static int check_command(const char *key, const char *value, char *why, size_t n)
{
    (void)key;
    char **argv = NULL;
    struct sb_err err = { 0 };
    if (talon_split_words(value, &argv, &err) != 0) {
        snprintf(why, n, "cannot be split into words: %s", err.msg);
        return -1;
    }
    talon_words_free(argv);
    return 0;
}

static int check_path(const char *key, const char *value, char *why, size_t n)
{
    (void)key;
    const char *p = value;
    if (!*p) {
        snprintf(why, n, "is empty");
        return -1;
    }
    for (;;) {
        if (*p != '/') {
            snprintf(why, n, "has an entry that is not an absolute directory");
            return -1;
        }
        const char *c = strchr(p, ':');
        if (!c)
            return 0;
        p = c + 1;
    }
}

static int check_url(const char *key, const char *value, char *why, size_t n)
{
    (void)key;
    if (strncmp(value, "http://", 7) == 0 || strncmp(value, "https://", 8) == 0)
        return 0;
    snprintf(why, n, "is not an http(s) URL");
    return -1;
}

static int check_bind(const char *key, const char *value, char *why, size_t n)
{
    (void)key;
    char host[256];
    int port;
    if (talon_parse_bind(value, host, sizeof host, &port) == 0)
        return 0;
    snprintf(why, n, "is not HOST:PORT (e.g. 127.0.0.1:9999)");
    return -1;
}

/* ---- the table ---- */

#define NOCLI (SB_OPTF_NOFILE | SB_OPTF_NOENV)
#define INT(name, field, def, help, lo, hi)                               \
    {                                                                     \
        name, SB_OPT_INT, S(field), def, "N", help, 0, lo, hi, 0, NULL, 0 \
    }
#define STR(name, field, def, meta, help)                                \
    {                                                                    \
        name, SB_OPT_STR, S(field), def, meta, help, 0, 0, 0, 0, NULL, 0 \
    }
#define MODE(name, field, help)                                                   \
    {                                                                             \
        name, SB_OPT_BOOL, S(field), "false", NULL, help, NOCLI, 0, 0, 0, NULL, 0 \
    }

static const struct sb_opt opts[] = {
    { "config", SB_OPT_STR, S(config), NULL, "PATH",
      "Config file (default $XDG_CONFIG_HOME/sysbus/talon.ini, else ~/.config/sysbus/talon.ini)",
      SB_OPTF_CONFIGFILE, 0, 0, 0, NULL, 'c' },
    MODE("check", check, "Run the probes and the worker health check once, print JSON, exit"),
    MODE("status", status, "Print the running talon's /health and exit 0 (ok) or 1"),
    MODE("worker-only", worker_only, "Supervise the worker without the watchdog's probes"),
    MODE("dry-run", dry_run, "Print the plan (command, dir, port, env names, ...) and exit"),
    MODE("takeover", takeover,
         "Stop a process talon did not start that holds the worker port (SIGTERM, then "
         "SIGKILL)"),
    STR("log-level", log_level, "info", "LEVEL", "debug, info, warn or error"),
    /* [worker] */
    STR("worker-dir", worker_dir, NULL, "DIR", "[worker] dir: working directory of the worker"),
    STR("worker-command", worker_command, NULL, "CMDLINE",
        "[worker] command: split into words as a shell would (quotes honoured), run without one"),
    INT("worker-port", worker_port, "3111", "[worker] port: PORT given to the worker", 1, 65535),
    INT("worker-alt-port", worker_alt_port, NULL,
        "[worker] alt_port: port of the next worker during a zero-downtime restart (default "
        "port+1)",
        1, 65535),
    STR("worker-health-endpoint", worker_health_endpoint, NULL, "URL",
        "[worker] health_endpoint (default http://127.0.0.1:{port}/)"),
    STR("worker-sync-endpoint", worker_sync_endpoint, NULL, "URL",
        "[worker] sync_endpoint, PUT to re-register (default http://127.0.0.1:{port}/api/inngest)"),
    STR("worker-env-file", worker_env_file, NULL, "FILE",
        "[worker] env_file: KEY=VALUE lines for the worker's environment"),
    STR("worker-log-stdout", worker_log_stdout, NULL, "FILE",
        "[worker] log_stdout: the worker's stdout is appended here (default talon's stdout)"),
    STR("worker-log-stderr", worker_log_stderr, NULL, "FILE",
        "[worker] log_stderr: the worker's stderr is appended here (default talon's stderr)"),
    INT("worker-drain-timeout-secs", worker_drain_timeout_secs, "5",
        "[worker] drain_timeout_secs: SIGTERM -> SIGKILL grace", 0, 3600),
    INT("worker-health-interval-secs", worker_health_interval_secs, "30",
        "[worker] health_interval_secs", 1, 86400),
    INT("worker-health-failures-before-restart", worker_health_failures_before_restart, "3",
        "[worker] health_failures_before_restart", 1, 1000),
    INT("worker-restart-backoff-max-secs", worker_restart_backoff_max_secs, "30",
        "[worker] restart_backoff_max_secs: backoff 1, 2, 4 ... this", 1, 86400),
    INT("worker-startup-sync-delay-secs", worker_startup_sync_delay_secs, "5",
        "[worker] startup_sync_delay_secs: PUT the sync endpoint this long after a start", 0, 3600),
    INT("worker-http-timeout-secs", worker_http_timeout_secs, "5",
        "[worker] http_timeout_secs: timeout of health GETs and sync PUTs", 1, 600),
    STR("worker-path", worker_path, "/usr/local/bin:/usr/bin:/bin", "DIRS",
        "[worker] path: the fixed PATH of the worker (and where its command is looked up)"),
    INT("worker-crashloop-threshold", worker_crashloop_threshold, "5",
        "[worker] crashloop_threshold: quick failures in a row before talon stops restarting", 1,
        1000),
    INT("worker-crashloop-window-secs", worker_crashloop_window_secs, "60",
        "[worker] crashloop_window_secs: a run shorter than this is a quick failure", 1, 86400),
    { "worker-pass-env", SB_OPT_LIST, S(worker_pass_env), "HOME,USER,LOGNAME,LANG,LC_ALL,TZ,TMPDIR",
      "NAMES", "[worker] pass_env: variables of talon's environment the worker inherits", 0, 0, 0,
      0, NULL, 0 },
    /* [secrets] */
    { "secret", SB_OPT_MAP, S(secrets), NULL, "NAME=ENV",
      "Secret mapping: lease secret NAME, put it in the worker's environment as ENV (in a config "
      "file: `NAME = ENV` lines of [secrets]). Required: the worker is not started without it; "
      "`NAME=ENV optional` starts it without the secret when the lease fails",
      0, 0, 0, 0, NULL, 0 },
    STR("secrets-socket", secrets_socket, NULL, "PATH",
        "[secrets] socket of the secrets daemon (default: the client's lookup)"),
    INT("secrets-timeout-secs", secrets_timeout_secs, "5",
        "[secrets] timeout_secs: the time for all the leases of one worker start", 1, 300),
    INT("secrets-retry-max-secs", secrets_retry_max_secs, "60",
        "[secrets] retry_max_secs: a start whose required secrets cannot be leased is retried "
        "after 1, 2, 4 ... this many seconds (with jitter)",
        1, 3600),
    { "secrets-ttl", SB_OPT_DURATION, S(secrets_ttl_ms), "24h", "DURATION",
      "[secrets] ttl of each lease (a bare number is seconds; at most 24h)", 0, 1000, DAY_MS, 1000,
      NULL, 0 },
    /* [health] */
    STR("health-bind", health_bind, "127.0.0.1:9999", "HOST:PORT",
        "[health] bind: talon's health server (GET /health, POST /restart)"),
    STR("health-state-dir", health_state_dir, NULL, "DIR",
        "[health] state_dir (default $XDG_STATE_HOME/sysbus/talon, else "
        "~/.local/state/sysbus/talon)"),
    STR("health-log-file", health_log_file, NULL, "FILE",
        "[health] log_file: talon's JSON-lines log (default stderr only)"),
    INT("health-log-max-bytes", health_log_max_bytes, "10485760",
        "[health] log_max_bytes: rotate the log file (keeping <file>.1) past this size", 4096,
        1LL << 40),
    /* [probes] */
    STR("probes-file", probes_file, NULL, "FILE", "[probes] file (docs/talon-probes.md)"),
    INT("probes-interval-secs", probes_interval_secs, "30", "[probes] interval_secs", 1, 86400),
    /* [escalation] */
    STR("escalation-heal-command", escalation_heal_command, NULL, "CMDLINE",
        "[escalation] heal_command"),
    INT("escalation-heal-cooldown-secs", escalation_heal_cooldown_secs, "600",
        "[escalation] heal_cooldown_secs", 0, 30 * 86400),
    STR("escalation-notify-command", escalation_notify_command, NULL, "CMDLINE",
        "[escalation] notify_command (gets the message JSON on stdin)"),
    STR("escalation-notify-secret", escalation_notify_secret, NULL, "NAME",
        "[escalation] notify_secret: secret leased for the notify command"),
    STR("escalation-notify-env", escalation_notify_env, "TALON_NOTIFY_TOKEN", "ENV",
        "[escalation] notify_env: variable carrying that secret"),
    INT("escalation-notify-cooldown-secs", escalation_notify_cooldown_secs, "14400",
        "[escalation] notify_cooldown_secs", 0, 30 * 86400),
    INT("escalation-critical-after-secs", escalation_critical_after_secs, "900",
        "[escalation] critical_after_secs: Failed this long -> Critical", 0, 30 * 86400),
    /* [bus] */
    STR("bus-url", bus_url, NULL, "URL",
        "[bus] url of sysbusd (events such as talon/worker.crashloop are sent there)"),
    { "bus-event-key", SB_OPT_STR, S(bus_event_key), NULL, "KEY", "[bus] event_key",
      SB_OPTF_SECRET | SB_OPTF_FILEVALUE, 0, 0, 0, NULL, 0 },
    STR("bus-event-key-secret", bus_event_key_secret, NULL, "NAME",
        "[bus] event_key_secret: secret name leased for the event key instead"),
};

/* Validators and the free-form [secrets] section (common/config.h's extras). */
static const struct sb_opt_ext extras[] = {
    { "worker-command", NULL, check_command },
    { "worker-health-endpoint", NULL, check_url },
    { "worker-sync-endpoint", NULL, check_url },
    { "worker-path", NULL, check_path },
    { "worker-pass-env", NULL, check_env_name },
    { "secret", "secrets", check_mapping },
    { "health-bind", NULL, check_bind },
    { "escalation-heal-command", NULL, check_command },
    { "escalation-notify-command", NULL, check_command },
    { "escalation-notify-env", NULL, check_env_name },
    { "bus-url", NULL, check_url },
};

const struct sb_config_spec talon_config_spec = {
    .prog = "talon",
    .env_prefix = "TALON",
    .usage = "talon [--config PATH] [validate | restart] [--check] [--status] [--worker-only]\n"
             "             [--dry-run] [--takeover] [OPTIONS]",
    .summary =
        "Supervises system-bus-worker on this host: starts it with a fixed PATH, an env file\n"
        "and leased secrets, checks its health, restarts it with backoff (zero-downtime on\n"
        "`talon restart`), stops restarting a crash loop, runs the watchdog's probes and\n"
        "serves its own health on [health] bind. Every option is also a config file key:\n"
        "--worker-port is `port` in [worker]; --secret NAME=ENV is `NAME = ENV` in [secrets].\n"
        "\n"
        "Commands:\n"
        "  (none)     supervise (takes <state_dir>/talon.lock)\n"
        "  validate   print the parsed config as JSON; exit 1 on any bad key or value\n"
        "  restart    ask the running talon for a zero-downtime restart and wait for it",
    .footer =
        "Exit codes: 0 ok; 1 not ok (validate found an error, --check/--status unhealthy,\n"
        "restart failed, runtime failure); 2 bad command line or config (permanent: do not\n"
        "restart talon on it); 3 another talon holds the lock; 4 the worker port is held by a\n"
        "process talon did not start (see --takeover). See docs/talon.md.",
    .opts = opts,
    .nopts = sizeof opts / sizeof opts[0],
};

/* ---- loading and resolving ---- */

static int set_str(char **field, const char *value)
{
    char *c = strdup(value);
    if (!c)
        return SB_ENOMEM;
    free(*field);
    *field = c;
    return 0;
}

int talon_settings_load(struct talon_settings *s, int argc, char **argv, char **pos, size_t *npos,
                        struct sb_err *err)
{
    char def[1024] = "";
    const char *xdg = sb_env("XDG_CONFIG_HOME"), *home = sb_env("HOME");
    if (xdg && *xdg)
        snprintf(def, sizeof def, "%s/sysbus/talon.ini", xdg);
    else if (home && *home)
        snprintf(def, sizeof def, "%s/.config/sysbus/talon.ini", home);
    struct sb_config_ext ext = { def[0] ? def : NULL, extras, sizeof extras / sizeof extras[0] };
    int rc = sb_config_parse_ext(&talon_config_spec, &ext, s, argc, argv, pos, 1, npos, err);
    if (rc)
        return rc;
    if (*npos == 1 && strcmp(pos[0], "validate") != 0 && strcmp(pos[0], "restart") != 0)
        return sb_err_set(err, SB_EINVAL, "unknown command '%s' (validate or restart)", pos[0]);
    return talon_settings_resolve(s, err);
}

/* secret_maps from the secrets map (rebuilt when resolve runs again), and
 * the checks across mappings. */
static int resolve_secret_maps(struct talon_settings *s, struct sb_err *err)
{
    for (size_t i = 0; i < s->nsecret_maps; i++)
        free(s->secret_maps[i].env);
    free(s->secret_maps);
    s->nsecret_maps = 0;
    s->secret_maps = s->secrets.n ? calloc(s->secrets.n, sizeof *s->secret_maps) : NULL;
    if (s->secrets.n && !s->secret_maps)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->secrets.n; i++) {
        struct talon_secret_map *m = &s->secret_maps[i];
        char env[256], why[200];
        if (parse_mapping(s->secrets.val[i], env, sizeof env, &m->optional, why, sizeof why))
            return sb_err_set(err, SB_EINVAL, "[secrets] %s = '%s' %s", s->secrets.key[i],
                              s->secrets.val[i], why);
        m->name = s->secrets.key[i];
        if (!(m->env = strdup(env)))
            return sb_err_set(err, SB_ENOMEM, "out of memory");
        s->nsecret_maps = i + 1;
        if (strcmp(env, "PATH") == 0 || strcmp(env, "PORT") == 0)
            return sb_err_set(err, SB_EINVAL,
                              "[secrets] %s = %s: talon sets %s itself ([worker] %s)", m->name, env,
                              env, env[1] == 'A' ? "path" : "port");
        for (size_t j = 0; j < i; j++)
            if (strcmp(env, s->secret_maps[j].env) == 0)
                return sb_err_set(err, SB_EINVAL, "[secrets] %s and %s both map to %s",
                                  s->secret_maps[j].name, m->name, env);
    }
    return 0;
}

int talon_settings_resolve(struct talon_settings *s, struct sb_err *err)
{
    if (!s->worker_alt_port) {
        if (s->worker_port >= 65535)
            return sb_err_set(err, SB_EINVAL, "[worker] port 65535 needs an explicit alt_port");
        s->worker_alt_port = s->worker_port + 1;
    }
    if (s->worker_alt_port == s->worker_port)
        return sb_err_set(err, SB_EINVAL, "[worker] alt_port must differ from port (%lld)",
                          (long long)s->worker_port);
    if (!s->worker_health_endpoint &&
        set_str(&s->worker_health_endpoint, "http://127.0.0.1:{port}/"))
        return SB_ENOMEM;
    if (!s->worker_sync_endpoint &&
        set_str(&s->worker_sync_endpoint, "http://127.0.0.1:{port}/api/inngest"))
        return SB_ENOMEM;
    if (!s->health_state_dir) {
        char dir[1024];
        const char *xdg = sb_env("XDG_STATE_HOME"), *home = sb_env("HOME");
        if (xdg && *xdg)
            snprintf(dir, sizeof dir, "%s/sysbus/talon", xdg);
        else if (home && *home)
            snprintf(dir, sizeof dir, "%s/.local/state/sysbus/talon", home);
        else
            return sb_err_set(err, SB_EINVAL, "[health] state_dir is not set and neither is HOME");
        if (set_str(&s->health_state_dir, dir))
            return SB_ENOMEM;
    }
    if (sb_log_level_parse(s->log_level) < 0)
        return sb_err_set(err, SB_EINVAL, "--log-level: '%s' is not debug, info, warn or error",
                          s->log_level);
    if (s->bus_event_key && s->bus_event_key_secret)
        return sb_err_set(err, SB_EINVAL, "[bus] set event_key or event_key_secret, not both");
    if (s->bus_url && !s->bus_event_key && !s->bus_event_key_secret)
        return sb_err_set(err, SB_EINVAL, "[bus] url needs event_key or event_key_secret");
    return resolve_secret_maps(s, err);
}

void talon_settings_free(struct talon_settings *s)
{
    for (size_t i = 0; i < s->nsecret_maps; i++)
        free(s->secret_maps[i].env);
    free(s->secret_maps);
    s->secret_maps = NULL;
    s->nsecret_maps = 0;
    sb_config_free(&talon_config_spec, s);
}

/* ---- views ---- */

static const char *const sections[] = {
    "worker", "secrets", "health", "probes", "escalation", "bus"
};

json_t *talon_settings_json(const struct talon_settings *s)
{
    json_t *flat = sb_config_dump(&talon_config_spec, s);
    json_t *out = json_object();
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        json_object_set_new(out, sections[i], json_object());
    for (size_t i = 0; i < talon_config_spec.nopts; i++) {
        const struct sb_opt *o = &talon_config_spec.opts[i];
        json_t *v = json_object_get(flat, o->name);
        if (o->flags & (SB_OPTF_NOFILE | SB_OPTF_CONFIGFILE))
            continue;
        if (o->type == SB_OPT_DURATION) { /* as written in a file: "24h" */
            char d[32];
            sb_duration_format(json_integer_value(v), d, sizeof d);
            v = json_string(d);
            json_object_set_new(flat, o->name, v);
        }
        if (o->type == SB_OPT_MAP) { /* the one MAP: name -> ENV, and which are optional */
            json_t *maps = json_object(), *opt = json_array();
            for (size_t j = 0; j < s->nsecret_maps; j++) {
                json_object_set_new(maps, s->secret_maps[j].name,
                                    json_string(s->secret_maps[j].env));
                if (s->secret_maps[j].optional)
                    json_array_append_new(opt, json_string(s->secret_maps[j].name));
            }
            json_object_set_new(json_object_get(out, "secrets"), "mappings", maps);
            json_object_set_new(json_object_get(out, "secrets"), "optional", opt);
            continue;
        }
        json_t *dst = out;
        const char *key = o->name;
        for (size_t j = 0; j < sizeof sections / sizeof sections[0]; j++) {
            size_t n = strlen(sections[j]);
            if (strncmp(o->name, sections[j], n) == 0 && o->name[n] == '-') {
                dst = json_object_get(out, sections[j]);
                key = o->name + n + 1;
            }
        }
        char k[128];
        size_t n = 0;
        for (; key[n] && n + 1 < sizeof k; n++)
            k[n] = key[n] == '-' ? '_' : key[n];
        k[n] = '\0';
        json_object_set(dst, k, v);
    }
    json_decref(flat);
    return out;
}

int talon_url_for_port(const char *tmpl, int cfg_port, int port, char *out, size_t outsz)
{
    char cfg[16], now[16];
    snprintf(cfg, sizeof cfg, "%d", cfg_port);
    snprintf(now, sizeof now, "%d", port);
    const char *ph = strstr(tmpl, "{port}");
    int n;
    if (ph) {
        n = snprintf(out, outsz, "%.*s%s%s", (int)(ph - tmpl), tmpl, now, ph + 6);
    } else {
        /* the authority's port: after "scheme://host", before '/', '?' or the end */
        const char *auth = strstr(tmpl, "://");
        auth = auth ? auth + 3 : tmpl;
        size_t alen = strcspn(auth, "/?#");
        const char *colon = NULL;
        for (const char *p = auth; p < auth + alen; p++)
            if (*p == ':')
                colon = p;
        if (colon && (size_t)(auth + alen - colon - 1) == strlen(cfg) &&
            strncmp(colon + 1, cfg, strlen(cfg)) == 0)
            n = snprintf(out, outsz, "%.*s%s%s", (int)(colon + 1 - tmpl), tmpl, now, auth + alen);
        else
            n = snprintf(out, outsz, "%s", tmpl);
    }
    return n < 0 || (size_t)n >= outsz ? SB_ETOOBIG : 0;
}

int talon_parse_bind(const char *bind, char *host, size_t hostsz, int *port)
{
    const char *colon = strrchr(bind, ':');
    if (!colon || colon == bind)
        return SB_EINVAL;
    const char *h = bind;
    size_t hl = (size_t)(colon - bind);
    if (*h == '[') { /* [v6]:port */
        if (hl < 3 || h[hl - 1] != ']')
            return SB_EINVAL;
        h++;
        hl -= 2;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 0 || p > 65535 || hl == 0 || hl >= hostsz)
        return SB_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}
