/* ping_wait.h - PINGs waiting for their ACK, oldest first (not installed).
 *
 * One list per HTTP/2 connection: server connections (spindle_stream_ping,
 * conn_ping.c) and upstream connections (spindle_upstream_ping and the
 * upstream keepalive, upstream_conn.c).  A waiter is queued with a timed
 * PING (h2_conn_ping_timed: the send time rides in the opaque); a peer
 * acknowledges PINGs in order, so an ACK of a timed PING pops the oldest
 * waiter.  Shard thread only; a list is a head pointer, NULL when empty.
 */
#ifndef SPINDLE_CORE_PING_WAIT_H
#define SPINDLE_CORE_PING_WAIT_H

#include <stdint.h>

#include "h2_conn.h"
#include "spindle.h"

typedef struct ping_waiter {
    struct ping_waiter *next;
    spindle_rtt_fn fn; /* NULL: a bare waiter (the upstream keepalive) */
    void *ctx;
} ping_waiter;

/* Queue a timed PING on h2 (it goes out with the connection's next flush)
 * and a waiter at the list's tail.  0, or SPINDLE_ENOMEM (nothing queued). */
int ping_wait_send(ping_waiter **list, h2_conn *h2, spindle_rtt_fn fn, void *ctx);

/* What ping_wait_ack() did. */
enum ping_ack_kind {
    PING_ACK_NONE,   /* not a timed PING's ACK, or no waiter: nothing popped */
    PING_ACK_CALLED, /* the oldest waiter's fn(ctx, 0, rtt_us) ran, it is freed */
    PING_ACK_BARE,   /* the oldest waiter had no fn; it is freed */
};

/* An H2_EV_PING_ACK's opaque arrived: pop and answer the oldest waiter. */
enum ping_ack_kind ping_wait_ack(ping_waiter **list, const uint8_t opaque[8]);

/* Empty the list, calling each fn(ctx, err, 0) oldest first. */
void ping_wait_fail(ping_waiter **list, int err);

/* CLOCK_MONOTONIC in microseconds (the clock timed PINGs carry). */
uint64_t ping_wait_now_us(void);

#endif
