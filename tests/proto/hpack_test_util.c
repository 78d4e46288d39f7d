/* hpack_test_util.c - what the HPACK tests share (hpack_test_util.h). */
#include "hpack_test_util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    for (const char *p = hex; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        unsigned v;
        cr_assert_eq(sscanf(p, "%2x", &v), 1);
        out[n++] = (uint8_t)v;
        p += 2;
    }
    return n;
}

static uint64_t rng_state = 0x7541u;
uint32_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

hpack_field fld(const char *name, const char *value, uint8_t flags)
{
    hpack_field f = {(const uint8_t *)name,
                     (const uint8_t *)value,
                     (uint32_t)strlen(name),
                     (uint32_t)strlen(value),
                     flags,
                     0};
    return f;
}

test_sink *sink_new(void)
{
    test_sink *t = calloc(1, sizeof *t);
    cr_assert_not_null(t);
    t->s.fields = t->fields;
    t->s.fields_cap = 100;
    t->s.buf = t->buf;
    t->s.buf_cap = sizeof t->buf;
    t->s.soft_list_size = 65536;
    t->s.hard_list_size = 4 * 65536;
    t->s.soft_fields = 100;
    t->s.hard_fields = 1000;
    return t;
}

bool field_is(const hpack_field *f, const char *name, const char *value)
{
    return f->name_len == strlen(name) && f->value_len == strlen(value) &&
           memcmp(f->name, name, f->name_len) == 0 && memcmp(f->value, value, f->value_len) == 0;
}

void expect_fields(const hpack_sink *s, const nv *want, size_t n)
{
    cr_assert_eq(s->count, n, "fields: got %u, want %zu", s->count, n);
    cr_assert_eq(s->total_fields, n);
    cr_assert_not(s->overflow);
    for (size_t i = 0; i < n; i++) {
        cr_assert(field_is(&s->fields[i], want[i].name, want[i].value), "field %zu: want %s: %s", i,
                  want[i].name, want[i].value);
        /* Strings live in buf, or in the static table for a field indexed
         * from it. */
        const hpack_field *f = &s->fields[i];
        bool in_buf = f->name >= s->buf && f->value + f->value_len <= s->buf + s->buf_used;
        bool in_static = false;
        for (uint32_t k = 0; k < HPACK_STATIC_COUNT; k++)
            in_static |=
                f->name == hpack_static_table[k].name && f->value == hpack_static_table[k].value;
        cr_assert(in_buf || in_static, "field %zu: strings neither in buf nor static", i);
    }
}

void expect_table(const hpack_table *t, const nv *want, size_t n, uint32_t size)
{
    uint8_t buf[512];
    hpack_field f;
    cr_assert_eq(t->count, n, "table entries: got %u, want %zu", t->count, n);
    cr_assert_eq(t->size, size, "table size: got %u, want %u", t->size, size);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(hpack_table_get(t, (uint32_t)i + 1, buf, sizeof buf, &f), H2_OK);
        cr_assert(field_is(&f, want[i].name, want[i].value), "entry %zu: want %s: %s", i + 1,
                  want[i].name, want[i].value);
    }
    cr_assert_eq(hpack_table_get(t, (uint32_t)n + 1, buf, sizeof buf, &f), H2_E_INVAL);
}

/* size == sum of entry sizes, and within max. */
void expect_table_consistent(const hpack_table *t)
{
    static uint8_t buf[1u << 17];
    uint64_t sum = 0;
    hpack_field f;
    for (uint32_t i = 1; i <= t->count; i++) {
        cr_assert_eq(hpack_table_get(t, i, buf, sizeof buf, &f), H2_OK);
        sum += f.name_len + f.value_len + HPACK_ENTRY_OVERHEAD;
    }
    cr_assert_eq(sum, t->size);
    cr_assert_leq(t->size, t->max_size);
}

h2_rv decode_hex(hpack_decoder *d, const char *hex, hpack_sink *s)
{
    static uint8_t in[4096];
    size_t n = unhex(hex, in);
    return hpack_decode_block(d, in, n, s);
}

static void *c_malloc(size_t n, void *ud)
{
    counting *c = ud;
    if (c->attempts++ >= c->fail_from)
        return NULL;
    c->allocs++;
    return malloc(n);
}
static void *c_realloc(void *p, size_t n, void *ud)
{
    counting *c = ud;
    if (c->attempts++ >= c->fail_from)
        return NULL;
    c->allocs++;
    return realloc(p, n);
}
static void c_free(void *p, void *ud)
{
    counting *c = ud;
    c->frees++;
    free(p);
}

h2_mem counting_mem(counting *c)
{
    h2_mem m = {c_malloc, c_realloc, c_free, c};
    return m;
}

/* RFC 7541 C.3: requests without Huffman coding. */
const example c3[3] = {
    {"828684410f7777772e6578616d706c652e636f6d", C3_FIELDS_1, 4, C3_TABLE_1, 1, 57},
    {"828684be58086e6f2d6361636865", C3_FIELDS_2, 5, C3_TABLE_2, 2, 110},
    {"828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565", C3_FIELDS_3, 5, C3_TABLE_3, 3,
     164},
};
