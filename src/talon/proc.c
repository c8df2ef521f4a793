/* proc.c - running commands without a shell (see proc.h): shell-like word
 * splitting, and talon_run_command, which runs one short-lived command with a
 * fixed environment, optional stdin, a capped output tail and a timeout.
 *
 * Owns: nothing global. Every call is self-contained and may run on any
 * thread (talon runs them on the watchdog thread). Invariants:
 *   - the command is looked up in the PATH of the envp it will run with, never
 *     in talon's own PATH, so what `talon --check` sees is what runs;
 *   - the child leads its own process group; on timeout the whole group gets
 *     SIGTERM, then SIGKILL after TALON_KILL_GRACE_MS;
 *   - every forked child is reaped before talon_run_command returns (no
 *     zombies), whatever happened;
 *   - the child inherits only fds 0-2 (its stdin, and one pipe for stdout +
 *     stderr); everything else talon holds is close-on-exec in the child;
 *   - between fork and exec the child calls only async-signal-safe functions
 *     (talon is multi-threaded). */
#include "talon/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

#define TALON_KILL_GRACE_MS 2000       /* SIGTERM -> SIGKILL */
#define TALON_DEFAULT_TIMEOUT_MS 60000 /* timeout_ms <= 0 */
#define TALON_PATH_MAX 4096

/* ---- word splitting ---------------------------------------------------- */

struct words {
    char **v;
    size_t n, cap;
};

static int words_push(struct words *w, const char *s, size_t len)
{
    if (w->n + 2 > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        char **v = realloc(w->v, cap * sizeof *v);
        if (!v)
            return SB_ENOMEM;
        w->v = v;
        w->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return SB_ENOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    w->v[w->n++] = copy;
    w->v[w->n] = NULL;
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The word being split out of the line. Its text never outgrows the line
 * (every rule below copies at most what it consumes), so it is allocated
 * once at the line's length and written without bounds checks. */
struct word {
    char *text;
    size_t len;
    int started; /* "" is a word too: a quote pair starts one */
};

/* '...' at *p: everything up to the next quote, literally. */
static int take_single_quoted(const char *line, const char **p, struct word *wd, struct sb_err *err)
{
    const char *q = strchr(*p + 1, '\'');
    if (!q)
        return sb_err_set(err, SB_EINVAL, "unterminated single quote at column %zu",
                          (size_t)(*p - line) + 1);
    memcpy(wd->text + wd->len, *p + 1, (size_t)(q - *p - 1));
    wd->len += (size_t)(q - *p - 1);
    wd->started = 1;
    *p = q + 1;
    return 0;
}

/* "..." at *p: a backslash escapes only " \ $ ` (a backslash-newline
 * disappears); any other backslash stays. */
static int take_double_quoted(const char *line, const char **p, struct word *wd, struct sb_err *err)
{
    const char *start = *p, *c = *p + 1;
    for (;;) {
        if (!*c)
            return sb_err_set(err, SB_EINVAL, "unterminated double quote at column %zu",
                              (size_t)(start - line) + 1);
        if (*c == '"')
            break;
        if (*c == '\\' && c[1] && strchr("\"\\$`\n", c[1])) {
            if (c[1] != '\n')
                wd->text[wd->len++] = c[1];
            c += 2;
            continue;
        }
        wd->text[wd->len++] = *c++;
    }
    wd->started = 1;
    *p = c + 1;
    return 0;
}

/* A backslash outside quotes at *p: the next character is literal, and a
 * backslash-newline disappears (it does not start a word). */
static int take_escaped(const char *line, const char **p, struct word *wd, struct sb_err *err)
{
    const char *c = *p;
    if (!c[1])
        return sb_err_set(err, SB_EINVAL, "trailing backslash at column %zu",
                          (size_t)(c - line) + 1);
    if (c[1] != '\n') {
        wd->text[wd->len++] = c[1];
        wd->started = 1;
    }
    *p = c + 2;
    return 0;
}

/* One piece of a word at *p (not whitespace): a quoted part, an escape or
 * an ordinary character. Advances *p past it. */
static int take_word_part(const char *line, const char **p, struct word *wd, struct sb_err *err)
{
    switch (**p) {
    case '\'': return take_single_quoted(line, p, wd, err);
    case '"': return take_double_quoted(line, p, wd, err);
    case '\\': return take_escaped(line, p, wd, err);
    default:
        wd->text[wd->len++] = *(*p)++;
        wd->started = 1;
        return 0;
    }
}

/* Ends the word being built: pushed when it was started, then emptied. */
static int end_word(struct words *w, struct word *wd)
{
    int rc = wd->started ? words_push(w, wd->text, wd->len) : 0;
    wd->len = 0;
    wd->started = 0;
    return rc;
}

/* The rules, a subset of POSIX sh token recognition with no expansion:
 * whitespace separates words; '...' is literal; inside "..." a backslash
 * escapes only " \ $ ` (and a backslash-newline disappears), any other
 * backslash stays; outside quotes a backslash makes the next character
 * literal (backslash-newline disappears). Quotes join with adjacent text
 * ("a"'b'c is one word "abc") and "" is an empty word. $, *, |, ; and the
 * like are ordinary characters: nothing is expanded or interpreted. */
int talon_split_words(const char *line, char ***argv_out, struct sb_err *err)
{
    *argv_out = NULL;
    if (!line)
        return sb_err_set(err, SB_EINVAL, "empty command");
    struct word wd = { .text = malloc(strlen(line) + 1) };
    if (!wd.text)
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    struct words w = { 0 };
    int rc = 0;
    for (const char *p = line; *p && !rc;) {
        if (is_space(*p)) {
            if (end_word(&w, &wd) != 0)
                rc = sb_err_set(err, SB_ENOMEM, "out of memory");
            p++;
        } else {
            rc = take_word_part(line, &p, &wd, err);
        }
    }
    if (!rc && end_word(&w, &wd) != 0)
        rc = sb_err_set(err, SB_ENOMEM, "out of memory");
    free(wd.text);
    if (!rc && w.n == 0)
        rc = sb_err_set(err, SB_EINVAL, "empty command");
    else if (!rc && w.v[0][0] == '\0')
        rc = sb_err_set(err, SB_EINVAL, "empty command name");
    if (rc) {
        if (w.v)
            talon_words_free(w.v);
        return rc;
    }
    *argv_out = w.v;
    return 0;
}

void talon_words_free(char **argv)
{
    if (!argv)
        return;
    for (char **p = argv; *p; p++)
        free(*p);
    free(argv);
}

/* ---- command lookup ---------------------------------------------------- */

static const char *env_path(char *const envp[])
{
    for (size_t i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], "PATH=", 5) == 0)
            return envp[i] + 5;
    return NULL;
}

