/* timer_wheel.c - see timer_wheel.h for the shape and the contract.
 *
 * Invariant, for the wheel's time `now`: a timer filed at level L, slot s has
 *   deadline > now,
 *   deadline >> (6 * (L + 1)) == now >> (6 * (L + 1))   (same block above L),
 *   digit L of deadline == s, and so s > digit L of now.
 * A timer on the overflow list has deadline > now and differs from now above
 * the top level; a timer on `due` has deadline <= now.
 *
 * Advancing from `old` to `now`, let H be the level of the highest bit in
 * which they differ.  Levels below H hold only deadlines < now (their digit H
 * is old's, which is below now's): all fire.  At level H, slots below now's
 * digit fire, and the slot equal to now's digit is re-filed against the new
 * time (into lower levels, or firing).  Levels above H are untouched: old and
 * now agree there.  When H is past the top level, every level fires and the
 * overflow list is re-filed.
 */
#include "timer_wheel.h"

#include <assert.h>

#define LEVEL_DUE      ((uint8_t)0xff) /* on w->due or w->firing */
#define LEVEL_OVERFLOW ((uint8_t)0xfe) /* on w->overflow */
#define SLOT_MASK      (TIMER_WHEEL_SLOTS - 1u)
#define WHEEL_BITS     (TIMER_WHEEL_BITS * TIMER_WHEEL_LEVELS) /* 36 */

static void list_init(timer_link *head)
{
    head->next = head->prev = head;
}

static bool list_empty(const timer_link *head)
{
    return head->next == head;
}

