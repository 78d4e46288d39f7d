/* headers.h - copying spindle_header arrays into one heap block (not
 * installed).  Lengths are resolved on the way (a zero name_len, or a zero
 * value_len with a non-NULL value, means NUL-terminated), so the copies
 * carry explicit lengths.  Pure functions: any thread.
 */
#ifndef SPINDLE_CORE_HEADERS_H
#define SPINDLE_CORE_HEADERS_H

#include <stddef.h>

#include "spindle.h"

/* Bytes headers_pack() writes for h[0..n): the array and every string. */
size_t headers_bytes(const spindle_header *h, size_t n);
/* Write the array (at out, which must be suitably aligned for it) and the
 * strings after it; *arr = the array.  Returns the end of what it wrote. */
char *headers_pack(char *out, const spindle_header *h, size_t n, spindle_header **arr);
/* Copy n headers into one heap block; free() it.  NULL on allocation
 * failure. */
spindle_header *headers_copy(const spindle_header *h, size_t n);

#endif
