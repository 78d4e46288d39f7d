/* hpack_test_util.h - what the HPACK tests share (test_hpack.c,
 * test_hpack_table.c): hex input, a pseudo-random source, field builders,
 * a test sink, table and field expectations, a counting allocator, and the
 * RFC 7541 C.3 examples. */
#ifndef SPINDLE_TESTS_HPACK_TEST_UTIL_H
#define SPINDLE_TESTS_HPACK_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hpack_internal.h"

/* A sink with the spindle defaults: 64 KiB soft, 4x hard, 100/1000 fields. */
typedef struct test_sink {
    hpack_sink s;
    hpack_field fields[100];
    uint8_t buf[65536];
} test_sink;

typedef struct nv {
    const char *name, *value;
} nv;

/* Counting allocator; attempts numbered from 0 fail from fail_from on. */
typedef struct counting {
    uint64_t attempts, allocs, frees;
    uint64_t fail_from;
} counting;

size_t unhex(const char *hex, uint8_t *out);
uint32_t rnd(void);
hpack_field fld(const char *name, const char *value, uint8_t flags);
test_sink *sink_new(void);
bool field_is(const hpack_field *f, const char *name, const char *value);
void expect_fields(const hpack_sink *s, const nv *want, size_t n);
void expect_table(const hpack_table *t, const nv *want, size_t n, uint32_t size);
void expect_table_consistent(const hpack_table *t);
h2_rv decode_hex(hpack_decoder *d, const char *hex, hpack_sink *s);
h2_mem counting_mem(counting *c);

/* An RFC 7541 Appendix C example: the block, the fields it decodes to and
 * the dynamic table after it. */
typedef struct example {
    const char *hex;
    nv fields[8];
    size_t nfields;
    nv table[8];
    size_t ntable;
    uint32_t size;
} example;

#define C3_FIELDS_1                                                                                \
    {                                                                                              \
        {":method", "GET"}, {":scheme", "http"}, {":path", "/"},                                   \
        {                                                                                          \
            ":authority", "www.example.com"                                                        \
        }                                                                                          \
    }
#define C3_FIELDS_2                                                                                \
    {                                                                                              \
        {":method", "GET"}, {":scheme", "http"}, {":path", "/"},                                   \
            {":authority", "www.example.com"},                                                     \
        {                                                                                          \
            "cache-control", "no-cache"                                                            \
        }                                                                                          \
    }
#define C3_FIELDS_3                                                                                \
    {                                                                                              \
        {":method", "GET"}, {":scheme", "https"}, {":path", "/index.html"},                        \
            {":authority", "www.example.com"},                                                     \
        {                                                                                          \
            "custom-key", "custom-value"                                                           \
        }                                                                                          \
    }
#define C3_TABLE_1                                                                                 \
    {                                                                                              \
        {                                                                                          \
            ":authority", "www.example.com"                                                        \
        }                                                                                          \
    }
#define C3_TABLE_2                                                                                 \
    {                                                                                              \
        {"cache-control", "no-cache"},                                                             \
        {                                                                                          \
            ":authority", "www.example.com"                                                        \
        }                                                                                          \
    }
#define C3_TABLE_3                                                                                 \
    {                                                                                              \
        {"custom-key", "custom-value"}, {"cache-control", "no-cache"},                             \
        {                                                                                          \
            ":authority", "www.example.com"                                                        \
        }                                                                                          \
    }

extern const example c3[3];

#endif
