/*
 * io/ring_error.c - why a ring could not be made, in words: io_uring
 * disabled by sysctl, RLIMIT_MEMLOCK, setup flags the kernel refuses
 * (ring_explain_error()), and ring_error_set().  Contracts in ring.h.
 */
#include "ring.h"

#include <errno.h>
#include <liburing.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int read_io_uring_disabled(void)
{
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
    int v = -1;

    if (!f)
        return -1;
    if (fscanf(f, "%d", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

static void fmt_limit(char *buf, size_t len, rlim_t v)
{
    if (v == RLIM_INFINITY)
        snprintf(buf, len, "unlimited");
    else
        snprintf(buf, len, "%llu KiB", (unsigned long long)v / 1024u);
}

static void fmt_setup_flags(char *buf, size_t len, uint32_t f)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {IORING_SETUP_SQPOLL, "SQPOLL"},
        {IORING_SETUP_CQSIZE, "CQSIZE"},
        {IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"},
        {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
        {IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"},
        {IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"},
    };
    size_t at = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int n;

        if (!(f & names[i].bit))
            continue;
        n = snprintf(buf + at, len - at, "%s%s", at ? "|" : "", names[i].name);
        if (n < 0 || (size_t)n >= len - at)
            return;
        at += (size_t)n;
    }
    if (at == 0)
        snprintf(buf, len, "none");
}

/*
 * The explanations, one row per errno. A row has either a fixed hint
 * (printed as "what: strerror: hint") or a function that writes the whole
 * message from what it reads of the system (sysctl, rlimit, setup flags).
 */
typedef void explain_fn(char *buf, size_t len, const char *what, const char *estr,
                        uint32_t setup_flags);

/* EPERM/EACCES: the io_uring_disabled sysctl, else a seccomp filter or LSM. */
static void explain_denied(char *buf, size_t len, const char *what, const char *estr,
                           uint32_t setup_flags)
{
    int dis = read_io_uring_disabled();

    (void)setup_flags;
    if (dis == 2)
        snprintf(buf, len,
                 "%s: %s: io_uring is disabled system-wide (kernel.io_uring_disabled=2 in "
                 "/proc/sys/kernel/io_uring_disabled); set it to 0",
                 what, estr);
    else if (dis == 1)
        snprintf(buf, len,
                 "%s: %s: io_uring is limited to privileged processes and the "
                 "kernel.io_uring_group group (kernel.io_uring_disabled=1); run with "
                 "CAP_SYS_ADMIN, join that group, or set the sysctl to 0",
                 what, estr);
    else
        snprintf(buf, len,
                 "%s: %s although kernel.io_uring_disabled=%d: a seccomp filter or LSM denies "
                 "the io_uring syscalls (container runtimes do by default; allow "
                 "io_uring_setup/enter/register)",
                 what, estr, dis);
}

/* ENOMEM: for a non-root user, the RLIMIT_MEMLOCK limits rings are charged to. */
static void explain_memlock(char *buf, size_t len, const char *what, const char *estr,
                            uint32_t setup_flags)
{
    struct rlimit rl;
    char soft[32], hard[32];

    (void)setup_flags;
    if (geteuid() == 0 || getrlimit(RLIMIT_MEMLOCK, &rl) != 0) {
        snprintf(buf, len,
                 "%s: %s: the kernel could not allocate the ring (running as root: "
                 "RLIMIT_MEMLOCK is not the limit)",
                 what, estr);
        return;
    }
    fmt_limit(soft, sizeof soft, rl.rlim_cur);
    fmt_limit(hard, sizeof hard, rl.rlim_max);
    snprintf(buf, len,
             "%s: %s: RLIMIT_MEMLOCK is %s (soft) / %s (hard) for this non-root user, and "
             "rings and buffer rings are charged to it; raise it (ulimit -l, systemd "
             "LimitMEMLOCK=, docker --ulimit memlock=) or shrink the ring (sq_entries, "
             "max_conns, buf_count)",
             what, estr, soft, hard);
}

/* EINVAL: the setup flags the kernel rejected. */
static void explain_flags(char *buf, size_t len, const char *what, const char *estr,
                          uint32_t setup_flags)
{
    char flags[160];

    fmt_setup_flags(flags, sizeof flags, setup_flags);
    snprintf(buf, len,
             "%s: %s: the kernel rejected setup flags %s (SINGLE_ISSUER|DEFER_TASKRUN need "
             "Linux >= 6.1)",
             what, estr, flags);
}

static const struct {
    int err;
    explain_fn *fn;   /* writes the message; or NULL and: */
    const char *hint; /* "what: strerror: hint" */
} explanations[] = {
    {EPERM, explain_denied, NULL},
    {EACCES, explain_denied, NULL},
    {ENOSYS, NULL,
     "this kernel has no io_uring (Linux >= 6.1 with CONFIG_IO_URING is needed), or a "
     "seccomp filter answers ENOSYS for its syscalls"},
    {ENOMEM, explain_memlock, NULL},
    {EINVAL, explain_flags, NULL},
    {EMFILE, NULL, "out of file descriptors (ulimit -n)"},
    {ENFILE, NULL, "out of file descriptors (ulimit -n)"},
    {EEXIST, NULL, "called from a thread that does not own the ring (IORING_SETUP_SINGLE_ISSUER)"},
};

void ring_explain_error(int err, const char *what, uint32_t setup_flags, char *buf, size_t len)
{
    char ebuf[128];
    const char *estr;

    if (!buf || len == 0)
        return;
    if (err < 0)
        err = -err;
    if (!what)
        what = "io_uring";
    estr = strerror_r(err, ebuf, sizeof ebuf);
    for (size_t i = 0; i < sizeof explanations / sizeof explanations[0]; i++) {
        if (explanations[i].err != err)
            continue;
        if (explanations[i].fn)
            explanations[i].fn(buf, len, what, estr, setup_flags);
        else
            snprintf(buf, len, "%s: %s: %s", what, estr, explanations[i].hint);
        return;
    }
    snprintf(buf, len, "%s: %s", what, estr);
}

int ring_error_set(ring_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}
