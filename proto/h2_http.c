/* h2_http.c - RFC 9113 §8 request validation, RFC 9218 §4 priority field.
 *
 * The hot path is h2_http_parse_request(), run once per request on ~8
 * fields: names are checked through one 256-entry class table, values eight
 * octets at a time, and the few names that matter are found by a switch on
 * the name length followed by one memcmp (names are lowercase once valid).
 */
#include "h2_http.h"

#include <string.h>

/* Octet classes.  NAME: RFC 9110 tchar without uppercase (§8.2.1 field
 * names).  TOKEN: tchar (:method, :protocol).  SCHEME: RFC 3986 scheme
 * characters after the first.  PATH: VCHAR and obs-text (no CTL, SP, DEL).
 * AUTH: RFC 3986 authority characters (unreserved, sub-delims, pct, ':', '@',
 * '[', ']'). */
enum { C_NAME = 0x01, C_TOKEN = 0x02, C_SCHEME = 0x04, C_PATH = 0x08, C_AUTH = 0x10 };

static const uint8_t cls[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 00 ........ */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 08 ........ */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 10 ........ */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 18 ........ */
    0x00, 0x1b, 0x08, 0x0b, 0x1b, 0x1b, 0x1b, 0x1b, /* 20 .!"#$%&' */
    0x18, 0x18, 0x1b, 0x1f, 0x18, 0x1f, 0x1f, 0x08, /* 28 ().+,-.. */
    0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, /* 30 01234567 */
    0x1f, 0x1f, 0x18, 0x18, 0x08, 0x18, 0x08, 0x08, /* 38 89:;<=>? */
    0x18, 0x1e, 0x1e, 0x1e, 0x1e, 0x1e, 0x1e, 0x1e, /* 40 @ABCDEFG */
    0x1e, 0x1e, 0x1e, 0x1e, 0x1e, 0x1e, 0x1e, 0x1e, /* 48 HIJKLMNO */
    0x1e, 0x1e, 0x1e, 0x1e, 0x1e, 0x1e, 0x1e, 0x1e, /* 50 PQRSTUVW */
    0x1e, 0x1e, 0x1e, 0x18, 0x08, 0x18, 0x0b, 0x1b, /* 58 XYZ[.]^_ */
    0x0b, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, /* 60 `abcdefg */
    0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, /* 68 hijklmno */
    0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, /* 70 pqrstuvw */
    0x1f, 0x1f, 0x1f, 0x08, 0x0b, 0x08, 0x1b, 0x00, /* 78 xyz{|}~. */
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, /* 80 ........ */
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, /* 88 ........ */
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, /* 90 ........ */
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, /* 98 ........ */
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, /* a0 ........ */
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, /* a8 ........ */
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, /* b0 ........ */
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, /* b8 ........ */
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, /* c0 ........ */
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, /* c8 ........ */
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, /* d0 ........ */
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, /* d8 ........ */
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, /* e0 ........ */
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, /* e8 ........ */
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, /* f0 ........ */
    0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, /* f8 ........ */
};

#define LIT(s) (const uint8_t *)(s), (uint32_t)(sizeof(s) - 1)

static bool all_in(const uint8_t *p, uint32_t len, uint8_t c)
{
    for (uint32_t i = 0; i < len; i++)
        if (!(cls[p[i]] & c))
            return false;
    return true;
}

static inline bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}
static inline bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}
static inline bool is_lcalpha(uint8_t c)
{
    return c >= 'a' && c <= 'z';
}
static inline bool is_alpha(uint8_t c)
{
    return is_lcalpha((uint8_t)(c | 0x20));
}
static inline uint8_t to_lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c | 0x20) : c;
}

