/* test_h2_frames.c - proto/h2_frames.c: the handlers of PRIORITY, RST_STREAM,
 * SETTINGS, PING, GOAWAY, WINDOW_UPDATE and PRIORITY_UPDATE, with the Rapid
 * Reset and glitch budgets they charge.
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
#include "h2_frames.h"

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

/* --- Dispatch of decoded frames (h2_frames.h), without the state machine ---- */

/* Dispatch one frame (header fields and payload) on a bare connection. */
static h2_rv dispatch(h2_conn *c, uint8_t type, uint8_t flags, uint32_t sid, const uint8_t *p,
                      uint32_t len, h2_event *ev)
{
    c->fh = (h2_frame_hdr){.length = len, .type = type, .flags = flags, .stream_id = sid};
    c->got_settings = true;
    ev->type = H2_EV_NONE;
    return h2_frames_dispatch(c, p, ev);
}

Test(frames, dispatch_ping_queues_a_counted_ack)
{
    h2_ctx x;
    h2_conn *c = bare_conn(&x, NULL);
    h2_event ev;
    static const uint8_t op[8] = "abcdefgh";
    cr_assert_eq(dispatch(c, H2_FT_PING, 0, 0, op, 8, &ev), H2_OK);
    cr_expect_eq(ev.type, H2_EV_NONE, "answered inside the engine");
    cr_expect_eq(h2_conn_unsent(c), 17u);
    cr_expect_eq(c->ctrl_pending, 1u);
    cr_assert_eq(dispatch(c, H2_FT_PING, H2_FLAG_ACK, 0, op, 8, &ev), H2_OK);
    cr_expect_eq(ev.type, H2_EV_PING_ACK);
    cr_expect_eq(memcmp(ev.u.ping, op, 8), 0);
    bare_free(&x, c);
}

Test(frames, dispatch_priority_self_dependency)
{
    h2_ctx x;
    h2_conn *c = bare_conn(&x, NULL);
    h2_event ev;
    static const uint8_t self5[5] = {0, 0, 0, 5, 16}; /* stream 5 depends on 5 */
    static const uint8_t other5[5] = {0, 0, 0, 3, 16};
    cr_expect_eq(dispatch(c, H2_FT_PRIORITY, 0, 5, other5, 5, &ev), H2_OK, "a plain PRIORITY");
    cr_expect_eq(h2_conn_unsent(c), 0u);
    cr_expect_eq(dispatch(c, H2_FT_PRIORITY, 0, 5, self5, 5, &ev), H2_E_PROTO,
                 "idle stream: no RST_STREAM allowed, a connection error");
    cr_expect_eq(h2_conn_fault(c).code, H2_PROTOCOL_ERROR);
    cr_expect_eq(h2_conn_fault(c).scope, H2_SCOPE_CONN);
    bare_free(&x, c);
}
