/* Tests for core/watch.c: descriptor watches on the shard's ring, over a
 * socketpair and a pipe: readable (level-triggered: a descriptor read only
 * partly is reported again), writable, interest changes, close while armed,
 * close inside its own callback, hang-up, and watches left open at shard
 * stop, on a real shard (mini_h2.h).  "Nothing more happened" is checked
 * after two round trips through the shard's loop (mini_on_shard), not after
 * a sleep. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mini_h2.h"

typedef struct wstate {
    spindle_watch *w;
    int fd, peer;
    uint32_t events;
    int read_per_call; /* bytes the callback reads per call (0: none) */
    bool close_in_cb;
    bool off_on_out; /* set events to 0 at the first OUT */
    bool close_on_hup;
    bool fd_closed;
    atomic_int calls, in_calls, out_calls, hup_calls, err_calls, nread, in_after_change;
    atomic_bool changed; /* interest moved from IN to OUT */
} wstate;

static wstate st;

static void watch_cb(spindle_watch *w, int fd, uint32_t revents, void *ctx)
{
    wstate *s = ctx;
    cr_assert_eq(w, s->w);
    cr_assert_eq(fd, s->fd);
    atomic_fetch_add(&s->calls, 1);
    if (revents & SPINDLE_WATCH_IN) {
        atomic_fetch_add(&s->in_calls, 1);
        if (atomic_load(&s->changed))
            atomic_fetch_add(&s->in_after_change, 1);
    }
    if (revents & SPINDLE_WATCH_OUT)
        atomic_fetch_add(&s->out_calls, 1);
    if (revents & SPINDLE_WATCH_HUP)
        atomic_fetch_add(&s->hup_calls, 1);
    if (revents & SPINDLE_WATCH_ERR)
        atomic_fetch_add(&s->err_calls, 1);
    if ((revents & SPINDLE_WATCH_IN) && s->read_per_call > 0) {
        char buf[256];
        ssize_t n = read(fd, buf, (size_t)s->read_per_call);
        if (n > 0)
            atomic_fetch_add(&s->nread, (int)n);
    }
    if ((revents & SPINDLE_WATCH_OUT) && s->off_on_out)
        cr_assert_eq(spindle_watch_set(w, 0), 0);
    if (s->close_in_cb || ((revents & SPINDLE_WATCH_HUP) && s->close_on_hup)) {
        spindle_watch_close(w);
        s->w = NULL;
    }
}

static void do_watch(void *arg)
{
    wstate *s = arg;
    spindle_shard *sh = spindle_current_shard();
    cr_assert_eq(spindle_watch_fd(sh, s->fd, 0x100, watch_cb, s, &s->w), SPINDLE_EINVAL);
    cr_assert_eq(spindle_watch_fd(sh, -1, SPINDLE_WATCH_IN, watch_cb, s, &s->w), SPINDLE_EINVAL);
    cr_assert_eq(spindle_watch_fd(sh, s->fd, s->events, watch_cb, s, &s->w), 0);
}

static void do_close(void *arg)
{
    wstate *s = arg;
    spindle_watch_close(s->w);
    s->w = NULL;
}

static uint32_t set_to;

static void do_set(void *arg)
{
    wstate *s = arg;
    cr_assert_eq(spindle_watch_set(s->w, set_to), 0);
}

/* The change and the mark "changed" together, on the shard: IN reported
 * before it (the watch was level-reporting the unread byte) is fine. */
static void do_set_out_marked(void *arg)
{
    wstate *s = arg;
    cr_assert_eq(spindle_watch_set(s->w, SPINDLE_WATCH_OUT), 0);
    atomic_store(&s->changed, true);
}

/* Watch a descriptor and close it before the ring sees the poll: the
 * kernel refuses it (-EBADF). */
static void do_watch_closed_fd(void *arg)
{
    wstate *s = arg;
    cr_assert_eq(
        spindle_watch_fd(spindle_current_shard(), s->fd, SPINDLE_WATCH_IN, watch_cb, s, &s->w), 0);
    close(s->fd);
    s->fd_closed = true;
}

static void do_set_in(void *arg)
{
    wstate *s = arg;
    cr_assert_eq(spindle_watch_set(s->w, SPINDLE_WATCH_IN), 0);
}

static void noop(void *arg)
{
    (void)arg;
}

/* Two full loop iterations of the shard: probes and CQEs of before are
 * done. */
static void settle_shard(void)
{
    mini_on_shard(0, noop, NULL);
    mini_on_shard(0, noop, NULL);
}

static void start(void)
{
    spindle_handler h = {0};
    mini_serve(spindle_config_default(), &h);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    st.fd = sv[0];
    st.peer = sv[1];
}

static void stop(void)
{
    if (st.w)
        mini_on_shard(0, do_close, &st);
    cr_assert_eq(mini_stop(), 0);
    if (!st.fd_closed)
        close(st.fd);
    close(st.peer);
}

TestSuite(watch, .init = start, .fini = stop, .timeout = 60);

static void put(int fd, size_t n)
{
    char buf[256];
    memset(buf, 'x', sizeof buf);
    cr_assert_leq(n, sizeof buf);
    cr_assert_eq(write(fd, buf, n), (ssize_t)n);
}

Test(watch, off_the_shard_thread_is_refused)
{
    spindle_watch *w = NULL;
    cr_assert_eq(spindle_watch_fd(NULL, st.fd, SPINDLE_WATCH_IN, watch_cb, &st, &w),
                 SPINDLE_ESTATE);
    cr_assert_null(w);
}