static void list_insert_tail(timer_link *head, timer_link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

static void list_unlink(timer_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->next = l->prev = NULL;
}

/* Moves every entry of `from` to the tail of `to`; `from` ends empty. */
static void list_splice_tail(timer_link *to, timer_link *from)
{
    if (list_empty(from))
        return;
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    list_init(from);
}

static timer_node *node_of(timer_link *l)
{
    return (timer_node *)(void *)((char *)l - offsetof(timer_node, link));
}

/* Index of the highest set bit of x != 0. */
static unsigned top_bit(uint64_t x)
{
    return 63u - (unsigned)__builtin_clzll(x);
}

void timer_node_init(timer_node *t)
{
    t->link.next = t->link.prev = NULL;
    t->deadline = 0;
    t->level = 0;
    t->slot = 0;
    t->kind = 0;
}

void timer_wheel_init(timer_wheel *w, uint64_t now_ms)
{
    w->now = now_ms;
    w->count = 0;
    w->in_advance = false;
    for (unsigned l = 0; l < TIMER_WHEEL_LEVELS; l++) {
        w->occupied[l] = 0;
        for (unsigned s = 0; s < TIMER_WHEEL_SLOTS; s++)
            list_init(&w->slots[l][s]);
    }
    list_init(&w->overflow);
    list_init(&w->due);
    list_init(&w->firing);
}

/* Files a not-linked node against w->now.  Due timers go to `due_list`. */
static void file_node(timer_wheel *w, timer_node *t, timer_link *due_list)
{
    uint64_t d = t->deadline;
    if (d <= w->now) {
        t->level = LEVEL_DUE;
        list_insert_tail(due_list, &t->link);
        return;
    }
    unsigned level = top_bit(d ^ w->now) / TIMER_WHEEL_BITS;
    if (level >= TIMER_WHEEL_LEVELS) {
        t->level = LEVEL_OVERFLOW;
        list_insert_tail(&w->overflow, &t->link);
        return;
    }
    unsigned slot = (unsigned)(d >> (level * TIMER_WHEEL_BITS)) & SLOT_MASK;
    t->level = (uint8_t)level;
    t->slot = (uint8_t)slot;
    list_insert_tail(&w->slots[level][slot], &t->link);
    w->occupied[level] |= UINT64_C(1) << slot;
}

void timer_wheel_add(timer_wheel *w, timer_node *t, uint64_t deadline_ms)
{
    timer_wheel_cancel(w, t);
    t->deadline = deadline_ms;
    file_node(w, t, &w->due);
    w->count++;
}

bool timer_wheel_cancel(timer_wheel *w, timer_node *t)
{
    if (!timer_node_pending(t))
        return false;
    list_unlink(&t->link);
    /* A node spliced out of a slot onto the expired list still names that
     * slot; the slot is empty or re-populated then, and the test below reads
     * the slot itself, so the mask stays right either way. */
    if (t->level < TIMER_WHEEL_LEVELS && list_empty(&w->slots[t->level][t->slot]))
        w->occupied[t->level] &= ~(UINT64_C(1) << t->slot);
    assert(w->count > 0);
    w->count--;
    return true;
}

/* Moves a whole slot to `expired`, marking its nodes due. */
static void expire_slot(timer_wheel *w, unsigned level, unsigned slot, timer_link *expired)
{
    timer_link *head = &w->slots[level][slot];
    for (timer_link *l = head->next; l != head; l = l->next)
        node_of(l)->level = LEVEL_DUE;
    list_splice_tail(expired, head);
}

/* Re-files every node of `list` against w->now. */
static void refile(timer_wheel *w, timer_link *list, timer_link *expired)
{
    timer_link tmp;
    list_init(&tmp);
    list_splice_tail(&tmp, list);
    while (!list_empty(&tmp)) {
        timer_link *l = tmp.next;
        list_unlink(l);
        file_node(w, node_of(l), expired);
    }
}

size_t timer_wheel_advance(timer_wheel *w, uint64_t now_ms, timer_wheel_cb cb, void *arg)
{
    assert(!w->in_advance && "timer_wheel_advance called from a timer callback");
    timer_link *expired = &w->firing;

    /* Timers added with a deadline already reached, before this call. */
    list_splice_tail(expired, &w->due);

    if (now_ms > w->now) {
        uint64_t old = w->now;
        unsigned high = top_bit(old ^ now_ms) / TIMER_WHEEL_BITS;
        unsigned below = high < TIMER_WHEEL_LEVELS ? high : TIMER_WHEEL_LEVELS;
        w->now = now_ms;

        for (unsigned l = 0; l < below; l++) {
            uint64_t occ = w->occupied[l];
            w->occupied[l] = 0;
            while (occ) {
                unsigned s = (unsigned)__builtin_ctzll(occ);
                occ &= occ - 1;
                expire_slot(w, l, s, expired);
            }
        }
        if (high < TIMER_WHEEL_LEVELS) {
            unsigned digit = (unsigned)(now_ms >> (high * TIMER_WHEEL_BITS)) & SLOT_MASK;
            uint64_t below_digit = (UINT64_C(1) << digit) - 1;
            uint64_t occ = w->occupied[high] & below_digit;
            w->occupied[high] &= ~below_digit;
            while (occ) {
                unsigned s = (unsigned)__builtin_ctzll(occ);
                occ &= occ - 1;
                expire_slot(w, high, s, expired);
            }
            if (w->occupied[high] & (UINT64_C(1) << digit)) {
                w->occupied[high] &= ~(UINT64_C(1) << digit);
                refile(w, &w->slots[high][digit], expired);
            }
        } else {
            refile(w, &w->overflow, expired);
        }
    }

    /* Fire.  Each node leaves the list before its callback, so the callback
     * may re-add it; cancelling a node still on w->firing unlinks it from
     * there, and it does not fire.  Adds with deadline <= now go to w->due: next advance. */
    size_t fired = 0;
    w->in_advance = true;
    while (!list_empty(expired)) {
        timer_node *t = node_of(expired->next);
        list_unlink(&t->link);
        w->count--;
        fired++;
        cb(w, t, arg);
    }
    w->in_advance = false;
    return fired;
}

uint64_t timer_wheel_next_deadline(const timer_wheel *w)
{
    if (w->count == 0)
        return TIMER_WHEEL_NEVER;
    if (!list_empty(&w->due) || !list_empty(&w->firing))
        return w->now;
    for (unsigned l = 0; l < TIMER_WHEEL_LEVELS; l++) {
        if (w->occupied[l] == 0)
            continue;
        unsigned shift = l * TIMER_WHEEL_BITS;
        uint64_t s = (uint64_t)__builtin_ctzll(w->occupied[l]);
        /* Start of slot s's block: now's bits above level l, digit s, zeros below. */
        uint64_t above = (w->now >> (shift + TIMER_WHEEL_BITS)) << (shift + TIMER_WHEEL_BITS);
        return above | (s << shift);
    }
    /* Only overflow timers: none is due before the next 2^36 boundary. */
    uint64_t epoch = w->now >> WHEEL_BITS;
    if (epoch == (UINT64_MAX >> WHEEL_BITS))
        return TIMER_WHEEL_NEVER; /* unreachable: no deadline can differ above here */
    return (epoch + 1) << WHEEL_BITS;
}
