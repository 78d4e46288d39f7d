/* h2_conn_internal.h - what the h2_conn modules share, private to proto/.
 *
 * The engine behind h2_conn.h is split along its seams (docs/conn.md):
 *   h2_pool ....... fixed-size block pools (h2_pool.h)
 *   h2_out ........ the output chain: control bytes in blocks, DATA payloads
 *                   as segments, frame writers, out_prepare/out_commit
 *   h2_sched ...... the RFC 9218 scheduler that frames DATA lazily
 *   h2_stream ..... stream lookup, lifetime, RFC 9113 §5.1 states, resets,
 *                   inbound flow-control credit
 *   h2_headers .... header blocks: HEADERS/CONTINUATION, requests, trailers
 *   h2_frames ..... the handlers of the other frame types, dispatch
 *   h2_recv ....... the receive state machine, DATA streaming, h2_conn_recv
 *   h2_conn_api ... what the application calls (respond, data, reset...)
 *   h2_conn ....... context, lifecycle, failure, timers, accessors
 *
 * This header holds the shared types (struct h2_conn and the stream, chunk
 * and output records) and the connection-wide helpers every module uses.
 * Each module's own functions are declared in its header.
 *
 * Thread: everything here belongs to the h2_ctx's thread.
 */
#ifndef SPINDLE_H2_CONN_INTERNAL_H
#define SPINDLE_H2_CONN_INTERNAL_H

#include "h2_conn.h"
#include "h2_pool.h"

#define H2_NSEG    32u    /* payload references per connection in flight */
#define H2_QUANTUM 16384u /* round-robin quantum per stream turn */
/* DATA payloads up to this size are copied into the byte chain: one memcpy
 * is cheaper than an iovec of its own, and runs of small responses go out
 * as one contiguous iovec. */
#define H2_INLINE_MAX           1024u
#define H2_NBUCKETS             32u /* stream hash buckets (ids are odd: spread by id >> 1) */
#define H2_NURGENCY             8u
#define H2_SHUTDOWN_PING        "spndl-sd"
#define H2_SHUTDOWN_ACK_WAIT_MS 1000u      /* final GOAWAY without the PING ACK after this */
#define H2_KEEPALIVE_PING       "spndl-ka" /* h2_limits.ping_interval_ms */

typedef struct h2_out_block {
    struct h2_out_block *next;
    uint32_t cap;
    uint32_t used;
    uint8_t data[];
} h2_out_block;

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
typedef struct h2_seg {
    uint64_t pos;
    const uint8_t *p;
    h2_chunk *chunk;
    uint32_t len;
} h2_seg;

typedef struct h2_trailers {
    size_t n;
    bool pooled; /* from the output block pool, else from h2_mem */
    hpack_field f[];
} h2_trailers;

enum stream_state { S_OPEN, S_HALF_REMOTE, S_HALF_LOCAL, S_CLOSED };

enum stream_flag {
    F_DELIVERED = 1u << 0,  /* the application holds it (REQUEST delivered, not detached) */
    F_HEAD_SENT = 1u << 1,  /* final response head queued */
    F_END_QUEUED = 1u << 2, /* the application ended the body */
    F_END_SENT = 1u << 3,   /* END_STREAM framed */
    F_IN_SCHED = 1u << 4,
    F_RESET_SENT = 1u << 5, /* we sent RST_STREAM: ignore late frames */
    F_INCREMENTAL = 1u << 6,
    /* The peer's head arrived: a request (server streams, from birth) or a
     * final response (client streams, h2_client.c).  DATA needs it. */
    F_HEAD_RECV = 1u << 7,
    F_HEAD_REQ = 1u << 8,  /* client: a HEAD request (no body in the response) */
    F_INFO_SEEN = 1u << 9, /* client: an informational (1xx) head arrived */
    F_REFUSED = 1u << 10,  /* client: above a GOAWAY's last id, not yet reported */
};

