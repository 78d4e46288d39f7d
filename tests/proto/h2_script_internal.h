/* h2_script_internal.h - what the scripted client's files share
 * (h2_script.c: lifecycle, runner, responding; h2_script_build.c: the
 * builders; h2_script_check.c: output parsing, oracle, views, assertions).
 * Not for tests: they include h2_script.h. */
#ifndef SPINDLE_TESTS_H2_SCRIPT_INTERNAL_H
#define SPINDLE_TESTS_H2_SCRIPT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "h2_script.h"

#define SINK_FIELDS 4096u
#define SINK_BUF    (1u << 20)
#define MAX_OUTPUT  (256u << 20) /* a drain producing more than this is a runaway */

enum { EF_SETTINGS, EF_WU, EF_PING, EF_DATA };

struct h2s_effect {
    size_t end; /* script offset after the frame */
    uint8_t kind;
    uint32_t sid;
    uint32_t v;  /* WU increment; PING index */
    int64_t iws; /* SETTINGS: INITIAL_WINDOW_SIZE or -1 */
    int64_t mfs; /* SETTINGS: MAX_FRAME_SIZE or -1 */
};

#define GROW(arr, n, cap, want)                                                                    \
    do {                                                                                           \
        if ((want) > (cap)) {                                                                      \
            size_t nc_ = (cap) ? (cap) : 16;                                                       \
            while (nc_ < (want))                                                                   \
                nc_ *= 2;                                                                          \
            (arr) = xrealloc((arr), nc_ * sizeof *(arr));                                          \
            memset((arr) + (cap), 0, (nc_ - (cap)) * sizeof *(arr));                               \
            (cap) = nc_;                                                                           \
        }                                                                                          \
    } while (0)

/* Allocation that fails the test when out of memory. */
void *xrealloc(void *p, size_t n);
void *xcalloc(size_t n, size_t sz);
/* Big-endian stores and loads. */
void put24(uint8_t *p, uint32_t v);
void put32(uint8_t *p, uint32_t v);
uint32_t get32(const uint8_t *p);
/* A frame type's name, for messages. */
const char *ftype_name(uint8_t t);
/* An RFC rule the server broke (or a contract the engine broke): fail the
 * test, keep going so the rest of the test still reports. */
void violation(h2s *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Deep copies of decoded fields (freed by h2s_fini). */
h2s_field *copy_fields(const hpack_field *f, uint32_t n);
/* The stream record for sid (created when `create`), or NULL. */
h2s_stream *get_st(h2s *s, uint32_t sid, bool create);
/* The k-th non-ACK SETTINGS frame the server sent, or NULL. */
const h2s_frame *server_settings_k(const h2s *s, size_t k);
/* Parse what the server wrote since the last call (the oracle runs here). */
void parse_output(h2s *s);

#endif
