/*
 * tests/io/test_ring.c - io/ring.c over real loopback sockets (the
 * listeners: test_ring_listen.c; provided buffers: test_ring_bufs.c).
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
/* Setup and teardown                                                        */

Test(ring, init_teardown)
{
    ring_config cfg = ring_config_default();
    ring *r = mk_ring(&cfg);
    ring_stats st;
    ring_bufs *b = ring_bufs_of(r);
    uint32_t want = SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN | SETUP_SUBMIT_ALL | SETUP_CQSIZE;

    ring_get_stats(r, &st);
    cr_expect_eq(st.setup_flags & want, want, "flags 0x%x", st.setup_flags);
    cr_log_info("setup flags 0x%x, features 0x%x, cq %u", st.setup_flags, st.features,
                st.cq_entries);
    cr_expect_eq(st.sq_entries, 256u);
    cr_expect_eq(st.cq_entries, ring_cq_budget(&cfg));
    cr_expect_eq(st.cq_entries & (st.cq_entries - 1), 0u);
    cr_expect(st.ring_fd_registered);
    cr_expect_geq(ring_fd(r), 0);
    cr_expect_geq(ring_waker_of(r).fd, 0);
    cr_assert_not_null(b);
    cr_expect_eq(ring_bufs_available(b), 512u);
    cr_expect_eq(ring_bufs_size(b), 16384u);
    cr_expect_eq(ring_bufs_held(b), 0u);
    /* Nothing in flight but the doorbell: a poll finds nothing. */
    cr_expect_eq(ring_wait(r, 0, 0), 0);
    ring_free(r);
    ring_free(NULL);
}

Test(ring, cq_budget_formula)
{
    ring_config cfg = ring_config_default();
    ring_error err;
    ring *r = NULL;

    /* 1024*5 + 512 + 1*(4096+1) + 64 + 256 + 256 = 10305 -> 16384 */
    cr_expect_eq(ring_cq_budget(&cfg), 16384u);
    cfg.max_conns = 16;
    cfg.buf_count = 0;
    cfg.accept_backlog = 64;
    /* 80 + 0 + 65 + 64 + 256 + 256 = 721 -> 1024 */
    cr_expect_eq(ring_cq_budget(&cfg), 1024u);

    cfg = ring_config_default();
    cfg.max_conns = 100000;
    cr_expect_eq(ring_cq_budget(&cfg), 0u);
    cr_expect_eq(ring_new(&r, &cfg, &err), -EINVAL);
    cr_expect_null(r);
    cr_expect_eq(err.code, -EINVAL);
    cr_expect_not_null(strstr(err.msg, "max_conns"), "%s", err.msg);
}

Test(ring, config_rejected)
{
    ring_config cfg = ring_config_default();
    ring_error err;
    ring *r = NULL;

    cfg.buf_count = 300; /* not a power of two */
    cr_expect_eq(ring_new(&r, &cfg, &err), -EINVAL);
    cr_expect_null(r);
    cr_expect_not_null(strstr(err.msg, "power of two"), "%s", err.msg);

    cfg = ring_config_default();
    cfg.sq_entries = 0;
    cr_expect_eq(ring_new(&r, &cfg, &err), -EINVAL);
    cr_expect_not_null(strstr(err.msg, "sq_entries"), "%s", err.msg);
}

/* Every prep refuses bad arguments with -EINVAL and queues nothing. */
Test(ring, prep_rejects_bad_arguments)
{
    ring *r = mk_ring(NULL);
    struct msghdr mh;
    ring_cqe c;

    memset(&mh, 0, sizeof mh);
    cr_expect_eq(ring_prep_accept_multishot(r, -1, 1), -EINVAL);
    cr_expect_eq(ring_prep_recv_multishot(r, -1, 1), -EINVAL);
    cr_expect_eq(ring_prep_send(r, -1, "x", 1, 0, 1), -EINVAL);
    cr_expect_eq(ring_prep_send(r, 0, NULL, 1, 0, 1), -EINVAL);
    cr_expect_eq(ring_prep_send(r, 0, "x", (size_t)UINT32_MAX + 1, 0, 1), -EINVAL);
    cr_expect_eq(ring_prep_send_zc(r, -1, "x", 1, 0, 1), -EINVAL);
    cr_expect_eq(ring_prep_send_zc(r, 0, NULL, 1, 0, 1), -EINVAL);
    cr_expect_eq(ring_prep_sendmsg(r, -1, &mh, 0, 1), -EINVAL);
    cr_expect_eq(ring_prep_sendmsg(r, 0, NULL, 0, 1), -EINVAL);
    cr_expect_eq(ring_prep_sendmsg_zc(r, -1, &mh, 0, 1), -EINVAL);
    cr_expect_eq(ring_prep_sendmsg_zc(r, 0, NULL, 0, 1), -EINVAL);
    cr_expect_eq(ring_prep_shutdown(r, -1, SHUT_WR, 1), -EINVAL);
    cr_expect_eq(ring_prep_close(r, -1, 1), -EINVAL);
    cr_expect_eq(ring_prep_cancel_fd(r, -1, 1), -EINVAL);
    cr_expect_eq(ring_prep_msg(r, -1, 1, 2, 1), -EINVAL);
    /* Nothing was queued: the ring posts no CQE (the doorbell's read
     * stays armed and silent). */
    cr_expect_eq(ring_wait(r, 0, 0), 0);
    cr_expect_eq(ring_reap(r, &c, 1), 0u);
    ring_free(r);
}

