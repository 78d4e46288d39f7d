/* Tests for core/timer_wheel.{h,c}: exact expiry, cancel and re-arm (also
 * from callbacks), far deadlines and the overflow list, next_deadline, and a
 * randomized run against a brute-force model. */
#include "timer_wheel.h"

#include <criterion/criterion.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct item {
    timer_node node;
    unsigned id;
    unsigned fired;
    uint64_t fired_at;
} item;

static item *item_of(timer_node *t)
{
    return (item *)(void *)((char *)t - offsetof(item, node));
}

static void count_cb(timer_wheel *w, timer_node *t, void *arg)
{
    item *it = item_of(t);
    it->fired++;
    it->fired_at = timer_wheel_now(w);
    cr_assert_not(timer_node_pending(t), "a firing timer is already out of the wheel");
    cr_assert_leq(t->deadline, timer_wheel_now(w), "fired early");
    if (arg)
        (*(unsigned *)arg)++;
}

static void items_init(item *its, unsigned n)
{
    memset(its, 0, n * sizeof *its);
    for (unsigned i = 0; i < n; i++) {
        its[i].id = i;
        timer_node_init(&its[i].node);
    }
}

Test(timer_wheel, empty)
{
    timer_wheel w;
    timer_wheel_init(&w, 12345);
    cr_assert_eq(timer_wheel_count(&w), 0);
    cr_assert_eq(timer_wheel_next_deadline(&w), TIMER_WHEEL_NEVER);
    cr_assert_eq(timer_wheel_advance(&w, 99999999, count_cb, NULL), 0);
    cr_assert_eq(timer_wheel_now(&w), 99999999);
}

Test(timer_wheel, fires_exactly_at_deadline)
{
    /* Deadlines at every level's distance, and right at block edges. */
    static const uint64_t base[] = {
        0, 1000, 63, 64, (UINT64_C(1) << 36) - 3, UINT64_C(0x123456789ab)};
    static const uint64_t delta[] = {1,
                                     2,
                                     63,
                                     64,
                                     65,
                                     4095,
                                     4096,
                                     4097,
                                     262143,
                                     262144,
                                     300000,
                                     16777216,
                                     1000000000,
                                     UINT64_C(1) << 36,
                                     (UINT64_C(1) << 36) + 7};
    for (size_t b = 0; b < sizeof base / sizeof base[0]; b++) {
        for (size_t d = 0; d < sizeof delta / sizeof delta[0]; d++) {
            timer_wheel w;
            item it;
            items_init(&it, 1);
            timer_wheel_init(&w, base[b]);
            uint64_t dl = base[b] + delta[d];
            timer_wheel_add(&w, &it.node, dl);
            cr_assert(timer_node_pending(&it.node));
            cr_assert_eq(timer_wheel_count(&w), 1);
            cr_assert_eq(timer_wheel_advance(&w, dl - 1, count_cb, NULL), 0,
                         "base %llu delta %llu fired early", (unsigned long long)base[b],
                         (unsigned long long)delta[d]);
            cr_assert_eq(it.fired, 0);
            cr_assert_eq(timer_wheel_next_deadline(&w), dl, "one ms before, the bound is exact");
            cr_assert_eq(timer_wheel_advance(&w, dl, count_cb, NULL), 1);
            cr_assert_eq(it.fired, 1);
            cr_assert_eq(it.fired_at, dl);
            cr_assert_eq(timer_wheel_count(&w), 0);
            cr_assert_eq(timer_wheel_advance(&w, dl + 100000, count_cb, NULL), 0, "fires once");
        }
    }
}

Test(timer_wheel, one_big_jump_fires_everything_due)
{
    timer_wheel w;
    static item its[2000];
    items_init(its, 2000);
    timer_wheel_init(&w, 5);
    for (unsigned i = 0; i < 2000; i++)
        timer_wheel_add(&w, &its[i].node, 6 + (uint64_t)i * i * 997);
    uint64_t cut = 6 + (uint64_t)1000 * 1000 * 997;
    cr_assert_eq(timer_wheel_advance(&w, cut, count_cb, NULL), 1001);
    for (unsigned i = 0; i < 2000; i++)
        cr_assert_eq(its[i].fired, i <= 1000 ? 1u : 0u, "item %u", i);
    cr_assert_eq(timer_wheel_count(&w), 999);
    cr_assert_eq(timer_wheel_advance(&w, UINT64_MAX - 1, count_cb, NULL), 999);
}

