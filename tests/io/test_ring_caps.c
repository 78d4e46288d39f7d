/*
 * tests/io/test_ring_caps.c - io/ring_caps.c: the start-up probe of what the
 * kernel offers beyond liburing 2.3, on the real kernel.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "ring.h"
#include "ring_bufs.h"
#include "ring_test_util.h"

/* The kernel's major.minor, to know what the probe must find. */
static int kernel_version(void)
{
    struct utsname u;
    int major = 0, minor = 0;

    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
        return 0;
    return major * 100 + minor;
}

Test(ring_caps, probe)
{
    ring_config cfg = ring_config_default();
    ring *r = mk_ring(&cfg);
    uint32_t caps = ring_caps(r);
    ring_stats st;
    char desc[128];

    ring_get_stats(r, &st);
    cr_log_info("kernel %d, caps 0x%x: %s", kernel_version(), caps,
                ring_caps_describe(caps, desc, sizeof desc));
    /* The feature bits mirror io_uring_params.features. */
    cr_expect_eq(!!(caps & RING_CAP_RECVSEND_BUNDLE), !!(st.features & (1u << 14)));
    cr_expect_eq(!!(caps & RING_CAP_CQE_SKIP), !!(st.features & (1u << 11)));
    /* Every feature here is older than 6.12: all must be found there. */
    if (kernel_version() >= 612) {
        uint32_t all = RING_CAP_RECVSEND_BUNDLE | RING_CAP_PBUF_INC | RING_CAP_FIXED_FILES |
                       RING_CAP_NAPI | RING_CAP_CQE_SKIP | RING_CAP_MIN_TIMEOUT;
        cr_expect_eq(caps, all, "caps 0x%x", caps);
    }
    /* The probe undid its registrations: the ring's own buffer group still
     * serves a recv. */
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cr_assert_eq(ring_prep_recv_multishot(r, sv[0], ring_ud_pack(RING_OP_RECV, 1, 1)), 0);
    cr_assert_eq(write(sv[1], "hi", 2), 2);
    ring_cqe c;
    cr_assert_geq(ring_wait(r, 1, 1000000000u), 1);
    cr_assert_eq(ring_reap(r, &c, 1), 1u);
    cr_expect_eq(c.res, 2);
    cr_expect(c.flags & RING_CQE_F_BUFFER);
    ring_bufs_recycle(ring_bufs_of(r), ring_cqe_bid(&c));
    close(sv[0]);
    close(sv[1]);
    ring_free(r);
}

Test(ring_caps, describe)
{
    char buf[64], tiny[8];

    cr_expect_str_eq(ring_caps_describe(0, buf, sizeof buf), "");
    cr_expect_str_eq(ring_caps_describe(RING_CAP_RECVSEND_BUNDLE | RING_CAP_NAPI, buf, sizeof buf),
                     "bundle napi");
    /* Truncated at a name boundary, always terminated. */
    cr_expect_str_eq(
        ring_caps_describe(RING_CAP_RECVSEND_BUNDLE | RING_CAP_NAPI, tiny, sizeof tiny), "bundle");
    cr_expect_eq(ring_caps_describe(RING_CAP_NAPI, buf, 0), buf);
}

/* ------------------------------------------------------------------------ */
/* Sends without a CQE on success (RING_CAP_CQE_SKIP)                        */

/* Kernel-borrowed memory lives outside the test's frame. */
static struct msghdr skip_msg;
static struct iovec skip_iov[2];
static char skip_big[4u << 20];

static void skip_set(const void *a, size_t alen, const void *b, size_t blen)
{
    memset(&skip_msg, 0, sizeof skip_msg);
    skip_iov[0] = (struct iovec){(void *)a, alen};
    skip_iov[1] = (struct iovec){(void *)b, blen};
    skip_msg.msg_iov = skip_iov;
    skip_msg.msg_iovlen = blen ? 2 : 1;
}

Test(ring_caps, send_nocqe_success_posts_nothing)
{
    ring *r = mk_ring(NULL);
    int srv, cli;
    uint64_t ticket = 0;
    ring_cqe c[4];
    char got[32];

    if (!(ring_caps(r) & RING_CAP_CQE_SKIP)) {
        cr_expect_eq(ring_prep_sendmsg_nocqe(r, 0, &skip_msg, 1, &ticket), -EOPNOTSUPP);
        ring_free(r);
        cr_skip_test("no IOSQE_CQE_SKIP_SUCCESS on this kernel");
    }
    tcp_pair(&srv, &cli);
    skip_set("HEADERS:", 8, "payload", 7);
    cr_assert_eq(
        ring_prep_sendmsg_nocqe(r, srv, &skip_msg, ring_ud_pack(RING_OP_SEND, 3, 1), &ticket), 0);
    cr_expect_lt(ring_sqes_settled(r), ticket, "not settled before it is submitted");
    cr_assert_geq(ring_submit(r), 1);
    cr_expect_geq(ring_sqes_settled(r), ticket, "settled once submitted");
    read_exact(cli, got, 15);
    cr_expect_eq(memcmp(got, "HEADERS:payload", 15), 0);
    /* No CQE for it: a NOP queued after it is the first CQE to come. */
    cr_assert_eq(ring_prep_nop(r, ring_ud_pack(RING_OP_NOP, 0, 0)), 0);
    cr_assert_eq(collect(r, c, 1, 4, 2000), 1u);
    cr_expect_eq(ring_ud_op(c[0].user_data), RING_OP_NOP);
    cr_expect_eq(ring_wait(r, 0, 0), 0, "nothing else posted");
    ring_free(r);
    close(srv);
    close(cli);
}

