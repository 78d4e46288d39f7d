#!/usr/bin/python3
"""apps/static (spindle-static): cache misses through the shard's ring
(apps/static/miss.c, issue 15) with real clients (python-h2, curl, nghttp,
h2load): every status of docs/static.md's table from the ring path, with
the cache off (every request a miss) and on (the first one); no file
system call of the server's threads per miss (strace); many concurrent
misses, and coalesced ones (many requests for one cold file, each with its
own method, range and conditionals); client resets while the operations
are in flight (descriptors back to the baseline; the ASan build checks
leaks at exit); a shutdown with misses in flight; and
test_static.py's change-under-load check with the cache off.

    /usr/bin/python3 tests/integration/test_static_miss.py build/apps/static/spindle-static
"""
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_static  # noqa: E402
from harness import H2Client, Server, log, offloaded, run  # noqa: E402

NOCACHE = ["--cache-entries", "0"]


def data_of(name, size):
    """Deterministic bytes for a file (its name, then a pattern)."""
    head = name.encode() + b"|"
    body = bytes((i * 7 + len(name)) & 0xFF for i in range(max(0, size - len(head))))
    return (head + body)[:size]


def fd_targets(pid):
    """What pid's descriptors point at (those closed meanwhile skipped)."""
    out = []
    for f in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, f)))
        except FileNotFoundError:
            pass
    return sorted(out)