static int is_executable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Resolves name into out: as given when it contains a slash, else the first
 * executable regular file in the PATH of envp (empty entries are skipped: an
 * implicit "current directory" has no place in a supervisor). */
static int resolve_command(const char *name, char *const envp[], char *out, size_t outsz,
                           struct sb_err *err)
{
    if (strchr(name, '/')) {
        if (strlen(name) >= outsz)
            return sb_err_set(err, SB_EINVAL, "command path too long: %.80s...", name);
        if (!is_executable_file(name))
            return sb_err_errno(err, SB_ENOTFOUND, "command %s is not an executable file", name);
        strcpy(out, name);
        return 0;
    }
    const char *path = env_path(envp);
    if (!path || !*path)
        return sb_err_set(err, SB_ENOTFOUND,
                          "command %s: no PATH in its environment to look it up in", name);
    const char *p = path;
    while (*p) {
        const char *colon = strchr(p, ':');
        size_t dl = colon ? (size_t)(colon - p) : strlen(p);
        if (dl > 0 && dl + 1 + strlen(name) < outsz) {
            memcpy(out, p, dl);
            out[dl] = '/';
            strcpy(out + dl + 1, name);
            if (is_executable_file(out))
                return 0;
        }
        if (!colon)
            break;
        p = colon + 1;
    }
    return sb_err_set(err, SB_ENOTFOUND, "command %s not found in PATH=%s", name, path);
}

/* ---- running ----------------------------------------------------------- */

/* Child side, between fork and exec: async-signal-safe calls only. Reports
 * an exec failure's errno on errfd (close-on-exec, so a successful exec
 * closes it and the parent reads EOF). */
static void child_exec(const char *file, char *const argv[], char *const envp[], int in_fd,
                       int out_fd, int errfd)
{
    setpgid(0, 0);
    /* talon may block or ignore signals; the command starts with defaults. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Lift the sources above 2 first so dup2 cannot clobber one with another
     * (talon could have been started with 0-2 closed). */
    int in = fcntl(in_fd, F_DUPFD_CLOEXEC, 3);
    int out = fcntl(out_fd, F_DUPFD_CLOEXEC, 3);
    int ok = in >= 0 && out >= 0 && dup2(in, 0) == 0 && dup2(out, 1) == 1 && dup2(out, 2) == 2;
    if (ok) {
        /* Close-on-exec for everything else talon holds (sockets, the
         * store, other threads' pipes), errfd included. */
        if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) != 0) {
            long max = sysconf(_SC_OPEN_MAX);
            if (max < 0 || max > 65536)
                max = 65536;
            for (int fd = 3; fd < max; fd++)
                if (fd != errfd)
                    close(fd);
        }
        execve(file, argv, envp);
    }
    int e = errno;
    ssize_t wr = write(errfd, &e, sizeof e);
    (void)wr;
    _exit(127);
}

