/* stats.c - per-shard counters, the request lifecycle hooks, what a
 * request carries, and spindle_get_stats(). */
#include "stats.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "accesslog.h"
#include "conn.h"
#include "offload.h"
#include "resphdr.h"
#include "server.h"
#include "shard.h"
#include "stream.h"

const uint64_t stats_dur_bounds_us[STATS_DUR_BOUNDS] = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void stats_conn_accepted(shard *sh, conn *c, bool tls)
{
    req_info *in = &c->info;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(in, 0, sizeof *in);
    if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)&ss;
            memcpy(in->addr, &a->sin_addr, 4);
            in->port = ntohs(a->sin_port);
            in->family = AF_INET;
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)&ss;
            memcpy(in->addr, &a->sin6_addr, 16);
            in->port = ntohs(a->sin6_port);
            in->family = AF_INET6;
        }
    }
    in->local_port = tls ? sh->tls_port : sh->port;
    in->tls = tls;
    in->proto = tls ? STATS_PROTO_H2 : STATS_PROTO_H2C;
    c->id = ++sh->view.conn_seq;
    c->speaks = 0;
    stat_add(&sh->stats.accepted, 1);
    if (tls)
        stat_add(&sh->stats.accepted_tls, 1);
}

void stats_conn_speaks(conn *c, uint8_t proto)
{
    unsigned k;
    switch (proto) {
    case CONN_H2:
    case CONN_H2C: k = c->tls ? STATS_CONN_H2 : STATS_CONN_H2C; break;
    case CONN_WS: k = STATS_CONN_WS + (c->tls != NULL); break;
    default: k = STATS_CONN_H1 + (c->tls != NULL); break;
    }
    shard_stats *s = &c->sh->stats;
    stats_conn_closed(c);
    stat_add(&s->conn_opened[k], 1);
    stat_add(&s->conn_open[k], 1);
    c->speaks = (uint8_t)(k + 1);
}

void stats_conn_closed(conn *c)
{
    if (!c->speaks)
        return;
    stat_u64 *g = &c->sh->stats.conn_open[c->speaks - 1];
    stat_set(g, stat_get(g) - 1);
    c->speaks = 0;
}

const char *spindle_conn_protocol_name(uint32_t i, bool *tls)
{
    static const char *const names[STATS_CONNS] = {"h2c",      "h2",        "http/1.1",
                                                   "http/1.1", "websocket", "websocket"};
    if (i >= STATS_CONNS)
        return NULL;
    if (tls)
        *tls = i == STATS_CONN_H2 || i == STATS_CONN_H1_TLS || i == STATS_CONN_WS_TLS;
    return names[i];
}

uint8_t stats_method_class(const char *m, size_t len)
{
    static const char *const names[] = {"GET",    "HEAD",    "POST",  "PUT",
                                        "DELETE", "OPTIONS", "PATCH", "CONNECT"};
    for (uint8_t i = 0; i < STATS_M_OTHER; i++)
        if (strlen(names[i]) == len && memcmp(names[i], m, len) == 0)
            return i;
    return STATS_M_OTHER;
}

void stats_request_begin(spindle_stream *st, const spindle_request *req)
{
    conn *c = st->c;
    shard *sh = c->sh;
    req_track *t = &st->track;
    if (c->tls && !c->info.tls_version)
        c->info.tls_version = tls_version(c->tls); /* static strings, set once */
    t->info = c->info;
    t->conn_id = c->id;
    t->t0_ns = sh->view.tick_ns; /* when the ring handed its bytes over */
    t->method =
        req->method.ptr ? stats_method_class(req->method.ptr, req->method.len) : STATS_M_OTHER;
    t->head = t->method == STATS_M_HEAD;
    stat_add(&sh->stats.started, 1);
    if (sh->view.alog)
        t->alog = alog_capture(sh, req, (int64_t)t->t0_ns + sh->view.real_off_ns);
}

