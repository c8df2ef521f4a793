/* watchdog.h - talon's watchdog: probes from a probe file, run on an
 * interval in their own thread, folded into one state (Healthy / Degraded /
 * Failed / Critical) that drives escalation (a heal command, then a notify
 * command, each with a cooldown). The state is persisted to
 * <state_dir>/state.json and the last results to <state_dir>/last-probe.json.
 *
 * Owned by watchdog.c (thread, state machine, escalation, persistence) and
 * probes.c (probe file parsing, http/tcp/script probes). talon's main loop
 * only starts, reloads, snapshots and stops it.
 *
 * Config keys (talon's settings table maps them; see docs/talon.md):
 *   [probes]     file, interval_secs (30)
 *   [escalation] heal_command, heal_cooldown_secs (600), notify_command,
 *                notify_secret (secret name leased for the notify command,
 *                passed in its environment as notify_env, never argv),
 *                notify_env (TALON_NOTIFY_TOKEN), notify_cooldown_secs (14400),
 *                critical_after_secs (900) */
#ifndef TALON_WATCHDOG_H
#define TALON_WATCHDOG_H

#include <jansson.h>
#include <stdbool.h>

#include "common/err.h"

struct talon_watchdog_config {
    const char *probe_file; /* NULL or "" = no probes (state stays Healthy) */
    const char *state_dir;  /* where state.json / last-probe.json live */
    int interval_secs;
    const char *heal_command; /* command line (split as a shell would, run without one) */
    int heal_cooldown_secs;
    const char *notify_command; /* gets the message JSON on stdin */
    const char *notify_secret;  /* secret name, NULL = none */
    const char *notify_env;     /* env var carrying the leased token */
    int notify_cooldown_secs;
    int critical_after_secs;    /* Failed this long -> Critical */
    const char *secrets_socket; /* NULL = the default lookup (client.h) */
    int secrets_timeout_ms;
    const char *path_env; /* PATH given to every command talon runs */
    int http_timeout_secs;
};

struct talon_watchdog;

/* Loads the probe file (errors name file:line) and starts the probe thread.
 * cfg's strings must outlive the watchdog. */
int talon_watchdog_start(const struct talon_watchdog_config *cfg, struct talon_watchdog **out,
                         struct sb_err *err);
/* Re-reads the probe file (SIGHUP); a bad file keeps the old probes and is
 * logged. The thread also reloads when the file's mtime changes. */
void talon_watchdog_reload(struct talon_watchdog *w);
/* {state, consecutive_failures, probe_count, failed_probe_count,
 *  failed_probes:[name...], updated_at_unix}. New reference. */
json_t *talon_watchdog_snapshot(struct talon_watchdog *w);
void talon_watchdog_stop(struct talon_watchdog *w);

/* `talon --check`: loads the probe file, runs every probe once, returns the
 * report {ok, probes:[{name, type, ok, critical, ms, error}]} (new reference)
 * or NULL with err filled when the file is bad. */
json_t *talon_watchdog_check_once(const struct talon_watchdog_config *cfg, struct sb_err *err);

#endif
