/* load_h1.c - the HTTP/1.1 response parser of spindle-load (load_h1.h). */
#include "load_h1.h"

#include <stdlib.h>
#include <string.h>

enum {
    ST_HEAD,       /* status line and fields */
    ST_BODY_LEN,   /* content-length bytes */
    ST_BODY_CLOSE, /* body until the connection closes */
    ST_CHUNK_SIZE, /* a chunk-size line */
    ST_CHUNK_DATA,
    ST_CHUNK_CRLF, /* the CRLF after a chunk's data */
    ST_TRAILERS,   /* the trailer section after the last chunk */
};

static const h1_limits *limits(void)
{
    return h1_limits_default();
}

void lh1_init(lh1_parser *p, bool head_method)
{
    memset(p, 0, sizeof *p);
    p->head_method = head_method;
    p->state = ST_HEAD;
    h1_scan_init(&p->scan, false);
}

void lh1_free(lh1_parser *p)
{
    free(p->head);
    p->head = NULL;
    p->head_cap = 0;
}

bool lh1_idle(const lh1_parser *p)
{
    return p->state == ST_HEAD && p->head_len == 0;
}

static lh1_ev fail(lh1_parser *p, const char *why, lh1_ev *ev)
{
    p->error = why;
    *ev = LH1_ERROR;
    return LH1_ERROR;
}

static bool tchar(uint8_t b)
{
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') ||
           (b && strchr("!#$%&'*+-.^_`|~", b));
}

