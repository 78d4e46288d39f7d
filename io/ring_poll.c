/* ring_poll.c - the adaptive idle poll's policy (ring_poll.h). */
#include "ring_poll.h"

void ring_poll_init(ring_poll *p, uint32_t max_us)
{
    p->max_ns = (uint64_t)max_us * 1000u;
    p->window_ns = 0;
    p->hold = 0;
}

void ring_poll_update(ring_poll *p, uint64_t idle_ns, bool preempted)
{
    if (p->max_ns == 0)
        return;
    if (preempted) {
        p->window_ns = 0;
        p->hold = RING_POLL_HOLD;
        return;
    }
    if (idle_ns < RING_POLL_MIN_NS)
        return; /* the completion was there at once: not an idle period */
    if (p->hold) {
        p->hold--; /* the window is 0 since the preemption */
        return;
    }
    if (idle_ns > p->max_ns) {
        p->window_ns /= 2;
        if (p->window_ns < RING_POLL_START_NS)
            p->window_ns = 0;
    } else if (idle_ns > p->window_ns) {
        uint64_t w = p->window_ns ? p->window_ns * 2 : RING_POLL_START_NS;
        p->window_ns = w < p->max_ns ? w : p->max_ns;
    }
}
