/* h2_conn.h - the server side of an HTTP/2 connection, sans I/O.
 *
 * Bytes and the current time go in (h2_conn_recv), events come out one at a
 * time; the application answers through h2_conn_respond/_send_data/... and
 * the caller pulls the resulting bytes out as iovecs (h2_conn_out_prepare /
 * h2_conn_out_commit) or copies them (h2_conn_send).  Nothing here reads a
 * clock, touches a socket or blocks: that is what makes it testable byte by
 * byte and fuzzable in-process.
 *
 * Memory: connections of one thread share an h2_ctx, which owns the header
 * decoding scratch and the pools that streams, data chunks and output blocks
 * come from.  After warm-up a request/response cycle allocates nothing from
 * the h2_mem; an idle connection holds no output block and no stream.
 *
 * Frames are built lazily: response DATA is queued as references to the
 * application's buffers (with a release callback) and framed only when the
 * caller asks for output, against the connection and stream windows at that
 * moment, round-robin by RFC 9218 urgency.  Nothing is queued as a heap
 * frame object.
 *
 * Thread: an h2_ctx and its connections belong to one thread.
 */
#ifndef SPINDLE_H2_CONN_H
#define SPINDLE_H2_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "h2_err.h"
#include "h2_frame.h"
#include "h2_http.h"
#include "h2_limits.h"
#include "h2_mem.h"
#include "h2_pool.h"
#include "hpack.h"

typedef struct h2_conn h2_conn;

#define H2_OUT_BLOCK_SIZE       16384u
#define H2_OUT_SMALL_BLOCK_SIZE 384u /* a connection's first control output */

/* Per-thread state shared by connections. */
typedef struct h2_ctx {
    const h2_limits *limits;
    const h2_mem *mem;
    /* Header decoding scratch: valid until the next h2_conn_recv() on any
     * connection of this context. */
    hpack_field *fields;
    uint8_t *fieldbuf;
    h2_pool streams, chunks, blocks, small_blocks, segs, tables;
    uint64_t seq; /* connection serial numbers (PING opaque for shutdown) */
    uint32_t static_digests[HPACK_STATIC_COUNT]; /* h2_http_field_digest() of the
                                                  * HPACK static table */
    uint64_t limit_hits[H2_LIMIT_COUNT];         /* every limit a peer ran into, on any
                                          * connection of this context */
} h2_ctx;

/* limits NULL = h2_limits_default(); mem NULL = libc.  The limits object is
 * referenced, not copied: it must outlive the context.
 * Returns H2_OK, H2_E_INVAL (h2_limits_check failed), H2_E_NOMEM. */
h2_rv h2_ctx_init(h2_ctx *x, const h2_limits *limits, const h2_mem *mem);
/* All connections must have been freed. */
void h2_ctx_free(h2_ctx *x);
/* Bytes the context's pools hold: in use by connections (live) and kept
 * for reuse (free, at most each pool's keep count). */
void h2_ctx_pool_bytes(const h2_ctx *x, uint64_t *live, uint64_t *free_bytes);

/* --- Events ---------------------------------------------------------------- */

typedef enum h2_event_type {
    H2_EV_NONE = 0,      /* all input consumed, nothing to report */
    H2_EV_REQUEST,       /* a request head; end_stream: no body follows */
    H2_EV_DATA,          /* request body bytes; end_stream on the last (len may be 0) */
    H2_EV_TRAILERS,      /* request trailers; always end_stream */
    H2_EV_STREAM_RESET,  /* a delivered stream ended abnormally: stop its handler */
    H2_EV_WINDOW_UPDATE, /* the peer opened a window (stream_id 0: the connection) */
    H2_EV_PRIORITY,      /* RFC 9218 PRIORITY_UPDATE for a delivered stream */
    H2_EV_GOAWAY,        /* the peer is going away */
    H2_EV_PING_ACK,      /* an ACK for a PING we sent */
    H2_EV_RESPONSE,      /* client (h2_client.h): a response head, informational
                          * (1xx, may repeat) or final; end_stream: no body follows */
} h2_event_type;

