/* h1_parse.c - RFC 9112 request heads, trailer sections and chunk-size
 * lines: see h1_parse.h for the rules enforced. */
#include "h1_parse.h"

#include <string.h>

/* RFC 9110 §5.6.2 tchar. */
static const uint8_t tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

bool h1_ieq(const uint8_t *v, uint32_t len, const char *lit)
{
    size_t n = strlen(lit);
    if (len != n)
        return false;
    for (uint32_t i = 0; i < len; i++)
        if (lower(v[i]) != (uint8_t)lit[i])
            return false;
    return true;
}

static bool list_has_n(const uint8_t *v, uint32_t len, const uint8_t *tok, uint32_t toklen)
{
    uint32_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        uint32_t s = i;
        while (i < len && v[i] != ',')
            i++;
        uint32_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == toklen) {
            uint32_t k = 0;
            while (k < toklen && lower(v[s + k]) == lower(tok[k]))
                k++;
            if (k == toklen)
                return true;
        }
    }
    return false;
}

bool h1_list_has(const uint8_t *v, uint32_t len, const char *tok)
{
    return list_has_n(v, len, (const uint8_t *)tok, (uint32_t)strlen(tok));
}

/* --- Scanner ------------------------------------------------------------------ */

static h1_scan_state scan_fail(h1_err *err, uint16_t status, int limit, const char *why)
{
    *err = h1_err_make(status, limit, why);
    return H1_SCAN_ERROR;
}

/* A line ended (its CRLF consumed). */
static h1_scan_state scan_eol(h1_scan *s, const h1_limits *l, h1_err *err)
{
    if (s->line_len == 0) {
        if (s->trailers || s->lines > 0)
            return H1_SCAN_DONE;
        if (++s->leading > H1_MAX_LEADING_EMPTY)
            return scan_fail(err, 400, -1, "empty lines before the request line");
        return H1_SCAN_MORE;
    }
    s->lines++;
    uint32_t fields = s->trailers ? s->lines : s->lines - 1;
    if (fields > l->max_fields)
        return scan_fail(err, 431, H1_LIMIT_FIELDS, "too many field lines");
    s->line_len = 0;
    return H1_SCAN_MORE;
}

static h1_scan_state scan_byte(h1_scan *s, const h1_limits *l, uint8_t b, h1_err *err)
{
    if (++s->len > l->max_head)
        return scan_fail(err, 431, H1_LIMIT_HEAD, "head too large");
    if (s->cr) {
        s->cr = 0;
        if (b != '\n')
            return scan_fail(err, 400, -1, "bare CR");
        return scan_eol(s, l, err);
    }
    if (b == '\r') {
        s->cr = 1;
        return H1_SCAN_MORE;
    }
    if (b == '\n')
        return scan_fail(err, 400, -1, "bare LF");
    if ((b < 0x20 && b != '\t') || b == 0x7f)
        return scan_fail(err, 400, -1, "control byte");
    bool reqline = !s->trailers && s->lines == 0;
    if (s->line_len == 0 && (b == ' ' || b == '\t'))
        return scan_fail(err, 400, -1, reqline ? "whitespace before the request line" : "obs-fold");
    s->line_len++;
    if (reqline && s->line_len > l->max_request_line)
        return scan_fail(err, 414, H1_LIMIT_REQUEST_LINE, "request line too long");
    if (!reqline && s->line_len > l->max_field_line)
        return scan_fail(err, 431, H1_LIMIT_FIELD_LINE, "field line too long");
    return H1_SCAN_MORE;
}

/* Octets that may continue a line without any check but the limits: VCHAR,
 * SP, HTAB and obs-text (not CR, LF, other controls or DEL). */
static inline bool plain(uint8_t b)
{
    return (uint8_t)(b - 0x20) < 0x5f || b >= 0x80 || b == '\t';
}

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define H1_VECTOR_SCAN 1
/* 16 octets as one value: GCC/clang vector extensions (SSE2 on x86-64, NEON
 * on arm64), no intrinsics header (proto/ includes libc headers only). */
typedef uint8_t h1_v16 __attribute__((vector_size(16)));
typedef signed char h1_m16 __attribute__((vector_size(16)));
#endif

