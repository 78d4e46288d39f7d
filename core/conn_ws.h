/* conn_ws.h - a WebSocket over HTTP/1.1 after its handshake (not
 * installed).
 *
 * RFC 6455's handshake is mapped onto the RFC 8441 request HTTP/2 gives
 * handlers (conn_h1.c: method CONNECT, :protocol websocket); when the
 * handler answers 2xx, the codec sends 101 with Sec-WebSocket-Accept, and
 * once that is committed the connection becomes CONN_WS: every byte the
 * client sends is the stream's body (on_body), every byte the handler sends
 * goes out as is (frames are the application's business, as over HTTP/2).
 * The stream ends with the connection: the handler ending its body or
 * resetting closes it once the output is flushed; the client closing
 * resets the stream (CANCEL), and so does h1-ws-idle-timeout (h1_limits.h:
 * no byte read from the client nor written to it for that long closes the
 * connection; counted as the "h1-ws-idle-timeout" limit hit).  Shard
 * thread.
 */
#ifndef SPINDLE_CORE_CONN_WS_H
#define SPINDLE_CORE_CONN_WS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "h2_conn.h"

typedef struct conn conn;
typedef struct ws_chunk ws_chunk;

/* Output queued by reference (from the handler's 2xx on, also while the
 * 101 is still on its way) and the stream's state. */
typedef struct conn_ws {
    ws_chunk *head, *tail;
    uint64_t queued;     /* bytes queued and not committed */
    uint64_t off;        /* committed bytes of head */
    uint64_t unconsumed; /* body bytes delivered and not consumed */
    uint64_t active_ms;  /* the last byte read or written (idle timer) */
    uint32_t id;         /* the stream */
    bool ended;          /* the handler ended its body (or reset): close after the queue */
} conn_ws;

/* A new WebSocket state for stream id; NULL without memory. */
conn_ws *conn_ws_new(uint32_t id);
/* Queue by reference (release runs exactly once, also on failure). */
h2_rv conn_ws_send(conn_ws *w, const uint8_t *d, uint64_t len, bool end, h2_release_fn release,
                   void *ctx);
/* Release everything queued and free w. */
void conn_ws_free(conn_ws *w);
/* The 101 was committed: c (an HTTP/1.1 connection) becomes CONN_WS. */
void conn_ws_switch(conn *c, conn_ws *w);

#endif
