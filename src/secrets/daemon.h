/* daemon.h - the secrets daemon: a single-threaded poll loop serving the wire
 * protocol (proto.c) on a Unix socket, over the store (store.c), the lease
 * table (lease.c) and the audit trail (audit.c). */
#ifndef SECRETS_DAEMON_H
#define SECRETS_DAEMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

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
};

/* Opens the store, binds the socket and serves until SIGTERM or SIGINT, then
 * removes the socket file and wipes everything. Returns 0 after a clean stop;
 * on a startup failure, the SB_E* code with err filled (nothing is left
 * behind). Logs JSON lines on stderr: "listening" once ready, "stopped" at
 * the end. */
int secrets_daemon_run(const struct secrets_daemon_config *cfg, struct sb_err *err);

#endif
