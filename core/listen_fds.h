/* listen_fds.h - listening sockets a process is given instead of binding
 * its own: systemd's socket-activation protocol (LISTEN_FDS, LISTEN_PID,
 * LISTEN_FDNAMES; no libsystemd) and the binary upgrade's hand-over
 * (upgrade.h).  Not installed; docs/deploy.md.
 *
 * Shards and inherited sockets: shard i serves fds[i % n] (a dup of it).
 * n sockets of one SO_REUSEPORT group (what an upgrade hands over: one per
 * shard of the old process) keep one accept queue each; with fewer sockets
 * than shards (systemd passes one per ListenStream=) shards share a socket
 * and its single accept queue, each with its own multishot accept on its
 * own dup.  spindle_run() starts at least n shards, so that no inherited
 * socket is left without a shard to accept its queue.
 */
#ifndef SPINDLE_CORE_LISTEN_FDS_H
#define SPINDLE_CORE_LISTEN_FDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LISTEN_SET_MAX 240u /* fds in one set (an SCM_RIGHTS message takes 253) */

typedef struct listen_set {
    int fds[LISTEN_SET_MAX]; /* h2c listeners, owned */
    uint32_t n;
    int tls_fds[LISTEN_SET_MAX]; /* TLS listeners, owned */
    uint32_t ntls;
} listen_set;

/* An empty set. */
void listen_set_init(listen_set *ls);

/* Take the sockets systemd passed: only when LISTEN_PID is this process;
 * fds 3 .. 3+LISTEN_FDS-1, each checked to be a listening TCP socket and
 * made close-on-exec; LISTEN_FDNAMES (':'-separated) names "tls" or
 * "https" go to the TLS set, every other to the h2c set.  The three
 * variables are removed from the environment (children do not see them).
 * Returns the number taken (0 when the variables are absent or not for
 * us), or -1 with why filled (a passed fd that is not a listening socket,
 * too many).  Main thread, before any other thread reads the environment. */
int listen_fds_take(listen_set *ls, char *why, size_t whylen);

/* The same with the passed fds starting at `first` instead of 3 (tests:
 * fd 3 may belong to the test runner). */
int listen_fds_take_at(listen_set *ls, int first, char *why, size_t whylen);

/* Add fd (owned from now on) to ls's h2c or TLS set; -1 when full. */
int listen_set_add(listen_set *ls, int fd, bool tls);

/* A new fd (close-on-exec, the caller owns it) for shard idx's h2c or TLS
 * listener: a dup of fds[idx % n]; -1 when the set has none of that kind
 * (bind one), -errno when dup fails.  Any thread. */
int listen_set_for_shard(const listen_set *ls, bool tls, uint32_t idx);

/* Close every fd in ls and empty it. */
void listen_set_close(listen_set *ls);

#endif
