/* client.c - the one secrets client (see client.h): socket path resolution,
 * one request/one answer over the daemon's Unix socket under a deadline, and
 * the typed calls built on it (lease, add, revoke, any metadata request).
 *
 * Linked into the `secrets` binary and into talon, so it depends only on
 * proto.c and src/common. No global state; every call opens its own
 * connection, so it is safe from any thread. Secret values travel only
 * through guarded memory (struct secrets_gbuf, sodium_malloc): the request
 * line of an add, the answer line of a lease and the leased value itself. */
#include "secrets/client.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/json.h"
#include "secrets/proto.h"

#include <errno.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int secrets_socket_path(const char *flag, char *out, size_t outlen, struct sb_err *err)
{
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
    const char *env = sb_env("SECRETS_SOCKET");
    const char *xdg = sb_env("XDG_RUNTIME_DIR");
    int n;
    if (flag && *flag)
        n = snprintf(out, outlen, "%s", flag);
    else if (env && *env)
        n = snprintf(out, outlen, "%s", env);
    else if (xdg && *xdg)
        n = snprintf(out, outlen, "%s/sysbus/secrets.sock", xdg);
    else
        n = snprintf(out, outlen, "/run/sysbus/secrets.sock");
    if (n < 0 || (size_t)n >= outlen || (size_t)n > max)
        return sb_err_set(err, SB_EINVAL, "socket path is longer than %zu bytes", max);
    return 0;
}

int secrets_exit_code(int code)
{
    switch (code) {
    case SB_EOK: return 0;
    case SB_ENOTFOUND:
    case SB_EEXISTS:
    case SB_EAUTH:
    case SB_ECONFLICT:
    case SB_EBUSY:
    case SB_ECONFIG:
    case SB_ESTORE: return 1;
    case SB_EINVAL:
    case SB_ETOOBIG: return 64;
    case SB_ETIMEOUT: return 65;
    case SB_EIO: return 66;
    case SB_EPROTO: return 67;
    case SB_EUNAVAIL: return 69;
    default: return 70; /* SB_ENOMEM, SB_EINTERNAL, anything unknown */
    }
}

/* ---- transport ----------------------------------------------------------- */

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - sb_mono_ms();
    return left <= 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

/* Waits for events on fd until the deadline: 1 ready, 0 timed out, <0 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int ms = remaining_ms(deadline);
        if (ms == 0)
            return 0;
        struct pollfd p = { fd, events, 0 };
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static int connect_socket(const char *path, int64_t deadline, int *fd_out, struct sb_err *err)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof a.sun_path)
        return sb_err_set(err, SB_EINVAL, "socket path is longer than %zu bytes",
                          sizeof a.sun_path - 1);
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return sb_err_errno(err, SB_EIO, "socket");
    for (;;) {
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
            break;
        int e = errno;
        if (e == EINTR)
            continue;
        if (e == EAGAIN) { /* the daemon's accept backlog is full: it is busy */
            if (remaining_ms(deadline) == 0) {
                close(fd);
                return sb_err_set(err, SB_ETIMEOUT, "timed out connecting to %s (daemon busy)",
                                  path);
            }
            sb_sleep_ms(10);
            continue;
        }
        close(fd);
        errno = e;
        if (e == ENOENT || e == ENOTDIR)
            return sb_err_set(err, SB_EUNAVAIL, "daemon not running (no socket at %s)", path);
        if (e == ECONNREFUSED)
            return sb_err_set(err, SB_EUNAVAIL, "daemon not running (connection refused at %s)",
                              path);
        if (e == EACCES || e == EPERM)
            return sb_err_set(err, SB_EAUTH,
                              "permission denied connecting to %s (is your user in the "
                              "socket's group?)",
                              path);
        return sb_err_errno(err, SB_EUNAVAIL, "cannot connect to %s", path);
    }
    *fd_out = fd;
    return 0;
}

/* Sends all of p. A peer that already closed (EPIPE) is not an error here:
 * it may have answered (a refused peer gets its answer at once), so the
 * caller goes on to read. */
