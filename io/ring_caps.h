/*
 * io/ring_caps.h - internal to io/: the capability probe ring_new() runs.
 * The bits and ring_caps() are in ring.h.
 */
#ifndef SPINDLE_IO_RING_CAPS_H
#define SPINDLE_IO_RING_CAPS_H

#include <stdint.h>

#include "ring.h"

struct io_uring;

/*
 * Probe ring u (just set up, owner thread) for the RING_CAP_* features:
 * feature bits from io_uring_params.features, and three registrations
 * (a buffer ring with IOU_PBUF_RING_INC in a group other than buf_group, a
 * one-slot sparse file table, NAPI with a zero busy-poll time), each undone
 * at once. Returns the RING_CAP_* bits found; never fails (a refusal is a
 * missing feature).
 */
uint32_t ring_caps_probe(struct io_uring *u, uint16_t buf_group);

#endif /* SPINDLE_IO_RING_CAPS_H */
