/* Tests for apps/tfb/render.c: the queries parameter, the JSON bodies, HTML
 * escaping, the fortunes page (the benchmark's rows, sorted and escaped) and
 * the Date header. */
#define _POSIX_C_SOURCE 200809L

#include "render.h"

#include <criterion/criterion.h>
#include <string.h>

static uint32_t q(const char *path)
{
    return tfb_queries_param(path, strlen(path));
}

Test(tfb_render, queries_clamped_to_1_500)
{
    cr_assert_eq(q("/queries"), 1);
    cr_assert_eq(q("/queries?"), 1);
    cr_assert_eq(q("/queries?queries="), 1);
    cr_assert_eq(q("/queries?queries=0"), 1);
    cr_assert_eq(q("/queries?queries=foo"), 1);
    cr_assert_eq(q("/queries?queries=-3"), 1);
    cr_assert_eq(q("/queries?queries=12abc"), 1);
    cr_assert_eq(q("/queries?queries=1"), 1);
    cr_assert_eq(q("/queries?queries=2"), 2);
    cr_assert_eq(q("/queries?queries=20"), 20);
    cr_assert_eq(q("/queries?queries=500"), 500);
    cr_assert_eq(q("/queries?queries=501"), 500);
    cr_assert_eq(q("/queries?queries=99999999999999999999"), 500);
    cr_assert_eq(q("/queries?a=7&queries=30&b=9"), 30);
    cr_assert_eq(q("/queries?xqueries=30"), 1);
    cr_assert_eq(q("/updates?queries=7"), 7);
    /* the length bounds the search: no reading past it */
    cr_assert_eq(tfb_queries_param("/queries?queries=25", 18), 2);
}

static void expect(tfb_buf *b, const char *want)
{
    cr_assert_not(b->oom);
    cr_assert_eq(b->len, strlen(want), "got %.*s", (int)b->len, b->p);
    cr_assert_eq(memcmp(b->p, want, b->len), 0, "got %.*s", (int)b->len, b->p);
    tfb_buf_free(b);
}

Test(tfb_render, json_bodies)
{
    tfb_buf b;
    tfb_buf_init(&b, 1); /* grows */
    tfb_render_message(&b);
    expect(&b, "{\"message\":\"Hello, World!\"}");

    tfb_world w[3] = {{1, 10000}, {10000, 1}, {4321, 0}};
    tfb_buf_init(&b, 8);
    tfb_render_world(&b, &w[0]);
    expect(&b, "{\"id\":1,\"randomNumber\":10000}");
    tfb_buf_init(&b, 8);
    tfb_render_worlds(&b, w, 3);
    expect(&b, "[{\"id\":1,\"randomNumber\":10000},{\"id\":10000,\"randomNumber\":1},"
               "{\"id\":4321,\"randomNumber\":0}]");
    tfb_buf_init(&b, 8);
    tfb_render_worlds(&b, w, 0);
    expect(&b, "[]");
}

Test(tfb_render, html_escape)
{
    tfb_buf b;
    tfb_buf_init(&b, 4);
    const char s[] = "<a href=\"x\">Tom & 'Jerry'</a> — ok";
    tfb_html_escape(&b, s, strlen(s));
    expect(&b, "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt; — ok");
    tfb_buf_init(&b, 4);
    tfb_html_escape(&b, "", 0);
    expect(&b, "");
    tfb_buf_init(&b, 4);
    tfb_html_escape(&b, "&&", 2);
    expect(&b, "&amp;&amp;");
    tfb_buf_init(&b, 4);
    tfb_html_escape(&b, "plain", 5);
    expect(&b, "plain");
}

/* Every length from 1 to 40 of each escaped byte alone, and mixed with
 * plain bytes: the escaper writes its replacements with fixed-size moves,
 * so these check (under ASan) that it stays inside the room it reserves;
 * lengths under and over 16 take both of its scans (SSE2 and bytewise). */
