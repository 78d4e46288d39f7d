/* job.c - see job.h. */
#define _POSIX_C_SOURCE 200809L
#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int world_id_cmp(const void *pa, const void *pb)
{
    const tfb_world *a = pa, *b = pb;
    return (a->id > b->id) - (a->id < b->id);
}

/* /updates: new numbers for every row, the same for a row drawn twice (it
 * is one row), and the rows as the UPDATE writes them (sorted, unique). */
static int draw_updates(tfb_job *j, uint64_t *rng)
{
    j->upd = malloc(j->n * sizeof *j->upd);
    if (!j->upd)
        return TFB_DB_NOMEM;
    for (uint32_t i = 0; i < j->n; i++)
        j->w[i].random_number = tfb_random_id(rng);
    memcpy(j->upd, j->w, j->n * sizeof *j->w);
    qsort(j->upd, j->n, sizeof *j->upd, world_id_cmp);
    uint32_t u = 0;
    for (uint32_t i = 0; i < j->n; i++)
        if (u == 0 || j->upd[u - 1].id != j->upd[i].id)
            j->upd[u++] = j->upd[i];
    j->nupd = u;
    for (uint32_t i = 0; i < j->n; i++) {
        const tfb_world *x = bsearch(&j->w[i], j->upd, u, sizeof *j->upd, world_id_cmp);
        j->w[i].random_number = x->random_number;
    }
    return TFB_DB_OK;
}

int tfb_job_init(tfb_job *j, tfb_job_kind kind, uint32_t n, uint64_t *rng)
{
    memset(j, 0, sizeof *j);
    j->kind = kind;
    switch (kind) {
    case TFB_JOB_FORTUNES: j->nqueries = 1; return TFB_DB_OK;
    case TFB_JOB_SLEEP:
        j->n = n > TFB_MAX_SLEEP_MS ? TFB_MAX_SLEEP_MS : n;
        j->nqueries = 1;
        return TFB_DB_OK;
    case TFB_JOB_DB: n = 1; break;
    case TFB_JOB_QUERIES:
    case TFB_JOB_UPDATES: n = n < 1 ? 1 : (n > TFB_MAX_QUERIES ? TFB_MAX_QUERIES : n); break;
    }
    j->n = n;
    j->nqueries = kind == TFB_JOB_UPDATES ? n + 1 : n;
    j->w = malloc(n * sizeof *j->w);
    if (!j->w)
        return TFB_DB_NOMEM;
    for (uint32_t i = 0; i < n; i++)
        j->w[i] = (tfb_world){tfb_random_id(rng), 0};
    return kind == TFB_JOB_UPDATES ? draw_updates(j, rng) : TFB_DB_OK;
}

int tfb_job_query(tfb_job *j, uint32_t k, tfb_query *q)
{
    if (j->kind == TFB_JOB_FORTUNES) {
        tfb_query_fortunes(q);
        return TFB_DB_OK;
    }
    if (j->kind == TFB_JOB_SLEEP) {
        tfb_query_sleep(q, j->n);
        return TFB_DB_OK;
    }
    if (k < j->n) {
        tfb_query_world(q, j->w[k].id);
        return TFB_DB_OK;
    }
    return tfb_query_update(q, j->upd, j->nupd); /* the last of /updates */
}

/* A row read for query k: the row asked for. */
static int consume_world(tfb_job *j, uint32_t k, const PGresult *r)
{
    tfb_world got;
    int rc = tfb_decode_world(r, &got, j->err, sizeof j->err);
    if (rc)
        return rc;
    if (got.id != j->w[k].id) {
        snprintf(j->err, sizeof j->err, "world: asked for id %d, got %d", (int)j->w[k].id,
                 (int)got.id);
        return TFB_DB_ERROR;
    }
    if (j->kind != TFB_JOB_UPDATES) /* /updates shows the new number */
        j->w[k].random_number = got.random_number;
    return TFB_DB_OK;
}

static int consume_fortunes(tfb_job *j, PGresult *r)
{
    int rc = tfb_decode_fortunes(r, &j->f, &j->nf, &j->capf, j->err, sizeof j->err);
    if (rc == TFB_DB_NOMEM)
        snprintf(j->err, sizeof j->err, "out of memory");
    if (rc) {
        PQclear(r);
        return rc;
    }
    j->fortunes = r;
    /* The row added at request time (never stored), then the sort. */
    if (j->nf == j->capf) {
        tfb_fortune *g = realloc(j->f, (j->nf + 1) * sizeof *g);
        if (!g) {
            snprintf(j->err, sizeof j->err, "out of memory");
            return TFB_DB_NOMEM;
        }
        j->f = g;
        j->capf = j->nf + 1;
    }
    j->f[j->nf++] = (tfb_fortune){0, tfb_extra_fortune, strlen(tfb_extra_fortune)};
    tfb_fortunes_sort(j->f, j->nf);
    return TFB_DB_OK;
}

int tfb_job_consume(tfb_job *j, uint32_t k, PGresult *r)
{
    if (j->kind == TFB_JOB_FORTUNES)
        return consume_fortunes(j, r);
    if (j->kind == TFB_JOB_SLEEP) {
        int src = tfb_check_sleep(r, j->err, sizeof j->err);
        PQclear(r);
        return src;
    }
    int rc = k < j->n ? consume_world(j, k, r) : tfb_check_update(r, j->err, sizeof j->err);
    PQclear(r);
    return rc;
}

void tfb_job_render(const tfb_job *j, tfb_buf *b)
{
    switch (j->kind) {
    case TFB_JOB_DB: tfb_render_world(b, &j->w[0]); break;
    case TFB_JOB_QUERIES:
    case TFB_JOB_UPDATES: tfb_render_worlds(b, j->w, j->n); break;
    case TFB_JOB_FORTUNES: tfb_render_fortunes(b, j->f, j->nf); break;
    case TFB_JOB_SLEEP:
        tfb_buf_puts(b, "{\"slept\":");
        tfb_buf_putu(b, j->n);
        tfb_buf_puts(b, "}");
        break;
    }
}

const char *tfb_job_content_type(const tfb_job *j)
{
    return j->kind == TFB_JOB_FORTUNES ? "text/html; charset=utf-8" : "application/json";
}

void tfb_job_free(tfb_job *j)
{
    free(j->w);
    free(j->upd);
    free(j->f);
    PQclear(j->fortunes);
    memset(j, 0, sizeof *j);
}
