/* Tests for apps/tfb/job.c: the queries each endpoint's job builds (all known
 * before the first result, so a driver may pipeline them), the results it
 * consumes (libpq PGresults made without a server), and the body it renders. */
#define _POSIX_C_SOURCE 200809L

#include "job.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static PGresult *row_result(int32_t id, int32_t rn)
{
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc d[2] = {{"id", 0, 0, 0, 23, 4, -1}, {"randomnumber", 0, 0, 0, 23, 4, -1}};
    cr_assert(PQsetResultAttrs(r, 2, d));
    char a[16], b[16];
    snprintf(a, sizeof a, "%d", (int)id);
    snprintf(b, sizeof b, "%d", (int)rn);
    cr_assert(PQsetvalue(r, 0, 0, a, (int)strlen(a)));
    cr_assert(PQsetvalue(r, 0, 1, b, (int)strlen(b)));
    return r;
}

static int32_t world_param(const tfb_query *q)
{
    cr_assert_eq(q->stmt, TFB_STMT_WORLD);
    return (int32_t)atoi(q->values[0]);
}

Test(tfb_job, db_one_query)
{
    uint64_t rng = 12345;
    tfb_job j;
    cr_assert_eq(tfb_job_init(&j, TFB_JOB_DB, 77, &rng), TFB_DB_OK);
    cr_assert_eq(j.nqueries, 1);
    tfb_query q;
    cr_assert_eq(tfb_job_query(&j, 0, &q), TFB_DB_OK);
    int32_t id = world_param(&q);
    cr_assert(id >= 1 && id <= 10000);
    tfb_query_free(&q);
    cr_assert_eq(tfb_job_consume(&j, 0, row_result(id, 4242)), TFB_DB_OK);
    tfb_buf b;
    tfb_buf_init(&b, 8);
    tfb_job_render(&j, &b);
    char want[64];
    snprintf(want, sizeof want, "{\"id\":%d,\"randomNumber\":4242}", (int)id);
    cr_assert_eq(b.len, strlen(want));
    cr_assert_eq(memcmp(b.p, want, b.len), 0);
    cr_assert_str_eq(tfb_job_content_type(&j), "application/json");
    tfb_buf_free(&b);
    tfb_job_free(&j);
}

Test(tfb_job, queries_clamped_and_checked)
{
    uint64_t rng = 99;
    tfb_job j;
    cr_assert_eq(tfb_job_init(&j, TFB_JOB_QUERIES, 0, &rng), TFB_DB_OK);
    cr_assert_eq(j.nqueries, 1);
    tfb_job_free(&j);
    cr_assert_eq(tfb_job_init(&j, TFB_JOB_QUERIES, 9999, &rng), TFB_DB_OK);
    cr_assert_eq(j.nqueries, 500);
    tfb_job_free(&j);

    cr_assert_eq(tfb_job_init(&j, TFB_JOB_QUERIES, 3, &rng), TFB_DB_OK);
    int32_t ids[3];
    for (uint32_t k = 0; k < 3; k++) { /* every query before any result */
        tfb_query q;
        cr_assert_eq(tfb_job_query(&j, k, &q), TFB_DB_OK);
        ids[k] = world_param(&q);
        tfb_query_free(&q);
    }
    cr_assert_eq(tfb_job_consume(&j, 0, row_result(ids[0], 1)), TFB_DB_OK);
    cr_assert_eq(tfb_job_consume(&j, 1, row_result(ids[1], 2)), TFB_DB_OK);
    /* A row other than the one asked for is an error. */
    cr_assert_eq(tfb_job_consume(&j, 2, row_result(ids[2] % 10000 + 1, 3)), TFB_DB_ERROR);
    cr_assert_not_null(strstr(j.err, "asked for id"), "%s", j.err);
    cr_assert_eq(tfb_job_consume(&j, 2, NULL), TFB_DB_ERROR);
    cr_assert_eq(tfb_job_consume(&j, 2, row_result(ids[2], 3)), TFB_DB_OK);
    cr_assert_eq(j.w[0].random_number, 1);
    cr_assert_eq(j.w[2].random_number, 3);
    tfb_job_free(&j);
}

