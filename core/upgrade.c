/* upgrade.c - listening-socket hand-over between an old and a new process
 * (contract and protocol in upgrade.h). */
#include "upgrade.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "server.h"
#include "shard.h"

#define HANDOVER_WAIT_MS 60000 /* the successor's start, "R" at the latest */

struct upgrade {
    int pred;       /* connection to the predecessor until "R"/"K", or -1 */
    int lfd;        /* the hand-over socket at cfg.upgrade_socket, or -1 */
    bool owns_path; /* lfd is bound there: unlink at exit */
    pthread_t thread;
    bool started;
    atomic_bool quit;
};

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa->sun_path)
        return -1;
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

/* Wait until fd is readable, up to ms (or up->quit); true when readable. */
static bool wait_readable(struct upgrade *up, int fd, int ms)
{
    for (int waited = 0; waited < ms && !atomic_load(&up->quit); waited += 100) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, 100);
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
    }
    return false;
}

/* Receive the predecessor's "spindle-fds N T" message and its N + T fds
 * into srv->inherit.  0, or -1 after logging why. */
static int receive_fds(server *srv, int fd)
{
    char data[64] = "";
    union {
        char buf[CMSG_SPACE(253 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = data, .iov_len = sizeof data - 1};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    if (!wait_readable(srv->upgrade, fd, 5000)) {
        log_msg(LOG_ERROR, -1, "upgrade: the running process sent no sockets within 5 s");
        return -1;
    }
    ssize_t got = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    int fds[253];
    size_t nfds = 0;
    for (struct cmsghdr *c = got > 0 ? CMSG_FIRSTHDR(&msg) : NULL; c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(fds + nfds, CMSG_DATA(c), k * sizeof(int));
            nfds += k;
        }
    unsigned n = 0, t = 0;
    if (got <= 0 || sscanf(data, "spindle-fds %u %u", &n, &t) != 2 || n + t != nfds ||
        (msg.msg_flags & MSG_CTRUNC)) {
        log_msg(LOG_ERROR, -1, "upgrade: bad hand-over message from the running process");
        for (size_t i = 0; i < nfds; i++)
            close(fds[i]);
        return -1;
    }
    listen_set_close(&srv->inherit); /* systemd's: the predecessor's are the ones serving */
    for (size_t i = 0; i < nfds; i++)
        listen_set_add(&srv->inherit, fds[i], i >= n);
    log_msg(LOG_INFO, -1, "upgrade: took %u h2c and %u TLS listening socket(s) over", n, t);
    return 0;
}

int upgrade_begin(server *srv)
{
    const spindle_config *cfg = &srv->cfg;
    listen_set_init(&srv->inherit);
    if (cfg->socket_activation) {
        char why[128];
        int n = listen_fds_take(&srv->inherit, why, sizeof why);
        if (n < 0) {
            log_msg(LOG_ERROR, -1, "%s", why);
            listen_set_close(&srv->inherit);
            return SPINDLE_EINVAL;
        }
        if (n > 0)
            log_msg(LOG_INFO, -1, "socket activation: %u h2c and %u TLS listening socket(s)",
                    srv->inherit.n, srv->inherit.ntls);
    }
    if (!cfg->upgrade_socket)
        return 0;
    struct upgrade *up = calloc(1, sizeof *up);
    struct sockaddr_un sa;
    if (!up || unix_addr(cfg->upgrade_socket, &sa) != 0) {
        free(up);
        return SPINDLE_ENOMEM;
    }
    up->pred = up->lfd = -1;
    atomic_init(&up->quit, false);
    srv->upgrade = up;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return SPINDLE_ESYS;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd); /* nobody there (or a stale path): a first start */
        return 0;
    }
    if (receive_fds(srv, fd) != 0) {
        close(fd);
        return SPINDLE_ESYS;
    }
    up->pred = fd;
    return 0;
}

/* 1 when every shard serves, -1 when one failed or a stop began, else 0. */
static int shards_state(server *srv)
{
    if (atomic_load(&srv->stop))
        return -1;
    for (uint32_t i = 0; i < srv->nshards; i++) {
        int r = atomic_load(&srv->shards[i].ready);
        if (r != 1)
            return r < 0 ? -1 : 0;
    }
    return 1;
}

