/* h2_script.c - see h2_script.h. */
#include "h2_script.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SINK_FIELDS 4096u
#define SINK_BUF    (1u << 20)
#define MAX_OUTPUT  (256u << 20) /* a drain producing more than this is a runaway */

enum { EF_SETTINGS, EF_WU, EF_PING, EF_DATA };

struct h2s_effect {
    size_t end; /* script offset after the frame */
    uint8_t kind;
    uint32_t sid;
    uint32_t v;  /* WU increment; PING index */
    int64_t iws; /* SETTINGS: INITIAL_WINDOW_SIZE or -1 */
    int64_t mfs; /* SETTINGS: MAX_FRAME_SIZE or -1 */
};

static void parse_output(h2s *s);

/* --- Small utilities --------------------------------------------------------- */

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    cr_assert(q != NULL, "h2_script: out of memory");
    return q;
}

static void *xcalloc(size_t n, size_t sz)
{
    void *q = calloc(n ? n : 1, sz ? sz : 1);
    cr_assert(q != NULL, "h2_script: out of memory");
    return q;
}

#define GROW(arr, n, cap, want)                                                                    \
    do {                                                                                           \
        if ((want) > (cap)) {                                                                      \
            size_t nc_ = (cap) ? (cap) : 16;                                                       \
            while (nc_ < (want))                                                                   \
                nc_ *= 2;                                                                          \
            (arr) = xrealloc((arr), nc_ * sizeof *(arr));                                          \
            memset((arr) + (cap), 0, (nc_ - (cap)) * sizeof *(arr));                               \
            (cap) = nc_;                                                                           \
        }                                                                                          \
    } while (0)

