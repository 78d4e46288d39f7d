/* test_h1_conn.c - proto/h1_conn.c through a scripted client and
 * application (h1_script.h).  Every H1T_TEST runs twice: whole input, then
 * one byte per h1_conn_recv call with output pulled in 7-byte partial
 * commits.  The malformed-request table is tests/data/h1_bad_requests.txt
 * (shared with the integration tests). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h1_script.h"

#define GET(path) "GET " path " HTTP/1.1\r\nHost: example.com\r\n\r\n"
#define DATE      "date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"

static const hpack_field CT = {
    (const uint8_t *)"content-type", (const uint8_t *)"text/plain", 12, 10, 0, 0};

/* --- Basics ------------------------------------------------------------------------ */

H1T_TEST(conn, get_answered_with_length_and_date)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, GET("/index.html"));
    cr_assert_str_eq(t->log, "REQ 1 GET /index.html host=example.com end\n");
    cr_assert_eq(t->last.minor, 1);
    cr_assert(t->last.keep_alive);
    cr_assert_eq(t->last.head.scheme.len, 4);
    cr_assert_eq(memcmp(t->last.head.scheme.p, "http", 4), 0);
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, &CT, 1, false), H2_OK);
    cr_assert_eq(h1t_send(t, 1, "hello", true), H2_OK);
    h1t_drain(t);
    /* no content-length from the app and not ended with the head: chunked */
    cr_assert_str_eq(t->out, "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n" DATE
                             "transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    cr_assert_not(h1_conn_is_done(t->c));
    cr_assert_eq(h1_conn_in_flight(t->c), 0);
    cr_assert_eq(h1_conn_stats_get(t->c)->responses, 1);
}

H1T_TEST(conn, content_length_from_the_application)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, GET("/"));
    hpack_field f[] = {{(const uint8_t *)"content-length", (const uint8_t *)"5", 14, 1, 0, 0}};
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, f, 1, false), H2_OK);
    cr_assert_eq(h1t_send(t, 1, "toolong", false), H2_E_INVAL, "more than announced");
    t->released++; /* INVAL does not release */
    cr_assert_eq(h1t_send(t, 1, "hel", false), H2_OK);
    cr_assert_eq(h1t_send(t, 1, "lo", true), H2_OK);
    h1t_drain(t);
    cr_assert_str_eq(t->out, "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n" DATE "\r\nhello");
    cr_assert_not(h1_conn_is_done(t->c));
}

H1T_TEST(conn, short_body_closes_the_connection)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, GET("/"));
    hpack_field f[] = {{(const uint8_t *)"content-length", (const uint8_t *)"10", 14, 2, 0, 0}};
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, f, 1, false), H2_OK);
    cr_assert_eq(h1t_send(t, 1, "abc", true), H2_OK);
    h1t_drain(t);
    cr_assert(h1_conn_is_done(t->c), "the peer must not wait for 7 more bytes");
}

H1T_TEST(conn, end_stream_on_the_head_adds_content_length_zero)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, GET("/"));
    cr_assert_eq(h1_conn_respond(t->c, 1, 404, NULL, 0, true), H2_OK);
    h1t_drain(t);
    cr_assert_str_eq(t->out, "HTTP/1.1 404 Not Found\r\n" DATE "content-length: 0\r\n\r\n");
}

H1T_TEST(conn, keep_alive_across_requests)
{
    h1t_start(t, NULL);
    t->auto_respond = true;
    for (int i = 0; i < 5; i++)
        h1t_feed_str(t, GET("/a"));
    cr_assert_eq(t->nreq, 5);
    cr_assert_eq(h1t_count(t, "HTTP/1.1 200 OK"), 5);
    cr_assert_eq(h1t_count(t, "r5\n"), 1);
    cr_assert_not(h1_conn_is_done(t->c));
}

H1T_TEST(conn, response_fields_checked)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, GET("/"));
    hpack_field bad[] = {
        {(const uint8_t *)"x", (const uint8_t *)"a\r\nset-cookie: 1", 1, 16, 0, 0}};
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, bad, 1, true), H2_E_INVAL, "response splitting");
    hpack_field conn[] = {{(const uint8_t *)"connection", (const uint8_t *)"close", 10, 5, 0, 0}};
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, conn, 1, true), H2_E_INVAL);
    hpack_field cl[] = {{(const uint8_t *)"content-length", (const uint8_t *)"1x", 14, 2, 0, 0}};
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, cl, 1, true), H2_E_INVAL);
    cr_assert_eq(h1_conn_respond(t->c, 1, 101, NULL, 0, false), H2_E_INVAL);
    cr_assert_eq(h1_conn_respond(t->c, 1, 99, NULL, 0, true), H2_E_INVAL);
    cr_assert_eq(h1_conn_respond(t->c, 1, 103, NULL, 0, true), H2_E_INVAL);
    cr_assert_eq(h1_conn_respond(t->c, 2, 200, NULL, 0, true), H2_E_NOSTREAM);
    cr_assert_eq(h1t_send(t, 1, "x", true), H2_E_STATE, "no head yet");
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, NULL, 0, true), H2_OK);
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, NULL, 0, true), H2_E_STATE, "answered");
}

/* --- Pipelining ------------------------------------------------------------------------ */

