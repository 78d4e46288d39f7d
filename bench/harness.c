/* harness.c - calibration, repeated runs, statistics and reporting for
 * spindle-micro (see harness.h for the command line). */
#include "harness.h"

#include <errno.h>
#include <fnmatch.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define MAX_CASES    128
#define MAX_RUNS     101
#define MAX_PATTERNS 32

typedef struct note {
    const char *key;
    double value;
} note;

typedef struct result {
    char name[64]; /* copied: callers may build names on the stack */
    const char *unit;
    const char *skipped; /* reason, or NULL */
    uint64_t n;          /* ops per run */
    uint32_t runs;
    double median, min, max, p10, p90; /* ns per op */
    double cpu_pct;                    /* median over runs of thread CPU time / wall time */
    double cpu_ns;                     /* median over runs of ns/op scaled by that share: the
                     * estimate that ignores time the thread was off the CPU */
    double bytes_per_op;
    note notes[BENCH_MAX_NOTES];
    uint32_t nnotes;
} result;

struct bench {
    uint32_t runs;
    uint32_t warmup;
    double time_ms;
    int cpu; /* -1: not pinned */
    bool json;
    bool list;
    const char *patterns[MAX_PATTERNS];
    uint32_t npatterns;
    cpu_set_t orig_mask;
    result results[MAX_CASES];
    uint32_t nresults;
    bool last_ran;
};

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int bench_pin_thread(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((size_t)cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        return -errno;
    return 0;
}

static bool has_glob(const char *p)
{
    return strpbrk(p, "*?[") != NULL;
}

bool bench_want(const bench *b, const char *name)
{
    if (b->npatterns == 0)
        return true;
    for (uint32_t i = 0; i < b->npatterns; i++) {
        const char *p = b->patterns[i];
        if (has_glob(p) ? fnmatch(p, name, 0) == 0 : strstr(name, p) != NULL)
            return true;
    }
    return false;
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Time one call; *cpu_pct (may be NULL) gets the calling thread's CPU time
 * over the wall time: below ~95% the thread was preempted (another process
 * on the CPU) or blocked (in the kernel, or waiting for a partner thread). */
static uint64_t time_call(bench_fn fn, void *arg, uint64_t n, double *cpu_pct)
{
    uint64_t c0 = thread_cpu_ns();
    uint64_t t0 = bench_now_ns();
    uint64_t self = fn(arg, n);
    uint64_t t1 = bench_now_ns();
    uint64_t c1 = thread_cpu_ns();
    if (cpu_pct)
        *cpu_pct = t1 > t0 ? 100.0 * (double)(c1 - c0) / (double)(t1 - t0) : 100.0;
    if (self)
        return self;
    return t1 > t0 ? t1 - t0 : 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Linear interpolation between closest ranks (sorted input). */
static double quantile(const double *v, uint32_t n, double q)
{
    if (n == 1)
        return v[0];
    double pos = q * (double)(n - 1);
    uint32_t lo = (uint32_t)pos;
    if (lo + 1 >= n)
        return v[n - 1];
    double frac = pos - (double)lo;
    return v[lo] + (v[lo + 1] - v[lo]) * frac;
}

static result *new_result(bench *b, const char *name)
{
    if (b->nresults >= MAX_CASES) {
        fprintf(stderr, "spindle-micro: too many cases (max %d)\n", MAX_CASES);
        return NULL;
    }
    result *r = &b->results[b->nresults++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->unit = "op";
    return r;
}

void bench_skip(bench *b, const char *name, const char *why)
{
    b->last_ran = false;
    if (!bench_want(b, name))
        return;
    if (b->list) {
        printf("%s (skipped: %s)\n", name, why);
        return;
    }
    result *r = new_result(b, name);
    if (r)
        r->skipped = why;
    fprintf(stderr, "  %-34s skipped: %s\n", name, why);
}

bool bench_run(bench *b, const char *name, bench_fn fn, void *arg, const bench_opts *opts)
{
    b->last_ran = false;
    if (!bench_want(b, name))
        return false;
    if (b->list) {
        printf("%s\n", name);
        return false;
    }
    result *r = new_result(b, name);
    if (!r)
        return false;
    if (opts && opts->unit)
        r->unit = opts->unit;
    if (opts)
        r->bytes_per_op = opts->bytes_per_op;
    uint64_t max_n = opts && opts->max_n ? opts->max_n : UINT64_MAX;

    /* Calibrate: grow n until a call takes a tenth of the target, then
     * scale to the target. */
    double target = b->time_ms * 1e6;
    uint64_t n = opts && opts->min_n ? opts->min_n : 1, t = 0;
    if (n > max_n)
        n = max_n;
    for (;;) {
        t = time_call(fn, arg, n, NULL);
        if ((double)t >= target / 10 || n >= max_n)
            break;
        double grow = (target / 10) / (double)t * 1.5;
        if (grow > 100)
            grow = 100;
        if (grow < 2)
            grow = 2;
        uint64_t next = (uint64_t)((double)n * grow);
        n = next > max_n ? max_n : next;
    }
    double scaled = (double)n * target / (double)t;
    uint64_t floor_n = opts && opts->min_n ? opts->min_n : 1;
    n = scaled < (double)floor_n ? floor_n : scaled > (double)max_n ? max_n : (uint64_t)scaled;
    r->n = n;

    for (uint32_t i = 0; i < b->warmup; i++)
        time_call(fn, arg, n, NULL);
    double per_op[MAX_RUNS], cpu[MAX_RUNS], cpu_ns[MAX_RUNS];
    for (uint32_t i = 0; i < b->runs; i++) {
        per_op[i] = (double)time_call(fn, arg, n, &cpu[i]) / (double)n;
        cpu_ns[i] = per_op[i] * (cpu[i] > 100 ? 100 : cpu[i]) / 100;
    }
    qsort(per_op, b->runs, sizeof per_op[0], cmp_double);
    qsort(cpu, b->runs, sizeof cpu[0], cmp_double);
    qsort(cpu_ns, b->runs, sizeof cpu_ns[0], cmp_double);
    r->cpu_pct = quantile(cpu, b->runs, 0.5);
    r->cpu_ns = quantile(cpu_ns, b->runs, 0.5);
    r->runs = b->runs;
    r->median = quantile(per_op, b->runs, 0.5);
    r->p10 = quantile(per_op, b->runs, 0.1);
    r->p90 = quantile(per_op, b->runs, 0.9);
    r->min = per_op[0];
    r->max = per_op[b->runs - 1];
    b->last_ran = true;
    fprintf(stderr, "  %-34s %12.1f ns/%s  (p10 %.1f, p90 %.1f, n=%llu, cpu %.0f%%)\n", name,
            r->median, r->unit, r->p10, r->p90, (unsigned long long)n, r->cpu_pct);
    return true;
}

void bench_note(bench *b, const char *key, double value)
{
    if (!b->last_ran || b->nresults == 0)
        return;
    result *r = &b->results[b->nresults - 1];
    if (r->nnotes >= BENCH_MAX_NOTES)
        return;
    r->notes[r->nnotes++] = (note){key, value};
    fprintf(stderr, "  %-34s   %s = %.6g\n", "", key, value);
}

static int main_cpu(const bench *b)
{
    if (b->cpu >= 0)
        return b->cpu;
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET((size_t)i, &b->orig_mask))
            return i;
    return -1;
}

bool bench_pair_begin(bench *b, int *partner)
{
    int mine = main_cpu(b);
    int other = -1;
    for (int i = 0; i < CPU_SETSIZE && other < 0; i++)
        if (i != mine && CPU_ISSET((size_t)i, &b->orig_mask))
            other = i;
    if (mine < 0 || other < 0)
        return false;
    if (bench_pin_thread(mine) != 0)
        return false;
    *partner = other;
    return true;
}

void bench_pair_end(bench *b)
{
    if (b->cpu >= 0)
        bench_pin_thread(b->cpu);
    else
        sched_setaffinity(0, sizeof b->orig_mask, &b->orig_mask);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: spindle-micro [options] [PATTERN...]\n"
            "  --runs N     measured runs per case (default 11, max %d)\n"
            "  --time MS    target duration of one run (default 50)\n"
            "  --warmup N   unmeasured runs before measuring (default 1)\n"
            "  --cpu N      pin the benchmark thread to CPU N (cross-thread cases\n"
            "               put their second thread on another allowed CPU)\n"
            "  --quick      --runs 3 --time 10 (smoke test)\n"
            "  --json       print one JSON document on stdout (progress on stderr)\n"
            "  --list       list the case names and exit\n"
            "  PATTERN      a glob (fnmatch) or a substring of case names\n",
            MAX_RUNS);
}

static bool parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = (uint32_t)v;
    return true;
}

bench *bench_new(int argc, char **argv, int *exit_code)
{
    bench *b = calloc(1, sizeof *b);
    if (!b) {
        *exit_code = 1;
        return NULL;
    }
    b->runs = 11;
    b->warmup = 1;
    b->time_ms = 50;
    b->cpu = -1;
    sched_getaffinity(0, sizeof b->orig_mask, &b->orig_mask);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint32_t u;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            *exit_code = 0;
            free(b);
            return NULL;
        } else if (!strcmp(a, "--json")) {
            b->json = true;
        } else if (!strcmp(a, "--list")) {
            b->list = true;
        } else if (!strcmp(a, "--quick")) {
            b->runs = 3;
            b->time_ms = 10;
        } else if (!strcmp(a, "--runs") && v && parse_u32(v, 1, MAX_RUNS, &u)) {
            b->runs = u;
            i++;
        } else if (!strcmp(a, "--warmup") && v && parse_u32(v, 0, 100, &u)) {
            b->warmup = u;
            i++;
        } else if (!strcmp(a, "--time") && v && parse_u32(v, 1, 100000, &u)) {
            b->time_ms = u;
            i++;
        } else if (!strcmp(a, "--cpu") && v && parse_u32(v, 0, CPU_SETSIZE - 1, &u)) {
            int rc = bench_pin_thread((int)u);
            if (rc) {
                fprintf(stderr, "spindle-micro: cannot pin to CPU %u: %s\n", u, strerror(-rc));
                *exit_code = 2;
                free(b);
                return NULL;
            }
            b->cpu = (int)u;
            i++;
        } else if (a[0] != '-' && b->npatterns < MAX_PATTERNS) {
            b->patterns[b->npatterns++] = a;
        } else {
            fprintf(stderr, "spindle-micro: bad argument '%s'%s\n", a,
                    v || a[0] != '-' ? "" : " (missing value?)");
            usage(stderr);
            *exit_code = 2;
            free(b);
            return NULL;
        }
    }
    if (!b->list)
        fprintf(stderr, "spindle-micro: %u runs of ~%.0f ms per case, warm-up %u, cpu %d\n",
                b->runs, b->time_ms, b->warmup, b->cpu);
    return b;
}

