/* Tests for core/fileop.c: spindle_file_openat2 / statx / read on a real
 * shard's ring (mini_h2.h): a file opened beneath a directory, stat'ed and
 * read; the kernel's errors passed through (ENOENT, EXDEV for a path or a
 * symlink leaving the directory, EBADF); the calls refused off the shard
 * and with bad arguments; the callback always after the submitting call;
 * and a shard stopping with an op that never completes (a read of an empty
 * pipe): the stop waits up to drain_timeout_ms, the callback never runs,
 * nothing leaks (ASan); spindle_file_close with and without a callback. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mini_h2.h"

static char dir[64];
static int dirfd_ = -1;

typedef struct fstate {
    struct open_how how;
    struct statx stx;
    char buf[64];
    const char *path;
    int fd;
    atomic_int res_open, res_stat, res_read, calls;
    atomic_bool in_submit; /* a callback ran inside the submitting call */
    bool submitting;
} fstate;

static fstate fs;

static void on_read(spindle_shard *sh, int32_t res, void *ctx)
{
    (void)sh;
    fstate *f = ctx;
    if (f->submitting)
        atomic_store(&f->in_submit, true);
    atomic_store(&f->res_read, res);
    atomic_fetch_add(&f->calls, 1);
}

static void on_stat(spindle_shard *sh, int32_t res, void *ctx)
{
    fstate *f = ctx;
    atomic_store(&f->res_stat, res);
    if (res == 0)
        cr_assert_eq(spindle_file_read(sh, f->fd, f->buf, sizeof f->buf, 0, on_read, f), 0);
    else
        atomic_fetch_add(&f->calls, 1);
}

static void on_open(spindle_shard *sh, int32_t res, void *ctx)
{
    fstate *f = ctx;
    if (f->submitting)
        atomic_store(&f->in_submit, true);
    atomic_store(&f->res_open, res);
    if (res < 0) {
        atomic_fetch_add(&f->calls, 1);
        return;
    }
    f->fd = res;
    cr_assert_eq(
        spindle_file_statx(sh, res, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &f->stx, on_stat, f), 0);
}

static void do_open(void *arg)
{
    fstate *f = arg;
    memset(&f->how, 0, sizeof f->how);
    f->how.flags = O_RDONLY | O_CLOEXEC;
    f->how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    f->submitting = true;
    cr_assert_eq(
        spindle_file_openat2(spindle_current_shard(), dirfd_, f->path, &f->how, on_open, f), 0);
    f->submitting = false;
}

static void start(void)
{
    snprintf(dir, sizeof dir, "/tmp/spindle-fileop-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char p[128];
    snprintf(p, sizeof p, "%s/a.txt", dir);
    FILE *fp = fopen(p, "w");
    cr_assert_not_null(fp);
    fputs("hello, ring\n", fp);
    fclose(fp);
    snprintf(p, sizeof p, "%s/out", dir);
    cr_assert_eq(symlink("/etc/hostname", p), 0);
    dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(dirfd_, 0);
    memset(&fs, 0, sizeof fs);
    fs.fd = -1;
}

static void stop(void)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
    close(dirfd_);
}

TestSuite(fileop, .init = start, .fini = stop, .timeout = 60);

static void serve_one(spindle_config cfg)
{
    spindle_handler h = {0};
    mini_serve(cfg, &h);
}

Test(fileop, open_statx_read)
{
    serve_one(spindle_config_default());
    fs.path = "a.txt";
    mini_on_shard(0, do_open, &fs);
    cr_assert(mini_wait(&fs.calls, 1));
    cr_assert_geq(atomic_load(&fs.res_open), 0);
    cr_assert_eq(atomic_load(&fs.res_stat), 0);
    cr_assert_eq(fs.stx.stx_size, 12);
    cr_assert(S_ISREG(fs.stx.stx_mode));
    cr_assert_eq(atomic_load(&fs.res_read), 12);
    cr_assert_eq(memcmp(fs.buf, "hello, ring\n", 12), 0);
    cr_assert_not(atomic_load(&fs.in_submit), "a callback ran inside its submit");
    close(fs.fd);
    cr_assert_eq(mini_stop(), 0);
}

Test(fileop, kernel_errors_pass_through)
{
    serve_one(spindle_config_default());
    static const struct {
        const char *path;
        int err;
    } cases[] = {{"missing.txt", -ENOENT},
                 {"../etc/passwd", -EXDEV},
                 {"out", -EXDEV},
                 {"/etc/passwd", -EXDEV}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&fs, 0, sizeof fs);
        fs.path = cases[i].path;
        mini_on_shard(0, do_open, &fs);
        cr_assert(mini_wait(&fs.calls, 1), "%s", cases[i].path);
        cr_assert_eq(atomic_load(&fs.res_open), cases[i].err, "%s: %d", cases[i].path,
                     atomic_load(&fs.res_open));
    }
    cr_assert_eq(mini_stop(), 0);
}

