#!/usr/bin/python3
"""bench/static_miss.py - what a cache miss of spindle-static costs: system
calls made by the shard's thread per request (strace), io_uring operations
submitted per request and how many of them the kernel handed to its io-wq
workers (perf, io_uring tracepoints), then, untraced, server CPU (all
threads, io-wq workers included) and mean latency per request.  Issue 15.

    /usr/bin/python3 bench/static_miss.py BIN [BIN ...] [--files N] [--requests N] [--quick]

Three rows per binary, one shard, files of 13 bytes older than a second (a
file changed within the last second is read on the offload thread):
  nocache  --cache-entries 0: every request is a miss (N requests over the
           files, round-robin);
  distinct the default cache, every file requested once: every request is
           a first miss;
  coldpage as distinct, with the files' pages dropped from the page cache
           first (posix_fadvise DONTNEED, these files only): every read
           waits for the disk (the dentries stay cached).
Each row also says how many requests went to the offload thread.
The system call and ring counts are exact; the CPU and latency figures move
with the machine's load (other processes), so compare them only within one
run.  Needs strace, h2load; perf for the ring counts (skipped without it).
"""
import argparse
import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

OPS = {18: "OPENAT", 19: "CLOSE", 21: "STATX", 22: "READ", 28: "OPENAT2"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tree(n):
    top = tempfile.mkdtemp(prefix="static-miss-", dir="/tmp")
    for i in range(n):
        with open(os.path.join(top, "f%d.txt" % i), "wb") as f:
            f.write(b"hello, world\n")
            f.flush()
            os.fdatasync(f.fileno())  # clean pages: coldpage can drop them
    time.sleep(1.2)  # older than a second: read on the shard's side
    return top


class Server:
    def __init__(self, binary, root, args):
        self.port = free_port()
        self.p = subprocess.Popen([binary, "--root", root, "--shards", "1", "--port",
                                   str(self.port), "--address", "127.0.0.1", "--log-level", "2",
                                   "--set", "max-requests=0"]
                                  + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.err = []
        threading.Thread(target=lambda: self.err.extend(self.p.stderr), daemon=True).start()
        line = self.p.stdout.readline()
        if b"listening" not in line:
            raise SystemExit("server did not start: %r" % line)

    def cpu(self):
        with open("/proc/%d/stat" % self.p.pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")

    def offloaded(self):
        """(requests, offloaded) from the statistics line SIGUSR1 prints."""
        n0 = len(self.err)
        self.p.send_signal(signal.SIGUSR1)
        for _ in range(200):
            lines = [ln for ln in self.err[n0:] if b"stats:" in ln]
            if lines:
                m = re.search(rb"(\d+) requests(?: \((\d+) offloaded\))?;", lines[-1])
                return int(m.group(1)), int(m.group(2) or 0)
            time.sleep(0.02)
        return 0, 0

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(30)


def h2load(port, paths, n, c, m):
    uris = os.path.join(tempfile.gettempdir(), "static-miss-uris-%d" % os.getpid())
    with open(uris, "w") as f:
        for p in paths:
            f.write("http://127.0.0.1:%d%s\n" % (port, p))
    out = subprocess.run(["h2load", "-n", str(n), "-c", str(c), "-m", str(m), "-t", "1", "-i",
                          uris], capture_output=True, text=True, timeout=600).stdout
    os.unlink(uris)
    ok = re.search(r"(\d+) succeeded", out)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out)
    if not ok or int(ok.group(1)) != n:
        raise SystemExit("h2load: not every request succeeded\n" + out[-800:])
    return mean.group(1) if mean else "?"


def syscalls(srv, fn):
    """Run fn under strace -f; the system calls of each thread by name."""
    out = tempfile.mktemp(prefix="static-miss-strace-")
    tr = subprocess.Popen(["strace", "-f", "-qq", "-o", out, "-p", str(srv.p.pid)],
                          stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached to every thread
    fn()
    time.sleep(0.3)
    tr.send_signal(signal.SIGINT)
    tr.wait(30)
    per = collections.defaultdict(collections.Counter)
    with open(out) as f:
        for ln in f:
            m = re.match(r"(\d+)\s+(?:<\.\.\. )?(\w+)[( ]", ln)
            if m and "resumed>" not in ln:
                per[int(m.group(1))][m.group(2)] += 1
    os.unlink(out)
    return per


def ring_ops(srv, fn):
    """Run fn under perf's io_uring tracepoints: ops submitted by opcode,
    and how many went to the io-wq workers."""
    out = tempfile.mktemp(prefix="static-miss-perf-")
    pr = subprocess.Popen(["perf", "record", "-q", "-o", out, "-e", "io_uring:io_uring_submit_req",
                           "-e", "io_uring:io_uring_queue_async_work", "-p", str(srv.p.pid)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    fn()
    time.sleep(0.3)
    pr.send_signal(signal.SIGINT)
    pr.wait(30)
    script = subprocess.run(["perf", "script", "-i", out], capture_output=True, text=True).stdout
    os.unlink(out)
    sub, wq = collections.Counter(), collections.Counter()
    for ln in script.splitlines():
        m = re.search(r"opcode (\w+)", ln)
        if not m:
            continue
        op = m.group(1)
        (wq if "queue_async_work" in ln else sub)[op] += 1
    return sub, wq


def drop_pages():
    for f in os.listdir(TREE):
        fd = os.open(os.path.join(TREE, f), os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)


def row(binary, name, args, paths, n, quick, use_perf):
    tree_paths = paths
    if name == "coldpage":
        drop_pages()
    srv = Server(binary, TREE, args)
    try:
        if name == "nocache":  # dentries and pages in memory, like a warm machine
            h2load(srv.port, tree_paths, len(tree_paths), 1, 8)
        # One connection: its 16 concurrent streams ask for 16 different
        # files, so no two misses share their ring operations (several
        # connections walking the same list would: miss.c coalesces).
        run = lambda: h2load(srv.port, tree_paths, n, 1, 16)  # noqa: E731
        per = syscalls(srv, run)
        shard = max(per, key=lambda t: per[t]["io_uring_enter"])
        sh = per[shard]
        allt = collections.Counter()
        for c in per.values():
            allt.update(c)
        fileops = ("openat2", "openat", "fstat", "newfstatat", "statx", "pread64", "preadv2",
                   "close", "lseek", "fstatfs")
        print("%-9s %-28s shard thread: %.2f syscalls/request (%s); all threads %.2f"
              % (name, os.path.basename(os.path.dirname(binary)) or binary,
                 sum(sh.values()) / n,
                 ", ".join("%s %.2f" % (k, v / n) for k, v in sh.most_common(8)),
                 sum(allt.values()) / n))
        reqs, off = srv.offloaded()
        print("%-9s %-28s file calls/request: shard %.2f, all threads %.2f; offloaded %d of %d"
              % ("", "", sum(sh[k] for k in fileops) / n, sum(allt[k] for k in fileops) / n,
                 off, reqs))
        if use_perf:
            srv.stop()
            if name == "coldpage":
                drop_pages()
            srv = Server(binary, TREE, args)
            if name == "nocache":
                h2load(srv.port, tree_paths, len(tree_paths), 1, 8)
            sub, wq = ring_ops(srv, run)
            print("%-9s %-28s ring ops/request: %s; to io-wq: %s"
                  % ("", "", ", ".join("%s %.2f" % (k, v / n) for k, v in sorted(sub.items())),
                     ", ".join("%s %.2f" % (k, v / n) for k, v in sorted(wq.items())) or "none"))
        srv.stop()
        # Untraced: CPU (every thread, io-wq workers included) and latency.
        srv = Server(binary, TREE, args)
        if name == "nocache":
            h2load(srv.port, tree_paths, len(tree_paths), 1, 8)
        reps = 1 if quick else 3
        for r in range(reps):
            if name != "nocache":
                srv.stop()
                if name == "coldpage":
                    drop_pages()
                srv = Server(binary, TREE, args)
            c0 = srv.cpu()
            h2load(srv.port, tree_paths, n, 1, 16)
            cpu = (srv.cpu() - c0) / n * 1e6
            if name != "nocache":
                srv.stop()
                if name == "coldpage":
                    drop_pages()
                srv = Server(binary, TREE, args)
            lat = h2load(srv.port, tree_paths[:min(len(tree_paths), 2000)],
                         min(n, 2000), 1, 1)
            print("%-9s %-28s rep %d: %.1f us CPU/request (-c 1 -m 16), mean latency %s (-c 1 -m 1)"
                  % ("", "", r + 1, cpu, lat))
    finally:
        srv.stop()


def main():
    global TREE
    ap = argparse.ArgumentParser()
    ap.add_argument("bins", nargs="+")
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--quick", action="store_true", help="200 files, 400 requests, one rep")
    a = ap.parse_args()
    if a.quick:
        a.files, a.requests = 200, 400
    for t in ("strace", "h2load"):
        if not shutil.which(t):
            raise SystemExit("static_miss.py: %s missing" % t)
    use_perf = shutil.which("perf") is not None
    TREE = make_tree(a.files)
    try:
        paths = ["/f%d.txt" % i for i in range(a.files)]
        for b in a.bins:
            row(os.path.abspath(b), "nocache", ["--cache-entries", "0"], paths, a.requests,
                a.quick, use_perf)
            row(os.path.abspath(b), "distinct", [], paths, a.files, a.quick, use_perf)
            row(os.path.abspath(b), "coldpage", [], paths, a.files, a.quick, use_perf)
    finally:
        shutil.rmtree(TREE, ignore_errors=True)


TREE = None
if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    sys.exit(main())