Test(ring_caps, send_nocqe_short_and_full_post_a_cqe)
{
    ring *r = mk_ring(NULL);
    int srv, cli, small = 4096;
    uint64_t ud = ring_ud_pack(RING_OP_SEND, 4, 2), t1 = 0, t2 = 0;
    ring_cqe c[4];

    if (!(ring_caps(r) & RING_CAP_CQE_SKIP)) {
        ring_free(r);
        cr_skip_test("no IOSQE_CQE_SKIP_SUCCESS on this kernel");
    }
    tcp_pair(&srv, &cli);
    cr_assert_eq(setsockopt(srv, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    cr_assert_eq(setsockopt(cli, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    /* 4 MiB cannot fit in the two buffers: the send is short, and the CQE
     * says how much went; it is posted by the enter that submitted it. */
    skip_set(skip_big, sizeof skip_big, NULL, 0);
    cr_assert_eq(ring_prep_sendmsg_nocqe(r, srv, &skip_msg, ud, &t1), 0);
    cr_assert_geq(ring_submit(r), 1);
    cr_expect_geq(ring_sqes_settled(r), t1);
    cr_assert_eq(ring_reap(r, c, 4), 1u, "the short send's CQE is already in the CQ");
    cr_expect_eq(c[0].user_data, ud);
    cr_expect(c[0].res > 0 && c[0].res < (int32_t)sizeof skip_big, "res %d", c[0].res);
    /* The buffer is full: a second one does not wait for room either. */
    cr_assert_eq(ring_prep_sendmsg_nocqe(r, srv, &skip_msg, ud, &t2), 0);
    cr_expect_gt(t2, t1);
    cr_assert_geq(ring_submit(r), 1);
    cr_assert_eq(ring_reap(r, c, 4), 1u);
    cr_expect(c[0].res == -EAGAIN || (c[0].res > 0 && c[0].res < (int32_t)sizeof skip_big),
              "res %d", c[0].res);
    ring_free(r);
    close(srv);
    close(cli);
}

/* One buffer (IORING_OP_SEND): the send the shard uses.  The wait that
 * submits it may sleep: nothing is posted for it, the bytes reach the
 * peer while the ring waits, and the wait ends by its timeout with no
 * CQE.  A short one posts the bytes that went. */
Test(ring_caps, send_nocqe_one_buffer_then_sleep)
{
    ring *r = mk_ring(NULL);
    int srv, cli, small = 4096;
    uint64_t ud = ring_ud_pack(RING_OP_SEND, 5, 3), t1 = 0, t2 = 0;
    ring_cqe c[4];
    char got[16];

    if (!(ring_caps(r) & RING_CAP_CQE_SKIP)) {
        cr_expect_eq(ring_prep_send_nocqe(r, 0, "x", 1, ud, &t1), -EOPNOTSUPP);
        ring_free(r);
        cr_skip_test("no IOSQE_CQE_SKIP_SUCCESS on this kernel");
    }
    cr_expect_eq(ring_prep_send_nocqe(r, -1, "x", 1, ud, &t1), -EINVAL);
    cr_expect_eq(ring_prep_send_nocqe(r, 0, NULL, 1, ud, &t1), -EINVAL);
    cr_expect_eq(ring_prep_send_nocqe(r, 0, "x", 1, ud, NULL), -EINVAL);
    tcp_pair(&srv, &cli);
    cr_assert_eq(ring_prep_send_nocqe(r, srv, "HEADERS:payload", 15, ud, &t1), 0);
    cr_expect_lt(ring_sqes_settled(r), t1, "not settled before it is submitted");
    cr_expect_eq(ring_wait(r, 1, 50000000u), 0, "submitted, then slept to the timeout");
    cr_expect_geq(ring_sqes_settled(r), t1, "settled by the sleeping wait");
    read_exact(cli, got, 15);
    cr_expect_eq(memcmp(got, "HEADERS:payload", 15), 0);
    /* Short: 4 MiB into 4 KiB buffers. */
    cr_assert_eq(setsockopt(srv, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    cr_assert_eq(setsockopt(cli, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    cr_assert_eq(ring_prep_send_nocqe(r, srv, skip_big, sizeof skip_big, ud, &t2), 0);
    cr_expect_gt(t2, t1);
    cr_assert_geq(ring_wait(r, 1, 1000000000u), 1);
    cr_assert_eq(ring_reap(r, c, 4), 1u);
    cr_expect_eq(c[0].user_data, ud);
    cr_expect(c[0].res > 0 && c[0].res < (int32_t)sizeof skip_big, "res %d", c[0].res);
    ring_free(r);
    close(srv);
    close(cli);
}
