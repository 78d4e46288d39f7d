/* accesslog_writer.c - the access log's log thread: it writes the chunks
 * the shards hand over (a batch per writev(2)) and hands them back for
 * reuse; start, stop and SIGHUP reopen.  The shard side: accesslog.c. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "accesslog_internal.h"
#include "log.h"
#include "server.h"
#include "shard.h"

alog_chunk *alog_chunk_get(alog_shard *a)
{
    alog_chunk *k;
    if (!spsc_pop(&a->freeq, &k)) {
        k = malloc(sizeof *k);
        if (!k)
            return NULL;
    }
    k->len = 0;
    return k;
}

static int open_log(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

/* Keep the file allocated ALOG_PREALLOC past its end, a step at a time
 * (fallocate FALLOC_FL_KEEP_SIZE: the size, and what readers see, stay
 * the lines written).  Writes then land in allocated blocks, so ext4 skips
 * its per-page delayed allocation (reserving, then allocating at
 * writeback): the log thread's CPU per request is a few ns lower
 * (docs/ops.md).  A file cut short (logrotate's copytruncate) is
 * preallocated again from its new end; a file system without fallocate
 * is left alone. */
static void prealloc(alog_server *L)
{
    struct stat st;
    if (L->no_prealloc || fstat(L->fd, &st) != 0)
        return;
    int64_t end = st.st_size;
    if (end >= L->pa_from && end + ALOG_PREALLOC / 2 <= L->pa_to)
        return;
    if (fallocate(L->fd, FALLOC_FL_KEEP_SIZE, end, ALOG_PREALLOC) != 0) {
        if (errno == EOPNOTSUPP || errno == ENOSYS)
            L->no_prealloc = true;
        return; /* ENOSPC and the like: the writes will say */
    }
    L->pa_from = end;
    L->pa_to = end + ALOG_PREALLOC;
}

/* Whether to preallocate the log just opened: a regular file on a file
 * system with blocks to allocate (not stdout; not tmpfs, where it would
 * only hold memory). */
static bool wants_prealloc(const alog_server *L)
{
    struct stat st;
    struct statfs fs;
    return !L->is_stdout && fstat(L->fd, &st) == 0 && S_ISREG(st.st_mode) &&
           fstatfs(L->fd, &fs) == 0 && fs.f_type != TMPFS_MAGIC;
}

/* Before the file is closed: give back what was preallocated past its
 * end, so it holds its lines' blocks only.  A truncate to the size it has
 * (ext4 and XFS free the blocks past the end then; ext4 does not punch
 * holes past the end).  A copytruncate landing between the fstat and the
 * truncate would get its old size back as a hole: a window of a syscall,
 * at exit or SIGHUP only, which rotation with copytruncate does not send. */
static void prealloc_release(alog_server *L)
{
    struct stat st;
    if (L->pa_to && fstat(L->fd, &st) == 0 && st.st_size < L->pa_to &&
        ftruncate(L->fd, st.st_size) != 0)
        log_msg(LOG_WARN, -1, "access log: truncate: %s", strerror(errno));
    L->pa_from = L->pa_to = 0;
}

/* Write iov[0..n) whole (one writev(2) unless the kernel takes less). */
static void writev_all(alog_server *L, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(L->fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            log_msg(LOG_WARN, -1, "access log: write: %s", w < 0 ? strerror(errno) : "0 bytes");
            return;
        }
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
}

/* Write what one shard has queued, in batches, and hand the chunks back
 * (or free them when its free queue is full).  The bytes written. */
static size_t drain_shard(alog_server *L, alog_shard *a)
{
    alog_chunk *batch[ALOG_BATCH];
    struct iovec iov[ALOG_BATCH];
    size_t bytes = 0;
    uint32_t n;
    while ((n = spsc_pop_n(&a->q, batch, ALOG_BATCH)) > 0) {
        for (uint32_t i = 0; i < n; i++) {
            iov[i] = (struct iovec){batch[i]->data, batch[i]->len};
            bytes += batch[i]->len;
        }
        writev_all(L, iov, (int)n);
        uint32_t back = spsc_push_n(&a->freeq, batch, n);
        for (uint32_t i = back; i < n; i++)
            free(batch[i]);
    }
    return bytes;
}

/* Write every queued chunk; the bytes written. */
static size_t drain_all(alog_server *L)
{
    size_t bytes = 0;
    for (uint32_t i = 0; i < L->nshards; i++)
        bytes += drain_shard(L, &L->shards[i]);
    return bytes;
}

