/*
 * tests/io/test_ring_poll.c - io/ring_poll.c, the adaptive idle poll's
 * policy (pure: idle periods in, window out), and the poll in ring_wait()
 * on a real ring.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ring.h"
#include "ring_bufs.h"
#include "ring_poll.h"
#include "ring_test_util.h"

#define US 1000u

Test(ring_poll, off_never_polls)
{
    ring_poll p;
    ring_poll_init(&p, 0);
    for (int i = 0; i < 10; i++)
        ring_poll_update(&p, 30 * US, false);
    cr_expect_eq(p.window_ns, 0u);
    cr_expect_eq(p.max_ns, 0u);
}

/* Short periods grow the window from RING_POLL_START_NS, doubling, up to
 * the bound; a period the window already covers changes nothing. */
Test(ring_poll, grows_to_the_bound)
{
    ring_poll p;
    ring_poll_init(&p, 200);
    cr_expect_eq(p.window_ns, 0u);
    static const uint64_t want[] = {10 * US, 20 * US, 40 * US, 80 * US, 160 * US, 200 * US};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ring_poll_update(&p, 190 * US, false);
        cr_expect_eq(p.window_ns, want[i], "step %zu: %llu", i, (unsigned long long)p.window_ns);
    }
    ring_poll_update(&p, 150 * US, false); /* within the window: caught */
    cr_expect_eq(p.window_ns, 200 * US);
    ring_poll_update(&p, 200 * US, false); /* at the bound: still short */
    cr_expect_eq(p.window_ns, 200 * US);
}

/* A window that covers the periods stops growing. */
Test(ring_poll, stops_where_periods_end)
{
    ring_poll p;
    ring_poll_init(&p, 200);
    for (int i = 0; i < 20; i++)
        ring_poll_update(&p, 15 * US, false);
    cr_expect_eq(p.window_ns, 20 * US);
}

/* Periods longer than the bound halve it, down to 0 below the start. */
Test(ring_poll, shrinks_on_long_periods)
{
    ring_poll p;
    ring_poll_init(&p, 200);
    for (int i = 0; i < 6; i++)
        ring_poll_update(&p, 100 * US, false);
    cr_assert_eq(p.window_ns, 160 * US);
    ring_poll_update(&p, 201 * US, false);
    cr_expect_eq(p.window_ns, 80 * US);
    ring_poll_update(&p, 5000 * US, false);
    cr_expect_eq(p.window_ns, 40 * US);
    ring_poll_update(&p, 5000 * US, false);
    ring_poll_update(&p, 5000 * US, false);
    cr_expect_eq(p.window_ns, 10 * US);
    ring_poll_update(&p, 5000 * US, false);
    cr_expect_eq(p.window_ns, 0u);
    ring_poll_update(&p, 5000 * US, false);
    cr_expect_eq(p.window_ns, 0u);
}

/* A preemption: window 0 at once, and no growth for RING_POLL_HOLD
 * periods, however short; then growth resumes. */
Test(ring_poll, preemption_stops_and_holds)
{
    ring_poll p;
    ring_poll_init(&p, 200);
    for (int i = 0; i < 4; i++)
        ring_poll_update(&p, 100 * US, false);
    cr_assert_eq(p.window_ns, 80 * US);
    ring_poll_update(&p, 30 * US, true);
    cr_expect_eq(p.window_ns, 0u);
    for (unsigned i = 0; i < RING_POLL_HOLD; i++)
        ring_poll_update(&p, 30 * US, false);
    cr_expect_eq(p.window_ns, 0u);
    ring_poll_update(&p, 30 * US, false);
    cr_expect_eq(p.window_ns, RING_POLL_START_NS);
}

/* A completion that was waiting already is no idle period. */
Test(ring_poll, instant_completions_change_nothing)
{
    ring_poll p;
    ring_poll_init(&p, 200);
    for (int i = 0; i < 10; i++)
        ring_poll_update(&p, RING_POLL_MIN_NS - 1, false);
    cr_expect_eq(p.window_ns, 0u);
}

/* ------------------------------------------------------------------------ */
/* On a real ring: a partner thread echoes each message back at once, so
 * the ring's idle periods are one round trip (tens of microseconds, well
 * under the bound even on a loaded machine most of the time): the poll
 * must start, every echo must arrive, and a timeout must still be kept. */

struct echo {
    int fd;
    int rounds;
};

static void *echo_main(void *arg)
{
    struct echo *e = arg;
    char b[8];
    for (int i = 0; i < e->rounds; i++) {
        read_exact(e->fd, b, 4);
        cr_assert_eq(write(e->fd, b, 4), 4);
    }
    return NULL;
}

Test(ring_poll, ring_polls_between_round_trips)
{
    ring_config cfg = ring_config_default();
    cfg.poll_us = 200;
    ring *r = mk_ring(&cfg);
    int sv[2];
    static struct echo e;
    pthread_t th;
    ring_cqe c;
    ring_stats st;
    const int rounds = 1000;

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    e = (struct echo){sv[1], rounds};
    cr_assert_eq(ring_prep_recv_multishot(r, sv[0], ring_ud_pack(RING_OP_RECV, 1, 1)), 0);
    cr_assert_eq(pthread_create(&th, NULL, echo_main, &e), 0);
    size_t got = 0;
    for (int i = 0; i < rounds; i++) {
        cr_assert_eq(write(sv[0], "ping", 4), 4);
        size_t want = got + 4;
        while (got < want) {
            cr_assert_geq(ring_wait(r, 1, 5000 * MS), 1, "round %d: no echo", i);
            while (ring_reap(r, &c, 1) == 1) {
                cr_assert_gt(c.res, 0);
                got += (size_t)c.res;
                ring_bufs_recycle(ring_bufs_of(r), ring_cqe_bid(&c));
            }
        }
    }
    pthread_join(th, NULL);
    ring_get_stats(r, &st);
    cr_expect_gt(st.spin_hits + st.spin_misses + st.poll_yields, 0u, "the poll never started");
    cr_log_info("%d round trips: %llu polls hit, %llu missed, %llu yielded, window %u us", rounds,
                (unsigned long long)st.spin_hits, (unsigned long long)st.spin_misses,
                (unsigned long long)st.poll_yields, st.poll_window_us);
    /* Nothing comes: the wait still ends at its timeout. */
    uint64_t t0 = now_ns();
    cr_expect_eq(ring_wait(r, 1, 20 * MS), 0);
    cr_expect_geq(now_ns() - t0, 15 * MS);
    close(sv[0]);
    close(sv[1]);
    ring_free(r);
}
