/* conn.h - one accepted connection on its shard (not installed).
 *
 * A conn owns its socket, its h2_conn engine, its tls_conn (TLS listener)
 * and its held input; it lists its live streams (stream.h) and borrows a
 * send_buf from the shard while a send is in flight.  Shard thread only.
 */
#ifndef SPINDLE_CORE_CONN_H
#define SPINDLE_CORE_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "conn_proto.h"
#include "h2_conn.h"
#include "ring.h"
#include "spindle.h"
#include "stats.h"
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
#define CONN_IOV_KEEP    64u   /* send_bufs a shard keeps for reuse (80 KiB) */
#define CONN_LINGER_MS   1000u /* a failed connection's last output, at most */

typedef struct shard shard;
typedef struct conn conn;

enum conn_state {
    C_OPEN,     /* reading and writing */
    C_FLUSHING, /* no more reading: write what is queued (GOAWAY), then close */
    C_CLOSING,  /* cancelled: waiting for the last in-flight CQEs */
    C_LINGER,   /* all written, SHUT_WR: reading and discarding until the
                   peer closes or a bound (conn_linger.h), then close */
};

/* What a send in flight needs: lent by the shard only while a send is in
 * flight, so an idle connection carries neither the msghdr nor 1.2 KiB of
 * iovecs. */
typedef struct send_buf {
    struct msghdr msg;
    struct iovec iov[CONN_IOV];
} send_buf;

/* Laid out by size (8, 4, 1 bytes): every idle connection carries it.  It
 * is 224 bytes on x86-64, jemalloc's 224-byte size class; the assert below
 * the struct keeps it there. */
struct conn {
    shard *sh;
    union {                   /* by proto (conn_proto.h) */
        uint64_t accepted_ms; /* CONN_DETECT: when it was accepted */
        h2_conn *h2;          /* CONN_H2 */
        struct conn_h1 *h1;   /* CONN_H1 (conn_h1.h) */
        struct conn_ws *ws;   /* CONN_WS (conn_ws.h) */
    };
    send_buf *sb;     /* borrowed from the shard while sending */
    uint8_t *held;    /* input not yet fed (paused); heap */
    timer_node timer; /* its deadline is the connection's; none while not pending */
    conn *next_dirty;
    conn *next_parked;
    conn *next_dead;
    conn *next_off_wait;
    spindle_stream *streams;   /* live handler streams */
    tls_conn *tls;             /* NULL for h2c; else ciphertext goes through it (docs/tls.md) */
    struct ping_waiter *pings; /* spindle_stream_ping()s waiting for their ACK (conn_ping.c) */
    uint64_t id;               /* per shard, from 1 (access log, spindle_stream_info) */
    uint64_t linger_end_ms;    /* C_LINGER: lingering-time's end */
    req_info info;             /* peer, local port, protocol (stats.h) */
    int fd;
    uint32_t slot, gen;
    uint32_t ops;   /* in-flight operations (armed recv, send) */
    int32_t zc_res; /* the ZC send's result, held until the notification */
    uint32_t held_len, held_off, held_cap;
    uint32_t linger_left; /* C_LINGER: bytes still discarded before closing */
    uint8_t state;
    uint8_t proto;   /* enum conn_proto_id: chosen once */
    uint8_t matched; /* CONN_DETECT: bytes of the HTTP/2 preface seen so far */
    bool recv_armed;
    bool recv_parked;     /* recv ended with -ENOBUFS: re-arm once buffers return */
    bool recv_cancelling; /* a cancel for the armed recv is on its way */
    bool paused;          /* the engine asked us to stop reading: input is held */
    bool sending;
    bool zc;          /* the send in flight is SENDMSG_ZC */
    bool nocqe_off;   /* the socket filled: plain sends until one empties it */
    bool dirty;       /* on the shard's flush list */
    bool dead_listed; /* on the shard's dead list */
    bool off_waiting;
    uint8_t speaks; /* STATS_CONN_* + 1 it is counted open under; 0 none (stats.h) */
    bool rd_eof;    /* the peer shut down writing: never re-arm recv */
    bool eof_told;  /* ... and its engine was told, every byte before it fed */
    /* The send in flight was committed when queued (sendskip.h). */
    bool send_committed;
};
_Static_assert(sizeof(struct conn) <= 224, "struct conn outgrew jemalloc's 224-byte class");

/* conn_ping.c: a PING ACK arrived on c; c is being freed (fails the
 * waiters with SPINDLE_ECLOSED). */
void conn_ping_ack(conn *c, const h2_event *ev);
void conn_ping_gone(conn *c);

/* Take an accepted fd (tls: from the TLS listener): a slot, the recv
 * armed; the engine comes with the first bytes (or ALPN).  NULL on failure
 * (the caller closes fd). */
conn *conn_new(shard *sh, int fd, bool tls);
/* CQE handlers for the connection's OP_RECV / OP_SEND requests. */
void conn_on_recv(conn *c, const ring_cqe *cqe);
void conn_on_send(conn *c, const ring_cqe *cqe);
/* An operation ended or may start: re-arm recv, or free once closing and
 * nothing is in flight. */
void conn_on_op_end(conn *c);
/* The flush step: one sendmsg with everything the engine has ready. */
void conn_flush(conn *c);
/* Would the flush step do anything once c's send in flight ends: output
 * waiting, an engine that is done (a close), or c closing? */
bool conn_wants_flush(const conn *c);
/* Cancel everything; freed (deferred, by the shard's settle) once the last
 * in-flight CQE has arrived. */
void conn_close(conn *c);
/* Graceful shutdown: GOAWAY(2^31-1) + PING, then GOAWAY(last id). */
void conn_begin_drain(conn *c);
/* Re-arm the connection's timer to the engine's next deadline. */
void conn_timer_update(conn *c);
void conn_on_timer(conn *c);
/* Free now: the caller knows no CQE or callback refers to c any more. */
void conn_free(conn *c);
/* Feed held input again after a pause, or wait for offload queue room. */
void conn_resume(conn *c);
/* Mark the connection failed by its engine: write what is queued (an
 * error response, a GOAWAY) for at most CONN_LINGER_MS, then close. */
void conn_fail(conn *c);
/* Free the shard's cached send_bufs (teardown). */
void conn_iov_free_all(shard *sh);

#endif
