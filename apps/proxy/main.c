/* spindle-proxy - a handler that calls an upstream HTTP/2 origin and
 * relays its answer (head, body, trailers) to the client, built only on
 * include/spindle.h's upstream calls (docs/client.md).
 *
 *   any request         relayed to the origin (--upstream HOST:PORT) with
 *                       its method, path, fields and body (streamed); the
 *                       response's head, body and trailers come back.  The
 *                       origin unreachable or lost before the head: 502;
 *                       --upstream-timeout passed first: 504; after the
 *                       head: the stream is reset (INTERNAL_ERROR)
 *   POST /_grpc/S/M     a gRPC unary call of S/M on the origin with the body
 *                       as the raw request message (grpc.c): 200 with the
 *                       reply message as body and x-grpc-status /
 *                       x-grpc-message from the origin's trailers
 *
 * One upstream per shard (on_shard_start), so calls need no lock; each
 * shard keeps at most --upstream-conns connections to the origin.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "proxy.h"

static const char *upstream_arg, *up_ca, *up_name, *up_timeout, *up_conns, *up_keepalive;
static bool up_tls, up_insecure;
static spindle_upstream_config up_cfg;
static char up_host[256];
/* The client stream's queue at which the call pauses: the server's
 * limits.max_stream_buffered, where on_writable is promised. */
static size_t px_bound;

spindle_upstream *px_upstream(void)
{
    return spindle_shard_ctx(spindle_current_shard());
}

bool px_append(px_stream *st, const void *data, size_t len)
{
    if (st->len + len > st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 1024;
        while (cap < st->len + len)
            cap *= 2;
        uint8_t *p = realloc(st->buf, cap);
        if (!p)
            return false;
        st->buf = p;
        st->cap = cap;
    }
    if (len)
        memcpy(st->buf + st->len, data, len);
    st->len += len;
    return true;
}

void px_answer(spindle_stream *s, uint16_t status, const char *text)
{
    static const spindle_header h[] = {{"content-type", "text/plain", 0, 0}};
    if (spindle_respond(s, status, h, 1, false) == 0)
        spindle_send_copy(s, text, strlen(text), true);
}

/* Fields that do not cross a proxy (RFC 9110 section 7.6.1) or that the
 * upstream call sets itself. */
static bool hop_field(const spindle_header *f)
{
    static const char *const hop[] = {
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
        "host",       "te",         "content-length"};
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        if (f->name_len == strlen(hop[i]) && memcmp(f->name, hop[i], f->name_len) == 0)
            return !(f->name_len == 2 && f->value_len == 8 && !memcmp(f->value, "trailers", 8));
    return false;
}

/* Copies of the fields to relay (NULL-safe: n 0). */
static size_t relay_fields(const spindle_header *in, size_t n, spindle_header *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < max; i++)
        if (!hop_field(&in[i]))
            out[k++] = in[i];
    return k;
}

/* --- The upstream call's callbacks ------------------------------------------ */

static void up_response(spindle_call *call, const spindle_response *r, void *ctx)
{
    px_stream *st = ctx;
    spindle_stream *s = spindle_handle_stream(st->h);
    if (!s) {
        spindle_call_cancel(call);
        return;
    }
    spindle_header f[100];
    size_t n = relay_fields(r->headers, r->nheaders, f, 100);
    st->head_sent = spindle_respond(s, r->status, f, n, r->end) == 0;
}

static void up_data(spindle_call *call, const uint8_t *data, size_t len, bool end, void *ctx)
{
    px_stream *st = ctx;
    spindle_stream *s = spindle_handle_stream(st->h);
    if (!s) {
        spindle_call_cancel(call);
        return;
    }
    spindle_send_copy(s, data, len, end);
    /* Backpressure: a client slower than the origin stops the origin (its
     * stream's window) instead of growing the queue; on_writable resumes. */
    if (!end && !st->paused && spindle_stream_buffered(s) >= px_bound) {
        st->paused = true;
        spindle_call_pause(call);
    }
}

static void up_trailers(spindle_call *call, const spindle_header *h, size_t n, void *ctx)
{
    px_stream *st = ctx;
    spindle_stream *s = spindle_handle_stream(st->h);
    if (!s) {
        spindle_call_cancel(call);
        return;
    }
    spindle_send_trailers(s, h, n);
}

