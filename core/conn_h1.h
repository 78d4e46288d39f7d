/* conn_h1.h - an HTTP/1.1 connection on its shard (not installed).
 *
 * The runtime side of proto/h1_conn (docs/h1.md): conn.c reads and writes
 * the socket, this module feeds the codec, turns its events into the
 * stream events stream.c already handles (a request number plays the
 * stream id; the head has the HTTP/2 shape), and answers conn.c's and
 * stream.c's engine calls through conn_proto_h1 (conn_proto.h).
 *
 * Backpressure: the codec pauses reading itself (pipelined requests held,
 * unsent output); a handler that pauses its body stops the socket reads
 * once limits.initial_window_size bytes are delivered and not consumed.
 * A protocol error (the codec queued 400..505) or a timeout: input is read
 * and discarded, requests already delivered are still answered, and the
 * connection closes once its output is flushed (at most CONN_LINGER_MS
 * after the codec is done, or when the peer stops reading).  Shard thread.
 */
#ifndef SPINDLE_CORE_CONN_H1_H
#define SPINDLE_CORE_CONN_H1_H

#include <stdbool.h>
#include <stdint.h>

#include "h1_conn.h"

typedef struct conn conn;

struct conn_h1 {
    h1_conn *codec;
    uint64_t unconsumed;      /* body bytes of body_id delivered, not consumed */
    uint64_t linger_deadline; /* parsing ended: close by then (0: not yet) */
    uint32_t body_id;         /* the request whose body is arriving */
    bool failed;              /* parsing ended (error, timeout): input is discarded */
};

/* Make c an HTTP/1.1 connection accepted at accepted_ms (the header-read
 * timeout of the first request counts from it).  false without memory. */
bool conn_h1_start(conn *c, uint64_t accepted_ms);

#endif
