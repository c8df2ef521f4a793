/* talon.h - what talon's main.c (command line, one-shot modes) and
 * supervise.c (the supervising loop) share: exit codes, the lock, the
 * supervisor state file and the watchdog config built from the settings. */
#ifndef TALON_TALON_H
#define TALON_TALON_H

#include <jansson.h>
#include <sys/types.h>

#include "common/err.h"
#include "talon/settings.h"
#include "talon/watchdog.h"

enum {
    TALON_EXIT_OK = 0,
    TALON_EXIT_FAIL = 1,   /* not ok / runtime failure */
    TALON_EXIT_CONFIG = 2, /* bad command line or config: permanent */
    TALON_EXIT_LOCKED = 3, /* another talon supervises this worker */
    TALON_EXIT_PORT = 4,   /* the worker port is held by a foreign process */
};

/* Runs the supervisor until SIGTERM/SIGINT; returns the exit code. */
int talon_supervise(struct talon_settings *s);

/* <state_dir>/talon.lock: flock'd for the supervisor's lifetime, holding its
 * pid. Returns the fd (close-on-exec), or -1 with *holder = the pid written
 * by the talon that holds it (0 if unknown) and err filled. */
int talon_lock_take(const char *state_dir, pid_t *holder, struct sb_err *err);

/* <state_dir>/supervisor.json: {talon_pid, health_url, worker_pid,
 * worker_port, worker_state, updated_at_unix}, written temp + fsync +
 * rename + fsync(dir). talon_state_read returns NULL when absent. */
int talon_state_write(const char *state_dir, json_t *state);
json_t *talon_state_read(const char *state_dir);

/* The URL of the running talon's health server: [health] bind with a
 * wildcard host made loopback; when bind's port is 0, the health_url of
 * supervisor.json. Returns 0 or SB_EINVAL. */
int talon_health_url(const struct talon_settings *s, char *out, size_t outsz, struct sb_err *err);

/* The watchdog's config from the settings (strings borrowed from s). */
void talon_watchdog_config_from(const struct talon_settings *s, struct talon_watchdog_config *wc);

#endif
