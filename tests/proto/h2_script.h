/* h2_script.h - a scripted HTTP/2 client that drives an h2_conn, sans I/O.
 *
 * One h2s object is both sides of a test connection:
 *
 *   script  - builders append client frames to an input buffer (hand-built
 *             bytes, so a bug in h2_frame.c cannot hide one in h2_conn.c;
 *             header blocks come from a client hpack_encoder the script owns,
 *             or raw blocks for HPACK abuse);
 *   runner  - h2s_feed() hands the unfed part of the script to
 *             h2_conn_recv(), whole or one byte per call (s->mode), deep-copies
 *             every event (event memory only lives until the next recv), on
 *             H2_E_AGAIN drains output and continues, and records the final rv;
 *   output  - h2s_drain() pulls the server's bytes with h2_conn_send() or with
 *             h2_conn_out_prepare/commit (tiny iovec counts, partial commits),
 *             parses every frame with h2_frame_hdr_parse/h2_frame_decode,
 *             decodes header blocks with a client hpack_decoder and keeps
 *             per-stream responses for assertions.
 *
 * The output side is also an oracle: every server frame is checked against
 * the RFC 9113 rules a server must follow whatever the test does (first
 * frame SETTINGS, frame size, flow-control windows kept by a model of the
 * client, no frame on a stream after RST_STREAM, no DATA after END_STREAM,
 * 1xx never with END_STREAM, trailers with END_STREAM and no pseudo-header,
 * PING ACKs only echo PINGs we sent, GOAWAY last-stream-id never grows, no
 * frame after an error GOAWAY, HPACK size updates as RFC 7541 §4.2 wants).
 * A violation fails the test (cr_expect) with the rule and the frame.
 *
 * Every receive test runs in three modes (H2S_TEST): whole input with
 * h2_conn_send, one byte per h2_conn_recv call, and whole input drained
 * through 2-iovec prepares with partial commits.
 *
 * Ownership: everything the harness copies is freed by h2s_fini(), which
 * also frees the connection and context and checks that the counting
 * allocator (if any) got every block back and that every data chunk handed
 * to the engine was released exactly once.
 */
#ifndef SPINDLE_TESTS_H2_SCRIPT_H
#define SPINDLE_TESTS_H2_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h2_conn.h"

/* --- Counting / failing allocator ------------------------------------------ */

typedef struct h2s_mem {
    h2_mem mem;        /* pass &m->mem (h2s_start does) */
    uint64_t allocs;   /* successful malloc + realloc(NULL, n) */
    uint64_t reallocs; /* successful realloc of a live block */
    uint64_t frees;    /* free of a non-NULL block */
    uint64_t calls;    /* every malloc/realloc attempt, failed or not */
    uint64_t failed;   /* attempts we failed on purpose */
    uint64_t live;     /* blocks currently allocated */
    uint64_t live_bytes, peak_bytes;
    uint64_t fail_at; /* fail attempt number fail_at (1-based); 0 = never */
    bool fail_after;  /* ... and every attempt after it */
} h2s_mem;

/* The h2s_mem must outlive h2s_fini (which checks it after freeing the
 * connection): not a local of a function that returns before the fini. */
void h2s_mem_init(h2s_mem *m);

/* --- Strings and fields ---------------------------------------------------- */

typedef struct h2s_kv {
    const char *name;
    const char *value;
} h2s_kv;

/* H2S_KV({"a","b"}, {"c","d"}) expands to "array, count". */
#define H2S_KV(...)                                                                                \
    ((const h2s_kv[]){__VA_ARGS__}), (sizeof((const h2s_kv[]){__VA_ARGS__}) / sizeof(h2s_kv))

/* A copied field; name and value are NUL-terminated for convenience (the
 * lengths are authoritative: values may hold NUL). */
typedef struct h2s_field {
    char *name;
    char *value;
    uint32_t name_len;
    uint32_t value_len;
    uint8_t flags;
} h2s_field;

/* hpack_field over C strings (for h2_conn_respond and friends). */
hpack_field h2s_hf(const char *name, const char *value);

