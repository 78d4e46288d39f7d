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
#define SPINDLE_VERSION_MINOR 2
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
    SPINDLE_ESYS = -5,      /* a system call failed; the log says which */
    SPINDLE_EURING = -6,    /* io_uring unavailable; the log names the cause */
    SPINDLE_EAGAIN = -7,    /* a bounded queue is full: nothing was queued; the
                            caller decides (retry later, answer 503) */
    SPINDLE_ETIMEDOUT = -8, /* an upstream call or PING ran out of time */
    SPINDLE_EUPSTREAM = -9, /* the upstream origin could not be reached, broke
                               the connection, or reset the call's stream */
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
    /* HTTP/2 keepalive (h2c and TLS): a PING every ping_interval_ms (0 = off,
     * the default, as in Envoy and h2o); one not acknowledged within
     * ping_timeout_ms ends the connection with GOAWAY and counts the limit
     * "ping-timeout" (0 = never).  Answered PINGs are not activity: an idle
     * connection that answers them still closes at idle_timeout_ms. */
    uint32_t ping_interval_ms; /* 0 */
    uint32_t ping_timeout_ms;  /* 20000 (gRPC's keepalive timeout) */
} spindle_limits;

/* HTTP/1.1 limits (defaults in proto/h1_limits.h; each hit is counted in the
 * shard statistics).  Set by name as "h1-" + the field name with dashes. */
typedef struct spindle_h1_limits {
    uint32_t max_request_line;   /* 8192 bytes (414 past it) */
    uint32_t max_field_line;     /* 8192 bytes (431) */
    uint32_t max_fields;         /* 100 (431) */
    uint32_t max_head;           /* 64 KiB (431) */
    uint32_t max_chunk_line;     /* 1024 bytes (400) */
    uint64_t max_body;           /* 0 = unlimited (413) */
    uint32_t max_pipelined;      /* 16 requests parsed ahead of their responses */
    uint32_t max_requests;       /* 10000 per connection; 0 = unlimited */
    uint32_t max_unsent_output;  /* 512 KiB queued: reading pauses */
    uint32_t header_timeout_ms;  /* 10000: slowloris (408 and close) */
    uint32_t idle_timeout_ms;    /* 60000: keep-alive idle */
    uint32_t ws_idle_timeout_ms; /* 60000: a WebSocket with no byte either way; 0 = none */
} spindle_h1_limits;

typedef struct spindle_config {
    const char *address;       /* "127.0.0.1", "::", "0.0.0.0" (default "127.0.0.1") */
    uint16_t port;             /* 8080; 0 picks a free port (see on_listen) */
    uint32_t shards;           /* 0 = one per online CPU */
    bool pin;                  /* pin shard i to the i-th allowed CPU (default true) */
    uint32_t max_conns;        /* per shard; 0 (the default): derived from the descriptor
                                  limit, which spindle_run raises to its hard limit;
                                  past it connections wait in the accept queue */
    uint32_t drain_timeout_ms; /* graceful shutdown bound (default 10000) */
    uint32_t
        offload_threads;   /* per shard, for blocking handlers and spindle_offload() (default 1) */
    uint32_t zc_threshold; /* sends of at least this many bytes use SEND_ZC;
                                  0 = never (default 0: see docs/send-path.md) */
    uint32_t ring_spin_us; /* low-latency mode: before sleeping, each shard
                              polls its ring this many microseconds, so a
                              request arriving meanwhile is received without a
                              wake-up; the core stays busy while idle for that
                              long (default 0: off; docs/io-profile.md) */
    uint32_t ring_poll_us; /* adaptive low-latency mode: before sleeping, each
                              shard polls its ring for a window learned from
                              its recent idle periods, at most this many
                              microseconds: back-to-back requests (one
                              stream) are received without a wake-up, an idle
                              shard or sparse traffic costs no poll, but the
                              short gaps of a client-bound multiplexed load
                              are polled too (default 0: off; ignored when
                              ring_spin_us is set; docs/io-profile.md) */
    uint32_t send_nocqe;   /* 1: small sends post no completion when they
                            succeed (IOSQE_CQE_SKIP_SUCCESS; docs/io-profile.md):
                            copied and committed when submitted, so one
                            io_uring_enter per request at one stream.  Default
                            1 (used when the kernel offers it); 0: every send
                            posts its completion */
    uint32_t post_queue_size; /* messages each shard's spindle_post() queue holds,
                                 a power of two in 2..1048576; beyond it a post is
                                 SPINDLE_EAGAIN (default 4096: 128 KiB a shard) */
    int log_level;            /* 0 error, 1 warn, 2 info (default), 3 debug */
    spindle_limits limits;
    /* TLS (wolfSSL; docs/tls.md).  Off unless tls_cert is set: then every
     * shard also listens on tls_port and serves HTTP/2 over TLS there (ALPN
     * "h2" preferred, "http/1.1" or no ALPN get HTTP/1.1; TLS 1.2 with AEAD
     * suites, or TLS 1.3), while port keeps serving cleartext.  The files
     * are read at spindle_run(), which fails with a message naming the file
     * and the cause when they are unreadable or do not belong together. */
    uint16_t tls_port;                 /* 8443; 0 picks a free port (see on_listen_tls) */
    const char *tls_cert;              /* PEM: the certificate, then its chain (NULL: no TLS) */
    const char *tls_key;               /* PEM: its private key (required with tls_cert) */
    uint32_t tls_handshake_timeout_ms; /* accept to handshake done (default 10000) */
    uint32_t tls_ticket_lifetime_s;    /* session ticket key lifetime; keys rotate after
                                          it and decrypt for twice as long (default 3600) */
    /* Operators' view (see "Operators' view" below and docs/ops.md). */
    const char *metrics_path;  /* serve Prometheus metrics at this path on the main
                                  listeners (NULL: not there; default NULL) */
    const char *admin_address; /* the admin listener's address (NULL: address) */
    uint16_t admin_port;       /* HTTP/1.1 admin listener serving metrics at
                                  metrics_path or /metrics (0: none, the default) */
    const char *access_log;    /* a file (appended to), "-" for stdout, NULL: off */
    int access_log_format;     /* 0 text (combined-like), 1 JSON lines */
    const char *server_header; /* the default `server` value ("spindle"; NULL: none) */
    bool date_header;          /* add `date` unless set by the handler (default true) */
    /* Deployment behind a load balancer (docs/deploy.md).  The two paths
     * are answered by spindle itself, before the handler, on every listener
     * (GET or HEAD, the query ignored): health_path 200 "ok" while the
     * process runs; ready_path 200 "ready" while it serves and 503
     * "draining" from SIGTERM/SIGINT/spindle_stop() (or the hand-over to a
     * new binary) on.  The strings are referenced, not copied. */
    const char *health_path;    /* liveness, e.g. "/healthz" (NULL: not served) */
    const char *ready_path;     /* readiness, e.g. "/readyz" (NULL: not served) */
    uint32_t shutdown_delay_ms; /* on a stop: readiness turns 503 and spindle keeps
                                   serving (and accepting) this long before the
                                   GOAWAY drain; a second signal cuts it short
                                   (default 0: drain at once) */
    uint32_t drain_grace_ms;    /* a connection accepted but not yet speaking (no byte
                                   read, or its TLS handshake under way) when the
                                   drain begins waits this long for its first
                                   request, then is served drained (default 1000) */
    bool socket_activation;     /* take the listeners from LISTEN_FDS when LISTEN_PID
                                   is this process (systemd's protocol; default true) */
    const char *upgrade_socket; /* unix socket path for the binary upgrade: a new
                                   process started with the same path takes this
                                   one's listening sockets, then this one drains
                                   (NULL: off) */
    /* HTTP/1.1 on the same listeners (the first bytes, or ALPN, choose). */
    spindle_h1_limits h1;
    bool h2c_upgrade; /* "Upgrade: h2c" switches to HTTP/2 (default true) */
    /* Lingering close (as nginx's lingering_close; docs/runtime.md): when
     * spindle closes a connection in order (after its final response, its
     * GOAWAY or close_notify) it shuts down writing and reads and discards
     * what the client still sends until the client closes, so the kernel
     * does not answer unread input with RST and drop responses the client
     * has not read yet.  Bounded: at most lingering_time_ms in all,
     * lingering_timeout_ms without a byte, lingering_bytes discarded; while
     * draining, drain-grace at most.  Not after a connection error (an
     * HTTP/2 GOAWAY with an error or a limit, a TLS alert). */
    uint32_t lingering_time_ms;    /* 30000; 0 = close at once, no lingering */
    uint32_t lingering_timeout_ms; /* 5000; 0 = no lingering */
    uint32_t lingering_bytes;      /* 4 MiB (four default connection windows) */
} spindle_config;

