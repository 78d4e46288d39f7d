/* h2_frame.c - RFC 9113 §4 and §6 frame codec (plus RFC 9218 §7.1).
 *
 * Decoding is a table indexed by frame type (h2o style): each entry holds the
 * flags the type defines, its stream-id rule and one small decode function
 * that checks the rest of that type's rules.  The stream-id rule is checked
 * first, so a frame that breaks both a connection-scope and a stream-scope
 * rule ends the connection.  Padding octets are not checked for zero (RFC
 * 9113 §6.1 lets the receiver skip that).
 */
#include "h2_frame.h"

#include <assert.h>
#include <string.h>

/* --- Frame header ---------------------------------------------------------- */

void h2_frame_hdr_parse(const uint8_t *p, h2_frame_hdr *out)
{
    out->length = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | (uint32_t)p[2];
    out->type = p[3];
    out->flags = p[4];
    out->stream_id = h2_get_u32(p + 5) & H2_STREAM_ID_MASK; /* §4.1: R is ignored */
}

uint8_t *h2_frame_hdr_write(uint8_t *p, uint32_t length, uint8_t type, uint8_t flags,
                            uint32_t stream_id)
{
    assert(length <= H2_MAX_MAX_FRAME_SIZE);
    p[0] = (uint8_t)(length >> 16);
    p[1] = (uint8_t)(length >> 8);
    p[2] = (uint8_t)length;
    p[3] = type;
    p[4] = flags;
    return h2_put_u32(p + 5, stream_id & H2_STREAM_ID_MASK); /* §4.1: R sent as 0 */
}

/* --- Decoding --------------------------------------------------------------- */

/* Where a type may be sent (RFC 9113 §6, RFC 9218 §7.1). */
enum sid_rule { SID_ANY, SID_ZERO, SID_NONZERO };

typedef h2_fault (*decode_fn)(const h2_frame_hdr *h, const uint8_t *p, h2_frame *out);

/* The mandatory fields that follow the Pad Length field. */
typedef struct unpadded {
    uint32_t off; /* first octet after Pad Length */
    uint32_t len; /* octets between off and the padding */
} unpadded;

/* Strip Pad Length and padding (§6.1, §6.2, §6.6).  fixed is the size of the
 * mandatory fields after Pad Length.  Frames too short for those fields are
 * FRAME_SIZE_ERROR (§4.2); padding that eats into them or beyond is
 * PROTOCOL_ERROR.  Both at connection scope: DATA counts against the
 * connection window and the other two carry a field block. */
static h2_fault unpad(const h2_frame_hdr *h, const uint8_t *p, uint32_t fixed, unpadded *u,
                      const char *too_short, const char *bad_pad)
{
    uint32_t pad = 0;

    u->off = 0;
    if (h->flags & H2_FLAG_PADDED) {
        if (h->length < 1 + fixed)
            return h2_fault_conn(H2_FRAME_SIZE_ERROR, too_short);
        pad = p[0];
        u->off = 1;
    } else if (h->length < fixed) {
        return h2_fault_conn(H2_FRAME_SIZE_ERROR, too_short);
    }
    if (pad > h->length - u->off - fixed)
        return h2_fault_conn(H2_PROTOCOL_ERROR, bad_pad);
    u->len = h->length - u->off - pad;
    return h2_fault_none();
}

/* The 5-octet RFC 7540 priority fields (§6.2, §6.3). */
static h2_priority read_priority(const uint8_t *p)
{
    uint32_t v = h2_get_u32(p);
    h2_priority pr = {v & H2_STREAM_ID_MASK, p[4], (v >> 31) != 0};
    return pr;
}

static h2_fault decode_data(const h2_frame_hdr *h, const uint8_t *p, h2_frame *out)
{
    unpadded u;
    h2_fault f =
        unpad(h, p, 0, &u, "DATA: PADDED without Pad Length", "DATA: padding exceeds payload");
    if (!h2_fault_ok(f))
        return f;
    out->u.data.data = p + u.off;
    out->u.data.len = u.len;
    return f;
}

/* On a self-dependency the block is still set: the caller must feed it to
 * HPACK to keep the decoder in step (§4.3) before resetting the stream. */
