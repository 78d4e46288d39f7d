/* h1_conn.h - the server side of an HTTP/1.1 connection, sans I/O.
 *
 * The same shape as h2_conn: bytes and the current time go in
 * (h1_conn_recv), events come out one at a time; the application answers
 * through h1_conn_respond/_send_data/_send_trailers/_upgrade/_reset, and the
 * caller pulls the resulting bytes out as iovecs (h1_conn_out_prepare /
 * h1_conn_out_commit) or copies them (h1_conn_send).  Nothing here reads a
 * clock, touches a socket or blocks.
 *
 * Requests are numbered 1, 2, 3... on a connection (h1_event.id, the
 * counterpart of an HTTP/2 stream id).  Pipelining: later requests are
 * parsed and delivered while earlier ones are still being answered, up to
 * limits->max_pipelined unanswered requests (then reading pauses); the
 * application may answer them in any order and concurrently, the codec
 * writes responses strictly in request order (a response queued for request
 * 3 waits, by reference, until 1 and 2 are fully queued).
 *
 * Bodies: request body bytes are delivered as H1_EV_DATA pointing into the
 * caller's input (nothing is buffered); chunked framing is removed and
 * chunked trailers arrive as H1_EV_TRAILERS.  Response body bytes are queued
 * by reference (h2_release_fn, exactly as h2_conn_send_data) and never
 * copied; the codec adds only the head, chunk-size lines and CRLFs.
 *
 * Framing of a response, decided when its final head is queued:
 *  - 1xx, 204, 304, and any response to HEAD: no body bytes go out (data
 *    queued for HEAD is accepted and released unsent);
 *  - a content-length field from the application: that many body bytes
 *    (more is H2_E_INVAL; fewer at the end closes the connection after it);
 *  - end_stream on the head: "content-length: 0" is added;
 *  - otherwise chunked to an HTTP/1.1 client (trailers sent only when the
 *    client said TE: trailers, else dropped), and to an HTTP/1.0 client the
 *    body is delimited by closing the connection.
 * The codec adds "date" (from h1_ctx_set_time, unless the application gave
 * one), the framing field and "connection: close" / "connection:
 * keep-alive" as the exchange needs.  Field names are written as given
 * (lowercase, as HTTP/2 requires; HTTP/1.1 names are case-insensitive).
 *
 * Persistence (RFC 9112 §9.3): HTTP/1.1 persists unless either side says
 * close; HTTP/1.0 persists only with "connection: keep-alive".  The codec
 * stops parsing after a request that ends the connection, writes
 * "connection: close" on its response, and h1_conn_is_done() turns true when
 * that response is flushed.  An application that ends a response before
 * reading the request body and without sending 100 Continue to a client
 * that asked for it also ends the connection (RFC 9110 §10.1.1).
 *
 * Hostile input: a malformed request or one past a limit is answered by the
 * codec itself (400, 408, 413, 414, 431 or 505 with "connection: close",
 * after every earlier response, in order), parsing stops for good, and
 * h1_conn_recv returns H2_E_PROTO; h1_conn_fault() says why,
 * h1_conn_error_status() which status.  The runtime keeps serving the
 * requests already delivered, flushes, and closes when h1_conn_is_done().
 *
 * Upgrades: a request carrying a valid WebSocket handshake or an
 * "Upgrade: h2c" with one HTTP2-Settings (never over TLS) comes with
 * request.upgrade set and without a body.  The codec then stops reading: the
 * bytes after that head are not consumed (they belong to the next protocol
 * if the upgrade is accepted) and h1_conn_recv returns H2_E_AGAIN until the
 * application decides:
 *  - h1_conn_upgrade(): "101 Switching Protocols" is queued (after earlier
 *    responses); once it is flushed h1_conn_is_upgraded() is true and the
 *    connection belongs to the next protocol (for h2c: the runtime starts an
 *    h2_conn with the HTTP2-Settings payload, the request becomes stream 1,
 *    and the unconsumed input is the client's HTTP/2 preface).  The codec
 *    writes "connection: upgrade" and "upgrade: websocket|h2c"; the caller
 *    adds sec-websocket-accept (SHA-1 is not the codec's business).
 *  - any ordinary response: the upgrade is declined and reading resumes.
 *
 * Memory: connections of one thread share an h1_ctx (limits, the head parse
 * scratch, the Date cache, limit counters).  A connection holds a ring of
 * max_pipelined exchange slots, a buffer only while a head arrives in
 * pieces, and pooled output segments.
 *
 * Thread: an h1_ctx and its connections belong to one thread.
 */
