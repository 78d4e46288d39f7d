/* h1_parse.h - HTTP/1.1 message syntax (RFC 9112) for the server codec.
 *
 * Pure functions, no allocation: an incremental scanner that finds the end
 * of a head or trailer section and enforces the size limits and the octet
 * rules as bytes arrive (so a hostile peer is refused before the section is
 * complete), the parsers of a complete section, and an incremental
 * chunk-size line scanner.  Every failure is an h1_err: the status to
 * answer with (400, 413, 414, 431, 505), the limit hit (if any) and a
 * static reason.  A failure always ends the connection.
 *
 * Strictness (request smuggling, RFC 9112 §6.1-6.3 and §11.2): lines end in
 * CRLF only (bare CR and bare LF are errors); NUL and other controls except
 * HTAB in field values are errors; no obs-fold; no whitespace between a
 * field name and its colon; Content-Length is one field of 1*DIGIT;
 * Transfer-Encoding is exactly one field "chunked" (case-insensitive), only
 * in HTTP/1.1, and never with Content-Length; chunk sizes are 1..15 hex
 * digits; chunk extensions are tokens / quoted strings, bounded.
 *
 * Thread: any.
 */
#ifndef SPINDLE_H1_PARSE_H
#define SPINDLE_H1_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h1_limits.h"
#include "h2_http.h"
#include "hpack.h"

/* A refusal: status 0 = no error. */
typedef struct h1_err {
    uint16_t status; /* 400, 408, 413, 414, 431, 505 */
    int16_t limit;   /* an h1_limit_id, or -1 */
    const char *reason;
} h1_err;

static inline h1_err h1_err_none(void)
{
    h1_err e = {0, -1, 0};
    return e;
}
static inline h1_err h1_err_make(uint16_t status, int limit, const char *reason)
{
    h1_err e = {status, (int16_t)limit, reason};
    return e;
}

/* --- Finding the end of a section ------------------------------------------ */

typedef enum h1_scan_state { H1_SCAN_MORE, H1_SCAN_DONE, H1_SCAN_ERROR } h1_scan_state;

typedef struct h1_scan {
    uint32_t len;      /* bytes of the section so far (leading empty lines included) */
    uint32_t line_len; /* bytes of the current line, CR excluded */
    uint32_t lines;    /* complete non-empty lines */
    uint8_t cr;        /* the previous byte was a CR */
    uint8_t trailers;  /* no request line: every line is a field line */
    uint8_t leading;   /* empty lines before the request line (RFC 9112 §2.2) */
} h1_scan;

#define H1_MAX_LEADING_EMPTY 4u

static inline void h1_scan_init(h1_scan *s, bool trailers)
{
    *s = (h1_scan){0};
    s->trailers = trailers ? 1 : 0;
}

/* Consume bytes of p[0..n) until the section ends (the empty line) or an
 * error.  Returns the number of bytes consumed (all of them on MORE; up to
 * and including the final LF on DONE; up to the offending byte on ERROR,
 * with *err set). */
size_t h1_scan_feed(h1_scan *s, const h1_limits *l, const uint8_t *p, size_t n, h1_scan_state *st,
                    h1_err *err);

/* --- A complete request head ------------------------------------------------ */

typedef enum h1_upgrade {
    H1_UPGRADE_NONE = 0,
    H1_UPGRADE_WEBSOCKET, /* RFC 6455 §4.2.1 handshake request, well-formed */
    H1_UPGRADE_H2C,       /* RFC 7540 §3.2: Upgrade: h2c + one HTTP2-Settings, no TLS */
} h1_upgrade;

