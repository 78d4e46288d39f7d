/* h1_limits.h - every limit and default of the HTTP/1.1 codec, in one place.
 *
 * Like h2_limits: read-only configuration shared by all connections of a
 * server (referenced by the h1_ctx, never copied); each connection keeps its
 * own counters and deadlines, and every hit is counted per context
 * (h1_ctx.limit_hits: per shard) by h1_limit_id.
 *
 * Which status a hit produces (the codec writes the response and closes):
 *   request line too long                      414
 *   a field line, the field count, the head    431
 *   request body (Content-Length or chunked)   413
 *   chunk-size line too long                   400
 *   header-read timeout (slowloris)            408, then close
 *   keep-alive idle timeout                    close, nothing sent
 *   pipelined requests held, unsent output     reading pauses (no error)
 *   requests per connection                    the last one gets "Connection: close"
 *   WebSocket idle (after the handshake)       close (core/conn_ws.c; the codec is done)
 */
#ifndef SPINDLE_H1_LIMITS_H
#define SPINDLE_H1_LIMITS_H

#include <stdint.h>

typedef struct h1_limits {
    uint32_t max_request_line;  /* bytes, without CRLF: 414 past it */
    uint32_t max_field_line;    /* bytes of one field line (name, colon, value): 431 */
    uint32_t max_fields;        /* field lines per head or trailer section: 431 */
    uint32_t max_head;          /* bytes of a whole head or trailer section: 431 */
    uint32_t max_chunk_line;    /* bytes of a chunk-size line with its extensions: 400 */
    uint64_t max_body;          /* request body bytes, 0 = unlimited: 413 */
    uint32_t max_pipelined;     /* requests parsed and not yet answered: reading pauses */
    uint32_t max_requests;      /* per connection, 0 = unlimited: then Connection: close */
    uint32_t max_unsent_output; /* queued response bytes: reading pauses past it */
    /* Timeouts in milliseconds (0 = none). */
    uint32_t header_timeout_ms; /* from a request's first byte (or accept) to its full head */
    uint32_t idle_timeout_ms;   /* keep-alive: between requests, nothing in flight */
    /* A WebSocket over HTTP/1.1 (core/conn_ws.c, not the codec): no byte read
     * from the client nor written to it for this long closes it.  60 s as
     * nginx's proxy_read_timeout, which ends idle proxied WebSockets; an
     * application that pings more often than this keeps its sockets. */
    uint32_t ws_idle_timeout_ms;
} h1_limits;

/* nginx: 8 KiB large_client_header_buffers, h2o/Go: 64 KiB heads (cf.
 * h2_limits.max_header_list_size), 100 fields (Kestrel, h2 soft cap). */
#define H1_LIMITS_DEFAULT_INIT                                                                     \
    {                                                                                              \
        .max_request_line = 8192, .max_field_line = 8192, .max_fields = 100, .max_head = 65536,    \
        .max_chunk_line = 1024, .max_body = 0, .max_pipelined = 16, .max_requests = 10000,         \
        .max_unsent_output = 512u * 1024u, .header_timeout_ms = 10000, .idle_timeout_ms = 60000,   \
        .ws_idle_timeout_ms = 60000,                                                               \
    }

/* The defaults above, as an object. */
const h1_limits *h1_limits_default(void);

/* NULL when the configuration is usable, else a static message naming the
 * field (zero where zero makes no sense, a line longer than the head...). */
const char *h1_limits_check(const h1_limits *l);

typedef enum h1_limit_id {
    H1_LIMIT_REQUEST_LINE,    /* 414 */
    H1_LIMIT_FIELD_LINE,      /* 431 */
    H1_LIMIT_FIELDS,          /* 431 */
    H1_LIMIT_HEAD,            /* 431 */
    H1_LIMIT_CHUNK_LINE,      /* 400 */
    H1_LIMIT_BODY,            /* 413 */
    H1_LIMIT_PIPELINED,       /* reading paused: max_pipelined requests unanswered */
    H1_LIMIT_OUTPUT_BACKLOG,  /* reading paused: max_unsent_output */
    H1_LIMIT_MAX_REQUESTS,    /* Connection: close on the last one */
    H1_LIMIT_HEADER_TIMEOUT,  /* 408 and close */
    H1_LIMIT_IDLE_TIMEOUT,    /* close */
    H1_LIMIT_WS_IDLE_TIMEOUT, /* a WebSocket closed (counted by core/conn_ws.c) */
    H1_LIMIT_COUNT
} h1_limit_id;

/* A short stable name ("request-line", ...) for logs and stats. */
const char *h1_limit_name(h1_limit_id id);

#endif
