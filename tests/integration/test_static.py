#!/usr/bin/python3
"""apps/static (spindle-static) over real sockets: path handling that cannot
escape the root, index.html, 403/404/405, HEAD, content types, ranges,
conditional requests, large and concurrent downloads checked byte for byte,
client resets without leaked descriptors or mappings, and a file truncated
while it is being served (the server must survive: no SIGBUS).

    /usr/bin/python3 tests/integration/test_static.py build/apps/static/spindle-static

Paths that curl would normalise go through python-h2 (H2Client) or curl
--path-as-is."""
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import H2Client, Server, log, offloaded, run  # noqa: E402

MIB = 1 << 20
BIG = 200 * MIB        # checked by sha256 through curl
EIGHT = 8 * MIB        # 32 concurrent downloads on one connection
RANGE_SIZE = MIB + 123  # ranges (mmap path, unaligned ends)


def write_random(path, size, seed):
    """Deterministic pseudo-random content (fast: a hashed 1 MiB block,
    varied per block)."""
    h = hashlib.sha256()
    base = hashlib.shake_256(seed.encode()).digest(MIB)
    with open(path, "wb") as f:
        left, i = size, 0
        while left:
            blk = base if i % 2 == 0 else base[::-1]
            blk = i.to_bytes(8, "little") + blk[8:]
            n = min(left, MIB)
            f.write(blk[:n])
            h.update(blk[:n])
            left -= n
            i += 1
    return h.hexdigest()


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def maps_lines(pid, needle=None):
    with open("/proc/%d/maps" % pid) as f:
        lines = f.read().splitlines()
    return len([l for l in lines if needle is None or needle in l])


class Tree:
    """The served tree plus a sibling 'outside' directory."""

    def __init__(self):
        self.top = tempfile.mkdtemp(prefix="static-it-", dir="/tmp")
        self.root = os.path.join(self.top, "root")
        out = os.path.join(self.top, "outside")
        os.makedirs(os.path.join(self.root, "sub"))
        os.makedirs(os.path.join(self.root, "empty"))
        os.makedirs(os.path.join(self.root, "a"))
        os.makedirs(out)
        self.files = {}
        for name, data in {
            "index.html": b"<h1>root index</h1>\n",
            "a.txt": b"hello, static\n",
            "sub/index.html": b"<h1>sub index</h1>\n",
            "sub/deep.txt": b"deep\n",
            "style.css": b"body{}", "app.js": b"1;", "data.json": b"{}", "img.png": b"png",
            "p.jpg": b"jpg", "g.gif": b"gif", "v.svg": b"<svg/>", "w.webp": b"w", "f.ico": b"i",
            "m.wasm": b"\0asm", "d.pdf": b"%PDF", "v.mp4": b"mp4", "font.woff2": b"wf2",
            "UPPER.HTML": b"<p>upper</p>", "noext": b"n", "x.unknownext": b"u",
            "back\\slash.txt": b"backslash\n", "empty.txt": b"",
        }.items():
            self.put(name, data)
        with open(os.path.join(out, "secret.txt"), "wb") as f:
            f.write(b"SECRET outside the root\n")
        os.symlink("/etc/passwd", os.path.join(self.root, "link_abs"))
        os.symlink("../outside/secret.txt", os.path.join(self.root, "link_rel_out"))
        os.symlink("../outside", os.path.join(self.root, "link_dir_out"))
        os.symlink("a.txt", os.path.join(self.root, "link_in"))
        os.symlink("../a.txt", os.path.join(self.root, "sub", "link_up_in"))
        os.symlink("sub", os.path.join(self.root, "link_dir_in"))
        os.symlink("/proc/self/root/etc/passwd", os.path.join(self.root, "link_proc"))
        os.mkfifo(os.path.join(self.root, "fifo"))
        t0 = time.monotonic()
        self.sha_big = write_random(os.path.join(self.root, "big.bin"), BIG, "big")
        self.sha_eight = write_random(os.path.join(self.root, "eight.bin"), EIGHT, "eight")
        write_random(os.path.join(self.root, "range.bin"), RANGE_SIZE, "range")
        with open(os.path.join(self.root, "range.bin"), "rb") as f:
            self.range_data = f.read()
        log("tree ready in %.1f s: %s" % (time.monotonic() - t0, self.root))

    def put(self, name, data):
        p = os.path.join(self.root, name)
        with open(p, "wb") as f:
            f.write(data)
        self.files[name] = data

    def cleanup(self):
        shutil.rmtree(self.top, ignore_errors=True)


def static_server(tree, **kw):
    args = ["--root", tree.root] + list(kw.pop("args", ()))
    return Server(args=args, **kw)


class StaticTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tree = Tree()
        cls.srv = static_server(cls.tree, shards=2)
        try:
            cls.srv.start()
        except Exception:
            cls.tree.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.shutdown()  # asserts exit status 0
        finally:
            cls.tree.cleanup()

    def setUp(self):
        self.srv.assert_alive()

    # -- helpers ----------------------------------------------------------
    def get(self, path, headers=(), method="GET", timeout=20):
        with H2Client(self.srv.port, timeout=timeout) as c:
            sid = c.request(method, path, headers)
            return c.wait_stream(sid, timeout)

    def curl(self, *args, timeout=60):
        cmd = ["curl", "-sS", "--http2-prior-knowledge", "--max-time", str(timeout)] + list(args)
        rc, out, err = run(cmd, timeout + 5)
        self.assertEqual(rc, 0, "curl failed: %s\n%s" % (" ".join(cmd), err))
        return out

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.srv.port, path)

    # -- startup ----------------------------------------------------------
    def test_startup_errors(self):
        b = harness.binary()
        missing = os.path.join(self.tree.top, "no-such-dir")
        for args, want in (([], "--root"),
                           (["--root", missing], missing),
                           (["--root", os.path.join(self.tree.root, "a.txt")], "a.txt")):
            p = subprocess.run([b, "--port", "0", "--shards", "1"] + args,
                               capture_output=True, timeout=10)
            err = p.stderr.decode()
            self.assertNotEqual(p.returncode, 0, args)
            self.assertIn(want, err, args)
            log("startup %r -> %d: %s" % (args, p.returncode, err.strip()))

    # -- paths ------------------------------------------------------------
    def test_traversal(self):
        cases = [
            ("/../etc/passwd", 403), ("/%2e%2e/etc/passwd", 403), ("/%2E%2E/etc/passwd", 403),
            ("/a/%2E%2E/%2e%2e/x", 403), ("/..%2fetc%2fpasswd", 403), ("/sub/../a.txt", 403),
            ("/.%2e/.%2e/etc/passwd", 403), ("/sub/..", 403),
            ("/a.txt%00", 400), ("/%00", 400), ("/a%zz", 400), ("/a%4", 400), ("/a%", 400),
            ("//etc/passwd", 404), ("///etc//passwd", 404), ("/etc/passwd", 404),
            ("/link_abs", 403), ("/link_rel_out", 403), ("/link_dir_out/secret.txt", 403),
            ("/link_proc", 403),
            ("/..\\..\\etc\\passwd", 404),   # backslashes are just bytes
            ("/fifo", 403), ("/nope", 404), ("/empty/", 404), ("/empty", 404), ("/a.txt/", 404),
        ]
        with H2Client(self.srv.port, timeout=10) as c:
            sids = [(c.request("GET", p), p, want) for p, want in cases]
            for sid, p, want in sids:
                r = c.wait_stream(sid)
                self.assertEqual(r.status, want, "%s -> %s" % (p, r.status))
                body = bytes(r.data)
                self.assertNotIn(b"root:", body, p)
                self.assertNotIn(b"SECRET", body, p)
        ok = [("/link_in", "a.txt"), ("/sub/link_up_in", "a.txt"),
              ("/link_dir_in/deep.txt", "sub/deep.txt"), ("/./a.txt", "a.txt"),
              ("//a.txt", "a.txt"), ("/sub//deep.txt", "sub/deep.txt"),
              ("/sub%2fdeep.txt", "sub/deep.txt"), ("/a.txt?x=1&y=/../..", "a.txt"),
              ("/%61.txt", "a.txt"), ("/back%5Cslash.txt", "back\\slash.txt"),
              ("/back\\slash.txt", "back\\slash.txt")]
        with H2Client(self.srv.port, timeout=10) as c:
            for p, name in ok:
                r = c.get(p)
                self.assertEqual(r.status, 200, p)
                self.assertEqual(bytes(r.data), self.tree.files[name], p)
        # The same attempts through curl --path-as-is (a real client).
        for p, want in (("/../etc/passwd", 403), ("/%2e%2e/%2e%2e/etc/passwd", 403),
                        ("/link_abs", 403), ("//etc/passwd", 404), ("/a.txt%00", 400)):
            code = self.curl("--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", self.url(p))
            self.assertEqual(int(code), want, p)

    def test_index_errors_methods(self):
        for p, body in (("/", b"<h1>root index</h1>\n"), ("/sub/", b"<h1>sub index</h1>\n"),
                        ("/sub", b"<h1>sub index</h1>\n"), ("/link_dir_in/", b"<h1>sub index</h1>\n")):
            r = self.get(p)
            self.assertEqual(r.status, 200, p)
            self.assertEqual(bytes(r.data), body, p)
            self.assertEqual(r.headers["content-type"], "text/html; charset=utf-8", p)
        for m in ("POST", "PUT", "DELETE", "OPTIONS"):
            r = self.get("/a.txt", method=m)
            self.assertEqual(r.status, 405, m)
            self.assertEqual(r.headers.get("allow"), "GET, HEAD", m)
        r = self.get("/nope")
        self.assertEqual((r.status, bytes(r.data)), (404, b"not found\n"))

    def test_head(self):
        g = self.get("/a.txt")
        h = self.get("/a.txt", method="HEAD")
        self.assertEqual(h.status, 200)
        self.assertEqual(bytes(h.data), b"")
        for k in ("content-type", "content-length", "etag", "last-modified", "accept-ranges"):
            self.assertEqual(h.headers.get(k), g.headers.get(k), k)
        h = self.get("/big.bin", method="HEAD")
        self.assertEqual(int(h.headers["content-length"]), BIG)
        self.assertEqual(bytes(h.data), b"")
        h = self.get("/nope", method="HEAD")
        self.assertEqual((h.status, bytes(h.data)), (404, b""))
        # HEAD ignores Range.
        h = self.get("/range.bin", [("range", "bytes=0-9")], method="HEAD")
        self.assertEqual((h.status, int(h.headers["content-length"])), (200, RANGE_SIZE))
        # curl -I
        out = self.curl("-I", self.url("/a.txt"))
        self.assertIn("content-length: 14", out)

    def test_content_type(self):
        want = {"index.html": "text/html; charset=utf-8", "style.css": "text/css; charset=utf-8",
                "app.js": "text/javascript; charset=utf-8", "data.json": "application/json",
                "a.txt": "text/plain; charset=utf-8", "img.png": "image/png",
                "p.jpg": "image/jpeg", "g.gif": "image/gif", "v.svg": "image/svg+xml",
                "w.webp": "image/webp", "f.ico": "image/x-icon", "m.wasm": "application/wasm",
                "d.pdf": "application/pdf", "v.mp4": "video/mp4", "font.woff2": "font/woff2",
                "UPPER.HTML": "text/html; charset=utf-8", "noext": "application/octet-stream",
                "x.unknownext": "application/octet-stream", "big.bin": "application/octet-stream"}
        with H2Client(self.srv.port, timeout=10) as c:
            for name, ct in want.items():
                r = c.wait_stream(c.request("HEAD", "/" + name))
                self.assertEqual(r.status, 200, name)
                self.assertEqual(r.headers["content-type"], ct, name)
        r = self.get("/empty.txt")
        self.assertEqual((r.status, r.headers["content-length"], bytes(r.data)), (200, "0", b""))

    # -- ranges -----------------------------------------------------------
    def test_ranges(self):
        d, n = self.tree.range_data, RANGE_SIZE
        ok = [("bytes=0-99", 0, 99), ("bytes=1000-", 1000, n - 1), ("bytes=-500", n - 500, n - 1),
              ("bytes=0-0", 0, 0), ("bytes=%d-%d" % (n - 10, n + 100), n - 10, n - 1),
              ("bytes=-%d" % (n * 2), 0, n - 1), ("bytes=4097-900000", 4097, 900000),
              ("bytes=70000-", 70000, n - 1), (" bytes=5-9 ", 5, 9), ("BYTES=5-9", 5, 9)]
        with H2Client(self.srv.port, timeout=20) as c:
            for spec, a, b in ok:
                r = c.get("/range.bin", headers=[("range", spec)])
                self.assertEqual(r.status, 206, spec)
                self.assertEqual(r.headers["content-range"], "bytes %d-%d/%d" % (a, b, n), spec)
                self.assertEqual(int(r.headers["content-length"]), b - a + 1, spec)
                self.assertEqual(bytes(r.data), d[a:b + 1], spec)
            for spec in ("bytes=%d-" % n, "bytes=%d-%d" % (n + 5, n + 9), "bytes=-0"):
                r = c.get("/range.bin", headers=[("range", spec)])
                self.assertEqual(r.status, 416, spec)
                self.assertEqual(r.headers["content-range"], "bytes */%d" % n, spec)
            r = c.get("/empty.txt", headers=[("range", "bytes=0-")])
            self.assertEqual((r.status, r.headers["content-range"]), (416, "bytes */0"))
            # Several ranges: served whole (200); invalid specs are ignored.
            for spec in ("bytes=0-1,5-9", "bytes=0-1, -3", "bytes=9-5", "items=0-5", "bytes=x-y"):
                r = c.get("/range.bin", headers=[("range", spec)])
                self.assertEqual(r.status, 200, spec)
                self.assertEqual(len(r.data), n, spec)
            # If-Range.
            h = c.get("/range.bin").headers
            etag, lm = h["etag"], h["last-modified"]
            for ir, want in ((etag, 206), (lm, 206), ('"other"', 200), ("W/" + etag, 200),
                             ("Thu, 01 Jan 1970 00:00:00 GMT", 200), ("garbage", 200)):
                r = c.get("/range.bin", headers=[("range", "bytes=10-19"), ("if-range", ir)])
                self.assertEqual(r.status, want, ir)
                self.assertEqual(bytes(r.data), d[10:20] if want == 206 else d, ir)
        # The three forms through curl.
        for spec, a, b in (("0-99", 0, 99), ("1000-", 1000, n - 1), ("-500", n - 500, n - 1)):
            out = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-r", spec,
                                  self.url("/range.bin")], capture_output=True, timeout=30)
            self.assertEqual(out.stdout, d[a:b + 1], spec)

    def test_conditional(self):
        r = self.get("/a.txt")
        etag, lm = r.headers["etag"], r.headers["last-modified"]
        self.assertRegex(etag, r'^"[0-9a-f]+-[0-9a-f]+"$')
        self.assertRegex(lm, r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$")
        cases = [
            ([("if-none-match", etag)], 304), ([("if-none-match", "W/" + etag)], 304),
            ([("if-none-match", '"x", %s' % etag)], 304), ([("if-none-match", "*")], 304),
            ([("if-none-match", '"x"')], 200),
            ([("if-modified-since", lm)], 304),
            ([("if-modified-since", "Sun, 06 Nov 2101 08:49:37 GMT")], 304),
            ([("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT")], 200),
            ([("if-modified-since", "Sunday, 06-Nov-94 08:49:37 GMT")], 200),
            ([("if-modified-since", "garbage")], 200),
            # If-None-Match wins over If-Modified-Since (both ways).
            ([("if-none-match", '"x"'), ("if-modified-since", lm)], 200),
            ([("if-none-match", etag), ("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT")], 304),
            ([("if-match", '"x"')], 412), ([("if-match", etag)], 200), ([("if-match", "*")], 200),
            ([("if-unmodified-since", "Sun, 06 Nov 1994 08:49:37 GMT")], 412),
        ]
        with H2Client(self.srv.port, timeout=10) as c:
            for hdrs, want in cases:
                r = c.get("/a.txt", headers=hdrs)
                self.assertEqual(r.status, want, hdrs)
                if want == 304:
                    self.assertEqual(bytes(r.data), b"", hdrs)
                    self.assertEqual(r.headers["etag"], etag)
                    self.assertEqual(r.headers["last-modified"], lm)
                elif want == 200:
                    self.assertEqual(bytes(r.data), self.tree.files["a.txt"], hdrs)
        # curl's own conditional requests.
        code = self.curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "if-none-match: " + etag,
                         self.url("/a.txt"))
        self.assertEqual(code, "304")
        code = self.curl("-o", "/dev/null", "-w", "%{http_code}", "-z", lm, self.url("/a.txt"))
        self.assertEqual(code, "304")
        # A changed file changes its validators.
        p = os.path.join(self.tree.root, "changing.txt")
        with open(p, "wb") as f:
            f.write(b"one")
        e1 = self.get("/changing.txt").headers["etag"]
        with open(p, "wb") as f:
            f.write(b"three")
        # Each shard looks at a cached file again at most once a second
        # (--revalidate-ms, default 1000): until then the old version, whole.
        t0 = time.monotonic()
        while True:
            r = self.get("/changing.txt", [("if-none-match", e1)])
            if r.status != 304 or time.monotonic() - t0 > 10:
                break
            time.sleep(0.05)
        log("changed file noticed after %.2f s" % (time.monotonic() - t0))
        self.assertEqual((r.status, bytes(r.data)), (200, b"three"))
        self.assertNotEqual(r.headers["etag"], e1)

    # -- large bodies -----------------------------------------------------
    def test_large_file_sha256(self):
        with tempfile.TemporaryDirectory(prefix="static-dl-", dir="/tmp") as tmp:
            out = os.path.join(tmp, "big")
            t0 = time.monotonic()
            self.curl("-o", out, self.url("/big.bin"), timeout=120)
            dt = time.monotonic() - t0
            self.assertEqual(os.path.getsize(out), BIG)
            self.assertEqual(harness.sha256_file(out), self.tree.sha_big)
            log("200 MiB by curl in %.2f s (%.0f MiB/s)" % (dt, BIG / MIB / dt))

    def test_concurrent_downloads(self):
        with H2Client(self.srv.port, timeout=60, window=16 * MIB) as c:
            t0 = time.monotonic()
            sids = [c.request("GET", "/eight.bin", flush=False) for _ in range(32)]
            c.flush()
            for sid in sids:
                r = c.wait_stream(sid, 60)
                self.assertEqual(r.status, 200)
                self.assertEqual(len(r.data), EIGHT, sid)
                self.assertEqual(hashlib.sha256(r.data).hexdigest(), self.tree.sha_eight, sid)
            log("32 x 8 MiB on one connection (python-h2) in %.2f s" % (time.monotonic() - t0))
        # A real client: h2load, 32 streams on one connection.
        rc, out, err = run(["h2load", "-n", "64", "-c", "1", "-m", "32",
                            self.url("/eight.bin")], timeout=60)
        res = harness.parse_h2load(out)
        self.assertEqual((res["succeeded"], res["2xx"]), (64, 64), out)
        self.assertIn("%d" % (64 * EIGHT), out.replace(",", ""), "h2load traffic total")


