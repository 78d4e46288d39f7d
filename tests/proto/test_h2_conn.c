/* test_h2_conn.c - proto/h2_conn.c driven by a scripted client (h2_script.h).
 *
 * Every test is named after the RFC section (or the security.md limit) it
 * checks.  H2S_TEST bodies run three times: whole input, one byte per
 * h2_conn_recv call, and output through 2-iovec prepares with partial
 * commits.  Besides the explicit assertions, the harness checks every frame
 * the server writes against the RFC 9113 rules a server must always follow
 * (windows, frame sizes, frames after RST_STREAM/END_STREAM/GOAWAY, HPACK
 * decodability, ACKs echo what was sent) and, at the end, that every data
 * chunk was released exactly once and the counting allocator got every
 * block back.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_script.h"

/* --- Helpers ----------------------------------------------------------------- */

#define MIB (1024u * 1024u)
#define KIB 1024u

/* Defaults with a tweak: `h2_limits l = lim(); l.x = y; h2s_start(s, &l, NULL);` */
static h2_limits lim(void)
{
    return *h2_limits_default();
}

/* Run fn on a fresh h2s in the same mode as s (sub-cases of one test). */
static void sub(h2s *s, void (*fn)(h2s *, int), int k)
{
    h2s t;
    h2s_init(&t, s->mode);
    fn(&t, k);
    h2s_fini(&t);
}

/* A counting allocator that lives as long as s (h2s_fini checks it after
 * freeing the connection, so it must not be a local of a sub-case). */
static h2s_mem *new_mem(h2s *s)
{
    h2s_mem *m = (h2s_mem *)(void *)h2s_alloc(s, sizeof *m);
    h2s_mem_init(m);
    return m;
}

/* The REQUEST event on sid must exist; returns it. */
static const h2s_ev *req_ok(h2s *s, uint32_t sid)
{
    const h2s_ev *e = h2s_req(s, sid);
    cr_assert(e != NULL, "[%s] no REQUEST event on stream %u (first_err %s, fault %s: %s)",
              s->mode_name, sid, h2_rv_name(s->first_err), h2_code_name(h2_conn_fault(s->c).code),
              h2_conn_fault(s->c).reason ? h2_conn_fault(s->c).reason : "");
    return e;
}

/* A GET on sid, answered with body; asserts a complete 200 with that body. */
static void get_roundtrip(h2s *s, uint32_t sid, const char *path, const char *body)
{
    h2s_get(s, sid, path);
    h2_rv rv = h2s_run(s);
    cr_assert(rv == H2_OK, "[%s] GET %s on %u: %s", s->mode_name, path, sid, h2_rv_name(rv));
    const h2s_ev *e = req_ok(s, sid);
    cr_expect_str_eq(e->path, path);
    h2s_respond_ok(s, sid, body);
    h2s_drain(s);
    size_t n = 0;
    const uint8_t *b = h2s_body(s, sid, &n);
    cr_expect_eq(h2s_status(s, sid), 200, "[%s] stream %u status %d", s->mode_name, sid,
                 h2s_status(s, sid));
    cr_expect(n == strlen(body) && (n == 0 || memcmp(b, body, n) == 0),
              "[%s] stream %u body mismatch (%zu bytes)", s->mode_name, sid, n);
    cr_expect(h2s_st(s, sid)->ended, "[%s] stream %u not ended", s->mode_name, sid);
}

/* DATA of any length, split into frames of at most 16384 octets. */
static void data_split(h2s *s, uint32_t sid, const uint8_t *d, size_t len, bool end_stream)
{
    do {
        size_t n = len > 16384 ? 16384 : len;
        h2s_data(s, sid, d, n, end_stream && n == len);
        if (d)
            d += n;
        len -= n;
    } while (len);
}

/* Count frames of a type with the given flag bits all set. */
static size_t count_flags(const h2s *s, uint8_t type, uint32_t sid, uint8_t flags)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nframes; i++) {
        const h2s_frame *f = &s->frames[i];
        if (f->hdr.type == type && (sid == H2S_ANY || f->hdr.stream_id == sid) &&
            (f->hdr.flags & flags) == flags)
            n++;
    }
    return n;
}

static size_t count_wu_from(const h2s *s, uint32_t sid, size_t from)
{
    size_t n = 0;
    for (size_t i = from; i < s->nframes; i++)
        n += s->frames[i].hdr.type == H2_FT_WINDOW_UPDATE && s->frames[i].hdr.stream_id == sid;
    return n;
}

static uint64_t sum_wu_from(const h2s *s, uint32_t sid, size_t from)
{
    uint64_t t = 0;
    for (size_t i = from; i < s->nframes; i++)
        if (s->frames[i].hdr.type == H2_FT_WINDOW_UPDATE && s->frames[i].hdr.stream_id == sid)
            t += s->frames[i].f.u.window_increment;
    return t;
}

/* ============================================================================
 * 1. RFC 9113 §3.4: connection preface
 * ========================================================================== */

H2S_TEST(preface, rfc9113_3_4_valid,
         "§3.4: the server preface is SETTINGS + connection WINDOW_UPDATE")
{
    h2s_start(s, NULL, NULL);
    /* The server preface is queued before the client said anything. */
    h2s_drain(s);
    cr_assert_geq(s->nframes, 1, "[%s] no server preface", s->mode_name);
    const h2s_frame *st = &s->frames[0];
    cr_assert_eq(st->hdr.type, H2_FT_SETTINGS);
    cr_expect_eq(st->hdr.flags & H2_FLAG_ACK, 0);
    cr_expect_eq(st->hdr.stream_id, 0u);
    cr_expect_eq(h2s_setting(s, H2_SET_MAX_CONCURRENT_STREAMS), 100);
    cr_expect_eq(h2s_setting(s, H2_SET_NO_RFC7540_PRIORITIES), 1);
    cr_expect_eq(h2s_setting(s, H2_SET_ENABLE_CONNECT_PROTOCOL), 1);
    cr_expect_eq(h2s_setting(s, H2_SET_INITIAL_WINDOW_SIZE), 262144);
    cr_expect_eq(h2s_setting(s, H2_SET_MAX_HEADER_LIST_SIZE), 65536);
    int64_t push = h2s_setting(s, H2_SET_ENABLE_PUSH);
    cr_expect(push == -1 || push == 0, "a server must not advertise ENABLE_PUSH=1");
    /* The connection window is opened right after SETTINGS. */
    cr_assert_geq(s->nframes, 2);
    const h2s_frame *wu = &s->frames[1];
    cr_assert_eq(wu->hdr.type, H2_FT_WINDOW_UPDATE);
    cr_expect_eq(wu->hdr.stream_id, 0u);
    cr_expect_eq(wu->f.u.window_increment, MIB - H2_DEFAULT_WINDOW);
    cr_expect_eq(s->nframes, 2, "[%s] only SETTINGS and WINDOW_UPDATE before the client speaks",
                 s->mode_name);

    h2s_handshake(s);
    /* Exactly one SETTINGS frame from the server, one ACK for ours. */
    cr_expect_eq(
        count_flags(s, H2_FT_SETTINGS, 0, 0) - count_flags(s, H2_FT_SETTINGS, 0, H2_FLAG_ACK), 1u);
    cr_expect_eq(count_flags(s, H2_FT_SETTINGS, 0, H2_FLAG_ACK), 1u);
    cr_expect_eq(s->first_err, H2_OK);
    get_roundtrip(s, 1, "/", "hello");
    H2S_EXPECT_ALIVE(s);
}

H2S_TEST(preface, rfc9113_3_4_requests_before_settings_ack,
         "§3.4: requests may follow the client preface before the server's SETTINGS are ACKed")
{
    h2s_start(s, NULL, NULL);
    h2s_preface(s);
    h2s_settings(s, NULL, 0);
    h2s_get(s, 1, "/early");
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_str_eq(req_ok(s, 1)->path, "/early");
    h2s_respond_ok(s, 1, "x");
    h2s_settings_ack(s);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(h2s_status(s, 1), 200);
    H2S_EXPECT_ALIVE(s);
}

static void bad_preface_case(h2s *s, int k)
{
    static const char *const bad[] = {
        "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",             /* wrong magic tail */
        "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",  /* HTTP/1.1 */
        "PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n",             /* wrong version */
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS ClientHello */
    };
    h2s_start(s, NULL, NULL);
    h2s_raw(s, bad[k], strlen(bad[k]));
    h2s_settings(s, NULL, 0);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_PROTOCOL_ERROR);
    cr_expect_eq(h2s_goaway_last_id(s), 0);
    cr_expect_eq(s->nev, 0u, "[%s] no event from an invalid preface", s->mode_name);
}

H2S_TEST(preface, rfc9113_3_4_invalid_preface, "§3.4: an invalid preface is PROTOCOL_ERROR")
{
    for (int k = 0; k < 4; k++)
        sub(s, bad_preface_case, k);
}

static void first_not_settings_case(h2s *s, int k)
{
    h2s_start(s, NULL, NULL);
    h2s_preface(s);
    switch (k) {
    case 0: h2s_ping_n(s, 1); break;
    case 1: h2s_settings_ack(s); break;
    case 2: h2s_get(s, 1, "/"); break;
    case 3: h2s_window_update(s, 0, 1000); break;
    case 4:
        h2s_frame_raw(s, 0xfa, 0, 0, "abc", 3); /* even an extension frame */
        break;
    default: h2s_priority(s, 1, 0, 16, false); break;
    }
    h2s_settings(s, NULL, 0);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_PROTOCOL_ERROR);
    cr_expect_eq(s->nev, 0u, "[%s] case %d: event before the client SETTINGS", s->mode_name, k);
}

H2S_TEST(preface, rfc9113_3_4_first_frame_not_settings,
         "§3.4: the client preface's first frame must be SETTINGS (not ACK)")
{
    for (int k = 0; k < 6; k++)
        sub(s, first_not_settings_case, k);
}

/* ============================================================================
 * 2. RFC 9113 §4.1, §4.2, §5.5: frame format, size, extensibility
 * ========================================================================== */

H2S_TEST(frames, rfc9113_4_1_5_5_unknown_types_ignored,
         "§4.1/§5.5: frames of unknown types are ignored, on any stream, any length")
{
    h2s_handshake(s);
    uint8_t junk[300];
    h2s_pattern(junk, sizeof junk, 7);
    h2s_frame_raw(s, 0xfa, 0xff, 0, junk, sizeof junk);
    h2s_frame_raw(s, 0x0b, 0, 1, NULL, 0);     /* idle stream: still ignored */
    h2s_frame_raw(s, 0xff, 0x01, 2, junk, 10); /* even stream id */
    get_roundtrip(s, 1, "/a", "one");
    uint8_t *max = h2s_alloc(s, 16384);
    h2s_frame_raw(s, 0x20, 0, 1, max, 16384); /* closed stream, maximum length */
    h2s_frame_raw(s, 0x0a, 0, 0x7fffffff, junk, 1);
    get_roundtrip(s, 3, "/b", "two");
    cr_expect_eq(h2s_count(s, H2_FT_RST_STREAM, H2S_ANY), 0u);
    H2S_EXPECT_ALIVE(s);
}

H2S_TEST(frames, rfc9113_4_1_unknown_flags_ignored,
         "§4.1: undefined flags are ignored on every frame type")
{
    h2s_handshake(s);
    /* HEADERS with every undefined flag bit set (0x02 0x10 0x40 0x80). */
    h2s_hopts o = {.extra_flags = 0xd2};
    h2s_headers(s, 1,
                H2S_KV({":method", "POST"}, {":scheme", "https"}, {":authority", "example.com"},
                       {":path", "/flags"}),
                &o);
    /* DATA with undefined flags (0x02 0x04 0x10 0x20 0x40 0x80). */
    h2s_frame_raw(s, H2_FT_DATA, 0xf6, 1, "abc", 3);
    h2s_frame_raw(s, H2_FT_DATA, 0xf6 | H2_FLAG_END_STREAM, 1, "de", 2);
    /* PING with every flag but ACK: a request, to be echoed. */
    uint8_t op[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    h2s_frame_raw(s, H2_FT_PING, 0xfe, 0, op, 8);
    /* SETTINGS, WINDOW_UPDATE, PRIORITY, RST_STREAM with junk flags. */
    h2s_frame_raw(s, H2_FT_SETTINGS, 0xfe, 0, NULL, 0);
    uint8_t inc[4] = {0, 0, 1, 0};
    h2s_frame_raw(s, H2_FT_WINDOW_UPDATE, 0xff, 0, inc, 4);
    uint8_t prio[5] = {0, 0, 0, 0, 15};
    h2s_frame_raw(s, H2_FT_PRIORITY, 0xff, 3, prio, 5);
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    const h2s_ev *e = req_ok(s, 1);
    cr_expect_str_eq(e->method, "POST");
    cr_expect_not(e->end_stream, "0xd2 has no END_STREAM bit");
    size_t n = 0;
    const uint8_t *b = h2s_req_body(s, 1, &n);
    cr_expect(n == 5 && memcmp(b, "abcde", 5) == 0, "[%s] body %zu bytes", s->mode_name, n);
    cr_expect(h2s_st(s, 1)->req_ended);
    const h2s_frame *ack = h2s_last(s, H2_FT_PING, 0);
    cr_assert_not_null(ack);
    cr_expect(ack->hdr.flags & H2_FLAG_ACK);
    cr_expect_arr_eq(ack->f.u.ping, op, 8);
    cr_expect_eq(s->server_acks_seen, 2u, "[%s] the second SETTINGS is ACKed", s->mode_name);
    h2s_respond_ok(s, 1, "ok");
    H2S_EXPECT_ALIVE(s);
    cr_expect_eq(h2s_status(s, 1), 200);
}

static void oversize_case(h2s *s, int k)
{
    h2_limits l = lim();
    if (k >= 3)
        l.max_frame_size = 32768;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    uint32_t maxf = l.max_frame_size;
    uint8_t *big = h2s_alloc(s, maxf + 1);
    switch (k % 3) {
    case 0: /* DATA */
        h2s_request(s, 1, "POST", "/", NULL, 0, false);
        h2s_data(s, 1, big, maxf, false); /* exactly the maximum: fine */
        h2s_data(s, 1, big, maxf + 1, true);
        break;
    case 1: /* an extension frame: its size is checked before it is ignored */
        h2s_frame_raw(s, 0xfa, 0, 0, big, maxf);
        h2s_frame_raw(s, 0xfa, 0, 0, big, maxf + 1);
        break;
    default: /* HEADERS: carries a field block, always a connection error */
        h2s_get(s, 1, "/");
        h2s_frame_raw(s, H2_FT_HEADERS, H2_FLAG_END_HEADERS | H2_FLAG_END_STREAM, 3, big, maxf + 1);
        break;
    }
    h2s_run(s);
    if (k % 3 == 0) /* DATA: §4.2 allows a stream error too */
        H2S_EXPECT_ERROR_ANY(s, 1, H2_FRAME_SIZE_ERROR);
    else
        H2S_EXPECT_CONN_ERROR(s, H2_FRAME_SIZE_ERROR);
}

H2S_TEST(frames, rfc9113_4_2_frame_too_large,
         "§4.2: a frame above our SETTINGS_MAX_FRAME_SIZE is FRAME_SIZE_ERROR")
{
    for (int k = 0; k < 6; k++)
        sub(s, oversize_case, k);
}

H2S_TEST(frames, rfc9113_4_2_larger_max_frame_size_accepted,
         "§4.2: frames up to an advertised larger MAX_FRAME_SIZE are accepted")
{
    h2_limits l = lim();
    l.max_frame_size = 65536;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    cr_expect_eq(h2s_setting(s, H2_SET_MAX_FRAME_SIZE), 65536);
    uint8_t *big = h2s_alloc(s, 60000);
    h2s_pattern(big, 60000, 3);
    h2s_request(s, 1, "POST", "/big", H2S_KV({"content-length", "60000"}), false);
    h2s_data(s, 1, big, 60000, true);
    cr_assert_eq(h2s_run(s), H2_OK);
    size_t n = 0;
    const uint8_t *b = h2s_req_body(s, 1, &n);
    cr_expect(n == 60000 && memcmp(b, big, n) == 0);
    h2s_respond_ok(s, 1, "ok");
    H2S_EXPECT_ALIVE(s);
}

H2S_TEST(frames, rfc9113_6_5_2_unknown_settings_ignored,
         "§6.5.2/§5.5: unknown SETTINGS identifiers are ignored and ACKed")
{
    h2_setting set[] = {{0x0007, 12345}, {0x00ff, 0xffffffffu}, {0xffff, 0}, {0x0a0a, 1}};
    h2s_handshake_with(s, set, 4);
    h2s_settings(s, set, 4);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(s->server_acks_seen, 2u);
    get_roundtrip(s, 1, "/", "ok");
    H2S_EXPECT_ALIVE(s);
}

/* ============================================================================
 * 3. RFC 9113 §5.1: stream states, §5.1.1 identifiers, §5.1.2 concurrency
 * ========================================================================== */

H2S_TEST(states, rfc9113_5_1_data_on_idle, "§5.1: DATA on an idle stream is PROTOCOL_ERROR")
{
    h2s_handshake(s);
    get_roundtrip(s, 1, "/", "a");
    h2s_data(s, 3, "x", 1, true);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_PROTOCOL_ERROR);
    cr_expect_eq(h2s_goaway_last_id(s), 1);
}

H2S_TEST(states, rfc9113_5_1_headers_after_end_stream,
         "§5.1: HEADERS after the request's END_STREAM (half-closed remote) is STREAM_CLOSED")
{
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    req_ok(s, 1);
    /* Stream 1 is half-closed (remote): we have not answered yet. */
    h2s_headers(s, 1, H2S_KV({"x-late", "1"}), &(h2s_hopts){.end_stream = true});
    h2s_run(s);
    H2S_EXPECT_STREAM_ERROR(s, 1, H2_STREAM_CLOSED);
    const h2s_ev *r = h2s_ev_find(s, H2_EV_STREAM_RESET, 1);
    cr_assert_not_null(r, "[%s] the handler of stream 1 is told", s->mode_name);
    cr_expect_eq(r->code, H2_STREAM_CLOSED);
    cr_expect_not(r->remote);
    cr_expect_eq(h2s_ev_count(s, H2_EV_TRAILERS, 1), 0u);
    cr_expect_eq(h2s_respond(s, 1, 200, NULL, 0, true), H2_E_STATE);
    cr_expect_eq(h2s_detach(s, 1), H2_OK);
    get_roundtrip(s, 3, "/next", "b");
}

H2S_TEST(states, rfc9113_5_1_data_after_end_stream,
         "§5.1: DATA after the request's END_STREAM is STREAM_CLOSED")
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    h2s_data(s, 1, "abc", 3, true);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect(h2s_st(s, 1)->req_ended);
    h2s_data(s, 1, "more", 4, false);
    h2s_run(s);
    H2S_EXPECT_STREAM_ERROR(s, 1, H2_STREAM_CLOSED);
    size_t n = 0;
    h2s_req_body(s, 1, &n);
    cr_expect_eq(n, 3u, "[%s] bytes after END_STREAM are not delivered", s->mode_name);
    cr_expect_eq(h2s_detach(s, 1), H2_OK);
    get_roundtrip(s, 3, "/", "ok");
}

H2S_TEST(states, rfc9113_5_1_frames_after_our_reset_ignored,
         "§5.1 closed: frames on a stream we reset are ignored, before and after detach")
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", H2S_KV({"content-length", "3"}), false);
    h2s_data(s, 1, "abcdef", 6, false); /* more than content-length: we reset */
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(h2s_rst_code(s, 1), H2_PROTOCOL_ERROR);
    /* Frames the client sent before it saw our RST_STREAM. */
    h2s_data(s, 1, "gh", 2, false);
    h2s_window_update(s, 1, 100);
    h2s_priority(s, 1, 0, 10, false);
    h2s_headers(s, 1, H2S_KV({"x-trailer", "t"}), &(h2s_hopts){.end_stream = true});
    h2s_rst(s, 1, H2_CANCEL);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(h2s_detach(s, 1), H2_OK);
    h2s_data(s, 1, "ij", 2, true); /* after the engine forgot the stream */
    h2s_window_update(s, 1, 1);
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    cr_expect_eq(h2s_st(s, 1)->nrst, 1u, "[%s] exactly one RST_STREAM on stream 1", s->mode_name);
    cr_expect_eq(h2s_ev_count(s, H2_EV_TRAILERS, 1), 0u);
    get_roundtrip(s, 3, "/", "still here");
    H2S_EXPECT_ALIVE(s);
}

H2S_TEST(states, rfc9113_6_9_discarded_data_returns_connection_window,
         "§6.9: DATA discarded on a reset stream still counts, and its window comes back")
{
    h2_limits l = lim();
    l.connection_window = 65535;
    l.initial_window_size = 65535;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    uint8_t *buf = h2s_alloc(s, 16384);
    h2s_request(s, 1, "POST", "/", H2S_KV({"content-length", "1"}), false);
    h2s_data(s, 1, buf, 2, false); /* reset: content-length exceeded */
    for (int i = 0; i < 3; i++)
        h2s_data(s, 1, buf, 16384, false); /* in flight: discarded */
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(h2s_rst_code(s, 1), H2_PROTOCOL_ERROR);
    /* The client may send only what its connection window allows: the
     * server must have returned the discarded bytes. */
    int64_t w = h2s_client_conn_window(s);
    cr_expect_geq(w, 32768, "[%s] discarded DATA left the client a window of %lld", s->mode_name,
                  (long long)w);
    h2s_request(s, 3, "POST", "/2", NULL, 0, false);
    int64_t sent = 0;
    while (sent + 16384 <= w && sent + 16384 <= 65535) {
        h2s_data(s, 3, buf, 16384, false);
        sent += 16384;
    }
    h2s_data(s, 3, NULL, 0, true);
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    size_t n = 0;
    h2s_req_body(s, 3, &n);
    cr_expect_eq((int64_t)n, sent);
    H2S_EXPECT_ALIVE(s);
}

H2S_TEST(states, rfc9113_5_1_closed_stream_control_frames_ignored,
         "§5.1 closed: WINDOW_UPDATE, PRIORITY, RST_STREAM on a closed stream are ignored")
{
    h2s_handshake(s);
    get_roundtrip(s, 1, "/", "done");
    h2s_window_update(s, 1, 1000);
    h2s_priority(s, 1, 0, 200, true);
    h2s_rst(s, 1, H2_CANCEL);
    h2s_priority_update(s, 1, "u=0");
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    cr_expect_eq(h2s_count(s, H2_FT_RST_STREAM, H2S_ANY), 0u);
    get_roundtrip(s, 3, "/", "again");
    H2S_EXPECT_ALIVE(s);
}

static void idle_frame_case(h2s *s, int k)
{
    h2s_handshake(s);
    get_roundtrip(s, 1, "/", "a");
    if (k == 0)
        h2s_rst(s, 3, H2_CANCEL);
    else
        h2s_window_update(s, 5, 100);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_PROTOCOL_ERROR);
}

H2S_TEST(states, rfc9113_5_1_rst_and_window_update_on_idle,
         "§5.1 idle: RST_STREAM or WINDOW_UPDATE on an idle stream is PROTOCOL_ERROR")
{
    sub(s, idle_frame_case, 0);
    sub(s, idle_frame_case, 1);
}