Test(timer_wheel, deadline_not_after_now_fires_on_next_advance)
{
    timer_wheel w;
    item its[2];
    items_init(its, 2);
    timer_wheel_init(&w, 1000);
    timer_wheel_add(&w, &its[0].node, 1000);
    timer_wheel_add(&w, &its[1].node, 3);
    cr_assert_eq(its[0].fired + its[1].fired, 0, "add never fires");
    cr_assert_eq(timer_wheel_next_deadline(&w), 1000);
    cr_assert_eq(timer_wheel_advance(&w, 1000, count_cb, NULL), 2, "advance to the same time");
    cr_assert_eq(its[0].fired_at, 1000);
}

Test(timer_wheel, time_never_goes_back)
{
    timer_wheel w;
    item it;
    items_init(&it, 1);
    timer_wheel_init(&w, 1000);
    timer_wheel_add(&w, &it.node, 1010);
    cr_assert_eq(timer_wheel_advance(&w, 500, count_cb, NULL), 0);
    cr_assert_eq(timer_wheel_now(&w), 1000);
    cr_assert_eq(timer_wheel_advance(&w, 1010, count_cb, NULL), 1);
}

Test(timer_wheel, cancel_and_rearm)
{
    timer_wheel w;
    item its[3];
    items_init(its, 3);
    timer_wheel_init(&w, 0);
    cr_assert_not(timer_wheel_cancel(&w, &its[0].node), "never added");
    timer_wheel_add(&w, &its[0].node, 50);
    timer_wheel_add(&w, &its[1].node, 5000);
    timer_wheel_add(&w, &its[2].node, 50);
    cr_assert(timer_wheel_cancel(&w, &its[0].node));
    cr_assert_not(timer_wheel_cancel(&w, &its[0].node), "cancel twice is a no-op");
    cr_assert_not(timer_node_pending(&its[0].node));
    cr_assert_eq(timer_wheel_count(&w), 2);

    timer_wheel_add(&w, &its[1].node, 60);   /* re-arm earlier: moves, not duplicates */
    timer_wheel_add(&w, &its[2].node, 7000); /* re-arm later */
    cr_assert_eq(timer_wheel_count(&w), 2);
    cr_assert_eq(timer_wheel_advance(&w, 6999, count_cb, NULL), 1);
    cr_assert_eq(its[0].fired, 0);
    cr_assert_eq(its[1].fired, 1);
    cr_assert_eq(its[1].fired_at, 6999);
    cr_assert_eq(its[2].fired, 0);
    cr_assert_eq(timer_wheel_advance(&w, 7000, count_cb, NULL), 1);
    cr_assert_eq(its[2].fired, 1);
    cr_assert_not(timer_wheel_cancel(&w, &its[2].node), "already fired");
    cr_assert_eq(timer_wheel_count(&w), 0);
}

/* Cancel a slot's last timer: the occupancy bit must go, or next_deadline
 * would report a phantom. */
Test(timer_wheel, cancel_clears_occupancy)
{
    timer_wheel w;
    item its[2];
    items_init(its, 2);
    timer_wheel_init(&w, 0);
    timer_wheel_add(&w, &its[0].node, 10);
    timer_wheel_add(&w, &its[1].node, 20);
    cr_assert_eq(timer_wheel_next_deadline(&w), 10);
    timer_wheel_cancel(&w, &its[0].node);
    cr_assert_eq(timer_wheel_next_deadline(&w), 20);
    timer_wheel_cancel(&w, &its[1].node);
    cr_assert_eq(timer_wheel_next_deadline(&w), TIMER_WHEEL_NEVER);
}

/* Two timers expire together; whichever fires first cancels the other. */
static void cancel_peer_cb(timer_wheel *w, timer_node *t, void *arg)
{
    item *its = arg, *me = item_of(t);
    me->fired++;
    item *peer = &its[me->id ^ 1];
    cr_assert(timer_wheel_cancel(w, &peer->node), "the peer has not fired yet");
}

