/* http.h - the pure parts of spindle-static: request paths, validators,
 * conditional requests, ranges and content types.  No I/O, no clock; every
 * function here is a plain string or number transformation (docs/static.md).
 */
#ifndef SPINDLE_STATIC_HTTP_H
#define SPINDLE_STATIC_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Outcome of turning a request :path into a path relative to the root. */
typedef enum {
    SP_OK = 0,
    SP_BAD,     /* not origin-form, a bad %-escape or %00: 400 */
    SP_DOTDOT,  /* a ".." segment after decoding: 403 */
    SP_TOOLONG, /* longer than the output buffer: 414 */
} sp_path_rc;

/* Decode the path part of target[0..len) (the query is stripped) exactly
 * once, drop empty and "." segments, refuse ".." segments, and write the
 * remaining segments joined by '/' into out (NUL-terminated, no leading
 * '/'; "." for the root itself).  *dir is set when the path ends in '/' (or
 * is the root).  Backslashes are ordinary bytes. */
sp_path_rc sp_path_normalize(const char *target, size_t len, char *out, size_t outlen, bool *dir);

/* The fast case of sp_path_normalize(), without a copy: when target[0..len)
 * is already in normal form (origin-form, shorter than outlen, no query,
 * no '%', no NUL, no empty segment and no segment starting with '.', at
 * most a trailing '/'), *key and *klen are the normalised path inside
 * target itself (not NUL-terminated; "." for "/"), *dir is set as
 * sp_path_normalize() would, and true is returned.  false: not such a
 * path (sp_path_normalize() decides); nothing is set. */
bool sp_path_plain(const char *target, size_t len, size_t outlen, const char **key, size_t *klen,
                   bool *dir);

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") of t into out[30]. */
void sp_http_date(time_t t, char out[30]);

/* Parse an HTTP date (IMF-fixdate, RFC 850 or asctime, RFC 9110 5.6.7);
 * false when it is none of them. */
bool sp_parse_date(const char *s, size_t len, time_t *out);

/* Does a list of entity tags (or "*"), as in If-None-Match (weak
 * comparison) or If-Match (strong: W/ tags never match), contain etag?
 * etag is our own, strong, quoted tag.  A malformed list matches nothing. */
bool sp_etag_list_match(const char *list, size_t len, const char *etag, bool weak);

/* If-Range: true when the validator (an entity tag, compared strongly, or
 * an HTTP date equal to last-modified) says the range may be served. */
bool sp_if_range_ok(const char *v, size_t len, const char *etag, time_t mtime);

typedef enum {
    SR_NONE = 0, /* no usable Range (absent, not bytes=, malformed): 200 */
    SR_MULTI,    /* several ranges: served as 200 with the full body */
    SR_OK,       /* one satisfiable range: 206 */
    SR_UNSAT,    /* not satisfiable: 416 */
} sp_range_rc;

/* Parse a Range value against a representation of size bytes; on SR_OK
 * [*first, *last] (inclusive) is the range to send. */
sp_range_rc sp_parse_range(const char *v, size_t len, uint64_t size, uint64_t *first,
                           uint64_t *last);

/* The media type for a file name by its extension (case-insensitive);
 * "application/octet-stream" when unknown. */
const char *sp_content_type(const char *name);

#endif
