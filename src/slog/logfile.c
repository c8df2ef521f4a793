/* logfile.c - the slog file: where it lives, the locked append that either
 * adds one whole, fsync'd line or leaves the file as it was, and a bounded
 * line reader.
 *
 * Invariants of the append (every slog writer follows them):
 *   - appends happen only under flock(LOCK_EX) on the log file itself, so
 *     the "size before" a writer remembers stays true until it unlocks;
 *   - one entry = one write(2) of the whole line on an O_APPEND descriptor;
 *   - an entry that was not written whole and fsync'd is truncated away
 *     before the lock is released, and the failure is returned: the log never
 *     keeps a torn line of ours, and never fails silently.
 * The reader never holds more than SLOG_LINE_MAX bytes of one line. */
#include "slog.h"

#include "common/fsutil.h"

#include "common/config.h"
#include "common/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- where the log lives -------------------------------------------------- */

char *slog_default_path(const char *flag, struct sb_err *err)
{
    if (flag && *flag) {
        char *p = strdup(flag);
        if (!p)
            sb_err_set(err, SB_ENOMEM, "out of memory");
        return p;
    }
    const char *base = sb_env("XDG_STATE_HOME");
    const char *tail = "/sysbus/slog.jsonl";
    /* The XDG spec says a relative XDG_STATE_HOME is to be ignored. */
    if (!base || base[0] != '/') {
        base = sb_env("HOME");
        tail = "/.local/state/sysbus/slog.jsonl";
        if (!base || base[0] != '/') {
            struct passwd *pw = getpwuid(getuid());
            base = pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
        }
    }
    if (!base) {
        sb_err_set(err, SB_EINVAL,
                   "no place for the log: set --file, SLOG_FILE, XDG_STATE_HOME or HOME");
        return NULL;
    }
    size_t n = strlen(base) + strlen(tail) + 1;
    char *p = malloc(n);
    if (!p) {
        sb_err_set(err, SB_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(p, n, "%s%s", base, tail);
    return p;
}

/* Fills err with the reason errno gives, after what (may be NULL), so the
 * caller's "cannot write PATH: " reads on: "No space left on device". */
static int sys_fail(struct sb_err *err, int code, const char *what)
{
    int saved = errno;
    if (what)
        sb_err_set(err, code, "%s: %s", what, strerror(saved));
    else
        sb_err_set(err, code, "%s", strerror(saved));
    if (err)
        err->sys_errno = saved;
    errno = saved;
    return code;
}

/* mkdir -p of path's parent directory; the ones created get mode 0700. */
static int make_parents(const char *path, struct sb_err *err)
{
    char dir[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof dir)
        return sb_err_set(err, SB_EINVAL, "the path is longer than %d bytes", PATH_MAX - 1);
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0; /* relative file in the working directory, or under / */
    *slash = '\0';
    return sb_mkdir_p(dir, 0700, err);
}

/* ---- the lock ------------------------------------------------------------ */

static void on_alarm(int sig)
{
    (void)sig; /* only there to interrupt flock(2) */
}

/* flock(LOCK_EX) waiting at most timeout_ms. A periodic timer interrupts the
 * blocking flock every 50 ms so the deadline is checked; being periodic, it
 * also covers a tick that fires just before flock is entered. */
static int lock_with_timeout(int fd, int64_t timeout_ms)
{
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    if (errno != EWOULDBLOCK)
        return -1;
    if (timeout_ms <= 0) {
        errno = ETIMEDOUT;
        return -1;
    }
    struct sigaction sa = { 0 }, old;
    sa.sa_handler = on_alarm; /* no SA_RESTART: flock returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    struct itimerval tick = { { 0, 50000 }, { 0, 50000 } }, off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &tick, NULL);
    int64_t deadline = sb_mono_ms() + timeout_ms;
    int rc;
    for (;;) {
        rc = flock(fd, LOCK_EX);
        if (rc == 0 || errno != EINTR)
            break;
        if (sb_mono_ms() >= deadline) {
            errno = ETIMEDOUT;
            break;
        }
    }
    int saved = errno;
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old, NULL);
    errno = saved;
    return rc;
}

/* ---- the append ------------------------------------------------------------ */

/* Puts the file back to size after a failed append (we hold the lock).
 * Returns 0, or -1 with errno when it could not. */
static int roll_back(int fd, bool regular, off_t size)
{
    if (!regular)
        return 0; /* a device or pipe: nothing can be taken back */
    if (ftruncate(fd, size) != 0)
        return -1;
    (void)fsync(fd);
    return 0;
}

/* Appends to err->msg what became of the partial entry. */
static void note_roll_back(struct sb_err *err, int fd, bool regular, off_t size)
{
    char tail[160];
    if (roll_back(fd, regular, size) == 0)
        snprintf(tail, sizeof tail, "; the partial entry was removed");
    else
        snprintf(tail, sizeof tail, "; the partial entry could not be removed (%s)",
                 strerror(errno));
    if (err) {
        size_t m = strlen(err->msg);
        snprintf(err->msg + m, sizeof err->msg - m, "%s", tail);
    }
}

/* Opens (creating) and locks the log. A log renamed away (rotated) while we
 * waited for its lock is not ours to append to: then the path is opened
 * again. Returns the descriptor with *st its state, or -1 with err filled. */
static int open_locked(const char *path, int64_t lock_timeout_ms, struct stat *st,
                       struct sb_err *err)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        /* O_EXCL first so we know whether we created it (then the directory
         * entry needs an fsync too). */
        bool created = true;
        int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0 && errno == EEXIST) {
            created = false;
            fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOCTTY);
            if (fd < 0 && (errno == EACCES || errno == EPERM)) /* write-only files */
                fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
        }
        if (fd < 0)
            return sys_fail(err, SB_EIO, NULL), -1;
        /* Make the new file's directory entry durable before anything goes
         * in it, so a failure here leaves at worst an empty log. */
        if (created && sb_fsync_parent(path, NULL) != 0) {
            sys_fail(err, SB_EIO, "fsync of the directory");
            close(fd);
            return -1;
        }
        if (lock_with_timeout(fd, lock_timeout_ms) != 0) {
            int e = errno;
            close(fd);
            if (e == ETIMEDOUT) {
                char d[32];
                sb_duration_format(lock_timeout_ms, d, sizeof d);
                sb_err_set(err, SB_ETIMEOUT,
                           "another process has held the lock for %s (--lock-timeout)", d);
                return -1;
            }
            errno = e;
            return sys_fail(err, SB_EIO, "flock"), -1;
        }
        struct stat now;
        if (fstat(fd, st) != 0) {
            sys_fail(err, SB_EIO, "fstat");
            close(fd);
            return -1;
        }
        if (stat(path, &now) == 0 && now.st_dev == st->st_dev && now.st_ino == st->st_ino)
            return fd;
        close(fd);
    }
    sb_err_set(err, SB_EIO, "the log kept being replaced while slog waited for its lock");
    return -1;
}