/* "HTTP/1.x SP ddd (SP reason)?": the status, or 0. *minor gets x. */
static uint16_t status_line(const uint8_t *l, uint32_t n, uint8_t *minor)
{
    if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') || l[8] != ' ')
        return 0;
    *minor = (uint8_t)(l[7] - '0');
    for (int i = 9; i < 12; i++)
        if (l[i] < '0' || l[i] > '9')
            return 0;
    uint16_t st = (uint16_t)((l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0'));
    if (st < 100 || st > 599 || (n > 12 && l[12] != ' '))
        return 0;
    return st;
}

typedef struct framing {
    bool has_len, chunked, close, keep_alive;
    uint64_t len;
} framing;

/* One field line: the framing fields are checked and noted. */
static const char *field(uint8_t *l, uint32_t n, framing *f)
{
    uint32_t i = 0;
    while (i < n && tchar(l[i]))
        i++;
    if (i == 0 || i == n || l[i] != ':')
        return "malformed field line";
    uint32_t name_len = i++;
    while (i < n && (l[i] == ' ' || l[i] == '\t'))
        i++;
    uint32_t end = n;
    while (end > i && (l[end - 1] == ' ' || l[end - 1] == '\t'))
        end--;
    const uint8_t *v = l + i;
    uint32_t vlen = end - i;
    if (h1_ieq(l, name_len, "content-length")) {
        if (vlen == 0 || vlen > 18)
            return "bad content-length";
        uint64_t x = 0;
        for (uint32_t k = 0; k < vlen; k++) {
            if (v[k] < '0' || v[k] > '9')
                return "bad content-length";
            x = x * 10 + (uint64_t)(v[k] - '0');
        }
        if (f->has_len && f->len != x)
            return "conflicting content-length fields";
        f->has_len = true;
        f->len = x;
    } else if (h1_ieq(l, name_len, "transfer-encoding")) {
        if (f->chunked || !h1_ieq(v, vlen, "chunked"))
            return "unsupported transfer-encoding";
        f->chunked = true;
    } else if (h1_ieq(l, name_len, "connection")) {
        f->close |= h1_list_has(v, vlen, "close");
        f->keep_alive |= h1_list_has(v, vlen, "keep-alive");
    }
    return NULL;
}

/* The head is complete in p->head: decide what follows. */
static lh1_ev head_done(lh1_parser *p, lh1_ev *ev)
{
    uint8_t *h = p->head;
    uint32_t len = p->head_len, pos = 0;
    uint8_t *cr = memchr(h, '\r', len);
    uint8_t minor = 1;
    uint16_t st = status_line(h, (uint32_t)(cr - h), &minor);
    if (!st)
        return fail(p, "malformed status line", ev);
    pos = (uint32_t)(cr - h) + 2;
    framing f = {0};
    while (pos + 2 < len) {
        uint8_t *e = memchr(h + pos, '\r', len - pos);
        const char *why = field(h + pos, (uint32_t)(e - (h + pos)), &f);
        if (why)
            return fail(p, why, ev);
        pos = (uint32_t)(e - h) + 2;
    }
    p->head_len = 0;
    h1_scan_init(&p->scan, false);
    if (f.chunked && (f.has_len || minor == 0))
        return fail(p, "transfer-encoding with content-length or in HTTP/1.0", ev);
    if (st == 101)
        return fail(p, "101 Switching Protocols was not asked for", ev);
    if (st < 200)
        return *ev = LH1_MORE; /* interim: the final response follows */
    p->status = st;
    p->body = 0;
    p->keep_alive = minor == 1 ? !f.close : f.keep_alive && !f.close;
    if (p->head_method || st == 204 || st == 304 || (f.has_len && f.len == 0))
        return *ev = LH1_RESPONSE;
    if (f.chunked) {
        p->state = ST_CHUNK_SIZE;
        h1_chunk_scan_init(&p->chunk);
    } else if (f.has_len) {
        p->state = ST_BODY_LEN;
        p->left = f.len;
    } else {
        p->state = ST_BODY_CLOSE;
        p->keep_alive = false;
    }
    return *ev = LH1_MORE;
}

static size_t parse_head(lh1_parser *p, const uint8_t *in, size_t n, lh1_ev *ev)
{
    if (p->head_len == 0 && n > 0 && in[0] != 'H') {
        fail(p, "not a status line", ev);
        return 0;
    }
    h1_scan_state st;
    h1_err err;
    size_t used = h1_scan_feed(&p->scan, limits(), in, n, &st, &err);
    if (st == H1_SCAN_ERROR) {
        fail(p, err.reason ? err.reason : "malformed head", ev);
        return used;
    }
    if (p->head_cap - p->head_len < used) {
        uint32_t cap = p->head_cap ? p->head_cap : 1024u;
        while (cap - p->head_len < used)
            cap *= 2;
        uint8_t *q = realloc(p->head, cap);
        if (!q) {
            fail(p, "out of memory", ev);
            return used;
        }
        p->head = q;
        p->head_cap = cap;
    }
    memcpy(p->head + p->head_len, in, used);
    p->head_len += (uint32_t)used;
    *ev = LH1_MORE;
    if (st == H1_SCAN_DONE)
        head_done(p, ev);
    return used;
}

/* Bytes of a body or chunk: up to p->left. */
static size_t take_data(lh1_parser *p, size_t n)
{
    size_t k = n < p->left ? n : (size_t)p->left;
    p->left -= k;
    p->body += k;
    return k;
}

static size_t parse_chunked(lh1_parser *p, const uint8_t *in, size_t n, lh1_ev *ev)
{
    h1_scan_state st;
    h1_err err;
    size_t used = 0;
    *ev = LH1_MORE;
    switch (p->state) {
    case ST_CHUNK_SIZE:
        used = h1_chunk_scan_feed(&p->chunk, limits(), in, n, &st, &err);
        if (st == H1_SCAN_ERROR)
            fail(p, err.reason ? err.reason : "malformed chunk size", ev);
        else if (st == H1_SCAN_DONE && p->chunk.size == 0) {
            p->state = ST_TRAILERS;
            h1_scan_init(&p->scan, true);
        } else if (st == H1_SCAN_DONE) {
            p->state = ST_CHUNK_DATA;
            p->left = p->chunk.size;
        }
        return used;
    case ST_CHUNK_DATA:
        used = take_data(p, n);
        if (p->left == 0) {
            p->state = ST_CHUNK_CRLF;
            p->crlf = 0;
        }
        return used;
    case ST_CHUNK_CRLF:
        if (in[0] != (p->crlf ? '\n' : '\r')) {
            fail(p, "chunk data not followed by CRLF", ev);
            return 0;
        }
        if (++p->crlf == 2) {
            p->state = ST_CHUNK_SIZE;
            h1_chunk_scan_init(&p->chunk);
        }
        return 1;
    default: /* ST_TRAILERS */
        used = h1_scan_feed(&p->scan, limits(), in, n, &st, &err);
        if (st == H1_SCAN_ERROR)
            fail(p, err.reason ? err.reason : "malformed trailers", ev);
        else if (st == H1_SCAN_DONE)
            *ev = LH1_RESPONSE;
        return used;
    }
}

size_t lh1_parse(lh1_parser *p, const uint8_t *in, size_t n, lh1_ev *ev)
{
    size_t pos = 0;
    *ev = LH1_MORE;
    while (pos < n) {
        size_t used;
        switch (p->state) {
        case ST_HEAD: used = parse_head(p, in + pos, n - pos, ev); break;
        case ST_BODY_LEN:
            used = take_data(p, n - pos);
            if (p->left == 0)
                *ev = LH1_RESPONSE;
            break;
        case ST_BODY_CLOSE:
            p->body += n - pos;
            used = n - pos;
            break;
        default: used = parse_chunked(p, in + pos, n - pos, ev); break;
        }
        pos += used;
        if (*ev == LH1_ERROR)
            return pos;
        if (*ev == LH1_RESPONSE) {
            p->state = ST_HEAD;
            h1_scan_init(&p->scan, false);
            return pos;
        }
    }
    return pos;
}

lh1_ev lh1_eof(lh1_parser *p)
{
    lh1_ev ev = LH1_MORE;
    if (p->state == ST_BODY_CLOSE) {
        p->state = ST_HEAD;
        return LH1_RESPONSE;
    }
    if (!lh1_idle(p))
        fail(p,
             p->state == ST_HEAD ? "connection closed in a response head"
                                 : "connection closed before the body's end",
             &ev);
    return ev;
}