Test(timer_wheel, cancel_from_callback)
{
    timer_wheel w;
    item its[2];
    items_init(its, 2);
    timer_wheel_init(&w, 100);
    timer_wheel_add(&w, &its[0].node, 150);
    timer_wheel_add(&w, &its[1].node, 9000); /* different level, same advance */
    cr_assert_eq(timer_wheel_advance(&w, 10000, cancel_peer_cb, its), 1);
    cr_assert_eq(its[0].fired + its[1].fired, 1);
    cr_assert_eq(timer_wheel_count(&w), 0);
}

/* A timer that re-arms itself at `now` must not fire again in the same
 * advance (no livelock); one re-arming in the future fires later. */
static void rearm_cb(timer_wheel *w, timer_node *t, void *arg)
{
    (void)arg;
    item *me = item_of(t);
    me->fired++;
    cr_assert_not(timer_wheel_cancel(w, t), "cancelling yourself in the callback is a no-op");
    if (me->id == 0)
        timer_wheel_add(w, t, timer_wheel_now(w));
    else if (me->fired < 3)
        timer_wheel_add(w, t, timer_wheel_now(w) + 100);
}

Test(timer_wheel, rearm_from_callback)
{
    timer_wheel w;
    item its[2];
    items_init(its, 2);
    timer_wheel_init(&w, 0);
    timer_wheel_add(&w, &its[0].node, 10);
    timer_wheel_add(&w, &its[1].node, 10);
    cr_assert_eq(timer_wheel_advance(&w, 10, rearm_cb, NULL), 2);
    cr_assert_eq(its[0].fired, 1);
    cr_assert_eq(timer_wheel_next_deadline(&w), 10, "the self-rearmed timer is due");
    cr_assert_eq(timer_wheel_advance(&w, 10, rearm_cb, NULL), 1);
    cr_assert_eq(its[0].fired, 2);
    cr_assert_eq(timer_wheel_advance(&w, 110, rearm_cb, NULL), 2);
    cr_assert_eq(its[1].fired, 2);
    cr_assert_eq(timer_wheel_advance(&w, 210, rearm_cb, NULL), 2);
    cr_assert_eq(its[1].fired, 3);
    cr_assert_not(timer_node_pending(&its[1].node));
    cr_assert(timer_node_pending(&its[0].node));
}

/* Overflow: deadlines beyond the top level and across a 2^36 boundary. */
Test(timer_wheel, far_future_and_epoch_boundary)
{
    timer_wheel w;
    item its[4];
    items_init(its, 4);
    const uint64_t edge = UINT64_C(1) << 36;
    timer_wheel_init(&w, edge - 10);
    timer_wheel_add(&w, &its[0].node, edge + 5);      /* 15 ms away, but across the boundary */
    timer_wheel_add(&w, &its[1].node, edge * 3 + 77); /* ~1600 days */
    timer_wheel_add(&w, &its[2].node, UINT64_MAX);    /* never, in practice */
    timer_wheel_add(&w, &its[3].node, edge - 9);
    cr_assert_eq(timer_wheel_next_deadline(&w), edge - 9);
    cr_assert_eq(timer_wheel_advance(&w, edge - 1, count_cb, NULL), 1);
    cr_assert_eq(timer_wheel_next_deadline(&w), edge, "overflow only: the next 2^36 boundary");
    cr_assert_eq(timer_wheel_advance(&w, edge + 4, count_cb, NULL), 0);
    cr_assert_eq(timer_wheel_advance(&w, edge + 5, count_cb, NULL), 1);
    cr_assert_eq(its[0].fired_at, edge + 5);
    cr_assert_eq(timer_wheel_advance(&w, edge * 3 + 76, count_cb, NULL), 0);
    cr_assert_eq(timer_wheel_advance(&w, edge * 3 + 77, count_cb, NULL), 1);
    cr_assert_eq(its[1].fired_at, edge * 3 + 77);
    cr_assert_eq(timer_wheel_count(&w), 1);
    cr_assert_eq(timer_wheel_advance(&w, UINT64_MAX - 1, count_cb, NULL), 0);
    cr_assert_eq(timer_wheel_advance(&w, UINT64_MAX, count_cb, NULL), 1);
}