/*
 * The non-root ENOMEM path for real: as an unprivileged euid with
 * RLIMIT_MEMLOCK 0, the buffer ring's pinned pages cannot be charged. This
 * forked test process changes only its own credentials.
 */
Test(ring, memlock_error_names_limit)
{
    struct rlimit old, lim;
    ring_error err;
    ring *r = NULL;
    int ret;

    if (geteuid() != 0)
        cr_skip_test("needs root to switch to an unprivileged euid");
    cr_assert_eq(getrlimit(RLIMIT_MEMLOCK, &old), 0);
    lim = old;
    lim.rlim_cur = 0;
    cr_assert_eq(setrlimit(RLIMIT_MEMLOCK, &lim), 0);
    cr_assert_eq(seteuid(65534), 0);
    ret = ring_new(&r, NULL, &err);
    cr_assert_eq(seteuid(0), 0);
    setrlimit(RLIMIT_MEMLOCK, &old);
    if (ret == 0) {
        ring_free(r);
        cr_skip_test("this kernel charged nothing to RLIMIT_MEMLOCK");
    }
    cr_expect_eq(ret, -ENOMEM, "%d %s", ret, err.msg);
    cr_expect_not_null(strstr(err.msg, "RLIMIT_MEMLOCK is 0 KiB"), "%s", err.msg);
    /* The whole advice fits in the message. */
    cr_expect_not_null(strstr(err.msg, "buf_count)"), "%s", err.msg);
    cr_log_info("non-root ENOMEM message: %s", err.msg);
}

Test(ring, wait_timeout_returns_zero)
{
    ring *r = mk_ring(NULL);
    uint64_t t0 = now_ns();
    int ret = ring_wait(r, 1, 50 * MS);
    uint64_t dt = now_ns() - t0;

    cr_expect_eq(ret, 0);
    cr_expect_geq(dt, 40 * MS);
    cr_expect_lt(dt, 2000 * MS);
    ring_free(r);
}

/* The low-latency spin: a request that arrives while the shard spins is
 * received by a GETEVENTS enter, without sleeping. The writer waits 1 ms;
 * the spin bound is 10 s, so a loaded machine cannot make it sleep. */
static void *write_later(void *arg)
{
    int fd = *(int *)arg;
    struct timespec d = {0, 1000000};

    nanosleep(&d, NULL);
    cr_assert_eq(write(fd, "ping", 4), 4);
    return NULL;
}

Test(ring, spin_receives_without_sleeping)
{
    ring_config cfg = ring_config_default();
    cfg.spin_us = 10u * 1000u * 1000u;
    ring *r = mk_ring(&cfg);
    int sv[2];
    pthread_t th;
    ring_cqe c;
    ring_stats st;

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cr_assert_eq(ring_prep_recv_multishot(r, sv[0], ring_ud_pack(RING_OP_RECV, 1, 1)), 0);
    cr_assert_eq(pthread_create(&th, NULL, write_later, &sv[1]), 0);
    cr_assert_geq(ring_wait(r, 1, RING_WAIT_FOREVER), 1);
    cr_assert_eq(ring_reap(r, &c, 1), 1u);
    cr_expect_eq(c.res, 4);
    ring_get_stats(r, &st);
    cr_expect_eq(st.spin_hits, 1u);
    cr_expect_eq(st.spin_misses, 0u);
    pthread_join(th, NULL);
    ring_bufs_recycle(ring_bufs_of(r), ring_cqe_bid(&c));
    close(sv[0]);
    close(sv[1]);
    ring_free(r);
}

