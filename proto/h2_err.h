/* h2_err.h - the one error vocabulary of spindle's protocol core.
 *
 * Two things are kept apart:
 *   h2_code  - an RFC 9113 §7 error code, as it travels in RST_STREAM/GOAWAY.
 *   h2_rv    - what a library function returns: 0 on success, a negative
 *              value otherwise.  Values at or below H2_E_FATAL_ are fatal for
 *              the object they were returned from (see h2_rv_is_fatal()).
 * A protocol violation by the peer is described by an h2_fault: the code to
 * send, whether it ends the stream or the connection, and a short static
 * reason (used in GOAWAY debug data and logs).
 */
#ifndef SPINDLE_H2_ERR_H
#define SPINDLE_H2_ERR_H

#include <stdbool.h>
#include <stdint.h>

/* RFC 9113 §7. */
typedef enum h2_code {
    H2_NO_ERROR = 0x0,
    H2_PROTOCOL_ERROR = 0x1,
    H2_INTERNAL_ERROR = 0x2,
    H2_FLOW_CONTROL_ERROR = 0x3,
    H2_SETTINGS_TIMEOUT = 0x4,
    H2_STREAM_CLOSED = 0x5,
    H2_FRAME_SIZE_ERROR = 0x6,
    H2_REFUSED_STREAM = 0x7,
    H2_CANCEL = 0x8,
    H2_COMPRESSION_ERROR = 0x9,
    H2_CONNECT_ERROR = 0xa,
    H2_ENHANCE_YOUR_CALM = 0xb,
    H2_INADEQUATE_SECURITY = 0xc,
    H2_HTTP_1_1_REQUIRED = 0xd,
} h2_code;

typedef enum h2_rv {
    H2_OK = 0,
    /* Recoverable. */
    H2_E_AGAIN = -1,       /* need more input, or more room for output */
    H2_E_INVAL = -2,       /* bad argument from the caller */
    H2_E_STATE = -3,       /* not valid in the object's current state */
    H2_E_NOSTREAM = -4,    /* no such stream (closed or never opened) */
    H2_E_COMPRESSION = -5, /* HPACK: malformed input (COMPRESSION_ERROR) */
    H2_E_LIMIT = -6,       /* a configured limit was exceeded */
    H2_E_PROTO = -7,       /* the peer violated the protocol: see the h2_fault */
    /* Fatal: the object must be torn down. */
    H2_E_FATAL_ = -100,
    H2_E_NOMEM = -100,  /* allocation failed */
    H2_E_CLOSED = -101, /* the connection is terminated; nothing more is accepted */
} h2_rv;

static inline bool h2_rv_is_fatal(h2_rv rv)
{
    return rv <= H2_E_FATAL_;
}

typedef enum h2_scope {
    H2_SCOPE_NONE = 0,   /* no fault */
    H2_SCOPE_STREAM = 1, /* RST_STREAM the stream, the connection lives on */
    H2_SCOPE_CONN = 2,   /* GOAWAY and close */
} h2_scope;

typedef struct h2_fault {
    h2_code code;
    h2_scope scope;
    const char *reason; /* static string, never NULL when scope != NONE */
} h2_fault;

static inline h2_fault h2_fault_none(void)
{
    h2_fault f = {H2_NO_ERROR, H2_SCOPE_NONE, 0};
    return f;
}
static inline h2_fault h2_fault_conn(h2_code code, const char *reason)
{
    h2_fault f = {code, H2_SCOPE_CONN, reason};
    return f;
}
static inline h2_fault h2_fault_stream(h2_code code, const char *reason)
{
    h2_fault f = {code, H2_SCOPE_STREAM, reason};
    return f;
}
static inline bool h2_fault_ok(h2_fault f)
{
    return f.scope == H2_SCOPE_NONE;
}

/* Name of an RFC error code ("PROTOCOL_ERROR"); "UNKNOWN" for others. */
const char *h2_code_name(uint32_t code);
/* Name of a library return value ("H2_E_AGAIN"). */
const char *h2_rv_name(h2_rv rv);

#endif
