/* watchdog.c - talon's watchdog (see watchdog.h): the probe thread, the
 * state x event table, escalation (heal, notify) and persistence. Probe
 * parsing and running live in probes.c; the design note is
 * docs/internals/talon-watchdog.md.
 *
 * Threads: talon_watchdog_start/reload/snapshot/stop are called from talon's
 * main loop and health server; everything else runs on the watchdog thread.
 * w->bg.lock guards reload_wanted and snap (the published snapshot) only;
 * the probe set, per-probe counters and the state machine belong to the
 * thread, so probes and commands run without any lock held.
 *
 * Invariants: the state only changes through talon_wd_step; state.json is
 * written (temp, fsync, rename, fsync dir) after every round, so a restart
 * resumes the state, its `since` and both cooldowns; a notify token exists
 * only in sodium memory and the notify command's environment. */
#include "talon/watchdog.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bgthread.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "common/log.h"
#include "secrets/client.h"
#include "talon/probes.h"
#include "talon/proc.h"

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define COMMAND_TIMEOUT_MS 30000 /* heal and notify commands */
#define NOTIFY_RETRY_SECS 60     /* after a failed notify, at most this often */
#define NOTIFY_LEASE_TTL_S 300
#define FILE_CHECK_MS 1000 /* probe file mtime poll */

/* ---- the state x event table ------------------------------------------- */

#define H TALON_HEALTHY
#define D TALON_DEGRADED
#define F TALON_FAILED
#define C TALON_CRITICAL
#define HEAL TALON_ACT_HEAL
#define NOTIFY TALON_ACT_NOTIFY
/* Rows: current state. Columns: ALL_PASS, NONCRIT_FAIL, CRIT_FAIL,
 * FAILED_TOO_LONG, HEAL_FAILED. Each cell: next state, actions. Heal is
 * retried (behind its cooldown) for as long as a critical probe fails;
 * notify (behind its cooldown) for as long as the state is Critical. */
static const struct talon_wd_transition table[TALON_WD_NSTATES][TALON_WD_NEVENTS] = {
    /*            ALL_PASS    NONCRIT_FAIL  CRIT_FAIL           TOO_LONG       HEAL_FAILED */
    [H] = { { H, 0 }, { D, 0 }, { F, HEAL }, { H, 0 }, { H, 0 } },
    [D] = { { H, 0 }, { D, 0 }, { F, HEAL }, { D, 0 }, { D, 0 } },
    [F] = { { H, 0 }, { D, 0 }, { F, HEAL }, { C, NOTIFY }, { C, NOTIFY } },
    [C] = { { H, 0 }, { D, 0 }, { C, HEAL | NOTIFY }, { C, 0 }, { C, 0 } },
};
#undef H
#undef D
#undef F
#undef C
#undef HEAL
#undef NOTIFY

struct talon_wd_transition talon_wd_step(enum talon_wd_state s, enum talon_wd_event e)
{
    return table[s][e];
}

static const char *const state_names[TALON_WD_NSTATES] = { "Healthy", "Degraded", "Failed",
                                                           "Critical" };

const char *talon_wd_state_name(enum talon_wd_state s)
{
    return (unsigned)s < TALON_WD_NSTATES ? state_names[s] : "?";
}

int talon_wd_state_parse(const char *name)
{
    for (int i = 0; name && i < TALON_WD_NSTATES; i++)
        if (strcmp(name, state_names[i]) == 0)
            return i;
    return -1;
}

bool talon_cooldown_over(int64_t last_ms, int cooldown_secs, int64_t now_ms)
{
    if (last_ms <= 0 || last_ms > now_ms)
        return true;
    return now_ms - last_ms >= (int64_t)cooldown_secs * 1000;
}

/* ---- the watchdog ------------------------------------------------------ */

struct probe_status {
    int consecutive; /* consecutive failed checks */
    bool failed;     /* consecutive >= failure_threshold */
    struct talon_probe_result last;
};

