/* shard.h - one thread pinned to a core, and its loop (not installed).
 *
 * A shard owns its ring, listeners, connection slots, timer wheel and h2
 * context (pools + header scratch), the streams of its connections and its
 * offload workers.  Everything in struct shard is touched only by the
 * shard's thread, except: `ready` and `waker` (published to the main
 * thread by a store to ready), `stats_wanted` (set by the main thread), and
 * `waker` (rung by offload workers and the main thread).
 *
 * Deferred frees: objects closed while a callback may still hold them
 * (streams closed during dispatch, connections closed while handling a CQE)
 * go on the shard's settle/dead lists and are freed by the loop's settle
 * step (static settle() in shard.c), never under the frame that closed them.
 */
#ifndef SPINDLE_CORE_SHARD_H
#define SPINDLE_CORE_SHARD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "h1_conn.h"
#include "h2_conn.h"
#include "ring.h"
#include "sendskip.h"
#include "spindle.h"
#include "stats.h"
#include "timer_wheel.h"
#include "tls.h"

#define SHARD_CQE_BATCH 256u

/* user_data operation tags of the shard's ring requests. */
enum { OP_ACCEPT = RING_OP_USER, OP_RECV, OP_SEND, OP_CANCEL, OP_ACCEPT_TLS, OP_SEND_NOCQE };
enum { TIMER_CONN = 0, TIMER_STREAM = 1, TIMER_SHARD = 2 }; /* timer_node.kind */

typedef struct server server;
typedef struct shard shard;
typedef struct conn conn;
typedef struct stream_ops stream_ops;

struct shard {
    server *srv;
    uint32_t idx;
    int cpu;
    pthread_t thread;
    int rc;
    ring *r;
    ring_bufs *bufs;
    int lfd;
    bool accept_armed;
    h2_ctx h2;
    h1_ctx h1; /* HTTP/1.1 connections' context (scratch, pools, limit hits) */
    conn **slots;
    uint32_t *gens;
    uint32_t *free_slots;
    uint32_t nfree;
    uint32_t nconns;
    timer_wheel timers;
    uint64_t now;
    conn *dirty;
    conn *parked;
    conn *dead_conns;
    spindle_stream *settle;
    spindle_stream *dead_streams;
    spindle_header *hdr_scratch; /* request headers handed to on_request */
    void *iov_free;              /* free list of send_bufs (at most CONN_IOV_KEEP, conn.c) */
    uint32_t niov_free;
    sendskip skip;               /* sends without a CQE, not yet settled (sendskip.h) */
    spindle_stream *stream_free; /* recycled stream objects (next_settle links) */
    uint32_t nstream_free;
    bool draining;
    uint64_t drain_deadline;
    uint64_t drain_grace_end; /* drain start + drain_grace_ms (conn.c) */
    atomic_bool stats_wanted; /* set by the main thread on SIGUSR1 */
    int arena;                /* this shard's jemalloc arena, -1 without jemalloc */
    struct offload *off;      /* offload workers (noff of them): started with the
                                  * shard for a blocking handler, else at the first
                                  * spindle_offload() */
    uint32_t noff;
    bool off_failed;               /* starting them failed once: not retried */
    const stream_ops *stream_mode; /* new streams' mode: inline, or offloaded (blocking) */
    spindle_stream *in_request;    /* the stream whose on_request runs (inline) */
    const spindle_request *in_request_req;
    struct overflow *off_overflow, *off_overflow_tail;
    spindle_stream *off_close_wait, *off_close_wait_tail; /* closes with no memory to queue */
    uint32_t off_streams;  /* streams handed to workers, not yet FREED */
    uint32_t *off_load;    /* per worker: streams bound to it, not yet FREED */
    conn *off_wait;        /* connections paused for worker queue room */
    bool yield_each_round; /* under valgrind: see shard_setup() */
    _Atomic int ready;     /* 0 starting, 1 serving, -1 failed */
    ring_waker waker;      /* valid once ready == 1 (published by it) */
    uint16_t port;         /* the port actually bound */
    /* TLS (srv->cfg.tls_cert set): a second listener and this shard's context. */
    tls_ctx *tls;
    int tls_lfd;
    bool tls_accept_armed;
    uint16_t tls_port;         /* the TLS port actually bound */
    struct spindle_shard *api; /* handles, watches, shard timers, posts (async.h) */
    /* Operators' view (stats.h): counters on cache lines of their own
     * (written by this thread only, read by any), the date header, the
     * access-log buffer. */
    shard_stats stats;
    shard_view view;
};

/* The shard thread's body: setup, the loop until drained, teardown.  arg is
 * the shard (srv, idx, cpu, port set); sh->rc holds the result (0 or
 * SPINDLE_E*).  Returns NULL. */
void *shard_main(void *arg);
/* Queue c for the flush step (idempotent; not once it is closing). */
void shard_mark_dirty(conn *c);
/* Log the shard's counters and memory (its own thread). */
void shard_log_stats(shard *sh);
/* CLOCK_MONOTONIC_COARSE in milliseconds.  Any thread. */
uint64_t shard_now_ms(void);

#endif