static int send_all(int fd, const char *p, size_t n, int64_t deadline, struct sb_err *err)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
            return 0;
        if (w < 0 && errno == EAGAIN) {
            int r = wait_fd(fd, POLLOUT, deadline);
            if (r == 0)
                return sb_err_set(err, SB_ETIMEOUT, "timed out sending the request");
            if (r < 0)
                return sb_err_errno(err, SB_EIO, "poll");
            continue;
        }
        return sb_err_errno(err, SB_EIO, "sending the request");
    }
    return 0;
}

static int read_line(int fd, struct secrets_gbuf *resp, int64_t deadline, struct sb_err *err)
{
    size_t scanned = 0;
    for (;;) {
        char *nl = resp->data ? memchr(resp->data + scanned, '\n', resp->len - scanned) : NULL;
        if (nl) {
            size_t linelen = (size_t)(nl - resp->data);
            /* drop the newline (and a "\r" before it) and anything after */
            size_t keep = linelen && resp->data[linelen - 1] == '\r' ? linelen - 1 : linelen;
            sodium_memzero(resp->data + keep, resp->len - keep);
            resp->len = keep;
            return 0;
        }
        scanned = resp->len;
        size_t room = SECRETS_RESPONSE_MAX - resp->len;
        if (room == 0)
            return sb_err_set(err, SB_EPROTO, "answer longer than %u bytes", SECRETS_RESPONSE_MAX);
        if (room > 65536)
            room = 65536;
        int rc = secrets_gbuf_reserve(resp, room);
        if (rc)
            return sb_err_set(err, rc, "no memory for the answer");
        int r = wait_fd(fd, POLLIN, deadline);
        if (r == 0)
            return sb_err_set(err, SB_ETIMEOUT, "no answer from the daemon within the timeout");
        if (r < 0)
            return sb_err_errno(err, SB_EIO, "poll");
        ssize_t got = read(fd, resp->data + resp->len, room);
        if (got > 0) {
            resp->len += (size_t)got;
            resp->data[resp->len] = '\0';
            continue;
        }
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got < 0 && errno != ECONNRESET)
            return sb_err_errno(err, SB_EIO, "reading the answer");
        return sb_err_set(err, SB_EPROTO, "the daemon closed the connection without answering");
    }
}

