/* headers.c - copying spindle_header arrays into one heap block. */
#include "headers.h"

#include <stdlib.h>
#include <string.h>

size_t headers_bytes(const spindle_header *h, size_t n)
{
    size_t b = n * sizeof(spindle_header);
    for (size_t i = 0; i < n; i++)
        b += (h[i].name_len ? h[i].name_len : strlen(h[i].name)) +
             (h[i].value_len || !h[i].value ? h[i].value_len : strlen(h[i].value));
    return b;
}

char *headers_pack(char *out, const spindle_header *h, size_t n, spindle_header **arr)
{
    spindle_header *a = (spindle_header *)(void *)out;
    char *w = out + n * sizeof *a;
    for (size_t i = 0; i < n; i++) {
        uint32_t nl = h[i].name_len ? h[i].name_len : (uint32_t)strlen(h[i].name);
        uint32_t vl = h[i].value_len || !h[i].value ? h[i].value_len : (uint32_t)strlen(h[i].value);
        memcpy(w, h[i].name, nl);
        a[i].name = w;
        a[i].name_len = nl;
        w += nl;
        if (vl)
            memcpy(w, h[i].value, vl);
        a[i].value = w;
        a[i].value_len = vl;
        w += vl;
    }
    *arr = a;
    return w;
}

spindle_header *headers_copy(const spindle_header *h, size_t n)
{
    char *blk = malloc(headers_bytes(h, n) + 1);
    if (!blk)
        return NULL;
    spindle_header *arr;
    headers_pack(blk, h, n, &arr);
    return arr; /* == blk: one free() releases it all */
}
