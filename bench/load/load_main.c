/* load_main.c - spindle-load: flags, threads, the progress line and the
 * summary (load.h).
 *
 *   spindle-load [-n N | -D SECONDS] [-c CONNS] [-m STREAMS] [-t THREADS]
 *                [-H 'name: value']... [-d BODY_FILE] [--warm-up SECONDS]
 *                [--h1] [--cacert FILE | -k] [--cpus LIST] [--json]
 *                http[s]://HOST:PORT/PATH
 *
 * http://: h2c with prior knowledge (RFC 9113 §3.3), or HTTP/1.1 with --h1;
 * https://: TLS with ALPN h2 (http/1.1 with --h1), the certificate verified
 * unless -k.  Exit status 0 when every request succeeded with a 2xx, 1 when
 * some did not, 2 on usage or start-up errors (a failed TLS handshake).
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "load.h"

static void usage(FILE *f)
{
    fputs("usage: spindle-load [options] http[s]://HOST:PORT/PATH\n"
          "  -n N            requests in all (default 1000 unless -D)\n"
          "  -D SECONDS      run for a duration instead of a count\n"
          "  -c N            connections in all (default 1)\n"
          "  -m N            concurrent streams per connection (default 1)\n"
          "  -t N            threads, one io_uring ring each (default 1)\n"
          "  -H 'name: val'  extra request header (':authority: x' and ':method: X' override)\n"
          "  -d FILE         request body (method POST unless :method is given)\n"
          "  --warm-up S     seconds of load before counting starts\n"
          "  --h1            HTTP/1.1: keep-alive, -m requests pipelined per connection\n"
          "  --cacert FILE   https: verify the server against this CA (default: the\n"
          "                  system's bundle)\n"
          "  -k, --insecure  https: no certificate verification (self-signed tests)\n"
          "  --cpus LIST     pin thread i to the i-th CPU of LIST (e.g. 1,3); default:\n"
          "                  the i-th CPU of the process's affinity mask\n"
          "  --json          print the summary as one JSON document\n",
          f);
}

static int fail(const char *why, const char *what)
{
    fprintf(stderr, "spindle-load: %s%s%s\n", why, what ? ": " : "", what ? what : "");
    return 2;
}

static int parse_url(load_cfg *cfg, const char *url)
{
    cfg->tls = strncmp(url, "https://", 8) == 0;
    if (!cfg->tls && strncmp(url, "http://", 7) != 0)
        return fail("the URI must start with http:// or https://", url);
    const char *h = url + (cfg->tls ? 8 : 7), *slash = strchr(h, '/');
    size_t alen = slash ? (size_t)(slash - h) : strlen(h);
    if (alen == 0 || alen >= sizeof cfg->authority)
        return fail("bad authority", url);
    memcpy(cfg->authority, h, alen);
    cfg->authority[alen] = 0;
    cfg->path = strdup(slash ? slash : "/");
    char host[300], port[16];
    snprintf(port, sizeof port, "%s", cfg->tls ? "443" : "80");
    snprintf(host, sizeof host, "%s", cfg->authority);
    char *colon = strrchr(host, ':');
    if (host[0] == '[') {
        char *end = strchr(host, ']');
        if (!end)
            return fail("bad IPv6 authority", url);
        if (end[1] == ':')
            snprintf(port, sizeof port, "%s", end + 2);
        *end = 0;
        memmove(host, host + 1, strlen(host));
    } else if (colon) {
        snprintf(port, sizeof port, "%s", colon + 1);
        *colon = 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int r = getaddrinfo(host, port, &hints, &ai);
    if (r != 0)
        return fail(gai_strerror(r), host);
    memcpy(&cfg->addr, ai->ai_addr, ai->ai_addrlen);
    cfg->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    snprintf(cfg->host, sizeof cfg->host, "%s", host);
    snprintf(cfg->scheme, sizeof cfg->scheme, "%s", cfg->tls ? "https" : "http");
    return 0;
}

static int add_header(load_cfg *cfg, const char *arg)
{
    const char *colon = strchr(arg[0] == ':' ? arg + 1 : arg, ':');
    if (!colon || colon == arg)
        return fail("-H wants 'name: value'", arg);
    size_t nlen = (size_t)(colon - arg);
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    char *name = strndup(arg, nlen);
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (strcmp(name, ":authority") == 0 || strcmp(name, "host") == 0) {
        snprintf(cfg->authority, sizeof cfg->authority, "%s", v);
        free(name);
        return 0;
    }
    if (strcmp(name, ":method") == 0) {
        cfg->method = strdup(v);
        free(name);
        return 0;
    }
    if (name[0] == ':' || cfg->nhdrs == LOAD_MAX_HEADERS)
        return fail("unsupported or too many headers", arg);
    char *val = strdup(v);
    cfg->hdrs[cfg->nhdrs++] = (hpack_field){
        (const uint8_t *)name, (const uint8_t *)val, (uint32_t)nlen, (uint32_t)strlen(val), 0, 0};
    return 0;
}

static int read_body(load_cfg *cfg, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(strerror(errno), path);
    size_t cap = 1u << 16, n = 0;
    uint8_t *b = malloc(cap);
    size_t got;
    while ((got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            b = realloc(b, cap *= 2);
    }
    fclose(f);
    cfg->body = b;
    cfg->body_len = n;
    return 0;
}

static uint32_t parse_cpus(load_cfg *cfg, const char *list)
{
    uint32_t n = 0;
    for (const char *p = list; *p && n < 256;) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p)
            return 0;
        if (*end == '-')
            b = strtol(end + 1, &end, 10);
        for (long k = a; k <= b && n < 256; k++)
            cfg->cpus[n++] = (int)k;
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

static int check_args(load_cfg *cfg, const char *url, bool have_n);

static int parse_args(load_cfg *cfg, int argc, char **argv)
{
    const char *url = NULL;
    cfg->conns = cfg->streams = cfg->threads = 1;
    bool have_n = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEXT()                                                                                     \
    do {                                                                                           \
        if (!v)                                                                                    \
            return fail("missing value for", a);                                                   \
        i++;                                                                                       \
    } while (0)
        int r = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "-n")) {
            NEXT();
            cfg->nreq = strtoull(v, NULL, 10);
            have_n = true;
        } else if (!strcmp(a, "-D")) {
            NEXT();
            cfg->duration_s = strtod(v, NULL);
        } else if (!strcmp(a, "-c")) {
            NEXT();
            cfg->conns = (uint32_t)strtoul(v, NULL, 10);
        } else if (!strcmp(a, "-m")) {
            NEXT();
            cfg->streams = (uint32_t)strtoul(v, NULL, 10);
        } else if (!strcmp(a, "-t")) {
            NEXT();
            cfg->threads = (uint32_t)strtoul(v, NULL, 10);
        } else if (!strcmp(a, "-H")) {
            NEXT();
            r = add_header(cfg, v);
        } else if (!strcmp(a, "-d")) {
            NEXT();
            r = read_body(cfg, v);
        } else if (!strcmp(a, "--warm-up") || !strcmp(a, "--warm-up-time")) {
            NEXT();
            cfg->warmup_s = strtod(v, NULL);
        } else if (!strcmp(a, "--cpus")) {
            NEXT();
            if (!(cfg->ncpus = parse_cpus(cfg, v)))
                return fail("bad --cpus list", v);
        } else if (!strcmp(a, "--json")) {
            cfg->json = true;
        } else if (!strcmp(a, "--h1")) {
            cfg->h1 = true;
        } else if (!strcmp(a, "-k") || !strcmp(a, "--insecure")) {
            cfg->insecure = true;
        } else if (!strcmp(a, "--cacert")) {
            NEXT();
            cfg->ca_file = v;
        } else if (a[0] == '-') {
            usage(stderr);
            return fail("unknown option", a);
        } else {
            url = a;
        }
        if (r)
            return r;
#undef NEXT
    }
    return check_args(cfg, url, have_n);
}

/* After the flags: the URI, and the flags checked against each other. */
static int check_args(load_cfg *cfg, const char *url, bool have_n)
{
    if (!url)
        return fail("no URI", NULL);
    if (parse_url(cfg, url))
        return 2;
    if (!have_n && cfg->duration_s <= 0)
        cfg->nreq = 1000;
    if (have_n && cfg->duration_s > 0)
        return fail("-n and -D exclude each other", NULL);
    if (have_n && cfg->nreq == 0)
        return fail("-n must be positive", NULL);
    if (!cfg->conns || !cfg->streams || !cfg->threads || cfg->threads > cfg->conns ||
        cfg->streams > 65536)
        return fail("need 1 <= -t <= -c, and 1 <= -m <= 65536", NULL);
    if (!cfg->method)
        cfg->method = strdup(cfg->body ? "POST" : "GET");
    if (!cfg->ncpus) { /* the process's CPUs, in order, like the server's shards */
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof set, &set) == 0)
            for (size_t c = 0; c < CPU_SETSIZE && cfg->ncpus < 256; c++)
                if (CPU_ISSET(c, &set))
                    cfg->cpus[cfg->ncpus++] = (int)c;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    load_worker *w = arg;
    if (load_worker_run(w) != 0 && !w->err[0])
        snprintf(w->err, sizeof w->err, "worker failed");
    return NULL;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