/* The first index in [i, end) whose octet is not plain (end if none).  With
 * vector support 16 octets per step: an octet below 0x20 or DEL stops the
 * vector loop at its index, and a tab there (plain) is stepped over. */
static inline size_t plain_run(const uint8_t *p, size_t i, size_t end)
{
#ifdef H1_VECTOR_SCAN
    while (end - i >= 16) {
        h1_v16 v;
        memcpy(&v, p + i, 16);
        h1_m16 stop = (v < 0x20) | (v == 0x7f); /* lanes of all ones */
        uint64_t w[2];
        memcpy(w, &stop, 16);
        if (!(w[0] | w[1])) {
            i += 16;
            continue;
        }
        i += w[0] ? (size_t)__builtin_ctzll(w[0]) / 8 : 8 + (size_t)__builtin_ctzll(w[1]) / 8;
        if (p[i] != '\t')
            return i;
        i++;
    }
#endif
    while (i < end && plain(p[i]))
        i++;
    return i;
}

size_t h1_scan_feed(h1_scan *s, const h1_limits *l, const uint8_t *p, size_t n, h1_scan_state *st,
                    h1_err *err)
{
    h1_scan t = *s; /* a local copy stays in registers (no store-forwarding stalls) */
    size_t i = 0;
    *st = H1_SCAN_MORE;
    while (i < n) {
        if (t.line_len > 0 && !t.cr) {
            /* Fast path inside a line: count plain octets up to the limits;
             * the octet that stops the run takes the checked path below. */
            bool reqline = !t.trailers && t.lines == 0;
            uint32_t max_line = reqline ? l->max_request_line : l->max_field_line;
            size_t room = max_line > t.line_len ? max_line - t.line_len : 0;
            size_t head_room = l->max_head > t.len ? l->max_head - t.len : 0;
            if (head_room < room)
                room = head_room;
            size_t end = n - i < room ? n : i + room;
            size_t j = plain_run(p, i, end);
            t.len += (uint32_t)(j - i);
            t.line_len += (uint32_t)(j - i);
            i = j;
            if (i == n)
                break;
        }
        if (p[i] == '\r' && !t.cr && n - i >= 2 && p[i + 1] == '\n' && t.len <= l->max_head &&
            l->max_head - t.len >= 2) {
            /* CRLF in one step: what scan_byte does for the two octets. */
            t.len += 2;
            h1_scan_state r = scan_eol(&t, l, err);
            if (r != H1_SCAN_MORE) {
                *st = r;
                i += r == H1_SCAN_DONE ? 2 : 1; /* an error stops at the LF */
                break;
            }
            i += 2;
            continue;
        }
        h1_scan_state r = scan_byte(&t, l, p[i], err);
        if (r != H1_SCAN_MORE) {
            *st = r;
            if (r == H1_SCAN_DONE)
                i++;
            break;
        }
        i++;
    }
    *s = t;
    return i;
}

/* --- Lines of a complete section ----------------------------------------------- */

/* The line at buf[*pos]: its length without CRLF; *pos moves past the CRLF.
 * The scanner guaranteed CRLF endings. */
static uint32_t next_line(const uint8_t *buf, uint32_t len, uint32_t *pos)
{
    uint32_t s = *pos;
    const uint8_t *cr = s < len ? memchr(buf + s, '\r', len - s) : NULL;
    uint32_t i = cr ? (uint32_t)(cr - buf) : len;
    *pos = i + 2 <= len ? i + 2 : len;
    return i - s;
}

/* name ":" OWS value OWS.  Lowercases the name in place. */
static h1_err parse_field_line(uint8_t *p, uint32_t n, hpack_field *f)
{
    uint32_t i = 0;
    while (i < n && tchar[p[i]]) {
        p[i] = lower(p[i]);
        i++;
    }
    if (i == n)
        return h1_err_make(400, -1, "field line without a colon");
    if (p[i] != ':')
        return h1_err_make(400, -1,
                           (p[i] == ' ' || p[i] == '\t') ? "whitespace before the colon"
                                                         : "invalid field name");
    if (i == 0)
        return h1_err_make(400, -1, "empty field name");
    uint32_t vs = i + 1, ve = n;
    while (vs < ve && (p[vs] == ' ' || p[vs] == '\t'))
        vs++;
    while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
        ve--;
    *f = (hpack_field){p, p + vs, i, ve - vs, 0, 0};
    return h1_err_none();
}

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT */
static h1_err parse_version(const uint8_t *v, uint32_t n, uint8_t *minor)
{
    if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || !is_digit(v[5]) || v[6] != '.' || !is_digit(v[7]))
        return h1_err_make(400, -1, "invalid HTTP version");
    if (v[5] != '1')
        return h1_err_make(505, -1, "HTTP version not supported");
    *minor = v[7] == '0' ? 0 : 1;
    return h1_err_none();
}