H2S_TEST(states, rfc9113_5_1_priority_on_idle_allowed,
         "§5.1/§6.3: PRIORITY on an idle stream is allowed and does not open it")
{
    h2s_handshake(s);
    h2s_priority(s, 9, 0, 16, false);
    h2s_priority(s, 11, 9, 16, true);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(h2_conn_stream_count(s->c), 0u);
    /* A lower id is still usable: PRIORITY did not move the id watermark. */
    get_roundtrip(s, 1, "/", "a");
    get_roundtrip(s, 9, "/", "b");
    H2S_EXPECT_ALIVE(s);
}

static void idle_stream_error_case(h2s *s, int k)
{
    h2s_handshake(s);
    get_roundtrip(s, 1, "/", "a");
    switch (k) {
    case 0: { /* PRIORITY of the wrong length on an idle stream */
        uint8_t p[4] = {0, 0, 0, 0};
        h2s_frame_raw(s, H2_FT_PRIORITY, 0, 7, p, 4);
        break;
    }
    case 1: /* PRIORITY depending on itself, idle stream */ h2s_priority(s, 7, 7, 16, false); break;
    default: /* WINDOW_UPDATE with a zero increment on an idle stream */
        h2s_window_update(s, 7, 0);
        break;
    }
    h2s_run(s);
    h2s_drain(s);
    /* Stream 7 is idle for the client: an RST_STREAM on it is a connection
     * error for the client (§5.1 idle).  The harness oracle flags it; say so
     * here too. */
    cr_expect_eq(h2s_count(s, H2_FT_RST_STREAM, 7), 0u,
                 "[%s] case %d: server sent RST_STREAM on idle stream 7 (§5.1: the client must "
                 "treat it as a connection error)",
                 s->mode_name, k);
    /* Self-dependency (§5.3.1): a stream error that RST_STREAM cannot carry
     * on an idle stream, so a connection error (§5.4.1 allows it).
     * WINDOW_UPDATE on an idle stream: §5.1. */
    if (k >= 1)
        H2S_EXPECT_CONN_ERROR(s, H2_PROTOCOL_ERROR);
}

H2S_TEST(states, rfc9113_5_1_priority_error_on_idle_no_rst,
         "§5.1: a bad PRIORITY on an idle stream must not produce RST_STREAM on that idle stream")
{
    sub(s, idle_stream_error_case, 0);
    sub(s, idle_stream_error_case, 1);
}

H2S_TEST(states, rfc9113_5_1_window_update_zero_on_idle,
         "§5.1/§6.9: WINDOW_UPDATE (even with increment 0) on an idle stream is a connection "
         "PROTOCOL_ERROR, not RST_STREAM on the idle stream")
{
    sub(s, idle_stream_error_case, 2);
}

H2S_TEST(states, rfc9113_5_1_1_even_stream_id,
         "§5.1.1: a client HEADERS on an even id is PROTOCOL_ERROR")
{
    h2s_handshake(s);
    get_roundtrip(s, 1, "/", "a");
    h2s_get(s, 4, "/even");
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_PROTOCOL_ERROR);
    cr_expect_null(h2s_req(s, 4));
    cr_expect_eq(h2s_goaway_last_id(s), 1);
}

H2S_TEST(states, rfc9113_5_1_1_decreasing_stream_id,
         "§5.1.1: a new stream id lower than one already used is a connection error")
{
    h2s_handshake(s);
    h2s_get(s, 5, "/five");
    h2s_get(s, 3, "/three");
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR2(s, H2_PROTOCOL_ERROR, H2_STREAM_CLOSED);
    req_ok(s, 5);
    cr_expect_null(h2s_req(s, 3));
    cr_expect_eq(h2s_goaway_last_id(s), 5, "[%s] GOAWAY names stream 5 as processed", s->mode_name);
}

H2S_TEST(states, rfc9113_5_1_1_skipped_ids_are_closed,
         "§5.1.1: opening 7 implicitly closes 3 and 5; HEADERS on 3 later is a connection error")
{
    h2s_handshake(s);
    get_roundtrip(s, 1, "/", "a");
    get_roundtrip(s, 7, "/", "b");
    h2s_get(s, 3, "/late");
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR2(s, H2_PROTOCOL_ERROR, H2_STREAM_CLOSED);
}

H2S_TEST(states, rfc9113_5_1_reuse_of_closed_stream,
         "§5.1: HEADERS on a stream that finished is a connection error STREAM_CLOSED")
{
    h2s_handshake(s);
    get_roundtrip(s, 1, "/", "a");
    h2s_get(s, 1, "/again");
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR2(s, H2_STREAM_CLOSED, H2_PROTOCOL_ERROR);
}

H2S_TEST(states, rfc9113_5_1_2_refused_stream_keeps_hpack,
         "§5.1.2: the 101st concurrent stream gets REFUSED_STREAM; HPACK stays in step")
{
    h2s_handshake(s);
    char path[32];
    for (uint32_t i = 0; i < 100; i++) {
        snprintf(path, sizeof path, "/s%u", i);
        h2s_get(s, 1 + 2 * i, path);
    }
    /* The refused request inserts a new entry into the dynamic table. */
    h2s_request(s, 201, "GET", "/refused", H2S_KV({"x-refused", "table-entry"}), true);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(h2s_ev_count(s, H2_EV_REQUEST, H2S_ANY), 100u);
    cr_expect_eq(h2_conn_stream_count(s->c), 100u);
    H2S_EXPECT_STREAM_ERROR(s, 201, H2_REFUSED_STREAM);
    cr_expect_null(h2s_req(s, 201));
    cr_expect_eq(h2_conn_stats_get(s->c)->refused, 1u);
    /* Finish one stream: a slot frees up. */
    h2s_respond_ok(s, 1, "first");
    h2s_drain(s);
    cr_expect_eq(h2_conn_stream_count(s->c), 99u);
    /* The same field is now an indexed reference the server must resolve. */
    size_t before = h2s_mark(s);
    h2s_request(s, 203, "GET", "/refused", H2S_KV({"x-refused", "table-entry"}), true);
    size_t block = h2s_mark(s) - before - 9;
    cr_expect_leq(block, 6u, "[%s] the repeat should be fully indexed (%zu bytes)", s->mode_name,
                  block);
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    const h2s_ev *e = req_ok(s, 203);
    cr_expect_str_eq(e->path, "/refused");
    const char *v = h2s_field_get(e->fields, e->nfields, "x-refused");
    cr_expect(v && strcmp(v, "table-entry") == 0, "[%s] x-refused = %s", s->mode_name,
              v ? v : "(missing)");
    h2s_respond_ok(s, 203, "ok");
    h2s_drain(s);
    cr_expect_eq(h2s_status(s, 203), 200);
}

/* ============================================================================
 * 4. RFC 9113 §5.4: error handling
 * ========================================================================== */

H2S_TEST(errors, rfc9113_5_4_2_stream_error_isolated,
         "§5.4.2: a stream error resets only that stream; the others complete")
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/upload", NULL, 0, false);
    h2s_data(s, 1, "part1", 5, false);
    h2s_get(s, 3, "/three");
    h2s_request(s, 5, "GET", "/bad", H2S_KV({"connection", "keep-alive"}), true); /* malformed */
    h2s_data(s, 1, "part2", 5, true);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(h2s_rst_code(s, 5), H2_PROTOCOL_ERROR);
    cr_expect_null(h2s_req(s, 5));
    size_t n = 0;
    const uint8_t *b = h2s_req_body(s, 1, &n);
    cr_expect(n == 10 && memcmp(b, "part1part2", 10) == 0);
    h2s_respond_ok(s, 3, "three");
    h2s_respond_ok(s, 1, "one");
    h2s_drain(s);
    cr_expect_eq(h2s_status(s, 1), 200);
    cr_expect_eq(h2s_status(s, 3), 200);
    cr_expect_eq(h2s_count(s, H2_FT_RST_STREAM, H2S_ANY), 1u);
    H2S_EXPECT_STREAM_ERROR(s, 5, H2_PROTOCOL_ERROR);
}

H2S_TEST(errors, rfc9113_5_4_2_no_frames_after_rst,
         "§5.4.2: after a stream error the server sends nothing more on that stream")
{
    h2s_handshake(s);
    h2s_get(s, 1, "/big");
    h2s_get(s, 3, "/small");
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2s_respond(s, 1, 200, NULL, 0, false), H2_OK);
    uint8_t *body = h2s_alloc(s, 200000);
    h2s_pattern(body, 200000, 1);
    cr_assert_eq(h2s_send_body(s, 1, body, 200000, 4, true), H2_OK);
    h2s_respond_ok(s, 3, "small");
    h2s_drain(s); /* 65535 bytes of stream 1 go out, the windows close */
    size_t sent = 0;
    h2s_body(s, 1, &sent);
    cr_expect_gt(sent, 0u);
    /* Stream 1's window overflows: a stream error, mid-body. */
    h2s_window_update(s, 1, 0x7fffffffu);
    h2s_window_update(s, 0, 1000000);
    h2s_run(s);
    H2S_EXPECT_STREAM_ERROR(s, 1, H2_FLOW_CONTROL_ERROR);
    size_t after = 0;
    h2s_body(s, 1, &after);
    cr_expect_eq(after, sent, "[%s] DATA on stream 1 after its RST_STREAM", s->mode_name);
    cr_expect_eq(h2s_status(s, 3), 200);
    const h2s_ev *r = h2s_ev_find(s, H2_EV_STREAM_RESET, 1);
    cr_assert_not_null(r);
    cr_expect_eq(r->code, H2_FLOW_CONTROL_ERROR);
    cr_expect_eq(h2s_send_body(s, 1, "x", 1, 1, true), H2_E_STATE);
    cr_expect_eq(h2s_detach(s, 1), H2_OK);
    /* Every chunk was released (checked at fini) */
}

H2S_TEST(errors, rfc9113_5_4_1_goaway_last_processed_id,
         "§5.4.1/§6.8: the error GOAWAY carries the highest stream id processed")
{
    h2s_handshake(s);
    get_roundtrip(s, 1, "/", "a");
    h2s_get(s, 3, "/");
    h2s_request(s, 5, "POST", "/", NULL, 0, false);
    cr_assert_eq(h2s_run(s), H2_OK);
    /* A connection error while 3 and 5 are open. */
    h2s_frame_raw(s, H2_FT_PING, 0, 0, "short", 5);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_FRAME_SIZE_ERROR);
    cr_expect_eq(h2s_goaway_last_id(s), 5);
    cr_expect_eq(h2s_count(s, H2_FT_GOAWAY, 0), 1u);
    const h2s_frame *g = h2s_last(s, H2_FT_GOAWAY, 0);
    cr_expect_gt(g->f.u.goaway.debug_len, 0u, "debug data says why");
    /* The application can no longer respond. */
    cr_expect_eq(h2s_respond(s, 3, 200, NULL, 0, true), H2_E_CLOSED);
    cr_expect_eq(h2s_detach(s, 3), H2_OK);
    cr_expect_eq(h2s_detach(s, 5), H2_OK);
    cr_expect_eq(h2_conn_stream_count(s->c), 0u);
}

H2S_TEST(errors, rfc9113_6_8_goaway_last_id_excludes_refused,
         "§6.8: a stream we refused or reset is not reported as processed")
{
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    h2s_get(s, 3, "/");
    h2s_request(s, 5, "GET", "/", H2S_KV({"te", "gzip"}), true); /* malformed: reset */
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(h2s_rst_code(s, 5), H2_PROTOCOL_ERROR);
    h2s_goaway(s, 0, H2_NO_ERROR, NULL);
    h2s_window_update(s, 0, 0); /* connection error */
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_PROTOCOL_ERROR);
    int64_t last = h2s_goaway_last_id(s);
    cr_expect(last >= 3 && last <= 5, "[%s] GOAWAY last-stream-id %lld, want 3 (or 5)",
              s->mode_name, (long long)last);
}

/* ============================================================================
 * 5. RFC 9113 §6: frame definitions, through the engine
 * ========================================================================== */

/* --- §6.1 DATA --------------------------------------------------------------- */

H2S_TEST(data, rfc9113_6_1_padding, "§6.1: padding is stripped, counted for flow control only")
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", H2S_KV({"content-length", "9"}), false);
    h2s_data_padded(s, 1, "abc", 3, 200, false);
    h2s_data_padded(s, 1, "defg", 4, 0, false); /* PADDED with Pad Length 0 */
    h2s_data_padded(s, 1, NULL, 0, 7, false);   /* only padding: an empty frame */
    h2s_data_padded(s, 1, "hi", 2, 255, true);
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    size_t n = 0;
    const uint8_t *b = h2s_req_body(s, 1, &n);
    cr_expect(n == 9 && memcmp(b, "abcdefghi", 9) == 0, "[%s] body %zu bytes", s->mode_name, n);
    cr_expect(h2s_st(s, 1)->req_ended);
    h2s_respond_ok(s, 1, "ok");
    H2S_EXPECT_ALIVE(s);
    cr_expect_eq(h2s_status(s, 1), 200);
}

static void data_pad_case(h2s *s, int k)
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    static const uint8_t p0[] = {3, 'a', 'b'}; /* pad 3 > 2 remaining */
    static const uint8_t p1[] = {2, 'a'};      /* pad 2 == payload length */
    static const uint8_t p2[] = {255};         /* pad 255, payload 1 */
    const uint8_t *p = k == 0 ? p0 : k == 1 ? p1 : p2;
    size_t len = k == 0 ? sizeof p0 : k == 1 ? sizeof p1 : sizeof p2;
    h2s_frame_raw(s, H2_FT_DATA, H2_FLAG_PADDED, 1, p, len);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_PROTOCOL_ERROR);
    cr_expect_eq(h2s_goaway_last_id(s), 1);
}

H2S_TEST(data, rfc9113_6_1_pad_too_large,
         "§6.1: padding as long as the payload or longer is PROTOCOL_ERROR")
{
    for (int k = 0; k < 3; k++)
        sub(s, data_pad_case, k);
}

H2S_TEST(data, rfc9113_6_1_padded_without_pad_length,
         "§6.1/§4.2: a PADDED DATA frame too short for Pad Length is a connection error")
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    h2s_frame_raw(s, H2_FT_DATA, H2_FLAG_PADDED, 1, NULL, 0);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR2(s, H2_FRAME_SIZE_ERROR, H2_PROTOCOL_ERROR);
}

H2S_TEST(data, rfc9113_6_1_data_on_stream_0, "§6.1: DATA on stream 0 is PROTOCOL_ERROR")
{
    h2s_handshake(s);
    h2s_frame_raw(s, H2_FT_DATA, 0, 0, "abc", 3);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_PROTOCOL_ERROR);
}

H2S_TEST(data, rfc9113_6_9_1_stream_window_exceeded,
         "§6.9.1: DATA beyond the stream window is a stream FLOW_CONTROL_ERROR")
{
    h2s_handshake(s);
    cr_expect_eq(h2s_client_stream_window(s, 1), 262144);
    uint8_t *buf = h2s_alloc(s, 16384);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    h2s_get(s, 3, "/other");
    for (int i = 0; i < 16; i++)
        h2s_data(s, 1, buf, 16384, false); /* exactly the window */
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] the full window is usable: %s", s->mode_name,
                 h2_conn_fault(s->c).reason);
    cr_expect_eq(h2s_client_stream_window(s, 1), 0);
    h2s_data(s, 1, buf, 1, false);
    h2s_run(s);
    H2S_EXPECT_STREAM_ERROR(s, 1, H2_FLOW_CONTROL_ERROR);
    size_t n = 0;
    h2s_req_body(s, 1, &n);
    cr_expect_eq(n, 262144u, "[%s] the offending byte is not delivered", s->mode_name);
    h2s_respond_ok(s, 3, "other");
    h2s_drain(s);
    cr_expect_eq(h2s_status(s, 3), 200);
}

H2S_TEST(data, rfc9113_6_9_1_connection_window_exceeded,
         "§6.9.1: DATA beyond the connection window is a connection FLOW_CONTROL_ERROR")
{
    h2_limits l = lim();
    l.connection_window = 65535;
    l.initial_window_size = 65535;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    cr_expect_null(h2s_find(s, H2_FT_WINDOW_UPDATE, 0),
                   "no connection WINDOW_UPDATE when the window is the default");
    uint8_t *buf = h2s_alloc(s, 40000);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    h2s_request(s, 3, "POST", "/", NULL, 0, false);
    data_split(s, 1, buf, 40000, false);
    data_split(s, 3, buf, 25535, false); /* exactly the connection window */
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    h2s_data(s, 3, buf, 1, false);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_FLOW_CONTROL_ERROR);
}

/* --- §6.2 HEADERS, §6.3 PRIORITY, §6.4 RST_STREAM ----------------------------- */

H2S_TEST(headers, rfc9113_6_2_padded_and_priority,
         "§6.2: HEADERS with PADDED and PRIORITY decode; the priority is ignored")
{
    h2s_handshake(s);
    h2s_hopts o = {.end_stream = true,
                   .padded = true,
                   .pad_len = 37,
                   .priority = true,
                   .dep = 0,
                   .weight = 200,
                   .exclusive = true};
    h2s_headers(s, 1,
                H2S_KV({":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"},
                       {":path", "/padprio"}, {"x-a", "b"}),
                &o);
    h2s_hopts o2 = {
        .end_stream = true, .padded = true, .pad_len = 0, .priority = true, .dep = 1, .weight = 0};
    h2s_headers(s, 3,
                H2S_KV({":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"},
                       {":path", "/dep-on-1"}),
                &o2);
    h2s_hopts o3 = {.end_stream = true, .padded = true, .pad_len = 255, .continuations = 2};
    h2s_headers(s, 5,
                H2S_KV({":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"},
                       {":path", "/padded-cont"}),
                &o3);
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    const h2s_ev *e = req_ok(s, 1);
    cr_expect_str_eq(e->path, "/padprio");
    cr_expect_str_eq(h2s_field_get(e->fields, e->nfields, "x-a"), "b");
    cr_expect(e->end_stream);
    cr_expect_str_eq(req_ok(s, 3)->path, "/dep-on-1");
    cr_expect_str_eq(req_ok(s, 5)->path, "/padded-cont");
    H2S_EXPECT_ALIVE(s);
}

H2S_TEST(headers, rfc9113_6_2_padded_headers_pad_too_large,
         "§6.2: HEADERS padding covering the block is PROTOCOL_ERROR")
{
    h2s_handshake(s);
    uint8_t blk[64];
    size_t n = h2s_hpack_min_request(blk + 1);
    blk[0] = (uint8_t)(n + 1); /* pad length past the payload */
    h2s_frame_raw(s, H2_FT_HEADERS, H2_FLAG_PADDED | H2_FLAG_END_HEADERS | H2_FLAG_END_STREAM, 1,
                  blk, n + 1);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_PROTOCOL_ERROR);
}

H2S_TEST(headers, rfc9113_5_3_1_self_dependency_keeps_hpack,
         "§5.3.1/§4.3: a HEADERS depending on itself is a stream PROTOCOL_ERROR; its block "
         "still updates the HPACK table")
{
    h2s_handshake(s);
    h2s_hopts o = {.end_stream = true, .priority = true, .dep = 1, .weight = 16};
    h2s_headers(s, 1,
                H2S_KV({":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"},
                       {":path", "/self"}, {"x-self", "inserted-by-stream-1"}),
                &o);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_null(h2s_req(s, 1));
    H2S_EXPECT_STREAM_ERROR(s, 1, H2_PROTOCOL_ERROR);
    size_t before = h2s_mark(s);
    h2s_request(s, 3, "GET", "/self", H2S_KV({"x-self", "inserted-by-stream-1"}), true);
    cr_expect_leq(h2s_mark(s) - before - 9, 6u, "the repeat is indexed");
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    const h2s_ev *e = req_ok(s, 3);
    cr_expect_str_eq(e->path, "/self");
    const char *v = h2s_field_get(e->fields, e->nfields, "x-self");
    cr_expect(v && strcmp(v, "inserted-by-stream-1") == 0);
}

H2S_TEST(headers, rfc9113_5_3_1_priority_self_dependency_open_stream,
         "§5.3.1: a PRIORITY frame making an open stream depend on itself resets it")
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    h2s_priority(s, 1, 1, 16, false);
    h2s_run(s);
    H2S_EXPECT_STREAM_ERROR(s, 1, H2_PROTOCOL_ERROR);
    cr_expect_eq(h2s_ev_count(s, H2_EV_STREAM_RESET, 1), 1u);
}

H2S_TEST(headers, rfc9113_5_3_1_priority_self_dependency_idle,
         "h2spec http2/5.3.1/2: a PRIORITY frame making an idle stream depend on itself is "
         "answered with PROTOCOL_ERROR (GOAWAY: RST_STREAM must not name an idle stream)")
{
    h2s_handshake(s);
    h2s_priority(s, 1, 1, 255, false);
    h2s_run(s);
    cr_expect_eq(h2s_count(s, H2_FT_RST_STREAM, 1), 0u);
    H2S_EXPECT_CONN_ERROR(s, H2_PROTOCOL_ERROR);
}

H2S_TEST(headers, rfc9113_5_3_1_priority_self_dependency_closed_stream,
         "§5.3.1: a PRIORITY frame making a closed stream depend on itself is a stream "
         "PROTOCOL_ERROR")
{
    h2s_handshake(s);
    get_roundtrip(s, 1, "/", "a");
    h2s_priority(s, 1, 1, 16, false);
    h2s_run(s);
    H2S_EXPECT_STREAM_ERROR(s, 1, H2_PROTOCOL_ERROR);
}

H2S_TEST(headers, rfc9113_6_3_priority_bad_length,
         "§6.3: a PRIORITY frame not 5 octets long is a stream FRAME_SIZE_ERROR")
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    h2s_get(s, 3, "/");
    uint8_t p[6] = {0, 0, 0, 0, 16, 0};
    h2s_frame_raw(s, H2_FT_PRIORITY, 0, 1, p, 6);
    h2s_run(s);
    H2S_EXPECT_STREAM_ERROR(s, 1, H2_FRAME_SIZE_ERROR);
    h2s_respond_ok(s, 3, "fine");
    h2s_drain(s);
    cr_expect_eq(h2s_status(s, 3), 200);
}

static void rst_len_case(h2s *s, int k)
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    uint8_t p[5] = {0, 0, 0, 8, 0};
    h2s_frame_raw(s, H2_FT_RST_STREAM, 0, 1, p, k == 0 ? 3u : 5u);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_FRAME_SIZE_ERROR);
}

H2S_TEST(headers, rfc9113_6_4_rst_stream_bad_length,
         "§6.4: an RST_STREAM not 4 octets long is FRAME_SIZE_ERROR")
{
    sub(s, rst_len_case, 0);
    sub(s, rst_len_case, 1);
}

H2S_TEST(headers, rfc9113_6_4_rst_stream_on_stream_0,
         "§6.4: RST_STREAM on stream 0 is PROTOCOL_ERROR")
{
    h2s_handshake(s);
    h2s_rst(s, 0, H2_CANCEL);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_PROTOCOL_ERROR);
}

