/* conn_detect.h - a connection before its protocol is known (not
 * installed).
 *
 * Every accepted connection starts as CONN_DETECT (conn_proto.h) with no
 * engine.  On cleartext its first bytes decide: the HTTP/2 preface (or a
 * prefix of it, counted until decided) starts the HTTP/2 engine, anything
 * else the HTTP/1.1 codec (conn_h1.h); the bytes already seen are replayed
 * into the engine.  Over TLS the ALPN result decides once the handshake is
 * done ("h2", else HTTP/1.1, also without ALPN).  Until then the
 * connection's deadline is the HTTP/2 preface timeout or the HTTP/1.1
 * header-read timeout, both counted from accept.  Shard thread only.
 */
#ifndef SPINDLE_CORE_CONN_DETECT_H
#define SPINDLE_CORE_CONN_DETECT_H

#include <stdbool.h>

#include "conn_proto.h"

/* The HTTP/2 client preface's length (RFC 9113 §3.4). */
#define CONN_H2_PREFACE_LEN 24u

/* The table of CONN_DETECT (conn_proto_h2.c's conn_protos). */
extern const conn_proto conn_proto_detect;

/* TLS, handshake done: start the engine ALPN chose.  false when it could
 * not start (the connection is closing). */
bool conn_detect_by_alpn(conn *c);
/* While the shard drains, the earlier of d and the end of drain-grace (a
 * connection not yet speaking gets that long for its first request);
 * otherwise d.  Shard thread. */
uint64_t conn_drain_bound(const conn *c, uint64_t d);

#endif
