/* upstream.h - upstream calls (include/spindle.h "Upstream calls"): the
 * state shared by the modules behind them (not installed).
 *
 * Modules:
 *   upstream.c       the API: upstreams, calls (start, body, cancel,
 *                    time-outs), the queue of calls waiting for room, and
 *                    dispatch onto pooled connections (the pool)
 *   upstream_conn.c  one connection: a non-blocking socket driven through
 *                    a spindle_watch on the shard's ring, the client
 *                    engine (proto/h2_client), its events turned into the
 *                    calls' callbacks, failure and GOAWAY handling, PINGs
 *   upstream_tls.c   the TLS client transport (wolfSSL on the socket),
 *                    session resumption
 *   upstream_hold.c  response backpressure (spindle_call_pause/resume)
 *   upstream_dns.c   host names: lookups on a thread, answers posted back
 *
 * Everything runs on the upstream's shard thread (but a lookup's
 * getaddrinfo, upstream_dns.c).
 */
#ifndef SPINDLE_CORE_UPSTREAM_H
#define SPINDLE_CORE_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "h2_client.h"
#include "ping_wait.h"
#include "spindle.h"

/* A call refused unprocessed (REFUSED_STREAM, or above a GOAWAY's last id)
 * is re-issued on another connection at most this many times. */
#define UP_MAX_REFUSALS 4u
/* Body kept for such a retry; a call that sent more is not retried. */
#define UP_REPLAY_MAX (256u * 1024u)

typedef struct shard shard;
typedef struct up_conn up_conn;
typedef struct up_tls_ctx up_tls_ctx;
typedef struct up_tls up_tls;
typedef struct up_dns_job up_dns_job;

/* Addresses of a host name kept (tried in order when a connect fails). */
#define UP_MAX_ADDRS 8u

typedef struct up_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} up_addr;

/* A body chunk owned by a call until it is handed to the engine (then the
 * engine's release callback frees it). */
typedef struct up_chunk {
    struct up_chunk *next;
    size_t len;
    bool end;
    uint8_t data[];
} up_chunk;

/* A PING waiting for its ACK (ping_wait.h). */
typedef ping_waiter up_ping;

struct spindle_call {
    spindle_upstream *u;
    up_conn *c;                /* NULL while pending */
    spindle_call *next, *prev; /* the pending queue, or c's list */
    uint32_t sid;
    spindle_call_handler h;
    void *ctx;
    /* The request, copied (one block): method, path, fields. */
    h2_client_req req;
    hpack_field *fields;
    /* The body sent so far (heap), kept while `replay` for a retry; while
     * pending, all of it waits here. */
    uint8_t *body;
    size_t body_len, body_cap;
    hpack_field *trailers; /* the request's trailers (one copied block) */
    size_t ntrailers;
    spindle_timer *timer;
    uint64_t started_ms;
    uint32_t timeout_ms;
    bool body_more;   /* streaming: the body has not ended yet */
    bool replay;      /* body holds everything sent: retryable */
    uint8_t refusals; /* times the origin refused it unprocessed */
    bool in_cb;       /* one of its callbacks runs */
    bool cancelled;   /* cancelled inside its own callback */
    bool got_head;    /* on_response was delivered */
    /* Response backpressure (upstream_hold.c): the body held while paused. */
    bool paused;
    uint8_t rend;   /* UP_REND_*: how the response ended while held */
    bool held_done; /* ended while held: off its connection, on u->held */
    uint8_t *rbuf;  /* held body bytes (at most a stream window) */
    size_t rlen, rcap;
    size_t rstream;   /* held bytes whose stream window is still closed */
    hpack_field *rtr; /* held trailers (one copied block) */
    size_t nrtr;
    spindle_timer *rtimer; /* delivery from the loop after a resume */
    uint64_t paused_ms;    /* when the pause began (while paused) */
    uint64_t paused_total; /* milliseconds paused before that */
};

enum { UP_REND_NONE, UP_REND_DATA, UP_REND_TRAILERS };

