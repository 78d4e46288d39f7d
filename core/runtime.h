/* runtime.h - internal types of the shard runtime (not installed).
 *
 * Ownership, top-down:
 *   server  - spindle_run()'s state: configuration, shards, the stop flag.
 *   shard   - one thread pinned to a core: its ring, listener, connection
 *             slots, timers, h2 context (pools + header scratch).
 *   conn    - one accepted socket: its h2_conn engine, send state, held input.
 *   spindle_stream - the handler's view of one request.
 * Everything below the server is touched only by its shard's thread.
 *
 * Deferred frees: objects closed while a callback may still hold them
 * (streams closed during dispatch, connections closed while handling a
 * CQE) are put on the shard's dead lists and freed by shard_settle() at the
 * end of the loop iteration, never under the frame that closed them.
 */
#ifndef SPINDLE_CORE_RUNTIME_H
#define SPINDLE_CORE_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "h2_conn.h"
#include "ring.h"
#include "spindle.h"
#include "timer_wheel.h"
#include "tls.h"

/* Bytes gathered per send, and the iovecs for them (two per DATA frame:
 * header and payload).  76 iovecs keep a send_buf (msghdr + iovecs,
 * 1272 bytes) in jemalloc's 1280-byte class, as the 64 of before did, and
 * carry ~37 frames of 16 KiB: with the 1 MiB budget the iovecs bind first,
 * and a 1 MiB response takes 2 sends instead of 4 (h2load -c 8 -m 4 /1m:
 * 2.2 SQEs and ~1.0 io_uring_enter per response, from 4.2 and ~1.6).  160
 * iovecs (one send per MiB) looked ~10% cheaper per MiB in noisy
 * alternating runs but cost a 3 KiB size class per send in flight. */
#define CONN_IOV         76u
#define CONN_SEND_BUDGET (1024u << 10)
#define SHARD_CQE_BATCH  256u
#define SHARD_IOV_KEEP   64u   /* send_bufs a shard keeps for reuse (80 KiB) */
#define CONN_LINGER_MS   1000u /* a failed connection's last output, at most */

enum { OP_ACCEPT = RING_OP_USER, OP_RECV, OP_SEND, OP_CANCEL, OP_ACCEPT_TLS };
enum { TIMER_CONN = 0, TIMER_STREAM = 1 }; /* timer_node.kind */

typedef struct server server;
typedef struct shard shard;
typedef struct conn conn;

struct server {
    spindle_config cfg;
    h2_limits limits;
    spindle_handler handler;
    spindle_hooks hooks;
    void *app;
    uint32_t nshards;
    shard *shards;
    atomic_bool stop;
    tls_ticket_keys *tickets; /* one for the process, shared by every shard's tls_ctx */
};

enum conn_state {
    C_OPEN,     /* reading and writing */
    C_FLUSHING, /* no more reading: write what is queued (GOAWAY), then close */
    C_CLOSING,  /* cancelled: waiting for the last in-flight CQEs */
};

/* What a send in flight needs: lent by the shard only while a send is in
 * flight, so an idle connection carries neither the msghdr nor 1.2 KiB of
 * iovecs. */
typedef struct send_buf {
    struct msghdr msg;
    struct iovec iov[CONN_IOV];
} send_buf;

/* Laid out by size (8, 4, 1 bytes): every idle connection carries it, and
 * 160 bytes is a jemalloc size class. */
struct conn {
    shard *sh;
    h2_conn *h2;
    send_buf *sb;     /* borrowed from the shard while sending */
    uint8_t *held;    /* input not yet fed (paused); heap */
    timer_node timer; /* its deadline is the connection's; none while not pending */
    conn *next_dirty;
    conn *next_parked;
    conn *next_dead;
    conn *next_off_wait;
    spindle_stream *streams; /* live handler streams */
    tls_conn *tls;           /* NULL for h2c; else ciphertext goes through it (docs/tls.md) */
    int fd;
    uint32_t slot, gen;
    uint32_t ops;   /* in-flight operations (armed recv, send) */
    int32_t zc_res; /* the ZC send's result, held until the notification */
    uint32_t held_len, held_off, held_cap;
    uint8_t state;
    bool recv_armed;
    bool recv_parked;     /* recv ended with -ENOBUFS: re-arm once buffers return */
    bool recv_cancelling; /* a cancel for the armed recv is on its way */
    bool paused;          /* the engine asked us to stop reading: input is held */
    bool sending;
    bool zc;          /* the send in flight is SENDMSG_ZC */
    bool dirty;       /* on the shard's flush list */
    bool dead_listed; /* on the shard's dead list */
    bool off_waiting;
};

