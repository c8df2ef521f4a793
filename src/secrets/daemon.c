/* daemon.c - the secrets daemon (see daemon.h): socket setup, the poll loop,
 * admission of connecting peers, and the connections. The requests
 * themselves are handled in ops.c; who may connect is decided by peers.c.
 * Owns the connections and the process-level hardening (no core dumps, not
 * ptrace-able, umask 077).
 *
 * One thread. Admission happens at accept: a peer that is not allowed, or
 * that would go over its uid's connection cap or into the slots reserved for
 * the owner and root, gets one answer line (sent without waiting: a new
 * socket's buffer has room for it) and is closed there, so it never holds a
 * slot. Refusals of peers that are not allowed are audited at most once per
 * uid per second, with the count of those held back (peers.h); allowed peers
 * turned away are logged the same way. Every admitted connection is
 * non-blocking and has a deadline (client_timeout_ms) by which it must have
 * sent a complete request line and taken its answer, so a slow or hung
 * client costs one of its uid's slots for that long and blocks nobody. A
 * connection is answered one request at a time: while an answer is being
 * written its input is not read.
 *
 * Memory: request lines are read into guarded buffers (proto.h); answers are
 * built by ops.c (guarded when they hold a value) and wiped once written.
 *
 * Signals: SIGTERM/SIGINT write a byte to a self-pipe the loop polls; the
 * loop then stops, writes the refusal counts still held back, removes the
 * socket file and wipes the store. */
#include "secrets/daemon.h"
#include "common/clock.h"
#include "common/log.h"
#include "secrets/ops.h"
#include "secrets/peers.h"
#include "secrets/proto.h"

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

#define READ_CHUNK 16384
/* Connections accepted per loop round at most, so that a flood of connects
 * cannot keep the loop from serving the connections it has. */
#define ACCEPTS_PER_ROUND SECRETS_MAX_CONNS
/* At most one refusal audit line (and one "turned away" log line) per uid
 * per this. */
#define REFUSAL_INTERVAL_MS 1000

struct conn {
    int fd; /* -1: free slot */
    struct secrets_peer peer;
    struct secrets_gbuf in;
    struct secrets_answer out; /* the answer being written */
    size_t out_off;
    bool close_after; /* close once out is written */
    int64_t deadline; /* monotonic ms */
};

struct daemon {
    const struct secrets_daemon_config *cfg;
    struct secrets_service svc;
    struct secrets_admission admission;
    struct secrets_ratelimit refusals; /* audit lines: peers not allowed */
    struct secrets_ratelimit busy;     /* log lines: allowed peers turned away */
    int listen_fd;
    int sig_pipe[2];
    struct conn conns[SECRETS_MAX_CONNS];
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

/* ---- connections --------------------------------------------------------- */

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    secrets_gbuf_free(&c->in);
    secrets_answer_release(&c->out);
    c->out_off = 0;
}

/* Writes what it can of the pending answer. Returns -1 when the connection
 * is done (closed), 0 otherwise. */
