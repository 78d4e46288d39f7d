/* timer_wheel.h - hierarchical hashed timer wheel driven by the caller's clock.
 *
 * The wheel never reads a clock: time enters as `now_ms` arguments (a shard
 * passes the loop's cached monotonic time), so tests drive it with a fake one.
 * Times are uint64_t milliseconds on any monotonic scale the caller chooses.
 *
 * Timers are intrusive: embed a timer_node in the owning object and recover
 * the object in the callback with container_of-style arithmetic.  The wheel
 * never allocates.
 *
 * Shape (h2o's timerwheel and the Linux kernel's wheel use the same idea):
 * TIMER_WHEEL_LEVELS levels of 64 slots, level L slot s holding timers whose
 * deadline has digit s in bits [6L, 6L+6) and agrees with the wheel's current
 * time above them.  A timer goes to the level of the highest bit in which its
 * deadline differs from the current time, so level 0 holds timers due within
 * the current 64 ms block, each slot one exact millisecond; level 1 slots span
 * 64 ms, level 2 4.1 s, level 3 4.4 min, level 4 4.7 h, level 5 12.4 days.
 * Deadlines past the top level (more than 2^36 ms, ~795 days, or across a
 * 2^36 boundary) sit on an overflow list that is re-sorted when the current
 * time crosses such a boundary.  As time advances, a slot whose block has
 * begun is re-sorted into lower levels ("cascading"); each timer cascades at
 * most once per level.  A 64-bit occupancy mask per level lets advance and
 * next_deadline skip empty slots, so a long idle jump costs no more than a
 * short one.
 *
 * Costs: add and cancel O(1); advance O(levels + timers fired or cascaded);
 * next_deadline O(levels).
 *
 * Threads: a wheel belongs to one thread (its shard); no locking.
 */
#ifndef SPINDLE_CORE_TIMER_WHEEL_H
#define SPINDLE_CORE_TIMER_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TIMER_WHEEL_BITS   6
#define TIMER_WHEEL_SLOTS  (1u << TIMER_WHEEL_BITS) /* 64: one occupancy word per level */
#define TIMER_WHEEL_LEVELS 6

/* No timer pending: timer_wheel_next_deadline's answer for an empty wheel. */
#define TIMER_WHEEL_NEVER UINT64_MAX

typedef struct timer_link {
    struct timer_link *next, *prev;
} timer_link;

/* A timer.  Zero it (or timer_node_init) before first use; the wheel owns the
 * fields while the timer is pending.  Read `deadline` freely. */
typedef struct timer_node {
    timer_link link;   /* next == NULL: not pending */
    uint64_t deadline; /* ms, as given to timer_wheel_add */
    uint8_t level;     /* where it is filed; internal */
    uint8_t slot;
    uint8_t kind; /* the owner's tag (which struct embeds the node) */
} timer_node;

typedef struct timer_wheel {
    uint64_t now; /* every timer with deadline <= now has fired or is due */
    size_t count; /* pending timers */
    bool in_advance;
    uint64_t occupied[TIMER_WHEEL_LEVELS]; /* bit s: slot s non-empty */
    timer_link slots[TIMER_WHEEL_LEVELS][TIMER_WHEEL_SLOTS];
    timer_link overflow; /* deadline beyond the top level */
    timer_link due;      /* added with deadline <= now: fire at the next advance */
    timer_link firing;   /* expired, not yet fired: the advance under way */
} timer_wheel;

/* Called once per expired timer, with the timer already removed from the
 * wheel (not pending).  Inside the callback the caller may add, re-add or
 * cancel any timer of this wheel, including this one and timers that expired
 * in the same advance but have not fired yet (cancelling one means it does
 * not fire).  It must not call timer_wheel_advance or re-initialize the wheel. */
typedef void (*timer_wheel_cb)(timer_wheel *w, timer_node *t, void *arg);

/* Makes the wheel empty with current time now_ms.  An initialized wheel must
 * not be copied or moved: its list heads point into it. */
void timer_wheel_init(timer_wheel *w, uint64_t now_ms);

/* Marks a node not pending (same as zeroing it). */
void timer_node_init(timer_node *t);

/* True while `t` is in a wheel: added, and neither fired nor cancelled. */
static inline bool timer_node_pending(const timer_node *t)
{
    return t->link.next != NULL;
}

/* Arms `t` to expire at deadline_ms; a pending `t` is moved (re-armed), so an
 * idle timeout is refreshed by calling this again.  A node belongs to one
 * wheel at a time.  A deadline at or before
 * the wheel's current time fires at the next timer_wheel_advance - never
 * inside this call, and, when added from a callback, not in the advance that
 * is running (so a timer re-arming itself at `now` cannot loop forever). */
void timer_wheel_add(timer_wheel *w, timer_node *t, uint64_t deadline_ms);

/* Disarms `t`.  Returns true if it was pending, false if it had already fired
 * or was never added (a no-op then: cancelling twice is safe). */
bool timer_wheel_cancel(timer_wheel *w, timer_node *t);

/* Moves the wheel's time to now_ms and fires every pending timer whose
 * deadline <= now_ms, each once, calling cb(w, t, arg).  Timers firing in one
 * call fire in no particular order (callers that need order by deadline
 * advance one millisecond at a time).  A now_ms earlier than the wheel's time
 * is treated as the wheel's time (it never goes backwards).  Returns the
 * number of callbacks made. */
size_t timer_wheel_advance(timer_wheel *w, uint64_t now_ms, timer_wheel_cb cb, void *arg);

/* A lower bound on the earliest pending deadline, to size the event loop's
 * wait: no timer fires before the returned time, and advancing to it either
 * fires timers or moves them to a finer level, so waiting on it converges.
 * Exact when the earliest timer is due within the current 64 ms block; at
 * most one level's slot width early otherwise (the loop then wakes a few
 * extra times on the way to a far deadline).  Returns the wheel's current
 * time when something is already due, TIMER_WHEEL_NEVER when empty. */
uint64_t timer_wheel_next_deadline(const timer_wheel *w);

/* Pending timers. */
static inline size_t timer_wheel_count(const timer_wheel *w)
{
    return w->count;
}

/* The wheel's current time (the last now_ms it advanced to). */
static inline uint64_t timer_wheel_now(const timer_wheel *w)
{
    return w->now;
}

#endif /* SPINDLE_CORE_TIMER_WHEEL_H */
