/* test_h1_parse.c - proto/h1_parse.c: the section scanner (limits, octet
 * rules), request heads (target forms, Host, framing, persistence, upgrade
 * markers, hop-by-hop fields), trailer sections and chunk-size lines.  The
 * scanners are fed whole and one byte at a time. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "h1_parse.h"

static hpack_field fields[1000];
static uint8_t buf[1 << 17];

/* Scan s whole (bytewise 0) or one byte at a time; returns the state. */
static h1_scan_state scan(const char *s, size_t len, bool trailers, int bytewise,
                          const h1_limits *l, h1_err *err, size_t *used)
{
    h1_scan sc;
    h1_scan_init(&sc, trailers);
    h1_scan_state st = H1_SCAN_MORE;
    size_t off = 0;
    while (off < len && st == H1_SCAN_MORE) {
        size_t n = bytewise ? 1 : len - off;
        off +=
            h1_scan_feed(&sc, l ? l : h1_limits_default(), (const uint8_t *)s + off, n, &st, err);
    }
    *used = off;
    return st;
}

/* Scan then parse a request both ways; both must agree. */
static h1_err req(const char *s, h1_request *out)
{
    size_t len = strlen(s);
    h1_err err = h1_err_none(), e2 = h1_err_none();
    size_t used, used2;
    h1_scan_state st = scan(s, len, false, 0, NULL, &err, &used);
    h1_scan_state st2 = scan(s, len, false, 1, NULL, &e2, &used2);
    cr_assert_eq(st, st2, "%s", s);
    cr_assert_eq(used, used2);
    cr_assert_eq(err.status, e2.status);
    if (st == H1_SCAN_ERROR)
        return err;
    cr_assert_eq(st, H1_SCAN_DONE, "incomplete: %s", s);
    memcpy(buf, s, used);
    return h1_parse_request(buf, (uint32_t)used, h1_limits_default(), false, fields, out);
}