typedef struct summary {
    load_stats st;
    double secs, cpu;
} summary;

static void print_text(const load_cfg *cfg, const summary *s)
{
    const load_stats *t = &s->st;
    uint64_t failed = t->done - t->ok;
    printf("\nfinished in %.2fs, %.2f req/s, %.2fMB/s\n", s->secs, (double)t->done / s->secs,
           (double)t->bytes_in / s->secs / 1e6);
    printf("requests: %llu started, %llu done, %llu succeeded, %llu failed\n",
           (unsigned long long)t->started, (unsigned long long)t->done, (unsigned long long)t->ok,
           (unsigned long long)failed);
    printf("status codes: %llu 2xx, %llu 3xx, %llu 4xx, %llu 5xx\n",
           (unsigned long long)t->status[2], (unsigned long long)t->status[3],
           (unsigned long long)t->status[4], (unsigned long long)t->status[5]);
    printf("errors: %llu non-2xx, %llu stream resets, %llu malformed/short bodies, "
           "%llu connection errors (%llu streams lost), %llu refused and retried\n",
           (unsigned long long)(t->status[0] + t->status[1] + t->status[3] + t->status[4] +
                                t->status[5]),
           (unsigned long long)t->resets, (unsigned long long)t->malformed,
           (unsigned long long)t->conn_errors, (unsigned long long)t->lost,
           (unsigned long long)t->refused);
    printf("traffic: %llu bytes in, %llu bytes out, %llu body bytes; %llu connects\n",
           (unsigned long long)t->bytes_in, (unsigned long long)t->bytes_out,
           (unsigned long long)t->body_bytes, (unsigned long long)t->connects);
    const load_hist *h = &t->lat;
    printf("latency (us): min %.1f, p50 %.1f, p90 %.1f, p99 %.1f, p99.9 %.1f, max %.1f, "
           "mean %.1f\n",
           h->count ? (double)h->min / 1e3 : 0.0, (double)load_hist_percentile(h, 50) / 1e3,
           (double)load_hist_percentile(h, 90) / 1e3, (double)load_hist_percentile(h, 99) / 1e3,
           (double)load_hist_percentile(h, 99.9) / 1e3, (double)h->max / 1e3,
           h->count ? (double)h->sum / (double)h->count / 1e3 : 0.0);
    printf("client cpu: %.2f s (%.3f us per request), %u threads, %u conns, %u streams each\n",
           s->cpu, t->done ? s->cpu * 1e6 / (double)t->done : 0.0, cfg->threads, cfg->conns,
           cfg->streams);
}