/* Nothing arrives: the spin ends at its bound, then the wait sleeps for the
 * rest of the timeout and returns 0; a timeout below the bound is kept. */
Test(ring, spin_bounded_then_sleeps)
{
    ring_config cfg = ring_config_default();
    cfg.spin_us = 2000;
    ring *r = mk_ring(&cfg);
    ring_stats st;
    uint64_t t0 = now_ns();

    cr_expect_eq(ring_wait(r, 1, 30 * MS), 0);
    cr_expect_geq(now_ns() - t0, 25 * MS);
    cr_expect_eq(ring_wait(r, 1, 1 * MS), 0); /* spins 1 ms, no sleep left */
    ring_get_stats(r, &st);
    cr_expect_eq(st.spin_hits, 0u);
    cr_expect_eq(st.spin_misses, 2u);
    /* The default never spins. */
    ring_free(r);
    r = mk_ring(NULL);
    cr_expect_eq(ring_wait(r, 1, 1 * MS), 0);
    ring_get_stats(r, &st);
    cr_expect_eq(st.spin_hits + st.spin_misses, 0u);
    ring_free(r);
}

/* ------------------------------------------------------------------------ */
/* user_data                                                                 */

Test(ud, pack_roundtrip)
{
    static const uint32_t slots[] = {0, 1, 4242, RING_UD_SLOT_LIMIT - 1};
    static const uint32_t gens[] = {0, 1, 0x7fffffffu, 0xffffffffu};

    for (unsigned op = 0; op < 256; op += 17)
        for (size_t s = 0; s < 4; s++)
            for (size_t g = 0; g < 4; g++) {
                uint64_t ud = ring_ud_pack((uint8_t)op, slots[s], gens[g]);

                cr_assert_eq(ring_ud_op(ud), op);
                cr_assert_eq(ring_ud_slot(ud), slots[s]);
                cr_assert_eq(ring_ud_gen(ud), gens[g]);
            }
    /* The layout is part of the contract (docs/ring.md). */
    cr_expect_eq(ring_ud_pack(0xab, 0x123456, 0xdeadbeef), 0xdeadbeef123456abull);
    /* Slots are masked to 24 bits and never leak into the generation. */
    cr_expect_eq(ring_ud_slot(ring_ud_pack(1, 0xff000001u, 5)), 1u);
    cr_expect_eq(ring_ud_gen(ring_ud_pack(1, 0xff000001u, 5)), 5u);
    cr_expect_eq(ring_ud_pack(RING_OP_NONE, 0, 0), 0u);
}

Test(ud, generation_mismatch_is_stale)
{
    uint32_t gen = 7;
    uint64_t ud = ring_ud_pack(RING_OP_RECV, 12, gen);

    cr_expect_not(ring_ud_stale(ud, gen));
    gen++; /* the slot was released and reused */
    cr_expect(ring_ud_stale(ud, gen));
    /* Wrap-around compares equal only at the same value. */
    ud = ring_ud_pack(RING_OP_RECV, 12, 0xffffffffu);
    cr_expect(ring_ud_stale(ud, 0));
    cr_expect_not(ring_ud_stale(ud, 0xffffffffu));
}

/* A stale recv CQE still owns its buffer: it must go back to the pool. */
Test(ud, stale_cqe_buffer_recycled)
{
    int srv, cli;
    ring *r = mk_ring(NULL);
    ring_bufs *b = ring_bufs_of(r);
    uint32_t gen = 1;
    uint64_t ud = ring_ud_pack(RING_OP_RECV, 3, gen);
    ring_cqe c[8];
    unsigned n;

    tcp_pair(&srv, &cli);
    cr_assert_eq(ring_prep_recv_multishot(r, srv, ud), 0);
    cr_assert_eq(send(cli, "stale", 5, 0), 5);
    n = collect(r, c, 1, 8, 2000);
    cr_assert_geq(n, 1u);
    gen++; /* the connection in slot 3 went away meanwhile */
    for (unsigned i = 0; i < n; i++) {
        if (ring_ud_op(c[i].user_data) != RING_OP_RECV)
            continue;
        cr_expect(ring_ud_stale(c[i].user_data, gen));
        cr_expect_eq(ring_bufs_recycle_cqe(b, &c[i]), 1);
    }
    cr_expect_eq(ring_bufs_held(b), 0u);
    ring_free(r);
    close(srv);
    close(cli);
}

