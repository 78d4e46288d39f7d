/* Tests for core/post.c (and core/mpsc.h under it): spindle_post() from
 * other threads.  Two producer threads post millions of messages to a
 * shard kept busy: none is lost, each producer's order is kept, full
 * queues are reported (SPINDLE_EAGAIN) and retried.  A full queue is
 * reported at exactly its capacity, the default's and a configured one
 * (post-queue-size, which must be a power of two).  Ping-pong with an idle shard: every
 * post wakes it; built with SPINDLE_TEST_HOOKS, an idle shard waits 120 s
 * instead of 1 s, so a lost wake-up hangs the round and fails its bounded
 * wait (10 s).  Accepted messages all run at stop; later posts are
 * SPINDLE_ECLOSED. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "async.h"
#include "mini_h2.h"

#define PRODUCERS 2

static uint64_t next_seq[PRODUCERS]; /* the shard's */
static atomic_int out_of_order, consumed_total;
static _Atomic uint64_t consumed;
static atomic_bool release_block;
static atomic_int blocked;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void consume(spindle_shard *sh, void *arg)
{
    (void)sh;
    uint64_t v = (uint64_t)(uintptr_t)arg;
    uint32_t p = (uint32_t)(v >> 40);
    uint64_t seq = v & ((UINT64_C(1) << 40) - 1);
    if (p >= PRODUCERS || seq != next_seq[p])
        atomic_fetch_add(&out_of_order, 1);
    else
        next_seq[p]++;
    uint64_t n = atomic_fetch_add_explicit(&consumed, 1, memory_order_relaxed) + 1;
    if ((n & 1023) == 0) { /* the shard is busy: ~50 us of work now and then */
        uint64_t until = now_ns() + 50000;
        while (now_ns() < until)
            ;
    }
}

typedef struct producer {
    uint32_t id;
    uint64_t n;
    uint64_t fulls;
    int err;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    for (uint64_t seq = 0; seq < p->n; seq++) {
        void *msg = (void *)(uintptr_t)(((uint64_t)p->id << 40) | seq);
        int rc;
        while ((rc = spindle_post(0, consume, msg)) == SPINDLE_EAGAIN) {
            p->fulls++;
            sched_yield();
        }
        if (rc != 0) {
            p->err = rc;
            break;
        }
    }
    return NULL;
}

static uint32_t queue_size; /* the running server's post-queue-size */

static void start_with(uint32_t post_queue_size)
{
    async_test_idle_wait_ms = 120000;
    spindle_handler h = {0};
    spindle_config cfg = spindle_config_default();
    if (post_queue_size)
        cfg.post_queue_size = post_queue_size;
    queue_size = cfg.post_queue_size;
    mini_serve(cfg, &h);
}

static void start(void)
{
    start_with(0);
}

TestSuite(post, .init = start, .timeout = 240);

/* Fewer under ASan (/4) and valgrind (/50: scripts/test.sh --valgrind runs
 * every core test under memcheck); still far beyond the queue's 4096. */
static uint64_t scaled(uint64_t n)
{
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload"))
        return n / 50;
    const char *asan = getenv("SPINDLE_ASAN");
    return asan && *asan == '1' ? n / 4 : n;
}

Test(post, two_producers_millions_none_lost_in_order)
{
    uint64_t per = scaled(2000000);
    producer ps[PRODUCERS];
    pthread_t t[PRODUCERS];
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        ps[i] = (producer){.id = i, .n = per};
        cr_assert_eq(pthread_create(&t[i], NULL, produce, &ps[i]), 0);
    }
    uint64_t fulls = 0;
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(ps[i].err, 0, "producer %u: %s", i, spindle_strerror(ps[i].err));
        fulls += ps[i].fulls;
    }
    /* Bounded wait for the last ones: a lost wake-up would leave them
     * queued for the test hook's 120 s. */
    uint64_t want = per * PRODUCERS;
    for (int i = 0; i < 30000 && atomic_load(&consumed) < want; i++)
        usleep(1000);
    cr_assert_eq(atomic_load(&consumed), want, "every accepted message ran, once");
    cr_assert_eq(atomic_load(&out_of_order), 0, "each producer's order kept");
    cr_assert_gt(fulls, 0, "the busy shard's queue filled up and said so");
    cr_assert_eq(mini_stop(), 0);
}

static void block(spindle_shard *sh, void *arg)
{
    (void)sh;
    (void)arg;
    atomic_store(&blocked, 1);
    while (!atomic_load(&release_block))
        sched_yield();
}

static void count(spindle_shard *sh, void *arg)
{
    (void)sh;
    (void)arg;
    atomic_fetch_add(&consumed_total, 1);
}

