/* Unit tests for common/sdnotify: datagrams reach a socket named by
 * NOTIFY_SOCKET (filesystem path and abstract '@' name), nothing happens
 * without it, bad addresses and unreachable sockets are errors, and the
 * watchdog interval honours WATCHDOG_PID. Each test binds its own datagram
 * socket in a fresh temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/err.h"
#include "common/sdnotify.h"

struct listener {
    int fd;
    char dir[64];
    char path[96];
};

/* Binds a datagram socket at <tmpdir>/notify.sock, or at the abstract name
 * when abstract_name is given; NOTIFY_SOCKET is set to match. */
static void listen_on(struct listener *l, const char *abstract_name)
{
    memset(l, 0, sizeof *l);
    l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(l->fd >= 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    socklen_t len;
    if (abstract_name) {
        size_t n = strlen(abstract_name);
        memcpy(sa.sun_path + 1, abstract_name, n);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
        snprintf(l->path, sizeof l->path, "@%s", abstract_name);
    } else {
        snprintf(l->dir, sizeof l->dir, "/tmp/sb-sdnotify-XXXXXX");
        assert_non_null(mkdtemp(l->dir));
        snprintf(l->path, sizeof l->path, "%s/notify.sock", l->dir);
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", l->path);
        len = sizeof sa;
    }
    assert_int_equal(bind(l->fd, (struct sockaddr *)&sa, len), 0);
    setenv("NOTIFY_SOCKET", l->path, 1);
}

/* Receives one datagram (waiting at most 2 s) into buf as a string. */
static ssize_t receive(struct listener *l, char *buf, size_t bufsz)
{
    struct timeval tv = { 2, 0 };
    setsockopt(l->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = recv(l->fd, buf, bufsz - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return n;
}

static void close_listener(struct listener *l)
{
    close(l->fd);
    if (l->dir[0]) {
        unlink(l->path);
        rmdir(l->dir);
    }
    unsetenv("NOTIFY_SOCKET");
}

static void ready_reaches_a_socket_named_by_path(void **state)
{
    (void)state;
    struct listener l;
    listen_on(&l, NULL);
    assert_int_equal(sb_sd_notify("READY=1"), 1);
    char buf[256];
    assert_int_equal(receive(&l, buf, sizeof buf), 7);
    assert_string_equal(buf, "READY=1");
    close_listener(&l);
}

static void several_assignments_travel_in_one_datagram(void **state)
{
    (void)state;
    struct listener l;
    listen_on(&l, NULL);
    assert_int_equal(sb_sd_notifyf("STOPPING=1\nSTATUS=draining %d calls", 3), 1);
    assert_int_equal(sb_sd_notify("WATCHDOG=1"), 1);
    char buf[256];
    receive(&l, buf, sizeof buf);
    assert_string_equal(buf, "STOPPING=1\nSTATUS=draining 3 calls");
    receive(&l, buf, sizeof buf);
    assert_string_equal(buf, "WATCHDOG=1");
    close_listener(&l);
}

static void abstract_socket_names_start_with_at(void **state)
{
    (void)state;
    char name[64];
    snprintf(name, sizeof name, "sb-sdnotify-test-%d", (int)getpid());
    struct listener l;
    listen_on(&l, name);
    assert_int_equal(sb_sd_notify("READY=1"), 1);
    char buf[256];
    receive(&l, buf, sizeof buf);
    assert_string_equal(buf, "READY=1");
    close_listener(&l);
}

static void without_notify_socket_nothing_is_sent(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(sb_sd_notify("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(sb_sd_notify("READY=1"), 0);
    unsetenv("NOTIFY_SOCKET");
}

static void bad_addresses_and_missing_sockets_are_errors(void **state)
{
    (void)state;
    setenv("NOTIFY_SOCKET", "relative/notify.sock", 1);
    assert_int_equal(sb_sd_notify("READY=1"), SB_EINVAL);
    setenv("NOTIFY_SOCKET", "@", 1);
    assert_int_equal(sb_sd_notify("READY=1"), SB_EINVAL);
    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    setenv("NOTIFY_SOCKET", longpath, 1);
    assert_int_equal(sb_sd_notify("READY=1"), SB_EINVAL);
    setenv("NOTIFY_SOCKET", "/nonexistent-dir-sb/notify.sock", 1);
    assert_int_equal(sb_sd_notify("READY=1"), SB_EIO);
    assert_int_equal(errno, ENOENT);
    struct listener l;
    listen_on(&l, NULL);
    assert_int_equal(sb_sd_notify(""), SB_EINVAL);
    assert_int_equal(sb_sd_notify(NULL), SB_EINVAL);
    close_listener(&l);
}

static void watchdog_interval_is_for_this_process_only(void **state)
{
    (void)state;
    uint64_t usec = 0;
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    assert_int_equal(sb_sd_watchdog_usec(&usec), 0);
    setenv("WATCHDOG_USEC", "30000000", 1);
    assert_int_equal(sb_sd_watchdog_usec(&usec), 1);
    assert_int_equal(usec, 30000000);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    usec = 0;
    assert_int_equal(sb_sd_watchdog_usec(&usec), 1);
    assert_int_equal(usec, 30000000);
    snprintf(pid, sizeof pid, "%d", (int)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(sb_sd_watchdog_usec(&usec), 0);
    setenv("WATCHDOG_PID", "x", 1);
    assert_int_equal(sb_sd_watchdog_usec(&usec), SB_EINVAL);
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "soon", 1);
    assert_int_equal(sb_sd_watchdog_usec(&usec), SB_EINVAL);
    setenv("WATCHDOG_USEC", "0", 1);
    assert_int_equal(sb_sd_watchdog_usec(&usec), SB_EINVAL);
    unsetenv("WATCHDOG_USEC");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ready_reaches_a_socket_named_by_path),
        cmocka_unit_test(several_assignments_travel_in_one_datagram),
        cmocka_unit_test(abstract_socket_names_start_with_at),
        cmocka_unit_test(without_notify_socket_nothing_is_sent),
        cmocka_unit_test(bad_addresses_and_missing_sockets_are_errors),
        cmocka_unit_test(watchdog_interval_is_for_this_process_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
