/* ping_wait.c - PINGs waiting for their ACK (ping_wait.h). */
#include "ping_wait.h"

#include <stdlib.h>
#include <time.h>

uint64_t ping_wait_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int ping_wait_send(ping_waiter **list, h2_conn *h2, spindle_rtt_fn fn, void *ctx)
{
    ping_waiter *p = calloc(1, sizeof *p);
    if (!p)
        return SPINDLE_ENOMEM;
    if (h2_conn_ping_timed(h2, ping_wait_now_us()) != H2_OK) {
        free(p);
        return SPINDLE_ENOMEM;
    }
    p->fn = fn;
    p->ctx = ctx;
    while (*list) /* a few at most: no tail pointer to carry */
        list = &(*list)->next;
    *list = p;
    return 0;
}

enum ping_ack_kind ping_wait_ack(ping_waiter **list, const uint8_t opaque[8])
{
    uint64_t sent;
    ping_waiter *p = *list;
    if (!p || !h2_ping_sent_us(opaque, &sent))
        return PING_ACK_NONE; /* the engine's own PINGs are not timed ones */
    *list = p->next;
    enum ping_ack_kind k = PING_ACK_BARE;
    if (p->fn) {
        uint64_t now = ping_wait_now_us();
        p->fn(p->ctx, 0, now > sent ? now - sent : 0);
        k = PING_ACK_CALLED;
    }
    free(p);
    return k;
}

void ping_wait_fail(ping_waiter **list, int err)
{
    ping_waiter *p = *list;
    *list = NULL;
    while (p) {
        ping_waiter *next = p->next;
        if (p->fn)
            p->fn(p->ctx, err, 0);
        free(p);
        p = next;
    }
}
