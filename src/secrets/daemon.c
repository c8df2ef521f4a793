/* daemon.c - the secrets daemon (see daemon.h): socket setup, the poll loop,
 * peer checks, and one handler per protocol op. Owns the connections and the
 * process-level hardening (no core dumps, not ptrace-able, umask 077).
 *
 * One thread. Every connection is non-blocking and has a deadline
 * (client_timeout_ms) by which it must have sent a complete request line and
 * taken its answer, so a slow or hung client costs one slot of MAX_CONNS and
 * blocks nobody. A connection is answered one request at a time: while an
 * answer is being written its input is not read.
 *
 * Memory: request lines are read into guarded buffers (proto.h), the value of
 * an add is decoded into guarded memory, and a lease's answer line is built in
 * guarded memory and wiped once written. Answers without a value go through
 * jansson. Nothing logs a value; the audit trail never holds one.
 *
 * Signals: SIGTERM/SIGINT write a byte to a self-pipe the loop polls; the
 * loop then stops, removes the socket file and wipes the store. */
#include "secrets/daemon.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "secrets/audit.h"
#include "secrets/client.h"
#include "secrets/lease.h"
#include "secrets/proto.h"
#include "secrets/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef SB_VERSION
#define SB_VERSION "dev"
#endif

#define MAX_CONNS 64
#define READ_CHUNK 16384

struct conn {
    int fd; /* -1: free slot */
    long long uid, gid, pid;
    bool allowed;
    struct secrets_gbuf in;
    char *out; /* the answer being written */
    size_t out_len, out_off;
    bool out_guarded; /* out is sodium_malloc'd (it holds a value) */
    bool close_after; /* close once out is written */
    int64_t deadline; /* monotonic ms */
};

struct daemon {
    const struct secrets_daemon_config *cfg;
    struct secrets_store store;
    struct secrets_audit audit;
    struct secrets_leases leases;
    int listen_fd;
    int sig_pipe[2];
    struct conn conns[MAX_CONNS];
    int64_t started_mono;
};

/* The write end of the self-pipe, for the signal handler. Set once by
 * secrets_daemon_run before the handlers are installed; reset at exit. */
static volatile sig_atomic_t sig_fd = -1;

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (sig_fd >= 0) {
        ssize_t w = write(sig_fd, &b, 1);
        (void)w;
    }
    errno = saved;
}

/* ---- answers ------------------------------------------------------------- */

static void out_release(struct conn *c)
{
    if (c->out_guarded)
        sodium_free(c->out);
    else
        free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    c->out_guarded = false;
}

/* Takes obj (adds ok:true) and queues it as the answer. */
static void reply_ok(struct conn *c, json_t *obj)
{
    json_object_set_new(obj, "ok", json_true());
    size_t len = 0;
    char *s = sb_json_dumps(obj, &len);
    json_decref(obj);
    char *line = s ? realloc(s, len + 1) : NULL;
    if (!line) {
        free(s);
        c->close_after = true; /* nothing sensible to send */
        return;
    }
    line[len++] = '\n';
    c->out = line;
    c->out_len = len;
    c->out_guarded = false;
}

static void reply_error(struct conn *c, int code, const char *msg)
{
    json_t *o = json_object();
    json_object_set_new(o, "ok", json_false());
    json_object_set_new(o, "error",
                        json_pack("{s:s, s:s}", "code", secrets_wire_code(code), "message",
                                  msg ? msg : sb_strerror(code)));
    size_t len = 0;
    char *s = sb_json_dumps(o, &len);
    json_decref(o);
    char *line = s ? realloc(s, len + 1) : NULL;
    if (!line) {
        free(s);
        c->close_after = true;
        return;
    }
    line[len++] = '\n';
    c->out = line;
    c->out_len = len;
    c->out_guarded = false;
}

static void iso(int64_t ms, char out[40])
{
    sb_time_format_iso(ms, out, 40);
}

/* ---- audit --------------------------------------------------------------- */

/* Writes one audit line for c's peer. A failure is logged here (it is the
 * place that knows) and returned, so a lease can be withheld. */
static int audit(struct daemon *d, const struct conn *c, struct secrets_audit_event *e)
{
    e->peer_uid = c->uid;
    e->peer_pid = c->pid;
    struct sb_err err = { 0 };
    int rc = secrets_audit_append(&d->audit, e, sb_now_ms(), &err);
    if (rc)
        SB_LOGK(SB_ERROR, "audit_write_failed",
                ((struct sb_lf[]){ LF_S("action", e->action), LF_S("path", d->audit.path) }), "%s",
                err.msg);
    return rc;
}