class StaticLifecycleTest(unittest.TestCase):
    """Servers of its own (one shard): resets and truncation."""

    @classmethod
    def setUpClass(cls):
        cls.tree = Tree.__new__(Tree)
        cls.tree.top = tempfile.mkdtemp(prefix="static-it-", dir="/tmp")
        cls.tree.root = os.path.join(cls.tree.top, "root")
        os.makedirs(cls.tree.root)
        cls.tree.files = {}
        cls.tree.put("a.txt", b"hello, static\n")
        cls.sha_eight = write_random(os.path.join(cls.tree.root, "eight.bin"), EIGHT, "eight")

    @classmethod
    def tearDownClass(cls):
        cls.tree.cleanup()

    def test_reset_mid_download_no_leak(self):
        with static_server(self.tree, shards=1) as srv:
            pid = srv.pid
            # Warm up every path once (pools, arenas, the offload thread),
            # and the large file twice: the second GET runs on the shard and
            # leaves its descriptor in the shard's open-file cache, a steady
            # state the baseline counts.
            with H2Client(srv.port, timeout=20) as c:
                self.assertEqual(len(c.get("/eight.bin").data), EIGHT)
                self.assertEqual(len(c.get("/eight.bin").data), EIGHT)
                self.assertEqual(c.get("/a.txt").status, 200)
            time.sleep(0.3)
            fds0, maps0 = fd_count(pid), maps_lines(pid)
            log("baseline: %d fds, %d maps lines" % (fds0, maps0))
            peak_file_maps = 0
            for i in range(40):
                c = H2Client(srv.port, timeout=20, window=4 * MIB)
                try:
                    sids = [c.request("GET", "/eight.bin") for _ in range(3)]
                    c.wait(lambda: sum(len(c.streams[s].data) for s in sids) > MIB, 20,
                           "some body bytes")
                    peak_file_maps = max(peak_file_maps, maps_lines(pid, "eight.bin"))
                    if i % 2 == 0:
                        for s in sids:
                            c.reset(s)          # RST_STREAM CANCEL mid-body
                        c.pump(0.05)
                finally:
                    c.close()                   # odd rounds: the connection just goes away
            self.assertGreater(peak_file_maps, 0, "large bodies are expected to be mmap'd")
            # Everything returns to the baseline once the server has noticed.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                fds, maps, fmaps = fd_count(pid), maps_lines(pid), maps_lines(pid, "eight.bin")
                if fds <= fds0 and maps <= maps0 and fmaps == 0:
                    break
                time.sleep(0.2)
            log("after 40 reset rounds: %d fds (baseline %d), %d maps lines (baseline %d), "
                "%d mappings of the file" % (fds, fds0, maps, maps0, fmaps))
            self.assertEqual(fmaps, 0, "file mappings left behind")
            self.assertLessEqual(fds, fds0, "descriptors leaked")
            self.assertLessEqual(maps, maps0, "mappings leaked")
            # And the server still serves, byte-exact.
            with H2Client(srv.port, timeout=20) as c:
                r = c.get("/eight.bin")
                self.assertEqual(hashlib.sha256(r.data).hexdigest(), self.sha_eight)

    def test_hot_requests_inline_cold_ones_offloaded(self):
        """A request runs on the shard (a miss through its ring) unless it
        needs the offload thread (spindle_offload()): the first GET of a
        large file (not yet a cached, prefaulted mapping) is offloaded, the
        next ones are not; small files and errors never are."""
        mid = os.path.join(self.tree.root, "mid.bin")
        sha_mid = write_random(mid, 256 << 10, "mid")
        with static_server(self.tree, shards=1) as srv:
            with H2Client(srv.port, timeout=20) as c:
                self.assertEqual(hashlib.sha256(c.get("/mid.bin").data).hexdigest(), sha_mid)
                self.assertEqual(offloaded(srv), (1, 1), "a cold large file goes off the shard")
                t0 = time.monotonic()
                for _ in range(8):
                    self.assertEqual(hashlib.sha256(c.get("/mid.bin").data).hexdigest(), sha_mid)
                took = time.monotonic() - t0
                n, off = offloaded(srv)
                log("8 hot GETs in %.0f ms: %d of %d requests offloaded" % (took * 1000, off, n))
                # The mapping counts as prefaulted for a second after the
                # first request: within that, none of them leaves the shard.
                if took < 0.8:
                    self.assertEqual(off, 1, "a hot large file was offloaded")
                else:
                    self.assertLess(off, 5, "hot large files keep being offloaded")
                # Misses of small files and errors are answered from the
                # shard's ring, whatever the file system.  (A file changed
                # within the last second is read off the shard, in case a
                # write is still in progress: a.txt must be older.)
                a_txt = os.path.join(self.tree.root, "a.txt")
                time.sleep(max(0.0, 1.2 - (time.time() - os.stat(a_txt).st_ctime)))
                for _ in range(2):
                    for path, status in (("/a.txt", 200), ("/nope", 404), ("/../x", 403)):
                        self.assertEqual(c.get(path).status, status, path)
                    n2, off2 = offloaded(srv)
                    log("a.txt, /nope, /../x: %d of %d requests offloaded" % (off2, n2))
                    self.assertEqual(off2, off, "a small file or an error was offloaded")

    def test_truncate_while_serving(self):
        victim = os.path.join(self.tree.root, "victim.bin")
        with static_server(self.tree, shards=1, log_level=3) as srv:
            # 1. Truncated while a window is queued and the peer is not
            #    reading: the kernel's send meets pages past EOF (EFAULT).
            write_random(victim, 64 * MIB, "victim")
            c = H2Client(srv.port, timeout=20, auto_ack=False)
            try:
                sid = c.request("GET", "/victim.bin")
                c.wait(lambda: len(c.streams[sid].data) >= 60000, 10, "the first window")
                time.sleep(0.3)  # the server has queued its window and waits for ours
                os.truncate(victim, 0)
                c.ack_pending()
                deadline = time.monotonic() + 10
                while not c.eof and not c.streams[sid].done and time.monotonic() < deadline:
                    c.pump(0.2)
                    if c.unacked:
                        c.ack_pending()
                got = len(c.streams[sid].data)
                log("truncated to 0 mid-body: got %d bytes, reset=%s, eof=%s" % (
                    got, c.streams[sid].reset, c.eof))
                self.assertLess(got, 64 * MIB)
                self.assertTrue(c.eof or c.streams[sid].done, "neither reset nor closed")
            finally:
                c.close()
            srv.assert_alive()
            # (The log says how: "send: Bad address" is the kernel's EFAULT.)
            log("server log after the truncation:\n" + "\n".join(
                l for l in srv.stderr_text().splitlines() if "send" in l or "clos" in l))
            # 2. Truncated to half while streaming at full speed.
            write_random(victim, 64 * MIB, "victim2")
            c = H2Client(srv.port, timeout=20, window=16 * MIB)
            try:
                sid = c.request("GET", "/victim.bin")
                c.wait(lambda: len(c.streams[sid].data) >= 4 * MIB, 20, "4 MiB")
                os.truncate(victim, 32 * MIB)
                deadline = time.monotonic() + 20
                while not c.eof and not c.streams[sid].done and time.monotonic() < deadline:
                    c.pump(0.2)
                got = len(c.streams[sid].data)
                log("truncated to half mid-body: got %d bytes, reset=%s, ended=%s, eof=%s" % (
                    got, c.streams[sid].reset, c.streams[sid].ended, c.eof))
                self.assertLessEqual(got, 64 * MIB)
                self.assertTrue(c.eof or c.streams[sid].done)
            finally:
                c.close()
            srv.assert_alive()
            # 3. A hot file (cached mapping, already prefaulted: no madvise
            #    per window any more) truncated mid-body: the kernel's send
            #    fails with EFAULT and that connection closes, or the stream
            #    is reset; never a SIGBUS.
            write_random(victim, 32 * MIB, "victim3")
            with H2Client(srv.port, timeout=20, window=16 * MIB) as c:
                self.assertEqual(len(c.get("/victim.bin").data), 32 * MIB)
            c = H2Client(srv.port, timeout=20, window=16 * MIB)
            try:
                sid = c.request("GET", "/victim.bin")
                c.wait(lambda: len(c.streams[sid].data) >= 2 * MIB, 20, "2 MiB")
                os.truncate(victim, 8 * MIB)
                deadline = time.monotonic() + 20
                while not c.eof and not c.streams[sid].done and time.monotonic() < deadline:
                    c.pump(0.2)
                got = len(c.streams[sid].data)
                log("hot file truncated mid-body: got %d bytes, reset=%s, ended=%s, eof=%s" % (
                    got, c.streams[sid].reset, c.streams[sid].ended, c.eof))
                self.assertTrue(c.eof or c.streams[sid].done)
            finally:
                c.close()
            srv.assert_alive()
            # The server survived and serves other clients, byte-exact.
            with H2Client(srv.port, timeout=20) as c:
                r = c.get("/eight.bin")
                self.assertEqual(hashlib.sha256(r.data).hexdigest(), self.sha_eight)
                self.assertEqual(bytes(c.get("/a.txt").data), b"hello, static\n")
            rc, out, err = run(["curl", "-sS", "--http2-prior-knowledge",
                                "http://127.0.0.1:%d/eight.bin" % srv.port], timeout=30)
            self.assertEqual(rc, 0, err)
        # Leaving the block asserts exit status 0: no SIGBUS, no crash.


