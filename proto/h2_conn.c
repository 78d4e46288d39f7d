/* h2_conn.c - server-side HTTP/2 connection engine (RFC 9113), sans I/O:
 * the context, a connection's lifecycle, connection failure, timers and
 * accessors.  The rest of the engine is split along its seams; see
 * h2_conn_internal.h for the map and docs/conn.md for the design notes
 * (buffer ownership, event lifetime). */
#include "h2_conn_internal.h"

#include <string.h>

#include "h2_headers.h"
#include "h2_out.h"
#include "h2_recv.h"
#include "h2_sched.h"
#include "h2_stream.h"

h2_rv h2_ctx_init(h2_ctx *x, const h2_limits *limits, const h2_mem *mem)
{
    memset(x, 0, sizeof *x);
    x->limits = limits ? limits : h2_limits_default();
    x->mem = mem ? mem : h2_mem_default();
    if (h2_limits_check(x->limits))
        return H2_E_INVAL;
    uint32_t soft = x->limits->max_header_fields_soft;
    x->fields = h2_malloc(x->mem, soft * sizeof(hpack_field));
    x->fieldbuf = h2_malloc(x->mem, x->limits->max_header_list_size);
    if (!x->fields || !x->fieldbuf) {
        h2_free(x->mem, x->fields);
        h2_free(x->mem, x->fieldbuf);
        return H2_E_NOMEM;
    }
    h2_pool_init(&x->streams, sizeof(h2_stream), 4096, x->mem);
    h2_pool_init(&x->chunks, sizeof(h2_chunk), 8192, x->mem);
    h2_pool_init(&x->blocks, (uint32_t)sizeof(h2_out_block) + H2_OUT_BLOCK_SIZE, 256, x->mem);
    h2_pool_init(&x->small_blocks, (uint32_t)sizeof(h2_out_block) + H2_OUT_SMALL_BLOCK_SIZE, 1024,
                 x->mem);
    h2_pool_init(&x->tables, (uint32_t)sizeof(h2_stream_tables), 1024, x->mem);
    h2_pool_init(&x->segs, H2_NSEG * (uint32_t)sizeof(h2_seg), 1024, x->mem);
    hpack_static_digests(h2_http_field_digest, x->static_digests);
    return H2_OK;
}

void h2_ctx_pool_bytes(const h2_ctx *x, uint64_t *live, uint64_t *free_bytes)
{
    const h2_pool *p[] = {&x->streams,      &x->chunks, &x->blocks,
                          &x->small_blocks, &x->segs,   &x->tables};
    *live = *free_bytes = 0;
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        uint64_t l, f;
        h2_pool_bytes(p[i], &l, &f);
        *live += l;
        *free_bytes += f;
    }
}

void h2_ctx_free(h2_ctx *x)
{
    h2_pool_drain(&x->streams);
    h2_pool_drain(&x->chunks);
    h2_pool_drain(&x->blocks);
    h2_pool_drain(&x->small_blocks);
    h2_pool_drain(&x->tables);
    h2_pool_drain(&x->segs);
    h2_free(x->mem, x->fields);
    h2_free(x->mem, x->fieldbuf);
    x->fields = NULL;
    x->fieldbuf = NULL;
}

h2_rv h2_conn_fail(h2_conn *c, h2_code code, const char *reason)
{
    if (c->dead)
        return H2_E_PROTO;
    c->fault = h2_fault_conn(code, reason);
    c->dead = true;
    c->rstate = R_DEAD;
    /* Best effort: without memory the caller still closes. */
    (void)h2_out_goaway(c, c->last_delivered_sid, code, reason);
    c->goaway_sent = true;
    c->goaway_last = c->last_delivered_sid;
    return H2_E_PROTO;
}

/* A limit ended the connection: count it, GOAWAY with its reason. */
h2_rv h2_conn_limit_fail(h2_conn *c, h2_limit_id id, h2_code code, const char *reason)
{
    if (!c->dead)
        h2_conn_hit(c, id);
    return h2_conn_fail(c, code, reason);
}

