/* async.c - per-shard lifecycle (on_shard_start / on_shard_stop), the
 * calling thread's shard, and shard timers.
 *
 * Lifecycle on the shard's thread (hooks from shard.c):
 *   async_shard_start     after setup: state, post queue open, current
 *                         shard set, on_shard_start
 *   ... the loop: async_run_posts each iteration, watches' CQEs, timers,
 *       async_before_wait / async_after_wait around ring_wait ...
 *   async_shard_stopped   once the drain is over: on_shard_stop (once),
 *                         then the loop goes on (no connections) until no
 *                         watch is open or the stop deadline
 *                         (drain_timeout_ms after on_shard_stop) passed
 *   async_shard_teardown  before the ring is freed: on_shard_stop if the
 *                         loop failed before, the post queue closed and its
 *                         accepted messages run, leftover watches logged
 *                         and closed, pending timers dropped, state freed
 */
#include <stdlib.h>

#include "async.h"
#include "log.h"
#include "server.h"
#include "shard.h"

static _Thread_local spindle_shard *current;

spindle_shard *async_current(void)
{
    return current;
}

spindle_shard *spindle_current_shard(void)
{
    return current;
}

void *spindle_shard_ctx(const spindle_shard *as)
{
    return as ? as->ctx : NULL;
}

uint32_t spindle_shard_index(const spindle_shard *as)
{
    return as ? as->sh->idx : 0;
}

static atomic_uint shard_count;

uint32_t spindle_shard_count(void)
{
    return atomic_load_explicit(&shard_count, memory_order_relaxed);
}

int async_shard_start(shard *sh)
{
    spindle_shard *as = calloc(1, sizeof *as);
    if (!as)
        return SPINDLE_ENOMEM;
    as->sh = sh;
    slot_table_init(&as->handles, 1u << HANDLE_SLOT_BITS);
    slot_table_init(&as->watches, RING_UD_SLOT_LIMIT);
    slot_table_init(&as->files, RING_UD_SLOT_LIMIT);
    sh->api = as;
    if (post_open(as) != 0)
        return SPINDLE_ENOMEM;
    atomic_store_explicit(&shard_count, sh->srv->nshards, memory_order_relaxed);
    current = as;
    as->started = true;
    if (sh->srv->hooks.on_shard_start)
        as->ctx = sh->srv->hooks.on_shard_start(as, sh->srv->app);
    return 0;
}

void async_run_posts(shard *sh)
{
    bool more = false;
    /* At most one queue's worth per iteration: producers as fast as the
     * shard must not starve its I/O (what is left: no wait, next round). */
    if (sh->api)
        post_run(sh->api, sh->srv->cfg.post_queue_size, &more);
}

static void call_stop(spindle_shard *as)
{
    if (as->stop_called || !as->started)
        return;
    as->stop_called = true;
    shard *sh = as->sh;
    if (sh->srv->hooks.on_shard_stop)
        sh->srv->hooks.on_shard_stop(as, as->ctx, sh->srv->app);
}

bool async_shard_stopped(shard *sh)
{
    spindle_shard *as = sh->api;
    if (!as)
        return true;
    if (!as->stop_called) {
        as->stop_deadline = sh->now + sh->srv->cfg.drain_timeout_ms;
        /* The loop's wait also stops at the drain deadline: move it along,
         * or a drain that used its whole time would spin here. */
        sh->drain_deadline = as->stop_deadline;
        call_stop(as);
    }
    /* File operations in flight borrow memory until their CQE: wait for
     * them (up to the deadline) whatever the hooks.  Without on_shard_stop
     * nobody will close the watches: do not wait for those. */
    if (as->nfiles && sh->now < as->stop_deadline)
        return false;
    return as->nwatches == 0 || sh->now >= as->stop_deadline || !sh->srv->hooks.on_shard_stop;
}

#ifdef SPINDLE_TEST_HOOKS
uint64_t async_test_idle_wait_ms;
#endif

uint64_t async_before_wait(shard *sh, uint64_t wait_ms)
{
#ifdef SPINDLE_TEST_HOOKS
    if (wait_ms == 1000 && async_test_idle_wait_ms)
        wait_ms = async_test_idle_wait_ms;
#endif
    spindle_shard *as = sh->api;
    if (!as)
        return wait_ms;
    bool again = false;
    watch_probe_run(as, &again);
    if (again)
        return 0;
    if (post_prepare_sleep(as))
        return 0;
    return wait_ms;
}

void async_after_wait(shard *sh)
{
    if (sh->api)
        post_woke(sh->api);
}

int spindle_shard_on_loop_end(spindle_shard *as, spindle_shard_loop_fn fn, void *arg)
{
    if (!as || as != current)
        return SPINDLE_ESTATE;
    if (fn && (as->finished || (as->loop_fn && (as->loop_fn != fn || as->loop_arg != arg))))
        return SPINDLE_ESTATE;
    as->loop_fn = fn;
    as->loop_arg = fn ? arg : NULL;
    return 0;
}

/* --- Shard timers ------------------------------------------------------- */

struct spindle_timer {
    timer_node node; /* kind TIMER_SHARD */
    spindle_shard *as;
    spindle_shard_timer_fn fn;
    void *arg;
    spindle_timer *prev, *next; /* as->timers */
};

static void timer_unlink(spindle_timer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        t->as->timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
}

int spindle_shard_after(spindle_shard *as, uint32_t ms, spindle_shard_timer_fn fn, void *arg,
                        spindle_timer **out)
{
    if (!fn)
        return SPINDLE_EINVAL;
    if (!as || as != current || as->finished)
        return SPINDLE_ESTATE;
    spindle_timer *t = calloc(1, sizeof *t);
    if (!t)
        return SPINDLE_ENOMEM;
    timer_node_init(&t->node);
    t->node.kind = TIMER_SHARD;
    t->as = as;
    t->fn = fn;
    t->arg = arg;
    t->next = as->timers;
    if (as->timers)
        as->timers->prev = t;
    as->timers = t;
    shard *sh = as->sh;
    timer_wheel_add(&sh->timers, &t->node, sh->now + ms);
    if (out)
        *out = t;
    return 0;
}

void spindle_timer_cancel(spindle_timer *t)
{
    if (!t)
        return;
    timer_wheel_cancel(&t->as->sh->timers, &t->node);
    timer_unlink(t);
    free(t);
}

void async_on_timer(timer_node *n)
{
    spindle_timer *t = (spindle_timer *)(void *)((char *)n - offsetof(spindle_timer, node));
    timer_unlink(t);
    spindle_shard *as = t->as;
    spindle_shard_timer_fn fn = t->fn;
    void *arg = t->arg;
    free(t);
    fn(as, arg);
}

void async_shard_teardown(shard *sh)
{
    spindle_shard *as = sh->api;
    if (!as)
        return;
    call_stop(as);
    post_close(as); /* runs what was accepted */
    as->finished = true;
    as->loop_fn = NULL;
    watch_close_all(as);
    uint32_t dropped = 0;
    while (as->timers) {
        spindle_timer *t = as->timers;
        timer_wheel_cancel(&sh->timers, &t->node);
        timer_unlink(t);
        free(t);
        dropped++;
    }
    if (dropped)
        log_msg(LOG_DEBUG, (int)sh->idx, "%u shard timer(s) pending at stop: dropped", dropped);
    fileop_teardown(as);
    slot_table_free(&as->handles);
    slot_table_free(&as->watches);
    free(as->probe);
    free(as->pfds);
    current = NULL;
    sh->api = NULL;
    free(as);
}
