/* Tests for core/async.c: on_shard_start / on_shard_stop on the shard's own
 * thread with the per-shard context visible from callbacks, the loop still
 * running watches and timers after on_shard_stop, and shard timers (order,
 * cancel, the calling shard), and the end-of-iteration hook, on real shards
 * (mini_h2.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "async.h" /* async_test_idle_wait_ms (SPINDLE_TEST_HOOKS) */
#include "mini_h2.h"
#include "shard.h" /* sh->now: the shard clock the timers run on */

#define NSHARDS 2

typedef struct shard_ctx {
    uint32_t idx;
    pthread_t tid;
    spindle_shard *sh;
} shard_ctx;

static int app_token; /* the app pointer given to spindle_run */
static atomic_int starts, stops, stop_ok, stop_timer_fired, requests_ok, stop_watch_closed;
static shard_ctx *ctxs[NSHARDS];

static void *on_start(spindle_shard *sh, void *app)
{
    shard_ctx *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->idx = spindle_shard_index(sh);
    c->tid = pthread_self();
    c->sh = sh;
    bool ok = app == &app_token && spindle_current_shard() == sh && c->idx < NSHARDS &&
              spindle_shard_ctx(sh) == NULL && spindle_shard_count() == NSHARDS;
    if (ok) {
        ctxs[c->idx] = c;
        atomic_fetch_add(&starts, 1);
    }
    return c;
}

static void on_request(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)req;
    spindle_shard *sh = spindle_current_shard();
    shard_ctx *c = spindle_shard_ctx(sh);
    bool ok = app == &app_token && c && c->sh == sh && c->idx == spindle_stream_shard(s) &&
              pthread_equal(c->tid, pthread_self());
    if (ok)
        atomic_fetch_add(&requests_ok, 1);
    spindle_respond(s, ok ? 204 : 500, NULL, 0, true);
}

/* After on_shard_stop: a watch is still open, closed by a timer, so the
 * shard must keep its loop running for the timer to fire and finish. */
typedef struct stop_wait {
    spindle_watch *w;
    int fds[2];
} stop_wait;

static void stop_watch_fn(spindle_watch *w, int fd, uint32_t revents, void *ctx)
{
    (void)w;
    (void)fd;
    (void)revents;
    (void)ctx;
}

static void stop_timer(spindle_shard *sh, void *arg)
{
    stop_wait *sw = arg;
    (void)sh;
    atomic_fetch_add(&stop_timer_fired, 1);
    spindle_watch_close(sw->w);
    close(sw->fds[0]);
    close(sw->fds[1]);
    free(sw);
    atomic_fetch_add(&stop_watch_closed, 1);
}

static void on_stop(spindle_shard *sh, void *shard_ctx_, void *app)
{
    shard_ctx *c = shard_ctx_;
    bool ok = app == &app_token && c && c->sh == sh && spindle_current_shard() == sh &&
              spindle_shard_ctx(sh) == c && pthread_equal(c->tid, pthread_self());
    stop_wait *sw = calloc(1, sizeof *sw);
    cr_assert_not_null(sw);
    cr_assert_eq(pipe(sw->fds), 0);
    ok = ok && spindle_watch_fd(sh, sw->fds[0], SPINDLE_WATCH_IN, stop_watch_fn, NULL, &sw->w) == 0;
    ok = ok && spindle_shard_after(sh, 30, stop_timer, sw, NULL) == 0;
    if (ok)
        atomic_fetch_add(&stop_ok, 1);
    atomic_fetch_add(&stops, 1);
    ctxs[c->idx] = NULL;
    free(c);
}

static int request(uint16_t port)
{
    int fd = mini_dial(port);
    mini_preface(fd);
    mini_get_headers(fd, 1, "/", true);
    mini_frame f;
    int status = 0;
    while (mini_read(fd, &f))
        if (f.type == 1 && f.sid == 1) {
            status = f.p[0] == 0x89 ? 204 : 500; /* HPACK static index 9: :status 204 */
            break;
        }
    close(fd);
    return status;
}

Test(async, shard_lifecycle_on_its_thread, .timeout = 60)
{
    spindle_config cfg = spindle_config_default();
    cfg.shards = NSHARDS;
    spindle_handler h = {.on_request = on_request};
    spindle_hooks hooks = {.on_shard_start = on_start, .on_shard_stop = on_stop};
    atomic_store(&starts, 0);
    atomic_store(&stops, 0);
    uint16_t port = mini_serve_hooks(cfg, &h, &hooks, &app_token);
    cr_assert_eq(atomic_load(&starts), NSHARDS,
                 "on_shard_start ran before on_listen, once a shard");
    cr_assert_null(spindle_current_shard(), "not a shard thread");
    for (int i = 0; i < 8; i++)
        cr_assert_eq(request(port), 204);
    cr_assert_eq(atomic_load(&requests_ok), 8);
    cr_assert_eq(atomic_load(&stops), 0);
    cr_assert_eq(mini_stop(), 0);
    cr_assert_eq(atomic_load(&stops), NSHARDS);
    cr_assert_eq(atomic_load(&stop_ok), NSHARDS,
                 "on_shard_stop: its thread, its ctx, watches work");
    cr_assert_eq(atomic_load(&stop_timer_fired), NSHARDS, "timers run after on_shard_stop");
    cr_assert_eq(atomic_load(&stop_watch_closed), NSHARDS);
    cr_assert_eq(spindle_shard_count(), NSHARDS);
}

