/* pgasync.h - apps/tfb's asynchronous PostgreSQL driver: a bounded pool of
 * non-blocking libpq connections per shard, driven by descriptor watches on
 * the shard's ring, with the endpoints' jobs (job.h) pipelined on them.
 *
 * One pool per shard, made in on_shard_start and freed in on_shard_stop;
 * everything here runs on that shard's thread (no locks).
 *
 * Connections: lim.conns of them, each opened with PQconnectStartParams()
 * and driven by PQconnectPoll() from fd watches (libpq may change the
 * descriptor while connecting: the watch follows it), bounded by
 * lim.connect_timeout_ms (a shard timer: PQconnectPoll() does not enforce
 * connect_timeout), then made non-blocking and put in pipeline mode for
 * good, with every statement of db.h prepared once (PQsendPrepare() in the
 * first pipeline segment).
 *
 * Jobs: tfb_pool_submit() draws the job and hands it to a ready
 * connection with fewer than lim.depth jobs: one whose open segment (below)
 * is filling, else the one with the fewest jobs; else it waits in the
 * pool's queue (at most lim.queue jobs); else the answer is TFB_POOL_FULL
 * (503).  A job's queries go out with PQsendQueryPrepared().  Pipeline
 * segments (the queries between two PQpipelineSync()): read-only jobs
 * (/db, /queries, /fortunes) share a segment, sent at the end of the loop
 * iteration (the shard's loop-end hook, spindle_shard_on_loop_end) when the
 * connection has fewer than lim.segments segments in flight, else when one
 * comes back (two in flight keep the backend busy while the shard reads
 * and answers the previous one's results); so the jobs that
 * arrive together travel together, one write and about one read per
 * round trip, and their answers leave together (one h2 write per client
 * connection, not one per answer).  /updates and /sleep have a segment of
 * their own, sent at once (/updates: its reads and its UPDATE are one
 * implicit transaction, committed at its sync; it is answered only after
 * that sync).  A query that fails aborts the rest of its segment: those
 * jobs answer 500.  An /updates job that failed on a deadlock or
 * serialization failure is sent again once.
 *
 * Streams that go away: the pool keeps only the stream's handle.  A job
 * whose stream was reset while its queries were in flight is consumed to
 * its end like any other (the connection stays in step and is reused) and
 * then dropped; a queued one is dropped when its turn comes, unsent.
 *
 * The database going away: a connection that fails (the server restarts or
 * stops: PQconsumeInput() fails, PQstatus() is CONNECTION_BAD) answers its
 * jobs 503 and is opened again after a back-off (lim.retry_min_ms, doubled
 * at every failed attempt up to lim.retry_max_ms, back to the minimum once
 * a connection is up), from a shard timer.  When an attempt fails and no
 * connection is up, the pool is "down": the queue is answered 503 and new
 * jobs get TFB_DB_DOWN at once, until a connection is up again.
 */
#ifndef TFB_PGASYNC_H
#define TFB_PGASYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "job.h"
#include "spindle.h"

/* tfb_pool_submit()'s answer when the queue is full (answer 503). */
#define TFB_POOL_FULL (-4)

/* The pool's limits; tfb_pool_defaults() holds the defaults, in one place. */
typedef struct tfb_pool_limits {
    uint32_t conns;              /* connections per shard (default 4) */
    uint32_t depth;              /* jobs in flight per connection (default 64) */
    uint32_t segments;           /* read-only segments in flight per connection (default 2) */
    uint32_t queue;              /* jobs waiting for a connection (default 1024) */
    uint32_t connect_timeout_ms; /* connecting and preparing (default 2000) */
    uint32_t retry_min_ms;       /* back-off after a failure (default 25) */
    uint32_t retry_max_ms;       /* ... doubled up to (default 1000) */
} tfb_pool_limits;

tfb_pool_limits tfb_pool_defaults(void);

/* A finished job whose stream is still open: answer it (render j on
 * success; rc is TFB_DB_OK, TFB_DB_DOWN, TFB_DB_ERROR or TFB_DB_NOMEM, the
 * cause in j->err).  The pool frees j after this returns.  Shard thread. */
typedef void (*tfb_pool_done_fn)(spindle_stream *s, tfb_job *j, int rc, void *ctx);

typedef struct tfb_pool tfb_pool;

/* A pool for conninfo (copied) on shard sh; starts connecting at once.
 * NULL when out of memory or lim is invalid (zero conns, depth or
 * connect_timeout_ms).  Shard thread (on_shard_start). */
tfb_pool *tfb_pool_new(spindle_shard *sh, const char *conninfo, const tfb_pool_limits *lim,
                       tfb_pool_done_fn done, void *ctx);

/* Answer nothing more, close every connection and free the pool (NULL is
 * fine).  Jobs still held are freed without an answer (their streams are
 * gone after the drain).  Shard thread (on_shard_stop). */
void tfb_pool_free(tfb_pool *p);

/* Run a job of this kind for stream s (on_request, shard thread): n is the
 * queries parameter (or the milliseconds of TFB_JOB_SLEEP); rng the
 * thread's generator.  0: done() answers s later (unless s closes first);
 * TFB_DB_DOWN (database unreachable), TFB_POOL_FULL or TFB_DB_NOMEM: the
 * caller answers s now. */
int tfb_pool_submit(tfb_pool *p, spindle_stream *s, tfb_job_kind kind, uint32_t n, uint64_t *rng);

/* Connections up (prepared and ready), for logs and tests. */
uint32_t tfb_pool_ready(const tfb_pool *p);

#endif
