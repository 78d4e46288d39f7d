/* micro_hop.c - hop/: what an SPSC hop on the shard thread would cost.
 *
 * The design sketches SPSC queues between the frame receiver, the dispatcher
 * and the stream tasks; docs/runtime.md keeps dispatch inline because on one
 * thread a queue only adds copies.  These cases measure that choice on the
 * request cycle of conn/cycle_* (conn_sim.h: h2_conn_recv, respond, prepare
 * and commit the output), in the same process, one after the other:
 *
 *   hop/inline_1     one request per input buffer, each request answered
 *                    inline when h2_conn_recv returns it (what core/ does)
 *   hop/queued_1     the same, but every event h2_conn_recv returns is copied
 *                    by value into a receiver -> dispatcher SPSC queue; the
 *                    dispatcher pops it and routes a stream's event into a
 *                    dispatcher -> stream queue; the stream task pops it and
 *                    answers.  Both queues drain before the next
 *                    h2_conn_recv, as they must: an event points into the
 *                    input and the decoder, valid until the next call.
 *   hop/inline_m64, hop/queued_m64   the same with 64 requests per input
 *
 * One stream queue serves every stream (a queue per stream would add a
 * lookup), and the queues stay in L1: the queued figures are a lower bound
 * of what the hop costs.  Queue storage is allocated once, before timing;
 * allocs_per_req counts the engine's allocations as in conn/cycle_*.
 */
#include <stdalign.h>
#include <stdlib.h>

#include "conn_sim.h"
#include "micro.h"
#include "spsc.h"

#define HOP_CAP 64u /* a power of two; one event in flight per stage suffices */

typedef struct hop {
    spsc rx; /* receiver -> dispatcher: every event */
    spsc st; /* dispatcher -> stream task: the stream's events */
    alignas(SPSC_CACHELINE) h2_event rx_slots[HOP_CAP];
    alignas(SPSC_CACHELINE) h2_event st_slots[HOP_CAP];
    uint64_t hops; /* events that crossed both queues */
} hop;

/* The receiver's side: queue the event, then let the dispatcher and the
 * stream task run before h2_conn_recv is called again. */
static void on_event_queued(sim *s, const h2_event *ev)
{
    hop *h = s->on_event_ctx;
    h2_event e;

    if (!spsc_push(&h->rx, ev)) {
        s->errors++;
        return;
    }
    /* The dispatcher: stream events go to the stream's task; connection
     * events (none in this cycle) would be handled here. */
    while (spsc_pop(&h->rx, &e))
        if (e.type == H2_EV_REQUEST && !spsc_push(&h->st, &e))
            s->errors++;
    /* The stream task. */
    while (spsc_pop(&h->st, &e)) {
        s->requests++;
        h->hops++;
        sim_respond(s, e.stream_id);
    }
}

static void hop_case(bench *b, sim *s, hop *h, const char *name, uint32_t batch, bool queued)
{
    sim_cycle a = {s, batch};
    cmem m0 = s->m;
    uint64_t req0 = s->requests, hops0 = h->hops, err0 = s->errors;

    if (!bench_want(b, name))
        return;
    s->on_event = queued ? on_event_queued : NULL;
    s->on_event_ctx = h;
    if (bench_run(b, name, sim_run_cycle, &a, &(bench_opts){.unit = "request"})) {
        uint64_t req = s->requests - req0;

        if (req) {
            bench_note(b, "allocs_per_req",
                       (double)(s->m.allocs + s->m.reallocs - m0.allocs - m0.reallocs) /
                           (double)req);
            bench_note(b, "hops_per_req", (double)(h->hops - hops0) / (double)req);
        }
        if (s->errors != err0)
            bench_note(b, "ERRORS", (double)(s->errors - err0));
    }
    s->on_event = NULL;
}

void micro_hop(bench *b)
{
    static const char *all[] = {"hop/inline_1", "hop/queued_1", "hop/inline_m64", "hop/queued_m64"};
    bool any = false;
    hop *h;
    sim *s;

    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        any = any || bench_want(b, all[i]);
    if (!any)
        return;
    s = sim_new();
    h = aligned_alloc(SPSC_CACHELINE, sizeof *h);
    if (!s || !h || !spsc_init(&h->rx, h->rx_slots, HOP_CAP, sizeof(h2_event)) ||
        !spsc_init(&h->st, h->st_slots, HOP_CAP, sizeof(h2_event))) {
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            bench_skip(b, all[i], "could not set up the in-memory connection");
        sim_free(s);
        free(h);
        return;
    }
    h->hops = 0;
    hop_case(b, s, h, "hop/inline_1", 1, false);
    hop_case(b, s, h, "hop/queued_1", 1, true);
    hop_case(b, s, h, "hop/inline_m64", 64, false);
    hop_case(b, s, h, "hop/queued_m64", 64, true);
    sim_free(s);
    free(h);
}
