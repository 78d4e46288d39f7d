/*
 * tests/io/ring_test_util.c - the io/ring tests' shared helpers
 * (ring_test_util.h).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "ring_listen.h"
#include "ring_test_util.h"

uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint8_t pat(size_t i)
{
    return (uint8_t)((i * 131u + (i >> 9)) & 0xffu);
}

ring *mk_ring(const ring_config *cfg)
{
    ring_error err;
    ring *r = NULL;
    int ret = ring_new(&r, cfg, &err);

    cr_assert_eq(ret, 0, "ring_new: %d %s", ret, err.msg);
    cr_assert_not_null(r);
    return r;
}

int mk_listener(int *port)
{
    ring_error err;
    int fd = ring_listen_tcp("127.0.0.1", 0, 64, false, &err);

    cr_assert_geq(fd, 0, "listen: %s", err.msg);
    *port = ring_listen_port(fd);
    cr_assert_gt(*port, 0);
    return fd;
}

int connect_to(int family, int port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ret;

    cr_assert_geq(fd, 0);
    if (family == AF_INET6) {
        struct sockaddr_in6 a;

        memset(&a, 0, sizeof a);
        a.sin6_family = AF_INET6;
        a.sin6_addr = in6addr_loopback;
        a.sin6_port = htons((uint16_t)port);
        ret = connect(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a;

        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)port);
        ret = connect(fd, (struct sockaddr *)&a, sizeof a);
    }
    cr_assert_eq(ret, 0, "connect: %s", strerror(errno));
    return fd;
}

/* A connected pair: *srv is the accepted end (the ring's side). */
void tcp_pair(int *srv, int *cli)
{
    int port, lfd = mk_listener(&port);

    *cli = connect_to(AF_INET, port);
    do {
        *srv = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    } while (*srv < 0 && errno == EAGAIN); /* the listener is non-blocking */
    cr_assert_geq(*srv, 0);
    close(lfd);
}

/* Wait and reap until `want` CQEs are collected or timeout_ms passes. */
unsigned collect(ring *r, ring_cqe *out, unsigned want, unsigned max, uint64_t timeout_ms)
{
    uint64_t deadline = now_ns() + timeout_ms * MS;
    unsigned n = 0;

    while (n < want && now_ns() < deadline) {
        int ret = ring_wait(r, 1, 50 * MS);

        cr_assert(ret >= 0 || ret == -EINTR, "ring_wait: %d", ret);
        n += ring_reap(r, out + n, max - n);
    }
    return n;
}

void read_exact(int fd, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = recv(fd, (char *)buf + got, len - got, 0);

        cr_assert_gt(n, 0, "recv: %zd %s", n, strerror(errno));
        got += (size_t)n;
    }
}

void *writer_main(void *arg)
{
    struct writer *w = arg;
    uint8_t *buf = malloc(w->chunk);
    size_t off = 0;

    while (off < w->total) {
        size_t n = w->total - off < w->chunk ? w->total - off : w->chunk;
        ssize_t s;

        for (size_t i = 0; i < n; i++)
            buf[i] = pat(off + i);
        s = send(w->fd, buf, n, MSG_NOSIGNAL);
        if (s <= 0)
            break;
        off += (size_t)s;
    }
    free(buf);
    if (w->shut)
        shutdown(w->fd, SHUT_WR);
    return NULL;
}

void *reader_main(void *arg)
{
    struct reader *rd = arg;
    uint8_t buf[65536];

    rd->pattern_ok = true;
    while (rd->got < rd->total) {
        ssize_t n = recv(rd->fd, buf, sizeof buf, 0);

        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pat(rd->got + (size_t)i))
                rd->pattern_ok = false;
        rd->got += (size_t)n;
    }
    return NULL;
}