H2S_TEST(headers, rfc9113_6_4_peer_reset_stops_response,
         "§6.4: the peer's RST_STREAM stops the response and reaches the handler once")
{
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2s_respond(s, 1, 200, NULL, 0, false), H2_OK);
    uint8_t *body = h2s_alloc(s, 100000);
    cr_assert_eq(h2s_send_body(s, 1, body, 100000, 3, false), H2_OK);
    h2s_drain(s);
    h2s_rst(s, 1, H2_CANCEL);
    h2s_rst(s, 1, H2_CANCEL); /* a second one is harmless */
    cr_assert_eq(h2s_run(s), H2_OK);
    const h2s_ev *r = h2s_ev_find(s, H2_EV_STREAM_RESET, 1);
    cr_assert_not_null(r);
    cr_expect_eq(r->code, H2_CANCEL);
    cr_expect(r->remote);
    cr_expect_eq(h2s_ev_count(s, H2_EV_STREAM_RESET, 1), 1u);
    cr_expect_eq(h2s_count(s, H2_FT_RST_STREAM, 1), 0u, "no RST_STREAM answers an RST_STREAM");
    cr_expect_eq(h2s_send_body(s, 1, body, 10, 1, true), H2_E_STATE);
    cr_expect_eq(h2s_detach(s, 1), H2_OK);
    cr_expect_eq(h2_conn_stream_count(s->c), 0u);
    H2S_EXPECT_ALIVE(s);
}

/* --- §6.5 SETTINGS ------------------------------------------------------------- */

static void bad_settings_case(h2s *s, int k)
{
    static const struct {
        uint16_t id;
        uint32_t value;
        uint32_t code;
    } bad[] = {
        {H2_SET_ENABLE_PUSH, 2, H2_PROTOCOL_ERROR},
        {H2_SET_INITIAL_WINDOW_SIZE, 0x80000000u, H2_FLOW_CONTROL_ERROR},
        {H2_SET_INITIAL_WINDOW_SIZE, 0xffffffffu, H2_FLOW_CONTROL_ERROR},
        {H2_SET_MAX_FRAME_SIZE, 16383, H2_PROTOCOL_ERROR},
        {H2_SET_MAX_FRAME_SIZE, 1u << 24, H2_PROTOCOL_ERROR},
        {H2_SET_MAX_FRAME_SIZE, 0, H2_PROTOCOL_ERROR},
        {H2_SET_ENABLE_CONNECT_PROTOCOL, 2, H2_PROTOCOL_ERROR},
    };
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    h2_setting set[2] = {{H2_SET_HEADER_TABLE_SIZE, 4096}, {bad[k].id, bad[k].value}};
    h2s_settings(s, set, 2);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, bad[k].code);
    cr_expect_eq(s->server_acks_seen, 1u, "[%s] case %d: an invalid SETTINGS is not ACKed",
                 s->mode_name, k);
}

H2S_TEST(settings, rfc9113_6_5_2_invalid_values,
         "§6.5.2: ENABLE_PUSH>1, INITIAL_WINDOW_SIZE>2^31-1, MAX_FRAME_SIZE out of range")
{
    for (int k = 0; k < 7; k++)
        sub(s, bad_settings_case, k);
}

H2S_TEST(settings, rfc9113_6_5_2_boundary_values_accepted,
         "§6.5.2: the extreme legal values are accepted")
{
    h2_setting set[] = {{H2_SET_ENABLE_PUSH, 1},
                        {H2_SET_ENABLE_PUSH, 0},
                        {H2_SET_INITIAL_WINDOW_SIZE, 0x7fffffffu},
                        {H2_SET_MAX_FRAME_SIZE, 16384},
                        {H2_SET_MAX_FRAME_SIZE, (1u << 24) - 1},
                        {H2_SET_HEADER_TABLE_SIZE, 0xffffffffu},
                        {H2_SET_MAX_CONCURRENT_STREAMS, 0},
                        {H2_SET_MAX_HEADER_LIST_SIZE, 0xffffffffu},
                        {H2_SET_NO_RFC7540_PRIORITIES, 1}};
    h2s_handshake_with(s, set, sizeof set / sizeof set[0]);
    get_roundtrip(s, 1, "/", "boundaries");
    H2S_EXPECT_ALIVE(s);
}

static void settings_frame_case(h2s *s, int k)
{
    h2s_handshake(s);
    uint8_t p[12] = {0, 1, 0, 0, 16, 0, 0, 3, 0, 0, 0, 10};
    switch (k) {
    case 0: /* ACK with a payload */ h2s_frame_raw(s, H2_FT_SETTINGS, H2_FLAG_ACK, 0, p, 6); break;
    case 1: /* length not a multiple of 6 */ h2s_frame_raw(s, H2_FT_SETTINGS, 0, 0, p, 5); break;
    case 2: h2s_frame_raw(s, H2_FT_SETTINGS, 0, 0, p, 7); break;
    default: /* on a stream */ h2s_frame_raw(s, H2_FT_SETTINGS, 0, 1, p, 6); break;
    }
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, k == 3 ? H2_PROTOCOL_ERROR : H2_FRAME_SIZE_ERROR);
}

H2S_TEST(
    settings, rfc9113_6_5_frame_format,
    "§6.5: ACK with payload and length %% 6 are FRAME_SIZE_ERROR; non-zero stream PROTOCOL_ERROR")
{
    for (int k = 0; k < 4; k++)
        sub(s, settings_frame_case, k);
}

H2S_TEST(settings, rfc9113_6_5_3_ack_every_settings,
         "§6.5.3: every SETTINGS frame gets exactly one ACK, in order")
{
    h2s_handshake(s);
    for (uint32_t i = 0; i < 5; i++) {
        h2_setting set = {H2_SET_MAX_HEADER_LIST_SIZE, 1000 + i};
        h2s_settings(s, i % 2 ? &set : NULL, i % 2 ? 1 : 0);
    }
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(s->server_acks_seen, 6u, "[%s] %u ACKs for 6 SETTINGS", s->mode_name,
                 s->server_acks_seen);
    H2S_EXPECT_ALIVE(s);
}

static void many_entries_case(h2s *s, int k)
{
    h2s_handshake(s);
    uint32_t n = k == 0 ? 32u : 33u;
    h2_setting set[40];
    for (uint32_t i = 0; i < n; i++)
        set[i] = (h2_setting){H2_SET_MAX_HEADER_LIST_SIZE, 16384 + i};
    h2s_settings(s, set, n);
    h2s_run(s);
    if (k == 0) {
        cr_expect_eq(s->first_err, H2_OK);
        cr_expect_eq(s->server_acks_seen, 2u);
        H2S_EXPECT_ALIVE(s);
    } else {
        H2S_EXPECT_CONN_ERROR(s, H2_ENHANCE_YOUR_CALM);
        cr_expect_eq(s->server_acks_seen, 1u);
    }
}

H2S_TEST(settings, security_settings_entries_cap,
         "security.md (CVE-2019-9515): 32 SETTINGS entries are fine, 33 are ENHANCE_YOUR_CALM")
{
    sub(s, many_entries_case, 0);
    sub(s, many_entries_case, 1);
}

H2S_TEST(settings, rfc7541_4_2_peer_header_table_size_zero,
         "§6.5.2/RFC 7541 §4.2: the peer's HEADER_TABLE_SIZE 0 is honoured by our encoder")
{
    h2_setting set = {H2_SET_HEADER_TABLE_SIZE, 0};
    h2s_handshake_with(s, &set, 1);
    for (uint32_t i = 0; i < 3; i++) {
        uint32_t sid = 1 + 2 * i;
        h2s_get(s, sid, "/");
        cr_assert_eq(h2s_run(s), H2_OK);
        cr_assert_eq(
            h2s_respond(s, sid, 200,
                        H2S_KV({"x-custom", "value-that-would-be-indexed"}, {"server", "spindle"}),
                        true),
            H2_OK);
        h2s_detach(s, sid);
        h2s_drain(s);
        cr_expect_eq(h2s_status(s, sid), 200);
        cr_expect_str_eq(h2s_resp_field(s, sid, "x-custom"), "value-that-would-be-indexed");
    }
    cr_expect_eq(s->violations, 0u);
}

/* --- §6.7 PING ------------------------------------------------------------------- */

H2S_TEST(ping, rfc9113_6_7_echo, "§6.7: a PING is answered by an ACK with the same payload")
{
    h2s_handshake(s);
    for (uint64_t i = 0; i < 4; i++)
        h2s_ping_n(s, 0x0102030405060708ull * (i + 1));
    cr_assert_eq(h2s_run(s), H2_OK);
    size_t acks = count_flags(s, H2_FT_PING, 0, H2_FLAG_ACK);
    cr_expect_eq(acks, 4u);
    /* In order: */
    uint64_t want = 1;
    for (size_t i = 0; i < s->nframes; i++) {
        const h2s_frame *f = &s->frames[i];
        if (f->hdr.type != H2_FT_PING)
            continue;
        uint64_t v = 0;
        for (int b = 0; b < 8; b++)
            v = v << 8 | f->f.u.ping[b];
        cr_expect_eq(v, 0x0102030405060708ull * want, "[%s] ACK %llu out of order", s->mode_name,
                     (unsigned long long)want);
        want++;
    }
    /* A PING ACK we did not ask for produces an event, nothing on the wire. */
    size_t before = s->nframes;
    uint8_t op[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    h2s_ping(s, true, op);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(s->nframes, before);
}

H2S_TEST(ping, rfc9113_6_7_our_ping_acked, "§6.7: h2_conn_ping's ACK comes back as H2_EV_PING_ACK")
{
    h2s_handshake(s);
    const uint8_t op[8] = {'s', 'p', 'i', 'n', 'd', 'l', 'e', '!'};
    cr_assert_eq(h2_conn_ping(s->c, op), H2_OK);
    h2s_drain(s);
    const h2s_frame *p = h2s_last(s, H2_FT_PING, 0);
    cr_assert_not_null(p);
    cr_expect_eq(p->hdr.flags & H2_FLAG_ACK, 0);
    cr_expect_arr_eq(p->f.u.ping, op, 8);
    h2s_ping(s, true, op);
    cr_assert_eq(h2s_run(s), H2_OK);
    const h2s_ev *e = h2s_ev_find(s, H2_EV_PING_ACK, 0);
    cr_assert_not_null(e);
    cr_expect_arr_eq(e->ping, op, 8);
}

static void ping_bad_case(h2s *s, int k)
{
    h2s_handshake(s);
    uint8_t p[9] = {0};
    if (k == 0)
        h2s_frame_raw(s, H2_FT_PING, 0, 0, p, 7);
    else if (k == 1)
        h2s_frame_raw(s, H2_FT_PING, 0, 0, p, 9);
    else if (k == 2)
        h2s_frame_raw(s, H2_FT_PING, H2_FLAG_ACK, 0, p, 0);
    else
        h2s_frame_raw(s, H2_FT_PING, 0, 1, p, 8);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, k == 3 ? H2_PROTOCOL_ERROR : H2_FRAME_SIZE_ERROR);
    cr_expect_eq(count_flags(s, H2_FT_PING, H2S_ANY, H2_FLAG_ACK), 0u);
}

H2S_TEST(ping, rfc9113_6_7_bad_length_or_stream,
         "§6.7: a PING not 8 octets is FRAME_SIZE_ERROR; on a stream PROTOCOL_ERROR")
{
    for (int k = 0; k < 4; k++)
        sub(s, ping_bad_case, k);
}

/* --- §6.8 GOAWAY ----------------------------------------------------------------- */

H2S_TEST(goaway, rfc9113_6_8_peer_goaway,
         "§6.8: the peer's GOAWAY is an event; open streams finish")
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    h2s_get(s, 3, "/");
    h2s_goaway(s, 0, H2_NO_ERROR, "bye now");
    h2s_data(s, 1, "tail", 4, true); /* a stream it started still finishes */
    cr_assert_eq(h2s_run(s), H2_OK);
    const h2s_ev *g = h2s_ev_find(s, H2_EV_GOAWAY, 0);
    cr_assert_not_null(g);
    cr_expect_eq(g->last_stream_id, 0u);
    cr_expect_eq(g->code, H2_NO_ERROR);
    cr_expect(g->len == 7 && memcmp(g->data, "bye now", 7) == 0);
    size_t n = 0;
    h2s_req_body(s, 1, &n);
    cr_expect_eq(n, 4u);
    cr_expect_not(h2_conn_is_done(s->c), "streams are still open");
    h2s_respond_ok(s, 1, "one");
    h2s_drain(s);
    cr_expect_not(h2_conn_is_done(s->c), "stream 3 is still open");
    h2s_respond_ok(s, 3, "three");
    h2s_drain(s);
    cr_expect_eq(h2s_status(s, 1), 200);
    cr_expect_eq(h2s_status(s, 3), 200);
    cr_expect(h2_conn_is_done(s->c), "[%s] GOAWAY received and every stream finished",
              s->mode_name);
    cr_expect_eq(s->first_err, H2_OK);
}

static void goaway_bad_case(h2s *s, int k)
{
    h2s_handshake(s);
    uint8_t p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (k == 0)
        h2s_frame_raw(s, H2_FT_GOAWAY, 0, 1, p, 8);
    else
        h2s_frame_raw(s, H2_FT_GOAWAY, 0, 0, p, 7);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, k == 0 ? H2_PROTOCOL_ERROR : H2_FRAME_SIZE_ERROR);
}

H2S_TEST(goaway, rfc9113_6_8_bad_goaway, "§6.8: GOAWAY on a stream or shorter than 8 octets")
{
    sub(s, goaway_bad_case, 0);
    sub(s, goaway_bad_case, 1);
}

/* --- §6.9 WINDOW_UPDATE ------------------------------------------------------------ */

H2S_TEST(window, rfc9113_6_9_zero_increment_stream,
         "§6.9: a zero increment on a stream is a stream PROTOCOL_ERROR")
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    h2s_get(s, 3, "/");
    h2s_window_update(s, 1, 0);
    h2s_run(s);
    H2S_EXPECT_STREAM_ERROR(s, 1, H2_PROTOCOL_ERROR);
    h2s_respond_ok(s, 3, "ok");
    h2s_drain(s);
    cr_expect_eq(h2s_status(s, 3), 200);
}

H2S_TEST(window, rfc9113_6_9_zero_increment_connection,
         "§6.9: a zero increment on the connection is a connection PROTOCOL_ERROR")
{
    h2s_handshake(s);
    h2s_window_update(s, 0, 0);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_PROTOCOL_ERROR);
}

H2S_TEST(window, rfc9113_6_9_1_overflow_stream,
         "§6.9.1: a stream window above 2^31-1 is a stream FLOW_CONTROL_ERROR")
{
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    h2s_get(s, 3, "/");
    h2s_window_update(s, 1, 0x7fffffffu - 65535u); /* exactly 2^31-1: legal */
    h2s_window_update(s, 3, 0x7fffffffu - 65535u);
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    cr_expect_eq(h2s_count(s, H2_FT_RST_STREAM, H2S_ANY), 0u);
    h2s_window_update(s, 1, 1);
    h2s_run(s);
    H2S_EXPECT_STREAM_ERROR(s, 1, H2_FLOW_CONTROL_ERROR);
    h2s_respond_ok(s, 3, "fine");
    h2s_drain(s);
    cr_expect_eq(h2s_status(s, 3), 200);
}

H2S_TEST(window, rfc9113_6_9_1_overflow_connection,
         "§6.9.1: a connection window above 2^31-1 is a connection FLOW_CONTROL_ERROR")
{
    h2s_handshake(s);
    h2s_window_update(s, 0, 0x7fffffffu - 65535u);
    cr_assert_eq(h2s_run(s), H2_OK);
    h2s_window_update(s, 0, 1);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_FLOW_CONTROL_ERROR);
}

H2S_TEST(window, rfc9113_6_9_bad_length, "§6.9: a WINDOW_UPDATE not 4 octets is FRAME_SIZE_ERROR")
{
    h2s_handshake(s);
    uint8_t p[5] = {0, 0, 1, 0, 0};
    h2s_frame_raw(s, H2_FT_WINDOW_UPDATE, 0, 0, p, 5);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_FRAME_SIZE_ERROR);
}

H2S_TEST(window, rfc9113_6_9_reserved_bit_ignored,
         "§6.9: the reserved bit of the increment is ignored")
{
    h2_setting set = {H2_SET_INITIAL_WINDOW_SIZE, 0};
    h2s_handshake_with(s, &set, 1);
    h2s_get(s, 1, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2s_respond(s, 1, 200, NULL, 0, false), H2_OK);
    cr_assert_eq(h2s_send_body(s, 1, "0123456789", 10, 1, true), H2_OK);
    h2s_drain(s);
    uint8_t p[4] = {0x80, 0, 0, 4}; /* R=1, increment 4 */
    h2s_frame_raw(s, H2_FT_WINDOW_UPDATE, 0, 1, p, 4);
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    size_t n = 0;
    h2s_body(s, 1, &n);
    cr_expect_eq(n, 4u, "[%s] increment 4 releases 4 bytes (got %zu)", s->mode_name, n);
    const h2s_ev *e = h2s_ev_find(s, H2_EV_WINDOW_UPDATE, 1);
    cr_assert_not_null(e);
    cr_expect_eq(e->increment, 4u);
}

/* --- §6.9.2 initial window changes ------------------------------------------------- */

static void expect_body(h2s *s, uint32_t sid, const uint8_t *want, size_t len)
{
    size_t n = 0;
    const uint8_t *b = h2s_body(s, sid, &n);
    cr_expect_eq(n, len, "[%s] stream %u: %zu body bytes, want %zu", s->mode_name, sid, n, len);
    if (n == len)
        cr_expect(len == 0 || memcmp(b, want, len) == 0, "[%s] stream %u: body differs",
                  s->mode_name, sid);
}

H2S_TEST(window, rfc9113_6_9_2_initial_window_to_zero_stalls_and_resumes,
         "§6.9.2: INITIAL_WINDOW_SIZE 0 stalls a response; raising it resumes byte-exact")
{
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    h2_setting zero = {H2_SET_INITIAL_WINDOW_SIZE, 0};
    h2s_settings(s, &zero, 1);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2s_respond(s, 1, 200, H2S_KV({"content-length", "50000"}), false), H2_OK);
    uint8_t *body = h2s_alloc(s, 50000);
    h2s_pattern(body, 50000, 11);
    cr_assert_eq(h2s_send_body(s, 1, body, 50000, 3, true), H2_OK);
    h2s_drain(s);
    cr_expect_eq(h2s_status(s, 1), 200, "the head is not flow controlled");
    expect_body(s, 1, body, 0);
    cr_expect_not(h2_conn_want_write(s->c), "nothing can be sent at window 0");
    cr_expect_eq(h2_conn_stream_buffered(s->c, 1), 50000u);
    h2_setting up = {H2_SET_INITIAL_WINDOW_SIZE, 20000};
    h2s_settings(s, &up, 1);
    cr_assert_eq(h2s_run(s), H2_OK);
    expect_body(s, 1, body, 20000);
    h2s_window_update(s, 1, 30000);
    cr_assert_eq(h2s_run(s), H2_OK);
    expect_body(s, 1, body, 50000);
    cr_expect(h2s_st(s, 1)->ended);
}

H2S_TEST(window, rfc9113_6_9_2_negative_window,
         "§6.9.2: lowering INITIAL_WINDOW_SIZE mid-response can make the window negative")
{
    h2s_handshake(s);
    h2s_window_update(s, 0, 1000000);
    h2s_get(s, 1, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2s_respond(s, 1, 200, NULL, 0, false), H2_OK);
    uint8_t *body = h2s_alloc(s, 100000);
    h2s_pattern(body, 100000, 5);
    cr_assert_eq(h2s_send_body(s, 1, body, 100000, 5, true), H2_OK);
    h2s_drain(s);
    expect_body(s, 1, body, 65535);
    h2_setting zero = {H2_SET_INITIAL_WINDOW_SIZE, 0};
    h2s_settings(s, &zero, 1);      /* window: 0 - 65535 */
    h2s_window_update(s, 1, 65530); /* window: -5 */
    cr_assert_eq(h2s_run(s), H2_OK);
    expect_body(s, 1, body, 65535);
    h2_setting ten = {H2_SET_INITIAL_WINDOW_SIZE, 10};
    h2s_settings(s, &ten, 1); /* window: 10 + 65530 - 65535 = 5 */
    cr_assert_eq(h2s_run(s), H2_OK);
    expect_body(s, 1, body, 65540);
    h2_setting big = {H2_SET_INITIAL_WINDOW_SIZE, 200000};
    h2s_settings(s, &big, 1);
    cr_assert_eq(h2s_run(s), H2_OK);
    expect_body(s, 1, body, 100000);
    cr_expect(h2s_st(s, 1)->ended);
}

H2S_TEST(window, rfc9113_6_9_2_initial_window_overflow,
         "§6.9.2: an INITIAL_WINDOW_SIZE change pushing a stream window past 2^31-1 is a "
         "connection FLOW_CONTROL_ERROR")
{
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    h2s_window_update(s, 1, 0x7fffffffu - 65535u); /* window 2^31-1 */
    h2_setting up = {H2_SET_INITIAL_WINDOW_SIZE, 65536};
    h2s_settings(s, &up, 1);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_FLOW_CONTROL_ERROR);
}

/* --- §6.10 CONTINUATION ----------------------------------------------------------- */

static void interleave_case(h2s *s, int k)
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    uint8_t blk[64];
    size_t n = h2s_hpack_min_request(blk);
    h2s_headers_block(s, 3, blk, n, &(h2s_hopts){.no_end_headers = true, .end_stream = true});
    uint8_t p[8] = {0};
    switch (k) {
    case 0: h2s_ping(s, false, p); break;
    case 1: h2s_data(s, 1, "x", 1, false); break;
    case 2: h2s_continuation(s, 5, true, blk, 0); break;
    case 3: h2s_headers_block(s, 5, blk, n, NULL); break;
    case 4:
        h2s_frame_raw(s, 0xfa, 0, 0, p, 8); /* even an extension frame */
        break;
    case 5: h2s_priority(s, 3, 0, 16, false); break;
    default: h2s_window_update(s, 0, 100); break;
    }
    h2s_continuation(s, 3, true, blk, 0);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_PROTOCOL_ERROR);
    cr_expect_null(h2s_req(s, 3));
}

H2S_TEST(continuation, rfc9113_6_10_interleaved_frame,
         "§6.10: any frame but CONTINUATION on the same stream inside a field block is "
         "PROTOCOL_ERROR")
{
    for (int k = 0; k < 7; k++)
        sub(s, interleave_case, k);
}

static void orphan_cont_case(h2s *s, int k)
{
    h2s_handshake(s);
    uint8_t blk[64];
    size_t n = h2s_hpack_min_request(blk);
    if (k == 0) {
        h2s_continuation(s, 1, true, blk, n); /* nothing open at all */
    } else {
        h2s_get(s, 1, "/");
        h2s_continuation(s, 1, true, blk, n); /* after a complete block */
    }
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_PROTOCOL_ERROR);
}

H2S_TEST(continuation, rfc9113_6_10_without_headers,
         "§6.10: CONTINUATION not preceded by HEADERS without END_HEADERS is PROTOCOL_ERROR")
{
    sub(s, orphan_cont_case, 0);
    sub(s, orphan_cont_case, 1);
}