static unsigned dur_bucket(uint64_t us)
{
    unsigned i = 0;
    while (i < STATS_DUR_BOUNDS && us > stats_dur_bounds_us[i])
        i++;
    return i;
}

void stats_request_done(spindle_stream *st)
{
    req_track *t = &st->track;
    if (!t->t0_ns)
        return; /* no request head (never counted) */
    shard *sh = st->c->sh;
    shard_stats *s = &sh->stats;
    /* One clock read per loop iteration for every request that ends in it
     * (responses leave at the iteration's flush anyway). */
    if (!sh->view.done_ns)
        sh->view.done_ns = mono_ns();
    uint64_t us = sh->view.done_ns > t->t0_ns ? (sh->view.done_ns - t->t0_ns) / 1000u : 0;
    unsigned sc = t->status >= 100 && t->status < 600 ? t->status / 100u - 1u : STATS_STATUS_NONE;
    stat_add(&s->requests[t->method][sc], 1);
    stat_add(&s->by_proto[t->info.proto < STATS_PROTOS ? t->info.proto : 0], 1);
    stat_add(&s->req_bytes, t->req_bytes);
    stat_add(&s->resp_bytes, t->resp_bytes);
    stat_add(&s->dur_bucket[dur_bucket(us)], 1);
    stat_add(&s->dur_sum_us, us);
    if (st->flags & ST_RESET)
        stat_add(&s->resets, 1);
    if (t->alog) {
        alog_line(sh, st, us);
        alog_release(sh, t->alog);
        t->alog = NULL;
    }
    t->t0_ns = 0;
}

void stats_tick(shard *sh)
{
    shard_stats *s = &sh->stats;
    sh->view.tick_ns = mono_ns();
    sh->view.done_ns = 0;
    stat_set(&s->conns_open, sh->nconns);
    stat_set(&s->off_streams, sh->off_streams);
    if (sh->noff)
        stat_set(&s->off_queue, offload_queue_depth(sh));
    for (int i = 0; i < H2_LIMIT_COUNT; i++)
        if (stat_get(&s->limit_hits[i]) != sh->h2.limit_hits[i])
            stat_set(&s->limit_hits[i], sh->h2.limit_hits[i]);
    if (sh->now >= sh->view.sec_ms + 1000 || sh->view.sec_ms == 0) {
        /* Once a second: the pools, the date, the access log. */
        sh->view.sec_ms = sh->now;
        struct timespec rt;
        clock_gettime(CLOCK_REALTIME, &rt);
        sh->view.real_off_ns = (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec - (int64_t)mono_ns();
        uint64_t live, kept;
        h2_ctx_pool_bytes(&sh->h2, &live, &kept);
        stat_set(&s->pool_live, live);
        stat_set(&s->pool_kept, kept);
        ring_stats rs;
        ring_get_stats(sh->r, &rs);
        stat_set(&s->poll_hits, rs.spin_hits);
        stat_set(&s->poll_misses, rs.spin_misses);
        stat_set(&s->poll_yields, rs.poll_yields);
        if (sh->view.alog)
            alog_flush(sh);
    }
    resphdr_tick(sh);
}

/* ------------------------------------------------------------------------ */

static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static server *running;

void stats_set_server(server *srv)
{
    pthread_mutex_lock(&running_lock);
    running = srv;
    pthread_mutex_unlock(&running_lock);
}

static void sum_into(uint64_t *out, const stat_u64 *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] += stat_get(&in[i]);
}

