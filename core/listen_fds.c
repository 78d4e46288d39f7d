/* listen_fds.c - inherited listening sockets (contract in listen_fds.h). */
#include "listen_fds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SD_LISTEN_FDS_START 3

void listen_set_init(listen_set *ls)
{
    memset(ls, 0, sizeof *ls);
}

int listen_set_add(listen_set *ls, int fd, bool tls)
{
    uint32_t *n = tls ? &ls->ntls : &ls->n;
    if (*n >= LISTEN_SET_MAX)
        return -1;
    (tls ? ls->tls_fds : ls->fds)[(*n)++] = fd;
    return 0;
}

/* A decimal number filling all of s, or -1. */
static long parse_num(const char *s)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return errno || *end || v < 0 ? -1 : v;
}

/* The i-th ':'-separated name of names (NULL: none) into out. */
static void nth_name(const char *names, long i, char *out, size_t len)
{
    out[0] = '\0';
    for (const char *p = names; p && i >= 0; i--) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (i == 0) {
            snprintf(out, len, "%.*s", (int)n, p);
            return;
        }
        p = e ? e + 1 : NULL;
    }
}

static bool is_listening_stream(int fd)
{
    int v = 0, type = 0;
    socklen_t len = sizeof v, tlen = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 && v &&
           getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 && type == SOCK_STREAM;
}

int listen_fds_take(listen_set *ls, char *why, size_t whylen)
{
    return listen_fds_take_at(ls, SD_LISTEN_FDS_START, why, whylen);
}

int listen_fds_take_at(listen_set *ls, int first, char *why, size_t whylen)
{
    long pid = parse_num(getenv("LISTEN_PID"));
    long n = parse_num(getenv("LISTEN_FDS"));
    const char *names = getenv("LISTEN_FDNAMES");
    if (pid != (long)getpid() || n <= 0)
        return 0;
    int rc = (int)n;
    for (long i = 0; i < n; i++) {
        int fd = first + (int)i;
        char name[64];
        nth_name(names, i, name, sizeof name);
        if (!is_listening_stream(fd)) {
            snprintf(why, whylen, "LISTEN_FDS: fd %d is not a listening stream socket", fd);
            rc = -1;
            break;
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        bool tls = strcmp(name, "tls") == 0 || strcmp(name, "https") == 0;
        if (listen_set_add(ls, fd, tls) != 0) {
            snprintf(why, whylen, "LISTEN_FDS: more than %u sockets of one kind", LISTEN_SET_MAX);
            rc = -1;
            break;
        }
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return rc;
}

int listen_set_for_shard(const listen_set *ls, bool tls, uint32_t idx)
{
    uint32_t n = tls ? ls->ntls : ls->n;
    if (n == 0)
        return -1;
    int fd = fcntl((tls ? ls->tls_fds : ls->fds)[idx % n], F_DUPFD_CLOEXEC, 0);
    return fd >= 0 ? fd : -errno;
}

void listen_set_close(listen_set *ls)
{
    for (uint32_t i = 0; i < ls->n; i++)
        close(ls->fds[i]);
    for (uint32_t i = 0; i < ls->ntls; i++)
        close(ls->tls_fds[i]);
    listen_set_init(ls);
}
