/* render.c - see render.h. */
#define _POSIX_C_SOURCE 200809L
#include "render.h"

#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

const char tfb_extra_fortune[] = "Additional fortune added at request time.";

void tfb_buf_init(tfb_buf *b, size_t hint)
{
    b->len = 0;
    b->oom = false;
    b->cap = hint ? hint : 64;
    b->p = malloc(b->cap);
    if (!b->p) {
        b->cap = 0;
        b->oom = true;
    }
}

void tfb_buf_free(tfb_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static bool reserve(tfb_buf *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->cap - b->len >= n)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < n)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void tfb_buf_append(tfb_buf *b, const char *s, size_t n)
{
    if (n && reserve(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

void tfb_buf_puts(tfb_buf *b, const char *s)
{
    tfb_buf_append(b, s, strlen(s));
}

void tfb_buf_putu(tfb_buf *b, uint32_t v)
{
    char tmp[10];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    tfb_buf_append(b, tmp + i, sizeof tmp - i);
}

/* The value of `queries=` in the query string, or NULL (vlen 0). */
static const char *param(const char *path, size_t len, size_t *vlen)
{
    static const char key[] = "queries=";
    const size_t kl = sizeof key - 1;
    const char *q = memchr(path, '?', len);
    const char *end = path + len;
    while (q && q < end) {
        q++;
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - q) >= kl && memcmp(q, key, kl) == 0) {
            *vlen = (size_t)(stop - q - (ptrdiff_t)kl);
            return q + kl;
        }
        q = amp;
    }
    *vlen = 0;
    return NULL;
}

uint32_t tfb_queries_param(const char *path, size_t len)
{
    size_t n;
    const char *v = param(path, len, &n);
    if (!v || n == 0)
        return 1;
    uint32_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 1; /* not a number ("foo", "-3", "12abc") */
        if (x <= TFB_MAX_QUERIES)
            x = x * 10 + (uint32_t)(v[i] - '0');
    }
    if (x > TFB_MAX_QUERIES)
        return TFB_MAX_QUERIES;
    return x < 1 ? 1 : x;
}

void tfb_render_message(tfb_buf *b)
{
    /* Serialized per request, as the benchmark asks (no cached body). */
    tfb_buf_puts(b, "{\"message\":\"");
    tfb_buf_puts(b, "Hello, World!");
    tfb_buf_puts(b, "\"}");
}

void tfb_render_world(tfb_buf *b, const tfb_world *w)
{
    tfb_buf_puts(b, "{\"id\":");
    tfb_buf_putu(b, (uint32_t)w->id);
    tfb_buf_puts(b, ",\"randomNumber\":");
    tfb_buf_putu(b, (uint32_t)w->random_number);
    tfb_buf_append(b, "}", 1);
}

void tfb_render_worlds(tfb_buf *b, const tfb_world *w, size_t n)
{
    tfb_buf_append(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            tfb_buf_append(b, ",", 1);
        tfb_render_world(b, &w[i]);
    }
    tfb_buf_append(b, "]", 1);
}

/* The escape of each byte: 0 for a byte copied as is, else an index into
 * `escapes` (the replacement and its length). */
static const uint8_t esc_of[256] = {['&'] = 1, ['<'] = 2, ['>'] = 3, ['"'] = 4, ['\''] = 5};
static const struct {
    char s[7];
    uint8_t n;
} escapes[6] = {{"", 0}, {"&amp;", 5}, {"&lt;", 4}, {"&gt;", 4}, {"&quot;", 6}, {"&#39;", 5}};
#define ESC_MAX 6 /* the longest replacement */

/* The first byte at or after u that needs escaping, or end.  With SSE2, 16
 * bytes per step (five compares and a mask); the tail (and every string
 * under 16 bytes) byte by byte through the table. */
static const unsigned char *plain_run(const unsigned char *u, const unsigned char *end)
{
#ifdef __SSE2__
    const __m128i amp = _mm_set1_epi8('&'), lt = _mm_set1_epi8('<'), gt = _mm_set1_epi8('>');
    const __m128i quot = _mm_set1_epi8('"'), apos = _mm_set1_epi8('\'');
    while (end - u >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)u);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, amp), _mm_cmpeq_epi8(v, lt)),
                                 _mm_or_si128(_mm_cmpeq_epi8(v, gt), _mm_cmpeq_epi8(v, quot)));
        unsigned bits = (unsigned)_mm_movemask_epi8(_mm_or_si128(m, _mm_cmpeq_epi8(v, apos)));
        if (bits)
            return u + __builtin_ctz(bits);
        u += 16;
    }
#endif
    while (u < end && !esc_of[*u])
        u++;
    return u;
}

/* Escape s[0..n) at out, which has room for ESC_MAX * n bytes; returns the
 * end.  Runs of plain bytes are copied with one memcpy each. */
static char *escape_to(char *out, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s, *end = u + n;
    while (u < end) {
        const unsigned char *run = u;
        u = plain_run(u, end);
        memcpy(out, run, (size_t)(u - run));
        out += u - run;
        if (u == end)
            break;
        uint8_t e = esc_of[*u++];
        memcpy(out, escapes[e].s, ESC_MAX); /* fixed size: one move; the tail is overwritten */
        out += escapes[e].n;
    }
    return out;
}