h2_rv h2_conn_nomem(h2_conn *c)
{
    c->fault = h2_fault_conn(H2_INTERNAL_ERROR, "out of memory");
    c->dead = true;
    c->rstate = R_DEAD;
    return H2_E_NOMEM;
}

/* A peer action that costs us work for nothing (security.md "glitches"). */
h2_rv h2_conn_glitch(h2_conn *c)
{
    c->stats.glitches++;
    if (h2_bucket_take(&c->glitches, c->now) != 0)
        return h2_conn_limit_fail(c, H2_LIMIT_GLITCHES, H2_ENHANCE_YOUR_CALM, "too many glitches");
    return H2_OK;
}

/* Inlined into h2_conn_new: the server's connection setup pays no call
 * for sharing it with the client (h2_conn_alloc, below). */
static inline h2_conn *conn_alloc(h2_ctx *x, uint64_t now_ms)
{
    const h2_limits *l = x->limits;
    h2_conn *c = h2_malloc(x->mem, sizeof *c);
    if (!c)
        return NULL;
    memset(c, 0, sizeof *c);
    c->x = x;
    c->lim = l;
    c->now = c->created_ms = c->active_ms = c->settings_sent_ms = now_ms;
    c->active_prev = c->ka_sent_ms = now_ms;
    c->rstate = R_PREFACE;
    c->local_iws = H2_DEFAULT_WINDOW;
    c->peer_iws = H2_DEFAULT_WINDOW;
    c->peer_max_frame = H2_MIN_MAX_FRAME_SIZE;
    c->peer_max_streams = UINT32_MAX; /* RFC 9113 §6.5.2: unlimited until SETTINGS */
    c->send_window = H2_DEFAULT_WINDOW;
    c->recv_window = H2_DEFAULT_WINDOW;
    h2_bucket_init(&c->resets, l->reset_burst, l->reset_rate, now_ms);
    h2_bucket_init(&c->glitches, l->glitch_burst, l->glitch_rate, now_ms);
    /* Until our SETTINGS are acknowledged the peer may use the default
     * table size; accept the larger of the two until then. */
    uint32_t dec_max = l->header_table_size > HPACK_DEFAULT_TABLE_SIZE ? l->header_table_size
                                                                       : HPACK_DEFAULT_TABLE_SIZE;
    hpack_decoder_init(&c->dec, dec_max, x->mem);
    hpack_encoder_init(&c->enc, l->encoder_table_size, x->mem);
    return c;
}

static inline bool conn_preface(h2_conn *c, const h2_setting *st, size_t n)
{
    const h2_limits *l = c->lim;
    if (!h2_out_settings(c, st, n))
        return false;
    c->settings_unacked = 1;
    if (l->connection_window > H2_DEFAULT_WINDOW) {
        if (!h2_out_window_update(c, 0, l->connection_window - H2_DEFAULT_WINDOW))
            return false;
        c->recv_window = l->connection_window;
    }
    return true;
}

h2_conn *h2_conn_alloc(h2_ctx *x, uint64_t now_ms)
{
    return conn_alloc(x, now_ms);
}

bool h2_conn_preface(h2_conn *c, const h2_setting *st, size_t n)
{
    return conn_preface(c, st, n);
}

size_t h2_conn_limit_settings(const h2_limits *l, h2_setting *st)
{
    size_t n = 0;
    if (l->initial_window_size != H2_DEFAULT_WINDOW)
        st[n++] = (h2_setting){H2_SET_INITIAL_WINDOW_SIZE, l->initial_window_size};
    if (l->max_frame_size != H2_MIN_MAX_FRAME_SIZE)
        st[n++] = (h2_setting){H2_SET_MAX_FRAME_SIZE, l->max_frame_size};
    if (l->header_table_size != HPACK_DEFAULT_TABLE_SIZE)
        st[n++] = (h2_setting){H2_SET_HEADER_TABLE_SIZE, l->header_table_size};
    st[n++] = (h2_setting){H2_SET_MAX_HEADER_LIST_SIZE, l->max_header_list_size};
    return n;
}

