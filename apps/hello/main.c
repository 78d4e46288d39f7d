/* spindle-hello - the example server: built only on include/spindle.h.
 *
 *   GET  /             "Hello, World!"
 *   GET  /1m           1 MiB (byte i = (i * 31 + 7) & 0xff), sent by reference
 *   POST /echo         the request body streamed back, then a trailer
 *                      x-echo-bytes; 100 Continue first when asked for
 *   GET  /early-hints  103 with a preload link, then 200 "ok"
 *   GET  /stall?ms=N   answers after N ms without blocking anything else
 *   GET  /reset        RST_STREAM CANCEL (?code=N: that error code, e.g. 7
 *                      REFUSED_STREAM; &port=P: only the instance whose
 *                      cleartext port is P resets, the others answer as /)
 *   GET  /big?mib=N    N MiB (default 1024, at most 65536): /1m's buffer sent by
 *                      reference N times, the next MiB when the stream's queue
 *                      drains (on_writable), each with a release callback
 *   GET  /counters     "handed=H released=R": buffers /big handed to spindle
 *                      with a release callback, and callbacks run (tests check
 *                      that every buffer comes back exactly once)
 *   GET  /async?ms=N   answered N ms later (default 100, at most 10000) from
 *                      another thread through the stream's handle
 *                      (spindle_post_stream); a stream reset meanwhile is
 *                      answered by nobody: the late answer finds NULL.  The
 *                      body names the shard and how many /async it answered
 *                      (its per-shard context, from on_shard_start)
 *   GET  /stats        spindle_get_stats() as JSON (a few of its counters)
 *   GET  /info         spindle_stream_info(): what the request carries, as
 *                      "key=value" lines
 *   GET  /sleep?ms=N   blocks its thread for N ms, always on an offload thread:
 *                      with --blocking every handler runs there; without, this
 *                      one request is handed over with spindle_offload() (the
 *                      header x-offload-again is what a second call returned
 *                      there: SPINDLE_ESTATE, -2)
 *
 * --blocking runs every handler on the shards' offload threads instead of
 * inline on the shard thread.
 *
 * --cert FILE --key FILE also serve the same over TLS (HTTP/2 with ALPN h2)
 * on --tls-port (default 8443); --ca FILE only names the CA in the curl
 * command printed at start (scripts/run.sh generates all three).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "spindle.h"

#define ONE_MIB (1u << 20)

static uint8_t one_mib[ONE_MIB];
static const char hello[] = "Hello, World!";
static bool blocking;
static const char *ca_hint;    /* --ca: for the printed curl command only */
static atomic_ulong http_port; /* the cleartext port (on_listen), for /reset?port= */

static bool path_is(const spindle_request *r, const char *p)
{
    size_t n = strlen(p);
    const char *q = memchr(r->path.ptr, '?', r->path.len);
    size_t len = q ? (size_t)(q - r->path.ptr) : r->path.len;
    return len == n && memcmp(r->path.ptr, p, n) == 0;
}

static bool method_is(const spindle_request *r, const char *m)
{
    return r->method.len == strlen(m) && memcmp(r->method.ptr, m, r->method.len) == 0;
}

/* The value of ?name= in the query, as a number (def when absent). */
static unsigned long query_num(const spindle_request *r, const char *name, unsigned long def)
{
    char buf[256];
    size_t n = r->path.len < sizeof buf - 1 ? r->path.len : sizeof buf - 1;
    memcpy(buf, r->path.ptr, n);
    buf[n] = 0;
    char *q = strchr(buf, '?');
    size_t nl = strlen(name);
    while (q) {
        q++;
        if (strncmp(q, name, nl) == 0 && q[nl] == '=')
            return strtoul(q + nl + 1, NULL, 10);
        q = strchr(q, '&');
    }
    return def;
}

enum { ST_ECHO = 1, ST_BIG };

/* Per-stream state (the stream's user pointer); kind says which. */
typedef struct echo_state {
    int kind; /* ST_ECHO */
    uint64_t bytes;
} echo_state;

typedef struct big_state {
    int kind;      /* ST_BIG */
    uint32_t left; /* MiB still to hand over */
} big_state;

/* /big's buffers: handed to spindle_send() with big_release, and released. */
static atomic_uint_fast64_t big_handed, big_released;

static void big_release(void *ctx, const void *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    atomic_fetch_add(&big_released, 1);
}

