/* test_listen_fds.c - core/listen_fds.c: systemd's LISTEN_FDS protocol on
 * real sockets, and the per-shard dups.  The sockets sit at fds FIRST and
 * FIRST + 1 (listen_fds_take_at): fd 3 belongs to Criterion here; the
 * protocol at fd 3 is tested end to end by integration.handover. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listen_fds.h"

#define FIRST 300

/* A listening TCP socket on 127.0.0.1, any port. */
static int tcp_listener(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(fd >= 0);
    cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    cr_assert(listen(fd, 16) == 0);
    return fd;
}

/* Put fd at FIRST + i. */
static void place(int fd, int i)
{
    cr_assert(dup2(fd, FIRST + i) == FIRST + i);
    close(fd);
}

static void restore(void)
{
    close(FIRST);
    close(FIRST + 1);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
}

static void set_env(long pid, int n, const char *names)
{
    char b[32];
    snprintf(b, sizeof b, "%ld", pid);
    setenv("LISTEN_PID", b, 1);
    snprintf(b, sizeof b, "%d", n);
    setenv("LISTEN_FDS", b, 1);
    if (names)
        setenv("LISTEN_FDNAMES", names, 1);
}

TestSuite(listen_fds, .fini = restore);

Test(listen_fds, absent_variables_take_nothing)
{
    listen_set ls;
    listen_set_init(&ls);
    char why[128];
    cr_assert_eq(listen_fds_take_at(&ls, FIRST, why, sizeof why), 0);
    cr_assert_eq(ls.n + ls.ntls, 0);
    cr_assert_eq(listen_set_for_shard(&ls, false, 0), -1, "none inherited: bind");
}

Test(listen_fds, another_pid_is_ignored)
{
    place(tcp_listener(), 0);
    set_env((long)getpid() + 1, 1, NULL);
    listen_set ls;
    listen_set_init(&ls);
    char why[128];
    cr_assert_eq(listen_fds_take_at(&ls, FIRST, why, sizeof why), 0);
    cr_assert_eq(ls.n, 0);
}

Test(listen_fds, named_sockets_sorted_and_env_cleared)
{
    place(tcp_listener(), 0);
    place(tcp_listener(), 1);
    set_env((long)getpid(), 2, "web:tls");
    listen_set ls;
    listen_set_init(&ls);
    char why[128];
    cr_assert_eq(listen_fds_take_at(&ls, FIRST, why, sizeof why), 2);
    cr_assert_eq(ls.n, 1);
    cr_assert_eq(ls.ntls, 1);
    cr_assert_eq(ls.fds[0], FIRST);
    cr_assert_eq(ls.tls_fds[0], FIRST + 1);
    cr_assert(fcntl(FIRST, F_GETFD) & FD_CLOEXEC);
    cr_assert_null(getenv("LISTEN_PID"));
    cr_assert_null(getenv("LISTEN_FDS"));
    cr_assert_null(getenv("LISTEN_FDNAMES"));
    /* Shards dup the one socket: same socket, new fd, close-on-exec. */
    int a = listen_set_for_shard(&ls, false, 0), b = listen_set_for_shard(&ls, false, 5);
    cr_assert(a >= 0 && b >= 0 && a != b && a != FIRST && b != FIRST);
    cr_assert(fcntl(a, F_GETFD) & FD_CLOEXEC);
    struct sockaddr_in x, y;
    socklen_t lx = sizeof x, ly = sizeof y;
    getsockname(a, (struct sockaddr *)&x, &lx);
    getsockname(FIRST, (struct sockaddr *)&y, &ly);
    cr_assert_eq(x.sin_port, y.sin_port);
    close(a);
    close(b);
    int t = listen_set_for_shard(&ls, true, 1);
    cr_assert(t >= 0 && t != FIRST + 1);
    close(t);
    listen_set_close(&ls);
    cr_assert_eq(fcntl(FIRST, F_GETFD), -1, "closed by listen_set_close");
}

Test(listen_fds, a_socket_that_does_not_listen_is_refused)
{
    int sv[2];
    cr_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    close(sv[1]);
    place(sv[0], 0);
    set_env((long)getpid(), 1, NULL);
    listen_set ls;
    listen_set_init(&ls);
    char why[128] = "";
    cr_assert_eq(listen_fds_take_at(&ls, FIRST, why, sizeof why), -1);
    cr_assert(strstr(why, "fd 300 is not a listening"), "%s", why);
}

Test(listen_fds, set_is_bounded)
{
    listen_set ls;
    listen_set_init(&ls);
    for (uint32_t i = 0; i < LISTEN_SET_MAX; i++)
        cr_assert_eq(listen_set_add(&ls, 1000 + (int)i, false), 0);
    cr_assert_eq(listen_set_add(&ls, 1, false), -1);
    cr_assert_eq(listen_set_add(&ls, 1, true), 0);
    ls.n = ls.ntls = 0; /* fake fds: nothing to close */
}
