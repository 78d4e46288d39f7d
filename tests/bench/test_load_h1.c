/* test_load_h1.c - spindle-load's strict HTTP/1.1 response parser
 * (bench/load/load_h1.c).  Every input is parsed whole and again in
 * pieces of 1, 2, 3 and 7 bytes: the results must not depend on where
 * reads split it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "load_h1.h"

typedef struct resp {
    uint16_t status;
    uint64_t body;
    bool keep_alive;
} resp;

typedef struct outcome {
    resp r[8];
    int n;
    bool error;
    const char *why;
} outcome;

/* Parse s in pieces of `step` bytes (0: whole); eof: then the close. */
static outcome run_step(const char *s, size_t step, bool head_method, bool eof)
{
    outcome o = {0};
    lh1_parser p;
    lh1_init(&p, head_method);
    size_t len = strlen(s), pos = 0;
    while (pos < len && !o.error) {
        size_t n = step && len - pos > step ? step : len - pos;
        size_t off = 0;
        while (off < n && !o.error) {
            lh1_ev ev;
            off += lh1_parse(&p, (const uint8_t *)s + pos + off, n - off, &ev);
            if (ev == LH1_ERROR) {
                o.error = true;
                o.why = p.error;
            } else if (ev == LH1_RESPONSE) {
                cr_assert_lt(o.n, 8);
                o.r[o.n++] = (resp){p.status, p.body, p.keep_alive};
            } else {
                cr_assert_eq(off, n, "MORE uses every byte");
            }
        }
        pos += n;
    }
    if (eof && !o.error) {
        lh1_ev ev = lh1_eof(&p);
        if (ev == LH1_RESPONSE)
            o.r[o.n++] = (resp){p.status, p.body, p.keep_alive};
        else if (ev == LH1_ERROR) {
            o.error = true;
            o.why = p.error;
        }
    }
    lh1_free(&p);
    return o;
}

/* Parse s in every way; they must agree.  Returns the outcome. */
static outcome parse(const char *s, bool head_method, bool eof)
{
    outcome whole = run_step(s, 0, head_method, eof);
    size_t steps[] = {1, 2, 3, 7};
    for (size_t k = 0; k < 4; k++) {
        outcome o = run_step(s, steps[k], head_method, eof);
        cr_assert_eq(o.n, whole.n, "step %zu: %d responses, whole: %d", steps[k], o.n, whole.n);
        cr_assert_eq(o.error, whole.error, "step %zu", steps[k]);
        for (int i = 0; i < o.n; i++) {
            cr_assert_eq(o.r[i].status, whole.r[i].status);
            cr_assert_eq(o.r[i].body, whole.r[i].body);
            cr_assert_eq(o.r[i].keep_alive, whole.r[i].keep_alive);
        }
    }
    return whole;
}

static void assert_error(const char *s, bool eof)
{
    outcome o = parse(s, false, eof);
    cr_assert(o.error, "accepted: %s", s);
    cr_assert_not_null(o.why);
}

Test(load_h1, content_length_keep_alive)
{
    outcome o =
        parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello", false, false);
    cr_assert_not(o.error);
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.r[0].status, 200);
    cr_assert_eq(o.r[0].body, 5);
    cr_assert(o.r[0].keep_alive);
}

Test(load_h1, pipelined_responses_in_one_read)
{
    outcome o = parse("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nab"
                      "HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\n\r\nxyz"
                      "HTTP/1.1 204 No Content\r\n\r\n"
                      "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
                      false, false);
    cr_assert_not(o.error);
    cr_assert_eq(o.n, 4);
    cr_assert_eq(o.r[0].body, 2);
    cr_assert_eq(o.r[1].status, 404);
    cr_assert_eq(o.r[1].body, 3);
    cr_assert_eq(o.r[2].status, 204);
    cr_assert_eq(o.r[3].body, 0);
}

Test(load_h1, response_stops_at_its_end)
{
    /* The parser returns right after a response: the caller matches it
     * to its request before the next one. */
    const char *s = "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n";
    lh1_parser p;
    lh1_init(&p, false);
    lh1_ev ev;
    size_t used = lh1_parse(&p, (const uint8_t *)s, strlen(s), &ev);
    cr_assert_eq(ev, LH1_RESPONSE);
    cr_assert_eq(used, strlen("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx"));
    cr_assert(lh1_idle(&p));
    lh1_free(&p);
}

Test(load_h1, chunked_with_extensions_and_trailers)
{
    outcome o = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5;name=val\r\nhello\r\n"
                      "A\r\n0123456789\r\n"
                      "0\r\nx-checksum: 1\r\n\r\n"
                      "HTTP/1.1 200 OK\r\ntransfer-encoding: CHUNKED\r\n\r\n0\r\n\r\n",
                      false, false);
    cr_assert_not(o.error, "%s", o.why);
    cr_assert_eq(o.n, 2);
    cr_assert_eq(o.r[0].body, 15, "chunk framing is not body");
    cr_assert_eq(o.r[1].body, 0);
}