/* --- Events (deep copies) ---------------------------------------------------- */

typedef struct h2s_ev {
    h2_event_type type;
    uint32_t stream_id;
    bool end_stream;
    size_t in_pos; /* script offset consumed when the event came out */
    /* H2_EV_REQUEST */
    char *method, *scheme, *authority, *path, *protocol; /* NULL when absent */
    int64_t content_length;
    uint8_t urgency;
    bool incremental, expect_continue, extended_connect;
    /* H2_EV_REQUEST (regular fields) and H2_EV_TRAILERS */
    h2s_field *fields;
    uint32_t nfields;
    /* H2_EV_DATA payload, H2_EV_GOAWAY debug data */
    uint8_t *data;
    uint32_t len;
    /* H2_EV_STREAM_RESET / H2_EV_GOAWAY */
    uint32_t code;
    bool remote;
    uint32_t last_stream_id;
    /* H2_EV_WINDOW_UPDATE */
    uint32_t increment;
    /* H2_EV_PING_ACK */
    uint8_t ping[8];
} h2s_ev;

/* --- Server frames ------------------------------------------------------------ */

typedef struct h2s_frame {
    h2_frame_hdr hdr;
    size_t out_off;   /* offset of the frame header in the server's output */
    uint8_t *payload; /* copy of the payload */
    h2_frame f;       /* decoded (views into payload) */
    /* HEADERS that completes a field block (with its CONTINUATIONs): */
    bool has_block;
    h2s_field *fields;
    uint32_t nfields;
    uint32_t block_len; /* encoded size of the whole field block */
    int status;         /* :status, or -1 */
} h2s_frame;

/* Response body offset -> output offset of a DATA payload. */
typedef struct h2s_dmap {
    uint64_t body_off;
    size_t out_off;
    uint32_t len;
} h2s_dmap;

/* Per-stream view of both directions. */
typedef struct h2s_stream {
    uint32_t id;
    /* client -> server (script) */
    uint64_t c_flow; /* flow-controlled bytes the client sent (pad incl.) */
    /* server -> client (parsed output) */
    int status;  /* final :status, -1 until seen */
    int info[8]; /* 1xx statuses in order */
    uint32_t ninfo;
    h2s_field *hdrs; /* final response fields (pseudo included) */
    uint32_t nhdrs;
    h2s_field *trailers;
    uint32_t ntrailers;
    bool has_trailers;
    uint8_t *body;
    size_t body_len, body_cap;
    uint32_t data_frames;
    bool ended;              /* server sent END_STREAM */
    uint32_t nrst;           /* RST_STREAM frames from the server */
    uint32_t rst_code;       /* code of the first */
    uint64_t s_flow;         /* flow-controlled bytes the server sent */
    uint64_t wu_from_client; /* WINDOW_UPDATE increments the server consumed */
    uint64_t wu_to_client;   /* WINDOW_UPDATE increments the server sent */
    /* engine events */
    uint8_t *req_body;
    size_t req_body_len, req_body_cap;
    bool req_ended;     /* an event with end_stream arrived */
    uint32_t nreq;      /* REQUEST events */
    uint32_t nreset_ev; /* STREAM_RESET events */
    /* harness bookkeeping */
    h2s_dmap *dmap;
    size_t ndmap, dmap_cap;
    uint64_t queued; /* body bytes the engine accepted */
    bool head_req;
    bool app_reset; /* h2s_reset_stream was called */
    bool detached;  /* h2s_detach was called */
} h2s_stream;

/* A response body chunk handed to h2_conn_send_data, with release tracking. */
typedef struct h2s_chunk {
    struct h2s *s;
    uint32_t stream_id;
    const uint8_t *data;
    uint64_t len;
    uint64_t body_off;         /* offset in the stream's body */
    bool taken;                /* the engine accepted it: one release expected */
    uint32_t released;         /* release callback calls */
    bool bad_args;             /* release called with other data/len */
    size_t out_len_at_release; /* server output bytes committed at that moment */
} h2s_chunk;

/* --- The script / runner / output object ------------------------------------- */