/* --- Shard timers --------------------------------------------------------- */

/* Timers due in the same loop iteration fire in no particular order
 * (timer_wheel_advance), and a shard on a loaded machine may wake late with
 * several due at once; so the order is judged on the shard's clock
 * (sh->now, the time each advance ran at): no timer fires before its
 * deadline, and one fires after a timer with a later deadline only if both
 * were due in that advance.  On a prompt shard that is exactly deadline
 * order.  Record i (arg i) is due at timer_ms[i]; the timer to cancel at
 * CANCEL_MS, before the last record's, so the last one firing means its
 * deadline has passed. */
#define CANCEL_MS 200u
static const uint32_t timer_ms[4] = {0, 5, 20, 250};
static atomic_int order[4], norder, cancelled_ran, pending_ran;
static _Atomic uint64_t fired_at[4], armed_at; /* the shard's clock */
static atomic_bool cancel_late, cancel_judged;
static spindle_timer *to_cancel;

static void record(spindle_shard *sh, void *arg)
{
    int i = atomic_fetch_add(&norder, 1);
    if (i < 4) {
        atomic_store(&fired_at[i], sh->sh->now);
        atomic_store(&order[i], (int)(intptr_t)arg);
    }
}

static void must_not_run(spindle_shard *sh, void *arg)
{
    (void)sh;
    (void)arg;
    atomic_store(&cancelled_ran, 1);
}

static void arm_timers(void *arg)
{
    (void)arg;
    spindle_shard *sh = spindle_current_shard();
    cr_assert_not_null(sh);
    atomic_store(&armed_at, sh->sh->now);
    cr_assert_eq(spindle_shard_after(sh, timer_ms[3], record, (void *)3, NULL), 0);
    cr_assert_eq(spindle_shard_after(sh, timer_ms[1], record, (void *)1, NULL), 0);
    cr_assert_eq(spindle_shard_after(sh, CANCEL_MS, must_not_run, NULL, &to_cancel), 0);
    cr_assert_eq(spindle_shard_after(sh, timer_ms[2], record, (void *)2, NULL), 0);
    cr_assert_eq(spindle_shard_after(sh, 10, NULL, NULL, NULL), SPINDLE_EINVAL);
}

/* Posted from the test thread: if that thread was kept off a CPU past
 * CANCEL_MS, the timer has fired and is gone (cancel would be a use after
 * free): the attempt is marked late and repeated. */
static void cancel_one(void *arg)
{
    (void)arg;
    if (atomic_load(&cancelled_ran)) {
        atomic_store(&cancel_late, true);
        return;
    }
    spindle_timer_cancel(to_cancel);
    spindle_timer_cancel(NULL);
}

/* On the shard, after the advance that fired the last record: every
 * callback of that advance has run. */
static void judge_cancel(void *arg)
{
    (void)arg;
    if (!atomic_load(&cancel_late)) {
        cr_assert_eq(atomic_load(&cancelled_ran), 0, "a cancelled timer ran");
        atomic_store(&cancel_judged, true);
    }
}

static void check_timer_order(void)
{
    uint64_t t0 = atomic_load(&armed_at);
    int seen = 0;
    for (int i = 0; i < 3; i++) {
        int a = atomic_load(&order[i]);
        cr_assert(a >= 1 && a <= 3 && !(seen & (1 << a)), "record %d: timer %d", i, a);
        seen |= 1 << a;
        uint64_t at = atomic_load(&fired_at[i]);
        cr_assert_geq(at, t0 + timer_ms[a], "timer %d (%u ms) fired %llu ms after arming", a,
                      timer_ms[a], (unsigned long long)(at - t0));
        int b = i ? atomic_load(&order[i - 1]) : 0;
        if (b && timer_ms[b] > timer_ms[a]) /* out of deadline order: both due then? */
            cr_assert_geq(atomic_load(&fired_at[i - 1]), t0 + timer_ms[a],
                          "timer %d fired before timer %d, which was not due yet", b, a);
    }
}

static void left_pending(spindle_shard *sh, void *arg)
{
    (void)sh;
    (void)arg;
    atomic_store(&pending_ran, 1);
}

static void arm_forever(void *arg)
{
    (void)arg;
    cr_assert_eq(spindle_shard_after(spindle_current_shard(), 3600000, left_pending, NULL, NULL),
                 0);
}

