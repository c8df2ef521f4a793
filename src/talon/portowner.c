/* portowner.c - finding and stopping the process that listens on a port
 * (see portowner.h). /proc/net/tcp{,6} line format (proc(5)):
 *   sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
 * e.g. "0: 0100007F:0C1F 00000000:0000 0A ... 1000 0 123456 ..."; the port
 * is the hex after the local address's ':' and state 0A is LISTEN. */
#include "talon/portowner.h"
#include "common/clock.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_INODES 16
#define TCP_LISTEN 0x0A

/* Appends the inodes of LISTEN sockets on port found in file; returns how
 * many are known now, or -1 when the file cannot be read. */
static int listen_inodes(const char *file, int port, unsigned long *inodes, int n)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return errno == ENOENT ? n : -1; /* no IPv6: fine */
    char line[512];
    if (!fgets(line, sizeof line, f)) { /* header */
        fclose(f);
        return n;
    }
    while (fgets(line, sizeof line, f)) {
        unsigned lport, state;
        unsigned long inode;
        if (sscanf(line,
                   " %*d: %*[0-9A-Fa-f]:%X %*[0-9A-Fa-f]:%*X %X %*X:%*X %*X:%*X %*X %*u %*u %lu",
                   &lport, &state, &inode) != 3)
            continue;
        if ((int)lport == port && state == TCP_LISTEN && inode != 0 && n < MAX_INODES)
            inodes[n++] = inode;
    }
    fclose(f);
    return n;
}

void talon_pid_cmdline(pid_t pid, char *out, size_t outsz)
{
    char path[64];
    out[0] = '\0';
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, out, outsz - 1);
    close(fd);
    if (n <= 0) {
        out[0] = '\0';
        return;
    }
    while (n > 0 && out[n - 1] == '\0')
        n--;
    for (ssize_t i = 0; i < n; i++)
        if (out[i] == '\0' || !isprint((unsigned char)out[i]))
            out[i] = ' ';
    out[n] = '\0';
}

/* The pid with an fd on one of the inodes, or 0. */
static pid_t inode_owner(const unsigned long *inodes, int n)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return 0;
    pid_t found = 0;
    struct dirent *de;
    while (!found && (de = readdir(proc))) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        char fddir[300];
        snprintf(fddir, sizeof fddir, "/proc/%s/fd", de->d_name);
        DIR *fds = opendir(fddir);
        if (!fds)
            continue; /* gone, or another user's */
        struct dirent *fe;
        while (!found && (fe = readdir(fds))) {
            if (fe->d_name[0] == '.')
                continue;
            char link[600], target[64];
            snprintf(link, sizeof link, "%s/%s", fddir, fe->d_name);
            ssize_t tl = readlink(link, target, sizeof target - 1);
            if (tl <= 0)
                continue;
            target[tl] = '\0';
            unsigned long ino;
            if (sscanf(target, "socket:[%lu]", &ino) != 1)
                continue;
            for (int i = 0; i < n; i++)
                if (inodes[i] == ino)
                    found = (pid_t)atoi(de->d_name);
        }
        closedir(fds);
    }
    closedir(proc);
    return found;
}

int talon_port_owner(int port, struct talon_port_owner *out, struct sb_err *err)
{
    unsigned long inodes[MAX_INODES];
    memset(out, 0, sizeof *out);
    int n = listen_inodes("/proc/net/tcp", port, inodes, 0);
    if (n >= 0)
        n = listen_inodes("/proc/net/tcp6", port, inodes, n);
    if (n < 0)
        return sb_err_errno(err, SB_EIO, "cannot read /proc/net/tcp");
    if (n == 0)
        return 0;
    out->pid = inode_owner(inodes, n);
    if (out->pid)
        talon_pid_cmdline(out->pid, out->cmd, sizeof out->cmd);
    return 1;
}

static bool port_free(int port)
{
    struct talon_port_owner o;
    struct sb_err err;
    return talon_port_owner(port, &o, &err) == 0;
}

static bool wait_free(int port, int64_t ms)
{
    int64_t deadline = sb_mono_ms() + ms;
    for (;;) {
        if (port_free(port))
            return true;
        if (sb_mono_ms() >= deadline)
            return false;
        sb_sleep_ms(50);
    }
}

int talon_port_takeover(int port, pid_t pid, int grace_ms, struct sb_err *err)
{
    if (pid <= 0)
        return sb_err_set(err, SB_EAUTH,
                          "port %d is held by a process talon cannot see (another user?)", port);
    if (kill(pid, SIGTERM) != 0 && errno != ESRCH)
        return sb_err_errno(err, SB_EAUTH, "cannot signal pid %d holding port %d", (int)pid, port);
    if (wait_free(port, grace_ms))
        return 0;
    if (getpgid(pid) == pid)
        kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    if (wait_free(port, 2000))
        return 0;
    return sb_err_set(err, SB_EBUSY, "port %d is still held after SIGKILL to pid %d", port,
                      (int)pid);
}
