/* spsc.h - bounded lock-free single-producer single-consumer queue.
 *
 * Design
 * ------
 * A ring of `cap` fixed-size slots (`cap` a power of two, 1..2^31), each
 * `elem_size` bytes, in caller-provided storage (`cap * elem_size` bytes; align
 * it for the element type).  Elements are copied in and out by value: queue a
 * pointer (elem_size = sizeof(void *)) to hand over an object, or a small
 * fixed-size message (a few words) to avoid the indirection.
 *
 * Two 32-bit indices grow without bound and wrap modulo 2^32:
 *   tail - the next slot the producer writes  (written only by the producer)
 *   head - the next slot the consumer reads   (written only by the consumer)
 * `tail - head` (unsigned) is the fill level, 0..cap; slot = index & (cap - 1).
 * Wrap-around is harmless because cap divides 2^32 and cap <= 2^31, so the
 * unsigned difference is exact and "empty" (== 0) and "full" (== cap) never
 * collide.  No slot is sacrificed to tell full from empty.
 *
 * Layout: three 64-byte cache lines.  The first holds the parameters (written
 * once by spsc_init, read-only afterwards, so shared clean by both cores).  The
 * second is the producer's: `tail` and `head_cache`, its private copy of the
 * last `head` it read.  The third is the consumer's: `head` and `tail_cache`.
 * A side reads the other side's index only when its cached copy says the queue
 * is full (producer) or empty (consumer) - the "cached index" trick (as in
 * rigtorp's SPSCQueue and folly's ProducerConsumerQueue): in steady state each
 * side touches its own line, and the other side's line moves between cores
 * once per cap/2 operations or so instead of once per operation.
 *
 * Threads - the contract
 * ----------------------
 * - spsc_init / spsc_init_at: before either side uses the queue, and published
 *   to both threads by whatever starts them (pthread_create, a release store).
 * - Producer only (one thread at a time): spsc_push, spsc_push_n.
 * - Consumer only (one thread at a time): spsc_pop, spsc_pop_n, spsc_peek.
 * - Any thread: spsc_capacity; spsc_size_approx (a snapshot that may be stale
 *   by the time it returns; exact only when called by one side while the other
 *   is idle).
 * Changing which thread plays a role needs a happens-before edge between the
 * old and the new thread (a mutex, a join, a release/acquire pair).
 * Neither side ever blocks or spins: a full push or an empty pop returns false
 * (0 for the batch forms) and the caller decides - backpressure, a doorbell,
 * or yielding.  The queue never allocates.
 *
 * Memory ordering
 * ---------------
 * Producer: copy the element into slot[tail], then store tail+1 with release.
 * Consumer: load tail with acquire; seeing tail+1 it also sees the element.
 * Consumer: copy the element out of slot[head], then store head+1 with release.
 * Producer: load head with acquire before reusing a slot; seeing head+1 it
 * knows the consumer's read of that slot happened before its next write there
 * (without this the producer could overwrite a slot still being copied out).
 * Each side loads its own index relaxed: only it writes that index.
 * On x86-64 all of this compiles to plain moves; the orderings restrain the
 * compiler, and the weakly-ordered CPUs (arm64) get ldar/stlr.
 *
 * Storage: a `spsc` is over-aligned (64).  Embed it in a struct, or declare it
 * static or on the stack; from the heap use aligned_alloc(SPSC_CACHELINE, ...),
 * since plain malloc guarantees only 16-byte alignment.
 */
#ifndef SPINDLE_CORE_SPSC_H
#define SPINDLE_CORE_SPSC_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SPSC_CACHELINE 64

typedef struct spsc {
    /* Line 0: read-only after init. */
    alignas(SPSC_CACHELINE) unsigned char *slots;
    uint32_t mask; /* cap - 1 */
    uint32_t elem_size;

    /* Line 1: the producer's. */
    alignas(SPSC_CACHELINE) _Atomic uint32_t tail;
    uint32_t head_cache; /* producer's last view of head; head_cache <= head */

    /* Line 2: the consumer's. */
    alignas(SPSC_CACHELINE) _Atomic uint32_t head;
    uint32_t tail_cache; /* consumer's last view of tail; tail_cache <= tail */
} spsc;

/* Initializes `q` over `slots` (cap_pow2 * elem_size bytes, owned by the
 * caller and outliving the queue), both indices at `start`.  Any start value
 * is valid; tests use one near UINT32_MAX to exercise index wrap-around.
 * Returns false, leaving `q` untouched, if cap_pow2 is not a power of two in
 * 1..2^31, elem_size is 0, or slots is NULL. */
static inline bool spsc_init_at(spsc *q, void *slots, uint32_t cap_pow2, uint32_t elem_size,
                                uint32_t start)
{
    if (!slots || elem_size == 0 || cap_pow2 == 0 || cap_pow2 > (UINT32_C(1) << 31) ||
        (cap_pow2 & (cap_pow2 - 1)) != 0)
        return false;
    q->slots = slots;
    q->mask = cap_pow2 - 1;
    q->elem_size = elem_size;
    atomic_init(&q->tail, start);
    q->head_cache = start;
    atomic_init(&q->head, start);
    q->tail_cache = start;
    return true;
}

