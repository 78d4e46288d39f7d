/* Tests for core/spsc.h: contract edges, index wrap-around, batches, and a
 * two-thread stress run checking order and loss. */
#define _POSIX_C_SOURCE 200809L

#include "spsc.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>

Test(spsc, init_validates)
{
    spsc q;
    uint64_t buf[4];
    cr_assert_not(spsc_init(&q, buf, 0, 8));
    cr_assert_not(spsc_init(&q, buf, 3, 8));
    cr_assert_not(spsc_init(&q, buf, 6, 8));
    cr_assert_not(spsc_init(&q, buf, UINT32_MAX, 8));
    cr_assert_not(spsc_init(&q, buf, 4, 0));
    cr_assert_not(spsc_init(&q, NULL, 4, 8));
    cr_assert(spsc_init(&q, buf, UINT32_C(1) << 31, 1)); /* largest; slots never touched */
    cr_assert_eq(spsc_capacity(&q), UINT32_C(1) << 31);
    cr_assert(spsc_init(&q, buf, 1, 8));
    cr_assert(spsc_init(&q, buf, 4, 8));
    cr_assert_eq(spsc_capacity(&q), 4);
}

Test(spsc, layout_separates_the_sides)
{
    cr_assert_eq(offsetof(spsc, tail) % SPSC_CACHELINE, 0);
    cr_assert_eq(offsetof(spsc, head) % SPSC_CACHELINE, 0);
    cr_assert_geq(offsetof(spsc, tail) - offsetof(spsc, slots), SPSC_CACHELINE);
    cr_assert_geq(offsetof(spsc, head) - offsetof(spsc, tail), SPSC_CACHELINE);
    cr_assert_eq(alignof(spsc), SPSC_CACHELINE);
}

Test(spsc, empty)
{
    spsc q;
    uint32_t buf[8], v = 7, out[8];
    cr_assert(spsc_init(&q, buf, 8, sizeof v));
    cr_assert_eq(spsc_size_approx(&q), 0);
    cr_assert_null(spsc_peek(&q));
    cr_assert_not(spsc_pop(&q, &v));
    cr_assert_eq(v, 7, "a failed pop must not touch out");
    cr_assert_eq(spsc_pop_n(&q, out, 8), 0);
    cr_assert_not(spsc_pop(&q, NULL));
}

Test(spsc, full_then_drain_in_order)
{
    spsc q;
    uint32_t buf[8];
    cr_assert(spsc_init(&q, buf, 8, sizeof(uint32_t)));
    for (uint32_t i = 0; i < 8; i++) {
        cr_assert(spsc_push(&q, &i));
        cr_assert_eq(spsc_size_approx(&q), i + 1);
    }
    uint32_t extra = 99;
    cr_assert_not(spsc_push(&q, &extra), "push into a full queue must fail");
    cr_assert_eq(spsc_push_n(&q, &extra, 1), 0);
    cr_assert_eq(spsc_size_approx(&q), 8);
    for (uint32_t i = 0; i < 8; i++) {
        uint32_t v;
        cr_assert(spsc_pop(&q, &v));
        cr_assert_eq(v, i);
    }
    cr_assert_not(spsc_pop(&q, &extra));
    cr_assert_eq(spsc_size_approx(&q), 0);
}

Test(spsc, capacity_one)
{
    spsc q;
    uint64_t slot, v;
    cr_assert(spsc_init(&q, &slot, 1, sizeof slot));
    for (uint64_t i = 0; i < 100; i++) {
        cr_assert(spsc_push(&q, &i));
        cr_assert_not(spsc_push(&q, &i));
        cr_assert(spsc_pop(&q, &v));
        cr_assert_eq(v, i);
        cr_assert_not(spsc_pop(&q, &v));
    }
}

/* Odd element size: slots are packed, copies are exact. */
typedef struct {
    unsigned char b[3];
} tri;

Test(spsc, odd_element_size_fifo)
{
    spsc q;
    tri buf[16];
    cr_assert(spsc_init(&q, buf, 16, sizeof(tri)));
    unsigned next_in = 0, next_out = 0;
    for (unsigned round = 0; round < 200; round++) {
        unsigned n_in = (round * 7) % 11, n_out = (round * 5) % 9;
        for (unsigned k = 0; k < n_in; k++) {
            tri t = {{(unsigned char)next_in, (unsigned char)(next_in >> 8), 0xA5}};
            if (!spsc_push(&q, &t))
                break;
            next_in++;
        }
        for (unsigned k = 0; k < n_out; k++) {
            tri t;
            if (!spsc_pop(&q, &t))
                break;
            cr_assert_eq(t.b[0], (unsigned char)next_out);
            cr_assert_eq(t.b[1], (unsigned char)(next_out >> 8));
            cr_assert_eq(t.b[2], 0xA5);
            next_out++;
        }
        cr_assert_eq(spsc_size_approx(&q), next_in - next_out);
    }
    cr_assert_gt(next_out, 500);
}

