/* sdnotify.h - the systemd notify protocol, without libsystemd.
 *
 * A service started with Type=notify tells systemd how it is doing by
 * sending datagrams of newline-separated VAR=VALUE assignments ("READY=1",
 * "STOPPING=1", "RELOADING=1", "STATUS=free text", "WATCHDOG=1") to the
 * AF_UNIX datagram socket named by $NOTIFY_SOCKET: a filesystem path
 * ("/run/systemd/notify") or, with a leading '@', an abstract socket name.
 * Outside systemd NOTIFY_SOCKET is unset and every call is a no-op, so
 * callers need no "am I under systemd?" branch. See sd_notify(3).
 *
 * Owned by sdnotify.c. Thread-safe (no state; one socket per call). The
 * environment is read through sb_env() (config.h). Children inherit
 * NOTIFY_SOCKET unless the caller builds their environment itself; a
 * supervisor that spawns processes (talon) should leave it out of theirs. */
#ifndef SB_SDNOTIFY_H
#define SB_SDNOTIFY_H

#include <stdint.h>

/* Sends state (one or more "VAR=VALUE" lines, e.g. "READY=1\nSTATUS=up") as
 * one datagram. Returns 1 when sent, 0 when NOTIFY_SOCKET is unset or empty
 * (nothing to do), SB_EINVAL when state is empty or NOTIFY_SOCKET is not an
 * absolute path or '@'-name that fits a sockaddr_un (vsock addresses are not
 * supported), SB_EIO when the socket could not be made or the send failed
 * (errno is left as the failing call set it). Never blocks for long: the
 * datagram goes to a local socket with MSG_DONTWAIT. */
int sb_sd_notify(const char *state);

/* printf-style sb_sd_notify; SB_ETOOBIG when the text exceeds 4 KiB. */
int sb_sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whether systemd expects WATCHDOG=1 pings from this process: returns 1 and
 * sets *usec to $WATCHDOG_USEC when it is set to a positive integer and
 * $WATCHDOG_PID is unset or names this process; 0 when no watchdog is asked
 * for (unset, or meant for another PID); SB_EINVAL when either variable is
 * not a valid number. Ping at about half the interval. */
int sb_sd_watchdog_usec(uint64_t *usec);

#endif