/* RFC 3986 reg-name / IP-literal / port octets: unreserved, sub-delims,
 * ':', '[', ']', '%' (one table lookup per octet). */
static const uint8_t host_octet[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1, ['!'] = 1, ['$'] = 1, ['&'] = 1, ['\''] = 1,
    ['('] = 1, [')'] = 1, ['*'] = 1, ['+'] = 1, [','] = 1, [';'] = 1, ['='] = 1, [':'] = 1,
    ['['] = 1, [']'] = 1, ['%'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
    ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1,
    ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,
    ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1,
    ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1,
    ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1,
    ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1,
    ['z'] = 1,
};

static bool valid_host(const uint8_t *p, uint32_t n)
{
    uint8_t ok = 1;
    for (uint32_t i = 0; i < n; i++)
        ok &= host_octet[p[i]];
    return ok;
}

/* absolute-form: "http" ["s"] "://" authority [path-abempty ["?" query]] */
static h1_err parse_absolute(const uint8_t *t, uint32_t n, h1_request *out)
{
    uint32_t sl = 0;
    if (n > 7 && h1_ieq(t, 7, "http://"))
        sl = 4;
    else if (n > 8 && h1_ieq(t, 8, "https://"))
        sl = 5;
    else
        return h1_err_make(400, -1, "invalid request target");
    uint32_t a = sl + 3, e = a;
    while (e < n && t[e] != '/' && t[e] != '?')
        e++;
    if (e == a || e == n || t[e] != '/' || !valid_host(t + a, e - a))
        return h1_err_make(400, -1, "invalid absolute-form target");
    if (memchr(t + a, '@', e - a))
        return h1_err_make(400, -1, "userinfo in the request target");
    out->head.scheme = (h2_str){t, sl};
    out->head.authority = (h2_str){t + a, e - a};
    out->head.path = (h2_str){t + e, n - e};
    return h1_err_none();
}

/* method SP request-target SP HTTP-version */
static h1_err parse_request_line(const uint8_t *p, uint32_t n, h1_request *out)
{
    uint32_t i = 0;
    while (i < n && tchar[p[i]])
        i++;
    if (i == 0 || i == n || p[i] != ' ')
        return h1_err_make(400, -1, "invalid method");
    out->head.method = (h2_str){p, i};
    uint32_t ts = ++i;
    while (i < n && p[i] > 0x20 && p[i] < 0x7f)
        i++;
    if (i == ts || i == n || p[i] != ' ')
        return h1_err_make(400, -1, "invalid request target");
    uint32_t tl = i - ts;
    h1_err e = parse_version(p + i + 1, n - i - 1, &out->minor);
    if (e.status)
        return e;
    const uint8_t *t = p + ts;
    bool connect = out->head.method.len == 7 && memcmp(out->head.method.p, "CONNECT", 7) == 0;
    if (connect) {
        /* authority-form (RFC 9112 §3.2.3): host ":" port */
        if (!valid_host(t, tl) || memchr(t, ':', tl) == NULL || memchr(t, '@', tl))
            return h1_err_make(400, -1, "invalid CONNECT target");
        out->head.authority = (h2_str){t, tl};
        return h1_err_none();
    }
    if (t[0] == '/') {
        out->head.path = (h2_str){t, tl};
        return h1_err_none();
    }
    if (tl == 1 && t[0] == '*') {
        if (out->head.method.len != 7 || memcmp(out->head.method.p, "OPTIONS", 7) != 0)
            return h1_err_make(400, -1, "asterisk-form target on a method other than OPTIONS");
        out->head.path = (h2_str){t, 1};
        return h1_err_none();
    }
    return parse_absolute(t, tl, out);
}

static bool name_is(const hpack_field *f, const char *lit)
{
    return h2_http_field_is(f, lit, (uint32_t)strlen(lit));
}

/* The field names the request rules look at, told apart by length first
 * (one switch and at most two compares per field, not a dozen). */
enum {
    K_OTHER,
    K_HOST,
    K_CL,
    K_TRANSFER_ENCODING,
    K_CONNECTION,
    K_UPGRADE,
    K_H2_SETTINGS,
    K_WS_KEY,
    K_WS_VERSION,
    K_TE,
    K_EXPECT,
    K_PRIORITY,
    K_KEEP_ALIVE,
    K_PROXY_CONNECTION,
    K_MASK = 0x7f, /* in hpack_field.flags while the rules run; 0x80: drop */
};

static uint8_t kind_is(const hpack_field *f, const char *lit, uint8_t k)
{
    return memcmp(f->name, lit, f->name_len) == 0 ? k : K_OTHER;
}

static uint8_t field_kind(const hpack_field *f)
{
    switch (f->name_len) {
    case 2: return kind_is(f, "te", K_TE);
    case 4: return kind_is(f, "host", K_HOST);
    case 6: return kind_is(f, "expect", K_EXPECT);
    case 7: return kind_is(f, "upgrade", K_UPGRADE);
    case 8: return kind_is(f, "priority", K_PRIORITY);
    case 10:
        return f->name[0] == 'c' ? kind_is(f, "connection", K_CONNECTION)
                                 : kind_is(f, "keep-alive", K_KEEP_ALIVE);
    case 14:
        return f->name[0] == 'c' ? kind_is(f, "content-length", K_CL)
                                 : kind_is(f, "http2-settings", K_H2_SETTINGS);
    case 16: return kind_is(f, "proxy-connection", K_PROXY_CONNECTION);
    case 17:
        return f->name[0] == 't' ? kind_is(f, "transfer-encoding", K_TRANSFER_ENCODING)
                                 : kind_is(f, "sec-websocket-key", K_WS_KEY);
    case 21: return kind_is(f, "sec-websocket-version", K_WS_VERSION);
    default: return K_OTHER;
    }
}

/* Fields a handler never sees (RFC 9110 §7.6.1 and the upgrade machinery). */
static bool kind_hop_by_hop(uint8_t k)
{
    return k == K_CONNECTION || k == K_KEEP_ALIVE || k == K_PROXY_CONNECTION ||
           k == K_TRANSFER_ENCODING || k == K_UPGRADE || k == K_TE || k == K_H2_SETTINGS;
}

static bool hop_by_hop(const hpack_field *f)
{
    return kind_hop_by_hop(field_kind(f));
}

/* What the field walk collects before the rules are applied. */
typedef struct req_facts {
    const hpack_field *host, *cl, *te, *conn, *upgrade, *h2s, *ws_key, *ws_version;
    uint32_t nhost, ncl, nte, nh2s, nws_key;
} req_facts;

static void collect(const hpack_field *f, uint8_t kind, req_facts *r, h1_request *out)
{
    switch (kind) {
    case K_HOST: r->host = f, r->nhost++; break;
    case K_CL: r->cl = f, r->ncl++; break;
    case K_TRANSFER_ENCODING: r->te = f, r->nte++; break;
    case K_CONNECTION:
        r->conn = f; /* several: the last one is judged; a close anywhere wins below */
        break;
    case K_UPGRADE: r->upgrade = f; break;
    case K_H2_SETTINGS: r->h2s = f, r->nh2s++; break;
    case K_WS_KEY: r->ws_key = f, r->nws_key++; break;
    case K_WS_VERSION: r->ws_version = f; break;
    case K_TE:
        out->te_trailers = out->te_trailers || h1_list_has(f->value, f->value_len, "trailers");
        break;
    case K_EXPECT:
        out->head.expect_continue = h1_ieq(f->value, f->value_len, "100-continue");
        break;
    case K_PRIORITY:
        h2_http_parse_priority(f->value, f->value_len, &out->head.urgency, &out->head.incremental);
        break;
    default: break;
    }
}

static h1_err content_length(const hpack_field *cl, const h1_limits *l, int64_t *out)
{
    if (cl->value_len == 0)
        return h1_err_make(400, -1, "empty Content-Length");
    uint64_t v = 0;
    bool big = false;
    for (uint32_t i = 0; i < cl->value_len; i++) {
        if (!is_digit(cl->value[i]))
            return h1_err_make(400, -1, "invalid Content-Length");
        if (v > (uint64_t)H2_HTTP_MAX_CONTENT_LENGTH)
            big = true;
        else
            v = v * 10 + (uint64_t)(cl->value[i] - '0');
    }
    if (big || v > (uint64_t)H2_HTTP_MAX_CONTENT_LENGTH || (l->max_body && v > l->max_body))
        return h1_err_make(413, H1_LIMIT_BODY, "Content-Length too large");
    *out = (int64_t)v;
    return h1_err_none();
}

/* Framing (RFC 9112 §6.1-6.3) and Host (RFC 9112 §3.2). */
static h1_err framing(const req_facts *r, const h1_limits *l, h1_request *out)
{
    if (r->nte && r->ncl)
        return h1_err_make(400, -1, "Transfer-Encoding with Content-Length");
    if (r->nte) {
        if (out->minor == 0)
            return h1_err_make(400, -1, "Transfer-Encoding in HTTP/1.0");
        if (r->nte > 1 || !h1_ieq(r->te->value, r->te->value_len, "chunked"))
            return h1_err_make(400, -1, "Transfer-Encoding other than chunked");
        out->chunked = out->has_body = true;
    }
    if (r->ncl > 1)
        return h1_err_make(400, -1, "duplicate Content-Length");
    if (r->ncl) {
        h1_err e = content_length(r->cl, l, &out->head.content_length);
        if (e.status)
            return e;
        out->has_body = out->head.content_length > 0;
    }
    if (r->nhost > 1)
        return h1_err_make(400, -1, "duplicate Host");
    if (out->minor == 1 && r->nhost == 0)
        return h1_err_make(400, -1, "missing Host");
    if (r->nhost && !valid_host(r->host->value, r->host->value_len))
        return h1_err_make(400, -1, "invalid Host");
    if (r->nhost && out->head.authority.p == NULL && r->host->value_len)
        out->head.authority = (h2_str){r->host->value, r->host->value_len};
    return h1_err_none();
}

static void upgrade(const req_facts *r, bool tls, h1_request *out)
{
    if (!r->upgrade || !r->conn || out->minor == 0 || out->has_body ||
        !h1_list_has(r->conn->value, r->conn->value_len, "upgrade"))
        return;
    const hpack_field *u = r->upgrade;
    bool get = out->head.method.len == 3 && memcmp(out->head.method.p, "GET", 3) == 0;
    if (h1_list_has(u->value, u->value_len, "websocket") && get && r->nws_key == 1 &&
        r->ws_key->value_len > 0 && r->ws_version &&
        h1_ieq(r->ws_version->value, r->ws_version->value_len, "13")) {
        out->upgrade = H1_UPGRADE_WEBSOCKET;
        out->ws_key = (h2_str){r->ws_key->value, r->ws_key->value_len};
        out->head.protocol = (h2_str){(const uint8_t *)"websocket", 9};
        out->head.extended_connect = true;
    } else if (h1_list_has(u->value, u->value_len, "h2c") && !tls && r->nh2s == 1 &&
               h1_list_has(r->conn->value, r->conn->value_len, "http2-settings")) {
        out->upgrade = H1_UPGRADE_H2C;
        out->http2_settings = (h2_str){r->h2s->value, r->h2s->value_len};
    }
}

/* Is f named by a Connection field's options (RFC 9110 §7.6.1)? */
static bool named_by_connection(const hpack_field *f, const hpack_field *all, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if ((all[i].flags & K_MASK) == K_CONNECTION &&
            list_has_n(all[i].value, all[i].value_len, f->name, f->name_len))
            return true;
    return false;
}

/* Does a Connection value name anything but the options the codec knows
 * (then those names are fields to drop)? */
static bool names_fields(const uint8_t *v, uint32_t len)
{
    static const char *const known[] = {"close", "keep-alive", "upgrade", "http2-settings", "te"};
    uint32_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        uint32_t s = i;
        while (i < len && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i == s)
            continue;
        bool k = false;
        for (size_t j = 0; j < sizeof known / sizeof known[0] && !k; j++)
            k = h1_ieq(v + s, i - s, known[j]);
        if (!k)
            return true;
    }
    return false;
}

