/* micro_conn.c - the connection engine (proto/h2_conn) driven in memory.
 *
 * A client is simulated with frames built by h2_frame_write_* and a client
 * hpack_encoder (the request is h2load's; after the first request the block
 * is fully indexed, as h2load's is).  The server side does what the shard
 * runtime does: h2_conn_recv until the input is used, answer each request
 * with h2_conn_respond + h2_conn_send_data over a static body + detach, then
 * h2_conn_out_prepare / h2_conn_out_commit until nothing is left.  Every
 * allocation goes through a counting h2_mem given to h2_ctx_init.
 *
 *   conn/out_gather_N   self-timed: only prepare+commit of N ready responses
 *   conn/cycle_1        one request in, one response out, ns per request
 *   conn/cycle_m64      64 requests per input buffer (h2load -m 64)
 *   conn/cycle_1m       one request, a 1 MiB body by reference
 *   conn/handshake      h2_conn_new + preface/SETTINGS/ACK + free
 */
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "h2_conn.h"
#include "micro.h"

#define IOV_MAX_BENCH 64u          /* what core/conn.c gathers per send */
#define SEND_BUDGET   (256u << 10) /* bytes per send, as core/conn.c */
#define WINDOW        (1u << 30)   /* the client's receive windows */
#define SID_LIMIT     (1u << 30)   /* reconnect before stream ids run out */
#define IDLE_CONNS    256u

/* --- Counting allocator ------------------------------------------------------ */

typedef struct cmem {
    h2_mem mem;
    uint64_t allocs, reallocs, frees;
    int64_t live_bytes;
    int64_t peak_bytes;
} cmem;

#define HDR 16u /* size prefix, keeps 16-byte alignment */

static void *cm_malloc(size_t n, void *ud)
{
    cmem *m = ud;
    uint8_t *p = malloc(n + HDR);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    m->allocs++;
    m->live_bytes += (int64_t)n;
    if (m->live_bytes > m->peak_bytes)
        m->peak_bytes = m->live_bytes;
    return p + HDR;
}

static void cm_free(void *ptr, void *ud)
{
    cmem *m = ud;
    if (!ptr)
        return;
    uint8_t *p = (uint8_t *)ptr - HDR;
    size_t n;
    memcpy(&n, p, sizeof n);
    m->frees++;
    m->live_bytes -= (int64_t)n;
    free(p);
}

static void *cm_realloc(void *ptr, size_t n, void *ud)
{
    cmem *m = ud;
    if (!ptr)
        return cm_malloc(n, ud);
    uint8_t *p = (uint8_t *)ptr - HDR;
    size_t old;
    memcpy(&old, p, sizeof old);
    uint8_t *q = realloc(p, n + HDR);
    if (!q)
        return NULL;
    memcpy(q, &n, sizeof n);
    m->reallocs++;
    m->live_bytes += (int64_t)n - (int64_t)old;
    if (m->live_bytes > m->peak_bytes)
        m->peak_bytes = m->live_bytes;
    return q + HDR;
}

/* --- Simulated connection ------------------------------------------------------ */

static const char hello[] = "Hello, World!";
static uint8_t one_mib[1u << 20];

typedef struct sim {
    cmem m;
    h2_limits lim;
    h2_ctx x;
    h2_conn *c;
    uint64_t now;
    uint32_t next_sid;
    /* client */
    hpack_encoder enc;
    uint8_t first[1024], steady[1024]; /* >= hpack_encode_bound() */
    size_t first_len, steady_len;
    uint8_t hs[256]; /* preface + SETTINGS + WINDOW_UPDATE */
    size_t hs_len;
    uint64_t owed; /* DATA bytes received since our last connection WINDOW_UPDATE */
    uint8_t *in;
    size_t in_cap;
    /* server */
    hpack_field ctype;
    const uint8_t *body;
    size_t body_len;
    struct iovec iov[IOV_MAX_BENCH];
    uint64_t requests, responses, errors;
    uint64_t prepares, iovecs, out_bytes;
    uint64_t handshakes;
    uint8_t scratch[16384];
} sim;

