/*
 * io/ring_listen.h - listening sockets for the ring's multishot accept.
 *
 * One listener per shard with SO_REUSEPORT: the kernel spreads incoming
 * connections over the shards' listeners, and a connection stays on the
 * shard whose listener accepted it. No io_uring here; plain socket setup.
 */
#ifndef SPINDLE_IO_RING_LISTEN_H
#define SPINDLE_IO_RING_LISTEN_H

#include <stdbool.h>
#include <stdint.h>

#include "ring.h"

/*
 * Create a TCP listening socket on host:port and listen(backlog).
 * host: a numeric IPv4 or IPv6 address ("127.0.0.1", "::1", "[::1]") or a
 * name resolved with getaddrinfo(); NULL, "" or "*" means every address:
 * "::" dual-stack (IPV6_V6ONLY off), or 0.0.0.0 where IPv6 is unavailable.
 * port 0 lets the kernel choose; read it back with ring_listen_port().
 * Options: SO_REUSEADDR always, SO_REUSEPORT when reuseport, TCP_NODELAY
 * (Linux copies it to every accepted socket, so no per-connection syscall),
 * SOCK_NONBLOCK | SOCK_CLOEXEC.
 * Returns the fd (caller owns it; close() it), or -errno with err filled
 * (err may be NULL) naming the address and the failing call. Any thread.
 */
int ring_listen_tcp(const char *host, uint16_t port, int backlog, bool reuseport, ring_error *err);

/* The local port fd is bound to (after port 0), or -errno. Any thread. */
int ring_listen_port(int fd);

#endif /* SPINDLE_IO_RING_LISTEN_H */