static void cpu_model(char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ')
                    c++;
                c[strcspn(c, "\n")] = 0;
                snprintf(out, cap, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void print_json(const bench *b)
{
    char model[256];
    cpu_model(model, sizeof model);
    struct utsname u;
    uname(&u);
    printf("{\n  \"tool\": \"spindle-micro\",\n  \"machine\": {\"cpu_model\": ");
    json_str(model);
    printf(", \"online_cpus\": %ld, \"kernel\": ", sysconf(_SC_NPROCESSORS_ONLN));
    json_str(u.release);
    printf("},\n  \"config\": {\"runs\": %u, \"time_ms\": %.0f, \"warmup\": %u, \"cpu\": %d},\n",
           b->runs, b->time_ms, b->warmup, b->cpu);
    printf("  \"results\": [");
    for (uint32_t i = 0; i < b->nresults; i++) {
        const result *r = &b->results[i];
        printf("%s\n    {\"name\": ", i ? "," : "");
        json_str(r->name);
        if (r->skipped) {
            printf(", \"skipped\": ");
            json_str(r->skipped);
            printf("}");
            continue;
        }
        printf(", \"unit\": ");
        json_str(r->unit);
        printf(", \"n_per_run\": %llu, \"runs\": %u,\n     \"ns_per_op\": {\"median\": %.3f, "
               "\"p10\": %.3f, \"p90\": %.3f, \"min\": %.3f, \"max\": %.3f},\n"
               "     \"ops_per_sec\": %.1f, \"cpu_pct\": %.1f, \"cpu_ns_per_op\": %.3f",
               (unsigned long long)r->n, r->runs, r->median, r->p10, r->p90, r->min, r->max,
               1e9 / r->median, r->cpu_pct, r->cpu_ns);
        if (r->bytes_per_op > 0)
            printf(", \"bytes_per_op\": %.0f, \"mb_per_sec\": %.1f", r->bytes_per_op,
                   r->bytes_per_op / r->median * 1e3);
        printf(", \"notes\": {");
        for (uint32_t k = 0; k < r->nnotes; k++) {
            printf("%s", k ? ", " : "");
            json_str(r->notes[k].key);
            printf(": %.6g", r->notes[k].value);
        }
        printf("}}");
    }
    printf("\n  ]\n}\n");
}

static void si(char *out, size_t cap, double v)
{
    if (v >= 1e9)
        snprintf(out, cap, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(out, cap, "%.2fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(out, cap, "%.1fk", v / 1e3);
    else
        snprintf(out, cap, "%.1f", v);
}

static void print_table(const bench *b)
{
    printf("%-34s %11s %11s %11s %7s %5s %10s %9s  %s\n", "case", "ns/op", "p10", "p90", "spread",
           "cpu", "ops/s", "MB/s", "unit / notes");
    for (uint32_t i = 0; i < b->nresults; i++) {
        const result *r = &b->results[i];
        if (r->skipped) {
            printf("%-34s skipped: %s\n", r->name, r->skipped);
            continue;
        }
        char ops[32], mbs[32] = "-";
        si(ops, sizeof ops, 1e9 / r->median);
        if (r->bytes_per_op > 0)
            snprintf(mbs, sizeof mbs, "%.0f", r->bytes_per_op / r->median * 1e3);
        double spread = r->median > 0 ? (r->max - r->min) / r->median * 100 : 0;
        printf("%-34s %11.1f %11.1f %11.1f %6.1f%% %4.0f%% %10s %9s  %s", r->name, r->median,
               r->p10, r->p90, spread, r->cpu_pct, ops, mbs, r->unit);
        for (uint32_t k = 0; k < r->nnotes; k++)
            printf("%s%s=%.4g", k ? ", " : "; ", r->notes[k].key, r->notes[k].value);
        printf("\n");
    }
    printf(
        "(median of %u runs of ~%.0f ms; spread = (max - min) / median; cpu = thread CPU time /\n"
        " wall time, below ~95%% the thread was preempted or blocked; MB = 10^6 bytes)\n",
        b->runs, b->time_ms);
}

int bench_finish(bench *b)
{
    if (!b->list) {
        if (b->json)
            print_json(b);
        else
            print_table(b);
    }
    int selected = b->nresults > 0 || b->list;
    free(b);
    if (!selected) {
        fprintf(stderr, "spindle-micro: no case matches (try --list)\n");
        return 1;
    }
    return 0;
}
