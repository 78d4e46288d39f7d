/* h2_conn.c - server-side HTTP/2 connection engine (RFC 9113), sans I/O.
 *
 * Layout of this file:
 *   pools ............ fixed-size free lists (warm paths never allocate)
 *   output chain ..... control bytes in blocks + references to app data
 *   streams .......... lookup, lifetime, the RFC 9113 §5.1 states
 *   scheduler ........ RFC 9218 urgency buckets, round robin with a quantum
 *   receive .......... the parser state machine and one handler per frame type
 *   application API .. respond, data, trailers, reset, consume, detach
 *   timers, output API
 *
 * See docs/conn.md for the design notes (buffer ownership, event lifetime).
 */
#include "h2_conn.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* Pools                                                                     */
/* ------------------------------------------------------------------------ */

static void pool_init(h2_pool *p, uint32_t size, uint32_t keep, const h2_mem *mem)
{
    p->free_list = NULL;
    p->size = size < sizeof(void *) ? (uint32_t)sizeof(void *) : size;
    p->nfree = 0;
    p->keep = keep;
    p->live = 0;
    p->mem = mem;
}

static void *pool_get(h2_pool *p)
{
    void *b = p->free_list;
    if (b) {
        memcpy(&p->free_list, b, sizeof(void *));
        p->nfree--;
    } else {
        b = h2_malloc(p->mem, p->size);
        if (!b)
            return NULL;
    }
    p->live++;
    return b;
}

static void pool_put(h2_pool *p, void *b)
{
    p->live--;
    if (p->nfree < p->keep) {
        memcpy(b, &p->free_list, sizeof(void *));
        p->free_list = b;
        p->nfree++;
    } else {
        h2_free(p->mem, b);
    }
}

static void pool_drain(h2_pool *p)
{
    while (p->free_list) {
        void *b = p->free_list;
        memcpy(&p->free_list, b, sizeof(void *));
        h2_free(p->mem, b);
    }
    p->nfree = 0;
}

/* ------------------------------------------------------------------------ */
/* Types                                                                     */
/* ------------------------------------------------------------------------ */

#define NSEG    32u    /* payload references per connection in flight */
#define QUANTUM 16384u /* round-robin quantum per stream turn */
#define INLINE_MAX                                                                                 \
    1024u                        /* DATA payloads up to this size are copied into the
                             * byte chain: one memcpy is cheaper than an iovec
                             * of its own, and runs of small responses go out
                             * as one contiguous iovec */
#define NBUCKETS             32u /* stream hash buckets (ids are odd: spread by id >> 1) */
#define NURGENCY             8u
#define SHUTDOWN_PING        "spndl-sd"
#define SHUTDOWN_ACK_WAIT_MS 1000u /* final GOAWAY without the PING ACK after this */

typedef struct out_block {
    struct out_block *next;
    uint32_t cap;
    uint32_t used;
    uint8_t data[];
} out_block;

typedef struct h2_chunk {
    struct h2_chunk *next;
    const uint8_t *data;
    uint64_t len;
    uint64_t framed;   /* bytes already framed into segments */
    uint64_t done_pos; /* copied whole: chain position past its last byte */
    uint32_t refs;     /* segments referencing it not yet committed */
    bool orphan;       /* its stream is gone: release when refs drop to 0 */
    h2_release_fn release;
    void *release_ctx;
} h2_chunk;

/* A DATA payload inserted into the byte chain at absolute position pos. */
typedef struct seg {
    uint64_t pos;
    const uint8_t *p;
    h2_chunk *chunk;
    uint32_t len;
} seg;

typedef struct trailers {
    size_t n;
    bool pooled; /* from the output block pool, else from h2_mem */
    hpack_field f[];
} trailers;

enum stream_state { S_OPEN, S_HALF_REMOTE, S_HALF_LOCAL, S_CLOSED };

enum stream_flag {
    F_DELIVERED = 1u << 0,  /* the application holds it (REQUEST delivered, not detached) */
    F_HEAD_SENT = 1u << 1,  /* final response head queued */
    F_END_QUEUED = 1u << 2, /* the application ended the body */
    F_END_SENT = 1u << 3,   /* END_STREAM framed */
    F_IN_SCHED = 1u << 4,
    F_RESET_SENT = 1u << 5, /* we sent RST_STREAM: ignore late frames */
    F_INCREMENTAL = 1u << 6,
};

struct h2_stream;
/* Stream lookup and scheduler queues: allocated (pooled) while the
 * connection has streams, so an idle connection does not carry them. */
typedef struct stream_tables {
    struct h2_stream *buckets[NBUCKETS];
    struct h2_stream *rq_head[8];
    struct h2_stream *rq_tail[8];
    struct h2_stream *last; /* the last stream found or created: the
                             * application's calls name it over and over */
} stream_tables;

typedef struct h2_stream {
    struct h2_stream *hnext;
    struct h2_stream *snext;
    h2_chunk *ch_head, *ch_tail; /* chunks with unframed bytes */
    void *user;
    trailers *trailers;
    int64_t send_window;
    int64_t recv_window;
    int64_t content_length;
    uint64_t data_recv;
    uint64_t unframed;
    uint64_t recv_held;    /* delivered, not yet consumed */
    uint32_t recv_unacked; /* consumed, not yet WINDOW_UPDATEd */
    uint32_t id;
    uint16_t flags;
    uint8_t state;
    uint8_t urgency;
} h2_stream;

enum rstate { R_PREFACE, R_HEAD, R_PAYLOAD, R_DATA_PADLEN, R_DATA, R_SKIP, R_DEAD };

struct h2_conn {
    /* Members are grouped by size (8, 4, then 1 byte) to leave no padding:
     * every idle connection carries this struct. */
    h2_ctx *x;
    const h2_limits *lim;

    /* receive state */
    uint8_t *pbuf; /* payload being buffered (pool block or oversize) */
    /* header block being assembled from HEADERS + CONTINUATION */
    uint8_t *hb;
    uint64_t hb_start_ms;

    hpack_decoder dec;
    hpack_encoder enc;

    uint64_t settings_sent_ms;
    /* flow control */
    int64_t send_window;
    int64_t recv_window;
    /* streams */
    stream_tables *st; /* NULL while there is no stream */
    uint32_t *rring;   /* ids of streams we reset (late frames ignored) */
    /* output */
    out_block *ohead, *otail;
    uint64_t chain_w, chain_r;
    seg *segs;
    uint64_t seg_bytes;             /* unsent payload bytes in segments */
    uint64_t unframed;              /* queued body bytes not yet framed (all streams) */
    uint64_t progress_ms;           /* last send progress while output was pending */
    uint64_t ctrl_mark;             /* chain position: the ctrl_old replies end before it */
    h2_chunk *copied, *copied_tail; /* chunks copied whole into the chain, in
                             * order; released once the chain is written past
                             * their last byte (never under out_prepare) */
    /* abuse budgets */
    h2_bucket resets;
    h2_bucket glitches;
    /* lifecycle */
    uint64_t shutdown_ms; /* when the notice went out */
    uint64_t created_ms;
    uint64_t active_ms;
    uint64_t now;
    h2_fault fault;
    h2_conn_stats stats;

    /* 4-byte members */
    h2_frame_hdr fh; /* receive state */
    uint32_t pbuf_cap;
    uint32_t pgot;
    uint32_t left;     /* DATA bytes or bytes to skip */
    uint32_t pad_left; /* DATA padding to skip after the data */
    uint32_t preface_got;
    uint32_t hb_len, hb_cap, hb_sid;
    uint32_t local_iws; /* settings: our initial window as in effect (ACKed) */
    uint32_t peer_iws;
    uint32_t peer_max_frame;
    uint32_t recv_unacked;
    uint32_t nstreams;
    uint32_t last_peer_sid;
    uint32_t last_delivered_sid;
    uint32_t rring_pos;
    uint32_t nready; /* scheduler */
    uint32_t ohead_off;
    uint32_t seg_head, seg_count, seg_off;
    uint32_t ctrl_pending; /* peer-provoked replies possibly unwritten (ctrl_settle) */
    uint32_t ctrl_old;     /* ... of which queued before ctrl_mark was taken */
    uint32_t goaway_last;

    /* 1-byte members */
    uint8_t rstate;
    uint8_t head_got;
    uint8_t head[H2_FRAME_HDR_LEN];
    uint8_t hb_ncont;
    bool hb_active;
    bool hb_end_stream;
    bool hb_selfdep;
    bool got_settings;
    bool no_rfc7540;
    uint8_t settings_unacked;
    bool dead;
    bool goaway_sent; /* a final GOAWAY (not the shutdown notice) */
    bool goaway_recv;
    bool send_stalled;      /* failed by the no-progress timeout */
    uint8_t shutdown_phase; /* 1: notice sent, waiting for the PING ACK */
    bool read_paused;       /* reading paused and counted as a limit hit */
};

/* ------------------------------------------------------------------------ */
/* Context                                                                   */
/* ------------------------------------------------------------------------ */

h2_rv h2_ctx_init(h2_ctx *x, const h2_limits *limits, const h2_mem *mem)
{
    memset(x, 0, sizeof *x);
    x->limits = limits ? limits : h2_limits_default();
    x->mem = mem ? mem : h2_mem_default();
    if (h2_limits_check(x->limits))
        return H2_E_INVAL;
    uint32_t soft = x->limits->max_header_fields_soft;
    x->fields = h2_malloc(x->mem, soft * sizeof(hpack_field));
    x->fieldbuf = h2_malloc(x->mem, x->limits->max_header_list_size);
    if (!x->fields || !x->fieldbuf) {
        h2_free(x->mem, x->fields);
        h2_free(x->mem, x->fieldbuf);
        return H2_E_NOMEM;
    }
    pool_init(&x->streams, sizeof(h2_stream), 4096, x->mem);
    pool_init(&x->chunks, sizeof(h2_chunk), 8192, x->mem);
    pool_init(&x->blocks, (uint32_t)sizeof(out_block) + H2_OUT_BLOCK_SIZE, 256, x->mem);
    pool_init(&x->small_blocks, (uint32_t)sizeof(out_block) + H2_OUT_SMALL_BLOCK_SIZE, 1024,
              x->mem);
    pool_init(&x->tables, (uint32_t)sizeof(stream_tables), 1024, x->mem);
    pool_init(&x->segs, NSEG * (uint32_t)sizeof(seg), 1024, x->mem);
    hpack_static_digests(h2_http_field_digest, x->static_digests);
    return H2_OK;
}

void h2_ctx_pool_bytes(const h2_ctx *x, uint64_t *live, uint64_t *free_bytes)
{
    const h2_pool *p[] = {&x->streams,      &x->chunks, &x->blocks,
                          &x->small_blocks, &x->segs,   &x->tables};
    *live = *free_bytes = 0;
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        *live += (uint64_t)p[i]->live * p[i]->size;
        *free_bytes += (uint64_t)p[i]->nfree * p[i]->size;
    }
}

void h2_ctx_free(h2_ctx *x)
{
    pool_drain(&x->streams);
    pool_drain(&x->chunks);
    pool_drain(&x->blocks);
    pool_drain(&x->small_blocks);
    pool_drain(&x->tables);
    pool_drain(&x->segs);
    h2_free(x->mem, x->fields);
    h2_free(x->mem, x->fieldbuf);
    x->fields = NULL;
    x->fieldbuf = NULL;
}