int secrets_exchange(const char *socket_path, const struct secrets_request *req, int timeout_ms,
                     struct secrets_gbuf *resp, struct sb_err *err)
{
    if (sodium_init() < 0)
        return sb_err_set(err, SB_EINTERNAL, "libsodium failed to initialize");
    if (timeout_ms <= 0)
        timeout_ms = SECRETS_DEFAULT_TIMEOUT_MS;
    int64_t deadline = sb_mono_ms() + timeout_ms;
    struct secrets_gbuf line = SECRETS_GBUF_INIT(SECRETS_REQUEST_MAX);
    int rc = secrets_request_encode(req, &line);
    if (rc) {
        secrets_gbuf_free(&line);
        return sb_err_set(err, rc == SB_ETOOBIG ? SB_ETOOBIG : rc, "cannot encode the request");
    }
    int fd = -1;
    resp->max = SECRETS_RESPONSE_MAX;
    rc = connect_socket(socket_path, deadline, &fd, err);
    if (!rc)
        rc = send_all(fd, line.data, line.len, deadline, err);
    secrets_gbuf_free(&line);
    if (!rc)
        rc = read_line(fd, resp, deadline, err);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ---- answers ------------------------------------------------------------- */

/* An error answer {"ok":false,"error":{code,message}} parsed by jansson (it
 * carries no secret) into err. */
static int answer_error(const json_t *a, struct sb_err *err)
{
    const char *code = sb_json_str(json_object_get(a, "error"), "code");
    const char *msg = sb_json_str(json_object_get(a, "error"), "message");
    if (!code)
        return sb_err_set(err, SB_EPROTO, "the daemon's answer has ok:false but no error code");
    return sb_err_set(err, secrets_wire_decode(code), "%s", msg ? msg : code);
}

int secrets_call(const char *socket_path, const struct secrets_request *req, int timeout_ms,
                 json_t **answer, struct sb_err *err)
{
    *answer = NULL;
    if (req->op == SECRETS_OP_LEASE)
        return sb_err_set(err, SB_EINVAL, "use secrets_lease for a lease");
    struct secrets_gbuf resp = SECRETS_GBUF_INIT(SECRETS_RESPONSE_MAX);
    int rc = secrets_exchange(socket_path, req, timeout_ms, &resp, err);
    if (rc) {
        secrets_gbuf_free(&resp);
        return rc;
    }
    /* an answer is untrusted JSON too (anyone may listen on a socket path):
     * held to the envelope's depth before jansson sees it */
    struct sb_err depth_err;
    if (sb_json_check_depth(resp.data, resp.len, SECRETS_JSON_DEPTH_MAX, &depth_err) != 0) {
        secrets_gbuf_free(&resp);
        return sb_err_set(err, SB_EPROTO, "the daemon's answer is not a protocol message: %s",
                          depth_err.msg);
    }
    json_t *a = sb_json_parse_ints(resp.data, resp.len, NULL);
    secrets_gbuf_free(&resp);
    bool ok;
    if (!a || !json_is_object(a) || !sb_json_get_bool(a, "ok", &ok)) {
        json_decref(a);
        return sb_err_set(err, SB_EPROTO, "the daemon's answer is not a protocol message");
    }
    if (!ok) {
        rc = answer_error(a, err);
        json_decref(a);
        return rc;
    }
    *answer = a;
    return 0;
}

int secrets_add(const char *socket_path, const char *name, const char *value, size_t value_len,
                const char *client_id, int timeout_ms, bool *created, struct sb_err *err)
{
    if (!secrets_name_valid(name))
        return sb_err_set(err, SB_EINVAL,
                          "invalid secret name (allowed: letters, digits, '_', '.', '-'; 1 to %d "
                          "bytes)",
                          SECRETS_NAME_MAX);
    int rc = secrets_value_check(value, value_len, err);
    if (rc)
        return rc;
    struct secrets_request req = { .op = SECRETS_OP_ADD };
    snprintf(req.name, sizeof req.name, "%s", name);
    if (client_id)
        snprintf(req.client_id, sizeof req.client_id, "%s", client_id);
    /* borrowed for encoding only; request encoding copies into guarded memory */
    req.value = (char *)value;
    req.value_len = value_len;
    json_t *a = NULL;
    rc = secrets_call(socket_path, &req, timeout_ms, &a, err);
    if (!rc && created)
        *created = json_is_true(json_object_get(a, "created"));
    json_decref(a);
    return rc;
}

int secrets_revoke(const char *socket_path, const char *lease_id, const char *client_id,
                   int timeout_ms, struct sb_err *err)
{
    struct secrets_request req = { .op = SECRETS_OP_REVOKE };
    if (snprintf(req.lease_id, sizeof req.lease_id, "%s", lease_id) >= (int)sizeof req.lease_id)
        return sb_err_set(err, SB_EINVAL, "invalid lease id");
    if (client_id)
        snprintf(req.client_id, sizeof req.client_id, "%s", client_id);
    json_t *a = NULL;
    int rc = secrets_call(socket_path, &req, timeout_ms, &a, err);
    json_decref(a);
    return rc;
}

/* The lease answer is read with the scanner, so the value goes from the
 * guarded answer line straight into the lease's guarded value. */
struct lease_ctx {
    struct secrets_lease *out;
    int ok; /* -1 absent, 0 false, 1 true */
    bool bad;
    bool have_id, have_value, have_expiry;
    char code[32];
    char message[400];
};

static void copy_text(const char *raw, size_t rawlen, char *out, size_t cap, bool *bad)
{
    if (secrets_json_unescape(raw, rawlen, out, cap, NULL) != 0)
        *bad = true;
}

static int on_lease_field(void *ctx, const char *key, enum secrets_jtype t, const char *raw,
                          size_t rawlen)
{
    struct lease_ctx *c = ctx;
    struct secrets_lease *l = c->out;
    if (strcmp(key, "ok") == 0) {
        c->ok = t == SECRETS_J_TRUE ? 1 : t == SECRETS_J_FALSE ? 0 : (c->bad = true, -1);
        return 0;
    }
    bool str = t == SECRETS_J_STRING;
    if (strcmp(key, "error.code") == 0 && str)
        copy_text(raw, rawlen, c->code, sizeof c->code, &c->bad);
    else if (strcmp(key, "error.message") == 0 && str)
        secrets_json_unescape(raw, rawlen, c->message, sizeof c->message, NULL); /* may cut */
    else if (strcmp(key, "lease_id") == 0 && str)
        copy_text(raw, rawlen, l->lease_id, sizeof l->lease_id, &c->bad), c->have_id = true;
    else if (strcmp(key, "secret_name") == 0 && str)
        copy_text(raw, rawlen, l->secret_name, sizeof l->secret_name, &c->bad);
    else if (strcmp(key, "client_id") == 0 && str)
        copy_text(raw, rawlen, l->client_id, sizeof l->client_id, &c->bad);
    else if (strcmp(key, "ttl") == 0 && t == SECRETS_J_NUMBER) {
        if (!secrets_json_int(raw, rawlen, &l->ttl))
            c->bad = true;
    } else if (strcmp(key, "expires_at") == 0 && str) {
        char iso[40];
        int64_t ms;
        if (secrets_json_unescape(raw, rawlen, iso, sizeof iso, NULL) != 0 ||
            sb_time_parse_iso(iso, &ms) != 0)
            c->bad = true;
        else
            l->expires_at = ms / 1000, c->have_expiry = true;
    } else if (strcmp(key, "value") == 0 && str && !l->value) {
        l->value = sodium_malloc(rawlen + 1);
        if (!l->value)
            return SB_ENOMEM;
        if (secrets_json_unescape(raw, rawlen, l->value, rawlen + 1, &l->value_len) != 0)
            c->bad = true;
        c->have_value = true;
    }
    return 0;
}

int secrets_lease(const char *socket_path, const char *name, int64_t ttl_s, const char *client_id,
                  int timeout_ms, struct secrets_lease *out, struct sb_err *err)
{
    memset(out, 0, sizeof *out);
    if (!secrets_name_valid(name))
        return sb_err_set(err, SB_EINVAL,
                          "invalid secret name (allowed: letters, digits, '_', '.', '-'; 1 to %d "
                          "bytes)",
                          SECRETS_NAME_MAX);
    if (ttl_s < 0)
        return sb_err_set(err, SB_EINVAL, "ttl must be positive");
    struct secrets_request req = { .op = SECRETS_OP_LEASE };
    snprintf(req.name, sizeof req.name, "%s", name);
    snprintf(req.client_id, sizeof req.client_id, "%s", client_id ? client_id : "cli");
    req.has_ttl = true;
    req.ttl = ttl_s ? ttl_s : SECRETS_DEFAULT_TTL_S;
    struct secrets_gbuf resp = SECRETS_GBUF_INIT(SECRETS_RESPONSE_MAX);
    int rc = secrets_exchange(socket_path, &req, timeout_ms, &resp, err);
    if (rc) {
        secrets_gbuf_free(&resp);
        return rc;
    }
    struct lease_ctx c = { .out = out, .ok = -1 };
    struct sb_err scan_err;
    rc = secrets_json_scan(resp.data, resp.len, on_lease_field, &c, &scan_err);
    secrets_gbuf_free(&resp);
    if (rc == SB_ENOMEM) {
        rc = sb_err_set(err, SB_ENOMEM, "out of memory for the leased value");
    } else if (rc || c.ok < 0 || c.bad) {
        rc = sb_err_set(err, SB_EPROTO, "the daemon's answer is not a protocol message%s%s",
                        rc ? ": " : "", rc ? scan_err.msg : "");
    } else if (c.ok == 0) {
        rc = c.code[0] ? sb_err_set(err, secrets_wire_decode(c.code), "%s",
                                    c.message[0] ? c.message : c.code)
                       : sb_err_set(err, SB_EPROTO, "the daemon's answer has no error code");
    } else if (!c.have_id || !c.have_value || !c.have_expiry) {
        rc = sb_err_set(err, SB_EPROTO,
                        "the daemon's lease answer lacks lease_id, value or "
                        "expires_at");
    }
    if (rc)
        secrets_lease_clear(out);
    return rc;
}

void secrets_lease_clear(struct secrets_lease *l)
{
    if (!l)
        return;
    sodium_free(l->value); /* wipes */
    sodium_memzero(l, sizeof *l);
}