H2S_TEST(continuation, rfc9113_6_10_split_block_decodes,
         "§6.10: a block split over HEADERS and several CONTINUATIONs decodes")
{
    h2s_handshake(s);
    static const h2s_kv kv[] = {{":method", "POST"},
                                {":scheme", "https"},
                                {":authority", "example.com"},
                                {":path", "/split"},
                                {"x-long", "0123456789abcdefghijklmnopqrstuvwxyz"},
                                {"x-more", "value"}};
    h2s_headers(s, 1, kv, 6, &(h2s_hopts){.continuations = 1});
    h2s_headers(s, 3, kv, 6, &(h2s_hopts){.continuations = 8, .end_stream = true});
    h2s_headers(
        s, 5, kv, 6,
        &(h2s_hopts){
            .continuations = 3, .padded = true, .pad_len = 9, .priority = true, .weight = 3});
    /* END_HEADERS on an empty CONTINUATION. */
    uint8_t blk[64];
    size_t n = h2s_hpack_min_request(blk);
    h2s_headers_block(s, 7, blk, n, &(h2s_hopts){.no_end_headers = true, .end_stream = true});
    h2s_continuation(s, 7, true, NULL, 0);
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    for (uint32_t sid = 1; sid <= 5; sid += 2) {
        const h2s_ev *e = req_ok(s, sid);
        cr_expect_str_eq(e->path, "/split");
        cr_expect_str_eq(h2s_field_get(e->fields, e->nfields, "x-long"),
                         "0123456789abcdefghijklmnopqrstuvwxyz");
        cr_expect_str_eq(h2s_field_get(e->fields, e->nfields, "x-more"), "value");
    }
    cr_expect_not(req_ok(s, 1)->end_stream);
    cr_expect(req_ok(s, 3)->end_stream, "END_STREAM on the HEADERS frame applies to the block");
    cr_expect(req_ok(s, 7)->end_stream);
    for (uint32_t sid = 1; sid <= 7; sid += 2)
        h2s_respond_ok(s, sid, "ok");
    H2S_EXPECT_ALIVE(s);
}

H2S_TEST(continuation, rfc9113_8_4_push_promise_from_client,
         "§8.4/§6.6: a client may not send PUSH_PROMISE: PROTOCOL_ERROR")
{
    h2s_handshake(s);
    h2s_request(s, 1, "GET", "/", NULL, 0, false);
    uint8_t p[64] = {0, 0, 0, 2};
    size_t n = h2s_hpack_min_request(p + 4);
    h2s_frame_raw(s, H2_FT_PUSH_PROMISE, H2_FLAG_END_HEADERS, 1, p, n + 4);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_PROTOCOL_ERROR);
}

/* ============================================================================
 * 6. RFC 9113 §8: HTTP semantics through the engine
 * ========================================================================== */

#define REQ_PSEUDO                                                                                 \
    {":method", "GET"}, {":scheme", "https"},                                                      \
    {                                                                                              \
        ":authority", "example.com"                                                                \
    }

static void malformed_block(h2s *s, uint32_t sid, int k)
{
    uint8_t blk[256];
    size_t n = 0;
    switch (k) {
    case 0: h2s_request(s, sid, "GET", "/", H2S_KV({"X-Upper", "1"}), true); return;
    case 1: h2s_request(s, sid, "GET", "/", H2S_KV({"connection", "close"}), true); return;
    case 2: h2s_request(s, sid, "GET", "/", H2S_KV({"te", "gzip"}), true); return;
    case 3: /* missing :path */
        h2s_headers(s, sid, H2S_KV(REQ_PSEUDO), &(h2s_hopts){.end_stream = true});
        return;
    case 4: /* a pseudo-header after a regular field */
        h2s_headers(s, sid,
                    H2S_KV({":method", "GET"}, {":scheme", "https"}, {"x-regular", "1"},
                           {":path", "/"}, {":authority", "example.com"}),
                    &(h2s_hopts){.end_stream = true});
        return;
    case 5: /* CR in a value */
        n = h2s_hpack_min_request(blk);
        n += h2s_hpack_lit(blk + n, "x-cr", 4, "a\rb", 3);
        break;
    case 6: /* empty name */
        n = h2s_hpack_min_request(blk);
        n += h2s_hpack_lit(blk + n, "", 0, "v", 1);
        break;
    case 7:
        h2s_request(s, sid, "POST", "/", H2S_KV({"transfer-encoding", "chunked"}), true);
        return;
    case 8: h2s_request(s, sid, "GET", "/", H2S_KV({"upgrade", "websocket"}), true); return;
    case 9: h2s_request(s, sid, "GET", "/", H2S_KV({"keep-alive", "timeout=5"}), true); return;
    case 10:
        h2s_request(s, sid, "GET", "/", H2S_KV({"proxy-connection", "keep-alive"}), true);
        return;
    case 11: /* :status in a request */
        h2s_headers(s, sid, H2S_KV(REQ_PSEUDO, {":path", "/"}, {":status", "200"}),
                    &(h2s_hopts){.end_stream = true});
        return;
    case 12: /* unknown pseudo-header */
        h2s_headers(s, sid, H2S_KV(REQ_PSEUDO, {":path", "/"}, {":foo", "bar"}),
                    &(h2s_hopts){.end_stream = true});
        return;
    case 13: /* duplicate :path */
        h2s_headers(s, sid, H2S_KV(REQ_PSEUDO, {":path", "/"}, {":path", "/x"}),
                    &(h2s_hopts){.end_stream = true});
        return;
    case 14: /* LF in a value */
        n = h2s_hpack_min_request(blk);
        n += h2s_hpack_lit(blk + n, "x-lf", 4, "a\nb", 3);
        break;
    case 15: /* NUL in a value */
        n = h2s_hpack_min_request(blk);
        n += h2s_hpack_lit(blk + n, "x-nul", 5, "a\0b", 3);
        break;
    case 16: /* leading space in a value */
        n = h2s_hpack_min_request(blk);
        n += h2s_hpack_lit(blk + n, "x-sp", 4, " v", 2);
        break;
    case 17: /* host differs from :authority */
        h2s_request(s, sid, "GET", "/", H2S_KV({"host", "evil.example"}), true);
        return;
    case 18: /* empty :path */
        h2s_headers(s, sid, H2S_KV(REQ_PSEUDO, {":path", ""}), &(h2s_hopts){.end_stream = true});
        return;
    case 19: /* space in a name */
        n = h2s_hpack_min_request(blk);
        n += h2s_hpack_lit(blk + n, "x y", 3, "v", 1);
        break;
    case 20: /* colon inside a regular name */
        n = h2s_hpack_min_request(blk);
        n += h2s_hpack_lit(blk + n, "x:y", 3, "v", 1);
        break;
    case 21: /* missing :method */
        h2s_headers(s, sid,
                    H2S_KV({":scheme", "https"}, {":authority", "example.com"}, {":path", "/"}),
                    &(h2s_hopts){.end_stream = true});
        return;
    default: /* :path with a space (request smuggling) */
        h2s_headers(s, sid, H2S_KV(REQ_PSEUDO, {":path", "/a b"}),
                    &(h2s_hopts){.end_stream = true});
        return;
    }
    h2s_headers_block(s, sid, blk, n, &(h2s_hopts){.end_stream = true});
}
#define N_MALFORMED 23

static void malformed_case(h2s *s, int k)
{
    h2s_handshake(s);
    h2s_get(s, 1, "/before");
    malformed_block(s, 3, k);
    h2s_get(s, 5, "/after");
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] case %d: connection error %s (%s)", s->mode_name, k,
                 h2_code_name(h2_conn_fault(s->c).code), h2_conn_fault(s->c).reason);
    cr_expect_null(h2s_req(s, 3), "[%s] case %d: a malformed request reached the application",
                   s->mode_name, k);
    h2s_respond_ok(s, 1, "before");
    h2s_respond_ok(s, 5, "after");
    H2S_EXPECT_STREAM_ERROR(s, 3, H2_PROTOCOL_ERROR);
    cr_expect_eq(h2s_status(s, 1), 200, "[%s] case %d", s->mode_name, k);
    cr_expect_eq(h2s_status(s, 5), 200, "[%s] case %d", s->mode_name, k);
}

H2S_TEST(http, rfc9113_8_2_malformed_requests,
         "§8.2/§8.3: malformed requests (uppercase, connection-specific, te, pseudo-header "
         "rules, CR/LF/NUL, empty name) are stream PROTOCOL_ERRORs")
{
    for (int k = 0; k < N_MALFORMED; k++)
        sub(s, malformed_case, k);
}

H2S_TEST(http, rfc9113_8_2_2_te_trailers_allowed, "§8.2.2: te: trailers is the one te allowed")
{
    h2s_handshake(s);
    h2s_request(s, 1, "GET", "/", H2S_KV({"te", "trailers"}), true);
    cr_assert_eq(h2s_run(s), H2_OK);
    const h2s_ev *e = req_ok(s, 1);
    cr_expect_str_eq(h2s_field_get(e->fields, e->nfields, "te"), "trailers");
    cr_expect_eq(h2s_count(s, H2_FT_RST_STREAM, H2S_ANY), 0u);
}

static void content_length_case(h2s *s, int k)
{
    h2s_handshake(s);
    switch (k) {
    case 0: /* fewer bytes than declared */
        h2s_request(s, 1, "POST", "/", H2S_KV({"content-length", "10"}), false);
        h2s_data(s, 1, "12345", 5, true);
        break;
    case 1: /* more bytes than declared */
        h2s_request(s, 1, "POST", "/", H2S_KV({"content-length", "3"}), false);
        h2s_data(s, 1, "12345", 5, false);
        break;
    case 2: /* declared, but END_STREAM on HEADERS */
        h2s_request(s, 1, "POST", "/", H2S_KV({"content-length", "5"}), true);
        break;
    case 3: /* fewer, ended by trailers */
        h2s_request(s, 1, "POST", "/", H2S_KV({"content-length", "5"}), false);
        h2s_data(s, 1, "1234", 4, false);
        h2s_headers(s, 1, H2S_KV({"x-t", "1"}), &(h2s_hopts){.end_stream = true});
        break;
    case 4: /* fewer, ended by an empty DATA */
        h2s_request(s, 1, "POST", "/", H2S_KV({"content-length", "5"}), false);
        h2s_data(s, 1, "1234", 4, false);
        h2s_data(s, 1, NULL, 0, true);
        break;
    default: /* excess spread over frames */
        h2s_request(s, 1, "POST", "/", H2S_KV({"content-length", "6"}), false);
        h2s_data(s, 1, "1234", 4, false);
        h2s_data(s, 1, "567", 3, true);
        break;
    }
    h2s_get(s, 3, "/other");
    h2s_run(s);
    H2S_EXPECT_STREAM_ERROR(s, 1, H2_PROTOCOL_ERROR);
    size_t n = 0;
    h2s_req_body(s, 1, &n);
    cr_expect_leq(n, 5u);
    cr_expect_not(h2s_st(s, 1) && h2s_st(s, 1)->req_ended && n != 5 && k != 2,
                  "[%s] case %d: a short body was reported as complete", s->mode_name, k);
    h2s_respond_ok(s, 3, "ok");
    h2s_drain(s);
    cr_expect_eq(h2s_status(s, 3), 200);
}

H2S_TEST(http, rfc9113_8_1_1_content_length_mismatch,
         "§8.1.1: a body that does not match content-length is a stream PROTOCOL_ERROR")
{
    for (int k = 0; k < 6; k++)
        sub(s, content_length_case, k);
}

H2S_TEST(http, rfc9113_8_1_1_content_length_match,
         "§8.1.1: content-length matching the DATA (padding excluded) is accepted")
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", H2S_KV({"content-length", "7"}), false);
    h2s_data_padded(s, 1, "123", 3, 50, false);
    h2s_data(s, 1, "4567", 4, false);
    h2s_headers(s, 1, H2S_KV({"x-checksum", "abc"}), &(h2s_hopts){.end_stream = true});
    h2s_request(s, 3, "POST", "/", H2S_KV({"content-length", "0"}), true);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(req_ok(s, 1)->content_length, 7);
    cr_expect_eq(h2s_ev_count(s, H2_EV_TRAILERS, 1), 1u);
    cr_expect_eq(req_ok(s, 3)->content_length, 0);
    cr_expect_eq(h2s_count(s, H2_FT_RST_STREAM, H2S_ANY), 0u);
}

H2S_TEST(http, rfc9113_8_1_trailers_event, "§8.1: request trailers arrive as H2_EV_TRAILERS")
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", H2S_KV({"te", "trailers"}), false);
    h2s_data(s, 1, "body", 4, false);
    h2s_headers(s, 1, H2S_KV({"x-checksum", "1234"}, {"x-other", "v"}),
                &(h2s_hopts){.end_stream = true, .continuations = 1});
    cr_assert_eq(h2s_run(s), H2_OK);
    const h2s_ev *t = h2s_ev_find(s, H2_EV_TRAILERS, 1);
    cr_assert_not_null(t);
    cr_expect(t->end_stream);
    cr_expect_eq(t->nfields, 2u);
    cr_expect_str_eq(h2s_field_get(t->fields, t->nfields, "x-checksum"), "1234");
    cr_expect_str_eq(h2s_field_get(t->fields, t->nfields, "x-other"), "v");
    /* Order: REQUEST, DATA, TRAILERS. */
    const h2s_ev *d = h2s_ev_find(s, H2_EV_DATA, 1);
    cr_assert_not_null(d);
    cr_expect_lt(h2s_req(s, 1) - s->evs, d - s->evs);
    cr_expect_lt(d - s->evs, t - s->evs);
    cr_expect(h2s_st(s, 1)->req_ended);
    h2s_respond_ok(s, 1, "ok");
    H2S_EXPECT_ALIVE(s);
}

static void bad_trailers_case(h2s *s, int k)
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    h2s_data(s, 1, "body", 4, false);
    if (k == 0)
        h2s_headers(s, 1, H2S_KV({"x-t", "1"}), NULL); /* no END_STREAM */
    else if (k == 1)
        h2s_headers(s, 1, H2S_KV({":path", "/"}), &(h2s_hopts){.end_stream = true});
    else
        h2s_headers(s, 1, H2S_KV({"connection", "close"}), &(h2s_hopts){.end_stream = true});
    h2s_get(s, 3, "/");
    h2s_run(s);
    H2S_EXPECT_STREAM_ERROR(s, 1, H2_PROTOCOL_ERROR);
    cr_expect_eq(h2s_ev_count(s, H2_EV_TRAILERS, 1), 0u);
    const h2s_ev *r = h2s_ev_find(s, H2_EV_STREAM_RESET, 1);
    cr_expect(r && r->code == H2_PROTOCOL_ERROR, "[%s] case %d: the handler is told", s->mode_name,
              k);
    h2s_respond_ok(s, 3, "ok");
    h2s_drain(s);
    cr_expect_eq(h2s_status(s, 3), 200);
}

H2S_TEST(http, rfc9113_8_1_malformed_trailers,
         "§8.1: trailers without END_STREAM, with pseudo-headers or connection fields are "
         "stream PROTOCOL_ERRORs")
{
    for (int k = 0; k < 3; k++)
        sub(s, bad_trailers_case, k);
}

H2S_TEST(http, rfc8441_4_extended_connect, "RFC 8441 §4: extended CONNECT is accepted")
{
    h2s_handshake(s);
    h2s_headers(s, 1,
                H2S_KV({":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"},
                       {":path", "/chat"}, {":authority", "example.com"},
                       {"sec-websocket-version", "13"}),
                NULL);
    h2s_headers(s, 3, H2S_KV({":method", "CONNECT"}, {":authority", "proxy.example:443"}), NULL);
    h2s_headers(s, 5,
                H2S_KV({":method", "CONNECT"}, {":authority", "example.com"}, {":path", "/x"}),
                NULL); /* CONNECT with :path but no :protocol: malformed */
    cr_assert_eq(h2s_run(s), H2_OK);
    const h2s_ev *e = req_ok(s, 1);
    cr_expect(e->extended_connect);
    cr_expect_str_eq(e->protocol, "websocket");
    cr_expect_str_eq(e->method, "CONNECT");
    cr_expect_str_eq(e->path, "/chat");
    cr_expect_not(e->end_stream);
    const h2s_ev *c = req_ok(s, 3);
    cr_expect_not(c->extended_connect);
    cr_expect_str_eq(c->authority, "proxy.example:443");
    cr_expect_null(c->path);
    cr_expect_eq(h2s_rst_code(s, 5), H2_PROTOCOL_ERROR);
    /* The tunnel carries DATA both ways. */
    h2s_data(s, 1, "ping", 4, false);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2s_respond(s, 1, 200, NULL, 0, false), H2_OK);
    cr_assert_eq(h2s_send_body(s, 1, "pong", 4, 1, false), H2_OK);
    h2s_drain(s);
    size_t n = 0;
    const uint8_t *b = h2s_body(s, 1, &n);
    cr_expect(n == 4 && memcmp(b, "pong", 4) == 0);
    H2S_EXPECT_ALIVE(s);
}

H2S_TEST(http, rfc8441_3_extended_connect_disabled,
         "RFC 8441 §3: without SETTINGS_ENABLE_CONNECT_PROTOCOL, :protocol is malformed")
{
    h2_limits l = lim();
    l.enable_connect_protocol = 0;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    cr_expect_eq(h2s_setting(s, H2_SET_ENABLE_CONNECT_PROTOCOL), -1);
    h2s_headers(s, 1,
                H2S_KV({":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"},
                       {":path", "/chat"}, {":authority", "example.com"}),
                NULL);
    h2s_run(s);
    H2S_EXPECT_STREAM_ERROR(s, 1, H2_PROTOCOL_ERROR);
    cr_expect_null(h2s_req(s, 1));
}

H2S_TEST(http, rfc9113_8_1_request_end_stream,
         "§8.1: the REQUEST event says whether a body follows")
{
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    h2s_request(s, 3, "POST", "/up", H2S_KV({"expect", "100-continue"}, {"priority", "u=1, i"}),
                false);
    h2s_data(s, 3, NULL, 0, true);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect(req_ok(s, 1)->end_stream);
    cr_expect(h2s_st(s, 1)->req_ended);
    const h2s_ev *e = req_ok(s, 3);
    cr_expect_not(e->end_stream);
    cr_expect(e->expect_continue);
    cr_expect_eq(e->urgency, 1);
    cr_expect(e->incremental);
    cr_expect_eq(e->content_length, -1);
    const h2s_ev *d = h2s_ev_find(s, H2_EV_DATA, 3);
    cr_assert_not_null(d, "an empty DATA with END_STREAM is reported");
    cr_expect(d->end_stream);
    cr_expect_eq(d->len, 0u);
    cr_expect_eq(req_ok(s, 1)->urgency, 3, "RFC 9218 default urgency");
}

/* ============================================================================
 * 7. Responses
 * ========================================================================== */

H2S_TEST(response, rfc9113_8_1_head_data_trailers_exact,
         "§8.1: HEADERS, DATA and trailers arrive byte-exact and in order")
{
    h2s_handshake(s);
    h2s_window_update(s, 0, 200000);
    h2s_get(s, 1, "/file");
    h2s_window_update(s, 1, 200000);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2s_respond(s, 1, 200,
                             H2S_KV({"content-type", "application/octet-stream"},
                                    {"set-cookie", "a=b"}, {"set-cookie", "c=d"}, {"x-empty", ""}),
                             false),
                 H2_OK);
    uint8_t *body = h2s_alloc(s, 70001);
    h2s_pattern(body, 70001, 99);
    cr_assert_eq(h2s_send_body(s, 1, body, 70001, 3, false), H2_OK);
    hpack_field tr[] = {h2s_hf("x-checksum", "c0ffee"), h2s_hf("x-t2", "v2")};
    cr_assert_eq(h2_conn_send_trailers(s->c, 1, tr, 2), H2_OK);
    cr_expect_eq(h2s_send_body(s, 1, "late", 4, 1, false), H2_E_STATE, "trailers end the body");
    cr_assert_eq(h2s_detach(s, 1), H2_OK);
    h2s_drain(s);
    h2s_stream *st = h2s_st(s, 1);
    cr_assert_not_null(st);
    cr_expect_eq(st->status, 200);
    cr_assert_eq(st->nhdrs, 5u);
    static const char *const want[5][2] = {{":status", "200"},
                                           {"content-type", "application/octet-stream"},
                                           {"set-cookie", "a=b"},
                                           {"set-cookie", "c=d"},
                                           {"x-empty", ""}};
    for (uint32_t i = 0; i < 5; i++) {
        cr_expect_str_eq(st->hdrs[i].name, want[i][0]);
        cr_expect_str_eq(st->hdrs[i].value, want[i][1]);
    }
    expect_body(s, 1, body, 70001);
    cr_assert(st->has_trailers);
    cr_assert_eq(st->ntrailers, 2u);
    cr_expect_str_eq(st->trailers[0].name, "x-checksum");
    cr_expect_str_eq(st->trailers[0].value, "c0ffee");
    cr_expect_str_eq(st->trailers[1].name, "x-t2");
    cr_expect_str_eq(st->trailers[1].value, "v2");
    cr_expect(st->ended);
    cr_expect_eq(count_flags(s, H2_FT_DATA, 1, H2_FLAG_END_STREAM), 0u,
                 "END_STREAM is on the trailers, not on DATA");
    const h2s_frame *th = h2s_last(s, H2_FT_HEADERS, 1);
    const h2s_frame *ld = h2s_last(s, H2_FT_DATA, 1);
    cr_expect_gt(h2s_index_of(s, th), h2s_index_of(s, ld));
    cr_expect_eq(h2_conn_stream_count(s->c), 0u);
}

H2S_TEST(response, rfc9113_8_1_head_only_and_empty_end,
         "§8.1: a response without body ends on HEADERS; an empty DATA can end it too")
{
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    h2s_get(s, 3, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2s_respond(s, 1, 204, NULL, 0, true), H2_OK);
    cr_assert_eq(h2s_respond(s, 3, 200, NULL, 0, false), H2_OK);
    cr_assert_eq(h2_conn_send_data(s->c, 3, NULL, 0, true, NULL, NULL), H2_OK);
    h2s_detach(s, 1);
    h2s_detach(s, 3);
    h2s_drain(s);
    cr_expect_eq(h2s_status(s, 1), 204);
    cr_expect_eq(count_flags(s, H2_FT_HEADERS, 1, H2_FLAG_END_STREAM), 1u);
    cr_expect_eq(h2s_count(s, H2_FT_DATA, 1), 0u);
    cr_expect(h2s_st(s, 3)->ended);
    cr_expect_eq(count_flags(s, H2_FT_DATA, 3, H2_FLAG_END_STREAM), 1u);
    cr_expect_eq(h2_conn_stream_count(s->c), 0u);
}

