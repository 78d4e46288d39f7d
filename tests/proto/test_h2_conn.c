/* test_h2_conn.c - proto/h2_conn.c: context and lifecycle: timeouts (fake
 * clock), memory (the warm path allocates nothing, every allocation failure
 * is clean), and the limit counters of h2_ctx.limit_hits.
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

/* The keepalive PING the server sent last (asserted). */
static const h2s_frame *last_keepalive(h2s *s)
{
    const h2s_frame *p = h2s_last(s, H2_FT_PING, 0);
    cr_assert(p && !(p->hdr.flags & H2_FLAG_ACK), "[%s] no keepalive PING", s->mode_name);
    return p;
}

H2S_TEST(timeout, keepalive_ping_unanswered,
         "ping_interval_ms: a PING after the interval; not acknowledged within ping_timeout_ms: "
         "GOAWAY NO_ERROR, counted as ping-timeout")
{
    h2_limits l = lim();
    l.ping_interval_ms = 1000;
    l.ping_timeout_ms = 500;
    h2s_start(s, &l, NULL);
    uint64_t t0 = h2_conn_created_ms(s->c);
    h2s_handshake(s);
    cr_expect_eq(h2_conn_next_deadline(s->c), t0 + 1000);
    s->now = t0 + 999;
    cr_expect_eq(h2s_tick(s), H2_OK);
    h2s_drain(s);
    cr_expect_eq(count_flags(s, H2_FT_PING, 0, 0), 0u);
    s->now = t0 + 1000;
    cr_expect_eq(h2s_tick(s), H2_OK);
    h2s_drain(s);
    cr_expect_eq(count_flags(s, H2_FT_PING, 0, 0), 1u);
    cr_expect_eq(memcmp(last_keepalive(s)->f.u.ping, "spndl-ka", 8), 0);
    cr_expect_eq(h2_conn_next_deadline(s->c), t0 + 1500);
    s->now = t0 + 1499;
    cr_expect_eq(h2s_tick(s), H2_OK);
    s->now = t0 + 1500;
    cr_expect_eq(h2s_tick(s), H2_E_PROTO);
    H2S_EXPECT_CONN_ERROR(s, H2_NO_ERROR);
    cr_expect_eq(s->ctx.limit_hits[H2_LIMIT_PING_TIMEOUT], 1u);
    cr_expect_str_eq(h2_conn_fault(s->c).reason, "ping timeout");
}

H2S_TEST(timeout, keepalive_answered_is_not_activity,
         "ping_interval_ms: a peer that answers stays open, a PING per interval, one at a time; "
         "the ACKs do not move the idle timeout")
{
    h2_limits l = lim();
    l.ping_interval_ms = 1000;
    l.ping_timeout_ms = 500;
    l.idle_timeout_ms = 4500;
    h2s_start(s, &l, NULL);
    uint64_t t0 = h2_conn_created_ms(s->c);
    h2s_handshake(s);
    for (uint64_t k = 1; k <= 4; k++) {
        s->now = t0 + 1000 * k;
        cr_assert_eq(h2s_tick(s), H2_OK);
        h2s_drain(s);
        cr_expect_eq(count_flags(s, H2_FT_PING, 0, 0), k);
        s->now += 400; /* answered within the timeout */
        h2s_ping(s, true, last_keepalive(s)->f.u.ping);
        cr_assert_eq(h2s_run(s), H2_OK);
        cr_expect_eq(h2s_tick(s), H2_OK); /* no second PING before the interval */
        h2s_drain(s);
        cr_expect_eq(count_flags(s, H2_FT_PING, 0, 0), k);
    }
    cr_expect_eq(h2_conn_next_deadline(s->c), t0 + 4500); /* idle since the handshake */
    s->now = t0 + 4500;
    cr_expect_eq(h2s_tick(s), H2_E_PROTO);
    H2S_EXPECT_CONN_ERROR(s, H2_NO_ERROR);
    cr_expect_eq(s->ctx.limit_hits[H2_LIMIT_IDLE_TIMEOUT], 1u);
    cr_expect_eq(s->ctx.limit_hits[H2_LIMIT_PING_TIMEOUT], 0u);
}