static char *dup_bytes(const uint8_t *p, size_t n)
{
    char *d = xrealloc(NULL, n + 1);
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static void put24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static const char *ftype_name(uint8_t t)
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
static void violation(h2s *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violation(h2s *s, const char *fmt, ...)
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

static h2s_field *copy_fields(const hpack_field *f, uint32_t n)
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

static h2s_stream *get_st(h2s *s, uint32_t sid, bool create)
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

/* --- Script builders ------------------------------------------------------------------ */

size_t h2s_mark(const h2s *s)
{
    return s->in_len;
}

void h2s_raw(h2s *s, const void *p, size_t n)
{
    GROW(s->in, s->in_len, s->in_cap, s->in_len + n);
    if (n)
        memcpy(s->in + s->in_len, p, n);
    s->in_len += n;
}

void h2s_preface(h2s *s)
{
    h2s_raw(s, H2_PREFACE, H2_PREFACE_LEN);
}

static void add_effect(h2s *s, struct h2s_effect e)
{
    GROW(s->eff, s->neff, s->eff_cap, s->neff + 1);
    s->eff[s->neff++] = e;
}

void h2s_frame_raw(h2s *s, uint8_t type, uint8_t flags, uint32_t sid, const void *payload,
                   size_t len)
{
    cr_assert(len < (1u << 24), "h2_script: frame too long");
    uint8_t h[9];
    put24(h, (uint32_t)len);
    h[3] = type;
    h[4] = flags;
    put32(h + 5, sid);
    h2s_raw(s, h, 9);
    h2s_raw(s, payload, len);
    const uint8_t *pl = payload;
    uint32_t id = sid & H2_STREAM_ID_MASK;

    /* Model the client's side of what this frame does once consumed. */
    struct h2s_effect e = {.end = s->in_len, .iws = -1, .mfs = -1};
    switch (type) {
    case H2_FT_SETTINGS:
        if (!(flags & H2_FLAG_ACK) && len % 6 == 0 && id == 0) {
            int64_t hts = -1;
            for (size_t i = 0; i + 6 <= len; i += 6) {
                uint16_t k = (uint16_t)(pl[i] << 8 | pl[i + 1]);
                uint32_t v = get32(pl + i + 2);
                if (k == H2_SET_INITIAL_WINDOW_SIZE)
                    e.iws = v;
                else if (k == H2_SET_MAX_FRAME_SIZE)
                    e.mfs = v;
                else if (k == H2_SET_HEADER_TABLE_SIZE)
                    hts = v;
            }
            e.kind = EF_SETTINGS;
            add_effect(s, e);
            GROW(s->client_hts, s->nclient_hts, s->client_hts_cap, s->nclient_hts + 1);
            s->client_hts[s->nclient_hts++] = hts;
        }
        break;
    case H2_FT_WINDOW_UPDATE:
        if (len == 4) {
            e.kind = EF_WU;
            e.sid = id;
            e.v = get32(pl) & H2_STREAM_ID_MASK;
            add_effect(s, e);
        }
        break;
    case H2_FT_PING:
        if (!(flags & H2_FLAG_ACK) && len == 8 && id == 0) {
            GROW(s->pings, s->npings, s->pings_cap, s->npings + 1);
            s->ping_acked = xrealloc(s->ping_acked, s->pings_cap * sizeof *s->ping_acked);
            memcpy(s->pings[s->npings], pl, 8);
            s->ping_acked[s->npings] = false;
            e.kind = EF_PING;
            e.v = (uint32_t)s->npings;
            s->npings++;
            add_effect(s, e);
        }
        break;
    case H2_FT_DATA:
        if (id) {
            get_st(s, id, true)->c_flow += len;
            s->c_conn_flow += (int64_t)len;
            e.kind = EF_DATA;
            e.sid = id;
            e.v = (uint32_t)len;
            add_effect(s, e);
        }
        break;
    case H2_FT_HEADERS:
        if ((id & 1) && id > s->max_client_sid)
            s->max_client_sid = id;
        break;
    default: break;
    }
}

void h2s_settings(h2s *s, const h2_setting *set, size_t n)
{
    uint8_t *p = xcalloc(n ? n : 1, 6);
    for (size_t i = 0; i < n; i++) {
        p[i * 6] = (uint8_t)(set[i].id >> 8);
        p[i * 6 + 1] = (uint8_t)set[i].id;
        put32(p + i * 6 + 2, set[i].value);
    }
    h2s_frame_raw(s, H2_FT_SETTINGS, 0, 0, p, n * 6);
    free(p);
}

/* The k-th non-ACK SETTINGS frame the server sent, or NULL. */
static const h2s_frame *server_settings_k(const h2s *s, size_t k)
{
    for (size_t i = 0; i < s->nframes; i++) {
        const h2s_frame *f = &s->frames[i];
        if (f->hdr.type == H2_FT_SETTINGS && !(f->hdr.flags & H2_FLAG_ACK)) {
            if (k == 0)
                return f;
            k--;
        }
    }
    return NULL;
}

void h2s_settings_ack(h2s *s)
{
    h2s_frame_raw(s, H2_FT_SETTINGS, H2_FLAG_ACK, 0, NULL, 0);
    /* The client applies the server's settings as it acknowledges them. */
    const h2s_frame *f = server_settings_k(s, s->server_settings_acked);
    if (!f)
        return;
    s->server_settings_acked++;
    if (f->f.hdr.type != H2_FT_SETTINGS)
        return;
    for (uint32_t i = 0; i < f->f.u.settings.n; i++) {
        h2_setting st = h2_settings_get(f->f.u.settings.entries, i);
        if (st.id == H2_SET_HEADER_TABLE_SIZE)
            hpack_encoder_set_peer_table_size(&s->enc, st.value);
        else if (st.id == H2_SET_INITIAL_WINDOW_SIZE)
            s->srv_initial_window = st.value;
    }
}

size_t h2s_encode(h2s *s, const h2s_kv *kv, size_t n, uint8_t *out, size_t cap)
{
    hpack_field *f = xcalloc(n, sizeof *f);
    for (size_t i = 0; i < n; i++)
        f[i] = h2s_hf(kv[i].name, kv[i].value);
    size_t bound = hpack_encode_bound(f, n);
    cr_assert(cap >= bound, "h2_script: encode buffer %zu < bound %zu", cap, bound);
    size_t len = 0;
    h2_rv rv = hpack_encode_block(&s->enc, f, n, out, cap, &len);
    cr_assert(rv == H2_OK, "h2_script: client hpack_encode_block: %s", h2_rv_name(rv));
    free(f);
    return len;
}

void h2s_headers_block(h2s *s, uint32_t sid, const uint8_t *block, size_t len, const h2s_hopts *o)
{
    h2s_hopts def = {0};
    if (!o)
        o = &def;
    size_t pieces = 1 + (size_t)o->continuations;
    size_t base = len / pieces, rem = len % pieces;
    size_t first = base + (rem > 0 ? 1 : 0);

    size_t plen = (o->padded ? 1u + o->pad_len : 0u) + (o->priority ? 5u : 0u) + first;
    uint8_t *p = xcalloc(1, plen);
    size_t k = 0;
    uint8_t flags = o->extra_flags;
    if (o->padded) {
        p[k++] = o->pad_len;
        flags |= H2_FLAG_PADDED;
    }
    if (o->priority) {
        put32(p + k, (o->exclusive ? 0x80000000u : 0) | (o->dep & H2_STREAM_ID_MASK));
        p[k + 4] = o->weight;
        k += 5;
        flags |= H2_FLAG_PRIORITY;
    }
    if (first)
        memcpy(p + k, block, first);
    if (o->end_stream)
        flags |= H2_FLAG_END_STREAM;
    if (pieces == 1 && !o->no_end_headers)
        flags |= H2_FLAG_END_HEADERS;
    h2s_frame_raw(s, H2_FT_HEADERS, flags, sid, p, plen);
    free(p);
    size_t off = first;
    for (size_t i = 1; i < pieces; i++) {
        size_t n = base + (i < rem ? 1 : 0);
        bool last = i + 1 == pieces;
        h2s_continuation(s, sid, last && !o->no_end_headers, block + off, n);
        off += n;
    }
    if (sid && (sid & 1) && sid > s->max_client_sid)
        s->max_client_sid = sid;
}

void h2s_headers(h2s *s, uint32_t sid, const h2s_kv *kv, size_t n, const h2s_hopts *o)
{
    hpack_field *f = xcalloc(n, sizeof *f);
    for (size_t i = 0; i < n; i++)
        f[i] = h2s_hf(kv[i].name, kv[i].value);
    size_t cap = hpack_encode_bound(f, n);
    free(f);
    uint8_t *buf = xrealloc(NULL, cap);
    size_t len = h2s_encode(s, kv, n, buf, cap);
    h2s_headers_block(s, sid, buf, len, o);
    free(buf);
}

void h2s_continuation(h2s *s, uint32_t sid, bool end_headers, const uint8_t *block, size_t len)
{
    h2s_frame_raw(s, H2_FT_CONTINUATION, end_headers ? H2_FLAG_END_HEADERS : 0, sid, block, len);
}

void h2s_request(h2s *s, uint32_t sid, const char *method, const char *path, const h2s_kv *extra,
                 size_t nextra, bool end_stream)
{
    h2s_kv *kv = xcalloc(4 + nextra, sizeof *kv);
    kv[0] = (h2s_kv){":method", method};
    kv[1] = (h2s_kv){":scheme", "https"};
    kv[2] = (h2s_kv){":authority", "example.com"};
    kv[3] = (h2s_kv){":path", path};
    for (size_t i = 0; i < nextra; i++)
        kv[4 + i] = extra[i];
    h2s_hopts o = {.end_stream = end_stream};
    h2s_headers(s, sid, kv, 4 + nextra, &o);
    free(kv);
    if (strcmp(method, "HEAD") == 0)
        get_st(s, sid, true)->head_req = true;
}

void h2s_get(h2s *s, uint32_t sid, const char *path)
{
    h2s_request(s, sid, "GET", path, NULL, 0, true);
}

void h2s_data(h2s *s, uint32_t sid, const void *d, size_t len, bool end_stream)
{
    h2s_frame_raw(s, H2_FT_DATA, end_stream ? H2_FLAG_END_STREAM : 0, sid, d, len);
}

void h2s_data_padded(h2s *s, uint32_t sid, const void *d, size_t len, uint8_t pad_len,
                     bool end_stream)
{
    size_t plen = 1 + len + pad_len;
    uint8_t *p = xcalloc(1, plen);
    p[0] = pad_len;
    if (len)
        memcpy(p + 1, d, len);
    h2s_frame_raw(s, H2_FT_DATA, (uint8_t)(H2_FLAG_PADDED | (end_stream ? H2_FLAG_END_STREAM : 0)),
                  sid, p, plen);
    free(p);
}

void h2s_rst(h2s *s, uint32_t sid, uint32_t code)
{
    uint8_t p[4];
    put32(p, code);
    h2s_frame_raw(s, H2_FT_RST_STREAM, 0, sid, p, 4);
}

void h2s_ping(h2s *s, bool ack, const uint8_t opaque[8])
{
    h2s_frame_raw(s, H2_FT_PING, ack ? H2_FLAG_ACK : 0, 0, opaque, 8);
}

void h2s_ping_n(h2s *s, uint64_t n)
{
    uint8_t p[8];
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)n;
        n >>= 8;
    }
    h2s_ping(s, false, p);
}