static void respond(sim *s, uint32_t sid)
{
    if (h2_conn_respond(s->c, sid, 200, &s->ctype, 1, false) != H2_OK ||
        h2_conn_send_data(s->c, sid, s->body, s->body_len, true, NULL, NULL) != H2_OK ||
        h2_conn_stream_detach(s->c, sid) != H2_OK)
        s->errors++;
    else
        s->responses++;
    s->owed += s->body_len;
}

/* Write all pending output (prepare + commit), as the runtime's send path. */
static void flush(sim *s)
{
    size_t k;
    while ((k = h2_conn_out_prepare(s->c, s->iov, IOV_MAX_BENCH, SEND_BUDGET)) > 0) {
        size_t bytes = 0;
        for (size_t i = 0; i < k; i++)
            bytes += s->iov[i].iov_len;
        h2_conn_out_commit(s->c, bytes, s->now);
        s->prepares++;
        s->iovecs += k;
        s->out_bytes += bytes;
    }
}

/* Feed input the way core/conn.c does, answering requests as they come. */
static void feed(sim *s, const uint8_t *in, size_t len)
{
    size_t off = 0;
    for (;;) {
        h2_event ev;
        size_t used = 0;
        h2_rv rv = h2_conn_recv(s->c, in + off, len - off, s->now, &used, &ev);
        off += used;
        if (ev.type == H2_EV_REQUEST) {
            s->requests++;
            respond(s, ev.stream_id);
        }
        if (rv == H2_E_AGAIN) {
            flush(s);
            continue;
        }
        if (rv != H2_OK) {
            s->errors++;
            return;
        }
        if (ev.type == H2_EV_NONE && off == len)
            return;
    }
}

static bool in_reserve(sim *s, size_t n)
{
    if (n <= s->in_cap)
        return true;
    uint8_t *p = realloc(s->in, n);
    if (!p)
        return false;
    s->in = p;
    s->in_cap = n;
    return true;
}

/* Client bytes for nreq GET requests (steady block), preceded by a
 * connection WINDOW_UPDATE when enough DATA was received. */
static size_t build_requests(sim *s, uint32_t nreq)
{
    uint8_t *p = s->in;
    if (s->owed >= WINDOW / 4) {
        p = h2_frame_write_window_update(p, 0, (uint32_t)s->owed);
        s->owed = 0;
    }
    for (uint32_t i = 0; i < nreq; i++) {
        p = h2_frame_write_headers(p, s->next_sid, true, true, NULL, s->steady,
                                   (uint32_t)s->steady_len, 0, false);
        s->next_sid += 2;
    }
    return (size_t)(p - s->in);
}

static void drain_discard(sim *s)
{
    while (h2_conn_send(s->c, s->scratch, sizeof s->scratch, s->now) > 0)
        ;
}

