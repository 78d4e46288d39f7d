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
 * connection closes once its output is flushed (bounded by send-timeout).
 *
 * h2c Upgrade (cfg.h2c_upgrade): a request with "Upgrade: h2c" and a valid
 * HTTP2-Settings is not handed to the handler as HTTP/1.1: the codec sends
 * 101, and once that is committed the connection switches to CONN_H2 with
 * the request as stream 1 (h2_conn_open_upgraded), the handler sees it
 * there, and the input held behind it (the client preface) goes to the
 * HTTP/2 engine.
 *
 * WebSocket (RFC 6455): the handshake reaches the handler as the RFC 8441
 * request HTTP/2 gives it (method CONNECT, protocol "websocket", a body to
 * come); a 2xx answer becomes 101 with Sec-WebSocket-Accept and, once that
 * is committed, the connection is CONN_WS (conn_ws.h); any other answer is
 * sent as is and the request ends there.  Shard thread.
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
    bool requested;           /* a request was delivered on this connection */
    /* The shard drains and no request came yet: the first one is served
     * (its client sent it to a listener that accepted it), then the codec
     * shuts down (connection: close on its response). */
    bool drain_after_first;
    /* h2c Upgrade accepted: the 101 is on its way; once it is committed the
     * connection becomes HTTP/2 with this request as stream 1. */
    struct h2_req_head *up_head; /* a copy (one block) */
    uint8_t *up_settings;        /* the decoded HTTP2-Settings payload */
    uint32_t up_settings_len;
    /* WebSocket handshake (RFC 6455) handed to the handler as RFC 8441. */
    uint32_t ws_id;     /* the request, until answered */
    char ws_accept[29]; /* its Sec-WebSocket-Accept, NUL-terminated */
    struct conn_ws *ws; /* the handler accepted (2xx): 101 on its way */
};

/* Make c an HTTP/1.1 connection accepted at accepted_ms (the header-read
 * timeout of the first request counts from it).  false without memory. */
bool conn_h1_start(conn *c, uint64_t accepted_ms);

#endif