/* Drop hop-by-hop fields (and those a Connection field names).  flags
 * holds each field's kind (semantics()). */
static uint32_t compact(hpack_field *f, uint32_t n, bool has_conn)
{
    /* Mark first (0x80 = drop): the Connection fields must stay readable. */
    for (uint32_t i = 0; i < n; i++)
        if (kind_hop_by_hop(f[i].flags & K_MASK) || (has_conn && named_by_connection(&f[i], f, n)))
            f[i].flags |= 0x80;
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (f[i].flags & 0x80)
            continue;
        f[k] = f[i];
        f[k++].flags = 0;
    }
    return k;
}

static h1_err semantics(hpack_field *fields, uint32_t n, const h1_limits *l, bool tls,
                        h1_request *out)
{
    req_facts r = {0};
    bool close = false, keep = false;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t kind = field_kind(&fields[i]);
        fields[i].flags = kind;
        collect(&fields[i], kind, &r, out);
        if (kind == K_CONNECTION) {
            close = close || h1_list_has(fields[i].value, fields[i].value_len, "close");
            keep = keep || h1_list_has(fields[i].value, fields[i].value_len, "keep-alive");
        }
    }
    h1_err e = framing(&r, l, out);
    if (e.status)
        return e;
    if (out->minor == 0)
        out->head.expect_continue = false; /* RFC 9110 §10.1.1 */
    out->keep_alive = out->minor == 1 ? !close : (keep && !close);
    upgrade(&r, tls, out);
    bool named = false;
    for (uint32_t i = 0; i < n && r.conn; i++)
        if (fields[i].flags == K_CONNECTION)
            named = named || names_fields(fields[i].value, fields[i].value_len);
    out->head.nfields = compact(fields, n, named);
    out->head.fields = out->head.nfields ? fields : NULL;
    return h1_err_none();
}