struct talon_watchdog {
    struct talon_watchdog_config cfg; /* strings borrowed from the caller */
    struct sb_bg bg;                  /* lock guards reload_wanted and snap */
    int reload_wanted;
    json_t *snap;
    /* Thread-owned from here on. */
    struct talon_probe_set probes;
    struct probe_status *status; /* probes.n entries */
    struct stat file_sig;        /* the probe file version last tried */
    bool file_seen;
    enum talon_wd_state state;
    int64_t since_ms;
    int64_t consecutive_failures; /* rounds in a row with a failed check */
    int64_t last_heal_ms, last_notify_ms, last_notify_try_ms;
    bool heal_skip_logged, notify_skip_logged;
    int64_t updated_ms;
};

static json_t *failed_names(const struct talon_watchdog *w)
{
    json_t *a = json_array();
    for (size_t i = 0; i < w->probes.n; i++)
        if (w->status[i].failed)
            json_array_append_new(a, json_string(w->probes.v[i].name));
    return a;
}

/* ---- persistence --------------------------------------------------------
 * <state_dir>/state.json: {version:1, state, since (ISO), since_unix_ms,
 *   consecutive_failures, last_heal_unix_ms, last_notify_unix_ms,
 *   last_notify_attempt_unix_ms, failed_probes, updated_at_unix}; times are
 *   Unix ms, 0 = never. Read back at start.
 * <state_dir>/last-probe.json: {at (ISO), at_unix_ms, state, probes:[{name,
 *   type, critical, ok, failed, consecutive_failures, failure_threshold, ms,
 *   error}]}. Written for operators; never read back. */

static void write_atomic(const char *dir, const char *name, const json_t *doc)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len = 0;
    char *text = sb_json_dumps(doc, &len);
    char *line = text ? realloc(text, len + 2) : NULL;
    struct sb_err err = { 0 };
    if (!line) {
        free(text);
        sb_err_set(&err, SB_ENOMEM, "out of memory");
    } else {
        memcpy(line + len, "\n", 2);
        sb_write_file_atomic(path, line, len + 1, 0644, &err);
    }
    if (err.code)
        SB_LOGK(SB_ERROR, "state_write_failed", ((struct sb_lf[]){ LF_S("path", path) }),
                "cannot write %s: %s", path, err.msg);
    free(line);
}

static void persist(struct talon_watchdog *w)
{
    if (!w->cfg.state_dir || !*w->cfg.state_dir)
        return;
    char since[40], at[40];
    sb_time_format_iso(w->since_ms, since, sizeof since);
    sb_time_format_iso(w->updated_ms, at, sizeof at);
    json_t *st = json_pack(
        "{s:i, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:I}", "version", 1, "state",
        talon_wd_state_name(w->state), "since", since, "since_unix_ms", (json_int_t)w->since_ms,
        "consecutive_failures", (json_int_t)w->consecutive_failures, "last_heal_unix_ms",
        (json_int_t)w->last_heal_ms, "last_notify_unix_ms", (json_int_t)w->last_notify_ms,
        "last_notify_attempt_unix_ms", (json_int_t)w->last_notify_try_ms, "failed_probes",
        failed_names(w), "updated_at_unix", (json_int_t)(w->updated_ms / 1000));
    if (st)
        write_atomic(w->cfg.state_dir, "state.json", st);
    json_decref(st);

    json_t *list = json_array();
    for (size_t i = 0; i < w->probes.n; i++) {
        const struct talon_probe *p = &w->probes.v[i];
        const struct probe_status *s = &w->status[i];
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:b, s:b, s:b, s:i, s:i, s:I, s:o}", "name", p->name,
                            "type", talon_probe_type_name(p->type), "critical", p->critical, "ok",
                            s->last.ok, "failed", s->failed, "consecutive_failures", s->consecutive,
                            "failure_threshold", p->failure_threshold, "ms", (json_int_t)s->last.ms,
                            "error", s->last.ok ? json_null() : json_string(s->last.error)));
    }
    json_t *lp =
        json_pack("{s:s, s:I, s:s, s:o}", "at", at, "at_unix_ms", (json_int_t)w->updated_ms,
                  "state", talon_wd_state_name(w->state), "probes", list);
    if (lp)
        write_atomic(w->cfg.state_dir, "last-probe.json", lp);
    json_decref(lp);
}

/* Reads state.json back. A missing file is a first start; a damaged one is
 * logged and ignored (the watchdog must come up regardless). */
