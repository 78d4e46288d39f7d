/* test_h2_frame.c - proto/h2_frame.c: header layout, round trips of every
 * frame type, every validation rule with its code and scope. */
#include <criterion/criterion.h>
#include <string.h>

#include "h2_frame.h"

/* A raw 9-octet frame header, for hand-built frames. */
#define HDR(len, type, flags, sid)                                                                 \
    (uint8_t)((len) >> 16), (uint8_t)((len) >> 8), (uint8_t)(len), (uint8_t)(type),                \
        (uint8_t)(flags), (uint8_t)((uint32_t)(sid) >> 24), (uint8_t)((uint32_t)(sid) >> 16),      \
        (uint8_t)((uint32_t)(sid) >> 8), (uint8_t)(sid)

/* Parse the header at buf and decode the payload that follows it. */
static h2_fault decode_buf(const uint8_t *buf, h2_frame *fr)
{
    h2_frame_hdr h;
    h2_frame_hdr_parse(buf, &h);
    return h2_frame_decode(&h, buf + H2_FRAME_HDR_LEN, fr);
}

/* Decode a frame written into buf up to end; it must decode cleanly and
 * its header length must match what was written. */
static void decode_ok(const uint8_t *buf, const uint8_t *end, h2_frame *fr)
{
    h2_fault f = decode_buf(buf, fr);
    cr_assert(h2_fault_ok(f), "unexpected fault: %s", f.reason);
    cr_assert_eq(fr->hdr.length + H2_FRAME_HDR_LEN, (uint32_t)(end - buf));
}

/* --- Header ------------------------------------------------------------------ */

Test(frame_hdr, bit_layout)
{
    uint8_t b[9];
    uint8_t *end = h2_frame_hdr_write(b, 0xabcdef, 0x42, 0x99, 0x80000005u);
    const uint8_t want[9] = {0xab, 0xcd, 0xef, 0x42, 0x99, 0x00, 0x00, 0x00, 0x05};

    cr_assert_eq(end, b + 9);
    cr_assert_arr_eq(b, want, 9, "length is 24 bits big-endian; R is sent as 0");

    const uint8_t in[9] = {0xff, 0xff, 0xff, 0x01, 0x25, 0xff, 0xff, 0xff, 0xff};
    h2_frame_hdr h;
    h2_frame_hdr_parse(in, &h);
    cr_assert_eq(h.length, 0xffffffu);
    cr_assert_eq(h.type, 0x01);
    cr_assert_eq(h.flags, 0x25);
    cr_assert_eq(h.stream_id, 0x7fffffffu, "reserved bit masked");
}

Test(frame_hdr, type_known)
{
    for (unsigned t = 0; t < 256; t++) {
        bool want = t <= 0x9 || t == 0x10;
        cr_expect_eq(h2_frame_type_known((uint8_t)t), want, "type 0x%x", t);
    }
}

Test(frame_hdr, check_size)
{
    h2_frame_hdr h = {16384, H2_FT_DATA, 0, 1};
    cr_expect(h2_frame_check_size(&h, 16384).scope == H2_SCOPE_NONE);
    h.length = 16385;
    h2_fault f = h2_frame_check_size(&h, 16384);
    cr_expect_eq(f.code, H2_FRAME_SIZE_ERROR);
    cr_expect_eq(f.scope, H2_SCOPE_CONN);
    cr_expect_not_null(f.reason);
    cr_expect(h2_fault_ok(h2_frame_check_size(&h, H2_MAX_MAX_FRAME_SIZE)));
    h.length = H2_MAX_MAX_FRAME_SIZE;
    cr_expect(h2_fault_ok(h2_frame_check_size(&h, H2_MAX_MAX_FRAME_SIZE)));
}

/* --- Round trips ---------------------------------------------------------------- */

static const uint8_t BODY[] = "hello, frame";
#define BODY_LEN ((uint32_t)sizeof BODY - 1)

Test(roundtrip, data)
{
    static const struct {
        bool end_stream, padded;
        uint8_t pad;
    } cases[] = {
        {false, false, 0}, {true, false, 0}, {false, true, 0}, {true, true, 7}, {false, true, 255}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[512];
        h2_frame fr;
        uint8_t *end = h2_frame_write_data(buf, 3, cases[i].end_stream, BODY, BODY_LEN,
                                           cases[i].pad, cases[i].padded);
        decode_ok(buf, end, &fr);
        cr_expect_eq(fr.hdr.type, H2_FT_DATA);
        cr_expect_eq(fr.hdr.stream_id, 3u);
        cr_expect_eq(!!(fr.hdr.flags & H2_FLAG_END_STREAM), cases[i].end_stream, "case %zu", i);
        cr_expect_eq(!!(fr.hdr.flags & H2_FLAG_PADDED), cases[i].padded, "case %zu", i);
        cr_expect_eq(fr.u.data.len, BODY_LEN);
        cr_expect_arr_eq(fr.u.data.data, BODY, BODY_LEN);
    }
}

