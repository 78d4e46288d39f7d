/* test_h2_http.c - proto/h2_http.c: RFC 9113 §8 request, trailer and
 * response field rules; RFC 9218 §4 priority field. */
#include <criterion/criterion.h>
#include <string.h>

#include "h2_http.h"

/* A field from two string literals (sizeof, so embedded NULs count). */
#define F(n, v)                                                                                    \
    {                                                                                              \
        (const uint8_t *)(n), (const uint8_t *)(v), (uint32_t)(sizeof(n) - 1),                     \
            (uint32_t)(sizeof(v) - 1), 0, 0                                                        \
    }
#define END                                                                                        \
    {                                                                                              \
        NULL, NULL, 0, 0, 0, 0                                                                     \
    }

#define GET_PSEUDO                                                                                 \
    F(":method", "GET"), F(":scheme", "https"), F(":path", "/"), F(":authority", "example.com")

/* Fields up to the END sentinel. */
static uint32_t count(const hpack_field *f)
{
    uint32_t n = 0;
    while (f[n].name != NULL)
        n++;
    return n;
}

static bool str_is(h2_str s, const char *lit)
{
    return s.p != NULL && s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

static h2_fault parse(const hpack_field *f, bool ext, h2_req_head *rq)
{
    return h2_http_parse_request(f, count(f), ext, rq);
}

/* --- Valid requests ------------------------------------------------------------- */

Test(request, get)
{
    const hpack_field f[] = {GET_PSEUDO, F("user-agent", "t/1"), F("accept", "*/*"), END};
    h2_req_head rq;
    h2_fault e = parse(f, false, &rq);
    cr_assert(h2_fault_ok(e), "%s", e.reason);
    cr_expect(str_is(rq.method, "GET"));
    cr_expect(str_is(rq.scheme, "https"));
    cr_expect(str_is(rq.path, "/"));
    cr_expect(str_is(rq.authority, "example.com"));
    cr_expect_null(rq.protocol.p);
    cr_expect_eq(rq.fields, &f[4]);
    cr_expect_eq(rq.nfields, 2u);
    cr_expect_eq(rq.content_length, -1);
    cr_expect_eq(rq.urgency, H2_URGENCY_DEFAULT);
    cr_expect_not(rq.incremental);
    cr_expect_not(rq.expect_continue);
    cr_expect_not(rq.extended_connect);
}

Test(request, no_regular_fields)
{
    const hpack_field f[] = {GET_PSEUDO, END};
    h2_req_head rq;
    cr_assert(h2_fault_ok(parse(f, false, &rq)));
    cr_expect_null(rq.fields);
    cr_expect_eq(rq.nfields, 0u);
}

Test(request, post_content_length)
{
    const hpack_field f[] = {F(":method", "POST"),
                             F(":scheme", "http"),
                             F(":path", "/up?x=1"),
                             F(":authority", "a"),
                             F("content-length", "42"),
                             F("content-type", "text/plain"),
                             END};
    h2_req_head rq;
    cr_assert(h2_fault_ok(parse(f, false, &rq)));
    cr_expect_eq(rq.content_length, 42);
}

Test(request, content_length_forms)
{
    static const struct {
        const char *v1, *v2; /* v2 NULL: one field */
        int64_t want;
    } cases[] = {
        {"0", NULL, 0},
        {"007", NULL, 7},
        {"42, 42", NULL, 42},
        {"42,42", NULL, 42},
        {"42 ,\t42 , 42", NULL, 42},
        {"42", "42", 42},
        {"42, 42", "42", 42},
        {"1000000000000000000", NULL, H2_HTTP_MAX_CONTENT_LENGTH},
        {"00000000000000000000000001", NULL, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hpack_field f[] = {GET_PSEUDO, END, END, END};
        f[4] = (hpack_field){(const uint8_t *)"content-length",
                             (const uint8_t *)cases[i].v1,
                             14,
                             (uint32_t)strlen(cases[i].v1),
                             0,
                             0};
        if (cases[i].v2)
            f[5] = (hpack_field){(const uint8_t *)"content-length",
                                 (const uint8_t *)cases[i].v2,
                                 14,
                                 (uint32_t)strlen(cases[i].v2),
                                 0,
                                 0};
        h2_req_head rq;
        h2_fault e = parse(f, false, &rq);
        cr_expect(h2_fault_ok(e), "'%s': %s", cases[i].v1, e.reason);
        cr_expect_eq(rq.content_length, cases[i].want, "'%s'", cases[i].v1);
    }
}

Test(request, options_asterisk)
{
    const hpack_field f[] = {F(":method", "OPTIONS"), F(":scheme", "https"), F(":path", "*"),
                             F(":authority", "example.com"), END};
    h2_req_head rq;
    cr_expect(h2_fault_ok(parse(f, false, &rq)));
}

Test(request, connect)
{
    const hpack_field f[] = {F(":method", "CONNECT"), F(":authority", "example.com:443"), END};
    h2_req_head rq;
    cr_assert(h2_fault_ok(parse(f, false, &rq)));
    cr_expect(str_is(rq.authority, "example.com:443"));
    cr_expect_null(rq.scheme.p);
    cr_expect_null(rq.path.p);
    cr_expect_not(rq.extended_connect);
}

Test(request, extended_connect_websocket)
{
    const hpack_field f[] = {F(":method", "CONNECT"),
                             F(":protocol", "websocket"),
                             F(":scheme", "https"),
                             F(":path", "/chat"),
                             F(":authority", "example.com"),
                             F("sec-websocket-version", "13"),
                             END};
    h2_req_head rq;
    h2_fault e = parse(f, true, &rq);
    cr_assert(h2_fault_ok(e), "%s", e.reason);
    cr_expect(rq.extended_connect);
    cr_expect(str_is(rq.protocol, "websocket"));
    cr_expect(str_is(rq.path, "/chat"));
}

Test(request, accepted_details)
{
    static const struct {
        const char *what;
        hpack_field f[10];
    } cases[] = {
        {"te: trailers", {GET_PSEUDO, F("te", "trailers"), END}},
        {"te: Trailers", {GET_PSEUDO, F("te", "Trailers"), END}},
        {"host equal to :authority", {GET_PSEUDO, F("host", "example.com"), END}},
        {"host equal ignoring case", {GET_PSEUDO, F("host", "Example.COM"), END}},
        {"host without :authority",
         {F(":method", "GET"), F(":scheme", "https"), F(":path", "/"), F("host", "h"), END}},
        {"pseudo-headers in any order",
         {F(":path", "/x"), F(":authority", "a"), F(":scheme", "http"), F(":method", "GET"), END}},
        {"other scheme, any path",
         {F(":method", "GET"), F(":scheme", "foo+bar.1"), F(":path", "opaque"), END}},
        {"every tchar in a name", {GET_PSEUDO, F("!#$%&'*+-.^_`|~09az", "x"), END}},
        {"inner SP/HTAB, obs-text, DEL", {GET_PSEUDO, F("x", "a \tb\x80\xff\x7f"), END}},
        {"empty value", {GET_PSEUDO, F("x-empty", ""), END}},
        {"two cookie fields", {GET_PSEUDO, F("cookie", "a=b"), F("cookie", "c=d"), END}},
        {"unknown expectation", {GET_PSEUDO, F("expect", "something"), END}},
        {"authority with userinfo-ish chars",
         {F(":method", "GET"), F(":scheme", "https"), F(":path", "/"),
          F(":authority", "[::1]:8443"), END}},
        {"path with query and percent",
         {F(":method", "GET"), F(":scheme", "https"), F(":path", "/a%20b?q=\"x\"&y=~"), END}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        h2_req_head rq;
        h2_fault e = parse(cases[i].f, false, &rq);
        cr_expect(h2_fault_ok(e), "%s: %s", cases[i].what, e.reason ? e.reason : "");
    }
}

Test(request, expect_and_priority)
{
    const hpack_field f[] = {GET_PSEUDO, F("expect", "100-Continue"), F("priority", "u=1"),
                             F("priority", "i"), END};
    h2_req_head rq;
    cr_assert(h2_fault_ok(parse(f, false, &rq)));
    cr_expect(rq.expect_continue);
    cr_expect_eq(rq.urgency, 1);
    cr_expect(rq.incremental);
}

/* --- Malformed requests: one row per rule, each with its own reason ------------------ */

typedef struct bad_req {
    const char *reason; /* the exact reason expected */
    bool ext;           /* SETTINGS_ENABLE_CONNECT_PROTOCOL sent */
    hpack_field f[10];
} bad_req;

static const bad_req bad[] = {
    /* §8.2.1 names */
    {"uppercase character in field name", false, {GET_PSEUDO, F("User-Agent", "x"), END}},
    {"empty field name", false, {GET_PSEUDO, F("", "x"), END}}, /* CVE-2019-9516 */
    {"invalid character in field name", false, {GET_PSEUDO, F("a b", "x"), END}},
    {"invalid character in field name", false, {GET_PSEUDO, F("a:b", "x"), END}},
    {"invalid character in field name", false, {GET_PSEUDO, F("a\"b", "x"), END}},
    {"invalid character in field name", false, {GET_PSEUDO, F("caf\xc3\xa9", "x"), END}},
    {"invalid character in field name", false, {GET_PSEUDO, F("a\0b", "x"), END}},
    /* §8.2.1 values */
    {"NUL in field value", false, {GET_PSEUDO, F("x", "a\0b"), END}},
    {"CR in field value", false, {GET_PSEUDO, F("x", "a\rb"), END}},
    {"LF in field value", false, {GET_PSEUDO, F("x", "a\nb"), END}},
    {"LF in field value", false, {GET_PSEUDO, F("x", "0123456789abcdef\n"), END}},
    {"leading whitespace in field value", false, {GET_PSEUDO, F("x", " a"), END}},
    {"leading whitespace in field value", false, {GET_PSEUDO, F("x", "\ta"), END}},
    {"trailing whitespace in field value", false, {GET_PSEUDO, F("x", "a "), END}},
    {"trailing whitespace in field value", false, {GET_PSEUDO, F("x", "a\t"), END}},
    /* §8.2.2 connection-specific */
    {"connection header field", false, {GET_PSEUDO, F("connection", "close"), END}},
    {"proxy-connection header field", false, {GET_PSEUDO, F("proxy-connection", "x"), END}},
    {"keep-alive header field", false, {GET_PSEUDO, F("keep-alive", "timeout=5"), END}},
    {"transfer-encoding header field", false, {GET_PSEUDO, F("transfer-encoding", "chunked"), END}},
    {"upgrade header field", false, {GET_PSEUDO, F("upgrade", "h2c"), END}},
    {"te other than trailers", false, {GET_PSEUDO, F("te", "gzip"), END}},
    {"te other than trailers", false, {GET_PSEUDO, F("te", "trailers, deflate"), END}},
    /* §8.3 pseudo-headers */
    {"duplicate pseudo-header field", false, {GET_PSEUDO, F(":path", "/again"), END}},
    {"duplicate pseudo-header field", false, {F(":method", "GET"), GET_PSEUDO, END}},
    {"unknown pseudo-header field", false, {GET_PSEUDO, F(":foo", "bar"), END}},
    {"unknown pseudo-header field", false, {F(":", "x"), GET_PSEUDO, END}},
    {"pseudo-header field after a regular field",
     false,
     {F(":method", "GET"), F(":scheme", "https"), F("accept", "*/*"), F(":path", "/"), END}},
    {":status in a request", false, {GET_PSEUDO, F(":status", "200"), END}},
    {"missing :method", false, {F(":scheme", "https"), F(":path", "/"), END}},
    {"missing :scheme", false, {F(":method", "GET"), F(":path", "/"), END}},
    {"missing :path", false, {F(":method", "GET"), F(":scheme", "https"), END}},
    {"empty :path", false, {F(":method", "GET"), F(":scheme", "https"), F(":path", ""), END}},
    {"empty :method", false, {F(":method", ""), F(":scheme", "https"), F(":path", "/"), END}},
    {"empty :scheme", false, {F(":method", "GET"), F(":scheme", ""), F(":path", "/"), END}},
    {"empty :authority",
     false,
     {F(":method", "GET"), F(":scheme", "https"), F(":path", "/"), F(":authority", ""), END}},
    {":path neither absolute nor *",
     false,
     {F(":method", "GET"), F(":scheme", "https"), F(":path", "index.html"), END}},
    {":path neither absolute nor *",
     false,
     {F(":method", "OPTIONS"), F(":scheme", "http"), F(":path", "**"), END}},
    {":path * with a method other than OPTIONS",
     false,
     {F(":method", "GET"), F(":scheme", "HTTPS"), F(":path", "*"), END}},
    {"invalid :method", false, {F(":method", "GE(T"), F(":scheme", "https"), F(":path", "/"), END}},
    {"invalid :method",
     false,
     {F(":method", "GET /x"), F(":scheme", "https"), F(":path", "/"), END}},
    {"invalid :scheme", false, {F(":method", "GET"), F(":scheme", "1http"), F(":path", "/"), END}},
    {"invalid :scheme", false, {F(":method", "GET"), F(":scheme", "ht_tp"), F(":path", "/"), END}},
    {"invalid character in :path",
     false,
     {F(":method", "GET"), F(":scheme", "https"), F(":path", "/a b"), END}},
    {"invalid character in :path",
     false,
     {F(":method", "GET"), F(":scheme", "https"), F(":path", "/a\r\nx: y"), END}},
    {"invalid character in :authority",
     false,
     {F(":method", "GET"), F(":scheme", "https"), F(":path", "/"), F(":authority", "a/b"), END}},
    /* §8.5 CONNECT, RFC 8441 §4 */
    {"CONNECT with :scheme or :path",
     false,
     {F(":method", "CONNECT"), F(":authority", "a:443"), F(":path", "/"), END}},
    {"CONNECT with :scheme or :path",
     false,
     {F(":method", "CONNECT"), F(":authority", "a:443"), F(":scheme", "https"), END}},
    {"CONNECT without :authority", false, {F(":method", "CONNECT"), END}},
    {":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL",
     false,
     {F(":method", "CONNECT"), F(":protocol", "websocket"), F(":scheme", "https"), F(":path", "/"),
      F(":authority", "a"), END}},
    {":protocol with a method other than CONNECT",
     true,
     {GET_PSEUDO, F(":protocol", "websocket"), END}},
    {"extended CONNECT without :authority",
     true,
     {F(":method", "CONNECT"), F(":protocol", "websocket"), F(":scheme", "https"), F(":path", "/"),
      END}},
    {"missing :path",
     true,
     {F(":method", "CONNECT"), F(":protocol", "websocket"), F(":scheme", "https"),
      F(":authority", "a"), END}},
    {"missing :scheme",
     true,
     {F(":method", "CONNECT"), F(":protocol", "websocket"), F(":path", "/"), F(":authority", "a"),
      END}},
    {"empty :protocol",
     true,
     {F(":method", "CONNECT"), F(":protocol", ""), F(":scheme", "https"), F(":path", "/"),
      F(":authority", "a"), END}},
    {"invalid :protocol",
     true,
     {F(":method", "CONNECT"), F(":protocol", "web socket"), F(":scheme", "https"), F(":path", "/"),
      F(":authority", "a"), END}},
    /* host */
    {"host differs from :authority", false, {GET_PSEUDO, F("host", "evil.example"), END}},
    {"duplicate host",
     false,
     {F(":method", "GET"), F(":scheme", "https"), F(":path", "/"), F("host", "a"), F("host", "a"),
      END}},
    /* content-length (RFC 9110 §8.6) */
    {"invalid content-length", false, {GET_PSEUDO, F("content-length", "abc"), END}},
    {"invalid content-length", false, {GET_PSEUDO, F("content-length", ""), END}},
    {"invalid content-length", false, {GET_PSEUDO, F("content-length", "-1"), END}},
    {"invalid content-length", false, {GET_PSEUDO, F("content-length", "+1"), END}},
    {"invalid content-length", false, {GET_PSEUDO, F("content-length", "1 2"), END}},
    {"invalid content-length", false, {GET_PSEUDO, F("content-length", "0x10"), END}},
    {"invalid content-length", false, {GET_PSEUDO, F("content-length", "5,"), END}},
    {"invalid content-length", false, {GET_PSEUDO, F("content-length", "5,,5"), END}},
    {"invalid content-length", false, {GET_PSEUDO, F("content-length", ",5"), END}},
    {"content-length too large",
     false,
     {GET_PSEUDO, F("content-length", "1000000000000000001"), END}},
    {"content-length too large",
     false,
     {GET_PSEUDO, F("content-length", "99999999999999999999999"), END}},
    {"content-length list with differing values",
     false,
     {GET_PSEUDO, F("content-length", "5, 6"), END}},
    {"content-length fields differ",
     false,
     {GET_PSEUDO, F("content-length", "5"), F("content-length", "6"), END}},
};

Test(request, malformed_each_rule)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        h2_req_head rq;
        h2_fault e = parse(bad[i].f, bad[i].ext, &rq);
        cr_expect_eq(e.code, H2_PROTOCOL_ERROR, "row %zu (%s)", i, bad[i].reason);
        cr_expect_eq(e.scope, H2_SCOPE_STREAM, "row %zu (%s)", i, bad[i].reason);
        cr_expect(e.reason && strcmp(e.reason, bad[i].reason) == 0, "row %zu: want '%s', got '%s'",
                  i, bad[i].reason, e.reason ? e.reason : "(none)");
    }
}

/* NUL, CR and LF at every offset of values around the 8-octet stride. */
Test(fields, value_scan_every_offset)
{
    uint8_t v[40];
    const uint8_t bad_octets[] = {'\0', '\r', '\n'};
    for (uint32_t len = 1; len <= sizeof v; len++) {
        memset(v, 'a', sizeof v);
        cr_expect(h2_http_valid_value(v, len), "len %u", len);
        for (uint32_t at = 0; at < len; at++)
            for (size_t b = 0; b < sizeof bad_octets; b++) {
                memset(v, 'a', sizeof v);
                v[at] = bad_octets[b];
                cr_expect_not(h2_http_valid_value(v, len), "len %u at %u octet %u", len, at,
                              bad_octets[b]);
            }
    }
    /* Octets next to the excluded ones must not trip the word-at-a-time test. */
    for (unsigned c = 1; c < 256; c++) {
        if (c == '\r' || c == '\n')
            continue;
        memset(v, (int)c, sizeof v);
        v[0] = v[sizeof v - 1] = 'a';
        cr_expect(h2_http_valid_value(v, sizeof v), "octet 0x%02x", c);
    }
}

Test(fields, name_table)
{
    for (unsigned c = 0; c < 256; c++) {
        const uint8_t n[1] = {(uint8_t)c};
        bool want = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    (c != 0 && strchr("!#$%&'*+-.^_`|~", (int)c) != NULL);
        cr_expect_eq(h2_http_valid_name(n, 1), want, "octet 0x%02x", c);
    }
    cr_expect_not(h2_http_valid_name((const uint8_t *)"", 0));
    cr_expect(h2_http_valid_value((const uint8_t *)"", 0));
}

Test(fields, field_is)
{
    const hpack_field f = F("content-length", "1");
    cr_expect(h2_http_field_is(&f, "content-length", 14));
    cr_expect_not(h2_http_field_is(&f, "content-type", 12));
    cr_expect_not(h2_http_field_is(&f, "content-lengtx", 14));
}

/* --- Trailers and response fields ---------------------------------------------------- */

Test(trailers, rules)
{
    const hpack_field ok[] = {F("grpc-status", "0"), F("grpc-message", "fine"), END};
    cr_expect(h2_fault_ok(h2_http_check_trailers(ok, count(ok))));
    cr_expect(h2_fault_ok(h2_http_check_trailers(NULL, 0)));

    static const struct {
        const char *reason;
        hpack_field f[3];
    } cases[] = {
        {"pseudo-header field in trailers", {F("x", "1"), F(":status", "200"), END}},
        {"pseudo-header field in trailers", {F(":path", "/"), END}},
        {"connection header field", {F("connection", "close"), END}},
        {"transfer-encoding header field", {F("transfer-encoding", "chunked"), END}},
        {"uppercase character in field name", {F("Grpc-Status", "0"), END}},
        {"empty field name", {F("", "0"), END}},
        {"CR in field value", {F("x", "a\rb"), END}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        h2_fault e = h2_http_check_trailers(cases[i].f, count(cases[i].f));
        cr_expect_eq(e.code, H2_PROTOCOL_ERROR, "%s", cases[i].reason);
        cr_expect_eq(e.scope, H2_SCOPE_STREAM, "%s", cases[i].reason);
        cr_expect(e.reason && strcmp(e.reason, cases[i].reason) == 0, "want %s got %s",
                  cases[i].reason, e.reason ? e.reason : "(none)");
    }
}

Test(response, fields)
{
    const hpack_field ok[] = {F("content-type", "text/html"), F("cache-control", "no-store"),
                              F("set-cookie", "a=b; Path=/"), END};
    cr_expect_eq(h2_http_check_response_fields(ok, count(ok)), H2_OK);
    cr_expect_eq(h2_http_check_response_fields(NULL, 0), H2_OK);

    const hpack_field bad_sets[][2] = {
        {F(":status", "200"), END},  {F("Content-Type", "x"), END}, {F("connection", "close"), END},
        {F("keep-alive", "1"), END}, {F("x", "a\nb"), END},         {F("x", " lead"), END},
        {F("", "x"), END},
    };
    for (size_t i = 0; i < sizeof bad_sets / sizeof bad_sets[0]; i++)
        cr_expect_eq(h2_http_check_response_fields(bad_sets[i], 1), H2_E_INVAL, "set %zu", i);
}

/* --- RFC 9218 §4 priority ------------------------------------------------------------ */

Test(response, parse_head)
{
    h2_resp_head h;
    const hpack_field ok[] = {F(":status", "204"), F("content-length", "0, 0"), F("x-a", "1"), END};
    cr_assert(h2_fault_ok(h2_http_parse_response(ok, count(ok), &h)));
    cr_expect_eq(h.status, 204);
    cr_expect_eq(h.content_length, 0);
    cr_expect_eq(h.nfields, 2u);
    cr_expect_eq(h.fields, &ok[1]);
    const hpack_field bare[] = {F(":status", "103"), END};
    cr_assert(h2_fault_ok(h2_http_parse_response(bare, count(bare), &h)));
    cr_expect_eq(h.status, 103);
    cr_expect_null(h.fields);
    cr_expect_eq(h.content_length, -1);

    static const struct {
        const char *reason;
        hpack_field f[3];
    } cases[] = {
        {"missing :status", {F("x", "1"), END}},
        {"missing :status", {END}},
        {"invalid :status", {F(":status", "20"), END}},
        {"invalid :status", {F(":status", "2000"), END}},
        {"invalid :status", {F(":status", "099"), END}},
        {"invalid :status", {F(":status", "600"), END}},
        {"invalid :status", {F(":status", "2x0"), END}},
        {"duplicate :status", {F(":status", "200"), F(":status", "200"), END}},
        {"pseudo-header field other than :status in a response",
         {F(":status", "200"), F(":path", "/"), END}},
        {"pseudo-header field other than :status in a response", {F(":foo", "1"), END}},
        {"connection header field", {F(":status", "200"), F("connection", "close"), END}},
        {"uppercase character in field name", {F(":status", "200"), F("X", "1"), END}},
        {"invalid content-length", {F(":status", "200"), F("content-length", "x"), END}},
        {"content-length list with differing values",
         {F(":status", "200"), F("content-length", "1, 2"), END}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        h2_fault e = h2_http_parse_response(cases[i].f, count(cases[i].f), &h);
        cr_expect_eq(e.code, H2_PROTOCOL_ERROR, "%s", cases[i].reason);
        cr_expect_eq(e.scope, H2_SCOPE_STREAM, "%s", cases[i].reason);
        cr_expect(e.reason && strcmp(e.reason, cases[i].reason) == 0, "want %s got %s",
                  cases[i].reason, e.reason ? e.reason : "(none)");
    }
    /* A regular field before :status: the pseudo-header is then malformed. */
    const hpack_field late[] = {F("x", "1"), F(":status", "200"), END};
    cr_expect(!h2_fault_ok(h2_http_parse_response(late, count(late), &h)));
}

Test(priority, parse_cases)
{
    static const struct {
        const char *v;
        uint8_t u0;
        bool i0;
        uint8_t u;
        bool i;
    } cases[] = {
        {"", 3, false, 3, false},
        {"u=5, i", 3, false, 5, true},
        {"u=5,i", 3, false, 5, true},
        {"i", 3, false, 3, true},
        {"i=?1", 3, false, 3, true},
        {"i=?0", 3, true, 3, false},
        {"u=7", 3, false, 7, false},
        {"u=0", 3, false, 0, false},
        {"u=8", 3, false, 3, false}, /* out of range: ignored */
        {"u=-1", 3, false, 3, false},
        {"u=1.5", 3, false, 3, false},       /* decimal, not integer */
        {"u=\"1\"", 3, false, 3, false},     /* string */
        {"u=a", 3, false, 3, false},         /* token */
        {"u=?1", 3, false, 3, false},        /* boolean */
        {"u=:AQ==:", 3, false, 3, false},    /* byte sequence */
        {"i=1", 3, false, 3, false},         /* integer, not boolean */
        {"i=?2", 3, false, 3, false},        /* not a boolean */
        {"u=2, u=4", 3, false, 4, false},    /* last wins */
        {"x=5, u=2, y", 3, false, 2, false}, /* unknown keys ignored */
        {"*x=1, u=2", 3, false, 2, false},
        {"u=2;foo=bar", 3, false, 2, false}, /* parameters ignored */
        {"i;x=1;y", 3, false, 3, true},
        {"  u=1", 3, false, 1, false},   /* leading SP */
        {"u=1 ,\ti", 3, false, 1, true}, /* OWS around commas */
        {"u = 1", 3, false, 3, false},   /* no space around '=' */
        {"U=1", 3, false, 3, false},     /* keys are lowercase */
        {"uu=1, ii", 3, false, 3, false},
        {"u=1a", 3, false, 3, false},
        {"u=1, %%%, i", 3, false, 1, true}, /* lenient: bad member skipped */
        {"x=\"a,u=0\", u=6", 3, false, 6, false},
        {"x=\"a\\\",u=0\", u=6", 3, false, 6, false},
        {"x=\"open, u=0", 3, false, 3, false},
        {"u=1,", 3, false, 1, false},
        {"u=(1 2);a, i", 3, false, 3, true}, /* inner list */
        {"u=( 1  \"a\" ), i", 3, false, 3, true},
        {"u=(1, i", 3, false, 3, true},
        {"u=0000000000000001", 3, false, 3, false}, /* 16 digits */
        {"u=000000000000001", 3, false, 1, false},  /* 15 digits */
        {"u=1, i, u=9", 3, false, 1, true},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t u = cases[k].u0;
        bool inc = cases[k].i0;
        h2_http_parse_priority((const uint8_t *)cases[k].v, (uint32_t)strlen(cases[k].v), &u, &inc);
        cr_expect_eq(u, cases[k].u, "'%s': u=%u", cases[k].v, u);
        cr_expect_eq(inc, cases[k].i, "'%s': i=%d", cases[k].v, inc);
    }
}

Test(priority, null_empty)
{
    uint8_t u = 4;
    bool inc = true;
    h2_http_parse_priority(NULL, 0, &u, &inc);
    cr_expect_eq(u, 4);
    cr_expect(inc);
}