static void restore(struct talon_watchdog *w)
{
    w->state = TALON_HEALTHY;
    w->since_ms = sb_now_ms();
    if (!w->cfg.state_dir || !*w->cfg.state_dir)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/state.json", w->cfg.state_dir);
    if (access(path, F_OK) != 0)
        return;
    json_error_t jerr;
    json_t *st = json_load_file(path, 0, &jerr);
    int state = st ? talon_wd_state_parse(sb_json_str(st, "state")) : -1;
    int64_t since = 0, cf = 0, heal = 0, notify = 0, ntry = 0;
    if (state < 0 || !sb_json_get_int(st, "since_unix_ms", &since) ||
        !sb_json_get_int(st, "consecutive_failures", &cf)) {
        SB_LOGK(SB_WARN, "state_unreadable", ((struct sb_lf[]){ LF_S("path", path) }),
                "ignoring %s (%s); starting Healthy", path, st ? "bad fields" : jerr.text);
        json_decref(st);
        return;
    }
    sb_json_get_int(st, "last_heal_unix_ms", &heal);
    sb_json_get_int(st, "last_notify_unix_ms", &notify);
    sb_json_get_int(st, "last_notify_attempt_unix_ms", &ntry);
    json_decref(st);
    w->state = (enum talon_wd_state)state;
    w->since_ms = since;
    w->consecutive_failures = cf;
    w->last_heal_ms = heal;
    w->last_notify_ms = notify;
    w->last_notify_try_ms = ntry;
    SB_LOGK(
        SB_INFO, "state_restored",
        ((struct sb_lf[]){ LF_S("state", talon_wd_state_name(w->state)), LF_I("since", since),
                           LF_I("last_heal_unix_ms", heal), LF_I("last_notify_unix_ms", notify) }),
        "watchdog state restored from %s: %s", path, talon_wd_state_name(w->state));
}

static json_t *build_snapshot(const struct talon_watchdog *w)
{
    json_t *failed = failed_names(w);
    json_t *snap = json_pack(
        "{s:s, s:I, s:I, s:I, s:o, s:I}", "state", talon_wd_state_name(w->state),
        "consecutive_failures", (json_int_t)w->consecutive_failures, "probe_count",
        (json_int_t)w->probes.n, "failed_probe_count", (json_int_t)json_array_size(failed),
        "failed_probes", failed, "updated_at_unix", (json_int_t)(w->updated_ms / 1000));
    return snap;
}

/* Replaces the snapshot the health server reads. */
static void publish(struct talon_watchdog *w)
{
    json_t *snap = build_snapshot(w);
    if (!snap)
        return;
    pthread_mutex_lock(&w->bg.lock);
    json_decref(w->snap);
    w->snap = snap;
    pthread_mutex_unlock(&w->bg.lock);
}

/* ---- escalation -------------------------------------------------------- */

/* "a,b" of the failed probes' names into out. */
static void failed_csv(const struct talon_watchdog *w, char *out, size_t outsz)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < w->probes.n && len < outsz; i++)
        if (w->status[i].failed)
            len += (size_t)snprintf(out + len, outsz - len, "%s%s", len ? "," : "",
                                    w->probes.v[i].name);
}

/* Runs a configured command line (heal or notify) with env; returns whether
 * it exited 0. what names it in logs. */
