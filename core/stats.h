/* stats.h - per-shard counters, what a request carries, and the request
 * lifecycle hooks behind the access log and the metrics (not installed).
 *
 * Counters.  Each shard owns a shard_stats (embedded in struct shard, on
 * cache lines of its own).  Only the shard's thread writes it, with a
 * relaxed load and store (no lock, no read-modify-write: plain moves on
 * x86-64); any thread reads it with relaxed loads and sums the shards
 * (stats_sum: spindle_get_stats(), the metrics, the SIGUSR1 lines).  Every
 * counter is read atomically and never goes backwards; a snapshot is not
 * one instant across counters (a request finishing during the read may be
 * in one counter and not yet in another).  Gauges the shard keeps
 * elsewhere (open connections, offloaded streams, the engine's limit hits,
 * pool bytes) are published into it by stats_tick(), once per loop
 * iteration (the pools once a second).
 *
 * Protocols.  A connection's protocol (conn.info.proto) is STATS_PROTO_H2C
 * or STATS_PROTO_H2 (TLS) when accepted; an HTTP/1.1 codec sets
 * STATS_PROTO_HTTP11 on its connections, and its requests are then counted
 * and logged the same way through stats_request_begin/_done.
 */
#ifndef SPINDLE_CORE_STATS_H
#define SPINDLE_CORE_STATS_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "h2_limits.h"
#include "spindle.h"

typedef struct shard shard;
typedef struct conn conn;

enum { STATS_PROTO_H2C, STATS_PROTO_H2, STATS_PROTO_HTTP11, STATS_PROTOS };
/* What a connection speaks, counted when it becomes known (first bytes,
 * ALPN, Upgrade), in spindle_stats.connections_by_protocol order; the TLS
 * variant of each is the next index. */
enum {
    STATS_CONN_H2C,
    STATS_CONN_H2,
    STATS_CONN_H1,
    STATS_CONN_H1_TLS,
    STATS_CONN_WS,
    STATS_CONN_WS_TLS,
    STATS_CONNS
};
/* The method classes, in spindle_stats.requests_by_method order. */
enum {
    STATS_M_GET,
    STATS_M_HEAD,
    STATS_M_POST,
    STATS_M_PUT,
    STATS_M_DELETE,
    STATS_M_OPTIONS,
    STATS_M_PATCH,
    STATS_M_CONNECT,
    STATS_M_OTHER,
    STATS_METHODS
};
/* Status classes: 1xx..5xx, then "none" (ended without a final status:
 * reset, or the connection went away). */
enum { STATS_STATUS_NONE = 5, STATS_STATUSES = 6 };
#define STATS_DUR_BOUNDS 16 /* histogram buckets besides +Inf */

typedef _Atomic uint64_t stat_u64;

typedef struct shard_stats {
    alignas(64) stat_u64 accepted;
    stat_u64 accepted_tls;
    stat_u64 cap_reached; /* accepts left in the kernel's queue: max-conns reached */
    stat_u64 tls_handshakes;
    stat_u64 tls_failed;
    stat_u64 started;                                 /* request heads */
    stat_u64 requests[STATS_METHODS][STATS_STATUSES]; /* finished */
    stat_u64 by_proto[STATS_PROTOS];                  /* finished */
    stat_u64 req_bytes, resp_bytes;                   /* body bytes */
    stat_u64 resets;                                  /* streams ended by a reset */
    stat_u64 dur_bucket[STATS_DUR_BOUNDS + 1];        /* not cumulative */
    stat_u64 dur_sum_us;
    stat_u64 offloaded;
    stat_u64 alog_lines, alog_dropped;
    stat_u64 conn_opened[STATS_CONNS]; /* connections that began speaking each */
    stat_u64 conn_open[STATS_CONNS];   /* ... and still do */
    /* Published by stats_tick(). */
    stat_u64 conns_open;
    stat_u64 off_streams;
    stat_u64 off_queue; /* messages + commands queued between shard and workers */
    stat_u64 limit_hits[H2_LIMIT_COUNT];
    stat_u64 pool_live, pool_kept;
    stat_u64 poll_hits, poll_misses, poll_yields; /* the ring's idle poll (once a second) */
} shard_stats;

/* The histogram's upper bounds, microseconds. */
extern const uint64_t stats_dur_bounds_us[STATS_DUR_BOUNDS];

