/*
 * io/ring_listen.c - listening sockets (contract in ring_listen.h).
 */
#include "ring_listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)sa;

        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
        snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const void *)sa;

        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
        snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
    }
}

static int fail(ring_error *err, int code, const char *call, const struct sockaddr *sa)
{
    char where[INET6_ADDRSTRLEN + 16];
    char ebuf[128];

    if (!err)
        return code;
    addr_text(sa, where, sizeof where);
    return ring_error_set(err, code, "%s %s: %s", call, where,
                          strerror_r(-code, ebuf, sizeof ebuf));
}

static int set_int(int fd, int level, int opt, int v)
{
    return setsockopt(fd, level, opt, &v, sizeof v) == 0 ? 0 : -errno;
}

static int listen_on(const struct sockaddr *sa, socklen_t salen, int backlog, bool reuseport,
                     ring_error *err)
{
    int fd, ret;

    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        return fail(err, -errno, "socket", sa);
    ret = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (!ret && reuseport)
        ret = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    /* Accepted sockets inherit it: one setsockopt for all connections. */
    if (!ret)
        ret = set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    if (!ret && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)sa;

        /* "::" serves IPv4 too, whatever net.ipv6.bindv6only says. */
        if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
            ret = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
    }
    if (ret) {
        close(fd);
        return fail(err, ret, "setsockopt", sa);
    }
    if (bind(fd, sa, salen) < 0) {
        ret = -errno;
        close(fd);
        return fail(err, ret, "bind", sa);
    }
    if (listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
        ret = -errno;
        close(fd);
        return fail(err, ret, "listen", sa);
    }
    return fd;
}

static int listen_any(uint16_t port, int backlog, bool reuseport, ring_error *err)
{
    struct sockaddr_in6 s6;
    struct sockaddr_in s4;
    int fd;

    memset(&s6, 0, sizeof s6);
    s6.sin6_family = AF_INET6;
    s6.sin6_addr = in6addr_any;
    s6.sin6_port = htons(port);
    fd = listen_on((const struct sockaddr *)&s6, sizeof s6, backlog, reuseport, err);
    if (fd != -EAFNOSUPPORT)
        return fd;
    memset(&s4, 0, sizeof s4);
    s4.sin_family = AF_INET;
    s4.sin_addr.s_addr = htonl(INADDR_ANY);
    s4.sin_port = htons(port);
    return listen_on((const struct sockaddr *)&s4, sizeof s4, backlog, reuseport, err);
}

int ring_listen_tcp(const char *host, uint16_t port, int backlog, bool reuseport, ring_error *err)
{
    struct addrinfo hints, *res, *ai;
    char name[256], service[8];
    size_t n;
    int ret, fd = -EADDRNOTAVAIL;

    if (!host || !*host || strcmp(host, "*") == 0)
        return listen_any(port, backlog, reuseport, err);

    /* "[::1]" -> "::1" */
    n = strlen(host);
    if (n >= sizeof name) {
        return ring_error_set(err, -EINVAL, "listen: host name too long");
    }
    if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
        memcpy(name, host + 1, n - 2);
        name[n - 2] = '\0';
    } else {
        memcpy(name, host, n + 1);
    }
    snprintf(service, sizeof service, "%u", port);

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    ret = getaddrinfo(name, service, &hints, &res);
    if (ret != 0) {
        return ring_error_set(err, -EADDRNOTAVAIL, "listen: cannot resolve \"%s\": %s", name,
                              gai_strerror(ret));
    }
    /* The first address that binds wins; err keeps the last failure. */
    for (ai = res; ai; ai = ai->ai_next) {
        fd = listen_on(ai->ai_addr, ai->ai_addrlen, backlog, reuseport, err);
        if (fd >= 0)
            break;
    }
    freeaddrinfo(res);
    if (fd >= 0 && err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
    return fd;
}

int ring_listen_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    if (ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)&ss)->sin6_port);
    if (ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)&ss)->sin_port);
    return -EAFNOSUPPORT;
}