H1T_TEST(pipeline, hundred_requests_answered_in_order)
{
    h1_limits l = *h1_limits_default();
    l.max_pipelined = 128;
    h1t_start(t, &l);
    static char in[100 * 64];
    size_t n = 0;
    for (int i = 1; i <= 100; i++)
        n += (size_t)snprintf(in + n, sizeof in - n, "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i);
    h1t_feed(t, in, n);
    cr_assert_eq(t->nreq, 100);
    /* Answer in reverse order: the output must still be 1, 2, ..., 100. */
    static char bodies[101][16];
    for (uint32_t id = 100; id >= 1; id--) {
        snprintf(bodies[id], sizeof bodies[id], "body%u;", id);
        cr_assert_eq(h1_conn_respond(t->c, id, 200, NULL, 0, false), H2_OK);
        cr_assert_eq(h1t_send(t, id, bodies[id], true), H2_OK);
        if (id > 1)
            cr_assert_not(h1_conn_want_write(t->c), "response %u must wait for 1", id);
    }
    h1t_drain(t);
    cr_assert_eq(h1t_count(t, "HTTP/1.1 200 OK"), 100);
    const char *p = t->out;
    for (uint32_t id = 1; id <= 100; id++) {
        char want[16];
        snprintf(want, sizeof want, "body%u;", id);
        const char *q = strstr(p, want);
        cr_assert_not_null(q, "body %u missing or out of order", id);
        p = q + strlen(want);
    }
    cr_assert_eq(h1_conn_in_flight(t->c), 0);
}

H1T_TEST(pipeline, reading_pauses_at_max_pipelined)
{
    h1_limits l = *h1_limits_default();
    l.max_pipelined = 4;
    h1t_start(t, &l);
    static char in[10 * 64];
    size_t n = 0;
    for (int i = 1; i <= 10; i++)
        n += (size_t)snprintf(in + n, sizeof in - n, GET("/%d"), i);
    h1t_feed(t, in, n);
    cr_assert_eq(t->nreq, 4);
    cr_assert_eq(t->rv, H2_E_AGAIN);
    cr_assert_not(h1_conn_want_read(t->c));
    cr_assert_eq(t->x.limit_hits[H1_LIMIT_PIPELINED], 1);
    cr_assert_gt(t->rest, 0);
    size_t off = n - t->rest;
    cr_assert_eq(h1_conn_respond(t->c, 1, 204, NULL, 0, true), H2_OK);
    h1t_drain(t);
    cr_assert(h1_conn_want_read(t->c));
    t->rv = 0;
    h1t_feed(t, in + off, n - off);
    cr_assert_eq(t->nreq, 5);
}

H1T_TEST(pipeline, error_after_pipelined_requests_comes_last)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, GET("/1") GET("/2") "GET / HTTP/1.1\r\nHost: a\r\nBad : x\r\n\r\n" GET("/4"));
    cr_assert_eq(t->nreq, 2);
    cr_assert_eq(t->rv, H2_E_PROTO);
    cr_assert_eq(h1_conn_error_status(t->c), 400);
    cr_assert_str_eq(h1_conn_fault(t->c).reason, "whitespace before the colon");
    cr_assert_eq(t->out_len, 0, "the 400 waits for responses 1 and 2");
    cr_assert_eq(h1_conn_respond(t->c, 2, 204, NULL, 0, true), H2_OK);
    cr_assert_eq(h1_conn_respond(t->c, 1, 204, NULL, 0, true), H2_OK);
    h1t_drain(t);
    cr_assert_eq(h1t_status(t, 0), 204);
    cr_assert_eq(h1t_status(t, 1), 204);
    cr_assert_eq(h1t_status(t, 2), 400);
    cr_assert_eq(h1t_status(t, 3), 0);
    cr_assert(h1_conn_is_done(t->c));
}

/* --- Request bodies --------------------------------------------------------------------- */

H1T_TEST(body, content_length)
{
    h1t_start(t, NULL);
    t->auto_respond = true;
    h1t_feed_str(t,
                 "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world" GET("/n"));
    cr_assert_eq(t->body_len, 11);
    cr_assert_eq(memcmp(t->body, "hello world", 11), 0);
    cr_assert_eq(t->nreq, 2);
    cr_assert_eq(t->last.head.content_length, -1);
    cr_assert_eq(h1t_count(t, "HTTP/1.1 200 OK"), 2);
}

H1T_TEST(body, chunked_with_extensions_and_trailers)
{
    h1t_start(t, NULL);
    t->auto_respond = true;
    h1t_feed_str(t,
                 "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"
                 "5;name=value;q=\"a b\\\"c\"\r\nhello\r\n"
                 "6 ; x\r\n world\r\n"
                 "A\r\n0123456789\r\n"
                 "0\r\nX-Checksum: abc\r\nContent-Length: 5\r\nX-Other:  two \r\n\r\n" GET("/n"));
    cr_assert_eq(t->body_len, 21);
    cr_assert_eq(memcmp(t->body, "hello world0123456789", 21), 0);
    cr_assert_not_null(strstr(t->log, "TRL 1 2\n  x-checksum: abc\n  x-other: two\n"), "%s",
                       t->log);
    cr_assert_eq(t->nreq, 2);
    cr_assert_eq(h1t_count(t, "HTTP/1.1 200 OK"), 2);
}

