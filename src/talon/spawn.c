/* spawn.c - starting and watching one worker process (see spawn.h).
 *
 * Invariants: between fork and exec the child calls only async-signal-safe
 * functions (talon has threads: the watchdog's and the health server's);
 * the child inherits fds 0-2 only (everything else is close-on-exec in it);
 * it starts with no blocked signals and default dispositions (talon blocks
 * the signals its loop reads and ignores SIGPIPE), leads its own process
 * group, and gets SIGTERM if talon dies (PR_SET_PDEATHSIG), so an orphan
 * drains instead of holding the port forever. An exec failure comes back
 * over a close-on-exec pipe, so talon_child_spawn reports it directly. */
#include "talon/spawn.h"
#include "common/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PUMP_MAX_PER_CALL (1 << 20)

enum { STAGE_CHDIR = 1, STAGE_EXEC = 2, STAGE_SETUP = 3 };

struct exec_report {
    int stage;
    int err;
};

static int is_exec_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

int talon_resolve_command(const char *argv0, const char *path, const char *dir, char *out,
                          size_t outsz, struct sb_err *err)
{
    if (strchr(argv0, '/')) {
        /* relative to the worker's directory, as the child will see it */
        int n = argv0[0] == '/' || !dir ? snprintf(out, outsz, "%s", argv0)
                                        : snprintf(out, outsz, "%s/%s", dir, argv0);
        if (n < 0 || (size_t)n >= outsz)
            return sb_err_set(err, SB_EINVAL, "command path too long");
        if (!is_exec_file(out))
            return sb_err_set(err, SB_ENOTFOUND, "command '%s' is not an executable file%s%s",
                              argv0, dir ? " in " : "", dir ? dir : "");
        if (argv0[0] != '/') /* the child chdirs first: keep the relative form */
            snprintf(out, outsz, "%s", argv0);
        return 0;
    }
    for (const char *p = path; p && *p;) {
        const char *c = strchr(p, ':');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (n) {
            int w = snprintf(out, outsz, "%.*s/%s", (int)n, p, argv0);
            if (w > 0 && (size_t)w < outsz && is_exec_file(out))
                return 0;
        }
        p = c ? c + 1 : NULL;
    }
    return sb_err_set(err, SB_ENOTFOUND, "command '%s' not found in the worker's PATH (%s)", argv0,
                      path ? path : "");
}

/* A duplicate of fd at >= 3, close-on-exec (so dup2 onto 0-2 is safe). */
static int high_fd(int fd)
{
    if (fd < 0)
        return -1;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return h;
}

static int open_append(const char *path)
{
    return high_fd(open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
}

/* Child side, between fork and exec: async-signal-safe calls only (talon
 * has threads; a lock another thread held at the fork stays held here, so
 * no malloc, stdio or logging). Never returns. */
static void child_exec(const char *file, const struct talon_spawn_req *r, pid_t parent, int in_fd,
                       int out_fd, int err_fd, int report_fd)
{
    struct exec_report rep = { STAGE_SETUP, 0 };
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) /* talon died before the prctl */
        _exit(1);
    if (dup2(in_fd, 0) < 0 || (out_fd >= 0 && dup2(out_fd, 1) < 0) || dup2(err_fd, 2) < 0)
        goto fail;
    if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) != 0) {
        /* kernels before 5.11: mark them one by one */
        long max = sysconf(_SC_OPEN_MAX);
        for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
            fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    if (r->dir && chdir(r->dir) != 0) {
        rep.stage = STAGE_CHDIR;
        goto fail;
    }
    rep.stage = STAGE_EXEC;
    execve(file, r->argv, r->envp);
fail:
    rep.err = errno;
    ssize_t w = write(report_fd, &rep, sizeof rep);
    (void)w;
    _exit(127);
}