typedef enum h2s_mode {
    H2S_WHOLE = 0,    /* all input per call, output via h2_conn_send */
    H2S_BYTEWISE = 1, /* one input byte per h2_conn_recv call */
    H2S_IOV = 2,      /* all input per call, output via 2-iovec prepares, partial commits */
} h2s_mode;

typedef struct h2s h2s;
typedef void (*h2s_event_fn)(h2s *s, const h2_event *ev, void *ud);

struct h2s {
    h2s_mode mode;
    const char *mode_name;
    uint64_t now; /* fake clock (ms) */

    /* engine */
    h2_limits limits;
    h2s_mem *mem; /* NULL: libc */
    h2_ctx ctx;
    h2_conn *c;
    bool ctx_ok;

    /* script */
    uint8_t *in;
    size_t in_len, in_cap;
    size_t fed;        /* bytes of in consumed by the engine */
    hpack_encoder enc; /* client encoder */
    uint32_t max_client_sid;

    /* runner */
    h2_rv rv;            /* result of the last h2s_feed */
    h2_rv first_err;     /* first error rv (H2_OK if none) */
    size_t err_pos;      /* script offset when first_err came back */
    bool drain_on_again; /* default true */
    uint32_t agains;     /* H2_E_AGAIN returns seen */
    h2s_event_fn on_event;
    void *on_event_ud;
    bool auto_detach_reset; /* detach a stream on its STREAM_RESET event */
    h2s_ev *evs;
    size_t nev, ev_cap;

    /* output */
    uint8_t *out;
    size_t out_len, out_cap, out_parsed;
    size_t iov_max_bytes; /* H2S_IOV: max_bytes per prepare */
    h2s_frame *frames;
    size_t nframes, frames_cap;
    hpack_decoder dec; /* client decoder */
    uint8_t *blk;      /* field block being reassembled */
    size_t blk_len, blk_cap;
    size_t blk_frame; /* index of its HEADERS frame, SIZE_MAX when none */
    hpack_field *sink_fields;
    uint8_t *sink_buf;

    /* streams */
    h2s_stream *st;
    size_t nst, st_cap;

    /* client model (what the client knows and advertises) */
    int64_t c_conn_flow;         /* conn flow bytes the client sent */
    uint64_t c_conn_wu_in;       /* conn WINDOW_UPDATE increments from the server */
    uint64_t c_conn_flow_fed;    /* conn flow bytes the engine has consumed */
    uint32_t srv_initial_window; /* server's SETTINGS_INITIAL_WINDOW_SIZE, as acked */
    /* server-send model (what the server may send) */
    uint32_t cl_initial_window; /* client's SETTINGS_INITIAL_WINDOW_SIZE consumed so far */
    uint32_t cl_max_frame;      /* client's SETTINGS_MAX_FRAME_SIZE consumed so far */
    uint64_t s_conn_flow;       /* conn flow bytes the server sent */
    uint64_t s_conn_wu_from_client;
    uint64_t s_conn_wu_to_client; /* server conn WINDOW_UPDATE total */
    /* script index: frames whose effects apply once consumed */
    struct h2s_effect *eff;
    size_t neff, eff_cap, eff_applied;
    /* SETTINGS bookkeeping */
    uint32_t client_settings_consumed; /* non-ACK SETTINGS frames consumed */
    uint32_t server_acks_seen;         /* SETTINGS ACK frames from the server */
    int64_t *client_hts;               /* per client SETTINGS: HEADER_TABLE_SIZE or -1 */
    size_t nclient_hts, client_hts_cap;
    size_t server_settings_seen;  /* non-ACK SETTINGS from the server */
    size_t server_settings_acked; /* ... that the client script ACKed */
    /* PINGs the client sent (consumed), for matching ACKs */
    uint8_t (*pings)[8];
    bool *ping_acked;
    size_t npings, pings_cap;
    size_t pings_consumed;

    /* server-state facts from the output */
    bool saw_first_frame;
    bool error_goaway;       /* a GOAWAY with a code other than NO_ERROR was seen */
    int64_t goaway_last_min; /* smallest last-stream-id sent so far, -1 none */