static bool run_escalation(const char *what, const char *line, char *const envp[],
                           const char *stdin_data, const char *redact, const char *event)
{
    char **argv = NULL;
    struct sb_err err = { 0 };
    struct talon_cmd_result r = { 0 };
    int rc = talon_split_words(line, &argv, &err);
    if (rc == 0)
        rc = talon_run_command(argv, envp, stdin_data, COMMAND_TIMEOUT_MS, &r, &err);
    talon_words_free(argv);
    if (rc != 0) {
        SB_LOGK(
            SB_ERROR, event,
            ((struct sb_lf[]){ LF_B("ok", false), LF_S("command", line), LF_S("error", err.msg) }),
            "%s command could not run: %s", what, err.msg);
        return false;
    }
    char *out = (char *)sb_buf_cstr(&r.output);
    /* A command that prints its own token must not put it in our log. */
    size_t rl = redact ? strlen(redact) : 0;
    for (char *from = out, *hit;
         rl && (hit = memmem(from, r.output.len - (size_t)(from - out), redact, rl));
         from = hit + rl)
        memset(hit, '*', rl);
    size_t ol = strlen(out);
    const char *tail = ol > 512 ? out + ol - 512 : out;
    bool ok = !r.timed_out && r.signal == 0 && r.exit_code == 0;
    SB_LOGK(ok ? SB_INFO : SB_ERROR, event,
            ((struct sb_lf[]){ LF_B("ok", ok), LF_S("command", line),
                               LF_I("exit_code", r.exit_code), LF_I("signal", r.signal),
                               LF_B("timed_out", r.timed_out), LF_S("output", tail) }),
            "%s command %s (exit %d%s)", what, ok ? "succeeded" : "failed", r.exit_code,
            r.timed_out ? ", timed out" : "");
    talon_cmd_result_free(&r);
    return ok;
}

/* Runs the heal command unless it is in its cooldown. Returns false when it
 * ran and failed (the HEAL_FAILED event), true otherwise. */
static bool maybe_heal(struct talon_watchdog *w, int64_t now)
{
    const char *cmd = w->cfg.heal_command;
    if (!cmd || !*cmd)
        return true;
    if (!talon_cooldown_over(w->last_heal_ms, w->cfg.heal_cooldown_secs, now)) {
        if (!w->heal_skip_logged)
            SB_LOGK(SB_INFO, "heal_skipped_cooldown",
                    ((struct sb_lf[]){ LF_I("last_heal_unix_ms", w->last_heal_ms),
                                       LF_I("cooldown_secs", w->cfg.heal_cooldown_secs) }),
                    "heal command skipped: it ran less than %d s ago", w->cfg.heal_cooldown_secs);
        w->heal_skip_logged = true;
        return true;
    }
    char path[4200], state[64], failed[2048], probes[2100];
    snprintf(path, sizeof path, "PATH=%s", w->cfg.path_env);
    snprintf(state, sizeof state, "TALON_STATE=%s", talon_wd_state_name(w->state));
    failed_csv(w, failed, sizeof failed);
    snprintf(probes, sizeof probes, "TALON_FAILED_PROBES=%s", failed);
    char *envp[] = { path, state, probes, NULL };
    w->last_heal_ms = now;
    w->heal_skip_logged = false;
    return run_escalation("heal", cmd, envp, NULL, NULL, "heal_ran");
}