void h2s_goaway(h2s *s, uint32_t last, uint32_t code, const char *debug)
{
    size_t dl = debug ? strlen(debug) : 0;
    uint8_t *p = xcalloc(1, 8 + dl);
    put32(p, last);
    put32(p + 4, code);
    if (dl)
        memcpy(p + 8, debug, dl);
    h2s_frame_raw(s, H2_FT_GOAWAY, 0, 0, p, 8 + dl);
    free(p);
}

void h2s_window_update(h2s *s, uint32_t sid, uint32_t inc)
{
    uint8_t p[4];
    put32(p, inc);
    h2s_frame_raw(s, H2_FT_WINDOW_UPDATE, 0, sid, p, 4);
}

void h2s_priority(h2s *s, uint32_t sid, uint32_t dep, uint8_t weight, bool exclusive)
{
    uint8_t p[5];
    put32(p, (exclusive ? 0x80000000u : 0) | (dep & H2_STREAM_ID_MASK));
    p[4] = weight;
    h2s_frame_raw(s, H2_FT_PRIORITY, 0, sid, p, 5);
}

void h2s_priority_update(h2s *s, uint32_t prioritized, const char *field)
{
    size_t fl = strlen(field);
    uint8_t *p = xcalloc(1, 4 + fl);
    put32(p, prioritized);
    memcpy(p + 4, field, fl);
    h2s_frame_raw(s, H2_FT_PRIORITY_UPDATE, 0, 0, p, 4 + fl);
    free(p);
}

size_t h2s_hpack_int(uint8_t *p, uint8_t first, uint8_t prefix_bits, uint64_t v)
{
    uint64_t max = (1u << prefix_bits) - 1u;
    size_t k = 0;
    if (v < max) {
        p[k++] = (uint8_t)(first | v);
        return k;
    }
    p[k++] = (uint8_t)(first | max);
    v -= max;
    while (v >= 128) {
        p[k++] = (uint8_t)(0x80 | (v & 0x7f));
        v >>= 7;
    }
    p[k++] = (uint8_t)v;
    return k;
}

size_t h2s_hpack_lit(uint8_t *p, const char *name, size_t nlen, const char *value, size_t vlen)
{
    size_t k = 0;
    p[k++] = 0x00;
    k += h2s_hpack_int(p + k, 0x00, 7, nlen);
    memcpy(p + k, name, nlen);
    k += nlen;
    k += h2s_hpack_int(p + k, 0x00, 7, vlen);
    memcpy(p + k, value, vlen);
    k += vlen;
    return k;
}

