/* metrics.c - Prometheus text exposition of the summed counters. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "h2_limits.h"
#include "server.h"
#include "shard.h"
#include "stats.h"
#include "stream.h"

typedef struct out {
    char *p;
    size_t len, cap;
    bool failed;
} out;

__attribute__((format(printf, 2, 3))) static void put(out *o, const char *fmt, ...)
{
    if (o->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *np = realloc(o->p, cap);
        if (!np) {
            o->failed = true;
            return;
        }
        o->p = np;
        o->cap = cap;
    }
}

static void family(out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP spindle_%s %s\n# TYPE spindle_%s %s\n", name, help, name, type);
}

static void one(out *o, const char *name, const char *type, const char *help, uint64_t v)
{
    family(o, name, type, help);
    put(o, "spindle_%s %llu\n", name, (unsigned long long)v);
}

/* Connections by the protocol they speak, counted where it became known. */
static void by_protocol(out *o, const spindle_stats *s)
{
    static const char *const fam[2] = {"connections_by_protocol_total",
                                       "connections_open_by_protocol"};
    static const char *const type[2] = {"counter", "gauge"};
    static const char *const help[2] = {
        "Connections that began speaking each protocol (first bytes, ALPN or an Upgrade).",
        "Connections speaking each protocol now."};
    for (int g = 0; g < 2; g++) {
        family(o, fam[g], type[g], help[g]);
        for (uint32_t i = 0; i < SPINDLE_STATS_CONN_PROTOS; i++) {
            bool tls = false;
            const char *name = spindle_conn_protocol_name(i, &tls);
            uint64_t v = g ? s->connections_open_by_protocol[i] : s->connections_by_protocol[i];
            put(o, "spindle_%s{protocol=\"%s\",tls=\"%s\"} %llu\n", fam[g], name,
                tls ? "true" : "false", (unsigned long long)v);
        }
    }
}

static void connections(out *o, const server *srv, const spindle_stats *s)
{
    family(o, "connections_accepted_total", "counter", "Connections accepted.");
    put(o, "spindle_connections_accepted_total{tls=\"false\"} %llu\n",
        (unsigned long long)(s->connections_accepted - s->connections_accepted_tls));
    put(o, "spindle_connections_accepted_total{tls=\"true\"} %llu\n",
        (unsigned long long)s->connections_accepted_tls);
    family(o, "connections_open", "gauge", "Connections open, per shard.");
    for (uint32_t i = 0; i < srv->nshards; i++)
        put(o, "spindle_connections_open{shard=\"%u\"} %llu\n", i,
            (unsigned long long)stat_get(&srv->shards[i].stats.conns_open));
    by_protocol(o, s);
    one(o, "connections_cap_reached_total", "counter",
        "Times a shard reached max-conns and left connections in the accept queue.",
        s->connections_cap_reached);
    one(o, "tls_handshakes_total", "counter", "TLS handshakes completed.", s->tls_handshakes);
    one(o, "tls_handshake_failures_total", "counter", "TLS handshakes failed or timed out.",
        s->tls_handshake_failures);
}