Test(async, shard_timers_fire_in_order_and_cancel, .timeout = 60)
{
    spindle_handler h = {.on_request = on_request};
    mini_serve_hooks(spindle_config_default(), &h, NULL, &app_token);
    cr_assert_eq(spindle_shard_after(NULL, 1, record, NULL, NULL), SPINDLE_ESTATE);
    for (int attempt = 0; attempt < 10 && !atomic_load(&cancel_judged); attempt++) {
        atomic_store(&norder, 0);
        atomic_store(&cancelled_ran, 0);
        atomic_store(&cancel_late, false);
        mini_on_shard(0, arm_timers, NULL);
        mini_on_shard(0, cancel_one, NULL);
        cr_assert(mini_wait(&norder, 3));
        mini_on_shard(0, judge_cancel, NULL);
        check_timer_order();
        cr_assert_eq(atomic_load(&norder), 3);
    }
    cr_assert(atomic_load(&cancel_judged), "every cancel came after the timer's deadline");
    mini_on_shard(0, arm_forever, NULL);
    cr_assert_eq(mini_stop(), 0); /* the pending hour-long timer is dropped, not waited for */
    cr_assert_eq(atomic_load(&pending_ran), 0);
    cr_assert_eq(atomic_load(&norder), 3);
}

/* --- The end-of-iteration hook (spindle_shard_on_loop_end) ---------------- */

static spindle_handle staged; /* a request waiting for the hook */
static atomic_int hook_calls, hook_answered, hook_wrong_thread, hook_rules_ok;
static pthread_t hook_tid;

static void loop_end(spindle_shard *sh, void *arg)
{
    atomic_fetch_add(&hook_calls, 1);
    if (arg != &app_token || sh != spindle_current_shard() ||
        !pthread_equal(hook_tid, pthread_self()))
        atomic_store(&hook_wrong_thread, 1);
    spindle_stream *s = spindle_handle_stream(staged);
    staged.v = 0;
    if (s && spindle_respond(s, 204, NULL, 0, true) == 0)
        atomic_fetch_add(&hook_answered, 1);
}

static void other_hook(spindle_shard *sh, void *arg)
{
    (void)sh;
    (void)arg;
}

static void *hook_start(spindle_shard *sh, void *app)
{
    hook_tid = pthread_self();
    bool ok = spindle_shard_on_loop_end(sh, loop_end, app) == 0 &&
              spindle_shard_on_loop_end(sh, loop_end, app) == 0 && /* the same: fine */
              spindle_shard_on_loop_end(sh, other_hook, app) == SPINDLE_ESTATE &&
              spindle_shard_on_loop_end(sh, loop_end, NULL) == SPINDLE_ESTATE;
    atomic_store(&hook_rules_ok, ok);
    return NULL;
}

/* The handler only stages the request; the hook answers it. */
static void stage(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)req;
    (void)app;
    staged = spindle_stream_handle(s);
}

static void clear_hook(void *arg)
{
    (void)arg;
    spindle_shard *sh = spindle_current_shard();
    cr_assert_eq(spindle_shard_on_loop_end(sh, NULL, NULL), 0);
    cr_assert_eq(spindle_shard_on_loop_end(sh, NULL, NULL), 0);
}

static void nothing(void *arg)
{
    (void)arg;
}

/* Built with the test hooks, an idle shard waits 120 s instead of 1 s: if
 * the hook ran after the flush (or after the wait), its answer would sit
 * unsent until a later wake-up, and the 10 s read below would fail; run
 * before the flush, it leaves in the same iteration's write. */
Test(async, loop_end_hook_runs_each_iteration_before_the_flush, .timeout = 60)
{
    async_test_idle_wait_ms = 120000;
    spindle_handler h = {.on_request = stage};
    spindle_hooks hooks = {.on_shard_start = hook_start};
    uint16_t port = mini_serve_hooks(spindle_config_default(), &h, &hooks, &app_token);
    cr_assert(atomic_load(&hook_rules_ok), "one hook a shard: set, same again, others refused");
    cr_assert_eq(spindle_shard_on_loop_end(NULL, loop_end, NULL), SPINDLE_ESTATE);
    int fd = mini_dial(port);
    mini_preface(fd);
    mini_frame f;
    int settings = 0; /* the server's SETTINGS and its ACK of ours */
    while (settings < 2 && mini_read(fd, &f))
        settings += f.type == 4;
    cr_assert_eq(settings, 2);
    for (uint32_t sid = 1; sid <= 5; sid += 2) {
        mini_get_headers(fd, sid, "/", true);
        bool got = false;
        while (!got && mini_read(fd, &f))
            got = f.type == 1 && f.sid == sid && f.p[0] == 0x89; /* :status 204 */
        cr_assert(got, "stream %u answered by the hook, in the iteration's write", sid);
    }
    close(fd);
    cr_assert_eq(atomic_load(&hook_answered), 3);
    cr_assert_eq(atomic_load(&hook_wrong_thread), 0, "on the shard's thread, with its arg");
    mini_on_shard(0, clear_hook, NULL);
    int calls = atomic_load(&hook_calls);
    mini_on_shard(0, nothing, NULL);
    mini_on_shard(0, nothing, NULL);
    cr_assert_eq(atomic_load(&hook_calls), calls, "cleared: no more calls");
    cr_assert_eq(mini_stop(), 0);
}
