/* load_h1.h - a strict, incremental HTTP/1.1 response parser for
 * spindle-load (RFC 9112), pure: no I/O, no clock.
 *
 * It delimits responses on a persistent connection and reports each final
 * one whole: its status, its body length, whether the connection stays
 * open.  Interim (1xx) responses are skipped.  The head's syntax and sizes
 * are checked by the server codec's scanner (proto/h1_parse.h: CRLF only,
 * no controls, h1_limits_default() sizes), and chunk-size lines by its
 * chunk scanner; this module adds the status line and the framing rules:
 *  - "HTTP/1.0" or "HTTP/1.1", SP, three digits 100..599, then SP or CRLF;
 *    anything else where a response should start is an error (so a body
 *    longer than its content-length is caught at the next response);
 *  - content-length: digits only, at most 18, repeated only with the same
 *    value; transfer-encoding: exactly "chunked", never with a
 *    content-length, never in HTTP/1.0;
 *  - no body for 204, 304 and a response to HEAD; 101 is an error (no
 *    upgrade is ever asked for); without either framing field the body runs
 *    to the connection's close (and the connection cannot be reused);
 *  - "connection: close", or HTTP/1.0 without "connection: keep-alive",
 *    ends the connection after the response.
 * Thread: any; one parser per connection.
 */
#ifndef SPINDLE_LOAD_H1_H
#define SPINDLE_LOAD_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h1_parse.h"

typedef enum lh1_ev {
    LH1_MORE,     /* all input used, no response complete */
    LH1_RESPONSE, /* a final response ended: status, body, keep_alive */
    LH1_ERROR     /* malformed or short: error says why; the connection is over */
} lh1_ev;

typedef struct lh1_parser {
    uint8_t state;
    bool head_method;  /* responses answer HEAD requests: no bodies */
    bool keep_alive;   /* of the response just completed */
    uint16_t status;   /* of the response just completed (or in progress) */
    uint64_t body;     /* its body bytes (chunk framing excluded) */
    uint64_t left;     /* bytes left of the body or of the current chunk */
    const char *error; /* after LH1_ERROR: a static reason */
    uint8_t crlf;      /* bytes of a chunk's closing CRLF seen */
    h1_scan scan;
    h1_chunk_scan chunk;
    uint8_t *head; /* the head so far (at most h1_limits_default()->max_head) */
    uint32_t head_len, head_cap;
} lh1_parser;

void lh1_init(lh1_parser *p, bool head_method);
void lh1_free(lh1_parser *p);

/* Parse in[0..n).  Returns the bytes consumed and sets *ev: LH1_RESPONSE
 * stops right after a complete final response (call again with the rest),
 * LH1_MORE means every byte was used, LH1_ERROR that parsing is over. */
size_t lh1_parse(lh1_parser *p, const uint8_t *in, size_t n, lh1_ev *ev);

/* The peer closed the connection: LH1_RESPONSE when that ended a body
 * read until the close, LH1_MORE when no response had begun, LH1_ERROR
 * for a response cut short (its head, or a body shorter than announced). */
lh1_ev lh1_eof(lh1_parser *p);

/* True between responses (no byte of the next one seen). */
bool lh1_idle(const lh1_parser *p);

#endif