/* Defaults for everything above. */
spindle_config spindle_config_default(void);

/* Set one configuration value by name, as the command line spells it:
 * "address", "port", "shards", "pin", "max-conns", "drain-timeout", "offload-threads",
 * "zc-threshold", "ring-spin-us", "ring-poll-us", "send-nocqe", "post-queue-size",
 * "log-level", or a limit ("max-concurrent-streams", "initial-window-size",
 * "connection-window", "max-frame-size", "max-header-list-size",
 * "max-header-fields", "max-continuations", "reset-burst", "reset-rate",
 * "glitch-burst", "glitch-rate", "max-requests", "max-stream-buffered",
 * "idle-timeout", "preface-timeout", "settings-timeout", "header-timeout",
 * "send-timeout", "ping-interval", "ping-timeout"; times in milliseconds), or TLS: "tls-port", "tls-cert",
 * "tls-key" (file names: the strings are referenced, not copied),
 * "tls-handshake-timeout" (milliseconds), "tls-ticket-lifetime" (seconds),
 * or the operators' view: "metrics-path", "admin-address", "admin-port",
 * "access-log" (a file, "-" for stdout, "" off), "access-log-format"
 * ("text" or "json"), "server-header" ("" for none), "date-header" (0/1),
 * or deployment: "health-path", "ready-path" (referenced, not copied),
 * "shutdown-delay" (milliseconds), "socket-activation" (0 or 1),
 * "upgrade-socket" (a path, referenced),
 * or HTTP/1.1: "h2c-upgrade" (0 or 1) and the limits "h1-max-request-line",
 * "h1-max-field-line", "h1-max-fields", "h1-max-head", "h1-max-chunk-line",
 * "h1-max-body" (bytes, 0 = unlimited), "h1-max-pipelined",
 * "h1-max-requests", "h1-max-unsent-output", "h1-header-timeout",
 * "h1-idle-timeout", "h1-ws-idle-timeout" (milliseconds),
 * or the lingering close: "lingering-time", "lingering-timeout"
 * (milliseconds), "lingering-bytes".
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

/* spindle_offload() from a later callback: for a handler that learns only
 * after on_request, in a callback on the stream's shard (a file operation's
 * completion, a watch, a timer, a post), that the request would block.
 * req is the request fn is to get: spindle copies it before returning, so
 * it may be the application's own copy (the spindle_request on_request
 * got, and its strings, are valid during on_request only), freed once this
 * returns; from on_request it may be the one on_request got.
 *
 * s must be an inline stream (not `blocking`, not offloaded), used on its
 * shard's thread: in a later callback, the stream its spindle_handle
 * resolves to there (never a pointer kept across callbacks: the stream may
 * have been reset and closed meanwhile, and the handle then resolves to
 * NULL).  Its final response must not have ended, and its request body
 * must not be paused (spindle_body_pause()).  On success fn(s, copy, app)
 * runs on the offload thread and every later callback for s runs there,
 * as after spindle_offload(); the handle of s resolves to NULL from now on.
 * Body bytes that arrived before the call were delivered inline (on_body
 * on the shard) and are not delivered again; a spindle_stream_after()
 * timer still pending fires on the offload thread.
 *
 * 0; SPINDLE_EINVAL (s, req or fn NULL); SPINDLE_ESTATE (not on s's shard
 * thread, s offloaded, reset or closed, its response ended, its body
 * paused); SPINDLE_ESYS (the threads cannot be started).  Unless 0, the
 * handler still owns s and must answer it.  (spindle_offload() refuses a
 * paused body the same way.) */