/* ------------------------------------------------------------------------ */
/* Output chain                                                              */
/*                                                                           */
/* Every byte the engine generates (frame headers, control frames, header   */
/* blocks) is appended to a FIFO of blocks; DATA payloads are not copied but */
/* recorded as segments inserted at a chain position.  Output is consumed   */
/* strictly in order, so positions are plain 64-bit counters.               */
/* ------------------------------------------------------------------------ */

static const h2_mem *cmem(const h2_conn *c)
{
    return c->x->mem;
}

static out_block *block_new(h2_conn *c, uint32_t need)
{
    out_block *b;
    /* Output that starts small (a preface, a PING ACK on an idle
     * connection) takes a small block: a burst of new connections must not
     * pin 16 KiB each. */
    if (!c->otail && need <= H2_OUT_SMALL_BLOCK_SIZE) {
        b = pool_get(&c->x->small_blocks);
        if (!b)
            return NULL;
        b->cap = H2_OUT_SMALL_BLOCK_SIZE;
    } else if (need <= H2_OUT_BLOCK_SIZE) {
        b = pool_get(&c->x->blocks);
        if (!b)
            return NULL;
        b->cap = H2_OUT_BLOCK_SIZE;
    } else {
        b = h2_malloc(cmem(c), sizeof(out_block) + need);
        if (!b)
            return NULL;
        b->cap = need;
    }
    b->next = NULL;
    b->used = 0;
    return b;
}

static void block_free(h2_conn *c, out_block *b)
{
    if (b->cap == H2_OUT_BLOCK_SIZE)
        pool_put(&c->x->blocks, b);
    else if (b->cap == H2_OUT_SMALL_BLOCK_SIZE)
        pool_put(&c->x->small_blocks, b);
    else
        h2_free(cmem(c), b);
}

/* n contiguous writable bytes at the chain's end, or NULL (no memory). */
static uint8_t *out_reserve(h2_conn *c, uint32_t n)
{
    out_block *t = c->otail;
    if (t && t->cap - t->used >= n)
        return t->data + t->used;
    out_block *b = block_new(c, n);
    if (!b)
        return NULL;
    if (t) {
        t->next = b;
    } else {
        c->ohead = b;
        c->ohead_off = 0;
    }
    c->otail = b;
    return b->data;
}

static uint64_t unsent(const h2_conn *c)
{
    return (c->chain_w - c->chain_r) + c->seg_bytes;
}

/* Output the peer owes us progress on: sent-but-unwritten bytes and body
 * bytes waiting for a window.  Both count for the no-progress timeout. */
static bool output_pending(const h2_conn *c)
{
    return unsent(c) || c->unframed;
}

static void out_advance(h2_conn *c, uint32_t n)
{
    if (!output_pending(c))
        c->progress_ms = c->now; /* output just became pending */
    c->otail->used += n;
    c->chain_w += n;
}

static void chunk_release(h2_conn *c, h2_chunk *ch)
{
    if (ch->release)
        ch->release(ch->release_ctx, ch->data, (size_t)ch->len);
    pool_put(&c->x->chunks, ch);
}

/* Chunks copied whole into the chain (INLINE_MAX) go back to the
 * application once the chain is written up to pos (the bytes went out, as
 * for a referenced chunk), or all of them when the connection is freed. */
static void release_copied(h2_conn *c, uint64_t pos)
{
    while (c->copied && c->copied->done_pos <= pos) {
        h2_chunk *ch = c->copied;
        c->copied = ch->next;
        if (!c->copied)
            c->copied_tail = NULL;
        chunk_release(c, ch);
    }
}

static void chain_consume(h2_conn *c, uint64_t n)
{
    while (n) {
        out_block *b = c->ohead;
        uint32_t avail = b->used - c->ohead_off;
        if (n < avail) {
            c->ohead_off += (uint32_t)n;
            c->chain_r += n;
            return;
        }
        c->chain_r += avail;
        n -= avail;
        c->ohead_off = 0;
        if (b == c->otail) {
            b->used = 0; /* everything written: reuse from the start */
        } else {
            c->ohead = b->next;
            block_free(c, b);
        }
    }
}

/* Forget the control replies known to be written.  Replies are counted
 * (ctrl_pending) when queued; the ctrl_old of them queued before ctrl_mark
 * was taken end before that chain position, so once the output is written
 * past it they are out.  The count may include replies written since (at
 * most one commit's worth), never omits an unwritten one. */
static void ctrl_settle(h2_conn *c)
{
    if (c->ctrl_pending && c->chain_r >= c->ctrl_mark) {
        c->ctrl_pending -= c->ctrl_old;
        c->ctrl_old = c->ctrl_pending;
        c->ctrl_mark = c->chain_w;
    }
}

/* Give memory back once all output is written: an idle connection holds no
 * output block and no segment ring. */
static void out_trim(h2_conn *c)
{
    if (c->chain_r != c->chain_w || c->seg_count)
        return;
    c->ctrl_pending = 0; /* every control reply is out */
    c->ctrl_old = 0;
    /* A busy connection keeps its (emptied) block and ring for the next
     * response; they go back when it has no stream left. */
    if (c->nstreams && c->ohead == c->otail)
        return;
    while (c->ohead) {
        out_block *b = c->ohead;
        c->ohead = b->next;
        block_free(c, b);
    }
    c->otail = NULL;
    c->ohead_off = 0;
    if (c->segs) {
        pool_put(&c->x->segs, c->segs);
        c->segs = NULL;
        c->seg_head = 0;
        c->seg_off = 0;
    }
}

static bool segs_ready(h2_conn *c)
{
    if (!c->segs) {
        c->segs = pool_get(&c->x->segs);
        if (!c->segs)
            return false;
        c->seg_head = 0;
        c->seg_count = 0;
        c->seg_off = 0;
    }
    return true;
}

/* The ring exists (segs_ready) and has room (!seg_full): cannot fail. */
static void seg_push(h2_conn *c, const uint8_t *p, uint32_t len, h2_chunk *ch)
{
    seg *s = &c->segs[(c->seg_head + c->seg_count) % NSEG];
    s->pos = c->chain_w;
    s->p = p;
    s->len = len;
    s->chunk = ch;
    c->seg_count++;
    c->seg_bytes += len;
    ch->refs++;
}

static bool seg_full(const h2_conn *c)
{
    return c->segs && c->seg_count == NSEG;
}

/* Append a frame whose payload the writer produces.  Returns false on
 * allocation failure (the connection is then failed by the caller). */
static uint8_t *frame_begin(h2_conn *c, uint32_t payload_len)
{
    return out_reserve(c, H2_FRAME_HDR_LEN + payload_len);
}

static void frame_end(h2_conn *c, const uint8_t *start, const uint8_t *end)
{
    out_advance(c, (uint32_t)(end - start));
}

/* reply: the peer provoked it (a stream error), so it counts against
 * max_pending_control; RST_STREAMs we send of our own accord do not. */
static bool put_rst(h2_conn *c, uint32_t sid, uint32_t code, bool reply)
{
    uint8_t *p = frame_begin(c, 4);
    if (!p)
        return false;
    frame_end(c, p, h2_frame_write_rst_stream(p, sid, code));
    c->ctrl_pending += reply;
    c->stats.resets_sent++;
    return true;
}

static bool put_window_update(h2_conn *c, uint32_t sid, uint32_t incr)
{
    uint8_t *p = frame_begin(c, 4);
    if (!p)
        return false;
    frame_end(c, p, h2_frame_write_window_update(p, sid, incr));
    return true;
}

static bool put_goaway(h2_conn *c, uint32_t last, uint32_t code, const char *debug)
{
    uint32_t dlen = debug ? (uint32_t)strlen(debug) : 0;
    uint8_t *p = frame_begin(c, 8 + dlen);
    if (!p)
        return false;
    frame_end(c, p, h2_frame_write_goaway(p, last, code, (const uint8_t *)debug, dlen));
    return true;
}

static bool put_ping(h2_conn *c, bool ack, const uint8_t opaque[8])
{
    uint8_t *p = frame_begin(c, 8);
    if (!p)
        return false;
    frame_end(c, p, h2_frame_write_ping(p, ack, opaque));
    if (ack)
        c->ctrl_pending++;
    return true;
}

static uint32_t send_frame_max(const h2_conn *c)
{
    uint32_t m = c->lim->max_send_frame_size;
    return c->peer_max_frame < m ? c->peer_max_frame : m;
}

/* HEADERS (+ CONTINUATION) for the fields a then b, HPACK-encoded into the
 * chain.  Encoding happens here, in wire order, so the peer's decoder sees
 * blocks in the order our encoder produced them. */
static h2_rv put_header_block(h2_conn *c, uint32_t sid, const hpack_field *a, size_t na,
                              const hpack_field *b, size_t nb, bool end_stream)
{
    size_t bound = hpack_encode_bound(a, na) + hpack_encode_bound(b, nb);
    uint32_t maxf = send_frame_max(c);
    size_t nframes = bound / maxf + 1;
    size_t room = bound + nframes * H2_FRAME_HDR_LEN;
    if (room > UINT32_MAX / 2)
        return H2_E_INVAL;
    uint8_t *p = out_reserve(c, (uint32_t)room);
    if (!p)
        return H2_E_NOMEM;
    /* Encode at the tail of the reserved room, then move the pieces forward
     * with a frame header in front of each. */
    uint8_t *src = p + (room - bound);
    size_t la = 0, lb = 0;
    h2_rv rv = hpack_encode_block(&c->enc, a, na, src, bound, &la);
    if (rv == H2_OK && nb)
        rv = hpack_encode_block(&c->enc, b, nb, src + la, bound - la, &lb);
    if (rv != H2_OK)
        return rv;
    size_t len = la + lb;
    uint8_t *w = p;
    bool first = true;
    do {
        uint32_t piece = len > maxf ? maxf : (uint32_t)len;
        len -= piece;
        uint8_t type = first ? H2_FT_HEADERS : H2_FT_CONTINUATION;
        uint8_t flags = (uint8_t)((len == 0 ? H2_FLAG_END_HEADERS : 0) |
                                  (first && end_stream ? H2_FLAG_END_STREAM : 0));
        h2_frame_hdr_write(w, piece, type, flags, sid);
        memmove(w + H2_FRAME_HDR_LEN, src, piece);
        w += H2_FRAME_HDR_LEN + piece;
        src += piece;
        first = false;
    } while (len);
    out_advance(c, (uint32_t)(w - p));
    return H2_OK;
}

/* ------------------------------------------------------------------------ */
/* Connection failure                                                        */
/* ------------------------------------------------------------------------ */

static h2_rv conn_fail(h2_conn *c, h2_code code, const char *reason)
{
    if (c->dead)
        return H2_E_PROTO;
    c->fault = h2_fault_conn(code, reason);
    c->dead = true;
    c->rstate = R_DEAD;
    /* Best effort: without memory the caller still closes. */
    (void)put_goaway(c, c->last_delivered_sid, code, reason);
    c->goaway_sent = true;
    c->goaway_last = c->last_delivered_sid;
    return H2_E_PROTO;
}

static void hit(h2_conn *c, h2_limit_id id)
{
    c->x->limit_hits[id]++;
}

/* A limit ended the connection: count it, GOAWAY with its reason. */
static h2_rv limit_fail(h2_conn *c, h2_limit_id id, h2_code code, const char *reason)
{
    if (!c->dead)
        hit(c, id);
    return conn_fail(c, code, reason);
}

static h2_rv nomem(h2_conn *c)
{
    c->fault = h2_fault_conn(H2_INTERNAL_ERROR, "out of memory");
    c->dead = true;
    c->rstate = R_DEAD;
    return H2_E_NOMEM;
}