H2S_TEST(response, rfc9113_8_1_informational_before_final,
         "§8.1: 100 and 103 precede the final head; API misuse is refused")
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", H2S_KV({"expect", "100-continue"}), false);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(h2s_send_body(s, 1, "x", 1, 1, false), H2_E_STATE, "no DATA before a head");
    cr_assert_eq(h2s_respond(s, 1, 100, NULL, 0, false), H2_OK);
    cr_assert_eq(h2s_respond(s, 1, 103, H2S_KV({"link", "</s.css>; rel=preload"}), false), H2_OK);
    cr_expect_eq(h2s_send_body(s, 1, "x", 1, 1, false), H2_E_STATE, "no DATA after only 1xx");
    cr_expect_eq(h2s_respond(s, 1, 100, NULL, 0, true), H2_E_INVAL, "1xx cannot end the stream");
    cr_expect_eq(h2s_respond(s, 1, 101, NULL, 0, false), H2_E_INVAL, "101 is not HTTP/2");
    cr_expect_eq(h2s_respond(s, 1, 99, NULL, 0, false), H2_E_INVAL);
    cr_expect_eq(h2s_respond(s, 1, 600, NULL, 0, false), H2_E_INVAL);
    cr_expect_eq(h2s_respond(s, 1, 200, H2S_KV({":status", "200"}), false), H2_E_INVAL);
    cr_expect_eq(h2s_respond(s, 1, 200, H2S_KV({"connection", "close"}), false), H2_E_INVAL);
    cr_expect_eq(h2s_respond(s, 1, 200, H2S_KV({"Content-Type", "x"}), false), H2_E_INVAL);
    cr_expect_eq(h2s_respond(s, 1, 200, H2S_KV({"x-bad", "a\r\nb"}), false), H2_E_INVAL);
    h2s_drain(s);
    h2s_data(s, 1, "payload", 7, true);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2s_respond(s, 1, 201, H2S_KV({"location", "/x"}), false), H2_OK);
    cr_expect_eq(h2s_respond(s, 1, 200, NULL, 0, false), H2_E_STATE, "one final head");
    cr_expect_eq(h2s_respond(s, 1, 103, NULL, 0, false), H2_E_STATE, "no 1xx after the final");
    cr_assert_eq(h2s_send_body(s, 1, "made", 4, 1, true), H2_OK);
    h2s_detach(s, 1);
    h2s_drain(s);
    h2s_stream *st = h2s_st(s, 1);
    cr_assert_eq(st->ninfo, 2u);
    cr_expect_eq(st->info[0], 100);
    cr_expect_eq(st->info[1], 103);
    cr_expect_eq(st->status, 201);
    cr_expect_str_eq(h2s_resp_field(s, 1, "location"), "/x");
    size_t n = 0;
    const uint8_t *b = h2s_body(s, 1, &n);
    cr_expect(n == 4 && memcmp(b, "made", 4) == 0);
    cr_expect_eq(h2s_count(s, H2_FT_HEADERS, 1), 3u);
    cr_expect_eq(count_flags(s, H2_FT_HEADERS, 1, H2_FLAG_END_STREAM), 0u);
}

static uint32_t chunk_releases(const h2s *s, uint32_t sid, size_t *nch)
{
    uint32_t total = 0;
    *nch = 0;
    for (size_t i = 0; i < s->nchunks; i++)
        if (s->chunks[i]->stream_id == sid) {
            total += s->chunks[i]->released;
            (*nch)++;
        }
    return total;
}

H2S_TEST(response, h2_conn_release_once_per_chunk,
         "h2_conn.h: release runs once per chunk, after its bytes are sent or the stream ends")
{
    h2s_handshake(s);
    h2s_window_update(s, 0, 1000000);
    for (uint32_t sid = 1; sid <= 7; sid += 2)
        h2s_get(s, sid, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    uint8_t *body = h2s_alloc(s, 150000);
    h2s_pattern(body, 150000, 1);
    for (uint32_t sid = 1; sid <= 7; sid += 2) {
        cr_assert_eq(h2s_respond(s, sid, 200, NULL, 0, false), H2_OK);
        cr_assert_eq(h2s_send_body(s, sid, body, 150000, 10, true), H2_OK);
    }
    /* Nothing is released before it is sent. */
    size_t nch = 0;
    cr_expect_eq(chunk_releases(s, 1, &nch), 0u);
    h2s_drain(s); /* 65535 per stream window at most: every stream mid-body */
    /* 1: the application resets mid-body. */
    cr_assert_eq(h2s_reset_stream(s, 1, H2_CANCEL), H2_OK);
    cr_expect_eq(h2s_reset_stream(s, 1, H2_CANCEL), H2_E_STATE);
    cr_expect_eq(chunk_releases(s, 1, &nch), (uint32_t)nch,
                 "[%s] every chunk of stream 1 released at its reset", s->mode_name);
    /* 3: the peer resets mid-body. */
    h2s_rst(s, 3, H2_CANCEL);
    /* 5: completes. */
    h2s_window_update(s, 5, 200000);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(chunk_releases(s, 3, &nch), (uint32_t)nch);
    expect_body(s, 5, body, 150000);
    cr_expect_eq(chunk_releases(s, 5, &nch), (uint32_t)nch);
    /* 7: still queued when the connection is freed (h2s_fini checks the
     * count and that each release came with its own pointer and length). */
    uint32_t r7 = chunk_releases(s, 7, &nch);
    cr_expect_lt(r7, (uint32_t)nch, "[%s] stream 7 still has unsent chunks", s->mode_name);
    for (size_t i = 0; i < s->nchunks; i++)
        cr_expect_leq(s->chunks[i]->released, 1u);
    /* Failures other than INVAL release too. */
    cr_expect_eq(h2s_send_body(s, 1, body, 10, 1, true), H2_E_STATE);
    cr_expect_eq(h2s_send_body(s, 99, body, 10, 1, true), H2_E_NOSTREAM);
    cr_expect_eq(s->chunks[s->nchunks - 1]->released, 1u);
    cr_expect_eq(s->chunks[s->nchunks - 2]->released, 1u);
}

H2S_TEST(response, h2_conn_release_on_connection_error,
         "h2_conn.h: chunks queued when the connection fails are released once, at free")
{
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2s_respond(s, 1, 200, NULL, 0, false), H2_OK);
    uint8_t *body = h2s_alloc(s, 100000);
    cr_assert_eq(h2s_send_body(s, 1, body, 100000, 4, true), H2_OK);
    /* Some bytes prepared but not committed when the connection dies. */
    struct iovec iov[4];
    size_t k = h2_conn_out_prepare(s->c, iov, 4, 30000);
    cr_expect_gt(k, 0u);
    h2s_window_update(s, 0, 0);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_PROTOCOL_ERROR);
}

H2S_TEST(response, rfc9113_6_9_tiny_initial_window,
         "§6.9: peer INITIAL_WINDOW_SIZE 1, then WINDOW_UPDATEs, delivers 100 KiB byte-exact")
{
    h2_setting set = {H2_SET_INITIAL_WINDOW_SIZE, 1};
    h2s_handshake_with(s, &set, 1);
    h2s_get(s, 1, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    const size_t len = 100 * KIB;
    uint8_t *body = h2s_alloc(s, len);
    h2s_pattern(body, len, 42);
    cr_assert_eq(h2s_respond(s, 1, 200, H2S_KV({"content-length", "102400"}), false), H2_OK);
    cr_assert_eq(h2s_send_body(s, 1, body, len, 7, true), H2_OK);
    h2s_detach(s, 1);
    h2s_drain(s);
    expect_body(s, 1, body, 1);
    uint32_t rounds = 0;
    while (!h2s_st(s, 1)->ended && rounds < 1000) {
        h2s_window_update(s, 1, 2999);
        h2s_window_update(s, 0, 2999);
        cr_assert_eq(h2s_run(s), H2_OK);
        rounds++;
    }
    expect_body(s, 1, body, len);
    cr_expect(h2s_st(s, 1)->ended);
    cr_expect_eq(rounds, 35u, "[%s] every WINDOW_UPDATE is used in full (%u rounds)", s->mode_name,
                 rounds);
    cr_expect_eq(h2_conn_stream_count(s->c), 0u);
}

H2S_TEST(response, rfc9113_6_9_1_shared_connection_window,
         "§6.9.1: many streams share a small connection window and all complete")
{
    h2s_handshake(s);
    const uint32_t nstreams = 20;
    const size_t len = 10000;
    uint8_t *bodies = h2s_alloc(s, len * nstreams);
    h2s_pattern(bodies, len * nstreams, 8);
    for (uint32_t i = 0; i < nstreams; i++)
        h2s_get(s, 1 + 2 * i, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    for (uint32_t i = 0; i < nstreams; i++) {
        uint32_t sid = 1 + 2 * i;
        cr_assert_eq(h2s_respond(s, sid, 200, NULL, 0, false), H2_OK);
        cr_assert_eq(h2s_send_body(s, sid, bodies + i * len, len, 2, true), H2_OK);
        h2s_detach(s, sid);
    }
    h2s_drain(s);
    cr_expect_eq(s->s_conn_flow, 65535u, "[%s] the connection window is used in full",
                 s->mode_name);
    uint32_t rounds = 0;
    while (h2_conn_stream_count(s->c) && rounds < 200) {
        h2s_window_update(s, 0, 8192);
        cr_assert_eq(h2s_run(s), H2_OK);
        rounds++;
    }
    for (uint32_t i = 0; i < nstreams; i++) {
        expect_body(s, 1 + 2 * i, bodies + i * len, len);
        cr_expect(h2s_st(s, 1 + 2 * i)->ended);
    }
    cr_expect_eq(h2_conn_stream_count(s->c), 0u);
}

H2S_TEST(response, rfc9218_urgency_order,
         "RFC 9218 §4: with one connection window to share, the more urgent stream goes first")
{
    h2s_handshake(s);
    h2s_request(s, 1, "GET", "/low", H2S_KV({"priority", "u=7"}), true);
    h2s_request(s, 3, "GET", "/high", H2S_KV({"priority", "u=0"}), true);
    cr_assert_eq(h2s_run(s), H2_OK);
    uint8_t *body = h2s_alloc(s, 40000);
    for (uint32_t sid = 1; sid <= 3; sid += 2) {
        cr_assert_eq(h2s_respond(s, sid, 200, NULL, 0, false), H2_OK);
        cr_assert_eq(h2s_send_body(s, sid, body, 40000, 1, true), H2_OK);
    }
    h2s_drain(s);
    size_t n1 = 0, n3 = 0;
    h2s_body(s, 1, &n1);
    h2s_body(s, 3, &n3);
    cr_expect_eq(n3, 40000u, "[%s] urgency 0 first (got %zu)", s->mode_name, n3);
    cr_expect_eq(n1, 65535u - 40000u);
    /* PRIORITY_UPDATE re-orders: stream 1 becomes the urgent one. */
    h2s_request(s, 5, "GET", "/mid", H2S_KV({"priority", "u=3"}), true);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2s_respond(s, 5, 200, NULL, 0, false), H2_OK);
    cr_assert_eq(h2s_send_body(s, 5, body, 40000, 1, true), H2_OK);
    h2s_priority_update(s, 1, "u=1");
    h2s_window_update(s, 0, 14465);
    cr_assert_eq(h2s_run(s), H2_OK);
    const h2s_ev *pe = h2s_ev_find(s, H2_EV_PRIORITY, 1);
    cr_assert_not_null(pe);
    cr_expect_eq(pe->urgency, 1);
    h2s_body(s, 1, &n1);
    size_t n5 = 0;
    h2s_body(s, 5, &n5);
    cr_expect_eq(n1, 40000u, "[%s] stream 1 now urgency 1 (got %zu)", s->mode_name, n1);
    cr_expect_eq(n5, 0u);
}

H2S_TEST(response, rfc9113_4_2_no_frame_above_16k,
         "§4.2/security.md: no frame above 16 KiB even when the peer allows 2^24-1")
{
    h2_setting set[] = {{H2_SET_MAX_FRAME_SIZE, H2_MAX_MAX_FRAME_SIZE},
                        {H2_SET_INITIAL_WINDOW_SIZE, H2_MAX_WINDOW}};
    h2s_handshake_with(s, set, 2);
    h2s_window_update(s, 0, H2_MAX_WINDOW - H2_DEFAULT_WINDOW);
    h2s_get(s, 1, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    char *big = (char *)h2s_alloc(s, 40001);
    memset(big, 'v', 40000);
    hpack_field f[2] = {h2s_hf("x-big", big), h2s_hf("content-type", "text/plain")};
    f[0].flags = HPACK_F_NO_INDEX;
    cr_assert_eq(h2_conn_respond(s->c, 1, 200, f, 2, false), H2_OK);
    const size_t len = 300 * KIB;
    uint8_t *body = h2s_alloc(s, len);
    h2s_pattern(body, len, 3);
    cr_assert_eq(h2s_send_body(s, 1, body, len, 1, false), H2_OK);
    hpack_field tr = h2s_hf("x-big-trailer", big);
    cr_assert_eq(h2_conn_send_trailers(s->c, 1, &tr, 1), H2_OK);
    h2s_drain(s);
    uint32_t maxlen = 0;
    for (size_t i = 0; i < s->nframes; i++)
        if (s->frames[i].hdr.length > maxlen)
            maxlen = s->frames[i].hdr.length;
    cr_expect_eq(maxlen, 16384u, "[%s] largest frame %u", s->mode_name, maxlen);
    cr_expect_geq(h2s_count(s, H2_FT_CONTINUATION, 1), 4u, "big blocks are split");
    expect_body(s, 1, body, len);
    cr_expect_eq(strlen(h2s_resp_field(s, 1, "x-big")), 40000u);
    cr_expect(h2s_st(s, 1)->has_trailers);
}

static void consume_cb(h2s *s, const h2_event *ev, void *ud)
{
    (void)ud;
    if (ev->type == H2_EV_DATA && ev->u.data.len)
        cr_expect_eq(h2_conn_consume(s->c, ev->stream_id, ev->u.data.len), H2_OK);
}

H2S_TEST(response, rfc9113_6_9_consume_coalesces_window_updates,
         "§6.9: h2_conn_consume reopens windows with coalesced WINDOW_UPDATEs")
{
    h2_limits l = lim();
    l.initial_window_size = 65536;
    l.connection_window = 131072;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    size_t mark = s->nframes;
    cr_expect_eq(s->frames[1].f.u.window_increment, 131072u - 65535u);
    s->on_event = consume_cb;
    uint8_t *buf = h2s_alloc(s, 16384);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    for (int i = 0; i < 8; i++)
        h2s_data(s, 1, buf, 16384, false); /* 128 KiB: twice the stream window */
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    size_t n = 0;
    h2s_req_body(s, 1, &n);
    cr_expect_eq(n, 131072u);
    /* One stream WINDOW_UPDATE per half window consumed, one connection
     * WINDOW_UPDATE per half connection window. */
    cr_expect_eq(count_wu_from(s, 1, mark), 4u, "[%s] %zu stream WINDOW_UPDATEs", s->mode_name,
                 count_wu_from(s, 1, mark));
    cr_expect_eq(sum_wu_from(s, 1, mark), 131072u);
    cr_expect_eq(count_wu_from(s, 0, mark), 2u, "[%s] %zu connection WINDOW_UPDATEs", s->mode_name,
                 count_wu_from(s, 0, mark));
    cr_expect_eq(sum_wu_from(s, 0, mark), 131072u);
    /* Consuming a little does not produce a frame. */
    s->on_event = NULL;
    h2s_data(s, 1, buf, 100, false);
    cr_assert_eq(h2s_run(s), H2_OK);
    size_t before = s->nframes;
    cr_expect_eq(h2_conn_consume(s->c, 1, 100), H2_OK);
    cr_expect_eq(h2_conn_consume(s->c, 1, 1000), H2_OK, "more than held: clamped");
    h2s_drain(s);
    cr_expect_eq(s->nframes, before);
    /* No stream WINDOW_UPDATE once the peer has ended the stream. */
    h2s_data(s, 1, buf, 16384, false);
    h2s_data(s, 1, buf, 16384, true);
    cr_assert_eq(h2s_run(s), H2_OK);
    before = s->nframes;
    cr_expect_eq(h2_conn_consume(s->c, 1, 32768), H2_OK);
    h2s_drain(s);
    cr_expect_eq(count_wu_from(s, 1, before), 0u);
    cr_expect_eq(h2_conn_consume(s->c, 99, 10), H2_E_NOSTREAM);
    h2s_respond_ok(s, 1, "done");
    H2S_EXPECT_ALIVE(s);
}

H2S_TEST(response, h2_conn_detach_unfinished_resets,
         "h2_conn.h: a handler that stops without ending its response resets with INTERNAL_ERROR")
{
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    h2s_get(s, 3, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2s_respond(s, 3, 200, NULL, 0, false), H2_OK);
    cr_assert_eq(h2s_send_body(s, 3, "partial", 7, 1, false), H2_OK);
    cr_assert_eq(h2s_detach(s, 1), H2_OK);
    cr_assert_eq(h2s_detach(s, 3), H2_OK);
    cr_expect_eq(h2s_detach(s, 3), H2_E_NOSTREAM);
    h2s_drain(s);
    cr_expect_eq(h2s_rst_code(s, 1), H2_INTERNAL_ERROR);
    cr_expect_eq(h2s_rst_code(s, 3), H2_INTERNAL_ERROR);
    cr_expect_eq(h2_conn_stream_count(s->c), 0u);
    H2S_EXPECT_ALIVE(s);
}

H2S_TEST(response, rfc9113_8_1_early_response_rst_no_error,
         "§8.1: a complete response before the request body ended: RST_STREAM NO_ERROR")
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    h2s_data(s, 1, "part", 4, false);
    cr_assert_eq(h2s_run(s), H2_OK);
    h2s_respond_ok(s, 1, "too large");
    h2s_drain(s);
    cr_expect_eq(h2s_status(s, 1), 200);
    cr_expect(h2s_st(s, 1)->ended);
    cr_expect_eq(h2s_rst_code(s, 1), H2_NO_ERROR);
    cr_expect_lt(h2s_index_of(s, h2s_last(s, H2_FT_DATA, 1)),
                 h2s_index_of(s, h2s_find(s, H2_FT_RST_STREAM, 1)));
    /* The rest of the body is discarded without errors. */
    uint8_t buf[1000] = {0};
    h2s_data(s, 1, buf, sizeof buf, true);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(h2_conn_stream_count(s->c), 0u);
    H2S_EXPECT_ALIVE(s);
}

/* ============================================================================
 * 8. RFC 7541 through the engine
 * ========================================================================== */

static void size_update_case(h2s *s, int k)
{
    h2s_handshake(s);
    uint8_t blk[64];
    size_t n = 0;
    if (k == 0) {
        n = h2s_hpack_int(blk, 0x20, 5, 4097); /* above our 4096 */
        n += h2s_hpack_min_request(blk + n);
    } else {
        n = h2s_hpack_min_request(blk);
        n += h2s_hpack_int(blk + n, 0x20, 5, 0); /* after the first field */
    }
    h2s_headers_block(s, 1, blk, n, &(h2s_hopts){.end_stream = true});
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_COMPRESSION_ERROR);
    cr_expect_null(h2s_req(s, 1));
}

H2S_TEST(hpack, rfc7541_6_3_size_update_above_setting,
         "RFC 7541 §6.3/§4.2: a size update above our setting, or after a field, is "
         "COMPRESSION_ERROR")
{
    sub(s, size_update_case, 0);
    sub(s, size_update_case, 1);
}

H2S_TEST(hpack, rfc7541_4_2_size_updates_accepted,
         "RFC 7541 §4.2: size updates within our setting at the start of a block are fine")
{
    h2s_handshake(s);
    uint8_t blk[64];
    size_t n = h2s_hpack_int(blk, 0x20, 5, 0);
    n += h2s_hpack_int(blk + n, 0x20, 5, 4096);
    n += h2s_hpack_min_request(blk + n);
    h2s_headers_block(s, 1, blk, n, &(h2s_hopts){.end_stream = true});
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    cr_expect_str_eq(req_ok(s, 1)->authority, "example.com");
}

H2S_TEST(hpack, rfc7541_4_2_smaller_table_setting,
         "RFC 7541 §4.2: after we advertise a smaller table, the peer's next block must start "
         "with a size update")
{
    h2_limits l = lim();
    l.header_table_size = 1024;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    cr_expect_eq(h2s_setting(s, H2_SET_HEADER_TABLE_SIZE), 1024);
    /* The script's encoder applied the setting at its ACK: it signals. */
    get_roundtrip(s, 1, "/", "a");
    /* Without the update: */
    uint8_t blk[64];
    h2s t;
    h2s_init(&t, s->mode);
    h2s_start(&t, &l, NULL);
    h2s_handshake(&t);
    size_t n = h2s_hpack_min_request(blk);
    h2s_headers_block(&t, 1, blk, n, &(h2s_hopts){.end_stream = true});
    h2s_run(&t);
    H2S_EXPECT_CONN_ERROR(&t, H2_COMPRESSION_ERROR);
    h2s_fini(&t);
}

static void garbage_case(h2s *s, int k)
{
    h2s_handshake(s);
    uint8_t blk[64];
    size_t n = h2s_hpack_min_request(blk);
    switch (k) {
    case 0:
        blk[n++] = 0x80; /* index 0 */
        break;
    case 1:
        n += h2s_hpack_int(blk + n, 0x80, 7, 62 + 5); /* beyond an empty dynamic table */
        break;
    case 2: /* literal whose value runs past the block */
        blk[n++] = 0x40;
        blk[n++] = 1;
        blk[n++] = 'a';
        blk[n++] = 10;
        blk[n++] = 'b';
        break;
    case 3: /* Huffman string of all ones (EOS) */
        blk[n++] = 0x40;
        blk[n++] = 0x84;
        memset(blk + n, 0xff, 4);
        n += 4;
        blk[n++] = 1;
        blk[n++] = 'v';
        break;
    case 4: /* integer that does not end */
        blk[n++] = 0xff;
        memset(blk + n, 0xff, 12);
        n += 12;
        break;
    default: /* a block that ends inside a representation */ blk[n++] = 0x41; break;
    }
    h2s_headers_block(s, 1, blk, n, &(h2s_hopts){.end_stream = true});
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_COMPRESSION_ERROR);
    cr_expect_null(h2s_req(s, 1));
}

H2S_TEST(hpack, rfc9113_4_3_garbage_block,
         "§4.3: a field block that does not decode is COMPRESSION_ERROR")
{
    for (int k = 0; k < 6; k++)
        sub(s, garbage_case, k);
}

H2S_TEST(hpack, rfc7541_2_3_indexed_across_requests,
         "RFC 7541 §2.3: dynamic table entries persist across requests, both directions")
{
    h2s_handshake(s);
    static const h2s_kv extra[] = {{"user-agent", "spindle-test/1.0 (a fairly long agent)"},
                                   {"x-session", "0123456789abcdef0123456789abcdef"},
                                   {"accept", "*/*"}};
    size_t sizes[4];
    for (uint32_t i = 0; i < 4; i++) {
        uint32_t sid = 1 + 2 * i;
        size_t before = h2s_mark(s);
        h2s_request(s, sid, "GET", "/same", extra, 3, true);
        sizes[i] = h2s_mark(s) - before;
        cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
        const h2s_ev *e = req_ok(s, sid);
        cr_expect_str_eq(e->path, "/same");
        cr_assert_eq(e->nfields, 3u);
        for (uint32_t j = 0; j < 3; j++) {
            cr_expect_str_eq(e->fields[j].name, extra[j].name);
            cr_expect_str_eq(e->fields[j].value, extra[j].value);
        }
        cr_assert_eq(h2s_respond(s, sid, 200,
                                 H2S_KV({"server", "spindle"}, {"x-resp", "a-long-response-value"}),
                                 true),
                     H2_OK);
        h2s_detach(s, sid);
        h2s_drain(s);
        cr_expect_str_eq(h2s_resp_field(s, sid, "x-resp"), "a-long-response-value");
    }
    cr_expect_lt(sizes[1], sizes[0] / 3, "[%s] repeated requests are indexed", s->mode_name);
    cr_expect_eq(sizes[2], sizes[1]);
    const h2s_frame *h1 = h2s_find(s, H2_FT_HEADERS, 1);
    const h2s_frame *h7 = h2s_find(s, H2_FT_HEADERS, 7);
    cr_expect_lt(h7->block_len, h1->block_len, "[%s] our encoder indexes too (%u vs %u)",
                 s->mode_name, h7->block_len, h1->block_len);
}

