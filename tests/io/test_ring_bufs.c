/*
 * tests/io/test_ring_bufs.c - io/ring_bufs.c: provided buffers under
 * multishot recv, over real loopback sockets.
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
/* Multishot recv with provided buffers                                      */

struct stream {
    size_t bytes;
    unsigned data_cqes, enobufs, rearms, refused, cqes;
    bool eof, order_ok;
};

/*
 * Drive a multishot recv until EOF, checking the bytes against pat().
 * hold: keep every buffer until -ENOBUFS arrives (a slow consumer), then
 * recycle them all and re-arm; otherwise recycle each buffer at once.
 */
static void recv_stream(ring *r, int fd, bool hold, struct stream *s)
{
    ring_bufs *b = ring_bufs_of(r);
    uint64_t ud = ring_ud_pack(RING_OP_RECV, 1, 1);
    uint64_t deadline = now_ns() + 20000 * MS;
    uint16_t *held = calloc(RING_BUFS_MAX_COUNT, sizeof *held);
    unsigned nheld = 0;
    ring_cqe cq[64];

    memset(s, 0, sizeof *s);
    s->order_ok = true;
    cr_assert_eq(ring_prep_recv_multishot(r, fd, ud), 0);
    while (!s->eof && now_ns() < deadline) {
        int ret = ring_wait(r, 1, 100 * MS);
        unsigned n;

        cr_assert(ret >= 0 || ret == -EINTR, "ring_wait %d", ret);
        while ((n = ring_reap(r, cq, 64)) > 0) {
            for (unsigned i = 0; i < n; i++) {
                ring_cqe *c = &cq[i];
                ring_rearm what = ring_recv_rearm(c);
                bool rearm = false;

                s->cqes++;
                cr_assert_eq(c->user_data, ud);
                if (c->res > 0) {
                    const uint8_t *p;

                    cr_assert(ring_cqe_has_buf(c));
                    p = ring_bufs_get(b, ring_cqe_bid(c));
                    cr_assert_leq((uint32_t)c->res, ring_bufs_size(b));
                    for (int32_t k = 0; k < c->res; k++)
                        if (p[k] != pat(s->bytes + (size_t)k))
                            s->order_ok = false;
                    s->bytes += (size_t)c->res;
                    s->data_cqes++;
                    if (hold)
                        held[nheld++] = ring_cqe_bid(c);
                    else
                        cr_assert_eq(ring_bufs_recycle(b, ring_cqe_bid(c)), 0);
                    rearm = what == RING_REARM_NOW;
                } else if (c->res == 0) {
                    cr_assert_eq(what, RING_REARM_NEVER);
                    ring_bufs_recycle_cqe(b, c);
                    s->eof = true;
                } else {
                    cr_assert_eq(c->res, -ENOBUFS, "recv: %d", c->res);
                    cr_assert_eq(what, RING_REARM_LATER);
                    s->enobufs++;
                    if (hold) {
                        /* The pool is dry: the guard refuses a
						 * re-arm instead of letting it spin. */
                        cr_assert_eq(ring_bufs_available(b), 0u);
                        cr_assert_eq(ring_prep_recv_multishot(r, fd, ud), -ENOBUFS);
                        s->refused++;
                        /* ...the consumer catches up later. */
                        for (unsigned k = 0; k < nheld; k++)
                            cr_assert_eq(ring_bufs_recycle(b, held[k]), 0);
                        nheld = 0;
                    }
                    rearm = true;
                }
                if (rearm && !s->eof) {
                    cr_assert_eq(ring_prep_recv_multishot(r, fd, ud), 0);
                    s->rearms++;
                }
            }
        }
    }
    for (unsigned k = 0; k < nheld; k++)
        ring_bufs_recycle(b, held[k]);
    free(held);
}

Test(recv, multishot_stream_with_recycling)
{
    ring_config cfg = ring_config_default();
    static struct writer w;
    struct stream s;
    pthread_t t;
    ring *r;
    int srv, cli;

    w = (struct writer){.total = 4u << 20, .chunk = 65536, .shut = true};
    cfg.buf_count = 64;
    cfg.buf_size = 4096;
    r = mk_ring(&cfg);
    tcp_pair(&srv, &cli);
    w.fd = cli;
    cr_assert_eq(pthread_create(&t, NULL, writer_main, &w), 0);
    recv_stream(r, srv, false, &s);
    pthread_join(t, NULL);
    cr_expect(s.eof);
    cr_expect_eq(s.bytes, w.total);
    cr_expect(s.order_ok);
    cr_expect_geq(s.data_cqes, (unsigned)(w.total / 4096));
    cr_expect_eq(ring_bufs_held(ring_bufs_of(r)), 0u);
    cr_log_info("4 MiB over 64 x 4 KiB: %u data CQEs, %u ENOBUFS, %u re-arms", s.data_cqes,
                s.enobufs, s.rearms);
    ring_free(r);
    close(srv);
    close(cli);
}

