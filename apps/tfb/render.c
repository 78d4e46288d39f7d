/* render.c - see render.h. */
#define _POSIX_C_SOURCE 200809L
#include "render.h"

#include <stdlib.h>
#include <string.h>

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

void tfb_html_escape(tfb_buf *b, const char *s, size_t n)
{
    size_t run = 0; /* bytes copied as they are, pending */
    for (size_t i = 0; i < n; i++) {
        const char *rep;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: run++; continue;
        }
        tfb_buf_append(b, s + i - run, run);
        run = 0;
        tfb_buf_puts(b, rep);
    }
    tfb_buf_append(b, s + n - run, run);
}

static int fortune_cmp(const void *pa, const void *pb)
{
    const tfb_fortune *a = pa, *b = pb;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->message, b->message, n) : 0;
    if (c)
        return c;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

void tfb_fortunes_sort(tfb_fortune *f, size_t n)
{
    if (n > 1)
        qsort(f, n, sizeof *f, fortune_cmp);
}

void tfb_render_fortunes(tfb_buf *b, const tfb_fortune *f, size_t n)
{
    tfb_buf_puts(b, "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
                    "<tr><th>id</th><th>message</th></tr>");
    for (size_t i = 0; i < n; i++) {
        tfb_buf_puts(b, "<tr><td>");
        tfb_buf_putu(b, (uint32_t)f[i].id);
        tfb_buf_puts(b, "</td><td>");
        tfb_html_escape(b, f[i].message, f[i].len);
        tfb_buf_puts(b, "</td></tr>");
    }
    tfb_buf_puts(b, "</table></body></html>");
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