static void print_json(const load_cfg *cfg, const summary *s)
{
    const load_stats *t = &s->st;
    const load_hist *h = &t->lat;
    printf("{\"seconds\":%.6f,\"req_per_s\":%.2f,\"threads\":%u,\"conns\":%u,\"streams\":%u,"
           "\"requests\":{\"started\":%llu,\"done\":%llu,\"succeeded\":%llu,\"failed\":%llu},"
           "\"status\":{\"1xx\":%llu,\"2xx\":%llu,\"3xx\":%llu,\"4xx\":%llu,\"5xx\":%llu,"
           "\"other\":%llu},"
           "\"errors\":{\"stream_resets\":%llu,\"malformed\":%llu,\"conn_errors\":%llu,"
           "\"lost\":%llu,\"refused_retried\":%llu},"
           "\"bytes\":{\"in\":%llu,\"out\":%llu,\"body\":%llu},\"connects\":%llu,"
           "\"latency_us\":{\"min\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p99_9\":%.3f,"
           "\"max\":%.3f,\"mean\":%.3f},"
           "\"cpu_s\":%.6f,\"cpu_us_per_req\":%.4f}\n",
           s->secs, (double)t->done / s->secs, cfg->threads, cfg->conns, cfg->streams,
           (unsigned long long)t->started, (unsigned long long)t->done, (unsigned long long)t->ok,
           (unsigned long long)(t->done - t->ok), (unsigned long long)t->status[1],
           (unsigned long long)t->status[2], (unsigned long long)t->status[3],
           (unsigned long long)t->status[4], (unsigned long long)t->status[5],
           (unsigned long long)t->status[0], (unsigned long long)t->resets,
           (unsigned long long)t->malformed, (unsigned long long)t->conn_errors,
           (unsigned long long)t->lost, (unsigned long long)t->refused,
           (unsigned long long)t->bytes_in, (unsigned long long)t->bytes_out,
           (unsigned long long)t->body_bytes, (unsigned long long)t->connects,
           h->count ? (double)h->min / 1e3 : 0.0, (double)load_hist_percentile(h, 50) / 1e3,
           (double)load_hist_percentile(h, 90) / 1e3, (double)load_hist_percentile(h, 99) / 1e3,
           (double)load_hist_percentile(h, 99.9) / 1e3, (double)h->max / 1e3,
           h->count ? (double)h->sum / (double)h->count / 1e3 : 0.0, s->cpu,
           t->done ? s->cpu * 1e6 / (double)t->done : 0.0);
}

