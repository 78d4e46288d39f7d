/* spindle.h - the public API of spindle, a thread-per-core HTTP/2 server
 * framework.  This is the only header an application includes.
 *
 * Model.  spindle_run() starts one shard per core.  Each shard owns an
 * io_uring ring, a listening socket (SO_REUSEPORT) and every connection it
 * accepted, for the connection's whole life.  The application's handler
 * callbacks run on the shard thread that owns the stream (the fast path),
 * or, for a handler marked blocking, on the shard's offload thread; either
 * way every callback for one stream runs on one thread, one at a time, and
 * the spindle_* calls on that stream are made from that thread.
 *
 * Errors.  Functions returning int return 0 on success or a negative
 * SPINDLE_E* value; spindle_strerror() names it.
 *
 * Memory.  Response bodies are handed over by reference: spindle sends
 * straight from the application's buffer and calls the release callback
 * exactly once, after the kernel is done with the bytes (for zero-copy
 * sends, after the completion notification), or when the stream or the
 * connection ends first.  (A body of at most 1 KiB handed over whole is
 * copied next to its frame header, which costs less than an iovec of its
 * own; it is still released only after the send that carried it.)  Request data passed to callbacks is valid only
 * during the callback.
 */
#ifndef SPINDLE_H
#define SPINDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- Version ------------------------------------------------------------- */

/* The version of this header.  The build reads these three lines: they are
 * the project's version (CMake's project(), the package, spindle.pc and
 * spindleConfigVersion.cmake), so a release changes them here only. */