H1T_TEST(body, chunked_without_trailers_ends_with_empty_data)
{
    h1t_start(t, NULL);
    h1t_feed_str(
        t, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    cr_assert_not_null(strstr(t->log, "DATA 1 0 end\n"), "%s", t->log);
}

H1T_TEST(body, max_body_content_length_413)
{
    h1_limits l = *h1_limits_default();
    l.max_body = 10;
    h1t_start(t, &l);
    h1t_feed_str(t, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n");
    cr_assert_eq(t->rv, H2_E_PROTO);
    cr_assert_eq(t->nreq, 0);
    cr_assert_eq(h1t_status(t, 0), 413);
    cr_assert_eq(t->x.limit_hits[H1_LIMIT_BODY], 1);
    cr_assert(h1_conn_is_done(t->c));
}

H1T_TEST(body, max_body_chunked_413_resets_the_request)
{
    h1_limits l = *h1_limits_default();
    l.max_body = 10;
    h1t_start(t, &l);
    h1t_feed_str(t, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n");
    cr_assert_eq(t->rv, H2_E_PROTO);
    cr_assert_not_null(strstr(t->log, "RESET 1\n"), "%s", t->log);
    cr_assert_eq(h1t_status(t, 0), 413);
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, NULL, 0, true), H2_E_NOSTREAM);
    cr_assert(h1_conn_is_done(t->c));
}

H1T_TEST(body, bad_chunk_after_response_started_closes)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, NULL, 0, false), H2_OK);
    cr_assert_eq(h1t_send(t, 1, "partial", false), H2_OK);
    h1t_feed_str(t, "zz\r\n");
    cr_assert_eq(t->rv, H2_E_PROTO);
    cr_assert_not_null(strstr(t->log, "RESET 1\n"));
    cr_assert_eq(h1t_send(t, 1, "more", true), H2_E_NOSTREAM);
    cr_assert_eq(h1t_count(t, "HTTP/1.1"), 1, "no second status line: %s", t->out);
    cr_assert(h1_conn_is_done(t->c));
}

/* --- Response framing ----------------------------------------------------------------- */

H1T_TEST(response, chunked_trailers_only_with_te_trailers)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, "GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n" GET("/2"));
    hpack_field tr[] = {{(const uint8_t *)"grpc-status", (const uint8_t *)"0", 11, 1, 0, 0}};
    for (uint32_t id = 1; id <= 2; id++) {
        cr_assert_eq(h1_conn_respond(t->c, id, 200, NULL, 0, false), H2_OK);
        cr_assert_eq(h1t_send(t, id, "abc", false), H2_OK);
        cr_assert_eq(h1_conn_send_trailers(t->c, id, tr, 1), H2_OK);
    }
    h1t_drain(t);
    cr_assert_str_eq(t->out, "HTTP/1.1 200 OK\r\n" DATE "transfer-encoding: chunked\r\n\r\n"
                             "3\r\nabc\r\n0\r\ngrpc-status: 0\r\n\r\n"
                             "HTTP/1.1 200 OK\r\n" DATE "transfer-encoding: chunked\r\n\r\n"
                             "3\r\nabc\r\n0\r\n\r\n");
}

H1T_TEST(response, trailers_dropped_without_chunked_framing)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, "GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n");
    hpack_field cl[] = {{(const uint8_t *)"content-length", (const uint8_t *)"3", 14, 1, 0, 0}};
    hpack_field tr[] = {{(const uint8_t *)"x-sum", (const uint8_t *)"1", 5, 1, 0, 0}};
    hpack_field bad[] = {{(const uint8_t *)"connection", (const uint8_t *)"x", 10, 1, 0, 0}};
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, cl, 1, false), H2_OK);
    cr_assert_eq(h1t_send(t, 1, "abc", false), H2_OK);
    cr_assert_eq(h1_conn_send_trailers(t->c, 1, bad, 1), H2_E_INVAL);
    cr_assert_eq(h1_conn_send_trailers(t->c, 1, tr, 1), H2_OK);
    cr_assert_eq(h1_conn_send_trailers(t->c, 1, tr, 1), H2_E_STATE, "body ended");
    h1t_drain(t);
    cr_assert_str_eq(t->out, "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n" DATE "\r\nabc");
}

H1T_TEST(response, informational_waits_its_turn_in_the_pipeline)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, GET("/1") GET("/2"));
    cr_assert_eq(h1_conn_respond(t->c, 2, 103, NULL, 0, false), H2_OK);
    cr_assert_not(h1_conn_want_write(t->c), "103 of request 2 waits for response 1");
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, NULL, 0, true), H2_OK);
    cr_assert_eq(h1_conn_respond(t->c, 2, 200, NULL, 0, true), H2_OK);
    h1t_drain(t);
    cr_assert_eq(h1t_status(t, 0), 200);
    cr_assert_eq(h1t_status(t, 1), 103);
    cr_assert_eq(h1t_status(t, 2), 200);
}

H1T_TEST(response, head_sends_no_body)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, "HEAD /f HTTP/1.1\r\nHost: a\r\n\r\n"
                    "HEAD /g HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert(t->last.head_method);
    hpack_field f[] = {{(const uint8_t *)"content-length", (const uint8_t *)"1000", 14, 4, 0, 0}};
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, f, 1, false), H2_OK);
    cr_assert_eq(h1t_send(t, 1, "not sent", true), H2_OK);
    cr_assert_eq(h1_conn_respond(t->c, 2, 200, NULL, 0, false), H2_OK);
    cr_assert_eq(h1t_send(t, 2, "", true), H2_OK);
    h1t_drain(t);
    cr_assert_str_eq(t->out, "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n" DATE "\r\n"
                             "HTTP/1.1 200 OK\r\n" DATE "\r\n");
    cr_assert_not(h1_conn_is_done(t->c));
}

