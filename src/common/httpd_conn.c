/* httpd_conn.c - deadlines per connection and lingering close (see
 * httpd_conn.h for the phases, why a shutdown from the watchdog thread is
 * safe, and who touches the lingering list). */
#include "httpd_conn.h"
#include "clock.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINGER_MAX 64
#define LINGER_MAX_BYTES (64LL << 20)
#define LINGER_IDLE_MS 2000
#define LINGER_READ_MAX (1 << 20) /* per wake-up, so one client cannot hog the thread */

enum conn_phase { CONN_WAIT, CONN_BODY, CONN_BUSY };

struct sb_conn {
    struct sb_conn *prev, *next;
    int fd;
    enum conn_phase phase;
    int64_t since;             /* mono ms when the phase started */
    unsigned requests;         /* completed on this connection */
    bool shut;                 /* shut down by the watchdog; MHD closes it next */
    bool linger;               /* answered before its body: linger when closed */
    const char *method, *path; /* borrowed from the request in its body phase */
    /* lingering (watchdog only) */
    int64_t linger_until, idle_until;
    int64_t dropped;
};

int sb_conns_init(struct sb_conns *cs, int64_t header_ms, int64_t body_ms, struct sb_err *err)
{
    memset(cs, 0, sizeof *cs);
    cs->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (cs->wake_fd < 0)
        return sb_err_errno(err, SB_EIO, "eventfd");
    pthread_mutex_init(&cs->lock, NULL);
    cs->header_ms = header_ms;
    cs->body_ms = body_ms;
    return 0;
}

void sb_conns_destroy(struct sb_conns *cs)
{
    for (struct sb_conn *c = cs->lingering, *next; c; c = next) {
        next = c->next;
        close(c->fd);
        free(c);
    }
    cs->lingering = NULL;
    close(cs->wake_fd);
    pthread_mutex_destroy(&cs->lock);
}

void sb_conns_wake(struct sb_conns *cs)
{
    uint64_t one = 1;
    if (write(cs->wake_fd, &one, sizeof one) < 0) {
        /* the counter is already set (EAGAIN): a wake-up is pending anyway */
    }
}

static void conn_started(struct sb_conns *cs, struct MHD_Connection *conn, void **socket_context)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct sb_conn *c = calloc(1, sizeof *c);
    if (!c) {
        /* Untracked, it would have no deadline: end it instead (MHD closes
         * it when it reads the end of the stream). */
        if (ci)
            shutdown(ci->connect_fd, SHUT_RDWR);
        *socket_context = NULL;
        return;
    }
    c->fd = ci ? ci->connect_fd : -1;
    c->phase = CONN_WAIT;
    c->since = sb_mono_ms();
    pthread_mutex_lock(&cs->lock);
    c->next = cs->head;
    if (cs->head)
        cs->head->prev = c;
    cs->head = c;
    pthread_mutex_unlock(&cs->lock);
    *socket_context = c;
}

/* With cs->lock held: moves c (off the open list) to the lingering list on
 * a dup of its socket. Returns false when it cannot linger. */
static bool start_linger(struct sb_conns *cs, struct sb_conn *c)
{
    if (!c->linger || c->shut || c->fd < 0 || cs->nlinger >= LINGER_MAX)
        return false;
    int fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0); /* shares O_NONBLOCK with MHD's */
    if (fd < 0)
        return false;
    int64_t now = sb_mono_ms();
    c->fd = fd;
    c->linger_until = now + cs->body_ms;
    c->idle_until = now + LINGER_IDLE_MS;
    c->method = c->path = NULL;
    c->prev = NULL;
    c->next = cs->lingering;
    if (cs->lingering)
        cs->lingering->prev = c;
    cs->lingering = c;
    cs->nlinger++;
    return true;
}

static void conn_closed(struct sb_conns *cs, struct sb_conn *c)
{
    pthread_mutex_lock(&cs->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        cs->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    bool lingers = start_linger(cs, c);
    pthread_mutex_unlock(&cs->lock);
    /* MHD closes the socket after this returns, so no shutdown can reach
     * another connection's socket: the watchdog only ever sees c under the
     * lock, and c is off the open list now (a lingering c has its own dup). */
    if (lingers)
        sb_conns_wake(cs);
    else
        free(c);
}

void sb_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode code)
{
    struct sb_conns *cs = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        conn_started(cs, conn, socket_context);
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        conn_closed(cs, *socket_context);
        *socket_context = NULL;
    }
}

