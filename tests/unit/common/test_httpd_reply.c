/* Unit tests for the HTTP glue's "one answer per request" rule, through its
 * API on a real loopback daemon: a second reply is refused (and neither
 * counted nor logged as an error again), a handler that does not reply gets
 * a 500 with one log line, and a 5xx's log line carries the redacted path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/httpd.h"
#include "common/log.h"

static int replies; /* on_reply calls */

static void twice(struct sb_req *r)
{
    sb_reply_error(r, 503, "FIRST", "first answer");
    sb_reply_error(r, 500, "SECOND", "second answer");
}

static void none(struct sb_req *r)
{
    (void)r;
}

static void count_reply(struct sb_req *r, int status)
{
    (void)r, (void)status;
    __atomic_add_fetch(&replies, 1, __ATOMIC_RELAXED);
}

static const struct sb_route routes[] = {
    { "GET", "/e/{}", twice, 0, 0 },
    { "GET", "/none", none, 0, 0 },
};

/* One request on its own connection; returns the whole answer (malloc'd). */
static char *get(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char req[256];
    int n =
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t cap = 4096, len = 0;
    char *out = calloc(1, cap);
    ssize_t r;
    while ((r = read(fd, out + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    return out;
}

static int count(const char *log, const char *needle)
{
    int n = 0;
    for (const char *p = log; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* Starts a daemon whose log goes to a pipe; *logfd reads it. */
static struct sb_httpd *start(int *logfd)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    sb_log_init("t", SB_INFO, p[1]);
    *logfd = p[0];
    struct sb_httpd_config cfg = { .host = "127.0.0.1",
                                   .threads = 1,
                                   .body_max = 1024,
                                   .routes = routes,
                                   .nroutes = sizeof routes / sizeof routes[0],
                                   .on_reply = count_reply };
    struct sb_httpd *d = NULL;
    struct sb_err err = { 0 };
    assert_int_equal(sb_httpd_start(&cfg, &d, &err), 0);
    return d;
}

static char *drain(int fd)
{
    static char buf[65536];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void a_second_reply_is_refused_and_logged_once(void **state)
{
    (void)state;
    int logfd;
    struct sb_httpd *d = start(&logfd);
    replies = 0;
    char *answer = get(sb_httpd_port(d), "/e/the-secret-key");
    sb_httpd_stop(d);
    assert_non_null(strstr(answer, "HTTP/1.1 503"));
    assert_non_null(strstr(answer, "first answer"));
    assert_null(strstr(answer, "second answer"));
    free(answer);
    const char *log = drain(logfd);
    assert_int_equal(replies, 1);
    assert_int_equal(count(log, "\"event\":\"http_error\""), 1);
    assert_int_equal(count(log, "\"event\":\"http_double_reply\""), 1);
    assert_int_equal(count(log, "\"path\":\"/e/<redacted>\""), 2);
    assert_null(strstr(log, "the-secret-key"));
    close(logfd);
}

static void a_handler_without_reply_gets_one_500_and_one_line(void **state)
{
    (void)state;
    int logfd;
    struct sb_httpd *d = start(&logfd);
    replies = 0;
    char *answer = get(sb_httpd_port(d), "/none");
    sb_httpd_stop(d);
    assert_non_null(strstr(answer, "HTTP/1.1 500"));
    free(answer);
    const char *log = drain(logfd);
    assert_int_equal(replies, 1);
    assert_int_equal(count(log, "\"event\":\"http_no_reply\""), 1);
    assert_int_equal(count(log, "\"level\":"), 1); /* and no http_error line besides */
    close(logfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_second_reply_is_refused_and_logged_once),
        cmocka_unit_test(a_handler_without_reply_gets_one_500_and_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
