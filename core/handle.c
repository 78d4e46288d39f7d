/* handle.c - stream handles: slot + generation in the shard's handle table.
 *
 * A handle's 64 bits: generation (32, high) | slot (20) | shard index (12).
 * A stream gets a slot at its first spindle_stream_handle() (streams that
 * never wait cost nothing) and gives it back when its on_close begins
 * (stream_settle -> handle_release), which bumps the slot's generation:
 * every copy of the old handle then resolves to NULL, whether the stream
 * object is recycled, freed, or reused for another request.  Resolution
 * reads only the shard's table, never the stream, so a stale handle touches
 * no freed memory.  Everything here runs on the shard's thread (the handle
 * value itself may travel anywhere).
 */
#include "async.h"
#include "conn.h"
#include "conn_proto.h"
#include "shard.h"
#include "stream.h"

static uint64_t pack(uint32_t shard_idx, uint32_t slot, uint32_t gen)
{
    return ((uint64_t)gen << 32) | ((uint64_t)slot << HANDLE_SHARD_BITS) | shard_idx;
}

static uint32_t h_shard(uint64_t v)
{
    return (uint32_t)(v & (HANDLE_MAX_SHARDS - 1u));
}

static uint32_t h_slot(uint64_t v)
{
    return (uint32_t)(v >> HANDLE_SHARD_BITS) & ((1u << HANDLE_SLOT_BITS) - 1u);
}

static uint32_t h_gen(uint64_t v)
{
    return (uint32_t)(v >> 32);
}

uint32_t handle_shard_index(spindle_handle h)
{
    return h_shard(h.v);
}

spindle_handle spindle_stream_handle(spindle_stream *s)
{
    spindle_handle h = {0};
    if (!s)
        return h;
    if (s->handle) {
        h.v = s->handle;
        return h;
    }
    spindle_shard *as = async_current();
    if (!as || (s->flags & (ST_CLOSED | ST_OFFLOADED)) || !s->c || s->c->sh != as->sh ||
        as->sh->idx >= HANDLE_MAX_SHARDS)
        return h;
    uint32_t slot, gen;
    if (!slot_table_take(&as->handles, s, &slot, &gen))
        return h;
    s->handle = pack(as->sh->idx, slot, gen);
    h.v = s->handle;
    return h;
}

/* The engine's clock moves only with input and timers (h2_conn_recv,
 * h2_conn_tick): a stream answered through its handle long after its
 * connection's last input would start the send timeout from that old time
 * (output becoming pending stamps the engine's `now`) and could time out at
 * once.  Resolving a handle brings the engine to the shard's `now` when
 * that does nothing else: no timeout is due (a due one fires in this
 * iteration's timer step anyway, which refreshes it).  Cheap when already
 * done: the shard's `now` moves once per loop iteration, so only the first
 * lookup of a connection's streams in an iteration (none, when input came
 * in this iteration) computes the deadline and ticks; the rest compare two
 * numbers. */
static void refresh_now(const spindle_stream *s, const shard *sh)
{
    conn *c = s->c;
    if (c && c->state == C_OPEN && c->proto == CONN_H2 && h2_conn_now(c->h2) < sh->now &&
        h2_conn_next_deadline(c->h2) > sh->now)
        h2_conn_tick(c->h2, sh->now);
}

spindle_stream *spindle_handle_stream(spindle_handle h)
{
    spindle_shard *as = async_current();
    if (!h.v || !as || h_shard(h.v) != as->sh->idx)
        return NULL;
    spindle_stream *s = slot_table_get(&as->handles, h_slot(h.v), h_gen(h.v));
    if (!s || (s->flags & (ST_CLOSED | ST_OFFLOADED)))
        return NULL;
    refresh_now(s, as->sh);
    return s;
}

void handle_release(spindle_shard *as, spindle_stream *st)
{
    if (!st->handle || !as)
        return;
    uint32_t slot = h_slot(st->handle);
    if (slot_table_get(&as->handles, slot, h_gen(st->handle)) == st)
        slot_table_release(&as->handles, slot);
    st->handle = 0;
}