/* A peer action that costs us work for nothing (security.md "glitches"). */
static h2_rv glitch(h2_conn *c)
{
    c->stats.glitches++;
    if (h2_bucket_take(&c->glitches, c->now) != 0)
        return limit_fail(c, H2_LIMIT_GLITCHES, H2_ENHANCE_YOUR_CALM, "too many glitches");
    return H2_OK;
}

/* ------------------------------------------------------------------------ */
/* Streams                                                                   */
/* ------------------------------------------------------------------------ */

static h2_stream **bucket_of(h2_conn *c, uint32_t id)
{
    return &c->st->buckets[(id >> 1) % NBUCKETS];
}

static h2_stream *stream_find(const h2_conn *c, uint32_t id)
{
    stream_tables *t = c->st;
    if (!t)
        return NULL;
    if (t->last && t->last->id == id)
        return t->last;
    h2_stream *s = t->buckets[(id >> 1) % NBUCKETS];
    while (s && s->id != id)
        s = s->hnext;
    if (s)
        t->last = s;
    return s;
}

static void reset_remember(h2_conn *c, uint32_t id)
{
    uint32_t n = c->lim->reset_memory;
    if (!n)
        return;
    if (!c->rring) {
        c->rring = h2_malloc(cmem(c), n * sizeof(uint32_t));
        if (!c->rring)
            return; /* only tolerance of late frames is lost */
        memset(c->rring, 0, n * sizeof(uint32_t));
    }
    c->rring[c->rring_pos] = id;
    c->rring_pos = (c->rring_pos + 1) % n;
}

static bool reset_recent(const h2_conn *c, uint32_t id)
{
    if (!c->rring)
        return false;
    for (uint32_t i = 0; i < c->lim->reset_memory; i++)
        if (c->rring[i] == id)
            return true;
    return false;
}

/* A stream opened after our GOAWAY: never processed, its frames ignored. */
static bool ignored_after_goaway(const h2_conn *c, uint32_t id)
{
    return c->goaway_sent && id > c->goaway_last;
}

static void sched_remove(h2_conn *c, h2_stream *s)
{
    if (!(s->flags & F_IN_SCHED))
        return;
    h2_stream **pp = &c->st->rq_head[s->urgency], *prev = NULL;
    while (*pp != s) {
        prev = *pp;
        pp = &(*pp)->snext;
    }
    *pp = s->snext;
    if (c->st->rq_tail[s->urgency] == s)
        c->st->rq_tail[s->urgency] = prev;
    s->snext = NULL;
    s->flags &= (uint16_t)~F_IN_SCHED;
    c->nready--;
}

static void trailers_free(h2_conn *c, trailers *t)
{
    if (t->pooled)
        pool_put(&c->x->blocks, t);
    else
        h2_free(cmem(c), t);
}

/* Drop a stream's unframed data.  Chunks with framed bytes still in flight
 * are released when their last segment is committed. */
static void stream_drop_data(h2_conn *c, h2_stream *s)
{
    h2_chunk *ch = s->ch_head;
    while (ch) {
        h2_chunk *next = ch->next;
        if (ch->refs)
            ch->orphan = true;
        else
            chunk_release(c, ch);
        ch = next;
    }
    s->ch_head = s->ch_tail = NULL;
    c->unframed -= s->unframed;
    s->unframed = 0;
    if (s->trailers) {
        trailers_free(c, s->trailers);
        s->trailers = NULL;
    }
    sched_remove(c, s);
}

static void credit_conn(h2_conn *c, uint64_t n);

/* Free the stream if nothing refers to it any more: closed on the wire and
 * not held by the application. */
static void stream_maybe_free(h2_conn *c, h2_stream *s)
{
    if (s->state != S_CLOSED || (s->flags & F_DELIVERED))
        return;
    stream_drop_data(c, s);
    h2_stream **pp = bucket_of(c, s->id);
    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    if (c->st->last == s)
        c->st->last = NULL;
    c->nstreams--;
    /* Delivered body bytes never consumed still occupy the connection
     * window: give them back. */
    if (s->recv_held)
        credit_conn(c, s->recv_held);
    pool_put(&c->x->streams, s);
    if (c->nstreams == 0) {
        pool_put(&c->x->tables, c->st); /* nothing is queued: no stream left */
        c->st = NULL;
        out_trim(c);
    }
}

static void stream_close(h2_conn *c, h2_stream *s)
{
    s->state = S_CLOSED;
    stream_drop_data(c, s);
}

/* Our END_STREAM went out (framed). */
static void stream_local_end(h2_conn *c, h2_stream *s)
{
    s->flags |= F_END_SENT;
    if (s->state == S_OPEN) {
        s->state = S_HALF_LOCAL;
        /* RFC 9113 §8.1: a complete response may end a request body the
         * handler no longer wants with RST_STREAM NO_ERROR. */
        if (!(s->flags & F_DELIVERED)) {
            if (put_rst(c, s->id, H2_NO_ERROR, false))
                s->flags |= F_RESET_SENT;
            s->state = S_CLOSED;
            reset_remember(c, s->id);
        }
    } else if (s->state == S_HALF_REMOTE) {
        s->state = S_CLOSED;
    }
}

/* The peer's END_STREAM arrived. */
static void stream_remote_end(h2_stream *s)
{
    if (s->state == S_OPEN)
        s->state = S_HALF_REMOTE;
    else if (s->state == S_HALF_LOCAL)
        s->state = S_CLOSED;
}

/* Reset a stream because of the peer (stream error) or the application.
 * Fills ev with a STREAM_RESET when the application holds the stream. */
static h2_rv stream_reset(h2_conn *c, h2_stream *s, h2_code code, h2_event *ev, bool app)
{
    if (!put_rst(c, s->id, code, !app))
        return nomem(c);
    bool was_open = s->state != S_CLOSED;
    s->flags |= F_RESET_SENT;
    reset_remember(c, s->id);
    stream_close(c, s);
    if (was_open && (s->flags & F_DELIVERED) && ev && !app) {
        ev->type = H2_EV_STREAM_RESET;
        ev->stream_id = s->id;
        ev->end_stream = false;
        ev->u.reset.code = code;
        ev->u.reset.remote = false;
    }
    stream_maybe_free(c, s);
    /* MadeYouReset (CVE-2025-8671): resets the peer provokes cost budget. */
    return app ? H2_OK : glitch(c);
}

/* A stream error on an id that has no stream object (idle or forgotten). */
static h2_rv stream_error_id(h2_conn *c, uint32_t id, h2_code code)
{
    if (!put_rst(c, id, code, true))
        return nomem(c);
    reset_remember(c, id);
    return glitch(c);
}

/* ------------------------------------------------------------------------ */
/* Scheduler (RFC 9218: urgency 0..7, round robin within an urgency)         */
/* ------------------------------------------------------------------------ */

/* Can the stream produce a frame, windows of the connection aside? */
static bool stream_framable(const h2_stream *s)
{
    if (s->state == S_CLOSED || (s->flags & F_END_SENT) || !(s->flags & F_HEAD_SENT))
        return false;
    if (s->ch_head)
        return s->send_window > 0;
    return (s->flags & F_END_QUEUED) != 0; /* empty END_STREAM or trailers */
}

static bool stream_needs_window(const h2_stream *s)
{
    return s->ch_head != NULL;
}

static void sched_push(h2_conn *c, h2_stream *s)
{
    if ((s->flags & F_IN_SCHED) || !stream_framable(s))
        return;
    s->snext = NULL;
    if (c->st->rq_tail[s->urgency])
        c->st->rq_tail[s->urgency]->snext = s;
    else
        c->st->rq_head[s->urgency] = s;
    c->st->rq_tail[s->urgency] = s;
    s->flags |= F_IN_SCHED;
    c->nready++;
}

/* The first ready stream in urgency order; when the connection window is
 * closed only streams that need no window qualify. */
static h2_stream *sched_pick(h2_conn *c)
{
    if (!c->nready)
        return NULL;
    bool window = c->send_window > 0;
    for (uint32_t u = 0; u < NURGENCY; u++)
        for (h2_stream *s = c->st->rq_head[u]; s; s = s->snext)
            if (window || !stream_needs_window(s)) {
                sched_remove(c, s);
                return s;
            }
    return NULL;
}

static h2_rv put_trailers(h2_conn *c, h2_stream *s)
{
    trailers *t = s->trailers;
    h2_rv rv = put_header_block(c, s->id, t->f, t->n, NULL, 0, true);
    trailers_free(c, t);
    s->trailers = NULL;
    return rv;
}

/* Frame up to one quantum of the stream's data (budget permitting). */
static h2_rv frame_stream(h2_conn *c, h2_stream *s, uint64_t budget)
{
    uint64_t quantum = QUANTUM;
    uint32_t maxf = send_frame_max(c);
    while (s->ch_head && quantum && budget && !seg_full(c)) {
        h2_chunk *ch = s->ch_head;
        uint64_t n = ch->len - ch->framed;
        int64_t win = s->send_window < c->send_window ? s->send_window : c->send_window;
        if (win <= 0)
            break;
        if (n > (uint64_t)win)
            n = (uint64_t)win;
        if (n > maxf)
            n = maxf;
        if (n > quantum)
            n = quantum;
        if (n > budget)
            n = budget;
        bool chunk_done = ch->framed + n == ch->len;
        bool last = chunk_done && !ch->next && (s->flags & F_END_QUEUED) && !s->trailers;
        /* Everything the frame needs first, so a failure leaves no frame
         * header without its payload in the output. */
        /* Only a whole chunk is copied: a piece of one that has segments
         * would be released with them, before its copy went out. */
        bool copy = n <= INLINE_MAX && ch->framed == 0 && chunk_done;
        if (!copy && !segs_ready(c))
            return nomem(c);
        uint8_t *p = out_reserve(c, H2_FRAME_HDR_LEN + (copy ? (uint32_t)n : 0));
        if (!p)
            return nomem(c);
        h2_frame_hdr_write(p, (uint32_t)n, H2_FT_DATA, last ? H2_FLAG_END_STREAM : 0, s->id);
        if (copy) {
            memcpy(p + H2_FRAME_HDR_LEN, ch->data + ch->framed, (size_t)n);
            out_advance(c, H2_FRAME_HDR_LEN + (uint32_t)n);
        } else {
            out_advance(c, H2_FRAME_HDR_LEN);
            seg_push(c, ch->data + ch->framed, (uint32_t)n, ch);
        }
        ch->framed += n;
        s->unframed -= n;
        c->unframed -= n;
        s->send_window -= (int64_t)n;
        c->send_window -= (int64_t)n;
        quantum -= n;
        budget -= n < budget ? n : budget;
        if (chunk_done) {
            s->ch_head = ch->next;
            if (!s->ch_head)
                s->ch_tail = NULL;
            ch->next = NULL;
            ch->orphan = true;   /* no stream list holds it: last segment releases */
            if (ch->refs == 0) { /* no segment: copied whole */
                ch->done_pos = c->chain_w;
                if (c->copied_tail)
                    c->copied_tail->next = ch;
                else
                    c->copied = ch;
                c->copied_tail = ch;
            }
        }
        if (last) {
            stream_local_end(c, s);
            return H2_OK;
        }
    }
    if (!s->ch_head && (s->flags & F_END_QUEUED) && !(s->flags & F_END_SENT)) {
        if (s->trailers) {
            h2_rv rv = put_trailers(c, s);
            if (rv != H2_OK)
                return rv == H2_E_NOMEM ? nomem(c) : rv;
        } else {
            uint8_t *p = out_reserve(c, H2_FRAME_HDR_LEN);
            if (!p)
                return nomem(c);
            h2_frame_hdr_write(p, 0, H2_FT_DATA, H2_FLAG_END_STREAM, s->id);
            out_advance(c, H2_FRAME_HDR_LEN);
        }
        stream_local_end(c, s);
    }
    return H2_OK;
}