/* The next MiB of a /big response. */
static void big_next(spindle_stream *s, big_state *b)
{
    while (b->left && spindle_stream_buffered(s) < ONE_MIB) {
        b->left--;
        int rc = spindle_send(s, one_mib, sizeof one_mib, b->left == 0, big_release, NULL);
        if (rc != SPINDLE_EINVAL)
            atomic_fetch_add(&big_handed, 1); /* released exactly once from here on */
        if (rc != 0) {
            b->left = 0;
            return;
        }
    }
}

static void stall_done(spindle_stream *s, void *app)
{
    (void)app;
    static const spindle_header h[] = {{"content-type", "text/plain", 0, 0}};
    spindle_respond(s, 200, h, 1, false);
    spindle_send(s, "stalled\n", 8, true, NULL, NULL);
}

/* /async: a thread of its own waits (a stand-in for a library's callback
 * thread or a worker pool; one thread per request only to keep the example
 * short), then posts the answer to the stream's shard.  Per shard: how many
 * /async requests it answered (on_shard_start's context, no lock). */
typedef struct async_job {
    spindle_handle h;
    unsigned long ms;
} async_job;

static void async_answer(spindle_stream *s, void *arg)
{
    (void)arg;
    if (!s)
        return; /* reset or closed while we waited: nobody to answer */
    uint64_t *answered = spindle_shard_ctx(spindle_current_shard());
    char body[64];
    int n = snprintf(body, sizeof body, "async answer %" PRIu64 " from shard %u\n",
                     answered ? ++*answered : 0, spindle_stream_shard(s));
    static const spindle_header h[] = {{"content-type", "text/plain", 0, 0}};
    spindle_respond(s, 200, h, 1, false);
    spindle_send_copy(s, body, (size_t)n, true);
}

static void *async_wait(void *arg)
{
    async_job *j = arg;
    struct timespec ts = {(time_t)(j->ms / 1000), (long)(j->ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    while (spindle_post_stream(j->h, async_answer, NULL) == SPINDLE_EAGAIN)
        nanosleep(&(struct timespec){0, 1000000}, NULL); /* the shard's queue is full */
    free(j);
    return NULL;
}

static void async_start(spindle_stream *s, const spindle_request *r)
{
    async_job *j = malloc(sizeof *j);
    pthread_t t;
    pthread_attr_t at;
    if (j) {
        unsigned long ms = query_num(r, "ms", 100);
        *j = (async_job){spindle_stream_handle(s), ms > 10000 ? 10000 : ms};
    }
    if (!j || !j->h.v || pthread_attr_init(&at) != 0) {
        free(j);
        spindle_respond(s, 503, NULL, 0, true);
        return;
    }
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, async_wait, j) != 0) {
        free(j);
        spindle_respond(s, 503, NULL, 0, true);
    }
    pthread_attr_destroy(&at);
}

static void *shard_start(spindle_shard *sh, void *app)
{
    (void)sh;
    (void)app;
    return calloc(1, sizeof(uint64_t));
}

static void shard_stop(spindle_shard *sh, void *ctx, void *app)
{
    (void)sh;
    (void)app;
    free(ctx);
}

/* /sleep, on an offload thread (where blocking is allowed). */
static void sleep_then_answer(spindle_stream *s, const spindle_request *r, void *app)
{
    (void)app;
    unsigned long ms = query_num(r, "ms", 100);
    if (ms > 10000)
        ms = 10000;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* really blocks */
    char again[16];
    snprintf(again, sizeof again, "%d", spindle_offload(s, sleep_then_answer));
    spindle_header h[] = {{"content-type", "text/plain", 0, 0}, {"x-offload-again", again, 0, 0}};
    spindle_respond(s, 200, h, 2, false);
    spindle_send(s, "slept\n", 6, true, NULL, NULL);
}

