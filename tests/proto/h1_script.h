/* h1_script.h - a scripted client and application around one h1_conn, for
 * tests/proto/test_h1_conn.c.
 *
 *   input   - h1t_feed() hands bytes to h1_conn_recv(), whole or one byte per
 *             call (t->mode); every event is logged as a line of text in
 *             t->log ("REQ 1 GET /x host=a end", "DATA 1 5", "TRL 1 2",
 *             "RESET 1"), request body bytes are appended to t->body;
 *   app     - with t->auto_respond, each request is answered when its body
 *             ends: 200, content-type text/plain, body "r<id>\n" by
 *             reference (release counted); otherwise the test answers;
 *   output  - h1t_drain() pulls every byte the connection wants to write
 *             into t->out, through 3-iovec prepares with 7-byte partial
 *             commits in bytewise mode, through h1_conn_send otherwise;
 *   checks  - h1t_fini(): every reference released exactly once, every
 *             allocation returned (a counting h2_mem).
 * H1T_TEST bodies run twice: whole input, then one byte per call.
 */
#ifndef SPINDLE_TESTS_H1_SCRIPT_H
#define SPINDLE_TESTS_H1_SCRIPT_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h1_conn.h"

#define H1T_DATE_S 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example) */

typedef struct h1t {
    int mode; /* 0 whole input, 1 one byte per recv */
    h1_limits l;
    h1_ctx x;
    h1_conn *c;
    h2_mem mem;
    int64_t live;    /* allocations not yet freed */
    uint64_t allocs; /* malloc and realloc calls */
    uint64_t now;
    bool auto_respond;
    h2_rv rv;    /* the last result other than H2_OK (0 if none) */
    size_t rest; /* bytes of the last h1t_feed not consumed */
    char log[1 << 16];
    size_t log_len;
    uint8_t body[1 << 16];
    size_t body_len;
    char *out;
    size_t out_len, out_cap;
    size_t queued, released;
    uint32_t nreq;
    h1_request last; /* the last REQUEST event (pointers valid until next feed) */
    uint32_t last_id;
} h1t;

void h1t_init(h1t *t, int mode);
/* Create the context and connection: l NULL = defaults.  Time is set to
 * H1T_DATE_S for the Date field. */
void h1t_start(h1t *t, const h1_limits *l);
void h1t_fini(h1t *t);
/* Feed bytes (see above); stops at H2_E_PROTO/CLOSED or a pause that
 * draining cannot lift (t->rest says what was left). */
void h1t_feed(h1t *t, const void *p, size_t n);
void h1t_feed_str(h1t *t, const char *s);
void h1t_drain(h1t *t);
/* Queue a static body chunk by reference (release counted). */
h2_rv h1t_send(h1t *t, uint32_t id, const char *s, bool end);
/* How many times needle occurs in the output. */
int h1t_count(const h1t *t, const char *needle);
/* The nth (0-based) status code in the output, 0 if none. */
int h1t_status(const h1t *t, int nth);

#define H1T_TEST(suite, name, ...)                                                                 \
    static void suite##_##name##_body(h1t *t);                                                     \
    Test(suite, name, ##__VA_ARGS__)                                                               \
    {                                                                                              \
        static h1t t;                                                                              \
        h1t_init(&t, 0);                                                                           \
        suite##_##name##_body(&t);                                                                 \
        h1t_fini(&t);                                                                              \
    }                                                                                              \
    Test(suite, name##__bytewise, ##__VA_ARGS__)                                                   \
    {                                                                                              \
        static h1t t;                                                                              \
        h1t_init(&t, 1);                                                                           \
        suite##_##name##_body(&t);                                                                 \
        h1t_fini(&t);                                                                              \
    }                                                                                              \
    static void suite##_##name##_body(h1t *t)

#endif
