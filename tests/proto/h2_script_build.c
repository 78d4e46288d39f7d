/* h2_script_build.c - the script builders of the scripted HTTP/2 client
 * (h2_script.h): client frames appended to the script, header blocks from
 * the script's own HPACK encoder, raw HPACK helpers. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_script.h"
#include "h2_script_internal.h"

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
const h2s_frame *server_settings_k(const h2s *s, size_t k)
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