typedef struct h2_event {
    h2_event_type type;
    uint32_t stream_id;
    bool end_stream;
    union {
        h2_req_head request;
        h2_resp_head response;
        struct {
            const uint8_t *data; /* points into the caller's input buffer */
            uint32_t len;
        } data;
        struct {
            const hpack_field *fields;
            uint32_t n;
        } trailers;
        struct {
            uint32_t code;
            bool remote; /* true: the peer's RST_STREAM; false: we reset it */
        } reset;
        struct {
            uint32_t increment;
        } window;
        struct {
            uint8_t urgency;
            bool incremental;
        } priority;
        struct {
            uint32_t last_stream_id;
            uint32_t code;
            const uint8_t *debug;
            uint32_t debug_len;
        } goaway;
        uint8_t ping[8];
    } u;
} h2_event;

/* Called exactly once per data chunk, when the engine no longer references
 * it: after the bytes were committed as sent, or when the stream or the
 * connection was torn down.  It must not call back into the engine. */
typedef void (*h2_release_fn)(void *ctx, const void *data, size_t len);

/* Counters a connection keeps (for stats and tests). */
typedef struct h2_conn_stats {
    uint64_t frames_in;
    uint64_t requests;
    uint64_t resets_sent; /* RST_STREAM we sent */
    uint64_t resets_recv; /* RST_STREAM the peer sent */
    uint64_t glitches;
    uint64_t refused;   /* REFUSED_STREAM */
    uint64_t bytes_out; /* committed */
} h2_conn_stats;

/* --- Lifecycle ------------------------------------------------------------- */

/* A server connection.  Queues the server preface (SETTINGS, and a
 * connection WINDOW_UPDATE when our window is larger than the default) at
 * once.  now_ms starts the preface timeout.  NULL on allocation failure. */
h2_conn *h2_conn_new(h2_ctx *x, uint64_t now_ms);

/* h2c Upgrade (RFC 7540 §3.2): right after h2_conn_new, before any input,
 * make stream 1 the upgraded HTTP/1.1 request, half-closed (remote) and
 * already delivered (the caller hands head to its handler itself; answer
 * it with h2_conn_respond(c, 1, ...)).  settings is the decoded
 * HTTP2-Settings payload (len a multiple of 6), applied as the client's
 * SETTINGS without an ACK (the 101 acknowledged it).  The client's preface
 * is expected next, as on any connection.
 *  H2_OK, H2_E_INVAL (not a fresh connection, or a bad payload: answer the
 *  request over HTTP/1.1 instead), H2_E_NOMEM. */
h2_rv h2_conn_open_upgraded(h2_conn *c, const uint8_t *settings, size_t len,
                            const h2_req_head *head);

/* Releases every chunk still queued (release callbacks run) and frees the
 * connection.  The caller must not have a send in flight that references
 * output memory (for zero-copy: until the notification). */
void h2_conn_free(h2_conn *c);

/* --- Input --------------------------------------------------------------- */

/* Feed input.  Processes bytes until one event is produced, all input is
 * consumed, or reading must pause.  *consumed tells how much of in was used;
 * call again with the rest after handling ev.
 *  H2_OK      - ev->type is the event, or H2_EV_NONE when all input was used.
 *  H2_E_AGAIN - reading is paused (too many pending control replies or too
 *               much unsent output): flush output, then feed the rest.
 *  H2_E_PROTO - connection error: a GOAWAY is queued (h2_conn_fault() says
 *               why); flush output and close.
 *  H2_E_CLOSED - the connection had already failed or finished.
 *  H2_E_NOMEM - fatal.
 * Event payloads point into `in` (DATA) or into the context's scratch
 * (headers): valid until the next h2_conn_recv() on this context. */
h2_rv h2_conn_recv(h2_conn *c, const uint8_t *in, size_t len, uint64_t now_ms, size_t *consumed,
                   h2_event *ev);

/* The engine's clock: the latest now_ms it was given (by h2_conn_new,
 * h2_conn_recv or h2_conn_tick). */
