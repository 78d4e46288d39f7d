/* post.h - posting from any thread to a shard (not installed): the queue's
 * capacity, for core and its tests.  The implementation and the protocol
 * are described in post.c. */
#ifndef SPINDLE_CORE_POST_H
#define SPINDLE_CORE_POST_H

/* Messages one shard's queue holds (a power of two): spindle_post() answers
 * SPINDLE_EAGAIN beyond it.  Its memory is 32 bytes per message (128 KiB a
 * shard).  The shard takes every message it finds at the start of each loop
 * iteration, so the bound is what producers can queue while the shard runs
 * one iteration. */
#define POST_QUEUE_CAP 4096u

#endif
