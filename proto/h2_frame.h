/* h2_frame.h - RFC 9113 §4 and §6 frame codec (plus RFC 9218 PRIORITY_UPDATE).
 *
 * Pure functions, no state, no allocation.  Decoders validate one frame
 * type's own rules (length, stream id, flags, padding, setting values) and
 * return an h2_fault naming the RFC error code and its scope; they do not know
 * about stream state or negotiated limits (that is h2_conn's job), except the
 * frame-size check, which takes the limit as an argument.  Encoders write at a
 * cursor and return the advanced cursor; the caller guarantees room
 * (H2_FRAME_HDR_LEN + payload length).
 *
 * Thread: any.  Ownership: decoded views point into the caller's payload.
 */
#ifndef SPINDLE_H2_FRAME_H
#define SPINDLE_H2_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h2_err.h"

#define H2_FRAME_HDR_LEN      9u
#define H2_MIN_MAX_FRAME_SIZE 16384u      /* SETTINGS_MAX_FRAME_SIZE floor and default */
#define H2_MAX_MAX_FRAME_SIZE 16777215u   /* 2^24 - 1 */
#define H2_MAX_WINDOW         2147483647u /* 2^31 - 1 */
#define H2_DEFAULT_WINDOW     65535u
#define H2_STREAM_ID_MASK     0x7fffffffu

/* The client connection preface, RFC 9113 §3.4. */
#define H2_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24u

typedef enum h2_frame_type {
    H2_FT_DATA = 0x0,
    H2_FT_HEADERS = 0x1,
    H2_FT_PRIORITY = 0x2,
    H2_FT_RST_STREAM = 0x3,
    H2_FT_SETTINGS = 0x4,
    H2_FT_PUSH_PROMISE = 0x5,
    H2_FT_PING = 0x6,
    H2_FT_GOAWAY = 0x7,
    H2_FT_WINDOW_UPDATE = 0x8,
    H2_FT_CONTINUATION = 0x9,
    H2_FT_PRIORITY_UPDATE = 0x10, /* RFC 9218 §7.1 */
} h2_frame_type;

enum {
    H2_FLAG_END_STREAM = 0x01,
    H2_FLAG_ACK = 0x01,
    H2_FLAG_END_HEADERS = 0x04,
    H2_FLAG_PADDED = 0x08,
    H2_FLAG_PRIORITY = 0x20,
};

typedef enum h2_setting_id {
    H2_SET_HEADER_TABLE_SIZE = 0x1,
    H2_SET_ENABLE_PUSH = 0x2,
    H2_SET_MAX_CONCURRENT_STREAMS = 0x3,
    H2_SET_INITIAL_WINDOW_SIZE = 0x4,
    H2_SET_MAX_FRAME_SIZE = 0x5,
    H2_SET_MAX_HEADER_LIST_SIZE = 0x6,
    H2_SET_ENABLE_CONNECT_PROTOCOL = 0x8, /* RFC 8441 */
    H2_SET_NO_RFC7540_PRIORITIES = 0x9,   /* RFC 9218 */
} h2_setting_id;

typedef struct h2_frame_hdr {
    uint32_t length; /* 24 bits */
    uint8_t type;
    uint8_t flags;
    uint32_t stream_id; /* reserved bit already cleared */
} h2_frame_hdr;

typedef struct h2_setting {
    uint16_t id;
    uint32_t value;
} h2_setting;

/* RFC 7540 priority fields: parsed and validated, otherwise ignored. */
typedef struct h2_priority {
    uint32_t dependency;
    uint8_t weight; /* wire value (0..255), weight - 1 */
    bool exclusive;
} h2_priority;

typedef struct h2_data {
    const uint8_t *data; /* payload without padding */
    uint32_t len;
} h2_data;

typedef struct h2_headers {
    const uint8_t *block; /* field block fragment without padding/priority */
    uint32_t block_len;
    bool has_priority;
    h2_priority priority;
} h2_headers;

typedef struct h2_push_promise {
    uint32_t promised_id;
    const uint8_t *block;
    uint32_t block_len;
} h2_push_promise;

typedef struct h2_goaway {
    uint32_t last_stream_id;
    uint32_t code;
    const uint8_t *debug;
    uint32_t debug_len;
} h2_goaway;

typedef struct h2_priority_update {
    uint32_t prioritized_id;
    const uint8_t *field; /* Priority Field Value (RFC 9218 §4), ASCII */
    uint32_t field_len;
} h2_priority_update;

/* A decoded frame of any known type. */
typedef struct h2_frame {
    h2_frame_hdr hdr;
    union {
        h2_data data;
        h2_headers headers;
        h2_priority priority;
        uint32_t rst_code;
        struct {
            const uint8_t *entries; /* n * 6 bytes, read with h2_settings_get() */
            uint32_t n;
        } settings;
        h2_push_promise push_promise;
        uint8_t ping[8];
        h2_goaway goaway;
        uint32_t window_increment;
        struct {
            const uint8_t *block;
            uint32_t block_len;
        } continuation;
        h2_priority_update priority_update;
    } u;
} h2_frame;

/* --- Frame header ------------------------------------------------------ */

/* Parse the 9-byte header at p.  Never fails. */
void h2_frame_hdr_parse(const uint8_t *p, h2_frame_hdr *out);
/* Write a 9-byte header; length must be < 2^24.  Returns p + 9. */
uint8_t *h2_frame_hdr_write(uint8_t *p, uint32_t length, uint8_t type, uint8_t flags,
                            uint32_t stream_id);