static struct secrets_audit_event event(const char *action, const struct secrets_request *r)
{
    return (struct secrets_audit_event){ .action = action,
                                         .secret_name = r->name,
                                         .client_id = r->client_id,
                                         .lease_id = r->lease_id,
                                         .peer_uid = -1,
                                         .peer_pid = -1,
                                         .ttl = -1,
                                         .count = -1 };
}

/* ---- ops ----------------------------------------------------------------- */

static void op_status(struct daemon *d, struct conn *c)
{
    int64_t now = sb_now_ms();
    secrets_leases_expire(&d->leases, now);
    json_t *o = json_object();
    json_object_set_new(o, "daemon", json_string("running"));
    json_object_set_new(o, "pid", json_integer(getpid()));
    json_object_set_new(o, "version", json_string(SB_VERSION));
    json_object_set_new(o, "store", json_string(d->store.dir));
    json_object_set_new(o, "socket", json_string(d->cfg->socket_path));
    json_object_set_new(o, "key_source",
                        json_string(d->store.kdf.source == SECRETS_KEY_FROM_PASSPHRASE
                                        ? "passphrase"
                                        : "key_file"));
    json_object_set_new(o, "secrets", json_integer((json_int_t)d->store.n));
    json_object_set_new(o, "active_leases", json_integer((json_int_t)d->leases.n));
    json_object_set_new(o, "uptime_s", json_integer((sb_mono_ms() - d->started_mono) / 1000));
    reply_ok(c, o);
}

static void op_add(struct daemon *d, struct conn *c, const struct secrets_request *r)
{
    struct sb_err err = { 0 };
    bool created = false;
    int rc =
        secrets_store_put(&d->store, r->name, r->value, r->value_len, sb_now_ms(), &created, &err);
    if (rc && rc != SB_EINVAL && rc != SB_ETOOBIG)
        SB_LOGK(SB_ERROR, "store_write_failed", ((struct sb_lf[]){ LF_S("secret_name", r->name) }),
                "%s", err.msg);
    struct secrets_audit_event e = event("add", r);
    e.success = rc == 0;
    e.reason = err.msg;
    int arc = audit(d, c, &e);
    if (rc) {
        reply_error(c, rc, err.msg);
    } else if (arc) {
        reply_error(c, SB_EIO, "the secret was stored but the audit trail could not be written");
    } else {
        SB_LOGK(SB_INFO, "secret_stored",
                ((struct sb_lf[]){ LF_S("secret_name", r->name), LF_B("created", created),
                                   LF_I("peer_uid", c->uid) }),
                "stored %s", r->name);
        reply_ok(c, json_pack("{s:s, s:b}", "name", r->name, "created", created));
    }
}

/* The lease answer: built in guarded memory because it holds the value. */
static int lease_answer(struct conn *c, const struct secrets_lease_rec *l,
                        const struct secrets_entry *e)
{
    struct secrets_gbuf b = SECRETS_GBUF_INIT(SECRETS_VALUE_MAX * 6 + 4096);
    char exp[40], num[64];
    iso(l->expires_ms, exp);
    snprintf(num, sizeof num, ",\"ttl\":%lld", (long long)l->ttl_s);
    int rc = secrets_gbuf_puts(&b, "{\"client_id\":");
    if (!rc)
        rc = secrets_gbuf_json_str(&b, l->client_id, strlen(l->client_id));
    if (!rc)
        rc = secrets_gbuf_puts(&b, ",\"expires_at\":");
    if (!rc)
        rc = secrets_gbuf_json_str(&b, exp, strlen(exp));
    if (!rc)
        rc = secrets_gbuf_puts(&b, ",\"lease_id\":");
    if (!rc)
        rc = secrets_gbuf_json_str(&b, l->id, strlen(l->id));
    if (!rc)
        rc = secrets_gbuf_puts(&b, ",\"ok\":true,\"secret_name\":");
    if (!rc)
        rc = secrets_gbuf_json_str(&b, l->name, strlen(l->name));
    if (!rc)
        rc = secrets_gbuf_puts(&b, num);
    if (!rc)
        rc = secrets_gbuf_puts(&b, ",\"value\":");
    if (!rc)
        rc = secrets_gbuf_json_str(&b, e->value, e->value_len);
    if (!rc)
        rc = secrets_gbuf_puts(&b, "}\n");
    if (rc) {
        secrets_gbuf_free(&b);
        return rc;
    }
    c->out = b.data; /* ownership moves to the connection */
    c->out_len = b.len;
    c->out_guarded = true;
    return 0;
}

