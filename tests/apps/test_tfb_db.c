/* Tests for apps/tfb/db.c without a server: building queries (parameters as
 * the statements expect them) and decoding results (libpq's own PGresult,
 * made with PQmakeEmptyPGresult/PQsetResultAttrs/PQsetvalue), and the
 * driver's answer when the server cannot be reached.  The driver against a
 * real PostgreSQL is tested by tests/integration/test_tfb.py. */
#define _POSIX_C_SOURCE 200809L

#include "db.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

Test(tfb_db, statements_take_their_parameters)
{
    for (int i = 0; i < TFB_NSTMT; i++) {
        const char *sql = tfb_stmt_sql((tfb_stmt)i);
        int n = tfb_stmt_nparams((tfb_stmt)i);
        for (int k = 1; k <= n; k++) {
            char p[4] = {'$', (char)('0' + k), 0, 0};
            cr_assert_not_null(strstr(sql, p), "%s lacks %s", tfb_stmt_name((tfb_stmt)i), p);
        }
        cr_assert_null(strstr(sql, n == 0 ? "$1" : (n == 1 ? "$2" : "$3")));
        cr_assert_null(strstr(sql, "ORDER BY"), "the benchmark forbids sorting in SQL");
    }
}

Test(tfb_db, query_world)
{
    tfb_query q;
    tfb_query_world(&q, 10000);
    cr_assert_eq(q.stmt, TFB_STMT_WORLD);
    cr_assert_eq(q.nparams, 1);
    cr_assert_str_eq(q.values[0], "10000");
    cr_assert_eq(q.lengths[0], 5);
    tfb_query_free(&q);
    tfb_query_fortunes(&q);
    cr_assert_eq(q.stmt, TFB_STMT_FORTUNES);
    cr_assert_eq(q.nparams, 0);
    tfb_query_free(&q);
}

Test(tfb_db, query_update_sorted_and_unique)
{
    tfb_world w[5] = {{9, 90}, {3, 30}, {7, 70}, {3, 30}, {10000, 1}};
    tfb_query q;
    cr_assert_eq(tfb_query_update(&q, w, 5), TFB_DB_OK);
    cr_assert_eq(q.stmt, TFB_STMT_UPDATE);
    cr_assert_eq(q.nparams, 2);
    cr_assert_str_eq(q.values[0], "{3,7,9,10000}");
    cr_assert_str_eq(q.values[1], "{30,70,90,1}");
    cr_assert_eq(q.lengths[0], (int)strlen(q.values[0]));
    cr_assert_eq(q.lengths[1], (int)strlen(q.values[1]));
    tfb_query_free(&q);
    cr_assert_null(q.arrays);

    /* 500 rows of the widest numbers (11 characters) fit the buffer it sized. */
    tfb_world *big = malloc(500 * sizeof *big);
    for (int i = 0; i < 500; i++)
        big[i] = (tfb_world){INT32_MIN + 499 - i, INT32_MIN + 499 - i};
    cr_assert_eq(tfb_query_update(&q, big, 500), TFB_DB_OK);
    cr_assert_eq(q.lengths[0], 500 * 11 + 499 + 2);
    cr_assert_eq(strncmp(q.values[0], "{-2147483648,-2147483647,", 25), 0);
    tfb_query_free(&q);
    free(big);
}

/* A result with the given columns and rows of text values. */
static PGresult *result(ExecStatusType st, int ncols, int nrows, const char *const *cells)
{
    PGresult *r = PQmakeEmptyPGresult(NULL, st);
    cr_assert_not_null(r);
    if (ncols) {
        PGresAttDesc d[4];
        static char *names[] = {"id", "value", "x", "y"};
        for (int c = 0; c < ncols; c++)
            d[c] = (PGresAttDesc){names[c], 0, 0, 0, 25 /* text */, -1, -1};
        cr_assert(PQsetResultAttrs(r, ncols, d));
    }
    for (int i = 0; i < nrows; i++)
        for (int c = 0; c < ncols; c++) {
            const char *v = cells[i * ncols + c];
            cr_assert(PQsetvalue(r, i, c, (char *)v, (int)strlen(v)));
        }
    return r;
}

static int world_of(ExecStatusType st, int ncols, int nrows, const char *const *cells, tfb_world *w)
{
    char err[128] = "";
    PGresult *r = result(st, ncols, nrows, cells);
    int rc = tfb_decode_world(r, w, err, sizeof err);
    if (rc)
        cr_assert_neq(err[0], 0, "a failure says why");
    PQclear(r);
    return rc;
}

