/* Tests for core/doorbell.h: the fenced sleep/ring protocol never loses a
 * wake-up.  Two threads, one SPSC queue: a ping-pong in which every message
 * races the consumer going to sleep (a lost wake-up leaves the message
 * unconsumed past a bounded wait and is counted), and a stream of millions
 * of messages through a small queue that must arrive in order within a
 * bounded time.  SPINDLE_STRESS_SCALE (default 1) multiplies the counts.
 *
 * Built with -DSPINDLE_DOORBELL_UNFENCED (target doorbell_unfenced, not a
 * test: its failure is a race, not a certainty) the same program runs the
 * protocol as it was before the fix. */
#define _GNU_SOURCE

#include "doorbell.h"

#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define STOP UINT64_MAX

typedef struct bench {
    spsc q;
    uint64_t slots[64];
    doorbell bell;
    _Atomic uint64_t consumed; /* messages taken, in order */
    _Atomic uint64_t sleeps;   /* doorbell_sleep() calls */
    _Atomic bool out_of_order;
} bench;

static uint64_t scale(void)
{
    const char *s = getenv("SPINDLE_STRESS_SCALE");
    long v = s ? atol(s) : 1;
    return v > 0 ? (uint64_t)v : 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *consumer(void *arg)
{
    bench *b = arg;
    uint64_t want = 0;
    for (;;) {
        uint64_t v;
        if (!spsc_pop(&b->q, &v)) {
            atomic_fetch_add_explicit(&b->sleeps, 1, memory_order_relaxed);
            doorbell_sleep(&b->bell, &b->q);
            continue;
        }
        if (v == STOP)
            return NULL;
        if (v != want)
            atomic_store(&b->out_of_order, true);
        want++;
        atomic_store_explicit(&b->consumed, want, memory_order_release);
    }
}

static void bench_start(bench *b, pthread_t *t)
{
    memset(b, 0, sizeof *b);
    cr_assert(spsc_init(&b->q, b->slots, 64, sizeof(uint64_t)));
    cr_assert_eq(doorbell_init(&b->bell), 0);
    cr_assert_eq(pthread_create(t, NULL, consumer, b), 0);
}

static void push(bench *b, uint64_t v)
{
    while (!spsc_push(&b->q, &v))
        sched_yield();
    doorbell_ring(&b->bell);
}

/* Stop the consumer and join it within limit_s seconds (a lost final
 * wake-up would keep it asleep: that fails here instead of hanging). */
static void bench_stop(bench *b, pthread_t t, double limit_s)
{
    push(b, STOP);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += (time_t)limit_s;
    int rc = pthread_timedjoin_np(t, NULL, &dl);
    if (rc != 0) {
        doorbell_ring_always(&b->bell); /* let it go, then fail */
        pthread_join(t, NULL);
    }
    doorbell_close(&b->bell);
    cr_assert_eq(rc, 0, "consumer still asleep %.0f s after the stop message", limit_s);
}

/* Each message is pushed just as the consumer, having emptied the queue,
 * heads for its doorbell_sleep(): the race the fences settle, once per
 * round.  A message not consumed within 10 s is a lost wake-up (the
 * consumer sleeps with it queued); the test counts them, recovers with a
 * forced ring, and fails if there was any.  Each round is a real sleep and
 * wake-up, slow on a loaded machine: the run stops after 1,000,000 rounds
 * (times SPINDLE_STRESS_SCALE) or 15 s, whichever comes first. */
Test(doorbell, ping_pong_loses_no_wakeup, .timeout = 600)
{
    bench b;
    pthread_t t;
    bench_start(&b, &t);
    uint64_t rounds = 1000000 * scale(), lost = 0;
    double start = now_s(), budget = 15.0 * (double)scale();
    for (uint64_t i = 0; i < rounds; i++) {
        if (now_s() - start > budget) {
            rounds = i;
            break;
        }
        push(&b, i);
        double t0 = now_s();
        bool rang = false;
        while (atomic_load_explicit(&b.consumed, memory_order_acquire) != i + 1) {
            if (!rang && now_s() - t0 > 10.0) {
                lost++;
                rang = true;
                doorbell_ring_always(&b.bell);
            }
            cr_assert(now_s() - t0 < 30.0, "consumer stuck at message %llu", (unsigned long long)i);
            sched_yield();
        }
    }
    bench_stop(&b, t, 30.0);
    cr_assert_not(atomic_load(&b.out_of_order));
    cr_assert_eq(lost, 0, "%llu lost wake-up(s) in %llu rounds", (unsigned long long)lost,
                 (unsigned long long)rounds);
    cr_log_info("%llu rounds, %llu consumer sleeps", (unsigned long long)rounds,
                (unsigned long long)atomic_load(&b.sleeps));
}

/* Millions of messages through a 64-slot queue: the producer rings after
 * every push and yields when the queue is full; the consumer sleeps
 * whenever it is empty.  Everything must arrive, in order, and the final
 * stop message must wake the consumer within the bound. */
Test(doorbell, stream_of_millions_arrives, .timeout = 600)
{
    bench b;
    pthread_t t;
    bench_start(&b, &t);
    uint64_t n = 2000000 * scale();
    for (uint64_t i = 0; i < n; i++)
        push(&b, i);
    bench_stop(&b, t, 60.0);
    cr_assert_not(atomic_load(&b.out_of_order));
    cr_assert_eq(atomic_load(&b.consumed), n);
    cr_log_info("%llu messages, %llu consumer sleeps", (unsigned long long)n,
                (unsigned long long)atomic_load(&b.sleeps));
}

/* A ring with nobody asleep costs no write: the counter stays 0. */
Test(doorbell, ring_skips_an_awake_consumer)
{
    doorbell d;
    cr_assert_eq(doorbell_init(&d), 0);
    doorbell_ring(&d);
    struct pollfd p = {.fd = d.efd, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 0), 0, "the eventfd was written");
    atomic_store(&d.sleeping, true); /* as doorbell_sleep() announces */
    doorbell_ring(&d);
    cr_assert_eq(poll(&p, 1, 0), 1, "a sleeping consumer was not rung");
    doorbell_close(&d);
}