static bool eq(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* ASCII case-insensitive equality. */
static bool ieq(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen)
{
    if (alen != blen)
        return false;
    for (uint32_t i = 0; i < alen; i++)
        if (to_lower(a[i]) != to_lower(b[i]))
            return false;
    return true;
}

/* --- Field validity (§8.2.1) ------------------------------------------------ */

bool h2_http_valid_name(const uint8_t *name, uint32_t len)
{
    return len != 0 && all_in(name, len, C_NAME);
}

/* Non-zero iff some octet of w is zero (exact for "any", which is all we ask). */
static inline uint64_t zero_octet(uint64_t w)
{
    return (w - UINT64_C(0x0101010101010101)) & ~w & UINT64_C(0x8080808080808080);
}

/* NUL, CR or LF anywhere in v: eight octets per step, then the tail. */
static bool has_nul_cr_lf(const uint8_t *v, uint32_t len)
{
    const uint64_t cr = UINT64_C(0x0d0d0d0d0d0d0d0d), lf = UINT64_C(0x0a0a0a0a0a0a0a0a);
    uint32_t i = 0;

    for (; len - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, v + i, 8);
        if (zero_octet(w) | zero_octet(w ^ cr) | zero_octet(w ^ lf))
            return true;
    }
    for (; i < len; i++)
        if (v[i] == '\0' || v[i] == '\r' || v[i] == '\n')
            return true;
    return false;
}

bool h2_http_valid_value(const uint8_t *value, uint32_t len)
{
    if (len == 0)
        return true;
    return !is_ows(value[0]) && !is_ows(value[len - 1]) && !has_nul_cr_lf(value, len);
}

/* Why a name failed h2_http_valid_name() (slow path, for the log). */
static const char *name_why(const uint8_t *name, uint32_t len)
{
    if (len == 0)
        return "empty field name";
    if (name[0] == ':')
        return "pseudo-header field after a regular field";
    for (uint32_t i = 0; i < len; i++)
        if (name[i] >= 'A' && name[i] <= 'Z')
            return "uppercase character in field name";
    return "invalid character in field name";
}

/* Why a value failed h2_http_valid_value() (slow path, for the log). */
static const char *value_why(const uint8_t *v, uint32_t len)
{
    if (memchr(v, '\0', len))
        return "NUL in field value";
    if (memchr(v, '\r', len))
        return "CR in field value";
    if (memchr(v, '\n', len))
        return "LF in field value";
    return is_ows(v[0]) ? "leading whitespace in field value"
                        : "trailing whitespace in field value";
}

/* --- Regular fields ----------------------------------------------------------- */

/* The regular fields this module acts on. */
typedef enum fkind {
    F_OTHER,
    F_TE,
    F_HOST,
    F_EXPECT,
    F_UPGRADE,
    F_PRIORITY,
    F_CONNECTION,
    F_KEEP_ALIVE,
    F_CONTENT_LENGTH,
    F_PROXY_CONNECTION,
    F_TRANSFER_ENCODING,
} fkind;

/* name is a valid (so lowercase) field name: one length switch, one memcmp. */
static fkind classify(const uint8_t *n, uint32_t len)
{
#define IS(s) (memcmp(n, s, sizeof(s) - 1) == 0)
    switch (len) {
    case 2: return IS("te") ? F_TE : F_OTHER;
    case 4: return IS("host") ? F_HOST : F_OTHER;
    case 6: return IS("expect") ? F_EXPECT : F_OTHER;
    case 7: return IS("upgrade") ? F_UPGRADE : F_OTHER;
    case 8: return IS("priority") ? F_PRIORITY : F_OTHER;
    case 10: return IS("connection") ? F_CONNECTION : IS("keep-alive") ? F_KEEP_ALIVE : F_OTHER;
    case 14: return IS("content-length") ? F_CONTENT_LENGTH : F_OTHER;
    case 16: return IS("proxy-connection") ? F_PROXY_CONNECTION : F_OTHER;
    case 17: return IS("transfer-encoding") ? F_TRANSFER_ENCODING : F_OTHER;
    default: return F_OTHER;
    }
#undef IS
}

enum { PS_METHOD, PS_SCHEME, PS_AUTHORITY, PS_PATH, PS_PROTOCOL, PS_COUNT, PS_STATUS = PS_COUNT };