H1T_TEST(response, no_body_for_204_and_304)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, GET("/") GET("/"));
    cr_assert_eq(h1_conn_respond(t->c, 1, 204, NULL, 0, false), H2_OK);
    cr_assert_eq(h1t_send(t, 1, "x", true), H2_E_INVAL);
    t->released++;
    cr_assert_eq(h1t_send(t, 1, "", true), H2_OK);
    cr_assert_eq(h1_conn_respond(t->c, 2, 304, NULL, 0, true), H2_OK);
    h1t_drain(t);
    cr_assert_str_eq(t->out, "HTTP/1.1 204 No Content\r\n" DATE "\r\n"
                             "HTTP/1.1 304 Not Modified\r\n" DATE "\r\n");
}

H1T_TEST(response, expect_100_continue)
{
    h1t_start(t, NULL);
    h1t_feed_str(t,
                 "PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    cr_assert(t->last.head.expect_continue);
    cr_assert_eq(h1_conn_respond(t->c, 1, 100, NULL, 0, false), H2_OK);
    h1t_drain(t);
    cr_assert_str_eq(t->out, "HTTP/1.1 100 Continue\r\n\r\n");
    h1t_feed_str(t, "abc");
    cr_assert_eq(h1_conn_respond(t->c, 1, 201, NULL, 0, true), H2_OK);
    h1t_drain(t);
    cr_assert_eq(h1t_status(t, 1), 201);
    cr_assert_not(h1_conn_is_done(t->c));
}

H1T_TEST(response, expect_refused_without_100_closes)
{
    h1t_start(t, NULL);
    h1t_feed_str(t,
                 "PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    cr_assert_eq(h1_conn_respond(t->c, 1, 413, NULL, 0, true), H2_OK);
    h1t_drain(t);
    cr_assert_eq(h1t_count(t, "connection: close\r\n"), 1);
    cr_assert(h1_conn_is_done(t->c));
}

H1T_TEST(response, informational_103_and_others)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, GET("/"));
    hpack_field link[] = {{(const uint8_t *)"link", (const uint8_t *)"</s.css>", 4, 8, 0, 0}};
    cr_assert_eq(h1_conn_respond(t->c, 1, 103, link, 1, false), H2_OK);
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, NULL, 0, true), H2_OK);
    h1t_drain(t);
    cr_assert_str_eq(t->out, "HTTP/1.1 103 Early Hints\r\nlink: </s.css>\r\n\r\n"
                             "HTTP/1.1 200 OK\r\n" DATE "content-length: 0\r\n\r\n");
}

/* --- HTTP/1.0 and Connection --------------------------------------------------------------- */

H1T_TEST(persist, http10_closes_by_default)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, "GET / HTTP/1.0\r\n\r\n" GET("/ignored"));
    cr_assert_eq(t->nreq, 1, "input after the last request is ignored");
    cr_assert_not(t->last.keep_alive);
    cr_assert_eq(h1_conn_respond(t->c, 1, 103, NULL, 0, false), H2_OK); /* dropped for 1.0 */
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, NULL, 0, false), H2_OK);
    cr_assert_eq(h1t_send(t, 1, "abc", true), H2_OK);
    h1t_drain(t);
    cr_assert_str_eq(t->out, "HTTP/1.1 200 OK\r\n" DATE "connection: close\r\n\r\nabc");
    cr_assert(h1_conn_is_done(t->c));
}

H1T_TEST(persist, http10_keep_alive)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    cr_assert(t->last.keep_alive);
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, NULL, 0, true), H2_OK);
    h1t_drain(t);
    cr_assert_str_eq(t->out, "HTTP/1.1 200 OK\r\n" DATE "content-length: 0\r\n"
                             "connection: keep-alive\r\n\r\n");
    cr_assert_not(h1_conn_is_done(t->c));
    h1t_feed_str(t, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    /* unknown length to a 1.0 client: delimited by the close */
    cr_assert_eq(h1_conn_respond(t->c, 2, 200, NULL, 0, false), H2_OK);
    cr_assert_eq(h1t_send(t, 2, "xyz", true), H2_OK);
    h1t_drain(t);
    cr_assert_eq(h1t_count(t, "connection: close\r\n\r\nxyz"), 1, "%s", t->out);
    cr_assert(h1_conn_is_done(t->c));
}

H1T_TEST(persist, connection_close)
{
    h1t_start(t, NULL);
    t->auto_respond = true;
    h1t_feed_str(t,
                 "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\nFoo: 1\r\n\r\n" GET("/2"));
    cr_assert_eq(t->nreq, 1);
    cr_assert_eq(t->last.head.nfields, 1, "connection and the field it names are hop-by-hop");
    cr_assert_eq(h1t_count(t, "connection: close\r\n"), 1);
    cr_assert(h1_conn_is_done(t->c));
}

