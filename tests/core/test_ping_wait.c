/* test_ping_wait.c - core/ping_wait.c: PING waiters on a real engine.
 *
 * The PINGs are queued on a real h2_conn (server role); their opaques are
 * read back from the engine's output frames and fed to ping_wait_ack() as
 * a peer's ACK would carry them. */
#include <criterion/criterion.h>
#include <string.h>

#include "ping_wait.h"

typedef struct got {
    int n;
    int order[8];
    int err[8];
    uint64_t rtt[8];
} got;

typedef struct who {
    got *g;
    int id;
} who;

static void on_rtt(void *ctx, int err, uint64_t rtt_us)
{
    who *w = ctx;
    got *g = w->g;
    g->order[g->n] = w->id;
    g->err[g->n] = err;
    g->rtt[g->n] = rtt_us;
    g->n++;
}

static h2_ctx x;
static h2_conn *c;

static void setup(void)
{
    cr_assert_eq(h2_ctx_init(&x, NULL, NULL), H2_OK);
    c = h2_conn_new(&x, 0);
    cr_assert_not_null(c);
}

static void teardown(void)
{
    h2_conn_free(c);
    h2_ctx_free(&x);
}

/* The opaques of the PING frames (not ACKs) in the engine's output, in
 * order; the output is consumed.  Returns how many. */
static size_t sent_pings(uint8_t out[][8], size_t max)
{
    uint8_t buf[4096];
    size_t len = 0;
    struct iovec iov[16];
    size_t n;
    while ((n = h2_conn_out_prepare(c, iov, 16, sizeof buf - len)) > 0) {
        size_t took = 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(buf + len, iov[i].iov_base, iov[i].iov_len);
            len += iov[i].iov_len;
            took += iov[i].iov_len;
        }
        h2_conn_out_commit(c, took, 0);
    }
    size_t k = 0;
    for (size_t off = 0; off + 9 <= len;) {
        size_t flen = (size_t)buf[off] << 16 | (size_t)buf[off + 1] << 8 | buf[off + 2];
        if (buf[off + 3] == 0x6 && !(buf[off + 4] & 1) && flen == 8 && k < max)
            memcpy(out[k++], buf + off + 9, 8);
        off += 9 + flen;
    }
    return k;
}

TestSuite(ping_wait, .init = setup, .fini = teardown);

Test(ping_wait, acks_answer_the_oldest_waiter_first)
{
    got g = {0};
    who a = {&g, 1}, b = {&g, 2};
    ping_waiter *list = NULL;
    cr_assert_eq(ping_wait_send(&list, c, on_rtt, &a), 0);
    cr_assert_eq(ping_wait_send(&list, c, on_rtt, &b), 0);
    uint8_t op[4][8];
    cr_assert_eq(sent_pings(op, 4), 2u);
    cr_expect_eq(ping_wait_ack(&list, op[0]), PING_ACK_CALLED);
    cr_expect_eq(g.n, 1);
    cr_expect_eq(g.order[0], 1);
    cr_expect_eq(g.err[0], 0);
    cr_expect_lt(g.rtt[0], 10u * 1000u * 1000u, "a round trip of %llu us",
                 (unsigned long long)g.rtt[0]);
    cr_expect_eq(ping_wait_ack(&list, op[1]), PING_ACK_CALLED);
    cr_expect_eq(g.n, 2);
    cr_expect_eq(g.order[1], 2);
    cr_expect_null(list);
    cr_expect_eq(ping_wait_ack(&list, op[1]), PING_ACK_NONE, "no waiter left");
}

Test(ping_wait, an_untimed_ack_pops_nothing)
{
    got g = {0};
    who a = {&g, 1};
    ping_waiter *list = NULL;
    cr_assert_eq(ping_wait_send(&list, c, on_rtt, &a), 0);
    cr_expect_eq(ping_wait_ack(&list, (const uint8_t *)"spndl-sd"), PING_ACK_NONE);
    cr_expect_eq(ping_wait_ack(&list, (const uint8_t *)"12345678"), PING_ACK_NONE);
    cr_expect_eq(g.n, 0);
    cr_expect_not_null(list);
    ping_wait_fail(&list, SPINDLE_ECLOSED);
}

Test(ping_wait, a_bare_waiter_is_reported_not_called)
{
    got g = {0};
    who a = {&g, 1};
    ping_waiter *list = NULL;
    cr_assert_eq(ping_wait_send(&list, c, NULL, NULL), 0);
    cr_assert_eq(ping_wait_send(&list, c, on_rtt, &a), 0);
    uint8_t op[4][8];
    cr_assert_eq(sent_pings(op, 4), 2u);
    cr_expect_eq(ping_wait_ack(&list, op[0]), PING_ACK_BARE);
    cr_expect_eq(g.n, 0);
    cr_expect_eq(ping_wait_ack(&list, op[1]), PING_ACK_CALLED);
    cr_expect_eq(g.n, 1);
}

Test(ping_wait, fail_answers_every_waiter_in_order_and_empties)
{
    got g = {0};
    who a = {&g, 1}, b = {&g, 2}, d = {&g, 3};
    ping_waiter *list = NULL;
    cr_assert_eq(ping_wait_send(&list, c, on_rtt, &a), 0);
    cr_assert_eq(ping_wait_send(&list, c, NULL, NULL), 0);
    cr_assert_eq(ping_wait_send(&list, c, on_rtt, &b), 0);
    cr_assert_eq(ping_wait_send(&list, c, on_rtt, &d), 0);
    ping_wait_fail(&list, SPINDLE_EUPSTREAM);
    cr_expect_null(list);
    cr_assert_eq(g.n, 3);
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(g.order[i], i + 1);
        cr_expect_eq(g.err[i], SPINDLE_EUPSTREAM);
        cr_expect_eq(g.rtt[i], 0u);
    }
    ping_wait_fail(&list, SPINDLE_ECLOSED); /* empty: nothing happens */
    cr_expect_eq(g.n, 3);
}
