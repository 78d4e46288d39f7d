/* accesslog.h - the access log: one line per finished request, text
 * (combined-like) or JSON lines, to a file or stdout (not installed).
 *
 * The shard never blocks on it.  Each shard formats lines into a 64 KiB
 * chunk of its own (accesslog.c) and hands full chunks (and, once a second,
 * a partial one) to the log thread (accesslog_writer.c) through a bounded
 * SPSC queue (core/spsc.h); the log thread writes a shard's queued chunks
 * with one writev(2) and hands them back through a second SPSC queue for
 * the shard to fill again (accesslog_internal.h).  A full queue (the disk
 * is that far behind) drops lines, counted (alog_dropped).  At a graceful
 * shutdown each shard hands over its last chunk at teardown, and
 * alog_stop() joins the log thread after it has written everything.
 * SIGHUP (alog_reopen) makes the log thread reopen the file: rename it,
 * then HUP (logrotate without copytruncate); copytruncate works too (the
 * file is opened O_APPEND).  The log thread keeps a file preallocated
 * ALOG_PREALLOC past its end and gives that back at SIGHUP and at exit.
 *
 * Text line fields:
 *   ADDR:PORT - - [06/Dec/2026:22:05:10 +0000] "METHOD PATH PROTO" STATUS
 *   REQ_BYTES RESP_BYTES "REFERER" "USER_AGENT" DURATION_US SHARD CONN STREAM
 * (PROTO h2, h2c or http/1.1; STATUS "-" when none was sent; bytes are body
 * bytes; "-" for an absent header; '"', '\' and bytes outside 0x20..0x7e
 * as \xHH).  JSON lines carry the same under the keys time, client,
 * client_port, method, path, protocol, status, request_bytes,
 * response_bytes, duration_us, shard, connection, stream, user_agent,
 * referer.
 */
#ifndef SPINDLE_CORE_ACCESSLOG_H
#define SPINDLE_CORE_ACCESSLOG_H

#include <stdint.h>

#include "spindle.h"

typedef struct shard shard;
typedef struct server server;
typedef struct alog_server alog_server;
typedef struct alog_shard alog_shard;

/* Open the log named by srv->cfg.access_log, give each shard its buffer
 * and start the log thread (main thread, before the shards start).  0, or
 * SPINDLE_ESYS after logging why (the file cannot be opened). */
int alog_start(server *srv);
/* After the shards have exited: write what they handed over, join the
 * thread, close the file, free.  No-op when the log is off. */
void alog_stop(server *srv);
/* SIGHUP: reopen the file (main thread; the log thread does it). */
void alog_reopen(server *srv);

/* Shard thread: capture what the line needs from a request head (the
 * request's strings are valid during on_request only), escaped for the
 * log's format, and its arrival (CLOCK_REALTIME, ns).  NULL without memory
 * (then no line).  Give it back with alog_release() (free() is also right:
 * it is one malloc'd block). */
char *alog_capture(shard *sh, const spindle_request *req, int64_t realtime_ns);
/* Shard thread: a capture back to the shard's pool (or freed); NULL ok. */
void alog_release(shard *sh, char *cap);
/* Shard thread: the line for a finished stream (st->track.alog set). */
void alog_line(shard *sh, const spindle_stream *st, uint64_t dur_us);
/* Shard thread: hand the chunk over if it holds anything. */
void alog_flush(shard *sh);
/* Shard thread, at teardown: hand over the rest (waits for queue room). */
void alog_shard_finish(shard *sh);

#endif
