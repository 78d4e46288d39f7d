"""Prepared response fields (spindle_fields, core/prepfields.c) and the
default `date`/`server` headers, over real sockets with real clients
(python-h2, nghttp, curl --http1.1, http.client):

- prepared fields arrive exactly as ordinary ones would, on HTTP/2 and
  HTTP/1.1, with spindle's `date` and `server` once each;
- an application's own `date`/`server` (ordinary or prepared) is not
  duplicated;
- `date` follows the clock across seconds on one connection (HTTP/2: the
  shard's pre-encoded bytes are re-encoded when the second changes);
- spindle-static's prepared head follows the file's versions.

    /usr/bin/python3 tests/integration/test_fields.py \\
        build/bench/spindle-static-head build/apps/hello/spindle-hello \\
        build/apps/static/spindle-static
"""
import http.client
import os
import shutil
import sys
import tempfile
import time
import unittest

import harness
from harness import HOST, H2Client, Server, binary, run

HELLO = STATIC = None  # the other two binaries (argv)

FILE_HEAD = {
    "content-type": "text/html; charset=utf-8",
    "last-modified": "Mon, 07 Dec 2026 03:00:00 GMT",
    "etag": '"d-1880a2b4c5d6e7f8"',
    "accept-ranges": "bytes",
}


class BinServer(Server):
    """A Server running another binary than the harness's."""

    def __init__(self, path, **kw):
        super().__init__(**kw)
        self.path = path

    def command(self):
        cmd = super().command()
        cmd[cmd.index(binary())] = self.path
        return cmd


def h2_fields(port, path, n=1):
    """GET path n times on one HTTP/2 connection: [(header list, body)]."""
    c = H2Client(port)
    try:
        out = []
        for _ in range(n):
            st = c.get(path)
            out.append(([(k.decode(), v.decode()) for k, v in st.header_list], bytes(st.data)))
        return out
    finally:
        c.close()


def h1_fields(port, path, n=1):
    """GET path n times on one HTTP/1.1 keep-alive connection."""
    c = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        out = []
        for _ in range(n):
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            out.append(([(k.lower(), v) for k, v in r.getheaders()], body))
        return out
    finally:
        c.close()


def count(fields, name):
    return sum(1 for k, _ in fields if k == name)


def value(fields, name):
    vals = [v for k, v in fields if k == name]
    return vals[0] if len(vals) == 1 else vals


def parse_date(s):
    return time.mktime(time.strptime(s, "%a, %d %b %Y %H:%M:%S GMT"))


