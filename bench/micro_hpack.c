/* micro_hpack.c - HPACK: decoding typical request header blocks, encoding
 * typical responses, Huffman throughput.
 *
 * Request sets are encoded once with a client hpack_encoder to get real wire
 * bytes.  Two blocks per set:
 *   <set>      the steady state: the same request again on a warm
 *              connection (the encoder indexed everything the first time,
 *              so the block is mostly indexed representations);
 *   <set>_new  the first block of a connection (literals with incremental
 *              indexing), decoded again and again on a warm table, so every
 *              iteration inserts (and evicts) entries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hpack.h"
#include "micro.h"

typedef struct kv {
    const char *name, *value;
} kv;

static const kv set_h2load[] = {
    {":method", "GET"},
    {":path", "/"},
    {":scheme", "http"},
    {":authority", "127.0.0.1:8080"},
    {"user-agent", "h2load/1.52.0"},
};

static const kv set_curl[] = {
    {":method", "GET"},       {":scheme", "https"},          {":authority", "www.example.com"},
    {":path", "/index.html"}, {"user-agent", "curl/7.88.1"}, {"accept", "*/*"},
};

/* A browser navigation with analytics and session cookies: ~1.6 KB. */
static const kv set_browser[] = {
    {":method", "GET"},
    {":authority", "www.example.com"},
    {":scheme", "https"},
    {":path", "/articles/2024/06/thread-per-core-servers?utm_source=newsletter&utm_medium=email"},
    {"sec-ch-ua", "\"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\""},
    {"sec-ch-ua-mobile", "?0"},
    {"sec-ch-ua-platform", "\"Linux\""},
    {"upgrade-insecure-requests", "1"},
    {"user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/124.0.0.0 Safari/537.36"},
    {"accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
               "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"},
    {"sec-fetch-site", "same-origin"},
    {"sec-fetch-mode", "navigate"},
    {"sec-fetch-user", "?1"},
    {"sec-fetch-dest", "document"},
    {"referer", "https://www.example.com/articles/2024/06/"},
    {"accept-encoding", "gzip, deflate, br, zstd"},
    {"accept-language", "en-US,en;q=0.9,fr;q=0.8,de;q=0.7"},
    {"cookie", "_ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1717000000; "
               "_gat_UA-1234567-1=1; OptanonAlertBoxClosed=2024-05-30T10:11:12.345Z; "
               "OptanonConsent=isGpcEnabled=0&datestamp=Thu+Jun+06+2024+09%3A15%3A02+GMT%2B0200"
               "&version=202402.1.0&browserGpcFlag=0&isIABGlobal=false&hosts=&consentId="
               "5b1c7e2a-1f0d-4c39-9a77-0b3f5d2e8c61&interactionCount=1&landingPath=NotLandingPage"
               "&groups=C0001%3A1%2CC0002%3A1%2CC0003%3A1%2CC0004%3A0"},
    {"cookie", "session_id=8f14e45fceea167a5a36dedd4bea2543c9f0f895fb98ab9159f51fd0297e236d; "
               "csrftoken=Jk2l3m4N5o6P7q8R9s0T1u2V3w4X5y6Z7a8B9c0D1e2F3g4H5i6J; "
               "theme=dark; lang=en-US; tz=Europe%2FParis"},
    {"cookie", "__cf_bm=Xy1zAbCdEfGhIjKlMnOpQrStUvWxYz0123456789-1717660000-1.0.1.1-"
               "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567; "
               "_cfuvid=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-1717660000123-0.0.1.1-604800000"},
    {"priority", "u=0, i"},
};

/* Responses a server sends. */
static const kv resp_hello[] = {
    {":status", "200"},
    {"content-type", "text/plain"},
    {"content-length", "13"},
};

static const kv resp_typical[] = {
    {":status", "200"},
    {"date", "Thu, 06 Jun 2024 09:15:02 GMT"},
    {"content-type", "text/html; charset=utf-8"},
    {"content-length", "51234"},
    {"cache-control", "public, max-age=60"},
    {"server", "spindle"},
    {"etag", "\"5e1b-62a1f0c3d2e40\""},
    {"vary", "accept-encoding"},
    {"x-content-type-options", "nosniff"},
};

#define MAX_FIELDS       32
#define TYPICAL_VARIANTS 64

static size_t to_fields(const kv *s, size_t n, hpack_field *f)
{
    for (size_t i = 0; i < n; i++) {
        f[i] = (hpack_field){.name = (const uint8_t *)s[i].name,
                             .value = (const uint8_t *)s[i].value,
                             .name_len = (uint32_t)strlen(s[i].name),
                             .value_len = (uint32_t)strlen(s[i].value)};
    }
    return n;
}

static size_t list_size(const hpack_field *f, size_t n)
{
    size_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += f[i].name_len + f[i].value_len + HPACK_ENTRY_OVERHEAD;
    return s;
}

/* --- Decode ------------------------------------------------------------------ */

typedef struct dec_state {
    hpack_decoder dec;
    hpack_field out[128];
    uint8_t buf[65536];
    uint8_t first[16384], steady[16384];
    size_t first_len, steady_len;
    const uint8_t *block; /* the one the loop decodes */
    size_t block_len;
    uint32_t nfields;
    size_t list;
    bool failed;
} dec_state;

