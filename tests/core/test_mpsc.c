/* Tests for core/mpsc.h: bounded (full at exactly its capacity, nothing
 * copied), FIFO across many laps of the ring, bad arguments refused, and
 * four producers against one consumer: every element once, each
 * producer's order kept. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>

#include "mpsc.h"

Test(mpsc, init_refuses_bad_arguments)
{
    mpsc q;
    cr_assert_not(mpsc_init(&q, 0, 8));
    cr_assert_not(mpsc_init(&q, 1, 8));
    cr_assert_not(mpsc_init(&q, 12, 8));
    cr_assert_not(mpsc_init(&q, 16, 0));
    cr_assert_not(mpsc_init(&q, 16, 5000));
}

Test(mpsc, full_at_capacity_and_fifo_over_laps)
{
    mpsc q;
    cr_assert(mpsc_init(&q, 8, sizeof(uint64_t)));
    cr_assert_eq(mpsc_capacity(&q), 8);
    uint64_t v, next_in = 0, next_out = 0;
    cr_assert_not(mpsc_pop(&q, &v));
    cr_assert_not(mpsc_ready(&q));
    for (int lap = 0; lap < 1000; lap++) {
        while (mpsc_push(&q, &next_in))
            next_in++;
        cr_assert_eq(next_in - next_out, 8, "full at exactly 8");
        for (int i = 0; i < 5; i++) {
            cr_assert(mpsc_ready(&q));
            cr_assert(mpsc_pop(&q, &v));
            cr_assert_eq(v, next_out++);
        }
    }
    while (mpsc_pop(&q, &v))
        cr_assert_eq(v, next_out++);
    cr_assert_eq(next_out, next_in);
    mpsc_free(&q);
}

#define NPROD 4
#define PER   200000u

typedef struct elem {
    uint32_t producer, seq;
} elem;

static mpsc shared;

static void *producer(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    for (uint32_t i = 0; i < PER; i++) {
        elem e = {id, i};
        while (!mpsc_push(&shared, &e))
            sched_yield();
    }
    return NULL;
}

Test(mpsc, producers_against_one_consumer, .timeout = 120)
{
    cr_assert(mpsc_init(&shared, 64, sizeof(elem)));
    pthread_t t[NPROD];
    for (uintptr_t i = 0; i < NPROD; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, producer, (void *)i), 0);
    uint32_t next[NPROD] = {0};
    uint64_t got = 0;
    elem e;
    while (got < (uint64_t)NPROD * PER) {
        if (!mpsc_pop(&shared, &e)) {
            sched_yield();
            continue;
        }
        cr_assert_lt(e.producer, NPROD);
        cr_assert_eq(e.seq, next[e.producer], "producer %u out of order", e.producer);
        next[e.producer]++;
        got++;
    }
    for (int i = 0; i < NPROD; i++)
        pthread_join(t[i], NULL);
    cr_assert_not(mpsc_pop(&shared, &e), "nothing extra");
    mpsc_free(&shared);
}
