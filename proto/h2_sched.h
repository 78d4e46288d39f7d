/* h2_sched.h - the RFC 9218 scheduler, private to proto/.
 *
 * Streams with something to frame wait in one FIFO per urgency (0..7).
 * DATA is framed lazily, when the caller asks for output
 * (h2_conn_out_prepare runs h2_sched_run with its byte budget): the most
 * urgent ready stream frames up to one quantum (16 KiB) against the
 * connection and stream windows at that moment, then goes to the back of
 * its queue (round robin within an urgency).  Payloads of up to 1 KiB are
 * copied into the chain; larger ones are referenced as segments.
 */
#ifndef SPINDLE_H2_SCHED_H
#define SPINDLE_H2_SCHED_H

#include "h2_conn_internal.h"

/* Queue the stream if it can produce a frame (windows of the connection
 * aside) and is not queued yet. */
void h2_sched_push(h2_conn *c, h2_stream *s);
/* Take the stream off its queue, if queued. */
void h2_sched_remove(h2_conn *c, h2_stream *s);
/* Frame DATA (and ends of streams) until about budget bytes are unsent,
 * the segment ring is full, or nothing is ready.  Fails the connection
 * (h2_conn_nomem) when memory runs out. */
void h2_sched_run(h2_conn *c, uint64_t budget);

#endif
