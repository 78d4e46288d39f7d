/* test_h2_out.c - proto/h2_out.c: the output chain: out_prepare/out_commit,
 * chunk release, and the pending-control cap.
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

/* --- The output chain's own seams (h2_out.h) -------------------------------- */

Test(out, control_replies_counted_until_written)
{
    h2_ctx x;
    h2_conn *c = bare_conn(&x, NULL);
    static const uint8_t op[8] = "12345678";
    cr_assert(h2_out_ping(c, true, op)); /* a reply: counts */
    cr_assert(h2_out_goaway(c, 0, H2_NO_ERROR, NULL));
    cr_assert(h2_out_rst(c, 1, H2_NO_ERROR, false)); /* our own: does not */
    cr_assert(h2_out_ping(c, false, op));            /* our PING: not a reply */
    cr_expect_eq(c->ctrl_pending, 1u);
    cr_expect_eq(h2_out_unsent(c), 17u + 17u + 13u + 17u);
    uint8_t buf[256];
    /* A written reply stays counted until the output queued with it is
     * written too: the count may exceed the unwritten replies, never falls
     * short of them. */
    cr_assert_eq(h2_conn_send(c, buf, 17, 1), 17u);
    cr_expect_eq(c->ctrl_pending, 1u, "written, but output queued with it is not yet");
    cr_assert(h2_out_settings_ack(c)); /* an unwritten reply */
    cr_expect_eq(c->ctrl_pending, 2u);
    cr_assert_eq(h2_conn_send(c, buf, 17 + 13 + 17, 2), 17u + 13u + 17u);
    cr_expect_eq(c->ctrl_pending, 1u, "the written ACK is forgotten, the SETTINGS ACK is not");
    cr_assert_eq(h2_conn_send(c, buf, sizeof buf, 3), 9u);
    cr_expect_eq(c->ctrl_pending, 0u);
    cr_expect_null(c->ohead, "all written: the block went back");
    bare_free(&x, c);
}

Test(out, header_block_split_into_continuations)
{
    h2_ctx x;
    h2_conn *c = bare_conn(&x, NULL);
    static char v[20001];
    memset(v, '~', sizeof v - 1); /* Huffman would not shorten it */
    hpack_field f = h2s_hf("x-long", v);
    cr_assert_eq(h2_out_header_block(c, 7, &f, 1, NULL, 0, true), H2_OK);
    uint8_t *out = malloc(32768);
    size_t n = h2_conn_send(c, out, 32768, 1);
    cr_assert_gt(n, 20000u);
    h2_frame_hdr a, b;
    h2_frame_hdr_parse(out, &a);
    cr_expect_eq(a.type, H2_FT_HEADERS);
    cr_expect_eq(a.length, h2_out_frame_max(c));
    cr_expect_eq(a.flags, H2_FLAG_END_STREAM, "END_STREAM on HEADERS, END_HEADERS not yet");
    h2_frame_hdr_parse(out + H2_FRAME_HDR_LEN + a.length, &b);
    cr_expect_eq(b.type, H2_FT_CONTINUATION);
    cr_expect_eq(b.flags, H2_FLAG_END_HEADERS);
    cr_expect_eq(b.stream_id, 7u);
    cr_expect_eq(n, 2u * H2_FRAME_HDR_LEN + a.length + b.length);
    free(out);
    bare_free(&x, c);
}

Test(out, reserve_spans_blocks_in_order)
{
    h2_ctx x;
    h2_conn *c = bare_conn(&x, NULL);
    /* Small first output takes a small block; more than it holds moves on
     * to a full block; bytes come out in the order they were queued. */
    uint8_t *p = h2_out_reserve(c, 100);
    cr_assert_not_null(p);
    memset(p, 'a', 100);
    h2_out_advance(c, 100);
    cr_expect_eq(c->otail->cap, H2_OUT_SMALL_BLOCK_SIZE);
    p = h2_out_reserve(c, 1000);
    cr_assert_not_null(p);
    memset(p, 'b', 1000);
    h2_out_advance(c, 1000);
    cr_expect_eq(c->otail->cap, H2_OUT_BLOCK_SIZE);
    cr_expect_neq(c->ohead, c->otail);
    cr_expect_eq(h2_out_unsent(c), 1100u);
    struct iovec iov[4];
    cr_assert_eq(h2_conn_out_prepare(c, iov, 4, 1 << 20), 2u);
    cr_expect_eq(iov[0].iov_len, 100u);
    cr_expect_eq(((uint8_t *)iov[1].iov_base)[0], 'b');
    h2_conn_out_commit(c, 1100, 1);
    cr_expect_eq(h2_out_unsent(c), 0u);
    cr_expect_null(c->ohead);
    bare_free(&x, c);
}
