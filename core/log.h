/* log.h - one-line log records to stderr: "spindle[shard] level: message".
 *
 * Thread: any; each record is formatted into a local buffer and written with
 * one write(2), so lines from different shards never interleave.
 */
#ifndef SPINDLE_CORE_LOG_H
#define SPINDLE_CORE_LOG_H

enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* The level past which records are dropped (set once by spindle_run). */
extern int log_level;

/* shard < 0: the main thread. */
void log_msg(int level, int shard, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define LOG_ON(level) ((level) <= log_level)

#endif