class MissTree:
    """A small tree: files of the sizes that matter (empty, 13 B, 4 KiB,
    exactly 64 KiB, 64 KiB + 1, 1 MiB), indexes, symlinks in and out, a
    FIFO, a socket, a device when allowed, a symlink loop, an index.html
    that is a directory; everything older than a second (a file changed
    within the last second is read on the offload thread)."""

    SIZES = {"zero.txt": 0, "a.txt": 13, "s4k.bin": 4096, "s64k.bin": 65536,
             "big64k.bin": 65537, "one.bin": 1 << 20, "sub/deep.txt": 5,
             "index.html": 20, "sub/index.html": 19}

    def __init__(self, nfiles=0):
        self.top = tempfile.mkdtemp(prefix="static-miss-", dir="/tmp")
        self.root = os.path.join(self.top, "root")
        out = os.path.join(self.top, "outside")
        for d in ("sub", "empty", "idxdir/index.html"):
            os.makedirs(os.path.join(self.root, d))
        os.makedirs(out)
        self.files = {}
        for name, size in self.SIZES.items():
            self.put(name, data_of(name, size))
        for i in range(nfiles):
            self.put("many/f%d.txt" % i, data_of("f%d" % i, 13 + (i * 37) % 5000))
        with open(os.path.join(out, "secret.txt"), "wb") as f:
            f.write(b"SECRET outside the root\n")
        os.symlink("/etc/passwd", os.path.join(self.root, "link_abs"))
        os.symlink("../outside/secret.txt", os.path.join(self.root, "link_rel_out"))
        os.symlink("../outside", os.path.join(self.root, "link_dir_out"))
        os.symlink("a.txt", os.path.join(self.root, "link_in"))
        os.symlink("../a.txt", os.path.join(self.root, "sub", "link_up_in"))
        os.symlink("sub", os.path.join(self.root, "link_dir_in"))
        os.symlink("/proc/self/root/etc/passwd", os.path.join(self.root, "link_proc"))
        os.symlink("loop", os.path.join(self.root, "loop"))
        os.mkfifo(os.path.join(self.root, "fifo"))
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(os.path.join(self.root, "sock"))
        try:
            os.mknod(os.path.join(self.root, "null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
            self.device = True
        except OSError:
            self.device = False
        time.sleep(1.1)

    def put(self, name, data):
        p = os.path.join(self.root, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        self.files[name] = data

    def cleanup(self):
        self.sock.close()
        shutil.rmtree(self.top, ignore_errors=True)


def server(tree, args=(), shards=1, **kw):
    return Server(args=["--root", tree.root] + list(args), shards=shards, **kw)


# docs/static.md's table, as seen from the ring path: (path, status, the
# file whose bytes a 200 carries).
CASES = [
    ("/a.txt", 200, "a.txt"), ("/zero.txt", 200, "zero.txt"), ("/s4k.bin", 200, "s4k.bin"),
    ("/s64k.bin", 200, "s64k.bin"), ("/sub/deep.txt", 200, "sub/deep.txt"),
    ("/", 200, "index.html"), ("/sub/", 200, "sub/index.html"), ("/sub", 200, "sub/index.html"),
    ("/link_dir_in/", 200, "sub/index.html"), ("/link_in", 200, "a.txt"),
    ("/sub/link_up_in", 200, "a.txt"), ("/link_dir_in/deep.txt", 200, "sub/deep.txt"),
    ("/../etc/passwd", 403, None), ("/%2e%2e/x", 403, None),
    ("/link_abs", 403, None), ("/link_rel_out", 403, None),
    ("/link_dir_out/secret.txt", 403, None), ("/link_proc", 403, None), ("/loop", 403, None),
    ("/fifo", 403, None), ("/sock", 403, None),
    ("/nope", 404, None), ("/a.txt/x", 404, None), ("/" + "n" * 300, 404, None),
    ("/empty/", 404, None), ("/empty", 404, None), ("/a.txt/", 404, None),
    ("/idxdir/", 404, None), ("/a.txt%00", 400, None), ("/" + "x" * 4100, 414, None),
]


class MissStatusTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tree = MissTree()
        cls.cases = list(CASES)
        if cls.tree.device:
            cls.cases.append(("/null", 403, None))

    @classmethod
    def tearDownClass(cls):
        cls.tree.cleanup()

    def check(self, r, path, want, name):
        self.assertEqual(r.status, want, "%s -> %s" % (path, r.status))
        body = bytes(r.data)
        self.assertNotIn(b"SECRET", body, path)
        self.assertNotIn(b"root:", body, path)
        if name is not None:
            self.assertEqual(body, self.tree.files[name], path)
            self.assertEqual(int(r.headers["content-length"]), len(body), path)

    def statuses(self, args):
        with server(self.tree, args) as srv:
            for rnd in range(2):  # cache on: a miss, then a hit
                with H2Client(srv.port, timeout=20) as c:
                    sids = [(c.request("GET", p), p, want, name) for p, want, name in self.cases]
                    for sid, p, want, name in sids:
                        self.check(c.wait_stream(sid), p, want, name)
                    for p, want, name in self.cases:  # HEAD: the same status, no body
                        r = c.wait_stream(c.request("HEAD", p))
                        self.assertEqual((r.status, bytes(r.data)), (want, b""), "HEAD " + p)
                        if name is not None:
                            self.assertEqual(int(r.headers["content-length"]),
                                             len(self.tree.files[name]), "HEAD " + p)
                    r = c.wait_stream(c.request("POST", "/a.txt"))
                    self.assertEqual((r.status, r.headers.get("allow")), (405, "GET, HEAD"))
            # None of it left the shard: the ring answered.
            n, off = offloaded(srv)
            log("%s: %d requests, %d offloaded" % (args or "cache on", n, off))
            self.assertEqual(off, 0, "a small file or an error went to the offload thread")
            # A large file (not a hot mapping) still goes there, byte-exact.
            with H2Client(srv.port, timeout=20) as c:
                for name in ("big64k.bin", "one.bin"):
                    self.check(c.get("/" + name), "/" + name, 200, name)
            self.assertGreaterEqual(offloaded(srv)[1], 1)
            # Real clients on misses: curl and nghttp.
            url = "http://127.0.0.1:%d" % srv.port
            for p, want, _ in self.cases[:22]:
                rc, out, err = run(["curl", "-sS", "--http2-prior-knowledge", "--path-as-is",
                                    "-o", "/dev/null", "-w", "%{http_code}", url + p], 30)
                self.assertEqual((rc, int(out or 0)), (0, want), "curl %s: %s" % (p, err))
            rc, out, err = run(["nghttp", "-v", url + "/s4k.bin", url + "/fifo", url + "/nope",
                                url + "/sub/"], 30)
            self.assertEqual(rc, 0, err)
            codes = re.findall(r":status: (\d+)", out)
            self.assertEqual(sorted(codes), ["200", "200", "403", "404"], out[-2000:])

    def test_statuses_cache_off(self):
        self.statuses(NOCACHE)

    def test_statuses_cache_on(self):
        self.statuses([])

    def test_ranges_and_conditionals_on_a_miss(self):
        d = self.tree.files["s4k.bin"]
        with server(self.tree, NOCACHE) as srv, H2Client(srv.port, timeout=20) as c:
            r = c.get("/s4k.bin", headers=[("range", "bytes=100-199")])
            self.assertEqual((r.status, bytes(r.data)), (206, d[100:200]))
            self.assertEqual(r.headers["content-range"], "bytes 100-199/4096")
            etag, lm = r.headers["etag"], r.headers["last-modified"]
            r = c.get("/s4k.bin", headers=[("if-none-match", etag)])
            self.assertEqual((r.status, bytes(r.data)), (304, b""))
            r = c.get("/s4k.bin", headers=[("if-modified-since", lm)])
            self.assertEqual(r.status, 304)
            r = c.get("/s4k.bin", headers=[("if-match", '"nope"')])
            self.assertEqual(r.status, 412)
            r = c.get("/s4k.bin", headers=[("range", "bytes=5000-")])
            self.assertEqual((r.status, r.headers["content-range"]), (416, "bytes */4096"))
            r = c.get("/one.bin", headers=[("range", "bytes=-10")])  # a large file's range
            self.assertEqual((r.status, bytes(r.data)), (206, self.tree.files["one.bin"][-10:]))


class MissLoadTest(unittest.TestCase):
    NFILES = 1500

    @classmethod
    def setUpClass(cls):
        cls.tree = MissTree(cls.NFILES)

    @classmethod
    def tearDownClass(cls):
        cls.tree.cleanup()

    def uris(self, port, paths):
        p = os.path.join(self.tree.top, "uris.txt")
        with open(p, "w") as f:
            for path in paths:
                f.write("http://127.0.0.1:%d%s\n" % (port, path))
        return p

    @unittest.skipUnless(shutil.which("strace"), "strace not installed")
    def test_no_file_system_calls_per_miss(self):
        """Every request a miss (cache off), over distinct files and
        errors: strace sees no openat2, fstat, statx, pread or close of
        any server thread (they are ring operations).  The build before
        issue 15's ring path made five per miss on the shard."""
        paths = ["/many/f%d.txt" % i for i in range(200)] + ["/nope", "/fifo", "/sub/"]
        with server(self.tree, NOCACHE) as srv, H2Client(srv.port, timeout=20) as c:
            for p in paths[:5]:
                c.get(p)
            out = os.path.join(self.tree.top, "strace.txt")
            tr = subprocess.Popen(["strace", "-f", "-qq", "-o", out, "-p", str(srv.pid)],
                                  stderr=subprocess.DEVNULL)
            try:
                time.sleep(1.0)  # attached to every thread
                for i in range(0, len(paths), 16):
                    sids = [(c.request("GET", p, flush=False), p) for p in paths[i:i + 16]]
                    c.flush()
                    for sid, p in sids:
                        self.assertIn(c.wait_stream(sid, 20).status, (200, 403, 404), p)
            finally:
                tr.send_signal(signal.SIGINT)
                tr.wait(20)
            with open(out) as f:
                lines = f.read().splitlines()
            calls = [ln for ln in lines if re.search(
                r"\b(openat2|openat|fstat|newfstatat|statx|pread64|preadv2|close|lseek|"
                r"fstatfs)\(", ln)]
            enters = len([ln for ln in lines if "io_uring_enter(" in ln])
            log("%d misses: %d file system calls traced, %d io_uring_enter" % (
                len(paths), len(calls), enters))
            self.assertGreater(enters, 0, "strace saw nothing: not attached?")
            self.assertEqual(calls[:10], [], "file system calls made by the server's threads")

    def test_many_concurrent_misses(self):
        paths = ["/many/f%d.txt" % i for i in range(self.NFILES)]
        for args, shards in ((NOCACHE, 2), ([], 2)):
            with server(self.tree, args, shards=shards) as srv:
                # h2load: 8 connections x 32 streams over every file.
                rc, out, err = run(["h2load", "-n", str(2 * self.NFILES), "-c", "8", "-m", "32",
                                    "-t", "1", "-i", self.uris(srv.port, paths)], 120)
                res = harness.parse_h2load(out)
                log("h2load %s: %s succeeded, %s 2xx" % (args, res.get("succeeded"),
                                                          res.get("2xx")))
                self.assertEqual(res.get("2xx"), 2 * self.NFILES, out[-800:])
                # python-h2: 4 connections x 100 streams at once over 200
                # distinct cold files (each asked on two connections),
                # byte-exact.
                base = 0 if args else 700
                conns = [H2Client(srv.port, timeout=30) for _ in range(4)]
                try:
                    sids = []
                    for i in range(base, base + 200):
                        for c in (conns[i % 2], conns[2 + i % 2]):
                            sids.append((c, c.request("GET", "/many/f%d.txt" % i, flush=False),
                                         "many/f%d.txt" % i))
                    for c in conns:
                        c.flush()
                    for c, sid, name in sids:
                        r = c.wait_stream(sid, 30)
                        self.assertEqual((r.status, bytes(r.data)), (200, self.tree.files[name]),
                                         name)
                finally:
                    for c in conns:
                        c.close()

    def test_coalesced_misses(self):
        """64 requests for one cold file at once (one miss, many waiters),
        each answered for itself: GET, HEAD, a range, If-None-Match, and
        requests reset before the answer."""
        name, d = "s4k.bin", self.tree.files["s4k.bin"]
        with server(self.tree, NOCACHE) as srv:
            with H2Client(srv.port, timeout=20) as c:
                etag = c.get("/" + name).headers["etag"]
            for rnd in range(5):
                with H2Client(srv.port, timeout=20) as c:
                    kinds = []
                    for i in range(64):
                        k = i % 5
                        hdrs = [[], [], [("range", "bytes=10-19")], [("if-none-match", etag)],
                                []][k]
                        sid = c.request("HEAD" if k == 1 else "GET", "/" + name, hdrs,
                                        flush=False)
                        if k == 4:
                            c.conn.reset_stream(sid)
                        kinds.append((sid, k))
                    c.flush()
                    for sid, k in kinds:
                        if k == 4:
                            continue
                        r = c.wait_stream(sid, 20)
                        want = [(200, d), (200, b""), (206, d[10:20]), (304, b"")][k]
                        self.assertEqual((r.status, bytes(r.data)), want, "kind %d" % k)
                    self.assertEqual(c.get("/a.txt").status, 200)

    def test_reset_while_in_flight_no_leak(self):
        """HEADERS and RST_STREAM in one write, so the reset arrives while
        the miss's ring operations are in flight; or the connection closed
        right after the requests.  Descriptors return to the baseline (the
        ring closes what the misses opened), the server goes on serving,
        and exits 0 (the ASan build: no leak)."""
        with server(self.tree, NOCACHE) as srv:
            pid = srv.pid
            with H2Client(srv.port, timeout=20) as c:
                self.assertEqual(c.get("/many/f1.txt").status, 200)
                # The offload thread (and its doorbell descriptor) exists
                # in the baseline: a miss beyond the in-flight bound goes
                # there.
                self.assertEqual(len(c.get("/one.bin").data), 1 << 20)
            time.sleep(0.3)
            fds0 = test_static.fd_count(pid)
            for rnd in range(40):
                c = H2Client(srv.port, timeout=20)
                try:
                    for i in range(32):
                        sid = c.request("GET", "/many/f%d.txt" % ((rnd * 32 + i) % self.NFILES),
                                        flush=False)
                        if rnd % 2 == 0:
                            c.conn.reset_stream(sid)
                    c.flush()
                    if rnd % 2 == 0:
                        self.assertEqual(c.get("/a.txt").status, 200)
                finally:
                    c.close()
            # The last connections may still be read (and their files
            # opened) after the client closed them: one more request goes
            # behind them, then the count must settle at the baseline and
            # stay there for half a second.
            with H2Client(srv.port, timeout=20) as c:
                self.assertEqual(c.get("/a.txt").status, 200)
            deadline = time.monotonic() + 10
            settled = 0
            while settled < 5 and time.monotonic() < deadline:
                settled = settled + 1 if test_static.fd_count(pid) <= fds0 else 0
                time.sleep(0.1)
            fds = test_static.fd_count(pid)
            log("after 40 rounds of resets in flight: %d fds (baseline %d)" % (fds, fds0))
            self.assertLessEqual(fds, fds0, "descriptors leaked: %s" % fd_targets(pid))
            with H2Client(srv.port, timeout=20) as c:
                r = c.get("/s64k.bin")
                self.assertEqual(bytes(r.data), self.tree.files["s64k.bin"])

    def test_shutdown_with_misses_in_flight(self):
        """SIGTERM while h2load keeps misses in flight: the drain waits for
        the ring operations and the server exits 0."""
        paths = ["/many/f%d.txt" % i for i in range(self.NFILES)]
        for rnd in range(3):
            srv = server(self.tree, NOCACHE, shards=2).start()
            try:
                load = subprocess.Popen(["h2load", "-D", "5", "-c", "8", "-m", "32", "-t", "1",
                                         "-i", self.uris(srv.port, paths)],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                time.sleep(0.5 + 0.2 * rnd)
                srv.stop()  # SIGTERM; asserts exit status 0
                out, _ = load.communicate(timeout=60)
                res = harness.parse_h2load(out.decode())
                log("stopped under load: h2load %s succeeded" % res.get("succeeded"))
            finally:
                srv.kill()
                srv._close()


class MissFreshnessTest(test_static.StaticFreshnessTest):
    """test_static.py's change under load with the cache off: every answer
    comes from a miss through the ring (or the offload thread, for files
    changed within the last second), never mixed, never a stale length."""
    SERVER_ARGS = tuple(NOCACHE)
    test_revalidation_on_the_ring = None
    test_cache_bounds = None


if __name__ == "__main__":
    harness.main()
