/* test_h2_conn_api.c - proto/h2_conn_api.c: what the application calls:
 * response heads, bodies by reference, trailers, resets, consume, detach, and
 * graceful shutdown / GOAWAY.
 *
 * Driven by a scripted client (h2_script.h).  H2S_TEST bodies run three
 * times: whole input, one byte per h2_conn_recv call, and output through
 * 2-iovec prepares with partial commits.  Besides the explicit assertions,
 * the harness checks every frame the server writes against the RFC 9113
 * rules a server must always follow and, at the end, that every data chunk
 * was released exactly once and the counting allocator got every block
 * back.
 */
#include "h2_conn_test.h"

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

H2S_TEST(ping, timed_round_trip_server_side,
         "h2_conn_ping_timed: the ACK's opaque gives the send time back (either role)")
{
    h2s_handshake(s);
    cr_assert_eq(h2_conn_ping_timed(s->c, 0x0000123456789abcu), H2_OK);
    h2s_drain(s);
    const h2s_frame *p = h2s_last(s, H2_FT_PING, 0);
    cr_assert_not_null(p);
    cr_expect_eq(p->hdr.flags & H2_FLAG_ACK, 0);
    uint8_t op[8];
    memcpy(op, p->f.u.ping, 8);
    h2s_ping(s, true, op);
    cr_assert_eq(h2s_run(s), H2_OK);
    const h2s_ev *e = h2s_ev_find(s, H2_EV_PING_ACK, 0);
    cr_assert_not_null(e);
    uint64_t sent = 0;
    cr_expect(h2_ping_sent_us(e->ping, &sent));
    cr_expect_eq(sent, 0x0000123456789abcu);
    const uint8_t app[8] = {'s', 'p', 'i', 'n', 'd', 'l', 'e', '!'};
    cr_expect(!h2_ping_sent_us(app, &sent), "an application opaque is not a timed PING");
}

/* h2c Upgrade: stream 1 exists before any input; the client's preface and
 * SETTINGS follow; the response to the upgraded request goes out on stream
 * 1; the HTTP2-Settings payload is applied (a 100-byte initial window: the
 * body stops there); the next client stream must be above 1. */
static size_t frames_of(const uint8_t *p, size_t n, uint8_t type, uint32_t sid, size_t *payload)
{
    size_t count = 0, off = 0;
    *payload = 0;
    while (off + 9 <= n) {
        size_t len = ((size_t)p[off] << 16) | ((size_t)p[off + 1] << 8) | p[off + 2];
        uint32_t id = ((uint32_t)(p[off + 5] & 0x7f) << 24) | ((uint32_t)p[off + 6] << 16) |
                      ((uint32_t)p[off + 7] << 8) | p[off + 8];
        if (p[off + 3] == type && id == sid) {
            count++;
            *payload += len;
        }
        off += 9 + len;
    }
    return count;
}

Test(upgrade, h2c_stream_1_is_the_upgraded_request)
{
    h2_ctx x;
    cr_assert_eq(h2_ctx_init(&x, NULL, NULL), H2_OK);
    h2_conn *c = h2_conn_new(&x, 0);
    cr_assert_not_null(c);
    h2_req_head head = {.method = {(const uint8_t *)"GET", 3},
                        .scheme = {(const uint8_t *)"http", 4},
                        .authority = {(const uint8_t *)"a", 1},
                        .path = {(const uint8_t *)"/", 1},
                        .content_length = -1,
                        .urgency = 3};
    const uint8_t bad[5] = {0};
    cr_expect_eq(h2_conn_open_upgraded(c, bad, sizeof bad, &head), H2_E_INVAL);
    const uint8_t push2[6] = {0, 2, 0, 0, 0, 2}; /* ENABLE_PUSH 2: invalid */
    cr_expect_eq(h2_conn_open_upgraded(c, push2, sizeof push2, &head), H2_E_INVAL);
    const uint8_t iws100[6] = {0, 4, 0, 0, 0, 100};
    cr_assert_eq(h2_conn_open_upgraded(c, iws100, sizeof iws100, &head), H2_OK);
    cr_expect_eq(h2_conn_open_upgraded(c, NULL, 0, &head), H2_E_INVAL, "only once");
    static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                     "\0\0\0\4\0\0\0\0\0"; /* empty SETTINGS */
    size_t used = 0;
    h2_event ev;
    cr_assert_eq(h2_conn_recv(c, preface, sizeof preface - 1, 0, &used, &ev), H2_OK);
    cr_assert_eq(used, sizeof preface - 1);
    cr_assert_eq(ev.type, H2_EV_NONE);
    hpack_field f = {.name = (const uint8_t *)"content-type",
                     .name_len = 12,
                     .value = (const uint8_t *)"text/plain",
                     .value_len = 10};
    cr_assert_eq(h2_conn_respond(c, 1, 200, &f, 1, false), H2_OK);
    static uint8_t body[300];
    cr_assert_eq(h2_conn_send_data(c, 1, body, sizeof body, true, NULL, NULL), H2_OK);
    static uint8_t out[4096];
    size_t n = h2_conn_send(c, out, sizeof out, 0);
    size_t pl;
    cr_expect_eq(frames_of(out, n, 1 /* HEADERS */, 1, &pl), 1u);
    frames_of(out, n, 0 /* DATA */, 1, &pl);
    cr_expect_eq(pl, 100u, "the HTTP2-Settings window (100) limits stream 1: %zu", pl);
    /* The client's next request is stream 3. */
    static const uint8_t get3[] = {0, 0, 6, 1, 5, 0, 0, 0, 3, 0x82, 0x86, 0x84, 0x41, 1, 'a'};
    cr_assert_eq(h2_conn_recv(c, get3, sizeof get3, 0, &used, &ev), H2_OK);
    cr_expect_eq(ev.type, H2_EV_REQUEST);
    cr_expect_eq(ev.stream_id, 3u);
    h2_conn_free(c);
    h2_ctx_free(&x);
}