static void up_done(spindle_call *call, int err, uint32_t code, void *ctx)
{
    (void)call;
    px_stream *st = ctx;
    st->call = NULL;
    spindle_stream *s = spindle_handle_stream(st->h);
    if (!s || err == 0)
        return;
    if (st->head_sent) {
        spindle_reset(s, SPINDLE_H2_INTERNAL_ERROR);
        return;
    }
    char msg[160];
    snprintf(msg, sizeof msg, "upstream: %s (h2 code %u)\n", spindle_strerror(err), code);
    px_answer(s, err == SPINDLE_ETIMEDOUT ? 504 : 502, msg);
}

static const spindle_call_handler relay = {up_response, up_data, up_trailers, up_done};

/* --- The client stream -------------------------------------------------------- */

static void on_request(spindle_stream *s, const spindle_request *r, void *app)
{
    (void)app;
    px_stream *st = calloc(1, sizeof *st);
    if (!st) {
        spindle_reset(s, SPINDLE_H2_INTERNAL_ERROR);
        return;
    }
    st->h = spindle_stream_handle(s);
    spindle_stream_set_user(s, st);
    if (grpc_route(r, st)) {
        if (!r->has_body)
            grpc_start(s, st);
        return;
    }
    char method[16], path[4096];
    if (r->method.len >= sizeof method || r->path.len >= sizeof path) {
        px_answer(s, 414, "too long\n");
        return;
    }
    memcpy(method, r->method.ptr, r->method.len);
    method[r->method.len] = 0;
    memcpy(path, r->path.ptr, r->path.len);
    path[r->path.len] = 0;
    spindle_header f[100];
    spindle_call_req req = {.method = method,
                            .path = path,
                            .headers = f,
                            .nheaders = relay_fields(r->headers, r->nheaders, f, 100),
                            .body_more = r->has_body};
    int rc = spindle_call_start(px_upstream(), &req, &relay, st, &st->call);
    if (rc != 0)
        px_answer(s, rc == SPINDLE_EAGAIN ? 503 : 502, "upstream call refused\n");
}

static void on_body(spindle_stream *s, const uint8_t *data, size_t len, bool end, void *app)
{
    (void)app;
    px_stream *st = spindle_stream_user(s);
    if (!st)
        return;
    if (st->grpc) {
        if (!px_append(st, data, len))
            spindle_reset(s, SPINDLE_H2_INTERNAL_ERROR);
        else if (end)
            grpc_start(s, st);
        return;
    }
    if (st->call)
        spindle_call_send(st->call, data, len, end);
}

static void on_trailers(spindle_stream *s, const spindle_header *h, size_t n, void *app)
{
    (void)app;
    px_stream *st = spindle_stream_user(s);
    if (st && st->grpc)
        grpc_start(s, st);
    else if (st && st->call)
        spindle_call_send_trailers(st->call, h, n);
}

static void on_writable(spindle_stream *s, void *app)
{
    (void)app;
    px_stream *st = spindle_stream_user(s);
    if (st && st->paused && st->call) {
        st->paused = false;
        spindle_call_resume(st->call);
    }
}

static void on_close(spindle_stream *s, void *app)
{
    (void)app;
    px_stream *st = spindle_stream_user(s);
    if (!st)
        return;
    spindle_call_cancel(st->call); /* the client went away first */
    free(st->buf);
    free(st);
}

/* --- Shards ------------------------------------------------------------------------ */

static void *shard_start(spindle_shard *sh, void *app)
{
    (void)app;
    spindle_upstream *u = NULL;
    int rc = spindle_upstream_new(sh, &up_cfg, &u);
    if (rc != 0) {
        fprintf(stderr, "spindle-proxy: upstream: %s\n", spindle_strerror(rc));
        spindle_stop();
    }
    return u;
}

static void shard_stop(spindle_shard *sh, void *ctx, void *app)
{
    (void)sh;
    (void)app;
    spindle_upstream_free(ctx);
}