static int conn_flush(struct daemon *d, struct conn *c)
{
    while (c->out.line && c->out_off < c->out.len) {
        ssize_t w = send(c->fd, c->out.line + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
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
    if (c->out.line) {
        secrets_answer_release(&c->out);
        c->out_off = 0;
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
    while (c->fd >= 0 && !c->out.line && !c->close_after && c->in.len > 0) {
        char *nl = memchr(c->in.data, '\n', c->in.len);
        if (!nl) {
            if (c->in.len >= SECRETS_REQUEST_MAX) {
                secrets_answer_error(&c->out, SB_EPROTO, "request line too long");
                c->close_after = true;
                conn_flush(d, c);
            }
            return;
        }
        size_t len = (size_t)(nl - c->in.data);
        size_t linelen = len && c->in.data[len - 1] == '\r' ? len - 1 : len;
        secrets_handle_line(&d->svc, &c->peer, c->in.data, linelen, &c->out);
        if (!c->out.line)
            c->close_after = true;             /* no memory for an answer */
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

/* ---- admission ----------------------------------------------------------- */

/* One audit line (and log line) for a refused peer that the rate limiter let
 * through; it stands for l->suppressed more refusals held back before it. */
static void audit_refusal(struct daemon *d, const struct secrets_rl_line *l)
{
    char reason[160];
    snprintf(reason, sizeof reason, "peer uid %lld gid %lld is not allowed", l->peer.uid,
             l->peer.gid);
    struct secrets_audit_event e = {
        .action = "connect", .reason = reason, .ttl = -1, .count = -1, .suppressed = l->suppressed
    };
    secrets_service_audit(&d->svc, &l->peer, &e);
    SB_LOGK(SB_WARN, "peer_refused",
            ((struct sb_lf[]){ LF_I("peer_uid", l->peer.uid), LF_I("peer_gid", l->peer.gid),
                               LF_I("peer_pid", l->peer.pid), LF_I("suppressed", l->suppressed) }),
            "%s", reason);
}

static void log_busy(const struct secrets_rl_line *l, const char *why)
{
    SB_LOGK(SB_WARN, "too_many_connections",
            ((struct sb_lf[]){ LF_I("peer_uid", l->peer.uid), LF_I("peer_pid", l->peer.pid),
                               LF_I("suppressed", l->suppressed) }),
            "turned a connection away: %s", why);
}

/* Writes the audit and log lines whose rate-limit interval has passed (all of
 * them at shutdown). */
static void flush_refusals(struct daemon *d, int64_t now, bool all)
{
    struct secrets_rl_line l;
    while (secrets_ratelimit_due(&d->refusals, now, all, &l))
        audit_refusal(d, &l);
    while (secrets_ratelimit_due(&d->busy, now, all, &l))
        log_busy(&l, "too many connections (summary of those not logged one by one)");
}

/* Answers a connection that gets no slot with one line and closes it. The
 * send does not wait: a new socket's buffer has room for one short line, and
 * a peer that is not reading loses nothing it would have read. */
static void turn_away(struct daemon *d, int fd, const struct secrets_peer *p, enum secrets_admit v)
{
    char msg[200];
    int code = SB_EBUSY;
    const struct secrets_admission *a = &d->admission;
    if (v == SECRETS_ADMIT_NOT_ALLOWED) {
        code = SB_EAUTH;
        snprintf(msg, sizeof msg, "this peer (uid/gid) is not allowed to use the secrets daemon");
    } else if (v == SECRETS_ADMIT_UID_FULL) {
        snprintf(msg, sizeof msg, "too many connections from uid %lld (at most %zu at once)",
                 p->uid, a->per_uid);
    } else if (p->uid == 0 || p->uid == a->owner_uid) {
        snprintf(msg, sizeof msg, "too many connections (%zu open)", a->max_conns);
    } else {
        snprintf(msg, sizeof msg,
                 "too many connections (%zu open; the last %zu are kept for the daemon's owner "
                 "and root)",
                 a->max_conns - a->reserved, a->reserved);
    }
    struct secrets_answer ans = { 0 };
    secrets_answer_error(&ans, code, msg);
    if (ans.line) {
        ssize_t w = send(fd, ans.line, ans.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
    }
    secrets_answer_release(&ans);
    close(fd);
    struct secrets_rl_line l;
    int64_t now = sb_mono_ms();
    if (v == SECRETS_ADMIT_NOT_ALLOWED) {
        if (secrets_ratelimit_hit(&d->refusals, p, now, &l))
            audit_refusal(d, &l);
    } else if (secrets_ratelimit_hit(&d->busy, p, now, &l)) {
        log_busy(&l, msg);
    }
}

static struct secrets_peer peer_of(int fd)
{
    struct secrets_peer p = { -1, -1, -1 };
    struct ucred cred;
    socklen_t clen = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
        p.uid = cred.uid;
        p.gid = cred.gid;
        p.pid = cred.pid;
    }
    return p;
}

static void accept_some(struct daemon *d)
{
    for (int i = 0; i < ACCEPTS_PER_ROUND; i++) {
        int fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                SB_LOG(SB_WARN, "accept_failed", "accept: %s", strerror(errno));
            return;
        }
        struct secrets_peer p = peer_of(fd);
        struct conn *slot = NULL;
        size_t open_total = 0, open_uid = 0;
        for (size_t k = 0; k < SECRETS_MAX_CONNS; k++) {
            struct conn *c = &d->conns[k];
            if (c->fd < 0) {
                if (!slot)
                    slot = c;
                continue;
            }
            open_total++;
            if (c->peer.uid == p.uid)
                open_uid++;
        }
        enum secrets_admit v = secrets_admit(&d->admission, &p, open_total, open_uid);
        if (v != SECRETS_ADMIT_OK || !slot) {
            turn_away(d, fd, &p, v != SECRETS_ADMIT_OK ? v : SECRETS_ADMIT_FULL);
            continue;
        }
        *slot = (struct conn){ .fd = fd,
                               .peer = p,
                               .in = SECRETS_GBUF_INIT(SECRETS_REQUEST_MAX),
                               .deadline = sb_mono_ms() + d->cfg->client_timeout_ms };
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

/* Closes the connections past their deadline and returns the poll timeout:
 * the time to the nearest deadline or refusal summary, at most a second
 * (lease expiry housekeeping). */
static int expire_conns(struct daemon *d, int64_t now)
{
    int64_t wake = now + 1000;
    for (size_t i = 0; i < SECRETS_MAX_CONNS; i++) {
        struct conn *c = &d->conns[i];
        if (c->fd < 0)
            continue;
        if (now >= c->deadline) {
            SB_LOGK(SB_DEBUG, "client_timeout", ((struct sb_lf[]){ LF_I("peer_pid", c->peer.pid) }),
                    "closing a connection that did not finish in time");
            conn_close(c);
            continue;
        }
        if (c->deadline < wake)
            wake = c->deadline;
    }
    int64_t due = secrets_ratelimit_next(&d->refusals);
    if (due < wake)
        wake = due;
    due = secrets_ratelimit_next(&d->busy);
    if (due < wake)
        wake = due;
    return wake <= now ? 0 : (int)(wake - now);
}

static void loop(struct daemon *d)
{
    struct pollfd pfd[SECRETS_MAX_CONNS + 2];
    int who[SECRETS_MAX_CONNS + 2];
    for (;;) {
        int64_t now = sb_mono_ms();
        secrets_leases_expire(&d->svc.leases, sb_now_ms());
        flush_refusals(d, now, false);
        int timeout = expire_conns(d, now);
        size_t n = 0;
        pfd[n] = (struct pollfd){ d->sig_pipe[0], POLLIN, 0 }, who[n++] = -2;
        pfd[n] = (struct pollfd){ d->listen_fd, POLLIN, 0 }, who[n++] = -1;
        for (size_t i = 0; i < SECRETS_MAX_CONNS; i++) {
            struct conn *c = &d->conns[i];
            if (c->fd < 0)
                continue;
            pfd[n] = (struct pollfd){ c->fd, c->out.line ? POLLOUT : POLLIN, 0 };
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
            if (!c->out.line)
                conn_read(d, c);
            else if (conn_flush(d, c) == 0 && !c->out.line)
                conn_process(d, c); /* requests that arrived while answering */
        }
        if (pfd[1].revents)
            accept_some(d);
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
    d->svc.audit.fd = -1;
    d->svc.store.lock_fd = -1;
    d->svc.socket_path = cfg->socket_path;
    d->svc.started_mono = sb_mono_ms();
    d->admission = (struct secrets_admission){
        .allow_uids = cfg->allow_uids,
        .n_allow_uids = cfg->n_allow_uids,
        .allow_gids = cfg->allow_gids,
        .n_allow_gids = cfg->n_allow_gids,
        .owner_uid = (long long)getuid(),
        .max_conns = SECRETS_MAX_CONNS,
        .reserved = SECRETS_RESERVED_CONNS,
        .per_uid = cfg->max_conns_per_uid ? cfg->max_conns_per_uid : SECRETS_CONNS_PER_UID,
    };
    d->refusals.interval_ms = d->busy.interval_ms = REFUSAL_INTERVAL_MS;
    for (size_t i = 0; i < SECRETS_MAX_CONNS; i++)
        d->conns[i].fd = -1;
    int rc =
        secrets_store_open(&d->svc.store, cfg->store_dir, cfg->key_file, cfg->passphrase_file, err);
    if (!rc)
        rc = secrets_audit_open(&d->svc.audit, cfg->store_dir, err);
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

    SB_LOGK(
        SB_INFO, "listening",
        ((struct sb_lf[]){ LF_S("socket", cfg->socket_path), LF_S("store", cfg->store_dir),
                           LF_I("pid", getpid()), LF_I("secrets", d->svc.store.n),
                           LF_I("max_conns_per_uid", d->admission.per_uid),
                           LF_S("key_source", d->svc.store.kdf.source == SECRETS_KEY_FROM_PASSPHRASE
                                                  ? "passphrase"
                                                  : "key_file") }),
        "secrets daemon listening on %s", cfg->socket_path);
    loop(d);
    unlink(cfg->socket_path);
    flush_refusals(d, sb_mono_ms(), true); /* counted refusals are not lost at a stop */
    SB_LOG(SB_INFO, "stopped", "secrets daemon stopped");
out:
    sig_fd = -1;
    for (size_t i = 0; i < SECRETS_MAX_CONNS; i++)
        conn_close(&d->conns[i]);
    if (d->listen_fd >= 0)
        close(d->listen_fd);
    if (d->sig_pipe[0] >= 0)
        close(d->sig_pipe[0]);
    if (d->sig_pipe[1] >= 0)
        close(d->sig_pipe[1]);
    secrets_leases_free(&d->svc.leases);
    secrets_audit_close(&d->svc.audit);
    secrets_store_close(&d->svc.store);
    free(d);
    return rc;
}
