/* conn_sim.c - the in-memory connection of the microbenchmarks (conn_sim.h). */
#include "conn_sim.h"

#include <stdlib.h>
#include <string.h>

/* --- Counting allocator ------------------------------------------------------ */

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

void sim_respond(sim *s, uint32_t sid)
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
void sim_flush(sim *s)
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
void sim_feed(sim *s, const uint8_t *in, size_t len)
{
    size_t off = 0;
    for (;;) {
        h2_event ev;
        size_t used = 0;
        h2_rv rv = h2_conn_recv(s->c, in + off, len - off, s->now, &used, &ev);
        off += used;
        if (s->on_event && ev.type != H2_EV_NONE) {
            s->on_event(s, &ev);
        } else if (ev.type == H2_EV_REQUEST) {
            s->requests++;
            sim_respond(s, ev.stream_id);
        }
        if (rv == H2_E_AGAIN) {
            sim_flush(s);
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
size_t sim_build_requests(sim *s, uint32_t nreq)
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

void sim_drain_discard(sim *s)
{
    while (h2_conn_send(s->c, s->scratch, sizeof s->scratch, s->now) > 0)
        ;
}

/* A new server connection, handshake done, first request answered. */
bool sim_connect(sim *s)
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
    sim_feed(s, s->hs, s->hs_len);
    sim_drain_discard(s);
    uint8_t ack[H2_FRAME_HDR_LEN];
    h2_frame_write_settings_ack(ack);
    sim_feed(s, ack, sizeof ack);
    sim_drain_discard(s);

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
    sim_feed(s, s->in, (size_t)(p - s->in));
    sim_flush(s);
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

sim *sim_new(void)
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

void sim_free(sim *s)
{
    if (!s)
        return;
    h2_conn_free(s->c);
    hpack_encoder_free(&s->enc);
    h2_ctx_free(&s->x);
    free(s->in);
    free(s);
}

void sim_maybe_reconnect(sim *s, uint32_t upcoming)
{
    if (s->next_sid + 2u * upcoming >= SID_LIMIT && !sim_connect(s))
        s->errors++;
}

uint64_t sim_run_cycle(void *arg, uint64_t n)
{
    const sim_cycle *c = arg;
    sim *s = c->s;
    uint32_t batch = c->batch;

    for (uint64_t done = 0; done < n;) {
        uint32_t k = n - done < batch ? (uint32_t)(n - done) : batch;

        sim_maybe_reconnect(s, k);
        sim_feed(s, s->in, sim_build_requests(s, k));
        sim_flush(s);
        done += k;
    }
    return 0;
}