static void merge(summary *s, const load_worker *w, uint32_t n)
{
    memset(&s->st, 0, sizeof s->st);
    load_hist_reset(&s->st.lat);
    uint64_t t_start = UINT64_MAX, t_end = 0;
    for (uint32_t i = 0; i < n; i++) {
        const load_stats *a = &w[i].st;
        load_stats *d = &s->st;
        d->started += a->started;
        d->done += a->done;
        d->ok += a->ok;
        for (int k = 0; k < 6; k++)
            d->status[k] += a->status[k];
        d->resets += a->resets;
        d->malformed += a->malformed;
        d->lost += a->lost;
        d->refused += a->refused;
        d->conn_errors += a->conn_errors;
        d->connects += a->connects;
        d->bytes_in += a->bytes_in;
        d->bytes_out += a->bytes_out;
        d->body_bytes += a->body_bytes;
        load_hist_merge(&d->lat, &a->lat);
        if (w[i].t_measure_ns < t_start)
            t_start = w[i].t_measure_ns;
        if (w[i].t_end_ns > t_end)
            t_end = w[i].t_end_ns;
    }
    s->secs = t_end > t_start ? (double)(t_end - t_start) / 1e9 : 1e-9;
}

/* One line a second while the workers run; returns the CPU seconds used
 * while counting (from when every worker has warmed up). */