/* A request head in the shape the HTTP/2 side gives handlers (h2_req_head:
 * method, scheme, authority, path, protocol, regular fields, content_length,
 * urgency/incremental from `priority`, expect_continue) plus what only
 * HTTP/1.1 has.  Field names are lowercased in place; hop-by-hop fields
 * (connection, keep-alive, proxy-connection, transfer-encoding, upgrade, te,
 * http2-settings, and any named by Connection) are left out of head.fields.
 * For a WebSocket handshake head.protocol is "websocket" and
 * head.extended_connect is true, as for an RFC 8441 request; head.method
 * stays "GET" (the runtime maps it if handlers expect CONNECT). */
typedef struct h1_request {
    h2_req_head head;
    uint8_t minor;         /* HTTP/1.minor: 0 or 1 (1.2+ is read as 1.1) */
    bool has_body;         /* chunked, or content_length > 0 */
    bool chunked;          /* Transfer-Encoding: chunked */
    bool keep_alive;       /* the connection may persist after this exchange */
    bool te_trailers;      /* TE: trailers (chunked trailers may be sent) */
    bool head_method;      /* HEAD: no body in the response */
    h1_upgrade upgrade;    /* H1_UPGRADE_NONE unless a valid upgrade request */
    h2_str http2_settings; /* H1_UPGRADE_H2C: the base64url SETTINGS payload */
    h2_str ws_key;         /* H1_UPGRADE_WEBSOCKET: Sec-WebSocket-Key */
} h1_request;

/* Parse the complete head in buf[0..len) (as h1_scan_feed delimited it,
 * final CRLF CRLF included).  Lowercases field names in place; fields[] (room
 * for l->max_fields) receives the field lines; out points into buf and
 * fields.  tls: the scheme is "https" and h2c upgrades are ignored.
 * Errors: 400 (syntax, smuggling vectors, Host rules), 413 (Content-Length
 * past l->max_body or H2_HTTP_MAX_CONTENT_LENGTH), 505 (HTTP major version
 * other than 1). */
h1_err h1_parse_request(uint8_t *buf, uint32_t len, const h1_limits *l, bool tls,
                        hpack_field *fields, h1_request *out);

/* Parse a complete trailer section (field lines and the final CRLF).
 * Lowercases names; *n fields land in fields[] (room for l->max_fields).
 * Fields that must not be trailers (RFC 9110 §6.5.1: framing, routing,
 * connection-specific: content-length, transfer-encoding, host, te,
 * connection, upgrade, ...) are dropped.  Errors: 400. */
h1_err h1_parse_trailers(uint8_t *buf, uint32_t len, const h1_limits *l, hpack_field *fields,
                         uint32_t *n);

/* --- Chunk-size lines ------------------------------------------------------ */

typedef struct h1_chunk_scan {
    uint64_t size;
    uint32_t len;   /* bytes of the line so far */
    uint8_t digits; /* hex digits read */
    uint8_t phase;  /* internal */
    uint8_t quoted; /* inside a quoted-string extension value */
} h1_chunk_scan;

static inline void h1_chunk_scan_init(h1_chunk_scan *s)
{
    *s = (h1_chunk_scan){0};
}

/* chunk = chunk-size [ chunk-ext ] CRLF (RFC 9112 §7.1).  Consumes bytes up
 * to and including the LF (DONE, s->size is the size) or all of them (MORE).
 * Errors (400): no digit, more than 15 digits, a byte that is neither hex
 * nor the start of an extension, malformed extension, bare CR or LF, a line
 * longer than l->max_chunk_line (H1_LIMIT_CHUNK_LINE). */
size_t h1_chunk_scan_feed(h1_chunk_scan *s, const h1_limits *l, const uint8_t *p, size_t n,
                          h1_scan_state *st, h1_err *err);

/* --- Helpers shared with h1_conn --------------------------------------------- */

/* Does the comma-separated list v (RFC 9110 §5.6.1) contain token tok
 * (ASCII case-insensitive)? */
bool h1_list_has(const uint8_t *v, uint32_t len, const char *tok);
/* ASCII case-insensitive equality of v and the lowercase literal lit. */
bool h1_ieq(const uint8_t *v, uint32_t len, const char *lit);

#endif