/* The descriptors a spawn opens in talon; -1 when not (or no longer) open. */
struct spawn_fds {
    int in;      /* /dev/null: the worker's stdin */
    int out;     /* [worker] log_stdout, or -1: the worker keeps talon's stdout */
    int errp[2]; /* the worker's stderr: talon reads [0] (talon_child_pump) */
    int rep[2];  /* the exec report: the child writes [1] only when exec fails */
};

/* Opens what the child inherits and the two pipes, and c's stderr copy
 * ([worker] log_stderr, else talon's own stderr). Parent side, before the
 * fork: anything may be called here. */
static int open_spawn_fds(const struct talon_spawn_req *r, struct talon_child *c,
                          struct spawn_fds *f, struct sb_err *err)
{
    f->in = high_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
    f->out = r->stdout_file ? open_append(r->stdout_file) : -1;
    if (f->in < 0)
        return sb_err_errno(err, SB_EIO, "cannot open /dev/null");
    if (r->stdout_file && f->out < 0)
        return sb_err_errno(err, SB_EIO, "cannot open [worker] log_stdout %s", r->stdout_file);
    if (r->stderr_file) {
        c->err_out_fd = open_append(r->stderr_file);
        if (c->err_out_fd < 0)
            return sb_err_errno(err, SB_EIO, "cannot open [worker] log_stderr %s", r->stderr_file);
    } else {
        c->err_out_fd = 2;
    }
    if (pipe2(f->errp, O_CLOEXEC) != 0 || pipe2(f->rep, O_CLOEXEC) != 0)
        return sb_err_errno(err, SB_EIO, "cannot create pipes");
    f->errp[0] = high_fd(f->errp[0]);
    f->errp[1] = high_fd(f->errp[1]);
    return 0;
}

static void close_spawn_fds(struct spawn_fds *f)
{
    for (int i = 0; i < 2; i++) {
        if (f->errp[i] >= 0)
            close(f->errp[i]);
        if (f->rep[i] >= 0)
            close(f->rep[i]);
    }
    if (f->in >= 0)
        close(f->in);
    if (f->out >= 0)
        close(f->out);
}

/* Waits for the child's exec on the report pipe (rep_fd, its write end
 * closed in talon): EOF means execve succeeded (the pipe is close-on-exec);
 * a report means it failed, and the child is reaped here. Returns 0, or the
 * failure naming the stage (chdir or exec). */
static int await_exec(pid_t pid, int rep_fd, const struct talon_spawn_req *r, const char *file,
                      struct sb_err *err)
{
    struct exec_report report;
    ssize_t got;
    while ((got = read(rep_fd, &report, sizeof report)) < 0 && errno == EINTR)
        ;
    if (got != (ssize_t)sizeof report)
        return 0;
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    errno = report.err;
    return report.stage == STAGE_CHDIR
               ? sb_err_errno(err, SB_EIO, "cannot enter [worker] dir %s", r->dir)
               : sb_err_errno(err, SB_EIO, "cannot run %s", file);
}

int talon_child_spawn(const struct talon_spawn_req *r, struct talon_child **out, struct sb_err *err)
{
    char file[4096];
    int rc = talon_resolve_command(r->argv[0], r->path, r->dir, file, sizeof file, err);
    if (rc)
        return rc;
    struct talon_child *c = calloc(1, sizeof *c);
    if (!c)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    c->err_fd = c->err_out_fd = -1;
    c->port = r->port;
    struct spawn_fds f = { .in = -1, .out = -1, .errp = { -1, -1 }, .rep = { -1, -1 } };
    if ((rc = open_spawn_fds(r, c, &f, err)))
        goto out;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rc = sb_err_errno(err, SB_EIO, "fork failed");
        goto out;
    }
    /* The child runs child_exec and nothing else: from the fork to execve
     * only async-signal-safe calls, so nothing may be added on this branch
     * before it (everything it needs was prepared above, before the fork). */
    if (pid == 0)
        child_exec(file, r, parent, f.in, f.out, f.errp[1], f.rep[1]);
    setpgid(pid, pid); /* also here, so it holds whoever runs first */
    close(f.rep[1]);
    f.rep[1] = -1;
    if ((rc = await_exec(pid, f.rep[0], r, file, err)))
        goto out;
    c->pid = pid;
    c->started_ms = sb_mono_ms();
    c->err_fd = f.errp[0];
    f.errp[0] = -1;
    fcntl(c->err_fd, F_SETFL, fcntl(c->err_fd, F_GETFL) | O_NONBLOCK);
    *out = c;
    c = NULL;