struct h2_stream;
/* Stream lookup and scheduler queues: allocated (pooled) while the
 * connection has streams, so an idle connection does not carry them. */
typedef struct h2_stream_tables {
    struct h2_stream *buckets[H2_NBUCKETS];
    struct h2_stream *rq_head[H2_NURGENCY];
    struct h2_stream *rq_tail[H2_NURGENCY];
    struct h2_stream *last; /* the last stream found or created: the
                             * application's calls name it over and over */
} h2_stream_tables;

typedef struct h2_stream {
    struct h2_stream *hnext;
    struct h2_stream *snext;
    h2_chunk *ch_head, *ch_tail; /* chunks with unframed bytes */
    void *user;
    h2_trailers *trailers;
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
    h2_stream_tables *st; /* NULL while there is no stream */
    uint32_t *rring;      /* ids of streams we reset (late frames ignored) */
    /* output */
    h2_out_block *ohead, *otail;
    uint64_t chain_w, chain_r;
    h2_seg *segs;
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
    uint64_t active_prev; /* active_ms before this input: a keepalive ACK restores it */
    uint64_t ka_sent_ms;  /* the last keepalive PING (created_ms before the first) */
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
    /* client role (h2_client.c) */
    uint32_t next_sid;         /* the next stream id we open (odd) */
    uint32_t peer_max_streams; /* the peer's SETTINGS_MAX_CONCURRENT_STREAMS */
    uint32_t refused_pending;  /* streams marked F_REFUSED, not yet reported */

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
    bool ka_pending;        /* a keepalive PING is not acknowledged yet */
    bool read_paused;       /* reading paused and counted as a limit hit */
    /* The role (RFC 9113 §5.1.1): false = server, true = client.  Where
     * the roles differ the engine asks it (header blocks, push, the preface,
     * GOAWAY); the client's own code is h2_client.c.  last_peer_sid is the
     * highest id of the side that opens streams: the peer's on a server,
     * ours on a client, so the idle-stream checks read the same. */
    bool client;
};

/* --- Connection-wide helpers (h2_conn.c) ---------------------------------- */

static inline const h2_mem *h2_conn_mem(const h2_conn *c)
{
    return c->x->mem;
}

/* Count a limit the peer ran into (per context: no per-connection cost). */
static inline void h2_conn_hit(h2_conn *c, h2_limit_id id)
{
    c->x->limit_hits[id]++;
}

/* Connection error: fault recorded, GOAWAY queued (best effort), the
 * connection dead.  Always returns H2_E_PROTO. */
h2_rv h2_conn_fail(h2_conn *c, h2_code code, const char *reason);
/* A limit ended the connection: count it (once), then h2_conn_fail. */
h2_rv h2_conn_limit_fail(h2_conn *c, h2_limit_id id, h2_code code, const char *reason);
/* A connection with the state both roles share (no preface queued yet).
 * NULL: no memory. */
h2_conn *h2_conn_alloc(h2_ctx *x, uint64_t now_ms);
/* Queue our SETTINGS (n entries) and the connection window beyond the
 * default.  false: no memory. */
bool h2_conn_preface(h2_conn *c, const h2_setting *st, size_t n);
/* The SETTINGS both roles send from their limits (initial window, frame
 * size and table size when not the default; header list size): written at
 * st, which has room for 4.  Returns how many. */
size_t h2_conn_limit_settings(const h2_limits *l, h2_setting *st);
/* Out of memory: the connection is dead, no GOAWAY.  Returns H2_E_NOMEM. */
h2_rv h2_conn_nomem(h2_conn *c);
/* A peer action that costs us work for nothing (a "glitch"): H2_OK, or the
 * connection error when the glitch budget is spent. */
h2_rv h2_conn_glitch(h2_conn *c);
/* The second GOAWAY of a graceful shutdown (h2_conn_api.c).  false: no
 * memory. */
bool h2_conn_shutdown_final(h2_conn *c);

#endif
