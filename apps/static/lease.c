/* lease.c - read leases on descriptor entries (lease.h). */
#define _GNU_SOURCE
#include "lease.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "reval.h"

#define LEASE_SIGNAL  (SIGRTMIN + 4)
#define BREAKS        64u /* breaks recorded between two looks of the shard */
#define RELEASE_AFTER 1u  /* ms: the descriptor of a broken lease closes a tick later */

static bool enabled; /* lease_init() succeeded */

/* Per shard thread.  The signal handler runs on the shard's thread (the
 * descriptor's owner is that thread: F_OWNER_TID) and only appends to
 * breaks[] (a ring: the handler writes, the shard reads, on one thread)
 * and writes the eventfd; everything else happens in the watch callback. */
static _Thread_local volatile int breaks[BREAKS];
static _Thread_local volatile sig_atomic_t breaks_w, breaks_r;
static _Thread_local volatile sig_atomic_t overflow; /* some break's descriptor was lost */
static _Thread_local int efd = -1;
static _Thread_local spindle_watch *watch;
static _Thread_local spindle_shard *shard;
static _Thread_local fcache *cache; /* the cache whose entries hold leases */
static _Thread_local uint32_t gen;  /* the last lease generation given out */

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int saved = errno;
    unsigned w = (unsigned)breaks_w;
    if (sig != LEASE_SIGNAL || w - (unsigned)breaks_r >= BREAKS) {
        overflow = 1; /* SIGIO: the kernel's realtime queue was full */
    } else {
        breaks[w % BREAKS] = si->si_fd;
        atomic_signal_fence(memory_order_release);
        breaks_w = (sig_atomic_t)(w + 1);
    }
    if (efd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(efd, &one, sizeof one);
        (void)n;
    }
    errno = saved;
}

bool lease_init(void)
{
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_sigaction = on_signal;
    act.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&act.sa_mask);
    enabled = sigaction(LEASE_SIGNAL, &act, NULL) == 0 && sigaction(SIGIO, &act, NULL) == 0;
    return enabled;
}

static void close_later(spindle_shard *sh, void *arg)
{
    (void)sh;
    close((int)(intptr_t)arg);
}

/* Drop e now and let its lease go a tick later: the responses this loop
 * iteration queued from its mapping are written first. */
static void release(fc_entry *e)
{
    int fd = e->fd;
    e->fd = -1;
    fcache_drop(cache, e);
    if (spindle_shard_after(shard, RELEASE_AFTER, close_later, (void *)(intptr_t)fd, NULL) != 0)
        close(fd);
}

/* The breaks recorded since the last look: each leased entry whose
 * descriptor broke (every leased entry, after an overflow) is released. */
static void on_breaks(spindle_watch *w, int fd, uint32_t revents, void *ctx)
{
    (void)w;
    (void)revents;
    (void)ctx;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof n); /* drain: the watch is level-triggered */
    (void)r;
    unsigned end = (unsigned)breaks_w;
    atomic_signal_fence(memory_order_acquire);
    bool all = overflow;
    overflow = 0;
    for (unsigned i = (unsigned)breaks_r; cache && i != end; i++) {
        int bfd = breaks[i % BREAKS];
        for (fc_entry *e = fcache_mru(cache), *next; e; e = next) {
            next = e->next;
            if (e->lease != LEASE_NONE && e->fd == bfd) {
                release(e);
                break;
            }
        }
    }
    breaks_r = (sig_atomic_t)end;
    for (fc_entry *e = all && cache ? fcache_mru(cache) : NULL, *next; e; e = next) {
        next = e->next;
        if (e->lease != LEASE_NONE)
            release(e);
    }
}

void lease_shard_start(spindle_shard *sh)
{
    if (!enabled)
        return;
    efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0)
        return;
    if (spindle_watch_fd(sh, efd, SPINDLE_WATCH_IN, on_breaks, NULL, &watch) != 0) {
        close(efd);
        efd = -1;
        return;
    }
    shard = sh;
}

void lease_shard_stop(void)
{
    spindle_watch_close(watch);
    watch = NULL;
    shard = NULL;
    cache = NULL;
    if (efd >= 0) {
        int fd = efd;
        efd = -1;
        close(fd);
    }
}

void lease_take(spindle_shard *sh, fcache *c, fc_entry *e, int root_fd)
{
    if (!shard || sh != shard || e->fd < 0)
        return;
    struct f_owner_ex owner = {F_OWNER_TID, gettid()};
    if (fcntl(e->fd, F_SETSIG, LEASE_SIGNAL) != 0 || fcntl(e->fd, F_SETOWN_EX, &owner) != 0 ||
        fcntl(e->fd, F_SETLEASE, F_RDLCK) != 0)
        return; /* EAGAIN, EACCES, no leases here: per-hit fstat, as before */
    cache = c;
    e->lease = LEASE_HELD;
    e->lease_gen = ++gen ? gen : ++gen; /* never 0 */
    /* The data came from a STATX before the lease: confirm it now that no
     * writer can come in unseen.  If the check cannot start, the next due
     * revalidation confirms it. */
    if (!e->checking)
        (void)reval_start(sh, c, e, root_fd);
}
