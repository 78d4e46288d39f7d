/* accesslog_fmt.h - the access log's formatting primitives (internal to
 * core/accesslog*.c; tests/core/test_accesslog.c checks each against a
 * plain reference).  All pure functions on caller memory, any thread.
 *
 * The line formatter runs once per request on the shard, so these avoid
 * printf and libc calls for the short strings a line is made of: an
 * escaping check 16 bytes per step, decimal numbers two digits per
 * division, and copies inlined for the lengths a line has.
 */
#ifndef SPINDLE_CORE_ACCESSLOG_FMT_H
#define SPINDLE_CORE_ACCESSLOG_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A byte is written as it is iff 0x20 <= b <= 0x7e and b is not '"' or
 * '\\' (both formats escape every other byte). */
static inline bool alog_byte_ok(unsigned char b)
{
    return (unsigned)(b - 0x20u) < 0x5fu && b != '"' && b != '\\';
}

#define ALOG_ONES  0x0101010101010101ull
#define ALOG_HIGHS 0x8080808080808080ull

/* True if one of w's 8 bytes needs escaping; exact for "any" (the bit
 * tricks of Sean Anderson's "Bit Twiddling Hacks": haszero, hasless). */
static inline bool alog_word_bad(uint64_t w)
{
    uint64_t q = w ^ (ALOG_ONES * '"'), b = w ^ (ALOG_ONES * '\\');
    uint64_t less = (w - ALOG_ONES * 0x20) & ~w;
    uint64_t more = (w + ALOG_ONES * (127 - 0x7e)) | w;
    uint64_t quote = (q - ALOG_ONES) & ~q, bs = (b - ALOG_ONES) & ~b;
    return ((less | more | quote | bs) & ALOG_HIGHS) != 0;
}

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ALOG_VECTOR 1
/* 16 bytes as one value: GCC/clang vector extensions (SSE2 on x86-64, NEON
 * on arm64), as proto/h1_parse.c does. */
typedef signed char alog_v16 __attribute__((vector_size(16)));
#endif

