/* settings.h - talon's settings: one declarative table (settings.c) read by
 * the one config loader (common/config.h) from flags > TALON_* environment >
 * the INI config file ([worker], [secrets], [probes], [health], [escalation],
 * [bus]) > defaults, then resolved (derived defaults such as alt_port and the
 * endpoints, the state directory) and cross-checked. Owns the settings
 * struct's strings (freed by talon_settings_free). docs/talon.md lists every
 * key. */
#ifndef TALON_SETTINGS_H
#define TALON_SETTINGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/err.h"

/* One [secrets] mapping: lease `name`, put it in the worker's environment as
 * `env`. A required secret that cannot be leased keeps the worker from
 * starting (fail closed); an optional one is left out and reported. */
struct talon_secret_map {
    const char *name;
    char *env; /* the variable name alone (the flag words cut off) */
    bool optional;
};

struct talon_settings {
    char *config;
    /* command-line modes (not in files or the environment) */
    bool check, status, worker_only, dry_run, takeover;
    char *log_level;
    /* [worker] */
    char *worker_dir, *worker_command;
    int64_t worker_port, worker_alt_port;
    char *worker_health_endpoint, *worker_sync_endpoint;
    char *worker_env_file, *worker_log_stdout, *worker_log_stderr;
    int64_t worker_drain_timeout_secs, worker_health_interval_secs;
    int64_t worker_health_failures_before_restart, worker_restart_backoff_max_secs;
    int64_t worker_startup_sync_delay_secs, worker_http_timeout_secs;
    char *worker_path;
    int64_t worker_crashloop_threshold, worker_crashloop_window_secs;
    struct sb_strlist worker_pass_env;
    /* [secrets] */
    struct sb_strmap secrets; /* secret name -> "ENV" or "ENV optional", as written */
    char *secrets_socket;
    int64_t secrets_timeout_secs, secrets_ttl_ms, secrets_retry_max_secs;
    /* The mappings of `secrets`, parsed by talon_settings_resolve (owned;
     * the strings point into `secrets`): what inject.c and the views use. */
    struct talon_secret_map *secret_maps;
    size_t nsecret_maps;
    /* [health] */
    char *health_bind, *health_state_dir, *health_log_file;
    int64_t health_log_max_bytes;
    /* [probes] */
    char *probes_file;
    int64_t probes_interval_secs;
    /* [escalation] */
    char *escalation_heal_command, *escalation_notify_command, *escalation_notify_secret;
    char *escalation_notify_env;
    int64_t escalation_heal_cooldown_secs, escalation_notify_cooldown_secs;
    int64_t escalation_critical_after_secs;
    /* [bus] */
    char *bus_url, *bus_event_key, *bus_event_key_secret;
};

extern const struct sb_config_spec talon_config_spec;

/* Parses argv (and the environment and config file) into s, then resolves
 * it (talon_settings_resolve). pos/npos receive the subcommand ("validate",
 * "restart"; at most one). Returns 0, SB_CONFIG_HELP, or SB_EINVAL/SB_EIO
 * with err naming the setting (file:line and key for file errors). s must
 * be zeroed; free it with talon_settings_free whatever the result. */
int talon_settings_load(struct talon_settings *s, int argc, char **argv, char **pos, size_t *npos,
                        struct sb_err *err);
/* Fills the derived defaults (alt_port = port+1, endpoints, state_dir),
 * parses the secret mappings into secret_maps, and checks what no single
 * value can: a command is set, ports differ, the bus has a key, no mapping
 * targets a variable talon sets itself. May run again on the same s. */
int talon_settings_resolve(struct talon_settings *s, struct sb_err *err);
void talon_settings_free(struct talon_settings *s);

/* The effective settings grouped by section ({"worker": {"port": 3111,
 * ...}, "secrets": {"mappings": {name: ENV}, ...}, ...}): names only, the
 * bus event key redacted. New reference. */
json_t *talon_settings_json(const struct talon_settings *s);

/* The endpoint URL tmpl for a worker listening on port: "{port}" is
 * replaced, and so is an authority port equal to the configured one
 * ("http://127.0.0.1:3111/" -> "...:3112/" for the alternate port).
 * Writes into out; returns 0 or SB_ETOOBIG. */
int talon_url_for_port(const char *tmpl, int cfg_port, int port, char *out, size_t outsz);

/* Splits "host:port" / "[v6]:port" of [health] bind. 0 or SB_EINVAL. */
int talon_parse_bind(const char *bind, char *host, size_t hostsz, int *port);

#endif
