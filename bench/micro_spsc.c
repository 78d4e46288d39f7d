/* micro_spsc.c - the SPSC queue: push+pop on one core, and throughput and
 * round-trip latency between two threads pinned to two CPUs. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "micro.h"
#include "spsc.h"

#define CAP   1024u
#define BATCH 32u

typedef struct q_store {
    spsc q;
    alignas(SPSC_CACHELINE) uint64_t slots[CAP];
} q_store;

/* --- One core -------------------------------------------------------------- */

static uint64_t run_push_pop(void *arg, uint64_t n)
{
    q_store *s = arg;
    uint64_t acc = 0, v;
    for (uint64_t i = 0; i < n; i++) {
        spsc_push(&s->q, &i);
        spsc_pop(&s->q, &v);
        acc += v;
    }
    bench_keep(acc);
    return 0;
}

static uint64_t run_burst(void *arg, uint64_t n)
{
    q_store *s = arg;
    uint64_t in[BATCH], out[BATCH], acc = 0;
    for (uint32_t k = 0; k < BATCH; k++)
        in[k] = k;
    for (uint64_t i = 0; i < n; i += BATCH) {
        spsc_push_n(&s->q, in, BATCH);
        spsc_pop_n(&s->q, out, BATCH);
        acc += out[BATCH - 1];
    }
    bench_keep(acc);
    return 0;
}

/* --- Two threads ----------------------------------------------------------- */

typedef struct pair {
    q_store a; /* main -> partner */
    q_store b; /* partner -> main (round trips) */
    uint64_t n;
    int cpu;
    uint32_t batch;    /* throughput: elements per push_n (1 = spsc_push) */
    _Atomic int ready; /* the partner is running on its CPU */
    _Atomic int go;    /* the main thread started its clock */
} pair;

/* Partner side of the start line: thread creation and the migration to the
 * partner CPU stay out of the measurement. */
static void partner_start(pair *p)
{
    bench_pin_thread(p->cpu);
    atomic_store_explicit(&p->ready, 1, memory_order_release);
    while (!atomic_load_explicit(&p->go, memory_order_acquire))
        ;
}

static void main_start(pair *p)
{
    while (!atomic_load_explicit(&p->ready, memory_order_acquire))
        ;
    atomic_store_explicit(&p->go, 1, memory_order_release);
}

static void reset_start(pair *p)
{
    atomic_store(&p->ready, 0);
    atomic_store(&p->go, 0);
}

/* Throughput: the partner produces, the main thread consumes. */
static void *producer(void *arg)
{
    pair *p = arg;
    partner_start(p);
    uint64_t buf[BATCH];
    uint64_t sent = 0;
    while (sent < p->n) {
        if (p->batch == 1) {
            if (spsc_push(&p->a.q, &sent))
                sent++;
        } else {
            uint32_t want = p->n - sent < p->batch ? (uint32_t)(p->n - sent) : p->batch;
            for (uint32_t k = 0; k < want; k++)
                buf[k] = sent + k;
            sent += spsc_push_n(&p->a.q, buf, want);
        }
    }
    return NULL;
}

static uint64_t run_xthread_tput(pair *p, uint64_t n)
{
    p->n = n;
    reset_start(p);
    pthread_t t;
    if (pthread_create(&t, NULL, producer, p) != 0)
        abort();
    uint64_t got = 0, acc = 0, buf[BATCH];
    main_start(p);
    uint64_t t0 = bench_now_ns();
    while (got < n) {
        if (p->batch == 1) {
            uint64_t v;
            if (spsc_pop(&p->a.q, &v)) {
                acc += v;
                got++;
            }
        } else {
            uint32_t k = spsc_pop_n(&p->a.q, buf, BATCH);
            got += k;
            if (k)
                acc += buf[k - 1];
        }
    }
    uint64_t t1 = bench_now_ns();
    pthread_join(t, NULL);
    bench_keep(acc);
    return t1 - t0 ? t1 - t0 : 1;
}

static uint64_t run_tput1(void *arg, uint64_t n)
{
    pair *p = arg;
    p->batch = 1;
    return run_xthread_tput(p, n);
}

static uint64_t run_tput32(void *arg, uint64_t n)
{
    pair *p = arg;
    p->batch = BATCH;
    return run_xthread_tput(p, n);
}

/* Round trip: main pushes to a, the partner echoes into b. */
static void *echoer(void *arg)
{
    pair *p = arg;
    partner_start(p);
    for (uint64_t i = 0; i < p->n; i++) {
        uint64_t v;
        while (!spsc_pop(&p->a.q, &v))
            ;
        while (!spsc_push(&p->b.q, &v))
            ;
    }
    return NULL;
}

static uint64_t run_rtt(void *arg, uint64_t n)
{
    pair *p = arg;
    p->n = n;
    reset_start(p);
    pthread_t t;
    if (pthread_create(&t, NULL, echoer, p) != 0)
        abort();
    main_start(p);
    uint64_t acc = 0;
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v;
        spsc_push(&p->a.q, &i);
        while (!spsc_pop(&p->b.q, &v))
            ;
        acc += v;
    }
    uint64_t t1 = bench_now_ns();
    pthread_join(t, NULL);
    bench_keep(acc);
    return t1 - t0 ? t1 - t0 : 1;
}

void micro_spsc(bench *b)
{
    q_store *s = aligned_alloc(SPSC_CACHELINE, sizeof *s);
    if (!s)
        return;
    spsc_init(&s->q, s->slots, CAP, sizeof(uint64_t));
    bench_run(b, "spsc/push_pop_1core", run_push_pop, s, &(bench_opts){.unit = "push+pop"});
    spsc_init(&s->q, s->slots, CAP, sizeof(uint64_t));
    bench_run(b, "spsc/burst32_1core", run_burst, s,
              &(bench_opts){.unit = "element", .max_n = UINT64_MAX / 2});
    free(s);

    const char *names[] = {"spsc/xthread_tput", "spsc/xthread_tput_batch32", "spsc/xthread_rtt"};
    bool any = false;
    for (int i = 0; i < 3; i++)
        any = any || bench_want(b, names[i]);
    if (!any)
        return;
    pair *p = aligned_alloc(SPSC_CACHELINE, sizeof *p);
    int partner;
    if (!p || !bench_pair_begin(b, &partner)) {
        for (int i = 0; i < 3; i++)
            bench_skip(b, names[i], "needs two allowed CPUs");
        free(p);
        return;
    }
    p->cpu = partner;
    spsc_init(&p->a.q, p->a.slots, CAP, sizeof(uint64_t));
    spsc_init(&p->b.q, p->b.slots, CAP, sizeof(uint64_t));
    /* At least a million elements (100k round trips) per call, so that a
     * partner thread that is slow to get its CPU does not dominate. */
    bench_run(b, names[0], run_tput1, p, &(bench_opts){.unit = "element", .min_n = 1u << 20});
    bench_note(b, "partner_cpu", partner);
    bench_run(b, names[1], run_tput32, p, &(bench_opts){.unit = "element", .min_n = 1u << 20});
    bench_note(b, "partner_cpu", partner);
    if (bench_run(b, names[2], run_rtt, p, &(bench_opts){.unit = "round trip", .min_n = 100000}))
        bench_note(b, "partner_cpu", partner);
    bench_pair_end(b);
    free(p);
}
