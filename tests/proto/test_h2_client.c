/* test_h2_client.c - proto/h2_client.c: the client role of the engine.
 *
 * Two drivers.  A scripted server: frames written by hand (HPACK by the
 * project's encoder) fed to h2_client_recv, whole or one byte per call
 * (every CS_TEST runs both ways), the client's output parsed back into
 * frames.  And the real server engine (h2_conn_new) on the other side of
 * an in-memory pipe, for round trips.  Every chunk handed to the client is
 * released exactly once (checked at the end), and the contexts' pools get
 * every block back.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_client.h"
#include "h2_conn.h"
#include "h2_frame.h"
#include "hpack.h"

#define CAP (1u << 20)

/* An event, deep-copied. */
typedef struct cev {
    h2_event_type type;
    uint32_t sid;
    bool end;
    uint16_t status;
    int64_t content_length;
    uint32_t nfields;
    uint32_t code;
    bool remote;
    uint32_t last;
    uint8_t ping[8];
    char first_name[32], first_value[32];
} cev;

/* A frame the client wrote. */
typedef struct cfr {
    h2_frame_hdr h;
    uint32_t off; /* payload offset in out[] */
} cfr;

typedef struct cs {
    bool bytewise;
    h2_limits lim;
    h2_ctx x;
    h2_conn *c;
    hpack_encoder enc; /* the scripted server's */
    hpack_decoder dec; /* decodes the client's header blocks */
    uint8_t *in;       /* server bytes not yet fed */
    size_t in_len, in_pos;
    uint8_t *out; /* client bytes written */
    size_t out_len, out_parsed;
    bool magic_seen;
    cfr fr[512];
    size_t nfr;
    cev ev[512];
    size_t nev;
    uint8_t body[8][4096]; /* DATA per stream slot (sid >> 1 & 7) */
    size_t body_len[8];
    h2_rv err;
    int releases;
    bool keep; /* DATA events are not consumed (nor recorded) */
} cs;

static void cs_start(cs *s, bool bytewise, const h2_limits *l)
{
    memset(s, 0, sizeof *s);
    s->bytewise = bytewise;
    s->lim = l ? *l : *h2_limits_default();
    cr_assert_eq(h2_ctx_init(&s->x, &s->lim, NULL), H2_OK);
    s->c = h2_client_new(&s->x, 0);
    cr_assert_not_null(s->c);
    hpack_encoder_init(&s->enc, 4096, NULL);
    hpack_decoder_init(&s->dec, 4096, NULL);
    s->in = malloc(CAP);
    s->out = malloc(CAP);
    s->err = H2_OK;
}

static void cs_fini(cs *s)
{
    h2_conn_free(s->c);
    uint64_t live, fb;
    h2_ctx_pool_bytes(&s->x, &live, &fb);
    cr_expect_eq(live, 0, "pool blocks still live after free");
    h2_ctx_free(&s->x);
    hpack_encoder_free(&s->enc);
    hpack_decoder_free(&s->dec);
    free(s->in);
    free(s->out);
}

/* --- The scripted server's frames ---------------------------------------------- */

static void sv_raw(cs *s, const void *p, size_t n)
{
    memcpy(s->in + s->in_len, p, n);
    s->in_len += n;
}

static void sv_frame(cs *s, uint8_t type, uint8_t flags, uint32_t sid, const void *p, uint32_t n)
{
    uint8_t h[H2_FRAME_HDR_LEN];
    h2_frame_hdr_write(h, n, type, flags, sid);
    sv_raw(s, h, sizeof h);
    if (n)
        sv_raw(s, p, n);
}

static void sv_settings(cs *s, const h2_setting *st, size_t n)
{
    uint8_t b[128];
    uint8_t *e = h2_frame_write_settings(b, st, n);
    sv_raw(s, b, (size_t)(e - b));
}

/* The server's preface and its ACK of the client's SETTINGS. */
static void sv_hello(cs *s)
{
    sv_settings(s, NULL, 0);
    sv_frame(s, H2_FT_SETTINGS, H2_FLAG_ACK, 0, NULL, 0);
}

/* A header block of "name", "value" pairs (NULL-terminated); out holds 64 KiB. */
static size_t sv_block(cs *s, uint8_t *out, const char *const *kv)
{
    hpack_field f[32];
    size_t n = 0;
    for (; kv[2 * n]; n++)
        f[n] = (hpack_field){(const uint8_t *)kv[2 * n],
                             (const uint8_t *)kv[2 * n + 1],
                             (uint32_t)strlen(kv[2 * n]),
                             (uint32_t)strlen(kv[2 * n + 1]),
                             0,
                             0};
    size_t len = 0;
    cr_assert_eq(hpack_encode_block(&s->enc, f, n, out, 65536, &len), H2_OK);
    return len;
}

static void sv_headers(cs *s, uint32_t sid, bool end, const char *const *kv)
{
    uint8_t b[65536];
    size_t n = sv_block(s, b, kv);
    sv_frame(s, H2_FT_HEADERS, (uint8_t)(H2_FLAG_END_HEADERS | (end ? H2_FLAG_END_STREAM : 0)), sid,
             b, (uint32_t)n);
}

#define KV(...) ((const char *const[]){__VA_ARGS__, NULL})

static void sv_data(cs *s, uint32_t sid, const char *d, bool end)
{
    sv_frame(s, H2_FT_DATA, end ? H2_FLAG_END_STREAM : 0, sid, d, (uint32_t)strlen(d));
}

static void sv_u32(cs *s, uint8_t type, uint32_t sid, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    sv_frame(s, type, 0, sid, b, 4);
}