/* spsc_init_at with both indices at 0. */
static inline bool spsc_init(spsc *q, void *slots, uint32_t cap_pow2, uint32_t elem_size)
{
    return spsc_init_at(q, slots, cap_pow2, elem_size, 0);
}

/* Number of slots.  Any thread. */
static inline uint32_t spsc_capacity(const spsc *q)
{
    return q->mask + 1;
}

static inline unsigned char *spsc__slot(const spsc *q, uint32_t idx)
{
    return q->slots + (size_t)(idx & q->mask) * q->elem_size;
}

/* Producer: free slots, refreshing head_cache only when the cached view
 * shows fewer than `want` free.  Returns min(free, ...) as seen now. */
static inline uint32_t spsc__free(spsc *q, uint32_t tail, uint32_t want)
{
    uint32_t cap = q->mask + 1;
    uint32_t free_slots = cap - (tail - q->head_cache);
    if (free_slots < want) {
        q->head_cache = atomic_load_explicit(&q->head, memory_order_acquire);
        free_slots = cap - (tail - q->head_cache);
    }
    return free_slots;
}

/* Consumer: filled slots, refreshing tail_cache only when the cached view
 * shows fewer than `want` filled. */
static inline uint32_t spsc__filled(spsc *q, uint32_t head, uint32_t want)
{
    uint32_t filled = q->tail_cache - head;
    if (filled < want) {
        q->tail_cache = atomic_load_explicit(&q->tail, memory_order_acquire);
        filled = q->tail_cache - head;
    }
    return filled;
}

/* Producer.  Copies elem_size bytes from `elem` into the queue.
 * Returns false (nothing copied) when the queue is full. */
static inline bool spsc_push(spsc *q, const void *elem)
{
    uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (spsc__free(q, tail, 1) == 0)
        return false;
    memcpy(spsc__slot(q, tail), elem, q->elem_size);
    atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
    return true;
}

/* Producer.  Pushes up to `n` elements from the array `elems` (n * elem_size
 * bytes, in order) and publishes them with one release store.  Returns how
 * many were pushed: a prefix of `elems`, 0 when full.  Partial, not
 * all-or-nothing: call again with the rest. */
static inline uint32_t spsc_push_n(spsc *q, const void *elems, uint32_t n)
{
    uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint32_t free_slots = spsc__free(q, tail, n);
    if (n > free_slots)
        n = free_slots;
    if (n == 0)
        return 0;
    uint32_t first = (q->mask + 1) - (tail & q->mask); /* slots before the wrap */
    if (first > n)
        first = n;
    const unsigned char *src = elems;
    memcpy(spsc__slot(q, tail), src, (size_t)first * q->elem_size);
    if (n > first)
        memcpy(q->slots, src + (size_t)first * q->elem_size, (size_t)(n - first) * q->elem_size);
    atomic_store_explicit(&q->tail, tail + n, memory_order_release);
    return n;
}

/* Consumer.  Returns a pointer to the oldest element, in place, or NULL when
 * empty.  The pointer stays valid, and the element unchanged, until this
 * consumer's next spsc_pop / spsc_pop_n. */
static inline void *spsc_peek(spsc *q)
{
    uint32_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    if (spsc__filled(q, head, 1) == 0)
        return NULL;
    return spsc__slot(q, head);
}

/* Consumer.  Copies the oldest element into `out` (elem_size bytes) and
 * removes it; `out` may be NULL to drop it (e.g. after spsc_peek).
 * Returns false (out untouched) when the queue is empty. */
static inline bool spsc_pop(spsc *q, void *out)
{
    uint32_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    if (spsc__filled(q, head, 1) == 0)
        return false;
    if (out)
        memcpy(out, spsc__slot(q, head), q->elem_size);
    atomic_store_explicit(&q->head, head + 1, memory_order_release);
    return true;
}

/* Consumer.  Pops up to `n` elements into the array `out` (n * elem_size
 * bytes; NULL drops them), oldest first, releasing their slots with one
 * store.  Returns how many were popped, 0 when empty. */
static inline uint32_t spsc_pop_n(spsc *q, void *out, uint32_t n)
{
    uint32_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    uint32_t filled = spsc__filled(q, head, n);
    if (n > filled)
        n = filled;
    if (n == 0)
        return 0;
    if (out) {
        uint32_t first = (q->mask + 1) - (head & q->mask);
        if (first > n)
            first = n;
        unsigned char *dst = out;
        memcpy(dst, spsc__slot(q, head), (size_t)first * q->elem_size);
        if (n > first)
            memcpy(dst + (size_t)first * q->elem_size, q->slots,
                   (size_t)(n - first) * q->elem_size);
    }
    atomic_store_explicit(&q->head, head + n, memory_order_release);
    return n;
}

/* Any thread.  The number of queued elements at some instant during the
 * call, clamped to 0..cap.  Loads head before tail so a concurrent consumer
 * cannot make the difference negative. */
static inline uint32_t spsc_size_approx(spsc *q)
{
    uint32_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
    uint32_t n = tail - head;
    return n > q->mask + 1 ? q->mask + 1 : n;
}

#endif /* SPINDLE_CORE_SPSC_H */
