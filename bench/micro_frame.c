/* micro_frame.c - the frame codec: 9-byte header parse and write, and full
 * decode of the frames a request/response exchange carries. */
#include <string.h>

#include "h2_frame.h"
#include "micro.h"

#define NHDR 256u /* distinct headers cycled through, so nothing constant-folds */

typedef struct frame_state {
    uint8_t hdrs[NHDR][H2_FRAME_HDR_LEN];
    uint32_t len[NHDR];
    uint8_t type[NHDR], flags[NHDR];
    uint32_t sid[NHDR];
    uint8_t out[NHDR * H2_FRAME_HDR_LEN];
    /* decode_mix: whole frames back to back */
    uint8_t frames[512];
    size_t frame_off[8];
    uint32_t nframes;
} frame_state;

static uint64_t rng(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static uint64_t run_parse(void *arg, uint64_t n)
{
    frame_state *st = arg;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        h2_frame_hdr h;
        h2_frame_hdr_parse(st->hdrs[i & (NHDR - 1)], &h);
        acc += h.length + h.type + h.flags + h.stream_id;
    }
    bench_keep(acc);
    return 0;
}

static uint64_t run_write(void *arg, uint64_t n)
{
    frame_state *st = arg;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t k = (uint32_t)(i & (NHDR - 1));
        h2_frame_hdr_write(st->out + k * H2_FRAME_HDR_LEN, st->len[k], st->type[k], st->flags[k],
                           st->sid[k]);
    }
    bench_keep_ptr(st->out);
    return 0;
}

static uint64_t run_decode(void *arg, uint64_t n)
{
    frame_state *st = arg;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *p = st->frames + st->frame_off[i % st->nframes];
        h2_frame_hdr h;
        h2_frame_hdr_parse(p, &h);
        h2_frame f;
        h2_fault fault = h2_frame_decode(&h, p + H2_FRAME_HDR_LEN, &f);
        acc += (uint64_t)fault.scope + f.hdr.length;
    }
    bench_keep(acc);
    return 0;
}

static void build_mix(frame_state *st)
{
    static const uint8_t block[] = {0x82, 0x84, 0x86, 0x41, 0x8a, 0x08, 0x9d, 0x5c, 0x0b, 0x81,
                                    0x70, 0xdc, 0x78, 0x0f, 0x03, 0x53, 0x03, 0x2a, 0x2f, 0x2a};
    static const uint8_t body[13] = "Hello, World!";
    static const uint8_t ping[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const h2_setting set[3] = {{H2_SET_MAX_CONCURRENT_STREAMS, 100},
                               {H2_SET_INITIAL_WINDOW_SIZE, 1u << 30},
                               {H2_SET_HEADER_TABLE_SIZE, 4096}};
    uint8_t *p = st->frames;
    uint32_t k = 0;
    st->frame_off[k++] = (size_t)(p - st->frames);
    p = h2_frame_write_headers(p, 1, true, true, NULL, block, sizeof block, 0, false);
    st->frame_off[k++] = (size_t)(p - st->frames);
    p = h2_frame_write_data(p, 3, true, body, sizeof body, 0, false);
    st->frame_off[k++] = (size_t)(p - st->frames);
    p = h2_frame_write_window_update(p, 0, 1u << 20);
    st->frame_off[k++] = (size_t)(p - st->frames);
    p = h2_frame_write_settings(p, set, 3);
    st->frame_off[k++] = (size_t)(p - st->frames);
    p = h2_frame_write_ping(p, false, ping);
    st->frame_off[k++] = (size_t)(p - st->frames);
    p = h2_frame_write_rst_stream(p, 5, 8);
    st->nframes = k;
}

void micro_frame(bench *b)
{
    static frame_state st;
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (uint32_t i = 0; i < NHDR; i++) {
        st.len[i] = (uint32_t)(rng(&seed) & 0x3fff);
        st.type[i] = (uint8_t)(rng(&seed) % 10);
        st.flags[i] = (uint8_t)rng(&seed);
        st.sid[i] = (uint32_t)(rng(&seed) & H2_STREAM_ID_MASK);
        h2_frame_hdr_write(st.hdrs[i], st.len[i], st.type[i], st.flags[i], st.sid[i]);
    }
    build_mix(&st);
    bench_opts hdr = {.unit = "header", .bytes_per_op = H2_FRAME_HDR_LEN};
    bench_run(b, "frame/hdr_parse", run_parse, &st, &hdr);
    bench_run(b, "frame/hdr_write", run_write, &st, &hdr);
    bench_opts fr = {.unit = "frame"};
    bench_run(b, "frame/decode_mix", run_decode, &st, &fr);
    bench_note(b, "frame_kinds", st.nframes);
}