#ifndef SPINDLE_H1_CONN_H
#define SPINDLE_H1_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "h1_limits.h"
#include "h1_parse.h"
#include "h2_conn.h" /* h2_release_fn: the same release contract as HTTP/2 bodies */
#include "h2_err.h"
#include "h2_mem.h"

typedef struct h1_conn h1_conn;

#define H1_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* Per-thread state shared by connections. */
typedef struct h1_ctx {
    const h1_limits *limits;
    const h2_mem *mem;
    /* A complete head is copied here and parsed in place: event fields are
     * valid until the next h1_conn_recv() on any connection of the context. */
    uint8_t *scratch;    /* limits->max_head bytes */
    hpack_field *fields; /* limits->max_fields entries */
    int64_t date_s;      /* the second date[] shows; -1: never set (no date field) */
    char date[H1_DATE_LEN + 1];
    uint64_t limit_hits[H1_LIMIT_COUNT]; /* every limit a peer ran into, any connection */
    void *free_segs[2]; /* recycled output segments: small (chunk lines), head-sized */
    uint32_t nfree_segs[2];
} h1_ctx;

/* limits NULL = h1_limits_default(); mem NULL = libc.  The limits object is
 * referenced, not copied: it must outlive the context.
 * Returns H2_OK, H2_E_INVAL (h1_limits_check failed), H2_E_NOMEM. */
h2_rv h1_ctx_init(h1_ctx *x, const h1_limits *limits, const h2_mem *mem);
/* All connections must have been freed. */
void h1_ctx_free(h1_ctx *x);

/* The wall-clock time for the Date field, in seconds since the Unix epoch
 * (the runtime's CLOCK_REALTIME, once per loop iteration).  The IMF-fixdate
 * text is formatted only when the second changes.  Until it is first called
 * responses carry no Date field. */
void h1_ctx_set_time(h1_ctx *x, int64_t unix_s);
/* Format unix_s as an IMF-fixdate (RFC 9110 §5.6.7) into out[29]. */
void h1_format_date(int64_t unix_s, char out[H1_DATE_LEN]);

/* --- Events ---------------------------------------------------------------- */

typedef enum h1_event_type {
    H1_EV_NONE = 0, /* all input consumed, nothing to report */
    H1_EV_REQUEST,  /* a request head; end_stream: no body follows */
    H1_EV_DATA,     /* request body bytes; end_stream on the last (len may be 0) */
    H1_EV_TRAILERS, /* chunked trailers; always end_stream */
    H1_EV_RESET,    /* (with H2_E_PROTO) a delivered request's body was malformed or
                     * too large: stop its handler; its response is the codec's error
                     * response if none was started, else the connection closes after
                     * what was queued */
} h1_event_type;

typedef struct h1_event {
    h1_event_type type;
    uint32_t id; /* the request, 1, 2, ... */
    bool end_stream;
    union {
        h1_request request;
        struct {
            const uint8_t *data; /* points into the caller's input buffer */
            uint32_t len;
        } data;
        struct {
            const hpack_field *fields;
            uint32_t n;
        } trailers;
    } u;
} h1_event;

typedef struct h1_conn_stats {
    uint64_t requests;  /* delivered */
    uint64_t responses; /* fully committed */
    uint64_t bytes_in;  /* consumed */
    uint64_t bytes_out; /* committed */
} h1_conn_stats;

/* --- Lifecycle ------------------------------------------------------------- */

/* A server connection.  tls: the scheme is https and h2c upgrades are never
 * offered.  now_ms (the same monotonic clock as h2_conn) starts the
 * header-read timeout of the first request.  NULL on allocation failure. */
h1_conn *h1_conn_new(h1_ctx *x, bool tls, uint64_t now_ms);

/* Releases every chunk still queued (release callbacks run) and frees the
 * connection.  No send may be in flight that references its output. */
void h1_conn_free(h1_conn *c);

/* --- Input --------------------------------------------------------------- */

