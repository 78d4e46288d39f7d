/* db.c - see db.h. */
#define _POSIX_C_SOURCE 200809L
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct {
    const char *name, *sql;
    int nparams;
} stmts[TFB_NSTMT] = {
    [TFB_STMT_WORLD] = {"world", "SELECT id, randomnumber FROM world WHERE id = $1", 1},
    [TFB_STMT_FORTUNES] = {"fortunes", "SELECT id, message FROM fortune", 0},
    [TFB_STMT_UPDATE] = {"update",
                         "UPDATE world SET randomnumber = v.r "
                         "FROM (SELECT unnest($1::int[]) AS id, unnest($2::int[]) AS r) AS v "
                         "WHERE world.id = v.id",
                         2},
    [TFB_STMT_SLEEP] = {"sleep", "SELECT pg_sleep($1::int / 1000.0)", 1},
};

const char *tfb_stmt_name(tfb_stmt s)
{
    return stmts[s].name;
}
const char *tfb_stmt_sql(tfb_stmt s)
{
    return stmts[s].sql;
}
int tfb_stmt_nparams(tfb_stmt s)
{
    return stmts[s].nparams;
}

static void say(char *err, size_t errlen, const char *what, const char *detail)
{
    if (errlen) {
        snprintf(err, errlen, "%s%s%s", what, detail && *detail ? ": " : "", detail ? detail : "");
        /* libpq's messages end with a newline */
        size_t n = strlen(err);
        while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
            err[--n] = 0;
    }
}

/* --- Building queries ----------------------------------------------------- */

void tfb_query_world(tfb_query *q, int32_t id)
{
    memset(q, 0, sizeof *q);
    q->stmt = TFB_STMT_WORLD;
    q->nparams = 1;
    int n = snprintf(q->id, sizeof q->id, "%d", (int)id);
    q->values[0] = q->id;
    q->lengths[0] = n;
}

void tfb_query_fortunes(tfb_query *q)
{
    memset(q, 0, sizeof *q);
    q->stmt = TFB_STMT_FORTUNES;
}

void tfb_query_sleep(tfb_query *q, uint32_t ms)
{
    tfb_query_world(q, (int32_t)(ms > INT32_MAX ? INT32_MAX : ms));
    q->stmt = TFB_STMT_SLEEP;
}

static int world_cmp(const void *pa, const void *pb)
{
    const tfb_world *a = pa, *b = pb;
    return (a->id > b->id) - (a->id < b->id);
}

/* "{1,2,3}" from one field of w at p (a NUL-terminated string). */
static char *int_array(char *p, const tfb_world *w, size_t n, bool ids)
{
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        p += sprintf(p, "%d", (int)(ids ? w[i].id : w[i].random_number));
    }
    *p++ = '}';
    *p++ = 0;
    return p;
}

int tfb_query_update(tfb_query *q, tfb_world *w, size_t n)
{
    memset(q, 0, sizeof *q);
    q->stmt = TFB_STMT_UPDATE;
    q->nparams = 2;
    qsort(w, n, sizeof *w, world_cmp);
    size_t u = 0; /* unique ids, in place */
    for (size_t i = 0; i < n; i++)
        if (u == 0 || w[u - 1].id != w[i].id)
            w[u++] = w[i];
    /* each number: at most 11 characters and a comma */
    q->arrays = malloc(2 * (u * 12 + 3));
    if (!q->arrays)
        return TFB_DB_NOMEM;
    char *second = int_array(q->arrays, w, u, true);
    int_array(second, w, u, false);
    q->values[0] = q->arrays;
    q->values[1] = second;
    q->lengths[0] = (int)strlen(q->values[0]);
    q->lengths[1] = (int)strlen(q->values[1]);
    return TFB_DB_OK;
}

void tfb_query_free(tfb_query *q)
{
    free(q->arrays);
    q->arrays = NULL;
}

/* --- Consuming results ---------------------------------------------------- */

/* A non-negative decimal int32 from a text-format field, or -1. */
static int32_t field_int(const PGresult *r, int row, int col)
{
    const char *s = PQgetvalue(r, row, col);
    int len = PQgetlength(r, row, col);
    if (len < 1 || len > 10)
        return -1;
    int64_t v = 0;
    for (int i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v > INT32_MAX ? -1 : (int32_t)v;
}

static int result_error(const PGresult *r, ExecStatusType want, int cols, char *err, size_t errlen)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != want) {
        say(err, errlen, r ? PQresStatus(st) : "no result", r ? PQresultErrorMessage(r) : NULL);
        return TFB_DB_ERROR;
    }
    if (cols >= 0 && PQnfields(r) != cols) {
        say(err, errlen, "unexpected number of columns", NULL);
        return TFB_DB_ERROR;
    }
    return TFB_DB_OK;
}

int tfb_decode_world(const PGresult *r, tfb_world *out, char *err, size_t errlen)
{
    int rc = result_error(r, PGRES_TUPLES_OK, 2, err, errlen);
    if (rc)
        return rc;
    if (PQntuples(r) != 1) {
        say(err, errlen, "world: expected one row", NULL);
        return TFB_DB_ERROR;
    }
    out->id = field_int(r, 0, 0);
    out->random_number = field_int(r, 0, 1);
    if (out->id < 0 || out->random_number < 0) {
        say(err, errlen, "world: not an integer", NULL);
        return TFB_DB_ERROR;
    }
    return TFB_DB_OK;
}

