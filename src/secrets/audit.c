/* audit.c - the append-only audit trail (see audit.h).
 *
 * Line format: one canonical JSON object (keys sorted) per line:
 *   {"action":"lease","client_id":"talon","lease_id":"01J...","peer_pid":4242,
 *    "peer_uid":1000,"secret_name":"github_token","success":true,
 *    "timestamp":"2026-11-27T17:00:00.123Z","ttl":3600}
 * action: add | lease | revoke | revoke_all | rm | connect (a refused peer).
 * A connect line also has "suppressed": the refusals of the same uid since
 * its previous connect line that got no line of their own (the daemon writes
 * at most one per uid per second), so 1 + suppressed summed over the connect
 * lines is the number of refused connections.
 * secret_name, client_id and lease_id are null when they do not apply;
 * peer_uid/peer_pid come from SO_PEERCRED; reason is present only when
 * success is false; ttl (lease) and count (revoke_all, rm: leases revoked)
 * only where they apply. No line ever holds a secret value.
 *
 * Durability: each line is written with a single write(2) on an O_APPEND
 * descriptor and fsync'd before the daemon answers the request it records.
 * A crash can at worst leave a torn last line, which readers skip. */
#include "secrets/audit.h"
#include "common/log.h"
#include "common/clock.h"
#include "common/json.h"
#include "secrets/proto.h"
#include "secrets/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAIL_READ_MAX (8u << 20)

int secrets_audit_open(struct secrets_audit *a, const char *dir, struct sb_err *err)
{
    a->fd = -1;
    snprintf(a->path, sizeof a->path, "%s/%s", dir, SECRETS_AUDIT_FILE);
    int fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return sb_err_errno(err, SB_EIO, "cannot open audit file %s", a->path);
    int rc = secrets_check_private(fd, a->path, "audit file", err);
    if (rc) {
        close(fd);
        return rc;
    }
    a->fd = fd;
    return 0;
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

int secrets_audit_append(struct secrets_audit *a, const struct secrets_audit_event *e,
                         int64_t now_ms, struct sb_err *err)
{
    char ts[40];
    sb_time_format_iso(now_ms, ts, sizeof ts);
    json_t *o = json_object();
    if (!o)
        return sb_err_set(err, SB_ENOMEM, "no memory for the audit line");
    json_object_set_new(o, "timestamp", json_string(ts));
    json_object_set_new(o, "action", json_string(e->action));
    json_object_set_new(o, "secret_name", str_or_null(e->secret_name));
    json_object_set_new(o, "client_id", str_or_null(e->client_id));
    json_object_set_new(o, "lease_id", str_or_null(e->lease_id));
    json_object_set_new(o, "success", json_boolean(e->success));
    json_object_set_new(o, "peer_uid", e->peer_uid >= 0 ? json_integer(e->peer_uid) : json_null());
    json_object_set_new(o, "peer_pid", e->peer_pid >= 0 ? json_integer(e->peer_pid) : json_null());
    if (!e->success)
        json_object_set_new(o, "reason", json_string(e->reason ? e->reason : "unknown"));
    if (e->ttl >= 0)
        json_object_set_new(o, "ttl", json_integer(e->ttl));
    if (e->count >= 0)
        json_object_set_new(o, "count", json_integer(e->count));
    if (strcmp(e->action, "connect") == 0)
        json_object_set_new(o, "suppressed", json_integer(e->suppressed));
    size_t len = 0;
    char *line = sb_json_dumps(o, &len);
    json_decref(o);
    if (!line)
        return sb_err_set(err, SB_ENOMEM, "cannot encode the audit line");
    char *nl = realloc(line, len + 1);
    if (!nl) {
        free(line);
        return sb_err_set(err, SB_ENOMEM, "no memory for the audit line");
    }
    line = nl;
    line[len++] = '\n';
    int rc = 0;
    ssize_t w;
    off_t before = lseek(a->fd, 0, SEEK_END); /* the daemon is the only writer */
    do
        w = write(a->fd, line, len);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)len) {
        if (w >= 0)
            errno = ENOSPC; /* a short write: the disk filled up */
        rc = sb_err_errno(err, SB_EIO, "cannot append to audit file %s", a->path);
        /* no torn line: the next entry must start on a line of its own */
        if (w > 0 && before >= 0 && ftruncate(a->fd, before) != 0)
            SB_LOG(SB_ERROR, "audit_truncate_failed", "cannot cut a torn line off %s", a->path);
    } else if (fsync(a->fd) != 0)
        rc = sb_err_errno(err, SB_EIO, "cannot fsync audit file %s", a->path);
    free(line);
    return rc;
}

int secrets_audit_tail(const struct secrets_audit *a, size_t n, json_t **entries,
                       struct sb_err *err)
{
    *entries = NULL;
    int fd = open(a->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return sb_err_errno(err, SB_EIO, "cannot open audit file %s", a->path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return sb_err_errno(err, SB_EIO, "cannot stat audit file %s", a->path);
    }
    off_t start = st.st_size > (off_t)TAIL_READ_MAX ? st.st_size - (off_t)TAIL_READ_MAX : 0;
    size_t want = (size_t)(st.st_size - start);
    char *buf = malloc(want + 1);
    if (!buf) {
        close(fd);
        return sb_err_set(err, SB_ENOMEM, "no memory to read the audit file");
    }
    size_t got = 0;
    while (got < want) {
        ssize_t r = pread(fd, buf + got, want - got, start + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    /* line starts, newest last; a partial first line (we started mid-file)
     * is dropped */
    char *p = buf;
    if (start > 0) {
        char *first = memchr(buf, '\n', got);
        p = first ? first + 1 : buf + got;
    }
    json_t *all = json_array();
    for (char *end = buf + got; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_t *v = len ? sb_json_parse_ints(p, len, NULL) : NULL;
        if (v && json_is_object(v))
            json_array_append_new(all, v);
        else
            json_decref(v);
        p += len + 1;
    }
    free(buf);
    size_t total = json_array_size(all);
    if (total > n) {
        json_t *last = json_array();
        for (size_t i = total - n; i < total; i++)
            json_array_append(last, json_array_get(all, i));
        json_decref(all);
        all = last;
    }
    *entries = all;
    return 0;
}

void secrets_audit_close(struct secrets_audit *a)
{
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
}
