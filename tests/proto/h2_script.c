/* h2_script.c - see h2_script.h. */
#include "h2_script.h"
#include "h2_script_internal.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- Small utilities --------------------------------------------------------- */

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    cr_assert(q != NULL, "h2_script: out of memory");
    return q;
}

void *xcalloc(size_t n, size_t sz)
{
    void *q = calloc(n ? n : 1, sz ? sz : 1);
    cr_assert(q != NULL, "h2_script: out of memory");
    return q;
}

static char *dup_bytes(const uint8_t *p, size_t n)
{
    char *d = xrealloc(NULL, n + 1);
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

void put24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
}

void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

const char *ftype_name(uint8_t t)
{
    static const char *const n[] = {"DATA",          "HEADERS",      "PRIORITY", "RST_STREAM",
                                    "SETTINGS",      "PUSH_PROMISE", "PING",     "GOAWAY",
                                    "WINDOW_UPDATE", "CONTINUATION"};
    if (t < 10)
        return n[t];
    if (t == 0x10)
        return "PRIORITY_UPDATE";
    return "UNKNOWN";
}

/* An RFC rule the server broke (or a contract the engine broke): fail the
 * test, keep going so the rest of the test still reports. */
void violation(h2s *s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->violations++;
    cr_expect_fail("[%s] server violation: %s", s->mode_name, msg);
}

/* --- Allocator ------------------------------------------------------------- */

typedef struct memhdr {
    size_t size;
    size_t pad; /* keep 16-byte alignment */
} memhdr;

static bool mem_should_fail(h2s_mem *m)
{
    m->calls++;
    if (m->fail_at && (m->calls == m->fail_at || (m->fail_after && m->calls > m->fail_at))) {
        m->failed++;
        return true;
    }
    return false;
}

static void *mem_malloc(size_t n, void *ud)
{
    h2s_mem *m = ud;
    if (mem_should_fail(m))
        return NULL;
    memhdr *h = malloc(sizeof *h + n);
    if (!h)
        return NULL;
    h->size = n;
    m->allocs++;
    m->live++;
    m->live_bytes += n;
    if (m->live_bytes > m->peak_bytes)
        m->peak_bytes = m->live_bytes;
    return h + 1;
}

static void mem_free(void *p, void *ud)
{
    h2s_mem *m = ud;
    if (!p)
        return;
    memhdr *h = (memhdr *)p - 1;
    m->frees++;
    m->live--;
    m->live_bytes -= h->size;
    free(h);
}

static void *mem_realloc(void *p, size_t n, void *ud)
{
    h2s_mem *m = ud;
    if (!p)
        return mem_malloc(n, ud);
    if (mem_should_fail(m))
        return NULL;
    memhdr *h = (memhdr *)p - 1;
    size_t old = h->size;
    memhdr *nh = realloc(h, sizeof *nh + n);
    if (!nh)
        return NULL;
    nh->size = n;
    m->reallocs++;
    m->live_bytes = m->live_bytes - old + n;
    if (m->live_bytes > m->peak_bytes)
        m->peak_bytes = m->live_bytes;
    return nh + 1;
}

void h2s_mem_init(h2s_mem *m)
{
    memset(m, 0, sizeof *m);
    m->mem.malloc = mem_malloc;
    m->mem.realloc = mem_realloc;
    m->mem.free = mem_free;
    m->mem.ud = m;
}

/* --- Fields ------------------------------------------------------------------ */

hpack_field h2s_hf(const char *name, const char *value)
{
    hpack_field f;
    f.name = (const uint8_t *)name;
    f.value = (const uint8_t *)value;
    f.name_len = (uint32_t)strlen(name);
    f.value_len = (uint32_t)strlen(value);
    f.flags = 0;
    return f;
}

h2s_field *copy_fields(const hpack_field *f, uint32_t n)
{
    h2s_field *o = xcalloc(n, sizeof *o);
    for (uint32_t i = 0; i < n; i++) {
        o[i].name = dup_bytes(f[i].name, f[i].name_len);
        o[i].value = dup_bytes(f[i].value, f[i].value_len);
        o[i].name_len = f[i].name_len;
        o[i].value_len = f[i].value_len;
        o[i].flags = f[i].flags;
    }
    return o;
}