H1T_TEST(persist, max_requests_per_connection)
{
    h1_limits l = *h1_limits_default();
    l.max_requests = 3;
    h1t_start(t, &l);
    t->auto_respond = true;
    h1t_feed_str(t, GET("/") GET("/") GET("/") GET("/"));
    cr_assert_eq(t->nreq, 3);
    cr_assert_eq(h1t_count(t, "connection: close"), 1);
    cr_assert_eq(t->x.limit_hits[H1_LIMIT_MAX_REQUESTS], 1);
    cr_assert(h1_conn_is_done(t->c));
}

H1T_TEST(persist, shutdown_finishes_in_flight)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, GET("/1") GET("/2"));
    h1_conn_shutdown(t->c);
    cr_assert_not(h1_conn_is_done(t->c));
    cr_assert_eq(h1_conn_respond(t->c, 1, 204, NULL, 0, true), H2_OK);
    cr_assert_eq(h1_conn_respond(t->c, 2, 204, NULL, 0, true), H2_OK);
    h1t_drain(t);
    cr_assert_eq(h1t_count(t, "connection: close"), 1);
    cr_assert(h1_conn_is_done(t->c));
}

H1T_TEST(persist, shutdown_reads_a_body_in_progress_to_its_end)
{
    h1t_start(t, NULL);
    t->auto_respond = true;
    h1t_feed_str(t, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabc");
    h1_conn_shutdown(t->c);
    h1t_feed_str(t, "def" GET("/after"));
    cr_assert_eq(t->body_len, 6);
    cr_assert_eq(t->nreq, 1, "nothing parsed after the shutdown");
    cr_assert_eq(h1t_count(t, "connection: close"), 1);
    cr_assert(h1_conn_is_done(t->c));
}

H1T_TEST(persist, eof_answers_delivered_requests_then_done)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, GET("/1") GET("/2") "GET /partial HTTP/1.1\r\nHo");
    h1_event ev;
    cr_assert_eq(h1_conn_recv_eof(t->c, &ev), H2_OK);
    cr_assert_eq(ev.type, H1_EV_NONE);
    cr_assert_eq(t->nreq, 2);
    cr_assert_not(h1_conn_is_done(t->c));
    cr_assert_eq(h1_conn_respond(t->c, 1, 204, NULL, 0, true), H2_OK);
    cr_assert_eq(h1_conn_respond(t->c, 2, 204, NULL, 0, true), H2_OK);
    h1t_drain(t);
    cr_assert_eq(h1t_count(t, "HTTP/1.1 204"), 2);
    cr_assert_eq(h1t_count(t, "connection: close"), 1, "the last response says close");
    cr_assert(h1_conn_is_done(t->c));
}

H1T_TEST(persist, eof_in_a_body_resets_that_request)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, GET("/1") "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabc");
    h1_event ev;
    cr_assert_eq(h1_conn_recv_eof(t->c, &ev), H2_OK);
    cr_assert_eq(ev.type, H1_EV_RESET);
    cr_assert_eq(ev.id, 2u);
    cr_assert_eq(h1_conn_respond(t->c, 1, 204, NULL, 0, true), H2_OK);
    cr_assert_eq(h1_conn_respond(t->c, 2, 200, NULL, 0, true), H2_E_STATE);
    h1t_drain(t);
    cr_assert_eq(h1t_count(t, "HTTP/1.1"), 1, "only the complete request is answered");
    cr_assert(h1_conn_is_done(t->c));
}

H1T_TEST(persist, reset_closes_after_queued_bytes)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, GET("/1") GET("/2"));
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, NULL, 0, false), H2_OK);
    cr_assert_eq(h1t_send(t, 1, "part", false), H2_OK);
    cr_assert_eq(h1_conn_reset(t->c, 1), H2_OK);
    cr_assert_eq(h1_conn_respond(t->c, 2, 204, NULL, 0, true), H2_OK);
    h1t_drain(t);
    cr_assert_eq(h1t_count(t, "HTTP/1.1"), 1);
    cr_assert(h1_conn_is_done(t->c));
}

/* --- Timers -------------------------------------------------------------------------------- */

H1T_TEST(timer, header_timeout_408)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, "GET / HTTP/1.1\r\nHost: a\r\n");
    uint64_t d = h1_conn_next_deadline(t->c);
    cr_assert_eq(d, 1000 + 10000);
    cr_assert_eq(h1_conn_tick(t->c, d - 1), H2_OK);
    cr_assert_eq(h1_conn_tick(t->c, d), H2_E_PROTO);
    h1t_drain(t);
    cr_assert_eq(h1t_status(t, 0), 408);
    cr_assert_eq(t->x.limit_hits[H1_LIMIT_HEADER_TIMEOUT], 1);
    cr_assert(h1_conn_is_done(t->c));
}