Test(ud, rearm_rules)
{
    static const struct {
        bool accept;
        int32_t res;
        uint32_t flags;
        ring_rearm want;
    } cases[] = {
        {true, 7, RING_CQE_F_MORE, RING_REARM_NONE},
        {true, 7, 0, RING_REARM_NOW},
        {true, -ECONNABORTED, 0, RING_REARM_NOW},
        {true, -EMFILE, 0, RING_REARM_LATER},
        {true, -ENFILE, 0, RING_REARM_LATER},
        {true, -ENOMEM, 0, RING_REARM_LATER},
        {true, -ECANCELED, 0, RING_REARM_NEVER},
        {true, -EBADF, 0, RING_REARM_NEVER},
        {true, -EXDEV, 0, RING_REARM_LATER}, /* unknown: cannot spin */
        {false, 100, RING_CQE_F_MORE | RING_CQE_F_BUFFER, RING_REARM_NONE},
        {false, 100, RING_CQE_F_BUFFER, RING_REARM_NOW},
        {false, 0, 0, RING_REARM_NEVER},
        {false, -ENOBUFS, 0, RING_REARM_LATER},
        {false, -ECANCELED, 0, RING_REARM_NEVER},
        {false, -ECONNRESET, 0, RING_REARM_NEVER},
        {false, -EINTR, 0, RING_REARM_NOW},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ring_cqe c = {1, cases[i].res, cases[i].flags};
        ring_rearm got = cases[i].accept ? ring_accept_rearm(&c) : ring_recv_rearm(&c);

        cr_expect_eq(got, cases[i].want, "case %zu: %d", i, (int)got);
    }
}

/* ------------------------------------------------------------------------ */
/* Send                                                                      */

Test(send, single_buffer)
{
    ring *r = mk_ring(NULL);
    size_t len = 200000;
    uint8_t *buf = malloc(len);
    uint64_t ud = ring_ud_pack(RING_OP_SEND, 4, 1);
    static struct reader rd;
    pthread_t t;
    ring_cqe cq[4];
    int srv, cli;

    for (size_t i = 0; i < len; i++)
        buf[i] = pat(i);
    tcp_pair(&srv, &cli);
    rd = (struct reader){.fd = cli, .total = len};
    cr_assert_eq(pthread_create(&t, NULL, reader_main, &rd), 0);
    cr_assert_eq(ring_prep_send(r, srv, buf, len, MSG_WAITALL, ud), 0);
    cr_assert_eq(collect(r, cq, 1, 4, 5000), 1u);
    cr_expect_eq(cq[0].user_data, ud);
    cr_expect_eq(cq[0].res, (int32_t)len);
    pthread_join(t, NULL);
    cr_expect_eq(rd.got, len);
    cr_expect(rd.pattern_ok);
    /* A send to a closed peer is -EPIPE, not SIGPIPE (MSG_NOSIGNAL). */
    close(cli);
    usleep(10000);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(ring_prep_send(r, srv, buf, 1000, 0, ud), 0);
        cr_assert_eq(collect(r, cq, 1, 4, 2000), 1u);
        if (cq[0].res < 0)
            break;
    }
    cr_expect(cq[0].res == -EPIPE || cq[0].res == -ECONNRESET, "res %d", cq[0].res);
    ring_free(r);
    free(buf);
    close(srv);
}

/* The msghdr lives in the connection object, not on a stack frame that
 * returns before the CQE. */
struct conn {
    struct msghdr msg;
    struct iovec iov[3];
};

Test(send, sendmsg_iovecs)
{
    ring *r = mk_ring(NULL);
    struct conn *c = calloc(1, sizeof *c);
    static const char a[] = "HEADERS:", b[] = "payload-", d[] = "trailer";
    uint64_t ud = ring_ud_pack(RING_OP_SEND, 5, 1);
    char got[64];
    ring_cqe cq[4];
    int srv, cli;
    size_t total = strlen(a) + strlen(b) + strlen(d);

    tcp_pair(&srv, &cli);
    c->iov[0] = (struct iovec){(void *)a, strlen(a)};
    c->iov[1] = (struct iovec){(void *)b, strlen(b)};
    c->iov[2] = (struct iovec){(void *)d, strlen(d)};
    c->msg.msg_iov = c->iov;
    c->msg.msg_iovlen = 3;
    cr_assert_eq(ring_prep_sendmsg(r, srv, &c->msg, 0, ud), 0);
    cr_assert_eq(collect(r, cq, 1, 4, 2000), 1u);
    cr_expect_eq(cq[0].res, (int32_t)total);
    read_exact(cli, got, total);
    cr_expect_eq(memcmp(got, "HEADERS:payload-trailer", total), 0);

    /* The zero-copy variant: result, then one notification. */
    cr_assert_eq(ring_prep_sendmsg_zc(r, srv, &c->msg, 0, ud), 0);
    cr_assert_eq(collect(r, cq, 2, 4, 2000), 2u);
    cr_expect_eq(cq[0].res, (int32_t)total);
    cr_expect(ring_cqe_more(&cq[0]));
    cr_expect(ring_cqe_notif(&cq[1]));
    cr_expect_eq(cq[1].user_data, ud);
    read_exact(cli, got, total);
    cr_expect_eq(memcmp(got, "HEADERS:payload-trailer", total), 0);
    ring_free(r);
    free(c);
    close(srv);
    close(cli);
}

