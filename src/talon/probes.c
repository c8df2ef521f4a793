/* probes.c - the probe file (format in probes.h) and the three probe kinds:
 * http (GET through the one HTTP client, httpc.h), tcp (a non-blocking
 * connect under the timeout) and script (talon_run_command, exit 0 = ok).
 * Also talon_watchdog_check_once, the one-shot run behind `talon --check`.
 *
 * Owns: probe sets (parse/free) and nothing global. Parsing is pure and
 * bounded (file size, line length, probe count), so it is fuzzed directly
 * (tests/fuzz/fuzz_talon_probes.c). Probes run on the caller's thread. */
#include "talon/probes.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/httpc.h"
#include "talon/proc.h"
#include "talon/watchdog.h"

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

const char *talon_probe_type_name(enum talon_probe_type t)
{
    switch (t) {
    case TALON_PROBE_HTTP: return "http";
    case TALON_PROBE_TCP: return "tcp";
    case TALON_PROBE_SCRIPT: return "script";
    }
    return "?";
}

static void probe_clear(struct talon_probe *p)
{
    free(p->url);
    free(p->host);
    free(p->command);
    talon_words_free(p->argv);
    memset(p, 0, sizeof *p);
}

void talon_probes_free(struct talon_probe_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        probe_clear(&s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* ---- parsing ----------------------------------------------------------- */

/* The keys, with the probe types they apply to (bit per type, 0 = all). */
enum key_id {
    K_TYPE,
    K_CRITICAL,
    K_TIMEOUT,
    K_THRESHOLD,
    K_URL,
    K_EXPECT,
    K_HOST,
    K_PORT,
    K_COMMAND,
    K_COUNT
};
static const struct {
    const char *name;
    unsigned types;
} keys[K_COUNT] = {
    [K_TYPE] = { "type", 0 },
    [K_CRITICAL] = { "critical", 0 },
    [K_TIMEOUT] = { "timeout_secs", 0 },
    [K_THRESHOLD] = { "failure_threshold", 0 },
    [K_URL] = { "url", 1u << TALON_PROBE_HTTP },
    [K_EXPECT] = { "expect_status", 1u << TALON_PROBE_HTTP },
    [K_HOST] = { "host", 1u << TALON_PROBE_TCP },
    [K_PORT] = { "port", 1u << TALON_PROBE_TCP },
    [K_COMMAND] = { "command", 1u << TALON_PROBE_SCRIPT },
};

struct parser {
    const char *file;
    int default_timeout;
    struct talon_probe_set set;
    size_t cap;
    struct talon_probe *cur; /* the section being read, NULL before the first */
    int key_line[K_COUNT];   /* where each key of cur was set, 0 = not set */
    struct sb_err *err;
};

static int perr(struct parser *ps, int line, const char *fmt, const char *a, const char *b)
{
    char what[1100]; /* sb_err truncates to its own size */
    snprintf(what, sizeof what, fmt, a ? a : "", b ? b : "");
    return sb_err_set(ps->err, SB_EINVAL, "%s:%d: %s", ps->file, line, what);
}

/* Strict decimal integer in [min, max]. */
static bool parse_int(const char *s, int min, int max, int *out)
{
    if (!*s || strlen(s) > 10)
        return false;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
    }
    if (v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *yes[] = { "true", "yes", "on", "1" }, *no[] = { "false", "no", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = true, true;
        if (strcasecmp(s, no[i]) == 0)
            return *out = false, true;
    }
    return false;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TALON_PROBE_NAME_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

static int dup_into(struct parser *ps, char **slot, const char *v)
{
    *slot = strdup(v);
    return *slot ? 0 : sb_err_set(ps->err, SB_ENOMEM, "out of memory");
}

/* Checks the finished section ps->cur: a type, the keys its type needs,
 * and no key that belongs to another type. */
static int finish_section(struct parser *ps)
{
    struct talon_probe *p = ps->cur;
    if (!p)
        return 0;
    if (!ps->key_line[K_TYPE])
        return perr(ps, p->line, "[probe %s] has no type (http, tcp or script)", p->name, NULL);
    for (int k = 0; k < K_COUNT; k++)
        if (ps->key_line[k] && keys[k].types && !(keys[k].types & (1u << p->type)))
            return perr(ps, ps->key_line[k], "key '%s' does not apply to a %s probe", keys[k].name,
                        talon_probe_type_name(p->type));
    const char *missing = NULL;
    if (p->type == TALON_PROBE_HTTP && !p->url)
        missing = "url";
    else if (p->type == TALON_PROBE_TCP && !p->host)
        missing = "host";
    else if (p->type == TALON_PROBE_TCP && !p->port)
        missing = "port";
    else if (p->type == TALON_PROBE_SCRIPT && !p->argv)
        missing = "command";
    if (missing)
        return perr(ps, p->line, "[probe %s] needs a '%s'", p->name, missing);
    return 0;
}

static int start_section(struct parser *ps, int line, char *inside)
{
    int rc = finish_section(ps);
    if (rc)
        return rc;
    /* inside = "probe NAME" (the text between the brackets, trimmed) */
    if (strncmp(inside, "probe", 5) != 0 || (inside[5] != ' ' && inside[5] != '\t'))
        return perr(ps, line, "bad section header '[%s]': expected [probe NAME]", inside, NULL);
    char *name = inside + 5;
    while (*name == ' ' || *name == '\t')
        name++;
    if (!valid_name(name))
        return perr(ps, line, "bad probe name '%s': 1-64 of A-Z a-z 0-9 . _ -", name, NULL);
    for (size_t i = 0; i < ps->set.n; i++)
        if (strcmp(ps->set.v[i].name, name) == 0)
            return perr(ps, line, "probe '%s' is defined twice", name, NULL);
    if (ps->set.n == TALON_PROBES_MAX)
        return sb_err_set(ps->err, SB_ETOOBIG, "%s:%d: too many probes (at most %d)", ps->file,
                          line, TALON_PROBES_MAX);
    if (ps->set.n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 8;
        struct talon_probe *v = realloc(ps->set.v, cap * sizeof *v);
        if (!v)
            return sb_err_set(ps->err, SB_ENOMEM, "out of memory");
        ps->set.v = v;
        ps->cap = cap;
    }
    struct talon_probe *p = &ps->set.v[ps->set.n++];
    memset(p, 0, sizeof *p);
    strcpy(p->name, name);
    p->line = line;
    p->timeout_secs = ps->default_timeout;
    p->failure_threshold = 1;
    ps->cur = p;
    memset(ps->key_line, 0, sizeof ps->key_line);
    return 0;
}

static int set_key(struct parser *ps, int line, const char *key, const char *val)
{
    struct talon_probe *p = ps->cur;
    int k;
    for (k = 0; k < K_COUNT; k++)
        if (strcmp(keys[k].name, key) == 0)
            break;
    if (k == K_COUNT)
        return perr(ps, line, "unknown key '%s' (value '%s')", key, val);
    if (!p)
        return perr(ps, line, "key '%s' before any [probe NAME] section", key, NULL);
    if (ps->key_line[k])
        return perr(ps, line, "key '%s' set twice in [probe %s]", key, p->name);
    if (!*val)
        return perr(ps, line, "key '%s' has an empty value", key, NULL);
    ps->key_line[k] = line;
    switch ((enum key_id)k) {
    case K_TYPE:
        if (strcmp(val, "http") == 0)
            p->type = TALON_PROBE_HTTP;
        else if (strcmp(val, "tcp") == 0)
            p->type = TALON_PROBE_TCP;
        else if (strcmp(val, "script") == 0)
            p->type = TALON_PROBE_SCRIPT;
        else
            return perr(ps, line, "type = '%s': expected http, tcp or script", val, NULL);
        return 0;
    case K_CRITICAL:
        if (!parse_bool(val, &p->critical))
            return perr(ps, line, "critical = '%s': expected true or false", val, NULL);
        return 0;
    case K_TIMEOUT:
        if (!parse_int(val, 1, 3600, &p->timeout_secs))
            return perr(ps, line, "timeout_secs = '%s': expected whole seconds, 1 to 3600", val,
                        NULL);
        return 0;
    case K_THRESHOLD:
        if (!parse_int(val, 1, 1000, &p->failure_threshold))
            return perr(ps, line, "failure_threshold = '%s': expected 1 to 1000", val, NULL);
        return 0;
    case K_URL:
        if ((strncmp(val, "http://", 7) != 0 && strncmp(val, "https://", 8) != 0) ||
            strpbrk(val, " \t") || strlen(val) > 2048)
            return perr(ps, line, "url = '%s': expected an http:// or https:// URL", val, NULL);
        return dup_into(ps, &p->url, val);
    case K_EXPECT:
        if (!parse_int(val, 100, 599, &p->expect_status))
            return perr(ps, line, "expect_status = '%s': expected an HTTP status, 100 to 599", val,
                        NULL);
        return 0;
    case K_HOST:
        if (strlen(val) > 255 || strpbrk(val, " \t/"))
            return perr(ps, line, "host = '%s': expected a host name or address", val, NULL);
        return dup_into(ps, &p->host, val);
    case K_PORT:
        if (!parse_int(val, 1, 65535, &p->port))
            return perr(ps, line, "port = '%s': expected 1 to 65535", val, NULL);
        return 0;
    case K_COMMAND: {
        struct sb_err werr = { 0 };
        if (talon_split_words(val, &p->argv, &werr) != 0)
            return perr(ps, line, "command = '%s': %s", val, werr.msg);
        return dup_into(ps, &p->command, val);
    }
    case K_COUNT: break;
    }
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static int parse_line(struct parser *ps, int lineno, char *raw)
{
    char *s = trim(raw);
    if (!*s || *s == '#' || *s == ';')
        return 0;
    if (*s == '[') {
        size_t n = strlen(s);
        if (s[n - 1] != ']')
            return perr(ps, lineno, "bad section header '%s': no closing ']'", s, NULL);
        s[n - 1] = '\0';
        return start_section(ps, lineno, trim(s + 1));
    }
    char *eq = strchr(s, '=');
    if (!eq)
        return perr(ps, lineno, "expected 'key = value', got '%s'", s, NULL);
    *eq = '\0';
    char *key = trim(s), *val = trim(eq + 1);
    if (!*key)
        return perr(ps, lineno, "a value ('%s') without a key", val, NULL);
    return set_key(ps, lineno, key, val);
}

int talon_probes_parse(const char *text, size_t len, const char *filename, int default_timeout_secs,
                       struct talon_probe_set *out, struct sb_err *err)
{
    memset(out, 0, sizeof *out);
    struct parser ps = { 0 };
    ps.file = filename ? filename : "<probes>";
    ps.default_timeout = default_timeout_secs > 0 ? default_timeout_secs : 5;
    ps.err = err;
    if (len > TALON_PROBE_FILE_MAX)
        return sb_err_set(err, SB_ETOOBIG, "%s: larger than %d bytes", ps.file,
                          TALON_PROBE_FILE_MAX);
    char line[TALON_PROBE_LINE_MAX + 1];
    int rc = 0, lineno = 0;
    size_t pos = 0;
    while (pos < len && rc == 0) {
        lineno++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        if (n > TALON_PROBE_LINE_MAX) {
            rc = sb_err_set(err, SB_EINVAL, "%s:%d: line longer than %d bytes", ps.file, lineno,
                            TALON_PROBE_LINE_MAX);
            break;
        }
        if (memchr(text + pos, '\0', n)) {
            rc = sb_err_set(err, SB_EINVAL, "%s:%d: NUL byte in the line", ps.file, lineno);
            break;
        }
        memcpy(line, text + pos, n);
        line[n] = '\0';
        rc = parse_line(&ps, lineno, line);
        pos += n + 1;
    }
    if (rc == 0)
        rc = finish_section(&ps);
    if (rc) {
        talon_probes_free(&ps.set);
        return rc;
    }
    *out = ps.set;
    return 0;
}

int talon_probes_load(const char *path, int default_timeout_secs, struct talon_probe_set *out,
                      struct sb_err *err)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sb_err_errno(err, SB_EIO, "cannot open the probe file %s", path);
    char *text = malloc(TALON_PROBE_FILE_MAX + 1);
    if (!text) {
        close(fd);
        return sb_err_set(err, SB_ENOMEM, "out of memory");
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, text + len, TALON_PROBE_FILE_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int rc = sb_err_errno(err, SB_EIO, "cannot read the probe file %s", path);
            free(text);
            close(fd);
            return rc;
        }
        if (n == 0 || (len += (size_t)n) > TALON_PROBE_FILE_MAX)
            break;
    }
    close(fd);
    int rc = talon_probes_parse(text, len, path, default_timeout_secs, out, err);
    free(text);
    return rc;
}

/* ---- running ----------------------------------------------------------- */

static void run_http(const struct talon_probe *p, struct talon_probe_result *out)
{
    long total = (long)p->timeout_secs * 1000;
    struct sb_httpc_req req = {
        .method = "GET",
        .url = p->url,
        .connect_timeout_ms = total < 5000 ? total : 5000,
        .timeout_ms = total,
        .max_response = 1024 * 1024,
    };
    struct sb_httpc_resp resp = { 0 };
    struct sb_err err = { 0 };
    int rc = sb_httpc_do(&req, &resp, &err);
    if (rc != 0)
        snprintf(out->error, sizeof out->error, "GET %.100s: %.140s", p->url, err.msg);
    else if (p->expect_status ? resp.status == p->expect_status
                              : resp.status >= 200 && resp.status <= 299)
        out->ok = true;
    else if (p->expect_status)
        snprintf(out->error, sizeof out->error, "GET %s: HTTP %ld, expected %d", p->url,
                 resp.status, p->expect_status);
    else
        snprintf(out->error, sizeof out->error, "GET %s: HTTP %ld", p->url, resp.status);
    sb_httpc_resp_free(&resp);
}

/* Connects to each address of host:port in turn until one answers, all
 * within the probe's timeout. (Name resolution itself is not under the
 * timeout; use addresses in probes where that matters.) */
static void run_tcp(const struct talon_probe *p, struct talon_probe_result *out)
{
    char port[16];
    snprintf(port, sizeof port, "%d", p->port);
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
    struct addrinfo *ai = NULL;
    int g = getaddrinfo(p->host, port, &hints, &ai);
    if (g != 0) {
        snprintf(out->error, sizeof out->error, "%s:%d: %s", p->host, p->port, gai_strerror(g));
        return;
    }
    int64_t deadline = sb_mono_ms() + (int64_t)p->timeout_secs * 1000;
    const char *why = "no address";
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        int fd =
            socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            why = strerror(errno);
            continue;
        }
        int e = 0;
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            e = errno;
            if (e == EINPROGRESS) {
                struct pollfd pf = { .fd = fd, .events = POLLOUT };
                int left, pr;
                do {
                    left = (int)(deadline - sb_mono_ms());
                    pr = poll(&pf, 1, left > 0 ? left : 0);
                } while (pr < 0 && errno == EINTR);
                socklen_t sl = sizeof e;
                if (pr == 0)
                    e = ETIMEDOUT;
                else if (pr < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) != 0)
                    e = errno;
            }
        }
        close(fd);
        if (e == 0) {
            out->ok = true;
            break;
        }
        why = strerror(e);
        if (sb_mono_ms() >= deadline)
            break;
    }
    freeaddrinfo(ai);
    if (!out->ok)
        snprintf(out->error, sizeof out->error, "connect %s:%d: %s", p->host, p->port, why);
}