static void schedule(h2_conn *c, uint64_t budget)
{
    while (!c->dead && unsent(c) < budget && !seg_full(c)) {
        h2_stream *s = sched_pick(c);
        if (!s)
            break;
        if (frame_stream(c, s, budget - unsent(c)) != H2_OK)
            break;
        if (s->state == S_CLOSED)
            stream_maybe_free(c, s);
        else
            sched_push(c, s);
    }
}

/* ------------------------------------------------------------------------ */
/* Inbound flow control                                                      */
/* ------------------------------------------------------------------------ */

/* Bytes the application consumed (or that we discarded) reopen the
 * connection window; WINDOW_UPDATEs are coalesced to half a window. */
static void credit_conn(h2_conn *c, uint64_t n)
{
    uint64_t u = c->recv_unacked + n;
    if (u >= c->lim->connection_window / 2) {
        /* Never grant beyond our configured window. */
        int64_t room = (int64_t)c->lim->connection_window - c->recv_window;
        uint32_t incr = (uint32_t)(room < (int64_t)u ? room : (int64_t)u);
        if (incr && put_window_update(c, 0, incr))
            c->recv_window += incr;
        u = 0;
    }
    c->recv_unacked = (uint32_t)u;
}

static void credit_stream(h2_conn *c, h2_stream *s, uint64_t n)
{
    if (s->state == S_HALF_REMOTE || s->state == S_CLOSED)
        return; /* the peer sends no more: a WINDOW_UPDATE would be noise */
    uint64_t u = s->recv_unacked + n;
    if (u >= c->local_iws / 2) {
        int64_t room = (int64_t)c->local_iws - s->recv_window;
        uint32_t incr = (uint32_t)(room < (int64_t)u ? (room > 0 ? room : 0) : (int64_t)u);
        if (incr && put_window_update(c, s->id, incr))
            s->recv_window += incr;
        u = 0;
    }
    s->recv_unacked = (uint32_t)u;
}

/* ------------------------------------------------------------------------ */
/* Header blocks                                                             */
/* ------------------------------------------------------------------------ */

static h2_rv respond_431(h2_conn *c, uint32_t sid, bool end_stream)
{
    static const hpack_field st = {(const uint8_t *)":status", (const uint8_t *)"431", 7, 3, 0, 0};
    h2_rv rv = put_header_block(c, sid, &st, 1, NULL, 0, true);
    if (rv != H2_OK)
        return rv == H2_E_NOMEM ? nomem(c) : conn_fail(c, H2_INTERNAL_ERROR, "encoder failed");
    if (!end_stream && !put_rst(c, sid, H2_NO_ERROR, true))
        return nomem(c);
    reset_remember(c, sid);
    return glitch(c);
}

/* Trailers on an existing stream. */
static h2_rv on_trailers(h2_conn *c, h2_stream *s, const hpack_sink *sk, bool end_stream,
                         h2_event *ev)
{
    if (s->flags & F_RESET_SENT)
        return H2_OK; /* late frame on a stream we reset */
    if (s->state == S_HALF_REMOTE || s->state == S_CLOSED)
        return stream_reset(c, s, H2_STREAM_CLOSED, ev, false);
    if (!(s->flags & F_DELIVERED)) {
        /* The handler is gone; the request just ends. */
        if (end_stream) {
            stream_remote_end(s);
            stream_maybe_free(c, s);
        }
        return H2_OK;
    }
    if (!end_stream || sk->overflow)
        return stream_reset(c, s, H2_PROTOCOL_ERROR, ev, false);
    h2_fault f = h2_http_check_trailers(sk->fields, sk->count);
    if (!h2_fault_ok(f))
        return stream_reset(c, s, f.code, ev, false);
    if (s->content_length >= 0 && s->data_recv != (uint64_t)s->content_length)
        return stream_reset(c, s, H2_PROTOCOL_ERROR, ev, false);
    stream_remote_end(s);
    ev->type = H2_EV_TRAILERS;
    ev->stream_id = s->id;
    ev->end_stream = true;
    ev->u.trailers.fields = sk->fields;
    ev->u.trailers.n = sk->count;
    if (s->state == S_CLOSED)
        stream_maybe_free(c, s);
    return H2_OK;
}

static h2_rv on_header_block(h2_conn *c, uint32_t sid, const uint8_t *block, uint32_t len,
                             bool end_stream, bool selfdep, h2_event *ev)
{
    const h2_limits *l = c->lim;
    h2_ctx *x = c->x;
    hpack_sink sk = {
        .fields = x->fields,
        .fields_cap = l->max_header_fields_soft,
        .buf = x->fieldbuf,
        .buf_cap = l->max_header_list_size,
        .soft_list_size = l->max_header_list_size,
        .hard_list_size = l->max_header_list_size * l->header_list_hard_factor,
        .soft_fields = l->max_header_fields_soft,
        .hard_fields = l->max_header_fields_hard,
        .digest = h2_http_field_digest,
        .static_digests = x->static_digests,
    };
    /* Decode first, whatever becomes of the stream: the decoder must stay in
     * step with the peer's encoder (RFC 9113 §4.3). */
    h2_rv rv = hpack_decode_block(&c->dec, block, len, &sk);
    if (rv == H2_E_NOMEM)
        return nomem(c);
    if (rv == H2_E_LIMIT)
        return limit_fail(c, H2_LIMIT_HEADER_LIST, H2_ENHANCE_YOUR_CALM, "header list too large");
    if (rv != H2_OK)
        return conn_fail(c, H2_COMPRESSION_ERROR, "header block decoding failed");

    /* An id above every one seen cannot name a stream: skip the lookup. */
    h2_stream *s = sid <= c->last_peer_sid ? stream_find(c, sid) : NULL;
    if (s)
        return on_trailers(c, s, &sk, end_stream, ev);
    if (sid <= c->last_peer_sid) {
        /* A stream that existed.  Ours to ignore if we reset it lately, or
         * if it came after our GOAWAY (never processed). */
        if (reset_recent(c, sid) || ignored_after_goaway(c, sid))
            return H2_OK;
        /* Without history we cannot tell a closed stream from a skipped
         * id; the newest one is certainly closed (§5.1), an older one is
         * taken as a new stream with a decreasing id (§5.1.1). */
        if (sid == c->last_peer_sid)
            return conn_fail(c, H2_STREAM_CLOSED, "HEADERS on a closed stream");
        return conn_fail(c, H2_PROTOCOL_ERROR, "stream id not increasing");
    }
    c->last_peer_sid = sid;
    if (c->goaway_sent && sid > c->goaway_last)
        return H2_OK; /* RFC 9113 §6.8: streams after our GOAWAY are ignored */
    if (selfdep)
        return stream_error_id(c, sid, H2_PROTOCOL_ERROR);
    if (c->nstreams >= l->max_concurrent_streams) {
        c->stats.refused++;
        hit(c, H2_LIMIT_STREAMS);
        return stream_error_id(c, sid, H2_REFUSED_STREAM);
    }
    if (sk.overflow) {
        hit(c, H2_LIMIT_HEADER_LIST);
        return respond_431(c, sid, end_stream);
    }

    h2_req_head head;
    h2_fault f = h2_http_parse_request(sk.fields, sk.count, l->enable_connect_protocol != 0, &head);
    if (!h2_fault_ok(f))
        return stream_error_id(c, sid, f.code);
    if (end_stream && head.content_length > 0)
        return stream_error_id(c, sid, H2_PROTOCOL_ERROR);

    s = pool_get(&x->streams);
    if (!s)
        return nomem(c);
    memset(s, 0, sizeof *s);
    s->id = sid;
    s->state = end_stream ? S_HALF_REMOTE : S_OPEN;
    s->flags = F_DELIVERED | (head.incremental ? F_INCREMENTAL : 0);
    s->urgency = head.urgency < NURGENCY ? head.urgency : H2_URGENCY_DEFAULT;
    s->send_window = c->peer_iws;
    s->recv_window = c->local_iws;
    s->content_length = head.content_length;
    if (!c->st) {
        c->st = pool_get(&x->tables);
        if (!c->st) {
            pool_put(&x->streams, s);
            return nomem(c);
        }
        memset(c->st, 0, sizeof *c->st);
    }
    h2_stream **b = bucket_of(c, sid);
    s->hnext = *b;
    *b = s;
    c->st->last = s;
    c->nstreams++;
    c->last_delivered_sid = sid;
    c->stats.requests++;
    if (l->max_requests && c->stats.requests >= l->max_requests && !c->goaway_sent) {
        /* Enough for one connection: finish this one, refuse later ones. */
        if (!put_goaway(c, sid, H2_NO_ERROR, "max requests"))
            return nomem(c);
        hit(c, H2_LIMIT_MAX_REQUESTS);
        c->goaway_sent = true;
        c->goaway_last = sid;
    }
    ev->type = H2_EV_REQUEST;
    ev->stream_id = sid;
    ev->end_stream = end_stream;
    ev->u.request = head;
    return H2_OK;
}

static h2_rv hb_append(h2_conn *c, const uint8_t *p, uint32_t n)
{
    if ((uint64_t)c->hb_len + n > c->lim->max_header_block)
        return limit_fail(c, H2_LIMIT_HEADER_BLOCK, H2_ENHANCE_YOUR_CALM, "header block too large");
    if (c->hb_len + n > c->hb_cap) {
        uint32_t cap = c->hb_cap ? c->hb_cap : 4096;
        while (cap < c->hb_len + n)
            cap *= 2;
        if (cap > c->lim->max_header_block)
            cap = c->lim->max_header_block;
        uint8_t *nb = h2_realloc(cmem(c), c->hb, cap);
        if (!nb)
            return nomem(c);
        c->hb = nb;
        c->hb_cap = cap;
    }
    if (n)
        memcpy(c->hb + c->hb_len, p, n);
    c->hb_len += n;
    return H2_OK;
}

static void hb_reset(h2_conn *c)
{
    h2_free(cmem(c), c->hb);
    c->hb = NULL;
    c->hb_len = c->hb_cap = 0;
    c->hb_active = false;
}

/* ------------------------------------------------------------------------ */
/* Frame handlers (one per type; dispatched through a table)                 */
/* ------------------------------------------------------------------------ */

typedef h2_rv (*frame_fn)(h2_conn *c, const h2_frame *f, h2_event *ev);

static h2_rv on_headers(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    uint32_t sid = f->hdr.stream_id;
    if ((sid & 1u) == 0)
        return conn_fail(c, H2_PROTOCOL_ERROR, "even stream id from a client");
    bool end_stream = (f->hdr.flags & H2_FLAG_END_STREAM) != 0;
    const h2_headers *h = &f->u.headers;
    if (h->block_len > c->lim->max_header_block)
        return limit_fail(c, H2_LIMIT_HEADER_BLOCK, H2_ENHANCE_YOUR_CALM, "header block too large");
    bool selfdep = h->has_priority && h->priority.dependency == sid;
    if (f->hdr.flags & H2_FLAG_END_HEADERS)
        return on_header_block(c, sid, h->block, h->block_len, end_stream, selfdep, ev);
    if (h->block_len == 0) {
        h2_rv rv = glitch(c); /* empty non-final fragment (CVE-2019-9518) */
        if (rv != H2_OK)
            return rv;
    }
    c->hb_active = true;
    c->hb_sid = sid;
    c->hb_ncont = 0;
    c->hb_end_stream = end_stream;
    c->hb_selfdep = selfdep;
    c->hb_start_ms = c->now;
    c->hb_len = 0;
    return hb_append(c, h->block, h->block_len);
}