static double progress(const load_cfg *cfg, load_worker *w, bool *running)
{
    double cpu0 = cfg->warmup_s > 0 ? -1 : cpu_seconds();
    uint64_t last = 0, t_last = load_now_ns();
    uint32_t secs = 0;
    while (__atomic_load_n(running, __ATOMIC_ACQUIRE)) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
        bool all = true;
        for (uint32_t i = 0; i < cfg->threads; i++)
            all &= atomic_load_explicit(&w[i].measuring, memory_order_relaxed);
        if (all && cpu0 < 0)
            cpu0 = cpu_seconds();
        uint64_t now = load_now_ns();
        if (now - t_last < 1000000000u)
            continue;
        uint64_t done = 0, ok = 0, err = 0;
        for (uint32_t i = 0; i < cfg->threads; i++) {
            done += atomic_load_explicit(&w[i].pub_done, memory_order_relaxed);
            ok += atomic_load_explicit(&w[i].pub_ok, memory_order_relaxed);
            err += atomic_load_explicit(&w[i].pub_errors, memory_order_relaxed);
        }
        secs++;
        fprintf(stderr, "[%4us] %s%llu done, %llu ok, %llu failed, %.0f req/s\n", secs,
                all ? "" : "(warm-up) ", (unsigned long long)done, (unsigned long long)ok,
                (unsigned long long)err,
                (double)(done >= last ? done - last : done) * 1e9 / (double)(now - t_last));
        last = done;
        t_last = now;
    }
    return cpu_seconds() - (cpu0 < 0 ? 0 : cpu0);
}

typedef struct runner {
    load_worker *w;
    uint32_t n;
    bool *running;
} runner;

static void *join_all(void *arg)
{
    runner *r = arg;
    pthread_t *t = calloc(r->n, sizeof *t);
    for (uint32_t i = 0; i < r->n; i++)
        pthread_create(&t[i], NULL, worker_main, &r->w[i]);
    for (uint32_t i = 0; i < r->n; i++)
        pthread_join(t[i], NULL);
    free(t);
    __atomic_store_n(r->running, false, __ATOMIC_RELEASE);
    return NULL;
}

int main(int argc, char **argv)
{
    static load_cfg cfg;
    int r = parse_args(&cfg, argc, argv);
    if (r)
        return r;
    signal(SIGPIPE, SIG_IGN); /* a write to a connection the server closed: EPIPE */
    load_worker *w = calloc(cfg.threads, sizeof *w);
    for (uint32_t i = 0; i < cfg.threads; i++) {
        w[i].cfg = &cfg;
        w[i].id = i;
        w[i].nconns = cfg.conns / cfg.threads + (i < cfg.conns % cfg.threads);
        w[i].share = cfg.nreq / cfg.threads + (i < cfg.nreq % cfg.threads);
        w[i].cpu = cfg.ncpus ? cfg.cpus[i % cfg.ncpus] : -1;
    }
    cfg.t0_ns = load_now_ns();
    bool running = true;
    runner rn = {w, cfg.threads, &running};
    pthread_t joiner;
    pthread_create(&joiner, NULL, join_all, &rn);
    double cpu = progress(&cfg, w, &running);
    pthread_join(joiner, NULL);
    int rc = 0;
    for (uint32_t i = 0; i < cfg.threads; i++)
        if (w[i].err[0]) {
            fprintf(stderr, "spindle-load: thread %u: %s\n", i, w[i].err);
            rc = 2;
        }
    summary s;
    merge(&s, w, cfg.threads);
    s.cpu = cpu;
    if (cfg.json)
        print_json(&cfg, &s);
    else
        print_text(&cfg, &s);
    if (!rc && s.st.ok != s.st.done)
        rc = 1;
    free(w);
    return rc;
}