/* Feed input.  Processes bytes until one event is produced, all input is
 * consumed, or reading must pause; *consumed says how much of in was used:
 * call again with the rest after handling ev.
 *  H2_OK      - ev->type is the event, or H1_EV_NONE when all input was used
 *               (input after a request that ends the connection is consumed
 *               and ignored).
 *  H2_E_AGAIN - reading paused: max_pipelined requests unanswered, unsent
 *               output over max_unsent_output, or an upgrade awaiting the
 *               application's decision.  Answer/flush, then feed the rest
 *               (h1_conn_want_read() says when).
 *  H2_E_PROTO - malformed input or a limit: the error response is queued
 *               (ev->type may be H1_EV_RESET, see above); feed no more input,
 *               keep answering delivered requests, flush, close when done.
 *  H2_E_CLOSED - parsing had already ended (error, upgrade accepted).
 *  H2_E_NOMEM - fatal.
 * Event payloads point into `in` (DATA) or into the context's scratch
 * (heads, trailers): valid until the next h1_conn_recv() on this context. */
h2_rv h1_conn_recv(h1_conn *c, const uint8_t *in, size_t len, uint64_t now_ms, size_t *consumed,
                   h1_event *ev);

/* The peer shut down writing (EOF) and every byte before it was fed.  As
 * RFC 9112 §9.6 lets a client half-close after its last request (nginx
 * and h2o answer it): parsing stops, requests already delivered are
 * answered and the connection is done once they are flushed, the last one
 * with "connection: close".  A head arriving in pieces is dropped; a
 * delivered request whose body is incomplete is abandoned (ev->type
 * H1_EV_RESET for it, as h1_conn_reset: what was queued for it still goes
 * out, then the connection closes).  Returns H2_OK, or H2_E_CLOSED when an
 * upgrade awaits its answer (close now: the next protocol has no input). */
h2_rv h1_conn_recv_eof(h1_conn *c, h1_event *ev);

/* Timers: the earliest time h1_conn_tick() has work to do, or UINT64_MAX. */
uint64_t h1_conn_next_deadline(const h1_conn *c);
/* Apply the timeouts due at now_ms.  Header-read timeout (a head not
 * complete header_timeout_ms after its first byte, or after accept for the
 * first request): 408 queued and H2_E_PROTO.  Keep-alive idle timeout
 * (nothing in flight for idle_timeout_ms): H2_E_PROTO with nothing queued.
 * In both cases flush and close (h1_conn_is_done() is true).  Else H2_OK. */
h2_rv h1_conn_tick(h1_conn *c, uint64_t now_ms);

/* --- Responding ------------------------------------------------------------ */

/* Queue a response head: final (200..599) or informational (100, 102..199,
 * end_stream false; may repeat; not after the final head).  101 is
 * h1_conn_upgrade's.  Fields: no pseudo-headers or connection-specific
 * fields (h2_http_check_response_fields), and a content-length field, if
 * any, of digits only.  Copied at once.
 *  H2_OK, H2_E_NOSTREAM (no such request, or already answered and flushed),
 *  H2_E_STATE (final head already queued, or the request was reset),
 *  H2_E_INVAL (status or fields), H2_E_NOMEM. */
h2_rv h1_conn_respond(h1_conn *c, uint32_t id, uint16_t status, const hpack_field *fields, size_t n,
                      bool end_stream);

/* h1_conn_respond() where only the first n_check fields are validated: the
 * rest were built valid by the caller (as h2_conn_respond_checked; the
 * runtime's date, server and content-length fields).  A content-length
 * among them still decides the framing. */
h2_rv h1_conn_respond_checked(h1_conn *c, uint32_t id, uint16_t status, const hpack_field *fields,
                              size_t n, size_t n_check, bool end_stream);

/* Queue body bytes by reference: data must stay valid until release is
 * called (release may be NULL for static data).  len may be 0 with
 * end_stream to end the body.  Release happens exactly once, also on
 * failure returns other than H2_E_INVAL (and at once for bodies that are
 * not sent: HEAD, after a reset).
 *  H2_OK, H2_E_NOSTREAM, H2_E_STATE (no final head yet, body ended),
 *  H2_E_INVAL (more than the content-length, or a body on 204/304),
 *  H2_E_NOMEM. */
h2_rv h1_conn_send_data(h1_conn *c, uint32_t id, const uint8_t *data, uint64_t len, bool end_stream,
                        h2_release_fn release, void *release_ctx);

