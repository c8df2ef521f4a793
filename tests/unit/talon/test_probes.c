/* Unit tests for talon's watchdog (src/talon/probes.c, watchdog.c): the
 * probe file parser (every error names file:line and the key/value), the
 * three probe kinds against real sockets and commands, the state x event
 * table cell by cell, cooldowns, and whole watchdogs driven through flag
 * files: thresholds, escalation behind cooldowns, persistence across a
 * restart, hot reload (good and bad files), and the log events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "talon/probes.h"
#include "talon/watchdog.h"

/* ---- helpers ---- */

static void write_file(const char *path, const char *text)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0); /* a new inode: the change is seen */
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int count_lines(const char *path, const char *needle)
{
    char *text = read_file(path);
    int n = 0;
    for (char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(text);
    return n;
}

static int parse_text(const char *text, struct talon_probe_set *set, struct sb_err *err)
{
    return talon_probes_parse(text, strlen(text), "p.ini", 7, set, err);
}

/* ---- parsing ---- */

static void parse_reads_every_key_and_applies_defaults(void **state)
{
    (void)state;
    const char *text =
        "# talon probes\r\n"
        "; another comment\n"
        "\n"
        "[probe worker-health]\n"
        "type = http\n"
        "url = http://127.0.0.1:3111/\n"
        "critical = true\n"
        "timeout_secs = 5\n"
        "failure_threshold = 3\n"
        "expect_status = 204\n"
        "  [ probe db.port ]  \n"
        "type=tcp\n"
        "host=127.0.0.1\n"
        "port=5432\n"
        "[probe disk_free]\n"
        "type = script\n"
        "command = /bin/sh -c 'test \"$(df --output=pcent / | tail -1 | tr -dc 0-9)\" "
        "-lt 90'\n";
    struct talon_probe_set set;
    struct sb_err err = { 0 };
    if (parse_text(text, &set, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(set.n, 3);
    const struct talon_probe *h = &set.v[0], *t = &set.v[1], *s = &set.v[2];
    assert_string_equal(h->name, "worker-health");
    assert_int_equal(h->type, TALON_PROBE_HTTP);
    assert_string_equal(h->url, "http://127.0.0.1:3111/");
    assert_true(h->critical);
    assert_int_equal(h->timeout_secs, 5);
    assert_int_equal(h->failure_threshold, 3);
    assert_int_equal(h->expect_status, 204);
    assert_int_equal(h->line, 4);
    assert_string_equal(t->name, "db.port");
    assert_int_equal(t->type, TALON_PROBE_TCP);
    assert_string_equal(t->host, "127.0.0.1");
    assert_int_equal(t->port, 5432);
    assert_false(t->critical);            /* default */
    assert_int_equal(t->timeout_secs, 7); /* the caller's default */
    assert_int_equal(t->failure_threshold, 1);
    assert_int_equal(s->type, TALON_PROBE_SCRIPT);
    assert_string_equal(s->argv[0], "/bin/sh");
    assert_string_equal(s->argv[1], "-c");
    assert_string_equal(s->argv[2],
                        "test \"$(df --output=pcent / | tail -1 | tr -dc 0-9)\" -lt 90");
    assert_null(s->argv[3]);
    talon_probes_free(&set);

    /* an empty file is no probes, not an error */
    assert_int_equal(parse_text("# nothing yet\n", &set, &err), 0);
    assert_int_equal(set.n, 0);
    talon_probes_free(&set);
}

static void parse_errors_name_file_line_key_and_value(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } bad[] = {
        { "[probe a]\ntype = http\ncolour = red\n", "p.ini:3: unknown key 'colour' (value 'red')" },
        { "type = http\n", "p.ini:1: key 'type' before any [probe NAME] section" },
        { "[probes a]\n", "p.ini:1: bad section header '[probes a]'" },
        { "[probe a\n", "p.ini:1: bad section header '[probe a': no closing ']'" },
        { "[probe]\n", "p.ini:1: bad section header '[probe]'" },
        { "[probe bad/name]\n", "p.ini:1: bad probe name 'bad/name'" },
        { "[probe a]\ntype=tcp\nhost=h\nport=1\n[probe a]\n",
          "p.ini:5: probe 'a' is defined twice" },
        { "[probe a]\ntype=tcp\ntype=http\n", "p.ini:3: key 'type' set twice in [probe a]" },
        { "\n[probe a]\ncritical = true\n", "p.ini:2: [probe a] has no type" },
        { "[probe a]\ntype = ftp\n", "p.ini:2: type = 'ftp': expected http, tcp or script" },
        { "[probe a]\ntype = http\n", "p.ini:1: [probe a] needs a 'url'" },
        { "[probe a]\ntype = tcp\nport = 80\n", "p.ini:1: [probe a] needs a 'host'" },
        { "[probe a]\ntype = tcp\nhost = x\n", "p.ini:1: [probe a] needs a 'port'" },
        { "[probe a]\ntype = script\n", "p.ini:1: [probe a] needs a 'command'" },
        { "[probe a]\ntype=tcp\nhost=h\nport=1\nurl=http://x/\n",
          "p.ini:5: key 'url' does not apply to a tcp probe" },
        { "[probe a]\nurl=http://x/\ntype=script\ncommand=true\n",
          "p.ini:2: key 'url' does not apply to a script probe" },
        { "[probe a]\ntype=tcp\nhost=h\nport=70000\n",
          "p.ini:4: port = '70000': expected 1 to 65535" },
        { "[probe a]\ntype=tcp\nhost=h\nport=0\n", "p.ini:4: port = '0'" },
        { "[probe a]\ntimeout_secs = 5s\n", "p.ini:2: timeout_secs = '5s'" },
        { "[probe a]\ntimeout_secs = 0\n", "p.ini:2: timeout_secs = '0'" },
        { "[probe a]\nfailure_threshold = -1\n", "p.ini:2: failure_threshold = '-1'" },
        { "[probe a]\nfailure_threshold = 99999999999999\n",
          "failure_threshold = '99999999999999'" },
        { "[probe a]\ncritical = maybe\n", "p.ini:2: critical = 'maybe': expected true or false" },
        { "[probe a]\nexpect_status = 99\n", "p.ini:2: expect_status = '99'" },
        { "[probe a]\nurl = ftp://x/\n", "p.ini:2: url = 'ftp://x/'" },
        { "[probe a]\nhost = a b\n", "p.ini:2: host = 'a b'" },
        { "[probe a]\ncommand = echo 'oops\n",
          "p.ini:2: command = 'echo 'oops': unterminated single quote" },
        { "[probe a]\ncommand = echo oops\\\n",
          "p.ini:2: command = 'echo oops\\': trailing backslash" },
        { "[probe a]\ntype =\n", "p.ini:2: key 'type' has an empty value" },
        { "[probe a]\njust words\n", "p.ini:2: expected 'key = value', got 'just words'" },
        { "[probe a]\n= value\n", "p.ini:2: a value ('value') without a key" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct talon_probe_set set = { (struct talon_probe *)1, 99 };
        struct sb_err err = { 0 };
        int rc = parse_text(bad[i].text, &set, &err);
        if (rc == 0)
            fail_msg("accepted: %s", bad[i].text);
        assert_int_equal(set.n, 0);
        assert_null(set.v);
        if (!strstr(err.msg, bad[i].want))
            fail_msg("for %s\n got '%s'\nwant '%s'", bad[i].text, err.msg, bad[i].want);
    }
}

static void parse_enforces_its_limits(void **state)
{
    (void)state;
    struct talon_probe_set set;
    struct sb_err err = { 0 };
    /* a NUL byte */
    const char nul[] = "[probe a]\ntype = t\0cp\n";
    assert_int_equal(talon_probes_parse(nul, sizeof nul - 1, "p.ini", 0, &set, &err), SB_EINVAL);
    assert_non_null(strstr(err.msg, "p.ini:2: NUL byte"));
    /* an overlong line */
    char *longl = malloc(TALON_PROBE_LINE_MAX + 100);
    memset(longl, '#', TALON_PROBE_LINE_MAX + 50);
    longl[TALON_PROBE_LINE_MAX + 50] = '\0';
    assert_int_equal(parse_text(longl, &set, &err), SB_EINVAL);
    assert_non_null(strstr(err.msg, "p.ini:1: line longer than"));
    free(longl);
    /* too many probes */
    struct sb_buf b = SB_BUF_INIT(0); /* the test's own text: TALON_PROBES_MAX + 1 sections */
    for (int i = 0; i <= TALON_PROBES_MAX; i++)
        sb_buf_printf(&b, "[probe p%d]\ntype = tcp\nhost = h\nport = 1\n", i);
    assert_int_equal(parse_text(sb_buf_cstr(&b), &set, &err), SB_ETOOBIG);
    assert_non_null(strstr(err.msg, "too many probes"));
    sb_buf_free(&b);
    /* a missing file */
    assert_int_equal(talon_probes_load("/nonexistent/probes.ini", 0, &set, &err), SB_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/probes.ini"));
}

/* ---- running probes ---- */

/* A one-trick HTTP server on 127.0.0.1: answers every request with status. */
struct fake_http {
    int fd, port, stop;
    volatile int status;
    pthread_t th;
};

static void *fake_http_main(void *arg)
{
    struct fake_http *h = arg;
    while (!__atomic_load_n(&h->stop, __ATOMIC_SEQ_CST)) {
        struct pollfd pf = { .fd = h->fd, .events = POLLIN };
        if (poll(&pf, 1, 50) <= 0)
            continue;
        int c = accept(h->fd, NULL, NULL);
        if (c < 0)
            continue;
        char req[4096];
        ssize_t got = 0, n;
        while (got < (ssize_t)sizeof req - 1 &&
               (n = read(c, req + got, sizeof req - 1 - got)) > 0) {
            got += n;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        char resp[200];
        int len = snprintf(resp, sizeof resp,
                           "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                           h->status);
        ssize_t wr = write(c, resp, (size_t)len);
        (void)wr;
        close(c);
    }
    return NULL;
}

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    *port = ntohs(a.sin_port);
    return fd;
}

static struct talon_probe_result run_probe_text(const char *text)
{
    struct talon_probe_set set;
    struct sb_err err = { 0 };
    if (parse_text(text, &set, &err) != 0)
        fail_msg("%s", err.msg);
    struct talon_probe_result r;
    talon_probe_run(&set.v[0], "/usr/bin:/bin", &r);
    talon_probes_free(&set);
    return r;
}

static void http_probe_wants_2xx_or_the_expected_status(void **state)
{
    (void)state;
    struct fake_http h = { .status = 200 };
    h.fd = listen_loopback(&h.port);
    pthread_create(&h.th, NULL, fake_http_main, &h);
    char text[300];
    snprintf(text, sizeof text, "[probe w]\ntype = http\nurl = http://127.0.0.1:%d/health\n",
             h.port);
    struct talon_probe_result r = run_probe_text(text);
    assert_true(r.ok);
    assert_string_equal(r.error, "");
    h.status = 503;
    r = run_probe_text(text);
    assert_false(r.ok);
    assert_non_null(strstr(r.error, "HTTP 503"));
    snprintf(text, sizeof text,
             "[probe w]\ntype = http\nurl = http://127.0.0.1:%d/\nexpect_status = 503\n", h.port);
    r = run_probe_text(text);
    assert_true(r.ok);
    h.status = 200;
    r = run_probe_text(text);
    assert_false(r.ok);
    assert_non_null(strstr(r.error, "HTTP 200, expected 503"));
    __atomic_store_n(&h.stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(h.th, NULL);
    close(h.fd); /* now nothing listens: connection refused */
    snprintf(text, sizeof text, "[probe w]\ntype = http\nurl = http://127.0.0.1:%d/\n", h.port);
    r = run_probe_text(text);
    assert_false(r.ok);
    assert_non_null(strstr(r.error, "GET http://127.0.0.1:"));
}

static void tcp_and_script_probes_report_why_they_fail(void **state)
{
    (void)state;
    int port;
    int fd = listen_loopback(&port);
    char text[300];
    snprintf(text, sizeof text, "[probe t]\ntype = tcp\nhost = 127.0.0.1\nport = %d\n", port);
    struct talon_probe_result r = run_probe_text(text);
    assert_true(r.ok);
    close(fd);
    r = run_probe_text(text);
    assert_false(r.ok);
    assert_non_null(strstr(r.error, "Connection refused"));

    r = run_probe_text("[probe s]\ntype = script\ncommand = sh -c 'exit 0'\n");
    assert_true(r.ok);
    r = run_probe_text("[probe s]\ntype = script\ncommand = sh -c 'echo first; echo disk full; "
                       "exit 3'\n");
    assert_false(r.ok);
    assert_string_equal(r.error, "exit 3: disk full");
    /* the probe's name is in its environment; output is made log-safe */
    r = run_probe_text("[probe s]\ntype = script\ncommand = sh -c 'printf \"$TALON_PROBE\\377\"; "
                       "exit 1'\n");
    assert_string_equal(r.error, "exit 1: s?");
    r = run_probe_text("[probe s]\ntype = script\ntimeout_secs = 1\ncommand = sleep 10\n");
    assert_false(r.ok);
    assert_string_equal(r.error, "timed out after 1 s");
    assert_true(r.ms >= 1000 && r.ms < 4000);
    r = run_probe_text("[probe s]\ntype = script\ncommand = no-such-tool-here\n");
    assert_false(r.ok);
    assert_non_null(strstr(r.error, "command no-such-tool-here not found in PATH=/usr/bin:/bin"));
}

/* ---- the state x event table ---- */

static void state_table_cells(void **state)
{
    (void)state;
    enum { H = TALON_HEALTHY, D = TALON_DEGRADED, F = TALON_FAILED, C = TALON_CRITICAL };
    enum { HEAL = TALON_ACT_HEAL, NOTIFY = TALON_ACT_NOTIFY };
    /* [state][event] = {next, actions}: ALL_PASS, NONCRIT_FAIL, CRIT_FAIL,
     * FAILED_TOO_LONG, HEAL_FAILED */
    static const int want[4][5][2] = {
        [H] = { { H, 0 }, { D, 0 }, { F, HEAL }, { H, 0 }, { H, 0 } },
        [D] = { { H, 0 }, { D, 0 }, { F, HEAL }, { D, 0 }, { D, 0 } },
        [F] = { { H, 0 }, { D, 0 }, { F, HEAL }, { C, NOTIFY }, { C, NOTIFY } },
        [C] = { { H, 0 }, { D, 0 }, { C, HEAL | NOTIFY }, { C, 0 }, { C, 0 } },
    };
    for (int s = 0; s < TALON_WD_NSTATES; s++)
        for (int e = 0; e < TALON_WD_NEVENTS; e++) {
            struct talon_wd_transition t = talon_wd_step(s, e);
            if ((int)t.next != want[s][e][0] || (int)t.actions != want[s][e][1])
                fail_msg("state %d event %d: got %d/%u", s, e, t.next, t.actions);
        }
    for (int s = 0; s < TALON_WD_NSTATES; s++)
        assert_int_equal(talon_wd_state_parse(talon_wd_state_name(s)), s);
    assert_int_equal(talon_wd_state_parse("Investigating"), -1);
    assert_int_equal(talon_wd_state_parse(NULL), -1);
}

static void cooldowns_count_from_the_last_run(void **state)
{
    (void)state;
    int64_t now = 1800000000000;
    assert_true(talon_cooldown_over(0, 600, now));               /* never ran */
    assert_false(talon_cooldown_over(now - 599999, 600, now));   /* 1 ms early */
    assert_true(talon_cooldown_over(now - 600000, 600, now));    /* exactly */
    assert_true(talon_cooldown_over(now - 1, 0, now));           /* no cooldown */
    assert_true(talon_cooldown_over(now + 3600000, 14400, now)); /* clock went back */
}

/* ---- whole watchdogs ---- */

/* A temp dir with a probe file, flag files and a log the watchdog writes. */
struct rig {
    char dir[64], probes[128], heal_log[128], notify_log[128], state_dir[128], log[128];
    char heal_cmd[400], notify_cmd[400];
    struct talon_watchdog_config cfg;
    int logfd;
};

static void rig_init(struct rig *r, const char *probe_text)
{
    memset(r, 0, sizeof *r);
    strcpy(r->dir, "/tmp/talon-wd-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    snprintf(r->probes, sizeof r->probes, "%s/probes.ini", r->dir);
    snprintf(r->heal_log, sizeof r->heal_log, "%s/heal.log", r->dir);
    snprintf(r->notify_log, sizeof r->notify_log, "%s/notify.log", r->dir);
    snprintf(r->state_dir, sizeof r->state_dir, "%s/state/talon", r->dir);
    snprintf(r->log, sizeof r->log, "%s/talon.log", r->dir);
    snprintf(r->heal_cmd, sizeof r->heal_cmd,
             "sh -c 'echo \"$TALON_STATE $TALON_FAILED_PROBES\" >> %s'", r->heal_log);
    snprintf(r->notify_cmd, sizeof r->notify_cmd,
             "sh -c 'cat >> %s; echo \" token=$TALON_NOTIFY_TOKEN\" >> %s'", r->notify_log,
             r->notify_log);
    char text[2048];
    snprintf(text, sizeof text, probe_text, r->dir, r->dir);
    write_file(r->probes, text);
    r->logfd = open(r->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    sb_log_init("talon", SB_INFO, r->logfd);
    r->cfg = (struct talon_watchdog_config){
        .probe_file = r->probes,
        .state_dir = r->state_dir,
        .interval_secs = 1,
        .heal_command = r->heal_cmd,
        .heal_cooldown_secs = 600,
        .notify_command = r->notify_cmd,
        .notify_cooldown_secs = 600,
        .critical_after_secs = 2,
        .path_env = "/usr/bin:/bin",
        .http_timeout_secs = 5,
    };
}

static void rig_flag(struct rig *r, const char *name, int on)
{
    char path[200];
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    if (on)
        close(open(path, O_WRONLY | O_CREAT, 0644));
    else
        unlink(path);
}

static void rig_done(struct rig *r)
{
    sb_log_init("talon", SB_INFO, 2);
    close(r->logfd);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", r->dir);
    assert_int_equal(system(cmd), 0);
}

/* Polls the snapshot until state (and, if >= 0, probe_count) match, or fails
 * after 15 s. Returns the matching snapshot (caller decrefs). */
static json_t *wait_state(struct talon_watchdog *w, const char *state, int probe_count)
{
    int64_t deadline = sb_mono_ms() + 15000;
    json_t *snap = NULL;
    for (;;) {
        snap = talon_watchdog_snapshot(w);
        int64_t pc = -1;
        sb_json_get_int(snap, "probe_count", &pc);
        if (strcmp(sb_json_str(snap, "state"), state) == 0 &&
            (probe_count < 0 || pc == probe_count))
            return snap;
        if (sb_mono_ms() > deadline) {
            char *t = json_dumps(snap, 0);
            fail_msg("no %s/%d within 15 s: %s", state, probe_count, t);
        }
        json_decref(snap);
        sb_sleep_ms(20);
    }
}

/* Waits until the snapshot's consecutive_failures reaches n. */
static json_t *wait_failures(struct talon_watchdog *w, int64_t n)
{
    int64_t deadline = sb_mono_ms() + 15000;
    for (;;) {
        json_t *snap = talon_watchdog_snapshot(w);
        int64_t cf = 0;
        sb_json_get_int(snap, "consecutive_failures", &cf);
        if (cf >= n)
            return snap;
        json_decref(snap);
        if (sb_mono_ms() > deadline)
            fail_msg("consecutive_failures never reached %lld", (long long)n);
        sb_sleep_ms(20);
    }
}

static const char *two_probes = "[probe core]\ntype = script\ncritical = true\n"
                                "command = sh -c 'test ! -e %s/core.down'\n"
                                "[probe extra]\ntype = script\nfailure_threshold = 2\n"
                                "command = sh -c 'test ! -e %s/extra.down'\n";

static void watchdog_escalates_behind_cooldowns_and_survives_a_restart(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, two_probes);
    struct talon_watchdog *w;
    struct sb_err err = { 0 };
    if (talon_watchdog_start(&r.cfg, &w, &err) != 0)
        fail_msg("%s", err.msg);
    json_decref(wait_state(w, "Healthy", 2));

    /* a non-critical probe counts as failed only at its threshold (2) */
    rig_flag(&r, "extra.down", 1);
    json_t *snap = wait_failures(w, 1);
    int64_t cf = 0;
    sb_json_get_int(snap, "consecutive_failures", &cf);
    if (cf == 1)
        assert_string_equal(sb_json_str(snap, "state"), "Healthy");
    json_decref(snap);
    snap = wait_state(w, "Degraded", 2);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(snap, "failed_probes"), 0)), "extra");
    json_decref(snap);

    /* critical failure: Failed, heal runs (with the failed probes), then
     * Critical after critical_after_secs, and notify gets the message */
    rig_flag(&r, "extra.down", 0);
    rig_flag(&r, "core.down", 1);
    snap = wait_state(w, "Failed", 2);
    assert_int_equal(json_integer_value(json_object_get(snap, "failed_probe_count")), 1);
    json_decref(snap);
    json_decref(wait_state(w, "Critical", 2));
    snap = wait_failures(w, 6); /* several more failing rounds */
    json_decref(snap);
    assert_int_equal(count_lines(r.heal_log, "Failed core\n"), 1); /* once per cooldown */
    assert_int_equal(count_lines(r.heal_log, "\n"), 1);
    assert_int_equal(count_lines(r.notify_log, "\"state\":\"Critical\""), 1);
    char *msg = read_file(r.notify_log);
    assert_non_null(strstr(msg, "\"failed_probes\":[\"core\"]"));
    assert_non_null(strstr(msg, "\"host\":\""));
    assert_non_null(strstr(msg, "\"since\":\"20"));
    assert_non_null(strstr(msg, " token=\n")); /* no secret configured: no token */
    free(msg);

    /* state.json has what a restart needs; last-probe.json the results */
    char path[200];
    snprintf(path, sizeof path, "%s/state.json", r.state_dir);
    json_t *st = json_load_file(path, 0, NULL);
    assert_non_null(st);
    assert_string_equal(sb_json_str(st, "state"), "Critical");
    int64_t heal_at = 0, notify_at = 0;
    assert_true(sb_json_get_int(st, "last_heal_unix_ms", &heal_at) && heal_at > 0);
    assert_true(sb_json_get_int(st, "last_notify_unix_ms", &notify_at) && notify_at > 0);
    json_decref(st);
    snprintf(path, sizeof path, "%s/last-probe.json", r.state_dir);
    st = json_load_file(path, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(st, "probes")), 2);
    json_t *core = json_array_get(json_object_get(st, "probes"), 0);
    assert_string_equal(sb_json_str(core, "name"), "core");
    assert_true(json_is_false(json_object_get(core, "ok")));
    assert_string_equal(sb_json_str(core, "error"), "exit 1");
    json_decref(st);
    talon_watchdog_stop(w);

    /* a new watchdog on the same state dir resumes Critical and its
     * cooldowns: nothing runs again */
    if (talon_watchdog_start(&r.cfg, &w, &err) != 0)
        fail_msg("%s", err.msg);
    snap = talon_watchdog_snapshot(w);
    assert_string_equal(sb_json_str(snap, "state"), "Critical");
    json_decref(snap);
    json_decref(wait_failures(w, 9));
    json_decref(wait_state(w, "Critical", 2));
    assert_int_equal(count_lines(r.heal_log, "\n"), 1);
    assert_int_equal(count_lines(r.notify_log, "\"state\":\"Critical\""), 1);

    rig_flag(&r, "core.down", 0);
    snap = wait_state(w, "Healthy", 2);
    assert_int_equal(json_integer_value(json_object_get(snap, "consecutive_failures")), 0);
    assert_int_equal(json_array_size(json_object_get(snap, "failed_probes")), 0);
    json_decref(snap);
    talon_watchdog_stop(w);

    assert_true(count_lines(r.log, "\"event\":\"state_changed\"") >= 4);
    assert_int_equal(count_lines(r.log, "\"from\":\"Failed\",\"to\":\"Critical\""), 1);
    /* core, extra, and core again after the restart (per-probe counters
     * start afresh; the state and cooldowns do not) */
    assert_int_equal(count_lines(r.log, "\"event\":\"probe_failed\""), 3);
    assert_int_equal(count_lines(r.log, "\"event\":\"heal_ran\""), 1);
    assert_int_equal(count_lines(r.log, "\"event\":\"notify_sent\""), 1);
    assert_true(count_lines(r.log, "\"event\":\"heal_skipped_cooldown\"") >= 1);
    assert_true(count_lines(r.log, "\"event\":\"notify_skipped_cooldown\"") >= 1);
    assert_int_equal(count_lines(r.log, "\"event\":\"state_restored\""), 1);
    rig_done(&r);
}

static void watchdog_goes_critical_when_heal_fails_and_notifies_without_a_lease(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, two_probes);
    rig_flag(&r, "core.down", 1);
    r.cfg.heal_command = "sh -c 'echo cannot heal; exit 4'";
    r.cfg.critical_after_secs = 3600; /* only the failed heal can escalate */
    r.cfg.notify_secret = "sos_token";
    r.cfg.secrets_socket = "/nonexistent/secrets.sock";
    r.cfg.secrets_timeout_ms = 500;
    r.cfg.state_dir = NULL; /* no persistence: still works */
    struct talon_watchdog *w;
    struct sb_err err = { 0 };
    if (talon_watchdog_start(&r.cfg, &w, &err) != 0)
        fail_msg("%s", err.msg);
    json_decref(wait_state(w, "Critical", 2));
    int64_t deadline = sb_mono_ms() + 10000;
    while (count_lines(r.notify_log, "Critical") == 0 && sb_mono_ms() < deadline)
        sb_sleep_ms(20);
    talon_watchdog_stop(w);
    assert_int_equal(count_lines(r.notify_log, "\"state\":\"Critical\""), 1);
    assert_int_equal(count_lines(r.log, "\"event\":\"notify_lease_failed\""), 1);
    assert_int_equal(count_lines(r.log, "\"secret\":\"sos_token\""), 1);
    assert_int_equal(count_lines(r.log, "\"output\":\"cannot heal\\n\""), 1);
    assert_int_equal(count_lines(r.log, "\"from\":\"Healthy\",\"to\":\"Failed\""), 1);
    assert_int_equal(count_lines(r.log, "\"from\":\"Failed\",\"to\":\"Critical\""), 1);
    rig_done(&r);
}

static void watchdog_hot_reloads_and_keeps_old_probes_on_a_bad_file(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, two_probes);
    r.cfg.interval_secs = 3600; /* rounds come only from reloads */
    struct talon_watchdog *w;
    struct sb_err err = { 0 };
    if (talon_watchdog_start(&r.cfg, &w, &err) != 0)
        fail_msg("%s", err.msg);
    json_decref(wait_state(w, "Healthy", 2));

    /* a bad file: logged with file:line, the two probes stay */
    write_file(r.probes, "[probe core]\ntype = smoke-signal\n");
    int64_t deadline = sb_mono_ms() + 10000;
    while (count_lines(r.log, "probes_reload_failed") == 0 && sb_mono_ms() < deadline)
        sb_sleep_ms(20);
    assert_int_equal(count_lines(r.log, "\"event\":\"probes_reload_failed\""), 1);
    assert_true(count_lines(r.log, "probes.ini:2: type = 'smoke-signal'") >= 1);
    json_t *snap = talon_watchdog_snapshot(w);
    assert_int_equal(json_integer_value(json_object_get(snap, "probe_count")), 2);
    json_decref(snap);

    /* a good file is picked up by its mtime and runs at once */
    char text[300];
    snprintf(text, sizeof text,
             "[probe only]\ntype = script\ncritical = true\ncommand = test ! -e "
             "%s/only.down\n",
             r.dir);
    rig_flag(&r, "only.down", 1);
    write_file(r.probes, text);
    snap = wait_state(w, "Failed", 1);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(snap, "failed_probes"), 0)), "only");
    json_decref(snap);

    /* SIGHUP's path: an explicit reload runs a round even with no change */
    rig_flag(&r, "only.down", 0);
    talon_watchdog_reload(w);
    json_decref(wait_state(w, "Healthy", 1));
    talon_watchdog_stop(w);
    assert_int_equal(count_lines(r.log, "\"event\":\"probes_reloaded\""), 2);
    rig_done(&r);
}