int spindle_offload_request(spindle_stream *s, const spindle_request *req, spindle_request_fn fn);

/* --- Responding ---------------------------------------------------------- */

/* Called exactly once when spindle no longer needs a body buffer. */
typedef void (*spindle_release_fn)(void *ctx, const void *data, size_t len);

/* Send a response head.  status 100..199 sends an informational response
 * (100 Continue, 103 Early Hints) and may repeat; 200..599 is the final
 * head; end = true ends the response (no body). */
int spindle_respond(spindle_stream *s, uint16_t status, const spindle_header *h, size_t n,
                    bool end);

/* Response fields prepared once: validated, measured and pre-encoded
 * (HTTP/2: HPACK bytes that mean the same on every connection, see
 * docs/send-path.md), for heads that repeat them, such as a cached file's
 * content-type, etag, last-modified and content-length.  Immutable once
 * made: any thread may use one at the same time as others. */
typedef struct spindle_fields spindle_fields;

/* Prepare n >= 1 fields (lengths as in spindle_respond: 0 = strlen).
 * SPINDLE_EINVAL: a field spindle_respond would refuse (a pseudo-header,
 * an upper-case or invalid name, a control character in a value, a
 * connection-specific field), more than one content-length or one that is
 * not 1-18 digits, or a list larger than the default
 * limits.max_header_list_size (64 KiB, counted as RFC 9113 does: name +
 * value + 32 per field); SPINDLE_ENOMEM.  On success *out owns the copy
 * (the caller's strings are not kept); free it with spindle_fields_free(). */
int spindle_fields_new(const spindle_header *h, size_t n, spindle_fields **out);
/* Free prepared fields (NULL: nothing).  Only once no spindle_respond_fields()
 * call using them is running: the engine copies their bytes during the
 * call (into the connection's output, the held head or an offload command)
 * and keeps no reference after it returns. */
void spindle_fields_free(spindle_fields *pf);
/* spindle_respond() with the prepared fields pf (NULL: none) after the
 * fields h[0..n) (which are validated as usual).  The prepared ones are
 * copied as encoded, without lookup or validation; spindle's default
 * `date`, `server` and `content-length` are added only if neither h nor pf
 * has them.  Same codes as spindle_respond(). */
int spindle_respond_fields(spindle_stream *s, uint16_t status, const spindle_header *h, size_t n,
                           const spindle_fields *pf, bool end);

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

/* --- Waiting without blocking: shards, handles, watches, posts ----------- */

/* A handler that must ask a database or another service before it answers
 * does not block the shard: it keeps a handle to its stream, starts the
 * work, returns, and answers later from a callback on the same shard (a
 * watch on the database socket, a shard timer, or a message posted from
 * another thread).  Every callback below runs on the shard's own thread,
 * one at a time with the handler's callbacks, so per-shard state needs no
 * lock.  docs/runtime.md ("Waiting without blocking") has the details.
 *
 * A request waiting like this with a handle:
 * @code
 * #include <stdint.h>
 * #include <spindle.h>
 *
 * // Another thread (a worker pool, a library's callback thread) computed
 * // the answer; this runs on the stream's shard.
 * static void answer(spindle_stream *s, void *arg)
 * {
 *     (void)arg;
 *     if (!s) // the peer reset the stream meanwhile: nothing to answer
 *         return;
 *     spindle_respond(s, 200, NULL, 0, false);
 *     spindle_send(s, "done\n", 5, true, NULL, NULL);
 * }
 *
 * // On that other thread, later: 0, or SPINDLE_EAGAIN (the shard's queue
 * // is full: retry later) or SPINDLE_ECLOSED (the server stopped).
 * int finish(spindle_handle h)
 * {
 *     return spindle_post_stream(h, answer, NULL);
 * }
 * @endcode
 */

/* One shard (its thread, ring and connections).  Opaque; valid on the
 * shard's thread from on_shard_start until the shard has finished stopping
 * (see on_shard_stop). */
typedef struct spindle_shard spindle_shard;

/* The shard whose thread calls this, or NULL on any other thread (the main
 * thread, offload workers, the application's threads).  From a handler
 * callback of an inline stream it is the stream's shard. */
spindle_shard *spindle_current_shard(void);

/* The context on_shard_start returned (NULL without that hook).  sh NULL:
 * NULL.  The shard's thread. */
void *spindle_shard_ctx(const spindle_shard *sh);

/* The shard's index, 0 .. spindle_shard_count() - 1 (what spindle_post()
 * and spindle_stream_shard() use).  The shard's thread. */
uint32_t spindle_shard_index(const spindle_shard *sh);

/* How many shards spindle_run() runs (set when its first shard starts, 0
 * before; it keeps the last run's number after it returns).  Any thread. */
uint32_t spindle_shard_count(void);

/* Stream handles.  A handle is a small value (shard, slot, generation) that
 * names one stream and can be kept across asynchronous work and passed to
 * other threads; unlike a spindle_stream pointer it never dangles.  Once
 * the stream's on_close has begun, the slot's generation has moved on: the
 * handle resolves to NULL forever and spindle_post_stream() runs its
 * function with NULL.  A stream that was reset (on_reset) still resolves
 * until its on_close, but every spindle_* call on it returns
 * SPINDLE_ECLOSED.
 *
 * The peer resetting while the application waits: on_reset(s), then
 * on_close(s), on the shard, in the same loop iteration; the handle is dead
 * from on_close on.  The application's late answer finds NULL (resolving
 * or posting) and is dropped: it frees what it holds and sends nothing.
 * Nothing the application holds points at freed memory as long as it kept
 * the handle and not the pointer.
 *
 * Handles are for inline streams (not those of a `blocking` handler, nor
 * those handed to spindle_offload(): their calls belong to their worker;
 * they resolve to NULL). */
typedef struct spindle_handle {
    uint64_t v; /* 0: the null handle, which never resolves */
} spindle_handle;

