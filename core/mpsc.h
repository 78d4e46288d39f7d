/* mpsc.h - bounded lock-free multi-producer single-consumer queue.
 *
 * Dmitry Vyukov's bounded queue, with one consumer.  A ring of `cap` cells
 * (cap a power of two, 2..2^30), each a sequence number and an element of
 * `elem_size` bytes (copied in and out by value).  Cell i starts with
 * seq = i.  Indices grow without bound and wrap modulo 2^32; differences
 * are taken as signed 32-bit, exact because cap <= 2^30.
 *
 *   producer: pos = tail; the cell at pos is free when its seq == pos:
 *             claim it by CAS tail pos -> pos+1, copy the element in, then
 *             store seq = pos+1 (release).  seq < pos: the cell still
 *             holds the element of one lap ago: full.  seq > pos: another
 *             producer claimed pos first: reload tail and retry.
 *   consumer: the cell at head holds an element when its seq == head+1
 *             (acquire); copy it out, store seq = head+cap (release: the
 *             cell is free for the next lap), head+1.
 *
 * Producers never wait for each other except to retry a lost CAS
 * (lock-free); the consumer never writes a shared index producers CAS on
 * and takes no lock.  Order: elements come out in claim order; a thread's
 * successive pushes claim increasing positions, so each producer's order
 * is kept.  A producer that claimed a cell and was preempted before
 * publishing holds back the cells after it (the consumer sees "empty" at
 * its cell) until it publishes: nothing is lost, and the publisher's own
 * wake-up protocol (see core/post.c) covers the consumer that went to
 * sleep meanwhile.
 *
 * Threads: init and free before and after both sides; push from any
 * thread; pop / ready from one consumer thread at a time.  Header-only.
 */
#ifndef SPINDLE_CORE_MPSC_H
#define SPINDLE_CORE_MPSC_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MPSC_CACHELINE 64

typedef struct mpsc {
    /* Line 0: read-only after init. */
    alignas(MPSC_CACHELINE) unsigned char *cells;
    uint32_t mask;
    uint32_t elem_size;
    uint32_t stride; /* bytes per cell: 8 (seq + padding) + elem_size, rounded to 8 */
    /* Line 1: the producers' (CAS). */
    alignas(MPSC_CACHELINE) _Atomic uint32_t tail;
    /* Line 2: the consumer's. */
    alignas(MPSC_CACHELINE) uint32_t head;
} mpsc;

static inline _Atomic uint32_t *mpsc__seq(const mpsc *q, uint32_t idx)
{
    return (_Atomic uint32_t *)(void *)(q->cells + (size_t)(idx & q->mask) * q->stride);
}

static inline unsigned char *mpsc__elem(const mpsc *q, uint32_t idx)
{
    return q->cells + (size_t)(idx & q->mask) * q->stride + 8;
}

/* Allocates the cells (cap_pow2 in 2..2^30, elem_size 1..4096).  false on
 * a bad argument or out of memory (q untouched). */
static inline bool mpsc_init(mpsc *q, uint32_t cap_pow2, uint32_t elem_size)
{
    if (cap_pow2 < 2 || cap_pow2 > (UINT32_C(1) << 30) || (cap_pow2 & (cap_pow2 - 1)) != 0 ||
        elem_size == 0 || elem_size > 4096)
        return false;
    uint32_t stride = (8 + elem_size + 7) & ~UINT32_C(7);
    unsigned char *cells = aligned_alloc(MPSC_CACHELINE, (size_t)cap_pow2 * stride);
    if (!cells)
        return false;
    q->cells = cells;
    q->mask = cap_pow2 - 1;
    q->elem_size = elem_size;
    q->stride = stride;
    for (uint32_t i = 0; i < cap_pow2; i++)
        atomic_init(mpsc__seq(q, i), i);
    atomic_init(&q->tail, 0);
    q->head = 0;
    return true;
}

static inline void mpsc_free(mpsc *q)
{
    free(q->cells);
    q->cells = NULL;
}

static inline uint32_t mpsc_capacity(const mpsc *q)
{
    return q->mask + 1;
}

/* Any thread.  Copies elem in; false when full (nothing copied). */
static inline bool mpsc_push(mpsc *q, const void *elem)
{
    uint32_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    for (;;) {
        uint32_t seq = atomic_load_explicit(mpsc__seq(q, pos), memory_order_acquire);
        int32_t dif = (int32_t)(seq - pos);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (dif < 0) {
            return false;
        } else {
            pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
        }
    }
    memcpy(mpsc__elem(q, pos), elem, q->elem_size);
    atomic_store_explicit(mpsc__seq(q, pos), pos + 1, memory_order_release);
    return true;
}

/* Consumer.  Is the next element published? */
static inline bool mpsc_ready(const mpsc *q)
{
    return atomic_load_explicit(mpsc__seq(q, q->head), memory_order_acquire) == q->head + 1;
}

/* Consumer.  Copies the oldest published element out; false when none is
 * (empty, or the next cell is claimed but not yet published). */
static inline bool mpsc_pop(mpsc *q, void *out)
{
    uint32_t head = q->head;
    if (atomic_load_explicit(mpsc__seq(q, head), memory_order_acquire) != head + 1)
        return false;
    memcpy(out, mpsc__elem(q, head), q->elem_size);
    atomic_store_explicit(mpsc__seq(q, head), head + q->mask + 1, memory_order_release);
    q->head = head + 1;
    return true;
}

#endif
