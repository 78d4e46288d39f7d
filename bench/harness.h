/* harness.h - a small microbenchmark harness for spindle-micro.
 *
 * A case is a function that performs n operations.  The harness calibrates n
 * so that one run takes about --time milliseconds, runs it --warmup times
 * unmeasured, then --runs times measured, and reports the median ns/op, the
 * spread (min/max and p10/p90 over the runs), ops/s and, when the case says
 * how many bytes one operation processes, MB/s (10^6 bytes per second).
 *
 *   spindle-micro [--runs N] [--time MS] [--warmup N] [--cpu N] [--quick]
 *                 [--json] [--list] [PATTERN...]
 *
 * A PATTERN selects cases by name: a glob (fnmatch) when it holds * ? or [,
 * otherwise a substring.  Text goes to stdout (a table at the end; progress
 * lines on stderr); with --json, stdout carries one JSON document only.
 *
 * Threads: the harness and every case run on the main thread, except what a
 * case starts itself (bench_pair_begin() pins the two threads of a
 * cross-thread case to two different CPUs).
 */
#ifndef SPINDLE_BENCH_HARNESS_H
#define SPINDLE_BENCH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bench bench;

/* Perform n operations.  Return 0 to be timed by the harness (wall clock
 * around the call), or the nanoseconds the case measured itself, for cases
 * that time only part of each operation (never 0 then: return 1 at least). */
typedef uint64_t (*bench_fn)(void *arg, uint64_t n);

typedef struct bench_opts {
    const char *unit;    /* what one operation is ("request"); NULL = "op" */
    double bytes_per_op; /* > 0: report MB/s */
    uint64_t max_n;      /* > 0: never run more than this many ops per call */
    uint64_t min_n;      /* > 0: calibrate from here (cases with a fixed start-up
                          * cost per call, such as starting a partner thread) */
} bench_opts;

/* Is the case selected by the command line?  Cheap: call it before an
 * expensive setup. */
bool bench_want(const bench *b, const char *name);

/* Calibrate, warm up and measure one case (skipped when not selected).
 * opts may be NULL.  Returns false if the case was not run. */
bool bench_run(bench *b, const char *name, bench_fn fn, void *arg, const bench_opts *opts);

/* Attach a named number to the case bench_run() last ran (allocations per
 * request, bytes per idle connection...).  Printed with the case and stored
 * in its JSON.  At most BENCH_MAX_NOTES per case; ignored when the last
 * case was not run. */
#define BENCH_MAX_NOTES 6
void bench_note(bench *b, const char *key, double value);

/* Report a selected case that cannot run here (and why). */
void bench_skip(bench *b, const char *name, const char *why);

/* For cross-thread cases: pin the calling thread to the benchmark CPU and
 * return in *partner another allowed CPU for the second thread.  Returns
 * false (and pins nothing) when fewer than two CPUs are allowed.  Call
 * bench_pair_end() afterwards to restore the calling thread's affinity. */
bool bench_pair_begin(bench *b, int *partner);
void bench_pair_end(bench *b);

/* Pin the calling thread to one CPU; 0 or -errno. */
int bench_pin_thread(int cpu);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Keep the compiler from deleting work whose result is otherwise unused. */
static inline void bench_keep(uint64_t v)
{
    __asm__ volatile("" : : "r"(v) : "memory");
}
static inline void bench_keep_ptr(const void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* Driver (micro_main.c). */
bench *bench_new(int argc, char **argv, int *exit_code);
/* Print the results (table or JSON); returns the process exit code. */
int bench_finish(bench *b);

#endif