/* Tell the predecessor this process serves; wait for its "K". */
static void release_predecessor(struct upgrade *up)
{
    if (write(up->pred, "R", 1) == 1 && wait_readable(up, up->pred, 5000)) {
        char k = 0;
        if (read(up->pred, &k, 1) != 1 || k != 'K')
            log_msg(LOG_WARN, -1, "upgrade: the old process did not confirm");
    }
    close(up->pred);
    up->pred = -1;
}

static int bind_path(server *srv)
{
    struct upgrade *up = srv->upgrade;
    struct sockaddr_un sa;
    unix_addr(srv->cfg.upgrade_socket, &sa);
    up->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(sa.sun_path); /* a stale one from a process that died */
    if (up->lfd < 0 || bind(up->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(up->lfd, 4) != 0) {
        log_msg(LOG_ERROR, -1, "upgrade: cannot listen on %s: %s", sa.sun_path, strerror(errno));
        return -1;
    }
    up->owns_path = true;
    return 0;
}

/* Hand this process's listeners to the successor on cfd.  true when it
 * took them and serves (this process must stop). */
static bool hand_over(server *srv, int cfd)
{
    struct upgrade *up = srv->upgrade;
    if (atomic_load(&srv->stop) || atomic_load(&srv->unready))
        return false; /* stopping anyway: the successor binds its own */
    int fds[253];
    unsigned n = 0, t = 0;
    for (uint32_t i = 0; i < srv->nshards && n < 126; i++)
        fds[n++] = srv->shards[i].lfd;
    for (uint32_t i = 0; i < srv->nshards && n + t < 253; i++)
        if (srv->shards[i].tls_lfd >= 0)
            fds[n + t++] = srv->shards[i].tls_lfd;
    char data[64];
    int len = snprintf(data, sizeof data, "spindle-fds %u %u", n, t);
    union {
        char buf[CMSG_SPACE(253 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {.iov_base = data, .iov_len = (size_t)len + 1};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = ctl.buf,
                         .msg_controllen = CMSG_SPACE((n + t) * sizeof(int))};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((n + t) * sizeof(int));
    memcpy(CMSG_DATA(c), fds, (n + t) * sizeof(int));
    if (sendmsg(cfd, &msg, MSG_NOSIGNAL) < 0)
        return false;
    log_msg(LOG_INFO, -1, "upgrade: sent %u h2c and %u TLS listening socket(s); waiting", n, t);
    char r = 0;
    if (!wait_readable(up, cfd, HANDOVER_WAIT_MS) || read(cfd, &r, 1) != 1 || r != 'R') {
        log_msg(LOG_WARN, -1, "upgrade: the new process did not start serving; still serving");
        return false;
    }
    /* The successor serves the same sockets: stop accepting and drain. */
    close(up->lfd);
    up->lfd = -1;
    up->owns_path = false;
    if (write(cfd, "K", 1) != 1)
        log_msg(LOG_WARN, -1, "upgrade: cannot confirm to the new process");
    log_msg(LOG_INFO, -1, "upgrade: the new process serves; draining");
    return true;
}

static void *upgrade_main(void *arg)
{
    server *srv = arg;
    struct upgrade *up = srv->upgrade;
    int st;
    while ((st = shards_state(srv)) == 0 && !atomic_load(&up->quit))
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    if (st != 1)
        return NULL;
    if (up->pred >= 0)
        release_predecessor(up);
    if (bind_path(srv) != 0)
        return NULL;
    while (!atomic_load(&up->quit)) {
        if (!wait_readable(up, up->lfd, 1000))
            continue;
        int cfd = accept4(up->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0)
            continue;
        bool done = hand_over(srv, cfd);
        close(cfd);
        if (done) {
            spindle_stop();
            break;
        }
    }
    return NULL;
}

int upgrade_serve(server *srv)
{
    struct upgrade *up = srv->upgrade;
    if (!up)
        return 0;
    if (pthread_create(&up->thread, NULL, upgrade_main, srv) != 0) {
        log_msg(LOG_ERROR, -1, "upgrade: cannot start its thread");
        return SPINDLE_ESYS;
    }
    up->started = true;
    return 0;
}

void upgrade_end(server *srv)
{
    struct upgrade *up = srv->upgrade;
    if (up) {
        atomic_store(&up->quit, true);
        if (up->started)
            pthread_join(up->thread, NULL);
        if (up->owns_path)
            unlink(srv->cfg.upgrade_socket);
        if (up->lfd >= 0)
            close(up->lfd);
        if (up->pred >= 0)
            close(up->pred);
        free(up);
        srv->upgrade = NULL;
    }
    listen_set_close(&srv->inherit);
}