/* Which request pseudo-header a name (leading ':' included) is, or -1. */
static int pseudo_index(const uint8_t *n, uint32_t len)
{
    switch (len) {
    case 5: return memcmp(n, ":path", 5) == 0 ? PS_PATH : -1;
    case 7:
        if (memcmp(n, ":method", 7) == 0)
            return PS_METHOD;
        if (memcmp(n, ":scheme", 7) == 0)
            return PS_SCHEME;
        return memcmp(n, ":status", 7) == 0 ? PS_STATUS : -1;
    case 9: return memcmp(n, ":protocol", 9) == 0 ? PS_PROTOCOL : -1;
    case 10: return memcmp(n, ":authority", 10) == 0 ? PS_AUTHORITY : -1;
    default: return -1;
    }
}

/* --- Digests ------------------------------------------------------------------ *
 *
 * Everything the checks below need from one field's bytes, in one pass: the
 * name's kind, whether the value is valid, and for a pseudo-header the octet
 * classes its value is made of.  The HPACK decoder keeps the digest of each
 * dynamic table entry, so a field sent again by index (most of a request
 * after the first) is checked without reading its bytes again. */

enum {
    K_PSEUDO = 16, /* K_PSEUDO + PS_*: a request pseudo-header or :status */
    K_PSEUDO_UNKNOWN = K_PSEUDO + PS_STATUS + 1,
    K_BAD_NAME, /* a regular name that is not valid */
    D_KIND = 0xffu,
    D_CLS_SHIFT = 8,          /* pseudo-headers: the classes every value octet is in */
    D_VALUE_OK = 1u << 13,    /* h2_http_valid_value() */
    D_ALPHA0 = 1u << 14,      /* the value starts with a letter (:scheme) */
    D_TE_TRAILERS = 1u << 15, /* te: trailers */
    D_EXPECT_100 = 1u << 16,  /* expect: 100-continue */
};

uint32_t h2_http_field_digest(const uint8_t *name, uint32_t name_len, const uint8_t *value,
                              uint32_t value_len)
{
    uint32_t d = h2_http_valid_value(value, value_len) ? D_VALUE_OK : 0;
    if (name_len != 0 && name[0] == ':') {
        int k = pseudo_index(name, name_len);
        uint8_t acc = 0xff;
        for (uint32_t i = 0; i < value_len; i++)
            acc &= cls[value[i]];
        d |= (uint32_t)acc << D_CLS_SHIFT;
        if (value_len != 0 && is_alpha(value[0]))
            d |= D_ALPHA0;
        return d | (k < 0 ? (uint32_t)K_PSEUDO_UNKNOWN : (uint32_t)(K_PSEUDO + k));
    }
    if (!h2_http_valid_name(name, name_len))
        return d | K_BAD_NAME;
    fkind k = classify(name, name_len);
    if (k == F_TE && ieq(value, value_len, LIT("trailers")))
        d |= D_TE_TRAILERS;
    if (k == F_EXPECT && ieq(value, value_len, LIT("100-continue")))
        d |= D_EXPECT_100;
    return d | (uint32_t)k;
}

/* The digest the decoder attached, else computed now. */
static uint32_t digest_of(const hpack_field *f)
{
    if (f->flags & HPACK_F_DIGEST)
        return f->digest;
    return h2_http_field_digest(f->name, f->name_len, f->value, f->value_len);
}

/* A regular field: valid name and value and not connection-specific (§8.2.2;
 * te only as "trailers", compared as the case-insensitive token it is).
 * d is its digest.  Returns why it is malformed, or NULL. */
static const char *check_regular(const hpack_field *f, uint32_t d)
{
    uint32_t kind = d & D_KIND;
    if (kind >= K_PSEUDO)
        return name_why(f->name, f->name_len);
    if (!(d & D_VALUE_OK))
        return value_why(f->value, f->value_len);
    switch ((fkind)kind) {
    case F_CONNECTION: return "connection header field";
    case F_KEEP_ALIVE: return "keep-alive header field";
    case F_PROXY_CONNECTION: return "proxy-connection header field";
    case F_TRANSFER_ENCODING: return "transfer-encoding header field";
    case F_UPGRADE: return "upgrade header field";
    case F_TE: return (d & D_TE_TRAILERS) ? NULL : "te other than trailers";
    default: return NULL;
    }
}

static h2_fault malformed(const char *why)
{
    return h2_fault_stream(H2_PROTOCOL_ERROR, why);
}