void tfb_html_escape(tfb_buf *b, const char *s, size_t n)
{
    if (!n || !reserve(b, ESC_MAX * n + ESC_MAX))
        return;
    b->len = (size_t)(escape_to(b->p + b->len, s, n) - b->p);
}

static int fortune_cmp(const tfb_fortune *a, const tfb_fortune *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->message, b->message, n) : 0;
    if (c)
        return c;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static int fortune_qsort_cmp(const void *pa, const void *pb)
{
    return fortune_cmp(pa, pb);
}

void tfb_fortunes_sort(tfb_fortune *f, size_t n)
{
    /* The benchmark's 13 rows: insertion sort (no calls through a pointer,
     * no merge buffer); qsort for many. */
    if (n > TFB_SORT_INSERTION_MAX) {
        qsort(f, n, sizeof *f, fortune_qsort_cmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        tfb_fortune x = f[i];
        size_t j = i;
        for (; j > 0 && fortune_cmp(&x, &f[j - 1]) < 0; j--)
            f[j] = f[j - 1];
        f[j] = x;
    }
}

/* Copy a string literal (its size known here, no strlen). */
#define PUT_LIT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) + sizeof(lit) - 1)

static char *put_u32(char *p, uint32_t v)
{
    char tmp[10];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(p, tmp + i, sizeof tmp - i);
    return p + sizeof tmp - i;
}

static const char page_head[] = "<!DOCTYPE html><html><head><title>Fortunes</title></head>"
                                "<body><table><tr><th>id</th><th>message</th></tr>";
static const char row_open[] = "<tr><td>", row_mid[] = "</td><td>", row_close[] = "</td></tr>";
static const char page_tail[] = "</table></body></html>";

/* The length of s[0..n) escaped. */
static size_t escaped_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s, *end = u + n;
    size_t len = n;
    while ((u = plain_run(u, end)) < end)
        len += escapes[esc_of[*u++]].n - 1u;
    return len;
}

void tfb_render_fortunes(tfb_buf *b, const tfb_fortune *f, size_t n)
{
    /* Each row is written with no checks after one reserve: of its worst
     * case (every byte escaped) when the buffer has that room anyway, else
     * of its exact size (a scan first), so that a buffer with room for the
     * real page (2 KiB for the benchmark's rows, a size the allocator
     * serves from its thread cache) never grows.  ESC_MAX of slack: a
     * replacement is moved in ESC_MAX bytes. */
    if (!reserve(b, sizeof page_head))
        return;
    b->len = (size_t)(PUT_LIT(b->p + b->len, page_head) - b->p);
    for (size_t i = 0; i < n; i++) {
        size_t fixed = sizeof row_open + 10 + sizeof row_mid + sizeof row_close + ESC_MAX;
        if (b->cap - b->len < fixed + ESC_MAX * f[i].len &&
            !reserve(b, fixed + escaped_len(f[i].message, f[i].len)))
            return;
        char *p = PUT_LIT(b->p + b->len, row_open);
        p = put_u32(p, (uint32_t)f[i].id);
        p = PUT_LIT(p, row_mid);
        p = escape_to(p, f[i].message, f[i].len);
        p = PUT_LIT(p, row_close);
        b->len = (size_t)(p - b->p);
    }
    tfb_buf_append(b, page_tail, sizeof page_tail - 1);
}

void tfb_http_date(time_t t, char out[TFB_DATE_LEN + 1])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
        memcpy(out, "Thu, 01 Jan 1970 00:00:00 GMT", TFB_DATE_LEN + 1);
        return;
    }
    unsigned year = (unsigned)(tm.tm_year + 1900);
    char *p = out;
    memcpy(p, days[tm.tm_wday], 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    *p++ = (char)('0' + tm.tm_mday / 10);
    *p++ = (char)('0' + tm.tm_mday % 10);
    *p++ = ' ';
    memcpy(p, months[tm.tm_mon], 3);
    p += 3;
    *p++ = ' ';
    *p++ = (char)('0' + year / 1000);
    *p++ = (char)('0' + year / 100 % 10);
    *p++ = (char)('0' + year / 10 % 10);
    *p++ = (char)('0' + year % 10);
    *p++ = ' ';
    int hms[3] = {tm.tm_hour, tm.tm_min, tm.tm_sec};
    for (int i = 0; i < 3; i++) {
        *p++ = (char)('0' + hms[i] / 10);
        *p++ = (char)('0' + hms[i] % 10);
        *p++ = i < 2 ? ':' : ' ';
    }
    memcpy(p, "GMT", 4);
}

uint64_t tfb_random_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

int32_t tfb_random_id(uint64_t *state)
{
    /* The top bits are the good ones; the modulo bias over 2^32 is < 3e-6. */
    return (int32_t)((tfb_random_next(state) >> 32) % TFB_WORLD_ROWS) + 1;
}