/* /stats: the counters the tests compare with the access log and metrics. */
static void send_stats(spindle_stream *s)
{
    static const spindle_header json[] = {{"content-type", "application/json", 0, 0}};
    spindle_stats st;
    if (spindle_get_stats(&st) != 0) {
        spindle_reset(s, SPINDLE_H2_INTERNAL_ERROR);
        return;
    }
    char body[2048];
    int n = snprintf(body, sizeof body,
                     "{\"requests\":%" PRIu64 ",\"requests_started\":%" PRIu64
                     ",\"connections_accepted\":%" PRIu64 ",\"streams_reset\":%" PRIu64
                     ",\"request_body_bytes\":%" PRIu64 ",\"response_body_bytes\":%" PRIu64
                     ",\"by_status\":[%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
                     ",%" PRIu64 "],\"limit_hits\":{",
                     st.requests, st.requests_started, st.connections_accepted, st.streams_reset,
                     st.request_body_bytes, st.response_body_bytes, st.requests_by_status[0],
                     st.requests_by_status[1], st.requests_by_status[2], st.requests_by_status[3],
                     st.requests_by_status[4], st.requests_by_status[5]);
    for (uint32_t i = 0; i < st.nlimits && n > 0 && (size_t)n < sizeof body; i++)
        n += snprintf(body + n, sizeof body - (size_t)n, "%s\"%s\":%" PRIu64, i ? "," : "",
                      spindle_limit_name(i), st.limit_hits[i]);
    if (n > 0 && (size_t)n < sizeof body)
        n += snprintf(body + n, sizeof body - (size_t)n, "},\"connections_by_protocol\":[");
    for (uint32_t i = 0; i < SPINDLE_STATS_CONN_PROTOS && n > 0 && (size_t)n < sizeof body; i++) {
        bool tls = false;
        const char *name = spindle_conn_protocol_name(i, &tls);
        n += snprintf(body + n, sizeof body - (size_t)n,
                      "%s{\"protocol\":\"%s\",\"tls\":%s,\"opened\":%" PRIu64 ",\"open\":%" PRIu64
                      "}",
                      i ? "," : "", name, tls ? "true" : "false", st.connections_by_protocol[i],
                      st.connections_open_by_protocol[i]);
    }
    if (n > 0 && (size_t)n < sizeof body)
        n += snprintf(body + n, sizeof body - (size_t)n, "]}\n");
    if (n <= 0 || (size_t)n >= sizeof body) {
        spindle_reset(s, SPINDLE_H2_INTERNAL_ERROR);
        return;
    }
    spindle_respond(s, 200, json, 1, false);
    spindle_send_copy(s, body, (size_t)n, true);
}

/* /info: spindle_stream_info() as key=value lines. */
static void send_info(spindle_stream *s)
{
    static const spindle_header text[] = {{"content-type", "text/plain", 0, 0}};
    spindle_conn_info in;
    spindle_stream_info(s, &in);
    char body[512];
    int n = snprintf(body, sizeof body,
                     "address=%s\nport=%u\nlocal_port=%u\ntls=%d\nalpn=%s\ntls_version=%s\n"
                     "protocol=%s\nconnection=%" PRIu64 "\nstream=%u\n",
                     in.address, in.port, in.local_port, in.tls, in.alpn ? in.alpn : "-",
                     in.tls_version ? in.tls_version : "-", in.protocol, in.connection_id,
                     in.stream_id);
    spindle_respond(s, 200, text, 1, false);
    spindle_send_copy(s, body, n > 0 && (size_t)n < sizeof body ? (size_t)n : 0, true);
}