Test(spsc, peek_then_drop)
{
    spsc q;
    uint32_t buf[4];
    cr_assert(spsc_init(&q, buf, 4, sizeof(uint32_t)));
    uint32_t a = 1, b = 2;
    cr_assert(spsc_push(&q, &a));
    cr_assert(spsc_push(&q, &b));
    uint32_t *p = spsc_peek(&q);
    cr_assert_not_null(p);
    cr_assert_eq(*p, 1);
    cr_assert_eq(spsc_peek(&q), p, "peek does not consume");
    cr_assert(spsc_pop(&q, NULL));
    p = spsc_peek(&q);
    cr_assert_not_null(p);
    cr_assert_eq(*p, 2);
    cr_assert_eq(spsc_size_approx(&q), 1);
}

/* Indices start just below UINT32_MAX and run through the 2^32 wrap many
 * times over; fill level and order must never notice. */
Test(spsc, index_wraparound)
{
    static const uint32_t starts[] = {UINT32_MAX - 5, UINT32_MAX, UINT32_MAX - 64, 0x7ffffffdu};
    for (size_t si = 0; si < sizeof starts / sizeof starts[0]; si++) {
        spsc q;
        uint64_t buf[8];
        cr_assert(spsc_init_at(&q, buf, 8, sizeof(uint64_t), starts[si]));
        uint64_t in = 0, out = 0;
        for (unsigned round = 0; round < 300; round++) {
            while (spsc_push(&q, &in))
                in++;
            cr_assert_eq(in - out, 8, "full at exactly cap across the wrap");
            cr_assert_eq(spsc_size_approx(&q), 8);
            unsigned take = 1 + round % 8;
            for (unsigned k = 0; k < take; k++) {
                uint64_t v;
                cr_assert(spsc_pop(&q, &v));
                cr_assert_eq(v, out);
                out++;
            }
        }
        uint64_t v;
        while (spsc_pop(&q, &v)) {
            cr_assert_eq(v, out);
            out++;
        }
        cr_assert_eq(out, in);
        cr_assert_eq(spsc_size_approx(&q), 0);
        if (starts[si] >= UINT32_MAX - 64) {
            uint32_t head = atomic_load(&q.head);
            cr_assert_lt(head, starts[si], "the head index wrapped past 2^32");
        }
    }
}

Test(spsc, batch_partial_and_slot_wrap)
{
    spsc q;
    uint32_t buf[8], src[20], dst[20];
    for (uint32_t i = 0; i < 20; i++)
        src[i] = 100 + i;
    cr_assert(spsc_init_at(&q, buf, 8, sizeof(uint32_t), UINT32_MAX - 2));

    cr_assert_eq(spsc_push_n(&q, src, 5), 5);
    cr_assert_eq(spsc_pop_n(&q, dst, 3), 3); /* head now at slot 3 */
    cr_assert_eq(dst[0], 100);
    cr_assert_eq(dst[2], 102);
    cr_assert_eq(spsc_push_n(&q, src + 5, 20), 6, "partial: only 6 free");
    cr_assert_eq(spsc_size_approx(&q), 8);
    cr_assert_eq(spsc_push_n(&q, src, 1), 0);
    cr_assert_eq(spsc_pop_n(&q, dst, 20), 8, "partial: only 8 queued, wrapping the slot array");
    for (uint32_t i = 0; i < 8; i++)
        cr_assert_eq(dst[i], 103 + i);
    cr_assert_eq(spsc_pop_n(&q, dst, 4), 0);

    /* pop_n with NULL drops; zero-length batches are no-ops. */
    cr_assert_eq(spsc_push_n(&q, src, 0), 0);
    cr_assert_eq(spsc_push_n(&q, src, 7), 7);
    cr_assert_eq(spsc_pop_n(&q, NULL, 4), 4);
    cr_assert_eq(spsc_pop_n(&q, dst, 0), 0);
    uint32_t v;
    cr_assert(spsc_pop(&q, &v));
    cr_assert_eq(v, 104);
    cr_assert_eq(spsc_size_approx(&q), 2);
}