/* A new server connection, handshake done, first request answered. */
static bool sim_connect(sim *s)
{
    if (s->c)
        h2_conn_free(s->c);
    hpack_encoder_free(&s->enc);
    hpack_encoder_init(&s->enc, 4096, NULL);
    s->c = h2_conn_new(&s->x, s->now);
    if (!s->c)
        return false;
    s->next_sid = 1;
    s->owed = 0;
    feed(s, s->hs, s->hs_len);
    drain_discard(s);
    uint8_t ack[H2_FRAME_HDR_LEN];
    h2_frame_write_settings_ack(ack);
    feed(s, ack, sizeof ack);
    drain_discard(s);

    /* h2load's request: the first block has literals, later ones are indexed. */
    static const struct {
        const char *n, *v;
    } req[] = {{":method", "GET"},
               {":path", "/"},
               {":scheme", "http"},
               {":authority", "127.0.0.1:8080"},
               {"user-agent", "h2load/1.52.0"}};
    hpack_field f[5];
    for (int i = 0; i < 5; i++)
        f[i] = (hpack_field){(const uint8_t *)req[i].n,
                             (const uint8_t *)req[i].v,
                             (uint32_t)strlen(req[i].n),
                             (uint32_t)strlen(req[i].v),
                             0,
                             0};
    if (hpack_encode_block(&s->enc, f, 5, s->first, sizeof s->first, &s->first_len) != H2_OK ||
        hpack_encode_block(&s->enc, f, 5, s->steady, sizeof s->steady, &s->steady_len) != H2_OK)
        return false;
    uint8_t *p = h2_frame_write_headers(s->in, s->next_sid, true, true, NULL, s->first,
                                        (uint32_t)s->first_len, 0, false);
    s->next_sid += 2;
    uint64_t before = s->responses;
    feed(s, s->in, (size_t)(p - s->in));
    flush(s);
    return s->responses == before + 1 && s->errors == 0;
}

static void build_handshake(sim *s)
{
    uint8_t *p = s->hs;
    memcpy(p, H2_PREFACE, H2_PREFACE_LEN);
    p += H2_PREFACE_LEN;
    /* What h2load sends: its window sizes and no push. */
    const h2_setting set[] = {{H2_SET_MAX_CONCURRENT_STREAMS, 100},
                              {H2_SET_INITIAL_WINDOW_SIZE, WINDOW - 1},
                              {H2_SET_ENABLE_PUSH, 0}};
    p = h2_frame_write_settings(p, set, 3);
    p = h2_frame_write_window_update(p, 0, WINDOW - 65535u);
    s->hs_len = (size_t)(p - s->hs);
}

static sim *sim_new(void)
{
    sim *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->m.mem = (h2_mem){cm_malloc, cm_realloc, cm_free, &s->m};
    s->lim = *h2_limits_default();
    s->lim.max_requests = 0; /* as the e2e runs: --set max-requests=0 */
    if (h2_ctx_init(&s->x, &s->lim, &s->m.mem) != H2_OK) {
        free(s);
        return NULL;
    }
    s->now = 1000;
    s->ctype =
        (hpack_field){(const uint8_t *)"content-type", (const uint8_t *)"text/plain", 12, 10, 0, 0};
    s->body = (const uint8_t *)hello;
    s->body_len = sizeof hello - 1;
    hpack_encoder_init(&s->enc, 4096, NULL);
    build_handshake(s);
    if (!in_reserve(s, 64 * 1024) || !sim_connect(s)) {
        if (s->c)
            h2_conn_free(s->c);
        h2_ctx_free(&s->x);
        free(s->in);
        free(s);
        return NULL;
    }
    return s;
}

static void sim_free(sim *s)
{
    if (!s)
        return;
    h2_conn_free(s->c);
    hpack_encoder_free(&s->enc);
    h2_ctx_free(&s->x);
    free(s->in);
    free(s);
}

static void maybe_reconnect(sim *s, uint32_t upcoming)
{
    if (s->next_sid + 2u * upcoming >= SID_LIMIT && !sim_connect(s))
        s->errors++;
}

/* --- Cases --------------------------------------------------------------------- */

typedef struct gather_arg {
    sim *s;
    uint32_t streams;
} gather_arg;

static uint64_t run_gather(void *arg, uint64_t n)
{
    gather_arg *g = arg;
    sim *s = g->s;
    uint64_t ns = 0;
    for (uint64_t i = 0; i < n; i++) {
        maybe_reconnect(s, g->streams);
        size_t len = build_requests(s, g->streams);
        feed(s, s->in, len);
        uint64_t t0 = bench_now_ns();
        flush(s);
        ns += bench_now_ns() - t0;
    }
    return ns ? ns : 1;
}

typedef struct cycle_arg {
    sim *s;
    uint32_t batch; /* requests per input buffer */
} cycle_arg;