static struct sb_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void set_phase(struct sb_conns *cs, struct MHD_Connection *conn, enum conn_phase phase,
                      const char *method, const char *path, bool request_done)
{
    struct sb_conn *c = conn_of(conn);
    if (!c)
        return;
    int64_t now = sb_mono_ms();
    pthread_mutex_lock(&cs->lock);
    c->phase = phase;
    c->since = now;
    c->method = method;
    c->path = path;
    if (request_done)
        c->requests++;
    pthread_mutex_unlock(&cs->lock);
}

void sb_conns_body(struct sb_conns *cs, struct MHD_Connection *conn, const char *method,
                   const char *path)
{
    set_phase(cs, conn, CONN_BODY, method, path, false);
}

void sb_conns_busy(struct sb_conns *cs, struct MHD_Connection *conn)
{
    set_phase(cs, conn, CONN_BUSY, NULL, NULL, false);
}

void sb_conns_request_done(struct sb_conns *cs, struct MHD_Connection *conn)
{
    set_phase(cs, conn, CONN_WAIT, NULL, NULL, true);
}

void sb_conns_linger(struct sb_conns *cs, struct MHD_Connection *conn)
{
    struct sb_conn *c = conn_of(conn);
    if (!c)
        return;
    pthread_mutex_lock(&cs->lock);
    c->linger = true;
    pthread_mutex_unlock(&cs->lock);
}

/* Reads and drops what c's client still sends. Returns true when c is
 * done: the client closed, an error, or the byte budget is spent. */
static bool linger_drain(struct sb_conn *c, int64_t now)
{
    char buf[16384];
    for (int64_t got = 0; got < LINGER_READ_MAX;) {
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n > 0) {
            got += n;
            c->dropped += n;
            c->idle_until = now + LINGER_IDLE_MS;
            if (c->dropped > LINGER_MAX_BYTES)
                return true;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    }
    return false;
}

static void linger_end(struct sb_conns *cs, struct sb_conn *c)
{
    pthread_mutex_lock(&cs->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        cs->lingering = c->next;
    if (c->next)
        c->next->prev = c->prev;
    cs->nlinger--;
    pthread_mutex_unlock(&cs->lock);
    close(c->fd);
    free(c);
}

void sb_conns_wait(struct sb_conns *cs, int64_t ms)
{
    struct pollfd pfd[LINGER_MAX + 1];
    struct sb_conn *who[LINGER_MAX + 1];
    int n = 0;
    int64_t now = sb_mono_ms(), wait = ms;
    pfd[n++] = (struct pollfd){ .fd = cs->wake_fd, .events = POLLIN };
    /* Entries are added by MHD's threads (under the lock) but unlinked and
     * freed only here, so the pointers taken now stay valid below. */
    pthread_mutex_lock(&cs->lock);
    for (struct sb_conn *c = cs->lingering; c && n < LINGER_MAX + 1; c = c->next) {
        int64_t until = c->idle_until < c->linger_until ? c->idle_until : c->linger_until;
        if (until - now < wait)
            wait = until - now > 0 ? until - now : 0;
        who[n] = c;
        pfd[n++] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
    }
    pthread_mutex_unlock(&cs->lock);
    int rc = poll(pfd, (nfds_t)n, (int)(wait > 0 ? wait : 0));
    if (rc > 0 && pfd[0].revents) {
        uint64_t v;
        if (read(cs->wake_fd, &v, sizeof v) < 0) {
            /* nothing pending after all (EAGAIN) */
        }
    }
    now = sb_mono_ms();
    for (int i = 1; i < n; i++) {
        struct sb_conn *c = who[i];
        bool done = rc > 0 && pfd[i].revents && linger_drain(c, now);
        if (done || now >= c->linger_until || now >= c->idle_until)
            linger_end(cs, c);
    }
}

void sb_conns_expire(struct sb_conns *cs, int64_t now_ms, struct sb_conns_expired *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&cs->lock);
    for (struct sb_conn *c = cs->head; c; c = c->next) {
        int64_t limit = c->phase == CONN_WAIT   ? cs->header_ms
                        : c->phase == CONN_BODY ? cs->body_ms
                                                : 0;
        if (c->shut || limit <= 0 || now_ms - c->since < limit || c->fd < 0)
            continue;
        /* MHD's read then sees the end of the stream and closes the
         * connection on its own thread; the socket is still open here (see
         * conn_closed). */
        shutdown(c->fd, SHUT_RDWR);
        c->shut = true;
        if (c->phase == CONN_BODY) {
            out->body++;
            snprintf(out->method, sizeof out->method, "%s", c->method ? c->method : "");
            sb_redact_path(c->path, out->path, sizeof out->path);
        } else if (c->requests) {
            out->idle++;
        } else {
            out->headers++;
        }
    }
    pthread_mutex_unlock(&cs->lock);
}