size_t h2s_hpack_min_request(uint8_t *p)
{
    size_t k = 0;
    p[k++] = 0x82; /* :method GET (static 2) */
    p[k++] = 0x87; /* :scheme https (static 7) */
    p[k++] = 0x84; /* :path / (static 4) */
    p[k++] = 0x01; /* literal without indexing, name :authority (static 1) */
    p[k++] = 11;
    memcpy(p + k, "example.com", 11);
    return k + 11;
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

/* --- Output parsing and the RFC oracle ----------------------------------------------------- */

static bool valid_client_sid(const h2s *s, uint32_t sid)
{
    return sid != 0 && (sid & 1) && sid <= s->max_client_sid;
}

static void check_response_fields(h2s *s, uint32_t sid, const h2s_field *f, uint32_t n,
                                  bool trailers)
{
    bool regular_seen = false;
    for (uint32_t i = 0; i < n; i++) {
        const h2s_field *x = &f[i];
        if (x->name_len && x->name[0] == ':') {
            if (trailers)
                violation(s, "stream %u: pseudo-header %s in trailers (RFC 9113 §8.1)", sid,
                          x->name);
            else if (strcmp(x->name, ":status") != 0)
                violation(s, "stream %u: pseudo-header %s in a response (§8.3.2)", sid, x->name);
            else if (regular_seen || i != 0)
                violation(s, "stream %u: :status not first (§8.3)", sid);
            continue;
        }
        regular_seen = true;
        for (uint32_t k = 0; k < x->name_len; k++)
            if (x->name[k] >= 'A' && x->name[k] <= 'Z')
                violation(s, "stream %u: uppercase field name %s (§8.2.1)", sid, x->name);
        static const char *const conn_specific[] = {"connection", "proxy-connection", "keep-alive",
                                                    "transfer-encoding", "upgrade"};
        for (size_t k = 0; k < 5; k++)
            if (strcmp(x->name, conn_specific[k]) == 0)
                violation(s, "stream %u: connection-specific field %s (§8.2.2)", sid, x->name);
    }
}

static void finish_block(h2s *s)
{
    h2s_frame *hf = &s->frames[s->blk_frame];
    s->blk_frame = SIZE_MAX;
    uint32_t sid = hf->hdr.stream_id;
    hpack_sink sk;
    memset(&sk, 0, sizeof sk);
    sk.fields = s->sink_fields;
    sk.fields_cap = SINK_FIELDS;
    sk.buf = s->sink_buf;
    sk.buf_cap = SINK_BUF;
    sk.soft_list_size = SINK_BUF;
    sk.hard_list_size = SINK_BUF;
    sk.soft_fields = SINK_FIELDS;
    sk.hard_fields = SINK_FIELDS;
    h2_rv rv = hpack_decode_block(&s->dec, s->blk, s->blk_len, &sk);
    hf->has_block = true;
    hf->block_len = (uint32_t)s->blk_len;
    hf->status = -1;
    s->blk_len = 0;
    if (rv != H2_OK) {
        violation(s, "stream %u: server field block does not decode: %s (RFC 7541; §4.3)", sid,
                  h2_rv_name(rv));
        return;
    }
    hf->fields = copy_fields(sk.fields, sk.count);
    hf->nfields = sk.count;
    h2s_stream *st = get_st(s, sid, true);
    bool es = hf->hdr.flags & H2_FLAG_END_STREAM;
    if (st->status < 200) {
        check_response_fields(s, sid, hf->fields, hf->nfields, false);
        const char *sv = h2s_field_get(hf->fields, hf->nfields, ":status");
        if (!sv || strlen(sv) != 3 || sv[0] < '1' || sv[0] > '5') {
            violation(s, "stream %u: response without a valid :status (§8.3.2)", sid);
            return;
        }
        int status = atoi(sv);
        hf->status = status;
        if (status < 200) {
            if (es)
                violation(s, "stream %u: %d with END_STREAM (§8.1)", sid, status);
            if (status == 101)
                violation(s, "stream %u: 101 in HTTP/2 (§8.6)", sid);
            if (st->ninfo < 8)
                st->info[st->ninfo++] = status;
        } else {
            st->status = status;
            st->hdrs = copy_fields(sk.fields, sk.count);
            st->nhdrs = sk.count;
        }
    } else {
        if (!es)
            violation(s, "stream %u: trailers without END_STREAM (§8.1)", sid);
        check_response_fields(s, sid, hf->fields, hf->nfields, true);
        if (!st->has_trailers) {
            st->trailers = copy_fields(sk.fields, sk.count);
            st->ntrailers = sk.count;
            st->has_trailers = true;
        }
    }
    if (es)
        st->ended = true;
}

static void check_content_length(h2s *s, h2s_stream *st)
{
    const char *cl = h2s_field_get(st->hdrs, st->nhdrs, "content-length");
    if (!cl || st->status == 204 || st->status == 304 || st->head_req)
        return;
    unsigned long long want = strtoull(cl, NULL, 10);
    if (want != st->body_len)
        violation(s, "stream %u: content-length %llu but %zu body bytes (§8.1.1)", st->id, want,
                  st->body_len);
}

static void on_frame(h2s *s, h2s_frame *fr)
{
    const h2_frame_hdr *h = &fr->hdr;
    uint32_t sid = h->stream_id;
    const char *tn = ftype_name(h->type);

    if (!s->saw_first_frame) {
        s->saw_first_frame = true;
        if (h->type != H2_FT_SETTINGS || (h->flags & H2_FLAG_ACK))
            violation(s, "first server frame is %s, not SETTINGS (RFC 9113 §3.4)", tn);
    }
    uint32_t maxf = s->cl_max_frame < s->limits.max_send_frame_size ? s->cl_max_frame
                                                                    : s->limits.max_send_frame_size;
    if (h->length > maxf)
        violation(s, "%s frame of %u bytes, peer/limit allows %u (§4.2)", tn, h->length, maxf);
    if (s->error_goaway)
        violation(s, "%s frame after a GOAWAY with an error code (§5.4.1)", tn);
    if (s->blk_frame != SIZE_MAX &&
        (h->type != H2_FT_CONTINUATION || sid != s->frames[s->blk_frame].hdr.stream_id))
        violation(s, "%s on stream %u inside a field block (§6.10)", tn, sid);

    if (h2_frame_type_known(h->type)) {
        h2_fault f = h2_frame_decode(h, fr->payload, &fr->f);
        if (!h2_fault_ok(f)) {
            violation(s, "server %s frame does not decode: %s (%s)", tn, h2_code_name(f.code),
                      f.reason ? f.reason : "");
            return;
        }
    }
    h2s_stream *st = NULL;
    if (sid && h->type <= H2_FT_CONTINUATION && h->type != H2_FT_PRIORITY) {
        if (!valid_client_sid(s, sid))
            violation(s, "%s on stream %u, which the client never opened (§5.1)", tn, sid);
        st = get_st(s, sid, true);
        if (st->nrst && h->type != H2_FT_RST_STREAM)
            violation(s, "%s on stream %u after the server's RST_STREAM (§5.4.2)", tn, sid);
        if (st->ended && (h->type == H2_FT_DATA || h->type == H2_FT_HEADERS))
            violation(s, "%s on stream %u after END_STREAM (§5.1)", tn, sid);
    }

    switch (h->type) {
    case H2_FT_DATA: {
        if (!st)
            break;
        if (st->status < 200)
            violation(s, "DATA on stream %u before a final response head (§8.1)", sid);
        uint64_t len = h->length;
        if (len) {
            uint64_t conn_win = H2_DEFAULT_WINDOW + s->s_conn_wu_from_client;
            uint64_t st_win = (uint64_t)s->cl_initial_window + st->wu_from_client;
            if (s->s_conn_flow + len > conn_win)
                violation(s, "DATA on stream %u exceeds the connection window by %llu (§6.9.1)",
                          sid, (unsigned long long)(s->s_conn_flow + len - conn_win));
            if ((int64_t)(st->s_flow + len) > (int64_t)st_win)
                violation(s, "DATA on stream %u exceeds the stream window by %lld (§6.9.1)", sid,
                          (long long)(st->s_flow + len) - (long long)st_win);
        }
        s->s_conn_flow += len;
        st->s_flow += len;
        st->data_frames++;
        const h2_data *d = &fr->f.u.data;
        if (d->len) {
            GROW(st->dmap, st->ndmap, st->dmap_cap, st->ndmap + 1);
            st->dmap[st->ndmap++] =
                (h2s_dmap){st->body_len, fr->out_off + 9 + (size_t)(d->data - fr->payload), d->len};
            GROW(st->body, st->body_len, st->body_cap, st->body_len + d->len);
            memcpy(st->body + st->body_len, d->data, d->len);
            st->body_len += d->len;
        }
        if (h->flags & H2_FLAG_END_STREAM) {
            st->ended = true;
            check_content_length(s, st);
        }
        break;
    }
    case H2_FT_HEADERS:
    case H2_FT_CONTINUATION: {
        if (h->type == H2_FT_CONTINUATION && s->blk_frame == SIZE_MAX) {
            violation(s, "CONTINUATION on stream %u without HEADERS (§6.10)", sid);
            break;
        }
        const uint8_t *frag =
            h->type == H2_FT_HEADERS ? fr->f.u.headers.block : fr->f.u.continuation.block;
        uint32_t flen =
            h->type == H2_FT_HEADERS ? fr->f.u.headers.block_len : fr->f.u.continuation.block_len;
        if (h->type == H2_FT_HEADERS) {
            s->blk_frame = (size_t)(fr - s->frames);
            s->blk_len = 0;
        }
        GROW(s->blk, s->blk_len, s->blk_cap, s->blk_len + flen);
        if (flen)
            memcpy(s->blk + s->blk_len, frag, flen);
        s->blk_len += flen;
        if (h->flags & H2_FLAG_END_HEADERS) {
            finish_block(s);
            if (st && st->ended && st->status >= 200)
                check_content_length(s, st);
        }
        break;
    }
    case H2_FT_RST_STREAM:
        if (!st)
            break;
        if (st->nrst == 0)
            st->rst_code = fr->f.u.rst_code;
        st->nrst++;
        break;
    case H2_FT_SETTINGS:
        if (h->flags & H2_FLAG_ACK) {
            if (s->server_acks_seen >= s->client_settings_consumed)
                violation(s, "SETTINGS ACK #%u but only %u client SETTINGS consumed (§6.5.3)",
                          s->server_acks_seen + 1, s->client_settings_consumed);
            else if (s->server_acks_seen < s->nclient_hts &&
                     s->client_hts[s->server_acks_seen] >= 0)
                hpack_decoder_set_settings_max(&s->dec,
                                               (uint32_t)s->client_hts[s->server_acks_seen]);
            s->server_acks_seen++;
        } else {
            s->server_settings_seen++;
            for (uint32_t i = 0; i < fr->f.u.settings.n; i++) {
                h2_setting e = h2_settings_get(fr->f.u.settings.entries, i);
                if (e.id == H2_SET_ENABLE_PUSH && e.value != 0)
                    violation(s, "server SETTINGS_ENABLE_PUSH=%u (§6.5.2)", e.value);
            }
        }
        break;
    case H2_FT_PUSH_PROMISE: violation(s, "server sent PUSH_PROMISE"); break;
    case H2_FT_PING:
        if (h->flags & H2_FLAG_ACK) {
            bool found = false;
            for (size_t i = 0; i < s->pings_consumed && !found; i++)
                if (!s->ping_acked[i] && memcmp(s->pings[i], fr->f.u.ping, 8) == 0) {
                    s->ping_acked[i] = true;
                    found = true;
                }
            if (!found)
                violation(s, "PING ACK that echoes no PING the client sent (§6.7)");
        }
        break;
    case H2_FT_GOAWAY: {
        uint32_t last = fr->f.u.goaway.last_stream_id;
        if (s->goaway_last_min >= 0 && (int64_t)last > s->goaway_last_min)
            violation(s, "GOAWAY last-stream-id grew from %lld to %u (§6.8)",
                      (long long)s->goaway_last_min, last);
        if (s->goaway_last_min < 0 || (int64_t)last < s->goaway_last_min)
            s->goaway_last_min = last;
        if (fr->f.u.goaway.code != H2_NO_ERROR)
            s->error_goaway = true;
        break;
    }
    case H2_FT_WINDOW_UPDATE:
        if (sid == 0) {
            s->c_conn_wu_in += fr->f.u.window_increment;
            s->s_conn_wu_to_client += fr->f.u.window_increment;
            /* The window the client now has: never past 2^31-1 (§6.9.1), and,
             * counting only DATA the engine has read, never past the
             * connection window we configured (h2_conn credits at most what
             * it received). */
            int64_t win = (int64_t)H2_DEFAULT_WINDOW + (int64_t)s->c_conn_wu_in - s->c_conn_flow;
            if (win > (int64_t)H2_MAX_WINDOW)
                violation(s,
                          "connection WINDOW_UPDATE makes the client's window %lld > 2^31-1 "
                          "(§6.9.1)",
                          (long long)win);
            int64_t granted =
                (int64_t)H2_DEFAULT_WINDOW + (int64_t)s->c_conn_wu_in - (int64_t)s->c_conn_flow_fed;
            if (granted > (int64_t)s->limits.connection_window)
                violation(s,
                          "connection WINDOW_UPDATEs grant %lld bytes, more than the "
                          "configured connection window %u (credit given twice?)",
                          (long long)granted, s->limits.connection_window);
        } else if (st) {
            st->wu_to_client += fr->f.u.window_increment;
            int64_t win =
                (int64_t)s->srv_initial_window + (int64_t)st->wu_to_client - (int64_t)st->c_flow;
            if (win > (int64_t)H2_MAX_WINDOW)
                violation(s, "WINDOW_UPDATE makes stream %u's window %lld > 2^31-1 (§6.9.1)", sid,
                          (long long)win);
        }
        break;
    default: break;
    }
}

static void parse_output(h2s *s)
{
    while (s->out_len - s->out_parsed >= 9) {
        h2_frame_hdr h;
        h2_frame_hdr_parse(s->out + s->out_parsed, &h);
        if (s->out_len - s->out_parsed < 9 + (size_t)h.length)
            break;
        GROW(s->frames, s->nframes, s->frames_cap, s->nframes + 1);
        h2s_frame *fr = &s->frames[s->nframes++];
        memset(fr, 0, sizeof *fr);
        fr->hdr = h;
        fr->out_off = s->out_parsed;
        fr->status = -1;
        fr->payload = xrealloc(NULL, h.length);
        if (h.length)
            memcpy(fr->payload, s->out + s->out_parsed + 9, h.length);
        s->out_parsed += 9 + (size_t)h.length;
        on_frame(s, fr);
    }
}

static void out_append(h2s *s, const void *p, size_t n)
{
    GROW(s->out, s->out_len, s->out_cap, s->out_len + n);
    memcpy(s->out + s->out_len, p, n);
    s->out_len += n;
}

static const size_t send_caps[] = {1, 7, 100, 16393, 65536};
static const size_t iov_caps[] = {9, 1000, 17, 65536, 3};

void h2s_drain(h2s *s)
{
    if (!s->c)
        return;
    size_t start = s->out_len;
    static uint8_t buf[65536];
    uint8_t *tail = NULL; /* previously prepared, uncommitted bytes */
    size_t tail_len = 0;
    for (uint32_t it = 0;; it++) {
        if (s->out_len - start > MAX_OUTPUT) {
            violation(s, "runaway output: more than %u bytes in one drain", MAX_OUTPUT);
            break;
        }
        if (s->mode == H2S_IOV) {
            struct iovec iov[3];
            memset(iov, 0, sizeof iov);
            iov[2].iov_len = 0xdead; /* must stay untouched */
            size_t maxb = iov_caps[it % 5];
            size_t n = h2_conn_out_prepare(s->c, iov, 2, maxb);
            if (n == 0)
                break;
            if (n > 2 || iov[2].iov_len != 0xdead) {
                violation(s, "h2_conn_out_prepare filled %zu iovecs of 2", n);
                break;
            }
            size_t total = 0;
            for (size_t i = 0; i < n; i++) {
                if (iov[i].iov_len == 0)
                    violation(s, "h2_conn_out_prepare returned an empty iovec");
                total += iov[i].iov_len;
            }
            /* Flatten what was prepared. */
            uint8_t *flat = xrealloc(NULL, total);
            size_t k = 0;
            for (size_t i = 0; i < n; i++) {
                memcpy(flat + k, iov[i].iov_base, iov[i].iov_len);
                k += iov[i].iov_len;
            }
            /* A later prepare starts again at the first unwritten byte. */
            size_t overlap = tail_len < total ? tail_len : total;
            if (overlap && memcmp(tail, flat, overlap) != 0)
                violation(s, "prepare after a partial commit does not resume at the first "
                             "uncommitted byte");
            /* Commit all, half, or one byte, in turn. */
            size_t commit = total;
            if (it % 3 == 1)
                commit = total / 2 ? total / 2 : 1;
            else if (it % 3 == 2)
                commit = 1;
            out_append(s, flat, commit);
            free(tail);
            tail_len = total - commit;
            tail = xrealloc(NULL, tail_len);
            if (tail_len)
                memcpy(tail, flat + commit, tail_len);
            free(flat);
            s->in_commit = true;
            h2_conn_out_commit(s->c, commit, s->now);
            s->in_commit = false;
        } else {
            size_t cap = s->mode == H2S_BYTEWISE ? send_caps[it % 5] : sizeof buf;
            s->in_commit = true;
            size_t n = h2_conn_send(s->c, buf, cap, s->now);
            s->in_commit = false;
            if (n > cap) {
                violation(s, "h2_conn_send wrote %zu bytes into %zu", n, cap);
                break;
            }
            if (n == 0)
                break;
            out_append(s, buf, n);
        }
        parse_output(s);
    }
    free(tail);
    if (tail_len)
        violation(s, "prepare returned nothing while %zu prepared bytes were uncommitted",
                  tail_len);
    parse_output(s);
    if (h2_conn_want_write(s->c))
        violation(s, "h2_conn_want_write() is true but no output comes out");
}

size_t h2s_drain_upto(h2s *s, size_t cap)
{
    uint8_t *buf = xrealloc(NULL, cap ? cap : 1);
    s->in_commit = true;
    size_t n = h2_conn_send(s->c, buf, cap, s->now);
    s->in_commit = false;
    if (n > cap)
        violation(s, "h2_conn_send wrote %zu bytes into %zu", n, cap);
    else
        out_append(s, buf, n);
    free(buf);
    parse_output(s);
    return n;
}

h2_rv h2s_run(h2s *s)
{
    h2_rv rv = h2s_feed(s);
    h2s_drain(s);
    return rv;
}

void h2s_handshake_with(h2s *s, const h2_setting *set, size_t n)
{
    if (!s->c)
        h2s_start(s, NULL, NULL);
    h2s_preface(s);
    h2s_settings(s, set, n);
    h2_rv rv = h2s_run(s);
    cr_assert(rv == H2_OK, "[%s] handshake: preface + SETTINGS: %s (%s)", s->mode_name,
              h2_rv_name(rv), h2_conn_fault(s->c).reason ? h2_conn_fault(s->c).reason : "");
    cr_assert(s->nframes > 0 && s->frames[0].hdr.type == H2_FT_SETTINGS,
              "[%s] handshake: no server SETTINGS", s->mode_name);
    h2s_settings_ack(s);
    rv = h2s_run(s);
    cr_assert(rv == H2_OK, "[%s] handshake: SETTINGS ACK: %s", s->mode_name, h2_rv_name(rv));
    cr_assert(s->server_acks_seen == 1, "[%s] handshake: server sent %u SETTINGS ACKs, want 1",
              s->mode_name, s->server_acks_seen);
}

void h2s_handshake(h2s *s)
{
    h2s_handshake_with(s, NULL, 0);
}

h2_rv h2s_tick(h2s *s)
{
    h2_rv rv = h2_conn_tick(s->c, s->now);
    if (rv != H2_OK && s->first_err == H2_OK) {
        s->first_err = rv;
        s->err_pos = s->fed;
    }
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

/* --- Views --------------------------------------------------------------------------------- */

static bool frame_match(const h2s_frame *f, uint8_t type, uint32_t sid)
{
    return f->hdr.type == type && (sid == H2S_ANY || f->hdr.stream_id == sid);
}

const h2s_frame *h2s_find(const h2s *s, uint8_t type, uint32_t sid)
{
    for (size_t i = 0; i < s->nframes; i++)
        if (frame_match(&s->frames[i], type, sid))
            return &s->frames[i];
    return NULL;
}

const h2s_frame *h2s_last(const h2s *s, uint8_t type, uint32_t sid)
{
    for (size_t i = s->nframes; i-- > 0;)
        if (frame_match(&s->frames[i], type, sid))
            return &s->frames[i];
    return NULL;
}

size_t h2s_count(const h2s *s, uint8_t type, uint32_t sid)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nframes; i++)
        n += frame_match(&s->frames[i], type, sid);
    return n;
}

