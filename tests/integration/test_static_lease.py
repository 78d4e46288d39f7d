#!/usr/bin/python3
"""apps/static (spindle-static): hits of large files (descriptor entries,
above --cache-file-max) under read leases (apps/static/lease.c, issue 15),
with real clients (python-h2, curl, h2load):

- a hit makes no file system call on the shard's thread (strace: no fstat,
  statx, pread, open or close from a thread with a ring), for whole
  bodies, HEAD, 304 and small ranges; with --no-leases the same requests
  fstat() on the shard (the control: the check can fail);
- a file changed in place (truncated within its last page, truncated
  short, rewritten through O_TRUNC at the same size, appended to) is
  answered as it is now by the very next request, on every shard, with
  revalidation far off (--revalidate-ms 60000): the lease break drops the
  entries before the writer's open() or truncate() returns; the writer
  waits for that (a bounded time, not the kernel's 45 s lease-break-time);
- a file already open for writing when it is first served gets no lease:
  its hits fstat() and still follow in-place changes at once;
- the prepared 200 head of a descriptor entry (curl, HTTP/2 and HTTP/1.1,
  GET and HEAD): every field once, the right length and body; prepared
  304s of both kinds of entry, following a new version.

    /usr/bin/python3 tests/integration/test_static_lease.py build/apps/static/spindle-static
"""
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import H2Client, Server, log  # noqa: E402

SIZE = 300000  # above --cache-file-max (64 KiB): a descriptor entry
FILE_CALLS = re.compile(r"\b(openat2|openat|fstat|newfstatat|statx|pread64|preadv2|close|lseek|"
                        r"fstatfs)\(")
SOCKET_CLOSE = re.compile(r"\bclose\(\d+<(TCP|TCPv6|UNIX|socket|anon_inode)")


def ask(c, path, headers=(), method="GET"):
    return c.wait_stream(c.request(method, path, headers), 20)