/* RFC 9110 §8.6: 1*DIGIT, or a list repeating one value ("5, 5"). */
static h2_fault take_content_length(const uint8_t *v, uint32_t len, int64_t *out)
{
    int64_t first = -1;
    uint32_t i = 0;

    for (;;) {
        uint64_t x = 0;
        if (i == len || !is_digit(v[i]))
            return malformed("invalid content-length");
        for (; i < len && is_digit(v[i]); i++) {
            x = x * 10 + (uint64_t)(v[i] - '0'); /* no wrap: x <= 10^18 before */
            if (x > (uint64_t)H2_HTTP_MAX_CONTENT_LENGTH)
                return malformed("content-length too large");
        }
        if (first >= 0 && (int64_t)x != first)
            return malformed("content-length list with differing values");
        first = (int64_t)x;
        while (i < len && is_ows(v[i]))
            i++;
        if (i == len)
            break;
        if (v[i++] != ',')
            return malformed("invalid content-length");
        while (i < len && is_ows(v[i]))
            i++;
    }
    if (*out >= 0 && *out != first)
        return malformed("content-length fields differ");
    *out = first;
    return h2_fault_none();
}

/* --- Requests (§8.3.1, §8.5, RFC 8441 §4) ------------------------------------ */

#define SEEN(ps) (1u << (ps))

/* Per pseudo-header: octet class of its value and the two reasons. */
static const struct {
    uint8_t cls;
    const char *empty, *bad;
} pseudo_rule[PS_COUNT] = {
    [PS_METHOD] = {C_TOKEN, "empty :method", "invalid :method"},
    [PS_SCHEME] = {C_SCHEME, "empty :scheme", "invalid :scheme"},
    [PS_AUTHORITY] = {C_AUTH, "empty :authority", "invalid character in :authority"},
    [PS_PATH] = {C_PATH, "empty :path", "invalid character in :path"},
    [PS_PROTOCOL] = {C_TOKEN, "empty :protocol", "invalid :protocol"},
};

/* The pseudo-header section: *i is advanced past it. */
static h2_fault take_pseudo(const hpack_field *f, uint32_t n, uint32_t *i, unsigned *seen,
                            h2_req_head *out)
{
    h2_str *slot[PS_COUNT] = {&out->method, &out->scheme, &out->authority, &out->path,
                              &out->protocol};

    for (; *i < n && f[*i].name_len != 0 && f[*i].name[0] == ':'; ++*i) {
        const hpack_field *p = &f[*i];
        uint32_t d = digest_of(p);
        if ((d & D_KIND) == K_PSEUDO_UNKNOWN)
            return malformed("unknown pseudo-header field");
        int k = (int)(d & D_KIND) - K_PSEUDO;
        if (k == PS_STATUS)
            return malformed(":status in a request");
        if (*seen & SEEN(k))
            return malformed("duplicate pseudo-header field");
        *seen |= SEEN(k);
        if (p->value_len == 0)
            return malformed(pseudo_rule[k].empty);
        if (!((d >> D_CLS_SHIFT) & pseudo_rule[k].cls) || (k == PS_SCHEME && !(d & D_ALPHA0)))
            return malformed(pseudo_rule[k].bad);
        slot[k]->p = p->value;
        slot[k]->len = p->value_len;
    }
    return h2_fault_none();
}