/* Keeps the last TALON_OUTPUT_MAX bytes of what the command printed. The
 * buffer's own maximum is the same size, so a mistake here fails the append
 * (SB_ETOOBIG) instead of letting a chatty command grow talon's memory. */
static void keep_tail(struct sb_buf *b, const char *data, size_t n)
{
    if (n >= TALON_OUTPUT_MAX) {
        data += n - TALON_OUTPUT_MAX;
        n = TALON_OUTPUT_MAX;
    }
    if (b->len + n > TALON_OUTPUT_MAX) {
        size_t drop = b->len + n - TALON_OUTPUT_MAX;
        memmove(b->data, b->data + drop, b->len - drop);
        b->len -= drop;
        b->data[b->len] = '\0';
    }
    sb_buf_append(b, data, n); /* within the cap by construction */
}

/* Writes to the stdin pipe without letting SIGPIPE kill talon when the
 * command exits without reading: SIGPIPE is blocked on this thread for the
 * write and a SIGPIPE it raised is consumed. Returns bytes written or -1. */
static ssize_t write_nosigpipe(int fd, const char *p, size_t n)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t w = write(fd, p, n);
    int saved = errno;
    if (w < 0 && errno == EPIPE && !was_pending) {
        struct timespec zero = { 0, 0 };
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return w;
}

static void kill_group(pid_t pid, int sig)
{
    kill(-pid, sig);
    kill(pid, sig); /* in case it left its group */
}

/* Reaps pid (blocking), filling exit_code/signal. */
static void reap(pid_t pid, struct talon_cmd_result *r)
{
    int status = 0;
    pid_t got;
    while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (got != pid) {
        /* Someone else reaped it (SIGCHLD ignored, or a waitpid(-1)
         * elsewhere in talon): the outcome is unknown, not a success. */
        r->exit_code = -1;
        r->signal = 0;
    } else if (WIFEXITED(status)) {
        r->exit_code = WEXITSTATUS(status);
        r->signal = 0;
    } else if (WIFSIGNALED(status)) {
        r->exit_code = -1;
        r->signal = WTERMSIG(status);
    }
}

/* Whether pid has exited, without reaping it: while it stays a zombie its
 * pid (and so its process group id) cannot be reused, so a last kill of the
 * group cannot hit a stranger. */
static int has_exited(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
        if (errno != EINTR)
            return 1; /* not our child any more: nothing to wait for */
    }
    return si.si_pid == pid;
}

/* Reads what is buffered in fd (non-blocking), at most 64 KiB: a background
 * process that inherited the pipe may keep writing forever. */
static void drain(int fd, struct sb_buf *out)
{
    char chunk[4096];
    for (int i = 0; i < 16; i++) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n > 0)
            keep_tail(out, chunk, (size_t)n);
        else if (n < 0 && errno == EINTR)
            continue;
        else
            return;
    }
}

/* The supervision loop: feeds stdin, collects output, notices the exit
 * (through a pidfd, or by checking every 20 ms where pidfds are not
 * available) and enforces the deadline: SIGTERM to the group, SIGKILL
 * TALON_KILL_GRACE_MS later, and SIGKILL again once the leader is gone for
 * members that outlived it. Returns with pid reaped. */