struct spindle_upstream {
    spindle_shard *as;
    shard *sh;
    spindle_upstream_config cfg; /* strings point into strs */
    char *strs;
    /* Where to connect: the numeric host, or a host name's answer
     * (upstream_dns.c). */
    up_addr addrs[UP_MAX_ADDRS];
    uint32_t naddrs;     /* 0: a name not resolved yet */
    uint32_t addr_next;  /* the address the next connection tries first */
    bool named;          /* cfg.host is a name, not an address */
    bool dns_stale;      /* a connect failed: look the name up again */
    bool dns_fresh;      /* the answer has served no connection yet */
    up_dns_job *dns_job; /* the lookup in flight */
    uint64_t resolved_ms, dns_started_ms;
    up_conn *conns;
    uint32_t nconns;
    uint64_t opened;
    spindle_call *pend_head, *pend_tail;
    uint32_t npend;
    spindle_timer *tick; /* the pool's periodic timer (engine time-outs, keepalive) */
    spindle_timer *kick; /* a 0 ms timer: service the pool from the loop */
    up_tls_ctx *tls;
    spindle_header *hdrs; /* scratch: response heads and trailers */
    uint32_t hdrs_cap;
    up_ping *orphans;                     /* pings to fail from the loop (no connection) */
    spindle_call *held;                   /* calls whose response ended while held (paused) */
    uint64_t held_bytes;                  /* response bytes held for paused calls now */
    uint64_t held_peak;                   /* the most one call held at once */
    uint64_t tls_handshakes, tls_resumed; /* spindle_upstream_stats */
    uint64_t resolves, resolve_failures;
    bool freeing;
    uint32_t busy; /* nesting of pool work on the stack */
};

/* --- upstream.c (for upstream_conn.c) --- */

/* Now on the shard's coarse clock, milliseconds. */
uint64_t up_now_ms(const spindle_upstream *u);
/* Issue call on c (h2_client_request, queued body and trailers).  0, or
 * a SPINDLE_E* code (c has no room / is closing: the caller requeues). */
int up_call_issue(spindle_call *call, up_conn *c);
/* End a call: on_done(err, code) unless cancelled, its timer cancelled,
 * freed.  It is already off every list. */
void up_call_finish(spindle_call *call, int err, uint32_t code);
/* Fail every pending call with err (from the loop: callbacks run). */
void up_pending_fail(spindle_upstream *u, int err);
/* Put a call back at the head of the pending queue (a retry). */
void up_pending_push_front(spindle_upstream *u, spindle_call *call);
/* Dispatch pending calls onto connections with room, opening connections
 * as allowed; fails the pending calls when no connection can be made. */
void up_pool_service(spindle_upstream *u);
/* Ask for up_pool_service from the loop (a 0 ms shard timer). */
void up_pool_kick(spindle_upstream *u);
/* Deliver callbacks safely: true when the call is still alive after. */
bool up_call_cb_begin(spindle_call *call);
bool up_call_cb_end(spindle_call *call);
/* Convert engine fields to the u->hdrs scratch (NULL on ENOMEM). */
const spindle_header *up_headers(spindle_upstream *u, const hpack_field *f, size_t n);

/* --- upstream_hold.c: response backpressure --- */

/* Is call's response held (paused, or held bytes not yet delivered)?
 * Then its events go to the functions below instead of the callbacks. */
static inline bool up_hold_active(const spindle_call *call)
{
    return call->paused || call->rlen || call->rend;
}
/* Keep a DATA event's bytes: the connection window reopens now, the
 * stream's at delivery.  0 or SPINDLE_ENOMEM. */
int up_hold_data(spindle_call *call, h2_conn *h2, const uint8_t *data, size_t len);
/* Keep trailers (copied).  0 or SPINDLE_ENOMEM. */
int up_hold_trailers(spindle_call *call, const hpack_field *f, size_t n);
/* The response ended (rend set) while held: call leaves c (its stream is
 * done) for u->held, and ends when what it holds is delivered. */
void up_hold_end(up_conn *c, spindle_call *call, uint8_t rend);
/* A call leaves u->held (cancelled, timed out, or the upstream freed). */
void up_hold_unlink(spindle_call *call);
/* Free what a call holds (its end). */
void up_hold_free(spindle_call *call);
/* Milliseconds call spent paused up to now. */
uint64_t up_hold_paused_ms(const spindle_call *call, uint64_t now_ms);

/* --- upstream_dns.c: host names --- */

/* Should a new connection look the name up first (never resolved, stale,
 * or the last connect failed)? */
bool up_dns_wanted(const spindle_upstream *u);
/* Start a lookup unless one runs: its answer comes back as a message on
 * the shard.  0, SPINDLE_ENOMEM, SPINDLE_ESYS (no thread). */