/* ============================================================================
 * 9. security.md limits
 * ========================================================================== */

/* --- Rapid Reset (CVE-2023-44487) ------------------------------------------------ */

static void rapid_pairs(h2s *s, uint32_t *sid, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        h2s_get(s, *sid, "/");
        h2s_rst(s, *sid, H2_CANCEL);
        *sid += 2;
    }
}

H2S_TEST(security, rapid_reset_small_burst,
         "security.md Rapid Reset: HEADERS+RST_STREAM beyond the reset burst is ENHANCE_YOUR_CALM")
{
    h2_limits l = lim();
    l.reset_burst = 20;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    s->auto_detach_reset = true;
    uint32_t sid = 1;
    rapid_pairs(s, &sid, 20);
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] the burst itself is allowed", s->mode_name);
    cr_expect_eq(h2s_ev_count(s, H2_EV_STREAM_RESET, H2S_ANY), 20u);
    cr_expect_eq(h2_conn_stats_get(s->c)->resets_recv, 20u);
    cr_expect_eq(s->ctx.limit_hits[H2_LIMIT_RESETS], 0u);
    rapid_pairs(s, &sid, 1);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_ENHANCE_YOUR_CALM);
    cr_expect_eq(s->ctx.limit_hits[H2_LIMIT_RESETS], 1u, "[%s] the shard counts the hit",
                 s->mode_name);
}

H2S_TEST(security, rapid_reset_refill,
         "security.md Rapid Reset: the reset bucket refills at reset_rate per second")
{
    h2_limits l = lim();
    l.reset_burst = 20;
    l.reset_rate = 10;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    s->auto_detach_reset = true;
    uint32_t sid = 1;
    rapid_pairs(s, &sid, 20);
    cr_assert_eq(h2s_run(s), H2_OK);
    s->now += 1000; /* 10 tokens back */
    rapid_pairs(s, &sid, 10);
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] refilled tokens are usable", s->mode_name);
    rapid_pairs(s, &sid, 1);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_ENHANCE_YOUR_CALM);
}

H2S_TEST(security, rapid_reset_default_burst,
         "security.md Rapid Reset: at the default burst of 1000, the 1001st reset ends the "
         "connection")
{
    h2s_handshake(s);
    s->auto_detach_reset = true;
    uint32_t sid = 1;
    rapid_pairs(s, &sid, 1000);
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    cr_expect_eq(h2s_ev_count(s, H2_EV_REQUEST, H2S_ANY), 1000u);
    cr_expect_eq(h2_conn_stream_count(s->c), 0u);
    rapid_pairs(s, &sid, 1);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_ENHANCE_YOUR_CALM);
    cr_expect_eq(h2s_goaway_last_id(s), 2001);
}

H2S_TEST(security, rapid_reset_handler_slots,
         "security.md: a stream the peer reset counts against max_concurrent_streams until "
         "h2_conn_stream_detach")
{
    h2_limits l = lim();
    l.max_concurrent_streams = 2;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    h2s_get(s, 3, "/");
    h2s_rst(s, 1, H2_CANCEL);
    h2s_rst(s, 3, H2_CANCEL);
    h2s_get(s, 5, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(h2s_ev_count(s, H2_EV_STREAM_RESET, H2S_ANY), 2u);
    cr_expect_eq(h2_conn_stream_count(s->c), 2u, "reset streams still held by handlers");
    cr_expect_eq(h2s_rst_code(s, 5), H2_REFUSED_STREAM);
    cr_expect_null(h2s_req(s, 5));
    cr_assert_eq(h2s_detach(s, 1), H2_OK);
    cr_expect_eq(h2_conn_stream_count(s->c), 1u);
    h2s_get(s, 7, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    req_ok(s, 7);
    h2s_get(s, 9, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(h2s_rst_code(s, 9), H2_REFUSED_STREAM);
    cr_assert_eq(h2s_detach(s, 3), H2_OK);
    h2s_respond_ok(s, 7, "ok");
    H2S_EXPECT_ALIVE(s);
}

/* --- Glitches (CVE-2019-9513, -9518, 2025-8671) --------------------------------- */

static void glitch_case(h2s *s, int k)
{
    h2_limits l = lim();
    l.glitch_burst = 50;
    if (k == 6)
        l.max_concurrent_streams = 1;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    for (uint32_t i = 0; i < 51; i++) {
        switch (k) {
        case 6: /* a peer that keeps opening past MAX_CONCURRENT_STREAMS */
            if (i == 0)
                h2s_get(s, 1, "/held");
            h2s_get(s, 3 + 2 * i, "/refused");
            break;
        case 0: /* empty DATA without END_STREAM */
            if (i == 0)
                h2s_request(s, 1, "POST", "/", NULL, 0, false);
            h2s_data(s, 1, NULL, 0, false);
            break;
        case 1: /* PRIORITY flood */ h2s_priority(s, 1 + 2 * (i % 7), 0, (uint8_t)i, false); break;
        case 2: /* SETTINGS churn (the first SETTINGS was free) */ h2s_settings(s, NULL, 0); break;
        case 3: /* MadeYouReset: valid-looking frames that make us reset streams */
            h2s_request(s, 1 + 2 * i, "POST", "/", NULL, 0, false);
            h2s_window_update(s, 1 + 2 * i, 0);
            break;
        case 4: /* requests we must reset as malformed */
            h2s_request(s, 1 + 2 * i, "GET", "/", H2S_KV({"connection", "x"}), true);
            break;
        default: { /* an empty HEADERS fragment, the block in a CONTINUATION */
            uint8_t blk[64];
            size_t n = h2s_hpack_min_request(blk);
            h2s_headers_block(s, 1 + 2 * i, NULL, 0,
                              &(h2s_hopts){.no_end_headers = true, .end_stream = true});
            h2s_continuation(s, 1 + 2 * i, true, blk, n);
            break;
        }
        }
        if (i == 49) {
            h2_rv rv = h2s_run(s);
            cr_assert_eq(rv, H2_OK, "[%s] case %d: 50 glitches are within the budget (%s)",
                         s->mode_name, k, h2_conn_fault(s->c).reason);
        }
    }
    s->auto_detach_reset = true;
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_ENHANCE_YOUR_CALM);
    cr_expect_eq(h2_conn_stats_get(s->c)->glitches, 51u, "[%s] case %d: %llu glitches",
                 s->mode_name, k, (unsigned long long)h2_conn_stats_get(s->c)->glitches);
    cr_expect_eq(s->ctx.limit_hits[H2_LIMIT_GLITCHES], 1u, "[%s] case %d", s->mode_name, k);
}

H2S_TEST(security, glitch_budget,
         "security.md glitches: empty DATA/HEADERS, PRIORITY flood, SETTINGS churn, provoked "
         "resets, refused streams exhaust the budget: ENHANCE_YOUR_CALM")
{
    for (int k = 0; k < 7; k++)
        sub(s, glitch_case, k);
}

H2S_TEST(security, priority_flood_default_budget,
         "security.md (CVE-2019-9513): 10001 PRIORITY frames at the default budget")
{
    h2s_handshake(s);
    for (uint32_t i = 0; i < 10000; i++)
        h2s_priority(s, 1 + 2 * (i % 100), 0, 16, false);
    cr_assert_eq(h2s_run(s), H2_OK);
    h2s_priority(s, 1, 0, 16, false);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, H2_ENHANCE_YOUR_CALM);
}

/* --- Pending control replies (CVE-2019-9512, -9514, -9515) ------------------------- */

static void flood_case(h2s *s, int k)
{
    h2s_mem *m = new_mem(s);
    h2s_start(s, NULL, m);
    h2s_handshake(s);
    h2s_get(s, 1, "/warm");
    cr_assert_eq(h2s_run(s), H2_OK);
    h2s_respond_ok(s, 1, "warm");
    h2s_drain(s);
    uint64_t base = m->live_bytes;
    m->peak_bytes = base;
    const uint32_t n = 5000;
    size_t mark = h2s_mark(s);
    for (uint32_t i = 0; i < n; i++) {
        if (k == 0)
            h2s_ping_n(s, i);
        else if (k == 1)
            h2s_settings(s, NULL, 0);
        else /* a request we refuse as malformed: RST_STREAM each */
            h2s_request(s, 3 + 2 * i, "GET", "/", H2S_KV({"te", "gzip"}), true);
    }
    size_t per = (h2s_mark(s) - mark) / n;
    s->drain_on_again = false;
    h2_rv rv = h2s_feed(s);
    cr_expect_eq(rv, H2_E_AGAIN, "[%s] case %d: reading pauses at the control-reply cap",
                 s->mode_name, k);
    cr_expect_geq(s->ctx.limit_hits[H2_LIMIT_CONTROL_QUEUE], 1u, "[%s] case %d", s->mode_name, k);
    cr_expect_not(h2_conn_want_read(s->c));
    size_t frames = (s->fed - mark) / per;
    cr_expect_eq(frames, 1000u, "[%s] case %d: %zu frames read before pausing", s->mode_name, k,
                 frames);
    uint64_t unsent = h2_conn_unsent(s->c);
    cr_expect_leq(unsent, 1000u * 17u, "[%s] case %d: %llu bytes queued", s->mode_name, k,
                  (unsigned long long)unsent);
    cr_expect_leq(m->peak_bytes - base, 48u * KIB, "[%s] case %d: %llu bytes for the flood",
                  s->mode_name, k, (unsigned long long)(m->peak_bytes - base));
    /* Not reading: a second call pauses again without consuming. */
    size_t fed = s->fed;
    cr_expect_eq(h2s_feed(s), H2_E_AGAIN);
    cr_expect_eq(s->fed, fed);
    cr_expect_eq(s->ctx.limit_hits[H2_LIMIT_CONTROL_QUEUE], 1u, "[%s] case %d: one pause, one hit",
                 s->mode_name, k);
    /* The client reads: the server reads again, and answers everything. */
    uint32_t rounds = 0;
    while (s->fed < s->in_len && rounds++ < 20) {
        h2s_drain(s);
        cr_expect(h2_conn_want_read(s->c));
        h2s_feed(s);
    }
    h2s_drain(s);
    cr_expect_eq(s->fed, s->in_len);
    cr_expect_eq(s->first_err, H2_OK, "[%s] case %d: %s", s->mode_name, k,
                 h2_conn_fault(s->c).reason);
    if (k == 0)
        cr_expect_eq(count_flags(s, H2_FT_PING, 0, H2_FLAG_ACK), n);
    else if (k == 1)
        cr_expect_eq(s->server_acks_seen, n + 1);
    else
        cr_expect_eq(h2s_count(s, H2_FT_RST_STREAM, H2S_ANY), n);
    cr_expect_leq(m->peak_bytes - base, 48u * KIB);
}

H2S_TEST(security, pending_control_cap,
         "security.md: PING/SETTINGS/reset floods without reading stop reading at 1000 pending "
         "replies, with bounded memory")
{
    for (int k = 0; k < 3; k++)
        sub(s, flood_case, k);
}

/* --- CONTINUATION floods (CVE-2024-27316 and kin) --------------------------------- */

static void cont_count_case(h2s *s, int k)
{
    h2s_handshake(s);
    uint8_t blk[64];
    size_t n = h2s_hpack_min_request(blk);
    if (k == 0) {
        /* A real block split in 10 frames: the 9th CONTINUATION is refused. */
        h2s_headers_block(s, 1, blk, n, &(h2s_hopts){.continuations = 9, .end_stream = true});
    } else {
        /* Endless empty CONTINUATIONs. */
        h2s_headers_block(s, 1, blk, n, &(h2s_hopts){.no_end_headers = true});
        for (int i = 0; i < 100; i++)
            h2s_continuation(s, 1, false, NULL, 0);
    }
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR2(s, H2_ENHANCE_YOUR_CALM, H2_PROTOCOL_ERROR);
    cr_expect_null(h2s_req(s, 1));
    if (k == 0) {
        cr_expect_eq(h2_conn_stats_get(s->c)->frames_in, 2u + 1u + 9u,
                     "[%s] stopped at the 9th CONTINUATION", s->mode_name);
        cr_expect_eq(s->ctx.limit_hits[H2_LIMIT_CONTINUATIONS], 1u);
    }
}

H2S_TEST(security, continuation_count_cap,
         "security.md: the 9th CONTINUATION of a block is ENHANCE_YOUR_CALM")
{
    sub(s, cont_count_case, 0);
    sub(s, cont_count_case, 1);
}

static void block_cap_case(h2s *s, int k)
{
    h2_limits l = lim();
    if (k < 2)
        l.max_header_block = 1024;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    uint8_t *blk = h2s_alloc(s, 90000);
    size_t n = h2s_hpack_min_request(blk);
    size_t want = k < 2 ? 1500 : 80000;
    char name[16];
    for (uint32_t i = 0; n < want; i++) {
        snprintf(name, sizeof name, "x-f%u", i);
        n += h2s_hpack_lit(blk + n, name, strlen(name), "0123456789012345678901234567890123456789",
                           40);
    }
    if (k == 0) /* one HEADERS frame above the block cap */
        h2s_headers_block(s, 1, blk, n, &(h2s_hopts){.end_stream = true});
    else
        h2s_headers_block(s, 1, blk, n,
                          &(h2s_hopts){.end_stream = true, .continuations = k == 1 ? 3 : 4});
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR2(s, H2_ENHANCE_YOUR_CALM, H2_PROTOCOL_ERROR);
    cr_expect_null(h2s_req(s, 1));
}

H2S_TEST(security, header_block_byte_cap,
         "security.md: an encoded header block above max_header_block ends the connection")
{
    for (int k = 0; k < 3; k++)
        sub(s, block_cap_case, k);
}

/* --- HPACK bomb (CVE-2016-6581) and decoded-size limits ----------------------------- */

/* min request + "x-bomb: 4000 x 'a'" (incremental indexing, new name) + refs
 * index-62 references to it.  Raw: the script's encoder does not see the
 * insertion, so later blocks on this connection must be raw too. */
static size_t bomb_block(uint8_t *p, uint32_t refs)
{
    size_t n = h2s_hpack_min_request(p);
    p[n++] = 0x40;
    n += h2s_hpack_int(p + n, 0x00, 7, 6);
    memcpy(p + n, "x-bomb", 6);
    n += 6;
    n += h2s_hpack_int(p + n, 0x00, 7, 4000);
    memset(p + n, 'a', 4000);
    n += 4000;
    for (uint32_t i = 0; i < refs; i++)
        p[n++] = 0x80 | 62;
    return n;
}

H2S_TEST(security, hpack_bomb_connection_error,
         "security.md HPACK bomb: thousands of references to a 4 KB entry end the connection "
         "cheaply")
{
    h2s_mem *m = new_mem(s);
    h2s_start(s, NULL, m);
    h2s_handshake(s);
    uint64_t base = m->live_bytes;
    m->peak_bytes = base;
    uint64_t allocs = m->allocs;
    uint8_t *blk = h2s_alloc(s, 16384);
    size_t n = bomb_block(blk, 10000); /* ~40 MB decoded */
    cr_assert_leq(n, 16384u);
    h2s_headers_block(s, 1, blk, n, &(h2s_hopts){.end_stream = true});
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR2(s, H2_ENHANCE_YOUR_CALM, H2_COMPRESSION_ERROR);
    cr_expect_null(h2s_req(s, 1));
    cr_expect_leq(m->peak_bytes - base, 32u * KIB, "[%s] the bomb cost %llu bytes", s->mode_name,
                  (unsigned long long)(m->peak_bytes - base));
    cr_expect_leq(m->allocs - allocs, 8u, "[%s] %llu allocations", s->mode_name,
                  (unsigned long long)(m->allocs - allocs));
}

H2S_TEST(security, hpack_bomb_431_keeps_hpack,
         "security.md: a decoded list past 64 KiB but within 4x gets 431; HPACK stays in step")
{
    h2s_handshake(s);
    uint8_t *blk = h2s_alloc(s, 16384);
    size_t n = bomb_block(blk, 20); /* 21 x 4038 = 84798 bytes decoded */
    h2s_headers_block(s, 1, blk, n, &(h2s_hopts){.end_stream = true});
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    cr_expect_null(h2s_req(s, 1));
    cr_expect_eq(h2s_status(s, 1), 431);
    cr_expect(h2s_st(s, 1)->ended);
    /* The entry the 431'd block inserted is usable. */
    n = h2s_hpack_min_request(blk);
    blk[n++] = 0x80 | 62;
    h2s_headers_block(s, 3, blk, n, &(h2s_hopts){.end_stream = true});
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    const h2s_ev *e = req_ok(s, 3);
    const char *v = h2s_field_get(e->fields, e->nfields, "x-bomb");
    cr_assert_not_null(v);
    cr_expect_eq(strlen(v), 4000u);
    cr_expect_eq(v[3999], 'a');
}

static size_t many_fields_block(uint8_t *p, uint32_t nregular)
{
    size_t n = h2s_hpack_min_request(p);
    char name[16];
    for (uint32_t i = 0; i < nregular; i++) {
        snprintf(name, sizeof name, "x-f%04u", i);
        n += h2s_hpack_lit(p + n, name, strlen(name), "v", 1);
    }
    return n;
}

H2S_TEST(security, header_fields_soft_limit,
         "security.md: 100 fields are fine; the 101st gets 431 (and RST NO_ERROR for an open body)")
{
    h2s_handshake(s);
    uint8_t *blk = h2s_alloc(s, 16384);
    size_t n = many_fields_block(blk, 96); /* 4 pseudo + 96 = 100 */
    h2s_headers_block(s, 1, blk, n, &(h2s_hopts){.end_stream = true});
    n = many_fields_block(blk, 97); /* 101 */
    h2s_headers_block(s, 3, blk, n, &(h2s_hopts){.end_stream = true});
    n = many_fields_block(blk, 97);
    h2s_headers_block(s, 5, blk, n, NULL); /* a body would follow */
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    cr_expect_eq(req_ok(s, 1)->nfields, 96u);
    cr_expect_null(h2s_req(s, 3));
    cr_expect_eq(h2s_status(s, 3), 431);
    cr_expect(h2s_st(s, 3)->ended);
    cr_expect_eq(h2s_status(s, 5), 431);
    cr_expect_eq(h2s_rst_code(s, 5), H2_NO_ERROR);
    cr_expect_eq(s->ctx.limit_hits[H2_LIMIT_HEADER_LIST], 2u, "[%s] two 431s counted",
                 s->mode_name);
    h2s_data(s, 5, "ignored body", 12, true); /* in flight: discarded */
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    h2s_respond_ok(s, 1, "ok");
    H2S_EXPECT_ALIVE(s);
    cr_expect_eq(h2s_status(s, 1), 200);
}

H2S_TEST(security, header_fields_hard_limit,
         "security.md: past 1000 fields the connection ends (ENHANCE_YOUR_CALM/COMPRESSION_ERROR)")
{
    h2s_handshake(s);
    uint8_t *blk = h2s_alloc(s, 16384);
    size_t n = many_fields_block(blk, 996); /* 1000: soft only */
    h2s_headers_block(s, 1, blk, n, &(h2s_hopts){.end_stream = true});
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    cr_expect_eq(h2s_status(s, 1), 431);
    n = many_fields_block(blk, 997); /* 1001 */
    h2s_headers_block(s, 3, blk, n, &(h2s_hopts){.end_stream = true});
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR2(s, H2_ENHANCE_YOUR_CALM, H2_COMPRESSION_ERROR);
}

/* --- Requests per connection --------------------------------------------------------- */

H2S_TEST(security, max_requests_graceful_goaway,
         "security.md: after max_requests, GOAWAY NO_ERROR; earlier streams finish")
{
    h2_limits l = lim();
    l.max_requests = 3;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    get_roundtrip(s, 1, "/", "1");
    h2s_get(s, 3, "/");
    h2s_request(s, 5, "POST", "/", NULL, 0, false);
    cr_assert_eq(h2s_run(s), H2_OK);
    const h2s_frame *g = h2s_last(s, H2_FT_GOAWAY, 0);
    cr_assert_not_null(g, "[%s] GOAWAY after the third request", s->mode_name);
    cr_expect_eq(g->f.u.goaway.code, H2_NO_ERROR);
    cr_expect_eq(g->f.u.goaway.last_stream_id, 5u);
    cr_expect_eq(s->ctx.limit_hits[H2_LIMIT_MAX_REQUESTS], 1u);
    /* A request the client sent before it saw the GOAWAY: ignored. */
    h2s_get(s, 7, "/");
    h2s_data(s, 5, "body", 4, true);
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    cr_expect_null(h2s_req(s, 7));
    cr_expect(h2s_st(s, 5)->req_ended);
    cr_expect_not(h2_conn_is_done(s->c));
    h2s_respond_ok(s, 3, "3");
    h2s_respond_ok(s, 5, "5");
    h2s_drain(s);
    cr_expect_eq(h2s_status(s, 3), 200);
    cr_expect_eq(h2s_status(s, 5), 200);
    cr_expect_null(h2s_find(s, H2_FT_HEADERS, 7));
    cr_expect(h2_conn_is_done(s->c), "[%s] done once the streams before the GOAWAY finished",
              s->mode_name);
    cr_expect_eq(h2s_count(s, H2_FT_GOAWAY, 0), 1u);
}

H2S_TEST(security, rfc9113_6_8_data_on_stream_after_goaway_discarded,
         "§6.8: DATA on a stream above our GOAWAY's last id is discarded (and counted), not a "
         "connection error")
{
    h2_limits l = lim();
    l.max_requests = 1;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(h2s_goaway_last_id(s), 1);
    /* The client raced a request with a body against our GOAWAY. */
    h2s_request(s, 3, "POST", "/raced", NULL, 0, false);
    h2s_data(s, 3, "raced body", 10, true);
    h2s_data(s, 1, "body", 4, true);
    h2s_run(s);
    cr_expect_eq(s->first_err, H2_OK,
                 "[%s] connection error %s (%s) for DATA on ignored "
                 "stream 3",
                 s->mode_name, h2_code_name(h2_conn_fault(s->c).code),
                 h2_conn_fault(s->c).reason ? h2_conn_fault(s->c).reason : "");
    cr_expect_null(h2s_req(s, 3));
    if (s->first_err == H2_OK) {
        h2s_respond_ok(s, 1, "done");
        h2s_drain(s);
        cr_expect_eq(h2s_status(s, 1), 200, "[%s] stream 1 completes", s->mode_name);
        cr_expect(h2_conn_is_done(s->c));
    }
}

/* --- Timeouts (fake clock) ------------------------------------------------------------ */

H2S_TEST(timeout, security_preface_timeout, "security.md: no preface within 10 s: GOAWAY")
{
    h2s_start(s, NULL, NULL);
    uint64_t t0 = s->now;
    cr_expect_eq(h2_conn_next_deadline(s->c), t0 + 10000);
    h2s_raw(s, H2_PREFACE, 10); /* part of a preface */
    s->now = t0 + 5000;
    cr_assert_eq(h2s_run(s), H2_OK);
    s->now = t0 + 9999;
    cr_expect_eq(h2s_tick(s), H2_OK);
    s->now = t0 + 10000;
    cr_expect_eq(h2s_tick(s), H2_E_PROTO);
    H2S_EXPECT_CONN_ERROR2(s, H2_ENHANCE_YOUR_CALM, H2_PROTOCOL_ERROR);
    cr_expect_eq(h2_conn_next_deadline(s->c), UINT64_MAX);
}

H2S_TEST(timeout, rfc9113_6_5_3_settings_timeout,
         "§6.5.3: no SETTINGS ACK within 10 s: SETTINGS_TIMEOUT")
{
    h2s_start(s, NULL, NULL);
    uint64_t t0 = s->now;
    h2s_preface(s);
    h2s_settings(s, NULL, 0);
    h2s_get(s, 1, "/"); /* activity does not excuse the missing ACK */
    s->now = t0 + 2000;
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(h2_conn_next_deadline(s->c), t0 + 10000);
    s->now = t0 + 9999;
    cr_expect_eq(h2s_tick(s), H2_OK);
    s->now = t0 + 10000;
    h2s_tick(s);
    H2S_EXPECT_CONN_ERROR(s, H2_SETTINGS_TIMEOUT);
}

H2S_TEST(timeout, security_settings_acked_no_timeout,
         "security.md: with the ACK in time no SETTINGS_TIMEOUT fires")
{
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    s->now += 120000; /* a long request: no idle timeout with a stream open */
    cr_expect_eq(h2s_tick(s), H2_OK);
    cr_expect_eq(h2_conn_next_deadline(s->c), UINT64_MAX);
    h2s_respond_ok(s, 1, "slow");
    h2s_drain(s);
    H2S_EXPECT_ALIVE(s);
}

H2S_TEST(timeout, security_header_block_timeout,
         "security.md: a header block not completed within 10 s ends the connection")
{
    h2s_handshake(s);
    uint64_t t0 = s->now;
    uint8_t blk[64];
    (void)h2s_hpack_min_request(blk);
    h2s_headers_block(s, 1, blk, 5, &(h2s_hopts){.no_end_headers = true});
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_leq(h2_conn_next_deadline(s->c), t0 + 10000);
    /* Slowloris: a CONTINUATION every 4 s does not extend the deadline. */
    s->now = t0 + 4000;
    h2s_continuation(s, 1, false, blk + 5, 1);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(h2s_tick(s), H2_OK);
    s->now = t0 + 8000;
    h2s_continuation(s, 1, false, blk + 6, 1);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(h2s_tick(s), H2_OK);
    s->now = t0 + 10000;
    h2s_tick(s);
    H2S_EXPECT_CONN_ERROR2(s, H2_ENHANCE_YOUR_CALM, H2_PROTOCOL_ERROR);
    cr_expect_null(h2s_req(s, 1));
}

H2S_TEST(timeout, security_idle_timeout,
         "security.md: 60 s without streams or input: GOAWAY NO_ERROR")
{
    h2s_handshake(s);
    get_roundtrip(s, 1, "/", "x");
    uint64_t t1 = s->now;
    cr_expect_eq(h2_conn_next_deadline(s->c), t1 + 60000);
    s->now = t1 + 30000;
    H2S_EXPECT_ALIVE(s); /* input moves the idle deadline */
    uint64_t t2 = s->now;
    s->now = t2 + 59999;
    cr_expect_eq(h2s_tick(s), H2_OK);
    s->now = t2 + 60000;
    h2s_tick(s);
    H2S_EXPECT_CONN_ERROR(s, H2_NO_ERROR);
    cr_expect_eq(h2s_goaway_last_id(s), 1);
}

H2S_TEST(timeout, security_send_timeout_unread,
         "security.md: output not written for 30 s (peer not reading) ends the connection")
{
    h2s_handshake(s);
    uint64_t t0 = s->now;
    h2s_ping_n(s, 1);
    cr_assert_eq(h2s_feed(s), H2_OK); /* the ACK stays queued: the peer does not read */
    cr_expect_gt(h2_conn_unsent(s->c), 0u);
    cr_expect_eq(h2_conn_next_deadline(s->c), t0 + 30000);
    /* Some progress (one byte written at +20 s) restarts the clock. */
    s->now = t0 + 20000;
    struct iovec iov[1];
    cr_assert_eq(h2_conn_out_prepare(s->c, iov, 1, 1), 1u);
    h2s_tick(s);
    cr_expect_eq(s->first_err, H2_OK);
    uint8_t one;
    cr_assert_eq(h2_conn_send(s->c, &one, 1, s->now), 1u);
    s->now = t0 + 49999;
    cr_expect_eq(h2s_tick(s), H2_OK);
    s->now = t0 + 50000;
    h2s_tick(s);
    /* The harness's copy of the output lost a byte: resynchronise by
     * discarding what is queued instead of parsing it. */
    uint8_t junk[4096];
    while (h2_conn_send(s->c, junk, sizeof junk, s->now))
        ;
    cr_expect_eq(s->first_err, H2_E_PROTO, "[%s] send timeout", s->mode_name);
    h2_fault f = h2_conn_fault(s->c);
    cr_expect_eq(f.scope, H2_SCOPE_CONN);
    cr_expect(h2_conn_is_done(s->c));
}

H2S_TEST(timeout, security_send_timeout_zero_window,
         "security.md: a response stalled by a zero window for 30 s ends the connection")
{
    h2_setting set = {H2_SET_INITIAL_WINDOW_SIZE, 0};
    h2s_handshake_with(s, &set, 1);
    h2s_get(s, 1, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2s_respond(s, 1, 200, NULL, 0, false), H2_OK);
    uint8_t *body = h2s_alloc(s, 1000);
    cr_assert_eq(h2s_send_body(s, 1, body, 1000, 1, true), H2_OK);
    h2s_drain(s);
    uint64_t t0 = s->now;
    cr_expect_eq(h2_conn_stream_buffered(s->c, 1), 1000u);
    uint64_t d = h2_conn_next_deadline(s->c);
    cr_expect_leq(d, t0 + 30000,
                  "[%s] no deadline while a response is stuck at window 0 "
                  "(next deadline %llu, now %llu)",
                  s->mode_name, (unsigned long long)d, (unsigned long long)t0);
    s->now = t0 + 30000;
    h2s_tick(s);
    cr_expect_eq(s->first_err, H2_E_PROTO, "[%s] the zero-window stall never times out",
                 s->mode_name);
    if (s->first_err == H2_E_PROTO)
        H2S_EXPECT_CONN_ERROR2(s, H2_ENHANCE_YOUR_CALM, H2_FLOW_CONTROL_ERROR);
}

static void dribble_case(h2s *s, int k)
{
    h2_setting set = {H2_SET_INITIAL_WINDOW_SIZE, 0};
    h2s_handshake_with(s, &set, 1);
    h2s_get(s, 1, "/");
    h2s_get(s, 3, "/done");
    cr_assert_eq(h2s_run(s), H2_OK);
    h2s_respond_ok(s, 3, ""); /* stream 3: closed */
    cr_assert_eq(h2s_respond(s, 1, 200, NULL, 0, false), H2_OK);
    uint8_t *body = h2s_alloc(s, 1000);
    cr_assert_eq(h2s_send_body(s, 1, body, 1000, 1, true), H2_OK);
    h2s_drain(s);
    uint64_t t0 = s->now;
    for (uint32_t i = 1; i <= 6 && s->first_err == H2_OK; i++) {
        s->now = t0 + 10000u * i;
        if (i % 2 == 0) {
            if (k == 0)
                h2s_window_update(s, 0, 1); /* connection window only: stream 1 stays at 0 */
            else if (k == 1)
                h2s_window_update(s, 3, 1); /* a closed stream */
            else
                h2s_window_update(s, 1, 1); /* one byte really goes out */
            cr_assert_eq(h2s_run(s), H2_OK);
        }
        h2s_tick(s);
    }
    size_t n = 0;
    h2s_body(s, 1, &n);
    if (k < 2) {
        cr_expect_eq(n, 0u);
        cr_expect_eq(s->first_err, H2_E_PROTO,
                     "[%s] case %d: WINDOW_UPDATEs that let nothing out kept a stalled response "
                     "alive for 60 s",
                     s->mode_name, k);
        if (s->first_err == H2_E_PROTO)
            H2S_EXPECT_CONN_ERROR2(s, H2_ENHANCE_YOUR_CALM, H2_FLOW_CONTROL_ERROR);
    } else {
        cr_expect_eq(n, 3u, "[%s] one byte per grant", s->mode_name);
        cr_expect_eq(s->first_err, H2_OK, "[%s] a peer granting a byte every 20 s makes progress",
                     s->mode_name);
    }
}

H2S_TEST(timeout, security_send_timeout_window_dribble,
         "security.md: WINDOW_UPDATEs that release no byte of a stalled response are not send "
         "progress")
{
    for (int k = 0; k < 3; k++)
        sub(s, dribble_case, k);
}

/* --- Graceful shutdown (§6.8) ----------------------------------------------------------- */

static void ack_shutdown_ping(h2s *s)
{
    const h2s_frame *p = NULL;
    for (size_t i = s->nframes; i-- > 0;)
        if (s->frames[i].hdr.type == H2_FT_PING && !(s->frames[i].hdr.flags & H2_FLAG_ACK)) {
            p = &s->frames[i];
            break;
        }
    cr_assert_not_null(p, "[%s] no PING with the shutdown GOAWAY", s->mode_name);
    h2s_ping(s, true, p->f.u.ping);
}

H2S_TEST(shutdown, rfc9113_6_8_graceful_shutdown,
         "§6.8: shutdown sends GOAWAY(2^31-1)+PING, then GOAWAY(last id) on the ACK; later "
         "streams are ignored; done when the rest finish")
{
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    h2s_get(s, 3, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2_conn_shutdown(s->c), H2_OK);
    cr_assert_eq(h2_conn_shutdown(s->c), H2_OK, "idempotent");
    h2s_drain(s);
    cr_expect_eq(h2s_count(s, H2_FT_GOAWAY, 0), 1u);
    const h2s_frame *g = h2s_last(s, H2_FT_GOAWAY, 0);
    cr_assert_not_null(g);
    cr_expect_eq(g->f.u.goaway.last_stream_id, 0x7fffffffu);
    cr_expect_eq(g->f.u.goaway.code, H2_NO_ERROR);
    const h2s_frame *p = h2s_last(s, H2_FT_PING, 0);
    cr_assert_not_null(p);
    cr_expect_eq(p->hdr.flags & H2_FLAG_ACK, 0);
    cr_expect_gt(h2s_index_of(s, p), h2s_index_of(s, g), "the PING follows the GOAWAY");
    cr_expect_not(h2_conn_is_done(s->c));
    /* Stream 5 was in flight before the client saw the notice: served. */
    h2s_get(s, 5, "/inflight");
    ack_shutdown_ping(s);
    h2s_get(s, 7, "/too-late");
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    cr_expect_eq(h2s_ev_count(s, H2_EV_PING_ACK, 0), 0u, "the shutdown PING is internal");
    cr_expect_eq(h2s_count(s, H2_FT_GOAWAY, 0), 2u);
    g = h2s_last(s, H2_FT_GOAWAY, 0);
    cr_expect_eq(g->f.u.goaway.last_stream_id, 5u);
    cr_expect_eq(g->f.u.goaway.code, H2_NO_ERROR);
    req_ok(s, 5);
    cr_expect_null(h2s_req(s, 7));
    cr_expect_eq(h2s_count(s, H2_FT_RST_STREAM, 7), 0u);
    /* The streams up to 5 finish normally. */
    h2s_data(s, 1, "tail", 4, true);
    cr_assert_eq(h2s_run(s), H2_OK);
    h2s_respond_ok(s, 1, "1");
    h2s_respond_ok(s, 3, "3");
    h2s_drain(s);
    cr_expect_not(h2_conn_is_done(s->c), "stream 5 is still open");
    h2s_respond_ok(s, 5, "5");
    h2s_drain(s);
    for (uint32_t sid = 1; sid <= 5; sid += 2)
        cr_expect_eq(h2s_status(s, sid), 200, "[%s] stream %u", s->mode_name, sid);
    cr_expect(h2_conn_is_done(s->c));
    cr_expect_eq(s->first_err, H2_OK);
}

H2S_TEST(shutdown, rfc9113_6_8_after_shutdown_raced_body,
         "§6.8: after the final GOAWAY a raced request with a body is discarded, not an error")
{
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2_conn_shutdown(s->c), H2_OK);
    h2s_drain(s);
    ack_shutdown_ping(s);
    h2s_request(s, 3, "POST", "/raced", NULL, 0, false);
    h2s_data(s, 3, "data", 4, true);
    h2s_run(s);
    cr_expect_eq(s->first_err, H2_OK, "[%s] connection error %s (%s)", s->mode_name,
                 h2_code_name(h2_conn_fault(s->c).code),
                 h2_conn_fault(s->c).reason ? h2_conn_fault(s->c).reason : "");
    if (s->first_err == H2_OK) {
        h2s_respond_ok(s, 1, "one");
        h2s_drain(s);
        cr_expect_eq(h2s_status(s, 1), 200);
        cr_expect(h2_conn_is_done(s->c));
    }
}

