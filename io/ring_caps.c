/*
 * io/ring_caps.c - the start-up probe of what the kernel offers beyond what
 * ring_new() requires and liburing 2.3 has helpers for (ring.h, RING_CAP_*;
 * docs/io-profile.md says which of these pays).
 */
#include "ring_caps.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Newer still (6.9-6.12): the probe in ring_new() (probe_caps()). */
#define RING_FEAT_RECVSEND_BUNDLE (1U << 14)
#define RING_FEAT_MIN_TIMEOUT     (1U << 15)
#define RING_PBUF_RING_MMAP       1u /* io_uring_buf_reg.flags (2.3: "pad") */
#define RING_PBUF_RING_INC        2u
#define RING_REGISTER_NAPI        27u
#define RING_UNREGISTER_NAPI      28u

/* struct io_uring_napi (6.9), absent from liburing 2.3's headers. */
struct ring_napi_reg {
    uint32_t busy_poll_to;
    uint8_t prefer_busy_poll;
    uint8_t opcode;
    uint8_t pad[2];
    uint32_t op_param;
    uint32_t resv;
};

/* io_uring_register(2) on the real ring fd: liburing 2.3 wraps only the
 * opcodes it knows. Returns 0 or -errno. */
static int register_raw(struct io_uring *u, unsigned op, void *arg, unsigned nr)
{
    long ret = syscall(__NR_io_uring_register, u->ring_fd, op, arg, nr);

    return ret < 0 ? -errno : 0;
}

/* Incremental buffer consumption: register a one-entry kernel-allocated
 * buffer ring with IOU_PBUF_RING_INC in a group we do not use, then drop it. */
static bool probe_pbuf_inc(struct io_uring *u, uint16_t used_group)
{
    struct io_uring_buf_reg reg;

    memset(&reg, 0, sizeof reg);
    reg.ring_entries = 1;
    reg.bgid = used_group == UINT16_MAX ? UINT16_MAX - 1 : UINT16_MAX;
    reg.pad = RING_PBUF_RING_MMAP | RING_PBUF_RING_INC;
    if (register_raw(u, IORING_REGISTER_PBUF_RING, &reg, 1) < 0)
        return false;
    (void)register_raw(u, IORING_UNREGISTER_PBUF_RING, &reg, 1);
    return true;
}

/* NAPI busy polling: register with a zero busy-poll time (a no-op), then
 * unregister. The kernel copies the previous settings back into reg. */
static bool probe_napi(struct io_uring *u)
{
    struct ring_napi_reg reg;

    memset(&reg, 0, sizeof reg);
    if (register_raw(u, RING_REGISTER_NAPI, &reg, 1) < 0)
        return false;
    memset(&reg, 0, sizeof reg);
    (void)register_raw(u, RING_UNREGISTER_NAPI, &reg, 1);
    return true;
}

uint32_t ring_caps_probe(struct io_uring *u, uint16_t buf_group)
{
    uint32_t f = u->features, caps = 0;

    if (f & RING_FEAT_RECVSEND_BUNDLE)
        caps |= RING_CAP_RECVSEND_BUNDLE;
    if (f & IORING_FEAT_CQE_SKIP)
        caps |= RING_CAP_CQE_SKIP;
    if (f & RING_FEAT_MIN_TIMEOUT)
        caps |= RING_CAP_MIN_TIMEOUT;
    if (probe_pbuf_inc(u, buf_group))
        caps |= RING_CAP_PBUF_INC;
    if (io_uring_register_files_sparse(u, 1) == 0) {
        caps |= RING_CAP_FIXED_FILES;
        (void)io_uring_unregister_files(u);
    }
    if (probe_napi(u))
        caps |= RING_CAP_NAPI;
    return caps;
}

const char *ring_caps_describe(uint32_t caps, char *buf, size_t len)
{
    static const char *const names[] = {"bundle", "pbuf-inc", "fixed-files",
                                        "napi",   "cqe-skip", "min-timeout"};
    size_t at = 0;

    if (!len)
        return buf;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int n;

        if (!(caps & (1u << i)))
            continue;
        n = snprintf(buf + at, len - at, "%s%s", at ? " " : "", names[i]);
        if (n < 0 || (size_t)n >= len - at) {
            buf[at] = '\0'; /* no half names */
            break;
        }
        at += (size_t)n;
    }
    return buf;
}