/* True if none of s[0..n) needs escaping.  Reads only s[0..n). */
static inline bool alog_clean(const char *s, size_t n)
{
#ifdef ALOG_VECTOR
    if (n >= 16) {
        /* Signed lanes: bytes >= 0x80 are negative, so "< 0x20" takes them
         * with the controls; the last step overlaps the one before. */
        for (size_t i = 0;; i += 16) {
            if (i + 16 > n)
                i = n - 16;
            alog_v16 v;
            memcpy(&v, s + i, 16);
            alog_v16 bad = (v < 0x20) | (v == 0x7f) | (v == '"') | (v == '\\');
            uint64_t w[2];
            memcpy(w, &bad, 16);
            if (w[0] | w[1])
                return false;
            if (i + 16 >= n)
                return true;
        }
    }
#endif
    if (n >= 8) {
        uint64_t w;
        for (size_t i = 0;; i += 8) {
            if (i + 8 > n)
                i = n - 8;
            memcpy(&w, s + i, 8);
            if (alog_word_bad(w))
                return false;
            if (i + 8 >= n)
                return true;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!alog_byte_ok((unsigned char)s[i]))
            return false;
    return true;
}

/* Copy n bytes exactly (no byte read or written outside s[0..n), o[0..n)):
 * the short lengths inline, as overlapping pairs of moves. */
static inline char *alog_cpy(char *o, const char *s, size_t n)
{
    if (n > 32) {
        memcpy(o, s, n);
    } else if (n >= 16) {
        memcpy(o, s, 16);
        memcpy(o + n - 16, s + n - 16, 16);
    } else if (n >= 8) {
        memcpy(o, s, 8);
        memcpy(o + n - 8, s + n - 8, 8);
    } else if (n >= 4) {
        memcpy(o, s, 4);
        memcpy(o + n - 4, s + n - 4, 4);
    } else if (n) {
        o[0] = s[0];
        o[n / 2] = s[n / 2];
        o[n - 1] = s[n - 1];
    }
    return o + n;
}

/* s[0..n) == t[0..n); reads nothing outside either (NULL ok for n 0). */
static inline bool alog_eq(const char *s, const char *t, size_t n)
{
    uint64_t a[4], b[4];
    if (n > 32)
        return memcmp(s, t, n) == 0;
    if (n >= 16) {
        memcpy(a, s, 16);
        memcpy(a + 2, s + n - 16, 16);
        memcpy(b, t, 16);
        memcpy(b + 2, t + n - 16, 16);
        return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0;
    }
    if (n >= 8) {
        memcpy(a, s, 8);
        memcpy(a + 1, s + n - 8, 8);
        memcpy(b, t, 8);
        memcpy(b + 1, t + n - 8, 8);
        return ((a[0] ^ b[0]) | (a[1] ^ b[1])) == 0;
    }
    for (size_t i = 0; i < n; i++)
        if (s[i] != t[i])
            return false;
    return true;
}

/* Copy n bytes 32 at a time: reads s and writes o up to n rounded up to
 * 32 (ALOG_SLACK bytes past n on both sides must be addressable: the log's
 * own buffers, never a request's).  Returns o + n. */
#define ALOG_SLACK 32u
static inline char *alog_cpy_slack(char *o, const char *s, size_t n)
{
    memcpy(o, s, 32);
    for (size_t i = 32; i < n; i += 32)
        memcpy(o + i, s + i, 32);
    return o + n;
}

static const char alog_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                    "25262728293031323334353637383940414243444546474849"
                                    "50515253545556575859606162636465666768697071727374"
                                    "75767778798081828384858687888990919293949596979899";

/* 1..4 digits of v < 10000, no leading zeros. */
static inline char *alog_put_small(char *o, unsigned v)
{
    if (v < 10) {
        *o = (char)('0' + v);
        return o + 1;
    }
    unsigned hi = v / 100, lo = v % 100;
    if (hi == 0) {
        memcpy(o, alog_pairs + 2 * lo, 2);
        return o + 2;
    }
    if (hi < 10)
        *o++ = (char)('0' + hi);
    else
        o = (char *)memcpy(o, alog_pairs + 2 * hi, 2) + 2;
    memcpy(o, alog_pairs + 2 * lo, 2);
    return o + 2;
}

/* Decimal.  Below 10^8 (a line's numbers) in at most two groups of four
 * digits, two per step; beyond, two digits per division.  Writes
 * max(digits, 16) bytes at o (room the caller has); returns the end of
 * the digits. */
static inline char *alog_put_u(char *o, uint64_t v)
{
    if (v < 10000)
        return alog_put_small(o, (unsigned)v);
    if (v < 100000000) {
        unsigned hi = (unsigned)v / 10000, lo = (unsigned)v % 10000;
        o = alog_put_small(o, hi);
        memcpy(o, alog_pairs + 2 * (lo / 100), 2);
        memcpy(o + 2, alog_pairs + 2 * (lo % 100), 2);
        return o + 4;
    }
    char tmp[36], *e = tmp + 20; /* 16 readable bytes from any e */
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        e -= 2;
        memcpy(e, alog_pairs + 2 * r, 2);
    }
    if (v >= 10) {
        e -= 2;
        memcpy(e, alog_pairs + 2 * v, 2);
    } else {
        *--e = (char)('0' + v);
    }
    size_t n = (size_t)(tmp + 20 - e);
    memcpy(o, e, 16);
    for (size_t i = 16; i < n; i++) /* 17 digits or more: rare */
        o[i] = e[i];
    return o + n;
}

/* An HTTP status (three digits when 100..999, else as alog_put_u). */
static inline char *alog_put_status(char *o, unsigned v)
{
    if (v - 100u >= 900u)
        return alog_put_u(o, v);
    o[0] = (char)('0' + v / 100);
    memcpy(o + 1, alog_pairs + 2 * (v % 100), 2);
    return o + 3;
}

/* Two digits (v in 0..99). */
static inline char *alog_put_2(char *o, int v)
{
    memcpy(o, alog_pairs + 2 * v, 2);
    return o + 2;
}

#endif