static void sum_shard(const shard *sh, spindle_stats *o)
{
    const shard_stats *s = &sh->stats;
    o->connections_accepted += stat_get(&s->accepted);
    o->connections_accepted_tls += stat_get(&s->accepted_tls);
    o->connections_open += stat_get(&s->conns_open);
    o->connections_cap_reached += stat_get(&s->cap_reached);
    o->tls_handshakes += stat_get(&s->tls_handshakes);
    o->tls_handshake_failures += stat_get(&s->tls_failed);
    o->requests_started += stat_get(&s->started);
    for (int m = 0; m < STATS_METHODS; m++)
        for (int c = 0; c < STATS_STATUSES; c++) {
            uint64_t n = stat_get(&s->requests[m][c]);
            o->requests += n;
            o->requests_by_method[m] += n;
            o->requests_by_status[c] += n;
        }
    sum_into(o->requests_by_protocol, s->by_proto, STATS_PROTOS);
    o->request_body_bytes += stat_get(&s->req_bytes);
    o->response_body_bytes += stat_get(&s->resp_bytes);
    o->streams_reset += stat_get(&s->resets);
    o->duration_us_sum += stat_get(&s->dur_sum_us);
    sum_into(o->duration_buckets, s->dur_bucket, STATS_DUR_BOUNDS + 1);
    sum_into(o->limit_hits, s->limit_hits, H2_LIMIT_COUNT);
    sum_into(o->connections_by_protocol, s->conn_opened, STATS_CONNS);
    sum_into(o->connections_open_by_protocol, s->conn_open, STATS_CONNS);
    o->offloaded += stat_get(&s->offloaded);
    o->offload_streams += stat_get(&s->off_streams);
    o->access_log_lines += stat_get(&s->alog_lines);
    o->access_log_dropped += stat_get(&s->alog_dropped);
    o->pool_bytes_live += stat_get(&s->pool_live);
    o->pool_bytes_kept += stat_get(&s->pool_kept);
    int64_t mem = server_arena_allocated(sh->arena);
    if (mem >= 0)
        o->memory_allocated = (o->memory_allocated < 0 ? 0 : o->memory_allocated) + mem;
}

void stats_sum(const server *srv, spindle_stats *o)
{
    _Static_assert(H2_LIMIT_COUNT <= SPINDLE_STATS_LIMITS, "spindle_stats.limit_hits too small");
    _Static_assert(STATS_DUR_BOUNDS == SPINDLE_STATS_BUCKETS, "duration buckets");
    _Static_assert(STATS_CONNS == SPINDLE_STATS_CONN_PROTOS, "connection protocols");
    _Static_assert(STATS_METHODS == 9 && STATS_STATUSES == 6 && STATS_PROTOS == 3, "classes");
    memset(o, 0, sizeof *o);
    o->memory_allocated = -1;
    o->nlimits = H2_LIMIT_COUNT;
    memcpy(o->duration_bounds_us, stats_dur_bounds_us, sizeof stats_dur_bounds_us);
    o->shards = srv->nshards;
    for (uint32_t i = 0; i < srv->nshards; i++)
        sum_shard(&srv->shards[i], o);
}

int spindle_get_stats(spindle_stats *out)
{
    if (!out)
        return SPINDLE_EINVAL;
    pthread_mutex_lock(&running_lock);
    int rc = SPINDLE_ESTATE;
    if (running) {
        stats_sum(running, out);
        rc = SPINDLE_OK;
    }
    pthread_mutex_unlock(&running_lock);
    return rc;
}

const char *spindle_limit_name(uint32_t i)
{
    return i < H2_LIMIT_COUNT ? h2_limit_name((h2_limit_id)i) : NULL;
}

int spindle_stream_info(const spindle_stream *s, spindle_conn_info *out)
{
    if (!s || !out)
        return SPINDLE_EINVAL;
    static const char *const protos[] = {"h2c", "h2", "http/1.1"};
    const req_info *in = &s->track.info;
    memset(out, 0, sizeof *out);
    if (in->family)
        inet_ntop(in->family, in->addr, out->address, sizeof out->address);
    out->port = in->port;
    out->local_port = in->local_port;
    out->tls = in->tls;
    out->alpn = in->tls && in->proto != STATS_PROTO_HTTP11 ? "h2" : NULL;
    out->tls_version = in->tls_version;
    out->protocol = protos[in->proto < STATS_PROTOS ? in->proto : 0];
    out->connection_id = s->track.conn_id;
    out->stream_id = s->sid;
    return SPINDLE_OK;
}