static void on_request(spindle_stream *s, const spindle_request *r, void *app)
{
    (void)app;
    static const spindle_header text[] = {{"content-type", "text/plain", 0, 0}};
    static const spindle_header octets[] = {{"content-type", "application/octet-stream", 0, 0}};
    unsigned long port = atomic_load(&http_port);
    bool other = path_is(r, "/reset") && query_num(r, "port", port) != port;
    if ((path_is(r, "/") || other) && (method_is(r, "GET") || method_is(r, "HEAD"))) {
        bool head = method_is(r, "HEAD");
        spindle_respond(s, 200, text, 1, head);
        if (!head)
            spindle_send(s, hello, sizeof hello - 1, true, NULL, NULL);
    } else if (path_is(r, "/1m")) {
        spindle_respond(s, 200, octets, 1, false);
        spindle_send(s, one_mib, sizeof one_mib, true, NULL, NULL);
    } else if (path_is(r, "/echo")) {
        echo_state *e = calloc(1, sizeof *e);
        if (!e) {
            spindle_reset(s, SPINDLE_H2_INTERNAL_ERROR);
            return;
        }
        e->kind = ST_ECHO;
        spindle_stream_set_user(s, e);
        if (r->expect_continue)
            spindle_respond(s, 100, NULL, 0, false);
        spindle_respond(s, 200, octets, 1, false);
        if (!r->has_body) {
            spindle_header t[] = {{"x-echo-bytes", "0", 0, 0}};
            spindle_send_trailers(s, t, 1);
        }
    } else if (path_is(r, "/early-hints")) {
        static const spindle_header link[] = {{"link", "</style.css>; rel=preload", 0, 0}};
        spindle_respond(s, 103, link, 1, false);
        spindle_respond(s, 200, text, 1, false);
        spindle_send(s, "ok", 2, true, NULL, NULL);
    } else if (path_is(r, "/stall")) {
        unsigned long ms = query_num(r, "ms", 1000);
        spindle_stream_after(s, ms > 600000 ? 600000u : (uint32_t)ms, stall_done);
    } else if (path_is(r, "/sleep")) {
        if (blocking)
            sleep_then_answer(s, r, app);
        else if (spindle_offload(s, sleep_then_answer) != 0)
            spindle_reset(s, SPINDLE_H2_INTERNAL_ERROR /* no offload thread */);
    } else if (path_is(r, "/async") && !blocking) {
        async_start(s, r);
    } else if (path_is(r, "/reset")) {
        unsigned long code = query_num(r, "code", SPINDLE_H2_CANCEL);
        spindle_reset(s, code > 0xd ? SPINDLE_H2_CANCEL : (uint32_t)code);
    } else if (path_is(r, "/big")) {
        unsigned long mib = query_num(r, "mib", 1024);
        big_state *b = calloc(1, sizeof *b);
        if (!b) {
            spindle_reset(s, SPINDLE_H2_INTERNAL_ERROR);
            return;
        }
        b->kind = ST_BIG;
        b->left = mib > 65536 ? 65536u : (uint32_t)mib;
        spindle_stream_set_user(s, b);
        spindle_respond(s, 200, octets, 1, b->left == 0);
        big_next(s, b);
    } else if (path_is(r, "/stats")) {
        send_stats(s);
    } else if (path_is(r, "/info")) {
        send_info(s);
    } else if (path_is(r, "/counters")) {
        char body[96];
        int n = snprintf(body, sizeof body, "handed=%" PRIuFAST64 " released=%" PRIuFAST64 "\n",
                         (uint_fast64_t)atomic_load(&big_handed),
                         (uint_fast64_t)atomic_load(&big_released));
        spindle_respond(s, 200, text, 1, false);
        spindle_send_copy(s, body, (size_t)n, true);
    } else {
        spindle_respond(s, 404, text, 1, false);
        spindle_send(s, "not found\n", 10, true, NULL, NULL);
    }
}

static void echo_finish(spindle_stream *s, echo_state *e)
{
    char n[24];
    snprintf(n, sizeof n, "%" PRIu64, e->bytes);
    spindle_header t[] = {{"x-echo-bytes", n, 0, 0}};
    spindle_send_trailers(s, t, 1);
}

static void on_body(spindle_stream *s, const uint8_t *data, size_t len, bool end, void *app)
{
    (void)app;
    echo_state *e = spindle_stream_user(s);
    if (!e || e->kind != ST_ECHO)
        return; /* not /echo: the body is ignored */
    if (len) {
        e->bytes += len;
        spindle_send_copy(s, data, len, false);
        /* Backpressure: stop taking the upload while the download is behind. */
        if (spindle_stream_buffered(s) >= 256u * 1024u)
            spindle_body_pause(s);
    }
    if (end)
        echo_finish(s, e);
}

static void on_trailers(spindle_stream *s, const spindle_header *h, size_t n, void *app)
{
    (void)h;
    (void)n;
    (void)app;
    echo_state *e = spindle_stream_user(s);
    if (e && e->kind == ST_ECHO)
        echo_finish(s, e);
}

static void on_writable(spindle_stream *s, void *app)
{
    (void)app;
    int *kind = spindle_stream_user(s);
    if (kind && *kind == ST_BIG)
        big_next(s, spindle_stream_user(s));
    else
        spindle_body_resume(s);
}

static void on_close(spindle_stream *s, void *app)
{
    (void)app;
    free(spindle_stream_user(s));
}

/* "listening on SCHEME://ADDRESS:PORT (shard N)", and on shard 0 a curl
 * command to try: try_prefix, then the URL. */
static void say_listening(const char *scheme, uint32_t shard, const char *address, uint16_t port,
                          const char *try_prefix, bool local_name)
{
    char line[768];
    bool v6 = strchr(address, ':') != NULL;
    int n = snprintf(line, sizeof line, "listening on %s://%s%s%s:%u (shard %u)\n", scheme,
                     v6 ? "[" : "", address, v6 ? "]" : "", port, shard);
    if (shard == 0 && n > 0 && (size_t)n < sizeof line) {
        /* The generated certificate names localhost: use that name for the
         * loopback and wildcard addresses. */
        bool local =
            local_name && (strcmp(address, "127.0.0.1") == 0 || strcmp(address, "::1") == 0 ||
                           strcmp(address, "0.0.0.0") == 0 || strcmp(address, "::") == 0);
        n += snprintf(line + n, sizeof line - (size_t)n, "try: %s%s://%s%s%s:%u/\n", try_prefix,
                      scheme, local ? "" : (v6 ? "[" : ""), local ? "localhost" : address,
                      local ? "" : (v6 ? "]" : ""), port);
    }
    if (n > 0 && (size_t)n < sizeof line) {
        ssize_t w = write(STDOUT_FILENO, line, strlen(line));
        (void)w;
    }
}