static void maybe_notify(struct talon_watchdog *w, int64_t now)
{
    const char *cmd = w->cfg.notify_command;
    if (!cmd || !*cmd)
        return;
    if (!talon_cooldown_over(w->last_notify_ms, w->cfg.notify_cooldown_secs, now)) {
        if (!w->notify_skip_logged)
            SB_LOGK(SB_INFO, "notify_skipped_cooldown",
                    ((struct sb_lf[]){ LF_I("last_notify_unix_ms", w->last_notify_ms),
                                       LF_I("cooldown_secs", w->cfg.notify_cooldown_secs) }),
                    "notify command skipped: a notification went out less than %d s ago",
                    w->cfg.notify_cooldown_secs);
        w->notify_skip_logged = true;
        return;
    }
    /* A failed attempt is retried, but not on every round. */
    int retry = w->cfg.notify_cooldown_secs < NOTIFY_RETRY_SECS ? w->cfg.notify_cooldown_secs
                                                                : NOTIFY_RETRY_SECS;
    if (w->last_notify_try_ms > w->last_notify_ms &&
        !talon_cooldown_over(w->last_notify_try_ms, retry, now))
        return;
    w->last_notify_try_ms = now;

    char host[256] = "unknown", since[40];
    gethostname(host, sizeof host - 1);
    sb_time_format_iso(w->since_ms, since, sizeof since);
    json_t *msg = json_pack(
        "{s:s, s:o, s:s, s:I, s:I, s:s}", "state", talon_wd_state_name(w->state), "failed_probes",
        failed_names(w), "since", since, "since_unix_ms", (json_int_t)w->since_ms,
        "consecutive_failures", (json_int_t)w->consecutive_failures, "host", host);
    char *text = msg ? sb_json_dumps(msg, NULL) : NULL;
    json_decref(msg);

    /* The token: leased now, held in sodium memory, handed over only in the
     * command's environment, wiped afterwards. */
    struct secrets_lease lease = { 0 };
    char *token_env = NULL;
    if (w->cfg.notify_secret && *w->cfg.notify_secret) {
        char sock[512];
        struct sb_err err = { 0 };
        int rc = secrets_socket_path(w->cfg.secrets_socket, sock, sizeof sock, &err);
        if (rc == 0)
            rc = secrets_lease(sock, w->cfg.notify_secret, NOTIFY_LEASE_TTL_S, "talon",
                               w->cfg.secrets_timeout_ms, &lease, &err);
        if (rc != 0) {
            SB_LOGK(SB_ERROR, "notify_lease_failed",
                    ((struct sb_lf[]){ LF_S("secret", w->cfg.notify_secret),
                                       LF_S("code", sb_errname(rc)), LF_S("error", err.msg) }),
                    "cannot lease secret %s for the notify command: %s; notifying without it",
                    w->cfg.notify_secret, err.msg);
        } else {
            size_t n = strlen(w->cfg.notify_env) + 1 + lease.value_len + 1;
            if (sodium_init() >= 0 && (token_env = sodium_malloc(n)) != NULL) {
                snprintf(token_env, n, "%s=", w->cfg.notify_env);
                memcpy(token_env + strlen(w->cfg.notify_env) + 1, lease.value, lease.value_len);
                token_env[n - 1] = '\0';
            }
        }
    }
    char path[4200], state[64];
    snprintf(path, sizeof path, "PATH=%s", w->cfg.path_env);
    snprintf(state, sizeof state, "TALON_STATE=%s", talon_wd_state_name(w->state));
    char *envp[] = { path, state, token_env, NULL };
    bool ok = run_escalation("notify", cmd, envp, text ? text : "{}",
                             token_env ? lease.value : NULL, "notify_ran");
    if (ok) {
        w->last_notify_ms = now;
        w->notify_skip_logged = false;
        SB_LOGK(SB_WARN, "notify_sent",
                ((struct sb_lf[]){ LF_S("state", talon_wd_state_name(w->state)),
                                   LF_B("with_token", token_env != NULL) }),
                "notification sent (state %s)", talon_wd_state_name(w->state));
    } else {
        SB_LOGK(SB_ERROR, "notify_failed",
                ((struct sb_lf[]){ LF_S("state", talon_wd_state_name(w->state)) }),
                "the notify command failed; retrying in %d s at the earliest", retry);
    }
    if (token_env)
        sodium_free(token_env);
    secrets_lease_clear(&lease);
    free(text);
}

/* Feeds one event through the table, logs a state change, runs the actions. */
static void apply(struct talon_watchdog *w, enum talon_wd_event ev, int64_t now)
{
    struct talon_wd_transition t = talon_wd_step(w->state, ev);
    if (t.next != w->state) {
        json_t *failed = failed_names(w);
        char *names = sb_json_dumps(failed, NULL);
        json_decref(failed);
        SB_LOGK(t.next == TALON_HEALTHY ? SB_INFO : SB_WARN, "state_changed",
                ((struct sb_lf[]){ LF_S("from", talon_wd_state_name(w->state)),
                                   LF_S("to", talon_wd_state_name(t.next)),
                                   LF_J("failed_probes", names),
                                   LF_I("consecutive_failures", w->consecutive_failures) }),
                "watchdog state %s -> %s", talon_wd_state_name(w->state),
                talon_wd_state_name(t.next));
        free(names);
        w->state = t.next;
        w->since_ms = now;
        w->notify_skip_logged = false;
        w->heal_skip_logged = false;
    }
    if ((t.actions & TALON_ACT_HEAL) && !maybe_heal(w, now))
        apply(w, TALON_EV_HEAL_FAILED, now);
    if (t.actions & TALON_ACT_NOTIFY)
        maybe_notify(w, now);
}

/* ---- probes and the thread --------------------------------------------- */

static bool stopping(struct talon_watchdog *w)
{
    pthread_mutex_lock(&w->bg.lock);
    int stop = w->bg.stop;
    pthread_mutex_unlock(&w->bg.lock);
    return stop != 0;
}

