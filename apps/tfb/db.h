/* db.h - apps/tfb's database layer on libpq: the prepared statements, how to
 * build each query's parameters, how to decode each result, and a blocking
 * driver (one connection, synchronous calls) for the --blocking mode.
 *
 * Building a query (tfb_query_*) and consuming its result (tfb_decode_*,
 * tfb_check_update) are separate from sending it, so a driver on a
 * non-blocking connection sends the same statements with
 * PQsendQueryPrepared(conn, tfb_stmt_name(q->stmt), q->nparams, q->values,
 * q->lengths, NULL, 0) (in pipeline mode for /queries and /updates) and
 * decodes the PGresults it reads back with the same functions.  Parameters
 * and results are in text format.
 *
 * Statements (prepared on every new connection, tfb_db_prepare()):
 *   world     SELECT id, randomnumber FROM world WHERE id = $1
 *   fortunes  SELECT id, message FROM fortune
 *   update    one UPDATE for a whole request: $1 the ids, $2 the new numbers,
 *             as int[] literals, ids sorted so concurrent updates lock rows in
 *             one order (no deadlock between two requests)
 *   sleep     SELECT pg_sleep($1::int / 1000.0): $1 milliseconds, for the
 *             test-only /sleep endpoint (--test-endpoints)
 *
 * Threads: a tfb_db belongs to one thread at a time; nothing here is shared.
 */
#ifndef TFB_DB_H
#define TFB_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "render.h"

typedef enum tfb_stmt {
    TFB_STMT_WORLD,
    TFB_STMT_FORTUNES,
    TFB_STMT_UPDATE,
    TFB_STMT_SLEEP, /* the test-only /sleep (--test-endpoints) */
    TFB_NSTMT
} tfb_stmt;

const char *tfb_stmt_name(tfb_stmt s);
const char *tfb_stmt_sql(tfb_stmt s);
int tfb_stmt_nparams(tfb_stmt s);

/* Outcomes of running a query or decoding its result. */
enum {
    TFB_DB_OK = 0,
    TFB_DB_DOWN = -1,  /* no connection to the server (answer 503) */
    TFB_DB_ERROR = -2, /* the server answered with an error, or a result had
                          an unexpected shape (answer 500) */
    TFB_DB_NOMEM = -3,
};

/* One query, ready to send: statement, parameters as text. */
typedef struct tfb_query {
    tfb_stmt stmt;
    int nparams;
    const char *values[2];
    int lengths[2];
    char id[12];  /* TFB_STMT_WORLD: the id's digits */
    char *arrays; /* TFB_STMT_UPDATE: both int[] literals, heap */
} tfb_query;

void tfb_query_world(tfb_query *q, int32_t id);
void tfb_query_fortunes(tfb_query *q);
void tfb_query_sleep(tfb_query *q, uint32_t ms);
/* The update of n rows (ids and their new random numbers); sorts w by id and
 * drops repeated ids (a row is updated once; callers give repeats the same
 * new number).  TFB_DB_OK or TFB_DB_NOMEM.  Free with tfb_query_free(). */
int tfb_query_update(tfb_query *q, tfb_world *w, size_t n);
void tfb_query_free(tfb_query *q);

/* Decoding.  Each returns TFB_DB_OK, or TFB_DB_ERROR for a failed result or
 * one of another shape (the cause in err, if errlen > 0). */
int tfb_decode_world(const PGresult *r, tfb_world *out, char *err, size_t errlen);
/* Appends the rows to *f (a growable array of *n, capacity *cap, heap); the
 * messages point into r, which must outlive *f.  TFB_DB_NOMEM possible. */
int tfb_decode_fortunes(const PGresult *r, tfb_fortune **f, size_t *n, size_t *cap, char *err,
                        size_t errlen);
int tfb_check_update(const PGresult *r, char *err, size_t errlen);
/* pg_sleep's one row. */
int tfb_check_sleep(const PGresult *r, char *err, size_t errlen);
/* Whether a failed result is worth one more try (deadlock, serialization
 * failure: SQLSTATE 40P01, 40001). */
bool tfb_db_retryable(const PGresult *r);

/* --- The blocking driver ------------------------------------------------ */

typedef struct tfb_db tfb_db;

/* A driver for conninfo (a libpq connection string, copied).  It connects at
 * the first tfb_db_run(), not here.  NULL when out of memory. */
tfb_db *tfb_db_new(const char *conninfo);
/* Close the connection and free the driver (NULL is fine). */
void tfb_db_free(tfb_db *db);

/* Prepare every statement on a connection that has none (a new one).  0 or
 * TFB_DB_DOWN / TFB_DB_ERROR with the cause in err. */
int tfb_db_prepare(PGconn *conn, char *err, size_t errlen);

/* Run q and hand back its result in *res (the caller PQclear()s it).
 * Connects (and prepares) first when there is no connection.  A connection
 * the server dropped (a restart) is replaced and q retried once; while the
 * server stays unreachable, reconnection is tried at most every
 * TFB_DB_RETRY_MS and calls in between fail at once with TFB_DB_DOWN.
 * TFB_DB_ERROR: the server refused the query (*res holds it, for decoding
 * the cause).  The cause of a failure is in err. */
#define TFB_DB_RETRY_MS 100
int tfb_db_run(tfb_db *db, const tfb_query *q, PGresult **res, char *err, size_t errlen);

/* Whether the driver holds an open connection (for tests and logs). */
bool tfb_db_connected(const tfb_db *db);

#endif