static void sink_init(dec_state *st, hpack_sink *s)
{
    memset(s, 0, sizeof *s);
    s->fields = st->out;
    s->fields_cap = 128;
    s->buf = st->buf;
    s->buf_cap = sizeof st->buf;
    s->soft_list_size = 65536;
    s->hard_list_size = 4 * 65536;
    s->soft_fields = 100;
    s->hard_fields = 1000;
}

static uint64_t run_decode(void *arg, uint64_t n)
{
    dec_state *st = arg;
    hpack_sink s;
    sink_init(st, &s);
    for (uint64_t i = 0; i < n; i++) {
        if (hpack_decode_block(&st->dec, st->block, st->block_len, &s) != H2_OK || s.overflow)
            st->failed = true;
    }
    bench_keep(s.count);
    return 0;
}

static bool dec_setup(dec_state *st, const kv *set, size_t n)
{
    memset(st, 0, sizeof *st);
    hpack_field f[MAX_FIELDS];
    to_fields(set, n, f);
    st->nfields = (uint32_t)n;
    st->list = list_size(f, n);
    hpack_encoder enc;
    hpack_encoder_init(&enc, 4096, NULL);
    if (hpack_encode_bound(f, n) > sizeof st->first)
        return false;
    if (hpack_encode_block(&enc, f, n, st->first, sizeof st->first, &st->first_len) != H2_OK ||
        hpack_encode_block(&enc, f, n, st->steady, sizeof st->steady, &st->steady_len) != H2_OK)
        return false;
    hpack_encoder_free(&enc);
    /* Warm the decoder exactly as a peer's first block would. */
    hpack_decoder_init(&st->dec, 4096, NULL);
    hpack_sink s;
    sink_init(st, &s);
    if (hpack_decode_block(&st->dec, st->first, st->first_len, &s) != H2_OK || s.count != n)
        return false;
    return true;
}

static void bench_decode_set(bench *b, const char *name, const char *name_new, const kv *set,
                             size_t n)
{
    if (!bench_want(b, name) && !bench_want(b, name_new))
        return;
    dec_state *st = malloc(sizeof *st);
    if (!st || !dec_setup(st, set, n)) {
        bench_skip(b, name, "setup failed (encode or first decode)");
        free(st);
        return;
    }
    bench_opts o = {.unit = "block"};
    st->block = st->steady;
    st->block_len = st->steady_len;
    o.bytes_per_op = (double)st->block_len;
    if (bench_run(b, name, run_decode, st, &o)) {
        bench_note(b, "wire_bytes", (double)st->steady_len);
        bench_note(b, "fields", st->nfields);
        bench_note(b, "list_bytes", (double)st->list);
        if (st->failed)
            bench_note(b, "DECODE_FAILED", 1);
    }
    st->block = st->first;
    st->block_len = st->first_len;
    o.bytes_per_op = (double)st->block_len;
    if (bench_run(b, name_new, run_decode, st, &o)) {
        bench_note(b, "wire_bytes", (double)st->first_len);
        bench_note(b, "fields", st->nfields);
        bench_note(b, "list_bytes", (double)st->list);
        if (st->failed)
            bench_note(b, "DECODE_FAILED", 1);
    }
    hpack_decoder_free(&st->dec);
    free(st);
}

/* --- Encode ------------------------------------------------------------------ */

typedef struct enc_state {
    hpack_encoder enc;
    hpack_field f[TYPICAL_VARIANTS][MAX_FIELDS];
    size_t n;
    uint32_t variants; /* 1: identical every time; >1: content-length and date vary */
    char vals[TYPICAL_VARIANTS][2][40];
    uint8_t out[8192];
    size_t last_len, total_len;
    uint64_t total_n;
    bool failed;
} enc_state;

static uint64_t run_encode(void *arg, uint64_t n)
{
    enc_state *st = arg;
    size_t len = 0;
    for (uint64_t i = 0; i < n; i++) {
        const hpack_field *f = st->f[i % st->variants];
        if (hpack_encode_block(&st->enc, f, st->n, st->out, sizeof st->out, &len) != H2_OK)
            st->failed = true;
        st->total_len += len;
    }
    st->total_n += n;
    st->last_len = len;
    bench_keep_ptr(st->out);
    return 0;
}

