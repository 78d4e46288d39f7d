/* conn_sim.h - the connection engine (proto/h2_conn) driven in memory, for
 * the microbenchmarks of micro_conn.c and micro_hop.c.
 *
 * A client is simulated with frames built by h2_frame_write_* and a client
 * hpack_encoder (the request is h2load's; after the first request the block
 * is fully indexed, as h2load's is).  The server side does what the shard
 * runtime does: h2_conn_recv until the input is used, answer each request
 * with h2_conn_respond + h2_conn_send_data over a static body + detach, then
 * h2_conn_out_prepare / h2_conn_out_commit until nothing is left.  Every
 * allocation goes through a counting h2_mem given to h2_ctx_init.
 * Single-threaded; errors are counted in sim.errors, never fatal.
 */
#ifndef SPINDLE_BENCH_CONN_SIM_H
#define SPINDLE_BENCH_CONN_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "h2_conn.h"

#define IOV_MAX_BENCH 64u          /* what core/conn.c gathers per send */
#define SEND_BUDGET   (256u << 10) /* bytes per send, as core/conn.c */
#define WINDOW        (1u << 30)   /* the client's receive windows */
#define SID_LIMIT     (1u << 30)   /* reconnect before stream ids run out */

/* The counting allocator. */
typedef struct cmem {
    h2_mem mem;
    uint64_t allocs, reallocs, frees;
    int64_t live_bytes;
    int64_t peak_bytes;
} cmem;

typedef struct sim {
    cmem m;
    h2_limits lim;
    h2_ctx x;
    h2_conn *c;
    uint64_t now;
    uint32_t next_sid;
    /* client */
    hpack_encoder enc;
    uint8_t first[1024], steady[1024]; /* >= hpack_encode_bound() */
    size_t first_len, steady_len;
    uint8_t hs[256]; /* preface + SETTINGS + WINDOW_UPDATE */
    size_t hs_len;
    uint64_t owed; /* DATA bytes received since our last connection WINDOW_UPDATE */
    uint8_t *in;
    size_t in_cap;
    /* server */
    hpack_field ctype;
    const uint8_t *body;
    size_t body_len;
    struct iovec iov[IOV_MAX_BENCH];
    /* NULL: answer each request inline (as core/conn.c); else every event
     * h2_conn_recv() returns goes here instead (bench/micro_hop.c). */
    void (*on_event)(struct sim *s, const h2_event *ev);
    void *on_event_ctx;
    uint64_t requests, responses, errors;
    uint64_t prepares, iovecs, out_bytes;
    uint64_t handshakes;
    uint8_t scratch[16384];
} sim;

/* A connection with its handshake done and one request answered, or NULL. */
sim *sim_new(void);
void sim_free(sim *s);

/* A new connection in place of the current one (handshake, one request). */
bool sim_connect(sim *s);

/* Reconnect when `upcoming` more requests would run out of stream ids. */
void sim_maybe_reconnect(sim *s, uint32_t upcoming);

/* Into s->in: nreq GET requests (the indexed block), preceded by a
 * connection WINDOW_UPDATE when enough DATA was received.  Returns bytes. */
size_t sim_build_requests(sim *s, uint32_t nreq);

/* Feed input the way core/conn.c does: h2_conn_recv until it is used, each
 * event to on_event (or each request answered inline). */
void sim_feed(sim *s, const uint8_t *in, size_t len);

/* Write all pending output (prepare + commit), as the runtime's send path. */
void sim_flush(sim *s);

/* Answer stream sid: 200, the body by reference, detach. */
void sim_respond(sim *s, uint32_t sid);

/* The request cycle of the conn/cycle_* and hop/ cases. */
typedef struct sim_cycle {
    sim *s;
    uint32_t batch; /* requests per input buffer */
} sim_cycle;

/* A bench_fn: n requests of the sim_cycle at arg, `batch` per input buffer
 * (build, feed, flush).  Returns 0: the harness times it. */
uint64_t sim_run_cycle(void *arg, uint64_t n);

/* Send and discard whatever the connection has queued. */
void sim_drain_discard(sim *s);

#endif
