/* job.h - one database endpoint's work as a list of queries and the
 * consumption of their results, independent of how the queries travel.
 *
 * A job is made with everything random drawn up front (the ids; for
 * /updates also the new numbers), so every query is known before the first
 * result arrives: a driver can send them one at a time and wait (the
 * blocking mode: tfb_db_run() for k = 0, 1, ...), or send them all at once
 * in pipeline mode on a non-blocking connection and feed the results back as
 * they come.  Either way results are fed in query order.
 *
 *   tfb_job j;
 *   tfb_job_init(&j, TFB_JOB_UPDATES, n, &rng);
 *   for (k = 0; k < j.nqueries; k++) {
 *       tfb_query q;
 *       tfb_job_query(&j, k, &q);   ... send q ...   tfb_query_free(&q);
 *   }
 *   for (k = 0; k < j.nqueries; k++)  tfb_job_consume(&j, k, result_k);
 *   tfb_job_render(&j, &body);  tfb_job_free(&j);
 *
 * Queries per job: /db 1, /queries n, /fortunes 1, /updates n + 1 (n reads,
 * then one UPDATE of every row), /sleep 1.  Not thread-safe; a job belongs to one
 * request.
 */
#ifndef TFB_JOB_H
#define TFB_JOB_H

#include <libpq-fe.h>
#include <stdint.h>

#include "db.h"
#include "render.h"

typedef enum tfb_job_kind {
    TFB_JOB_DB,
    TFB_JOB_QUERIES,
    TFB_JOB_FORTUNES,
    TFB_JOB_UPDATES,
    TFB_JOB_SLEEP, /* test-only: pg_sleep(n ms), answers {"slept":n} */
} tfb_job_kind;

typedef struct tfb_job {
    tfb_job_kind kind;
    uint32_t n;        /* rows (1 for /db; 0 for /fortunes) */
    uint32_t nqueries; /* queries to send, in order */
    tfb_world *w;      /* n rows: the ids drawn, then what the response shows */
    tfb_world *upd;    /* /updates: the rows as written (sorted by id, unique) */
    uint32_t nupd;
    PGresult *fortunes; /* /fortunes: kept, the messages point into it */
    tfb_fortune *f;
    size_t nf, capf;
    char err[256]; /* the cause of the last failure */
} tfb_job;

/* Draw the job's ids (and new numbers) from rng.  n is the queries
 * parameter for TFB_JOB_QUERIES and TFB_JOB_UPDATES (1..500), the
 * milliseconds for TFB_JOB_SLEEP (at most TFB_MAX_SLEEP_MS), ignored
 * otherwise.  TFB_DB_OK or TFB_DB_NOMEM (then tfb_job_free() is still
 * safe). */
#define TFB_MAX_SLEEP_MS 10000
int tfb_job_init(tfb_job *j, tfb_job_kind kind, uint32_t n, uint64_t *rng);

/* Build query k (k < nqueries) into q; free q with tfb_query_free() once
 * sent.  TFB_DB_OK or TFB_DB_NOMEM. */
int tfb_job_query(tfb_job *j, uint32_t k, tfb_query *q);

/* Consume the result of query k; the job takes r (PQclear()s it, or keeps
 * it until tfb_job_free()).  TFB_DB_OK, or TFB_DB_ERROR / TFB_DB_NOMEM with
 * the cause in j->err (r is taken either way; NULL counts as an error). */
int tfb_job_consume(tfb_job *j, uint32_t k, PGresult *r);

/* The response body once every result was consumed, and its type. */
void tfb_job_render(const tfb_job *j, tfb_buf *b);
const char *tfb_job_content_type(const tfb_job *j);

void tfb_job_free(tfb_job *j);

#endif