int tfb_decode_fortunes(const PGresult *r, tfb_fortune **f, size_t *n, size_t *cap, char *err,
                        size_t errlen)
{
    int rc = result_error(r, PGRES_TUPLES_OK, 2, err, errlen);
    if (rc)
        return rc;
    size_t rows = (size_t)PQntuples(r);
    if (*n + rows > *cap) {
        size_t want = *cap ? *cap : 16;
        while (want < *n + rows)
            want *= 2;
        tfb_fortune *g = realloc(*f, want * sizeof *g);
        if (!g)
            return TFB_DB_NOMEM;
        *f = g;
        *cap = want;
    }
    for (size_t i = 0; i < rows; i++) {
        tfb_fortune *x = &(*f)[*n + i];
        x->id = field_int(r, (int)i, 0);
        x->message = PQgetvalue(r, (int)i, 1);
        x->len = (size_t)PQgetlength(r, (int)i, 1);
        if (x->id < 0) {
            say(err, errlen, "fortune: id not an integer", NULL);
            return TFB_DB_ERROR;
        }
    }
    *n += rows;
    return TFB_DB_OK;
}

int tfb_check_update(const PGresult *r, char *err, size_t errlen)
{
    return result_error(r, PGRES_COMMAND_OK, -1, err, errlen);
}

int tfb_check_sleep(const PGresult *r, char *err, size_t errlen)
{
    return result_error(r, PGRES_TUPLES_OK, 1, err, errlen);
}

/* --- The blocking driver ---------------------------------------------------- */

struct tfb_db {
    PGconn *conn;      /* NULL while down */
    uint64_t next_try; /* ms (CLOCK_MONOTONIC): no reconnection before */
    char conninfo[];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

tfb_db *tfb_db_new(const char *conninfo)
{
    size_t n = strlen(conninfo) + 1;
    tfb_db *db = calloc(1, sizeof *db + n);
    if (db)
        memcpy(db->conninfo, conninfo, n);
    return db;
}

void tfb_db_free(tfb_db *db)
{
    if (!db)
        return;
    if (db->conn)
        PQfinish(db->conn);
    free(db);
}

bool tfb_db_connected(const tfb_db *db)
{
    return db && db->conn;
}

int tfb_db_prepare(PGconn *conn, char *err, size_t errlen)
{
    for (int i = 0; i < TFB_NSTMT; i++) {
        PGresult *r = PQprepare(conn, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL);
        int rc = result_error(r, PGRES_COMMAND_OK, -1, err, errlen);
        PQclear(r);
        if (rc)
            return PQstatus(conn) == CONNECTION_OK ? rc : TFB_DB_DOWN;
    }
    return TFB_DB_OK;
}

static void disconnect(tfb_db *db)
{
    if (db->conn)
        PQfinish(db->conn);
    db->conn = NULL;
}

/* Connect and prepare, unless the last attempt failed too recently. */
static int connect_db(tfb_db *db, char *err, size_t errlen)
{
    uint64_t now = now_ms();
    if (now < db->next_try) {
        say(err, errlen, "database down (next connection attempt soon)", NULL);
        return TFB_DB_DOWN;
    }
    /* The user's string, plus a bound on connecting (later keywords win). */
    const char *keys[] = {"dbname", "connect_timeout", NULL};
    const char *vals[] = {db->conninfo, "2", NULL};
    db->conn = PQconnectdbParams(keys, vals, 1 /* expand dbname */);
    int rc = TFB_DB_DOWN;
    if (!db->conn)
        say(err, errlen, "connect", "out of memory");
    else if (PQstatus(db->conn) != CONNECTION_OK)
        say(err, errlen, "connect", PQerrorMessage(db->conn));
    else
        rc = tfb_db_prepare(db->conn, err, errlen);
    if (rc != TFB_DB_OK) {
        disconnect(db);
        db->next_try = now + TFB_DB_RETRY_MS;
        return TFB_DB_DOWN;
    }
    return TFB_DB_OK;
}

static PGresult *exec(tfb_db *db, const tfb_query *q)
{
    return PQexecPrepared(db->conn, stmts[q->stmt].name, q->nparams, q->values, q->lengths, NULL,
                          0);
}

bool tfb_db_retryable(const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return state && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0);
}

int tfb_db_run(tfb_db *db, const tfb_query *q, PGresult **res, char *err, size_t errlen)
{
    *res = NULL;
    bool fresh = false;
    if (!db->conn) {
        int rc = connect_db(db, err, errlen);
        if (rc)
            return rc;
        fresh = true;
    }
    for (int attempt = 0;; attempt++) {
        PGresult *r = exec(db, q);
        ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            *res = r;
            return TFB_DB_OK;
        }
        if (PQstatus(db->conn) == CONNECTION_OK) {
            if (attempt == 0 && tfb_db_retryable(r)) {
                PQclear(r);
                continue;
            }
            say(err, errlen, PQresStatus(st), r ? PQresultErrorMessage(r) : NULL);
            *res = r;
            return TFB_DB_ERROR;
        }
        /* The connection is gone: a server restart closed it, or the server
         * is down.  A connection that had been working gets one fresh
         * connection and one more try; a new one that fails means down. */
        say(err, errlen, "connection lost", PQerrorMessage(db->conn));
        PQclear(r);
        disconnect(db);
        if (fresh || attempt > 0)
            return TFB_DB_DOWN;
        if (connect_db(db, err, errlen))
            return TFB_DB_DOWN;
        fresh = true;
    }
}