h2_conn *h2_conn_new(h2_ctx *x, uint64_t now_ms)
{
    const h2_limits *l = x->limits;
    h2_conn *c = conn_alloc(x, now_ms);
    if (!c)
        return NULL;
    c->enc.skip_volatile = true;

    /* Server preface (RFC 9113 §3.4): our SETTINGS, then the connection
     * window opened beyond the default. */
    h2_setting st[8];
    size_t n = 0;
    st[n++] = (h2_setting){H2_SET_MAX_CONCURRENT_STREAMS, l->max_concurrent_streams};
    n += h2_conn_limit_settings(l, st + n);
    if (l->enable_connect_protocol)
        st[n++] = (h2_setting){H2_SET_ENABLE_CONNECT_PROTOCOL, 1};
    st[n++] = (h2_setting){H2_SET_NO_RFC7540_PRIORITIES, 1};
    if (!conn_preface(c, st, n)) {
        h2_conn_free(c);
        return NULL;
    }
    return c;
}

void h2_conn_free(h2_conn *c)
{
    if (!c)
        return;
    for (uint32_t b = 0; c->st && b < H2_NBUCKETS; b++) {
        h2_stream *s = c->st->buckets[b];
        while (s) {
            h2_stream *next = s->hnext;
            h2_stream_drop_data(c, s);
            h2_pool_put(&c->x->streams, s);
            s = next;
        }
    }
    /* Chunks referenced by unsent segments: release each once. */
    for (uint32_t i = 0; i < c->seg_count; i++) {
        h2_chunk *ch = c->segs[(c->seg_head + i) % H2_NSEG].chunk;
        if (--ch->refs == 0 && ch->orphan)
            h2_out_chunk_release(c, ch);
    }
    c->seg_count = 0;
    h2_out_release_copied(c, UINT64_MAX);
    c->chain_r = c->chain_w;
    if (c->st)
        h2_pool_put(&c->x->tables, c->st);
    c->st = NULL;
    c->nstreams = 0; /* so out_trim gives the output memory back */
    h2_out_trim(c);
    h2_recv_pbuf_release(c);
    h2_headers_reset(c);
    h2_free(h2_conn_mem(c), c->rring);
    hpack_decoder_free(&c->dec);
    hpack_encoder_free(&c->enc);
    h2_free(h2_conn_mem(c), c);
}