/* An event loop sleeping until next_deadline: it must never pass a deadline,
 * and reaches any deadline in a few wake-ups (at most one per level). */
Test(timer_wheel, next_deadline_converges)
{
    static const uint64_t delta[] = {1,     63,     64,      100,      5000,
                                     30000, 300000, 7200000, 86400000, UINT64_C(1) << 37};
    for (size_t d = 0; d < sizeof delta / sizeof delta[0]; d++) {
        timer_wheel w;
        item it;
        items_init(&it, 1);
        uint64_t start = UINT64_C(987654321) + d * 12345;
        timer_wheel_init(&w, start);
        timer_wheel_add(&w, &it.node, start + delta[d]);
        unsigned wakeups = 0;
        while (!it.fired) {
            uint64_t next = timer_wheel_next_deadline(&w);
            cr_assert_gt(next, timer_wheel_now(&w), "progress");
            cr_assert_leq(next, start + delta[d], "never past the deadline");
            timer_wheel_advance(&w, next, count_cb, NULL);
            wakeups++;
        }
        cr_assert_eq(it.fired_at, start + delta[d]);
        cr_assert_leq(wakeups, TIMER_WHEEL_LEVELS + 2, "delta %llu took %u wake-ups",
                      (unsigned long long)delta[d], wakeups);
    }
}

/* ---- randomized run against a brute-force model ---------------------------
 * The model is an array of (pending, deadline).  Operations: add/re-arm with
 * deadlines from 0 to beyond the overflow range (some already due), cancel,
 * and advance by steps from 0 to very large; callbacks themselves cancel and
 * re-arm random timers.  After each advance: exactly the pending timers with
 * deadline <= now have fired (except those armed from a callback during it,
 * which wait for the next advance), none early, none twice; counts agree;
 * next_deadline is a lower bound on the model's earliest deadline. */

#define MODEL_N 512

typedef struct {
    timer_wheel w;
    item its[MODEL_N];
    bool pending[MODEL_N];
    bool armed_in_cb[MODEL_N];
    uint64_t deadline[MODEL_N];
    uint64_t rng;
    size_t fired_total;
} model;

static uint64_t rnd(model *m)
{
    /* xorshift64*: fixed seed, reproducible everywhere. */
    m->rng ^= m->rng >> 12;
    m->rng ^= m->rng << 25;
    m->rng ^= m->rng >> 27;
    return m->rng * UINT64_C(2685821657736338717);
}

static uint64_t rnd_deadline(model *m)
{
    uint64_t now = timer_wheel_now(&m->w);
    switch (rnd(m) % 8) {
    case 0: return now - (now ? rnd(m) % (now < 100 ? now : 100) : 0); /* already due */
    case 1: return now + rnd(m) % 64;
    case 2: return now + rnd(m) % 5000;
    case 3: return now + rnd(m) % 400000;
    case 4: return now + rnd(m) % 100000000;
    case 5: return now + rnd(m) % (UINT64_C(1) << 38); /* overflow list */
    case 6: return now + 30000;                        /* many on one slot */
    default: return now + rnd(m) % 100;
    }
}

static void model_arm(model *m, unsigned i, bool in_cb)
{
    uint64_t d = rnd_deadline(m);
    timer_wheel_add(&m->w, &m->its[i].node, d);
    m->pending[i] = true;
    m->deadline[i] = d;
    m->armed_in_cb[i] = in_cb;
}

static void model_cancel(model *m, unsigned i)
{
    bool was = timer_wheel_cancel(&m->w, &m->its[i].node);
    cr_assert_eq(was, m->pending[i], "cancel of %u disagrees with the model", i);
    m->pending[i] = false;
}