static void free_fields(h2s_field *f, uint32_t n)
{
    if (!f)
        return;
    for (uint32_t i = 0; i < n; i++) {
        free(f[i].name);
        free(f[i].value);
    }
    free(f);
}

const char *h2s_field_get(const h2s_field *f, uint32_t n, const char *name)
{
    size_t nl = strlen(name);
    for (uint32_t i = 0; i < n; i++)
        if (f[i].name_len == nl && memcmp(f[i].name, name, nl) == 0)
            return f[i].value;
    return NULL;
}

/* --- Streams ------------------------------------------------------------------- */

h2s_stream *get_st(h2s *s, uint32_t sid, bool create)
{
    for (size_t i = s->nst; i-- > 0;)
        if (s->st[i].id == sid)
            return &s->st[i];
    if (!create)
        return NULL;
    GROW(s->st, s->nst, s->st_cap, s->nst + 1);
    h2s_stream *st = &s->st[s->nst++];
    memset(st, 0, sizeof *st);
    st->id = sid;
    st->status = -1;
    return st;
}

h2s_stream *h2s_st(const h2s *s, uint32_t sid)
{
    return get_st((h2s *)s, sid, false);
}

/* --- Lifecycle ------------------------------------------------------------------- */

static const char *mode_names[] = {"whole", "bytewise", "iov"};

void h2s_init(h2s *s, h2s_mode mode)
{
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->mode_name = mode_names[mode];
    s->now = 1000000;
    s->drain_on_again = true;
    s->blk_frame = SIZE_MAX;
    s->goaway_last_min = -1;
    s->cl_initial_window = H2_DEFAULT_WINDOW;
    s->cl_max_frame = H2_MIN_MAX_FRAME_SIZE;
    s->srv_initial_window = H2_DEFAULT_WINDOW;
    s->limits = *h2_limits_default();
    cr_assert(hpack_encoder_init(&s->enc, 4096, h2_mem_default()) == H2_OK);
    cr_assert(hpack_decoder_init(&s->dec, 4096, h2_mem_default()) == H2_OK);
    s->sink_fields = xcalloc(SINK_FIELDS, sizeof *s->sink_fields);
    s->sink_buf = xrealloc(NULL, SINK_BUF);
}

h2_rv h2s_try_start(h2s *s, const h2_limits *limits, h2s_mem *mem)
{
    cr_assert(s->c == NULL && !s->ctx_ok, "h2_script: started twice");
    if (limits)
        s->limits = *limits;
    s->mem = mem;
    h2_rv rv = h2_ctx_init(&s->ctx, &s->limits, mem ? &mem->mem : NULL);
    if (rv != H2_OK)
        return rv;
    s->ctx_ok = true;
    s->c = h2_conn_new(&s->ctx, s->now);
    if (!s->c)
        return H2_E_NOMEM;
    return H2_OK;
}

void h2s_start(h2s *s, const h2_limits *limits, h2s_mem *mem)
{
    h2_rv rv = h2s_try_start(s, limits, mem);
    cr_assert(rv == H2_OK, "[%s] h2s_start: %s", s->mode_name, h2_rv_name(rv));
}

void h2s_run_mode(void (*body)(h2s *), h2s_mode mode)
{
    h2s s;
    h2s_init(&s, mode);
    body(&s);
    h2s_fini(&s);
}

/* Body offset -> output offset of that byte, SIZE_MAX if not sent. */
static size_t body_out_off(const h2s_stream *st, uint64_t body_off)
{
    for (size_t i = 0; i < st->ndmap; i++)
        if (body_off >= st->dmap[i].body_off && body_off < st->dmap[i].body_off + st->dmap[i].len)
            return st->dmap[i].out_off + (size_t)(body_off - st->dmap[i].body_off);
    return SIZE_MAX;
}