static void on_listen(uint32_t shard, const char *address, uint16_t port, void *app)
{
    (void)app;
    atomic_store(&http_port, port); /* every shard has the same (/reset?port=) */
    say_listening("http", shard, address, port, "curl --http2-prior-knowledge ", false);
}

static void on_listen_tls(uint32_t shard, const char *address, uint16_t port, void *app)
{
    (void)app;
    char prefix[512];
    snprintf(prefix, sizeof prefix, "curl --http2 %s%s%s", ca_hint ? "--cacert " : "",
             ca_hint ? ca_hint : "", ca_hint ? " " : "-k ");
    say_listening("https", shard, address, port, prefix, true);
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: spindle-hello [--address A] [--port P] [--shards N] [--log-level 0..3]\n"
        "                     [--blocking] [--tls-port P --cert FILE --key FILE [--ca FILE]]\n"
        "                     [--ring-spin-us N] [--set name=value]...\n"
        "  --address A       listen address (default 127.0.0.1)\n"
        "  --port P          TCP port, 0 = any free port (default 8080)\n"
        "  --shards N        worker threads, one per core (default: online CPUs)\n"
        "  --log-level L     0 error, 1 warn, 2 info, 3 debug (default 2)\n"
        "  --blocking        run handlers on offload threads (--set offload-threads=N)\n"
        "  --cert FILE       PEM certificate (chain): also serve HTTP/2 over TLS\n"
        "  --key FILE        its PEM private key\n"
        "  --tls-port P      TLS port, 0 = any free port (default 8443)\n"
        "  --ca FILE         the CA that signed --cert (only for the printed curl command)\n"
        "  --set name=value  any limit, e.g. max-concurrent-streams=100,\n"
        "                    idle-timeout=60000, max-requests=10000, tls-handshake-timeout=10000\n"
        "                    (see spindle.h)\n");
    fputs(APP_USAGE_RING_SPIN, f);
}

/* The command line into cfg, blocking and ca_hint: -1 to run, else the
 * exit status (app_args_main()). */
static int parse_args(int argc, char **argv, spindle_config *cfg)
{
    const app_arg args[] = {
        {"--address", "address", NULL, NULL},   {"--port", "port", NULL, NULL},
        {"--shards", "shards", NULL, NULL},     {"--log-level", "log-level", NULL, NULL},
        {"--tls-port", "tls-port", NULL, NULL}, {"--cert", "tls-cert", NULL, NULL},
        {"--key", "tls-key", NULL, NULL},       {"--ca", NULL, &ca_hint, NULL},
        {"--blocking", NULL, NULL, &blocking},  APP_ARG_RING_SPIN,
    };
    const app_cli cli = {"spindle-hello", usage, args, sizeof args / sizeof args[0]};

    return app_args_main(&cli, argc, argv, cfg);
}

int main(int argc, char **argv)
{
    spindle_config cfg = spindle_config_default();
    char err[256];
    int rc = parse_args(argc, argv, &cfg);

    if (rc >= 0)
        return rc;
    if (spindle_config_check(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "spindle-hello: %s\n", err);
        return 2;
    }
    for (size_t i = 0; i < sizeof one_mib; i++)
        one_mib[i] = (uint8_t)((i * 31u + 7u) & 0xffu);

    spindle_handler h = {
        .on_request = on_request,
        .on_body = on_body,
        .on_trailers = on_trailers,
        .on_writable = on_writable,
        .on_close = on_close,
        .blocking = blocking,
    };
    spindle_hooks hooks = {.on_listen = on_listen,
                           .on_listen_tls = on_listen_tls,
                           .on_shard_start = shard_start,
                           .on_shard_stop = shard_stop};
    rc = spindle_run(&cfg, &h, &hooks, NULL);
    if (rc != 0) {
        fprintf(stderr, "spindle-hello: %s\n", spindle_strerror(rc));
        return 1;
    }
    return 0;
}
