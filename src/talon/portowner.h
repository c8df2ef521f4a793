/* portowner.h - who listens on a TCP port: the LISTEN sockets of
 * /proc/net/tcp and /proc/net/tcp6 with that local port (any address),
 * their inodes matched against /proc/<pid>/fd entries ("socket:[inode]").
 * Used before a worker starts: a port held by a process talon did not start
 * is refused (naming pid and command) or, with --takeover, stopped. Owned by
 * portowner.c; reads /proc only, no state. */
#ifndef TALON_PORTOWNER_H
#define TALON_PORTOWNER_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"

struct talon_port_owner {
    pid_t pid;     /* 0 when the socket's process is not visible (another user) */
    char cmd[256]; /* its command line, arguments separated by spaces; "" if unknown */
};

/* Returns 1 when something listens on port (out filled as far as visible),
 * 0 when nothing does, SB_EIO when /proc/net/tcp cannot be read. */
int talon_port_owner(int port, struct talon_port_owner *out, struct sb_err *err);

/* The command line of pid into out ("" when gone or not readable). */
void talon_pid_cmdline(pid_t pid, char *out, size_t outsz);

/* Stops the process holding port: SIGTERM, waits up to grace_ms for the
 * port to be released, then SIGKILL (its process group too when it leads
 * one) and waits up to 2 s more. Returns 0 when the port is free, SB_EBUSY
 * when it is still held, SB_EAUTH when the signal was refused. Blocks at
 * most grace_ms + 2 s. */
int talon_port_takeover(int port, pid_t pid, int grace_ms, struct sb_err *err);

#endif