enum stream_flag {
    ST_REQ_END = 1u << 0,  /* request fully received */
    ST_RESP_END = 1u << 1, /* the handler ended its response */
    ST_RESET = 1u << 2,    /* reset (either side): nothing more is sent */
    ST_CLOSED = 1u << 3,   /* on_close delivered */
    ST_PAUSED = 1u << 4,   /* the handler paused the body */
    ST_WANT_WRITABLE = 1u << 5,
    ST_SETTLE = 1u << 6,    /* on the shard's settle list */
    ST_OFFLOADED = 1u << 7, /* its callbacks run on an offload worker */
};

struct spindle_stream {
    conn *c;
    uint32_t sid;
    uint16_t flags;
    void *user;
    uint8_t *pend; /* body held while paused */
    size_t pend_len, pend_cap;
    bool pend_end;
    spindle_header *pend_trailers; /* trailers held behind a paused body (one block) */
    size_t pend_ntrailers;
    spindle_stream *next; /* conn's list */
    spindle_stream *prev;
    spindle_stream *next_settle; /* shard's settle / dead list */
    timer_node timer;            /* spindle_stream_after() */
    spindle_timer_fn timer_fn;
    /* Worker side (offloaded handlers only; touched by the worker alone). */
    uint16_t wflags;         /* ST_RESET / ST_CLOSED / ST_PAUSED as the worker saw them */
    size_t wunconsumed;      /* body taken while paused, not yet reported */
    uint32_t worker;         /* index of the offload worker it is bound to */
    _Atomic size_t buffered; /* spindle_stream_buffered() for the worker */
};

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
    void *iov_free;              /* free list of send_bufs (at most SHARD_IOV_KEEP) */
    uint32_t niov_free;
    spindle_stream *stream_free; /* recycled stream objects (next_settle links) */
    uint32_t nstream_free;
    bool draining;
    uint64_t drain_deadline;
    /* Statistics: this shard's thread writes and logs them (on SIGUSR1 and
     * at exit); the limits peers ran into are in h2.limit_hits. */
    uint64_t accepted;
    uint64_t accepted_tls;
    uint64_t tls_failed; /* handshakes that failed or timed out */
    uint64_t requests;
    atomic_bool stats_wanted; /* set by the main thread on SIGUSR1 */
    int arena;                /* this shard's jemalloc arena, -1 without jemalloc */
    struct offload *off;      /* offload workers (noff of them): started with the
                                  * shard for a blocking handler, else at the first
                                  * spindle_offload() */
    uint32_t noff;
    bool off_failed;            /* starting them failed once: not retried */
    uint64_t offloaded;         /* requests handed to workers (statistics) */
    spindle_stream *in_request; /* the stream whose on_request runs (inline) */
    const spindle_request *in_request_req;
    struct overflow *off_overflow, *off_overflow_tail;
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
    uint16_t tls_port; /* the TLS port actually bound */
};

/* shard.c */
void *shard_main(void *arg);
void shard_mark_dirty(conn *c);
void shard_iov_free_all(shard *sh);
void shard_log_stats(shard *sh);

/* server.c */
int64_t shard_arena_allocated(int arena);
uint64_t shard_now_ms(void);

/* conn.c */
conn *conn_new(shard *sh, int fd, bool tls);
void conn_on_recv(conn *c, const ring_cqe *cqe);
void conn_on_send(conn *c, const ring_cqe *cqe);
void conn_on_op_end(conn *c);
void conn_flush(conn *c);
void conn_close(conn *c);
void conn_begin_drain(conn *c);
void conn_timer_update(conn *c);
void conn_on_timer(conn *c);
void conn_free(conn *c);

/* stream.c */
void stream_dispatch(conn *c, const h2_event *ev);
void stream_settle(spindle_stream *st);
void stream_conn_gone(conn *c);
void stream_free(shard *sh, spindle_stream *st); /* st->c may be gone */
void shard_streams_free_all(shard *sh);
void stream_on_timer(spindle_stream *st);
void stream_offload_freed(shard *sh, spindle_stream *st);
void stream_conn_freed(conn *c);
/* The shard-side implementations behind the public calls (headers given as
 * spindle_header; offloaded handlers reach them through commands). */
int stream_respond(spindle_stream *s, uint16_t status, const spindle_header *h, size_t n, bool end);
int stream_send(spindle_stream *s, const void *data, size_t len, bool end,
                spindle_release_fn release, void *ctx);
int stream_trailers(spindle_stream *s, const spindle_header *h, size_t n);
int stream_reset_code(spindle_stream *s, uint32_t code);
int stream_after(spindle_stream *s, uint32_t ms, spindle_timer_fn fn);
void conn_resume(conn *c);

#endif
