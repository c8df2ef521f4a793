/* log.c - JSON-lines logger (see log.h). Global state: the component name,
 * the minimum level and the fd, set once by sb_log_init before threads start;
 * the optional file sink (path, fd, size), guarded by file_lock. */
#include "log.h"
#include "buf.h"
#include "clock.h"
#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_FILE_DEFAULT_MAX (10LL << 20)

int sb_log_min_level = SB_INFO;
static const char *log_comp = "sysbus";
static int log_fd = 2;

/* The file sink (sb_log_open_file); all guarded by file_lock. */
static pthread_mutex_t file_lock = PTHREAD_MUTEX_INITIALIZER;
static char *file_path;
static int file_fd = -1;
static int64_t file_size, file_max;
static bool file_also_fd = true;
static bool file_failed; /* reported once */
static int file_active;  /* atomic: a file sink is set (spares the lock otherwise) */

static void write_all(int fd, const char *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}

static int open_append(const char *path, int64_t *size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    struct stat st;
    if (fd >= 0)
        *size = fstat(fd, &st) == 0 ? (int64_t)st.st_size : 0;
    return fd;
}

int sb_log_open_file(const char *path, int64_t max_bytes, bool also_fd, struct sb_err *err)
{
    int64_t size = 0;
    int fd = open_append(path, &size);
    if (fd < 0)
        return sb_err_errno(err, SB_EIO, "cannot open log file %s", path);
    char *copy = strdup(path);
    if (!copy) {
        close(fd);
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&file_lock);
    if (file_fd >= 0)
        close(file_fd);
    free(file_path);
    file_path = copy;
    file_fd = fd;
    file_size = size;
    file_max = max_bytes > 0 ? max_bytes : LOG_FILE_DEFAULT_MAX;
    file_also_fd = also_fd;
    file_failed = false;
    __atomic_store_n(&file_active, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&file_lock);
    return 0;
}

void sb_log_close_file(void)
{
    pthread_mutex_lock(&file_lock);
    __atomic_store_n(&file_active, 0, __ATOMIC_RELEASE);
    if (file_fd >= 0)
        close(file_fd);
    file_fd = -1;
    free(file_path);
    file_path = NULL;
    pthread_mutex_unlock(&file_lock);
}

