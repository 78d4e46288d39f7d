/* slot_table.h - a growable table of pointers named by slot + generation.
 *
 * A slot holds one object pointer and a 32-bit generation.  Releasing a
 * slot bumps its generation, so a name (slot, gen) taken before the
 * release never finds the slot's next owner: lookups compare generations
 * and answer NULL for a stale name.  Generations start at 1 and skip 0 on
 * wrap, so (slot, 0) never names anything.  Free slots form a LIFO list
 * through `next`.  The table grows by doubling up to `limit` slots; it
 * never shrinks (slot numbers stay valid names).
 *
 * Threads: one owner thread (the shard's) for everything.  Header-only.
 */
#ifndef SPINDLE_CORE_SLOT_TABLE_H
#define SPINDLE_CORE_SLOT_TABLE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#define SLOT_TABLE_NONE UINT32_MAX

typedef struct slot_entry {
    void *p;       /* the owner, NULL when free */
    uint32_t gen;  /* current generation (>= 1) */
    uint32_t next; /* free list link */
} slot_entry;

typedef struct slot_table {
    slot_entry *e;
    uint32_t cap, used, limit;
    uint32_t free_head; /* SLOT_TABLE_NONE: no free slot below cap */
} slot_table;

/* An empty table that will hold at most limit (>= 1) slots. */
static inline void slot_table_init(slot_table *t, uint32_t limit)
{
    t->e = NULL;
    t->cap = t->used = 0;
    t->limit = limit;
    t->free_head = SLOT_TABLE_NONE;
}

static inline void slot_table_free(slot_table *t)
{
    free(t->e);
    slot_table_init(t, t->limit);
}

static inline bool slot_table_grow(slot_table *t)
{
    if (t->cap >= t->limit)
        return false;
    uint32_t ncap = t->cap ? t->cap * 2 : 64;
    if (ncap > t->limit || ncap < t->cap)
        ncap = t->limit;
    slot_entry *ne = realloc(t->e, (size_t)ncap * sizeof *ne);
    if (!ne)
        return false;
    for (uint32_t i = ncap; i-- > t->cap;) {
        ne[i].p = NULL;
        ne[i].gen = 1;
        ne[i].next = t->free_head;
        t->free_head = i;
    }
    t->e = ne;
    t->cap = ncap;
    return true;
}

/* Give p (not NULL) a slot: true and *slot, *gen; false when the table is
 * at its limit or out of memory. */
static inline bool slot_table_take(slot_table *t, void *p, uint32_t *slot, uint32_t *gen)
{
    if (t->free_head == SLOT_TABLE_NONE && !slot_table_grow(t))
        return false;
    uint32_t s = t->free_head;
    t->free_head = t->e[s].next;
    t->e[s].p = p;
    t->used++;
    *slot = s;
    *gen = t->e[s].gen;
    return true;
}

/* The owner of (slot, gen), or NULL when the name is stale or unknown. */
static inline void *slot_table_get(const slot_table *t, uint32_t slot, uint32_t gen)
{
    if (slot >= t->cap || t->e[slot].gen != gen)
        return NULL;
    return t->e[slot].p;
}

/* Free slot (taken): every name for it goes stale. */
static inline void slot_table_release(slot_table *t, uint32_t slot)
{
    slot_entry *s = &t->e[slot];
    s->p = NULL;
    s->gen = s->gen + 1 ? s->gen + 1 : 1;
    s->next = t->free_head;
    t->free_head = slot;
    t->used--;
}

#endif
