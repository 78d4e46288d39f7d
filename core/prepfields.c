/* prepfields.c - prepared response fields (prepfields.h, spindle.h). */
#include "prepfields.h"

#include <stdlib.h>
#include <string.h>

#include "h2_http.h"
#include "h2_limits.h"
#include "resphdr.h"
#include "stream.h"

/* The list size a prepared set may have: the default SETTINGS we
 * advertise and h2o/nghttp2 clients use (a peer's smaller setting is the
 * peer's to enforce on the whole head, as for any response). */
static uint32_t list_max(void)
{
    return h2_limits_default()->max_header_list_size;
}

/* content-length: 1-18 digits (what the HTTP/1.1 codec accepts). */
static bool clen_ok(const hpack_field *f)
{
    if (f->value_len == 0 || f->value_len > 18)
        return false;
    for (uint32_t k = 0; k < f->value_len; k++)
        if (f->value[k] < '0' || f->value[k] > '9')
            return false;
    return true;
}

/* Copy h into pf's fields and bytes (o: where the bytes go). */
static void copy_fields(spindle_fields *pf, const spindle_header *h, const uint32_t *len, char *o)
{
    for (uint32_t i = 0; i < pf->n; i++) {
        hpack_field *f = &pf->f[i];
        memcpy(o, h[i].name, len[2 * i]);
        o[len[2 * i]] = '\0';
        f->name = (const uint8_t *)o;
        f->name_len = len[2 * i];
        o += len[2 * i] + 1;
        if (len[2 * i + 1])
            memcpy(o, h[i].value, len[2 * i + 1]);
        o[len[2 * i + 1]] = '\0';
        f->value = (const uint8_t *)o;
        f->value_len = len[2 * i + 1];
        o += len[2 * i + 1] + 1;
        f->flags = 0;
        f->digest = 0;
    }
}

/* Validate pf's fields; encode them.  SPINDLE_OK or SPINDLE_EINVAL. */
static int check_and_encode(spindle_fields *pf)
{
    if (h2_http_check_response_fields(pf->f, pf->n) != H2_OK)
        return SPINDLE_EINVAL;
    int clens = 0;
    for (uint32_t i = 0; i < pf->n; i++) {
        if (pf->f[i].name_len == 14 && memcmp(pf->f[i].name, "content-length", 14) == 0 &&
            (++clens > 1 || !clen_ok(&pf->f[i])))
            return SPINDLE_EINVAL;
    }
    pf->present = (uint8_t)resphdr_present(pf->f, pf->n);
    pf->hp_len = (uint32_t)hpack_encode_stateless(pf->f, pf->n, pf->hp);
    return SPINDLE_OK;
}

int spindle_fields_new(const spindle_header *h, size_t n, spindle_fields **out)
{
    if (!out)
        return SPINDLE_EINVAL;
    *out = NULL;
    if (!h || n == 0 || n > UINT32_MAX / 2)
        return SPINDLE_EINVAL;
    uint32_t *len = malloc(2 * n * sizeof *len);
    if (!len)
        return SPINDLE_ENOMEM;
    uint64_t list = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nl = h[i].name_len ? h[i].name_len : (h[i].name ? strlen(h[i].name) : 0);
        size_t vl = h[i].value_len || !h[i].value ? h[i].value_len : strlen(h[i].value);
        if (!h[i].name || nl == 0 || (vl && !h[i].value) || nl > UINT32_MAX || vl > UINT32_MAX)
            return free(len), SPINDLE_EINVAL;
        len[2 * i] = (uint32_t)nl;
        len[2 * i + 1] = (uint32_t)vl;
        list += nl + vl + 32;
        bytes += nl + vl + 2;
    }
    if (list > list_max())
        return free(len), SPINDLE_EINVAL;
    /* One allocation: the struct, the fields, their bytes, the encoding.
     * The encoding's room: the bound of one field as long as the whole
     * list, whose 32 bytes per field more than cover the per-field terms
     * of hpack_encode_bound(f, n). */
    size_t head = sizeof(spindle_fields) + n * sizeof(hpack_field);
    hpack_field tmp = {.name_len = (uint32_t)list, .value_len = 0};
    size_t enc = hpack_encode_bound(&tmp, 1);
    spindle_fields *pf = malloc(head + (size_t)bytes + enc);
    if (!pf)
        return free(len), SPINDLE_ENOMEM;
    pf->f = (hpack_field *)(void *)(pf + 1);
    pf->n = (uint32_t)n;
    char *o = (char *)(pf->f + n);
    pf->hp = (uint8_t *)o + bytes;
    copy_fields(pf, h, len, o);
    free(len);
    int rc = check_and_encode(pf);
    if (rc != SPINDLE_OK) {
        free(pf);
        return rc;
    }
    *out = pf;
    return SPINDLE_OK;
}

void spindle_fields_free(spindle_fields *pf)
{
    free(pf);
}

size_t prepfields_append(const spindle_fields *pf, bool h2, hpack_field *f)
{
    if (!h2) {
        memcpy(f, pf->f, pf->n * sizeof *f);
        return pf->n;
    }
    f->name = NULL;
    f->name_len = 0;
    f->value = pf->hp;
    f->value_len = pf->hp_len;
    f->flags = HPACK_F_ENCODED;
    f->digest = 0;
    return 1;
}