static void sv_goaway(cs *s, uint32_t last, uint32_t code)
{
    uint8_t b[8] = {(uint8_t)(last >> 24), (uint8_t)(last >> 16), (uint8_t)(last >> 8),
                    (uint8_t)last,         (uint8_t)(code >> 24), (uint8_t)(code >> 16),
                    (uint8_t)(code >> 8),  (uint8_t)code};
    sv_frame(s, H2_FT_GOAWAY, 0, 0, b, 8);
}

/* --- Running the client ----------------------------------------------------------- */

static void record(cs *s, const h2_event *e)
{
    if (s->keep && e->type == H2_EV_DATA)
        return; /* kept by the caller: neither consumed nor recorded */
    cr_assert_lt(s->nev, 512);
    cev *v = &s->ev[s->nev++];
    memset(v, 0, sizeof *v);
    v->type = e->type;
    v->sid = e->stream_id;
    v->end = e->end_stream;
    const hpack_field *f = NULL;
    switch (e->type) {
    case H2_EV_RESPONSE:
        v->status = e->u.response.status;
        v->content_length = e->u.response.content_length;
        v->nfields = e->u.response.nfields;
        f = e->u.response.fields;
        break;
    case H2_EV_TRAILERS:
        v->nfields = e->u.trailers.n;
        f = e->u.trailers.fields;
        break;
    case H2_EV_DATA: {
        size_t k = (e->stream_id >> 1) & 7;
        cr_assert_leq(s->body_len[k] + e->u.data.len, 4096);
        if (e->u.data.len)
            memcpy(s->body[k] + s->body_len[k], e->u.data.data, e->u.data.len);
        s->body_len[k] += e->u.data.len;
        h2_conn_consume(s->c, e->stream_id, e->u.data.len);
        break;
    }
    case H2_EV_STREAM_RESET:
        v->code = e->u.reset.code;
        v->remote = e->u.reset.remote;
        break;
    case H2_EV_GOAWAY:
        v->last = e->u.goaway.last_stream_id;
        v->code = e->u.goaway.code;
        break;
    case H2_EV_PING_ACK: memcpy(v->ping, e->u.ping, 8); break;
    default: break;
    }
    if (f && v->nfields) {
        snprintf(v->first_name, sizeof v->first_name, "%.*s", (int)f[0].name_len, f[0].name);
        snprintf(v->first_value, sizeof v->first_value, "%.*s", (int)f[0].value_len, f[0].value);
    }
}

/* Feed every scripted byte (whole, or one per call), then keep calling
 * until no event comes out.  Returns the first error (also in s->err). */
static h2_rv cs_feed(cs *s)
{
    for (;;) {
        size_t avail = s->in_len - s->in_pos;
        size_t n = s->bytewise && avail ? 1 : avail;
        size_t used = 0;
        h2_event e;
        h2_rv rv = h2_client_recv(s->c, s->in + s->in_pos, n, 1, &used, &e);
        s->in_pos += used;
        if (rv != H2_OK) {
            if (s->err == H2_OK)
                s->err = rv;
            return rv;
        }
        if (e.type != H2_EV_NONE)
            record(s, &e);
        else if (s->in_pos == s->in_len)
            return H2_OK;
    }
}

/* Take the client's output and parse it into frames. */
static void cs_drain(cs *s)
{
    size_t n;
    while ((n = h2_conn_send(s->c, s->out + s->out_len, CAP - s->out_len, 1)) > 0)
        s->out_len += n;
    if (!s->magic_seen && s->out_len >= H2_PREFACE_LEN) {
        cr_assert(memcmp(s->out, H2_PREFACE, H2_PREFACE_LEN) == 0, "no client magic");
        s->magic_seen = true;
        s->out_parsed = H2_PREFACE_LEN;
    }
    while (s->out_len - s->out_parsed >= H2_FRAME_HDR_LEN) {
        h2_frame_hdr h;
        h2_frame_hdr_parse(s->out + s->out_parsed, &h);
        if (s->out_len - s->out_parsed < H2_FRAME_HDR_LEN + h.length)
            break;
        cr_assert_lt(s->nfr, 512);
        s->fr[s->nfr++] = (cfr){h, (uint32_t)(s->out_parsed + H2_FRAME_HDR_LEN)};
        s->out_parsed += H2_FRAME_HDR_LEN + h.length;
    }
}

static const cfr *out_find(cs *s, uint8_t type, uint32_t sid)
{
    cs_drain(s);
    for (size_t i = 0; i < s->nfr; i++)
        if (s->fr[i].h.type == type && s->fr[i].h.stream_id == sid)
            return &s->fr[i];
    return NULL;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t out_rst(cs *s, uint32_t sid)
{
    const cfr *f = out_find(s, H2_FT_RST_STREAM, sid);
    return f ? (int64_t)be32(s->out + f->off) : -1;
}

static int64_t out_goaway(cs *s)
{
    const cfr *f = out_find(s, H2_FT_GOAWAY, 0);
    return f ? (int64_t)be32(s->out + f->off + 4) : -1;
}

static const cev *ev_find(const cs *s, h2_event_type t, uint32_t sid)
{
    for (size_t i = 0; i < s->nev; i++)
        if (s->ev[i].type == t && s->ev[i].sid == sid)
            return &s->ev[i];
    return NULL;
}

static size_t ev_count(const cs *s, h2_event_type t)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nev; i++)
        n += s->ev[i].type == t;
    return n;
}

static const char *body_of(cs *s, uint32_t sid)
{
    size_t k = (sid >> 1) & 7;
    s->body[k][s->body_len[k] < 4095 ? s->body_len[k] : 4095] = 0;
    return (const char *)s->body[k];
}

