/* log.c - JSON-lines logger (see log.h). Global state: the component name,
 * the minimum level and the fd, set once by sb_log_init before threads start. */
#include "log.h"
#include "buf.h"
#include "clock.h"
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int sb_log_min_level = SB_INFO;
static const char *log_comp = "sysbus";
static int log_fd = 2;

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
    if (b.data) {
        ssize_t off = 0;
        while ((size_t)off < b.len) {
            ssize_t w = write(log_fd, b.data + off, b.len - (size_t)off);
            if (w <= 0)
                break;
            off += w;
        }
    }
    sb_buf_free(&b);
}