static void do_reopen(alog_server *L)
{
    if (L->is_stdout)
        return;
    int fd = open_log(L->srv->cfg.access_log);
    if (fd < 0) {
        log_msg(LOG_WARN, -1, "access log: cannot reopen %s: %s (keeping the old file)",
                L->srv->cfg.access_log, strerror(errno));
        return;
    }
    prealloc_release(L);
    close(L->fd);
    L->fd = fd;
    L->no_prealloc = !wants_prealloc(L);
    log_msg(LOG_INFO, -1, "access log: reopened %s", L->srv->cfg.access_log);
}

/* Polls: ALOG_BUSY_MS after a round that wrote (a shard filling chunks
 * fills a few per period: one writev each round, and the queue stays far
 * from full), ALOG_PERIOD_MS when idle (the shards hand a partial chunk
 * over once a second). */
static void *log_thread(void *arg)
{
    alog_server *L = arg;
    for (;;) {
        bool stopping = atomic_load(&L->stop);
        if (atomic_exchange(&L->reopen, false)) {
            drain_all(L); /* lines before the HUP go to the old file */
            do_reopen(L);
        }
        size_t bytes = drain_all(L);
        if (bytes)
            prealloc(L); /* for the next rounds' writes */
        if (stopping && !bytes)
            break; /* the shards have exited: nothing more comes */
        long ms = bytes ? ALOG_BUSY_MS : ALOG_PERIOD_MS;
        nanosleep(&(struct timespec){0, ms * 1000000L}, NULL);
    }
    return NULL;
}

int alog_start(server *srv)
{
    const char *path = srv->cfg.access_log;
    if (!path || !*path)
        return 0;
    alog_server *L = calloc(1, sizeof *L);
    size_t bytes = (srv->nshards * sizeof(alog_shard) + 63) & ~(size_t)63;
    alog_shard *sh = L ? aligned_alloc(64, bytes) : NULL;
    if (!sh) {
        free(L);
        return SPINDLE_ENOMEM;
    }
    memset(sh, 0, bytes);
    L->srv = srv;
    L->json = srv->cfg.access_log_format == 1;
    L->is_stdout = strcmp(path, "-") == 0;
    L->fd = L->is_stdout ? dup(STDOUT_FILENO) : open_log(path);
    if (L->fd < 0) {
        log_msg(LOG_ERROR, -1, "access log: cannot open %s: %s", path, strerror(errno));
        free(sh);
        free(L);
        return SPINDLE_ESYS;
    }
    L->no_prealloc = !wants_prealloc(L);
    L->nshards = srv->nshards;
    L->shards = sh;
    for (uint32_t i = 0; i < srv->nshards; i++) {
        spsc_init(&sh[i].q, sh[i].slots, ALOG_QUEUE, sizeof(alog_chunk *));
        spsc_init(&sh[i].freeq, sh[i].free_slots, ALOG_QUEUE, sizeof(alog_chunk *));
        sh[i].json = L->json;
        srv->shards[i].view.alog = &sh[i];
    }
    atomic_init(&L->stop, false);
    atomic_init(&L->reopen, false);
    if (pthread_create(&L->thread, NULL, log_thread, L) != 0) {
        log_msg(LOG_ERROR, -1, "access log: cannot start its thread");
        for (uint32_t i = 0; i < srv->nshards; i++)
            srv->shards[i].view.alog = NULL;
        close(L->fd);
        free(sh);
        free(L);
        return SPINDLE_ESYS;
    }
    /* Its own name, for /proc/PID/task/TID/comm (bench/ops.sh, top -H). */
    pthread_setname_np(L->thread, "spindle-alog");
    srv->alog = L;
    return 0;
}

void alog_stop(server *srv)
{
    alog_server *L = srv->alog;
    if (!L)
        return;
    atomic_store(&L->stop, true);
    pthread_join(L->thread, NULL);
    drain_all(L); /* nothing is left; belt and braces */
    prealloc_release(L);
    for (uint32_t i = 0; i < L->nshards; i++) {
        alog_shard *a = &L->shards[i];
        alog_chunk *k;
        free(a->cur); /* a shard that failed before its teardown */
        while (spsc_pop(&a->freeq, &k))
            free(k);
        while (a->npool)
            free(a->pool[--a->npool]);
    }
    close(L->fd);
    free(L->shards);
    free(L);
    srv->alog = NULL;
}

void alog_reopen(server *srv)
{
    if (srv->alog)
        atomic_store(&srv->alog->reopen, true);
}