H2S_TEST(shutdown, h2_conn_goaway_immediate,
         "h2_conn_goaway(NO_ERROR): GOAWAY with the last peer stream")
{
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2_conn_goaway(s->c, H2_NO_ERROR, "maintenance"), H2_OK);
    h2s_get(s, 3, "/");
    cr_assert_eq(h2s_run(s), H2_OK);
    const h2s_frame *g = h2s_last(s, H2_FT_GOAWAY, 0);
    cr_assert_not_null(g);
    cr_expect_eq(g->f.u.goaway.last_stream_id, 1u);
    cr_expect_null(h2s_req(s, 3));
    h2s_respond_ok(s, 1, "last");
    h2s_drain(s);
    cr_expect_eq(h2s_status(s, 1), 200);
    cr_expect(h2_conn_is_done(s->c));
}

/* ============================================================================
 * 10. Memory: the warm path allocates nothing; every allocation failure is clean
 * ========================================================================== */

static const uint8_t g_static_body[1000] = {1, 2, 3};

static void warm_cycle(h2s *s, uint32_t sid, bool body_and_trailers)
{
    static const h2s_kv extra[] = {
        {"user-agent", "warm/1.0"}, {"accept", "*/*"}, {"x-request-id", "fixed-id-for-indexing"}};
    h2s_request(s, sid, body_and_trailers ? "POST" : "GET", "/warm", extra, 3, !body_and_trailers);
    if (body_and_trailers) {
        h2s_data(s, sid, g_static_body, 500, false);
        h2s_headers(s, sid, H2S_KV({"x-client-trailer", "t"}), &(h2s_hopts){.end_stream = true});
    }
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    req_ok(s, sid);
    if (body_and_trailers)
        cr_assert_eq(h2_conn_consume(s->c, sid, 500), H2_OK);
    hpack_field f[2] = {h2s_hf("content-type", "application/grpc"), h2s_hf("server", "spindle")};
    cr_assert_eq(h2_conn_respond(s->c, sid, 200, f, 2, false), H2_OK);
    cr_assert_eq(h2_conn_send_data(s->c, sid, g_static_body, sizeof g_static_body,
                                   !body_and_trailers, NULL, NULL),
                 H2_OK);
    if (body_and_trailers) {
        hpack_field t[2] = {h2s_hf("grpc-status", "0"), h2s_hf("grpc-message", "ok")};
        cr_assert_eq(h2_conn_send_trailers(s->c, sid, t, 2), H2_OK);
    }
    cr_assert_eq(h2s_detach(s, sid), H2_OK);
    h2s_drain(s);
    cr_assert_eq(h2s_status(s, sid), 200);
    cr_assert(h2s_st(s, sid)->ended);
}

static void warm_case(h2s *s, bool body_and_trailers)
{
    h2s_mem *m = new_mem(s);
    h2s_start(s, NULL, m);
    h2s_handshake(s);
    uint64_t calls0 = 0;
    for (uint32_t i = 0; i < 100; i++) {
        if (i == 50)
            calls0 = m->calls;
        warm_cycle(s, 1 + 2 * i, body_and_trailers);
        /* Keep the client's connection window open. */
        if (i % 20 == 19)
            h2s_window_update(s, 0, 20 * 2000);
    }
    uint64_t calls = m->calls - calls0;
    cr_expect_eq(calls, 0u, "[%s] %llu h2_mem allocations in the last 50 warm cycles%s",
                 s->mode_name, (unsigned long long)calls,
                 body_and_trailers ? " (with request body and response trailers)" : "");
    cr_expect_eq(h2_conn_stream_count(s->c), 0u);
    /* An idle connection holds no output block (h2_conn.h). */
    cr_expect_eq(h2_conn_unsent(s->c), 0u);
}

H2S_TEST(memory, h2_conn_warm_cycle_allocates_nothing,
         "h2_conn.h: after warm-up a request/response cycle allocates nothing")
{
    warm_case(s, false);
}

H2S_TEST(memory, h2_conn_warm_cycle_with_trailers_allocates_nothing,
         "h2_conn.h: a warm cycle with a request body and response trailers allocates nothing")
{
    warm_case(s, true);
}

static void free_busy_case(h2s *s, int k)
{
    h2s_mem *m = new_mem(s);
    h2s_start(s, NULL, m);
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    h2s_request(s, 3, "POST", "/", NULL, 0, false);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2s_respond(s, 1, 200, NULL, 0, false), H2_OK);
    uint8_t *body = h2s_alloc(s, 100000);
    cr_assert_eq(h2s_send_body(s, 1, body, 100000, 4, true), H2_OK);
    if (k >= 1)
        h2s_drain(s); /* output written, streams still open (window-blocked) */
    if (k == 2)
        h2s_detach(s, 1);
    /* h2s_fini frees the connection and the context, then checks that the
     * allocator got every block back. */
}

H2S_TEST(memory, h2_conn_free_with_open_streams,
         "h2_conn.h: freeing a connection with open streams and queued output returns all memory")
{
    for (int k = 0; k < 3; k++)
        sub(s, free_busy_case, k);
}

/* One full scripted session under an allocator that fails call fail_at
 * (and every later one with fail_after).  Nothing asserts on engine
 * results except that they are OK, NOMEM or the CLOSED that follows a
 * NOMEM; h2s_fini checks that every block came back and every chunk was
 * released once. */
static void nomem_session(h2s *s, uint64_t fail_at, bool fail_after, uint64_t *calls_out)
{
    h2s_mem *m = new_mem(s);
    m->fail_at = fail_at;
    m->fail_after = fail_after;
    h2_limits l = lim();
    h2_rv rv = h2s_try_start(s, &l, m);
    if (rv != H2_OK) {
        cr_expect_eq(rv, H2_E_NOMEM, "[%s] fail_at %llu: start: %s", s->mode_name,
                     (unsigned long long)fail_at, h2_rv_name(rv));
        *calls_out = m->calls;
        return;
    }
#define OK_OR_NOMEM(expr)                                                                          \
    do {                                                                                           \
        h2_rv r_ = (expr);                                                                         \
        cr_expect(r_ == H2_OK || r_ == H2_E_NOMEM || r_ == H2_E_CLOSED ||                          \
                      (r_ == H2_E_NOSTREAM && s->first_err != H2_OK),                              \
                  "[%s] fail_at %llu: %s returned %s", s->mode_name, (unsigned long long)fail_at,  \
                  #expr, h2_rv_name(r_));                                                          \
        if (r_ == H2_E_NOMEM && s->first_err == H2_OK)                                             \
            s->first_err = r_;                                                                     \
    } while (0)
    h2s_preface(s);
    h2s_settings(s, NULL, 0);
    OK_OR_NOMEM(h2s_run(s));
    if (s->first_err == H2_OK && s->nframes)
        h2s_settings_ack(s);
    /* A request split over HEADERS + CONTINUATION, with a body and trailers. */
    h2s_headers(s, 1,
                H2S_KV({":method", "POST"}, {":scheme", "https"}, {":authority", "example.com"},
                       {":path", "/nomem"}, {"x-a", "0123456789012345678901234567890123456789"}),
                &(h2s_hopts){.continuations = 2});
    h2s_data(s, 1, g_static_body, 300, false);
    h2s_headers(s, 1, H2S_KV({"x-t", "1"}), &(h2s_hopts){.end_stream = true});
    h2s_get(s, 3, "/second");
    h2s_ping_n(s, 77);
    OK_OR_NOMEM(h2s_run(s));
    if (s->first_err == H2_OK) {
        OK_OR_NOMEM(h2_conn_consume(s->c, 1, 300));
        OK_OR_NOMEM(h2s_respond(s, 1, 200, H2S_KV({"x-r", "v"}), false));
        OK_OR_NOMEM(h2s_send_body(s, 1, g_static_body, sizeof g_static_body, 3, false));
        hpack_field t = h2s_hf("x-trailer", "1");
        OK_OR_NOMEM(h2_conn_send_trailers(s->c, 1, &t, 1));
        OK_OR_NOMEM(h2s_respond(s, 3, 200, NULL, 0, false));
        OK_OR_NOMEM(h2s_send_body(s, 3, g_static_body, 200, 2, false));
        OK_OR_NOMEM(h2s_reset_stream(s, 3, H2_CANCEL)); /* the reset memory ring */
        uint8_t op[8] = {1};
        OK_OR_NOMEM(h2_conn_ping(s->c, op));
        h2s_drain(s);
        OK_OR_NOMEM(h2s_detach(s, 1));
        OK_OR_NOMEM(h2s_detach(s, 3));
        h2s_drain(s);
        if (h2_conn_fault(s->c).scope == H2_SCOPE_NONE) {
            /* A second round on the warm connection. */
            h2s_get(s, 5, "/third");
            OK_OR_NOMEM(h2s_run(s));
            if (s->first_err == H2_OK) {
                OK_OR_NOMEM(h2s_respond(s, 5, 204, NULL, 0, true));
                OK_OR_NOMEM(h2s_detach(s, 5));
                h2s_drain(s);
            }
        }
    }
#undef OK_OR_NOMEM
    if (s->first_err == H2_E_NOMEM || h2_conn_fault(s->c).code == H2_INTERNAL_ERROR) {
        /* Dead: no more input is taken. */
        size_t consumed = 0;
        h2_event ev;
        uint8_t b[9] = {0};
        cr_expect_eq(h2_conn_recv(s->c, b, sizeof b, s->now, &consumed, &ev), H2_E_CLOSED,
                     "[%s] fail_at %llu: recv after NOMEM", s->mode_name,
                     (unsigned long long)fail_at);
    } else {
        cr_expect_eq(s->first_err, H2_OK, "[%s] fail_at %llu: %s", s->mode_name,
                     (unsigned long long)fail_at, h2_rv_name(s->first_err));
    }
    *calls_out = m->calls;
}

static void nomem_sweep(h2s *s, bool fail_after)
{
    uint64_t total = 0;
    {
        h2s t;
        h2s_init(&t, s->mode);
        nomem_session(&t, 0, false, &total);
        cr_assert_eq(t.first_err, H2_OK, "[%s] the session works without failures", s->mode_name);
        cr_assert_gt(total, 5u);
        h2s_fini(&t);
    }
    for (uint64_t n = 1; n <= total + 1; n++) {
        h2s t;
        h2s_init(&t, s->mode);
        uint64_t calls = 0;
        nomem_session(&t, n, fail_after, &calls);
        /* Name the failing allocation for what h2s_fini is about to check. */
        cr_expect_eq(t.out_parsed, t.out_len,
                     "[%s] fail_at %llu%s: the output ends inside a frame (%zu of %zu bytes "
                     "parse): a truncated frame would go on the wire",
                     s->mode_name, (unsigned long long)n, fail_after ? "+" : "", t.out_parsed,
                     t.out_len);
        h2s_fini(&t);
    }
}

H2S_TEST(memory, h2_mem_fail_each_allocation,
         "h2_mem.h: failing allocation N (N = 1..all) gives NOMEM or is coped with; no leak")
{
    nomem_sweep(s, false);
}

H2S_TEST(memory, h2_mem_fail_from_allocation_n,
         "h2_mem.h: failing every allocation from N on gives NOMEM or is coped with; no leak")
{
    nomem_sweep(s, true);
}

/* ============================================================================
 * 11. Odds and ends found while reading the engine
 * ========================================================================== */

static void prio_update_bad_case(h2s *s, int k)
{
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    uint8_t p[8] = {0, 0, 0, 1, 'u', '=', '1', 0};
    if (k == 0) /* on a stream */
        h2s_frame_raw(s, H2_FT_PRIORITY_UPDATE, 0, 1, p, 7);
    else if (k == 1) { /* prioritized stream 0 */
        p[3] = 0;
        h2s_frame_raw(s, H2_FT_PRIORITY_UPDATE, 0, 0, p, 7);
    } else /* too short for the prioritized id */
        h2s_frame_raw(s, H2_FT_PRIORITY_UPDATE, 0, 0, p, 3);
    h2s_run(s);
    H2S_EXPECT_CONN_ERROR(s, k == 2 ? H2_FRAME_SIZE_ERROR : H2_PROTOCOL_ERROR);
}

H2S_TEST(misc, rfc9218_7_1_priority_update_rules,
         "RFC 9218 §7.1: PRIORITY_UPDATE on a stream or for stream 0 is PROTOCOL_ERROR")
{
    for (int k = 0; k < 3; k++)
        sub(s, prio_update_bad_case, k);
}

H2S_TEST(misc, h2_conn_detached_body_discarded,
         "h2_conn.h: body bytes for a detached handler are discarded, their window returned")
{
    h2_limits l = lim();
    l.connection_window = 65535;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2s_respond(s, 1, 200, NULL, 0, false), H2_OK);
    cr_assert_eq(h2s_send_body(s, 1, "partial", 7, 1, true), H2_OK);
    cr_assert_eq(h2s_detach(s, 1), H2_OK); /* response complete, body unwanted */
    uint8_t *buf = h2s_alloc(s, 16384);
    for (int i = 0; i < 3; i++)
        h2s_data(s, 1, buf, 16384, false);
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    cr_expect_eq(h2s_ev_count(s, H2_EV_DATA, 1), 0u);
    cr_expect_eq(h2s_rst_code(s, 1), H2_NO_ERROR);
    cr_expect_geq(h2s_client_conn_window(s), 32768, "[%s] discarded bytes come back", s->mode_name);
    get_roundtrip(s, 3, "/", "ok");
}

