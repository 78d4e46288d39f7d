/* micro_conn.c - the connection engine (proto/h2_conn) driven in memory
 * (the simulated client and server side: conn_sim.h).
 *
 *   conn/out_gather_N   self-timed: only prepare+commit of N ready responses
 *   conn/cycle_1        one request in, one response out, ns per request
 *   conn/cycle_m64      64 requests per input buffer (h2load -m 64)
 *   conn/cycle_1m       one request, a 1 MiB body by reference
 *   conn/handshake      h2_conn_new + preface/SETTINGS/ACK + free
 */
#include <stdlib.h>
#include <string.h>

#include "conn_sim.h"
#include "micro.h"

#define IDLE_CONNS 256u

static uint8_t one_mib[1u << 20];

/* --- Cases --------------------------------------------------------------------- */

typedef struct gather_arg {
    sim *s;
    uint32_t streams;
} gather_arg;

static uint64_t run_gather(void *arg, uint64_t n)
{
    gather_arg *g = arg;
    sim *s = g->s;
    uint64_t ns = 0;
    for (uint64_t i = 0; i < n; i++) {
        sim_maybe_reconnect(s, g->streams);
        size_t len = sim_build_requests(s, g->streams);
        sim_feed(s, s->in, len);
        uint64_t t0 = bench_now_ns();
        sim_flush(s);
        ns += bench_now_ns() - t0;
    }
    return ns ? ns : 1;
}

static void note_counters(bench *b, sim *s, const cmem *m0, uint64_t req0, uint64_t prep0,
                          uint64_t iov0)
{
    uint64_t req = s->requests - req0;
    if (!req)
        return;
    bench_note(b, "allocs_per_req",
               (double)(s->m.allocs + s->m.reallocs - m0->allocs - m0->reallocs) / (double)req);
    bench_note(b, "frees_per_req", (double)(s->m.frees - m0->frees) / (double)req);
    bench_note(b, "iovecs_per_req", (double)(s->iovecs - iov0) / (double)req);
    bench_note(b, "sends_per_req", (double)(s->prepares - prep0) / (double)req);
    if (s->errors)
        bench_note(b, "ERRORS", (double)s->errors);
}

static void bench_gather(bench *b, sim *s, const char *name, uint32_t streams)
{
    if (!bench_want(b, name))
        return;
    gather_arg g = {s, streams};
    uint64_t prep0 = s->prepares, iov0 = s->iovecs, req0 = s->requests, bytes0 = s->out_bytes;
    if (bench_run(b, name, run_gather, &g, &(bench_opts){.unit = "drain"})) {
        double drains = (double)(s->requests - req0) / streams;
        bench_note(b, "streams", streams);
        bench_note(b, "iovecs_per_drain", (double)(s->iovecs - iov0) / drains);
        bench_note(b, "sends_per_drain", (double)(s->prepares - prep0) / drains);
        bench_note(b, "bytes_per_drain", (double)(s->out_bytes - bytes0) / drains);
        if (s->errors)
            bench_note(b, "ERRORS", (double)s->errors);
    }
}

static void bench_cycle(bench *b, sim *s, const char *name, uint32_t batch, double bytes)
{
    if (!bench_want(b, name))
        return;
    sim_cycle a = {s, batch};
    cmem m0 = s->m;
    uint64_t req0 = s->requests, prep0 = s->prepares, iov0 = s->iovecs;
    if (bench_run(b, name, sim_run_cycle, &a,
                  &(bench_opts){.unit = "request", .bytes_per_op = bytes}))
        note_counters(b, s, &m0, req0, prep0, iov0);
}

/* New connection, handshake (preface, SETTINGS, WINDOW_UPDATE, our SETTINGS
 * out, their ACK in), free. */
static uint64_t run_handshake(void *arg, uint64_t n)
{
    sim *s = arg;
    uint8_t ack[H2_FRAME_HDR_LEN];
    h2_frame_write_settings_ack(ack);
    h2_conn *keep = s->c;
    for (uint64_t i = 0; i < n; i++) {
        s->c = h2_conn_new(&s->x, s->now);
        if (!s->c) {
            s->errors++;
            break;
        }
        sim_feed(s, s->hs, s->hs_len);
        sim_flush(s);
        sim_feed(s, ack, sizeof ack);
        sim_flush(s);
        h2_conn_free(s->c);
        s->handshakes++;
    }
    s->c = keep;
    return 0;
}

