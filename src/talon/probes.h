/* probes.h - the watchdog's internal interface, shared by probes.c,
 * watchdog.c and their unit tests (talon's main loop uses watchdog.h only).
 *
 * probes.c owns the probe file format and running one probe; watchdog.c owns
 * the state x event table declared at the bottom. Nothing here keeps global
 * state; a probe set is owned by whoever loaded it.
 *
 * Probe file format (INI-like; the full reference is docs/talon-probes.md):
 *
 *   # comment (also ';'); blank lines ignored; no inline comments
 *   [probe NAME]            NAME: 1-64 of [A-Za-z0-9._-], unique
 *   type = http|tcp|script  required
 *   critical = true|false   default false (also yes/no/on/off/1/0)
 *   timeout_secs = N        1..3600, default the config's http_timeout_secs (5)
 *   failure_threshold = N   1..1000, default 1: consecutive failed checks
 *                           before the probe counts as failed
 *   url = http(s)://...     http: required
 *   expect_status = N       http: 100..599, default any 2xx
 *   host = H / port = N     tcp: both required
 *   command = LINE          script: required, split as talon_split_words does
 *
 * Every line is `key = value` (whitespace around both trimmed) inside a
 * section; keys are case-sensitive; a key outside a section, an unknown key,
 * a key that does not apply to the probe's type, a repeated key, an empty
 * value or a bad value is an error naming file:line, the key and the value. */
#ifndef TALON_PROBES_H
#define TALON_PROBES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define TALON_PROBE_NAME_MAX 64
#define TALON_PROBES_MAX 64
#define TALON_PROBE_FILE_MAX (1024 * 1024)
#define TALON_PROBE_LINE_MAX 4096

enum talon_probe_type { TALON_PROBE_HTTP, TALON_PROBE_TCP, TALON_PROBE_SCRIPT };

struct talon_probe {
    char name[TALON_PROBE_NAME_MAX + 1];
    enum talon_probe_type type;
    bool critical;
    int timeout_secs;
    int failure_threshold;
    int line;          /* line of its [probe] header */
    char *url;         /* http */
    int expect_status; /* http; 0 = any 2xx */
    char *host;        /* tcp */
    int port;          /* tcp */
    char *command;     /* script: the line as written */
    char **argv;       /* script: command split into words */
};

struct talon_probe_set {
    struct talon_probe *v;
    size_t n;
};

/* Parses a probe file's text (len bytes, need not be NUL-terminated).
 * filename is used in messages only. default_timeout_secs <= 0 means 5.
 * On success fills *out (free with talon_probes_free); on error returns
 * SB_EINVAL/SB_ENOMEM/SB_ETOOBIG with err = "file:line: what", and *out is
 * left empty. */
int talon_probes_parse(const char *text, size_t len, const char *filename, int default_timeout_secs,
                       struct talon_probe_set *out, struct sb_err *err);
/* Reads path (at most TALON_PROBE_FILE_MAX bytes) and parses it. SB_EIO when
 * it cannot be read. */
int talon_probes_load(const char *path, int default_timeout_secs, struct talon_probe_set *out,
                      struct sb_err *err);
void talon_probes_free(struct talon_probe_set *s);

const char *talon_probe_type_name(enum talon_probe_type t);

struct talon_probe_result {
    bool ok;
    int64_t ms;      /* how long the check took */
    char error[256]; /* why it failed; "" when ok */
};

/* Runs one check of p, at most p->timeout_secs (plus a kill grace for a
 * script). path_env is the PATH a script probe runs with. Never fails as a
 * function: a probe that cannot run is a failed probe. */
void talon_probe_run(const struct talon_probe *p, const char *path_env,
                     struct talon_probe_result *out);

/* ---- the state x event table (watchdog.c) ---- */

enum talon_wd_state { TALON_HEALTHY, TALON_DEGRADED, TALON_FAILED, TALON_CRITICAL };
#define TALON_WD_NSTATES 4

/* What one probe round (or a heal) tells the state machine. */
enum talon_wd_event {
    TALON_EV_ALL_PASS,        /* no probe is failed */
    TALON_EV_NONCRIT_FAIL,    /* only non-critical probes are failed */
    TALON_EV_CRIT_FAIL,       /* a critical probe is failed */
    TALON_EV_FAILED_TOO_LONG, /* Failed for critical_after_secs */
    TALON_EV_HEAL_FAILED,     /* the heal command failed, timed out or could not run */
};
#define TALON_WD_NEVENTS 5

enum { TALON_ACT_HEAL = 1, TALON_ACT_NOTIFY = 2 };

struct talon_wd_transition {
    enum talon_wd_state next;
    unsigned actions; /* TALON_ACT_*, run in that order, each behind its cooldown */
};

/* The table lookup: pure, for the watchdog thread and the tests. */
struct talon_wd_transition talon_wd_step(enum talon_wd_state s, enum talon_wd_event e);
/* "Healthy", "Degraded", "Failed", "Critical". */
const char *talon_wd_state_name(enum talon_wd_state s);
/* The inverse; -1 when unknown. */
int talon_wd_state_parse(const char *name);
/* True when an action last run at last_ms (0 = never) may run again at
 * now_ms with this cooldown. A last_ms in the future (the clock went back)
 * counts as long ago, so a clock step cannot silence escalation. */
bool talon_cooldown_over(int64_t last_ms, int cooldown_secs, int64_t now_ms);

#endif
