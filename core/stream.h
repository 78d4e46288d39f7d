/* stream.h - spindle_stream: one request as the handler sees it (not
 * installed).
 *
 * A stream belongs to its connection's shard; its handler callbacks run
 * either inline on the shard or on one offload worker (offload.h).  That
 * mode is a table of operations (stream_ops) chosen once: at creation (the
 * shard's default, sh->stream_mode: offloaded for a blocking handler) or
 * by spindle_offload() (from inline to offloaded, never back).  The public
 * spindle_* calls dispatch through it, so they never ask which thread they
 * are on, and the shard hands events to the handler through its event half.
 */
#ifndef SPINDLE_CORE_STREAM_H
#define SPINDLE_CORE_STREAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h2_conn.h"
#include "spindle.h"
#include "stats.h"
#include "timer_wheel.h"

typedef struct shard shard;
typedef struct conn conn;
typedef struct stream_ops stream_ops;

enum stream_flag {
    ST_REQ_END = 1u << 0,  /* request fully received */
    ST_RESP_END = 1u << 1, /* the handler ended its response */
    ST_RESET = 1u << 2,    /* reset (either side): nothing more is sent */
    ST_CLOSED = 1u << 3,   /* on_close delivered */
    ST_PAUSED = 1u << 4,   /* the handler paused the body */
    ST_WANT_WRITABLE = 1u << 5,
    ST_SETTLE = 1u << 6,    /* on the shard's settle list */
    ST_OFFLOADED = 1u << 7, /* its callbacks run on an offload worker */
    ST_INTERNAL = 1u << 8,  /* answered by spindle itself (metrics): no handler callback */
};

struct spindle_stream {
    const stream_ops *ops; /* its mode; see struct stream_ops */
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
    uint16_t wflags;                 /* ST_RESET / ST_CLOSED / ST_PAUSED as the worker saw them */
    size_t wunconsumed;              /* body taken while paused, not yet reported */
    uint32_t worker;                 /* index of the offload worker it is bound to */
    spindle_stream *next_close_wait; /* shard's off_close_wait list (offload.c) */
    _Atomic size_t buffered;         /* spindle_stream_buffered() for the worker */
    uint64_t handle;                 /* spindle_stream_handle(), 0 until asked (handle.c) */
    req_track track;                 /* what it carries, its counters (stats.h) */
};

/* A stream's mode.  The handler's half runs on the thread that runs the
 * stream's handler (the spindle_* calls land here, s never NULL, with the
 * public contracts of include/spindle.h); the event half is called by the
 * shard, on its thread, for a stream that is neither reset nor closed
 * (on_reset: the reset just happened; on_close: once, at settle, after
 * ST_CLOSED is set and the timer cancelled). */
struct stream_ops {
    int (*respond)(spindle_stream *s, uint16_t status, const spindle_header *h, size_t n, bool end);
    int (*send)(spindle_stream *s, const void *data, size_t len, bool end,
                spindle_release_fn release, void *ctx);
    int (*trailers)(spindle_stream *s, const spindle_header *h, size_t n);
    int (*reset)(spindle_stream *s, uint32_t code);
    int (*after)(spindle_stream *s, uint32_t ms, spindle_timer_fn fn);
    void (*pause)(spindle_stream *s, bool pause); /* false: resume */
    size_t (*buffered)(const spindle_stream *s);
    /* fn: what runs first (NULL: the handler's on_request); req and its
     * strings are valid during the call only. */
    void (*on_request)(spindle_stream *st, const spindle_request *req, spindle_request_fn fn);
    void (*on_body)(spindle_stream *st, const uint8_t *p, size_t n, bool end);
    void (*on_trailers)(spindle_stream *st, const spindle_header *h, size_t n);
    void (*on_reset)(spindle_stream *st, uint32_t code);
    void (*on_writable)(spindle_stream *st);
    void (*on_timer)(spindle_stream *st, spindle_timer_fn fn);
    /* Deliver on_close and let the stream go (inline: to the dead list;
     * offloaded: once its worker acknowledges, stream_offload_freed()). */
    void (*on_close)(spindle_stream *st);
};

/* The end of an inline stream's on_close without the handler's callback:
 * detach it from the engine and its connection, onto the dead list (for
 * streams the handler never saw: health.c). */
void stream_release(spindle_stream *st);

/* Inline on the shard: the handler is called directly (the fast path). */
extern const stream_ops stream_inline_ops;

/* Engine events for c's streams, on the shard: creates streams (REQUEST)
 * and hands events to their handlers. */
void stream_dispatch(conn *c, const h2_event *ev);
/* The settle step for one stream: on_close once it is done (reset, or both
 * sides ended), then onto the shard's dead list (or, offloaded, a close to
 * its worker). */
void stream_settle(spindle_stream *st);
/* c is closing: reset its unfinished streams (CANCEL) and queue them all
 * for settle. */
void stream_conn_gone(conn *c);
/* c is being freed: streams still waiting for their worker outlive it. */
void stream_conn_freed(conn *c);
/* Recycle st (st->c may be gone). */
void stream_free(shard *sh, spindle_stream *st);
/* Free the shard's recycled stream objects (teardown). */
void stream_free_all(shard *sh);
/* Its spindle_stream_after() timer fired. */
void stream_on_timer(spindle_stream *st);
/* The handler took n body bytes: reopen the flow-control windows (no-op
 * once closed). */
void stream_consumed(spindle_stream *st, uint64_t n);
/* The shard st lives on (its connection's). */
shard *stream_shard(const spindle_stream *st);
/* Its worker acknowledged the close: forget it in the engine and free it. */
void stream_offload_freed(shard *sh, spindle_stream *st);

/* The shard-side implementations behind the public calls (headers given as
 * spindle_header): the inline mode's operations, and what offloaded
 * streams' commands are applied with.  Shard thread. */
int stream_respond(spindle_stream *s, uint16_t status, const spindle_header *h, size_t n, bool end);
/* stream_respond() with prepared fields pf (NULL: none) after h. */
int stream_respond_fields(spindle_stream *s, uint16_t status, const spindle_header *h, size_t n,
                          const spindle_fields *pf, bool end);
int stream_send(spindle_stream *s, const void *data, size_t len, bool end,
                spindle_release_fn release, void *ctx);
int stream_trailers(spindle_stream *s, const spindle_header *h, size_t n);
int stream_reset_code(spindle_stream *s, uint32_t code);
int stream_after(spindle_stream *s, uint32_t ms, spindle_timer_fn fn);

#endif
