/* reval.h - revalidating spindle-static's cache entries on the shard's
 * ring (docs/static.md, "Freshness").  The shard's thread. */
#ifndef SPINDLE_STATIC_REVAL_H
#define SPINDLE_STATIC_REVAL_H

#include <stdbool.h>

#include "fcache.h"
#include "spindle.h"

/* Start the check of e (due for revalidation) in cache c: a statx of its
 * path beneath root_fd submitted to the shard's ring; e->checking is set
 * until it completes.  Then the entry (found again by its key: it may have
 * been replaced or evicted meanwhile) is marked checked when the file is
 * still the one it describes (device, inode, size, mtime, ctime), and
 * dropped otherwise (changed, deleted, unreadable): the next request
 * resolves the path again.  Meanwhile e is served as it is.  false: not
 * started (no ring here, queues full, out of memory): check it the
 * synchronous way. */
bool reval_start(spindle_shard *sh, fcache *c, fc_entry *e, int root_fd);

/* Is x (a statx) still the file fi describes: a regular file with the same
 * device, inode, size, mtime and ctime?  (Any write, truncation, chmod or
 * rename of the inode changes its ctime.) */
struct statx;
bool reval_same(const fc_info *fi, const struct statx *x);

#endif
