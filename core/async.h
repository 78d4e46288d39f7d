/* async.h - the per-shard state behind the "waiting without blocking" API
 * (struct spindle_shard) and the hooks the shard loop calls (not
 * installed).
 *
 * Modules: async.c (lifecycle, the current shard, shard timers), handle.c
 * (stream handles), watch.c (fd watches), post.c (posting from any
 * thread).  All of it runs on the shard's thread except the producer side
 * of post.c.  The shard owns one spindle_shard from async_shard_start()
 * to async_shard_teardown() (shard->api).
 */
#ifndef SPINDLE_CORE_ASYNC_H
#define SPINDLE_CORE_ASYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "ring.h"
#include "slot_table.h"
#include "spindle.h"
#include "timer_wheel.h"

typedef struct shard shard;
typedef struct post_box post_box;

/* user_data ops of the async modules' ring requests (after shard.h's). */
enum { OP_WATCH = RING_OP_USER + 32, OP_FILE = RING_OP_USER + 33 };

/* Stream handles: 20 bits of slot, 12 of shard index, 32 of generation. */
#define HANDLE_SLOT_BITS  20u
#define HANDLE_SHARD_BITS 12u
#define HANDLE_MAX_SHARDS (1u << HANDLE_SHARD_BITS)

struct spindle_shard {
    shard *sh;
    void *ctx;        /* on_shard_start's result */
    bool started;     /* on_shard_start was called */
    bool stop_called; /* on_shard_stop was called */
    bool finished;    /* the stop phase is over: no more watches or timers */
    uint64_t stop_deadline;
    slot_table handles; /* spindle_stream * */
    /* Watches (watch.c). */
    slot_table watches;        /* spindle_watch * by user_data slot */
    uint32_t nwatches;         /* open (not closed) */
    struct watch_probe *probe; /* reported this iteration: poll(2) again */
    uint32_t nprobe, probe_cap;
    struct pollfd *pfds; /* scratch for the probe */
    /* File operations (fileop.c). */
    slot_table files; /* struct file_op * by user_data slot */
    uint32_t nfiles;  /* in flight */
    /* Shard timers (async.c): a list for the teardown. */
    spindle_timer *timers;
    /* The end-of-iteration hook (spindle_shard_on_loop_end), or NULL. */
    spindle_shard_loop_fn loop_fn;
    void *loop_arg;
    /* Posts (post.c). */
    post_box *box;
};

/* The calling thread's shard (NULL off shard threads). */
spindle_shard *async_current(void);

/* --- Hooks the shard loop calls (shard.c), all on the shard's thread --- */

/* After setup, before the loop: the state, the post queue open, the
 * thread's current shard set, on_shard_start called.  0 or SPINDLE_ENOMEM. */
int async_shard_start(shard *sh);
/* Step 1 of the loop: run posted messages. */
void async_run_posts(shard *sh);
/* The end of the iteration, before flushing and waiting: the application's
 * hook, if any (one branch when unset).  as is the shard's api (non-NULL
 * inside the loop). */
static inline void async_loop_end(spindle_shard *as)
{
    if (as->loop_fn)
        as->loop_fn(as, as->loop_arg);
}
/* The drain is over (no connection left): calls on_shard_stop the first
 * time; true when the shard may leave its loop (no watch open, or the stop
 * deadline passed). */
bool async_shard_stopped(shard *sh);
/* Before ring_wait: probe watches reported this iteration (level
 * semantics), prepare the post doorbell.  Returns the wait to use (0 when
 * something is already pending). */
uint64_t async_before_wait(shard *sh, uint64_t wait_ms);
/* After ring_wait. */
void async_after_wait(shard *sh);
/* A CQE with op OP_WATCH. */
void async_on_cqe(shard *sh, const ring_cqe *cqe);
/* A CQE with op OP_FILE: the op's callback (fileop.c). */
void fileop_on_cqe(shard *sh, const ring_cqe *cqe);
/* Teardown: log the ops still in flight, free the table (fileop.c). */
void fileop_teardown(spindle_shard *as);
/* A timer_node of kind TIMER_SHARD fired. */
void async_on_timer(timer_node *t);
/* Teardown, before ring_free(): on_shard_stop if not called yet, the post
 * queue closed and drained, watches and timers still open closed, the
 * state freed. */
void async_shard_teardown(shard *sh);

#ifdef SPINDLE_TEST_HOOKS
/* tests/core/test_post: when the loop would wait its full second (nothing
 * due), wait this long instead (0: unchanged), so that a lost wake-up hangs
 * the test instead of healing at the next tick.  Set before spindle_run. */
extern uint64_t async_test_idle_wait_ms;
#endif

/* --- Between the async modules --- */

/* watch.c */
void watch_probe_run(spindle_shard *as, bool *again);
void watch_close_all(spindle_shard *as);
/* post.c */
int post_open(spindle_shard *as);
void post_run(spindle_shard *as, uint32_t max, bool *more);
bool post_prepare_sleep(spindle_shard *as);
void post_woke(spindle_shard *as);
void post_close(spindle_shard *as);
/* handle.c: the shard index a handle names. */
uint32_t handle_shard_index(spindle_handle h);
/* handle.c: the stream st is closing: its handle goes stale. */
void handle_release(spindle_shard *as, spindle_stream *st);

#endif