/* The rules that relate pseudo-headers to each other. */
static h2_fault check_pseudo_set(unsigned seen, bool connect_protocol_enabled, h2_req_head *out)
{
    if (!(seen & SEEN(PS_METHOD)))
        return malformed("missing :method");
    const bool connect = eq(out->method.p, out->method.len, LIT("CONNECT"));

    if (seen & SEEN(PS_PROTOCOL)) {
        if (!connect_protocol_enabled)
            return malformed(":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL");
        if (!connect)
            return malformed(":protocol with a method other than CONNECT");
        out->extended_connect = true;
    } else if (connect) { /* §8.5 */
        if (seen & (SEEN(PS_SCHEME) | SEEN(PS_PATH)))
            return malformed("CONNECT with :scheme or :path");
        if (!(seen & SEEN(PS_AUTHORITY)))
            return malformed("CONNECT without :authority");
        return h2_fault_none();
    }

    if (!(seen & SEEN(PS_SCHEME)))
        return malformed("missing :scheme");
    if (!(seen & SEEN(PS_PATH)))
        return malformed("missing :path");
    if (out->extended_connect && !(seen & SEEN(PS_AUTHORITY)))
        return malformed("extended CONNECT without :authority");
    if ((ieq(out->scheme.p, out->scheme.len, LIT("https")) ||
         ieq(out->scheme.p, out->scheme.len, LIT("http"))) &&
        out->path.p[0] != '/') {
        if (!eq(out->path.p, out->path.len, LIT("*")))
            return malformed(":path neither absolute nor *");
        if (!eq(out->method.p, out->method.len, LIT("OPTIONS")))
            return malformed(":path * with a method other than OPTIONS");
    }
    return h2_fault_none();
}

h2_fault h2_http_parse_request(const hpack_field *f, uint32_t n, bool connect_protocol_enabled,
                               h2_req_head *out)
{
    const hpack_field *host = NULL;
    unsigned seen = 0;
    uint32_t i = 0;
    h2_fault e;

    /* Member by member: a memset of the whole head is a rep stos. */
    const h2_str none = {NULL, 0};
    out->method = out->scheme = out->authority = out->path = out->protocol = none;
    out->content_length = -1;
    out->urgency = H2_URGENCY_DEFAULT;
    out->incremental = out->expect_continue = out->extended_connect = false;

    e = take_pseudo(f, n, &i, &seen, out);
    if (!h2_fault_ok(e))
        return e;
    out->fields = i < n ? f + i : NULL;
    out->nfields = n - i;

    for (; i < n; i++) {
        uint32_t d = digest_of(&f[i]);
        const char *why = check_regular(&f[i], d);
        if (why)
            return malformed(why);
        switch ((fkind)(d & D_KIND)) {
        case F_HOST:
            if (host)
                return malformed("duplicate host");
            host = &f[i];
            break;
        case F_CONTENT_LENGTH:
            e = take_content_length(f[i].value, f[i].value_len, &out->content_length);
            if (!h2_fault_ok(e))
                return e;
            break;
        case F_PRIORITY:
            h2_http_parse_priority(f[i].value, f[i].value_len, &out->urgency, &out->incremental);
            break;
        case F_EXPECT:
            if (d & D_EXPECT_100)
                out->expect_continue = true;
            break;
        default: break;
        }
    }

    e = check_pseudo_set(seen, connect_protocol_enabled, out);
    if (!h2_fault_ok(e))
        return e;
    if (host && out->authority.p &&
        !ieq(host->value, host->value_len, out->authority.p, out->authority.len))
        return malformed("host differs from :authority");
    return h2_fault_none();
}

/* --- Responses (§8.3.2) -------------------------------------------------------- */

h2_fault h2_http_parse_response(const hpack_field *f, uint32_t n, h2_resp_head *out)
{
    out->fields = NULL;
    out->nfields = 0;
    out->content_length = -1;
    out->status = 0;
    uint32_t i = 0;
    for (; i < n && f[i].name_len != 0 && f[i].name[0] == ':'; i++) {
        if ((digest_of(&f[i]) & D_KIND) != K_PSEUDO + PS_STATUS)
            return malformed("pseudo-header field other than :status in a response");
        if (out->status)
            return malformed("duplicate :status");
        const uint8_t *v = f[i].value;
        if (f[i].value_len != 3 || v[0] < '1' || v[0] > '5' || !is_digit(v[1]) || !is_digit(v[2]))
            return malformed("invalid :status");
        out->status = (uint16_t)((v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0'));
    }
    if (!out->status)
        return malformed("missing :status");
    out->fields = i < n ? f + i : NULL;
    out->nfields = n - i;
    for (; i < n; i++) {
        uint32_t d = digest_of(&f[i]);
        const char *why = check_regular(&f[i], d);
        if (why)
            return malformed(why);
        if ((fkind)(d & D_KIND) == F_CONTENT_LENGTH) {
            h2_fault e = take_content_length(f[i].value, f[i].value_len, &out->content_length);
            if (!h2_fault_ok(e))
                return e;
        }
    }
    return h2_fault_none();
}

/* --- Trailers and response fields --------------------------------------------- */

h2_fault h2_http_check_trailers(const hpack_field *f, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        const char *why;
        if (f[i].name_len != 0 && f[i].name[0] == ':')
            return malformed("pseudo-header field in trailers");
        if ((why = check_regular(&f[i], digest_of(&f[i]))) != NULL)
            return malformed(why);
    }
    return h2_fault_none();
}

h2_rv h2_http_check_response_fields(const hpack_field *f, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (f[i].name_len != 0 && f[i].name[0] == ':')
            return H2_E_INVAL;
        if (check_regular(&f[i], digest_of(&f[i])) != NULL)
            return H2_E_INVAL;
    }
    return H2_OK;
}