static void supervise(pid_t pid, int in_w, int out_r, const char *stdin_data, int timeout_ms,
                      struct talon_cmd_result *r)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    size_t in_len = stdin_data ? strlen(stdin_data) : 0, in_off = 0;
    if (in_w >= 0 && in_len == 0) {
        close(in_w);
        in_w = -1;
    }
    int64_t deadline = sb_mono_ms() + timeout_ms;
    int64_t kill_at = -1; /* when SIGKILL follows the SIGTERM */
    int killed = 0;
    while (!has_exited(pid)) {
        int64_t now = sb_mono_ms();
        if (!r->timed_out && now >= deadline) {
            r->timed_out = true;
            kill_group(pid, SIGTERM);
            kill_at = now + TALON_KILL_GRACE_MS;
        }
        if (!killed && kill_at >= 0 && now >= kill_at) {
            kill_group(pid, SIGKILL);
            killed = 1;
        }
        struct pollfd pf[3];
        int n = 0, i_out = -1, i_in = -1;
        if (out_r >= 0) {
            i_out = n;
            pf[n++] = (struct pollfd){ .fd = out_r, .events = POLLIN };
        }
        if (in_w >= 0) {
            i_in = n;
            pf[n++] = (struct pollfd){ .fd = in_w, .events = POLLOUT };
        }
        if (pidfd >= 0)
            pf[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
        int64_t wait = killed ? 100 : (kill_at >= 0 ? kill_at : deadline) - now;
        if (pidfd < 0 && wait > 20)
            wait = 20;
        if (wait < 0)
            wait = 0;
        int pr = poll(pf, (nfds_t)n, (int)wait);
        if (pr <= 0)
            continue;
        if (i_out >= 0 && (pf[i_out].revents & (POLLIN | POLLHUP | POLLERR))) {
            char chunk[4096];
            ssize_t got = read(out_r, chunk, sizeof chunk);
            if (got > 0) {
                keep_tail(&r->output, chunk, (size_t)got);
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(out_r);
                out_r = -1;
            }
        }
        if (i_in >= 0 && (pf[i_in].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write_nosigpipe(in_w, stdin_data + in_off, in_len - in_off);
            if (w > 0)
                in_off += (size_t)w;
            if ((w < 0 && errno != EINTR && errno != EAGAIN) || in_off >= in_len) {
                close(in_w);
                in_w = -1;
            }
        }
    }
    if (r->timed_out)
        kill_group(pid, SIGKILL);
    reap(pid, r);
    /* The command is gone; take what is already in the pipe but do not wait
     * for a background process that inherited it. */
    if (out_r >= 0) {
        fcntl(out_r, F_SETFL, fcntl(out_r, F_GETFL) | O_NONBLOCK);
        drain(out_r, &r->output);
        close(out_r);
    }
    if (in_w >= 0)
        close(in_w);
    if (pidfd >= 0)
        close(pidfd);
}

int talon_run_command(char *const argv[], char *const envp[], const char *stdin_data,
                      int timeout_ms, struct talon_cmd_result *result, struct sb_err *err)
{
    memset(result, 0, sizeof *result);
    result->output = (struct sb_buf)SB_BUF_INIT(TALON_OUTPUT_MAX); /* the tail, see keep_tail */
    if (timeout_ms <= 0)
        timeout_ms = TALON_DEFAULT_TIMEOUT_MS;
    if (!argv || !argv[0] || !argv[0][0])
        return sb_err_set(err, SB_EINVAL, "empty command");
    char file[TALON_PATH_MAX];
    int rc = resolve_command(argv[0], envp, file, sizeof file, err);
    if (rc)
        return rc;

    int in_pipe[2] = { -1, -1 }, out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
    int in_fd = -1;
    if (stdin_data) {
        if (pipe2(in_pipe, O_CLOEXEC) != 0)
            return sb_err_errno(err, SB_EIO, "cannot run %s: pipe", argv[0]);
        in_fd = in_pipe[0];
        fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
    } else if ((in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        return sb_err_errno(err, SB_EIO, "cannot run %s: /dev/null", argv[0]);
    }
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
        rc = sb_err_errno(err, SB_EIO, "cannot run %s: pipe", argv[0]);
        goto close_all;
    }
    pid_t pid = fork();
    if (pid < 0) {
        rc = sb_err_errno(err, SB_EIO, "cannot run %s: fork", argv[0]);
        goto close_all;
    }
    if (pid == 0)
        child_exec(file, argv, envp ? envp : (char *const[]){ NULL }, in_fd, out_pipe[1],
                   err_pipe[1]);
    /* Both sides set the group so a kill right after fork finds it. */
    setpgid(pid, pid);
    close(in_fd);
    in_fd = -1;
    if (stdin_data)
        in_pipe[0] = -1;
    close(out_pipe[1]);
    out_pipe[1] = -1;
    close(err_pipe[1]);
    err_pipe[1] = -1;

    int child_errno = 0;
    ssize_t n;
    while ((n = read(err_pipe[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
    }
    close(err_pipe[0]);
    err_pipe[0] = -1;
    if (n == (ssize_t)sizeof child_errno) {
        reap(pid, result);
        errno = child_errno;
        rc = sb_err_errno(err, child_errno == ENOENT ? SB_ENOTFOUND : SB_EIO, "cannot execute %s",
                          file);
        goto close_all;
    }
    supervise(pid, stdin_data ? in_pipe[1] : -1, out_pipe[0], stdin_data, timeout_ms, result);
    in_pipe[1] = -1;
    out_pipe[0] = -1;
    sb_buf_cstr(&result->output);
    return 0;

close_all:
    for (int i = 0; i < 2; i++) {
        if (in_pipe[i] >= 0)
            close(in_pipe[i]);
        if (out_pipe[i] >= 0)
            close(out_pipe[i]);
        if (err_pipe[i] >= 0)
            close(err_pipe[i]);
    }
    if (in_fd >= 0 && !stdin_data)
        close(in_fd);
    sb_buf_free(&result->output);
    return rc;
}

void talon_cmd_result_free(struct talon_cmd_result *r)
{
    if (r)
        sb_buf_free(&r->output);
}