/* Batch ops against the single-element ops, every split of a small ring. */
Test(spsc, batch_matches_single)
{
    for (uint32_t start = 0; start < 8; start++) {
        for (uint32_t n = 1; n <= 8; n++) {
            spsc q;
            uint16_t buf[8], src[8], dst[8];
            cr_assert(spsc_init_at(&q, buf, 8, sizeof(uint16_t), UINT32_MAX - start));
            for (uint16_t i = 0; i < 8; i++)
                src[i] = (uint16_t)(i * 31 + start);
            cr_assert_eq(spsc_push_n(&q, src, n), n);
            for (uint32_t i = 0; i < n; i++) {
                uint16_t v;
                cr_assert(spsc_pop(&q, &v));
                cr_assert_eq(v, src[i]);
            }
            for (uint32_t i = 0; i < n; i++)
                cr_assert(spsc_push(&q, &src[i]));
            cr_assert_eq(spsc_pop_n(&q, dst, 8), n);
            cr_assert_eq(memcmp(dst, src, n * sizeof(uint16_t)), 0);
        }
    }
}

/* Two threads, a small ring, 10 million sequence numbers.  The producer
 * alternates single pushes and batches of varying size; so does the consumer.
 * Any reordering, loss or duplication shows up as a sequence mismatch. */
#define STRESS_ITEMS 10000000u
#define STRESS_CAP   64u

typedef struct {
    spsc q;
    uint64_t slots[STRESS_CAP];
} stress_ctx;

static void backoff(unsigned *spins)
{
    if (++*spins >= 64) {
        *spins = 0;
        sched_yield(); /* two cores, several test processes: do not burn the slice */
    }
}

static void *stress_producer(void *arg)
{
    stress_ctx *c = arg;
    uint64_t next = 0, batch[16];
    unsigned spins = 0;
    while (next < STRESS_ITEMS) {
        if ((next & 1024) == 0) {
            if (spsc_push(&c->q, &next)) {
                next++;
                spins = 0;
            } else {
                backoff(&spins);
            }
        } else {
            uint32_t n = 1 + (uint32_t)(next % 16);
            if (n > STRESS_ITEMS - next)
                n = (uint32_t)(STRESS_ITEMS - next);
            for (uint32_t i = 0; i < n; i++)
                batch[i] = next + i;
            uint32_t done = spsc_push_n(&c->q, batch, n);
            if (done) {
                next += done;
                spins = 0;
            } else {
                backoff(&spins);
            }
        }
    }
    return NULL;
}

static void *stress_consumer(void *arg)
{
    stress_ctx *c = arg;
    uint64_t expect = 0, batch[16];
    unsigned spins = 0;
    uintptr_t bad = 0;
    while (expect < STRESS_ITEMS) {
        if ((expect & 2048) == 0) {
            uint64_t v;
            if (spsc_pop(&c->q, &v)) {
                bad |= v != expect;
                expect++;
                spins = 0;
            } else {
                backoff(&spins);
            }
        } else {
            uint32_t got = spsc_pop_n(&c->q, batch, 1 + (uint32_t)(expect % 13));
            for (uint32_t i = 0; i < got; i++)
                bad |= batch[i] != expect + i;
            expect += got;
            if (got)
                spins = 0;
            else
                backoff(&spins);
        }
        if (bad)
            return (void *)(uintptr_t)1;
    }
    return NULL;
}

Test(spsc, two_thread_stress, .timeout = 240)
{
    static stress_ctx c; /* 64-byte aligned, off the stack */
    cr_assert(spsc_init_at(&c.q, c.slots, STRESS_CAP, sizeof(uint64_t), UINT32_MAX - 1000));
    pthread_t prod, cons;
    cr_assert_eq(pthread_create(&cons, NULL, stress_consumer, &c), 0);
    cr_assert_eq(pthread_create(&prod, NULL, stress_producer, &c), 0);
    void *prod_ret, *cons_ret;
    cr_assert_eq(pthread_join(prod, &prod_ret), 0);
    cr_assert_eq(pthread_join(cons, &cons_ret), 0);
    cr_assert_null(cons_ret, "consumer saw an out-of-order, lost or duplicated item");
    cr_assert_eq(spsc_size_approx(&c.q), 0);
    uint64_t v;
    cr_assert_not(spsc_pop(&c.q, &v), "nothing left over");
}
