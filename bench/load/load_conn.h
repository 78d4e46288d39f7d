/* load_conn.h - spindle-load's connection, shared by the worker (transport:
 * the ring, plain TCP or TLS) and the two protocol modules on top of it
 * (load_h2.c, load_http1.c).  Internal to bench/load/.
 *
 * A connection holds up to cfg->streams requests ("slots").  The worker
 * owns the slot table and the accounting: a protocol module takes a slot
 * when it issues a request (lc_slot_start) and gives it back with what
 * happened to it (lc_slot_complete, lc_slot_fail, lc_slot_refused).  Only
 * requests started after the warm-up count (load_stats); earlier ones end
 * silently.  Thread: the worker's.
 */
#ifndef SPINDLE_LOAD_CONN_H
#define SPINDLE_LOAD_CONN_H

#include <liburing.h>
#include <sys/uio.h>

#include "load.h"
#include "load_h1.h"
#include "load_tls.h"

typedef struct lh1_conn lh1_conn; /* load_http1.c */

#define LC_RBUF (64u * 1024u)
#define LC_NIOV 64u

typedef struct lc_slot {
    uint64_t start_ns;
    uint64_t body; /* response body bytes so far */
    uint16_t status;
    bool busy;
    uint32_t next_free; /* 1-based, 0: none */
} lc_slot;

typedef struct lconn {
    int fd;
    h2_conn *h;          /* HTTP/2 */
    lh1_conn *h1;        /* HTTP/1.1 */
    ltls *tls;           /* NULL: plain TCP */
    uint8_t *rbuf;       /* plaintext input */
    uint8_t *cbuf;       /* TLS: ciphertext received */
    uint32_t rpos, rlen; /* input not yet fed (reading paused) */
    uint32_t gen;
    bool reading, writing, closing;
    bool paused;  /* the protocol stopped reading until a write completes */
    bool alpn_ok; /* TLS: the handshake's ALPN was checked */
    uint32_t inflight;
    lc_slot *slots;
    uint32_t free_head;
    struct iovec iov[LC_NIOV];
} lconn;

typedef struct load_proto load_proto;

typedef struct wstate {
    load_worker *w;
    const load_cfg *cfg;
    struct io_uring ring;
    lconn *conns;
    h2_ctx x;
    h2_limits lim;
    const load_proto *p;
    ltls_ctx *tls;
    const uint8_t *h1_req; /* the HTTP/1.1 request, head and body */
    size_t h1_req_len;
    uint64_t now_ns, now_ms;
    uint64_t remaining; /* requests still to issue (UINT64_MAX: until the deadline) */
    uint64_t measure_at, deadline;
    bool measuring, stopping, fatal, ring_ok, ctx_ok;
    h2_client_req req;
} wstate;

/* Results of a protocol's feed. */
enum { LC_FED = 0, LC_PAUSE = 1, LC_FAIL = -1 };

/* What a protocol module does for the worker (load_h2.c, load_http1.c). */
struct load_proto {
    int (*open)(wstate *s, lconn *c);   /* 0, or -ENOMEM */
    void (*close)(wstate *s, lconn *c); /* free the protocol state */
    /* Consume c->rbuf[c->rpos..c->rlen): LC_FED (all used), LC_PAUSE
     * (resume after the next write), LC_FAIL (a connection error). */
    int (*feed)(wstate *s, lconn *c);
    /* The peer closed the connection: end what that ends (a body read
     * until the close).  Requests still in flight are then lost. */
    void (*eof)(wstate *s, lconn *c);
    int (*top_up)(wstate *s, lconn *c); /* issue requests up to -m: LC_FED or LC_FAIL */
    /* Plaintext to send, at most budget bytes; out_commit(n) after n went. */
    size_t (*out_prepare)(wstate *s, lconn *c, struct iovec *iov, size_t max, size_t budget);
    void (*out_commit)(wstate *s, lconn *c, size_t n);
    /* True when the connection ended cleanly and should close (GOAWAY or
     * "connection: close" with every request answered). */
    bool (*finished)(const lconn *c);
};

extern const load_proto load_proto_h2, load_proto_h1;

/* May this worker issue another request now? */
bool lc_want_more(const wstate *s);
/* Take a free slot for a new request (0: none): started, timed from now. */
uint32_t lc_slot_start(wstate *s, lconn *c);
/* A complete response with this final status. */
void lc_slot_complete(wstate *s, lconn *c, uint32_t sl);
/* A failed request: reset by the server (remote) or malformed / short. */
void lc_slot_fail(wstate *s, lconn *c, uint32_t sl, bool remote);
/* Never processed (GOAWAY, REFUSED_STREAM, a closing HTTP/1.1
 * connection): issued again. */
void lc_slot_refused(wstate *s, lconn *c, uint32_t sl);

/* The HTTP/1.1 request every connection sends (head and body), malloc'd;
 * NULL when out of memory. */
uint8_t *load_h1_request(const load_cfg *cfg, size_t *len);

#endif
