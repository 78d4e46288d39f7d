/* conn_ping.c - spindle_stream_ping(): the round-trip time to a server
 * stream's client, on its HTTP/2 connection.
 *
 * A timed PING (h2_conn_ping_timed: the send time in its opaque) goes out
 * with the connection's next flush; the ACK comes back through
 * stream_dispatch as H2_EV_PING_ACK and pops the oldest waiter (a peer
 * acknowledges PINGs in order; the engine's own shutdown PING is not a
 * timed one and is skipped).  Waiters still there when the connection is
 * freed get SPINDLE_ECLOSED.  The waiter list is ping_wait.c's, shared with
 * upstream connections.
 */
#include "conn.h"
#include "conn_proto.h"
#include "ping_wait.h"
#include "shard.h"
#include "stream.h"

int spindle_stream_ping(spindle_stream *s, spindle_rtt_fn fn, void *ctx)
{
    if (!s || !fn)
        return SPINDLE_EINVAL;
    conn *c = s->c;
    if (!c || (s->flags & (ST_CLOSED | ST_OFFLOADED)) || c->state != C_OPEN)
        return SPINDLE_ECLOSED;
    if (c->proto != CONN_H2)
        return SPINDLE_EINVAL;
    int rc = ping_wait_send(&c->pings, c->h2, fn, ctx);
    if (rc == 0)
        shard_mark_dirty(c);
    return rc;
}

void conn_ping_ack(conn *c, const h2_event *ev)
{
    (void)ping_wait_ack(&c->pings, ev->u.ping);
}

void conn_ping_gone(conn *c)
{
    ping_wait_fail(&c->pings, SPINDLE_ECLOSED);
}