static void bench_encode_set(bench *b, const char *name, const kv *set, size_t n, uint32_t variants)
{
    if (!bench_want(b, name))
        return;
    enc_state *st = calloc(1, sizeof *st);
    if (!st)
        return;
    st->n = n;
    st->variants = variants;
    hpack_encoder_init(&st->enc, 4096, NULL);
    for (uint32_t v = 0; v < variants; v++) {
        to_fields(set, n, st->f[v]);
        if (variants == 1)
            continue;
        /* Vary content-length and date the way consecutive responses do. */
        for (size_t i = 0; i < n; i++) {
            hpack_field *f = &st->f[v][i];
            char *dst = NULL;
            if (f->name_len == 14 && !memcmp(f->name, "content-length", 14)) {
                dst = st->vals[v][0];
                snprintf(dst, 40, "%u", 51234u + v * 17u);
            } else if (f->name_len == 4 && !memcmp(f->name, "date", 4)) {
                dst = st->vals[v][1];
                snprintf(dst, 40, "Thu, 06 Jun 2024 09:15:%02u GMT", v % 60u);
            }
            if (dst) {
                f->value = (const uint8_t *)dst;
                f->value_len = (uint32_t)strlen(dst);
            }
        }
    }
    /* Prime the table as the first response of a connection would. */
    size_t len;
    hpack_encode_block(&st->enc, st->f[0], n, st->out, sizeof st->out, &len);
    bench_opts o = {.unit = "block"};
    if (bench_run(b, name, run_encode, st, &o)) {
        bench_note(b, "wire_bytes_avg",
                   st->total_n ? (double)st->total_len / (double)st->total_n : 0);
        bench_note(b, "fields", (double)n);
        if (st->failed)
            bench_note(b, "ENCODE_FAILED", 1);
    }
    hpack_encoder_free(&st->enc);
    free(st);
}

/* --- Huffman ----------------------------------------------------------------- */

typedef struct huff_state {
    uint8_t plain[4096];
    size_t plain_len;
    uint8_t coded[4096];
    size_t coded_len;
    uint8_t out[8192];
    bool failed;
} huff_state;

static uint64_t run_huff_encode(void *arg, uint64_t n)
{
    huff_state *st = arg;
    for (uint64_t i = 0; i < n; i++) {
        uint8_t *e = hpack_huff_encode(st->out, st->plain, st->plain_len);
        bench_keep_ptr(e);
    }
    return 0;
}

static uint64_t run_huff_len(void *arg, uint64_t n)
{
    huff_state *st = arg;
    size_t acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        acc += hpack_huff_encoded_len(st->plain, st->plain_len);
        bench_keep_ptr(st->plain);
    }
    bench_keep(acc);
    return 0;
}

static uint64_t run_huff_decode(void *arg, uint64_t n)
{
    huff_state *st = arg;
    size_t len = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (hpack_huff_decode(st->coded, st->coded_len, st->out, sizeof st->out, &len) != H2_OK)
            st->failed = true;
    }
    bench_keep(len);
    return 0;
}

static void bench_huffman(bench *b)
{
    if (!bench_want(b, "hpack/huff_encode") && !bench_want(b, "hpack/huff_decode") &&
        !bench_want(b, "hpack/huff_encoded_len"))
        return;
    huff_state *st = calloc(1, sizeof *st);
    if (!st)
        return;
    /* Typical header text: the browser set's names and values. */
    size_t nset = sizeof set_browser / sizeof set_browser[0];
    for (size_t i = 0; i < nset; i++) {
        for (int k = 0; k < 2; k++) {
            const char *s = k ? set_browser[i].value : set_browser[i].name;
            size_t l = strlen(s);
            if (st->plain_len + l <= sizeof st->plain) {
                memcpy(st->plain + st->plain_len, s, l);
                st->plain_len += l;
            }
        }
    }
    st->coded_len = hpack_huff_encoded_len(st->plain, st->plain_len);
    hpack_huff_encode(st->coded, st->plain, st->plain_len);
    size_t back = 0;
    if (hpack_huff_decode(st->coded, st->coded_len, st->out, sizeof st->out, &back) != H2_OK ||
        back != st->plain_len || memcmp(st->out, st->plain, back) != 0) {
        bench_skip(b, "hpack/huff_decode", "round trip failed");
        free(st);
        return;
    }
    bench_opts o = {.unit = "string", .bytes_per_op = (double)st->plain_len};
    if (bench_run(b, "hpack/huff_encode", run_huff_encode, st, &o)) {
        bench_note(b, "plain_bytes", (double)st->plain_len);
        bench_note(b, "coded_bytes", (double)st->coded_len);
    }
    if (bench_run(b, "hpack/huff_encoded_len", run_huff_len, st, &o))
        bench_note(b, "plain_bytes", (double)st->plain_len);
    if (bench_run(b, "hpack/huff_decode", run_huff_decode, st, &o)) {
        bench_note(b, "plain_bytes", (double)st->plain_len);
        bench_note(b, "coded_bytes", (double)st->coded_len);
        if (st->failed)
            bench_note(b, "DECODE_FAILED", 1);
    }
    free(st);
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

void micro_hpack(bench *b)
{
    bench_decode_set(b, "hpack/decode_h2load", "hpack/decode_h2load_new", set_h2load,
                     N_OF(set_h2load));
    bench_decode_set(b, "hpack/decode_curl", "hpack/decode_curl_new", set_curl, N_OF(set_curl));
    bench_decode_set(b, "hpack/decode_browser", "hpack/decode_browser_new", set_browser,
                     N_OF(set_browser));
    bench_encode_set(b, "hpack/encode_resp_hello", resp_hello, N_OF(resp_hello), 1);
    bench_encode_set(b, "hpack/encode_resp_typical", resp_typical, N_OF(resp_typical),
                     TYPICAL_VARIANTS);
    bench_huffman(b);
}
