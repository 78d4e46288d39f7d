/* offload.h - running a blocking handler off the shard thread.
 *
 * With spindle_handler.blocking, each shard starts `offload-threads` worker
 * threads with itself, and every stream runs on them; otherwise the shard
 * starts them at the first spindle_offload() and only the streams handed
 * over that way run there (their mode offload_stream_ops, flag
 * ST_OFFLOADED).  A stream is bound to one worker for its life, so
 * its callbacks run on one thread, in order.  Between the shard and each
 * worker there are two bounded SPSC queues (core/spsc.h):
 *
 *   shard --msgs--> worker   request heads, body chunks (copied), trailers,
 *                            resets, writable, timers, close
 *   worker --cmds--> shard   respond, send (by reference), trailers, reset,
 *                            consumed (reopens the flow-control window),
 *                            pause/resume, timers, freed
 *
 * Doorbells: the shard writes the worker's eventfd only when the worker is
 * asleep; the worker rings the shard's ring doorbell (ring_waker) after
 * producing commands.  A full message queue is backpressure: the shard
 * stops feeding connections until the worker catches up (messages that
 * cannot wait, like close, go to a short per-shard overflow list).
 *
 * Lifetime: a stream handed to a worker is freed only when the worker
 * acknowledges its close (cmd FREED); until then the shard keeps the
 * struct, marked closed, and ignores late commands for it.
 */
#ifndef SPINDLE_CORE_OFFLOAD_H
#define SPINDLE_CORE_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shard.h"
#include "stream.h"

typedef struct offload offload;

/* Start n workers for the shard (owner thread).  0 or SPINDLE_E*. */
int offload_start(shard *sh, uint32_t n);
/* Stop and join the workers, after every stream has been closed. */
void offload_stop(shard *sh);

/* Shard side: may the shard feed connections (no worker queue nearly
 * full)?  Owner thread. */
bool offload_has_room(shard *sh);
/* Apply the workers' commands; returns how many were applied.  Owner
 * thread. */
size_t offload_drain(shard *sh);
/* Messages queued to the workers and commands queued back, summed over
 * the shard's workers (approximate: the workers move meanwhile).  Owner
 * thread (the metrics read what stats_tick publishes). */
uint64_t offload_queue_depth(shard *sh);

/* The offloaded mode (stream.h): the handler's calls, made on the stream's
 * worker, become commands to the shard; the shard's events become messages
 * to the worker.  Set by spindle_offload(), or for every stream of a
 * blocking handler (sh->stream_mode). */
extern const stream_ops offload_stream_ops;

#endif