static h2_str str(const char *p)
{
    return (h2_str){(const uint8_t *)p, p ? (uint32_t)strlen(p) : 0};
}

static uint32_t cs_request(cs *s, const char *method, const char *path, bool end)
{
    h2_client_req r = {str(method), str("http"), str("example.test"), str(path), NULL, 0};
    uint32_t sid = 0;
    h2_rv rv = h2_client_request(s->c, &r, end, NULL, &sid);
    cr_assert_eq(rv, H2_OK, "request: %s", h2_rv_name(rv));
    return sid;
}

static uint32_t cs_get(cs *s, const char *path)
{
    return cs_request(s, "GET", path, true);
}

/* Each body runs whole and bytewise. */
#define CS_TEST(suite, name)                                                                       \
    static void suite##_##name(cs *s);                                                             \
    Test(suite, name##_whole)                                                                      \
    {                                                                                              \
        cs s;                                                                                      \
        cs_start(&s, false, NULL);                                                                 \
        suite##_##name(&s);                                                                        \
        cs_fini(&s);                                                                               \
    }                                                                                              \
    Test(suite, name##_bytewise)                                                                   \
    {                                                                                              \
        cs s;                                                                                      \
        cs_start(&s, true, NULL);                                                                  \
        suite##_##name(&s);                                                                        \
        cs_fini(&s);                                                                               \
    }                                                                                              \
    static void suite##_##name(cs *s)

/* Restart s with other limits (same mode). */
static void cs_restart(cs *s, const h2_limits *l)
{
    bool bw = s->bytewise;
    cs_fini(s);
    cs_start(s, bw, l);
}

/* --- Preface, ids, request heads (§3.4, §5.1.1, §8.3.1) ------------------------- */

CS_TEST(preface, magic_settings_no_push)
{
    cs_drain(s);
    cr_assert(s->magic_seen);
    cr_assert_geq(s->nfr, 2);
    cr_assert_eq(s->fr[0].h.type, H2_FT_SETTINGS);
    cr_expect_eq(s->fr[0].h.flags, 0);
    bool push0 = false;
    for (uint32_t i = 0; i < s->fr[0].h.length; i += 6) {
        const uint8_t *p = s->out + s->fr[0].off + i;
        if ((p[0] << 8 | p[1]) == H2_SET_ENABLE_PUSH)
            push0 = be32(p + 2) == 0;
    }
    cr_expect(push0, "SETTINGS_ENABLE_PUSH = 0 is advertised");
    cr_expect_eq(s->fr[1].h.type, H2_FT_WINDOW_UPDATE);
    cr_expect_eq(be32(s->out + s->fr[1].off), 1024u * 1024u - 65535u);
    /* A server must open with SETTINGS. */
    sv_frame(s, H2_FT_PING, 0, 0, "12345678", 8);
    cr_expect_eq(cs_feed(s), H2_E_PROTO);
    cr_expect_eq(out_goaway(s), H2_PROTOCOL_ERROR);
}

CS_TEST(request, odd_ids_and_pseudo_headers)
{
    uint32_t a = cs_get(s, "/a"), b = cs_get(s, "/b"), c = cs_request(s, "POST", "/c", false);
    cr_expect_eq(a, 1u);
    cr_expect_eq(b, 3u);
    cr_expect_eq(c, 5u);
    const cfr *f = out_find(s, H2_FT_HEADERS, 3);
    cr_assert_not_null(f);
    cr_expect(f->h.flags & H2_FLAG_END_STREAM);
    cr_expect(!(out_find(s, H2_FT_HEADERS, 5)->h.flags & H2_FLAG_END_STREAM));
    /* Decode the blocks in order: the pseudo-headers come first, in order. */
    hpack_field fl[16];
    uint8_t buf[4096];
    for (uint32_t sid = 1; sid <= 5; sid += 2) {
        f = out_find(s, H2_FT_HEADERS, sid);
        hpack_sink sk = {.fields = fl,
                         .fields_cap = 16,
                         .buf = buf,
                         .buf_cap = sizeof buf,
                         .soft_list_size = 4096,
                         .hard_list_size = 8192,
                         .soft_fields = 16,
                         .hard_fields = 32};
        cr_assert_eq(hpack_decode_block(&s->dec, s->out + f->off, f->h.length, &sk), H2_OK);
        cr_assert_eq(sk.count, 4u);
        const char *names[] = {":method", ":scheme", ":authority", ":path"};
        for (int i = 0; i < 4; i++)
            cr_expect(fl[i].name_len == strlen(names[i]) &&
                      memcmp(fl[i].name, names[i], fl[i].name_len) == 0);
        if (sid == 3)
            cr_expect(fl[3].value_len == 2 && memcmp(fl[3].value, "/b", 2) == 0);
    }
    /* Invalid heads are refused before anything is queued. */
    h2_client_req r = {str("GET"), str("http"), str("x"), str(""), NULL, 0};
    uint32_t sid;
    cr_expect_eq(h2_client_request(s->c, &r, true, NULL, &sid), H2_E_INVAL);
    hpack_field conn = {(const uint8_t *)"connection", (const uint8_t *)"close", 10, 5, 0, 0};
    r = (h2_client_req){str("GET"), str("http"), str("x"), str("/"), &conn, 1};
    cr_expect_eq(h2_client_request(s->c, &r, true, NULL, &sid), H2_E_INVAL);
    cr_expect_eq(cs_get(s, "/d"), 7u, "a refused head takes no id");
}

CS_TEST(request, peer_max_concurrent_streams)
{
    sv_settings(s, (const h2_setting[]){{H2_SET_MAX_CONCURRENT_STREAMS, 2}}, 1);
    cr_assert_eq(cs_feed(s), H2_OK);
    cr_expect_eq(h2_client_room(s->c), 2u);
    uint32_t a = cs_get(s, "/"), b = cs_get(s, "/");
    h2_client_req r = {str("GET"), str("http"), str("x"), str("/"), NULL, 0};
    uint32_t sid;
    cr_expect_eq(h2_client_request(s->c, &r, true, NULL, &sid), H2_E_AGAIN);
    sv_headers(s, a, true, KV(":status", "204"));
    cr_assert_eq(cs_feed(s), H2_OK);
    cr_expect_eq(h2_client_room(s->c), 0u, "a stream counts until it is done");
    cr_assert_eq(h2_client_stream_done(s->c, a), H2_OK);
    cr_expect_eq(h2_client_room(s->c), 1u);
    cr_expect_eq(h2_client_request(s->c, &r, true, NULL, &sid), H2_OK);
    (void)b;
}

/* --- Responses (§8.1, §8.3.2) -------------------------------------------------------- */

CS_TEST(response, head_body_trailers)
{
    sv_hello(s);
    uint32_t a = cs_get(s, "/a");
    sv_headers(s, a, false, KV(":status", "200", "content-length", "5", "x-a", "1"));
    sv_data(s, a, "hel", false);
    sv_data(s, a, "lo", false);
    sv_headers(s, a, true, KV("grpc-status", "0"));
    cr_assert_eq(cs_feed(s), H2_OK);
    const cev *e = ev_find(s, H2_EV_RESPONSE, a);
    cr_assert_not_null(e);
    cr_expect_eq(e->status, 200);
    cr_expect_eq(e->content_length, 5);
    cr_expect_eq(e->nfields, 2u);
    cr_expect_str_eq(e->first_name, "content-length");
    cr_expect_str_eq(body_of(s, a), "hello");
    e = ev_find(s, H2_EV_TRAILERS, a);
    cr_assert_not_null(e);
    cr_expect(e->end);
    cr_expect_str_eq(e->first_name, "grpc-status");
    cr_expect_eq(h2_client_stream_done(s->c, a), H2_OK);
    cr_expect_eq(out_rst(s, a), -1, "a finished stream is not reset");
    cr_expect_eq(h2_conn_stream_count(s->c), 0u);
}

CS_TEST(response, informational_then_final)
{
    sv_hello(s);
    uint32_t a = cs_get(s, "/");
    sv_headers(s, a, false, KV(":status", "100"));
    sv_headers(s, a, false, KV(":status", "103", "link", "</s.css>"));
    sv_headers(s, a, true, KV(":status", "200"));
    cr_assert_eq(cs_feed(s), H2_OK);
    cr_assert_eq(ev_count(s, H2_EV_RESPONSE), 3u);
    cr_expect_eq(s->ev[0].status, 100);
    cr_expect_eq(s->ev[1].status, 103);
    cr_expect_eq(s->ev[2].status, 200);
    cr_expect(s->ev[2].end);
    cr_expect_eq(h2_conn_stats_get(s->c)->glitches, 1u, "a second 1xx is a glitch");
}

CS_TEST(response, head_request_content_length)
{
    sv_hello(s);
    uint32_t a = cs_request(s, "HEAD", "/", true);
    uint32_t b = cs_get(s, "/");
    sv_headers(s, a, true, KV(":status", "200", "content-length", "1234"));
    sv_headers(s, b, true, KV(":status", "304", "content-length", "99"));
    cr_assert_eq(cs_feed(s), H2_OK);
    cr_expect_not_null(ev_find(s, H2_EV_RESPONSE, a));
    cr_expect_not_null(ev_find(s, H2_EV_RESPONSE, b));
    cr_expect_eq(ev_count(s, H2_EV_STREAM_RESET), 0u);
}

/* A malformed response resets its stream (PROTOCOL_ERROR) and nothing else. */
static void malformed_case(cs *s, int k)
{
    sv_hello(s);
    uint32_t a = cs_get(s, "/");
    switch (k) {
    case 0: sv_headers(s, a, true, KV("x", "1")); break;
    case 1: sv_headers(s, a, true, KV(":status", "20")); break;
    case 2: sv_headers(s, a, true, KV(":status", "200", ":path", "/")); break;
    case 3: sv_headers(s, a, true, KV(":status", "200", ":status", "200")); break;
    case 4: sv_headers(s, a, true, KV(":status", "200", "connection", "close")); break;
    case 5: sv_headers(s, a, true, KV(":status", "200", "X-Up", "1")); break;
    case 6: sv_headers(s, a, true, KV(":status", "100")); break;
    case 7: sv_headers(s, a, false, KV(":status", "101")); break;
    case 8: /* short body */
        sv_headers(s, a, false, KV(":status", "200", "content-length", "10"));
        sv_data(s, a, "hello", true);
        break;
    case 9: /* long body */
        sv_headers(s, a, false, KV(":status", "200", "content-length", "2"));
        sv_data(s, a, "hello", true);
        break;
    case 10: sv_data(s, a, "early", true); break;
    case 11:
        sv_headers(s, a, false, KV(":status", "200"));
        sv_headers(s, a, false, KV("grpc-status", "0"));
        break;
    case 12: sv_headers(s, a, true, KV(":status", "200", "content-length", "3")); break;
    case 13: sv_headers(s, a, true, KV("x", "1", ":status", "200")); break;
    case 14: sv_headers(s, a, true, KV(":status", "600")); break;
    default: break;
    }
    cr_assert_eq(cs_feed(s), H2_OK, "case %d: %s", k, h2_rv_name(s->err));
    const cev *e = ev_find(s, H2_EV_STREAM_RESET, a);
    cr_assert_not_null(e, "case %d: no reset", k);
    cr_expect_eq(e->code, H2_PROTOCOL_ERROR, "case %d", k);
    cr_expect(!e->remote);
    cr_expect_eq(out_rst(s, a), H2_PROTOCOL_ERROR, "case %d", k);
    cr_expect_eq(out_goaway(s), -1, "case %d: the connection lives", k);
    /* The connection still works. */
    uint32_t b = cs_get(s, "/next");
    sv_headers(s, b, true, KV(":status", "204"));
    cr_assert_eq(cs_feed(s), H2_OK);
    cr_expect_not_null(ev_find(s, H2_EV_RESPONSE, b), "case %d", k);
    h2_client_stream_done(s->c, a);
    h2_client_stream_done(s->c, b);
}

CS_TEST(response, malformed_resets_stream)
{
    for (int k = 0; k <= 14; k++) {
        cs_restart(s, NULL);
        malformed_case(s, k);
    }
}

/* --- Push refused, idle streams (§8.4, §5.1) -------------------------------------- */

static void push_case(cs *s, int k)
{
    sv_hello(s);
    uint32_t a = cs_get(s, "/");
    uint8_t b[65536];
    switch (k) {
    case 0: { /* PUSH_PROMISE */
        size_t n = sv_block(s, b + 4, KV(":method", "GET", ":path", "/p"));
        b[0] = b[1] = b[2] = 0;
        b[3] = 2;
        sv_frame(s, H2_FT_PUSH_PROMISE, H2_FLAG_END_HEADERS, a, b, (uint32_t)n + 4);
        break;
    }
    case 1: sv_settings(s, (const h2_setting[]){{H2_SET_ENABLE_PUSH, 1}}, 1); break;
    case 2: sv_headers(s, 2, true, KV(":status", "200")); break;
    case 3: sv_headers(s, 9, true, KV(":status", "200")); break;
    case 4: sv_data(s, 11, "x", true); break;
    default: break;
    }
    cr_expect_eq(cs_feed(s), H2_E_PROTO, "case %d", k);
    cr_expect_eq(out_goaway(s), H2_PROTOCOL_ERROR, "case %d", k);
    cr_expect_eq(h2_client_room(s->c), 0u);
}

CS_TEST(push, refused_as_connection_error)
{
    for (int k = 0; k <= 4; k++) {
        cs_restart(s, NULL);
        push_case(s, k);
    }
}

/* --- GOAWAY, RST_STREAM ------------------------------------------------------------ */

CS_TEST(goaway, streams_above_last_are_refused)
{
    sv_hello(s);
    uint32_t a = cs_get(s, "/"), b = cs_get(s, "/"), c = cs_get(s, "/");
    sv_goaway(s, a, H2_NO_ERROR);
    sv_headers(s, a, false, KV(":status", "200"));
    sv_data(s, a, "ok", true);
    cr_assert_eq(cs_feed(s), H2_OK);
    const cev *g = ev_find(s, H2_EV_GOAWAY, 0);
    cr_assert_not_null(g);
    cr_expect_eq(g->last, a);
    for (uint32_t sid = b; sid <= c; sid += 2) {
        const cev *e = ev_find(s, H2_EV_STREAM_RESET, sid);
        cr_assert_not_null(e, "stream %u not reported", sid);
        cr_expect_eq(e->code, H2_REFUSED_STREAM);
        cr_expect(e->remote);
        cr_expect_eq(out_rst(s, sid), -1, "a refused stream needs no RST_STREAM");
    }
    cr_expect_null(ev_find(s, H2_EV_STREAM_RESET, a));
    cr_expect_str_eq(body_of(s, a), "ok");
    h2_client_req r = {str("GET"), str("http"), str("x"), str("/"), NULL, 0};
    uint32_t sid;
    cr_expect_eq(h2_client_request(s->c, &r, true, NULL, &sid), H2_E_CLOSED);
    cr_expect(!h2_conn_is_done(s->c));
    for (uint32_t i = a; i <= c; i += 2)
        cr_expect_eq(h2_client_stream_done(s->c, i), H2_OK);
    cr_expect(h2_conn_is_done(s->c));
}

CS_TEST(goaway, rst_stream_from_server)
{
    sv_hello(s);
    uint32_t a = cs_get(s, "/");
    sv_headers(s, a, false, KV(":status", "200"));
    sv_u32(s, H2_FT_RST_STREAM, a, H2_INTERNAL_ERROR);
    cr_assert_eq(cs_feed(s), H2_OK);
    const cev *e = ev_find(s, H2_EV_STREAM_RESET, a);
    cr_assert_not_null(e);
    cr_expect_eq(e->code, H2_INTERNAL_ERROR);
    cr_expect(e->remote);
    cr_expect_eq(h2_client_stream_done(s->c, a), H2_OK);
    cr_expect_eq(out_rst(s, a), -1, "no RST_STREAM answers one");
}

CS_TEST(goaway, done_on_open_stream_cancels)
{
    sv_hello(s);
    uint32_t a = cs_get(s, "/");
    sv_headers(s, a, false, KV(":status", "200"));
    cr_assert_eq(cs_feed(s), H2_OK);
    cr_expect_eq(h2_client_stream_done(s->c, a), H2_OK);
    cr_expect_eq(out_rst(s, a), H2_CANCEL);
    /* Late frames on it are ignored. */
    sv_data(s, a, "late", true);
    cr_expect_eq(cs_feed(s), H2_OK);
    cr_expect_eq(out_goaway(s), -1);
}

/* --- Limits and hostile servers ---------------------------------------------------- */

CS_TEST(limits, header_list_soft_and_hard)
{
    h2_limits l = *h2_limits_default();
    l.max_header_list_size = 1024;
    cs_restart(s, &l);
    sv_hello(s);
    uint32_t a = cs_get(s, "/");
    static char big[1500];
    memset(big, 'v', sizeof big - 1);
    sv_headers(s, a, true, KV(":status", "200", "x-big", big));
    cr_assert_eq(cs_feed(s), H2_OK);
    const cev *e = ev_find(s, H2_EV_STREAM_RESET, a);
    cr_assert_not_null(e, "a head past the soft list size discards the response");
    cr_expect_eq(e->code, H2_CANCEL);
    cr_expect_eq(s->x.limit_hits[H2_LIMIT_HEADER_LIST], 1u);
    /* Past the hard cap (4x): the connection ends. */
    uint32_t b = cs_get(s, "/");
    static char huge[4000];
    memset(huge, 'w', sizeof huge - 1);
    sv_headers(s, b, true, KV(":status", "200", "a", huge, "b", huge));
    cr_expect_eq(cs_feed(s), H2_E_PROTO);
    cr_expect_eq(out_goaway(s), H2_ENHANCE_YOUR_CALM);
}

CS_TEST(limits, continuation_flood)
{
    sv_hello(s);
    uint32_t a = cs_get(s, "/");
    uint8_t b[64];
    size_t n = sv_block(s, b, KV(":status", "200"));
    sv_frame(s, H2_FT_HEADERS, 0, a, b, (uint32_t)n);
    for (int i = 0; i < 20; i++)
        sv_frame(s, H2_FT_CONTINUATION, 0, a, NULL, 0);
    cr_expect_eq(cs_feed(s), H2_E_PROTO);
    cr_expect_eq(out_goaway(s), H2_ENHANCE_YOUR_CALM);
    cr_expect_eq(s->x.limit_hits[H2_LIMIT_CONTINUATIONS], 1u);
}

CS_TEST(limits, window_overflow_and_abuse)
{
    sv_hello(s);
    uint32_t a = cs_request(s, "POST", "/", false);
    sv_u32(s, H2_FT_WINDOW_UPDATE, a, 0x7fffffffu);
    cr_assert_eq(cs_feed(s), H2_OK);
    cr_expect_eq(out_rst(s, a), H2_FLOW_CONTROL_ERROR, "a stream window past 2^31-1");
    sv_u32(s, H2_FT_WINDOW_UPDATE, 0, 0x7fffffffu);
    cr_expect_eq(cs_feed(s), H2_E_PROTO);
    cr_expect_eq(out_goaway(s), H2_FLOW_CONTROL_ERROR);
}

CS_TEST(limits, ping_flood_pauses_reading)
{
    h2_limits l = *h2_limits_default();
    l.max_pending_control = 10;
    cs_restart(s, &l);
    sv_hello(s);
    for (int i = 0; i < 50; i++)
        sv_frame(s, H2_FT_PING, 0, 0, "abcdefgh", 8);
    cr_expect_eq(cs_feed(s), H2_E_AGAIN, "unanswered PINGs pause reading");
    cr_expect_eq(s->x.limit_hits[H2_LIMIT_CONTROL_QUEUE], 1u);
    cs_drain(s); /* written: reading goes on */
    s->err = H2_OK;
    while (cs_feed(s) == H2_E_AGAIN)
        cs_drain(s);
    cr_expect_eq(s->in_pos, s->in_len);
    size_t acks = 0;
    for (size_t i = 0; i < s->nfr; i++)
        acks += s->fr[i].h.type == H2_FT_PING && (s->fr[i].h.flags & H2_FLAG_ACK);
    cs_drain(s);
    for (size_t i = acks; i < s->nfr; i++)
        acks += s->fr[i].h.type == H2_FT_PING && (s->fr[i].h.flags & H2_FLAG_ACK);
    cr_expect_geq(acks, 50u);
}

CS_TEST(limits, settings_churn_and_glitch_budget)
{
    h2_limits l = *h2_limits_default();
    l.glitch_burst = 20;
    l.glitch_rate = 1;
    cs_restart(s, &l);
    sv_hello(s);
    for (int i = 0; i < 40; i++)
        sv_settings(s, NULL, 0);
    cr_expect_eq(cs_feed(s), H2_E_PROTO);
    cr_expect_eq(out_goaway(s), H2_ENHANCE_YOUR_CALM);
    cr_expect_eq(s->x.limit_hits[H2_LIMIT_GLITCHES], 1u);
}

CS_TEST(limits, reset_flood)
{
    h2_limits l = *h2_limits_default();
    l.reset_burst = 5;
    l.reset_rate = 1;
    cs_restart(s, &l);
    sv_hello(s);
    for (int i = 0; i < 10; i++) {
        uint32_t a = cs_get(s, "/");
        sv_u32(s, H2_FT_RST_STREAM, a, H2_CANCEL);
    }
    cr_expect_eq(cs_feed(s), H2_E_PROTO);
    cr_expect_eq(s->x.limit_hits[H2_LIMIT_RESETS], 1u);
}

/* --- Request bodies (flow control, release), PING ------------------------------------ */

static void count_release(void *ctx, const void *data, size_t len)
{
    (void)data;
    (void)len;
    ((cs *)ctx)->releases++;
}

CS_TEST(body, by_reference_under_flow_control)
{
    static uint8_t big[100000];
    memset(big, 'b', sizeof big);
    sv_hello(s);
    cr_assert_eq(cs_feed(s), H2_OK);
    uint32_t a = cs_request(s, "POST", "/up", false);
    cr_assert_eq(h2_conn_send_data(s->c, a, big, sizeof big, false, count_release, s), H2_OK);
    cr_assert_eq(
        h2_conn_send_trailers(
            s->c, a,
            (const hpack_field[]){{(const uint8_t *)"x-sum", (const uint8_t *)"1", 5, 1, 0, 0}}, 1),
        H2_OK);
    cs_drain(s);
    uint64_t sent = 0;
    for (size_t i = 0; i < s->nfr; i++)
        if (s->fr[i].h.type == H2_FT_DATA && s->fr[i].h.stream_id == a)
            sent += s->fr[i].h.length;
    cr_expect_eq(sent, 65535u, "the default stream window bounds the body");
    cr_expect_eq(s->releases, 0);
    sv_u32(s, H2_FT_WINDOW_UPDATE, a, 100000);
    sv_u32(s, H2_FT_WINDOW_UPDATE, 0, 100000);
    cr_assert_eq(cs_feed(s), H2_OK);
    cs_drain(s);
    sent = 0;
    for (size_t i = 0; i < s->nfr; i++)
        if (s->fr[i].h.type == H2_FT_DATA && s->fr[i].h.stream_id == a)
            sent += s->fr[i].h.length;
    cr_expect_eq(sent, sizeof big);
    cr_expect_eq(s->releases, 1, "released once, after it was written");
    const cfr *t = NULL;
    for (size_t i = 0; i < s->nfr; i++)
        if (s->fr[i].h.type == H2_FT_HEADERS && s->fr[i].h.stream_id == a)
            t = &s->fr[i];
    cr_assert_not_null(t);
    cr_expect(t->h.flags & H2_FLAG_END_STREAM, "trailers end the request");
    sv_headers(s, a, true, KV(":status", "201"));
    cr_assert_eq(cs_feed(s), H2_OK);
    cr_expect_eq(ev_find(s, H2_EV_RESPONSE, a)->status, 201);
}

CS_TEST(body, unsent_body_released_on_free)
{
    static uint8_t big[100000];
    sv_hello(s);
    cr_assert_eq(cs_feed(s), H2_OK);
    uint32_t a = cs_request(s, "POST", "/up", false);
    cr_assert_eq(h2_conn_send_data(s->c, a, big, sizeof big, true, count_release, s), H2_OK);
    cs_drain(s);
    cr_expect_eq(s->releases, 0);
    h2_conn_free(s->c);
    s->c = h2_client_new(&s->x, 0);
    cr_expect_eq(s->releases, 1);
}

CS_TEST(ping, timed_round_trip)
{
    sv_hello(s);
    cr_assert_eq(cs_feed(s), H2_OK);
    cr_assert_eq(h2_conn_ping_timed(s->c, 123456789), H2_OK);
    const cfr *p = out_find(s, H2_FT_PING, 0);
    cr_assert_not_null(p);
    cr_expect_eq(p->h.flags & H2_FLAG_ACK, 0);
    sv_frame(s, H2_FT_PING, H2_FLAG_ACK, 0, s->out + p->off, 8);
    sv_frame(s, H2_FT_PING, H2_FLAG_ACK, 0, "appl-ping", 8);
    cr_assert_eq(cs_feed(s), H2_OK);
    cr_assert_eq(ev_count(s, H2_EV_PING_ACK), 2u);
    uint64_t t;
    cr_expect(h2_ping_sent_us(s->ev[0].ping, &t));
    cr_expect_eq(t, 123456789u);
    cr_expect(!h2_ping_sent_us(s->ev[1].ping, &t), "an application PING is not a timed one");
}

/* --- Against the server engine ---------------------------------------------------------- */

typedef struct pair {
    h2_ctx cx, sx;
    h2_conn *c, *srv;
    uint8_t buf[1 << 16];
} pair;

/* Move bytes one way, at most step bytes per recv call; the server side
 * answers every request with its path as the body and a trailer; the
 * client side records into s. */
static void pipe_to_server(pair *p, size_t step)
{
    size_t n;
    while ((n = h2_conn_send(p->c, p->buf, sizeof p->buf, 1)) > 0) {
        size_t off = 0;
        while (off < n) {
            size_t used;
            h2_event e;
            size_t len = n - off < step ? n - off : step;
            cr_assert_eq(h2_conn_recv(p->srv, p->buf + off, len, 1, &used, &e), H2_OK);
            off += used;
            if (e.type == H2_EV_REQUEST) {
                static char body[64];
                int bl = snprintf(body, sizeof body, "%.*s", (int)e.u.request.path.len,
                                  e.u.request.path.p);
                cr_assert_eq(h2_conn_respond(p->srv, e.stream_id, 200, NULL, 0, false), H2_OK);
                cr_assert_eq(h2_conn_send_data(p->srv, e.stream_id, (const uint8_t *)body,
                                               (uint64_t)bl, false, NULL, NULL),
                             H2_OK);
                hpack_field t = {(const uint8_t *)"x-t", (const uint8_t *)"done", 3, 4, 0, 0};
                cr_assert_eq(h2_conn_send_trailers(p->srv, e.stream_id, &t, 1), H2_OK);
                h2_conn_stream_detach(p->srv, e.stream_id);
            }
        }
    }
}

static void pipe_to_client(pair *p, cs *s, size_t step)
{
    size_t n;
    while ((n = h2_conn_send(p->srv, p->buf, sizeof p->buf, 1)) > 0) {
        size_t off = 0;
        for (;;) {
            size_t used;
            h2_event e;
            size_t len = n - off < step ? n - off : step;
            cr_assert_eq(h2_client_recv(p->c, p->buf + off, len, 1, &used, &e), H2_OK);
            off += used;
            if (e.type != H2_EV_NONE)
                record(s, &e);
            else if (off == n)
                break;
        }
    }
}

CS_TEST(roundtrip, against_server_engine)
{
    pair *p = calloc(1, sizeof *p);
    cr_assert_eq(h2_ctx_init(&p->sx, NULL, NULL), H2_OK);
    p->srv = h2_conn_new(&p->sx, 0);
    p->c = s->c; /* s records the events */
    size_t step = s->bytewise ? 1 : SIZE_MAX;
    char path[32];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 5; i++) {
            snprintf(path, sizeof path, "/r%d", round * 5 + i);
            cs_get(s, path);
        }
        pipe_to_server(p, step);
        pipe_to_client(p, s, step);
        pipe_to_server(p, step); /* ACKs, WINDOW_UPDATEs */
    }
    cr_expect_eq(ev_count(s, H2_EV_RESPONSE), 15u);
    cr_expect_eq(ev_count(s, H2_EV_TRAILERS), 15u);
    cr_expect_eq(ev_count(s, H2_EV_STREAM_RESET), 0u);
    for (uint32_t sid = 1; sid <= 29; sid += 2) {
        const cev *e = ev_find(s, H2_EV_TRAILERS, sid);
        cr_assert_not_null(e, "stream %u", sid);
        cr_expect_str_eq(e->first_value, "done");
        cr_expect_eq(h2_client_stream_done(s->c, sid), H2_OK);
    }
    cr_expect_eq(h2_conn_stream_count(s->c), 0u);
    cr_expect_eq(h2_conn_stream_count(p->srv), 0u);
    cr_expect_eq(out_rst(s, 1), -1);
    /* A graceful shutdown from the server: the client sees GOAWAY, nothing is refused. */
    cr_assert_eq(h2_conn_goaway(p->srv, H2_NO_ERROR, NULL), H2_OK);
    pipe_to_client(p, s, step);
    cr_expect_not_null(ev_find(s, H2_EV_GOAWAY, 0));
    cr_expect(h2_conn_is_done(s->c));
    h2_conn_free(p->srv);
    h2_ctx_free(&p->sx);
    free(p);
}

