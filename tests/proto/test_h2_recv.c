/* test_h2_recv.c - proto/h2_recv.c: the receive state machine: the connection
 * preface, frame format and size, streamed DATA (padding, windows, discarded
 * bodies), and reading that pauses while output backs up.
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