static void check_once_reports_each_probe(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, two_probes);
    rig_flag(&r, "extra.down", 1);
    struct sb_err err = { 0 };
    json_t *rep = talon_watchdog_check_once(&r.cfg, &err);
    assert_non_null(rep);
    assert_true(json_is_false(json_object_get(rep, "ok")));
    json_t *p = json_object_get(rep, "probes");
    assert_int_equal(json_array_size(p), 2);
    json_t *core = json_array_get(p, 0), *extra = json_array_get(p, 1);
    assert_string_equal(sb_json_str(core, "name"), "core");
    assert_string_equal(sb_json_str(core, "type"), "script");
    assert_true(json_is_true(json_object_get(core, "ok")));
    assert_true(json_is_true(json_object_get(core, "critical")));
    assert_true(json_is_null(json_object_get(core, "error")));
    assert_true(json_is_integer(json_object_get(core, "ms")));
    /* one check, no threshold: --check shows what is wrong now */
    assert_true(json_is_false(json_object_get(extra, "ok")));
    assert_true(json_is_false(json_object_get(extra, "critical")));
    assert_string_equal(sb_json_str(extra, "error"), "exit 1");
    json_decref(rep);

    write_file(r.probes, "[probe a]\ntype = http\nurl = gopher://x/\n");
    assert_null(talon_watchdog_check_once(&r.cfg, &err));
    assert_non_null(strstr(err.msg, "probes.ini:3: url = 'gopher://x/'"));
    /* no probe file: nothing to check, ok */
    r.cfg.probe_file = NULL;
    rep = talon_watchdog_check_once(&r.cfg, &err);
    assert_true(json_is_true(json_object_get(rep, "ok")));
    assert_int_equal(json_array_size(json_object_get(rep, "probes")), 0);
    json_decref(rep);
    rig_done(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_reads_every_key_and_applies_defaults),
        cmocka_unit_test(parse_errors_name_file_line_key_and_value),
        cmocka_unit_test(parse_enforces_its_limits),
        cmocka_unit_test(http_probe_wants_2xx_or_the_expected_status),
        cmocka_unit_test(tcp_and_script_probes_report_why_they_fail),
        cmocka_unit_test(state_table_cells),
        cmocka_unit_test(cooldowns_count_from_the_last_run),
        cmocka_unit_test(watchdog_escalates_behind_cooldowns_and_survives_a_restart),
        cmocka_unit_test(watchdog_goes_critical_when_heal_fails_and_notifies_without_a_lease),
        cmocka_unit_test(watchdog_hot_reloads_and_keeps_old_probes_on_a_bad_file),
        cmocka_unit_test(check_once_reports_each_probe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
