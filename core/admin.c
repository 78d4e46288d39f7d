/* admin.c - the admin listener: HTTP/1.1 metrics for Prometheus. */
#include "admin.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "ring_listen.h"
#include "server.h"
#include "shard.h"

#define ADMIN_IDLE_MS 60000
#define ADMIN_REQ_MAX 8192

typedef struct aconn {
    int fd;
    uint64_t last_ms;
    size_t len;
    char buf[ADMIN_REQ_MAX];
} aconn;

struct admin {
    server *srv;
    int lfd;
    int wake[2]; /* a pipe: admin_stop() writes to it */
    pthread_t thread;
    aconn *conns[ADMIN_MAX_CONNS];
};

static bool send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            if (poll(&pf, 1, 5000) <= 0)
                return false;
            continue;
        }
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool respond(int fd, const char *status, const char *ctype, const char *body, size_t len,
                    bool head, bool close_after)
{
    char h[256];
    int n = snprintf(h, sizeof h,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Server: spindle\r\n%s\r\n",
                     status, ctype, len, close_after ? "Connection: close\r\n" : "");
    if (!send_all(fd, h, (size_t)n))
        return false;
    return head || !len || send_all(fd, body, len);
}

/* One request head in c->buf[0..end): answer it.  false: close. */
static bool handle(admin *a, aconn *c, size_t end)
{
    char *line_end = memchr(c->buf, '\r', end);
    if (!line_end)
        return false;
    *line_end = '\0';
    char method[16], target[1024], version[16];
    if (sscanf(c->buf, "%15s %1023s %15s", method, target, version) != 3)
        return false;
    c->buf[end - 1] = '\0';
    /* Lower-case a copy of the header lines to find the ones we care about. */
    for (char *p = line_end + 1; p < c->buf + end - 1; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    const char *hdrs = line_end + 1;
    bool close_after = strcmp(version, "HTTP/1.0") == 0 || strstr(hdrs, "\nconnection: close");
    char *cl = strstr(hdrs, "\ncontent-length:");
    if ((cl && strtoul(cl + 16, NULL, 10) > 0) || strstr(hdrs, "\ntransfer-encoding:")) {
        respond(c->fd, "400 Bad Request", "text/plain", "no request bodies here\n", 23, false,
                true);
        return false;
    }
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0)
        return respond(c->fd, "405 Method Not Allowed", "text/plain", "GET or HEAD\n", 12, false,
                       close_after) &&
               !close_after;
    const char *path = a->srv->cfg.metrics_path ? a->srv->cfg.metrics_path : "/metrics";
    char *q = strchr(target, '?');
    if (q)
        *q = '\0';
    if (strcmp(target, path) != 0)
        return respond(c->fd, "404 Not Found", "text/plain", "not found\n", 10, head,
                       close_after) &&
               !close_after;
    size_t len = 0;
    char *body = metrics_render(a->srv, &len);
    if (!body)
        return respond(c->fd, "500 Internal Server Error", "text/plain", "", 0, head, true) &&
               false;
    bool ok = respond(c->fd, "200 OK", METRICS_CONTENT_TYPE, body, len, head, close_after);
    free(body);
    return ok && !close_after;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void drop(admin *a, int i)
{
    close(a->conns[i]->fd);
    free(a->conns[i]);
    a->conns[i] = NULL;
}

/* Readable: take bytes, answer every complete head.  false: close. */
static bool on_readable(admin *a, aconn *c)
{
    ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len - 1, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
    if (r <= 0)
        return false;
    c->len += (size_t)r;
    c->last_ms = now_ms();
    for (;;) {
        c->buf[c->len] = '\0';
        char *e = strstr(c->buf, "\r\n\r\n");
        if (!e)
            return c->len < sizeof c->buf - 1; /* a head too large: close */
        size_t end = (size_t)(e - c->buf) + 4;
        if (!handle(a, c, end))
            return false;
        memmove(c->buf, c->buf + end, c->len - end);
        c->len -= end;
    }
}

static void on_accept(admin *a)
{
    int fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    for (int i = 0; i < ADMIN_MAX_CONNS; i++)
        if (!a->conns[i]) {
            a->conns[i] = calloc(1, sizeof(aconn));
            if (!a->conns[i])
                break;
            a->conns[i]->fd = fd;
            a->conns[i]->last_ms = now_ms();
            return;
        }
    close(fd); /* full */
}

static void *admin_thread(void *arg)
{
    admin *a = arg;
    for (;;) {
        struct pollfd pf[ADMIN_MAX_CONNS + 2];
        int idx[ADMIN_MAX_CONNS + 2];
        nfds_t n = 0;
        pf[n++] = (struct pollfd){.fd = a->wake[0], .events = POLLIN};
        pf[n++] = (struct pollfd){.fd = a->lfd, .events = POLLIN};
        for (int i = 0; i < ADMIN_MAX_CONNS; i++)
            if (a->conns[i]) {
                idx[n] = i;
                pf[n++] = (struct pollfd){.fd = a->conns[i]->fd, .events = POLLIN};
            }
        int rc = poll(pf, n, 1000);
        if (rc < 0 && errno != EINTR)
            break;
        if (pf[0].revents)
            break; /* admin_stop() */
        if (pf[1].revents & POLLIN)
            on_accept(a);
        uint64_t now = now_ms();
        for (nfds_t k = 2; k < n; k++) {
            aconn *c = a->conns[idx[k]];
            if ((pf[k].revents && !on_readable(a, c)) || now - c->last_ms > ADMIN_IDLE_MS)
                drop(a, idx[k]);
        }
    }
    return NULL;
}

int admin_start(server *srv)
{
    const spindle_config *cfg = &srv->cfg;
    if (!cfg->admin_port)
        return 0;
    admin *a = calloc(1, sizeof *a);
    if (!a)
        return SPINDLE_ENOMEM;
    a->srv = srv;
    ring_error err;
    const char *addr = cfg->admin_address ? cfg->admin_address : cfg->address;
    a->lfd = ring_listen_tcp(addr, cfg->admin_port, 64, false, &err);
    if (a->lfd < 0) {
        log_msg(LOG_ERROR, -1, "admin listener: %s", err.msg);
        free(a);
        return SPINDLE_ESYS;
    }
    if (pipe2(a->wake, O_CLOEXEC) != 0) {
        log_msg(LOG_ERROR, -1, "admin listener: pipe: %s", strerror(errno));
        close(a->lfd);
        free(a);
        return SPINDLE_ESYS;
    }
    if (pthread_create(&a->thread, NULL, admin_thread, a) != 0) {
        log_msg(LOG_ERROR, -1, "admin listener: cannot start its thread");
        close(a->wake[0]);
        close(a->wake[1]);
        close(a->lfd);
        free(a);
        return SPINDLE_ESYS;
    }
    log_msg(LOG_INFO, -1, "admin listener on http://%s:%u%s (HTTP/1.1, Prometheus metrics)", addr,
            (unsigned)cfg->admin_port, cfg->metrics_path ? cfg->metrics_path : "/metrics");
    srv->admin = a;
    return 0;
}

void admin_stop(server *srv)
{
    admin *a = srv->admin;
    if (!a)
        return;
    ssize_t w = write(a->wake[1], "x", 1);
    (void)w;
    pthread_join(a->thread, NULL);
    for (int i = 0; i < ADMIN_MAX_CONNS; i++)
        if (a->conns[i])
            drop(a, i);
    close(a->lfd);
    close(a->wake[0]);
    close(a->wake[1]);
    free(a);
    srv->admin = NULL;
}