static uint64_t deadline_after(uint64_t start, uint32_t ms)
{
    return ms ? start + ms : UINT64_MAX;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

uint64_t h2_conn_now(const h2_conn *c)
{
    return c->now;
}

uint64_t h2_conn_next_deadline(const h2_conn *c)
{
    const h2_limits *l = c->lim;
    if (c->dead)
        return UINT64_MAX;
    uint64_t d = UINT64_MAX;
    if (!c->got_settings)
        d = min64(d, deadline_after(c->created_ms, l->preface_timeout_ms));
    if (c->settings_unacked)
        d = min64(d, deadline_after(c->settings_sent_ms, l->settings_timeout_ms));
    if (c->hb_active)
        d = min64(d, deadline_after(c->hb_start_ms, l->header_block_timeout_ms));
    if (c->nstreams == 0 && c->got_settings)
        d = min64(d, deadline_after(c->active_ms, l->idle_timeout_ms));
    if (h2_out_pending(c))
        d = min64(d, deadline_after(c->progress_ms, l->send_timeout_ms));
    if (c->shutdown_phase == 1)
        d = min64(d, c->shutdown_ms + H2_SHUTDOWN_ACK_WAIT_MS);
    if (l->ping_interval_ms && c->got_settings)
        d = min64(d, c->ka_pending ? deadline_after(c->ka_sent_ms, l->ping_timeout_ms)
                                   : deadline_after(c->ka_sent_ms, l->ping_interval_ms));
    return d;
}

h2_rv h2_conn_tick(h2_conn *c, uint64_t now_ms)
{
    const h2_limits *l = c->lim;
    if (c->dead)
        return H2_OK;
    c->now = now_ms;
    if (!c->got_settings && now_ms >= deadline_after(c->created_ms, l->preface_timeout_ms))
        return h2_conn_limit_fail(c, H2_LIMIT_PREFACE_TIMEOUT, H2_ENHANCE_YOUR_CALM,
                                  "preface timeout");
    if (c->settings_unacked &&
        now_ms >= deadline_after(c->settings_sent_ms, l->settings_timeout_ms))
        return h2_conn_limit_fail(c, H2_LIMIT_SETTINGS_TIMEOUT, H2_SETTINGS_TIMEOUT,
                                  "SETTINGS ACK timeout");
    if (c->hb_active && now_ms >= deadline_after(c->hb_start_ms, l->header_block_timeout_ms))
        return h2_conn_limit_fail(c, H2_LIMIT_HEADER_TIMEOUT, H2_ENHANCE_YOUR_CALM,
                                  "header block timeout");
    if (h2_out_pending(c) && now_ms >= deadline_after(c->progress_ms, l->send_timeout_ms)) {
        /* Framed bytes still unwritten: the socket does not drain, a GOAWAY
         * would not get through.  Only flow control holding body bytes back
         * (a window never opened): the socket is fine, tell the peer. */
        c->send_stalled = h2_out_unsent(c) > 0;
        return h2_conn_limit_fail(c, H2_LIMIT_SEND_TIMEOUT, H2_ENHANCE_YOUR_CALM, "send timeout");
    }
    if (c->nstreams == 0 && c->got_settings &&
        now_ms >= deadline_after(c->active_ms, l->idle_timeout_ms))
        return h2_conn_limit_fail(c, H2_LIMIT_IDLE_TIMEOUT, H2_NO_ERROR, "idle timeout");
    if (l->ping_interval_ms && c->got_settings) {
        if (!c->ka_pending && now_ms >= deadline_after(c->ka_sent_ms, l->ping_interval_ms)) {
            if (!h2_out_ping(c, false, (const uint8_t *)H2_KEEPALIVE_PING))
                return h2_conn_nomem(c);
            c->ka_pending = true;
            c->ka_sent_ms = now_ms;
        } else if (c->ka_pending && now_ms >= deadline_after(c->ka_sent_ms, l->ping_timeout_ms)) {
            return h2_conn_limit_fail(c, H2_LIMIT_PING_TIMEOUT, H2_NO_ERROR, "ping timeout");
        }
    }
    /* A peer that does not answer the shutdown PING gets the final GOAWAY
     * anyway, a second later (as h2o does). */
    if (c->shutdown_phase == 1 && now_ms >= c->shutdown_ms + H2_SHUTDOWN_ACK_WAIT_MS &&
        !h2_conn_shutdown_final(c))
        return h2_conn_nomem(c);
    return H2_OK;
}

bool h2_conn_want_read(const h2_conn *c)
{
    return !c->dead && !h2_out_paused(c);
}

bool h2_conn_is_done(const h2_conn *c)
{
    return c->dead || ((c->goaway_sent || c->goaway_recv) && c->nstreams == 0);
}

h2_fault h2_conn_fault(const h2_conn *c)
{
    return c->fault;
}

bool h2_conn_send_stalled(const h2_conn *c)
{
    return c->send_stalled;
}

const h2_conn_stats *h2_conn_stats_get(const h2_conn *c)
{
    return &c->stats;
}

uint64_t h2_conn_created_ms(const h2_conn *c)
{
    return c->created_ms;
}

uint32_t h2_conn_stream_count(const h2_conn *c)
{
    return c->nstreams;
}