static h2_fault decode_headers(const h2_frame_hdr *h, const uint8_t *p, h2_frame *out)
{
    const bool prio = (h->flags & H2_FLAG_PRIORITY) != 0;
    const uint32_t fixed = prio ? 5u : 0u;
    unpadded u;
    h2_fault f = unpad(h, p, fixed, &u, "HEADERS: too short for Pad Length/priority",
                       "HEADERS: padding exceeds payload");
    if (!h2_fault_ok(f))
        return f;
    out->u.headers.block = p + u.off + fixed;
    out->u.headers.block_len = u.len - fixed;
    out->u.headers.has_priority = prio;
    if (prio) {
        out->u.headers.priority = read_priority(p + u.off);
        if (out->u.headers.priority.dependency == h->stream_id)
            return h2_fault_stream(H2_PROTOCOL_ERROR, "HEADERS: stream depends on itself");
    }
    return f;
}

static h2_fault decode_priority(const h2_frame_hdr *h, const uint8_t *p, h2_frame *out)
{
    if (h->length != 5)
        return h2_fault_stream(H2_FRAME_SIZE_ERROR, "PRIORITY: length is not 5");
    out->u.priority = read_priority(p);
    if (out->u.priority.dependency == h->stream_id)
        return h2_fault_stream(H2_PROTOCOL_ERROR, "PRIORITY: stream depends on itself");
    return h2_fault_none();
}

static h2_fault decode_rst_stream(const h2_frame_hdr *h, const uint8_t *p, h2_frame *out)
{
    if (h->length != 4)
        return h2_fault_conn(H2_FRAME_SIZE_ERROR, "RST_STREAM: length is not 4");
    out->u.rst_code = h2_get_u32(p);
    return h2_fault_none();
}

static h2_fault decode_settings(const h2_frame_hdr *h, const uint8_t *p, h2_frame *out)
{
    if (h->flags & H2_FLAG_ACK) {
        if (h->length != 0)
            return h2_fault_conn(H2_FRAME_SIZE_ERROR, "SETTINGS: ACK with a payload");
        return h2_fault_none();
    }
    if (h->length % 6 != 0)
        return h2_fault_conn(H2_FRAME_SIZE_ERROR, "SETTINGS: length not a multiple of 6");
    out->u.settings.entries = p;
    out->u.settings.n = h->length / 6;
    for (uint32_t i = 0; i < out->u.settings.n; i++) {
        h2_setting s = h2_settings_get(p, i);
        h2_fault f = h2_settings_check(s.id, s.value);
        if (!h2_fault_ok(f))
            return f;
    }
    return h2_fault_none();
}

static h2_fault decode_push_promise(const h2_frame_hdr *h, const uint8_t *p, h2_frame *out)
{
    unpadded u;
    h2_fault f = unpad(h, p, 4, &u, "PUSH_PROMISE: too short for Promised Stream ID",
                       "PUSH_PROMISE: padding exceeds payload");
    if (!h2_fault_ok(f))
        return f;
    out->u.push_promise.promised_id = h2_get_u32(p + u.off) & H2_STREAM_ID_MASK;
    out->u.push_promise.block = p + u.off + 4;
    out->u.push_promise.block_len = u.len - 4;
    return f;
}

static h2_fault decode_ping(const h2_frame_hdr *h, const uint8_t *p, h2_frame *out)
{
    if (h->length != 8)
        return h2_fault_conn(H2_FRAME_SIZE_ERROR, "PING: length is not 8");
    memcpy(out->u.ping, p, 8);
    return h2_fault_none();
}

static h2_fault decode_goaway(const h2_frame_hdr *h, const uint8_t *p, h2_frame *out)
{
    if (h->length < 8)
        return h2_fault_conn(H2_FRAME_SIZE_ERROR, "GOAWAY: shorter than 8");
    out->u.goaway.last_stream_id = h2_get_u32(p) & H2_STREAM_ID_MASK;
    out->u.goaway.code = h2_get_u32(p + 4);
    out->u.goaway.debug = p + 8;
    out->u.goaway.debug_len = h->length - 8;
    return h2_fault_none();
}

static h2_fault decode_window_update(const h2_frame_hdr *h, const uint8_t *p, h2_frame *out)
{
    if (h->length != 4)
        return h2_fault_conn(H2_FRAME_SIZE_ERROR, "WINDOW_UPDATE: length is not 4");
    out->u.window_increment = h2_get_u32(p) & H2_STREAM_ID_MASK; /* R ignored */
    if (out->u.window_increment == 0) {
        return h->stream_id != 0
                   ? h2_fault_stream(H2_PROTOCOL_ERROR, "WINDOW_UPDATE: zero increment")
                   : h2_fault_conn(H2_PROTOCOL_ERROR, "WINDOW_UPDATE: zero connection increment");
    }
    return h2_fault_none();
}

static h2_fault decode_continuation(const h2_frame_hdr *h, const uint8_t *p, h2_frame *out)
{
    out->u.continuation.block = p;
    out->u.continuation.block_len = h->length;
    return h2_fault_none();
}

static h2_fault decode_priority_update(const h2_frame_hdr *h, const uint8_t *p, h2_frame *out)
{
    if (h->length < 4)
        return h2_fault_conn(H2_FRAME_SIZE_ERROR, "PRIORITY_UPDATE: shorter than 4");
    out->u.priority_update.prioritized_id = h2_get_u32(p) & H2_STREAM_ID_MASK;
    out->u.priority_update.field = p + 4;
    out->u.priority_update.field_len = h->length - 4;
    if (out->u.priority_update.prioritized_id == 0)
        return h2_fault_conn(H2_PROTOCOL_ERROR, "PRIORITY_UPDATE: prioritized stream 0");
    return h2_fault_none();
}

typedef struct frame_rule {
    decode_fn decode;    /* NULL: type unknown to spindle */
    uint8_t flags;       /* flags the type defines; others are cleared */
    uint8_t sid;         /* enum sid_rule */
    const char *sid_why; /* reason when the stream-id rule is broken */
} frame_rule;

#define FT_COUNT (H2_FT_PRIORITY_UPDATE + 1)

static const frame_rule rules[FT_COUNT] = {
    [H2_FT_DATA] = {decode_data, H2_FLAG_END_STREAM | H2_FLAG_PADDED, SID_NONZERO,
                    "DATA on stream 0"},
    [H2_FT_HEADERS] = {decode_headers,
                       H2_FLAG_END_STREAM | H2_FLAG_END_HEADERS | H2_FLAG_PADDED | H2_FLAG_PRIORITY,
                       SID_NONZERO, "HEADERS on stream 0"},
    [H2_FT_PRIORITY] = {decode_priority, 0, SID_NONZERO, "PRIORITY on stream 0"},
    [H2_FT_RST_STREAM] = {decode_rst_stream, 0, SID_NONZERO, "RST_STREAM on stream 0"},
    [H2_FT_SETTINGS] = {decode_settings, H2_FLAG_ACK, SID_ZERO, "SETTINGS on a stream"},
    [H2_FT_PUSH_PROMISE] = {decode_push_promise, H2_FLAG_END_HEADERS | H2_FLAG_PADDED, SID_NONZERO,
                            "PUSH_PROMISE on stream 0"},
    [H2_FT_PING] = {decode_ping, H2_FLAG_ACK, SID_ZERO, "PING on a stream"},
    [H2_FT_GOAWAY] = {decode_goaway, 0, SID_ZERO, "GOAWAY on a stream"},
    [H2_FT_WINDOW_UPDATE] = {decode_window_update, 0, SID_ANY, NULL},
    [H2_FT_CONTINUATION] = {decode_continuation, H2_FLAG_END_HEADERS, SID_NONZERO,
                            "CONTINUATION on stream 0"},
    [H2_FT_PRIORITY_UPDATE] = {decode_priority_update, 0, SID_ZERO, "PRIORITY_UPDATE on a stream"},
};

bool h2_frame_type_known(uint8_t type)
{
    return type < FT_COUNT && rules[type].decode != NULL;
}

h2_fault h2_frame_check_size(const h2_frame_hdr *hdr, uint32_t max_frame_size)
{
    if (hdr->length > max_frame_size)
        return h2_fault_conn(H2_FRAME_SIZE_ERROR, "frame larger than SETTINGS_MAX_FRAME_SIZE");
    return h2_fault_none();
}

h2_fault h2_frame_decode(const h2_frame_hdr *hdr, const uint8_t *payload, h2_frame *out)
{
    memset(out, 0, sizeof *out);
    out->hdr = *hdr;
    if (!h2_frame_type_known(hdr->type))
        return h2_fault_conn(H2_INTERNAL_ERROR, "h2_frame_decode: unknown frame type");

    const frame_rule *r = &rules[hdr->type];
    out->hdr.flags &= r->flags;
    out->hdr.stream_id &= H2_STREAM_ID_MASK;
    if ((r->sid == SID_ZERO && out->hdr.stream_id != 0) ||
        (r->sid == SID_NONZERO && out->hdr.stream_id == 0))
        return h2_fault_conn(H2_PROTOCOL_ERROR, r->sid_why);
    return r->decode(&out->hdr, payload, out);
}

h2_fault h2_settings_check(uint16_t id, uint32_t value)
{
    switch (id) {
    case H2_SET_ENABLE_PUSH:
        if (value > 1)
            return h2_fault_conn(H2_PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH not 0 or 1");
        break;
    case H2_SET_INITIAL_WINDOW_SIZE:
        if (value > H2_MAX_WINDOW)
            return h2_fault_conn(H2_FLOW_CONTROL_ERROR,
                                 "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1");
        break;
    case H2_SET_MAX_FRAME_SIZE:
        if (value < H2_MIN_MAX_FRAME_SIZE || value > H2_MAX_MAX_FRAME_SIZE)
            return h2_fault_conn(H2_PROTOCOL_ERROR,
                                 "SETTINGS_MAX_FRAME_SIZE outside [2^14, 2^24-1]");
        break;
    case H2_SET_ENABLE_CONNECT_PROTOCOL:
        if (value > 1)
            return h2_fault_conn(H2_PROTOCOL_ERROR, "SETTINGS_ENABLE_CONNECT_PROTOCOL not 0 or 1");
        break;
    case H2_SET_NO_RFC7540_PRIORITIES:
        if (value > 1)
            return h2_fault_conn(H2_PROTOCOL_ERROR, "SETTINGS_NO_RFC7540_PRIORITIES not 0 or 1");
        break;
    default: break; /* §6.5.2: unknown or unconstrained */
    }
    return h2_fault_none();
}

h2_setting h2_settings_get(const uint8_t *entries, uint32_t i)
{
    const uint8_t *e = entries + (size_t)i * 6;
    h2_setting s = {(uint16_t)(e[0] << 8 | e[1]), h2_get_u32(e + 2)};
    return s;
}

/* --- Encoding ---------------------------------------------------------------- */

static uint8_t *put_bytes(uint8_t *p, const uint8_t *src, uint32_t len)
{
    if (len != 0) /* src may be NULL when len is 0 */
        memcpy(p, src, len);
    return p + len;
}

static uint8_t *put_priority(uint8_t *p, const h2_priority *prio)
{
    uint32_t v = (prio->dependency & H2_STREAM_ID_MASK) | (prio->exclusive ? 1u << 31 : 0u);
    p = h2_put_u32(p, v);
    *p++ = prio->weight;
    return p;
}

uint8_t *h2_frame_write_data(uint8_t *p, uint32_t stream_id, bool end_stream, const uint8_t *data,
                             uint32_t len, uint8_t pad_len, bool padded)
{
    uint32_t pad_total = padded ? 1u + pad_len : 0u;
    uint8_t flags =
        (uint8_t)((end_stream ? H2_FLAG_END_STREAM : 0) | (padded ? H2_FLAG_PADDED : 0));

    p = h2_frame_hdr_write(p, len + pad_total, H2_FT_DATA, flags, stream_id);
    if (padded)
        *p++ = pad_len;
    p = put_bytes(p, data, len);
    if (padded) {
        memset(p, 0, pad_len);
        p += pad_len;
    }
    return p;
}

uint8_t *h2_frame_write_headers(uint8_t *p, uint32_t stream_id, bool end_stream, bool end_headers,
                                const h2_priority *prio, const uint8_t *block, uint32_t len,
                                uint8_t pad_len, bool padded)
{
    uint32_t extra = (padded ? 1u + pad_len : 0u) + (prio ? 5u : 0u);
    uint8_t flags =
        (uint8_t)((end_stream ? H2_FLAG_END_STREAM : 0) | (end_headers ? H2_FLAG_END_HEADERS : 0) |
                  (padded ? H2_FLAG_PADDED : 0) | (prio ? H2_FLAG_PRIORITY : 0));

    p = h2_frame_hdr_write(p, len + extra, H2_FT_HEADERS, flags, stream_id);
    if (padded)
        *p++ = pad_len;
    if (prio)
        p = put_priority(p, prio);
    p = put_bytes(p, block, len);
    if (padded) {
        memset(p, 0, pad_len);
        p += pad_len;
    }
    return p;
}

uint8_t *h2_frame_write_priority(uint8_t *p, uint32_t stream_id, const h2_priority *prio)
{
    p = h2_frame_hdr_write(p, 5, H2_FT_PRIORITY, 0, stream_id);
    return put_priority(p, prio);
}

uint8_t *h2_frame_write_rst_stream(uint8_t *p, uint32_t stream_id, uint32_t code)
{
    p = h2_frame_hdr_write(p, 4, H2_FT_RST_STREAM, 0, stream_id);
    return h2_put_u32(p, code);
}

uint8_t *h2_frame_write_settings(uint8_t *p, const h2_setting *s, size_t n)
{
    assert(n <= H2_MAX_MAX_FRAME_SIZE / 6);
    p = h2_frame_hdr_write(p, (uint32_t)n * 6, H2_FT_SETTINGS, 0, 0);
    for (size_t i = 0; i < n; i++) {
        *p++ = (uint8_t)(s[i].id >> 8);
        *p++ = (uint8_t)s[i].id;
        p = h2_put_u32(p, s[i].value);
    }
    return p;
}

uint8_t *h2_frame_write_settings_ack(uint8_t *p)
{
    return h2_frame_hdr_write(p, 0, H2_FT_SETTINGS, H2_FLAG_ACK, 0);
}

uint8_t *h2_frame_write_push_promise(uint8_t *p, uint32_t stream_id, bool end_headers,
                                     uint32_t promised_id, const uint8_t *block, uint32_t len)
{
    p = h2_frame_hdr_write(p, 4 + len, H2_FT_PUSH_PROMISE, end_headers ? H2_FLAG_END_HEADERS : 0,
                           stream_id);
    p = h2_put_u32(p, promised_id & H2_STREAM_ID_MASK);
    return put_bytes(p, block, len);
}

uint8_t *h2_frame_write_ping(uint8_t *p, bool ack, const uint8_t opaque[8])
{
    p = h2_frame_hdr_write(p, 8, H2_FT_PING, ack ? H2_FLAG_ACK : 0, 0);
    return put_bytes(p, opaque, 8);
}

uint8_t *h2_frame_write_goaway(uint8_t *p, uint32_t last_stream_id, uint32_t code,
                               const uint8_t *debug, uint32_t debug_len)
{
    p = h2_frame_hdr_write(p, 8 + debug_len, H2_FT_GOAWAY, 0, 0);
    p = h2_put_u32(p, last_stream_id & H2_STREAM_ID_MASK);
    p = h2_put_u32(p, code);
    return put_bytes(p, debug, debug_len);
}

uint8_t *h2_frame_write_window_update(uint8_t *p, uint32_t stream_id, uint32_t increment)
{
    p = h2_frame_hdr_write(p, 4, H2_FT_WINDOW_UPDATE, 0, stream_id);
    return h2_put_u32(p, increment & H2_STREAM_ID_MASK);
}

uint8_t *h2_frame_write_continuation(uint8_t *p, uint32_t stream_id, bool end_headers,
                                     const uint8_t *block, uint32_t len)
{
    p = h2_frame_hdr_write(p, len, H2_FT_CONTINUATION, end_headers ? H2_FLAG_END_HEADERS : 0,
                           stream_id);
    return put_bytes(p, block, len);
}

uint8_t *h2_frame_write_priority_update(uint8_t *p, uint32_t prioritized_id, const uint8_t *field,
                                        uint32_t len)
{
    p = h2_frame_hdr_write(p, 4 + len, H2_FT_PRIORITY_UPDATE, 0, 0);
    p = h2_put_u32(p, prioritized_id & H2_STREAM_ID_MASK);
    return put_bytes(p, field, len);
}
