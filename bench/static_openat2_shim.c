/* bench/static_openat2_shim.c - an LD_PRELOAD library for running
 * spindle-static under valgrind 3.19, which does not know openat2 (syscall
 * 437) and fails it with ENOSYS: syscall(SYS_openat2, dirfd, path, how,
 * size) becomes openat(dirfd, path, how->flags, how->mode), WITHOUT the
 * RESOLVE_BENEATH check.  For bench/static_instr.sh only (the start-up
 * probe and the offload thread's opens; the shard's misses open on its
 * ring, which valgrind does not see): never for serving files. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <sys/syscall.h>

long syscall(long n, ...)
{
    va_list ap;
    va_start(ap, n);
    long a[6];
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (n == SYS_openat2) {
        const struct open_how *how = (const struct open_how *)a[2];
        return openat((int)a[0], (const char *)a[1], (int)how->flags, (mode_t)how->mode);
    }
    static long (*real)(long, ...);
    if (!real)
        real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    return real(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