static h2_rv on_continuation(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    /* on_frame_head() already checked that a block is open on this stream. */
    if (++c->hb_ncont > c->lim->max_continuations)
        return limit_fail(c, H2_LIMIT_CONTINUATIONS, H2_ENHANCE_YOUR_CALM,
                          "too many CONTINUATION frames");
    uint32_t n = f->u.continuation.block_len;
    bool end = (f->hdr.flags & H2_FLAG_END_HEADERS) != 0;
    if (n == 0 && !end) {
        h2_rv rv = glitch(c);
        if (rv != H2_OK)
            return rv;
    }
    h2_rv rv = hb_append(c, f->u.continuation.block, n);
    if (rv != H2_OK || !end)
        return rv;
    rv = on_header_block(c, c->hb_sid, c->hb, c->hb_len, c->hb_end_stream, c->hb_selfdep, ev);
    /* Event fields point into the context scratch, not into hb: free it. */
    hb_reset(c);
    return rv;
}

static h2_rv on_priority(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    (void)f;
    (void)ev;
    /* RFC 9218 only: validated by the decoder, no tree kept (CVE-2019-9513). */
    return glitch(c);
}

static h2_rv on_rst_stream(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    uint32_t sid = f->hdr.stream_id;
    h2_stream *s = stream_find(c, sid);
    if (!s && sid > c->last_peer_sid)
        return conn_fail(c, H2_PROTOCOL_ERROR, "RST_STREAM on an idle stream");
    c->stats.resets_recv++;
    if (h2_bucket_take(&c->resets, c->now) != 0)
        return limit_fail(c, H2_LIMIT_RESETS, H2_ENHANCE_YOUR_CALM, "too many stream resets");
    if (!s || s->state == S_CLOSED)
        return H2_OK;
    stream_close(c, s);
    if (s->flags & F_DELIVERED) {
        ev->type = H2_EV_STREAM_RESET;
        ev->stream_id = sid;
        ev->end_stream = false;
        ev->u.reset.code = f->u.rst_code;
        ev->u.reset.remote = true;
    }
    stream_maybe_free(c, s);
    return H2_OK;
}

static void apply_local_settings(h2_conn *c)
{
    /* Our SETTINGS took effect: streams opened under the default window
     * move by the difference (RFC 9113 §6.9.2). */
    int64_t delta = (int64_t)c->lim->initial_window_size - (int64_t)c->local_iws;
    c->local_iws = c->lim->initial_window_size;
    if (delta && c->st)
        for (uint32_t b = 0; b < NBUCKETS; b++)
            for (h2_stream *s = c->st->buckets[b]; s; s = s->hnext)
                s->recv_window += delta;
    hpack_decoder_set_settings_max(&c->dec, c->lim->header_table_size);
}

static h2_rv peer_initial_window(h2_conn *c, uint32_t v)
{
    int64_t delta = (int64_t)v - (int64_t)c->peer_iws;
    c->peer_iws = v;
    for (uint32_t b = 0; c->st && b < NBUCKETS; b++)
        for (h2_stream *s = c->st->buckets[b]; s; s = s->hnext) {
            s->send_window += delta;
            if (s->send_window > (int64_t)H2_MAX_WINDOW)
                return conn_fail(c, H2_FLOW_CONTROL_ERROR, "initial window overflows a stream");
            sched_push(c, s);
        }
    return H2_OK;
}

static h2_rv on_settings(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    (void)ev;
    if (f->hdr.flags & H2_FLAG_ACK) {
        if (c->settings_unacked) {
            c->settings_unacked--;
            apply_local_settings(c);
        }
        return H2_OK;
    }
    uint32_t n = f->u.settings.n;
    if (n > c->lim->max_settings_entries)
        return limit_fail(c, H2_LIMIT_SETTINGS_ENTRIES, H2_ENHANCE_YOUR_CALM,
                          "too many SETTINGS entries");
    if (c->got_settings) {
        h2_rv rv = glitch(c); /* settings churn (CVE-2019-9515) */
        if (rv != H2_OK)
            return rv;
    }
    c->got_settings = true;
    for (uint32_t i = 0; i < n; i++) {
        h2_setting st = h2_settings_get(f->u.settings.entries, i);
        switch (st.id) {
        case H2_SET_HEADER_TABLE_SIZE: hpack_encoder_set_peer_table_size(&c->enc, st.value); break;
        case H2_SET_INITIAL_WINDOW_SIZE: {
            h2_rv rv = peer_initial_window(c, st.value);
            if (rv != H2_OK)
                return rv;
            break;
        }
        case H2_SET_MAX_FRAME_SIZE: c->peer_max_frame = st.value; break;
        case H2_SET_NO_RFC7540_PRIORITIES: c->no_rfc7540 = st.value == 1; break;
        default: break; /* validated by the decoder; nothing a server applies */
        }
    }
    uint8_t *p = frame_begin(c, 0);
    if (!p)
        return nomem(c);
    frame_end(c, p, h2_frame_write_settings_ack(p));
    c->ctrl_pending++;
    return H2_OK;
}

static h2_rv on_push_promise(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    (void)f;
    (void)ev;
    return conn_fail(c, H2_PROTOCOL_ERROR, "PUSH_PROMISE from a client");
}

static bool shutdown_final(h2_conn *c);

static h2_rv on_ping(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    if (!(f->hdr.flags & H2_FLAG_ACK))
        return put_ping(c, true, f->u.ping) ? H2_OK : nomem(c);
    if (c->shutdown_phase == 1 && memcmp(f->u.ping, SHUTDOWN_PING, 8) == 0)
        return shutdown_final(c) ? H2_OK : nomem(c); /* the peer saw the notice */
    ev->type = H2_EV_PING_ACK;
    ev->stream_id = 0;
    ev->end_stream = false;
    memcpy(ev->u.ping, f->u.ping, 8);
    return H2_OK;
}

static h2_rv on_goaway(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    c->goaway_recv = true;
    ev->type = H2_EV_GOAWAY;
    ev->stream_id = 0;
    ev->end_stream = false;
    ev->u.goaway.last_stream_id = f->u.goaway.last_stream_id;
    ev->u.goaway.code = f->u.goaway.code;
    ev->u.goaway.debug = f->u.goaway.debug;
    ev->u.goaway.debug_len = f->u.goaway.debug_len;
    return H2_OK;
}

