/* admin.h - the admin listener (not installed): a small HTTP/1.1 server on
 * cfg.admin_address:admin_port, run by a thread of its own (not a shard),
 * serving GET/HEAD <metrics_path or /metrics> in the Prometheus text format
 * (what Prometheus scrapes: it speaks HTTP/1.1) and 404 for anything else.
 * Keep-alive; at most ADMIN_MAX_CONNS connections, idle ones closed after
 * 60 s; requests with a body are answered 400 and closed.
 */
#ifndef SPINDLE_CORE_ADMIN_H
#define SPINDLE_CORE_ADMIN_H

typedef struct server server;
typedef struct admin admin;

#define ADMIN_MAX_CONNS 32

/* Bind and start the thread (main thread, before the shards start; it
 * reads the shards' counters, which exist from then on).  0, or
 * SPINDLE_ESYS after logging why.  No-op without admin_port. */
int admin_start(server *srv);
/* Stop and join the thread, close everything (before the shards array is
 * freed). */
void admin_stop(server *srv);

#endif