out:
    close_spawn_fds(&f);
    if (c) {
        if (c->err_out_fd > 2)
            close(c->err_out_fd);
        free(c);
    }
    return rc;
}

static void tail_add(struct talon_child *c, const char *p, size_t n)
{
    if (n >= TALON_TAIL_MAX) {
        memcpy(c->tail, p + n - TALON_TAIL_MAX, TALON_TAIL_MAX);
        c->tail_len = TALON_TAIL_MAX;
        return;
    }
    if (c->tail_len + n > TALON_TAIL_MAX) {
        size_t drop = c->tail_len + n - TALON_TAIL_MAX;
        memmove(c->tail, c->tail + drop, c->tail_len - drop);
        c->tail_len -= drop;
    }
    memcpy(c->tail + c->tail_len, p, n);
    c->tail_len += n;
}

void talon_child_pump(struct talon_child *c)
{
    char buf[16384];
    size_t total = 0;
    while (c->err_fd >= 0 && total < PUMP_MAX_PER_CALL) {
        ssize_t n = read(c->err_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) { /* EOF (the worker and its children closed stderr) or error */
            close(c->err_fd);
            c->err_fd = -1;
            return;
        }
        total += (size_t)n;
        tail_add(c, buf, (size_t)n);
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(c->err_out_fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break; /* the copy is best effort; the tail is kept anyway */
            off += w;
        }
    }
}

bool talon_child_reap(struct talon_child *c)
{
    if (c->exited)
        return true;
    int st;
    pid_t got;
    while ((got = waitpid(c->pid, &st, WNOHANG)) < 0 && errno == EINTR)
        ;
    if (got == c->pid) {
        c->exited = true;
        c->wstatus = st;
        /* Nothing the worker started outlives it: its process group (which
         * keeps its id while any member lives, so this cannot hit others)
         * goes with it. */
        kill(-c->pid, SIGKILL);
        talon_child_pump(c); /* what it wrote last */
    } else if (got < 0 && errno == ECHILD) {
        c->exited = true; /* reaped elsewhere: nothing more to learn */
        c->wstatus = 0;
    }
    return c->exited;
}

void talon_child_describe(const struct talon_child *c, char *out, size_t outsz)
{
    if (!c->exited)
        snprintf(out, outsz, "running");
    else if (WIFEXITED(c->wstatus))
        snprintf(out, outsz, "exit %d", WEXITSTATUS(c->wstatus));
    else if (WIFSIGNALED(c->wstatus))
        snprintf(out, outsz, "signal %d", WTERMSIG(c->wstatus));
    else
        snprintf(out, outsz, "status %d", c->wstatus);
}

void talon_child_tail(const struct talon_child *c, char *out, size_t outsz)
{
    size_t n = c->tail_len < outsz - 1 ? c->tail_len : outsz - 1;
    memcpy(out, c->tail + c->tail_len - n, n);
    out[n] = '\0';
}

void talon_child_term(struct talon_child *c)
{
    if (!c->exited)
        kill(c->pid, SIGTERM);
}

void talon_child_kill(struct talon_child *c)
{
    if (!c->exited) {
        kill(-c->pid, SIGKILL);
        kill(c->pid, SIGKILL);
    }
}

void talon_child_free(struct talon_child *c)
{
    if (!c)
        return;
    if (c->err_fd >= 0)
        close(c->err_fd);
    if (c->err_out_fd > 2)
        close(c->err_out_fd);
    free(c);
}