/* Bytes sitting in the context's pools' free lists: shared by all
 * connections of the thread, not owned by any one of them. */
static int64_t pooled_bytes(const h2_ctx *x)
{
    const h2_pool *p[] = {&x->streams, &x->chunks, &x->blocks, &x->segs};
    int64_t n = 0;
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        n += (int64_t)p[i]->nfree * p[i]->size;
    return n;
}

/* Engine memory per idle connection: the delta of live bytes not cached in
 * the pools, over IDLE_CONNS connections after the handshake, and after one
 * request each.  Bytes requested from the h2_mem, before allocator rounding. */
static void measure_idle(bench *b, sim *s)
{
    h2_conn **cs = calloc(IDLE_CONNS, sizeof *cs);
    if (!cs)
        return;
    uint8_t ack[H2_FRAME_HDR_LEN];
    h2_frame_write_settings_ack(ack);
    h2_conn *keep = s->c;
    uint32_t keep_sid = s->next_sid;
    int64_t base = s->m.live_bytes - pooled_bytes(&s->x);
    uint32_t made = 0;
    for (; made < IDLE_CONNS; made++) {
        s->c = cs[made] = h2_conn_new(&s->x, s->now);
        if (!s->c)
            break;
        sim_feed(s, s->hs, s->hs_len);
        sim_flush(s);
        sim_feed(s, ack, sizeof ack);
        sim_flush(s);
    }
    int64_t after_hs = s->m.live_bytes - pooled_bytes(&s->x);
    /* One request on each (a fresh client encoder per connection: the first
     * block, literals, so each server decoder table gets its entries). */
    for (uint32_t i = 0; i < made; i++) {
        s->c = cs[i];
        uint8_t *p = h2_frame_write_headers(s->in, 1, true, true, NULL, s->first,
                                            (uint32_t)s->first_len, 0, false);
        sim_feed(s, s->in, (size_t)(p - s->in));
        sim_flush(s);
    }
    int64_t after_req = s->m.live_bytes - pooled_bytes(&s->x);
    for (uint32_t i = 0; i < made; i++)
        h2_conn_free(cs[i]);
    free(cs);
    s->c = keep;
    s->next_sid = keep_sid;
    if (made) {
        bench_note(b, "idle_bytes_per_conn", (double)(after_hs - base) / made);
        bench_note(b, "idle_bytes_after_1_req", (double)(after_req - base) / made);
        bench_note(b, "sizeof_h2_ctx", sizeof(h2_ctx));
    }
}

void micro_conn(bench *b)
{
    static const char *all[] = {"conn/out_gather_1", "conn/out_gather_16", "conn/out_gather_64",
                                "conn/cycle_1",      "conn/cycle_m64",     "conn/cycle_1m",
                                "conn/handshake"};
    bool any = false;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        any = any || bench_want(b, all[i]);
    if (!any)
        return;
    sim *s = sim_new();
    if (!s) {
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            bench_skip(b, all[i], "could not set up the in-memory connection");
        return;
    }
    bench_gather(b, s, "conn/out_gather_1", 1);
    bench_gather(b, s, "conn/out_gather_16", 16);
    bench_gather(b, s, "conn/out_gather_64", 64);
    bench_cycle(b, s, "conn/cycle_1", 1, 0);
    bench_cycle(b, s, "conn/cycle_m64", 64, 0);

    const uint8_t *small = s->body;
    size_t small_len = s->body_len;
    for (size_t i = 0; i < sizeof one_mib; i++)
        one_mib[i] = (uint8_t)((i * 31u + 7u) & 0xffu);
    s->body = one_mib;
    s->body_len = sizeof one_mib;
    bench_cycle(b, s, "conn/cycle_1m", 1, (double)sizeof one_mib);
    s->body = small;
    s->body_len = small_len;

    if (bench_want(b, "conn/handshake")) {
        cmem m0 = s->m;
        uint64_t e0 = s->errors, h0 = s->handshakes;
        if (bench_run(b, "conn/handshake", run_handshake, s, &(bench_opts){.unit = "connection"})) {
            uint64_t h = s->handshakes - h0;
            if (h)
                bench_note(b, "allocs_per_conn",
                           (double)(s->m.allocs + s->m.reallocs - m0.allocs - m0.reallocs) /
                               (double)h);
            measure_idle(b, s);
            if (s->errors != e0)
                bench_note(b, "ERRORS", (double)(s->errors - e0));
        }
    }
    sim_free(s);
}