static void op_lease(struct daemon *d, struct conn *c, const struct secrets_request *r)
{
    int64_t now = sb_now_ms();
    int64_t ttl = r->has_ttl ? r->ttl : SECRETS_DEFAULT_TTL_S;
    struct secrets_audit_event e = event("lease", r);
    e.ttl = ttl;
    char reason[200];
    if (ttl > SECRETS_MAX_TTL_S) {
        snprintf(reason, sizeof reason, "ttl %llds is above the maximum %ds (24h)", (long long)ttl,
                 SECRETS_MAX_TTL_S);
        e.reason = reason;
        audit(d, c, &e);
        SB_LOGK(SB_WARN, "lease_refused",
                ((struct sb_lf[]){ LF_S("secret_name", r->name), LF_I("ttl", ttl),
                                   LF_I("peer_uid", c->uid) }),
                "%s", reason);
        reply_error(c, SB_EINVAL, reason);
        return;
    }
    const struct secrets_entry *entry = secrets_store_get(&d->store, r->name);
    if (!entry) {
        snprintf(reason, sizeof reason, "no secret named %s", r->name);
        e.reason = reason;
        audit(d, c, &e);
        reply_error(c, SB_ENOTFOUND, reason);
        return;
    }
    const struct secrets_lease_rec *l = NULL;
    int rc = secrets_leases_add(&d->leases, r->name, r->client_id, ttl, now, c->uid, c->pid, &l);
    if (rc) {
        e.reason = rc == SB_EBUSY ? "too many active leases" : "out of memory";
        audit(d, c, &e);
        reply_error(c, rc, e.reason);
        return;
    }
    char id[SB_ULID_SIZE];
    memcpy(id, l->id, sizeof id);
    e.lease_id = id;
    e.success = true;
    if (audit(d, c, &e) != 0) {
        /* fail closed: no value leaves without its audit line */
        secrets_leases_revoke(&d->leases, id, now);
        reply_error(c, SB_EIO, "the audit trail could not be written; lease withheld");
        return;
    }
    if (lease_answer(c, l, entry) != 0) {
        secrets_leases_revoke(&d->leases, id, now);
        reply_error(c, SB_ENOMEM, "no memory for the answer");
        return;
    }
    SB_LOGK(SB_INFO, "lease_granted",
            ((struct sb_lf[]){ LF_S("lease_id", id), LF_S("secret_name", r->name),
                               LF_S("client_id", r->client_id), LF_I("ttl", ttl),
                               LF_I("peer_uid", c->uid), LF_I("peer_pid", c->pid) }),
            "leased %s for %llds", r->name, (long long)ttl);
}

static void op_revoke(struct daemon *d, struct conn *c, const struct secrets_request *r)
{
    int rc = secrets_leases_revoke(&d->leases, r->lease_id, sb_now_ms());
    char reason[120];
    snprintf(reason, sizeof reason, "no active lease %s (unknown or expired)", r->lease_id);
    struct secrets_audit_event e = event("revoke", r);
    e.success = rc == 0;
    e.reason = reason;
    audit(d, c, &e);
    if (rc)
        reply_error(c, rc, reason);
    else
        reply_ok(c, json_pack("{s:s}", "lease_id", r->lease_id));
}

static void op_revoke_all(struct daemon *d, struct conn *c, const struct secrets_request *r)
{
    size_t n = secrets_leases_revoke_all(&d->leases, sb_now_ms());
    struct secrets_audit_event e = event("revoke_all", r);
    e.success = true;
    e.count = (long long)n;
    audit(d, c, &e);
    SB_LOGK(SB_WARN, "killswitch",
            ((struct sb_lf[]){ LF_I("revoked", n), LF_I("peer_uid", c->uid) }),
            "every lease revoked (%zu)", n);
    reply_ok(c, json_pack("{s:I}", "revoked", (json_int_t)n));
}