    /* data chunks handed to the engine */
    h2s_chunk **chunks;
    size_t nchunks, chunks_cap;
    uint8_t **owned; /* buffers freed at fini (after the connection) */
    size_t nowned, owned_cap;

    bool in_commit; /* inside h2_conn_out_commit / h2_conn_send */
    uint32_t violations;
};

/* --- Lifecycle ------------------------------------------------------------------ */

void h2s_init(h2s *s, h2s_mode mode);
/* Create the context and the connection.  limits NULL = defaults; mem NULL =
 * libc.  Returns the first failure (ctx_init rv, or H2_E_NOMEM when
 * h2_conn_new returned NULL), H2_OK otherwise.  Does not assert. */
h2_rv h2s_try_start(h2s *s, const h2_limits *limits, h2s_mem *mem);
/* Same, asserting success. */
void h2s_start(h2s *s, const h2_limits *limits, h2s_mem *mem);
/* Free the connection, the context and every copy; check allocator balance
 * and chunk releases. */
void h2s_fini(h2s *s);

/* Run body once per mode, each with a fresh h2s (used by H2S_TEST). */
void h2s_run_mode(void (*body)(h2s *), h2s_mode mode);

/* A test body run in the three modes, one Criterion test per mode. */
#define H2S_TEST(suite, name, desc)                                                                \
    static void suite##__##name(h2s *s);                                                           \
    Test(suite, name##__whole, .description = desc " [whole input]", .timeout = 120)               \
    {                                                                                              \
        h2s_run_mode(suite##__##name, H2S_WHOLE);                                                  \
    }                                                                                              \
    Test(suite, name##__bytewise, .description = desc " [one byte per recv]", .timeout = 120)      \
    {                                                                                              \
        h2s_run_mode(suite##__##name, H2S_BYTEWISE);                                               \
    }                                                                                              \
    Test(suite, name##__iov, .description = desc " [2-iovec prepares, partial commits]",           \
         .timeout = 120)                                                                           \
    {                                                                                              \
        h2s_run_mode(suite##__##name, H2S_IOV);                                                    \
    }                                                                                              \
    static void suite##__##name(h2s *s)

/* --- Script builders (append client bytes) ---------------------------------------- */

size_t h2s_mark(const h2s *s); /* current script length: offsets for assertions */
void h2s_raw(h2s *s, const void *p, size_t n);
void h2s_preface(h2s *s);
/* Any frame, any type (unknown types included); payload may be NULL if len 0. */
void h2s_frame_raw(h2s *s, uint8_t type, uint8_t flags, uint32_t sid, const void *payload,
                   size_t len);
void h2s_settings(h2s *s, const h2_setting *set, size_t n);
void h2s_settings_ack(h2s *s); /* also applies the oldest unacked server SETTINGS to the client */

typedef struct h2s_hopts {
    bool end_stream;
    uint32_t continuations; /* split the block over 1 + continuations frames */
    bool no_end_headers;    /* no END_HEADERS on any frame (the block stays open) */
    bool padded;
    uint8_t pad_len;
    bool priority;
    uint32_t dep;
    uint8_t weight;
    bool exclusive;
    uint8_t extra_flags; /* undefined flags to set on the HEADERS frame */
} h2s_hopts;

/* HEADERS from name/value pairs, HPACK-encoded by the script's encoder
 * (incremental indexing: later blocks use indexed representations).  o may
 * be NULL: END_HEADERS, no END_STREAM. */
void h2s_headers(h2s *s, uint32_t sid, const h2s_kv *kv, size_t n, const h2s_hopts *o);
/* Encode with the script's encoder into a buffer (for hand-made frames). */
size_t h2s_encode(h2s *s, const h2s_kv *kv, size_t n, uint8_t *out, size_t cap);
/* HEADERS with a given field block (split/padded/prioritised per o). */
void h2s_headers_block(h2s *s, uint32_t sid, const uint8_t *block, size_t len, const h2s_hopts *o);
void h2s_continuation(h2s *s, uint32_t sid, bool end_headers, const uint8_t *block, size_t len);
/* A request: :method, :scheme https, :authority example.com, :path, then extra. */
void h2s_request(h2s *s, uint32_t sid, const char *method, const char *path, const h2s_kv *extra,
                 size_t nextra, bool end_stream);
void h2s_get(h2s *s, uint32_t sid, const char *path);
void h2s_data(h2s *s, uint32_t sid, const void *d, size_t len, bool end_stream);
void h2s_data_padded(h2s *s, uint32_t sid, const void *d, size_t len, uint8_t pad_len,
                     bool end_stream);
void h2s_rst(h2s *s, uint32_t sid, uint32_t code);
void h2s_ping(h2s *s, bool ack, const uint8_t opaque[8]);
void h2s_ping_n(h2s *s, uint64_t n); /* PING with n as opaque (big-endian) */
void h2s_goaway(h2s *s, uint32_t last, uint32_t code, const char *debug);
void h2s_window_update(h2s *s, uint32_t sid, uint32_t inc);
void h2s_priority(h2s *s, uint32_t sid, uint32_t dep, uint8_t weight, bool exclusive);
void h2s_priority_update(h2s *s, uint32_t prioritized, const char *field);

/* Raw HPACK helpers for hand-made blocks (RFC 7541 §5.1, §6.2.2). */
size_t h2s_hpack_int(uint8_t *p, uint8_t first, uint8_t prefix_bits, uint64_t v);
/* Literal without indexing, new name, no Huffman. */
size_t h2s_hpack_lit(uint8_t *p, const char *name, size_t nlen, const char *value, size_t vlen);
/* :method GET, :scheme https, :path /, :authority example.com, none indexed. */
size_t h2s_hpack_min_request(uint8_t *p);

/* --- Runner ------------------------------------------------------------------------- */

/* Feed the unfed script.  Returns H2_OK when everything was consumed, the
 * error rv otherwise (also kept in s->rv / s->first_err / s->err_pos). */
h2_rv h2s_feed(h2s *s);
/* Drain output until the engine has nothing left; parse and check it. */
void h2s_drain(h2s *s);
/* Write (h2_conn_send) and commit at most cap bytes, as a peer reading
 * slowly would; parse and check them.  Returns the bytes written. */
size_t h2s_drain_upto(h2s *s, size_t cap);
/* Feed then drain. */
h2_rv h2s_run(h2s *s);
/* preface + SETTINGS(set) + run, then SETTINGS ACK + run; asserts success. */
void h2s_handshake_with(h2s *s, const h2_setting *set, size_t n);
void h2s_handshake(h2s *s);
/* h2_conn_tick at s->now. */
h2_rv h2s_tick(h2s *s);

/* --- Responding (engine calls with tracked chunks) ---------------------------------- */

/* Queue data by reference, split into nchunks tracked chunks; the bytes are
 * copied into harness-owned memory first.  Returns the first non-OK rv. */
h2_rv h2s_send_body(h2s *s, uint32_t sid, const void *data, size_t len, uint32_t nchunks,
                    bool end_stream);
/* A chunk whose release is tracked; data must outlive the h2s. */
h2s_chunk *h2s_chunk_new(h2s *s, uint32_t sid, const uint8_t *data, uint64_t len);
void h2s_chunk_release(void *ctx, const void *data, size_t len); /* h2_release_fn */
/* h2_conn_reset_stream / h2_conn_stream_detach, noted for the oracle. */
h2_rv h2s_reset_stream(h2s *s, uint32_t sid, h2_code code);
h2_rv h2s_detach(h2s *s, uint32_t sid);
/* Response head with C-string fields (no pseudo-headers). */
h2_rv h2s_respond(h2s *s, uint32_t sid, uint16_t status, const h2s_kv *kv, size_t n,
                  bool end_stream);
/* 200 with content-type and body, ended, then detach. */
void h2s_respond_ok(h2s *s, uint32_t sid, const char *body);
/* Deterministic bytes. */
void h2s_pattern(uint8_t *p, size_t n, uint32_t seed);
/* Memory that lives until h2s_fini (after the connection is freed). */
uint8_t *h2s_alloc(h2s *s, size_t n);

/* --- Output views ---------------------------------------------------------------------- */

#define H2S_ANY 0xffffffffu

const h2s_frame *h2s_find(const h2s *s, uint8_t type, uint32_t sid);
const h2s_frame *h2s_last(const h2s *s, uint8_t type, uint32_t sid);
size_t h2s_count(const h2s *s, uint8_t type, uint32_t sid);
/* Index of a frame returned by h2s_find/h2s_last in the server's output
 * (SIZE_MAX for NULL); compare two to check ordering. */
size_t h2s_index_of(const h2s *s, const h2s_frame *f);
int64_t h2s_goaway_code(const h2s *s);            /* last GOAWAY's code, -1 none */
int64_t h2s_goaway_last_id(const h2s *s);         /* last GOAWAY's last-stream-id, -1 none */
int64_t h2s_rst_code(const h2s *s, uint32_t sid); /* first RST code on sid, -1 none */
uint64_t h2s_wu_total(const h2s *s, uint32_t sid);
int64_t h2s_setting(const h2s *s, uint16_t id); /* from the server's first SETTINGS, -1 absent */
h2s_stream *h2s_st(const h2s *s, uint32_t sid); /* NULL if never seen */
int h2s_status(const h2s *s, uint32_t sid);     /* final :status, -1 none */
const uint8_t *h2s_body(const h2s *s, uint32_t sid, size_t *len);
const char *h2s_resp_field(const h2s *s, uint32_t sid, const char *name);
/* Client send windows as the client knows them. */
int64_t h2s_client_conn_window(const h2s *s);
int64_t h2s_client_stream_window(const h2s *s, uint32_t sid);

/* --- Event views ------------------------------------------------------------------------ */

const h2s_ev *h2s_ev_find(const h2s *s, h2_event_type type, uint32_t sid);
size_t h2s_ev_count(const h2s *s, h2_event_type type, uint32_t sid);
const h2s_ev *h2s_req(const h2s *s, uint32_t sid);
const uint8_t *h2s_req_body(const h2s *s, uint32_t sid, size_t *len);
const char *h2s_field_get(const h2s_field *f, uint32_t n, const char *name);

/* --- Assertions (report the caller's file:line and the mode) --------------------------- */

/* The last feed ended in a connection error: rv H2_E_PROTO, h2_conn_fault()
 * code and connection scope, a GOAWAY carrying the code as the last frame,
 * is_done, and a further recv says H2_E_CLOSED.  code2 < 0: only code. */
void h2s_expect_conn_error_(h2s *s, uint32_t code, int64_t code2, const char *file, int line);
#define H2S_EXPECT_CONN_ERROR(s, code) h2s_expect_conn_error_((s), (code), -1, __FILE__, __LINE__)
#define H2S_EXPECT_CONN_ERROR2(s, code, alt)                                                       \
    h2s_expect_conn_error_((s), (code), (alt), __FILE__, __LINE__)
/* Exactly one RST_STREAM with code on sid, no GOAWAY, the connection still
 * answers a PING. */
void h2s_expect_stream_error_(h2s *s, uint32_t sid, uint32_t code, const char *file, int line);
#define H2S_EXPECT_STREAM_ERROR(s, sid, code)                                                      \
    h2s_expect_stream_error_((s), (sid), (code), __FILE__, __LINE__)
/* Either of the above with code (where the RFC lets the receiver choose). */
void h2s_expect_error_any_(h2s *s, uint32_t sid, uint32_t code, const char *file, int line);
#define H2S_EXPECT_ERROR_ANY(s, sid, code)                                                         \
    h2s_expect_error_any_((s), (sid), (code), __FILE__, __LINE__)
/* No error so far, and a PING now gets its ACK. */
void h2s_expect_alive_(h2s *s, const char *file, int line);
#define H2S_EXPECT_ALIVE(s) h2s_expect_alive_((s), __FILE__, __LINE__)

#endif
