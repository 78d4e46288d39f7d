/* doorbell.h - waking a consumer thread that sleeps on an empty SPSC queue.
 *
 * The consumer (an offload worker) blocks in read() on an eventfd when its
 * queue is empty; the producer (the shard) writes the eventfd after a push,
 * but only when the consumer says it sleeps, so a busy consumer costs the
 * producer no syscall.  That is Dekker's pattern:
 *
 *   producer                         consumer
 *   store tail (the push, release)   store sleeping = true
 *   ---- seq_cst fence ----          ---- seq_cst fence ----
 *   load sleeping: true -> write     load tail: empty -> read() (blocks)
 *
 * Without the two fences each side's load may be satisfied before its own
 * store is visible to the other (store->load reordering: x86's store
 * buffer does it too, and release/acquire does not forbid it), so both can
 * read the old value: the producer skips the write and the consumer sleeps
 * with a message queued.  With them, at least one side sees the other's
 * store: either the producer writes the eventfd, or the consumer finds the
 * message and does not block.  An extra write (the consumer woke up on its
 * own meanwhile) leaves the eventfd's counter set: the next read() returns
 * at once, one harmless spurious wake-up.
 *
 * Threads: doorbell_ring() by the queue's producer, doorbell_sleep() by its
 * consumer, doorbell_ring_always() by anyone; init/close before and after
 * both.  Header-only: the fast path (consumer awake) is a fence and a load.
 */
#ifndef SPINDLE_CORE_DOORBELL_H
#define SPINDLE_CORE_DOORBELL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "spsc.h"

typedef struct doorbell {
    int efd;
    atomic_bool sleeping; /* the consumer is in (or about to enter) read() */
} doorbell;

/* 0, or -1 with errno (eventfd). */
static inline int doorbell_init(doorbell *d)
{
    atomic_init(&d->sleeping, false);
    d->efd = eventfd(0, EFD_CLOEXEC);
    return d->efd < 0 ? -1 : 0;
}

static inline void doorbell_close(doorbell *d)
{
    if (d->efd >= 0)
        close(d->efd);
    d->efd = -1;
}

/* Wake the consumer whatever it is doing (it may then wake once for
 * nothing). */
static inline void doorbell_ring_always(doorbell *d)
{
    uint64_t one = 1;
    ssize_t w = write(d->efd, &one, sizeof one);
    (void)w;
}

/* Producer, after publishing into the consumer's queue. */
static inline void doorbell_ring(doorbell *d)
{
#ifndef SPINDLE_DOORBELL_UNFENCED              /* tests/core: the protocol before the fix */
    atomic_thread_fence(memory_order_seq_cst); /* order the push before the load */
#endif
    if (atomic_load_explicit(&d->sleeping, memory_order_relaxed))
        doorbell_ring_always(d);
}

/* Consumer, having found q empty: block until the producer rings, unless
 * something arrived meanwhile.  May return with q still empty (a spurious
 * wake-up, or a signal): the caller re-checks. */
static inline void doorbell_sleep(doorbell *d, spsc *q)
{
#ifndef SPINDLE_DOORBELL_UNFENCED
    atomic_store_explicit(&d->sleeping, true, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst); /* order the store before the check */
#else
    atomic_store(&d->sleeping, true); /* seq_cst store, no fence: as before */
#endif
    if (spsc_size_approx(q) == 0) {
        uint64_t v;
        ssize_t r = read(d->efd, &v, sizeof v);
        (void)r;
    }
    atomic_store_explicit(&d->sleeping, false, memory_order_relaxed);
}

#endif
