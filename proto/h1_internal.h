/* h1_internal.h - what h1_conn.c (input, timers, lifecycle) and h1_out.c
 * (responses, output segments) share: the connection, exchange and segment
 * structures and the helpers both halves call.  Not an API: nothing outside
 * proto/h1_*.c includes it.
 */
#ifndef SPINDLE_H1_INTERNAL_H
#define SPINDLE_H1_INTERNAL_H

#include "h1_conn.h"

#define SEG_INLINE 24u  /* chunk-size lines, CRLFs, the last chunk */
#define SEG_HEAD   488u /* a pooled head: most response heads fit */
#define SEG_KEEP   256u /* recycled segments of each kind a context keeps */

typedef struct h1_seg {
    struct h1_seg *next;
    const uint8_t *p;
    uint64_t len;
    h2_release_fn release; /* references only */
    void *rctx;
    uint8_t kind; /* SEG_K_*: where it goes when sent */
    uint8_t inl[SEG_INLINE];
} h1_seg;

enum { SEG_K_SMALL, SEG_K_HEAD, SEG_K_HEAP }; /* pooled x2, or freed */

/* --- Exchanges --------------------------------------------------------------- */

enum { X_OPEN, X_BODY, X_ENDED };              /* response state */
enum { F_NONE, F_LENGTH, F_CHUNKED, F_CLOSE }; /* response framing */

typedef struct h1_xchg {
    uint32_t id;
    uint8_t state, framing, minor, upgrade;
    bool delivered; /* false: the codec's own error response */
    bool head_method, te_trailers, expect_continue, sent_100, body_done;
    bool close;     /* the connection ends after this response */
    bool upgrading; /* the 101 was queued */
    bool reset;
    uint64_t left; /* F_LENGTH: body bytes still to come */
    h1_seg *first, *last;
    uint64_t queued; /* bytes in segments, not committed */
} h1_xchg;

enum {
    R_HEAD,
    R_BODY,
    R_CHUNK_LINE,
    R_CHUNK_DATA,
    R_CHUNK_CRLF,
    R_TRAILERS,
    R_STOP,
    R_FAILED,
    R_UPGRADED
};

struct h1_conn {
    h1_ctx *x;
    h1_xchg *ring;
    uint32_t cap, head, n; /* exchanges: ring[head], ... n of them */
    uint32_t next_id;
    uint32_t body_id;      /* the exchange whose request body is being read */
    uint32_t upgrade_wait; /* an upgrade request awaiting its answer */
    uint8_t rstate, crlf;
    bool tls, done, upgraded, shutdown;
    bool body_close;              /* the request being read ends the connection */
    bool paused_pipe, paused_out; /* counted once per pause */
    h1_scan sc;
    h1_chunk_scan cs;
    uint8_t *hbuf; /* a head or trailer section arriving in pieces */
    uint32_t hlen, hcap;
    uint64_t body_left, body_total;
    uint64_t seg_off; /* committed bytes of the first segment */
    uint64_t unsent;
    uint64_t now, head_deadline, idle_deadline;
    uint32_t parsed; /* requests parsed */
    h2_fault fault;
    uint16_t err_status;
    h1_conn_stats st;
};

/* What the codec adds to the application's fields. */
typedef struct h1_head_extra {
    const char *lines; /* complete "name: value\r\n" lines, or NULL */
    bool date;
    bool cl; /* content-length: cl_value */
    uint64_t cl_value;
} h1_head_extra;

static inline uint8_t *h1_seg_data(h1_seg *s)
{
    return (uint8_t *)(uintptr_t)s->p;
}

static inline h1_xchg *h1_xat(const h1_conn *c, uint32_t i)
{
    return &c->ring[(c->head + i) % c->cap];
}

static inline h1_xchg *h1_xfind(const h1_conn *c, uint32_t id)
{
    if (c->n == 0)
        return NULL;
    uint32_t first = h1_xat(c, 0)->id;
    if (id < first || id - first >= c->n)
        return NULL;
    return h1_xat(c, id - first);
}

/* h1_out.c */
h1_seg *h1_seg_small(h1_conn *c);
h1_seg *h1_seg_bytes(h1_conn *c, size_t len);
void h1_seg_free(h1_conn *c, h1_seg *s);
void h1_seg_push(h1_conn *c, h1_xchg *x, h1_seg *s);
h2_rv h1_push_copy(h1_conn *c, h1_xchg *x, const void *p, size_t len);
h1_xchg *h1_xnew(h1_conn *c);
void h1_xdrop_segs(h1_conn *c, h1_xchg *x);
/* Nothing in flight and no request begun: start the keep-alive timer. */
void h1_arm_idle(h1_conn *c);
/* Pop finished exchanges off the front (done after one that closes). */
void h1_retire(h1_conn *c);
h2_rv h1_push_head(h1_conn *c, h1_xchg *x, uint16_t status, const hpack_field *f, size_t n,
                   const h1_head_extra *e);
/* Count a limit hit in the context (limit < 0: none). */
void h1_count(h1_conn *c, int limit);
/* The codec answers x itself: status, no body, close. */
h2_rv h1_push_error(h1_conn *c, h1_xchg *x, uint16_t status);

#endif