void h2s_fini(h2s *s)
{
    if (s->out_parsed != s->out_len)
        violation(s, "output ends inside a frame (%zu of %zu bytes parse as frames)", s->out_parsed,
                  s->out_len);
    if (s->blk_frame != SIZE_MAX && s->first_err == H2_OK)
        violation(s, "output ends inside a field block (HEADERS without END_HEADERS)");
    if (s->c)
        h2_conn_free(s->c);
    s->c = NULL;
    if (s->ctx_ok)
        h2_ctx_free(&s->ctx);
    s->ctx_ok = false;

    for (size_t i = 0; i < s->nchunks; i++) {
        h2s_chunk *ch = s->chunks[i];
        if (ch->bad_args)
            cr_expect_fail("[%s] chunk %zu (stream %u): release called with another pointer/length",
                           s->mode_name, i, ch->stream_id);
        if (ch->taken ? ch->released != 1 : ch->released > 1)
            cr_expect_fail("[%s] chunk %zu (stream %u, %llu bytes) released %u times, want once",
                           s->mode_name, i, ch->stream_id, (unsigned long long)ch->len,
                           ch->released);
        free(ch);
    }
    free(s->chunks);
    if (s->mem)
        cr_expect(s->mem->live == 0,
                  "[%s] allocator: %llu blocks (%llu bytes) still live after h2_ctx_free "
                  "(allocs %llu, frees %llu)",
                  s->mode_name, (unsigned long long)s->mem->live,
                  (unsigned long long)s->mem->live_bytes, (unsigned long long)s->mem->allocs,
                  (unsigned long long)s->mem->frees);

    for (size_t i = 0; i < s->nowned; i++)
        free(s->owned[i]);
    free(s->owned);
    for (size_t i = 0; i < s->nev; i++) {
        h2s_ev *e = &s->evs[i];
        free(e->method);
        free(e->scheme);
        free(e->authority);
        free(e->path);
        free(e->protocol);
        free_fields(e->fields, e->nfields);
        free(e->data);
    }
    free(s->evs);
    for (size_t i = 0; i < s->nframes; i++) {
        free(s->frames[i].payload);
        free_fields(s->frames[i].fields, s->frames[i].nfields);
    }
    free(s->frames);
    for (size_t i = 0; i < s->nst; i++) {
        h2s_stream *st = &s->st[i];
        free_fields(st->hdrs, st->nhdrs);
        free_fields(st->trailers, st->ntrailers);
        free(st->body);
        free(st->req_body);
        free(st->dmap);
    }
    free(s->st);
    free(s->eff);
    free(s->client_hts);
    free(s->pings);
    free(s->ping_acked);
    free(s->in);
    free(s->out);
    free(s->blk);
    free(s->sink_fields);
    free(s->sink_buf);
    hpack_encoder_free(&s->enc);
    hpack_decoder_free(&s->dec);
    memset(s, 0, sizeof *s);
}

uint8_t *h2s_alloc(h2s *s, size_t n)
{
    GROW(s->owned, s->nowned, s->owned_cap, s->nowned + 1);
    uint8_t *p = xcalloc(1, n);
    s->owned[s->nowned++] = p;
    return p;
}

void h2s_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 0x9e3779b9u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)(x >> 7);
    }
}

/* --- Runner ---------------------------------------------------------------------------- */

static void apply_effects(h2s *s)
{
    while (s->eff_applied < s->neff && s->eff[s->eff_applied].end <= s->fed) {
        struct h2s_effect *e = &s->eff[s->eff_applied++];
        switch (e->kind) {
        case EF_SETTINGS:
            s->client_settings_consumed++;
            if (e->iws >= 0)
                s->cl_initial_window = (uint32_t)e->iws;
            if (e->mfs >= 0)
                s->cl_max_frame = (uint32_t)e->mfs;
            break;
        case EF_WU:
            if (e->sid == 0)
                s->s_conn_wu_from_client += e->v;
            else
                get_st(s, e->sid, true)->wu_from_client += e->v;
            break;
        case EF_PING: s->pings_consumed = (size_t)e->v + 1; break;
        case EF_DATA: s->c_conn_flow_fed += e->v; break;
        }
    }
}