size_t h2s_index_of(const h2s *s, const h2s_frame *f)
{
    return f ? (size_t)(f - s->frames) : SIZE_MAX;
}

int64_t h2s_goaway_code(const h2s *s)
{
    const h2s_frame *f = h2s_last(s, H2_FT_GOAWAY, 0);
    return f ? (int64_t)f->f.u.goaway.code : -1;
}

int64_t h2s_goaway_last_id(const h2s *s)
{
    const h2s_frame *f = h2s_last(s, H2_FT_GOAWAY, 0);
    return f ? (int64_t)f->f.u.goaway.last_stream_id : -1;
}

int64_t h2s_rst_code(const h2s *s, uint32_t sid)
{
    const h2s_frame *f = h2s_find(s, H2_FT_RST_STREAM, sid);
    return f ? (int64_t)f->f.u.rst_code : -1;
}

uint64_t h2s_wu_total(const h2s *s, uint32_t sid)
{
    uint64_t t = 0;
    for (size_t i = 0; i < s->nframes; i++)
        if (frame_match(&s->frames[i], H2_FT_WINDOW_UPDATE, sid))
            t += s->frames[i].f.u.window_increment;
    return t;
}

int64_t h2s_setting(const h2s *s, uint16_t id)
{
    const h2s_frame *f = server_settings_k(s, 0);
    int64_t v = -1;
    if (!f)
        return -1;
    for (uint32_t i = 0; i < f->f.u.settings.n; i++) {
        h2_setting e = h2_settings_get(f->f.u.settings.entries, i);
        if (e.id == id)
            v = e.value;
    }
    return v;
}