static void on_listen(uint32_t shard, const char *address, uint16_t port, void *app)
{
    (void)app;
    /* The line spindle-hello prints (tests/integration/harness.py reads it). */
    bool v6 = strchr(address, ':') != NULL;
    printf("listening on http://%s%s%s:%u (shard %u) -> %s%s\n", v6 ? "[" : "", address,
           v6 ? "]" : "", port, shard, up_tls ? "https://" : "http://", upstream_arg);
    fflush(stdout);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: spindle-proxy --upstream HOST:PORT [--upstream-tls [--upstream-ca FILE]\n"
               "                     [--upstream-name NAME] [--upstream-insecure]]\n"
               "                     [--upstream-timeout MS] [--upstream-conns N]\n"
               "                     [--upstream-keepalive MS] [--address A] [--port P]\n"
               "                     [--shards N] [--log-level L] [--set name=value]...\n"
               "  --upstream HOST:PORT   the origin: an address ([v6]:port) or a host name\n"
               "  --upstream-tls         TLS with ALPN h2 (default: h2c, prior knowledge)\n"
               "  --upstream-ca FILE     CAs to verify the origin with (default: the system's)\n"
               "  --upstream-name NAME   SNI and the certificate name checked\n"
               "  --upstream-insecure    do not verify the origin's certificate\n"
               "  --upstream-timeout MS  per call, start to end (default 30000)\n"
               "  --upstream-conns N     connections per shard (default 2)\n"
               "  --upstream-keepalive MS  PING interval; unanswered: reconnect (default off)\n");
}

static int split_upstream(void)
{
    const char *colon = strrchr(upstream_arg, ':');
    if (!colon || colon == upstream_arg)
        return -1;
    const char *h = upstream_arg;
    size_t n = (size_t)(colon - h);
    if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n >= sizeof up_host)
        return -1;
    memcpy(up_host, h, n);
    up_host[n] = 0;
    long port = strtol(colon + 1, NULL, 10);
    if (port <= 0 || port > 65535)
        return -1;
    up_cfg.host = up_host;
    up_cfg.port = (uint16_t)port;
    return 0;
}

static int configure(void)
{
    up_cfg = spindle_upstream_config_default();
    if (!upstream_arg || split_upstream() != 0)
        return -1;
    up_cfg.tls = up_tls;
    up_cfg.tls_ca_file = up_ca;
    up_cfg.tls_name = up_name;
    up_cfg.tls_verify = !up_insecure;
    if (up_timeout)
        up_cfg.call_timeout_ms = (uint32_t)strtoul(up_timeout, NULL, 10);
    if (up_conns)
        up_cfg.max_conns = (uint32_t)strtoul(up_conns, NULL, 10);
    if (up_keepalive)
        up_cfg.keepalive_ms = (uint32_t)strtoul(up_keepalive, NULL, 10);
    return up_cfg.max_conns ? 0 : -1;
}

int main(int argc, char **argv)
{
    spindle_config cfg = spindle_config_default();
    const app_arg args[] = {
        {"--address", "address", NULL, NULL},
        {"--port", "port", NULL, NULL},
        {"--shards", "shards", NULL, NULL},
        {"--log-level", "log-level", NULL, NULL},
        {"--upstream", NULL, &upstream_arg, NULL},
        {"--upstream-tls", NULL, NULL, &up_tls},
        {"--upstream-ca", NULL, &up_ca, NULL},
        {"--upstream-name", NULL, &up_name, NULL},
        {"--upstream-insecure", NULL, NULL, &up_insecure},
        {"--upstream-timeout", NULL, &up_timeout, NULL},
        {"--upstream-conns", NULL, &up_conns, NULL},
        {"--upstream-keepalive", NULL, &up_keepalive, NULL},
    };
    const app_cli cli = {"spindle-proxy", usage, args, sizeof args / sizeof args[0]};
    int rc = app_args_main(&cli, argc, argv, &cfg);
    if (rc >= 0)
        return rc;
    char err[256];
    if (configure() != 0) {
        fprintf(stderr, "spindle-proxy: --upstream HOST:PORT is required (and valid)\n");
        return 2;
    }
    if (spindle_config_check(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "spindle-proxy: %s\n", err);
        return 2;
    }
    px_bound = cfg.limits.max_stream_buffered;
    spindle_handler h = {.on_request = on_request,
                         .on_body = on_body,
                         .on_trailers = on_trailers,
                         .on_writable = on_writable,
                         .on_close = on_close};
    spindle_hooks hooks = {
        .on_listen = on_listen, .on_shard_start = shard_start, .on_shard_stop = shard_stop};
    rc = spindle_run(&cfg, &h, &hooks, NULL);
    if (rc != 0) {
        fprintf(stderr, "spindle-proxy: %s\n", spindle_strerror(rc));
        return 1;
    }
    return 0;
}
