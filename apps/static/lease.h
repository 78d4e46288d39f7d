/* lease.h - read leases on spindle-static's descriptor entries, so that a
 * hit of a large file needs no fstat() (docs/static.md, "Large files:
 * leases").
 *
 * A content entry is a snapshot of the file's bytes; a descriptor entry
 * (a file above --cache-file-max) is sent from the live file (its cached
 * mapping), so before this each hit fstat()ed the descriptor to keep the
 * length and validators those of the file as it is.  A read lease
 * (fcntl F_SETLEASE F_RDLCK) makes that check unnecessary: while it is
 * held, no process can open the file for writing or truncate it -- the
 * kernel makes such an open() or truncate() wait and signals the holder
 * (a lease break), and lets it go on only once every lease holder has let
 * go (or after /proc/sys/fs/lease-break-time, 45 s by default).  So:
 *
 *   the shard takes the lease on the entry's descriptor (three fcntl(), once
 *   per entry) -> one STATX of the path on the ring (reval.c) confirms that
 *   the entry's data is still the file's -> the entry is LEASE_OK: hits
 *   are answered from its data, no system call;
 *   a break (a realtime signal to the shard's thread, carrying the
 *   descriptor) -> an eventfd the shard watches on its ring -> the entry
 *   is dropped at once (no hit uses it any more) and its descriptor closed
 *   (the lease released) one shard timer tick later, after the responses
 *   already queued from it were written -> the writer goes on; the next
 *   request is a miss and sees the new file.
 *
 * A rename over the file or its deletion breaks no lease (the entry's
 * descriptor still reads the old inode, whole); revalidation notices
 * those within --revalidate-ms, as for content entries.  Where the lease
 * cannot be had (EAGAIN: the file is open for writing somewhere; EACCES:
 * neither the file's owner nor CAP_LEASE; a file system without leases;
 * fs.leases-enable 0) the entry stays LEASE_NONE and its hits fstat() as
 * before.  Everything but lease_init() runs on the shard's thread.
 */
#ifndef SPINDLE_STATIC_LEASE_H
#define SPINDLE_STATIC_LEASE_H

#include <stdbool.h>

#include "fcache.h"
#include "spindle.h"

/* Once, before spindle_run(): install the signal handlers (the lease
 * break signal, SIGRTMIN + 4, and SIGIO, which the kernel sends instead
 * when the realtime signal queue is full).  false (errno set): leases are
 * not used at all. */
bool lease_init(void);

/* The shard's lease machinery (its eventfd and the watch on it), from
 * on_shard_start; lease_shard_stop() from on_shard_stop.  Without it (it
 * failed, or lease_init() did), lease_take() does nothing. */
void lease_shard_start(spindle_shard *sh);
void lease_shard_stop(void);

/* Take a read lease on e's descriptor (e: a new descriptor entry of the
 * shard's cache c) and start the STATX that confirms it (reval_start());
 * e->lease is LEASE_HELD until that completes, then LEASE_OK.  Nothing
 * happens when the lease cannot be had (e stays LEASE_NONE). */
void lease_take(spindle_shard *sh, fcache *c, fc_entry *e, int root_fd);

#endif
