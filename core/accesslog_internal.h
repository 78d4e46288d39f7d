/* accesslog_internal.h - what the access log's shard side (accesslog.c)
 * and its log thread (accesslog_writer.c) share (not installed).
 *
 * Chunks go round: the shard fills one, hands it to the log thread over
 * `q` (full chunks), the log thread writes a batch of them with one
 * writev(2) and hands them back over `freeq` (empty chunks), where the
 * shard takes its next one.  Both queues are SPSC (core/spsc.h) with the
 * shard and the log thread on opposite ends, so the only lines that move
 * between their cores are a chunk's bytes (once, to be written) and the
 * queues' indices (once per chunk, not per line).
 */
#ifndef SPINDLE_CORE_ACCESSLOG_INTERNAL_H
#define SPINDLE_CORE_ACCESSLOG_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "accesslog.h"
#include "spsc.h"

#define ALOG_CHUNK     (64u << 10) /* bytes per chunk */
#define ALOG_QUEUE     128u        /* chunks queued per shard, each way (8 MiB) */
#define ALOG_PERIOD_MS 50          /* the log thread's sleep when idle */
#define ALOG_BUSY_MS   5           /* its sleep after a round that wrote */
#define ALOG_BATCH     64u         /* chunks per writev */
/* A log file is preallocated this far past its end, a step at a time
 * (accesslog_writer.c: prealloc). */
#define ALOG_PREALLOC (16 << 20)

typedef struct alog_chunk {
    uint32_t len;
    char data[ALOG_CHUNK];
} alog_chunk;

typedef struct alog_cap alog_cap;

#define ALOG_CAP_POOL  1024u /* capture blocks a shard keeps */
#define ALOG_MEMO_RAW  128u  /* user agents and referers memoized up to this long */
#define ALOG_MEMO_SEG2 256u  /* ... when their seg2 is at most this long */
#define ALOG_ABSENT    0xffffu

struct alog_shard {
    spsc q;     /* full chunks, shard -> log thread */
    spsc freeq; /* written chunks, log thread -> shard */
    alog_chunk *slots[ALOG_QUEUE];
    alog_chunk *free_slots[ALOG_QUEUE];
    /* The rest is the shard thread's (accesslog.c). */
    alog_chunk *cur;
    bool json;
    int64_t t_sec;   /* the second the time fields hold */
    char t_text[32]; /* "[06/Dec/2026:22:05:10 +0000]" (ALOG_T_TEXT_LEN) */
    char t_iso[24];  /* "2026-12-06T22:05:10" (ALOG_T_ISO_LEN) */
    /* The line's start, cached for runs of lines of one connection (its
     * streams end in the same loop iterations) in one second (text) or
     * millisecond (JSON): text "ADDR:PORT - - [time] \"", JSON
     * {"time":"...T..:..:..mmmZ","client":"ADDR","client_port":PORT.
     * mid: text " SHARD CONN ", JSON the shard and connection members and
     * the stream key.  pre_conn 0: none yet. */
    uint64_t pre_conn, mid_conn;
    int64_t pre_ms; /* pre holds for t_ms in [pre_ms, pre_ms + pre_span) */
    uint64_t pre_span;
    uint8_t pre_len, head_len, mid_len;
    char head[96] __attribute__((aligned(16))); /* the connection's address part */
    char pre[160] __attribute__((aligned(16)));
    char mid[80] __attribute__((aligned(16)));
    /* The last capture's user agent and referer, raw (ALOG_ABSENT: none),
     * and the seg2 they made (accesslog.c): a connection sends the same
     * ones with each request, and captures come in runs per connection.
     * memo_seg2_len 0: nothing memoized. */
    uint16_t memo_ul, memo_rl, memo_seg2_len;
    char memo_ua[ALOG_MEMO_RAW + 32] __attribute__((aligned(16)));
    char memo_ref[ALOG_MEMO_RAW + 32] __attribute__((aligned(16)));
    char memo_seg2[ALOG_MEMO_SEG2 + 32] __attribute__((aligned(16)));
    uint32_t npool;
    alog_cap *pool[ALOG_CAP_POOL]; /* free capture blocks */
};

#define ALOG_T_TEXT_LEN 28u
#define ALOG_T_ISO_LEN  19u

struct alog_server {
    server *srv;
    int fd;
    bool is_stdout;
    bool json;
    bool no_prealloc; /* not a file to preallocate (accesslog_writer.c) */
    /* The log thread's: [pa_from, pa_to) was preallocated (0, 0: none). */
    int64_t pa_from, pa_to;
    pthread_t thread;
    atomic_bool stop;
    atomic_bool reopen;
    uint32_t nshards;
    alog_shard *shards; /* aligned_alloc: spsc is over-aligned */
};

/* A chunk for the shard to fill: a written one back from the log thread,
 * or a new one; NULL without memory (shard thread). */
alog_chunk *alog_chunk_get(alog_shard *a);

#endif