Test(send, zc_1mib_notification_once)
{
    ring *r = mk_ring(NULL);
    size_t len = 1u << 20;
    uint8_t *buf = malloc(len);
    uint64_t ud = ring_ud_pack(RING_OP_SEND_ZC, 6, 1);
    static struct reader rd;
    pthread_t t;
    ring_cqe cq[8];
    unsigned n, results = 0, notifs = 0;
    bool more = false, copied = false;
    int srv, cli;

    for (size_t i = 0; i < len; i++)
        buf[i] = pat(i);
    tcp_pair(&srv, &cli);
    rd = (struct reader){.fd = cli, .total = len};
    cr_assert_eq(pthread_create(&t, NULL, reader_main, &rd), 0);
    /* MSG_WAITALL: one request carries the whole MiB, so one result and
	 * one notification. */
    cr_assert_eq(ring_prep_send_zc(r, srv, buf, len, MSG_WAITALL, ud), 0);
    n = collect(r, cq, 2, 8, 5000);
    /* Linger: a second notification would show up here. */
    n += collect(r, cq + n, 1, 8 - n, 200);
    for (unsigned i = 0; i < n; i++) {
        cr_assert_eq(cq[i].user_data, ud);
        if (ring_cqe_notif(&cq[i])) {
            cr_expect_eq(results, 1u, "notification before result");
            cr_expect_not(ring_cqe_more(&cq[i]));
            copied = ring_cqe_zc_copied(&cq[i]);
            notifs++;
        } else {
            cr_expect_eq(cq[i].res, (int32_t)len);
            more = ring_cqe_more(&cq[i]);
            results++;
        }
    }
    cr_expect_eq(results, 1u);
    cr_expect(more, "result without F_MORE: no notification promised");
    cr_expect_eq(notifs, 1u);
    pthread_join(t, NULL);
    cr_expect_eq(rd.got, len);
    cr_expect(rd.pattern_ok);
    cr_log_info("SEND_ZC 1 MiB on loopback: kernel %s", copied ? "copied" : "zero-copied");
    /* Only now may buf go. */
    free(buf);
    ring_free(r);
    close(srv);
    close(cli);
}

/* ------------------------------------------------------------------------ */
/* SQ full: submit-and-retry, backlog                                       */

static ring *tiny_ring(bool defer, uint32_t backlog)
{
    ring_config cfg = ring_config_default();

    cfg.sq_entries = 4;
    cfg.backlog = backlog;
    cfg.defer_submit = defer;
    cfg.buf_count = 0;
    cfg.waker = false;
    cfg.max_conns = 8;
    return mk_ring(&cfg);
}

static void expect_nops_in_order(ring *r, unsigned count)
{
    ring_cqe *cq = calloc(count + 8, sizeof *cq);
    unsigned n = collect(r, cq, count, count + 8, 2000);

    cr_assert_eq(n, count);
    for (unsigned i = 0; i < n; i++) {
        cr_expect_eq(cq[i].user_data, ring_ud_pack(RING_OP_NOP, i + 1, 0));
        cr_expect_eq(cq[i].res, 0);
    }
    free(cq);
}

Test(sq, backlog_when_submit_deferred)
{
    ring *r = tiny_ring(true, 64);
    ring_stats st;

    for (uint32_t i = 1; i <= 40; i++)
        cr_assert_eq(ring_prep_nop(r, ring_ud_pack(RING_OP_NOP, i, 0)), 0);
    ring_get_stats(r, &st);
    cr_expect_eq(st.sq_entries, 4u);
    cr_expect_eq(st.backlog_len, 36u);
    cr_expect_eq(st.backlogged, 36u);
    cr_expect_eq(st.inline_submits, 0u);
    /* One wait flushes it all (nine submits of four), in prep order. */
    expect_nops_in_order(r, 40);
    ring_get_stats(r, &st);
    cr_expect_eq(st.backlog_len, 0u);
    cr_expect_eq(st.backlog_peak, 36u);
    cr_expect_eq(st.cq_overflow, 0u);
    ring_free(r);
}

