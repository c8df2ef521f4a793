/* sdnotify.c - sends systemd notify datagrams to $NOTIFY_SOCKET and reads the
 * watchdog interval (see sdnotify.h for the protocol and the contract). No
 * global state: each notification opens, sends on and closes its own
 * socket, which costs microseconds and is done a handful of times per
 * process lifetime (plus watchdog pings). */
#include "sdnotify.h"

#include "config.h"
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Fills sa from NOTIFY_SOCKET's value; returns the address length, or 0 when
 * the value is not an address this implementation can use. */
static socklen_t notify_address(const char *path, struct sockaddr_un *sa)
{
    size_t n = strlen(path);
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (path[0] == '@') {
        /* Abstract namespace: a leading NUL, and the length counts exactly
         * the name's bytes (no terminator), as systemd binds it. */
        if (n < 2 || n > sizeof sa->sun_path)
            return 0;
        memcpy(sa->sun_path + 1, path + 1, n - 1);
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    }
    if (path[0] != '/' || n >= sizeof sa->sun_path)
        return 0;
    memcpy(sa->sun_path, path, n + 1);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

int sb_sd_notify(const char *state)
{
    const char *path = sb_env("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    if (!state || !*state)
        return SB_EINVAL;
    struct sockaddr_un sa;
    socklen_t salen = notify_address(path, &sa);
    if (salen == 0)
        return SB_EINVAL;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return SB_EIO;
    size_t len = strlen(state);
    ssize_t n;
    do {
        n = sendto(fd, state, len, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa, salen);
    } while (n < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    errno = saved;
    /* A datagram is sent whole or not at all. */
    return n == (ssize_t)len ? 1 : SB_EIO;
}

int sb_sd_notifyf(const char *fmt, ...)
{
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0)
        return SB_EINVAL;
    if ((size_t)n >= sizeof text)
        return SB_ETOOBIG;
    return sb_sd_notify(text);
}

/* Parses a whole decimal unsigned number; -1 when s is not one. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int sb_sd_watchdog_usec(uint64_t *usec)
{
    const char *us = sb_env("WATCHDOG_USEC");
    if (!us || !*us)
        return 0;
    uint64_t v, pid;
    if (parse_u64(us, &v) || v == 0)
        return SB_EINVAL;
    const char *ps = sb_env("WATCHDOG_PID");
    if (ps && *ps) {
        if (parse_u64(ps, &pid) || pid == 0)
            return SB_EINVAL;
        if (pid != (uint64_t)getpid())
            return 0;
    }
    *usec = v;
    return 1;
}
