/* httpd_conn.h - deadlines per connection of the HTTP server, internal to
 * httpd.c (see docs/internals/http.md, "Hostile clients").
 *
 * libmicrohttpd's own timeout is an idle timeout that every byte resets, so
 * a client trickling one header byte at a time holds its connection for
 * ever. This module tracks every accepted connection (through
 * MHD_OPTION_NOTIFY_CONNECTION) and the phase it is in; the daemon's
 * watchdog thread calls sb_conns_expire, which shuts down (shutdown(2)) the
 * socket of each connection past its phase's deadline, so that MHD sees the
 * end of the stream and closes it on its own thread. Deadlines are measured
 * from the start of the phase and nothing the client sends moves them:
 * - WAIT: from the accept, or the end of the previous response on a kept-
 *   alive connection, until the request's headers are in: header_ms;
 * - BODY: from the headers until the whole body is in: body_ms;
 * - BUSY: handler, suspended wait, response: no deadline here.
 *
 * Safety: the socket of an entry is open and belongs to its connection for
 * as long as the entry is on the list, because MHD calls
 * MHD_CONNECTION_NOTIFY_CLOSED (which takes the list lock to unlink the
 * entry) before it closes the socket, and the watchdog calls shutdown only
 * with that lock held. Phase changes come from MHD's thread of the
 * connection; the scan from the watchdog; all under the one lock.
 *
 * Lingering close: a request answered before its body was read (413 at the
 * headers) is closed by MHD right after the answer. Closing a socket with
 * unread input sends a reset, which makes a client still writing its body
 * fail (EPIPE) before it reads the answer. So NOTIFY_CLOSED keeps a dup of
 * such a socket (MHD has already shut down its sending side: the client has
 * the answer and a FIN), and the watchdog reads and drops what still comes
 * until the client closes, 2 s pass without data, body_ms pass, or 64 MiB
 * were dropped; at most 64 connections linger at once (more are closed at
 * once). Only the watchdog reads, closes and unlinks lingering entries. */
#ifndef SB_HTTPD_CONN_H
#define SB_HTTPD_CONN_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>

#include "err.h"

struct sb_conn;

struct sb_conns {
    pthread_mutex_t lock;      /* guards both lists and every entry on them */
    struct sb_conn *head;      /* open connections */
    struct sb_conn *lingering; /* closed by MHD, drained by the watchdog */
    int nlinger;
    int wake_fd; /* eventfd: wakes sb_conns_wait */
    int64_t header_ms, body_ms;
};

/* What one sb_conns_expire call shut down. */
struct sb_conns_expired {
    unsigned headers; /* no complete request headers in time (new connections) */
    unsigned idle;    /* kept-alive connections with no next request in time */
    unsigned body;    /* request bodies not complete in time */
    char method[16];  /* one of the body ones, for the log line */
    char path[160];   /* its path, redacted (sb_redact_path) */
};

/* Returns 0 or SB_EIO (no eventfd). */
int sb_conns_init(struct sb_conns *cs, int64_t header_ms, int64_t body_ms, struct sb_err *err);
/* After MHD_stop_daemon (every connection has been closed) and the
 * watchdog's end: closes the lingering sockets too. */
void sb_conns_destroy(struct sb_conns *cs);

/* The MHD_OPTION_NOTIFY_CONNECTION callback; cls is the struct sb_conns. A
 * connection that cannot be tracked (out of memory) is shut down at once:
 * none goes without its deadlines. */
void sb_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode code);

/* From MHD's thread of conn. The request's headers are in: its body phase
 * starts. method and path are borrowed until sb_conns_busy or
 * sb_conns_request_done (the log line of an expired body names them). */
void sb_conns_body(struct sb_conns *cs, struct MHD_Connection *conn, const char *method,
                   const char *path);
/* The body is in (or the answer is already queued): no deadline now. */
void sb_conns_busy(struct sb_conns *cs, struct MHD_Connection *conn);
/* A request ended (MHD_OPTION_NOTIFY_COMPLETED): the connection waits for
 * the next request's headers, from now. */
void sb_conns_request_done(struct sb_conns *cs, struct MHD_Connection *conn);
/* The request was answered before its body was read: when MHD closes the
 * connection, it lingers (see above). */
void sb_conns_linger(struct sb_conns *cs, struct MHD_Connection *conn);

/* From the watchdog: waits up to ms, or until sb_conns_wake, draining the
 * lingering connections meanwhile and ending those that are done. */
void sb_conns_wait(struct sb_conns *cs, int64_t ms);
/* Ends a sb_conns_wait early (any thread). */
void sb_conns_wake(struct sb_conns *cs);

/* From the watchdog: shuts down every connection past its deadline at
 * now_ms (monotonic) and says how many of each kind in *out. */
void sb_conns_expire(struct sb_conns *cs, int64_t now_ms, struct sb_conns_expired *out);

#endif
