/*
 * ring_poll.h - the adaptive idle poll's policy: how long ring_wait() polls
 * the ring before it sleeps, learned from how long the shard's recent idle
 * periods were.
 *
 * A shard that sleeps in io_uring_enter between requests pays a wake-up per
 * request: the scheduler, an IPI, and on a virtual machine whose guest does
 * not poll before halting (this project's VM: haltpoll off) an exit to the
 * host. When requests come back to back (one stream, a request a few tens
 * of microseconds after the last answer), polling a little before sleeping
 * catches the next one without any of that. When they do not, polling is a
 * waste of the core. The policy is that of Linux's cpuidle-haltpoll
 * governor, in user space and per shard:
 *
 *   - an idle period that ended within the bound (max_ns) but after the
 *     window: the window was too short; double it (from RING_POLL_START_NS);
 *   - an idle period longer than the bound: polling would not have caught
 *     it; halve the window (below RING_POLL_START_NS: 0, no poll);
 *   - a poll that found the thread descheduled (another task wanted this
 *     core: a client on the same core, say): window 0, and no growth for
 *     the next RING_POLL_HOLD idle periods, so that the poll never competes
 *     with the work it waits for.
 *
 * An idle server's periods are long (its only wake-ups are the shard's
 * timers), so its window is 0: it costs nothing. The worst case is traffic
 * whose gaps are all just under the bound: the core is then busy for them.
 * Pure state, no clock: the caller measures. Owner thread (one per ring).
 */
#ifndef SPINDLE_RING_POLL_H
#define SPINDLE_RING_POLL_H

#include <stdbool.h>
#include <stdint.h>

#define RING_POLL_START_NS   10000u /* the first window after a short period */
#define RING_POLL_HOLD       64u    /* idle periods without growth after a preemption */
#define RING_POLL_PREEMPT_NS 20000u /* a gap this long between two polls: descheduled */
#define RING_POLL_MIN_NS     2000u  /* shorter: the completion was already there */

typedef struct ring_poll {
    uint64_t max_ns;    /* the bound (0: off; the window stays 0) */
    uint64_t window_ns; /* poll this long before sleeping, now */
    uint32_t hold;      /* idle periods left before the window may grow */
} ring_poll;

/* Off (max_us 0) or adaptive up to max_us; the window starts at 0. */
void ring_poll_init(ring_poll *p, uint32_t max_us);

/*
 * One idle period: idle_ns is how long the shard had nothing to do (polled
 * + slept), preempted whether the poll saw the thread descheduled. Call it
 * for a period ended by a completion, and for one ended by the wait's
 * timeout (a timer of the shard's, not traffic) only when it was longer
 * than the bound. A period under RING_POLL_MIN_NS is no idle period (the
 * completion was waiting already) and changes nothing.
 */
void ring_poll_update(ring_poll *p, uint64_t idle_ns, bool preempted);

#endif