#define SPINDLE_VERSION_MAJOR 0
#define SPINDLE_VERSION_MINOR 1
#define SPINDLE_VERSION_PATCH 0
/* One number that compares in order: 0x00MMmmpp (0.1.0 is 0x000100). */
#define SPINDLE_VERSION_NUM                                                                        \
    (((uint32_t)SPINDLE_VERSION_MAJOR << 16) | ((uint32_t)SPINDLE_VERSION_MINOR << 8) |            \
     (uint32_t)SPINDLE_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* Every function declared below is exported by the shared library, which is
 * built with -fvisibility=hidden so that nothing else is. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* The version of the library linked at run time, as SPINDLE_VERSION_NUM;
 * with a shared library it may differ from the header's:
 * @code
 * #include <stdio.h>
 * #include <spindle.h>
 *
 * int main(void)
 * {
 *     uint32_t v = spindle_version();
 *     printf("spindle %u.%u.%u (built with %d.%d.%d)\n", (unsigned)(v >> 16),
 *            (unsigned)((v >> 8) & 0xff), (unsigned)(v & 0xff), SPINDLE_VERSION_MAJOR,
 *            SPINDLE_VERSION_MINOR, SPINDLE_VERSION_PATCH);
 *     return v >> 8 == SPINDLE_VERSION_NUM >> 8 ? 0 : 1; // same major.minor: same ABI
 * }
 * @endcode
 * Any thread. */
uint32_t spindle_version(void);

/* --- Errors -------------------------------------------------------------- */

enum {
    SPINDLE_OK = 0,
    SPINDLE_EINVAL = -1,  /* bad argument or configuration */
    SPINDLE_ESTATE = -2,  /* not valid in the stream's state (e.g. reset) */
    SPINDLE_ECLOSED = -3, /* the stream or connection is gone */
    SPINDLE_ENOMEM = -4,
    SPINDLE_ESYS = -5,   /* a system call failed; the log says which */
    SPINDLE_EURING = -6, /* io_uring unavailable; the log names the cause */
};

/* A static description of a SPINDLE_E* code. */
const char *spindle_strerror(int err);

/* HTTP/2 error codes (RFC 9113 section 7), for spindle_reset() and
 * on_reset. */
enum {
    SPINDLE_H2_NO_ERROR = 0x0,
    SPINDLE_H2_PROTOCOL_ERROR = 0x1,
    SPINDLE_H2_INTERNAL_ERROR = 0x2,
    SPINDLE_H2_FLOW_CONTROL_ERROR = 0x3,
    SPINDLE_H2_SETTINGS_TIMEOUT = 0x4,
    SPINDLE_H2_STREAM_CLOSED = 0x5,
    SPINDLE_H2_FRAME_SIZE_ERROR = 0x6,
    SPINDLE_H2_REFUSED_STREAM = 0x7,
    SPINDLE_H2_CANCEL = 0x8,
    SPINDLE_H2_COMPRESSION_ERROR = 0x9,
    SPINDLE_H2_CONNECT_ERROR = 0xa,
    SPINDLE_H2_ENHANCE_YOUR_CALM = 0xb,
    SPINDLE_H2_INADEQUATE_SECURITY = 0xc,
    SPINDLE_H2_HTTP_1_1_REQUIRED = 0xd,
};

/* --- Configuration ------------------------------------------------------- */

/* Protocol limits; defaults follow docs/security.md (nghttp2, h2o, nginx). */
typedef struct spindle_limits {
    uint32_t max_concurrent_streams;    /* 100 */
    uint32_t initial_window_size;       /* 256 KiB per stream */
    uint32_t connection_window;         /* 1 MiB */
    uint32_t max_frame_size;            /* 16384, what we accept */
    uint32_t max_header_list_size;      /* 64 KiB decoded */
    uint32_t max_header_fields;         /* 100 (431 past it) */
    uint32_t max_continuations;         /* 8 */
    uint32_t reset_burst, reset_rate;   /* Rapid Reset budget: 1000, 33/s */
    uint32_t glitch_burst, glitch_rate; /* 10000, 330/s */
    uint32_t max_requests;              /* per connection, 10000; 0 = unlimited */
    uint32_t max_stream_buffered;       /* 256 KiB of queued response data */
    uint32_t idle_timeout_ms;           /* 60000 */
    uint32_t preface_timeout_ms;        /* 10000 */
    uint32_t settings_timeout_ms;       /* 10000 */
    uint32_t header_timeout_ms;         /* 10000 */
    uint32_t send_timeout_ms;           /* 30000 */
} spindle_limits;

/* HTTP/1.1 limits (defaults in proto/h1_limits.h; each hit is counted in the
 * shard statistics).  Set by name as "h1-" + the field name with dashes. */
typedef struct spindle_h1_limits {
    uint32_t max_request_line;  /* 8192 bytes (414 past it) */
    uint32_t max_field_line;    /* 8192 bytes (431) */
    uint32_t max_fields;        /* 100 (431) */
    uint32_t max_head;          /* 64 KiB (431) */
    uint32_t max_chunk_line;    /* 1024 bytes (400) */
    uint64_t max_body;          /* 0 = unlimited (413) */
    uint32_t max_pipelined;     /* 16 requests parsed ahead of their responses */
    uint32_t max_requests;      /* 10000 per connection; 0 = unlimited */
    uint32_t max_unsent_output; /* 512 KiB queued: reading pauses */
    uint32_t header_timeout_ms; /* 10000: slowloris (408 and close) */
    uint32_t idle_timeout_ms;   /* 60000: keep-alive idle */
} spindle_h1_limits;

typedef struct spindle_config {
    const char *address;       /* "127.0.0.1", "::", "0.0.0.0" (default "127.0.0.1") */
    uint16_t port;             /* 8080; 0 picks a free port (see on_listen) */
    uint32_t shards;           /* 0 = one per online CPU */
    bool pin;                  /* pin shard i to the i-th allowed CPU (default true) */
    uint32_t max_conns;        /* per shard (default 4096) */
    uint32_t drain_timeout_ms; /* graceful shutdown bound (default 10000) */
    uint32_t
        offload_threads;   /* per shard, for blocking handlers and spindle_offload() (default 1) */
    uint32_t zc_threshold; /* sends of at least this many bytes use SEND_ZC;
                                  0 = never (default 0: see docs/send-path.md) */
    int log_level;         /* 0 error, 1 warn, 2 info (default), 3 debug */
    spindle_limits limits;
    /* TLS (wolfSSL; docs/tls.md).  Off unless tls_cert is set: then every
     * shard also listens on tls_port and serves HTTP/2 over TLS there (ALPN
     * "h2" preferred, "http/1.1" or no ALPN get HTTP/1.1; TLS 1.2 with AEAD
     * suites, or TLS 1.3), while port keeps serving cleartext.  The files are read at spindle_run(), which fails with a
     * message naming the file and the cause when they are unreadable or do
     * not belong together. */
    uint16_t tls_port;                 /* 8443; 0 picks a free port (see on_listen_tls) */
    const char *tls_cert;              /* PEM: the certificate, then its chain (NULL: no TLS) */
    const char *tls_key;               /* PEM: its private key (required with tls_cert) */
    uint32_t tls_handshake_timeout_ms; /* accept to handshake done (default 10000) */
    uint32_t tls_ticket_lifetime_s;    /* session ticket key lifetime; keys rotate after
                                          it and decrypt for twice as long (default 3600) */
    /* HTTP/1.1 on the same listeners (the first bytes, or ALPN, choose). */
    spindle_h1_limits h1;
    bool h2c_upgrade; /* "Upgrade: h2c" switches to HTTP/2 (default true) */
} spindle_config;

/* Defaults for everything above. */
spindle_config spindle_config_default(void);

/* Set one configuration value by name, as the command line spells it:
 * "address", "port", "shards", "pin", "max-conns", "drain-timeout", "offload-threads",
 * "zc-threshold",
 * "log-level", or a limit ("max-concurrent-streams", "initial-window-size",
 * "connection-window", "max-frame-size", "max-header-list-size",
 * "max-header-fields", "max-continuations", "reset-burst", "reset-rate",
 * "glitch-burst", "glitch-rate", "max-requests", "max-stream-buffered",
 * "idle-timeout", "preface-timeout", "settings-timeout", "header-timeout",
 * "send-timeout"; times in milliseconds), or TLS: "tls-port", "tls-cert",
 * "tls-key" (file names: the strings are referenced, not copied),
 * "tls-handshake-timeout" (milliseconds), "tls-ticket-lifetime" (seconds),
 * or HTTP/1.1: "h2c-upgrade" (0 or 1) and the limits "h1-max-request-line",
 * "h1-max-field-line", "h1-max-fields", "h1-max-head", "h1-max-chunk-line",
 * "h1-max-body" (bytes, 0 = unlimited), "h1-max-pipelined",
 * "h1-max-requests", "h1-max-unsent-output", "h1-header-timeout",
 * "h1-idle-timeout" (milliseconds).
 * On error returns SPINDLE_EINVAL and writes a one-line reason into err (if
 * errlen > 0). */
int spindle_config_set(spindle_config *cfg, const char *name, const char *value, char *err,
                       size_t errlen);

/* The same for "name=value" (a command line's --set argument).  value
 * points into pair, which must outlive cfg (argv does). */
int spindle_config_set_pair(spindle_config *cfg, const char *pair, char *err, size_t errlen);

/* Check the whole configuration; 0 or SPINDLE_EINVAL with a reason in err. */
int spindle_config_check(const spindle_config *cfg, char *err, size_t errlen);

/* --- Requests ------------------------------------------------------------ */

/* A header field.  In spindle_respond() and friends a zero length means
 * "NUL-terminated: use strlen()", so designated initializers are enough:
 * @code
 * int respond_text(spindle_stream *s)
 * {
 *     static const spindle_header h[] = {
 *         {.name = "content-type", .value = "text/plain"},
 *         {.name = "cache-control", .value = "max-age=60"},
 *     };
 *     return spindle_respond(s, 200, h, 2, false);
 * }
 * @endcode
 * Fields spindle hands to the application always carry their lengths and
 * are not NUL-terminated. */
typedef struct spindle_header {
    const char *name;
    const char *value;
    uint32_t name_len;
    uint32_t value_len;
} spindle_header;

typedef struct spindle_str {
    const char *ptr; /* NULL when absent */
    size_t len;
} spindle_str;

typedef struct spindle_request {
    spindle_str method, scheme, authority, path;
    spindle_str protocol;          /* RFC 8441 :protocol (extended CONNECT) */
    const spindle_header *headers; /* regular fields, in order */
    size_t nheaders;
    int64_t content_length; /* -1 when absent */
    bool has_body;          /* false: the request ended with its head */
    bool expect_continue;   /* "expect: 100-continue" */
    uint8_t urgency;        /* RFC 9218, 0 (highest) .. 7; default 3 */
    bool incremental;
    uint8_t http_version; /* the protocol that carried it: 2 (HTTP/2) or 1 (HTTP/1.x) */
} spindle_request;

typedef struct spindle_stream spindle_stream;

/* --- Handler ------------------------------------------------------------- */

typedef struct spindle_handler {
    /* A request head arrived.  Respond now or later (keep s until on_close). */
    void (*on_request)(spindle_stream *s, const spindle_request *req, void *app);
    /* Request body bytes; end marks the last call (len may be 0).  The
     * flow-control windows reopen when this returns, unless the handler
     * called spindle_body_pause() (then after spindle_body_resume()). */
    void (*on_body)(spindle_stream *s, const uint8_t *data, size_t len, bool end, void *app);
    /* Request trailers (the body has ended). */
    void (*on_trailers)(spindle_stream *s, const spindle_header *h, size_t n, void *app);
    /* The stream was reset (by the peer, or by spindle because the peer
     * broke a rule) with error_code (SPINDLE_H2_*); nothing more can be
     * sent.  on_close follows. */
    void (*on_reset)(spindle_stream *s, uint32_t error_code, void *app);
    /* Queued response bytes fell below limits.max_stream_buffered. */
    void (*on_writable)(spindle_stream *s, void *app);
    /* The last callback for s: free per-stream state; s is invalid after. */
    void (*on_close)(spindle_stream *s, void *app);
    /* Run these callbacks on the shard's offload thread (for handlers that
     * block).  Output is handed back to the shard over a queue.  A handler
     * that blocks only sometimes leaves this false and hands just those
     * requests over with spindle_offload(). */
    bool blocking;
} spindle_handler;

/* Hand one request to the shard's offload thread, for a handler that is
 * not `blocking` but finds, in on_request, that this request would block
 * (a file whose pages or directory entries are not cached, say): the rest
 * are served inline, without the two thread hops per request that
 * `blocking` costs.  Call it from on_request, on the shard thread, before
 * responding, and return without touching s again: fn(s, req, app) then
 * runs on the offload thread with a copy of the request, and every later
 * callback for s (on_body, on_writable, on_close...) runs there too.  The
 * shard starts its offload threads (cfg.offload_threads) at the first
 * call.  0; SPINDLE_ESTATE outside on_request or on the offload thread;
 * SPINDLE_EINVAL for a NULL fn; SPINDLE_ESYS when the threads cannot be
 * started (the handler still owns s and must answer it). */
typedef void (*spindle_request_fn)(spindle_stream *s, const spindle_request *req, void *app);
int spindle_offload(spindle_stream *s, spindle_request_fn fn);

/* --- Responding ---------------------------------------------------------- */

/* Called exactly once when spindle no longer needs a body buffer. */
typedef void (*spindle_release_fn)(void *ctx, const void *data, size_t len);

/* Send a response head.  status 100..199 sends an informational response
 * (100 Continue, 103 Early Hints) and may repeat; 200..599 is the final
 * head; end = true ends the response (no body). */
int spindle_respond(spindle_stream *s, uint16_t status, const spindle_header *h, size_t n,
                    bool end);

/* Queue body bytes by reference (no copy).  release (may be NULL for static
 * data) is called exactly once, also when this fails with a code other than
 * SPINDLE_EINVAL.  end = true ends the body. */
int spindle_send(spindle_stream *s, const void *data, size_t len, bool end,
                 spindle_release_fn release, void *release_ctx);

/* Queue a copy of the bytes (for small, transient bodies). */
int spindle_send_copy(spindle_stream *s, const void *data, size_t len, bool end);

/* End the body with trailers (sent after everything queued). */
int spindle_send_trailers(spindle_stream *s, const spindle_header *h, size_t n);

/* Reset the stream with an RFC 9113 error code (SPINDLE_H2_CANCEL, ...). */
int spindle_reset(spindle_stream *s, uint32_t error_code);

/* Response bytes queued and not yet sent; wait for on_writable while this
 * is at or above limits.max_stream_buffered. */
size_t spindle_stream_buffered(const spindle_stream *s);

/* Stop / restart delivering request body (backpressure on the peer). */
void spindle_body_pause(spindle_stream *s);
void spindle_body_resume(spindle_stream *s);

/* Call fn(s, app) on the stream's thread after ms milliseconds, without
 * blocking anything: for handlers that wait (timeouts, long polls).  One
 * timer per stream; a new call replaces the pending one.  The timer is
 * dropped if the stream closes first.  0 or SPINDLE_ECLOSED. */
typedef void (*spindle_timer_fn)(spindle_stream *s, void *app);
int spindle_stream_after(spindle_stream *s, uint32_t ms, spindle_timer_fn fn);

void spindle_stream_set_user(spindle_stream *s, void *user);
void *spindle_stream_user(const spindle_stream *s);
/* The shard (0-based) running this stream. */
uint32_t spindle_stream_shard(const spindle_stream *s);

/* --- Running ------------------------------------------------------------- */

typedef struct spindle_hooks {
    /* Each shard is listening; port is the actual port (useful with port 0). */
    void (*on_listen)(uint32_t shard, const char *address, uint16_t port, void *app);
    /* The same for the TLS listener (only with tls_cert set), called after
     * on_listen; port is the actual TLS port. */
    void (*on_listen_tls)(uint32_t shard, const char *address, uint16_t port, void *app);
} spindle_hooks;

/* Serve until SIGINT or SIGTERM (or spindle_stop()), then shut down
 * gracefully: GOAWAY, in-flight streams finish, new ones are refused, exit
 * when drained or at drain_timeout_ms.  Returns 0, or a SPINDLE_E* code
 * after logging the cause (bad configuration, io_uring unavailable, the
 * address in use...).  hooks may be NULL. */
int spindle_run(const spindle_config *cfg, const spindle_handler *handler,
                const spindle_hooks *hooks, void *app);

/* Ask a running spindle_run() to shut down gracefully (async-signal-safe). */
void spindle_stop(void);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif
