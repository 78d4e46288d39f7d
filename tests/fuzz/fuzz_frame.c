/* fuzz_frame.c - libFuzzer target for proto/h2_frame.c.
 *
 * Input: one octet choosing our SETTINGS_MAX_FRAME_SIZE (odd: 2^24-1, even:
 * 2^14), then a stream of frames.  Each complete frame of a known type is
 * decoded; one that decodes cleanly is re-encoded with the matching encoder
 * and decoded again, and the semantic fields must survive the round trip.
 * A frame-size fault ends the stream, as it ends the connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: round trip broken: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool same(const uint8_t *a, const uint8_t *b, uint32_t n)
{
    return n == 0 || memcmp(a, b, n) == 0;
}

/* The header's length and the padding it implies, for DATA and HEADERS. */
static uint8_t pad_of(const h2_frame *x, uint32_t content)
{
    return (x->hdr.flags & H2_FLAG_PADDED) ? (uint8_t)(x->hdr.length - 1 - content) : 0;
}

/* Encode x into out; returns the end, or NULL when no encoder covers it. */
static uint8_t *encode(const h2_frame *x, uint8_t *out)
{
    const h2_frame_hdr *h = &x->hdr;
    const bool end_stream = (h->flags & H2_FLAG_END_STREAM) != 0;
    const bool end_headers = (h->flags & H2_FLAG_END_HEADERS) != 0;
    const bool padded = (h->flags & H2_FLAG_PADDED) != 0;

    switch (h->type) {
    case H2_FT_DATA:
        return h2_frame_write_data(out, h->stream_id, end_stream, x->u.data.data, x->u.data.len,
                                   pad_of(x, x->u.data.len), padded);
    case H2_FT_HEADERS: {
        const h2_headers *hd = &x->u.headers;
        uint32_t content = hd->block_len + (hd->has_priority ? 5u : 0u);
        return h2_frame_write_headers(out, h->stream_id, end_stream, end_headers,
                                      hd->has_priority ? &hd->priority : NULL, hd->block,
                                      hd->block_len, pad_of(x, content), padded);
    }
    case H2_FT_PRIORITY: return h2_frame_write_priority(out, h->stream_id, &x->u.priority);
    case H2_FT_RST_STREAM: return h2_frame_write_rst_stream(out, h->stream_id, x->u.rst_code);
    case H2_FT_SETTINGS: {
        if (h->flags & H2_FLAG_ACK)
            return h2_frame_write_settings_ack(out);
        uint32_t n = x->u.settings.n;
        h2_setting *s = malloc((n ? n : 1) * sizeof *s);
        if (!s)
            abort();
        for (uint32_t i = 0; i < n; i++)
            s[i] = h2_settings_get(x->u.settings.entries, i);
        uint8_t *end = h2_frame_write_settings(out, s, n);
        free(s);
        return end;
    }
    case H2_FT_PUSH_PROMISE: /* the encoder writes no padding */
        return h2_frame_write_push_promise(out, h->stream_id, end_headers,
                                           x->u.push_promise.promised_id, x->u.push_promise.block,
                                           x->u.push_promise.block_len);
    case H2_FT_PING: return h2_frame_write_ping(out, (h->flags & H2_FLAG_ACK) != 0, x->u.ping);
    case H2_FT_GOAWAY:
        return h2_frame_write_goaway(out, x->u.goaway.last_stream_id, x->u.goaway.code,
                                     x->u.goaway.debug, x->u.goaway.debug_len);
    case H2_FT_WINDOW_UPDATE:
        return h2_frame_write_window_update(out, h->stream_id, x->u.window_increment);
    case H2_FT_CONTINUATION:
        return h2_frame_write_continuation(out, h->stream_id, end_headers, x->u.continuation.block,
                                           x->u.continuation.block_len);
    case H2_FT_PRIORITY_UPDATE:
        return h2_frame_write_priority_update(out, x->u.priority_update.prioritized_id,
                                              x->u.priority_update.field,
                                              x->u.priority_update.field_len);
    default: return NULL;
    }
}

static void check_same(const h2_frame *a, const h2_frame *b)
{
    CHECK(a->hdr.type == b->hdr.type);
    CHECK(a->hdr.stream_id == b->hdr.stream_id);
    if (a->hdr.type != H2_FT_PUSH_PROMISE) {
        CHECK(a->hdr.flags == b->hdr.flags);
        CHECK(a->hdr.length == b->hdr.length);
    } else {
        CHECK((a->hdr.flags & H2_FLAG_END_HEADERS) == (b->hdr.flags & H2_FLAG_END_HEADERS));
    }
    switch (a->hdr.type) {
    case H2_FT_DATA:
        CHECK(a->u.data.len == b->u.data.len);
        CHECK(same(a->u.data.data, b->u.data.data, a->u.data.len));
        break;
    case H2_FT_HEADERS:
        CHECK(a->u.headers.has_priority == b->u.headers.has_priority);
        CHECK(a->u.headers.priority.dependency == b->u.headers.priority.dependency);
        CHECK(a->u.headers.priority.weight == b->u.headers.priority.weight);
        CHECK(a->u.headers.priority.exclusive == b->u.headers.priority.exclusive);
        CHECK(a->u.headers.block_len == b->u.headers.block_len);
        CHECK(same(a->u.headers.block, b->u.headers.block, a->u.headers.block_len));
        break;
    case H2_FT_PRIORITY:
        CHECK(a->u.priority.dependency == b->u.priority.dependency);
        CHECK(a->u.priority.weight == b->u.priority.weight);
        CHECK(a->u.priority.exclusive == b->u.priority.exclusive);
        break;
    case H2_FT_RST_STREAM: CHECK(a->u.rst_code == b->u.rst_code); break;
    case H2_FT_SETTINGS:
        CHECK(a->u.settings.n == b->u.settings.n);
        CHECK(same(a->u.settings.entries, b->u.settings.entries, a->u.settings.n * 6));
        break;
    case H2_FT_PUSH_PROMISE:
        CHECK(a->u.push_promise.promised_id == b->u.push_promise.promised_id);
        CHECK(a->u.push_promise.block_len == b->u.push_promise.block_len);
        CHECK(same(a->u.push_promise.block, b->u.push_promise.block, a->u.push_promise.block_len));
        break;
    case H2_FT_PING: CHECK(memcmp(a->u.ping, b->u.ping, 8) == 0); break;
    case H2_FT_GOAWAY:
        CHECK(a->u.goaway.last_stream_id == b->u.goaway.last_stream_id);
        CHECK(a->u.goaway.code == b->u.goaway.code);
        CHECK(a->u.goaway.debug_len == b->u.goaway.debug_len);
        CHECK(same(a->u.goaway.debug, b->u.goaway.debug, a->u.goaway.debug_len));
        break;
    case H2_FT_WINDOW_UPDATE: CHECK(a->u.window_increment == b->u.window_increment); break;
    case H2_FT_CONTINUATION:
        CHECK(a->u.continuation.block_len == b->u.continuation.block_len);
        CHECK(same(a->u.continuation.block, b->u.continuation.block, a->u.continuation.block_len));
        break;
    case H2_FT_PRIORITY_UPDATE:
        CHECK(a->u.priority_update.prioritized_id == b->u.priority_update.prioritized_id);
        CHECK(a->u.priority_update.field_len == b->u.priority_update.field_len);
        CHECK(same(a->u.priority_update.field, b->u.priority_update.field,
                   a->u.priority_update.field_len));
        break;
    default: break;
    }
}

/* Decode one frame; on success, round-trip it through its encoder. */
static void one_frame(const h2_frame_hdr *h, const uint8_t *payload)
{
    h2_frame x, y;
    h2_fault f = h2_frame_decode(h, payload, &x);

    CHECK(x.hdr.type == h->type);
    if (!h2_fault_ok(f)) {
        CHECK(f.reason != NULL && f.code != H2_NO_ERROR);
        return;
    }
    CHECK((x.hdr.flags & ~h->flags) == 0);

    /* Exact size: the encoders write no more than the decoded frame held,
     * except PUSH_PROMISE, whose padding the encoder drops. */
    uint8_t *out = malloc(H2_FRAME_HDR_LEN + (size_t)h->length + 1);
    if (!out)
        abort();
    uint8_t *end = encode(&x, out);
    CHECK(end != NULL);
    CHECK((size_t)(end - out) <= H2_FRAME_HDR_LEN + (size_t)h->length);

    h2_frame_hdr h2;
    h2_frame_hdr_parse(out, &h2);
    CHECK((size_t)(end - out) == H2_FRAME_HDR_LEN + (size_t)h2.length);
    f = h2_frame_decode(&h2, out + H2_FRAME_HDR_LEN, &y);
    CHECK(h2_fault_ok(f));
    check_same(&x, &y);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint32_t max = (data[0] & 1) ? H2_MAX_MAX_FRAME_SIZE : H2_MIN_MAX_FRAME_SIZE;
    size_t off = 1;

    while (size - off >= H2_FRAME_HDR_LEN) {
        h2_frame_hdr h;
        h2_frame_hdr_parse(data + off, &h);
        CHECK(h.length <= H2_MAX_MAX_FRAME_SIZE && (h.stream_id >> 31) == 0);
        if (!h2_fault_ok(h2_frame_check_size(&h, max)))
            break;
        off += H2_FRAME_HDR_LEN;
        if (size - off < h.length)
            break; /* incomplete frame: need more input */
        if (h2_frame_type_known(h.type)) {
            /* A private copy, so ASan sees any read past the payload. */
            uint8_t *payload = malloc(h.length ? h.length : 1);
            if (!payload)
                abort();
            memcpy(payload, data + off, h.length);
            one_frame(&h, payload);
            free(payload);
        }
        off += h.length;
    }
    return 0;
}