/* --- RFC 9218 §4 priority: an RFC 8941 dictionary ------------------------------
 *
 * Parsed by the RFC 8941 §4.2 rules, leniently: a member that does not parse
 * is dropped (up to the next comma outside a string) instead of the whole
 * field, and a trailing comma is tolerated.  Only u (Integer 0..7) and
 * i (Boolean) are used; last one wins (§4.2.2). */

enum sf_type { SF_OTHER, SF_INT, SF_BOOL };

typedef struct sf_cur {
    const uint8_t *p, *end;
} sf_cur;

static void sf_skip_sp(sf_cur *c)
{
    while (c->p < c->end && *c->p == ' ')
        c->p++;
}

static void sf_skip_ows(sf_cur *c)
{
    while (c->p < c->end && is_ows(*c->p))
        c->p++;
}

static bool sf_peek(const sf_cur *c, uint8_t ch)
{
    return c->p < c->end && *c->p == ch;
}

/* key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ) */
static bool sf_key(sf_cur *c)
{
    if (c->p == c->end || !(is_lcalpha(*c->p) || *c->p == '*'))
        return false;
    for (c->p++; c->p < c->end; c->p++) {
        uint8_t ch = *c->p;
        if (!(is_lcalpha(ch) || is_digit(ch) || ch == '_' || ch == '-' || ch == '.' || ch == '*'))
            break;
    }
    return true;
}

/* sf-integer (at most 15 digits) or sf-decimal (12.3 digits at most). */
static bool sf_number(sf_cur *c, int *type, int64_t *val)
{
    const bool neg = sf_peek(c, '-');
    int64_t v = 0;
    int nd = 0, nf = 0;

    if (neg)
        c->p++;
    if (c->p == c->end || !is_digit(*c->p))
        return false;
    for (; c->p < c->end && is_digit(*c->p); c->p++) {
        if (++nd > 15)
            return false;
        v = v * 10 + (*c->p - '0');
    }
    if (!sf_peek(c, '.')) {
        *type = SF_INT;
        *val = neg ? -v : v;
        return true;
    }
    if (nd > 12)
        return false;
    for (c->p++; c->p < c->end && is_digit(*c->p); c->p++)
        if (++nf > 3)
            return false;
    *type = SF_OTHER;
    return nf > 0;
}

/* sf-string: printable ASCII, only \" and \\ escapes. */
static bool sf_string(sf_cur *c)
{
    for (c->p++; c->p < c->end; c->p++) {
        uint8_t ch = *c->p;
        if (ch == '"') {
            c->p++;
            return true;
        }
        if (ch == '\\') {
            if (++c->p == c->end || (*c->p != '"' && *c->p != '\\'))
                return false;
        } else if (ch < 0x20 || ch > 0x7e) {
            return false;
        }
    }
    return false;
}

/* bare-item = sf-integer / sf-decimal / sf-string / sf-token / sf-binary /
 * sf-boolean.  *val is set for integers and booleans. */