static h2_rv on_window_update(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    uint32_t sid = f->hdr.stream_id;
    uint32_t incr = f->u.window_increment;
    if (sid == 0) {
        c->send_window += incr;
        if (c->send_window > (int64_t)H2_MAX_WINDOW)
            return conn_fail(c, H2_FLOW_CONTROL_ERROR, "connection window overflow");
    } else {
        h2_stream *s = stream_find(c, sid);
        if (!s) {
            if (sid > c->last_peer_sid)
                return conn_fail(c, H2_PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
            return H2_OK;
        }
        if (s->state == S_CLOSED)
            return H2_OK;
        s->send_window += incr;
        if (s->send_window > (int64_t)H2_MAX_WINDOW)
            return stream_reset(c, s, H2_FLOW_CONTROL_ERROR, ev, false);
        sched_push(c, s);
    }
    ev->type = H2_EV_WINDOW_UPDATE;
    ev->stream_id = sid;
    ev->end_stream = false;
    ev->u.window.increment = incr;
    return H2_OK;
}

static h2_rv on_priority_update(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    h2_stream *s = stream_find(c, f->u.priority_update.prioritized_id);
    if (!s || !(s->flags & F_DELIVERED))
        return H2_OK; /* RFC 9218 §7.1 lets us ignore it for streams not open */
    uint8_t u = s->urgency;
    bool inc = (s->flags & F_INCREMENTAL) != 0;
    h2_http_parse_priority(f->u.priority_update.field, f->u.priority_update.field_len, &u, &inc);
    if (u >= NURGENCY)
        u = H2_URGENCY_DEFAULT;
    bool queued = (s->flags & F_IN_SCHED) != 0;
    sched_remove(c, s);
    s->urgency = u;
    s->flags = (uint16_t)(inc ? s->flags | F_INCREMENTAL : s->flags & ~F_INCREMENTAL);
    if (queued)
        sched_push(c, s);
    ev->type = H2_EV_PRIORITY;
    ev->stream_id = s->id;
    ev->end_stream = false;
    ev->u.priority.urgency = u;
    ev->u.priority.incremental = inc;
    return H2_OK;
}

static const frame_fn frame_handlers[H2_FT_CONTINUATION + 1] = {
    [H2_FT_DATA] = NULL, /* streamed: see data_head() */
    [H2_FT_HEADERS] = on_headers,
    [H2_FT_PRIORITY] = on_priority,
    [H2_FT_RST_STREAM] = on_rst_stream,
    [H2_FT_SETTINGS] = on_settings,
    [H2_FT_PUSH_PROMISE] = on_push_promise,
    [H2_FT_PING] = on_ping,
    [H2_FT_GOAWAY] = on_goaway,
    [H2_FT_WINDOW_UPDATE] = on_window_update,
    [H2_FT_CONTINUATION] = on_continuation,
};

/* A complete non-DATA frame of a known type. */
static h2_rv on_frame(h2_conn *c, const uint8_t *payload, h2_event *ev)
{
    h2_frame f;
    h2_fault fl = h2_frame_decode(&c->fh, payload, &f);
    if (fl.scope == H2_SCOPE_CONN)
        return conn_fail(c, fl.code, fl.reason);
    if (fl.scope == H2_SCOPE_STREAM) {
        uint32_t sid = c->fh.stream_id;
        if (c->fh.type == H2_FT_HEADERS) {
            /* A self-dependent HEADERS is a stream error, but its block
             * must still be decoded to keep HPACK in step. */
            uint32_t off = 0, pad = 0;
            if (c->fh.flags & H2_FLAG_PADDED) {
                pad = payload[0];
                off = 1;
            }
            if (c->fh.flags & H2_FLAG_PRIORITY)
                off += 5;
            f.hdr = c->fh;
            f.u.headers.block = payload + off;
            f.u.headers.block_len = c->fh.length - off - pad;
            f.u.headers.has_priority = true;
            f.u.headers.priority.dependency = sid;
            return on_headers(c, &f, ev);
        }
        h2_stream *s = stream_find(c, sid);
        if (s)
            return s->state == S_CLOSED ? H2_OK : stream_reset(c, s, fl.code, ev, false);
        if (sid > c->last_peer_sid) {
            /* RST_STREAM must not be sent on an idle stream (§6.4).  A
             * PRIORITY of the wrong length there changes nothing: count it
             * and move on.  A stream depending on itself is a stream
             * PROTOCOL_ERROR (§5.3.1) that only a connection error can
             * report here (§5.4.1 allows it), as is any other frame on an
             * idle stream (§5.1). */
            if (c->fh.type == H2_FT_PRIORITY && fl.code != H2_PROTOCOL_ERROR)
                return glitch(c);
            return conn_fail(c, H2_PROTOCOL_ERROR, fl.reason);
        }
        return stream_error_id(c, sid, fl.code);
    }
    if (c->fh.type == H2_FT_PRIORITY_UPDATE)
        return on_priority_update(c, &f, ev);
    return frame_handlers[c->fh.type](c, &f, ev);
}

/* ------------------------------------------------------------------------ */
/* DATA, streamed: payload bytes are handed out as they arrive              */
/* ------------------------------------------------------------------------ */

static void skip_payload(h2_conn *c, uint32_t n)
{
    c->left = n;
    c->rstate = n ? R_SKIP : R_HEAD;
}

/* The DATA frame's body bytes start (pad length known). */
static h2_rv data_begin(h2_conn *c, uint32_t pad, h2_event *ev)
{
    uint32_t flen = c->fh.length;
    uint32_t sid = c->fh.stream_id;
    bool padded = (c->fh.flags & H2_FLAG_PADDED) != 0;
    uint32_t overhead = padded ? pad + 1 : 0;
    if (padded && pad >= flen)
        return conn_fail(c, H2_PROTOCOL_ERROR, "DATA padding exceeds the payload");
    uint32_t dlen = flen - overhead;
    uint32_t rest = flen - (padded ? 1u : 0u); /* bytes still to read */
    h2_stream *s = stream_find(c, sid);
    /* Padding reopens the windows at once: nobody consumes it. */
    credit_conn(c, overhead);
    if (!s || s->state == S_CLOSED) {
        credit_conn(c, dlen);
        skip_payload(c, rest);
        return H2_OK;
    }
    credit_stream(c, s, overhead);
    bool end = (c->fh.flags & H2_FLAG_END_STREAM) != 0;
    if (s->content_length >= 0 && (s->data_recv + dlen > (uint64_t)s->content_length ||
                                   (end && s->data_recv + dlen != (uint64_t)s->content_length))) {
        credit_conn(c, dlen);
        skip_payload(c, rest);
        return stream_reset(c, s, H2_PROTOCOL_ERROR, ev, false);
    }
    if (dlen == 0 && !end) {
        skip_payload(c, rest);
        return glitch(c); /* empty DATA without END_STREAM (CVE-2019-9518) */
    }
    c->left = dlen;
    c->pad_left = pad;
    if (dlen == 0) {
        /* Only END_STREAM to report. */
        stream_remote_end(s);
        ev->type = H2_EV_DATA;
        ev->stream_id = sid;
        ev->end_stream = true;
        ev->u.data.data = NULL;
        ev->u.data.len = 0;
        skip_payload(c, pad);
        if (s->state == S_CLOSED)
            stream_maybe_free(c, s);
        return H2_OK;
    }
    c->rstate = R_DATA;
    return H2_OK;
}

/* The 9-byte header of a DATA frame is in. */
static h2_rv data_head(h2_conn *c, h2_event *ev)
{
    uint32_t sid = c->fh.stream_id;
    uint32_t flen = c->fh.length;
    if (sid == 0)
        return conn_fail(c, H2_PROTOCOL_ERROR, "DATA on stream 0");
    h2_stream *s = stream_find(c, sid);
    if (!s && sid > c->last_peer_sid)
        return conn_fail(c, H2_PROTOCOL_ERROR, "DATA on an idle stream");
    /* Every DATA frame counts against the connection window, whatever
     * becomes of it (RFC 9113 §6.9). */
    if ((int64_t)flen > c->recv_window)
        return conn_fail(c, H2_FLOW_CONTROL_ERROR, "connection window exceeded");
    c->recv_window -= flen;
    if (!s) {
        if (!reset_recent(c, sid) && !ignored_after_goaway(c, sid))
            return conn_fail(c, H2_STREAM_CLOSED, "DATA on a closed stream");
        credit_conn(c, flen);
        skip_payload(c, flen);
        return H2_OK;
    }
    if (s->flags & F_RESET_SENT) {
        credit_conn(c, flen);
        skip_payload(c, flen);
        return H2_OK;
    }
    if (!(s->flags & F_DELIVERED) && s->state != S_HALF_REMOTE && s->state != S_CLOSED) {
        /* The handler detached while the body still flows: discard it. */
        credit_conn(c, flen);
        skip_payload(c, flen);
        if (c->fh.flags & H2_FLAG_END_STREAM) {
            stream_remote_end(s);
            stream_maybe_free(c, s);
        }
        return H2_OK;
    }
    if (s->state == S_HALF_REMOTE || s->state == S_CLOSED) {
        credit_conn(c, flen);
        skip_payload(c, flen);
        return stream_reset(c, s, H2_STREAM_CLOSED, ev, false);
    }
    if ((int64_t)flen > s->recv_window) {
        credit_conn(c, flen);
        skip_payload(c, flen);
        return stream_reset(c, s, H2_FLOW_CONTROL_ERROR, ev, false);
    }
    s->recv_window -= flen;
    if (c->fh.flags & H2_FLAG_PADDED) {
        if (flen == 0)
            return conn_fail(c, H2_FRAME_SIZE_ERROR, "padded DATA without a pad length");
        c->rstate = R_DATA_PADLEN;
        return H2_OK;
    }
    return data_begin(c, 0, ev);
}

static h2_rv rd_data(h2_conn *c, const uint8_t **pp, const uint8_t *end, h2_event *ev)
{
    uint32_t n = (uint32_t)(end - *pp) < c->left ? (uint32_t)(end - *pp) : c->left;
    h2_stream *s = stream_find(c, c->fh.stream_id);
    c->left -= n;
    const uint8_t *p = *pp;
    *pp += n;
    if (!s || s->state == S_CLOSED || !(s->flags & F_DELIVERED)) {
        /* Reset or detached mid-frame: discard the rest. */
        credit_conn(c, n);
    } else {
        bool last = c->left == 0;
        bool end_stream = last && (c->fh.flags & H2_FLAG_END_STREAM);
        s->data_recv += n;
        s->recv_held += n;
        ev->type = H2_EV_DATA;
        ev->stream_id = s->id;
        ev->end_stream = end_stream;
        ev->u.data.data = p;
        ev->u.data.len = n;
        if (end_stream)
            stream_remote_end(s);
    }
    if (c->left == 0)
        skip_payload(c, c->pad_left);
    return H2_OK;
}

/* ------------------------------------------------------------------------ */
/* The receive state machine                                                 */
/* ------------------------------------------------------------------------ */

static h2_rv on_frame_head(h2_conn *c, h2_event *ev)
{
    h2_frame_hdr_parse(c->head, &c->fh);
    c->stats.frames_in++;
    h2_fault f = h2_frame_check_size(&c->fh, c->lim->max_frame_size);
    if (!h2_fault_ok(f))
        return conn_fail(c, f.code, f.reason);
    if (!c->got_settings && (c->fh.type != H2_FT_SETTINGS || (c->fh.flags & H2_FLAG_ACK)))
        return conn_fail(c, H2_PROTOCOL_ERROR, "the client preface must start with SETTINGS");
    if (c->hb_active && (c->fh.type != H2_FT_CONTINUATION || c->fh.stream_id != c->hb_sid))
        return conn_fail(c, H2_PROTOCOL_ERROR, "header block interrupted");
    if (c->fh.type == H2_FT_CONTINUATION && !c->hb_active)
        return conn_fail(c, H2_PROTOCOL_ERROR, "CONTINUATION without HEADERS");
    if (!h2_frame_type_known(c->fh.type)) {
        skip_payload(c, c->fh.length); /* RFC 9113 §5.5 */
        return H2_OK;
    }
    if (c->fh.type == H2_FT_DATA)
        return data_head(c, ev);
    c->rstate = R_PAYLOAD;
    c->pgot = 0;
    return H2_OK;
}

static void pbuf_release(h2_conn *c)
{
    if (!c->pbuf)
        return;
    /* Blocks from the pool are exactly H2_OUT_BLOCK_SIZE (out_block header
     * included in the pool size, so the cast is safe). */
    if (c->pbuf_cap == H2_OUT_BLOCK_SIZE)
        pool_put(&c->x->blocks, c->pbuf);
    else
        h2_free(cmem(c), c->pbuf);
    c->pbuf = NULL;
    c->pbuf_cap = 0;
}

static h2_rv rd_payload(h2_conn *c, const uint8_t **pp, const uint8_t *end, h2_event *ev)
{
    uint32_t len = c->fh.length;
    size_t avail = (size_t)(end - *pp);
    if (c->pgot == 0 && avail >= len) {
        /* The whole payload is in the caller's buffer: no copy. */
        const uint8_t *p = *pp;
        *pp += len;
        c->rstate = R_HEAD;
        return on_frame(c, p, ev);
    }
    if (c->pbuf && c->pbuf_cap < len)
        pbuf_release(c);
    if (!c->pbuf) {
        uint32_t cap = len <= H2_OUT_BLOCK_SIZE ? H2_OUT_BLOCK_SIZE : len;
        c->pbuf = cap == H2_OUT_BLOCK_SIZE ? pool_get(&c->x->blocks) : h2_malloc(cmem(c), cap);
        if (!c->pbuf)
            return nomem(c);
        c->pbuf_cap = cap;
    }
    uint32_t n = len - c->pgot;
    if (avail < n)
        n = (uint32_t)avail;
    memcpy(c->pbuf + c->pgot, *pp, n);
    *pp += n;
    c->pgot += n;
    if (c->pgot < len)
        return H2_OK;
    c->rstate = R_HEAD;
    h2_rv rv = on_frame(c, c->pbuf, ev);
    /* Events of this frame never point into pbuf: header fields are copied
     * into the context scratch, DATA is streamed.  GOAWAY debug data and
     * PRIORITY_UPDATE fields do, so keep the buffer until the next call. */
    return rv;
}

static bool paused(const h2_conn *c)
{
    return c->ctrl_pending >= c->lim->max_pending_control || unsent(c) >= c->lim->max_unsent_output;
}

h2_rv h2_conn_recv(h2_conn *c, const uint8_t *in, size_t len, uint64_t now_ms, size_t *consumed,
                   h2_event *ev)
{
    ev->type = H2_EV_NONE;
    *consumed = 0;
    if (c->dead)
        return H2_E_CLOSED;
    c->now = now_ms;
    if (c->pbuf && c->rstate != R_PAYLOAD)
        pbuf_release(c); /* the previous call's event may have pointed into it */
    const uint8_t *p = in, *end = in + len;
    h2_rv rv = H2_OK;
    if (len)
        c->active_ms = now_ms;
    if (c->read_paused && !paused(c))
        c->read_paused = false;
    while (p < end && ev->type == H2_EV_NONE && rv == H2_OK) {
        switch (c->rstate) {
        case R_PREFACE: {
            uint32_t n = H2_PREFACE_LEN - c->preface_got;
            if ((size_t)(end - p) < n)
                n = (uint32_t)(end - p);
            if (memcmp(p, &H2_PREFACE[c->preface_got], n) != 0) {
                rv = conn_fail(c, H2_PROTOCOL_ERROR, "invalid connection preface");
                break;
            }
            p += n;
            c->preface_got += n;
            if (c->preface_got == H2_PREFACE_LEN)
                c->rstate = R_HEAD;
            break;
        }
        case R_HEAD: {
            if (c->head_got == 0 && paused(c)) {
                rv = H2_E_AGAIN;       /* stop at a frame boundary until output drains */
                if (!c->read_paused) { /* one hit per pause, however often fed */
                    c->read_paused = true;
                    hit(c, c->ctrl_pending >= c->lim->max_pending_control
                               ? H2_LIMIT_CONTROL_QUEUE
                               : H2_LIMIT_OUTPUT_BACKLOG);
                }
                break;
            }
            uint32_t n = H2_FRAME_HDR_LEN - c->head_got;
            if ((size_t)(end - p) < n)
                n = (uint32_t)(end - p);
            memcpy(c->head + c->head_got, p, n);
            p += n;
            c->head_got = (uint8_t)(c->head_got + n);
            if (c->head_got == H2_FRAME_HDR_LEN) {
                c->head_got = 0;
                rv = on_frame_head(c, ev);
                /* A zero-length frame is complete with its header. */
                if (rv == H2_OK && c->rstate == R_PAYLOAD && c->fh.length == 0) {
                    c->rstate = R_HEAD;
                    rv = on_frame(c, p, ev);
                }
            }
            break;
        }
        case R_PAYLOAD: rv = rd_payload(c, &p, end, ev); break;
        case R_DATA_PADLEN: {
            uint8_t pad = *p++;
            rv = data_begin(c, pad, ev);
            break;
        }
        case R_DATA: rv = rd_data(c, &p, end, ev); break;
        case R_SKIP: {
            uint32_t n = (size_t)(end - p) < c->left ? (uint32_t)(end - p) : c->left;
            p += n;
            c->left -= n;
            if (c->left == 0)
                c->rstate = R_HEAD;
            break;
        }
        default: rv = H2_E_CLOSED; break;
        }
    }
    *consumed = (size_t)(p - in);
    return rv;
}

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                 */
/* ------------------------------------------------------------------------ */

h2_conn *h2_conn_new(h2_ctx *x, uint64_t now_ms)
{
    const h2_limits *l = x->limits;
    h2_conn *c = h2_malloc(x->mem, sizeof *c);
    if (!c)
        return NULL;
    memset(c, 0, sizeof *c);
    c->x = x;
    c->lim = l;
    c->now = c->created_ms = c->active_ms = c->settings_sent_ms = now_ms;
    c->rstate = R_PREFACE;
    c->local_iws = H2_DEFAULT_WINDOW;
    c->peer_iws = H2_DEFAULT_WINDOW;
    c->peer_max_frame = H2_MIN_MAX_FRAME_SIZE;
    c->send_window = H2_DEFAULT_WINDOW;
    c->recv_window = H2_DEFAULT_WINDOW;
    h2_bucket_init(&c->resets, l->reset_burst, l->reset_rate, now_ms);
    h2_bucket_init(&c->glitches, l->glitch_burst, l->glitch_rate, now_ms);
    /* Until our SETTINGS are acknowledged the peer may use the default
     * table size; accept the larger of the two until then. */
    uint32_t dec_max = l->header_table_size > HPACK_DEFAULT_TABLE_SIZE ? l->header_table_size
                                                                       : HPACK_DEFAULT_TABLE_SIZE;
    hpack_decoder_init(&c->dec, dec_max, x->mem);
    hpack_encoder_init(&c->enc, l->encoder_table_size, x->mem);
    c->enc.skip_volatile = true;

    /* Server preface (RFC 9113 §3.4): our SETTINGS, then the connection
     * window opened beyond the default. */
    h2_setting st[8];
    size_t n = 0;
    st[n++] = (h2_setting){H2_SET_MAX_CONCURRENT_STREAMS, l->max_concurrent_streams};
    if (l->initial_window_size != H2_DEFAULT_WINDOW)
        st[n++] = (h2_setting){H2_SET_INITIAL_WINDOW_SIZE, l->initial_window_size};
    if (l->max_frame_size != H2_MIN_MAX_FRAME_SIZE)
        st[n++] = (h2_setting){H2_SET_MAX_FRAME_SIZE, l->max_frame_size};
    if (l->header_table_size != HPACK_DEFAULT_TABLE_SIZE)
        st[n++] = (h2_setting){H2_SET_HEADER_TABLE_SIZE, l->header_table_size};
    st[n++] = (h2_setting){H2_SET_MAX_HEADER_LIST_SIZE, l->max_header_list_size};
    if (l->enable_connect_protocol)
        st[n++] = (h2_setting){H2_SET_ENABLE_CONNECT_PROTOCOL, 1};
    st[n++] = (h2_setting){H2_SET_NO_RFC7540_PRIORITIES, 1};
    uint8_t *p = frame_begin(c, (uint32_t)(n * 6));
    if (!p) {
        h2_conn_free(c);
        return NULL;
    }
    frame_end(c, p, h2_frame_write_settings(p, st, n));
    c->settings_unacked = 1;
    if (l->connection_window > H2_DEFAULT_WINDOW) {
        if (!put_window_update(c, 0, l->connection_window - H2_DEFAULT_WINDOW)) {
            h2_conn_free(c);
            return NULL;
        }
        c->recv_window = l->connection_window;
    }
    return c;
}

void h2_conn_free(h2_conn *c)
{
    if (!c)
        return;
    for (uint32_t b = 0; c->st && b < NBUCKETS; b++) {
        h2_stream *s = c->st->buckets[b];
        while (s) {
            h2_stream *next = s->hnext;
            stream_drop_data(c, s);
            pool_put(&c->x->streams, s);
            s = next;
        }
    }
    /* Chunks referenced by unsent segments: release each once. */
    for (uint32_t i = 0; i < c->seg_count; i++) {
        h2_chunk *ch = c->segs[(c->seg_head + i) % NSEG].chunk;
        if (--ch->refs == 0 && ch->orphan)
            chunk_release(c, ch);
    }
    c->seg_count = 0;
    release_copied(c, UINT64_MAX);
    c->chain_r = c->chain_w;
    if (c->st)
        pool_put(&c->x->tables, c->st);
    c->st = NULL;
    c->nstreams = 0; /* so out_trim gives the output memory back */
    out_trim(c);
    pbuf_release(c);
    hb_reset(c);
    h2_free(cmem(c), c->rring);
    hpack_decoder_free(&c->dec);
    hpack_encoder_free(&c->enc);
    h2_free(cmem(c), c);
}

/* ------------------------------------------------------------------------ */
/* Application API                                                           */
/* ------------------------------------------------------------------------ */

/* A stream the application may still write to. */
static h2_rv writable_stream(h2_conn *c, uint32_t sid, h2_stream **out)
{
    if (c->dead)
        return H2_E_CLOSED;
    h2_stream *s = stream_find(c, sid);
    if (!s)
        return H2_E_NOSTREAM;
    if (s->state == S_CLOSED || s->state == S_HALF_LOCAL || (s->flags & F_END_QUEUED))
        return H2_E_STATE;
    *out = s;
    return H2_OK;
}

h2_rv h2_conn_respond(h2_conn *c, uint32_t stream_id, uint16_t status, const hpack_field *fields,
                      size_t n, bool end_stream)
{
    h2_stream *s;
    h2_rv rv = writable_stream(c, stream_id, &s);
    if (rv != H2_OK)
        return rv;
    if (s->flags & F_HEAD_SENT)
        return H2_E_STATE;
    bool info = status < 200;
    if (status < 100 || status > 599 || status == 101 || (info && end_stream))
        return H2_E_INVAL;
    if (n > UINT32_MAX || h2_http_check_response_fields(fields, (uint32_t)n) != H2_OK)
        return H2_E_INVAL;
    uint8_t digits[3] = {(uint8_t)('0' + status / 100), (uint8_t)('0' + status / 10 % 10),
                         (uint8_t)('0' + status % 10)};
    hpack_field st = {(const uint8_t *)":status", digits, 7, 3, 0, 0};
    rv = put_header_block(c, stream_id, &st, 1, fields, n, end_stream);
    if (rv != H2_OK)
        return rv == H2_E_NOMEM ? nomem(c) : rv;
    if (!info)
        s->flags |= F_HEAD_SENT;
    if (end_stream) {
        s->flags |= F_END_QUEUED;
        stream_local_end(c, s);
        stream_maybe_free(c, s);
    }
    return H2_OK;
}

h2_rv h2_conn_send_data(h2_conn *c, uint32_t stream_id, const uint8_t *data, uint64_t len,
                        bool end_stream, h2_release_fn release, void *release_ctx)
{
    h2_stream *s = NULL;
    h2_rv rv = writable_stream(c, stream_id, &s);
    if (rv == H2_OK && !(s->flags & F_HEAD_SENT))
        rv = H2_E_STATE;
    if (rv == H2_OK && len) {
        h2_chunk *ch = pool_get(&c->x->chunks);
        if (!ch) {
            rv = nomem(c);
        } else {
            ch->next = NULL;
            ch->data = data;
            ch->len = len;
            ch->framed = 0;
            ch->refs = 0;
            ch->orphan = false;
            ch->release = release;
            ch->release_ctx = release_ctx;
            if (s->ch_tail)
                s->ch_tail->next = ch;
            else
                s->ch_head = ch;
            s->ch_tail = ch;
            if (!output_pending(c))
                c->progress_ms = c->now;
            s->unframed += len;
            c->unframed += len;
            release = NULL; /* the chunk owns the release now */
        }
    }
    if (release)
        release(release_ctx, data, (size_t)len);
    if (rv != H2_OK)
        return rv;
    if (end_stream)
        s->flags |= F_END_QUEUED;
    sched_push(c, s);
    return H2_OK;
}

uint64_t h2_conn_stream_buffered(const h2_conn *c, uint32_t stream_id)
{
    const h2_stream *s = stream_find(c, stream_id);
    return s ? s->unframed : 0;
}

h2_rv h2_conn_send_trailers(h2_conn *c, uint32_t stream_id, const hpack_field *fields, size_t n)
{
    h2_stream *s;
    h2_rv rv = writable_stream(c, stream_id, &s);
    if (rv != H2_OK)
        return rv;
    if (!(s->flags & F_HEAD_SENT))
        return H2_E_STATE;
    if (n == 0 || n > UINT32_MAX || h2_http_check_response_fields(fields, (uint32_t)n) != H2_OK)
        return H2_E_INVAL;
    /* Copied: encoding waits until the data before them has been framed. */
    size_t bytes = sizeof(trailers) + n * sizeof(hpack_field);
    for (size_t i = 0; i < n; i++)
        bytes += (size_t)fields[i].name_len + fields[i].value_len;
    /* Small ones (all real ones) borrow an output block: no allocation. */
    trailers *t = bytes <= H2_OUT_BLOCK_SIZE ? pool_get(&c->x->blocks) : h2_malloc(cmem(c), bytes);
    if (!t)
        return nomem(c);
    t->pooled = bytes <= H2_OUT_BLOCK_SIZE;
    t->n = n;
    uint8_t *w = (uint8_t *)&t->f[n];
    for (size_t i = 0; i < n; i++) {
        t->f[i] = fields[i];
        memcpy(w, fields[i].name, fields[i].name_len);
        t->f[i].name = w;
        w += fields[i].name_len;
        memcpy(w, fields[i].value, fields[i].value_len);
        t->f[i].value = w;
        w += fields[i].value_len;
    }
    s->trailers = t;
    s->flags |= F_END_QUEUED;
    sched_push(c, s);
    return H2_OK;
}

h2_rv h2_conn_reset_stream(h2_conn *c, uint32_t stream_id, h2_code code)
{
    if (c->dead)
        return H2_E_CLOSED;
    h2_stream *s = stream_find(c, stream_id);
    if (!s)
        return H2_E_NOSTREAM;
    if (s->state == S_CLOSED)
        return H2_E_STATE;
    return stream_reset(c, s, code, NULL, true);
}

h2_rv h2_conn_consume(h2_conn *c, uint32_t stream_id, uint64_t n)
{
    if (c->dead)
        return H2_E_CLOSED;
    h2_stream *s = stream_find(c, stream_id);
    if (!s)
        return H2_E_NOSTREAM; /* its held bytes were credited when it went */
    if (n > s->recv_held)
        n = s->recv_held;
    s->recv_held -= n;
    credit_conn(c, n);
    credit_stream(c, s, n);
    return H2_OK;
}

h2_rv h2_conn_stream_detach(h2_conn *c, uint32_t stream_id)
{
    h2_stream *s = stream_find(c, stream_id);
    if (!s || !(s->flags & F_DELIVERED))
        return H2_E_NOSTREAM;
    s->flags &= (uint16_t)~F_DELIVERED;
    s->user = NULL;
    if (!c->dead && s->state != S_CLOSED) {
        if (!(s->flags & F_END_QUEUED)) {
            /* The handler stopped without finishing its response. */
            h2_rv rv = stream_reset(c, s, H2_INTERNAL_ERROR, NULL, true);
            if (rv != H2_OK)
                return rv;
            return H2_OK; /* stream_reset freed it */
        }
        if ((s->flags & F_END_SENT) && s->state == S_HALF_LOCAL) {
            /* Response complete, request body unwanted (RFC 9113 §8.1). */
            if (!put_rst(c, s->id, H2_NO_ERROR, false))
                return nomem(c);
            s->flags |= F_RESET_SENT;
            reset_remember(c, s->id);
            stream_close(c, s);
        }
    }
    if (c->dead)
        stream_close(c, s);
    stream_maybe_free(c, s);
    return H2_OK;
}

void h2_conn_stream_set_user(h2_conn *c, uint32_t stream_id, void *user)
{
    h2_stream *s = stream_find(c, stream_id);
    if (s)
        s->user = user;
}

void *h2_conn_stream_user(const h2_conn *c, uint32_t stream_id)
{
    const h2_stream *s = stream_find(c, stream_id);
    return s ? s->user : NULL;
}

h2_rv h2_conn_ping(h2_conn *c, const uint8_t opaque[8])
{
    if (c->dead)
        return H2_E_CLOSED;
    return put_ping(c, false, opaque) ? H2_OK : nomem(c);
}

/* The second GOAWAY of a graceful shutdown: the last stream we take. */
static bool shutdown_final(h2_conn *c)
{
    c->shutdown_phase = 2;
    if (c->goaway_sent)
        return true;
    if (!put_goaway(c, c->last_peer_sid, H2_NO_ERROR, NULL))
        return false;
    c->goaway_sent = true;
    c->goaway_last = c->last_peer_sid;
    return true;
}

h2_rv h2_conn_shutdown(h2_conn *c)
{
    if (c->dead)
        return H2_E_CLOSED;
    if (c->goaway_sent || c->shutdown_phase)
        return H2_OK;
    if (!put_goaway(c, H2_STREAM_ID_MASK, H2_NO_ERROR, NULL) ||
        !put_ping(c, false, (const uint8_t *)SHUTDOWN_PING))
        return nomem(c);
    c->shutdown_phase = 1;
    c->shutdown_ms = c->now;
    return H2_OK;
}

h2_rv h2_conn_goaway(h2_conn *c, h2_code code, const char *debug)
{
    if (c->dead)
        return H2_E_CLOSED;
    if (code != H2_NO_ERROR) {
        conn_fail(c, code, debug ? debug : "going away");
        return H2_OK;
    }
    if (!put_goaway(c, c->last_peer_sid, H2_NO_ERROR, debug))
        return nomem(c);
    c->goaway_sent = true;
    c->goaway_last = c->last_peer_sid;
    return H2_OK;
}

/* ------------------------------------------------------------------------ */
/* Timers                                                                    */
/* ------------------------------------------------------------------------ */

static uint64_t deadline_after(uint64_t start, uint32_t ms)
{
    return ms ? start + ms : UINT64_MAX;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

uint64_t h2_conn_next_deadline(const h2_conn *c)
{
    const h2_limits *l = c->lim;
    if (c->dead)
        return UINT64_MAX;
    uint64_t d = UINT64_MAX;
    if (!c->got_settings)
        d = min64(d, deadline_after(c->created_ms, l->preface_timeout_ms));
    if (c->settings_unacked)
        d = min64(d, deadline_after(c->settings_sent_ms, l->settings_timeout_ms));
    if (c->hb_active)
        d = min64(d, deadline_after(c->hb_start_ms, l->header_block_timeout_ms));
    if (c->nstreams == 0 && c->got_settings)
        d = min64(d, deadline_after(c->active_ms, l->idle_timeout_ms));
    if (output_pending(c))
        d = min64(d, deadline_after(c->progress_ms, l->send_timeout_ms));
    if (c->shutdown_phase == 1)
        d = min64(d, c->shutdown_ms + SHUTDOWN_ACK_WAIT_MS);
    return d;
}

h2_rv h2_conn_tick(h2_conn *c, uint64_t now_ms)
{
    const h2_limits *l = c->lim;
    if (c->dead)
        return H2_OK;
    c->now = now_ms;
    if (!c->got_settings && now_ms >= deadline_after(c->created_ms, l->preface_timeout_ms))
        return limit_fail(c, H2_LIMIT_PREFACE_TIMEOUT, H2_ENHANCE_YOUR_CALM, "preface timeout");
    if (c->settings_unacked &&
        now_ms >= deadline_after(c->settings_sent_ms, l->settings_timeout_ms))
        return limit_fail(c, H2_LIMIT_SETTINGS_TIMEOUT, H2_SETTINGS_TIMEOUT,
                          "SETTINGS ACK timeout");
    if (c->hb_active && now_ms >= deadline_after(c->hb_start_ms, l->header_block_timeout_ms))
        return limit_fail(c, H2_LIMIT_HEADER_TIMEOUT, H2_ENHANCE_YOUR_CALM, "header block timeout");
    if (output_pending(c) && now_ms >= deadline_after(c->progress_ms, l->send_timeout_ms)) {
        /* Framed bytes still unwritten: the socket does not drain, a GOAWAY
         * would not get through.  Only flow control holding body bytes back
         * (a window never opened): the socket is fine, tell the peer. */
        c->send_stalled = unsent(c) > 0;
        return limit_fail(c, H2_LIMIT_SEND_TIMEOUT, H2_ENHANCE_YOUR_CALM, "send timeout");
    }
    if (c->nstreams == 0 && c->got_settings &&
        now_ms >= deadline_after(c->active_ms, l->idle_timeout_ms))
        return limit_fail(c, H2_LIMIT_IDLE_TIMEOUT, H2_NO_ERROR, "idle timeout");
    /* A peer that does not answer the shutdown PING gets the final GOAWAY
     * anyway, a second later (as h2o does). */
    if (c->shutdown_phase == 1 && now_ms >= c->shutdown_ms + SHUTDOWN_ACK_WAIT_MS &&
        !shutdown_final(c))
        return nomem(c);
    return H2_OK;
}

/* ------------------------------------------------------------------------ */
/* Output API                                                                */
/* ------------------------------------------------------------------------ */

size_t h2_conn_out_prepare(h2_conn *c, struct iovec *iov, size_t iovcnt, size_t max_bytes)
{
    schedule(c, max_bytes);
    size_t k = 0, total = 0;
    uint64_t pos = c->chain_r;
    const out_block *b = c->ohead;
    uint32_t off = c->ohead_off;
    uint32_t si = 0, soff = c->seg_off;
    while (k < iovcnt && total < max_bytes) {
        const seg *sg = si < c->seg_count ? &c->segs[(c->seg_head + si) % NSEG] : NULL;
        uint64_t next = sg ? sg->pos : c->chain_w;
        if (pos < next) {
            if (off == b->used) {
                b = b->next;
                off = 0;
                continue;
            }
            uint64_t len = b->used - off;
            if (len > next - pos)
                len = next - pos;
            iov[k].iov_base = (void *)(uintptr_t)(b->data + off);
            iov[k].iov_len = (size_t)len;
            k++;
            pos += len;
            off += (uint32_t)len;
            total += (size_t)len;
        } else if (sg) {
            iov[k].iov_base = (void *)(uintptr_t)(sg->p + soff);
            iov[k].iov_len = sg->len - soff;
            total += sg->len - soff;
            k++;
            si++;
            soff = 0;
        } else {
            break;
        }
    }
    return k;
}

void h2_conn_out_commit(h2_conn *c, size_t n, uint64_t now_ms)
{
    if (n) {
        c->progress_ms = now_ms;
        c->stats.bytes_out += n;
    }
    while (n) {
        const seg *sg = c->seg_count ? &c->segs[c->seg_head] : NULL;
        uint64_t next = sg ? sg->pos : c->chain_w;
        if (c->chain_r < next) {
            uint64_t take = next - c->chain_r;
            if (take > n)
                take = n;
            chain_consume(c, take);
            n -= (size_t)take;
            continue;
        }
        if (!sg)
            break; /* more than was prepared: caller bug, ignore the excess */
        uint32_t left = sg->len - c->seg_off;
        uint32_t take = n < left ? (uint32_t)n : left;
        c->seg_off += take;
        c->seg_bytes -= take;
        n -= take;
        if (c->seg_off == sg->len) {
            h2_chunk *ch = sg->chunk;
            c->seg_head = (c->seg_head + 1) % NSEG;
            c->seg_count--;
            c->seg_off = 0;
            if (--ch->refs == 0 && ch->orphan)
                chunk_release(c, ch);
        }
    }
    release_copied(c, c->chain_r);
    ctrl_settle(c);
    out_trim(c);
}

size_t h2_conn_send(h2_conn *c, uint8_t *buf, size_t cap, uint64_t now_ms)
{
    size_t total = 0;
    while (total < cap) {
        struct iovec iov[16];
        size_t k = h2_conn_out_prepare(c, iov, 16, cap - total);
        if (!k)
            break;
        size_t got = 0;
        for (size_t i = 0; i < k && total + got < cap; i++) {
            size_t m = iov[i].iov_len;
            if (m > cap - total - got)
                m = cap - total - got;
            memcpy(buf + total + got, iov[i].iov_base, m);
            got += m;
        }
        h2_conn_out_commit(c, got, now_ms);
        total += got;
    }
    return total;
}

bool h2_conn_want_write(const h2_conn *c)
{
    if (unsent(c))
        return true;
    if (c->dead || !c->nready)
        return false;
    if (c->send_window > 0)
        return true;
    for (uint32_t u = 0; u < NURGENCY; u++)
        for (const h2_stream *s = c->st->rq_head[u]; s; s = s->snext)
            if (!stream_needs_window(s))
                return true;
    return false;
}

bool h2_conn_want_read(const h2_conn *c)
{
    return !c->dead && !paused(c);
}

uint64_t h2_conn_unsent(const h2_conn *c)
{
    return unsent(c);
}

bool h2_conn_is_done(const h2_conn *c)
{
    return c->dead || ((c->goaway_sent || c->goaway_recv) && c->nstreams == 0);
}

h2_fault h2_conn_fault(const h2_conn *c)
{
    return c->fault;
}

bool h2_conn_send_stalled(const h2_conn *c)
{
    return c->send_stalled;
}

const h2_conn_stats *h2_conn_stats_get(const h2_conn *c)
{
    return &c->stats;
}
uint64_t h2_conn_created_ms(const h2_conn *c)
{
    return c->created_ms;
}

uint32_t h2_conn_stream_count(const h2_conn *c)
{
    return c->nstreams;
}