int h2s_status(const h2s *s, uint32_t sid)
{
    h2s_stream *st = h2s_st(s, sid);
    return st ? st->status : -1;
}

const uint8_t *h2s_body(const h2s *s, uint32_t sid, size_t *len)
{
    h2s_stream *st = h2s_st(s, sid);
    *len = st ? st->body_len : 0;
    return st ? st->body : NULL;
}

const char *h2s_resp_field(const h2s *s, uint32_t sid, const char *name)
{
    h2s_stream *st = h2s_st(s, sid);
    return st ? h2s_field_get(st->hdrs, st->nhdrs, name) : NULL;
}

int64_t h2s_client_conn_window(const h2s *s)
{
    return (int64_t)H2_DEFAULT_WINDOW + (int64_t)s->c_conn_wu_in - s->c_conn_flow;
}

int64_t h2s_client_stream_window(const h2s *s, uint32_t sid)
{
    h2s_stream *st = h2s_st(s, sid);
    int64_t w = s->srv_initial_window;
    if (st)
        w += (int64_t)st->wu_to_client - (int64_t)st->c_flow;
    return w;
}

const h2s_ev *h2s_ev_find(const h2s *s, h2_event_type type, uint32_t sid)
{
    for (size_t i = 0; i < s->nev; i++)
        if (s->evs[i].type == type && (sid == H2S_ANY || s->evs[i].stream_id == sid))
            return &s->evs[i];
    return NULL;
}

