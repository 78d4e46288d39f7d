/* mini_h2.h - for the core tests: spindle_run() on a thread (127.0.0.1,
 * port 0) and a minimal HTTP/2 client over a real loopback socket. */
#ifndef SPINDLE_TESTS_MINI_H2_H
#define SPINDLE_TESTS_MINI_H2_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spindle.h"

/* Start spindle_run(cfg with address/port overridden, h) on a thread; wait
 * (10 s at most) until every shard listens.  Returns the port. */
uint16_t mini_serve(spindle_config cfg, const spindle_handler *h);
/* The same with hooks (their on_listen is replaced by mini_h2's) and app. */
uint16_t mini_serve_hooks(spindle_config cfg, const spindle_handler *h, const spindle_hooks *hooks,
                          void *app);
/* spindle_stop() and join; returns spindle_run()'s result. */
int mini_stop(void);
/* on_listen calls seen, and the ports they gave. */
int mini_listens(uint16_t *ports, int max);

/* A connected socket (10 s receive timeout). */
int mini_dial(uint16_t port);
void mini_frame_head(uint8_t *out, size_t len, uint8_t type, uint8_t flags, uint32_t sid);
/* Preface + empty SETTINGS. */
void mini_preface(int fd);
/* HEADERS for GET path on sid (end_stream as given). */
void mini_get_headers(int fd, uint32_t sid, const char *path, bool end_stream);

typedef struct mini_frame {
    uint8_t type, flags;
    uint32_t sid;
    size_t len;
    uint8_t p[16384];
} mini_frame;
/* Read one frame (SETTINGS are acknowledged).  false at EOF, error or
 * timeout. */
bool mini_read(int fd, mini_frame *f);

/* Read the response on sid (other streams' frames are skipped): its
 * :status byte (0x88 = 200, 0x89 = 204; a non-indexed status gives its
 * first byte), 0 for a RST_STREAM or the connection's end; the DATA
 * payloads into body (NUL-terminated, at most cap - 1 bytes kept). */
uint8_t mini_response(int fd, uint32_t sid, char *body, size_t cap);

/* Run fn(arg) on shard `shard` (spindle_post) and wait for it (10 s at
 * most, else the test fails). */
void mini_on_shard(uint32_t shard, void (*fn)(void *), void *arg);
/* Wait (10 s at most) until *v >= at_least; false on timeout. */
bool mini_wait(atomic_int *v, int at_least);

#endif