/* --- Consumption in two halves (a paused upstream call) ------------------------ */

/* The WINDOW_UPDATE increments the client wrote for sid, summed. */
static uint64_t out_window(cs *s, uint32_t sid)
{
    cs_drain(s);
    uint64_t sum = 0;
    for (size_t i = 0; i < s->nfr; i++)
        if (s->fr[i].h.type == H2_FT_WINDOW_UPDATE && s->fr[i].h.stream_id == sid)
            sum += be32(s->out + s->fr[i].off) & 0x7fffffffu;
    return sum;
}

CS_TEST(h2_client, consume_conn_then_stream)
{
    h2_limits l = *h2_limits_default();
    l.initial_window_size = 16384; /* a stream WINDOW_UPDATE from 8192 consumed */
    l.connection_window = 65535;   /* the connection's from 32767 */
    cs_restart(s, &l);
    s->keep = true;
    uint32_t a = cs_get(s, "/a"), b = cs_get(s, "/b");
    sv_hello(s);
    static uint8_t body[16384];
    for (uint32_t sid = a; sid <= b; sid += 2) {
        sv_headers(s, sid, false, KV(":status", "200"));
        sv_frame(s, H2_FT_DATA, 0, sid, body, sizeof body); /* each stream's window, all of it */
    }
    cr_assert_eq(cs_feed(s), H2_OK);
    cr_assert_eq(out_window(s, 0) + out_window(s, a) + out_window(s, b), 0);
    /* The connection half: its window reopens, the streams' stay shut. */
    cr_assert_eq(h2_conn_consume_conn(s->c, a, sizeof body), H2_OK);
    cr_assert_eq(h2_conn_consume_conn(s->c, b, sizeof body), H2_OK);
    cr_assert_eq(out_window(s, 0), 2 * sizeof body);
    cr_assert_eq(out_window(s, a), 0);
    cr_assert_eq(out_window(s, b), 0);
    /* More DATA on a shut stream is a flow-control error (RST): the peer
     * can be held there while other streams flow. */
    sv_frame(s, H2_FT_DATA, 0, a, body, 1);
    cr_assert_eq(cs_feed(s), H2_OK);
    cr_assert_eq(out_rst(s, a), H2_FLOW_CONTROL_ERROR);
    /* The stream half, later: b's window reopens; never past the initial
     * window whatever the caller claims. */
    cr_assert_eq(h2_conn_consume_stream(s->c, b, 10u * sizeof body), H2_OK);
    cr_assert_eq(out_window(s, b), sizeof body);
    /* Bytes credited to the connection are not credited again when the
     * stream ends (b finishes, a was reset). */
    sv_frame(s, H2_FT_DATA, H2_FLAG_END_STREAM, b, body, 100);
    cr_assert_eq(cs_feed(s), H2_OK);
    cr_assert_eq(h2_client_stream_done(s->c, a), H2_OK);
    cr_assert_eq(h2_client_stream_done(s->c, b), H2_OK);
    cr_assert_leq(out_window(s, 0), 2 * sizeof body + 1 + 100);
    cr_assert_eq(h2_conn_consume_conn(s->c, b, 1), H2_E_NOSTREAM);
    cr_assert_eq(h2_conn_consume_stream(s->c, b, 1), H2_E_NOSTREAM);
}