int slog_append(const char *path, const char *line, size_t len, int64_t lock_timeout_ms,
                struct sb_err *err)
{
    int rc = make_parents(path, err);
    if (rc)
        return rc;
    struct stat st;
    int fd = open_locked(path, lock_timeout_ms, &st, err);
    if (fd < 0)
        return err ? err->code : SB_EIO;
    bool regular = S_ISREG(st.st_mode);
    off_t before = regular ? st.st_size : 0;
    const char *data = line;
    size_t n = len;
    char *joined = NULL;
    if (regular && before > 0) {
        /* Something else left a line without its '\n': start ours on a new
         * line so that only the torn one is bad. */
        char last;
        if (pread(fd, &last, 1, before - 1) == 1 && last != '\n') {
            joined = malloc(len + 1);
            if (!joined) {
                rc = sb_err_set(err, SB_ENOMEM, "out of memory");
                goto out;
            }
            joined[0] = '\n';
            memcpy(joined + 1, line, len);
            data = joined, n = len + 1;
        }
    }
    ssize_t w;
    do {
        w = write(fd, data, n);
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
        rc = sys_fail(err, SB_EIO, NULL);
        (void)roll_back(fd, regular, before); /* nothing was written; be sure */
    } else if ((size_t)w != n) {
        rc = sb_err_set(err, SB_EIO,
                        "short write (%zd of %zu bytes: the disk is full or a file size "
                        "limit was hit)",
                        w, n);
        note_roll_back(err, fd, regular, before);
    } else if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
        /* EINVAL/EROFS: the file (a pipe, a device) cannot be synced at all. */
        rc = sys_fail(err, SB_EIO, "fsync failed");
        note_roll_back(err, fd, regular, before);
    }
    free(joined);