def version_bytes(name, k):
    """Version k of a test file: its number first, then a size and a fill
    byte that both depend on k (so two versions never share a prefix of the
    other's length)."""
    size = (200000 + (k * 7919) % 90000 if name.endswith(".bin") else
            40000 if name == "overwrite.txt" else 64 + (k * 7919) % 40000)
    head = b"%s v%06d|" % (name.encode(), k)
    return head + bytes([33 + k % 90]) * (size - len(head))


class StaticFreshnessTest(unittest.TestCase):
    """The per-shard open-file and content cache under change: files are
    rewritten in place, truncated, replaced by rename and deleted while
    python-h2 clients (and h2load, for load) fetch them.  Every answer must
    be one whole version of the file (or 404 while it is deleted; for a
    file rewritten in place, any prefix of one version, since the writer
    passes through them): never a stale length, never bytes of two
    versions; and once the writers stop, the last version
    is served within the revalidation interval."""

    # overwrite.txt is written in place at the same size (one write(), no
    # O_TRUNC): every answer must be one whole version.  (It was out of
    # this test while torn bodies were served: the shard's "changed within
    # the last second" check wrapped for a ctime ahead of the coarse clock;
    # docs/static.md, "Freshness".)
    WRITERS = ("rewrite.txt", "trunc.txt", "overwrite.txt", "renamed.txt", "deleted.txt",
               "big-renamed.bin")
    IN_PLACE = ("rewrite.txt", "trunc.txt")
    SERVER_ARGS = ()  # more server arguments (test_static_miss.py: the cache off)

    def setUp(self):
        self.top = tempfile.mkdtemp(prefix="static-fresh-", dir="/tmp")
        self.root = os.path.join(self.top, "root")
        os.makedirs(self.root)
        self.valid = {n: set() for n in self.WRITERS}
        self.last = {}
        self.stop = False
        for n in self.WRITERS:
            self.put(n, 0, replace=True)

    def tearDown(self):
        shutil.rmtree(self.top, ignore_errors=True)

    def put(self, name, k, replace):
        data = version_bytes(name, k)
        self.valid[name].add(hashlib.sha256(data).hexdigest())
        p = os.path.join(self.root, name)
        if name == "overwrite.txt" and not replace:
            with open(p, "r+b") as f:  # the same size, over the old bytes
                f.write(data)
        elif replace:
            tmp = p + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, p)
        else:
            with open(p, "wb") as f:  # O_TRUNC, then the new bytes
                f.write(data)
        self.last[name] = data

    def writer(self, name):
        p = os.path.join(self.root, name)
        k = 1
        while not self.stop:
            if name in ("rewrite.txt", "overwrite.txt"):
                self.put(name, k, replace=False)
            elif name == "trunc.txt":
                self.put(name, k, replace=False)
                time.sleep(0.002)
                os.truncate(p, len(self.last[name]) // 2)
                self.last[name] = self.last[name][:len(self.last[name]) // 2]
            elif name == "deleted.txt":
                os.unlink(p)
                time.sleep(0.003)
                self.put(name, k, replace=True)
            else:
                self.put(name, k, replace=True)
            k += 1
            time.sleep(0.002)
        self.put(name, 10 ** 6 + 1, replace=True)  # the final version
        self.final_k = k

    def check(self, name, r):
        if r.status == 404:
            self.assertEqual(name, "deleted.txt", "404 for a file that is never deleted")
            return
        if r.status == 503:  # "file changing" after four tries off the shard
            return
        self.assertEqual(r.status, 200, name)
        body = bytes(r.data)
        self.assertEqual(int(r.headers["content-length"]), len(body), name)
        if name in self.IN_PLACE:
            # Truncated, then written page by page (or truncated to half):
            # the file passes through every prefix of the new version, so
            # any prefix is a state it had; bytes of two versions are not.
            m = re.match(rb"%s v(\d{6,7})\|" % re.escape(name.encode()), body)
            ok = not body or (m is not None and
                              version_bytes(name, int(m.group(1))).startswith(body))
        else:
            ok = hashlib.sha256(body).hexdigest() in self.valid[name]
        self.assertTrue(ok, "%s: %d bytes that are no version of the file: %r ... %r" % (
            name, len(body), body[:30], body[-10:]))

    def reader(self, port, counts, seen, errors):
        try:
            with H2Client(port, timeout=20) as c:
                while not self.stop:
                    sids = [(n, c.request("GET", "/" + n, flush=False)) for n in self.WRITERS]
                    c.flush()
                    for n, sid in sids:
                        r = c.wait_stream(sid, 20)
                        self.check(n, r)
                        counts[n] = counts.get(n, 0) + 1
                        seen.setdefault(n, set()).add(bytes(r.data).split(b"|")[0])
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    def test_change_under_load(self):
        args = ["--revalidate-ms", "100"] + list(self.SERVER_ARGS)
        with static_server(self, shards=2, args=args) as srv:
            # Warm: every file cached on both shards.
            for _ in range(4):
                with H2Client(srv.port, timeout=20) as c:
                    for n in self.WRITERS:
                        self.check(n, c.get("/" + n))
            load = subprocess.Popen(["h2load", "-D", "3", "-c", "4", "-m", "8", "-t", "1"] +
                                    ["http://127.0.0.1:%d/%s" % (srv.port, n)
                                     for n in self.WRITERS],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            counts, seen, errors = {}, {}, []
            writers = [threading.Thread(target=self.writer, args=(n,)) for n in self.WRITERS]
            readers = [threading.Thread(target=self.reader, args=(srv.port, counts, seen, errors))
                       for _ in range(3)]
            for t in writers + readers:
                t.start()
            time.sleep(3)
            self.stop = True
            for t in writers + readers:
                t.join(30)
            out, _ = load.communicate(timeout=60)
            if errors:
                raise errors[0]
            res = harness.parse_h2load(out.decode())
            log("checked under change: %r answers, %r versions; h2load: %s succeeded, "
                "%s 2xx, %s 4xx, %s 5xx" % (counts, {n: len(v) for n, v in seen.items()},
                                            res.get("succeeded"), res.get("2xx"), res.get("4xx"),
                                            res.get("5xx")))
            for n in self.WRITERS:
                self.assertGreater(counts.get(n, 0), 10, n)
                self.assertGreater(len(seen.get(n, ())), 2, "%s: no change seen" % n)
            self.assertGreater(res.get("succeeded", 0), 100, out.decode()[-600:])
            # The last version, on every shard, within the revalidation
            # interval (100 ms here; 10 s allowed for a loaded machine).
            t0 = time.monotonic()
            for n in self.WRITERS:
                while True:
                    bodies = set()
                    for _ in range(4):  # new connections land on either shard
                        with H2Client(srv.port, timeout=20) as c:
                            bodies.add(bytes(c.get("/" + n).data))
                    if bodies == {self.last[n]} or time.monotonic() - t0 > 10:
                        break
                    time.sleep(0.05)
                self.assertEqual(bodies, {self.last[n]}, n)
            log("last versions served %.2f s after the writers stopped" % (
                time.monotonic() - t0))

    @unittest.skipUnless(shutil.which("strace"), "strace not installed")
    def test_revalidation_on_the_ring(self):
        """A hot cached file checked every 50 ms: each check is a statx
        operation on the shard's ring (apps/static/reval.c), not openat2 +
        fstat system calls of the server's threads (strace sees system
        calls only); a replaced file is still noticed."""
        name = "renamed.txt"
        with static_server(self, shards=1, args=["--revalidate-ms", "50"]) as srv:
            with H2Client(srv.port, timeout=20) as c:
                # A file changed within the last second is read off the shard,
                # uncached (docs/static.md): let it age, then the miss caches it.
                time.sleep(1.1)
                self.check(name, c.get("/" + name))
                self.check(name, c.get("/" + name))
                out = os.path.join(self.top, "strace.txt")
                tr = subprocess.Popen(["strace", "-f", "-qq", "-o", out, "-e",
                                       "trace=openat2,openat,fstat,newfstatat,statx,close",
                                       "-p", str(srv.pid)], stderr=subprocess.DEVNULL)
                try:
                    time.sleep(1.0)  # attached to every thread
                    t0, n = time.monotonic(), 0
                    while time.monotonic() - t0 < 1.5:  # ~30 revalidations
                        r = c.get("/" + name)
                        self.assertEqual(bytes(r.data), self.last[name])
                        n += 1
                        time.sleep(0.01)
                finally:
                    tr.send_signal(signal.SIGINT)
                    tr.wait(20)
                with open(out) as f:
                    calls = [ln for ln in f if re.search(r"\b(openat2|openat|fstat|newfstatat|"
                                                         r"statx|close)\(", ln)]
                log("%d hits over 1.5 s with --revalidate-ms 50: %d file system calls traced"
                    % (n, len(calls)))
                self.assertGreater(n, 20)
                self.assertEqual(calls, [], "the shard revalidated with system calls")
                self.put(name, 7, replace=True)
                t0 = time.monotonic()
                while bytes(c.get("/" + name).data) != self.last[name]:
                    self.assertLess(time.monotonic() - t0, 10, "the replaced file is not seen")
                    time.sleep(0.02)

    def test_cache_bounds(self):
        """--cache-entries bounds the descriptors a shard keeps open (files
        larger than --cache-file-max keep one); files over it are served
        uncached, and content-cached files keep no descriptor."""
        for i in range(12):
            with open(os.path.join(self.root, "f%d.bin" % i), "wb") as f:
                f.write(version_bytes("f%d.bin" % i, i))
        # The same requests against a 3-entry and a 12-entry cache: the
        # second holds 9 more descriptors (the rest of the process's
        # descriptors, offload machinery included, are the same).
        held = {}
        for entries in (3, 12):
            args = ["--cache-entries", str(entries), "--cache-file-max", "1024"]
            with static_server(self, shards=1, args=args) as srv:
                for rnd in range(3):
                    with H2Client(srv.port, timeout=20) as c:
                        for i in range(12):
                            r = c.get("/f%d.bin" % i)
                            self.assertEqual(bytes(r.data), version_bytes("f%d.bin" % i, i))
                time.sleep(0.3)
                held[entries] = fd_count(srv.pid)
        log("descriptors after 12 large files x 3: %r (by --cache-entries)" % held)
        self.assertIn(held[12] - held[3], (8, 9, 10), "the cache holds 3 or 12 descriptors")
        for bad in (["--cache-entries", "x"], ["--cache-file-max", "99999999"],
                    ["--revalidate-ms", "-1"]):
            p = subprocess.run([harness.binary(), "--root", self.root, "--port", "0"] + bad,
                               capture_output=True, timeout=10)
            self.assertEqual(p.returncode, 2, bad)
            self.assertIn(bad[0], p.stderr.decode(), bad)


@unittest.skipUnless(shutil.which("openssl"), "openssl not installed")
class StaticTlsTest(unittest.TestCase):
    """Over TLS the body is read with pread into pooled buffers (user space
    encrypts it; a truncated mapping would SIGBUS there).  Skipped when the
    core does not take the tls-* settings."""

    def test_tls_pread_path(self):
        tree = Tree.__new__(Tree)
        tree.top = tempfile.mkdtemp(prefix="static-it-tls-", dir="/tmp")
        tree.root = os.path.join(tree.top, "root")
        os.makedirs(tree.root)
        tree.files = {}
        try:
            sha = write_random(os.path.join(tree.root, "eight.bin"), EIGHT, "eight")
            with open(os.path.join(tree.root, "eight.bin"), "rb") as f:
                data = f.read()
            cert, key = os.path.join(tree.top, "cert.pem"), os.path.join(tree.top, "key.pem")
            rc, _, err = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                              "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                              "-days", "1", "-subj", "/CN=localhost",
                              "-addext", "subjectAltName=IP:127.0.0.1"], timeout=30)
            self.assertEqual(rc, 0, err)
            tls_port = harness.free_port()
            sets = {"tls-cert": cert, "tls-key": key, "tls-port": tls_port}
            try:
                srv = static_server(tree, shards=1, sets=sets).start()
            except harness.ServerError as e:
                if "tls" in str(e).lower() and "unknown" in str(e).lower():
                    self.skipTest("the core does not know tls-* settings yet")
                raise
            try:
                base = "https://127.0.0.1:%d" % tls_port
                curl = ["curl", "-sS", "-k", "--http2", "--max-time", "30"]
                out = subprocess.run(curl + [base + "/eight.bin"], capture_output=True, timeout=40)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(hashlib.sha256(out.stdout).hexdigest(), sha)
                out = subprocess.run(curl + ["-r", "70001-5000000", base + "/eight.bin"],
                                     capture_output=True, timeout=40)
                self.assertEqual(out.stdout, data[70001:5000001])
                self.assertEqual(maps_lines(srv.pid, "eight.bin"), 0)  # none left
                srv.stop()
            finally:
                srv.kill()
                srv._close()
        finally:
            tree.cleanup()


if __name__ == "__main__":
    harness.main()
