/* offload.h - running a blocking handler off the shard thread.
 *
 * With spindle_handler.blocking, each shard starts `offload-threads` worker
 * threads with itself, and every stream runs on them; otherwise the shard
 * starts them at the first spindle_offload() and only the streams handed
 * over that way run there (their flag ST_OFFLOADED).  A stream is bound to one worker for its life (by stream id), so
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

/* Shard side. */
bool offload_has_room(shard *sh); /* may the shard feed connections? */
/* fn: what the worker runs first (NULL: the handler's on_request). */
void offload_request(spindle_stream *st, const spindle_request *req, spindle_request_fn fn);
void offload_body(spindle_stream *st, const uint8_t *p, size_t n, bool end);
void offload_trailers(spindle_stream *st, const spindle_header *h, size_t n);
void offload_reset(spindle_stream *st, uint32_t code);
void offload_writable(spindle_stream *st);
void offload_timer(spindle_stream *st, spindle_timer_fn fn);
void offload_close(spindle_stream *st);
/* Apply the workers' commands; returns how many were applied. */
size_t offload_drain(shard *sh);

/* Copy n headers (lengths resolved) into one heap block; free() it.  Any
 * thread.  NULL on allocation failure. */
spindle_header *headers_copy(const spindle_header *h, size_t n);

/* Worker side: is the calling thread a worker?  (Then the spindle_* calls
 * queue commands instead of touching the connection.) */
bool offload_on_worker(void);
int offload_cmd_respond(spindle_stream *s, uint16_t status, const spindle_header *h, size_t n,
                        bool end);
int offload_cmd_send(spindle_stream *s, const void *data, size_t len, bool end,
                     spindle_release_fn release, void *ctx);
int offload_cmd_trailers(spindle_stream *s, const spindle_header *h, size_t n);
int offload_cmd_reset(spindle_stream *s, uint32_t code);
int offload_cmd_pause(spindle_stream *s, bool pause);
int offload_cmd_after(spindle_stream *s, uint32_t ms, spindle_timer_fn fn);

#endif