size_t h2s_ev_count(const h2s *s, h2_event_type type, uint32_t sid)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nev; i++)
        n += s->evs[i].type == type && (sid == H2S_ANY || s->evs[i].stream_id == sid);
    return n;
}

const h2s_ev *h2s_req(const h2s *s, uint32_t sid)
{
    return h2s_ev_find(s, H2_EV_REQUEST, sid);
}

const uint8_t *h2s_req_body(const h2s *s, uint32_t sid, size_t *len)
{
    h2s_stream *st = h2s_st(s, sid);
    *len = st ? st->req_body_len : 0;
    return st ? st->req_body : NULL;
}

/* --- Assertions ------------------------------------------------------------------------------- */

static uint64_t g_alive_seq;

void h2s_expect_conn_error_(h2s *s, uint32_t code, int64_t code2, const char *file, int line)
{
    h2s_drain(s);
    bool code_ok;
    cr_expect(s->first_err == H2_E_PROTO,
              "%s:%d [%s] want a connection error %s: the engine returned %s", file, line,
              s->mode_name, h2_code_name(code), h2_rv_name(s->first_err));
    h2_fault f = h2_conn_fault(s->c);
    code_ok = f.code == code || (code2 >= 0 && (int64_t)f.code == code2);
    cr_expect(f.scope == H2_SCOPE_CONN && code_ok,
              "%s:%d [%s] h2_conn_fault: scope %d code %s (%s), want connection scope %s", file,
              line, s->mode_name, (int)f.scope, h2_code_name(f.code), f.reason ? f.reason : "",
              h2_code_name(code));
    const h2s_frame *g = h2s_last(s, H2_FT_GOAWAY, 0);
    /* cr_expect, not cr_assert: an abort here would skip h2s_fini (leaking
     * the h2s) and every later sub-case of the test. */
    cr_expect(g != NULL, "%s:%d [%s] no GOAWAY sent (want %s; fault %s: %s)", file, line,
              s->mode_name, h2_code_name(code), h2_code_name(f.code), f.reason ? f.reason : "");
    if (g) {
        uint32_t gc = g->f.u.goaway.code;
        code_ok = gc == code || (code2 >= 0 && (int64_t)gc == code2);
        cr_expect(code_ok, "%s:%d [%s] GOAWAY code %s, want %s%s%s", file, line, s->mode_name,
                  h2_code_name(gc), h2_code_name(code), code2 >= 0 ? " or " : "",
                  code2 >= 0 ? h2_code_name((uint32_t)code2) : "");
        cr_expect(h2s_index_of(s, g) == s->nframes - 1, "%s:%d [%s] frames follow the error GOAWAY",
                  file, line, s->mode_name);
    }
    if (s->first_err != H2_E_PROTO)
        return; /* the connection is alive: feeding it a PING below would confuse the oracle */
    cr_expect(h2_conn_is_done(s->c), "%s:%d [%s] h2_conn_is_done() false after a connection error",
              file, line, s->mode_name);
    cr_expect(!h2_conn_want_read(s->c),
              "%s:%d [%s] h2_conn_want_read() true after a connection error", file, line,
              s->mode_name);
    uint8_t ping[17];
    put24(ping, 8);
    ping[3] = H2_FT_PING;
    ping[4] = 0;
    put32(ping + 5, 0);
    memset(ping + 9, 0x5a, 8);
    size_t consumed = 0;
    h2_event ev;
    memset(&ev, 0, sizeof ev);
    h2_rv rv = h2_conn_recv(s->c, ping, sizeof ping, s->now, &consumed, &ev);
    cr_expect(rv == H2_E_CLOSED, "%s:%d [%s] recv after a connection error: %s, want H2_E_CLOSED",
              file, line, s->mode_name, h2_rv_name(rv));
}

