/* conncap.h - the connection cap (max-conns per shard), visible and sane
 * (not installed).
 *
 * At start-up spindle_run raises the soft RLIMIT_NOFILE to the hard one
 * (like nginx's worker_rlimit_nofile) and, when max_conns is 0 (the
 * default), derives it from that limit: what is left after a reserve for
 * listeners, rings and threads, shared by the shards, at most
 * CONNCAP_AUTO_MAX per shard (the ring's completion queue is sized for it).
 *
 * At the cap a shard stops accepting (cancels its multishot accepts):
 * connections past it wait in the kernel's accept queue (the listen
 * backlog) instead of being closed, and accepting resumes when a slot
 * frees.  Multishot accept takes the whole listen queue as it fills, so the
 * connections it handed over before the cancel landed are held (an fd
 * each, in order) and served first as slots free.  Each time is
 * counted (connections_cap_reached) and a warning naming max-conns is
 * logged, at most once a minute per shard.  Shard thread.
 */
#ifndef SPINDLE_CORE_CONNCAP_H
#define SPINDLE_CORE_CONNCAP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct server server;
typedef struct shard shard;

#define CONNCAP_AUTO_MAX 8192u      /* derived max_conns per shard, at most */
#define CONNCAP_HOLD_MAX (1u << 20) /* accepted fds held past the cap, at most */
#define CONNCAP_WARN_MS  60000u

/* Main thread, before the shards start: raise the descriptor limit and
 * derive srv->cfg.max_conns when it is 0. */
void conncap_init(server *srv);
/* The shard just took its last free slot: stop accepting, warn, count. */
void conncap_reached(shard *sh);
/* An accepted fd with no free slot: hold it (closed only without memory). */
void conncap_hold(shard *sh, int fd, bool tls);
/* Once per loop iteration: serve held fds while slots are free.  true when
 * accepting may resume (a slot is free, nothing held). */
bool conncap_resume(shard *sh);
/* Teardown: close what is still held. */
void conncap_shard_finish(shard *sh);

#endif
