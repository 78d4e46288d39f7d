/*
 * io/ring_bufs.h - the provided-buffer pool behind multishot recv.
 *
 * N buffers of B bytes in one mapping, handed to the kernel through a
 * provided-buffer ring (IORING_REGISTER_PBUF_RING). liburing 2.3 has no
 * io_uring_setup_buf_ring(), so the ring memory is mapped here and
 * registered with io_uring_register_buf_ring().
 *
 * Ownership of a buffer id (bid) moves in a circle:
 *   kernel  --recv CQE with RING_CQE_F_BUFFER (seen by ring_reap)-->  caller
 *   caller  --ring_bufs_recycle(bid)-->  pending  --commit-->  kernel
 * Recycled buffers are written into the ring at once and published to the
 * kernel in batches (one store-release of the tail): every RING_BUFS_BATCH
 * recycles, and always before the ring submits or waits, so a recv re-armed
 * after recycling finds them. Recycling a bid the caller does not hold
 * (twice, or never received) is refused: handing the kernel one buffer twice
 * would let two recvs write into it.
 *
 * All functions: owner thread of the ring.
 */
#ifndef SPINDLE_IO_RING_BUFS_H
#define SPINDLE_IO_RING_BUFS_H

#include <stdint.h>

#include "ring.h"

struct io_uring;
struct ring_cqe;

/* Publish to the kernel after this many recycles even before a submit. */
#define RING_BUFS_BATCH     16u
#define RING_BUFS_MAX_COUNT 32768u

/*
 * io-internal (called by ring_new): map count buffers of size bytes and a
 * buffer ring of count entries, register it as group bgid on uring, and hand
 * every buffer to the kernel. count is a power of two in [1, 32768]; size in
 * [1, 2^31]. Returns 0 and *out, or -errno with err filled (-ENOMEM for a
 * non-root user names RLIMIT_MEMLOCK: the ring's pages are pinned and charged
 * to it).
 */
int ring_bufs_new(ring_bufs **out, struct io_uring *uring, uint16_t bgid, uint32_t count,
                  uint32_t size, ring_error *err);

/* io-internal (called by ring_free, after the ring's requests are
 * cancelled): unregister the group, unmap everything. NULL is a no-op. */
void ring_bufs_free(ring_bufs *b);

/* The bytes of buffer bid, valid while the caller holds bid; NULL if bid is
 * out of range. A recv CQE's data is the first res bytes. */
void *ring_bufs_get(const ring_bufs *b, uint16_t bid);

/* Bytes per buffer. */
uint32_t ring_bufs_size(const ring_bufs *b);

/* The group id the pool is registered as. */
uint16_t ring_bufs_group(const ring_bufs *b);

/* Buffers the kernel can fill right now (published or pending publication);
 * counts down as recv CQEs are reaped. 0 means a recv would end in -ENOBUFS. */
uint32_t ring_bufs_available(const ring_bufs *b);

/* Buffers the caller holds (reaped, not yet recycled). */
uint32_t ring_bufs_held(const ring_bufs *b);

/* Give bid back to the kernel. Returns 0, or -EINVAL if the caller does not
 * hold bid (double recycle, bid out of range). */
int ring_bufs_recycle(ring_bufs *b, uint16_t bid);

/* If cqe carries a buffer, recycle it (the path for stale or unwanted recv
 * CQEs). Returns 1 if a buffer was recycled, 0 if none, -EINVAL as above. */
int ring_bufs_recycle_cqe(ring_bufs *b, const struct ring_cqe *cqe);

/* Publish pending recycles now. ring_submit/ring_wait do this themselves. */
void ring_bufs_commit(ring_bufs *b);

/* io-internal (ring_reap): the kernel handed bid to the caller. */
void ring_bufs_taken(ring_bufs *b, uint16_t bid);

#endif /* SPINDLE_IO_RING_BUFS_H */