static void model_cb(timer_wheel *w, timer_node *t, void *arg)
{
    model *m = arg;
    item *it = item_of(t);
    unsigned i = it->id;
    cr_assert(m->pending[i], "timer %u fired but is not pending", i);
    cr_assert_leq(m->deadline[i], timer_wheel_now(w), "timer %u fired early", i);
    cr_assert_not(m->armed_in_cb[i], "timer %u armed by a callback fired in the same advance", i);
    m->pending[i] = false;
    m->fired_total++;
    switch (rnd(m) % 6) {
    case 0: model_cancel(m, (unsigned)(rnd(m) % MODEL_N)); break;
    case 1: model_arm(m, (unsigned)(rnd(m) % MODEL_N), true); break;
    case 2: model_arm(m, i, true); break;
    default: break;
    }
}

static void model_check(model *m)
{
    size_t pending = 0;
    uint64_t earliest = TIMER_WHEEL_NEVER;
    uint64_t now = timer_wheel_now(&m->w);
    for (unsigned i = 0; i < MODEL_N; i++) {
        cr_assert_eq(timer_node_pending(&m->its[i].node), m->pending[i], "timer %u", i);
        if (!m->pending[i])
            continue;
        pending++;
        if (m->deadline[i] < earliest)
            earliest = m->deadline[i];
        cr_assert(m->deadline[i] > now || m->armed_in_cb[i],
                  "timer %u (deadline %llu) missed at now %llu", i,
                  (unsigned long long)m->deadline[i], (unsigned long long)now);
    }
    cr_assert_eq(timer_wheel_count(&m->w), pending);
    uint64_t next = timer_wheel_next_deadline(&m->w);
    if (earliest <= now) {
        cr_assert_eq(next, now, "something is due: next_deadline is now");
    } else {
        cr_assert_leq(next, earliest, "next_deadline %llu past the earliest %llu",
                      (unsigned long long)next, (unsigned long long)earliest);
        cr_assert_gt(next, now, "next_deadline makes no progress");
    }
}

static void model_run(uint64_t seed, uint64_t start, unsigned steps)
{
    static model m; /* large: keep it off the stack */
    memset(&m, 0, sizeof m);
    m.rng = seed;
    timer_wheel_init(&m.w, start);
    items_init(m.its, MODEL_N);
    for (unsigned step = 0; step < steps; step++) {
        uint64_t r = rnd(&m) % 16;
        if (r < 7) {
            model_arm(&m, (unsigned)(rnd(&m) % MODEL_N), false);
        } else if (r < 10) {
            model_cancel(&m, (unsigned)(rnd(&m) % MODEL_N));
        } else {
            uint64_t now = timer_wheel_now(&m.w), to;
            switch (rnd(&m) % 8) {
            case 0: to = now; break;
            case 1: to = timer_wheel_next_deadline(&m.w); break;
            case 2: to = now + rnd(&m) % 1000000; break;
            case 3: to = now + rnd(&m) % (UINT64_C(1) << 37); break;
            default: to = now + rnd(&m) % 70; break;
            }
            if (to == TIMER_WHEEL_NEVER)
                to = now + 1;
            for (unsigned i = 0; i < MODEL_N; i++)
                m.armed_in_cb[i] = false;
            timer_wheel_advance(&m.w, to, model_cb, &m);
            model_check(&m);
        }
    }
    /* Drain: everything pending fires by the end of time, once. */
    for (unsigned i = 0; i < MODEL_N; i++)
        m.armed_in_cb[i] = false;
    size_t before = m.fired_total;
    size_t pending = timer_wheel_count(&m.w);
    timer_wheel_cb cb = count_cb;
    cr_assert_eq(timer_wheel_advance(&m.w, UINT64_MAX, cb, NULL), pending);
    cr_assert_eq(timer_wheel_count(&m.w), 0);
    cr_assert_gt(before, (size_t)steps / 8, "the run fired too few timers to mean much");
}

Test(timer_wheel, random_vs_model_from_zero)
{
    model_run(UINT64_C(0x9E3779B97F4A7C15), 0, 200000);
}

Test(timer_wheel, random_vs_model_near_epoch_edge)
{
    model_run(UINT64_C(0xD1B54A32D192ED03), (UINT64_C(1) << 36) - 5000, 200000);
}

Test(timer_wheel, random_vs_model_large_clock)
{
    model_run(UINT64_C(42), UINT64_C(0x7654321012345), 200000);
}
