/* upgrade.h - the binary upgrade: listening sockets handed from a running
 * process to its successor over a unix socket (not installed;
 * docs/deploy.md).
 *
 * With cfg.upgrade_socket set, a serving process listens on that path (a
 * thread of its own).  A new process started with the same path connects
 * there first: the old one sends every shard's listening sockets (h2c,
 * then TLS) in one SCM_RIGHTS message; the new one serves them (the same
 * sockets, so connections waiting in their accept queues move with them),
 * and once all its shards are ready it writes "R".  The old one then
 * unlinks the path, answers "K", and stops as on SIGTERM (readiness 503,
 * shutdown-delay, GOAWAY drain); the new one binds the path for the next
 * upgrade.  If the new process dies before "R", the old one keeps serving.
 */
#ifndef SPINDLE_CORE_UPGRADE_H
#define SPINDLE_CORE_UPGRADE_H

#include "listen_fds.h"

typedef struct server server;

/* Before the shards start: fill srv->inherit from socket activation
 * (cfg.socket_activation) and then, with cfg.upgrade_socket, from a
 * running predecessor (which replaces systemd's sockets: they are the same
 * ones when the predecessor was socket-activated).  0, or SPINDLE_E* after
 * logging why.  Main thread. */
int upgrade_begin(server *srv);

/* After the shards started: with cfg.upgrade_socket, a thread that waits
 * until every shard serves, tells a predecessor ("R"), takes over the path
 * and then serves hand-overs to successors (on one it calls
 * spindle_stop()).  0 or SPINDLE_ESYS.  Main thread. */
int upgrade_serve(server *srv);

/* Stop that thread; unlink the path if this process still owns it; close
 * srv->inherit.  Main thread, after the shards have exited. */
void upgrade_end(server *srv);

#endif