static bool sf_bare_item(sf_cur *c, int *type, int64_t *val)
{
    if (c->p == c->end)
        return false;
    const uint8_t ch = *c->p;
    *type = SF_OTHER;
    if (ch == '-' || is_digit(ch))
        return sf_number(c, type, val);
    if (ch == '"')
        return sf_string(c);
    if (ch == '*' || is_alpha(ch)) { /* sf-token */
        for (c->p++; c->p < c->end; c->p++)
            if (!(cls[*c->p] & C_TOKEN) && *c->p != ':' && *c->p != '/')
                break;
        return true;
    }
    if (ch == ':') { /* sf-binary */
        for (c->p++; c->p < c->end; c->p++)
            if (!(is_alpha(*c->p) || is_digit(*c->p) || *c->p == '+' || *c->p == '/' ||
                  *c->p == '='))
                break;
        if (!sf_peek(c, ':'))
            return false;
        c->p++;
        return true;
    }
    if (ch == '?') { /* sf-boolean */
        if (c->end - c->p < 2 || (c->p[1] != '0' && c->p[1] != '1'))
            return false;
        *type = SF_BOOL;
        *val = c->p[1] == '1';
        c->p += 2;
        return true;
    }
    return false;
}

/* parameters = *( ";" *SP key [ "=" bare-item ] ) */
static bool sf_params(sf_cur *c)
{
    while (sf_peek(c, ';')) {
        int type;
        int64_t val;
        c->p++;
        sf_skip_sp(c);
        if (!sf_key(c))
            return false;
        if (sf_peek(c, '=')) {
            c->p++;
            if (!sf_bare_item(c, &type, &val))
                return false;
        }
    }
    return true;
}

/* inner-list = "(" *SP [ sf-item *( 1*SP sf-item ) *SP ] ")" parameters */
static bool sf_inner_list(sf_cur *c)
{
    for (c->p++;;) {
        int type;
        int64_t val;
        sf_skip_sp(c);
        if (sf_peek(c, ')')) {
            c->p++;
            return sf_params(c);
        }
        if (!sf_bare_item(c, &type, &val) || !sf_params(c))
            return false;
        if (!sf_peek(c, ' ') && !sf_peek(c, ')'))
            return false;
    }
}

/* dict-member = key ( parameters / "=" ( sf-item / inner-list ) ) */
static bool sf_member(sf_cur *c, uint32_t *klen, int *type, int64_t *val)
{
    const uint8_t *key = c->p;
    if (!sf_key(c))
        return false;
    *klen = (uint32_t)(c->p - key);
    *type = SF_BOOL; /* a bare key is Boolean true */
    *val = 1;
    if (sf_peek(c, '=')) {
        c->p++;
        if (sf_peek(c, '(')) {
            *type = SF_OTHER;
            return sf_inner_list(c);
        }
        if (!sf_bare_item(c, type, val))
            return false;
    }
    return sf_params(c);
}

/* Recovery: move to the next ',' that is not inside a string. */
static void sf_skip_member(sf_cur *c)
{
    bool quoted = false;
    for (; c->p < c->end; c->p++) {
        if (quoted) {
            if (*c->p == '\\' && c->end - c->p > 1)
                c->p++;
            else if (*c->p == '"')
                quoted = false;
        } else if (*c->p == '"') {
            quoted = true;
        } else if (*c->p == ',') {
            return;
        }
    }
}

void h2_http_parse_priority(const uint8_t *v, uint32_t len, uint8_t *urgency, bool *incremental)
{
    if (len == 0)
        return;
    sf_cur c = {v, v + len};

    sf_skip_sp(&c);
    while (c.p < c.end) {
        const uint8_t *key = c.p;
        uint32_t klen = 0;
        int type = SF_OTHER;
        int64_t val = 0;
        bool ok = sf_member(&c, &klen, &type, &val);
        if (ok) {
            sf_skip_ows(&c);
            ok = c.p == c.end || *c.p == ',';
        }
        if (!ok) {
            c.p = key;
            sf_skip_member(&c);
        } else if (klen == 1) {
            if (key[0] == 'u' && type == SF_INT && val >= 0 && val <= 7)
                *urgency = (uint8_t)val;
            else if (key[0] == 'i' && type == SF_BOOL)
                *incremental = val != 0;
        }
        if (c.p < c.end)
            c.p++; /* ',' */
        sf_skip_ows(&c);
    }
}