static uint64_t run_cycle(void *arg, uint64_t n)
{
    cycle_arg *a = arg;
    sim *s = a->s;
    for (uint64_t done = 0; done < n;) {
        uint32_t k = n - done < a->batch ? (uint32_t)(n - done) : a->batch;
        maybe_reconnect(s, k);
        size_t len = build_requests(s, k);
        feed(s, s->in, len);
        flush(s);
        done += k;
    }
    return 0;
}

static void note_counters(bench *b, sim *s, const cmem *m0, uint64_t req0, uint64_t prep0,
                          uint64_t iov0)
{
    uint64_t req = s->requests - req0;
    if (!req)
        return;
    bench_note(b, "allocs_per_req",
               (double)(s->m.allocs + s->m.reallocs - m0->allocs - m0->reallocs) / (double)req);
    bench_note(b, "frees_per_req", (double)(s->m.frees - m0->frees) / (double)req);
    bench_note(b, "iovecs_per_req", (double)(s->iovecs - iov0) / (double)req);
    bench_note(b, "sends_per_req", (double)(s->prepares - prep0) / (double)req);
    if (s->errors)
        bench_note(b, "ERRORS", (double)s->errors);
}

static void bench_gather(bench *b, sim *s, const char *name, uint32_t streams)
{
    if (!bench_want(b, name))
        return;
    gather_arg g = {s, streams};
    uint64_t prep0 = s->prepares, iov0 = s->iovecs, req0 = s->requests, bytes0 = s->out_bytes;
    if (bench_run(b, name, run_gather, &g, &(bench_opts){.unit = "drain"})) {
        double drains = (double)(s->requests - req0) / streams;
        bench_note(b, "streams", streams);
        bench_note(b, "iovecs_per_drain", (double)(s->iovecs - iov0) / drains);
        bench_note(b, "sends_per_drain", (double)(s->prepares - prep0) / drains);
        bench_note(b, "bytes_per_drain", (double)(s->out_bytes - bytes0) / drains);
        if (s->errors)
            bench_note(b, "ERRORS", (double)s->errors);
    }
}

static void bench_cycle(bench *b, sim *s, const char *name, uint32_t batch, double bytes)
{
    if (!bench_want(b, name))
        return;
    cycle_arg a = {s, batch};
    cmem m0 = s->m;
    uint64_t req0 = s->requests, prep0 = s->prepares, iov0 = s->iovecs;
    if (bench_run(b, name, run_cycle, &a, &(bench_opts){.unit = "request", .bytes_per_op = bytes}))
        note_counters(b, s, &m0, req0, prep0, iov0);
}

/* New connection, handshake (preface, SETTINGS, WINDOW_UPDATE, our SETTINGS
 * out, their ACK in), free. */
static uint64_t run_handshake(void *arg, uint64_t n)
{
    sim *s = arg;
    uint8_t ack[H2_FRAME_HDR_LEN];
    h2_frame_write_settings_ack(ack);
    h2_conn *keep = s->c;
    for (uint64_t i = 0; i < n; i++) {
        s->c = h2_conn_new(&s->x, s->now);
        if (!s->c) {
            s->errors++;
            break;
        }
        feed(s, s->hs, s->hs_len);
        flush(s);
        feed(s, ack, sizeof ack);
        flush(s);
        h2_conn_free(s->c);
        s->handshakes++;
    }
    s->c = keep;
    return 0;
}

/* Bytes sitting in the context's pools' free lists: shared by all
 * connections of the thread, not owned by any one of them. */
static int64_t pooled_bytes(const h2_ctx *x)
{
    const h2_pool *p[] = {&x->streams, &x->chunks, &x->blocks, &x->segs};
    int64_t n = 0;
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        n += (int64_t)p[i]->nfree * p[i]->size;
    return n;
}