/* With file_lock held: a one-line report on the fd that the file failed. */
static void file_failure(const char *what)
{
    if (file_failed)
        return;
    file_failed = true;
    char line[1024], ts[32];
    sb_time_format_iso(sb_now_ms(), ts, sizeof ts);
    int n = snprintf(line, sizeof line,
                     "{\"ts\":\"%s\",\"level\":\"error\",\"comp\":\"%s\",\"event\":"
                     "\"log_file_failed\",\"msg\":\"cannot %s the log file (%s): logging here "
                     "instead\"}\n",
                     ts, log_comp, what, strerror(errno));
    if (n > 0)
        write_all(log_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* Writes one line to the file sink, rotating first when it would pass the
 * maximum. Returns whether the line also has to go to the fd. */
static bool file_write(const char *line, size_t n)
{
    if (!__atomic_load_n(&file_active, __ATOMIC_ACQUIRE))
        return true;
    pthread_mutex_lock(&file_lock);
    bool to_fd = file_also_fd || file_fd < 0;
    if (!file_path) {
        pthread_mutex_unlock(&file_lock);
        return true;
    }
    if (file_fd >= 0 && file_size > 0 && file_size + (int64_t)n > file_max) {
        size_t pl = strlen(file_path);
        char *old = malloc(pl + 3);
        if (old) {
            memcpy(old, file_path, pl);
            memcpy(old + pl, ".1", 3);
            if (rename(file_path, old) != 0)
                file_failure("rotate");
            free(old);
        }
        close(file_fd);
        file_fd = open_append(file_path, &file_size);
    } else if (file_fd < 0) { /* failed before: try again */
        file_fd = open_append(file_path, &file_size);
    }
    if (file_fd < 0) {
        file_failure("reopen");
        to_fd = true;
    } else {
        ssize_t w = write(file_fd, line, n);
        if (w == (ssize_t)n) {
            file_size += (int64_t)n;
            file_failed = false;
        } else {
            /* a torn line is cut off, so the next one starts on its own */
            if (w > 0 && ftruncate(file_fd, (off_t)file_size) != 0) {
                close(file_fd); /* reopened (and reported) next time */
                file_fd = -1;
            }
            file_failure("write");
            to_fd = true;
        }
    }
    pthread_mutex_unlock(&file_lock);
    return to_fd;
}

void sb_log_init(const char *comp, int min_level, int fd)
{
    log_comp = comp;
    sb_log_min_level = min_level;
    log_fd = fd;
}

int sb_log_level_parse(const char *s)
{
    static const char *names[] = { "debug", "info", "warn", "error", "off" };
    for (int i = 0; i < 5; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return SB_WARN;
    return -1;
}

static const char *level_name(int level)
{
    switch (level) {
    case SB_DEBUG: return "debug";
    case SB_INFO: return "info";
    case SB_WARN: return "warn";
    default: return "error";
    }
}

void sb_log_emit(int level, const char *event, const struct sb_lf *fields, size_t nfields,
                 const char *fmt, ...)
{
    struct sb_buf b = SB_BUF_INIT(64 * 1024);
    char ts[32];
    sb_time_format_iso(sb_now_ms(), ts, sizeof ts);

    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    sb_buf_puts(&b, "{\"ts\":\"");
    sb_buf_puts(&b, ts);
    sb_buf_puts(&b, "\",\"level\":\"");
    sb_buf_puts(&b, level_name(level));
    sb_buf_puts(&b, "\",\"comp\":");
    sb_json_write_str(&b, log_comp);
    sb_buf_puts(&b, ",\"event\":");
    sb_json_write_str(&b, event);
    sb_buf_puts(&b, ",\"msg\":");
    sb_json_write_str(&b, msg);
    for (size_t i = 0; i < nfields; i++) {
        const struct sb_lf *f = &fields[i];
        sb_buf_putc(&b, ',');
        sb_json_write_str(&b, f->key);
        sb_buf_putc(&b, ':');
        switch (f->type) {
        case 's':
            if (f->s)
                sb_json_write_str(&b, f->s);
            else
                sb_buf_puts(&b, "null");
            break;
        case 'i': sb_buf_printf(&b, "%lld", f->i); break;
        case 'd': sb_json_write_number(&b, f->d); break;
        case 'b': sb_buf_puts(&b, f->i ? "true" : "false"); break;
        case 'j': sb_buf_puts(&b, f->s ? f->s : "null"); break;
        default: sb_buf_puts(&b, "null");
        }
    }
    sb_buf_puts(&b, "}\n");
    if (b.data && file_write(b.data, b.len))
        write_all(log_fd, b.data, b.len);
    sb_buf_free(&b);
}

/* ---- redaction ---- */

/* Length of the segment at p when it is "e" (any case, or percent-encoded)
 * followed by '/', else 0. */
static size_t key_segment_prefix(const char *p)
{
    if ((p[0] == 'e' || p[0] == 'E') && p[1] == '/')
        return 1;
    if (p[0] == '%' && (p[1] == '6' || p[1] == '4') && (p[2] == '5') && p[3] == '/')
        return 3;
    return 0;
}

static bool ends_path(char c)
{
    return c == '\0' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\'' || c == '"' ||
           c == '`' || c == '?' || c == '#';
}

const char *sb_redact_path(const char *text, char *buf, size_t buflen)
{
    static const char mark[] = "<redacted>";
    size_t o = 0;
    if (!buflen)
        return buf;
#define PUT(c)              \
    do {                    \
        if (o + 1 < buflen) \
            buf[o++] = (c); \
    } while (0)
    for (const char *p = text ? text : ""; *p;) {
        size_t seg = p[0] == '/' ? key_segment_prefix(p + 1) : 0;
        if (!seg) {
            PUT(*p++);
            continue;
        }
        for (size_t i = 0; i < seg + 2; i++) /* "/e/" as it was written */
            PUT(p[i]);
        p += seg + 2;
        if (ends_path(*p))
            continue;
        for (const char *m = mark; *m; m++)
            PUT(*m);
        while (!ends_path(*p))
            p++;
    }
#undef PUT
    buf[o] = '\0';
    return buf;
}

/* ---- rate limit ---- */

void sb_log_limit_init(struct sb_log_limit *l, int64_t interval_ms)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->lock, NULL);
    l->interval_ms = interval_ms;
}

void sb_log_limit_destroy(struct sb_log_limit *l)
{
    pthread_mutex_destroy(&l->lock);
}

bool sb_log_limit_pass(struct sb_log_limit *l, const void *kind, int64_t now_ms,
                       uint64_t *suppressed)
{
    pthread_mutex_lock(&l->lock);
    int found = -1, oldest = 0;
    for (int i = 0; i < SB_LOG_LIMIT_KINDS; i++) {
        if (l->slot[i].kind == kind) {
            found = i;
            break;
        }
        if (!l->slot[i].kind ||
            (l->slot[oldest].kind && l->slot[i].seen_ms < l->slot[oldest].seen_ms))
            oldest = i;
    }
    bool pass;
    if (found < 0) {
        /* a new kind (or one evicted since): its first line passes */
        l->slot[oldest].kind = kind;
        l->slot[oldest].passed_ms = now_ms;
        l->slot[oldest].seen_ms = now_ms;
        l->slot[oldest].suppressed = 0;
        *suppressed = 0;
        pass = true;
    } else if (now_ms - l->slot[found].passed_ms >= l->interval_ms) {
        *suppressed = l->slot[found].suppressed;
        l->slot[found].suppressed = 0;
        l->slot[found].passed_ms = now_ms;
        l->slot[found].seen_ms = now_ms;
        pass = true;
    } else {
        l->slot[found].suppressed++;
        l->slot[found].seen_ms = now_ms;
        *suppressed = 0;
        pass = false;
    }
    pthread_mutex_unlock(&l->lock);
    return pass;
}