uint64_t h2_conn_now(const h2_conn *c);
/* Timers: the earliest time h2_conn_tick() has work to do, or UINT64_MAX. */
uint64_t h2_conn_next_deadline(const h2_conn *c);
/* Apply timeouts due at now_ms (preface, SETTINGS ACK, header block
 * completion, idle, no send progress).  H2_E_PROTO when one fired: a GOAWAY
 * with the matching code is queued; flush and close.  Otherwise H2_OK. */
h2_rv h2_conn_tick(h2_conn *c, uint64_t now_ms);

/* --- Responding ------------------------------------------------------------ */

/* Queue a response head (status 200..599) or an informational one (100..199,
 * end_stream must be false; may repeat).  The fields must not contain
 * pseudo-headers or connection-specific fields.  HPACK-encodes at once.
 *  H2_OK, H2_E_NOSTREAM, H2_E_STATE (final head already sent, or the stream
 *  was reset), H2_E_INVAL (status or fields), H2_E_NOMEM. */
h2_rv h2_conn_respond(h2_conn *c, uint32_t stream_id, uint16_t status, const hpack_field *fields,
                      size_t n, bool end_stream);
/* h2_conn_respond, validating only fields[0..n_check): the caller vouches
 * for the rest (fields it built, or already passed through
 * h2_http_check_response_fields). */
h2_rv h2_conn_respond_checked(h2_conn *c, uint32_t stream_id, uint16_t status,
                              const hpack_field *fields, size_t n, size_t n_check, bool end_stream);

/* Queue body bytes by reference: data must stay valid until release is
 * called (release may be NULL for static data).  len may be 0 with end_stream
 * to end the body.  Release happens exactly once, also on failure returns
 * other than H2_E_INVAL.
 *  H2_OK, H2_E_NOSTREAM, H2_E_STATE (no final head yet, body ended, reset),
 *  H2_E_INVAL (len too large), H2_E_NOMEM. */
h2_rv h2_conn_send_data(h2_conn *c, uint32_t stream_id, const uint8_t *data, uint64_t len,
                        bool end_stream, h2_release_fn release, void *release_ctx);

/* Bytes queued on the stream and not yet framed; the application should
 * wait (backpressure) while this is >= limits->max_stream_buffered. */
uint64_t h2_conn_stream_buffered(const h2_conn *c, uint32_t stream_id);

/* End the body with trailers (sent after all queued data).  Fields are
 * copied.  Same returns as h2_conn_send_data. */
h2_rv h2_conn_send_trailers(h2_conn *c, uint32_t stream_id, const hpack_field *fields, size_t n);

/* Reset a stream (RST_STREAM with code); queued data is released. */
h2_rv h2_conn_reset_stream(h2_conn *c, uint32_t stream_id, h2_code code);

/* The application consumed n bytes of a stream's request body: reopen the
 * stream and connection windows (WINDOW_UPDATEs are coalesced, sent once half
 * a window has been consumed).  H2_OK or H2_E_NOSTREAM (only the connection
 * window was credited). */
h2_rv h2_conn_consume(h2_conn *c, uint32_t stream_id, uint64_t n);

/* h2_conn_consume in two halves, for an application that keeps delivered
 * bytes buffered while it cannot take them (a paused upstream call):
 * h2_conn_consume_conn reopens only the connection window for n delivered
 * bytes (other streams keep flowing); h2_conn_consume_stream later reopens
 * the stream's window for bytes so credited (the caller counts them; the
 * increment never takes the window past our initial window).  While the
 * stream's window stays closed the peer can send it at most one initial
 * window (SETTINGS_INITIAL_WINDOW_SIZE) more: that bounds the buffering.
 * H2_OK or H2_E_NOSTREAM (the stream is gone; nothing to credit). */
h2_rv h2_conn_consume_conn(h2_conn *c, uint32_t stream_id, uint64_t n);
h2_rv h2_conn_consume_stream(h2_conn *c, uint32_t stream_id, uint64_t n);

/* The application's handler for this stream has stopped; the engine may
 * forget the stream once it is closed on the wire.  A stream whose response
 * was not ended is reset with INTERNAL_ERROR (on a client connection: any
 * stream still open is reset with CANCEL, see h2_client_stream_done).  Until detached, a delivered
 * stream counts against max_concurrent_streams even after a reset. */