Test(tfb_render, html_escape_runs_of_every_escape)
{
    static const char chars[] = "&<>\"'";
    static const char *const reps[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
    for (size_t c = 0; c < 5; c++) {
        for (size_t n = 1; n <= 40; n++) {
            char in[41], want[41 * 6 * 2 + 1] = "";
            memset(in, chars[c], n);
            for (size_t i = 0; i < n; i++)
                strcat(want, reps[c]);
            tfb_buf b;
            tfb_buf_init(&b, 1);
            tfb_html_escape(&b, in, n);
            expect(&b, want);
            in[0] = 'x'; /* a plain byte first, then the run */
            tfb_buf_init(&b, 1);
            tfb_html_escape(&b, in, n);
            cr_assert_eq(b.len, 1 + (n - 1) * strlen(reps[c]));
            cr_assert_eq(b.p[0], 'x');
            tfb_buf_free(&b);
        }
    }
}

/* More rows than insertion sort takes (qsort), with ties and prefixes:
 * the same total order. */
/* An escaped byte at every position of a 70-byte plain string (the SSE2
 * scan's blocks and the bytewise tail). */
Test(tfb_render, html_escape_at_every_position)
{
    for (size_t at = 0; at < 70; at++) {
        char in[70], want[80];
        memset(in, 'p', sizeof in);
        in[at] = '>';
        memset(want, 'p', at);
        memcpy(want + at, "&gt;", 4);
        memset(want + at + 4, 'p', 69 - at);
        want[73] = 0;
        tfb_buf b;
        tfb_buf_init(&b, 8);
        tfb_html_escape(&b, in, sizeof in);
        expect(&b, want);
    }
}

Test(tfb_render, fortunes_sort_many)
{
    enum { N = 3 * TFB_SORT_INSERTION_MAX };
    static const char *const words[] = {"", "a", "ab", "abc", "b", "ba", "\xe3\x83\x95"};
    tfb_fortune f[N];
    for (int i = 0; i < N; i++) {
        const char *w = words[(i * 5 + 3) % 7];
        f[i] = (tfb_fortune){N - i, w, strlen(w)};
    }
    tfb_fortunes_sort(f, N);
    for (int i = 1; i < N; i++) {
        int c = strcmp(f[i - 1].message, f[i].message);
        cr_assert(c < 0 || (c == 0 && f[i - 1].id < f[i].id), "rows %d and %d out of order", i - 1,
                  i);
    }
}

/* The benchmark's Fortune table (toolset/databases/postgres). */
static const char *const fortunes[] = {
    "fortune: No such file or directory",
    "A computer scientist is someone who fixes things that aren't broken.",
    "After enough decimal places, nobody gives a damn.",
    "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1",
    "A computer program does what you tell it to do, not what you want it to do.",
    "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen",
    "Any program that runs right is obsolete.",
    "A list is only as strong as its weakest link. — Donald Knuth",
    "Feature: A bug with seniority.",
    "Computers make very fast, very accurate mistakes.",
    "<script>alert(\"This should not be displayed in a browser alert box.\");</script>",
    "フレームワークのベンチマーク",
};

/* The page the benchmark's verifier expects (its valid_fortune, without the
 * newlines it inserts while normalizing). */
static const char page[] =
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
    "<tr><th>id</th><th>message</th></tr>"
    "<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a browser "
    "alert box.&quot;);&lt;/script&gt;</td></tr>"
    "<tr><td>4</td><td>A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, "
    "1</td></tr>"
    "<tr><td>5</td><td>A computer program does what you tell it to do, not what you want it to "
    "do.</td></tr>"
    "<tr><td>2</td><td>A computer scientist is someone who fixes things that aren&#39;t "
    "broken.</td></tr>"
    "<tr><td>8</td><td>A list is only as strong as its weakest link. — Donald Knuth</td></tr>"
    "<tr><td>0</td><td>Additional fortune added at request time.</td></tr>"
    "<tr><td>3</td><td>After enough decimal places, nobody gives a damn.</td></tr>"
    "<tr><td>7</td><td>Any program that runs right is obsolete.</td></tr>"
    "<tr><td>10</td><td>Computers make very fast, very accurate mistakes.</td></tr>"
    "<tr><td>6</td><td>Emacs is a nice operating system, but I prefer UNIX. — Tom "
    "Christaensen</td></tr>"
    "<tr><td>9</td><td>Feature: A bug with seniority.</td></tr>"
    "<tr><td>1</td><td>fortune: No such file or directory</td></tr>"
    "<tr><td>12</td><td>フレームワークのベンチマーク</td></tr>"
    "</table></body></html>";

Test(tfb_render, fortunes_page_sorted_and_escaped)
{
    tfb_fortune f[13];
    for (int i = 0; i < 12; i++)
        f[i] = (tfb_fortune){i + 1, fortunes[i], strlen(fortunes[i])};
    f[12] = (tfb_fortune){0, tfb_extra_fortune, strlen(tfb_extra_fortune)};
    tfb_fortunes_sort(f, 13);
    tfb_buf b;
    tfb_buf_init(&b, 16); /* rows reserved at their exact size */
    tfb_render_fortunes(&b, f, 13);
    expect(&b, page);
    tfb_buf_init(&b, 1 << 16); /* rows written in room for their worst case */
    tfb_render_fortunes(&b, f, 13);
    expect(&b, page);
    tfb_buf_init(&b, 2048); /* spindle-tfb's size: both, and no regrowth */
    tfb_render_fortunes(&b, f, 13);
    cr_assert_eq(b.cap, 2048);
    expect(&b, page);
}

Test(tfb_render, fortunes_sort_prefix_and_ties)
{
    tfb_fortune f[4] = {{3, "ab", 2}, {2, "a", 1}, {5, "ab", 2}, {1, "", 0}};
    tfb_fortunes_sort(f, 4);
    cr_assert_eq(f[0].id, 1);
    cr_assert_eq(f[1].id, 2);
    cr_assert_eq(f[2].id, 3);
    cr_assert_eq(f[3].id, 5);
}

Test(tfb_render, http_date)
{
    char d[TFB_DATE_LEN + 1];
    tfb_http_date(784111777, d); /* RFC 9110's example */
    cr_assert_str_eq(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    tfb_http_date(0, d);
    cr_assert_str_eq(d, "Thu, 01 Jan 1970 00:00:00 GMT");
    tfb_http_date(1798761599, d);
    cr_assert_str_eq(d, "Thu, 31 Dec 2026 23:59:59 GMT");
    cr_assert_eq(strlen(d), TFB_DATE_LEN);
}

Test(tfb_render, random_ids_in_range_and_spread)
{
    uint64_t st = 0x9e3779b97f4a7c15ULL;
    int seen_low = 0, seen_high = 0;
    for (int i = 0; i < 100000; i++) {
        int32_t id = tfb_random_id(&st);
        cr_assert(id >= 1 && id <= TFB_WORLD_ROWS, "id %d", id);
        seen_low += id <= 100;
        seen_high += id > 9900;
    }
    /* 1% of the range each: about 1000 hits; a broken generator gives 0. */
    cr_assert(seen_low > 500 && seen_high > 500, "low %d high %d", seen_low, seen_high);
}