/* Fill the shard's queue while the shard is stuck in a callback: the
 * caller gets SPINDLE_EAGAIN at exactly the configured size; at stop every
 * accepted message runs. */
static void fill_then_stop(void)
{
    cr_assert_eq(spindle_post(0, NULL, NULL), SPINDLE_EINVAL);
    cr_assert_eq(spindle_post(0, block, NULL), 0);
    cr_assert(mini_wait(&blocked, 1)); /* the shard is stuck in block() */
    uint32_t accepted = 0;
    int rc;
    while ((rc = spindle_post(0, count, NULL)) == 0)
        accepted++;
    cr_assert_eq(rc, SPINDLE_EAGAIN);
    cr_assert_eq(accepted, queue_size, "bounded: full at exactly its capacity");
    cr_assert_eq(spindle_post(0, count, NULL), SPINDLE_EAGAIN, "still full, still said");
    spindle_stop(); /* stopping with a full queue: every accepted one runs */
    atomic_store(&release_block, true);
    cr_assert_eq(mini_stop(), 0);
    cr_assert_eq(atomic_load(&consumed_total), (int)queue_size);
    cr_assert_eq(spindle_post(0, count, NULL), SPINDLE_ECLOSED, "stopped");
    cr_assert_eq(spindle_post(7, count, NULL), SPINDLE_ECLOSED, "no such shard");
    cr_assert_eq(spindle_post(UINT32_MAX, count, NULL), SPINDLE_ECLOSED);
}

Test(post, full_at_capacity_then_all_run_at_stop)
{
    cr_assert_eq(queue_size, 4096, "the documented default");
    fill_then_stop();
}

static void start_small(void)
{
    spindle_config cfg = spindle_config_default();
    char err[160];
    cr_assert_eq(spindle_config_set(&cfg, "post-queue-size", "64", err, sizeof err), 0, "%s", err);
    start_with(cfg.post_queue_size);
}

/* The same timeout as the post suite's: with two different ones in the
 * program, Criterion's parallel runner leaks 48 bytes a worker
 * (LeakSanitizer then fails the ASan run). */
TestSuite(post_size, .timeout = 240);

Test(post_size, configured_size_full_reported_to_the_caller, .init = start_small)
{
    cr_assert_eq(queue_size, 64);
    fill_then_stop();
}

Test(post_size, queue_size_must_be_a_power_of_two)
{
    const char *bad[] = {"0", "1", "3", "100", "2097152", "-4", "x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spindle_config cfg = spindle_config_default();
        char err[160] = "";
        int rc = spindle_config_set(&cfg, "post-queue-size", bad[i], err, sizeof err);
        if (rc == 0)
            rc = spindle_config_check(&cfg, err, sizeof err);
        cr_assert_eq(rc, SPINDLE_EINVAL, "post-queue-size=%s refused", bad[i]);
        cr_assert(strstr(err, "post-queue-size"), "the message names the option: %s", err);
    }
    spindle_config cfg = spindle_config_default();
    cfg.post_queue_size = 1u << 20;
    cr_assert_eq(spindle_config_check(&cfg, NULL, 0), 0);
    cfg.post_queue_size = 2;
    cr_assert_eq(spindle_config_check(&cfg, NULL, 0), 0);
}

/* Ping-pong: each producer posts one message and waits for it to run
 * before the next, so the shard goes back to sleep between most of them. */
typedef struct pinger {
    atomic_int acked;
    int rounds, lost;
} pinger;

static void pong(spindle_shard *sh, void *arg)
{
    (void)sh;
    pinger *p = arg;
    atomic_fetch_add(&p->acked, 1);
}

static void *ping(void *arg)
{
    pinger *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        int rc;
        while ((rc = spindle_post(0, pong, p)) == SPINDLE_EAGAIN)
            sched_yield();
        uint64_t deadline = now_ns() + UINT64_C(10000000000); /* 10 s */
        while (atomic_load(&p->acked) < i + 1 && now_ns() < deadline)
            sched_yield();
        if (rc != 0 || atomic_load(&p->acked) < i + 1) {
            p->lost = i + 1;
            break;
        }
    }
    return NULL;
}

Test(post, ping_pong_no_wake_up_lost)
{
    pinger ps[PRODUCERS];
    pthread_t t[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        ps[i].rounds = (int)scaled(20000);
        ps[i].lost = 0;
        atomic_init(&ps[i].acked, 0);
        cr_assert_eq(pthread_create(&t[i], NULL, ping, &ps[i]), 0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(ps[i].lost, 0, "producer %d: round %d not run within 10 s", i, ps[i].lost);
        cr_assert_eq(atomic_load(&ps[i].acked), ps[i].rounds);
    }
    cr_assert_eq(mini_stop(), 0);
}