H2S_TEST(misc, security_unsent_output_pauses_reading,
         "security.md: unsent output over max_unsent_output stops reading until it drains")
{
    h2_limits l = lim();
    l.max_pending_control = 100000;
    l.max_unsent_output = 16384;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    size_t mark = h2s_mark(s);
    for (uint64_t i = 0; i < 3000; i++)
        h2s_ping_n(s, i);
    s->drain_on_again = false;
    cr_expect_eq(h2s_feed(s), H2_E_AGAIN);
    cr_expect_not(h2_conn_want_read(s->c));
    size_t pings = (s->fed - mark) / 17;
    cr_expect_eq(pings, (16384 + 16) / 17, "[%s] paused after %zu PINGs", s->mode_name, pings);
    cr_expect_geq(h2_conn_unsent(s->c), 16384u);
    s->drain_on_again = true;
    cr_expect_eq(h2s_run(s), H2_OK);
    cr_expect_eq(count_flags(s, H2_FT_PING, 0, H2_FLAG_ACK), 3000u);
    cr_expect_gt(s->agains, 0u);
}

H2S_TEST(misc, rfc9113_6_1_padding_returns_window,
         "§6.1/§6.9: padding counts against the windows and is returned without consumption")
{
    h2_limits l = lim();
    l.connection_window = 65535;
    l.initial_window_size = 65535;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    s->on_event = consume_cb;
    uint8_t d[100] = {0};
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    for (int i = 0; i < 100; i++)
        h2s_data_padded(s, 1, d, sizeof d, 255, false); /* 35600 flow bytes, 10000 data */
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
    int64_t cw = h2s_client_conn_window(s), sw = h2s_client_stream_window(s, 1);
    cr_expect_geq(cw, 65535 - 32767, "[%s] connection window %lld: padding not returned",
                  s->mode_name, (long long)cw);
    cr_expect_geq(sw, 65535 - 32767, "[%s] stream window %lld: padding not returned", s->mode_name,
                  (long long)sw);
}

H2S_TEST(misc, rfc9113_6_9_unconsumed_body_returned_at_stream_end,
         "§6.9: body bytes never consumed are returned to the connection window when the "
         "stream goes away")
{
    h2_limits l = lim();
    l.connection_window = 65535;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    uint8_t *buf = h2s_alloc(s, 40000);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    data_split(s, 1, buf, 40000, true);
    cr_assert_eq(h2s_run(s), H2_OK);
    h2s_respond_ok(s, 1, "not reading that"); /* never consumed */
    h2s_drain(s);
    cr_expect_eq(h2_conn_stream_count(s->c), 0u);
    int64_t cw = h2s_client_conn_window(s);
    cr_expect_geq(cw, 40000, "[%s] connection window %lld after the stream ended", s->mode_name,
                  (long long)cw);
    h2s_request(s, 3, "POST", "/", NULL, 0, false);
    data_split(s, 3, buf, 40000, true);
    cr_assert_eq(h2s_run(s), H2_OK, "[%s] %s", s->mode_name, h2_conn_fault(s->c).reason);
}

static void late_frames_case(h2s *s, int k)
{
    h2_limits l = lim();
    if (k == 0)
        l.max_concurrent_streams = 1;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    h2s_get(s, 1, "/");
    if (k == 0) /* refused: over the concurrency limit */
        h2s_request(s, 3, "POST", "/", NULL, 0, false);
    else /* malformed */
        h2s_request(s, 3, "POST", "/", H2S_KV({"te", "gzip"}), false);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_expect_eq(h2s_rst_code(s, 3), k == 0 ? H2_REFUSED_STREAM : H2_PROTOCOL_ERROR);
    /* The body the client sent before it saw our RST_STREAM. */
    h2s_data(s, 3, "in flight", 9, false);
    h2s_window_update(s, 3, 10);
    h2s_headers(s, 3, H2S_KV({"x-t", "1"}), &(h2s_hopts){.end_stream = true});
    h2s_run(s);
    cr_expect_eq(s->first_err, H2_OK, "[%s] case %d: %s (%s) for frames after our RST_STREAM",
                 s->mode_name, k, h2_code_name(h2_conn_fault(s->c).code),
                 h2_conn_fault(s->c).reason ? h2_conn_fault(s->c).reason : "");
    if (s->first_err == H2_OK) {
        cr_expect_eq(h2s_st(s, 3)->nrst, 1u);
        h2s_respond_ok(s, 1, "ok");
        H2S_EXPECT_ALIVE(s);
    }
}

H2S_TEST(misc, rfc9113_5_4_2_late_frames_after_refusal_ignored,
         "§5.4.2/§5.1: frames in flight on a stream we refused or rejected are ignored")
{
    sub(s, late_frames_case, 0);
    sub(s, late_frames_case, 1);
}

/* ============================================================================
 * 12. Limit counters: h2_ctx.limit_hits[] counts a limit exactly when it trips
 * ========================================================================== */

static uint64_t hits_total(const h2s *s)
{
    uint64_t t = 0;
    for (int i = 0; i < H2_LIMIT_COUNT; i++)
        t += s->ctx.limit_hits[i];
    return t;
}

/* Exactly one hit, on id, and none on any other counter. */
static void expect_only_hit(const h2s *s, h2_limit_id id, const char *what)
{
    for (int i = 0; i < H2_LIMIT_COUNT; i++)
        cr_expect_eq(s->ctx.limit_hits[i], i == (int)id ? 1u : 0u, "[%s] %s: limit_hits[%s] = %llu",
                     s->mode_name, what, h2_limit_name((h2_limit_id)i),
                     (unsigned long long)s->ctx.limit_hits[i]);
}

/* Drive the connection up to the step that trips limit k; returns with the
 * limit not yet tripped, the tripping step scripted but not fed. */
static void trip_setup(h2s *s, h2_limit_id k, h2_limits *l)
{
    uint32_t sid = 1;
    switch (k) {
    case H2_LIMIT_RESETS:
        l->reset_burst = 2;
        h2s_start(s, l, NULL);
        h2s_handshake(s);
        s->auto_detach_reset = true;
        rapid_pairs(s, &sid, 2);
        cr_assert_eq(h2s_run(s), H2_OK);
        rapid_pairs(s, &sid, 1);
        break;
    case H2_LIMIT_GLITCHES:
        l->glitch_burst = 2;
        h2s_start(s, l, NULL);
        h2s_handshake(s);
        h2s_priority(s, 9, 0, 16, false);
        h2s_priority(s, 11, 0, 16, false);
        cr_assert_eq(h2s_run(s), H2_OK);
        h2s_priority(s, 13, 0, 16, false);
        break;
    case H2_LIMIT_STREAMS:
        l->max_concurrent_streams = 1;
        h2s_start(s, l, NULL);
        h2s_handshake(s);
        h2s_request(s, 1, "POST", "/", NULL, 0, false);
        cr_assert_eq(h2s_run(s), H2_OK);
        h2s_get(s, 3, "/refused");
        break;
    case H2_LIMIT_CONTINUATIONS: {
        l->max_continuations = 2;
        h2s_start(s, l, NULL);
        h2s_handshake(s);
        h2s_hopts o = {.end_stream = true, .continuations = 2};
        h2s_headers(s, 1,
                    H2S_KV({":method", "GET"}, {":scheme", "https"}, {":authority", "a.example"},
                           {":path", "/"}),
                    &o);
        cr_assert_eq(h2s_run(s), H2_OK);
        o.continuations = 3;
        h2s_headers(s, 3,
                    H2S_KV({":method", "GET"}, {":scheme", "https"}, {":authority", "a.example"},
                           {":path", "/"}),
                    &o);
        break;
    }
    case H2_LIMIT_HEADER_BLOCK: {
        l->max_header_block = 1024;
        h2s_start(s, l, NULL);
        h2s_handshake(s);
        static char v[1100];
        memset(v, '~', sizeof v - 1); /* Huffman would not shorten it */
        h2s_request(s, 1, "GET", "/", H2S_KV({"x-big", v + 200}), true); /* 899 bytes: fits */
        cr_assert_eq(h2s_run(s), H2_OK);
        h2s_request(s, 3, "GET", "/", H2S_KV({"x-bigger", v}), true);
        break;
    }
    case H2_LIMIT_HEADER_LIST:
        l->max_header_fields_soft = 6;
        h2s_start(s, l, NULL);
        h2s_handshake(s);
        h2s_request(s, 1, "GET", "/", H2S_KV({"a", "1"}, {"b", "2"}), true); /* 6 fields */
        cr_assert_eq(h2s_run(s), H2_OK);
        h2s_request(s, 3, "GET", "/", H2S_KV({"a", "1"}, {"b", "2"}, {"c", "3"}), true);
        break;
    case H2_LIMIT_SETTINGS_ENTRIES: {
        l->max_settings_entries = 2;
        h2s_start(s, l, NULL);
        h2s_handshake(s);
        h2_setting set[3] = {{H2_SET_ENABLE_PUSH, 0},
                             {H2_SET_MAX_FRAME_SIZE, 16384},
                             {H2_SET_HEADER_TABLE_SIZE, 4096}};
        h2s_settings(s, set, 2);
        cr_assert_eq(h2s_run(s), H2_OK);
        h2s_settings(s, set, 3);
        break;
    }
    case H2_LIMIT_CONTROL_QUEUE:
        l->max_pending_control = 3;
        h2s_start(s, l, NULL);
        h2s_handshake(s);
        s->drain_on_again = false;
        for (uint64_t i = 0; i < 3; i++)
            h2s_ping_n(s, i);
        cr_assert_eq(h2s_feed(s), H2_OK);
        h2s_ping_n(s, 3); /* read only once the three ACKs are out */
        break;
    case H2_LIMIT_OUTPUT_BACKLOG:
        l->max_unsent_output = 16384;
        h2s_start(s, l, NULL);
        h2s_handshake(s);
        s->drain_on_again = false;
        for (uint64_t i = 0; i < 16384 / 17 + 1; i++) /* 17-byte ACKs: one past 16 KiB */
            h2s_ping_n(s, i);
        cr_assert_eq(h2s_feed(s), H2_OK);
        h2s_ping_n(s, 99999);
        break;
    case H2_LIMIT_MAX_REQUESTS:
        l->max_requests = 2;
        h2s_start(s, l, NULL);
        h2s_handshake(s);
        get_roundtrip(s, 1, "/", "a");
        h2s_get(s, 3, "/");
        break;
    case H2_LIMIT_PREFACE_TIMEOUT:
        h2s_start(s, l, NULL);
        h2s_preface(s);
        cr_assert_eq(h2s_run(s), H2_OK);
        s->now += l->preface_timeout_ms - 1;
        cr_assert_eq(h2s_tick(s), H2_OK);
        s->now += 1;
        break;
    case H2_LIMIT_SETTINGS_TIMEOUT:
        h2s_start(s, l, NULL);
        h2s_preface(s);
        h2s_settings(s, NULL, 0);
        cr_assert_eq(h2s_run(s), H2_OK);
        s->now += l->settings_timeout_ms - 1;
        cr_assert_eq(h2s_tick(s), H2_OK);
        s->now += 1;
        break;
    case H2_LIMIT_HEADER_TIMEOUT: {
        h2s_start(s, l, NULL);
        h2s_handshake(s);
        h2s_hopts o = {.no_end_headers = true};
        h2s_headers(s, 1, H2S_KV({":method", "GET"}, {":scheme", "https"}, {":path", "/"}), &o);
        cr_assert_eq(h2s_run(s), H2_OK);
        s->now += l->header_block_timeout_ms - 1;
        cr_assert_eq(h2s_tick(s), H2_OK);
        s->now += 1;
        break;
    }
    case H2_LIMIT_SEND_TIMEOUT: {
        h2s_start(s, l, NULL);
        h2_setting set = {H2_SET_INITIAL_WINDOW_SIZE, 0};
        h2s_handshake_with(s, &set, 1);
        h2s_get(s, 1, "/");
        cr_assert_eq(h2s_run(s), H2_OK);
        cr_assert_eq(h2s_respond(s, 1, 200, NULL, 0, false), H2_OK);
        cr_assert_eq(h2s_send_body(s, 1, "held back", 9, 1, true), H2_OK);
        h2s_drain(s);
        s->now += l->send_timeout_ms - 1;
        cr_assert_eq(h2s_tick(s), H2_OK);
        s->now += 1;
        break;
    }
    case H2_LIMIT_IDLE_TIMEOUT:
        h2s_start(s, l, NULL);
        h2s_handshake(s);
        get_roundtrip(s, 1, "/", "a");
        s->now += l->idle_timeout_ms - 1;
        cr_assert_eq(h2s_tick(s), H2_OK);
        s->now += 1;
        break;
    default: cr_assert_fail("no scenario for limit %d", (int)k);
    }
}

static bool trip_by_tick(h2_limit_id k)
{
    return k >= H2_LIMIT_PREFACE_TIMEOUT;
}

static void trip_case(h2s *s, int k)
{
    h2_limit_id id = (h2_limit_id)k;
    h2_limits l = lim();
    trip_setup(s, id, &l);
    cr_expect_eq(hits_total(s), 0u, "[%s] %s: counted before the limit tripped", s->mode_name,
                 h2_limit_name(id));
    if (trip_by_tick(id))
        cr_expect_eq(h2s_tick(s), H2_E_PROTO, "[%s] %s", s->mode_name, h2_limit_name(id));
    else
        h2s_feed(s);
    expect_only_hit(s, id, h2_limit_name(id));
    /* Going on (feeding again while paused, ticking a dead connection)
     * does not count the same trip twice. */
    h2s_feed(s);
    h2s_tick(s);
    expect_only_hit(s, id, "again");
}

H2S_TEST(limits, every_counter_counts_its_trip,
         "h2_ctx.limit_hits: each H2_LIMIT_* goes from 0 to 1 exactly when its limit trips, and "
         "no other counter moves")
{
    for (int k = 0; k < H2_LIMIT_COUNT; k++)
        sub(s, trip_case, k);
}

/* A benign session: requests with and without bodies, an early response,
 * an application reset, PINGs, SETTINGS, PRIORITY_UPDATE, consumed bodies. */
static void benign_session(h2s *s)
{
    h2s_handshake(s);
    get_roundtrip(s, 1, "/", "one");
    h2s_ping_n(s, 1);
    h2s_settings(s, NULL, 0);
    h2s_request(s, 3, "POST", "/upload", NULL, 0, false);
    h2s_data(s, 3, "part", 4, false);
    h2s_priority_update(s, 3, "u=1");
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2_conn_consume(s->c, 3, 4), H2_OK);
    h2s_respond_ok(s, 3, "early"); /* before the body ended: RST_STREAM NO_ERROR */
    h2s_request(s, 5, "POST", "/cancelled", NULL, 0, false);
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2s_reset_stream(s, 5, H2_CANCEL), H2_OK);
    cr_assert_eq(h2s_detach(s, 5), H2_OK);
    h2s_drain(s);
    get_roundtrip(s, 7, "/", "seven");
}

static void benign_case(h2s *s, int k)
{
    h2s_start(s, NULL, NULL);
    benign_session(s);
    switch (k) {
    case 0: /* ends with a control reply still queued (PING ACK unread) */
        h2s_ping_n(s, 2);
        cr_assert_eq(h2s_feed(s), H2_OK);
        cr_expect_gt(h2_conn_unsent(s->c), 0u);
        break;
    case 1: /* the client says GOAWAY, the server answers in kind */
        h2s_goaway(s, 0, H2_NO_ERROR, NULL);
        cr_assert_eq(h2s_run(s), H2_OK);
        cr_assert_eq(h2_conn_goaway(s->c, H2_NO_ERROR, NULL), H2_OK);
        h2s_drain(s);
        cr_expect(h2_conn_is_done(s->c));
        break;
    default: /* graceful shutdown from the server, ACKed */
        cr_assert_eq(h2_conn_shutdown(s->c), H2_OK);
        h2s_drain(s);
        ack_shutdown_ping(s);
        h2s_goaway(s, 0, H2_NO_ERROR, NULL);
        cr_assert_eq(h2s_run(s), H2_OK);
        cr_expect(h2_conn_is_done(s->c));
        break;
    }
    cr_expect_eq(h2s_tick(s), H2_OK);
    cr_expect_eq(s->first_err, H2_OK, "[%s] case %d: %s", s->mode_name, k,
                 h2_conn_fault(s->c).reason);
    for (int i = 0; i < H2_LIMIT_COUNT; i++)
        cr_expect_eq(s->ctx.limit_hits[i], 0u, "[%s] case %d: limit_hits[%s] = %llu", s->mode_name,
                     k, h2_limit_name((h2_limit_id)i), (unsigned long long)s->ctx.limit_hits[i]);
}

H2S_TEST(limits, benign_connection_counts_nothing,
         "h2_ctx.limit_hits stays at zero for a benign connection, also one that ends with a "
         "pending control reply or a GOAWAY exchange")
{
    for (int k = 0; k < 3; k++)
        sub(s, benign_case, k);
}

H2S_TEST(limits, control_queue_counts_unsent_replies_only,
         "the control-reply cap counts replies not yet written: a client that reads while a "
         "long response keeps output busy never trips it")
{
    h2_limits l = lim();
    l.max_pending_control = 4;
    h2s_start(s, &l, NULL);
    h2_setting set = {H2_SET_INITIAL_WINDOW_SIZE, 1u << 30};
    h2s_handshake_with(s, &set, 1);
    h2s_window_update(s, 0, 1u << 30);
    h2s_get(s, 1, "/big");
    cr_assert_eq(h2s_run(s), H2_OK);
    cr_assert_eq(h2s_respond(s, 1, 200, NULL, 0, false), H2_OK);
    const size_t body = 4u * MIB;
    uint8_t *b = h2s_alloc(s, body);
    h2s_pattern(b, body, 1);
    cr_assert_eq(h2s_send_body(s, 1, b, body, 4, true), H2_OK);
    s->drain_on_again = false;
    /* One PING per round; the client reads 8 KiB per round, so the ACK goes
     * out every time but the output never runs empty. */
    for (uint64_t i = 0; i < 64; i++) {
        h2s_ping_n(s, i);
        cr_assert_eq(h2s_feed(s), H2_OK, "[%s] round %llu: reading paused", s->mode_name,
                     (unsigned long long)i);
        cr_assert_gt(h2s_drain_upto(s, 8192), 0u);
        cr_assert_gt(h2_conn_unsent(s->c) + h2_conn_stream_buffered(s->c, 1), 0u);
    }
    cr_expect_eq(count_flags(s, H2_FT_PING, 0, H2_FLAG_ACK), 64u);
    cr_expect_eq(s->ctx.limit_hits[H2_LIMIT_CONTROL_QUEUE], 0u);
    /* The client gives up on the rest: the frame in flight completes. */
    cr_assert_eq(h2s_reset_stream(s, 1, H2_CANCEL), H2_OK);
    cr_assert_eq(h2s_detach(s, 1), H2_OK);
    h2s_drain(s);
}

H2S_TEST(limits, control_queue_ignores_our_own_resets,
         "the control-reply cap counts replies the peer provokes, not RST_STREAMs the server "
         "sends of its own accord (early responses, application resets)")
{
    h2_limits l = lim();
    l.max_pending_control = 4;
    h2s_start(s, &l, NULL);
    h2s_handshake(s);
    s->drain_on_again = false;
    uint32_t sid = 1;
    for (int i = 0; i < 8; i++, sid += 2) {
        h2s_request(s, sid, "POST", "/", NULL, 0, false);
        cr_assert_eq(h2s_feed(s), H2_OK);
        if (i % 2) {
            cr_assert_eq(h2s_reset_stream(s, sid, H2_CANCEL), H2_OK);
            cr_assert_eq(h2s_detach(s, sid), H2_OK);
        } else {
            h2s_respond_ok(s, sid, "early"); /* RST_STREAM NO_ERROR follows the response */
        }
    }
    s->drain_on_again = false;
    h2s_get(s, sid, "/"); /* eight RST_STREAMs unread: reading goes on */
    cr_expect_eq(h2s_feed(s), H2_OK);
    cr_expect(h2_conn_want_read(s->c));
    cr_expect_eq(s->ctx.limit_hits[H2_LIMIT_CONTROL_QUEUE], 0u);
    h2s_drain(s);
    cr_expect_eq(h2s_count(s, H2_FT_RST_STREAM, H2S_ANY), 8u);
}
