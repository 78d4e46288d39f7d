/* http.c - paths, dates, entity tags, ranges and media types for
 * spindle-static.  See http.h. */
#define _DEFAULT_SOURCE /* timegm */
#include "http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------ */
/* Paths                                                                     */
/* ------------------------------------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

sp_path_rc sp_path_normalize(const char *target, size_t len, char *out, size_t outlen, bool *dir)
{
    if (outlen < 2)
        return SP_TOOLONG;
    if (len == 0 || target[0] != '/')
        return SP_BAD; /* origin-form only ("*" and absolute-form have no file) */
    const char *q = memchr(target, '?', len);
    if (q)
        len = (size_t)(q - target);
    /* Decode once into out (decoding never lengthens), then rewrite the
     * segments in place: the write cursor never passes the read cursor. */
    if (len >= outlen)
        return SP_TOOLONG;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = target[i];
        if (c == '%') {
            /* Both digits must be there: "%", "%4" and "%zz" are errors. */
            int hi = i + 2 < len ? hexval(target[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(target[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return SP_BAD;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0')
            return SP_BAD;
        out[n++] = c;
    }
    *dir = n == 0 || out[n - 1] == '/';
    size_t w = 0, r = 0;
    while (r < n) {
        while (r < n && out[r] == '/')
            r++;
        size_t s = r;
        while (r < n && out[r] != '/')
            r++;
        size_t sl = r - s;
        if (sl == 0 || (sl == 1 && out[s] == '.'))
            continue;
        if (sl == 2 && out[s] == '.' && out[s + 1] == '.')
            return SP_DOTDOT;
        if (w)
            out[w++] = '/';
        memmove(out + w, out + s, sl);
        w += sl;
    }
    if (w == 0) {
        out[w++] = '.';
        *dir = true;
    }
    out[w] = '\0';
    return SP_OK;
}

/* Bytes that need a second look in a plain path: the end of the path
 * ('?': a query; NUL), an escape, and '/' (what follows it). */
static const unsigned char plain_stop[256] = {[0] = 1, ['%'] = 1, ['?'] = 1, ['/'] = 1};

bool sp_path_plain(const char *target, size_t len, size_t outlen, const char **key, size_t *klen,
                   bool *dir)
{
    if (len == 0 || len >= outlen || target[0] != '/')
        return false;
    if (len == 1) { /* "/": the root */
        *key = ".";
        *klen = 1;
        *dir = true;
        return true;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)target[i];
        if (!plain_stop[c])
            continue;
        if (c != '/')
            return false; /* a query, an escape, a NUL */
        /* An empty, "." or ".." segment (or any segment starting with a
         * dot: left to sp_path_normalize, which knows them apart); a '/'
         * at the end is the trailing slash. */
        if (i + 1 < len && (target[i + 1] == '/' || target[i + 1] == '.'))
            return false;
    }
    *dir = target[len - 1] == '/';
    *key = target + 1;
    *klen = len - 1 - (*dir ? 1 : 0);
    return true;
}

/* ------------------------------------------------------------------------ */
/* Dates                                                                     */
/* ------------------------------------------------------------------------ */

static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void sp_http_date(time_t t, char out[30])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        memcpy(out, "Thu, 01 Jan 1970 00:00:00 GMT", 30);
        return;
    }
    /* By hand: strftime's names follow the locale. */
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
    memcpy(out, tmp, 29); /* years past 9999 would not fit: cut, still NUL-terminated */
    out[29] = '\0';
}

static int month_of(const char *m)
{
    for (int i = 0; i < 12; i++)
        if (strncasecmp(m, months[i], 3) == 0)
            return i;
    return -1;
}

/* Days from 1970-01-01 to y-m-d (m 1..12; d past the month's end runs
 * on into the next, as timegm() normalises it): H. Hinnant's
 * days_from_civil. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Two digits at s: their value, or -1. */
static int two_digits(const char *s)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return -1;
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* The canonical IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT" (29 bytes),
 * by position: what clients send back from last-modified, so the common
 * conditional request needs no sscanf() or timegm() (~4,500 instructions).
 * false: not in that exact form (sp_parse_date() then parses it the
 * general way, which gives the same time for any string this accepts). */
static bool parse_fixdate(const char *s, size_t len, time_t *out)
{
    if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
        return false;
    for (int i = 0; i < 3; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == ',')
            return false; /* (sscanf's %3s stops at white space) */
    int day = two_digits(s + 5), hi = two_digits(s + 12), lo = two_digits(s + 14);
    int hh = two_digits(s + 17), mm = two_digits(s + 20), ss = two_digits(s + 23);
    int m = month_of(s + 8);
    if (day < 1 || day > 31 || hi < 0 || lo < 0 || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
        ss < 0 || ss > 60 || m < 0 || hi * 100 + lo < 1900)
        return false;
    int64_t t = days_from_civil(hi * 100 + lo, m + 1, day) * 86400 + hh * 3600 + mm * 60 + ss;
    if (t == -1)
        return false; /* as timegm()'s error value */
    *out = (time_t)t;
    return true;
}