h2_rv h2_conn_stream_detach(h2_conn *c, uint32_t stream_id);

void h2_conn_stream_set_user(h2_conn *c, uint32_t stream_id, void *user);
void *h2_conn_stream_user(const h2_conn *c, uint32_t stream_id);

/* --- Connection control ---------------------------------------------------- */

/* Send a PING; its ACK comes back as H2_EV_PING_ACK. */
h2_rv h2_conn_ping(h2_conn *c, const uint8_t opaque[8]);

/* A PING that measures the round trip (either role): its opaque carries
 * now_us (the caller's monotonic clock in microseconds, below 2^48) behind
 * a 2-byte tag.  When its H2_EV_PING_ACK arrives, h2_ping_sent_us() gives
 * the time back: RTT = now_us - sent_us.  A peer that forges an ACK fools
 * only the measurement.  Returns as h2_conn_ping. */
h2_rv h2_conn_ping_timed(h2_conn *c, uint64_t now_us);
/* The send time a timed PING's ACK opaque carries; false when the opaque
 * is not one of ours (an application PING). */
bool h2_ping_sent_us(const uint8_t opaque[8], uint64_t *sent_us);

/* Graceful shutdown (RFC 9113 §6.8): GOAWAY with the maximum stream id and a
 * PING now; when that PING is acknowledged, a second GOAWAY with the last
 * stream id processed.  Streams up to it finish; later ones are ignored. */
h2_rv h2_conn_shutdown(h2_conn *c);

/* Immediate GOAWAY with code and close (after flushing). */
h2_rv h2_conn_goaway(h2_conn *c, h2_code code, const char *debug);

/* --- Output ---------------------------------------------------------------- */

/* Gather pending output into at most iovcnt iovecs and about max_bytes
 * bytes, framing DATA from ready streams as windows allow.  Nothing is
 * consumed: after writing, call h2_conn_out_commit() with the number of bytes
 * actually written; a later prepare starts again at the first unwritten byte.
 * The memory referenced stays valid until committed.  Returns the number of
 * iovecs filled (0: nothing to send). */
size_t h2_conn_out_prepare(h2_conn *c, struct iovec *iov, size_t iovcnt, size_t max_bytes);

/* n bytes of the prepared output were written.  Releases fully sent chunks
 * (their callbacks run here).  now_ms feeds the no-progress timeout. */
void h2_conn_out_commit(h2_conn *c, size_t n, uint64_t now_ms);

/* Copy up to cap bytes of output into buf and commit them. */
size_t h2_conn_send(h2_conn *c, uint8_t *buf, size_t cap, uint64_t now_ms);

/* Is there output to send (queued bytes or DATA a window allows)? */
bool h2_conn_want_write(const h2_conn *c);
/* Should the caller keep feeding input? false while paused (control-reply
 * cap, unsent output over the soft limit) or after the connection ended. */
bool h2_conn_want_read(const h2_conn *c);
/* Bytes queued for output and not yet committed (framed and unframed
 * control bytes; unframed DATA is not counted). */
uint64_t h2_conn_unsent(const h2_conn *c);
/* Nothing more will happen on this connection: it failed, or a GOAWAY was
 * sent or received and every stream has finished.  Close once output is
 * flushed. */
bool h2_conn_is_done(const h2_conn *c);

/* Why the connection failed (scope NONE if it did not). */
h2_fault h2_conn_fault(const h2_conn *c);
/* The connection failed by the no-progress timeout with framed output the
 * peer did not read: its GOAWAY cannot get through either, close at once.
 * (A peer that reads but never opens a window gets the GOAWAY.) */
bool h2_conn_send_stalled(const h2_conn *c);
const h2_conn_stats *h2_conn_stats_get(const h2_conn *c);
/* The now_ms given to h2_conn_new(): when the connection began. */
uint64_t h2_conn_created_ms(const h2_conn *c);
/* Streams the connection currently holds (open, or delivered and not yet
 * detached). */
uint32_t h2_conn_stream_count(const h2_conn *c);

#endif