H1T_TEST(timer, header_timeout_counts_from_the_first_byte)
{
    h1t_start(t, NULL);
    t->auto_respond = true;
    h1t_feed_str(t, GET("/"));
    cr_assert_eq(h1_conn_next_deadline(t->c), 1000 + 60000, "idle after the response");
    t->now = 5000;
    h1t_feed_str(t, "GE");
    cr_assert_eq(h1_conn_next_deadline(t->c), 5000 + 10000);
    t->now = 14000;
    cr_assert_eq(h1_conn_tick(t->c, t->now), H2_OK);
    h1t_feed_str(t, "T / HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert_eq(t->nreq, 2);
}

H1T_TEST(timer, silent_connection_closed_quietly)
{
    h1t_start(t, NULL);
    cr_assert_eq(h1_conn_tick(t->c, 11000), H2_E_PROTO);
    cr_assert(h1_conn_is_done(t->c));
    cr_assert_not(h1_conn_want_write(t->c));
}

H1T_TEST(timer, keep_alive_idle_timeout)
{
    h1t_start(t, NULL);
    t->auto_respond = true;
    h1t_feed_str(t, GET("/"));
    cr_assert_eq(h1_conn_tick(t->c, 1000 + 59999), H2_OK);
    cr_assert_eq(h1_conn_tick(t->c, 1000 + 60000), H2_E_PROTO);
    cr_assert(h1_conn_is_done(t->c));
    cr_assert_eq(t->x.limit_hits[H1_LIMIT_IDLE_TIMEOUT], 1);
}

H1T_TEST(timer, idle_timer_after_a_body_outlives_its_response)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab");
    cr_assert_eq(h1_conn_respond(t->c, 1, 204, NULL, 0, true), H2_OK);
    h1t_drain(t);
    cr_assert_eq(h1_conn_in_flight(t->c), 0);
    cr_assert_eq(h1_conn_next_deadline(t->c), UINT64_MAX, "the body is still arriving");
    t->now = 2000;
    h1t_feed_str(t, "cd");
    cr_assert_eq(h1_conn_next_deadline(t->c), 2000 + 60000);
    h1t_feed_str(t, GET("/next"));
    cr_assert_eq(t->nreq, 2, "the connection persists");
}

H1T_TEST(timer, no_idle_timeout_while_a_request_is_in_flight)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, GET("/"));
    cr_assert_eq(h1_conn_next_deadline(t->c), UINT64_MAX);
    cr_assert_eq(h1_conn_tick(t->c, 1000000), H2_OK);
}

/* --- Upgrades ---------------------------------------------------------------------------------- */

#define H2C_REQ                                                                                    \
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"         \
    "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"

H1T_TEST(upgrade, h2c_accepted)
{
    h1t_start(t, NULL);
    const char *in = H2C_REQ "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    h1t_feed_str(t, in);
    cr_assert_eq(t->last.upgrade, H1_UPGRADE_H2C);
    cr_assert_eq(t->last.http2_settings.len, 24);
    cr_assert_eq(t->rv, H2_E_AGAIN);
    cr_assert_eq(t->rest, 24, "the preface is left for HTTP/2");
    cr_assert_eq(h1_conn_upgrade(t->c, 1, NULL, 0), H2_OK);
    h1t_drain(t);
    cr_assert_str_eq(t->out, "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\n"
                             "upgrade: h2c\r\n\r\n");
    cr_assert(h1_conn_is_upgraded(t->c));
    size_t used;
    h1_event ev;
    cr_assert_eq(h1_conn_recv(t->c, (const uint8_t *)"PRI", 3, t->now, &used, &ev), H2_E_CLOSED);
}

H1T_TEST(upgrade, accepted_even_with_connection_close)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings, close\r\n"
                    "Upgrade: h2c\r\nHTTP2-Settings: AA\r\n\r\n");
    cr_assert_eq(t->last.upgrade, H1_UPGRADE_H2C);
    cr_assert_eq(h1_conn_upgrade(t->c, 1, NULL, 0), H2_OK);
    h1t_drain(t);
    cr_assert(h1_conn_is_upgraded(t->c));
    cr_assert_not(h1_conn_is_done(t->c));
}

H1T_TEST(upgrade, declined_by_an_ordinary_response)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, H2C_REQ GET("/next"));
    cr_assert_eq(t->nreq, 1);
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, NULL, 0, true), H2_OK);
    size_t rest = t->rest;
    t->auto_respond = true;
    h1t_feed_str(t, GET("/next") + strlen(GET("/next")) - rest);
    cr_assert_eq(t->nreq, 2);
    cr_assert_not(h1_conn_is_upgraded(t->c));
}

