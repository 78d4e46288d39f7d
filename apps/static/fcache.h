/* fcache.h - spindle-static's per-shard open-file and small-content cache.
 *
 * One fcache per shard, touched only by that shard's thread (no locks): a
 * map from a normalised request path (after the RESOLVE_BENEATH open
 * succeeded) to what answering it needs: the file's identity and stat data,
 * its validators and headers preformatted, and either its bytes (files up
 * to content_max) or an open descriptor (larger files).  Bounded in entries
 * and in content bytes; least recently used entries go first.  The cache
 * itself makes no system call except close() of an evicted descriptor;
 * freshness (when to look at the file again) is the caller's business
 * (docs/static.md).
 */
#ifndef SPINDLE_STATIC_FCACHE_H
#define SPINDLE_STATIC_FCACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "spindle.h"

/* Limits, per shard; defaults in fcache_limits_default(). */
typedef struct fcache_limits {
    uint32_t entries;       /* entries at most (default 1024); 0 disables the cache */
    uint64_t bytes;         /* content bytes at most (default 32 MiB) */
    uint64_t content_max;   /* files up to this size keep their bytes (default 64 KiB) */
    uint32_t revalidate_ms; /* an entry is checked against the file this often (default 1000) */
} fcache_limits;

fcache_limits fcache_limits_default(void);

/* A file's bytes, shared by the entry and by every response sending them
 * (released by spindle): the last reference frees it. */
typedef struct fc_blob {
    atomic_uint refs;
    size_t len;
    uint8_t data[];
} fc_blob;

/* A blob of len bytes with one reference, or NULL. */
fc_blob *fc_blob_new(size_t len);
void fc_blob_unref(fc_blob *b);
/* spindle_release_fn for a blob: ctx is the blob. */
void fc_blob_release(void *ctx, const void *data, size_t len);

/* What is known of a file: identity, stat data and validators. */
typedef struct fc_info {
    dev_t dev;
    ino_t ino;
    uint64_t size;
    uint64_t mns, cns; /* mtime and ctime in ns */
    time_t mtime;      /* seconds, for the date comparisons */
    const char *ctype; /* static string */
    char etag[48];     /* "size-mtime" in hex, quoted */
    char lastmod[30];  /* IMF-fixdate */
    char clen[24];     /* size in decimal */
    /* strlen of ctype, etag, clen (lastmod is always 29): responses pass
     * the lengths, so spindle need not measure them per response */
    uint32_t ctype_len, etag_len, clen_len;
} fc_info;

/* A descriptor entry's read lease (lease.h). */
enum {
    LEASE_NONE = 0, /* none (a content entry, or not granted): hits fstat() */
    LEASE_HELD,     /* granted; the STATX that confirms the entry's data is due */
    LEASE_OK,       /* granted and confirmed: hits trust the entry's data */
};

typedef struct fc_entry fc_entry;
struct fc_entry {
    fc_entry *hnext;       /* hash chain */
    fc_entry *prev, *next; /* LRU list, most recent first */
    uint64_t hash;
    uint64_t checked; /* CLOCK_MONOTONIC ns of the last look at the file */
    int fd;           /* the open file when body is NULL, else -1 */
    fc_blob *body;    /* the whole file, or NULL */
    fc_info info;
    /* Prepared fields, each made by the first response that needs it, or
     * NULL: [0] the full 200's (content-type, content-length,
     * last-modified, etag, accept-ranges), [1] the 304's (etag,
     * last-modified); freed with the entry.  An entry is one version of
     * the file: a change makes a new entry, hence new fields. */
    spindle_fields *heads[2];
    bool dir;           /* the request path ended in '/' */
    bool index;         /* the file is the directory's index.html (set by the caller) */
    bool checking;      /* a revalidation is in flight on the ring (reval.c) */
    uint8_t lease;      /* LEASE_*: only descriptor entries have one (lease.c) */
    uint32_t lease_gen; /* which lease (lease.c): a check started before it
                         * cannot confirm it (reval.c) */
    size_t klen;        /* key length */
    char key[];         /* normalised path, NUL-terminated */
};

typedef struct fcache fcache;

/* A new empty cache, or NULL (out of memory). */
fcache *fcache_new(const fcache_limits *lim);
/* Free the cache: close every descriptor, drop every blob reference
 * (responses still sending keep theirs). */
void fcache_free(fcache *c);
const fcache_limits *fcache_limits_of(const fcache *c);

/* The entry for (key, dir), made the most recently used, or NULL.  The
 * pointer is valid until the next fcache_put/fcache_drop/fcache_free. */
fc_entry *fcache_get(fcache *c, const char *key, size_t klen, bool dir);

/* Insert (key, dir) -> info with either fd (>= 0, body NULL) or body (fd
 * is then ignored: pass -1, the caller closes its own descriptor),
 * replacing an entry of the same key and evicting least recently used ones
 * to stay within the limits.  On success the cache owns fd / the body
 * reference and the entry is returned; NULL when the file cannot be cached
 * (larger than the byte bound, cache disabled, out of memory): the caller
 * keeps fd and body. */
fc_entry *fcache_put(fcache *c, const char *key, size_t klen, bool dir, const fc_info *info, int fd,
                     fc_blob *body, uint64_t now);

/* The most recently used entry, or NULL; the rest follow by ->next. */
fc_entry *fcache_mru(fcache *c);

/* Remove and free an entry (closing its descriptor, dropping its blob). */
void fcache_drop(fcache *c, fc_entry *e);

/* Entries and content bytes held now. */
size_t fcache_count(const fcache *c);
uint64_t fcache_bytes(const fcache *c);

#endif