H2S_TEST(timeout, keepalive_off_by_default, "ping_interval_ms 0 (the default): no PING is sent")
{
    h2s_handshake(s);
    uint64_t t0 = s->now;
    cr_expect_eq(h2_conn_next_deadline(s->c), t0 + 60000); /* the idle timeout only */
    for (int k = 1; k <= 59; k++) {
        s->now = t0 + 1000u * (uint64_t)k;
        cr_expect_eq(h2s_tick(s), H2_OK);
    }
    h2s_drain(s);
    cr_expect_eq(count_flags(s, H2_FT_PING, 0, 0), 0u);
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

/* One scenario per limit: drive the connection up to the step that trips
 * it; return with the limit not yet tripped and the tripping step scripted
 * but not fed (or, for a timeout, the clock on the deadline). */
static void trip_resets(h2s *s, h2_limits *l)
{
    uint32_t sid = 1;
    l->reset_burst = 2;
    h2s_start(s, l, NULL);
    h2s_handshake(s);
    s->auto_detach_reset = true;
    rapid_pairs(s, &sid, 2);
    cr_assert_eq(h2s_run(s), H2_OK);
    rapid_pairs(s, &sid, 1);
}

static void trip_glitches(h2s *s, h2_limits *l)
{
    l->glitch_burst = 2;
    h2s_start(s, l, NULL);
    h2s_handshake(s);
    h2s_priority(s, 9, 0, 16, false);
    h2s_priority(s, 11, 0, 16, false);
    cr_assert_eq(h2s_run(s), H2_OK);
    h2s_priority(s, 13, 0, 16, false);
}

static void trip_streams(h2s *s, h2_limits *l)
{
    l->max_concurrent_streams = 1;
    h2s_start(s, l, NULL);
    h2s_handshake(s);
    h2s_request(s, 1, "POST", "/", NULL, 0, false);
    cr_assert_eq(h2s_run(s), H2_OK);
    h2s_get(s, 3, "/refused");
}

static void trip_continuations(h2s *s, h2_limits *l)
{
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
}

static void trip_header_block(h2s *s, h2_limits *l)
{
    l->max_header_block = 1024;
    h2s_start(s, l, NULL);
    h2s_handshake(s);
    static char v[1100];
    memset(v, '~', sizeof v - 1); /* Huffman would not shorten it */
    h2s_request(s, 1, "GET", "/", H2S_KV({"x-big", v + 200}), true); /* 899 bytes: fits */
    cr_assert_eq(h2s_run(s), H2_OK);
    h2s_request(s, 3, "GET", "/", H2S_KV({"x-bigger", v}), true);
}

static void trip_header_list(h2s *s, h2_limits *l)
{
    l->max_header_fields_soft = 6;
    h2s_start(s, l, NULL);
    h2s_handshake(s);
    h2s_request(s, 1, "GET", "/", H2S_KV({"a", "1"}, {"b", "2"}), true); /* 6 fields */
    cr_assert_eq(h2s_run(s), H2_OK);
    h2s_request(s, 3, "GET", "/", H2S_KV({"a", "1"}, {"b", "2"}, {"c", "3"}), true);
}

static void trip_settings_entries(h2s *s, h2_limits *l)
{
    l->max_settings_entries = 2;
    h2s_start(s, l, NULL);
    h2s_handshake(s);
    h2_setting set[3] = {
        {H2_SET_ENABLE_PUSH, 0}, {H2_SET_MAX_FRAME_SIZE, 16384}, {H2_SET_HEADER_TABLE_SIZE, 4096}};
    h2s_settings(s, set, 2);
    cr_assert_eq(h2s_run(s), H2_OK);
    h2s_settings(s, set, 3);
}

static void trip_control_queue(h2s *s, h2_limits *l)
{
    l->max_pending_control = 3;
    h2s_start(s, l, NULL);
    h2s_handshake(s);
    s->drain_on_again = false;
    for (uint64_t i = 0; i < 3; i++)
        h2s_ping_n(s, i);
    cr_assert_eq(h2s_feed(s), H2_OK);
    h2s_ping_n(s, 3); /* read only once the three ACKs are out */
}

static void trip_output_backlog(h2s *s, h2_limits *l)
{
    l->max_unsent_output = 16384;
    h2s_start(s, l, NULL);
    h2s_handshake(s);
    s->drain_on_again = false;
    for (uint64_t i = 0; i < 16384 / 17 + 1; i++) /* 17-byte ACKs: one past 16 KiB */
        h2s_ping_n(s, i);
    cr_assert_eq(h2s_feed(s), H2_OK);
    h2s_ping_n(s, 99999);
}

static void trip_max_requests(h2s *s, h2_limits *l)
{
    l->max_requests = 2;
    h2s_start(s, l, NULL);
    h2s_handshake(s);
    get_roundtrip(s, 1, "/", "a");
    h2s_get(s, 3, "/");
}

static void trip_preface_timeout(h2s *s, h2_limits *l)
{
    h2s_start(s, l, NULL);
    h2s_preface(s);
    cr_assert_eq(h2s_run(s), H2_OK);
    s->now += l->preface_timeout_ms - 1;
    cr_assert_eq(h2s_tick(s), H2_OK);
    s->now += 1;
}

static void trip_settings_timeout(h2s *s, h2_limits *l)
{
    h2s_start(s, l, NULL);
    h2s_preface(s);
    h2s_settings(s, NULL, 0);
    cr_assert_eq(h2s_run(s), H2_OK);
    s->now += l->settings_timeout_ms - 1;
    cr_assert_eq(h2s_tick(s), H2_OK);
    s->now += 1;
}

static void trip_header_timeout(h2s *s, h2_limits *l)
{
    h2s_start(s, l, NULL);
    h2s_handshake(s);
    h2s_hopts o = {.no_end_headers = true};
    h2s_headers(s, 1, H2S_KV({":method", "GET"}, {":scheme", "https"}, {":path", "/"}), &o);
    cr_assert_eq(h2s_run(s), H2_OK);
    s->now += l->header_block_timeout_ms - 1;
    cr_assert_eq(h2s_tick(s), H2_OK);
    s->now += 1;
}

static void trip_send_timeout(h2s *s, h2_limits *l)
{
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
}

static void trip_idle_timeout(h2s *s, h2_limits *l)
{
    h2s_start(s, l, NULL);
    h2s_handshake(s);
    get_roundtrip(s, 1, "/", "a");
    s->now += l->idle_timeout_ms - 1;
    cr_assert_eq(h2s_tick(s), H2_OK);
    s->now += 1;
}

static void trip_ping_timeout(h2s *s, h2_limits *l)
{
    l->ping_interval_ms = 2000;
    l->ping_timeout_ms = 1000;
    h2s_start(s, l, NULL);
    h2s_handshake(s);
    s->now += 2000;
    cr_assert_eq(h2s_tick(s), H2_OK);
    h2s_drain(s);
    s->now += 999;
    cr_assert_eq(h2s_tick(s), H2_OK);
    s->now += 1;
}

static void (*const trip_setup[H2_LIMIT_COUNT])(h2s *, h2_limits *) = {
    [H2_LIMIT_RESETS] = trip_resets,
    [H2_LIMIT_GLITCHES] = trip_glitches,
    [H2_LIMIT_STREAMS] = trip_streams,
    [H2_LIMIT_CONTINUATIONS] = trip_continuations,
    [H2_LIMIT_HEADER_BLOCK] = trip_header_block,
    [H2_LIMIT_HEADER_LIST] = trip_header_list,
    [H2_LIMIT_SETTINGS_ENTRIES] = trip_settings_entries,
    [H2_LIMIT_CONTROL_QUEUE] = trip_control_queue,
    [H2_LIMIT_OUTPUT_BACKLOG] = trip_output_backlog,
    [H2_LIMIT_MAX_REQUESTS] = trip_max_requests,
    [H2_LIMIT_PREFACE_TIMEOUT] = trip_preface_timeout,
    [H2_LIMIT_SETTINGS_TIMEOUT] = trip_settings_timeout,
    [H2_LIMIT_HEADER_TIMEOUT] = trip_header_timeout,
    [H2_LIMIT_SEND_TIMEOUT] = trip_send_timeout,
    [H2_LIMIT_IDLE_TIMEOUT] = trip_idle_timeout,
    [H2_LIMIT_PING_TIMEOUT] = trip_ping_timeout,
};

static bool trip_by_tick(h2_limit_id k)
{
    return k >= H2_LIMIT_PREFACE_TIMEOUT;
}

static void trip_case(h2s *s, int k)
{
    h2_limit_id id = (h2_limit_id)k;
    h2_limits l = lim();
    cr_assert_not_null(trip_setup[id], "no scenario for limit %d", k);
    trip_setup[id](s, &l);
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