static void op_rm(struct daemon *d, struct conn *c, const struct secrets_request *r)
{
    struct sb_err err = { 0 };
    int rc = secrets_store_remove(&d->store, r->name, &err);
    if (rc && rc != SB_ENOTFOUND)
        SB_LOGK(SB_ERROR, "store_write_failed", ((struct sb_lf[]){ LF_S("secret_name", r->name) }),
                "%s", err.msg);
    size_t n = rc ? 0 : secrets_leases_revoke_name(&d->leases, r->name, sb_now_ms());
    struct secrets_audit_event e = event("rm", r);
    e.success = rc == 0;
    e.reason = err.msg;
    if (!rc)
        e.count = (long long)n;
    int arc = audit(d, c, &e);
    if (rc)
        reply_error(c, rc, err.msg);
    else if (arc)
        reply_error(c, SB_EIO, "the secret was removed but the audit trail could not be written");
    else
        reply_ok(c, json_pack("{s:s, s:I}", "name", r->name, "revoked_leases", (json_int_t)n));
}

static void op_leases(struct daemon *d, struct conn *c)
{
    int64_t now = sb_now_ms();
    secrets_leases_expire(&d->leases, now);
    json_t *arr = json_array();
    for (size_t i = 0; i < d->leases.n; i++) {
        const struct secrets_lease_rec *l = &d->leases.v[i];
        char created[40], exp[40];
        iso(l->created_ms, created);
        iso(l->expires_ms, exp);
        json_array_append_new(
            arr,
            json_pack("{s:s, s:s, s:s?, s:s, s:s, s:I, s:I, s:I, s:I}", "lease_id", l->id,
                      "secret_name", l->name, "client_id", l->client_id[0] ? l->client_id : NULL,
                      "created_at", created, "expires_at", exp, "ttl", (json_int_t)l->ttl_s,
                      "remaining_s", (json_int_t)((l->expires_ms - now + 999) / 1000), "peer_uid",
                      (json_int_t)l->peer_uid, "peer_pid", (json_int_t)l->peer_pid));
    }
    reply_ok(c, json_pack("{s:o}", "leases", arr));
}

static void op_list(struct daemon *d, struct conn *c)
{
    int64_t now = sb_now_ms();
    json_t *arr = json_array();
    for (size_t i = 0; i < d->store.n; i++) {
        const struct secrets_entry *e = &d->store.v[i];
        char created[40], updated[40];
        iso(e->created_ms, created);
        iso(e->updated_ms, updated);
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:s, s:I}", "name", e->name, "created_at", created,
                           "updated_at", updated, "active_leases",
                           (json_int_t)secrets_leases_count(&d->leases, e->name, now)));
    }
    reply_ok(c, json_pack("{s:o}", "secrets", arr));
}

static void op_audit(struct daemon *d, struct conn *c, const struct secrets_request *r)
{
    json_t *entries = NULL;
    struct sb_err err = { 0 };
    size_t n = r->tail > 0 ? (size_t)r->tail : SECRETS_AUDIT_TAIL_MAX;
    int rc = secrets_audit_tail(&d->audit, n, &entries, &err);
    if (rc) {
        SB_LOG(SB_ERROR, "audit_read_failed", "%s", err.msg);
        reply_error(c, rc, err.msg);
        return;
    }
    reply_ok(c, json_pack("{s:o}", "entries", entries));
}

/* ---- requests ------------------------------------------------------------ */