static void requests(out *o, const server *srv, const spindle_stats *s)
{
    static const char *const protos[] = {"h2c", "h2", "http/1.1"};
    static const char *const methods[] = {"GET",     "HEAD",  "POST",    "PUT",  "DELETE",
                                          "OPTIONS", "PATCH", "CONNECT", "other"};
    static const char *const codes[] = {"1xx", "2xx", "3xx", "4xx", "5xx", "none"};
    one(o, "requests_started_total", "counter", "Request heads received.", s->requests_started);
    family(o, "requests_total", "counter", "Requests finished, by protocol.");
    for (int p = 0; p < STATS_PROTOS; p++)
        put(o, "spindle_requests_total{protocol=\"%s\"} %llu\n", protos[p],
            (unsigned long long)s->requests_by_protocol[p]);
    family(o, "responses_total", "counter",
           "Requests finished, by method and status class (none: no final status).");
    for (int m = 0; m < STATS_METHODS; m++)
        for (int c = 0; c < STATS_STATUSES; c++) {
            uint64_t n = 0;
            for (uint32_t i = 0; i < srv->nshards; i++)
                n += stat_get(&srv->shards[i].stats.requests[m][c]);
            if (n)
                put(o, "spindle_responses_total{method=\"%s\",code=\"%s\"} %llu\n", methods[m],
                    codes[c], (unsigned long long)n);
        }
    one(o, "request_body_bytes_total", "counter", "Request body bytes received.",
        s->request_body_bytes);
    one(o, "response_body_bytes_total", "counter", "Response body bytes queued.",
        s->response_body_bytes);
    one(o, "streams_reset_total", "counter", "Requests ended by a reset (either side).",
        s->streams_reset);
    family(o, "request_duration_seconds", "histogram",
           "From the request head to the end of the response (queued) or the reset.");
    uint64_t cum = 0;
    for (int b = 0; b < SPINDLE_STATS_BUCKETS; b++) {
        cum += s->duration_buckets[b];
        put(o, "spindle_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
            (double)s->duration_bounds_us[b] / 1e6, (unsigned long long)cum);
    }
    cum += s->duration_buckets[SPINDLE_STATS_BUCKETS];
    put(o, "spindle_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    put(o, "spindle_request_duration_seconds_sum %.6f\n", (double)s->duration_us_sum / 1e6);
    put(o, "spindle_request_duration_seconds_count %llu\n", (unsigned long long)cum);
}

static void runtime(out *o, const server *srv, const spindle_stats *s)
{
    family(o, "limit_hits_total", "counter", "Times peers ran into each protocol limit.");
    for (uint32_t i = 0; i < s->nlimits; i++)
        put(o, "spindle_limit_hits_total{limit=\"%s\"} %llu\n", spindle_limit_name(i),
            (unsigned long long)s->limit_hits[i]);
    one(o, "offloaded_requests_total", "counter", "Requests handed to offload threads.",
        s->offloaded);
    family(o, "offload_streams", "gauge", "Streams with the offload threads now, per shard.");
    for (uint32_t i = 0; i < srv->nshards; i++)
        put(o, "spindle_offload_streams{shard=\"%u\"} %llu\n", i,
            (unsigned long long)stat_get(&srv->shards[i].stats.off_streams));
    family(o, "offload_queue_depth", "gauge",
           "Messages and commands queued between each shard and its offload threads.");
    for (uint32_t i = 0; i < srv->nshards; i++)
        put(o, "spindle_offload_queue_depth{shard=\"%u\"} %llu\n", i,
            (unsigned long long)stat_get(&srv->shards[i].stats.off_queue));
    if (s->memory_allocated >= 0) {
        family(o, "memory_allocated_bytes", "gauge",
               "Bytes allocated in each shard's jemalloc arena (absent without jemalloc).");
        for (uint32_t i = 0; i < srv->nshards; i++) {
            int64_t m = server_arena_allocated(srv->shards[i].arena);
            if (m >= 0)
                put(o, "spindle_memory_allocated_bytes{shard=\"%u\"} %lld\n", i, (long long)m);
        }
    }
    family(o, "ring_polls_total", "counter",
           "Waits that polled the ring before sleeping, per shard (ring-poll-us, ring-spin-us; "
           "published once a second): a completion came (hit), none came (miss), the thread "
           "was descheduled, which ends the poll (yield).");
    for (uint32_t i = 0; i < srv->nshards; i++) {
        const shard_stats *st = &srv->shards[i].stats;
        put(o, "spindle_ring_polls_total{shard=\"%u\",result=\"hit\"} %llu\n", i,
            (unsigned long long)stat_get(&st->poll_hits));
        put(o, "spindle_ring_polls_total{shard=\"%u\",result=\"miss\"} %llu\n", i,
            (unsigned long long)stat_get(&st->poll_misses));
        put(o, "spindle_ring_polls_total{shard=\"%u\",result=\"yield\"} %llu\n", i,
            (unsigned long long)stat_get(&st->poll_yields));
    }
    family(o, "pool_bytes", "gauge", "The protocol engine's pools, per shard: in use and kept.");
    for (uint32_t i = 0; i < srv->nshards; i++) {
        const shard_stats *st = &srv->shards[i].stats;
        put(o, "spindle_pool_bytes{shard=\"%u\",state=\"live\"} %llu\n", i,
            (unsigned long long)stat_get(&st->pool_live));
        put(o, "spindle_pool_bytes{shard=\"%u\",state=\"kept\"} %llu\n", i,
            (unsigned long long)stat_get(&st->pool_kept));
    }
    one(o, "access_log_lines_total", "counter", "Access log lines written.", s->access_log_lines);
    one(o, "access_log_dropped_total", "counter", "Access log lines dropped (log thread behind).",
        s->access_log_dropped);
    one(o, "shards", "gauge", "Shards running.", s->shards);
}

char *metrics_render(const server *srv, size_t *len)
{
    spindle_stats s;
    stats_sum(srv, &s);
    out o = {.p = malloc(8192), .cap = 8192};
    if (!o.p)
        return NULL;
    connections(&o, srv, &s);
    requests(&o, srv, &s);
    runtime(&o, srv, &s);
    if (o.failed) {
        free(o.p);
        return NULL;
    }
    *len = o.len;
    return o.p;
}

static void free_body(void *ctx, const void *data, size_t len)
{
    (void)data;
    (void)len;
    free(ctx);
}

bool metrics_serve(spindle_stream *st, const spindle_request *req)
{
    const char *path = st->c->sh->srv->cfg.metrics_path;
    if (!path || !req->path.ptr || req->has_body)
        return false;
    size_t n = strlen(path), plen = req->path.len;
    if ((plen != n && (plen < n || req->path.ptr[n] != '?')) || memcmp(req->path.ptr, path, n) != 0)
        return false; /* the path, then the end or a query */
    bool head = req->method.len == 4 && memcmp(req->method.ptr, "HEAD", 4) == 0;
    if (!head && !(req->method.len == 3 && memcmp(req->method.ptr, "GET", 3) == 0))
        return false;
    /* Answered here, on the shard, whatever the handler's mode: the
     * handler never hears of this stream (ST_INTERNAL). */
    st->ops = &stream_inline_ops;
    st->flags |= ST_INTERNAL;
    size_t len = 0;
    char *body = metrics_render(st->c->sh->srv, &len);
    static const spindle_header h[] = {{.name = "content-type", .value = METRICS_CONTENT_TYPE}};
    if (!body) {
        stream_respond(st, 500, NULL, 0, true);
        return true;
    }
    if (head || stream_respond(st, 200, h, 1, false) != 0) {
        if (head)
            stream_respond(st, 200, h, 1, true);
        free(body);
        return true;
    }
    stream_send(st, body, len, true, free_body, body);
    return true;
}