int up_dns_start(spindle_upstream *u);
/* Forget the lookup in flight (its answer will be dropped). */
void up_dns_abandon(spindle_upstream *u);
/* The pool's tick: a lookup that calls wait for, older than the connect
 * time-out, fails them. */
void up_dns_tick(spindle_upstream *u, uint64_t now_ms);

/* --- upstream_conn.c --- */

/* Open a connection (socket, connect started, watch, engine): it takes
 * requests at once (they go out when connected).  NULL with *err set. */
up_conn *up_conn_open(spindle_upstream *u, int *err);
/* Streams it can take now (0: full, closing or dead). */
uint32_t up_conn_room(const up_conn *c);
/* Write what the engine has queued (after issuing a request, sending
 * body); on failure the connection fails (its calls end). */
void up_conn_flush(up_conn *c);
/* The pool's tick: engine time-outs, connect time-out, keepalive. */
void up_conn_tick(up_conn *c, uint64_t now_ms);
/* A call leaves its connection (done or cancelled): its stream is done. */
void up_conn_call_done(up_conn *c, spindle_call *call);
/* Fail the connection now: its calls end with err (u->busy must be 0 or
 * the connection not on the stack), fd and engine freed. */
void up_conn_fail(up_conn *c, int err);
/* Reap connections marked dead (from the loop). */
void up_conn_reap(spindle_upstream *u);
/* A PING on c; fn called later.  0 or SPINDLE_ENOMEM. */
int up_conn_ping(up_conn *c, spindle_rtt_fn fn, void *ctx);
/* Streams in flight on c. */
uint32_t up_conn_load(const up_conn *c);
/* Bytes of call's stream queued in the engine. */
size_t up_conn_buffered(const up_conn *c, uint32_t sid);
/* The next connection of the upstream's list. */
up_conn *up_conn_next(const up_conn *c);
/* Link call to c's list (its stream was opened). */
void up_conn_attach(up_conn *c, spindle_call *call);
/* Connected (and the TLS handshake done)? */
bool up_conn_is_open(const up_conn *c);
/* A PING asked while no connection is open: fn(ctx, SPINDLE_ECLOSED, 0)
 * from the loop.  0 or SPINDLE_ENOMEM. */
int up_ping_orphan(spindle_upstream *u, spindle_rtt_fn fn, void *ctx);
/* Call the orphans' callbacks (from the loop). */
void up_ping_fail_orphans(spindle_upstream *u);
/* Is c open for new streams (not failed, no GOAWAY)? */
bool up_conn_usable(const up_conn *c);
/* The engine of c (for the call's body and trailers). */
h2_conn *up_conn_h2(up_conn *c);
/* A chunk handed to the engine: its release frees it. */
void up_chunk_release(void *ctx, const void *data, size_t len);

/* --- upstream_tls.c --- */

/* A client context: verification per cfg (CA file or the system's).
 * NULL with a logged reason. */
up_tls_ctx *up_tls_ctx_new(const spindle_upstream_config *cfg, int shard_idx);
void up_tls_ctx_free(up_tls_ctx *x);
/* A session on fd (SNI and the verified name: name; ALPN h2). */
up_tls *up_tls_new(up_tls_ctx *x, int fd, const char *name);
void up_tls_free(up_tls *t);
/* Drive the handshake: 0 done (ALPN h2 agreed), SPINDLE_WATCH_IN or
 * SPINDLE_WATCH_OUT (wait for that), or -1 (failed: the log says why). */
int up_tls_handshake(up_tls *t);
/* Plaintext in: bytes, 0 at close, -1 with errno EAGAIN (wait for input)
 * or another errno (failed). */
long up_tls_read(up_tls *t, uint8_t *buf, size_t cap);
/* Plaintext out, encrypted into the session's own output buffer (never
 * blocks): 0 or -1 (failed). */
int up_tls_write(up_tls *t, const uint8_t *buf, size_t len);
/* Write the buffered ciphertext to the socket: 0 all written, 1 some left
 * (wait for SPINDLE_WATCH_OUT), -1 failed (errno). */
int up_tls_drain(up_tls *t);
/* Ciphertext buffered and not yet written. */
size_t up_tls_pending(const up_tls *t);
/* Did the handshake resume the session kept from an earlier connection? */
bool up_tls_resumed(const up_tls *t);

#endif
