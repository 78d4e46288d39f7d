/* test_h2_headers.c - proto/h2_headers.c: header blocks: HEADERS +
 * CONTINUATION assembly, request validation (RFC 9113 §8), trailers, HPACK
 * through the engine (RFC 7541), and the header-block, header-list,
 * CONTINUATION and max-requests limits.
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