/* Is this type one spindle knows (0x0..0x9, 0x10)?  Unknown types must be
 * ignored by the caller (RFC 9113 §4.1, §5.5). */
bool h2_frame_type_known(uint8_t type);

/* --- Decoding ---------------------------------------------------------- */

/* Check hdr->length against max_frame_size (our SETTINGS_MAX_FRAME_SIZE).
 * FRAME_SIZE_ERROR at connection scope when exceeded (RFC 9113 §4.2). */
h2_fault h2_frame_check_size(const h2_frame_hdr *hdr, uint32_t max_frame_size);

/* Decode and validate a complete frame of a known type; payload holds
 * hdr->length bytes.  Enforces, per RFC 9113 §6:
 *  - stream id zero / non-zero rules (PROTOCOL_ERROR, connection scope);
 *  - fixed lengths: PRIORITY 5 (FRAME_SIZE_ERROR, stream scope), RST_STREAM 4,
 *    PING 8, WINDOW_UPDATE 4, SETTINGS multiple of 6, SETTINGS ACK empty,
 *    GOAWAY >= 8, PRIORITY_UPDATE >= 4 (FRAME_SIZE_ERROR, connection scope);
 *  - padding: pad length >= remaining payload is PROTOCOL_ERROR (connection);
 *  - a PRIORITY/HEADERS dependency on its own stream: PROTOCOL_ERROR (stream);
 *  - WINDOW_UPDATE increment 0: PROTOCOL_ERROR (stream scope on a stream,
 *    connection scope on stream 0);
 *  - SETTINGS values (h2_settings_check()).
 *  - PRIORITY_UPDATE: sent on stream 0, prioritized id 0 is PROTOCOL_ERROR.
 *  - DATA/HEADERS/PUSH_PROMISE too short for Pad Length or their fixed fields
 *    (priority, Promised Stream ID): FRAME_SIZE_ERROR, connection (§4.2).
 * Does not judge PUSH_PROMISE's legality (a server must reject it: h2_conn).
 * Unknown flags are ignored (cleared in out->hdr.flags where undefined); the
 * reserved bit of out->hdr.stream_id and of every stream id or increment in
 * the payload is cleared.  A rule broken at connection scope is reported
 * before one at stream scope.  On a stream-scope fault the frame is still
 * fully decoded: a HEADERS frame that depends on itself must still have its
 * block fed to HPACK (§4.3) before the stream is reset.  A type for which
 * h2_frame_type_known() is false is the caller's bug: INTERNAL_ERROR,
 * connection scope. */
h2_fault h2_frame_decode(const h2_frame_hdr *hdr, const uint8_t *payload, h2_frame *out);

/* Validate one SETTINGS value (RFC 9113 §6.5.2, RFC 8441, RFC 9218):
 * ENABLE_PUSH > 1, ENABLE_CONNECT_PROTOCOL > 1, NO_RFC7540_PRIORITIES > 1 and
 * MAX_FRAME_SIZE outside [2^14, 2^24-1] are PROTOCOL_ERROR; INITIAL_WINDOW_SIZE
 * > 2^31-1 is FLOW_CONTROL_ERROR; all connection scope.  Unknown ids: ok. */
h2_fault h2_settings_check(uint16_t id, uint32_t value);

/* Read entry i of a decoded SETTINGS frame. */
h2_setting h2_settings_get(const uint8_t *entries, uint32_t i);

/* --- Encoding (each returns the advanced cursor) ------------------------ */
/* Stream ids, dependencies and increments are written with the reserved bit
 * clear.  DATA/HEADERS with padded set carry Pad Length = pad_len followed by
 * pad_len zero octets (padded with pad_len 0 is a valid one-octet overhead). */

uint8_t *h2_frame_write_data(uint8_t *p, uint32_t stream_id, bool end_stream, const uint8_t *data,
                             uint32_t len, uint8_t pad_len, bool padded);
/* HEADERS; prio may be NULL.  end_headers false means CONTINUATION follows. */
uint8_t *h2_frame_write_headers(uint8_t *p, uint32_t stream_id, bool end_stream, bool end_headers,
                                const h2_priority *prio, const uint8_t *block, uint32_t len,
                                uint8_t pad_len, bool padded);
uint8_t *h2_frame_write_priority(uint8_t *p, uint32_t stream_id, const h2_priority *prio);
uint8_t *h2_frame_write_rst_stream(uint8_t *p, uint32_t stream_id, uint32_t code);
uint8_t *h2_frame_write_settings(uint8_t *p, const h2_setting *s, size_t n);
uint8_t *h2_frame_write_settings_ack(uint8_t *p);
uint8_t *h2_frame_write_push_promise(uint8_t *p, uint32_t stream_id, bool end_headers,
                                     uint32_t promised_id, const uint8_t *block, uint32_t len);
uint8_t *h2_frame_write_ping(uint8_t *p, bool ack, const uint8_t opaque[8]);
uint8_t *h2_frame_write_goaway(uint8_t *p, uint32_t last_stream_id, uint32_t code,
                               const uint8_t *debug, uint32_t debug_len);
uint8_t *h2_frame_write_window_update(uint8_t *p, uint32_t stream_id, uint32_t increment);
uint8_t *h2_frame_write_continuation(uint8_t *p, uint32_t stream_id, bool end_headers,
                                     const uint8_t *block, uint32_t len);
uint8_t *h2_frame_write_priority_update(uint8_t *p, uint32_t prioritized_id, const uint8_t *field,
                                        uint32_t len);

/* Big-endian helpers shared by proto/ modules. */
static inline uint32_t h2_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
static inline uint8_t *h2_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

#endif