H1T_TEST(upgrade, websocket_maps_to_protocol)
{
    h1t_start(t, NULL);
    h1t_feed_str(
        t, "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    cr_assert_eq(t->last.upgrade, H1_UPGRADE_WEBSOCKET);
    cr_assert(t->last.head.extended_connect);
    cr_assert_eq(t->last.head.protocol.len, 9);
    cr_assert_eq(memcmp(t->last.head.protocol.p, "websocket", 9), 0);
    hpack_field acc[] = {{(const uint8_t *)"sec-websocket-accept",
                          (const uint8_t *)"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 20, 28, 0, 0}};
    cr_assert_eq(h1_conn_upgrade(t->c, 1, acc, 1), H2_OK);
    h1t_drain(t);
    cr_assert_str_eq(t->out, "HTTP/1.1 101 Switching Protocols\r\n"
                             "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                             "connection: upgrade\r\nupgrade: websocket\r\n\r\n");
    cr_assert(h1_conn_is_upgraded(t->c));
}

H1T_TEST(upgrade, not_offered_for_incomplete_requests)
{
    h1t_start(t, NULL);
    t->auto_respond = true;
    h1t_feed_str(t, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nHTTP2-Settings: AA\r\n\r\n");
    cr_assert_eq(t->last.upgrade, H1_UPGRADE_NONE, "Connection: upgrade missing");
    cr_assert_eq(h1_conn_upgrade(t->c, 1, NULL, 0), H2_E_NOSTREAM, "answered already");
    h1t_feed_str(t, "POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade, http2-settings\r\n"
                    "Upgrade: h2c\r\nHTTP2-Settings: AA\r\nContent-Length: 1\r\n\r\nx");
    cr_assert_eq(t->last.upgrade, H1_UPGRADE_NONE, "a body");
    cr_assert_eq(t->nreq, 2);
}

/* --- Output mechanics ------------------------------------------------------------------------- */

H1T_TEST(output, body_is_referenced_not_copied)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, GET("/"));
    static const char big[100000];
    hpack_field f[] = {{(const uint8_t *)"content-length", (const uint8_t *)"100000", 14, 6, 0, 0}};
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, f, 1, false), H2_OK);
    t->queued++;
    cr_assert_eq(h1_conn_send_data(t->c, 1, (const uint8_t *)big, sizeof big, true, NULL, NULL),
                 H2_OK);
    t->released++;
    struct iovec iov[4];
    size_t k = h1_conn_out_prepare(t->c, iov, 4, 1u << 20);
    cr_assert_eq(k, 2);
    cr_assert_eq(iov[1].iov_base, (void *)big);
    cr_assert_eq(iov[1].iov_len, sizeof big);
    cr_assert_eq(h1_conn_unsent(t->c), iov[0].iov_len + sizeof big);
    h1t_drain(t);
    cr_assert_eq(h1_conn_unsent(t->c), 0);
}

H1T_TEST(output, backlog_pauses_reading)
{
    h1t_start(t, NULL);
    h1t_feed_str(t, GET("/"));
    static const char big[600000];
    cr_assert_eq(h1_conn_respond(t->c, 1, 200, NULL, 0, false), H2_OK);
    cr_assert_eq(h1_conn_send_data(t->c, 1, (const uint8_t *)big, sizeof big, false, NULL, NULL),
                 H2_OK);
    cr_assert_not(h1_conn_want_read(t->c));
    size_t used;
    h1_event ev;
    cr_assert_eq(h1_conn_recv(t->c, (const uint8_t *)"GET", 3, t->now, &used, &ev), H2_E_AGAIN);
    cr_assert_eq(used, 0);
    cr_assert_eq(t->x.limit_hits[H1_LIMIT_OUTPUT_BACKLOG], 1);
    cr_assert_eq(h1_conn_send_data(t->c, 1, NULL, 0, true, NULL, NULL), H2_OK);
    h1t_drain(t);
    cr_assert(h1_conn_want_read(t->c));
}

Test(output, warm_request_cycle_allocates_nothing)
{
    h1t t;
    h1t_init(&t, 0);
    h1t_start(&t, NULL);
    t.auto_respond = true;
    const char *req = "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n0\r\n\r\n" GET("/y");
    h1t_feed_str(&t, req); /* warm-up: pools filled */
    uint64_t before = t.allocs;
    for (int i = 0; i < 10; i++)
        h1t_feed_str(&t, req);
    cr_assert_eq(t.nreq, 22);
    cr_assert_eq(t.allocs, before, "%llu allocations on the warm path",
                 (unsigned long long)(t.allocs - before));
    h1t_fini(&t);
}

Test(output, release_on_free)
{
    h1t t;
    h1t_init(&t, 0);
    h1t_start(&t, NULL);
    h1t_feed_str(&t, GET("/"));
    cr_assert_eq(h1_conn_respond(t.c, 1, 200, NULL, 0, false), H2_OK);
    cr_assert_eq(h1t_send(&t, 1, "abc", false), H2_OK);
    cr_assert_eq(t.released, 0);
    h1t_fini(&t); /* frees the connection: the chunk is released there */
}

Test(date, imf_fixdate)
{
    char d[H1_DATE_LEN + 1] = {0};
    h1_format_date(784111777, d);
    cr_assert_str_eq(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    h1_format_date(0, d);
    cr_assert_str_eq(d, "Thu, 01 Jan 1970 00:00:00 GMT");
    h1_format_date(951782400, d); /* leap day */
    cr_assert_str_eq(d, "Tue, 29 Feb 2000 00:00:00 GMT");
    h1_format_date(4102444799, d);
    cr_assert_str_eq(d, "Thu, 31 Dec 2099 23:59:59 GMT");
}

Test(date, cached_per_second)
{
    h1_ctx x;
    cr_assert_eq(h1_ctx_init(&x, NULL, NULL), H2_OK);
    cr_assert_eq(x.date_s, -1);
    h1_ctx_set_time(&x, 784111777);
    cr_assert_str_eq(x.date, "Sun, 06 Nov 1994 08:49:37 GMT");
    x.date[0] = 'X'; /* not reformatted within the same second */
    h1_ctx_set_time(&x, 784111777);
    cr_assert_eq(x.date[0], 'X');
    h1_ctx_set_time(&x, 784111778);
    cr_assert_str_eq(x.date, "Sun, 06 Nov 1994 08:49:38 GMT");
    h1_ctx_free(&x);
}

/* --- The malformed-request table ---------------------------------------------------------- */

typedef struct bad_case {
    int status;
    char name[64];
    uint8_t *req;
    size_t len;
} bad_case;

/* {{N*text}} first, then \r \n \t \\ \" \xHH (see the file's header). */
static size_t decode(const char *s, uint8_t *out, size_t cap)
{
    static char exp[1 << 17];
    size_t e = 0;
    while (*s) {
        const char *q;
        if (s[0] == '{' && s[1] == '{' && (q = strstr(s, "}}")) != NULL && strchr(s, '*') < q) {
            int n = atoi(s + 2);
            const char *txt = strchr(s, '*') + 1;
            size_t tl = (size_t)(q - txt);
            for (int i = 0; i < n; i++) {
                cr_assert_lt(e + tl, sizeof exp);
                memcpy(exp + e, txt, tl);
                e += tl;
            }
            s = q + 2;
        } else {
            cr_assert_lt(e + 1, sizeof exp);
            exp[e++] = *s++;
        }
    }
    size_t o = 0;
    for (size_t i = 0; i < e; i++) {
        cr_assert_lt(o, cap);
        if (exp[i] != '\\') {
            out[o++] = (uint8_t)exp[i];
            continue;
        }
        char c = exp[++i];
        switch (c) {
        case 'r': out[o++] = '\r'; break;
        case 'n': out[o++] = '\n'; break;
        case 't': out[o++] = '\t'; break;
        case '\\': out[o++] = '\\'; break;
        case '"': out[o++] = '"'; break;
        case 'x': {
            char hex[3] = {exp[i + 1], exp[i + 2], 0};
            out[o++] = (uint8_t)strtoul(hex, NULL, 16);
            i += 2;
            break;
        }
        default: cr_assert_fail("unknown escape \\%c", c);
        }
    }
    return o;
}

static size_t load_cases(bad_case *cases, size_t max)
{
    FILE *f = fopen(H1_BAD_REQUESTS, "r");
    cr_assert_not_null(f, "%s", H1_BAD_REQUESTS);
    static char line[1 << 17];
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
            line[--l] = 0;
        if (l == 0 || line[0] == '#')
            continue;
        cr_assert_lt(n, max);
        char *st = strtok(line, "\t"), *cl = strtok(NULL, "\t"), *name = strtok(NULL, "\t"),
             *req = strtok(NULL, "");
        cr_assert(st && cl && name && req, "malformed line %zu", n);
        cr_assert_str_eq(cl, "close");
        bad_case *b = &cases[n++];
        b->status = atoi(st);
        snprintf(b->name, sizeof b->name, "%s", name);
        b->req = malloc(1 << 17);
        b->len = decode(req, b->req, 1 << 17);
    }
    fclose(f);
    return n;
}

static void run_table(int mode)
{
    static bad_case cases[256];
    size_t n = load_cases(cases, 256);
    cr_assert_geq(n, 40);
    for (size_t i = 0; i < n; i++) {
        bad_case *b = &cases[i];
        h1t t;
        h1t_init(&t, mode);
        h1t_start(&t, NULL);
        t.auto_respond = true;
        h1t_feed(&t, b->req, b->len);
        cr_expect_eq(t.rv, H2_E_PROTO, "%s: rv %s", b->name, h2_rv_name(t.rv));
        cr_expect_eq(h1t_status(&t, 0), b->status, "%s: status %d, want %d (%s)", b->name,
                     h1t_status(&t, 0), b->status, h1_conn_fault(t.c).reason);
        cr_expect_eq(h1t_status(&t, 1), 0, "%s: one response only", b->name);
        cr_expect_eq(h1t_count(&t, "connection: close\r\n"), 1, "%s", b->name);
        cr_expect(h1_conn_is_done(t.c), "%s: not closed", b->name);
        cr_expect_eq(h1_conn_error_status(t.c), b->status, "%s", b->name);
        if (b->status == 413 || b->status == 414 || b->status == 431) {
            uint64_t hits = 0;
            for (int k = 0; k < H1_LIMIT_COUNT; k++)
                hits += t.x.limit_hits[k];
            cr_expect_eq(hits, 1, "%s: a limit status is counted", b->name);
        }
        /* A request whose head was fine may have been delivered; then it was reset. */
        if (t.nreq)
            cr_expect_not_null(strstr(t.log, "RESET 1\n"), "%s: %s", b->name, t.log);
        h1t_fini(&t);
        free(b->req);
    }
}

Test(bad_requests, table)
{
    run_table(0);
}

Test(bad_requests, table__bytewise)
{
    run_table(1);
}

Test(date, absent_until_the_time_is_set)
{
    h1_ctx x;
    cr_assert_eq(h1_ctx_init(&x, NULL, NULL), H2_OK);
    h1_conn *c = h1_conn_new(&x, true, 0);
    const char *req = "GET http://b.example/p HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t used;
    h1_event ev;
    cr_assert_eq(h1_conn_recv(c, (const uint8_t *)req, strlen(req), 0, &used, &ev), H2_OK);
    cr_assert_eq(ev.type, H1_EV_REQUEST);
    cr_assert_eq(ev.u.request.head.authority.len, 9, "absolute-form wins over Host");
    cr_assert_eq(memcmp(ev.u.request.head.scheme.p, "http", 4), 0);
    cr_assert_eq(h1_conn_respond(c, ev.id, 200, NULL, 0, true), H2_OK);
    char out[256] = {0};
    size_t n = h1_conn_send(c, (uint8_t *)out, sizeof out - 1, 0);
    cr_assert_str_eq(out, "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    cr_assert_eq(n, strlen(out));
    h1_conn_free(c);
    h1_ctx_free(&x);
}