static void append_req_body(h2s_stream *st, const uint8_t *p, size_t n)
{
    if (!n)
        return;
    GROW(st->req_body, st->req_body_len, st->req_body_cap, st->req_body_len + n);
    memcpy(st->req_body + st->req_body_len, p, n);
    st->req_body_len += n;
}

static char *dup_str(h2_str v)
{
    return v.p ? dup_bytes(v.p, v.len) : NULL;
}

static void record_event(h2s *s, const h2_event *ev)
{
    GROW(s->evs, s->nev, s->ev_cap, s->nev + 1);
    h2s_ev *e = &s->evs[s->nev++];
    memset(e, 0, sizeof *e);
    e->type = ev->type;
    e->stream_id = ev->stream_id;
    e->end_stream = ev->end_stream;
    e->in_pos = s->fed;
    h2s_stream *st = ev->stream_id ? get_st(s, ev->stream_id, true) : NULL;

    if (st && st->nreset_ev && ev->type != H2_EV_WINDOW_UPDATE && ev->type != H2_EV_PRIORITY)
        violation(s, "event %d on stream %u after its STREAM_RESET event", (int)ev->type,
                  ev->stream_id);
    switch (ev->type) {
    case H2_EV_REQUEST: {
        const h2_req_head *r = &ev->u.request;
        e->method = dup_str(r->method);
        e->scheme = dup_str(r->scheme);
        e->authority = dup_str(r->authority);
        e->path = dup_str(r->path);
        e->protocol = dup_str(r->protocol);
        e->content_length = r->content_length;
        e->urgency = r->urgency;
        e->incremental = r->incremental;
        e->expect_continue = r->expect_continue;
        e->extended_connect = r->extended_connect;
        e->fields = copy_fields(r->fields, r->nfields);
        e->nfields = r->nfields;
        if (!st || st->nreq)
            violation(s, "second REQUEST event on stream %u", ev->stream_id);
        if (st) {
            st->nreq++;
            st->req_ended = ev->end_stream;
        }
        if (!(ev->stream_id & 1))
            violation(s, "REQUEST event on even stream %u", ev->stream_id);
        break;
    }
    case H2_EV_DATA:
        e->data = (uint8_t *)dup_bytes(ev->u.data.data, ev->u.data.len);
        e->len = ev->u.data.len;
        if (!st || !st->nreq)
            violation(s, "DATA event on stream %u before its REQUEST", ev->stream_id);
        else if (st->req_ended)
            violation(s, "DATA event on stream %u after end_stream", ev->stream_id);
        if (st) {
            append_req_body(st, ev->u.data.data, ev->u.data.len);
            if (ev->end_stream)
                st->req_ended = true;
        }
        break;
    case H2_EV_TRAILERS:
        e->fields = copy_fields(ev->u.trailers.fields, ev->u.trailers.n);
        e->nfields = ev->u.trailers.n;
        if (!st || !st->nreq || st->req_ended)
            violation(s, "TRAILERS event on stream %u out of order", ev->stream_id);
        if (st)
            st->req_ended = true;
        break;
    case H2_EV_STREAM_RESET:
        e->code = ev->u.reset.code;
        e->remote = ev->u.reset.remote;
        if (!st || !st->nreq)
            violation(s, "STREAM_RESET event on stream %u that was never delivered", ev->stream_id);
        if (st)
            st->nreset_ev++;
        break;
    case H2_EV_WINDOW_UPDATE: e->increment = ev->u.window.increment; break;
    case H2_EV_PRIORITY:
        e->urgency = ev->u.priority.urgency;
        e->incremental = ev->u.priority.incremental;
        break;
    case H2_EV_GOAWAY:
        e->last_stream_id = ev->u.goaway.last_stream_id;
        e->code = ev->u.goaway.code;
        e->data = (uint8_t *)dup_bytes(ev->u.goaway.debug, ev->u.goaway.debug_len);
        e->len = ev->u.goaway.debug_len;
        break;
    case H2_EV_PING_ACK: memcpy(e->ping, ev->u.ping, 8); break;
    case H2_EV_NONE: break;
    default: violation(s, "unknown event type %d", (int)ev->type);
    }
    if (ev->type == H2_EV_STREAM_RESET && s->auto_detach_reset)
        h2s_detach(s, ev->stream_id);
    if (s->on_event)
        s->on_event(s, ev, s->on_event_ud);
}