/* The handle of s.  On s's shard thread (a handler callback, or a watch,
 * timer or post callback after resolving a handle); the first call gives
 * the stream a handle slot, later calls return the same value.  The null
 * handle when s is NULL or closed, on another thread, when the shard's
 * handle table cannot grow (out of memory, or 2^20 live handles), or for a
 * shard index of 4096 or more. */
spindle_handle spindle_stream_handle(spindle_stream *s);

/* The stream h names, on its own shard's thread: the live stream (possibly
 * already reset: calls then return SPINDLE_ECLOSED), or NULL once its
 * on_close has begun, for the null handle, for an offloaded stream, and on
 * any other thread.  The pointer is valid until the calling callback
 * returns: resolve again in the next one.  Use it with the usual calls
 * (spindle_respond, spindle_send, spindle_reset...). */
spindle_stream *spindle_handle_stream(spindle_handle h);

/* Watching a descriptor on the shard's ring, for libraries that own their
 * sockets (libpq, hiredis, c-ares, curl multi).  Event bits (the same
 * values as poll(2)'s): */
enum {
    SPINDLE_WATCH_IN = 0x001,  /* readable (POLLIN) */
    SPINDLE_WATCH_OUT = 0x004, /* writable (POLLOUT) */
    SPINDLE_WATCH_ERR = 0x008, /* error (POLLERR; always reported) */
    SPINDLE_WATCH_HUP = 0x010, /* hang-up (POLLHUP; always reported) */
};

typedef struct spindle_watch spindle_watch;

/* Readiness of w's fd: revents holds the ready bits among the watch's
 * current events, plus SPINDLE_WATCH_ERR / SPINDLE_WATCH_HUP.  The shard's
 * thread.  The callback may call anything, including spindle_watch_set()
 * and spindle_watch_close() on w itself. */
typedef void (*spindle_watch_fn)(spindle_watch *w, int fd, uint32_t revents, void *ctx);

/* Watch fd for events (SPINDLE_WATCH_IN / _OUT; 0 = watch nothing for
 * now) on the shard's ring, calling fn(w, fd, revents, ctx) on the shard's
 * thread when it is ready.
 *
 * Level-triggered, like poll(2) and epoll without EPOLLET: a descriptor
 * that is still ready after the callback returns is reported again in the
 * next loop iteration, until the application drains it or changes the
 * events; so a library that reads only part of what is queued (libpq's
 * PQconsumeInput) never stalls.  A watch on SPINDLE_WATCH_OUT of a socket
 * with room is therefore reported every iteration: watch OUT only while
 * there is something to write (libpq: while PQflush() returns 1).
 * Underneath: a multishot POLL_ADD, re-armed whenever the kernel ends it
 * (a CQE without F_MORE), plus one poll(2) of the descriptors reported in
 * the iteration, before the shard waits.  An error the ring reports for
 * the descriptor itself (closed, not pollable) is delivered once as
 * SPINDLE_WATCH_ERR and the watch then rests until spindle_watch_set().
 *
 * The watch does not own fd: close fd after or before spindle_watch_close()
 * (either is safe; nothing is reported for a closed fd).
 * On the shard's thread (sh == spindle_current_shard()), from
 * on_shard_start until the shard stops (see on_shard_stop).  0 and *out;
 * SPINDLE_EINVAL (fd < 0, fn or out NULL, unknown event bits);
 * SPINDLE_ESTATE (not sh's thread, or the shard is past its stop);
 * SPINDLE_ENOMEM; SPINDLE_EURING (the ring's queues are full: retry in a
 * later callback). */
int spindle_watch_fd(spindle_shard *sh, int fd, uint32_t events, spindle_watch_fn fn, void *ctx,
                     spindle_watch **out);

/* Change the events w waits for (0: none, until the next call).  Events
 * ready for the old set and no longer wanted are not reported.  Also
 * re-arms a watch resting after an error.  The shard's thread.  0,
 * SPINDLE_EINVAL (w NULL or closed, unknown bits), SPINDLE_EURING. */
int spindle_watch_set(spindle_watch *w, uint32_t events);

/* Stop watching and free w: no callback runs after this returns (not even
 * one already completed by the kernel), and w is invalid from here on;
 * callable from w's own callback.  The ring's pending poll is cancelled;
 * its last completion is recognised by generation and ignored (the ring
 * never holds a pointer to w).  NULL is a no-op.  The shard's thread. */
void spindle_watch_close(spindle_watch *w);

/* File system calls on the shard's ring (IORING_OP_OPENAT2, STATX, READ),
 * for a handler that would otherwise make them on the shard's thread (a
 * static file server's cache misses and revalidations).  The kernel runs
 * an op inline when it can and in its own worker threads when it must wait
 * for the disk, so the shard never blocks.  fn(sh, res, ctx) runs exactly
 * once, on the shard's thread, in a later loop iteration (never inside the
 * submitting call), with the system call's result (a descriptor, 0, bytes
 * read) or -errno.  There is no cancel: path, how, out and buf are the
 * kernel's until fn runs, and fn is where the caller frees them.  Give the
 * op its own context, never a spindle_stream pointer (keep a
 * spindle_handle and resolve it in fn: the stream may have been reset and
 * closed meanwhile).  A shard that stops waits for its ops (up to
 * drain_timeout_ms); one still in flight then never gets its callback
 * (its memory is leaked rather than freed under the kernel).  Each op
 * takes a completion-queue entry when it ends, and the ring's queue is
 * sized for connections, not for many long operations: keep the ops in
 * flight per shard to a few dozen (more still work: the kernel keeps
 * completions that do not fit, and the ring's statistics count them).
 *
 * On the shard's thread (sh == spindle_current_shard()), from
 * on_shard_start or any callback, until the shard stops.  0 (fn will run);
 * SPINDLE_EINVAL (NULL fn, path, how, out, a negative fd); SPINDLE_ESTATE
 * (not sh's thread, or the shard has stopped); SPINDLE_ENOMEM;
 * SPINDLE_EURING (the ring's queues are full: do it another way, or later).
 * Nothing was submitted unless 0. */