out:
    close(fd); /* releases the lock */
    return rc;
}

/* ---- the reader ------------------------------------------------------------ */

int slog_reader_open(struct slog_reader *r, const char *path, struct sb_err *err)
{
    memset(r, 0, sizeof *r);
    r->line = (struct sb_buf)SB_BUF_INIT(SLOG_LINE_MAX + 1);
    r->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (r->fd < 0)
        return sys_fail(err, errno == ENOENT ? SB_ENOTFOUND : SB_EIO, NULL);
    struct stat st;
    if (fstat(r->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(r->fd);
        r->fd = -1;
        errno = EISDIR;
        return sys_fail(err, SB_EIO, NULL);
    }
    return 0;
}

int slog_reader_next(struct slog_reader *r, const char **line, size_t *len, struct sb_err *err)
{
    sb_buf_reset(&r->line);
    r->full_len = 0;
    r->too_long = false;
    r->unterminated = false;
    for (;;) {
        if (r->pos == r->len) {
            if (r->eof)
                break;
            ssize_t n;
            do {
                n = read(r->fd, r->chunk, sizeof r->chunk);
            } while (n < 0 && errno == EINTR);
            if (n < 0)
                return sys_fail(err, SB_EIO, NULL);
            r->pos = 0;
            r->len = (size_t)n;
            if (n == 0) {
                r->eof = true;
                break;
            }
        }
        char *start = r->chunk + r->pos;
        char *nl = memchr(start, '\n', r->len - r->pos);
        size_t take = nl ? (size_t)(nl - start) : r->len - r->pos;
        r->full_len += take;
        size_t room = SLOG_LINE_MAX - r->line.len;
        if (take > room)
            r->too_long = true;
        if (sb_buf_append(&r->line, start, take < room ? take : room))
            return sb_err_set(err, SB_ENOMEM, "out of memory");
        r->pos += take + (nl ? 1 : 0);
        if (nl) {
            r->lineno++;
            goto done;
        }
    }
    if (r->full_len == 0)
        return 0; /* end of file on a line boundary */
    r->lineno++;
    r->unterminated = true;
done:
    *line = sb_buf_cstr(&r->line);
    *len = r->line.len;
    return 1;
}

void slog_reader_close(struct slog_reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    sb_buf_free(&r->line);
}

int slog_reader_entry(const struct slog_reader *r, const char *line, size_t len,
                      struct slog_entry *e, struct sb_err *err)
{
    memset(e, 0, sizeof *e);
    if (r->too_long)
        return sb_err_set(err, SB_EINVAL, "line is %zu bytes, longer than the %d byte limit",
                          r->full_len, SLOG_LINE_MAX);
    int rc = slog_entry_parse(line, len, e, err);
    if (rc == 0 && r->unterminated) {
        slog_entry_free(e);
        return sb_err_set(err, SB_EINVAL, "no newline at the end of the file (a torn write?)");
    }
    if (rc != 0 && r->unterminated) {
        size_t m = strlen(err->msg);
        snprintf(err->msg + m, sizeof err->msg - m, "; no newline at the end (a torn write?)");
    }
    return rc;
}
