/*
 * tests/io/test_ring_error.c - io/ring_error.c: every case of
 * ring_explain_error()'s table, its defaults and edges, ring_error_set().
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ring.h"
#include "ring_test_util.h"

/* What kernel.io_uring_disabled says on this machine (-1: no such sysctl). */
static int io_uring_disabled(void)
{
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
    int v = -1;

    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* Every row of ring_explain_error()'s table, each errno in both signs. */
Test(ring, explain_error_each_case)
{
    const int dis = io_uring_disabled();
    const char *denied = dis == 2   ? "disabled system-wide (kernel.io_uring_disabled=2"
                         : dis == 1 ? "kernel.io_uring_group group"
                                    : "seccomp filter or LSM";
    const struct {
        int err;
        uint32_t flags;
        const char *want;
    } cases[] = {
        {EPERM, 0, denied},
        {EACCES, 0, denied},
        {ENOSYS, 0, "this kernel has no io_uring (Linux >= 6.1"},
        {ENOMEM, 0, geteuid() ? "RLIMIT_MEMLOCK is " : "running as root"},
        {EINVAL, SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN,
         "rejected setup flags SINGLE_ISSUER|DEFER_TASKRUN ("},
        {EINVAL, SETUP_CQSIZE | SETUP_SUBMIT_ALL, "rejected setup flags CQSIZE|SUBMIT_ALL ("},
        {EINVAL, 0, "rejected setup flags none ("},
        {EMFILE, 0, "out of file descriptors (ulimit -n)"},
        {ENFILE, 0, "out of file descriptors (ulimit -n)"},
        {EEXIST, 0, "does not own the ring (IORING_SETUP_SINGLE_ISSUER)"},
    };
    char buf[sizeof(((ring_error *)0)->msg)];
    char prefix[160];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int sign = -1; sign <= 1; sign += 2) {
            memset(buf, 'x', sizeof buf);
            ring_explain_error(sign * cases[i].err, "io_uring_setup", cases[i].flags, buf,
                               sizeof buf);
            /* "what: strerror..." first, then the cause. */
            snprintf(prefix, sizeof prefix, "io_uring_setup: %s", strerror(cases[i].err));
            cr_expect_eq(strncmp(buf, prefix, strlen(prefix)), 0, "%d: %s", cases[i].err, buf);
            cr_expect_not_null(strstr(buf, cases[i].want), "%d: %s", cases[i].err, buf);
            cr_expect_lt(strlen(buf), sizeof buf - 1, "%d: truncated: %s", cases[i].err, buf);
        }
    }
}

Test(ring, explain_error_default_and_edges)
{
    char buf[sizeof(((ring_error *)0)->msg)];
    char want[160];

    /* An errno without a row: just what and strerror. */
    ring_explain_error(-EBUSY, "io_uring_register", 0, buf, sizeof buf);
    snprintf(want, sizeof want, "io_uring_register: %s", strerror(EBUSY));
    cr_expect_str_eq(buf, want);
    /* No `what`: "io_uring". */
    ring_explain_error(-EBUSY, NULL, 0, buf, sizeof buf);
    snprintf(want, sizeof want, "io_uring: %s", strerror(EBUSY));
    cr_expect_str_eq(buf, want);
    /* Tiny buffers are truncated, still terminated; no buffer, no write. */
    ring_explain_error(-EPERM, "x", 0, buf, 4);
    cr_expect_eq(strlen(buf), 3u);
    buf[0] = 'q';
    ring_explain_error(-EPERM, "x", 0, buf, 0);
    cr_expect_eq(buf[0], 'q');
    ring_explain_error(-EPERM, "x", 0, NULL, 8);
}

Test(ring, error_set)
{
    ring_error err;

    cr_expect_eq(ring_error_set(&err, -EINVAL, "bad %s %d", "thing", 7), -EINVAL);
    cr_expect_eq(err.code, -EINVAL);
    cr_expect_str_eq(err.msg, "bad thing 7");
    cr_expect_eq(ring_error_set(NULL, -ENOMEM, "ignored"), -ENOMEM);
}