bool sp_parse_date(const char *s, size_t len, time_t *out)
{
    char buf[64];
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (parse_fixdate(s, len, out))
        return true;
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    char wd[16], mon[4], tz[4];
    int day, year, hh, mm, ss, used = 0;
    if (strchr(buf, ',') && buf[3] == ',') {
        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        if (sscanf(buf, "%3s, %2d %3s %4d %2d:%2d:%2d %3s%n", wd, &day, mon, &year, &hh, &mm, &ss,
                   tz, &used) != 8)
            return false;
    } else if (strchr(buf, ',')) {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        if (sscanf(buf, "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d %3s%n", wd, &day, mon, &year, &hh,
                   &mm, &ss, tz, &used) != 8)
            return false;
        year += year < 70 ? 2000 : 1900;
    } else {
        /* asctime: Sun Nov  6 08:49:37 1994 */
        if (sscanf(buf, "%3s %3s %2d %2d:%2d:%2d %4d%n", wd, mon, &day, &hh, &mm, &ss, &year,
                   &used) != 7)
            return false;
        memcpy(tz, "GMT", 4);
    }
    if ((size_t)used != len || strcmp(tz, "GMT") != 0)
        return false;
    int m = month_of(mon);
    if (m < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1900)
        return false;
    tm.tm_year = year - 1900;
    tm.tm_mon = m;
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *out = t;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Entity tags                                                               */
/* ------------------------------------------------------------------------ */

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

bool sp_etag_list_match(const char *v, size_t len, const char *etag, bool weak)
{
    size_t el = strlen(etag);
    size_t i = 0;
    while (i < len) {
        while (i < len && (ows(v[i]) || v[i] == ','))
            i++;
        if (i >= len)
            break;
        if (v[i] == '*')
            return true;
        bool is_weak = len - i >= 2 && v[i] == 'W' && v[i + 1] == '/';
        if (is_weak)
            i += 2; /* weak comparison: the W/ prefix does not matter */
        if (i >= len || v[i] != '"')
            return false; /* malformed list: no match */
        size_t s = i++;
        while (i < len && v[i] != '"')
            i++;
        if (i >= len)
            return false;
        i++; /* the closing quote */
        if ((weak || !is_weak) && i - s == el && memcmp(v + s, etag, el) == 0)
            return true;
    }
    return false;
}

bool sp_if_range_ok(const char *v, size_t len, const char *etag, time_t mtime)
{
    while (len && ows(*v))
        v++, len--;
    while (len && ows(v[len - 1]))
        len--;
    if (len >= 2 && v[0] == 'W' && v[1] == '/')
        return false; /* weak tags never match in If-Range */
    if (len && v[0] == '"')
        return len == strlen(etag) && memcmp(v, etag, len) == 0;
    time_t t;
    return sp_parse_date(v, len, &t) && t == mtime;
}

/* ------------------------------------------------------------------------ */
/* Ranges                                                                    */
/* ------------------------------------------------------------------------ */

/* Digits at v[*i..]: false if none.  Saturates at UINT64_MAX. */
static bool number(const char *v, size_t len, size_t *i, uint64_t *out)
{
    size_t s = *i;
    uint64_t n = 0;
    while (*i < len && v[*i] >= '0' && v[*i] <= '9') {
        unsigned d = (unsigned)(v[*i] - '0');
        n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
        (*i)++;
    }
    *out = n;
    return *i > s;
}

sp_range_rc sp_parse_range(const char *v, size_t len, uint64_t size, uint64_t *first,
                           uint64_t *last)
{
    size_t i = 0;
    while (i < len && ows(v[i]))
        i++;
    if (len - i < 6 || strncasecmp(v + i, "bytes=", 6) != 0)
        return SR_NONE;
    i += 6;
    /* One range-spec, then nothing but OWS; a comma with another spec
     * after it makes it a multi-range request. */
    while (i < len && (ows(v[i]) || v[i] == ','))
        i++;
    uint64_t a = 0, b = 0;
    bool suffix = false, has_b = false;
    if (i < len && v[i] == '-') {
        i++;
        suffix = true;
        if (!number(v, len, &i, &b))
            return SR_NONE;
    } else {
        if (!number(v, len, &i, &a) || i >= len || v[i] != '-')
            return SR_NONE;
        i++;
        has_b = number(v, len, &i, &b);
        if (has_b && b < a)
            return SR_NONE; /* invalid range-spec: the field is ignored */
    }
    while (i < len && ows(v[i]))
        i++;
    if (i < len) {
        if (v[i] != ',')
            return SR_NONE;
        while (i < len && (ows(v[i]) || v[i] == ','))
            i++;
        if (i < len)
            return SR_MULTI;
    }
    if (suffix) {
        if (b == 0 || size == 0)
            return SR_UNSAT;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return SR_OK;
    }
    if (a >= size)
        return SR_UNSAT;
    *first = a;
    *last = has_b && b < size ? b : size - 1;
    return SR_OK;
}

/* ------------------------------------------------------------------------ */
/* Media types                                                               */
/* ------------------------------------------------------------------------ */

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"svg", "image/svg+xml"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
};

const char *sp_content_type(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    const char *dot = strrchr(base, '.');
    if (dot && dot != base)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}
