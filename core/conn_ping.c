/* conn_ping.c - spindle_stream_ping(): the round-trip time to a server
 * stream's client, on its HTTP/2 connection.
 *
 * A timed PING (h2_conn_ping_timed: the send time in its opaque) goes out
 * with the connection's next flush; the ACK comes back through
 * stream_dispatch as H2_EV_PING_ACK and pops the oldest waiter (a peer
 * acknowledges PINGs in order; the engine's own shutdown PING is not a
 * timed one and is skipped).  Waiters still there when the connection is
 * freed get SPINDLE_ECLOSED.
 */
#include <stdlib.h>
#include <time.h>

#include "conn.h"
#include "conn_proto.h"
#include "shard.h"
#include "stream.h"
#include "upstream.h"

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int spindle_stream_ping(spindle_stream *s, spindle_rtt_fn fn, void *ctx)
{
    if (!s || !fn)
        return SPINDLE_EINVAL;
    conn *c = s->c;
    if (!c || (s->flags & (ST_CLOSED | ST_OFFLOADED)) || c->state != C_OPEN)
        return SPINDLE_ECLOSED;
    if (c->proto != CONN_H2)
        return SPINDLE_EINVAL;
    up_ping *p = calloc(1, sizeof *p);
    if (!p)
        return SPINDLE_ENOMEM;
    if (h2_conn_ping_timed(c->h2, now_us()) != H2_OK) {
        free(p);
        return SPINDLE_ENOMEM;
    }
    p->fn = fn;
    p->ctx = ctx;
    up_ping **pp = &c->pings;
    while (*pp)
        pp = &(*pp)->next;
    *pp = p;
    shard_mark_dirty(c);
    return 0;
}

void conn_ping_ack(conn *c, const h2_event *ev)
{
    uint64_t sent;
    up_ping *p = c->pings;
    if (!p || !h2_ping_sent_us(ev->u.ping, &sent))
        return;
    c->pings = p->next;
    uint64_t now = now_us();
    p->fn(p->ctx, 0, now > sent ? now - sent : 0);
    free(p);
}

void conn_ping_gone(conn *c)
{
    up_ping *p = c->pings;
    c->pings = NULL;
    while (p) {
        up_ping *next = p->next;
        p->fn(p->ctx, SPINDLE_ECLOSED, 0);
        free(p);
        p = next;
    }
}