class PreparedFieldsTest(unittest.TestCase):
    def check_file_head(self, fields, body, size):
        for k, v in FILE_HEAD.items():
            self.assertEqual(value(fields, k), v, (k, fields))
        self.assertEqual(value(fields, "content-length"), str(size), fields)
        for k in ("date", "server", "content-length", "etag"):
            self.assertEqual(count(fields, k), 1, (k, fields))
        self.assertEqual(value(fields, "server"), "spindle")
        self.assertLess(abs(parse_date(value(fields, "date")) - time.mktime(time.gmtime())), 120)
        self.assertEqual(body, b"x" * size)

    def test_prepared_and_ordinary_heads_arrive_the_same(self):
        for size in (13, 4096):
            got = {}
            for mode in ((), ("--prepared",)):
                with Server(args=["--body", str(size)] + list(mode)) as srv:
                    # Several responses per connection: the prepared bytes
                    # are copied into heads whose other fields are indexed
                    # in the connection's dynamic table by then.
                    h2 = h2_fields(srv.port, "/", 4)
                    h1 = h1_fields(srv.port, "/", 3)
                    url = "http://%s:%d/" % (HOST, srv.port)
                    rc, out, err = run(["nghttp", "-v", url], 30)
                    self.assertEqual(rc, 0, err)
                    rc, raw, err = run(["curl", "-sS", "--http1.1", "-D", "-", "-o",
                                        "/dev/null", url], 30)
                    self.assertEqual(rc, 0, err)
                for fields, body in h2 + h1:
                    self.check_file_head(fields, body, size)
                by_sid = {}
                for l in out.splitlines():
                    if "recv (stream_id=" in l and ") " in l:
                        sid, field = l.split("recv (stream_id=", 1)[1].split(") ", 1)
                        by_sid.setdefault(sid, []).append(field)
                self.assertEqual(len(by_sid), 1, out)
                for mine in by_sid.values():
                    for k, v in FILE_HEAD.items():
                        self.assertIn("%s: %s" % (k, v), mine, out)
                    self.assertIn("content-length: %d" % size, mine)
                    self.assertEqual(sum(1 for l in mine if l.startswith("date: ")), 1, out)
                lines = [l.lower() for l in raw.splitlines()]
                self.assertEqual(sum(1 for l in lines if l.startswith("server: ")), 1, raw)
                self.assertIn("etag: %s" % FILE_HEAD["etag"], lines)
                # Without date (it differs by the second), the same heads.
                got[mode] = [[f for f in fields if f[0] != "date"] for fields, _ in h2[:1] + h1[:1]]
            self.assertEqual(got[()], got[("--prepared",)])

    def test_prepared_fields_from_offload_threads(self):
        # --blocking: every handler runs on an offload thread, whose
        # spindle_respond_fields() sends the prepared fields as ordinary
        # ones in its command to the shard.
        with Server(args=["--prepared", "--blocking"]) as srv:
            got = h2_fields(srv.port, "/", 3) + h1_fields(srv.port, "/", 3)
            own = h2_fields(srv.port, "/own-prepared") + h1_fields(srv.port, "/own-prepared")
        for fields, body in got:
            self.check_file_head(fields, body, 13)
        for fields, body in own:
            self.assertEqual(body, b"x" * 13)
            self.assertEqual(value(fields, "content-length"), "13", fields)
            self.assertEqual(count(fields, "date"), 1, fields)
            self.assertEqual(value(fields, "server"), "app/1")

    def test_application_date_and_server_not_duplicated(self):
        with Server() as srv:
            for path in ("/own-fields", "/own-prepared"):
                for fields, _ in h2_fields(srv.port, path, 2) + h1_fields(srv.port, path, 2):
                    self.assertEqual(count(fields, "date"), 1, (path, fields))
                    self.assertEqual(count(fields, "server"), 1, (path, fields))
                    self.assertEqual(value(fields, "date"), "Thu, 01 Jan 2026 00:00:00 GMT")
                    self.assertEqual(value(fields, "server"), "app/1")
                    self.assertEqual(value(fields, "content-length"), "13", fields)
                # /own-fields also carries the prepared file head.
                if path == "/own-fields":
                    self.assertEqual(value(fields, "etag"), FILE_HEAD["etag"])
        # Defaults off: none added on either protocol, the prepared fields
        # still arrive.
        with Server(args=["--prepared"], sets={"date-header": "0", "server-header": ""}) as srv:
            h2, h1 = h2_fields(srv.port, "/", 2), h1_fields(srv.port, "/", 2)
        for fields, body in h2 + h1:
            self.assertEqual(count(fields, "date"), 0, fields)
            self.assertEqual(count(fields, "server"), 0, fields)
            self.assertEqual(value(fields, "etag"), FILE_HEAD["etag"])

    def test_date_changes_across_seconds_on_one_connection(self):
        with BinServer(HELLO) as srv:
            h2c = H2Client(srv.port)
            h1c = http.client.HTTPConnection(HOST, srv.port, timeout=10)
            try:
                def h2_date():
                    st = h2c.get("/")
                    self.assertEqual(bytes(st.data), harness.HELLO)
                    ds = [v.decode() for k, v in st.header_list if k == b"date"]
                    self.assertEqual(len(ds), 1, st.header_list)
                    return ds[0]

                def h1_date():
                    h1c.request("GET", "/")
                    r = h1c.getresponse()
                    self.assertEqual(r.read(), harness.HELLO)
                    ds = [v for k, v in r.getheaders() if k.lower() == "date"]
                    self.assertEqual(len(ds), 1, r.getheaders())
                    return ds[0]

                seen2, seen1 = set(), set()
                deadline = time.monotonic() + 4.5
                while time.monotonic() < deadline:
                    before = time.time()
                    d2, d1 = h2_date(), h1_date()
                    after = time.time()
                    # The clock's second (the shard's clock is coarse:
                    # allow a second either way, plus the requests' time).
                    now = time.mktime(time.gmtime(after))
                    for d in (d2, d1):
                        self.assertLessEqual(abs(parse_date(d) - now), 2 + after - before, d)
                    seen2.add(d2)
                    seen1.add(d1)
                    time.sleep(0.25)
            finally:
                h2c.close()
                h1c.close()
        # ~4.5 s of requests: at least 3 distinct seconds on each connection.
        self.assertGreaterEqual(len(seen2), 3, seen2)
        self.assertGreaterEqual(len(seen1), 3, seen1)


class StaticPreparedHeadTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="spindle-fields-")

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def put(self, data):
        tmp = os.path.join(self.root, ".a.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.root, "a.txt"))

    def heads(self, port, data):
        """Both protocols, twice each (a miss or revalidation, then hits):
        the same validators, the right length and body, defaults once."""
        got = h2_fields(port, "/a.txt", 3) + h1_fields(port, "/a.txt", 3)
        etags = set()
        for fields, body in got:
            self.assertEqual(body, data)
            self.assertEqual(value(fields, "content-length"), str(len(data)), fields)
            self.assertEqual(value(fields, "content-type"), "text/plain; charset=utf-8")
            self.assertEqual(value(fields, "accept-ranges"), "bytes")
            for k in ("date", "server", "etag", "last-modified", "content-length"):
                self.assertEqual(count(fields, k), 1, (k, fields))
            etags.add(value(fields, "etag"))
        self.assertEqual(len(etags), 1, etags)
        return etags.pop()

    def test_prepared_head_follows_file_versions(self):
        self.put(b"version one\n")
        srv = BinServer(STATIC, args=["--root", self.root, "--revalidate-ms", "50"])
        with srv:
            e1 = self.heads(srv.port, b"version one\n")
            time.sleep(0.05)
            self.put(b"the second, longer version\n")
            time.sleep(0.3)  # past the revalidation interval
            h2_fields(srv.port, "/a.txt")  # starts the check
            time.sleep(0.2)
            e2 = self.heads(srv.port, b"the second, longer version\n")
            self.assertNotEqual(e1, e2)
            # HEAD and a conditional request still see this version.
            url = "http://%s:%d/a.txt" % (HOST, srv.port)
            rc, out, err = run(["curl", "-sS", "--http1.1", "-I", url], 30)
            self.assertEqual(rc, 0, err)
            self.assertIn("content-length: %d" % len(b"the second, longer version\n"),
                          out.lower())
            rc, out, err = run(["curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null",
                                "-w", "%{http_code}", "-H", "if-none-match: " + e2, url], 30)
            self.assertEqual(out.strip(), "304", err)


if __name__ == "__main__":
    # argv: spindle-static-head (the harness's binary), spindle-hello,
    # spindle-static, then unittest's.
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    HELLO, STATIC = os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
    del sys.argv[2:4]
    harness.main()