h1_err h1_parse_request(uint8_t *buf, uint32_t len, const h1_limits *l, bool tls,
                        hpack_field *fields, h1_request *out)
{
    memset(out, 0, sizeof *out);
    out->head.content_length = -1;
    out->head.urgency = H2_URGENCY_DEFAULT;
    out->head.scheme =
        tls ? (h2_str){(const uint8_t *)"https", 5} : (h2_str){(const uint8_t *)"http", 4};
    uint32_t pos = 0, n = 0, ll;
    while ((ll = next_line(buf, len, &pos)) == 0 && pos < len)
        ; /* leading empty lines */
    h1_err e = parse_request_line(buf + pos - ll - 2, ll, out);
    if (e.status)
        return e;
    out->head_method = out->head.method.len == 4 && memcmp(out->head.method.p, "HEAD", 4) == 0;
    while (pos < len && (ll = next_line(buf, len, &pos)) > 0) {
        if (n >= l->max_fields)
            return h1_err_make(431, H1_LIMIT_FIELDS, "too many field lines");
        e = parse_field_line(buf + pos - ll - 2, ll, &fields[n++]);
        if (e.status)
            return e;
    }
    return semantics(fields, n, l, tls, out);
}

/* RFC 9110 §6.5.1: fields a trailer section must not carry. */
static bool not_a_trailer(const hpack_field *f)
{
    return hop_by_hop(f) || name_is(f, "content-length") || name_is(f, "host") ||
           name_is(f, "content-type") || name_is(f, "content-encoding") ||
           name_is(f, "content-range") || name_is(f, "trailer") || name_is(f, "authorization") ||
           name_is(f, "set-cookie") || name_is(f, "cookie") || name_is(f, "expect") ||
           name_is(f, "range") || name_is(f, "max-forwards") || name_is(f, "cache-control");
}

