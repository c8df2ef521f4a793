/* daemon.h - the secrets daemon: a single-threaded poll loop serving the wire
 * protocol (proto.c, handled by ops.c) on a Unix socket, over the store
 * (store.c), the lease table (lease.c) and the audit trail (audit.c), letting
 * in only the peers peers.c admits. */
#ifndef SECRETS_DAEMON_H
#define SECRETS_DAEMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

/* Connections open at once, in all. */
#define SECRETS_MAX_CONNS 64
/* Of those, the last ones only the daemon's own uid and root may take (when
 * they are allowed at all), so other uids filling the table do not lock the
 * operator out. */
#define SECRETS_RESERVED_CONNS 4
/* Default cap on the connections one uid holds at once (--max-conns-per-uid). */
#define SECRETS_CONNS_PER_UID 16

struct secrets_daemon_config {
    const char *socket_path;
    const char *store_dir;
    const char *key_file;        /* NULL = STORE/master.key */
    const char *passphrase_file; /* for a passphrase-protected store */
    const uid_t *allow_uids;     /* peers allowed by uid ... */
    size_t n_allow_uids;
    const gid_t *allow_gids; /* ... or by primary gid (SO_PEERCRED) */
    size_t n_allow_gids;
    long long socket_gid;      /* group of the socket file; -1 = leave as created */
    int64_t client_timeout_ms; /* a connection must send a full request (and take
                                  its answer) within this, else it is closed */
    size_t max_conns_per_uid;  /* 0 = SECRETS_CONNS_PER_UID; at most SECRETS_MAX_CONNS */
};

/* Opens the store, binds the socket and serves until SIGTERM or SIGINT, then
 * removes the socket file and wipes everything. Returns 0 after a clean stop;
 * on a startup failure, the SB_E* code with err filled (nothing is left
 * behind). Logs JSON lines on stderr: "listening" once ready, "stopped" at
 * the end. */
int secrets_daemon_run(const struct secrets_daemon_config *cfg, struct sb_err *err);

#endif