/* Engine memory per idle connection: the delta of live bytes not cached in
 * the pools, over IDLE_CONNS connections after the handshake, and after one
 * request each.  Bytes requested from the h2_mem, before allocator rounding. */
static void measure_idle(bench *b, sim *s)
{
    h2_conn **cs = calloc(IDLE_CONNS, sizeof *cs);
    if (!cs)
        return;
    uint8_t ack[H2_FRAME_HDR_LEN];
    h2_frame_write_settings_ack(ack);
    h2_conn *keep = s->c;
    uint32_t keep_sid = s->next_sid;
    int64_t base = s->m.live_bytes - pooled_bytes(&s->x);
    uint32_t made = 0;
    for (; made < IDLE_CONNS; made++) {
        s->c = cs[made] = h2_conn_new(&s->x, s->now);
        if (!s->c)
            break;
        feed(s, s->hs, s->hs_len);
        flush(s);
        feed(s, ack, sizeof ack);
        flush(s);
    }
    int64_t after_hs = s->m.live_bytes - pooled_bytes(&s->x);
    /* One request on each (a fresh client encoder per connection: the first
     * block, literals, so each server decoder table gets its entries). */
    for (uint32_t i = 0; i < made; i++) {
        s->c = cs[i];
        uint8_t *p = h2_frame_write_headers(s->in, 1, true, true, NULL, s->first,
                                            (uint32_t)s->first_len, 0, false);
        feed(s, s->in, (size_t)(p - s->in));
        flush(s);
    }
    int64_t after_req = s->m.live_bytes - pooled_bytes(&s->x);
    for (uint32_t i = 0; i < made; i++)
        h2_conn_free(cs[i]);
    free(cs);
    s->c = keep;
    s->next_sid = keep_sid;
    if (made) {
        bench_note(b, "idle_bytes_per_conn", (double)(after_hs - base) / made);
        bench_note(b, "idle_bytes_after_1_req", (double)(after_req - base) / made);
        bench_note(b, "sizeof_h2_ctx", sizeof(h2_ctx));
    }
}

void micro_conn(bench *b)
{
    static const char *all[] = {"conn/out_gather_1", "conn/out_gather_16", "conn/out_gather_64",
                                "conn/cycle_1",      "conn/cycle_m64",     "conn/cycle_1m",
                                "conn/handshake"};
    bool any = false;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        any = any || bench_want(b, all[i]);
    if (!any)
        return;
    sim *s = sim_new();
    if (!s) {
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            bench_skip(b, all[i], "could not set up the in-memory connection");
        return;
    }
    bench_gather(b, s, "conn/out_gather_1", 1);
    bench_gather(b, s, "conn/out_gather_16", 16);
    bench_gather(b, s, "conn/out_gather_64", 64);
    bench_cycle(b, s, "conn/cycle_1", 1, 0);
    bench_cycle(b, s, "conn/cycle_m64", 64, 0);

    for (size_t i = 0; i < sizeof one_mib; i++)
        one_mib[i] = (uint8_t)((i * 31u + 7u) & 0xffu);
    s->body = one_mib;
    s->body_len = sizeof one_mib;
    bench_cycle(b, s, "conn/cycle_1m", 1, (double)sizeof one_mib);
    s->body = (const uint8_t *)hello;
    s->body_len = sizeof hello - 1;

    if (bench_want(b, "conn/handshake")) {
        cmem m0 = s->m;
        uint64_t e0 = s->errors, h0 = s->handshakes;
        if (bench_run(b, "conn/handshake", run_handshake, s, &(bench_opts){.unit = "connection"})) {
            uint64_t h = s->handshakes - h0;
            if (h)
                bench_note(b, "allocs_per_conn",
                           (double)(s->m.allocs + s->m.reallocs - m0.allocs - m0.reallocs) /
                               (double)h);
            measure_idle(b, s);
            if (s->errors != e0)
                bench_note(b, "ERRORS", (double)(s->errors - e0));
        }
    }
    sim_free(s);
}
