/* h2_client.h - the client role of the HTTP/2 engine (RFC 9113 §3.4, §5.1),
 * sans I/O.
 *
 * A client connection is an h2_conn like a server's: the same context,
 * input (h2_client_recv, a thin layer over h2_conn_recv), output
 * (h2_conn_out_prepare/_out_commit), flow control, HPACK, limits and
 * hostile-peer defences (a hostile server is a peer too).  What differs:
 *  - the preface: the connection magic, then our SETTINGS with
 *    SETTINGS_ENABLE_PUSH = 0; a server must start with SETTINGS;
 *  - we open the streams: h2_client_request() takes the next odd id;
 *  - heads arrive as H2_EV_RESPONSE (1xx any number of times, then the
 *    final one), validated by RFC 9113 §8 (h2_http_parse_response); body
 *    bytes as H2_EV_DATA and trailers as H2_EV_TRAILERS, exactly as a
 *    server receives a request's;
 *  - push is refused: PUSH_PROMISE, a HEADERS on an even or unopened id,
 *    or SETTINGS_ENABLE_PUSH = 1 are connection errors;
 *  - GOAWAY: streams above its last_stream_id were never processed; each
 *    is reported as H2_EV_STREAM_RESET with code H2_REFUSED_STREAM and
 *    remote true (safe to retry on a new connection, RFC 9113 §8.7), after
 *    the H2_EV_GOAWAY.  No new request may start.
 *
 * Request bodies go out exactly as response bodies do: h2_conn_send_data
 * (by reference, with a release callback), h2_conn_send_trailers, and
 * h2_conn_stream_buffered for backpressure.  Response body bytes are
 * handed back with h2_conn_consume (that reopens the windows).  A stream
 * the application gave up: h2_conn_reset_stream(.., H2_CANCEL).
 *
 * Streams are held by the application from h2_client_request() until
 * h2_client_stream_done(); each counts against the smaller of the peer's
 * SETTINGS_MAX_CONCURRENT_STREAMS and limits->max_concurrent_streams.
 * The user pointer given at h2_client_request() is h2_conn_stream_user().
 *
 * Thread: the h2_ctx's thread, as for every h2_conn.
 */
#ifndef SPINDLE_H2_CLIENT_H
#define SPINDLE_H2_CLIENT_H

#include "h2_conn.h"

/* A request head.  method, scheme and path are required (CONNECT is not
 * supported); authority may be absent (p NULL).  The fields are regular
 * fields: no pseudo-header, no connection-specific field (te: trailers is
 * allowed). */
typedef struct h2_client_req {
    h2_str method, scheme, authority, path;
    const hpack_field *fields;
    size_t nfields;
} h2_client_req;

/* A client connection.  Queues the client preface at once (the magic, our
 * SETTINGS, and a connection WINDOW_UPDATE when our window is larger than
 * the default): the caller may send it before the server's arrives.
 * now_ms starts the preface timeout (the server's SETTINGS).  NULL on
 * allocation failure. */
h2_conn *h2_client_new(h2_ctx *x, uint64_t now_ms);

/* Streams that may be opened now (0: wait for one to finish, or for a new
 * connection after a GOAWAY or a failure). */
uint32_t h2_client_room(const h2_conn *c);

/* Open a stream and queue its request head (HPACK-encoded at once).
 * end_stream: no body follows.  user is kept with the stream.
 *  H2_OK        - *stream_id is the new stream's id.
 *  H2_E_AGAIN   - no room (h2_client_room() is 0 while the connection lives).
 *  H2_E_CLOSED  - the connection failed, a GOAWAY was sent or received, or
 *                 the stream ids are spent: use a new connection.
 *  H2_E_INVAL   - a missing or invalid pseudo-header value, an invalid
 *                 field, or a head too large to encode.
 *  H2_E_NOMEM   - fatal for the connection. */
h2_rv h2_client_request(h2_conn *c, const h2_client_req *r, bool end_stream, void *user,
                        uint32_t *stream_id);

/* h2_conn_recv for a client: after an H2_EV_GOAWAY, the streams above its
 * last_stream_id come out one per call as refused resets (consuming
 * nothing), so call until H2_EV_NONE even once the input is used up.
 * Returns as h2_conn_recv. */
h2_rv h2_client_recv(h2_conn *c, const uint8_t *in, size_t len, uint64_t now_ms, size_t *consumed,
                     h2_event *ev);

/* The application is done with a stream (its response ended, it was
 * reset, or it is no longer wanted).  A stream still open on the wire is
 * reset with CANCEL.  h2_conn_stream_detach() on a client connection does
 * the same.  H2_OK, H2_E_NOSTREAM, H2_E_NOMEM. */
h2_rv h2_client_stream_done(h2_conn *c, uint32_t stream_id);

/* --- Private to proto/ ------------------------------------------------------ */

struct h2_stream;
/* A header block on a client stream that has no final response head yet
 * (h2_headers.c calls it after decoding): a 1xx or the final head. */
h2_rv h2_client_on_head(h2_conn *c, struct h2_stream *s, const hpack_sink *sk, bool end_stream,
                        h2_event *ev);

#endif