Test(roundtrip, data_empty)
{
    uint8_t buf[16];
    h2_frame fr;
    uint8_t *end = h2_frame_write_data(buf, 1, true, NULL, 0, 0, false);
    decode_ok(buf, end, &fr);
    cr_expect_eq(fr.hdr.length, 0u);
    cr_expect_eq(fr.u.data.len, 0u);
}

Test(roundtrip, headers)
{
    const h2_priority prio = {5, 200, true};
    static const struct {
        bool end_stream, end_headers, with_prio, padded;
        uint8_t pad;
    } cases[] = {{false, true, false, false, 0},
                 {true, false, true, false, 0},
                 {true, true, false, true, 3},
                 {false, true, true, true, 10},
                 {true, true, true, true, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[512];
        h2_frame fr;
        uint8_t *end = h2_frame_write_headers(buf, 7, cases[i].end_stream, cases[i].end_headers,
                                              cases[i].with_prio ? &prio : NULL, BODY, BODY_LEN,
                                              cases[i].pad, cases[i].padded);
        decode_ok(buf, end, &fr);
        cr_expect_eq(fr.hdr.type, H2_FT_HEADERS);
        cr_expect_eq(fr.hdr.stream_id, 7u);
        cr_expect_eq(!!(fr.hdr.flags & H2_FLAG_END_STREAM), cases[i].end_stream, "case %zu", i);
        cr_expect_eq(!!(fr.hdr.flags & H2_FLAG_END_HEADERS), cases[i].end_headers);
        cr_expect_eq(!!(fr.hdr.flags & H2_FLAG_PADDED), cases[i].padded);
        cr_expect_eq(fr.u.headers.has_priority, cases[i].with_prio);
        cr_expect_eq(fr.u.headers.block_len, BODY_LEN, "case %zu", i);
        cr_expect_arr_eq(fr.u.headers.block, BODY, BODY_LEN);
        if (cases[i].with_prio) {
            cr_expect_eq(fr.u.headers.priority.dependency, 5u);
            cr_expect_eq(fr.u.headers.priority.weight, 200);
            cr_expect(fr.u.headers.priority.exclusive);
        }
    }
}

Test(roundtrip, priority)
{
    const h2_priority in[] = {{0, 15, false}, {0x7fffffff, 255, true}, {1, 0, false}};
    for (size_t i = 0; i < 3; i++) {
        uint8_t buf[32];
        h2_frame fr;
        uint8_t *end = h2_frame_write_priority(buf, 9, &in[i]);
        decode_ok(buf, end, &fr);
        cr_expect_eq(fr.hdr.length, 5u);
        cr_expect_eq(fr.u.priority.dependency, in[i].dependency);
        cr_expect_eq(fr.u.priority.weight, in[i].weight);
        cr_expect_eq(fr.u.priority.exclusive, in[i].exclusive);
    }
}

Test(roundtrip, rst_stream)
{
    uint8_t buf[32];
    h2_frame fr;
    uint8_t *end = h2_frame_write_rst_stream(buf, 11, H2_CANCEL);
    decode_ok(buf, end, &fr);
    cr_expect_eq(fr.hdr.stream_id, 11u);
    cr_expect_eq(fr.u.rst_code, (uint32_t)H2_CANCEL);

    end = h2_frame_write_rst_stream(buf, 11, 0xdeadbeef); /* unknown codes pass */
    decode_ok(buf, end, &fr);
    cr_expect_eq(fr.u.rst_code, 0xdeadbeefu);
}

Test(roundtrip, settings_and_iteration)
{
    const h2_setting in[] = {
        {H2_SET_HEADER_TABLE_SIZE, 0xffffffffu},
        {H2_SET_ENABLE_PUSH, 0},
        {H2_SET_MAX_CONCURRENT_STREAMS, 100},
        {H2_SET_INITIAL_WINDOW_SIZE, H2_MAX_WINDOW},
        {H2_SET_MAX_FRAME_SIZE, 16777215},
        {H2_SET_MAX_HEADER_LIST_SIZE, 65536},
        {H2_SET_ENABLE_CONNECT_PROTOCOL, 1},
        {H2_SET_NO_RFC7540_PRIORITIES, 1},
        {0xabcd, 0x12345678}, /* unknown: ignored, not an error */
    };
    const uint32_t n = sizeof in / sizeof in[0];
    uint8_t buf[128];
    h2_frame fr;
    uint8_t *end = h2_frame_write_settings(buf, in, n);

    decode_ok(buf, end, &fr);
    cr_expect_eq(fr.hdr.length, n * 6);
    cr_expect_eq(fr.hdr.stream_id, 0u);
    cr_expect_eq(fr.hdr.flags, 0);
    cr_assert_eq(fr.u.settings.n, n);
    for (uint32_t i = 0; i < n; i++) {
        h2_setting s = h2_settings_get(fr.u.settings.entries, i);
        cr_expect_eq(s.id, in[i].id, "entry %u", i);
        cr_expect_eq(s.value, in[i].value, "entry %u", i);
    }

    end = h2_frame_write_settings(buf, NULL, 0); /* empty SETTINGS is valid */
    decode_ok(buf, end, &fr);
    cr_expect_eq(fr.u.settings.n, 0u);
}

Test(roundtrip, settings_ack)
{
    uint8_t buf[16];
    h2_frame fr;
    uint8_t *end = h2_frame_write_settings_ack(buf);
    decode_ok(buf, end, &fr);
    cr_expect_eq(fr.hdr.flags, H2_FLAG_ACK);
    cr_expect_eq(fr.u.settings.n, 0u);
}

Test(roundtrip, push_promise)
{
    uint8_t buf[64];
    h2_frame fr;
    uint8_t *end = h2_frame_write_push_promise(buf, 1, true, 0x80000002u, BODY, BODY_LEN);
    decode_ok(buf, end, &fr);
    cr_expect_eq(fr.hdr.flags, H2_FLAG_END_HEADERS);
    cr_expect_eq(fr.u.push_promise.promised_id, 2u, "R bit written as 0");
    cr_expect_eq(fr.u.push_promise.block_len, BODY_LEN);
    cr_expect_arr_eq(fr.u.push_promise.block, BODY, BODY_LEN);
}

Test(roundtrip, ping)
{
    const uint8_t op[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (int ack = 0; ack < 2; ack++) {
        uint8_t buf[32];
        h2_frame fr;
        uint8_t *end = h2_frame_write_ping(buf, ack, op);
        decode_ok(buf, end, &fr);
        cr_expect_eq(fr.hdr.flags, ack ? H2_FLAG_ACK : 0);
        cr_expect_arr_eq(fr.u.ping, op, 8);
    }
}

Test(roundtrip, goaway)
{
    static const uint8_t dbg[] = "too many resets";
    uint8_t buf[64];
    h2_frame fr;
    uint8_t *end =
        h2_frame_write_goaway(buf, 0x7fffffff, H2_ENHANCE_YOUR_CALM, dbg, (uint32_t)sizeof dbg - 1);
    decode_ok(buf, end, &fr);
    cr_expect_eq(fr.u.goaway.last_stream_id, 0x7fffffffu);
    cr_expect_eq(fr.u.goaway.code, (uint32_t)H2_ENHANCE_YOUR_CALM);
    cr_expect_eq(fr.u.goaway.debug_len, sizeof dbg - 1);
    cr_expect_arr_eq(fr.u.goaway.debug, dbg, sizeof dbg - 1);

    end = h2_frame_write_goaway(buf, 0, H2_NO_ERROR, NULL, 0);
    decode_ok(buf, end, &fr);
    cr_expect_eq(fr.u.goaway.debug_len, 0u);
}

Test(roundtrip, window_update)
{
    const uint32_t sids[] = {0, 1, 0x7fffffff};
    for (size_t i = 0; i < 3; i++) {
        uint8_t buf[32];
        h2_frame fr;
        uint8_t *end = h2_frame_write_window_update(buf, sids[i], H2_MAX_WINDOW);
        decode_ok(buf, end, &fr);
        cr_expect_eq(fr.hdr.stream_id, sids[i]);
        cr_expect_eq(fr.u.window_increment, H2_MAX_WINDOW);
    }
}

Test(roundtrip, continuation)
{
    uint8_t buf[64];
    h2_frame fr;
    uint8_t *end = h2_frame_write_continuation(buf, 5, false, BODY, BODY_LEN);
    decode_ok(buf, end, &fr);
    cr_expect_eq(fr.hdr.flags, 0);
    cr_expect_eq(fr.u.continuation.block_len, BODY_LEN);
    cr_expect_arr_eq(fr.u.continuation.block, BODY, BODY_LEN);
    end = h2_frame_write_continuation(buf, 5, true, NULL, 0); /* empty is a frame rule, not ours */
    decode_ok(buf, end, &fr);
    cr_expect_eq(fr.hdr.flags, H2_FLAG_END_HEADERS);
}

Test(roundtrip, priority_update)
{
    static const uint8_t field[] = "u=5, i";
    uint8_t buf[64];
    h2_frame fr;
    uint8_t *end = h2_frame_write_priority_update(buf, 13, field, (uint32_t)sizeof field - 1);
    decode_ok(buf, end, &fr);
    cr_expect_eq(fr.hdr.type, H2_FT_PRIORITY_UPDATE);
    cr_expect_eq(fr.hdr.stream_id, 0u);
    cr_expect_eq(fr.u.priority_update.prioritized_id, 13u);
    cr_expect_eq(fr.u.priority_update.field_len, sizeof field - 1);
    cr_expect_arr_eq(fr.u.priority_update.field, field, sizeof field - 1);

    end = h2_frame_write_priority_update(buf, 13, NULL, 0); /* empty value: defaults */
    decode_ok(buf, end, &fr);
    cr_expect_eq(fr.u.priority_update.field_len, 0u);
}

/* --- Hand-built frames ------------------------------------------------------------ */

Test(decode, padded_data)
{
    /* Pad Length 2, "abc", 2 padding octets (non-zero: not checked). */
    const uint8_t b[] = {
        HDR(6, H2_FT_DATA, H2_FLAG_PADDED | H2_FLAG_END_STREAM, 1), 2, 'a', 'b', 'c', 0xee, 0xee};
    h2_frame fr;
    cr_assert(h2_fault_ok(decode_buf(b, &fr)));
    cr_expect_eq(fr.hdr.flags, H2_FLAG_PADDED | H2_FLAG_END_STREAM);
    cr_expect_eq(fr.u.data.len, 3u);
    cr_expect_arr_eq(fr.u.data.data, "abc", 3);

    /* Padding filling the whole payload: empty data, valid. */
    const uint8_t b3[] = {HDR(4, H2_FT_DATA, H2_FLAG_PADDED, 1), 3, 0, 0, 0};
    cr_assert(h2_fault_ok(decode_buf(b3, &fr)));
    cr_expect_eq(fr.u.data.len, 0u);
}

Test(decode, padded_headers_with_priority)
{
    const uint8_t b[] = {HDR(1 + 5 + 3 + 2, H2_FT_HEADERS,
                             H2_FLAG_PADDED | H2_FLAG_PRIORITY | H2_FLAG_END_HEADERS, 3),
                         2,
                         0x80,
                         0,
                         0,
                         1,
                         41,
                         0x82,
                         0x86,
                         0x84,
                         0,
                         0};
    h2_frame fr;
    cr_assert(h2_fault_ok(decode_buf(b, &fr)));
    cr_expect(fr.u.headers.has_priority);
    cr_expect_eq(fr.u.headers.priority.dependency, 1u);
    cr_expect(fr.u.headers.priority.exclusive);
    cr_expect_eq(fr.u.headers.priority.weight, 41);
    cr_expect_eq(fr.u.headers.block_len, 3u);
    cr_expect_arr_eq(fr.u.headers.block, ((const uint8_t[]){0x82, 0x86, 0x84}), 3);

    /* Padding consuming everything after the priority fields: empty block. */
    const uint8_t b2[] = {HDR(1 + 5 + 2, H2_FT_HEADERS, H2_FLAG_PADDED | H2_FLAG_PRIORITY, 3),
                          2,
                          0,
                          0,
                          0,
                          0,
                          16,
                          0,
                          0};
    cr_assert(h2_fault_ok(decode_buf(b2, &fr)));
    cr_expect_eq(fr.u.headers.block_len, 0u);
}

Test(decode, undefined_flags_cleared)
{
    static const struct {
        uint8_t bytes[32];
        uint8_t want;
    } cases[] = {
        {{HDR(1, H2_FT_DATA, 0xff, 1), 0}, H2_FLAG_END_STREAM | H2_FLAG_PADDED},
        {{HDR(6, H2_FT_HEADERS, 0xff, 1), 0, 0, 0, 0, 0, 16},
         H2_FLAG_END_STREAM | H2_FLAG_END_HEADERS | H2_FLAG_PADDED | H2_FLAG_PRIORITY},
        {{HDR(5, H2_FT_PRIORITY, 0xff, 1), 0, 0, 0, 0, 16}, 0},
        {{HDR(4, H2_FT_RST_STREAM, 0xff, 1), 0, 0, 0, 8}, 0},
        {{HDR(0, H2_FT_SETTINGS, 0xff, 0)}, H2_FLAG_ACK},
        {{HDR(5, H2_FT_PUSH_PROMISE, 0xff, 1), 0, 0, 0, 0, 2},
         H2_FLAG_END_HEADERS | H2_FLAG_PADDED},
        {{HDR(8, H2_FT_PING, 0xfe, 0)}, 0},
        {{HDR(8, H2_FT_GOAWAY, 0xff, 0)}, 0},
        {{HDR(4, H2_FT_WINDOW_UPDATE, 0xff, 0), 0, 0, 0, 1}, 0},
        {{HDR(0, H2_FT_CONTINUATION, 0xff, 1)}, H2_FLAG_END_HEADERS},
        {{HDR(4, H2_FT_PRIORITY_UPDATE, 0xff, 0), 0, 0, 0, 1}, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        h2_frame fr;
        h2_fault f = decode_buf(cases[i].bytes, &fr);
        cr_expect(h2_fault_ok(f), "case %zu: %s", i, f.reason);
        cr_expect_eq(fr.hdr.flags, cases[i].want, "case %zu", i);
    }
}

Test(decode, reserved_bits_masked)
{
    h2_frame fr;
    const uint8_t prio[] = {HDR(5, H2_FT_PRIORITY, 0, 0x80000003u), 0xff, 0xff, 0xff, 0xff, 1};
    cr_assert(h2_fault_ok(decode_buf(prio, &fr)));
    cr_expect_eq(fr.hdr.stream_id, 3u);
    cr_expect_eq(fr.u.priority.dependency, 0x7fffffffu);
    cr_expect(fr.u.priority.exclusive);

    const uint8_t wu[] = {HDR(4, H2_FT_WINDOW_UPDATE, 0, 0), 0x80, 0, 0, 1};
    cr_assert(h2_fault_ok(decode_buf(wu, &fr)));
    cr_expect_eq(fr.u.window_increment, 1u);

    const uint8_t ga[] = {HDR(8, H2_FT_GOAWAY, 0, 0), 0x80, 0, 0, 7, 0, 0, 0, 0};
    cr_assert(h2_fault_ok(decode_buf(ga, &fr)));
    cr_expect_eq(fr.u.goaway.last_stream_id, 7u);

    const uint8_t pu[] = {HDR(4, H2_FT_PRIORITY_UPDATE, 0, 0), 0x80, 0, 0, 9};
    cr_assert(h2_fault_ok(decode_buf(pu, &fr)));
    cr_expect_eq(fr.u.priority_update.prioritized_id, 9u);

    /* A stream id given with R set by a caller that skipped the parser. */
    h2_frame_hdr h = {0, H2_FT_SETTINGS, 0, 0x80000000u};
    cr_expect(h2_fault_ok(h2_frame_decode(&h, NULL, &fr)));
    cr_expect_eq(fr.hdr.stream_id, 0u);
}

Test(decode, headers_self_dependency_still_decoded)
{
    const uint8_t b[] = {HDR(5 + 2, H2_FT_HEADERS, H2_FLAG_PRIORITY | H2_FLAG_END_HEADERS, 5),
                         0,
                         0,
                         0,
                         5,
                         16,
                         0x82,
                         0x84};
    h2_frame fr;
    h2_fault f = decode_buf(b, &fr);
    cr_expect_eq(f.code, H2_PROTOCOL_ERROR);
    cr_expect_eq(f.scope, H2_SCOPE_STREAM);
    cr_expect_eq(fr.u.headers.block_len, 2u, "block still set for HPACK");
    cr_expect_eq(fr.u.headers.block, b + 9 + 5);
}

/* --- Every validation failure, with code and scope ------------------------------------ */

typedef struct bad_case {
    const char *what;
    uint8_t bytes[40];
    h2_code code;
    h2_scope scope;
} bad_case;

#define CONN  H2_SCOPE_CONN
#define STRM  H2_SCOPE_STREAM
#define PROTO H2_PROTOCOL_ERROR
#define FSIZE H2_FRAME_SIZE_ERROR

static const bad_case bad[] = {
    /* Stream id rules (§6.x), all PROTOCOL_ERROR on the connection. */
    {"DATA on 0", {HDR(1, H2_FT_DATA, 0, 0), 0}, PROTO, CONN},
    {"DATA on 0 (R set)", {HDR(1, H2_FT_DATA, 0, 0x80000000u), 0}, PROTO, CONN},
    {"HEADERS on 0", {HDR(1, H2_FT_HEADERS, 4, 0), 0x82}, PROTO, CONN},
    {"PRIORITY on 0", {HDR(5, H2_FT_PRIORITY, 0, 0), 0, 0, 0, 1, 0}, PROTO, CONN},
    {"PRIORITY on 0 beats bad length", {HDR(4, H2_FT_PRIORITY, 0, 0), 0, 0, 0, 1}, PROTO, CONN},
    {"RST_STREAM on 0", {HDR(4, H2_FT_RST_STREAM, 0, 0), 0, 0, 0, 8}, PROTO, CONN},
    {"PUSH_PROMISE on 0", {HDR(4, H2_FT_PUSH_PROMISE, 4, 0), 0, 0, 0, 2}, PROTO, CONN},
    {"CONTINUATION on 0", {HDR(0, H2_FT_CONTINUATION, 4, 0)}, PROTO, CONN},
    {"SETTINGS on 1", {HDR(0, H2_FT_SETTINGS, 0, 1)}, PROTO, CONN},
    {"SETTINGS ACK on 1", {HDR(0, H2_FT_SETTINGS, 1, 1)}, PROTO, CONN},
    {"PING on 1", {HDR(8, H2_FT_PING, 0, 1)}, PROTO, CONN},
    {"GOAWAY on 1", {HDR(8, H2_FT_GOAWAY, 0, 1)}, PROTO, CONN},
    {"PRIORITY_UPDATE on 1", {HDR(4, H2_FT_PRIORITY_UPDATE, 0, 1), 0, 0, 0, 1}, PROTO, CONN},

    /* Padding (§6.1, §6.2, §6.6). */
    {"DATA pad = length", {HDR(3, H2_FT_DATA, 8, 1), 3, 0, 0}, PROTO, CONN},
    {"DATA pad > length", {HDR(3, H2_FT_DATA, 8, 1), 200, 0, 0}, PROTO, CONN},
    {"DATA PADDED, empty", {HDR(0, H2_FT_DATA, 8, 1)}, FSIZE, CONN},
    {"HEADERS pad = length", {HDR(2, H2_FT_HEADERS, 8 | 4, 1), 2, 0}, PROTO, CONN},
    {"HEADERS PADDED, empty", {HDR(0, H2_FT_HEADERS, 8 | 4, 1)}, FSIZE, CONN},
    {"HEADERS pad+prio exceed",
     {HDR(7, H2_FT_HEADERS, 8 | 0x20 | 4, 1), 2, 0, 0, 0, 0, 16, 0x82},
     PROTO,
     CONN},
    {"HEADERS pad eats prio",
     {HDR(7, H2_FT_HEADERS, 8 | 0x20, 1), 6, 0, 0, 0, 0, 16, 0},
     PROTO,
     CONN},
    {"HEADERS PRIORITY, 4 octets", {HDR(4, H2_FT_HEADERS, 0x20, 1), 0, 0, 0, 0}, FSIZE, CONN},
    {"HEADERS PADDED|PRIORITY, 5", {HDR(5, H2_FT_HEADERS, 0x28, 1), 0, 0, 0, 0, 0}, FSIZE, CONN},
    {"PUSH_PROMISE too short", {HDR(3, H2_FT_PUSH_PROMISE, 4, 1), 0, 0, 2}, FSIZE, CONN},
    {"PUSH_PROMISE PADDED too short", {HDR(4, H2_FT_PUSH_PROMISE, 8, 1), 0, 0, 0, 2}, FSIZE, CONN},
    {"PUSH_PROMISE pad too long",
     {HDR(6, H2_FT_PUSH_PROMISE, 8, 1), 2, 0, 0, 0, 2, 0},
     PROTO,
     CONN},

    /* Fixed lengths. */
    {"PRIORITY length 4", {HDR(4, H2_FT_PRIORITY, 0, 1), 0, 0, 0, 3}, FSIZE, STRM},
    {"PRIORITY length 6", {HDR(6, H2_FT_PRIORITY, 0, 1), 0, 0, 0, 3, 0, 0}, FSIZE, STRM},
    {"RST_STREAM length 3", {HDR(3, H2_FT_RST_STREAM, 0, 1), 0, 0, 0}, FSIZE, CONN},
    {"RST_STREAM length 5", {HDR(5, H2_FT_RST_STREAM, 0, 1), 0, 0, 0, 0, 0}, FSIZE, CONN},
    {"PING length 7", {HDR(7, H2_FT_PING, 0, 0)}, FSIZE, CONN},
    {"PING length 9", {HDR(9, H2_FT_PING, 0, 0)}, FSIZE, CONN},
    {"PING ACK length 0", {HDR(0, H2_FT_PING, 1, 0)}, FSIZE, CONN},
    {"WINDOW_UPDATE length 3", {HDR(3, H2_FT_WINDOW_UPDATE, 0, 1), 0, 0, 1}, FSIZE, CONN},
    {"WINDOW_UPDATE length 5", {HDR(5, H2_FT_WINDOW_UPDATE, 0, 0), 0, 0, 0, 1, 0}, FSIZE, CONN},
    {"SETTINGS length 5", {HDR(5, H2_FT_SETTINGS, 0, 0), 0, 3, 0, 0, 0}, FSIZE, CONN},
    {"SETTINGS length 7", {HDR(7, H2_FT_SETTINGS, 0, 0), 0, 3, 0, 0, 0, 1, 0}, FSIZE, CONN},
    {"SETTINGS ACK with payload", {HDR(6, H2_FT_SETTINGS, 1, 0), 0, 3, 0, 0, 0, 1}, FSIZE, CONN},
    {"GOAWAY length 7", {HDR(7, H2_FT_GOAWAY, 0, 0)}, FSIZE, CONN},
    {"GOAWAY length 0", {HDR(0, H2_FT_GOAWAY, 0, 0)}, FSIZE, CONN},
    {"PRIORITY_UPDATE length 3", {HDR(3, H2_FT_PRIORITY_UPDATE, 0, 0), 0, 0, 1}, FSIZE, CONN},

    /* Values. */
    {"PRIORITY self-dependency", {HDR(5, H2_FT_PRIORITY, 0, 3), 0, 0, 0, 3, 0}, PROTO, STRM},
    {"PRIORITY self-dependency (E set)",
     {HDR(5, H2_FT_PRIORITY, 0, 3), 0x80, 0, 0, 3, 0},
     PROTO,
     STRM},
    {"HEADERS self-dependency", {HDR(5, H2_FT_HEADERS, 0x20 | 4, 3), 0, 0, 0, 3, 0}, PROTO, STRM},
    {"WINDOW_UPDATE 0 on stream", {HDR(4, H2_FT_WINDOW_UPDATE, 0, 1), 0, 0, 0, 0}, PROTO, STRM},
    {"WINDOW_UPDATE 0 on connection", {HDR(4, H2_FT_WINDOW_UPDATE, 0, 0), 0, 0, 0, 0}, PROTO, CONN},
    {"WINDOW_UPDATE only R set", {HDR(4, H2_FT_WINDOW_UPDATE, 0, 0), 0x80, 0, 0, 0}, PROTO, CONN},
    {"PRIORITY_UPDATE prioritized 0",
     {HDR(4, H2_FT_PRIORITY_UPDATE, 0, 0), 0, 0, 0, 0},
     PROTO,
     CONN},
    {"PRIORITY_UPDATE prioritized R only",
     {HDR(5, H2_FT_PRIORITY_UPDATE, 0, 0), 0x80, 0, 0, 0, 'u'},
     PROTO,
     CONN},

    /* SETTINGS values (§6.5.2, RFC 8441 §3, RFC 9218 §2.1). */
    {"ENABLE_PUSH 2", {HDR(6, H2_FT_SETTINGS, 0, 0), 0, 2, 0, 0, 0, 2}, PROTO, CONN},
    {"INITIAL_WINDOW_SIZE 2^31",
     {HDR(6, H2_FT_SETTINGS, 0, 0), 0, 4, 0x80, 0, 0, 0},
     H2_FLOW_CONTROL_ERROR,
     CONN},
    {"MAX_FRAME_SIZE 16383", {HDR(6, H2_FT_SETTINGS, 0, 0), 0, 5, 0, 0, 0x3f, 0xff}, PROTO, CONN},
    {"MAX_FRAME_SIZE 2^24", {HDR(6, H2_FT_SETTINGS, 0, 0), 0, 5, 1, 0, 0, 0}, PROTO, CONN},
    {"MAX_FRAME_SIZE 0", {HDR(6, H2_FT_SETTINGS, 0, 0), 0, 5, 0, 0, 0, 0}, PROTO, CONN},
    {"ENABLE_CONNECT_PROTOCOL 2", {HDR(6, H2_FT_SETTINGS, 0, 0), 0, 8, 0, 0, 0, 2}, PROTO, CONN},
    {"NO_RFC7540_PRIORITIES 2", {HDR(6, H2_FT_SETTINGS, 0, 0), 0, 9, 0, 0, 0, 2}, PROTO, CONN},
    {"bad value in 2nd entry",
     {HDR(12, H2_FT_SETTINGS, 0, 0), 0, 3, 0, 0, 0, 9, 0, 2, 0xff, 0xff, 0xff, 0xff},
     PROTO,
     CONN},

    /* Caller bug. */
    {"unknown type", {HDR(0, 0x0a, 0, 0)}, H2_INTERNAL_ERROR, CONN},
};

Test(decode, every_failure)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        h2_frame fr;
        h2_fault f = decode_buf(bad[i].bytes, &fr);
        cr_expect_eq(f.code, bad[i].code, "%s: code %s", bad[i].what, h2_code_name(f.code));
        cr_expect_eq(f.scope, bad[i].scope, "%s: scope %d", bad[i].what, (int)f.scope);
        cr_expect(f.reason != NULL && f.reason[0] != '\0', "%s: reason", bad[i].what);
    }
}

Test(settings, check_boundaries)
{
    static const struct {
        uint16_t id;
        uint32_t value;
        h2_code code; /* H2_NO_ERROR: accepted */
    } cases[] = {
        {H2_SET_HEADER_TABLE_SIZE, 0xffffffffu, H2_NO_ERROR},
        {H2_SET_ENABLE_PUSH, 0, H2_NO_ERROR},
        {H2_SET_ENABLE_PUSH, 1, H2_NO_ERROR},
        {H2_SET_ENABLE_PUSH, 0xffffffffu, H2_PROTOCOL_ERROR},
        {H2_SET_MAX_CONCURRENT_STREAMS, 0, H2_NO_ERROR},
        {H2_SET_INITIAL_WINDOW_SIZE, 0, H2_NO_ERROR},
        {H2_SET_INITIAL_WINDOW_SIZE, H2_MAX_WINDOW, H2_NO_ERROR},
        {H2_SET_INITIAL_WINDOW_SIZE, H2_MAX_WINDOW + 1, H2_FLOW_CONTROL_ERROR},
        {H2_SET_MAX_FRAME_SIZE, H2_MIN_MAX_FRAME_SIZE, H2_NO_ERROR},
        {H2_SET_MAX_FRAME_SIZE, H2_MAX_MAX_FRAME_SIZE, H2_NO_ERROR},
        {H2_SET_MAX_FRAME_SIZE, H2_MIN_MAX_FRAME_SIZE - 1, H2_PROTOCOL_ERROR},
        {H2_SET_MAX_FRAME_SIZE, H2_MAX_MAX_FRAME_SIZE + 1, H2_PROTOCOL_ERROR},
        {H2_SET_MAX_HEADER_LIST_SIZE, 0, H2_NO_ERROR},
        {H2_SET_ENABLE_CONNECT_PROTOCOL, 1, H2_NO_ERROR},
        {H2_SET_ENABLE_CONNECT_PROTOCOL, 2, H2_PROTOCOL_ERROR},
        {H2_SET_NO_RFC7540_PRIORITIES, 1, H2_NO_ERROR},
        {H2_SET_NO_RFC7540_PRIORITIES, 7, H2_PROTOCOL_ERROR},
        {0x0, 0xffffffffu, H2_NO_ERROR},
        {0x7, 0xffffffffu, H2_NO_ERROR},
        {0xffff, 0xffffffffu, H2_NO_ERROR},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        h2_fault f = h2_settings_check(cases[i].id, cases[i].value);
        cr_expect_eq(f.code, cases[i].code, "id %u value %u", cases[i].id, cases[i].value);
        cr_expect_eq(f.scope, cases[i].code == H2_NO_ERROR ? H2_SCOPE_NONE : H2_SCOPE_CONN,
                     "id %u value %u", cases[i].id, cases[i].value);
    }
}
