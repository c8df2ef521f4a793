/* state.c - talon's files in [health] state_dir (see talon.h): the lock that
 * keeps two supervisors apart, and supervisor.json, the last published view
 * of the supervisor (read by `talon --status`/`restart` when the health port
 * is 0, and at start to recognise an orphaned worker of an earlier talon).
 * Format of supervisor.json: one JSON object, fields as in talon.h. */
#include "talon/talon.h"
#include "common/fsutil.h"
#include "common/json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_FILE "supervisor.json"
#define LOCK_FILE "talon.lock"

int talon_lock_take(const char *state_dir, pid_t *holder, struct sb_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", state_dir, LOCK_FILE);
    *holder = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return sb_err_errno(err, SB_EIO, "cannot open lock file %s", path), -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char buf[32] = "";
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        if (n > 0)
            buf[n] = '\0';
        *holder = (pid_t)atoi(buf);
        close(fd);
        errno = e;
        if (e == EWOULDBLOCK)
            sb_err_set(err, SB_EBUSY,
                       "another talon (pid %d) supervises this worker (lock %s held)", (int)*holder,
                       path);
        else
            sb_err_errno(err, SB_EIO, "cannot lock %s", path);
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        sb_err_errno(err, SB_EIO, "cannot write lock file %s", path);
        close(fd);
        return -1;
    }
    return fd;
}

int talon_state_write(const char *state_dir, json_t *state)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", state_dir, STATE_FILE);
    char *text = json_dumps(state, JSON_COMPACT);
    size_t len = text ? strlen(text) : 0;
    char *line = text ? realloc(text, len + 2) : NULL;
    if (!line) {
        free(text);
        return SB_ENOMEM;
    }
    memcpy(line + len, "\n", 2);
    int rc = sb_write_file_atomic(path, line, len + 1, 0644, NULL);
    free(line);
    return rc;
}

json_t *talon_state_read(const char *state_dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", state_dir, STATE_FILE);
    return json_load_file(path, 0, NULL);
}

int talon_health_url(const struct talon_settings *s, char *out, size_t outsz, struct sb_err *err)
{
    char host[256];
    int port;
    if (talon_parse_bind(s->health_bind, host, sizeof host, &port))
        return sb_err_set(err, SB_EINVAL, "[health] bind '%s' is not HOST:PORT", s->health_bind);
    if (port == 0) {
        json_t *st = talon_state_read(s->health_state_dir);
        const char *url = sb_json_str(st, "health_url");
        int rc = url ? 0
                     : sb_err_set(err, SB_ENOTFOUND,
                                  "[health] bind has port 0 and %s/%s names no health_url: is "
                                  "talon running?",
                                  s->health_state_dir, STATE_FILE);
        if (url)
            snprintf(out, outsz, "%s", url);
        json_decref(st);
        return rc;
    }
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0 || host[0] == '\0')
        snprintf(host, sizeof host, "127.0.0.1");
    else if (strcmp(host, "::") == 0)
        snprintf(host, sizeof host, "::1");
    if (strchr(host, ':'))
        snprintf(out, outsz, "http://[%s]:%d", host, port);
    else
        snprintf(out, outsz, "http://%s:%d", host, port);
    return 0;
}

void talon_watchdog_config_from(const struct talon_settings *s, struct talon_watchdog_config *wc)
{
    memset(wc, 0, sizeof *wc);
    wc->probe_file = s->probes_file;
    wc->state_dir = s->health_state_dir;
    wc->interval_secs = (int)s->probes_interval_secs;
    wc->heal_command = s->escalation_heal_command;
    wc->heal_cooldown_secs = (int)s->escalation_heal_cooldown_secs;
    wc->notify_command = s->escalation_notify_command;
    wc->notify_secret = s->escalation_notify_secret;
    wc->notify_env = s->escalation_notify_env;
    wc->notify_cooldown_secs = (int)s->escalation_notify_cooldown_secs;
    wc->critical_after_secs = (int)s->escalation_critical_after_secs;
    wc->secrets_socket = s->secrets_socket;
    wc->secrets_timeout_ms = (int)(s->secrets_timeout_secs * 1000);
    wc->path_env = s->worker_path;
    wc->http_timeout_secs = (int)s->worker_http_timeout_secs;
}