struct open_how;
struct statx;
typedef void (*spindle_file_fn)(spindle_shard *sh, int32_t res, void *ctx);
/* openat2(dirfd, path, how, sizeof *how) (linux/openat2.h); res: the new
 * descriptor (the caller closes it) or -errno. */
int spindle_file_openat2(spindle_shard *sh, int dirfd, const char *path, const struct open_how *how,
                         spindle_file_fn fn, void *ctx);
/* statx(dirfd, path, flags, mask, out) (AT_EMPTY_PATH with "" for dirfd
 * itself); res 0 or -errno. */
int spindle_file_statx(spindle_shard *sh, int dirfd, const char *path, int flags, uint32_t mask,
                       struct statx *out, spindle_file_fn fn, void *ctx);
/* pread(fd, buf, len, off); res: bytes read (fewer at the end of the file)
 * or -errno. */
int spindle_file_read(spindle_shard *sh, int fd, void *buf, uint32_t len, uint64_t off,
                      spindle_file_fn fn, void *ctx);
/* close(fd) (IORING_OP_CLOSE): fd is the kernel's from the call on, 0
 * meaning only that the close was submitted; fn may be NULL (nothing is
 * called), else res is 0 or -errno.  On SPINDLE_EURING the caller still
 * owns fd (close it another way). */
int spindle_file_close(spindle_shard *sh, int fd, spindle_file_fn fn, void *ctx);

/* Shard timers (reconnect backoff and the like), independent of streams.
 * fn(sh, arg) runs on the shard's thread ms milliseconds from now (the
 * shard's coarse clock, read once per loop iteration: a few milliseconds
 * of slack either way).  *out (out may be NULL) names the
 * timer until fn has been called or spindle_timer_cancel() returned.  On
 * the shard's thread.  0; SPINDLE_EINVAL (fn NULL); SPINDLE_ESTATE (not
 * sh's thread); SPINDLE_ENOMEM.  A timer still pending when the shard
 * finishes stopping is dropped without being called. */
typedef struct spindle_timer spindle_timer;
typedef void (*spindle_shard_timer_fn)(spindle_shard *sh, void *arg);
int spindle_shard_after(spindle_shard *sh, uint32_t ms, spindle_shard_timer_fn fn, void *arg,
                        spindle_timer **out);

/* Cancel a pending timer: fn is not called; t is invalid afterwards.  Only
 * before fn ran (inside fn, t is already gone).  NULL is a no-op.  The
 * shard's thread. */
void spindle_timer_cancel(spindle_timer *t);

/* The end of each loop iteration: fn(sh, arg) runs on the shard's thread
 * once per iteration of its loop, after that iteration's posted messages,
 * completions (watches, requests, answers) and due timers were handled,
 * just before the shard writes what is ready to its connections and waits
 * for the ring.  For batching: a database driver queues the queries that
 * the iteration's requests asked for and sends them together here (one
 * write, one round trip).  It runs every iteration, busy or not (keep it
 * cheap: return at once when there is nothing to do); responses it makes
 * leave in the write that follows it.  An unset hook costs the loop one
 * branch.
 *
 * One hook per shard: registering fn while another is set is
 * SPINDLE_ESTATE (clear it first); fn NULL clears it (always allowed on
 * the shard's thread).  It may be set or cleared from anywhere on the
 * shard's thread, the hook itself included; it is not called once the
 * shard has finished stopping (see on_shard_stop).  0; SPINDLE_ESTATE (not
 * sh's thread, another hook set, or the shard past its stop). */
typedef void (*spindle_shard_loop_fn)(spindle_shard *sh, void *arg);
int spindle_shard_on_loop_end(spindle_shard *sh, spindle_shard_loop_fn fn, void *arg);

/* Posting from any thread.  Each shard has one bounded lock-free queue
 * (multi-producer, single-consumer: any number of threads post, the shard
 * alone takes; it never takes a lock); the shard runs what it finds at the
 * start of each loop iteration, in order.  Messages from one thread to one
 * shard run in the order they were posted.  A full queue is reported, never
 * grown: SPINDLE_EAGAIN, nothing queued (retry later, or answer 503).  A
 * post wakes a sleeping shard through its ring's doorbell (an eventfd the
 * ring keeps a read armed on), written only when the shard is about to
 * sleep, with a fence on both sides so that the wake-up cannot be lost.
 * A message accepted (0) always runs exactly once, on the shard's thread,
 * before the shard finishes stopping; fn and arg are the caller's
 * business (arg is not freed by spindle).
 *
 * Any thread, including shard threads (a shard may post to itself: the
 * message runs in its next iteration).  0; SPINDLE_EINVAL (fn NULL);
 * SPINDLE_EAGAIN (that shard's queue is full); SPINDLE_ECLOSED (no such
 * shard running: not started, or done stopping). */
typedef void (*spindle_post_fn)(spindle_shard *sh, void *arg);
int spindle_post(uint32_t shard_index, spindle_post_fn fn, void *arg);

/* Run fn(s, arg) on the shard that owns h's stream, s the stream resolved
 * there (as spindle_handle_stream()), or NULL when it closed meanwhile
 * (fn then only frees arg).  Same queue, order and results as
 * spindle_post(); SPINDLE_EINVAL also for the null handle.  Any thread. */
typedef void (*spindle_stream_post_fn)(spindle_stream *s, void *arg);
int spindle_post_stream(spindle_handle h, spindle_stream_post_fn fn, void *arg);

/* --- Upstream calls: HTTP/2 to another service, from a handler ---------- */

