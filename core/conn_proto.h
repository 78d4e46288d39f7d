/* conn_proto.h - what a connection's protocol does for conn.c and stream.c
 * (not installed).
 *
 * A connection speaks one protocol, chosen once: at accept it is
 * CONN_DETECT (no engine yet); its first bytes (the HTTP/2 preface or not)
 * or, over TLS, the ALPN result pick CONN_H2 (h2_conn) or CONN_H1 (h1_conn,
 * core/conn_h1.c).  Every engine call of conn.c and stream.c goes through
 * the table of c->proto, so the HTTP/2 path never tests for HTTP/1.1: it
 * makes the same indirect calls whatever else the shard serves.  The
 * HTTP/2 tables (CONN_H2, CONN_H2C) and conn_protos are conn_proto_h2.c's.
 *
 * Stream ids are the engine's (HTTP/2 stream ids; HTTP/1.1 request numbers
 * 1, 2, ...).  Returns follow h2_conn.h / h1_conn.h.  Shard thread only.
 */
#ifndef SPINDLE_CORE_CONN_PROTO_H
#define SPINDLE_CORE_CONN_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "h2_conn.h"

typedef struct conn conn;

enum conn_proto_id {
    CONN_DETECT = 0,
    CONN_H2 = 1,
    CONN_H1 = 2,
    CONN_H2C = 3, /* upgraded to HTTP/2: silent until the client preface arrived */
    CONN_WS = 4,  /* a WebSocket after its HTTP/1.1 handshake (conn_ws.h) */
    CONN_PROTO_COUNT
};

typedef struct conn_proto {
    /* Feed input; returns the bytes consumed (fewer: paused or failed, see
     * conn.c's feed()). */
    size_t (*feed)(conn *c, const uint8_t *p, size_t n);
    bool (*want_write)(const conn *c);
    bool (*want_read)(const conn *c);
    bool (*is_done)(const conn *c);
    size_t (*out_prepare)(conn *c, struct iovec *iov, size_t iovcnt, size_t max_bytes);
    void (*out_commit)(conn *c, size_t n);
    uint64_t (*next_deadline)(const conn *c);
    /* The connection's timer fired (after the TLS handshake). */
    void (*on_timer)(conn *c);
    void (*shutdown)(conn *c);
    void (*free)(conn *c);
    /* The peer shut down writing and every byte before it was fed: true if
     * the engine finishes what it owes (then is_done), false (or NULL) to
     * close now. */
    bool (*eof)(conn *c);
    /* Streams. */
    /* The first n_check fields are validated; the rest were built valid
     * (h2_conn_respond_checked()); HTTP/1.1 validates them all. */
    h2_rv (*respond)(conn *c, uint32_t id, uint16_t status, const hpack_field *f, size_t n,
                     size_t n_check, bool end);
    h2_rv (*send_data)(conn *c, uint32_t id, const uint8_t *d, uint64_t len, bool end,
                       h2_release_fn release, void *ctx);
    h2_rv (*send_trailers)(conn *c, uint32_t id, const hpack_field *f, size_t n);
    h2_rv (*reset)(conn *c, uint32_t id, h2_code code);
    uint64_t (*buffered)(const conn *c, uint32_t id);
    void (*consume)(conn *c, uint32_t id, uint64_t n);
    void *(*user)(const conn *c, uint32_t id);
    void (*set_user)(conn *c, uint32_t id, void *user);
    void (*detach)(conn *c, uint32_t id);
    uint8_t http_version; /* spindle_request.http_version */
} conn_proto;

extern const conn_proto *const conn_protos[CONN_PROTO_COUNT];
extern const conn_proto conn_proto_h1; /* conn_h1.c */
extern const conn_proto conn_proto_ws; /* conn_ws.c */

/* conn.c, for the HTTP/2 tables (conn_proto_h2.c).  conn_h2_feed feeds the
 * engine and dispatches its events: returns the bytes consumed, fewer than
 * n if the engine paused (c->paused) or failed (the connection fails).
 * conn_h2_timer runs the engine's timers and re-arms the connection's. */
size_t conn_h2_feed(conn *c, const uint8_t *p, size_t n);
void conn_h2_timer(conn *c);

#define CP(c) (conn_protos[(c)->proto])

#endif
