/* post.c - spindle_post() / spindle_post_stream(): running a function on a
 * shard from any thread.
 *
 * Queue.  One bounded MPSC queue per shard (core/mpsc.h) of
 * cfg.post_queue_size messages (32 bytes each): producers claim a cell with
 * a CAS, the shard pops without a lock.  Full: SPINDLE_EAGAIN.  The shard
 * takes every message it finds at the start of each loop iteration, so the
 * bound is what producers can queue while the shard runs one iteration.
 *
 * Lifetime.  The boxes (one per possible shard index) are static, never
 * freed; a box's queue exists while the shard is open.  `state` is the
 * open bit plus twice the number of producers inside the box.  A producer
 * enters with a CAS that succeeds only while the bit is set, so once the
 * shard clears it no producer can enter any more and the count can only
 * fall: the shard waits for it to reach zero (producers inside never
 * block), runs what is left, then frees the queue.  That bounded wait is
 * the only wait on the shard's side, and only at stop.
 *
 * Wake-up (Dekker, as core/doorbell.h):
 *   producer                          shard, about to sleep
 *   publish the cell (release)        rung = false; sleeping = true
 *   ---- seq_cst fence ----           ---- seq_cst fence ----
 *   sleeping? and !xchg(rung, true):  queue ready? then do not block
 *     write the ring's eventfd        else ring_wait (the ring keeps a
 *                                     read armed on that eventfd)
 * One of the two always sees the other's store: either the shard finds the
 * message and does not block, or the producer writes the eventfd, whose
 * armed read completes and ends the wait (a write before the wait leaves
 * the counter set: the read completes at once).  `rung` makes one producer
 * write per sleep, not every producer: a producer that finds rung already
 * set saw a write made after the shard cleared it for this sleep, which
 * wakes the shard for its message too.  A busy shard (sleeping false)
 * costs producers no syscall.
 */
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>

#include "async.h"
#include "log.h"
#include "mpsc.h"
#include "server.h"
#include "shard.h"
#include "stream.h"

typedef void (*any_fn)(void);

typedef struct post_msg {
    any_fn fn;
    void *arg;
    uint64_t handle; /* 0: a spindle_post(); else spindle_post_stream()'s */
} post_msg;

struct post_box {
    alignas(64) _Atomic uint32_t state; /* bit 0 open; producers inside * 2 */
    mpsc *q;
    ring_waker waker;
    alignas(64) atomic_bool sleeping; /* the shard is (about to be) in ring_wait */
    atomic_bool rung;                 /* a producer wrote the eventfd for this sleep */
};

static post_box boxes[HANDLE_MAX_SHARDS];

#define BOX_OPEN 1u

/* Enter the box if it is open (then leave() after). */
static bool enter(post_box *b)
{
    uint32_t v = atomic_load_explicit(&b->state, memory_order_relaxed);
    do {
        if (!(v & BOX_OPEN))
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&b->state, &v, v + 2, memory_order_acquire,
                                                    memory_order_relaxed));
    return true;
}

static void leave(post_box *b)
{
    atomic_fetch_sub_explicit(&b->state, 2, memory_order_release);
}

static int post_to(uint32_t idx, any_fn fn, void *arg, uint64_t handle)
{
    if (idx >= HANDLE_MAX_SHARDS)
        return SPINDLE_ECLOSED;
    post_box *b = &boxes[idx];
    if (!enter(b))
        return SPINDLE_ECLOSED;
    post_msg m = {fn, arg, handle};
    if (!mpsc_push(b->q, &m)) {
        leave(b);
        return SPINDLE_EAGAIN;
    }
    atomic_thread_fence(memory_order_seq_cst); /* the publish before the check */
    if (atomic_load_explicit(&b->sleeping, memory_order_relaxed) &&
        !atomic_exchange_explicit(&b->rung, true, memory_order_seq_cst))
        ring_waker_wake(b->waker);
    leave(b);
    return 0;
}

int spindle_post(uint32_t shard_index, spindle_post_fn fn, void *arg)
{
    if (!fn)
        return SPINDLE_EINVAL;
    return post_to(shard_index, (any_fn)fn, arg, 0);
}

int spindle_post_stream(spindle_handle h, spindle_stream_post_fn fn, void *arg)
{
    if (!fn || !h.v)
        return SPINDLE_EINVAL;
    return post_to(handle_shard_index(h), (any_fn)fn, arg, h.v);
}

int post_open(spindle_shard *as)
{
    shard *sh = as->sh;
    if (sh->idx >= HANDLE_MAX_SHARDS)
        return 0; /* no box: posts to it answer SPINDLE_ECLOSED */
    post_box *b = &boxes[sh->idx];
    mpsc *q = aligned_alloc(MPSC_CACHELINE, sizeof *q);
    if (!q || !mpsc_init(q, sh->srv->cfg.post_queue_size, sizeof(post_msg))) {
        free(q);
        return -1;
    }
    b->q = q;
    b->waker = sh->waker;
    atomic_store_explicit(&b->sleeping, false, memory_order_relaxed);
    atomic_store_explicit(&b->rung, false, memory_order_relaxed);
    as->box = b;
    /* Publishes q and waker to producers (their CAS acquires). */
    atomic_store_explicit(&b->state, BOX_OPEN, memory_order_release);
    return 0;
}

static void run_one(spindle_shard *as, const post_msg *m)
{
    if (!m->handle) {
        ((spindle_post_fn)m->fn)(as, m->arg);
        return;
    }
    spindle_stream *s = spindle_handle_stream((spindle_handle){m->handle});
    ((spindle_stream_post_fn)m->fn)(s, m->arg);
}

void post_run(spindle_shard *as, uint32_t max, bool *more)
{
    post_box *b = as->box;
    *more = false;
    if (!b)
        return;
    post_msg m;
    for (uint32_t n = 0; n < max; n++) {
        if (!mpsc_pop(b->q, &m))
            return;
        run_one(as, &m);
    }
    *more = mpsc_ready(b->q);
}

bool post_prepare_sleep(spindle_shard *as)
{
    post_box *b = as->box;
    if (!b)
        return false;
    atomic_store_explicit(&b->rung, false, memory_order_relaxed);
    atomic_store_explicit(&b->sleeping, true, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst); /* the store before the check */
    if (mpsc_ready(b->q)) {
        atomic_store_explicit(&b->sleeping, false, memory_order_relaxed);
        return true;
    }
    return false;
}

void post_woke(spindle_shard *as)
{
    if (as->box)
        atomic_store_explicit(&as->box->sleeping, false, memory_order_relaxed);
}

void post_close(spindle_shard *as)
{
    post_box *b = as->box;
    if (!b)
        return;
    atomic_fetch_and_explicit(&b->state, ~BOX_OPEN, memory_order_seq_cst);
    /* No producer can enter now; those inside finish their push. */
    while (atomic_load_explicit(&b->state, memory_order_acquire) != 0)
        sched_yield();
    bool more;
    post_run(as, UINT32_MAX, &more);
    mpsc_free(b->q);
    free(b->q);
    b->q = NULL;
    as->box = NULL;
}