Test(tfb_job, updates_reads_then_one_update)
{
    uint64_t rng = 7;
    tfb_job j;
    const uint32_t n = 500; /* enough draws that some id repeats, now and then */
    cr_assert_eq(tfb_job_init(&j, TFB_JOB_UPDATES, n, &rng), TFB_DB_OK);
    cr_assert_eq(j.nqueries, n + 1);
    for (uint32_t k = 0; k < n; k++) {
        tfb_query q;
        cr_assert_eq(tfb_job_query(&j, k, &q), TFB_DB_OK);
        cr_assert_eq(world_param(&q), j.w[k].id);
        tfb_query_free(&q);
    }
    tfb_query q;
    cr_assert_eq(tfb_job_query(&j, n, &q), TFB_DB_OK);
    cr_assert_eq(q.stmt, TFB_STMT_UPDATE);
    /* The arrays: ids ascending and unique, each with the number the
     * response shows for it (everywhere it appears). */
    const char *ids = q.values[0] + 1, *nums = q.values[1] + 1;
    int32_t last = 0;
    uint32_t rows = 0;
    while (*ids && *ids != '}') {
        char *e1, *e2;
        long id = strtol(ids, &e1, 10), rn = strtol(nums, &e2, 10);
        cr_assert_gt(id, last);
        cr_assert(rn >= 1 && rn <= 10000);
        for (uint32_t k = 0; k < n; k++)
            if (j.w[k].id == id)
                cr_assert_eq(j.w[k].random_number, rn, "id %ld", id);
        last = (int32_t)id;
        rows++;
        ids = e1 + (*e1 == ',');
        nums = e2 + (*e2 == ',');
    }
    cr_assert_eq(rows, j.nupd);
    cr_assert_leq(rows, n);
    tfb_query_free(&q);

    for (uint32_t k = 0; k < n; k++) /* the old values are read, not shown */
        cr_assert_eq(tfb_job_consume(&j, k, row_result(j.w[k].id, 1)), TFB_DB_OK);
    for (uint32_t k = 0; k < n; k++)
        cr_assert(j.w[k].random_number >= 1 && j.w[k].random_number <= 10000);
    cr_assert_eq(tfb_job_consume(&j, n, PQmakeEmptyPGresult(NULL, PGRES_COMMAND_OK)), TFB_DB_OK);
    cr_assert_eq(tfb_job_consume(&j, n, PQmakeEmptyPGresult(NULL, PGRES_FATAL_ERROR)),
                 TFB_DB_ERROR);
    tfb_job_free(&j);
}

Test(tfb_job, fortunes_with_the_extra_row_sorted)
{
    uint64_t rng = 1;
    tfb_job j;
    cr_assert_eq(tfb_job_init(&j, TFB_JOB_FORTUNES, 0, &rng), TFB_DB_OK);
    cr_assert_eq(j.nqueries, 1);
    tfb_query q;
    cr_assert_eq(tfb_job_query(&j, 0, &q), TFB_DB_OK);
    cr_assert_eq(q.stmt, TFB_STMT_FORTUNES);
    tfb_query_free(&q);
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc d[2] = {{"id", 0, 0, 0, 23, 4, -1}, {"message", 0, 0, 0, 1043, -1, -1}};
    cr_assert(PQsetResultAttrs(r, 2, d));
    cr_assert(PQsetvalue(r, 0, 0, "2", 1));
    cr_assert(PQsetvalue(r, 0, 1, "b & c", 5));
    cr_assert(PQsetvalue(r, 1, 0, "1", 1));
    cr_assert(PQsetvalue(r, 1, 1, "<z>", 3));
    cr_assert_eq(tfb_job_consume(&j, 0, r), TFB_DB_OK); /* the job keeps r */
    tfb_buf b;
    tfb_buf_init(&b, 8);
    tfb_job_render(&j, &b);
    const char want[] = "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
                        "<tr><th>id</th><th>message</th></tr>"
                        "<tr><td>1</td><td>&lt;z&gt;</td></tr>"
                        "<tr><td>0</td><td>Additional fortune added at request time.</td></tr>"
                        "<tr><td>2</td><td>b &amp; c</td></tr>"
                        "</table></body></html>";
    cr_assert_eq(b.len, strlen(want), "%.*s", (int)b.len, b.p);
    cr_assert_eq(memcmp(b.p, want, b.len), 0, "%.*s", (int)b.len, b.p);
    cr_assert_str_eq(tfb_job_content_type(&j), "text/html; charset=utf-8");
    tfb_buf_free(&b);
    tfb_job_free(&j); /* frees r: ASan/valgrind see no leak */
}

Test(tfb_job, sleep_clamped_one_query_rendered)
{
    uint64_t rng = 1;
    tfb_job j;
    cr_assert_eq(tfb_job_init(&j, TFB_JOB_SLEEP, 99999, &rng), TFB_DB_OK);
    cr_assert_eq(j.n, TFB_MAX_SLEEP_MS);
    tfb_job_free(&j);
    cr_assert_eq(tfb_job_init(&j, TFB_JOB_SLEEP, 30, &rng), TFB_DB_OK);
    cr_assert_eq(j.nqueries, 1);
    tfb_query q;
    cr_assert_eq(tfb_job_query(&j, 0, &q), TFB_DB_OK);
    cr_assert_eq(q.stmt, TFB_STMT_SLEEP);
    cr_assert_str_eq(q.values[0], "30");
    tfb_query_free(&q);
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc d[1] = {{"pg_sleep", 0, 0, 0, 2278, 4, -1}};
    cr_assert(PQsetResultAttrs(r, 1, d));
    cr_assert(PQsetvalue(r, 0, 0, "", 0));
    cr_assert_eq(tfb_job_consume(&j, 0, r), TFB_DB_OK);
    tfb_buf b;
    tfb_buf_init(&b, 8);
    tfb_job_render(&j, &b);
    cr_assert_eq(b.len, strlen("{\"slept\":30}"));
    cr_assert_eq(memcmp(b.p, "{\"slept\":30}", b.len), 0);
    tfb_buf_free(&b);
    tfb_job_free(&j);
    cr_assert_eq(tfb_job_init(&j, TFB_JOB_SLEEP, 30, &rng), TFB_DB_OK);
    cr_assert_eq(tfb_job_consume(&j, 0, PQmakeEmptyPGresult(NULL, PGRES_PIPELINE_ABORTED)),
                 TFB_DB_ERROR);
    tfb_job_free(&j);
}