static inline void stat_add(stat_u64 *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}
static inline void stat_set(stat_u64 *c, uint64_t v)
{
    atomic_store_explicit(c, v, memory_order_relaxed);
}
static inline uint64_t stat_get(const stat_u64 *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* What a connection (and each of its requests) carries; 32 bytes, copied
 * into every stream so an offloaded handler reads its own copy. */
typedef struct req_info {
    const char *tls_version; /* "TLSv1.3"...; NULL without TLS or before the handshake */
    uint8_t addr[16];        /* peer address (IPv4: the first 4 bytes) */
    uint16_t port;           /* peer port */
    uint16_t local_port;
    uint8_t family; /* AF_INET, AF_INET6, 0 unknown */
    uint8_t proto;  /* STATS_PROTO_* */
    uint8_t tls;
} req_info;

/* Per stream: what the access log and the counters need at its end. */
typedef struct req_track {
    req_info info;
    uint64_t t0_ns; /* the head's arrival: its loop iteration's CLOCK_MONOTONIC */
    uint64_t req_bytes, resp_bytes;
    uint64_t conn_id;
    char *alog;      /* access-log fields captured at the head (NULL when off) */
    void *held;      /* a final head waiting for the body's length (resphdr.h) */
    uint16_t status; /* the final status sent, 0 none yet */
    uint8_t method;  /* STATS_M_* */
    uint8_t head;    /* a HEAD request: no content-length added from the body */
} req_track;

/* A shard's operators' view state besides its counters (shard thread). */
typedef struct shard_view {
    uint64_t conn_seq;   /* connection ids */
    uint64_t sec_ms;     /* `now` at the last once-a-second step */
    int64_t date_sec;    /* the second `date` holds */
    int64_t real_off_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC, once a second */
    uint64_t tick_ns;    /* CLOCK_MONOTONIC at this iteration's stats_tick */
    uint64_t done_ns;    /* read at the iteration's first finished request (0: not yet) */
    char *hold_buf;      /* held response heads (resphdr.h): a bump arena */
    uint32_t hold_off, hold_live;
    char date[32]; /* "Sun, 06 Dec 2026 22:05:10 GMT" */
    uint8_t date_len;
    uint8_t server_state; /* `server` (resphdr.c): 0 not checked yet, 1 valid, 2 none */
    uint32_t server_len;
    bool dflt_all;            /* every default due is ready (resphdr.c dflt_update) */
    struct alog_shard *alog;  /* the access log's buffer (NULL: off) */
    uint64_t cap_warn_ms;     /* last "max-conns reached" warning (conncap.h) */
    uint64_t cap_since_warn;  /* cap hits since it */
    bool cap_held;            /* accepting stopped at the cap */
    uint32_t nheld, held_cap; /* accepted fds held past the cap (conncap.h) */
    uint32_t *held;           /* fd << 1 | tls, in arrival order from held_off */
    uint32_t held_off;
} shard_view;

/* The connection's info, at accept (getpeername; the listener's port). */
void stats_conn_accepted(shard *sh, conn *c, bool tls);
/* c now speaks conn_proto_id `proto` (CONN_H2, CONN_H1, CONN_H2C after an
 * Upgrade, CONN_WS; conn_proto.h): count it opened under that protocol and
 * move its open count there from the one it spoke before, if any. */
void stats_conn_speaks(conn *c, uint8_t proto);
/* c is freed: no longer open under its protocol. */
void stats_conn_closed(conn *c);
/* A request head arrived on st: start its clock, count it, capture what
 * the access log needs. */
void stats_request_begin(spindle_stream *st, const spindle_request *req);
/* The stream finished (on_close is about to run): count it by method,
 * status and protocol, its bytes and duration; write its access-log line. */
void stats_request_done(spindle_stream *st);
/* Once per loop iteration (after `now` is read): publish the gauges, keep
 * the date header current, flush the access log once a second. */
void stats_tick(shard *sh);
/* Sum every shard's counters into out (any thread; srv's shards exist). */
typedef struct server server;
void stats_sum(const server *srv, spindle_stats *out);
/* The classes of a method and a status. */
uint8_t stats_method_class(const char *m, size_t len);
/* The running server for spindle_get_stats() and the admin listener
 * (NULL: none); set and cleared by spindle_run under a lock. */
void stats_set_server(server *srv);

#endif