/* A handler that needs another HTTP/2 service (a gRPC backend, an internal
 * API) calls it on its own shard, without threads or locks: an upstream is
 * one origin's pool of HTTP/2 connections belonging to one shard (open one
 * per shard, in on_shard_start, and keep it in the shard's context); a call
 * is one request on it, answered through callbacks on the same shard.
 * docs/client.md ("Upstream calls") tells how it works.
 *
 * Threads.  Every function here is called on the upstream's shard thread
 * (from a handler callback, a shard timer, a watch, a post, or a call's own
 * callbacks), and every callback runs there.
 *
 * Connections are made on demand: the first call opens one, calls beyond
 * what the open connections take (the origin's MAX_CONCURRENT_STREAMS)
 * open more, up to max_conns, then wait in a bounded queue.  A connection
 * that fails, closes, or is told GOAWAY is replaced by the next call that
 * needs one (reconnect); streams a GOAWAY refused (never processed, RFC
 * 9113 section 8.7) and streams reset with REFUSED_STREAM are re-issued
 * on another connection (up to 4 times), when the whole request body is
 * known (not a streaming call that already sent more than 256 KiB).
 *
 * A handler asking a backend before it answers (the upstream made in
 * on_shard_start is the shard's context):
 * @code
 * #include <spindle.h>
 *
 * static void got_head(spindle_call *call, const spindle_response *r, void *ctx)
 * {
 *     spindle_handle *h = ctx;
 *     spindle_stream *s = spindle_handle_stream(*h);
 *     if (!s) { // the client went away meanwhile
 *         spindle_call_cancel(call);
 *         return;
 *     }
 *     spindle_respond(s, r->status == 200 ? 200 : 502, NULL, 0, true);
 * }
 *
 * static void done(spindle_call *call, int err, uint32_t h2_code, void *ctx)
 * {
 *     (void)call;
 *     (void)h2_code;
 *     spindle_handle *h = ctx;
 *     spindle_stream *s = spindle_handle_stream(*h);
 *     if (s && err != 0) // no head came: unreachable, reset, timed out
 *         spindle_respond(s, err == SPINDLE_ETIMEDOUT ? 504 : 502, NULL, 0, true);
 * }
 *
 * static const spindle_call_handler ask = {.on_response = got_head, .on_done = done};
 *
 * // h: where the handler keeps its stream's handle (its per-stream state).
 * int ask_backend(spindle_stream *s, spindle_handle *h)
 * {
 *     spindle_upstream *u = spindle_shard_ctx(spindle_current_shard());
 *     spindle_call_req req = {.method = "GET", .path = "/price"};
 *     *h = spindle_stream_handle(s);
 *     return spindle_call_start(u, &req, &ask, h, NULL);
 * }
 * @endcode */
typedef struct spindle_upstream spindle_upstream;
typedef struct spindle_call spindle_call;

typedef struct spindle_upstream_config {
    const char *host;        /* a numeric IPv4 or IPv6 address, or a host name looked up
                                off the shard (getaddrinfo on a thread); required */
    uint16_t port;           /* required */
    const char *authority;   /* :authority sent (NULL: "host:port") */
    bool tls;                /* TLS with ALPN h2 (false, the default: h2c, prior knowledge) */
    bool tls_verify;         /* verify the origin's certificate chain and name (default true) */
    const char *tls_ca_file; /* PEM file of trusted CAs (NULL: the system's bundle) */
    const char *tls_name;    /* SNI and the name verified (NULL: authority without port, or host) */
    uint32_t max_conns;      /* connections to this origin per shard (default 2) */
    uint32_t max_pending;    /* calls waiting for a connection with room (default 1024) */
    uint32_t connect_timeout_ms; /* TCP connect + TLS handshake (5000; 0: none); the
                                    origin's SETTINGS then within preface-timeout */
    uint32_t call_timeout_ms;    /* a call's default time-out, start to end (30000; 0: none) */
    uint32_t keepalive_ms;       /* PING each connection this often; one whose previous
                                    PING is still unanswered is closed (0, the default: off) */
    uint32_t dns_refresh_ms;     /* a host name is looked up again when a new connection
                                    would use an answer this old that served one already,
                                    and after a failed connect; the old answer serves
                                    meanwhile (30000; 0: an answer serves one connection
                                    alone, or two while its successor is looked up) */
} spindle_upstream_config;

/* Defaults for everything above (host NULL, port 0: the caller sets them). */
spindle_upstream_config spindle_upstream_config_default(void);

/* An upstream for sh's thread.  The strings are copied; no connection is
 * opened yet (nor a host name looked up: the first call does it, and a
 * name that does not resolve fails the calls waiting for it with
 * SPINDLE_EUPSTREAM, as does a lookup slower than connect_timeout_ms; a
 * name's addresses are tried in order).  On sh's thread.  0 and *out;
 * SPINDLE_EINVAL (host neither an address nor a host name, port 0, a TLS
 * option without tls, ...), SPINDLE_ESTATE
 * (not sh's thread), SPINDLE_ENOMEM, SPINDLE_ESYS (the CA file cannot be
 * loaded: the log says why). */
int spindle_upstream_new(spindle_shard *sh, const spindle_upstream_config *cfg,
                         spindle_upstream **out);

/* Close every connection and free u.  Calls still running end first with
 * on_done(SPINDLE_ECLOSED).  Not from a callback of one of u's calls; from
 * on_shard_stop at the latest.  NULL is a no-op. */
void spindle_upstream_free(spindle_upstream *u);

/* Round-trip time of one of u's connections (the least loaded open one):
 * a PING, and fn(ctx, 0, rtt_us) when its ACK comes back; fn(ctx, err, 0)
 * when there is no open connection (SPINDLE_ECLOSED; a call opens one), or
 * the connection fails first (SPINDLE_EUPSTREAM) or u is freed
 * (SPINDLE_ECLOSED).  fn runs on the shard, never from inside this call.
 * 0, SPINDLE_EINVAL, SPINDLE_ENOMEM. */
typedef void (*spindle_rtt_fn)(void *ctx, int err, uint64_t rtt_us);
int spindle_upstream_ping(spindle_upstream *u, spindle_rtt_fn fn, void *ctx);

/* Connections open (connecting included), and the total opened so far. */
uint32_t spindle_upstream_conns(const spindle_upstream *u, uint64_t *opened);

/* One upstream's counters (its shard's view; read on its thread). */
typedef struct spindle_upstream_stats {
    uint32_t conns;          /* connections open (connecting included) */
    uint64_t opened;         /* connections opened so far */
    uint64_t held_bytes;     /* response bytes kept now for paused calls */
    uint64_t held_peak;      /* the most one call kept at once */
    uint64_t tls_handshakes; /* TLS handshakes completed */
    uint64_t tls_resumed;    /* of which resumed an earlier session */
    uint64_t resolves;       /* host name lookups done (not for numeric hosts) */
    uint64_t resolve_failures;
} spindle_upstream_stats;
void spindle_upstream_get_stats(const spindle_upstream *u, spindle_upstream_stats *out);

