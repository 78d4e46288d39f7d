/* h2_http.h - HTTP semantics of RFC 9113 §8 over decoded field lists.
 *
 * Pure functions over hpack_field arrays: field name and value validity,
 * connection-specific fields, pseudo-header rules for requests (including
 * RFC 8441 extended CONNECT), trailers, content-length, and the RFC 9218
 * `priority` field.  A malformed message yields a stream-scope
 * PROTOCOL_ERROR fault with a static reason; it never harms the connection.
 *
 * Thread: any.  Ownership: outputs point into the caller's fields.
 */
#ifndef SPINDLE_H2_HTTP_H
#define SPINDLE_H2_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "h2_err.h"
#include "hpack.h"

typedef struct h2_str {
    const uint8_t *p; /* NULL when absent */
    uint32_t len;
} h2_str;

#define H2_URGENCY_DEFAULT 3u /* RFC 9218 §4.1 */
/* Largest content-length accepted (10^18, well inside int64_t). */
#define H2_HTTP_MAX_CONTENT_LENGTH INT64_C(1000000000000000000)

typedef struct h2_req_head {
    h2_str method, scheme, authority, path, protocol; /* protocol: RFC 8441 :protocol */
    const hpack_field *fields; /* regular fields, in order (pseudo-headers excluded) */
    uint32_t nfields;
    int64_t content_length; /* -1 when absent */
    uint8_t urgency;        /* RFC 9218, from the priority field; default 3 */
    bool incremental;
    bool expect_continue;  /* expect: 100-continue */
    bool extended_connect; /* CONNECT with :protocol (RFC 8441) */
} h2_req_head;

/* A response head, as a client receives it. */
typedef struct h2_resp_head {
    const hpack_field *fields; /* regular fields, in order (NULL when none) */
    uint32_t nfields;
    int64_t content_length; /* -1 when absent */
    uint16_t status;        /* 100..599 */
} h2_resp_head;

/* RFC 9113 §8.2.1: a name is non-empty, has no uppercase letter, and
 * consists of RFC 9110 token characters (no NUL, CR, LF, SP, colon...).
 * Pseudo-header names (leading ':') are judged by the request/trailer checks. */
bool h2_http_valid_name(const uint8_t *name, uint32_t len);

/* RFC 9113 §8.2.1: a value contains no NUL, CR or LF and neither starts nor
 * ends with SP or HTAB. */
bool h2_http_valid_value(const uint8_t *value, uint32_t len);

/* A field's digest: its name's kind and the properties of its value the
 * checks below need, from one pass over its bytes.  Opaque to callers; the
 * HPACK decoder stores it with each dynamic table entry (hpack_digest_fn)
 * and hands it over with the field (HPACK_F_DIGEST), so a field sent again
 * by index is checked without rescanning it.  Fields without
 * HPACK_F_DIGEST are digested when checked. */
uint32_t h2_http_field_digest(const uint8_t *name, uint32_t name_len, const uint8_t *value,
                              uint32_t value_len);

/* Validate a decoded request field list and extract what the server needs.
 * Rules (each failing as stream-scope PROTOCOL_ERROR with its own reason):
 *  - every name and value valid (above);
 *  - pseudo-headers only :method :scheme :authority :path :protocol, each at
 *    most once, all before the first regular field, none empty; no :status;
 *  - connection-specific fields (connection, proxy-connection, keep-alive,
 *    transfer-encoding, upgrade) are malformed; te only as "trailers";
 *  - CONNECT without :protocol: :method and :authority only;
 *    CONNECT with :protocol: only if connect_protocol_enabled, and then
 *    :scheme, :path and :authority are required;
 *    :protocol on any other method is malformed;
 *  - otherwise :method, :scheme and :path are required; :path is "/..." or
 *    "*" (OPTIONS only) for http and https;
 *  - pseudo-header values: :method and :protocol are tokens, :scheme is
 *    ALPHA *(ALPHA / DIGIT / "+" / "-" / "."), :authority has only RFC 3986
 *    authority characters, :path only VCHAR and obs-text (no CTL or SP);
 *  - host at most once; host and :authority, when both present, must be
 *    equal (ASCII case-insensitive);
 *  - content-length: digits only, at most H2_HTTP_MAX_CONTENT_LENGTH;
 *    repeated values (separate fields or a comma list, RFC 9110 §8.6) must
 *    agree.
 * The priority field sets urgency/incremental; expect: 100-continue sets
 * expect_continue.  On success out->fields/nfields are the regular fields
 * (out->fields is NULL when there are none). */
h2_fault h2_http_parse_request(const hpack_field *f, uint32_t n, bool connect_protocol_enabled,
                               h2_req_head *out);

/* Validate a decoded response field list (RFC 9113 §8.3.2, §8.2): exactly
 * one :status, three digits from 100 to 599, before every regular field;
 * no other pseudo-header; regular fields as for requests (valid names and
 * values, no connection-specific field, te only as "trailers");
 * content-length as for requests.  Failures are stream-scope
 * PROTOCOL_ERROR. */
h2_fault h2_http_parse_response(const hpack_field *f, uint32_t n, h2_resp_head *out);

/* Trailers (RFC 9113 §8.1): valid names/values, no pseudo-headers, no
 * connection-specific fields. */
h2_fault h2_http_check_trailers(const hpack_field *f, uint32_t n);

/* Response fields an application hands us: valid names and values, no
 * pseudo-headers, no connection-specific fields.  Returns H2_OK or
 * H2_E_INVAL. */
h2_rv h2_http_check_response_fields(const hpack_field *f, uint32_t n);

/* RFC 9218 §4: parse a Priority Field Value (a structured-field dictionary):
 * u=0..7 and i (boolean).  Unknown members and out-of-range values are
 * ignored; *urgency and *incremental keep their values when absent.  Parsed
 * by RFC 8941 §4.2, leniently: a member that does not parse is skipped (up
 * to the next comma outside a string) rather than the whole field.  Never
 * fails.  Several priority fields: call once per field, in order. */
void h2_http_parse_priority(const uint8_t *v, uint32_t len, uint8_t *urgency, bool *incremental);

/* Is f's name exactly the (lowercase) literal lit of length len? */
static inline bool h2_http_field_is(const hpack_field *f, const char *lit, uint32_t len)
{
    return f->name_len == len && (len == 0 || memcmp(f->name, lit, len) == 0);
}

#endif
