/* test_h2_stream.c - proto/h2_stream.c: stream states (RFC 9113 §5.1),
 * identifiers and concurrency, stream errors (§5.4), late frames on streams
 * we reset, and the inbound credit a stream gives back.
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
#include "h2_stream.h"

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

/* --- The stream table's own seams (h2_stream.h) ------------------------------ */

static h2_stream *open_sid(h2_conn *c, uint32_t sid, uint8_t urgency)
{
    h2_req_head head;
    memset(&head, 0, sizeof head);
    head.urgency = urgency;
    head.content_length = -1;
    h2_stream *s = h2_stream_open(c, sid, true, &head);
    cr_assert_not_null(s);
    return s;
}

Test(stream, open_find_free)
{
    h2_ctx x;
    h2_conn *c = bare_conn(&x, NULL);
    cr_expect_null(c->st, "no stream: no tables");
    /* 1 and 65 share a bucket (ids spread by id >> 1 over 32 buckets). */
    h2_stream *a = open_sid(c, 1, 3), *b = open_sid(c, 65, 3), *d = open_sid(c, 3, 3);
    cr_expect_eq(h2_conn_stream_count(c), 3u);
    cr_expect_eq(h2_stream_find(c, 1), a);
    cr_expect_eq(h2_stream_find(c, 65), b);
    cr_expect_eq(h2_stream_find(c, 3), d);
    cr_expect_null(h2_stream_find(c, 5));
    cr_expect_eq(a->state, S_HALF_REMOTE);
    /* Held by the application: closing does not free it. */
    h2_stream_close(c, a);
    h2_stream_maybe_free(c, a);
    cr_expect_eq(h2_stream_find(c, 1), a);
    a->flags &= (uint16_t)~F_DELIVERED;
    h2_stream_maybe_free(c, a);
    cr_expect_null(h2_stream_find(c, 1));
    cr_expect_eq(h2_stream_find(c, 65), b, "its bucket neighbour stays");
    for (h2_stream *s2 = b; s2; s2 = s2 == b ? d : NULL) {
        h2_stream_close(c, s2);
        s2->flags &= (uint16_t)~F_DELIVERED;
        h2_stream_maybe_free(c, s2);
    }
    cr_expect_eq(h2_conn_stream_count(c), 0u);
    cr_expect_null(c->st, "the last stream took the tables");
    bare_free(&x, c);
}

Test(stream, reset_memory_is_a_ring)
{
    h2_limits l = *h2_limits_default();
    l.reset_memory = 2;
    h2_ctx x;
    h2_conn *c = bare_conn(&x, &l);
    cr_expect_not(h2_stream_reset_recent(c, 1));
    h2_stream_reset_remember(c, 1);
    h2_stream_reset_remember(c, 3);
    cr_expect(h2_stream_reset_recent(c, 1));
    h2_stream_reset_remember(c, 5);
    cr_expect_not(h2_stream_reset_recent(c, 1), "the oldest id is forgotten");
    cr_expect(h2_stream_reset_recent(c, 3));
    cr_expect(h2_stream_reset_recent(c, 5));
    bare_free(&x, c);
}

Test(stream, credit_coalesces_to_half_a_window)
{
    h2_ctx x;
    h2_conn *c = bare_conn(&x, NULL);
    uint32_t half = x.limits->connection_window / 2;
    c->recv_window -= half; /* as if that much DATA had arrived */
    h2_stream_credit_conn(c, half - 1);
    cr_expect_eq(h2_conn_unsent(c), 0u, "below half a window: nothing sent");
    h2_stream_credit_conn(c, 1);
    cr_expect_eq(h2_conn_unsent(c), 13u, "one WINDOW_UPDATE");
    cr_expect_eq(c->recv_window, (int64_t)x.limits->connection_window);
    cr_expect_eq(c->recv_unacked, 0u);
    bare_free(&x, c);
}