static void handle_line(struct daemon *d, struct conn *c, const char *line, size_t len)
{
    if (!c->allowed) {
        reply_error(c, SB_EAUTH, "this peer (uid/gid) is not allowed to use the secrets daemon");
        c->close_after = true;
        return;
    }
    struct secrets_request r;
    struct sb_err err = { 0 };
    int rc = secrets_request_parse(line, len, &r, &err);
    if (rc == SB_EPROTO || rc == SB_ENOMEM || (rc && r.op == SECRETS_OP_NONE)) {
        SB_LOGK(SB_WARN, "bad_request", ((struct sb_lf[]){ LF_I("peer_uid", c->uid) }), "%s",
                err.msg);
        reply_error(c, rc, err.msg);
        secrets_request_clear(&r);
        return;
    }
    const char *opname = secrets_op_name(r.op);
    SB_LOGK(SB_DEBUG, "request",
            ((struct sb_lf[]){ LF_S("op", opname), LF_S("secret_name", r.name),
                               LF_S("client_id", r.client_id), LF_I("peer_uid", c->uid) }),
            "%s", opname);
    if (rc) {
        /* refused field values: operations on secrets and leases are audited */
        if (r.op == SECRETS_OP_ADD || r.op == SECRETS_OP_LEASE || r.op == SECRETS_OP_RM ||
            r.op == SECRETS_OP_REVOKE) {
            struct secrets_audit_event e = event(opname, &r);
            e.reason = err.msg;
            if (r.op == SECRETS_OP_LEASE && r.has_ttl)
                e.ttl = r.ttl;
            audit(d, c, &e);
        }
        reply_error(c, rc, err.msg);
        secrets_request_clear(&r);
        return;
    }
    switch (r.op) {
    case SECRETS_OP_STATUS: op_status(d, c); break;
    case SECRETS_OP_ADD: op_add(d, c, &r); break;
    case SECRETS_OP_LEASE: op_lease(d, c, &r); break;
    case SECRETS_OP_REVOKE: op_revoke(d, c, &r); break;
    case SECRETS_OP_REVOKE_ALL: op_revoke_all(d, c, &r); break;
    case SECRETS_OP_LEASES: op_leases(d, c); break;
    case SECRETS_OP_LIST: op_list(d, c); break;
    case SECRETS_OP_RM: op_rm(d, c, &r); break;
    case SECRETS_OP_AUDIT: op_audit(d, c, &r); break;
    case SECRETS_OP_NONE: reply_error(c, SB_EPROTO, "no op"); break;
    }
    secrets_request_clear(&r);
}

/* ---- connections --------------------------------------------------------- */

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    secrets_gbuf_free(&c->in);
    out_release(c);
}

/* Writes what it can of the pending answer. Returns -1 when the connection
 * is done (closed), 0 otherwise. */
static int conn_flush(struct daemon *d, struct conn *c)
{
    while (c->out && c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return 0;
        conn_close(c);
        return -1;
    }
    if (c->out) {
        out_release(c);
        c->deadline = sb_mono_ms() + d->cfg->client_timeout_ms;
    }
    if (c->close_after) {
        /* let a well-behaved client see EOF after the answer */
        conn_close(c);
        return -1;
    }
    return 0;
}

/* Answers every complete line buffered, one at a time. */
static void conn_process(struct daemon *d, struct conn *c)
{
    while (c->fd >= 0 && !c->out && !c->close_after && c->in.len > 0) {
        char *nl = memchr(c->in.data, '\n', c->in.len);
        if (!nl) {
            if (c->in.len >= SECRETS_REQUEST_MAX) {
                reply_error(c, SB_EPROTO, "request line too long");
                c->close_after = true;
                conn_flush(d, c);
            }
            return;
        }
        size_t len = (size_t)(nl - c->in.data);
        size_t linelen = len && c->in.data[len - 1] == '\r' ? len - 1 : len;
        handle_line(d, c, c->in.data, linelen);
        secrets_gbuf_consume(&c->in, len + 1); /* wipes the request */
        if (conn_flush(d, c) < 0)
            return;
    }
}

static void conn_read(struct daemon *d, struct conn *c)
{
    size_t room = SECRETS_REQUEST_MAX - c->in.len;
    if (room > READ_CHUNK)
        room = READ_CHUNK;
    if (room == 0) {
        conn_process(d, c); /* answers "too long" and closes */
        return;
    }
    if (secrets_gbuf_reserve(&c->in, room) != 0) {
        SB_LOG(SB_ERROR, "out_of_memory", "no memory for a request buffer");
        conn_close(c);
        return;
    }
    ssize_t r = read(c->fd, c->in.data + c->in.len, room);
    if (r > 0) {
        c->in.len += (size_t)r;
        c->in.data[c->in.len] = '\0';
        conn_process(d, c);
        return;
    }
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    conn_close(c); /* EOF or error; an unterminated line is dropped */
}