def pattern(tag, size):
    """size bytes that differ from every other tag's."""
    block = hashlib.sha256(tag.encode()).digest() * 64
    return (block * (size // len(block) + 1))[:size]


class LeaseTest(unittest.TestCase):
    def setUp(self):
        self.top = tempfile.mkdtemp(prefix="static-lease-", dir="/tmp")
        self.root = os.path.join(self.top, "root")
        os.makedirs(self.root)
        self.path = os.path.join(self.root, "big.bin")
        with open(self.path, "wb") as f:
            f.write(pattern("v0", SIZE))

    def tearDown(self):
        shutil.rmtree(self.top, ignore_errors=True)

    def server(self, shards=1, args=()):
        return Server(args=["--root", self.root, "--revalidate-ms", "60000"] + list(args),
                      shards=shards)

    def current(self):
        with open(self.path, "rb") as f:
            return f.read()

    def check_all(self, srv, what, conns=6):
        """Every answer, over new connections (both shards), is the file as
        it is now: its bytes, its length, a new entity tag."""
        want = self.current()
        tags = set()
        for _ in range(conns):
            with H2Client(srv.port, timeout=20) as c:
                r = c.get("/big.bin")
                self.assertEqual(r.status, 200, what)
                self.assertEqual(int(r.headers["content-length"]), len(want), what)
                self.assertTrue(bytes(r.data) == want, "%s: %d bytes that are not the file's %d"
                                % (what, len(r.data), len(want)))
                tags.add(r.headers["etag"])
        self.assertEqual(len(tags), 1, what)
        return tags.pop()

    def warm(self, srv, conns=6, rounds=3):
        """Every shard caches the file (and its mapping gets hot)."""
        for _ in range(rounds):
            self.check_all(srv, "warm-up", conns)

    def shard_file_calls(self, srv, requests):
        """(file system calls of threads with a ring, io_uring_enter calls)
        while requests() runs under strace."""
        out = os.path.join(self.top, "strace.txt")
        tr = subprocess.Popen(["strace", "-f", "-qq", "-y", "-o", out, "-p", str(srv.pid)],
                              stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.0)  # attached to every thread
            requests()
        finally:
            tr.send_signal(signal.SIGINT)
            tr.wait(20)
        with open(out) as f:
            lines = f.read().splitlines()
        tid = re.compile(r"^(\d+) ")
        shards = {tid.match(ln).group(1) for ln in lines
                  if "io_uring_enter(" in ln and tid.match(ln)}
        # (-y names each descriptor: the close of a connection's socket is
        # not a file system call.)
        calls = [ln for ln in lines if tid.match(ln) and tid.match(ln).group(1) in shards
                 and FILE_CALLS.search(ln) and not SOCKET_CLOSE.search(ln)]
        enters = len([ln for ln in lines if "io_uring_enter(" in ln])
        return calls, enters

    def hits(self, srv, tag):
        """Whole bodies, HEAD, 304, small and large ranges of the hot file."""
        n = 0
        with H2Client(srv.port, timeout=20) as c:
            for _ in range(3):  # the mapping stays hot (prefaulted within 1 s)
                for _ in range(10):
                    self.assertEqual(bytes(c.get("/big.bin").data), self.data)
                    r = ask(c, "/big.bin", [("range", "bytes=100-4195")])
                    self.assertEqual((r.status, bytes(r.data)), (206, self.data[100:4196]))
                    r = ask(c, "/big.bin", [("range", "bytes=-65536")])
                    self.assertEqual((r.status, bytes(r.data)), (206, self.data[-65536:]))
                    r = ask(c, "/big.bin", method="HEAD")
                    self.assertEqual(int(r.headers["content-length"]), SIZE)
                    r = ask(c, "/big.bin", [("if-none-match", tag)])
                    self.assertEqual(r.status, 304)
                    n += 5
                time.sleep(0.2)
        return n

    @unittest.skipUnless(shutil.which("strace"), "strace not installed")
    def test_large_hit_no_file_system_call(self):
        self.data = self.current()
        results = {}
        for args in ((), ("--no-leases",)):
            with self.server(args=args) as srv:
                self.warm(srv, conns=2)
                with H2Client(srv.port, timeout=20) as c:
                    tag = c.get("/big.bin").headers["etag"]
                box = {}
                calls, enters = self.shard_file_calls(
                    srv, lambda: box.setdefault("n", self.hits(srv, tag)))
                results[args] = (box["n"], len(calls), enters, calls[:5])
        log("large-file hits, file system calls on the shard thread: leases %r; "
            "--no-leases %r" % (results[()][:3], results[("--no-leases",)][:3]))
        n, ncalls, enters, first = results[()]
        self.assertGreater(enters, 0, "strace saw nothing: not attached?")
        self.assertEqual(first, [], "file system calls on the shard for %d hits" % n)
        # The control: without leases each hit fstat()s on the shard.
        self.assertGreaterEqual(results[("--no-leases",)][1], n // 2)

    def test_in_place_changes_seen_at_once(self):
        with self.server(shards=2) as srv:
            self.warm(srv)
            tag = self.check_all(srv, "before")
            waits = []

            def change(what, fn):
                nonlocal tag
                t0 = time.monotonic()
                fn()
                waits.append(time.monotonic() - t0)
                new = self.check_all(srv, what)
                self.assertNotEqual(new, tag, "%s: the entity tag did not change" % what)
                tag = new
                self.warm(srv, rounds=1)  # cached (and leased) again on every shard

            # Within the last page: a stale length would be padded with zeros.
            change("truncated by 100 bytes", lambda: os.truncate(self.path, SIZE - 100))
            change("truncated to 70000 bytes", lambda: os.truncate(self.path, 70000))

            def rewrite(tag_, size):
                with open(self.path, "wb") as f:  # O_TRUNC
                    f.write(pattern(tag_, size))

            change("rewritten, 300000 bytes", lambda: rewrite("v1", SIZE))
            change("rewritten, the same size", lambda: rewrite("v2", SIZE))

            def append():
                with open(self.path, "ab") as f:
                    f.write(b"appended" * 1000)

            change("appended to", append)
            log("in-place changes: the writer waited %s s" % ", ".join("%.3f" % w for w in waits))
            # The writer waits for the shards to let go: bounded, far under
            # the kernel's lease-break-time (45 s).
            self.assertLess(max(waits), 10)
            srv.assert_alive()

    def test_large_head_both_protocols(self):
        """A descriptor entry's prepared 200 head (curl over HTTP/2 and
        HTTP/1.1, a miss and then hits, GET and HEAD): every field once
        (the defaults too), the right length, the body byte-exact."""
        data = self.current()
        with self.server() as srv:
            url = "http://127.0.0.1:%d/big.bin" % srv.port
            tags = set()
            for proto in ("--http2-prior-knowledge", "--http1.1"):
                for head in (False, True, False, False):
                    body = os.path.join(self.top, "body")
                    cmd = ["curl", "-sS", proto, "-D", "-", "-o", body, url]
                    rc, out, err = harness.run(cmd + (["-I"] if head else []), 30)
                    self.assertEqual(rc, 0, err)
                    lines = [ln.split(":", 1)[0].lower() for ln in out.splitlines() if ":" in ln]
                    for k in ("date", "server", "etag", "last-modified", "content-length",
                              "content-type", "accept-ranges"):
                        self.assertEqual(lines.count(k), 1, (proto, head, k, out))
                    self.assertIn("content-length: %d" % SIZE, out.lower())
                    tags.add([ln for ln in out.splitlines() if ln.lower().startswith("etag:")][0])
                    if not head:
                        with open(body, "rb") as f:
                            self.assertTrue(f.read() == data, (proto, "body"))
            self.assertEqual(len(tags), 1, tags)

    def test_prepared_304(self):
        """304s of cache entries (a small and a large file) come from the
        entry's prepared fields from the second one on: over HTTP/2 and
        HTTP/1.1 each field once, the entity tag and date of the version
        the entry is; a new version (renamed over) gets its own."""
        small = os.path.join(self.root, "small.txt")
        with self.server(args=["--revalidate-ms", "50"]) as srv:
            for version in (1, 2):
                tmp = small + ".tmp"
                with open(tmp, "wb") as f:
                    f.write(b"small file, version %d\n" % version)
                os.replace(tmp, small)
                time.sleep(0.2)  # past the revalidation interval: the check drops the old entry
                for path in ("/small.txt", "/big.bin"):
                    url = "http://127.0.0.1:%d%s" % (srv.port, path)
                    with H2Client(srv.port, timeout=20) as c:
                        ask(c, path)  # the check of the old version, if any
                    time.sleep(0.1)
                    with H2Client(srv.port, timeout=20) as c:
                        r = ask(c, path)
                    tag, lastmod = r.headers["etag"], r.headers["last-modified"]
                    for proto in ("--http2-prior-knowledge", "--http1.1") * 2:
                        rc, out, err = harness.run(
                            ["curl", "-sS", proto, "-D", "-", "-o", "/dev/null",
                             "-H", "if-none-match: " + tag, url], 30)
                        self.assertEqual(rc, 0, err)
                        self.assertRegex(out.splitlines()[0], r" 304\b", (path, proto, out))
                        names = [ln.split(":", 1)[0].lower() for ln in out.splitlines()
                                 if ":" in ln]
                        for k in ("etag", "last-modified", "date", "server"):
                            self.assertEqual(names.count(k), 1, (path, proto, k, out))
                        self.assertIn("etag: " + tag, out)
                        self.assertIn("last-modified: " + lastmod, out)
                    if path == "/small.txt":
                        self.assertIn("-", tag)
                        tags = getattr(self, "small_tags", set())
                        tags.add(tag)
                        self.small_tags = tags
            self.assertEqual(len(self.small_tags), 2, "the new version's entity tag")

    def test_no_lease_for_a_file_open_for_writing(self):
        with open(self.path, "r+b") as w:  # open for writing: no read lease can be had
            with self.server() as srv:
                self.warm(srv, conns=2)
                w.truncate(SIZE - 100)  # through the open descriptor: breaks no lease
                w.flush()
                self.check_all(srv, "truncated through a writer's descriptor", conns=2)
                w.seek(0)
                w.write(pattern("v3", SIZE))
                w.flush()
                self.check_all(srv, "rewritten through a writer's descriptor", conns=2)


if __name__ == "__main__":
    harness.main()