Test(sq, full_sq_submits_and_retries)
{
    ring *r = tiny_ring(false, 64);
    ring_stats st;

    for (uint32_t i = 1; i <= 40; i++)
        cr_assert_eq(ring_prep_nop(r, ring_ud_pack(RING_OP_NOP, i, 0)), 0);
    ring_get_stats(r, &st);
    cr_expect_eq(st.backlogged, 0u);
    cr_expect_eq(st.inline_submits, 9u);
    expect_nops_in_order(r, 40);
    ring_free(r);
}

Test(sq, backlog_full_is_enospc)
{
    ring *r = tiny_ring(true, 8);
    unsigned i;

    for (i = 1; i <= 12; i++)
        cr_assert_eq(ring_prep_nop(r, ring_ud_pack(RING_OP_NOP, i, 0)), 0);
    cr_expect_eq(ring_prep_nop(r, ring_ud_pack(RING_OP_NOP, 13, 0)), -ENOSPC);
    cr_expect_eq(ring_prep_send(r, 0, "x", 1, 0, 1), -ENOSPC);
    expect_nops_in_order(r, 12);
    /* A round later there is room again. */
    cr_expect_eq(ring_prep_nop(r, ring_ud_pack(RING_OP_NOP, 1, 0)), 0);
    expect_nops_in_order(r, 1);
    ring_free(r);
}

/* ------------------------------------------------------------------------ */
/* Cancel, shutdown, close                                                   */

Test(cancel, multishot_recv_by_user_data)
{
    ring *r = mk_ring(NULL);
    uint64_t ud = ring_ud_pack(RING_OP_RECV, 9, 1);
    uint64_t cud = ring_ud_pack(RING_OP_CANCEL, 9, 1);
    ring_cqe cq[8];
    unsigned n;
    int srv, cli;

    tcp_pair(&srv, &cli);
    cr_assert_eq(ring_prep_recv_multishot(r, srv, ud), 0);
    cr_assert_geq(ring_submit(r), 1);
    cr_assert_eq(ring_prep_cancel(r, ud, cud), 0);
    n = collect(r, cq, 2, 8, 2000);
    cr_assert_eq(n, 2u);
    for (unsigned i = 0; i < n; i++) {
        if (cq[i].user_data == ud) {
            cr_expect_eq(cq[i].res, -ECANCELED);
            cr_expect_not(ring_cqe_more(&cq[i]));
            cr_expect_not(ring_cqe_has_buf(&cq[i]));
        } else {
            cr_expect_eq(cq[i].user_data, cud);
            cr_expect_eq(cq[i].res, 1, "CANCEL_ALL counts: %d", cq[i].res);
        }
    }
    /* Nothing left to cancel: CANCEL_ALL counts, so 0 (not -ENOENT). */
    cr_assert_eq(ring_prep_cancel(r, ud, cud), 0);
    cr_assert_eq(collect(r, cq, 1, 8, 2000), 1u);
    cr_expect_eq(cq[0].res, 0, "res %d", cq[0].res);
    ring_free(r);
    close(srv);
    close(cli);
}

Test(cancel, all_synchronously_ring_stays_usable)
{
    ring *r = mk_ring(NULL);
    uint64_t ud1 = ring_ud_pack(RING_OP_RECV, 11, 1);
    uint64_t ud2 = ring_ud_pack(RING_OP_RECV, 12, 1);
    ring_cqe cq[8];
    unsigned n;
    int s1, c1, s2, c2;

    tcp_pair(&s1, &c1);
    tcp_pair(&s2, &c2);
    cr_assert_eq(ring_prep_recv_multishot(r, s1, ud1), 0);
    cr_assert_eq(ring_prep_recv_multishot(r, s2, ud2), 0);
    cr_assert_geq(ring_submit(r), 2);
    /* Both armed recvs are cancelled before it returns (and the
	 * doorbell's read: its CQE comes too). */
    ring_cancel_all(r);
    n = collect(r, cq, 3, 8, 500);
    unsigned recvs = 0;
    for (unsigned i = 0; i < n; i++) {
        if (cq[i].user_data != ud1 && cq[i].user_data != ud2)
            continue;
        recvs++;
        cr_expect_eq(cq[i].res, -ECANCELED);
        cr_expect_not(ring_cqe_more(&cq[i]));
    }
    cr_assert_eq(recvs, 2u, "%u recv CQEs after ring_cancel_all (%u in all)", recvs, n);
    /* The ring still works: arm again, data arrives. */
    cr_assert_eq(ring_prep_recv_multishot(r, s1, ud1), 0);
    cr_assert_geq(ring_submit(r), 1);
    cr_assert_eq(send(c1, "x", 1, 0), 1);
    n = collect(r, cq, 1, 8, 2000);
    cr_assert_eq(n, 1u);
    cr_expect_eq(cq[0].user_data, ud1);
    cr_expect_eq(cq[0].res, 1);
    if (ring_cqe_has_buf(&cq[0]))
        ring_bufs_recycle(ring_bufs_of(r), ring_cqe_bid(&cq[0]));
    ring_free(r);
    close(s1);
    close(c1);
    close(s2);
    close(c2);
}