h1_err h1_parse_trailers(uint8_t *buf, uint32_t len, const h1_limits *l, hpack_field *fields,
                         uint32_t *n)
{
    uint32_t pos = 0, k = 0, ll;
    while (pos < len && (ll = next_line(buf, len, &pos)) > 0) {
        if (k >= l->max_fields)
            return h1_err_make(431, H1_LIMIT_FIELDS, "too many trailer fields");
        h1_err e = parse_field_line(buf + pos - ll - 2, ll, &fields[k]);
        if (e.status)
            return e;
        if (!not_a_trailer(&fields[k]))
            k++;
    }
    *n = k;
    return h1_err_none();
}

/* --- Chunk-size lines ---------------------------------------------------------- */

enum { CP_SIZE, CP_BWS, CP_EXT, CP_CR };

static int hexval(uint8_t c)
{
    if (is_digit(c))
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), ext-val =
 * token / quoted-string.  Checked by octet class: tokens, ';', '=', BWS,
 * and quoted strings of qdtext / quoted-pair. */
static h1_scan_state chunk_ext_byte(h1_chunk_scan *s, uint8_t b, h1_err *err)
{
    if (s->quoted) {
        if (s->quoted == 2) { /* after a backslash */
            s->quoted = 1;
            if (b == '\t' || b == ' ' || (b > 0x20 && b != 0x7f))
                return H1_SCAN_MORE;
        } else if (b == '"') {
            s->quoted = 0;
            return H1_SCAN_MORE;
        } else if (b == '\\') {
            s->quoted = 2;
            return H1_SCAN_MORE;
        } else if (b == '\t' || b == ' ' || (b > 0x20 && b != 0x7f)) {
            return H1_SCAN_MORE;
        }
        *err = h1_err_make(400, -1, "invalid chunk extension");
        return H1_SCAN_ERROR;
    }
    if (b == '\r') {
        s->phase = CP_CR;
        return H1_SCAN_MORE;
    }
    if (b == '"') {
        s->quoted = 1;
        return H1_SCAN_MORE;
    }
    if (tchar[b] || b == ';' || b == '=' || b == ' ' || b == '\t')
        return H1_SCAN_MORE;
    *err = h1_err_make(400, -1, "invalid chunk extension");
    return H1_SCAN_ERROR;
}

