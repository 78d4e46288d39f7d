/* test_h2_sched.c - proto/h2_sched.c: the RFC 9218 scheduler: urgency order,
 * round robin, DATA framed lazily against the connection and stream windows
 * and the frame size the peer allows.
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
#include "h2_out.h"
#include "h2_sched.h"
#include "h2_stream.h"

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

/* --- The scheduler's own seams (h2_sched.h) --------------------------------- */

Test(sched, urgency_order_then_fifo)
{
    h2_ctx x;
    h2_conn *c = bare_conn(&x, NULL);
    static const uint8_t urg[] = {5, 1, 5, 0, 1};
    h2_stream *s[5];
    for (uint32_t i = 0; i < 5; i++) {
        h2_req_head head;
        memset(&head, 0, sizeof head);
        head.urgency = urg[i];
        head.content_length = -1;
        s[i] = h2_stream_open(c, 1 + 2 * i, true, &head);
        cr_assert_not_null(s[i]);
        h2_sched_push(c, s[i]);
        cr_expect_eq(c->nready, i, "nothing to frame yet: not queued");
        s[i]->flags |= F_HEAD_SENT | F_END_QUEUED; /* an empty END_STREAM to frame */
        h2_sched_push(c, s[i]);
        h2_sched_push(c, s[i]); /* idempotent */
    }
    cr_expect_eq(c->nready, 5u);
    h2_sched_remove(c, s[4]); /* the tail of urgency 1 */
    cr_expect_eq(c->nready, 4u);
    h2_sched_push(c, s[4]);
    h2_sched_run(c, 1 << 20);
    cr_expect_eq(c->nready, 0u);
    uint8_t out[256];
    size_t n = h2_conn_send(c, out, sizeof out, 1);
    cr_assert_eq(n, 5u * H2_FRAME_HDR_LEN);
    static const uint32_t want[] = {7, 3, 9, 1, 5}; /* urgency 0, 1, 1, 5, 5 */
    for (uint32_t i = 0; i < 5; i++) {
        h2_frame_hdr h;
        h2_frame_hdr_parse(out + i * H2_FRAME_HDR_LEN, &h);
        cr_expect_eq(h.stream_id, want[i], "frame %u on stream %u", i, h.stream_id);
        cr_expect_eq(h.type, H2_FT_DATA);
        cr_expect_eq(h.flags, H2_FLAG_END_STREAM);
    }
    bare_free(&x, c);
}

Test(sched, budget_and_windows_bound_framing)
{
    h2_ctx x;
    h2_conn *c = bare_conn(&x, NULL);
    h2_req_head head;
    memset(&head, 0, sizeof head);
    head.urgency = 3;
    head.content_length = -1;
    h2_stream *s = h2_stream_open(c, 1, true, &head);
    cr_assert_not_null(s);
    s->flags |= F_HEAD_SENT;
    static uint8_t body[100000];
    cr_assert_eq(h2_conn_send_data(c, 1, body, sizeof body, true, NULL, NULL), H2_OK);
    /* The default windows (65,535) bound the first round, the budget too. */
    h2_sched_run(c, 20000);
    uint64_t framed = sizeof body - h2_conn_stream_buffered(c, 1);
    cr_expect_geq(h2_out_unsent(c), 20000u);
    cr_expect_leq(framed, 20000u + 16384u, "about the budget: %llu", (unsigned long long)framed);
    h2_sched_run(c, 1 << 20);
    cr_expect_eq(sizeof body - h2_conn_stream_buffered(c, 1), 65535u,
                 "the stream window is the limit");
    cr_expect_eq(c->send_window, 0);
    cr_expect(h2_conn_want_write(c), "framed bytes wait");
    uint8_t *out = malloc(1 << 17);
    h2_conn_send(c, out, 1 << 17, 1);
    free(out);
    cr_expect_not(h2_conn_want_write(c), "no window: nothing to frame");
    bare_free(&x, c);
}