/* A response head from the origin (the final one; 1xx heads are skipped).
 * Fields carry lengths and are valid during the callback only. */
typedef struct spindle_response {
    uint16_t status;
    const spindle_header *headers;
    size_t nheaders;
    int64_t content_length; /* -1 when absent */
    bool end;               /* the response ends with this head (no body, no trailers) */
} spindle_response;

/* A call's callbacks, all on the shard, in this order: on_response once,
 * on_data zero or more times (the last with end, unless trailers end the
 * body), on_trailers at most once, then on_done exactly once, also after a
 * failure at any point (then err says why and the earlier ones may not
 * have come).  Data and fields are valid during the callback only; the
 * flow-control windows reopen when on_data returns, unless the call is
 * paused (spindle_call_pause).  Any of them may be NULL.  A callback may
 * start other calls and cancel any call, itself included (then nothing
 * more is called for it). */
typedef struct spindle_call_handler {
    void (*on_response)(spindle_call *call, const spindle_response *r, void *ctx);
    void (*on_data)(spindle_call *call, const uint8_t *data, size_t len, bool end, void *ctx);
    void (*on_trailers)(spindle_call *call, const spindle_header *h, size_t n, void *ctx);
    /* err: 0 (the response ended normally), SPINDLE_ETIMEDOUT (the call's
     * time-out: its stream was reset with CANCEL), SPINDLE_EUPSTREAM (no
     * connection could be made, it broke, or the origin reset the stream:
     * h2_code is the RST_STREAM code then, else 0), SPINDLE_ECLOSED (the
     * upstream was freed), SPINDLE_EINVAL (the origin refused the head we
     * sent as invalid).  call is freed when on_done returns. */
    void (*on_done)(spindle_call *call, int err, uint32_t h2_code, void *ctx);
} spindle_call_handler;

/* A request.  method and path are NUL-terminated; headers are regular
 * fields (lowercase names; no pseudo-header, no connection-specific field;
 * "te: trailers" is allowed), zero lengths meaning strlen() as in
 * spindle_respond().  Everything is copied. */
typedef struct spindle_call_req {
    const char *method; /* "GET", "POST", ... (not CONNECT) */
    const char *path;   /* "/x?y" */
    const spindle_header *headers;
    size_t nheaders;
    const void *body; /* the body, or its first part (copied) */
    size_t body_len;
    bool body_more;      /* more body follows with spindle_call_send() (streaming) */
    uint32_t timeout_ms; /* 0: the upstream's call_timeout_ms */
} spindle_call_req;

/* Start a call: the request goes out at once on a connection with room, or
 * waits for one (a connection being opened, or a stream ending).  No
 * callback runs before this returns.  *out (may be NULL) names the call
 * until on_done returns or spindle_call_cancel(); h is copied.
 * 0; SPINDLE_EINVAL (u, req or a field invalid); SPINDLE_ESTATE (not u's
 * thread, or u is being freed); SPINDLE_EAGAIN (max_pending calls already
 * wait); SPINDLE_ENOMEM. */
int spindle_call_start(spindle_upstream *u, const spindle_call_req *req,
                       const spindle_call_handler *h, void *ctx, spindle_call **out);

/* More request body (a call started with body_more), copied; end ends it.
 * 0; SPINDLE_ESTATE (the body already ended); SPINDLE_ECLOSED (the stream
 * is gone: on_done follows or came); SPINDLE_ENOMEM. */
int spindle_call_send(spindle_call *call, const void *data, size_t len, bool end);

/* End the request body with trailers (copied).  Returns as spindle_call_send. */
int spindle_call_send_trailers(spindle_call *call, const spindle_header *h, size_t n);

/* Request bytes queued and not yet sent (backpressure for streaming). */
size_t spindle_call_buffered(const spindle_call *call);

/* Give up a call: its stream is reset with CANCEL (if it was sent), no
 * callback runs for it any more, and call is freed.  NULL is a no-op. */
void spindle_call_cancel(spindle_call *call);

/* Response backpressure, as spindle_body_pause/resume for a request body:
 * after spindle_call_pause() no more of call's response body is delivered
 * (nor on_trailers, nor the on_done that ends a complete response) until
 * spindle_call_resume().  The origin is held by HTTP/2 flow control on the
 * call's stream only: what arrives meanwhile is kept by spindle, and the
 * stream's window reopens only once it is delivered, while the connection's
 * window reopens at once (the pooled connection's other calls keep
 * flowing).  So a paused call keeps at most one stream window of the
 * response (the shard's limits.initial_window_size, 256 KiB by default),
 * plus the trailers.  A response that ends while paused frees its
 * connection's room at once and ends at delivery.  Time spent paused does
 * not count against the call's time-out.  Not held: on_response, and a
 * failure (reset, lost connection, time-out, spindle_upstream_free), which
 * ends the call at once and drops what it kept.  Either may be called from
 * any of the call's callbacks (pausing inside on_data holds the next
 * chunk).  resume delivers what was kept from the loop, never inside the
 * call: one on_data with all of it, then on_trailers / on_done if the
 * response ended.  NULL or a repeated call is a no-op. */
void spindle_call_pause(spindle_call *call);
void spindle_call_resume(spindle_call *call);

/* Round-trip time to a server stream's client: a PING on s's HTTP/2
 * connection and fn(ctx, 0, rtt_us) on s's shard when its ACK arrives, or
 * fn(ctx, SPINDLE_ECLOSED, 0) if the connection closes first.  s's shard
 * thread (inline streams).  0; SPINDLE_EINVAL (not HTTP/2, fn NULL);
 * SPINDLE_ECLOSED; SPINDLE_ENOMEM. */
int spindle_stream_ping(spindle_stream *s, spindle_rtt_fn fn, void *ctx);

/* --- Running ------------------------------------------------------------- */

