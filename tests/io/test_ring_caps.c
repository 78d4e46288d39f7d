/*
 * tests/io/test_ring_caps.c - io/ring_caps.c: the start-up probe of what the
 * kernel offers beyond liburing 2.3, on the real kernel.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
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