Test(recv, enobufs_backpressure_no_spin)
{
    ring_config cfg = ring_config_default();
    static struct writer w;
    struct stream s;
    pthread_t t;
    ring *r;
    int srv, cli;

    w = (struct writer){.total = 256u << 10, .chunk = 8192, .shut = true};
    cfg.buf_count = 4;
    cfg.buf_size = 1024;
    r = mk_ring(&cfg);
    tcp_pair(&srv, &cli);
    w.fd = cli;
    cr_assert_eq(pthread_create(&t, NULL, writer_main, &w), 0);
    recv_stream(r, srv, true, &s);
    pthread_join(t, NULL);
    cr_expect(s.eof);
    cr_expect_eq(s.bytes, w.total);
    cr_expect(s.order_ok, "bytes out of order or corrupted");
    cr_expect_gt(s.enobufs, 0u, "a 4 KiB pool never ran dry?");
    cr_expect_eq(s.refused, s.enobufs);
    /* No spin: every -ENOBUFS follows a full pool's worth of data, so
	 * there are at most data/4 + 1 of them, and every CQE is data,
	 * -ENOBUFS or the one EOF. */
    cr_expect_leq(s.enobufs, s.data_cqes / 4 + 1, "%u ENOBUFS for %u data", s.enobufs, s.data_cqes);
    cr_expect_leq(s.cqes, s.data_cqes + s.enobufs + 1);
    cr_log_info("256 KiB through 4 x 1 KiB: %u CQEs (%u data, %u ENOBUFS)", s.cqes, s.data_cqes,
                s.enobufs);
    ring_free(r);
    close(srv);
    close(cli);
}

Test(recv, eof_and_buffer_rules)
{
    ring *r = mk_ring(NULL);
    ring_bufs *b = ring_bufs_of(r);
    uint64_t ud = ring_ud_pack(RING_OP_RECV, 2, 1);
    ring_cqe cq[8];
    unsigned n;
    int srv, cli;
    uint16_t bid;

    tcp_pair(&srv, &cli);
    cr_assert_eq(ring_prep_recv_multishot(r, srv, ud), 0);
    cr_assert_eq(send(cli, "abc", 3, 0), 3);
    n = collect(r, cq, 1, 8, 2000);
    cr_assert_eq(n, 1u);
    cr_assert_eq(cq[0].res, 3);
    cr_assert(ring_cqe_more(&cq[0]));
    bid = ring_cqe_bid(&cq[0]);
    cr_expect_eq(memcmp(ring_bufs_get(b, bid), "abc", 3), 0);
    cr_expect_eq(ring_bufs_held(b), 1u);
    cr_expect_eq(ring_bufs_available(b), 511u);
    /* Recycling is checked: once only, and only what we hold. */
    cr_expect_eq(ring_bufs_recycle(b, bid), 0);
    cr_expect_eq(ring_bufs_recycle(b, bid), -EINVAL);
    cr_expect_eq(ring_bufs_recycle(b, (uint16_t)((bid + 1) % 512)), -EINVAL);
    cr_expect_eq(ring_bufs_recycle(b, 600), -EINVAL);
    cr_expect_null(ring_bufs_get(b, 600));
    /* EOF: res 0, the multishot is over. */
    shutdown(cli, SHUT_WR);
    n = collect(r, cq, 1, 8, 2000);
    cr_assert_eq(n, 1u);
    cr_expect_eq(cq[0].res, 0);
    cr_expect_not(ring_cqe_more(&cq[0]));
    ring_bufs_recycle_cqe(b, &cq[0]);
    cr_expect_eq(ring_bufs_held(b), 0u);
    ring_free(r);
    close(srv);
    close(cli);
}

Test(recv, no_buffer_ring_is_einval)
{
    ring_config cfg = ring_config_default();
    ring *r;

    cfg.buf_count = 0;
    r = mk_ring(&cfg);
    cr_expect_null(ring_bufs_of(r));
    cr_expect_eq(ring_prep_recv_multishot(r, 0, 1), -EINVAL);
    ring_free(r);
}