static bool str_is(h2_str s, const char *lit)
{
    return s.p != NULL && s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

Test(scan, stops_after_the_empty_line)
{
    h1_err err;
    size_t used;
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\nNEXT";
    for (int bw = 0; bw < 2; bw++) {
        cr_assert_eq(scan(s, strlen(s), false, bw, NULL, &err, &used), H1_SCAN_DONE);
        cr_assert_eq(used, strlen(s) - 4);
    }
}

Test(scan, leading_empty_lines_are_skipped)
{
    h1_request r;
    h1_err e = req("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    cr_assert_eq(e.status, 0, "%s", e.reason);
    cr_assert(str_is(r.head.path, "/"));
}

Test(scan, limits)
{
    h1_limits l = *h1_limits_default();
    l.max_request_line = 64;
    l.max_field_line = 64;
    l.max_fields = 2;
    l.max_head = 150;
    char s[1024];
    h1_err err;
    size_t used;
    for (int bw = 0; bw < 2; bw++) {
        snprintf(s, sizeof s, "GET /%064d HTTP/1.1\r\n", 0);
        cr_assert_eq(scan(s, strlen(s), false, bw, &l, &err, &used), H1_SCAN_ERROR);
        cr_assert_eq(err.status, 414);
        cr_assert_eq(err.limit, H1_LIMIT_REQUEST_LINE);
        cr_assert_lt(used, 70, "refused before the line ends");
        snprintf(s, sizeof s, "GET / HTTP/1.1\r\nX: %064d\r\n", 0);
        cr_assert_eq(scan(s, strlen(s), false, bw, &l, &err, &used), H1_SCAN_ERROR);
        cr_assert_eq(err.status, 431);
        cr_assert_eq(err.limit, H1_LIMIT_FIELD_LINE);
        snprintf(s, sizeof s, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
        cr_assert_eq(scan(s, strlen(s), false, bw, &l, &err, &used), H1_SCAN_ERROR);
        cr_assert_eq(err.limit, H1_LIMIT_FIELDS);
        snprintf(s, sizeof s, "GET / HTTP/1.1\r\nA: %050d\r\nB: %050d\r\n", 0, 0);
        snprintf(s + strlen(s), sizeof s - strlen(s), "C: %050d\r\n", 0);
        l.max_fields = 10;
        cr_assert_eq(scan(s, strlen(s), false, bw, &l, &err, &used), H1_SCAN_ERROR);
        cr_assert_eq(err.limit, H1_LIMIT_HEAD);
        l.max_fields = 2;
    }
}

Test(request, origin_form_and_fields)
{
    h1_request r;
    h1_err e = req("GET /a?b=c HTTP/1.1\r\nHost: Example.com:8080\r\nUser-Agent:  curl/8 \r\n"
                   "Accept: */*\r\nPriority: u=1, i\r\n\r\n",
                   &r);
    cr_assert_eq(e.status, 0, "%s", e.reason);
    cr_assert(str_is(r.head.method, "GET"));
    cr_assert(str_is(r.head.scheme, "http"));
    cr_assert(str_is(r.head.path, "/a?b=c"));
    cr_assert(str_is(r.head.authority, "Example.com:8080"));
    cr_assert_eq(r.head.nfields, 4);
    cr_assert_eq(memcmp(r.head.fields[1].name, "user-agent", 10), 0, "names lowercased");
    cr_assert_eq(r.head.fields[1].value_len, 6, "OWS trimmed");
    cr_assert_eq(r.head.urgency, 1);
    cr_assert(r.head.incremental);
    cr_assert_eq(r.head.content_length, -1);
    cr_assert_not(r.has_body);
    cr_assert(r.keep_alive);
    cr_assert_eq(r.minor, 1);
}

Test(request, absolute_form_takes_the_authority)
{
    h1_request r;
    h1_err e = req("GET http://other.example/x HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    cr_assert_eq(e.status, 0, "%s", e.reason);
    cr_assert(str_is(r.head.authority, "other.example"));
    cr_assert(str_is(r.head.path, "/x"));
    cr_assert(str_is(r.head.scheme, "http"));
}

Test(request, authority_and_asterisk_forms)
{
    h1_request r;
    h1_err e = req("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", &r);
    cr_assert_eq(e.status, 0, "%s", e.reason);
    cr_assert(str_is(r.head.authority, "example.com:443"));
    cr_assert_null(r.head.path.p);
    e = req("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    cr_assert_eq(e.status, 0, "%s", e.reason);
    cr_assert(str_is(r.head.path, "*"));
}

Test(request, http10_without_host)
{
    h1_request r;
    h1_err e = req("GET / HTTP/1.0\r\n\r\n", &r);
    cr_assert_eq(e.status, 0, "%s", e.reason);
    cr_assert_eq(r.minor, 0);
    cr_assert_not(r.keep_alive);
    cr_assert_null(r.head.authority.p);
    e = req("GET / HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n", &r);
    cr_assert(r.keep_alive);
    cr_assert_not(r.head.expect_continue, "ignored in HTTP/1.0");
}

Test(request, http11_minor_above_1)
{
    h1_request r;
    h1_err e = req("GET / HTTP/1.9\r\nHost: a\r\n\r\n", &r);
    cr_assert_eq(e.status, 0);
    cr_assert_eq(r.minor, 1);
}

Test(request, framing)
{
    h1_request r;
    h1_err e = req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0042\r\n\r\n", &r);
    cr_assert_eq(e.status, 0);
    cr_assert_eq(r.head.content_length, 42);
    cr_assert(r.has_body);
    cr_assert_not(r.chunked);
    e = req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &r);
    cr_assert_not(r.has_body);
    e = req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n", &r);
    cr_assert_eq(e.status, 0);
    cr_assert(r.chunked);
    cr_assert(r.has_body);
    cr_assert_eq(r.head.nfields, 1, "transfer-encoding is hop-by-hop");
    e = req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000000000\r\n\r\n", &r);
    cr_assert_eq(e.status, 0);
    e = req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000000001\r\n\r\n", &r);
    cr_assert_eq(e.status, 413);
}

Test(request, max_body_from_content_length)
{
    h1_limits l = *h1_limits_default();
    l.max_body = 100;
    const char *s = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n";
    memcpy(buf, s, strlen(s));
    h1_request r;
    h1_err e = h1_parse_request(buf, (uint32_t)strlen(s), &l, false, fields, &r);
    cr_assert_eq(e.status, 413);
    cr_assert_eq(e.limit, H1_LIMIT_BODY);
}

Test(request, te_trailers_and_expect)
{
    h1_request r;
    h1_err e =
        req("GET / HTTP/1.1\r\nHost: a\r\nTE: gzip, Trailers\r\nExpect: 100-Continue\r\n\r\n", &r);
    cr_assert_eq(e.status, 0);
    cr_assert(r.te_trailers);
    cr_assert(r.head.expect_continue);
    cr_assert_eq(r.head.nfields, 2, "te dropped, expect kept");
}

Test(request, head_method)
{
    h1_request r;
    req("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", &r);
    cr_assert(r.head_method);
}

Test(request, upgrade_markers)
{
    h1_request r;
    h1_err e = req("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                   "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
                   &r);
    cr_assert_eq(e.status, 0);
    cr_assert_eq(r.upgrade, H1_UPGRADE_H2C);
    cr_assert(str_is(r.http2_settings, "AAMAAABkAAQAAP__"));
    cr_assert_eq(r.head.nfields, 1, "only host remains");
    /* over TLS: never */
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                    "Upgrade: h2c\r\nHTTP2-Settings: AA\r\n\r\n";
    memcpy(buf, s, strlen(s));
    e = h1_parse_request(buf, (uint32_t)strlen(s), h1_limits_default(), true, fields, &r);
    cr_assert_eq(r.upgrade, H1_UPGRADE_NONE);
    cr_assert(str_is(r.head.scheme, "https"));
    /* websocket needs GET, the key and version 13 */
    e = req(
        "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n"
        "Sec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\n\r\n",
        &r);
    cr_assert_eq(r.upgrade, H1_UPGRADE_WEBSOCKET);
    cr_assert(str_is(r.ws_key, "k"));
    cr_assert(str_is(r.head.protocol, "websocket"));
    e = req("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            "Sec-WebSocket-Key: k\r\nSec-WebSocket-Version: 8\r\n\r\n",
            &r);
    cr_assert_eq(r.upgrade, H1_UPGRADE_NONE);
    cr_assert_null(r.head.protocol.p);
    e = req("POST /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            "Sec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\n\r\n",
            &r);
    cr_assert_eq(r.upgrade, H1_UPGRADE_NONE);
}

Test(request, errors_have_their_status)
{
    h1_request r;
    cr_assert_eq(req("GET / HTTP/2.0\r\nHost: a\r\n\r\n", &r).status, 505);
    cr_assert_eq(req("GET / HTTP/1.1\r\n\r\n", &r).status, 400);
    cr_assert_eq(req("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", &r).status, 400);
    cr_assert_eq(req("GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n", &r).status, 400);
    cr_assert_eq(req("GET / HTTP/1.1\r\nHost: a\r\n x\r\n\r\n", &r).status, 400);
    cr_assert_eq(req("GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", &r).status, 400);
    cr_assert_eq(req("GET / HTTP/1.1\r\nHost: a\r\nX: \xff\r\n\r\n", &r).status, 0, "obs-text ok");
}

Test(trailers, parsed_and_filtered)
{
    const char *s = "X-Sum: 1\r\nContent-Length: 9\r\nHost: b\r\nTransfer-Encoding: chunked\r\n"
                    "X-B:2\r\n\r\n";
    for (int bw = 0; bw < 2; bw++) {
        h1_err err;
        size_t used;
        cr_assert_eq(scan(s, strlen(s), true, bw, NULL, &err, &used), H1_SCAN_DONE);
        cr_assert_eq(used, strlen(s));
    }
    memcpy(buf, s, strlen(s));
    uint32_t n = 0;
    h1_err e = h1_parse_trailers(buf, (uint32_t)strlen(s), h1_limits_default(), fields, &n);
    cr_assert_eq(e.status, 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(memcmp(fields[0].name, "x-sum", 5), 0);
    cr_assert_eq(memcmp(fields[1].name, "x-b", 3), 0);
    h1_err err;
    size_t used;
    cr_assert_eq(scan("\r\n", 2, true, 0, NULL, &err, &used), H1_SCAN_DONE, "no trailers");
}

static h1_scan_state chunk(const char *s, int bytewise, uint64_t *size, h1_err *err, size_t *used)
{
    h1_chunk_scan cs;
    h1_chunk_scan_init(&cs);
    h1_scan_state st = H1_SCAN_MORE;
    size_t off = 0, len = strlen(s);
    while (off < len && st == H1_SCAN_MORE)
        off += h1_chunk_scan_feed(&cs, h1_limits_default(), (const uint8_t *)s + off,
                                  bytewise ? 1 : len - off, &st, err);
    *size = cs.size;
    *used = off;
    return st;
}

Test(chunk, valid_lines)
{
    static const struct {
        const char *s;
        uint64_t size;
    } ok[] = {
        {"0\r\n", 0},
        {"a\r\n", 10},
        {"FF\r\n", 255},
        {"00000000000001\r\n", 1},
        {"fffffffffffffff\r\n", 0xfffffffffffffffull},
        {"5;ext\r\n", 5},
        {"5 ;a=b\r\n", 5},
        {"5;a=b;c=\"q \\\" ;\"\r\n", 5},
        {"5\t; a = b\r\n", 5},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        for (int bw = 0; bw < 2; bw++) {
            uint64_t size;
            h1_err err;
            size_t used;
            cr_assert_eq(chunk(ok[i].s, bw, &size, &err, &used), H1_SCAN_DONE, "%s", ok[i].s);
            cr_assert_eq(size, ok[i].size, "%s", ok[i].s);
            cr_assert_eq(used, strlen(ok[i].s));
        }
}

Test(chunk, invalid_lines)
{
    static const char *bad[] = {
        "\r\n",    "g\r\n",  "-1\r\n",  "0x5\r\n",    "1ffffffffffffffff\r\n",
        "5 5\r\n", "5\n",    "5\rx",    "5;\x01\r\n", "5;a=\"\r\n",
        "5;a\n",   " 5\r\n", "5;(\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        for (int bw = 0; bw < 2; bw++) {
            uint64_t size;
            h1_err err;
            size_t used;
            cr_assert_eq(chunk(bad[i], bw, &size, &err, &used), H1_SCAN_ERROR, "%s", bad[i]);
            cr_assert_eq(err.status, 400);
        }
    char line[2000];
    memset(line, 'a', sizeof line);
    memcpy(line, "5;", 2);
    line[sizeof line - 1] = 0;
    uint64_t size;
    h1_err err;
    size_t used;
    cr_assert_eq(chunk(line, 0, &size, &err, &used), H1_SCAN_ERROR);
    cr_assert_eq(err.limit, H1_LIMIT_CHUNK_LINE);
}

Test(list, tokens)
{
    const uint8_t *v = (const uint8_t *)" keep-alive ,, Upgrade,x";
    cr_assert(h1_list_has(v, 24, "upgrade"));
    cr_assert(h1_list_has(v, 24, "keep-alive"));
    cr_assert(h1_list_has(v, 24, "x"));
    cr_assert_not(h1_list_has(v, 24, "close"));
    cr_assert_not(h1_list_has(v, 24, "keep"));
}