void h2s_expect_alive_(h2s *s, const char *file, int line)
{
    uint64_t n = 0xa11fe00000000000ull + ++g_alive_seq;
    uint8_t op[8];
    for (int i = 7; i >= 0; i--)
        op[i] = (uint8_t)(n >> (8 * (7 - i)));
    h2s_ping(s, false, op);
    h2_rv rv = h2s_run(s);
    cr_expect(rv == H2_OK && s->first_err == H2_OK,
              "%s:%d [%s] connection not alive: %s (fault %s: %s)", file, line, s->mode_name,
              h2_rv_name(s->first_err != H2_OK ? s->first_err : rv),
              h2_code_name(h2_conn_fault(s->c).code),
              h2_conn_fault(s->c).reason ? h2_conn_fault(s->c).reason : "");
    bool acked = false;
    for (size_t i = 0; i < s->nframes; i++) {
        const h2s_frame *f = &s->frames[i];
        if (f->hdr.type == H2_FT_PING && (f->hdr.flags & H2_FLAG_ACK) &&
            memcmp(f->f.u.ping, op, 8) == 0)
            acked = true;
    }
    cr_expect(acked, "%s:%d [%s] connection not alive: PING not acknowledged", file, line,
              s->mode_name);
    const h2s_frame *g = h2s_last(s, H2_FT_GOAWAY, 0);
    cr_expect(g == NULL || g->f.u.goaway.code == H2_NO_ERROR, "%s:%d [%s] unexpected GOAWAY %s",
              file, line, s->mode_name, g ? h2_code_name(g->f.u.goaway.code) : "");
}

void h2s_expect_stream_error_(h2s *s, uint32_t sid, uint32_t code, const char *file, int line)
{
    h2s_drain(s);
    cr_expect(s->first_err == H2_OK,
              "%s:%d [%s] want a stream error %s on %u, got a connection error %s (GOAWAY %s: "
              "%s)",
              file, line, s->mode_name, h2_code_name(code), sid, h2_rv_name(s->first_err),
              h2_code_name(h2_conn_fault(s->c).code),
              h2_conn_fault(s->c).reason ? h2_conn_fault(s->c).reason : "");
    h2s_stream *st = h2s_st(s, sid);
    cr_expect(st && st->nrst >= 1, "%s:%d [%s] no RST_STREAM on stream %u (want %s)", file, line,
              s->mode_name, sid, h2_code_name(code));
    if (st && st->nrst >= 1) {
        cr_expect(st->rst_code == code, "%s:%d [%s] RST_STREAM on %u has %s, want %s", file, line,
                  s->mode_name, sid, h2_code_name(st->rst_code), h2_code_name(code));
        cr_expect(st->nrst == 1, "%s:%d [%s] %u RST_STREAMs on stream %u, want 1", file, line,
                  s->mode_name, st->nrst, sid);
    }
    if (s->first_err == H2_OK)
        h2s_expect_alive_(s, file, line);
}

void h2s_expect_error_any_(h2s *s, uint32_t sid, uint32_t code, const char *file, int line)
{
    h2s_drain(s);
    if (s->first_err != H2_OK)
        h2s_expect_conn_error_(s, code, -1, file, line);
    else
        h2s_expect_stream_error_(s, sid, code, file, line);
}