/* Feed s->in[s->fed .. chunk_end) until it is consumed and the engine has
 * nothing more to report. */
static h2_rv feed_range(h2s *s, size_t chunk_end)
{
    uint32_t idle_spins = 0, stuck = 0;
    for (;;) {
        size_t consumed = 0, len = chunk_end - s->fed;
        h2_event ev;
        memset(&ev, 0, sizeof ev);
        h2_rv rv = h2_conn_recv(s->c, s->in + s->fed, len, s->now, &consumed, &ev);
        if (consumed > len) {
            violation(s, "h2_conn_recv consumed %zu of %zu bytes", consumed, len);
            consumed = len;
        }
        s->fed += consumed;
        if (rv == H2_OK) {
            apply_effects(s);
            if (ev.type == H2_EV_NONE) {
                if (s->fed == chunk_end)
                    return H2_OK;
                if (consumed == 0 && ++idle_spins > 2) {
                    violation(s,
                              "h2_conn_recv returned H2_EV_NONE without consuming its input "
                              "(offset %zu)",
                              s->fed);
                    return H2_E_AGAIN;
                }
                continue;
            }
            record_event(s, &ev);
            if (consumed == 0 && ++idle_spins > 1000000) {
                violation(s, "h2_conn_recv keeps returning events without consuming input");
                return H2_E_AGAIN;
            }
            if (consumed)
                idle_spins = 0;
            continue;
        }
        if (rv == H2_E_AGAIN) {
            apply_effects(s);
            s->agains++;
            if (!s->drain_on_again)
                return H2_E_AGAIN;
            size_t before = s->out_len;
            h2s_drain(s);
            if (consumed == 0 && s->out_len == before) {
                if (++stuck > 2) {
                    violation(s, "h2_conn_recv returns H2_E_AGAIN but there is nothing to drain");
                    return H2_E_AGAIN;
                }
            } else {
                stuck = 0;
            }
            continue;
        }
        if (s->first_err == H2_OK) {
            s->first_err = rv;
            s->err_pos = s->fed;
        }
        s->fed = s->in_len; /* the connection is over: drop the rest */
        s->eff_applied = s->neff;
        return rv;
    }
}

h2_rv h2s_feed(h2s *s)
{
    cr_assert(s->c != NULL, "h2_script: feed before start");
    h2_rv rv = H2_OK;
    while (s->fed < s->in_len) {
        size_t end = s->mode == H2S_BYTEWISE ? s->fed + 1 : s->in_len;
        rv = feed_range(s, end);
        if (rv != H2_OK)
            break;
    }
    s->rv = rv;
    return rv;
}

/* --- Responding --------------------------------------------------------------------------- */

void h2s_chunk_release(void *ctx, const void *data, size_t len)
{
    h2s_chunk *ch = ctx;
    h2s *s = ch->s;
    ch->released++;
    if ((const uint8_t *)data != ch->data || (uint64_t)len != ch->len)
        ch->bad_args = true;
    if (!s)
        return;
    ch->out_len_at_release = s->out_len;
    if (!s->in_commit || ch->released != 1 || !len)
        return;
    /* Released while output is committed: its bytes must all have gone
     * out by now (in IOV mode the harness appends the bytes before it
     * commits them), unless the stream was torn down. */
    parse_output(s);
    h2s_stream *st = get_st(s, ch->stream_id, false);
    if (!st)
        return;
    if (st->body_len >= ch->body_off + len) {
        size_t o = body_out_off(st, ch->body_off + len - 1);
        if (s->mode == H2S_IOV && (o == SIZE_MAX || o >= s->out_len))
            violation(s, "chunk of stream %u released before its last byte was committed",
                      ch->stream_id);
    } else if (s->mode == H2S_IOV && !st->nrst && !st->nreset_ev && !st->app_reset &&
               !st->detached && s->first_err == H2_OK) {
        violation(s,
                  "chunk of stream %u (body bytes %llu..%llu) released at commit with only "
                  "%zu body bytes sent",
                  ch->stream_id, (unsigned long long)ch->body_off,
                  (unsigned long long)(ch->body_off + len), st->body_len);
    }
}