Test(tfb_db, decode_world)
{
    tfb_world w = {0, 0};
    const char *ok[] = {"3217", "2149"};
    cr_assert_eq(world_of(PGRES_TUPLES_OK, 2, 1, ok, &w), TFB_DB_OK);
    cr_assert_eq(w.id, 3217);
    cr_assert_eq(w.random_number, 2149);
    cr_assert_eq(world_of(PGRES_TUPLES_OK, 2, 0, ok, &w), TFB_DB_ERROR, "no row");
    const char *two[] = {"1", "2", "3", "4"};
    cr_assert_eq(world_of(PGRES_TUPLES_OK, 2, 2, two, &w), TFB_DB_ERROR, "two rows");
    const char *three[] = {"1", "2", "3"};
    cr_assert_eq(world_of(PGRES_TUPLES_OK, 3, 1, three, &w), TFB_DB_ERROR, "three columns");
    const char *bad[] = {"12a", "5"};
    cr_assert_eq(world_of(PGRES_TUPLES_OK, 2, 1, bad, &w), TFB_DB_ERROR, "not a number");
    const char *empty[] = {"1", ""};
    cr_assert_eq(world_of(PGRES_TUPLES_OK, 2, 1, empty, &w), TFB_DB_ERROR, "empty");
    const char *huge[] = {"1", "99999999999"};
    cr_assert_eq(world_of(PGRES_TUPLES_OK, 2, 1, huge, &w), TFB_DB_ERROR, "too large");
    cr_assert_eq(world_of(PGRES_FATAL_ERROR, 0, 0, NULL, &w), TFB_DB_ERROR);
    char err[64];
    cr_assert_eq(tfb_decode_world(NULL, &w, err, sizeof err), TFB_DB_ERROR);
}

Test(tfb_db, decode_fortunes_appends)
{
    const char *rows[] = {"1",  "fortune: No such file or directory",
                          "12", "フレームワークのベンチマーク",
                          "11", "<script>"};
    PGresult *r = result(PGRES_TUPLES_OK, 2, 3, rows);
    tfb_fortune *f = NULL;
    size_t n = 0, cap = 0;
    char err[128];
    cr_assert_eq(tfb_decode_fortunes(r, &f, &n, &cap, err, sizeof err), TFB_DB_OK);
    cr_assert_eq(tfb_decode_fortunes(r, &f, &n, &cap, err, sizeof err), TFB_DB_OK);
    cr_assert_eq(n, 6);
    cr_assert_geq(cap, 6);
    cr_assert_eq(f[5].id, 11);
    cr_assert_eq(f[3].id, 1);
    cr_assert_eq(f[1].id, 12);
    cr_assert_eq(f[1].len, strlen(rows[3]));
    cr_assert_eq(memcmp(f[1].message, rows[3], f[1].len), 0);
    free(f);
    PQclear(r);

    const char *bad[] = {"x", "m"};
    r = result(PGRES_TUPLES_OK, 2, 1, bad);
    f = NULL, n = 0, cap = 0;
    cr_assert_eq(tfb_decode_fortunes(r, &f, &n, &cap, err, sizeof err), TFB_DB_ERROR);
    free(f);
    PQclear(r);
}

Test(tfb_db, check_update)
{
    char err[128];
    PGresult *r = result(PGRES_COMMAND_OK, 0, 0, NULL);
    cr_assert_eq(tfb_check_update(r, err, sizeof err), TFB_DB_OK);
    PQclear(r);
    r = result(PGRES_FATAL_ERROR, 0, 0, NULL);
    cr_assert_eq(tfb_check_update(r, err, sizeof err), TFB_DB_ERROR);
    cr_assert_not_null(strstr(err, "PGRES_FATAL_ERROR"), "%s", err);
    PQclear(r);
}

Test(tfb_db, unreachable_server_is_down)
{
    /* A socket directory that does not exist: libpq fails at once. */
    tfb_db *db = tfb_db_new("host=/nonexistent/tfb-test port=5432 dbname=x user=y");
    cr_assert_not_null(db);
    tfb_query q;
    tfb_query_world(&q, 1);
    PGresult *r = (PGresult *)&q; /* must be reset to NULL */
    char err[256] = "";
    cr_assert_eq(tfb_db_run(db, &q, &r, err, sizeof err), TFB_DB_DOWN);
    cr_assert_null(r);
    cr_assert_neq(err[0], 0);
    cr_assert_not(tfb_db_connected(db));
    /* Again, at once: still down (whether or not it tried again). */
    cr_assert_eq(tfb_db_run(db, &q, &r, err, sizeof err), TFB_DB_DOWN);
    cr_assert_not(tfb_db_connected(db));
    tfb_db_free(db);
    tfb_db_free(NULL);
}

Test(tfb_db, query_sleep_and_its_check)
{
    tfb_query q;
    tfb_query_sleep(&q, 250);
    cr_assert_eq(q.stmt, TFB_STMT_SLEEP);
    cr_assert_eq(q.nparams, 1);
    cr_assert_str_eq(q.values[0], "250");
    tfb_query_free(&q);
    char err[128];
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc d[1] = {{"pg_sleep", 0, 0, 0, 2278, 4, -1}};
    cr_assert(PQsetResultAttrs(r, 1, d));
    cr_assert(PQsetvalue(r, 0, 0, "", 0));
    cr_assert_eq(tfb_check_sleep(r, err, sizeof err), TFB_DB_OK);
    PQclear(r);
    r = result(PGRES_COMMAND_OK, 0, 0, NULL);
    cr_assert_eq(tfb_check_sleep(r, err, sizeof err), TFB_DB_ERROR);
    PQclear(r);
}

Test(tfb_db, retryable_only_deadlock_and_serialization)
{
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_FATAL_ERROR);
    cr_assert_not(tfb_db_retryable(r)); /* no SQLSTATE */
    cr_assert_not(tfb_db_retryable(NULL));
    PQclear(r);
}