/* End the body with trailers: chunked trailers when the body is chunked and
 * the client sent "TE: trailers", else the fields are dropped and the body
 * just ends.  Fields are copied.  Same returns as h1_conn_send_data. */
h2_rv h1_conn_send_trailers(h1_conn *c, uint32_t id, const hpack_field *fields, size_t n);

/* Bytes queued for this request's response and not yet committed (0 for
 * an unknown id).  Backpressure: the runtime holds a handler's writes while
 * this is at or above its per-stream bound, as with h2_conn_stream_buffered
 * (a response waiting behind an earlier one in the pipeline counts too). */
uint64_t h1_conn_buffered(const h1_conn *c, uint32_t id);

/* Accept the upgrade the request asked for (request.upgrade != NONE): queue
 * "101 Switching Protocols" with connection/upgrade and the given extra
 * fields (copied).  Parsing stays stopped; h1_conn_is_upgraded() turns true
 * once every byte up to the 101 is committed.
 *  H2_OK, H2_E_NOSTREAM, H2_E_STATE (not an upgrade request, or a final
 *  head was queued), H2_E_INVAL (fields), H2_E_NOMEM. */
h2_rv h1_conn_upgrade(h1_conn *c, uint32_t id, const hpack_field *fields, size_t n);

/* The application abandons a request (its handler failed or stopped
 * without finishing the response: the HTTP/1.1 counterpart of RST_STREAM).
 * Queued body bytes stay queued; nothing more is added; the connection
 * closes once they are flushed, without answering later requests.  If no
 * final head was queued, nothing at all is sent for it.  H2_OK or
 * H2_E_NOSTREAM. */
h2_rv h1_conn_reset(h1_conn *c, uint32_t id);

/* Graceful shutdown: no new request is parsed; requests already delivered
 * are answered; the last response carries "connection: close" if its head
 * is not queued yet; the connection is done once they are flushed. */
void h1_conn_shutdown(h1_conn *c);

/* --- Output ---------------------------------------------------------------- */

/* Gather pending output into at most iovcnt iovecs and about max_bytes
 * bytes (at least one iovec if anything is pending), in request order.
 * Nothing is consumed: after writing, call h1_conn_out_commit() with the
 * number of bytes written; a later prepare starts at the first unwritten
 * byte.  The memory referenced stays valid until committed, whatever is
 * queued meanwhile.  Returns the number of iovecs filled (0: nothing). */
size_t h1_conn_out_prepare(h1_conn *c, struct iovec *iov, size_t iovcnt, size_t max_bytes);

/* n bytes of the prepared output were written.  Releases fully sent chunks
 * (callbacks run here), retires finished responses, and restarts the
 * keep-alive timer (now_ms) when nothing is left in flight. */
void h1_conn_out_commit(h1_conn *c, size_t n, uint64_t now_ms);

/* Copy up to cap bytes of output into buf and commit them. */
size_t h1_conn_send(h1_conn *c, uint8_t *buf, size_t cap, uint64_t now_ms);

/* Is there output to send? */
bool h1_conn_want_write(const h1_conn *c);
/* Should the caller feed input?  false while paused (see h1_conn_recv) or
 * once parsing has ended. */
bool h1_conn_want_read(const h1_conn *c);
/* Bytes queued for output and not yet committed. */
uint64_t h1_conn_unsent(const h1_conn *c);
/* Nothing more will happen: the connection must close (after an error, a
 * close-delimited or "connection: close" response, a timeout, a reset or a
 * shutdown) and every byte before that point was committed.  Close now
 * (a lingering close is the runtime's business). */
bool h1_conn_is_done(const h1_conn *c);
/* The 101 of an accepted upgrade was committed: hand the connection (and
 * the input h1_conn_recv did not consume) to the next protocol. */
bool h1_conn_is_upgraded(const h1_conn *c);

/* Why parsing ended on an error (scope NONE if it did not): code
 * H2_PROTOCOL_ERROR, scope H2_SCOPE_CONN, and a static reason. */
h2_fault h1_conn_fault(const h1_conn *c);
/* The status of the codec's error response (400, 408, 413, 414, 431, 505),
 * 0 if none. */
uint16_t h1_conn_error_status(const h1_conn *c);
const h1_conn_stats *h1_conn_stats_get(const h1_conn *c);
/* Requests delivered and not yet fully answered and flushed. */
uint32_t h1_conn_in_flight(const h1_conn *c);

#endif