Test(watch, readable_partly_read_is_reported_again)
{
    st.events = SPINDLE_WATCH_IN;
    st.read_per_call = 10;
    mini_on_shard(0, do_watch, &st);
    settle_shard();
    cr_assert_eq(atomic_load(&st.calls), 0, "nothing to read yet");
    put(st.peer, 100); /* one wake-up; ten calls needed to drain it */
    cr_assert(mini_wait(&st.nread, 100), "level-triggered: every byte read");
    cr_assert_geq(atomic_load(&st.in_calls), 10);
    settle_shard();
    int calls = atomic_load(&st.calls);
    settle_shard();
    cr_assert_eq(atomic_load(&st.calls), calls, "drained: not reported any more");
    put(st.peer, 5);
    cr_assert(mini_wait(&st.nread, 105), "still armed");
}

Test(watch, undrained_until_interest_off)
{
    st.events = SPINDLE_WATCH_IN;
    mini_on_shard(0, do_watch, &st);
    put(st.peer, 1); /* never read */
    cr_assert(mini_wait(&st.in_calls, 5), "reported again while still readable");
    set_to = 0;
    mini_on_shard(0, do_set, &st);
    settle_shard();
    int calls = atomic_load(&st.calls);
    settle_shard();
    cr_assert_eq(atomic_load(&st.calls), calls, "events 0: quiet");
    set_to = SPINDLE_WATCH_IN;
    mini_on_shard(0, do_set, &st);
    cr_assert(mini_wait(&st.in_calls, calls + 2), "re-armed");
}

Test(watch, writable_then_off_inside_the_callback)
{
    st.events = SPINDLE_WATCH_OUT;
    st.off_on_out = true;
    mini_on_shard(0, do_watch, &st);
    cr_assert(mini_wait(&st.out_calls, 1));
    settle_shard();
    settle_shard();
    cr_assert_eq(atomic_load(&st.out_calls), 1, "interest off inside the callback holds");
    cr_assert_eq(atomic_load(&st.in_calls), 0);
}

Test(watch, interest_change_in_to_out_and_back)
{
    st.events = SPINDLE_WATCH_IN;
    st.off_on_out = true;
    mini_on_shard(0, do_watch, &st);
    put(st.peer, 1); /* readable from now on: never read */
    cr_assert(mini_wait(&st.in_calls, 1));
    mini_on_shard(0, do_set_out_marked, &st); /* the cancelled poll ends; re-armed for OUT */
    cr_assert(mini_wait(&st.out_calls, 1));
    settle_shard();
    cr_assert_eq(atomic_load(&st.in_after_change), 0, "IN no longer wanted: not reported");
    atomic_store(&st.changed, false);
    int in = atomic_load(&st.in_calls);
    set_to = SPINDLE_WATCH_IN;
    mini_on_shard(0, do_set, &st);
    cr_assert(mini_wait(&st.in_calls, in + 1), "IN again");
}

Test(watch, close_while_armed)
{
    st.events = SPINDLE_WATCH_IN;
    mini_on_shard(0, do_watch, &st);
    settle_shard();
    mini_on_shard(0, do_close, &st);
    put(st.peer, 10);
    settle_shard();
    settle_shard();
    cr_assert_eq(atomic_load(&st.calls), 0, "no callback after spindle_watch_close");
}

Test(watch, close_inside_its_own_callback)
{
    st.events = SPINDLE_WATCH_IN;
    st.close_in_cb = true;
    mini_on_shard(0, do_watch, &st);
    put(st.peer, 10);
    cr_assert(mini_wait(&st.calls, 1));
    put(st.peer, 10);
    settle_shard();
    settle_shard();
    cr_assert_eq(atomic_load(&st.calls), 1, "closed in its callback: never called again");
}

Test(watch, hang_up_on_a_pipe)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_NONBLOCK), 0);
    close(st.fd);
    st.fd = p[0];
    st.events = SPINDLE_WATCH_IN;
    st.close_on_hup = true;
    st.read_per_call = 64;
    mini_on_shard(0, do_watch, &st);
    cr_assert_eq(write(p[1], "abc", 3), 3);
    cr_assert(mini_wait(&st.nread, 3));
    close(p[1]);
    cr_assert(mini_wait(&st.hup_calls, 1), "the writer's close is reported");
    settle_shard();
    cr_assert_eq(atomic_load(&st.hup_calls), 1, "closed at the hang-up");
}

Test(watch, left_open_at_shard_stop)
{
    st.events = SPINDLE_WATCH_IN;
    st.read_per_call = 1;
    mini_on_shard(0, do_watch, &st);
    put(st.peer, 1);
    cr_assert(mini_wait(&st.nread, 1));
    st.w = NULL; /* "forgotten": the shard closes it at stop (and logs it) */
}

Test(watch, refused_descriptor_reported_once_then_rests)
{
    mini_on_shard(0, do_watch_closed_fd, &st);
    cr_assert(mini_wait(&st.err_calls, 1), "the ring's refusal is reported as ERR");
    settle_shard();
    settle_shard();
    cr_assert_eq(atomic_load(&st.calls), 1, "once: not re-armed into a spin");
    mini_on_shard(0, do_set_in, &st); /* asks again: refused again, reported again */
    cr_assert(mini_wait(&st.err_calls, 2));
    settle_shard();
    cr_assert_eq(atomic_load(&st.calls), 2);
}
