/* h2_limits.h - every limit and default of the protocol core, in one place.
 *
 * The defaults follow ../shared/docs/security.md (in line with nghttp2, h2o,
 * nginx, Kestrel, Go, hyper and Envoy).  An h2_limits is read-only session
 * configuration shared by all connections of a server; each connection keeps
 * its own counters and token buckets.
 */
#ifndef SPINDLE_H2_LIMITS_H
#define SPINDLE_H2_LIMITS_H

#include <stdint.h>

typedef struct h2_limits {
    /* Advertised SETTINGS. */
    uint32_t max_concurrent_streams; /* 100: past it, RST_STREAM REFUSED_STREAM */
    uint32_t initial_window_size;    /* per stream, what we advertise */
    uint32_t connection_window;      /* our receive window for the whole connection */
    uint32_t max_frame_size;         /* what we accept (SETTINGS_MAX_FRAME_SIZE) */
    uint32_t header_table_size;      /* our HPACK decoder table (SETTINGS_HEADER_TABLE_SIZE) */
    uint32_t encoder_table_size;     /* our HPACK encoder table, whatever the peer allows */
    uint32_t max_header_list_size;   /* advertised; also the soft decoded-list cap */
    uint8_t enable_connect_protocol; /* RFC 8441: advertise 1 */

    /* What we send. */
    uint32_t max_send_frame_size; /* frames we write: 16 KiB whatever the peer allows */

    /* Header blocks. */
    uint32_t max_continuations;       /* CONTINUATION frames per block */
    uint32_t max_header_block;        /* encoded block bytes */
    uint32_t header_list_hard_factor; /* decoded list past factor * soft: connection error */
    uint32_t max_header_fields_soft;  /* 431 */
    uint32_t max_header_fields_hard;  /* connection error */

    /* Abuse budgets: token buckets (burst, refill per second). */
    uint32_t reset_burst, reset_rate;   /* peer RST_STREAM (Rapid Reset) */
    uint32_t glitch_burst, glitch_rate; /* peer actions that cost us work for nothing */
    uint32_t max_settings_entries;      /* per SETTINGS frame */
    uint32_t max_pending_control;       /* unsent replies the peer provoked: PING and
                                         * SETTINGS ACKs, RST_STREAMs for its errors */
    uint32_t max_unsent_output;         /* soft: stop reading past it */
    uint32_t max_stream_buffered;       /* per-stream queued response bytes (backpressure) */
    uint32_t max_requests;              /* per connection; 0 = unlimited */
    uint32_t reset_memory;              /* streams we reset whose late frames we ignore */

    /* Timeouts in milliseconds (0 = none). */
    uint32_t preface_timeout_ms;
    uint32_t settings_timeout_ms;
    uint32_t header_block_timeout_ms;
    uint32_t idle_timeout_ms;
    uint32_t send_timeout_ms; /* no send progress */
    /* Keepalive: a PING every ping_interval_ms (0 = none, the default); one
     * not acknowledged within ping_timeout_ms ends the connection (GOAWAY
     * NO_ERROR "ping timeout"; 0 = never).  One is in flight at a time, the
     * next goes ping_interval_ms after the previous was sent and answered.
     * Their ACKs are not activity: an idle connection that answers them is
     * still closed at idle_timeout_ms. */
    uint32_t ping_interval_ms;
    uint32_t ping_timeout_ms;
} h2_limits;

#define H2_LIMITS_DEFAULT_INIT                                                                     \
    {                                                                                              \
        .max_concurrent_streams = 100, .initial_window_size = 256u * 1024u,                        \
        .connection_window = 1024u * 1024u, .max_frame_size = 16384, .header_table_size = 4096,    \
        .encoder_table_size = 4096, .max_header_list_size = 65536, .enable_connect_protocol = 1,   \
        .max_send_frame_size = 16384, .max_continuations = 8, .max_header_block = 65536,           \
        .header_list_hard_factor = 4, .max_header_fields_soft = 100,                               \
        .max_header_fields_hard = 1000, .reset_burst = 1000, .reset_rate = 33,                     \
        .glitch_burst = 10000, .glitch_rate = 330, .max_settings_entries = 32,                     \
        .max_pending_control = 1000, .max_unsent_output = 512u * 1024u,                            \
        .max_stream_buffered = 256u * 1024u, .max_requests = 10000, .reset_memory = 64,            \
        .preface_timeout_ms = 10000, .settings_timeout_ms = 10000,                                 \
        .header_block_timeout_ms = 10000, .idle_timeout_ms = 60000, .send_timeout_ms = 30000,      \
        .ping_interval_ms = 0, .ping_timeout_ms = 20000,                                           \
    }

/* The defaults above, as an object. */
const h2_limits *h2_limits_default(void);

/* Check a configuration for values the protocol cannot honour (frame size
 * outside [2^14, 2^24-1], windows above 2^31-1, zero caps where zero makes
 * no sense).  Returns NULL when valid, else a static message naming the field. */
const char *h2_limits_check(const h2_limits *l);

/* Which limit a peer ran into.  The engine counts every hit in its context
 * (h2_ctx.limit_hits: per shard, no per-connection cost); the fault reason
 * of a connection ended by one is the GOAWAY's debug data. */
typedef enum h2_limit_id {
    H2_LIMIT_RESETS,           /* Rapid Reset budget spent: GOAWAY ENHANCE_YOUR_CALM */
    H2_LIMIT_GLITCHES,         /* glitch budget spent: GOAWAY ENHANCE_YOUR_CALM */
    H2_LIMIT_STREAMS,          /* past max_concurrent_streams: RST_STREAM REFUSED_STREAM */
    H2_LIMIT_CONTINUATIONS,    /* CONTINUATION frames per block */
    H2_LIMIT_HEADER_BLOCK,     /* encoded header block size */
    H2_LIMIT_HEADER_LIST,      /* decoded list or field count: 431, or GOAWAY past the hard cap */
    H2_LIMIT_SETTINGS_ENTRIES, /* entries per SETTINGS frame */
    H2_LIMIT_CONTROL_QUEUE,    /* unsent control replies: reading paused (once per pause) */
    H2_LIMIT_OUTPUT_BACKLOG,   /* unsent output: reading paused (once per pause) */
    H2_LIMIT_MAX_REQUESTS,     /* requests per connection: graceful GOAWAY */
    H2_LIMIT_PREFACE_TIMEOUT,
    H2_LIMIT_SETTINGS_TIMEOUT,
    H2_LIMIT_HEADER_TIMEOUT,
    H2_LIMIT_SEND_TIMEOUT, /* no send progress (zero window or unread socket) */
    H2_LIMIT_IDLE_TIMEOUT,
    H2_LIMIT_PING_TIMEOUT, /* a keepalive PING not acknowledged in time: GOAWAY */
    H2_LIMIT_COUNT
} h2_limit_id;

/* A short stable name ("rapid-reset", "glitches", ...) for logs and stats. */
const char *h2_limit_name(h2_limit_id id);

/* A token bucket: starts full, refills `rate` tokens per second up to
 * `burst`, time given in milliseconds by the caller. */
typedef struct h2_bucket {
    uint64_t last_ms;
    uint32_t tokens;
    uint32_t burst;
    uint32_t rate;
} h2_bucket;

void h2_bucket_init(h2_bucket *b, uint32_t burst, uint32_t rate, uint64_t now_ms);
/* Take one token.  Returns 0 on success, -1 when the bucket is empty. */
int h2_bucket_take(h2_bucket *b, uint64_t now_ms);

#endif