Test(load_h1, connection_close_and_http10)
{
    outcome o =
        parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", false, false);
    cr_assert_not(o.r[0].keep_alive);
    o = parse("HTTP/1.1 200 OK\r\nconnection: Keep-Alive, Close\r\ncontent-length: 0\r\n\r\n",
              false, false);
    cr_assert_not(o.r[0].keep_alive);
    o = parse("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nx", false, false);
    cr_assert_not(o.r[0].keep_alive, "HTTP/1.0 closes by default");
    o = parse("HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 1\r\n\r\nx", false,
              false);
    cr_assert(o.r[0].keep_alive);
}

Test(load_h1, bodies_that_are_not_there)
{
    /* HEAD: the content-length describes the GET's body. */
    outcome o = parse("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"
                      "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n",
                      true, false);
    cr_assert_eq(o.n, 2);
    cr_assert_eq(o.r[0].body, 0);
    o = parse("HTTP/1.1 304 Not Modified\r\ncontent-length: 7\r\n\r\n", false, false);
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.r[0].body, 0);
}

Test(load_h1, interim_responses_are_skipped)
{
    outcome o = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
                      "HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
                      false, false);
    cr_assert_not(o.error);
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.r[0].status, 201);
}

Test(load_h1, body_until_close)
{
    outcome o = parse("HTTP/1.1 200 OK\r\nserver: old\r\n\r\nsome bytes", false, true);
    cr_assert_not(o.error);
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.r[0].body, 10);
    cr_assert_not(o.r[0].keep_alive);
}

Test(load_h1, status_line_without_reason)
{
    outcome o = parse("HTTP/1.1 200\r\ncontent-length: 0\r\n\r\n"
                      "HTTP/1.1 500 \r\ncontent-length: 0\r\n\r\n",
                      false, false);
    cr_assert_not(o.error);
    cr_assert_eq(o.n, 2);
    cr_assert_eq(o.r[1].status, 500);
}

Test(load_h1, repeated_equal_content_length)
{
    outcome o =
        parse("HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\nab", false, false);
    cr_assert_not(o.error);
    cr_assert_eq(o.r[0].body, 2);
}

Test(load_h1, malformed_heads)
{
    assert_error("HTTP/2.0 200 OK\r\n\r\n", false);
    assert_error("HTTP/1.1 20 OK\r\n\r\n", false);
    assert_error("HTTP/1.1 600 Nope\r\ncontent-length: 0\r\n\r\n", false);
    assert_error("HTTP/1.1 099 Nope\r\ncontent-length: 0\r\n\r\n", false);
    assert_error("HTTP/1.1 200OK\r\ncontent-length: 0\r\n\r\n", false);
    assert_error("HTTP/1.1  200 OK\r\ncontent-length: 0\r\n\r\n", false);
    assert_error("http/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", false);
    assert_error("\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", false);
    assert_error("HTTP/1.1 200 OK\ncontent-length: 0\r\n\r\n", false);
    assert_error("HTTP/1.1 200 OK\r\ncontent-length : 0\r\n\r\n", false);
    assert_error("HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", false);
    assert_error("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", false);
    assert_error("HTTP/1.1 200 OK\r\nx: a\x01b\r\n\r\n", false);
    assert_error("HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n", false);
}

Test(load_h1, framing_smuggling_vectors)
{
    assert_error("HTTP/1.1 200 OK\r\ncontent-length: 1x\r\n\r\nx", false);
    assert_error("HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", false);
    assert_error("HTTP/1.1 200 OK\r\ncontent-length: \r\n\r\n", false);
    assert_error("HTTP/1.1 200 OK\r\ncontent-length: 1, 1\r\n\r\nx", false);
    assert_error("HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nxx", false);
    assert_error("HTTP/1.1 200 OK\r\ncontent-length: 1234567890123456789\r\n\r\n", false);
    assert_error("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n"
                 "0\r\n\r\n",
                 false);
    assert_error("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n", false);
    assert_error("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n"
                 "\r\n0\r\n\r\n",
                 false);
    assert_error("HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", false);
}

Test(load_h1, bad_chunks)
{
    const char *h = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
    const char *bodies[] = {"5\r\nhelloX\r\n0\r\n\r\n", "g\r\n", "\r\n", "5\nhello\r\n0\r\n\r\n",
                            "1234567890abcdef0\r\n"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char s[256];
        snprintf(s, sizeof s, "%s%s", h, bodies[i]);
        assert_error(s, false);
    }
}

Test(load_h1, a_long_body_is_caught_at_the_next_response)
{
    assert_error("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nabc"
                 "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
                 false);
}

Test(load_h1, short_responses_at_close)
{
    assert_error("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12345", true);
    assert_error("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n", true);
    assert_error("HTTP/1.1 200 OK\r\ncontent-le", true);
    /* Between responses, a close is no error. */
    outcome o = parse("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx", false, true);
    cr_assert_not(o.error);
    cr_assert_eq(o.n, 1);
    o = parse("", false, true);
    cr_assert_not(o.error);
    cr_assert_eq(o.n, 0);
}

Test(load_h1, head_too_large)
{
    /* h1_limits_default(): a field line of at most 8 KiB. */
    static char s[20000];
    int n = snprintf(s, sizeof s, "HTTP/1.1 200 OK\r\nx-big: ");
    memset(s + n, 'a', 10000);
    memcpy(s + n + 10000, "\r\n\r\n", 5);
    assert_error(s, false);
}