static h1_scan_state chunk_byte(h1_chunk_scan *s, uint8_t b, h1_err *err)
{
    int h;
    switch (s->phase) {
    case CP_SIZE:
        if ((h = hexval(b)) >= 0) {
            if (++s->digits > 15) {
                *err = h1_err_make(400, -1, "chunk size too long");
                return H1_SCAN_ERROR;
            }
            s->size = s->size * 16 + (uint64_t)h;
            return H1_SCAN_MORE;
        }
        if (s->digits == 0) {
            *err = h1_err_make(400, -1, "invalid chunk size");
            return H1_SCAN_ERROR;
        }
        if (b == '\r') {
            s->phase = CP_CR;
            return H1_SCAN_MORE;
        }
        if (b == ';') {
            s->phase = CP_EXT;
            return H1_SCAN_MORE;
        }
        if (b == ' ' || b == '\t') {
            s->phase = CP_BWS;
            return H1_SCAN_MORE;
        }
        *err = h1_err_make(400, -1, "invalid chunk size");
        return H1_SCAN_ERROR;
    case CP_BWS: /* only BWS then ";" may follow the size */
        if (b == ' ' || b == '\t')
            return H1_SCAN_MORE;
        if (b == ';') {
            s->phase = CP_EXT;
            return H1_SCAN_MORE;
        }
        *err = h1_err_make(400, -1, "invalid chunk size");
        return H1_SCAN_ERROR;
    case CP_EXT: return chunk_ext_byte(s, b, err);
    default: /* CP_CR */
        if (b == '\n')
            return H1_SCAN_DONE;
        *err = h1_err_make(400, -1, "bare CR in a chunk line");
        return H1_SCAN_ERROR;
    }
}

size_t h1_chunk_scan_feed(h1_chunk_scan *s, const h1_limits *l, const uint8_t *p, size_t n,
                          h1_scan_state *st, h1_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (++s->len > l->max_chunk_line) {
            *err = h1_err_make(400, H1_LIMIT_CHUNK_LINE, "chunk-size line too long");
            *st = H1_SCAN_ERROR;
            return i;
        }
        h1_scan_state r = chunk_byte(s, p[i], err);
        if (r != H1_SCAN_MORE) {
            *st = r;
            return r == H1_SCAN_DONE ? i + 1 : i;
        }
    }
    *st = H1_SCAN_MORE;
    return n;
}