static void accept_all(struct daemon *d)
{
    for (;;) {
        int fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                SB_LOG(SB_WARN, "accept_failed", "accept: %s", strerror(errno));
            return;
        }
        struct conn *c = NULL;
        for (size_t i = 0; i < MAX_CONNS && !c; i++)
            if (d->conns[i].fd < 0)
                c = &d->conns[i];
        if (!c) {
            static const char busy[] =
                "{\"error\":{\"code\":\"BUSY\",\"message\":\"too many connections\"},"
                "\"ok\":false}\n";
            ssize_t w = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
            close(fd);
            SB_LOG(SB_WARN, "too_many_connections", "refused a connection: %d open", MAX_CONNS);
            continue;
        }
        memset(c, 0, sizeof *c);
        c->fd = fd;
        c->in = (struct secrets_gbuf)SECRETS_GBUF_INIT(SECRETS_REQUEST_MAX);
        c->uid = c->gid = c->pid = -1;
        c->deadline = sb_mono_ms() + d->cfg->client_timeout_ms;
        struct ucred cred;
        socklen_t clen = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
            c->uid = cred.uid;
            c->gid = cred.gid;
            c->pid = cred.pid;
            for (size_t k = 0; k < d->cfg->n_allow_uids; k++)
                if (d->cfg->allow_uids[k] == cred.uid)
                    c->allowed = true;
            for (size_t k = 0; k < d->cfg->n_allow_gids; k++)
                if (d->cfg->allow_gids[k] == cred.gid)
                    c->allowed = true;
        }
        if (!c->allowed) {
            char reason[160];
            snprintf(reason, sizeof reason, "peer uid %lld gid %lld is not allowed", c->uid,
                     c->gid);
            struct secrets_audit_event e = {
                .action = "connect", .reason = reason, .ttl = -1, .count = -1
            };
            audit(d, c, &e);
            SB_LOGK(SB_WARN, "peer_refused",
                    ((struct sb_lf[]){ LF_I("peer_uid", c->uid), LF_I("peer_gid", c->gid),
                                       LF_I("peer_pid", c->pid) }),
                    "%s", reason);
        }
    }
}

/* ---- setup --------------------------------------------------------------- */

static int make_socket_dir(const char *sock, struct sb_err *err)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", sock);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    struct stat st;
    if (stat(dir, &st) == 0)
        return 0;
    for (char *p = dir + 1;; p++) {
        bool last = *p == '\0';
        if (*p != '/' && !last)
            continue;
        *p = '\0';
        if (mkdir(dir, 0750) == 0) {
            if (chmod(dir, 0750) != 0) /* mkdir's mode went through our umask */
                return sb_err_errno(err, SB_EIO, "cannot chmod %s", dir);
        } else if (errno != EEXIST) {
            return sb_err_errno(err, SB_EIO, "cannot create socket directory %s", dir);
        }
        if (last)
            break;
        *p = '/';
    }
    return 0;
}

static int listen_socket(struct daemon *d, struct sb_err *err)
{
    const char *path = d->cfg->socket_path;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof a.sun_path)
        return sb_err_set(err, SB_EINVAL, "socket path %s is longer than %zu bytes", path,
                          sizeof a.sun_path - 1);
    memcpy(a.sun_path, path, strlen(path) + 1);
    int rc = make_socket_dir(path, err);
    if (rc)
        return rc;
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return sb_err_set(err, SB_ECONFIG, "%s exists and is not a socket", path);
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&a, sizeof a) == 0) {
            close(probe);
            return sb_err_set(err, SB_EBUSY, "another daemon is listening on %s", path);
        }
        if (probe >= 0)
            close(probe);
        unlink(path); /* stale: its daemon is gone */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sb_err_errno(err, SB_EIO, "socket");
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        rc = sb_err_errno(err, SB_EIO, "cannot bind %s", path);
        close(fd);
        return rc;
    }
    if (chmod(path, 0660) != 0 ||
        (d->cfg->socket_gid >= 0 && chown(path, (uid_t)-1, (gid_t)d->cfg->socket_gid) != 0) ||
        listen(fd, 64) != 0) {
        rc = sb_err_errno(err, SB_EIO, "cannot set up socket %s", path);
        close(fd);
        unlink(path);
        return rc;
    }
    d->listen_fd = fd;
    return 0;
}

static void harden(void)
{
    /* no core dumps, no ptrace by same-uid processes, nothing readable by
     * others in files we create */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    struct rlimit none = { 0, 0 };
    setrlimit(RLIMIT_CORE, &none);
    umask(077);
}

