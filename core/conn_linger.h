/* conn_linger.h - the lingering close of a connection (not installed).
 *
 * When spindle closes a connection in order (its last response, GOAWAY or
 * close_notify written) while the client may still be sending, a plain
 * close() with unread input makes the kernel answer with RST and drop what
 * is still in the send queue: the client loses responses it had not read
 * yet.  Instead, as nginx does (lingering_close): shutdown(SHUT_WR) (the
 * FIN goes out after the queued bytes), then read and discard on the ring
 * until the client closes too, at most lingering-time in all, lingering-
 * timeout without a byte, or lingering-bytes discarded; then close.
 * Shard thread only.
 */
#ifndef SPINDLE_CORE_CONN_LINGER_H
#define SPINDLE_CORE_CONN_LINGER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct conn conn;

/* An orderly close (the engine is done, c still C_OPEN): start lingering
 * (c becomes C_LINGER; true), or false when the caller should close now
 * (lingering off, a failed connection (C_FLUSHING), the client already
 * shut down writing, or shutdown(2) failed). */
bool conn_linger_start(conn *c);
/* n bytes arrived while lingering: discarded; closes past lingering-bytes,
 * else moves the no-data deadline. */
void conn_linger_discard(conn *c, size_t n);
/* The drain began: lingering ends by drain-grace at the latest. */
void conn_linger_drain(conn *c);

#endif