static void do_refusals(void *arg)
{
    fstate *f = arg;
    spindle_shard *sh = spindle_current_shard();
    cr_assert_eq(spindle_file_read(sh, 0, f->buf, 1, 0, NULL, f), SPINDLE_EINVAL);
    cr_assert_eq(spindle_file_read(sh, -1, f->buf, 1, 0, on_read, f), SPINDLE_EINVAL);
    cr_assert_eq(spindle_file_openat2(sh, dirfd_, NULL, &f->how, on_open, f), SPINDLE_EINVAL);
    cr_assert_eq(spindle_file_statx(sh, dirfd_, "a.txt", 0, STATX_BASIC_STATS, NULL, on_stat, f),
                 SPINDLE_EINVAL);
    /* A bad descriptor is the kernel's answer, through the callback. */
    cr_assert_eq(spindle_file_read(sh, 9999, f->buf, 1, 0, on_read, f), 0);
}

Test(fileop, refusals)
{
    serve_one(spindle_config_default());
    cr_assert_eq(spindle_file_read(NULL, 0, fs.buf, 1, 0, on_read, &fs), SPINDLE_ESTATE);
    mini_on_shard(0, do_refusals, &fs);
    cr_assert(mini_wait(&fs.calls, 1));
    cr_assert_eq(atomic_load(&fs.res_read), -EBADF);
    cr_assert_eq(mini_stop(), 0);
}

static int pipefd[2];

static void do_read_pipe(void *arg)
{
    fstate *f = arg;
    cr_assert_eq(
        spindle_file_read(spindle_current_shard(), pipefd[0], f->buf, sizeof f->buf, 0, on_read, f),
        0);
}

/* An op that never completes (nothing is ever written to the pipe): the
 * stop waits for it up to drain_timeout_ms, then tears down without
 * running its callback (its memory stays the caller's, untouched). */
Test(fileop, stop_with_an_op_in_flight)
{
    spindle_config cfg = spindle_config_default();
    cfg.drain_timeout_ms = 300;
    serve_one(cfg);
    cr_assert_eq(pipe2(pipefd, O_CLOEXEC), 0);
    mini_on_shard(0, do_read_pipe, &fs);
    cr_assert_eq(mini_stop(), 0);
    cr_assert_eq(atomic_load(&fs.calls), 0, "the callback of an unfinished op ran");
    close(pipefd[0]);
    close(pipefd[1]);
}

static atomic_int close_res = 1, closes_done;

static void on_close_done(spindle_shard *sh, int32_t res, void *ctx)
{
    (void)sh;
    (void)ctx;
    atomic_store(&close_res, res);
    atomic_fetch_add(&closes_done, 1);
}

static int close_fds[2];

static void do_close(void *arg)
{
    (void)arg;
    spindle_shard *sh = spindle_current_shard();
    cr_assert_eq(spindle_file_close(sh, -1, on_close_done, NULL), SPINDLE_EINVAL);
    cr_assert_eq(spindle_file_close(sh, close_fds[0], on_close_done, NULL), 0);
    cr_assert_eq(spindle_file_close(sh, close_fds[1], NULL, NULL), 0); /* nobody waits */
}

/* spindle_file_close: the descriptor is closed by the ring, with a callback
 * or without one; refused with a negative descriptor or off the shard. */
Test(fileop, close)
{
    serve_one(spindle_config_default());
    close_fds[0] = openat(dirfd_, "a.txt", O_RDONLY | O_CLOEXEC);
    close_fds[1] = openat(dirfd_, "a.txt", O_RDONLY | O_CLOEXEC);
    cr_assert(close_fds[0] >= 0 && close_fds[1] >= 0);
    cr_assert_eq(spindle_file_close(NULL, close_fds[0], NULL, NULL), SPINDLE_ESTATE);
    mini_on_shard(0, do_close, NULL);
    cr_assert(mini_wait(&closes_done, 1));
    cr_assert_eq(atomic_load(&close_res), 0);
    cr_assert_eq(fcntl(close_fds[0], F_GETFD), -1);
    bool closed = false;
    for (int i = 0; i < 1000 && !closed; i++) {
        closed = fcntl(close_fds[1], F_GETFD) == -1;
        if (!closed)
            usleep(1000);
    }
    cr_assert(closed, "the close without a callback did not happen");
    cr_assert_eq(mini_stop(), 0);
}