typedef struct spindle_hooks {
    /* Each shard is listening; port is the actual port (useful with port 0). */
    void (*on_listen)(uint32_t shard, const char *address, uint16_t port, void *app);
    /* The same for the TLS listener (only with tls_cert set), called after
     * on_listen; port is the actual TLS port. */
    void (*on_listen_tls)(uint32_t shard, const char *address, uint16_t port, void *app);
    /* Per-shard state (see "Waiting without blocking" above).  On the
     * shard's own thread, before it serves its first connection and before
     * on_listen: open per-shard resources (a database connection pool per
     * core, no locks) and return them; the result is the shard's context,
     * spindle_shard_ctx().  Watches, shard timers and posts work from here
     * on.  To give up, call spindle_stop() (the shard then drains at once). */
    void *(*on_shard_start)(spindle_shard *sh, void *app);
    /* On the shard's thread, once, after the drain (every connection of the
     * shard has closed and on_close was delivered for each of its streams)
     * and before the ring closes: close what on_shard_start opened.
     * Watches, shard timers and posts still work during and after this
     * call: the shard keeps running its loop (without connections) until
     * every watch is closed or drain_timeout_ms has passed; then it closes
     * its post queue (spindle_post(): SPINDLE_ECLOSED from then on), runs
     * the messages already accepted, logs the watches still open and closes
     * them (no callback after that), and drops pending shard timers
     * uncalled.  (Without this hook, watches still open when the drain ends
     * are closed at once.)  Called only if on_shard_start was (after a failure inside
     * the loop, from the shard's teardown, still on its thread). */
    void (*on_shard_stop)(spindle_shard *sh, void *shard_ctx, void *app);
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

/* --- Operators' view: what a request carries, statistics ---------------- */

/* The connection a stream arrived on, as seen when its request head came. */
typedef struct spindle_conn_info {
    char address[46];        /* the client's address, text ("127.0.0.1", "::1") */
    uint16_t port;           /* the client's port */
    uint16_t local_port;     /* the port it connected to */
    bool tls;                /* over TLS */
    const char *alpn;        /* "h2" over TLS, NULL without */
    const char *tls_version; /* "TLSv1.3", "TLSv1.2"; NULL without TLS */
    const char *protocol;    /* "h2", "h2c" or "http/1.1" */
    uint64_t connection_id;  /* per shard, from 1 */
    uint32_t stream_id;
} spindle_conn_info;

/* Fill out for s.  From the thread running the stream's handler (inline or
 * offloaded), until on_close returns.  0 or SPINDLE_EINVAL (NULL). */
int spindle_stream_info(const spindle_stream *s, spindle_conn_info *out);

#define SPINDLE_STATS_LIMITS      24 /* limit_hits entries (the engine uses fewer) */
#define SPINDLE_STATS_BUCKETS     16 /* request duration buckets besides +Inf */
#define SPINDLE_STATS_CONN_PROTOS 6  /* connections_by_protocol entries */

/* A snapshot of the running server's counters, summed over its shards.
 * Every counter is read atomically and never goes backwards; the snapshot
 * is not one instant across counters (a request finishing meanwhile may be
 * in one and not yet in another).  Requests count when they finish. */
typedef struct spindle_stats {
    uint32_t shards;
    uint64_t connections_accepted;
    uint64_t connections_accepted_tls;
    uint64_t connections_open;
    uint64_t connections_cap_reached; /* times max-conns held accepts back */
    uint64_t tls_handshakes, tls_handshake_failures;
    uint64_t requests_started;        /* request heads received */
    uint64_t requests;                /* finished (answered, reset or cut off) */
    uint64_t requests_by_protocol[3]; /* h2c, h2, http/1.1 */
    uint64_t requests_by_method[9];   /* GET HEAD POST PUT DELETE OPTIONS PATCH CONNECT other */
    uint64_t requests_by_status[6];   /* 1xx 2xx 3xx 4xx 5xx, none (no final status) */
    uint64_t request_body_bytes, response_body_bytes;
    uint64_t streams_reset;
    uint64_t duration_us_sum;
    uint64_t duration_buckets[SPINDLE_STATS_BUCKETS + 1]; /* not cumulative; last: +Inf */
    uint64_t duration_bounds_us[SPINDLE_STATS_BUCKETS];   /* each bucket's upper bound */
    uint64_t limit_hits[SPINDLE_STATS_LIMITS];            /* see spindle_limit_name() */
    uint32_t nlimits;
    uint64_t offloaded;       /* requests handed to offload threads */
    uint64_t offload_streams; /* streams with offload threads now */
    uint64_t access_log_lines, access_log_dropped;
    int64_t memory_allocated; /* the shards' jemalloc arenas; -1 without jemalloc */
    uint64_t pool_bytes_live, pool_bytes_kept; /* the engines' pools */
    /* Connections by protocol, counted where the protocol becomes known
     * (the first bytes, ALPN, or an Upgrade), in this order: h2c, h2 (TLS),
     * http/1.1, http/1.1 over TLS, websocket, websocket over TLS.  An
     * upgraded connection is counted under http/1.1 and again under h2c or
     * websocket; one not yet decided (or that failed its handshake) is in
     * none.  See spindle_conn_protocol_name(). */
    uint64_t connections_by_protocol[SPINDLE_STATS_CONN_PROTOS];      /* opened */
    uint64_t connections_open_by_protocol[SPINDLE_STATS_CONN_PROTOS]; /* open now */
} spindle_stats;

/* Sum the counters of the server spindle_run() is running.  Any thread
 * (also a handler).  0, or SPINDLE_ESTATE when no server runs. */
int spindle_get_stats(spindle_stats *out);
/* The name of limit_hits[i] ("rapid-reset", "idle-timeout"...), NULL past
 * nlimits. */
const char *spindle_limit_name(uint32_t i);
/* The protocol of connections_by_protocol[i] ("h2c", "h2", "http/1.1",
 * "websocket") and whether it runs over TLS; NULL past
 * SPINDLE_STATS_CONN_PROTOS. */
const char *spindle_conn_protocol_name(uint32_t i, bool *tls);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif
