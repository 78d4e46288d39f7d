/* micro_timer.c - the timer wheel: add+cancel and re-arm with 10k timers
 * pending (the per-connection idle timeout pattern), firing, and idle
 * advances. */
#include <stdlib.h>

#include "micro.h"
#include "timer_wheel.h"

#define BACKGROUND 10000u
#define FIRE_BATCH 4096u

typedef struct timer_state {
    timer_wheel w;
    timer_node bg[BACKGROUND];
    timer_node fire[FIRE_BATCH];
    timer_node probe;
    uint64_t rng;
    uint64_t fired;    /* fire-batch timers (kind 1) */
    uint64_t bg_fired; /* background timers that came due meanwhile */
} timer_state;

static uint64_t rng(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void on_fire(timer_wheel *w, timer_node *t, void *arg)
{
    (void)w;
    timer_state *st = arg;
    if (t->kind == 1)
        st->fired++;
    else
        st->bg_fired++;
}

/* 10k timers at deadlines 1 s .. 10 min ahead (connections' idle timeouts). */
static void setup_background(timer_state *st)
{
    timer_wheel_init(&st->w, 1000000);
    st->rng = 0x2545f4914f6cdd1du;
    for (uint32_t i = 0; i < BACKGROUND; i++) {
        timer_node_init(&st->bg[i]);
        timer_wheel_add(&st->w, &st->bg[i], st->w.now + 1000 + rng(&st->rng) % 600000);
    }
    timer_node_init(&st->probe);
}

static uint64_t run_add_cancel(void *arg, uint64_t n)
{
    timer_state *st = arg;
    uint64_t now = timer_wheel_now(&st->w);
    for (uint64_t i = 0; i < n; i++) {
        timer_wheel_add(&st->w, &st->probe, now + 1 + (i * 7919u) % 60000u);
        timer_wheel_cancel(&st->w, &st->probe);
    }
    return 0;
}

/* Re-arm a pending timer further out: what an idle timeout refresh does. */
static uint64_t run_rearm(void *arg, uint64_t n)
{
    timer_state *st = arg;
    uint64_t now = timer_wheel_now(&st->w);
    for (uint64_t i = 0; i < n; i++) {
        timer_node *t = &st->bg[(i * 2654435761u) % BACKGROUND];
        timer_wheel_add(&st->w, t, now + 60000 + (i & 1023));
    }
    return 0;
}

/* Add FIRE_BATCH timers due within 1 s, then advance 1 ms at a time until
 * all fired: cost per timer of add + cascades + firing + its share of the
 * advances.  The background timers stay pending (further out). */
static uint64_t run_fire(void *arg, uint64_t n)
{
    timer_state *st = arg;
    uint64_t done = 0;
    while (done < n) {
        uint32_t k = n - done < FIRE_BATCH ? (uint32_t)(n - done) : FIRE_BATCH;
        uint64_t now = timer_wheel_now(&st->w);
        for (uint32_t i = 0; i < k; i++)
            timer_wheel_add(&st->w, &st->fire[i], now + 1 + (i * 131u) % 1000u);
        uint64_t before = st->fired;
        for (uint64_t t = now + 1; st->fired - before < k; t++)
            timer_wheel_advance(&st->w, t, on_fire, st);
        done += k;
    }
    return 0;
}

/* A 1 ms tick on a wheel whose timers are all far away. */
static uint64_t run_tick(void *arg, uint64_t n)
{
    timer_state *st = arg;
    uint64_t now = timer_wheel_now(&st->w);
    for (uint64_t i = 1; i <= n; i++)
        timer_wheel_advance(&st->w, now + i, on_fire, st);
    return 0;
}

static uint64_t run_next_deadline(void *arg, uint64_t n)
{
    timer_state *st = arg;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        acc += timer_wheel_next_deadline(&st->w);
        bench_keep_ptr(&st->w);
    }
    bench_keep(acc);
    return 0;
}

void micro_timer(bench *b)
{
    timer_state *st = calloc(1, sizeof *st);
    if (!st)
        return;
    setup_background(st);
    bench_run(b, "timer/add_cancel", run_add_cancel, st, &(bench_opts){.unit = "add+cancel"});
    bench_note(b, "pending", BACKGROUND);
    bench_run(b, "timer/rearm", run_rearm, st, &(bench_opts){.unit = "re-arm"});
    bench_note(b, "pending", BACKGROUND);
    bench_run(b, "timer/next_deadline", run_next_deadline, st, &(bench_opts){.unit = "call"});
    setup_background(st);
    for (uint32_t i = 0; i < FIRE_BATCH; i++) {
        timer_node_init(&st->fire[i]);
        st->fire[i].kind = 1;
    }
    bench_run(b, "timer/add_fire", run_fire, st, &(bench_opts){.unit = "timer"});
    bench_note(b, "background", BACKGROUND);
    /* Idle ticks: park the background timers a year out so nothing fires
     * while the clock advances one millisecond per op. */
    timer_wheel_init(&st->w, 1000000);
    for (uint32_t i = 0; i < BACKGROUND; i++) {
        timer_node_init(&st->bg[i]);
        timer_wheel_add(&st->w, &st->bg[i], 1000000 + 365ull * 86400000ull + i);
    }
    st->bg_fired = 0;
    bench_run(b, "timer/advance_idle_1ms", run_tick, st, &(bench_opts){.unit = "tick"});
    bench_note(b, "pending", BACKGROUND);
    bench_note(b, "fired", (double)st->bg_fired);
    free(st);
}