h2s_chunk *h2s_chunk_new(h2s *s, uint32_t sid, const uint8_t *data, uint64_t len)
{
    h2s_chunk *ch = xcalloc(1, sizeof *ch);
    ch->s = s;
    ch->stream_id = sid;
    ch->data = data;
    ch->len = len;
    GROW(s->chunks, s->nchunks, s->chunks_cap, s->nchunks + 1);
    s->chunks[s->nchunks++] = ch;
    return ch;
}

h2_rv h2s_send_body(h2s *s, uint32_t sid, const void *data, size_t len, uint32_t nchunks,
                    bool end_stream)
{
    if (nchunks == 0)
        nchunks = 1;
    uint8_t *copy = h2s_alloc(s, len ? len : 1);
    if (len)
        memcpy(copy, data, len);
    size_t base = len / nchunks, rem = len % nchunks, off = 0;
    h2_rv first = H2_OK;
    for (uint32_t i = 0; i < nchunks; i++) {
        size_t n = base + (i < rem ? 1 : 0);
        h2s_chunk *ch = h2s_chunk_new(s, sid, copy + off, n);
        bool last = i + 1 == nchunks;
        h2s_stream *st = get_st(s, sid, true);
        ch->body_off = st->queued;
        h2_rv rv =
            h2_conn_send_data(s->c, sid, copy + off, n, end_stream && last, h2s_chunk_release, ch);
        /* Release happens exactly once, also on failures other than INVAL. */
        ch->taken = rv != H2_E_INVAL;
        if (rv == H2_OK)
            st->queued += n;
        if (rv != H2_OK && first == H2_OK)
            first = rv;
        off += n;
    }
    return first;
}

h2_rv h2s_respond(h2s *s, uint32_t sid, uint16_t status, const h2s_kv *kv, size_t n,
                  bool end_stream)
{
    hpack_field *f = xcalloc(n, sizeof *f);
    for (size_t i = 0; i < n; i++)
        f[i] = h2s_hf(kv[i].name, kv[i].value);
    h2_rv rv = h2_conn_respond(s->c, sid, status, f, n, end_stream);
    free(f);
    return rv;
}

void h2s_respond_ok(h2s *s, uint32_t sid, const char *body)
{
    size_t bl = strlen(body);
    h2_rv rv = h2s_respond(s, sid, 200, H2S_KV({"content-type", "text/plain"}), bl == 0);
    cr_assert(rv == H2_OK, "[%s] respond(%u): %s", s->mode_name, sid, h2_rv_name(rv));
    if (bl) {
        rv = h2s_send_body(s, sid, body, bl, 1, true);
        cr_assert(rv == H2_OK, "[%s] send_data(%u): %s", s->mode_name, sid, h2_rv_name(rv));
    }
    rv = h2s_detach(s, sid);
    cr_assert(rv == H2_OK, "[%s] detach(%u): %s", s->mode_name, sid, h2_rv_name(rv));
}

h2_rv h2s_reset_stream(h2s *s, uint32_t sid, h2_code code)
{
    get_st(s, sid, true)->app_reset = true;
    return h2_conn_reset_stream(s->c, sid, code);
}

h2_rv h2s_detach(h2s *s, uint32_t sid)
{
    get_st(s, sid, true)->detached = true;
    return h2_conn_stream_detach(s->c, sid);
}