static void loop(struct daemon *d)
{
    struct pollfd pfd[MAX_CONNS + 2];
    int who[MAX_CONNS + 2];
    for (;;) {
        int64_t now = sb_mono_ms();
        secrets_leases_expire(&d->leases, sb_now_ms());
        int timeout = 1000; /* lease expiry housekeeping */
        for (size_t i = 0; i < MAX_CONNS; i++) {
            struct conn *c = &d->conns[i];
            if (c->fd < 0)
                continue;
            if (now >= c->deadline) {
                SB_LOGK(SB_DEBUG, "client_timeout", ((struct sb_lf[]){ LF_I("peer_pid", c->pid) }),
                        "closing a connection that did not finish in time");
                conn_close(c);
                continue;
            }
            if (c->deadline - now < timeout)
                timeout = (int)(c->deadline - now);
        }
        size_t n = 0;
        pfd[n] = (struct pollfd){ d->sig_pipe[0], POLLIN, 0 }, who[n++] = -2;
        pfd[n] = (struct pollfd){ d->listen_fd, POLLIN, 0 }, who[n++] = -1;
        for (size_t i = 0; i < MAX_CONNS; i++) {
            struct conn *c = &d->conns[i];
            if (c->fd < 0)
                continue;
            pfd[n] = (struct pollfd){ c->fd, c->out ? POLLOUT : POLLIN, 0 };
            who[n++] = (int)i;
        }
        int r = poll(pfd, n, timeout);
        if (r < 0 && errno != EINTR) {
            SB_LOG(SB_ERROR, "poll_failed", "poll: %s", strerror(errno));
            sb_sleep_ms(100);
            continue;
        }
        if (r <= 0)
            continue;
        if (pfd[0].revents) {
            unsigned char sig = 0;
            ssize_t got = read(d->sig_pipe[0], &sig, 1);
            (void)got;
            SB_LOGK(SB_INFO, "stopping", ((struct sb_lf[]){ LF_I("signal", sig) }),
                    "stopping on signal %d", sig);
            return;
        }
        for (size_t k = 2; k < n; k++) {
            struct conn *c = &d->conns[who[k]];
            if (!pfd[k].revents || c->fd != pfd[k].fd)
                continue;
            if (!c->out)
                conn_read(d, c);
            else if (conn_flush(d, c) == 0 && !c->out)
                conn_process(d, c); /* requests that arrived while answering */
        }
        if (pfd[1].revents)
            accept_all(d);
    }
}

int secrets_daemon_run(const struct secrets_daemon_config *cfg, struct sb_err *err)
{
    if (sodium_init() < 0)
        return sb_err_set(err, SB_EINTERNAL, "libsodium failed to initialize");
    harden();
    struct daemon *d = calloc(1, sizeof *d);
    if (!d)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    d->cfg = cfg;
    d->listen_fd = -1;
    d->sig_pipe[0] = d->sig_pipe[1] = -1;
    d->audit.fd = -1;
    d->store.lock_fd = -1;
    for (size_t i = 0; i < MAX_CONNS; i++)
        d->conns[i].fd = -1;
    d->started_mono = sb_mono_ms();
    int rc =
        secrets_store_open(&d->store, cfg->store_dir, cfg->key_file, cfg->passphrase_file, err);
    if (!rc)
        rc = secrets_audit_open(&d->audit, cfg->store_dir, err);
    if (!rc && pipe2(d->sig_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
        rc = sb_err_errno(err, SB_EIO, "pipe");
    if (!rc)
        rc = listen_socket(d, err);
    if (rc)
        goto out;

    sig_fd = d->sig_pipe[1];
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct sigaction ign = { .sa_handler = SIG_IGN };
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);
    sigaction(SIGHUP, &ign, NULL);

    SB_LOGK(SB_INFO, "listening",
            ((struct sb_lf[]){ LF_S("socket", cfg->socket_path), LF_S("store", cfg->store_dir),
                               LF_I("pid", getpid()), LF_I("secrets", d->store.n),
                               LF_S("key_source", d->store.kdf.source == SECRETS_KEY_FROM_PASSPHRASE
                                                      ? "passphrase"
                                                      : "key_file") }),
            "secrets daemon listening on %s", cfg->socket_path);
    loop(d);
    unlink(cfg->socket_path);
    SB_LOG(SB_INFO, "stopped", "secrets daemon stopped");
out:
    sig_fd = -1;
    for (size_t i = 0; i < MAX_CONNS; i++)
        conn_close(&d->conns[i]);
    if (d->listen_fd >= 0)
        close(d->listen_fd);
    if (d->sig_pipe[0] >= 0)
        close(d->sig_pipe[0]);
    if (d->sig_pipe[1] >= 0)
        close(d->sig_pipe[1]);
    secrets_leases_free(&d->leases);
    secrets_audit_close(&d->audit);
    secrets_store_close(&d->store);
    free(d);
    return rc;
}