/* The last non-empty line of a command's output, for an error message. */
static const char *last_line(char *s, size_t len)
{
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' '))
        s[--len] = '\0';
    char *nl = len ? strrchr(s, '\n') : NULL;
    return nl ? nl + 1 : s;
}

static void run_script(const struct talon_probe *p, const char *path_env,
                       struct talon_probe_result *out)
{
    char path[4200], probe[TALON_PROBE_NAME_MAX + 16];
    snprintf(path, sizeof path, "PATH=%s", path_env && *path_env ? path_env : DEFAULT_PATH);
    snprintf(probe, sizeof probe, "TALON_PROBE=%s", p->name);
    char *envp[] = { path, probe, NULL };
    struct talon_cmd_result r;
    struct sb_err err = { 0 };
    if (talon_run_command(p->argv, envp, NULL, p->timeout_secs * 1000, &r, &err) != 0) {
        snprintf(out->error, sizeof out->error, "%.250s", err.msg);
        return;
    }
    const char *tail = r.output.len ? last_line(r.output.data, r.output.len) : "";
    if (r.timed_out)
        snprintf(out->error, sizeof out->error, "timed out after %d s", p->timeout_secs);
    else if (r.signal)
        snprintf(out->error, sizeof out->error, "killed by signal %d", r.signal);
    else if (r.exit_code != 0)
        snprintf(out->error, sizeof out->error, "exit %d%s%.200s", r.exit_code, *tail ? ": " : "",
                 tail);
    else
        out->ok = true;
    talon_cmd_result_free(&r);
}

