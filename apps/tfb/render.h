/* render.h - the pure part of apps/tfb: request parameters, JSON bodies, the
 * fortunes page with HTML escaping, and the Date header.  No I/O, no
 * database, no threads: everything here is a function of its arguments
 * (tests/apps/test_tfb_render.c).
 *
 * Output goes into a tfb_buf, a growable heap buffer.  An allocation failure
 * is sticky (buf.oom): append calls become no-ops, and the caller checks oom
 * once at the end.
 */
#ifndef TFB_RENDER_H
#define TFB_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* TechEmpower's limits: ids and random numbers are in 1..10000, and the
 * `queries` parameter is clamped to 1..500. */
#define TFB_WORLD_ROWS  10000
#define TFB_MAX_QUERIES 500

typedef struct tfb_buf {
    char *p; /* heap (malloc), owned by the buffer until taken */
    size_t len, cap;
    bool oom;
} tfb_buf;

/* An empty buffer with room for `hint` bytes (oom set if that fails). */
void tfb_buf_init(tfb_buf *b, size_t hint);
/* Free the bytes (if any) and reset b to empty. */
void tfb_buf_free(tfb_buf *b);
void tfb_buf_append(tfb_buf *b, const char *s, size_t n);
void tfb_buf_puts(tfb_buf *b, const char *s);
void tfb_buf_putu(tfb_buf *b, uint32_t v);

/* One World row. */
typedef struct tfb_world {
    int32_t id;
    int32_t random_number;
} tfb_world;

/* One Fortune row; message points at len bytes (UTF-8, not NUL-terminated)
 * that the caller keeps alive. */
typedef struct tfb_fortune {
    int32_t id;
    const char *message;
    size_t len;
} tfb_fortune;

/* The `queries` parameter of a request path ("/queries?queries=20"): absent,
 * empty, not a decimal number ("foo", "-3", "12abc") or below 1 gives 1;
 * above 500 gives 500. */
uint32_t tfb_queries_param(const char *path, size_t len);

/* `{"message":"Hello, World!"}` */
void tfb_render_message(tfb_buf *b);
/* `{"id":3217,"randomNumber":2149}` */
void tfb_render_world(tfb_buf *b, const tfb_world *w);
/* `[{"id":..,"randomNumber":..},...]` (n may be 0: `[]`) */
void tfb_render_worlds(tfb_buf *b, const tfb_world *w, size_t n);

/* Text as HTML element content: & < > " ' become &amp; &lt; &gt; &quot;
 * &#39;; every other byte (UTF-8 included) is copied. */
void tfb_html_escape(tfb_buf *b, const char *s, size_t n);

/* Sort fortunes by message, bytewise (UTF-8 order = code point order); ties
 * by id, so the order is total.  Up to TFB_SORT_INSERTION_MAX rows (the
 * benchmark has 13) by insertion, more with qsort. */
#define TFB_SORT_INSERTION_MAX 32
void tfb_fortunes_sort(tfb_fortune *f, size_t n);

/* The fortunes page, for rows already sorted:
 * <!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>
 * <tr><th>id</th><th>message</th></tr><tr><td>ID</td><td>MESSAGE</td></tr>...
 * </table></body></html>   (no newlines; messages escaped) */
void tfb_render_fortunes(tfb_buf *b, const tfb_fortune *f, size_t n);

/* The message of the fortune added at request time (id 0). */
extern const char tfb_extra_fortune[];

/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", 29 bytes + NUL) for t. */
#define TFB_DATE_LEN 29
void tfb_http_date(time_t t, char out[TFB_DATE_LEN + 1]);

/* A per-thread pseudo-random number generator (xorshift64*); state must not
 * be 0.  tfb_random_id() returns 1..10000. */
uint64_t tfb_random_next(uint64_t *state);
int32_t tfb_random_id(uint64_t *state);

#endif