Test(cancel, by_fd_then_close)
{
    ring *r = mk_ring(NULL);
    uint64_t ud = ring_ud_pack(RING_OP_RECV, 10, 3);
    uint64_t cud = ring_ud_pack(RING_OP_CANCEL, 10, 3);
    uint64_t xud = ring_ud_pack(RING_OP_CLOSE, 10, 3);
    ring_cqe cq[8];
    unsigned n, seen = 0;
    int srv, cli;
    char c;

    tcp_pair(&srv, &cli);
    cr_assert_eq(ring_prep_recv_multishot(r, srv, ud), 0);
    cr_assert_geq(ring_submit(r), 1);
    cr_assert_eq(ring_prep_cancel_fd(r, srv, cud), 0);
    cr_assert_eq(ring_prep_close(r, srv, xud), 0);
    n = collect(r, cq, 3, 8, 2000);
    cr_assert_eq(n, 3u);
    for (unsigned i = 0; i < n; i++) {
        if (cq[i].user_data == ud) {
            cr_expect_eq(cq[i].res, -ECANCELED);
            cr_expect_not(ring_cqe_more(&cq[i]));
            seen |= 1;
        } else if (cq[i].user_data == cud) {
            cr_expect_eq(cq[i].res, 1);
            seen |= 2;
        } else {
            cr_expect_eq(cq[i].user_data, xud);
            cr_expect_eq(cq[i].res, 0);
            seen |= 4;
        }
    }
    cr_expect_eq(seen, 7u);
    /* The peer sees the close. */
    cr_expect_eq(recv(cli, &c, 1, 0), 0);
    ring_free(r);
    close(cli);
}

Test(cancel, shutdown_write_side)
{
    ring *r = mk_ring(NULL);
    uint64_t ud = ring_ud_pack(RING_OP_SHUTDOWN, 11, 1);
    ring_cqe cq[4];
    int srv, cli;
    char c;

    tcp_pair(&srv, &cli);
    cr_assert_eq(ring_prep_shutdown(r, srv, SHUT_WR, ud), 0);
    cr_assert_eq(collect(r, cq, 1, 4, 2000), 1u);
    cr_expect_eq(cq[0].res, 0);
    cr_expect_eq(recv(cli, &c, 1, 0), 0);
    ring_free(r);
    close(srv);
    close(cli);
}

/* ------------------------------------------------------------------------ */
/* Waking a ring                                                             */

struct waker_arg {
    ring_waker w;
    unsigned delay_ms;
    unsigned times;
};

static void *waker_main(void *arg)
{
    struct waker_arg *a = arg;

    usleep(a->delay_ms * 1000u);
    for (unsigned i = 0; i < a->times; i++)
        cr_assert_eq(ring_waker_wake(a->w), 0);
    return NULL;
}