/* Makes s valid UTF-8 without control characters, in place: it carries
 * command output and OS messages into JSON and log lines. Invalid bytes (and
 * a sequence cut short by truncation) become '?'. */
static void sanitize_text(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int n = *p < 0x80             ? 1
                : (*p & 0xE0) == 0xC0 ? 2
                : (*p & 0xF0) == 0xE0 ? 3
                : (*p & 0xF8) == 0xF0 ? 4
                                      : 0;
        int ok = n > 0 && !(n == 2 && *p < 0xC2) && !(n == 4 && *p > 0xF4);
        for (int i = 1; ok && i < n; i++)
            ok = (p[i] & 0xC0) == 0x80;
        if (ok && n == 3)
            ok = !(p[0] == 0xE0 && p[1] < 0xA0) && !(p[0] == 0xED && p[1] >= 0xA0);
        if (ok && n == 4)
            ok = !(p[0] == 0xF0 && p[1] < 0x90) && !(p[0] == 0xF4 && p[1] >= 0x90);
        if (!ok) {
            *p++ = '?';
            continue;
        }
        if (n == 1 && *p < 0x20)
            *p = ' ';
        p += n;
    }
}

void talon_probe_run(const struct talon_probe *p, const char *path_env,
                     struct talon_probe_result *out)
{
    memset(out, 0, sizeof *out);
    int64_t t0 = sb_mono_ms();
    switch (p->type) {
    case TALON_PROBE_HTTP: run_http(p, out); break;
    case TALON_PROBE_TCP: run_tcp(p, out); break;
    case TALON_PROBE_SCRIPT: run_script(p, path_env, out); break;
    }
    out->ms = sb_mono_ms() - t0;
    sanitize_text(out->error);
}

/* ---- talon --check ----------------------------------------------------- */

json_t *talon_watchdog_check_once(const struct talon_watchdog_config *cfg, struct sb_err *err)
{
    struct talon_probe_set set = { 0 };
    if (cfg->probe_file && *cfg->probe_file &&
        talon_probes_load(cfg->probe_file, cfg->http_timeout_secs, &set, err) != 0)
        return NULL;
    json_t *probes = json_array();
    bool all_ok = true;
    for (size_t i = 0; i < set.n; i++) {
        struct talon_probe_result r;
        talon_probe_run(&set.v[i], cfg->path_env, &r);
        all_ok = all_ok && r.ok;
        json_array_append_new(probes,
                              json_pack("{s:s, s:s, s:b, s:b, s:I, s:o}", "name", set.v[i].name,
                                        "type", talon_probe_type_name(set.v[i].type), "ok", r.ok,
                                        "critical", set.v[i].critical, "ms", (json_int_t)r.ms,
                                        "error", r.ok ? json_null() : json_string(r.error)));
    }
    talon_probes_free(&set);
    return json_pack("{s:b, s:o}", "ok", all_ok, "probes", probes);
}
