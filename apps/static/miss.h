/* miss.h - spindle-static's cache misses through the shard's ring (issue 15;
 * docs/static.md, "What runs where").
 *
 * A request the shard's cache cannot answer (a miss, or an entry due for
 * revalidation when its ring check could not start) is answered from file
 * operations on the shard's ring, not from system calls of the shard's
 * thread: openat2 (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, from the root)
 * -> statx of the descriptor -> for a small file, read into the new cache
 * entry's buffer -> statx again (the bytes count only if the file did not
 * change) -> the answer, from the completion; the descriptor is closed on
 * the ring too.  Concurrent misses for one path on one shard share these
 * operations: the later requests wait on the first one's and are answered
 * from its result.  What the ring cannot do without blocking the shard
 * (mapping and prefaulting a large body, the lseek(SEEK_DATA) barrier
 * before reading a file changed within the last second, retries after a
 * change) goes to the offload thread with spindle_offload_request().
 * Everything here runs on the shard's thread.
 */
#ifndef SPINDLE_STATIC_MISS_H
#define SPINDLE_STATIC_MISS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fcache.h"
#include "spindle.h"

/* What the miss path needs of the handler (main.c), given once. */
typedef struct miss_ops {
    /* Answer with an error status (403, 404, 500). */
    void (*fail)(spindle_stream *s, uint16_t status, bool head);
    /* The fc_info of the file stat'ed as st; name gives its content type. */
    void (*info)(fc_info *fi, const struct stat *st, const char *name);
    /* Answer from the file's bytes (the response takes its own reference). */
    void (*blob)(spindle_stream *s, const spindle_request *req, const fc_info *fi, fc_blob *b,
                 bool head);
    /* Answer from fd (a large file stat'ed as st; not the callee's to
     * close) without blocking; false: that would block, nothing was sent. */
    bool (*fd)(spindle_stream *s, const spindle_request *req, int fd, const struct stat *st,
               const fc_info *fi, bool head);
    /* The offload thread's handler, for what the shard cannot answer. */
    spindle_request_fn offloaded;
} miss_ops;

/* Once, before spindle_run(): the root descriptor, the size up to which a
 * file's bytes are read on the ring (the cache's content_max, also with the
 * cache off), and the handler's answers (ops is kept). */
void miss_init(int root_fd, uint64_t content_max, const miss_ops *ops);

/* Answer req (GET or HEAD: head) for the normalised path key (klen bytes,
 * NUL-terminated; dir: the request path ended in '/') through the ring;
 * c: the shard's cache, or NULL (off).  true: the request belongs to the
 * miss path now (answered or offloaded from a completion; s must not be
 * touched again here); false: not started (too many misses in flight on
 * the shard, the ring's queues full, out of memory), nothing sent, nothing
 * held: the caller offloads it.  In on_request, on the shard's thread. */
bool miss_start(spindle_stream *s, const spindle_request *req, fcache *c, const char *key,
                size_t klen, bool dir, bool head);

/* The status for a failed open of a path beneath the root (errno err):
 * escapes and permissions 403, absence 404, anything else 500. */
uint16_t miss_open_status(int err);

#endif