Test(wake, eventfd_doorbell_from_thread)
{
    ring *r = mk_ring(NULL);
    static struct waker_arg a;
    ring_cqe cq[4];
    pthread_t t;
    uint64_t t0 = now_ns();
    int ret;

    a = (struct waker_arg){ring_waker_of(r), 50, 1};

    /* A blocked owner wakes up. */
    cr_assert_eq(pthread_create(&t, NULL, waker_main, &a), 0);
    ret = ring_wait(r, 1, 5000 * MS);
    pthread_join(t, NULL);
    cr_assert_eq(ret, 1);
    cr_expect_lt(now_ns() - t0, 4000 * MS);
    cr_assert_eq(ring_reap(r, cq, 4), 1u);
    cr_expect_eq(ring_ud_op(cq[0].user_data), RING_OP_WAKE);
    cr_expect_eq(cq[0].res, 1);

    /* Wakes coalesce, and the doorbell re-arms itself. */
    a.delay_ms = 0;
    a.times = 3;
    cr_assert_eq(pthread_create(&t, NULL, waker_main, &a), 0);
    pthread_join(t, NULL);
    cr_assert_eq(collect(r, cq, 1, 4, 2000), 1u);
    cr_expect_eq(ring_ud_op(cq[0].user_data), RING_OP_WAKE);
    cr_expect_eq(cq[0].res, 3);

    a.times = 1;
    cr_assert_eq(pthread_create(&t, NULL, waker_main, &a), 0);
    pthread_join(t, NULL);
    cr_assert_eq(collect(r, cq, 1, 4, 2000), 1u);
    cr_expect_eq(cq[0].res, 1);
    ring_free(r);
}

struct msg_arg {
    int target_fd;
    int own_res;
    int new_ret;
};

/* Another shard: its own ring, a MSG_RING to ours. */
static void *shard_main(void *arg)
{
    struct msg_arg *m = arg;
    ring_config cfg = ring_config_default();
    ring_cqe cq[2];
    ring_error err;
    ring *mine;

    cfg.buf_count = 0;
    cfg.waker = false;
    m->new_ret = ring_new(&mine, &cfg, &err);
    if (m->new_ret < 0)
        return NULL;
    usleep(50000);
    ring_prep_msg(mine, m->target_fd, ring_ud_pack(RING_OP_MSG, 7, 9), 42,
                  ring_ud_pack(RING_OP_MSG, 0, 0));
    m->own_res = 1;
    if (ring_wait(mine, 1, 2000 * MS) == 1 && ring_reap(mine, cq, 2) == 1)
        m->own_res = cq[0].res;
    ring_free(mine);
    return NULL;
}

Test(wake, msg_ring_from_another_shard)
{
    ring *r = mk_ring(NULL);
    static struct msg_arg m;
    ring_cqe cq[4];
    pthread_t t;
    int ret;

    m = (struct msg_arg){.target_fd = ring_fd(r), .own_res = -1};
    cr_assert_eq(pthread_create(&t, NULL, shard_main, &m), 0);
    ret = ring_wait(r, 1, 5000 * MS); /* blocked when the message lands */
    pthread_join(t, NULL);
    cr_assert_eq(ret, 1);
    cr_assert_eq(ring_reap(r, cq, 4), 1u);
    cr_assert_eq(m.new_ret, 0);
    cr_expect_eq(m.own_res, 0);
    cr_expect_eq(ring_ud_op(cq[0].user_data), RING_OP_MSG);
    cr_expect_eq(ring_ud_slot(cq[0].user_data), 7u);
    cr_expect_eq(ring_ud_gen(cq[0].user_data), 9u);
    cr_expect_eq(cq[0].res, 42);
    ring_free(r);
}

struct intruder {
    ring *r;
    int ret;
};

static void *intruder_main(void *arg)
{
    struct intruder *in = arg;

    /* The owner is parked in pthread_join, so touching the SQ is safe;
	 * entering the kernel is what SINGLE_ISSUER refuses. */
    ring_prep_nop(in->r, ring_ud_pack(RING_OP_NOP, 1, 0));
    in->ret = ring_wait(in->r, 1, 100 * MS);
    return NULL;
}

Test(wake, foreign_thread_cannot_submit)
{
    ring *r = mk_ring(NULL);
    static struct intruder in;
    ring_cqe cq[4];
    ring_stats st;
    unsigned n;
    pthread_t t;

    in = (struct intruder){r, 0};
    cr_assert_eq(pthread_create(&t, NULL, intruder_main, &in), 0);
    pthread_join(t, NULL);
    /* -EEXIST from SINGLE_ISSUER; with a registered ring fd the kernel
	 * stops earlier: the registration is per thread, so this thread has
	 * no such index (-EINVAL: no io_uring context at all; -EBADF: an
	 * empty slot). */
    ring_get_stats(r, &st);
    if (st.ring_fd_registered)
        cr_expect(in.ret == -EINVAL || in.ret == -EBADF, "ret %d", in.ret);
    else
        cr_expect_eq(in.ret, -EEXIST);
    /* The owner submits it fine. */
    n = collect(r, cq, 1, 4, 2000);
    cr_expect_eq(n, 1u);
    ring_free(r);
}
