/* health.h - talon's own HTTP server on [health] bind (common/httpd):
 *   GET  /health   {ok, state, consecutive_failures, probe_count,
 *                   failed_probe_count, failed_probes, updated_at_unix (the
 *                   watchdog's snapshot), worker_state, worker_pid,
 *                   worker_port, worker_restarts, last_exit, stderr_tail
 *                   (backoff/crashloop only), secret_failures,
 *                   restart_in_progress, worker_health_failures, watchdog;
 *                   reason, secrets_unavailable, lease_attempts,
 *                   next_retry_unix_ms in secrets_unavailable and
 *                   restart_blocked only}
 *                  200 when ok, 503 otherwise. ok = the worker is running
 *                  and the watchdog state is neither Failed nor Critical.
 *   POST /restart  (loopback peers only, else 403) asks the main loop for a
 *                  restart and answers with its outcome: 200 {ok:true, ...},
 *                  409 when busy, 500 when it failed, 503 when talon stops.
 * Threads: handlers run on MHD's threads and only touch what h->lock guards
 * (the worker status JSON, the pending restart requests); the main loop
 * publishes the status, claims requests (woken through an eventfd) and
 * replies to them. Owned by health.c. */
#ifndef TALON_HEALTH_H
#define TALON_HEALTH_H

#include <jansson.h>
#include <stddef.h>

#include "common/err.h"
#include "talon/watchdog.h"

struct talon_health;

/* Starts the server on host:port (port 0 = any free port). wd may be NULL
 * (--worker-only). */
int talon_health_start(const char *host, int port, struct talon_watchdog *wd,
                       struct talon_health **out, struct sb_err *err);
int talon_health_port(const struct talon_health *h);
/* Replaces the worker status (stolen). */
void talon_health_publish(struct talon_health *h, json_t *worker_status);
/* Readable when a restart request arrived; talon_health_claim drains it. */
int talon_health_wake_fd(const struct talon_health *h);
/* Moves arrived restart requests to the main loop's side; returns how many. */
size_t talon_health_claim(struct talon_health *h);
/* Answers every claimed request with outcome (borrowed). */
void talon_health_restart_done(struct talon_health *h, json_t *outcome);
/* The /health document. New reference; *ok set. */
json_t *talon_health_doc(struct talon_health *h, int *ok);
/* Answers what is left with 503 and stops the server. */
void talon_health_stop(struct talon_health *h);

#endif