static void run_round(struct talon_watchdog *w)
{
    bool any_check_failed = false, crit = false, noncrit = false;
    for (size_t i = 0; i < w->probes.n; i++) {
        if (stopping(w))
            return;
        const struct talon_probe *p = &w->probes.v[i];
        struct probe_status *s = &w->status[i];
        talon_probe_run(p, w->cfg.path_env, &s->last);
        bool was_failed = s->failed;
        s->consecutive = s->last.ok ? 0 : s->consecutive + 1;
        s->failed = s->consecutive >= p->failure_threshold;
        any_check_failed |= !s->last.ok;
        if (s->failed && !was_failed)
            SB_LOGK(p->critical ? SB_ERROR : SB_WARN, "probe_failed",
                    ((struct sb_lf[]){
                        LF_S("probe", p->name), LF_S("type", talon_probe_type_name(p->type)),
                        LF_B("critical", p->critical), LF_I("consecutive", s->consecutive),
                        LF_S("error", s->last.error) }),
                    "probe %s failed %d time(s) in a row: %s", p->name, s->consecutive,
                    s->last.error);
        else if (!s->failed && was_failed)
            SB_LOGK(SB_INFO, "probe_recovered", ((struct sb_lf[]){ LF_S("probe", p->name) }),
                    "probe %s passes again", p->name);
        else if (!s->last.ok)
            SB_LOGK(SB_DEBUG, "probe_check_failed",
                    ((struct sb_lf[]){ LF_S("probe", p->name), LF_S("error", s->last.error) }),
                    "probe %s check failed (%d of %d)", p->name, s->consecutive,
                    p->failure_threshold);
        if (s->failed)
            *(p->critical ? &crit : &noncrit) = true;
    }
    int64_t now = sb_now_ms();
    w->updated_ms = now;
    w->consecutive_failures = any_check_failed ? w->consecutive_failures + 1 : 0;
    apply(w, crit ? TALON_EV_CRIT_FAIL : noncrit ? TALON_EV_NONCRIT_FAIL : TALON_EV_ALL_PASS, now);
    if (w->state == TALON_FAILED && now - w->since_ms >= (int64_t)w->cfg.critical_after_secs * 1000)
        apply(w, TALON_EV_FAILED_TOO_LONG, now);
    persist(w);
    publish(w);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Whether the probe file differs from the version last tried (a missing
 * file counts once, as a change). */
static bool file_changed(struct talon_watchdog *w)
{
    if (!w->cfg.probe_file || !*w->cfg.probe_file)
        return false;
    struct stat st;
    if (stat(w->cfg.probe_file, &st) != 0)
        memset(&st, 0, sizeof st);
    return !w->file_seen || !same_file(&st, &w->file_sig);
}

/* (Re)loads the probe file. On error the current probes stay; at start
 * (initial) the error is returned instead. Counters carry over for probes
 * that keep their name and type. */
static int load_probes(struct talon_watchdog *w, bool initial, struct sb_err *err)
{
    const char *file = w->cfg.probe_file;
    if (!file || !*file)
        return 0;
    struct stat st;
    if (stat(file, &st) != 0)
        memset(&st, 0, sizeof st);
    w->file_sig = st;
    w->file_seen = true;
    struct talon_probe_set set;
    struct sb_err lerr = { 0 };
    int rc = talon_probes_load(file, w->cfg.http_timeout_secs, &set, &lerr);
    if (rc != 0) {
        if (initial) {
            if (err)
                *err = lerr;
            return rc;
        }
        SB_LOGK(SB_ERROR, "probes_reload_failed",
                ((struct sb_lf[]){ LF_S("file", file), LF_S("error", lerr.msg) }),
                "probe file not reloaded, keeping the %zu current probes: %s", w->probes.n,
                lerr.msg);
        return rc;
    }
    struct probe_status *status = calloc(set.n ? set.n : 1, sizeof *status);
    if (!status) {
        talon_probes_free(&set);
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < set.n; i++)
        for (size_t j = 0; j < w->probes.n; j++)
            if (strcmp(set.v[i].name, w->probes.v[j].name) == 0 &&
                set.v[i].type == w->probes.v[j].type) {
                status[i] = w->status[j];
                status[i].failed = status[i].consecutive >= set.v[i].failure_threshold;
            }
    talon_probes_free(&w->probes);
    free(w->status);
    w->probes = set;
    w->status = status;
    SB_LOGK(SB_INFO, initial ? "probes_loaded" : "probes_reloaded",
            ((struct sb_lf[]){ LF_S("file", file), LF_I("count", set.n) }), "%zu probe(s) from %s",
            set.n, file);
    return 0;
}

static void *watchdog_main(void *arg)
{
    struct talon_watchdog *w = arg;
    int64_t next_round = 0, next_check = sb_mono_ms() + FILE_CHECK_MS;
    pthread_mutex_lock(&w->bg.lock);
    while (!w->bg.stop) {
        int64_t now = sb_mono_ms();
        bool reload = w->reload_wanted;
        w->reload_wanted = 0;
        if (!reload && now < next_round && now < next_check) {
            sb_bg_wait_ms(&w->bg, (next_round < next_check ? next_round : next_check) - now);
            continue;
        }
        pthread_mutex_unlock(&w->bg.lock);
        if (!reload && now >= next_check) {
            reload = file_changed(w);
            next_check = now + FILE_CHECK_MS;
        }
        if (reload && load_probes(w, false, NULL) == 0)
            next_round = now; /* new probes: look at once */
        if (now >= next_round) {
            run_round(w);
            next_round = sb_mono_ms() + (int64_t)w->cfg.interval_secs * 1000;
        }
        pthread_mutex_lock(&w->bg.lock);
    }
    pthread_mutex_unlock(&w->bg.lock);
    return NULL;
}

int talon_watchdog_start(const struct talon_watchdog_config *cfg, struct talon_watchdog **out,
                         struct sb_err *err)
{
    *out = NULL;
    struct talon_watchdog *w = calloc(1, sizeof *w);
    if (!w)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    w->cfg = *cfg;
    if (w->cfg.interval_secs <= 0)
        w->cfg.interval_secs = 30;
    if (w->cfg.heal_cooldown_secs < 0)
        w->cfg.heal_cooldown_secs = 600;
    if (w->cfg.notify_cooldown_secs < 0)
        w->cfg.notify_cooldown_secs = 14400;
    if (w->cfg.critical_after_secs < 0)
        w->cfg.critical_after_secs = 900;
    if (!w->cfg.notify_env || !*w->cfg.notify_env)
        w->cfg.notify_env = "TALON_NOTIFY_TOKEN";
    if (!w->cfg.path_env || !*w->cfg.path_env)
        w->cfg.path_env = DEFAULT_PATH;
    if (w->cfg.state_dir && *w->cfg.state_dir) {
        int rc = sb_mkdir_p(w->cfg.state_dir, 0700, err);
        if (rc) {
            free(w);
            return rc;
        }
    }
    int rc = load_probes(w, true, err);
    if (rc) {
        free(w);
        return rc;
    }
    restore(w);
    w->updated_ms = sb_now_ms();
    w->snap = build_snapshot(w); /* no thread yet: no lock needed */
    rc = sb_bg_start(&w->bg, watchdog_main, w, "watchdog", err);
    if (rc) {
        json_decref(w->snap);
        talon_probes_free(&w->probes);
        free(w->status);
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void talon_watchdog_reload(struct talon_watchdog *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->bg.lock);
    w->reload_wanted = 1;
    pthread_cond_signal(&w->bg.cond);
    pthread_mutex_unlock(&w->bg.lock);
}

json_t *talon_watchdog_snapshot(struct talon_watchdog *w)
{
    if (!w)
        return NULL; /* no watchdog (--worker-only) */
    pthread_mutex_lock(&w->bg.lock);
    json_t *copy = json_deep_copy(w->snap);
    pthread_mutex_unlock(&w->bg.lock);
    return copy;
}

void talon_watchdog_stop(struct talon_watchdog *w)
{
    if (!w)
        return;
    sb_bg_stop(&w->bg);
    json_decref(w->snap);
    talon_probes_free(&w->probes);
    free(w->status);
    free(w);
}
