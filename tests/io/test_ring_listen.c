/*
 * tests/io/test_ring_listen.c - io/ring_listen.c, and multishot accept on
 * its listeners, over real loopback sockets.
 *
 * Criterion forks each test: every ring, thread and socket is made inside the
 * test and closed there. Ports are always 0 (kernel-chosen).
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

#include "ring.h"
#include "ring_bufs.h"
#include "ring_listen.h"
#include "ring_test_util.h"

/* ------------------------------------------------------------------------ */
/* Listener and accept                                                       */

Test(listen, ipv4_port0_and_nodelay_inherited)
{
    int port, lfd = mk_listener(&port);
    int cli = connect_to(AF_INET, port);
    int srv, v = 0;
    socklen_t len = sizeof v;

    do {
        srv = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    } while (srv < 0 && errno == EAGAIN);
    cr_assert_geq(srv, 0);
    cr_assert_eq(getsockopt(srv, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
    cr_expect_neq(v, 0, "TCP_NODELAY not inherited from the listener");
    close(srv);
    close(cli);
    close(lfd);
}

Test(listen, ipv6_and_wildcard_dualstack)
{
    ring_error err;
    int fd6 = ring_listen_tcp("[::1]", 0, 16, false, &err);
    int port, cli, any;

    if (fd6 == -EADDRNOTAVAIL || fd6 == -EAFNOSUPPORT)
        cr_skip_test("no IPv6 loopback: %s", err.msg);
    cr_assert_geq(fd6, 0, "%s", err.msg);
    port = ring_listen_port(fd6);
    cr_assert_gt(port, 0);
    cli = connect_to(AF_INET6, port);
    close(cli);
    close(fd6);

    /* NULL host: "::" with V6ONLY off takes IPv4 too. */
    any = ring_listen_tcp(NULL, 0, 16, false, &err);
    cr_assert_geq(any, 0, "%s", err.msg);
    port = ring_listen_port(any);
    cli = connect_to(AF_INET, port);
    close(cli);
    close(any);
}

Test(listen, reuseport_and_errors)
{
    ring_error err;
    int a = ring_listen_tcp("127.0.0.1", 0, 16, true, &err);
    int port, b, c;

    cr_assert_geq(a, 0, "%s", err.msg);
    port = ring_listen_port(a);
    /* A second shard's listener on the same port. */
    b = ring_listen_tcp("127.0.0.1", (uint16_t)port, 16, true, &err);
    cr_expect_geq(b, 0, "%s", err.msg);
    /* Without SO_REUSEPORT the port is taken; the message says where. */
    c = ring_listen_tcp("127.0.0.1", (uint16_t)port, 16, false, &err);
    cr_expect_eq(c, -EADDRINUSE);
    cr_expect_not_null(strstr(err.msg, "bind 127.0.0.1:"), "%s", err.msg);
    c = ring_listen_tcp("no.such.host.invalid", 0, 16, false, &err);
    cr_expect_lt(c, 0);
    cr_expect_not_null(strstr(err.msg, "no.such.host.invalid"), "%s", err.msg);
    if (b >= 0)
        close(b);
    close(a);
}

struct connector {
    int port;
    int n;
    int fds[16];
};

static void *connector_main(void *arg)
{
    struct connector *c = arg;

    for (int i = 0; i < c->n; i++)
        c->fds[i] = connect_to(AF_INET, c->port);
    return NULL;
}

Test(accept, multishot_several_from_thread)
{
    ring *r = mk_ring(NULL);
    int port, lfd = mk_listener(&port);
    uint64_t ud = ring_ud_pack(RING_OP_ACCEPT, 0, 1);
    static struct connector c;
    pthread_t t;
    ring_cqe cq[32];
    unsigned n, accepted = 0;

    c = (struct connector){.port = port, .n = 8};

    cr_assert_eq(ring_prep_accept_multishot(r, lfd, ud), 0);
    cr_assert_eq(ring_submit(r), 2); /* the accept and the doorbell */
    cr_assert_eq(pthread_create(&t, NULL, connector_main, &c), 0);
    n = collect(r, cq, 8, 32, 5000);
    pthread_join(t, NULL);
    for (unsigned i = 0; i < n; i++) {
        int v = 0;
        socklen_t len = sizeof v;

        cr_assert_eq(cq[i].user_data, ud);
        cr_assert_geq(cq[i].res, 0, "accept: %d", cq[i].res);
        /* Multishot stays armed across all of them. */
        cr_expect(ring_cqe_more(&cq[i]));
        cr_expect_eq(ring_accept_rearm(&cq[i]), RING_REARM_NONE);
        getsockopt(cq[i].res, IPPROTO_TCP, TCP_NODELAY, &v, &len);
        cr_expect_neq(v, 0);
        close(cq[i].res);
        accepted++;
    }
    cr_expect_eq(accepted, 8u);
    for (int i = 0; i < c.n; i++)
        close(c.fds[i]);
    ring_free(r);
    close(lfd);
}

Test(accept, rearm_when_more_clear)
{
    ring *r = mk_ring(NULL);
    int port, lfd = mk_listener(&port);
    uint64_t ud = ring_ud_pack(RING_OP_ACCEPT, 0, 1);
    uint64_t cud = ring_ud_pack(RING_OP_CANCEL, 0, 1);
    ring_cqe cq[8];
    unsigned n;
    int cli;
    bool ended = false;

    cr_assert_eq(ring_prep_accept_multishot(r, lfd, ud), 0);
    cr_assert_geq(ring_submit(r), 1);
    /* Ending it (here by cancel) gives a CQE without F_MORE. */
    cr_assert_eq(ring_prep_cancel(r, ud, cud), 0);
    n = collect(r, cq, 2, 8, 2000);
    cr_assert_eq(n, 2u);
    for (unsigned i = 0; i < n; i++) {
        if (cq[i].user_data == ud) {
            cr_expect_eq(cq[i].res, -ECANCELED);
            cr_expect_not(ring_cqe_more(&cq[i]));
            /* The policy: we cancelled it, so it stays down... */
            cr_expect_eq(ring_accept_rearm(&cq[i]), RING_REARM_NEVER);
            ended = true;
        } else {
            cr_expect_eq(cq[i].user_data, cud);
            cr_expect_geq(cq[i].res, 0);
        }
    }
    cr_assert(ended);
    /* ...but the mechanics of a re-arm are the same for every cause. */
    cr_assert_eq(ring_prep_accept_multishot(r, lfd, ud), 0);
    cr_assert_geq(ring_submit(r), 1);
    cli = connect_to(AF_INET, port);
    n = collect(r, cq, 1, 8, 2000);
    cr_assert_eq(n, 1u);
    cr_expect_eq(cq[0].user_data, ud);
    cr_expect_geq(cq[0].res, 0);
    cr_expect(ring_cqe_more(&cq[0]));
    close(cq[0].res);
    close(cli);
    ring_free(r);
    close(lfd);
}
