/* conn_linger.c - the lingering close (conn_linger.h).
 *
 * The reads are conn.c's multishot recv on the shard's ring, kept armed (or
 * re-armed) while c->state is C_LINGER; conn_on_recv hands the bytes here
 * instead of to the engine, an EOF or an error closes (conn.c), and the
 * connection's timer holds the earlier of the two deadlines. */
#include "conn_linger.h"

#include <stdlib.h>
#include <sys/socket.h>

#include "conn.h"
#include "conn_detect.h"
#include "log.h"
#include "server.h"
#include "shard.h"
#include "stream.h"

/* The timer: lingering-time from the start, lingering-timeout from the
 * last byte, whichever comes first. */
static void set_deadline(conn *c)
{
    uint64_t d = c->sh->now + c->sh->srv->cfg.lingering_timeout_ms;
    if (d > c->linger_end_ms)
        d = c->linger_end_ms;
    if (timer_node_pending(&c->timer))
        timer_wheel_cancel(&c->sh->timers, &c->timer);
    timer_wheel_add(&c->sh->timers, &c->timer, d);
}

bool conn_linger_start(conn *c)
{
    const spindle_config *cfg = &c->sh->srv->cfg;
    /* Not after a failure (C_FLUSHING: a connection error's GOAWAY, a TLS
     * alert): that peer is cut off anyway, and a hostile one must not keep
     * the connection. */
    if (!cfg->lingering_time_ms || !cfg->lingering_timeout_ms || c->rd_eof || c->state != C_OPEN)
        return false;
    if (shutdown(c->fd, SHUT_WR) != 0)
        return false;    /* the peer is gone already (ENOTCONN): nothing to wait for */
    stream_conn_gone(c); /* the engine takes nothing more from handlers */
    c->state = C_LINGER;
    c->paused = false; /* input is discarded now, never held */
    free(c->held);
    c->held = NULL;
    c->held_len = c->held_off = c->held_cap = 0;
    c->linger_left = cfg->lingering_bytes;
    c->linger_end_ms = conn_drain_bound(c, c->sh->now + cfg->lingering_time_ms);
    set_deadline(c);
    conn_on_op_end(c); /* arms the recv unless one is armed (or being cancelled) */
    return true;
}

void conn_linger_discard(conn *c, size_t n)
{
    if (n >= c->linger_left) {
        log_msg(LOG_DEBUG, (int)c->sh->idx, "connection %u: lingering-bytes discarded: closing",
                c->slot);
        conn_close(c);
        return;
    }
    c->linger_left -= (uint32_t)n;
    set_deadline(c);
}

void conn_linger_drain(conn *c)
{
    c->linger_end_ms = conn_drain_bound(c, c->linger_end_ms);
    set_deadline(c);
}
